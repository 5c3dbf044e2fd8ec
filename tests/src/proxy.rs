//! A real TCP proxy that injects faults between a client and a server on loopback: cut a
//! connection after N bytes in either direction, delay every chunk, or stall once. Sync and
//! server tests put it between a device and the server to show that nothing is lost or repeated.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the proxy does to the connections it accepts from now on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fault {
    /// Close the connection once this many client-to-server bytes have been forwarded.
    pub cut_upstream_after: Option<u64>,
    /// Close the connection once this many server-to-client bytes have been forwarded.
    pub cut_downstream_after: Option<u64>,
    /// Wait this long before forwarding each chunk, in both directions.
    pub delay: Duration,
    /// After this many bytes in either direction, stop forwarding for the given time, once.
    pub stall: Option<(u64, Duration)>,
}

impl Fault {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn cut_upstream_after(bytes: u64) -> Self {
        Self {
            cut_upstream_after: Some(bytes),
            ..Self::default()
        }
    }

    pub fn cut_downstream_after(bytes: u64) -> Self {
        Self {
            cut_downstream_after: Some(bytes),
            ..Self::default()
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    upstream: AtomicU64,
    downstream: AtomicU64,
    connections: AtomicU64,
}

/// A running proxy; it stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    fault: Arc<Mutex<Fault>>,
    counters: Arc<Counters>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards every connection to `target`.
    pub async fn start(target: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let fault = Arc::new(Mutex::new(Fault::none()));
        let counters = Arc::new(Counters::default());
        let accept = tokio::spawn({
            let fault = Arc::clone(&fault);
            let counters = Arc::clone(&counters);
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let fault = *fault.lock().unwrap_or_else(PoisonError::into_inner);
                    counters.connections.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(relay(client, target, fault, Arc::clone(&counters)));
                }
            }
        });
        Ok(Self {
            addr,
            fault,
            counters,
            accept,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Applies to connections accepted after this call.
    pub fn set_fault(&self, fault: Fault) {
        *self.fault.lock().unwrap_or_else(PoisonError::into_inner) = fault;
    }

    /// Bytes forwarded so far: (client to server, server to client).
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.counters.upstream.load(Ordering::Relaxed),
            self.counters.downstream.load(Ordering::Relaxed),
        )
    }

    pub fn connections(&self) -> u64 {
        self.counters.connections.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn relay(client: TcpStream, target: SocketAddr, fault: Fault, counters: Arc<Counters>) {
    let Ok(server) = TcpStream::connect(target).await else {
        return; // the client sees its connection close, as it would if the server were down
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = Direction {
        cut_after: fault.cut_upstream_after,
        counter: Arc::clone(&counters),
        upstream: true,
    };
    let down = Direction {
        cut_after: fault.cut_downstream_after,
        counter: counters,
        upstream: false,
    };
    // When either direction ends (closed, or cut), the whole connection is dropped: a cut
    // looks to both sides like the network going away mid-stream.
    tokio::select! {
        _ = pump(client_read, server_write, up, fault) => {},
        _ = pump(server_read, client_write, down, fault) => {},
    }
}

struct Direction {
    cut_after: Option<u64>,
    counter: Arc<Counters>,
    upstream: bool,
}

impl Direction {
    fn add(&self, n: u64) {
        let counter = if self.upstream {
            &self.counter.upstream
        } else {
            &self.counter.downstream
        };
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, direction: Direction, fault: Fault) -> io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut forwarded: u64 = 0;
    let mut stalled = false;
    loop {
        if direction.cut_after.is_some_and(|limit| forwarded >= limit) {
            return Ok(());
        }
        let n = from.read(&mut buf).await?;
        if n == 0 {
            to.shutdown().await?;
            return Ok(());
        }
        // Forward no more than the cut allows; the rest is lost with the connection.
        let allowed = direction.cut_after.map_or(n, |limit| {
            n.min(usize::try_from(limit - forwarded).unwrap_or(usize::MAX))
        });
        if !fault.delay.is_zero() {
            tokio::time::sleep(fault.delay).await;
        }
        if let Some((after, pause)) = fault.stall
            && !stalled
            && forwarded + allowed as u64 >= after
        {
            stalled = true;
            tokio::time::sleep(pause).await;
        }
        // Counted before writing, so a reader who has seen the bytes arrive sees them counted.
        forwarded += allowed as u64;
        direction.add(allowed as u64);
        to.write_all(&buf[..allowed]).await?;
    }
}
