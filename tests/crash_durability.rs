//! Crash durability: 32 concurrent clients create, mkdir, rename and delete while the
//! namenode process is killed with SIGKILL at a random moment. After each restart every
//! acknowledged operation must be there, and each client's subtree must equal the replay of
//! its acknowledged operations (plus, possibly, the one operation that was in flight).
//!
//! `TUSK_CRASH_ROUNDS` sets the number of rounds (default 20); `scripts/crash-soak.sh` runs
//! a long soak.

mod support;

use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use support::Namenode;
use tusk_client::{Client, ClientError, FileType};

const CLIENTS: usize = 32;

#[derive(Debug, Clone)]
enum Op {
    Mkdir(String),
    Touch(String),
    Rename(String, String),
    Delete(String),
}

/// path -> is_dir, for one client's subtree.
type Model = BTreeMap<String, bool>;

fn apply(model: &mut Model, op: &Op) {
    match op {
        Op::Mkdir(p) => {
            model.insert(p.clone(), true);
        }
        Op::Touch(p) => {
            model.insert(p.clone(), false);
        }
        Op::Rename(a, b) => {
            let moved: Vec<(String, bool)> = model
                .iter()
                .filter(|(k, _)| *k == a || k.starts_with(&format!("{a}/")))
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            for (k, v) in moved {
                model.remove(&k);
                model.insert(format!("{b}{}", &k[a.len()..]), v);
            }
        }
        Op::Delete(p) => {
            model.retain(|k, _| k != p && !k.starts_with(&format!("{p}/")));
        }
    }
}

async fn call(client: &Client, op: &Op) -> Result<(), ClientError> {
    match op {
        Op::Mkdir(p) => client.mkdirs(p, 0o755, false).await,
        Op::Touch(p) => client.create_empty(p, false).await.map(|_| ()),
        Op::Rename(a, b) => client.rename(a, b).await,
        Op::Delete(p) => client.delete(p, true).await.map(|_| ()),
    }
}

fn choose(rng: &mut impl Rng, root: &str, model: &Model, serial: &mut u64) -> Op {
    *serial += 1;
    let dirs: Vec<&String> = model.iter().filter(|(_, d)| **d).map(|(k, _)| k).collect();
    let entries: Vec<&String> = model.keys().filter(|k| k.as_str() != root).collect();
    let roll = rng.random_range(0..100);
    let dir = dirs[rng.random_range(0..dirs.len())].clone();
    if roll < 35 || entries.is_empty() {
        Op::Mkdir(format!("{dir}/d{serial}"))
    } else if roll < 70 {
        Op::Touch(format!("{dir}/f{serial}"))
    } else if roll < 90 {
        let src = entries[rng.random_range(0..entries.len())].clone();
        let targets: Vec<&&String> =
            dirs.iter().filter(|d| **d != &src && !d.starts_with(&format!("{src}/"))).collect();
        let to = targets[rng.random_range(0..targets.len())];
        Op::Rename(src, format!("{to}/r{serial}"))
    } else {
        Op::Delete(entries[rng.random_range(0..entries.len())].clone())
    }
}

/// The subtree under `root` as the namenode has it.
async fn actual(client: &Client, root: &str) -> Result<Model, ClientError> {
    let mut out = Model::new();
    let Some(st) = client.file_info(root).await? else { return Ok(out) };
    out.insert(root.to_string(), st.file_type == FileType::Directory as i32);
    let mut stack = vec![root.to_string()];
    while let Some(d) = stack.pop() {
        let (_, entries) = client.list_all(&d).await?;
        for e in entries {
            let p = format!("{d}/{}", e.name);
            let is_dir = e.file_type == FileType::Directory as i32;
            if is_dir {
                stack.push(p.clone());
            }
            out.insert(p, is_dir);
        }
    }
    Ok(out)
}

struct ClientState {
    root: String,
    model: Model,
    in_flight: Option<Op>,
    serial: u64,
    acked: u64,
}

