//! `totp-enroll import`: users already enrolled with google-authenticator-libpam or
//! pam_oath keep their phone's entry; nobody scans a new code.
//!
//! - `--google-authenticator [FILE]`: a `~/.google_authenticator` file as the
//!   `google-authenticator` command writes it: the base32 secret, `" ` option lines
//!   (`TOTP_AUTH`, `WINDOW_SIZE`, `STEP_SIZE`, `DISALLOW_REUSE`, `RATE_LIMIT`,
//!   `TIME_SKEW`) and 8-digit scratch codes, which become the record's recovery codes
//!   (argon2id hashes; see `pam_totp_core::scratch`). Steps listed under `DISALLOW_REUSE`
//!   are carried into the login state, so a code just used with google-authenticator is
//!   not accepted again. With `--all-users` (root), every user's file in turn.
//! - `--oath-usersfile FILE`: pam_oath's users file (`HOTP/T30/6 user - hexsecret ...`);
//!   root imports every user in it (or the one `--user` names). The code pam_oath last
//!   accepted (and when) is carried into the login state as its step, like
//!   google-authenticator's used steps.
//! - `--pam-totp-files` (store = "postgres"): this host's own record files, found where
//!   `secret_path` says, read with the module's safe reader, into the database with
//!   their login state's last step and burnt recovery codes. The files stay.
//!
//! Every import writes where the config's `store` says (files or the database).
//!
//! Files are parsed strictly: an unknown option, a counter-based (HOTP) enrollment or a
//! malformed line refuses that user's import, and errors name the line, never its
//! content. Users' files are opened with the user's file-system rights, never following
//! a symbolic link, and must be private to their owner (as google-authenticator itself
//! requires).

use std::path::{Path, PathBuf};
use std::process::Command;

use crypto_box::aead::OsRng;
use pam_totp_config::Config;
use pam_totp_config::algorithm::Algorithm;
use pam_totp_core::record::{Record, StoredRecord};
use pam_totp_core::recovery::{self, RecoveryError};
use pam_totp_core::scratch::{MAX_SCRATCH_CODES, ScratchCode};
use pam_totp_core::secret::SecretKey;
use pam_totp_core::verify::{self, TypedCode, Verdict};
use pam_totp_os::account::Account;
use pam_totp_os::privs::UserRights;
use pam_totp_os::trusted_file::{self, Owner, Refused, Rules};
use pam_totp_store_file::record_store::{RecordLocation, StoreError};
use pam_totp_store_file::seal::{self, PublicHostKey};
use pam_totp_store_file::state::LoginState;
use zeroize::Zeroizing;

use crate::caller::Target;
use crate::error::{CliError, CliResult};
use crate::store::{self, Backend};
use crate::{audit, database};

/// google-authenticator's file name in each home.
pub const GA_FILE: &str = ".google_authenticator";
/// Files larger than this are not enrollment files.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Where to import from, as the command line said.
#[derive(Debug)]
pub enum Source {
    /// google-authenticator: a file, or the user's `~/.google_authenticator`.
    GoogleAuthenticator(Option<PathBuf>),
    /// Every user's `~/.google_authenticator` (root).
    GoogleAuthenticatorAllUsers,
    /// pam_oath's users file.
    OathUsersfile(PathBuf),
    /// This host's pam_totp record files (`secret_path`), into the database.
    PamTotpFiles,
}

/// One enrollment read from another module's file.
struct Imported {
    record: Record,
    /// What the login state must not forget: the newest step used (0: none known)
    /// and, from a pam_totp state file, the burnt recovery codes.
    state: LoginState,
    /// What the admin should know (settings pam_totp has no per-user equivalent of).
    notes: Vec<String>,
    /// The plaintext of the record's scratch codes, for the database (which hashes
    /// them itself); empty when the record's codes are only known as argon2 hashes.
    codes: Vec<Zeroizing<String>>,
}

/// What became of one user's import.
enum Done {
    Imported,
    Skipped(String),
}

