// An @x402/express server (official packages, unmodified) pointed at a facilitator by URL, as the official example
// wires it: GET /weather for `price` units of the token. Prints {"url": ...} once listening and serves until its
// stdin closes.
//
//   node express-server.mjs '<json: {facilitatorUrl, chainId, token: {address, name, version}, merchant, price}>'

import express from "express";
import { HTTPFacilitatorClient } from "@x402/core/server";
import { ExactEvmScheme } from "@x402/evm/exact/server";
import { paymentMiddleware, x402ResourceServer } from "@x402/express";

const config = JSON.parse(process.argv[2]);
const network = `eip155:${config.chainId}`;
const server = new x402ResourceServer(new HTTPFacilitatorClient({ url: config.facilitatorUrl })).register(
  network,
  new ExactEvmScheme(),
);
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
const listener = app.listen(0, "127.0.0.1", () => {
  console.log(JSON.stringify({ url: `http://127.0.0.1:${listener.address().port}` }));
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
