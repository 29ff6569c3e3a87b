//! `hush chat` while the relay is down: it opens with the history and
//! "connecting…", a message typed meanwhile waits as `sending` and goes
//! once the relay answers. The relay is reached through a TCP forwarder
//! that starts listening only when the test says so.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

use common::{Tmux, chat_script_with, header, hush, pair};

/// A free local port (nothing listens on it once this returns).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// Listens on `port` and forwards every connection to `target`.
fn forward(port: u16, target: String) {
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(client) = conn else { continue };
            let Ok(server) = TcpStream::connect(&target) else {
                continue;
            };
            let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            thread::spawn(move || pipe(client, server));
            thread::spawn(move || pipe(s2, c2));
        }
    });
}

#[test]
fn chat_opens_offline_with_history_and_sends_what_was_typed_once_connected() {
    let tmux = Tmux::new();
    let p = pair();
    let out = hush(&p.alice, &["send", "bob", "before the outage"]);
    assert!(out.status.success(), "{out:?}");
    let out = hush(&p.bob, &["recv"]);
    assert!(out.status.success(), "{out:?}");

    let port = free_port();
    let via = format!("ws://127.0.0.1:{port}");
    let script = chat_script_with(p.dir.path(), &p.bob, "alice", &[], &["--relay", &via]);
    tmux.start("bob", &script);
    let screen = tmux.wait_until("bob", "history while connecting", |s| {
        header(s).contains("connecting…") && s.contains("alice: before the outage")
    });
    assert!(!screen.contains("hush-exit"), "{screen}");
    tmux.wait_until("bob", "the unreachable relay in the status line", |s| {
        s.contains("relay unreachable")
    });

    tmux.type_text("bob", "typed offline");
    tmux.key("bob", "Enter");
    let screen = tmux.wait_for("bob", "bob: typed offline (sending)");
    assert!(header(&screen).contains("connecting…"), "{screen}");

    // The relay becomes reachable: the chat connects and the message goes.
    forward(port, p.relay.url.trim_start_matches("ws://").to_owned());
    tmux.wait_until("bob", "connected, the message accepted", |s| {
        header(s).contains("connected")
            && (s.contains("bob: typed offline (sent)")
                || s.contains("bob: typed offline (delivered)"))
    });
    let out = hush(&p.alice, &["recv"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("bob: typed offline"),
        "{out:?}"
    );
    tmux.key("bob", "C-c");
    tmux.wait_for("bob", "hush-exit=0");
}

#[test]
fn slash_chat_switches_conversation_without_a_new_passphrase() {
    let tmux = Tmux::new();
    let p = pair();
    let carol = common::init(p.dir.path(), "carol", &p.relay.url);
    let out = hush(&p.alice, &["send", "bob", "from alice"]);
    assert!(out.status.success(), "{out:?}");

    tmux.start(
        "bob",
        &chat_script_with(p.dir.path(), &p.bob, "alice", &[], &[]),
    );
    tmux.wait_until("bob", "alice's conversation", |s| {
        header(s).contains("alice")
            && header(s).contains("connected")
            && s.contains("alice: from alice")
    });
    let out = hush(&carol, &["send", "bob", "from carol"]);
    assert!(out.status.success(), "{out:?}");
    tmux.wait_for("bob", "new message from carol (/chat carol)");

    tmux.type_text("bob", "/chat carol");
    tmux.key("bob", "Enter");
    let screen = tmux.wait_until("bob", "carol's conversation", |s| {
        header(s).contains(" carol ") && s.contains("carol: from carol")
    });
    assert!(!screen.contains("alice: from alice"), "{screen}");
    assert!(header(&screen).contains("connected"), "{screen}");

    tmux.type_text("bob", "hi carol");
    tmux.key("bob", "Enter");
    tmux.wait_until("bob", "the reply accepted", |s| {
        s.contains("bob: hi carol (sent)") || s.contains("bob: hi carol (delivered)")
    });
    let out = hush(&carol, &["recv"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("bob: hi carol"),
        "{out:?}"
    );

    tmux.type_text("bob", "/chat bob");
    tmux.key("bob", "Enter");
    tmux.wait_for("bob", "you cannot chat with yourself");
    tmux.key("bob", "C-c");
    tmux.wait_for("bob", "hush-exit=0");
}
