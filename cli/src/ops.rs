//! The operations behind the commands, written once and called from both
//! paths: a command that opens the profile itself (the direct path, in
//! `commands`) and `hush daemon` serving the same command for another
//! process (`daemon::methods`). Each takes the opened [`Profile`] or the
//! connected [`Client`] and returns the command's result in its `--json`
//! form ([`crate::output`]), which is also what the daemon sends; the text
//! lines are rendered from that form, so both paths print the same.

use std::path::Path;
use std::sync::Arc;

use hush_client_core::UserId;
use hush_client_core::client::{Client, ClientConfig, Events, Profile, SystemClock, SystemRandom};
use hush_client_core::limits::MAX_TEXT_LEN;
use hush_client_core::payload::MessageId;
use hush_client_core::store::{Contact, HistoryEntry};
use serde_json::{Value, json};

use crate::args::Global;
use crate::exit::{CliError, Failure};
use crate::output;

/// Randomness for keys: OS-seeded and reseeding ([`SystemRandom`]).
pub fn rng() -> SystemRandom {
    SystemRandom
}

/// Connects the opened `profile` with the global options (`--relay`,
/// `--ca-file`): receiving pushed envelopes when `receive`, subscribed to
/// the presence of `presence` from the first connection on.
pub async fn connect_profile(
    profile: Profile,
    g: &Global,
    receive: bool,
    presence: Vec<UserId>,
) -> Result<(Client, Events), CliError> {
    let config = ClientConfig {
        relay_url: g.relay.clone(),
        receive,
        ca_file: g.ca_file.clone(),
        presence,
        ..ClientConfig::default()
    };
    Ok(Client::connect(profile, config, Box::new(rng()), Arc::new(SystemClock)).await?)
}

/// Opens the profile in `dir` (asking for the passphrase) and connects it.
pub async fn open_and_connect(
    dir: &Path,
    g: &Global,
    receive: bool,
    presence: Vec<UserId>,
) -> Result<(Client, Events), CliError> {
    let profile = crate::home::open(dir)?;
    connect_profile(profile, g, receive, presence).await
}

/// What `send` refuses before connecting: an empty or whitespace-only
/// message and one beyond [`MAX_TEXT_LEN`] (usage errors, exit 2).
pub fn check_message(text: &str) -> Result<(), CliError> {
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

/// The usage error for a message of `len` bytes, over [`MAX_TEXT_LEN`].
pub fn too_long(len: usize) -> CliError {
    CliError::usage(format!(
        "the message is {len} bytes, over the limit of {MAX_TEXT_LEN} bytes (32 KiB of UTF-8): \
         shorten it or split it into several messages"
    ))
}

/// Sends `text` to `to` once the relay accepted it; its id (32 hex digits).
pub async fn send(client: &Client, to: &UserId, text: &str) -> Result<String, CliError> {
    check_message(text)?;
    Ok(client.send_text(to, text).await?.to_hex())
}

/// The contact `peer`, or "no contact named" (exit 4).
pub fn known_contact(profile: &Profile, peer: &UserId) -> Result<Contact, CliError> {
    profile.contact(peer)?.ok_or_else(|| {
        CliError::new(
            Failure::UnknownUser,
            format!("no contact named {peer}: exchange a message first"),
        )
    })
}

/// The stored conversation with `peer` (the newest `limit` messages), as
/// `history --json` objects.
pub fn history(
    profile: &Profile,
    peer: &UserId,
    limit: Option<usize>,
) -> Result<Vec<Value>, CliError> {
    let me = profile.user_id().as_str().to_owned();
    let contact = Some(known_contact(profile, peer)?);
    Ok(profile
        .history(peer, limit)?
        .iter()
        .map(|entry| output::history_json(&me, peer.as_str(), contact.as_ref(), entry))
        .collect())
}

/// Every known peer, as `contacts --json` objects.
pub fn contacts(profile: &Profile) -> Result<Vec<Value>, CliError> {
    Ok(profile
        .contacts()?
        .iter()
        .map(output::contact_json)
        .collect())
}

/// `{"user","pinned","pending"}`: the safety numbers of `peer`.
pub fn safety_number(profile: &Profile, peer: &UserId) -> Result<Value, CliError> {
    known_contact(profile, peer)?;
    let numbers = profile.safety_numbers(peer)?;
    Ok(json!({
        "user": peer.as_str(),
        "pinned": numbers.pinned,
        "pending": numbers.pending,
    }))
}

/// Trusts the pending key of `peer` whose safety number is `number`;
/// `false` when no key change is pending (nothing to trust).
pub fn trust(
    profile: &mut Profile,
    peer: &UserId,
    number: &str,
    now: u64,
) -> Result<bool, CliError> {
    known_contact(profile, peer)?;
    if profile.safety_numbers(peer)?.pending.is_none() {
        return Ok(false);
    }
    profile.trust(peer, number, now)?;
    Ok(true)
}

/// Adds `users` to (`allow`) or removes them from the presence allow list,
/// publishes the whole list and returns it.
pub async fn presence_edit(
    client: &Client,
    users: &[UserId],
    allow: bool,
) -> Result<Vec<UserId>, CliError> {
    let mut list = client.presence_allowed().await?;
    if allow {
        list.extend(users.iter().cloned());
    } else {
        list.retain(|u| !users.contains(u));
    }
    client.set_presence_allowed(list).await?;
    Ok(client.presence_allowed().await?)
}

/// The presence of `users` now, as `presence --json` objects.
pub async fn presence_query(client: &Client, users: &[UserId]) -> Result<Vec<Value>, CliError> {
    Ok(client
        .query_presence(users)
        .await?
        .iter()
        .map(output::presence_json)
        .collect())
}

/// What `hush chat` shows first for a peer (the daemon's `chat_open`
/// sends it as is, for `hush chat` only).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct OpenedChat {
    /// Our user id.
    pub me: String,
    /// The newest stored messages with the peer.
    pub history: Vec<HistoryEntry>,
    /// The peer as a contact, for the trust marks.
    pub contact: Option<Contact>,
}

/// The newest `limit` stored messages with `peer`, and the contact.
pub fn open_chat(
    profile: &mut Profile,
    peer: &UserId,
    limit: usize,
) -> Result<OpenedChat, CliError> {
    Ok(OpenedChat {
        me: profile.user_id().to_string(),
        history: profile.history(peer, Some(limit))?,
        contact: profile.contact(peer)?,
    })
}

/// The user read `ids` of `peer` in `hush chat`: reading a conversation
/// opened by name accepts a message request (as replying does), then the
/// read receipt goes.
pub async fn read(client: &Client, peer: &UserId, ids: Vec<MessageId>) -> Result<(), CliError> {
    let p = peer.clone();
    client
        .with_profile(move |prof| match prof.contact(&p) {
            Ok(Some(contact)) if contact.request => prof.accept(&p).map(|_| ()),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        })
        .await??;
    Ok(client.send_read_receipt(peer, ids).await?)
}
