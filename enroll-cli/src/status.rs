//! `totp-enroll status` and `totp-enroll list`: what an enrollment looks like, never
//! the secret.
//!
//! The record says since when, with which parameters, and how many recovery codes
//! were issued. Failures, lock-out, last login and burnt recovery codes are in the
//! login state, which only root can read (an invariant): a user's own `status` says so
//! instead of guessing. With the database (root only), the changes under way too: an
//! admin's `reset` the user has not followed by enrolling again, and a live
//! re-enrollment ticket; a record file has neither (`reset` there is `remove`).

use pam_totp_config::Config;
use pam_totp_core::ports::Stored;
use pam_totp_core::record::StoredRecord;
use pam_totp_core::recovery;
use pam_totp_store_file::seal;
use serde::Serialize;

use crate::audit;
use crate::caller::Target;
use crate::error::{CliError, CliResult};
use crate::store::{Backend, Place};

/// One user's status, as printed and as `--json` gives it.
#[derive(Debug, Serialize)]
pub struct Status {
    pub user: String,
    pub enrolled: bool,
    pub record: String,
    /// Why an existing record cannot be used (the module refuses this user's logins).
    pub record_error: Option<String>,
    /// The secret is sealed to the host key.
    pub sealed: bool,
    pub created: Option<String>,
    pub algorithm: Option<String>,
    pub digits: Option<u8>,
    pub period: Option<u64>,
    pub recovery_codes_issued: usize,
    /// Whether the login state below was readable (root only).
    pub login_state: bool,
    pub recovery_codes_left: Option<usize>,
    pub failures: Option<u32>,
    pub locked: Option<bool>,
    /// Unix time the lock-out ends, if locked.
    pub locked_until: Option<u64>,
    /// The local console's own count and lock-out end (`lockout_exempt` accounts).
    pub console_failures: Option<u32>,
    pub console_locked_until: Option<u64>,
    /// Unix time of the last successful login, if any.
    pub last_login: Option<u64>,
    /// With the database: the realms whose hosts check this user's codes.
    pub realms: Option<Vec<String>>,
    /// The last refused code that was right for another time: seconds from the clock
    /// that checked it (positive: ahead); `None` if none was seen.
    pub last_clock_offset: Option<i32>,
    /// Failed attempts since the last successful login (shown at the next one).
    pub failures_since_login: Option<u32>,
    /// With the database: Unix time an admin reset the user (`totp-enroll reset`) who has
    /// not enrolled again since; they enroll at their next login on an
    /// `enroll_at_login` host. Who reset them is in the audit log (syslog), not the
    /// database.
    pub marked_for_enrollment_since: Option<u64>,
    /// With the database: the host role holding a live re-enrollment ticket ("change
    /// your OTP" after an accepted code), and the Unix time it expires.
    pub reenroll_ticket_host: Option<String>,
    pub reenroll_ticket_expires: Option<u64>,
    /// What the kernel says of this host's clock (`adjtimex`): `synchronised` or `not
    /// synchronised` (no time service keeps it).
    pub host_clock: &'static str,
}

