//! The transaction pipeline against a real anvil that mines only when told to (`--no-mining`): a stuck
//! transaction is re-sent with higher fees up to the cap and lands once; a receipt counts only at the
//! confirmation depth; a transaction reorganized out before that depth is re-broadcast by `resolve` and lands once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, Bytes, address};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use serde_json::Value;
use tokio::task::JoinHandle;
use x402_keeper::config::TxPolicy;
use x402_keeper::sender::{Resolution, SendError, Sender};
use x402_keeper::store::{Change, PendingTx, RedbStore, Store, TxJob};

const TARGET: Address = address!("0x0000000000000000000000000000000000004242");
const GWEI: u128 = 1_000_000_000;

struct Chain {
    _anvil: AnvilInstance,
    provider: DynProvider,
    signer: PrivateKeySigner,
    store: Arc<RedbStore>,
    _dir: tempfile::TempDir,
}

fn chain() -> Chain {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    let anvil = Anvil::at(path).arg("--no-mining").spawn();
    let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url()).erased();
    let signer: PrivateKeySigner = anvil.keys()[0].clone().into();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(&dir.path().join("keeper.redb")).unwrap());
    Chain { _anvil: anvil, provider, signer, store, _dir: dir }
}

fn sender(chain: &Chain, confirmations: u64, max_fee_gwei: u128) -> Sender {
    let policy = TxPolicy {
        confirmations,
        bump_after: Duration::from_millis(700),
        max_fee_per_gas: max_fee_gwei * GWEI,
        receipt_timeout: Duration::from_secs(60),
        poll_interval: Duration::from_millis(50),
    };
    Sender::new(chain.provider.clone(), EthereumWallet::from(chain.signer.clone()), 31_337, policy)
}

const JOB: TxJob = TxJob::Subscriptions { ids: Vec::new() };

/// Sends a plain call to TARGET in the background.
fn send(chain: &Chain, mut sender: Sender) -> JoinHandle<(Sender, Result<PendingTx, SendError>)> {
    let store = Arc::clone(&chain.store);
    tokio::spawn(async move {
        let result = sender
            .send(store.as_ref(), JOB, TARGET, Bytes::new(), 21_000, |_| Change::default())
            .await
            .map(|(_, pending)| pending);
        (sender, result)
    })
}

async fn mine(chain: &Chain, blocks: u64) {
    for _ in 0..blocks {
        chain.provider.raw_request::<_, Value>("evm_mine".into(), ()).await.unwrap();
    }
}

