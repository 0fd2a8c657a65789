//! Configuration: one TOML file (`--config` or `TUSK_CONF`), overridden by environment
//! variables `TUSK_<SECTION>__<KEY>` (what a container wants), overridden by command-line
//! flags (applied by the caller on the returned struct). Every key has a default that suits
//! the pseudo-cluster; `docs/configuration.md` lists them.

use serde::{Deserialize, Deserializer};
use std::path::{Path, PathBuf};

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: String, message: String },
}

/// Sections `TUSK_<SECTION>__<KEY>` variables may set.
const KNOWN_SECTIONS: &[&str] = &["namenode", "client", "datanode", "checkpoint", "mapreduce"];

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub namenode: NamenodeConfig,
    pub client: ClientConfig,
    pub datanode: DatanodeConfig,
    pub checkpoint: CheckpointConfig,
    pub mapreduce: MapReduceConfig,
}

/// MapReduce: the jobtracker and the tasktrackers (HDFS's mapred.*).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MapReduceConfig {
    /// The jobtracker's RPC address (mapred.job.tracker; Hadoop 1's port 8021).
    pub jobtracker: String,
    /// Address the jobtracker's HTTP server (web pages, /metrics) binds (Hadoop 1's
    /// mapred.job.tracker.http.address). Empty: the RPC address's host, port 50030 (0 when
    /// the RPC port is 0). `off`: none.
    pub jobtracker_http_address: String,
    /// The namenode the jobtracker and the trackers read and write through.
    pub namenode: String,
    /// The address a tasktracker's shuffle service binds (Hadoop 1's port 50060).
    pub shuffle_address: String,
    /// The host of the datanode a tasktracker sits beside (locality); default: the IP of
    /// its shuffle address.
    pub datanode_host: String,
    /// Where a tasktracker keeps map output.
    pub local_dir: PathBuf,
    /// Where the jobtracker keeps job history (RocksDB).
    pub jobtracker_dir: PathBuf,
    /// Slots per tracker (default: the number of cores).
    pub map_slots: u32,
    pub reduce_slots: u32,
    pub heartbeat_interval_ms: u64,
    /// A tracker silent this long is lost: its tasks run again elsewhere.
    pub tracker_expiry_ms: u64,
    /// Attempts a task gets before its job fails (mapred.map.max.attempts).
    pub max_attempts: u32,
    /// A tasktracker made slow on purpose: each attempt waits this long first (tests, demos).
    pub slow_down_ms: u64,
}

impl Default for MapReduceConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(2);
        Self {
            jobtracker: "127.0.0.1:8021".into(),
            jobtracker_http_address: String::new(),
            namenode: "127.0.0.1:9000".into(),
            shuffle_address: "127.0.0.1:50060".into(),
            datanode_host: String::new(),
            local_dir: PathBuf::from("./tusk-data/mapred"),
            jobtracker_dir: PathBuf::from("./tusk-data/jobtracker"),
            map_slots: cores,
            reduce_slots: cores,
            heartbeat_interval_ms: 500,
            tracker_expiry_ms: 30_000,
            max_attempts: 4,
            slow_down_ms: 0,
        }
    }
}

