//! Chat sessions on disk: one JSON file per conversation under
//! `$XDG_STATE_HOME/zeke/chats/<project key>/<session id>.json` (directory 0700, files 0600).
//!
//! Writes go to a temporary file in the same directory, then `rename` over the old one, so a
//! reader — another Neovim instance of the same project — sees the old or the new file, never a
//! half-written one. Each save bumps the session's `revision` under an exclusive lock of the
//! session (`.<id>.lock`, `File::lock`): a turn saved over a revision it did not start from (the
//! same session continued in two Neovim instances at once) is appended after what the other
//! saved ([`Store::save_turn`]), so neither turn is lost; a rewrite (compaction) of a session
//! that changed meanwhile is refused ([`Store::replace`]).
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
    /// Bumped by every save (0: never saved; files from before revisions read as 0).
    #[serde(default)]
    pub revision: u64,
    pub messages: Vec<Stored>,
}

/// How [`Store::save_turn`] saved a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// The file was still at the turn's starting revision: replaced.
    Written,
    /// Another process saved the session meanwhile: the turn's messages were appended after
    /// `others` messages it had added.
    Merged { others: usize },
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

/// Writes `s` to `dir/<id>.json` through a temporary file and `rename`.
fn write_atomic(dir: &Path, s: &Session) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
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

/// The session's exclusive lock (released when the file is dropped): a blocking `flock` on
/// `dir/.<id>.lock`, so two processes' read-modify-write of one session never interleave.
fn lock(dir: &Path, id: &str) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(dir.join(format!(".{id}.lock")))?;
    f.lock()?;
    Ok(f)
}

impl Store {
    pub fn new(dir: PathBuf) -> Store {
        Store { dir }
    }

    fn project_dir(&self, root: &str) -> PathBuf {
        self.dir.join(project_key(root))
    }

    /// Writes `s` as it is (its revision included), atomically (see the module docs).
    pub fn save(&self, s: &Session) -> std::io::Result<()> {
        let dir = self.dir_for(s)?;
        write_atomic(&dir, s)
    }

    /// Saves a turn: `s` holds the session as loaded at revision `base` with `base_len` messages,
    /// plus the turn's. Under the session's lock: when the file is still at `base` (or absent),
    /// `s` replaces it; when another process saved meanwhile, the turn's messages (those after
    /// `base_len`) are appended to the file's. `s` becomes what was written (its new revision).
    pub fn save_turn(&self, s: &mut Session, base: u64, base_len: usize) -> std::io::Result<Saved> {
        let dir = self.dir_for(s)?;
        let _lock = lock(&dir, &s.id)?;
        let mut saved = Saved::Written;
        match self.load(&s.root, &s.id) {
            Ok(disk) if disk.revision != base => {
                let ours: Vec<Stored> =
                    s.messages.drain(base_len.min(s.messages.len())..).collect();
                saved = Saved::Merged {
                    others: disk.messages.len().saturating_sub(base_len),
                };
                let updated = s.updated_ms;
                *s = disk;
                s.messages.extend(ours);
                s.updated_ms = updated;
                s.revision += 1;
            }
            Ok(disk) => s.revision = disk.revision + 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => s.revision = base + 1,
            Err(e) => return Err(e),
        }
        write_atomic(&dir, s)?;
        Ok(saved)
    }

    /// Rewrites the session with `s` (loaded at revision `base`) only when no one saved it since:
    /// `Ok(false)`, nothing written, when someone did. `s` gets the new revision.
    pub fn replace(&self, s: &mut Session, base: u64) -> std::io::Result<bool> {
        let dir = self.dir_for(s)?;
        let _lock = lock(&dir, &s.id)?;
        if self.load(&s.root, &s.id)?.revision != base {
            return Ok(false);
        }
        s.revision = base + 1;
        write_atomic(&dir, s)?;
        Ok(true)
    }

    /// The project directory of `s` (created 0700), after checking its id.
    fn dir_for(&self, s: &Session) -> std::io::Result<PathBuf> {
        use std::os::unix::fs::DirBuilderExt;
        if !valid_id(&s.id) {
            return Err(std::io::Error::other(format!("bad session id {:?}", s.id)));
        }
        let dir = self.project_dir(&s.root);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        Ok(dir)
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
            revision: 0,
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

    #[test]
    fn a_turn_saved_over_another_process_turn_is_appended_and_a_stale_rewrite_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("chats"));
        let mut first = session("s1", "/p", 1);
        assert_eq!(store.save_turn(&mut first, 0, 0).unwrap(), Saved::Written);
        assert_eq!(first.revision, 1);
        // two instances load revision 1 and each runs a turn
        let (mut a, mut b) = (
            store.load("/p", "s1").unwrap(),
            store.load("/p", "s1").unwrap(),
        );
        let (base, len) = (a.revision, a.messages.len());
        for (s, who) in [(&mut a, "from a"), (&mut b, "from b")] {
            s.messages
                .push(Stored::from_message(&Message::user(who), None, None));
            s.messages.push(Stored::from_message(
                &Message::assistant(format!("re {who}")),
                None,
                None,
            ));
        }
        assert_eq!(store.save_turn(&mut a, base, len).unwrap(), Saved::Written);
        assert_eq!(
            store.save_turn(&mut b, base, len).unwrap(),
            Saved::Merged { others: 2 }
        );
        let disk = store.load("/p", "s1").unwrap();
        let texts: Vec<&str> = disk.messages.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(
            texts,
            ["hi", "hello", "from a", "re from a", "from b", "re from b"]
        );
        assert_eq!((disk.revision, b.revision), (3, 3));
        // a compaction of what a loaded (revision 2) is refused: b saved since
        let mut stale = a.clone();
        stale.messages.truncate(2);
        assert!(!store.replace(&mut stale, 2).unwrap());
        assert_eq!(
            store.load("/p", "s1").unwrap().messages.len(),
            6,
            "nothing lost"
        );
        let mut fresh = store.load("/p", "s1").unwrap();
        fresh.messages.truncate(4);
        assert!(store.replace(&mut fresh, 3).unwrap());
        assert_eq!(store.load("/p", "s1").unwrap().revision, 4);
    }
}
