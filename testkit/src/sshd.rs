//! A throwaway OpenSSH `sshd` for end-to-end logins, and a real `ssh` client driven
//! through its keyboard-interactive prompts on a pty (`expect`).
//!
//! The server runs as a child of the test on 127.0.0.1 and a free port, with its own host
//! key, config, authorized keys and PAM service. sshd reads its PAM service from
//! `/etc/pam.d/sshd` and nowhere else, so it runs in private namespaces
//! (`unshare --mount --pid`): inside, a temporary directory holding only our `sshd`
//! service is bind-mounted over `/etc/pam.d`. The system's `/etc/pam.d` is never written
//! and no other process sees the mount. The PID namespace makes teardown total: killing
//! `unshare` kills sshd (its PID 1), and with it every session process it started.
//!
//! The PAM service and the sshd options come from the shipped files in `pam.d/`, so the
//! tests check the snippets sysadmins copy, with `pam_totp.so` pointing at a copy of the
//! freshly built module and its own config.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{ModuleBuild, enroll_bin, make_state_dir, repo_dir, users};

/// The user the ssh tests log in as: has a password, a home and a shell.
pub const SSH_USER: &str = "pamtotp-ssh";
/// [`SSH_USER`]'s password (a throwaway test account).
pub const SSH_PASSWORD: &str = "Ssh-test-pw-4711";

/// Which shipped snippet pair the server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// `pam.d/sshd` + `pam_totp-password.conf`: password and code, both through PAM.
    PasswordAndCode,
    /// `pam.d/sshd-publickey` + `pam_totp-publickey.conf`: key, then the code.
    PublicKeyAndCode,
    /// `pam.d/sshd-one-prompt` + `pam_totp-one-prompt.conf`: `forward_pass`, password
    /// and code in one answer, by the password method or keyboard-interactive.
    OnePrompt,
    /// As [`Scenario::PublicKeyAndCode`], with the session lines of `pam.d/sshd-step-up`
    /// (`pam_loginuid`, then `pam_totp`) and `pam.d/sudo-step-up` as the sudo service
    /// inside the server's namespace; [`SSH_USER`] may use sudo.
    PublicKeyStepUp,
}

impl Scenario {
    fn pam_snippet(self) -> PathBuf {
        repo_dir().join(match self {
            Scenario::PasswordAndCode => "pam.d/sshd",
            Scenario::PublicKeyAndCode | Scenario::PublicKeyStepUp => "pam.d/sshd-publickey",
            Scenario::OnePrompt => "pam.d/sshd-one-prompt",
        })
    }

    fn sshd_snippet(self) -> PathBuf {
        repo_dir().join(match self {
            Scenario::PasswordAndCode => "pam.d/sshd_config.d/pam_totp-password.conf",
            Scenario::PublicKeyAndCode | Scenario::PublicKeyStepUp => {
                "pam.d/sshd_config.d/pam_totp-publickey.conf"
            }
            Scenario::OnePrompt => "pam.d/sshd_config.d/pam_totp-one-prompt.conf",
        })
    }
}

/// Creates [`SSH_USER`] (home, `/bin/sh`, in the private user database) and sets its
/// password, once per test binary.
pub fn ensure_ssh_user() {
    static CREATE: std::sync::Once = std::sync::Once::new();
    CREATE.call_once(|| {
        let _ = users::ensure_user(SSH_USER);
        users::set_password(SSH_USER, SSH_PASSWORD);
    });
}

/// The PAM service text: the snippet's lines with `pam_totp.so` replaced by `module`
/// plus `args`, then account/session lines so sshd can open a session.
#[must_use]
pub fn service_from_snippet(snippet: &Path, module: &str) -> String {
    let text =
        std::fs::read_to_string(snippet).unwrap_or_else(|e| panic!("cannot read {}: {e}", snippet.display()));
    let mut service = String::new();
    let mut found = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<String> = line
            .split_whitespace()
            .map(|word| {
                if word == "pam_totp.so" {
                    found = true;
                    module.to_owned()
                } else {
                    word.to_owned()
                }
            })
            .collect();
        writeln!(service, "{}", words.join(" ")).expect("string");
    }
    assert!(found, "{} has no pam_totp.so line", snippet.display());
    service.push_str(
        "account required pam_unix.so\nsession required pam_permit.so\npassword required pam_deny.so\n",
    );
    service
}

/// A running sshd and everything it needs; dropping it stops it and removes it all.
pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// `~/.pam_totp-<tag>` of [`SSH_USER`]: this server's own record.
    pub secret_path: String,
    /// The `unshare` process (our child); sshd is its child, PID 1 of the namespace.
    child: Option<Child>,
}

