//! x402 v1: the `x402` 1.x package's facilitator client (what v1 servers use) and its client's payment header, on
//! a local chain with chain id 84532, which v1 clients know as `base-sepolia`.

use alloy::primitives::{B256, U256};
use alloy::providers::Provider;
use serde_json::json;

use crate::common::anvil;
use crate::common::facilitator::{FacilitatorProc, node};
use crate::common::keeper::{MERCHANT, net};

#[tokio::test(flavor = "multi_thread")]
async fn the_v1_facilitator_client_settles_on_a_local_chain_with_chain_id_84532() {
    let net = net(anvil().chain_id(84_532).spawn()).await;
    let data = tempfile::tempdir().unwrap();
    let facilitator = FacilitatorProc::ready(&net, data.path(), &[]).await;
    let merchant = net.keys[MERCHANT].address();
    let before = net.demo.balance(merchant).await.unwrap();
    let config = json!({
        "url": facilitator.url,
        "token": {"address": net.demo.token.address, "name": net.demo.token.name, "version": net.demo.token.version},
        "merchant": merchant,
        "payerKey": format!("0x{}", alloy::hex::encode(net.keys[2].to_bytes())),
        "amount": 2500,
    });
    let out = node("v1-facilitator-client.mjs", &[&config.to_string()]);

    let kinds = out["supported"]["kinds"].as_array().unwrap();
    assert!(
        kinds.contains(&json!({"x402Version": 1, "scheme": "exact", "network": "base-sepolia"})),
        "{out}"
    );
    assert!(
        kinds.contains(&json!({"x402Version": 2, "scheme": "exact", "network": "eip155:84532"})),
        "{out}"
    );
    assert_eq!(out["verify"]["isValid"], true, "{out}");
    let settled = &out["settle"];
    assert_eq!(settled["success"], true, "{out}");
    assert_eq!(settled["network"], "base-sepolia", "answered in the request's own network name");
    assert_eq!(out["settleAgain"], *settled, "a repeated settle answers the same");
    assert_eq!(out["wrongAmount"]["isValid"], false);
    assert_eq!(out["wrongAmount"]["invalidReason"], "invalid_exact_evm_payload_authorization_value_mismatch");
    let tx: B256 = settled["transaction"].as_str().unwrap().parse().unwrap();
    assert!(net.demo.provider.get_transaction_receipt(tx).await.unwrap().unwrap().status());
    assert_eq!(net.demo.balance(merchant).await.unwrap() - before, U256::from(2500));
}
