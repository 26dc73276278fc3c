//! The policy engine ("GhostWarden"): capabilities × scopes → allow / prompt / deny.
//!
//! Pure data and decisions. `config` parses the TOML into a [`Policy`]; the one gate
//! (`app::gate`) builds a [`Scope`] for each action, looks up its "Allow all" grants and calls
//! [`Policy::decide`].
//!
//! TOML shape:
//!
//! ```toml
//! [capabilities]            # global rules
//! "fs.write" = "prompt"     # allow | prompt | deny
//! [scopes."repo:zeke"]      # the project root whose directory name is exactly `zeke`
//! "fs.write" = "allow"
//! [scopes."root:/srv/app"]  # the project root that is exactly /srv/app (canonical path)
//! "git.write" = "deny"
//! ```
//!
//! Invariants: scopes match by exact equality of a whole path or a whole directory name, never by
//! string prefix (`root:/srv/app` does not govern `/srv/app_evil` nor `/srv/app/sub` as a project
//! root). Precedence, first match wins: a `root:` scope, a `repo:` scope, `[capabilities]`, the
//! built-in default of the capability ([`Capability::default_decision`]); when that says `prompt`, a grant
//! ("Allow all") turns it into allow — a grant never overrides a configured allow or deny. An
//! unknown capability name in the config is an error.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// What to do with an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Do it without asking.
    Allow,
    /// Ask the user (Allow once / Allow all / Deny); with no way to ask, refuse.
    Prompt,
    /// Refuse.
    Deny,
}

impl Decision {
    /// Parses `allow`, `prompt` or `deny`.
    pub fn parse(s: &str) -> Result<Decision, String> {
        match s {
            "allow" => Ok(Decision::Allow),
            "prompt" => Ok(Decision::Prompt),
            "deny" => Ok(Decision::Deny),
            other => Err(format!(
                "must be one of allow, prompt, deny (got {other:?})"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Prompt => "prompt",
            Decision::Deny => "deny",
        }
    }
}

/// A kind of action the policy decides about. The TOML and audit spelling is [`Capability::as_str`]
/// (`fs.write`); the built-in defaults: reading is allowed, changing files or git state asks,
/// running programs is refused, fetching a URL for a model or client asks, calling a tool of an
/// external MCP server asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// Read files and list directories inside the roots.
    FsRead,
    /// Create, overwrite, edit, move or delete files and directories.
    FsWrite,
    /// Read git status, diffs, logs, branches and objects.
    GitRead,
    /// Stage, unstage, commit, create branches, check out.
    GitWrite,
    /// Run a program chosen or influenced by a model or a client (language servers, the agent's
    /// commands).
    CmdExec,
    /// Fetch a URL for a model or a client. Zeke's own requests to the configured providers are
    /// not tool calls and are not gated by it.
    NetHttp,
    /// Call a tool of an external MCP server (`[mcp_servers.NAME]`) for the chat agent. What the
    /// tool does is up to that server: Zeke's confinement does not reach into it.
    McpCall,
}

impl Capability {
    /// Every capability, in the order docs and health list them.
    pub const ALL: [Capability; 7] = [
        Capability::FsRead,
        Capability::FsWrite,
        Capability::GitRead,
        Capability::GitWrite,
        Capability::CmdExec,
        Capability::NetHttp,
        Capability::McpCall,
    ];

