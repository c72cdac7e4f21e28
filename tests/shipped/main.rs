//! What ships besides the code: the packages and `make install`, the man pages and
//! default config against the code, and the benchmark, which must keep working.

// Test helpers: a failed setup step should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod benchmark_runs;
mod documentation;
mod packages;
