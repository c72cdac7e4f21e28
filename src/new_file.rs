//! Creating a file that will hold a secret (record, QR image, key): always a new file
//! (`O_CREAT | O_EXCL | O_NOFOLLOW`), owned by whoever creates it, with the mode asked.
//! Opening an existing file instead would write the secret into a file someone else
//! may own and hold open, e.g. one planted in a shared directory.

#![forbid(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use nix::fcntl::{self, OFlag};
use nix::sys::stat::Mode;

const FLAGS: OFlag = OFlag::O_WRONLY
    .union(OFlag::O_CREAT)
    .union(OFlag::O_EXCL)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// Creates `name` (relative to `dir`, or to the working directory for `None`) as a new
/// file with `mode`, whatever the umask. Any existing entry, a symbolic link included,
/// is an error of kind [`io::ErrorKind::AlreadyExists`].
///
/// # Errors
/// The name exists, or the file cannot be created or its mode set.
pub fn create(dir: Option<BorrowedFd<'_>>, name: &Path, mode: u32) -> io::Result<File> {
    let mode = Mode::from_bits_truncate(mode);
    let fd = match dir {
        Some(dir) => fcntl::openat(dir, name, FLAGS, mode),
        None => fcntl::open(name, FLAGS, mode),
    }?;
    let file = File::from(fd);
    // The umask may have taken bits away (a public key must stay readable).
    nix::sys::stat::fchmod(file.as_fd(), mode)?;
    Ok(file)
}

/// The refusal for a secret's file whose name is taken, in the words the command shows.
#[must_use]
pub fn exists_message(path: &Path) -> String {
    format!(
        "{} exists; refusing to write the secret over a file that may not be yours; remove it \
         or choose another name",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn an_existing_file_or_symlink_is_never_opened() {
        let dir = tempfile::tempdir().unwrap();
        let planted = dir.path().join("planted");
        std::fs::write(&planted, "theirs").unwrap();
        let err = create(None, &planted, 0o600).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&planted).unwrap(), "theirs");

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("target"), &link).unwrap();
        assert_eq!(
            create(None, &link, 0o600).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert!(!dir.path().join("target").exists());
    }

    #[test]
    fn a_new_file_gets_exactly_the_mode_asked() {
        let dir = tempfile::tempdir().unwrap();
        let handle = File::open(dir.path()).unwrap();
        for (name, mode) in [("private", 0o600), ("public", 0o644)] {
            create(Some(handle.as_fd()), Path::new(name), mode).unwrap();
            let meta = std::fs::metadata(dir.path().join(name)).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, mode, "{name}");
        }
    }
}
