//! The reduce side's merge: the sorted runs a reduce fetched (one per map), held in memory
//! up to a budget (`reduce.shuffle.memory.mb`, default 512) and spilled to the tracker's
//! local disk past it, merged with a heap into one sorted stream and grouped by key.
//!
//! A spilled run is the run's records as fetched, then the CRC32C of them; it is checked
//! when the merge reaches its end (an attempt whose run fails the check fails, before its
//! output is committed).

use crate::mapout::Records;
use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use tusk_proto::mapreduce::JobSpec;

pub const MEMORY_SETTING: &str = "reduce.shuffle.memory.mb";
const DEFAULT_MEMORY_MB: u64 = 512;
const IO_BUFFER: usize = 1 << 20;

/// The job's in-memory budget for a reduce's fetched runs, in bytes.
pub fn memory_budget(spec: &JobSpec) -> Result<u64, String> {
    match spec.settings.get(MEMORY_SETTING) {
        Some(v) => v.parse::<u64>().map(|mb| mb << 20).map_err(|_| format!("{MEMORY_SETTING}: not a number: {v}")),
        None => Ok(DEFAULT_MEMORY_MB << 20),
    }
}

/// One sorted run: in memory, or spilled to a local file.
pub enum Run {
    Memory(Vec<u8>),
    Disk(PathBuf),
}

/// Keeps decoded runs in memory while they fit in `budget` bytes, spilling the rest into
/// `dir` (created when first needed).
pub struct Runs {
    dir: PathBuf,
    budget: u64,
    in_memory: u64,
    pub runs: Vec<Run>,
}

impl Runs {
    pub fn new(dir: &Path, budget: u64) -> Runs {
        Runs { dir: dir.to_owned(), budget, in_memory: 0, runs: Vec::new() }
    }

    pub fn add(&mut self, run: Vec<u8>) -> io::Result<()> {
        if run.is_empty() {
            return Ok(());
        }
        if self.in_memory + run.len() as u64 <= self.budget {
            self.in_memory += run.len() as u64;
            self.runs.push(Run::Memory(run));
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(format!("run{}", self.runs.len()));
        let mut out = BufWriter::with_capacity(IO_BUFFER, File::create(&path)?);
        out.write_all(&run)?;
        out.write_all(&tusk_common::checksum::crc32c(&run).to_be_bytes())?;
        out.flush()?;
        self.runs.push(Run::Disk(path));
        Ok(())
    }

    pub fn spilled(&self) -> usize {
        self.runs.iter().filter(|r| matches!(r, Run::Disk(_))).count()
    }
}

impl Drop for Runs {
    fn drop(&mut self) {
        if self.spilled() > 0 {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Records of a run spilled to disk, its checksum verified at its end.
struct DiskRecords {
    r: BufReader<File>,
    left: u64,
    crc: u32,
    path: PathBuf,
}

impl DiskRecords {
    fn open(path: &Path) -> io::Result<DiskRecords> {
        let f = File::open(path)?;
        let len = f.metadata()?.len();
        if len < 4 {
            return Err(invalid(format!("{}: a spilled run of {len} bytes", path.display())));
        }
        Ok(DiskRecords { r: BufReader::with_capacity(IO_BUFFER, f), left: len - 4, crc: 0, path: path.to_owned() })
    }

    fn field(&mut self) -> io::Result<Vec<u8>> {
        let mut l = [0u8; 4];
        self.r.read_exact(&mut l)?;
        let n = u32::from_be_bytes(l) as u64;
        if n + 4 > self.left {
            return Err(invalid(format!("{}: a record runs past the end", self.path.display())));
        }
        let mut v = vec![0u8; n as usize];
        self.r.read_exact(&mut v)?;
        self.crc = crc32c::crc32c_append(crc32c::crc32c_append(self.crc, &l), &v);
        self.left -= 4 + n;
        Ok(v)
    }

    fn next(&mut self) -> io::Result<Option<(Vec<u8>, Vec<u8>)>> {
        if self.left == 0 {
            let mut c = [0u8; 4];
            self.r.read_exact(&mut c)?;
            if u32::from_be_bytes(c) != self.crc {
                return Err(invalid(format!("{}: the spilled run fails its checksum", self.path.display())));
            }
            return Ok(None);
        }
        let k = self.field()?;
        let v = self.field()?;
        Ok(Some((k, v)))
    }
}

enum Source<'a> {
    Memory(Records<'a>),
    Disk(DiskRecords),
}

type Record<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

impl<'a> Source<'a> {
    fn next(&mut self) -> io::Result<Option<Record<'a>>> {
        match self {
            Source::Memory(r) => match r.next() {
                None => Ok(None),
                Some(Ok((k, v))) => Ok(Some((Cow::Borrowed(k), Cow::Borrowed(v)))),
                Some(Err(e)) => Err(e),
            },
            Source::Disk(d) => Ok(d.next()?.map(|(k, v)| (Cow::Owned(k), Cow::Owned(v)))),
        }
    }
}

/// Merges sorted runs (a heap over them), calling `f` with each key and all its values in
/// order; stops at the first error `f` returns.
pub fn merge(runs: &[Run], mut f: impl FnMut(&[u8], &[&[u8]]) -> Result<(), String>) -> Result<(), String> {
    let mut sources = Vec::with_capacity(runs.len());
    for r in runs {
        sources.push(match r {
            Run::Memory(buf) => Source::Memory(Records::new(buf)),
            Run::Disk(path) => Source::Disk(DiskRecords::open(path).map_err(|e| e.to_string())?),
        });
    }
    let err = |e: io::Error| format!("map output: {e}");
    let mut heap = BinaryHeap::new();
    for (i, s) in sources.iter_mut().enumerate() {
        if let Some((k, v)) = s.next().map_err(err)? {
            heap.push(Reverse((k, i, v)));
        }
    }
    let mut values: Vec<Cow<[u8]>> = Vec::new();
    while let Some(Reverse((key, i, v))) = heap.pop() {
        values.clear();
        values.push(v);
        if let Some((k, v)) = sources[i].next().map_err(err)? {
            heap.push(Reverse((k, i, v)));
        }
        while heap.peek().is_some_and(|Reverse((k, _, _))| *k == key) {
            let Some(Reverse((_, j, v))) = heap.pop() else { break };
            values.push(v);
            if let Some((k, v)) = sources[j].next().map_err(err)? {
                heap.push(Reverse((k, j, v)));
            }
        }
        let refs: Vec<&[u8]> = values.iter().map(|v| v.as_ref()).collect();
        f(&key, &refs)?;
    }
    Ok(())
}

/// The pieces a merge makes, from its blocking thread to the async writer: data, then an
/// empty piece at the end. The end must be seen before an output is closed: a merge that
/// failed (or panicked) never sends it, so its output is never committed.
pub struct Pieces(tokio::sync::mpsc::Receiver<Result<Vec<u8>, String>>);

/// The sending side of [`Pieces`].
pub struct PieceSender(tokio::sync::mpsc::Sender<Result<Vec<u8>, String>>);

pub fn pieces() -> (PieceSender, Pieces) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    (PieceSender(tx), Pieces(rx))
}

impl PieceSender {
    /// Sends a non-empty piece (from a blocking thread); `Err` when the receiver is gone.
    pub fn send(&self, piece: Vec<u8>) -> Result<(), String> {
        if piece.is_empty() {
            return Ok(());
        }
        self.0.blocking_send(Ok(piece)).map_err(|_| "the reduce's output stopped".to_owned())
    }

