//! The raw config table's plumbing: `[capabilities]`/`[scopes]` into a [`Policy`], and the JSON
//! normalization and deep merge of the file and the editor's table.

use std::collections::BTreeMap;

use serde_json::Value;

use super::expand_home;
use crate::core::policy::{Decision, Policy, ScopeKey};

/// `[capabilities]` and `[scopes]` → a [`Policy`]. `root:` paths are canonicalized when they exist,
/// so a scope written through a symlink still matches the resolved project root.
pub(super) fn policy(
    global: BTreeMap<String, String>,
    scopes: BTreeMap<String, BTreeMap<String, String>>,
    problems: &mut Vec<String>,
) -> Policy {
    let decisions = |table: &str,
                     rules: BTreeMap<String, String>,
                     problems: &mut Vec<String>|
     -> BTreeMap<String, Decision> {
        rules
            .into_iter()
            .filter_map(|(cap, d)| match Decision::parse(&d) {
                Ok(d) => Some((cap, d)),
                Err(e) => {
                    problems.push(format!("{table}.\"{cap}\": {e}"));
                    None
                }
            })
            .collect()
    };
    let g = decisions("capabilities", global, problems);
    let mut s = BTreeMap::new();
    for (key, rules) in scopes {
        let rules = decisions(&format!("scopes.\"{key}\""), rules, problems);
        let key = match key.strip_prefix("root:") {
            Some(p) => format!(
                "root:{}",
                std::fs::canonicalize(expand_home(p))
                    .unwrap_or_else(|_| expand_home(p))
                    .display()
            ),
            None => key,
        };
        match ScopeKey::parse(&key) {
            Ok(k) => {
                s.insert(k, rules);
            }
            Err(e) => problems.push(format!("scopes: {e}")),
        }
    }
    Policy::new(g, s).unwrap_or_else(|e| {
        problems.extend(e);
        Policy::default()
    })
}

/// Lua sends an empty table as an empty array and `nil`-valued keys as `vim.NIL`: treat both as
/// absent so they take defaults.
pub(super) fn normalize(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter_map(|(k, v)| {
                    let v = normalize(v);
                    (!v.is_null()).then_some((k, v))
                })
                .collect(),
        ),
        Value::Array(a) if a.is_empty() => Value::Null,
        other => other,
    }
}

/// Deep-merges `top` into `base` (objects merge key by key; anything else replaces).
pub(super) fn merge(base: &mut Value, top: Value) {
    match (base, top) {
        (Value::Object(b), Value::Object(t)) => {
            for (k, v) in t {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, t) => *b = t,
    }
}
