//! The other side of the socket: how a `hush` command talks to a running
//! daemon. [`find`] connects to the daemon of a profile if one listens;
//! [`DaemonClient::call`] sends one request and waits for its response;
//! [`DaemonClient::notification`] reads the stream after `receive`.

use std::path::Path;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use super::limits::MAX_REPLY_BYTES;
use super::rpc::{self, RpcError};
use super::socket;
use crate::exit::{CliError, Failure};

/// A connection to a running daemon.
pub struct DaemonClient {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_id: u64,
}

/// The daemon serving the profile in `dir`, if one is running (its socket,
/// named by the note next to the profile or the default one, accepts a
/// connection).
pub async fn find(dir: &Path) -> Option<DaemonClient> {
    let stream = socket::connect(&socket::recorded(dir)).await?;
    let (rd, writer) = stream.into_split();
    Some(DaemonClient {
        reader: BufReader::new(rd),
        writer,
        next_id: 1,
    })
}

fn gone() -> CliError {
    CliError::new(
        Failure::Other,
        "the hush daemon closed the connection (it stopped?); try again",
    )
}

fn bad_reply(what: &str) -> CliError {
    CliError::new(
        Failure::Other,
        format!("the hush daemon sent an unexpected reply ({what})"),
    )
}

impl DaemonClient {
    /// Calls `method` and returns its result; an error response becomes
    /// the [`CliError`] the direct command would have failed with.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, CliError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut line = rpc::request(id, method, params);
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .await
            .map_err(|_| gone())?;
        loop {
            let mut reply = self.line().await?.ok_or_else(gone)?;
            if reply.get("id").and_then(Value::as_u64) != Some(id) {
                // A notification (or a stray response): not ours.
                continue;
            }
            if let Some(e) = reply.get("error") {
                return Err(RpcError::from_json(e).into());
            }
            return reply
                .get_mut("result")
                .map(Value::take)
                .ok_or_else(|| bad_reply("no result"));
        }
    }

    /// The next notification: its method and params; `None` once the
    /// daemon closed the connection.
    pub async fn notification(&mut self) -> Result<Option<(String, Value)>, CliError> {
        loop {
            let Some(mut v) = self.line().await? else {
                return Ok(None);
            };
            if let Some(Value::String(method)) = v.get_mut("method").map(Value::take) {
                let params = v.get_mut("params").map_or(Value::Null, Value::take);
                return Ok(Some((method, params)));
            }
        }
    }

    async fn line(&mut self) -> Result<Option<Value>, CliError> {
        let mut buf = Vec::new();
        let n = (&mut self.reader)
            .take(MAX_REPLY_BYTES)
            .read_until(b'\n', &mut buf)
            .await
            .map_err(|_| gone())?;
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf)
            .map(Some)
            .map_err(|_| bad_reply("not JSON"))
    }
}
