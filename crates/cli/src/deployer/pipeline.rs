//! Sending one recorded transaction: signed, written to the record, then broadcast; or, if the record already
//! holds it, looked up and re-broadcast if the node lost it. The effect on the record (what the transaction
//! created) is saved together with the step's completion, so a crash can never separate the two.

use std::path::Path;

use alloy::primitives::{Address, B256, Bytes};
use alloy::rpc::types::TransactionReceipt;

use super::chain::{Chain, Outcome};
use super::error::{Error, Result, refuse};
use super::record::{Deployed, Record, Step, StepState};

/// The transaction a step sends.
pub struct Tx {
    /// `None` for a contract creation.
    pub to: Option<Address>,
    /// Its call data, or the creation code.
    pub input: Bytes,
    /// The contract a CREATE2 deployment creates, known before it is sent.
    pub creates: Option<Address>,
}

/// Runs step `id`: `build` makes its transaction if none is recorded yet; `apply` records what a successful
/// transaction created (the deployed contract, for a creation; the receipt, when one was sent) in the same save
/// that marks the step done.
/// Returns the receipt, or `None` when a deterministic contract was already in place and nothing was sent.
pub async fn run_step(
    chain: &Chain,
    record: &mut Record,
    path: &Path,
    id: &str,
    build: impl FnOnce(&Record) -> Result<Tx>,
    apply: impl FnOnce(&mut Record, Option<Deployed>, Option<&TransactionReceipt>) -> Result<()>,
) -> Result<Option<TransactionReceipt>> {
    if let Some(previous) = record.step(id).filter(|s| s.state == StepState::Sent).cloned() {
        let receipt = match chain.lookup(previous.tx_hash).await? {
            Outcome::Mined(receipt) => *receipt,
            Outcome::Unknown => {
                if chain.mined_nonce().await? > previous.nonce {
                    refuse!(
                        "{id}: nonce {} of the deployer was used by a transaction other than the recorded {}; \
                         inspect the deployer's history before resuming",
                        previous.nonce,
                        previous.tx_hash
                    );
                }
                let Some(raw) = previous.raw.clone() else {
                    refuse!("{id}: the recorded transaction is lost")
                };
                chain.broadcast(&raw).await.map_err(|err| in_step(id, "re-broadcast failed", err))?;
                chain.wait(previous.tx_hash).await?
            }
        };
        return finish(chain, record, path, id, previous, receipt, apply).await.map(Some);
    }
    let tx = build(record)?;
    if let Some(address) = tx.creates
        && chain.has_code(address).await?
    {
        // Deterministic: whoever put it there (an earlier run whose record was lost, or anyone replaying our
        // creation code) put exactly this contract there.
        let deployed =
            Deployed { address, tx_hash: B256::ZERO, block: 0, code_hash: chain.code_hash(address).await? };
        apply(record, Some(deployed), None)?;
        record_found(record, path, id, Some(address))?;
        return Ok(None);
    }
    let signed = chain.sign(tx.to, tx.input).await.map_err(|err| in_step(id, "cannot sign", err))?;
    let pending = Step {
        id: id.to_owned(),
        state: StepState::Sent,
        nonce: signed.nonce,
        tx_hash: signed.hash,
        raw: Some(signed.raw.clone()),
        block: None,
        gas_used: None,
        address: tx.creates,
    };
    record.put_step(pending.clone());
    record.save(path)?;
    chain.broadcast(&signed.raw).await.map_err(|err| in_step(id, "broadcast failed", err))?;
    let receipt = chain.wait(signed.hash).await?;
    finish(chain, record, path, id, pending, receipt, apply).await.map(Some)
}

async fn finish(
    chain: &Chain,
    record: &mut Record,
    path: &Path,
    id: &str,
    mut step: Step,
    receipt: TransactionReceipt,
    apply: impl FnOnce(&mut Record, Option<Deployed>, Option<&TransactionReceipt>) -> Result<()>,
) -> Result<TransactionReceipt> {
    step.raw = None;
    step.block = receipt.block_number;
    step.gas_used = Some(receipt.gas_used);
    if !receipt.status() {
        step.state = StepState::Reverted;
        record.put_step(step);
        record.save(path)?;
        refuse!("{id} reverted in transaction {}", receipt.transaction_hash);
    }
    step.state = StepState::Done;
    let deployed = match receipt.contract_address.or(step.address) {
        Some(address) => Some(Deployed {
            address,
            tx_hash: receipt.transaction_hash,
            block: receipt.block_number.unwrap_or_default(),
            code_hash: chain.code_hash(address).await?,
        }),
        None => None,
    };
    step.address = deployed.as_ref().map(|d| d.address);
    apply(record, deployed, Some(&receipt))?;
    record.put_step(step);
    record.save(path)?;
    Ok(receipt)
}

/// Records step `id` as already in effect on chain, with no transaction sent.
pub fn record_found(record: &mut Record, path: &Path, id: &str, address: Option<Address>) -> Result<()> {
    record.put_step(Step {
        id: id.to_owned(),
        state: StepState::Found,
        nonce: 0,
        tx_hash: B256::ZERO,
        raw: None,
        block: None,
        gas_used: None,
        address,
    });
    record.save(path)
}

/// `err`, with the step it happened in.
fn in_step(id: &str, what: &'static str, err: Error) -> Error {
    Error::Step { id: id.to_owned(), what, source: Box::new(err) }
}
