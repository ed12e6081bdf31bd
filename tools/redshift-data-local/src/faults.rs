//! Fault injection: the spec (`throttle=0.1,server_error=0.05,serialization=0.05,disk_full=0.01,
//! abort=0.01,resize=0.01,latency_ms=50,seed=7`), one seeded RNG for every decision, and counters
//! of injected faults and API calls.
//!
//! All decisions come from one `SmallRng` behind a mutex, drawn in request order, so a seed
//! reproduces a run as long as the requests arrive in the same order.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::Isolation;
use crate::errors::CONCURRENT_TRANSACTION_ERROR;

/// Redshift's message for a serializable isolation violation (`ERROR: 1023`), injected by
/// `serialization` on a SERIALIZABLE emulator.
pub const SERIALIZATION_ERROR: &str = "ERROR: 1023 DETAIL: Serializable isolation violation on table - 100341, \
transactions forming the cycle are: 19402, 19389 (pid:14620)";
/// A full cluster (`code: 1016`), injected by `disk_full`.
pub const DISK_FULL_ERROR: &str = "ERROR: Disk Full DETAIL: error: Disk Full code: 1016 context: node: 3 \
query: 1005177 location: fdisk_api.cpp:345 process: query3_66 [pid=27629]";
/// A query the system aborted (`code: 1020`), injected by `abort`.
pub const ABORT_QUERY_ERROR: &str = "ERROR: abort query DETAIL: error: abort query code: 1020 context: system \
requested abort query: 1903 location: queryabort.cpp:347 process: padbmaster [pid=13787]";
/// A cluster being resized, injected by `resize`.
pub const RESIZE_ERROR: &str = "ERROR: Cannot execute query because system is in resize mode DETAIL: System is in \
resize mode, and ONLY read-only queries are allowed to execute.";

/// A fault that fails an accepted statement before it runs anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementFault {
    Serialization,
    DiskFull,
    Abort,
    Resize,
}

impl StatementFault {
    /// In the order the RNG draws them.
    const ALL: [StatementFault; 4] =
        [StatementFault::Serialization, StatementFault::DiskFull, StatementFault::Abort, StatementFault::Resize];

    /// The spec key and counter name.
    pub fn name(self) -> &'static str {
        match self {
            StatementFault::Serialization => "serialization",
            StatementFault::DiskFull => "disk_full",
            StatementFault::Abort => "abort",
            StatementFault::Resize => "resize",
        }
    }

    /// The statement's `Error`. A serialization conflict reads as the database's level reports it.
    pub fn text(self, isolation: Isolation) -> &'static str {
        match (self, isolation) {
            (StatementFault::Serialization, Isolation::Serializable) => SERIALIZATION_ERROR,
            (StatementFault::Serialization, Isolation::Snapshot) => CONCURRENT_TRANSACTION_ERROR,
            (StatementFault::DiskFull, _) => DISK_FULL_ERROR,
            (StatementFault::Abort, _) => ABORT_QUERY_ERROR,
            (StatementFault::Resize, _) => RESIZE_ERROR,
        }
    }
}

/// What to inject. Probabilities are in `0..=1`; all default to zero.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultSpec {
    /// Probability that an API call answers `ThrottlingException` (HTTP 400).
    pub throttle: f64,
    /// Probability that an API call answers `InternalServerException` (HTTP 500).
    pub server_error: f64,
    /// Probability that an accepted Execute/BatchExecute statement fails with Redshift's
    /// conflict text of the isolation level without running anything.
    pub serialization: f64,
    /// Probability that an accepted statement fails with Redshift's `Disk Full` (1016) text.
    pub disk_full: f64,
    /// Probability that an accepted statement fails with Redshift's `abort query` (1020) text.
    pub abort: f64,
    /// Probability that an accepted statement fails with Redshift's resize-mode text.
    pub resize: f64,
    /// How long statements stay STARTED before they run.
    pub latency_ms: u64,
    /// RNG seed; `None` seeds from the clock (the seed used is shown by `GET /__faults`).
    pub seed: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultSpecError {
    #[error("fault item `{0}` is not of the form key=value")]
    NotKeyValue(String),
    #[error(
        "unknown fault `{0}` (known: throttle, server_error, serialization, disk_full, abort, resize, latency_ms, seed)"
    )]
    UnknownKey(String),
    #[error("fault item `{0}`: expected a probability between 0 and 1")]
    BadProbability(String),
    #[error("fault item `{0}`: expected a non-negative integer")]
    BadInteger(String),
    #[error("fault `{0}` is given more than once")]
    Duplicate(String),
}

