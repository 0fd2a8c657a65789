//! A volume is one data directory: its `current/VERSION` file, where replica files live in
//! it, and how much space it has.
//!
//! ```text
//! <dir>/current/VERSION                               datanodeUuid, clusterID, storageType, layoutVersion
//! <dir>/current/finalized/subdir<N>/subdir<M>/blk_<id>  block data
//! <dir>/current/finalized/.../blk_<id>_<genstamp>.meta  checksums (see `meta`)
//! <dir>/current/rbw/blk_<id>, blk_<id>_<genstamp>.meta  replicas being written
//! ```
//!
//! N and M come from bits 16..21 and 8..13 of the block id, as in HDFS, so no directory
//! holds more than a few thousand files.

use crate::error::DatanodeError;
use std::fs;
use std::path::PathBuf;
use tusk_common::durable;

pub const LAYOUT_VERSION: u32 = 1;
pub const STORAGE_TYPE: &str = "DATA_NODE";

/// What a volume's VERSION file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    pub datanode_uuid: String,
    /// Empty until the first registration with a namenode.
    pub cluster_id: String,
}

#[derive(Debug)]
pub struct Volume {
    /// Position in the configured data directories; what the replica index stores.
    pub index: u16,
    pub dir: PathBuf,
}

impl Volume {
    pub fn new(index: u16, dir: PathBuf) -> Volume {
        Volume { index, dir }
    }

    pub fn current(&self) -> PathBuf {
        self.dir.join("current")
    }
    pub fn version_path(&self) -> PathBuf {
        self.current().join("VERSION")
    }
    pub fn rbw_dir(&self) -> PathBuf {
        self.current().join("rbw")
    }
    pub fn finalized_dir(&self) -> PathBuf {
        self.current().join("finalized")
    }

    /// The finalized directory a block belongs in.
    pub fn block_dir(&self, block_id: u64) -> PathBuf {
        let d1 = (block_id >> 16) & 0x1f;
        let d2 = (block_id >> 8) & 0x1f;
        self.finalized_dir().join(format!("subdir{d1}")).join(format!("subdir{d2}"))
    }
    pub fn finalized_block(&self, block_id: u64) -> PathBuf {
        self.block_dir(block_id).join(block_file_name(block_id))
    }
    pub fn finalized_meta(&self, block_id: u64, genstamp: u64) -> PathBuf {
        self.block_dir(block_id).join(meta_file_name(block_id, genstamp))
    }
    pub fn rbw_block(&self, block_id: u64) -> PathBuf {
        self.rbw_dir().join(block_file_name(block_id))
    }
    pub fn rbw_meta(&self, block_id: u64, genstamp: u64) -> PathBuf {
        self.rbw_dir().join(meta_file_name(block_id, genstamp))
    }

    /// Creates the directory tree and proves it writable with a probe file, changing
    /// nothing else.
    pub fn check_writable(&self) -> Result<(), DatanodeError> {
        let not_writable = |source| DatanodeError::DirNotWritable { dir: self.dir.clone(), source };
        fs::create_dir_all(self.rbw_dir()).map_err(not_writable)?;
        fs::create_dir_all(self.finalized_dir()).map_err(not_writable)?;
        let probe = self.current().join(".write-probe");
        fs::write(&probe, b"probe").map_err(not_writable)?;
        fs::remove_file(&probe).map_err(not_writable)?;
        Ok(())
    }

