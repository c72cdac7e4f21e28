//! Links the unwinder statically into the module.
//!
//! Rust's unwinder (needed to catch panics at the FFI boundary) normally comes from
//! `libgcc_s.so.1`, which sshd does not otherwise load: every login then pays for the
//! dynamic loader mapping and relocating it when the module is loaded, and unmapping it
//! when PAM unloads the module. Linking GCC's static unwinder (`libgcc_eh.a`, the same
//! code `gcc -static-libgcc` puts into shared objects) ahead of `-lgcc_s` resolves those
//! symbols inside the module, and `--as-needed` then drops `libgcc_s.so.1` from it.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let output = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".to_owned()))
        .arg("-print-file-name=libgcc_eh.a")
        .output();
    let Ok(output) = output else {
        println!("cargo:warning=no C compiler to find libgcc_eh.a; the module will need libgcc_s.so.1");
        return;
    };
    let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let Some(dir) = Path::new(&path)
        .parent()
        .filter(|_| Path::new(&path).is_absolute())
    else {
        println!("cargo:warning=libgcc_eh.a not found; the module will need libgcc_s.so.1");
        return;
    };
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
}
