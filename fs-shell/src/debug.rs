//! `tusk debug` (hdfs debug): `recoverLease -path <path> [-retries <num-retries>]` asks the
//! namenode to recover the lease of a file now, retrying every 5 s as Hadoop's DebugAdmin.

use crate::Io;
use std::time::Duration;
use tusk_client::Client;

const USAGE: &str = "Usage: tusk debug recoverLease -path <path> [-retries <num-retries>]";
/// Hadoop's wait between tries.
const RETRY_WAIT: Duration = Duration::from_secs(5);

/// `-path P [-retries N]` into (path, retries). Hadoop's default is 1 try.
fn parse_recover_lease(args: &[String]) -> Result<(String, u32), String> {
    let (mut path, mut retries) = (None, 1u32);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-path" => path = Some(it.next().ok_or("-path needs a value")?.clone()),
            "-retries" => {
                let v = it.next().ok_or("-retries needs a value")?;
                retries = v.parse().map_err(|_| format!("-retries: not a number: {v}"))?;
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok((path.ok_or("You must supply a -path argument to recoverLease.")?, retries.max(1)))
}

pub async fn run(
    args: &[String],
    namenode: &str,
    user: &str,
    conf: &tusk_common::config::ClientConfig,
    io: &mut Io<'_>,
) -> i32 {
    let (path, retries) = match args.split_first() {
        Some((cmd, rest)) if cmd == "recoverLease" => match parse_recover_lease(rest) {
            Ok(p) => p,
            Err(e) => {
                let _ = writeln!(io.err, "{e}\n{USAGE}");
                return 1;
            }
        },
        _ => {
            let _ = writeln!(io.err, "{USAGE}");
            return 1;
        }
    };
    let client = match Client::connect(namenode, user, conf).await {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(io.err, "debug: {e}");
            return 1;
        }
    };
    let abs = if path.starts_with('/') { path.clone() } else { format!("{}/{path}", client.home_dir()) };
    for attempt in 1..=retries {
        match client.recover_lease(&abs).await {
            Ok(true) => {
                let _ = writeln!(io.out, "recoverLease SUCCEEDED on {path}");
                return 0;
            }
            Ok(false) => {
                let _ = writeln!(io.out, "recoverLease returned false.");
            }
            Err(e) => {
                let _ = writeln!(io.out, "recoverLease got exception: {e}");
            }
        }
        if attempt < retries {
            let _ = writeln!(io.out, "Retrying in {} ms...", RETRY_WAIT.as_millis());
            tokio::time::sleep(RETRY_WAIT).await;
            let _ = writeln!(io.out, "Retry #{attempt}");
        }
    }
    let tries = if retries == 1 { "try" } else { "tries" };
    let _ = writeln!(io.out, "Giving up on recoverLease for {path} after {retries} {tries}.");
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(parse_recover_lease(&a(&["-path", "/f"])), Ok(("/f".into(), 1)));
        assert_eq!(parse_recover_lease(&a(&["-path", "/f", "-retries", "4"])), Ok(("/f".into(), 4)));
        assert!(parse_recover_lease(&a(&[])).unwrap_err().contains("-path"));
        assert!(parse_recover_lease(&a(&["-path"])).is_err());
        assert!(parse_recover_lease(&a(&["-path", "/f", "-retries", "x"])).is_err());
    }
}
