//! Prometheus metrics in the text exposition format: counters, gauges and histograms keyed by name and labels,
//! rendered on `GET /metrics`. A [`Registry`] holds one component's series (with constant labels, such as the
//! network of one of a facilitator's engines); [`render`] writes several registries as one exposition, each family
//! once. [`Metrics`] is the keeper's, with a typed helper per series.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// What kind of series a family holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Set to a value.
    Gauge,
    /// Observations in the [`BUCKETS`] (seconds).
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// One metric family: its name, help text and kind.
#[derive(Clone, Copy, Debug)]
pub struct Family {
    /// The metric name.
    pub name: &'static str,
    /// The help text.
    pub help: &'static str,
    /// Its kind.
    pub kind: Kind,
}

/// Upper bounds (seconds) of the histogram buckets: from a cached answer to a settlement waiting several blocks.
pub const BUCKETS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Clone, Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// One component's series.
pub struct Registry {
    families: &'static [Family],
    constant: Vec<(String, String)>,
    values: Mutex<BTreeMap<(&'static str, String), f64>>,
    histograms: Mutex<BTreeMap<(&'static str, String), Histogram>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("constant", &self.constant).finish_non_exhaustive()
    }
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn labels(constant: &[(String, String)], pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let all = constant.iter().map(|(n, v)| (n.as_str(), v.as_str())).chain(pairs.iter().copied());
    for (i, (name, value)) in all.enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{name}=\"{}\"", escape(value));
    }
    out
}

fn series(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &str,
    extra: Option<(&str, String)>,
    value: f64,
) {
    let mut all = labels.to_owned();
    if let Some((label, text)) = extra {
        if !all.is_empty() {
            all.push(',');
        }
        let _ = write!(all, "{label}=\"{text}\"");
    }
    if all.is_empty() {
        let _ = writeln!(out, "{name}{suffix} {value}");
    } else {
        let _ = writeln!(out, "{name}{suffix}{{{all}}} {value}");
    }
}

impl Registry {
    /// A registry of `families`, every series labelled with `constant` too.
    pub fn new(families: &'static [Family], constant: &[(&str, &str)]) -> Self {
        Self {
            families,
            constant: constant.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect(),
            values: Mutex::new(BTreeMap::new()),
            histograms: Mutex::new(BTreeMap::new()),
        }
    }

    /// Adds `by` to the counter `name` with `pairs`.
    pub fn add(&self, name: &'static str, pairs: &[(&str, &str)], by: f64) {
        let key = (name, labels(&self.constant, pairs));
        if let Ok(mut values) = self.values.lock() {
            *values.entry(key).or_default() += by;
        }
    }

    /// Sets the gauge `name` with `pairs`.
    pub fn set(&self, name: &'static str, pairs: &[(&str, &str)], value: f64) {
        let key = (name, labels(&self.constant, pairs));
        if let Ok(mut values) = self.values.lock() {
            values.insert(key, value);
        }
    }

    /// Records `seconds` in the histogram `name` with `pairs`.
    pub fn observe(&self, name: &'static str, pairs: &[(&str, &str)], seconds: f64) {
        let key = (name, labels(&self.constant, pairs));
        if let Ok(mut histograms) = self.histograms.lock() {
            let histogram = histograms.entry(key).or_default();
            for (count, bound) in histogram.counts.iter_mut().zip(BUCKETS) {
                if seconds <= bound {
                    *count += 1;
                }
            }
            histogram.count += 1;
            histogram.sum += seconds;
        }
    }

    fn write_family(&self, out: &mut String, family: &Family) {
        if family.kind == Kind::Histogram {
            let Ok(histograms) = self.histograms.lock() else { return };
            for ((name, labels), h) in histograms.range((family.name, String::new())..) {
                if *name != family.name {
                    break;
                }
                for (count, bound) in h.counts.iter().zip(BUCKETS) {
                    series(out, name, "_bucket", labels, Some(("le", bound.to_string())), *count as f64);
                }
                series(out, name, "_bucket", labels, Some(("le", "+Inf".into())), h.count as f64);
                series(out, name, "_sum", labels, None, h.sum);
                series(out, name, "_count", labels, None, h.count as f64);
            }
            return;
        }
        let Ok(values) = self.values.lock() else { return };
        for ((name, labels), value) in values.range((family.name, String::new())..) {
            if *name != family.name {
                break;
            }
            series(out, name, "", labels, None, *value);
        }
    }
}