    /// The config and audit spelling, e.g. `fs.write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::FsRead => "fs.read",
            Capability::FsWrite => "fs.write",
            Capability::GitRead => "git.read",
            Capability::GitWrite => "git.write",
            Capability::CmdExec => "cmd.exec",
            Capability::NetHttp => "net.http",
            Capability::McpCall => "mcp.call",
        }
    }

    /// Parses the config spelling; `Err` names the known ones.
    pub fn parse(s: &str) -> Result<Capability, String> {
        Capability::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Capability::ALL.iter().map(|c| c.as_str()).collect();
                format!("unknown capability {s:?} (known: {})", known.join(", "))
            })
    }

    /// The built-in default, used when no rule in the config names the capability.
    pub fn default_decision(self) -> Decision {
        match self {
            Capability::FsRead | Capability::GitRead => Decision::Allow,
            Capability::FsWrite
            | Capability::GitWrite
            | Capability::NetHttp
            | Capability::McpCall => Decision::Prompt,
            Capability::CmdExec => Decision::Deny,
        }
    }

    /// One line for docs and health.
    pub fn describe(self) -> &'static str {
        match self {
            Capability::FsRead => "read files and list directories inside the roots",
            Capability::FsWrite => "create, overwrite, edit or move files and directories",
            Capability::GitRead => "read git status, diffs, logs, branches and objects",
            Capability::GitWrite => "stage, unstage, commit, create branches, check out",
            Capability::CmdExec => "run a program chosen or influenced by a model or client",
            Capability::NetHttp => "fetch a URL for a model or client (not the provider calls)",
            Capability::McpCall => "call a tool of an external MCP server ([mcp_servers.NAME])",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The key of a `[scopes."…"]` table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ScopeKey {
    /// `root:/abs/path`: the project root equal to this canonical absolute path.
    Root(PathBuf),
    /// `repo:NAME`: a project root whose last path component is exactly `NAME`.
    Repo(String),
}

impl ScopeKey {
    /// Parses `root:/abs/path` or `repo:NAME`. The path must be absolute and free of `.`/`..`
    /// components (the caller canonicalizes it first when it exists); a name is one path component.
    pub fn parse(key: &str) -> Result<ScopeKey, String> {
        if let Some(path) = key.strip_prefix("root:") {
            let p = Path::new(path);
            if !p.is_absolute() {
                return Err(format!("scope {key:?}: root: takes an absolute path"));
            }
            if p.components().any(|c| {
                matches!(
                    c,
                    std::path::Component::CurDir | std::path::Component::ParentDir
                )
            }) {
                return Err(format!(
                    "scope {key:?}: root: path must not contain . or .."
                ));
            }
            Ok(ScopeKey::Root(p.components().collect()))
        } else if let Some(name) = key.strip_prefix("repo:") {
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                return Err(format!(
                    "scope {key:?}: repo: takes a directory name (no '/')"
                ));
            }
            Ok(ScopeKey::Repo(name.to_string()))
        } else {
            Err(format!(
                "scope {key:?}: must start with \"root:\" (an absolute path) or \"repo:\" (a directory name)"
            ))
        }
    }

    /// Whether this key governs `scope`: exact path equality or exact directory-name equality.
    pub fn matches(&self, scope: &Scope) -> bool {
        match self {
            ScopeKey::Root(p) => scope.root == *p,
            ScopeKey::Repo(name) => scope.root.file_name().is_some_and(|n| n == name.as_str()),
        }
    }
}

impl fmt::Display for ScopeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScopeKey::Root(p) => write!(f, "root:{}", p.display()),
            ScopeKey::Repo(n) => write!(f, "repo:{n}"),
        }
    }
}

/// Where an action happens: the project root (canonical absolute path) it falls under.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Scope {
    pub root: PathBuf,
}

impl Scope {
    pub fn new(root: impl Into<PathBuf>) -> Scope {
        Scope { root: root.into() }
    }

    /// The `[scopes."…"]` key a user would write to configure exactly this scope.
    pub fn config_key(&self) -> String {
        format!("root:{}", self.root.display())
    }
}

/// Which rule produced a decision (for messages and the audit log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// An "Allow all" answer given earlier for this scope and capability.
    Grant,
    /// `[scopes."KEY"]`.
    Scope(ScopeKey),
    /// `[capabilities]`.
    Global,
    /// The built-in default.
    Default,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Grant => f.write_str("allow-all grant"),
            Rule::Scope(k) => write!(f, "[scopes.\"{k}\"]"),
            Rule::Global => f.write_str("[capabilities]"),
            Rule::Default => f.write_str("built-in default"),
        }
    }
}

/// A decision and the rule that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    pub rule: Rule,
}

/// The configured rules. Build with [`Policy::new`] (validates capability names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    global: BTreeMap<Capability, Decision>,
    scopes: BTreeMap<ScopeKey, BTreeMap<Capability, Decision>>,
}

