//! Chain errors, typed: the transport failed (no answer, a timeout, an HTTP error), the node refused the call
//! (a revert or out of gas, with its payload and revert data), or the node answered something unusable.

use alloy::primitives::Bytes;
use alloy::rpc::json_rpc::ErrorPayload;
use alloy::transports::{RpcError, TransportError, TransportErrorKind};

/// Why a chain request did not give what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The request failed or the node answered with an error that is not the call's.
    #[error("RPC: {0}")]
    Rpc(#[source] TransportError),
    /// The node ran the call and it reverted or ran out of gas: the node's answer, with its revert data.
    #[error("the call reverted: {0}")]
    Reverted(Box<ErrorPayload>),
    /// The node answered, but not with what a node must (no latest block, say).
    #[error("the node answered unusably: {0}")]
    Unusable(String),
}

impl ChainError {
    /// The revert data of a reverted call, for `abi_decode` of the contract's custom errors.
    pub fn revert_data(&self) -> Option<Bytes> {
        match self {
            Self::Reverted(payload) => payload.as_revert_data(),
            _ => None,
        }
    }

    /// Whether the call reverted (or ran out of gas) rather than the request failing.
    pub fn is_revert(&self) -> bool {
        matches!(self, Self::Reverted(_))
    }
}

impl From<TransportError> for ChainError {
    /// An error answer of the node for a call it ran (revert data, or a revert or out-of-gas message) is the
    /// call's; anything else (no answer, a timeout, a node or rate-limit error) is the request's.
    fn from(err: TransportError) -> Self {
        match err {
            RpcError::ErrorResp(payload) if is_call_failure(&payload) => Self::Reverted(Box::new(payload)),
            other => Self::Rpc(other),
        }
    }
}

fn is_call_failure(payload: &ErrorPayload) -> bool {
    // Nodes mark a reverted call with code 3 and its data; anvil and geth write "execution reverted" (with or
    // without data) and "out of gas".
    payload.code == 3 || payload.message.contains("revert") || payload.message.contains("out of gas")
}

/// A transport error carrying only a message, for answers that are not what a node must send.
pub fn unusable(message: impl Into<String>) -> ChainError {
    ChainError::Unusable(message.into())
}

impl From<TransportErrorKind> for ChainError {
    fn from(kind: TransportErrorKind) -> Self {
        Self::Rpc(RpcError::Transport(kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(code: i64, message: &str) -> TransportError {
        RpcError::ErrorResp(ErrorPayload { code, message: message.to_owned().into(), data: None })
    }

    #[test]
    fn the_calls_failures_are_told_apart_from_the_requests() {
        assert!(ChainError::from(answer(3, "execution reverted: custom error")).is_revert());
        assert!(ChainError::from(answer(-32000, "execution reverted")).is_revert());
        assert!(ChainError::from(answer(-32000, "out of gas")).is_revert());
        assert!(!ChainError::from(answer(-32005, "rate limit exceeded")).is_revert());
        assert!(!ChainError::from(TransportErrorKind::custom_str("connection refused")).is_revert());
    }
}
