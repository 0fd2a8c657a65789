//! Which reduce a key goes to. By default Hadoop's HashPartitioner (with a stable hash, so
//! every map agrees); a job with `partitioner=total-order` (sort, terasort) gets Hadoop's
//! TotalOrderPartitioner instead: split points sampled from the input at submission
//! ([`sample`]), so reduce i gets the keys between point i-1 and point i and the part files
//! are sorted end to end.

use crate::functions;
use crate::lines::LineReader;
use tusk_client::Client;
use tusk_proto::mapreduce::{JobSpec, Split};

pub const SETTING: &str = "partitioner";
pub const TOTAL_ORDER: &str = "total-order";
/// The split points, hex, comma-separated (set by the jobtracker when it samples).
pub const POINTS: &str = "partitioner.points";
/// Keys sampled in all (Hadoop's TeraSort samples 100,000 from 10 splits).
const SAMPLE_KEYS: usize = 100_000;
const SAMPLE_SPLITS: usize = 10;

#[derive(Debug, Clone)]
pub enum Partitioner {
    Hash(u32),
    /// Sorted split points: one fewer than the partitions.
    TotalOrder(Vec<Vec<u8>>),
}

/// FNV-1a of the key modulo the partitions.
pub fn hash(key: &[u8], partitions: u32) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in key {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % partitions.max(1)
}

/// Bytes as lower-case hex (keys in settings and reports).
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

impl Partitioner {
    /// The job's partitioner, as its settings say.
    pub fn of(spec: &JobSpec) -> Result<Partitioner, String> {
        let n = spec.num_reduces.max(1);
        match spec.settings.get(SETTING).map(String::as_str) {
            None | Some("hash") => Ok(Partitioner::Hash(n)),
            Some(TOTAL_ORDER) => {
                let raw = spec.settings.get(POINTS).map(String::as_str).unwrap_or("");
                let points: Vec<Vec<u8>> = if raw.is_empty() {
                    Vec::new()
                } else {
                    raw.split(',')
                        .map(|p| unhex(p).ok_or_else(|| format!("bad split point '{p}'")))
                        .collect::<Result<_, _>>()?
                };
                if points.len() != n as usize - 1 {
                    return Err(format!("{} split points for {n} reduces", points.len()));
                }
                if points.windows(2).any(|w| w[0] > w[1]) {
                    return Err("split points out of order".into());
                }
                Ok(Partitioner::TotalOrder(points))
            }
            Some(other) => Err(format!("unknown partitioner '{other}' (hash, {TOTAL_ORDER})")),
        }
    }

    pub fn partition(&self, key: &[u8]) -> u32 {
        match self {
            Partitioner::Hash(n) => hash(key, *n),
            Partitioner::TotalOrder(points) => points.partition_point(|p| p.as_slice() <= key) as u32,
        }
    }
}

/// Picks `partitions - 1` split points from sorted sample keys, evenly spaced.
pub fn split_points(mut keys: Vec<Vec<u8>>, partitions: u32) -> Vec<Vec<u8>> {
    keys.sort_unstable();
    let n = partitions.max(1) as usize;
    if keys.is_empty() {
        return vec![Vec::new(); n - 1];
    }
    (1..n).map(|i| keys[(i * keys.len() / n).min(keys.len() - 1)].clone()).collect()
}

/// Samples the keys the job's (built-in) mapper makes from up to 10 evenly spaced splits
/// and stores the split points in the job's settings. Done by the jobtracker at submission,
/// before any map runs.
pub async fn sample(client: &Client, spec: &mut JobSpec, splits: &[Split]) -> Result<(), String> {
    if spec.settings.get(SETTING).map(String::as_str) != Some(TOTAL_ORDER) {
        return Ok(());
    }
    if spec.mapper == crate::streaming::MAPPER {
        return Err("a total-order partitioner needs a built-in mapper to sample keys with".into());
    }
    let partitions = spec.num_reduces.max(1);
    let chosen: Vec<&Split> = if splits.len() <= SAMPLE_SPLITS {
        splits.iter().collect()
    } else {
        (0..SAMPLE_SPLITS).map(|i| &splits[i * splits.len() / SAMPLE_SPLITS]).collect()
    };
    let per_split = SAMPLE_KEYS / chosen.len().max(1);
    let mut keys = Vec::new();
    for split in chosen {
        let mut lines = LineReader::of_split(client, split).await?;
        let mut mapper = functions::mapper(spec, split)?;
        let mut taken = 0;
        while taken < per_split {
            let Some(line) = lines.next().await.map_err(|e| format!("sampling {}: {e}", split.path))? else { break };
            taken += 1;
            mapper.map(&line, &mut |k, _| keys.push(k.to_vec()));
        }
    }
    let points = split_points(keys, partitions);
    spec.settings.insert(POINTS.into(), points.iter().map(|p| hex(p)).collect::<Vec<_>>().join(","));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_stays_in_range() {
        assert_eq!(hash(b"x", 1), 0);
        assert!((0..1000).all(|i| hash(format!("k{i}").as_bytes(), 7) < 7));
    }

    #[test]
    fn total_order_partitions_by_split_points() {
        let keys: Vec<Vec<u8>> = (0..1000u32).map(|i| format!("{i:04}").into_bytes()).collect();
        let points = split_points(keys, 4);
        assert_eq!(points, [b"0250".to_vec(), b"0500".to_vec(), b"0750".to_vec()]);
        let mut spec = JobSpec { num_reduces: 4, ..Default::default() };
        spec.settings.insert(SETTING.into(), TOTAL_ORDER.into());
        spec.settings.insert(POINTS.into(), points.iter().map(|p| hex(p)).collect::<Vec<_>>().join(","));
        let p = Partitioner::of(&spec).unwrap();
        assert_eq!(p.partition(b"0000"), 0);
        assert_eq!(p.partition(b"0249"), 0);
        assert_eq!(p.partition(b"0250"), 1);
        assert_eq!(p.partition(b"0999"), 3);
        assert_eq!(p.partition(b""), 0);
        // Partition order follows key order.
        let parts: Vec<u32> = (0..1000u32).map(|i| p.partition(format!("{i:04}").as_bytes())).collect();
        assert!(parts.windows(2).all(|w| w[0] <= w[1]));

        spec.num_reduces = 5;
        assert!(Partitioner::of(&spec).unwrap_err().contains("3 split points for 5 reduces"));
        spec.settings.insert(SETTING.into(), "random".into());
        assert!(Partitioner::of(&spec).is_err());
    }

    #[test]
    fn one_partition_needs_no_points() {
        let mut spec = JobSpec { num_reduces: 1, ..Default::default() };
        spec.settings.insert(SETTING.into(), TOTAL_ORDER.into());
        assert_eq!(Partitioner::of(&spec).unwrap().partition(b"anything"), 0);
        assert!(split_points(Vec::new(), 1).is_empty());
    }
}