/// Imports from `source`. `user_named`: `--user` was given, so root imports only that
/// user's entry from a users file.
pub fn run(
    config: &Config,
    backend: &mut Backend,
    target: &Target,
    source: &Source,
    force: bool,
    user_named: bool,
) -> CliResult<()> {
    let every_entry = target.caller_is_root && !user_named;
    match source {
        Source::GoogleAuthenticator(file) => {
            let path = file.clone().unwrap_or_else(|| target.account.home.join(GA_FILE));
            let imported = read_google_authenticator(&target.account, &path)?;
            match save(
                config,
                backend,
                target,
                &imported,
                force,
                &path,
                "google-authenticator",
            )? {
                Done::Imported => Ok(()),
                Done::Skipped(why) => Err(CliError::refused(why)),
            }
        }
        Source::GoogleAuthenticatorAllUsers => {
            if !target.caller_is_root {
                return Err(CliError::not_allowed("--all-users is for root only"));
            }
            let mut results = Vec::new();
            for account in all_accounts()? {
                let path = account.home.join(GA_FILE);
                if !has_file(&account, &path) {
                    continue;
                }
                let user = for_user(target, account);
                let result = read_google_authenticator(&user.account, &path).and_then(|imported| {
                    save(
                        config,
                        backend,
                        &user,
                        &imported,
                        force,
                        &path,
                        "google-authenticator",
                    )
                });
                results.push((user.account.name, result));
            }
            summarise(&results, "google-authenticator files")
        }
        Source::OathUsersfile(path) => {
            let text = read_private(path_reader(target).as_ref(), path)?;
            let mut results = Vec::new();
            for (line_no, line) in text.lines().enumerate() {
                let line_no = line_no + 1;
                // Others' lines (HOTP tokens among them) are no concern of a one-user import.
                let user_field = line.split_ascii_whitespace().nth(1);
                if !every_entry && user_field != Some(target.account.name.as_str()) {
                    continue;
                }
                let (name, imported) = match parse_oath_line(line, line_no) {
                    Ok(None) => continue,
                    Ok(Some(entry)) => entry,
                    Err(e) => {
                        results.push((path.display().to_string(), Err(e)));
                        continue;
                    }
                };
                let result = Account::lookup(&name)
                    .map_err(|e| CliError::failed(format!("line {line_no}"), e))
                    .and_then(|account| {
                        save(
                            config,
                            backend,
                            &for_user(target, account),
                            &imported,
                            force,
                            path,
                            "pam_oath",
                        )
                    });
                results.push((name, result));
            }
            if results.is_empty() {
                return Err(CliError::Refused(format!(
                    "{}: no time-based entry for {}",
                    path.display(),
                    if every_entry {
                        "any user"
                    } else {
                        target.account.name.as_str()
                    }
                )));
            }
            summarise(&results, "users-file entries")
        }
        Source::PamTotpFiles => from_pam_totp_files(config, backend, target, force, user_named),
    }
}

/// `--pam-totp-files`: this host's record files into the database.
fn from_pam_totp_files(
    config: &Config,
    backend: &mut Backend,
    target: &Target,
    force: bool,
    user_named: bool,
) -> CliResult<()> {
    if !database::in_use(config) {
        return Err(CliError::Usage(
            "--pam-totp-files moves this host's record files into the database: set \
             store = \"postgres\" first (secret_path still says where the files are)"
                .to_owned(),
        ));
    }
    let accounts = if user_named {
        vec![target.account.clone()]
    } else {
        all_accounts()?
    };
    let mut results = Vec::new();
    for account in accounts {
        let user = for_user(target, account);
        let location = match store::location(config, &user) {
            Ok(location) => location,
            Err(e) if user_named => return Err(e),
            // An account whose `secret_path` does not expand has no record file.
            Err(_) => continue,
        };
        // Without --user, only users who have a file are concerned.
        if !user_named && !matches!(location.exists(), Ok(true)) {
            continue;
        }
        let result = read_pam_totp_file(config, &location).and_then(|imported| {
            save(
                config,
                backend,
                &user,
                &imported,
                force,
                &location.path,
                "pam_totp",
            )
        });
        results.push((user.account.name, result));
    }
    summarise(&results, "pam_totp record files")
}

