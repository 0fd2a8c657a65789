//! The built-in map and reduce functions, by name. A record is a key and a value, both
//! bytes. A map function sees one input record at a time (a line of its split, or a row
//! number for a generated input) and may keep state across them ([`Mapper::close`] runs
//! after the last); so may a reduce function across the keys of its partition.
//!
//! | mapper        | what it emits                                                  |
//! |---------------|----------------------------------------------------------------|
//! | wordcount     | each whitespace-separated word, 1                              |
//! | identity      | the line, nothing                                              |
//! | grep          | each match of `grep.pattern` (or its group `grep.group`), 1    |
//! | grep-sort     | a `match<TAB>count` line keyed so higher counts sort first     |
//! | tera          | a teragen row: its 10-byte key, the other 88 bytes             |
//! | teragen       | row N of teragen's output (generated input)                    |
//! | teravalidate  | per split: first and last key, rows out of order, checksum     |
//! | pi            | per map: points inside and outside the circle (generated input)|

use crate::tera;
use std::collections::HashMap;
use tusk_proto::mapreduce::{JobSpec, Split};

/// Where a function's records go.
pub type Emit<'a> = dyn FnMut(&[u8], &[u8]) + 'a;
/// A stateless map function: one record in, records out.
pub type MapFn = fn(&[u8], &mut Emit);
/// A stateless reduce (or combine) function: one key and all its values in, records out.
pub type ReduceFn = fn(&[u8], &mut dyn Iterator<Item = &[u8]>, &mut Emit);

/// A map function with state over its split.
pub trait Mapper: Send {
    fn map(&mut self, record: &[u8], emit: &mut Emit);
    /// After the split's last record.
    fn close(&mut self, _emit: &mut Emit) {}
    /// Counters of its own (added to the task's).
    fn counters(&self) -> Vec<(String, u64)> {
        Vec::new()
    }
}

/// A reduce function with state over its partition (keys arrive in sorted order).
pub trait Reducer: Send {
    fn reduce(&mut self, key: &[u8], values: &mut dyn Iterator<Item = &[u8]>, emit: &mut Emit);
    /// After the partition's last key.
    fn close(&mut self, _emit: &mut Emit) {}
}

struct FnMapper(MapFn);
impl Mapper for FnMapper {
    fn map(&mut self, record: &[u8], emit: &mut Emit) {
        (self.0)(record, emit)
    }
}

struct FnReducer(ReduceFn);
impl Reducer for FnReducer {
    fn reduce(&mut self, key: &[u8], values: &mut dyn Iterator<Item = &[u8]>, emit: &mut Emit) {
        (self.0)(key, values, emit)
    }
}

/// wordcount's map: each whitespace-separated word with the count 1.
pub fn wordcount_map(line: &[u8], emit: &mut Emit) {
    for word in line.split(|b| b.is_ascii_whitespace()).filter(|w| !w.is_empty()) {
        emit(word, b"1");
    }
}

fn parse_u64(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok().and_then(|s| s.trim().parse::<u64>().ok())
}

/// Sums decimal counts (wordcount's combiner and reducer). A value that is not a number
/// counts as 0 rather than failing the job (Hadoop's LongSumReducer would throw; streaming
/// users feed it text).
pub fn sum_reduce(key: &[u8], values: &mut dyn Iterator<Item = &[u8]>, emit: &mut Emit) {
    let total = values.map(|v| parse_u64(v).unwrap_or(0)).fold(0u64, u64::wrapping_add);
    emit(key, total.to_string().as_bytes());
}

/// The line itself as the key, no value (identity map over text).
pub fn identity_map(line: &[u8], emit: &mut Emit) {
    emit(line, b"");
}

/// Every value of the key, in order.
pub fn identity_reduce(key: &[u8], values: &mut dyn Iterator<Item = &[u8]>, emit: &mut Emit) {
    for v in values {
        emit(key, v);
    }
}

/// grep: every match of a regular expression (or of one of its groups), counted.
struct Grep {
    re: regex::bytes::Regex,
    group: usize,
}

impl Mapper for Grep {
    fn map(&mut self, line: &[u8], emit: &mut Emit) {
        for caps in self.re.captures_iter(line) {
            if let Some(m) = caps.get(self.group) {
                emit(m.as_bytes(), b"1");
            }
        }
    }
}

fn grep(settings: &HashMap<String, String>) -> Result<Grep, String> {
    let pattern = settings.get("grep.pattern").map(String::as_str).unwrap_or("");
    if pattern.is_empty() {
        return Err("grep needs a regular expression".into());
    }
    let re = regex::bytes::Regex::new(pattern).map_err(|e| format!("grep: bad regular expression: {e}"))?;
    let group = match settings.get("grep.group") {
        Some(g) => g.parse::<usize>().map_err(|_| format!("grep: group is not a number: {g}"))?,
        None => 0,
    };
    if group >= re.captures_len() {
        return Err(format!("grep: the expression has no group {group}"));
    }
    Ok(Grep { re, group })
}

