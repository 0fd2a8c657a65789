//! Map output on the tracker's local disk. Records are buffered; past `spill_bytes` the
//! buffer is sorted by (partition, key) in parallel (rayon), combined when the job has a
//! combiner, and spilled as a sorted run; at the end the runs are merged (a heap over the
//! runs), combined again, and written as one file with a partition index:
//!
//! ```text
//! file.out    per partition, a blob (see [`crate::codec`]) of its records sorted by key:
//!             [u32 key_len][key][u32 value_len][value] ...
//! file.index  per partition: [u64 offset][u64 blob length][u32 crc32c of the blob],
//!             then [u32 crc32c of what is before]
//! ```
//!
//! A partition's records are compressed whole when the job asks for it. The Shuffle serves
//! a partition's blob ([`read_partition`], its checksum verified); the reduce decodes it and
//! walks it with [`Records`].

use crate::codec::Codec;
use crate::functions::ReduceFn;
use rayon::slice::ParallelSliceMut;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

const WRITE_BUFFER: usize = 1 << 20;

type Rec = (u32, Vec<u8>, Vec<u8>);
/// Where combined records go: (partition, key, value).
type Sink<'s> = dyn FnMut(u32, &[u8], &[u8]) -> io::Result<()> + 's;

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn put(out: &mut impl Write, key: &[u8], value: &[u8]) -> io::Result<u64> {
    out.write_all(&(key.len() as u32).to_be_bytes())?;
    out.write_all(key)?;
    out.write_all(&(value.len() as u32).to_be_bytes())?;
    out.write_all(value)?;
    Ok(8 + key.len() as u64 + value.len() as u64)
}

/// Walks `[u32 klen][key][u32 vlen][value]` records.
pub struct Records<'a> {
    buf: &'a [u8],
}

impl<'a> Records<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Records { buf }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = io::Result<(&'a [u8], &'a [u8])>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let mut take = |n: usize| -> io::Result<&'a [u8]> {
            if self.buf.len() < n {
                return Err(invalid(format!("map output record cut short: {} bytes left, {n} wanted", self.buf.len())));
            }
            let (h, t) = self.buf.split_at(n);
            self.buf = t;
            Ok(h)
        };
        let mut field = || -> io::Result<&'a [u8]> {
            let len = take(4)?;
            let n = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            take(n)
        };
        Some(field().and_then(|k| field().map(|v| (k, v))))
    }
}

/// Runs `combiner` (or nothing) over sorted records, calling `out` with what results.
fn combine_sorted<'a>(
    sorted: impl Iterator<Item = (u32, &'a [u8], &'a [u8])>,
    combiner: Option<ReduceFn>,
    out: &mut Sink<'_>,
) -> io::Result<()> {
    let Some(combine) = combiner else {
        for (p, k, v) in sorted {
            out(p, k, v)?;
        }
        return Ok(());
    };
    let mut group: Option<(u32, &[u8])> = None;
    let mut values: Vec<&[u8]> = Vec::new();
    let mut flush = |group: Option<(u32, &[u8])>, values: &mut Vec<&[u8]>| -> io::Result<()> {
        if let Some((p, k)) = group {
            let mut result = Ok(());
            combine(k, &mut values.drain(..), &mut |ck, cv| {
                if result.is_ok() {
                    result = out(p, ck, cv);
                }
            });
            result?;
        }
        Ok(())
    };
    for (p, k, v) in sorted {
        if group != Some((p, k)) {
            flush(group, &mut values)?;
            group = Some((p, k));
        }
        values.push(v);
    }
    flush(group, &mut values)
}

/// A map's buffered records: keys and values back to back in one buffer, and an index of
/// (partition, where, key and value lengths) that is what gets sorted (Hadoop's kvbuffer and
/// kvmeta): no allocation per record, and the sort moves 24-byte entries.
#[derive(Default)]
struct Arena {
    data: Vec<u8>,
    index: Vec<Entry>,
}

#[derive(Clone, Copy)]
struct Entry {
    partition: u32,
    key_len: u32,
    value_len: u32,
    at: usize,
}

impl Arena {
    fn push(&mut self, partition: u32, key: &[u8], value: &[u8]) -> io::Result<()> {
        let too_long = || invalid(format!("a map output record of {} bytes", key.len() + value.len()));
        let key_len = u32::try_from(key.len()).map_err(|_| too_long())?;
        let value_len = u32::try_from(value.len()).map_err(|_| too_long())?;
        self.index.push(Entry { partition, key_len, value_len, at: self.data.len() });
        self.data.extend_from_slice(key);
        self.data.extend_from_slice(value);
        Ok(())
    }

