//! The tool payment contracts on a real anvil through the generated bindings: a developer registers a tool, a
//! user pays for calls directly and with credits, and revenue flows through both settlements into the splitter,
//! where the developer and the platform withdraw it.

// Test code: a failed step should stop the test with its error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use alloy::primitives::{Address, U256, aliases::U96};
use alloy::providers::DynProvider;
use alloy::sol_types::SolCall;
use x402_bindings::{CreditSystem, RevenueSplitter, ToolRegistry};

mod common;
use common::Mined;

struct Tools {
    net: common::Devnet,
    registry: ToolRegistry::ToolRegistryInstance<DynProvider>,
    credits: CreditSystem::CreditSystemInstance<DynProvider>,
    splitter: RevenueSplitter::RevenueSplitterInstance<DynProvider>,
    treasury: Address,
}

/// Deploys and wires the three contracts as script/Deploy.s.sol does, with the deployer as admin.
async fn tools() -> Tools {
    let net = common::devnet().await;
    let provider = net.provider.clone();
    let treasury = Address::repeat_byte(0x77);
    let admin = net.deployer;

    let implementation = RevenueSplitter::deploy(provider.clone()).await.unwrap();
    let init = RevenueSplitter::initializeCall { admin, treasury }.abi_encode();
    let splitter = RevenueSplitter::new(net.proxy(*implementation.address(), init).await, provider.clone());

    let implementation = ToolRegistry::deploy(provider.clone()).await.unwrap();
    let init = ToolRegistry::initializeCall {
        admin,
        splitter_: *splitter.address(),
        feeBps: 2000,
        tokens: vec![*net.token.address()],
    }
    .abi_encode();
    let registry = ToolRegistry::new(net.proxy(*implementation.address(), init).await, provider.clone());

    let implementation = CreditSystem::deploy(provider.clone()).await.unwrap();
    let init = CreditSystem::initializeCall { admin, registry_: *registry.address() }.abi_encode();
    let credits = CreditSystem::new(net.proxy(*implementation.address(), init).await, provider.clone());

    splitter.setRegistry(*registry.address()).mined().await;
    let role = splitter.DISTRIBUTOR_ROLE().call().await.unwrap();
    splitter.grantRole(role, *registry.address()).mined().await;
    registry.setCreditSystem(*credits.address()).mined().await;
    Tools { net, registry, credits, splitter, treasury }
}

#[tokio::test]
async fn revenue_from_direct_and_credit_payments_reaches_developer_and_platform() {
    let t = tools().await;
    let (developer, user) = (t.net.accounts[0], t.net.accounts[1]);
    let payout = Address::repeat_byte(0x55);
    let token = *t.net.token.address();
    let price = 2_500u64;

    t.registry.registerTool("weather".into(), token, U96::from(price), payout).from(developer).mined().await;
    let tool_id = t.registry.toolIdOf("weather".into()).call().await.unwrap();
    assert_eq!(tool_id, U256::from(1u64));

    t.net.fund(user, 1_000_000).await;
    for spender in [*t.registry.address(), *t.credits.address()] {
        t.net.token.approve(spender, U256::MAX).from(user).mined().await;
    }
    t.credits.deposit(token, U256::from(10_000u64)).from(user).mined().await;
    for _ in 0..3 {
        let receipt = t.credits.payWithCredits(tool_id, U256::from(price)).from(user).mined().await;
        assert!(receipt.status());
    }
    t.registry.payForTool(tool_id, U256::from(price)).from(user).mined().await;

    // Anyone settles: credits into the registry, then the registry into the splitter.
    t.credits.settle(token, vec![tool_id]).mined().await;
    t.registry.settle(token, vec![tool_id]).mined().await;

    let stats = t.registry.getToolStats(tool_id).call().await.unwrap();
    assert_eq!(stats.calls, 4);
    assert_eq!(stats.revenue, U256::from(4 * price));
    assert_eq!(t.splitter.balanceOf(payout, token).call().await.unwrap(), U256::from(8_000u64));
    assert_eq!(t.splitter.balanceOf(t.treasury, token).call().await.unwrap(), U256::from(2_000u64));
    let (principal, bonus) = {
        let credits = t.credits.creditsOf(user, token).call().await.unwrap();
        (credits.principal, credits.bonus)
    };
    assert_eq!(principal, U256::from(10_000 - 3 * price));
    assert_eq!(bonus, U256::ZERO);
    assert_eq!(t.net.balance(*t.registry.address()).await, U256::ZERO);
    assert_eq!(t.net.balance(*t.splitter.address()).await, U256::from(4 * price));
}
