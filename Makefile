# Entry points for people; cargo does the work.
#   make demo     a real SSH login with a code, on a throwaway sshd (root; touches no config)
#   make test     the whole test suite (as root: tests load PAM; their users exist only in
#                 a private user database, testkit/run-hermetic)
#   make build    release build of pam_totp.so, pam_totp_db.so and totp-enroll
#   make install  (as root, after `make`) module, command, man pages, config, pam.d examples
#   make deb rpm  packages in target/packages/ (packaging/README.md)
#   make bench    (as root, quiet machine) the side-by-side benchmark of BENCHMARKS.md
#   make bench-postgres  (as root) the PostgreSQL store's load run, on a throwaway cluster
#   make bench-postgres-pgbouncer  the same through a host-local PgBouncer
#   make fuzz     the parsers' property tests with many more cases (part of make test)

CARGO ?= cargo

# make install: DESTDIR stages (packages), PREFIX places the command, man pages and docs.
# PAMDIR is where libpam loads modules from (packaging/pamdir finds pam_unix.so's
# directory), whatever PREFIX is; the config is always /etc/security/pam_totp.toml,
# the path the module reads.
DESTDIR ?=
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/pam_totp
SYSCONFDIR ?= /etc
# The login state (pam_totp.toml's state_dir) and a system store's records: made by
# install, never by the module at login (on SELinux hosts only these get their labels).
STATEDIR ?= /var/lib/pam_totp
PAMDIR ?= $(shell sh packaging/pamdir)

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
PACKAGES := target/packages

# Cases per property in `make fuzz`: well under a minute in all on two busy cores.
FUZZ_CASES ?= 5000

# Two modules, two cdylib crates (ARCHITECTURE.md, "Two modules"): pam_totp.so
# (crates/pam_totp: the file store, no database client), what a file-store login loads;
# and pam_totp_db.so (crates/pam_totp_db: both stores), to which pam_totp.so hands a
# login when the config says store = "postgres". One workspace build makes both.

.PHONY: build test lint
.PHONY: man install uninstall deb rpm packages selinux selinux-install selinux-check
.PHONY: bench bench-postgres bench-postgres-pgbouncer demo fuzz

build:
	$(CARGO) build --release --workspace
	$(MAKE) man

# totp-enroll(1) is generated from the command's clap definition (man/mangen);
# pam_totp(8) and pam_totp.toml(5) are in man/, checked against the code by tests.
man:
	mkdir -p target/man
	target/release/totp-enroll-man >target/man/totp-enroll.1.tmp
	mv target/man/totp-enroll.1.tmp target/man/totp-enroll.1

