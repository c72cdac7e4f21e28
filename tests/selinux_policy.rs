//! RHEL with SELinux enforcing, checked on a host without SELinux: the RHEL 9 targeted
//! policy is built from source with `packaging/selinux/pam_totp.te/.if/.fc`, and the
//! compiled policy is asked whether each operation of `src/access.rs` is allowed, for
//! every domain that performs it, under the labels the `.fc` files give, with each
//! combination of the booleans `pam_totp_use_postgresql` and `pam_totp_connect_pgbouncer`.
//! The table it finds must be README's.
//! The module's operations in homes are asked once more on `nfs_t` (homes on NFS), with
//! `use_nfs_home_dirs` on and off.
//!
//! `packaging/selinux/build-policy` builds it (as for `make rpm`) from
//! `SELINUX_POLICY_SOURCES` (the tarball, or the directory holding it), else
//! `../shared/selinux/selinux-policy-c9s.tar.xz` beside the repository. Without them the
//! test says so and returns, unless `SELINUX_POLICY_REQUIRED=1` (CI), when it fails;
//! `make test` prints that the check was not run. The build tree is kept in
//! `target/selinux-policy/`, so a second run rebuilds only the module (a few minutes the
//! first time on two busy cores).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use pam_totp_tests::access::{Domains, Need, OPERATIONS, Object, Operation, Store, Tunable};

/// The booleans' values, in `Tunable::ALL`'s order.
type Bools = [bool; Tunable::ALL.len()];

/// Every combination of the booleans.
const COMBINATIONS: [Bools; 4] = [[false, false], [true, false], [false, true], [true, true]];

fn bools_json(bools: Bools) -> serde_json::Map<String, serde_json::Value> {
    Tunable::ALL
        .iter()
        .zip(bools)
        .map(|(t, on)| (t.name().to_owned(), on.into()))
        .collect()
}

/// Whether all the booleans `operation` is allowed under are on.
fn opened(operation: &Operation, bools: Bools) -> bool {
    operation
        .tunables
        .iter()
        .all(|t| bools[Tunable::ALL.iter().position(|a| a == t).unwrap()])
}

/// The first `count` of the operation's booleans on, the others off.
fn first_on(operation: &Operation, count: usize) -> Bools {
    let on = &operation.tunables[..count];
    Tunable::ALL.map(|t| on.contains(&t))
}

