//! The accept loop and one connection: lines in (bounded), requests served
//! concurrently up to [`MAX_IN_FLIGHT`], responses and notifications out
//! through one writer task.

use std::sync::Arc;

use hush_client_core::client::{ConnectionState, Event, Events};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedReadHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use super::hub::{Note, Subscription};
use super::limits::{MAX_CONNECTIONS, MAX_IN_FLIGHT, MAX_LINE_BYTES, SHUTDOWN_GRACE, WRITE_QUEUE};
use super::methods::{self, Daemon};
use super::rpc::{self, RpcError};
use crate::exit::{CliError, Failure};

/// Serves `listener` until SIGTERM or SIGINT (`Ok`), or until the relay
/// connection stops for good (`Err`). Connections still busy get
/// [`SHUTDOWN_GRACE`] to finish.
pub async fn serve(
    listener: UnixListener,
    d: Daemon,
    mut events: Events,
    owner_uid: u32,
) -> Result<(), CliError> {
    let signal_failure =
        |e: std::io::Error| CliError::new(Failure::Other, format!("cannot handle signals: {e}"));
    let mut term = signal(SignalKind::terminate()).map_err(signal_failure)?;
    let mut int = signal(SignalKind::interrupt()).map_err(signal_failure)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let outcome = loop {
        tokio::select! {
            _ = term.recv() => break Ok(()),
            _ = int.recv() => break Ok(()),
            ev = events.recv() => match ev {
                None => break Err(stopped("the client ended")),
                Some(Event::Connection(ConnectionState::Replaced)) => {
                    break Err(stopped("another hush session of this user took over"));
                }
                Some(Event::Connection(ConnectionState::Stopped { reason })) => {
                    break Err(stopped(&reason));
                }
                Some(e) => d.hub.publish(&e),
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept(), if conns.len() < MAX_CONNECTIONS => {
                match accepted {
                    Ok((stream, _)) => {
                        if peer_is(&stream, owner_uid) {
                            conns.spawn(connection(stream, d.clone(), stop_rx.clone()));
                        }
                    }
                    Err(e) => tracing::warn!("accept failed: {e}"),
                }
            }
        }
    };
    let _ = stop_tx.send(true);
    let all = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
        conns.abort_all();
    }
    outcome
}

fn stopped(reason: &str) -> CliError {
    CliError::new(
        Failure::Other,
        format!("the daemon stopped: the relay connection ended ({reason})"),
    )
}

/// Only the profile's owner may talk to the daemon (the socket's mode
/// already says so; this holds even if the mode is loosened later).
fn peer_is(stream: &UnixStream, uid: u32) -> bool {
    stream.peer_cred().is_ok_and(|c| c.uid() == uid)
}

enum Line {
    Request(Vec<u8>),
    TooLong,
    End,
}

/// The next line, without its newline; at most [`MAX_LINE_BYTES`].
async fn read_line(r: &mut BufReader<OwnedReadHalf>) -> Line {
    let mut buf = Vec::new();
    let cap = MAX_LINE_BYTES as u64 + 1;
    match (&mut *r).take(cap).read_until(b'\n', &mut buf).await {
        Ok(0) | Err(_) => Line::End,
        Ok(_) => {
            if buf.last() == Some(&b'\n') {
                buf.pop();
                Line::Request(buf)
            } else if buf.len() > MAX_LINE_BYTES {
                Line::TooLong
            } else {
                // The last line, without a newline before the end.
                Line::Request(buf)
            }
        }
    }
}

/// One client: reads requests until it closes, the daemon stops, or its
/// `receive` subscription is dropped for reading too slowly.
async fn connection(stream: UnixStream, d: Daemon, mut stop: watch::Receiver<bool>) {
    let (rd, mut wr) = stream.into_split();
    let (out, mut out_rx) = mpsc::channel::<String>(WRITE_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(mut line) = out_rx.recv().await {
            line.push('\n');
            if wr.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
    });
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT as usize));
    let dropped = Arc::new(Notify::new());
    let mut reader = BufReader::new(rd);
    let mut forwarder = None;
    loop {
        let line = tokio::select! {
            _ = stop.changed() => break,
            () = dropped.notified() => break,
            l = read_line(&mut reader) => l,
        };
        let bytes = match line {
            Line::End => break,
            Line::TooLong => {
                let e = RpcError::line_too_long(MAX_LINE_BYTES);
                let _ = out.send(rpc::response(&json!(null), Err(e))).await;
                break;
            }
            Line::Request(b) if b.iter().all(u8::is_ascii_whitespace) => continue,
            Line::Request(b) => b,
        };
        let permit = tokio::select! {
            _ = stop.changed() => break,
            p = in_flight.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let req = match rpc::parse_request(&bytes) {
            Ok(r) => r,
            Err((id, e)) => {
                let _ = out.send(rpc::response(&id, Err(e))).await;
                continue;
            }
        };
        if req.method == "receive" {
            let outcome = if forwarder.is_some() {
                Err(RpcError::invalid_request(
                    "this connection already receives",
                ))
            } else {
                methods::subscribe(&d, req.params).await
            };
            let answer = outcome.as_ref().map(|_| json!({ "subscribed": true }));
            if let Some(id) = &req.id {
                let _ = out
                    .send(rpc::response(id, answer.map_err(Clone::clone)))
                    .await;
            }
            if let Ok(sub) = outcome {
                forwarder = Some(tokio::spawn(forward(sub, out.clone(), dropped.clone())));
            }
            continue;
        }
        let (d, out) = (d.clone(), out.clone());
        tokio::spawn(async move {
            let (method, params) = (req.method, req.params);
            // A bug in a method still gets an answer.
            let outcome = tokio::spawn(async move { methods::call(&d, &method, params).await })
                .await
                .unwrap_or_else(|_| Err(RpcError::internal("the daemon failed on this request")));
            if let Some(id) = req.id {
                let _ = out.send(rpc::response(&id, outcome)).await;
            }
            drop(permit);
        });
    }
    // Ending the subscription first: dropping it unsubscribes.
    if let Some(f) = forwarder {
        f.abort();
    }
    // Requests already read still get their answer (a send completes).
    let _ = in_flight.acquire_many(MAX_IN_FLIGHT).await;
    drop(out);
    let _ = writer.await;
}

/// Streams a subscription's notes to the connection; when the hub dropped
/// it (too slow), says so and ends the connection.
async fn forward(mut sub: Subscription, out: mpsc::Sender<String>, dropped: Arc<Notify>) {
    for note in std::mem::take(&mut sub.first) {
        if out.send(note_line(note)).await.is_err() {
            return;
        }
    }
    while let Some(note) = sub.live.recv().await {
        if out.send(note_line(note)).await.is_err() {
            return;
        }
    }
    let reason = "this receiver read too slowly and was dropped; what it missed is in the history";
    let _ = out
        .send(rpc::notification("dropped", json!({ "reason": reason })))
        .await;
    dropped.notify_one();
}

fn note_line(note: Note) -> String {
    match note {
        Note::Event(v) => rpc::notification("event", v),
        Note::Drained => rpc::notification("drained", json!({})),
        Note::Lagged(missed) => rpc::notification("lagged", json!({ "missed": missed })),
    }
}
