//! `hush chat USER`: the interactive conversation.
//!
//! The profile is opened (passphrase asked) and the client connected before
//! the terminal switches to raw mode, or, while a `hush daemon` of the
//! profile runs, the chat goes through it ([`backend`]); the last [`HISTORY`] messages with the
//! peer come from the stored history. Then one loop selects over terminal
//! events (crossterm's `EventStream`), client events and a tick, and never
//! blocks: messages are sent by a worker task in the order typed (its
//! results come back on a channel) and typing indicators by another, best
//! effort. The pure rules live in [`state`], [`input`], [`typing`] and
//! [`wrap`]; [`ui`] draws; [`terminal`] restores the terminal on every way
//! out.

mod backend;
mod input;
mod state;
mod terminal;
mod typing;
mod ui;
mod wrap;

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{Event as TermEvent, EventStream};
use futures_util::StreamExt;
use hush_client_core::UserId;
use hush_client_core::client::{
    Client, ClientConfig, Event, Events, PresenceEntry, SystemClock, SystemRandom,
};
use hush_client_core::limits::MAX_RECEIPT_IDS;
use hush_client_core::payload::{MessageId, TypingState};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::debug;

use crate::args::{Global, UserArg};
use crate::daemon::client::DaemonClient;
use crate::exit::{CliError, Failure};
use crate::home;
use crate::time::now_ms;
use crate::user_id::user_id;
use backend::{Daemon, Direct, SendError, Shared};
use input::{Action, Command, Scroll, Submitted, classify, map_key};
use state::{ChatState, Link, Trust};
use terminal::TerminalGuard;

/// Messages loaded from the history when the chat opens.
pub const HISTORY: usize = 200;
/// How often timers (typing indicators) are checked and the screen redrawn
/// without other cause.
const TICK: Duration = Duration::from_millis(250);
/// Client events handled between two draws, at most.
const EVENT_BATCH: usize = 256;
/// Messages typed but not yet handed to the relay, at most.
const OUTBOX: usize = 256;
/// On quit, how long to wait for typed messages still being sent.
const FINISH_SENDS: Duration = Duration::from_secs(35);
/// On quit, how long to wait for other outgoing work (receipts, typing).
const FINISH_OTHER: Duration = Duration::from_secs(3);
/// On quit, how long the last typing indicator may take.
const TYPING_STOP_WAIT: Duration = Duration::from_secs(1);

pub async fn run(g: &Global, a: UserArg) -> Result<(), CliError> {
    let peer = user_id(&a.user)?;
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Err(CliError::usage(
            "hush chat needs a terminal; scripts use `hush send` and `hush recv`",
        ));
    }
    let dir = home::profile_dir(g.home.as_ref())?;
    let (backend, events, link) = match crate::daemon::client::find(&dir).await {
        Some(calls) => connect_daemon(calls, &dir, &peer).await?,
        None => connect_direct(g, &dir, &peer).await?,
    };
    let opened = match backend.open(peer.clone()).await {
        Ok(o) => o,
        Err(e) => {
            backend.close().await;
            return Err(CliError::new(Failure::Other, e));
        }
    };
    if opened.me == peer.as_str() {
        backend.close().await;
        return Err(CliError::usage("you cannot chat with yourself"));
    }
    let trust = Trust::of(opened.contact.as_ref());
    let mut st = ChatState::new(&opened.me, peer.as_str(), opened.history, trust);
    st.link = link;
    let mut workers = Workers::start(&backend);
    workers.set_online(st.link == Link::Connected);
    let outcome = match TerminalGuard::enter() {
        Ok(mut guard) => {
            let outcome = session(&mut guard, &mut st, events, &mut workers, &backend).await;
            drop(guard);
            outcome
        }
        Err(e) => Err(CliError::new(
            Failure::Other,
            format!("cannot set up the terminal: {e}"),
        )),
    };
    workers.finish(&st).await;
    backend.close().await;
    outcome
}

/// The profile opened here and a client of its own, which keeps trying the
/// relay: the chat opens at once with the history, the header says
/// "connecting…" until the relay answers, and typed messages wait.
async fn connect_direct(
    g: &Global,
    dir: &std::path::Path,
    peer: &UserId,
) -> Result<(Shared, Events, Link), CliError> {
    let profile = home::open(dir)?;
    if home::interactive() {
        eprintln!(
            "connecting to {}…",
            g.relay.as_deref().unwrap_or(profile.relay_url())
        );
    }
    let config = ClientConfig {
        relay_url: g.relay.clone(),
        receive: true,
        start_offline: true,
        ca_file: g.ca_file.clone(),
        // The peer's online state, if they let us see it: the snapshot and
        // every change arrive as events, in order. A relay without presence
        // just shows none.
        presence: vec![peer.clone()],
        ..ClientConfig::default()
    };
    let (client, events) = Client::connect(
        profile,
        config,
        Box::new(SystemRandom),
        Arc::new(SystemClock),
    )
    .await?;
    Ok((Arc::new(Direct(client)), events, Link::Connecting))
}

