//! A writer that hflushes and then waits, to show readers see flushed bytes of a file still
//! being written (scripts/write-recovery.sh uses it):
//!
//! ```text
//! hflush NAMENODE DFS_PATH LOCAL_FILE
//! ```
//!
//! Writes LOCAL_FILE to DFS_PATH, hflushes, prints `flushed N`, then waits until its stdin
//! closes and closes the file (printing `closed N`).

use std::io::Read;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, namenode, path, local] = args.as_slice() else {
        return Err("usage: hflush NAMENODE DFS_PATH LOCAL_FILE".into());
    };
    let data = std::fs::read(local)?;
    let conf = tusk_common::config::ClientConfig::default();
    let client = tusk_client::Client::connect(namenode, &tusk_common::user::current_user(), &conf).await?;
    let mut w = client.create(path, false, 0, 0).await?;
    w.write(&data).await?;
    w.hflush().await?;
    println!("flushed {}", data.len());
    tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await??;
    let n = w.close().await?;
    println!("closed {n}");
    Ok(())
}
