//! What the client may pay: a cap per request, networks, tokens and recipients allowed. Dollar caps count every
//! token as a dollar stablecoin with 6 decimals (USDC and the test stablecoin are); a cap in token units
//! (`"50000"`) is compared as is.

use alloy_primitives::{Address, U256};
use x402_protocol::network::NETWORKS;
use x402_protocol::price::Price;

use crate::offer::Candidate;

/// The decimals dollar caps are converted with.
pub const CAP_DECIMALS: u8 = 6;

/// The spend policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The most one request may cost [$1, as the official client].
    pub max_per_request: Price,
    /// The chains it pays on (chain ids); `None`: any chain of an allowed token.
    pub networks: Option<Vec<u64>>,
    /// The tokens it pays in, by chain id [USDC on Base, Base Sepolia, Arbitrum, Arbitrum Sepolia].
    pub assets: Vec<(u64, Address)>,
    /// Who it pays; `None`: anyone.
    pub recipients: Option<Vec<Address>>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_per_request: Price::Usd("1".to_owned()),
            networks: None,
            assets: NETWORKS.iter().filter_map(|n| Some((n.chain_id?, n.usdc?))).collect(),
            recipients: None,
        }
    }
}

impl Policy {
    /// Also pays in `token` on `chain_id`.
    pub fn allow_asset(mut self, chain_id: u64, token: Address) -> Self {
        self.assets.push((chain_id, token));
        self
    }

    /// Caps one request at `price`.
    pub fn max_per_request(mut self, price: Price) -> Self {
        self.max_per_request = price;
        self
    }

    /// Pays only on these chains.
    pub fn networks(mut self, chain_ids: Vec<u64>) -> Self {
        self.networks = Some(chain_ids);
        self
    }

    /// Pays only these recipients.
    pub fn recipients(mut self, recipients: Vec<Address>) -> Self {
        self.recipients = Some(recipients);
        self
    }

    /// The most one request may cost, in the units of a 6-decimal token (the cap's units).
    pub fn cap(&self) -> Result<U256, x402_protocol::price::PriceError> {
        self.max_per_request.to_atomic(CAP_DECIMALS)
    }

    /// The amount `candidate` costs if the policy allows it; otherwise why not.
    pub fn allows(&self, candidate: &Candidate) -> Result<U256, String> {
        let r = &candidate.requirement;
        if r.scheme != "exact" && r.scheme != x402_protocol::channel::SCHEME {
            return Err(format!("scheme {:?} is not supported (only exact and channel)", r.scheme));
        }
        let Some(chain_id) = candidate.chain_id else {
            return Err(format!("network {} is not an EVM network this client knows", candidate.network));
        };
        if self.networks.as_ref().is_some_and(|allowed| !allowed.contains(&chain_id)) {
            return Err(format!("network {} is not allowed", candidate.network));
        }
        let asset: Address = r.asset.parse().map_err(|_| format!("asset {} is not an address", r.asset))?;
        if !self.assets.contains(&(chain_id, asset)) {
            return Err(format!("token {asset} on {} is not allowed", candidate.network));
        }
        let pay_to: Address =
            r.pay_to.parse().map_err(|_| format!("payTo {} is not an address", r.pay_to))?;
        if self.recipients.as_ref().is_some_and(|allowed| !allowed.contains(&pay_to)) {
            return Err(format!("recipient {pay_to} is not allowed"));
        }
        let amount = x402_protocol::parse_amount(&r.amount)
            .ok_or_else(|| format!("amount {:?} is not a decimal number", r.amount))?;
        let cap = self.max_per_request.to_atomic(CAP_DECIMALS).map_err(|e| format!("the cap: {e}"))?;
        if amount > cap {
            return Err(format!("{amount} is more than the cap of {cap} per request"));
        }
        if amount.is_zero() {
            return Err("a price of zero is not a payment".to_owned());
        }
        Ok(amount)
    }
}

#[cfg(test)]
mod tests {
    use x402_protocol::v2::PaymentRequirements;

    use super::*;

    fn candidate(chain_id: u64, asset: &str, amount: &str) -> Candidate {
        Candidate {
            version: 2,
            requirement: PaymentRequirements {
                scheme: "exact".into(),
                network: format!("eip155:{chain_id}"),
                amount: amount.into(),
                asset: asset.into(),
                pay_to: "0x00000000000000000000000000000000000000aa".into(),
                max_timeout_seconds: 60,
                extra: None,
            },
            network: format!("eip155:{chain_id}"),
            chain_id: Some(chain_id),
        }
    }

    #[test]
    fn usdc_up_to_a_dollar_by_default_and_nothing_else() {
        const USDC: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
        let policy = Policy::default();
        assert_eq!(policy.allows(&candidate(84532, USDC, "1000000")), Ok(U256::from(1_000_000)));
        assert!(policy.allows(&candidate(84532, USDC, "1000001")).unwrap_err().contains("cap"));
        assert!(policy.allows(&candidate(84532, USDC, "0")).is_err());
        let local = "0x00000000000000000000000000000000000000bb";
        assert!(policy.allows(&candidate(31337, local, "1")).unwrap_err().contains("not allowed"));
        let token: Address = local.parse().unwrap();
        let policy = policy.allow_asset(31337, token).max_per_request(Price::parse("500").unwrap());
        assert!(policy.allows(&candidate(31337, local, "500")).is_ok());
        assert!(policy.allows(&candidate(31337, local, "501")).is_err());
        let policy = policy.recipients(vec![Address::ZERO]);
        assert!(policy.allows(&candidate(31337, local, "5")).unwrap_err().contains("recipient"));
        let mut other = candidate(84532, USDC, "1");
        other.requirement.scheme = "upto".into();
        assert!(Policy::default().allows(&other).unwrap_err().contains("scheme"));
        assert!(Policy::default().networks(vec![8453]).allows(&candidate(84532, USDC, "1")).is_err());
    }
}
