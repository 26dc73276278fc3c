//! The router end to end, in-process, against the fault-injecting server on 127.0.0.1: every
//! fault falls back with the whole conversation and the user sees the answer once; cooldowns,
//! retry-after, exhausted quotas, hedging (the loser's connection is closed), hard and soft
//! budgets, stickiness and the usage ledger.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use zeke::app::App;
use zeke::config::Config;
use zeke::core::llm::{ChatRequest, ErrorKind, FimRequest, Intent, Message, ToolCall};
use zeke::router::{Failure, Pool, RouteRequest, Routed, Summary, Surface};

use crate::common::{fault_url, rt};

const REPLY: &str = "def add(a, b):\n    return a + b";

static TAGS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A fresh tag: requests under it are counted and recorded apart from other tests'.
fn tag(name: &str) -> String {
    let n = TAGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{name}-{}-{n}", std::process::id())
}

fn url(tag: &str, mode: &str) -> String {
    format!("{}/t/{tag}/{mode}", fault_url())
}

async fn tag_stats(tag: &str) -> Value {
    let r = reqwest::get(format!("{}/t/{tag}/stats", fault_url()))
        .await
        .unwrap();
    serde_json::from_slice(&r.bytes().await.unwrap()).unwrap()
}

struct World {
    app: Arc<App>,
    _dir: tempfile::TempDir,
    ledger: std::path::PathBuf,
}

/// An app over `table` (the config's JSON form) with its own ledger.
async fn world(mut table: Value) -> World {
    // SAFETY: every test sets the same value; nothing reads it concurrently in a way that could
    // observe a torn write (set_var is process-global, the value never changes)
    unsafe { std::env::set_var("ZEKE_TEST_ROUTER_KEY", "sk-zeke-test-not-a-real-key") };
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("usage.sqlite3");
    table["router"]["ledger"] = json!(ledger.display().to_string());
    let config = Config::from_value(table).unwrap();
    let app = App::new(config.clone());
    app.configure(config).await;
    World {
        app,
        _dir: dir,
        ledger,
    }
}

fn conversation() -> ChatRequest {
    let call = ToolCall {
        id: "call_1".into(),
        name: "read_text_file".into(),
        arguments: r#"{"path":"src/a.py"}"#.into(),
    };
    ChatRequest::new(
        vec![
            Message::system("You are Zeke."),
            Message::user("What does src/a.py do?"),
            Message::assistant_calls("Let me read it.", vec![call]),
            Message::tool_result("call_1", "def add(a, b): ...", false),
            Message::user("Write add."),
        ],
        64,
        0.0,
    )
}

/// What a surface shows: text with restarts applied, plus every item.
struct Seen {
    text: String,
    items: Vec<Routed>,
    done: Option<Summary>,
    failure: Option<Failure>,
}

async fn run_items(mut s: zeke::router::RoutedStream) -> Seen {
    let mut seen = Seen {
        text: String::new(),
        items: vec![],
        done: None,
        failure: None,
    };
    while let Some(item) = s.next().await {
        match &item {
            Ok(Routed::Text(t)) => seen.text.push_str(t),
            Ok(Routed::Restart) => seen.text.clear(),
            Ok(Routed::Done(d)) => seen.done = Some((**d).clone()),
            Ok(_) => {}
            Err(f) => seen.failure = Some(f.clone()),
        }
        if let Ok(i) = item {
            seen.items.push(i);
        }
    }
    seen
}

fn chat(w: &World, intent: Intent, req: ChatRequest) -> zeke::router::RoutedStream {
    let pool: Arc<dyn Pool> = w.app.setup();
    w.app
        .router
        .chat(pool, RouteRequest::new(intent, Surface::Cli), req)
}

fn two(primary: &str, primary_kind: &str, secondary: &str) -> Value {
    json!({
        "providers": {
            "primary": {"kind": primary_kind, "url": primary, "api_key_env": "ZEKE_TEST_ROUTER_KEY"},
            "secondary": {"kind": "llamacpp", "url": secondary},
        },
        "routes": {"chat": ["primary", "secondary"]},
        "router": {"first_token_timeout_ms": 400, "hedge": false},
    })
}

