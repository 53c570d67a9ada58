//! Why a deployer operation failed: a chain request, a contract call, a file, a document, the settings, signing,
//! or a check that refuses to go on (the message says what is wrong and what to do). Sources are kept.

use alloy::network::{Ethereum, TransactionBuilderError};
use alloy::transports::TransportError;
use x402_chain::ChainError;

/// A deployer error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A chain request failed.
    #[error("{what}")]
    Chain {
        /// What was asked.
        what: String,
        /// Why it failed.
        source: Box<ChainError>,
    },
    /// A contract call failed.
    #[error("{what}")]
    Call {
        /// What was called.
        what: String,
        /// Why it failed.
        source: Box<alloy::contract::Error>,
    },
    /// A file could not be read or written.
    #[error("{what}")]
    Io {
        /// Which file, and what was done with it.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A JSON document is not what this version reads or writes.
    #[error("{what}")]
    Json {
        /// Which document.
        what: String,
        /// What is wrong with it.
        source: serde_json::Error,
    },
    /// The transaction could not be signed.
    #[error("cannot sign the transaction")]
    Sign(#[source] Box<TransactionBuilderError<Ethereum>>),
    /// A step of the plan failed.
    #[error("{id}: {what}")]
    Step {
        /// The step.
        id: String,
        /// What failed.
        what: &'static str,
        /// Why.
        source: Box<Error>,
    },
    /// A check refused to go on.
    #[error("{0}")]
    Refused(String),
}

/// A deployer result.
pub type Result<T> = std::result::Result<T, Error>;

/// Returns early with [`Error::Refused`] and a formatted message.
macro_rules! refuse {
    ($($arg:tt)*) => {
        return Err($crate::deployer::Error::Refused(format!($($arg)*)))
    };
}
pub(crate) use refuse;

/// Attaches what was being done to an error, turning it into an [`Error`].
pub(crate) trait Describe<T> {
    /// The error, described by `what`.
    fn describe(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Describe<T> for std::result::Result<T, ChainError> {
    fn describe(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Chain { what: what(), source: Box::new(source) })
    }
}

impl<T> Describe<T> for std::result::Result<T, TransportError> {
    fn describe(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|err| Error::Chain { what: what(), source: Box::new(err.into()) })
    }
}

impl<T> Describe<T> for std::result::Result<T, alloy::contract::Error> {
    fn describe(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Call { what: what(), source: Box::new(source) })
    }
}

impl<T> Describe<T> for std::result::Result<T, std::io::Error> {
    fn describe(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io { what: what(), source })
    }
}

impl<T> Describe<T> for std::result::Result<T, serde_json::Error> {
    fn describe(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Json { what: what(), source })
    }
}
