//! The namesystem: the namespace behind a read-write lock, the edit log, safe mode and the
//! name directories, with one method per client operation.
//!
//! A mutation takes the write lock, checks the request (existence, permissions, limits),
//! builds the edit ops, applies and logs them, releases the lock and only then waits for the
//! edit log to be durable. Reads take the read lock and never wait for the disk.

use crate::blocks::{BlockMap, BlockStats, Command, Reported};
use crate::checkpoint::ImageMark;
use crate::error::{NnError, NnResult};
use crate::inode::{InodeIdx, Kind};
use crate::journal::{Journal, JournalStats};
use crate::namespace::{Namespace, Summary};
use crate::permission::{Access, Caller, Need};
use crate::safe_mode::SafeMode;
use crate::storage::{NameStorage, StorageError};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tusk_common::path::FsPath;
use tusk_proto::client::{DatanodeInfo, ExtendedBlock, FileStatus, FileType, LocatedBlock};
use tusk_proto::storage::{
    edit_op::Op, EditOp, OpAdd, OpClose, OpDelete, OpMkdir, OpRename, OpSetOwner, OpSetPermission, OpSetReplication,
    OpSetTimes, OpUpdateBlocks,
};

/// Largest replication a file may ask for (HDFS: dfs.replication.max).
pub const MAX_REPLICATION: u32 = 512;
/// Smallest block size (HDFS: dfs.namenode.fs-limits.min-block-size).
pub const MIN_BLOCK_SIZE: u64 = 1 << 20;

#[derive(Debug, Clone)]
pub struct NamesystemConfig {
    pub name_dirs: Vec<PathBuf>,
    /// The user running the namenode: the superuser.
    pub superuser: String,
    pub supergroup: String,
    pub safemode_threshold: f64,
    pub safemode_extension: Duration,
    pub default_replication: u32,
    pub default_block_size: u64,
    pub ls_limit: usize,
    pub max_directory_items: usize,
    /// Start a new edit segment after this many transactions.
    pub autoroll_txns: u64,
    /// Images kept by -saveNamespace and checkpoints.
    pub retained_images: usize,
    /// Expected time between checkpoints; a warning is logged after twice this without one.
    pub checkpoint_period: Duration,
    /// A datanode silent this long is dead.
    pub heartbeat_expiry: Duration,
    /// Replicas every block needs before its file can be closed.
    pub min_replication: u32,
    /// Racks of the datanodes.
    pub topology: crate::topology::Topology,
    /// The exclude file: datanodes listed there are decommissioned.
    pub hosts_exclude: Option<PathBuf>,
    /// A lease holder silent this long loses its files to another writer (HDFS: 60 s).
    pub lease_soft_limit: Duration,
    /// A lease holder silent this long has its files recovered and closed (HDFS: 1 h).
    pub lease_hard_limit: Duration,
}

impl NamesystemConfig {
    /// `ck` supplies retention and the checkpoint period (the `[checkpoint]` section). Fails
    /// on a bad rack table or topology file.
    pub fn from_config(
        c: &tusk_common::config::NamenodeConfig,
        ck: &tusk_common::config::CheckpointConfig,
        default_dir: PathBuf,
    ) -> Result<Self, String> {
        let topology_file = (!c.topology_file.as_os_str().is_empty()).then_some(c.topology_file.as_path());
        let topology = crate::topology::Topology::load(&c.racks, topology_file)
            .map_err(|e| format!("bad rack configuration: {e}"))?;
        Ok(NamesystemConfig {
            name_dirs: if c.name_dirs.is_empty() { vec![default_dir] } else { c.name_dirs.clone() },
            superuser: tusk_common::user::os_user_name(),
            supergroup: c.superuser_group.clone(),
            safemode_threshold: c.safemode_threshold_pct,
            safemode_extension: Duration::from_millis(c.safemode_extension_ms),
            default_replication: c.default_replication,
            default_block_size: c.default_block_size,
            ls_limit: c.ls_limit.max(1),
            max_directory_items: c.max_directory_items,
            autoroll_txns: 1_000_000,
            retained_images: ck.retained_images.max(1),
            checkpoint_period: Duration::from_secs(ck.period),
            heartbeat_expiry: Duration::from_millis(c.heartbeat_expiry_ms),
            min_replication: c.min_replication.max(1),
            topology,
            hosts_exclude: (!c.hosts_exclude.as_os_str().is_empty()).then(|| c.hosts_exclude.clone()),
            lease_soft_limit: Duration::from_millis(c.lease_soft_limit_ms),
            lease_hard_limit: Duration::from_millis(c.lease_hard_limit_ms),
        })
    }
}

/// How the last start went (for logs and benchmarks).
#[derive(Debug, Clone, Copy)]
pub struct StartupReport {
    pub image_txid: u64,
    pub edits_replayed: u64,
    pub last_txid: u64,
    pub elapsed: Duration,
}

pub struct Listing {
    pub dir: FileStatus,
    pub entries: Vec<FileStatus>,
    pub remaining: u64,
}

pub struct Namesystem {
    pub(crate) ns: RwLock<Namespace>,
    pub(crate) journal: Journal,
    pub(crate) storage: Mutex<NameStorage>,
    /// The newest image: the last checkpoint (or -saveNamespace).
    pub(crate) image: Mutex<ImageMark>,
    /// Set while a checkpoint upload is being received.
    pub(crate) upload_busy: Arc<std::sync::atomic::AtomicBool>,
    /// When the "no checkpoint for long" warning was last logged.
    pub(crate) checkpoint_warned: Mutex<Option<Instant>>,
    /// Datanodes to decommission, from the exclude file.
    excludes: Mutex<Vec<String>>,
    /// Lease holders (clients writing files): when they last showed they are alive and how
    /// many files they have open (HDFS's LeaseManager; see `lease.rs`). In memory: at start
    /// every holder of a file under construction gets a fresh lease.
    pub(crate) leases: Mutex<HashMap<String, crate::lease::Lease>>,
    /// Lease recoveries in progress, by block id.
    pub(crate) recovering: Mutex<HashMap<u64, crate::lease::Recovery>>,
    pub(crate) opened: Instant,
    safe_mode: Mutex<SafeMode>,
    /// Block map and datanode registry; taken after `ns` when both are needed.
    pub(crate) blocks: Mutex<BlockMap>,
    pub(crate) conf: NamesystemConfig,
    groups: Mutex<GroupCache>,
    pub startup: StartupReport,
    pub start_time_ms: i64,
    /// Woken by every report of received replicas (`complete` waits on it).
    replicas_received: tokio::sync::Notify,
}

