//! Files that Tusk later trusts are written to a temporary name, fsynced, renamed into
//! place, and their directory fsynced, so a crash leaves either the old or the new file,
//! never a torn one. Small control files (VERSION, seen_txid) also carry a checksum line.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Fsyncs a directory, making a rename or create inside it durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn tmp_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes `path` atomically: `write` fills a temporary file which is then fsynced and
/// renamed over `path`; the directory is fsynced last.
pub fn write_atomic<F>(path: &Path, write: F) -> io::Result<()>
where
    F: FnOnce(&mut io::BufWriter<&File>) -> io::Result<()>,
{
    let tmp = tmp_name(path);
    let file = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
    {
        let mut w = io::BufWriter::with_capacity(1 << 20, &file);
        write(&mut w)?;
        w.flush()?;
    }
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        fsync_dir(parent)?;
    }
    Ok(())
}

/// Writes a small `key=value` properties file with a trailing `crc32c=` line covering the
/// lines above it, atomically.
pub fn write_properties(path: &Path, props: &[(&str, String)]) -> io::Result<()> {
    let mut body = String::new();
    for (k, v) in props {
        debug_assert!(!k.contains('=') && !v.contains('\n'));
        body.push_str(k);
        body.push('=');
        body.push_str(v);
        body.push('\n');
    }
    let crc = crate::checksum::crc32c(body.as_bytes());
    body.push_str(&format!("crc32c={crc:08x}\n"));
    write_atomic(path, |w| w.write_all(body.as_bytes()))
}

/// Why a properties file could not be trusted.
#[derive(Debug, thiserror::Error)]
pub enum PropertiesError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

/// Reads a file written by [`write_properties`], verifying its checksum.
pub fn read_properties(path: &Path) -> Result<Vec<(String, String)>, PropertiesError> {
    let text = fs::read_to_string(path).map_err(|source| PropertiesError::Io { path: path.to_owned(), source })?;
    let corrupt = |reason: &str| PropertiesError::Corrupt { path: path.to_owned(), reason: reason.to_owned() };
    let body_end = text.rfind("crc32c=").ok_or_else(|| corrupt("no crc32c line"))?;
    let (body, crc_line) = text.split_at(body_end);
    let want = u32::from_str_radix(crc_line.trim_start_matches("crc32c=").trim(), 16)
        .map_err(|_| corrupt("unreadable crc32c line"))?;
    let got = crate::checksum::crc32c(body.as_bytes());
    if want != got {
        return Err(corrupt(&format!("checksum mismatch (stored {want:08x}, computed {got:08x})")));
    }
    body.lines()
        .map(|line| {
            line.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| corrupt(&format!("malformed line {line:?}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_round_trip_and_detect_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("VERSION");
        write_properties(&p, &[("clusterID", "CID-1".into()), ("layoutVersion", "1".into())]).unwrap();
        let props = read_properties(&p).unwrap();
        assert_eq!(props[0], ("clusterID".to_string(), "CID-1".to_string()));
        let mut bytes = fs::read(&p).unwrap();
        bytes[3] ^= 0x20;
        fs::write(&p, bytes).unwrap();
        let err = read_properties(&p).unwrap_err().to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
        assert!(!dir.path().join("VERSION.tmp").exists());
    }
}
