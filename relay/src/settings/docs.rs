//! The docs generator: the options table of `docs/operations.md`, rendered
//! from [`OPTIONS`] (`relay/tests/ops.rs` checks the document carries it).

use super::options::OPTIONS;

/// The options table of `docs/operations.md`, generated from [`OPTIONS`].
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| TOML key | flag | environment | default | meaning |\n| --- | --- | --- | --- | --- |\n",
    );
    for o in OPTIONS {
        let default = (o.default)().map_or_else(|| "unset".to_owned(), |d| format!("`{d}`"));
        out.push_str(&format!(
            "| `{}` | `--{}` | `{}` | {} | {} |\n",
            o.key,
            o.flag,
            o.env,
            default,
            o.doc.replace('|', "\\|")
        ));
    }
    out
}
