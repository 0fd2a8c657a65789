//! The namespace tree in memory and the one implementation of every mutation.
//!
//! Live requests and edit-log replay both end in [`Namespace::apply`]: the live path first
//! checks existence and permissions (in `namesystem.rs`), builds an [`EditOp`] carrying
//! everything the change needs (times, owner, group), applies it here, then logs it. Replay
//! applies the same op and must reach the same state, so nothing here reads a clock.

use crate::error::{NnError, NnResult};
use crate::inode::{name_key, Block, Blocks, Children, FileMeta, Inode, InodeIdx, InodeTable, Interner, Kind, ROOT};
use tusk_common::path::FsPath;
use tusk_proto::storage::{edit_op::Op, EditOp};

/// The inodes along a path: `inodes[0]` is the root, `inodes[i]` the i-th component, `None`
/// from the first component that does not exist.
#[derive(Debug)]
pub struct Resolved {
    pub inodes: Vec<Option<InodeIdx>>,
    /// Set when a non-final component exists but is a file.
    pub file_in_middle: Option<usize>,
}

impl Resolved {
    pub fn last(&self) -> Option<InodeIdx> {
        self.inodes.last().copied().flatten()
    }
    /// The deepest existing inode that is not the target itself, and its position.
    pub fn last_existing_ancestor(&self) -> (usize, InodeIdx) {
        let n = self.inodes.len();
        let mut pos = 0;
        for (i, ino) in self.inodes.iter().enumerate().take(n.saturating_sub(1)) {
            match ino {
                Some(_) => pos = i,
                None => break,
            }
        }
        (pos, self.inodes[pos].unwrap_or(ROOT))
    }
    pub fn parent(&self) -> Option<InodeIdx> {
        let n = self.inodes.len();
        if n < 2 {
            None
        } else {
            self.inodes[n - 2]
        }
    }
}

/// Totals kept up to date by every mutation.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub files: u64,
    pub dirs: u64,
    pub blocks: u64,
}

/// What `getContentSummary` reports.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub length: u64,
    pub files: u64,
    pub dirs: u64,
    pub space_consumed: u64,
}

#[derive(Debug, Clone)]
pub struct Namespace {
    pub(crate) inodes: InodeTable,
    pub(crate) names: Interner,
    pub(crate) counts: Counts,
    pub(crate) last_inode_id: u64,
    pub(crate) last_block_id: u64,
    pub(crate) generation_stamp: u64,
    /// Blocks of files removed by the ops applied since the last drain; the namesystem
    /// takes them out of the block map and has the datanodes delete them.
    pub(crate) removed_blocks: Vec<u64>,
}

/// The id HDFS gives its root inode; later inodes count up from it.
pub const ROOT_INODE_ID: u64 = 16385;

impl Namespace {
    /// An empty namespace: just `/`, owned by `superuser` and `supergroup`, mode 755.
    pub fn new(superuser: &str, supergroup: &str, time_ms: i64) -> Self {
        let mut names = Interner::default();
        let owner = names.intern(superuser);
        let group = names.intern(supergroup);
        let mut inodes = InodeTable::default();
        let root = inodes.insert(Inode {
            id: ROOT_INODE_ID,
            name: "".into(),
            parent: ROOT,
            perm: 0o755,
            owner,
            group,
            mtime_ms: time_ms,
            atime_ms: 0,
            kind: Kind::Dir(Children::default()),
        });
        debug_assert_eq!(root, ROOT);
        Namespace {
            inodes,
            names,
            counts: Counts { files: 0, dirs: 1, blocks: 0 },
            last_inode_id: ROOT_INODE_ID,
            last_block_id: 0,
            generation_stamp: 1000,
            removed_blocks: Vec::new(),
        }
    }

