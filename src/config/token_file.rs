//! Reading a token file without trusting it: a regular file only, at most
//! [`MAX_TOKEN_FILE`] bytes, within [`READ_TIMEOUT`].
//!
//! A `token_file` pointing at `/dev/zero`, a FIFO or a 1 GB file used to grow the daemon
//! without bound or block it forever (deaf to SIGTERM, since the supervisor was stuck in the
//! read). Every step here is bounded instead:
//!
//! - the path is looked at first, so a device is refused without opening it (opening some
//!   devices has effects, `/dev/watchdog` arms a reboot);
//! - it is opened with `O_NONBLOCK`, so a FIFO without a writer cannot block the open, and the
//!   *opened descriptor* is checked again, so a swap between the look and the open cannot
//!   smuggle a FIFO or device in;
//! - at most [`MAX_TOKEN_FILE`] + 1 bytes are read, whatever size the file claims (`/proc`
//!   files claim 0);
//! - all of it runs on a helper thread that the caller waits for at most [`READ_TIMEOUT`]: a
//!   hung network or FUSE file system blocks that thread, never the daemon.
//!
//! systemd credentials in `$CREDENTIALS_DIRECTORY` are regular files, or symlinks to them,
//! which the open follows: both are accepted.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// The largest token file accepted. A Slack token is under 256 bytes; the rest is room for a
/// trailing newline, a comment line or a credential's padding.
pub const MAX_TOKEN_FILE: u64 = 4096;

/// How long reading one token file may take before it is given up.
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a token file gave no token. The messages never contain the file's contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// Nothing at the path (or a dangling symlink).
    #[error("no such file; create it (the secret on its first line) or fix the path")]
    NotFound,
    /// The process may not read it.
    #[error("permission denied; make it readable by the user the daemon runs as (chmod 600 and chown, or systemd's LoadCredential=)")]
    PermissionDenied,
    /// A FIFO, device, socket or directory.
    #[error(
        "it is a {0}, not a regular file; point the setting at a file holding only the secret"
    )]
    NotRegular(&'static str),
    /// Larger than [`MAX_TOKEN_FILE`].
    #[error("it is larger than {MAX_TOKEN_FILE} bytes, too large for a secret file; put only the token or password in it")]
    TooLarge,
    /// Not UTF-8 text.
    #[error("it is not UTF-8 text; put only the token or password in it")]
    NotText,
    /// The first line is blank.
    #[error("the file is empty")]
    Empty,
    /// Reading did not finish within [`READ_TIMEOUT`].
    #[error("reading it took more than {}s (a hung network or FUSE file system?); copy the secret to a local file", READ_TIMEOUT.as_secs())]
    TimedOut,
    /// Any other I/O error, as the OS describes it.
    #[error("{0}")]
    Io(String),
}

impl ReadError {
    /// Whether the file is simply not there (which `check` run from a shell may tolerate).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::NotFound)
    }
}

impl From<OpenError> for ReadError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Io(e) => e.into(),
            OpenError::NotRegular(kind) => ReadError::NotRegular(kind),
        }
    }
}

/// Why [`open_regular`] opened nothing.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// The OS refused (no such file, permission, a symlink loop...).
    Io(io::Error),
    /// It is not a regular file: what it is instead.
    NotRegular(&'static str),
}

impl From<io::Error> for OpenError {
    fn from(e: io::Error) -> Self {
        OpenError::Io(e)
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::NotFound => ReadError::NotFound,
            io::ErrorKind::PermissionDenied => ReadError::PermissionDenied,
            _ => ReadError::Io(e.to_string()),
        }
    }
}

/// The first line of the token file at `path`, trimmed; bounded as the module says.
pub fn read_token(path: &Path) -> Result<String, ReadError> {
    let (tx, rx) = mpsc::sync_channel(1);
    let owned: PathBuf = path.to_path_buf();
    let spawned = std::thread::Builder::new()
        .name("token-file".into())
        .spawn(move || {
            let _ = tx.send(read_bounded(&owned));
        });
    if let Err(e) = spawned {
        return Err(ReadError::Io(format!("cannot start a reader thread: {e}")));
    }
    // On a timeout the thread is left behind, blocked in the kernel; it holds nothing but
    // its own descriptor, and the process can still exit.
    rx.recv_timeout(READ_TIMEOUT)
        .unwrap_or(Err(ReadError::TimedOut))
}

