// The x402 1.x package (`x402` on npm, unmodified) against a facilitator: its client signs a v1 payment header for
// `base-sepolia` requirements (a local anvil started with chain id 84532 is what such a client can pay), and its
// facilitator client (`useFacilitator`, what v1 servers use) calls /supported, /verify and /settle. Prints JSON.
//
//   node v1-facilitator-client.mjs '<json: {url, token: {address, name, version}, merchant, payerKey, amount}>'

import { createPaymentHeader } from "x402/client";
import { createSigner } from "x402/types";
import { useFacilitator } from "x402/verify";

const config = JSON.parse(process.argv[2]);
const requirements = {
  scheme: "exact",
  network: "base-sepolia",
  maxAmountRequired: String(config.amount),
  resource: "http://127.0.0.1/weather",
  description: "Weather data",
  mimeType: "application/json",
  payTo: config.merchant,
  maxTimeoutSeconds: 120,
  asset: config.token.address,
  extra: { name: config.token.name, version: config.token.version },
};
// The signer only signs typed data here; nothing is sent to the chain it names.
const signer = await createSigner("base-sepolia", config.payerKey);
const header = await createPaymentHeader(signer, 1, requirements);
const payload = JSON.parse(Buffer.from(header, "base64").toString("utf8"));
const facilitator = useFacilitator({ url: config.url });
const out = {
  supported: await facilitator.supported(),
  verify: await facilitator.verify(payload, requirements),
  settle: await facilitator.settle(payload, requirements),
  settleAgain: await facilitator.settle(payload, requirements),
  wrongAmount: await facilitator.verify(payload, { ...requirements, maxAmountRequired: String(config.amount + 1) }),
};
console.log(JSON.stringify(out, null, 2));
