//! The `tusk` binary: argument parsing and dispatch only. Daemons and clients live in their
//! crates; this file turns a command line into a call on one of them.

mod daemons;
mod health;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use tusk_common::config::Config;

#[derive(Parser)]
#[command(
    name = "tusk",
    version,
    about = "Tusk: an HDFS-like distributed file system with MapReduce",
    disable_help_subcommand = true
)]
struct Cli {
    /// Configuration file (TOML). Default: $TUSK_CONF, else built-in defaults.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the namenode (or format its name directories with --format / -format).
    Namenode(NamenodeArgs),
    /// Run a datanode.
    Datanode(DatanodeArgs),
    /// Run the checkpointer (secondary namenode), or take one checkpoint with --once.
    Checkpointer(CheckpointerArgs),
    /// The embedded pseudo-cluster.
    Cluster {
        #[command(subcommand)]
        action: ClusterAction,
    },
    /// The file system shell (hdfs dfs): tusk fs -ls /, tusk fs -mkdir -p /a/b, ...
    #[command(disable_help_flag = true)]
    Fs(ShellArgs),
    /// Alias of `tusk fs`.
    #[command(disable_help_flag = true)]
    Dfs(ShellArgs),
    /// Administration (hdfs dfsadmin): -safemode get|enter|leave|wait, -saveNamespace, -report.
    #[command(disable_help_flag = true)]
    Dfsadmin(ShellArgs),
    /// Check the health of the file system (hdfs fsck): tusk fsck / -files -blocks -locations
    #[command(disable_help_flag = true)]
    Fsck(ShellArgs),
    /// Debugging tools (hdfs debug): tusk debug recoverLease -path P [-retries N]
    #[command(disable_help_flag = true)]
    Debug(ShellArgs),
    /// Run the jobtracker (MapReduce v1).
    Jobtracker,
    /// Run a tasktracker (beside a datanode).
    Tasktracker,
    /// Run a datanode and a tasktracker in one process (one container of a compose cluster).
    Worker {
        /// Take the first free slot DIR/worker-N (locked while running) for the datanode's
        /// data and the tracker's work: replicas sharing one volume each keep their own.
        #[arg(long, value_name = "DIR")]
        slots: Option<PathBuf>,
    },
    /// Exit 0 if this host's daemon of ROLE is healthy, 1 with the reason if not (for
    /// container healthchecks); reads the daemon's configuration.
    Health {
        #[arg(value_enum)]
        role: health::Role,
    },
    /// MapReduce jobs: tusk job run wordcount IN OUT [-r N] | status ID | list
    #[command(disable_help_flag = true)]
    Job(ShellArgs),
    /// Mount the file system with FUSE: tusk mount MOUNTPOINT [--namenode A] [--daemon] [-o allow_other,ro]
    Mount(MountCliArgs),
    /// Print the version.
    Version,
}

#[derive(Args)]
struct MountCliArgs {
    /// An existing, empty directory.
    mountpoint: PathBuf,
    /// The namenode's RPC address (default: TUSK_NAMENODE, then client.namenode).
    #[arg(long)]
    namenode: Option<String>,
    /// Detach and log to a file; returns once the mount is there.
    #[arg(long)]
    daemon: bool,
    /// Where the daemon logs (default /tmp/tusk-mount-<pid>.log).
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Mount options, comma-separated (allow_other, ro, default_permissions, ...).
    #[arg(short = 'o', value_name = "OPTIONS")]
    options: Vec<String>,
}

#[derive(Args)]
struct DatanodeArgs {
    /// A data directory (repeat for several volumes). Overrides the config.
    #[arg(long = "data-dir", value_name = "DIR")]
    data_dirs: Vec<PathBuf>,
    /// The namenode's RPC address.
    #[arg(long)]
    namenode: Option<String>,
    /// Address the data transfer server binds (port 0 picks a free one).
    #[arg(long)]
    xfer_address: Option<String>,
}

#[derive(Args)]
struct CheckpointerArgs {
    /// The namenode's RPC address. Overrides checkpoint.namenode.
    #[arg(long)]
    namenode: Option<String>,
    /// The checkpointer's directory. Overrides checkpoint.dir.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Take one checkpoint now and exit.
    #[arg(long)]
    once: bool,
}

#[derive(Args)]
struct NamenodeArgs {
    /// A name directory (repeat for several; all are kept in step). Overrides the config.
    #[arg(long = "name-dir", value_name = "DIR")]
    name_dirs: Vec<PathBuf>,
    /// RPC address to bind (port 0 picks a free one and prints it).
    #[arg(long)]
    rpc_address: Option<String>,
    /// Format the name directories and exit.
    #[arg(long)]
    format: bool,
    /// With --format: erase name directories that already hold a file system.
    #[arg(long)]
    force: bool,
    /// With --format: the cluster id to use (default: a new random one).
    #[arg(long)]
    clusterid: Option<String>,
    /// Fill the (empty) name directories from the newest image in a checkpointer's
    /// directory (default: checkpoint.dir), then run. Edits after that checkpoint are lost.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = "")]
    import_checkpoint: Option<PathBuf>,
}

