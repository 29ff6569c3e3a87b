//! Reading a recorded WebSocket byte stream (RFC 6455) back into what the
//! endpoints exchanged. Raw bytes alone prove little in the client-to-relay
//! direction: a client masks every frame with a random key, so plaintext
//! sent by a client would not show up in them. [`decode_stream`] strips the
//! HTTP upgrade head, then unmasks and concatenates frame payloads.

/// A recorded stream, taken apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodedStream {
    /// The HTTP upgrade request or response, up to the blank line.
    pub http_head: String,
    /// Payloads of every frame in order, unmasked, back to back.
    pub payloads: Vec<u8>,
    /// Each complete message (continuation frames joined), unmasked.
    pub messages: Vec<Vec<u8>>,
    /// Frames seen (complete or cut short at the end of the recording).
    pub frames: usize,
    /// Some frame had RSV1 set: a compression extension, so payloads are
    /// not the endpoints' bytes.
    pub compressed: bool,
}

/// Decodes one direction of a recorded WebSocket connection. A frame cut
/// short by the end of the recording contributes the bytes that are there.
pub fn decode_stream(bytes: &[u8]) -> DecodedStream {
    let mut out = DecodedStream::default();
    let Some(head_end) = find(bytes, b"\r\n\r\n") else {
        out.http_head = String::from_utf8_lossy(bytes).into_owned();
        return out;
    };
    out.http_head = String::from_utf8_lossy(&bytes[..head_end]).into_owned();
    let mut rest = &bytes[head_end + 4..];
    let mut current = Vec::new();
    while rest.len() >= 2 {
        out.frames += 1;
        let (b0, b1) = (rest[0], rest[1]);
        if b0 & 0x40 != 0 {
            out.compressed = true;
        }
        let masked = b1 & 0x80 != 0;
        let mut pos = 2usize;
        let len = match b1 & 0x7f {
            126 => {
                let Some(b) = rest.get(2..4) else { break };
                pos = 4;
                u64::from(u16::from_be_bytes([b[0], b[1]]))
            }
            127 => {
                let Some(b) = rest.get(2..10) else { break };
                pos = 10;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                u64::from_be_bytes(a)
            }
            n => u64::from(n),
        };
        let mut key = [0u8; 4];
        if masked {
            let Some(k) = rest.get(pos..pos + 4) else {
                break;
            };
            key.copy_from_slice(k);
            pos += 4;
        }
        let available = rest.len() - pos;
        let take = usize::try_from(len).map_or(available, |l| l.min(available));
        let payload: Vec<u8> = rest[pos..pos + take]
            .iter()
            .enumerate()
            .map(|(i, b)| if masked { b ^ key[i % 4] } else { *b })
            .collect();
        out.payloads.extend_from_slice(&payload);
        if b0 & 0x08 != 0 {
            // A control frame (close, ping, pong) may sit between the
            // fragments of a message; it is a message of its own.
            out.messages.push(payload);
        } else {
            current.extend_from_slice(&payload);
            if b0 & 0x80 != 0 {
                out.messages.push(std::mem::take(&mut current));
            }
        }
        rest = &rest[pos + take..];
    }
    out
}

/// Offset of the first occurrence of `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmasks_client_frames_and_reads_server_frames() {
        let text = b"{\"type\":\"send\"}";
        let key = [0x12, 0x34, 0x56, 0x78];
        let mut client = b"GET /v1/ws HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        client.push(0x81);
        client.push(0x80 | u8::try_from(text.len()).unwrap_or(0));
        client.extend_from_slice(&key);
        client.extend(text.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        let d = decode_stream(&client);
        assert_eq!(d.payloads, text);
        assert_eq!(d.frames, 1);
        assert!(!d.compressed);
        assert!(find(&client, b"send").is_none(), "masking hides the text");

        let long = vec![b'a'; 300];
        let mut server = b"HTTP/1.1 101 Switching Protocols\r\n\r\n".to_vec();
        server.extend_from_slice(&[0x81, 126, 0x01, 0x2c]);
        server.extend_from_slice(&long);
        server.extend_from_slice(&[0x81, 2, b'h', b'i']);
        let d = decode_stream(&server);
        assert_eq!(d.frames, 2);
        assert_eq!(d.messages.len(), 2);
        assert_eq!(d.messages[1], b"hi");
        assert_eq!(d.payloads.len(), 302);
        assert!(d.payloads.ends_with(b"hi"));
    }
}