/// A record file read as the module reads it (owner, mode, no link, intact), with what
/// this host's state file remembers: the used steps and the burnt recovery codes. A
/// sealed record is opened with the host key and sealed again on the way in, so it
/// needs `seal = true` (a sealed secret never goes into the database in plain text).
fn read_pam_totp_file(config: &Config, location: &RecordLocation) -> CliResult<Imported> {
    let user = &location.account.name;
    let refused = |what: String| CliError::Refused(format!("{}: {what}", location.path.display()));
    let record = match location.read_stored() {
        Ok(StoredRecord::Plain(record)) => record,
        Ok(StoredRecord::Sealed(_)) if !config.seal => {
            return Err(refused(
                "the secret is sealed to the host key; set seal = true so that it is sealed in \
                 the database too"
                    .to_owned(),
            ));
        }
        Ok(StoredRecord::Sealed(sealed)) => seal::open_record(config.host_keys(), user, &sealed)
            .map_err(|e| refused(format!("cannot open: {e}")))?,
        Err(StoreError::NotFound(_)) => return Err(refused("no record file".to_owned())),
        Err(e) => return Err(refused(format!("{e}; not imported"))),
    };
    let state = store::peek_state(&config.state_dir, user)?.unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(Imported {
        state: LoginState {
            // A previous version's step number, in this record's period.
            used_until: state.replay_floor(record.period, now, config.window),
            recovery_epoch: state.recovery_epoch,
            recovery_used: state.recovery_used,
            ..LoginState::default()
        },
        record,
        notes: Vec::new(),
        codes: Vec::new(),
    })
}

fn for_user(caller: &Target, account: Account) -> Target {
    Target {
        account,
        caller_name: caller.caller_name.clone(),
        caller_is_root: caller.caller_is_root,
    }
}

/// The rights a users file is read with: its reader's (root reads `/etc/users.oath`).
fn path_reader(target: &Target) -> Option<Account> {
    if target.caller_is_root {
        None
    } else {
        Some(target.account.clone())
    }
}

fn summarise(results: &[(String, CliResult<Done>)], what: &str) -> CliResult<()> {
    let mut failed = 0;
    let (mut imported, mut skipped) = (0, 0);
    for (name, result) in results {
        match result {
            Ok(Done::Imported) => imported += 1,
            Ok(Done::Skipped(why)) => {
                skipped += 1;
                println!("{name}: skipped: {why}");
            }
            Err(e) => {
                failed += 1;
                eprintln!("totp-enroll: {name}: not imported: {e}");
            }
        }
    }
    println!(
        "{imported} imported, {skipped} skipped, {failed} failed ({} {what}).",
        results.len()
    );
    if failed > 0 {
        Err(CliError::Refused(format!("{failed} import(s) failed")))
    } else {
        Ok(())
    }
}

