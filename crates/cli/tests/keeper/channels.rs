//! Payment channels: registered vouchers of EOA and contract-wallet payers claimed before a close.

use std::time::Duration;

use alloy::primitives::{B256, U256};
use serde_json::Value;
use x402_bindings::PaymentChannel;

use crate::common::keeper::*;

#[tokio::test(flavor = "multi_thread")]
async fn registered_vouchers_of_eoa_and_contract_wallet_payers_are_claimed_before_the_close() {
    let net = net(crate::common::anvil().spawn()).await;
    let merchant = net.keys[MERCHANT].address();
    let keeper_address = net.keys[KEEPER].address();
    let usdc = |n: u64| U256::from(n * USDC);
    net.demo.approve_claim_operator(merchant, keeper_address).await.unwrap();

    // To the merchant: channel A from an EOA, B from a contract wallet, D from a wallet that approves only in
    // simulations and burns its gas on chain. C goes to a recipient that has not made the keeper its claim
    // operator.
    let a = net.demo.open_channel(net.keys[1].address(), merchant, usdc(100), 900).await.unwrap();
    let c =
        net.demo.open_channel(net.keys[3].address(), net.keys[6].address(), usdc(100), 900).await.unwrap();
    let owner = &net.keys[2];
    let wallet = contract_wallet(&net, owner.address()).await;
    let (b, as_wallet) = open_from_contract(&net, wallet, merchant, 0xb).await;
    let hostile = two_faced_wallet(&net, 0xd4).await;
    // D sorts before B, so the claim batch checks D's wallet and then B's: D's burn must not leave B short.
    let salt = (0..=u8::MAX)
        .find(|salt| x402_bindings::voucher::channel_id(hostile, B256::repeat_byte(*salt)) < b)
        .unwrap();
    let (d, as_hostile) = open_from_contract(&net, hostile, merchant, salt).await;

    let mut keeper = KeeperProc::start(&net, &net.scratch.dir().join("keeper"), 1, "keeper.log");
    keeper.wait_ready().await;
    let register = |body: Value| {
        let keeper = &keeper;
        async move { keeper.post("/vouchers", &body).await }
    };
    let stored = |answer: (u16, Value)| (answer.0, answer.1["stored"].as_bool(), answer.1["reason"].clone());
    let refused = |answer: (u16, Value)| (answer.0, answer.1["reason"].as_str().map(str::to_owned));

    // The EOA's voucher; a lower one later changes nothing.
    let answer = register(net.demo.voucher(&net.keys[1], a, usdc(25)).await.unwrap()).await;
    assert_eq!(stored(answer), (202, Some(true), Value::Null));
    let answer = register(net.demo.voucher(&net.keys[1], a, usdc(20)).await.unwrap()).await;
    assert_eq!(stored(answer), (200, Some(false), Value::Null));
    // The wallet's vouchers: its owner's signature with a byte appended (no ECDSA signature of the payer can
    // be that long, so only the wallet can approve it), then a higher one with the owner's bare signature.
    let mut wrapped = net.demo.voucher(owner, b, usdc(30)).await.unwrap();
    wrapped["signature"] = Value::String(format!("{}00", wrapped["signature"].as_str().unwrap()));
    assert_eq!(stored(register(wrapped).await), (202, Some(true), Value::Null));
    let answer = register(net.demo.voucher(owner, b, usdc(40)).await.unwrap()).await;
    assert_eq!(stored(answer), (202, Some(true), Value::Null));
    // The two-faced wallet's voucher passes the simulation.
    let answer = register(net.demo.voucher(&net.keys[4], d, usdc(10)).await.unwrap()).await;
    assert_eq!(stored(answer), (202, Some(true), Value::Null));
    // Refused with the contract's reasons: the payer's signature in forms only ECDSA libraries accept, a key
    // that is neither the payer nor its wallet's owner, an unknown channel, and a recipient that does not let
    // the keeper claim.
    let [twin, zero_one] = malleable(&net.demo.voucher(&net.keys[1], a, usdc(50)).await.unwrap());
    for (body, reason) in [
        (twin, "invalid_voucher_signature"),
        (zero_one, "invalid_voucher_signature"),
        (net.demo.voucher(&net.keys[4], b, usdc(50)).await.unwrap(), "invalid_voucher_signature"),
        (net.demo.voucher(&net.keys[4], a, usdc(50)).await.unwrap(), "invalid_voucher_signature"),
        (net.demo.voucher(&net.keys[1], B256::repeat_byte(7), usdc(5)).await.unwrap(), "unknown_channel"),
        (net.demo.voucher(&net.keys[3], c, usdc(10)).await.unwrap(), "keeper_not_claim_operator"),
    ] {
        assert_eq!(refused(register(body).await), (400, Some(reason.to_owned())));
    }

    // The payers start closing: the keeper claims the registered vouchers during the challenge period, in one
    // transaction that has room for D's wallet to burn its budget. D's claim is skipped on chain; the keeper
    // drops it and the channel takes no more vouchers.
    let nonce = keeper_nonce(&net).await;
    net.demo.start_close(net.keys[1].address(), a).await.unwrap();
    let channels = net.demo.contracts.payment_channel;
    sent_by(PaymentChannel::new(channels, &as_wallet).startClose(b).from(wallet).send().await).await;
    sent_by(PaymentChannel::new(channels, &as_hostile).startClose(d).from(hostile).send().await).await;
    wait_until("both vouchers claimed", 60, || async {
        net.demo.channel(a).await.unwrap() == (2, usdc(25))
            && net.demo.channel(b).await.unwrap() == (2, usdc(40))
    })
    .await;
    wait_until("the skipped claim recorded", 30, || async {
        let metrics = reqwest::get(format!("{}/metrics", keeper.api)).await.unwrap().text().await.unwrap();
        metrics.contains("x402_keeper_items_total{job=\"channels\",outcome=\"claim_skipped\"} 1")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(keeper_nonce(&net).await, nonce + 1, "one claim transaction, not one per tick");
    assert_eq!(net.demo.channel(d).await.unwrap(), (2, U256::ZERO));
    assert_eq!(net.demo.balance(merchant).await.unwrap(), usdc(65));
    let answer = register(net.demo.voucher(&net.keys[4], d, usdc(20)).await.unwrap()).await;
    assert_eq!(refused(answer), (400, Some("channel_refused".to_owned())));
    // A voucher for no more than was paid is of no use now.
    let answer = register(net.demo.voucher(&net.keys[1], a, usdc(25)).await.unwrap()).await;
    assert_eq!(refused(answer), (400, Some("nothing_to_claim".to_owned())));

    // After the challenge period the keeper finalizes all three; the payers get the rest back.
    net.demo.advance(901).await.unwrap();
    wait_until("the channels finalized", 60, || async {
        let mut closed = true;
        for id in [a, b, d] {
            closed &= net.demo.channel(id).await.unwrap().0 == 3;
        }
        closed
    })
    .await;
    assert_eq!(net.demo.balance(merchant).await.unwrap(), usdc(65));
    assert_eq!(net.demo.balance(wallet).await.unwrap(), usdc(60));
    assert_eq!(net.demo.balance(hostile).await.unwrap(), usdc(100));
    assert_eq!(net.demo.balance(net.keys[1].address()).await.unwrap(), usdc(1_000_000 - 100 + 75));
    assert_eq!(net.demo.channel(c).await.unwrap(), (1, U256::ZERO), "channel C is untouched");
    let answer = register(net.demo.voucher(&net.keys[1], a, usdc(90)).await.unwrap()).await;
    assert_eq!(refused(answer), (400, Some("channel_not_claimable".to_owned())));
    assert!(keeper.terminate().success());
}
