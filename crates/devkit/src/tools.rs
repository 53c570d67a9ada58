//! The Foundry binaries `bin/setup` installs from npm (`@foundry-rs/<tool>-linux-amd64`, pinned in
//! package.json). The npm `.bin` shims exit 0 even when the tool fails, so the native binaries are used.

use std::path::PathBuf;

/// The pinned native binary of `tool` (`anvil`, `cast` or `forge`), whether or not it is installed yet.
pub fn foundry(tool: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../node_modules")
        .join(format!("@foundry-rs/{tool}-linux-amd64/bin/{tool}"))
}
