//! Hush wire protocol.