/// Writes the imported record (unless one exists and not `force`), carries the used
/// step into the login state, and reports.
fn save(
    config: &Config,
    backend: &mut Backend,
    target: &Target,
    imported: &Imported,
    force: bool,
    from: &Path,
    kind: &str,
) -> CliResult<Done> {
    let mut place = backend.place(config, target)?;
    let skipped = |place: &store::Place<'_>| {
        Done::Skipped(format!(
            "{} is already enrolled ({}); --force replaces the enrollment",
            target.account.name,
            place.describe()
        ))
    };
    if !force && place.exists()? {
        return Ok(skipped(&place));
    }
    // With `seal = true` the imported secret is sealed like a new enrollment's.
    let sealed = if config.seal {
        let public = PublicHostKey::read(&config.host_public_key).map_err(CliError::SealSetting)?;
        Some(
            public
                .seal(&mut OsRng, &target.account.name, &imported.record.secret)
                .map_err(|e| CliError::NothingChanged(e.into()))?,
        )
    } else {
        None
    };
    place.offer_plain_codes(&imported.codes);
    if force {
        place.write(&imported.record, sealed.as_deref())?;
    } else if !place.write_new(&imported.record, sealed.as_deref())? {
        return Ok(skipped(&place));
    }
    if target.caller_is_root && imported.state != LoginState::default() {
        place.carry_state(&imported.state)?;
    }
    let codes = imported.record.recovery.len();
    audit::record(&format!(
        "user={} imported from {kind} ({}) by {} record={} recovery_codes={codes}",
        target.account.name,
        from.display(),
        target.caller_name,
        place.describe()
    ));
    let kept = if codes > 0 {
        format!(" ({codes} scratch codes kept as recovery codes)")
    } else {
        String::new()
    };
    println!(
        "{}: imported from {}{kept}; the same app entry keeps working.",
        target.account.name,
        from.display()
    );
    for note in &imported.notes {
        println!("{}: note: {note}", target.account.name);
    }
    if codes > 0 && imported.codes.is_empty() && crate::database::in_use(config) {
        println!(
            "{}: note: the recovery codes were hashed with argon2, which the database cannot \
             check: they do not work there; issue a new set with totp-enroll recovery-codes --user {}",
            target.account.name, target.account.name
        );
    }
    Ok(Done::Imported)
}

