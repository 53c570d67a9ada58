//! Upgrading one contract's proxy to a new implementation: the bundled one (this project's current source) or one
//! built elsewhere. The new ERC-7201 layout must extend the deployed one (namespaces kept, members only appended,
//! stored structs unchanged), a bundled implementation that needs another contract's bundled one goes after it,
//! and the upgrade is recorded, so `x402 status` follows it. Running the same upgrade again sends nothing.

use std::path::{Path, PathBuf};

use alloy::primitives::{Address, B256, Bytes, keccak256};
use alloy::sol_types::SolCall;
use serde::Deserialize;
use x402_bindings::{Contract, X402Payment};

use super::chain::Chain;
use super::error::{Describe, Error, Result, refuse};
use super::layout::{self, Namespaces};
use super::network::Network;
use super::pipeline::{self, Tx};
use super::plan;
use super::record::{self, Record, StepState, Upgrade};

/// Bundled implementations that need another contract's bundled implementation in place first: (contract,
/// prerequisite, why). The CreditSystem hands settled credit spends to the registry already split, through a call
/// only the current ToolRegistry has.
const UPGRADE_AFTER: &[(Contract, Contract, &str)] = &[(
    Contract::CreditSystem,
    Contract::ToolRegistry,
    "the bundled CreditSystem settles credit spends through the bundled ToolRegistry's recordCreditPayments",
)];

/// An implementation built outside this binary: `{"contract", "bytecode", "namespaces"}`, as `bin/gen-bindings`
/// writes them for test implementations.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImplementationArtifact {
    /// The contract's name.
    pub contract: String,
    /// Its creation code.
    pub bytecode: Bytes,
    /// Its ERC-7201 layout.
    pub namespaces: Namespaces,
}

impl ImplementationArtifact {
    /// Reads an artifact file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).describe(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text)
            .describe(|| format!("{} is not an implementation artifact", path.display()))
    }
}

/// An upgrade checked against the record, before any key or chain is involved.
#[derive(Debug)]
pub struct Prepared {
    contract: Contract,
    path: PathBuf,
    record: Record,
    name: String,
    code: Bytes,
    layout: Namespaces,
    proxy: Address,
    current: record::Deployed,
}

/// What [`apply`] did.
#[derive(Debug)]
pub enum Outcome {
    /// The proxy runs this code already.
    NothingToDo {
        /// The contract.
        contract: Contract,
        /// The new implementation's name.
        name: String,
        /// The implementation it runs.
        current: Address,
    },
    /// A dry run: what would be sent.
    WouldUpgrade {
        /// The contract.
        contract: Contract,
        /// The new implementation's name.
        name: String,
        /// The proxy.
        proxy: Address,
        /// The implementation it runs now.
        current: Address,
    },
    /// Upgraded and recorded.
    Upgraded {
        /// The contract.
        contract: Contract,
        /// The new implementation's name.
        name: String,
        /// The proxy.
        proxy: Address,
        /// The implementation it ran.
        from: Address,
        /// The one it runs now.
        to: Address,
        /// The `upgradeToAndCall` transaction.
        tx_hash: B256,
    },
}

/// Checks the upgrade of `contract` (to `artifact`, or to the bundled implementation) against the record in
/// `dir`: a known contract, deployed, with a recorded layout the new one extends, its prerequisites upgraded.
pub fn prepare(
    contract: &str,
    network: Network,
    dir: &Path,
    artifact: Option<ImplementationArtifact>,
) -> Result<Prepared> {
    let contract: Contract =
        contract.parse().map_err(|err: x402_bindings::UnknownContract| Error::Refused(err.to_string()))?;
    let path = Record::path(dir, network);
    let Some(record) = Record::load(&path)? else { refuse!("no record at {}: deploy first", path.display()) };
    if artifact.is_none() {
        for (_, prerequisite, why) in UPGRADE_AFTER.iter().filter(|(c, _, _)| *c == contract) {
            let bundled = Some(keccak256(prerequisite.creation_code()));
            let deployed = record.contracts.get(prerequisite.name()).and_then(|c| c.creation_code_hash);
            if deployed != bundled {
                refuse!("upgrade {prerequisite} first: {why}");
            }
        }
    }
    let (name, code, new_layout) = match artifact {
        Some(artifact) => (artifact.contract, artifact.bytecode, artifact.namespaces),
        None => (contract.name().to_owned(), contract.creation_code().clone(), layout::bundled(contract)?),
    };
    let entry = record.contracts.get(contract.name()).cloned().unwrap_or_default();
    let (Some(proxy), Some(current)) = (entry.proxy, entry.implementation) else {
        refuse!("{contract} is not deployed in {}", path.display());
    };
    let Some(old_layout) = entry.layout else {
        refuse!("{} has no storage layout for {contract}; it cannot be checked", path.display());
    };
    if let Some(reason) = layout::incompatibility(&old_layout, &new_layout) {
        refuse!("refusing to upgrade {contract} to {name}: storage layout incompatible: {reason}");
    }
    Ok(Prepared { contract, path, record, name, code, layout: new_layout, proxy: proxy.address, current })
}

