//! MapReduce v1 on Tusk: the jobtracker ([`jobtracker`], gRPC in [`service`]) turns a job's
//! input files into splits (one per block, with the hosts holding it) and hands map tasks to
//! the tasktrackers ([`tasktracker`]) that heartbeat for work, node-local first. A map task
//! reads its split's lines ([`lines`]), runs the map function ([`functions`]), partitions,
//! sorts (rayon), combines and writes one sorted file with a partition index to the
//! tracker's local disk ([`mapout`]). Once every map is done, reduce tasks fetch their
//! partition from each map's tracker (the Shuffle service), merge the sorted runs, group by
//! key, reduce, and write `part-r-NNNNN` under the job's staging directory (a hidden sibling
//! of OUT: `.OUT.<job>/_temporary/<attempt>/`); the jobtracker commits an attempt by renaming
//! its file into the staging directory and, when every task is done, removes `_temporary`,
//! writes `_SUCCESS` and renames the staging directory to OUT, which so appears whole or not
//! at all. A failed attempt is retried (up to
//! `mapreduce.max_attempts`); a job that cannot succeed fails with the reason and leaves
//! nothing at its output path.

pub mod codec;
pub mod functions;
pub mod history;
pub mod jobclient;
pub mod jobtracker;
pub mod lines;
pub mod mapout;
pub mod merge;
pub mod partition;
pub mod service;
pub mod splits;
pub mod streaming;
pub mod task;
pub mod tasktracker;
pub mod tera;