/// Every account of the password database (`getent passwd`, so LDAP or SSSD users are
/// included where the directory allows enumeration).
fn all_accounts() -> CliResult<Vec<Account>> {
    let out = Command::new("getent")
        .arg("passwd")
        .output()
        .map_err(|e| CliError::failed("cannot run getent passwd", e))?;
    if !out.status.success() {
        return Err(CliError::Refused("getent passwd failed".to_owned()));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut seen = std::collections::BTreeSet::new();
    Ok(text
        .lines()
        .filter_map(|line| line.split(':').next())
        .filter(|name| seen.insert((*name).to_owned()))
        .filter_map(|name| Account::lookup(name).ok())
        .collect())
}

/// Whether `account` has a file at `path`, looked for with the user's rights.
fn has_file(account: &Account, path: &Path) -> bool {
    let Ok(_rights) = UserRights::assume(account) else {
        return false;
    };
    path.symlink_metadata().is_ok()
}

/// Reads a user's google-authenticator file with the user's rights.
fn read_google_authenticator(account: &Account, path: &Path) -> CliResult<Imported> {
    let text = read_private(Some(account), path)?;
    let file = parse_google_authenticator(&text)
        .map_err(|e| CliError::Refused(format!("{}: {e}", path.display())))?;
    let refused = |e: RecoveryError| CliError::failed("cannot keep the scratch codes", e);
    let mut hashes = Vec::with_capacity(file.scratch.len());
    for code in &file.scratch {
        hashes.push(
            code.hash(&recovery::new_salt().map_err(refused)?)
                .map_err(refused)?,
        );
    }
    let created = pam_totp_config::clock::now_rfc3339();
    let record = Record::new(file.secret, Algorithm::Sha1, 6, file.step, created);
    let record = if hashes.is_empty() {
        record
    } else {
        record.with_scratch_codes(recovery::new_epoch().map_err(refused)?, hashes)
    };
    Ok(Imported {
        record,
        state: LoginState {
            // DISALLOW_REUSE lists steps of the file's own period.
            used_until: file
                .used_steps
                .iter()
                .max()
                .map_or(0, |step| pam_totp_core::verify::step_end(*step, file.step)),
            ..LoginState::default()
        },
        notes: file.notes,
        codes: file
            .scratch
            .iter()
            .map(|code| Zeroizing::new(code.as_str().to_owned()))
            .collect(),
    })
}

/// Opens `path` without following a symbolic link (with `rights`' file-system identity
/// when given), checks it is a regular file private to its owner, owned by `rights`'
/// user when given, and reads it.
fn read_private(rights: Option<&Account>, path: &Path) -> CliResult<Zeroizing<String>> {
    let refused = |what: String| CliError::Refused(format!("{}: {what}", path.display()));
    let _rights = match rights {
        Some(account) => Some(
            UserRights::assume(account)
                .map_err(|e| refused(format!("cannot take the user's file rights: {e}")))?,
        ),
        None => None,
    };
    // Private to its owner (the user's own, when read with the user's rights), no
    // link followed, no FIFO waited on; the size is checked as it is read.
    let rules = Rules {
        owner: rights.map_or(Owner::Any, |account| Owner::Uid(account.uid.as_raw())),
        forbidden_mode: 0o077,
        single_link: false,
        max_bytes: None,
        follow_symlink: false,
    };
    let reason = |e: Refused| match e {
        Refused::Symlink => refused("is a symbolic link; refused".to_owned()),
        Refused::NotRegular | Refused::NotDirectory => refused("is not a regular file".to_owned()),
        Refused::Owner { found } => refused(format!(
            "is owned by uid {found}, not by {}; refused",
            rights.map_or("root", |account| account.name.as_str())
        )),
        Refused::Mode { mode } => refused(format!(
            "mode {:04o} lets others read it; refused (chmod 600 first)",
            mode & 0o7777
        )),
        Refused::TooLarge { .. } => refused(format!("larger than {MAX_FILE_BYTES} bytes")),
        Refused::Io {
            action: "read the file",
            source,
        } => refused(format!("cannot read: {source}")),
        Refused::Io {
            action: "stat the file",
            source,
        } => refused(format!("cannot stat: {source}")),
        Refused::Io { source, .. } => refused(format!("cannot open: {source}")),
        Refused::Missing | Refused::Links { .. } => refused(format!("cannot open: {e}")),
    };
    let (file, len) = trusted_file::open(path, &rules, None).map_err(reason)?;
    let bytes = trusted_file::read_all(file, len, MAX_FILE_BYTES).map_err(reason)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| refused("is not text".to_owned()))?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// A google-authenticator file, parsed.
struct GaFile {
    secret: SecretKey,
    step: u64,
    used_steps: Vec<u64>,
    scratch: Vec<ScratchCode>,
    notes: Vec<String>,
}

/// Parses a google-authenticator file. Errors name the line and the problem, never
/// the content (the first line is the secret; scratch codes are secrets too).
fn parse_google_authenticator(text: &str) -> Result<GaFile, String> {
    let mut lines = text.lines();
    let secret = lines.next().unwrap_or_default();
    let secret = SecretKey::from_base32(secret).map_err(|e| format!("line 1: {e}"))?;
    let (mut totp, mut step, mut window) = (false, 30u64, 3u64);
    let mut used_steps = Vec::new();
    let mut scratch = Vec::new();
    let mut notes = Vec::new();
    for (index, line) in lines.enumerate() {
        let line_no = index + 2;
        if line.trim().is_empty() {
            continue;
        }
        let Some(option) = line.strip_prefix("\" ") else {
            let code = ScratchCode::parse(line.as_bytes())
                .filter(|_| line.len() == 8)
                .ok_or_else(|| format!("line {line_no}: neither an option nor an 8-digit scratch code"))?;
            scratch.push(code);
            continue;
        };
        let mut words = option.split_ascii_whitespace();
        let name = words.next().unwrap_or_default();
        let values: Result<Vec<u64>, _> = words.map(str::parse::<u64>).collect();
        let values =
            values.map_err(|_| format!("line {line_no}: option {name} has a value that is not a number"))?;
        let one = |values: &[u64]| -> Result<u64, String> {
            match values {
                [value] => Ok(*value),
                _ => Err(format!("line {line_no}: option {name} takes one number")),
            }
        };
        match name {
            "TOTP_AUTH" if values.is_empty() => totp = true,
            "HOTP_COUNTER" => {
                return Err(
                    "a counter-based (HOTP) enrollment cannot be imported: pam_totp is time based; \
                     the user must enroll afresh with totp-enroll"
                        .to_owned(),
                );
            }
            "STEP_SIZE" => {
                step = one(&values)?;
                if !(1..=300).contains(&step) {
                    return Err(format!("line {line_no}: STEP_SIZE must be 1 to 300 seconds"));
                }
                if step != 30 {
                    notes.push(format!(
                        "time step of {step} s: Microsoft Authenticator and most apps use 30 s only"
                    ));
                }
            }
            "WINDOW_SIZE" => {
                window = one(&values)?;
                if !(1..=21).contains(&window) {
                    return Err(format!("line {line_no}: WINDOW_SIZE must be 1 to 21"));
                }
            }
            "DISALLOW_REUSE" => used_steps = values,
            "RATE_LIMIT" if values.len() >= 2 => notes.push(
                "RATE_LIMIT is not carried over: pam_totp's lock-out (max_failures, lockout_seconds) applies"
                    .to_owned(),
            ),
            "TIME_SKEW" if values.len() <= 1 => notes.push(
                "TIME_SKEW is not carried over: the phone's clock must be right within the config's window"
                    .to_owned(),
            ),
            "RESETTING_TIME_SKEW" => {}
            _ if name.len() <= 32 && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') => {
                return Err(format!("line {line_no}: unknown or malformed option {name}"));
            }
            _ => return Err(format!("line {line_no}: unknown option")),
        }
    }
    if !totp {
        return Err("not a time-based enrollment (no TOTP_AUTH line)".to_owned());
    }
    if scratch.len() > MAX_SCRATCH_CODES {
        return Err(format!("more than {MAX_SCRATCH_CODES} scratch codes"));
    }
    if window > 3 {
        notes.push(format!(
            "WINDOW_SIZE {window} was wider than pam_totp's `window` (steps either side); \
             the config's window applies to everyone"
        ));
    }
    if used_steps.is_empty() && !text.contains("\" DISALLOW_REUSE") {
        notes.push("google-authenticator allowed code reuse; pam_totp never does".to_owned());
    }
    Ok(GaFile {
        secret,
        step,
        used_steps,
        scratch,
        notes,
    })
}

