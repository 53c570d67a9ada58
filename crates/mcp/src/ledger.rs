//! The ledger: one JSON line per payment the server made or signed (and per channel opened or closed), appended
//! and synced before the tool answers, so the user can read what the agent paid (`x402 mcp --print-ledger`,
//! or any JSON-lines reader).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One line of the ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Unix seconds.
    pub time: u64,
    /// The tool that made it.
    pub tool: String,
    /// `exact`, `channel` (a voucher), `tool` (ToolRegistry, allowance), `tool_credits`, `authorization` (signed
    /// for the host to relay), `channel_open` or `channel_close`.
    pub kind: String,
    /// `paid`, `signed`, `refused` (by the server, after signing), `unanswered` (sent, no answer: it may still
    /// settle), `opened`, `closing`, `closed`.
    pub outcome: String,
    /// The network, CAIP-2.
    pub network: String,
    /// The token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<String>,
    /// Who was paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_to: Option<String>,
    /// The amount, in the token's units (a channel's deposit for `channel_open`).
    pub amount: String,
    /// The URL paid for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The transaction, once there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
    /// The channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    /// The PaymentChannel of the channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_channel: Option<String>,
    /// The EIP-3009 nonce of an `exact` payment or authorization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The server's running total on the channel after a `channel` payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cumulative: Option<String>,
    /// What else is known: the server's reason for a refusal, the tool's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Why the ledger could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Reading or writing the file failed.
    #[error("the ledger {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is not an entry.
    #[error("the ledger {path}, line {line}: {source}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The line number.
        line: usize,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// The ledger file.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    writing: Mutex<()>,
}

impl Ledger {
    /// The ledger at `path` (created with its directory on the first entry).
    pub fn new(path: PathBuf) -> Self {
        Self { path, writing: Mutex::new(()) }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `entry` and syncs it to disk.
    pub fn append(&self, entry: &Entry) -> Result<(), LedgerError> {
        let io = |source| LedgerError::Io { path: self.path.clone(), source };
        let _one_at_a_time = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut line = serde_json::to_vec(entry).map_err(|e| io(std::io::Error::other(e)))?;
        line.push(b'\n');
        let mut file =
            OpenOptions::new().create(true).read(true).append(true).open(&self.path).map_err(io)?;
        // After a crash mid-line, the next entry starts on a line of its own.
        if ends_torn(&mut file).map_err(io)? {
            line.insert(0, b'\n');
        }
        file.write_all(&line).map_err(io)?;
        file.sync_data().map_err(io)
    }

    /// Every entry, oldest first (none if the file does not exist yet).
    pub fn entries(&self) -> Result<Vec<Entry>, LedgerError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(LedgerError::Io { path: self.path.clone(), source }),
        };
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty()) {
            match serde_json::from_str(line) {
                Ok(entry) => entries.push(entry),
                // A line cut short was being written when the process died: never a whole entry.
                Err(err) if err.is_eof() => {
                    tracing::warn!(path = %self.path.display(), line = n + 1, "a torn ledger line is skipped");
                }
                Err(source) => {
                    return Err(LedgerError::Format { path: self.path.clone(), line: n + 1, source });
                }
            }
        }
        Ok(entries)
    }
}

/// Whether `file` is not empty and does not end with a newline.
fn ends_torn(file: &mut std::fs::File) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    if file.metadata()?.len() == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_back_in_order_a_torn_line_is_skipped_and_a_wrong_one_reported() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path().join("sub/ledger.jsonl"));
        assert!(ledger.entries().unwrap().is_empty());
        let first = Entry { time: 1, kind: "exact".into(), amount: "1500".into(), ..Entry::default() };
        let second =
            Entry { time: 2, kind: "channel".into(), channel_id: Some("0xab".into()), ..first.clone() };
        ledger.append(&first).unwrap();
        ledger.append(&second).unwrap();
        assert_eq!(ledger.entries().unwrap(), vec![first.clone(), second.clone()]);
        let mut file = OpenOptions::new().append(true).open(ledger.path()).unwrap();
        file.write_all(b"{\"time\": 3, \"to").unwrap();
        assert_eq!(ledger.entries().unwrap().len(), 2, "a torn last line is skipped");
        let third = Entry { time: 4, ..second.clone() };
        ledger.append(&third).unwrap();
        assert_eq!(
            ledger.entries().unwrap(),
            vec![first, second, third],
            "the next entry on a line of its own"
        );
        let mut file = OpenOptions::new().append(true).open(ledger.path()).unwrap();
        file.write_all(b"{\"time\": \"not a number\"}\n").unwrap();
        assert!(
            matches!(ledger.entries(), Err(LedgerError::Format { line: 5, .. })),
            "a wrong line is reported"
        );
    }
}
