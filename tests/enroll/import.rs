//! `totp-enroll import`: files written by the real `google-authenticator` command and a
//! pam_oath users file become pam_totp records, and the same `oathtool` code is then
//! accepted by the old module and by ours, through real libpam.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pam_client::{AUTH_ERR, SUCCESS};
use testkit::{Fixture, SECRET, TEST_USER, Transcript, oathtool, settle_in_step};

fn home_of(user: &str) -> PathBuf {
    nix::unistd::User::from_name(user)
        .ok()
        .flatten()
        .expect("user exists")
        .dir
}

/// Runs the real `google-authenticator` as `user`, writing `file` (TOTP, no reuse,
/// rate limit 3 per 30 s, window 3, five scratch codes).
fn google_authenticator_as(user: &str, file: &Path, extra: &[&str]) {
    let out = Command::new("runuser")
        .args(["-u", user, "--", "google-authenticator"])
        .args(["-t", "-d", "-f", "-C", "-q", "-r", "3", "-R", "30", "-w", "3"])
        .args(extra)
        .arg("-s")
        .arg(file)
        .output()
        .expect("google-authenticator (apt-get install libpam-google-authenticator)");
    assert!(out.status.success(), "google-authenticator: {out:?}");
}

/// The secret and scratch codes of a google-authenticator file.
fn ga_contents(file: &Path) -> (String, Vec<String>) {
    let text = std::fs::read_to_string(file).unwrap();
    let mut lines = text.lines();
    let secret = lines.next().unwrap().to_owned();
    let scratch = lines
        .filter(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_owned)
        .collect();
    (secret, scratch)
}

/// A service file `name` in the fixture's directory with one auth line.
fn service(fixture: &Fixture, name: &str, line: &str) {
    std::fs::write(fixture.path(name), format!("{line}\n")).unwrap();
}

fn login_service(fixture: &Fixture, name: &str, code: &str) -> Transcript {
    let login = testkit::Login {
        confdir: fixture.dir.path(),
        service: name,
        user: TEST_USER,
        rhost: Some("192.0.2.7"),
    };
    pam_client::authenticate(&login, &[code.as_bytes()])
}

