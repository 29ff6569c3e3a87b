//! Where the binaries under test are: `cargo test --workspace` (or
//! `cargo build --bins`) puts `hush` and `hush-relay` in the target
//! profile directory, the parent of the `deps/` folder that holds the test
//! executable. Tests never run cargo themselves.

use std::path::PathBuf;

/// The `hush` command-line client.
pub const HUSH: &str = "hush";
/// The relay server.
pub const HUSH_RELAY: &str = "hush-relay";

/// Path of the workspace binary `name`, next to the running test
/// executable (`target/<profile>/deps/<test>` -> `target/<profile>/<name>`).
///
/// # Panics
///
/// When the binary is not there, with a message saying how to build it.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe()
        .unwrap_or_else(|e| panic!("cannot find the running test executable: {e}"));
    let mut dir = exe
        .parent()
        .unwrap_or_else(|| panic!("test executable {} has no parent", exe.display()))
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.is_file() {
        panic!(
            "binary `{name}` not found at {}: build it first with `cargo build --bins` \
             (or run the tests with `cargo test --workspace`, which builds it)",
            path.display()
        );
    }
    path
}
