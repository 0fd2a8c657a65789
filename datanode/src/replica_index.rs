//! The replica index: a RocksDB map from block id to where and what its finalized replica
//! is, so a restart does not have to trust a directory scan alone.
//!
//! ```text
//! key   [u64 block id]                                               big-endian, so ids sort
//! value [u64 genstamp][u64 len][u8 state][u16 volume][u32 crc32c of the 19 bytes before]
//! ```
//!
//! Every value carries its own CRC32C; a value that fails it is dropped and the replica is
//! found again from its files by the reconcile pass in `store`.

use crate::error::DatanodeError;
use rocksdb::{IteratorMode, Options, WriteBatch, DB};
use std::path::{Path, PathBuf};

const VALUE_BYTES: usize = 23;

/// State of a replica, as stored and as reported to the namenode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaState {
    Finalized = 1,
    Rbw = 2,
}

/// What the datanode knows about one replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaInfo {
    pub genstamp: u64,
    pub len: u64,
    pub state: ReplicaState,
    pub volume: u16,
}

impl ReplicaInfo {
    pub fn encode(&self) -> [u8; VALUE_BYTES] {
        let mut v = [0u8; VALUE_BYTES];
        v[..8].copy_from_slice(&self.genstamp.to_be_bytes());
        v[8..16].copy_from_slice(&self.len.to_be_bytes());
        v[16] = self.state as u8;
        v[17..19].copy_from_slice(&self.volume.to_be_bytes());
        let crc = tusk_common::checksum::crc32c(&v[..19]);
        v[19..].copy_from_slice(&crc.to_be_bytes());
        v
    }

    pub fn decode(v: &[u8]) -> Result<ReplicaInfo, String> {
        if v.len() != VALUE_BYTES {
            return Err(format!("value of {} bytes, expected {VALUE_BYTES}", v.len()));
        }
        let crc = u32::from_be_bytes([v[19], v[20], v[21], v[22]]);
        if crc != tusk_common::checksum::crc32c(&v[..19]) {
            return Err("checksum mismatch".into());
        }
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&v[i..i + 8]);
            u64::from_be_bytes(b)
        };
        let state = match v[16] {
            1 => ReplicaState::Finalized,
            2 => ReplicaState::Rbw,
            s => return Err(format!("unknown state {s}")),
        };
        Ok(ReplicaInfo { genstamp: u64_at(0), len: u64_at(8), state, volume: u16::from_be_bytes([v[17], v[18]]) })
    }
}

/// One entry read back from the index.
pub enum Entry {
    Good(u64, ReplicaInfo),
    /// A key or value that failed its checks: the raw key and why.
    Bad(Vec<u8>, String),
}

pub struct ReplicaIndex {
    db: DB,
    path: PathBuf,
}

impl ReplicaIndex {
    pub fn open(path: &Path) -> Result<ReplicaIndex, DatanodeError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        // A small, write-mostly map: keep the footprint modest.
        opts.set_max_open_files(64);
        opts.set_keep_log_file_num(2);
        let db = DB::open(&opts, path).map_err(|e| Self::err(path, e))?;
        Ok(ReplicaIndex { db, path: path.to_owned() })
    }

    fn err(path: &Path, e: rocksdb::Error) -> DatanodeError {
        DatanodeError::Index { path: path.to_owned(), message: e.into_string() }
    }

    pub fn put(&self, block_id: u64, info: &ReplicaInfo) -> Result<(), DatanodeError> {
        self.db.put(block_id.to_be_bytes(), info.encode()).map_err(|e| Self::err(&self.path, e))
    }

    pub fn delete(&self, block_id: u64) -> Result<(), DatanodeError> {
        self.db.delete(block_id.to_be_bytes()).map_err(|e| Self::err(&self.path, e))
    }

    /// Applies many puts and deletes at once (the reconcile pass).
    pub fn apply(&self, puts: &[(u64, ReplicaInfo)], deletes: &[Vec<u8>]) -> Result<(), DatanodeError> {
        let mut batch = WriteBatch::default();
        for (id, info) in puts {
            batch.put(id.to_be_bytes(), info.encode());
        }
        for key in deletes {
            batch.delete(key);
        }
        self.db.write(batch).map_err(|e| Self::err(&self.path, e))
    }

    /// Every entry, checked.
    pub fn load(&self) -> Result<Vec<Entry>, DatanodeError> {
        let mut out = Vec::new();
        for item in self.db.iterator(IteratorMode::Start) {
            let (key, value) = item.map_err(|e| Self::err(&self.path, e))?;
            let Ok(id_bytes) = <[u8; 8]>::try_from(&key[..]) else {
                out.push(Entry::Bad(key.to_vec(), format!("key of {} bytes", key.len())));
                continue;
            };
            match ReplicaInfo::decode(&value) {
                Ok(info) => out.push(Entry::Good(u64::from_be_bytes(id_bytes), info)),
                Err(reason) => out.push(Entry::Bad(key.to_vec(), reason)),
            }
        }
        Ok(out)
    }

    /// Flushes the memtable, so the next start reads the index without replaying its log.
    pub fn flush(&self) -> Result<(), DatanodeError> {
        self.db.flush().map_err(|e| Self::err(&self.path, e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_round_trip_and_crc() {
        let info = ReplicaInfo { genstamp: 1001, len: 12345, state: ReplicaState::Finalized, volume: 2 };
        let v = info.encode();
        assert_eq!(ReplicaInfo::decode(&v), Ok(info));
        for i in 0..v.len() {
            let mut bad = v;
            bad[i] ^= 0x04;
            assert!(ReplicaInfo::decode(&bad).is_err(), "flip at {i} undetected");
        }
        assert!(ReplicaInfo::decode(&v[..10]).is_err());
    }

    #[test]
    fn put_load_delete_and_bad_entries() {
        let dir = tempfile::tempdir().unwrap();
        let info = ReplicaInfo { genstamp: 7, len: 9, state: ReplicaState::Finalized, volume: 0 };
        {
            let idx = ReplicaIndex::open(dir.path()).unwrap();
            idx.put(1, &info).unwrap();
            idx.put(2, &info).unwrap();
            idx.delete(1).unwrap();
            idx.db.put(3u64.to_be_bytes(), b"garbage").unwrap();
            idx.flush().unwrap();
        }
        let idx = ReplicaIndex::open(dir.path()).unwrap();
        let entries = idx.load().unwrap();
        assert_eq!(entries.len(), 2);
        assert!(matches!(entries[0], Entry::Good(2, i) if i == info));
        assert!(matches!(&entries[1], Entry::Bad(k, _) if k[..] == 3u64.to_be_bytes()));
    }
}
