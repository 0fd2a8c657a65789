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

/// The longest name kept inside the inode itself; longer ones get their own allocation.
pub const NAME_INLINE_BYTES: usize = 14;

/// An inode's name, 16 bytes. Most names fit inline, which saves the separate heap
/// allocation (pointer, length and malloc's own overhead) a `Box<str>` would cost per inode;
/// a longer one is boxed twice (a thin pointer keeps the enum at 16 bytes). A name of at
/// most [`NAME_INLINE_BYTES`] is always inline, so two equal names always have the same
/// representation.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Name {
    Inline(u8, [u8; NAME_INLINE_BYTES]),
    #[allow(clippy::box_collection, clippy::redundant_allocation)]
    Heap(Box<Box<str>>),
}

impl Name {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Name::Inline(len, bytes) => &bytes[..usize::from(*len)],
            Name::Heap(s) => s.as_bytes(),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            // Built only from a `&str` (below), so the bytes are UTF-8.
            Name::Inline(len, bytes) => std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default(),
            Name::Heap(s) => s,
        }
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        if s.len() <= NAME_INLINE_BYTES {
            let mut bytes = [0u8; NAME_INLINE_BYTES];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Name::Inline(s.len() as u8, bytes)
        } else {
            Name::Heap(Box::new(s.into()))
        }
    }
}

impl From<String> for Name {
    fn from(s: String) -> Name {
        if s.len() <= NAME_INLINE_BYTES {
            Name::from(s.as_str())
        } else {
            Name::Heap(Box::new(s.into_boxed_str()))
        }
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

/// Byte order, as the children of a directory are sorted.
impl Ord for Name {
    fn cmp(&self, other: &Name) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}
impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A file's blocks. Most files have one block: it is kept inline, with no `Vec` allocation
/// of its own. Reads as a slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocks {
    One(Block),
    /// None, or two and more (an empty `Vec` allocates nothing).
    Many(Vec<Block>),
}

impl Default for Blocks {
    fn default() -> Blocks {
        Blocks::Many(Vec::new())
    }
}

impl From<Vec<Block>> for Blocks {
    fn from(mut v: Vec<Block>) -> Blocks {
        if v.len() == 1 {
            Blocks::One(v[0])
        } else {
            v.shrink_to_fit();
            Blocks::Many(v)
        }
    }
}

impl std::ops::Deref for Blocks {
    type Target = [Block];
    fn deref(&self) -> &[Block] {
        match self {
            Blocks::One(b) => std::slice::from_ref(b),
            Blocks::Many(v) => v,
        }
    }
}

impl<'a> IntoIterator for &'a Blocks {
    type Item = &'a Block;
    type IntoIter = std::slice::Iter<'a, Block>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl std::ops::DerefMut for Blocks {
    fn deref_mut(&mut self) -> &mut [Block] {
        match self {
            Blocks::One(b) => std::slice::from_mut(b),
            Blocks::Many(v) => v,
        }
    }
}

/// A file's own fields, inline in its inode (no box: one allocation less per file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    pub replication: u16,
    pub block_size: u64,
    pub blocks: Blocks,
    /// The client writing the file while it is under construction (a thin pointer: 8 bytes
    /// in every file's inode instead of 16; read it through [`FileMeta::holder`]).
    #[allow(clippy::redundant_allocation)]
    pub under_construction: Option<Box<Box<str>>>,
}

impl FileMeta {
    /// The client writing the file, while it is under construction.
    pub fn holder(&self) -> Option<&str> {
        self.under_construction.as_deref().map(|s| &**s)
    }
    pub fn set_holder(&mut self, client: Option<&str>) {
        self.under_construction = client.map(|c| Box::new(c.into()));
    }

    pub fn length(&self) -> u64 {
        self.blocks.iter().map(|b| b.len).sum()
    }
}

/// The first 8 bytes of a name, zero-padded, big-endian: names in byte order have keys in
/// (non-strict) order, so a directory's keys are sorted as its children are.
pub fn name_key(name: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = name.len().min(8);
    b[..n].copy_from_slice(&name[..n]);
    u64::from_be_bytes(b)
}

/// A directory's children sorted by name, each slot beside the [`name_key`] of its name. A
/// lookup binary-searches the contiguous keys and reads only the inodes whose key matches
/// (usually one), instead of one inode (a cache miss) per probe. Reads as a slice of slots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Children {
    keys: Vec<u64>,
    slots: Vec<InodeIdx>,
}

impl Children {
    pub fn with_capacity(n: usize) -> Children {
        Children { keys: Vec::with_capacity(n), slots: Vec::with_capacity(n) }
    }

