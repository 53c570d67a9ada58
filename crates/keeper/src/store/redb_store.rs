//! [`Store`] in an embedded [redb](https://docs.rs/redb) file: ACID transactions, one writer, a crash-safe
//! commit (fsync) per change. The file is locked by the process that opens it, so a second keeper on the same
//! file cannot open it ([`StoreError::Locked`]) and waits as a standby instead of sending conflicting
//! transactions.

use std::path::Path;

use alloy::primitives::{Address, B256, U256};
use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    Accepted, Change, ExecutionRecord, PaymentKey, PaymentRecord, PaymentStatus, PendingTx, Store,
    StoreError, VoucherPut, VoucherRecord,
};

/// Payment key (token, payer, nonce) -> [`PaymentRecord`] JSON.
const PAYMENTS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("payments");
/// Acceptance sequence (u64 big-endian) -> payment key, for the Queued payments only.
const QUEUE: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("queue");
/// Nonce -> [`PendingTx`] JSON.
const TXS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("txs");
/// Subscription id (32 bytes), block (8), index (4) -> [`ExecutionRecord`] JSON.
const EXECUTIONS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("executions");
/// Channel id -> [`VoucherRecord`] JSON.
const VOUCHERS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("vouchers");
/// Channels that take no more vouchers.
const REFUSED_VOUCHERS: TableDefinition<'_, &[u8], ()> = TableDefinition::new("refused_vouchers");
/// Payers whose payments are refused.
const REFUSED_PAYERS: TableDefinition<'_, &[u8], ()> = TableDefinition::new("refused_payers");
/// Channel id -> nothing.
const WATCHED: TableDefinition<'_, &[u8], ()> = TableDefinition::new("watched");
/// Counters.
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");

const NEXT_SEQ: &str = "next_seq";

/// The store in one database file.
pub struct RedbStore {
    db: Database,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").finish_non_exhaustive()
    }
}

fn db_err(err: impl std::fmt::Display) -> StoreError {
    StoreError::Database(err.to_string())
}

fn encode(value: &impl Serialize) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(db_err)
}

fn decode<T: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|err| StoreError::Corrupt { table, message: err.to_string() })
}

/// The voucher registered for `channel` in `vouchers`.
fn voucher_in(
    vouchers: &impl ReadableTable<&'static [u8], &'static [u8]>,
    channel: &B256,
) -> Result<Option<VoucherRecord>, StoreError> {
    vouchers.get(channel.as_slice()).map_err(db_err)?.map(|v| decode("vouchers", v.value())).transpose()
}

impl RedbStore {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(|err| match err {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked(path.display().to_string()),
            other => db_err(format!("cannot open {}: {other}", path.display())),
        })?;
        let tx = db.begin_write().map_err(db_err)?;
        tx.open_table(PAYMENTS).map_err(db_err)?;
        tx.open_table(QUEUE).map_err(db_err)?;
        tx.open_table(TXS).map_err(db_err)?;
        tx.open_table(EXECUTIONS).map_err(db_err)?;
        tx.open_table(VOUCHERS).map_err(db_err)?;
        tx.open_table(REFUSED_VOUCHERS).map_err(db_err)?;
        tx.open_table(REFUSED_PAYERS).map_err(db_err)?;
        tx.open_table(WATCHED).map_err(db_err)?;
        tx.open_table(META).map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(Self { db })
    }

    fn write(
        &self,
        body: impl FnOnce(&WriteTransaction) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        body(&tx)?;
        tx.commit().map_err(db_err)
    }
}

fn execution_key(record: &ExecutionRecord) -> [u8; 44] {
    let mut key = [0u8; 44];
    key[..32].copy_from_slice(&record.subscription.to_be_bytes::<32>());
    key[32..40].copy_from_slice(&record.block.to_be_bytes());
    key[40..].copy_from_slice(&record.index.to_be_bytes());
    key
}