    pub fn inode(&self, i: InodeIdx) -> &Inode {
        self.inodes.get(i)
    }
    pub fn owner_name(&self, i: InodeIdx) -> &str {
        self.names.name(self.inodes.get(i).owner)
    }
    pub fn group_name(&self, i: InodeIdx) -> &str {
        self.names.name(self.inodes.get(i).group)
    }
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Finds `name` among `dir`'s children.
    pub fn child(&self, dir: InodeIdx, name: &str) -> Result<InodeIdx, usize> {
        let pos = self.child_pos(dir, name)?;
        Ok(self.inodes.get(dir).children()[pos])
    }

    /// The position of `name` among `dir`'s children, or where it would go (0 in a file).
    pub fn child_pos(&self, dir: InodeIdx, name: &str) -> Result<usize, usize> {
        match &self.inodes.get(dir).kind {
            Kind::Dir(children) => children.find(name.as_bytes(), |c| self.inodes.get(c).name.as_bytes()),
            Kind::File(_) => Err(0),
        }
    }

    pub fn resolve(&self, path: &FsPath) -> Resolved {
        let mut inodes = vec![Some(ROOT)];
        let mut cur = Some(ROOT);
        let mut file_in_middle = None;
        for (i, comp) in path.components().enumerate() {
            cur = match cur {
                Some(d) if self.inodes.get(d).is_dir() => self.child(d, comp).ok(),
                Some(_) => {
                    file_in_middle.get_or_insert(i);
                    None
                }
                None => None,
            };
            inodes.push(cur);
        }
        Resolved { inodes, file_in_middle }
    }

    /// Looks `path` up without building a [`Resolved`]: `on_dir` is called for every
    /// existing directory passed through before the final component (the root first), the
    /// ones [`Caller::check`](crate::permission::Caller::check) needs EXECUTE on. Returns
    /// the final inode when it exists.
    pub fn lookup_through<E>(
        &self,
        path: &FsPath,
        mut on_dir: impl FnMut(InodeIdx) -> Result<(), E>,
    ) -> Result<Option<InodeIdx>, E> {
        let mut cur = ROOT;
        for comp in path.components() {
            if !self.inodes.get(cur).is_dir() {
                return Ok(None);
            }
            on_dir(cur)?;
            match self.child(cur, comp) {
                Ok(c) => cur = c,
                Err(_) => return Ok(None),
            }
        }
        Ok(Some(cur))
    }

    pub fn lookup(&self, path: &FsPath) -> Option<InodeIdx> {
        match self.lookup_through(path, |_| Ok::<(), std::convert::Infallible>(())) {
            Ok(found) => found,
        }
    }

    /// The inode of `path`'s parent, looked up without building the parent's path (replay
    /// and every mutation go through here). `None` for the root or a missing parent.
    fn lookup_parent(&self, path: &FsPath) -> Option<InodeIdx> {
        let mut comps = path.components().peekable();
        let mut cur = ROOT;
        comps.peek()?;
        while let Some(comp) = comps.next() {
            if comps.peek().is_none() {
                return Some(cur);
            }
            if !self.inodes.get(cur).is_dir() {
                return None;
            }
            cur = self.child(cur, comp).ok()?;
        }
        Some(cur)
    }

    /// The absolute path of an inode (for messages).
    pub fn path_of(&self, mut i: InodeIdx) -> String {
        let mut parts = Vec::new();
        while i != ROOT {
            let ino = self.inodes.get(i);
            parts.push(&*ino.name);
            i = ino.parent;
        }
        if parts.is_empty() {
            return "/".into();
        }
        parts.reverse();
        format!("/{}", parts.join("/"))
    }

    fn parse(path: &str) -> NnResult<FsPath> {
        Ok(FsPath::parse(path)?)
    }

    /// The existing directory that will hold `path`.
    fn parent_dir(&self, path: &FsPath) -> NnResult<InodeIdx> {
        let parent = || path.parent().ok_or_else(|| NnError::InvalidArgument("the root has no parent".into()));
        let Some(p) = self.lookup_parent(path) else {
            return Err(NnError::FileNotFound(parent()?.to_string()));
        };
        if !self.inodes.get(p).is_dir() {
            let parent = parent()?;
            return Err(NnError::ParentNotDirectory(parent.to_string()));
        }
        Ok(p)
    }

