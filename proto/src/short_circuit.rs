//! Short-circuit local reads (HDFS's `dfs.client.read.shortcircuit`): a client on the same
//! host as a datanode asks it, over a Unix domain socket, for open file descriptors of a
//! finalized replica's block and meta files, then reads and verifies them itself — no TCP,
//! no datanode task per packet, one copy out of the page cache.
//!
//! The datanode listens on the abstract socket `@tusk-datanode-<uuid>` (Linux's abstract
//! namespace: no file to create or clean up, and visible only inside one network namespace,
//! so a client that can connect to it shares the datanode's host and network; a client in
//! another container cannot, and reads over TCP). The uuid is the one the namenode hands out
//! in every block location, so the client needs no configuration to find it. A connection
//! carries any number of exchanges, one after another (clients keep an idle one for their
//! next read, as HDFS's `PeerCache` does; the datanode closes one idle for 4 s):
//!
//! ```text
//! request  [u16 version][u8 opcode = 87][u32 len][ReadBlockRequest]     (data_transfer framing)
//! answer   [u32 len][BlockOpResponse]  + on success, SCM_RIGHTS [block fd, meta fd]
//! ```
//!
//! The descriptors are read-only. Anyone who can reach the socket could read the same bytes
//! over TCP (Tusk has no block access tokens), so handing out descriptors grants nothing new.

use crate::data_transfer::MAX_MESSAGE_BYTES;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use prost::Message;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::SocketAddr;
use tokio::io::Interest;
use tokio::net::{UnixListener, UnixStream};

/// Most descriptors one answer carries (a block file and its meta file).
pub const MAX_FDS: usize = 2;

/// How long a client keeps an idle connection for its next request: less than the 4 s after
/// which the datanode closes one, so a kept connection is rarely found closed (and a client
/// that finds one closed retries once on a new connection).
pub const CLIENT_IDLE: std::time::Duration = std::time::Duration::from_secs(3);

/// The abstract socket name of the datanode `datanode_uuid`.
pub fn socket_name(datanode_uuid: &str) -> String {
    format!("tusk-datanode-{datanode_uuid}")
}

fn socket_addr(datanode_uuid: &str) -> io::Result<SocketAddr> {
    SocketAddr::from_abstract_name(socket_name(datanode_uuid).as_bytes())
}

/// Binds the datanode's socket. Fails with `AddrInUse` when a datanode with this uuid already
/// listens in this network namespace.
pub fn bind(datanode_uuid: &str) -> io::Result<UnixListener> {
    let listener = std::os::unix::net::UnixListener::bind_addr(&socket_addr(datanode_uuid)?)?;
    listener.set_nonblocking(true)?;
    UnixListener::from_std(listener)
}

/// Connects to the datanode `datanode_uuid` if it listens in this network namespace
/// (`ConnectionRefused` otherwise: it is on another host, in another container, or has
/// short-circuit reads off). Must be called inside a Tokio runtime.
pub fn connect(datanode_uuid: &str) -> io::Result<UnixStream> {
    let stream = std::os::unix::net::UnixStream::connect_addr(&socket_addr(datanode_uuid)?)?;
    stream.set_nonblocking(true)?;
    UnixStream::from_std(stream)
}

