//! The report `pam-bench` prints and BENCHMARKS.md records: machine, floor, a table of
//! logins per scenario with ratios, the targets met or missed, and the footprint.

use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;

use crate::peers::{ALL, Peer};
use crate::stats::{Summary, micros};
use crate::{Options, Row, floor};

fn ratio(a: Option<Duration>, b: Option<Duration>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if !b.is_zero() => Some(a.as_secs_f64() / b.as_secs_f64()),
        _ => None,
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"))
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name\t: ").map(str::to_owned))
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let run = |cmd: &str, args: &[&str]| {
        Command::new(cmd).args(args).output().map_or_else(
            |_| String::new(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        )
    };
    format!(
        "{cpu}, {} cores; kernel {}; {}",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        run("uname", &["-r"]),
        run("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
    )
}

/// The whole report, as Markdown.
pub fn render(
    options: &Options,
    rows: &[Row],
    durable: Summary,
    rewrite: Summary,
    memory: &[(Peer, String)],
    leak: &floor::LeakCheck,
) -> String {
    let mut out = String::new();
    header(&mut out, options, durable, rewrite);
    logins(&mut out, rows, durable);
    faults(&mut out, rows);
    targets(&mut out, options, rows, durable);
    footprint(&mut out, options, memory, leak);
    out
}

fn header(out: &mut String, options: &Options, durable: Summary, rewrite: Summary) {
    let _ = writeln!(out, "Machine: {}", machine());
    let fs_type = Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(&options.work)
        .output()
        .map_or_else(
            |_| "?".to_owned(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        );
    let _ = writeln!(out, "Work directory: {} ({fs_type})\n", options.work.display());
    let _ = writeln!(out, "## Floor\n");
    let _ = writeln!(out, "| what | median | p99 |\n|---|---|---|");
    let _ = writeln!(
        out,
        "| pwrite + fdatasync of a small file | {} | {} |",
        micros(durable.median),
        micros(durable.p99)
    );
    let _ = writeln!(
        out,
        "| temp file + fsync + rename + dir fsync | {} | {} |",
        micros(rewrite.median),
        micros(rewrite.p99)
    );
}

fn logins(out: &mut String, rows: &[Row], durable: Summary) {
    let _ = writeln!(
        out,
        "\n## Logins (median / p99; each is pam_start + pam_authenticate + pam_end)\n"
    );
    let header: Vec<&str> = ALL.iter().map(|p| p.name()).collect();
    let _ = writeln!(
        out,
        "| scenario | store | threads | {} | totp/google | totp/oath | totp/(permit+write) |",
        header.join(" | ")
    );
    let _ = writeln!(out, "|---|---|---|{}---|---|---|", "---|".repeat(ALL.len()));
    for row in rows {
        let cells: Vec<String> = row
            .by_peer
            .iter()
            .map(|(_, s)| {
                let unexpected = if s.unexpected > 0 {
                    format!(" ({}/{} unexpected)", s.unexpected, s.samples)
                } else {
                    String::new()
                };
                format!("{} / {}{unexpected}", micros(s.median), micros(s.p99))
            })
            .collect();
        let floor = row.median(Peer::Permit).map(|p| p + durable.median);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.scenario,
            row.size,
            row.threads,
            cells.join(" | "),
            fmt_ratio(ratio(row.median(Peer::Totp), row.median(Peer::Google))),
            fmt_ratio(ratio(row.median(Peer::Totp), row.median(Peer::Oath))),
            fmt_ratio(ratio(row.median(Peer::Totp), floor)),
        );
    }
}

/// Minor page faults per login: unlike times, they do not depend on what else the
/// machine is doing, so they show a change in the module's load cost on any machine.
fn faults(out: &mut String, rows: &[Row]) {
    let _ = writeln!(
        out,
        "\n## Minor page faults per login (mean; getrusage of the thread around each login)\n"
    );
    let header: Vec<&str> = ALL.iter().map(|p| p.name()).collect();
    let _ = writeln!(out, "| scenario | store | threads | {} |", header.join(" | "));
    let _ = writeln!(out, "|---|---|---|{}", "---|".repeat(ALL.len()));
    for row in rows {
        let cells: Vec<String> = row
            .by_peer
            .iter()
            .map(|(_, s)| s.faults.map_or_else(|| "-".to_owned(), |f| format!("{f:.1}")))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            row.scenario,
            row.size,
            row.threads,
            cells.join(" | ")
        );
    }
}

fn targets(out: &mut String, options: &Options, rows: &[Row], durable: Summary) {
    let _ = writeln!(out, "\n## Targets\n");
    let find = |scenario: &str, size: usize| {
        rows.iter()
            .find(|r| r.scenario == scenario && r.size == size && r.threads == 1)
    };
    let (smallest, largest) = (
        options.sizes.first().copied().unwrap_or(0),
        options.sizes.last().copied().unwrap_or(0),
    );
    for size in &options.sizes {
        if let Some(row) = find("correct code", *size) {
            let g = ratio(row.median(Peer::Totp), row.median(Peer::Google));
            let f = ratio(
                row.median(Peer::Totp),
                row.median(Peer::Permit).map(|p| p + durable.median),
            );
            let _ = writeln!(
                out,
                "- correct code, store {size}: {} × google (target ≤ 0.5: {}); {} × (permit + one durable write) (target ≤ 1.3: {})",
                fmt_ratio(g),
                verdict(g.is_some_and(|r| r <= 0.5)),
                fmt_ratio(f),
                verdict(f.is_some_and(|r| r <= 1.3))
            );
        }
        if let Some(row) = find("wrong code", *size) {
            let g = ratio(row.median(Peer::Totp), row.median(Peer::Google));
            let _ = writeln!(
                out,
                "- wrong code, store {size}: {} × google (target ≤ 0.25: {})",
                fmt_ratio(g),
                verdict(g.is_some_and(|r| r <= 0.25))
            );
        }
    }
    if let (Some(small), Some(large)) = (find("correct code", smallest), find("correct code", largest)) {
        let growth = ratio(large.median(Peer::Totp), small.median(Peer::Totp));
        let _ = writeln!(
            out,
            "- no growth: correct code, store {largest} vs {smallest}: {} (target ≤ 1.1: {})",
            fmt_ratio(growth),
            verdict(growth.is_some_and(|r| r <= 1.1))
        );
    }
}

fn footprint(out: &mut String, options: &Options, memory: &[(Peer, String)], leak: &floor::LeakCheck) {
    let _ = writeln!(out, "\n## Footprint\n");
    for peer in ALL {
        let size = std::fs::metadata(peer.module(&options.module)).map_or(0, |m| m.len());
        let mem = memory
            .iter()
            .find(|(p, _)| *p == peer)
            .map_or("-", |(_, m)| m.as_str());
        let _ = writeln!(
            out,
            "- {}: module file {} KiB; resident memory added by one loaded transaction: {mem}",
            peer.name(),
            size / 1024
        );
    }
    let _ = writeln!(
        out,
        "- {} load/authenticate/unload cycles of pam_totp in one process ({:.1} s, {:.1} minor page faults each): RSS {} → {} KiB, open fds {} → {} ({})",
        leak.cycles,
        leak.elapsed.as_secs_f64(),
        leak.faults_per_cycle(),
        leak.rss_before_kib,
        leak.rss_after_kib,
        leak.fds_before,
        leak.fds_after,
        verdict(leak.fds_after == leak.fds_before && leak.rss_after_kib <= leak.rss_before_kib + 1024)
    );
}

/// Whether one try tells who is enrolled: a wrong code's median time for an enrolled,
/// an unenrolled and an unknown user, as ratios of medians (target: within 10 %).
pub fn enrollment(size: usize, cases: &[(&'static str, Summary)]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## Does timing reveal enrollment? (pam_totp, store {size}, a wrong code each, interleaved)\n"
    );
    let _ = writeln!(
        out,
        "| user | median | p99 | minor faults | / enrolled |\n|---|---|---|---|---|"
    );
    let enrolled = cases.first().map(|(_, s)| s.median);
    for (case, s) in cases {
        let unexpected = if s.unexpected > 0 {
            format!(" ({}/{} unexpected)", s.unexpected, s.samples)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "| {case} | {}{unexpected} | {} | {} | {} |",
            micros(s.median),
            micros(s.p99),
            s.faults.map_or_else(|| "-".to_owned(), |f| format!("{f:.1}")),
            fmt_ratio(ratio(Some(s.median), enrolled))
        );
    }
    let medians: Vec<Duration> = cases.iter().map(|(_, s)| s.median).collect();
    let spread = ratio(medians.iter().max().copied(), medians.iter().min().copied());
    let _ = writeln!(
        out,
        "\n- slowest / fastest median: {} (target ≤ 1.10: {})",
        fmt_ratio(spread),
        verdict(spread.is_some_and(|r| r <= 1.10))
    );
    out
}
