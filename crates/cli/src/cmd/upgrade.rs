//! `x402 upgrade`: replaces one contract's implementation after checking that its storage layout extends the
//! deployed one, and records the change.

use std::path::PathBuf;
use std::process::ExitCode;

use alloy::primitives::{Bytes, keccak256};
use alloy::sol_types::SolCall;
use eyre::{WrapErr, bail};
use serde::Deserialize;
use x402_bindings::X402Payment;

use super::{Target, say};
use crate::chain::Chain;
use crate::keys;
use crate::layout::{self, Namespaces};
use crate::pipeline::{self, Tx};
use crate::plan::{self, CONTRACTS};
use crate::record::{self, Record, StepState, Upgrade};

/// Upgrade one contract's proxy to a new implementation: by default the one this binary was built with (the
/// project's current source), or `--implementation-artifact`. The new implementation's ERC-7201 storage layout
/// must extend the deployed one's (namespaces kept, members only appended, stored structs unchanged); otherwise
/// nothing is sent. The deployer key must hold the contract's UPGRADER_ROLE.
#[derive(Debug, clap::Args)]
pub(crate) struct UpgradeArgs {
    /// The contract: X402Payment, RevenueSplitter, ToolRegistry, CreditSystem, PaymentChannel or Subscription.
    contract: String,
    #[command(flatten)]
    target: Target,
    /// A JSON file `{"contract", "bytecode", "namespaces"}` as `bin/gen-bindings` writes for test implementations,
    /// to upgrade to instead of the bundled implementation.
    #[arg(long)]
    implementation_artifact: Option<PathBuf>,
    /// Hex call data run by `upgradeToAndCall` on the new implementation (e.g. a reinitializer); default: none.
    #[arg(long)]
    call_data: Option<Bytes>,
    /// Foundry/geth keystore file of the deployer (password from X402_KEYSTORE_PASSWORD or a prompt).
    #[arg(long)]
    keystore: Option<PathBuf>,
    /// Check everything and say what would be sent; send nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Bundled implementations that need another contract's bundled implementation in place first: (contract,
/// prerequisite, why). The CreditSystem hands settled credit spends to the registry already split, through a call
/// only the current ToolRegistry has.
const UPGRADE_AFTER: &[(&str, &str, &str)] = &[(
    "CreditSystem",
    "ToolRegistry",
    "the bundled CreditSystem settles credit spends through the bundled ToolRegistry's recordCreditPayments",
)];

/// An implementation built outside this binary.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImplementationArtifact {
    contract: String,
    bytecode: Bytes,
    namespaces: Namespaces,
}

