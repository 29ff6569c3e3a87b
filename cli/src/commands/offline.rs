//! Commands that only read or change the local profile. `history`,
//! `contacts`, `safety-number` and `trust` also run through a running
//! `hush daemon` ([`Backend`]); the others need the profile to themselves.

use std::io::IsTerminal;

use hush_client_core::UserId;
use hush_client_core::client::{ClientError, Profile};
use serde_json::Value;

use super::backend::Backend;
use crate::args::{Global, HistoryArgs, JsonArg, SafetyNumberArgs, TrustArgs, UserArg};
use crate::exit::{CliError, Failure};
use crate::user_id::user_id;
use crate::{home, ops, output};

pub fn whoami(g: &Global) -> Result<(), CliError> {
    let profile = home::open(&home::profile_dir(g.home.as_ref())?)?;
    println!("user: {}", profile.user_id());
    println!("relay: {}", profile.relay_url());
    println!("fingerprint: {}", profile.fingerprint());
    Ok(())
}

pub async fn history(g: &Global, a: HistoryArgs) -> Result<(), CliError> {
    let peer = user_id(&a.user)?;
    let messages = Backend::pick(g).await?.history(&peer, a.limit).await?;
    print_all(&messages, a.json, output::history_line);
    Ok(())
}

pub async fn contacts(g: &Global, a: JsonArg) -> Result<(), CliError> {
    let contacts = Backend::pick(g).await?.contacts().await?;
    print_all(&contacts, a.json, output::contact_line);
    Ok(())
}

/// Each object as JSON, or as its text line.
fn print_all(items: &[Value], json: bool, line: fn(&Value) -> String) {
    for v in items {
        if json {
            output::print_json(v);
        } else {
            println!("{}", line(v));
        }
    }
}

/// The `pending` safety number of a `safety_number` result.
fn pending(numbers: &Value) -> Option<&str> {
    numbers.get("pending").and_then(Value::as_str)
}

pub async fn safety_number(g: &Global, a: SafetyNumberArgs) -> Result<(), CliError> {
    let peer = user_id(&a.user)?;
    let numbers = Backend::pick(g).await?.safety_number(&peer).await?;
    if a.json {
        output::print_json(&numbers);
        return Ok(());
    }
    let pinned = numbers.get("pinned").and_then(Value::as_str).unwrap_or("");
    match pending(&numbers) {
        None => println!("{pinned}"),
        Some(new) => {
            println!("pinned key: {pinned}");
            println!("new key:    {new}");
            eprintln!(
                "note: {peer} presented a new identity key. Compare the NEW key's number with \
                 {peer} out of band (in person or on a call you trust); if it matches, run \
                 `hush trust {peer} --safety-number '{new}'`, otherwise `hush reject {peer}`."
            );
        }
    }
    Ok(())
}

pub fn verify(g: &Global, a: UserArg) -> Result<(), CliError> {
    let peer = user_id(&a.user)?;
    let mut profile = home::open(&home::profile_dir(g.home.as_ref())?)?;
    ops::known_contact(&profile, &peer)?;
    profile.verify(&peer)?;
    println!("{peer} marked verified");
    Ok(())
}

pub async fn trust(g: &Global, a: TrustArgs) -> Result<(), CliError> {
    let peer = user_id(&a.user)?;
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if a.safety_number.is_none() && !interactive {
        return Err(CliError::usage(format!(
            "give the new key's safety number: `hush trust {peer} --safety-number DIGITS` \
             (see `hush safety-number {peer}`)"
        )));
    }
    let mut backend = Backend::pick(g).await?;
    let numbers = backend.safety_number(&peer).await?;
    let Some(pending) = pending(&numbers) else {
        println!("no changed key pending for {peer}");
        return Ok(());
    };
    let number = match a.safety_number {
        Some(n) => n,
        None => {
            println!("new safety number of {peer}: {pending}");
            if !confirm(&format!(
                "Does {peer} read out exactly this number (compared out of band)? [y/N] "
            ))? {
                println!("nothing trusted");
                return Ok(());
            }
            pending.to_owned()
        }
    };
    if !backend.trust(&peer, &number).await? {
        println!("no changed key pending for {peer}");
        return Ok(());
    }
    println!("the new identity key of {peer} is trusted (unverified); sending resumes");
    Ok(())
}

pub fn reject(g: &Global, a: UserArg) -> Result<(), CliError> {
    on_contact(
        g,
        a,
        |p, peer| p.reject(peer),
        |peer| {
            format!(
                "the new identity key of {peer} is rejected; the pinned key stays and sending resumes"
            )
        },
        |peer| format!("no changed key pending for {peer}"),
    )
}

pub fn block(g: &Global, a: UserArg) -> Result<(), CliError> {
    on_contact(
        g,
        a,
        |p, peer| p.block(peer),
        |peer| format!("{peer} is blocked: their messages are dropped unread"),
        |peer| format!("{peer} was already blocked"),
    )
}

pub fn unblock(g: &Global, a: UserArg) -> Result<(), CliError> {
    on_contact(
        g,
        a,
        |p, peer| p.unblock(peer),
        |peer| format!("{peer} is unblocked"),
        |peer| format!("{peer} was not blocked"),
    )
}

pub fn accept(g: &Global, a: UserArg) -> Result<(), CliError> {
    on_contact(
        g,
        a,
        |p, peer| p.accept(peer),
        |peer| format!("accepted the message request of {peer}"),
        |peer| format!("{peer} is not a message request"),
    )
}

/// Applies `change` to a known contact and says whether it changed
/// anything.
fn on_contact(
    g: &Global,
    a: UserArg,
    change: impl FnOnce(&mut Profile, &UserId) -> Result<bool, ClientError>,
    changed: impl FnOnce(&UserId) -> String,
    unchanged: impl FnOnce(&UserId) -> String,
) -> Result<(), CliError> {
    let peer = user_id(&a.user)?;
    let mut profile = home::open(&home::profile_dir(g.home.as_ref())?)?;
    ops::known_contact(&profile, &peer)?;
    if change(&mut profile, &peer)? {
        println!("{}", changed(&peer));
    } else {
        println!("{}", unchanged(&peer));
    }
    Ok(())
}

/// Asks a yes/no question on the terminal; anything but y/yes is no.
fn confirm(question: &str) -> Result<bool, CliError> {
    use std::io::Write;
    print!("{question}");
    std::io::stdout()
        .flush()
        .map_err(|e| CliError::new(Failure::Other, format!("cannot write: {e}")))?;
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| CliError::new(Failure::Other, format!("cannot read the answer: {e}")))?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
