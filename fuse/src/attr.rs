//! File attributes from the namenode's FileStatus, and the user and group names of the
//! namespace mapped to and from the machine's uids and gids (HDFS's simple mode: a name is
//! who you are).

use fuser::{FileAttr, FileType};
use nix::unistd::{Gid, Group, Uid, User};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tusk_proto::client::{FileStatus, FileType as TuskType};

/// Ids for names the machine does not know.
const NOBODY: u32 = 65534;

/// Name <-> id caches over the system's user and group databases.
#[derive(Default)]
pub struct Owners {
    uids: Mutex<HashMap<String, u32>>,
    gids: Mutex<HashMap<String, u32>>,
    names: Mutex<HashMap<u32, String>>,
    groups: Mutex<HashMap<u32, String>>,
}

impl Owners {
    pub fn uid(&self, name: &str) -> u32 {
        *self
            .uids
            .lock()
            .entry(name.to_owned())
            .or_insert_with(|| User::from_name(name).ok().flatten().map(|u| u.uid.as_raw()).unwrap_or(NOBODY))
    }

    pub fn gid(&self, name: &str) -> u32 {
        *self
            .gids
            .lock()
            .entry(name.to_owned())
            .or_insert_with(|| Group::from_name(name).ok().flatten().map(|g| g.gid.as_raw()).unwrap_or(NOBODY))
    }

    /// The user name of a uid (the uid in decimal when it has none).
    pub fn user_name(&self, uid: u32) -> String {
        self.names
            .lock()
            .entry(uid)
            .or_insert_with(|| {
                User::from_uid(Uid::from_raw(uid)).ok().flatten().map(|u| u.name).unwrap_or_else(|| uid.to_string())
            })
            .clone()
    }

    pub fn group_name(&self, gid: u32) -> String {
        self.groups
            .lock()
            .entry(gid)
            .or_insert_with(|| {
                Group::from_gid(Gid::from_raw(gid)).ok().flatten().map(|g| g.name).unwrap_or_else(|| gid.to_string())
            })
            .clone()
    }
}

fn time(ms: i64) -> SystemTime {
    if ms <= 0 {
        UNIX_EPOCH
    } else {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    }
}

/// The attributes of `st` as inode `ino`; `size` overrides the length (a file being written
/// through this mount is longer than the namenode knows yet).
pub fn to_attr(ino: u64, st: &FileStatus, owners: &Owners, size: Option<u64>) -> FileAttr {
    let dir = st.file_type == TuskType::Directory as i32;
    let size = if dir { 0 } else { size.unwrap_or(st.length).max(st.length) };
    let mtime = time(st.modification_time_ms);
    FileAttr {
        ino,
        size,
        blocks: size.div_ceil(512),
        atime: if st.access_time_ms > 0 { time(st.access_time_ms) } else { mtime },
        mtime,
        ctime: mtime,
        crtime: mtime,
        kind: if dir { FileType::Directory } else { FileType::RegularFile },
        perm: (st.permission & 0o7777) as u16,
        nlink: if dir { 2 } else { 1 },
        uid: owners.uid(&st.owner),
        gid: owners.gid(&st.group),
        rdev: 0,
        blksize: 1 << 20,
        flags: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_from_a_file_status() {
        let owners = Owners::default();
        let st = FileStatus {
            file_type: TuskType::File as i32,
            length: 1000,
            modification_time_ms: 1_700_000_000_123,
            permission: 0o640,
            owner: "root".into(),
            group: "no-such-group-here".into(),
            ..Default::default()
        };
        let a = to_attr(7, &st, &owners, None);
        assert_eq!((a.ino, a.size, a.blocks, a.perm, a.uid, a.gid), (7, 1000, 2, 0o640, 0, NOBODY));
        assert_eq!(a.kind, FileType::RegularFile);
        assert_eq!(a.mtime, UNIX_EPOCH + Duration::from_millis(1_700_000_000_123));
        assert_eq!(to_attr(7, &st, &owners, Some(5000)).size, 5000, "a file being written");
        let d = to_attr(1, &FileStatus { file_type: TuskType::Directory as i32, ..st }, &owners, None);
        assert_eq!((d.kind, d.size, d.nlink), (FileType::Directory, 0, 2));
        assert_eq!(owners.user_name(0), "root");
        assert_eq!(owners.user_name(4_000_000), "4000000");
    }
}
