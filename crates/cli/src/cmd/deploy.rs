//! `x402 deploy`: runs the deployment plan, recording every transaction before it is broadcast.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use alloy::primitives::{Address, B256, U256};
use alloy::rpc::types::TransactionReceipt;
use eyre::{WrapErr, bail};
use x402_bindings::{RevenueSplitter, TestStablecoin, ToolRegistry, X402Payment};

use super::{Target, say};
use crate::chain::Chain;
use crate::config::ConfigFile;
use crate::keys;
use crate::network::Network;
use crate::plan::{self, Action};
use crate::record::{self, Record, Token};
use crate::{layout, pipeline};

/// Deploy every contract behind an ERC1967 proxy, wire them, and write `<deployments-dir>/<network>.json`.
///
/// The deployer's key comes from X402_PRIVATE_KEY, or from --keystore with X402_KEYSTORE_PASSWORD (or a
/// prompt). Each transaction is signed and written to the record before it is broadcast, so a second run
/// deploys nothing, and a run that was interrupted resumes where it stopped without sending anything twice.
#[derive(Debug, clap::Args)]
pub(crate) struct DeployArgs {
    #[command(flatten)]
    target: Target,
    /// TOML settings: admin, arbiter, keeper, treasury, refund_window, platform_fee_bps (all optional; see
    /// README). Must match the record when resuming.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Foundry/geth keystore file of the deployer (password from X402_KEYSTORE_PASSWORD or a prompt).
    #[arg(long)]
    keystore: Option<PathBuf>,
    /// Check everything and print the plan and its estimated cost; send nothing, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Deploy deterministically through the CREATE2 deployer at 0x4e59b44847b379578588920ca78fbf26c0b4956c with
    /// this 32-byte salt: the same deployer key, salt and settings give the same addresses on every chain.
    #[arg(long)]
    create2_salt: Option<alloy::primitives::B256>,
}

impl DeployArgs {
    pub(crate) async fn run(self) -> eyre::Result<ExitCode> {
        let started = Instant::now();
        let network = self.target.network;
        let config = match &self.config {
            Some(path) => ConfigFile::load(path)?,
            None => ConfigFile::default(),
        };
        let signer = keys::load(self.keystore.as_deref())?;
        let rpc_url = self.target.rpc_url()?;
        let chain = Chain::connect(&rpc_url, Some(signer)).await?;
        check_chain(&chain, network).await?;
        let settings = config.resolve(chain.deployer)?;

        let path = Record::path(&self.target.deployments_dir, network);
        let mut record = match Record::load(&path)? {
            Some(existing) => {
                existing.check_chain(&path, chain.chain_id)?;
                existing.check_deployer(&path, chain.deployer)?;
                if existing.create2_salt != self.create2_salt {
                    bail!(
                        "record {} was made with CREATE2 salt {:?}, not {:?}",
                        path.display(),
                        existing.create2_salt,
                        self.create2_salt
                    );
                }
                if existing.settings != settings {
                    bail!(
                        "the settings differ from those recorded in {}; deploy to another --deployments-dir",
                        path.display()
                    );
                }
                existing
            }
            None => Record {
                network,
                chain_id: chain.chain_id,
                deployer: chain.deployer,
                git_commit: record::git_commit(),
                created_at: record::now(),
                updated_at: record::now(),
                settings,
                create2_salt: self.create2_salt,
                token: token(&chain, network).await?,
                contracts: Default::default(),
                steps: Vec::new(),
                upgrades: Vec::new(),
            },
        };

        if self.create2_salt.is_some() && !chain.has_code(plan::CREATE2_DEPLOYER).await? {
            bail!(
                "--create2-salt needs the CREATE2 deployer {}, which this chain does not have",
                plan::CREATE2_DEPLOYER
            );
        }
        let steps = plan::plan(&record);
        let remaining: Vec<&plan::Step> =
            steps.iter().filter(|s| record.step(&s.id).is_none_or(|r| !r.state.is_complete())).collect();
        if remaining.is_empty() {
            verify_code(&chain, &record).await?;
            report(
                &self.target,
                &record,
                &path,
                0,
                started,
                "nothing to deploy: every contract is deployed and wired",
            );
            return Ok(ExitCode::SUCCESS);
        }

        let cost = estimate_cost(&chain, &remaining).await?;
        let balance = chain.balance().await?;
        if balance < cost {
            bail!(
                "deployer {} holds {} wei; the {} remaining transactions may cost up to {} wei",
                chain.deployer,
                balance,
                remaining.len(),
                cost
            );
        }
        if self.dry_run {
            for step in &remaining {
                eprintln!("would send: {}", step.id);
            }
            report(
                &self.target,
                &record,
                &path,
                0,
                started,
                &format!("dry run: {} transactions, up to {cost} wei", remaining.len()),
            );
            return Ok(ExitCode::SUCCESS);
        }

        let mut sent = 0;
        for step in remaining {
            match execute(&chain, &mut record, &path, step).await? {
                Some(receipt) => {
                    sent += 1;
                    eprintln!("{:<56} {} (gas {})", step.id, receipt.transaction_hash, receipt.gas_used);
                }
                None => eprintln!("{:<56} already at its deterministic address", step.id),
            }
        }
        report(&self.target, &record, &path, sent, started, "deployed");
        Ok(ExitCode::SUCCESS)
    }
}