/// The status of `user`'s record at `place`; the state is read only if `as_root`.
pub fn of(config: &Config, place: &mut Place<'_>, user: &str, as_root: bool) -> CliResult<Status> {
    let mut status = Status {
        user: user.to_owned(),
        enrolled: false,
        record: place.describe(),
        record_error: None,
        sealed: false,
        created: None,
        algorithm: None,
        digits: None,
        period: None,
        recovery_codes_issued: 0,
        login_state: false,
        recovery_codes_left: None,
        failures: None,
        locked: None,
        locked_until: None,
        console_failures: None,
        console_locked_until: None,
        last_login: None,
        realms: None,
        last_clock_offset: None,
        failures_since_login: None,
        marked_for_enrollment_since: None,
        reenroll_ticket_host: None,
        reenroll_ticket_expires: None,
        host_clock: if pam_totp_store_file::clock_watch::host_unsynchronised() {
            "not synchronised"
        } else {
            "synchronised"
        },
    };
    // The record with its secret when it can be had (plain, or sealed and opened by
    // root), and what it says besides the secret in any case.
    let (record, info) = match place.read_stored()? {
        Stored::Found(StoredRecord::Plain(record)) => {
            let info = record.info();
            (Some(record), Some(info))
        }
        Stored::Found(StoredRecord::Sealed(sealed)) => {
            status.sealed = true;
            let record = if as_root {
                match seal::open_record(config.host_keys(), user, &sealed) {
                    Ok(record) => Some(record),
                    Err(e) => {
                        status.record_error = Some(format!("cannot open the sealed secret: {e}"));
                        None
                    }
                }
            } else {
                None
            };
            (record, Some(sealed.info()))
        }
        Stored::Missing(_) => (None, None),
        Stored::Unproven(e) => {
            return Err(CliError::Refused(format!(
                "{user}: {e}: whether they are enrolled cannot be told"
            )));
        }
        Stored::Unusable(e) => {
            status.enrolled = true;
            status.record_error = Some(e.to_string());
            (None, None)
        }
    };
    if info.is_some() {
        status.realms = place.realms()?;
    }
    if let Some(info) = info {
        status.enrolled = true;
        status.created = Some(info.created).filter(|c| !c.is_empty());
        status.algorithm = Some(info.algorithm.to_string());
        status.digits = Some(info.digits);
        status.period = Some(info.period);
        status.recovery_codes_issued = info.recovery_codes;
    }
    let pending = place.pending()?;
    status.marked_for_enrollment_since = pending.marked_for_enrollment_at;
    if let Some(ticket) = pending.reenroll_ticket {
        status.reenroll_ticket_host = Some(ticket.host_role);
        status.reenroll_ticket_expires = Some(ticket.expires_at);
    }
    if as_root {
        let state = place.peek_state()?.unwrap_or_default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        status.login_state = true;
        status.recovery_codes_left = record.as_ref().map(|r| recovery::remaining(r, &state));
        status.failures = Some(state.failures);
        status.locked = Some(state.locked_until > now);
        status.locked_until = (state.locked_until > now).then_some(state.locked_until);
        status.console_failures = Some(state.console_failures);
        status.console_locked_until =
            (state.console_locked_until > now).then_some(state.console_locked_until);
        status.last_login = (state.last_success != 0).then_some(state.last_success);
        status.last_clock_offset = (state.clock_offset != 0).then_some(state.clock_offset);
        status.failures_since_login = Some(state.failures_since_success);
    }
    Ok(status)
}

fn when(unix: u64) -> String {
    pam_totp_config::clock::rfc3339(unix)
}

fn print_human(status: &Status) {
    let unknown = "(login state is root-only; ask your administrator)";
    println!("user:            {}", status.user);
    if let Some(error) = &status.record_error {
        println!("enrolled:        yes, but the record is unusable: {error}");
        println!("                 logins are refused; root can remove it (totp-enroll remove --user NAME)");
    } else if status.enrolled {
        println!(
            "enrolled:        yes, since {}",
            status.created.as_deref().unwrap_or("(unknown)")
        );
        println!(
            "parameters:      {}, {} digits, {} s",
            status.algorithm.as_deref().unwrap_or("?"),
            status.digits.unwrap_or(0),
            status.period.unwrap_or(0)
        );
    } else if let Some(since) = status.marked_for_enrollment_since {
        println!("enrolled:        no: reset by an admin at {}", when(since));
        println!("                 the old secret no longer works; they enroll again at their next login");
        println!("                 on a host with enroll_at_login = true");
    } else {
        println!("enrolled:        no (run totp-enroll to enroll)");
    }
    if let (Some(host), Some(until)) = (&status.reenroll_ticket_host, status.reenroll_ticket_expires) {
        println!(
            "re-enrollment:   a ticket for a new secret (\"change your OTP\") is held by {host} until {}",
            when(until)
        );
    }
    println!(
        "record:          {}{}",
        status.record,
        if status.sealed {
            " (secret sealed to the host key)"
        } else {
            ""
        }
    );
    if let Some(realms) = &status.realms {
        println!("realms:          {}", realms.join(", "));
    }
    if status.host_clock != "synchronised" {
        println!(
            "host clock:      NOT synchronised (adjtimex): enable a time service (chrony, systemd-timesyncd)"
        );
    }
    if !status.login_state {
        if status.enrolled {
            println!(
                "recovery codes:  {} issued; how many are left: {unknown}",
                status.recovery_codes_issued
            );
        }
        println!("failures:        {unknown}");
        return;
    }
    if let Some(left) = status.recovery_codes_left {
        println!(
            "recovery codes:  {left} left of {}{}",
            status.recovery_codes_issued,
            if left == 0 {
                " (issue new ones: totp-enroll recovery-codes)"
            } else {
                ""
            }
        );
    }
    println!("failures:        {}", status.failures.unwrap_or(0));
    match status.locked_until {
        Some(until) => println!(
            "locked out:      until {} (root: totp-enroll unlock --user NAME)",
            when(until)
        ),
        None => println!("locked out:      no"),
    }
    let console_failures = status.console_failures.unwrap_or(0);
    if console_failures > 0 || status.console_locked_until.is_some() {
        let locked = status.console_locked_until.map_or_else(
            || "not locked out".to_owned(),
            |until| format!("locked out until {}", when(until)),
        );
        println!("console:         {console_failures} failures, {locked}");
    }
    match status.last_login {
        Some(at) => println!("last login:      {}", when(at)),
        None => println!("last login:      never"),
    }
    if let Some(n) = status.failures_since_login.filter(|n| *n > 0) {
        println!("since then:      {n} failed attempts (shown at the next login)");
    }
    if let Some(offset) = status.last_clock_offset {
        let way = if offset > 0 { "ahead of" } else { "behind" };
        println!(
            "clock offset:    the last refused code was for a time {}s {way} the clock that checked it",
            offset.unsigned_abs()
        );
    }
}

