//! PROXY protocol (HAProxy's specification, versions 1 and 2) from trusted
//! load balancers, so that per-address limits see clients rather than the
//! balancer.
//!
//! Only connections from a network in `proxy_protocol_from` are read for a
//! header, and every such connection must start with one: a missing or
//! malformed header closes the connection without an answer. Connections
//! from anywhere else are never parsed for one (a header they send is just
//! bytes that are not HTTP: they get HTTP 400).
//!
//! Reading never consumes a byte past the header, so the stream can go on
//! to TLS or HTTP as it is:
//!
//! - the first 15 bytes are read whole (the shortest header, v1
//!   `PROXY UNKNOWN\r\n`, is 15 bytes; a v2 header has 16 fixed bytes);
//! - v2 (`\r\n\r\n\0\r\nQUIT\n` signature): one more byte, then the length
//!   the fixed part gives (at most [`PROXY_V2_MAX_BYTES`] in all);
//! - v1 (`PROXY `): one byte at a time up to CRLF, at most
//!   [`PROXY_V1_MAX_BYTES`].
//!
//! The bytes are parsed by the `ppp` crate. The caller bounds the whole
//! read with the pre-upgrade deadline (`upgrade_timeout`). A v2 `LOCAL`
//! command, a v1 `UNKNOWN` or an unspecified address family (the
//! balancer's own health checks) leave the connection's own address.

use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::config::{PROXY_V1_MAX_BYTES, PROXY_V2_MAX_BYTES};

/// The fixed start of a v2 header.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The start of a v1 header.
const V1_PREFIX: &[u8; 6] = b"PROXY ";
/// Bytes read before deciding the version (the shortest header).
const FIRST_READ: usize = 15;
/// The fixed part of a v2 header: signature, version and command, family,
/// length.
const V2_FIXED_LEN: usize = 16;

/// Why a connection from a trusted network was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyHeaderError {
    /// The socket failed or closed before the header was whole.
    #[error("reading the PROXY header: {0}")]
    Io(#[from] std::io::Error),
    /// The connection does not start with a PROXY protocol signature.
    #[error("no PROXY protocol header")]
    Missing,
    /// Longer than the bound for its version.
    #[error("PROXY header longer than {max} bytes")]
    TooLong {
        /// The bound.
        max: usize,
    },
    /// The header does not parse.
    #[error("malformed PROXY header: {0}")]
    Malformed(String),
}

/// Networks whose connections carry a PROXY header.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies(Vec<ipnet::IpNet>);

impl TrustedProxies {
    pub(crate) fn new(nets: Vec<ipnet::IpNet>) -> Self {
        Self(nets)
    }

    /// Whether a connection from `ip` must start with a PROXY header.
    pub(crate) fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }
}