/// Refuses an RPC whose chain is not the network's (or, for `local`, not an anvil node).
async fn check_chain(chain: &Chain, network: Network) -> eyre::Result<()> {
    match network.chain_id() {
        Some(expected) if expected != chain.chain_id => bail!(
            "network {} is chain {expected}, but {} is chain {}",
            network.name(),
            chain.rpc_url,
            chain.chain_id
        ),
        Some(_) => Ok(()),
        None => {
            let client = chain.client_version().await;
            if !client.to_lowercase().starts_with("anvil") {
                bail!(
                    "network local deploys a test token and expects an anvil node, but {} is {:?} (chain {})",
                    chain.rpc_url,
                    client,
                    chain.chain_id
                );
            }
            Ok(())
        }
    }
}

/// The token of a new deployment: a TestStablecoin to deploy on `local`, else the network's USDC, read on-chain
/// and required to implement EIP-3009.
async fn token(chain: &Chain, network: Network) -> eyre::Result<Token> {
    let Some(usdc) = network.usdc() else {
        return Ok(Token {
            address: None,
            test_token: true,
            name: "USDC".into(),
            version: "2".into(),
            decimals: 6,
        });
    };
    if !chain.has_code(usdc).await? {
        bail!("no contract at the {} USDC address {usdc}", network.name());
    }
    let token = TestStablecoin::new(usdc, chain.provider.clone());
    let not_3009 =
        || format!("token {usdc} does not implement EIP-3009 (name, version, decimals, authorizationState)");
    let name = token.name().call().await.wrap_err_with(not_3009)?;
    let version = token.version().call().await.wrap_err_with(not_3009)?;
    let decimals = token.decimals().call().await.wrap_err_with(not_3009)?;
    token.authorizationState(Address::ZERO, B256::ZERO).call().await.wrap_err_with(not_3009)?;
    Ok(Token { address: Some(usdc), test_token: false, name, version, decimals })
}

/// An upper bound of what the remaining steps cost: the creations of code are estimated, the proxies and calls
/// (which depend on earlier steps) get fixed bounds; all at the current maximum fee.
async fn estimate_cost(chain: &Chain, steps: &[&plan::Step]) -> eyre::Result<U256> {
    let fee = chain.max_fee_per_gas().await?;
    let mut gas: u64 = 0;
    for step in steps {
        let step_gas = match &step.action {
            Action::Implementation(contract) => {
                let code = plan::implementation_code(contract).unwrap_or_default();
                chain.estimate(None, &code).await.wrap_err_with(|| format!("cannot estimate {}", step.id))?
            }
            action => plan::gas_bound(action),
        };
        gas = gas.saturating_add(step_gas);
    }
    Ok(U256::from(gas) * U256::from(fee))
}

/// Sends (or resumes) one planned step; a creation is recorded as the token, an implementation or a proxy.
async fn execute(
    chain: &Chain,
    record: &mut Record,
    path: &std::path::Path,
    step: &plan::Step,
) -> eyre::Result<Option<TransactionReceipt>> {
    // Only a deterministic deployment can meet its own earlier work without a record of it: a plain one creates
    // new contracts, whose wiring cannot be in place yet.
    if record.create2_salt.is_some()
        && record.step(&step.id).is_none()
        && in_effect(chain, record, &step.action).await?
    {
        pipeline::record_found(record, path, &step.id, None)?;
        return Ok(None);
    }
    let action = step.action.clone();
    pipeline::run_step(
        chain,
        record,
        path,
        &step.id,
        |record| plan::transaction(step, record),
        move |record, deployed, _| {
            let Some(deployed) = deployed else { return Ok(()) };
            match action {
                Action::DeployToken => record.token.address = Some(deployed.address),
                Action::Implementation(contract) => {
                    let entry = record.contracts.entry(contract.to_owned()).or_default();
                    entry.implementation = Some(deployed);
                    entry.layout = Some(layout::bundled(contract)?);
                    entry.creation_code_hash =
                        plan::implementation_code(contract).map(alloy::primitives::keccak256);
                }
                Action::Proxy(contract) => {
                    let init_data = plan::init_data(contract, record)?;
                    let entry = record.contracts.entry(contract.to_owned()).or_default();
                    entry.proxy = Some(deployed);
                    entry.init_data = Some(init_data);
                }
                _ => {}
            }
            Ok(())
        },
    )
    .await
}

