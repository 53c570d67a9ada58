// @x402/fetch with @x402/evm's exact scheme (official packages, unmodified) paying a URL: one plain request
// (402 expected), then `paid` paid requests; prints what the client saw as JSON.
//
//   node fetch-pays.mjs '<json: {url, chainId, token: {address}, payerKey, paid, method?, body?}>'

import { x402Client } from "@x402/core/client";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { decodePaymentResponseHeader, wrapFetchWithPayment } from "@x402/fetch";
import { privateKeyToAccount } from "viem/accounts";

const config = JSON.parse(process.argv[2]);
const network = `eip155:${config.chainId}`;
const init = () => ({ method: config.method ?? "GET", body: config.body });

const out = {};
const plain = await fetch(config.url, init());
const required = plain.headers.get("payment-required");
out.unpaid = {
  status: plain.status,
  cacheControl: plain.headers.get("cache-control"),
  paymentRequired: required ? JSON.parse(Buffer.from(required, "base64").toString("utf8")) : null,
};

const client = registerExactEvmScheme(new x402Client(), { signer: privateKeyToAccount(config.payerKey) });
client.setSpendControls({ allowedAssets: [{ network, asset: config.token.address }] });
const pay = wrapFetchWithPayment(fetch, client);
out.paid = [];
for (let i = 0; i < config.paid; i++) {
  try {
    const response = await pay(config.url, init());
    const header = response.headers.get("payment-response");
    out.paid.push({
      status: response.status,
      body: await response.text(),
      paymentResponse: header ? decodePaymentResponseHeader(header) : null,
    });
  } catch (error) {
    out.paid.push({ error: error instanceof Error ? error.message : String(error) });
  }
}
console.log(JSON.stringify(out, null, 2));