/// One line of a pam_oath users file: `None` for blank and comment lines; for a
/// time-based entry, the user name and the record.
fn parse_oath_line(line: &str, line_no: usize) -> Result<Option<(String, Imported)>, CliError> {
    let bad = |what: &str| CliError::Refused(format!("line {line_no}: {what}"));
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    let fields: Vec<&str> = trimmed.split_ascii_whitespace().collect();
    let [kind, user, pin, secret, ..] = fields.as_slice() else {
        return Err(bad("fewer than four fields (type, user, PIN, secret)"));
    };
    let (step, digits) = match kind.strip_prefix("HOTP/T") {
        Some(rest) => {
            let (step, digits) = rest.split_once('/').unwrap_or((rest, "6"));
            match (step, digits) {
                ("30" | "60", "6" | "7" | "8") => (
                    step.parse::<u64>().map_err(|_| bad("bad time step"))?,
                    digits.parse::<u8>().map_err(|_| bad("bad digits"))?,
                ),
                _ => return Err(bad("token type must be HOTP/T30 or HOTP/T60, with /6, /7 or /8")),
            }
        }
        None if kind.starts_with("HOTP") => {
            return Err(bad(&format!(
                "{user} has a counter-based (HOTP) token: pam_totp is time based; enroll afresh"
            )));
        }
        None => return Err(bad("unknown token type")),
    };
    let secret = Zeroizing::new(hex_bytes(secret).ok_or_else(|| bad("the secret is not hexadecimal"))?);
    let secret = SecretKey::from_bytes(secret.to_vec()).map_err(|e| bad(&e.to_string()))?;
    let mut notes = Vec::new();
    if *pin != "-" {
        notes.push("the pam_oath PIN is not carried over: pam_totp asks for the code alone".to_owned());
    }
    if step != 30 || digits != 6 {
        notes.push(format!(
            "{step} s, {digits} digits: Microsoft Authenticator and most apps use 30 s and 6 digits only"
        ));
    }
    let created = pam_totp_config::clock::now_rfc3339();
    let record = Record::new(secret, Algorithm::Sha1, digits, step, created);
    // After a login pam_oath writes `COUNTER OTP TIME`: the code it accepted and when.
    let used_until = match fields.get(5..7) {
        Some([otp, time]) => oath_used_step(&record, otp, time)
            .map(|used| pam_totp_core::verify::step_end(used, step))
            .ok_or_else(|| {
                bad(&format!(
                    "the last code pam_oath recorded for {user} matches no step within \
                 {OATH_SEARCH_STEPS} steps of its time: cannot keep it from being used again"
                ))
            })?,
        _ => 0,
    };
    Ok(Some((
        (*user).to_owned(),
        Imported {
            record,
            state: LoginState {
                used_until,
                ..LoginState::default()
            },
            notes,
            codes: Vec::new(),
        },
    )))
}