/// Whether a wiring or role step's effect is already on chain (say, the record of an earlier run was lost), so
/// that it is recorded instead of sent again; creations are handled by their deterministic address.
async fn in_effect(chain: &Chain, record: &Record, action: &Action) -> eyre::Result<bool> {
    let proxy = |name: &str| record.proxy(name);
    let access = |name: &str| proxy(name).map(|address| X402Payment::new(address, chain.provider.clone()));
    Ok(match action {
        Action::AllowToken(contract) => match (access(contract), record.token.address) {
            (Some(contract), Some(token)) => contract.isTokenAllowed(token).call().await?,
            _ => false,
        },
        Action::SetRegistry => match (proxy("RevenueSplitter"), proxy("ToolRegistry")) {
            (Some(splitter), Some(registry)) => {
                RevenueSplitter::new(splitter, chain.provider.clone()).registry().call().await? == registry
            }
            _ => false,
        },
        Action::SetCreditSystem => match (proxy("ToolRegistry"), proxy("CreditSystem")) {
            (Some(registry), Some(credits)) => {
                ToolRegistry::new(registry, chain.provider.clone()).creditSystem().call().await? == credits
            }
            _ => false,
        },
        Action::Grant { contract, role, to } => {
            let account = match to {
                plan::Grantee::Registry => proxy("ToolRegistry"),
                plan::Grantee::Keeper => record.settings.keeper,
                plan::Grantee::Admin => Some(record.settings.admin),
            };
            match (access(contract), account) {
                (Some(contract), Some(account)) => {
                    contract.hasRole(plan::role_id(role), account).call().await?
                }
                _ => false,
            }
        }
        Action::Renounce { contract, role } => match access(contract) {
            Some(contract) => !contract.hasRole(plan::role_id(role), record.deployer).call().await?,
            None => false,
        },
        Action::DeployToken | Action::Implementation(_) | Action::Proxy(_) => false,
    })
}

/// On a no-op run: every recorded contract must still have code (an anvil restarted without its state would
/// not).
async fn verify_code(chain: &Chain, record: &Record) -> eyre::Result<()> {
    let mut addresses: Vec<(String, Address)> = Vec::new();
    if let Some(token) = record.token.address {
        addresses.push(("token".into(), token));
    }
    for (name, contract) in &record.contracts {
        for (kind, deployed) in [("proxy", &contract.proxy), ("implementation", &contract.implementation)] {
            if let Some(deployed) = deployed {
                addresses.push((format!("{name} {kind}"), deployed.address));
            }
        }
    }
    for (what, address) in addresses {
        if !chain.has_code(address).await? {
            bail!(
                "the record says {what} is at {address}, but there is no code there (was the chain reset?)"
            );
        }
    }
    Ok(())
}

fn report(
    target: &Target,
    record: &Record,
    path: &std::path::Path,
    sent: usize,
    started: Instant,
    summary: &str,
) {
    let seconds = started.elapsed().as_secs_f64();
    if target.json {
        let contracts: serde_json::Map<String, serde_json::Value> = record
            .contracts
            .iter()
            .map(|(name, c)| {
                let value = serde_json::json!({
                    "proxy": c.proxy.as_ref().map(|d| d.address),
                    "implementation": c.implementation.as_ref().map(|d| d.address),
                });
                (name.clone(), value)
            })
            .collect();
        say(serde_json::json!({
            "network": record.network.name(),
            "chainId": record.chain_id,
            "record": path,
            "transactionsSent": sent,
            "seconds": seconds,
            "summary": summary,
            "token": record.token.address,
            "contracts": contracts,
        }));
    } else {
        say(format!("{summary} ({sent} transactions, {seconds:.2}s); record: {}", path.display()));
        for (name, c) in &record.contracts {
            if let Some(proxy) = &c.proxy {
                say(format!("  {name:<16} {}", proxy.address));
            }
        }
        if let Some(token) = record.token.address {
            say(format!("  {:<16} {token}", "token"));
        }
    }
}