impl FromStr for FaultSpec {
    type Err = FaultSpecError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut spec = FaultSpec::default();
        let mut seen = Vec::new();
        for item in text.split(',').map(str::trim).filter(|item| !item.is_empty()) {
            let (key, value) = item.split_once('=').ok_or_else(|| FaultSpecError::NotKeyValue(item.to_owned()))?;
            let (key, value) = (key.trim(), value.trim());
            if seen.contains(&key) {
                return Err(FaultSpecError::Duplicate(key.to_owned()));
            }
            seen.push(key);
            let probability = || match value.parse::<f64>() {
                Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
                _ => Err(FaultSpecError::BadProbability(item.to_owned())),
            };
            let integer = || value.parse::<u64>().map_err(|_| FaultSpecError::BadInteger(item.to_owned()));
            match key {
                "throttle" => spec.throttle = probability()?,
                "server_error" => spec.server_error = probability()?,
                "serialization" => spec.serialization = probability()?,
                "disk_full" => spec.disk_full = probability()?,
                "abort" => spec.abort = probability()?,
                "resize" => spec.resize = probability()?,
                "latency_ms" => spec.latency_ms = integer()?,
                "seed" => spec.seed = Some(integer()?),
                _ => return Err(FaultSpecError::UnknownKey(item.to_owned())),
            }
        }
        Ok(spec)
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut items = Vec::new();
        let statement = StatementFault::ALL.map(|fault| (fault.name(), self.probability(fault)));
        for (name, p) in [("throttle", self.throttle), ("server_error", self.server_error)].into_iter().chain(statement)
        {
            if p > 0.0 {
                items.push(format!("{name}={p}"));
            }
        }
        if self.latency_ms > 0 {
            items.push(format!("latency_ms={}", self.latency_ms));
        }
        if let Some(seed) = self.seed {
            items.push(format!("seed={seed}"));
        }
        f.write_str(&items.join(","))
    }
}

impl FaultSpec {
    /// The probability of a statement fault.
    pub fn probability(&self, fault: StatementFault) -> f64 {
        match fault {
            StatementFault::Serialization => self.serialization,
            StatementFault::DiskFull => self.disk_full,
            StatementFault::Abort => self.abort,
            StatementFault::Resize => self.resize,
        }
    }
}

/// A fault that replaces the answer of an API call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallFault {
    Throttle,
    ServerError,
}

/// Live fault state shared by all requests.
pub struct Faults {
    state: Mutex<State>,
}

struct State {
    spec: FaultSpec,
    seed: u64,
    rng: SmallRng,
    injected: BTreeMap<&'static str, u64>,
    calls: BTreeMap<String, u64>,
}

impl State {
    fn new(spec: FaultSpec) -> Self {
        let seed = spec
            .seed
            .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0));
        let injected = ["throttle", "server_error"]
            .into_iter()
            .chain(StatementFault::ALL.map(StatementFault::name))
            .map(|k| (k, 0))
            .collect();
        State { spec, seed, rng: SmallRng::seed_from_u64(seed), injected, calls: BTreeMap::new() }
    }

    /// Draws only for faults that are switched on, so a spec without faults consumes nothing.
    fn draw(&mut self, probability: f64, kind: &'static str) -> bool {
        if probability <= 0.0 || !self.rng.random_bool(probability) {
            return false;
        }
        *self.injected.entry(kind).or_default() += 1;
        true
    }
}

/// What `GET /__faults` shows.
#[derive(Debug, Serialize)]
pub struct FaultsSnapshot {
    pub spec: String,
    pub seed: u64,
    pub injected: BTreeMap<&'static str, u64>,
    pub calls: BTreeMap<String, u64>,
}

impl Faults {
    pub fn new(spec: FaultSpec) -> Self {
        Faults { state: Mutex::new(State::new(spec)) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the spec, reseeds the RNG and resets all counters.
    pub fn replace(&self, spec: FaultSpec) {
        *self.lock() = State::new(spec);
    }

    /// Counts an API call of `operation` and decides whether it fails instead of running.
    pub fn on_call(&self, operation: &str) -> Option<CallFault> {
        let mut state = self.lock();
        *state.calls.entry(operation.to_owned()).or_default() += 1;
        let (throttle, server_error) = (state.spec.throttle, state.spec.server_error);
        if state.draw(throttle, "throttle") {
            Some(CallFault::Throttle)
        } else if state.draw(server_error, "server_error") {
            Some(CallFault::ServerError)
        } else {
            None
        }
    }

    /// Decides whether an accepted statement fails, and how, before it runs. Faults are drawn in
    /// a fixed order and only when switched on, so adding one keeps older seeds reproducible.
    pub fn statement(&self) -> Option<StatementFault> {
        let mut state = self.lock();
        StatementFault::ALL.into_iter().find(|&fault| {
            let p = state.spec.probability(fault);
            state.draw(p, fault.name())
        })
    }

    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.lock().spec.latency_ms)
    }

