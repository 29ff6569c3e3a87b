//! Builders shared by the state's unit tests: message ids, a chat of alice
//! with bob in a 40x5 view, incoming messages, the mark of one of ours.

use hush_client_core::UserId;
use hush_client_core::client::IncomingMessage;
use hush_client_core::payload::MessageId;
use hush_client_core::store::MessageFlags;

use super::message::{Entry, Mark};
use super::{ChatState, Trust};

pub(super) fn id(n: u8) -> MessageId {
    MessageId([n; 16])
}

pub(super) fn stored_id(n: u8) -> hush_client_core::store::MessageId {
    hush_client_core::store::MessageId([n; 16])
}

pub(super) fn state() -> ChatState {
    let mut st = ChatState::new("alice", "bob", Vec::new(), Trust::default());
    st.set_viewport(40, 5);
    st
}

pub(super) fn from(user: &str, n: u8, text: &str) -> IncomingMessage {
    IncomingMessage {
        from: UserId::try_from(user).unwrap_or_else(|e| panic!("{e}")),
        id: id(n),
        text: text.to_owned(),
        sent_at_ms: 0,
        accepted_at_ms: 0,
        envelope_id: None,
        flags: MessageFlags::default(),
    }
}

pub(super) fn mark_of(st: &ChatState, local: u64) -> Option<Mark> {
    st.entries().find_map(|e| match e {
        Entry::Message(m) if m.local == local => m.mark,
        _ => None,
    })
}
