//! The editor's requests about the router, the ledger, chat sessions and the external MCP
//! servers: `usage`, `models`, `pin`, `chat_sessions`, `chat_load`, `mcp_servers`, `lsp_servers`
//! (shapes in doc/rpc.md).

use rmpv::Value;

use super::handler::{NvimHandler, field, json_value};
use super::proto::{self, map, params};

impl NvimHandler {
    /// `chat_sessions {root}` → `[{id, title, updated_ms, turns}]`, newest first.
    pub(super) fn chat_sessions(&self, args: Vec<Value>) -> Result<Value, Value> {
        let p: proto::ChatSessions = params("chat_sessions", args).map_err(Value::from)?;
        Ok(Value::Array(
            self.app
                .chats
                .list(&p.root)
                .into_iter()
                .map(|l| {
                    map(vec![
                        ("id", l.id.into()),
                        ("title", l.title.into()),
                        ("updated_ms", l.updated_ms.into()),
                        ("turns", (l.turns as u64).into()),
                    ])
                })
                .collect(),
        ))
    }

    /// `chat_load {root, session}` → `{id, title, messages = [{role, content, tool_calls?,
    /// tool_call_id?, provider?, model?}]}` (to show a resumed conversation).
    pub(super) fn chat_load(&self, args: Vec<Value>) -> Result<Value, Value> {
        let p: proto::ChatSessions = params("chat_load", args).map_err(Value::from)?;
        let id = p
            .session
            .ok_or_else(|| Value::from("chat_load needs `session`"))?;
        let s = self
            .app
            .chats
            .load(&p.root, &id)
            .map_err(|e| Value::from(format!("zeke: chat session {id}: {e}")))?;
        let v = serde_json::to_value(&s).map_err(|e| Value::from(e.to_string()))?;
        Ok(json_value(&v))
    }

    /// `usage {last?}` → the same object as `zeke usage --json`.
    pub(super) fn usage(&self, args: Vec<Value>) -> Result<Value, Value> {
        let last = args
            .first()
            .and_then(|a| field(a, "last"))
            .and_then(Value::as_u64)
            .unwrap_or(10)
            .min(1000) as usize;
        let set = self.app.setup();
        let path = crate::app::ledger_path(&set.config);
        let summary = match self.app.router.ledger() {
            Some(l) => l.summary(last),
            None => crate::ledger::Ledger::open(&path).and_then(|l| l.summary(last)),
        }
        .map_err(|e| Value::from(format!("zeke: {e}")))?;
        Ok(json_value(&crate::app::report::usage(
            &set.config,
            &path,
            &summary,
        )))
    }

    /// `models {probe?}` → `{providers: [...], pinned}` (the shapes of `zeke models --json`).
    pub(super) async fn models(&self, args: Vec<Value>) -> Value {
        let probe = args
            .first()
            .and_then(|a| field(a, "probe"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let set = self.app.setup();
        let health = if probe {
            set.health().await
        } else {
            Vec::new()
        };
        let rows = crate::app::report::models(&self.app, &set, &health);
        json_value(&serde_json::json!({
            "providers": rows,
            "pinned": self.app.router.pinned(),
        }))
    }

    /// `pin {provider}` (nil/absent unpins): the provider goes first for every request of this
    /// session (`:Zeke provider`, `:Zeke model`).
    pub(super) fn pin(&self, args: Vec<Value>) -> Result<Value, Value> {
        let name = args
            .first()
            .and_then(|a| field(a, "provider"))
            .and_then(|v| v.as_str().map(str::to_string));
        let set = self.app.setup();
        if let Some(n) = &name
            && !set.config.providers.contains_key(n)
            && set.detection.as_ref().is_none_or(|d| &d.chosen.name != n)
        {
            let known: Vec<String> = crate::router::Pool::candidates(set.as_ref())
                .into_iter()
                .map(|c| c.name)
                .collect();
            return Err(Value::from(format!(
                "zeke: no provider named {n:?} (configured: {})",
                known.join(", ")
            )));
        }
        tracing::info!(provider = ?name, "provider pinned for this session");
        self.app.router.pin(name.clone());
        Ok(name.map(Value::from).unwrap_or(Value::Nil))
    }

    /// `mcp_servers` → `[{name, command, tools, error}]`: each `[mcp_servers.NAME]` (started
    /// when not running) with its tools' namespaced names, or `error`, why it could not be
    /// listed (nil when it could).
    pub(super) async fn mcp_servers(&self) -> Value {
        let set = self.app.setup();
        let listing = self.app.mcp_clients().list().await;
        let rows: Vec<serde_json::Value> = (set.config.mcp_servers.values())
            .map(|s| {
                let tools: Vec<&str> = (listing.tools.iter())
                    .filter(|t| t.server == s.name)
                    .map(|t| t.name.as_str())
                    .collect();
                let error = (listing.failed.iter())
                    .find(|f| f.server == s.name)
                    .map(|f| f.message.as_str());
                serde_json::json!({"name": s.name, "command": s.command, "tools": tools, "error": error})
            })
            .collect();
        json_value(&serde_json::Value::Array(rows))
    }

    /// `lsp_servers` → `[{languages, command, path?, version?}]`: the enabled language servers
    /// of the `lsp_*` tools, where they were found and their `--version` (`:checkhealth zeke`).
    pub(super) async fn lsp_servers(&self) -> Value {
        let set = self.app.setup();
        let rows: Vec<serde_json::Value> = crate::app::lsp::found(&set.config.lsp)
            .await
            .into_iter()
            .map(|f| {
                serde_json::json!({
                    "languages": f.languages,
                    "command": f.command,
                    "path": f.path.map(|p| p.display().to_string()),
                    "version": f.version,
                })
            })
            .collect();
        json_value(&serde_json::Value::Array(rows))
    }
}
