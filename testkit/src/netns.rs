//! A "host" with a network of its own: a network namespace joined to the test's own
//! namespace by a veth pair, so that a process run in it reaches the database server
//! over a real network path (its own interface, address and routing), not over the
//! loopback it would share with every other process of the machine. Needs root
//! (`ip netns add`); removed again on drop.

use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};

/// Addresses 10.N.T.0/30: N from the process id (test binaries running at once do not
/// collide), T counts the hosts of this process.
static NEXT_TAG: AtomicU8 = AtomicU8::new(1);

pub struct NetHost {
    /// The namespace's name, for `ip netns exec`.
    pub name: String,
    /// The server side of the link, in the test's namespace: where the host connects.
    pub server_addr: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("the ip command (iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl NetHost {
    #[must_use]
    pub fn new() -> NetHost {
        let tag = NEXT_TAG.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id() % 100_000;
        let net = 20 + std::process::id() % 200;
        let name = format!("ptn{pid}h{tag}");
        let (outside, inside) = (format!("ptv{pid}o{tag}"), format!("ptv{pid}i{tag}"));
        let server_addr = format!("10.{net}.{tag}.1");
        let host_addr = format!("10.{net}.{tag}.2/30");
        ip(&["netns", "add", &name]);
        let host = NetHost { name, server_addr };
        ip(&["link", "add", &outside, "type", "veth", "peer", "name", &inside]);
        ip(&["link", "set", &inside, "netns", &host.name]);
        ip(&[
            "addr",
            "add",
            &format!("{}/30", host.server_addr),
            "dev",
            &outside,
        ]);
        ip(&["link", "set", &outside, "up"]);
        let inside_ip = |args: &[&str]| {
            let mut all = vec!["netns", "exec", host.name.as_str(), "ip"];
            all.extend(args);
            ip(&all);
        };
        inside_ip(&["addr", "add", &host_addr, "dev", &inside]);
        inside_ip(&["link", "set", &inside, "up"]);
        inside_ip(&["link", "set", "lo", "up"]);
        host
    }

    /// `program` run inside this host's namespace.
    #[must_use]
    pub fn command(&self, program: &std::path::Path) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }
}

impl Default for NetHost {
    fn default() -> NetHost {
        NetHost::new()
    }
}

impl Drop for NetHost {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the veth pair, and with it the other.
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}
