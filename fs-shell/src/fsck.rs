//! `tusk fsck`: HDFS's fsck, run from the client. It walks the namespace with listings and
//! block locations and prints what `hdfs fsck` prints (NamenodeFsck's report, relayed line by
//! line as DFSck does): exit 0 when HEALTHY (or the path does not exist), 1 when CORRUPT.

use crate::report::{java_date, java_float};
use crate::{Io, EXIT_USAGE};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use tusk_client::{Client, ClientError, DatanodeReportType, FileStatus, FileType};
use tusk_common::config::ClientConfig;

const USAGE: &str = "Usage: tusk fsck <path> [-list-corruptfileblocks | [-delete | -openforwrite] \
[-files [-blocks [-locations | -racks | -replicaDetails]]]] [-includeSnapshots] [-showprogress]
\t<path>\tstart checking from this path
\t-delete\tdelete corrupted files
\t-files\tprint out files being checked
\t-openforwrite\tprint out files opened for write
\t-includeSnapshots\tinclude snapshot data if the given path indicates a snapshottable directory
\t-list-corruptfileblocks\tprint out list of missing blocks and files they belong to
\t-files -blocks\tprint out block report
\t-files -blocks -locations\tprint out locations for every block
\t-files -blocks -racks\tprint out network topology for data-node locations
\t-files -blocks -replicaDetails\tprint out each replica details
\t-showprogress\tshow progress in output. Default is OFF (no progress)

Please Note:
\t1. By default fsck ignores files opened for write, use -openforwrite to report such files. \
They are usually tagged CORRUPT or HEALTHY depending on their block allocation status
\t2. Option -includeSnapshots should not be used for comparing stats, should be used only \
for HEALTH check, as this may contain duplicates if the same file present in both original \
fs tree and inside snapshots.";

/// What to print, from the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Opts {
    pub path: Option<String>,
    pub files: bool,
    pub blocks: bool,
    pub locations: bool,
    pub racks: bool,
    pub replica_details: bool,
    pub open_for_write: bool,
    pub list_corrupt: bool,
    pub delete: bool,
    pub show_progress: bool,
}

/// DFSck's argument loop; the error is the message line (usage follows it).
pub fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts::default();
    for a in args {
        match a.as_str() {
            "-files" => o.files = true,
            "-blocks" => o.blocks = true,
            "-locations" => o.locations = true,
            "-racks" => o.racks = true,
            "-replicaDetails" => o.replica_details = true,
            "-openforwrite" => o.open_for_write = true,
            "-list-corruptfileblocks" => o.list_corrupt = true,
            "-delete" => o.delete = true,
            "-showprogress" => o.show_progress = true,
            "-includeSnapshots" => {}
            p if !p.starts_with('-') => {
                if o.path.is_some() {
                    return Err(format!("fsck: can only operate on one path at a time '{p}'"));
                }
                o.path = Some(p.to_owned());
            }
            other => return Err(format!("fsck: Illegal option '{other}'")),
        }
    }
    Ok(o)
}

/// One replica's place.
#[derive(Debug, Clone)]
pub struct Loc {
    pub addr: String,
    pub uuid: String,
    pub rack: String,
}

/// One block of a file: its live replicas and the ones known corrupt.
#[derive(Debug, Clone)]
pub struct BlockView {
    pub id: u64,
    pub gs: u64,
    pub len: u64,
    pub live: Vec<Loc>,
    pub corrupt: Vec<Loc>,
}

/// NamenodeFsck's `Result` counters.
#[derive(Debug, Default, Clone)]
pub struct Totals {
    pub missing_ids: Vec<String>,
    pub missing_size: u64,
    pub corrupt_files: u64,
    pub corrupt_blocks: u64,
    pub corrupt_size: u64,
    pub excessive_replicas: u64,
    pub missing_replicas: u64,
    pub under_min: u64,
    pub over: u64,
    pub under: u64,
    pub mis: u64,
    pub min_ok: u64,
    pub total_blocks: u64,
    pub expected_replicas: u64,
    pub open_blocks: u64,
    pub files: u64,
    pub open_files: u64,
    pub size: u64,
    pub open_size: u64,
    pub replicas: u64,
}

/// Walks results into the report text.
pub struct Checker {
    pub opts: Opts,
    pub res: Totals,
    pub out: String,
    pub dirs: u64,
    /// Racks in the cluster (mis-replication is judged only on a multi-rack cluster).
    pub num_racks: usize,
    /// Block pool named by the CORRUPT line (Tusk has one pool: its cluster id).
    pub pool: String,
    /// (block name, path) of blocks without a good replica, for -list-corruptfileblocks.
    pub corrupt_list: Vec<(String, String)>,
}

