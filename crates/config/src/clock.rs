//! Time as records and configs write it: RFC 3339 UTC seconds (`created`) and calendar
//! dates (`enforce_after`). The calendar arithmetic is humantime's.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `2026-11-25T10:00:00Z` for a Unix time.
#[must_use]
pub fn rfc3339(unix: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix)).to_string()
}

/// [`rfc3339`] of now.
#[must_use]
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Unix time of 00:00 UTC on `YYYY-MM-DD`, or `None` when the text is not exactly such a
/// date, or not a real day of the Gregorian calendar from 1970 on.
#[must_use]
pub fn parse_date(text: &str) -> Option<u64> {
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shaped {
        return None;
    }
    let midnight = humantime::parse_rfc3339(&format!("{text}T00:00:00Z")).ok()?;
    midnight.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_seconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_799_971_200 + 3661), "2027-01-15T01:01:01Z");
        assert_eq!(rfc3339(1_709_164_800), "2024-02-29T00:00:00Z");
    }

    #[test]
    fn dates_are_midnight_utc() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2000-03-01"), Some(951_868_800));
        assert_eq!(parse_date("2027-01-15"), Some(1_799_971_200));
        assert_eq!(parse_date("2024-02-29"), Some(1_709_164_800));
    }

    #[test]
    fn impossible_or_sloppy_dates_are_refused() {
        for text in [
            "",
            "2027-1-15",
            "2027/01/15",
            "15-01-2027",
            "2027-13-01",
            "2027-00-10",
            "2027-02-29",
            "2100-02-29",
            "2027-04-31",
            "1969-12-31",
            "+027-01-15",
            "2027-01-15T00:00",
            "２０２７-01-15",
        ] {
            assert_eq!(parse_date(text), None, "{text}");
        }
    }
}
