// An official x402 express server (unmodified packages) pointed at a facilitator by URL, as the official examples
// wire it: GET /weather for `price` units of the token. `version` 2 (default) is @x402/express; 1 is the v1
// package x402-express on `base-sepolia` (a local anvil with chain id 84532). Prints {"url": ...} once listening
// and serves until its stdin closes.
//
//   node express-server.mjs '<json: {facilitatorUrl, chainId, token: {address, name, version}, merchant, price,
//                                    version?}>'

import express from "express";
import { HTTPFacilitatorClient } from "@x402/core/server";
import { ExactEvmScheme } from "@x402/evm/exact/server";
import { paymentMiddleware, x402ResourceServer } from "@x402/express";
import { paymentMiddleware as v1PaymentMiddleware } from "x402-express";

const config = JSON.parse(process.argv[2]);
const network = `eip155:${config.chainId}`;
const server = new x402ResourceServer(new HTTPFacilitatorClient({ url: config.facilitatorUrl })).register(
  network,
  new ExactEvmScheme(),
);
const app = express();
const v1 = {
  "GET /weather": {
    price: {
      amount: String(config.price),
      asset: { address: config.token.address, decimals: 6, eip712: { name: config.token.name, version: config.token.version } },
    },
    network: "base-sepolia",
    config: { description: "Weather data", mimeType: "application/json", maxTimeoutSeconds: 120 },
  },
};
app.use(
  config.version === 1 ? v1PaymentMiddleware(config.merchant, v1, { url: config.facilitatorUrl }) : paymentMiddleware(
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
const listener = app.listen(0, "127.0.0.1", () => {
  console.log(JSON.stringify({ url: `http://127.0.0.1:${listener.address().port}` }));
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
