//! The store tests, run on both stores: the embedded one (a redb file in a temporary directory) and the PostgreSQL
//! one (a fresh schema on the server `bin/test` starts with `bin/postgres`, which sets `X402_TEST_DATABASE_URL`).
//! Each case gets a backend that can open the same state again, as a restart (redb) or another instance
//! (PostgreSQL) would. The last tests are PostgreSQL's own: two stores open on one schema at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use alloy::primitives::{Address, B256, Bytes, U256};
use std::time::Duration;
use x402_keeper::store::*;

/// Where a case's state lives, opened once or again.
trait Backend {
    /// Opens the store (again), holding the sender lease.
    fn open(&self) -> Box<dyn Store>;
}

struct Redb(tempfile::TempDir);

impl Backend for Redb {
    fn open(&self) -> Box<dyn Store> {
        Box::new(RedbStore::open(&self.0.path().join("keeper.redb")).unwrap())
    }
}

struct Postgres(PgOptions, String);

impl Backend for Postgres {
    fn open(&self) -> Box<dyn Store> {
        let store = PgStore::connect(&self.1, &self.0).unwrap();
        // A store opened again after another was dropped takes the lease the other released.
        assert!(store.sender_lease().unwrap().is_some(), "the lease is free");
        Box::new(store)
    }
}

fn redb() -> Redb {
    Redb(tempfile::tempdir().unwrap())
}

fn postgres() -> Postgres {
    let url = std::env::var("X402_TEST_DATABASE_URL").expect(
        "X402_TEST_DATABASE_URL: run bin/test, or source bin/postgres first, for a PostgreSQL server",
    );
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let millis = std::time::UNIX_EPOCH.elapsed().unwrap().as_millis();
    let schema = format!("test_{}_{millis}_{n}", std::process::id());
    Postgres(PgOptions { schema, lease_ttl: Duration::from_secs(2) }, url)
}

/// Runs `case` on a new redb store and on a new PostgreSQL schema.
macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod redb_store {
            $(#[test] fn $case() { super::$case(&super::redb()); })*
        }
        mod pg_store {
            $(#[tokio::test(flavor = "multi_thread")] async fn $case() { super::$case(&super::postgres()); })*
        }
    };
}

on_both_stores!(
    a_payment_is_queued_once_and_a_second_signature_of_its_nonce_is_refused,
    the_queue_is_oldest_first_and_refuses_beyond_its_maximum,
    a_payment_settled_after_the_balance_was_read_counts_as_gone,
    a_commit_writes_transactions_executions_channels_and_counters_together,
    vouchers_keep_each_channels_highest_and_survive_a_reopen,
    a_payment_id_stays_bound_to_its_request_across_a_reopen,
    the_genesis_is_kept_across_a_reopen,
);

fn payment(nonce: u8, value: u64) -> PaymentRecord {
    PaymentRecord {
        key: PaymentKey {
            token: Address::repeat_byte(1),
            payer: Address::repeat_byte(2),
            nonce: B256::repeat_byte(nonce),
        },
        to: Address::repeat_byte(3),
        value: U256::from(value),
        valid_after: U256::ZERO,
        valid_before: U256::MAX,
        signature: Bytes::from(vec![nonce]),
        status: PaymentStatus::Queued,
        tx_hash: None,
        block: None,
        reason: None,
        seq: 0,
        attempts: 0,
        wallet: false,
    }
}

fn seen(balance: u64) -> BalanceSeen {
    BalanceSeen { balance: U256::from(balance), settled: U256::ZERO }
}

fn a_payment_is_queued_once_and_a_second_signature_of_its_nonce_is_refused(backend: &dyn Backend) {
    let store = backend.open();
    let record = payment(1, 1000);
    let first = store.accept_payment(record.clone(), 10, seen(5000), Durability::Immediate).unwrap();
    let Accepted::Queued { record: stored, queued: 1 } = first else { panic!("{first:?}") };
    assert_eq!(stored.key, record.key);
    let again = store.accept_payment(record.clone(), 10, seen(5000), Durability::Immediate).unwrap();
    assert!(matches!(&again, Accepted::Duplicate(r) if r.key == record.key), "{again:?}");
    let resigned = PaymentRecord { signature: Bytes::from(vec![0xee]), ..record.clone() };
    let taken = store.accept_payment(resigned, 10, seen(5000), Durability::Immediate).unwrap();
    assert!(matches!(taken, Accepted::NonceTaken), "{taken:?}");
    drop(store);
    let store = backend.open();
    assert_eq!(store.queued_count().unwrap(), 1);
    let totals = store.payer_totals(&record.key.token, &record.key.payer).unwrap();
    assert_eq!(totals, PayerTotals { outstanding: U256::from(1000), settled: U256::ZERO });
    assert_eq!(store.payment(&record.key).unwrap().map(|r| r.signature), Some(record.signature));
    assert_eq!(store.payment(&payment(2, 1).key).unwrap(), None);
}

