//! The packages a sysadmin installs, and `make install`: built by `make packages`
//! (which `make test` runs before `cargo test`), installed on this machine, used through
//! pamtester with a code from oathtool, and removed again.
//!
//! Needs root, `make packages` first, and dpkg, rpm, pamtester, oathtool and make; each
//! missing piece fails the test with a message saying so.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use testkit::{SECRET, TEST_USER, ensure_test_user, oathtool, settle_in_step, wrong_code};

const DEB_PACKAGE: &str = "libpam-totp";
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// A PAM service of this test's own, removed even when the test fails.
const SERVICE: &str = "pamtotp-pkgtest";

fn repo(path: &str) -> PathBuf {
    testkit::repo_dir().join(path)
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (see .ci/run for the packages)"))
}

/// Runs and insists on success; returns standard output.
fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn package(name: &str) -> PathBuf {
    let path = repo("target/packages").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `make packages` first (make test does)",
        path.display()
    );
    path
}

fn deb() -> PathBuf {
    let arch = ok("dpkg", &["--print-architecture"]);
    package(&format!("{DEB_PACKAGE}_{VERSION}-1_{}.deb", arch.trim()))
}

fn rpm() -> PathBuf {
    package(&format!("pam_totp-{VERSION}-1.x86_64.rpm"))
}

fn lines(text: &str) -> BTreeSet<String> {
    text.lines().map(str::to_owned).collect()
}