    /// Ends the stream: with the end marker, or with the error that stopped the merge.
    pub fn finish(self, result: Result<(), String>) {
        let _ = self.0.blocking_send(result.map(|()| Vec::new()));
    }
}

impl Pieces {
    /// The next piece, `None` at the end; `Err` when the merge failed or went away.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, String> {
        match self.0.recv().await {
            Some(Ok(p)) if p.is_empty() => Ok(None),
            Some(Ok(p)) => Ok(Some(p)),
            Some(Err(e)) => Err(e),
            None => Err("the merge stopped before its end".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(records: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in records {
            out.extend_from_slice(&(k.len() as u32).to_be_bytes());
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(&(v.len() as u32).to_be_bytes());
            out.extend_from_slice(v.as_bytes());
        }
        out
    }

    fn merged(runs: &Runs) -> Result<Vec<String>, String> {
        let mut got = Vec::new();
        merge(&runs.runs, |k, vs| {
            let vs: Vec<String> = vs.iter().map(|v| String::from_utf8_lossy(v).into_owned()).collect();
            got.push(format!("{}={}", String::from_utf8_lossy(k), vs.join(",")));
            Ok(())
        })?;
        Ok(got)
    }

    #[test]
    fn the_same_merge_in_memory_and_spilled() {
        let inputs = [
            run(&[("a", "1"), ("c", "1"), ("e", "1")]),
            run(&[("b", "2"), ("c", "2")]),
            run(&[("a", "3"), ("z", "3")]),
        ];
        let want = ["a=1,3", "b=2", "c=1,2", "e=1", "z=3"];
        for budget in [u64::MAX, 30, 0] {
            let dir = tempfile::tempdir().unwrap();
            let mut runs = Runs::new(&dir.path().join("spill"), budget);
            for r in &inputs {
                runs.add(r.clone()).unwrap();
            }
            let spilled = runs.spilled();
            assert_eq!(merged(&runs).unwrap(), want, "budget {budget} ({spilled} spilled)");
            if budget == 0 {
                assert_eq!(spilled, 3);
            }
        }
    }

    #[test]
    fn a_damaged_spill_fails_the_merge_and_spills_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let spill = dir.path().join("spill");
        {
            let mut runs = Runs::new(&spill, 0);
            runs.add(run(&[("a", "1"), ("b", "2")])).unwrap();
            let path = spill.join("run0");
            let mut data = std::fs::read(&path).unwrap();
            data[4] ^= 1;
            std::fs::write(&path, data).unwrap();
            assert!(merged(&runs).unwrap_err().contains("checksum"));
        }
        assert!(!spill.exists(), "spilled runs removed with the attempt");
    }
}
