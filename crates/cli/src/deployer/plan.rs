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
use x402_bindings::Contract::{
    self, CreditSystem as CREDITS, RevenueSplitter as SPLITTER, ToolRegistry as REGISTRY,
};
use x402_bindings::{
    CreditSystem, ERC1967Proxy, PaymentChannel, RevenueSplitter, Subscription, TestStablecoin, ToolRegistry,
    X402Payment,
};

use super::error::{Error, Result};
use super::pipeline::Tx;
use super::record::Record;
/// The step that deploys the TestStablecoin.
pub const TOKEN_STEP: &str = "TestStablecoin";

/// Roles the deploy hands over, by their Solidity constant names; DEFAULT_ADMIN_ROLE last.
const SPLITTER_ROLES: [&str; 3] = ["PAUSER_ROLE", "UPGRADER_ROLE", "DEFAULT_ADMIN_ROLE"];
const REGISTRY_ROLES: [&str; 4] = ["PAUSER_ROLE", "FEE_MANAGER_ROLE", "UPGRADER_ROLE", "DEFAULT_ADMIN_ROLE"];
const CREDIT_ROLES: [&str; 4] = ["PAUSER_ROLE", "BONUS_MANAGER_ROLE", "UPGRADER_ROLE", "DEFAULT_ADMIN_ROLE"];
const BASIC_ROLES: [&str; 3] = ["PAUSER_ROLE", "UPGRADER_ROLE", "DEFAULT_ADMIN_ROLE"];
/// Contracts whose token allowlist a CREATE2 deployment fills after the fact (CreditSystem follows the registry's).
const ALLOWLISTS: [Contract; 4] =
    [Contract::X402Payment, Contract::ToolRegistry, Contract::PaymentChannel, Contract::Subscription];

/// Arachnid's deterministic deployment proxy, at this address on every chain that has it (anvil included):
/// called with `salt ++ creation code`, it creates the contract at the CREATE2 address of that pair.
pub const CREATE2_DEPLOYER: Address =
    alloy::primitives::address!("0x4e59b44847b379578588920ca78fbf26c0b4956c");

/// What a step does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Create the TestStablecoin (`local` only).
    DeployToken,
    /// Create a contract's implementation.
    Implementation(Contract),
    /// Create a contract's ERC1967 proxy, initialized in its constructor.
    Proxy(Contract),
    /// Point the RevenueSplitter at the ToolRegistry.
    SetRegistry,
    /// Wire the CreditSystem into the ToolRegistry.
    SetCreditSystem,
    /// Allowlist the token (CREATE2 deployments, after the fact).
    AllowToken(Contract),
    /// Grant a role.
    Grant {
        /// On which contract.
        contract: Contract,
        /// The role's Solidity constant.
        role: &'static str,
        /// To whom.
        to: Grantee,
    },
    /// The deployer gives up a role.
    Renounce {
        /// On which contract.
        contract: Contract,
        /// The role's Solidity constant.
        role: &'static str,
    },
}

/// Who a role goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grantee {
    /// The ToolRegistry proxy.
    Registry,
    /// The configured keeper.
    Keeper,
    /// The configured admin.
    Admin,
}

/// One planned transaction.
#[derive(Clone, Debug)]
pub struct Step {
    /// Its id in the record.
    pub id: String,
    /// What it does.
    pub action: Action,
}

/// The plan for `record`'s settings, deployer and token.
pub fn plan(record: &Record) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut push = |id: String, action| steps.push(Step { id, action });
    if record.token.test_token {
        push(TOKEN_STEP.to_owned(), Action::DeployToken);
    }
    for contract in Contract::ALL {
        push(format!("{contract}.implementation"), Action::Implementation(contract));
        push(format!("{contract}.proxy"), Action::Proxy(contract));
    }
    if record.create2_salt.is_some() {
        for contract in ALLOWLISTS {
            push(format!("{contract}.setTokenAllowed"), Action::AllowToken(contract));
        }
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
        for (contract, roles) in handed_over(record) {
            for role in roles {
                push(
                    format!("{contract}.grantRole({role},admin)"),
                    Action::Grant { contract, role, to: Grantee::Admin },
                );
            }
        }
        // DEFAULT_ADMIN_ROLE is last in each list, so the deployer gives up its admin role last.
        for (contract, roles) in handed_over(record) {
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

/// The contracts whose roles move from the deployer to the admin, with those roles. A plain deployment
/// initializes four contracts with the admin directly; a CREATE2 one initializes all six with the deployer, so
/// that their creation code (hence their address) does not depend on anything but the deployer and the salt.
fn handed_over(record: &Record) -> Vec<(Contract, &'static [&'static str])> {
    let mut list: Vec<(Contract, &'static [&'static str])> =
        vec![(SPLITTER, &SPLITTER_ROLES), (REGISTRY, &REGISTRY_ROLES)];
    if record.create2_salt.is_some() {
        list.insert(0, (Contract::X402Payment, &BASIC_ROLES));
        list.push((CREDITS, &CREDIT_ROLES));
        list.push((Contract::PaymentChannel, &BASIC_ROLES));
        list.push((Contract::Subscription, &BASIC_ROLES));
    }
    list
}

