//! ERC-1271 signature checks of contract wallets, asked the way PaymentChannel asks them when it verifies a
//! voucher: `isValidSignature(digest, signature)` with a fixed gas budget, approved only if the first returned
//! word is the function's selector followed by zeros.

use alloy::primitives::{Address, B256, Bytes};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;
use alloy::transports::{RpcError, TransportError};

alloy::sol! {
    /// The ERC-1271 interface.
    interface IERC1271 {
        function isValidSignature(bytes32 hash, bytes signature) external view returns (bytes4 magicValue);
    }
}

/// Whether the contract at `wallet` approves `signature` over `digest`, given `gas` for the call. An account
/// without code approves nothing; a wallet that reverts, runs out of gas or answers anything but the magic
/// value refuses. Only a failure to reach the chain is an error.
pub async fn approves(
    provider: &DynProvider,
    wallet: Address,
    digest: B256,
    signature: &Bytes,
    gas: u64,
) -> Result<bool, TransportError> {
    if provider.get_code_at(wallet).await?.is_empty() {
        return Ok(false);
    }
    let input = IERC1271::isValidSignatureCall { hash: digest, signature: signature.clone() }.abi_encode();
    let call = TransactionRequest::default().to(wallet).input(input.into()).gas_limit(gas);
    match provider.call(call).await {
        Ok(answer) => Ok(is_magic(&answer)),
        // The node ran the call and it failed (revert, out of gas): the wallet's refusal.
        Err(RpcError::ErrorResp(_)) => Ok(false),
        Err(err) => Err(err),
    }
}

/// `answer`'s first word is `isValidSignature`'s selector, left-aligned, and zeros (what PaymentChannel and
/// OpenZeppelin's SignatureChecker require; extra return data is ignored as they ignore it).
fn is_magic(answer: &[u8]) -> bool {
    let Some(word) = answer.get(..32) else { return false };
    word[..4] == IERC1271::isValidSignatureCall::SELECTOR && word[4..].iter().all(|b| *b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_selector_padded_with_zeros_is_an_approval() {
        let mut word = [0u8; 32];
        word[..4].copy_from_slice(&[0x16, 0x26, 0xba, 0x7e]);
        assert!(is_magic(&word));
        assert!(is_magic(&[word.as_slice(), &[0xff; 32]].concat()), "extra words are ignored");
        assert!(!is_magic(&word[..31]), "short answers are refusals");
        assert!(!is_magic(&word[..4]), "an unpadded selector is a refusal");
        let mut dirty = word;
        dirty[31] = 1;
        assert!(!is_magic(&dirty), "dirty padding is a refusal");
        assert!(!is_magic(&[0u8; 32]));
    }
}
