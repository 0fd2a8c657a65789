//! The terasort suite (Hadoop's TeraGen, TeraSort, TeraValidate, in the text form of Hadoop
//! 0.20's examples): rows of 100 bytes, `\r\n`-terminated, whose first 10 bytes (printable
//! ASCII) are the key.
//!
//! ```text
//! row    = key(10) rowid(10, right-aligned decimal) filler(78, letters) "\r\n"
//! ```
//!
//! Row N is a pure function of N, so any map can make any range of rows. TeraSort is the
//! identity over (key, rest of the row) with a sampled total-order partitioner, so the part
//! files are sorted end to end; TeraValidate checks each split of them in order, the
//! boundaries between consecutive splits, and the rows' checksum (the wrapping sum of each
//! row's CRC32C) against the input's.

use crate::functions::{Emit, Mapper, Reducer};
use crate::partition::{hex, unhex};
use tusk_proto::mapreduce::{JobSpec, Split};

pub const KEY_LEN: usize = 10;
/// A row without its `\r\n`.
pub const ROW_LEN: usize = 98;

/// A row's key and the rest of it.
pub fn key_value(row: &[u8], emit: &mut Emit) {
    let k = KEY_LEN.min(row.len());
    emit(&row[..k], &row[k..]);
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Row `n` (without `\r\n`).
pub fn row(n: u64) -> [u8; ROW_LEN] {
    let mut r = [0u8; ROW_LEN];
    let mut bits = splitmix64(n);
    for (i, b) in r[..KEY_LEN].iter_mut().enumerate() {
        if i == 8 {
            bits = splitmix64(n ^ 0x5555_5555_5555_5555);
        }
        *b = b' ' + (bits % 95) as u8;
        bits /= 95;
    }
    let id = format!("{n:>10}");
    let id = id.as_bytes();
    r[KEY_LEN..KEY_LEN + 10].copy_from_slice(&id[id.len() - 10..]);
    for (j, b) in r[KEY_LEN + 10..].iter_mut().enumerate() {
        *b = b'A' + ((n + j as u64 / 10) % 26) as u8;
    }
    r
}

/// What a row adds to the checksum.
pub fn row_sum(row: &[u8]) -> u64 {
    u64::from(crc32c::crc32c(row))
}

/// teragen's map: its generated records are row numbers; it writes those rows.
#[derive(Default)]
pub struct Generate {
    checksum: u64,
}

impl Mapper for Generate {
    fn map(&mut self, record: &[u8], emit: &mut Emit) {
        let Some(n) = std::str::from_utf8(record).ok().and_then(|s| s.parse::<u64>().ok()) else { return };
        let r = row(n);
        self.checksum = self.checksum.wrapping_add(row_sum(&r));
        key_value(&r, emit);
    }
    fn counters(&self) -> Vec<(String, u64)> {
        vec![("TERAGEN_CHECKSUM".into(), self.checksum)]
    }
}

/// teravalidate's map. Over a split of the sorted output: checks its rows are in key order
/// and emits its first and last key (`boundary:<path>:<offset>`), its row count and
/// checksum. Over a split of the original input (a second input path): only the row count
/// and checksum, under `input-` names, for the reduce to compare.
pub struct Validate {
    sorted: bool,
    split: String,
    first: Option<Vec<u8>>,
    last: Vec<u8>,
    rows: u64,
    checksum: u64,
    misordered: u64,
    first_misorder: Option<u64>,
}

impl Validate {
    pub fn new(spec: &JobSpec, split: &Split) -> Validate {
        let sorted_dir = spec.inputs.first().map(|s| s.trim_end_matches('/')).unwrap_or("");
        let sorted = split.path == sorted_dir || split.path.starts_with(&format!("{sorted_dir}/"));
        Validate {
            sorted,
            split: format!("{}:{:020}", split.path, split.start),
            first: None,
            last: Vec::new(),
            rows: 0,
            checksum: 0,
            misordered: 0,
            first_misorder: None,
        }
    }
}

impl Mapper for Validate {
    fn map(&mut self, row: &[u8], _emit: &mut Emit) {
        self.rows += 1;
        self.checksum = self.checksum.wrapping_add(row_sum(row));
        if !self.sorted {
            return;
        }
        let key = &row[..KEY_LEN.min(row.len())];
        if self.first.is_none() {
            self.first = Some(key.to_vec());
        } else if key < &self.last[..] {
            self.misordered += 1;
            self.first_misorder.get_or_insert(self.rows);
        }
        self.last.clear();
        self.last.extend_from_slice(key);
    }

    fn close(&mut self, emit: &mut Emit) {
        let prefix = if self.sorted { "" } else { "input-" };
        emit(format!("{prefix}rows").as_bytes(), self.rows.to_string().as_bytes());
        emit(format!("{prefix}checksum").as_bytes(), self.checksum.to_string().as_bytes());
        if let Some(first) = &self.first {
            let v = format!("{} {}", hex(first), hex(&self.last));
            emit(format!("boundary:{}", self.split).as_bytes(), v.as_bytes());
        }
        if let Some(at) = self.first_misorder {
            let msg = format!("{} rows out of order in split {}, the first at row {at}", self.misordered, self.split);
            emit(b"misorder", msg.as_bytes());
        }
    }
}

/// teravalidate's (single) reduce: boundary keys arrive in split order (path, then offset),
/// so each split's first key must not be below the previous split's last. Writes `rows`,
/// `checksum` (and the input's, when given), and an `error` line for everything wrong.
#[derive(Default)]
pub struct ValidateReduce {
    last: Option<(String, Vec<u8>)>,
    sums: std::collections::BTreeMap<String, u64>,
    errors: Vec<String>,
}

impl Reducer for ValidateReduce {
    fn reduce(&mut self, key: &[u8], values: &mut dyn Iterator<Item = &[u8]>, _emit: &mut Emit) {
        let key = String::from_utf8_lossy(key).into_owned();
        for v in values {
            let v = String::from_utf8_lossy(v);
            if let Some(split) = key.strip_prefix("boundary:") {
                let keys = v.split_once(' ').and_then(|(a, b)| Some((unhex(a)?, unhex(b)?)));
                let Some((first, last)) = keys else {
                    self.errors.push(format!("bad boundary record for {split}: {v}"));
                    continue;
                };
                if let Some((prev, prev_last)) = &self.last {
                    if &first < prev_last {
                        self.errors.push(format!(
                            "misorder: split {split} starts with key {} below the last key {} of {prev}",
                            hex(&first),
                            hex(prev_last)
                        ));
                    }
                }
                self.last = Some((split.to_owned(), last));
            } else if key == "misorder" {
                self.errors.push(v.into_owned());
            } else {
                let n = v.trim().parse::<u64>().unwrap_or(0);
                let sum = self.sums.entry(key.clone()).or_default();
                *sum = sum.wrapping_add(n);
            }
        }
    }

    fn close(&mut self, emit: &mut Emit) {
        let get = |k: &str| self.sums.get(k).copied();
        for k in ["rows", "checksum", "input-rows", "input-checksum"] {
            if let Some(v) = get(k) {
                let v = if k.ends_with("checksum") { format!("{v:016x}") } else { v.to_string() };
                emit(k.as_bytes(), v.as_bytes());
            }
        }
        if let (Some(c), Some(ic)) = (get("checksum"), get("input-checksum")) {
            if c != ic || get("rows") != get("input-rows") {
                self.errors.push(format!(
                    "the sorted rows (checksum {c:016x}, {} rows) are not the input's (checksum {ic:016x}, {} rows)",
                    get("rows").unwrap_or(0),
                    get("input-rows").unwrap_or(0)
                ));
            }
        }
        for e in &self.errors {
            emit(b"error", e.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_a_function_of_their_number() {
        let r = row(42);
        assert_eq!(r, row(42));
        assert_ne!(r[..KEY_LEN], row(43)[..KEY_LEN]);
        assert!(r[..KEY_LEN].iter().all(|b| (b' '..=b'~').contains(b)));
        assert_eq!(&r[KEY_LEN..KEY_LEN + 10], b"        42");
        assert!(r[KEY_LEN + 10..].iter().all(u8::is_ascii_uppercase));
        assert_eq!(&row(12_345_678_901)[KEY_LEN..KEY_LEN + 10], b"2345678901");
    }

    fn validate(spec: &JobSpec, path: &str, rows: &[[u8; ROW_LEN]]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let split = Split { path: path.into(), start: 0, length: 1, hosts: vec![] };
        let mut v = Validate::new(spec, &split);
        let mut out = Vec::new();
        let mut emit = |k: &[u8], val: &[u8]| out.push((k.to_vec(), val.to_vec()));
        for r in rows {
            v.map(r, &mut emit);
        }
        v.close(&mut emit);
        out
    }

    fn reduce(mut records: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<String> {
        records.sort_by(|a, b| a.0.cmp(&b.0));
        let mut r = ValidateReduce::default();
        let mut out = Vec::new();
        let mut emit =
            |k: &[u8], v: &[u8]| out.push(format!("{}\t{}", String::from_utf8_lossy(k), String::from_utf8_lossy(v)));
        for (k, v) in &records {
            r.reduce(k, &mut std::iter::once(&v[..]), &mut emit);
        }
        r.close(&mut emit);
        out
    }

    #[test]
    fn validate_accepts_sorted_rows_and_catches_misorder_and_loss() {
        let spec = JobSpec { inputs: vec!["/sorted".into(), "/gen".into()], ..Default::default() };
        let mut rows: Vec<_> = (0..100).map(row).collect();
        let input = validate(&spec, "/gen/part-m-00000", &rows);
        rows.sort();
        let mut recs = validate(&spec, "/sorted/part-r-00000", &rows[..50]);
        recs.extend(validate(&spec, "/sorted/part-r-00001", &rows[50..]));
        recs.extend(input.clone());
        let out = reduce(recs.clone());
        assert!(out.iter().all(|l| !l.starts_with("error")), "{out:?}");
        assert!(out.contains(&"rows\t100".to_string()));

        // Parts swapped: the boundary check fails.
        let mut swapped = validate(&spec, "/sorted/part-r-00000", &rows[50..]);
        swapped.extend(validate(&spec, "/sorted/part-r-00001", &rows[..50]));
        swapped.extend(input.clone());
        assert!(reduce(swapped).iter().any(|l| l.starts_with("error\tmisorder: split /sorted/part-r-00001")));

        // Two rows swapped inside a part.
        let mut bad = rows.clone();
        bad.swap(3, 4);
        let mut recs = validate(&spec, "/sorted/part-r-00000", &bad);
        recs.extend(input.clone());
        assert!(reduce(recs).iter().any(|l| l.contains("1 rows out of order")));

        // A row lost.
        let mut recs = validate(&spec, "/sorted/part-r-00000", &rows[1..]);
        recs.extend(input);
        assert!(reduce(recs).iter().any(|l| l.contains("are not the input's")));
    }
}