impl UpgradeArgs {
    pub(crate) async fn run(self) -> eyre::Result<ExitCode> {
        let contract = CONTRACTS.into_iter().find(|name| *name == self.contract).ok_or_else(|| {
            eyre::eyre!("unknown contract {:?}; expected one of {}", self.contract, CONTRACTS.join(", "))
        })?;
        let path = Record::path(&self.target.deployments_dir, self.target.network);
        let Some(mut record) = Record::load(&path)? else {
            bail!("no record at {}: deploy first", path.display());
        };
        let (name, code, new_layout) = match &self.implementation_artifact {
            Some(file) => {
                let text = std::fs::read_to_string(file)
                    .wrap_err_with(|| format!("cannot read {}", file.display()))?;
                let artifact: ImplementationArtifact = serde_json::from_str(&text)
                    .wrap_err_with(|| format!("{} is not an implementation artifact", file.display()))?;
                (artifact.contract, artifact.bytecode, artifact.namespaces)
            }
            None => (
                contract.to_owned(),
                plan::implementation_code(contract).unwrap_or_default(),
                layout::bundled(contract)?,
            ),
        };
        if self.implementation_artifact.is_none() {
            for (_, prerequisite, why) in UPGRADE_AFTER.iter().filter(|(c, _, _)| *c == contract) {
                let bundled = plan::implementation_code(prerequisite).map(|code| keccak256(&code));
                let deployed = record.contracts.get(*prerequisite).and_then(|c| c.creation_code_hash);
                if deployed.is_none() || deployed != bundled {
                    bail!("upgrade {prerequisite} first: {why}");
                }
            }
        }
        let entry = record.contracts.get(contract).cloned().unwrap_or_default();
        let (Some(proxy), Some(current)) = (entry.proxy, entry.implementation) else {
            bail!("{contract} is not deployed in {}", path.display());
        };
        let Some(old_layout) = entry.layout else {
            bail!("{} has no storage layout for {contract}; it cannot be checked", path.display());
        };
        if let Some(reason) = layout::incompatibility(&old_layout, &new_layout) {
            bail!("refusing to upgrade {contract} to {name}: storage layout incompatible: {reason}");
        }

        let signer = keys::load(self.keystore.as_deref())?;
        let chain = Chain::connect(&self.target.rpc_url()?, Some(signer)).await?;
        record.check_chain(&path, chain.chain_id)?;
        record.check_deployer(&path, chain.deployer)?;
        if entry.creation_code_hash == Some(keccak256(&code)) {
            say(format!("nothing to upgrade: {contract} already runs this code ({})", current.address));
            return Ok(ExitCode::SUCCESS);
        }
        let access = X402Payment::new(proxy.address, chain.provider.clone());
        let role = plan::role_id("UPGRADER_ROLE");
        if !access.hasRole(role, chain.deployer).call().await.wrap_err("cannot read roles")? {
            bail!(
                "{} lacks {contract}'s UPGRADER_ROLE; the upgrade must go through the role's holder",
                chain.deployer
            );
        }

        // One upgrade per (contract, code, call data): running it again finds its steps done and sends nothing.
        let call_data = self.call_data.clone().unwrap_or_default();
        let tag = keccak256([code.as_ref(), call_data.as_ref()].concat());
        let deploy_id = format!("upgrade {contract} {}: implementation", &tag.to_string()[..10]);
        let upgrade_id = format!("upgrade {contract} {}: upgradeToAndCall", &tag.to_string()[..10]);
        let done = |id: &str, record: &Record| record.step(id).is_some_and(|s| s.state == StepState::Done);
        if done(&upgrade_id, &record) {
            say(format!("nothing to upgrade: {contract} already runs {name} ({})", current.address));
            return Ok(ExitCode::SUCCESS);
        }
        if self.dry_run {
            say(format!(
                "would deploy {name} and upgrade {contract} at {} from {}",
                proxy.address, current.address
            ));
            return Ok(ExitCode::SUCCESS);
        }

        let creation = code.clone();
        pipeline::run_step(
            &chain,
            &mut record,
            &path,
            &deploy_id,
            |_| Ok(Tx { to: None, input: creation, creates: None }),
            |_, _, _| Ok(()),
        )
        .await?;
        let implementation = record
            .step(&deploy_id)
            .and_then(|s| s.address)
            .ok_or_else(|| eyre::eyre!("{deploy_id}: no contract was created"))?;
        let call = X402Payment::upgradeToAndCallCall { newImplementation: implementation, data: call_data }
            .abi_encode();
        let code_hash = chain.code_hash(implementation).await?;
        let deploy_step = record.step(&deploy_id).cloned();
        let receipt = pipeline::run_step(
            &chain,
            &mut record,
            &path,
            &upgrade_id,
            |_| Ok(Tx { to: Some(proxy.address), input: call.into(), creates: None }),
            |record, _, receipt| {
                let deployed = record::Deployed {
                    address: implementation,
                    tx_hash: deploy_step.as_ref().map(|s| s.tx_hash).unwrap_or_default(),
                    block: deploy_step.as_ref().and_then(|s| s.block).unwrap_or_default(),
                    code_hash,
                };
                let entry = record.contracts.entry(contract.to_owned()).or_default();
                entry.implementation = Some(deployed.clone());
                entry.layout = Some(new_layout);
                entry.creation_code_hash = Some(keccak256(&code));
                record.upgrades.push(Upgrade {
                    contract: contract.to_owned(),
                    from: current.address,
                    to: deployed,
                    tx_hash: receipt.map(|r| r.transaction_hash).unwrap_or_default(),
                    block: receipt.and_then(|r| r.block_number).unwrap_or_default(),
                    timestamp: record::now(),
                });
                Ok(())
            },
        )
        .await?
        .ok_or_else(|| eyre::eyre!("{upgrade_id}: no transaction was sent"))?;
        if self.target.json {
            say(
                serde_json::json!({"contract": contract, "from": current.address, "to": implementation, "txHash": receipt.transaction_hash}),
            );
        } else {
            say(format!(
                "upgraded {contract} at {} from {} to {implementation} ({name})",
                proxy.address, current.address
            ));
        }
        Ok(ExitCode::SUCCESS)
    }
}
