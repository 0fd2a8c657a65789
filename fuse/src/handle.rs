//! An open file: a task that takes the file's requests in the order the kernel sent them.
//!
//! Reads at the position the last one ended stream from one block reader (the kernel's
//! readahead keeps it busy); a read elsewhere is a positional read of its own, run beside
//! the others, and a second read continuing it moves the stream there. Writes go to the
//! block pipeline in order and must be at the end of what was written: a write anywhere
//! else is refused with EOPNOTSUPP and a log line, and changes nothing. A file opened for
//! writing without O_TRUNC or O_APPEND is appended to only once a write arrives at its end.
//! `flush` (every close(2)) completes the file, so that close(2) reports a failed write and
//! what a program does next (utimensat, chmod: tar, cp -p) applies to the finished file; a
//! later write through a duplicate descriptor appends again. `fsync` is hsync.

use crate::fs::{errno, Shared};
use fuser::{ReplyData, ReplyEmpty, ReplyWrite};
use nix::errno::Errno;
use std::sync::Arc;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;
use tusk_client::{Client, FileReader, FileWriter};

pub enum Op {
    Read {
        offset: u64,
        size: u32,
        reply: ReplyData,
    },
    Write {
        offset: u64,
        data: Vec<u8>,
        reply: ReplyWrite,
    },
    Flush {
        reply: ReplyEmpty,
    },
    Fsync {
        reply: ReplyEmpty,
    },
    Release {
        reply: ReplyEmpty,
    },
    /// ftruncate(fd, 0) of a file open for writing.
    Truncate {
        done: oneshot::Sender<Result<(), i32>>,
    },
}

impl Op {
    /// Answers the request with an error.
    pub fn fail(self, e: i32) {
        match self {
            Op::Read { reply, .. } => reply.error(e),
            Op::Write { reply, .. } => reply.error(e),
            Op::Flush { reply } | Op::Fsync { reply } | Op::Release { reply } => reply.error(e),
            Op::Truncate { done } => {
                let _ = done.send(Err(e));
            }
        }
    }
}

/// How a file was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Read,
    /// O_TRUNC: replaced by an empty file at once.
    Truncate,
    /// O_APPEND.
    Append,
    /// For writing, neither: appended to if a write arrives at its end.
    WriteAtEnd,
}

enum Writer {
    /// Not writing (opened for reading).
    None,
    /// Opened for writing; nothing written yet. A write at `length` appends.
    Lazy {
        length: u64,
    },
    Open {
        w: Box<FileWriter>,
        written: u64,
    },
    /// A write failed: the file is closed as far as it got.
    Failed,
}

/// A piece read ahead: the reader (back from its task), where the piece starts, the piece.
type Ahead = (FileReader, u64, Result<Vec<u8>, i32>);

struct Worker {
    sh: Arc<Shared>,
    c: Client,
    ino: u64,
    path: String,
    seq: Option<FileReader>,
    /// The next piece of a sequential read, being fetched while the kernel takes the last
    /// one: (the reader, where the piece starts, the piece).
    ahead: Option<tokio::task::JoinHandle<Ahead>>,
    random: Option<Arc<FileReader>>,
    /// Where the last positional read ended: a read there continues it as a stream.
    random_end: Option<u64>,
    writer: Writer,
}

/// Reads up to `size` bytes at `offset` with the stream (fewer only at the end of the file).
async fn fill(r: &mut FileReader, offset: u64, size: u32) -> Result<Vec<u8>, i32> {
    r.seek(offset).map_err(|e| errno(&e))?;
    let mut buf = vec![0u8; size as usize];
    let mut done = 0;
    while done < buf.len() {
        match r.read(&mut buf[done..]).await {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) => return Err(errno(&e)),
        }
    }
    buf.truncate(done);
    Ok(buf)
}

/// Opens `path` as `mode` and starts its task.
pub async fn start(sh: Arc<Shared>, c: Client, ino: u64, path: String, mode: Mode) -> Result<UnboundedSender<Op>, i32> {
    let writer = match mode {
        Mode::Read => {
            let reader = c.open(&path).await.map_err(|e| errno(&e))?;
            let mut w = Worker::new(sh, c, ino, path, Writer::None);
            w.seq = Some(reader);
            return Ok(w.spawn());
        }
        Mode::Truncate => {
            let st = c.file_info(&path).await.map_err(|e| errno(&e))?.ok_or(Errno::ENOENT as i32)?;
            let w = c.create(&path, true, st.replication, st.block_size).await.map_err(|e| errno(&e))?;
            // The replacement keeps the old file's permission and owner's group.
            c.set_permission(&path, st.permission).await.map_err(|e| errno(&e))?;
            Writer::Open { w: Box::new(w), written: 0 }
        }
        Mode::Append => {
            let st = c.file_info(&path).await.map_err(|e| errno(&e))?.ok_or(Errno::ENOENT as i32)?;
            let w = c.append(&path).await.map_err(|e| errno(&e))?;
            Writer::Open { w: Box::new(w), written: st.length }
        }
        Mode::WriteAtEnd => {
            let st = c.file_info(&path).await.map_err(|e| errno(&e))?.ok_or(Errno::ENOENT as i32)?;
            Writer::Lazy { length: st.length }
        }
    };
    if let Writer::Open { written, .. } = &writer {
        sh.writing.lock().insert(ino, *written);
    }
    Ok(Worker::new(sh, c, ino, path, writer).spawn())
}

