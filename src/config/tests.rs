//! Tests of configuration loading and validation: defaults, merging, and messages naming keys.

use super::*;
use crate::core::policy::Decision;
use serde_json::json;

fn check_err(v: Value, expected: &str) {
    let e = Config::from_value(v).unwrap_err();
    assert_eq!(e.messages.join(" | "), expected);
}

#[test]
fn defaults_without_anything() {
    let c = Config::from_value(json!({})).unwrap();
    assert_eq!(c.completion.max_tokens, 64);
    assert_eq!(c.completion.timeout, Duration::from_secs(8));
    assert!(c.providers.is_empty());
}

#[test]
fn errors_name_the_key() {
    check_err(
        json!({"completion": {"debouce_ms": 5}}),
        "completion.debouce_ms: unknown field `debouce_ms`, expected one of `enabled`, `provider`, `debounce_ms`, `max_context_tokens`, `max_tokens`, `max_lines`, `timeout_ms`, `filetypes`, `hide_during_completion`",
    );
    check_err(
        json!({"completion": {"debounce_ms": "x"}}),
        "completion.debounce_ms: invalid type: string \"x\", expected u64",
    );
    check_err(
        json!({"providers": {"a": {"kind": "gpt"}}}),
        "providers.a.kind: unknown variant `gpt`, expected one of `openai`, `anthropic`, `gemini`, `azure`, `llamacpp`, `ollama`, `xai`, `groq`, `mistral`, `deepseek`, `openrouter`, `lmstudio`, `vllm`, `fake`",
    );
    check_err(
        json!({"completion": {"provider": "nope", "max_tokens": 0}}),
        "completion.provider: no provider named \"nope\" (configured: none) | completion.max_tokens: must be between 1 and 4096 (got 0)",
    );
    check_err(
        json!({"providers": {"a": {"kind": "openai", "url": "api.openai.com"}}}),
        "providers.a.url: must start with http:// or https:// (got \"api.openai.com\")",
    );
    check_err(
        json!({"log_level": "loud"}),
        "log_level: must be one of error, warn, info, debug, trace (got \"loud\")",
    );
}

#[test]
fn provider_defaults_and_keys() {
    let c = Config::from_value(json!({"providers": {
        "cloud": {"kind": "openai"},
        "mine": {"kind": "openai", "api_key_cmd": "pass show x", "url": "https://example.invalid/v1/"},
        "local": {"kind": "llamacpp"}
    }, "completion": {"provider": "local"}})).unwrap();
    assert_eq!(
        c.providers["cloud"].key,
        KeySource::Env("OPENAI_API_KEY".into())
    );
    assert_eq!(c.providers["cloud"].url, "https://api.openai.com/v1");
    assert_eq!(
        c.providers["mine"].key,
        KeySource::Cmd("pass show x".into())
    );
    assert_eq!(c.providers["mine"].url, "https://example.invalid/v1");
    assert_eq!(c.providers["local"].url, "http://127.0.0.1:8080");
    assert_eq!(c.providers["local"].key, KeySource::None);
}

#[test]
fn toml_file_merged_under_editor_table() {
    let dir = std::env::temp_dir().join(format!("zeke-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.toml");
    std::fs::write(&path, "[completion]\nmax_tokens = 32\nmax_lines = 3\n[providers.local]\nkind = \"ollama\"\nmodel = \"qwen\"\n").unwrap();
    let c = Config::load(
        Some(&path),
        Some(json!({"completion": {"max_lines": 5}, "keymaps": [], "ui": null})),
    )
    .unwrap();
    assert_eq!(c.completion.max_tokens, 32);
    assert_eq!(c.completion.max_lines, 5);
    assert_eq!(c.providers["local"].model.as_deref(), Some("qwen"));
    assert_eq!(c.source.as_deref(), Some(path.as_path()));
    std::fs::write(&path, "[completion\n").unwrap();
    let e = Config::load(Some(&path), None).unwrap_err();
    assert!(
        e.messages[0].starts_with(&format!("{}: TOML parse error at line 1", path.display())),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        Config::load(Some(&dir.join("missing.toml")), None)
            .unwrap()
            .source
            .is_none()
    );
}

#[test]
fn mcp_and_policy_sections() {
    use crate::core::policy::{Capability, Scope};
    let c = Config::from_value(json!({
        "mcp": {"roots": ["/srv/app"], "max_output_chars": 5000},
        "capabilities": {"fs.write": "prompt", "cmd.exec": "deny"},
        "scopes": {"repo:zeke": {"fs.write": "allow"}, "root:/nonexistent-zeke/x": {"git.write": "deny"}}
    }))
    .unwrap();
    assert_eq!(c.mcp.roots, vec![PathBuf::from("/srv/app")]);
    assert_eq!(c.mcp.max_output_chars, 5000);
    assert_eq!(c.mcp.tools_page_size, 100);
    assert_eq!(
        c.policy
            .decide(Capability::FsWrite, &Scope::new("/w/zeke"), false)
            .decision,
        Decision::Allow
    );
    assert_eq!(
        c.policy
            .decide(Capability::FsWrite, &Scope::new("/w/other"), false)
            .decision,
        Decision::Prompt
    );
    assert_eq!(
        c.policy
            .decide(
                Capability::GitWrite,
                &Scope::new("/nonexistent-zeke/x"),
                false
            )
            .decision,
        Decision::Deny
    );
    check_err(
        json!({"capabilities": {"fs.write": "ask", "fs.wirte": "allow"}, "scopes": {"zeke": {}}}),
        "capabilities.\"fs.write\": must be one of allow, prompt, deny (got \"ask\") | scopes: scope \"zeke\": must start with \"root:\" (an absolute path) or \"repo:\" (a directory name) | capabilities: unknown capability \"fs.wirte\" (known: fs.read, fs.write, git.read, git.write, cmd.exec, net.http, mcp.call)",
    );
}
