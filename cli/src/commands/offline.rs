//! Commands that only read or change the local profile.

use hush_protocol::UserId;

use crate::args::{Global, HistoryArgs, JsonArg, UserArg};
use crate::exit::{CliError, Failure};
use crate::{home, output};

pub fn user_id(s: &str) -> Result<UserId, CliError> {
    UserId::try_from(s).map_err(|e| CliError::usage(format!("{s:?} is not a user id: {e}")))
}

pub fn now_ms() -> u64 {
    use hush_client_core::client::{Clock, SystemClock};
    SystemClock.now_ms()
}

pub fn whoami(g: &Global) -> Result<(), CliError> {
    let profile = home::open(&home::profile_dir(g.home.as_ref())?)?;
    println!("user: {}", profile.user_id());
    println!("relay: {}", profile.relay_url());
    println!("fingerprint: {}", profile.fingerprint());
    Ok(())
}

pub fn history(g: &Global, a: HistoryArgs) -> Result<(), CliError> {
    let peer = user_id(&a.user)?;
    let profile = home::open(&home::profile_dir(g.home.as_ref())?)?;
    let me = profile.user_id().as_str().to_owned();
    for entry in profile.history(&peer, a.limit)? {
        if a.json {
            output::print_json(&output::history_json(&me, peer.as_str(), &entry));
        } else {
            println!("{}", output::history_line(&me, peer.as_str(), &entry));
        }
    }
    Ok(())
}

pub fn contacts(g: &Global, a: JsonArg) -> Result<(), CliError> {
    let profile = home::open(&home::profile_dir(g.home.as_ref())?)?;
    for c in profile.contacts()? {
        if a.json {
            output::print_json(&output::contact_json(&c));
        } else {
            println!("{}", output::contact_line(&c));
        }
    }
    Ok(())
}

pub fn safety_number(g: &Global, a: UserArg) -> Result<(), CliError> {
    let peer = user_id(&a.user)?;
    let profile = home::open(&home::profile_dir(g.home.as_ref())?)?;
    let contact = profile.contact(&peer)?.ok_or_else(|| {
        CliError::new(
            Failure::UnknownUser,
            format!("no contact named {peer}: exchange a message first"),
        )
    })?;
    let number = profile.safety_number(&peer)?;
    println!("{number}");
    if contact.has_pending_key_change() {
        eprintln!(
            "note: {peer} presented a new identity key; this number is for the key pinned \
             before. After `hush trust {peer}` it changes."
        );
    }
    Ok(())
}

pub fn verify(g: &Global, a: UserArg) -> Result<(), CliError> {
    let peer = user_id(&a.user)?;
    let mut profile = home::open(&home::profile_dir(g.home.as_ref())?)?;
    profile.verify(&peer)?;
    println!("{peer} marked verified");
    Ok(())
}

pub fn trust(g: &Global, a: UserArg) -> Result<(), CliError> {
    let peer = user_id(&a.user)?;
    let mut profile = home::open(&home::profile_dir(g.home.as_ref())?)?;
    if profile.trust(&peer, now_ms())? {
        println!("the new identity key of {peer} is trusted (unverified); sending resumes");
    } else {
        println!("no changed key pending for {peer}");
    }
    Ok(())
}
