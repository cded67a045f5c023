//! pgbench's run and a measured phase cut into slices taken in turn (pgbench, phase,
//! pgbench, …): the machine's speed drifts by a sixth within a minute on the 2-core
//! machine of BENCHMARKS.md, and so weighs on both alike instead of on whichever ran
//! in the slower minute.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::cpu::{process_seconds, CpuCost, CpuTimes, Spent};
use super::load::PhaseFigures;

/// What the slices of a phase and of pgbench's run add up to.
pub(super) struct Slices {
    rounds: u32,
    slice: Duration,
    slice_secs: u64,
    gateway_pid: u32,
    hist: Histogram<u64>,
    errors: u64,
    took: Duration,
    machine: Spent,
    /// The gateway's CPU seconds over the phase's slices (`None`: not readable).
    gateway_secs: Option<f64>,
    pgbench: Spent,
    pgbench_tps: Vec<f64>,
}

/// Where a slice of the phase started.
pub(super) struct Mark {
    machine: Option<CpuTimes>,
    gateway: Option<f64>,
    at: Instant,
}

/// The phase's figures (with the gateway's and the machine's CPU per request), the
/// machine's CPU cost per request, and pgbench's mean transactions per second with
/// its CPU cost per transaction (when pgbench ran).
pub(super) struct Tallied {
    pub phase: PhaseFigures,
    pub machine: Option<CpuCost>,
    pub pgbench: Option<(f64, Option<CpuCost>)>,
}

impl Slices {
    /// `phase` cut into `rounds` slices (at least one, and none shorter than a second:
    /// pgbench counts whole seconds).
    pub(super) fn new(phase: Duration, rounds: u32, gateway_pid: u32) -> anyhow::Result<Slices> {
        let rounds = rounds.clamp(1, u32::try_from(phase.as_secs()).unwrap_or(u32::MAX).max(1));
        Ok(Slices {
            rounds,
            slice: phase / rounds,
            slice_secs: (phase.as_secs() / u64::from(rounds)).max(1),
            gateway_pid,
            hist: Histogram::new(3)?,
            errors: 0,
            took: Duration::ZERO,
            machine: Spent::default(),
            gateway_secs: Some(0.0),
            pgbench: Spent::default(),
            pgbench_tps: Vec::new(),
        })
    }

    pub(super) fn rounds(&self) -> u32 {
        self.rounds
    }

    /// The length of one slice of the phase.
    pub(super) fn slice(&self) -> Duration {
        self.slice
    }

    /// One slice of pgbench's run of `script` on `db` with `clients`.
    pub(super) async fn pgbench(&mut self, db: &str, clients: usize, script: &str) -> anyhow::Result<()> {
        let before = CpuTimes::now();
        let tps = super::pgbench::run_script(db, clients, self.slice_secs, script).await?;
        let secs = self.slice_secs as f64;
        if let Some(b) = before {
            self.pgbench.add_since(b, tps * secs, secs);
        }
        self.pgbench_tps.push(tps);
        Ok(())
    }

    /// Marks the start of a slice of the phase.
    pub(super) fn mark(&self) -> Mark {
        Mark { machine: CpuTimes::now(), gateway: process_seconds(self.gateway_pid), at: Instant::now() }
    }

    /// Adds the slice begun at `mark`: its latencies (µs) and errors.
    pub(super) fn add(&mut self, mark: Mark, hist: Histogram<u64>, errors: u64) -> anyhow::Result<()> {
        let took = mark.at.elapsed();
        if let Some(b) = mark.machine {
            self.machine.add_since(b, hist.len() as f64, took.as_secs_f64());
        }
        self.gateway_secs = match (self.gateway_secs, mark.gateway, process_seconds(self.gateway_pid)) {
            (Some(sum), Some(a), Some(b)) => Some(sum + b - a),
            _ => None,
        };
        self.hist.add(hist)?;
        self.errors += errors;
        self.took += took;
        Ok(())
    }

    pub(super) fn done(self) -> Tallied {
        let mut phase = PhaseFigures::of(&self.hist, self.errors, self.took);
        let machine = self.machine.cost();
        phase.machine_cpu_ms = machine.map(|c| c.ms_per_op);
        // The gateway's own CPU per request: what a change to its code moves.
        phase.gateway_cpu_ms = match self.gateway_secs {
            Some(secs) if phase.requests > 0 => Some(1000.0 * secs / phase.requests as f64),
            _ => None,
        };
        let tps = &self.pgbench_tps;
        let pgbench = (!tps.is_empty()).then(|| (tps.iter().sum::<f64>() / tps.len() as f64, self.pgbench.cost()));
        Tallied { phase, machine, pgbench }
    }
}