/// The stored transaction, once there is one whose `ready` holds.
async fn stored(chain: &Chain, ready: impl Fn(&PendingTx) -> bool) -> PendingTx {
    for _ in 0..400 {
        if let Some(tx) = chain.store.pending_txs().unwrap().into_iter().find(|tx| ready(tx)) {
            return tx;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no stored transaction reached the expected state");
}

/// The transactions anvil's pool holds.
async fn pool(chain: &Chain) -> Vec<Value> {
    let content: Value = chain.provider.raw_request("txpool_content".into(), ()).await.unwrap();
    content["pending"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|by_nonce| by_nonce.as_object().unwrap().values().cloned())
        .collect()
}

async fn nonce(chain: &Chain) -> u64 {
    chain.provider.get_transaction_count(chain.signer.address()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stuck_transaction_is_re_sent_with_higher_fees_up_to_the_cap_and_lands_once() {
    let chain = chain();
    let cap_gwei = 8;
    let task = send(&chain, sender(&chain, 1, cap_gwei));
    let first = stored(&chain, |_| true).await;
    let initial_fee = first.max_fee_per_gas;
    assert!(initial_fee < cap_gwei * GWEI, "anvil's initial fee {initial_fee} leaves room to bump");

    // Nothing is mined: every 0.7 s the fees go up by at least 25% (the node needs 10%) until they reach the cap.
    let capped = stored(&chain, |tx| tx.max_fee_per_gas == cap_gwei * GWEI).await;
    assert!(capped.hashes.len() >= 3, "several bumps: {:?}", capped.hashes);
    assert_eq!(capped.nonce, first.nonce);
    assert_eq!(capped.hashes[0], first.hashes[0], "every signed hash is kept");
    // At the cap the fees stop rising.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = chain.store.pending_txs().unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].hashes.len(), capped.hashes.len(), "no bump above the cap");
    // The node keeps one transaction at the nonce: the highest-priced one it accepted.
    let pooled = pool(&chain).await;
    assert_eq!(pooled.len(), 1, "one transaction in the pool: {pooled:?}");
    let pooled_hash = pooled[0]["hash"].as_str().unwrap().parse().unwrap();
    assert!(capped.hashes.contains(&pooled_hash));
    assert_ne!(pooled_hash, first.hashes[0], "a bumped version replaced the first one");
    let pooled_fee =
        u128::from_str_radix(pooled[0]["maxFeePerGas"].as_str().unwrap().trim_start_matches("0x"), 16)
            .unwrap();
    assert!(
        pooled_fee * 100 >= initial_fee * 125 * 125 / 100,
        "fees were raised: {initial_fee} -> {pooled_fee}"
    );

    mine(&chain, 1).await;
    let (_, result) = task.await.unwrap();
    let pending = result.unwrap();
    let receipt = chain.provider.get_transaction_receipt(pooled_hash).await.unwrap().unwrap();
    assert!(receipt.status());
    assert_eq!(pending.hashes, later[0].hashes);
    assert_eq!(nonce(&chain).await, 1, "landed once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receipt_counts_at_the_confirmation_depth_and_a_reorged_transaction_is_sent_again() {
    let chain = chain();
    let task = send(&chain, sender(&chain, 3, 100));
    let pending = stored(&chain, |_| true).await;

    // Mined, one and then two blocks deep: not confirmed yet.
    mine(&chain, 2).await;
    let receipt = chain.provider.get_transaction_receipt(pending.hashes[0]).await.unwrap().unwrap();
    let included = receipt.block_number.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!task.is_finished(), "two blocks are not three confirmations");

    // The two blocks are rolled back (the transaction with them, and anvil does not re-queue it), then the chain
    // grows past the depth without it: the send reports the reorg and leaves the transaction stored.
    chain.provider.raw_request::<_, Value>("anvil_rollback".into(), (2u64,)).await.unwrap();
    assert!(chain.provider.get_transaction_receipt(pending.hashes[0]).await.unwrap().is_none());
    mine(&chain, 3).await;
    let (mut sender, result) = task.await.unwrap();
    match result {
        Err(SendError::Reorged(hash)) => assert_eq!(hash, pending.hashes[0]),
        other => panic!("expected a reorg error, got {other:?}"),
    }
    assert_eq!(nonce(&chain).await, 0, "the nonce is free again");
    let mut left = chain.store.pending_txs().unwrap();
    assert_eq!(left.len(), 1, "still stored for the next tick");

    // The next tick resolves it: re-broadcast, mined again, confirmed at depth 3.
    let store = Arc::clone(&chain.store);
    let resolve = tokio::spawn(async move {
        let mut tx = left.remove(0);
        let resolution = sender.resolve(store.as_ref(), &mut tx).await;
        (resolution, tx)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(pool(&chain).await.len(), 1, "re-broadcast");
    mine(&chain, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!resolve.is_finished());
    mine(&chain, 2).await;
    let (resolution, tx) = resolve.await.unwrap();
    match resolution.unwrap() {
        Resolution::Mined(receipt) => {
            assert_eq!(receipt.transaction_hash, tx.hashes[0]);
            assert!(receipt.block_number.unwrap() >= included);
        }
        Resolution::Dropped => panic!("the transaction was re-sent, not dropped"),
    }
    assert_eq!(nonce(&chain).await, 1, "landed once");
}