fn to_json<T: Serialize>(value: &T) -> CliResult<String> {
    serde_json::to_string_pretty(value).map_err(|e| CliError::failed("cannot write JSON", e))
}

/// `totp-enroll status [--user NAME] [--json]`: exit 1 if the user is not enrolled or
/// the record is unusable.
pub fn run(config: &Config, backend: &mut Backend, target: &Target, json: bool) -> CliResult<()> {
    // A system store is root's: `place` says so rather than report an unreadable record.
    let mut place = backend.place(config, target)?;
    let status = of(config, &mut place, &target.account.name, target.caller_is_root)?;
    if target.caller_is_root && target.account.name != target.caller_name {
        audit::record(&format!(
            "user={} status viewed by {}",
            target.account.name, target.caller_name
        ));
    }
    if json {
        println!("{}", to_json(&status)?);
    } else {
        print_human(&status);
    }
    match (status.enrolled, &status.record_error) {
        (true, None) => Ok(()),
        (true, Some(_)) => Err(CliError::Refused(format!(
            "{}'s record is unusable, so logins are refused; as root: totp-enroll remove \
             --user {} (or totp-enroll --user {} --force)",
            status.user, status.user, status.user
        ))),
        (false, _) if status.marked_for_enrollment_since.is_some() => Err(CliError::Refused(format!(
            "{} was reset and is not enrolled again yet; they enroll at their next login on a host \
             with enroll_at_login = true",
            status.user
        ))),
        (false, _) => Err(CliError::Refused(format!(
            "{} is not enrolled; run totp-enroll to enroll",
            status.user
        ))),
    }
}

/// `totp-enroll list [--json]`: every enrolled user (root only).
pub fn list(config: &Config, backend: &mut Backend, target: &Target, json: bool) -> CliResult<()> {
    if !target.caller_is_root {
        return Err(CliError::NotAllowed(
            "list is for root only; see your own enrollment with `totp-enroll status`".to_owned(),
        ));
    }
    let mut all = Vec::new();
    // Files: every account this host knows with a record directory; the database:
    // every enrolled user, whether or not this host knows the account.
    for account in backend.accounts(config)? {
        let mut place = backend.place_of(config, &account)?;
        all.push(of(config, &mut place, &account.name, true)?);
    }
    // A user reset and not enrolled again is listed too: they are to enroll.
    all.retain(|status| status.enrolled || status.marked_for_enrollment_since.is_some());
    audit::record(&format!("enrolled users listed by {}", target.caller_name));
    if json {
        println!("{}", to_json(&all)?);
        return Ok(());
    }
    if all.is_empty() {
        println!("No enrolled users.");
        return Ok(());
    }
    println!(
        "{:<20} {:<20} {:<16} {:>9} {:>8} {:<7} last login",
        "user", "since", "parameters", "recovery", "failures", "locked"
    );
    for s in &all {
        let parameters = match (&s.record_error, &s.algorithm) {
            _ if !s.enrolled => "RESET".to_owned(),
            (Some(_), _) | (None, None) => "UNUSABLE".to_owned(),
            (None, Some(algorithm)) => {
                format!("{algorithm}/{}/{}s", s.digits.unwrap_or(0), s.period.unwrap_or(0))
            }
        };
        println!(
            "{:<20} {:<20} {:<16} {:>9} {:>8} {:<7} {}",
            s.user,
            // A reset user: since when they are to enroll.
            s.created
                .clone()
                .or_else(|| s.marked_for_enrollment_since.map(when))
                .unwrap_or_else(|| "-".to_owned()),
            parameters,
            s.recovery_codes_left.map_or_else(
                || "-".to_owned(),
                |left| format!("{left}/{}", s.recovery_codes_issued)
            ),
            s.failures.unwrap_or(0),
            if s.locked == Some(true) { "yes" } else { "no" },
            s.last_login.map_or_else(|| "never".to_owned(), when)
        );
    }
    Ok(())
}
