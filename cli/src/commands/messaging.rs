//! Commands that talk to the relay: `send` and `recv`.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use hush_client_core::client::{Client, ClientConfig, Event, Events, SystemClock, SystemRandom};
use hush_protocol::UserId;

use super::offline::user_id;
use crate::args::{Global, RecvArgs, SendArgs};
use crate::exit::{CliError, Failure};
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
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::new(Failure::Other, format!("cannot read stdin: {e}")))?;
        s.strip_suffix('\n').map(str::to_owned).unwrap_or(s)
    } else {
        a.message
    };
    if text.is_empty() {
        return Err(CliError::usage("the message is empty"));
    }
    // Only send: envelopes waiting for us stay queued for `hush recv`.
    let (client, _events) = connect(g, false, Vec::new()).await?;
    let sent = client.send_text(&to, &text).await;
    client.close().await;
    println!("{}", sent?.to_hex());
    Ok(())
}

pub async fn recv(g: &Global, a: RecvArgs) -> Result<(), CliError> {
    let wait = match a.wait {
        Some(s) if s.is_finite() && s >= 0.0 => Some(Duration::from_secs_f64(s)),
        Some(_) => return Err(CliError::usage("--wait takes a number of seconds")),
        None => None,
    };
    let watch = a
        .presence
        .iter()
        .map(|u| user_id(u))
        .collect::<Result<Vec<_>, _>>()?;
    // Subscribed from the first connection on: the snapshot and every
    // change arrive as events, in order.
    let (client, mut events) = connect(g, true, watch).await?;
    let deadline = wait.map(|w| tokio::time::Instant::now() + w);
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
            if deadline.is_none() {
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