impl Store for RedbStore {
    fn accept_payment(&self, mut record: PaymentRecord, max_queued: u64) -> Result<Accepted, StoreError> {
        let mut outcome = Accepted::QueueFull;
        self.write(|tx| {
            let key = record.key.to_bytes();
            let mut payments = tx.open_table(PAYMENTS).map_err(db_err)?;
            if let Some(existing) = payments.get(key.as_slice()).map_err(db_err)? {
                outcome = Accepted::Duplicate(Box::new(decode("payments", existing.value())?));
                return Ok(());
            }
            let mut queue = tx.open_table(QUEUE).map_err(db_err)?;
            let queued = queue.len().map_err(db_err)?;
            if queued >= max_queued {
                return Ok(());
            }
            let mut meta = tx.open_table(META).map_err(db_err)?;
            let seq = meta.get(NEXT_SEQ).map_err(db_err)?.map(|v| v.value()).unwrap_or(0);
            meta.insert(NEXT_SEQ, seq + 1).map_err(db_err)?;
            drop(meta);
            record.seq = seq;
            record.status = PaymentStatus::Queued;
            payments.insert(key.as_slice(), encode(&record)?.as_slice()).map_err(db_err)?;
            queue.insert(seq, key.as_slice()).map_err(db_err)?;
            outcome = Accepted::Queued { record: Box::new(record.clone()), queued: queued + 1 };
            Ok(())
        })?;
        Ok(outcome)
    }

