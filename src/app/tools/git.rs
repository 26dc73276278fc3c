//! The git tools: argument struct → repository confinement (`git::open`) → the gate (`git.read` /
//! `git.write` in the repository's scope) → the git operation → text in the reference server's
//! format (`Repository status:\n…`, `Commit history:\n…`).

use serde_json::Value;

use super::catalog as tools;
use super::{Call, Output, ToolError, parse};
use crate::core::policy::Scope;
use crate::git::{self, Repo};

/// Opens `repo_path` and passes the gate for the tool's capability in the repository's scope.
async fn admit(call: &Call<'_>, repo_path: &str, what: &str) -> Result<Repo, ToolError> {
    git::no_option("repo_path", repo_path)?;
    let repo = git::open(&call.roots, repo_path).await?;
    call.allow(&Scope::new(repo.top.clone()), what).await?;
    if call.spec.writes.is_some() {
        call.begin().await;
    }
    Ok(repo)
}

pub async fn run(call: &Call<'_>, name: &str, args: Value) -> Result<Output, ToolError> {
    let text = match name {
        "git_status" => {
            let a: tools::RepoPath = parse(name, args)?;
            let r = admit(call, &a.repo_path, "read the git status").await?;
            format!("Repository status:\n{}", r.status().await?)
        }
        "git_diff_unstaged" => {
            let a: tools::GitDiffLocal = parse(name, args)?;
            let r = admit(call, &a.repo_path, "read the unstaged diff").await?;
            format!(
                "Unstaged changes:\n{}",
                r.diff_unstaged(a.context_lines).await?
            )
        }
        "git_diff_staged" => {
            let a: tools::GitDiffLocal = parse(name, args)?;
            let r = admit(call, &a.repo_path, "read the staged diff").await?;
            format!("Staged changes:\n{}", r.diff_staged(a.context_lines).await?)
        }
        "git_diff" => {
            let a: tools::GitDiff = parse(name, args)?;
            git::no_option("target", &a.target)?;
            let r = admit(call, &a.repo_path, &format!("diff against {}", a.target)).await?;
            format!(
                "Diff with {}:\n{}",
                a.target,
                r.diff(&a.target, a.context_lines).await?
            )
        }
        "git_commit" => {
            let a: tools::GitCommit = parse(name, args)?;
            let r = admit(
                call,
                &a.repo_path,
                &format!("commit with the message {:?}", first_line(&a.message)),
            )
            .await?;
            r.commit(&a.message).await?
        }
        "git_add" => {
            let a: tools::GitAdd = parse(name, args)?;
            for f in &a.files {
                git::no_option("file", f)?;
            }
            let r = git::open(&call.roots, &a.repo_path).await?;
            // check every path before asking, so the user is never asked about a refused call
            for f in a.files.iter().filter(|f| *f != ".") {
                r.check_inside(&call.roots, f)?;
            }
            call.allow(
                &Scope::new(r.top.clone()),
                &format!("stage {}", a.files.join(", ")),
            )
            .await?;
            call.begin().await;
            r.add(&call.roots, &a.files).await?
        }
        "git_reset" => {
            let a: tools::RepoPath = parse(name, args)?;
            let r = admit(call, &a.repo_path, "unstage all staged changes").await?;
            r.reset().await?
        }
        "git_log" => {
            let a: tools::GitLog = parse(name, args)?;
            for v in [&a.start_timestamp, &a.end_timestamp].into_iter().flatten() {
                git::no_option("timestamp", v)?;
            }
            let r = admit(call, &a.repo_path, "read the commit log").await?;
            let log = r
                .log(
                    a.max_count,
                    a.start_timestamp.as_deref(),
                    a.end_timestamp.as_deref(),
                )
                .await?;
            format!("Commit history:\n{log}")
        }
        "git_create_branch" => {
            let a: tools::GitCreateBranch = parse(name, args)?;
            git::no_option("branch_name", &a.branch_name)?;
            if let Some(b) = &a.base_branch {
                git::no_option("base_branch", b)?;
            }
            let r = admit(
                call,
                &a.repo_path,
                &format!("create the branch {}", a.branch_name),
            )
            .await?;
            r.create_branch(&a.branch_name, a.base_branch.as_deref())
                .await?
        }
        "git_checkout" => {
            let a: tools::GitCheckout = parse(name, args)?;
            git::no_option("branch_name", &a.branch_name)?;
            let r = admit(call, &a.repo_path, &format!("check out {}", a.branch_name)).await?;
            r.checkout(&a.branch_name).await?
        }
        "git_show" => {
            let a: tools::GitShow = parse(name, args)?;
            git::no_option("revision", &a.revision)?;
            let r = admit(call, &a.repo_path, &format!("show {}", a.revision)).await?;
            r.show(&a.revision).await?
        }
        "git_branch" => {
            let a: tools::GitBranch = parse(name, args)?;
            for v in [&a.contains, &a.not_contains].into_iter().flatten() {
                git::no_option("contains", v)?;
            }
            let r = admit(call, &a.repo_path, "list branches").await?;
            r.branch(
                &a.branch_type,
                a.contains.as_deref(),
                a.not_contains.as_deref(),
            )
            .await?
        }
        other => return Err(ToolError::Failed(format!("no handler for {other}"))),
    };
    call.text(text, Default::default())
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}
