//! External MCP servers (`[mcp_servers.NAME]`) as tools for the chat agent: [`McpClients`]
//! starts each server on first use (through the MCP client edge, [`crate::mcp_client`]), lists its
//! tools under namespaced names (`NAME__TOOL`, see [`namespaced`]) and calls them — each call
//! through the one gate (`mcp.call`) and recorded in the one audit log, as the tool layer does.
//!
//! Invariants: the gate is asked before the server hears of the call (a refused call never
//! reaches it); every call is audited, unknown names, refusals and failures included; one
//! server's failure never hides the others' tools; a server found dead (crashed, killed) is
//! started again on the next call to it, once per call; the servers never see Zeke's `*_API_KEY`
//! variables unless their `env` sets them; every server is stopped when the `McpClients` is
//! dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::audit::{self, Outcome, Record};
use super::gate::{Asker, Gate, Question, Refusal};
use super::tools::ToolError;
use crate::config::{Config, McpServerConfig};
use crate::core::policy::{Capability, Scope};
use crate::mcp_client::{ClientError, Connection, Launch};

/// Longest tool name offered to a model (the providers' common limit).
pub const MAX_NAME: usize = 64;
/// Most characters of the arguments shown in the gate's question.
const MAX_WHAT_ARGS: usize = 500;

/// One tool of an external server, as offered to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalTool {
    /// `NAME__TOOL`, sanitized and unique ([`namespaced`]): what the model calls.
    pub name: String,
    /// The server's config name.
    pub server: String,
    /// The tool's own name on that server.
    pub tool: String,
    pub description: String,
    /// The tool's JSON Schema, as the server gave it.
    pub input_schema: Value,
}

/// A server that could not be listed: why (also logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    pub server: String,
    pub message: String,
}

/// Every configured server's tools, and the servers that failed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    pub tools: Vec<ExternalTool>,
    pub failed: Vec<ServerError>,
}

/// One call of an external tool, as the agent hands it in.
pub struct McpCall<'a> {
    /// The namespaced name (`NAME__TOOL`) from [`McpClients::tools`].
    pub name: &'a str,
    pub args: Map<String, Value>,
    /// The project the call is made for (the gate's scope).
    pub scope_root: &'a Path,
    /// How the surface asks the user when `mcp.call` says prompt.
    pub asker: &'a dyn Asker,
    pub ct: CancellationToken,
    /// Who called, for the audit log (`nvim`).
    pub client: Option<&'a str>,
}

struct Server {
    config: McpServerConfig,
    /// The running connection; `None` before the first use and after a crash.
    conn: tokio::sync::Mutex<Option<Arc<Connection>>>,
}