#[test]
fn acknowledged_operations_survive_sigkill() {
    let rounds: usize = std::env::var("TUSK_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let seed: u64 = std::env::var("TUSK_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("crash test: {rounds} rounds, seed {seed} (TUSK_CRASH_SEED to repeat)");
    let tmp = tempfile::tempdir().unwrap();
    let dirs = vec![tmp.path().join("name1"), tmp.path().join("name2")];
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut states: Vec<ClientState> = (0..CLIENTS)
        .map(|i| ClientState {
            root: format!("/c{i}"),
            model: Model::new(),
            in_flight: Some(Op::Mkdir(format!("/c{i}"))),
            serial: 0,
            acked: 0,
        })
        .collect();
    let mut total_acked = 0u64;
    for round in 0..rounds {
        let nn = Namenode::start(&dirs);
        let addr = nn.addr.clone();
        // Verify what the previous crash left.
        rt.block_on(async {
            let client = Client::connect(&addr, "root", &Default::default()).await.unwrap();
            let mut reads = Vec::new();
            for st in states.iter() {
                let (client, root) = (client.clone(), st.root.clone());
                reads.push(tokio::spawn(async move { actual(&client, &root).await }));
            }
            for (st, read) in states.iter_mut().zip(reads) {
                let got = read.await.unwrap().unwrap();
                if got == st.model {
                    st.in_flight = None;
                    continue;
                }
                let mut with = st.model.clone();
                if let Some(op) = &st.in_flight {
                    apply(&mut with, op);
                }
                assert_eq!(
                    got, with,
                    "round {round}: {} differs from its acknowledged operations (in flight: {:?}); seed {seed}",
                    st.root, st.in_flight
                );
                st.model = with;
                st.in_flight = None;
            }
        });
        if round + 1 == rounds {
            nn.stop();
            break;
        }
        // Drive load, then kill at a random moment.
        let kill_after = Duration::from_millis(rng.random_range(100..700));
        let seeds: Vec<u64> = (0..CLIENTS).map(|_| rng.random()).collect();
        let taken: Vec<ClientState> = std::mem::take(&mut states);
        let pid = nn.pid();
        states = rt.block_on(async move {
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let mut tasks = Vec::new();
            for (mut st, s) in taken.into_iter().zip(seeds) {
                let addr = addr.clone();
                let stop = stop.clone();
                tasks.push(tokio::spawn(async move {
                    let mut rng = rand::rngs::StdRng::seed_from_u64(s);
                    let Ok(client) = Client::connect(&addr, "root", &Default::default()).await else { return st };
                    if st.model.is_empty() {
                        let op = Op::Mkdir(st.root.clone());
                        st.in_flight = Some(op.clone());
                        if client.mkdirs(&st.root, 0o755, true).await.is_err() {
                            return st;
                        }
                        apply(&mut st.model, &op);
                        st.in_flight = None;
                    }
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let op = choose(&mut rng, &st.root.clone(), &st.model, &mut st.serial);
                        st.in_flight = Some(op.clone());
                        match call(&client, &op).await {
                            Ok(()) => {
                                apply(&mut st.model, &op);
                                st.in_flight = None;
                                st.acked += 1;
                            }
                            Err(ClientError::Connect(_)) | Err(ClientError::Other(_)) => return st,
                            Err(e) => panic!("{}: {op:?} refused by a live namenode: {e}", st.root),
                        }
                    }
                    st
                }));
            }
            tokio::time::sleep(kill_after).await;
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.expect("client task"));
            }
            out
        });
        nn.sigkill();
        let acked: u64 = states.iter().map(|s| s.acked).sum();
        eprintln!("round {round}: killed after {kill_after:?}; {} operations acknowledged so far", acked);
        total_acked = acked;
    }
    assert!(total_acked > (rounds as u64) * 10, "the load was too light to mean anything: {total_acked} operations");
}
