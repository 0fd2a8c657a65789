//! Name directories: locking, `VERSION`, format, loading (newest image + the edits after
//! it), saving images to every directory and purging what retention no longer needs.
//!
//! Layout of each directory:
//! ```text
//! in_use.lock
//! current/VERSION            clusterID, layoutVersion, storageType (checksummed)
//! current/seen_txid          first txid of the newest segment ever started (checksummed)
//! current/fsimage_<txid>     see fsimage.rs
//! current/edits_<a>-<b>      finished segments, see edit_log.rs
//! current/edits_inprogress_<a>
//! ```

use crate::edit_log::{self, finished_name, parse_segment_name, SegmentName};
use crate::fsimage::{self, image_name, parse_image_name};
use crate::namespace::Namespace;
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use tusk_common::durable::{fsync_dir, read_properties, write_atomic, write_properties};

pub const LAYOUT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StorageError(pub String);

fn io_err(what: &str, path: &Path, e: impl std::fmt::Display) -> StorageError {
    StorageError(format!("{what} {}: {e}", path.display()))
}

pub struct NameDir {
    pub root: PathBuf,
    pub current: PathBuf,
    _lock: File,
}

/// Prefix of an image being uploaded by the checkpointer, before it is checked and renamed
/// to `fsimage_<txid>`. Left-overs of an interrupted upload are removed at start-up.
pub const UPLOAD_PREFIX: &str = "fsimage.ckpt_";

impl NameDir {
    /// Creates `root` if needed and takes its `in_use.lock` (one process per directory).
    pub fn open(root: &Path) -> Result<NameDir, StorageError> {
        fs::create_dir_all(root).map_err(|e| io_err("cannot create name directory", root, e))?;
        let lock_path = root.join("in_use.lock");
        let lock = File::create(&lock_path).map_err(|e| io_err("cannot write to name directory", root, e))?;
        if lock.try_lock().is_err() {
            return Err(StorageError(format!(
                "name directory {} is in use by another namenode ({} is locked)",
                root.display(),
                lock_path.display()
            )));
        }
        Ok(NameDir { root: root.to_owned(), current: root.join("current"), _lock: lock })
    }

    /// The cluster id when formatted, `None` when the directory holds nothing yet.
    fn state(&self) -> Result<Option<String>, StorageError> {
        let version = self.current.join("VERSION");
        if version.exists() {
            let props = read_properties(&version).map_err(|e| StorageError(e.to_string()))?;
            let get = |k: &str| props.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
            let layout = get("layoutVersion").unwrap_or_default();
            if layout != LAYOUT_VERSION.to_string() {
                return Err(StorageError(format!(
                    "{} has layout version {layout:?}; this namenode reads {LAYOUT_VERSION}",
                    version.display()
                )));
            }
            return get("clusterID")
                .map(Some)
                .ok_or_else(|| StorageError(format!("{} has no clusterID", version.display())));
        }
        let has_files = fs::read_dir(&self.root)
            .map_err(|e| io_err("cannot read", &self.root, e))?
            .filter_map(Result::ok)
            .any(|e| e.file_name() != "in_use.lock" && !(e.file_name() == "current" && dir_is_empty(&e.path())));
        if has_files {
            return Err(StorageError(format!(
                "name directory {} is not empty but has no current/VERSION: not formatted by Tusk, or damaged. \
                 Format it explicitly with `tusk namenode -format -force` (this erases it)",
                self.root.display()
            )));
        }
        Ok(None)
    }

    pub fn file_names(&self) -> Result<Vec<String>, StorageError> {
        Ok(fs::read_dir(&self.current)
            .map_err(|e| io_err("cannot list", &self.current, e))?
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .collect())
    }

    fn seen_txid(&self) -> Result<u64, StorageError> {
        let p = self.current.join("seen_txid");
        if !p.exists() {
            return Ok(0);
        }
        let props = read_properties(&p).map_err(|e| StorageError(e.to_string()))?;
        props
            .iter()
            .find(|(k, _)| k == "seenTxid")
            .and_then(|(_, v)| v.parse().ok())
            .ok_or_else(|| StorageError(format!("{} is malformed", p.display())))
    }
}