#[test]
fn every_fault_falls_back_with_the_whole_conversation_and_the_answer_shown_once() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        drop(l);
        format!("http://127.0.0.1:{p}")
    };
    let cases: Vec<(&str, String, &str, ErrorKind)> = vec![
        (
            "429",
            url(&tag("p"), "status/429"),
            "openai",
            ErrorKind::RateLimited,
        ),
        (
            "500",
            url(&tag("p"), "status/500"),
            "openai",
            ErrorKind::Unavailable,
        ),
        (
            "529",
            url(&tag("p"), "status/529"),
            "openai",
            ErrorKind::Overloaded,
        ),
        ("refused", closed, "openai", ErrorKind::Unavailable),
        (
            "no first token",
            url(&tag("p"), "hang"),
            "openai",
            ErrorKind::Timeout,
        ),
        (
            "cut mid-answer",
            url(&tag("p"), "cutafter/3"),
            "openai",
            ErrorKind::Malformed,
        ),
        (
            "malformed SSE",
            url(&tag("p"), "malformed"),
            "openai",
            ErrorKind::Malformed,
        ),
        (
            "anthropic error event after 200",
            url(&tag("p"), "replay/anthropic_error_after_200.sse"),
            "anthropic",
            ErrorKind::Overloaded,
        ),
    ];
    rt().block_on(async {
        for (what, primary, kind, want) in cases {
            let t2 = tag("s");
            let w = world(two(&primary, kind, &url(&t2, "ok"))).await;
            let started = Instant::now();
            let seen = run_items(chat(&w, Intent::Chat, conversation())).await;
            let done = seen
                .done
                .as_ref()
                .unwrap_or_else(|| panic!("{what}: no answer: {:?}", seen.failure));
            assert_eq!(done.provider.as_deref(), Some("secondary"), "{what}");
            let kinds: Vec<Option<ErrorKind>> = done
                .attempts
                .iter()
                .map(|a| a.error.as_ref().map(|e| e.kind))
                .collect();
            assert_eq!(kinds, vec![Some(want), None], "{what}: {:?}", done.attempts);
            assert!(
                seen.items
                    .iter()
                    .any(|i| matches!(i, Routed::Fallback { from, .. } if from == "primary")),
                "{what}: the fallback is announced"
            );
            // the next model got the whole conversation: system, turns, the tool call and its result
            let st = tag_stats(&t2).await;
            let body = &st["requests"][0]["body"];
            let msgs = body["messages"].as_array().unwrap();
            let roles: Vec<&str> = msgs.iter().map(|m| m["role"].as_str().unwrap()).collect();
            let shown_before: String = seen
                .items
                .iter()
                .take_while(|i| !matches!(i, Routed::Fallback { .. }))
                .filter_map(|i| match i {
                    Routed::Text(t) => Some(t.as_str()),
                    _ => None,
                })
                .collect();
            // the fallback (llama-server's API on the fault server) repeats the reply from its
            // start: when that echoes what was shown, only the rest is sent; otherwise (prefilled)
            // it is taken as the continuation
            let want = if REPLY.starts_with(&shown_before) {
                REPLY.to_string()
            } else {
                format!("{shown_before}{REPLY}")
            };
            assert_eq!(seen.text, want, "{what}: nothing is shown twice");
            if shown_before.is_empty() {
                assert_eq!(
                    roles,
                    ["system", "user", "assistant", "tool", "user"],
                    "{what}"
                );
            } else {
                // llama-server continues a trailing assistant message: it gets what was shown
                assert_eq!(
                    roles,
                    ["system", "user", "assistant", "tool", "user", "assistant"],
                    "{what}"
                );
                assert_eq!(msgs[5]["content"], shown_before.trim_end(), "{what}");
            }
            assert_eq!(msgs[2]["tool_calls"][0]["id"], "call_1", "{what}");
            assert_eq!(msgs[3]["tool_call_id"], "call_1", "{what}");
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{what}: a fallback does not wait out a retry-after of 7 s"
            );
        }
    });
}

