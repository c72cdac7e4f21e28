//! The Key URI as a QR code: in the terminal (Unicode half blocks), and as PNG or SVG
//! files for people who cannot scan a terminal.

use std::io::{self, Cursor, Write};
use std::path::Path;

use qrcode::render::svg;

/// Black on white whatever the terminal's theme, so phones read it on dark terminals too.
const BLACK_ON_WHITE: &str = "\x1b[30;107m";
const RESET: &str = "\x1b[0m";
/// Pixels per module in the PNG: big enough for any phone or `zbarimg`.
const PNG_MODULE_PIXELS: u32 = 8;

use pam_totp_core::qr::{Drawn, code, half_blocks_framed};
use pam_totp_os::trusted_file;

/// Modules of white around the terminal's QR code: half the standard's, which phones
/// read on a screen, and two lines fewer, so that the code and the prompt below it fit
/// a 24-line terminal.
const TERMINAL_QUIET_ZONE: usize = 2;

/// The QR code as lines of Unicode half blocks with a quiet zone, or `None` when the
/// data does not fit in a QR code.
#[must_use]
pub fn terminal_lines(data: &str) -> Option<Vec<String>> {
    Some(
        half_blocks_framed(data, Drawn::DarkModules, TERMINAL_QUIET_ZONE)?
            .into_iter()
            .map(|line| format!("{BLACK_ON_WHITE}{line}{RESET}"))
            .collect(),
    )
}

/// Columns the terminal drawing of `lines` takes (without the colour escapes).
#[must_use]
pub fn columns(lines: &[String]) -> usize {
    lines
        .first()
        .map_or(0, |l| l.chars().count() - BLACK_ON_WHITE.len() - RESET.len())
}

/// Writes the QR code of `data` as a PNG image to `path`.
///
/// # Errors
/// The data does not fit a QR code, or the file cannot be written.
pub fn write_png(data: &str, path: &Path) -> io::Result<()> {
    let image = code(data)
        .ok_or_else(too_long)?
        .render::<image::Luma<u8>>()
        .quiet_zone(true)
        .module_dimensions(PNG_MODULE_PIXELS, PNG_MODULE_PIXELS)
        .build();
    let mut bytes = Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, image::ImageFormat::Png)
        .map_err(io::Error::other)?;
    write_private(path, bytes.get_ref())
}

/// Writes the QR code of `data` as an SVG image to `path`.
///
/// # Errors
/// The data does not fit a QR code, or the file cannot be written.
pub fn write_svg(data: &str, path: &Path) -> io::Result<()> {
    let text = code(data)
        .ok_or_else(too_long)?
        .render::<svg::Color<'_>>()
        .quiet_zone(true)
        .min_dimensions(256, 256)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build();
    write_private(path, text.as_bytes())
}

fn too_long() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "the URI is too long for a QR code")
}

/// The image holds the secret: a new file, mode 0600 (see `pam_totp_os::trusted_file`); a
/// file left half-written is removed.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = trusted_file::create(None, path, 0o600)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if written.is_err() {
        let _ = std::fs::remove_file(path);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_square_with_quiet_zone() {
        let lines = terminal_lines("otpauth://totp/x:y?secret=JBSWY3DPEHPK3PXP").unwrap();
        let width = columns(&lines);
        // Version 3 (29 modules) plus 2 quiet modules each side, two rows per line.
        assert_eq!(width, 29 + 4);
        assert_eq!(lines.len(), width.div_ceil(2));
    }
}