const DEFAULT_REPLICATION: u32 = 3;
const MIN_REPLICATION: u64 = 1;

fn pct(n: u64, total: u64) -> String {
    java_float((n * 100) as f32 / total as f32)
}

impl Checker {
    pub fn new(opts: Opts, num_racks: usize, pool: &str) -> Checker {
        Checker {
            opts,
            res: Totals::default(),
            out: String::new(),
            dirs: 0,
            num_racks,
            pool: pool.to_owned(),
            corrupt_list: Vec::new(),
        }
    }

    pub fn dir(&mut self, path: &str) {
        if self.opts.files {
            let _ = writeln!(self.out, "{path} <dir>");
        }
        self.dirs += 1;
    }

    fn replica_info(&self, b: &BlockView) -> String {
        if !(self.opts.locations || self.opts.racks || self.opts.replica_details) {
            return String::new();
        }
        let all: Vec<(&Loc, bool)> =
            b.live.iter().map(|l| (l, false)).chain(b.corrupt.iter().map(|l| (l, true))).collect();
        let parts: Vec<String> = all
            .iter()
            .map(|(l, corrupt)| {
                let mut s = if self.opts.racks {
                    format!("{}/{}", l.rack, l.addr)
                } else {
                    format!("DatanodeInfoWithStorage[{},{},DISK]", l.addr, l.uuid)
                };
                if self.opts.replica_details {
                    s.push_str(if *corrupt { "(CORRUPT)" } else { "(LIVE)" });
                }
                s
            })
            .collect();
        format!(" [{}]", parts.join(", "))
    }

    /// Checks one file; returns true when it has missing or corrupt blocks.
    pub fn file(&mut self, path: &str, len: u64, repl: u32, open: bool, blocks: &[BlockView]) -> bool {
        let n = blocks.len() as u64;
        if open && !self.opts.open_for_write {
            self.res.open_size += len;
            self.res.open_blocks += n;
            self.res.open_files += 1;
            return false;
        }
        self.res.files += 1;
        self.res.size += len;
        self.res.total_blocks += n;
        let policy = format!("replicated: replication={repl},");
        if self.opts.open_for_write && open {
            let _ = write!(self.out, "{path} {len} bytes, {policy} {n} block(s), OPENFORWRITE: ");
        } else if self.opts.files {
            let _ = write!(self.out, "{path} {len} bytes, {policy} {n} block(s): ");
        } else if self.opts.show_progress {
            self.out.push('.');
        }
        let (mut missing, mut corrupt, mut missize, mut corrupt_size) = (0u64, 0u64, 0u64, 0u64);
        let (mut under_pf, mut mis_pf) = (0u64, 0u64);
        let mut report = String::new();
        let target = u64::from(repl);
        for (i, b) in blocks.iter().enumerate() {
            let blk = format!("blk_{}_{}", b.id, b.gs);
            let live = b.live.len() as u64;
            self.res.replicas += live;
            let is_missing = live == 0;
            self.res.expected_replicas += target;
            if live < MIN_REPLICATION {
                self.res.under_min += 1;
            }
            if live > target {
                self.res.excessive_replicas += live - target;
                self.res.over += 1;
            }
            let is_corrupt = live == 0 && !b.corrupt.is_empty();
            if is_corrupt {
                self.res.corrupt_blocks += 1;
                self.res.corrupt_size += b.len;
                corrupt += 1;
                corrupt_size += b.len;
                let _ = write!(self.out, "\n{path}: CORRUPT blockpool {} block blk_{}\n", self.pool, b.id);
            }
            if is_missing {
                self.corrupt_list.push((format!("blk_{}", b.id), path.to_owned()));
            }
            if live >= MIN_REPLICATION {
                self.res.min_ok += 1;
            }
            if live < target && !is_missing {
                self.res.missing_replicas += target - live;
                self.res.under += 1;
                under_pf += 1;
                if !self.opts.files {
                    let _ = write!(self.out, "\n{path}: ");
                }
                let _ = writeln!(
                    self.out,
                    " Under replicated {blk}. Target Replicas is {target} but found {live} live replica(s), \
                     0 decommissioned replica(s), 0 decommissioning replica(s)."
                );
            }
            if self.num_racks > 1 {
                let racks: BTreeSet<&str> = b.live.iter().map(|l| l.rack.as_str()).collect();
                let required = target.min(2) as usize;
                if !(required <= racks.len() || racks.len() >= self.num_racks) {
                    self.res.mis += 1;
                    mis_pf += 1;
                    if !self.opts.files {
                        if under_pf == 0 {
                            self.out.push('\n');
                        }
                        let _ = write!(self.out, "{path}: ");
                    }
                    let _ = writeln!(
                        self.out,
                        " Replica placement policy is violated for {blk}. Block should be additionally \
                         replicated on {} more rack(s). Total number of racks in the cluster: {}",
                        required - racks.len(),
                        self.num_racks
                    );
                }
            }
            let _ = write!(report, "{i}. {blk} len={}", b.len);
            if is_missing && !is_corrupt {
                report.push_str(" MISSING!");
                self.res.missing_ids.push(blk.clone());
                self.res.missing_size += b.len;
                missing += 1;
                missize += b.len;
            } else {
                let _ = write!(report, " Live_repl={live}");
                let info = self.replica_info(b);
                if !info.is_empty() {
                    report.push(' ');
                    report.push_str(&info);
                }
            }
            report.push('\n');
        }
        let bad = missing > 0 || corrupt > 0;
        if bad {
            if !self.opts.files {
                if missing > 0 {
                    let _ = write!(self.out, "\n{path}: MISSING {missing} blocks of total size {missize} B.");
                }
                if corrupt > 0 {
                    let _ = write!(self.out, "\n{path}: CORRUPT {corrupt} blocks of total size {corrupt_size} B.");
                }
            }
            self.res.corrupt_files += 1;
        }
        if self.opts.files {
            if bad {
                if missing > 0 {
                    let _ = writeln!(self.out, " MISSING {missing} blocks of total size {missize} B");
                }
                if corrupt > 0 {
                    let _ = writeln!(self.out, " CORRUPT {corrupt} blocks of total size {corrupt_size} B");
                }
            } else if under_pf == 0 && mis_pf == 0 {
                self.out.push_str(" OK\n");
            }
            if self.opts.blocks {
                self.out.push_str(&report);
                self.out.push('\n');
            }
        }
        bad && !open
    }

