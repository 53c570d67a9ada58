//! EIP-3009 authorizations as x402 `exact` payloads carry them, signed with the EIP-712 type strings and domain
//! USDC (FiatTokenV2_2) verifies.

use alloy::primitives::{Address, Bytes, U256};
use alloy::signers::Signer;
use alloy::sol_types::{Eip712Domain, SolStruct};

use crate::IX402Payment;

alloy::sol! {
    /// `TransferWithAuthorization`: the signed message of an x402 `exact` payment; anyone may submit it.
    #[derive(Debug, PartialEq, Eq)]
    struct TransferWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }

    /// `ReceiveWithAuthorization`: like a transfer authorization, but only `to` may submit it. X402Payment's
    /// `payWithAuthorization` takes this form so that the payment cannot be front-run into a bare transfer.
    #[derive(Debug, PartialEq, Eq)]
    struct ReceiveWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }
}

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The signer refused or failed to sign.
    #[error("signing the EIP-3009 authorization failed: {0}")]
    Signing(#[from] alloy::signers::Error),
    /// The signer's address is not the authorization's `from`.
    #[error("signer {signer} cannot sign for {from}")]
    WrongSigner {
        /// The signer's address.
        signer: Address,
        /// The authorization's `from`.
        from: Address,
    },
}

/// The EIP-712 domain of an EIP-3009 token. `name` and `version` must be what the token itself reports
/// (`name()`, `version()`; USDC on Base Sepolia: "USDC" and "2"), never a guess from configuration.
pub fn token_domain(name: String, version: String, chain_id: u64, token: Address) -> Eip712Domain {
    Eip712Domain::new(Some(name.into()), Some(version.into()), Some(U256::from(chain_id)), Some(token), None)
}

/// An EIP-3009 message: its signer must be its `from`.
pub trait Authorization: SolStruct + Send + Sync {
    /// The account whose tokens move, and who must sign.
    fn from(&self) -> Address;
}

impl Authorization for TransferWithAuthorization {
    fn from(&self) -> Address {
        self.from
    }
}

impl Authorization for ReceiveWithAuthorization {
    fn from(&self) -> Address {
        self.from
    }
}

/// Signs a transfer or receive authorization; returns the 65-byte `r || s || v` signature (v = 27 or 28) that
/// x402 payloads carry and USDC's v/r/s overloads take. Refuses to sign for anyone but the signer.
pub async fn sign<S, A>(signer: &S, domain: &Eip712Domain, authorization: &A) -> Result<Bytes, Error>
where
    S: Signer + Sync,
    A: Authorization,
{
    let (signer_address, from) = (signer.address(), authorization.from());
    if signer_address != from {
        return Err(Error::WrongSigner { signer: signer_address, from });
    }
    let signature = signer.sign_typed_data(authorization, domain).await?;
    Ok(Bytes::copy_from_slice(&signature.as_bytes()))
}

impl TransferWithAuthorization {
    /// The item `X402Payment.settleBatch` takes for this authorization and its signature.
    pub fn into_batch_item(self, signature: Bytes) -> IX402Payment::TransferAuthorization {
        IX402Payment::TransferAuthorization {
            from: self.from,
            to: self.to,
            value: self.value,
            validAfter: self.validAfter,
            validBefore: self.validBefore,
            nonce: self.nonce,
            signature,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{B256, address, keccak256};

    #[test]
    fn type_strings_match_usdc() {
        assert_eq!(
            TransferWithAuthorization::eip712_encode_type(),
            "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
        );
        assert_eq!(
            ReceiveWithAuthorization::eip712_encode_type(),
            "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
        );
        // The constants TestStablecoin (and USDC) hash these strings to.
        assert_eq!(
            keccak256(TransferWithAuthorization::eip712_encode_type().as_bytes()),
            alloy::primitives::b256!("0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267")
        );
    }

    #[tokio::test]
    async fn refuses_to_sign_for_someone_else() {
        let signer = alloy::signers::local::PrivateKeySigner::random();
        let authorization = TransferWithAuthorization {
            from: address!("0x00000000000000000000000000000000000000aa"),
            to: Address::ZERO,
            value: U256::from(1),
            validAfter: U256::ZERO,
            validBefore: U256::MAX,
            nonce: B256::ZERO,
        };
        let domain = token_domain("USDC".into(), "2".into(), 1, Address::ZERO);
        let err = sign(&signer, &domain, &authorization).await.unwrap_err();
        assert!(matches!(err, Error::WrongSigner { .. }));
    }
}
