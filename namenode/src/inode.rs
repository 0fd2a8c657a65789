//! Compact inode records in one table. An inode is addressed by its slot (`InodeIdx`, a
//! u32) so parents and children are 4-byte links, not pointers; freed slots are reused.
//! Each inode also has an `id` that is never reused (HDFS's inode id, what FUSE exposes as
//! an inode number). Owner and group names are interned to u32s.

use std::collections::HashMap;

pub type InodeIdx = u32;
pub const ROOT: InodeIdx = 0;

/// A block of a file: id, generation stamp, length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub id: u64,
    pub genstamp: u64,
    pub len: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    pub replication: u16,
    pub block_size: u64,
    pub blocks: Vec<Block>,
    /// The client writing the file while it is under construction.
    pub under_construction: Option<Box<str>>,
}

impl FileMeta {
    pub fn length(&self) -> u64 {
        self.blocks.iter().map(|b| b.len).sum()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Children sorted by name (byte order), so lookups are a binary search.
    Dir(Vec<InodeIdx>),
    File(Box<FileMeta>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inode {
    pub id: u64,
    pub name: Box<str>,
    pub parent: InodeIdx,
    /// Low 12 bits: sticky + rwxrwxrwx.
    pub perm: u16,
    pub owner: u32,
    pub group: u32,
    pub mtime_ms: i64,
    pub atime_ms: i64,
    pub kind: Kind,
}

impl Inode {
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir(_))
    }
    pub fn children(&self) -> &[InodeIdx] {
        match &self.kind {
            Kind::Dir(c) => c,
            Kind::File(_) => &[],
        }
    }
    pub fn file(&self) -> Option<&FileMeta> {
        match &self.kind {
            Kind::File(f) => Some(f),
            Kind::Dir(_) => None,
        }
    }
}

/// Owner and group names, each stored once.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    names: Vec<Box<str>>,
    index: HashMap<Box<str>, u32>,
}

impl Interner {
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = u32::try_from(self.names.len()).expect("fewer than 2^32 distinct user and group names");
        self.names.push(name.into());
        self.index.insert(name.into(), i);
        i
    }
    pub fn lookup(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }
    pub fn name(&self, i: u32) -> &str {
        self.names.get(i as usize).map(|s| &**s).unwrap_or("")
    }
}

/// The inode table: slots with a free list.
#[derive(Debug, Default, Clone)]
pub struct InodeTable {
    slots: Vec<Option<Inode>>,
    free: Vec<InodeIdx>,
}

impl InodeTable {
    pub fn insert(&mut self, inode: Inode) -> InodeIdx {
        if let Some(i) = self.free.pop() {
            debug_assert!(self.slots[i as usize].is_none());
            self.slots[i as usize] = Some(inode);
            i
        } else {
            let i = InodeIdx::try_from(self.slots.len()).expect("fewer than 2^32 inodes");
            self.slots.push(Some(inode));
            i
        }
    }
    pub fn remove(&mut self, i: InodeIdx) -> Option<Inode> {
        let taken = self.slots.get_mut(i as usize).and_then(Option::take);
        if taken.is_some() {
            self.free.push(i);
        }
        taken
    }
    /// The inode in slot `i`. Slots come from the tree's own links, so a missing one is a
    /// broken invariant, not bad input.
    pub fn get(&self, i: InodeIdx) -> &Inode {
        self.slots[i as usize].as_ref().expect("inode slot referenced by the tree is live")
    }
    pub fn get_mut(&mut self, i: InodeIdx) -> &mut Inode {
        self.slots[i as usize].as_mut().expect("inode slot referenced by the tree is live")
    }
    pub fn live(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}