/// grep's second job reads `match<TAB>count` lines and keys them by the count, inverted so
/// that the highest count sorts first (Hadoop's grep sorts with a decreasing comparator),
/// then by the match, so that ties come out in a fixed order.
pub fn grep_sort_map(line: &[u8], emit: &mut Emit) {
    let Some(tab) = line.iter().rposition(|&b| b == b'\t') else { return };
    let Some(count) = parse_u64(&line[tab + 1..]) else { return };
    let mut key = format!("{:020}", u64::MAX - count).into_bytes();
    key.extend_from_slice(&line[..tab]);
    emit(&key, b"");
}

/// Writes grep-sort's records back as `count<TAB>match`, as Hadoop's grep prints them.
pub fn grep_sort_reduce(key: &[u8], values: &mut dyn Iterator<Item = &[u8]>, emit: &mut Emit) {
    let Some(inverted) = key.get(..20).and_then(parse_u64) else { return };
    let count = (u64::MAX - inverted).to_string();
    for _ in values {
        emit(count.as_bytes(), &key[20..]);
    }
}

/// pi (Hadoop's QuasiMonteCarlo): sample N of a Halton sequence, count the points of the
/// unit square that fall inside the inscribed circle.
#[derive(Default)]
struct Pi {
    inside: u64,
    outside: u64,
}

/// The radical inverse of `i` in `base` (the Halton sequence's coordinate).
fn radical_inverse(mut i: u64, base: u64) -> f64 {
    let (mut f, mut r) = (1.0, 0.0);
    while i > 0 {
        f /= base as f64;
        r += f * (i % base) as f64;
        i /= base;
    }
    r
}

impl Mapper for Pi {
    fn map(&mut self, record: &[u8], _emit: &mut Emit) {
        let Some(i) = parse_u64(record) else { return };
        // Index 0 is the origin for every base: start at 1, as Hadoop does.
        let (x, y) = (radical_inverse(i + 1, 2) - 0.5, radical_inverse(i + 1, 3) - 0.5);
        if x * x + y * y <= 0.25 {
            self.inside += 1;
        } else {
            self.outside += 1;
        }
    }
    fn close(&mut self, emit: &mut Emit) {
        emit(b"inside", self.inside.to_string().as_bytes());
        emit(b"outside", self.outside.to_string().as_bytes());
    }
}

/// pi's estimate from the counts its job wrote.
pub fn pi_estimate(inside: u64, outside: u64) -> f64 {
    4.0 * inside as f64 / (inside + outside).max(1) as f64
}

/// The names `tusk job run` and the jobtracker accept.
pub const MAPPERS: &str = "wordcount, identity, grep, grep-sort, tera, teragen, teravalidate, pi";
pub const REDUCERS: &str = "sum, identity, grep-sort, teravalidate";

/// The map function a job names, for the split it runs on.
pub fn mapper(spec: &JobSpec, split: &Split) -> Result<Box<dyn Mapper>, String> {
    Ok(match spec.mapper.as_str() {
        "wordcount" => Box::new(FnMapper(wordcount_map)),
        "identity" => Box::new(FnMapper(identity_map)),
        "grep" => Box::new(grep(&spec.settings)?),
        "grep-sort" => Box::new(FnMapper(grep_sort_map)),
        "tera" => Box::new(FnMapper(tera::key_value)),
        "teragen" => Box::new(tera::Generate::default()),
        "teravalidate" => Box::new(tera::Validate::new(spec, split)),
        "pi" => Box::new(Pi::default()),
        other => return Err(format!("unknown mapper '{other}' (built-in mappers: {MAPPERS})")),
    })
}

/// The reduce function a job names.
pub fn reducer(name: &str) -> Result<Box<dyn Reducer>, String> {
    Ok(match name {
        "teravalidate" => Box::new(tera::ValidateReduce::default()),
        other => Box::new(FnReducer(reduce_fn(other)?)),
    })
}

/// A stateless reduce function (reducers and combiners) by name.
pub fn reduce_fn(name: &str) -> Result<ReduceFn, String> {
    match name {
        "sum" | "wordcount" => Ok(sum_reduce),
        "identity" => Ok(identity_reduce),
        "grep-sort" => Ok(grep_sort_reduce),
        other => Err(format!("unknown reducer '{other}' (built-in reducers: {REDUCERS})")),
    }
}

/// How output records become bytes: `text` writes `key<TAB>value` lines (the key alone
/// when the value is empty), `tera` writes key and value as they are and `\r\n` (Hadoop's
/// TeraOutputFormat), so sorted rows are byte for byte the rows teragen wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Tera,
}

impl OutputFormat {
    pub fn of(spec: &JobSpec) -> Result<OutputFormat, String> {
        match spec.settings.get("output.format").map(String::as_str) {
            None | Some("text") => Ok(OutputFormat::Text),
            Some("tera") => Ok(OutputFormat::Tera),
            Some(other) => Err(format!("unknown output.format '{other}' (text, tera)")),
        }
    }