/// The examples in `pam.d/` (service files and `sshd_config.d/` drop-ins), relative to it.
fn pam_d_examples() -> Vec<String> {
    ["", "sshd_config.d"]
        .iter()
        .flat_map(|sub| std::fs::read_dir(repo("pam.d").join(sub)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| p.strip_prefix(repo("pam.d")).unwrap().display().to_string())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn the_rpm_holds_exactly_the_expected_files_with_their_modes() {
    let rpm = rpm();
    let rpm = rpm.to_str().unwrap();
    let listed = lines(&ok("rpm", &["-qlp", rpm]));
    let expected = [
        ("-rwxr-xr-x", "", "/usr/lib64/security/pam_totp.so"),
        ("-rwxr-xr-x", "", "/usr/lib64/security/pam_totp_db.so"),
        ("-rwxr-xr-x", "", "/usr/bin/totp-enroll"),
        ("-rw-r--r--", "cn", "/etc/security/pam_totp.toml"),
        ("-rw-r--r--", "d", "/usr/share/man/man1/totp-enroll.1.gz"),
        ("-rw-r--r--", "d", "/usr/share/man/man5/pam_totp.toml.5.gz"),
        ("-rw-r--r--", "d", "/usr/share/man/man8/pam_totp.8.gz"),
        ("drwxr-xr-x", "", "/usr/share/doc/pam_totp"),
        ("drwxr-xr-x", "", "/usr/share/doc/pam_totp/pam.d"),
        ("drwxr-xr-x", "", "/usr/share/doc/pam_totp/pam.d/sshd_config.d"),
        // Made by the package, never at login (README, "RHEL and SELinux").
        ("drwx------", "", "/var/lib/pam_totp"),
        ("drwx------", "", "/var/lib/pam_totp/records"),
    ];
    // Every example of pam.d/ is shipped as documentation.
    let snippets: Vec<String> = pam_d_examples()
        .iter()
        .map(|relative| format!("/usr/share/doc/pam_totp/pam.d/{relative}"))
        .collect();
    assert!(!snippets.is_empty());
    let expected: Vec<(&str, &str, &str)> = expected
        .into_iter()
        .chain(snippets.iter().map(|s| ("-rw-r--r--", "d", s.as_str())))
        .collect();
    let names: BTreeSet<String> = expected.iter().map(|(_, _, n)| (*n).to_owned()).collect();
    assert_eq!(listed, names, "rpm -qlp {rpm}");

    let query = "[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES}\n]";
    let modes = lines(&ok("rpm", &["-qp", "--queryformat", query, rpm]));
    let expected: BTreeSet<String> = expected
        .iter()
        .map(|(mode, flags, name)| format!("{mode} root:root {flags} {name}"))
        .collect();
    assert_eq!(
        modes, expected,
        "modes, owners and flags (c: config, n: noreplace)"
    );

    let scripts = ok("rpm", &["-qp", "--scripts", rpm]);
    assert!(
        scripts.trim().is_empty(),
        "the rpm must run no scriptlet: {scripts}"
    );
    let requires = ok("rpm", &["-qp", "--requires", rpm]);
    assert!(requires.contains("libpam.so.0()(64bit)"), "{requires}");
    // Built with its policy module (always in CI), the package pulls it in on SELinux hosts.
    if selinux_rpm().is_some() {
        assert!(
            requires.contains("(pam_totp-selinux if selinux-policy-targeted)"),
            "dnf must pull in the policy module on SELinux hosts: {requires}"
        );
    }
}

fn selinux_rpm() -> Option<PathBuf> {
    let name = format!("pam_totp-selinux-{VERSION}-1.noarch.rpm");
    let path = repo("target/packages").join(&name);
    if path.exists() {
        return Some(path);
    }
    // build-rpm leaves it out only without the policy sources (CI has them).
    let required = std::env::var_os("SELINUX_POLICY_REQUIRED").is_some_and(|v| v == "1");
    assert!(
        !required,
        "{name} is missing: run `make packages` with the policy sources"
    );
    eprintln!("{name} NOT checked: make packages found no SELinux policy sources");
    None
}

#[test]
fn the_selinux_subpackage_installs_the_policy_module_with_fedoras_scriptlets() {
    let Some(rpm) = selinux_rpm() else {
        return;
    };
    let rpm = rpm.to_str().unwrap();
    let listed = lines(&ok("rpm", &["-qlp", rpm]));
    let module = "/usr/share/selinux/packages/targeted/pam_totp.pp.bz2";
    assert_eq!(
        listed,
        set(&[module, "/usr/share/selinux/devel/include/distributed/pam_totp.if"]),
        "rpm -qlp {rpm}"
    );
    let requires = ok("rpm", &["-qp", "--requires", rpm]);
    assert!(requires.contains("selinux-policy-targeted"), "{requires}");

    // %pre saves the file contexts, %post installs the module, %postun removes it on
    // erase only, %posttrans relabels what changed (and records already in homes).
    let scripts = ok("rpm", &["-qp", "--scripts", rpm]);
    let section = |name: &str| -> String {
        let mut lines = scripts
            .lines()
            .skip_while(|l| !l.starts_with(&format!("{name} scriptlet")));
        assert!(lines.next().is_some(), "no {name} scriptlet: {scripts}");
        lines
            .take_while(|l| !l.contains(" scriptlet (using "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(section("preinstall").contains("file_contexts"), "{scripts}");
    let post = section("postinstall");
    assert!(
        post.contains("semodule") && post.contains(&format!("-i {module}")),
        "{post}"
    );
    assert!(post.contains("load_policy"), "{post}");
    let postun = section("postuninstall");
    assert!(
        postun.contains("$1 -eq 0") && postun.contains("-r pam_totp"),
        "{postun}"
    );
    let posttrans = section("posttrans");
    assert!(posttrans.contains("fixfiles -C"), "{posttrans}");
    assert!(
        posttrans.contains("restorecon -i /root/.pam_totp /home/*/.pam_totp"),
        "{posttrans}"
    );

    // The payload is the policy module built from packaging/selinux/pam_totp.fc.
    let dir = tempfile::tempdir().unwrap();
    let extract = format!(
        "cd {} && rpm2archive - <{rpm} | tar -xz && bunzip2 -c .{module} >pam_totp.pp \
         && semodule_unpackage pam_totp.pp pam_totp.mod pam_totp.fc",
        dir.path().display()
    );
    ok("sh", &["-c", &extract]);
    let contexts = std::fs::read_to_string(dir.path().join("pam_totp.fc")).unwrap();
    for line in [
        "/var/lib/pam_totp(/.*)?\t\tsystem_u:object_r:faillog_t:s0",
        "/var/lib/pam_totp/records(/.*)?\tsystem_u:object_r:var_auth_t:s0",
        "HOME_DIR/\\.pam_totp\t\t--\tsystem_u:object_r:auth_home_t:s0",
    ] {
        assert!(
            contexts.contains(line),
            "{line:?} not in the module's contexts: {contexts}"
        );
    }
}

/// Puts the machine back however the test ends: no package, no service file, no record,
/// and an `/etc/security/pam_totp.toml` found before the test back in its place.
struct Installed {
    config_dir: tempfile::TempDir,
    saved_conffile: Option<PathBuf>,
}

impl Installed {
    fn service_file() -> PathBuf {
        Path::new("/etc/pam.d").join(SERVICE)
    }

    fn config(&self) -> PathBuf {
        self.config_dir.path().join("pam_totp.toml")
    }

    fn record() -> PathBuf {
        let home = nix::unistd::User::from_name(TEST_USER)
            .ok()
            .flatten()
            .expect("test user")
            .dir;
        home.join(".pam_totp-pkgtest")
    }

    /// `pamtester SERVICE TEST_USER authenticate`, typing `code` at the prompt.
    fn pamtester(code: &str) -> Output {
        let mut child = Command::new("pamtester")
            .args([SERVICE, TEST_USER, "authenticate"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("pamtester is not installed (apt-get install pamtester)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{code}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(Self::service_file());
        let _ = std::fs::remove_file(Self::record());
        let _ = run("dpkg", &["--purge", DEB_PACKAGE]);
        if let Some(saved) = &self.saved_conffile {
            let _ = std::fs::copy(saved, CONFFILE);
        }
    }
}

fn dpkg_status() -> String {
    let out = run("dpkg-query", &["-W", "-f=${Status}", DEB_PACKAGE]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const DEB_FILES: [&str; 9] = [
    "/usr/lib/x86_64-linux-gnu/security/pam_totp.so",
    "/usr/lib/x86_64-linux-gnu/security/pam_totp_db.so",
    "/usr/bin/totp-enroll",
    "/usr/share/man/man1/totp-enroll.1.gz",
    "/usr/share/man/man5/pam_totp.toml.5.gz",
    "/usr/share/man/man8/pam_totp.8.gz",
    "/usr/share/doc/libpam-totp/pam.d/sshd",
    "/usr/share/doc/libpam-totp/copyright",
    "/etc/security/pam_totp.toml",
];
const CONFFILE: &str = "/etc/security/pam_totp.toml";

#[test]
fn the_deb_changes_no_login_setting_and_marks_the_config_a_conffile() {
    let deb = deb();
    let deb = deb.to_str().unwrap();
    let contents = ok("dpkg-deb", &["--contents", deb]);
    for path in DEB_FILES {
        assert!(contents.contains(&format!(".{path}\n")), "{path} not in the deb");
    }
    for forbidden in ["./etc/pam.d", "./etc/ssh"] {
        assert!(!contents.contains(forbidden), "the deb ships {forbidden}");
    }
    // The login state's directory (and a system store's) is the package's: root, 0700.
    for dir in ["./var/lib/pam_totp/", "./var/lib/pam_totp/records/"] {
        assert!(
            contents
                .lines()
                .any(|l| l.starts_with("drwx------ root/root") && l.ends_with(&format!(" {dir}"))),
            "{dir} not in the deb as drwx------ root/root: {contents}"
        );
    }
    let control = tempfile::tempdir().unwrap();
    ok("dpkg-deb", &["--control", deb, control.path().to_str().unwrap()]);
    let mut scripts: Vec<String> = std::fs::read_dir(control.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    scripts.sort();
    assert_eq!(
        scripts,
        ["conffiles", "control", "md5sums"],
        "no maintainer script: installing never edits /etc/pam.d or sshd_config"
    );
    let conffiles = std::fs::read_to_string(control.path().join("conffiles")).unwrap();
    assert_eq!(conffiles, format!("{CONFFILE}\n"));
}

#[test]
fn the_deb_installs_a_module_that_authenticates_through_pamtester_and_removes_cleanly() {
    ensure_test_user();
    testkit::users::ensure_dpkg_accounts();
    let deb = deb();
    let config_dir = tempfile::tempdir().unwrap();
    // A config left by something else would make dpkg ask about the conffile.
    let saved_conffile = Path::new(CONFFILE).exists().then(|| {
        let saved = config_dir.path().join("saved-pam_totp.toml");
        std::fs::copy(CONFFILE, &saved).unwrap();
        std::fs::remove_file(CONFFILE).unwrap();
        saved
    });
    let installed = Installed {
        config_dir,
        saved_conffile,
    };
    ok("dpkg", &["-i", deb.to_str().unwrap()]);
    assert_eq!(dpkg_status(), "install ok installed");
    for path in DEB_FILES {
        assert!(Path::new(path).exists(), "{path} was not installed");
    }
    let state = std::fs::metadata("/var/lib/pam_totp").expect("the deb makes /var/lib/pam_totp");
    assert_eq!(
        (state.uid(), state.mode() & 0o7777),
        (0, 0o700),
        "/var/lib/pam_totp"
    );
    ok("dpkg", &["--verify", DEB_PACKAGE]);
    for page in ["pam_totp", "pam_totp.toml", "totp-enroll"] {
        let found = ok("man", &["-w", page]);
        assert!(found.starts_with("/usr/share/man/"), "man -w {page}: {found}");
        let out = Command::new("man")
            .args(["--warnings=all", page])
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .output()
            .unwrap();
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && warnings.is_empty(),
            "man {page}: {warnings}"
        );
    }

    // The installed command enrolls the user; the installed config is the defaults.
    let state = installed.config_dir.path().join("state");
    testkit::make_state_dir(&state);
    std::fs::write(
        installed.config(),
        format!(
            "secret_path = \"~/.pam_totp-pkgtest\"\nstate_dir = \"{}\"\n",
            state.display()
        ),
    )
    .unwrap();
    let config = installed.config();
    let config = config.to_str().unwrap();
    ok(
        "/usr/bin/totp-enroll",
        &[
            "--config",
            config,
            "--user",
            TEST_USER,
            "--secret",
            SECRET,
            "--no-confirm",
            "--force",
        ],
    );

    // A bare module name: libpam finds it in the distribution's PAM directory.
    std::fs::write(
        Installed::service_file(),
        format!("auth required pam_totp.so config={config}\naccount required pam_permit.so\n"),
    )
    .unwrap();
    settle_in_step(3);
    let refused = Installed::pamtester(&wrong_code(SECRET));
    assert!(!refused.status.success(), "a wrong code passed: {refused:?}");
    let accepted = Installed::pamtester(&oathtool(SECRET, 0));
    assert!(
        accepted.status.success(),
        "pamtester: {}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    assert!(String::from_utf8_lossy(&accepted.stdout).contains("successfully authenticated"));

    // Removed: everything but the conffile goes; purged: the conffile too.
    ok("dpkg", &["-r", DEB_PACKAGE]);
    assert_eq!(dpkg_status(), "deinstall ok config-files");
    for path in DEB_FILES.iter().filter(|p| **p != CONFFILE) {
        assert!(!Path::new(path).exists(), "{path} is left after dpkg -r");
    }
    assert!(Path::new(CONFFILE).exists(), "dpkg -r must keep the config");
    ok("dpkg", &["--purge", DEB_PACKAGE]);
    assert!(
        !Path::new(CONFFILE).exists(),
        "dpkg --purge must remove the config"
    );
    assert_eq!(dpkg_status(), "", "dpkg still knows the package after purge");
    drop(installed);
}

/// Every file under `root`, relative, with its permission bits.
fn tree(root: &Path) -> BTreeSet<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut found = BTreeSet::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(root).unwrap().display().to_string();
                found.insert(format!("{:o} /{relative}", meta.permissions().mode() & 0o7777));
            }
        }
    }
    found
}

fn make(args: &[&str]) -> String {
    let repo = testkit::repo_dir();
    let mut all = vec!["-s", "-C", repo.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    ok("make", &all)
}

#[test]
fn make_install_honours_destdir_prefix_and_pamdir_and_uninstall_keeps_the_config() {
    let dest = tempfile::tempdir().unwrap();
    let destdir = format!("DESTDIR={}", dest.path().display());
    let pamdir = ok("sh", &[repo("packaging/pamdir").to_str().unwrap()]);
    let pamdir = pamdir.trim();
    assert!(
        Path::new(pamdir).join("pam_unix.so").exists(),
        "packaging/pamdir said {pamdir}"
    );
    make(&["install", &destdir, "PREFIX=/opt/totp"]);
    let mut expected = set(&[
        &format!("644 {pamdir}/pam_totp.so"),
        &format!("644 {pamdir}/pam_totp_db.so"),
        "755 /opt/totp/bin/totp-enroll",
        "644 /opt/totp/share/man/man1/totp-enroll.1",
        "644 /opt/totp/share/man/man5/pam_totp.toml.5",
        "644 /opt/totp/share/man/man8/pam_totp.8",
        "644 /etc/security/pam_totp.toml",
    ]);
    expected.extend(
        pam_d_examples()
            .iter()
            .map(|e| format!("644 /opt/totp/share/doc/pam_totp/pam.d/{e}")),
    );
    assert_eq!(tree(dest.path()), expected);
    for dir in ["var/lib/pam_totp", "var/lib/pam_totp/records"] {
        let mode = std::fs::metadata(dest.path().join(dir)).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o700, "{dir}: the login state's directory, made by install");
    }

    // The admin's config survives a reinstall and an uninstall.
    let config = dest.path().join("etc/security/pam_totp.toml");
    std::fs::write(&config, "window = 0\n").unwrap();
    make(&["install", &destdir, "PREFIX=/opt/totp"]);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "window = 0\n");
    make(&["uninstall", &destdir, "PREFIX=/opt/totp"]);
    assert_eq!(tree(dest.path()), set(&["644 /etc/security/pam_totp.toml"]));
    assert!(
        dest.path().join("var/lib/pam_totp").is_dir(),
        "uninstall keeps the login state"
    );
    assert!(!dest.path().join("opt/totp/share/doc/pam_totp").exists());
}

#[test]
fn the_packaged_binaries_are_stripped_lto_builds_that_keep_unwinding() {
    let manifest: toml::Table = read_manifest();
    let release = &manifest["profile"]["release"];
    assert_eq!(release.get("lto"), Some(&toml::Value::Boolean(true)));
    assert_eq!(release.get("strip"), Some(&toml::Value::Boolean(true)));
    assert_eq!(
        release.get("panic").and_then(toml::Value::as_str),
        Some("unwind"),
        "the FFI boundary catches panics: that needs unwinding"
    );
    for binary in MODULES.into_iter().chain(["release/totp-enroll"]) {
        let path = package_input(binary);
        let sections = ok("readelf", &["--section-headers", path.to_str().unwrap()]);
        assert!(!sections.contains(".symtab"), "{binary} is not stripped");
        if MODULES.contains(&binary) {
            assert!(
                sections.contains(".gcc_except_table"),
                "{binary} has no unwinding tables: is panic = \"abort\"?"
            );
        }
    }
}

#[test]
fn the_module_needs_no_shared_library_beyond_libpam_and_libc() {
    // Every library the module names is mapped and relocated at every login (PAM loads
    // the module per handle): the database client (tokio-postgres, rustls with ring)
    // must come in as Rust code, not as libssl, libcrypto or libgcc_s; pam_totp.so
    // finds and loads pam_totp_db.so with libc's own dladdr and dlopen (no libdl).
    for module in MODULES {
        let path = package_input(module);
        let dynamic = ok("readelf", &["--dynamic", path.to_str().unwrap()]);
        let needed: Vec<&str> = dynamic
            .lines()
            .filter(|l| l.contains("(NEEDED)"))
            .filter_map(|l| l.split('[').nth(1)?.split(']').next())
            .collect();
        assert!(needed.contains(&"libpam.so.0"), "{module}: {needed:?}");
        for library in &needed {
            assert!(
                ["libpam.so.0", "libc.so.6"].contains(library) || library.starts_with("ld-linux"),
                "{module} needs {library}: {needed:?}"
            );
        }
    }
}

/// The two modules `make install` installs: `pam_totp.so` (file store) and
/// `pam_totp_db.so` (file and database stores).
const MODULES: [&str; 2] = ["release/libpam_totp.so", "release/libpam_totp_db.so"];

fn read_manifest() -> toml::Table {
    toml::from_str(&std::fs::read_to_string(repo("Cargo.toml")).unwrap()).unwrap()
}

/// A release build output that `make install` packages, by its path under `target/`.
fn package_input(name: &str) -> PathBuf {
    let path = repo("target").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `make build` first (make test does)",
        path.display()
    );
    path
}
