//! QR codes as lines of Unicode half blocks (two rows of modules per line), with the
//! quiet zone: drawn by `totp-enroll` in a terminal and by the module at enrollment at
//! first login. The encoder is the `qrcode` crate's.

use qrcode::{Color, EcLevel, QrCode};

/// The quiet zone the QR code standard asks for, in modules on each side.
pub const STANDARD_QUIET_ZONE: usize = 4;

/// Which modules are drawn as blocks (the rest is left blank).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drawn {
    /// Dark modules: right on a light background (the command forces black on white).
    DarkModules,
    /// Light modules: right on the usual dark-background terminal, with no colour
    /// escapes (ssh clients print escapes from PAM messages as text).
    LightModules,
}

/// The QR code of `data`, or `None` when it does not fit in a QR code.
#[must_use]
pub fn code(data: &str) -> Option<QrCode> {
    QrCode::with_error_correction_level(data.as_bytes(), EcLevel::L).ok()
}

/// The QR code of `data` as lines of half blocks with the standard quiet zone, or
/// `None` when it does not fit.
#[must_use]
pub fn half_blocks(data: &str, drawn: Drawn) -> Option<Vec<String>> {
    half_blocks_framed(data, drawn, STANDARD_QUIET_ZONE)
}

/// As [`half_blocks`], with `quiet_zone` modules of margin on each side (phones read
/// codes on a screen with less than the standard's four; each two save a line).
#[must_use]
pub fn half_blocks_framed(data: &str, drawn: Drawn, quiet_zone: usize) -> Option<Vec<String>> {
    let code = code(data)?;
    let width = code.width();
    let colors = code.to_colors();
    let side = width + 2 * quiet_zone;
    // Outside the code (the quiet zone) modules are light; past the last row, nothing.
    let is_drawn = |x: usize, y: usize| {
        if y >= side {
            return false;
        }
        let dark = x >= quiet_zone
            && y >= quiet_zone
            && x - quiet_zone < width
            && y - quiet_zone < width
            && colors[(y - quiet_zone) * width + (x - quiet_zone)] == Color::Dark;
        dark == (drawn == Drawn::DarkModules)
    };
    let lines = (0..side)
        .step_by(2)
        .map(|top| {
            (0..side)
                .map(|x| match (is_drawn(x, top), is_drawn(x, top + 1)) {
                    (true, true) => '\u{2588}',
                    (true, false) => '\u{2580}',
                    (false, true) => '\u{2584}',
                    (false, false) => ' ',
                })
                .collect()
        })
        .collect();
    Some(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_line_is_two_rows_of_modules_with_the_quiet_zone_asked() {
        let data = "otpauth://totp/x:y?secret=JBSWY3DPEHPK3PXP";
        let width = code(data).unwrap().width();
        for quiet_zone in [STANDARD_QUIET_ZONE, 2] {
            let lines = half_blocks_framed(data, Drawn::DarkModules, quiet_zone).unwrap();
            let side = width + 2 * quiet_zone;
            assert_eq!(lines.len(), side.div_ceil(2));
            assert!(lines.iter().all(|l| l.chars().count() == side));
            // The first line is the quiet zone alone; the finder pattern's top edge
            // (seven dark modules) starts right after the margin on the next.
            assert!(lines[0].chars().all(|c| c == ' ') || quiet_zone < 2);
            let finder: String = lines[quiet_zone / 2].chars().skip(quiet_zone).take(7).collect();
            assert!(finder.chars().all(|c| c != ' '), "{finder:?}");
        }
    }
}