    /// The position of `name` (`Ok`), or where it would be inserted (`Err`); `name_of` gives
    /// a child's name.
    pub fn find<'a>(&self, name: &[u8], name_of: impl Fn(InodeIdx) -> &'a [u8]) -> Result<usize, usize> {
        let key = name_key(name);
        let lo = self.keys.partition_point(|&k| k < key);
        let same = self.keys[lo..].partition_point(|&k| k == key);
        self.slots[lo..lo + same].binary_search_by(|&c| name_of(c).cmp(name)).map(|p| lo + p).map_err(|p| lo + p)
    }

    /// Inserts `slot` named `name` at `pos` (from [`Children::find`]).
    pub fn insert(&mut self, pos: usize, name: &[u8], slot: InodeIdx) {
        self.keys.insert(pos, name_key(name));
        self.slots.insert(pos, slot);
    }

    /// Appends a child whose name sorts after every other (an image is read in order).
    pub fn push(&mut self, name: &[u8], slot: InodeIdx) {
        self.keys.push(name_key(name));
        self.slots.push(slot);
    }

    pub fn remove(&mut self, pos: usize) -> InodeIdx {
        self.keys.remove(pos);
        self.slots.remove(pos)
    }

    /// The stored key of the child at `pos` (checked against its name by
    /// `Namespace::check_invariants`).
    pub fn key(&self, pos: usize) -> u64 {
        self.keys[pos]
    }
}

impl std::ops::Deref for Children {
    type Target = [InodeIdx];
    fn deref(&self) -> &[InodeIdx] {
        &self.slots
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Children sorted by name (byte order), so lookups are a binary search.
    Dir(Children),
    File(FileMeta),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inode {
    pub id: u64,
    pub name: Name,
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
    /// An empty table with room for `n` inodes (an image load knows how many it will read).
    pub fn with_capacity(n: usize) -> InodeTable {
        InodeTable { slots: Vec::with_capacity(n), free: Vec::new() }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_inline_up_to_the_limit_and_order_by_bytes() {
        let short = "a".repeat(NAME_INLINE_BYTES);
        let long = "a".repeat(NAME_INLINE_BYTES + 1);
        assert!(matches!(Name::from(short.as_str()), Name::Inline(..)));
        assert!(matches!(Name::from(long.clone()), Name::Heap(_)));
        assert_eq!(Name::from(long.as_str()), Name::from(long.clone()));
        for s in ["", "x", "é✓", short.as_str(), long.as_str()] {
            assert_eq!(Name::from(s).as_str(), s);
            assert_eq!(&*Name::from(s.to_owned()), s);
        }
        let mut names: Vec<Name> =
            ["b", "a", "ab", long.as_str(), short.as_str(), "B", "a\u{e9}"].into_iter().map(Name::from).collect();
        names.sort();
        let mut strs: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
        let sorted = strs.clone();
        strs.sort();
        assert_eq!(strs, sorted, "Name orders as str does (bytes)");
    }

    #[test]
    fn one_block_is_inline_and_reads_as_a_slice() {
        let b = |id| Block { id, genstamp: 1000 + id, len: 7 };
        assert!(matches!(Blocks::from(vec![b(1)]), Blocks::One(_)));
        assert_eq!(&*Blocks::from(vec![b(1)]), &[b(1)]);
        assert_eq!(&*Blocks::from(vec![b(1), b(2)]), &[b(1), b(2)]);
        assert!(Blocks::default().is_empty());
        let mut one = Blocks::from(vec![b(3)]);
        one.last_mut().unwrap().len = 9;
        assert_eq!(one[0].len, 9);
    }

    #[test]
    fn children_find_by_key_then_name() {
        // Names sharing an 8-byte prefix fall back to comparing whole names.
        let names: Vec<Name> =
            ["", "a", "part-00000", "part-00001", "part-00010", "part-0001", "z\0", "z", "zz"].map(Name::from).to_vec();
        let mut sorted: Vec<usize> = (0..names.len()).collect();
        sorted.sort_by(|&a, &b| names[a].cmp(&names[b]));
        let name_of = |i: InodeIdx| names[i as usize].as_bytes();
        let mut c = Children::default();
        for (n, &i) in sorted.iter().enumerate().rev() {
            let pos = c.find(names[i].as_bytes(), name_of).unwrap_err();
            assert_eq!(pos, 0, "inserting in reverse order always goes first ({n})");
            c.insert(pos, names[i].as_bytes(), i as InodeIdx);
        }
        for (pos, &i) in sorted.iter().enumerate() {
            assert_eq!(c.find(names[i].as_bytes(), name_of), Ok(pos));
            assert_eq!(c[pos], i as InodeIdx);
            assert_eq!(c.key(pos), name_key(names[i].as_bytes()));
        }
        assert_eq!(
            c.find(b"part-00002", name_of),
            Err(c.iter().position(|&i| names[i as usize].as_str() == "part-0001").unwrap())
        );
        assert_eq!(c.find(b"zzz", name_of), Err(names.len()));
        let gone = c.remove(1);
        assert_eq!(names[gone as usize].as_str(), "a");
        assert_eq!(c.find(b"a", name_of), Err(1));
    }

    /// The per-file footprint this layout is for (docs/benchmarks.md, nn-memory): an inode
    /// slot with its name and one block inline, no other allocation.
    #[test]
    fn inode_slot_stays_small() {
        let size = std::mem::size_of::<Option<Inode>>();
        eprintln!(
            "Option<Inode>: {size} bytes, Kind {}, FileMeta {}",
            std::mem::size_of::<Kind>(),
            std::mem::size_of::<FileMeta>()
        );
        assert!(size <= 112, "{size}");
    }
}