    /// Reads VERSION; `None` when the volume was never formatted.
    pub fn read_version(&self) -> Result<Option<VersionInfo>, DatanodeError> {
        let path = self.version_path();
        if !path.exists() {
            return Ok(None);
        }
        let props = durable::read_properties(&path).map_err(|e| match e {
            durable::PropertiesError::Io { path, source } => DatanodeError::Io { context: "cannot read", path, source },
            durable::PropertiesError::Corrupt { path, reason } => DatanodeError::Corrupt { path, reason },
        })?;
        let get = |key: &str| props.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let corrupt = |reason: String| DatanodeError::Corrupt { path: path.clone(), reason };
        let storage_type = get("storageType").unwrap_or_default();
        if storage_type != STORAGE_TYPE {
            return Err(corrupt(format!("storageType is {storage_type:?}, expected {STORAGE_TYPE}")));
        }
        let layout = get("layoutVersion").unwrap_or_default();
        if layout != LAYOUT_VERSION.to_string() {
            return Err(corrupt(format!("layoutVersion is {layout:?}, this datanode supports {LAYOUT_VERSION}")));
        }
        let datanode_uuid =
            get("datanodeUuid").filter(|u| !u.is_empty()).ok_or_else(|| corrupt("no datanodeUuid".into()))?;
        Ok(Some(VersionInfo { datanode_uuid, cluster_id: get("clusterID").unwrap_or_default() }))
    }

    /// Writes VERSION atomically.
    pub fn write_version(&self, v: &VersionInfo) -> Result<(), DatanodeError> {
        let path = self.version_path();
        durable::write_properties(
            &path,
            &[
                ("datanodeUuid", v.datanode_uuid.clone()),
                ("clusterID", v.cluster_id.clone()),
                ("storageType", STORAGE_TYPE.to_string()),
                ("layoutVersion", LAYOUT_VERSION.to_string()),
            ],
        )
        .map_err(DatanodeError::io("cannot write", path))
    }

    /// Capacity and bytes available to the datanode, from statvfs.
    #[allow(clippy::unnecessary_cast)] // the statvfs field types differ between platforms
    pub fn space(&self) -> std::io::Result<Space> {
        let st = nix::sys::statvfs::statvfs(&self.dir).map_err(std::io::Error::from)?;
        let frag = st.fragment_size() as u64;
        Ok(Space { capacity: st.blocks() as u64 * frag, available: st.blocks_available() as u64 * frag })
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Space {
    pub capacity: u64,
    pub available: u64,
}

pub fn block_file_name(block_id: u64) -> String {
    format!("blk_{block_id}")
}

pub fn meta_file_name(block_id: u64, genstamp: u64) -> String {
    format!("blk_{block_id}_{genstamp}.meta")
}

/// What a file name in a replica directory names.
#[derive(Debug, PartialEq, Eq)]
pub enum ReplicaFile {
    Block(u64),
    Meta(u64, u64),
}

pub fn parse_file_name(name: &str) -> Option<ReplicaFile> {
    let rest = name.strip_prefix("blk_")?;
    if let Some(stem) = rest.strip_suffix(".meta") {
        let (id, gs) = stem.split_once('_')?;
        return Some(ReplicaFile::Meta(id.parse().ok()?, gs.parse().ok()?));
    }
    Some(ReplicaFile::Block(rest.parse().ok()?))
}

/// A new datanode id: a random (version 4) UUID.
pub fn new_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_names() {
        let v = Volume::new(0, PathBuf::from("/d"));
        let id = (3u64 << 16) | (7 << 8) | 5;
        assert_eq!(v.finalized_block(id), PathBuf::from(format!("/d/current/finalized/subdir3/subdir7/blk_{id}")));
        assert_eq!(parse_file_name("blk_42"), Some(ReplicaFile::Block(42)));
        assert_eq!(parse_file_name("blk_42_1001.meta"), Some(ReplicaFile::Meta(42, 1001)));
        assert_eq!(parse_file_name("blk_x"), None);
        assert_eq!(parse_file_name("VERSION"), None);
        let u = new_uuid();
        assert_eq!(u.len(), 36);
        assert_ne!(u, new_uuid());
    }

    #[test]
    fn version_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let v = Volume::new(0, dir.path().to_owned());
        v.check_writable().unwrap();
        assert_eq!(v.read_version().unwrap(), None);
        let info = VersionInfo { datanode_uuid: new_uuid(), cluster_id: String::new() };
        v.write_version(&info).unwrap();
        assert_eq!(v.read_version().unwrap(), Some(info));
        assert!(v.space().unwrap().capacity > 0);
    }
}
