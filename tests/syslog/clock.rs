//! Clock trouble in syslog: a refused code's offset (never the code), and the hourly
//! warning that this host's clock is not synchronised, whatever the kernel says here.

use std::os::unix::fs::MetadataExt;

use pam_client::AUTH_ERR;
use testkit::namespace::in_private_namespace;
use testkit::product::clock_watch;
use testkit::{Fixture, SECRET, oathtool, settle_in_step};

#[test]
fn a_code_for_another_time_is_logged_with_its_offset_and_never_the_code() {
    in_private_namespace(|ns| {
        let fixture = Fixture::new("", "");
        fixture.provision(SECRET);
        settle_in_step(3);
        let code = oathtool(SECRET, 6);
        assert_eq!(fixture.login(&code).status, AUTH_ERR);
        let lines = ns.lines_with(&["code for another time refused", "clock_offset=+180s"]);
        assert!(lines[0].contains("user="), "{lines:?}");
        for line in ns.syslog() {
            assert!(!line.contains(&code), "{line}");
        }
    });
}

#[test]
fn an_unsynchronised_host_clock_is_logged_at_most_once_an_hour() {
    in_private_namespace(|ns| {
        let fixture = Fixture::new("", "");
        fixture.provision(SECRET);
        for _ in 0..3 {
            assert_eq!(fixture.login("000000").status, AUTH_ERR);
        }
        let warned: Vec<String> = ns
            .syslog()
            .into_iter()
            .filter(|line| line.contains("clock is not synchronised"))
            .collect();
        let marker = fixture.state_dir().join(".clock-warned");
        if clock_watch::host_unsynchronised() {
            assert_eq!(warned.len(), 1, "{warned:?}");
            let meta = std::fs::metadata(&marker).expect("the marker");
            assert_eq!((meta.uid(), meta.mode() & 0o777, meta.len()), (0, 0o600, 0));
            // An hour later (the marker's mtime moved back): once more.
            let earlier = std::time::SystemTime::now() - std::time::Duration::from_secs(3601);
            std::fs::File::options()
                .write(true)
                .open(&marker)
                .and_then(|f| f.set_modified(earlier))
                .expect("age the marker");
            assert_eq!(fixture.login("000000").status, AUTH_ERR);
            ns.lines_with(&["clock is not synchronised (adjtimex)"]);
        } else {
            assert!(warned.is_empty(), "{warned:?}");
            assert!(!marker.exists());
        }
    });
}
