//! `x402 status`: reads the chain and compares it with the deployment record.

use std::process::ExitCode;

use alloy::primitives::{Address, B256};
use alloy::providers::Provider;
use eyre::bail;
use x402_bindings::X402Payment;

use x402_bindings::Contract;
use x402_cli::deployer::chain::Chain;
use x402_cli::deployer::plan;
use x402_cli::deployer::record::Record;

use super::{Target, say};

/// EIP-1967 implementation slot: keccak256("eip1967.proxy.implementation") - 1.
const IMPLEMENTATION_SLOT: B256 =
    alloy::primitives::b256!("0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc");

/// Compare the chain with `<deployments-dir>/<network>.json`: code at every address, each proxy's EIP-1967
/// implementation slot and the implementation's code hash, the admin's roles (and, after a hand-over, that the
/// deployer kept none), the paused flag and the UUPS interface version. Exits with 1 on any drift. Needs no key.
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    target: Target,
}

/// One check's result.
struct Finding {
    contract: String,
    check: &'static str,
    ok: bool,
    detail: String,
}

impl StatusArgs {
    pub(crate) async fn run(self) -> eyre::Result<ExitCode> {
        let path = Record::path(&self.target.deployments_dir, self.target.network);
        let Some(record) = Record::load(&path)? else {
            bail!(
                "no record at {}: run `x402 deploy --network {}` first",
                path.display(),
                self.target.network.name()
            );
        };
        let chain = Chain::connect(&self.target.rpc_url()?, None).await?;
        record.check_chain(&path, chain.chain_id)?;
        let findings = inspect(&chain, &record).await?;
        let drift = findings.iter().filter(|f| !f.ok).count();
        if self.target.json {
            let items: Vec<_> = findings
                .iter()
                .map(|f| serde_json::json!({"contract": f.contract, "check": f.check, "ok": f.ok, "detail": f.detail}))
                .collect();
            say(
                serde_json::json!({"network": record.network.name(), "chainId": record.chain_id, "drift": drift, "checks": items}),
            );
        } else {
            for f in &findings {
                say(format!(
                    "{} {:<16} {:<22} {}",
                    if f.ok { "ok   " } else { "DRIFT" },
                    f.contract,
                    f.check,
                    f.detail
                ));
            }
            say(if drift == 0 {
                "no drift".to_owned()
            } else {
                format!("{drift} checks drifted from {}", path.display())
            });
        }
        Ok(if drift == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
    }
}

async fn inspect(chain: &Chain, record: &Record) -> eyre::Result<Vec<Finding>> {
    let mut findings = Vec::new();
    let mut add = |contract: &str, check: &'static str, ok: bool, detail: String| {
        findings.push(Finding { contract: contract.to_owned(), check, ok, detail });
    };
    match record.token.address {
        Some(token) => add("token", "code", chain.has_code(token).await?, token.to_string()),
        None => add("token", "code", false, "not deployed".into()),
    }
    let handed_over = record.settings.admin != record.deployer;
    for contract in Contract::ALL {
        let name = contract.name();
        let (Some(proxy), Some(implementation)) =
            (record.proxy(contract), record.contracts.get(name).and_then(|c| c.implementation.clone()))
        else {
            add(name, "deployed", false, "not in the record: the deployment is unfinished".into());
            continue;
        };
        add(name, "proxy code", chain.has_code(proxy).await?, proxy.to_string());
        let slot = chain.provider.get_storage_at(proxy, IMPLEMENTATION_SLOT.into()).await?;
        let current = Address::from_word(slot.into());
        add(
            name,
            "implementation slot",
            current == implementation.address,
            format!("{current} (recorded {})", implementation.address),
        );
        let hash = chain.code_hash(current).await?;
        add(name, "implementation code", hash == implementation.code_hash, format!("keccak {hash}"));
        // Every contract has the same AccessControl, Pausable and UUPS surface; one binding reads them all.
        let contract = X402Payment::new(proxy, chain.provider.clone());
        let admin = record.settings.admin;
        let admin_ok = contract.hasRole(B256::ZERO, admin).call().await.unwrap_or(false);
        add(name, "admin role", admin_ok, format!("{admin} holds DEFAULT_ADMIN_ROLE: {admin_ok}"));
        if handed_over {
            let kept = contract.hasRole(B256::ZERO, record.deployer).call().await.unwrap_or(true);
            add(
                name,
                "deployer role",
                !kept,
                format!("deployer {} holds DEFAULT_ADMIN_ROLE: {kept}", record.deployer),
            );
        }
        let upgrader_ok =
            contract.hasRole(plan::role_id("UPGRADER_ROLE"), admin).call().await.unwrap_or(false);
        add(name, "upgrader role", upgrader_ok, format!("{admin} holds UPGRADER_ROLE: {upgrader_ok}"));
        let paused = contract.paused().call().await.ok();
        add(name, "paused", paused == Some(false), format!("paused: {paused:?}"));
        let version = contract.UPGRADE_INTERFACE_VERSION().call().await.ok();
        add(name, "uups version", version.as_deref() == Some("5.0.0"), format!("{version:?}"));
    }
    Ok(findings)
}