/// Steps either side of pam_oath's recorded time searched for its recorded code: its
/// `window=` is the number of steps it accepts either side (the README's example is 30).
const OATH_SEARCH_STEPS: u8 = 30;

/// The step whose code pam_oath last accepted: `otp` at `time`, local time written
/// `2026-11-30T17:15:00L`. Of several matches the newest, so that none is replayed.
fn oath_used_step(record: &Record, otp: &str, time: &str) -> Option<u64> {
    let local = humantime::parse_rfc3339(&format!("{}Z", time.strip_suffix('L').unwrap_or(time))).ok()?;
    let local = local.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    let offset = time::OffsetDateTime::from_unix_timestamp(i64::try_from(local).ok()?)
        .ok()
        .and_then(|at| time::UtcOffset::local_offset_at(at).ok())
        .map_or(0, time::UtcOffset::whole_seconds);
    let utc = local.checked_add_signed(-i64::from(offset))?;
    let code = TypedCode::parse(otp.as_bytes(), record.digits)?;
    match verify::check(record, &code, utc, OATH_SEARCH_STEPS, 0) {
        Verdict::Accepted { step } => Some(step),
        Verdict::Replayed | Verdict::Invalid => None,
    }
}

fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GA: &str = "Z6IFIZW5RRZ7SFXFJUGFJ4UP3I\n\" RATE_LIMIT 3 30\n\" WINDOW_SIZE 3\n\
                      \" DISALLOW_REUSE\n\" TOTP_AUTH\n98791899\n36711946\n";

    #[test]
    fn reads_what_google_authenticator_writes() {
        let file = parse_google_authenticator(GA).unwrap();
        assert_eq!((file.step, file.scratch.len()), (30, 2));
        assert!(file.used_steps.is_empty());
        let used = GA.replace("DISALLOW_REUSE", "DISALLOW_REUSE 58999999 59000000");
        let file = parse_google_authenticator(&used).unwrap();
        assert_eq!(file.used_steps, [58_999_999, 59_000_000]);
        let step = format!("{GA}\" STEP_SIZE 60\n");
        assert_eq!(parse_google_authenticator(&step).unwrap().step, 60);
    }

    #[test]
    fn refuses_what_it_cannot_honour_without_quoting_secrets() {
        let cases = [
            (GA.replace("\" TOTP_AUTH\n", ""), "TOTP_AUTH"),
            (GA.replace("\" TOTP_AUTH", "\" HOTP_COUNTER 1"), "HOTP"),
            (GA.replace("98791899", "9879189"), "line 6"),
            (GA.replace("98791899", "98791899x"), "line 6"),
            (GA.replace("WINDOW_SIZE 3", "WINDOW_SIZE"), "WINDOW_SIZE"),
            (GA.replace("TOTP_AUTH", "FANCY_OPTION"), "FANCY_OPTION"),
            (
                GA.replace("Z6IFIZW5RRZ7SFXFJUGFJ4UP3I", "Z6IFIZW5RRZ7SFXFJUGFJ4UP3!"),
                "line 1",
            ),
            (format!("{GA}{}", "12345678\n".repeat(10)), "scratch"),
        ];
        for (text, expected) in cases {
            let err = parse_google_authenticator(&text).err().unwrap_or_default();
            assert!(err.contains(expected), "{expected}: {err}");
            for secret in ["Z6IFIZW5", "98791899", "9879189", "36711946"] {
                assert!(!err.contains(secret), "{err}");
            }
        }
    }

    #[test]
    fn reads_pam_oath_time_based_lines() {
        let line = "HOTP/T30/6\talice\t-\t3132333435363738393031323334353637383930";
        let (user, imported) = parse_oath_line(line, 1).unwrap().unwrap();
        assert_eq!(user, "alice");
        assert_eq!((imported.record.period, imported.record.digits), (30, 6));
        assert_eq!(imported.record.secret.as_bytes(), b"12345678901234567890");
        assert!(imported.notes.is_empty());
        let (_, t60) = parse_oath_line(&line.replace("T30/6", "T60/8"), 1)
            .unwrap()
            .unwrap();
        assert_eq!((t60.record.period, t60.record.digits), (60, 8));
        let (_, plain) = parse_oath_line(&line.replace("T30/6", "T30"), 1)
            .unwrap()
            .unwrap();
        assert_eq!(plain.record.digits, 6);
        assert!(parse_oath_line("# comment", 1).unwrap().is_none());
        assert!(parse_oath_line("   ", 1).unwrap().is_none());
    }

    #[test]
    fn carries_the_step_of_the_code_pam_oath_last_accepted() {
        // RFC 6238 appendix B: SHA1 at 59 s (step 1) is 94287082, so 287082 in 6 digits.
        let line =
            "HOTP/T30/6\talice\t-\t3132333435363738393031323334353637383930\t0\t287082\t1970-01-01T00:00:59L";
        let (_, imported) = parse_oath_line(line, 1).unwrap().unwrap();
        assert_eq!(imported.state.used_until, 60, "step 1 ends at 60 s");
        let never_logged_in = "HOTP/T30/6\talice\t-\t3132333435363738393031323334353637383930";
        let (_, imported) = parse_oath_line(never_logged_in, 1).unwrap().unwrap();
        assert_eq!(imported.state.used_until, 0);
        // A record of the last use that cannot be matched refuses the import: the code
        // could otherwise be used again.
        for (otp, time) in [
            ("287082", "2000-01-01T00:00:00L"),
            ("287082", "yesterday"),
            ("28708", "1970-01-01T00:00:59L"),
        ] {
            let line = format!("{never_logged_in}\t0\t{otp}\t{time}");
            let err = parse_oath_line(&line, 3)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                err.starts_with("line 3: the last code pam_oath recorded"),
                "{err}"
            );
            assert!(!err.contains(otp) && !err.contains("3132"), "{err}");
        }
    }

    #[test]
    fn refuses_bad_pam_oath_lines_without_quoting_secrets() {
        let secret = "3132333435363738393031323334353637383930";
        for line in [
            format!("HOTP alice - {secret}"),
            format!("HOTP/E/8 alice - {secret}"),
            format!("HOTP/T45/6 alice - {secret}"),
            "HOTP/T30/6 alice - 31323g".to_owned(),
            "HOTP/T30/6 alice - 3132".to_owned(),
            "HOTP/T30/6 alice".to_owned(),
        ] {
            let err = parse_oath_line(&line, 7)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.starts_with("line 7: "), "{line}: {err}");
            assert!(!err.contains("3132"), "{err}");
        }
    }
}