/// Removes `fsimage.ckpt_*` files: uploads a crash or a killed checkpointer left behind.
fn remove_interrupted_uploads(d: &NameDir) -> Result<(), StorageError> {
    if !d.current.is_dir() {
        return Ok(());
    }
    for n in d.file_names()? {
        if n.starts_with(UPLOAD_PREFIX) {
            let p = d.current.join(&n);
            tracing::warn!(file = %p.display(), "removing an interrupted checkpoint upload");
            fs::remove_file(&p).map_err(|e| io_err("cannot remove", &p, e))?;
        }
    }
    Ok(())
}

fn dir_is_empty(p: &Path) -> bool {
    fs::read_dir(p).map(|mut d| d.next().is_none()).unwrap_or(false)
}

/// What loading found.
pub struct Loaded {
    pub namespace: Namespace,
    pub last_txid: u64,
    pub image_txid: u64,
    pub edits_replayed: u64,
    /// Directories disagreed (one was new, or missing files): write a fresh image to all.
    pub needs_save: bool,
}

pub struct NameStorage {
    pub dirs: Vec<NameDir>,
    pub cluster_id: String,
}

pub fn new_cluster_id() -> String {
    format!("CID-{:032x}", rand::random::<u128>())
}

impl NameStorage {
    /// Locks every directory and checks they belong to one cluster. Empty directories are
    /// formatted (all of them with a new cluster id when none is formatted; otherwise they
    /// are filled in by the caller's save after loading).
    pub fn open(roots: &[PathBuf], superuser: &str, supergroup: &str) -> Result<(NameStorage, bool), StorageError> {
        if roots.is_empty() {
            return Err(StorageError("no name directory configured".into()));
        }
        let dirs = roots.iter().map(|r| NameDir::open(r)).collect::<Result<Vec<_>, _>>()?;
        for d in &dirs {
            remove_interrupted_uploads(d)?;
        }
        let mut cluster: Option<String> = None;
        let mut any_empty = false;
        for d in &dirs {
            match d.state()? {
                Some(cid) => match &cluster {
                    Some(c) if *c != cid => {
                        return Err(StorageError(format!(
                            "name directories belong to different clusters: {} has {cid}, another has {c}",
                            d.root.display()
                        )))
                    }
                    _ => cluster = Some(cid),
                },
                None => any_empty = true,
            }
        }
        let mut storage = NameStorage { dirs, cluster_id: cluster.clone().unwrap_or_default() };
        match cluster {
            None => {
                storage.cluster_id = new_cluster_id();
                tracing::info!(cluster_id = %storage.cluster_id, "name directories are empty: formatting");
                storage.format_all(superuser, supergroup)?;
                Ok((storage, false))
            }
            Some(_) => {
                for d in &storage.dirs {
                    if !d.current.join("VERSION").exists() {
                        tracing::warn!(dir = %d.root.display(), "empty name directory joins; it gets a fresh image after loading");
                        fs::create_dir_all(&d.current).map_err(|e| io_err("cannot create", &d.current, e))?;
                        storage.write_version(d)?;
                    }
                }
                Ok((storage, any_empty))
            }
        }
    }

    /// Erases and formats every directory (`tusk namenode -format`).
    pub fn format(
        roots: &[PathBuf],
        cluster_id: Option<String>,
        force: bool,
        superuser: &str,
        supergroup: &str,
    ) -> Result<NameStorage, StorageError> {
        let dirs = roots.iter().map(|r| NameDir::open(r)).collect::<Result<Vec<_>, _>>()?;
        for d in &dirs {
            if d.current.exists() && !dir_is_empty(&d.current) {
                if !force {
                    return Err(StorageError(format!(
                        "name directory {} already holds a file system; add -force to erase it",
                        d.root.display()
                    )));
                }
                fs::remove_dir_all(&d.current).map_err(|e| io_err("cannot erase", &d.current, e))?;
            }
        }
        let storage = NameStorage { dirs, cluster_id: cluster_id.unwrap_or_else(new_cluster_id) };
        storage.format_all(superuser, supergroup)?;
        Ok(storage)
    }

    fn write_version(&self, d: &NameDir) -> Result<(), StorageError> {
        write_properties(
            &d.current.join("VERSION"),
            &[
                ("clusterID", self.cluster_id.clone()),
                ("layoutVersion", LAYOUT_VERSION.to_string()),
                ("storageType", "NAME_NODE".into()),
                ("cTime", tusk_common::now_ms().to_string()),
            ],
        )
        .map_err(|e| io_err("cannot write VERSION in", &d.current, e))
    }

