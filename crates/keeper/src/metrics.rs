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

const FAMILIES: &[(&str, Family)] = &[
    ("x402_keeper_ticks_total", Family { help: "Keeper ticks run, per job.", kind: "counter" }),
    ("x402_keeper_items_total", Family { help: "Items handled per job and outcome.", kind: "counter" }),
    (
        "x402_keeper_transactions_total",
        Family { help: "Transactions sent per job and result.", kind: "counter" },
    ),
    (
        "x402_keeper_tx_gas_used_total",
        Family { help: "Gas used by confirmed transactions, per job.", kind: "counter" },
    ),
    (
        "x402_keeper_errors_total",
        Family { help: "Job runs that ended in an error, per job.", kind: "counter" },
    ),
    ("x402_keeper_intake_requests_total", Family { help: "Intake requests per result.", kind: "counter" }),
    ("x402_keeper_queue_depth", Family { help: "Payments queued for settlement.", kind: "gauge" }),
    ("x402_keeper_balance_wei", Family { help: "The keeper's native balance.", kind: "gauge" }),
    (
        "x402_keeper_last_tick_timestamp",
        Family { help: "Chain time of the last finished tick.", kind: "gauge" },
    ),
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
    /// Adds `by` to counter `name` with `pairs` as labels.
    pub fn add(&self, name: &'static str, pairs: &[(&str, &str)], by: f64) {
        if let Ok(mut values) = self.values.lock() {
            *values.entry((name, labels(pairs))).or_default() += by;
        }
    }

    /// Sets gauge `name`.
    pub fn set(&self, name: &'static str, pairs: &[(&str, &str)], value: f64) {
        if let Ok(mut values) = self.values.lock() {
            values.insert((name, labels(pairs)), value);
        }
    }

    /// The value of `name` with `pairs` as labels (0 if never set).
    pub fn get(&self, name: &'static str, pairs: &[(&str, &str)]) -> f64 {
        self.values.lock().ok().and_then(|v| v.get(&(name, labels(pairs))).copied()).unwrap_or(0.0)
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
