//! The edit-log file format.
//!
//! A segment file starts with a 24-byte header: magic `TUSKEDIT`, format version (u32 LE),
//! the segment's first txid (u64 LE) and the CRC32C of those 20 bytes. Records follow:
//!
//! ```text
//! [len: u32 LE][crc32c: u32 LE][txid: u64 LE][op: protobuf EditOp, len - 8 bytes]
//! ```
//!
//! `crc32c` covers the length, txid and op bytes, so a flipped length is caught too. Txids
//! are consecutive. When a record fails its check inside the in-progress segment, the rest
//! of the file is searched for any valid record: none means the write was torn by a crash
//! and the tail is cut off; one means the file is corrupt in the middle, and start-up stops
//! with the file's name and the offset.

use prost::Message;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender};
use tusk_common::checksum::{crc32c, crc32c_append};
use tusk_proto::storage::EditOp;

pub const SEGMENT_MAGIC: &[u8; 8] = b"TUSKEDIT";
pub const SEGMENT_VERSION: u32 = 1;
pub const HEADER_BYTES: usize = 24;
const RECORD_HEADER_BYTES: usize = 16;
/// Largest op accepted: a path is at most 8000 bytes, an op holds two, plus block lists.
pub const MAX_RECORD_BYTES: usize = 16 << 20;

pub fn segment_header(first_txid: u64) -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    h[..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&first_txid.to_le_bytes());
    let crc = crc32c(&h[..20]);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Appends one encoded record to `out`.
pub fn encode_record(out: &mut Vec<u8>, txid: u64, op: &EditOp) {
    let op_len = op.encoded_len();
    let len = u32::try_from(op_len + 8).expect("an edit op is far below 4 GiB");
    let start = out.len();
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&txid.to_le_bytes());
    op.encode(out).expect("a Vec grows as needed");
    let crc = crc32c_append(crc32c(&out[start..start + 4]), &out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    debug_assert_eq!(out.len() - start, RECORD_HEADER_BYTES + op_len);
}

/// Why a segment could not be read.
#[derive(Debug, Clone)]
pub struct SegmentError {
    pub file: PathBuf,
    pub offset: u64,
    pub reason: String,
}

impl fmt::Display for SegmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "edit log {} is corrupt at offset {}: {}", self.file.display(), self.offset, self.reason)
    }
}

impl std::error::Error for SegmentError {}

/// What a read found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentScan {
    pub first_txid: u64,
    /// Last valid txid (`first_txid - 1` when the segment holds no record).
    pub last_txid: u64,
    /// Bytes of the file that are valid (header + whole records).
    pub valid_bytes: u64,
    /// Set when a torn tail was found (an in-progress segment only).
    pub torn_at: Option<u64>,
}

/// One parsed record: txid, op bytes, position of the next record.
type Record<'a> = (u64, &'a [u8], usize);

/// Parses one record at `pos`: `Ok(Some((txid, op, next_pos)))`, `Ok(None)` at a clean end,
/// `Err(reason)` when it fails its checks.
fn parse_record(data: &[u8], pos: usize) -> Result<Option<Record<'_>>, String> {
    if pos == data.len() {
        return Ok(None);
    }
    if data.len() - pos < RECORD_HEADER_BYTES {
        return Err("truncated record header".into());
    }
    let len = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap_or_default()) as usize;
    if !(8..=MAX_RECORD_BYTES + 8).contains(&len) {
        return Err(format!("record length {len} is out of range"));
    }
    let end = pos + 8 + len;
    if end > data.len() {
        return Err(format!("record of {len} bytes runs past the end of the file"));
    }
    let stored = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().unwrap_or_default());
    let computed = crc32c_append(crc32c(&data[pos..pos + 4]), &data[pos + 8..end]);
    if stored != computed {
        return Err(format!("checksum mismatch (stored {stored:08x}, computed {computed:08x})"));
    }
    let txid = u64::from_le_bytes(data[pos + 8..pos + 16].try_into().unwrap_or_default());
    Ok(Some((txid, &data[pos + 16..end], end)))
}

