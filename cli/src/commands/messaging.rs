//! Commands that talk to the relay: `send` and `recv`, directly or through
//! a running `hush daemon`.
//!
//! `recv` through the daemon means what it means directly: without
//! `--wait` it prints what is pending and exits, where pending is what the
//! daemon received since the last receiver took its events (kept for it,
//! see `daemon::hub`) and then what the relay still held when the daemon
//! connected; with `--wait` it goes on with what arrives.

use std::io::Read;

use hush_client_core::UserId;
use hush_client_core::client::{Client, Event, Events};
use hush_client_core::limits::MAX_TEXT_LEN;
use serde_json::{Value, json};

use super::backend::Backend;
use crate::args::{Global, RecvArgs, SendArgs};
use crate::daemon::client::DaemonClient;
use crate::duration::Wait;
use crate::exit::{CliError, Failure};
use crate::user_id::user_id;
use crate::{home, ops, output};

pub async fn send(g: &Global, a: SendArgs) -> Result<(), CliError> {
    let to = user_id(&a.user)?;
    let text = if a.message == "-" {
        read_stdin_message()?
    } else {
        a.message
    };
    ops::check_message(&text)?;
    // Directly, only send: envelopes waiting for us stay queued for
    // `hush recv`.
    let id = Backend::pick(g)
        .await?
        .online(
            g,
            "send",
            json!({ "to": to.as_str(), "text": text }),
            async |client| ops::send(client, &to, &text).await,
            |r| {
                r.get("id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| CliError::new(Failure::Other, "the hush daemon sent no id"))
            },
        )
        .await?;
    println!("{id}");
    Ok(())
}

/// The message on standard input, without one trailing newline. Reads at
/// most a little more than the limit into memory; beyond it only counts the
/// bytes, so that the error can say how big the message was.
fn read_stdin_message() -> Result<String, CliError> {
    let cant = |e: std::io::Error| CliError::new(Failure::Other, format!("cannot read stdin: {e}"));
    let mut stdin = std::io::stdin().lock();
    let mut bytes = Vec::new();
    // The limit, a trailing newline, and one byte to notice an excess.
    let cap = MAX_TEXT_LEN as u64 + 2;
    (&mut stdin)
        .take(cap)
        .read_to_end(&mut bytes)
        .map_err(cant)?;
    if bytes.len() as u64 == cap {
        // Too long: count the rest, noting whether it ends in a newline
        // (which is not part of the message).
        let mut total = bytes.len();
        let mut last = bytes.last().copied();
        let mut chunk = [0u8; 8192];
        loop {
            let n = match stdin.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(cant(e)),
            };
            total = total.saturating_add(n);
            last = chunk.get(n - 1).copied();
        }
        if last == Some(b'\n') {
            total -= 1;
        }
        return Err(ops::too_long(total));
    }
    if bytes.ends_with(b"\n") {
        bytes.pop();
    }
    String::from_utf8(bytes).map_err(|_| {
        CliError::usage("the message on stdin is not UTF-8 text: send text encoded as UTF-8")
    })
}

/// One thing `recv` is told, from the client or from the daemon.
enum Item {
    /// An event's JSON form and text line (either may be absent).
    Event {
        json: Option<Value>,
        line: Option<String>,
    },
    /// Everything pending when `recv` started has been received.
    Drained,
    /// No more (the client stopped).
    End,
}

/// Where `recv` gets its events.
enum Source {
    Direct(Client, Events),
    Daemon(DaemonClient),
}

impl Source {
    async fn next(&mut self) -> Result<Item, CliError> {
        match self {
            Source::Direct(_, events) => Ok(match events.recv().await {
                None => Item::End,
                Some(Event::Drained) => Item::Drained,
                Some(e) => Item::Event {
                    json: output::event_json(&e),
                    line: output::event_line(&e),
                },
            }),
            Source::Daemon(d) => loop {
                let Some((method, params)) = d.notification().await? else {
                    return Err(CliError::new(
                        Failure::Other,
                        "the hush daemon stopped while receiving",
                    ));
                };
                match method.as_str() {
                    "event" => {
                        return Ok(Item::Event {
                            line: output::event_json_line(&params),
                            json: Some(params),
                        });
                    }
                    "drained" => return Ok(Item::Drained),
                    "lagged" => eprintln!(
                        "hush: {} older events were dropped by the daemon while nobody \
                         received; the messages are in the history",
                        params.get("missed").and_then(Value::as_u64).unwrap_or(0)
                    ),
                    "dropped" => {
                        let reason = params.get("reason").and_then(Value::as_str);
                        return Err(CliError::new(
                            Failure::Other,
                            reason.unwrap_or("the hush daemon dropped this receiver"),
                        ));
                    }
                    _ => {}
                }
            },
        }
    }

    async fn close(self) {
        if let Source::Direct(client, _) = self {
            client.close().await;
        }
    }
}

pub async fn recv(g: &Global, a: RecvArgs) -> Result<(), CliError> {
    let watch = a
        .presence
        .iter()
        .map(|u| user_id(u))
        .collect::<Result<Vec<_>, _>>()?;
    let mut source = match Backend::pick(g).await? {
        Backend::Daemon(mut d) => {
            let names: Vec<&str> = watch.iter().map(UserId::as_str).collect();
            d.call("receive", json!({ "presence": names })).await?;
            Source::Daemon(d)
        }
        // Subscribed from the first connection on: the snapshot and every
        // change arrive as events, in order.
        Backend::Direct { dir, .. } => {
            let (client, events) = ops::open_and_connect(&dir, g, true, watch).await?;
            Source::Direct(client, events)
        }
    };
    let shown = show(&mut source, &a).await;
    source.close().await;
    shown
}

/// Prints what `source` yields: until drained without `--wait`, else
/// until the deadline (or forever).
async fn show(source: &mut Source, a: &RecvArgs) -> Result<(), CliError> {
    // A deadline too far to represent is the same as none (the duration
    // is already capped to 100 years).
    let (deadline, follow) = match a.wait {
        None => (None, false),
        Some(Wait::Forever) => (None, true),
        Some(Wait::For(w)) => (tokio::time::Instant::now().checked_add(w), true),
    };
    let mut received = 0usize;
    let progress = home::interactive() && !a.json;
    loop {
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d, source.next()).await {
                Ok(e) => e?,
                Err(_) => break,
            },
            None => source.next().await?,
        };
        let (json, line) = match next {
            Item::End => break,
            Item::Drained if follow => continue,
            Item::Drained => break,
            Item::Event { json, line } => (json, line),
        };
        if json
            .as_ref()
            .and_then(|v| v.get("type"))
            .and_then(Value::as_str)
            == Some("message")
        {
            received += 1;
        }
        if a.json {
            if let Some(v) = json {
                output::print_json(&v);
            }
        } else if let Some(line) = line {
            println!("{line}");
        }
        if progress && received > 0 && received.is_multiple_of(100) {
            eprint!("\r{received} messages received");
        }
    }
    if progress && received >= 100 {
        eprintln!();
    }
    Ok(())
}
