//! The policy engine ("GhostWarden"): capabilities × scopes → allow / prompt / deny.
//!
//! Pure data and decisions, shared by every surface (MCP tools, Neovim patches). `config` parses
//! the TOML into a [`Policy`]; surfaces build a [`Scope`] for each action and call
//! [`Policy::decide`]; "Allow all" answers live in [`Grants`], which the caller owns (in memory for
//! a session, persisted by the caller when it wants them to survive a restart).
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
//! built-in default of the capability ([`default_decision`]); when that says `prompt`, a grant
//! ("Allow all") turns it into allow — a grant never overrides a configured allow or deny. An
//! unknown capability is denied.

use std::collections::{BTreeMap, BTreeSet};
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

/// Every capability the engine knows, with its built-in default:
/// reading is allowed, changing files or git state asks, running commands is refused.
pub const CAPABILITIES: &[(&str, Decision, &str)] = &[
    (
        "fs.read",
        Decision::Allow,
        "read files and list directories inside the roots",
    ),
    (
        "fs.write",
        Decision::Prompt,
        "create, overwrite, edit or move files and directories",
    ),
    (
        "git.read",
        Decision::Allow,
        "read git status, diffs, logs, branches and objects",
    ),
    (
        "git.write",
        Decision::Prompt,
        "stage, unstage, commit, create branches, check out",
    ),
    ("cmd.exec", Decision::Deny, "run a shell command"),
    (
        "net.http",
        Decision::Allow,
        "send a request to a model provider",
    ),
];

/// The built-in default for `capability`; `None` for an unknown capability.
pub fn default_decision(capability: &str) -> Option<Decision> {
    CAPABILITIES
        .iter()
        .find(|(c, _, _)| *c == capability)
        .map(|(_, d, _)| *d)
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
    /// The capability is not one the engine knows.
    Unknown,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Grant => f.write_str("allow-all grant"),
            Rule::Scope(k) => write!(f, "[scopes.\"{k}\"]"),
            Rule::Global => f.write_str("[capabilities]"),
            Rule::Default => f.write_str("built-in default"),
            Rule::Unknown => f.write_str("unknown capability"),
        }
    }
}

/// A decision and the rule that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    pub rule: Rule,
}

/// "Allow all" answers: (scope, capability) pairs the user allowed for the rest of the session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    set: BTreeSet<(Scope, String)>,
}

impl Grants {
    pub fn grant(&mut self, scope: &Scope, capability: &str) {
        self.set.insert((scope.clone(), capability.to_string()));
    }

    pub fn contains(&self, scope: &Scope, capability: &str) -> bool {
        self.set.contains(&(scope.clone(), capability.to_string()))
    }
}

/// The configured rules. Build with [`Policy::new`] (validates capability names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    global: BTreeMap<String, Decision>,
    scopes: BTreeMap<ScopeKey, BTreeMap<String, Decision>>,
}

impl Policy {
    /// Rules from `[capabilities]` and `[scopes.*]`. Errors name the unknown capability and the
    /// table it was found in, e.g. `scopes."repo:zeke": unknown capability "fs.wirte" (known: …)`.
    pub fn new(
        global: BTreeMap<String, Decision>,
        scopes: BTreeMap<ScopeKey, BTreeMap<String, Decision>>,
    ) -> Result<Policy, Vec<String>> {
        let mut problems = Vec::new();
        let known = || {
            CAPABILITIES
                .iter()
                .map(|(c, _, _)| *c)
                .collect::<Vec<_>>()
                .join(", ")
        };
        for cap in global.keys() {
            if default_decision(cap).is_none() {
                problems.push(format!(
                    "capabilities: unknown capability {cap:?} (known: {})",
                    known()
                ));
            }
        }
        for (key, rules) in &scopes {
            for cap in rules.keys() {
                if default_decision(cap).is_none() {
                    problems.push(format!(
                        "scopes.\"{key}\": unknown capability {cap:?} (known: {})",
                        known()
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(Policy { global, scopes })
        } else {
            Err(problems)
        }
    }

    /// Decides `capability` in `scope`, first match wins (see the module docs).
    pub fn decide(&self, capability: &str, scope: &Scope, grants: &Grants) -> Verdict {
        let Some(default) = default_decision(capability) else {
            return Verdict {
                decision: Decision::Deny,
                rule: Rule::Unknown,
            };
        };
        let by_kind = |want_root: bool| {
            self.scopes
                .iter()
                .filter(|(k, _)| matches!(k, ScopeKey::Root(_)) == want_root)
                .find_map(|(k, rules)| {
                    rules
                        .get(capability)
                        .filter(|_| k.matches(scope))
                        .map(|d| Verdict {
                            decision: *d,
                            rule: Rule::Scope(k.clone()),
                        })
                })
        };
        let configured = by_kind(true).or_else(|| by_kind(false)).or_else(|| {
            self.global.get(capability).map(|d| Verdict {
                decision: *d,
                rule: Rule::Global,
            })
        });
        let verdict = configured.unwrap_or(Verdict {
            decision: default,
            rule: Rule::Default,
        });
        // A grant ("Allow all") answers a prompt; it never overrides a rule that allows or denies.
        if verdict.decision == Decision::Prompt && grants.contains(scope, capability) {
            return Verdict {
                decision: Decision::Allow,
                rule: Rule::Grant,
            };
        }
        verdict
    }

    /// How a user allows `capability` in `scope` for good: the TOML lines to add to the config.
    pub fn how_to_allow(capability: &str, scope: &Scope) -> String {
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
        let none = Grants::default();
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
            ("net.http", "/x", Decision::Allow, "built-in default"),
            ("fs.delete", "/x", Decision::Deny, "unknown capability"),
        ];
        for (cap, root, want, rule) in cases {
            let v = p.decide(cap, &Scope::new(root), &none);
            assert_eq!(
                (v.decision, v.rule.to_string().as_str()),
                (*want, *rule),
                "{cap} in {root}"
            );
        }
    }

    #[test]
    fn grants_apply_to_their_scope_and_capability_only() {
        let p = policy(&[], &[("root:/a", &[("fs.write", "deny")])]);
        let mut g = Grants::default();
        g.grant(&Scope::new("/b"), "fs.write");
        assert_eq!(
            p.decide("fs.write", &Scope::new("/b"), &g).decision,
            Decision::Allow
        );
        assert_eq!(
            p.decide("fs.write", &Scope::new("/b"), &g).rule,
            Rule::Grant
        );
        assert_eq!(
            p.decide("git.write", &Scope::new("/b"), &g).decision,
            Decision::Prompt
        );
        assert_eq!(
            p.decide("fs.write", &Scope::new("/bb"), &g).decision,
            Decision::Prompt
        );
        assert_eq!(
            p.decide("fs.write", &Scope::new("/a"), &g).decision,
            Decision::Deny
        );
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
        assert_eq!(e, vec!["capabilities: unknown capability \"fs.wirte\" (known: fs.read, fs.write, git.read, git.write, cmd.exec, net.http)".to_string()]);
    }

    #[test]
    fn how_to_allow_names_the_exact_key() {
        assert_eq!(
            Policy::how_to_allow("fs.write", &Scope::new("/srv/app")),
            "[scopes.\"root:/srv/app\"]\n\"fs.write\" = \"allow\""
        );
    }
}