/// Sends `msg` framed as [`crate::data_transfer::write_msg`] does, with `fds` attached to
/// its first byte.
pub async fn send_with_fds(stream: &UnixStream, msg: &impl Message, fds: &[RawFd]) -> io::Result<()> {
    let body = msg.encode_to_vec();
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
    buf.extend_from_slice(&body);
    let mut sent = 0;
    while sent < buf.len() {
        stream.writable().await?;
        let r = stream.try_io(Interest::WRITABLE, || {
            let iov = [IoSlice::new(&buf[sent..])];
            let rights = [ControlMessage::ScmRights(fds)];
            let cmsgs: &[ControlMessage] = if sent == 0 && !fds.is_empty() { &rights } else { &[] };
            sendmsg::<()>(stream.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None).map_err(io::Error::from)
        });
        match r {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Receives one framed message and the descriptors sent with it (at most `max_fds`; more is
/// an error, and every descriptor received is closed on any error).
pub async fn recv_with_fds<M: Message + Default>(stream: &UnixStream, max_fds: usize) -> io::Result<(M, Vec<OwnedFd>)> {
    let mut buf = vec![0u8; 4096];
    let mut have = 0usize;
    let mut fds: Vec<OwnedFd> = Vec::new();
    loop {
        if have >= 4 {
            let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if len > MAX_MESSAGE_BYTES {
                return Err(io::Error::new(io::ErrorKind::InvalidData, format!("message of {len} bytes is too large")));
            }
            if have >= 4 + len {
                let msg = M::decode(&buf[4..4 + len]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                return Ok((msg, fds));
            }
            if buf.len() < 4 + len {
                buf.resize(4 + len, 0);
            }
        }
        stream.readable().await?;
        let r = stream.try_io(Interest::READABLE, || {
            let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
            let mut iov = [IoSliceMut::new(&mut buf[have..])];
            let msg = recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
                .map_err(io::Error::from)?;
            let mut got = Vec::new();
            // ENOBUFS: the sender attached more descriptors than fit (the kernel closed them).
            for c in msg.cmsgs().map_err(io::Error::from)? {
                if let ControlMessageOwned::ScmRights(raw) = c {
                    got.extend(raw);
                }
            }
            Ok((msg.bytes, got))
        });
        let (n, got) = match r {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        // SAFETY: SCM_RIGHTS just installed these descriptors in this process; nothing else
        // knows them, so each is owned (and closed) exactly once, here.
        fds.extend(got.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
        if fds.len() > max_fds {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{} descriptors received", fds.len())));
        }
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the datanode closed the connection"));
        }
        have += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::{BlockOpResponse, OpStatus};
    use std::io::{Read, Write};

    #[tokio::test]
    async fn descriptors_travel_with_the_answer() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::File::create(&a).unwrap().write_all(b"block bytes").unwrap();
        std::fs::File::create(&b).unwrap().write_all(b"meta bytes").unwrap();
        let (fa, fb) = (std::fs::File::open(&a).unwrap(), std::fs::File::open(&b).unwrap());
        let (left, right) = UnixStream::pair().unwrap();
        let resp = BlockOpResponse {
            status: OpStatus::OpSuccess as i32,
            replica_length: 11,
            message: "x".repeat(10_000),
            ..Default::default()
        };
        let fds = [fa.as_raw_fd(), fb.as_raw_fd()];
        let send = send_with_fds(&left, &resp, &fds);
        let recv = recv_with_fds::<BlockOpResponse>(&right, MAX_FDS);
        let (sent, received) = tokio::join!(send, recv);
        sent.unwrap();
        let (got, fds) = received.unwrap();
        assert_eq!(got, resp);
        assert_eq!(fds.len(), 2);
        drop((fa, fb));
        let mut text = String::new();
        let mut files = fds.into_iter().map(std::fs::File::from);
        files.next().unwrap().read_to_string(&mut text).unwrap();
        files.next().unwrap().read_to_string(&mut text).unwrap();
        assert_eq!(text, "block bytesmeta bytes");
    }

    #[tokio::test]
    async fn too_many_descriptors_and_a_closed_peer_are_errors() {
        let (left, right) = UnixStream::pair().unwrap();
        let f = std::fs::File::open("/proc/self/exe").unwrap();
        let resp = BlockOpResponse::default();
        send_with_fds(&left, &resp, &[f.as_raw_fd(), f.as_raw_fd()]).await.unwrap();
        assert!(recv_with_fds::<BlockOpResponse>(&right, 1).await.is_err());
        let (left, right) = UnixStream::pair().unwrap();
        drop(left);
        let e = recv_with_fds::<BlockOpResponse>(&right, MAX_FDS).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn abstract_socket_is_found_by_uuid_only() {
        let uuid = format!("test-{}-{}", std::process::id(), line!());
        let listener = bind(&uuid).unwrap();
        assert_eq!(bind(&uuid).unwrap_err().kind(), io::ErrorKind::AddrInUse);
        let client = connect(&uuid).unwrap();
        let (server, _) = listener.accept().await.unwrap();
        send_with_fds(&server, &BlockOpResponse { replica_length: 7, ..Default::default() }, &[]).await.unwrap();
        let (got, fds) = recv_with_fds::<BlockOpResponse>(&client, MAX_FDS).await.unwrap();
        assert_eq!((got.replica_length, fds.len()), (7, 0));
        drop(listener);
        assert_eq!(connect(&uuid).unwrap_err().kind(), io::ErrorKind::ConnectionRefused);
    }
}
