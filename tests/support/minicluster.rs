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
    pub fsn: Arc<Namesystem>,
    nn_stop: Option<tokio::sync::oneshot::Sender<()>>,
    nn_task: Option<tokio::task::JoinHandle<()>>,
    pub datanodes: Vec<Option<DatanodeHandle>>,
    dn_dirs: Vec<PathBuf>,
}

pub fn nn_config(dir: PathBuf) -> NamesystemConfig {
    let mut c = NamesystemConfig::from_config(&Default::default(), dir.clone());
    c.name_dirs = vec![dir];
    c.superuser = "root".into();
    c.heartbeat_expiry = Duration::from_secs(4);
    c
}

impl MiniCluster {
    pub async fn start(datanodes: usize) -> MiniCluster {
        let tmp = tempfile::tempdir().expect("tempdir");
        let conf = nn_config(tmp.path().join("name"));
        let fsn = Arc::new(
            tokio::task::spawn_blocking(move || Namesystem::open(conf)).await.unwrap().expect("namenode opens"),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let nn_addr = listener.local_addr().unwrap().to_string();
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
        let dn_dirs: Vec<PathBuf> = (0..datanodes).map(|i| tmp.path().join(format!("data{i}"))).collect();
        let mut mc =
            MiniCluster { tmp, nn_addr, fsn, nn_stop: Some(tx), nn_task: Some(task), datanodes: Vec::new(), dn_dirs };
        for i in 0..datanodes {
            let dn = mc.start_datanode_at(i).await;
            mc.datanodes.push(Some(dn));
        }
        mc.wait_live(datanodes).await;
        mc
    }

    fn dn_config(&self, i: usize) -> DatanodeConfig {
        DatanodeConfig {
            namenode: self.nn_addr.clone(),
            data_dirs: vec![self.dn_dirs[i].clone()],
            xfer_address: "127.0.0.1:0".into(),
            heartbeat_interval_ms: 300,
            ..Default::default()
        }
    }

    async fn start_datanode_at(&self, i: usize) -> DatanodeHandle {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        tusk_datanode::start(self.dn_config(i), listener).await.expect("datanode starts")
    }

    pub async fn client(&self, user: &str) -> Client {
        Client::connect(&self.nn_addr, user, &ClientConfig::default()).await.expect("client connects")
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

    pub async fn restart_datanode(&mut self, i: usize) {
        self.stop_datanode(i).await;
        let dn = self.start_datanode_at(i).await;
        self.datanodes[i] = Some(dn);
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
        if let Some(tx) = self.nn_stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.nn_task.take() {
            let _ = t.await;
        }
    }
}
