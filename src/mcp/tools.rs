//! The catalog ([`crate::app::tools::catalog`]) as MCP `Tool`s: annotations from whether a tool
//! writes, and the optional `page` argument every tool takes here (see [`super::output`]).

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};

pub use crate::app::tools::catalog::{Spec, TOOLS, find};
use crate::core::policy::Capability;

/// The MCP `Tool` for a spec; `openWorldHint` for the tools that reach the network.
pub fn to_tool(s: &Spec) -> Tool {
    // a shell command can reach the network as much as `fetch` can
    let open_world = matches!(s.cap, Capability::NetHttp | Capability::CmdExec);
    let annotations = match s.writes {
        None => ToolAnnotations::with_title(s.title)
            .read_only(true)
            .destructive(false)
            .idempotent(true)
            .open_world(open_world),
        Some((destructive, idempotent)) => ToolAnnotations::with_title(s.title)
            .read_only(false)
            .destructive(destructive)
            .idempotent(idempotent)
            .open_world(false),
    };
    let mut t = Tool::new(s.name, s.description, with_page((s.input)()));
    t.title = Some(s.title.to_string());
    t.annotations = Some(annotations);
    t.output_schema = s.output.map(|f| f());
    t
}

/// Every tool takes an optional `page` (see `output`).
fn with_page(schema: Arc<JsonObject>) -> Arc<JsonObject> {
    let mut s = schema.as_ref().clone();
    let props = s
        .entry("properties")
        .or_insert_with(|| serde_json::json!({}));
    if let Some(p) = props.as_object_mut() {
        p.insert("page".into(), serde_json::json!({"type": "integer", "minimum": 1, "description": "Page of a long output to return (from 1); long outputs end with a marker naming the next page"}));
    }
    Arc::new(s)
}
