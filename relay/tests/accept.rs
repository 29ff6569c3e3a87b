//! Before the upgrade: connections that never finish their HTTP request are
//! closed after `upgrade_timeout`, count toward the connection caps from
//! the TCP accept, and a swarm of them cannot starve a relay of file
//! descriptors (the relay binary under a low `ulimit -n`). Also PROXY
//! protocol headers from trusted load balancers (and from anyone else).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use hush_protocol::ServerFrame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_hush-relay");

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A TCP connection to `to` from the loopback address `source`.
async fn tcp_from(source: IpAddr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    within("tcp connect", socket.connect(to)).await.unwrap()
}

/// Reads until the relay closes the connection (EOF or reset); returns
/// what it sent before.
async fn until_closed(s: &mut TcpStream, within_time: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let read = async {
        let mut buf = [0u8; 1024];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(within_time, read)
        .await
        .unwrap_or_else(|_| panic!("the relay kept the connection open past {within_time:?}"));
    out
}

/// `GET path` over plain HTTP from `source`: the status code.
async fn http_status(source: IpAddr, to: SocketAddr, path: &str) -> u16 {
    let mut s = tcp_from(source, to).await;
    let req = format!("GET {path} HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let out = until_closed(&mut s, TIMEOUT).await;
    let out = String::from_utf8_lossy(&out);
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {out:?}"))
}

/// Opens a WebSocket on an open TCP stream and reads the challenge.
async fn websocket_on(
    tcp: TcpStream,
    url: &str,
) -> Result<(common::Ws, hush_protocol::frame::Challenge), tokio_tungstenite::tungstenite::Error> {
    let (mut ws, _) = within(
        "websocket handshake",
        tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp)),
    )
    .await?;
    let first = within("challenge", ws.next()).await.unwrap()?;
    let Message::Text(t) = first else {
        panic!("expected challenge, got {first:?}")
    };
    let ServerFrame::Challenge(c) = ServerFrame::decode(t.as_str()).unwrap() else {
        panic!("first frame is not a challenge: {t}")
    };
    Ok((ws, c))
}

fn is_http_status(e: &tokio_tungstenite::tungstenite::Error, status: u16) -> bool {
    matches!(e, tokio_tungstenite::tungstenite::Error::Http(r) if r.status().as_u16() == status)
}