impl Policy {
    /// Rules from `[capabilities]` and `[scopes.*]`, keyed by the config spelling. Errors name the
    /// unknown capability and the table it was found in, e.g.
    /// `scopes."repo:zeke": unknown capability "fs.wirte" (known: …)`.
    pub fn new(
        global: BTreeMap<String, Decision>,
        scopes: BTreeMap<ScopeKey, BTreeMap<String, Decision>>,
    ) -> Result<Policy, Vec<String>> {
        let mut problems = Vec::new();
        let mut typed = |table: &str, rules: BTreeMap<String, Decision>| {
            rules
                .into_iter()
                .filter_map(|(cap, d)| match Capability::parse(&cap) {
                    Ok(c) => Some((c, d)),
                    Err(e) => {
                        problems.push(format!("{table}: {e}"));
                        None
                    }
                })
                .collect::<BTreeMap<_, _>>()
        };
        let global = typed("capabilities", global);
        let scopes = scopes
            .into_iter()
            .map(|(k, rules)| {
                let rules = typed(&format!("scopes.\"{k}\""), rules);
                (k, rules)
            })
            .collect();
        if problems.is_empty() {
            Ok(Policy { global, scopes })
        } else {
            Err(problems)
        }
    }

    /// Decides `capability` in `scope`, first match wins (see the module docs). `granted` says
    /// whether an "Allow all" grant exists for this scope and capability; it only ever answers a
    /// `prompt`.
    pub fn decide(&self, capability: Capability, scope: &Scope, granted: bool) -> Verdict {
        let by_kind = |want_root: bool| {
            self.scopes
                .iter()
                .filter(|(k, _)| matches!(k, ScopeKey::Root(_)) == want_root)
                .find_map(|(k, rules)| {
                    rules
                        .get(&capability)
                        .filter(|_| k.matches(scope))
                        .map(|d| Verdict {
                            decision: *d,
                            rule: Rule::Scope(k.clone()),
                        })
                })
        };
        let configured = by_kind(true).or_else(|| by_kind(false)).or_else(|| {
            self.global.get(&capability).map(|d| Verdict {
                decision: *d,
                rule: Rule::Global,
            })
        });
        let verdict = configured.unwrap_or(Verdict {
            decision: capability.default_decision(),
            rule: Rule::Default,
        });
        // A grant ("Allow all") answers a prompt; it never overrides a rule that allows or denies.
        if verdict.decision == Decision::Prompt && granted {
            return Verdict {
                decision: Decision::Allow,
                rule: Rule::Grant,
            };
        }
        verdict
    }

