//! `pg-load`: many logins against one PostgreSQL store (issue 6's load run).
//!
//! Each login is real libpam in-process (`pam_start_confdir` → `pam_authenticate` →
//! `pam_end`, the module loaded each time, as sshd does), with a service whose
//! pam_totp line says `store = "postgres"` and logs in as a host role: one connection,
//! read, charge, accept per login, exactly as a host does.
//!
//! Every login is a correct code for a distinct (user, step) pair, so replay protection
//! never refuses an honest login: records use a 1-second period (the database work is
//! the same for any period), users log in in rounds, and a user's next login waits for a
//! newer step if its round came round too quickly (such waits are counted and reported:
//! they cap throughput at users per second). Anything but success is reported by
//! verdict.
//!
//! Run as root (`make bench-postgres` starts a throwaway cluster, runs this, stops it).
//! Creates system users `ptpg0000`... (no home, no shell); `--cleanup` removes them.

#![forbid(unsafe_code)]

// The benchmark's stand-in syslog daemon, shared with pam-bench (not copied).
#[path = "../syslog_sink.rs"]
mod syslog_sink;
// The system users' maker, shared with pam-bench; pg-load uses only part of it.
#[path = "../users.rs"]
#[allow(dead_code)]
mod users;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pam_client::{Login, SUCCESS};
use pam_totp_config::algorithm::Algorithm;
use pam_totp_core::record::Record;
use pam_totp_core::secret::SecretKey;
use pam_totp_store_pg::{self as db, ConnInfo};

const HELP: &str = "\
pg-load: logins through real libpam against a pam_totp PostgreSQL store

Options (defaults in brackets):
  --admin CONNINFO   the admin role (schema owner): migrates, writes the users' records
  --host CONNINFO    a host role (member of pam_totp_host), as in a host's config
  --host-role ROLE   the host's database role, when --host goes through a pooler
                     that logs in as it [the user of --host]
  --module PATH      the pam_totp module [target/release/libpam_totp_db.so]
  --logins N         logins in all [100000]
  --users N          distinct users [1000]
  --workers N        concurrent threads [8]
  --work DIR         service and config files [target/pg-load]
  --pooler-pidfile PATH  a connection pooler's pid file (PgBouncer): its CPU time is
                     reported too
  --cleanup          remove the system users ptpg* and exit
";

const PREFIX: &str = "ptpg";
/// Seconds per code in the benchmark's records (see the module comment).
const PERIOD: u64 = 1;

struct Options {
    admin: String,
    host: String,
    host_role: Option<String>,
    module: PathBuf,
    logins: usize,
    users: usize,
    workers: usize,
    work: PathBuf,
    pooler_pidfile: Option<PathBuf>,
}

fn parse_args() -> Result<Option<Options>, String> {
    let mut options = Options {
        admin: String::new(),
        host: String::new(),
        host_role: None,
        module: PathBuf::from("target/release/libpam_totp_db.so"),
        logins: 100_000,
        users: 1000,
        workers: 8,
        work: PathBuf::from("target/pg-load"),
        pooler_pidfile: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--cleanup" {
            remove_users();
            return Ok(None);
        }
        if arg == "--help" || arg == "-h" {
            print!("{HELP}");
            return Ok(None);
        }
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        let number = || value.parse::<usize>().map_err(|_| format!("{arg}: not a number"));
        match arg.as_str() {
            "--admin" => options.admin.clone_from(&value),
            "--host" => options.host.clone_from(&value),
            "--host-role" => options.host_role = Some(value.clone()),
            "--module" => options.module = PathBuf::from(&value),
            "--logins" => options.logins = number()?,
            "--users" => options.users = number()?.clamp(1, 9999),
            "--workers" => options.workers = number()?.max(1),
            "--work" => options.work = PathBuf::from(&value),
            "--pooler-pidfile" => options.pooler_pidfile = Some(PathBuf::from(&value)),
            _ => return Err(format!("unknown option {arg}; see --help")),
        }
    }
    if options.admin.is_empty() || options.host.is_empty() {
        return Err("--admin and --host are needed; see --help".to_owned());
    }
    Ok(Some(options))
}

