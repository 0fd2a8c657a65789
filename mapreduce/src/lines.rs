//! Lines of a split, cut as Hadoop's LineRecordReader cuts them: a split that does not start
//! the file skips its first line (the previous split read it), and every split reads the
//! line that starts at or before its end even when it runs into the next block. So every
//! line is read exactly once, whole, however the blocks cut it.

use tusk_client::{ClientError, FileReader};

const READ_CHUNK: usize = 1 << 20;

pub struct LineReader {
    reader: FileReader,
    buf: Vec<u8>,
    /// Start of unread data in `buf`.
    at: usize,
    /// File offset of `buf[at]`.
    pos: u64,
    end: u64,
    eof: bool,
}

impl LineReader {
    pub async fn open(mut reader: FileReader, start: u64, length: u64) -> Result<LineReader, ClientError> {
        reader.seek(start)?;
        let mut r = LineReader { reader, buf: Vec::new(), at: 0, pos: start, end: start + length, eof: false };
        if start != 0 {
            // The line under way at `start` belongs to the previous split.
            let _ = r.next_line().await?;
        }
        Ok(r)
    }

    async fn fill(&mut self) -> Result<bool, ClientError> {
        if self.eof {
            return Ok(false);
        }
        if self.at > 0 {
            self.buf.drain(..self.at);
            self.at = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + READ_CHUNK, 0);
        let n = self.reader.read(&mut self.buf[old..]).await?;
        self.buf.truncate(old + n);
        if n == 0 {
            self.eof = true;
        }
        Ok(n > 0)
    }

    /// The next line (without its `\n` or `\r\n`), or `None` past the split.
    async fn next_line(&mut self) -> Result<Option<Vec<u8>>, ClientError> {
        loop {
            if let Some(i) = self.buf[self.at..].iter().position(|&b| b == b'\n') {
                let mut line = self.buf[self.at..self.at + i].to_vec();
                self.at += i + 1;
                self.pos += i as u64 + 1;
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(line));
            }
            if !self.fill().await? {
                if self.at < self.buf.len() {
                    let line = self.buf[self.at..].to_vec();
                    self.pos += line.len() as u64;
                    self.at = self.buf.len();
                    return Ok(Some(line));
                }
                return Ok(None);
            }
        }
    }

    /// The lines of a file's split.
    pub async fn of_split(
        client: &tusk_client::Client,
        split: &tusk_proto::mapreduce::Split,
    ) -> Result<LineReader, String> {
        let reader = client.open(&split.path).await.map_err(|e| format!("{}: {e}", split.path))?;
        LineReader::open(reader, split.start, split.length).await.map_err(|e| format!("{}: {e}", split.path))
    }

    /// The file offset of the next line.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The next record of the split.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, ClientError> {
        if self.pos > self.end {
            return Ok(None);
        }
        self.next_line().await
    }
}

/// The records of any split: the lines of a file's split, or the numbers of a generated
/// input's (decimal text, one record each).
pub enum SplitReader {
    Lines(Box<LineReader>),
    Generated { next: u64, end: u64 },
}

impl SplitReader {
    pub async fn open(
        client: &tusk_client::Client,
        split: &tusk_proto::mapreduce::Split,
    ) -> Result<SplitReader, String> {
        if split.path.is_empty() {
            return Ok(SplitReader::Generated { next: split.start, end: split.start.saturating_add(split.length) });
        }
        Ok(SplitReader::Lines(Box::new(LineReader::of_split(client, split).await?)))
    }

    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, String> {
        match self {
            SplitReader::Lines(l) => l.next().await.map_err(|e| e.to_string()),
            SplitReader::Generated { next, end } => {
                if *next >= *end {
                    return Ok(None);
                }
                *next += 1;
                Ok(Some((*next - 1).to_string().into_bytes()))
            }
        }
    }
}
