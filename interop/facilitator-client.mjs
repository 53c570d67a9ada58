// Drives a facilitator with the official packages, unmodified: @x402/core's HTTPFacilitatorClient (what
// @x402/express and every official v2 server use) sends /supported, /verify and /settle; @x402/core's client with
// @x402/evm's exact scheme signs the payments, and viem signs the few that no honest client would make (another
// key's signature, a window not open yet). Prints one JSON document: each case with what the facilitator answered,
// for crates/cli/tests/facilitator/ to check against the chain.
//
//   node facilitator-client.mjs '<json: {url, chainId, token: {address, name, version}, merchant, stranger,
//                                  payerKey, otherKey, unfundedKey, apiKey?}>'

import { x402Client } from "@x402/core/client";
import { HTTPFacilitatorClient } from "@x402/core/http";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { privateKeyToAccount } from "viem/accounts";

const config = JSON.parse(process.argv[2]);
const network = `eip155:${config.chainId}`;
const payer = privateKeyToAccount(config.payerKey);
const other = privateKeyToAccount(config.otherKey);
const unfunded = privateKeyToAccount(config.unfundedKey);
const auth = config.apiKey
  ? async () => ({ verify: {}, settle: { Authorization: `Bearer ${config.apiKey}` }, supported: {} })
  : undefined;
const facilitator = new HTTPFacilitatorClient({ url: config.url, createAuthHeaders: auth, timeoutMs: 60_000 });
const anonymous = new HTTPFacilitatorClient({ url: config.url, timeoutMs: 60_000 });

const requirements = (overrides = {}) => ({
  scheme: "exact",
  network,
  amount: "1000",
  asset: config.token.address,
  payTo: config.merchant,
  maxTimeoutSeconds: 300,
  extra: { name: config.token.name, version: config.token.version },
  ...overrides,
});

/** A payment signed by the official client for `required`, with `extensions` in the payload if given. */
async function pay(account, required, extensions) {
  const client = registerExactEvmScheme(new x402Client(), { signer: account });
  // A local test token is no default asset: the client pays it only when told to.
  client.setSpendControls({ allowedAssets: [{ network: required.network, asset: required.asset }] });
  const paymentRequired = {
    x402Version: 2,
    resource: { url: "http://localhost/weather", description: "test", mimeType: "application/json" },
    accepts: [required],
    ...(extensions ? { extensions } : {}),
  };
  return client.createPaymentPayload(paymentRequired);
}

/** A payment whose authorization is signed by `signer` but says it is from `from`, with its window set. */
async function forged(signer, from, required, window) {
  const now = Math.floor(Date.now() / 1000);
  const authorization = {
    from: from.address,
    to: required.payTo,
    value: required.amount,
    validAfter: String(window.validAfter ?? 0),
    validBefore: String(window.validBefore ?? now + 300),
    nonce: `0x${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex")}`,
  };
  const signature = await signer.signTypedData({
    domain: {
      name: required.extra.name,
      version: required.extra.version,
      chainId: config.chainId,
      verifyingContract: required.asset,
    },
    types: {
      TransferWithAuthorization: [
        { name: "from", type: "address" },
        { name: "to", type: "address" },
        { name: "value", type: "uint256" },
        { name: "validAfter", type: "uint256" },
        { name: "validBefore", type: "uint256" },
        { name: "nonce", type: "bytes32" },
      ],
    },
    primaryType: "TransferWithAuthorization",
    message: authorization,
  });
  return { x402Version: 2, accepted: required, payload: { authorization, signature } };
}

/** What the facilitator answered, or what the client threw (with the HTTP status it carried). */
async function attempt(call) {
  try {
    return await call();
  } catch (error) {
    return { thrown: error.constructor.name, status: error.statusCode ?? error.status ?? null, message: String(error.message) };
  }
}

const out = {};
out.supported = await facilitator.getSupported();

const good = await pay(payer, requirements());
out.valid = {
  verify: await facilitator.verify(good, requirements()),
  settle: await facilitator.settle(good, requirements()),
  settleAgain: await facilitator.settle(good, requirements()),
  verifyAfter: await facilitator.verify(good, requirements()),
};

const refusals = {
  invalid_network: [good, requirements({ network: "eip155:1" })],
  unsupported_scheme: [good, requirements({ scheme: "upto" })],
  network_mismatch: [{ ...good, accepted: { ...good.accepted, network: "eip155:8453" } }, requirements()],
  missing_domain: [good, requirements({ extra: {} })],
  token_name_mismatch: [good, requirements({ extra: { name: "Not the token", version: config.token.version } })],
  token_version_mismatch: [good, requirements({ extra: { name: config.token.name, version: "9" } })],
  recipient_mismatch: [good, requirements({ payTo: config.stranger })],
  value_mismatch: [good, requirements({ amount: "999" })],
  unknown_token: [good, requirements({ asset: config.stranger })],
};
const fresh = async (overrides) => {
  const required = requirements(overrides);
  return [await pay(payer, required), required];
};
refusals.expiring = await fresh({ maxTimeoutSeconds: 2 });
refusals.stranger_merchant = await fresh({ payTo: config.stranger });
refusals.below_minimum = await fresh({ amount: "1" });
refusals.unfunded = [await pay(unfunded, requirements()), requirements()];
refusals.another_keys_signature = [await forged(other, payer, requirements(), {}), requirements()];
const now = Math.floor(Date.now() / 1000);
refusals.not_valid_yet = [await forged(payer, payer, requirements(), { validAfter: now + 3600 }), requirements()];
out.refused = {};
for (const [name, [payload, required]] of Object.entries(refusals)) {
  out.refused[name] = {
    verify: await attempt(() => facilitator.verify(payload, required)),
    settle: await attempt(() => facilitator.settle(payload, required)),
  };
}

// payment-identifier: the same id and payment twice gives the same answer; the id with another payment is refused.
const withId = (id) => ({ "payment-identifier": { info: { required: false, id } } });
const id = `pay_${Buffer.from(crypto.getRandomValues(new Uint8Array(12))).toString("hex")}`;
const first = await pay(payer, requirements(), withId(id));
const second = await pay(payer, requirements(), withId(id));
out.paymentIdentifier = {
  first: await facilitator.settle(first, requirements()),
  repeated: await facilitator.settle(first, requirements()),
  otherPayment: await attempt(() => facilitator.settle(second, requirements())),
};

if (config.apiKey) {
  out.withoutKey = await attempt(async () => anonymous.settle(await pay(payer, requirements()), requirements()));
}
console.log(JSON.stringify(out, null, 2));
