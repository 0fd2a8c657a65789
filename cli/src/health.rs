//! `tusk health ROLE`: is the daemon of this host/container doing its job? For container
//! healthchecks (a `FROM scratch` image has no shell or curl). Exit 0 and one line when
//! healthy; exit 1 and the reason otherwise. It reads the same configuration as the daemon.

use anyhow::{bail, Context, Result};
use std::time::Duration;
use tusk_client::{Client, DatanodeReportType};
use tusk_common::config::Config;
use tusk_common::net;

const LIMIT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Role {
    /// The namenode answers RPCs (in safe mode or not).
    Namenode,
    /// The namenode lists this host's datanode as live.
    Datanode,
    /// The checkpointer's namenode answers (the checkpointer has no port of its own yet).
    Checkpointer,
    /// The jobtracker answers RPCs.
    Jobtracker,
    /// The shuffle port accepts connections and the jobtracker answers.
    Tasktracker,
    /// Datanode and tasktracker (`tusk worker`).
    Worker,
}

pub async fn check(role: Role, conf: &Config) -> Result<String> {
    tokio::time::timeout(LIMIT, async {
        match role {
            Role::Namenode => namenode(&net::connectable(&conf.namenode.rpc_address), conf).await,
            Role::Checkpointer => namenode(&conf.checkpoint.namenode, conf).await,
            Role::Datanode => datanode(conf).await,
            Role::Jobtracker => jobtracker(conf).await,
            Role::Tasktracker => tasktracker(conf).await,
            Role::Worker => Ok(format!("{}; {}", datanode(conf).await?, tasktracker(conf).await?)),
        }
    })
    .await
    .unwrap_or_else(|_| bail!("no answer within {} s", LIMIT.as_secs()))
}

async fn client(addr: &str, conf: &Config) -> Result<Client> {
    let user = tusk_common::user::os_user_name();
    Client::connect(addr, &user, &conf.client).await.with_context(|| format!("namenode at {addr}"))
}

async fn namenode(addr: &str, conf: &Config) -> Result<String> {
    let c = client(addr, conf).await?;
    let (on, _) =
        c.safe_mode(tusk_client::SafeModeAction::SafeModeGet).await.with_context(|| format!("namenode at {addr}"))?;
    Ok(format!("namenode at {addr} serving, safe mode {}", if on { "ON" } else { "OFF" }))
}

/// The namenode must list a live datanode at this host's address and transfer port.
async fn datanode(conf: &Config) -> Result<String> {
    let dc = &conf.datanode;
    let port: u16 = dc
        .xfer_address
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .with_context(|| format!("datanode.xfer_address {:?} has no port", dc.xfer_address))?;
    let ip = match dc.advertise_host.as_str() {
        // The namenode records the address the datanode connects from: the same route.
        "" | "0.0.0.0" | "::" => net::route_ip(&dc.namenode)
            .with_context(|| format!("no route to the namenode at {}", dc.namenode))?
            .to_string(),
        h => h.to_owned(),
    };
    let c = client(&dc.namenode, conf).await?;
    let live = c.datanode_report(DatanodeReportType::DatanodeReportLive).await.context("datanode report")?;
    match live.iter().find(|d| d.ip_addr == ip && d.xfer_port == u32::from(port)) {
        Some(d) => Ok(format!("datanode {ip}:{port} ({}) live", d.hostname)),
        None => bail!("the namenode at {} does not list {ip}:{port} as a live datanode", dc.namenode),
    }
}

async fn jobtracker(conf: &Config) -> Result<String> {
    use tusk_proto::mapreduce::{job_tracker_client::JobTrackerClient, ListJobsRequest};
    let addr = net::connectable(&conf.mapreduce.jobtracker);
    let mut c =
        JobTrackerClient::connect(format!("http://{addr}")).await.with_context(|| format!("jobtracker at {addr}"))?;
    let jobs =
        c.list_jobs(ListJobsRequest {}).await.with_context(|| format!("jobtracker at {addr}"))?.into_inner().jobs;
    Ok(format!("jobtracker at {addr} serving, {} jobs known", jobs.len()))
}

async fn tasktracker(conf: &Config) -> Result<String> {
    let shuffle = net::connectable(&conf.mapreduce.shuffle_address);
    tokio::net::TcpStream::connect(&shuffle).await.with_context(|| format!("shuffle port {shuffle}"))?;
    let jt = jobtracker(conf).await?;
    Ok(format!("shuffle at {shuffle} open; {jt}"))
}
