//! The total a client may spend per period, kept in a small JSON file so separate runs (`x402 pay` after
//! `x402 pay`) share it. A payment counts from the moment it is signed: a signed authorization can be settled by
//! whoever holds it, so it is spent whether or not the server serves the request.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy_primitives::{Address, U256};
use serde::{Deserialize, Serialize};
use x402_protocol::price::Price;

use crate::policy::CAP_DECIMALS;

/// A budget: at most `limit` per `period`, per token.
#[derive(Clone, Debug)]
pub struct Budget {
    /// The total per period and token.
    pub limit: Price,
    /// The period; a new one starts when it has passed.
    pub period: Duration,
    /// The file the totals are kept in.
    pub file: PathBuf,
}

/// Why a ledger could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Reading, locking or writing the file failed.
    #[error("the spend ledger {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a ledger.
    #[error("the spend ledger {path} is not one: {source}")]
    Format {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The limit is not a usable amount.
    #[error("the budget: {0}")]
    Limit(#[from] x402_protocol::price::PriceError),
}

#[derive(Debug, Serialize, Deserialize)]
struct Totals {
    /// Unix second the period started at.
    period_start: u64,
    /// Spent in this period, by `eip155:<chain id>/<token>` (lowercase token address).
    spent: BTreeMap<String, String>,
}

/// What a budget spent and has left of one token in the current period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spent {
    /// Spent this period.
    pub spent: U256,
    /// Left this period.
    pub left: U256,
    /// The limit per period.
    pub limit: U256,
    /// Unix second the period started at (`now` when nothing was spent yet).
    pub period_start: u64,
}

impl Budget {
    /// What was spent and is left of `token` on `chain_id` in the period running at Unix second `now`.
    pub fn spent(&self, chain_id: u64, token: Address, now: u64) -> Result<Spent, LedgerError> {
        let limit = self.limit.to_atomic(CAP_DECIMALS)?;
        let io = |source| LedgerError::Io { path: self.file.clone(), source };
        let text = match std::fs::read_to_string(&self.file) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(err) => return Err(io(err)),
        };
        let totals = self.current(&text, now)?;
        let spent = totals.spent.get(&key(chain_id, token)).and_then(|s| x402_protocol::parse_amount(s));
        let spent = spent.unwrap_or_default();
        Ok(Spent { spent, left: limit.saturating_sub(spent), limit, period_start: totals.period_start })
    }

    /// The totals of the period running at `now`, from the file's `text`.
    fn current(&self, text: &str, now: u64) -> Result<Totals, LedgerError> {
        let totals: Totals = if text.trim().is_empty() {
            Totals { period_start: now, spent: BTreeMap::new() }
        } else {
            serde_json::from_str(text)
                .map_err(|source| LedgerError::Format { path: self.file.clone(), source })?
        };
        // A clock set back does not start a new period.
        if now.saturating_sub(totals.period_start) >= self.period.as_secs() {
            return Ok(Totals { period_start: now, spent: BTreeMap::new() });
        }
        Ok(totals)
    }

    /// Counts `amount` of `token` on `chain_id` at Unix second `now` if it fits; `Ok(Err(left))` says how much is
    /// left when it does not.
    pub fn spend(
        &self,
        chain_id: u64,
        token: Address,
        amount: U256,
        now: u64,
    ) -> Result<Result<(), U256>, LedgerError> {
        let limit = self.limit.to_atomic(CAP_DECIMALS)?;
        let io = |source| LedgerError::Io { path: self.file.clone(), source };
        // Runs of the client share the file: one at a time, under a lock on a file beside it.
        let lock = open(&with_suffix(&self.file, ".lock")).map_err(io)?;
        lock.lock().map_err(io)?;
        let text = match std::fs::read_to_string(&self.file) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(err) => return Err(io(err)),
        };
        let mut totals = self.current(&text, now)?;
        let key = key(chain_id, token);
        let spent = totals.spent.get(&key).and_then(|s| x402_protocol::parse_amount(s)).unwrap_or_default();
        let total = spent.saturating_add(amount);
        if total > limit {
            return Ok(Err(limit.saturating_sub(spent)));
        }
        totals.spent.insert(key, total.to_string());
        let json = serde_json::to_vec_pretty(&totals).unwrap_or_default();
        // Written beside and renamed over: a crash leaves the old totals or the new, never none.
        let temporary = with_suffix(&self.file, ".tmp");
        let mut file = File::create(&temporary).map_err(io)?;
        file.write_all(&json).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&temporary, &self.file).map_err(io)?;
        Ok(Ok(()))
    }
}

/// The totals' key of `token` on `chain_id`.
fn key(chain_id: u64, token: Address) -> String {
    format!("eip155:{chain_id}/{token:#x}")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn open(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_holds_across_runs_and_resets_each_period() {
        let dir = tempfile::tempdir().unwrap();
        let budget = Budget {
            limit: Price::parse("$0.01").unwrap(),
            period: Duration::from_secs(3600),
            file: dir.path().join("l.json"),
        };
        let token = Address::repeat_byte(0xab);
        assert_eq!(budget.spend(1, token, U256::from(6000), 100).unwrap(), Ok(()));
        let again = Budget { ..budget.clone() };
        assert_eq!(again.spend(1, token, U256::from(6000), 200).unwrap(), Err(U256::from(4000)));
        assert_eq!(again.spend(2, token, U256::from(6000), 200).unwrap(), Ok(()), "per network and token");
        assert_eq!(again.spend(1, token, U256::from(4000), 300).unwrap(), Ok(()));
        let spent = again.spent(1, token, 300).unwrap();
        assert_eq!((spent.spent, spent.left, spent.period_start), (U256::from(10000), U256::ZERO, 100));
        assert_eq!(again.spent(1, token, 3700).unwrap().left, U256::from(10000), "read in a new period");
        assert_eq!(again.spend(1, token, U256::from(1), 3699).unwrap(), Err(U256::ZERO));
        assert_eq!(again.spend(1, token, U256::from(10000), 3700).unwrap(), Ok(()), "a new period");
        std::fs::write(&budget.file, "not json").unwrap();
        assert!(matches!(budget.spend(1, token, U256::from(1), 4000), Err(LedgerError::Format { .. })));
    }
}