    pub fn write(self, out: &mut Vec<u8>, k: &[u8], v: &[u8]) {
        out.extend_from_slice(k);
        match self {
            OutputFormat::Text => {
                if !v.is_empty() {
                    out.push(b'\t');
                    out.extend_from_slice(v);
                }
                out.push(b'\n');
            }
            OutputFormat::Tera => {
                out.extend_from_slice(v);
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

/// Checks, before any task runs, that a job's built-in functions exist and its settings
/// make sense (a bad regular expression fails the submission, not every attempt).
pub fn check(spec: &JobSpec, streaming: &str) -> Result<(), String> {
    if spec.mapper != streaming {
        mapper(spec, &Split::default())?;
    }
    if spec.num_reduces > 0 && spec.reducer != streaming {
        reducer(&spec.reducer)?;
    }
    if !spec.combiner.is_empty() {
        reduce_fn(&spec.combiner)?;
    }
    OutputFormat::of(spec)?;
    crate::codec::Codec::of(spec)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_map(m: &mut dyn Mapper, records: &[&[u8]]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        let mut emit = |k: &[u8], v: &[u8]| out.push((k.to_vec(), v.to_vec()));
        for r in records {
            m.map(r, &mut emit);
        }
        m.close(&mut emit);
        out
    }

    #[test]
    fn wordcount_functions() {
        let mut out = Vec::new();
        wordcount_map(b"  the cat\tthe\r\n", &mut |k, v| out.push((k.to_vec(), v.to_vec())));
        assert_eq!(
            out,
            [(b"the".to_vec(), b"1".to_vec()), (b"cat".to_vec(), b"1".to_vec()), (b"the".to_vec(), b"1".to_vec())]
        );
        let mut sums = Vec::new();
        let vals: Vec<&[u8]> = vec![b"1", b"2", b"39"];
        sum_reduce(b"the", &mut vals.into_iter(), &mut |k, v| sums.push((k.to_vec(), v.to_vec())));
        assert_eq!(sums, [(b"the".to_vec(), b"42".to_vec())]);
        let spec = JobSpec { mapper: "nope".into(), ..Default::default() };
        assert!(mapper(&spec, &Split::default()).err().unwrap().contains("wordcount"));
    }

    #[test]
    fn grep_counts_matches_or_a_group() {
        let mut spec = JobSpec { mapper: "grep".into(), ..Default::default() };
        spec.settings.insert("grep.pattern".into(), "dfs[a-z.]+".into());
        let mut g = mapper(&spec, &Split::default()).unwrap();
        let out = run_map(g.as_mut(), &[b"dfs.replication and dfs.block.size", b"none here"]);
        assert_eq!(out, [(b"dfs.replication".to_vec(), b"1".to_vec()), (b"dfs.block.size".to_vec(), b"1".to_vec())]);
        spec.settings.insert("grep.pattern".into(), "dfs\\.([a-z]+)".into());
        spec.settings.insert("grep.group".into(), "1".into());
        let out = run_map(mapper(&spec, &Split::default()).unwrap().as_mut(), &[b"dfs.block"]);
        assert_eq!(out, [(b"block".to_vec(), b"1".to_vec())]);
        spec.settings.insert("grep.group".into(), "2".into());
        assert!(check(&spec, "-").unwrap_err().contains("no group 2"));
        spec.settings.insert("grep.pattern".into(), "(".into());
        assert!(check(&spec, "-").unwrap_err().contains("bad regular expression"));
    }

    #[test]
    fn grep_sort_puts_high_counts_first_and_writes_count_then_match() {
        let mut keyed = Vec::new();
        for line in [&b"a\t3"[..], b"b\t10", b"c\t1", b"bad line", b"aa\t3"] {
            grep_sort_map(line, &mut |k, v| keyed.push((k.to_vec(), v.to_vec())));
        }
        keyed.sort();
        let mut out = Vec::new();
        for (k, v) in &keyed {
            grep_sort_reduce(k, &mut std::iter::once(&v[..]), &mut |k, v| {
                out.push(format!("{}\t{}", String::from_utf8_lossy(k), String::from_utf8_lossy(v)))
            });
        }
        assert_eq!(out, ["10\tb", "3\ta", "3\taa", "1\tc"]);
    }

    #[test]
    fn pi_estimates_pi() {
        let mut p = Pi::default();
        let records: Vec<String> = (0..100_000).map(|i| i.to_string()).collect();
        let mut out = Vec::new();
        for r in &records {
            p.map(r.as_bytes(), &mut |_, _| {});
        }
        p.close(&mut |k, v| out.push((k.to_vec(), parse_u64(v).unwrap())));
        assert_eq!(out[0].0, b"inside");
        let est = pi_estimate(out[0].1, out[1].1);
        assert!((est - std::f64::consts::PI).abs() < 0.001, "{est}");
    }

    #[test]
    fn output_formats() {
        let mut out = Vec::new();
        OutputFormat::Text.write(&mut out, b"k", b"v");
        OutputFormat::Text.write(&mut out, b"line", b"");
        OutputFormat::Tera.write(&mut out, b"0123456789", b"rest");
        assert_eq!(out, b"k\tv\nline\n0123456789rest\r\n");
        let mut spec = JobSpec::default();
        spec.settings.insert("output.format".into(), "xml".into());
        assert!(OutputFormat::of(&spec).is_err());
    }
}
