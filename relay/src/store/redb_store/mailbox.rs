//! Mailboxes in redb: append (group-committed with the acknowledgements of
//! its batch), reads in id order, acknowledgements, the retention sweep and
//! the counts for monitoring.

use std::future::Future;

use hush_protocol::UserId;
use redb::ReadableTable as _;

use super::RedbStore;
use super::schema::{MAILBOX, USERS, be, get_user};
use crate::store::codec::{UserRec, decode_envelope, encode_envelope_tail, split_envelope_tail};
use crate::store::{
    AppendOutcome, MailboxLimits, NewEnvelope, StoreError, StoreStats, StoredEnvelope,
};

/// Body length of a stored envelope tail.
fn body_len(v: &[u8]) -> Result<u64, StoreError> {
    split_envelope_tail(v).map(|(_, _, b)| b.len() as u64)
}

/// Not an `async fn`: the job is queued at call time (see
/// [`crate::store::Store::append`]).
pub(super) fn append(
    store: &RedbStore,
    to: &UserId,
    envelope: NewEnvelope,
    limits: MailboxLimits,
) -> impl Future<Output = Result<AppendOutcome, StoreError>> + Send + 'static {
    let name = to.as_str().to_owned();
    store.write_mail("append", move |users, mailbox| {
        let op = "append";
        let Some(mut rec) = get_user(users, &name)? else {
            return Ok(AppendOutcome::UnknownUser);
        };
        let len = envelope.body.len() as u64;
        if rec.count >= limits.max_envelopes || rec.bytes.saturating_add(len) > limits.max_bytes {
            return Ok(AppendOutcome::MailboxFull);
        }
        rec.last_id += 1;
        rec.count += 1;
        rec.bytes += len;
        mailbox
            .insert(
                (name.as_str(), rec.last_id),
                encode_envelope_tail(&envelope).as_slice(),
            )
            .map_err(be(op))?;
        users
            .insert(name.as_str(), rec.encode().as_slice())
            .map_err(be(op))?;
        Ok(AppendOutcome::Appended(StoredEnvelope {
            id: rec.last_id,
            from: envelope.from,
            accepted_at: envelope.accepted_at,
            body: envelope.body,
        }))
    })
}

pub(super) async fn mailbox_after(
    store: &RedbStore,
    user: &UserId,
    after_id: u64,
    limit: usize,
) -> Result<Vec<StoredEnvelope>, StoreError> {
    let name = user.as_str().to_owned();
    store
        .read("mailbox read", move |txn| {
            let op = "mailbox read";
            let mailbox = txn.open_table(MAILBOX).map_err(be(op))?;
            let Some(start) = after_id.checked_add(1) else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            for entry in mailbox
                .range((name.as_str(), start)..=(name.as_str(), u64::MAX))
                .map_err(be(op))?
                .take(limit)
            {
                let (k, v) = entry.map_err(be(op))?;
                out.push(decode_envelope(k.value().1, v.value())?);
            }
            Ok(out)
        })
        .await
}

pub(super) async fn ack(
    store: &RedbStore,
    user: &UserId,
    ids: Vec<u64>,
) -> Result<u64, StoreError> {
    let name = user.as_str().to_owned();
    // Durable before `acked` (docs/protocol.md): an acknowledged
    // envelope is never pushed again, even after a crash. Acks share the
    // group commit with the sends of their batch.
    store
        .write_mail("ack", move |users, mailbox| {
            let op = "ack";
            let Some(mut rec) = get_user(users, &name)? else {
                return Ok(0);
            };
            let mut removed = 0;
            for id in ids {
                if let Some(v) = mailbox.remove((name.as_str(), id)).map_err(be(op))? {
                    rec.bytes = rec.bytes.saturating_sub(body_len(v.value())?);
                    rec.count = rec.count.saturating_sub(1);
                    removed += 1;
                }
            }
            if removed > 0 {
                users
                    .insert(name.as_str(), rec.encode().as_slice())
                    .map_err(be(op))?;
            }
            Ok(removed)
        })
        .await
}

pub(super) async fn sweep_expired(store: &RedbStore, cutoff_ms: u64) -> Result<u64, StoreError> {
    store
        .write("sweep", move |txn| {
            let op = "sweep";
            let mut users = txn.open_table(USERS).map_err(be(op))?;
            let mut mailbox = txn.open_table(MAILBOX).map_err(be(op))?;
            let mut names = Vec::new();
            for entry in users.iter().map_err(be(op))? {
                let (k, v) = entry.map_err(be(op))?;
                if UserRec::decode(v.value())?.count > 0 {
                    names.push(k.value().to_owned());
                }
            }
            let mut removed = 0u64;
            for name in names {
                let mut expired = Vec::new();
                for entry in mailbox
                    .range((name.as_str(), 0u64)..=(name.as_str(), u64::MAX))
                    .map_err(be(op))?
                {
                    let (k, v) = entry.map_err(be(op))?;
                    let (at, _, body) = split_envelope_tail(v.value())?;
                    if at >= cutoff_ms {
                        break;
                    }
                    expired.push((k.value().1, body.len() as u64));
                }
                if expired.is_empty() {
                    continue;
                }
                let Some(mut rec) = get_user(&users, &name)? else {
                    continue;
                };
                for (id, len) in &expired {
                    mailbox.remove((name.as_str(), *id)).map_err(be(op))?;
                    rec.count = rec.count.saturating_sub(1);
                    rec.bytes = rec.bytes.saturating_sub(*len);
                }
                removed += expired.len() as u64;
                users
                    .insert(name.as_str(), rec.encode().as_slice())
                    .map_err(be(op))?;
            }
            Ok(removed)
        })
        .await
}

pub(super) async fn stats(store: &RedbStore) -> Result<StoreStats, StoreError> {
    store
        .read("stats", move |txn| {
            let users = txn.open_table(USERS).map_err(be("stats"))?;
            let mut s = StoreStats::default();
            for entry in users.iter().map_err(be("stats"))? {
                let (_, v) = entry.map_err(be("stats"))?;
                let rec = UserRec::decode(v.value())?;
                s.users += 1;
                s.envelopes += rec.count;
                s.envelope_bytes += rec.bytes;
                s.census.add(rec.count, rec.bytes);
            }
            Ok(s)
        })
        .await
}