    pub fn healthy(&self) -> bool {
        self.res.missing_ids.is_empty() && self.res.corrupt_blocks == 0
    }

    /// NamenodeFsck's ReplicationResult.toString().
    pub fn replicated_summary(&self) -> String {
        let r = &self.res;
        let mut s = format!(" Total size:\t{} B", r.size);
        if r.open_size != 0 {
            let _ = write!(s, " (Total open files size: {} B)", r.open_size);
        }
        let _ = write!(s, "\n Total files:\t{}", r.files);
        if r.open_files != 0 {
            let _ = write!(s, " (Files currently being written: {})", r.open_files);
        }
        let _ = write!(s, "\n Total blocks (validated):\t{}", r.total_blocks);
        if let Some(avg) = r.size.checked_div(r.total_blocks) {
            let _ = write!(s, " (avg. block size {avg} B)");
        }
        if r.open_blocks != 0 {
            let _ = write!(s, " (Total open file blocks (not validated): {})", r.open_blocks);
        }
        if r.corrupt_files > 0 || r.under_min > 0 {
            s.push_str("\n  ********************************");
            if r.under_min > 0 {
                let _ = write!(s, "\n  UNDER MIN REPL'D BLOCKS:\t{}", r.under_min);
                if r.total_blocks > 0 {
                    let _ = write!(s, " ({} %)", pct(r.under_min, r.total_blocks));
                }
                let _ = write!(s, "\n  dfs.namenode.replication.min:\t{MIN_REPLICATION}");
            }
            if r.corrupt_files > 0 {
                let _ = write!(s, "\n  CORRUPT FILES:\t{}", r.corrupt_files);
                if r.missing_size > 0 {
                    let _ = write!(
                        s,
                        "\n  MISSING BLOCKS:\t{}\n  MISSING SIZE:\t\t{} B",
                        r.missing_ids.len(),
                        r.missing_size
                    );
                }
                if r.corrupt_blocks > 0 {
                    let _ = write!(
                        s,
                        "\n  CORRUPT BLOCKS: \t{}\n  CORRUPT SIZE:\t\t{} B",
                        r.corrupt_blocks, r.corrupt_size
                    );
                }
            }
            s.push_str("\n  ********************************");
        }
        let with_pct = |s: &mut String, label: &str, n: u64| {
            let _ = write!(s, "\n {label}{n}");
            if r.total_blocks > 0 {
                let _ = write!(s, " ({} %)", pct(n, r.total_blocks));
            }
        };
        with_pct(&mut s, "Minimally replicated blocks:\t", r.min_ok);
        with_pct(&mut s, "Over-replicated blocks:\t", r.over);
        with_pct(&mut s, "Under-replicated blocks:\t", r.under);
        with_pct(&mut s, "Mis-replicated blocks:\t\t", r.mis);
        let factor = if r.total_blocks == 0 { 0.0 } else { r.replicas as f32 / r.total_blocks as f32 };
        let _ = write!(
            s,
            "\n Default replication factor:\t{DEFAULT_REPLICATION}\n Average block replication:\t{}\n Missing blocks:\t\t{}\n Corrupt blocks:\t\t{}\n Missing replicas:\t\t{}",
            java_float(factor),
            r.missing_ids.len(),
            r.corrupt_blocks,
            r.missing_replicas
        );
        if r.replicas > 0 {
            let _ = write!(s, " ({} %)", pct(r.missing_replicas, r.expected_replicas));
        }
        s
    }

