//! Job history in RocksDB (`mapreduce.jobtracker_dir`): every job's status, written when it
//! is submitted and when it ends, so `tusk job list` and `status` survive a jobtracker
//! restart. A job the restart interrupted is recorded as failed.
//!
//! ```text
//! key   job id (UTF-8)
//! value [u32 crc32c of the message][JobStatus protobuf]
//! ```

use prost::Message;
use std::path::Path;
use tusk_proto::mapreduce::JobStatus;

pub struct History {
    db: rocksdb::DB,
}

impl History {
    pub fn open(dir: &Path) -> Result<History, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        let db = rocksdb::DB::open(&opts, dir.join("history"))
            .map_err(|e| format!("job history in {}: {e}", dir.display()))?;
        Ok(History { db })
    }

    pub fn put(&self, status: &JobStatus) -> Result<(), String> {
        let body = status.encode_to_vec();
        let mut value = tusk_common::checksum::crc32c(&body).to_be_bytes().to_vec();
        value.extend_from_slice(&body);
        self.db.put(status.job_id.as_bytes(), value).map_err(|e| format!("job history: {e}"))
    }

    /// Every job recorded; entries that fail their checksum are skipped with a warning.
    pub fn load(&self) -> Result<Vec<JobStatus>, String> {
        let mut out = Vec::new();
        for item in self.db.iterator(rocksdb::IteratorMode::Start) {
            let (key, value) = item.map_err(|e| format!("job history: {e}"))?;
            let ok = value.len() >= 4 && {
                let crc = u32::from_be_bytes([value[0], value[1], value[2], value[3]]);
                crc == tusk_common::checksum::crc32c(&value[4..])
            };
            match ok.then(|| JobStatus::decode(&value[4..])) {
                Some(Ok(s)) => out.push(s),
                _ => tracing::warn!(job = %String::from_utf8_lossy(&key), "skipping a damaged job history entry"),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_reopening_and_skips_damage() {
        let dir = tempfile::tempdir().unwrap();
        {
            let h = History::open(dir.path()).unwrap();
            h.put(&JobStatus { job_id: "job_1_0001".into(), maps_total: 3, ..Default::default() }).unwrap();
            h.put(&JobStatus { job_id: "job_1_0002".into(), ..Default::default() }).unwrap();
            h.db.put(b"job_1_0003", b"junk").unwrap();
        }
        let h = History::open(dir.path()).unwrap();
        let jobs = h.load().unwrap();
        assert_eq!(jobs.iter().map(|j| j.job_id.as_str()).collect::<Vec<_>>(), ["job_1_0001", "job_1_0002"]);
        assert_eq!(jobs[0].maps_total, 3);
    }
}
