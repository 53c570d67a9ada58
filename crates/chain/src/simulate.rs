//! A call run on top of the latest block with `eth_simulateV1`, which answers with the gas the call used as well
//! as what it returned: one execution, where `eth_call` and then `eth_estimateGas` (a binary search of many
//! executions) take a dozen or more for a big batch.

use alloy::primitives::{Address, Bytes};
use alloy::providers::Provider;
use alloy::rpc::json_rpc::{ErrorPayload, RpcError};
use alloy::rpc::types::simulate::{SimBlock, SimulatePayload};
use alloy::rpc::types::{BlockNumberOrTag, BlockOverrides, TransactionRequest};
use alloy::transports::TransportError;
use serde::Deserialize;

use crate::ChainError;

/// JSON-RPC's "method not found": the node has no `eth_simulateV1`.
const METHOD_NOT_FOUND: i64 = -32601;

/// Whether a call's gas on chain `chain_id` includes its L1 data cost, which a simulation at gas price zero does
/// not measure: Arbitrum charges it as gas (so only `eth_estimateGas` gives a gas limit that covers it), where OP
/// Stack chains such as Base charge it apart, in wei.
pub fn gas_includes_l1_cost(chain_id: u64) -> bool {
    // Arbitrum One, Arbitrum Nova, Arbitrum Sepolia.
    matches!(chain_id, 42_161 | 42_170 | 421_614)
}

/// What a simulated call returned, and the gas it used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Simulated {
    /// The call's return data.
    pub returned: Bytes,
    /// Gas used, refunds deducted (what a receipt would say).
    pub gas_used: u64,
    /// Gas used at most during the execution, before refunds, when the node says (newer geth and reth do).
    pub max_used_gas: Option<u64>,
}

impl Simulated {
    /// The most gas the call can have needed at any point: the node's pre-refund figure, or else the used gas
    /// with the largest refund it may hide added back (a refund is at most a fifth of the gas spent, so at most a
    /// quarter of what is left after it).
    pub fn peak_gas(&self) -> u64 {
        self.max_used_gas.unwrap_or_else(|| self.gas_used.saturating_add(self.gas_used.div_ceil(4)))
    }
}

/// How the node answered a simulation.
#[derive(Debug)]
pub enum Simulation {
    /// The call ran and did not revert.
    Ran(Simulated),
    /// The node does not have `eth_simulateV1` (for good: ask it with `eth_call` from now on).
    Unsupported,
    /// The node refused this simulation otherwise (its error answer): ask `eth_call` this time.
    Refused(Box<ErrorPayload>),
}

/// One call's answer in a simulated block; only what is read here (no logs).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallAnswer {
    return_data: Bytes,
    #[serde(with = "alloy::serde::quantity")]
    gas_used: u64,
    #[serde(default, with = "alloy::serde::quantity::opt")]
    max_used_gas: Option<u64>,
    #[serde(with = "alloy::serde::quantity")]
    status: bool,
    #[serde(default)]
    error: Option<CallError>,
}

#[derive(Debug, Deserialize)]
struct CallError {
    code: i64,
    message: String,
}

#[derive(Debug, Deserialize)]
struct BlockAnswer {
    calls: Vec<CallAnswer>,
}

/// Runs `input` on `to` from `from` in a block on top of the latest one, with timestamp `time` (nodes differ in
/// the timestamp they pick otherwise; anvil's would be 1). A call that reverted or ran out of gas is
/// [`ChainError::Reverted`] with its revert data, as from `eth_call`.
pub async fn call<P: Provider>(
    provider: &P,
    from: Address,
    to: Address,
    input: &Bytes,
    time: u64,
) -> Result<Simulation, ChainError> {
    let request = TransactionRequest::default().from(from).to(to).input(input.clone().into());
    let payload = SimulatePayload {
        block_state_calls: vec![SimBlock {
            block_overrides: Some(BlockOverrides { time: Some(time), ..Default::default() }),
            state_overrides: None,
            calls: vec![request],
        }],
        trace_transfers: false,
        validation: false,
        return_full_transactions: false,
    };
    let answer: Result<Vec<BlockAnswer>, TransportError> =
        provider.raw_request("eth_simulateV1".into(), (payload, BlockNumberOrTag::Latest)).await;
    let blocks = match answer {
        Ok(blocks) => blocks,
        Err(RpcError::ErrorResp(payload)) if payload.code == METHOD_NOT_FOUND => {
            return Ok(Simulation::Unsupported);
        }
        Err(RpcError::ErrorResp(payload)) => return Ok(Simulation::Refused(Box::new(payload))),
        Err(other) => return Err(ChainError::Rpc(other)),
    };
    let Some(call) = blocks.into_iter().next().and_then(|block| block.calls.into_iter().next()) else {
        return Err(crate::error::unusable("eth_simulateV1 answered without the call"));
    };
    if !call.status {
        let (code, message) =
            call.error.map_or((3, "execution reverted".to_owned()), |e| (e.code, e.message));
        let data = serde_json::value::to_raw_value(&call.return_data)
            .map_err(|err| crate::error::unusable(format!("revert data: {err}")))?;
        return Err(ChainError::Reverted(Box::new(ErrorPayload {
            code,
            message: message.into(),
            data: Some(data),
        })));
    }
    Ok(Simulation::Ran(Simulated {
        returned: call.return_data,
        gas_used: call.gas_used,
        max_used_gas: call.max_used_gas,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arbitrum_chains_are_measured_by_estimates_and_the_others_by_simulation() {
        assert!(
            gas_includes_l1_cost(42_161) && gas_includes_l1_cost(421_614) && gas_includes_l1_cost(42_170)
        );
        assert!(
            !gas_includes_l1_cost(8_453) && !gas_includes_l1_cost(84_532) && !gas_includes_l1_cost(31_337)
        );
    }

    #[test]
    fn the_peak_is_the_nodes_figure_or_the_used_gas_with_the_largest_refund_added_back() {
        let used = |gas_used, max_used_gas| Simulated { returned: Bytes::new(), gas_used, max_used_gas };
        assert_eq!(used(80_000, Some(90_000)).peak_gas(), 90_000);
        // 100 000 spent with the largest refund (20 000) leaves 80 000 used.
        assert_eq!(used(80_000, None).peak_gas(), 100_000);
        assert_eq!(used(80_001, None).peak_gas(), 100_002);
        assert_eq!(used(u64::MAX, None).peak_gas(), u64::MAX);
    }

    #[test]
    fn a_call_answer_reads_with_or_without_the_pre_refund_figure() {
        let answer: CallAnswer =
            serde_json::from_str(r#"{"returnData":"0x01","logs":[],"gasUsed":"0x5208","status":"0x1"}"#)
                .unwrap();
        assert_eq!((answer.gas_used, answer.max_used_gas, answer.status), (21_000, None, true));
        let answer: CallAnswer = serde_json::from_str(
            r#"{"returnData":"0x","gasUsed":"0x10","maxUsedGas":"0x20","status":"0x0","error":{"code":3,"message":"execution reverted"}}"#,
        )
        .unwrap();
        assert_eq!(
            (answer.max_used_gas, answer.status, answer.error.map(|e| e.code)),
            (Some(32), false, Some(3))
        );
    }
}
