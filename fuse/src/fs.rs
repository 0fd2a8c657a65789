//! The FUSE file system over a Tusk client. fuser calls these methods from its session
//! thread, one request at a time; every request is answered from a task on the tokio
//! runtime, so that a slow request (a read waiting on a datanode) never holds up the others.
//!
//! An open file is a task of its own ([`crate::handle`]) fed through a channel: the session
//! thread queues its reads and writes in the order the kernel sent them, so sequential reads
//! stream from one block reader and writes reach the pipeline in order, while different
//! files proceed side by side.

use crate::attr::{to_attr, Owners};
use crate::handle::{self, Op};
use crate::inodes::{child, Inodes};
use fuser::{
    FileType, Filesystem, KernelConfig, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow,
};
use nix::errno::Errno;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::UnboundedSender;
use tusk_client::{Client, ClientError, FileType as TuskType};
use tusk_common::config::ClientConfig;

/// How long the kernel may keep attributes and names (the short attribute cache).
const TTL: Duration = Duration::from_secs(1);

/// The errno for a client error; failures to reach the cluster are logged (they are the
/// cluster's state, not the caller's mistake).
pub fn errno(e: &ClientError) -> i32 {
    let code = match e {
        ClientError::NotFound(_) => Errno::ENOENT,
        ClientError::AlreadyExists(_) => Errno::EEXIST,
        ClientError::ParentNotDirectory(_) | ClientError::NotDirectory(_) => Errno::ENOTDIR,
        ClientError::IsDirectory(_) => Errno::EISDIR,
        ClientError::NotEmpty(_) => Errno::ENOTEMPTY,
        ClientError::PermissionDenied(_) => Errno::EACCES,
        ClientError::SafeMode(_) => Errno::EROFS,
        ClientError::InvalidPath(_) | ClientError::InvalidArgument(_) => Errno::EINVAL,
        ClientError::LeaseConflict(_) | ClientError::RecoveryInProgress(_) => Errno::EBUSY,
        ClientError::LimitExceeded(_) => Errno::EDQUOT,
        ClientError::NotReplicatedYet(_) => Errno::EAGAIN,
        ClientError::Connect(m) => {
            tracing::error!("the namenode is unreachable: {m}");
            Errno::EIO
        }
        other => {
            tracing::error!("I/O error: {other}");
            Errno::EIO
        }
    };
    code as i32
}

fn system_time(t: TimeOrNow) -> i64 {
    let t = match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    };
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub struct Shared {
    pub namenode: String,
    pub conf: ClientConfig,
    /// A client per user: the namenode checks permissions as the caller's user name.
    clients: tokio::sync::Mutex<HashMap<String, Client>>,
    pub inodes: Mutex<Inodes>,
    pub owners: Owners,
    /// Lengths of files being written through this mount, by inode (the namenode knows
    /// only their finished blocks).
    pub writing: Mutex<HashMap<u64, u64>>,
    /// Times set (futimens) on a file while it is open for writing here: completing the file
    /// sets its times to the close, so they are set again after it (tar and `cp -p` set them
    /// before they close). By inode: (mtime, atime) in ms, -1 for unchanged.
    pub times_after_close: Mutex<HashMap<u64, (i64, i64)>>,
    pub read_only: bool,
}

impl Shared {
    pub async fn client(&self, user: &str) -> Result<Client, i32> {
        let mut clients = self.clients.lock().await;
        if let Some(c) = clients.get(user) {
            return Ok(c.clone());
        }
        let c = Client::connect(&self.namenode, user, &self.conf).await.map_err(|e| errno(&e))?;
        clients.insert(user.to_owned(), c.clone());
        Ok(c)
    }

    fn path(&self, ino: u64) -> Result<String, i32> {
        self.inodes.lock().path(ino).ok_or(Errno::ENOENT as i32)
    }

    fn child_path(&self, parent: u64, name: &OsStr) -> Result<String, i32> {
        let name = name.to_str().ok_or(Errno::EINVAL as i32)?;
        Ok(child(&self.path(parent)?, name))
    }

