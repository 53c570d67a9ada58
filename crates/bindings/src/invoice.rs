//! Invoice identifiers, derived exactly as `X402Payment` derives them.

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::sol_types::SolValue;

/// The id of the invoice `payee` creates with `salt`: `keccak256(abi.encode(payee, salt))`.
pub fn invoice_id(payee: Address, salt: B256) -> B256 {
    keccak256((payee, salt).abi_encode())
}

/// The EIP-3009 nonce a payer signs to pay `invoice_id` with `payWithAuthorization` on the `X402Payment` at
/// `contract` on `chain_id`: `keccak256(abi.encode(chainId, contract, invoiceId))`. It binds one signature to one
/// invoice of one deployment on one chain.
pub fn authorization_nonce(chain_id: u64, contract: Address, invoice_id: B256) -> B256 {
    keccak256((U256::from(chain_id), contract, invoice_id).abi_encode())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{address, b256};

    #[test]
    fn ids_differ_per_payee_and_salt() {
        let a = address!("0x00000000000000000000000000000000000000aa");
        let b = address!("0x00000000000000000000000000000000000000bb");
        let salt = b256!("0x0000000000000000000000000000000000000000000000000000000000000001");
        assert_ne!(invoice_id(a, salt), invoice_id(b, salt));
        assert_ne!(invoice_id(a, salt), invoice_id(a, B256::ZERO));
    }

    #[test]
    fn nonce_depends_on_chain_contract_and_invoice() {
        let contract = address!("0x00000000000000000000000000000000000000cc");
        let id = B256::repeat_byte(7);
        let nonce = authorization_nonce(84532, contract, id);
        assert_ne!(nonce, authorization_nonce(8453, contract, id));
        assert_ne!(nonce, authorization_nonce(84532, Address::ZERO, id));
        assert_ne!(nonce, authorization_nonce(84532, contract, B256::ZERO));
    }
}
