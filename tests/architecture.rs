//! The shape of the workspace, checked: the crate graph drawn in ARCHITECTURE.md is the
//! one `cargo metadata` reports, `pam_totp.so`'s crate links no database client, no
//! crate's files import each other in a cycle, and the login's core asks the operating
//! system nothing but through its ports.

// Test helpers: a failed setup step should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    command.current_dir(repo());
    command
}

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Each workspace package and the workspace packages it depends on (normal
/// dependencies: what its code uses; tests and build scripts apart).
fn metadata_graph() -> Graph {
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .output()
        .expect("cargo metadata");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    let names: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    packages
        .iter()
        .map(|package| {
            let deps = package["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .filter(|name| names.contains(name))
                .collect();
            (package["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

/// The graph in ARCHITECTURE.md: the lines `crate -> dep, dep` between the
/// `crate-graph` markers.
fn drawn_graph() -> Graph {
    let text = std::fs::read_to_string(repo().join("ARCHITECTURE.md")).unwrap();
    let start = text
        .find("<!-- crate-graph -->")
        .expect("ARCHITECTURE.md has a crate-graph block");
    let end = text.find("<!-- /crate-graph -->").expect("the block ends");
    text[start + "<!-- crate-graph -->".len()..end]
        .lines()
        .filter_map(|line| line.split_once("->"))
        .map(|(name, deps)| {
            let deps = deps
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_owned)
                .collect();
            (name.trim().to_owned(), deps)
        })
        .collect()
}

#[test]
fn the_crate_graph_in_architecture_md_is_the_one_cargo_reports() {
    assert_eq!(drawn_graph(), metadata_graph());
}

#[test]
fn the_file_store_module_links_no_database_client() {
    let out = cargo()
        .args([
            "tree",
            "-p",
            "pam_totp",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .output()
        .expect("cargo tree");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8_lossy(&out.stdout);
    let crates: BTreeSet<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
    for client in [
        "pam_totp_store_pg",
        "tokio",
        "tokio-postgres",
        "rustls",
        "postgres-protocol",
    ] {
        assert!(!crates.contains(client), "pam_totp links {client}");
    }
    assert!(
        crates.contains("pam_totp_store_file"),
        "the search above sees the tree: {crates:?}"
    );
}

/// Source files of `dir` (recursively), as module names: `a/b.rs` is `a::b`, `a/mod.rs`
/// is `a`, `lib.rs` and `main.rs` are the crate root (`""`).
fn modules(dir: &Path, prefix: &str, out: &mut BTreeMap<String, PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            let next = if prefix.is_empty() {
                stem
            } else {
                format!("{prefix}::{stem}")
            };
            modules(&path, &next, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let name = match stem.as_str() {
                "lib" | "main" if prefix.is_empty() => String::new(),
                "mod" => prefix.to_owned(),
                _ if prefix.is_empty() => stem,
                _ => format!("{prefix}::{stem}"),
            };
            out.insert(name, path);
        }
    }
}

/// The modules a file's non-test code names through `crate::` (and `super::` from a
/// file of a directory module), outside comments.
fn imports(module: &str, path: &Path, known: &BTreeMap<String, PathBuf>) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
    let mut found = BTreeSet::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or_default();
        for (marker, base) in [("crate::", ""), ("super::", parent)] {
            let mut rest = line;
            while let Some(at) = rest.find(marker) {
                rest = &rest[at + marker.len()..];
                let path: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                // The longest known module the path starts with.
                let mut name = base.to_owned();
                let mut best = None;
                for part in path.split("::").filter(|p| !p.is_empty()) {
                    name = if name.is_empty() {
                        part.to_owned()
                    } else {
                        format!("{name}::{part}")
                    };
                    if known.contains_key(&name) {
                        best = Some(name.clone());
                    }
                }
                if let Some(target) = best.filter(|t| t != module) {
                    found.insert(target);
                }
            }
        }
    }
    found
}

/// A cycle in `graph`, as the modules on it, if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_owned(), 1);
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next.as_str()) {
                Some(1) => {
                    let from = stack.iter().position(|n| n == next).unwrap_or(0);
                    return Some(stack[from..].to_vec());
                }
                Some(_) => {}
                None => {
                    if let Some(cycle) = visit(next, graph, state, stack) {
                        return Some(cycle);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if !state.contains_key(node.as_str())
            && let Some(cycle) = visit(node, graph, &mut state, &mut Vec::new())
        {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn no_crate_has_files_that_import_each_other_in_a_cycle() {
    let mut roots: Vec<PathBuf> = std::fs::read_dir(repo().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path().join("src"))
        .collect();
    roots.extend(["enroll-cli/src", "bench/src", "pam-client/src"].map(|d| repo().join(d)));
    for root in roots {
        let mut known = BTreeMap::new();
        modules(&root, "", &mut known);
        let graph: Graph = known
            .iter()
            .filter(|(name, _)| !name.is_empty())
            .map(|(name, path)| (name.clone(), imports(name, path, &known)))
            .collect();
        assert_eq!(find_cycle(&graph), None, "{}", root.display());
    }
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let graph: Graph = [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")]
        .into_iter()
        .map(|(from, to)| (from.to_owned(), BTreeSet::from([to.to_owned()])))
        .collect();
    assert_eq!(find_cycle(&graph).map(|c| c.len()), Some(3));
}

/// Calls that ask the operating system about users, groups, files, the network or
/// processes: the login's core reaches these only through its ports.
const OS_CALLS: &[&str] = &[
    "Account::lookup",
    "Account::by_uid",
    "getgrouplist",
    "Group::from_",
    "User::from_",
    "std::fs",
    "std::net",
    "std::process",
    "File::",
    "trusted_file",
    "privs::",
    "gethostname",
    "SystemTime::now",
];

/// The [`OS_CALLS`] that `code`'s non-test part makes, outside comments.
fn os_calls(code: &str) -> Vec<&'static str> {
    let code = code.split("#[cfg(test)]").next().unwrap_or_default();
    let code: String = code
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    OS_CALLS
        .iter()
        .copied()
        .filter(|call| code.contains(call))
        .collect()
}

#[test]
fn the_login_core_looks_up_no_user_group_or_file_itself() {
    let mut known = BTreeMap::new();
    modules(&repo().join("crates/core/src"), "", &mut known);
    assert!(
        known.contains_key("rollout"),
        "the search sees the crate: {known:?}"
    );
    for path in known.values() {
        let text = std::fs::read_to_string(path).unwrap();
        assert_eq!(os_calls(&text), Vec::<&str>::new(), "{}", path.display());
    }
}

#[test]
fn the_os_call_finder_finds_a_lookup_outside_tests_and_comments() {
    let code =
        "// Account::lookup in a comment\nlet a = Account::lookup(user)?;\n#[cfg(test)]\nstd::fs::read(p);";
    assert_eq!(os_calls(code), ["Account::lookup"]);
}
