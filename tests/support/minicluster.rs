//! An in-process MiniCluster: a namenode and N datanodes on ephemeral ports and temporary
//! directories, with hooks to stop and restart a datanode and to corrupt a replica.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tusk_client::{Client, DatanodeReportType};
use tusk_common::config::{ClientConfig, DatanodeConfig};
use tusk_datanode::DatanodeHandle;
use tusk_namenode::{Namesystem, NamesystemConfig};

pub struct MiniCluster {
    pub tmp: tempfile::TempDir,
    pub nn_addr: String,
    fsn: Option<Arc<Namesystem>>,
    nn_stop: Option<tokio::sync::oneshot::Sender<()>>,
    nn_task: Option<tokio::task::JoinHandle<()>>,
    pub datanodes: Vec<Option<DatanodeHandle>>,
    dn_dirs: Vec<PathBuf>,
    /// Block scanner period of datanodes started from now on (0: no scanner, the default
    /// here so that tests do not scan behind each other's backs).
    pub scan_period_secs: u64,
    /// Data directories per datanode started from now on (`dataN/v0`, `dataN/v1`, ... when
    /// more than one), and how many of them may fail before it stops.
    pub volumes: usize,
    pub failed_volumes_tolerated: u32,
    /// The namenode's lease soft limit from its next start on.
    pub lease_soft_limit: Duration,
    /// The namenode's lease hard limit from its next start on.
    pub lease_hard_limit: Duration,
    /// Address each datanode binds and advertises (loopback 127.0.0.N for racked clusters).
    dn_ips: Vec<String>,
    /// Namenode rack table (by datanode IP).
    racks: std::collections::BTreeMap<String, String>,
}

pub fn nn_config(dir: PathBuf) -> NamesystemConfig {
    let mut c = NamesystemConfig::from_config(&Default::default(), &Default::default(), dir.clone())
        .expect("default configuration");
    c.name_dirs = vec![dir];
    c.superuser = "root".into();
    c.heartbeat_expiry = Duration::from_secs(4);
    c
}

impl MiniCluster {
    pub async fn start(datanodes: usize) -> MiniCluster {
        Self::start_on(vec!["127.0.0.1".to_string(); datanodes], Default::default()).await
    }

    /// Datanode `i` on 127.0.0.`i+1`, in rack `racks[i]` (the namenode's table maps the IPs).
    pub async fn start_with_racks(racks: &[&str]) -> MiniCluster {
        let ips: Vec<String> = (0..racks.len()).map(|i| format!("127.0.0.{}", i + 1)).collect();
        let table = ips.iter().zip(racks).map(|(ip, r)| (ip.clone(), (*r).to_owned())).collect();
        Self::start_on(ips, table).await
    }

