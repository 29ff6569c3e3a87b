//! Relay addresses: the normalised WebSocket URL of a relay (`ws_url`),
//! and what a URL says about its port and host, for error messages.

use super::ClientError;

/// The normalised WebSocket URL for a relay address: `ws://host:port` gets
/// the protocol path appended.
pub fn ws_url(relay: &str) -> Result<String, ClientError> {
    let bad = |reason: &str| ClientError::InvalidRelayUrl {
        url: relay.to_owned(),
        reason: reason.to_owned(),
    };
    let rest = relay
        .strip_prefix("ws://")
        .or_else(|| relay.strip_prefix("wss://"))
        .ok_or_else(|| bad("must start with ws:// or wss://"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad("no host"));
    }
    match rest.find('/') {
        None => Ok(format!("{}{}", relay, hush_protocol::frame::WS_PATH)),
        Some(i) if &rest[i..] == "/" => Ok(format!(
            "{}{}",
            relay.trim_end_matches('/'),
            hush_protocol::frame::WS_PATH
        )),
        Some(_) => Ok(relay.to_owned()),
    }
}

/// The port a relay listens on unless told otherwise (`hush-relay
/// --listen`), named when a URL without a port was refused.
pub const DEFAULT_RELAY_PORT: u16 = 7070;

/// Whether `url` (`ws://` or `wss://`) names a port.
pub(super) fn has_port(url: &str) -> bool {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))
        .unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or(rest);
    // `[v6]:port`, or `host:port`; a bare IPv6 literal has no port.
    let after_host = match authority.rfind(']') {
        Some(i) => &authority[i + 1..],
        None => authority,
    };
    after_host
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The host part of `url`'s authority, as written (IPv6 with brackets).
pub(super) fn host_of(url: &str) -> &str {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))
        .unwrap_or(url);
    rest.split('/').next().unwrap_or(rest)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ws_url_appends_the_protocol_path() {
        assert_eq!(
            ws_url("ws://127.0.0.1:7070").unwrap(),
            "ws://127.0.0.1:7070/v1/ws"
        );
        assert_eq!(ws_url("ws://h:1/").unwrap(), "ws://h:1/v1/ws");
        assert_eq!(ws_url("wss://h/custom/ws").unwrap(), "wss://h/custom/ws");
    }

    #[test]
    fn a_port_is_seen_in_every_url_form() {
        assert!(has_port("ws://h:7070/v1/ws"));
        assert!(has_port("wss://[::1]:443/v1/ws"));
        assert!(!has_port("ws://h/v1/ws"));
        assert!(!has_port("ws://[::1]/v1/ws"));
        assert!(!has_port("ws://h:/v1/ws"));
        assert_eq!(host_of("ws://h:1/v1/ws"), "h:1");
    }

    #[test]
    fn ws_url_rejects_other_schemes_and_empty_hosts() {
        assert!(matches!(
            ws_url("http://h"),
            Err(ClientError::InvalidRelayUrl { .. })
        ));
        assert!(matches!(
            ws_url("ws://"),
            Err(ClientError::InvalidRelayUrl { .. })
        ));
        assert!(matches!(
            ws_url("ws:///x"),
            Err(ClientError::InvalidRelayUrl { .. })
        ));
    }
}
