//! Map output compression, a job setting (`map.output.compress`: `none`, `lz4` or `zstd`;
//! Hadoop's `mapreduce.map.output.compress.codec`). Each partition of a map's output is
//! compressed as one blob that names its codec in its first byte, so a reduce decodes what
//! it fetched without being told how it was made. An empty partition is an empty blob.

use std::io;
use tusk_proto::mapreduce::JobSpec;

pub const SETTING: &str = "map.output.compress";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None = 0,
    Lz4 = 1,
    Zstd = 2,
}

/// zstd's level for map output: fast (the point is fewer bytes shuffled, not the smallest).
const ZSTD_LEVEL: i32 = 1;

impl Codec {
    pub fn of(spec: &JobSpec) -> Result<Codec, String> {
        match spec.settings.get(SETTING).map(String::as_str) {
            None | Some("none") | Some("") => Ok(Codec::None),
            Some("lz4") => Ok(Codec::Lz4),
            Some("zstd") => Ok(Codec::Zstd),
            Some(other) => Err(format!("unknown {SETTING} codec '{other}' (none, lz4, zstd)")),
        }
    }

    /// One partition's records as a blob.
    pub fn encode(self, raw: &[u8]) -> io::Result<Vec<u8>> {
        if raw.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = vec![self as u8];
        match self {
            Codec::None => out.extend_from_slice(raw),
            Codec::Lz4 => out.extend_from_slice(&lz4_flex::block::compress_prepend_size(raw)),
            Codec::Zstd => out.extend_from_slice(&zstd::bulk::compress(raw, ZSTD_LEVEL)?),
        }
        Ok(out)
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// A blob's records, whatever codec made it.
pub fn decode(blob: &[u8]) -> io::Result<Vec<u8>> {
    let Some((&tag, body)) = blob.split_first() else { return Ok(Vec::new()) };
    match tag {
        0 => Ok(body.to_vec()),
        1 => lz4_flex::block::decompress_size_prepended(body).map_err(|e| invalid(format!("lz4 map output: {e}"))),
        2 => zstd::stream::decode_all(body).map_err(|e| invalid(format!("zstd map output: {e}"))),
        t => Err(invalid(format!("map output compressed with unknown codec {t}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips_and_damage_is_caught() {
        let raw: Vec<u8> = (0..100_000u32).flat_map(|i| format!("word{}\t1\n", i % 100).into_bytes()).collect();
        for codec in [Codec::None, Codec::Lz4, Codec::Zstd] {
            let blob = codec.encode(&raw).unwrap();
            assert_eq!(decode(&blob).unwrap(), raw, "{codec:?}");
            if codec != Codec::None {
                assert!(blob.len() < raw.len() / 4, "{codec:?} compresses repetitive text");
                let mut bad = blob.clone();
                bad.truncate(blob.len() / 2);
                assert!(decode(&bad).is_err(), "{codec:?} cut short");
            }
            assert!(codec.encode(b"").unwrap().is_empty());
        }
        assert!(decode(&[9, 1, 2]).is_err());
        let mut spec = JobSpec::default();
        spec.settings.insert(SETTING.into(), "snappy".into());
        assert!(Codec::of(&spec).unwrap_err().contains("snappy"));
    }
}
