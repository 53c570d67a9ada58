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
    /// The chain's latest block could not be read.
    #[error("cannot read the latest block: {0}")]
    Block(#[from] x402_chain::ChainError),
    /// A transaction was sent and its receipt could not be read: it may be mined.
    #[error(
        "{what} was sent as {transaction} and its receipt could not be read ({message}): it may be mined"
    )]
    Unconfirmed {
        /// What it was.
        what: String,
        /// Its hash.
        transaction: B256,
        /// Why the receipt could not be read.
        message: String,
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
    /// The request is over a limit the caller set (a maximum deposit).
    #[error("{0}")]
    Limit(String),
    /// The request cannot be met (terms of an offer, a channel's state, the wrong chain): says why.
    #[error("{0}")]
    Refused(String),
}

impl WalletError {
    /// The transaction of a send whose outcome is unknown (sent, not confirmed): it may still move funds.
    pub fn unconfirmed(&self) -> Option<B256> {
        match self {
            Self::NotMined { transaction, .. } | Self::Unconfirmed { transaction, .. } => Some(*transaction),
            _ => None,
        }
    }

    pub(crate) fn chain(what: impl Into<String>) -> impl FnOnce(alloy::contract::Error) -> Self {
        let what = what.into();
        move |source| Self::Chain { what, source: Box::new(source) }
    }

    pub(crate) fn rpc(what: impl Into<String>) -> impl FnOnce(alloy::transports::TransportError) -> Self {
        let what = what.into();
        move |source| Self::Rpc { what, source }
    }
}
