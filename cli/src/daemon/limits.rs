//! Every bound of `hush daemon`, in one place. A client of the socket is
//! another process of the profile's owner, but a buggy or stuck one must
//! not make the daemon grow without bound: each bound says what happens at
//! the limit.

use std::time::Duration;

/// Most client connections served at once. A connection beyond it is
/// accepted only when another one ends (the rest wait in the kernel's
/// listen backlog).
pub const MAX_CONNECTIONS: usize = 256;

/// Longest request line, in bytes, newline excluded. A longer line is
/// answered with the `line_too_long` error (code -32600) and the
/// connection is closed, since what follows cannot be framed reliably. It
/// leaves room for a 32 KiB message escaped as JSON (up to 6 bytes per
/// byte in the worst case) and the envelope around it.
pub const MAX_LINE_BYTES: usize = 256 * 1024;

/// Most requests of one connection being handled at once. The daemon
/// reads the next line only when one of them has finished, so a client
/// that pipelines more simply waits (back-pressure, no error).
pub const MAX_IN_FLIGHT: u32 = 16;

/// Events queued for one `receive` subscriber. A subscriber whose queue is
/// full (it reads too slowly) is dropped: it gets a final `dropped`
/// notification and its connection is closed. What it missed is stored in
/// the history.
pub const SUBSCRIBER_QUEUE: usize = 1024;

/// Events kept for the next `receive` subscriber while none is connected
/// (what a `recv` without `--wait` drains). Beyond it the oldest is
/// dropped, and the next subscriber is told how many with a `lagged`
/// notification first; the messages themselves are in the history.
pub const MAX_BACKLOG: usize = 10_000;

/// Responses and notifications queued for one connection's writer.
pub const WRITE_QUEUE: usize = MAX_IN_FLIGHT as usize + 4;

/// The longest line a `hush` command reads from the daemon (a `history`
/// response holds the whole conversation asked for); a longer one is an
/// error of that command, not of the daemon.
pub const MAX_REPLY_BYTES: u64 = 256 * 1024 * 1024;

/// How long shutdown waits for connections to finish their requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