    fn link(&mut self, parent: InodeIdx, child: InodeIdx) -> NnResult<()> {
        let name = self.inodes.get(child).name.clone();
        let pos = match self.child_pos(parent, &name) {
            Ok(_) => return Err(NnError::AlreadyExists(self.path_of(child))),
            Err(pos) => pos,
        };
        self.inodes.get_mut(child).parent = parent;
        match &mut self.inodes.get_mut(parent).kind {
            Kind::Dir(children) => children.insert(pos, name.as_bytes(), child),
            Kind::File(_) => return Err(NnError::ParentNotDirectory(self.path_of(parent))),
        }
        Ok(())
    }

    fn unlink(&mut self, child: InodeIdx) {
        let parent = self.inodes.get(child).parent;
        let name = self.inodes.get(child).name.clone();
        if let Ok(pos) = self.child_pos(parent, &name) {
            if let Kind::Dir(children) = &mut self.inodes.get_mut(parent).kind {
                debug_assert_eq!(children[pos], child);
                if children[pos] == child {
                    children.remove(pos);
                } else if let Some(p) = children.iter().position(|&c| c == child) {
                    children.remove(p);
                }
            }
        }
    }

    fn touch_mtime(&mut self, i: InodeIdx, time_ms: i64) {
        self.inodes.get_mut(i).mtime_ms = time_ms;
    }

    fn new_inode(&mut self, name: &str, perm: u32, owner: &str, group: &str, time_ms: i64, kind: Kind) -> Inode {
        self.last_inode_id += 1;
        Inode {
            id: self.last_inode_id,
            name: name.into(),
            parent: ROOT,
            perm: (perm & 0o7777) as u16,
            owner: self.names.intern(owner),
            group: self.names.intern(group),
            mtime_ms: time_ms,
            atime_ms: if matches!(kind, Kind::Dir(_)) { 0 } else { time_ms },
            kind,
        }
    }

    /// Removes a subtree, returning how many files, dirs and blocks went.
    fn remove_subtree(&mut self, top: InodeIdx) -> Counts {
        self.unlink(top);
        let mut gone = Counts::default();
        let mut stack = vec![top];
        while let Some(i) = stack.pop() {
            if let Some(ino) = self.inodes.remove(i) {
                match ino.kind {
                    Kind::Dir(children) => {
                        gone.dirs += 1;
                        stack.extend_from_slice(&children);
                    }
                    Kind::File(f) => {
                        gone.files += 1;
                        gone.blocks += f.blocks.len() as u64;
                        self.removed_blocks.extend(f.blocks.iter().map(|b| b.id));
                    }
                }
            }
        }
        self.counts.files -= gone.files;
        self.counts.dirs -= gone.dirs;
        self.counts.blocks -= gone.blocks;
        gone
    }

