//! The checks a queued x402 `exact` payment must pass before the keeper accepts it for batch settlement, with
//! the x402 specification's error reasons. [`Verifier::check`] does everything that needs no chain (version,
//! scheme, network, token, amount, recipient, validity window with a safety margin, EIP-712 signature); it is
//! pure CPU work and is what the intake benchmark measures. [`check_onchain`] adds what only the chain knows:
//! the nonce still unused, the payer's balance, and, for contract wallets, the token's own signature check.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::Provider;
use alloy::sol_types::{Eip712Domain, SolStruct};
use x402_bindings::TestStablecoin;
use x402_bindings::eip3009::{TransferWithAuthorization, token_domain};

use x402_protocol::Reason;

use crate::signature;
use crate::store::{PaymentKey, PaymentRecord, PaymentStatus};
use x402_protocol::facilitator::PaymentRequest;

/// What a reason the intake gives means, for `invalidMessage`.
pub fn describe(reason: Reason) -> &'static str {
    match reason {
        Reason::X402Version => "x402Version must be 1 or 2, the same in the request and the payload",
        Reason::Scheme => "only the exact scheme is settled here",
        Reason::Network => "the payment is for another network than this keeper's",
        Reason::Requirements => "the requirements name a token this keeper does not settle, or no amount",
        Reason::Payload => "the payload is malformed or does not match the requirements it accepted",
        Reason::ValidAfter => "the authorization is not valid yet",
        Reason::ValidBefore => "the authorization expires too soon to be settled",
        Reason::ValueMismatch => "the authorized value is not the amount required",
        Reason::RecipientMismatch => "the authorization pays someone else than payTo",
        Reason::Signature => "the signature is not the payer's",
        Reason::InsufficientFunds => "the payer's balance does not cover the payment",
        Reason::NonceAlreadyUsed => "the authorization's nonce was used already",
        Reason::NetworkMismatch => "the payload is for another network than the requirements",
        Reason::MissingDomain => {
            "the requirements lack the token's EIP-712 domain (extra.name, extra.version)"
        }
        Reason::TokenNameMismatch => "extra.name is not the token's EIP-712 domain name",
        Reason::TokenVersionMismatch => "extra.version is not the token's EIP-712 domain version",
        Reason::FactoryNotAllowed => {
            "a counterfactual (ERC-6492) wallet is not settled here: deploy it first"
        }
        Reason::SimulationFailed => "the token refused the transfer in a simulation",
        Reason::TransferEventMismatch => "the settling transaction did not transfer the authorized amount",
        Reason::TransactionFailed => "the settling transaction failed",
        _ => "refused by the keeper's checks",
    }
}

/// A token the keeper settles, with its EIP-712 domain as the token itself reports it (`name()`, `version()`).
#[derive(Clone, Debug)]
pub struct Token {
    /// The token contract.
    pub address: Address,
    /// Its EIP-712 domain name (USDC: "USDC").
    pub name: String,
    /// Its EIP-712 domain version (USDC: "2").
    pub version: String,
}

/// A payment that passed the checks that need no chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// The token.
    pub token: Address,
    /// The authorization as signed.
    pub authorization: TransferWithAuthorization,
    /// Its signature.
    pub signature: Bytes,
    /// The signature is not the payer's ECDSA signature, so only the token (through the payer's ERC-1271
    /// wallet) can tell; [`check_onchain`] asks it.
    pub needs_wallet_check: bool,
}

/// A token's EIP-712 domain, as [`Verifier`] keeps it.
#[derive(Clone, Debug)]
struct Domain {
    separator: B256,
    name: String,
    version: String,
}

/// The ERC-6492 suffix: a signature ending in it wraps a wallet not deployed yet with its factory call.
const ERC6492_MAGIC: [u8; 32] = [
    0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64,
    0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92,
];

impl Checked {
    /// The payment's key in the store.
    pub fn key(&self) -> PaymentKey {
        PaymentKey { token: self.token, payer: self.authorization.from, nonce: self.authorization.nonce }
    }