    /// Memory held, roughly.
    fn bytes(&self) -> usize {
        self.data.len() + self.index.len() * std::mem::size_of::<Entry>()
    }

    fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn key(&self, e: &Entry) -> &[u8] {
        &self.data[e.at..e.at + e.key_len as usize]
    }

    fn record(&self, e: &Entry) -> (u32, &[u8], &[u8]) {
        let k = e.at + e.key_len as usize;
        (e.partition, &self.data[e.at..k], &self.data[k..k + e.value_len as usize])
    }

    /// Sorts by (partition, key), in parallel.
    fn sort(&mut self) {
        let mut index = std::mem::take(&mut self.index);
        index.par_sort_unstable_by(|a, b| a.partition.cmp(&b.partition).then_with(|| self.key(a).cmp(self.key(b))));
        self.index = index;
    }

    fn iter(&self) -> impl Iterator<Item = (u32, &[u8], &[u8])> {
        self.index.iter().map(|e| self.record(e))
    }
}

/// Collects one map attempt's output.
pub struct MapOutput {
    dir: PathBuf,
    partitions: u32,
    combiner: Option<ReduceFn>,
    codec: Codec,
    spill_bytes: usize,
    buf: Arena,
    runs: Vec<PathBuf>,
}

impl MapOutput {
    pub fn new(
        dir: &Path,
        partitions: u32,
        combiner: Option<ReduceFn>,
        codec: Codec,
        spill_bytes: usize,
    ) -> io::Result<MapOutput> {
        std::fs::create_dir_all(dir)?;
        Ok(MapOutput {
            dir: dir.to_owned(),
            partitions: partitions.max(1),
            combiner,
            codec,
            spill_bytes,
            buf: Arena::default(),
            runs: Vec::new(),
        })
    }

    pub fn spills(&self) -> usize {
        self.runs.len()
    }

    pub fn add(&mut self, partition: u32, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.buf.push(partition, key, value)?;
        if self.buf.bytes() >= self.spill_bytes {
            self.spill()?;
        }
        Ok(())
    }

    /// Sorts, combines and writes the buffer as a run: [u32 partition] + record, repeated.
    fn spill(&mut self) -> io::Result<()> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.sort();
        let path = self.dir.join(format!("spill{}.run", self.runs.len()));
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, File::create(&path)?);
        combine_sorted(buf.iter(), self.combiner, &mut |p, k, v| {
            out.write_all(&p.to_be_bytes())?;
            put(&mut out, k, v).map(|_| ())
        })?;
        out.flush()?;
        self.runs.push(path);
        Ok(())
    }

    /// Writes `file.out` and `file.index`; returns the bytes of each partition's records
    /// (before compression) and of its blob.
    pub fn finish(mut self) -> io::Result<Vec<(u64, u64)>> {
        let data_path = self.dir.join("file.out");
        let mut file = Partitions {
            out: BufWriter::with_capacity(WRITE_BUFFER, File::create(&data_path)?),
            codec: self.codec,
            current: 0,
            raw: Vec::new(),
            index: Vec::with_capacity(self.partitions as usize),
            offset: 0,
            partitions: self.partitions,
        };
        let mut write = |p: u32, k: &[u8], v: &[u8]| file.add(p, k, v);
        if self.runs.is_empty() {
            let mut buf = std::mem::take(&mut self.buf);
            buf.sort();
            combine_sorted(buf.iter(), self.combiner, &mut write)?;
        } else {
            if !self.buf.is_empty() {
                self.spill()?;
            }
            // One key's values at a time in memory, whatever the runs hold.
            let mut group: Option<(u32, Vec<u8>)> = None;
            let mut values: Vec<Vec<u8>> = Vec::new();
            let combiner = self.combiner;
            let mut flush = |group: &Option<(u32, Vec<u8>)>, values: &mut Vec<Vec<u8>>| -> io::Result<()> {
                if let Some((p, k)) = group {
                    let recs: Vec<(u32, &[u8], &[u8])> = values.iter().map(|v| (*p, &k[..], &v[..])).collect();
                    combine_sorted(recs.into_iter(), combiner, &mut write)?;
                }
                values.clear();
                Ok(())
            };
            merge_runs(&self.runs, &mut |p, k, v| {
                if group.as_ref().is_none_or(|(gp, gk)| *gp != p || *gk != k) {
                    flush(&group, &mut values)?;
                    group = Some((p, k));
                }
                values.push(v);
                Ok(())
            })?;
            flush(&group, &mut values)?;
            for r in &self.runs {
                let _ = std::fs::remove_file(r);
            }
        }
        file.close(&self.dir)
    }
}

