//! Why a wallet operation did not happen.

use alloy::primitives::B256;

/// Why a wallet operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// The RPC endpoint cannot be used.
    #[error(transparent)]
    Connect(#[from] x402_chain::rpc::ConnectError),
    /// A read or a send failed at the node.
    #[error("{what}: {source}")]
    Chain {
        /// What was asked.
        what: String,
        /// The node's answer (a revert keeps its data).
        #[source]
        source: Box<alloy::contract::Error>,
    },
    /// The node could not be asked.
    #[error("{what}: {source}")]
    Rpc {
        /// What was asked.
        what: String,
        /// Why.
        #[source]
        source: alloy::transports::TransportError,
    },
    /// A transaction reverted.
    #[error("{what} reverted in {transaction}")]
    Reverted {
        /// What it was.
        what: String,
        /// Its hash.
        transaction: B256,
    },
    /// A transaction was sent and not mined in time.
    #[error("{what} was sent as {transaction} and not mined within {seconds} s: it may still be")]
    NotMined {
        /// What it was.
        what: String,
        /// Its hash.
        transaction: B256,
        /// How long it was waited for.
        seconds: u64,
    },
    /// The request cannot be met (terms of an offer, a channel's state, the wrong chain): says why.
    #[error("{0}")]
    Refused(String),
}

impl WalletError {
    pub(crate) fn chain(what: impl Into<String>) -> impl FnOnce(alloy::contract::Error) -> Self {
        let what = what.into();
        move |source| Self::Chain { what, source: Box::new(source) }
    }

    pub(crate) fn rpc(what: impl Into<String>) -> impl FnOnce(alloy::transports::TransportError) -> Self {
        let what = what.into();
        move |source| Self::Rpc { what, source }
    }
}
