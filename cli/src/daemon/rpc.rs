//! JSON-RPC 2.0 as the daemon speaks it: one request object per line
//! (newline-delimited JSON, by-name `params`, no batches), one response
//! line per request that has an `id`, and notifications.
//!
//! Errors carry a stable numeric `code` and `data: {"kind", "exit_code"}`:
//! the JSON-RPC codes for requests that cannot be served (-32700 invalid
//! JSON, -32600 not a request or a line too long, -32601 unknown method,
//! -32602 wrong params, -32603 internal), and `-32000 - N` for a command
//! that failed as the CLI would exit with code N (`kind` is the name of
//! that class, [`Failure::kind`]). A CLI talking to the daemon exits with
//! `exit_code` and prints `message`, so both paths fail alike.

use serde_json::{Value, json};

use crate::exit::{CliError, Failure};

/// Invalid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// Not a JSON-RPC 2.0 request object (or a line over the limit).
pub const INVALID_REQUEST: i64 = -32600;
/// No such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// The params are not what the method takes.
pub const INVALID_PARAMS: i64 = -32602;
/// A bug in the daemon.
pub const INTERNAL_ERROR: i64 = -32603;
/// A command failure of exit code N has code `FAILURE_BASE - N`.
pub const FAILURE_BASE: i64 = -32000;

/// An error response's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    pub code: i64,
    pub kind: String,
    pub message: String,
    /// The exit code a CLI relaying this error exits with.
    pub exit_code: u8,
}

impl RpcError {
    fn protocol(code: i64, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            kind: kind.to_owned(),
            message: message.into(),
            exit_code: Failure::Other as u8,
        }
    }

    pub fn parse(e: &serde_json::Error) -> Self {
        Self::protocol(PARSE_ERROR, "parse_error", format!("invalid JSON: {e}"))
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::protocol(INVALID_REQUEST, "invalid_request", message)
    }

    pub fn line_too_long(max: usize) -> Self {
        Self::protocol(
            INVALID_REQUEST,
            "line_too_long",
            format!("the request line is over {max} bytes; the connection is closed"),
        )
    }

    pub fn method_not_found(method: &str) -> Self {
        Self::protocol(
            METHOD_NOT_FOUND,
            "method_not_found",
            format!("no method named {method:?}"),
        )
    }

    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self {
            exit_code: Failure::Usage as u8,
            ..Self::protocol(INVALID_PARAMS, "invalid_params", message)
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::protocol(INTERNAL_ERROR, "internal", message)
    }

    fn to_json(&self) -> Value {
        json!({
            "code": self.code,
            "message": self.message,
            "data": { "kind": self.kind, "exit_code": self.exit_code },
        })
    }

    /// Reads an error object (from the daemon) back.
    pub fn from_json(v: &Value) -> Self {
        let kind = v
            .pointer("/data/kind")
            .and_then(Value::as_str)
            .unwrap_or("");
        let exit_code = v
            .pointer("/data/exit_code")
            .and_then(Value::as_u64)
            .and_then(Failure::from_code)
            .unwrap_or(Failure::Other);
        Self {
            code: v.get("code").and_then(Value::as_i64).unwrap_or(0),
            kind: kind.to_owned(),
            message: v
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("the daemon reported an error")
                .to_owned(),
            exit_code: exit_code as u8,
        }
    }
}

impl From<CliError> for RpcError {
    fn from(e: CliError) -> Self {
        Self {
            code: FAILURE_BASE - i64::from(e.failure as u8),
            kind: e.failure.kind().to_owned(),
            message: e.message,
            exit_code: e.failure as u8,
        }
    }
}

impl From<RpcError> for CliError {
    fn from(e: RpcError) -> Self {
        let failure = Failure::from_code(u64::from(e.exit_code)).unwrap_or(Failure::Other);
        CliError::new(failure, e.message)
    }
}

/// A request as read from a line.
#[derive(Debug)]
pub struct Request {
    /// `None` for a notification (no reply is sent).
    pub id: Option<Value>,
    pub method: String,
    /// Always an object (`{}` when absent).
    pub params: Value,
}

