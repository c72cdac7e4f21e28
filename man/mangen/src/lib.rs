//! `totp-enroll(1)`, generated from the command's own clap definition.
//!
//! The generator compiles `enroll-cli/src/cli.rs` itself (the file, unchanged), so every
//! option and subcommand the command parses is in the page, with its `--help` text, and a
//! new one needs no edit here. The sections clap does not know (exit status, files,
//! examples) are written below.

#![forbid(unsafe_code)]

use std::io::{self, Write};

use clap::CommandFactory;
use clap_mangen::Man;

#[path = "../../../enroll-cli/src/cli.rs"]
pub mod cli;

/// The sections after the options: what a sysadmin looks for that `--help` does not say.
const TRAILER: &str = r#".SH "EXIT STATUS"
.TP
.B 0
Success: the user is enrolled, or the requested action was done.
.TP
.B 1
Refused or failed: a wrong confirmation code, an existing enrollment without
\fB\-\-force\fR, an action only root may take, or an I/O error.
.TP
.B 2
Usage or configuration error: a bad argument, or an unreadable or invalid
configuration file.
.SH FILES
.TP
.I /etc/security/pam_totp.toml
The configuration shared with the PAM module; see
.BR pam_totp.toml (5).
.TP
.I ~/.pam_totp
Each user's enrollment record (mode 0600), unless \fBsecret_path\fR says otherwise.
.TP
.I /var/lib/pam_totp/
Login state (failures, lock-outs), cleared by \fBunlock\fR.
.SH EXAMPLES
Enroll yourself: scan the QR code, then type the code the app shows:
.PP
.RS
.EX
$ totp\-enroll
.EE
.RE
.PP
As root, provision a known secret for a user migrated from another system:
.PP
.RS
.EX
# totp\-enroll \-\-user alice \-\-secret JBSWY3DPEHPK3PXP \-\-no\-confirm
.EE
.RE
.PP
Clear a user's lock-out after too many wrong codes:
.PP
.RS
.EX
# totp\-enroll unlock \-\-user alice
.EE
.RE
.PP
With \fBstore = "postgres"\fR (many hosts, one database), on the admin host: create the
schema, let a host's database role in, and move a host's record files into the database:
.PP
.RS
.EX
# totp\-enroll db init
# totp\-enroll db grant\-host host_web1
# totp\-enroll import \-\-pam\-totp\-files
.EE
.RE
.SH "SEE ALSO"
.BR pam_totp (8),
.BR pam_totp.toml (5),
.BR sshd_config (5)
"#;

/// Writes the whole page.
///
/// # Errors
/// Only those of `out`.
pub fn render(out: &mut dyn Write) -> io::Result<()> {
    let mut command = cli::Cli::command();
    command.build();
    let man = Man::new(command.clone()).manual("pam_totp");
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    let subcommands: Vec<_> = command
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
        .collect();
    if !subcommands.is_empty() {
        writeln!(out, ".SH COMMANDS")?;
        for sub in subcommands {
            render_subcommand(out, sub, None)?;
        }
    }
    out.write_all(TRAILER.as_bytes())?;
    Ok(())
}

/// One subcommand: a subsection with its synopsis, description and own options; then
/// its own subcommands (`db init`), each a subsection named with its parent's name.
fn render_subcommand(out: &mut dyn Write, sub: &clap::Command, parent: Option<&str>) -> io::Result<()> {
    let man = Man::new(sub.clone());
    let mut sections = Vec::new();
    man.render_synopsis_section(&mut sections)?;
    man.render_description_section(&mut sections)?;
    let own_options = sub
        .get_arguments()
        .any(|arg| !arg.is_global_set() && !arg.is_hide_set() && !is_builtin(arg));
    if own_options {
        man.render_options_section(&mut sections)?;
    }
    let text = String::from_utf8_lossy(&sections);
    let name = match parent {
        Some(parent) => format!("{parent} {}", sub.get_name()),
        None => sub.get_name().to_owned(),
    };
    writeln!(out, ".SS \"{name}\"")?;
    for line in text.lines() {
        // Each section of the subcommand becomes a paragraph of its subsection.
        if line.starts_with(".SH ") {
            writeln!(out, ".PP")?;
        } else {
            writeln!(out, "{line}")?;
        }
    }
    for nested in sub
        .get_subcommands()
        .filter(|nested| !nested.is_hide_set() && nested.get_name() != "help")
    {
        render_subcommand(out, nested, Some(&name))?;
    }
    Ok(())
}

fn is_builtin(arg: &clap::Arg) -> bool {
    matches!(arg.get_id().as_str(), "help" | "version")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn page() -> String {
        let mut page = Vec::new();
        render(&mut page).unwrap();
        String::from_utf8(page).unwrap()
    }

    #[test]
    fn the_page_renders_without_warnings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("totp-enroll.1");
        std::fs::write(&path, page()).unwrap();
        let out = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&path)
            .env("MANWIDTH", "80")
            .output()
            .expect("man is not installed (apt-get install man-db groff-base)");
        assert!(out.status.success(), "man failed: {out:?}");
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(warnings.is_empty(), "totp-enroll.1: {warnings}");
    }

    #[test]
    fn every_option_and_subcommand_of_the_command_is_in_the_page() {
        let page = page().replace("\\-", "-");
        let mut command = cli::Cli::command();
        command.build();
        let mut missing = Vec::new();
        let mut check = |name: String| {
            if !page.contains(&name) {
                missing.push(name);
            }
        };
        for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
            check(format!(".SS \"{}\"", sub.get_name()));
            for arg in sub.get_arguments().filter_map(clap::Arg::get_long) {
                check(format!("--{arg}"));
            }
            for nested in sub.get_subcommands().filter(|s| s.get_name() != "help") {
                check(format!(".SS \"{} {}\"", sub.get_name(), nested.get_name()));
            }
        }
        for arg in command.get_arguments().filter_map(clap::Arg::get_long) {
            check(format!("--{arg}"));
        }
        assert!(missing.is_empty(), "totp-enroll.1 lacks {missing:?}");
    }

    #[test]
    fn the_page_describes_the_command_not_its_generator() {
        // clap's `about` is the compiling package's description: keep ours equal to
        // enroll-cli's, so the NAME line is the command's.
        let manifest = include_str!("../../../enroll-cli/Cargo.toml");
        let description = env!("CARGO_PKG_DESCRIPTION");
        assert!(
            manifest.contains(&format!("description = \"{description}\"")),
            "man/mangen/Cargo.toml's description must equal enroll-cli's"
        );
        assert!(page().contains(".TH totp-enroll 1"));
    }
}