/// The role id of a Solidity role constant.
pub fn role_id(name: &str) -> B256 {
    if name == "DEFAULT_ADMIN_ROLE" { B256::ZERO } else { keccak256(name) }
}

/// The `initialize` call the proxy of `contract` runs, from the record's settings and addresses.
pub fn init_data(contract: Contract, record: &Record) -> Result<Bytes> {
    let s = &record.settings;
    // A CREATE2 deployment keeps chain-specific values (the token) and the final admin out of the creation code,
    // so each proxy's address depends on the deployer, the salt and the settings only; both are set afterwards.
    let deterministic = record.create2_salt.is_some();
    let tokens = if deterministic {
        Vec::new()
    } else {
        vec![record.token.address.ok_or_else(|| not_yet("the token"))?]
    };
    let admin = if deterministic { record.deployer } else { s.admin };
    let need = |contract: Contract| record.proxy(contract).ok_or_else(|| not_yet(contract.name()));
    let data = match contract {
        Contract::X402Payment => {
            X402Payment::initializeCall { admin, arbiter: s.arbiter, refundWindow_: s.refund_window, tokens }
                .abi_encode()
        }
        // The deployer administers the splitter and the registry until they are wired (see the module docs).
        Contract::RevenueSplitter => {
            RevenueSplitter::initializeCall { admin: record.deployer, treasury: s.treasury }.abi_encode()
        }
        Contract::ToolRegistry => ToolRegistry::initializeCall {
            admin: record.deployer,
            splitter_: need(SPLITTER)?,
            feeBps: s.platform_fee_bps,
            tokens,
        }
        .abi_encode(),
        Contract::CreditSystem => {
            CreditSystem::initializeCall { admin, registry_: need(REGISTRY)? }.abi_encode()
        }
        Contract::PaymentChannel => PaymentChannel::initializeCall { admin, tokens }.abi_encode(),
        Contract::Subscription => Subscription::initializeCall { admin, tokens }.abi_encode(),
    };
    Ok(data.into())
}

/// Builds the transaction of `step` from the record.
pub fn transaction(step: &Step, record: &Record) -> Result<Tx> {
    let need = |contract: Contract| record.proxy(contract).ok_or_else(|| not_yet(contract.name()));
    let create = |input: Vec<u8>| match record.create2_salt {
        None => Tx { to: None, input: input.into(), creates: None },
        Some(salt) => {
            let salt = keccak256((salt, step.id.clone()).abi_encode());
            let creates = CREATE2_DEPLOYER.create2_from_code(salt, &input);
            Tx {
                to: Some(CREATE2_DEPLOYER),
                input: [salt.as_slice(), &input].concat().into(),
                creates: Some(creates),
            }
        }
    };
    let call = |to: Address, input: Vec<u8>| Tx { to: Some(to), input: input.into(), creates: None };
    Ok(match &step.action {
        Action::DeployToken => {
            let args =
                ("USDC".to_owned(), "USDC".to_owned(), "2".to_owned(), record.deployer).abi_encode_params();
            create([TestStablecoin::BYTECODE.as_ref(), &args].concat())
        }
        Action::Implementation(contract) => create(contract.creation_code().to_vec()),
        Action::Proxy(contract) => {
            let implementation = record
                .implementation(*contract)
                .ok_or_else(|| Error::Refused(format!("{contract} has no implementation yet")))?;
            let args = (implementation, init_data(*contract, record)?).abi_encode_params();
            create([ERC1967Proxy::BYTECODE.as_ref(), &args].concat())
        }
        Action::SetRegistry => call(
            need(SPLITTER)?,
            RevenueSplitter::setRegistryCall { registry_: need(REGISTRY)? }.abi_encode(),
        ),
        Action::AllowToken(contract) => {
            let token = record.token.address.ok_or_else(|| not_yet("the token"))?;
            call(need(*contract)?, X402Payment::setTokenAllowedCall { token, allowed: true }.abi_encode())
        }
        Action::SetCreditSystem => call(
            need(REGISTRY)?,
            ToolRegistry::setCreditSystemCall { creditSystem_: need(CREDITS)? }.abi_encode(),
        ),
        Action::Grant { contract, role, to } => {
            let account = match to {
                Grantee::Registry => need(REGISTRY)?,
                Grantee::Keeper => {
                    record.settings.keeper.ok_or_else(|| Error::Refused("no keeper configured".into()))?
                }
                Grantee::Admin => record.settings.admin,
            };
            call(
                need(*contract)?,
                RevenueSplitter::grantRoleCall { role: role_id(role), account }.abi_encode(),
            )
        }
        Action::Renounce { contract, role } => call(
            need(*contract)?,
            RevenueSplitter::renounceRoleCall { role: role_id(role), callerConfirmation: record.deployer }
                .abi_encode(),
        ),
    })
}

fn not_yet(what: &str) -> Error {
    Error::Refused(format!("{what} is not deployed yet"))
}

/// A gas bound for a step whose transaction cannot be estimated yet (it depends on earlier steps).
pub fn gas_bound(action: &Action) -> u64 {
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
}