# Copies what `make build` made; it does not build, so root needs no Rust toolchain.
install:
	@for f in target/release/libpam_totp.so target/release/libpam_totp_db.so target/release/totp-enroll target/man/totp-enroll.1; do \
	    test -f $$f || { echo "make install: $$f is missing; run make first" >&2; exit 1; }; done
	@test -n "$(PAMDIR)" || { echo "make install: PAM module directory not found; give PAMDIR=" >&2; exit 1; }
	install -d $(DESTDIR)$(PAMDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSCONFDIR)/security
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -d $(DESTDIR)$(DOCDIR)/pam.d/sshd_config.d
	install -d -m 0700 $(DESTDIR)$(STATEDIR) $(DESTDIR)$(STATEDIR)/records
	install -m 0644 target/release/libpam_totp.so $(DESTDIR)$(PAMDIR)/pam_totp.so
	install -m 0644 target/release/libpam_totp_db.so $(DESTDIR)$(PAMDIR)/pam_totp_db.so
	install -m 0755 target/release/totp-enroll $(DESTDIR)$(BINDIR)/totp-enroll
	install -m 0644 target/man/totp-enroll.1 $(DESTDIR)$(MANDIR)/man1/totp-enroll.1
	install -m 0644 man/pam_totp.toml.5 $(DESTDIR)$(MANDIR)/man5/pam_totp.toml.5
	install -m 0644 man/pam_totp.8 $(DESTDIR)$(MANDIR)/man8/pam_totp.8
	install -m 0644 $$(find pam.d -maxdepth 1 -type f) $(DESTDIR)$(DOCDIR)/pam.d/
	install -m 0644 pam.d/sshd_config.d/* $(DESTDIR)$(DOCDIR)/pam.d/sshd_config.d/
	@# An existing config is the admin's: never overwritten.
	if [ -e $(DESTDIR)$(SYSCONFDIR)/security/pam_totp.toml ]; then \
	    echo "keeping $(DESTDIR)$(SYSCONFDIR)/security/pam_totp.toml"; \
	else \
	    install -m 0644 packaging/pam_totp.toml $(DESTDIR)$(SYSCONFDIR)/security/pam_totp.toml; \
	fi
	@# On an SELinux host with the policy module loaded (make selinux-install): its labels.
	@if [ -z "$(DESTDIR)" ] && command -v selinuxenabled >/dev/null && selinuxenabled; then \
	    restorecon -R $(STATEDIR); fi
	@echo "installed; nothing in /etc/pam.d or sshd_config was changed (see pam_totp(8))"

# Removes what install put there but the config (the admin's) and login state.
uninstall:
	@test -n "$(PAMDIR)" || { echo "make uninstall: PAM module directory not found; give PAMDIR=" >&2; exit 1; }
	rm -f $(DESTDIR)$(PAMDIR)/pam_totp.so $(DESTDIR)$(PAMDIR)/pam_totp_db.so $(DESTDIR)$(BINDIR)/totp-enroll
	rm -f $(DESTDIR)$(MANDIR)/man1/totp-enroll.1 $(DESTDIR)$(MANDIR)/man5/pam_totp.toml.5
	rm -f $(DESTDIR)$(MANDIR)/man8/pam_totp.8
	for f in $$(find pam.d -type f); do rm -f $(DESTDIR)$(DOCDIR)/$$f; done
	-rmdir $(DESTDIR)$(DOCDIR)/pam.d/sshd_config.d $(DESTDIR)$(DOCDIR)/pam.d $(DESTDIR)$(DOCDIR)
	@echo "kept $(DESTDIR)$(SYSCONFDIR)/security/pam_totp.toml and the login state ($(STATEDIR)); remove them by hand"

# The SELinux policy module (README, "RHEL and SELinux"), on a RHEL/Fedora host with
# selinux-policy-devel; the .rpm's pam_totp-selinux subpackage does the same for you.
selinux:
	rm -rf target/selinux && mkdir -p target/selinux
	cp packaging/selinux/pam_totp.te packaging/selinux/pam_totp.if packaging/selinux/pam_totp.fc target/selinux/
	$(MAKE) -C target/selinux -f /usr/share/selinux/devel/Makefile pam_totp.pp

selinux-install: selinux
	semodule -i target/selinux/pam_totp.pp
	restorecon -iR $(STATEDIR) /root/.pam_totp $$(ls -d /home/*/.pam_totp 2>/dev/null)

# Packages from a staged `make install` (packaging/README.md says why not cargo-deb or
# cargo-generate-rpm): dpkg-deb and rpmbuild only.
deb: build
	rm -rf $(PACKAGES)/deb-root
	$(MAKE) install DESTDIR=$(PACKAGES)/deb-root PREFIX=/usr \
	    PAMDIR=/usr/lib/$$(dpkg-architecture -qDEB_HOST_MULTIARCH)/security \
	    DOCDIR=/usr/share/doc/libpam-totp
	sh packaging/build-deb $(PACKAGES)/deb-root $(PACKAGES) $(VERSION)

rpm: build
	rm -rf $(PACKAGES)/rpm-root
	$(MAKE) install DESTDIR=$(PACKAGES)/rpm-root PREFIX=/usr PAMDIR=/usr/lib64/security
	sh packaging/build-rpm $(PACKAGES)/rpm-root $(PACKAGES) $(VERSION)

packages: deb rpm

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The packages are built before the tests that install and inspect them (tests/shipped/packages.rs);
# target/panic-test: the module with its test-only panic switch (tests/panic.rs), built
# apart so that no other build ever holds it. cargo runs every test binary through
# testkit/run-hermetic (.cargo/config.toml): a private mount namespace with a user database
# and /home of its own, so the suite neither reads nor changes the host's users.
# --no-fail-fast: every test binary runs, so one failing area does not hide another's.
test: lint
	$(CARGO) build --workspace
	$(CARGO) build -p pam_totp --features panic-test --target-dir target/panic-test
	$(MAKE) packages
	$(CARGO) test --workspace --no-fail-fast
	$(MAKE) fuzz
	@$(MAKE) -s selinux-check