    fn payment(&self, key: &PaymentKey) -> Result<Option<PaymentRecord>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let payments = tx.open_table(PAYMENTS).map_err(db_err)?;
        payments
            .get(key.to_bytes().as_slice())
            .map_err(db_err)?
            .map(|v| decode("payments", v.value()))
            .transpose()
    }

    fn queued_payments(&self, limit: usize) -> Result<Vec<PaymentRecord>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let queue = tx.open_table(QUEUE).map_err(db_err)?;
        let payments = tx.open_table(PAYMENTS).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in queue.iter().map_err(db_err)?.take(limit) {
            let (_, key) = entry.map_err(db_err)?;
            let record = payments.get(key.value()).map_err(db_err)?.ok_or_else(|| StoreError::Corrupt {
                table: "queue",
                message: "queued key has no payment".into(),
            })?;
            out.push(decode("payments", record.value())?);
        }
        Ok(out)
    }

    fn queued_count(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        tx.open_table(QUEUE).map_err(db_err)?.len().map_err(db_err)
    }

    fn pending_txs(&self) -> Result<Vec<PendingTx>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let txs = tx.open_table(TXS).map_err(db_err)?;
        txs.iter()
            .map_err(db_err)?
            .map(|entry| {
                let (_, value) = entry.map_err(db_err)?;
                decode("txs", value.value())
            })
            .collect()
    }

    fn commit(&self, change: Change) -> Result<(), StoreError> {
        self.write(|tx| {
            {
                let mut payments = tx.open_table(PAYMENTS).map_err(db_err)?;
                let mut queue = tx.open_table(QUEUE).map_err(db_err)?;
                for record in &change.payments {
                    let key = record.key.to_bytes();
                    let previous: Option<PaymentRecord> = payments
                        .get(key.as_slice())
                        .map_err(db_err)?
                        .map(|v| decode("payments", v.value()))
                        .transpose()?;
                    if let Some(previous) = previous.filter(|p| p.status == PaymentStatus::Queued) {
                        queue.remove(previous.seq).map_err(db_err)?;
                    }
                    if record.status == PaymentStatus::Queued {
                        queue.insert(record.seq, key.as_slice()).map_err(db_err)?;
                    }
                    payments.insert(key.as_slice(), encode(record)?.as_slice()).map_err(db_err)?;
                }
            }
            {
                let mut txs = tx.open_table(TXS).map_err(db_err)?;
                if let Some(nonce) = change.remove_tx {
                    txs.remove(nonce).map_err(db_err)?;
                }
                if let Some(pending) = &change.put_tx {
                    txs.insert(pending.nonce, encode(pending)?.as_slice()).map_err(db_err)?;
                }
            }
            {
                let mut executions = tx.open_table(EXECUTIONS).map_err(db_err)?;
                for record in &change.executions {
                    executions
                        .insert(execution_key(record).as_slice(), encode(record)?.as_slice())
                        .map_err(db_err)?;
                }
            }
            {
                let mut watched = tx.open_table(WATCHED).map_err(db_err)?;
                for channel in &change.watch {
                    watched.insert(channel.as_slice(), ()).map_err(db_err)?;
                }
                for channel in &change.unwatch {
                    watched.remove(channel.as_slice()).map_err(db_err)?;
                }
            }
            {
                let mut vouchers = tx.open_table(VOUCHERS).map_err(db_err)?;
                let mut refused = tx.open_table(REFUSED_VOUCHERS).map_err(db_err)?;
                for (channel, amount) in &change.drop_vouchers {
                    if voucher_in(&vouchers, channel)?.is_some_and(|c| c.amount == *amount) {
                        vouchers.remove(channel.as_slice()).map_err(db_err)?;
                    }
                }
                for channel in &change.refuse_vouchers {
                    vouchers.remove(channel.as_slice()).map_err(db_err)?;
                    refused.insert(channel.as_slice(), ()).map_err(db_err)?;
                }
            }
            {
                let mut refused = tx.open_table(REFUSED_PAYERS).map_err(db_err)?;
                for payer in &change.refuse_payers {
                    refused.insert(payer.as_slice(), ()).map_err(db_err)?;
                }
            }
            let mut meta = tx.open_table(META).map_err(db_err)?;
            for (name, value) in &change.meta {
                meta.insert(*name, *value).map_err(db_err)?;
            }
            Ok(())
        })
    }

    fn put_voucher(&self, voucher: &VoucherRecord) -> Result<VoucherPut, StoreError> {
        let mut put = VoucherPut::Stored;
        self.write(|tx| {
            let refused = tx.open_table(REFUSED_VOUCHERS).map_err(db_err)?;
            if refused.get(voucher.channel.as_slice()).map_err(db_err)?.is_some() {
                put = VoucherPut::Refused;
                return Ok(());
            }
            let mut vouchers = tx.open_table(VOUCHERS).map_err(db_err)?;
            if voucher_in(&vouchers, &voucher.channel)?.is_some_and(|c| c.amount >= voucher.amount) {
                put = VoucherPut::NotHigher;
                return Ok(());
            }
            vouchers.insert(voucher.channel.as_slice(), encode(voucher)?.as_slice()).map_err(db_err)?;
            let mut watched = tx.open_table(WATCHED).map_err(db_err)?;
            watched.insert(voucher.channel.as_slice(), ()).map_err(db_err)?;
            Ok(())
        })?;
        Ok(put)
    }

    fn payer_refused(&self, payer: &Address) -> Result<bool, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let refused = tx.open_table(REFUSED_PAYERS).map_err(db_err)?;
        Ok(refused.get(payer.as_slice()).map_err(db_err)?.is_some())
    }

    fn voucher(&self, channel: &B256) -> Result<Option<VoucherRecord>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        voucher_in(&tx.open_table(VOUCHERS).map_err(db_err)?, channel)
    }

    fn watched_channels(&self) -> Result<Vec<B256>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let watched = tx.open_table(WATCHED).map_err(db_err)?;
        watched
            .iter()
            .map_err(db_err)?
            .map(|entry| {
                let (key, _) = entry.map_err(db_err)?;
                B256::try_from(key.value()).map_err(|_| StoreError::Corrupt {
                    table: "watched",
                    message: "key is not 32 bytes".into(),
                })
            })
            .collect()
    }

    fn executions(&self, subscription: U256) -> Result<Vec<ExecutionRecord>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let executions = tx.open_table(EXECUTIONS).map_err(db_err)?;
        let start = subscription.to_be_bytes::<32>();
        let mut end = [0xffu8; 44];
        end[..32].copy_from_slice(&start);
        executions
            .range(start.as_slice()..=end.as_slice())
            .map_err(db_err)?
            .map(|entry| {
                let (_, value) = entry.map_err(db_err)?;
                decode("executions", value.value())
            })
            .collect()
    }

    fn meta(&self, name: &str) -> Result<Option<u64>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let meta = tx.open_table(META).map_err(db_err)?;
        Ok(meta.get(name).map_err(db_err)?.map(|v| v.value()))
    }
}