/// Parses one line. On failure, the id to answer with (null when it could
/// not be read) and the error.
pub fn parse_request(line: &[u8]) -> Result<Request, (Value, RpcError)> {
    let v: Value = serde_json::from_slice(line).map_err(|e| (Value::Null, RpcError::parse(&e)))?;
    let Value::Object(mut obj) = v else {
        let what = if v.is_array() {
            "batches are not supported: send one request object per line"
        } else {
            "a request is a JSON object"
        };
        return Err((Value::Null, RpcError::invalid_request(what)));
    };
    let id = match obj.remove("id") {
        None => None,
        Some(id @ (Value::Null | Value::Number(_) | Value::String(_))) => Some(id),
        Some(_) => {
            return Err((
                Value::Null,
                RpcError::invalid_request("`id` must be a string, a number or null"),
            ));
        }
    };
    let answer_id = id.clone().unwrap_or(Value::Null);
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err((
            answer_id,
            RpcError::invalid_request("`jsonrpc` must be \"2.0\""),
        ));
    }
    let Some(Value::String(method)) = obj.remove("method") else {
        return Err((
            answer_id,
            RpcError::invalid_request("`method` must be a string"),
        ));
    };
    let params = match obj.remove("params") {
        None | Some(Value::Null) => Value::Object(serde_json::Map::new()),
        Some(p @ Value::Object(_)) => p,
        Some(_) => {
            return Err((
                answer_id,
                RpcError::invalid_params("`params` must be an object (by-name parameters)"),
            ));
        }
    };
    Ok(Request { id, method, params })
}

/// Reads a method's params into `T`, refusing unknown or mistyped fields.
pub fn params<T: serde::de::DeserializeOwned>(params: Value) -> Result<T, RpcError> {
    serde_json::from_value(params).map_err(|e| RpcError::invalid_params(format!("params: {e}")))
}

/// The response line for `id`.
pub fn response(id: &Value, outcome: Result<Value, RpcError>) -> String {
    match outcome {
        Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }).to_string(),
        Err(e) => json!({ "jsonrpc": "2.0", "id": id, "error": e.to_json() }).to_string(),
    }
}

/// A notification line.
pub fn notification(method: &str, params: Value) -> String {
    json!({ "jsonrpc": "2.0", "method": method, "params": params }).to_string()
}

/// A request line (for the CLI's side).
pub fn request(id: u64, method: &str, params: Value) -> String {
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(line: &str) -> i64 {
        parse_request(line.as_bytes()).map_or_else(|(_, e)| e.code, |_| 0)
    }

    #[test]
    fn malformed_requests_get_typed_errors() {
        assert_eq!(code_of("{"), PARSE_ERROR);
        assert_eq!(code_of("[]"), INVALID_REQUEST);
        assert_eq!(code_of("3"), INVALID_REQUEST);
        assert_eq!(code_of(r#"{"id":1,"method":"send"}"#), INVALID_REQUEST);
        assert_eq!(
            code_of(r#"{"jsonrpc":"2.0","id":{},"method":"x"}"#),
            INVALID_REQUEST
        );
        assert_eq!(
            code_of(r#"{"jsonrpc":"2.0","id":1,"method":3}"#),
            INVALID_REQUEST
        );
        assert_eq!(
            code_of(r#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#),
            INVALID_PARAMS
        );
        let ok = parse_request(br#"{"jsonrpc":"2.0","id":"a","method":"contacts"}"#);
        assert!(matches!(ok, Ok(r) if r.method == "contacts" && r.params.is_object()));
    }

    #[test]
    fn failures_round_trip_with_their_exit_code() {
        for f in Failure::ALL {
            let sent = RpcError::from(CliError::new(f, "why"));
            assert_eq!(sent.code, FAILURE_BASE - i64::from(f as u8));
            let back = RpcError::from_json(&sent.to_json());
            assert_eq!(back, sent);
            let cli = CliError::from(back);
            assert_eq!((cli.failure, cli.message.as_str()), (f, "why"));
        }
    }
}
