// An @x402/express server pointed at a facilitator by URL (HTTPFacilitatorClient, as the official example wires
// it), paid by @x402/fetch with @x402/evm's exact scheme: all official packages, unmodified. Serves GET /weather
// for `price` units of the token, makes a plain request (402 expected), then `paid` paid requests, and prints what
// the client saw as JSON.
//
//   node express-paid-by-fetch.mjs '<json: {facilitatorUrl, chainId, token: {address, name, version}, merchant,
//                                         payerKey, price, paid}>'

import express from "express";
import { HTTPFacilitatorClient } from "@x402/core/server";
import { x402Client } from "@x402/core/client";
import { ExactEvmScheme as ExactEvmServer } from "@x402/evm/exact/server";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { paymentMiddleware, x402ResourceServer } from "@x402/express";
import { decodePaymentResponseHeader, wrapFetchWithPayment } from "@x402/fetch";
import { privateKeyToAccount } from "viem/accounts";

const config = JSON.parse(process.argv[2]);
const network = `eip155:${config.chainId}`;

const facilitator = new HTTPFacilitatorClient({ url: config.facilitatorUrl });
const server = new x402ResourceServer(facilitator).register(network, new ExactEvmServer());
const app = express();
app.use(
  paymentMiddleware(
    {
      "GET /weather": {
        accepts: {
          scheme: "exact",
          network,
          payTo: config.merchant,
          price: {
            amount: String(config.price),
            asset: config.token.address,
            extra: { name: config.token.name, version: config.token.version },
          },
          maxTimeoutSeconds: 120,
        },
        description: "Weather data",
        mimeType: "application/json",
      },
    },
    server,
  ),
);
app.get("/weather", (_req, res) => res.json({ weather: "sunny", temperature: 21 }));
const listener = await new Promise((resolve) => {
  const l = app.listen(0, "127.0.0.1", () => resolve(l));
});
const url = `http://127.0.0.1:${listener.address().port}/weather`;

const out = {};
const plain = await fetch(url);
out.unpaid = {
  status: plain.status,
  paymentRequired: plain.headers.get("payment-required")
    ? JSON.parse(Buffer.from(plain.headers.get("payment-required"), "base64").toString("utf8"))
    : null,
};

const client = registerExactEvmScheme(new x402Client(), { signer: privateKeyToAccount(config.payerKey) });
client.setSpendControls({ allowedAssets: [{ network, asset: config.token.address }] });
const pay = wrapFetchWithPayment(fetch, client);
out.paid = [];
for (let i = 0; i < config.paid; i++) {
  const response = await pay(url);
  const header = response.headers.get("payment-response");
  out.paid.push({
    status: response.status,
    body: await response.json().catch(() => null),
    paymentResponse: header ? decodePaymentResponseHeader(header) : null,
  });
}
listener.close();
console.log(JSON.stringify(out, null, 2));