    async fn start_on(dn_ips: Vec<String>, racks: std::collections::BTreeMap<String, String>) -> MiniCluster {
        let datanodes = dn_ips.len();
        let tmp = tempfile::tempdir().expect("tempdir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let nn_addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let dn_dirs: Vec<PathBuf> = (0..datanodes).map(|i| tmp.path().join(format!("data{i}"))).collect();
        let mut mc = MiniCluster {
            tmp,
            nn_addr,
            fsn: None,
            nn_stop: None,
            nn_task: None,
            datanodes: Vec::new(),
            dn_dirs,
            scan_period_secs: 0,
            volumes: 1,
            failed_volumes_tolerated: 0,
            lease_soft_limit: Duration::from_secs(60),
            lease_hard_limit: Duration::from_secs(3600),
            dn_ips,
            racks,
        };
        mc.start_namenode().await;
        for i in 0..datanodes {
            let dn = mc.start_datanode_at(i).await;
            mc.datanodes.push(Some(dn));
        }
        mc.wait_live(datanodes).await;
        mc
    }

    /// The running namenode's namesystem.
    pub fn fsn(&self) -> &Arc<Namesystem> {
        self.fsn.as_ref().expect("the namenode is running")
    }

    /// The namenode's exclude file (empty at start): write datanodes into it, then
    /// `dfsadmin -refreshNodes`.
    pub fn exclude_file(&self) -> PathBuf {
        self.tmp.path().join("exclude")
    }

    pub fn name_dir(&self) -> PathBuf {
        self.tmp.path().join("name")
    }

    /// Starts the namenode on `nn_addr` from the name directory (a restart when it ran
    /// before: datanodes find it again at the same address).
    pub async fn start_namenode(&mut self) {
        assert!(self.fsn.is_none(), "the namenode is already running");
        let deadline = Instant::now() + Duration::from_secs(20);
        let fsn = loop {
            let mut conf = nn_config(self.name_dir());
            conf.topology = tusk_namenode::topology::Topology::load(&self.racks, None).expect("rack table");
            let exclude = self.exclude_file();
            if !exclude.exists() {
                std::fs::write(&exclude, "").unwrap();
            }
            conf.hosts_exclude = Some(exclude);
            conf.lease_soft_limit = self.lease_soft_limit;
            conf.lease_hard_limit = self.lease_hard_limit;
            match tokio::task::spawn_blocking(move || Namesystem::open(conf)).await.unwrap() {
                Ok(f) => break Arc::new(f),
                // The previous namenode's last tasks may still hold the directory lock.
                Err(e) if e.to_string().contains("in use") && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("namenode does not open: {e}"),
            }
        };
        let listener = loop {
            match tokio::net::TcpListener::bind(&self.nn_addr).await {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("cannot bind {}: {e}", self.nn_addr),
            }
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn({
            let fsn = fsn.clone();
            async move {
                let _ = tusk_namenode::server::run(fsn, listener, async {
                    let _ = rx.await;
                })
                .await;
            }
        });
        self.fsn = Some(fsn);
        self.nn_stop = Some(tx);
        self.nn_task = Some(task);
    }

    /// Stops the namenode (its edit log flushed and closed); datanodes keep running.
    pub async fn stop_namenode(&mut self) {
        if let Some(tx) = self.nn_stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.nn_task.take() {
            let _ = t.await;
        }
        self.fsn = None;
    }

    pub async fn restart_namenode(&mut self) {
        self.stop_namenode().await;
        self.start_namenode().await;
    }

    fn dn_config(&self, i: usize) -> DatanodeConfig {
        DatanodeConfig {
            namenode: self.nn_addr.clone(),
            data_dirs: self.data_dirs(i),
            xfer_address: format!("{}:0", self.dn_ips[i]),
            advertise_host: self.dn_ips[i].clone(),
            heartbeat_interval_ms: 300,
            scan_period_secs: self.scan_period_secs,
            scan_bytes_per_sec: 0,
            failed_volumes_tolerated: self.failed_volumes_tolerated,
            volume_check_interval_ms: 300,
            ..Default::default()
        }
    }

    /// The data directories of datanode `i`.
    pub fn data_dirs(&self, i: usize) -> Vec<PathBuf> {
        if self.volumes <= 1 {
            vec![self.dn_dirs[i].clone()]
        } else {
            (0..self.volumes).map(|v| self.dn_dirs[i].join(format!("v{v}"))).collect()
        }
    }

    async fn start_datanode_at(&self, i: usize) -> DatanodeHandle {
        let listener = tokio::net::TcpListener::bind(format!("{}:0", self.dn_ips[i])).await.unwrap();
        tusk_datanode::start(self.dn_config(i), listener).await.expect("datanode starts")
    }

    pub async fn client(&self, user: &str) -> Client {
        self.client_with(user, &ClientConfig::default()).await
    }

    pub async fn client_with(&self, user: &str, conf: &ClientConfig) -> Client {
        Client::connect(&self.nn_addr, user, conf).await.expect("client connects")
    }

    /// Waits until the namenode counts `n` live datanodes.
    pub async fn wait_live(&self, n: usize) {
        let c = self.client("root").await;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let live = c.datanode_report(DatanodeReportType::DatanodeReportLive).await.map(|v| v.len()).unwrap_or(0);
            if live == n {
                return;
            }
            assert!(Instant::now() < deadline, "{live} live datanodes, want {n}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn stop_datanode(&mut self, i: usize) {
        if let Some(dn) = self.datanodes[i].take() {
            dn.shutdown().await;
        }
    }

    /// Restarts datanode `i` (on a new port) and waits until the namenode knows its new address.
    pub async fn restart_datanode(&mut self, i: usize) {
        self.stop_datanode(i).await;
        let dn = self.start_datanode_at(i).await;
        let (uuid, port) = (dn.uuid(), u32::from(dn.xfer_addr().port()));
        self.datanodes[i] = Some(dn);
        let c = self.client("root").await;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let nodes = c.datanode_report(DatanodeReportType::DatanodeReportLive).await.unwrap_or_default();
            if nodes.iter().any(|d| d.datanode_uuid == uuid && d.xfer_port == port) {
                return;
            }
            assert!(Instant::now() < deadline, "restarted datanode {i} never registered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Flips one byte in the middle of datanode `i`'s replica of `block_id`.
    pub fn corrupt_replica(&self, i: usize, block_id: u64) -> bool {
        let Some(dn) = &self.datanodes[i] else { return false };
        let Some(path) = dn.block_file(block_id) else { return false };
        let mut bytes = std::fs::read(&path).expect("read block file");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&path, bytes).expect("write block file");
        true
    }

    /// Index of the datanode whose uuid is `uuid`.
    pub fn index_of(&self, uuid: &str) -> Option<usize> {
        self.datanodes.iter().position(|d| d.as_ref().is_some_and(|d| d.uuid() == uuid))
    }

    pub async fn shutdown(mut self) {
        for i in 0..self.datanodes.len() {
            self.stop_datanode(i).await;
        }
        self.stop_namenode().await;
    }
}

/// Reproducible pseudo-random bytes.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Writes `data` as `path` with replication 3 and `block_size`.
pub async fn write_file(c: &Client, path: &str, data: &[u8], block_size: u64) {
    let mut w = c.create(path, false, 3, block_size).await.expect("create");
    for chunk in data.chunks(100_000) {
        w.write(chunk).await.expect("write");
    }
    assert_eq!(w.close().await.expect("close"), data.len() as u64);
}

/// Reads `path` whole.
pub async fn read_all(c: &Client, path: &str) -> Vec<u8> {
    let mut r = c.open(path).await.expect("open");
    let mut out = Vec::new();
    let mut buf = vec![0u8; 70_000];
    loop {
        let n = r.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}