/// The configured external servers of one process.
pub struct McpClients {
    servers: BTreeMap<String, Server>,
    /// Namespaced name → (server, tool), from the last listing.
    index: Mutex<BTreeMap<String, (String, String)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl McpClients {
    /// The servers of `config.mcp_servers`; none is started yet.
    pub fn new(config: &Config) -> McpClients {
        McpClients::from_servers(config.mcp_servers.values().cloned())
    }

    /// The servers `servers` (validated config entries); none is started yet.
    pub fn from_servers(servers: impl IntoIterator<Item = McpServerConfig>) -> McpClients {
        let servers = servers
            .into_iter()
            .map(|config| {
                let conn = tokio::sync::Mutex::new(None);
                (config.name.clone(), Server { config, conn })
            })
            .collect();
        McpClients {
            servers,
            index: Mutex::new(BTreeMap::new()),
        }
    }

    /// Whether no server is configured.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// Every server's tools (starting the servers not running); a server that fails is logged
    /// and left out.
    pub async fn tools(&self) -> Vec<ExternalTool> {
        self.list().await.tools
    }

    /// Every server's tools and the servers that failed (each one's error also logged at warn).
    /// The servers are asked concurrently; the names are namespaced over the whole listing.
    pub async fn list(&self) -> Listing {
        let asked = self.servers.values().map(|s| async move {
            let conn = self.connection(s).await?;
            conn.list_tools().await.map_err(|e| {
                self.forget_if_dead(s, &conn);
                format!("cannot list its tools: {e}")
            })
        });
        let answers = futures_util::future::join_all(asked).await;
        let mut listing = Listing::default();
        let mut taken = BTreeSet::new();
        for (s, answer) in self.servers.values().zip(answers) {
            match answer {
                Ok(tools) => {
                    for t in tools {
                        let name = namespaced(&s.config.name, &t.name, &taken);
                        taken.insert(name.clone());
                        listing.tools.push(ExternalTool {
                            name,
                            server: s.config.name.clone(),
                            tool: t.name,
                            description: t.description,
                            input_schema: t.input_schema,
                        });
                    }
                }
                Err(message) => {
                    tracing::warn!(server = s.config.name.as_str(), "MCP server: {message}");
                    listing.failed.push(ServerError {
                        server: s.config.name.clone(),
                        message,
                    });
                }
            }
        }
        *lock(&self.index) = (listing.tools.iter())
            .map(|t| (t.name.clone(), (t.server.clone(), t.tool.clone())))
            .collect();
        listing
    }

    /// Calls the external tool `call.name`: asks the gate for `mcp.call` first, then the server
    /// (started again if it died), within its `timeout_ms`. The text content comes back (text
    /// blocks joined by newlines); an `isError` result is `Err(ToolError::Failed(text))`. Every
    /// call is audited (under the namespaced name, arguments redacted), written before this
    /// returns.
    pub async fn call(&self, gate: &Gate, call: McpCall<'_>) -> Result<String, ToolError> {
        let started = Instant::now();
        let redacted = audit::redact(&Value::Object(call.args.clone()));
        let mut steps = Vec::new();
        let result = tokio::select! {
            r = self.run(gate, &call, &mut steps) => r,
            _ = call.ct.cancelled() => Err(ToolError::Cancelled),
        };
        let message = result.as_ref().err().map(ToolError::to_string);
        let outcome = match &result {
            Ok(_) => Outcome::Ok,
            Err(e) => e.outcome(),
        };
        gate.audit()
            .append(&Record {
                tool: call.name,
                arguments: redacted,
                decisions: &steps,
                outcome,
                message: message.as_deref(),
                duration_ms: started.elapsed().as_millis() as u64,
                client: call.client,
            })
            .written()
            .await;
        tracing::debug!(
            tool = call.name,
            outcome = outcome.as_str(),
            ms = started.elapsed().as_millis() as u64,
            "external tool call"
        );
        result
    }

    /// The process id of `server` while it runs (`None`: not started, exited, or unknown).
    pub async fn pid(&self, server: &str) -> Option<u32> {
        let s = self.servers.get(server)?;
        let conn = s.conn.lock().await;
        conn.as_ref().filter(|c| c.alive()).and_then(|c| c.pid())
    }

    async fn run(
        &self,
        gate: &Gate,
        call: &McpCall<'_>,
        steps: &mut Vec<super::gate::Step>,
    ) -> Result<String, ToolError> {
        let found = lock(&self.index).get(call.name).cloned();
        let found = match found {
            Some(f) => Some(f),
            // not listed yet (or listed before a server came back): list again, once
            None => {
                self.list().await;
                lock(&self.index).get(call.name).cloned()
            }
        };
        let Some((server, tool)) = found else {
            return Err(ToolError::Unknown(call.name.to_string()));
        };
        let s = self
            .servers
            .get(&server)
            .ok_or_else(|| ToolError::Unknown(call.name.to_string()))?;
        let root = std::fs::canonicalize(call.scope_root)
            .unwrap_or_else(|_| call.scope_root.to_path_buf());
        let q = Question {
            capability: Capability::McpCall,
            scope: Scope::new(root),
            tool: interned(call.name),
            // what goes out, for the user to judge (the audit record keeps the redacted form)
            what: format!(
                "call {server}.{tool} with {}",
                cut(&Value::Object(call.args.clone()).to_string())
            ),
        };
        gate.check(&q, call.asker, steps)
            .await
            .map_err(|r| match r {
                Refusal::Denied(m) => ToolError::Denied(m),
                Refusal::Cancelled => ToolError::Cancelled,
                Refusal::Pending => ToolError::NeedsInput,
            })?;
        let conn = self.connection(s).await.map_err(ToolError::Failed)?;
        match conn.call(&tool, call.args.clone()).await {
            Ok(r) if r.is_error => Err(ToolError::Failed(r.text)),
            Ok(r) => Ok(r.text),
            Err(e) => {
                let dead = self.forget_if_dead(s, &conn);
                let again = if dead {
                    " (it is started again on the next call)"
                } else {
                    ""
                };
                Err(ToolError::Failed(match e {
                    ClientError::Timeout(d) => format!(
                        "{server}.{tool}: no answer within {} ms (the server's timeout_ms)",
                        d.as_millis()
                    ),
                    e => format!("{server}.{tool}: MCP server {server:?}: {e}{again}"),
                }))
            }
        }
    }

    /// The running connection of `s`, started when there is none or it died.
    async fn connection(&self, s: &Server) -> Result<Arc<Connection>, String> {
        let mut slot = s.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            if c.alive() {
                return Ok(c.clone());
            }
            tracing::info!(
                server = s.config.name.as_str(),
                "MCP server exited; starting it again"
            );
            *slot = None;
        }
        let cfg = &s.config;
        let env: Vec<(&str, &str)> = (cfg.env.iter())
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let started = Connection::start(Launch {
            label: &cfg.name,
            program: &cfg.command,
            args: &cfg.args,
            env: &env,
            hide_env: super::tools::cmd::hidden_env,
            timeout: cfg.timeout,
        })
        .await
        .map_err(|e| {
            format!(
                "MCP server {:?} ({} in [mcp_servers.{}]) could not be started: {e}",
                cfg.name, cfg.command, cfg.name
            )
        })?;
        tracing::debug!(
            server = cfg.name.as_str(),
            pid = started.pid(),
            "MCP server started"
        );
        let c = Arc::new(started);
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Drops `conn` from `s` when it died, so that the next use starts the server again.
    fn forget_if_dead(&self, s: &Server, conn: &Arc<Connection>) -> bool {
        if conn.alive() {
            return false;
        }
        if let Ok(mut slot) = s.conn.try_lock()
            && slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn))
        {
            *slot = None;
        }
        true
    }
}