/// A running `hush daemon`: requests on `calls`, events (with the peer's
/// presence) on a second connection subscribed with `receive`.
async fn connect_daemon(
    calls: DaemonClient,
    dir: &std::path::Path,
    peer: &UserId,
) -> Result<(Shared, Events, Link), CliError> {
    let mut stream = crate::daemon::client::find(dir)
        .await
        .ok_or_else(|| CliError::new(Failure::Other, "the hush daemon went away"))?;
    stream
        .call(
            "receive",
            serde_json::json!({ "presence": [peer.as_str()] }),
        )
        .await?;
    let (tx, events) = mpsc::channel(EVENT_BATCH);
    tokio::spawn(backend::daemon_events(stream, tx));
    let backend: Shared = Arc::new(Daemon(tokio::sync::Mutex::new(calls)));
    Ok((backend, events, Link::Connected))
}

/// Whether the loop goes on.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Quit,
    /// `/chat USER`: switch to USER's conversation.
    Switch(UserId),
}

async fn session(
    guard: &mut TerminalGuard,
    st: &mut ChatState,
    mut events: Events,
    w: &mut Workers,
    backend: &Shared,
) -> Result<(), CliError> {
    let term_err = |e: std::io::Error| CliError::new(Failure::Other, format!("terminal: {e}"));
    let sig_err = |e: std::io::Error| CliError::new(Failure::Other, format!("signals: {e}"));
    let mut term_events = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sigterm = signal(SignalKind::terminate()).map_err(sig_err)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(sig_err)?;
    let mut client_open = true;
    loop {
        let now = Instant::now();
        if let Some(s) = st.our_typing.tick(now) {
            w.typing(&st.peer, s);
        }
        guard.terminal.draw(|f| ui::draw(f, st)).map_err(term_err)?;
        for ids in st.take_read().chunks(MAX_RECEIPT_IDS) {
            // Best effort: a full outbox drops the receipt, not the UI.
            let _ = w.out.try_send(Out::Read {
                peer: st.peer.clone(),
                ids: ids.to_vec(),
            });
        }
        tokio::select! {
            ev = term_events.next() => match ev {
                Some(Ok(ev)) => match on_terminal(ev, st, w, guard).map_err(term_err)? {
                    Flow::Continue => {}
                    Flow::Quit => break,
                    Flow::Switch(peer) => switch(st, w, backend, peer).await,
                },
                Some(Err(e)) => return Err(term_err(e)),
                // The terminal's input ended.
                None => break,
            },
            ev = events.recv(), if client_open => match ev {
                Some(ev) => {
                    on_client(ev, st);
                    // A backlog arrives in bursts: take what is already
                    // there before drawing again.
                    for _ in 0..EVENT_BATCH {
                        match events.try_recv() {
                            Ok(ev) => on_client(ev, st),
                            Err(_) => break,
                        }
                    }
                    w.set_online(st.link == Link::Connected);
                }
                None => {
                    client_open = false;
                    st.link = Link::Stopped("stopped".into());
                    w.set_online(false);
                }
            },
            Some(done) = w.done.recv() => on_done(done, st),
            Some((peer, entries)) = w.presence.recv() => {
                if peer.as_str() == st.peer {
                    for e in &entries {
                        st.presence(e);
                    }
                }
            }
            _ = tick.tick() => {}
            _ = sigterm.recv() => break,
            _ = sighup.recv() => break,
        }
    }
    if let Some(s) = st.our_typing.stop() {
        w.typing(&st.peer, s);
    }
    Ok(())
}

/// `/chat USER`: the conversation with USER replaces this one on screen
/// (its stored history, trust and presence); the connection, the
/// passphrase and messages still being sent to the previous peer stay.
async fn switch(st: &mut ChatState, w: &mut Workers, backend: &Shared, peer: UserId) {
    if peer.as_str() == st.peer {
        st.set_status(format!("already chatting with {peer}"), false);
        return;
    }
    if peer.as_str() == st.me {
        st.set_status("you cannot chat with yourself", true);
        return;
    }
    let opened = match backend.open(peer.clone()).await {
        Ok(o) => o,
        Err(e) => {
            st.set_status(format!("cannot open the chat with {peer}: {e}"), true);
            return;
        }
    };
    if let Some(s) = st.our_typing.stop() {
        w.typing(&st.peer, s);
    }
    let trust = Trust::of(opened.contact.as_ref());
    let mut next = ChatState::new(&st.me, peer.as_str(), opened.history, trust);
    next.continue_from(st);
    *st = next;
    st.set_status(format!("now chatting with {peer}"), false);
    // The peer's presence, if they let us see it: the snapshot comes back
    // on a channel; changes then arrive as events (renewed on reconnect).
    let (b, tx) = (backend.clone(), w.presence_tx.clone());
    tokio::spawn(async move {
        let entries = b.subscribe_presence(peer.clone()).await;
        let _ = tx.send((peer, entries)).await;
    });
}