/// The task of a file just created (its writer already open).
pub fn start_writing(sh: Arc<Shared>, c: Client, ino: u64, path: String, w: FileWriter) -> UnboundedSender<Op> {
    sh.writing.lock().insert(ino, 0);
    Worker::new(sh, c, ino, path, Writer::Open { w: Box::new(w), written: 0 }).spawn()
}

impl Worker {
    fn new(sh: Arc<Shared>, c: Client, ino: u64, path: String, writer: Writer) -> Worker {
        Worker { sh, c, ino, path, seq: None, ahead: None, random: None, random_end: None, writer }
    }

    fn spawn(self) -> UnboundedSender<Op> {
        let (tx, rx) = unbounded_channel();
        tokio::spawn(self.run(rx));
        tx
    }

    async fn run(mut self, mut rx: UnboundedReceiver<Op>) {
        while let Some(op) = rx.recv().await {
            match op {
                Op::Read { offset, size, reply } => self.read(offset, size, reply).await,
                Op::Write { offset, data, reply } => match self.write(offset, &data).await {
                    Ok(()) => reply.written(data.len() as u32),
                    Err(e) => reply.error(e),
                },
                Op::Flush { reply } => match self.complete().await {
                    Ok(()) => reply.ok(),
                    Err(e) => reply.error(e),
                },
                Op::Fsync { reply } => match self.sync().await {
                    Ok(()) => reply.ok(),
                    Err(e) => reply.error(e),
                },
                Op::Truncate { done } => {
                    let _ = done.send(self.truncate().await);
                }
                Op::Release { reply } => {
                    match self.close().await {
                        Ok(()) => reply.ok(),
                        Err(e) => reply.error(e),
                    }
                    return;
                }
            }
        }
        // The mount is going away without a release: complete what was written.
        let _ = self.close().await;
    }

    async fn reader(&mut self) -> Result<&mut FileReader, i32> {
        if self.seq.is_none() {
            self.seq = Some(self.c.open(&self.path).await.map_err(|e| errno(&e))?);
        }
        self.seq.as_mut().ok_or(Errno::EIO as i32)
    }

    async fn read(&mut self, offset: u64, size: u32, reply: ReplyData) {
        // A piece fetched ahead: this read's, if it starts here.
        if let Some(ahead) = self.ahead.take() {
            match ahead.await {
                Ok((reader, at, piece)) => {
                    self.seq = Some(reader);
                    if at == offset {
                        match piece {
                            Ok(piece) if piece.len() >= size as usize || offset + piece.len() as u64 >= self.len() => {
                                let n = piece.len().min(size as usize);
                                reply.data(&piece[..n]);
                                self.read_ahead(offset + n as u64, size);
                                return;
                            }
                            Ok(_) => {}
                            Err(e) => return reply.error(e),
                        }
                    }
                }
                Err(_) => self.seq = None,
            }
        }
        let (len, position) = match self.reader().await {
            Ok(r) => (r.len(), r.position()),
            Err(e) => return reply.error(e),
        };
        if offset >= len {
            return reply.data(&[]);
        }
        let continues_random = self.random_end == Some(offset);
        if offset != position && !continues_random {
            // A read elsewhere: positional, beside the stream.
            self.random_end = Some(offset + u64::from(size));
            if self.random.is_none() {
                match self.c.open(&self.path).await {
                    Ok(r) => self.random = Some(Arc::new(r)),
                    Err(e) => return reply.error(errno(&e)),
                }
            }
            let Some(random) = self.random.clone() else { return reply.error(Errno::EIO as i32) };
            tokio::spawn(async move {
                let mut buf = vec![0u8; size as usize];
                match random.pread(offset, &mut buf).await {
                    Ok(n) => reply.data(&buf[..n]),
                    Err(e) => reply.error(errno(&e)),
                }
            });
            return;
        }
        self.random_end = None;
        let Some(r) = self.seq.as_mut() else { return reply.error(Errno::EIO as i32) };
        match fill(r, offset, size).await {
            Ok(buf) => {
                let n = buf.len() as u64;
                reply.data(&buf);
                self.read_ahead(offset + n, size);
            }
            Err(e) => reply.error(e),
        }
    }