/// The name a model sees for `tool` of `server`: `SERVER__TOOL` with every character outside
/// `[A-Za-z0-9_-]` turned into `_`, cut to [`MAX_NAME`]; made unique against `taken` with a
/// `_2`, `_3`… suffix (within the limit).
pub fn namespaced(server: &str, tool: &str, taken: &BTreeSet<String>) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let base: String = format!("{}__{}", clean(server), clean(tool))
        .chars()
        .take(MAX_NAME)
        .collect();
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains(&name) {
        let suffix = format!("_{n}");
        let keep = MAX_NAME - suffix.len();
        name = format!("{}{suffix}", &base[..base.len().min(keep)]);
        n += 1;
    }
    name
}

/// `s` cut to [`MAX_WHAT_ARGS`] characters (an ellipsis marks the cut).
fn cut(s: &str) -> String {
    match s.char_indices().nth(MAX_WHAT_ARGS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// `name` as a `&'static str` for [`Question::tool`]: each distinct name (a tool found in a
/// listing) is kept once for the life of the process.
fn interned(name: &str) -> &'static str {
    static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut names = lock(&NAMES);
    if let Some(n) = names.get(name) {
        return n;
    }
    let n: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(n);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_namespaced_sanitized_cut_and_unique() {
        let none = BTreeSet::new();
        assert_eq!(
            namespaced("self", "read_text_file", &none),
            "self__read_text_file"
        );
        assert_eq!(
            namespaced("gh", "repo.list/all é", &none),
            "gh__repo_list_all__"
        );
        let long = "t".repeat(100);
        let name = namespaced("srv", &long, &none);
        assert_eq!((name.len(), &name[..5]), (MAX_NAME, "srv__"));
        let taken: BTreeSet<String> = [name.clone()].into();
        let second = namespaced("srv", &long, &taken);
        assert!(second.len() <= MAX_NAME && second.ends_with("_2") && second != name);
        let taken: BTreeSet<String> = ["a__b".to_string(), "a__b_2".to_string()].into();
        assert_eq!(namespaced("a", "b", &taken), "a__b_3");
    }

    /// The agent shares one `McpClients` between tasks and spawns its calls.
    #[allow(dead_code)]
    fn shareable_and_spawnable(c: &McpClients, g: &Gate, call: McpCall<'static>) {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: T) {}
        send_sync(c);
        send(c.call(g, call));
        send(c.list());
    }

    #[test]
    fn long_arguments_are_cut_for_the_question() {
        assert_eq!(cut("short"), "short");
        let s = "é".repeat(600);
        let c = cut(&s);
        assert_eq!(c.chars().count(), MAX_WHAT_ARGS + 1);
        assert!(c.ends_with('…'));
        assert!(std::ptr::eq(interned("x__y"), interned("x__y")));
    }
}
