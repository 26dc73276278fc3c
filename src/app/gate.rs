//! The one policy gate ("GhostWarden") every surface and every tool goes through: decide
//! (capability × scope → allow / prompt / deny, first match wins: `core::policy`), ask through the
//! surface when the answer is prompt ([`Asker`]: the review UI in Neovim, elicitation or an
//! input-required result in MCP, a refusal naming the config line in the CLI), remember "Allow
//! all" in the one grant store ([`super::grants`]), and record each step ([`Step`]) for the one
//! audit log ([`super::audit`]).
//!
//! Invariants: a grant only ever answers a prompt (never overrides a configured allow or deny); a
//! refusal names the rule and the TOML lines that would allow the action; nothing here blocks an
//! async worker (the grant file is small and read only when its stamp changed; audit records are
//! written by the audit thread).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use futures_util::future::BoxFuture;

use super::audit::Audit;
use super::grants::{Grant, GrantScope, GrantStore};
use crate::core::policy::{Capability, Decision, Policy, Rule, Scope, Verdict};

/// What the gate asks the user about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub capability: Capability,
    pub scope: Scope,
    /// The tool or job asking, e.g. `write_file`, `fix`.
    pub tool: &'static str,
    /// The action in words, e.g. `write /r/a.txt (12 bytes)`.
    pub what: String,
}

/// The user's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    AllowOnce,
    /// Allow, and remember it for the scope ([`GrantScope`]).
    AllowAll(GrantScope),
    /// Not allowed; why in the user's words or the client's (`deny`, `declined`, `dismissed`).
    Deny(String),
}

/// What came of asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    Answer(Answer),
    /// This surface cannot ask the user; `why` completes "…needs approval, and ___".
    CannotAsk(String),
    /// The question went out and the call ends now; it comes back with the answer (MCP
    /// `InputRequiredResult`).
    Pending,
    /// No answer came (timeout, transport error): `why`.
    NoAnswer(String),
    /// The call was cancelled while waiting.
    Cancelled,
}

/// How a surface asks the user. Implemented by `mcp` (elicitation / input-required), by the
/// Neovim review and by the CLI ([`NoAsker`]).
pub trait Asker: Send + Sync {
    fn ask<'a>(&'a self, q: &'a Question) -> BoxFuture<'a, Asked>;
}

/// A surface that cannot ask anyone (the CLI, scripts): prompts are refused with how to allow.
pub struct NoAsker(pub &'static str);

impl Asker for NoAsker {
    fn ask<'a>(&'a self, _: &'a Question) -> BoxFuture<'a, Asked> {
        Box::pin(async move { Asked::CannotAsk(self.0.to_string()) })
    }
}

/// How one decision went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum How {
    /// Decided by a rule (or a grant) without asking.
    Ruled(Decision, Rule),
    /// A patch shown for review in Neovim (its answer follows).
    Proposed,
    /// The question went out as an input-required result.
    AskedLater,
    CannotAsk,
    AllowedOnce,
    AllowedAll(GrantScope),
    /// The user said no (`why`).
    UserDenied(String),
    NoAnswer(String),
    Cancelled,
}

/// One policy decision, as the audit log records it: `fs.write allow in /r ([capabilities])`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub capability: Capability,
    pub root: PathBuf,
    pub how: How,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (cap, at) = (self.capability, self.root.display());
        match &self.how {
            How::Ruled(d, rule) => write!(f, "{cap} {} in {at} ({rule})", d.as_str()),
            How::Proposed => write!(f, "{cap} prompt in {at}: proposed for review"),
            How::AskedLater => write!(f, "{cap} prompt in {at}: asked through input_required"),
            How::CannotAsk => write!(f, "{cap} prompt in {at}: client cannot be asked, refused"),
            How::AllowedOnce => write!(f, "{cap} prompt in {at}: user allowed once"),
            How::AllowedAll(s) => {
                write!(f, "{cap} prompt in {at}: user allowed all ({})", s.as_str())
            }
            How::UserDenied(why) => write!(f, "{cap} prompt in {at}: user denied ({why})"),
            How::NoAnswer(why) => write!(f, "{cap} prompt in {at}: no answer ({why}), refused"),
            How::Cancelled => write!(
                f,
                "{cap} prompt in {at}: call cancelled before an answer, refused"
            ),
        }
    }
}