#[tokio::test]
async fn silent_connections_count_toward_the_address_cap_and_are_closed_after_the_deadline() {
    let relay = Backend::memory()
        .start_with(|c| {
            c.limits.max_connections_per_ip = 2;
            c.limits.upgrade_timeout = Duration::from_millis(500);
        })
        .await;
    let addr = relay.local_addr();
    let url = relay.ws_url();
    // Two connections that never send a request hold the address's slots...
    let mut silent = tcp_from(ip("127.0.0.2"), addr).await;
    let mut half = tcp_from(ip("127.0.0.2"), addr).await;
    half.write_all(b"GET /v1/ws HTTP/1.1\r\nHost: re")
        .await
        .unwrap();
    // ...so an upgrade from that address is refused before it happens
    // (and the refusal is an answer, not a reset)...
    let mut refused = None;
    for _ in 0..100 {
        match websocket_on(tcp_from(ip("127.0.0.2"), addr).await, &url).await {
            Err(e) if is_http_status(&e, 429) => {
                refused = Some(e);
                break;
            }
            // The two slots may not be taken yet: the relay accepts in
            // its own time.
            Ok(_) => tokio::task::yield_now().await,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(refused.is_some(), "never refused with 429");
    // ...while another address is served.
    let (ws, c) = websocket_on(tcp_from(ip("127.0.0.3"), addr).await, &url)
        .await
        .unwrap();
    Client::login_on(ws, c, "alice", &new_key()).await;
    // Both are closed after upgrade_timeout, unanswered...
    assert!(until_closed(&mut silent, TIMEOUT).await.is_empty());
    assert!(until_closed(&mut half, TIMEOUT).await.is_empty());
    // ...which frees the address's slots.
    let (ws, c) = websocket_on(tcp_from(ip("127.0.0.2"), addr).await, &url)
        .await
        .unwrap();
    Client::login_on(ws, c, "bob", &new_key()).await;
}

/// The relay binary with at most `fds` file descriptors (`ulimit -n`, set
/// by the shell it is exec'd from).
async fn relay_with_fd_limit(fds: u32, args: &[&str]) -> (tokio::process::Child, u16) {
    let script = format!("ulimit -n {fds} && exec \"$0\" \"$@\"");
    common::process::start_binary(
        tokio::process::Command::new("sh")
            .args([
                "-c",
                &script,
                BIN,
                "--listen",
                "127.0.0.1:0",
                "--store",
                "memory",
            ])
            .args(args)
            .env_remove("HUSH_CONFIG")
            .env("RUST_LOG", "warn"),
    )
    .await
}

#[tokio::test]
async fn a_swarm_of_silent_connections_from_one_address_cannot_starve_the_relay() {
    const FDS: u32 = 256;
    // More than the relay has descriptors.
    const SWARM: usize = 320;
    let (_child, port) = relay_with_fd_limit(
        FDS,
        &[
            "--upgrade-timeout-ms",
            "1000",
            "--max-connections-per-ip",
            "16",
        ],
    )
    .await;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let url = format!("ws://{addr}/v1/ws");
    let attacker = ip("127.0.0.2");
    let honest = ip("127.0.0.3");

    // Half send half a request, half send nothing.
    let mut swarm = Vec::with_capacity(SWARM);
    for i in 0..SWARM {
        let mut s = tcp_from(attacker, addr).await;
        if i % 2 == 0 {
            let _ = s.write_all(b"GET /v1/ws HTTP/1.1\r\nHost: relay\r\n").await;
        }
        swarm.push(s);
    }

    // While they are open, the relay answers its health check and serves
    // another address.
    assert_eq!(http_status(honest, addr, "/healthz").await, 200);
    let (ws, c) = websocket_on(tcp_from(honest, addr).await, &url)
        .await
        .unwrap();
    let (mut alice, _) = Client::login_on(ws, c, "alice", &new_key()).await;
    alice.ping().await;

    // Every one of them is closed: at once when over the caps, after
    // upgrade_timeout otherwise.
    let closed = futures_util::future::join_all(
        swarm
            .iter_mut()
            .map(|s| until_closed(s, Duration::from_secs(5))),
    )
    .await;
    assert_eq!(closed.len(), SWARM);
    drop(swarm);

    // Afterwards the attacker's address is served like any other.
    let (ws, c) = websocket_on(tcp_from(attacker, addr).await, &url)
        .await
        .unwrap();
    let (mut bob, _) = Client::login_on(ws, c, "bob", &new_key()).await;
    bob.ping().await;
    assert_eq!(http_status(attacker, addr, "/healthz").await, 200);
}

// ---------------------------------------------------------- PROXY protocol

fn v1_header(client: &str) -> Vec<u8> {
    format!("PROXY TCP4 {client} 127.0.0.1 40000 443\r\n").into_bytes()
}

fn v2_header(client: [u8; 4]) -> Vec<u8> {
    let mut b = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    b.extend_from_slice(&[0x21, 0x11, 0, 12]);
    b.extend_from_slice(&client);
    b.extend_from_slice(&[127, 0, 0, 1]);
    b.extend_from_slice(&40000u16.to_be_bytes());
    b.extend_from_slice(&443u16.to_be_bytes());
    b
}

/// A connection from `source` that starts with `header`, then upgrades.
async fn proxied(
    relay: &hush_relay::RelayHandle,
    source: &str,
    header: &[u8],
) -> Result<(common::Ws, hush_protocol::frame::Challenge), tokio_tungstenite::tungstenite::Error> {
    let mut tcp = tcp_from(ip(source), relay.local_addr()).await;
    tcp.write_all(header).await.unwrap();
    websocket_on(tcp, &relay.ws_url()).await
}

#[tokio::test]
async fn proxy_headers_from_a_trusted_balancer_decide_the_address_that_is_capped() {
    let relay = Backend::memory()
        .start_with(|c| {
            c.limits.max_connections_per_ip = 1;
            c.proxy_protocol_from = vec!["127.0.0.2/32".parse().unwrap()];
        })
        .await;
    // Two clients behind one balancer, one connection each: both served
    // although the balancer's own address is capped at one.
    let (a, ca) = proxied(&relay, "127.0.0.2", &v1_header("203.0.113.1"))
        .await
        .unwrap();
    let (b, cb) = proxied(&relay, "127.0.0.2", &v2_header([203, 0, 113, 2]))
        .await
        .unwrap();
    let (mut alice, _) = Client::login_on(a, ca, "alice", &new_key()).await;
    let (mut bob, _) = Client::login_on(b, cb, "bob", &new_key()).await;
    // A second connection of the same client, in either version, is over
    // its address's cap.
    let e = proxied(&relay, "127.0.0.2", &v2_header([203, 0, 113, 1]))
        .await
        .unwrap_err();
    assert!(is_http_status(&e, 429), "{e}");
    let e = proxied(&relay, "127.0.0.2", &v1_header("203.0.113.2"))
        .await
        .unwrap_err();
    assert!(is_http_status(&e, 429), "{e}");
    alice.ping().await;
    bob.ping().await;
}

#[tokio::test]
async fn a_trusted_balancer_must_send_a_valid_header_and_nobody_else_is_believed() {
    let relay = Backend::memory()
        .start_with(|c| {
            c.limits.max_connections_per_ip = 1;
            c.proxy_protocol_from = vec!["127.0.0.2/32".parse().unwrap()];
        })
        .await;
    let addr = relay.local_addr();
    // From the trusted network: no header, or a malformed one, and the
    // connection is closed unanswered.
    for bad in [
        &b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n"[..],
        b"PROXY TCP4 300.0.0.1 127.0.0.1 1 2\r\nGET /healthz HTTP/1.1\r\n\r\n",
        b"PROXY TCP9 1.2.3.4 127.0.0.1 1 2\r\nGET /healthz HTTP/1.1\r\n\r\n",
    ] {
        let mut s = tcp_from(ip("127.0.0.2"), addr).await;
        s.write_all(bad).await.unwrap();
        let answer = until_closed(&mut s, TIMEOUT).await;
        assert!(
            answer.is_empty(),
            "answered {:?}",
            String::from_utf8_lossy(&answer)
        );
    }
    // From anywhere else a header is not read as one: the request is not
    // HTTP and gets 400, and no WebSocket opens.
    let mut s = tcp_from(ip("127.0.0.3"), addr).await;
    let mut req = v1_header("203.0.113.9");
    req.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n");
    s.write_all(&req).await.unwrap();
    let answer = until_closed(&mut s, TIMEOUT).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    // Untrusted clients are counted under their own address: the one slot
    // of 127.0.0.3 works, a second is refused.
    let (_held, _) = connect_from(&relay, ip("127.0.0.3")).await.unwrap();
    let e = connect_from(&relay, ip("127.0.0.3")).await.unwrap_err();
    assert!(is_http_status(&e, 429), "{e}");
}