impl Sshd {
    /// Starts sshd with the shipped snippets of `scenario`; `module_args` are appended
    /// to the `pam_totp.so` line (e.g. `"nullok"`).
    #[must_use]
    pub fn start(scenario: Scenario, module_args: &str) -> Sshd {
        ensure_ssh_user();
        for tool in [
            "/usr/sbin/sshd",
            "/usr/bin/ssh",
            "/usr/bin/expect",
            "/usr/bin/unshare",
        ] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing (apt-get install openssh-server openssh-client expect)"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("pam_totp-sshd")
            .tempdir()
            .expect("tempdir");
        // sshd reads authorized keys with the user's rights: the user must get through.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let tag = dir
            .path()
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let mut sshd = Sshd {
            dir,
            port: 0,
            secret_path: format!("~/.pam_totp-{tag}"),
            child: None,
        };
        sshd.prepare(scenario, module_args);
        // A free port can be taken by someone else before sshd binds it: try a few.
        for _ in 0..5 {
            sshd.port = free_port();
            sshd.write_sshd_config(scenario);
            if sshd.launch() {
                return sshd;
            }
        }
        panic!("sshd did not start; log:\n{}", sshd.log());
    }

    #[must_use]
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    #[must_use]
    pub fn config_path(&self) -> PathBuf {
        self.path("pam_totp.toml")
    }

    /// The client's private key, authorized for [`SSH_USER`].
    #[must_use]
    pub fn client_key(&self) -> PathBuf {
        self.path("client_key")
    }

