//! The figures as Markdown, written into BENCHMARKS.md between markers (the rest of
//! the file is kept).

use super::{BackendFigures, RunArgs};

const BEGIN: &str = "<!-- cupola bench: begin -->";
const END: &str = "<!-- cupola bench: end -->";

pub fn table(all: &[BackendFigures]) -> String {
    let ms = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.3}"));
    let mut t = String::from(
        "| backend | phase | requests | errors | per second | median ms | p99 ms | gateway CPU ms per request | machine CPU ms per request |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for f in all {
        for (name, p) in [
            ("create", &f.create),
            ("read", &f.read),
            ("search by identifier", &f.search),
            ("mix (¼ each create, read, update, delete)", &f.mix),
        ] {
            t.push_str(&format!(
                "| {} | {name} | {} | {} | {:.0} | {:.2} | {:.2} | {} | {} |\n",
                f.backend,
                p.requests,
                p.errors,
                p.per_second,
                p.median_ms,
                p.p99_ms,
                ms(p.gateway_cpu_ms),
                ms(p.machine_cpu_ms)
            ));
        }
    }
    t.push_str("\n| backend | gateway RSS after run (MB) | peak RSS (MB) | pgbench create tps | gateway create/s | ratio | machine CPU ms per pgbench transaction / per create |\n|---|---|---|---|---|---|---|\n");
    for f in all {
        let (tps, ratio) = match f.pgbench_tps {
            Some(t) => (format!("{t:.0}"), format!("{:.0} %", 100.0 * f.create.per_second / t)),
            None => ("–".into(), "–".into()),
        };
        let cpu = match (f.pgbench_cpu_ms, f.create.machine_cpu_ms) {
            (Some(p), Some(c)) if c > 0.0 => format!("{p:.3} / {c:.3} ({:.0} %)", 100.0 * p / c),
            _ => "–".into(),
        };
        t.push_str(&format!(
            "| {} | {:.1} | {:.1} | {tps} | {:.0} | {ratio} | {cpu} |\n",
            f.backend,
            f.rss_kb as f64 / 1024.0,
            f.peak_rss_kb as f64 / 1024.0,
            f.create.per_second
        ));
    }
    t
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("?")
        .trim()
        .to_string();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: u64 =
        meminfo.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0);
    format!("{cores} cores ({model}), {:.0} GiB memory", mem_kb as f64 / 1024.0 / 1024.0)
}

pub fn write(args: &RunArgs, all: &[BackendFigures]) -> anyhow::Result<()> {
    let build = if cfg!(debug_assertions) { "debug build (figures not representative)" } else { "release build" };
    let section = format!(
        "{BEGIN}\n## Latest run\n\n{} UTC, {build}, on {}; {} clients, {} s per phase; gateway and load generator \
         as separate processes on the same machine; each phase starts from the rows the earlier ones made.\n\n{}\n{END}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M"),
        machine(),
        args.clients,
        args.seconds,
        table(all)
    );
    let old = std::fs::read_to_string(&args.write).unwrap_or_default();
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if e > b => format!("{}{section}{}", &old[..b], &old[e + END.len()..]),
        _ => format!("{old}\n{section}\n"),
    };
    std::fs::write(&args.write, new)?;
    Ok(())
}
