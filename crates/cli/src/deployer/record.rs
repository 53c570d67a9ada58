//! The deployment record, `deployments/<network>.json`: what was deployed where, by which transactions, with
//! which settings, and every transaction's state so that an interrupted run resumes without sending anything
//! twice. It is rewritten atomically (temporary file, fsync, rename) after every state change.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use alloy::primitives::{Address, B256, Bytes, keccak256};
use serde::{Deserialize, Serialize};
use x402_bindings::Contract as ContractName;

use super::error::{Describe, Result, refuse};
use super::layout::Namespaces;
use super::network::Network;
use super::settings::Settings;

/// The whole record.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Record {
    /// The network.
    pub network: Network,
    /// Its chain id.
    pub chain_id: u64,
    /// Who deployed.
    pub deployer: Address,
    /// `git rev-parse HEAD` of the project when the record was created ("unknown" outside a checkout).
    pub git_commit: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds of the last change.
    pub updated_at: u64,
    /// The settings.
    pub settings: Settings,
    /// Set for deterministic deployments through the CREATE2 deployer (`--create2-salt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create2_salt: Option<B256>,
    /// The token the contracts accept.
    pub token: Token,
    /// Per contract name: its proxy and implementation, once deployed.
    pub contracts: BTreeMap<String, Contract>,
    /// Every transaction of the deployment, in plan order.
    pub steps: Vec<Step>,
    /// Implementation changes made after the deployment, oldest first.
    pub upgrades: Vec<Upgrade>,
}

/// The stablecoin the contracts accept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Token {
    /// Unknown until a `local` deployment has deployed its TestStablecoin.
    pub address: Option<Address>,
    /// Deployed by this deployment (only on `local`).
    pub test_token: bool,
    /// Its EIP-712 domain name.
    pub name: String,
    /// Its EIP-712 domain version.
    pub version: String,
    /// Its decimals.
    pub decimals: u8,
}

/// One upgradeable contract.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Contract {
    /// Its ERC1967 proxy.
    pub proxy: Option<Deployed>,
    /// Its current implementation.
    pub implementation: Option<Deployed>,
    /// The `initialize` call data the proxy's constructor ran.
    pub init_data: Option<Bytes>,
    /// The ERC-7201 storage layout of the current implementation, which an upgrade must extend.
    #[serde(default)]
    pub layout: Option<Namespaces>,
    /// keccak256 of the current implementation's creation code (its runtime code embeds its own address).
    #[serde(default)]
    pub creation_code_hash: Option<B256>,
}

/// A contract creation.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deployed {
    /// Where.
    pub address: Address,
    /// The creating transaction.
    pub tx_hash: B256,
    /// Its block.
    pub block: u64,
    /// keccak256 of the runtime code found at `address` right after deployment.
    pub code_hash: B256,
}

/// State of one transaction of the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StepState {
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
    pub fn is_complete(self) -> bool {
        matches!(self, Self::Done | Self::Found)
    }
}

/// One transaction of the plan.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Step {
    /// The plan step, e.g. `X402Payment.proxy` or `RevenueSplitter.setRegistry`.
    pub id: String,
    /// Where it is.
    pub state: StepState,
    /// The deployer's nonce it uses.
    pub nonce: u64,
    /// The creating transaction.
    pub tx_hash: B256,
    /// The signed transaction, kept until it is mined so that a resumed run re-broadcasts the very same one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<Bytes>,
    /// The block that mined it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<u64>,
    /// The gas it used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gas_used: Option<u64>,
    /// The created contract, for deployments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
}

/// One implementation change.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Upgrade {
    /// The contract.
    pub contract: String,
    /// The implementation it ran.
    pub from: Address,
    /// The one it runs now.
    pub to: Deployed,
    /// The creating transaction.
    pub tx_hash: B256,
    /// Its block.
    pub block: u64,
    /// Unix seconds.
    pub timestamp: u64,
}

impl Record {
    /// The record file of `network` in `dir`.
    pub fn path(dir: &Path, network: Network) -> PathBuf {
        dir.join(format!("{}.json", network.name()))
    }

    /// Reads the record at `path`, `None` if there is none.
    pub fn load(path: &Path) -> Result<Option<Self>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err).describe(|| format!("cannot read record {}", path.display())),
        };
        serde_json::from_str(&text).map(Some).describe(|| format!("record {} is not valid", path.display()))
    }

    /// Writes the record to `path` atomically: a crash leaves either the old or the new record, never a mix.
    pub fn save(&mut self, path: &Path) -> Result<()> {
        self.updated_at = now();
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).describe(|| format!("cannot create {}", dir.display()))?;
        let writing = || format!("cannot write record {}", path.display());
        let mut file = tempfile::NamedTempFile::new_in(dir)
            .describe(|| format!("cannot write a temporary file in {}", dir.display()))?;
        serde_json::to_writer_pretty(&mut file, self).describe(writing)?;
        file.write_all(b"\n").describe(writing)?;
        file.as_file().sync_all().describe(writing)?;
        file.persist(path).map_err(|err| err.error).describe(writing)?;
        // The rename itself is durable only once the directory is synced.
        if let Ok(handle) = std::fs::File::open(dir) {
            handle.sync_all().ok();
        }
        Ok(())
    }

    /// Refuses an RPC on another chain than the record's.
    pub fn check_chain(&self, path: &Path, chain_id: u64) -> Result<()> {
        if self.chain_id != chain_id {
            refuse!("record {} is for chain {}, the RPC is chain {chain_id}", path.display(), self.chain_id);
        }
        Ok(())
    }

    /// Refuses a key other than the one that made the record.
    pub fn check_deployer(&self, path: &Path, deployer: Address) -> Result<()> {
        if self.deployer != deployer {
            refuse!(
                "record {} was made by deployer {}; this key is {deployer}",
                path.display(),
                self.deployer
            );
        }
        Ok(())
    }

    /// The recorded step `id`, if any.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|step| step.id == id)
    }

    /// Replaces or appends the step with the same id.
    pub fn put_step(&mut self, step: Step) {
        match self.steps.iter_mut().find(|s| s.id == step.id) {
            Some(slot) => *slot = step,
            None => self.steps.push(step),
        }
    }

    /// The proxy address of `contract`, once deployed.
    pub fn proxy(&self, contract: ContractName) -> Option<Address> {
        self.contracts.get(contract.name())?.proxy.as_ref().map(|d| d.address)
    }

    /// The implementation address of `contract`, once deployed.
    pub fn implementation(&self, contract: ContractName) -> Option<Address> {
        self.contracts.get(contract.name())?.implementation.as_ref().map(|d| d.address)
    }

    /// Records `deployed` as `contract`'s implementation, built from `creation_code`, with its storage layout:
    /// what an upgrade must extend, and what tells code already in place apart.
    pub fn record_implementation(
        &mut self,
        contract: ContractName,
        deployed: Deployed,
        layout: Namespaces,
        creation_code: &Bytes,
    ) {
        let entry = self.contracts.entry(contract.name().to_owned()).or_default();
        entry.implementation = Some(deployed);
        entry.layout = Some(layout);
        entry.creation_code_hash = Some(keccak256(creation_code));
    }
}

/// Unix seconds now.
pub fn now() -> u64 {
    x402_chain::clock::unix_now()
}

/// The project's commit, or "unknown".
pub fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}