/// Checkpoints (HDFS's dfs.namenode.checkpoint.*): read by the checkpointer, and by the
/// namenode for retention and its "no checkpoint for long" warning.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckpointConfig {
    /// The namenode's RPC address, for the checkpointer.
    pub namenode: String,
    /// The checkpointer's directory (its images and the edits it fetched). Empty =
    /// `./tusk-data/checkpoint`.
    pub dir: PathBuf,
    /// Seconds between checkpoints (HDFS: dfs.namenode.checkpoint.period = 3600).
    pub period: u64,
    /// Checkpoint as soon as this many transactions are not in an image yet
    /// (dfs.namenode.checkpoint.txns = 1,000,000).
    pub txns: u64,
    /// Seconds between the checkpointer's looks at the namenode
    /// (dfs.namenode.checkpoint.check.period = 60).
    pub check_period: u64,
    /// Images kept by the namenode and the checkpointer, with the edits needed to roll
    /// forward from the oldest (dfs.namenode.num.checkpoints.retained = 2).
    pub retained_images: usize,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            namenode: "127.0.0.1:9000".into(),
            dir: PathBuf::new(),
            period: 3600,
            txns: 1_000_000,
            check_period: 60,
            retained_images: 2,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatanodeConfig {
    /// The namenode's RPC address (`host:port`).
    pub namenode: String,
    /// Data directories (volumes). Empty = `./tusk-data/data`.
    #[serde(deserialize_with = "string_or_list")]
    pub data_dirs: Vec<PathBuf>,
    /// Address the data transfer server binds (`0` as port picks a free one).
    pub xfer_address: String,
    /// Host or IP address clients and other datanodes use to reach this one. Empty: the
    /// address the namenode sees the registration come from (HDFS's behaviour).
    pub advertise_host: String,
    /// Address the HTTP server (status page, /metrics, WebHDFS data) binds (HDFS
    /// dfs.datanode.http.address); its port is registered with the namenode. Empty: the
    /// transfer address's host, port 9864 (0 when the transfer port is 0). `off`: none.
    pub http_address: String,
    pub heartbeat_interval_ms: u64,
    /// Full block report period (HDFS: 6 hours).
    pub block_report_interval_ms: u64,
    /// Fsync a replica's block and meta files when it is finalized.
    pub sync_on_close: bool,
    /// Concurrent data transfer connections served (a limit on everything).
    pub max_transfers: usize,
    /// Seconds between two passes of the block scanner over every replica
    /// (HDFS: dfs.datanode.scan.period.hours = 504, three weeks). 0 disables it.
    pub scan_period_secs: u64,
    /// Average read rate of the block scanner in bytes per second
    /// (HDFS: dfs.block.scanner.volume.bytes.per.second = 1 MiB). 0 = unlimited.
    pub scan_bytes_per_sec: u64,
    /// Failed data directories the datanode runs on with; one more stops it
    /// (HDFS: dfs.datanode.failed.volumes.tolerated).
    pub failed_volumes_tolerated: u32,
    /// How often every data directory is checked, in milliseconds.
    pub volume_check_interval_ms: u64,
    /// Serve short-circuit local reads: clients on this host get the descriptors of a
    /// finalized replica's files over the Unix socket `@tusk-datanode-<uuid>` and read them
    /// directly (HDFS dfs.client.read.shortcircuit with dfs.domain.socket.path).
    pub short_circuit: bool,
}

