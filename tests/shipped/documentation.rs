//! The man pages and the shipped default config against the code: every config key of
//! `crates/config/src/lib.rs` (the list is read from `Config` itself, so a key added there makes
//! these tests fail until it is documented) and every module argument.

use std::path::PathBuf;
use std::process::Command;

use serde_aux::serde_introspection::serde_introspect;
use testkit::product::Config;
use toml::{Table, Value};

const TOML_PAGE: &str = "man/pam_totp.toml.5";
const MODULE_PAGE: &str = "man/pam_totp.8";
const DEFAULT_CONFIG: &str = "packaging/pam_totp.toml";

fn repo(path: &str) -> PathBuf {
    testkit::repo_dir().join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every key `Config` deserialises, `Option` fields included.
fn config_keys() -> Vec<&'static str> {
    serde_introspect::<Config>().to_vec()
}

/// Each key's default as TOML would write it; keys whose default is `None` are absent.
fn defaults() -> Table {
    Table::try_from(Config::default()).unwrap()
}

/// `key = value` as a line of TOML.
fn default_line(key: &str, value: &Value) -> String {
    format!("{key} = {value}")
}

/// Roff text as a reader sees it: font changes and escapes removed.
fn unroff(text: &str) -> String {
    let mut out = text.to_owned();
    for (from, to) in [
        ("\\f(CR", ""),
        ("\\fB", ""),
        ("\\fI", ""),
        ("\\fR", ""),
        ("\\fP", ""),
        ("\\-", "-"),
        ("\\(ti", "~"),
        ("\\&", ""),
        ("\\e", "\\"),
    ] {
        out = out.replace(from, to);
    }
    out
}

/// One `.TP` entry of a page: the name it documents and its text.
struct Entry {
    section: String,
    name: String,
    text: String,
}

/// The `.TP` entries of `page`; the name is the tag line's first word, up to any `=`
/// (`.BI window= n` documents `window`).
fn entries(page: &str) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut section = String::new();
    let mut lines = page.lines();
    let mut current: Option<Entry> = None;
    while let Some(line) = lines.next() {
        if let Some(title) = line.strip_prefix(".SH ") {
            entries.extend(current.take());
            title.trim_matches('"').clone_into(&mut section);
        } else if line.starts_with(".SS ") {
            entries.extend(current.take());
        } else if line == ".TP" {
            entries.extend(current.take());
            let tag = unroff(lines.next().unwrap_or_default());
            let tag = tag.trim_start_matches(|c: char| c == '.' || c.is_ascii_uppercase());
            let name = tag
                .trim()
                .split(|c: char| c == '=' || c.is_whitespace())
                .next()
                .unwrap_or_default()
                .to_owned();
            current = Some(Entry {
                section: section.clone(),
                name,
                text: String::new(),
            });
        } else if let Some(entry) = current.as_mut() {
            entry.text.push_str(&unroff(line));
            entry.text.push('\n');
        }
    }
    entries.extend(current);
    entries
}

fn entries_in<'a>(entries: &'a [Entry], section: &str) -> Vec<&'a Entry> {
    entries.iter().filter(|e| e.section == section).collect()
}

