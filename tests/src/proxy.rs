//! A recording TCP proxy: listens on 127.0.0.1:0, forwards every
//! connection to an upstream address (the relay) and keeps every byte of
//! both directions, per connection, so a test can check what crossed the
//! wire. [`RecordingProxy::recordings`] waits for the connections to close
//! first, so nothing in flight is missed.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::process::runtime;

/// How long [`RecordingProxy::recordings`] waits for open connections.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// The bytes of one proxied connection.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    /// Everything the client sent towards the relay.
    pub to_relay: Vec<u8>,
    /// Everything the relay sent back to the client.
    pub from_relay: Vec<u8>,
}

#[derive(Debug, Default)]
struct Shared {
    connections: Mutex<Vec<Arc<Mutex<Recording>>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// A running proxy; stops (and cuts its connections) on drop.
#[derive(Debug)]
pub struct RecordingProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl RecordingProxy {
    /// Starts forwarding 127.0.0.1:(free port) to `upstream`.
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = runtime()
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .unwrap_or_else(|e| panic!("proxy cannot bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("proxy has no address: {e}"));
        let shared = Arc::new(Shared::default());
        let accept = runtime().spawn(accept_loop(listener, upstream, shared.clone()));
        Self {
            addr,
            shared,
            accept,
        }
    }

    /// `ws://127.0.0.1:PORT` of the proxy.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// The proxy's own address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until every connection accepted so far has closed (both
    /// directions copied to the end), then returns their recordings in
    /// accept order.
    ///
    /// # Panics
    ///
    /// When a connection is still open after [`DRAIN_TIMEOUT`].
    pub fn recordings(&self) -> Vec<Recording> {
        let tasks = std::mem::take(&mut *lock(&self.shared.tasks));
        runtime().block_on(async {
            for task in tasks {
                if tokio::time::timeout(DRAIN_TIMEOUT, task).await.is_err() {
                    panic!("a proxied connection stayed open for {DRAIN_TIMEOUT:?}");
                }
            }
        });
        lock(&self.shared.connections)
            .iter()
            .map(|c| lock(c).clone())
            .collect()
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.accept.abort();
        for task in lock(&self.shared.tasks).iter() {
            task.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another test thread panicked while
    // holding it; the bytes are still worth reading.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    while let Ok((client, _)) = listener.accept().await {
        let recording = Arc::new(Mutex::new(Recording::default()));
        lock(&shared.connections).push(recording.clone());
        let task = tokio::spawn(proxy_one(client, upstream, recording));
        lock(&shared.tasks).push(task);
    }
}

async fn proxy_one(client: TcpStream, upstream: SocketAddr, recording: Arc<Mutex<Recording>>) {
    let Ok(relay) = TcpStream::connect(upstream).await else {
        // Upstream down: the client sees its connection closed.
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (relay_read, relay_write) = relay.into_split();
    let up = copy_recording(
        client_read,
        relay_write,
        recording.clone(),
        Direction::ToRelay,
    );
    let down = copy_recording(relay_read, client_write, recording, Direction::FromRelay);
    tokio::join!(up, down);
}

#[derive(Clone, Copy)]
enum Direction {
    ToRelay,
    FromRelay,
}

async fn copy_recording(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    recording: Arc<Mutex<Recording>>,
    direction: Direction,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        {
            let mut r = lock(&recording);
            match direction {
                Direction::ToRelay => r.to_relay.extend_from_slice(chunk),
                Direction::FromRelay => r.from_relay.extend_from_slice(chunk),
            }
        }
        if to.write_all(chunk).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
