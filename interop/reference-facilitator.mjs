// The reference facilitator for side-by-side benchmarks: @x402/core's x402Facilitator with @x402/evm's exact
// scheme (unmodified), wired as the official TypeScript facilitator example wires it: a viem wallet client
// extended with public actions behind toFacilitatorEvmSigner, and express routes /verify, /settle and /supported
// (an exception is a 500). The example's logging hooks are left out, so that printing does not count against it.
// With `nonce-manager` the account gets viem's nonce manager, which the example does not use.
//
//   node reference-facilitator.mjs <port> <rpc url> <chain id> <private key> [nonce-manager]

import { x402Facilitator } from "@x402/core/facilitator";
import { toFacilitatorEvmSigner } from "@x402/evm";
import { registerExactEvmScheme } from "@x402/evm/exact/facilitator";
import express from "express";
import { createWalletClient, defineChain, http, publicActions } from "viem";
import { nonceManager, privateKeyToAccount } from "viem/accounts";

const [port, rpc, chainId, key, mode] = process.argv.slice(2);
const account = privateKeyToAccount(key, mode === "nonce-manager" ? { nonceManager } : undefined);
const chain = defineChain({
  id: Number(chainId),
  name: "anvil",
  nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
  rpcUrls: { default: { http: [rpc] } },
});
const client = createWalletClient({ account, chain, transport: http(rpc) }).extend(publicActions);
const signer = toFacilitatorEvmSigner({
  address: account.address,
  getCode: (args) => client.getCode(args),
  readContract: (args) => client.readContract({ ...args, args: args.args || [] }),
  verifyTypedData: (args) => client.verifyTypedData(args),
  writeContract: (args) => client.writeContract({ ...args, args: args.args || [] }),
  sendTransaction: (args) => client.sendTransaction(args),
  waitForTransactionReceipt: (args) => client.waitForTransactionReceipt(args),
});
const facilitator = new x402Facilitator();
registerExactEvmScheme(facilitator, { signer, networks: `eip155:${chainId}` });

const app = express();
app.use(express.json());
const route = (call) => async (req, res) => {
  const { paymentPayload, paymentRequirements } = req.body ?? {};
  if (!paymentPayload || !paymentRequirements) {
    return res.status(400).json({ error: "Missing paymentPayload or paymentRequirements" });
  }
  try {
    res.json(await call(paymentPayload, paymentRequirements));
  } catch (error) {
    res.status(500).json({ error: error instanceof Error ? error.message : "Unknown error" });
  }
};
app.post("/verify", route((payload, requirements) => facilitator.verify(payload, requirements)));
app.post("/settle", route((payload, requirements) => facilitator.settle(payload, requirements)));
app.get("/supported", (_req, res) => res.json(facilitator.getSupported()));
app.listen(Number(port), "127.0.0.1", () => console.log(`reference facilitator on ${port} (${mode ?? "example wiring"})`));
