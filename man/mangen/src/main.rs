//! Writes `totp-enroll(1)` to standard output (`make man` puts it in `target/man/`).

#![forbid(unsafe_code)]

use std::io::{self, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut page = Vec::new();
    let written = totp_enroll_man::render(&mut page).and_then(|()| io::stdout().write_all(&page));
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("totp-enroll-man: {e}");
            ExitCode::FAILURE
        }
    }
}
