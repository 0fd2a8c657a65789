//! The fsimage: the whole namespace at one txid, written atomically.
//!
//! ```text
//! "TUSKIMG1" | version u32 LE | ImageSummary (length-delimited protobuf)
//!   | ImageInode... (length-delimited, depth-first pre-order, children in name order)
//!   | trailer: payload length u64 LE | crc32c of the payload u32 LE | "TUSKEND!"
//! ```
//!
//! The bytes depend only on the namespace and txid, so two images of the same state are
//! identical (the checkpointer's merge can be compared with the namenode's own save). The
//! file is streamed on both sides: memory does not grow with the image beyond the namespace.

use crate::inode::{Block, Blocks, Children, FileMeta, Inode, InodeIdx, InodeTable, Interner, Kind, Name, ROOT};
use crate::namespace::{Counts, Namespace};
use prost::Message;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use tusk_common::checksum::{CrcReader, CrcWriter};
use tusk_common::durable::write_atomic;
use tusk_proto::storage::{Block as PbBlock, ImageInode, ImageSummary};

pub const IMAGE_MAGIC: &[u8; 8] = b"TUSKIMG1";
pub const IMAGE_END: &[u8; 8] = b"TUSKEND!";
pub const IMAGE_VERSION: u32 = 1;
const TRAILER_BYTES: u64 = 20;
const MAX_MESSAGE_BYTES: usize = 64 << 20;

pub fn image_name(txid: u64) -> String {
    format!("fsimage_{txid:019}")
}

pub fn parse_image_name(name: &str) -> Option<u64> {
    name.strip_prefix("fsimage_")?.parse().ok()
}

/// Why an image could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("fsimage {file} is unusable (offset {offset}): {reason}")]
pub struct ImageError {
    pub file: String,
    pub offset: u64,
    pub reason: String,
}

fn write_delimited<W: Write>(w: &mut W, msg: &impl Message, scratch: &mut Vec<u8>) -> io::Result<()> {
    scratch.clear();
    msg.encode_length_delimited(scratch).map_err(io::Error::other)?;
    w.write_all(scratch)
}

fn to_pb_blocks(blocks: &[Block]) -> Vec<PbBlock> {
    blocks.iter().map(|b| PbBlock { block_id: b.id, generation_stamp: b.genstamp, num_bytes: b.len }).collect()
}

/// Writes `ns` at `txid` to `path` atomically.
pub fn save(ns: &Namespace, txid: u64, cluster_id: &str, path: &Path) -> io::Result<()> {
    write_atomic(path, |out| {
        out.write_all(IMAGE_MAGIC)?;
        out.write_all(&IMAGE_VERSION.to_le_bytes())?;
        let mut w = CrcWriter::new(out);
        let mut scratch = Vec::with_capacity(256);
        let summary = ImageSummary {
            txid,
            cluster_id: cluster_id.to_owned(),
            inode_count: ns.inodes.live() as u64,
            last_block_id: ns.last_block_id,
            generation_stamp: ns.generation_stamp,
            written_time_ms: 0,
            last_inode_id: ns.last_inode_id,
        };
        write_delimited(&mut w, &summary, &mut scratch)?;
        let mut result = Ok(());
        let mut written = 0u64;
        ns.walk(ROOT, |_, ino| {
            if result.is_err() {
                return;
            }
            let mut rec = ImageInode {
                name: ino.name.as_str().to_owned(),
                is_dir: ino.is_dir(),
                permission: u32::from(ino.perm),
                owner: ns.names.name(ino.owner).to_owned(),
                group: ns.names.name(ino.group).to_owned(),
                modification_time_ms: ino.mtime_ms,
                access_time_ms: ino.atime_ms,
                inode_id: ino.id,
                ..Default::default()
            };
            match &ino.kind {
                Kind::Dir(children) => rec.children_num = children.len() as u64,
                Kind::File(f) => {
                    rec.replication = u32::from(f.replication);
                    rec.block_size = f.block_size;
                    rec.blocks = to_pb_blocks(&f.blocks);
                    rec.client_name = f.holder().unwrap_or("").to_owned();
                }
            }
            written += 1;
            result = write_delimited(&mut w, &rec, &mut scratch);
        });
        result?;
        assert_eq!(written, summary.inode_count, "every live inode is reachable from the root");
        let (crc, payload) = (w.crc(), w.written_bytes());
        let out = w.into_inner();
        out.write_all(&payload.to_le_bytes())?;
        out.write_all(&crc.to_le_bytes())?;
        out.write_all(IMAGE_END)
    })
}

