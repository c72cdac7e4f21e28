//! Turning 2FA on for a host that already has users, through real libpam: the grace
//! period (`enforce_after`), exempt service accounts, and enrollment at first login.

use std::os::unix::fs::MetadataExt;

use pam_client::{AUTH_ERR, PERM_DENIED, SUCCESS, SYSTEM_ERR, Shown};
use testkit::product::{
    Conversation, ConversationError, FileStore, Logger, Login, Outcome, Priority, Stores, SystemAccounts,
    authenticate,
};
use testkit::{Fixture, SECRET, TEST_USER, oathtool, phone_user, settle_in_step, shown_key, wrong_code};
use zeroize::Zeroizing;

/// The stores of `pam_totp.so`.
const FILE_STORE: Stores<'static> = Stores {
    file: &FileStore,
    postgres: None,
    accounts: &SystemAccounts,
};

const FUTURE: &str = "2099-01-15";
const PAST: &str = "2020-01-15";

#[test]
fn before_enforce_after_an_unenrolled_user_gets_in_with_a_warning() {
    let fixture = Fixture::new(&format!("enforce_after = \"{FUTURE}\""), "");
    fixture.with_permit();
    let transcript = fixture.login("");
    assert_eq!(transcript.status, SUCCESS, "{transcript:?}");
    assert!(transcript.prompts().is_empty(), "no code asked: {transcript:?}");
    let info: Vec<&Shown> = transcript
        .shown
        .iter()
        .filter(|s| matches!(s, Shown::Info(m) if m.contains(FUTURE) && m.contains("totp-enroll")))
        .collect();
    assert_eq!(
        info.len(),
        1,
        "one warning naming the date and the command: {transcript:?}"
    );

    // Alone in the stack, the module gives no verdict, so libpam refuses.
    let alone = Fixture::new(&format!("enforce_after = \"{FUTURE}\""), "");
    assert_eq!(alone.login("").status, PERM_DENIED);
}

#[test]
fn from_enforce_after_an_unenrolled_user_is_prompted_and_refused() {
    let fixture = Fixture::new(&format!("enforce_after = \"{PAST}\""), "");
    fixture.with_permit();
    let transcript = fixture.login("123456");
    assert_eq!(transcript.status, AUTH_ERR, "{transcript:?}");
    assert_eq!(transcript.prompts(), ["Verification code: "]);
    assert!(
        transcript.messages().is_empty(),
        "no warning once enforced: {transcript:?}"
    );
}

#[test]
fn nullok_stays_a_permanent_opt_out_after_enforce_after() {
    let fixture = Fixture::new(&format!("enforce_after = \"{PAST}\""), "nullok");
    fixture.with_permit();
    let transcript = fixture.login("");
    assert_eq!(transcript.status, SUCCESS, "{transcript:?}");
    assert!(transcript.shown.is_empty(), "{transcript:?}");
}

#[test]
fn during_the_grace_period_an_enrolled_user_still_needs_the_code() {
    let fixture = Fixture::new(&format!("enforce_after = \"{FUTURE}\""), "");
    fixture.with_permit();
    fixture.provision(SECRET);
    settle_in_step(3);
    assert_eq!(fixture.login(&wrong_code(SECRET)).status, AUTH_ERR);
    let transcript = fixture.login(&oathtool(SECRET, 0));
    assert_eq!(transcript.status, SUCCESS, "{transcript:?}");
    // No grace-period warning for the enrolled; only the report of the wrong code.
    let messages = transcript.messages();
    assert_eq!(messages.len(), 1, "{transcript:?}");
    assert!(
        messages[0].starts_with("1 failed verification code since your last login"),
        "{transcript:?}"
    );
}

