//! Sending one recorded transaction: signed, written to the record, then broadcast; or, if the record already
//! holds it, looked up and re-broadcast if the node lost it. The effect on the record (what the transaction
//! created) is saved together with the step's completion, so a crash can never separate the two.

use std::path::Path;

use alloy::primitives::{Address, B256, Bytes};
use alloy::rpc::types::TransactionReceipt;
use eyre::{WrapErr, bail};

use crate::chain::{Chain, Outcome};
use crate::record::{Deployed, Record, Step, StepState};

/// The transaction a step sends.
pub(crate) struct Tx {
    /// `None` for a contract creation.
    pub(crate) to: Option<Address>,
    pub(crate) input: Bytes,
    /// The contract a CREATE2 deployment creates, known before it is sent.
    pub(crate) creates: Option<Address>,
}

/// Runs step `id`: `build` makes its transaction if none is recorded yet; `apply` records what a successful
/// transaction created (the deployed contract, for a creation; the receipt, when one was sent) in the same save
/// that marks the step done.
/// Returns the receipt, or `None` when a deterministic contract was already in place and nothing was sent.
pub(crate) async fn run_step(
    chain: &Chain,
    record: &mut Record,
    path: &Path,
    id: &str,
    build: impl FnOnce(&Record) -> eyre::Result<Tx>,
    apply: impl FnOnce(&mut Record, Option<Deployed>, Option<&TransactionReceipt>) -> eyre::Result<()>,
) -> eyre::Result<Option<TransactionReceipt>> {
    if let Some(previous) = record.step(id).filter(|s| s.state == StepState::Sent).cloned() {
        let receipt = match chain.lookup(previous.tx_hash).await? {
            Outcome::Mined(receipt) => *receipt,
            Outcome::Unknown => {
                if chain.mined_nonce().await? > previous.nonce {
                    bail!(
                        "{id}: nonce {} of the deployer was used by a transaction other than the recorded {}; \
                         inspect the deployer's history before resuming",
                        previous.nonce,
                        previous.tx_hash
                    );
                }
                let raw = previous
                    .raw
                    .clone()
                    .ok_or_else(|| eyre::eyre!("{id}: the recorded transaction is lost"))?;
                chain.broadcast(&raw).await.wrap_err_with(|| format!("{id}: re-broadcast failed"))?;
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
    let signed = chain.sign(tx.to, tx.input).await.wrap_err_with(|| id.to_owned())?;
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
    chain.broadcast(&signed.raw).await.wrap_err_with(|| id.to_owned())?;
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
    apply: impl FnOnce(&mut Record, Option<Deployed>, Option<&TransactionReceipt>) -> eyre::Result<()>,
) -> eyre::Result<TransactionReceipt> {
    step.raw = None;
    step.block = receipt.block_number;
    step.gas_used = Some(receipt.gas_used);
    if !receipt.status() {
        step.state = StepState::Reverted;
        record.put_step(step);
        record.save(path)?;
        bail!("{id} reverted in transaction {}", receipt.transaction_hash);
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
pub(crate) fn record_found(
    record: &mut Record,
    path: &Path,
    id: &str,
    address: Option<Address>,
) -> eyre::Result<()> {
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