/// The domains the README table shows, in its column order; the test checks every
/// member of `sudodomain` besides.
const LOGIN_DOMAINS: [&str; 3] = ["sshd_t", "local_login_t", "xdm_t"];
const SHOWN_SUDO_DOMAINS: [&str; 2] = ["staff_sudo_t", "sysadm_sudo_t"];
const COMMAND_DOMAINS: [&str; 4] = ["user_t", "staff_t", "sysadm_t", "unconfined_t"];
const ROOT_COMMAND_DOMAINS: [&str; 2] = ["sysadm_t", "unconfined_t"];

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The policy built with our module by `packaging/selinux/build-policy` (the tree is
/// kept in target/selinux-policy/); `None` without the sources.
fn build_policy() -> Option<PathBuf> {
    let out = Command::new("sh")
        .arg(repo("packaging/selinux/build-policy"))
        .arg("validate")
        .output()
        .expect("sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())),
        Some(3) => {
            let required = std::env::var_os("SELINUX_POLICY_REQUIRED").is_some_and(|v| v == "1");
            assert!(!required, "SELinux policy check cannot run: {stderr}");
            eprintln!("SELinux policy check NOT RUN: {stderr}");
            None
        }
        _ => panic!("building the policy failed: {stderr}"),
    }
}

fn run(command: &mut Command) -> String {
    let program = command.get_program().to_string_lossy().into_owned();
    let out = command.output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn domains(by: Domains) -> Vec<String> {
    let names: Vec<&str> = match by {
        Domains::LoginAndSudo => LOGIN_DOMAINS.iter().copied().chain(["@sudodomain"]).collect(),
        Domains::Login => LOGIN_DOMAINS.to_vec(),
        Domains::Command => COMMAND_DOMAINS.to_vec(),
        Domains::RootCommand => ROOT_COMMAND_DOMAINS.to_vec(),
    };
    names.into_iter().map(str::to_owned).collect()
}

fn object_json(object: Object) -> serde_json::Value {
    match object {
        Object::Path(path) => serde_json::json!({ "path": path }),
        Object::TcpPort(port) => serde_json::json!({ "tcp_port": port }),
        Object::Own => serde_json::json!({ "own": true }),
        Object::Type(name) => serde_json::json!({ "type": name }),
    }
}

/// Whether an operation connects to the database (a TCP port or a server's unix
/// socket): what the booleans must open.
fn connects(operation: &Operation) -> bool {
    operation
        .needs
        .iter()
        .any(|n| matches!(n.object, Object::TcpPort(_)) || n.perms.contains(&"connectto"))
}

/// One verdict: an operation's need, for one domain, with the booleans as given.
struct Verdict {
    operation: &'static Operation,
    need: Need,
    domain: String,
    bools: Bools,
    label: Option<String>,
    missing: Vec<String>,
}

fn ask(tree: &Path) -> Vec<Verdict> {
    let mut queries = Vec::new();
    let mut keys = Vec::new();
    for operation in OPERATIONS {
        for need in operation.needs {
            for domain in domains(operation.by) {
                for bools in COMBINATIONS {
                    queries.push(serde_json::json!({
                        "domain": domain,
                        "object": object_json(need.object),
                        "class": need.class,
                        "perms": need.perms,
                        "bools": bools_json(bools),
                    }));
                    keys.push((operation, *need, bools));
                }
            }
        }
    }
    let mut verdicts = Vec::new();
    for ((operation, need, bools), answer) in keys.into_iter().zip(answers(tree, &queries)) {
        assert!(!answer.is_empty(), "{}: no domain answered", operation.what);
        for one in answer {
            verdicts.push(Verdict {
                operation,
                need,
                domain: one.domain,
                bools,
                label: one.label,
                missing: one.missing,
            });
        }
    }
    verdicts
}

/// `selinux_policy.py`'s answer to one query, for one domain.
struct Answer {
    domain: String,
    label: Option<String>,
    missing: Vec<String>,
}

fn answers(tree: &Path, queries: &[serde_json::Value]) -> Vec<Vec<Answer>> {
    let input = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(input.path(), serde_json::to_vec(queries).unwrap()).unwrap();
    let output = run(Command::new("/usr/bin/python3")
        .arg(repo("tests/selinux_policy.py"))
        .arg(tree)
        .stdin(std::fs::File::open(input.path()).unwrap()));
    let answers: Vec<Vec<serde_json::Value>> = serde_json::from_str(&output).unwrap();
    assert_eq!(answers.len(), queries.len());
    answers
        .into_iter()
        .map(|answer| {
            answer
                .into_iter()
                .map(|one| Answer {
                    domain: one["domain"].as_str().unwrap().to_owned(),
                    label: one["label"].as_str().map(str::to_owned),
                    missing: one["missing"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| p.as_str().unwrap().to_owned())
                        .collect(),
                })
                .collect()
        })
        .collect()
}

/// Homes on NFS (README): every file there is `nfs_t`, whatever the `.fc` says. What the
/// module does in a home, with `use_nfs_home_dirs` on and off: the domains that miss a
/// permission on `nfs_t`, as "operation: domain missing [...]".
fn nfs_home_refusals(tree: &Path, use_nfs_home_dirs: bool) -> Vec<String> {
    let mut queries = Vec::new();
    let mut keys = Vec::new();
    for operation in OPERATIONS
        .iter()
        .filter(|o| matches!(o.by, Domains::LoginAndSudo | Domains::Login))
    {
        for need in operation.needs {
            let Object::Path(path) = need.object else {
                continue;
            };
            if !path.starts_with("/home/") {
                continue;
            }
            for domain in domains(operation.by) {
                let mut bools = bools_json([true; Tunable::ALL.len()]);
                bools.insert("use_nfs_home_dirs".to_owned(), use_nfs_home_dirs.into());
                queries.push(serde_json::json!({
                    "domain": domain,
                    "object": { "type": "nfs_t" },
                    "class": need.class,
                    "perms": need.perms,
                    "bools": bools,
                }));
                keys.push((operation, path));
            }
        }
    }
    assert!(!keys.is_empty());
    let mut refusals = Vec::new();
    for ((operation, path), answer) in keys.into_iter().zip(answers(tree, &queries)) {
        for one in answer.into_iter().filter(|a| !a.missing.is_empty()) {
            refusals.push(format!(
                "{} ({path} on NFS): {} missing {:?}",
                operation.what, one.domain, one.missing
            ));
        }
    }
    refusals
}

fn label_of(verdicts: &[Verdict], path: &str) -> String {
    verdicts
        .iter()
        .find(|v| matches!(v.need.object, Object::Path(p) if p == path))
        .and_then(|v| v.label.clone())
        .unwrap_or_else(|| panic!("no label for {path}"))
}

/// Whether `operation` is allowed for `domain` (every need), with the booleans as given.
fn allowed(verdicts: &[Verdict], operation: &Operation, domain: &str, bools: Bools) -> bool {
    verdicts
        .iter()
        .filter(|v| std::ptr::eq(v.operation, operation) && v.domain == domain && v.bools == bools)
        .all(|v| v.missing.is_empty())
}

/// A table row's note: which booleans are on.
fn bools_suffix(operation: &Operation, count: usize) -> String {
    let names: Vec<String> = operation.tunables[..count]
        .iter()
        .map(|t| format!("`{}`", t.name()))
        .collect();
    if names.is_empty() {
        " (booleans off)".to_owned()
    } else {
        format!(" ({} on)", names.join(" and "))
    }
}

fn labels(verdicts: &[Verdict], operation: &Operation) -> String {
    let mut found: Vec<String> = Vec::new();
    for v in verdicts.iter().filter(|v| std::ptr::eq(v.operation, operation)) {
        if let (Object::Path(_) | Object::TcpPort(_) | Object::Type(_), Some(label)) =
            (v.need.object, &v.label)
            && !found.contains(label)
        {
            found.push(label.clone());
        }
    }
    found
        .iter()
        .map(|l| format!("`{l}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The README tables, as found.
fn tables(verdicts: &[Verdict]) -> String {
    let mark = |yes: bool| if yes { "allowed" } else { "**denied**" };
    let mut text = String::new();
    let module: Vec<&str> = LOGIN_DOMAINS.iter().chain(&SHOWN_SUDO_DOMAINS).copied().collect();
    let _ = writeln!(text, "| what the module does | label | {} |", module.join(" | "));
    let _ = writeln!(text, "|---|---|{}", "---|".repeat(module.len()));
    for operation in OPERATIONS
        .iter()
        .filter(|o| matches!(o.by, Domains::LoginAndSudo | Domains::Login))
    {
        // Its booleans turned on one after another, where that changes anything.
        let steps: Vec<(Bools, String)> = (0..=operation.tunables.len())
            .map(|count| (first_on(operation, count), bools_suffix(operation, count)))
            .collect();
        let booleans_matter = steps.iter().any(|(bools, _)| {
            module.iter().any(|d| {
                allowed(verdicts, operation, d, *bools) != allowed(verdicts, operation, d, steps[0].0)
            })
        });
        let rows = if booleans_matter {
            steps
        } else {
            vec![(steps[0].0, String::new())]
        };
        for (bools, suffix) in &rows {
            let cells: Vec<&str> = module
                .iter()
                .map(|d| {
                    if operation.by == Domains::Login && d.ends_with("_sudo_t") {
                        "not done"
                    } else {
                        mark(allowed(verdicts, operation, d, *bools))
                    }
                })
                .collect();
            let _ = writeln!(
                text,
                "| {}{suffix} | {} | {} |",
                operation.what,
                labels(verdicts, operation),
                cells.join(" | ")
            );
        }
    }
    let _ = writeln!(text);
    let _ = writeln!(
        text,
        "| what `totp-enroll` does | label | {} |",
        COMMAND_DOMAINS.join(" | ")
    );
    let _ = writeln!(text, "|---|---|{}", "---|".repeat(COMMAND_DOMAINS.len()));
    for operation in OPERATIONS
        .iter()
        .filter(|o| matches!(o.by, Domains::Command | Domains::RootCommand))
    {
        let cells: Vec<&str> = COMMAND_DOMAINS
            .iter()
            .map(|d| {
                if operation.by == Domains::RootCommand && !ROOT_COMMAND_DOMAINS.contains(d) {
                    "not done"
                } else {
                    mark(allowed(verdicts, operation, d, [false; Tunable::ALL.len()]))
                }
            })
            .collect();
        let _ = writeln!(
            text,
            "| {} | {} | {} |",
            operation.what,
            labels(verdicts, operation),
            cells.join(" | ")
        );
    }
    text
}

/// The booleans are what open the database, over TCP or a unix socket, to sshd, the
/// console and sudo (`xdm_t` may connect to any port already; the table shows it): with
/// any of an operation's booleans off, it is denied.
fn connecting_needs_its_booleans(verdicts: &[Verdict]) {
    for operation in OPERATIONS.iter().filter(|o| connects(o)) {
        for bools in COMBINATIONS.into_iter().filter(|b| !opened(operation, *b)) {
            for domain in ["sshd_t", "local_login_t", "staff_sudo_t"] {
                assert!(
                    !allowed(verdicts, operation, domain, bools),
                    "{domain} may {:?} with {:?}",
                    operation.what,
                    bools_json(bools)
                );
            }
        }
    }
    // Connecting to unconfined_service_t reaches every unconfined service's unix socket,
    // abstract ones included: a database host (pam_totp_use_postgresql on) does not get
    // that unless it turns pam_totp_connect_pgbouncer on for a local PgBouncer. Asked of
    // the connectto alone: an abstract socket has no socket file whose denial hides it.
    let unconfined = |n: &Need| n.object == Object::Type("unconfined_service_t");
    let to_pgbouncer: Vec<&Operation> = OPERATIONS
        .iter()
        .filter(|o| o.needs.iter().any(unconfined))
        .collect();
    assert_eq!(
        to_pgbouncer.len(),
        1,
        "one operation connects to unconfined_service_t"
    );
    for domain in ["sshd_t", "local_login_t", "staff_sudo_t"] {
        let connectto = |bools: Bools| {
            verdicts
                .iter()
                .filter(|v| {
                    std::ptr::eq(v.operation, to_pgbouncer[0])
                        && unconfined(&v.need)
                        && v.domain == domain
                        && v.bools == bools
                })
                .all(|v| v.missing.is_empty())
        };
        assert!(
            !connectto([true, false]),
            "{domain} may connect to unconfined_service_t with only pam_totp_use_postgresql on"
        );
        assert!(
            !connectto([false, true]),
            "{domain} may connect to unconfined_service_t with only pam_totp_connect_pgbouncer on"
        );
        assert!(
            connectto([true, true]),
            "{domain}: PgBouncer unreachable with both on"
        );
    }
}

#[test]
fn the_rhel_policy_with_the_module_allows_every_operation_of_pam_totp() {
    let Some(tree) = build_policy() else {
        return;
    };

    // The .fc's contexts are valid in the compiled policy.
    run(Command::new("setfiles")
        .arg("-c")
        .arg(tree.join("tmp/policy.bin"))
        .arg(tree.join("tmp/pam_totp.mod.fc")));

    // Only the database store connects anywhere, and only under the database boolean.
    for operation in OPERATIONS {
        assert!(
            !connects(operation)
                || (operation.store == Store::Postgres
                    && operation.tunables.first() == Some(&Tunable::UsePostgresql)),
            "{}",
            operation.what
        );
    }
    let verdicts = ask(&tree);

    // The labels the .fc gives, and the one totp-enroll gives a home record itself.
    assert_eq!(label_of(&verdicts, "/var/lib/pam_totp/alice.state"), "faillog_t");
    assert_eq!(
        label_of(&verdicts, "/var/lib/pam_totp/records/alice"),
        "var_auth_t"
    );
    assert_eq!(label_of(&verdicts, "/home/alice/.pam_totp"), "auth_home_t");
    assert_eq!(label_of(&verdicts, "/root/.pam_totp"), "auth_home_t");
    assert_eq!(
        label_of(&verdicts, "/home/alice/.pam_totp"),
        pam_totp_os::selinux_label::HOME_RECORD_TYPE
    );
    assert_eq!(
        label_of(&verdicts, "/home/alice/.pam_totp.tmp.4242"),
        "user_home_t"
    );

    let mut refused = Vec::new();
    for v in &verdicts {
        // With its booleans off, an operation may be denied: a database host turns them
        // on (README), and connecting needs them (see below).
        if !v.missing.is_empty() && opened(v.operation, v.bools) {
            refused.push(format!(
                "{} ({}): {} on {:?} ({}) {}: missing {:?}, booleans {:?}",
                v.operation.what,
                v.operation.source,
                v.domain,
                v.need.object,
                v.label.as_deref().unwrap_or("no label"),
                v.need.class,
                v.missing,
                bools_json(v.bools)
            ));
        }
    }
    assert!(refused.is_empty(), "the policy disagrees: {refused:#?}");
    connecting_needs_its_booleans(&verdicts);

    // Every member of sudodomain was asked, not only the shown ones.
    for domain in SHOWN_SUDO_DOMAINS
        .iter()
        .chain(["secadm_sudo_t", "auditadm_sudo_t"].iter())
    {
        assert!(
            verdicts.iter().any(|v| v.domain == *domain),
            "{domain} not checked"
        );
    }

    // On NFS homes, `use_nfs_home_dirs` is what the module needs, and all it needs.
    let on_nfs = nfs_home_refusals(&tree, true);
    assert!(on_nfs.is_empty(), "with use_nfs_home_dirs on: {on_nfs:#?}");
    assert!(
        !nfs_home_refusals(&tree, false).is_empty(),
        "NFS homes are readable with use_nfs_home_dirs off: README says to turn it on"
    );

    let found = tables(&verdicts);
    std::fs::write(repo("target/selinux-policy/table.md"), &found).unwrap();
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    assert!(
        readme.contains(&found),
        "README's \"RHEL and SELinux\" tables differ from what the policy says; the found \
         tables are in target/selinux-policy/table.md:\n{found}"
    );
}

/// The rules name attributes, not domains: RHEL 10's `sshd_session_t` (a new member of
/// `login_pgm`) is then covered as `sshd_t` is.
#[test]
fn the_policy_module_names_no_login_domain() {
    let te = std::fs::read_to_string(repo("packaging/selinux/pam_totp.te")).unwrap();
    for domain in LOGIN_DOMAINS
        .iter()
        .chain(&SHOWN_SUDO_DOMAINS)
        .chain(&["sshd_session_t", "sudo_t"])
    {
        let rules = te.lines().filter(|l| !l.trim_start().starts_with('#'));
        assert!(
            !rules.clone().any(|l| l.contains(domain)),
            "pam_totp.te names {domain}: use login_pgm / sudodomain"
        );
    }
}