#[test]
fn the_config_page_documents_every_key_with_its_default() {
    let entries = entries(&read(TOML_PAGE));
    let keys = entries_in(&entries, "KEYS");
    let defaults = defaults();
    let mut problems = Vec::new();
    for key in config_keys() {
        let Some(entry) = keys.iter().find(|e| e.name == key) else {
            problems.push(format!(
                "config key `{key}` is missing from {TOML_PAGE}: add a `.TP` entry `.B {key}` \
                 under KEYS, ending in a `Default: {key} = ...` line"
            ));
            continue;
        };
        if let Some(value) = defaults.get(key) {
            let expected = format!("Default: {}", default_line(key, value));
            if !entry.text.contains(&expected) {
                problems.push(format!(
                    "the entry of `{key}` in {TOML_PAGE} does not say `{expected}`"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_config_page_documents_no_key_the_code_lacks() {
    let entries = entries(&read(TOML_PAGE));
    let keys = config_keys();
    let stale: Vec<_> = entries_in(&entries, "KEYS")
        .into_iter()
        .map(|e| e.name.clone())
        .filter(|name| !keys.contains(&name.as_str()))
        .collect();
    assert!(
        stale.is_empty(),
        "{TOML_PAGE} documents keys that crates/config/src/lib.rs does not have: {stale:?}"
    );
}

#[test]
fn the_module_page_documents_every_module_argument() {
    let entries = entries(&read(MODULE_PAGE));
    let options = entries_in(&entries, "OPTIONS");
    let mut arguments = vec!["config", "secret"];
    arguments.extend(config_keys());
    let missing: Vec<String> = arguments
        .iter()
        .filter(|arg| !options.iter().any(|e| e.name == **arg))
        .map(|arg| {
            format!(
                "module argument `{arg}` is missing from {MODULE_PAGE}: add a `.TP` entry \
                 `.BI {arg}= value` (or `.B {arg}` for a flag) under OPTIONS"
            )
        })
        .collect();
    assert!(missing.is_empty(), "{}", missing.join("\n"));
    let stale: Vec<_> = options
        .iter()
        .filter(|e| !arguments.contains(&e.name.as_str()))
        .map(|e| e.name.clone())
        .collect();
    assert!(
        stale.is_empty(),
        "{MODULE_PAGE} documents arguments the module does not take: {stale:?}"
    );
}

#[test]
fn the_man_pages_render_without_warnings() {
    for page in [MODULE_PAGE, TOML_PAGE] {
        let out = Command::new("man")
            .args(["--warnings=all", "-l"])
            .arg(repo(page))
            .env("MANWIDTH", "80")
            .output()
            .expect("man is not installed (apt-get install man-db groff-base)");
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && warnings.is_empty(), "{page}: {warnings}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("SEE ALSO"),
            "{page} rendered to nothing useful"
        );
    }
}

/// The `# key = value` lines of the default config, uncommented.
fn commented_keys(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# "))
        .filter(|line| {
            line.split_once(" = ").is_some_and(|(key, _)| {
                !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            })
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_default_config_file_shows_every_key_commented_at_its_default() {
    let lines = commented_keys(&read(DEFAULT_CONFIG));
    let defaults = defaults();
    let mut problems = Vec::new();
    for key in config_keys() {
        let expected = defaults.get(key).map(|value| default_line(key, value));
        let found = lines.iter().any(|line| match &expected {
            Some(expected) => line == expected,
            None => line.starts_with(&format!("{key} = ")),
        });
        if !found {
            problems.push(format!(
                "config key `{key}` is missing from {DEFAULT_CONFIG}: add the line `# {}`",
                expected.unwrap_or_else(|| format!("{key} = ..."))
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_default_config_file_means_the_defaults_as_shipped_and_uncommented() {
    let text = read(DEFAULT_CONFIG);
    let dir = tempfile::tempdir().unwrap();
    let shipped = dir.path().join("shipped.toml");
    std::fs::write(&shipped, &text).unwrap();
    let loaded = Config::load(&shipped, &[]).map_err(|e| e.to_string());
    assert_eq!(loaded, Ok(Config::default()), "{DEFAULT_CONFIG} as shipped");

    // Uncommenting every key at its default changes nothing (and every key is known).
    let defaults = defaults();
    let uncommented: String = commented_keys(&text)
        .into_iter()
        .filter(|line| {
            let key = line.split_once(" = ").map(|(k, _)| k).unwrap_or_default();
            defaults.contains_key(key) || !config_keys().contains(&key)
        })
        .map(|line| line + "\n")
        .collect();
    let path = dir.path().join("uncommented.toml");
    std::fs::write(&path, uncommented).unwrap();
    let loaded = Config::load(&path, &[]).map_err(|e| e.to_string());
    assert_eq!(loaded, Ok(Config::default()), "{DEFAULT_CONFIG} uncommented");
}

#[test]
fn the_man_pages_carry_the_version_being_built() {
    let version = format!("\"pam_totp {}\"", env!("CARGO_PKG_VERSION"));
    for page in [MODULE_PAGE, TOML_PAGE] {
        let title = read(page)
            .lines()
            .find(|line| line.starts_with(".TH "))
            .map(str::to_owned)
            .unwrap_or_default();
        assert!(
            title.contains(&version),
            "{page}: the .TH line `{title}` must name {version}"
        );
    }
}
