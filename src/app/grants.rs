//! "Allow all" answers of the Neovim surface, per (project root, job): `session` ones in memory,
//! `project` ones also saved as JSON under the state directory so they survive a restart. Roots are
//! canonical paths compared whole (never by prefix). The file is read again whenever it changed,
//! so a grant revoked elsewhere (`zeke grants revoke`, another editor) stops counting at once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::app::Job;

/// Grants per (scope, job): `session` ones in memory, `project` ones also in a JSON file.
pub struct GrantStore {
    pub session: BTreeSet<(PathBuf, String)>,
    pub project: BTreeSet<(PathBuf, String)>,
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

fn read_project(file: &Path) -> BTreeSet<(PathBuf, String)> {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| serde_json::from_str::<Vec<(PathBuf, String)>>(&t).ok())
        .map(|v| v.into_iter().collect())
        .unwrap_or_default()
}

impl GrantStore {
    pub fn load(file: PathBuf) -> GrantStore {
        GrantStore {
            session: BTreeSet::new(),
            project: read_project(&file),
            seen: modified(&file),
            file,
        }
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

    /// Forgets the grants (session and project) matching `job` and `root` (either `None` = any),
    /// saving the file when a project grant went. Returns how many went.
    pub fn revoke(&mut self, job: Option<&str>, root: Option<&Path>) -> usize {
        self.refresh();
        let keep = |(r, j): &(PathBuf, String)| {
            !(job.is_none_or(|x| x == j) && root.is_none_or(|x| x == r))
        };
        let (session, project) = (self.session.len(), self.project.len());
        self.session.retain(keep);
        self.project.retain(keep);
        if self.project.len() < project {
            self.save();
        }
        session + project - self.session.len() - self.project.len()
    }

    pub fn contains(&mut self, root: &Path, job: Job) -> Option<&'static str> {
        self.refresh();
        let key = (root.to_path_buf(), job.as_str().to_string());
        if self.project.contains(&key) {
            Some("project")
        } else if self.session.contains(&key) {
            Some("session")
        } else {
            None
        }
    }

    pub fn save(&mut self) {
        let list: Vec<&(PathBuf, String)> = self.project.iter().collect();
        let write = || -> std::io::Result<()> {
            if let Some(dir) = self.file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = self.file.with_extension("json.tmp");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_by_root_and_job_survive_a_reload_only_for_projects() {
        let dir = std::env::temp_dir().join(format!("zeke-grants-{}", std::process::id()));
        let file = dir.join("grants.json");
        let mut g = GrantStore::load(file.clone());
        g.project.insert((PathBuf::from("/p/a"), "fix".into()));
        g.session.insert((PathBuf::from("/p/b"), "test".into()));
        g.save();
        let mut g = GrantStore::load(file.clone());
        assert_eq!(g.contains(Path::new("/p/a"), Job::Fix), Some("project"));
        assert_eq!(g.contains(Path::new("/p/a"), Job::Test), None, "per job");
        assert_eq!(
            g.contains(Path::new("/p/a_evil"), Job::Fix),
            None,
            "exact root, not a prefix"
        );
        assert_eq!(
            g.contains(Path::new("/p/b"), Job::Test),
            None,
            "session grants are not saved"
        );
        // another process (the CLI, another editor) revokes it: this store sees that at once
        let mut other = GrantStore::load(file.clone());
        other.project.clear();
        other.save();
        assert_eq!(g.contains(Path::new("/p/a"), Job::Fix), None);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
