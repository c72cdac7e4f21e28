//! Latency samples and their summary.

use std::time::Duration;

/// Median and 99th percentile of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub samples: usize,
    /// Logins that did not end as the scenario expects.
    pub unexpected: usize,
    pub median: Duration,
    pub p99: Duration,
    /// Mean minor page faults per login (`getrusage`), where counted.
    pub faults: Option<f64>,
}

impl Summary {
    /// Summarises `samples`; `None` when there are none.
    #[must_use]
    pub fn of(mut samples: Vec<Duration>, unexpected: usize) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let at = |q: f64| {
            // Nearest-rank percentile.
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[rank - 1]
        };
        Some(Summary {
            samples: samples.len(),
            unexpected,
            median: at(0.5),
            p99: at(0.99),
            faults: None,
        })
    }
}

/// `1234.5 µs` style, for tables.
#[must_use]
pub fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p99_by_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        let s = Summary::of(samples, 0).unwrap();
        assert_eq!(
            (s.samples, s.median, s.p99),
            (100, Duration::from_micros(50), Duration::from_micros(99))
        );
        assert_eq!(Summary::of(Vec::new(), 0), None);
    }
}