    /// Applies one logged operation. Live callers have already checked that it will succeed;
    /// during replay a failure means the log and the image disagree.
    pub fn apply(&mut self, op: &EditOp) -> NnResult<()> {
        let Some(op) = &op.op else {
            return Err(NnError::InvalidArgument("empty edit operation".into()));
        };
        match op {
            Op::Mkdir(m) => {
                let path = Self::parse(&m.path)?;
                let parent = self.parent_dir(&path)?;
                if self.child(parent, path.name()).is_ok() {
                    return Err(NnError::AlreadyExists(path.to_string()));
                }
                let ino = self.new_inode(
                    path.name(),
                    m.permission,
                    &m.owner,
                    &m.group,
                    m.time_ms,
                    Kind::Dir(Children::default()),
                );
                let idx = self.inodes.insert(ino);
                self.link(parent, idx)?;
                self.counts.dirs += 1;
                self.touch_mtime(parent, m.time_ms);
            }
            Op::Add(a) => {
                let path = Self::parse(&a.path)?;
                let parent = self.parent_dir(&path)?;
                if let Ok(existing) = self.child(parent, path.name()) {
                    if self.inodes.get(existing).is_dir() {
                        return Err(NnError::IsDirectory(path.to_string()));
                    }
                    if !a.overwrite {
                        return Err(NnError::AlreadyExists(path.to_string()));
                    }
                    self.remove_subtree(existing);
                }
                let replication = u16::try_from(a.replication)
                    .map_err(|_| NnError::InvalidArgument(format!("replication {} is too large", a.replication)))?;
                let meta = FileMeta {
                    replication,
                    block_size: a.block_size,
                    blocks: Blocks::default(),
                    under_construction: Some(Box::new(a.client_name.as_str().into())),
                };
                let ino = self.new_inode(path.name(), a.permission, &a.owner, &a.group, a.time_ms, Kind::File(meta));
                let idx = self.inodes.insert(ino);
                self.link(parent, idx)?;
                self.counts.files += 1;
                self.touch_mtime(parent, a.time_ms);
            }
            Op::Close(c) => {
                let path = Self::parse(&c.path)?;
                let idx = self.lookup(&path).ok_or_else(|| NnError::FileNotFound(path.to_string()))?;
                let blocks: Vec<Block> = c
                    .blocks
                    .iter()
                    .map(|b| Block { id: b.block_id, genstamp: b.generation_stamp, len: b.num_bytes })
                    .collect();
                let ino = self.inodes.get_mut(idx);
                let Kind::File(f) = &mut ino.kind else {
                    return Err(NnError::IsDirectory(path.to_string()));
                };
                if f.under_construction.is_none() {
                    return Err(NnError::InvalidArgument(format!("{path} is not under construction")));
                }
                let before = f.blocks.len() as u64;
                f.set_holder(None);
                let after = blocks.len() as u64;
                for b in &blocks {
                    self.last_block_id = self.last_block_id.max(b.id);
                    self.generation_stamp = self.generation_stamp.max(b.genstamp);
                }
                f.blocks = blocks.into();
                ino.mtime_ms = c.time_ms;
                ino.atime_ms = c.time_ms;
                self.counts.blocks = self.counts.blocks - before + after;
            }
            Op::UpdateBlocks(u) => {
                let path = Self::parse(&u.path)?;
                let idx = self.lookup(&path).ok_or_else(|| NnError::FileNotFound(path.to_string()))?;
                let blocks: Vec<Block> = u
                    .blocks
                    .iter()
                    .map(|b| Block { id: b.block_id, genstamp: b.generation_stamp, len: b.num_bytes })
                    .collect();
                let Kind::File(f) = &mut self.inodes.get_mut(idx).kind else {
                    return Err(NnError::IsDirectory(path.to_string()));
                };
                if f.under_construction.is_none() {
                    return Err(NnError::InvalidArgument(format!("{path} is not under construction")));
                }
                let before = f.blocks.len() as u64;
                let after = blocks.len() as u64;
                for b in &blocks {
                    self.last_block_id = self.last_block_id.max(b.id);
                    self.generation_stamp = self.generation_stamp.max(b.genstamp);
                }
                f.blocks = blocks.into();
                self.counts.blocks = self.counts.blocks - before + after;
            }
            Op::SetGenstamp(g) => {
                self.generation_stamp = self.generation_stamp.max(g.genstamp);
            }
            Op::Append(a) => {
                let path = Self::parse(&a.path)?;
                let idx = self.lookup(&path).ok_or_else(|| NnError::FileNotFound(path.to_string()))?;
                let Kind::File(f) = &mut self.inodes.get_mut(idx).kind else {
                    return Err(NnError::IsDirectory(path.to_string()));
                };
                if f.under_construction.is_some() {
                    return Err(NnError::InvalidArgument(format!("{path} is already under construction")));
                }
                f.set_holder(Some(&a.client_name));
            }
            Op::Rename(r) => {
                let src = Self::parse(&r.src)?;
                let dst = Self::parse(&r.dst)?;
                if src.is_root() {
                    return Err(NnError::InvalidArgument("cannot rename the root".into()));
                }
                if dst.is_within(&src) {
                    return Err(NnError::InvalidArgument(format!(
                        "Rename destination {dst} is a directory or file under source {src}"
                    )));
                }
                let idx = self.lookup(&src).ok_or_else(|| NnError::FileNotFound(src.to_string()))?;
                let new_parent = self.parent_dir(&dst)?;
                if self.child(new_parent, dst.name()).is_ok() {
                    return Err(NnError::AlreadyExists(dst.to_string()));
                }
                let old_parent = self.inodes.get(idx).parent;
                self.unlink(idx);
                self.inodes.get_mut(idx).name = dst.name().into();
                self.link(new_parent, idx)?;
                self.touch_mtime(old_parent, r.time_ms);
                self.touch_mtime(new_parent, r.time_ms);
            }
            Op::Delete(d) => {
                let path = Self::parse(&d.path)?;
                if path.is_root() {
                    return Err(NnError::InvalidArgument("cannot delete the root".into()));
                }
                let idx = self.lookup(&path).ok_or_else(|| NnError::FileNotFound(path.to_string()))?;
                let parent = self.inodes.get(idx).parent;
                self.remove_subtree(idx);
                self.touch_mtime(parent, d.time_ms);
            }
            Op::SetPermission(p) => {
                let idx = self.existing(&p.path)?;
                self.inodes.get_mut(idx).perm = (p.permission & 0o7777) as u16;
            }
            Op::SetOwner(o) => {
                let idx = self.existing(&o.path)?;
                if !o.owner.is_empty() {
                    let u = self.names.intern(&o.owner);
                    self.inodes.get_mut(idx).owner = u;
                }
                if !o.group.is_empty() {
                    let g = self.names.intern(&o.group);
                    self.inodes.get_mut(idx).group = g;
                }
            }
            Op::SetTimes(t) => {
                let idx = self.existing(&t.path)?;
                let ino = self.inodes.get_mut(idx);
                if t.modification_time_ms >= 0 {
                    ino.mtime_ms = t.modification_time_ms;
                }
                if t.access_time_ms >= 0 {
                    ino.atime_ms = t.access_time_ms;
                }
            }
            Op::SetReplication(r) => {
                let idx = self.existing(&r.path)?;
                let replication = u16::try_from(r.replication)
                    .map_err(|_| NnError::InvalidArgument(format!("replication {} is too large", r.replication)))?;
                if let Kind::File(f) = &mut self.inodes.get_mut(idx).kind {
                    f.replication = replication;
                }
            }
        }
        Ok(())
    }

