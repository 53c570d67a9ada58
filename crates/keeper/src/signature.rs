//! Recovering who signed a digest, by the rule the contracts apply: a 65-byte ECDSA signature with a low `s` (EIP-2)
//! and `v` 27 or 28, as USDC's `v, r, s` path and PaymentChannel accept it. Recovery uses libsecp256k1, about 5x
//! faster than the pure-Rust default; the intake recovers one signer per payment, the channel job one per voucher.

use alloy::primitives::{Address, B256, U256, keccak256, uint};

/// Half the secp256k1 group order: EIP-2 (and USDC) reject signatures with a larger `s`.
const SECP256K1N_HALF: U256 = uint!(0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0_U256);

/// The signer of a 65-byte low-s ECDSA signature with v = 27 or 28 (what USDC's v/r/s path accepts), if it is
/// one.
pub fn ecdsa_signer(signature: &[u8], digest: B256) -> Option<Address> {
    use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
    if signature.len() != 65 {
        return None;
    }
    if U256::from_be_slice(&signature[32..64]) > SECP256K1N_HALF {
        return None;
    }
    let v = match signature[64] {
        27 | 28 => signature[64] - 27,
        _ => return None,
    };
    let recovery_id = RecoveryId::try_from(i32::from(v)).ok()?;
    let recoverable = RecoverableSignature::from_compact(&signature[..64], recovery_id).ok()?;
    let message = secp256k1::Message::from_digest(digest.0);
    let key = secp256k1::SECP256K1.recover_ecdsa(message, &recoverable).ok()?;
    let uncompressed = key.serialize_uncompressed();
    Some(Address::from_slice(&keccak256(&uncompressed[1..])[12..]))
}