fn user_name(i: usize) -> String {
    format!("{PREFIX}{i:04}")
}

/// User `i`'s secret: 20 known bytes, different for every user.
fn secret_bytes(i: usize) -> Vec<u8> {
    format!("pg-load-secret-{i:05}").into_bytes()
}

fn remove_users() {
    for i in 0..10_000 {
        let user = user_name(i);
        if nix::unistd::User::from_name(&user).ok().flatten().is_none() {
            break;
        }
        let _ = Command::new("userdel").arg(&user).status();
    }
}

/// Schema migrated, every user's record written with a known secret, states cleared.
/// Returns the server's backend pid for the admin connection (see [`postmaster`]).
fn provision(options: &Options) -> Result<i32, String> {
    let info: ConnInfo = options.admin.parse().map_err(|e| format!("--admin: {e}"))?;
    let mut admin = db::client::connect(&info, Duration::from_secs(10)).map_err(|e| format!("admin: {e}"))?;
    let backend: i32 = admin
        .query("ask the backend's pid", "SELECT pg_backend_pid()", &[])
        .map_err(|e| format!("pid: {e}"))?
        .first()
        .map(|row| row.get(0))
        .ok_or("pid: no row")?;
    db::migrate(&mut admin).map_err(|e| format!("migrate: {e}"))?;
    let host: ConnInfo = options.host.parse().map_err(|e| format!("--host: {e}"))?;
    if let Some(role) = options.host_role.as_deref().or(host.pg.get_user()) {
        db::admin::grant_host(&mut admin, role).map_err(|e| format!("grant-host {role}: {e}"))?;
    }
    for i in 0..options.users {
        let secret = SecretKey::from_bytes(secret_bytes(i)).map_err(|e| e.to_string())?;
        let record = Record::new(
            secret,
            Algorithm::Sha1,
            6,
            PERIOD,
            pam_totp_config::clock::now_rfc3339(),
        );
        db::admin::put_record(&mut admin, &user_name(i), &record.to_toml())
            .map_err(|e| format!("records: {e}"))?;
    }
    admin
        .execute(
            "clear the benchmark's login states",
            "DELETE FROM pam_totp.login_state WHERE user_name LIKE 'ptpg%'",
            &[],
        )
        .map_err(|e| format!("states: {e}"))?;
    Ok(backend)
}

/// Numeric fields of `/proc/PID/stat` from ppid on (proc(5) field 4 is index 0, so
/// field N is N - 4), or `None` if the process is gone.
fn proc_stat(pid: i32) -> Option<Vec<u64>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces.
    let rest = &text[text.rfind(')')? + 1..];
    Some(
        rest.split_whitespace()
            .skip(1)
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

/// The postmaster: the parent of `backend`, if the server runs on this machine.
fn postmaster(backend: i32) -> Option<i32> {
    let ppid = *proc_stat(backend)?.first()?;
    i32::try_from(ppid).ok()
}

/// CPU time (user + system) of `pid`, of its children now running, and of the
/// children it has reaped: a server that forks a backend per connection is measured
/// whole, backends that came and went included. In clock ticks.
fn tree_ticks(pid: i32) -> u64 {
    // proc(5) fields 4 (ppid) and 14-17 (utime, stime, cutime, cstime), as [`proc_stat`]
    // numbers them: from 0 at ppid.
    let own = |fields: &[u64]| fields.get(10..14).map_or(0, |t| t.iter().sum::<u64>());
    let mut ticks = proc_stat(pid).map_or(0, |f| own(&f));
    let parent = u64::try_from(pid).unwrap_or(0);
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            if let Some(fields) = proc_stat(child).filter(|f| f.first() == Some(&parent)) {
                ticks += own(&fields);
            }
        }
    }
    ticks
}