    /// How a user allows `capability` in `scope` for good: the TOML lines to add to the config.
    pub fn how_to_allow(capability: Capability, scope: &Scope) -> String {
        format!(
            "[scopes.\"{}\"]\n\"{capability}\" = \"allow\"",
            scope.config_key()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(global: &[(&str, &str)], scopes: &[(&str, &[(&str, &str)])]) -> Policy {
        let g = global
            .iter()
            .map(|(c, d)| (c.to_string(), Decision::parse(d).unwrap()))
            .collect();
        let s = scopes
            .iter()
            .map(|(k, rules)| {
                (
                    ScopeKey::parse(k).unwrap(),
                    rules
                        .iter()
                        .map(|(c, d)| (c.to_string(), Decision::parse(d).unwrap()))
                        .collect(),
                )
            })
            .collect();
        Policy::new(g, s).unwrap()
    }

    #[test]
    fn decision_table() {
        let p = policy(
            &[
                ("fs.write", "prompt"),
                ("cmd.exec", "deny"),
                ("git.read", "deny"),
            ],
            &[
                ("repo:zeke", &[("fs.write", "allow")]),
                (
                    "root:/srv/app",
                    &[("fs.write", "deny"), ("git.write", "allow")],
                ),
                ("repo:app", &[("fs.write", "allow")]),
            ],
        );
        // (capability, scope root, expected decision, expected rule)
        let cases: &[(&str, &str, Decision, &str)] = &[
            (
                "fs.read",
                "/home/u/zeke",
                Decision::Allow,
                "built-in default",
            ),
            (
                "fs.write",
                "/home/u/zeke",
                Decision::Allow,
                "[scopes.\"repo:zeke\"]",
            ),
            (
                "fs.write",
                "/home/u/zeke2",
                Decision::Prompt,
                "[capabilities]",
            ),
            (
                "fs.write",
                "/home/u/zek",
                Decision::Prompt,
                "[capabilities]",
            ),
            (
                "fs.write",
                "/home/u/zeke/sub",
                Decision::Prompt,
                "[capabilities]",
            ),
            // root: beats repo: even though repo:app also matches /srv/app
            (
                "fs.write",
                "/srv/app",
                Decision::Deny,
                "[scopes.\"root:/srv/app\"]",
            ),
            // no string-prefix matching
            (
                "fs.write",
                "/srv/app_evil",
                Decision::Prompt,
                "[capabilities]",
            ),
            (
                "git.write",
                "/srv/app_evil",
                Decision::Prompt,
                "built-in default",
            ),
            (
                "git.write",
                "/srv/app/sub",
                Decision::Prompt,
                "built-in default",
            ),
            (
                "git.write",
                "/srv/app",
                Decision::Allow,
                "[scopes.\"root:/srv/app\"]",
            ),
            ("git.read", "/srv/app", Decision::Deny, "[capabilities]"),
            ("cmd.exec", "/srv/app", Decision::Deny, "[capabilities]"),
            ("net.http", "/srv/app", Decision::Prompt, "built-in default"),
            ("mcp.call", "/srv/app", Decision::Prompt, "built-in default"),
        ];
        for (cap, root, want, rule) in cases {
            let v = p.decide(Capability::parse(cap).unwrap(), &Scope::new(root), false);
            assert_eq!(
                (v.decision, v.rule.to_string().as_str()),
                (*want, *rule),
                "{cap} in {root}"
            );
        }
    }

    #[test]
    fn a_grant_answers_a_prompt_only() {
        let p = policy(&[], &[("root:/a", &[("fs.write", "deny")])]);
        let v = p.decide(Capability::FsWrite, &Scope::new("/b"), true);
        assert_eq!((v.decision, v.rule), (Decision::Allow, Rule::Grant));
        let v = p.decide(Capability::FsWrite, &Scope::new("/a"), true);
        assert_eq!(v.decision, Decision::Deny, "a grant never overrides a deny");
        let v = p.decide(Capability::FsRead, &Scope::new("/b"), true);
        assert_eq!(v.rule, Rule::Default, "an allow stays the rule's");
    }

    #[test]
    fn bad_keys_and_values_are_named() {
        assert_eq!(
            ScopeKey::parse("zeke").unwrap_err(),
            "scope \"zeke\": must start with \"root:\" (an absolute path) or \"repo:\" (a directory name)"
        );
        assert_eq!(
            ScopeKey::parse("root:rel/p").unwrap_err(),
            "scope \"root:rel/p\": root: takes an absolute path"
        );
        assert_eq!(
            ScopeKey::parse("root:/a/../b").unwrap_err(),
            "scope \"root:/a/../b\": root: path must not contain . or .."
        );
        assert_eq!(
            ScopeKey::parse("repo:a/b").unwrap_err(),
            "scope \"repo:a/b\": repo: takes a directory name (no '/')"
        );
        assert_eq!(
            ScopeKey::parse("root:/a//b/").unwrap(),
            ScopeKey::Root(PathBuf::from("/a/b"))
        );
        assert_eq!(
            Decision::parse("ask").unwrap_err(),
            "must be one of allow, prompt, deny (got \"ask\")"
        );
        let e = Policy::new(
            [("fs.wirte".to_string(), Decision::Allow)].into(),
            BTreeMap::new(),
        )
        .unwrap_err();
        assert_eq!(e, vec!["capabilities: unknown capability \"fs.wirte\" (known: fs.read, fs.write, git.read, git.write, cmd.exec, net.http, mcp.call)".to_string()]);
    }

    #[test]
    fn every_capability_parses_from_its_own_spelling() {
        for c in Capability::ALL {
            assert_eq!(Capability::parse(c.as_str()), Ok(c));
            assert_eq!(c.to_string(), c.as_str());
        }
        assert_eq!(Capability::parse("mcp.call"), Ok(Capability::McpCall));
        assert_eq!(Capability::McpCall.default_decision(), Decision::Prompt);
        let p = policy(
            &[("mcp.call", "deny")],
            &[("repo:zeke", &[("mcp.call", "allow")])],
        );
        let v = p.decide(Capability::McpCall, &Scope::new("/u/zeke"), false);
        assert_eq!(v.decision, Decision::Allow);
        let v = p.decide(Capability::McpCall, &Scope::new("/u/other"), true);
        assert_eq!((v.decision, v.rule), (Decision::Deny, Rule::Global));
    }

    #[test]
    fn how_to_allow_names_the_exact_key() {
        assert_eq!(
            Policy::how_to_allow(Capability::FsWrite, &Scope::new("/srv/app")),
            "[scopes.\"root:/srv/app\"]\n\"fs.write\" = \"allow\""
        );
    }
}
