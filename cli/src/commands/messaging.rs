//! Commands that talk to the relay: `send` and `recv`.

use std::io::Read;
use std::sync::Arc;

use hush_client_core::UserId;
use hush_client_core::client::{Client, ClientConfig, Event, Events, SystemClock, SystemRandom};
use hush_client_core::limits::MAX_TEXT_LEN;

use crate::args::{Global, RecvArgs, SendArgs};
use crate::duration::Wait;
use crate::exit::{CliError, Failure};
use crate::user_id::user_id;
use crate::{home, output};

/// Randomness for keys: OS-seeded and reseeding ([`SystemRandom`]).
pub fn rng() -> SystemRandom {
    SystemRandom
}

pub(super) async fn connect(
    g: &Global,
    receive: bool,
    presence: Vec<UserId>,
) -> Result<(Client, Events), CliError> {
    let profile = home::open(&home::profile_dir(g.home.as_ref())?)?;
    let config = ClientConfig {
        relay_url: g.relay.clone(),
        receive,
        ca_file: g.ca_file.clone(),
        presence,
        ..ClientConfig::default()
    };
    Ok(Client::connect(profile, config, Box::new(rng()), Arc::new(SystemClock)).await?)
}

pub async fn send(g: &Global, a: SendArgs) -> Result<(), CliError> {
    let to = user_id(&a.user)?;
    let text = if a.message == "-" {
        read_stdin_message()?
    } else {
        a.message
    };
    check_message(&text)?;
    // Only send: envelopes waiting for us stay queued for `hush recv`.
    let (client, _events) = connect(g, false, Vec::new()).await?;
    let sent = client.send_text(&to, &text).await;
    client.close().await;
    println!("{}", sent?.to_hex());
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
        return Err(too_long(total));
    }
    if bytes.ends_with(b"\n") {
        bytes.pop();
    }
    String::from_utf8(bytes).map_err(|_| {
        CliError::usage("the message on stdin is not UTF-8 text: send text encoded as UTF-8")
    })
}

/// What `send` refuses before connecting: an empty or whitespace-only
/// message and one beyond [`MAX_TEXT_LEN`] (usage errors, exit 2).
fn check_message(text: &str) -> Result<(), CliError> {
    if text.is_empty() {
        return Err(CliError::usage(
            "the message is empty: give some text (or `-` to read it from stdin)",
        ));
    }
    if text.trim().is_empty() {
        return Err(CliError::usage(
            "the message is only whitespace: give some text (or `-` to read it from stdin)",
        ));
    }
    if text.len() > MAX_TEXT_LEN {
        return Err(too_long(text.len()));
    }
    Ok(())
}

fn too_long(len: usize) -> CliError {
    CliError::usage(format!(
        "the message is {len} bytes, over the limit of {MAX_TEXT_LEN} bytes (32 KiB of UTF-8): \
         shorten it or split it into several messages"
    ))
}

pub async fn recv(g: &Global, a: RecvArgs) -> Result<(), CliError> {
    let watch = a
        .presence
        .iter()
        .map(|u| user_id(u))
        .collect::<Result<Vec<_>, _>>()?;
    // Subscribed from the first connection on: the snapshot and every
    // change arrive as events, in order.
    let (client, mut events) = connect(g, true, watch).await?;
    // Without --wait: until drained. A deadline too far to represent is
    // the same as none (the duration is already capped to 100 years).
    let (deadline, follow) = match a.wait {
        None => (None, false),
        Some(Wait::Forever) => (None, true),
        Some(Wait::For(w)) => (tokio::time::Instant::now().checked_add(w), true),
    };
    let mut received = 0usize;
    let progress = home::interactive() && !a.json;
    loop {
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d, events.recv()).await {
                Ok(e) => e,
                Err(_) => break,
            },
            None => events.recv().await,
        };
        let Some(event) = next else { break };
        if matches!(event, Event::Drained) {
            if !follow {
                break;
            }
            continue;
        }
        if matches!(event, Event::Message(_)) {
            received += 1;
        }
        if a.json {
            if let Some(v) = output::event_json(&event) {
                output::print_json(&v);
            }
        } else if let Some(line) = output::event_line(&event) {
            println!("{line}");
        }
        if progress && received > 0 && received.is_multiple_of(100) {
            eprint!("\r{received} messages received");
        }
    }
    if progress && received >= 100 {
        eprintln!();
    }
    client.close().await;
    Ok(())
}
