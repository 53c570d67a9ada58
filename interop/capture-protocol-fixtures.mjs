// Captures what the official x402 packages (pinned in package.json, unmodified) put on the wire, as the fixtures
// of crates/protocol/tests/official.rs: a v2 PaymentRequired built by @x402/core's resource server with
// @x402/evm's exact scheme, the v2 payment @x402/core's client signs for it, the three v2 headers encoded by
// @x402/core/http, a v1 payment header made by `x402` 1.x, and the facilitator answers @x402/core's facilitator
// gives without a chain (/supported, a refused /verify and /settle). Needs no network or node: nothing is sent.
//
//   cd interop && npm ci && node capture-protocol-fixtures.mjs ../crates/protocol/tests/fixtures/official
//
// The key is anvil's key 1 (a public test key); nonces and validity windows differ on every run.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { x402Client } from "@x402/core/client";
import { x402Facilitator } from "@x402/core/facilitator";
import {
  encodePaymentRequiredHeader,
  encodePaymentResponseHeader,
  encodePaymentSignatureHeader,
} from "@x402/core/http";
import { x402ResourceServer } from "@x402/core/server";
import { toFacilitatorEvmSigner } from "@x402/evm";
import { registerExactEvmScheme as registerClient } from "@x402/evm/exact/client";
import { registerExactEvmScheme as registerFacilitator } from "@x402/evm/exact/facilitator";
import { registerExactEvmScheme as registerServer } from "@x402/evm/exact/server";
import { createWalletClient, http, publicActions } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { baseSepolia } from "viem/chains";
import { createPaymentHeader } from "x402/client";
import { createSigner } from "x402/types";

const out = process.argv[2];
if (!out) throw new Error("usage: node capture-protocol-fixtures.mjs <output dir>");
mkdirSync(out, { recursive: true });
const write = (name, value) => writeFileSync(join(out, name), JSON.stringify(value, null, 2) + "\n");

const KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const PAY_TO = "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955";
const USDC_BASE_SEPOLIA = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
const account = privateKeyToAccount(KEY);
// A facilitator signer on an RPC nobody answers: the calls captured here never reach it.
const wallet = createWalletClient({ account, chain: baseSepolia, transport: http("http://127.0.0.1:9") }).extend(
  publicActions,
);
const facilitatorSigner = toFacilitatorEvmSigner({ ...wallet, address: account.address });
const facilitator = registerFacilitator(new x402Facilitator(), { signer: facilitatorSigner, networks: ["eip155:84532"] });
const supported = facilitator.getSupported();
write("supported.json", supported);

// The resource server asks its facilitator client for /supported; this one answers from the facilitator above.
const facilitatorClient = {
  getSupported: async () => supported,
  verify: async (payload, requirements) => facilitator.verify(payload, requirements),
  settle: async (payload, requirements) => facilitator.settle(payload, requirements),
};
const server = registerServer(new x402ResourceServer(facilitatorClient), { networks: ["eip155:84532"] });
await server.initialize();
const requirements = await server.buildPaymentRequirements({
  scheme: "exact",
  network: "eip155:84532",
  payTo: PAY_TO,
  price: "$0.01",
  maxTimeoutSeconds: 60,
});
const paymentRequired = await server.createPaymentRequiredResponse(
  requirements,
  { url: "http://localhost:4021/weather", description: "Weather data", mimeType: "application/json" },
  "Payment required",
);
write("v2-payment-required.json", paymentRequired);

const client = registerClient(new x402Client(), { signer: account });
const payment = await client.createPaymentPayload(paymentRequired);
write("v2-payment-payload.json", payment);

// Refused before any chain read: requirements without the token's EIP-712 domain, and a payload that accepted
// another network than the requirements name.
const noDomain = { ...requirements[0], extra: {} };
const otherNetwork = { ...payment, accepted: { ...payment.accepted, network: "eip155:8453" } };
write("verify-invalid.json", {
  missingDomain: await facilitator.verify(payment, noDomain),
  networkMismatch: await facilitator.verify(otherNetwork, requirements[0]),
});
write("settle-failed.json", {
  missingDomain: await facilitator.settle(payment, noDomain),
  networkMismatch: await facilitator.settle(otherNetwork, requirements[0]),
});

const settled = {
  success: true,
  transaction: "0x" + "ab".repeat(32),
  network: "eip155:84532",
  payer: account.address,
  amount: requirements[0].amount,
};
write("v2-headers.json", {
  "PAYMENT-REQUIRED": encodePaymentRequiredHeader(paymentRequired),
  "PAYMENT-SIGNATURE": encodePaymentSignatureHeader(payment),
  "PAYMENT-RESPONSE": encodePaymentResponseHeader(settled),
  settleResponse: settled,
});

// v1, as the `x402` 1.x client signs it for a v1 server's requirements.
const v1Requirements = {
  scheme: "exact",
  network: "base-sepolia",
  maxAmountRequired: "10000",
  resource: "http://localhost:4021/weather",
  description: "Weather data",
  mimeType: "application/json",
  payTo: PAY_TO,
  maxTimeoutSeconds: 60,
  asset: USDC_BASE_SEPOLIA,
  extra: { name: "USDC", version: "2" },
};
const v1Signer = await createSigner("base-sepolia", KEY);
const v1Header = await createPaymentHeader(v1Signer, 1, v1Requirements);
write("v1-payment.json", {
  paymentRequired: { x402Version: 1, error: "X-PAYMENT header is required", accepts: [v1Requirements] },
  "X-PAYMENT": v1Header,
  paymentPayload: JSON.parse(Buffer.from(v1Header, "base64").toString("utf8")),
});
console.log(`wrote the fixtures to ${out}`);