    /// Everything from "Status:" to the erasure-coded section (no EC files exist in Tusk).
    pub fn summary(&self, datanodes: usize) -> String {
        format!(
            "\nStatus: {}\n Number of data-nodes:\t{datanodes}\n Number of racks:\t\t{}\n Total dirs:\t\t\t{}\n \
             Total symlinks:\t\t0\n\nReplicated Blocks:\n{}\n\nErasure Coded Block Groups:\n{EC_EMPTY}\n",
            if self.healthy() { "HEALTHY" } else { "CORRUPT" },
            self.num_racks,
            self.dirs,
            self.replicated_summary(),
        )
    }
}

const EC_EMPTY: &str = " Total size:\t0 B\n Total files:\t0\n Total block groups (validated):\t0\n \
Minimally erasure-coded block groups:\t0\n Over-erasure-coded block groups:\t0\n \
Under-erasure-coded block groups:\t0\n Unsatisfactory placement block groups:\t0\n \
Average block group size:\t0.0\n Missing block groups:\t\t0\n Corrupt block groups:\t\t0\n \
Missing internal blocks:\t0";

fn rack_of(rack: &str) -> String {
    if rack.is_empty() {
        "/default-rack".into()
    } else {
        rack.to_owned()
    }
}

fn loc(d: &tusk_client::DatanodeInfo) -> Loc {
    Loc { addr: format!("{}:{}", d.ip_addr, d.xfer_port), uuid: d.datanode_uuid.clone(), rack: rack_of(&d.rack) }
}

fn block_views(resp: &tusk_client::GetBlockLocationsResponse) -> Vec<BlockView> {
    resp.blocks
        .iter()
        .map(|lb| {
            let bad: BTreeSet<&str> = lb.corrupt_locations.iter().map(|d| d.datanode_uuid.as_str()).collect();
            let b = lb.block.unwrap_or_default();
            BlockView {
                id: b.block_id,
                gs: b.generation_stamp,
                len: b.num_bytes,
                live: lb.locations.iter().filter(|d| !bad.contains(d.datanode_uuid.as_str())).map(loc).collect(),
                corrupt: lb.corrupt_locations.iter().map(loc).collect(),
            }
        })
        .collect()
}