fn the_queue_is_oldest_first_and_refuses_beyond_its_maximum(backend: &dyn Backend) {
    let store = backend.open();
    for nonce in [5, 3, 9] {
        let accepted =
            store.accept_payment(payment(nonce, 10), 3, seen(1000), Durability::UntilSent).unwrap();
        assert!(matches!(accepted, Accepted::Queued { .. }), "{accepted:?}");
    }
    let full = store.accept_payment(payment(1, 10), 3, seen(1000), Durability::Immediate).unwrap();
    assert!(matches!(full, Accepted::QueueFull), "{full:?}");
    let order = |store: &dyn Store, limit| -> Vec<u8> {
        store.queued_payments(limit).unwrap().iter().map(|r| r.key.nonce[0]).collect()
    };
    assert_eq!(order(store.as_ref(), 10), [5, 3, 9], "in order of acceptance");
    assert_eq!(order(store.as_ref(), 2), [5, 3]);
    // Submitted leaves the queue, and makes room.
    let mut submitted = store.payment(&payment(5, 10).key).unwrap().unwrap();
    submitted.status = PaymentStatus::Submitted;
    submitted.tx_hash = Some(B256::repeat_byte(0x55));
    store.commit(Change { payments: vec![submitted], ..Change::default() }).unwrap();
    assert_eq!(order(store.as_ref(), 10), [3, 9]);
    let accepted = store.accept_payment(payment(1, 10), 3, seen(1000), Durability::Immediate).unwrap();
    assert!(matches!(accepted, Accepted::Queued { queued: 3, .. }), "{accepted:?}");
    drop(store);
    let store = backend.open();
    assert_eq!(order(store.as_ref(), 10), [3, 9, 1]);
    assert_eq!(store.queued_count().unwrap(), 3);
    let totals = store.payer_totals(&Address::repeat_byte(1), &Address::repeat_byte(2)).unwrap();
    assert_eq!(totals.outstanding, U256::from(40), "queued and submitted");
}

/// Second review: a payment of the payer settling between the intake's balance read and its write lowered
/// the outstanding sum while the balance read still held it, so one payment too many was accepted.
fn a_payment_settled_after_the_balance_was_read_counts_as_gone(backend: &dyn Backend) {
    let store = backend.open();
    let (token, payer) = (Address::repeat_byte(1), Address::repeat_byte(2));
    let seen = |balance: u64, settled: U256| BalanceSeen { balance: U256::from(balance), settled };
    // Balance 2,000: two of 1,000 fit, a third does not.
    for nonce in [1, 2] {
        assert!(matches!(
            store.accept_payment(payment(nonce, 1000), 10, seen(2000, U256::ZERO), Durability::Immediate),
            Ok(Accepted::Queued { .. })
        ));
    }
    // The intake reads the settled total (0), then the balance (2,000), and meanwhile the first settles.
    let before = store.payer_totals(&token, &payer).unwrap().settled;
    let mut settled = payment(1, 1000);
    settled.status = PaymentStatus::Settled;
    store.commit(Change { payments: vec![settled], ..Change::default() }).unwrap();
    let totals = store.payer_totals(&token, &payer).unwrap();
    assert_eq!((totals.outstanding, totals.settled), (U256::from(1000), U256::from(1000)));
    let refused =
        store.accept_payment(payment(3, 1000), 10, seen(2000, before), Durability::Immediate).unwrap();
    assert!(
        matches!(refused, Accepted::OverBalance { outstanding, balance } if outstanding == U256::from(1000) && balance == U256::from(1000)),
        "{refused:?}"
    );
    // Read after the settlement, the balance (1,000) is what it is: still no room.
    let after = store.payer_totals(&token, &payer).unwrap().settled;
    assert!(matches!(
        store.accept_payment(payment(3, 1000), 10, seen(1000, after), Durability::Immediate),
        Ok(Accepted::OverBalance { .. })
    ));
    assert!(matches!(
        store.accept_payment(payment(3, 1000), 10, seen(2000, after), Durability::Immediate),
        Ok(Accepted::Queued { .. })
    ));
    // A failed payment leaves the outstanding sum; settling it again counts once.
    let mut failed = payment(2, 1000);
    failed.status = PaymentStatus::Failed;
    failed.reason = Some("invalid_signature".into());
    let mut settled_again = payment(1, 1000);
    settled_again.status = PaymentStatus::Settled;
    store.commit(Change { payments: vec![failed, settled_again], ..Change::default() }).unwrap();
    let totals = store.payer_totals(&token, &payer).unwrap();
    assert_eq!((totals.outstanding, totals.settled), (U256::from(1000), U256::from(1000)));
}

