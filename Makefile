# Entry points for people; cargo does the work.
#   make demo     a real SSH login with a code, on a throwaway sshd (root; touches no config)
#   make test     the whole test suite (as root: tests create a test user and load PAM)
#   make build    release build of pam_totp.so and totp-enroll

CARGO ?= cargo

.PHONY: build test lint demo

build:
	$(CARGO) build --release --workspace

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test: lint
	$(CARGO) build --workspace
	$(CARGO) test --workspace

demo:
	CARGO=$(CARGO) ./scripts/demo.sh