/// Why the gate did not let an action through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The policy or the user said no; the message names the rule and how to allow.
    Denied(String),
    /// The call was cancelled while the user was being asked.
    Cancelled,
    /// The question is out (input-required); the call comes back with the answer.
    Pending,
}

/// The policy, the grants and the audit log of one process, shared by all its surfaces.
pub struct Gate {
    policy: RwLock<Policy>,
    grants: Mutex<GrantStore>,
    audit: Audit,
    /// The config file users should edit (for "how to allow" messages).
    config_path: RwLock<Option<PathBuf>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Gate {
    /// A gate deciding by `policy`, with grants in `grants` and records going to `audit`.
    pub fn new(
        policy: Policy,
        grants: GrantStore,
        audit: Audit,
        config_path: Option<PathBuf>,
    ) -> Gate {
        Gate {
            policy: RwLock::new(policy),
            grants: Mutex::new(grants),
            audit,
            config_path: RwLock::new(config_path),
        }
    }

    /// The gate of a process started with `config`: its policy, the shared grant file
    /// ([`super::grants::default_file`]) and the one audit log ([`super::audit::default_path`]:
    /// `$ZEKE_AUDIT_LOG`, else `[mcp] audit_log`, else the XDG state file).
    pub fn from_config(config: &crate::config::Config) -> Gate {
        Gate::new(
            config.policy.clone(),
            GrantStore::open_default(),
            Audit::new(super::audit::default_path(config.mcp.audit_log.as_deref())),
            config.source.clone().or_else(crate::config::default_path),
        )
    }

    /// Follows a reloaded config (Neovim's `setup()` again).
    pub fn set_policy(&self, policy: Policy, config_path: Option<PathBuf>) {
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = policy;
        *self.config_path.write().unwrap_or_else(|e| e.into_inner()) = config_path;
    }

    /// The one audit log.
    pub fn audit(&self) -> &Audit {
        &self.audit
    }

    /// The verdict for `capability` in `scope`, counting "Allow all" grants; and how long the
    /// grant lasts when one decided it.
    pub fn decide(&self, capability: Capability, scope: &Scope) -> (Verdict, Option<GrantScope>) {
        let granted = lock(&self.grants).find(scope, capability);
        let verdict = self
            .policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .decide(capability, scope, granted.is_some());
        let by_grant = (verdict.rule == Rule::Grant).then_some(granted).flatten();
        (verdict, by_grant)
    }

    /// Remembers "Allow all" for `capability` in `scope`.
    pub fn grant(&self, capability: Capability, scope: &Scope, how: GrantScope) {
        lock(&self.grants).grant(scope, capability, how);
    }

    /// Every grant in force (project ones from the shared file, session ones of this process).
    pub fn grants(&self) -> Vec<Grant> {
        lock(&self.grants).list()
    }

    /// Forgets grants matching `capability` and `root` (`None` = any). Returns how many.
    pub fn revoke(&self, capability: Option<Capability>, root: Option<&Path>) -> usize {
        lock(&self.grants).revoke(capability, root)
    }

    /// The grant file.
    pub fn grant_file(&self) -> PathBuf {
        lock(&self.grants).file().to_path_buf()
    }

    fn config_file(&self) -> String {
        self.config_path
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "~/.config/zeke/config.toml".into())
    }

