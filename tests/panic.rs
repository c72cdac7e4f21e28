//! A panic inside the module becomes a failed login, never an abort of the host
//! process: shown through real libpam with a test-only build of the module whose
//! `test_panic` argument panics (feature `panic-test`, built by `make test` into
//! `target/panic-test`; no other build holds it).
//!
//! A test binary of its own: should the guard ever fail, the abort takes down only
//! this binary, and the failure is plainly this one.

// Test helpers: a failed setup step should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

use pam_client::{ABORT, SUCCESS, SYSTEM_ERR};
use testkit::{Fixture, ModuleBuild, SECRET, module, oathtool, settle_in_step};

const PANIC_MESSAGE: &[u8] = b"panic forced by the test_panic argument";

fn panic_build() -> PathBuf {
    module(ModuleBuild::PanicTest)
}

#[test]
fn a_panic_in_the_module_is_a_failed_login_and_the_host_lives_on() {
    let fixture = Fixture::new("", "test_panic");
    fixture.provision(SECRET);
    std::fs::copy(panic_build(), fixture.path("pam_totp.so")).expect("install the panic build");
    settle_in_step(3);
    let code = oathtool(SECRET, 0);
    for _ in 0..3 {
        let transcript = fixture.login(&code);
        assert_eq!(transcript.status, ABORT, "{transcript:?}");
    }
    // Still here, and the same process can go on logging people in.
    fixture.set_args("");
    assert_eq!(fixture.login(&code).status, SUCCESS);
}

#[test]
fn the_normal_build_has_no_panic_switch() {
    let module = module(ModuleBuild::Workspace);
    let bytes = std::fs::read(&module).expect("read the module");
    assert!(
        !bytes.windows(PANIC_MESSAGE.len()).any(|w| w == PANIC_MESSAGE),
        "{} holds the test-only panic",
        module.display()
    );
    let panic_bytes = std::fs::read(panic_build()).expect("panic build");
    assert!(
        panic_bytes
            .windows(PANIC_MESSAGE.len())
            .any(|w| w == PANIC_MESSAGE),
        "the search above would find it"
    );
    // In the normal build, `test_panic` is just an unknown argument: fail closed.
    let fixture = Fixture::new("", "test_panic");
    fixture.provision(SECRET);
    assert_eq!(fixture.login("123456").status, SYSTEM_ERR);
}