/// How long `complete` waits for the reports of a file's last replicas before answering
/// "not yet" (the client then asks again).
const COMPLETE_WAIT: Duration = Duration::from_secs(1);

/// User name -> (when looked up, groups).
type GroupCache = HashMap<String, (Instant, Caller)>;

const GROUP_CACHE_TTL: Duration = Duration::from_secs(300);

/// Reads the exclude file (`namenode.hosts_exclude`): one host, IP or `host:port` a line,
/// `#` comments. No file configured: nobody is excluded.
fn read_excludes(path: Option<&std::path::Path>) -> Result<Vec<String>, String> {
    let Some(path) = path else { return Ok(Vec::new()) };
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read the exclude file {}: {e}", path.display()))?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

pub(crate) fn op(o: Op) -> EditOp {
    EditOp { op: Some(o) }
}

impl Namesystem {
    /// Opens (formatting empty directories), loads, and starts a new edit segment.
    pub fn open(conf: NamesystemConfig) -> Result<Namesystem, StorageError> {
        let t0 = Instant::now();
        let (storage, fill) = NameStorage::open(&conf.name_dirs, &conf.superuser, &conf.supergroup)?;
        let loaded = storage.load()?;
        let mut image = ImageMark { txid: loaded.image_txid, written_ms: tusk_common::now_ms() };
        if loaded.needs_save || fill {
            tracing::info!(txid = loaded.last_txid, "name directories disagree; writing a fresh image to all of them");
            storage.save_image(&loaded.namespace, loaded.last_txid)?;
            image.txid = loaded.last_txid;
        } else if let Some(p) = storage.find(&crate::fsimage::image_name(image.txid)) {
            // The last checkpoint happened when its image was written.
            if let Ok(t) = std::fs::metadata(&p).and_then(|m| m.modified()) {
                if let Ok(d) = t.duration_since(std::time::UNIX_EPOCH) {
                    image.written_ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
                }
            }
        }
        let excludes = read_excludes(conf.hosts_exclude.as_deref()).map_err(StorageError)?;
        let journal = Journal::open(&storage.current_dirs(), loaded.last_txid + 1, conf.autoroll_txns)
            .map_err(|e| StorageError(format!("cannot start the edit log: {e}")))?;
        let counts = loaded.namespace.counts();
        // Sized for every block up front; no replication queue until start-up safe mode ends.
        let mut blocks = BlockMap::for_startup(usize::try_from(counts.blocks).unwrap_or(0));
        let mut leases: HashMap<String, crate::lease::Lease> = HashMap::new();
        let now = Instant::now();
        loaded.namespace.walk(crate::inode::ROOT, |_, ino| {
            if let Some(f) = ino.file() {
                if let Some(holder) = f.holder() {
                    leases
                        .entry(holder.to_owned())
                        .or_insert(crate::lease::Lease { renewed: now, open_files: 0 })
                        .open_files += 1;
                }
                let n = f.blocks.len();
                for (i, b) in f.blocks.iter().enumerate() {
                    let complete = f.under_construction.is_none() || i + 1 < n;
                    blocks.add_block(b.id, b.genstamp, b.len, f.replication, complete);
                }
            }
        });
        let safe_mode =
            SafeMode::starting(counts.blocks, conf.safemode_threshold, conf.safemode_extension, Instant::now());
        if !safe_mode.in_startup() {
            // No blocks: start-up safe mode is already over.
            blocks.init_queues();
        }
        let startup = StartupReport {
            image_txid: loaded.image_txid,
            edits_replayed: loaded.edits_replayed,
            last_txid: loaded.last_txid,
            elapsed: t0.elapsed(),
        };
        tracing::info!(
            cluster_id = %storage.cluster_id,
            image_txid = startup.image_txid,
            edits_replayed = startup.edits_replayed,
            files = counts.files,
            dirs = counts.dirs,
            elapsed_ms = startup.elapsed.as_millis() as u64,
            "namespace loaded"
        );
        Ok(Namesystem {
            ns: RwLock::new(loaded.namespace),
            journal,
            storage: Mutex::new(storage),
            image: Mutex::new(image),
            upload_busy: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            checkpoint_warned: Mutex::new(None),
            excludes: Mutex::new(excludes),
            leases: Mutex::new(leases),
            recovering: Mutex::new(HashMap::new()),
            opened: Instant::now(),
            safe_mode: Mutex::new(safe_mode),
            blocks: Mutex::new(blocks),
            conf,
            groups: Mutex::new(HashMap::new()),
            startup,
            start_time_ms: tusk_common::now_ms(),
            replicas_received: tokio::sync::Notify::new(),
        })
    }

    pub fn cluster_id(&self) -> String {
        self.storage.lock().cluster_id.clone()
    }
    pub fn superuser(&self) -> &str {
        &self.conf.superuser
    }
    pub fn journal_stats(&self) -> JournalStats {
        self.journal.stats()
    }
    pub fn last_txid(&self) -> u64 {
        self.journal.last_written_txid()
    }
    /// The newest image (the last checkpoint or -saveNamespace): its txid and when it was
    /// written (ms since the epoch).
    pub fn last_checkpoint(&self) -> (u64, i64) {
        let m = self.image.lock();
        (m.txid, m.written_ms)
    }
    pub fn counts(&self) -> crate::namespace::Counts {
        self.ns.read().counts()
    }

    /// Stops the edit log after flushing it.
    pub fn close(&self) {
        self.journal.close();
    }

    /// Who `user` is, with groups from this host (cached for five minutes).
    pub fn caller(&self, user: &str) -> Caller {
        let mut cache = self.groups.lock();
        match cache.get(user) {
            Some((at, c)) if at.elapsed() < GROUP_CACHE_TTL => c.clone(),
            _ => {
                let groups = Arc::new(tusk_common::user::groups_of(user));
                let superuser = user == self.conf.superuser || groups.contains(&self.conf.supergroup);
                let c = Caller { user: user.into(), groups, superuser };
                cache.insert(user.to_owned(), (Instant::now(), c.clone()));
                c
            }
        }
    }

    pub(crate) fn parse(path: &str) -> NnResult<FsPath> {
        Ok(FsPath::parse(path)?)
    }

    pub(crate) fn check_safe_mode(&self, what: &str, path: &str) -> NnResult<()> {
        let mut sm = self.safe_mode.lock();
        sm.check(Instant::now());
        if sm.is_on() {
            return Err(NnError::SafeMode(format!("Cannot {what} {path}. Name node is in safe mode.\n{}", sm.tip())));
        }
        Ok(())
    }

    /// Runs `plan` under the write lock; it checks the request and returns edit ops that are
    /// then applied and logged in order. The caller is answered once they are durable.
    pub(crate) async fn mutate<T>(&self, plan: impl FnOnce(&Namespace) -> NnResult<(Vec<EditOp>, T)>) -> NnResult<T> {
        let last = {
            let mut ns = self.ns.write();
            let (ops, value) = plan(&ns)?;
            if !ops.is_empty() {
                // Never let memory run ahead of a log that cannot record the change.
                self.journal.check_writable().map_err(NnError::Unavailable)?;
            }
            let mut last = None;
            for o in &ops {
                ns.apply(o)?;
                last = Some(self.journal.append(o).map_err(NnError::Unavailable)?);
            }
            let removed = ns.take_removed_blocks();
            if !removed.is_empty() {
                let mut blocks = self.blocks.lock();
                for id in removed {
                    blocks.remove_block(id);
                }
            }
            (last, value)
        };
        if let Some(txid) = last.0 {
            self.journal.wait_synced(txid).await.map_err(NnError::Unavailable)?;
        }
        Ok(last.1)
    }

    pub(crate) fn status(ns: &Namespace, i: InodeIdx) -> FileStatus {
        let ino = ns.inode(i);
        let mut st = FileStatus {
            name: ino.name.as_str().to_owned(),
            modification_time_ms: ino.mtime_ms,
            access_time_ms: ino.atime_ms,
            permission: u32::from(ino.perm),
            owner: ns.owner_name(i).to_owned(),
            group: ns.group_name(i).to_owned(),
            file_id: ino.id,
            ..Default::default()
        };
        match &ino.kind {
            Kind::Dir(children) => {
                st.file_type = FileType::Directory as i32;
                st.children_num = children.len() as u64;
            }
            Kind::File(f) => {
                st.file_type = FileType::File as i32;
                st.length = f.length();
                st.replication = u32::from(f.replication);
                st.block_size = f.block_size;
                st.under_construction = f.under_construction.is_some();
            }
        }
        st
    }

    pub(crate) fn not_found(path: &FsPath) -> NnError {
        NnError::FileNotFound(path.to_string())
    }

    // ---- reads ----

    pub fn file_info(&self, caller: &Caller, path: &str) -> NnResult<Option<FileStatus>> {
        let path = Self::parse(path)?;
        let ns = self.ns.read();
        // The same checks as `caller.check(.., Need::default())`, without a `Resolved`.
        let last = ns.lookup_through(&path, |dir| caller.check_traverse(&ns, dir))?;
        Ok(last.map(|i| Self::status(&ns, i)))
    }

    pub fn listing(&self, caller: &Caller, path: &str, start_after: &str) -> NnResult<Listing> {
        let path = Self::parse(path)?;
        let ns = self.ns.read();
        let res = ns.resolve(&path);
        let i = res.last().ok_or_else(|| Self::not_found(&path))?;
        let is_dir = ns.inode(i).is_dir();
        caller.check(&ns, &res, Need { target: is_dir.then_some(Access::READ_EXECUTE), ..Default::default() })?;
        let dir = Self::status(&ns, i);
        if !is_dir {
            return Ok(Listing { entries: vec![dir.clone()], dir, remaining: 0 });
        }
        let children = ns.inode(i).children();
        let start = if start_after.is_empty() {
            0
        } else {
            match ns.child_pos(i, start_after) {
                Ok(pos) => pos + 1,
                Err(pos) => pos,
            }
        };
        let end = (start + self.conf.ls_limit).min(children.len());
        let entries = children[start..end].iter().map(|&c| Self::status(&ns, c)).collect();
        Ok(Listing { dir, entries, remaining: (children.len() - end) as u64 })
    }

    pub fn content_summary(&self, caller: &Caller, path: &str) -> NnResult<Summary> {
        let path = Self::parse(path)?;
        let ns = self.ns.read();
        let res = ns.resolve(&path);
        let i = res.last().ok_or_else(|| Self::not_found(&path))?;
        caller.check(&ns, &res, Need { subtree: Some(Access::READ_EXECUTE), ..Default::default() })?;
        Ok(ns.summary(i))
    }

    // ---- mutations ----

    /// Ops creating every missing directory of `path` (the last one with `perm`; implicit
    /// parents also get u+wx, as HDFS does).
    #[allow(clippy::too_many_arguments)]
    fn mkdir_ops(
        &self,
        ns: &Namespace,
        caller: &Caller,
        path: &FsPath,
        perm: u32,
        create_parent: bool,
        include_last: bool,
        time_ms: i64,
    ) -> NnResult<Vec<EditOp>> {
        let res = ns.resolve(path);
        if let Some(at) = res.file_in_middle {
            let file: Vec<&str> = path.components().take(at).collect();
            return Err(NnError::ParentNotDirectory(format!("/{}", file.join("/"))));
        }
        let comps: Vec<&str> = path.components().collect();
        let n = comps.len();
        let first_missing = res.inodes.iter().position(Option::is_none).unwrap_or(n + 1);
        let last_needed = if include_last { n } else { n - 1 };
        if first_missing > last_needed {
            return Ok(Vec::new());
        }
        // A missing component before the last one is a missing parent, whether the last is
        // a directory (mkdirs) or a file (create, include_last false): comparing with
        // `last_needed` let create make one missing parent level without create_parent.
        if first_missing < n && !create_parent {
            let parent = path.parent().unwrap_or_else(FsPath::root);
            return Err(NnError::FileNotFound(format!("Parent directory doesn't exist: {parent}")));
        }
        caller.check(ns, &res, Need { ancestor: Some(Access::WRITE), ..Default::default() })?;
        let anc = res.inodes[first_missing - 1].unwrap_or(crate::inode::ROOT);
        if ns.inode(anc).children().len() >= self.conf.max_directory_items {
            return Err(NnError::LimitExceeded(format!(
                "The directory item limit of {} is exceeded: limit={} items={}",
                ns.path_of(anc),
                self.conf.max_directory_items,
                ns.inode(anc).children().len()
            )));
        }
        let group = ns.group_name(anc).to_owned();
        let mut ops = Vec::new();
        for k in first_missing..=last_needed {
            let p = format!("/{}", comps[..k].join("/"));
            let mode = if k == n && include_last { perm } else { perm | 0o300 };
            ops.push(op(Op::Mkdir(OpMkdir {
                path: p,
                permission: mode & 0o1777,
                owner: caller.user.to_string(),
                group: group.clone(),
                time_ms,
            })));
        }
        Ok(ops)
    }

    pub async fn mkdirs(&self, caller: &Caller, path: &str, perm: u32, create_parent: bool) -> NnResult<()> {
        let path = Self::parse(path)?;
        self.mutate(|ns| {
            self.check_safe_mode("create directory", path.as_str())?;
            if let Some(i) = ns.lookup(&path) {
                if ns.inode(i).is_dir() {
                    return Ok((Vec::new(), ()));
                }
                return Err(NnError::AlreadyExists(format!("Path is not a directory: {path}")));
            }
            let ops = self.mkdir_ops(ns, caller, &path, perm, create_parent, true, tusk_common::now_ms())?;
            Ok((ops, ()))
        })
        .await
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn create(
        &self,
        caller: &Caller,
        path: &str,
        perm: u32,
        overwrite: bool,
        create_parent: bool,
        replication: u32,
        block_size: u64,
        client_name: &str,
    ) -> NnResult<FileStatus> {
        let path = Self::parse(path)?;
        if path.is_root() {
            return Err(NnError::IsDirectory("/".into()));
        }
        let replication = if replication == 0 { self.conf.default_replication } else { replication };
        if replication > MAX_REPLICATION {
            return Err(NnError::InvalidArgument(format!(
                "Requested replication factor of {replication} exceeds maximum of {MAX_REPLICATION} for {path}"
            )));
        }
        let block_size = if block_size == 0 { self.conf.default_block_size } else { block_size };
        if block_size < MIN_BLOCK_SIZE || block_size % 512 != 0 {
            return Err(NnError::InvalidArgument(format!(
                "Specified block size {block_size} is invalid: it must be a multiple of 512 and at least {MIN_BLOCK_SIZE}"
            )));
        }
        if client_name.is_empty() {
            return Err(NnError::InvalidArgument("create needs a client name".into()));
        }
        self.renew_lease(client_name);
        self.mutate(|ns| {
            self.check_safe_mode("create file", path.as_str())?;
            let res = ns.resolve(&path);
            let now = tusk_common::now_ms();
            if let Some(i) = res.last() {
                if ns.inode(i).is_dir() {
                    return Err(NnError::IsDirectory(format!("{path} already exists as a directory")));
                }
                if !overwrite {
                    return Err(NnError::AlreadyExists(format!("{path} for client {client_name} already exists")));
                }
                // One writer per file: another client's file is taken over only once its
                // holder has been silent past the soft limit.
                if let Some(holder) = ns.inode(i).file().and_then(|f| f.holder()) {
                    if holder != client_name {
                        if !self.lease_soft_expired(holder) {
                            return Err(NnError::LeaseConflict(format!(
                                "Failed to CREATE_FILE {path} for {client_name} because this file lease is currently \
                                 owned by {holder}"
                            )));
                        }
                        tracing::info!(%path, holder, new_writer = client_name, "lease past its soft limit; file overwritten");
                    }
                }
                caller.check(
                    ns,
                    &res,
                    Need { parent: Some(Access::WRITE), target: Some(Access::WRITE), ..Default::default() },
                )?;
                caller.check_sticky(ns, &res)?;
            }
            let mut ops = self.mkdir_ops(ns, caller, &path, 0o755, create_parent, false, now)?;
            if ops.is_empty() {
                caller.check(ns, &res, Need { ancestor: Some(Access::WRITE), ..Default::default() })?;
                let parent = res.parent().unwrap_or(crate::inode::ROOT);
                if res.last().is_none() && ns.inode(parent).children().len() >= self.conf.max_directory_items {
                    return Err(NnError::LimitExceeded(format!(
                        "The directory item limit of {} is exceeded: limit={}",
                        ns.path_of(parent),
                        self.conf.max_directory_items
                    )));
                }
            }
            let group = match res.parent() {
                Some(p) => ns.group_name(p).to_owned(),
                None => ns.group_name(res.last_existing_ancestor().1).to_owned(),
            };
            ops.push(op(Op::Add(OpAdd {
                path: path.to_string(),
                permission: perm & 0o1777,
                owner: caller.user.to_string(),
                group,
                time_ms: now,
                replication,
                block_size,
                client_name: client_name.to_owned(),
                overwrite,
            })));
            Ok((ops, ()))
        })
        .await?;
        self.lease_opened(client_name);
        let ns = self.ns.read();
        let i = ns.lookup(&path).ok_or_else(|| Self::not_found(&path))?;
        Ok(Self::status(&ns, i))
    }

    /// Closes a file once every block has `min_replication` reported replicas. The client
    /// usually asks as soon as its pipeline acknowledged the last packet, a moment before the
    /// datanodes' reports of the finalized replicas arrive; rather than answer "not yet" and
    /// have it sleep and ask again, this waits up to [`COMPLETE_WAIT`] for those reports.
    /// `Ok(false)` still means "not yet, ask again".
    pub async fn complete(
        &self,
        caller: &Caller,
        path: &str,
        client_name: &str,
        last: Option<ExtendedBlock>,
    ) -> NnResult<bool> {
        let deadline = tokio::time::Instant::now() + COMPLETE_WAIT;
        loop {
            // Registered before looking, so a report arriving in between is not missed.
            let reported = self.replicas_received.notified();
            tokio::pin!(reported);
            reported.as_mut().enable();
            if self.complete_once(caller, path, client_name, last).await? {
                return Ok(true);
            }
            if tokio::time::timeout_at(deadline, reported).await.is_err() {
                return Ok(false);
            }
        }
    }

    async fn complete_once(
        &self,
        _caller: &Caller,
        path: &str,
        client_name: &str,
        last: Option<ExtendedBlock>,
    ) -> NnResult<bool> {
        let path = Self::parse(path)?;
        self.renew_lease(client_name);
        let closed = self
            .mutate(|ns| {
                self.check_safe_mode("complete file", path.as_str())?;
                let i = ns.lookup(&path).ok_or_else(|| Self::not_found(&path))?;
                let f = ns.inode(i).file().ok_or_else(|| NnError::IsDirectory(path.to_string()))?;
                match f.holder() {
                    None => return Ok((Vec::new(), None)),
                    Some(holder) if holder != client_name => {
                        return Err(NnError::LeaseConflict(format!(
                            "No lease on {path}: it is being written by {holder}, not by {client_name}"
                        )))
                    }
                    Some(_) => {}
                }
                let mut list = f.blocks.to_vec();
                match (last, list.last_mut()) {
                    (Some(l), Some(b)) if l.block_id == b.id => b.len = l.num_bytes,
                    (None, None) => {}
                    (l, b) => {
                        return Err(NnError::InvalidArgument(format!(
                            "complete {path}: last block {:?} is not the file's last block {:?}",
                            l.map(|l| l.block_id),
                            b.map(|b| b.id)
                        )))
                    }
                }
                let mut blocks = self.blocks.lock();
                let min = self.conf.min_replication as usize;
                if list.iter().any(|b| blocks.live_replicas(b.id) < min) {
                    return Ok((Vec::new(), Some(false)));
                }
                for b in &list {
                    blocks.complete_block(b.id, b.len);
                }
                drop(blocks);
                let pb = list
                    .iter()
                    .map(|b| tusk_proto::storage::Block {
                        block_id: b.id,
                        generation_stamp: b.genstamp,
                        num_bytes: b.len,
                    })
                    .collect();
                let close = OpClose { path: path.to_string(), time_ms: tusk_common::now_ms(), blocks: pb };
                Ok((vec![op(Op::Close(close))], Some(true)))
            })
            .await?;
        if closed == Some(true) {
            self.lease_closed(client_name);
        }
        Ok(closed.unwrap_or(true))
    }

    pub async fn rename(&self, caller: &Caller, src: &str, dst: &str) -> NnResult<()> {
        let src = Self::parse(src)?;
        let dst = Self::parse(dst)?;
        self.mutate(|ns| {
            self.check_safe_mode("rename", src.as_str())?;
            let sres = ns.resolve(&src);
            if sres.last().is_none() {
                return Err(NnError::FileNotFound(format!("rename source {src} is not found.")));
            }
            if src.is_root() || dst.is_root() {
                return Err(NnError::InvalidArgument("The root directory cannot be renamed, nor renamed onto".into()));
            }
            if src == dst {
                return Err(NnError::AlreadyExists(format!("The source {src} and destination {dst} are the same")));
            }
            if dst.is_within(&src) {
                return Err(NnError::InvalidArgument(format!(
                    "Rename destination {dst} is a directory or file under source {src}"
                )));
            }
            let dres = ns.resolve(&dst);
            if dres.last().is_some() {
                return Err(NnError::AlreadyExists(format!("rename destination {dst} already exists")));
            }
            match dres.parent() {
                None => {
                    return Err(NnError::FileNotFound(format!(
                        "rename destination parent {} not found.",
                        dst.parent().unwrap_or_else(FsPath::root)
                    )))
                }
                Some(p) if !ns.inode(p).is_dir() => {
                    return Err(NnError::ParentNotDirectory(format!(
                        "rename destination parent {} is a file.",
                        dst.parent().unwrap_or_else(FsPath::root)
                    )))
                }
                Some(p) if ns.inode(p).children().len() >= self.conf.max_directory_items => {
                    return Err(NnError::LimitExceeded(format!(
                        "The directory item limit of {} is exceeded",
                        ns.path_of(p)
                    )))
                }
                Some(_) => {}
            }
            caller.check(ns, &sres, Need { parent: Some(Access::WRITE), ..Default::default() })?;
            caller.check_sticky(ns, &sres)?;
            caller.check(ns, &dres, Need { parent: Some(Access::WRITE), ..Default::default() })?;
            Ok((
                vec![op(Op::Rename(OpRename {
                    src: src.to_string(),
                    dst: dst.to_string(),
                    time_ms: tusk_common::now_ms(),
                }))],
                (),
            ))
        })
        .await
    }

    pub async fn delete(&self, caller: &Caller, path: &str, recursive: bool) -> NnResult<bool> {
        let path = Self::parse(path)?;
        self.mutate(|ns| {
            self.check_safe_mode("delete", path.as_str())?;
            let res = ns.resolve(&path);
            let Some(i) = res.last() else { return Ok((Vec::new(), false)) };
            if path.is_root() {
                return Err(NnError::InvalidArgument("Cannot delete the root directory /".into()));
            }
            let non_empty = !ns.inode(i).children().is_empty();
            if non_empty && !recursive {
                return Err(NnError::NotEmpty(path.to_string()));
            }
            caller.check(
                ns,
                &res,
                Need { parent: Some(Access::WRITE), subtree: non_empty.then_some(Access::ALL), ..Default::default() },
            )?;
            caller.check_sticky(ns, &res)?;
            Ok((vec![op(Op::Delete(OpDelete { path: path.to_string(), time_ms: tusk_common::now_ms() }))], true))
        })
        .await
    }

    pub async fn set_permission(&self, caller: &Caller, path: &str, perm: u32) -> NnResult<()> {
        let path = Self::parse(path)?;
        self.mutate(|ns| {
            self.check_safe_mode("set permission for", path.as_str())?;
            let res = ns.resolve(&path);
            res.last().ok_or_else(|| Self::not_found(&path))?;
            caller.check(ns, &res, Need { owner: true, ..Default::default() })?;
            Ok((vec![op(Op::SetPermission(OpSetPermission { path: path.to_string(), permission: perm & 0o1777 }))], ()))
        })
        .await
    }

    pub async fn set_owner(&self, caller: &Caller, path: &str, owner: &str, group: &str) -> NnResult<()> {
        let path = Self::parse(path)?;
        for name in [owner, group] {
            if !name.is_empty() && !tusk_common::user::valid_principal(name) {
                return Err(NnError::InvalidArgument(format!("invalid user or group name {name:?}")));
            }
        }
        if owner.is_empty() && group.is_empty() {
            return Err(NnError::InvalidArgument("User and group cannot both be empty".into()));
        }
        self.mutate(|ns| {
            self.check_safe_mode("set owner for", path.as_str())?;
            let res = ns.resolve(&path);
            let i = res.last().ok_or_else(|| Self::not_found(&path))?;
            caller.check(ns, &res, Need { owner: true, ..Default::default() })?;
            if !caller.superuser {
                if !owner.is_empty() && owner != ns.owner_name(i) {
                    return Err(NnError::PermissionDenied(format!(
                        "User {} is not a super user (non-super user cannot change owner).",
                        caller.user
                    )));
                }
                if !group.is_empty() && !caller.groups.iter().any(|g| g == group) {
                    return Err(NnError::PermissionDenied(format!("User {} does not belong to {group}", caller.user)));
                }
            }
            Ok((
                vec![op(Op::SetOwner(OpSetOwner {
                    path: path.to_string(),
                    owner: owner.to_owned(),
                    group: group.to_owned(),
                }))],
                (),
            ))
        })
        .await
    }

    pub async fn set_times(&self, caller: &Caller, path: &str, mtime_ms: i64, atime_ms: i64) -> NnResult<()> {
        let path = Self::parse(path)?;
        self.mutate(|ns| {
            self.check_safe_mode("set times", path.as_str())?;
            let res = ns.resolve(&path);
            res.last().ok_or_else(|| Self::not_found(&path))?;
            caller.check(ns, &res, Need { target: Some(Access::WRITE), ..Default::default() })?;
            Ok((
                vec![op(Op::SetTimes(OpSetTimes {
                    path: path.to_string(),
                    modification_time_ms: mtime_ms,
                    access_time_ms: atime_ms,
                }))],
                (),
            ))
        })
        .await
    }

    pub async fn set_replication(&self, caller: &Caller, path: &str, replication: u32) -> NnResult<bool> {
        let path = Self::parse(path)?;
        if replication == 0 || replication > MAX_REPLICATION {
            return Err(NnError::InvalidArgument(format!(
                "replication {replication} is out of range 1..{MAX_REPLICATION}"
            )));
        }
        self.mutate(|ns| {
            self.check_safe_mode("set replication for", path.as_str())?;
            let res = ns.resolve(&path);
            let i = res.last().ok_or_else(|| Self::not_found(&path))?;
            if ns.inode(i).is_dir() {
                return Ok((Vec::new(), false));
            }
            caller.check(ns, &res, Need { target: Some(Access::WRITE), ..Default::default() })?;
            if let Some(f) = ns.inode(i).file() {
                let mut blocks = self.blocks.lock();
                for b in &f.blocks {
                    blocks.set_expected(b.id, replication as u16);
                }
            }
            Ok((vec![op(Op::SetReplication(OpSetReplication { path: path.to_string(), replication }))], true))
        })
        .await
    }

    // ---- administration ----

    pub(crate) fn require_superuser(&self, caller: &Caller, what: &str) -> NnResult<()> {
        if caller.superuser {
            Ok(())
        } else {
            Err(NnError::PermissionDenied(format!(
                "Access denied for user {}. Superuser privilege is required to {what}",
                caller.user
            )))
        }
    }

    /// get / enter / leave; returns whether safe mode is on afterwards.
    pub fn safe_mode(&self, caller: &Caller, action: SafeModeAction) -> NnResult<(bool, String)> {
        let mut sm = self.safe_mode.lock();
        match action {
            SafeModeAction::Get => {}
            SafeModeAction::Enter => {
                self.require_superuser(caller, "enter safe mode")?;
                sm.enter();
                tracing::info!(user = %caller.user, "safe mode entered by an administrator");
            }
            SafeModeAction::Leave => {
                self.require_superuser(caller, "leave safe mode")?;
                sm.leave();
                tracing::info!(user = %caller.user, "safe mode left by an administrator");
            }
        }
        sm.check(Instant::now());
        let answer = (sm.is_on(), sm.tip());
        let startup_over = !sm.in_startup();
        // The block lock is taken before the safe-mode one, never after.
        drop(sm);
        if startup_over {
            self.blocks.lock().init_queues();
        }
        Ok(answer)
    }

    /// Writes a new fsimage of the current namespace to every name directory and removes
    /// what retention no longer needs. Only in safe mode (no mutation can run meanwhile).
    /// Blocking: call it from a blocking thread.
    pub fn save_namespace(&self, caller: &Caller) -> NnResult<u64> {
        self.require_superuser(caller, "save the namespace")?;
        if !self.safe_mode.lock().is_on() {
            return Err(NnError::SafeMode("Safe mode should be turned ON in order to create namespace image.".into()));
        }
        let ns = self.ns.read();
        let txid = self.journal.roll().map_err(NnError::Unavailable)?;
        let storage = self.storage.lock();
        storage.save_image(&ns, txid).map_err(|e| NnError::Unavailable(e.to_string()))?;
        *self.image.lock() = ImageMark { txid, written_ms: tusk_common::now_ms() };
        storage.purge(self.conf.retained_images).map_err(|e| NnError::Unavailable(e.to_string()))?;
        tracing::info!(txid, "namespace saved");
        Ok(txid)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SafeModeAction {
    Get,
    Enter,
    Leave,
}

/// A datanode's registration, checked at the RPC edge.
pub struct Registration {
    pub uuid: String,
    pub cluster_id: String,
    pub hostname: String,
    pub ip: String,
    pub xfer_port: u32,
    pub http_port: u32,
    pub ipc_port: u32,
}

/// Cluster-wide figures for `dfsadmin -report` and `-df`.
pub struct ClusterStats {
    pub capacity: u64,
    pub used: u64,
    pub remaining: u64,
    pub live: u32,
    pub dead: u32,
    pub blocks: BlockStats,
}

impl Namesystem {
    /// Feeds the block counts to safe mode; when start-up safe mode is over, builds the
    /// replication queues (once).
    fn refresh_safe_mode(&self, blocks: &mut BlockMap) {
        let (total, safe) = blocks.safe_counts();
        let mut sm = self.safe_mode.lock();
        let was_on = sm.is_on();
        sm.set_blocks(total, safe, Instant::now());
        if was_on && !sm.is_on() {
            tracing::info!(blocks = total, "enough replicas reported: safe mode is off");
        }
        let startup_over = !sm.in_startup();
        drop(sm);
        if startup_over {
            blocks.init_queues();
        }
    }

    /// Allocates the next block of a file being written and picks its pipeline.
    pub async fn add_block(
        &self,
        caller: &Caller,
        path: &str,
        client_name: &str,
        previous: Option<ExtendedBlock>,
        excluded: &[String],
        writer_ip: Option<&str>,
    ) -> NnResult<LocatedBlock> {
        let path = Self::parse(path)?;
        self.renew_lease(client_name);
        self.mutate(|ns| {
            self.check_safe_mode("add block to", path.as_str())?;
            let res = ns.resolve(&path);
            let i = res.last().ok_or_else(|| Self::not_found(&path))?;
            let f = ns.inode(i).file().ok_or_else(|| NnError::IsDirectory(path.to_string()))?;
            if f.holder() != Some(client_name) {
                return Err(NnError::LeaseConflict(format!("No lease on {path}: File is not open for writing by {client_name}")));
            }
            let _ = caller;
            let mut list = f.blocks.to_vec();
            match (previous, list.last_mut()) {
                (Some(p), Some(b)) if p.block_id == b.id => b.len = p.num_bytes,
                (None, None) => {}
                (p, b) => {
                    return Err(NnError::InvalidArgument(format!(
                        "addBlock {path}: previous block {:?} is not the file's last block {:?}",
                        p.map(|p| p.block_id),
                        b.map(|b| b.id)
                    )))
                }
            }
            let mut blocks = self.blocks.lock();
            let targets = blocks.choose(f.replication as usize, writer_ip, excluded, f.block_size);
            if targets.is_empty() {
                let live = blocks.live_nodes().len();
                return Err(NnError::Unavailable(format!(
                    "File {path} could only be written to 0 of the {} minReplication nodes. There are {live} datanode(s) running and {} node(s) are excluded in this operation.",
                    self.conf.min_replication,
                    excluded.len()
                )));
            }
            let (id, gs) = ns.next_block();
            let offset: u64 = list.iter().map(|b| b.len).sum();
            if let Some(prev) = list.last() {
                blocks.complete_block(prev.id, prev.len);
            }
            list.push(crate::inode::Block { id, genstamp: gs, len: 0 });
            blocks.add_block(id, gs, 0, f.replication, false);
            let uuids: Vec<String> = targets.iter().map(|&t| blocks.info(t).datanode_uuid).collect();
            blocks.set_pipeline(id, gs, &uuids);
            let located = LocatedBlock {
                block: Some(ExtendedBlock { block_id: id, generation_stamp: gs, num_bytes: 0 }),
                offset,
                locations: targets.iter().map(|&t| blocks.info(t)).collect(),
                corrupt_locations: Vec::new(),
                expected_replication: u32::from(f.replication),
            };
            let pb = list
                .iter()
                .map(|b| tusk_proto::storage::Block { block_id: b.id, generation_stamp: b.genstamp, num_bytes: b.len })
                .collect();
            Ok((vec![op(Op::UpdateBlocks(OpUpdateBlocks { path: path.to_string(), blocks: pb }))], located))
        })
        .await
    }

    /// Drops the last block of a file being written (its pipeline could not be set up).
    pub async fn abandon_block(&self, path: &str, client_name: &str, block: ExtendedBlock) -> NnResult<()> {
        let path = Self::parse(path)?;
        self.mutate(|ns| {
            let i = ns.lookup(&path).ok_or_else(|| Self::not_found(&path))?;
            let f = ns.inode(i).file().ok_or_else(|| NnError::IsDirectory(path.to_string()))?;
            if f.holder() != Some(client_name) {
                return Err(NnError::LeaseConflict(format!(
                    "No lease on {path}: File is not open for writing by {client_name}"
                )));
            }
            let mut list = f.blocks.to_vec();
            if list.last().map(|b| b.id) != Some(block.block_id) {
                return Ok((Vec::new(), ()));
            }
            list.pop();
            self.blocks.lock().remove_block(block.block_id);
            let pb = list
                .iter()
                .map(|b| tusk_proto::storage::Block { block_id: b.id, generation_stamp: b.genstamp, num_bytes: b.len })
                .collect();
            Ok((vec![op(Op::UpdateBlocks(OpUpdateBlocks { path: path.to_string(), blocks: pb }))], ()))
        })
        .await
    }

    /// The blocks of `path` overlapping `[offset, offset + length)`, replicas nearest to the
    /// reader first. Returns (file length, blocks, under construction).
    pub fn block_locations(
        &self,
        caller: &Caller,
        path: &str,
        offset: u64,
        length: u64,
        reader_ip: Option<&str>,
    ) -> NnResult<(u64, Vec<LocatedBlock>, bool)> {
        let path = Self::parse(path)?;
        let ns = self.ns.read();
        let i =
            ns.lookup_through(&path, |dir| caller.check_traverse(&ns, dir))?.ok_or_else(|| Self::not_found(&path))?;
        let f = ns.inode(i).file().ok_or_else(|| NnError::FileNotFound(format!("Path is not a file: {path}")))?;
        caller.check_access(&ns, i, Access::READ)?;
        if f.blocks.is_empty() {
            // Nothing to locate: the block map (one lock for the whole cluster) is not needed.
            return Ok((0, Vec::new(), f.under_construction.is_some()));
        }
        let blocks = self.blocks.lock();
        // The reader's rack: from the table, else that of a datanode on the reader's host.
        let reader_rack: Option<String> = reader_ip.and_then(|ip| {
            self.conf
                .topology
                .rack_of_addr(ip)
                .map(str::to_owned)
                .or_else(|| blocks.datanodes().find(|(_, d)| d.live && d.ip == ip).map(|(_, d)| d.rack.clone()))
        });
        let end = offset.saturating_add(length);
        let mut out = Vec::new();
        let mut pos = 0u64;
        for b in &f.blocks {
            let (start, stop) = (pos, pos + b.len);
            pos = stop;
            if stop <= offset && b.len > 0 || start >= end && start > offset {
                continue;
            }
            let (mut live, corrupt) = blocks.locations(b.id);
            if blocks.is_complete(b.id) == Some(false) {
                // Being written: its replicas are on the pipeline, not yet reported.
                live = blocks.uc_locations(b.id);
            }
            // Nearest first: the reader's own host, then its rack, then the rest; random among
            // equals to spread the load.
            use rand::seq::SliceRandom;
            live.shuffle(&mut rand::rng());
            // Replicas on datanodes leaving the cluster come last, as HDFS sorts them.
            live.sort_by_key(|d| {
                let leaving = d.admin_state != tusk_proto::client::AdminState::Normal as i32;
                let distance = if reader_ip == Some(d.ip_addr.as_str()) {
                    0
                } else if reader_rack.as_deref() == Some(d.rack.as_str()) {
                    1
                } else {
                    2
                };
                (leaving, distance)
            });
            out.push(LocatedBlock {
                block: Some(ExtendedBlock { block_id: b.id, generation_stamp: b.genstamp, num_bytes: b.len }),
                offset: start,
                locations: live,
                corrupt_locations: corrupt,
                expected_replication: u32::from(f.replication),
            });
        }
        Ok((f.length(), out, f.under_construction.is_some()))
    }

    /// Replicas found corrupt by a reader (or a datanode's scanner).
    pub fn report_bad_blocks(&self, bad: &[(u64, Vec<String>)]) {
        let mut blocks = self.blocks.lock();
        for (id, uuids) in bad {
            for u in uuids {
                blocks.mark_corrupt(*id, u);
            }
        }
    }

    // ---- datanodes ----

    pub fn register_datanode(&self, reg: Registration) -> NnResult<()> {
        let cluster = self.cluster_id();
        if !reg.cluster_id.is_empty() && reg.cluster_id != cluster {
            return Err(NnError::InvalidArgument(format!(
                "Incompatible clusterIDs: namenode clusterID = {cluster}; datanode clusterID = {}",
                reg.cluster_id
            )));
        }
        let rack = self.conf.topology.resolve(&reg.ip, &reg.hostname, reg.xfer_port);
        let excludes = self.excludes.lock().clone();
        let mut blocks = self.blocks.lock();
        blocks.register(
            &reg.uuid,
            &reg.hostname,
            &reg.ip,
            reg.xfer_port,
            reg.http_port,
            reg.ipc_port,
            &rack,
            Instant::now(),
        );
        blocks.apply_excludes(&excludes);
        Ok(())
    }

    /// `None`: the datanode must register again.
    pub fn heartbeat(&self, uuid: &str, capacity: u64, used: u64, remaining: u64, active: u32) -> Option<Vec<Command>> {
        self.blocks.lock().heartbeat(uuid, capacity, used, remaining, active, Instant::now())
    }

    /// Raises the next block id and generation stamp above every replica a datanode has.
    fn note_reported(&self, reported: &[Reported]) {
        let max_id = reported.iter().map(|r| r.id).max().unwrap_or(0);
        let max_gs = reported.iter().map(|r| r.genstamp).max().unwrap_or(0);
        let (next_id, next_gs) = self.ns.read().next_block();
        if max_id >= next_id || max_gs >= next_gs {
            tracing::warn!(
                max_id,
                max_gs,
                "a datanode holds blocks newer than the namespace; new blocks skip past them"
            );
            self.ns.write().note_block_seen(max_id, max_gs);
        }
    }

    pub fn block_report(&self, uuid: &str, reported: &[Reported]) -> Option<Vec<Command>> {
        self.note_reported(reported);
        let mut blocks = self.blocks.lock();
        blocks.block_report(uuid, reported)?;
        self.refresh_safe_mode(&mut blocks);
        let dn = blocks.find(uuid)?;
        Some(blocks.take_commands(dn))
    }

    pub fn received_and_deleted(&self, uuid: &str, received: &[Reported], deleted: &[u64]) -> Option<()> {
        self.note_reported(received);
        let mut blocks = self.blocks.lock();
        blocks.received_and_deleted(uuid, received, deleted)?;
        if self.safe_mode.lock().is_on() {
            self.refresh_safe_mode(&mut blocks);
        }
        drop(blocks);
        if !received.is_empty() {
            self.replicas_received.notify_waiters();
        }
        Some(())
    }

    pub fn datanode_report(&self, live: Option<bool>) -> Vec<DatanodeInfo> {
        let blocks = self.blocks.lock();
        blocks.datanodes().filter(|(_, d)| live.is_none_or(|l| d.live == l)).map(|(i, _)| blocks.info(i)).collect()
    }

    /// `dfsadmin -refreshNodes`: re-reads the exclude file; listed datanodes start
    /// decommissioning, the others return to service.
    pub fn refresh_nodes(&self, caller: &Caller) -> NnResult<()> {
        self.require_superuser(caller, "refresh nodes")?;
        let excluded = read_excludes(self.conf.hosts_exclude.as_deref()).map_err(NnError::InvalidArgument)?;
        let changed = self.blocks.lock().apply_excludes(&excluded);
        tracing::info!(excluded = excluded.len(), changed, "nodes refreshed");
        *self.excludes.lock() = excluded;
        Ok(())
    }

    pub fn shutdown_datanode(&self, caller: &Caller, addr: &str) -> NnResult<()> {
        self.require_superuser(caller, "shut down a datanode")?;
        let mut blocks = self.blocks.lock();
        let dn = blocks.find_by_addr(addr).ok_or_else(|| NnError::FileNotFound(format!("no datanode at {addr}")))?;
        blocks.request_shutdown(dn);
        Ok(())
    }

    pub fn cluster_stats(&self) -> ClusterStats {
        let in_safe_mode = self.safe_mode.lock().is_on();
        let blocks = self.blocks.lock();
        let mut s =
            ClusterStats { capacity: 0, used: 0, remaining: 0, live: 0, dead: 0, blocks: blocks.stats(in_safe_mode) };
        for (_, d) in blocks.datanodes() {
            if d.live {
                s.live += 1;
                s.capacity += d.capacity;
                s.used += d.dfs_used;
                s.remaining += d.remaining;
            } else {
                s.dead += 1;
            }
        }
        s
    }

    /// One tick of the block-management loop: dead datanodes, safe mode, replication.
    pub fn block_management_tick(&self, replicate: bool) {
        let mut blocks = self.blocks.lock();
        if blocks.check_heartbeats(Instant::now(), self.conf.heartbeat_expiry) > 0 {
            self.refresh_safe_mode(&mut blocks);
        }
        let (in_safe_mode, startup_over) = {
            let mut sm = self.safe_mode.lock();
            sm.check(Instant::now());
            (sm.is_on(), !sm.in_startup())
        };
        if startup_over {
            // Start-up safe mode ended (possibly in a check outside the block lock): the
            // replication queues are built here if no one has yet.
            blocks.init_queues();
        }
        if replicate && !in_safe_mode {
            blocks.replication_work(Instant::now(), 1000);
            blocks.check_decommissioning();
        }
        let (needed, pending, excess) = blocks.queue_totals();
        metrics::gauge!("namenode_replication_queue_blocks", "queue" => "needed").set(needed as f64);
        metrics::gauge!("namenode_replication_queue_blocks", "queue" => "pending").set(pending as f64);
        metrics::gauge!("namenode_replication_queue_blocks", "queue" => "excess").set(excess as f64);
        let live = blocks.datanodes().filter(|(_, d)| d.live).count();
        let all = blocks.datanodes().count();
        metrics::gauge!("namenode_datanodes", "state" => "live").set(live as f64);
        metrics::gauge!("namenode_datanodes", "state" => "dead").set((all - live) as f64);
        metrics::gauge!("namenode_safe_mode").set(if in_safe_mode { 1.0 } else { 0.0 });
    }
}
