//! The replay's report: Markdown with its figures and checks, and three SVG charts
//! beside it (operations per second, latency percentiles per operation, outbox lag).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use anyhow::Context;

use super::checks::Check;
use super::footprint::{self, Footprint};
use super::run::Run;
use super::stats::{Latency, OutboxSample};

/// What the report says besides the run's own counts.
pub struct Figures {
    pub scale: f64,
    pub seed: u64,
    pub clients: usize,
    pub capacity: u32,
    pub setup_secs: f64,
    pub run_secs: f64,
    /// The database after the setup and at the end.
    pub db_before: Footprint,
    pub db_after: Footprint,
    pub latencies: Vec<(&'static str, Latency)>,
    pub per_second: Vec<u64>,
    pub outbox: Vec<OutboxSample>,
    pub checks: Vec<Check>,
}

impl Figures {
    /// Bytes the database grew by per booking made.
    pub fn bytes_per_booking(&self, bookings: u64) -> f64 {
        (self.db_after.total - self.db_before.total) as f64 / bookings.max(1) as f64
    }
}

/// Writes `report.md` and its charts into `dir`; returns the report's path.
pub fn write(dir: &Path, run: &Run, f: &Figures) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating the report's directory {}", dir.display()))?;
    let ops: Vec<(f64, f64)> = f.per_second.iter().enumerate().map(|(s, n)| (s as f64, *n as f64)).collect();
    let lag: Vec<(f64, f64)> = f.outbox.iter().map(|s| (s.at, s.lag_secs)).collect();
    let pending: Vec<(f64, f64)> = f.outbox.iter().map(|s| (s.at, s.pending as f64)).collect();
    let charts = [
        ("ops.svg", line_svg("operations per second", "s", &[("requests/s", &ops)])),
        ("latency.svg", bars_svg("latency per operation (ms)", &f.latencies)),
        ("outbox.svg", line_svg("outbox", "s", &[("lag (s)", &lag), ("waiting", &pending)])),
    ];
    for (name, svg) in &charts {
        std::fs::write(dir.join(name), svg).with_context(|| format!("writing {}", dir.join(name).display()))?;
    }
    let path = dir.join("report.md");
    std::fs::write(&path, markdown(run, f)).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The report's text.
pub fn markdown(run: &Run, f: &Figures) -> String {
    let t = &run.tally;
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let bookings = n(&t.booked) + n(&t.rebooked);
    let mut s = String::new();
    let _ = writeln!(s, "# The year replayed: scale {}, seed {}\n", f.scale, f.seed);
    let _ = writeln!(
        s,
        "{} clients; agendas of a year with {} places per slot; setup {:.1} s, run {:.1} s ({:.1} bookings/s).\n",
        f.clients,
        f.capacity,
        f.setup_secs,
        f.run_secs,
        bookings as f64 / f.run_secs.max(0.001)
    );
    let _ = writeln!(s, "## What was done\n\n| step | count |\n|---|---|");
    for (name, v) in [
        ("bookings (prescriptions booked)", n(&t.booked)),
        ("reschedules booked", n(&t.rebooked)),
        ("proposals declined", n(&t.declined)),
        ("holds left to lapse", n(&t.lapsed_holds)),
        ("tickets paid", n(&t.paid)),
        ("cancellations", n(&t.cancelled)),
        ("of which late (under 48 h)", n(&t.cancelled_late)),
        ("no-shows reported by providers", n(&t.no_shows)),
        ("daily lists dispatched", n(&t.lists)),
        ("$find with no proposal", n(&t.no_proposal)),
        ("slots taken first by another client (found again)", n(&t.taken)),
        ("steps failed", n(&t.failed)),
        ("answers 503 (gateway busy), retried", run.api.stats.busy.load(Ordering::Relaxed) as u64),
    ] {
        let _ = writeln!(s, "| {name} | {v} |");
    }
    s.push_str(&latency_table(&f.latencies));
    let _ = writeln!(
        s,
        "\n## Database\n\n| | |\n|---|---|\n| after the setup | {:.1} MB |\n| at the end | {:.1} MB |\n| bytes per booking | {:.0} |\n",
        f.db_before.total as f64 / 1e6,
        f.db_after.total as f64 / 1e6,
        f.bytes_per_booking(bookings)
    );
    s.push_str(&footprint::markdown(&f.db_before, &f.db_after, bookings));
    let _ = writeln!(s, "## Checks (through the API)\n\n| check | result | found |\n|---|---|---|");
    for c in &f.checks {
        let _ = writeln!(s, "| {} | {} | {} |", c.name, if c.passed { "passed" } else { "**FAILED**" }, c.detail);
    }
    let errors = t.errors.lock().map(|e| e.clone()).unwrap_or_default();
    if !errors.is_empty() {
        let _ = writeln!(s, "\n## First failed steps\n");
        for e in errors {
            let _ = writeln!(s, "- {e}");
        }
    }
    s.push_str("\n![operations per second](ops.svg)\n\n![latency](latency.svg)\n\n![outbox](outbox.svg)\n");
    s
}

fn latency_table(latencies: &[(&'static str, Latency)]) -> String {
    let mut s = String::from("\n## Latency per operation (ms)\n\n| operation | calls | errors | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|---|\n");
    for (op, l) in latencies {
        let _ = writeln!(
            s,
            "| {op} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            l.count, l.errors, l.p50, l.p90, l.p99, l.max
        );
    }
    s
}

const W: f64 = 720.0;
const H: f64 = 320.0;
const PAD: f64 = 50.0;
const COLOURS: [&str; 3] = ["#1f77b4", "#d62728", "#2ca02c"];

/// A line chart of `series` (name, points) against the x axis in `x_unit`.
fn line_svg(title: &str, x_unit: &str, series: &[(&str, &Vec<(f64, f64)>)]) -> String {
    let all = series.iter().flat_map(|(_, p)| p.iter());
    let (max_x, max_y) = all.fold((1.0f64, 1.0f64), |(mx, my), (x, y)| (mx.max(*x), my.max(*y)));
    let mut s = svg_head(title);
    let _ = write!(
        s,
        r#"<text x="{PAD}" y="{}" font-size="11">0</text><text x="{}" y="{}" font-size="11">{max_x:.0} {x_unit}</text><text x="4" y="{}" font-size="11">{max_y:.1}</text>"#,
        H - PAD + 14.0,
        W - PAD - 30.0,
        H - PAD + 14.0,
        PAD
    );
    for (i, (name, points)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| {
                format!("{:.1},{:.1}", PAD + x / max_x * (W - 2.0 * PAD), H - PAD - y / max_y * (H - 2.0 * PAD))
            })
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/><text x="{}" y="{}" font-size="12" fill="{colour}">{name}</text>"#,
            path.join(" "),
            W - 160.0,
            PAD + 16.0 * i as f64
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Bars of p50, p90 and p99 for each operation.
fn bars_svg(title: &str, latencies: &[(&'static str, Latency)]) -> String {
    let max = latencies.iter().map(|(_, l)| l.p99).fold(1.0f64, f64::max);
    let mut s = svg_head(title);
    let group = (W - 2.0 * PAD) / latencies.len().max(1) as f64;
    for (i, (op, l)) in latencies.iter().enumerate() {
        let x0 = PAD + group * i as f64;
        for (j, v) in [l.p50, l.p90, l.p99].iter().enumerate() {
            let h = v / max * (H - 2.0 * PAD);
            let _ = write!(
                s,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{}"/>"#,
                x0 + group * 0.25 * j as f64 + 2.0,
                H - PAD - h,
                group * 0.25,
                COLOURS[j]
            );
        }
        let _ = write!(s, r#"<text x="{x0:.1}" y="{}" font-size="10">{op}</text>"#, H - PAD + 14.0);
    }
    let _ = write!(
        s,
        r#"<text x="4" y="{PAD}" font-size="11">{max:.0} ms</text><text x="{}" y="40" font-size="12">p50 (blue), p90 (red), p99 (green)</text></svg>"#,
        W - 260.0
    );
    s.push('\n');
    s
}

fn svg_head(title: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif"><rect width="{W}" height="{H}" fill="white"/><text x="{PAD}" y="24" font-size="15">{title}</text><line x1="{PAD}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{}" stroke="black"/>"#,
        H - PAD,
        W - PAD,
        H - PAD,
        H - PAD
    )
}