    /// Looks `path` up and hands the kernel its entry (a lookup it holds).
    async fn entry(&self, c: &Client, path: &str) -> Result<fuser::FileAttr, i32> {
        let st = c.file_info(path).await.map_err(|e| errno(&e))?.ok_or(Errno::ENOENT as i32)?;
        let ino = self.inodes.lock().lookup(path);
        Ok(self.attr_of(ino, &st))
    }

    async fn attr(&self, c: &Client, ino: u64) -> Result<fuser::FileAttr, i32> {
        let path = self.path(ino)?;
        let st = c.file_info(&path).await.map_err(|e| errno(&e))?.ok_or(Errno::ENOENT as i32)?;
        Ok(self.attr_of(ino, &st))
    }

    /// The attributes of inode `ino` with status `st` (the length of a file being written
    /// here is what was written).
    fn attr_of(&self, ino: u64, st: &tusk_client::FileStatus) -> fuser::FileAttr {
        let size = self.writing.lock().get(&ino).copied();
        to_attr(ino, st, &self.owners, size)
    }
}

/// A reply that can carry an errno (every kind of fuser reply can).
pub trait Fail {
    fn fail(self, errno: i32);
}

macro_rules! fail_with_error {
    ($($t:ty),*) => {$(
        impl Fail for $t {
            fn fail(self, errno: i32) {
                self.error(errno)
            }
        }
    )*};
}
fail_with_error!(ReplyEntry, ReplyAttr, ReplyEmpty, ReplyOpen, ReplyCreate, ReplyDirectory, ReplyStatfs);

/// A directory being listed: the entries fetched so far (a page at a time).
struct Listing {
    path: String,
    entries: Vec<(String, bool)>,
    remaining: u64,
}

enum Handle {
    File(UnboundedSender<Op>),
    Dir(Arc<tokio::sync::Mutex<Listing>>),
}

pub struct TuskFs {
    rt: tokio::runtime::Handle,
    pub shared: Arc<Shared>,
    handles: Arc<Mutex<HashMap<u64, Handle>>>,
    next_fh: AtomicU64,
}

impl TuskFs {
    pub fn new(rt: tokio::runtime::Handle, namenode: String, conf: ClientConfig, read_only: bool) -> TuskFs {
        TuskFs {
            rt,
            shared: Arc::new(Shared {
                namenode,
                conf,
                clients: Default::default(),
                inodes: Mutex::new(Inodes::default()),
                owners: Owners::default(),
                writing: Mutex::new(HashMap::new()),
                times_after_close: Mutex::new(HashMap::new()),
                read_only,
            }),
            handles: Arc::new(Mutex::new(HashMap::new())),
            next_fh: AtomicU64::new(1),
        }
    }

    fn user(&self, req: &Request<'_>) -> String {
        self.shared.owners.user_name(req.uid())
    }

    fn fh(&self) -> u64 {
        self.next_fh.fetch_add(1, Ordering::Relaxed)
    }

    /// Runs `f` on the runtime with the caller's client and the reply; without a client
    /// (the namenode unreachable) the reply is the error.
    fn spawn<R, F, Fut>(&self, req: &Request<'_>, reply: R, f: F)
    where
        R: Fail + Send + 'static,
        F: FnOnce(Arc<Shared>, Client, R) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let (shared, user) = (Arc::clone(&self.shared), self.user(req));
        self.rt.spawn(async move {
            match shared.client(&user).await {
                Ok(c) => f(shared, c, reply).await,
                Err(e) => reply.fail(e),
            }
        });
    }

    fn refuse_if_read_only(&self) -> Result<(), i32> {
        if self.shared.read_only {
            Err(Errno::EROFS as i32)
        } else {
            Ok(())
        }
    }

    /// The path of `name` in `parent`, for a change (EROFS on a read-only mount).
    fn writable_child(&self, parent: u64, name: &OsStr) -> Result<String, i32> {
        self.refuse_if_read_only()?;
        self.shared.child_path(parent, name)
    }