    /// sshd's log (`LogLevel DEBUG3`), for failure messages.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("sshd.log")).unwrap_or_default()
    }

    /// The host PID of `unshare`, while it runs.
    #[must_use]
    pub fn unshare_pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The host PIDs of sshd and everything below it (connections, sessions).
    #[must_use]
    pub fn server_pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        let mut todo: Vec<u32> = self.unshare_pid().into_iter().collect();
        while let Some(pid) = todo.pop() {
            let children =
                std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                pids.push(child);
                todo.push(child);
            }
        }
        pids
    }

    /// The record file of [`SSH_USER`] for this server.
    #[must_use]
    pub fn record_path(&self) -> PathBuf {
        let home = nix::unistd::User::from_name(SSH_USER)
            .ok()
            .flatten()
            .expect("ssh user")
            .dir;
        home.join(self.secret_path.trim_start_matches("~/"))
    }

    /// Provisions [`SSH_USER`] with `secret` through the built `totp-enroll`.
    pub fn provision(&self, secret: &str) {
        let out = Command::new(enroll_bin())
            .arg("--config")
            .arg(self.config_path())
            .args(["--user", SSH_USER, "--secret", secret, "--no-confirm"])
            .output()
            .expect("run totp-enroll");
        assert!(
            out.status.success(),
            "totp-enroll failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Module copy, its config, the PAM service directory, host and client keys.
    fn prepare(&self, scenario: Scenario, module_args: &str) {
        let module = self.path("pam_totp.so");
        std::fs::copy(crate::module(ModuleBuild::Workspace), &module).expect("copy the module");
        make_state_dir(&self.path("state"));
        std::fs::write(
            self.config_path(),
            format!(
                "secret_path = \"{}\"\nstate_dir = \"{}\"\n",
                self.secret_path,
                self.path("state").display()
            ),
        )
        .expect("module config");
        let module_line = format!(
            "{} config={} {module_args}",
            module.display(),
            self.config_path().display()
        );
        std::fs::create_dir(self.path("pam.d")).expect("pam.d");
        let mut sshd_service = service_from_snippet(&scenario.pam_snippet(), module_line.trim_end());
        if scenario == Scenario::PublicKeyStepUp {
            sshd_service.push_str(&service_from_snippet(
                &repo_dir().join("pam.d/sshd-step-up"),
                module_line.trim_end(),
            ));
            std::fs::write(
                self.path("pam.d/sudo"),
                service_from_snippet(&repo_dir().join("pam.d/sudo-step-up"), module_line.trim_end()),
            )
            .expect("sudo service");
            // In the test binary's private /etc (testkit/run-hermetic).
            let sudoers = Path::new("/etc/sudoers.d/pam_totp-test");
            std::fs::write(sudoers, format!("{SSH_USER} ALL=(ALL) ALL\n")).expect("sudoers");
            std::fs::set_permissions(sudoers, std::fs::Permissions::from_mode(0o440)).expect("chmod sudoers");
        }
        std::fs::write(self.path("pam.d/sshd"), sshd_service).expect("pam service");
        for key in ["host_key", "client_key", "other_key"] {
            let status = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "pam_totp-test", "-f"])
                .arg(self.path(key))
                .status();
            assert!(status.is_ok_and(|s| s.success()), "ssh-keygen failed");
        }
        std::fs::create_dir(self.path("authorized_keys")).expect("authorized_keys dir");
        // Both client keys may log in: the first factor of either is good.
        let authorized = [self.path("client_key.pub"), self.path("other_key.pub")]
            .iter()
            .map(|key| std::fs::read_to_string(key).expect("public key"))
            .collect::<String>();
        std::fs::write(self.path(&format!("authorized_keys/{SSH_USER}")), authorized)
            .expect("authorized keys");
        // sshd's privilege-separation directory (the openssh-server package makes it at
        // boot; a fresh container may not have it).
        std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
    }

    /// The shipped `sshd_config` lines of `scenario`, then this server's own. `AcceptEnv`
    /// lets a client send the names the module reads from the PAM environment, so the
    /// tests can show that what a client sends never reaches it.
    fn write_sshd_config(&self, scenario: Scenario) {
        let snippet = std::fs::read_to_string(scenario.sshd_snippet()).expect("sshd_config snippet");
        let dir = self.dir.path().display();
        let config = format!(
            "{snippet}\n\
             ListenAddress 127.0.0.1\n\
             Port {port}\n\
             HostKey {dir}/host_key\n\
             PidFile {dir}/sshd.pid\n\
             AuthorizedKeysFile {dir}/authorized_keys/%u\n\
             StrictModes no\n\
             LogLevel DEBUG3\n\
             LoginGraceTime 60\n\
             PrintMotd no\n\
             PrintLastLog no\n\
             Subsystem sftp internal-sftp\n\
             AcceptEnv SSH_AUTH_INFO_0 PAM_TOTP_TICKET\n",
            port = self.port
        );
        std::fs::write(self.path("sshd_config"), config).expect("sshd_config");
    }

    /// Starts sshd in its namespaces and waits until it listens; false if it exited
    /// (port taken) so the caller can try another port.
    fn launch(&mut self) -> bool {
        let dir = self.dir.path().display().to_string();
        let log = std::fs::File::create(self.path("sshd.log")).expect("log file");
        let script = format!(
            "mount --bind '{dir}/pam.d' /etc/pam.d && exec /usr/sbin/sshd -D -e -f '{dir}/sshd_config'"
        );
        let child = Command::new("/usr/bin/unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "--pid",
                "--fork",
                "--kill-child",
                "--mount-proc",
                "/bin/sh",
                "-c",
                &script,
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("run unshare");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && child.try_wait().ok().flatten().is_some()
            {
                self.child = None;
                return false;
            }
            // Listening, and by sshd itself: its log says so once it has bound.
            if self.log().contains("Server listening on 127.0.0.1 port")
                && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop();
        false
    }

    /// Kills sshd's namespace and reaps `unshare`.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let servers = self.server_pids();
        // sshd is PID 1 of its namespace: when it dies the kernel kills every process in
        // it. `--kill-child` does the same if only `unshare` is killed.
        let mut targets: Vec<String> = servers.iter().take(1).map(ToString::to_string).collect();
        targets.push(format!("-{}", child.id()));
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg("--")
            .args(&targets)
            .stderr(Stdio::null())
            .status();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Logs in as [`SSH_USER`] with keyboard-interactive only, answering the prompts with
    /// `answers`, and runs `command`.
    #[must_use]
    pub fn ssh_password(&self, answers: &[&str], command: &str) -> Session {
        self.ssh(
            &["-o", "PreferredAuthentications=keyboard-interactive"],
            answers,
            command,
        )
    }

    /// Logs in with sshd's "password" method only (one prompt, answered with `answer`).
    #[must_use]
    pub fn ssh_password_method(&self, answer: &str, command: &str) -> Session {
        self.ssh(&["-o", "PreferredAuthentications=password"], &[answer], command)
    }

    /// Logs in with the authorized client key, then keyboard-interactive.
    #[must_use]
    pub fn ssh_key(&self, answers: &[&str], command: &str) -> Session {
        self.ssh_with_key(&self.client_key(), answers, command)
    }

    /// A second authorized key, not [`Sshd::client_key`].
    #[must_use]
    pub fn other_key(&self) -> PathBuf {
        self.path("other_key")
    }

    /// As [`Sshd::ssh_key`], with the private key `key`.
    #[must_use]
    pub fn ssh_with_key(&self, key: &Path, answers: &[&str], command: &str) -> Session {
        let key = key.display().to_string();
        self.ssh(
            &[
                "-i",
                &key,
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "PreferredAuthentications=publickey,keyboard-interactive",
            ],
            answers,
            command,
        )
    }

    /// `ssh` to [`SSH_USER`] on this server, on a pty driven by the `expect` script
    /// `testkit/scripts/SCRIPT`, answering the prompts with `answers` in order (passed in
    /// the environment, not on the command line). Add the remote command, then run it.
    #[must_use]
    pub fn expect_ssh(&self, script: &str, options: &[&str], answers: &[&str]) -> Command {
        let mut cmd = Command::new("timeout");
        cmd.args(["--kill-after=5", "90", "expect", "-f"])
            .arg(repo_dir().join("testkit/scripts").join(script))
            .args(["ssh", "-F", "/dev/null", "-p", &self.port.to_string()])
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "NumberOfPasswordPrompts=1",
                "-o",
                "ConnectTimeout=10",
            ])
            .args(options)
            .arg(format!("{SSH_USER}@127.0.0.1"))
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null());
        for (i, answer) in answers.iter().enumerate() {
            cmd.env(format!("PAMTOTP_ANSWER_{}", i + 1), answer);
        }
        cmd
    }

    /// A real `ssh` on a pty, driven by `expect` (`testkit/scripts/ssh_login.exp`).
    #[must_use]
    pub fn ssh(&self, options: &[&str], answers: &[&str], command: &str) -> Session {
        let out = self
            .expect_ssh("ssh_login.exp", options, answers)
            .arg(command)
            .output()
            .expect("run expect");
        let session = Session::parse(&String::from_utf8_lossy(&out.stdout));
        assert!(
            !session.timed_out && session.exit.is_some(),
            "the ssh client got stuck: {session:?}\nstderr: {}\nsshd log tail:\n{}",
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log(), 40)
        );
        session
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(self.record_path());
    }
}