#[test]
fn an_enforce_after_that_is_not_a_date_fails_closed() {
    for bad in ["2027-02-30", "15.01.2027", "soon"] {
        let fixture = Fixture::new(&format!("enforce_after = \"{bad}\""), "");
        fixture.with_permit();
        let transcript = fixture.login("");
        assert_eq!(transcript.status, SYSTEM_ERR, "{bad}: {transcript:?}");
        let out = fixture.enroll(&["status"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("enforce_after"), "{stderr}");
    }
    // As a module argument too.
    let fixture = Fixture::new("", "enforce_after=2027-13-01");
    assert_eq!(fixture.login("").status, SYSTEM_ERR);
}

#[test]
fn an_exempt_user_needs_no_code_enrolled_or_not() {
    let fixture = Fixture::new(&format!("exempt_users = [\"{TEST_USER}\"]"), "");
    fixture.with_permit();
    let transcript = fixture.login("");
    assert_eq!(transcript.status, SUCCESS, "{transcript:?}");
    assert!(transcript.shown.is_empty(), "{transcript:?}");
    fixture.provision(SECRET);
    let transcript = fixture.login("");
    assert_eq!(transcript.status, SUCCESS, "{transcript:?}");
    assert!(transcript.prompts().is_empty());

    // Others are not exempt: the module argument form names someone else.
    let other = Fixture::new("", "exempt_users=root,nobody");
    other.with_permit();
    assert_eq!(other.login("123456").status, AUTH_ERR);
}

#[test]
fn a_member_of_an_exempt_group_needs_no_code() {
    let group = "pamtotp-svc";
    testkit::ensure_test_user();
    let _ = testkit::users::add_to_group(TEST_USER, group);

    // A supplementary group, named in a list with a group that does not exist.
    let fixture = Fixture::new(
        &format!("exempt_groups = [\"no-such-group-pamtotp\", \"{group}\"]"),
        "",
    );
    fixture.with_permit();
    let transcript = fixture.login("");
    assert_eq!(transcript.status, SUCCESS, "{transcript:?}");
    assert!(transcript.prompts().is_empty());

    // A group the user is not in exempts nothing.
    let fixture = Fixture::new("exempt_groups = [\"root\"]", "");
    fixture.with_permit();
    assert_eq!(fixture.login("123456").status, AUTH_ERR);
}

struct Silent;

impl Conversation for Silent {
    fn ask_hidden(&mut self, _prompt: &str) -> Result<Option<Zeroizing<Vec<u8>>>, ConversationError> {
        Err(ConversationError)
    }
    fn show_error(&mut self, _text: &str) {}
    fn show_info(&mut self, _text: &str) {}
}

#[derive(Default)]
struct Lines(std::cell::RefCell<Vec<(Priority, String)>>);

impl Logger for Lines {
    fn log(&self, priority: Priority, message: &str) {
        self.0.borrow_mut().push((priority, message.to_owned()));
    }
}

#[test]
fn every_use_of_an_exemption_is_logged() {
    let fixture = Fixture::new("exempt_groups = [\"root\"]\nexempt_users = [\"nobody\"]", "");
    let args = vec![format!("config={}", fixture.config_path().display())];
    for (user, why) in [
        ("root", "exempt_groups: member of root"),
        ("nobody", "exempt_users"),
    ] {
        let lines = Lines::default();
        let login = Login {
            user,
            rhost: Some("192.0.2.7"),
            tty: None,
            args: &args,
            now: testkit::now(),
        };
        let outcome = authenticate::authenticate(&login, FILE_STORE, &mut Silent, &lines);
        assert_eq!(outcome, Outcome::Ignore);
        let lines = lines.0.into_inner();
        assert_eq!(
            lines,
            [(
                Priority::Notice,
                format!("second factor not required ({why}); user={user} rhost=192.0.2.7")
            )]
        );
    }
}

#[test]
fn enroll_at_login_with_records_in_homes_is_a_configuration_error() {
    let fixture = Fixture::new("enroll_at_login = true", "");
    fixture.with_permit();
    let transcript = fixture.login("");
    assert_eq!(transcript.status, SYSTEM_ERR, "{transcript:?}");
    let out = fixture.enroll(&["status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`enroll_at_login`") && stderr.contains("root-owned store"),
        "{stderr}"
    );
}

/// A fixture whose records live in a root-owned directory, with enrollment at login.
fn enrolling(extra_config: &str) -> (Fixture, std::path::PathBuf) {
    let fixture = Fixture::new("", "");
    let records = fixture.path("records");
    std::fs::create_dir(&records).unwrap();
    std::fs::set_permissions(&records, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    // Module arguments override the fixture's home-store secret_path.
    let service = std::fs::read_to_string(fixture.path("totp")).unwrap();
    let service = service.replacen(
        '\n',
        &format!(" secret={}/${{USER}} enroll_at_login\n", records.display()),
        1,
    );
    std::fs::write(fixture.path("totp"), service).unwrap();
    fixture.write_config(extra_config);
    fixture.with_permit();
    (fixture, records.join(TEST_USER))
}

fn login_with(fixture: &Fixture, responder: pam_client::Responder) -> testkit::Transcript {
    let login = testkit::Login {
        confdir: fixture.dir.path(),
        service: &fixture.service,
        user: TEST_USER,
        rhost: Some("192.0.2.7"),
    };
    pam_client::authenticate_responding(&login, responder)
}

#[test]
fn first_login_enrolls_the_user_and_later_logins_need_the_code() {
    let (fixture, record) = enrolling("");
    settle_in_step(5);
    let transcript = login_with(&fixture, phone_user);
    assert_eq!(transcript.status, SUCCESS, "{transcript:?}");
    let key = shown_key(&transcript.shown).expect("key shown");

    // What the user saw: a QR code, the key, the URI, then the recovery codes.
    let qr_rows = transcript
        .messages()
        .iter()
        .filter(|m| m.chars().all(|c| " ▀▄█".contains(c)) && m.chars().count() >= 37)
        .count();
    assert!(qr_rows >= 18, "a QR code of at least 37 modules: {transcript:?}");
    assert!(
        transcript
            .messages()
            .iter()
            .any(|m| m.starts_with("URI: otpauth://totp/") && m.contains(&key))
    );
    let codes: Vec<String> = transcript
        .messages()
        .iter()
        .filter_map(|m| {
            let (_, code) = m.trim().split_once(". ")?;
            (code.len() == 14 && code.matches('-').count() == 2).then(|| code.to_owned())
        })
        .collect();
    assert_eq!(codes.len(), 10, "ten recovery codes: {transcript:?}");

    // The record: root-owned, private, in the system store.
    let meta = std::fs::metadata(&record).expect("record written");
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o600));

    // The enrollment code cannot be replayed; the next step's code and a recovery code work.
    let code = oathtool(&key, 0);
    let again = fixture.login(&code);
    assert_eq!(again.status, AUTH_ERR, "replayed: {again:?}");
    assert_eq!(again.prompts(), ["Verification code: "], "no second enrollment");
    assert_eq!(fixture.login(&oathtool(&key, 1)).status, SUCCESS);
    assert_eq!(fixture.login(&codes[3]).status, SUCCESS);
    assert_eq!(
        fixture.login(&codes[3]).status,
        AUTH_ERR,
        "recovery codes work once"
    );
}