/// `file.out` being written, one partition at a time (records arrive in partition order).
struct Partitions {
    out: BufWriter<File>,
    codec: Codec,
    current: u32,
    /// The current partition's records.
    raw: Vec<u8>,
    /// Per finished partition: (offset, blob length, blob crc32c, record bytes).
    index: Vec<(u64, u64, u32, u64)>,
    offset: u64,
    partitions: u32,
}

impl Partitions {
    fn add(&mut self, p: u32, k: &[u8], v: &[u8]) -> io::Result<()> {
        if p >= self.partitions || p < self.current {
            return Err(invalid(format!("partition {p} after {} of {}", self.current, self.partitions)));
        }
        while self.current < p {
            self.end_partition()?;
        }
        put(&mut self.raw, k, v).map(|_| ())
    }

    fn end_partition(&mut self) -> io::Result<()> {
        let blob = self.codec.encode(&self.raw)?;
        self.out.write_all(&blob)?;
        let crc = tusk_common::checksum::crc32c(&blob);
        self.index.push((self.offset, blob.len() as u64, crc, self.raw.len() as u64));
        self.offset += blob.len() as u64;
        self.raw.clear();
        self.current += 1;
        Ok(())
    }

    fn close(mut self, dir: &Path) -> io::Result<Vec<(u64, u64)>> {
        while (self.index.len() as u32) < self.partitions {
            self.end_partition()?;
        }
        self.out.flush()?;
        self.out.get_ref().sync_data()?;
        let mut index = Vec::with_capacity(self.index.len() * INDEX_ENTRY + 4);
        for (offset, len, crc, _) in &self.index {
            index.extend_from_slice(&offset.to_be_bytes());
            index.extend_from_slice(&len.to_be_bytes());
            index.extend_from_slice(&crc.to_be_bytes());
        }
        let crc = tusk_common::checksum::crc32c(&index);
        index.extend_from_slice(&crc.to_be_bytes());
        std::fs::write(dir.join("file.index"), &index)?;
        Ok(self.index.iter().map(|(_, len, _, raw)| (*raw, *len)).collect())
    }
}

const INDEX_ENTRY: usize = 20;

