//! Checking a typed code against a record: normalisation, the time window, and replay.
//!
//! The HMAC and the HOTP truncation are totp-rs's. What is ours is how the window is
//! searched: every step in it is computed and compared in constant time, with no early
//! exit, so neither the digit that differs nor the step that matched shows in timing.

use constant_time_eq::constant_time_eq;
use zeroize::Zeroizing;

use pam_totp_config::algorithm::Algorithm;

use crate::record::Record;

/// Longest reply we look at; anything longer is refused unread (it is no code).
pub const MAX_REPLY_BYTES: usize = 256;

/// A code as typed: ASCII digits only, of the record's length.
#[derive(PartialEq, Eq)]
pub struct TypedCode(Zeroizing<String>);

/// The digits are a `Zeroizing` string, so dropping a code wipes them.
impl zeroize::ZeroizeOnDrop for TypedCode {}

impl std::fmt::Debug for TypedCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TypedCode(redacted)")
    }
}

impl TypedCode {
    /// Normalises a reply: blanks around it and between digit groups (`123 456`, as
    /// authenticator apps show codes) are dropped; anything else but digits, or the
    /// wrong count of them, is not a code.
    #[must_use]
    pub fn parse(reply: &[u8], digits: u8) -> Option<TypedCode> {
        if reply.len() > MAX_REPLY_BYTES {
            return None;
        }
        let code: Zeroizing<String> = Zeroizing::new(
            reply
                .iter()
                .filter(|b| **b != b' ' && **b != b'\t' && **b != b'\n' && **b != b'\r')
                .map(|b| char::from(*b))
                .collect(),
        );
        let well_formed = code.len() == usize::from(digits) && code.bytes().all(|b| b.is_ascii_digit());
        well_formed.then_some(TypedCode(code))
    }
}

/// The result of checking one code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid for `step`, which is newer than the last accepted one.
    Accepted { step: u64 },
    /// Valid, but for a step already used: a replay.
    Replayed,
    /// Not valid in the window.
    Invalid,
}

/// Checks `code` for the steps `window` either side of `now`, refusing (as a replay)
/// any step that starts before `used_until`, a Unix time (see [`step_end`]).
#[must_use]
pub fn check(record: &Record, code: &TypedCode, now: u64, window: u8, used_until: u64) -> Verdict {
    let totp = generator(record);
    // The first step starting at or after `used_until`, whatever the period.
    let first_fresh = used_until.div_ceil(record.period);
    search_window(now / record.period, window, first_fresh, code, |step| {
        Zeroizing::new(totp.generate(step.saturating_mul(record.period)).to_string())
    })
}

/// For a code [`check`] found invalid: the offset in seconds (the matching step's start
/// minus the current step's; positive: the code is ahead) of a step within `reach`
/// seconds of `now` but outside the window, not used yet; `None` if none matches. Every
/// such step is computed and compared, as in the window (the nearest match wins).
#[must_use]
pub fn clock_offset(
    record: &Record,
    code: &TypedCode,
    now: u64,
    window: u8,
    used_until: u64,
    reach: u64,
) -> Option<i64> {
    let totp = generator(record);
    let period = record.period;
    let current = now / period;
    let steps = (reach / period).max(u64::from(window));
    let first_fresh = used_until.div_ceil(period);
    let mut nearest: Option<u64> = None;
    let outside = (current.saturating_sub(steps)..current.saturating_sub(u64::from(window)))
        .chain(current.saturating_add(u64::from(window)).saturating_add(1)..=current.saturating_add(steps));
    for step in outside {
        let expected = Zeroizing::new(totp.generate(step.saturating_mul(period)).to_string());
        let matches = constant_time_eq(expected.as_bytes(), code.0.as_bytes());
        if matches
            && step >= first_fresh
            && nearest.is_none_or(|n| step.abs_diff(current) < n.abs_diff(current))
        {
            nearest = Some(step);
        }
    }
    let seconds = |steps: u64| i64::try_from(steps.saturating_mul(period)).unwrap_or(i64::MAX);
    nearest.map(|step| {
        if step > current {
            seconds(step - current)
        } else {
            -seconds(current - step)
        }
    })
}

/// totp-rs's generator for `record`'s secret and parameters.
fn generator(record: &Record) -> totp_rs::Totp {
    totp_rs::Builder::new()
        .with_algorithm(hmac(record.algorithm))
        .with_digits(record.digits)
        .with_step_duration(record.period)
        .with_secret(record.secret.as_bytes().to_vec())
        .build_noncompliant()
}

/// totp-rs's name of the same algorithm.
fn hmac(algorithm: Algorithm) -> totp_rs::Algorithm {
    match algorithm {
        Algorithm::Sha1 => totp_rs::Algorithm::SHA1,
        Algorithm::Sha256 => totp_rs::Algorithm::SHA256,
        Algorithm::Sha512 => totp_rs::Algorithm::SHA512,
    }
}

