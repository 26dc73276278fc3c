//! The files no tool may change ([`crate::workspace::Protected`]), found for this process: Zeke's
//! config, grant store and audit log, and the git config files outside any repository together
//! with the files they include.

use std::path::Path;

use crate::workspace::{Protected, ProtectedKind};

/// Collects the protected files. `config` is the config file in use (or the one Zeke would read),
/// `audit` the audit log path.
pub async fn discover(config: Option<&Path>, audit: &Path) -> Protected {
    let mut p = Protected::default();
    if let Some(c) = config {
        p.add(c, ProtectedKind::ZekeConfig);
    }
    if let Some(c) = crate::config::default_path() {
        p.add(&c, ProtectedKind::ZekeConfig);
    }
    p.add(
        &crate::app::grants::default_file(),
        ProtectedKind::GrantStore,
    );
    p.add(&crate::app::grants::state_dir(), ProtectedKind::ZekeState);
    p.add(audit, ProtectedKind::AuditLog);
    p.add(
        &crate::app::audit::default_path(None),
        ProtectedKind::AuditLog,
    );
    for f in crate::git::config_files_outside_repos().await {
        p.add(&f, ProtectedKind::GitConfig);
    }
    p
}