/// An IPv4-mapped IPv6 address (from a dual-stack listener) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Reads the PROXY header at the start of `io` and returns the client's
/// address it names, or `None` when it names none (LOCAL, UNKNOWN).
pub(crate) async fn read_header<R: AsyncRead + Unpin>(
    io: &mut R,
) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let mut first = [0u8; FIRST_READ];
    io.read_exact(&mut first).await?;
    if first.starts_with(V2_SIGNATURE) {
        // The fixed part: signature (12), version and command, family,
        // then the length of the addresses that follow (u16, big endian).
        let mut fixed = [0u8; V2_FIXED_LEN];
        fixed[..FIRST_READ].copy_from_slice(&first);
        io.read_exact(&mut fixed[FIRST_READ..]).await?;
        let [.., len_hi, len_lo] = fixed;
        let len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
        let total = V2_FIXED_LEN + len;
        if total > PROXY_V2_MAX_BYTES {
            return Err(ProxyHeaderError::TooLong {
                max: PROXY_V2_MAX_BYTES,
            });
        }
        let mut addresses = vec![0u8; len];
        io.read_exact(&mut addresses).await?;
        let mut buf = Vec::with_capacity(total);
        buf.extend_from_slice(&fixed);
        buf.extend_from_slice(&addresses);
        let header = ppp::v2::Header::try_from(buf.as_slice())
            .map_err(|e| ProxyHeaderError::Malformed(e.to_string()))?;
        return Ok(match (header.command, header.addresses) {
            (ppp::v2::Command::Local, _) => None,
            (_, ppp::v2::Addresses::IPv4(a)) => {
                Some(SocketAddr::new(IpAddr::V4(a.source_address), a.source_port))
            }
            (_, ppp::v2::Addresses::IPv6(a)) => Some(SocketAddr::new(
                canonical(IpAddr::V6(a.source_address)),
                a.source_port,
            )),
            (_, ppp::v2::Addresses::Unspecified | ppp::v2::Addresses::Unix(_)) => None,
        });
    }
    if !first.starts_with(V1_PREFIX) {
        return Err(ProxyHeaderError::Missing);
    }
    let mut buf = first.to_vec();
    while !buf.ends_with(b"\r\n") {
        if buf.len() >= PROXY_V1_MAX_BYTES {
            return Err(ProxyHeaderError::TooLong {
                max: PROXY_V1_MAX_BYTES,
            });
        }
        buf.push(io.read_u8().await?);
    }
    let header = ppp::v1::Header::try_from(buf.as_slice())
        .map_err(|e| ProxyHeaderError::Malformed(e.to_string()))?;
    Ok(match header.addresses {
        ppp::v1::Addresses::Tcp4(a) => {
            Some(SocketAddr::new(IpAddr::V4(a.source_address), a.source_port))
        }
        ppp::v1::Addresses::Tcp6(a) => Some(SocketAddr::new(
            canonical(IpAddr::V6(a.source_address)),
            a.source_port,
        )),
        ppp::v1::Addresses::Unknown => None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    async fn parse(bytes: &[u8]) -> (Result<Option<SocketAddr>, ProxyHeaderError>, Vec<u8>) {
        let mut io = bytes;
        let r = read_header(&mut io).await;
        (r, io.to_vec())
    }

    fn v2(command: u8, family: u8, addrs: &[u8]) -> Vec<u8> {
        let mut b = V2_SIGNATURE.to_vec();
        b.push(0x20 | command);
        b.push(family);
        b.extend_from_slice(&u16::try_from(addrs.len()).unwrap().to_be_bytes());
        b.extend_from_slice(addrs);
        b
    }

    #[tokio::test]
    async fn v1_names_the_client_and_leaves_the_rest_unread() {
        let (r, rest) = parse(b"PROXY TCP4 192.0.2.7 198.51.100.1 5555 443\r\nGET /").await;
        assert_eq!(r.unwrap(), Some("192.0.2.7:5555".parse().unwrap()));
        assert_eq!(rest, b"GET /");
        let (r, rest) = parse(b"PROXY UNKNOWN\r\nX").await;
        assert_eq!(r.unwrap(), None);
        assert_eq!(rest, b"X");
        let (r, _) = parse(b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n").await;
        assert_eq!(r.unwrap(), Some("[2001:db8::1]:1".parse().unwrap()));
    }

    #[tokio::test]
    async fn v2_names_the_client_and_local_names_nobody() {
        let addrs = [192, 0, 2, 9, 10, 0, 0, 1, 0x1f, 0x90, 1, 187];
        let mut bytes = v2(1, 0x11, &addrs);
        bytes.extend_from_slice(b"rest");
        let (r, rest) = parse(&bytes).await;
        assert_eq!(r.unwrap(), Some("192.0.2.9:8080".parse().unwrap()));
        assert_eq!(rest, b"rest");
        let (r, _) = parse(&v2(0, 0, &[])).await;
        assert_eq!(r.unwrap(), None);
    }

    #[tokio::test]
    async fn malformed_missing_and_oversized_headers_are_refused() {
        let (r, _) = parse(b"GET /healthz HTTP/1.1\r\n\r\n").await;
        assert!(matches!(r, Err(ProxyHeaderError::Missing)), "{r:?}");
        let (r, _) = parse(b"PROXY TCP4 999.0.2.7 198.51.100.1 5555 443\r\n").await;
        assert!(matches!(r, Err(ProxyHeaderError::Malformed(_))), "{r:?}");
        let long = format!("PROXY TCP4 {}\r\n", "1".repeat(200));
        let (r, _) = parse(long.as_bytes()).await;
        assert!(
            matches!(r, Err(ProxyHeaderError::TooLong { max: 107 })),
            "{r:?}"
        );
        let mut huge = v2(1, 0x11, &[0; 12]);
        huge[14..16].copy_from_slice(&60_000u16.to_be_bytes());
        let (r, _) = parse(&huge).await;
        assert!(matches!(r, Err(ProxyHeaderError::TooLong { .. })), "{r:?}");
        // Truncated: the peer closes before the header is whole.
        let (r, _) = parse(b"PROXY TCP4 1.2.3.4").await;
        assert!(matches!(r, Err(ProxyHeaderError::Io(_))), "{r:?}");
        // A v2 header with a bad version nibble.
        let mut bad = v2(1, 0x11, &[0; 12]);
        bad[12] = 0x31;
        let (r, _) = parse(&bad).await;
        assert!(matches!(r, Err(ProxyHeaderError::Malformed(_))), "{r:?}");
    }

    #[test]
    fn trusted_networks_match_mapped_addresses_too() {
        let t = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        assert!(t.trusts("10.1.2.3".parse().unwrap()));
        assert!(t.trusts("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!t.trusts("11.1.2.3".parse().unwrap()));
        assert!(!TrustedProxies::default().trusts("10.1.2.3".parse().unwrap()));
    }
}
