//! CRC32C (Castagnoli), the checksum of every record and file Tusk trusts. The `crc32c`
//! crate uses the SSE4.2 / ARMv8 instruction when the CPU has it.

/// CRC32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Continues a CRC32C over more data (`crc32c(a ++ b) == crc32c_append(crc32c(a), b)`).
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    crc32c::crc32c_append(crc, data)
}

/// A writer adaptor that checksums everything written through it.
pub struct CrcWriter<W> {
    inner: W,
    crc: u32,
    written_bytes: u64,
}

impl<W: std::io::Write> CrcWriter<W> {
    pub fn new(inner: W) -> Self {
        Self { inner, crc: 0, written_bytes: 0 }
    }
    pub fn crc(&self) -> u32 {
        self.crc
    }
    pub fn written_bytes(&self) -> u64 {
        self.written_bytes
    }
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: std::io::Write> std::io::Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc = crc32c_append(self.crc, &buf[..n]);
        self.written_bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A reader adaptor that checksums everything read through it.
pub struct CrcReader<R> {
    inner: R,
    crc: u32,
    read_bytes: u64,
}

impl<R: std::io::Read> CrcReader<R> {
    pub fn new(inner: R) -> Self {
        Self { inner, crc: 0, read_bytes: 0 }
    }
    pub fn crc(&self) -> u32 {
        self.crc
    }
    pub fn read_bytes(&self) -> u64 {
        self.read_bytes
    }
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: std::io::Read> std::io::Read for CrcReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc = crc32c_append(self.crc, &buf[..n]);
        self.read_bytes += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn known_vector() {
        // RFC 3720 test vector: 32 bytes of zeros.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn adaptors_match_one_shot() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        let mut w = CrcWriter::new(Vec::new());
        for chunk in data.chunks(333) {
            w.write_all(chunk).unwrap();
        }
        assert_eq!(w.crc(), crc32c(&data));
        let mut r = CrcReader::new(&data[..]);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(r.crc(), crc32c(&data));
        assert_eq!(r.read_bytes(), data.len() as u64);
    }
}