    /// The record of the payment as the store queues it.
    pub fn queued_record(&self) -> PaymentRecord {
        let a = &self.authorization;
        PaymentRecord {
            key: self.key(),
            to: a.to,
            value: a.value,
            valid_after: a.validAfter,
            valid_before: a.validBefore,
            signature: self.signature.clone(),
            status: PaymentStatus::Queued,
            tx_hash: None,
            block: None,
            reason: None,
            seq: 0,
            attempts: 0,
            wallet: self.needs_wallet_check,
        }
    }
}

/// The chain-free checks for one network.
#[derive(Clone, Debug)]
pub struct Verifier {
    chain_id: u64,
    network_name: Option<&'static str>,
    caip2: String,
    domains: HashMap<Address, Domain>,
    safety_margin: u64,
    require_domain: bool,
}

impl Verifier {
    /// A verifier for `chain_id` (v2 network `eip155:<chain_id>`; v1 network its v1 name, if it has one), accepting
    /// `tokens`, refusing authorizations that expire within `safety_margin` seconds (time for the batch to be
    /// mined). Requirements may leave out the token's EIP-712 domain (`extra.name`, `extra.version`); one they give
    /// must be the token's.
    pub fn new(chain_id: u64, tokens: &[Token], safety_margin: u64) -> Self {
        let domains = tokens
            .iter()
            .map(|t| {
                let separator =
                    token_domain(t.name.clone(), t.version.clone(), chain_id, t.address).separator();
                (t.address, Domain { separator, name: t.name.clone(), version: t.version.clone() })
            })
            .collect();
        Self {
            chain_id,
            network_name: x402_protocol::network::v1_name(chain_id),
            caip2: x402_protocol::network::caip2(chain_id),
            domains,
            safety_margin,
            require_domain: false,
        }
    }

    /// The same verifier with another safety margin, requiring the token's EIP-712 domain in the requirements, as
    /// the reference facilitator does (`invalid_exact_evm_missing_eip712_domain` without it).
    pub fn for_facilitator(&self, safety_margin: u64) -> Self {
        Self { safety_margin, require_domain: true, ..self.clone() }
    }

    /// Whether `network` (a CAIP-2 id or a v1 name) is this verifier's.
    pub fn serves(&self, network: &str) -> bool {
        network == self.caip2 || self.network_name == Some(network)
    }

    /// Checks `request` at chain time `now` (the latest block's timestamp, never the host clock), in the order the
    /// reference facilitator checks: version, scheme, network, token and its domain, signature, recipient,
    /// validity window, value.
    pub fn check(&self, request: &PaymentRequest, now: u64) -> Result<Checked, Reason> {
        self.check_at(request, Some(now))
    }

    /// [`Verifier::check`] without the validity window: whether `request` carries this payment, signed, for these
    /// requirements, whenever it was to be settled (a retry of one already taken asks this).
    pub fn check_terms(&self, request: &PaymentRequest) -> Result<Checked, Reason> {
        self.check_at(request, None)
    }