fn read_varint<R: Read>(r: &mut R) -> io::Result<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let mut b = [0u8; 1];
        r.read_exact(&mut b)?;
        value |= u64::from(b[0] & 0x7f) << shift;
        if b[0] & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(io::Error::new(io::ErrorKind::InvalidData, "varint longer than 10 bytes"))
}

fn read_delimited<M: Message + Default, R: Read>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<M> {
    let len = read_varint(r)? as usize;
    if len > MAX_MESSAGE_BYTES {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("record of {len} bytes is too large")));
    }
    buf.resize(len, 0);
    r.read_exact(buf)?;
    M::decode(&buf[..]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// As [`read_delimited`], into `msg` (cleared first), reusing its strings' and vectors'
/// buffers: loading an image then allocates nothing per record.
fn read_delimited_into<M: Message, R: Read>(r: &mut R, buf: &mut Vec<u8>, msg: &mut M) -> io::Result<()> {
    let len = read_varint(r)? as usize;
    if len > MAX_MESSAGE_BYTES {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("record of {len} bytes is too large")));
    }
    buf.resize(len, 0);
    r.read_exact(buf)?;
    msg.clear();
    msg.merge(&buf[..]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// An image opened for reading: header checked, positioned at the payload, which is read
/// through a checksumming reader limited to its length.
struct Opened {
    shown: String,
    total: u64,
    payload_len: u64,
    payload: CrcReader<io::Take<BufReader<std::fs::File>>>,
}

impl Opened {
    fn fail(&self, offset: u64, reason: String) -> ImageError {
        ImageError { file: self.shown.clone(), offset, reason }
    }

    fn open(path: &Path) -> Result<Opened, ImageError> {
        let shown = path.display().to_string();
        let fail = |offset: u64, reason: String| ImageError { file: shown.clone(), offset, reason };
        let file = std::fs::File::open(path).map_err(|e| fail(0, e.to_string()))?;
        let total = file.metadata().map_err(|e| fail(0, e.to_string()))?.len();
        if total < 12 + TRAILER_BYTES {
            return Err(fail(0, "file too short".into()));
        }
        let mut r = BufReader::with_capacity(1 << 20, file);
        let mut head = [0u8; 12];
        r.read_exact(&mut head).map_err(|e| fail(0, e.to_string()))?;
        if &head[..8] != IMAGE_MAGIC {
            return Err(fail(0, "bad magic: not a Tusk fsimage".into()));
        }
        let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        if version != IMAGE_VERSION {
            return Err(fail(8, format!("unsupported image version {version}")));
        }
        let payload_len = total - 12 - TRAILER_BYTES;
        Ok(Opened { shown, total, payload_len, payload: CrcReader::new(r.take(payload_len)) })
    }

    /// Offset in the file of the next payload byte.
    fn at(&self) -> u64 {
        12 + self.payload.read_bytes()
    }

    /// After the whole payload has been read: the trailer's length and checksum must match.
    fn check_trailer(self) -> Result<(), ImageError> {
        if self.payload.read_bytes() != self.payload_len {
            return Err(self.fail(self.at(), "unexpected bytes after the last inode".into()));
        }
        let crc = self.payload.crc();
        let at = self.total - TRAILER_BYTES;
        let fail = |reason: String| ImageError { file: self.shown.clone(), offset: at, reason };
        let mut r = self.payload.into_inner().into_inner();
        let mut trailer = [0u8; TRAILER_BYTES as usize];
        r.read_exact(&mut trailer).map_err(|e| fail(e.to_string()))?;
        let stored_len = u64::from_le_bytes(trailer[..8].try_into().unwrap_or_default());
        let stored_crc = u32::from_le_bytes(trailer[8..12].try_into().unwrap_or_default());
        if &trailer[12..] != IMAGE_END || stored_len != self.payload_len {
            return Err(fail("bad trailer (file truncated or not an image)".into()));
        }
        if stored_crc != crc {
            return Err(fail(format!("checksum mismatch (stored {stored_crc:08x}, computed {crc:08x})")));
        }
        Ok(())
    }
}

/// Records decoded per hand-off from the reading thread to the building one.
const BATCH_RECORDS: usize = 1024;

/// Decoded records on their way to the builder, each with its offset in the file (for
/// messages). Batches go back to the reader once built, so their strings are reused.
#[derive(Default)]
struct Batch {
    recs: Vec<ImageInode>,
    offsets: Vec<u64>,
    len: usize,
}

/// Builds the namespace from records in image order (depth-first pre-order, children in
/// name order), checking the tree's shape as it goes.
struct Builder {
    shown: String,
    inode_count: u64,
    inodes: InodeTable,
    names: Interner,
    counts: Counts,
    /// (directory slot, children still to read)
    stack: Vec<(InodeIdx, u64)>,
    /// Owner and group of the previous record with their interned ids: most records repeat
    /// them, and a string comparison is cheaper than a hash lookup.
    last_owner: (String, u32),
    last_group: (String, u32),
    added: u64,
}

fn intern_cached(names: &mut Interner, last: &mut (String, u32), name: &str) -> u32 {
    if last.1 == u32::MAX || last.0 != name {
        last.1 = names.intern(name);
        last.0.clear();
        last.0.push_str(name);
    }
    last.1
}

impl Builder {
    fn new(shown: String, inode_count: u64, capacity: usize) -> Builder {
        Builder {
            shown,
            inode_count,
            inodes: InodeTable::with_capacity(capacity),
            names: Interner::default(),
            counts: Counts::default(),
            stack: Vec::new(),
            last_owner: (String::new(), u32::MAX),
            last_group: (String::new(), u32::MAX),
            added: 0,
        }
    }

    fn fail(&self, offset: u64, reason: String) -> ImageError {
        ImageError { file: self.shown.clone(), offset, reason }
    }

    fn add(&mut self, offset: u64, rec: &ImageInode) -> Result<(), ImageError> {
        let n = self.added;
        if n >= self.inode_count {
            return Err(self.fail(offset, "more inodes than the summary counts".into()));
        }
        let parent = match self.stack.last_mut() {
            Some((p, left)) => {
                *left -= 1;
                *p
            }
            None if n == 0 => ROOT,
            None => return Err(self.fail(offset, "inode outside the tree".into())),
        };
        let kind = if rec.is_dir {
            self.counts.dirs += 1;
            Kind::Dir(Children::with_capacity(rec.children_num.min(1 << 20) as usize))
        } else {
            self.counts.files += 1;
            self.counts.blocks += rec.blocks.len() as u64;
            let replication =
                u16::try_from(rec.replication).map_err(|_| self.fail(offset, "replication out of range".into()))?;
            let blocks = match &rec.blocks[..] {
                [b] => Blocks::One(Block { id: b.block_id, genstamp: b.generation_stamp, len: b.num_bytes }),
                many => Blocks::Many(
                    many.iter()
                        .map(|b| Block { id: b.block_id, genstamp: b.generation_stamp, len: b.num_bytes })
                        .collect(),
                ),
            };
            Kind::File(FileMeta {
                replication,
                block_size: rec.block_size,
                blocks,
                under_construction: (!rec.client_name.is_empty()).then(|| Box::new(rec.client_name.as_str().into())),
            })
        };
        if n > 0 {
            if let Err(why) = tusk_common::path::validate_component(&rec.name) {
                return Err(self.fail(offset, format!("bad name {:?}: {why}", rec.name)));
            }
        }
        let owner = intern_cached(&mut self.names, &mut self.last_owner, &rec.owner);
        let group = intern_cached(&mut self.names, &mut self.last_group, &rec.group);
        let name = Name::from(rec.name.as_str());
        if n > 0 {
            let name_ok = match self.inodes.get(parent).children().last() {
                Some(&prev) => self.inodes.get(prev).name < name,
                None => true,
            };
            if !name_ok {
                return Err(self.fail(offset, "children out of order".into()));
            }
        }
        let idx = self.inodes.insert(Inode {
            id: rec.inode_id,
            name,
            parent,
            perm: (rec.permission & 0o7777) as u16,
            owner,
            group,
            mtime_ms: rec.modification_time_ms,
            atime_ms: rec.access_time_ms,
            kind,
        });
        if n == 0 {
            if idx != ROOT || !rec.is_dir {
                return Err(self.fail(offset, "the first inode is not the root directory".into()));
            }
        } else if let Kind::Dir(c) = &mut self.inodes.get_mut(parent).kind {
            c.push(rec.name.as_bytes(), idx);
        }
        while matches!(self.stack.last(), Some((_, 0))) {
            self.stack.pop();
        }
        if rec.is_dir && rec.children_num > 0 {
            self.stack.push((idx, rec.children_num));
        }
        self.added += 1;
        Ok(())
    }

    /// Builds every batch received, handing each back once built. Stops at the first error.
    fn run(&mut self, full: Receiver<Batch>, empty: Sender<Batch>) -> Result<(), ImageError> {
        for batch in full {
            for k in 0..batch.len {
                self.add(batch.offsets[k], &batch.recs[k])?;
            }
            // The reader may have finished: then the batch is simply dropped.
            let _ = empty.send(batch);
        }
        Ok(())
    }
}

/// Reads and decodes `count` records into batches for the builder. Returns early (`Ok`) if
/// the builder has stopped (its error is the one reported).
fn read_records(
    img: &mut Opened,
    count: u64,
    full: SyncSender<Batch>,
    empty: Receiver<Batch>,
) -> Result<(), ImageError> {
    let mut buf = Vec::new();
    let mut n = 0u64;
    while n < count {
        let mut batch = empty.try_recv().unwrap_or_default();
        batch.len = 0;
        while batch.len < BATCH_RECORDS && n < count {
            if batch.recs.len() == batch.len {
                batch.recs.push(ImageInode::default());
                batch.offsets.push(0);
            }
            let offset = img.at();
            read_delimited_into(&mut img.payload, &mut buf, &mut batch.recs[batch.len])
                .map_err(|e| img.fail(offset, format!("inode {n}: {e}")))?;
            batch.offsets[batch.len] = offset;
            batch.len += 1;
            n += 1;
        }
        if full.send(batch).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// Loads an image, verifying its checksum before returning anything. Two threads: this one
/// reads, checksums and decodes the records, another builds the namespace from them.
pub fn load(path: &Path) -> Result<(Namespace, ImageSummary), ImageError> {
    let mut img = Opened::open(path)?;
    let mut buf = Vec::new();
    let summary: ImageSummary =
        read_delimited(&mut img.payload, &mut buf).map_err(|e| img.fail(12, format!("summary: {e}")))?;
    // Records are at least two bytes (a length and a field), so a damaged count cannot make
    // this reserve more than the file could hold.
    let capacity = usize::try_from(summary.inode_count.min(img.payload_len / 2)).unwrap_or(0);
    let mut builder = Builder::new(img.shown.clone(), summary.inode_count, capacity);
    let (full_tx, full_rx) = sync_channel::<Batch>(4);
    let (empty_tx, empty_rx) = channel::<Batch>();
    let (built, read) = std::thread::scope(|s| {
        let b = &mut builder;
        let handle = std::thread::Builder::new()
            .name("fsimage-build".into())
            .spawn_scoped(s, move || b.run(full_rx, empty_tx))
            .map_err(|e| img.fail(0, format!("cannot start the image builder thread: {e}")))?;
        let read = read_records(&mut img, summary.inode_count, full_tx, empty_rx);
        let built = handle.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        Ok::<_, ImageError>((built, read))
    })?;
    // The earlier failure in the file is the one to report.
    match (built, read) {
        (Err(b), Err(r)) => return Err(if r.offset < b.offset { r } else { b }),
        (Err(e), Ok(())) | (Ok(()), Err(e)) => return Err(e),
        (Ok(()), Ok(())) => {}
    }
    if builder.added != summary.inode_count {
        return Err(img.fail(img.at(), "fewer inodes than the summary counts".into()));
    }
    if !builder.stack.is_empty() {
        return Err(img.fail(img.at(), "image ends inside a directory".into()));
    }
    img.check_trailer()?;
    let ns = Namespace {
        inodes: builder.inodes,
        names: builder.names,
        counts: builder.counts,
        last_inode_id: summary.last_inode_id,
        last_block_id: summary.last_block_id,
        generation_stamp: summary.generation_stamp,
        removed_blocks: Vec::new(),
    };
    Ok((ns, summary))
}

/// Checks an image without building its namespace: magic, version, summary, length and the
/// payload checksum against the trailer. What the namenode runs on an uploaded checkpoint.
pub fn verify(path: &Path) -> Result<ImageSummary, ImageError> {
    let mut img = Opened::open(path)?;
    let mut buf = Vec::new();
    let summary: ImageSummary =
        read_delimited(&mut img.payload, &mut buf).map_err(|e| img.fail(12, format!("summary: {e}")))?;
    io::copy(&mut img.payload, &mut io::sink()).map_err(|e| img.fail(img.at(), e.to_string()))?;
    img.check_trailer()?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tusk_common::path::FsPath;
    use tusk_proto::storage::{edit_op::Op, EditOp, OpAdd, OpMkdir};

    fn sample() -> Namespace {
        let mut ns = Namespace::new("root", "supergroup", 1);
        for d in ["/a", "/a/b", "/c", "/a/b/d"] {
            ns.apply(&EditOp {
                op: Some(Op::Mkdir(OpMkdir {
                    path: d.into(),
                    permission: 0o750,
                    owner: "al".into(),
                    group: "g".into(),
                    time_ms: 7,
                })),
            })
            .unwrap();
        }
        for f in ["/a/f1", "/a/b/f2", "/zz"] {
            ns.apply(&EditOp {
                op: Some(Op::Add(OpAdd {
                    path: f.into(),
                    permission: 0o644,
                    owner: "bo".into(),
                    group: "g".into(),
                    time_ms: 8,
                    replication: 2,
                    block_size: 4096,
                    client_name: "c1".into(),
                    overwrite: false,
                })),
            })
            .unwrap();
        }
        ns
    }

    #[test]
    fn round_trip_is_exact_and_deterministic() {
        let d = tempfile::tempdir().unwrap();
        let ns = sample();
        let p1 = d.path().join(image_name(42));
        save(&ns, 42, "CID-x", &p1).unwrap();
        let (back, summary) = load(&p1).unwrap();
        assert_eq!(summary.txid, 42);
        back.check_invariants().unwrap();
        assert_eq!(back.counts(), ns.counts());
        let p2 = d.path().join(image_name(43));
        save(&back, 42, "CID-x", &p2).unwrap();
        assert_eq!(std::fs::read(&p1).unwrap(), std::fs::read(&p2).unwrap());
        let f2 = back.lookup(&FsPath::parse("/a/b/f2").unwrap()).unwrap();
        assert_eq!(back.owner_name(f2), "bo");
        assert_eq!(back.inode(f2).file().unwrap().holder(), Some("c1"));
    }

    #[test]
    fn any_flipped_byte_is_detected() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(image_name(1));
        save(&sample(), 1, "CID", &p).unwrap();
        let good = std::fs::read(&p).unwrap();
        for i in (0..good.len()).step_by(7) {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            std::fs::write(&p, &bad).unwrap();
            assert!(load(&p).is_err(), "flip at {i} not detected");
        }
        std::fs::write(&p, &good[..good.len() - 3]).unwrap();
        assert!(load(&p).is_err());
    }
}