    /// The file's length as the sequential reader knows it.
    fn len(&self) -> u64 {
        self.seq.as_ref().map(|r| r.len()).unwrap_or(0)
    }

    /// Starts fetching the `size` bytes at `offset` (the next sequential read, most likely)
    /// while the kernel takes this one.
    fn read_ahead(&mut self, offset: u64, size: u32) {
        if offset >= self.len() {
            return;
        }
        let Some(mut r) = self.seq.take() else { return };
        self.ahead = Some(tokio::spawn(async move {
            let piece = fill(&mut r, offset, size).await;
            (r, offset, piece)
        }));
    }

    async fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), i32> {
        if let Writer::Lazy { length } = self.writer {
            if offset != length {
                tracing::warn!(path = %self.path, offset, length, "refused a write at offset {offset}: Tusk files are written sequentially (only at the end, {length})");
                return Err(Errno::EOPNOTSUPP as i32);
            }
            let w =
                if length == 0 { self.c.create(&self.path, true, 0, 0).await } else { self.c.append(&self.path).await };
            self.writer = Writer::Open { w: Box::new(w.map_err(|e| errno(&e))?), written: length };
        }
        match &mut self.writer {
            Writer::Open { w, written } => {
                if offset != *written {
                    tracing::warn!(path = %self.path, offset, written = *written, "refused a write at offset {offset}: Tusk files are written sequentially (the end is {written})");
                    return Err(Errno::EOPNOTSUPP as i32);
                }
                if let Err(e) = w.write(data).await {
                    tracing::error!(path = %self.path, "write failed: {e}");
                    self.writer = Writer::Failed;
                    return Err(Errno::EIO as i32);
                }
                *written += data.len() as u64;
                self.sh.writing.lock().insert(self.ino, *written);
                Ok(())
            }
            Writer::Failed => Err(Errno::EIO as i32),
            Writer::None | Writer::Lazy { .. } => Err(Errno::EBADF as i32),
        }
    }

    /// fsync: what was written is on the datanodes' disks.
    async fn sync(&mut self) -> Result<(), i32> {
        match &mut self.writer {
            Writer::Open { w, .. } => w.hsync().await.map_err(|e| {
                tracing::error!(path = %self.path, "flush failed: {e}");
                Errno::EIO as i32
            }),
            Writer::Failed => Err(Errno::EIO as i32),
            Writer::None | Writer::Lazy { .. } => Ok(()),
        }
    }

    async fn truncate(&mut self) -> Result<(), i32> {
        match &self.writer {
            Writer::Open { written: 0, .. } => Ok(()),
            Writer::Lazy { .. } => {
                let w = self.c.create(&self.path, true, 0, 0).await.map_err(|e| errno(&e))?;
                self.writer = Writer::Open { w: Box::new(w), written: 0 };
                self.sh.writing.lock().insert(self.ino, 0);
                Ok(())
            }
            _ => {
                tracing::warn!(path = %self.path, "refused: truncating a file while writing it");
                Err(Errno::EOPNOTSUPP as i32)
            }
        }
    }

    /// close(2): completes the file; a later write at its end appends.
    async fn complete(&mut self) -> Result<(), i32> {
        match &self.writer {
            Writer::Open { written, .. } => {
                let length = *written;
                self.close().await?;
                self.writer = Writer::Lazy { length };
                Ok(())
            }
            Writer::Failed => Err(Errno::EIO as i32),
            Writer::None | Writer::Lazy { .. } => Ok(()),
        }
    }

    async fn close(&mut self) -> Result<(), i32> {
        let writer = std::mem::replace(&mut self.writer, Writer::None);
        let r = match writer {
            Writer::Open { w, .. } => match w.close().await {
                Ok(_) => {
                    // Times the program set while writing, again (completing set them to now).
                    let times = self.sh.times_after_close.lock().remove(&self.ino);
                    match times {
                        Some((m, a)) => self.c.set_times(&self.path, m, a).await.map_err(|e| errno(&e)),
                        None => Ok(()),
                    }
                }
                Err(e) => {
                    tracing::error!(path = %self.path, "closing failed: {e}");
                    Err(errno(&e))
                }
            },
            Writer::Failed => Err(Errno::EIO as i32),
            Writer::None | Writer::Lazy { .. } => Ok(()),
        };
        self.sh.writing.lock().remove(&self.ino);
        r
    }
}