    fn check_at(&self, request: &PaymentRequest, now: Option<u64>) -> Result<Checked, Reason> {
        let payload = &request.payment_payload;
        let required = &request.payment_requirements;
        if !matches!(request.x402_version, 1 | 2) || payload.x402_version != request.x402_version {
            return Err(Reason::X402Version);
        }
        if required.scheme != "exact" || payload.scheme().is_some_and(|s| s != "exact") {
            return Err(Reason::Scheme);
        }
        if !self.serves(&required.network) {
            return Err(Reason::Network);
        }
        if payload.network().is_some_and(|n| n != required.network) {
            return Err(Reason::NetworkMismatch);
        }
        // What settles is the authorization, checked against the requirements below; like the reference, the rest of
        // what a v2 payload says it accepted is not compared.
        if request.x402_version == 2 && payload.accepted.is_none() {
            return Err(Reason::Payload);
        }
        let domain = self.domains.get(&required.asset).ok_or(Reason::Requirements)?;
        match required.domain() {
            (None, _) | (_, None) if self.require_domain => return Err(Reason::MissingDomain),
            (Some(name), _) if name != domain.name => return Err(Reason::TokenNameMismatch),
            (_, Some(version)) if version != domain.version => return Err(Reason::TokenVersionMismatch),
            _ => {}
        }
        let amount =
            required.required_amount().and_then(x402_protocol::parse_amount).ok_or(Reason::Requirements)?;

        let json = &payload.payload.authorization;
        let authorization = TransferWithAuthorization {
            from: json.from,
            to: json.to,
            value: x402_protocol::parse_amount(&json.value).ok_or(Reason::Payload)?,
            validAfter: x402_protocol::parse_amount(&json.valid_after).ok_or(Reason::Payload)?,
            validBefore: x402_protocol::parse_amount(&json.valid_before).ok_or(Reason::Payload)?,
            nonce: json.nonce,
        };
        let signature = payload.payload.signature.clone();
        if signature.ends_with(&ERC6492_MAGIC) {
            // A counterfactual wallet: settling it means deploying it first, which this project does not do.
            return Err(Reason::FactoryNotAllowed);
        }
        let digest = signing_hash(domain.separator, &authorization);
        let needs_wallet_check = match signature::ecdsa_signer(&signature, digest) {
            Some(signer) if signer == authorization.from => false,
            // A 65-byte signature from another key may still be a contract wallet's approval; anything that is
            // neither is refused here.
            _ if signature.is_empty() => return Err(Reason::Signature),
            _ => true,
        };
        if authorization.to != required.pay_to {
            return Err(Reason::RecipientMismatch);
        }
        if let Some(now) = now.map(U256::from) {
            if authorization.validBefore <= now + U256::from(self.safety_margin) {
                return Err(Reason::ValidBefore);
            }
            if authorization.validAfter >= now {
                return Err(Reason::ValidAfter);
            }
        }
        // v2 asks for the exact amount; v1 for at least `maxAmountRequired`.
        let value_ok = if request.x402_version == 1 {
            authorization.value >= amount
        } else {
            authorization.value == amount
        };
        if !value_ok {
            return Err(Reason::ValueMismatch);
        }
        Ok(Checked { token: required.asset, authorization, signature, needs_wallet_check })
    }

    /// The chain id this verifier checks for.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The network's CAIP-2 id.
    pub fn caip2(&self) -> &str {
        &self.caip2
    }

    /// The network's x402 v1 name, if it has one.
    pub fn v1_name(&self) -> Option<&'static str> {
        self.network_name
    }
}

/// What [`check_onchain`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OnchainFacts {
    /// The payer's token balance now: a payer's queued payments may use at most this much in all.
    pub balance: U256,
}

/// The checks only the chain can answer: the nonce unused and the balance sufficient (read at once), and for a
/// signature that is not the payer's ECDSA one, whether the payer is a contract at all (a plain account's forged
/// signature is refused there, without the simulation; see [`PayerCodes`]) and then the token's own verdict (it
/// asks the payer's ERC-1271 wallet) through a simulated `transferWithAuthorization`.
pub async fn check_onchain<P: Provider>(
    provider: &P,
    checked: &Checked,
    codes: &PayerCodes,
) -> Result<OnchainFacts, OnchainError> {
    onchain(provider, checked, codes, false).await
}

/// [`check_onchain`] with the transfer simulated for every payer, as a facilitator's `/verify` does: what only the
/// token knows (paused, a blocked account) is found before the resource is served. A payer's own ECDSA signature
/// that the token still refuses gets `invalid_exact_evm_transaction_simulation_failed`.
pub async fn check_onchain_simulated<P: Provider>(
    provider: &P,
    checked: &Checked,
    codes: &PayerCodes,
) -> Result<OnchainFacts, OnchainError> {
    onchain(provider, checked, codes, true).await
}

