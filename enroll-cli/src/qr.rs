//! Drawing the Key URI as a QR code in the terminal.

use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};

/// Black on white whatever the terminal's theme, so phones read it on dark terminals too.
const BLACK_ON_WHITE: &str = "\x1b[30;107m";
const RESET: &str = "\x1b[0m";

/// The QR code as lines of Unicode half blocks with a quiet zone, or `None` when the
/// data does not fit in a QR code.
#[must_use]
pub fn terminal_lines(data: &str) -> Option<Vec<String>> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::L).ok()?;
    let drawn = code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Dark)
        .light_color(Dense1x2::Light)
        .quiet_zone(true)
        .build();
    Some(
        drawn
            .lines()
            .map(|line| format!("{BLACK_ON_WHITE}{line}{RESET}"))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_square_with_quiet_zone() {
        let lines = terminal_lines("otpauth://totp/x:y?secret=JBSWY3DPEHPK3PXP").unwrap();
        let width = lines[0].chars().count() - BLACK_ON_WHITE.len() - RESET.len();
        // Version 3 (29 modules) plus 4 quiet modules each side, two rows per line.
        assert!(width >= 29 + 8, "{width}");
        assert_eq!(lines.len(), width.div_ceil(2));
    }
}