#[derive(Subcommand)]
enum ClusterAction {
    /// Start a namenode (datanodes, checkpointer and MapReduce join in later issues) in the
    /// foreground, state under --dir.
    Up {
        #[arg(long, default_value = "./tusk-data")]
        dir: PathBuf,
        /// Datanodes to start, each with its own data directory under --dir.
        #[arg(long, default_value_t = 3)]
        datanodes: u32,
        /// Namenode RPC port on 127.0.0.1 (default: the port of namenode.rpc_address, 9000).
        #[arg(long)]
        port: Option<u16>,
    },
}

#[derive(Args)]
struct ShellArgs {
    /// Namenode address (host:port). Default: $TUSK_NAMENODE, else the config, else 127.0.0.1:9000.
    #[arg(long)]
    namenode: Option<String>,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    args: Vec<String>,
}

/// Hadoop spells long options with one dash (`-format`, `-force`); accept that too.
fn hadoop_style(argv: Vec<String>) -> Vec<String> {
    let is_namenode = argv.iter().any(|a| a == "namenode");
    argv.into_iter()
        .map(|a| match a.as_str() {
            "-format" | "-force" | "-clusterid" if is_namenode => format!("-{a}"),
            "-importCheckpoint" if is_namenode => "--import-checkpoint".into(),
            _ => a,
        })
        .collect()
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TUSK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only on a terminal: a log file gets plain `key=value` fields.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}

/// Takes Hadoop's generic options (`-fs ADDR`, `-D key=value`) off the front. Understood
/// keys: fs.defaultFS, dfs.blocksize, dfs.replication; others are refused.
fn generic_options(
    args: &mut Vec<String>,
    namenode: &mut Option<String>,
    client: &mut tusk_common::config::ClientConfig,
) -> Result<()> {
    loop {
        match args.first().map(String::as_str) {
            Some("-fs") | Some("--namenode") if args.len() > 1 => {
                let v = args.remove(1);
                args.remove(0);
                *namenode = Some(v);
            }
            Some("-D") if args.len() > 1 => {
                let v = args.remove(1);
                args.remove(0);
                let (key, value) = v.split_once('=').ok_or_else(|| anyhow::anyhow!("-D {v}: expected key=value"))?;
                match key {
                    "fs.defaultFS" | "fs.default.name" => *namenode = Some(value.to_owned()),
                    "dfs.blocksize" | "dfs.block.size" => {
                        client.block_size = parse_size(value).ok_or_else(|| anyhow::anyhow!("-D {v}: not a size"))?
                    }
                    "dfs.replication" => {
                        client.replication = value.parse().map_err(|_| anyhow::anyhow!("-D {v}: not a number"))?
                    }
                    _ => {
                        anyhow::bail!("-D {key}: unknown setting (known: fs.defaultFS, dfs.blocksize, dfs.replication)")
                    }
                }
            }
            _ => break,
        }
    }
    Ok(())
}