/// True when some position after `from` holds a record that passes its checksum.
fn valid_record_after(data: &[u8], from: usize) -> Option<usize> {
    (from + 1..data.len().saturating_sub(RECORD_HEADER_BYTES - 1))
        .find(|&p| matches!(parse_record(data, p), Ok(Some(_))))
}

/// Reads a whole segment, calling `apply` for every record in order. `in_progress` allows a
/// torn tail; anything else wrong is a [`SegmentError`] naming the file and offset.
pub fn read_segment(
    file: &Path,
    expected_first: Option<u64>,
    in_progress: bool,
    mut apply: impl FnMut(u64, EditOp) -> Result<(), String>,
) -> Result<SegmentScan, SegmentError> {
    let err = |offset: usize, reason: String| SegmentError { file: file.to_owned(), offset: offset as u64, reason };
    let data = std::fs::read(file).map_err(|e| err(0, format!("cannot read: {e}")))?;
    if data.len() < HEADER_BYTES {
        // A crash between creating the file and writing its header leaves it short.
        if in_progress {
            let first = expected_first.unwrap_or(0);
            return Ok(SegmentScan {
                first_txid: first,
                last_txid: first.saturating_sub(1),
                valid_bytes: 0,
                torn_at: Some(0),
            });
        }
        return Err(err(0, "file is shorter than its header".into()));
    }
    if &data[..8] != SEGMENT_MAGIC {
        return Err(err(0, "bad magic: not a Tusk edit-log segment".into()));
    }
    let version = u32::from_le_bytes(data[8..12].try_into().unwrap_or_default());
    let first = u64::from_le_bytes(data[12..20].try_into().unwrap_or_default());
    let hcrc = u32::from_le_bytes(data[20..24].try_into().unwrap_or_default());
    if hcrc != crc32c(&data[..20]) {
        return Err(err(20, "header checksum mismatch".into()));
    }
    if version != SEGMENT_VERSION {
        return Err(err(8, format!("unsupported segment version {version}")));
    }
    if let Some(want) = expected_first {
        if want != first {
            return Err(err(12, format!("segment starts at txid {first}, its name says {want}")));
        }
    }
    // Checking and decoding the records runs on a second thread, applying them on this one,
    // in order. The decoder stops when the applier does (the channel closes).
    let (tx, rx) = sync_channel::<Vec<(usize, u64, EditOp)>>(4);
    let data = &data;
    std::thread::scope(|s| {
        let decoder = std::thread::Builder::new()
            .name("edit-log-decode".into())
            .spawn_scoped(s, move || decode_records(data, first, in_progress, tx))
            .map_err(|e| err(0, format!("cannot start the edit decoding thread: {e}")))?;
        let mut applied = Ok(());
        for batch in rx {
            for (pos, txid, op) in batch {
                if let Err(reason) = apply(txid, op) {
                    applied = Err(err(pos, format!("txid {txid} cannot be applied: {reason}")));
                    break;
                }
            }
            if applied.is_err() {
                break;
            }
        }
        // Dropping the receiver (end of the loop) lets a decoder blocked on a full channel
        // finish.
        let decoded = decoder.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        applied?;
        decoded.map_err(|(offset, reason)| err(offset, reason))
    })
}

/// Records decoded per hand-off to the applying thread.
const DECODE_BATCH: usize = 512;

