//! The deployment plan: every transaction of a deployment, in a fixed order, each built from what the record
//! already holds (a proxy needs its implementation's address, wiring needs the proxies).
//!
//! Order: the TestStablecoin (`local` only); for X402Payment, RevenueSplitter, ToolRegistry, CreditSystem,
//! PaymentChannel and Subscription, the implementation then its ERC1967 proxy, initialized in the proxy's
//! constructor; then the wiring (the splitter's registry and the registry's DISTRIBUTOR_ROLE, the registry's
//! credit system); the keeper's DISTRIBUTOR_ROLE; and, when the admin is not the deployer, the hand-over of the
//! splitter's and registry's roles (the deployer holds them only to wire the two; every other contract is
//! initialized with the admin directly).

use alloy::primitives::{Address, B256, Bytes, keccak256};
use alloy::sol_types::{SolCall, SolValue};
use eyre::OptionExt;
use x402_bindings::{
    CreditSystem, ERC1967Proxy, PaymentChannel, RevenueSplitter, Subscription, TestStablecoin, ToolRegistry,
    X402Payment,
};

use crate::pipeline::Tx;
use crate::record::Record;

/// The upgradeable contracts, in deployment order.
pub(crate) const CONTRACTS: [&str; 6] =
    ["X402Payment", "RevenueSplitter", "ToolRegistry", "CreditSystem", "PaymentChannel", "Subscription"];

const SPLITTER: &str = "RevenueSplitter";
const REGISTRY: &str = "ToolRegistry";
/// The step that deploys the TestStablecoin.
pub(crate) const TOKEN_STEP: &str = "TestStablecoin";

/// Roles the deploy hands over, by their Solidity constant names.
const SPLITTER_ROLES: [&str; 3] = ["PAUSER_ROLE", "UPGRADER_ROLE", "DEFAULT_ADMIN_ROLE"];
const REGISTRY_ROLES: [&str; 4] = ["PAUSER_ROLE", "FEE_MANAGER_ROLE", "UPGRADER_ROLE", "DEFAULT_ADMIN_ROLE"];

/// What a step does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    DeployToken,
    Implementation(&'static str),
    Proxy(&'static str),
    SetRegistry,
    SetCreditSystem,
    Grant { contract: &'static str, role: &'static str, to: Grantee },
    Renounce { contract: &'static str, role: &'static str },
}

/// Who a role goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Grantee {
    Registry,
    Keeper,
    Admin,
}

/// One planned transaction.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    pub(crate) id: String,
    pub(crate) action: Action,
}

/// The plan for `record`'s settings, deployer and token.
pub(crate) fn plan(record: &Record) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut push = |id: String, action| steps.push(Step { id, action });
    if record.token.test_token {
        push(TOKEN_STEP.to_owned(), Action::DeployToken);
    }
    for contract in CONTRACTS {
        push(format!("{contract}.implementation"), Action::Implementation(contract));
        push(format!("{contract}.proxy"), Action::Proxy(contract));
    }
    push(format!("{SPLITTER}.setRegistry"), Action::SetRegistry);
    push(
        format!("{SPLITTER}.grantRole(DISTRIBUTOR_ROLE,{REGISTRY})"),
        Action::Grant { contract: SPLITTER, role: "DISTRIBUTOR_ROLE", to: Grantee::Registry },
    );
    push(format!("{REGISTRY}.setCreditSystem"), Action::SetCreditSystem);
    if record.settings.keeper.is_some() {
        push(
            format!("{SPLITTER}.grantRole(DISTRIBUTOR_ROLE,keeper)"),
            Action::Grant { contract: SPLITTER, role: "DISTRIBUTOR_ROLE", to: Grantee::Keeper },
        );
    }
    if record.settings.admin != record.deployer {
        for (contract, roles) in [(SPLITTER, &SPLITTER_ROLES[..]), (REGISTRY, &REGISTRY_ROLES[..])] {
            for role in roles {
                push(
                    format!("{contract}.grantRole({role},admin)"),
                    Action::Grant { contract, role, to: Grantee::Admin },
                );
            }
        }
        // DEFAULT_ADMIN_ROLE is last in each list, so the deployer gives up its admin role last.
        for (contract, roles) in [(SPLITTER, &SPLITTER_ROLES[..]), (REGISTRY, &REGISTRY_ROLES[..])] {
            for role in roles {
                push(
                    format!("{contract}.renounceRole({role},deployer)"),
                    Action::Renounce { contract, role },
                );
            }
        }
    }
    steps
}

/// The role id of a Solidity role constant.
pub(crate) fn role_id(name: &str) -> B256 {
    if name == "DEFAULT_ADMIN_ROLE" { B256::ZERO } else { keccak256(name) }
}