    /// The id and generation stamp the next new block gets. Applying the op that adds it
    /// advances both (replay too: it takes the maximum of every block it sees).
    pub fn next_block(&self) -> (u64, u64) {
        (self.last_block_id + 1, self.generation_stamp + 1)
    }

    /// The next generation stamp to hand out (pipeline recovery, append, lease recovery);
    /// applying an op carrying it advances the counter.
    pub fn next_genstamp(&self) -> u64 {
        self.generation_stamp + 1
    }

    /// hflush: readers may see `len` bytes of the last block of the file at `idx` being
    /// written. In memory only, as HDFS: the length becomes durable when the block ends.
    pub fn set_last_block_len(&mut self, idx: InodeIdx, len: u64) {
        if let Kind::File(f) = &mut self.inodes.get_mut(idx).kind {
            if f.under_construction.is_some() {
                if let Some(b) = f.blocks.last_mut() {
                    b.len = b.len.max(len);
                }
            }
        }
    }

    /// A datanode holds block `id` with `genstamp`: new blocks must get larger ids and stamps,
    /// even when this namespace is older than the datanode's data (a name directory rebuilt
    /// from a checkpoint), so a new block can never collide with a left-over replica. In
    /// memory only: the next block allocated carries the raised values into the edit log.
    pub fn note_block_seen(&mut self, id: u64, genstamp: u64) {
        self.last_block_id = self.last_block_id.max(id);
        self.generation_stamp = self.generation_stamp.max(genstamp);
    }

