//! Self-enrollment on the database store through a real `sshd` and ssh client, the
//! module `pam_totp_db.so` in the shipped `sshd-enroll-at-login` stack, against a real
//! cluster: the QR code the client received is decoded by `zbarimg`, the code typed
//! is oathtool's, the database writes the enrollment (`host_enroll`); `totp-enroll
//! reset` sends the user back to enrollment; "change your OTP" replaces the secret only
//! after the current code.

use std::process::Command;

use testkit::postgres::{ADMIN, Cluster, DATABASE};
use testkit::product::admin;
use testkit::sshd::{SSH_PASSWORD, SSH_USER, Scenario, Sshd, service_from_snippet};
use testkit::{SECRET, enroll_bin, oathtool, repo_dir, settle_in_step};

use crate::enrollment::{CODE_PROMPT, ENTER_PROMPT, Seen, logged_in, ssh};

const KBD: [&str; 2] = ["-o", "PreferredAuthentications=keyboard-interactive"];

/// sshd with `pam_totp_db.so` as the host role `host_a` of `cluster`, in the shipped
/// `sshd-enroll-at-login` stack with `enroll_at_login`.
fn db_server(cluster: &Cluster) -> Sshd {
    let server = Sshd::start(Scenario::PasswordAndCode, "enroll_at_login");
    crate::use_database(&server, cluster, "host_a");
    let module_line = format!(
        "{} config={} enroll_at_login",
        server.path("pam_totp.so").display(),
        server.config_path().display()
    );
    std::fs::write(
        server.path("pam.d/sshd"),
        service_from_snippet(&repo_dir().join("pam.d/sshd-enroll-at-login"), &module_line),
    )
    .unwrap();
    server
}

/// Pixels per module, and light modules around the code, in the image for `zbarimg`.
const SCALE: usize = 4;
const MARGIN: usize = 8;

/// The QR code drawn in the client's transcript (light modules as blocks, two rows a
/// line), as an image, read back by `zbarimg`.
fn decode_qr(seen: &Seen) -> String {
    let lines: Vec<Vec<char>> = seen
        .transcript
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .skip_while(|l| !l.contains("Scan this QR code"))
        .skip(1)
        .take_while(|l| l.contains('\u{2588}') || l.contains('\u{2580}') || l.contains('\u{2584}'))
        .map(|l| l.chars().collect())
        .collect();
    assert!(lines.len() > 10, "a QR code was shown: {seen:?}");
    let width = lines.iter().map(Vec::len).max().unwrap();
    let light = |x: usize, y: usize| {
        let c = lines.get(y / 2).and_then(|l| l.get(x)).copied().unwrap_or(' ');
        matches!((c, y % 2), ('\u{2588}', _) | ('\u{2580}', 0) | ('\u{2584}', 1))
    };
    let (w, h) = (width + 2 * MARGIN, 2 * lines.len() + 2 * MARGIN);
    let mut pbm = format!("P1\n{} {}\n", w * SCALE, h * SCALE);
    for y in 0..h * SCALE {
        for x in 0..w * SCALE {
            let (mx, my) = (x / SCALE, y / SCALE);
            let inside = mx >= MARGIN && my >= MARGIN && mx < MARGIN + width && my < MARGIN + 2 * lines.len();
            let white = !inside || light(mx - MARGIN, my - MARGIN);
            pbm.push(if white { '0' } else { '1' });
        }
        pbm.push('\n');
    }
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("qr.pbm");
    std::fs::write(&image, pbm).unwrap();
    let out = Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(&image)
        .output()
        .expect("zbarimg is not installed (apt-get install zbar-tools)");
    assert!(out.status.success(), "zbarimg read no code: {seen:?}");
    String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
}

/// The base32 secret of an `otpauth://` URI.
fn secret_of_uri(uri: &str) -> String {
    let (_, rest) = uri.split_once("secret=").expect("a secret in the URI");
    rest.split('&').next().unwrap().to_owned()
}

/// `totp-enroll ARGS` as root with the admin role's connection.
fn admin_command(server: &Sshd, cluster: &Cluster, args: &[&str]) -> std::process::Output {
    Command::new(enroll_bin())
        .arg("--config")
        .arg(server.config_path())
        .arg("--database")
        .arg(format!(
            "host={} port={} user={ADMIN} dbname={DATABASE} sslmode=disable",
            cluster.socket_dir().display(),
            cluster.port
        ))
        .args(args)
        .output()
        .unwrap()
}

/// Enrolls over ssh (password, the QR's code, Enter): the secret the QR code carried.
fn enroll_over_ssh(server: &Sshd, cluster: &Cluster) -> String {
    settle_in_step(10);
    let first = ssh(server, &KBD, &[SSH_PASSWORD, "@CODE", ""]);
    assert!(
        logged_in(&first),
        "{first:?}\n{}\n{}",
        server.log(),
        cluster.log()
    );
    assert_eq!(first.prompts, ["Password: ", CODE_PROMPT, ENTER_PROMPT]);
    assert!(first.transcript.contains("Recovery codes"), "{first:?}");
    let secret = secret_of_uri(&decode_qr(&first));
    assert_eq!(secret, first.key(), "the QR code carries the key shown");
    let stored = admin::read_enrollment(&mut cluster.admin(), SSH_USER)
        .unwrap()
        .expect("enrolled in the database");
    assert_eq!(stored.secret.to_base32().as_str(), secret);
    secret
}