/// The creation code of an upgradeable contract's implementation.
pub(crate) fn implementation_code(contract: &str) -> Option<Bytes> {
    Some(
        match contract {
            "X402Payment" => &X402Payment::BYTECODE,
            "RevenueSplitter" => &RevenueSplitter::BYTECODE,
            "ToolRegistry" => &ToolRegistry::BYTECODE,
            "CreditSystem" => &CreditSystem::BYTECODE,
            "PaymentChannel" => &PaymentChannel::BYTECODE,
            "Subscription" => &Subscription::BYTECODE,
            _ => return None,
        }
        .clone(),
    )
}

/// The `initialize` call the proxy of `contract` runs, from the record's settings and addresses.
pub(crate) fn init_data(contract: &str, record: &Record) -> eyre::Result<Bytes> {
    let s = &record.settings;
    let token = record.token.address.ok_or_eyre("the token is not deployed yet")?;
    let tokens = vec![token];
    let need = |name: &str| record.proxy(name).ok_or_else(|| eyre::eyre!("{name} is not deployed yet"));
    let data = match contract {
        "X402Payment" => X402Payment::initializeCall {
            admin: s.admin,
            arbiter: s.arbiter,
            refundWindow_: s.refund_window,
            tokens,
        }
        .abi_encode(),
        // The deployer administers the splitter and the registry until they are wired (see the module docs).
        "RevenueSplitter" => {
            RevenueSplitter::initializeCall { admin: record.deployer, treasury: s.treasury }.abi_encode()
        }
        "ToolRegistry" => ToolRegistry::initializeCall {
            admin: record.deployer,
            splitter_: need(SPLITTER)?,
            feeBps: s.platform_fee_bps,
            tokens,
        }
        .abi_encode(),
        "CreditSystem" => {
            CreditSystem::initializeCall { admin: s.admin, registry_: need(REGISTRY)? }.abi_encode()
        }
        "PaymentChannel" => PaymentChannel::initializeCall { admin: s.admin, tokens }.abi_encode(),
        "Subscription" => Subscription::initializeCall { admin: s.admin, tokens }.abi_encode(),
        other => eyre::bail!("unknown contract {other}"),
    };
    Ok(data.into())
}

/// Builds the transaction of `step` from the record.
pub(crate) fn transaction(step: &Step, record: &Record) -> eyre::Result<Tx> {
    let need = |name: &str| record.proxy(name).ok_or_else(|| eyre::eyre!("{name} is not deployed yet"));
    let create = |input: Vec<u8>| Tx { to: None, input: input.into() };
    let call = |to: Address, input: Vec<u8>| Tx { to: Some(to), input: input.into() };
    Ok(match &step.action {
        Action::DeployToken => {
            let args =
                ("USDC".to_owned(), "USDC".to_owned(), "2".to_owned(), record.deployer).abi_encode_params();
            create([TestStablecoin::BYTECODE.as_ref(), &args].concat())
        }
        Action::Implementation(contract) => create(
            implementation_code(contract).ok_or_else(|| eyre::eyre!("unknown contract {contract}"))?.to_vec(),
        ),
        Action::Proxy(contract) => {
            let implementation = record
                .implementation(contract)
                .ok_or_else(|| eyre::eyre!("{contract} has no implementation yet"))?;
            let args = (implementation, init_data(contract, record)?).abi_encode_params();
            create([ERC1967Proxy::BYTECODE.as_ref(), &args].concat())
        }
        Action::SetRegistry => call(
            need(SPLITTER)?,
            RevenueSplitter::setRegistryCall { registry_: need(REGISTRY)? }.abi_encode(),
        ),
        Action::SetCreditSystem => call(
            need(REGISTRY)?,
            ToolRegistry::setCreditSystemCall { creditSystem_: need("CreditSystem")? }.abi_encode(),
        ),
        Action::Grant { contract, role, to } => {
            let account = match to {
                Grantee::Registry => need(REGISTRY)?,
                Grantee::Keeper => record.settings.keeper.ok_or_eyre("no keeper configured")?,
                Grantee::Admin => record.settings.admin,
            };
            call(
                need(contract)?,
                RevenueSplitter::grantRoleCall { role: role_id(role), account }.abi_encode(),
            )
        }
        Action::Renounce { contract, role } => call(
            need(contract)?,
            RevenueSplitter::renounceRoleCall { role: role_id(role), callerConfirmation: record.deployer }
                .abi_encode(),
        ),
    })
}

/// A gas bound for a step whose transaction cannot be estimated yet (it depends on earlier steps).
pub(crate) fn gas_bound(action: &Action) -> u64 {
    match action {
        Action::DeployToken | Action::Implementation(_) => 6_000_000,
        Action::Proxy(_) => 800_000,
        _ => 150_000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_ids_match_the_contracts() {
        assert_eq!(role_id("DEFAULT_ADMIN_ROLE"), B256::ZERO);
        assert_eq!(role_id("DISTRIBUTOR_ROLE"), keccak256("DISTRIBUTOR_ROLE"));
    }

    #[test]
    fn every_contract_has_creation_code() {
        for contract in CONTRACTS {
            assert!(implementation_code(contract).is_some_and(|code| !code.is_empty()), "{contract}");
        }
        assert!(implementation_code("Nope").is_none());
    }
}
