//! Hush relay (to be filled by the relay issue).