fn ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .filter(|t| *t > 0)
        .unwrap_or(100)
}

/// The CPU times a run is charged with: the database server's, a pooler's, our own.
struct CpuMeter {
    server: Option<i32>,
    pooler: Option<i32>,
}

/// (server, pooler, this process) CPU seconds so far.
type CpuSample = (Option<f64>, Option<f64>, f64);

impl CpuMeter {
    fn sample(&self) -> CpuSample {
        #[allow(clippy::cast_precision_loss)]
        let seconds = |ticks: u64| ticks as f64 / ticks_per_second() as f64;
        #[allow(clippy::cast_precision_loss)]
        let tv_seconds = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
        let own = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
            .map_or(0.0, |u| tv_seconds(u.user_time()) + tv_seconds(u.system_time()));
        (
            self.server.map(|p| seconds(tree_ticks(p))),
            self.pooler.map(|p| seconds(tree_ticks(p))),
            own,
        )
    }
}

/// The service `pg-load` and its config: the host's view of the store.
fn write_service(options: &Options) -> Result<(), String> {
    let io = |e: std::io::Error| format!("{}: {e}", options.work.display());
    std::fs::create_dir_all(&options.work).map_err(io)?;
    let module =
        std::fs::canonicalize(&options.module).map_err(|e| format!("{}: {e}", options.module.display()))?;
    let work = std::fs::canonicalize(&options.work).map_err(io)?;
    let config = work.join("pam_totp.toml");
    let host = options.host.replace('\\', "\\\\").replace('"', "\\\"");
    std::fs::write(
        &config,
        format!(
            "store = \"postgres\"\npostgres = \"{host}\"\nstate_dir = \"{}\"\n",
            work.join("state").display()
        ),
    )
    .map_err(io)?;
    std::fs::write(
        work.join("pg-load"),
        format!("auth required {} config={}\n", module.display(), config.display()),
    )
    .map_err(io)
}

fn unix_now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// One worker's results.
#[derive(Default)]
struct Tally {
    times: Vec<Duration>,
    verdicts: BTreeMap<i32, usize>,
    waits: usize,
}

/// Worker `w` of `workers`: its users, round after round, one login each per round.
fn worker(options: &Options, confdir: &Path, w: usize, left: &AtomicU64) -> Tally {
    let mine: Vec<usize> = (w..options.users).step_by(options.workers).collect();
    let totps: Vec<totp_rs::Totp> = mine
        .iter()
        .map(|&i| {
            totp_rs::Builder::new()
                .with_secret(secret_bytes(i))
                .with_step_duration(PERIOD)
                .build_noncompliant()
        })
        .collect();
    let names: Vec<String> = mine.iter().map(|&i| user_name(i)).collect();
    let mut last_step = vec![0u64; mine.len()];
    let mut tally = Tally::default();
    'rounds: loop {
        for (k, name) in names.iter().enumerate() {
            if left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_err()
            {
                break 'rounds;
            }
            // A newer step than this user's last login, or replay protection would
            // (rightly) refuse it.
            let mut now = unix_now();
            if now.as_secs() / PERIOD <= last_step[k] {
                tally.waits += 1;
                let next = Duration::from_secs((last_step[k] + 1) * PERIOD);
                std::thread::sleep(next.saturating_sub(now) + Duration::from_millis(5));
                now = unix_now();
            }
            let step = now.as_secs() / PERIOD;
            let code = totps[k].generate(now.as_secs()).to_string();
            let login = Login {
                confdir,
                service: "pg-load",
                user: name,
                rhost: None,
            };
            let start = Instant::now();
            let transcript = pam_client::authenticate(&login, &[code.as_bytes()]);
            tally.times.push(start.elapsed());
            *tally.verdicts.entry(transcript.status).or_default() += 1;
            last_step[k] = step;
        }
    }
    tally
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn verdict_name(status: i32) -> String {
    match status {
        SUCCESS => "success".to_owned(),
        pam_client::AUTH_ERR => "refused (PAM_AUTH_ERR)".to_owned(),
        pam_client::SYSTEM_ERR => "database unavailable (PAM_SYSTEM_ERR)".to_owned(),
        other => format!("PAM status {other}"),
    }
}

