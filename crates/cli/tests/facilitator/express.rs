//! An @x402/express server configured with this facilitator's URL, paid by @x402/fetch: the whole official v2
//! loop, with the money checked on chain.

use alloy::primitives::{B256, U256};
use alloy::providers::Provider;
use serde_json::json;

use crate::common::anvil;
use crate::common::facilitator::{FacilitatorProc, node};
use crate::common::keeper::{MERCHANT, net};

#[tokio::test(flavor = "multi_thread")]
async fn an_express_server_pointed_at_the_facilitator_takes_payments_from_fetch() {
    let net = net(anvil().spawn()).await;
    let data = tempfile::tempdir().unwrap();
    let facilitator = FacilitatorProc::ready(&net, data.path(), &[]).await;
    let merchant = net.keys[MERCHANT].address();
    let payer = &net.keys[3];
    let before =
        (net.demo.balance(merchant).await.unwrap(), net.demo.balance(payer.address()).await.unwrap());
    let config = json!({
        "facilitatorUrl": facilitator.url,
        "chainId": net.demo.chain_id,
        "token": {"address": net.demo.token.address, "name": net.demo.token.name, "version": net.demo.token.version},
        "merchant": merchant,
        "payerKey": format!("0x{}", alloy::hex::encode(payer.to_bytes())),
        "price": 1500,
        "paid": 3,
    });
    let out = node("express-paid-by-fetch.mjs", &[&config.to_string()]);

    let unpaid = &out["unpaid"];
    assert_eq!(unpaid["status"], 402, "{out}");
    let offer = &unpaid["paymentRequired"]["accepts"][0];
    assert_eq!(offer["network"], "eip155:31337");
    assert_eq!(offer["amount"], "1500");
    assert_eq!(
        offer["asset"].as_str().unwrap().to_lowercase(),
        net.demo.token.address.to_string().to_lowercase()
    );

    let paid = out["paid"].as_array().unwrap();
    assert_eq!(paid.len(), 3);
    let mut transactions = Vec::new();
    for answer in paid {
        assert_eq!(answer["status"], 200, "{answer}");
        assert_eq!(answer["body"]["weather"], "sunny");
        let receipt = &answer["paymentResponse"];
        assert_eq!(receipt["success"], true, "{answer}");
        assert_eq!(receipt["network"], "eip155:31337");
        assert_eq!(receipt["payer"], payer.address().to_checksum(None));
        let tx: B256 = receipt["transaction"].as_str().unwrap().parse().unwrap();
        let mined = net.demo.provider.get_transaction_receipt(tx).await.unwrap().unwrap();
        assert!(mined.status());
        transactions.push(tx);
    }
    transactions.dedup();
    assert_eq!(transactions.len(), 3, "one settlement per paid request, sent one after the other");
    let after = (net.demo.balance(merchant).await.unwrap(), net.demo.balance(payer.address()).await.unwrap());
    assert_eq!(after.0 - before.0, U256::from(4500), "the merchant got the three payments");
    assert_eq!(before.1 - after.1, U256::from(4500), "the payer paid them, once each");
}
