//! Input splits: one per block of every input file (HDFS's FileInputFormat with the block
//! size as split size), each with the hosts holding that block, for locality. Inputs may be
//! files or directories (their files, skipping names starting with `_` or `.`, as Hadoop).

use tusk_client::{Client, ClientError, FileType};
use tusk_proto::mapreduce::Split;

/// The files of `inputs`, with their lengths.
pub async fn input_files(client: &Client, inputs: &[String]) -> Result<Vec<(String, u64)>, String> {
    let mut files = Vec::new();
    for input in inputs {
        let st = client.file_info(input).await.map_err(|e| format!("{input}: {e}"))?;
        let Some(st) = st else {
            return Err(format!("Input path does not exist: {input}"));
        };
        if st.file_type == FileType::Directory as i32 {
            let (_, entries) = client.list_all(input).await.map_err(|e: ClientError| format!("{input}: {e}"))?;
            let mut names: Vec<_> = entries
                .into_iter()
                .filter(|e| e.file_type != FileType::Directory as i32)
                .filter(|e| !e.name.starts_with('_') && !e.name.starts_with('.'))
                .map(|e| (format!("{}/{}", input.trim_end_matches('/'), e.name), e.length))
                .collect();
            names.sort();
            files.extend(names);
        } else {
            files.push((input.clone(), st.length));
        }
    }
    Ok(files)
}

/// One split per block of every input file; empty files give none.
pub async fn compute(client: &Client, inputs: &[String]) -> Result<Vec<Split>, String> {
    let mut splits = Vec::new();
    for (path, len) in input_files(client, inputs).await? {
        if len == 0 {
            continue;
        }
        let locs = client.get_block_locations(&path, 0, len).await.map_err(|e| format!("{path}: {e}"))?;
        for b in locs.blocks {
            let n = b.block.map(|x| x.num_bytes).unwrap_or(0);
            if n == 0 {
                continue;
            }
            splits.push(Split {
                path: path.clone(),
                start: b.offset,
                length: n,
                hosts: b.locations.iter().map(|d| d.ip_addr.clone()).collect(),
            });
        }
    }
    Ok(splits)
}

/// A generated input of `records` records in `maps` splits of nearly equal size (no path,
/// no hosts: any tracker will do).
pub fn generated(records: u64, maps: u32) -> Vec<Split> {
    let maps = u64::from(maps.max(1)).min(records.max(1));
    (0..maps)
        .map(|i| {
            let start = i * records / maps;
            let end = (i + 1) * records / maps;
            Split { path: String::new(), start, length: end - start, hosts: Vec::new() }
        })
        .filter(|s| s.length > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_splits_cover_every_record_once() {
        let s = super::generated(10, 3);
        assert_eq!(s.iter().map(|s| (s.start, s.length)).collect::<Vec<_>>(), [(0, 3), (3, 3), (6, 4)]);
        assert_eq!(super::generated(2, 5).len(), 2);
        assert!(super::generated(0, 5).is_empty());
    }
}