/// Waits for the next 30-second step, so that no step used so far is in the window's
/// future half (replay protection is by time, whatever the secret).
fn next_step() {
    let now = testkit::now();
    std::thread::sleep(std::time::Duration::from_secs((now / 30 + 1) * 30 - now + 1));
}

fn code_login(server: &Sshd, code: &str) -> Seen {
    ssh(server, &KBD, &[SSH_PASSWORD, code])
}

#[test]
fn an_unenrolled_user_enrolls_over_ssh_in_the_database_and_after_a_reset_enrolls_again() {
    let _home = crate::no_change_request();
    let cluster = Cluster::start();
    let server = db_server(&cluster);
    let secret = enroll_over_ssh(&server, &cluster);

    let next = code_login(&server, &oathtool(&secret, 1));
    assert!(logged_in(&next), "{next:?}");
    assert_eq!(next.prompts, ["Password: ", "Verification code: "]);

    // A new phone: the admin resets; the old secret stops at once, the next login enrolls.
    let reset = admin_command(&server, &cluster, &["reset", "--user", SSH_USER]);
    assert!(
        reset.status.success(),
        "{}",
        String::from_utf8_lossy(&reset.stderr)
    );
    assert_eq!(
        admin::read_enrollment(&mut cluster.admin(), SSH_USER).unwrap(),
        None
    );
    let again = enroll_over_ssh(&server, &cluster);
    assert_ne!(again, secret);
    next_step();
    let old = code_login(&server, &oathtool(&secret, 1));
    assert!(!logged_in(&old), "{old:?}");
    let new = code_login(&server, &oathtool(&again, 1));
    assert!(logged_in(&new), "{new:?}");
}

#[test]
fn a_user_of_another_realm_is_not_offered_enrollment() {
    let _home = crate::no_change_request();
    let cluster = Cluster::start();
    let server = db_server(&cluster);
    admin::set_user_realms(&mut cluster.admin(), SSH_USER, &["p2".to_owned()]).unwrap();
    let seen = ssh(&server, &KBD, &[SSH_PASSWORD, "123456"]);
    assert!(!logged_in(&seen), "{seen:?}");
    assert_eq!(
        seen.prompts,
        ["Password: ", "Verification code: "],
        "{seen:?}\n{}",
        server.log()
    );
    assert!(!seen.transcript.contains("by hand"), "no secret shown: {seen:?}");
    assert_eq!(
        admin::read_enrollment(&mut cluster.admin(), SSH_USER).unwrap(),
        None
    );
}

#[test]
fn a_user_who_asked_changes_their_otp_after_the_current_code_and_the_old_one_stops() {
    let _home = crate::change_request();
    let request = RequestFile;
    let cluster = Cluster::start();
    let server = db_server(&cluster);
    testkit::postgres::enroll(&cluster, SSH_USER, SECRET);
    // Without a request, a code logs in and nothing else happens.
    settle_in_step(10);
    let plain = code_login(&server, &oathtool(SECRET, 0));
    assert!(logged_in(&plain), "{plain:?}\n{}", server.log());
    assert!(!plain.transcript.contains("by hand"), "{plain:?}");

    // The user asks, as themselves.
    std::fs::set_permissions(
        server.config_path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let asked = Command::new("runuser")
        .args(["-u", SSH_USER, "--"])
        .arg(enroll_bin())
        .arg("--config")
        .arg(server.config_path())
        .arg("--force")
        .output()
        .unwrap();
    assert!(
        asked.status.success(),
        "{}",
        String::from_utf8_lossy(&asked.stderr)
    );

    // A wrong code: refused, nothing offered.
    let wrong = ssh(&server, &KBD, &[SSH_PASSWORD, &testkit::wrong_code(SECRET)]);
    assert!(
        !logged_in(&wrong) && !wrong.transcript.contains("by hand"),
        "{wrong:?}"
    );

    settle_in_step(10);
    let changed = ssh(&server, &KBD, &[SSH_PASSWORD, &oathtool(SECRET, 1), "@CODE", ""]);
    assert!(logged_in(&changed), "{changed:?}\n{}", cluster.log());
    assert_eq!(
        changed.prompts,
        ["Password: ", "Verification code: ", CODE_PROMPT, ENTER_PROMPT]
    );
    let new_secret = secret_of_uri(&decode_qr(&changed));
    assert_eq!(
        admin::read_enrollment(&mut cluster.admin(), SSH_USER)
            .unwrap()
            .unwrap()
            .secret
            .to_base32()
            .as_str(),
        new_secret
    );
    // The old secret stops; the new one works; the request is not carried out twice.
    next_step();
    let old = code_login(&server, &oathtool(SECRET, 1));
    assert!(!logged_in(&old), "{old:?}");
    let new = code_login(&server, &oathtool(&new_secret, 1));
    assert!(logged_in(&new), "{new:?}");
    assert!(!new.transcript.contains("by hand"), "{new:?}");
    drop(request);
}

/// Removes the user's change request when dropped (the test passed or failed), before
/// the lock is let go: the file would outlive the test in the shared home.
struct RequestFile;

impl Drop for RequestFile {
    fn drop(&mut self) {
        let home = nix::unistd::User::from_name(SSH_USER).unwrap().unwrap().dir;
        let _ = std::fs::remove_file(home.join(testkit::product::db::self_enroll::CHANGE_REQUEST_FILE));
    }
}
