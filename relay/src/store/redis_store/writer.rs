//! The append pump: appends keep their submission order and are
//! group-committed. [`crate::store::Store::append`] queues the call at once
//! to one task that sends queued appends as one pipeline at a time (with
//! `appendfsync always` Redis fsyncs once per batch).

use std::fmt;

use redis::aio::ConnectionManager;
use redis::{Script, Value};
use tokio::sync::{mpsc, oneshot};

use super::schema::{NODE_CHANNEL, NONEMPTY, mbox_key, presence_key, user_key};
use crate::store::{MailboxLimits, StoreError};

/// Most appends sent in one pipeline.
const MAX_BATCH: usize = 512;

const APPEND_LUA: &str = include_str!("../lua/append.lua");

/// One envelope for the append pump.
pub(super) struct AppendJob {
    pub(super) user: String,
    pub(super) limits: MailboxLimits,
    pub(super) body_len: usize,
    /// The envelope tail ([`crate::store::codec::encode_envelope_tail`]).
    pub(super) tail: Vec<u8>,
    /// The new id, 0 (unknown user) or -1 (mailbox full).
    pub(super) reply: oneshot::Sender<Result<i64, StoreError>>,
}

/// Sends queued appends in submission order: everything queued (up to
/// [`MAX_BATCH`] envelopes) goes in one call of `append.lua`, which applies
/// them in order, reading each recipient's record once per batch and
/// telling each holding relay once per batch. Measured against one call per
/// envelope (cluster row of docs/benchmarks.md): Redis CPU per message
/// 10.65 -> 5.9 us; most of what is left is the Lua interpreter's own cost
/// per envelope (arguments, the member string, one `ZADD`), not the
/// commands.
///
/// The script is loaded in front of a call whenever the previous one may
/// have met a Redis that forgot it (after any error, and at start), and a
/// call refused with NOSCRIPT is sent again behind a load. A call is all or
/// nothing: if it fails, every envelope of its batch gets the error and
/// none was stored.
pub(super) async fn append_pump(
    mut conn: ConnectionManager,
    node: String,
    mut rx: mpsc::UnboundedReceiver<AppendJob>,
) {
    let sha = Script::new(APPEND_LUA).get_hash().to_owned();
    let mut load = true;
    while let Some(first) = rx.recv().await {
        // The mailbox limits are the relay's; the first job's stand for
        // the batch.
        let limits = first.limits;
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut outcome = append_call(&mut conn, &sha, &node, limits, &batch, load).await;
        if matches!(outcome, Err(Failed::NoScript)) {
            // Redis forgot the script (restart, SCRIPT FLUSH): the call ran
            // nothing, so it is sent again behind a load.
            outcome = append_call(&mut conn, &sha, &node, limits, &batch, true).await;
        }
        match outcome {
            Ok(ids) => {
                load = false;
                for (job, id) in batch.into_iter().zip(ids) {
                    let _ = job.reply.send(Ok(id));
                }
            }
            Err(e) => {
                load = true;
                fail(batch, &e.to_string());
            }
        }
    }
}

/// Why a call of `append.lua` stored nothing.
#[derive(Debug)]
enum Failed {
    NoScript,
    Other(String),
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failed::NoScript => f.write_str("append.lua not loaded"),
            Failed::Other(e) => f.write_str(e),
        }
    }
}

/// One call of `append.lua` for `batch` (preceded by loading it when
/// `load`): the new ids (or 0 / -1), in order.
async fn append_call(
    conn: &mut ConnectionManager,
    sha: &str,
    node: &str,
    limits: MailboxLimits,
    batch: &[AppendJob],
    load: bool,
) -> Result<Vec<i64>, Failed> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    if load {
        pipe.cmd("SCRIPT").arg("LOAD").arg(APPEND_LUA);
    }
    // Sized once: a batch is up to 512 envelopes of up to 64 KiB, and
    // growing the argument buffer by doubling cost a copy and fresh pages
    // per step.
    let bytes: usize = batch
        .iter()
        .map(|j| 4 * j.user.len() + 40 + j.tail.len())
        .sum();
    let mut cmd = redis::Cmd::with_capacity(8 + 6 * batch.len(), 256 + bytes);
    cmd.arg("EVALSHA")
        .arg(sha)
        .arg(1 + 3 * batch.len())
        .arg(NONEMPTY);
    for job in batch {
        cmd.arg(user_key(&job.user))
            .arg(mbox_key(&job.user))
            .arg(presence_key(&job.user));
    }
    cmd.arg(limits.max_envelopes)
        .arg(limits.max_bytes)
        .arg(node)
        .arg(NODE_CHANNEL);
    for job in batch {
        cmd.arg(&job.user)
            .arg(job.body_len)
            .arg(job.tail.as_slice());
    }
    pipe.add_command(cmd);
    let expected = 1 + usize::from(load);
    let mut values = pipe
        .query_async::<Vec<Value>>(conn)
        .await
        .map_err(|e| Failed::Other(e.to_string()))?;
    if values.len() != expected {
        return Err(Failed::Other(format!(
            "{} replies to {expected} commands",
            values.len()
        )));
    }
    match values.pop() {
        Some(Value::ServerError(e)) if e.code() == "NOSCRIPT" => Err(Failed::NoScript),
        Some(Value::ServerError(e)) => Err(Failed::Other(e.to_string())),
        Some(v) => match redis::from_redis_value::<Vec<i64>>(v) {
            Ok(ids) if ids.len() == batch.len() => Ok(ids),
            _ => Err(Failed::Other("malformed append.lua reply".into())),
        },
        None => Err(Failed::Other("no reply from append.lua".into())),
    }
}

fn fail(batch: Vec<AppendJob>, detail: &str) {
    crate::metrics::redis_error("append");
    for job in batch {
        let _ = job.reply.send(Err(StoreError::Backend {
            op: "append",
            detail: detail.to_owned(),
        }));
    }
}