/// Open `path` for reading only if it is a regular file, checked on the path before the
/// open and on the opened descriptor after it. Never blocks on a FIFO.
pub(crate) fn open_regular(path: &Path) -> Result<(File, Metadata), OpenError> {
    regular(&std::fs::metadata(path)?)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    regular(&meta)?;
    Ok((file, meta))
}

/// `Ok` for a regular file, else what it is.
fn regular(meta: &Metadata) -> Result<(), OpenError> {
    match kind_of(meta) {
        None => Ok(()),
        Some(kind) => Err(OpenError::NotRegular(kind)),
    }
}

/// What a file that is not regular is, for messages; `None` for a regular file.
pub(crate) fn kind_of(meta: &Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    Some(if t.is_file() {
        return None;
    } else if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO (named pipe)"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_socket() {
        "socket"
    } else {
        "special file"
    })
}

/// The reading itself, on the helper thread.
fn read_bounded(path: &Path) -> Result<String, ReadError> {
    let (file, meta) = open_regular(path)?;
    if meta.len() > MAX_TOKEN_FILE {
        return Err(ReadError::TooLarge);
    }
    let mut bytes = Vec::with_capacity(256);
    // One byte more than allowed tells a full file from one that grew since the fstat.
    file.take(MAX_TOKEN_FILE + 1).read_to_end(&mut bytes)?;
    first_line(&bytes)
}

/// The token in a file's bytes: its first line, trimmed (and without the byte-order mark some
/// Windows editors put first, which would otherwise make a good token fail as `invalid_auth`).
fn first_line(bytes: &[u8]) -> Result<String, ReadError> {
    if bytes.len() as u64 > MAX_TOKEN_FILE {
        return Err(ReadError::TooLarge);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| ReadError::NotText)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text.lines().next().unwrap_or("").trim();
    if first.is_empty() {
        return Err(ReadError::Empty);
    }
    Ok(first.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_token() {
        assert_eq!(first_line("\u{feff}xoxp-1\n".as_bytes()).unwrap(), "xoxp-1");
        assert_eq!(first_line(b"xoxp-2\r\nrest").unwrap(), "xoxp-2");
    }

    #[test]
    fn the_token_is_the_trimmed_first_line() {
        let big = vec![b'x'; MAX_TOKEN_FILE as usize + 1];
        let full = vec![b'x'; MAX_TOKEN_FILE as usize];
        let cases: &[(&[u8], Result<&str, ReadError>)] = &[
            (b"xoxp-1\n", Ok("xoxp-1")),
            (b"  xoxp-1  \r\nsecond\n", Ok("xoxp-1")),
            (b"xoxp-1", Ok("xoxp-1")),
            (b"", Err(ReadError::Empty)),
            (b"\n", Err(ReadError::Empty)),
            (b"   \nxoxp-on-line-2\n", Err(ReadError::Empty)),
            (b"\xff\xfe", Err(ReadError::NotText)),
            (&big, Err(ReadError::TooLarge)),
        ];
        for (bytes, want) in cases {
            let got = first_line(bytes);
            assert_eq!(
                got.as_deref().map_err(Clone::clone),
                want.clone(),
                "{bytes:?}"
            );
        }
        assert_eq!(first_line(&full).unwrap().len(), full.len());
    }

    #[test]
    fn only_small_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok");
        std::fs::write(&ok, "xoxp-1\n").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&ok, &link).unwrap();
        let big = dir.path().join("big");
        File::create(&big).unwrap().set_len(1 << 30).unwrap();
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();

        assert_eq!(read_token(&ok).unwrap(), "xoxp-1");
        assert_eq!(read_token(&link).unwrap(), "xoxp-1", "a credential symlink");
        assert_eq!(read_token(&big), Err(ReadError::TooLarge));
        assert_eq!(read_token(&dangling), Err(ReadError::NotFound));
        assert_eq!(
            read_token(dir.path()),
            Err(ReadError::NotRegular("directory"))
        );
        assert_eq!(
            read_token(Path::new("/dev/zero")),
            Err(ReadError::NotRegular("character device"))
        );
    }
}
