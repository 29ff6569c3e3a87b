//! The daemon's methods: params in, the `--json` form of the command's
//! result out, each through the same [`crate::ops`] function the direct
//! command calls. `receive` is here only as far as subscribing goes; the
//! connection (`server`) streams what follows.

use hush_client_core::UserId;
use hush_client_core::client::{Client, ClientError};
use hush_client_core::limits::MAX_RECEIPT_IDS;
use hush_client_core::payload::{MessageId, TypingState};
use serde::Deserialize;
use serde_json::{Value, json};

use super::hub::{Hub, Subscription};
use super::rpc::{RpcError, params};
use crate::exit::CliError;
use crate::user_id::user_id;
use crate::{ops, output};

/// What every connection shares: the connected client and the fan-out.
#[derive(Clone)]
pub struct Daemon {
    pub client: Client,
    pub hub: Hub,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendParams {
    to: String,
    text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerParams {
    peer: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryParams {
    peer: String,
    limit: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustParams {
    peer: String,
    safety_number: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypingParams {
    peer: String,
    state: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadParams {
    peer: String,
    ids: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PresenceParams {
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiveParams {
    #[serde(default)]
    presence: Vec<String>,
}

fn users(list: &[String]) -> Result<Vec<UserId>, RpcError> {
    Ok(list
        .iter()
        .map(|u| user_id(u))
        .collect::<Result<_, CliError>>()?)
}

/// Runs `f` on the daemon's profile (on the blocking pool).
async fn on_profile<T: Send + 'static>(
    client: &Client,
    f: impl FnOnce(&mut hush_client_core::client::Profile) -> Result<T, CliError> + Send + 'static,
) -> Result<T, RpcError> {
    let out = client
        .with_profile(f)
        .await
        .map_err(|e: ClientError| RpcError::from(CliError::from(e)))?;
    Ok(out?)
}

/// Serves one method call (all but `receive`).
pub async fn call(d: &Daemon, method: &str, p: Value) -> Result<Value, RpcError> {
    match method {
        "send" => {
            let p: SendParams = params(p)?;
            let to = user_id(&p.to)?;
            let id = ops::send(&d.client, &to, &p.text).await?;
            Ok(json!({ "id": id, "status": "sent" }))
        }
        "history" => {
            let p: HistoryParams = params(p)?;
            let peer = user_id(&p.peer)?;
            let messages =
                on_profile(&d.client, move |pr| ops::history(pr, &peer, p.limit)).await?;
            Ok(json!({ "messages": messages }))
        }
        "contacts" => {
            let _: NoParams = params(p)?;
            let contacts = on_profile(&d.client, |pr| ops::contacts(pr)).await?;
            Ok(json!({ "contacts": contacts }))
        }
        "safety_number" => {
            let p: PeerParams = params(p)?;
            let peer = user_id(&p.peer)?;
            on_profile(&d.client, move |pr| ops::safety_number(pr, &peer)).await
        }
        "trust" => {
            let p: TrustParams = params(p)?;
            let peer = user_id(&p.peer)?;
            let now = crate::time::now_ms();
            let trusted = on_profile(&d.client, move |pr| {
                ops::trust(pr, &peer, &p.safety_number, now)
            })
            .await?;
            Ok(json!({ "trusted": trusted }))
        }
        "presence" => presence(d, params(p)?).await,
        "typing" => {
            let p: TypingParams = params(p)?;
            let peer = user_id(&p.peer)?;
            let state = match p.state.as_str() {
                "started" => TypingState::Started,
                "stopped" => TypingState::Stopped,
                _ => return Err(RpcError::invalid_params("`state` is started or stopped")),
            };
            let sent = d.client.send_typing(&peer, state).await.unwrap_or(false);
            Ok(json!({ "sent": sent }))
        }
        "read" => {
            let p: ReadParams = params(p)?;
            let peer = user_id(&p.peer)?;
            let ids = p
                .ids
                .iter()
                .map(|i| MessageId::from_hex(i))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| RpcError::invalid_params("`ids` are 32 hex digits each"))?;
            if ids.len() > MAX_RECEIPT_IDS {
                return Err(RpcError::invalid_params(format!(
                    "at most {MAX_RECEIPT_IDS} ids"
                )));
            }
            ops::read(&d.client, &peer, ids).await?;
            Ok(json!({}))
        }
        "chat_open" => {
            let p: HistoryParams = params(p)?;
            let peer = user_id(&p.peer)?;
            let limit = p.limit.unwrap_or(usize::MAX);
            let opened = on_profile(&d.client, move |pr| ops::open_chat(pr, &peer, limit)).await?;
            serde_json::to_value(opened).map_err(|e| RpcError::internal(e.to_string()))
        }
        _ => Err(RpcError::method_not_found(method)),
    }
}

/// `contacts` takes no params.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

async fn presence(d: &Daemon, p: PresenceParams) -> Result<Value, RpcError> {
    let given = [!p.users.is_empty(), !p.allow.is_empty(), !p.deny.is_empty()];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(RpcError::invalid_params(
            "give at most one of `users`, `allow` and `deny`",
        ));
    }
    let allowed = |list: Vec<UserId>| json!({ "allowed": list.iter().map(UserId::as_str).collect::<Vec<_>>() });
    if !p.users.is_empty() {
        let entries = ops::presence_query(&d.client, &users(&p.users)?).await?;
        return Ok(json!({ "presence": entries }));
    }
    if !p.allow.is_empty() || !p.deny.is_empty() {
        let allow = !p.allow.is_empty();
        let list = if allow { &p.allow } else { &p.deny };
        let list = ops::presence_edit(&d.client, &users(list)?, allow).await?;
        return Ok(allowed(list));
    }
    let list = on_profile(&d.client, |pr| Ok(pr.presence_allowed())).await?;
    Ok(allowed(list))
}

/// Subscribes a connection to the event stream (`receive`): with
/// `presence`, the client's presence subscription grows to include those
/// users and their state now comes first.
pub async fn subscribe(d: &Daemon, p: Value) -> Result<Subscription, RpcError> {
    let p: ReceiveParams = params(p)?;
    let watch = users(&p.presence)?;
    let mut snapshot = Vec::new();
    if !watch.is_empty() {
        let all = d.hub.presence_union(&watch);
        let entries = d
            .client
            .subscribe_presence(all)
            .await
            .map_err(|e| RpcError::from(CliError::from(e)))?;
        snapshot = entries
            .iter()
            .filter(|e| watch.contains(&e.user))
            .map(output::presence_json)
            .collect();
    }
    Ok(d.hub.subscribe(watch, snapshot))
}