fn on_terminal(
    ev: TermEvent,
    st: &mut ChatState,
    w: &mut Workers,
    guard: &mut TerminalGuard,
) -> std::io::Result<Flow> {
    let now = Instant::now();
    match ev {
        TermEvent::Key(key) => match map_key(key) {
            Action::Quit => return Ok(Flow::Quit),
            Action::Submit => return Ok(submit(st, w)),
            Action::Edit(e) => {
                if st.input.edit(e)
                    && let Some(s) = st.our_typing.edited(now, st.input.is_empty())
                {
                    w.typing(&st.peer, s);
                }
            }
            Action::Move(m) => st.input.move_cursor(m),
            Action::Scroll(s) => match s {
                Scroll::LineUp => st.scroll_up(1),
                Scroll::LineDown => st.scroll_down(1),
                Scroll::PageUp => st.page_up(),
                Scroll::PageDown => st.page_down(),
                Scroll::Bottom => st.scroll_to_bottom(),
            },
            Action::Redraw => guard.terminal.clear()?,
            Action::Ignore => {}
        },
        TermEvent::Paste(text) => {
            if st.input.paste(&text)
                && let Some(s) = st.our_typing.edited(now, st.input.is_empty())
            {
                w.typing(&st.peer, s);
            }
        }
        TermEvent::FocusGained => st.focused = true,
        TermEvent::FocusLost => st.focused = false,
        // A resize is picked up by the next draw.
        _ => {}
    }
    Ok(Flow::Continue)
}

/// Enter: a command, or a message shown as pending and queued for sending.
fn submit(st: &mut ChatState, w: &mut Workers) -> Flow {
    let line = st.input.take();
    if let Some(s) = st.our_typing.stop() {
        w.typing(&st.peer, s);
    }
    match classify(&line) {
        Submitted::Nothing => {}
        Submitted::Command(Command::Quit) => return Flow::Quit,
        Submitted::Command(Command::Help) => {
            for l in ui::help(&st.peer) {
                st.notice(l);
            }
            st.scroll_to_bottom();
        }
        Submitted::Command(Command::Chat(name)) => {
            if name.is_empty() {
                st.set_status("/chat USER: which user?", true);
            } else {
                match UserId::try_from(name.as_str()) {
                    Ok(peer) => return Flow::Switch(peer),
                    Err(e) => st.set_status(format!("{name:?} is not a user id: {e}"), true),
                }
            }
        }
        Submitted::Command(Command::Unknown(c)) => {
            st.set_status(format!("unknown command /{c}: try /help"), true);
        }
        Submitted::Text(text) => {
            st.status = None;
            let local = st.outgoing(&text, now_ms());
            let peer = st.peer.clone();
            if w.out.try_send(Out::Text { peer, local, text }).is_err() {
                st.failed(local, "too many messages waiting to be sent".into());
            }
        }
    }
    Flow::Continue
}

fn on_client(ev: Event, st: &mut ChatState) {
    match ev {
        Event::Message(m) => {
            st.incoming(&m);
        }
        Event::Typing { from, state } => st.typing(from.as_str(), state),
        Event::Presence(entry) => st.presence(&entry),
        Event::Receipt {
            from,
            kind,
            message_ids,
        } => st.receipt(from.as_str(), kind, &message_ids),
        Event::UnconfirmedMessage {
            message,
            fingerprint,
            rejected,
        } => st.unconfirmed(&message, &fingerprint, rejected),
        Event::IdentityChanged { user } => st.identity_changed(user.as_str()),
        Event::Undecryptable { from, reason, .. } => st.set_status(
            format!(
                "a message from {from} could not be decrypted ({})",
                crate::terminal_text::one_line(&reason)
            ),
            true,
        ),
        Event::Connection(c) => st.connection(&c),
        _ => {}
    }
}

fn on_done(done: Done, st: &mut ChatState) {
    match done {
        Done::Sent { local, result } => match result {
            Ok(id) => st.accepted(local, id),
            Err(e) => {
                if e.key_changed {
                    st.trust.key_changed = true;
                }
                st.failed(local, e.why);
            }
        },
        Done::ReadFailed(e) => {
            st.set_status(format!("read receipt not sent: {e}"), true);
        }
    }
}