/// `134217728`, `128m`, `1g` (Hadoop's getLongBytes suffixes k, m, g, t).
fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim().to_ascii_lowercase();
    let (num, mult) = match v.chars().last()? {
        'k' => (&v[..v.len() - 1], 1u64 << 10),
        'm' => (&v[..v.len() - 1], 1 << 20),
        'g' => (&v[..v.len() - 1], 1 << 30),
        't' => (&v[..v.len() - 1], 1 << 40),
        _ => (&v[..], 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

fn namenode_addr(flag: Option<String>, conf: &Config) -> String {
    let raw = flag
        .or_else(|| std::env::var("TUSK_NAMENODE").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| conf.client.namenode.clone());
    // Accept hdfs://host:port as Hadoop users write it.
    let stripped = raw.split("://").last().unwrap_or(&raw);
    stripped.trim_end_matches('/').to_owned()
}

fn main() {
    let cli = Cli::parse_from(hadoop_style(std::env::args().collect()));
    let conf = match Config::load_from_env(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tusk: {e}");
            std::process::exit(1);
        }
    };
    let code = match run(cli.command, conf) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tusk: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// `TUSK_NAMENODE`, when set, names the namenode for the daemons too (datanode,
/// checkpointer, jobtracker, tasktracker), so one variable points a whole container at it.
fn namenode_from_env(conf: &mut Config) {
    if let Some(nn) = std::env::var("TUSK_NAMENODE").ok().filter(|s| !s.is_empty()) {
        conf.datanode.namenode = nn.clone();
        conf.checkpoint.namenode = nn.clone();
        conf.mapreduce.namenode = nn;
    }
}

fn run(command: Command, mut conf: Config) -> Result<i32> {
    namenode_from_env(&mut conf);
    match command {
        Command::Version => {
            println!("Tusk {}", tusk_common::VERSION);
            Ok(0)
        }
        Command::Namenode(a) => {
            init_logging("info");
            let mut conf = conf;
            if !a.name_dirs.is_empty() {
                conf.namenode.name_dirs = a.name_dirs;
            }
            if let Some(addr) = a.rpc_address {
                conf.namenode.rpc_address = addr;
            }
            if a.format {
                return daemons::format_namenode(&conf, a.clusterid, a.force);
            }
            if let Some(dir) = a.import_checkpoint {
                daemons::import_checkpoint(&conf, dir)?;
            }
            runtime()?.block_on(daemons::run_namenode(conf))
        }
        Command::Datanode(a) => {
            init_logging("info");
            let mut conf = conf;
            if !a.data_dirs.is_empty() {
                conf.datanode.data_dirs = a.data_dirs;
            }
            if let Some(nn) = a.namenode {
                conf.datanode.namenode = nn;
            }
            if let Some(x) = a.xfer_address {
                conf.datanode.xfer_address = x;
            }
            runtime()?.block_on(daemons::run_datanode(conf))
        }
        Command::Checkpointer(a) => {
            // --once is a command: its outcome is printed; the daemon logs what it does.
            init_logging(if a.once { "warn" } else { "info" });
            let mut conf = conf;
            if let Some(nn) = a.namenode {
                conf.checkpoint.namenode = nn;
            }
            if let Some(d) = a.dir {
                conf.checkpoint.dir = d;
            }
            runtime()?.block_on(daemons::run_checkpointer(conf, a.once))
        }
        Command::Fsck(a) => run_client_tool(ClientTool::Fsck, a, conf),
        Command::Debug(a) => run_client_tool(ClientTool::Debug, a, conf),
        Command::Jobtracker => {
            init_logging("info");
            runtime()?.block_on(daemons::run_jobtracker(conf))
        }
        Command::Tasktracker => {
            init_logging("info");
            runtime()?.block_on(daemons::run_tasktracker(conf))
        }
        Command::Worker { slots } => {
            init_logging("info");
            runtime()?.block_on(daemons::run_worker(conf, slots))
        }
        Command::Health { role } => {
            init_logging("error");
            match runtime()?.block_on(health::check(role, &conf)) {
                Ok(line) => {
                    println!("healthy: {line}");
                    Ok(0)
                }
                Err(e) => {
                    println!("unhealthy: {e:#}");
                    Ok(1)
                }
            }
        }
        Command::Mount(a) => {
            init_logging("info");
            let nn = namenode_addr(a.namenode, &conf);
            let args = tusk_fuse::MountArgs {
                mountpoint: a.mountpoint,
                namenode: nn,
                options: a.options,
                daemon: a.daemon,
                log: a.log,
            };
            Ok(tusk_fuse::run(args, conf.client.clone()))
        }
        Command::Job(a) => {
            init_logging("warn");
            let user = tusk_common::user::current_user();
            let jt = conf.mapreduce.jobtracker.clone();
            let nn = namenode_addr(a.namenode, &conf);
            let code = runtime()?.block_on(async {
                let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
                let bar = std::io::IsTerminal::is_terminal(&err);
                tusk_mapreduce::jobclient::run(&a.args, &jt, &nn, &user, bar, &mut out, &mut err).await
            });
            Ok(code)
        }
        Command::Cluster { action: ClusterAction::Up { dir, datanodes, port } } => {
            init_logging("info");
            runtime()?.block_on(daemons::cluster_up(conf, dir, datanodes, port))
        }
        Command::Fs(a) | Command::Dfs(a) => run_client_tool(ClientTool::Fs, a, conf),
        Command::Dfsadmin(a) => run_client_tool(ClientTool::Dfsadmin, a, conf),
    }
}

#[derive(Clone, Copy)]
enum ClientTool {
    Fs,
    Fsck,
    Dfsadmin,
    Debug,
}

/// The client commands share their set-up: generic options, namenode address, user.
fn run_client_tool(tool: ClientTool, mut a: ShellArgs, mut conf: Config) -> Result<i32> {
    init_logging("warn");
    generic_options(&mut a.args, &mut a.namenode, &mut conf.client)?;
    let addr = namenode_addr(a.namenode, &conf);
    let user = tusk_common::user::current_user();
    let code = runtime()?.block_on(async {
        let mut out = std::io::stdout();
        let mut err = std::io::stderr();
        let mut io = tusk_fs_shell::Io { out: &mut out, err: &mut err };
        match tool {
            ClientTool::Fs => tusk_fs_shell::run(&a.args, &addr, &user, &conf.client, &mut io).await,
            ClientTool::Fsck => tusk_fs_shell::fsck::run(&a.args, &addr, &user, &conf.client, &mut io).await,
            ClientTool::Dfsadmin => tusk_fs_shell::admin::run(&a.args, &addr, &user, &conf.client, &mut io).await,
            ClientTool::Debug => tusk_fs_shell::debug::run(&a.args, &addr, &user, &conf.client, &mut io).await,
        }
    });
    Ok(code)
}