#[test]
fn a_wrong_code_at_first_login_enrolls_nobody() {
    let (fixture, record) = enrolling("");
    let transcript = fixture.login_as(TEST_USER, &[b"000000", b"111111", b"222222"]);
    assert_eq!(transcript.status, AUTH_ERR, "{transcript:?}");
    assert_eq!(transcript.prompts().len(), 3, "three tries: {transcript:?}");
    assert!(!record.exists());
    // A client that goes away mid-enrollment writes nothing either.
    let transcript = fixture.login_as(TEST_USER, &[]);
    assert_eq!(transcript.status, pam_client::CONV_ERR);
    assert!(!record.exists());
}

#[test]
fn during_the_grace_period_enrollment_at_login_can_be_skipped() {
    let (fixture, record) = enrolling(&format!("enforce_after = \"{FUTURE}\""));
    let transcript = fixture.login("");
    assert_eq!(transcript.status, SUCCESS, "{transcript:?}");
    assert!(
        transcript.prompts()[0].contains(FUTURE),
        "the prompt says how long skipping works: {transcript:?}"
    );
    assert!(
        transcript
            .messages()
            .iter()
            .any(|m| m.contains(FUTURE) && m.contains("totp-enroll"))
    );
    assert!(!record.exists());

    // Once enforced, an empty answer is just a wrong code.
    let (fixture, record) = enrolling(&format!("enforce_after = \"{PAST}\""));
    let transcript = fixture.login_as(TEST_USER, &[b"", b"", b""]);
    assert_eq!(transcript.status, AUTH_ERR, "{transcript:?}");
    assert!(!record.exists());
}

