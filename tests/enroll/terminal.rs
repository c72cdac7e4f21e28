//! `totp-enroll` on the terminal most people have: 80x24 (the default of `PuTTY` and
//! macOS Terminal), in a real `tmux`. What is on the screen when the prompt shows is captured
//! and its QR code read with `zbarimg`, as a phone would read it; a terminal too short
//! for the code says so and shows the key instead of half a picture.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use testkit::{Fixture, SECRET, TEST_USER, enroll_bin, oathtool, settle_in_step};

const PROMPT: &str = "Enter the code your app shows now:";

/// A tmux server of the test's own, with one window of `columns` x `rows` running
/// `totp-enroll`; killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(fixture: &Fixture, args: &[&str], columns: u16, rows: u16) -> Tmux {
        let socket = format!(
            "pam_totp-test-{}",
            fixture.dir.path().file_name().expect("name").to_string_lossy()
        );
        // The shell keeps the window (and the exit code) on the screen after the command.
        let command = format!(
            "{} --config {} {}; echo \"exit $?\"; sleep 600",
            enroll_bin().display(),
            fixture.config_path().display(),
            args.join(" ")
        );
        let status = Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", &columns.to_string(), "-y", &rows.to_string()])
            .arg(command)
            .env("TERM", "xterm")
            .status()
            .expect("tmux is not installed (apt-get install tmux)");
        assert!(status.success(), "tmux new-session");
        Tmux { socket }
    }

    /// The screen as it shows now (no colours, no scrollback).
    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p"])
            .output()
            .expect("tmux capture-pane");
        assert!(out.status.success(), "capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits (30 s at most) for `needle` on the screen; returns the screen.
    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if screen.contains(needle) {
                return screen;
            }
            assert!(Instant::now() < deadline, "{needle:?} never showed:\n{screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn type_keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys"])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success(), "send-keys");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

/// The QR code's lines on `screen`: the lines drawn with half blocks only.
fn qr_lines(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .filter(|line| {
            line.contains(['\u{2588}', '\u{2580}', '\u{2584}'])
                && line
                    .chars()
                    .all(|c| matches!(c, '\u{2588}' | '\u{2580}' | '\u{2584}' | ' '))
        })
        .collect()
}

/// `zbarimg`'s reading of the QR code on `screen`.
fn scan(screen: &str, image: &Path) -> String {
    assert!(
        testkit::half_blocks_as_pgm(&qr_lines(screen), image),
        "no QR code on the screen:\n{screen}"
    );
    let out = Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(image)
        .output()
        .expect("zbarimg is not installed (apt-get install zbar-tools)");
    assert!(out.status.success(), "zbarimg cannot read the screen:\n{screen}");
    String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
}

fn secret_of(uri: &str) -> String {
    let start = uri.find("secret=").expect("secret in URI") + "secret=".len();
    uri[start..].split('&').next().expect("secret").to_owned()
}

#[test]
fn on_an_80x24_terminal_the_whole_qr_code_is_on_the_screen_with_the_prompt_and_scans() {
    for issuer in ["Educloud", "login01.example.org"] {
        let fixture = Fixture::new(&format!("issuer = \"{issuer}\""), "");
        let tmux = Tmux::run(&fixture, &["--user", TEST_USER], 80, 24);
        let screen = tmux.wait_for(PROMPT);
        let lines: Vec<&str> = screen.lines().collect();
        // The prompt is the last line, and the code's first row of modules (the finder
        // patterns' top edges) has not scrolled away: the first QR line is not it.
        assert!(lines.iter().any(|l| l.starts_with(PROMPT)), "{screen}");
        let drawn = qr_lines(&screen);
        assert!(
            drawn
                .first()
                .is_some_and(|l| l.trim_start().starts_with("\u{2588}\u{2580}\u{2580}\u{2580}")),
            "the top of the QR code scrolled away:\n{screen}"
        );
        let uri = scan(&screen, &fixture.path("screen.pgm"));
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(!uri.contains("algorithm=") && !uri.contains("period="), "{uri}");

        // What the phone scanned is what gets enrolled: its code is accepted, and the
        // record holds the scanned secret.
        let secret = secret_of(&uri);
        settle_in_step(3);
        tmux.type_keys(&[&oathtool(&secret, 0), "Enter"]);
        tmux.wait_for("exit 0");
        let record = std::fs::read_to_string(fixture.record_path()).expect("record");
        assert!(record.contains(&format!("secret = \"{secret}\"")), "{issuer}");
    }
}

#[test]
fn a_terminal_too_short_for_the_qr_code_says_so_and_shows_the_key_instead() {
    let fixture = Fixture::new("", "");
    let tmux = Tmux::run(&fixture, &["--user", TEST_USER, "--secret", SECRET], 80, 15);
    let screen = tmux.wait_for(PROMPT);
    assert!(
        screen.contains("The terminal has 15 lines, too few for the QR code") && screen.contains("--qr-png"),
        "{screen}"
    );
    assert!(qr_lines(&screen).is_empty(), "no broken picture:\n{screen}");
    assert!(
        screen.contains("GEZD GNBV GY3T QOJQ"),
        "the key, to type:\n{screen}"
    );
    tmux.type_keys(&["C-d"]);
    tmux.wait_for("exit 1");
    assert!(!fixture.record_path().exists());
}