    fn format_all(&self, superuser: &str, supergroup: &str) -> Result<(), StorageError> {
        let ns = Namespace::new(superuser, supergroup, tusk_common::now_ms());
        for d in &self.dirs {
            fs::create_dir_all(&d.current).map_err(|e| io_err("cannot create", &d.current, e))?;
            fsimage::save(&ns, 0, &self.cluster_id, &d.current.join(image_name(0)))
                .map_err(|e| io_err("cannot write image in", &d.current, e))?;
            write_properties(&d.current.join("seen_txid"), &[("seenTxid", "0".into())])
                .map_err(|e| io_err("cannot write", &d.current, e))?;
            // VERSION last: a directory with VERSION is complete.
            self.write_version(d)?;
            fsync_dir(&d.root).map_err(|e| io_err("cannot sync", &d.root, e))?;
        }
        Ok(())
    }

    pub fn current_dirs(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.current.clone()).collect()
    }

    /// Loads the newest image and replays every edit after it (see module docs), then
    /// turns in-progress segments into finished ones in every directory.
    pub fn load(&self) -> Result<Loaded, StorageError> {
        let mut listing = Vec::new();
        for d in &self.dirs {
            listing.push(d.file_names()?);
        }
        // 1. The newest image that loads.
        let newest = listing.iter().flatten().filter_map(|n| parse_image_name(n)).max().ok_or_else(|| {
            StorageError(format!(
                "no fsimage in any name directory ({})",
                self.dirs.iter().map(|d| d.root.display().to_string()).collect::<Vec<_>>().join(", ")
            ))
        })?;
        let mut needs_save = false;
        let mut loaded = None;
        let mut first_err = None;
        for (d, names) in self.dirs.iter().zip(&listing) {
            if !names.contains(&image_name(newest)) {
                needs_save = true;
                continue;
            }
            if loaded.is_some() {
                continue;
            }
            match fsimage::load(&d.current.join(image_name(newest))) {
                Ok(x) => loaded = Some(x),
                Err(e) => {
                    tracing::error!(error = %e, "fsimage copy unusable; trying another name directory");
                    needs_save = true;
                    first_err.get_or_insert(e.to_string());
                }
            }
        }
        let (mut ns, summary) = loaded.ok_or_else(|| {
            StorageError(format!("no usable copy of {}: {}", image_name(newest), first_err.unwrap_or_default()))
        })?;
        if summary.cluster_id != self.cluster_id {
            return Err(StorageError(format!(
                "{} belongs to cluster {}, the directories to {}",
                image_name(newest),
                summary.cluster_id,
                self.cluster_id
            )));
        }
        if summary.txid != newest {
            return Err(StorageError(format!("{} says txid {}", image_name(newest), summary.txid)));
        }
        ns.check_invariants().map_err(|e| StorageError(format!("{} is inconsistent: {e}", image_name(newest))))?;

        // 2. Segments after it, in order.
        let mut next = newest + 1;
        let mut replayed = 0u64;
        let mut finished: Vec<(u64, u64, usize)> = Vec::new();
        let mut in_progress: Vec<(u64, usize)> = Vec::new();
        for (i, names) in listing.iter().enumerate() {
            for n in names {
                match parse_segment_name(n) {
                    Some(SegmentName::Finished { first, last }) => finished.push((first, last, i)),
                    Some(SegmentName::InProgress { first }) => in_progress.push((first, i)),
                    None => {}
                }
            }
        }
        let mut apply = |txid: u64, op| ns.apply(&op).map_err(|e| format!("{e} (txid {txid})"));
        let mut finalize: Option<(u64, u64, Vec<u8>)> = None;
        loop {
            let mut cands: Vec<_> = finished.iter().filter(|(f, _, _)| *f == next).collect();
            cands.sort_by_key(|(_, l, _)| std::cmp::Reverse(*l));
            if let Some(&&(first, last, _)) = cands.first() {
                let copies: Vec<_> = cands.iter().filter(|(_, l, _)| *l == last).collect();
                if copies.len() < self.dirs.len() {
                    needs_save = true;
                }
                if let [&&(_, _, di)] = copies[..] {
                    // One copy: nothing to choose between, so it is checked while it is
                    // applied (a failure stops the start either way) instead of read twice.
                    let p = self.dirs[di].current.join(finished_name(first, last));
                    let scan = edit_log::read_segment(&p, Some(first), false, &mut apply)
                        .map_err(|e| StorageError(format!("cannot start: {e}")))?;
                    if scan.last_txid != last {
                        return Err(StorageError(format!(
                            "cannot start: {} ends at txid {}, its name says {last}",
                            p.display(),
                            scan.last_txid
                        )));
                    }
                    replayed += last + 1 - first;
                    next = last + 1;
                    continue;
                }
                let mut err = None;
                let mut good = None;
                for (_, _, di) in copies {
                    let p = self.dirs[*di].current.join(finished_name(first, last));
                    match edit_log::read_segment(&p, Some(first), false, |_, _| Ok(())) {
                        Ok(scan) if scan.last_txid == last => {
                            good = Some(p);
                            break;
                        }
                        Ok(scan) => err.get_or_insert(format!(
                            "{} ends at txid {}, its name says {last}",
                            p.display(),
                            scan.last_txid
                        )),
                        Err(e) => err.get_or_insert(e.to_string()),
                    };
                    needs_save = true;
                }
                let p = good.ok_or_else(|| StorageError(format!("cannot start: {}", err.unwrap_or_default())))?;
                edit_log::read_segment(&p, Some(first), false, &mut apply)
                    .map_err(|e| StorageError(format!("cannot start: {e}")))?;
                replayed += last + 1 - first;
                next = last + 1;
                continue;
            }
            // The in-progress segment comes last.
            let cands: Vec<_> = in_progress.iter().filter(|(f, _)| *f == next).collect();
            if cands.is_empty() {
                break;
            }
            let mut best: Option<(edit_log::SegmentScan, PathBuf)> = None;
            let mut err = None;
            // With one copy it is checked while it is applied, below, instead of read twice.
            let single = cands.len() == 1;
            for (first, di) in cands.iter().filter(|_| !single) {
                let p = self.dirs[*di].current.join(edit_log::inprogress_name(*first));
                match edit_log::read_segment(&p, Some(*first), true, |_, _| Ok(())) {
                    Ok(scan) => {
                        if best.as_ref().is_none_or(|(b, _)| scan.last_txid > b.last_txid) {
                            best = Some((scan, p));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "edit log copy unusable");
                        err.get_or_insert(e.to_string());
                    }
                }
            }
            let (scan, p) = match (best, single) {
                (Some(best), _) => {
                    edit_log::read_segment(&best.1, Some(best.0.first_txid), true, &mut apply)
                        .map_err(|e| StorageError(format!("cannot start: {e}")))?;
                    best
                }
                (None, true) => {
                    let (first, di) = *cands[0];
                    let p = self.dirs[di].current.join(edit_log::inprogress_name(first));
                    match edit_log::read_segment(&p, Some(first), true, &mut apply) {
                        Ok(scan) => (scan, p),
                        Err(e) => {
                            tracing::error!(error = %e, "edit log copy unusable");
                            return Err(StorageError(format!("cannot start: {e}")));
                        }
                    }
                }
                (None, false) => return Err(StorageError(format!("cannot start: {}", err.unwrap_or_default()))),
            };
            if let Some(at) = scan.torn_at {
                tracing::warn!(file = %p.display(), offset = at, "torn final record in the in-progress edit log cut off");
            }
            if scan.last_txid >= scan.first_txid {
                let bytes = fs::read(&p).map_err(|e| io_err("cannot read", &p, e))?;
                let valid = usize::try_from(scan.valid_bytes).unwrap_or(bytes.len()).min(bytes.len());
                finalize = Some((scan.first_txid, scan.last_txid, bytes[..valid].to_vec()));
                replayed += scan.last_txid + 1 - scan.first_txid;
            }
            next = scan.last_txid + 1;
            break;
        }
        let last_txid = next - 1;
        if let Some(&(first, _, _)) = finished.iter().filter(|(f, _, _)| *f > next).min_by_key(|(f, _, _)| *f) {
            return Err(StorageError(format!(
                "cannot start: the edit log has a gap: expected txid {next}, next segment starts at {first}"
            )));
        }
        let seen =
            self.dirs.iter().map(NameDir::seen_txid).collect::<Result<Vec<_>, _>>()?.into_iter().max().unwrap_or(0);
        if seen > last_txid + 1 {
            return Err(StorageError(format!(
                "cannot start: edits are missing: seen_txid says txid {seen} was reached, but the logs end at {last_txid}"
            )));
        }
        // The image's namespace was checked above; only edits can have changed it since.
        if replayed > 0 {
            ns.check_invariants().map_err(|e| StorageError(format!("namespace inconsistent after replay: {e}")))?;
        }

        // 3. In-progress segments become finished ones, the same bytes in every directory.
        for d in &self.dirs {
            if let Some((first, last, bytes)) = &finalize {
                write_atomic(&d.current.join(finished_name(*first, *last)), |w| std::io::Write::write_all(w, bytes))
                    .map_err(|e| io_err("cannot finish segment in", &d.current, e))?;
            }
            for n in d.file_names()? {
                if matches!(parse_segment_name(&n), Some(SegmentName::InProgress { .. })) {
                    fs::remove_file(d.current.join(&n)).map_err(|e| io_err("cannot remove", &d.current.join(&n), e))?;
                }
            }
            fsync_dir(&d.current).map_err(|e| io_err("cannot sync", &d.current, e))?;
        }
        Ok(Loaded { namespace: ns, last_txid, image_txid: newest, edits_replayed: replayed, needs_save })
    }

    /// Writes `ns` at `txid` as a new image in every directory.
    pub fn save_image(&self, ns: &Namespace, txid: u64) -> Result<(), StorageError> {
        for d in &self.dirs {
            fsimage::save(ns, txid, &self.cluster_id, &d.current.join(image_name(txid)))
                .map_err(|e| io_err("cannot write image in", &d.current, e))?;
        }
        Ok(())
    }

    /// Keeps the newest `retain` images and the finished edits needed to roll forward from
    /// the oldest of them; removes the rest.
    pub fn purge(&self, retain: usize) -> Result<(), StorageError> {
        for d in &self.dirs {
            purge_dir(&d.current, retain)?;
        }
        Ok(())
    }

    /// The newest image present in any directory: its txid and one path to it.
    pub fn newest_image(&self) -> Result<Option<(u64, PathBuf)>, StorageError> {
        let mut best: Option<(u64, PathBuf)> = None;
        for d in &self.dirs {
            for n in d.file_names()? {
                if let Some(t) = parse_image_name(&n) {
                    if best.as_ref().is_none_or(|(b, _)| t > *b) {
                        best = Some((t, d.current.join(n)));
                    }
                }
            }
        }
        Ok(best)
    }

    /// A path to the file `name` in the first directory that has it.
    pub fn find(&self, name: &str) -> Option<PathBuf> {
        self.dirs.iter().map(|d| d.current.join(name)).find(|p| p.is_file())
    }

    /// The finished segments that carry txids `after + 1 ..= upto`, in order, chained from
    /// what all directories hold; an error names the first missing txid.
    pub fn segments_between(&self, after: u64, upto: u64) -> Result<Vec<(u64, u64)>, StorageError> {
        let mut finished = BTreeSet::new();
        for d in &self.dirs {
            for n in d.file_names()? {
                if let Some(SegmentName::Finished { first, last }) = parse_segment_name(&n) {
                    finished.insert((first, last));
                }
            }
        }
        let mut out = Vec::new();
        let mut next = after + 1;
        while next <= upto {
            let seg = finished
                .iter()
                .filter(|(f, l)| *f == next && *l <= upto)
                .max_by_key(|(_, l)| *l)
                .copied()
                .ok_or_else(|| StorageError(format!("no finished edit segment starts at txid {next}")))?;
            out.push(seg);
            next = seg.1 + 1;
        }
        Ok(out)
    }

    /// Where an upload of the image at `txid` is written in each directory.
    pub fn upload_paths(&self, txid: u64) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.current.join(format!("{UPLOAD_PREFIX}{txid:019}"))).collect()
    }

    /// Renames checked uploads (from [`upload_paths`](Self::upload_paths)) to `fsimage_<txid>`,
    /// each directory's rename made durable before the next.
    pub fn install_uploaded(&self, txid: u64) -> Result<(), StorageError> {
        for (d, from) in self.dirs.iter().zip(self.upload_paths(txid)) {
            let to = d.current.join(image_name(txid));
            fs::rename(&from, &to).map_err(|e| io_err("cannot install checkpoint image", &to, e))?;
            fsync_dir(&d.current).map_err(|e| io_err("cannot sync", &d.current, e))?;
        }
        Ok(())
    }

    /// `tusk namenode --import-checkpoint`: fills empty name directories from the newest
    /// image in a checkpointer's directory (its `current/`), checked by loading it whole.
    /// Refuses directories that already hold a file system. Returns (cluster id, txid).
    pub fn import_checkpoint(roots: &[PathBuf], checkpoint_dir: &Path) -> Result<(String, u64), StorageError> {
        if roots.is_empty() {
            return Err(StorageError("no name directory configured".into()));
        }
        let from = checkpoint_dir.join("current");
        let names: Vec<String> = fs::read_dir(&from)
            .map_err(|e| io_err("cannot read the checkpoint directory", &from, e))?
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        let txid = names.iter().filter_map(|n| parse_image_name(n)).max().ok_or_else(|| {
            StorageError(format!("{} holds no fsimage: nothing to import (has a checkpoint run?)", from.display()))
        })?;
        let src = from.join(image_name(txid));
        let (ns, summary) = fsimage::load(&src).map_err(|e| StorageError(format!("cannot import: {e}")))?;
        ns.check_invariants().map_err(|e| StorageError(format!("cannot import {}: {e}", src.display())))?;
        let dirs = roots.iter().map(|r| NameDir::open(r)).collect::<Result<Vec<_>, _>>()?;
        for d in &dirs {
            if d.state()?.is_some() {
                return Err(StorageError(format!(
                    "name directory {} already holds a file system; importing a checkpoint needs empty name \
                     directories (move it away first)",
                    d.root.display()
                )));
            }
        }
        let storage = NameStorage { dirs, cluster_id: summary.cluster_id.clone() };
        for d in &storage.dirs {
            fs::create_dir_all(&d.current).map_err(|e| io_err("cannot create", &d.current, e))?;
            let to = d.current.join(image_name(txid));
            write_atomic(&to, |w| {
                let mut f = File::open(&src)?;
                std::io::copy(&mut f, w).map(|_| ())
            })
            .map_err(|e| io_err("cannot copy the checkpoint image to", &to, e))?;
            fsimage::verify(&to).map_err(|e| StorageError(format!("copied image is damaged: {e}")))?;
            write_properties(&d.current.join("seen_txid"), &[("seenTxid", txid.to_string())])
                .map_err(|e| io_err("cannot write", &d.current, e))?;
            storage.write_version(d)?;
            fsync_dir(&d.root).map_err(|e| io_err("cannot sync", &d.root, e))?;
        }
        tracing::info!(txid, cluster_id = %summary.cluster_id, from = %src.display(), "checkpoint imported");
        Ok((summary.cluster_id, txid))
    }
}

/// Retention in one `current/` directory (a name directory's or the checkpointer's): keeps
/// the newest `retain` images and the finished edits after the oldest of them.
pub fn purge_dir(current: &Path, retain: usize) -> Result<(), StorageError> {
    let names: Vec<String> = fs::read_dir(current)
        .map_err(|e| io_err("cannot list", current, e))?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    let images: BTreeSet<u64> = names.iter().filter_map(|n| parse_image_name(n)).collect();
    let keep: Vec<u64> = images.iter().rev().take(retain.max(1)).copied().collect();
    let Some(&oldest_kept) = keep.last() else { return Ok(()) };
    for n in &names {
        let remove = match (parse_image_name(n), parse_segment_name(n)) {
            (Some(t), _) => t < oldest_kept,
            (_, Some(SegmentName::Finished { last, .. })) => last <= oldest_kept,
            _ => false,
        };
        if remove {
            fs::remove_file(current.join(n)).map_err(|e| io_err("cannot remove", &current.join(n), e))?;
            tracing::info!(file = %current.join(n).display(), "purged");
        }
    }
    Ok(())
}