#[test]
fn enroll_at_login_without_the_store_directory_shows_no_secret_and_fails_closed() {
    let (fixture, record) = enrolling("");
    std::fs::remove_dir(record.parent().unwrap()).unwrap();
    let transcript = fixture.login("123456");
    assert_eq!(transcript.status, SYSTEM_ERR, "{transcript:?}");
    assert!(shown_key(&transcript.shown).is_none(), "{transcript:?}");
    assert!(transcript.prompts().is_empty());
}

/// A person at the terminal for `authenticate` called directly: reads what is shown,
/// types the code for the key shown, then Enter.
#[derive(Default)]
struct Person {
    shown: Vec<String>,
}

impl Conversation for Person {
    fn ask_hidden(&mut self, prompt: &str) -> Result<Option<Zeroizing<Vec<u8>>>, ConversationError> {
        let answer = if prompt.starts_with("Code shown by your app") {
            let infos: Vec<Shown> = self.shown.iter().cloned().map(Shown::Info).collect();
            oathtool(&shown_key(&infos).ok_or(ConversationError)?, 0)
        } else {
            String::new()
        };
        Ok(Some(Zeroizing::new(answer.into_bytes())))
    }
    fn show_error(&mut self, text: &str) {
        self.shown.push(text.to_owned());
    }
    fn show_info(&mut self, text: &str) {
        self.shown.push(text.to_owned());
    }
}

#[test]
fn enrollment_at_login_logs_no_secret_and_no_recovery_code() {
    let (fixture, record) = enrolling("");
    let service = std::fs::read_to_string(fixture.path("totp")).unwrap();
    let args: Vec<String> = service
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(3)
        .map(str::to_owned)
        .collect();
    settle_in_step(5);
    let mut person = Person::default();
    let lines = Lines::default();
    let login = Login {
        user: TEST_USER,
        rhost: Some("192.0.2.7"),
        tty: None,
        args: &args,
        now: testkit::now(),
    };
    let outcome = authenticate::authenticate(&login, FILE_STORE, &mut person, &lines);
    assert_eq!(outcome, Outcome::Success, "{:?}", person.shown);
    assert!(record.exists());
    let infos: Vec<Shown> = person.shown.iter().cloned().map(Shown::Info).collect();
    let key = shown_key(&infos).unwrap();
    let codes: Vec<String> = person
        .shown
        .iter()
        .filter_map(|m| m.trim().split_once(". ").map(|(_, c)| c.to_owned()))
        .filter(|c| c.len() == 14)
        .collect();
    assert_eq!(codes.len(), 10);
    let lines = lines.0.into_inner();
    assert!(
        lines
            .iter()
            .any(|(_, l)| l.starts_with("enrolled at login; user=pamtotp-test")),
        "{lines:?}"
    );
    for (_, line) in &lines {
        assert!(!line.contains(&key[..8]), "{line}");
        assert!(!line.contains("otpauth"), "{line}");
        for code in &codes {
            assert!(!line.contains(code.as_str()), "{line}");
        }
    }
}