    pub fn take_removed_blocks(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.removed_blocks)
    }

    fn existing(&self, path: &str) -> NnResult<InodeIdx> {
        let path = Self::parse(path)?;
        self.lookup(&path).ok_or_else(|| NnError::FileNotFound(path.to_string()))
    }

    /// Length, files and directories under `i` (itself included).
    pub fn summary(&self, i: InodeIdx) -> Summary {
        let mut s = Summary::default();
        let mut stack = vec![i];
        while let Some(i) = stack.pop() {
            match &self.inodes.get(i).kind {
                Kind::Dir(children) => {
                    s.dirs += 1;
                    stack.extend_from_slice(children);
                }
                Kind::File(f) => {
                    s.files += 1;
                    let len = f.length();
                    s.length += len;
                    s.space_consumed += len * u64::from(f.replication);
                }
            }
        }
        s
    }

    /// Every inode under `top` (itself included), depth-first, children in name order.
    pub fn walk(&self, top: InodeIdx, mut visit: impl FnMut(InodeIdx, &Inode)) {
        let mut stack = vec![top];
        while let Some(i) = stack.pop() {
            let ino = self.inodes.get(i);
            visit(i, ino);
            stack.extend(ino.children().iter().rev());
        }
    }

    /// Checks the tree's invariants (children sorted and linked back, counts right); used by
    /// tests and after loading an image.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut counts = Counts::default();
        let mut seen = 0usize;
        let mut err = None;
        self.walk(ROOT, |i, ino| {
            seen += 1;
            match &ino.kind {
                Kind::Dir(children) => {
                    counts.dirs += 1;
                    for w in children.windows(2) {
                        if self.inodes.get(w[0]).name >= self.inodes.get(w[1]).name {
                            err.get_or_insert(format!("children of {} not sorted", self.path_of(i)));
                        }
                    }
                    for (pos, &c) in children.iter().enumerate() {
                        if self.inodes.get(c).parent != i {
                            err.get_or_insert(format!("{} has a wrong parent link", self.path_of(c)));
                        }
                        if children.key(pos) != name_key(self.inodes.get(c).name.as_bytes()) {
                            err.get_or_insert(format!("{} has a stale name key", self.path_of(c)));
                        }
                    }
                }
                Kind::File(f) => {
                    counts.files += 1;
                    counts.blocks += f.blocks.len() as u64;
                }
            }
        });
        if let Some(e) = err {
            return Err(e);
        }
        if counts != self.counts {
            return Err(format!("counts {:?} differ from the tree's {:?}", self.counts, counts));
        }
        if seen != self.inodes.live() {
            return Err(format!("{} inodes reachable but {} allocated", seen, self.inodes.live()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tusk_proto::storage::*;

    fn op(o: edit_op::Op) -> EditOp {
        EditOp { op: Some(o) }
    }
    fn mkdir(p: &str) -> EditOp {
        op(edit_op::Op::Mkdir(OpMkdir {
            path: p.into(),
            permission: 0o755,
            owner: "u".into(),
            group: "g".into(),
            time_ms: 5,
        }))
    }
    fn add(p: &str, overwrite: bool) -> EditOp {
        op(edit_op::Op::Add(OpAdd {
            path: p.into(),
            permission: 0o644,
            owner: "u".into(),
            group: "g".into(),
            time_ms: 6,
            replication: 3,
            block_size: 1 << 27,
            client_name: "c".into(),
            overwrite,
        }))
    }

    /// `lookup_through` finds what `resolve` finds and passes through exactly the
    /// directories `Caller::check` requires EXECUTE on (existing directories before the
    /// target, stopping at the first missing component or file).
    #[test]
    fn lookup_through_matches_resolve() {
        let mut ns = Namespace::new("su", "sg", 1);
        for o in [mkdir("/a"), mkdir("/a/b"), add("/a/b/f", false), add("/a/g", false)] {
            ns.apply(&o).unwrap();
        }
        for p in ["/", "/a", "/a/b", "/a/b/f", "/a/b/f/x", "/a/b/f/x/y", "/a/g", "/a/missing/z", "/zz", "/a/b/nope"] {
            let path = FsPath::parse(p).unwrap();
            let res = ns.resolve(&path);
            let mut passed = Vec::new();
            let last = ns
                .lookup_through(&path, |d| {
                    passed.push(d);
                    Ok::<_, ()>(())
                })
                .unwrap();
            assert_eq!(last, res.last(), "{p}");
            let n = res.inodes.len();
            let expected: Vec<InodeIdx> =
                res.inodes[..n - 1].iter().map_while(|i| i.filter(|&i| ns.inode(i).is_dir())).collect();
            assert_eq!(passed, expected, "{p}");
        }
        // An error from the callback stops the walk.
        let path = FsPath::parse("/a/b/f").unwrap();
        assert_eq!(
            ns.lookup_through(&path, |d| if d == ROOT { Ok(()) } else { Err(d) }),
            Err(ns.lookup(&FsPath::parse("/a").unwrap()).unwrap())
        );
    }

    /// `lookup_parent` finds what looking up the parent's path finds.
    #[test]
    fn lookup_parent_matches_the_parent_path() {
        let mut ns = Namespace::new("su", "sg", 1);
        for o in [mkdir("/a"), mkdir("/a/b"), add("/a/b/f", false), add("/g", false)] {
            ns.apply(&o).unwrap();
        }
        for p in ["/", "/a", "/a/b", "/a/b/f", "/a/b/f/x", "/a/b/f/x/y", "/g", "/g/h", "/a/missing/z", "/zz", "/a/b/c"]
        {
            let path = FsPath::parse(p).unwrap();
            let expected = path.parent().and_then(|parent| ns.lookup(&parent));
            assert_eq!(ns.lookup_parent(&path), expected, "{p}");
            assert_eq!(ns.lookup(&path), ns.resolve(&path).last(), "{p}");
        }
    }

    #[test]
    fn build_rename_delete() {
        let mut ns = Namespace::new("root", "supergroup", 1);
        ns.apply(&mkdir("/a")).unwrap();
        ns.apply(&mkdir("/a/b")).unwrap();
        ns.apply(&add("/a/b/f", false)).unwrap();
        assert!(matches!(ns.apply(&add("/a/b/f", false)), Err(NnError::AlreadyExists(_))));
        ns.apply(&add("/a/b/f", true)).unwrap();
        assert!(matches!(ns.apply(&mkdir("/x/y")), Err(NnError::FileNotFound(_))));
        ns.check_invariants().unwrap();
        assert_eq!(ns.counts(), Counts { files: 1, dirs: 3, blocks: 0 });
        let rename = |s: &str, d: &str| op(edit_op::Op::Rename(OpRename { src: s.into(), dst: d.into(), time_ms: 9 }));
        assert!(ns.apply(&rename("/a", "/a/b/c")).is_err());
        ns.apply(&rename("/a/b", "/c")).unwrap();
        assert!(ns.lookup(&FsPath::parse("/c/f").unwrap()).is_some());
        assert_eq!(ns.inode(ns.lookup(&FsPath::parse("/a").unwrap()).unwrap()).mtime_ms, 9);
        ns.apply(&op(edit_op::Op::Delete(OpDelete { path: "/c".into(), time_ms: 10 }))).unwrap();
        ns.check_invariants().unwrap();
        assert_eq!(ns.counts(), Counts { files: 0, dirs: 2, blocks: 0 });
        // Freed slots are reused without confusing the tree.
        ns.apply(&mkdir("/z")).unwrap();
        ns.apply(&mkdir("/b")).unwrap();
        ns.check_invariants().unwrap();
        let names: Vec<_> = ns.inode(ROOT).children().iter().map(|&c| ns.inode(c).name.to_string()).collect();
        assert_eq!(names, ["a", "b", "z"]);
    }
}
