//! `hush`, the command-line client (to be filled by the CLI issue).
fn main() {}