/// Checks and decodes every record of a segment's `data` (header already checked), sending
/// them in batches; the result is the segment's scan or the first bad record's offset and
/// reason, as [`read_segment`] reports them.
#[allow(clippy::type_complexity)]
fn decode_records(
    data: &[u8],
    first: u64,
    in_progress: bool,
    tx: SyncSender<Vec<(usize, u64, EditOp)>>,
) -> Result<SegmentScan, (usize, String)> {
    let mut pos = HEADER_BYTES;
    let mut next = first;
    let mut batch = Vec::with_capacity(DECODE_BATCH);
    let send = |batch: &mut Vec<(usize, u64, EditOp)>| -> bool {
        let full = std::mem::replace(batch, Vec::with_capacity(DECODE_BATCH));
        full.is_empty() || tx.send(full).is_ok()
    };
    let outcome = loop {
        match parse_record(data, pos) {
            Ok(None) => {
                break Ok(SegmentScan {
                    first_txid: first,
                    last_txid: next - 1,
                    valid_bytes: pos as u64,
                    torn_at: None,
                })
            }
            Ok(Some((txid, op_bytes, end))) => {
                if txid != next {
                    break Err((pos, format!("expected txid {next}, found {txid}")));
                }
                let op = match EditOp::decode(op_bytes) {
                    Ok(op) => op,
                    Err(e) => break Err((pos, format!("undecodable operation: {e}"))),
                };
                batch.push((pos, txid, op));
                if batch.len() == DECODE_BATCH && !send(&mut batch) {
                    // The applier stopped: its error is the one reported.
                    return Ok(SegmentScan {
                        first_txid: first,
                        last_txid: next,
                        valid_bytes: end as u64,
                        torn_at: None,
                    });
                }
                next += 1;
                pos = end;
            }
            Err(reason) => {
                if !in_progress {
                    break Err((pos, reason));
                }
                if let Some(later) = valid_record_after(data, pos) {
                    break Err((
                        pos,
                        format!(
                            "{reason}; a valid record follows at offset {later}, so this is not a torn final write"
                        ),
                    ));
                }
                break Ok(SegmentScan {
                    first_txid: first,
                    last_txid: next - 1,
                    valid_bytes: pos as u64,
                    torn_at: Some(pos as u64),
                });
            }
        }
    };
    // Every record before the end (or before the bad one) is applied before the outcome.
    send(&mut batch);
    outcome
}

