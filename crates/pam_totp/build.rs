//! Links the unwinder statically into the module.
//!
//! Rust's unwinder (needed to catch panics at the FFI boundary) normally comes from
//! `libgcc_s.so.1`, which sshd does not otherwise load: every login then pays for the
//! dynamic loader mapping and relocating it when the module is loaded, and unmapping it
//! when PAM unloads the module. Linking GCC's static unwinder (`libgcc_eh.a`, the same
//! code `gcc -static-libgcc` puts into shared objects) ahead of `-lgcc_s` resolves those
//! symbols inside the module, and `--as-needed` then drops `libgcc_s.so.1` from it.
//!
//! It also packs the module's relative relocations (`-z pack-relative-relocs`, `DT_RELR`:
//! lld, which rustc links with on `x86_64` Linux since 1.90, binutils 2.38+; glibc 2.36+),
//! when the linker takes the flag (probed with the system C compiler's linker). Every pointer in the
//! module's data (vtables, string slices in panic locations and format tables, GOT
//! entries: about 1 850 of them) is relocated at every `dlopen`, i.e. at every login;
//! as RELA entries they take 24 bytes each (46 KB the loader reads per load), packed
//! they take about one bit each (500 bytes). The pages written stay the same.
//!
//! Both modules (`crates/pam_totp`, `crates/pam_totp_db`) build with this file.

use std::path::Path;
use std::process::Command;

fn main() {
    // Relative to the package built: both modules name this one file the same way.
    println!("cargo:rerun-if-changed=../pam_totp/build.rs");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    if linker_takes(&cc, "-Wl,-z,pack-relative-relocs") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,pack-relative-relocs");
    } else {
        println!("cargo:warning=the linker cannot pack relocations (DT_RELR); each load relocates from RELA");
    }
    static_unwinder(&cc);
}

/// Whether linking an empty shared object with `flag` succeeds without a warning
/// (binutils before 2.38 only warns about an unknown `-z` option).
fn linker_takes(cc: &str, flag: &str) -> bool {
    let Ok(out_dir) = std::env::var("OUT_DIR") else {
        return false;
    };
    let source = Path::new(&out_dir).join("probe.c");
    let object = Path::new(&out_dir).join("probe.so");
    if std::fs::write(&source, "int probe(void) { return 0; }\n").is_err() {
        return false;
    }
    Command::new(cc)
        .args(["-shared", "-fPIC", flag, "-o"])
        .arg(&object)
        .arg(&source)
        .output()
        .is_ok_and(|out| out.status.success() && out.stderr.is_empty())
}

fn static_unwinder(cc: &str) {
    let output = Command::new(cc).arg("-print-file-name=libgcc_eh.a").output();
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
