//! QR codes as lines of Unicode half blocks (two rows of modules per line), with the
//! quiet zone: drawn by `totp-enroll` in a terminal and by the module at enrollment at
//! first login. The encoder is the `qrcode` crate's.

#![forbid(unsafe_code)]

use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};

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

/// The QR code of `data` as lines of half blocks, or `None` when it does not fit.
#[must_use]
pub fn half_blocks(data: &str, drawn: Drawn) -> Option<Vec<String>> {
    let (dark, light) = match drawn {
        Drawn::DarkModules => (Dense1x2::Dark, Dense1x2::Light),
        Drawn::LightModules => (Dense1x2::Light, Dense1x2::Dark),
    };
    let text = code(data)?
        .render::<Dense1x2>()
        .dark_color(dark)
        .light_color(light)
        .quiet_zone(true)
        .build();
    Some(text.lines().map(str::to_owned).collect())
}
