//! The keeper's settings for a deployment: the contracts and the token from its record, the rest from the keeper's
//! file settings. `x402 keeper` and `x402 devnet` both start keepers this way.

use std::path::{Path, PathBuf};

use alloy::primitives::Address;
use x402_bindings::Contract;
use x402_keeper::config::{Contracts, FileSettings, SettingError, Settings};

use crate::deployer::record::Record;

/// Why the keeper's settings could not be made.
#[derive(Debug, thiserror::Error)]
pub enum KeeperSettingsError {
    /// The record could not be read.
    #[error(transparent)]
    Record(#[from] crate::deployer::Error),
    /// There is no record.
    #[error("no deployment record at {}: run `x402 deploy` first", .0.display())]
    NoRecord(PathBuf),
    /// The deployment is unfinished.
    #[error("{} records no {contract} proxy; finish `x402 deploy`", path.display())]
    Unfinished {
        /// The record.
        path: PathBuf,
        /// The contract missing.
        contract: Contract,
    },
    /// The record names no token.
    #[error("{} records no token", .0.display())]
    NoToken(PathBuf),
    /// A setting is out of range.
    #[error(transparent)]
    Setting(#[from] SettingError),
}

/// The contracts a keeper drives and the token it settles, from the record found at `path`.
pub fn contracts_of(record: &Record, path: &Path) -> Result<(Contracts, Address), KeeperSettingsError> {
    let proxy = |contract: Contract| {
        record
            .proxy(contract)
            .ok_or_else(|| KeeperSettingsError::Unfinished { path: path.to_owned(), contract })
    };
    let deployed_block = record
        .contracts
        .get(Contract::PaymentChannel.name())
        .and_then(|c| c.proxy.as_ref())
        .map(|d| d.block)
        .unwrap_or_default();
    let contracts = Contracts {
        x402_payment: proxy(Contract::X402Payment)?,
        subscription: proxy(Contract::Subscription)?,
        payment_channel: proxy(Contract::PaymentChannel)?,
        deployed_block,
    };
    let token = record.token.address.ok_or_else(|| KeeperSettingsError::NoToken(path.to_owned()))?;
    Ok((contracts, token))
}

/// The keeper's settings for the deployment recorded at `path`, from the file settings `file`.
pub fn settings_from_record(
    path: &Path,
    rpc_url: String,
    file: &FileSettings,
) -> Result<Settings, KeeperSettingsError> {
    let Some(record) = Record::load(path)? else {
        return Err(KeeperSettingsError::NoRecord(path.to_owned()));
    };
    let (contracts, token) = contracts_of(&record, path)?;
    Ok(file.resolve(rpc_url, record.chain_id, contracts, vec![token])?)
}
