//! Reading answers from the person at the terminal.

use std::io::{self, BufRead, Read, Write};

use zeroize::Zeroizing;

/// Longest answer read; the rest of an overlong line is discarded.
const MAX_ANSWER_BYTES: u64 = 256;

/// Prints `prompt` and reads one line from standard input; `None` at end of input.
///
/// # Errors
/// Standard input could not be read.
pub fn ask(prompt: &str) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
    print!("{prompt}");
    io::stdout().flush()?;
    let stdin = io::stdin();
    let mut handle = stdin.lock();
    let mut line = Zeroizing::new(Vec::new());
    let read = (&mut handle)
        .take(MAX_ANSWER_BYTES)
        .read_until(b'\n', &mut line)?;
    if read == 0 {
        return Ok(None);
    }
    if !line.ends_with(b"\n") && read as u64 == MAX_ANSWER_BYTES {
        // Drain the overlong rest so it is not taken as the next answer.
        let mut rest = Zeroizing::new(Vec::new());
        handle.read_until(b'\n', &mut rest)?;
    }
    Ok(Some(line))
}

/// Width of the terminal on standard output; else `$COLUMNS`; else unknown (`None`),
/// e.g. when the output goes to a file or a pipe.
#[must_use]
pub fn columns() -> Option<usize> {
    if let Some((terminal_size::Width(width), _)) = terminal_size::terminal_size() {
        return Some(usize::from(width));
    }
    std::env::var("COLUMNS").ok()?.trim().parse().ok()
}

/// Height of the terminal on standard output; else `$LINES`; else unknown (`None`).
#[must_use]
pub fn rows() -> Option<usize> {
    if let Some((_, terminal_size::Height(height))) = terminal_size::terminal_size() {
        return Some(usize::from(height));
    }
    std::env::var("LINES").ok()?.trim().parse().ok()
}
