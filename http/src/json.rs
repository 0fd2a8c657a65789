//! Hadoop's WebHDFS JSON shapes, built from Tusk's protocol messages.

use serde_json::{json, Value};
use tusk_client::{ContentSummary, DatanodeInfo, FileStatus, FileType, GetBlockLocationsResponse, LocatedBlock};

/// `FileStatus` as WebHDFS writes it; `suffix` is the name relative to the listed path
/// ("" for the path itself).
pub fn file_status(s: &FileStatus, suffix: &str) -> Value {
    let dir = s.file_type() == FileType::Directory;
    json!({
        "accessTime": s.access_time_ms,
        "blockSize": if dir { 0 } else { s.block_size },
        "childrenNum": s.children_num,
        "fileId": s.file_id,
        "group": s.group,
        "length": if dir { 0 } else { s.length },
        "modificationTime": s.modification_time_ms,
        "owner": s.owner,
        "pathSuffix": suffix,
        "permission": format!("{:o}", s.permission & 0o1777),
        "replication": if dir { 0 } else { s.replication },
        "storagePolicy": 0,
        "type": match s.file_type() { FileType::Directory => "DIRECTORY", _ => "FILE" },
    })
}

pub fn content_summary(c: &ContentSummary) -> Value {
    json!({"ContentSummary": {
        "directoryCount": c.directory_count,
        "ecPolicy": "",
        "fileCount": c.file_count,
        "length": c.length,
        "quota": c.quota,
        "spaceConsumed": c.space_consumed,
        "spaceQuota": c.space_quota,
        "typeQuota": {},
    }})
}

fn name(d: &DatanodeInfo) -> String {
    format!("{}:{}", d.ip_addr, d.xfer_port)
}

fn rack(d: &DatanodeInfo) -> &str {
    if d.rack.is_empty() {
        "/default-rack"
    } else {
        &d.rack
    }
}

/// `GETFILEBLOCKLOCATIONS`: Hadoop's `BlockLocation[]` of the blocks overlapping
/// [offset, offset + length).
pub fn block_locations(r: &GetBlockLocationsResponse) -> Value {
    let locs: Vec<Value> = r
        .blocks
        .iter()
        .map(|b| {
            let len = b.block.as_ref().map_or(0, |e| e.num_bytes);
            json!({
                "cachedHosts": [],
                "corrupt": b.locations.is_empty() && !b.corrupt_locations.is_empty(),
                "hosts": b.locations.iter().map(|d| d.hostname.clone()).collect::<Vec<_>>(),
                "length": len,
                "names": b.locations.iter().map(name).collect::<Vec<_>>(),
                "offset": b.offset,
                "storageIds": b.locations.iter().map(|d| format!("DS-{}", d.datanode_uuid)).collect::<Vec<_>>(),
                "storageTypes": b.locations.iter().map(|_| "DISK").collect::<Vec<_>>(),
                "topologyPaths": b.locations.iter().map(|d| format!("{}/{}", rack(d), name(d))).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({"BlockLocations": {"BlockLocation": locs}})
}

fn datanode_info(d: &DatanodeInfo) -> Value {
    json!({
        "adminState": match d.admin_state { 1 => "DECOMMISSION_INPROGRESS", 2 => "DECOMMISSIONED", _ => "NORMAL" },
        "blockPoolUsed": d.dfs_used,
        "cacheCapacity": 0,
        "cacheUsed": 0,
        "capacity": d.capacity,
        "dfsUsed": d.dfs_used,
        "hostName": d.hostname,
        "infoPort": d.http_port,
        "infoSecurePort": 0,
        "ipAddr": d.ip_addr,
        "ipcPort": d.ipc_port,
        "lastUpdate": d.last_update_ms,
        "lastUpdateMonotonic": d.last_update_ms,
        "name": name(d),
        "networkLocation": rack(d),
        "nonDfsUsed": 0,
        "remaining": d.remaining,
        "storageID": format!("DS-{}", d.datanode_uuid),
        "xceiverCount": d.active_transfers,
        "xferPort": d.xfer_port,
    })
}

fn located_block(b: &LocatedBlock, pool: &str) -> Value {
    let e = b.block.unwrap_or_default();
    json!({
        "block": {"blockId": e.block_id, "blockPoolId": pool, "generationStamp": e.generation_stamp, "numBytes": e.num_bytes},
        "blockToken": {"urlString": "AAAAAA"},
        "cachedLocations": [],
        "isCorrupt": b.locations.is_empty() && !b.corrupt_locations.is_empty(),
        "locations": b.locations.iter().map(datanode_info).collect::<Vec<_>>(),
        "startOffset": b.offset,
        "storageTypes": b.locations.iter().map(|_| "DISK").collect::<Vec<_>>(),
    })
}

/// `GET_BLOCK_LOCATIONS` (what Hadoop's own WebHdfsFileSystem calls): `LocatedBlocks`.
pub fn located_blocks(r: &GetBlockLocationsResponse, pool: &str) -> Value {
    let blocks: Vec<Value> = r.blocks.iter().map(|b| located_block(b, pool)).collect();
    let last = r.blocks.last().map(|b| located_block(b, pool)).unwrap_or(Value::Null);
    json!({"LocatedBlocks": {
        "fileLength": r.file_length,
        "isLastBlockComplete": !r.under_construction,
        "isUnderConstruction": r.under_construction,
        "lastLocatedBlock": last,
        "locatedBlocks": blocks,
    }})
}