/// A pam_oath users file `users.oath` holding `text`, private to root as pam_oath wants.
fn oath_usersfile(fixture: &Fixture, text: &str) -> PathBuf {
    let usersfile = fixture.path("users.oath");
    std::fs::write(&usersfile, text).unwrap();
    std::fs::set_permissions(&usersfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    usersfile
}

/// The service `oath`: the real pam_oath with `usersfile`.
fn oath_service(fixture: &Fixture, usersfile: &Path) {
    service(
        fixture,
        "oath",
        &format!(
            "auth required pam_oath.so usersfile={} window=1 digits=6",
            usersfile.display()
        ),
    );
}

/// Root imports the test user's entry of `usersfile`.
fn import_oath_user(fixture: &Fixture, usersfile: &Path) {
    let out = fixture.enroll(&[
        "import",
        "--user",
        TEST_USER,
        "--oath-usersfile",
        usersfile.to_str().unwrap(),
    ]);
    assert_ok(&out);
}

/// The test user's line of a pam_oath users file, with SECRET (base32 of the 20 bytes
/// "12345678901234567890") in hex, and `rest` after it.
fn oath_line(rest: &str) -> String {
    format!("HOTP/T30/6\t{TEST_USER}\t-\t3132333435363738393031323334353637383930{rest}\n")
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "totp-enroll: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A google-authenticator file in the test user's home, removed at the end.
struct GaFile(PathBuf);

impl GaFile {
    fn new(fixture: &Fixture, extra: &[&str]) -> GaFile {
        let tag = fixture
            .dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let path = home_of(TEST_USER).join(format!(".google_authenticator-{tag}"));
        google_authenticator_as(TEST_USER, &path, extra);
        GaFile(path)
    }
}

impl Drop for GaFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn an_imported_google_authenticator_user_keeps_the_same_codes_in_both_modules() {
    let fixture = Fixture::new("", "");
    let ga = GaFile::new(&fixture, &[]);
    let (secret, scratch) = ga_contents(&ga.0);
    assert_eq!(scratch.len(), 5);

    let out = fixture.enroll(&[
        "import",
        "--user",
        TEST_USER,
        "--google-authenticator",
        ga.0.to_str().unwrap(),
    ]);
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("5 scratch codes kept as recovery codes"),
        "{stdout}"
    );
    for code in &scratch {
        assert!(!stdout.contains(code.as_str()), "never print a scratch code");
    }
    assert!(!stdout.contains(&secret), "never print the secret");

    // The record holds no scratch code in clear.
    let record = std::fs::read_to_string(fixture.record_path()).unwrap();
    assert!(record.contains("scratch_codes = true"), "{record}");
    for code in &scratch {
        assert!(!record.contains(code.as_str()));
    }

    service(
        &fixture,
        "google",
        &format!(
            "auth required pam_google_authenticator.so secret={}",
            ga.0.display()
        ),
    );
    settle_in_step(4);
    let code = oathtool(&secret, 0);
    let theirs = login_service(&fixture, "google", &code);
    assert_eq!(theirs.status, SUCCESS, "google-authenticator: {theirs:?}");
    let ours = fixture.login(&code);
    assert_eq!(ours.status, SUCCESS, "pam_totp: {ours:?}");

    // Scratch codes are recovery codes now: each works once.
    assert_eq!(fixture.login(&scratch[2]).status, SUCCESS);
    assert_eq!(fixture.login(&scratch[2]).status, AUTH_ERR);
    assert_eq!(fixture.login("12345678").status, AUTH_ERR);
}

#[test]
fn a_code_just_used_with_google_authenticator_is_not_accepted_again_after_import() {
    let fixture = Fixture::new("", "");
    let ga = GaFile::new(&fixture, &[]);
    let (secret, _) = ga_contents(&ga.0);
    service(
        &fixture,
        "google",
        &format!(
            "auth required pam_google_authenticator.so secret={}",
            ga.0.display()
        ),
    );
    settle_in_step(4);
    let code = oathtool(&secret, 0);
    assert_eq!(login_service(&fixture, "google", &code).status, SUCCESS);

    // google-authenticator wrote the used step under DISALLOW_REUSE; import carries it.
    let out = fixture.enroll(&[
        "import",
        "--user",
        TEST_USER,
        "--google-authenticator",
        ga.0.to_str().unwrap(),
    ]);
    assert_ok(&out);
    assert_eq!(fixture.login(&code).status, AUTH_ERR, "replayed across modules");
    assert_eq!(fixture.login(&oathtool(&secret, 1)).status, SUCCESS);
}

#[test]
fn root_imports_every_users_google_authenticator_file_in_one_command() {
    let second = "pamtotp-import2";
    testkit::ensure_test_user();
    let _ = testkit::users::ensure_user(second);
    let fixture = Fixture::new("", "");
    let files: Vec<PathBuf> = [TEST_USER, second]
        .iter()
        .map(|user| {
            let path = home_of(user).join(".google_authenticator");
            google_authenticator_as(user, &path, &[]);
            path
        })
        .collect();
    let second_record = home_of(second).join(fixture.secret_path.trim_start_matches("~/"));

    let out = fixture.enroll(&["import", "--google-authenticator", "--all-users"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut imported: Vec<String> = stdout
        .lines()
        .filter_map(|l| l.split_once(": imported from ").map(|(user, _)| user.to_owned()))
        .collect();
    imported.sort();
    // The host's accounts (with google-authenticator files of their own, in CI) are not
    // in the test binary's user database: only the two users made here are seen.
    assert_eq!(imported, [second, TEST_USER], "{stdout}");
    let secrets: Vec<String> = files.iter().map(|f| ga_contents(f).0).collect();
    for file in &files {
        let _ = std::fs::remove_file(file);
    }
    assert_ok(&out);
    assert!(imported.iter().any(|u| u == TEST_USER), "{stdout}");
    assert!(imported.iter().any(|u| u == second), "{stdout}");
    assert!(second_record.exists());
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&second_record).unwrap());
    let _ = std::fs::remove_file(&second_record);
    assert_eq!(
        owner,
        home_of(second)
            .as_path()
            .metadata()
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
            .unwrap()
    );

    settle_in_step(3);
    assert_eq!(fixture.login(&oathtool(&secrets[0], 0)).status, SUCCESS);

    // A second run skips the users already enrolled.
    let again = fixture.enroll(&["import", "--google-authenticator", "--all-users"]);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(stdout.contains("0 imported"), "{stdout}");
}

#[test]
fn unsafe_or_unsupported_google_authenticator_files_are_refused_without_their_secrets() {
    let fixture = Fixture::new("", "");
    let ga = GaFile::new(&fixture, &[]);
    let (secret, _) = ga_contents(&ga.0);
    let import = |path: &Path| {
        fixture.enroll(&[
            "import",
            "--user",
            TEST_USER,
            "--google-authenticator",
            path.to_str().unwrap(),
        ])
    };
    let refused = |out: &Output, why: &str| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{why}: {stderr}");
        assert!(stderr.contains(why), "{why}: {stderr}");
        assert!(!stderr.contains(&secret[..8]), "{stderr}");
        assert!(!fixture.record_path().exists(), "{why}: nothing written");
    };

    std::fs::set_permissions(&ga.0, std::fs::Permissions::from_mode(0o640)).unwrap();
    refused(&import(&ga.0), "lets others read it");
    std::fs::set_permissions(&ga.0, std::fs::Permissions::from_mode(0o400)).unwrap();

    let link = GaFile(ga.0.with_extension("link"));
    std::os::unix::fs::symlink(&ga.0, &link.0).unwrap();
    refused(&import(&link.0), "symbolic link");

    // A file the user cannot read is not read by root on the user's behalf.
    let roots = fixture.path("root-only");
    std::fs::copy(&ga.0, &roots).unwrap();
    refused(&import(&roots), "cannot open");

    let hotp = GaFile(ga.0.with_extension("hotp"));
    let out = Command::new("runuser")
        .args([
            "-u",
            TEST_USER,
            "--",
            "google-authenticator",
            "-c",
            "-f",
            "-C",
            "-q",
            "-u",
            "-w",
            "3",
            "-s",
        ])
        .arg(&hotp.0)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    refused(&import(&hotp.0), "counter-based (HOTP)");
}

