//! A stand-in for the syslog daemon every real host runs.
//!
//! Without one, glibc's syslog falls back to writing each line to the console, which on
//! a virtual machine's serial console costs about a millisecond a line: that would time
//! the console, not the modules. When nothing listens on `/dev/log`, the benchmark binds
//! it for the length of the run and drops what arrives, as a daemon's socket would cost.

use std::os::unix::net::UnixDatagram;
use std::path::Path;

const DEV_LOG: &str = "/dev/log";

/// Removes the socket again when the benchmark ends.
pub struct Sink {
    bound: bool,
}

/// Binds `/dev/log` if nothing is there; a host's own syslog daemon is left alone.
#[must_use]
pub fn start() -> Sink {
    if Path::new(DEV_LOG).exists() {
        return Sink { bound: false };
    }
    let Ok(socket) = UnixDatagram::bind(DEV_LOG) else {
        return Sink { bound: false };
    };
    std::thread::spawn(move || {
        let mut buffer = [0u8; 8192];
        while socket.recv(&mut buffer).is_ok() {}
    });
    Sink { bound: true }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if self.bound {
            let _ = std::fs::remove_file(DEV_LOG);
        }
    }
}