/// Work for the sending task, done in order.
#[derive(Debug)]
enum Out {
    Text {
        peer: String,
        local: u64,
        text: String,
    },
    Read {
        peer: String,
        ids: Vec<MessageId>,
    },
}

/// What the sending task reports back.
#[derive(Debug)]
enum Done {
    Sent {
        local: u64,
        result: Result<MessageId, SendError>,
    },
    ReadFailed(String),
}

/// The tasks that talk to the client on the loop's behalf.
struct Workers {
    out: mpsc::Sender<Out>,
    /// Whether the client is connected: the sending task waits for it, so
    /// what is typed offline stays `sending` until the relay answers.
    online: watch::Sender<bool>,
    done: mpsc::Receiver<Done>,
    typing: mpsc::Sender<(String, TypingState)>,
    /// Presence snapshots of a peer switched to with `/chat`.
    presence: mpsc::Receiver<(UserId, Vec<PresenceEntry>)>,
    presence_tx: mpsc::Sender<(UserId, Vec<PresenceEntry>)>,
    out_task: JoinHandle<()>,
    typing_task: JoinHandle<()>,
}

impl Workers {
    fn start(backend: &Shared) -> Self {
        let (out, mut out_rx) = mpsc::channel::<Out>(OUTBOX);
        let (done_tx, done) = mpsc::channel(OUTBOX);
        let (typing, mut typing_rx) = mpsc::channel::<(String, TypingState)>(4);
        let (presence_tx, presence) = mpsc::channel(4);
        let (online, mut online_rx) = watch::channel(false);
        let b = backend.clone();
        let out_task = tokio::spawn(async move {
            while let Some(o) = out_rx.recv().await {
                // Offline: wait (the loop, or `finish`'s deadline, ends it).
                if online_rx.wait_for(|up| *up).await.is_err() {
                    break;
                }
                let done = match o {
                    Out::Text { peer, local, text } => Done::Sent {
                        local,
                        result: match UserId::try_from(peer.as_str()) {
                            Ok(p) => b.send_text(p, text).await,
                            Err(e) => Err(SendError {
                                key_changed: false,
                                why: e.to_string(),
                            }),
                        },
                    },
                    // Reading a conversation opened by name accepts a
                    // message request, as replying does; then the receipt.
                    Out::Read { peer, ids } => {
                        let Ok(p) = UserId::try_from(peer.as_str()) else {
                            continue;
                        };
                        match b.read(p, ids).await {
                            Ok(()) => continue,
                            Err(e) => Done::ReadFailed(e),
                        }
                    }
                };
                // The loop may be gone (quitting): keep sending the rest.
                let _ = done_tx.send(done).await;
            }
        });
        let b = backend.clone();
        let typing_task = tokio::spawn(async move {
            while let Some((peer, s)) = typing_rx.recv().await {
                // Best effort: needs a session, dropped for offline peers.
                if let Ok(p) = UserId::try_from(peer.as_str()) {
                    b.send_typing(p, s).await;
                }
            }
        });
        Self {
            out,
            online,
            done,
            typing,
            presence,
            presence_tx,
            out_task,
            typing_task,
        }
    }

    fn set_online(&self, up: bool) {
        self.online.send_if_modified(|was| {
            let changed = *was != up;
            *was = up;
            changed
        });
    }

    /// Queues a typing indicator unless too many are waiting.
    fn typing(&self, peer: &str, s: TypingState) {
        let _ = self.typing.try_send((peer.to_owned(), s));
    }

    /// After the terminal is restored: lets queued sends finish (bounded)
    /// and reports on stderr what did not go out.
    async fn finish(self, st: &ChatState) {
        // `online` stays alive until the end: a message typed offline is
        // still sent if the connection comes before the deadline.
        let Workers {
            out,
            online: _online,
            mut done,
            typing,
            presence: _,
            presence_tx: _,
            out_task,
            typing_task,
        } = self;
        drop(out);
        drop(typing);
        let pending = st.pending();
        let wait = if pending > 0 {
            eprintln!(
                "hush: waiting for {pending} message(s) to be accepted by the relay \
                 (Ctrl-C gives up)…"
            );
            FINISH_SENDS
        } else {
            FINISH_OTHER
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, done.recv()).await {
                Ok(Some(Done::Sent { result: Err(e), .. })) => {
                    eprintln!("hush: a message was not sent: {}", e.why);
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => {
                    if pending > 0 {
                        eprintln!("hush: gave up waiting; some messages may not have been sent");
                    }
                    out_task.abort();
                    break;
                }
            }
        }
        // A last `Stopped` indicator gets a moment; the client's close ends
        // whatever is still in flight.
        if tokio::time::timeout(TYPING_STOP_WAIT, typing_task)
            .await
            .is_err()
        {
            debug!("typing indicator not sent before quitting");
        }
    }
}