/// The Unix time at which `step` of `period` seconds ends: what an accepted step leaves
/// as the state's `used_until`.
#[must_use]
pub fn step_end(step: u64, period: u64) -> u64 {
    step.saturating_add(1).saturating_mul(period)
}

/// The window search proper, over `expected_at(step)`: every step from `current - window`
/// to `current + window` is computed and compared, whatever matched before it; steps
/// before `first_fresh` are replays.
fn search_window(
    current: u64,
    window: u8,
    first_fresh: u64,
    code: &TypedCode,
    mut expected_at: impl FnMut(u64) -> Zeroizing<String>,
) -> Verdict {
    let mut fresh: Option<u64> = None;
    let mut replayed = false;
    for step in current.saturating_sub(u64::from(window))..=current.saturating_add(u64::from(window)) {
        let expected = expected_at(step);
        let matches = constant_time_eq(expected.as_bytes(), code.0.as_bytes());
        // Both branches do the same work; only the bookkeeping differs.
        if matches && step >= first_fresh {
            fresh = Some(step);
        } else if matches {
            replayed = true;
        }
    }
    match (fresh, replayed) {
        (Some(step), _) => Verdict::Accepted { step },
        (None, true) => Verdict::Replayed,
        (None, false) => Verdict::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretKey;
    use pam_totp_config::algorithm::Algorithm;

    /// RFC 6238 appendix B: the seeds are ASCII "1234567890" repeated to the hash size.
    fn rfc_record(algorithm: Algorithm) -> Record {
        let seed: &[u8] = match algorithm {
            Algorithm::Sha1 => b"12345678901234567890",
            Algorithm::Sha256 => b"12345678901234567890123456789012",
            Algorithm::Sha512 => b"1234567890123456789012345678901234567890123456789012345678901234",
        };
        Record::new(
            SecretKey::from_bytes(seed.to_vec()).unwrap(),
            algorithm,
            8,
            30,
            String::new(),
        )
    }

    fn code(text: &str, digits: u8) -> TypedCode {
        TypedCode::parse(text.as_bytes(), digits).unwrap()
    }

    #[test]
    fn rfc6238_appendix_b_vectors() {
        let vectors: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ];
        for (time, sha1, sha256, sha512) in vectors {
            for (algorithm, expected) in [
                (Algorithm::Sha1, sha1),
                (Algorithm::Sha256, sha256),
                (Algorithm::Sha512, sha512),
            ] {
                let verdict = check(&rfc_record(algorithm), &code(expected, 8), time, 0, 0);
                assert_eq!(
                    verdict,
                    Verdict::Accepted { step: time / 30 },
                    "{algorithm} at {time}"
                );
            }
        }
    }

    #[test]
    fn window_accepts_neighbouring_steps_only() {
        let record = rfc_record(Algorithm::Sha1);
        // 94287082 is the code of step 1 (t = 30..59).
        let c = code("94287082", 8);
        assert_eq!(check(&record, &c, 89, 1, 0), Verdict::Accepted { step: 1 });
        assert_eq!(check(&record, &c, 0, 1, 0), Verdict::Accepted { step: 1 });
        assert_eq!(check(&record, &c, 89, 0, 0), Verdict::Invalid);
        assert_eq!(check(&record, &c, 120, 1, 0), Verdict::Invalid);
    }

    #[test]
    fn a_code_near_the_window_gives_its_offset_and_one_inside_or_far_gives_none() {
        let record = rfc_record(Algorithm::Sha1);
        // 94287082 is step 1; at t = 300 (step 10) it is 9 steps (270 s) behind.
        let c = code("94287082", 8);
        assert_eq!(check(&record, &c, 300, 1, 0), Verdict::Invalid);
        assert_eq!(clock_offset(&record, &c, 300, 1, 0, 600), Some(-270));
        // Ahead: step 1 seen from step 0 with no window.
        assert_eq!(clock_offset(&record, &c, 0, 0, 0, 600), Some(30));
        // Beyond the reach, or a step already used: nothing.
        assert_eq!(clock_offset(&record, &c, 30 * 30, 1, 0, 600), None);
        assert_eq!(clock_offset(&record, &c, 300, 1, 60, 600), None);
        // Inside the window it is check's, not this one's.
        assert_eq!(clock_offset(&record, &c, 60, 1, 0, 600), None);
    }

    #[test]
    fn a_used_step_is_a_replay() {
        let record = rfc_record(Algorithm::Sha1);
        let c = code("94287082", 8);
        // Step 1 is t = 30..59: used up until 60, or until any later time.
        assert_eq!(check(&record, &c, 59, 1, 60), Verdict::Replayed);
        assert_eq!(check(&record, &c, 59, 1, 150), Verdict::Replayed);
        assert_eq!(check(&record, &c, 59, 1, 30), Verdict::Accepted { step: 1 });
    }

    /// The code of `record` at Unix time `time`.
    fn code_at(record: &Record, time: u64) -> TypedCode {
        code(&generator(record).generate(time).to_string(), record.digits)
    }

    #[test]
    fn used_until_keeps_its_meaning_when_the_period_changes() {
        let thirty = rfc_record(Algorithm::Sha1);
        let ten = Record {
            period: 10,
            ..rfc_record(Algorithm::Sha1)
        };
        // 10 -> 30: step 1 of 10 s (t = 10..19) used, so until 20; the 30 s step 1
        // (t = 30..59) is fresh, its step 0 (t = 0..29) began before 20.
        let used = step_end(1, 10);
        assert_eq!(
            check(&thirty, &code_at(&thirty, 45), 45, 0, used),
            Verdict::Accepted { step: 1 }
        );
        assert_eq!(
            check(&thirty, &code_at(&thirty, 5), 5, 0, used),
            Verdict::Replayed
        );
        // 30 -> 10: step 1 of 30 s (t = 30..59) used, until 60; 10 s step 5 (t = 50..59)
        // is a replay, step 6 (t = 60..69) fresh: at most one old period of waiting.
        let used = step_end(1, 30);
        assert_eq!(check(&ten, &code_at(&ten, 55), 55, 0, used), Verdict::Replayed);
        assert_eq!(
            check(&ten, &code_at(&ten, 65), 65, 0, used),
            Verdict::Accepted { step: 6 }
        );
    }

    #[test]
    fn replies_are_normalised_or_refused() {
        assert!(TypedCode::parse(b" 123456\n", 6).is_some());
        assert!(TypedCode::parse(b"123 456", 6).is_some());
        for bad in [
            &b"12345"[..],
            b"1234567",
            b"12345a",
            b"",
            b"123\x00456",
            b"\xff\xfe\xfd\xfc\xfb\xfa",
            b"+12345",
            b"-12345",
        ] {
            assert!(TypedCode::parse(bad, 6).is_none(), "{bad:?}");
        }
        assert!(TypedCode::parse(&[b'1'; 10_000], 6).is_none());
    }

    #[test]
    fn every_step_of_the_window_is_computed_and_compared_whatever_matches() {
        let expected = "123456";
        // Right, first digit wrong, last digit wrong, all wrong.
        for typed in ["123456", "923456", "123459", "000000"] {
            for matching in [None, Some(97), Some(100), Some(103)] {
                let mut computed = Vec::new();
                let verdict = search_window(100, 3, 1, &code(typed, 6), |step| {
                    computed.push(step);
                    let text = if Some(step) == matching {
                        expected
                    } else {
                        "654321"
                    };
                    Zeroizing::new(text.to_owned())
                });
                assert_eq!(
                    computed,
                    (97..=103).collect::<Vec<_>>(),
                    "typed {typed}, match at {matching:?}: no early exit"
                );
                let accepted = matching.filter(|_| typed == expected);
                assert_eq!(
                    verdict,
                    accepted.map_or(Verdict::Invalid, |step| Verdict::Accepted { step })
                );
            }
        }
    }

    #[test]
    fn a_window_at_the_epoch_or_the_end_of_time_does_not_overflow() {
        for current in [0, 1, u64::MAX - 1, u64::MAX] {
            let mut count = 0;
            let _ = search_window(current, 10, 0, &code("123456", 6), |_| {
                count += 1;
                Zeroizing::new(String::new())
            });
            assert!((11..=21).contains(&count), "{current}: {count}");
        }
    }

    #[test]
    fn typed_codes_are_wiped_on_drop() {
        // A compile-time guard: replacing the `Zeroizing` string breaks this test.
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        wiped_on_drop::<TypedCode>();
    }

    #[test]
    fn debug_hides_the_code() {
        assert_eq!(format!("{:?}", code("123456", 6)), "TypedCode(redacted)");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            // 256 cases in `cargo test`; `make fuzz` (run by `make test`) sets PROPTEST_CASES.
            #![proptest_config(ProptestConfig::default())]

            #[test]
            fn any_reply_is_a_code_only_if_it_is_the_right_number_of_digits(
                reply in proptest::collection::vec(any::<u8>(), 0..300),
                digits in 6u8..=8,
            ) {
                if let Some(code) = TypedCode::parse(&reply, digits) {
                    prop_assert_eq!(code.0.len(), usize::from(digits));
                    prop_assert!(code.0.bytes().all(|b| b.is_ascii_digit()));
                }
            }

            #[test]
            fn digits_with_blanks_around_or_between_are_a_code(
                code in "[0-9]{6}",
                before in "[ \t]{0,3}",
                between in "[ ]{0,1}",
                after in "[ \t\r\n]{0,3}",
            ) {
                let reply = format!("{before}{}{between}{}{after}", &code[..3], &code[3..]);
                prop_assert!(TypedCode::parse(reply.as_bytes(), 6).is_some());
            }

            #[test]
            fn any_code_checks_without_panic(code in "[0-9]{6,8}", now in any::<u64>(), window in 0u8..=10, used_until in any::<u64>()) {
                let record = rfc_record(Algorithm::Sha1);
                if let Some(typed) = TypedCode::parse(code.as_bytes(), 8) {
                    let _ = check(&record, &typed, now, window, used_until);
                }
            }
        }
    }
}
