//! Payment-channel vouchers: the EIP-712 message a payer signs off-chain for each payment on a channel, carrying
//! the cumulative amount owed, and the channel ids PaymentChannel derives.

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::signers::Signer;
use alloy::sol_types::{Eip712Domain, SolValue};

alloy::sol! {
    /// `Voucher`: the payer owes `amount` in total on `channelId`. A later voucher supersedes an earlier one;
    /// the recipient only ever needs the highest.
    #[derive(Debug, PartialEq, Eq)]
    struct Voucher {
        bytes32 channelId;
        uint256 amount;
    }
}

/// EIP-712 domain name of PaymentChannel.
pub const DOMAIN_NAME: &str = "x402 PaymentChannel";
/// EIP-712 domain version of PaymentChannel.
pub const DOMAIN_VERSION: &str = "1";

/// The voucher domain of the PaymentChannel proxy at `channels` on `chain_id`.
pub fn domain(chain_id: u64, channels: Address) -> Eip712Domain {
    Eip712Domain::new(
        Some(DOMAIN_NAME.into()),
        Some(DOMAIN_VERSION.into()),
        Some(U256::from(chain_id)),
        Some(channels),
        None,
    )
}

/// The id of `payer`'s channel opened with `salt`: `keccak256(abi.encode(payer, salt))`.
pub fn channel_id(payer: Address, salt: B256) -> B256 {
    keccak256((payer, salt).abi_encode())
}

/// Signs a voucher for `amount` in total on `channel_id`; returns the 65-byte `r || s || v` signature
/// (low-s, v = 27 or 28) that `claim`, `claimBatch` and `close` take.
pub async fn sign<S: Signer + Sync>(
    signer: &S,
    domain: &Eip712Domain,
    channel_id: B256,
    amount: U256,
) -> Result<Bytes, alloy::signers::Error> {
    let voucher = Voucher { channelId: channel_id, amount };
    let signature = signer.sign_typed_data(&voucher, domain).await?;
    Ok(Bytes::copy_from_slice(&signature.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::address;
    use alloy::sol_types::SolStruct;

    #[test]
    fn type_string_matches_the_contract() {
        assert_eq!(Voucher::eip712_encode_type(), "Voucher(bytes32 channelId,uint256 amount)");
    }

    #[test]
    fn channel_id_is_the_abi_encoded_hash() {
        let payer = address!("0x00000000000000000000000000000000000000aa");
        let mut encoded = [0u8; 64];
        encoded[12..32].copy_from_slice(payer.as_slice());
        encoded[63] = 1;
        assert_eq!(channel_id(payer, B256::with_last_byte(1)), keccak256(encoded));
    }
}