/// What one ssh run showed, without the answers (typed with echo off).
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// Each prompt, without ssh's `(user@host) ` prefix.
    pub prompts: Vec<String>,
    /// The rest of the transcript: command output, refusal lines.
    pub output: String,
    /// ssh's exit status (0: logged in and the command succeeded; 255: refused).
    pub exit: Option<i32>,
    /// The script ran out of answers and hung up.
    pub hung_up: bool,
    pub timed_out: bool,
}

impl Session {
    fn parse(stdout: &str) -> Session {
        let mut session = Session::default();
        for line in stdout.lines() {
            let line = line.trim_end_matches('\r');
            if let Some(prompt) = line.strip_prefix("PAMTOTP-PROMPT:") {
                let prompt = match prompt.strip_prefix('(') {
                    Some(rest) => rest.split_once(") ").map_or(prompt, |(_, p)| p),
                    None => prompt,
                };
                session.prompts.push(prompt.to_owned());
            } else if let Some(code) = line.strip_prefix("PAMTOTP-EXIT:") {
                session.exit = code.trim().parse().ok();
            } else if line == "PAMTOTP-HANGUP" {
                session.hung_up = true;
            } else if line == "PAMTOTP-TIMEOUT" {
                session.timed_out = true;
            } else if !line.trim().is_empty() && !line.ends_with(": ") {
                session.output.push_str(line.trim());
                session.output.push('\n');
            }
        }
        session
    }

    /// Logged in, and the command printed `expected`.
    #[must_use]
    pub fn logged_in_and_printed(&self, expected: &str) -> bool {
        self.exit == Some(0) && self.output.lines().any(|l| l == expected)
    }

    /// Refused at authentication (ssh says so and exits 255).
    #[must_use]
    pub fn refused(&self) -> bool {
        self.exit == Some(255) && self.output.contains("Permission denied")
    }
}

/// A port nobody listens on right now.
#[must_use]
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expect_transcript_is_split_into_prompts_output_and_exit() {
        let session = Session::parse(
            "PAMTOTP-PROMPT:(pamtotp-ssh@127.0.0.1) Password: \r\n\
             PAMTOTP-PROMPT:Verification code: \r\n\
             logged in\r\n\
             \r\n\
             typed: \r\n\
             PAMTOTP-EXIT:0\r\n",
        );
        assert_eq!(session.prompts, ["Password: ", "Verification code: "]);
        assert_eq!(session.output, "logged in\n");
        assert_eq!(session.exit, Some(0));
        assert!(!session.hung_up && !session.timed_out);
        assert!(session.logged_in_and_printed("logged in"));
    }

    #[test]
    fn a_refusal_a_hang_up_and_a_timeout_are_told_apart() {
        let refused = Session::parse("Permission denied (keyboard-interactive).\nPAMTOTP-EXIT:255\n");
        assert!(refused.refused());
        let hung_up = Session::parse("PAMTOTP-PROMPT:Code: \nPAMTOTP-HANGUP\n");
        assert!(hung_up.hung_up && hung_up.exit.is_none() && !hung_up.refused());
        let timed_out = Session::parse("PAMTOTP-TIMEOUT\n");
        assert!(timed_out.timed_out);
        assert_eq!(Session::parse("PAMTOTP-EXIT:x\n").exit, None);
    }
}
