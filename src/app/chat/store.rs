//! Chat sessions on disk: one JSON file per conversation under
//! `$XDG_STATE_HOME/zeke/chats/<project key>/<session id>.json` (directory 0700, files 0600).
//!
//! Writes go to a temporary file in the same directory, then `rename` over the old one, so a
//! reader — another Neovim instance of the same project — sees the old or the new file, never a
//! half-written one; two instances writing one session is last-writer-wins, never a corrupt file.
//! Ids are `YYYYMMDD-HHMMSS-` plus 6 random hex digits (sortable, unique across processes).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::core::llm::{Message, Role, ToolCall};

/// One stored message (the conversation as every provider gets it, plus who answered).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    pub role: String,
    #[serde(default)]
    pub content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<StoredCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
    /// Assistant turns: the provider and model that wrote them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// A conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    /// The project root it belongs to.
    pub root: String,
    /// The first user message, shortened.
    pub title: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub messages: Vec<Stored>,
}

/// A session as listed by the picker.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub id: String,
    pub title: String,
    pub updated_ms: i64,
    pub turns: usize,
}

impl Stored {
    pub fn from_message(m: &Message, provider: Option<&str>, model: Option<&str>) -> Stored {
        Stored {
            role: m.role.as_str().into(),
            content: m.content.clone(),
            tool_calls: m
                .tool_calls
                .iter()
                .map(|c| StoredCall {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    arguments: c.arguments.clone(),
                })
                .collect(),
            tool_call_id: m.tool_call_id.clone(),
            is_error: m.is_error,
            provider: provider.map(str::to_string),
            model: model.map(str::to_string),
        }
    }

    /// The message for a provider (`None` for an unknown role in a hand-edited file).
    pub fn to_message(&self) -> Option<Message> {
        let role = match self.role.as_str() {
            "system" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" => Role::Tool,
            _ => return None,
        };
        Some(Message {
            role,
            content: self.content.clone(),
            tool_calls: self
                .tool_calls
                .iter()
                .map(|c| ToolCall {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    arguments: c.arguments.clone(),
                })
                .collect(),
            tool_call_id: self.tool_call_id.clone(),
            is_error: self.is_error,
        })
    }
}

/// The sessions of every project, under `dir` (`state_dir()/chats`).
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// A project's directory name: its root's file name (readable) plus a hash of the whole path.
fn project_key(root: &str) -> String {
    let name: String = Path::new(root)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    // FNV-1a: stable across builds and processes (DefaultHasher is not guaranteed to be)
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in root.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{name}-{h:016x}")
}

/// A fresh session id.
pub fn new_id(now_ms: i64) -> String {
    let mut r = [0u8; 3];
    let _ = getrandom::fill(&mut r);
    let t = crate::workspace::files::iso8601(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(now_ms.max(0) as u64),
    );
    // 2026-12-01T23:55:20Z → 20261201-235520
    let digits: String = t.chars().filter(char::is_ascii_digit).collect();
    format!(
        "{}-{}-{:02x}{:02x}{:02x}",
        &digits[..8],
        &digits[8..14],
        r[0],
        r[1],
        r[2]
    )
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Store {
    pub fn new(dir: PathBuf) -> Store {
        Store { dir }
    }

    fn project_dir(&self, root: &str) -> PathBuf {
        self.dir.join(project_key(root))
    }

    /// Saves `s` atomically (see the module docs).
    pub fn save(&self, s: &Session) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        if !valid_id(&s.id) {
            return Err(std::io::Error::other(format!("bad session id {:?}", s.id)));
        }
        let dir = self.project_dir(&s.root);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        // unique per save: two saves of one session (two processes, or two tasks) never share a
        // temporary file
        static SAVES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SAVES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = dir.join(format!(".{}.{}.{n}.tmp", s.id, std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(s).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(format!("{}.json", s.id)))
    }

    /// The session `id` of project `root`.
    pub fn load(&self, root: &str, id: &str) -> std::io::Result<Session> {
        if !valid_id(id) {
            return Err(std::io::Error::other(format!("bad session id {id:?}")));
        }
        let bytes = std::fs::read(self.project_dir(root).join(format!("{id}.json")))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| std::io::Error::other(format!("chat session {id} is not readable: {e}")))
    }

    /// The project's sessions, newest first (unreadable files are skipped).
    pub fn list(&self, root: &str) -> Vec<Listed> {
        let Ok(rd) = std::fs::read_dir(self.project_dir(root)) else {
            return Vec::new();
        };
        let mut out: Vec<Listed> = rd
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let id = name.strip_suffix(".json")?.to_string();
                let s = self.load(root, &id).ok()?;
                Some(Listed {
                    id,
                    title: s.title,
                    updated_ms: s.updated_ms,
                    turns: s.messages.iter().filter(|m| m.role == "user").count(),
                })
            })
            .collect();
        out.sort_by(|a, b| b.updated_ms.cmp(&a.updated_ms).then(b.id.cmp(&a.id)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, root: &str, updated: i64) -> Session {
        Session {
            id: id.into(),
            root: root.into(),
            title: format!("t {id}"),
            created_ms: 1,
            updated_ms: updated,
            messages: vec![
                Stored::from_message(&Message::user("hi"), None, None),
                Stored::from_message(&Message::assistant("hello"), Some("local"), Some("m")),
            ],
        }
    }

    #[test]
    fn save_load_list_and_ids() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("chats"));
        store.save(&session("a1", "/p/one", 5)).unwrap();
        store.save(&session("b2", "/p/one", 9)).unwrap();
        store.save(&session("c3", "/q/two", 7)).unwrap();
        let ids: Vec<String> = store.list("/p/one").into_iter().map(|l| l.id).collect();
        assert_eq!(ids, ["b2", "a1"], "newest first, this project only");
        let s = store.load("/p/one", "a1").unwrap();
        assert_eq!(s.messages[1].provider.as_deref(), Some("local"));
        assert_eq!(s.messages[0].to_message().unwrap(), Message::user("hi"));
        assert!(
            store.load("/p/one", "../../etc/passwd").is_err(),
            "ids are names, not paths"
        );
        let id = new_id(1_796_083_200_000);
        assert!(id.starts_with("20261201-000000-") && id.len() == 22, "{id}");
    }
}
