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