async fn onchain<P: Provider>(
    provider: &P,
    checked: &Checked,
    codes: &PayerCodes,
    always_simulate: bool,
) -> Result<OnchainFacts, OnchainError> {
    let a = &checked.authorization;
    if checked.needs_wallet_check && !codes.has_code(provider, a.from).await? {
        return Err(OnchainError::Invalid(Reason::Signature));
    }
    let token = TestStablecoin::new(checked.token, provider);
    let used = token.authorizationState(a.from, a.nonce);
    let balance = token.balanceOf(a.from);
    let transfer = token.transferWithAuthorization_0(
        a.from,
        a.to,
        a.value,
        a.validAfter,
        a.validBefore,
        a.nonce,
        checked.signature.clone(),
    );
    let refused = |reason| Err(OnchainError::Invalid(reason));
    if !(always_simulate || checked.needs_wallet_check) {
        let (used, balance) = tokio::join!(used.call(), balance.call());
        if used? {
            return refused(Reason::NonceAlreadyUsed);
        }
        let balance = balance?;
        if balance < a.value {
            return refused(Reason::InsufficientFunds);
        }
        return Ok(OnchainFacts { balance });
    }
    // A transfer that simulates has an unused nonce and a covering balance: the nonce is read only to say why one
    // does not.
    let simulated = async {
        match transfer.call().await {
            Ok(_) => Ok(true),
            // The node answered: the token refused (a revert), whatever its data.
            Err(alloy::contract::Error::TransportError(alloy::transports::RpcError::ErrorResp(_))) => {
                Ok(false)
            }
            Err(err) => Err(err),
        }
    };
    let (balance, simulated) = tokio::join!(balance.call(), simulated);
    let balance = balance?;
    if !simulated? {
        if used.call().await? {
            return refused(Reason::NonceAlreadyUsed);
        }
        if balance < a.value {
            return refused(Reason::InsufficientFunds);
        }
        return refused(if checked.needs_wallet_check {
            Reason::Signature
        } else {
            Reason::SimulationFailed
        });
    }
    Ok(OnchainFacts { balance })
}

/// How long an address seen without code is trusted to stay a plain account. An account can gain code later
/// (a contract deployed to a counterfactual address, an EIP-7702 delegation): until the entry expires such a
/// wallet's payments are refused, never accepted wrongly.
const NO_CODE_TTL: Duration = Duration::from_secs(600);
/// Most addresses [`PayerCodes`] remembers; it starts over when full.
const NO_CODE_CAPACITY: usize = 100_000;

/// Payers recently seen without code, so a forged signature "from" a plain account costs one code lookup at
/// most, and none once the account is known.
#[derive(Debug, Default)]
pub struct PayerCodes {
    without_code: Mutex<HashMap<Address, Instant>>,
}

impl PayerCodes {
    /// Whether `payer` has code: from memory for an account seen without code less than [`NO_CODE_TTL`] ago,
    /// else from the chain.
    pub async fn has_code<P: Provider>(&self, provider: &P, payer: Address) -> Result<bool, OnchainError> {
        let known = {
            let seen = self.without_code.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            seen.get(&payer).is_some_and(|at| at.elapsed() < NO_CODE_TTL)
        };
        if known {
            return Ok(false);
        }
        let code = provider
            .get_code_at(payer)
            .await
            .map_err(|e| OnchainError::Rpc(alloy::contract::Error::TransportError(e)))?;
        if code.is_empty() {
            let mut seen = self.without_code.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if seen.len() >= NO_CODE_CAPACITY {
                seen.clear();
            }
            seen.insert(payer, Instant::now());
        }
        Ok(!code.is_empty())
    }
}

/// Why [`check_onchain`] did not accept a payment.
#[derive(Debug, thiserror::Error)]
pub enum OnchainError {
    /// The payment is invalid.
    #[error("{0}")]
    Invalid(Reason),
    /// The chain could not be asked; the payment is neither accepted nor refused.
    #[error("cannot read the token: {0}")]
    Rpc(#[from] alloy::contract::Error),
}

/// The EIP-712 digest of `authorization` in the domain whose separator is given.
fn signing_hash(domain_separator: B256, authorization: &TransferWithAuthorization) -> B256 {
    let mut buf = [0u8; 66];
    buf[0] = 0x19;
    buf[1] = 0x01;
    buf[2..34].copy_from_slice(domain_separator.as_slice());
    buf[34..].copy_from_slice(authorization.eip712_hash_struct().as_slice());
    keccak256(buf)
}

/// The EIP-712 domain of `token` on `chain_id`, for signing in tests and tools.
pub fn domain_of(token: &Token, chain_id: u64) -> Eip712Domain {
    token_domain(token.name.clone(), token.version.clone(), chain_id, token.address)
}
