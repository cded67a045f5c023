//! The machine's CPU time, from `/proc/stat`: what a phase cost in CPU, whatever
//! else the host's other guests take (their share shows as steal, not as ours).
//! The benchmark runs the gateway, PostgreSQL and the load on this one machine, so
//! the busy time of the whole machine over a phase is what its work cost.

/// Busy and stolen CPU seconds of the whole machine since boot (Linux).
#[derive(Debug, Clone, Copy)]
pub struct CpuTimes {
    busy: f64,
    steal: f64,
}

impl CpuTimes {
    pub fn now() -> Option<CpuTimes> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let n: Vec<f64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        let tick = clock_tick()?;
        let at = |i: usize| n.get(i).copied().unwrap_or(0.0) / tick;
        Some(CpuTimes { busy: at(0) + at(1) + at(2) + at(5) + at(6), steal: at(7) })
    }

    /// Busy CPU milliseconds per operation since `self`, for `ops` operations, and
    /// the share of the machine's CPU time the host stole over those `seconds`.
    pub fn per_op_since(self, ops: f64, seconds: f64) -> Option<CpuCost> {
        let mut spent = Spent::default();
        spent.add_since(self, ops, seconds)?;
        spent.cost()
    }
}

/// CPU time added up over several slices of a phase, and the operations done in them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spent {
    busy: f64,
    steal: f64,
    ops: f64,
    seconds: f64,
}

impl Spent {
    /// Adds what the machine spent since `from` on `ops` operations over `seconds`.
    pub fn add_since(&mut self, from: CpuTimes, ops: f64, seconds: f64) -> Option<()> {
        let later = CpuTimes::now()?;
        self.busy += later.busy - from.busy;
        self.steal += later.steal - from.steal;
        self.ops += ops;
        self.seconds += seconds;
        Some(())
    }

    /// Busy CPU milliseconds per operation, and the share of the machine the host stole.
    pub fn cost(&self) -> Option<CpuCost> {
        let cores = std::thread::available_parallelism().map(|n| n.get() as f64).unwrap_or(1.0);
        (self.ops > 0.0).then(|| CpuCost {
            ms_per_op: 1000.0 * self.busy / self.ops,
            steal: self.steal / (self.seconds * cores).max(f64::EPSILON),
        })
    }
}

/// What a phase cost the machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuCost {
    pub ms_per_op: f64,
    /// Share of the machine's CPU time the host took for other guests.
    pub steal: f64,
}

/// CPU seconds (user + system) process `pid` has used since it started (Linux).
pub fn process_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces:
    // state is the first, utime and stime the 12th and 13th.
    let rest = stat.rsplit_once(')')?.1;
    let n: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| n.get(i).and_then(|v| v.parse::<f64>().ok());
    Some((ticks(11)? + ticks(12)?) / clock_tick()?)
}

/// CPU seconds (user + system) the calling thread has used (Linux).
pub fn thread_seconds() -> Option<f64> {
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::gettid() };
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let n: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| n.get(i).and_then(|v| v.parse::<f64>().ok());
    Some((ticks(11)? + ticks(12)?) / clock_tick()?)
}

fn clock_tick() -> Option<f64> {
    // SAFETY: sysconf takes no pointers.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (t > 0).then_some(t as f64)
}