fn a_commit_writes_transactions_executions_channels_and_counters_together(backend: &dyn Backend) {
    let store = backend.open();
    let tx = |nonce: u64, hash: u8| PendingTx {
        nonce,
        job: TxJob::Payments { token: Address::repeat_byte(1), items: vec![payment(1, 1).key] },
        hashes: vec![B256::repeat_byte(hash)],
        raw: Bytes::from(vec![hash]),
        gas_limit: 100_000,
        max_fee_per_gas: 2,
        max_priority_fee_per_gas: 1,
        to: Address::repeat_byte(4),
        input: Bytes::from(vec![1, 2, 3]),
    };
    let execution = |subscription: u64, block: u64, index: u32| ExecutionRecord {
        subscription: U256::from(subscription),
        outcome: "charged".into(),
        due_at: Some(U256::from(100)),
        amount: Some(U256::from(10)),
        reward: Some(U256::from(1)),
        tx_hash: B256::repeat_byte(block as u8),
        block,
        index,
    };
    let (a, b) = (B256::repeat_byte(0xa), B256::repeat_byte(0xb));
    let voucher = |channel, amount: u64| VoucherRecord {
        channel,
        amount: U256::from(amount),
        signature: Bytes::new(),
        taken: None,
    };
    store.put_vouchers(&[voucher(a, 10), voucher(b, 20)]).unwrap();
    store
        .commit(Change {
            put_tx: Some(tx(8, 1)),
            executions: vec![execution(7, 12, 1), execution(7, 11, 0), execution(8, 11, 1)],
            watch: vec![B256::repeat_byte(0xc)],
            meta: vec![("payments_cursor", 41), ("channels_cursor", 9)],
            refuse_payers: vec![Address::repeat_byte(9)],
            ..Change::default()
        })
        .unwrap();
    store.commit(Change { put_tx: Some(tx(7, 2)), ..Change::default() }).unwrap();
    let nonces = |store: &dyn Store| store.pending_txs().unwrap().iter().map(|t| t.nonce).collect::<Vec<_>>();
    assert_eq!(nonces(store.as_ref()), [7, 8], "lowest nonce first");
    // A fee bump replaces the transaction at its nonce; a confirmation removes it.
    let mut bumped = tx(8, 1);
    bumped.hashes.push(B256::repeat_byte(3));
    bumped.max_fee_per_gas = 4;
    store.commit(Change { put_tx: Some(bumped.clone()), remove_tx: Some(7), ..Change::default() }).unwrap();
    // A dropped voucher goes only if it is still the registered one; a refused channel takes no more.
    store
        .commit(Change {
            drop_vouchers: vec![(a, U256::from(9)), (b, U256::from(20))],
            refuse_vouchers: vec![B256::repeat_byte(0xd)],
            unwatch: vec![B256::repeat_byte(0xc)],
            meta: vec![("payments_cursor", 42)],
            ..Change::default()
        })
        .unwrap();
    drop(store);
    let store = backend.open();
    assert_eq!(store.pending_txs().unwrap(), [bumped]);
    let outcomes = |s: u64| store.executions(U256::from(s)).unwrap();
    assert_eq!(outcomes(7), [execution(7, 11, 0), execution(7, 12, 1)], "oldest first");
    assert_eq!(outcomes(8), [execution(8, 11, 1)]);
    assert_eq!(outcomes(9), []);
    assert_eq!(store.meta("payments_cursor").unwrap(), Some(42));
    assert_eq!(store.meta("channels_cursor").unwrap(), Some(9));
    assert_eq!(store.meta("other").unwrap(), None);
    assert!(store.payer_refused(&Address::repeat_byte(9)).unwrap());
    assert!(!store.payer_refused(&Address::repeat_byte(8)).unwrap());
    assert_eq!(store.voucher(&a).unwrap(), Some(voucher(a, 10)));
    assert_eq!(store.voucher(&b).unwrap(), None);
    assert_eq!(store.put_voucher(&voucher(B256::repeat_byte(0xd), 5)).unwrap(), VoucherPut::Refused);
    let mut watched = store.watched_channels().unwrap();
    watched.sort();
    assert_eq!(watched, [a, b], "registered vouchers' channels are watched; the unwatched one is not");
}