/// `edits_inprogress_<first>` / `edits_<first>-<last>` / `fsimage_<txid>` names, padded to
/// 19 digits as HDFS does so they sort by name.
pub fn inprogress_name(first: u64) -> String {
    format!("edits_inprogress_{first:019}")
}
pub fn finished_name(first: u64, last: u64) -> String {
    format!("edits_{first:019}-{last:019}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentName {
    InProgress { first: u64 },
    Finished { first: u64, last: u64 },
}

pub fn parse_segment_name(name: &str) -> Option<SegmentName> {
    if let Some(rest) = name.strip_prefix("edits_inprogress_") {
        return rest.parse().ok().map(|first| SegmentName::InProgress { first });
    }
    let rest = name.strip_prefix("edits_")?;
    let (a, b) = rest.split_once('-')?;
    Some(SegmentName::Finished { first: a.parse().ok()?, last: b.parse().ok()? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tusk_proto::storage::{edit_op::Op, OpDelete};

    fn op(i: u64) -> EditOp {
        EditOp { op: Some(Op::Delete(OpDelete { path: format!("/file-{i}"), time_ms: i as i64 })) }
    }

    fn write_segment(dir: &Path, first: u64, n: u64) -> (PathBuf, Vec<usize>) {
        let mut data = segment_header(first).to_vec();
        let mut starts = Vec::new();
        for t in first..first + n {
            starts.push(data.len());
            encode_record(&mut data, t, &op(t));
        }
        let p = dir.join(inprogress_name(first));
        std::fs::write(&p, &data).unwrap();
        (p, starts)
    }

    fn count(p: &Path, in_progress: bool) -> Result<(SegmentScan, Vec<u64>), SegmentError> {
        let mut seen = Vec::new();
        let scan = read_segment(p, None, in_progress, |t, _| {
            seen.push(t);
            Ok(())
        })?;
        Ok((scan, seen))
    }

    #[test]
    fn round_trip() {
        let d = tempfile::tempdir().unwrap();
        let (p, _) = write_segment(d.path(), 7, 100);
        let (scan, seen) = count(&p, false).unwrap();
        assert_eq!(seen, (7..107).collect::<Vec<_>>());
        assert_eq!(scan.last_txid, 106);
        assert_eq!(scan.torn_at, None);
    }

    /// Records are decoded on another thread in batches: they are still applied in order,
    /// and an apply failure stops at that record and names its offset, whatever the batch.
    #[test]
    fn apply_failure_stops_at_its_record() {
        let d = tempfile::tempdir().unwrap();
        let n = 3 * DECODE_BATCH as u64 + 5;
        let (p, starts) = write_segment(d.path(), 1, n);
        let (scan, seen) = count(&p, false).unwrap();
        assert_eq!(seen, (1..=n).collect::<Vec<_>>());
        assert_eq!(scan.last_txid, n);
        for fail_at in [1, DECODE_BATCH as u64, DECODE_BATCH as u64 + 1, n] {
            let mut seen = Vec::new();
            let e = read_segment(&p, None, false, |t, op| {
                assert_eq!(op, super::tests::op(t));
                if t == fail_at {
                    return Err("refused".into());
                }
                seen.push(t);
                Ok(())
            })
            .unwrap_err();
            assert_eq!(e.offset, starts[(fail_at - 1) as usize] as u64, "fail at {fail_at}");
            assert!(e.reason.contains("refused"), "{e}");
            assert_eq!(seen, (1..fail_at).collect::<Vec<_>>());
        }
    }

    #[test]
    fn torn_tail_is_cut_only_in_progress() {
        let d = tempfile::tempdir().unwrap();
        let (p, starts) = write_segment(d.path(), 1, 50);
        let len = std::fs::metadata(&p).unwrap().len();
        // Cut the last record in half.
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.set_len(len - 5).unwrap();
        let (scan, seen) = count(&p, true).unwrap();
        assert_eq!(seen.len(), 49);
        assert_eq!(scan.torn_at, Some(starts[49] as u64));
        assert_eq!(scan.valid_bytes, starts[49] as u64);
        let e = count(&p, false).unwrap_err();
        assert_eq!(e.offset, starts[49] as u64);
    }

    #[test]
    fn garbage_after_last_record_is_torn() {
        let d = tempfile::tempdir().unwrap();
        let (p, _) = write_segment(d.path(), 1, 10);
        let mut data = std::fs::read(&p).unwrap();
        let valid = data.len();
        data.extend_from_slice(&[0xAB; 40]);
        std::fs::write(&p, &data).unwrap();
        let (scan, seen) = count(&p, true).unwrap();
        assert_eq!(seen.len(), 10);
        assert_eq!(scan.valid_bytes, valid as u64);
    }

    #[test]
    fn flipped_byte_in_the_middle_names_file_and_offset() {
        let d = tempfile::tempdir().unwrap();
        let (p, starts) = write_segment(d.path(), 1, 100);
        for victim in [starts[50] + 20, starts[50] + 1, starts[50] + 9] {
            let mut data = std::fs::read(&p).unwrap();
            data[victim] ^= 0x40;
            let q = d.path().join("copy");
            std::fs::write(&q, &data).unwrap();
            let e = count(&q, true).unwrap_err();
            assert_eq!(e.offset, starts[50] as u64, "victim {victim}: {e}");
            assert!(e.to_string().contains(&q.display().to_string()));
            assert!(e.to_string().contains("offset"));
        }
    }

    #[test]
    fn names() {
        assert_eq!(parse_segment_name(&inprogress_name(5)), Some(SegmentName::InProgress { first: 5 }));
        assert_eq!(parse_segment_name(&finished_name(5, 9)), Some(SegmentName::Finished { first: 5, last: 9 }));
        assert_eq!(parse_segment_name("fsimage_1"), None);
        assert_eq!(parse_segment_name("edits_x-1"), None);
    }
}
