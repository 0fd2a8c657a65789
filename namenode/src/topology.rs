//! Rack awareness: which rack each datanode sits in (HDFS's `TableMapping`), from the
//! `namenode.racks` table and the `namenode.topology_file`. A datanode is looked up by
//! `ip:port`, `host:port`, IP, then host name; unlisted ones are in `/default-rack`.

use std::collections::HashMap;
use std::path::Path;

pub const DEFAULT_RACK: &str = "/default-rack";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    table: HashMap<String, String>,
}

fn check_rack(key: &str, rack: &str) -> Result<String, String> {
    let rack = rack.trim().trim_end_matches('/');
    if !rack.starts_with('/') || rack.len() < 2 || rack.contains(char::is_whitespace) {
        return Err(format!("rack {rack:?} of {key:?} is not a path like /rack1 or /dc1/rack1"));
    }
    Ok(rack.to_owned())
}

impl Topology {
    /// Builds the table: the file's `host rack` lines first (blank lines and `#` comments
    /// skipped), then `racks`, whose entries win.
    pub fn load<'a>(
        racks: impl IntoIterator<Item = (&'a String, &'a String)>,
        file: Option<&Path>,
    ) -> Result<Topology, String> {
        let mut table = HashMap::new();
        if let Some(f) = file {
            let text =
                std::fs::read_to_string(f).map_err(|e| format!("cannot read topology file {}: {e}", f.display()))?;
            for (n, line) in text.lines().enumerate() {
                let line = line.split('#').next().unwrap_or("").trim();
                if line.is_empty() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let (Some(host), Some(rack), None) = (parts.next(), parts.next(), parts.next()) else {
                    return Err(format!("{} line {}: expected `host rack`, got {line:?}", f.display(), n + 1));
                };
                table.insert(host.to_owned(), check_rack(host, rack)?);
            }
        }
        for (k, v) in racks {
            table.insert(k.clone(), check_rack(k, v)?);
        }
        Ok(Topology { table })
    }

    /// The rack of a datanode.
    pub fn resolve(&self, ip: &str, hostname: &str, port: u32) -> String {
        [format!("{ip}:{port}"), format!("{hostname}:{port}"), ip.to_owned(), hostname.to_owned()]
            .iter()
            .find_map(|k| self.table.get(k))
            .cloned()
            .unwrap_or_else(|| DEFAULT_RACK.to_owned())
    }

    /// The rack of a reader known only by its address (used to sort replicas nearest first).
    pub fn rack_of_addr(&self, ip: &str) -> Option<&str> {
        self.table.get(ip).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_specific_key_wins_and_bad_racks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("topology.data");
        std::fs::write(&f, "# host rack\n10.0.0.1 /r1\n10.0.0.2   /r2/\nnode3 /r3\n\n").unwrap();
        let racks = [("10.0.0.2:9866".to_string(), "/r9".to_string())];
        let t = Topology::load(racks.iter().map(|(a, b)| (a, b)), Some(&f)).unwrap();
        assert_eq!(t.resolve("10.0.0.1", "h", 9866), "/r1");
        assert_eq!(t.resolve("10.0.0.2", "h", 9866), "/r9");
        assert_eq!(t.resolve("10.0.0.2", "h", 9867), "/r2");
        assert_eq!(t.resolve("10.0.0.3", "node3", 1), "/r3");
        assert_eq!(t.resolve("10.0.0.4", "x", 1), DEFAULT_RACK);
        let bad = [("h".to_string(), "rack1".to_string())];
        assert!(Topology::load(bad.iter().map(|(a, b)| (a, b)), None).unwrap_err().contains("rack1"));
        std::fs::write(&f, "10.0.0.1\n").unwrap();
        assert!(Topology::load(std::iter::empty(), Some(&f)).unwrap_err().contains("line 1"));
    }
}