fn child(parent: &str, name: &str) -> String {
    if parent.ends_with('/') {
        format!("{parent}{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// Walks `root` depth-first in listing order, feeding the checker.
async fn walk(
    client: &Client,
    root: &str,
    st: FileStatus,
    ck: &mut Checker,
    io: &mut Io<'_>,
) -> Result<(), ClientError> {
    let mut stack = vec![(root.to_owned(), st)];
    while let Some((path, st)) = stack.pop() {
        // Stream the report as it grows (a big tree must not pile up in memory).
        if !ck.opts.list_corrupt && !ck.out.is_empty() {
            let _ = io.out.write_all(ck.out.as_bytes());
            ck.out.clear();
        }
        if st.file_type == FileType::Directory as i32 {
            ck.dir(&path);
            let entries = match client.list_all(&path).await {
                Ok((_, e)) => e,
                Err(ClientError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            for e in entries.into_iter().rev() {
                stack.push((child(&path, &e.name), e));
            }
            continue;
        }
        let resp = match client.get_block_locations(&path, 0, u64::MAX >> 1).await {
            Ok(r) => r,
            Err(ClientError::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        let open = resp.under_construction || st.under_construction;
        let bad = ck.file(&path, st.length, st.replication, open, &block_views(&resp));
        if bad && ck.opts.delete {
            client.delete(&path, true).await?;
        }
    }
    Ok(())
}

fn now() -> String {
    java_date(&chrono::Local::now())
}

fn query(user: &str, o: &Opts, path: &str) -> String {
    let mut q = format!("/fsck?ugi={user}");
    for (on, key) in [
        (o.delete, "delete"),
        (o.files, "files"),
        (o.open_for_write, "openforwrite"),
        (o.blocks, "blocks"),
        (o.locations, "locations"),
        (o.racks, "racks"),
        (o.replica_details, "replicadetails"),
        (o.show_progress, "showprogress"),
        (o.list_corrupt, "listcorruptfileblocks"),
    ] {
        if on {
            let _ = write!(q, "&{key}=1");
        }
    }
    let mut enc = String::new();
    for b in path.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => enc.push(char::from(b)),
            b' ' => enc.push('+'),
            _ => {
                let _ = write!(enc, "%{b:02X}");
            }
        }
    }
    let _ = write!(q, "&path={enc}");
    q
}

/// `tusk fsck ARGS`: returns the exit code (0 HEALTHY, 1 CORRUPT, 255 usage or failure).
pub async fn run(args: &[String], namenode: &str, user: &str, conf: &ClientConfig, io: &mut Io<'_>) -> i32 {
    let opts = match parse(args) {
        Ok(o) => o,
        Err(msg) => {
            let _ = writeln!(io.err, "{msg}\n{USAGE}");
            return EXIT_USAGE;
        }
    };
    let dir = opts.path.clone().unwrap_or_else(|| "/".into());
    let path = tusk_common::path::absolutize(&dir, &format!("/user/{user}"));
    let _ = writeln!(io.err, "Connecting to namenode via hdfs://{namenode}{}", query(user, &opts, &path));
    let client = match Client::connect(namenode, user, conf).await {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(io.err, "fsck: {e}");
            return EXIT_USAGE;
        }
    };
    let started = std::time::Instant::now();
    let result = check(&client, &opts, &dir, &path, user, started, io).await;
    let _ = io.out.flush();
    match result {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(
                io.out,
                "FSCK ended at {} in {} milliseconds\n{e}\n\n\nFsck on path '{path}' FAILED",
                now(),
                started.elapsed().as_millis()
            );
            EXIT_USAGE
        }
    }
}

async fn check(
    client: &Client,
    opts: &Opts,
    dir: &str,
    path: &str,
    user: &str,
    started: std::time::Instant,
    io: &mut Io<'_>,
) -> Result<i32, ClientError> {
    let live = client.datanode_report(DatanodeReportType::DatanodeReportLive).await?;
    let racks: BTreeSet<String> = live.iter().map(|d| rack_of(&d.rack)).collect();
    let pool = client.server_info().await.map(|i| i.cluster_id).unwrap_or_default();
    let mut ck = Checker::new(opts.clone(), racks.len(), &pool);
    if !opts.list_corrupt {
        let _ = writeln!(io.out, "FSCK started by {user} (auth:SIMPLE) from /127.0.0.1 for path {path} at {}", now());
    }
    let Some(st) = client.file_info(path).await? else {
        if opts.list_corrupt {
            let _ = writeln!(io.out, "\nThe filesystem under path '{dir}' has no CORRUPT files");
        } else {
            let _ = writeln!(io.out, "\n\nPath '{path}' does not exist");
        }
        return Ok(0);
    };
    walk(client, path, st, &mut ck, io).await?;
    if opts.list_corrupt {
        if !ck.corrupt_list.is_empty() {
            let _ = writeln!(io.out, "The list of corrupt files under path '{dir}' are:");
            for (blk, p) in &ck.corrupt_list {
                let _ = writeln!(io.out, "{blk}\t{p}");
            }
        }
        let _ = writeln!(io.out);
        if ck.corrupt_list.is_empty() {
            let _ = writeln!(io.out, "The filesystem under path '{dir}' has no CORRUPT files");
        } else {
            let _ = writeln!(io.out, "The filesystem under path '{dir}' has {} CORRUPT files", ck.corrupt_list.len());
        }
        return Ok(0);
    }
    let _ = write!(io.out, "{}", ck.out);
    let _ = write!(io.out, "{}", ck.summary(live.len()));
    let _ = writeln!(io.out, "FSCK ended at {} in {} milliseconds", now(), started.elapsed().as_millis());
    let healthy = ck.healthy();
    let _ = writeln!(
        io.out,
        "\n\nThe filesystem under path '{path}' {}",
        if healthy { "is HEALTHY" } else { "is CORRUPT" }
    );
    Ok(if healthy { 0 } else { 1 })
}

#[cfg(test)]
mod tests;