fn vouchers_keep_each_channels_highest_and_survive_a_reopen(backend: &dyn Backend) {
    let (a, b, c) = (B256::repeat_byte(1), B256::repeat_byte(2), B256::repeat_byte(3));
    let voucher = |channel, amount: u64| VoucherRecord {
        channel,
        amount: U256::from(amount),
        signature: Bytes::from(vec![amount as u8]),
        taken: None,
    };
    let store = backend.open();
    store.commit(Change { refuse_vouchers: vec![c], ..Change::default() }).unwrap();
    let puts =
        store.put_vouchers(&[voucher(a, 10), voucher(b, 5), voucher(a, 7), voucher(a, 12), voucher(c, 1)]);
    assert_eq!(
        puts.unwrap(),
        [
            VoucherPut::Stored,
            VoucherPut::Stored,
            VoucherPut::NotHigher,
            VoucherPut::Stored,
            VoucherPut::Refused
        ]
    );
    drop(store);
    let store = backend.open();
    assert_eq!(store.voucher(&a).unwrap(), Some(voucher(a, 12)));
    assert_eq!(store.voucher(&b).unwrap(), Some(voucher(b, 5)));
    assert_eq!(store.voucher(&c).unwrap(), None);
    let mut watched = store.watched_channels().unwrap();
    watched.sort();
    assert_eq!(watched, [a, b]);
    assert_eq!(store.put_voucher(&voucher(b, 5)).unwrap(), VoucherPut::NotHigher);
    // A lower voucher's running total is kept with the higher voucher, and kept when the voucher is dropped.
    let lower = VoucherRecord { taken: Some(U256::from(4)), ..voucher(b, 4) };
    assert_eq!(store.put_voucher(&lower).unwrap(), VoucherPut::NotHigher);
    assert_eq!(
        store.voucher(&b).unwrap(),
        Some(VoucherRecord { taken: Some(U256::from(4)), ..voucher(b, 5) })
    );
    let smaller_total = VoucherRecord { taken: Some(U256::from(2)), ..voucher(b, 3) };
    assert_eq!(store.put_voucher(&smaller_total).unwrap(), VoucherPut::NotHigher);
    store.commit(Change { drop_vouchers: vec![(b, U256::from(5))], ..Change::default() }).unwrap();
    assert_eq!(store.voucher(&b).unwrap(), None);
    assert_eq!(store.channel_taken(&b).unwrap(), Some(U256::from(4)), "the highest total, kept");
    assert_eq!(store.channel_taken(&a).unwrap(), None);
}

fn a_payment_id_stays_bound_to_its_request_across_a_reopen(backend: &dyn Backend) {
    let key = payment(1, 5).key;
    let other = payment(2, 5).key;
    let (request, changed) = (B256::repeat_byte(0xaa), B256::repeat_byte(0xbb));
    let store = backend.open();
    assert_eq!(store.payment_id_fingerprint("pay_0123456789abcdef").unwrap(), None);
    assert_eq!(store.bind_payment_id("pay_0123456789abcdef", request, key).unwrap(), IdBinding::Bound);
    assert_eq!(store.bind_payment_id("pay_0123456789abcdef", request, other).unwrap(), IdBinding::Same(key));
    drop(store);
    let store = backend.open();
    assert_eq!(store.payment_id_fingerprint("pay_0123456789abcdef").unwrap(), Some(request));
    assert_eq!(store.bind_payment_id("pay_0123456789abcdef", request, key).unwrap(), IdBinding::Same(key));
    assert_eq!(store.bind_payment_id("pay_0123456789abcdef", changed, key).unwrap(), IdBinding::Conflict);
    assert_eq!(store.bind_payment_id("pay_fedcba9876543210", changed, other).unwrap(), IdBinding::Bound);
}

fn the_genesis_is_kept_across_a_reopen(backend: &dyn Backend) {
    let store = backend.open();
    assert_eq!(store.genesis().unwrap(), None);
    store.set_genesis(B256::repeat_byte(7)).unwrap();
    drop(store);
    assert_eq!(backend.open().genesis().unwrap(), Some(B256::repeat_byte(7)));
}