    fn file_op(&self, fh: u64, op: Op) {
        let sender = match self.handles.lock().get(&fh) {
            Some(Handle::File(s)) => s.clone(),
            _ => return op.fail(Errno::EBADF as i32),
        };
        if let Err(e) = sender.send(op) {
            e.0.fail(Errno::EIO as i32);
        }
    }
}

/// Splits the write flags of an open(2).
fn access(flags: i32) -> (bool, bool, bool) {
    let acc = flags & nix::fcntl::OFlag::O_ACCMODE.bits();
    let write = acc == nix::fcntl::OFlag::O_WRONLY.bits() || acc == nix::fcntl::OFlag::O_RDWR.bits();
    let trunc = flags & nix::fcntl::OFlag::O_TRUNC.bits() != 0;
    let append = flags & nix::fcntl::OFlag::O_APPEND.bits() != 0;
    (write, trunc, append)
}

impl Filesystem for TuskFs {
    fn init(&mut self, _req: &Request<'_>, config: &mut KernelConfig) -> Result<(), i32> {
        let _ = config.set_max_write(1 << 20);
        let _ = config.set_max_readahead(1 << 20);
        let _ = config.set_max_background(64);
        let _ = config.add_capabilities(fuser::consts::FUSE_ATOMIC_O_TRUNC | fuser::consts::FUSE_PARALLEL_DIROPS);
        Ok(())
    }

    fn lookup(&mut self, req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        let path = match self.shared.child_path(parent, name) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        self.spawn(req, reply, move |sh, c, reply| async move {
            match sh.entry(&c, &path).await {
                Ok(a) => reply.entry(&TTL, &a, 0),
                Err(e) => reply.error(e),
            }
        });
    }

    fn forget(&mut self, _req: &Request<'_>, ino: u64, nlookup: u64) {
        self.shared.inodes.lock().forget(ino, nlookup);
    }

    fn getattr(&mut self, req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        self.spawn(req, reply, move |sh, c, reply| async move {
            match sh.attr(&c, ino).await {
                Ok(a) => reply.attr(&TTL, &a),
                Err(e) => reply.error(e),
            }
        });
    }

    fn setattr(
        &mut self,
        req: &Request<'_>,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<u64>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<u32>,
        reply: ReplyAttr,
    ) {
        if let Err(e) = self.refuse_if_read_only() {
            return reply.error(e);
        }
        let (owner, group) =
            (uid.map(|u| self.shared.owners.user_name(u)), gid.map(|g| self.shared.owners.group_name(g)));
        // A truncation of a file open here for writing is the writer's business.
        let writer = fh.and_then(|fh| match self.handles.lock().get(&fh) {
            Some(Handle::File(s)) => Some(s.clone()),
            _ => None,
        });
        self.spawn(req, reply, move |sh, c, reply| async move {
            let r: Result<(), i32> = async {
                let path = sh.path(ino)?;
                if let Some(size) = size {
                    let written = sh.writing.lock().get(&ino).copied();
                    match (written, writer) {
                        (Some(w), _) if w == size => {}
                        (_, Some(s)) if size == 0 => {
                            let (tx, rx) = tokio::sync::oneshot::channel();
                            s.send(Op::Truncate { done: tx }).map_err(|_| Errno::EIO as i32)?;
                            rx.await.map_err(|_| Errno::EIO as i32)??;
                        }
                        _ => {
                            let st = c.file_info(&path).await.map_err(|e| errno(&e))?.ok_or(Errno::ENOENT as i32)?;
                            if st.length != size {
                                if size != 0 {
                                    tracing::warn!(%path, size, "refused: truncating to a length other than 0 is not supported");
                                    return Err(Errno::EOPNOTSUPP as i32);
                                }
                                // Replace with an empty file, keeping the permission.
                                let w = c.create(&path, true, 0, 0).await.map_err(|e| errno(&e))?;
                                w.close().await.map_err(|e| errno(&e))?;
                                c.set_permission(&path, st.permission).await.map_err(|e| errno(&e))?;
                            }
                        }
                    }
                }
                if let Some(mode) = mode {
                    c.set_permission(&path, mode & 0o7777).await.map_err(|e| errno(&e))?;
                }
                if owner.is_some() || group.is_some() {
                    c.set_owner(&path, owner.as_deref(), group.as_deref()).await.map_err(|e| errno(&e))?;
                }
                if atime.is_some() || mtime.is_some() {
                    let m = mtime.map(system_time).unwrap_or(-1);
                    let a = atime.map(system_time).unwrap_or(-1);
                    c.set_times(&path, m, a).await.map_err(|e| errno(&e))?;
                    if sh.writing.lock().contains_key(&ino) {
                        let mut after = sh.times_after_close.lock();
                        let t = after.entry(ino).or_insert((-1, -1));
                        *t = (if m >= 0 { m } else { t.0 }, if a >= 0 { a } else { t.1 });
                    }
                }
                Ok(())
            }
            .await;
            match r.and(sh.attr(&c, ino).await) {
                Ok(a) => reply.attr(&TTL, &a),
                Err(e) => reply.error(e),
            }
        });
    }

