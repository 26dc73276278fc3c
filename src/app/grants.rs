//! The one store of "Allow all" answers, per (project root, capability), for every surface: an
//! answer for this session lives in the process's memory, one for the project is also saved as
//! JSON (`$XDG_STATE_HOME/zeke/grants.json`, `0600`) and so honoured by every Zeke process —
//! "Allow all" in Neovim lets `zeke mcp` write in that project too, and `zeke grants revoke` ends it
//! for both. Roots are canonical paths compared whole (never by prefix). The file is read again
//! whenever it changed, so a grant revoked elsewhere stops counting at once.
//!
//! File shape: `[{"root": "/abs/project", "capability": "fs.write"}, …]`. Files written before
//! grants were per capability (`[["/abs/project", "fix"], …]`, per Neovim job) are read as
//! `fs.write` grants: both jobs only ever changed files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::core::policy::{Capability, Scope};

/// How long an "Allow all" lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GrantScope {
    /// Until this process (the editor's backend, the MCP server) stops.
    Session,
    /// Saved for the project: every Zeke process honours it until revoked.
    Project,
}

impl GrantScope {
    /// `session` or `project`.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantScope::Session => "session",
            GrantScope::Project => "project",
        }
    }

    /// Parses `session` or `project`.
    pub fn parse(s: &str) -> Result<GrantScope, String> {
        match s {
            "session" => Ok(GrantScope::Session),
            "project" => Ok(GrantScope::Project),
            other => Err(format!("unknown scope {other:?} (session or project)")),
        }
    }
}

/// One grant, for listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub root: PathBuf,
    pub capability: Capability,
    pub scope: GrantScope,
}

type Key = (PathBuf, Capability);

/// Grants per (project root, capability): `session` ones in memory, `project` ones also in a file.
pub struct GrantStore {
    session: BTreeSet<Key>,
    project: BTreeSet<Key>,
    file: PathBuf,
    /// The file's identity when last read or written (`None`: no file).
    seen: Option<Stamp>,
}

/// What tells a changed file: modification time, inode (every save renames a new file into
/// place, so two saves within one clock tick still differ) and length.
type Stamp = (Option<SystemTime>, u64, u64);

fn modified(file: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(file)
        .ok()
        .map(|m| (m.modified().ok(), m.ino(), m.len()))
}

#[derive(Serialize, Deserialize)]
struct Entry {
    root: PathBuf,
    capability: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OnDisk {
    /// Before grants were per capability: `[root, job]`, the job `fix` or `test`. First: serde
    /// would also read such a pair as an `Entry`.
    Job(PathBuf, String),
    Entry(Entry),
}

fn read_project(file: &Path) -> BTreeSet<Key> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return BTreeSet::new();
    };
    let list: Vec<OnDisk> = serde_json::from_str(&text).unwrap_or_else(|e| {
        tracing::warn!(file = %file.display(), %e, "grant file unreadable; no project grants");
        Vec::new()
    });
    list.into_iter()
        .filter_map(|e| match e {
            OnDisk::Entry(e) => Capability::parse(&e.capability).ok().map(|c| (e.root, c)),
            OnDisk::Job(root, job) if job == "fix" || job == "test" => {
                Some((root, Capability::FsWrite))
            }
            OnDisk::Job(..) => None,
        })
        .collect()
}

impl GrantStore {
    /// The store whose project grants are in `file` (missing = none yet).
    pub fn load(file: PathBuf) -> GrantStore {
        GrantStore {
            session: BTreeSet::new(),
            project: read_project(&file),
            seen: modified(&file),
            file,
        }
    }

    /// The store every surface uses: [`default_file`].
    pub fn open_default() -> GrantStore {
        GrantStore::load(default_file())
    }

    /// The file of project grants.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Reads the project grants again if the file changed since this store last saw it.
    pub fn refresh(&mut self) {
        let now = modified(&self.file);
        if now != self.seen {
            self.project = read_project(&self.file);
            self.seen = now;
        }
    }

    /// How long the grant for `capability` in `scope` lasts, if there is one (a project grant
    /// wins over a session one).
    pub fn find(&mut self, scope: &Scope, capability: Capability) -> Option<GrantScope> {
        self.refresh();
        let key = (scope.root.clone(), capability);
        if self.project.contains(&key) {
            Some(GrantScope::Project)
        } else if self.session.contains(&key) {
            Some(GrantScope::Session)
        } else {
            None
        }
    }