    pub fn snapshot(&self) -> FaultsSnapshot {
        let state = self.lock();
        FaultsSnapshot {
            spec: state.spec.to_string(),
            seed: state.seed,
            injected: state.injected.clone(),
            calls: state.calls.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_spec_and_prints_it_back() {
        let text =
            "throttle=0.1, server_error=0.05,serialization=1,disk_full=0.2,abort=0.3,resize=0.4,latency_ms=50,seed=7";
        let spec: FaultSpec = text.parse().unwrap();
        assert_eq!(
            spec,
            FaultSpec {
                throttle: 0.1,
                server_error: 0.05,
                serialization: 1.0,
                disk_full: 0.2,
                abort: 0.3,
                resize: 0.4,
                latency_ms: 50,
                seed: Some(7)
            }
        );
        assert_eq!(spec.to_string(), text.replace(' ', ""));
        assert_eq!("".parse::<FaultSpec>().unwrap(), FaultSpec::default());
    }

    #[test]
    fn rejects_bad_items_naming_them() {
        let cases = [
            ("throttle=2", "throttle=2"),
            ("throttle=-0.1", "throttle=-0.1"),
            ("throttle=NaN", "throttle=NaN"),
            ("latency_ms=1.5", "latency_ms=1.5"),
            ("boom=1", "boom=1"),
            ("seed", "seed"),
            ("seed=1,seed=2", "seed"),
        ];
        for (text, named) in cases {
            let error = text.parse::<FaultSpec>().unwrap_err().to_string();
            assert!(error.contains(named), "{text}: {error}");
        }
    }

    #[test]
    fn a_seed_reproduces_the_decisions_and_counts_them() {
        let spec: FaultSpec = "throttle=0.3,server_error=0.3,serialization=0.5,seed=42".parse().unwrap();
        let run = || {
            let faults = Faults::new(spec.clone());
            let decisions: Vec<_> =
                (0..200).map(|_| (faults.on_call("ExecuteStatement"), faults.statement())).collect();
            (decisions, faults.snapshot())
        };
        let (first, snapshot) = run();
        let (second, _) = run();
        assert_eq!(first, second);
        let throttled = first.iter().filter(|(call, _)| *call == Some(CallFault::Throttle)).count() as u64;
        assert!(throttled > 20 && throttled < 100, "{throttled}");
        assert_eq!(snapshot.injected["throttle"], throttled);
        assert_eq!(snapshot.calls["ExecuteStatement"], 200);
        assert_eq!(snapshot.seed, 42);
    }

    #[test]
    fn statement_faults_are_drawn_in_order_and_counted() {
        let faults = Faults::new("disk_full=1,abort=1,seed=1".parse().unwrap());
        assert_eq!(faults.statement(), Some(StatementFault::DiskFull));
        assert_eq!(Faults::new("resize=1".parse().unwrap()).statement(), Some(StatementFault::Resize));
        assert_eq!(Faults::new("abort=1".parse().unwrap()).statement(), Some(StatementFault::Abort));
        let snapshot = faults.snapshot();
        assert_eq!((snapshot.injected["disk_full"], snapshot.injected["abort"]), (1, 0));
        for fault in StatementFault::ALL {
            assert!(fault.text(Isolation::Snapshot).starts_with("ERROR: "));
            assert!(!fault.text(Isolation::Serializable).contains("SQLSTATE"));
        }
        assert_eq!(StatementFault::Serialization.text(Isolation::Serializable), SERIALIZATION_ERROR);
        assert_eq!(StatementFault::Serialization.text(Isolation::Snapshot), CONCURRENT_TRANSACTION_ERROR);
    }

    #[test]
    fn replace_resets_counters_and_zero_probabilities_never_fire() {
        let faults = Faults::new("throttle=1".parse().unwrap());
        assert_eq!(faults.on_call("DescribeStatement"), Some(CallFault::Throttle));
        faults.replace(FaultSpec::default());
        assert_eq!(faults.snapshot().injected["throttle"], 0);
        assert!(faults.snapshot().calls.is_empty());
        assert!((0..100).all(|_| faults.on_call("DescribeStatement").is_none() && faults.statement().is_none()));
    }
}
