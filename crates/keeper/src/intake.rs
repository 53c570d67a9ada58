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

/// The chain-free checks for one network.
#[derive(Clone, Debug)]
pub struct Verifier {
    chain_id: u64,
    network_name: Option<&'static str>,
    caip2: String,
    domains: HashMap<Address, B256>,
    safety_margin: u64,
}

impl Verifier {
    /// A verifier for `chain_id` (v2 network `eip155:<chain_id>`; v1 network its v1 name, if it has one), accepting `tokens`, refusing authorizations that expire within `safety_margin` seconds (time for
    /// the batch to be mined).
    pub fn new(chain_id: u64, tokens: &[Token], safety_margin: u64) -> Self {
        let domains = tokens
            .iter()
            .map(|t| {
                (t.address, token_domain(t.name.clone(), t.version.clone(), chain_id, t.address).separator())
            })
            .collect();
        Self {
            chain_id,
            network_name: x402_protocol::network::v1_name(chain_id),
            caip2: x402_protocol::network::caip2(chain_id),
            domains,
            safety_margin,
        }
    }

    /// Checks `request` at chain time `now` (the latest block's timestamp, never the host clock).
    pub fn check(&self, request: &PaymentRequest, now: u64) -> Result<Checked, Reason> {
        let payload = &request.payment_payload;
        let required = &request.payment_requirements;
        if !matches!(request.x402_version, 1 | 2) || payload.x402_version != request.x402_version {
            return Err(Reason::X402Version);
        }
        if required.scheme != "exact" || payload.scheme.as_deref().is_some_and(|s| s != "exact") {
            return Err(Reason::Scheme);
        }
        let network_ok = |network: &str| network == self.caip2 || self.network_name == Some(network);
        if !network_ok(&required.network) || payload.network.as_deref().is_some_and(|n| !network_ok(n)) {
            return Err(Reason::Network);
        }
        if let Some(accepted) = &payload.accepted
            && (accepted.scheme != required.scheme
                || accepted.network != required.network
                || accepted.asset != required.asset
                || accepted.pay_to != required.pay_to
                || accepted.required_amount() != required.required_amount())
        {
            return Err(Reason::Payload);
        }
        let domain_separator = *self.domains.get(&required.asset).ok_or(Reason::Requirements)?;
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
        if authorization.to != required.pay_to {
            return Err(Reason::RecipientMismatch);
        }
        if authorization.value != amount {
            return Err(Reason::ValueMismatch);
        }
        let now = U256::from(now);
        if authorization.validAfter >= now {
            return Err(Reason::ValidAfter);
        }
        if authorization.validBefore <= now + U256::from(self.safety_margin) {
            return Err(Reason::ValidBefore);
        }

        let signature = payload.payload.signature.clone();
        let digest = signing_hash(domain_separator, &authorization);
        let needs_wallet_check = match signature::ecdsa_signer(&signature, digest) {
            Some(signer) if signer == authorization.from => false,
            // A 65-byte signature from another key may still be a contract wallet's approval; anything that is
            // neither is refused here.
            _ if signature.is_empty() => return Err(Reason::Signature),
            _ => true,
        };
        Ok(Checked { token: required.asset, authorization, signature, needs_wallet_check })
    }

    /// The chain id this verifier checks for.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
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
    let a = &checked.authorization;
    if checked.needs_wallet_check && !codes.has_code(provider, a.from).await? {
        return Err(OnchainError::Invalid(Reason::Signature));
    }
    let token = TestStablecoin::new(checked.token, provider);
    let used = token.authorizationState(a.from, a.nonce);
    let balance = token.balanceOf(a.from);
    let (used, balance) = tokio::join!(used.call(), balance.call());
    if used? {
        return Err(OnchainError::Invalid(Reason::NonceAlreadyUsed));
    }
    let balance = balance?;
    if balance < a.value {
        return Err(OnchainError::Invalid(Reason::InsufficientFunds));
    }
    if checked.needs_wallet_check {
        let simulated = token
            .transferWithAuthorization_0(
                a.from,
                a.to,
                a.value,
                a.validAfter,
                a.validBefore,
                a.nonce,
                checked.signature.clone(),
            )
            .call()
            .await;
        if simulated.is_err() {
            return Err(OnchainError::Invalid(Reason::Signature));
        }
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
