# Entry points for people; cargo does the work.
#   make test     the whole test suite (as root: tests create a test user and load PAM)
#   make build    release build of pam_totp.so and totp-enroll

CARGO ?= cargo

.PHONY: build test lint

build:
	$(CARGO) build --release --workspace

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test: lint
	$(CARGO) build --workspace
	# The module with its test-only panic switch (tests/panic.rs), built apart so no
	# other build ever holds it.
	$(CARGO) build -p pam_totp --lib --features panic-test --target-dir target/panic-test
	$(CARGO) test --workspace
