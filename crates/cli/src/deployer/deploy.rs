//! Deploying (or finishing the deployment of) every contract: the plan's steps in order, each transaction stored in
//! the record before it is broadcast, so that a second run sends nothing and an interrupted one resumes where it
//! stopped without sending anything twice.

use std::path::{Path, PathBuf};

use alloy::primitives::{Address, B256, U256};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use x402_bindings::{Contract, RevenueSplitter, TestStablecoin, ToolRegistry, X402Payment};

use super::chain::Chain;
use super::error::{Describe, Result, refuse};
use super::layout;
use super::network::Network;
use super::pipeline;
use super::plan::{self, Action};
use super::record::{self, Record, Token};
use super::settings::ConfigFile;

/// What to deploy.
#[derive(Debug)]
pub struct DeployOptions {
    /// The target network.
    pub network: Network,
    /// The settings file (defaults for what it leaves out).
    pub config: ConfigFile,
    /// Where the record goes (`<network>.json`).
    pub deployments_dir: PathBuf,
    /// Deploy through the CREATE2 deployer with this salt.
    pub create2_salt: Option<B256>,
    /// Check everything and say what would be sent; send nothing, write nothing.
    pub dry_run: bool,
}

/// What a deployment did.
#[derive(Debug)]
pub struct DeployReport {
    /// The record as it is now.
    pub record: Record,
    /// Where it is.
    pub path: PathBuf,
    /// Transactions sent.
    pub sent: usize,
    /// One line saying what happened.
    pub summary: String,
    /// A dry run's steps that would be sent.
    pub would_send: Vec<String>,
}

/// A step as it finishes: its id, and its receipt (`None`: already in place at its deterministic address).
pub type StepDone<'a> = (&'a str, Option<&'a TransactionReceipt>);

/// Deploys everything on a local anvil at `rpc_url` with `deployer` and the default settings, the record in
/// `deployments_dir`, as `x402 deploy --network local` does (for `x402 devnet`, the tests and the benchmarks).
pub async fn local(
    rpc_url: &str,
    deployer: &PrivateKeySigner,
    deployments_dir: &Path,
) -> Result<DeployReport> {
    let chain = Chain::connect(rpc_url, Some(deployer.clone())).await?;
    let options = DeployOptions {
        network: Network::Local,
        config: ConfigFile::default(),
        deployments_dir: deployments_dir.to_owned(),
        create2_salt: None,
        dry_run: false,
    };
    deploy(&chain, &options, |_| {}).await
}

