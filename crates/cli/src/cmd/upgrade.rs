//! `x402 upgrade`: checks and sends one contract's upgrade (see `x402_cli::deployer::upgrade`).

use std::path::PathBuf;
use std::process::ExitCode;

use alloy::primitives::Bytes;
use x402_cli::deployer::chain::Chain;
use x402_cli::deployer::upgrade::{self, ImplementationArtifact, Outcome};

use super::{Target, say};
use crate::keys;

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

impl UpgradeArgs {
    pub(crate) async fn run(self) -> eyre::Result<ExitCode> {
        let artifact =
            self.implementation_artifact.as_deref().map(ImplementationArtifact::load).transpose()?;
        let target = &self.target;
        let prepared = upgrade::prepare(&self.contract, target.network, &target.deployments_dir, artifact)?;
        let signer = keys::load(self.keystore.as_deref(), "deployer")?;
        let chain = Chain::connect(&target.rpc_url()?, Some(signer)).await?;
        let call_data = self.call_data.clone().unwrap_or_default();
        match upgrade::apply(&chain, prepared, call_data, self.dry_run).await? {
            Outcome::NothingToDo { contract, name, current } if name == contract.name() => {
                say(format!("nothing to upgrade: {contract} already runs this code ({current})"));
            }
            Outcome::NothingToDo { contract, name, current } => {
                say(format!("nothing to upgrade: {contract} already runs {name} ({current})"));
            }
            Outcome::WouldUpgrade { contract, name, proxy, current } => {
                say(format!("would deploy {name} and upgrade {contract} at {proxy} from {current}"));
            }
            Outcome::Upgraded { contract, from, to, tx_hash, .. } if target.json => {
                say(
                    serde_json::json!({"contract": contract.name(), "from": from, "to": to, "txHash": tx_hash}),
                );
            }
            Outcome::Upgraded { contract, name, proxy, from, to, .. } => {
                say(format!("upgraded {contract} at {proxy} from {from} to {to} ({name})"));
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
