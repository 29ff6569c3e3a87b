//! The messages relays exchange on Redis pub/sub ([`super`]).
//!
//! Layout on `hush:node:{NODE}`: `kind u8 || len(user) u8 || user || rest`,
//! except `M`: `M || (len(user) u8 || user || len(member) u32 BE ||
//! member)*`; `rest` is a mailbox member (`m`, the layout of the Redis
//! store's mailboxes), an epoch u64 BE (`k`) or a frame's UTF-8 text (`f`).
//! On `hush:presence`: a user id. Every `user` is a mailbox address: a
//! user id, or `user/N` for device N ≥ 2 of a multi-device account
//! (`UserId::device_address`, at most 43 bytes).

use hush_protocol::UserId;

use crate::bus::BusEvents;
use crate::store::redis_store::decode_member;

pub(super) fn encode(kind: u8, user: &UserId, rest: &[u8]) -> Vec<u8> {
    let u = user.as_str().as_bytes();
    let mut out = Vec::with_capacity(2 + u.len() + rest.len());
    out.push(kind);
    // Addresses are at most 43 bytes (a 32-byte id, `/`, a u32).
    out.push(u8::try_from(u.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(u);
    out.extend_from_slice(rest);
    out
}

/// Acts on one message of this relay's channel. Malformed ones are logged
/// and dropped (they come from other relays of the same cluster).
pub(super) fn dispatch(payload: &[u8], events: &dyn BusEvents) {
    if let Some((&b'M', records)) = payload.split_first() {
        return dispatch_new_mail(records, events);
    }
    let parsed = (|| {
        let (&kind, rest) = payload.split_first()?;
        let (&len, rest) = rest.split_first()?;
        let len = usize::from(len);
        let (user, rest) = rest.split_at_checked(len)?;
        let user = UserId::from_device_address(std::str::from_utf8(user).ok()?).ok()?;
        Some((kind, user, rest))
    })();
    let Some((kind, user, rest)) = parsed else {
        tracing::warn!(len = payload.len(), "malformed cluster message dropped");
        return;
    };
    match kind {
        b'm' => match decode_member(rest) {
            Ok(env) => events.new_mail(&user, env),
            Err(e) => tracing::warn!(error = %e, "malformed new-mail message dropped"),
        },
        b'k' => match <[u8; 8]>::try_from(rest) {
            Ok(b) => events.replaced(&user, u64::from_be_bytes(b)),
            Err(_) => tracing::warn!("malformed replace message dropped"),
        },
        b'f' => match std::str::from_utf8(rest) {
            Ok(frame) => events.push(&user, frame.to_owned()),
            Err(_) => tracing::warn!("malformed frame message dropped"),
        },
        other => tracing::warn!(kind = other, "unknown cluster message dropped"),
    }
}

/// New mail for several users (one append batch): records of `len(user)
/// u8 || user || len(member) u32 BE || member`, acted on in order. A
/// malformed record drops itself and the rest of the message.
fn dispatch_new_mail(mut records: &[u8], events: &dyn BusEvents) {
    while !records.is_empty() {
        let parsed = (|| {
            let (&len, rest) = records.split_first()?;
            let len = usize::from(len);
            let (user, rest) = rest.split_at_checked(len)?;
            let user = UserId::from_device_address(std::str::from_utf8(user).ok()?).ok()?;
            let (mlen, rest) = rest.split_first_chunk::<4>()?;
            let mlen = usize::try_from(u32::from_be_bytes(*mlen)).ok()?;
            let (member, rest) = rest.split_at_checked(mlen)?;
            Some((user, member, rest))
        })();
        let Some((user, member, rest)) = parsed else {
            tracing::warn!(len = records.len(), "malformed new-mail record dropped");
            return;
        };
        match decode_member(member) {
            Ok(env) => events.new_mail(&user, env),
            Err(e) => tracing::warn!(error = %e, "malformed new-mail record dropped"),
        }
        records = rest;
    }
}

/// Acts on one message of the presence broadcast channel (a user id).
pub(super) fn dispatch_presence(payload: &[u8], events: &dyn BusEvents) {
    match std::str::from_utf8(payload)
        .ok()
        .and_then(|u| UserId::from_device_address(u).ok())
    {
        Some(user) => events.presence_changed(&user),
        None => tracing::warn!(len = payload.len(), "malformed presence message dropped"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::store::StoredEnvelope;

    #[derive(Default)]
    struct Seen(Mutex<Vec<String>>);

    impl BusEvents for Seen {
        fn new_mail(&self, user: &UserId, env: StoredEnvelope) {
            self.0
                .lock()
                .unwrap()
                .push(format!("m {user} {} {} {:?}", env.id, env.from, env.body.0));
        }
        fn replaced(&self, user: &UserId, epoch: u64) {
            self.0.lock().unwrap().push(format!("k {user} {epoch}"));
        }
        fn push(&self, user: &UserId, frame: String) {
            self.0.lock().unwrap().push(format!("f {user} {frame}"));
        }
        fn resync_all(&self) {}
        fn resync(&self, _: &UserId) {}
        fn live(&self) -> Vec<(UserId, u64)> {
            Vec::new()
        }
        fn presence_changed(&self, user: &UserId) {
            self.0.lock().unwrap().push(format!("p {user}"));
        }
        fn presence_recheck(&self, all: bool) {
            self.0.lock().unwrap().push(format!("r {all}"));
        }
    }

    fn user(s: &str) -> UserId {
        UserId::try_from(s).unwrap()
    }

    #[test]
    fn messages_decode_to_their_actions() {
        let seen = Seen::default();
        // The layout append.lua and claim.lua build.
        let mut member = 7u64.to_be_bytes().to_vec();
        member.extend_from_slice(&1_764_100_000_000u64.to_be_bytes());
        member.push(5);
        member.extend_from_slice(b"alice");
        member.extend_from_slice(&[1, 2, 3]);
        dispatch(&encode(b'm', &user("bob"), &member), &seen);
        dispatch(&encode(b'k', &user("bob"), &9u64.to_be_bytes()), &seen);
        dispatch(&encode(b'f', &user("bob"), b"{}"), &seen);
        // One append batch's message: two records, in order.
        let mut batch = vec![b'M'];
        for (to, id) in [("carol", 8u64), ("bob", 9)] {
            let mut m = id.to_be_bytes().to_vec();
            m.extend_from_slice(&member[8..]);
            batch.push(u8::try_from(to.len()).unwrap());
            batch.extend_from_slice(to.as_bytes());
            batch.extend_from_slice(&u32::try_from(m.len()).unwrap().to_be_bytes());
            batch.extend_from_slice(&m);
        }
        dispatch(&batch, &seen);
        assert_eq!(
            *seen.0.lock().unwrap(),
            vec![
                "m bob 7 alice [1, 2, 3]",
                "k bob 9",
                "f bob {}",
                "m carol 8 alice [1, 2, 3]",
                "m bob 9 alice [1, 2, 3]"
            ]
        );
    }

    #[test]
    fn malformed_messages_are_dropped() {
        let seen = Seen::default();
        for bad in [
            &b""[..],
            b"m",
            b"m\x05bo",
            b"m\x03BOB",
            b"k\x03bob\x01",
            b"m\x03bob\x00\x01",
            b"f\x03bob\xff",
            b"z\x03bob",
            b"M\x03bob\x00\x00\x00\x30\x00",
            b"M\x03BOB\x00\x00\x00\x00",
            b"M\x03bob\x00\x00\x00\x01\x00",
        ] {
            dispatch(bad, &seen);
        }
        assert!(seen.0.lock().unwrap().is_empty());
    }

    #[test]
    fn presence_messages_name_a_valid_user() {
        let seen = Seen::default();
        dispatch_presence(b"bob", &seen);
        for bad in [&b""[..], b"BOB", b"\xff", &[b'a'; 33]] {
            dispatch_presence(bad, &seen);
        }
        assert_eq!(*seen.0.lock().unwrap(), vec!["p bob"]);
    }
}
