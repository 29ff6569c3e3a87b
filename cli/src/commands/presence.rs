//! `hush presence` (the allow list, and asking for others' presence) and
//! `hush settings`.

use hush_client_core::UserId;
use serde_json::{Value, json};

use super::backend::{Backend, allowed_names};
use crate::args::{Global, PresenceArgs, PresenceCommand, SettingsArgs};
use crate::exit::{CliError, Failure};
use crate::user_id::user_id;
use crate::{home, ops, output};

pub async fn run(g: &Global, a: PresenceArgs) -> Result<(), CliError> {
    match a.command {
        Some(PresenceCommand::Allow(u)) => edit(g, &u.users, true, a.json).await,
        Some(PresenceCommand::Deny(u)) => edit(g, &u.users, false, a.json).await,
        None if a.users.is_empty() => {
            let allowed = Backend::pick(g).await?.presence_allowed().await?;
            print_allowed(&allowed, a.json);
            Ok(())
        }
        None => query(g, &a.users, a.json).await,
    }
}

fn parse_users(users: &[String]) -> Result<Vec<UserId>, CliError> {
    users.iter().map(|u| user_id(u)).collect()
}

fn names(users: &[UserId]) -> Vec<&str> {
    users.iter().map(UserId::as_str).collect()
}

/// Adds or removes users, then publishes the whole list.
async fn edit(g: &Global, users: &[String], allow: bool, json: bool) -> Result<(), CliError> {
    let users = parse_users(users)?;
    let key = if allow { "allow" } else { "deny" };
    let allowed = Backend::pick(g)
        .await?
        .online(
            g,
            "presence",
            json!({ key: names(&users) }),
            async |client| {
                let list = ops::presence_edit(client, &users, allow).await?;
                Ok(list.iter().map(UserId::to_string).collect())
            },
            allowed_names,
        )
        .await?;
    print_allowed(&allowed, json);
    Ok(())
}

fn print_allowed(list: &[String], json: bool) {
    if json {
        for u in list {
            output::print_json(&json!({ "user": u }));
        }
    } else if list.is_empty() {
        println!("your presence is visible to nobody");
    } else {
        println!("your presence is visible to: {}", list.join(", "));
    }
}

async fn query(g: &Global, users: &[String], json: bool) -> Result<(), CliError> {
    let users = parse_users(users)?;
    let entries = Backend::pick(g)
        .await?
        .online(
            g,
            "presence",
            json!({ "users": names(&users) }),
            async |client| ops::presence_query(client, &users).await,
            |mut r| match r.get_mut("presence").map(Value::take) {
                Some(Value::Array(items)) => Ok(items),
                _ => Err(CliError::new(
                    Failure::Other,
                    "the hush daemon's reply has no `presence` list",
                )),
            },
        )
        .await?;
    for entry in &entries {
        if json {
            output::print_json(entry);
        } else {
            println!("{}", output::presence_line(entry));
        }
    }
    Ok(())
}

pub fn settings(g: &Global, a: SettingsArgs) -> Result<(), CliError> {
    let mut profile = home::open(&home::profile_dir(g.home.as_ref())?)?;
    if let Some(on) = a.read_receipts {
        profile.update_settings(|s| s.send_read_receipts = on)?;
    }
    // For `settings`, the global --relay is the new stored relay (for other
    // commands it overrides the stored one for that command only).
    if let Some(url) = g.relay.as_deref() {
        hush_client_core::client::ws_url(url)?;
        if url != profile.relay_url() {
            // The new relay has its own id: the next connection pins it
            // (and the relay checks there that the user id is ours).
            profile.update_settings(|s| {
                s.relay_url = url.to_owned();
                s.relay_id = None;
            })?;
            if !a.json {
                eprintln!("relay changed; the next connection records the new relay's identity");
            }
        }
    }
    let s = profile.settings();
    let allowed = profile.presence_allowed();
    if a.json {
        output::print_json(&json!({
            "user": s.user_id,
            "relay": s.relay_url,
            "read_receipts": s.send_read_receipts,
            "presence_allowed": allowed.iter().map(UserId::as_str).collect::<Vec<_>>(),
        }));
    } else {
        println!("user: {}", s.user_id);
        println!("relay: {}", s.relay_url);
        println!(
            "read-receipts: {}",
            if s.send_read_receipts { "on" } else { "off" }
        );
        let names: Vec<&str> = allowed.iter().map(UserId::as_str).collect();
        println!(
            "presence-visible-to: {}",
            if names.is_empty() {
                "nobody".to_owned()
            } else {
                names.join(", ")
            }
        );
    }
    Ok(())
}
