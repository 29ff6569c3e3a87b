//! Cross-process test harness (to be filled by the CLI and scale-out issues).