    /// Remembers "Allow all" for `capability` in `scope`; a project grant is saved at once.
    pub fn grant(&mut self, scope: &Scope, capability: Capability, how: GrantScope) {
        let key = (scope.root.clone(), capability);
        match how {
            GrantScope::Session => {
                self.session.insert(key);
            }
            GrantScope::Project => {
                self.refresh();
                self.project.insert(key);
                self.save();
            }
        }
    }

    /// Every grant in force, project ones first.
    pub fn list(&mut self) -> Vec<Grant> {
        self.refresh();
        let one = |scope| {
            move |(root, capability): &Key| Grant {
                root: root.clone(),
                capability: *capability,
                scope,
            }
        };
        self.project
            .iter()
            .map(one(GrantScope::Project))
            .chain(self.session.iter().map(one(GrantScope::Session)))
            .collect()
    }

    /// Forgets the grants (session and project) matching `capability` and `root` (either `None` =
    /// any), saving the file when a project grant went. Returns how many went.
    pub fn revoke(&mut self, capability: Option<Capability>, root: Option<&Path>) -> usize {
        self.refresh();
        let keep =
            |(r, c): &Key| !(capability.is_none_or(|x| x == *c) && root.is_none_or(|x| x == r));
        let (session, project) = (self.session.len(), self.project.len());
        self.session.retain(keep);
        self.project.retain(keep);
        if self.project.len() < project {
            self.save();
        }
        session + project - self.session.len() - self.project.len()
    }

    fn save(&mut self) {
        let list: Vec<Entry> = self
            .project
            .iter()
            .map(|(root, c)| Entry {
                root: root.clone(),
                capability: c.as_str().to_string(),
            })
            .collect();
        let write = || -> std::io::Result<()> {
            if let Some(dir) = self.file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = self
                .file
                .with_extension(format!("json.{}.tmp", std::process::id()));
            {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)?;
                f.write_all(&serde_json::to_vec_pretty(&list).unwrap_or_default())?;
            }
            std::fs::rename(tmp, &self.file)
        };
        if let Err(e) = write() {
            tracing::warn!(file = %self.file.display(), %e, "cannot save project grants");
        }
        self.seen = modified(&self.file);
    }
}

/// Zeke's state directory: `$XDG_STATE_HOME/zeke`, else `~/.local/state/zeke`.
pub fn state_dir() -> PathBuf {
    std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("zeke")
}

/// The grant file every surface uses: `grants.json` in [`state_dir`].
pub fn default_file() -> PathBuf {
    state_dir().join("grants.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_by_root_and_capability_survive_a_reload_only_for_projects() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("grants.json");
        let (a, b) = (Scope::new("/p/a"), Scope::new("/p/b"));
        let mut g = GrantStore::load(file.clone());
        g.grant(&a, Capability::FsWrite, GrantScope::Project);
        g.grant(&b, Capability::GitWrite, GrantScope::Session);
        let mut g = GrantStore::load(file.clone());
        assert_eq!(g.find(&a, Capability::FsWrite), Some(GrantScope::Project));
        assert_eq!(g.find(&a, Capability::GitWrite), None, "per capability");
        assert_eq!(
            g.find(&Scope::new("/p/a_evil"), Capability::FsWrite),
            None,
            "exact root, not a prefix"
        );
        assert_eq!(
            g.find(&b, Capability::GitWrite),
            None,
            "session grants are not saved"
        );
        // another process (the CLI, another editor) revokes it: this store sees that at once
        let mut other = GrantStore::load(file.clone());
        assert_eq!(other.revoke(None, Some(Path::new("/p/a"))), 1);
        assert_eq!(g.find(&a, Capability::FsWrite), None);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn per_job_grant_files_read_as_file_writes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("grants.json");
        std::fs::write(&file, r#"[["/p/a", "fix"], ["/p/b", "explain"]]"#).unwrap();
        let mut g = GrantStore::load(file);
        let list = g.list();
        assert_eq!(
            list,
            vec![Grant {
                root: "/p/a".into(),
                capability: Capability::FsWrite,
                scope: GrantScope::Project
            }]
        );
    }
}