/// Deploys what `options` describe with `chain`'s key, calling `on_step` as each step finishes.
pub async fn deploy(
    chain: &Chain,
    options: &DeployOptions,
    mut on_step: impl FnMut(StepDone<'_>),
) -> Result<DeployReport> {
    let network = options.network;
    check_chain(chain, network).await?;
    let settings = options.config.resolve(chain.deployer)?;
    let path = Record::path(&options.deployments_dir, network);
    let mut record = match Record::load(&path)? {
        Some(existing) => {
            existing.check_chain(&path, chain.chain_id)?;
            existing.check_deployer(&path, chain.deployer)?;
            if existing.create2_salt != options.create2_salt {
                refuse!(
                    "record {} was made with CREATE2 salt {:?}, not {:?}",
                    path.display(),
                    existing.create2_salt,
                    options.create2_salt
                );
            }
            if existing.settings != settings {
                refuse!(
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
            create2_salt: options.create2_salt,
            token: token(chain, network).await?,
            contracts: Default::default(),
            steps: Vec::new(),
            upgrades: Vec::new(),
        },
    };
    if options.create2_salt.is_some() && !chain.has_code(plan::CREATE2_DEPLOYER).await? {
        refuse!(
            "--create2-salt needs the CREATE2 deployer {}, which this chain does not have",
            plan::CREATE2_DEPLOYER
        );
    }
    let steps = plan::plan(&record);
    let remaining: Vec<&plan::Step> =
        steps.iter().filter(|s| record.step(&s.id).is_none_or(|r| !r.state.is_complete())).collect();
    let report = |record: Record, sent, summary: String, would_send| DeployReport {
        record,
        path: path.clone(),
        sent,
        summary,
        would_send,
    };
    if remaining.is_empty() {
        verify_code(chain, &record).await?;
        return Ok(report(
            record,
            0,
            "nothing to deploy: every contract is deployed and wired".into(),
            vec![],
        ));
    }
    let cost = check_funds(chain, &remaining).await?;
    if options.dry_run {
        let would_send = remaining.iter().map(|s| s.id.clone()).collect();
        let summary = format!("dry run: {} transactions, up to {cost} wei", remaining.len());
        return Ok(report(record, 0, summary, would_send));
    }
    let mut sent = 0;
    for step in remaining {
        let receipt = execute(chain, &mut record, &path, step).await?;
        sent += usize::from(receipt.is_some());
        on_step((&step.id, receipt.as_ref()));
    }
    Ok(report(record, sent, "deployed".into(), vec![]))
}

/// Refuses a deployer that cannot pay for the remaining steps; returns their cost bound.
async fn check_funds(chain: &Chain, remaining: &[&plan::Step]) -> Result<U256> {
    let cost = estimate_cost(chain, remaining).await?;
    let balance = chain.balance().await?;
    if balance < cost {
        refuse!(
            "deployer {} holds {} wei; the {} remaining transactions may cost up to {} wei",
            chain.deployer,
            balance,
            remaining.len(),
            cost
        );
    }
    Ok(cost)
}

/// Refuses an RPC whose chain is not the network's (or, for `local`, not an anvil node).
async fn check_chain(chain: &Chain, network: Network) -> Result<()> {
    match network.chain_id() {
        Some(expected) if expected != chain.chain_id => refuse!(
            "network {} is chain {expected}, but {} is chain {}",
            network.name(),
            chain.rpc_url,
            chain.chain_id
        ),
        Some(_) => Ok(()),
        None => {
            let client = chain.client_version().await;
            if !client.to_lowercase().starts_with("anvil") {
                refuse!(
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
async fn token(chain: &Chain, network: Network) -> Result<Token> {
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
        refuse!("no contract at the {} USDC address {usdc}", network.name());
    }
    let token = TestStablecoin::new(usdc, chain.provider.clone());
    let not_3009 =
        || format!("token {usdc} does not implement EIP-3009 (name, version, decimals, authorizationState)");
    let name = token.name().call().await.describe(not_3009)?;
    let version = token.version().call().await.describe(not_3009)?;
    let decimals = token.decimals().call().await.describe(not_3009)?;
    token.authorizationState(Address::ZERO, B256::ZERO).call().await.describe(not_3009)?;
    Ok(Token { address: Some(usdc), test_token: false, name, version, decimals })
}

/// An upper bound of what the remaining steps cost: the creations of code are estimated, the proxies and calls
/// (which depend on earlier steps) get fixed bounds; all at the current maximum fee.
async fn estimate_cost(chain: &Chain, steps: &[&plan::Step]) -> Result<U256> {
    let fee = chain.max_fee_per_gas().await?;
    let mut gas: u64 = 0;
    for step in steps {
        let step_gas = match &step.action {
            Action::Implementation(contract) => {
                let estimate = chain.estimate(None, contract.creation_code()).await;
                estimate.map_err(|err| super::Error::Step {
                    id: step.id.clone(),
                    what: "cannot estimate",
                    source: Box::new(err),
                })?
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
    path: &Path,
    step: &plan::Step,
) -> Result<Option<TransactionReceipt>> {
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
                    let layout = layout::bundled(contract)?;
                    record.record_implementation(contract, deployed, layout, contract.creation_code());
                }
                Action::Proxy(contract) => {
                    let init_data = plan::init_data(contract, record)?;
                    let entry = record.contracts.entry(contract.name().to_owned()).or_default();
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
async fn in_effect(chain: &Chain, record: &Record, action: &Action) -> Result<bool> {
    let proxy = |contract: Contract| record.proxy(contract);
    let access =
        |contract: Contract| proxy(contract).map(|address| X402Payment::new(address, chain.provider.clone()));
    let read = || "cannot read what the chain holds already".to_owned();
    Ok(match action {
        Action::AllowToken(contract) => match (access(*contract), record.token.address) {
            (Some(contract), Some(token)) => contract.isTokenAllowed(token).call().await.describe(read)?,
            _ => false,
        },
        Action::SetRegistry => match (proxy(Contract::RevenueSplitter), proxy(Contract::ToolRegistry)) {
            (Some(splitter), Some(registry)) => {
                let splitter = RevenueSplitter::new(splitter, chain.provider.clone());
                splitter.registry().call().await.describe(read)? == registry
            }
            _ => false,
        },
        Action::SetCreditSystem => match (proxy(Contract::ToolRegistry), proxy(Contract::CreditSystem)) {
            (Some(registry), Some(credits)) => {
                let registry = ToolRegistry::new(registry, chain.provider.clone());
                registry.creditSystem().call().await.describe(read)? == credits
            }
            _ => false,
        },
        Action::Grant { contract, role, to } => {
            let account = match to {
                plan::Grantee::Registry => proxy(Contract::ToolRegistry),
                plan::Grantee::Keeper => record.settings.keeper,
                plan::Grantee::Admin => Some(record.settings.admin),
            };
            match (access(*contract), account) {
                (Some(contract), Some(account)) => {
                    contract.hasRole(plan::role_id(role), account).call().await.describe(read)?
                }
                _ => false,
            }
        }
        Action::Renounce { contract, role } => match access(*contract) {
            Some(contract) => {
                !contract.hasRole(plan::role_id(role), record.deployer).call().await.describe(read)?
            }
            None => false,
        },
        Action::DeployToken | Action::Implementation(_) | Action::Proxy(_) => false,
    })
}

/// On a no-op run: every recorded contract must still have code (an anvil restarted without its state would
/// not).
async fn verify_code(chain: &Chain, record: &Record) -> Result<()> {
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
            refuse!(
                "the record says {what} is at {address}, but there is no code there (was the chain reset?)"
            );
        }
    }
    Ok(())
}
