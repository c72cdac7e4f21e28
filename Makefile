# Entry points for people; cargo does the work.
#   make test     the whole test suite (as root: tests create a test user and load PAM)
#   make build    release build of pam_totp.so and totp-enroll
#   make fuzz     the parsers' property tests with many more cases (part of make test)

CARGO ?= cargo

# Cases per property in `make fuzz`: well under a minute in all on two busy cores.
FUZZ_CASES ?= 5000

.PHONY: build test lint fuzz

build:
	$(CARGO) build --release --workspace

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# target/panic-test: the module with its test-only panic switch (tests/panic.rs), built
# apart so that no other build ever holds it.
test: lint
	$(CARGO) build --workspace
	$(CARGO) build -p pam_totp --lib --features panic-test --target-dir target/panic-test
	$(CARGO) test --workspace
	$(MAKE) fuzz

# Record, state, config and typed-code parsers (the `properties` modules) on random
# input; a failing case is saved under proptest-regressions/: commit it.
fuzz:
	PROPTEST_CASES=$(FUZZ_CASES) $(CARGO) test -p pam_totp --lib properties
