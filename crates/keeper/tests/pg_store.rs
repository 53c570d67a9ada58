//! The PostgreSQL store against a real server (`bin/test` starts one with `bin/postgres` and sets
//! `X402_TEST_DATABASE_URL`): two stores on one schema, as two instances would share it, store a payment posted to
//! both once, count a payer's payments against its balance together, and send only under the lease, which the
//! second takes over with a higher token when the first gives it up.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use alloy::primitives::{Address, B256, U256};
use std::time::Duration;
use x402_keeper::store::*;

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
        signature: Default::default(),
        status: PaymentStatus::Queued,
        tx_hash: None,
        block: None,
        reason: None,
        seq: 0,
        attempts: 0,
        wallet: false,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_stores_on_one_schema_accept_once_and_send_under_one_lease() {
    let url = std::env::var("X402_TEST_DATABASE_URL").expect(
        "X402_TEST_DATABASE_URL: run bin/test, or source bin/postgres first, for a PostgreSQL server",
    );
    let schema =
        format!("test_{}_{}", std::process::id(), std::time::UNIX_EPOCH.elapsed().unwrap().as_millis());
    let opts = PgOptions { schema, lease_ttl: Duration::from_secs(2) };
    let a = PgStore::connect(&url, &opts).unwrap();
    let b = PgStore::connect(&url, &opts).unwrap();
    let seen = BalanceSeen { balance: U256::from(2000), settled: U256::ZERO };
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
    assert_eq!(a.queued_payments(10).unwrap().len(), 2);
    // lease
    assert!(matches!(a.commit(Change::default()), Err(StoreError::LeaseLost)));
    let ta = a.sender_lease().unwrap();
    assert!(ta.is_some(), "a takes the lease");
    assert_eq!(b.sender_lease().unwrap(), None, "b is standby");
    let mut settled = payment(1, 1000);
    settled.status = PaymentStatus::Settled;
    a.commit(Change { payments: vec![settled], meta: vec![("x", 5)], ..Change::default() }).unwrap();
    let t = b.payer_totals(&Address::repeat_byte(1), &Address::repeat_byte(2)).unwrap();
    assert_eq!((t.outstanding, t.settled), (U256::from(1000), U256::from(1000)));
    assert_eq!(b.meta("x").unwrap(), Some(5));
    let v = VoucherRecord {
        channel: B256::repeat_byte(9),
        amount: U256::from(10),
        signature: Default::default(),
        taken: Some(U256::from(3)),
    };
    assert_eq!(b.put_voucher(&v).unwrap(), VoucherPut::Stored);
    assert_eq!(a.put_voucher(&v).unwrap(), VoucherPut::NotHigher);
    assert_eq!(a.channel_taken(&v.channel).unwrap(), Some(U256::from(3)));
    assert_eq!(a.watched_channels().unwrap(), vec![v.channel]);
    assert_eq!(
        a.bind_payment_id("pay_x", B256::repeat_byte(1), payment(1, 1).key).unwrap(),
        IdBinding::Bound
    );
    assert_eq!(
        b.bind_payment_id("pay_x", B256::repeat_byte(2), payment(1, 1).key).unwrap(),
        IdBinding::Conflict
    );
    a.set_genesis(B256::repeat_byte(7)).unwrap();
    assert_eq!(b.genesis().unwrap(), Some(B256::repeat_byte(7)));
    // takeover: drop a releases
    let t0 = std::time::Instant::now();
    drop(a);
    let tb = b.sender_lease().unwrap();
    assert!(tb.is_some() && tb > ta, "{tb:?} {ta:?}");
    assert!(t0.elapsed() < Duration::from_secs(1), "taken over at once: {:?}", t0.elapsed());
    b.commit(Change::default()).unwrap();
}