/// Two PostgreSQL stores on one schema, as two instances share it: a payment posted to both is stored once, a
/// payer's payments count against its balance together, and only the lease holder commits; the other takes the
/// lease over, with a higher token, at once when the holder gives it up.
#[tokio::test(flavor = "multi_thread")]
async fn two_pg_stores_on_one_schema_accept_once_and_send_under_one_lease() {
    let backend = postgres();
    let connect = || PgStore::connect(&backend.1, &backend.0).unwrap();
    let (a, b) = (connect(), connect());
    assert!(a.shared() && b.shared());
    let seen = seen(2000);
    assert!(matches!(
        a.accept_payment(payment(1, 1000), 10, seen, Durability::Immediate).unwrap(),
        Accepted::Queued { .. }
    ));
    assert!(matches!(
        b.accept_payment(payment(1, 1000), 10, seen, Durability::Immediate).unwrap(),
        Accepted::Duplicate(_)
    ));
    assert!(matches!(
        b.accept_payment(payment(2, 1000), 10, seen, Durability::UntilSent).unwrap(),
        Accepted::Queued { .. }
    ));
    assert!(matches!(
        a.accept_payment(payment(3, 1000), 10, seen, Durability::Immediate).unwrap(),
        Accepted::OverBalance { .. }
    ));
    assert_eq!(a.queued_count().unwrap(), 2);
    assert!(matches!(a.commit(Change::default()), Err(StoreError::LeaseLost)), "not taken yet");
    let ta = a.sender_lease().unwrap();
    assert!(ta.is_some(), "a takes the lease");
    assert_eq!(b.sender_lease().unwrap(), None, "b is standby");
    assert!(matches!(b.commit(Change::default()), Err(StoreError::LeaseLost)));
    let mut settled = payment(1, 1000);
    settled.status = PaymentStatus::Settled;
    a.commit(Change { payments: vec![settled], ..Change::default() }).unwrap();
    let t = b.payer_totals(&Address::repeat_byte(1), &Address::repeat_byte(2)).unwrap();
    assert_eq!((t.outstanding, t.settled), (U256::from(1000), U256::from(1000)));
    let v = VoucherRecord {
        channel: B256::repeat_byte(9),
        amount: U256::from(10),
        signature: Bytes::new(),
        taken: Some(U256::from(3)),
    };
    assert_eq!(b.put_voucher(&v).unwrap(), VoucherPut::Stored);
    assert_eq!(a.put_voucher(&v).unwrap(), VoucherPut::NotHigher);
    assert_eq!(
        a.bind_payment_id("pay_x", B256::repeat_byte(1), payment(1, 1).key).unwrap(),
        IdBinding::Bound
    );
    assert_eq!(
        b.bind_payment_id("pay_x", B256::repeat_byte(2), payment(1, 1).key).unwrap(),
        IdBinding::Conflict
    );
    let t0 = std::time::Instant::now();
    drop(a);
    let tb = b.sender_lease().unwrap();
    assert!(tb.is_some() && tb > ta, "{tb:?} {ta:?}");
    assert!(t0.elapsed() < Duration::from_secs(1), "taken over at once: {:?}", t0.elapsed());
    b.commit(Change::default()).unwrap();
}

/// A payment posted to two instances at once, many times over: each is stored once, and the payer's totals count
/// each once.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_accepts_of_one_payment_on_two_pg_stores_store_it_once() {
    let backend = postgres();
    let stores: Vec<_> =
        (0..2).map(|_| std::sync::Arc::new(PgStore::connect(&backend.1, &backend.0).unwrap())).collect();
    let mut threads = Vec::new();
    for store in &stores {
        let store = std::sync::Arc::clone(store);
        threads.push(std::thread::spawn(move || {
            let mut queued = 0;
            for nonce in 0..100u8 {
                let accepted = store
                    .accept_payment(payment(nonce, 10), 1000, seen(1000), Durability::UntilSent)
                    .unwrap();
                match accepted {
                    Accepted::Queued { .. } => queued += 1,
                    Accepted::Duplicate(_) => {}
                    other => panic!("{other:?}"),
                }
            }
            queued
        }));
    }
    let queued: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(queued, 100, "each payment queued by one of the two");
    assert_eq!(stores[0].queued_count().unwrap(), 100);
    let totals = stores[1].payer_totals(&Address::repeat_byte(1), &Address::repeat_byte(2)).unwrap();
    assert_eq!(totals.outstanding, U256::from(1000));
    // The balance is used up: one more from either is refused.
    let over = stores[1].accept_payment(payment(200, 1), 1000, seen(1000), Durability::Immediate).unwrap();
    assert!(matches!(over, Accepted::OverBalance { .. }), "{over:?}");
}
