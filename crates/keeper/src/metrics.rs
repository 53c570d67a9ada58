//! Prometheus metrics in the text exposition format: counters and gauges keyed by name and labels, rendered on
//! `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// One metric family: its help text and type.
struct Family {
    help: &'static str,
    kind: &'static str,
}

const TICKS: &str = "x402_keeper_ticks_total";
const ITEMS: &str = "x402_keeper_items_total";
const TRANSACTIONS: &str = "x402_keeper_transactions_total";
const GAS_USED: &str = "x402_keeper_tx_gas_used_total";
const ERRORS: &str = "x402_keeper_errors_total";
const INTAKE: &str = "x402_keeper_intake_requests_total";
const QUEUE_DEPTH: &str = "x402_keeper_queue_depth";
const BALANCE: &str = "x402_keeper_balance_wei";
const LAST_TICK: &str = "x402_keeper_last_tick_timestamp";

const FAMILIES: &[(&str, Family)] = &[
    (TICKS, Family { help: "Keeper ticks run, per job.", kind: "counter" }),
    (ITEMS, Family { help: "Items handled per job and outcome.", kind: "counter" }),
    (TRANSACTIONS, Family { help: "Transactions sent per job and result.", kind: "counter" }),
    (GAS_USED, Family { help: "Gas used by confirmed transactions, per job.", kind: "counter" }),
    (ERRORS, Family { help: "Job runs that ended in an error, per job.", kind: "counter" }),
    (INTAKE, Family { help: "Intake requests per result.", kind: "counter" }),
    (QUEUE_DEPTH, Family { help: "Payments queued for settlement.", kind: "gauge" }),
    (BALANCE, Family { help: "The keeper's native balance.", kind: "gauge" }),
    (LAST_TICK, Family { help: "Chain time of the last finished tick.", kind: "gauge" }),
];

/// The keeper's metrics.
#[derive(Default)]
pub struct Metrics {
    values: Mutex<BTreeMap<(&'static str, String), f64>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        let _ = write!(out, "{name}=\"{escaped}\"");
    }
    out
}

impl Metrics {
    fn add(&self, name: &'static str, pairs: &[(&str, &str)], by: f64) {
        if let Ok(mut values) = self.values.lock() {
            *values.entry((name, labels(pairs))).or_default() += by;
        }
    }

    fn set(&self, name: &'static str, pairs: &[(&str, &str)], value: f64) {
        if let Ok(mut values) = self.values.lock() {
            values.insert((name, labels(pairs)), value);
        }
    }

    /// `count` items of `job` ended as `outcome` (`settled`, an x402 reason, `claimed`...).
    pub fn items(&self, job: &str, outcome: &str, count: usize) {
        self.add(ITEMS, &[("job", job), ("outcome", outcome)], count as f64);
    }

    /// `job` ran in a tick.
    pub fn tick(&self, job: &str) {
        self.add(TICKS, &[("job", job)], 1.0);
    }

    /// `job` (or `rpc`, `chain` for the tick itself) ended in an error.
    pub fn error(&self, job: &str) {
        self.add(ERRORS, &[("job", job)], 1.0);
    }

    /// A transaction of `job` ended as `result` (`confirmed`, `reverted`, `dropped`), using `gas` if mined.
    pub fn transaction(&self, job: &str, result: &str, gas: Option<u64>) {
        self.add(TRANSACTIONS, &[("job", job), ("result", result)], 1.0);
        if let Some(gas) = gas {
            self.add(GAS_USED, &[("job", job)], gas as f64);
        }
    }

    /// An intake request was answered with `result` (`queued`, `invalid`, `rate_limited`...).
    pub fn intake(&self, result: &str) {
        self.add(INTAKE, &[("result", result)], 1.0);
    }

    /// Payments queued now.
    pub fn queue_depth(&self, queued: u64) {
        self.set(QUEUE_DEPTH, &[], queued as f64);
    }

    /// The keeper's native balance.
    pub fn balance(&self, wei: f64) {
        self.set(BALANCE, &[], wei);
    }

    /// The chain time of the last finished tick.
    pub fn last_tick(&self, chain_time: u64) {
        self.set(LAST_TICK, &[], chain_time as f64);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let Ok(values) = self.values.lock() else { return String::new() };
        let mut out = String::new();
        for (family, meta) in FAMILIES {
            let _ = writeln!(out, "# HELP {family} {}\n# TYPE {family} {}", meta.help, meta.kind);
            for ((name, labels), value) in values.range((*family, String::new())..) {
                if name != family {
                    break;
                }
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {value}");
                } else {
                    let _ = writeln!(out, "{name}{{{labels}}} {value}");
                }
            }
        }
        out
    }
}