#[test]
fn text_already_shown_is_not_shown_again_and_a_different_answer_restarts() {
    rt().block_on(async {
        // the fallback repeats what was shown, then continues: only the continuation is sent
        let w = world(two(
            &url(&tag("p"), "cutafter/4"),
            "openai",
            &url(&tag("s"), "ok"),
        ))
        .await;
        let seen = run_items(chat(&w, Intent::Chat, conversation())).await;
        let texts: Vec<&str> = seen
            .items
            .iter()
            .filter_map(|i| match i {
                Routed::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(texts.concat(), REPLY, "no text is sent twice");
        assert!(!seen.items.contains(&Routed::Restart));
        // a fallback that cannot continue an answer and says something else: the surface is
        // told to replace what it showed
        let w = world(json!({
            "providers": {
                "primary": {"kind": "llamacpp", "url": url(&tag("p"), "cutafter/2")},
                "secondary": {"kind": "openai", "url": url(&tag("s"), "replay/llamacpp_chat_stream.sse"),
                              "api_key_env": "ZEKE_TEST_ROUTER_KEY"},
            },
            "routes": {"chat": ["primary", "secondary"]},
        }))
        .await;
        let seen = run_items(chat(&w, Intent::Chat, conversation())).await;
        assert!(seen.done.is_some(), "{:?}", seen.failure);
        let restart = seen.items.iter().position(|i| *i == Routed::Restart);
        let first_text = seen
            .items
            .iter()
            .position(|i| matches!(i, Routed::Text(_)));
        let (r, t) = (restart.expect("a restart"), first_text.unwrap());
        assert!(t < r, "text was shown before the restart");
        assert!(!seen.text.starts_with("def"), "the shown text is the new answer: {:?}", seen.text);
    });
}

#[test]
fn a_provider_that_continues_picks_up_the_cut_answer_where_it_stopped() {
    rt().block_on(async {
        let ts = tag("s");
        let w = world(json!({
            "providers": {
                "primary": {"kind": "llamacpp", "url": url(&tag("p"), "cutafter/2")},
                "claude": {"kind": "anthropic", "url": url(&ts, "replay/anthropic_text.sse"),
                           "api_key_env": "ZEKE_TEST_ROUTER_KEY"},
            },
            "routes": {"chat": ["primary", "claude"]},
        }))
        .await;
        let seen = run_items(chat(&w, Intent::Chat, conversation())).await;
        assert!(seen.done.is_some(), "{:?}", seen.failure);
        assert!(
            !seen.items.contains(&Routed::Restart),
            "a continuation, not a restart"
        );
        assert_eq!(
            seen.text,
            "def add`add` returns the sum of its two arguments."
        );
        // Anthropic got the shown text as the assistant turn to continue (prefill)
        let st = tag_stats(&ts).await;
        let msgs = st["requests"][0]["body"]["messages"]
            .as_array()
            .unwrap()
            .clone();
        let last = msgs.last().unwrap();
        assert_eq!(last["role"], "assistant");
        assert_eq!(last["content"][0]["text"], "def add");
    });
}

#[test]
fn a_failing_provider_cools_down_and_is_skipped() {
    rt().block_on(async {
        let tp = tag("p");
        let w = world(two(
            &url(&tp, "status/500"),
            "openai",
            &url(&tag("s"), "ok"),
        ))
        .await;
        let first = run_items(chat(&w, Intent::Chat, conversation())).await;
        assert_eq!(first.done.unwrap().attempts.len(), 2);
        let second = run_items(chat(&w, Intent::Chat, conversation())).await;
        let d = second.done.unwrap();
        assert_eq!(d.attempts.len(), 1, "the cooling provider is not tried");
        assert_eq!(d.provider.as_deref(), Some("secondary"));
        assert_eq!(tag_stats(&tp).await["started"], 1);
        let health = w.app.router.health();
        assert!(health["primary"].cooling(Instant::now()).is_some());
    });
}

#[test]
fn retry_after_is_honoured_on_the_last_candidate_and_quota_is_never_retried() {
    rt().block_on(async {
        let t = tag("once");
        let w = world(json!({"providers": {"only": {"kind": "llamacpp", "url": url(&t, "once/429")}}}))
            .await;
        let started = Instant::now();
        let seen = run_items(chat(&w, Intent::Ask, conversation())).await;
        let d = seen.done.expect("the retry answers");
        assert_eq!(seen.text, REPLY);
        assert!(started.elapsed() >= Duration::from_millis(900), "waited for retry-after: 1");
        assert_eq!(d.attempts.len(), 2);
        assert_eq!(
            d.attempts[0].error.as_ref().map(|e| e.kind),
            Some(ErrorKind::RateLimited)
        );
        assert_eq!(tag_stats(&t).await["started"], 2);

        let q = tag("quota");
        let w = world(json!({"providers": {"only": {"kind": "openai", "url": url(&q, "quota"), "api_key_env": "ZEKE_TEST_ROUTER_KEY"}}}))
            .await;
        let seen = run_items(chat(&w, Intent::Ask, conversation())).await;
        let f = seen.failure.expect("an exhausted quota fails");
        assert_eq!(f.error.kind, ErrorKind::RateLimited);
        assert_eq!(tag_stats(&q).await["started"], 1, "never retried");
        // and the next request does not even try it
        let seen = run_items(chat(&w, Intent::Ask, conversation())).await;
        assert!(
            seen.failure.unwrap().error.message.contains("quota exhausted"),
            "says why"
        );
        assert_eq!(tag_stats(&q).await["started"], 1);
    });
}

#[test]
fn hedging_starts_a_backup_after_the_delay_and_closes_the_losers_connection() {
    rt().block_on(async {
        let (ta, tb) = (tag("slow"), tag("fast"));
        let w = world(json!({
            "providers": {
                "a": {"kind": "llamacpp", "url": url(&ta, "delay/1500/ok")},
                "b": {"kind": "llamacpp", "url": url(&tb, "ok")},
            },
            "routes": {"completion": ["a", "b"]},
            "router": {"hedge_after_ms": 100},
        }))
        .await;
        let pool: Arc<dyn Pool> = w.app.setup();
        let req = FimRequest {
            prefix: "def add".into(),
            suffix: String::new(),
            language: "python".into(),
            path: "a.py".into(),
            max_tokens: 16,
            stop: vec![],
        };
        let started = Instant::now();
        let seen = run_items(w.app.router.fim(
            pool,
            RouteRequest::new(Intent::Complete, Surface::Nvim),
            req,
        ))
        .await;
        let d = seen.done.expect("the hedge answers");
        assert!(d.hedged);
        assert_eq!(d.provider.as_deref(), Some("b"));
        assert!(
            started.elapsed() < Duration::from_millis(1400),
            "did not wait for a"
        );
        assert!(
            d.attempts
                .iter()
                .any(|a| a.provider == "a" && a.hedge_loser)
        );
        // the loser's server sees its connection closed when it starts writing
        let deadline = Instant::now() + Duration::from_secs(6);
        loop {
            let s = tag_stats(&ta).await;
            if s["aborted"].as_u64() == Some(1) {
                assert_eq!(s["completed"], 0);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the loser was never cancelled: {s}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(tag_stats(&tb).await["completed"], 1);
    });
}

#[test]
fn a_hard_budget_stops_cloud_calls_and_a_local_model_answers() {
    rt().block_on(async {
        let (tc, tl) = (tag("cloud"), tag("local"));
        let cfg = |mode: &str| {
            json!({
                "providers": {
                    "cloud": {"kind": "openai", "url": url(&tc, "ok"), "local": false, "model": "m",
                              "api_key_env": "ZEKE_TEST_ROUTER_KEY",
                              "input_cost_per_mtok": 1000.0, "output_cost_per_mtok": 1000.0},
                    "local": {"kind": "llamacpp", "url": url(&tl, "ok")},
                },
                "routes": {"chat": ["cloud", "local"]},
                "budget": {"daily_usd": 0.01, "mode": mode},
            })
        };
        let w = world(cfg("hard")).await;
        let seen = run_items(chat(&w, Intent::Chat, conversation())).await;
        let d = seen.done.expect("the local model answers");
        assert_eq!(d.provider.as_deref(), Some("local"));
        assert!(
            seen.items.iter().any(|i| matches!(i, Routed::Notice(m) if m.contains("hard budget") && m.contains("budget.daily_usd"))),
            "says so: {:?}",
            seen.items
        );
        assert_eq!(tag_stats(&tc).await["started"], 0, "the cloud server received nothing");

        // soft: the call goes out, the warning comes once
        let w = world(cfg("soft")).await;
        let a = run_items(chat(&w, Intent::Chat, conversation())).await;
        let b = run_items(chat(&w, Intent::Chat, conversation())).await;
        assert_eq!(a.done.as_ref().unwrap().provider.as_deref(), Some("cloud"));
        let warnings = |s: &Seen| {
            s.items
                .iter()
                .filter(|i| matches!(i, Routed::Notice(m) if m.contains("soft budget")))
                .count()
        };
        assert_eq!(warnings(&a) + warnings(&b), 1, "warned once");
        assert_eq!(tag_stats(&tc).await["started"], 2);
    });
}

#[test]
fn a_conversation_sticks_to_the_provider_that_answered_it() {
    rt().block_on(async {
        let (ta, tb) = (tag("a"), tag("b"));
        let w = world(json!({
            "providers": {
                "a": {"kind": "llamacpp", "url": url(&ta, "once/500")},
                "b": {"kind": "llamacpp", "url": url(&tb, "ok")},
            },
            "routes": {"chat": ["a", "b"]},
            "router": {"cooldown_ms": 0},
        }))
        .await;
        let pool: Arc<dyn Pool> = w.app.setup();
        let rr = RouteRequest {
            conversation: Some("c1".into()),
            ..RouteRequest::new(Intent::Chat, Surface::Nvim)
        };
        let first = run_items(w.app.router.chat(pool.clone(), rr.clone(), conversation())).await;
        assert_eq!(first.done.unwrap().provider.as_deref(), Some("b"));
        // a is healthy again (no cooldown), but the conversation stays on b
        let second = run_items(w.app.router.chat(pool.clone(), rr.clone(), conversation())).await;
        assert_eq!(second.done.unwrap().provider.as_deref(), Some("b"));
        // another conversation starts on a, as routed
        let other = RouteRequest::new(Intent::Chat, Surface::Nvim);
        let third = run_items(w.app.router.chat(pool.clone(), other, conversation())).await;
        assert_eq!(third.done.unwrap().provider.as_deref(), Some("a"));
        // the user pins a provider: it goes first, for this conversation too
        w.app.router.pin(Some("a".into()));
        let fourth = run_items(w.app.router.chat(pool, rr, conversation())).await;
        assert_eq!(fourth.done.unwrap().provider.as_deref(), Some("a"));
    });
}

#[test]
fn every_request_is_one_ledger_row() {
    rt().block_on(async {
        let w = world(two(
            &url(&tag("p"), "status/500"),
            "openai",
            &url(&tag("s"), "ok"),
        ))
        .await;
        let _ = run_items(chat(&w, Intent::Chat, conversation())).await;
        // dropped after the first text: still recorded
        let mut s = chat(&w, Intent::Explain, conversation());
        while let Some(i) = s.next().await {
            if matches!(i, Ok(Routed::Text(_))) {
                break;
            }
        }
        drop(s);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let ledger = w.app.router.ledger().unwrap();
        ledger.flush();
        let sum = zeke::ledger::Ledger::open(&w.ledger)
            .unwrap()
            .summary(10)
            .unwrap();
        assert_eq!(sum.last.len(), 2, "{:?}", sum.last);
        let chat_row = sum.last.iter().find(|r| r.intent == "chat").unwrap();
        assert_eq!(
            (
                chat_row.provider.as_str(),
                chat_row.outcome.as_str(),
                chat_row.fallbacks
            ),
            ("secondary", "ok", 1)
        );
        assert_eq!(chat_row.surface, "cli");
        assert!(chat_row.ttft_ms.is_some());
        assert_eq!(chat_row.input_tokens, 5, "usage as the server reported it");
    });
}

#[test]
fn anthropic_cache_reads_are_priced_as_cache_reads_and_recorded() {
    rt().block_on(async {
        let w = world(json!({
            "providers": {
                "claude": {"kind": "anthropic", "model": "claude-sonnet-4-5", "local": false,
                           "url": url(&tag("a"), "replay/anthropic_tool_use.sse"),
                           "api_key_env": "ZEKE_TEST_ROUTER_KEY"},
            },
        }))
        .await;
        let seen = run_items(chat(&w, Intent::Chat, conversation())).await;
        let d = seen.done.expect("answered");
        assert!(
            seen.items.iter().any(|i| matches!(i, Routed::ToolCall(_))),
            "the tool call is passed on"
        );
        assert_eq!(
            (
                d.usage.input_tokens,
                d.usage.cached_input_tokens,
                d.usage.output_tokens
            ),
            (14 + 2310, 2310, 87)
        );
        // claude-sonnet-4-5 in the bundled table: $3 in, $0.30 cache read, $15 out per Mtok
        // 14 × 3 + 2310 × 0.30 + 87 × 15 = 42 + 693 + 1305 = 2040 → $0.002040
        assert!((d.cost_usd - 0.002040).abs() < 1e-9, "{}", d.cost_usd);
        assert!(!d.cost_estimated);
        w.app.router.ledger().unwrap().flush();
        let rows = zeke::ledger::Ledger::open(&w.ledger)
            .unwrap()
            .summary(5)
            .unwrap();
        assert!((rows.last[0].cost_usd - 0.002040).abs() < 1e-9);
        assert_eq!(rows.last[0].cached_input_tokens, 2310);
    });
}