#[test]
fn an_enrolled_user_is_not_replaced_without_force() {
    let fixture = Fixture::new("", "");
    fixture.provision(SECRET);
    let ga = GaFile::new(&fixture, &[]);
    let (secret, _) = ga_contents(&ga.0);
    let args = [
        "import",
        "--user",
        TEST_USER,
        "--google-authenticator",
        ga.0.to_str().unwrap(),
    ];
    let out = fixture.enroll(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already enrolled"));
    settle_in_step(3);
    assert_eq!(fixture.login(&oathtool(SECRET, 0)).status, SUCCESS);

    let mut forced = args.to_vec();
    forced.push("--force");
    assert_ok(&fixture.enroll(&forced));
    assert_eq!(fixture.login(&oathtool(&secret, 1)).status, SUCCESS);
}

#[test]
fn a_pam_oath_user_keeps_the_same_codes_in_both_modules() {
    let fixture = Fixture::new("", "");
    let usersfile = oath_usersfile(
        &fixture,
        &format!(
            "# pam_oath users\n{}\
             HOTP/T30/6\tno-such-user-pamtotp\t-\t3132333435363738393031323334353637383930\n\
             HOTP\tno-such-user-pamtotp2\t-\t3132333435363738393031323334353637383930 0\n",
            oath_line("")
        ),
    );

    import_oath_user(&fixture, &usersfile);

    oath_service(&fixture, &usersfile);
    settle_in_step(4);
    let code = oathtool(SECRET, 0);
    let theirs = login_service(&fixture, "oath", &code);
    assert_eq!(theirs.status, SUCCESS, "pam_oath: {theirs:?}");
    assert_eq!(fixture.login(&code).status, SUCCESS);

    // Without --user, root imports every entry: the unknown user is reported, by line.
    let out = fixture.enroll(&["import", "--oath-usersfile", usersfile.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(stderr.contains("counter-based (HOTP)"), "{stderr}");
    assert!(!stderr.contains("3132333435"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("already enrolled"));
}

#[test]
fn a_code_just_used_with_pam_oath_is_not_accepted_again_after_import() {
    let fixture = Fixture::new("", "");
    let usersfile = oath_usersfile(&fixture, &oath_line(""));
    oath_service(&fixture, &usersfile);
    settle_in_step(4);
    let code = oathtool(SECRET, 0);
    let theirs = login_service(&fixture, "oath", &code);
    assert_eq!(theirs.status, SUCCESS, "pam_oath: {theirs:?}");
    // pam_oath wrote the code it accepted, and when, into its users file.
    let written = std::fs::read_to_string(&usersfile).unwrap();
    assert!(written.contains(&code), "{written}");

    import_oath_user(&fixture, &usersfile);
    assert_eq!(fixture.login(&code).status, AUTH_ERR, "replayed across modules");
    assert_eq!(fixture.login(&oathtool(SECRET, 1)).status, SUCCESS);
}

#[test]
fn pam_oaths_local_time_is_read_in_the_hosts_time_zone() {
    // pam_oath writes its last login in local time; a host 5:30 east of UTC (a POSIX
    // TZ string, so no tzdata is needed) is 11 steps away from reading it as UTC.
    const ZONE: &str = "XYZ-5:30";
    let fixture = Fixture::new("", "");
    settle_in_step(4);
    let code = oathtool(SECRET, 0);
    let local = Command::new("date")
        .env("TZ", ZONE)
        .arg(format!("-d@{}", testkit::now()))
        .arg("+%Y-%m-%dT%H:%M:%SL")
        .output()
        .unwrap();
    let local = String::from_utf8(local.stdout).unwrap();
    let usersfile = oath_usersfile(&fixture, &oath_line(&format!("\t0\t{code}\t{}", local.trim())));
    let out = Command::new(testkit::enroll_bin())
        .env("TZ", ZONE)
        .arg("--config")
        .arg(fixture.config_path())
        .args(["import", "--user", TEST_USER, "--oath-usersfile"])
        .arg(&usersfile)
        .output()
        .unwrap();
    assert_ok(&out);
    assert_eq!(fixture.login(&code).status, AUTH_ERR, "replayed across modules");
    assert_eq!(fixture.login(&oathtool(SECRET, 1)).status, SUCCESS);
}

#[test]
fn other_google_authenticator_settings_are_imported_or_reported() {
    let fixture = Fixture::new("", "");
    // 60-second steps, reuse allowed, no rate limit, ten scratch codes, window 17.
    let path = home_of(TEST_USER).join(format!(
        ".google_authenticator-{}",
        fixture.dir.path().file_name().unwrap().to_string_lossy()
    ));
    let out = Command::new("runuser")
        .args(["-u", TEST_USER, "--", "google-authenticator"])
        .args([
            "-t", "-D", "-f", "-C", "-q", "-u", "-S", "60", "-e", "10", "-w", "17", "-s",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let ga = GaFile(path);
    let (secret, scratch) = ga_contents(&ga.0);
    assert_eq!(scratch.len(), 10);

    let out = fixture.enroll(&[
        "import",
        "--user",
        TEST_USER,
        "--google-authenticator",
        ga.0.to_str().unwrap(),
    ]);
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("10 scratch codes"), "{stdout}");
    assert!(stdout.contains("time step of 60 s"), "{stdout}");
    assert!(stdout.contains("allowed code reuse"), "{stdout}");
    assert!(stdout.contains("WINDOW_SIZE 17"), "{stdout}");

    service(
        &fixture,
        "google",
        &format!(
            "auth required pam_google_authenticator.so secret={}",
            ga.0.display()
        ),
    );
    if testkit::now() % 60 > 54 {
        std::thread::sleep(std::time::Duration::from_secs(61 - testkit::now() % 60));
    }
    let code = Command::new("oathtool")
        .args(["--totp", "--base32", "--time-step-size=60s", &secret])
        .output()
        .unwrap();
    let code = String::from_utf8(code.stdout).unwrap().trim().to_owned();
    assert_eq!(login_service(&fixture, "google", &code).status, SUCCESS);
    assert_eq!(fixture.login(&code).status, SUCCESS, "60-second step");
    assert_eq!(fixture.login(&code).status, AUTH_ERR, "never reused in pam_totp");
    assert_eq!(
        fixture.login(&scratch[9]).status,
        SUCCESS,
        "the tenth scratch code"
    );
}

#[test]
fn on_a_sealing_host_the_imported_secret_is_sealed_and_still_works() {
    let fixture = Fixture::new("", "");
    fixture.write_config(&format!(
        "seal = true\nhost_key = \"{}\"\nhost_public_key = \"{}\"\n",
        fixture.path("host.key").display(),
        fixture.path("host.pub").display()
    ));
    assert_ok(&fixture.enroll(&["keygen"]));
    let ga = GaFile::new(&fixture, &[]);
    let (secret, scratch) = ga_contents(&ga.0);
    assert_ok(&fixture.enroll(&[
        "import",
        "--user",
        TEST_USER,
        "--google-authenticator",
        ga.0.to_str().unwrap(),
    ]));
    let record = std::fs::read_to_string(fixture.record_path()).unwrap();
    assert!(record.contains("sealed_secret"), "{record}");
    assert!(!record.contains(&secret[..16]), "the secret is sealed: {record}");
    settle_in_step(3);
    assert_eq!(fixture.login(&oathtool(&secret, 0)).status, SUCCESS);
    assert_eq!(fixture.login(&scratch[0]).status, SUCCESS);
}