impl Default for DatanodeConfig {
    fn default() -> Self {
        Self {
            namenode: "127.0.0.1:9000".into(),
            data_dirs: Vec::new(),
            xfer_address: "127.0.0.1:9866".into(),
            advertise_host: "127.0.0.1".into(),
            http_address: String::new(),
            heartbeat_interval_ms: 3_000,
            block_report_interval_ms: 6 * 3600 * 1000,
            sync_on_close: true,
            max_transfers: 4096,
            scan_period_secs: 504 * 3600,
            scan_bytes_per_sec: 1 << 20,
            failed_volumes_tolerated: 0,
            volume_check_interval_ms: 60_000,
            short_circuit: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NamenodeConfig {
    /// Address the client RPC server binds (`0` as port picks a free one).
    pub rpc_address: String,
    /// Address the HTTP server (web pages, /metrics, WebHDFS) binds (HDFS
    /// dfs.namenode.http-address). Empty: the RPC address's host, port 9870 (0 when the RPC
    /// port is 0). `off`: none.
    pub http_address: String,
    /// Name directories; every one gets every edit and image. Empty = `./tusk-data/name`.
    #[serde(deserialize_with = "string_or_list")]
    pub name_dirs: Vec<PathBuf>,
    /// Fraction of blocks that must have a reported replica before safe mode ends.
    pub safemode_threshold_pct: f64,
    /// How long safe mode lasts after the threshold is met, in milliseconds.
    pub safemode_extension_ms: u64,
    /// Members of this group are superusers, besides the user running the namenode.
    pub superuser_group: String,
    /// Default replication for files whose creator does not choose one.
    pub default_replication: u32,
    /// Default block size in bytes.
    pub default_block_size: u64,
    /// Most entries returned by one listing call (HDFS: dfs.ls.limit).
    pub ls_limit: usize,
    /// Most children one directory may hold (HDFS: max-directory-items).
    pub max_directory_items: usize,
    /// A datanode silent this long is dead (HDFS: 2 x recheck + 10 x heartbeat = 10.5 min).
    pub heartbeat_expiry_ms: u64,
    /// Replicas a block needs before its file can be closed.
    pub min_replication: u32,
    /// Rack of each datanode, by `ip:port`, `host:port`, IP or host name (HDFS's
    /// TableMapping): `racks = { "10.0.0.5" = "/dc1/rack1" }`. Unlisted: `/default-rack`.
    pub racks: std::collections::BTreeMap<String, String>,
    /// A file of `host rack` lines, as HDFS's net.topology.table.file.name; read at start,
    /// entries of `racks` win.
    pub topology_file: PathBuf,
    /// Datanodes to decommission: a file of host names, IPs or `host:port`, one per line
    /// (HDFS's dfs.hosts.exclude), read at start and by `tusk dfsadmin -refreshNodes`.
    pub hosts_exclude: PathBuf,
    /// A writer silent this long loses its files to another writer that asks (HDFS's lease
    /// soft limit, 60 s).
    pub lease_soft_limit_ms: u64,
    /// A writer silent this long has its files recovered and closed by the namenode (HDFS: 1 h).
    pub lease_hard_limit_ms: u64,
}

impl Default for NamenodeConfig {
    fn default() -> Self {
        Self {
            rpc_address: "127.0.0.1:9000".into(),
            http_address: String::new(),
            name_dirs: Vec::new(),
            safemode_threshold_pct: 0.999,
            safemode_extension_ms: 0,
            superuser_group: "supergroup".into(),
            default_replication: 3,
            default_block_size: 128 * 1024 * 1024,
            ls_limit: 1000,
            max_directory_items: 1_048_576,
            heartbeat_expiry_ms: 630_000,
            min_replication: 1,
            racks: Default::default(),
            topology_file: PathBuf::new(),
            hosts_exclude: PathBuf::new(),
            lease_soft_limit_ms: 60_000,
            lease_hard_limit_ms: 3_600_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    /// The namenode's RPC address (`host:port`).
    pub namenode: String,
    /// How long a client waits to connect before giving up, in milliseconds.
    pub connect_timeout_ms: u64,
    /// How long one metadata call may take, in milliseconds.
    pub rpc_timeout_ms: u64,
    /// Permission bits removed from every file and directory a client creates (a number, or
    /// an octal string such as "022" as Hadoop's fs.permissions.umask-mode).
    #[serde(deserialize_with = "octal")]
    pub umask: u32,
    /// Block size of files this client creates; 0 = the namenode's default
    /// (`-D dfs.blocksize=N` on the command line).
    pub block_size: u64,
    /// Replication of files this client creates; 0 = the namenode's default
    /// (`-D dfs.replication=N`).
    pub replication: u32,
    /// How often a client with files open for writing renews its lease (HDFS: 30 s, half
    /// the namenode's soft limit).
    pub lease_renew_interval_ms: u64,
    /// Read replicas held by a datanode on this host directly from its files (short-circuit
    /// local reads, HDFS dfs.client.read.shortcircuit) when that datanode offers them; off,
    /// or when it does not, reads go over TCP.
    pub read_shortcircuit: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            namenode: "127.0.0.1:9000".into(),
            connect_timeout_ms: 3_000,
            rpc_timeout_ms: 60_000,
            umask: 0o022,
            block_size: 0,
            replication: 0,
            lease_renew_interval_ms: 30_000,
            read_shortcircuit: true,
        }
    }
}

fn octal<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrText {
        Num(u32),
        Text(String),
    }
    match NumOrText::deserialize(d)? {
        NumOrText::Num(n) => Ok(n),
        NumOrText::Text(s) => u32::from_str_radix(s.trim(), 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not an octal mode like \"022\""))),
    }
}

fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PathBuf>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s.split(',').filter(|p| !p.trim().is_empty()).map(|p| PathBuf::from(p.trim())).collect(),
        OneOrMany::Many(v) => v.into_iter().map(PathBuf::from).collect(),
    })
}

impl Config {
    /// Loads `file` (or `TUSK_CONF` when `file` is `None`; defaults when neither), then
    /// applies `TUSK_<SECTION>__<KEY>` variables from `env`.
    pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let from_env = env.iter().find(|(k, _)| k == "TUSK_CONF").map(|(_, v)| PathBuf::from(v));
        let path = file.map(Path::to_path_buf).or(from_env);
        let mut table = match &path {
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).map_err(|source| ConfigError::Read { path: p.clone(), source })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Parse { path: p.display().to_string(), message: e.to_string() })?
            }
            None => toml::Table::new(),
        };
        for (key, value) in &env {
            let Some(rest) = key.strip_prefix("TUSK_") else { continue };
            let Some((section, field)) = rest.split_once("__") else { continue };
            let section = section.to_ascii_lowercase();
            // Sections of daemons this build does not have yet are left for them.
            if !KNOWN_SECTIONS.contains(&section.as_str()) {
                continue;
            }
            let field = field.to_ascii_lowercase();
            let parsed = format!("v = {value}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| toml::Value::String(value.clone()));
            let entry = table.entry(section).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(t) = entry {
                t.insert(field, parsed);
            }
        }
        let source = path.map(|p| p.display().to_string()).unwrap_or_else(|| "(environment)".into());
        Config::deserialize(toml::Value::Table(table))
            .map_err(|e| ConfigError::Parse { path: source, message: e.to_string() })
    }

    /// Loads from `file` and the process environment.
    pub fn load_from_env(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load(file, std::env::vars())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_suit_the_pseudo_cluster() {
        let c = Config::load(None, Vec::new()).unwrap();
        assert_eq!(c.namenode.rpc_address, "127.0.0.1:9000");
        assert_eq!(c.client.namenode, "127.0.0.1:9000");
        assert_eq!(c.client.umask, 0o022);
    }

    #[test]
    fn file_then_env_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tusk.toml");
        std::fs::write(
            &p,
            "[namenode]\nrpc_address = \"127.0.0.1:9100\"\nname_dirs = [\"/a\", \"/b\"]\nls_limit = 5\n",
        )
        .unwrap();
        let env = vec![
            ("TUSK_NAMENODE__LS_LIMIT".to_string(), "7".to_string()),
            ("TUSK_CLIENT__NAMENODE".to_string(), "nn:9000".to_string()),
            ("TUSK_USER".to_string(), "ignored".to_string()),
        ];
        let c = Config::load(Some(&p), env).unwrap();
        assert_eq!(c.namenode.rpc_address, "127.0.0.1:9100");
        assert_eq!(c.namenode.name_dirs, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
        assert_eq!(c.namenode.ls_limit, 7);
        assert_eq!(c.client.namenode, "nn:9000");
    }

    #[test]
    fn comma_separated_dirs_from_env_and_unknown_keys_refused() {
        let env = vec![("TUSK_NAMENODE__NAME_DIRS".to_string(), "/x,/y".to_string())];
        let c = Config::load(None, env).unwrap();
        assert_eq!(c.namenode.name_dirs.len(), 2);
        let env = vec![
            ("TUSK_CLIENT__UMASK".to_string(), "027".to_string()),
            ("TUSK_JOBTRACKER__LATER".to_string(), "1".to_string()),
        ];
        assert_eq!(Config::load(None, env).unwrap().client.umask, 0o27);
        let env = vec![("TUSK_NAMENODE__NO_SUCH_KEY".to_string(), "1".to_string())];
        let e = Config::load(None, env).unwrap_err().to_string();
        assert!(e.contains("no_such_key"), "{e}");
    }
}
