//! PaymentChannel and Subscription on a real anvil through the generated bindings: channels opened gaslessly
//! with Rust-signed EIP-3009 authorizations and paid with Rust-signed vouchers, and subscriptions charged by
//! `executeBatch` as chain time advances. Proves that the Rust voucher encoding, the channel id derivation and
//! the generated ABI agree with the Solidity side.

// Test code: a failed step should stop the test with its error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use x402_bindings::eip3009::{ReceiveWithAuthorization, token_domain};
use x402_bindings::{IPaymentChannel, ISubscription, PaymentChannel, Subscription, eip3009, voucher};

mod common;
use common::Mined;

const DEPOSIT: u64 = 50_000_000;
const CHALLENGE: u64 = 3600;

type Channels = PaymentChannel::PaymentChannelInstance<alloy::providers::DynProvider>;

async fn channels(net: &common::Devnet) -> Channels {
    let implementation = PaymentChannel::deploy(net.provider.clone()).await.unwrap();
    let init = PaymentChannel::initializeCall { admin: net.deployer, tokens: vec![*net.token.address()] };
    let proxy = net.proxy(*implementation.address(), init.abi_encode()).await;
    PaymentChannel::new(proxy, net.provider.clone())
}

/// Opens a channel from `payer` to `recipient` without the payer spending gas: the payer signs an EIP-3009
/// receive authorization bound to the channel, the deployer relays it.
async fn open_gasless(
    net: &common::Devnet,
    channels: &Channels,
    payer: &PrivateKeySigner,
    recipient: Address,
) -> B256 {
    net.fund(payer.address(), DEPOSIT).await;
    let salt = keccak256(payer.address());
    let id = voucher::channel_id(payer.address(), salt);
    assert_eq!(channels.channelIdOf(payer.address(), salt).call().await.unwrap(), id);
    let expires_at = U256::from(net.now().await + 86_400);
    let challenge = U256::from(CHALLENGE);
    let nonce = channels.openAuthorizationNonce(id, recipient, expires_at, challenge).call().await.unwrap();
    let authorization = ReceiveWithAuthorization {
        from: payer.address(),
        to: *channels.address(),
        value: U256::from(DEPOSIT),
        validAfter: U256::ZERO,
        validBefore: U256::from(net.now().await + 3600),
        nonce,
    };
    let domain = token_domain("USDC".into(), "2".into(), net.chain_id, *net.token.address());
    let signature = eip3009::sign(payer, &domain, &authorization).await.unwrap();
    channels
        .openChannelWithAuthorization(
            salt,
            payer.address(),
            recipient,
            *net.token.address(),
            U256::from(DEPOSIT),
            expires_at,
            challenge,
            authorization.validAfter,
            authorization.validBefore,
            signature,
        )
        .mined()
        .await;
    id
}

#[tokio::test]
async fn claims_rust_signed_vouchers_one_by_one_and_in_a_batch() {
    let net = common::devnet().await;
    let channels = channels(&net).await;
    let recipient = net.accounts[0];
    let domain = voucher::domain(net.chain_id, *channels.address());
    assert_eq!(
        channels.voucherDigest(B256::ZERO, U256::from(7)).call().await.unwrap(),
        alloy::sol_types::SolStruct::eip712_signing_hash(
            &voucher::Voucher { channelId: B256::ZERO, amount: U256::from(7) },
            &domain
        )
    );

    let payers: Vec<PrivateKeySigner> = (0..3).map(|_| PrivateKeySigner::random()).collect();
    let mut ids = Vec::new();
    for payer in &payers {
        ids.push(open_gasless(&net, &channels, payer, recipient).await);
    }
    assert_eq!(net.balance(*channels.address()).await, U256::from(3 * DEPOSIT));

    // One claim, then a batch of the next vouchers of all three channels plus a replay of the first.
    let first = voucher::sign(&payers[0], &domain, ids[0], U256::from(1_000_000)).await.unwrap();
    channels.claim(ids[0], U256::from(1_000_000), first.clone()).from(recipient).mined().await;
    let mut items = vec![IPaymentChannel::VoucherClaim {
        channelId: ids[0],
        amount: U256::from(1_000_000),
        signature: first,
    }];
    for (payer, id) in payers.iter().zip(&ids) {
        let amount = U256::from(2_500_000);
        let signature = voucher::sign(payer, &domain, *id, amount).await.unwrap();
        items.push(IPaymentChannel::VoucherClaim { channelId: *id, amount, signature });
    }
    let outcomes = channels.claimBatch(items.clone()).from(recipient).call().await.unwrap();
    assert_eq!(outcomes, vec![4, 0, 0, 0], "replay skipped as NothingToClaim, the rest claimed");
    channels.claimBatch(items).from(recipient).mined().await;
    assert_eq!(net.balance(recipient).await, U256::from(3 * 2_500_000));

    // The recipient closes the first channel; its payer gets the unclaimed rest back.
    channels.close(ids[0], U256::ZERO, Default::default()).from(recipient).mined().await;
    assert_eq!(net.balance(payers[0].address()).await, U256::from(DEPOSIT - 2_500_000));
    assert_eq!(channels.getChannel(ids[0]).call().await.unwrap().status, 3);
}