    fn mkdir(&mut self, req: &Request<'_>, parent: u64, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        let path = match self.writable_child(parent, name) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        self.spawn(req, reply, move |sh, c, reply| async move {
            if let Ok(Some(_)) = c.file_info(&path).await {
                return reply.error(Errno::EEXIST as i32);
            }
            let r = c.mkdirs(&path, mode & !umask & 0o7777, false).await.map_err(|e| errno(&e));
            match r {
                Ok(()) => match sh.entry(&c, &path).await {
                    Ok(a) => reply.entry(&TTL, &a, 0),
                    Err(e) => reply.error(e),
                },
                Err(e) => reply.error(e),
            }
        });
    }

    fn unlink(&mut self, req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        self.remove(req, parent, name, false, reply)
    }

    fn rmdir(&mut self, req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        self.remove(req, parent, name, true, reply)
    }

    fn rename(
        &mut self,
        req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        _flags: u32,
        reply: ReplyEmpty,
    ) {
        if let Err(e) = self.refuse_if_read_only() {
            return reply.error(e);
        }
        let (from, to) = match (self.shared.child_path(parent, name), self.shared.child_path(newparent, newname)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return reply.error(e),
        };
        self.spawn(req, reply, move |sh, c, reply| async move {
            // POSIX rename replaces a file at the target; the namenode's rename does not.
            let r: Result<(), i32> = async {
                if let Some(dst) = c.file_info(&to).await.map_err(|e| errno(&e))? {
                    let src = c.file_info(&from).await.map_err(|e| errno(&e))?.ok_or(Errno::ENOENT as i32)?;
                    let dir = |s: &tusk_client::FileStatus| s.file_type == TuskType::Directory as i32;
                    match (dir(&src), dir(&dst)) {
                        (false, true) => return Err(Errno::EISDIR as i32),
                        (true, false) => return Err(Errno::ENOTDIR as i32),
                        (true, true) if dst.children_num > 0 => return Err(Errno::ENOTEMPTY as i32),
                        _ => {}
                    }
                    c.delete(&to, false).await.map_err(|e| errno(&e))?;
                }
                c.rename(&from, &to).await.map_err(|e| errno(&e))
            }
            .await;
            match r {
                Ok(()) => {
                    sh.inodes.lock().rename(&from, &to);
                    reply.ok()
                }
                Err(e) => reply.error(e),
            }
        });
    }

    fn open(&mut self, req: &Request<'_>, ino: u64, flags: i32, reply: ReplyOpen) {
        let (write, trunc, append) = access(flags);
        if write {
            if let Err(e) = self.refuse_if_read_only() {
                return reply.error(e);
            }
        }
        let fh = self.fh();
        let handles = Arc::clone(&self.handles);
        self.spawn(req, reply, move |sh, c, reply| async move {
            let path = match sh.path(ino) {
                Ok(p) => p,
                Err(e) => return reply.error(e),
            };
            let mode = if !write {
                handle::Mode::Read
            } else if trunc {
                handle::Mode::Truncate
            } else if append {
                handle::Mode::Append
            } else {
                handle::Mode::WriteAtEnd
            };
            match handle::start(Arc::clone(&sh), c, ino, path, mode).await {
                Ok(sender) => {
                    handles.lock().insert(fh, Handle::File(sender));
                    reply.opened(fh, 0)
                }
                Err(e) => reply.error(e),
            }
        });
    }

    fn create(
        &mut self,
        req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let path = match self.writable_child(parent, name) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        let exclusive = flags & nix::fcntl::OFlag::O_EXCL.bits() != 0;
        let fh = self.fh();
        let handles = Arc::clone(&self.handles);
        self.spawn(req, reply, move |sh, c, reply| async move {
            let r: Result<(fuser::FileAttr, UnboundedSender<Op>), i32> = async {
                let writer = c.create(&path, !exclusive, 0, 0).await.map_err(|e| errno(&e))?;
                let perm = mode & !umask & 0o7777;
                let mut attr = sh.entry(&c, &path).await?;
                if u32::from(attr.perm) != perm {
                    c.set_permission(&path, perm).await.map_err(|e| errno(&e))?;
                    attr.perm = perm as u16;
                }
                let sender = handle::start_writing(Arc::clone(&sh), c, attr.ino, path, writer);
                Ok((attr, sender))
            }
            .await;
            match r {
                Ok((attr, sender)) => {
                    handles.lock().insert(fh, Handle::File(sender));
                    reply.created(&TTL, &attr, 0, fh, 0)
                }
                Err(e) => reply.error(e),
            }
        });
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        self.file_op(fh, Op::Read { offset: offset.max(0) as u64, size, reply });
    }

    fn write(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        offset: i64,
        data: &[u8],
        _write_flags: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyWrite,
    ) {
        self.file_op(fh, Op::Write { offset: offset.max(0) as u64, data: data.to_vec(), reply });
    }

    fn flush(&mut self, _req: &Request<'_>, _ino: u64, fh: u64, _lock_owner: u64, reply: ReplyEmpty) {
        self.file_op(fh, Op::Flush { reply });
    }

    fn fsync(&mut self, _req: &Request<'_>, _ino: u64, fh: u64, _datasync: bool, reply: ReplyEmpty) {
        self.file_op(fh, Op::Fsync { reply });
    }

    fn release(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        _flags: i32,
        _lock_owner: Option<u64>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        match self.handles.lock().remove(&fh) {
            Some(Handle::File(s)) => {
                if let Err(e) = s.send(Op::Release { reply }) {
                    e.0.fail(Errno::EIO as i32);
                }
            }
            _ => reply.ok(),
        }
    }

    fn opendir(&mut self, req: &Request<'_>, ino: u64, _flags: i32, reply: ReplyOpen) {
        let fh = self.fh();
        let handles = Arc::clone(&self.handles);
        self.spawn(req, reply, move |sh, c, reply| async move {
            let path = match sh.path(ino) {
                Ok(p) => p,
                Err(e) => return reply.error(e),
            };
            match c.list_page(&path, "").await {
                Ok(page) => {
                    let entries =
                        page.entries.into_iter().map(|e| (e.name, e.file_type == TuskType::Directory as i32)).collect();
                    let listing = Listing { path, entries, remaining: page.remaining };
                    handles.lock().insert(fh, Handle::Dir(Arc::new(tokio::sync::Mutex::new(listing))));
                    reply.opened(fh, 0)
                }
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn readdir(&mut self, req: &Request<'_>, ino: u64, fh: u64, offset: i64, reply: ReplyDirectory) {
        let listing = match self.handles.lock().get(&fh) {
            Some(Handle::Dir(l)) => Arc::clone(l),
            _ => return reply.error(Errno::EBADF as i32),
        };
        self.spawn(req, reply, move |sh, c, mut reply| async move {
            let mut l = listing.lock().await;
            // Offsets: 0 ".", 1 "..", then entry i at i + 2.
            let mut at = offset.max(0) as usize;
            loop {
                if at == 0 {
                    if reply.add(ino, 1, FileType::Directory, ".") {
                        return reply.ok();
                    }
                    at = 1;
                }
                if at == 1 {
                    if reply.add(ino, 2, FileType::Directory, "..") {
                        return reply.ok();
                    }
                    at = 2;
                }
                let i = at - 2;
                if i >= l.entries.len() {
                    // The next page, if there is one.
                    if l.remaining == 0 {
                        return reply.ok();
                    }
                    let after = l.entries.last().map(|e| e.0.clone()).unwrap_or_default();
                    match c.list_page(&l.path, &after).await {
                        Ok(page) if !page.entries.is_empty() => {
                            l.remaining = page.remaining;
                            l.entries.extend(
                                page.entries.into_iter().map(|e| (e.name, e.file_type == TuskType::Directory as i32)),
                            );
                        }
                        Ok(_) => return reply.ok(),
                        Err(e) => return reply.error(errno(&e)),
                    }
                    continue;
                }
                let (name, dir) = &l.entries[i];
                let child_ino = sh.inodes.lock().peek(&child(&l.path, name)).unwrap_or(u64::MAX);
                let kind = if *dir { FileType::Directory } else { FileType::RegularFile };
                if reply.add(child_ino, (at + 1) as i64, kind, name) {
                    return reply.ok();
                }
                at += 1;
            }
        });
    }

    fn releasedir(&mut self, _req: &Request<'_>, _ino: u64, fh: u64, _flags: i32, reply: ReplyEmpty) {
        self.handles.lock().remove(&fh);
        reply.ok();
    }

    fn statfs(&mut self, req: &Request<'_>, _ino: u64, reply: ReplyStatfs) {
        self.spawn(req, reply, move |_sh, c, reply| async move {
            match c.fs_stats().await {
                Ok(s) => {
                    const BLOCK: u64 = 4096;
                    let files = s.files + s.directories;
                    reply.statfs(
                        s.capacity / BLOCK,
                        s.remaining / BLOCK,
                        s.remaining / BLOCK,
                        files + 1_000_000,
                        1_000_000,
                        BLOCK as u32,
                        255,
                        BLOCK as u32,
                    )
                }
                Err(e) => reply.error(errno(&e)),
            }
        });
    }
}

impl TuskFs {
    fn remove(&mut self, req: &Request<'_>, parent: u64, name: &OsStr, dir: bool, reply: ReplyEmpty) {
        let path = match self.writable_child(parent, name) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        self.spawn(req, reply, move |sh, c, reply| async move {
            let r: Result<(), i32> = async {
                let st = c.file_info(&path).await.map_err(|e| errno(&e))?.ok_or(Errno::ENOENT as i32)?;
                let is_dir = st.file_type == TuskType::Directory as i32;
                if dir && !is_dir {
                    return Err(Errno::ENOTDIR as i32);
                }
                if !dir && is_dir {
                    return Err(Errno::EISDIR as i32);
                }
                if dir && st.children_num > 0 {
                    return Err(Errno::ENOTEMPTY as i32);
                }
                c.delete(&path, false).await.map_err(|e| errno(&e))?;
                Ok(())
            }
            .await;
            match r {
                Ok(()) => {
                    sh.inodes.lock().unlink(&path);
                    reply.ok()
                }
                Err(e) => reply.error(e),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_become_errnos() {
        assert_eq!(errno(&ClientError::NotFound("x".into())), Errno::ENOENT as i32);
        assert_eq!(errno(&ClientError::PermissionDenied("x".into())), Errno::EACCES as i32);
        assert_eq!(errno(&ClientError::NotEmpty("x".into())), Errno::ENOTEMPTY as i32);
        assert_eq!(errno(&ClientError::Connect("x".into())), Errno::EIO as i32);
        let flags = |f: nix::fcntl::OFlag| access(f.bits());
        use nix::fcntl::OFlag;
        assert_eq!(flags(OFlag::O_RDONLY), (false, false, false));
        assert_eq!(flags(OFlag::O_WRONLY | OFlag::O_TRUNC), (true, true, false));
        assert_eq!(flags(OFlag::O_RDWR | OFlag::O_APPEND), (true, false, true));
        assert_eq!(crate::inodes::ROOT, fuser::FUSE_ROOT_ID);
    }
}