    /// The message for a `deny` verdict: the rule, the file, and the TOML that would allow it.
    pub fn denied_message(
        &self,
        capability: Capability,
        scope: &Scope,
        verdict: &Verdict,
    ) -> String {
        let file = self.config_file();
        format!(
            "refused (rule policy-deny): {capability} is denied in {} by {} in the Zeke config ({file}). To allow it, set in {file}:\n{}",
            scope.root.display(),
            verdict.rule,
            Policy::how_to_allow(capability, scope)
        )
    }

    /// Lets `q` through or not: decides, asks through `asker` on prompt, remembers "Allow all",
    /// and pushes every step onto `steps` (for the audit record of the call).
    pub async fn check(
        &self,
        q: &Question,
        asker: &dyn Asker,
        steps: &mut Vec<Step>,
    ) -> Result<(), Refusal> {
        self.check_with(q, None, asker, steps).await
    }

    /// [`Gate::check`], with `default` deciding in place of the capability's built-in default
    /// when no rule (scope, `[capabilities]`, grant) is configured for it.
    pub async fn check_with(
        &self,
        q: &Question,
        default: Option<Decision>,
        asker: &dyn Asker,
        steps: &mut Vec<Step>,
    ) -> Result<(), Refusal> {
        let (cap, scope) = (q.capability, &q.scope);
        let step = |how| Step {
            capability: cap,
            root: scope.root.clone(),
            how,
        };
        let (mut verdict, _) = self.decide(cap, scope);
        if let (Some(d), Rule::Default) = (default, &verdict.rule) {
            verdict.decision = d;
        }
        match verdict.decision {
            Decision::Allow => {
                steps.push(step(How::Ruled(Decision::Allow, verdict.rule)));
                return Ok(());
            }
            Decision::Deny => {
                let message = self.denied_message(cap, scope, &verdict);
                steps.push(step(How::Ruled(Decision::Deny, verdict.rule)));
                return Err(Refusal::Denied(message));
            }
            Decision::Prompt => {}
        }
        let at = scope.root.display();
        match asker.ask(q).await {
            Asked::Answer(Answer::AllowOnce) => {
                steps.push(step(How::AllowedOnce));
                Ok(())
            }
            Asked::Answer(Answer::AllowAll(how)) => {
                self.grant(cap, scope, how);
                steps.push(step(How::AllowedAll(how)));
                Ok(())
            }
            Asked::Answer(Answer::Deny(why)) => {
                // the user's own words go back (to the model, in a chat); a client's generic
                // "declined" says nothing more than the refusal
                let said = if matches!(why.as_str(), "deny" | "denied" | "declined" | "dismissed") {
                    String::new()
                } else {
                    format!("; the user said: {why}")
                };
                steps.push(step(How::UserDenied(why)));
                Err(Refusal::Denied(format!(
                    "denied by the user: {} ({cap} in {at}) was not allowed{said}",
                    q.what
                )))
            }
            Asked::CannotAsk(why) => {
                steps.push(step(How::CannotAsk));
                Err(Refusal::Denied(format!(
                    "refused (rule policy-prompt): {} needs approval ({cap} = \"prompt\" in {at}), and {why}. To allow it without asking, add to {}:\n{}\nor, for every root:\n[capabilities]\n\"{cap}\" = \"allow\"",
                    q.what,
                    self.config_file(),
                    Policy::how_to_allow(cap, scope)
                )))
            }
            Asked::NoAnswer(why) => {
                let message = format!(
                    "refused (rule policy-prompt): {} needs approval ({cap} in {at}) and no answer came: {why}",
                    q.what
                );
                steps.push(step(How::NoAnswer(why)));
                Err(Refusal::Denied(message))
            }
            Asked::Pending => {
                steps.push(step(How::AskedLater));
                Err(Refusal::Pending)
            }
            Asked::Cancelled => {
                steps.push(step(How::Cancelled));
                Err(Refusal::Cancelled)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::policy::ScopeKey;

    struct Says(Asked);
    impl Asker for Says {
        fn ask<'a>(&'a self, _: &'a Question) -> BoxFuture<'a, Asked> {
            Box::pin(async move { self.0.clone() })
        }
    }

    fn gate(dir: &Path, rules: &[(&str, &str, &str)]) -> Gate {
        let mut scopes = std::collections::BTreeMap::new();
        for (key, cap, d) in rules {
            scopes
                .entry(ScopeKey::parse(key).unwrap())
                .or_insert_with(std::collections::BTreeMap::new)
                .insert(cap.to_string(), Decision::parse(d).unwrap());
        }
        Gate::new(
            Policy::new(Default::default(), scopes).unwrap(),
            GrantStore::load(dir.join("grants.json")),
            Audit::new(dir.join("audit.jsonl")),
            Some(dir.join("config.toml")),
        )
    }

    fn q(cap: Capability, root: &str) -> Question {
        Question {
            capability: cap,
            scope: Scope::new(root),
            tool: "write_file",
            what: "write /p/a.txt".into(),
        }
    }

    #[tokio::test]
    async fn deny_refuses_prompt_asks_allow_runs_and_allow_all_is_remembered() {
        let t = tempfile::tempdir().unwrap();
        let g = gate(
            t.path(),
            &[
                ("root:/d", "cmd.exec", "deny"),
                ("root:/a", "cmd.exec", "allow"),
            ],
        );
        let mut steps = Vec::new();
        let never = Says(Asked::NoAnswer("must not be asked".into()));
        // allow: runs without asking
        assert_eq!(
            g.check(&q(Capability::CmdExec, "/a"), &never, &mut steps)
                .await,
            Ok(())
        );
        // deny: refused without asking, naming the rule and the TOML to change
        let Err(Refusal::Denied(m)) = g
            .check(&q(Capability::CmdExec, "/d"), &never, &mut steps)
            .await
        else {
            panic!("deny must refuse")
        };
        assert!(
            m.contains("[scopes.\"root:/d\"]\n\"cmd.exec\" = \"allow\""),
            "{m}"
        );
        // prompt: asks; "Allow all" for the project is remembered and answers the next prompt
        let all = Says(Asked::Answer(Answer::AllowAll(GrantScope::Project)));
        assert_eq!(
            g.check(&q(Capability::NetHttp, "/p"), &all, &mut steps)
                .await,
            Ok(())
        );
        assert_eq!(
            g.check(&q(Capability::NetHttp, "/p"), &never, &mut steps)
                .await,
            Ok(())
        );
        // a grant never overrides a deny
        g.grant(Capability::CmdExec, &Scope::new("/d"), GrantScope::Session);
        assert!(
            g.check(&q(Capability::CmdExec, "/d"), &never, &mut steps)
                .await
                .is_err()
        );
        // a surface that cannot ask refuses with how to allow
        let Err(Refusal::Denied(m)) = g
            .check(
                &q(Capability::FsWrite, "/p"),
                &NoAsker("zeke ask cannot ask"),
                &mut steps,
            )
            .await
        else {
            panic!("prompt without a way to ask must refuse")
        };
        assert!(m.contains("and zeke ask cannot ask."), "{m}");
        let shown: Vec<String> = steps.iter().map(Step::to_string).collect();
        assert_eq!(
            shown,
            [
                "cmd.exec allow in /a ([scopes.\"root:/a\"])",
                "cmd.exec deny in /d ([scopes.\"root:/d\"])",
                "net.http prompt in /p: user allowed all (project)",
                "net.http allow in /p (allow-all grant)",
                "cmd.exec deny in /d ([scopes.\"root:/d\"])",
                "fs.write prompt in /p: client cannot be asked, refused",
            ]
        );
        // the project grant is in the shared file: another process sees it
        let mut other = GrantStore::load(t.path().join("grants.json"));
        assert_eq!(
            other.find(&Scope::new("/p"), Capability::NetHttp),
            Some(GrantScope::Project)
        );
    }
}