fn run(options: &Options) -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("run as root (it creates system users and loads PAM)".to_owned());
    }
    let _sink = syslog_sink::start();
    users::ensure_named((0..options.users).map(user_name))?;
    let backend = provision(options)?;
    let meter = CpuMeter {
        server: postmaster(backend),
        pooler: match &options.pooler_pidfile {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .ok()
                    .and_then(|t| t.trim().parse().ok())
                    .ok_or_else(|| format!("{}: no pid in it", path.display()))?,
            ),
            None => None,
        },
    };
    write_service(options)?;
    let confdir = std::fs::canonicalize(&options.work).map_err(|e| e.to_string())?;
    println!(
        "pg-load: {} logins, {} users, {} workers; records with a {PERIOD} s period so that every \
         login is a correct code of a distinct (user, step) pair",
        options.logins, options.users, options.workers
    );
    let left = AtomicU64::new(options.logins as u64);
    let cpu_before = meter.sample();
    let started = Instant::now();
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..options.workers)
            .map(|w| {
                let (confdir, left) = (&confdir, &left);
                scope.spawn(move || worker(options, confdir, w, left))
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let wall = started.elapsed();
    let cpu_after = meter.sample();
    let mut times = Vec::new();
    let mut verdicts: BTreeMap<i32, usize> = BTreeMap::new();
    let mut waits = 0;
    for tally in tallies {
        times.extend(tally.times);
        waits += tally.waits;
        for (status, n) in tally.verdicts {
            *verdicts.entry(status).or_default() += n;
        }
    }
    times.sort_unstable();
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    #[allow(clippy::cast_precision_loss)]
    let throughput = times.len() as f64 / wall.as_secs_f64();
    println!("logins:      {} in {:.1} s", times.len(), wall.as_secs_f64());
    println!("throughput:  {throughput:.0} logins/s");
    println!(
        "latency:     median {}, p99 {}, max {}",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(times.last().copied().unwrap_or_default())
    );
    for (status, n) in &verdicts {
        println!("verdict:     {n} {}", verdict_name(*status));
    }
    println!("waits for a newer step: {waits} (a user's turn came within its last step)");
    #[allow(clippy::cast_precision_loss)]
    let per_login = |seconds: f64| {
        format!(
            "{seconds:.1} s, {:.2} ms a login",
            seconds * 1000.0 / times.len().max(1) as f64
        )
    };
    match (cpu_before.0, cpu_after.0) {
        (Some(before), Some(after)) => println!(
            "CPU, database server: {} (postmaster and every backend)",
            per_login(after - before)
        ),
        _ => println!("CPU, database server: not measured (not on this machine)"),
    }
    if let (Some(before), Some(after)) = (cpu_before.1, cpu_after.1) {
        println!("CPU, pooler:          {}", per_login(after - before));
    }
    println!(
        "CPU, clients:         {} (pg-load: libpam and the module)",
        per_login(cpu_after.2 - cpu_before.2)
    );
    Ok(())
}

fn main() -> ExitCode {
    match parse_args() {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(options)) => match run(&options) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("pg-load: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("pg-load: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_cpu_time_is_read_from_the_right_proc_fields() {
        let me = i32::try_from(std::process::id()).unwrap();
        let fields = proc_stat(me).unwrap();
        assert_eq!(fields[0], u64::from(std::os::unix::process::parent_id()), "ppid");
        // Burn some user time: utime (index 10) must grow; the priority (index 14,
        // right after cstime) must not be counted.
        let before = fields[10];
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let after = proc_stat(me).unwrap();
        assert!(
            after[10] > before,
            "utime did not grow: {before} -> {}",
            after[10]
        );
        assert!(tree_ticks(me) >= after[10..14].iter().sum::<u64>());
    }
}