#[tokio::test]
async fn executes_due_subscriptions_once_per_period() {
    let net = common::devnet().await;
    let implementation = Subscription::deploy(net.provider.clone()).await.unwrap();
    let init = Subscription::initializeCall { admin: net.deployer, tokens: vec![*net.token.address()] };
    let proxy = net.proxy(*implementation.address(), init.abi_encode()).await;
    let subscriptions = Subscription::new(proxy, net.provider.clone());
    let (recipient, keeper) = (net.accounts[0], net.deployer);
    let period = 3600u64;
    let amount = 1_000_000u64;

    let mut ids = Vec::new();
    for subscriber in &net.accounts[1..] {
        net.fund(*subscriber, 10 * amount).await;
        net.token.approve(proxy, U256::MAX).from(*subscriber).mined().await;
        let terms = ISubscription::Terms {
            recipient,
            token: *net.token.address(),
            amount: U256::from(amount),
            period: U256::from(period),
            startTime: U256::ZERO,
            endsAt: U256::ZERO,
            maxCount: U256::from(2),
        };
        let receipt = subscriptions.createSubscription(terms, U256::ZERO).from(*subscriber).mined().await;
        let created = receipt.decoded_log::<Subscription::SubscriptionCreated>().unwrap();
        ids.push(created.subscriptionId);
    }
    let count = ids.len() as u64;

    let keeper_before = net.balance(keeper).await;
    let due = subscriptions.dueSubscriptions(U256::ZERO, U256::from(100)).call().await.unwrap();
    assert_eq!(due.subscriptionIds, ids);
    subscriptions.executeBatch(ids.clone()).from(keeper).mined().await;
    // Same period again: nothing is due, every item is skipped, nobody is charged twice.
    let again = subscriptions.executeBatch(ids.clone()).from(keeper).call().await.unwrap();
    assert!(again.iter().all(|outcome| *outcome == 3), "NotDue: {again:?}");
    assert!(
        subscriptions
            .dueSubscriptions(U256::ZERO, U256::from(100))
            .call()
            .await
            .unwrap()
            .subscriptionIds
            .is_empty()
    );

    let next = net.now().await + period;
    net.provider.raw_request::<_, String>("evm_mine".into(), (next,)).await.unwrap();
    subscriptions.executeBatch(ids.clone()).from(keeper).mined().await;

    let reward = amount * 10 / 10_000;
    let credited = subscriptions.withdrawableBalance(recipient, *net.token.address()).call().await.unwrap();
    assert_eq!(credited, U256::from(2 * count * (amount - reward)));
    assert_eq!(subscriptions.liveCount().call().await.unwrap(), U256::ZERO, "maxCount 2 reached: all ended");
    subscriptions.withdraw(*net.token.address(), recipient).from(recipient).mined().await;
    assert_eq!(net.balance(recipient).await, credited);
    assert_eq!(net.balance(keeper).await - keeper_before, U256::from(2 * count * reward), "rewards pushed");
    assert_eq!(net.balance(proxy).await, U256::ZERO);
}
