//! Deploys the contracts on a real anvil through the generated bindings and pays through them with
//! authorizations signed in Rust. Proves that the Rust EIP-712 encoding, the invoice id and nonce derivations and
//! the generated ABI agree with the Solidity side.

// Test code: a failed step should stop the test with its error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolCall, SolEvent};
use x402_bindings::eip3009::{ReceiveWithAuthorization, TransferWithAuthorization, sign, token_domain};
use x402_bindings::invoice::{authorization_nonce, invoice_id};
use x402_bindings::{InvoiceStatus, SettlementOutcome, X402Payment};

mod common;
use common::Mined;

/// A devnet with an X402Payment proxy accepting its token.
struct Net {
    base: common::Devnet,
    payee: Address,
    payment: X402Payment::X402PaymentInstance<alloy::providers::DynProvider>,
    domain: Eip712Domain,
}

async fn devnet() -> Net {
    let base = common::devnet().await;
    let implementation = X402Payment::deploy(base.provider.clone()).await.unwrap();
    let initialize = X402Payment::initializeCall {
        admin: base.deployer,
        arbiter: base.deployer,
        refundWindow_: 600,
        tokens: vec![*base.token.address()],
    };
    let proxy = base.proxy(*implementation.address(), initialize.abi_encode()).await;
    let payment = X402Payment::new(proxy, base.provider.clone());
    // The domain comes from the token, as it must against real USDC.
    let domain = token_domain(
        base.token.name().call().await.unwrap(),
        base.token.version().call().await.unwrap(),
        base.chain_id,
        *base.token.address(),
    );
    let payee = base.accounts[0];
    Net { base, payee, payment, domain }
}

#[tokio::test]
async fn pays_an_invoice_with_a_rust_signed_receive_authorization() {
    let net = devnet().await;
    let payer = PrivateKeySigner::random();
    net.base.fund(payer.address(), 5_000_000).await;

    let salt = keccak256("order-1");
    let amount = alloy::primitives::Uint::<96, 2>::from(1_250_000u64);
    let expires_at = net.base.now().await + 3600;
    net.payment
        .createInvoice(salt, *net.base.token.address(), amount, expires_at)
        .from(net.payee)
        .mined()
        .await;

    let id = invoice_id(net.payee, salt);
    assert_eq!(net.payment.invoiceIdOf(net.payee, salt).call().await.unwrap(), id);
    let nonce = authorization_nonce(net.base.chain_id, *net.payment.address(), id);
    assert_eq!(net.payment.authorizationNonceOf(id).call().await.unwrap(), nonce);

    let authorization = ReceiveWithAuthorization {
        from: payer.address(),
        to: *net.payment.address(),
        value: U256::from(1_250_000u64),
        validAfter: U256::ZERO,
        validBefore: U256::from(expires_at),
        nonce,
    };
    let signature = sign(&payer, &net.domain, &authorization).await.unwrap();

    // A relayer (the deployer) pays the gas; the payer never holds ETH.
    let receipt = net
        .payment
        .payWithAuthorization(id, payer.address(), U256::ZERO, U256::from(expires_at), signature)
        .mined()
        .await;
    assert!(receipt.status());

    let invoice = net.payment.getInvoice(id).call().await.unwrap();
    assert_eq!(InvoiceStatus::try_from(invoice.status), Ok(InvoiceStatus::Confirmed));
    assert_eq!(invoice.payer, payer.address());
    assert_eq!(net.base.balance(*net.payment.address()).await, U256::from(1_250_000u64));
    assert_eq!(net.base.balance(payer.address()).await, U256::from(3_750_000u64));
}

#[tokio::test]
async fn settles_a_batch_of_rust_signed_transfer_authorizations() {
    let net = devnet().await;
    let merchants = [Address::repeat_byte(0xa1), Address::repeat_byte(0xa2)];
    let payers: Vec<PrivateKeySigner> = (0..3).map(|_| PrivateKeySigner::random()).collect();
    for payer in &payers {
        net.base.fund(payer.address(), 10_000_000).await;
    }
    let now = net.base.now().await;

    let mut items = Vec::new();
    for (i, payer) in payers.iter().enumerate() {
        let authorization = TransferWithAuthorization {
            from: payer.address(),
            to: merchants[i % 2],
            value: U256::from(1_000_000u64),
            validAfter: U256::ZERO,
            validBefore: U256::from(now + 3600),
            nonce: B256::repeat_byte(i as u8 + 1),
        };
        let signature = sign(payer, &net.domain, &authorization).await.unwrap();
        items.push(authorization.into_batch_item(signature));
    }
    // The same payload twice, and one that has expired.
    items.push(items[0].clone());
    let stale = TransferWithAuthorization {
        from: payers[1].address(),
        to: merchants[0],
        value: U256::from(1u64),
        validAfter: U256::ZERO,
        validBefore: U256::from(now - 1),
        nonce: B256::repeat_byte(0xee),
    };
    let signature = sign(&payers[1], &net.domain, &stale).await.unwrap();
    items.push(stale.into_batch_item(signature));

    let call = net.payment.settleBatch(*net.base.token.address(), items.clone());
    use SettlementOutcome::{AlreadyUsed, Expired, Settled};
    let expected = vec![Settled, Settled, Settled, AlreadyUsed, Expired];
    let simulated: Result<Vec<_>, _> =
        call.call().await.unwrap().into_iter().map(SettlementOutcome::try_from).collect();
    assert_eq!(simulated.unwrap(), expected);

    let receipt = call.from(net.base.deployer).mined().await;
    assert!(receipt.status());
    let settled = receipt
        .inner
        .logs()
        .iter()
        .find_map(|log| X402Payment::BatchSettled::decode_log(&log.inner).ok())
        .expect("BatchSettled event");
    assert_eq!(settled.settledCount, U256::from(3u64));
    assert_eq!(settled.settledValue, U256::from(3_000_000u64));
    let emitted: Result<Vec<_>, _> =
        settled.outcomes.iter().map(|b| SettlementOutcome::try_from(*b)).collect();
    assert_eq!(emitted.unwrap(), expected);

    assert_eq!(net.base.balance(merchants[0]).await, U256::from(2_000_000u64));
    assert_eq!(net.base.balance(merchants[1]).await, U256::from(1_000_000u64));
    for (i, payer) in payers.iter().enumerate() {
        let used =
            net.base.token.authorizationState(payer.address(), B256::repeat_byte(i as u8 + 1)).call().await;
        assert!(used.unwrap());
    }
    // Nothing passed through the settlement contract.
    assert_eq!(net.base.balance(*net.payment.address()).await, U256::ZERO);
}