/// Reads sorted runs back and merges them (a heap keyed by partition and key), handing each
/// record to `out` in order.
fn merge_runs(runs: &[PathBuf], out: &mut dyn FnMut(u32, Vec<u8>, Vec<u8>) -> io::Result<()>) -> io::Result<()> {
    let mut readers = Vec::new();
    for r in runs {
        readers.push(BufReader::with_capacity(WRITE_BUFFER, File::open(r)?));
    }
    let next = |r: &mut BufReader<File>| -> io::Result<Option<Rec>> {
        let mut p = [0u8; 4];
        match r.read_exact(&mut p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let mut field = || -> io::Result<Vec<u8>> {
            let mut l = [0u8; 4];
            r.read_exact(&mut l)?;
            let mut v = vec![0u8; u32::from_be_bytes(l) as usize];
            r.read_exact(&mut v)?;
            Ok(v)
        };
        let k = field()?;
        let v = field()?;
        Ok(Some((u32::from_be_bytes(p), k, v)))
    };
    let mut heap = BinaryHeap::new();
    for (i, r) in readers.iter_mut().enumerate() {
        if let Some((p, k, v)) = next(r)? {
            heap.push(Reverse((p, k, i, v)));
        }
    }
    while let Some(Reverse((p, k, i, v))) = heap.pop() {
        out(p, k, v)?;
        if let Some((p, k, v)) = next(&mut readers[i])? {
            heap.push(Reverse((p, k, i, v)));
        }
    }
    Ok(())
}

/// The blob of one partition of a finished map output, its checksum verified.
pub fn read_partition(dir: &Path, partition: u32) -> io::Result<Vec<u8>> {
    let index = std::fs::read(dir.join("file.index"))?;
    if index.len() < 4 || !(index.len() - 4).is_multiple_of(INDEX_ENTRY) {
        return Err(invalid(format!("map output index of {} bytes", index.len())));
    }
    let (body, crc) = index.split_at(index.len() - 4);
    if tusk_common::checksum::crc32c(body) != u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]) {
        return Err(invalid("map output index fails its checksum".into()));
    }
    let entry = body
        .chunks(INDEX_ENTRY)
        .nth(partition as usize)
        .ok_or_else(|| invalid(format!("partition {partition} of {}", body.len() / INDEX_ENTRY)))?;
    let field = |r: std::ops::Range<usize>| entry.get(r).ok_or_else(|| invalid("index entry".into()));
    let offset = u64::from_be_bytes(field(0..8)?.try_into().map_err(|_| invalid("index entry".into()))?);
    let len = u64::from_be_bytes(field(8..16)?.try_into().map_err(|_| invalid("index entry".into()))?);
    let crc = u32::from_be_bytes(field(16..20)?.try_into().map_err(|_| invalid("index entry".into()))?);
    use std::io::Seek;
    let mut f = File::open(dir.join("file.out"))?;
    if offset.saturating_add(len) > f.metadata()?.len() {
        return Err(invalid(format!("partition {partition} ({len} bytes at {offset}) past the end of file.out")));
    }
    f.seek(io::SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf)?;
    if tusk_common::checksum::crc32c(&buf) != crc {
        return Err(invalid(format!("map output partition {partition} fails its checksum")));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::sum_reduce;

    fn collect(dir: &Path, p: u32) -> Vec<(String, String)> {
        let buf = crate::codec::decode(&read_partition(dir, p).unwrap()).unwrap();
        Records::new(&buf)
            .map(|r| r.unwrap())
            .map(|(k, v)| (String::from_utf8_lossy(k).into(), String::from_utf8_lossy(v).into()))
            .collect()
    }

    #[test]
    fn sorted_combined_and_the_same_with_spills() {
        for (spill, codec) in
            [(usize::MAX, Codec::None), (200, Codec::None), (200, Codec::Lz4), (usize::MAX, Codec::Zstd)]
        {
            let dir = tempfile::tempdir().unwrap();
            let mut m = MapOutput::new(dir.path(), 3, Some(sum_reduce), codec, spill).unwrap();
            for w in ["b", "a", "c", "a", "b", "a", "d"] {
                m.add(crate::partition::hash(w.as_bytes(), 2), w.as_bytes(), b"1").unwrap();
            }
            let spilled = m.spills();
            m.finish().unwrap();
            let mut all: Vec<_> = collect(dir.path(), 0).into_iter().chain(collect(dir.path(), 1)).collect();
            for p in 0..2 {
                let part = collect(dir.path(), p);
                assert!(part.windows(2).all(|w| w[0].0 < w[1].0), "sorted, one record a key: {part:?}");
            }
            all.sort();
            let want: Vec<(String, String)> = [("a", "3"), ("b", "2"), ("c", "1"), ("d", "1")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(all, want, "spill limit {spill} ({spilled} spills)");
        }
    }

    #[test]
    fn the_buffer_sorts_by_partition_then_key() {
        let mut a = Arena::default();
        for (p, k, v) in [(1, &b"a"[..], &b"x"[..]), (0, b"b", b""), (0, b"", b"v"), (1, b"a", b"y"), (0, b"ab", b"z")]
        {
            a.push(p, k, v).unwrap();
        }
        a.sort();
        let got: Vec<(u32, &[u8])> = a.iter().map(|(p, k, _)| (p, k)).collect();
        assert_eq!(got, [(0, &b""[..]), (0, b"ab"), (0, b"b"), (1, b"a"), (1, b"a")]);
        let values: Vec<&[u8]> = a.iter().map(|(_, _, v)| v).collect();
        assert_eq!(values[..3], [&b"v"[..], b"z", b""]);
        assert!(a.bytes() >= 8);
    }

    #[test]
    fn a_damaged_index_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = MapOutput::new(dir.path(), 1, None, Codec::None, usize::MAX).unwrap();
        m.add(0, b"k", b"v").unwrap();
        m.finish().unwrap();
        let good = std::fs::read(dir.path().join("file.index")).unwrap();
        let mut idx = good.clone();
        idx[3] ^= 1;
        std::fs::write(dir.path().join("file.index"), idx).unwrap();
        assert!(read_partition(dir.path(), 0).is_err());
        // The data damaged: the partition's own checksum catches it.
        std::fs::write(dir.path().join("file.index"), good).unwrap();
        let mut data = std::fs::read(dir.path().join("file.out")).unwrap();
        data[5] ^= 1;
        std::fs::write(dir.path().join("file.out"), data).unwrap();
        assert!(read_partition(dir.path(), 0).unwrap_err().to_string().contains("checksum"));
        let cut = [0u8, 0, 0, 9, b'x'];
        assert!(Records::new(&cut).next().unwrap().is_err());
    }
}