# tests/selinux_policy.rs needs the RHEL 9 policy sources: without them it returns, and
# this says so plainly (CI exports SELINUX_POLICY_REQUIRED=1, so there it fails instead).
SELINUX_POLICY_SOURCES ?= ../shared/selinux
export SELINUX_POLICY_SOURCES
selinux-check:
	@if [ ! -e "$(SELINUX_POLICY_SOURCES)/selinux-policy-c9s.tar.xz" ] && [ ! -f "$(SELINUX_POLICY_SOURCES)" ]; then \
	    echo "*** The SELinux policy check (tests/selinux_policy.rs) was NOT run: no policy sources at"; \
	    echo "*** $(SELINUX_POLICY_SOURCES). Get selinux-policy-c9s.tar.xz (fedora-selinux/selinux-policy branch c9s,"; \
	    echo "*** commit 73a2d29, + container-selinux 66ae652: ../shared/selinux/README.md) and set"; \
	    echo "*** SELINUX_POLICY_SOURCES=/path/to/it."; \
	else echo "SELinux policy check ran against $(SELINUX_POLICY_SOURCES)"; fi

# Record, state, config and typed-code parsers (the `properties` modules) on random
# input; a failing case is saved under proptest-regressions/: commit it.
fuzz:
	PROPTEST_CASES=$(FUZZ_CASES) $(CARGO) test -p pam_totp_config -p pam_totp_core -p pam_totp_store_file --lib properties

# Several minutes; prints the report and keeps it in target/bench.md. Not part of `test`.
# Unlike the tests, it adds its users (ptbench*) to the host's user database, and removes
# them at the end; `make demo` does the same with pamtotp-demo.
# It times pam_totp.so (the file-store module; pam-bench's default --module).
bench:
	$(CARGO) build --release -p pam_totp -p pam-bench
	target/release/pam-bench --out target/bench.md

# A throwaway cluster on 127.0.0.1:$(PG_PORT), pg-load against it, its ptpg* users
# removed and the cluster stopped and removed whatever the outcome. It loads pam_totp_db.so (target/release/
# libpam_totp_db.so) directly: what it measures is the database, not the hand-over. PG_LOAD_ARGS e.g. "--logins 20000".
PG_PORT ?= 55432
PG_DIR := $(CURDIR)/target/pg-cluster
PG_LOAD_ARGS ?=
bench-postgres:
	$(CARGO) build --release -p pam_totp_db -p pam-bench
	sh scripts/pg-cluster.sh start $(PG_DIR) $(PG_PORT)
	target/release/pg-load \
	    --admin "host=$(PG_DIR) port=$(PG_PORT) user=totp_admin dbname=totp sslmode=disable" \
	    --host "host=127.0.0.1 port=$(PG_PORT) user=totp_host dbname=totp sslmode=disable passfile=$(PG_DIR).pass" \
	    $(PG_LOAD_ARGS); \
	status=$$?; target/release/pg-load --cleanup; sh scripts/pg-cluster.sh stop $(PG_DIR); exit $$status

# The same run through a host-local PgBouncer (scripts/pg-bouncer.sh: the shipped
# packaging/pgbouncer/ config): the module connects to its unix socket as root (peer),
# PgBouncer pools the host role's connections to the cluster.
PG_BOUNCER_DIR := $(CURDIR)/target/pg-bouncer
bench-postgres-pgbouncer:
	$(CARGO) build --release -p pam_totp_db -p pam-bench
	sh scripts/pg-cluster.sh start $(PG_DIR) $(PG_PORT)
	sh scripts/pg-bouncer.sh start $(PG_BOUNCER_DIR) $(PG_PORT) $(PG_DIR).pass && \
	target/release/pg-load \
	    --admin "host=$(PG_DIR) port=$(PG_PORT) user=totp_admin dbname=totp sslmode=disable" \
	    --host "host=$(PG_BOUNCER_DIR) port=6432 user=root dbname=totp sslmode=disable" \
	    --host-role totp_host --pooler-pidfile $(PG_BOUNCER_DIR)/pgbouncer.pid \
	    $(PG_LOAD_ARGS); \
	status=$$?; target/release/pg-load --cleanup; sh scripts/pg-bouncer.sh stop $(PG_BOUNCER_DIR); \
	sh scripts/pg-cluster.sh stop $(PG_DIR); exit $$status

demo:
	CARGO=$(CARGO) ./scripts/demo.sh
