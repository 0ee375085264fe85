//! Reading the small files the agent depends on (config, identity) safely: only regular
//! files (following symlinks, as Kubernetes volumes use them), and only up to a bound.
//! A FIFO or a device at one of these paths would otherwise block a read forever; an
//! enormous file would be read whole.

use std::io::{self, Read};
use std::path::Path;

/// The largest config or identity file accepted (real ones are a few KiB).
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Reads a regular file of at most [`MAX_FILE_BYTES`].
pub fn read_small(path: &Path) -> io::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a directory, FIFO, socket or device)",
        ));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} bytes, more than the {MAX_FILE_BYTES} accepted",
                meta.len()
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // The file may grow between stat and read: the bound holds regardless.
    std::fs::File::open(path)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "file grew past the accepted size",
        ));
    }
    Ok(bytes)
}

/// Feeds a regular file of at most [`MAX_FILE_BYTES`] to `sink` in pieces of 64 KiB,
/// without holding it whole (the agent digests its config every few seconds to notice
/// changes: 2.4 MB for 10,000 targets); returns the length. The same refusals as
/// [`read_small`].
pub fn stream_small(path: &Path, sink: &mut dyn FnMut(&[u8])) -> io::Result<u64> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a directory, FIFO, socket or device)",
        ));
    }
    let mut file = std::fs::File::open(path)?.take(MAX_FILE_BYTES + 1);
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        total += n as u64;
        if total > MAX_FILE_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("more than the {MAX_FILE_BYTES} bytes accepted"),
            ));
        }
        sink(&buf[..n]);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_small_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"ok").unwrap();
        assert_eq!(read_small(&f).unwrap(), b"ok");
        let err = read_small(dir.path()).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            // Would block forever with std::fs::read.
            assert!(
                read_small(&fifo)
                    .unwrap_err()
                    .to_string()
                    .contains("not a regular file")
            );
        }
        let big = dir.path().join("big");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_FILE_BYTES + 1)
            .unwrap();
        assert!(
            read_small(&big)
                .unwrap_err()
                .to_string()
                .contains("more than")
        );
    }
}