/// The text exposition of `registries` together: each family's help and type once, then its series from every
/// registry that has the family.
pub fn render(registries: &[&Registry]) -> String {
    let mut out = String::new();
    let mut written: Vec<&'static str> = Vec::new();
    for registry in registries {
        for family in registry.families {
            if written.contains(&family.name) {
                continue;
            }
            written.push(family.name);
            let _ = writeln!(
                out,
                "# HELP {} {}\n# TYPE {} {}",
                family.name,
                family.help,
                family.name,
                family.kind.name()
            );
            for other in registries {
                if other.families.iter().any(|f| f.name == family.name) {
                    other.write_family(&mut out, family);
                }
            }
        }
    }
    out
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

const fn family(name: &'static str, help: &'static str, kind: Kind) -> Family {
    Family { name, help, kind }
}

const FAMILIES: &[Family] = &[
    family(TICKS, "Keeper ticks run, per job.", Kind::Counter),
    family(ITEMS, "Items handled per job and outcome.", Kind::Counter),
    family(TRANSACTIONS, "Transactions sent per job and result.", Kind::Counter),
    family(GAS_USED, "Gas used by confirmed transactions, per job.", Kind::Counter),
    family(ERRORS, "Job runs that ended in an error, per job.", Kind::Counter),
    family(INTAKE, "Intake requests per result.", Kind::Counter),
    family(QUEUE_DEPTH, "Payments queued for settlement.", Kind::Gauge),
    family(BALANCE, "The keeper's native balance.", Kind::Gauge),
    family(LAST_TICK, "Chain time of the last finished tick.", Kind::Gauge),
];

/// The keeper's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        Self { registry: Registry::new(FAMILIES, &[]) }
    }
}

impl Metrics {
    /// The keeper's metrics with every series labelled `network="<network>"` (one engine of several).
    pub fn for_network(network: &str) -> Self {
        Self { registry: Registry::new(FAMILIES, &[("network", network)]) }
    }

    /// The registry behind these metrics, for [`render`] with others.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// `count` items of `job` ended as `outcome` (`settled`, an x402 reason, `claimed`...).
    pub fn items(&self, job: &str, outcome: &str, count: usize) {
        self.registry.add(ITEMS, &[("job", job), ("outcome", outcome)], count as f64);
    }

    /// `job` ran in a tick.
    pub fn tick(&self, job: &str) {
        self.registry.add(TICKS, &[("job", job)], 1.0);
    }

    /// `job` (or `rpc`, `chain` for the tick itself) ended in an error.
    pub fn error(&self, job: &str) {
        self.registry.add(ERRORS, &[("job", job)], 1.0);
    }

    /// A transaction of `job` ended as `result` (`confirmed`, `reverted`, `dropped`), using `gas` if mined.
    pub fn transaction(&self, job: &str, result: &str, gas: Option<u64>) {
        self.registry.add(TRANSACTIONS, &[("job", job), ("result", result)], 1.0);
        if let Some(gas) = gas {
            self.registry.add(GAS_USED, &[("job", job)], gas as f64);
        }
    }

    /// An intake request was answered with `result` (`queued`, `invalid`, `rate_limited`...).
    pub fn intake(&self, result: &str) {
        self.registry.add(INTAKE, &[("result", result)], 1.0);
    }

    /// Payments queued now.
    pub fn queue_depth(&self, queued: u64) {
        self.registry.set(QUEUE_DEPTH, &[], queued as f64);
    }

    /// The keeper's native balance.
    pub fn balance(&self, wei: f64) {
        self.registry.set(BALANCE, &[], wei);
    }

    /// The chain time of the last finished tick.
    pub fn last_tick(&self, chain_time: u64) {
        self.registry.set(LAST_TICK, &[], chain_time as f64);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        render(&[&self.registry])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_of_several_networks_render_each_family_once_with_their_label() {
        let (local, base) = (Metrics::for_network("local"), Metrics::for_network("base-sepolia"));
        local.intake("queued");
        base.intake("queued");
        base.queue_depth(3);
        let text = render(&[local.registry(), base.registry()]);
        assert_eq!(text.matches("# TYPE x402_keeper_intake_requests_total counter").count(), 1);
        assert!(
            text.contains("x402_keeper_intake_requests_total{network=\"local\",result=\"queued\"} 1"),
            "{text}"
        );
        assert!(text.contains("x402_keeper_queue_depth{network=\"base-sepolia\"} 3"), "{text}");
        assert!(Metrics::default().render().contains("# TYPE x402_keeper_queue_depth gauge"));
    }

    #[test]
    fn a_histogram_counts_each_observation_in_every_bucket_above_it() {
        const FAMILY: &[Family] = &[family("x_seconds", "Test.", Kind::Histogram)];
        let registry = Registry::new(FAMILY, &[]);
        registry.observe("x_seconds", &[("route", "verify")], 0.004);
        registry.observe("x_seconds", &[("route", "verify")], 0.2);
        let text = render(&[&registry]);
        assert!(text.contains("x_seconds_bucket{route=\"verify\",le=\"0.0025\"} 0"), "{text}");
        assert!(text.contains("x_seconds_bucket{route=\"verify\",le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("x_seconds_bucket{route=\"verify\",le=\"0.25\"} 2"), "{text}");
        assert!(text.contains("x_seconds_bucket{route=\"verify\",le=\"+Inf\"} 2"), "{text}");
        assert!(text.contains("x_seconds_count{route=\"verify\"} 2"), "{text}");
    }
}