/// Sends a prepared upgrade with `chain`'s key (which must hold the contract's UPGRADER_ROLE), running `call_data`
/// on the new implementation.
pub async fn apply(chain: &Chain, prepared: Prepared, call_data: Bytes, dry_run: bool) -> Result<Outcome> {
    let Prepared { contract, path, mut record, name, code, layout, proxy, current } = prepared;
    record.check_chain(&path, chain.chain_id)?;
    record.check_deployer(&path, chain.deployer)?;
    let nothing = |name: String| Outcome::NothingToDo { contract, name, current: current.address };
    let recorded_hash = record.contracts.get(contract.name()).and_then(|c| c.creation_code_hash);
    if recorded_hash == Some(keccak256(&code)) {
        return Ok(nothing(name));
    }
    let access = X402Payment::new(proxy, chain.provider.clone());
    let role = plan::role_id("UPGRADER_ROLE");
    if !access.hasRole(role, chain.deployer).call().await.describe(|| "cannot read roles".into())? {
        refuse!(
            "{} lacks {contract}'s UPGRADER_ROLE; the upgrade must go through the role's holder",
            chain.deployer
        );
    }
    // One upgrade per (contract, code, call data): running it again finds its steps done and sends nothing.
    let tag = keccak256([code.as_ref(), call_data.as_ref()].concat());
    let deploy_id = format!("upgrade {contract} {}: implementation", &tag.to_string()[..10]);
    let upgrade_id = format!("upgrade {contract} {}: upgradeToAndCall", &tag.to_string()[..10]);
    if record.step(&upgrade_id).is_some_and(|s| s.state == StepState::Done) {
        return Ok(nothing(name));
    }
    if dry_run {
        return Ok(Outcome::WouldUpgrade { contract, name, proxy, current: current.address });
    }

    let creation = code.clone();
    let deploy = |_: &Record| Ok(Tx { to: None, input: creation, creates: None });
    pipeline::run_step(chain, &mut record, &path, &deploy_id, deploy, |_, _, _| Ok(())).await?;
    let Some(implementation) = record.step(&deploy_id).and_then(|s| s.address) else {
        refuse!("{deploy_id}: no contract was created");
    };
    let call =
        X402Payment::upgradeToAndCallCall { newImplementation: implementation, data: call_data }.abi_encode();
    let code_hash = chain.code_hash(implementation).await?;
    let deploy_step = record.step(&deploy_id).cloned();
    let upgrade = |_: &Record| Ok(Tx { to: Some(proxy), input: call.into(), creates: None });
    let recorded = |record: &mut Record, _, receipt: Option<&alloy::rpc::types::TransactionReceipt>| {
        let deployed = record::Deployed {
            address: implementation,
            tx_hash: deploy_step.as_ref().map(|s| s.tx_hash).unwrap_or_default(),
            block: deploy_step.as_ref().and_then(|s| s.block).unwrap_or_default(),
            code_hash,
        };
        record.record_implementation(contract, deployed.clone(), layout, &code);
        record.upgrades.push(Upgrade {
            contract: contract.name().to_owned(),
            from: current.address,
            to: deployed,
            tx_hash: receipt.map(|r| r.transaction_hash).unwrap_or_default(),
            block: receipt.and_then(|r| r.block_number).unwrap_or_default(),
            timestamp: record::now(),
        });
        Ok(())
    };
    let receipt = pipeline::run_step(chain, &mut record, &path, &upgrade_id, upgrade, recorded).await?;
    let Some(receipt) = receipt else { refuse!("{upgrade_id}: no transaction was sent") };
    Ok(Outcome::Upgraded {
        contract,
        name,
        proxy,
        from: current.address,
        to: implementation,
        tx_hash: receipt.transaction_hash,
    })
}
