//! A real TCP proxy that injects faults between a client and a server on loopback: cut a
//! connection after N bytes in either direction, delay every chunk, or stall once. Sync and
//! server tests put it between a device and the server to show that nothing is lost or repeated.
//! It can also play a slow link (a bandwidth limit and a one-way latency per direction), which
//! the sync benchmarks use to stand for a weak rural signal.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

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
    /// Carry each direction at no more than this many bytes per second; what arrives faster
    /// waits its turn, as on a slow link.
    pub rate_bytes_per_sec: Option<u64>,
    /// Deliver every byte this long after it left, in each direction. Unlike `delay`, bytes in
    /// flight do not wait for each other: a round trip costs twice this, however many chunks.
    pub latency: Duration,
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

    /// A link of `bits_per_sec` each way with a round trip of `rtt` (half of it each way).
    pub fn link(bits_per_sec: u64, rtt: Duration) -> Self {
        Self {
            rate_bytes_per_sec: Some((bits_per_sec / 8).max(1)),
            latency: rtt / 2,
            ..Self::default()
        }
    }

    fn shapes(&self) -> bool {
        self.rate_bytes_per_sec.is_some() || !self.latency.is_zero()
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
    // On a slow link the client's first bytes could leave only once the TCP handshake had
    // taken its round trip; on loopback it took none, so the link waits it out here.
    let opened = Instant::now();
    tokio::select! {
        _ = pump(client_read, server_write, up, fault, opened + fault.latency * 2) => {},
        _ = pump(server_read, client_write, down, fault, opened) => {},
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

/// Forwards one direction; on a slow link its bytes leave no earlier than `usable_from`.
async fn pump(
    from: OwnedReadHalf,
    to: OwnedWriteHalf,
    direction: Direction,
    fault: Fault,
    usable_from: Instant,
) -> io::Result<()> {
    if fault.shapes() {
        pump_link(from, to, direction, fault, usable_from).await
    } else {
        pump_direct(from, to, direction, fault).await
    }
}

async fn pump_direct(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    direction: Direction,
    fault: Fault,
) -> io::Result<()> {
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

/// Bytes on a slow link leave one after another at the link's rate and arrive `latency` after
/// they left. Sent in pieces about the size of a TCP segment, so a large read trickles out as
/// it would on the link rather than arriving in one late lump.
const LINK_PIECE: usize = 1_460;

/// When each piece of one direction's bytes reaches the other side.
struct Link {
    rate: Option<u64>,
    latency: Duration,
    /// When the link finishes sending what it has been given so far.
    free_at: Instant,
}

impl Link {
    fn deliver_at(&mut self, bytes: usize) -> Instant {
        let start = self.free_at.max(Instant::now());
        let sending = self.rate.map_or(Duration::ZERO, |rate| {
            Duration::from_secs_f64(bytes as f64 / rate as f64)
        });
        self.free_at = start + sending;
        self.free_at + self.latency
    }
}

/// `pump` through a slow link: the reader schedules each piece, the writer delivers it on time.
/// Cuts, delays and stalls apply as in `pump_direct`, at the reading end.
async fn pump_link(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    direction: Direction,
    fault: Fault,
    usable_from: Instant,
) -> io::Result<()> {
    let (queue, mut arrivals) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let cut_after = direction.cut_after;
    let read = async move {
        let mut link = Link {
            rate: fault.rate_bytes_per_sec,
            latency: fault.latency,
            free_at: usable_from,
        };
        let mut buf = vec![0u8; 16 * 1024];
        let mut taken: u64 = 0;
        let mut stalled = false;
        loop {
            if cut_after.is_some_and(|limit| taken >= limit) {
                return Ok::<_, io::Error>(false);
            }
            let n = from.read(&mut buf).await?;
            if n == 0 {
                return Ok(true);
            }
            let allowed = cut_after.map_or(n, |limit| n.min(usize::try_from(limit - taken).unwrap_or(usize::MAX)));
            if !fault.delay.is_zero() {
                tokio::time::sleep(fault.delay).await;
            }
            if let Some((after, pause)) = fault.stall
                && !stalled
                && taken + allowed as u64 >= after
            {
                stalled = true;
                tokio::time::sleep(pause).await;
            }
            taken += allowed as u64;
            for piece in buf[..allowed].chunks(LINK_PIECE) {
                // The writer only stops when the connection is going away; nothing to deliver to.
                if queue.send((link.deliver_at(piece.len()), piece.to_vec())).is_err() {
                    return Ok(false);
                }
            }
        }
    };
    let counter = &direction;
    let write = async move {
        while let Some((at, piece)) = arrivals.recv().await {
            tokio::time::sleep_until(at).await;
            // Counted before writing, as in `pump_direct`.
            counter.add(piece.len() as u64);
            to.write_all(&piece).await?;
        }
        Ok::<_, io::Error>(to)
    };
    let (ended, mut to) = tokio::try_join!(read, write)?;
    if ended {
        to.shutdown().await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_slow_link_paces_bytes_and_delays_them_each_way() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let target = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = vec![0u8; 10_000];
            socket.read_exact(&mut request).await.expect("request");
            socket.write_all(b"ok").await.expect("answer");
        });
        let proxy = FaultProxy::start(target).await.expect("proxy");
        // 10,000 bytes a second, 100 ms each way.
        proxy.set_fault(Fault::link(80_000, Duration::from_millis(200)));
        let started = std::time::Instant::now();
        let mut client = TcpStream::connect(proxy.addr()).await.expect("connect");
        client.write_all(&[7u8; 10_000]).await.expect("send");
        let mut answer = [0u8; 2];
        client.read_exact(&mut answer).await.expect("answer");
        let took = started.elapsed();
        // The TCP handshake's round trip, a second to send, and 100 ms each way.
        assert!(
            took >= Duration::from_millis(1_380) && took < Duration::from_millis(2_000),
            "{took:?}"
        );
        assert_eq!(&answer, b"ok");
        assert_eq!(proxy.bytes(), (10_000, 2));
    }
}
