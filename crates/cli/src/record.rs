//! The deployment record, `deployments/<network>.json`: what was deployed where, by which transactions, with
//! which settings, and every transaction's state so that an interrupted run resumes without sending anything
//! twice. It is rewritten atomically (temporary file, fsync, rename) after every state change.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use alloy::primitives::{Address, B256, Bytes};
use eyre::WrapErr;
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::layout::Namespaces;
use crate::network::Network;

/// The whole record.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Record {
    pub(crate) network: Network,
    pub(crate) chain_id: u64,
    pub(crate) deployer: Address,
    /// `git rev-parse HEAD` of the project when the record was created ("unknown" outside a checkout).
    pub(crate) git_commit: String,
    /// Unix seconds.
    pub(crate) created_at: u64,
    pub(crate) updated_at: u64,
    pub(crate) settings: Settings,
    /// Set for deterministic deployments through the CREATE2 deployer (`--create2-salt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) create2_salt: Option<B256>,
    pub(crate) token: Token,
    /// Per contract name: its proxy and implementation, once deployed.
    pub(crate) contracts: BTreeMap<String, Contract>,
    /// Every transaction of the deployment, in plan order.
    pub(crate) steps: Vec<Step>,
    /// Implementation changes made after the deployment, oldest first.
    pub(crate) upgrades: Vec<Upgrade>,
}

/// The stablecoin the contracts accept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Token {
    /// Unknown until a `local` deployment has deployed its TestStablecoin.
    pub(crate) address: Option<Address>,
    /// Deployed by this deployment (only on `local`).
    pub(crate) test_token: bool,
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) decimals: u8,
}

/// One upgradeable contract.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Contract {
    pub(crate) proxy: Option<Deployed>,
    pub(crate) implementation: Option<Deployed>,
    /// The `initialize` call data the proxy's constructor ran.
    pub(crate) init_data: Option<Bytes>,
    /// The ERC-7201 storage layout of the current implementation, which an upgrade must extend.
    #[serde(default)]
    pub(crate) layout: Option<Namespaces>,
    /// keccak256 of the current implementation's creation code (its runtime code embeds its own address).
    #[serde(default)]
    pub(crate) creation_code_hash: Option<B256>,
}

/// A contract creation.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Deployed {
    pub(crate) address: Address,
    pub(crate) tx_hash: B256,
    pub(crate) block: u64,
    /// keccak256 of the runtime code found at `address` right after deployment.
    pub(crate) code_hash: B256,
}

/// State of one transaction of the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum StepState {
    /// Signed and stored, possibly broadcast; the outcome is not known yet.
    Sent,
    /// Mined and successful.
    Done,
    /// Mined and reverted; the next run sends a new transaction.
    Reverted,
    /// A deterministic (CREATE2) contract already at its address; nothing was sent.
    Found,
}

impl StepState {
    /// Whether the step needs nothing more.
    pub(crate) fn is_complete(self) -> bool {
        matches!(self, Self::Done | Self::Found)
    }
}

/// One transaction of the plan.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Step {
    /// The plan step, e.g. `X402Payment.proxy` or `RevenueSplitter.setRegistry`.
    pub(crate) id: String,
    pub(crate) state: StepState,
    pub(crate) nonce: u64,
    pub(crate) tx_hash: B256,
    /// The signed transaction, kept until it is mined so that a resumed run re-broadcasts the very same one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) raw: Option<Bytes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) block: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) gas_used: Option<u64>,
    /// The created contract, for deployments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) address: Option<Address>,
}

/// One implementation change.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Upgrade {
    pub(crate) contract: String,
    pub(crate) from: Address,
    pub(crate) to: Deployed,
    pub(crate) tx_hash: B256,
    pub(crate) block: u64,
    pub(crate) timestamp: u64,
}

impl Record {
    /// The record file of `network` in `dir`.
    pub(crate) fn path(dir: &Path, network: Network) -> PathBuf {
        dir.join(format!("{}.json", network.name()))
    }

    /// Reads the record at `path`, `None` if there is none.
    pub(crate) fn load(path: &Path) -> eyre::Result<Option<Self>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err).wrap_err_with(|| format!("cannot read record {}", path.display())),
        };
        serde_json::from_str(&text)
            .map(Some)
            .wrap_err_with(|| format!("record {} is not valid", path.display()))
    }

    /// Writes the record to `path` atomically: a crash leaves either the old or the new record, never a mix.
    pub(crate) fn save(&mut self, path: &Path) -> eyre::Result<()> {
        self.updated_at = now();
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).wrap_err_with(|| format!("cannot create {}", dir.display()))?;
        let mut file = tempfile::NamedTempFile::new_in(dir)
            .wrap_err_with(|| format!("cannot write a temporary file in {}", dir.display()))?;
        serde_json::to_writer_pretty(&mut file, self)?;
        file.write_all(b"\n")?;
        file.as_file().sync_all()?;
        file.persist(path).wrap_err_with(|| format!("cannot write record {}", path.display()))?;
        // The rename itself is durable only once the directory is synced.
        if let Ok(handle) = std::fs::File::open(dir) {
            handle.sync_all().ok();
        }
        Ok(())
    }

    /// Refuses an RPC on another chain than the record's.
    pub(crate) fn check_chain(&self, path: &Path, chain_id: u64) -> eyre::Result<()> {
        if self.chain_id != chain_id {
            eyre::bail!(
                "record {} is for chain {}, the RPC is chain {chain_id}",
                path.display(),
                self.chain_id
            );
        }
        Ok(())
    }

    /// Refuses a key other than the one that made the record.
    pub(crate) fn check_deployer(&self, path: &Path, deployer: Address) -> eyre::Result<()> {
        if self.deployer != deployer {
            eyre::bail!(
                "record {} was made by deployer {}; this key is {deployer}",
                path.display(),
                self.deployer
            );
        }
        Ok(())
    }

    /// The recorded step `id`, if any.
    pub(crate) fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|step| step.id == id)
    }

    /// Replaces or appends the step with the same id.
    pub(crate) fn put_step(&mut self, step: Step) {
        match self.steps.iter_mut().find(|s| s.id == step.id) {
            Some(slot) => *slot = step,
            None => self.steps.push(step),
        }
    }

    /// The proxy address of `contract`, once deployed.
    pub(crate) fn proxy(&self, contract: &str) -> Option<Address> {
        self.contracts.get(contract)?.proxy.as_ref().map(|d| d.address)
    }

    /// The implementation address of `contract`, once deployed.
    pub(crate) fn implementation(&self, contract: &str) -> Option<Address> {
        self.contracts.get(contract)?.implementation.as_ref().map(|d| d.address)
    }
}

/// Unix seconds now.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The project's commit, or "unknown".
pub(crate) fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}
