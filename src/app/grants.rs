//! "Allow all" answers of the Neovim surface, per (project root, job): `session` ones in memory,
//! `project` ones also saved as JSON under the state directory so they survive a restart. Roots are
//! canonical paths compared whole (never by prefix).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::app::Job;

/// Grants per (scope, job): `session` ones in memory, `project` ones also in a JSON file.
pub struct GrantStore {
    pub session: BTreeSet<(PathBuf, String)>,
    pub project: BTreeSet<(PathBuf, String)>,
    file: PathBuf,
}

impl GrantStore {
    pub fn load(file: PathBuf) -> GrantStore {
        let project = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| serde_json::from_str::<Vec<(PathBuf, String)>>(&t).ok())
            .map(|v| v.into_iter().collect())
            .unwrap_or_default();
        GrantStore {
            session: BTreeSet::new(),
            project,
            file,
        }
    }

    pub fn contains(&self, root: &Path, job: Job) -> Option<&'static str> {
        let key = (root.to_path_buf(), job.as_str().to_string());
        if self.project.contains(&key) {
            Some("project")
        } else if self.session.contains(&key) {
            Some("session")
        } else {
            None
        }
    }

    pub fn save(&self) {
        let list: Vec<&(PathBuf, String)> = self.project.iter().collect();
        let write = || -> std::io::Result<()> {
            if let Some(dir) = self.file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = self.file.with_extension("json.tmp");
            std::fs::write(&tmp, serde_json::to_vec_pretty(&list).unwrap_or_default())?;
            std::fs::rename(tmp, &self.file)
        };
        if let Err(e) = write() {
            tracing::warn!(file = %self.file.display(), %e, "cannot save project grants");
        }
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
        let g = GrantStore::load(file);
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
        let _ = std::fs::remove_dir_all(dir);
    }
}
