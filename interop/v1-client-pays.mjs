// The x402 1.x package's client (`x402` on npm, unmodified) paying a URL the v1 way: a plain request (402 with the
// v1 JSON body expected), then the first requirement paid with `createPaymentHeader` in `X-PAYMENT`. Its chain is
// `base-sepolia` (a local anvil started with chain id 84532). Prints JSON.
//
//   node v1-client-pays.mjs '<json: {url, payerKey}>'

import { createPaymentHeader } from "x402/client";
import { createSigner } from "x402/types";

const config = JSON.parse(process.argv[2]);
const plain = await fetch(config.url);
const offer = await plain.json();
const out = { unpaid: { status: plain.status, body: offer } };
const signer = await createSigner("base-sepolia", config.payerKey);
const header = await createPaymentHeader(signer, 1, offer.accepts[0]);
const paid = await fetch(config.url, { headers: { "X-PAYMENT": header } });
const receipt = paid.headers.get("x-payment-response");
out.paid = {
  status: paid.status,
  body: await paid.text(),
  paymentResponse: receipt ? JSON.parse(Buffer.from(receipt, "base64").toString("utf8")) : null,
};
const again = await fetch(config.url, { headers: { "X-PAYMENT": header } });
out.replayed = { status: again.status, body: await again.json().catch(() => null) };
console.log(JSON.stringify(out, null, 2));
