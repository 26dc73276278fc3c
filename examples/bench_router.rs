//! `make bench` (router part): what the router adds, measured in one run.
//!
//! 1. Pure router overhead: a provider whose stream yields 64 text events at once (no I/O),
//!    consumed directly and through `Router::chat` (plan, task, channel, dedupe, ledger row):
//!    added time to first token and per chunk, p50/p99 over many paired samples.
//! 2. Against llama-server (`ZEKE_TEST_LLAMA_URL`): time to first token of a direct streamed HTTP
//!    call (reqwest + SSE) and of the router with a llamacpp provider, alternating.
//! 3. Swap pause (`ZEKE_TEST_FAULT_URL`): a stream cut after 3 chunks, llama-server takes over:
//!    the gap the user sees between the last text of the failed answer and the first new text,
//!    beside llama-server's own time to first token measured just before.
//!
//! Prints `key=value` lines for `scripts/bench.sh`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use serde_json::json;
use zeke::config::{Config, ProviderKind};
use zeke::core::llm::{ChatRequest, Event, FimRequest, Intent, Message, ProviderError, Usage};
use zeke::providers::{EventStream, Provider, ProviderInfo};
use zeke::router::{CandidateInfo, Pool, RouteRequest, Routed, Router, Surface};

const CHUNKS: usize = 64;

struct Instant64 {
    info: ProviderInfo,
}

impl Provider for Instant64 {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }
    fn chat(&self, _req: ChatRequest) -> EventStream {
        let mut evs: Vec<Result<Event, ProviderError>> = (0..CHUNKS)
            .map(|i| Ok(Event::Text(format!("t{i} "))))
            .collect();
        evs.push(Ok(Event::Usage(Usage::new(10, CHUNKS as u32))));
        futures_util::stream::iter(evs).boxed()
    }
    fn fim(&self, _req: FimRequest) -> EventStream {
        futures_util::stream::empty().boxed()
    }
    fn probe(&self) -> futures_util::stream::BoxStream<'static, Result<String, ProviderError>> {
        futures_util::stream::empty().boxed()
    }
}

struct OnePool {
    config: Config,
    provider: Arc<dyn Provider>,
}

impl Pool for OnePool {
    fn config(&self) -> &Config {
        &self.config
    }
    fn candidates(&self) -> Vec<CandidateInfo> {
        vec![CandidateInfo {
            name: "instant".into(),
            kind: ProviderKind::Llamacpp,
            model: Some("instant".into()),
            local: true,
            tools: true,
            native_fim: false,
            context_window: Some(8192),
            price: None,
            budget: None,
            key_missing: None,
        }]
    }
    fn provider<'a>(
        &'a self,
        _name: &'a str,
    ) -> BoxFuture<'a, Result<Arc<dyn Provider>, ProviderError>> {
        let p = self.provider.clone();
        Box::pin(async move { Ok(p) })
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn req() -> ChatRequest {
    ChatRequest::new(
        vec![
            Message::system("Answer in one short line."),
            Message::user("Name a colour."),
        ],
        16,
        0.0,
    )
}

async fn pure_overhead(ledger: Option<Arc<zeke::ledger::Ledger>>) {
    let config =
        Config::from_value(json!({"providers": {"instant": {"kind": "llamacpp"}}})).unwrap();
    let provider: Arc<dyn Provider> = Arc::new(Instant64 {
        info: ProviderInfo::new(&config.providers["instant"]),
    });
    let pool: Arc<dyn Pool> = Arc::new(OnePool {
        config,
        provider: provider.clone(),
    });
    let router = Router::new(ledger);
    let (mut ttft, mut chunk) = (Vec::new(), Vec::new());
    for i in 0..2_200 {
        let t0 = Instant::now();
        let mut s = provider.chat(req());
        let mut first = None;
        while let Some(ev) = s.next().await {
            if first.is_none() && matches!(ev, Ok(Event::Text(_))) {
                first = Some(t0.elapsed());
            }
        }
        let (d_first, d_total) = (first.unwrap(), t0.elapsed());
        let t0 = Instant::now();
        let mut s = router.chat(
            pool.clone(),
            RouteRequest::new(Intent::Chat, Surface::Cli),
            req(),
        );
        let mut first = None;
        while let Some(item) = s.next().await {
            match item {
                Ok(Routed::Text(_)) if first.is_none() => first = Some(t0.elapsed()),
                Ok(Routed::Done(_)) => break,
                _ => {}
            }
        }
        let (r_first, r_total) = (first.unwrap(), t0.elapsed());
        if i >= 200 {
            // after warm-up
            ttft.push((r_first.as_secs_f64() - d_first.as_secs_f64()) * 1e3);
            chunk.push(
                ((r_total.as_secs_f64() - r_first.as_secs_f64())
                    - (d_total.as_secs_f64() - d_first.as_secs_f64()))
                    * 1e6
                    / (CHUNKS - 1) as f64,
            );
        }
    }
    println!("router_added_ttft_p50_ms={:.4}", pct(&mut ttft, 0.5));
    println!("router_added_ttft_p99_ms={:.4}", pct(&mut ttft, 0.99));
    println!("router_added_per_chunk_p50_us={:.3}", pct(&mut chunk, 0.5));
    println!("router_added_per_chunk_p99_us={:.3}", pct(&mut chunk, 0.99));
}

/// Time to first content of a direct streamed chat completion (reqwest + eventsource-stream).
async fn direct_ttft(client: &reqwest::Client, url: &str) -> Duration {
    direct_ttft_of(client, url, None).await
}

/// The same, for the conversation plus a trailing assistant message to continue (what a
/// fallback that continues the cut answer is sent).
async fn direct_ttft_of(client: &reqwest::Client, url: &str, prefill: Option<&str>) -> Duration {
    use eventsource_stream::Eventsource;
    let t0 = Instant::now();
    let resp = client
        .post(format!("{url}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body({
            let mut messages = vec![
                json!({"role": "system", "content": "Answer in one short line."}),
                json!({"role": "user", "content": "Name a colour."}),
            ];
            if let Some(p) = prefill {
                messages.push(json!({"role": "assistant", "content": p}));
            }
            json!({"messages": messages, "max_tokens": 16, "temperature": 0.0, "stream": true})
                .to_string()
        })
        .send()
        .await
        .unwrap();
    let mut s = resp.bytes_stream().eventsource();
    let mut first = None;
    while let Some(ev) = s.next().await {
        let ev = ev.unwrap();
        if first.is_none() && ev.data.contains("\"content\":\"") {
            first = Some(t0.elapsed());
        }
    }
    first.unwrap_or_else(|| t0.elapsed())
}

async fn against_llama(url: &str, fault: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let mut table = json!({
        "providers": {"llama": {"kind": "llamacpp", "url": url}},
        "router": {"ledger": dir.path().join("u.sqlite3").display().to_string()},
    });
    if let Some(f) = fault {
        table["providers"]["cut"] = json!({"kind": "llamacpp", "url": format!("{f}/cutafter/3")});
        table["routes"] = json!({"chat": ["cut", "llama"], "ask": ["llama"]});
        table["router"]["cooldown_ms"] = json!(0);
    }
    let config = Config::from_value(table).unwrap();
    let app = zeke::app::App::new(config.clone());
    let set = app.configure(config).await;
    let client = zeke::providers::http::client();
    let (mut direct, mut routed) = (Vec::new(), Vec::new());
    for i in 0..24 {
        let d = direct_ttft(&client, url).await;
        let pool: Arc<dyn Pool> = set.clone();
        let t0 = Instant::now();
        let mut s = app
            .router
            .chat(pool, RouteRequest::new(Intent::Ask, Surface::Cli), req());
        let mut first = None;
        while let Some(item) = s.next().await {
            match item {
                Ok(Routed::Text(_)) if first.is_none() => first = Some(t0.elapsed()),
                Ok(Routed::Done(_)) | Err(_) => break,
                _ => {}
            }
        }
        if i >= 4 {
            direct.push(d.as_secs_f64() * 1e3);
            routed.push(first.unwrap_or_else(|| t0.elapsed()).as_secs_f64() * 1e3);
        }
    }
    println!("llama_direct_ttft_p50_ms={:.3}", pct(&mut direct, 0.5));
    println!("llama_router_ttft_p50_ms={:.3}", pct(&mut routed, 0.5));
    let Some(_) = fault else { return };
    let (mut pause, mut own) = (Vec::new(), Vec::new());
    for i in 0..14 {
        // the fallback is asked to continue "def add(a," (the 3 chunks shown before the cut)
        let d = direct_ttft_of(&client, url, Some("def add(a,")).await;
        let pool: Arc<dyn Pool> = set.clone();
        let mut s = app
            .router
            .chat(pool, RouteRequest::new(Intent::Chat, Surface::Cli), req());
        let (mut last_text, mut failed_at, mut gap) = (None, None, None);
        while let Some(item) = s.next().await {
            match item {
                Ok(Routed::Text(_)) => {
                    if failed_at.is_some() && gap.is_none() {
                        gap = last_text.map(|t: Instant| t.elapsed());
                    }
                    last_text = Some(Instant::now());
                }
                Ok(Routed::Fallback { .. }) => failed_at = Some(Instant::now()),
                Ok(Routed::Restart) => {}
                Ok(Routed::Done(_)) | Err(_) => break,
                _ => {}
            }
        }
        if let (Some(g), true) = (gap, i >= 2) {
            pause.push(g.as_secs_f64() * 1e3);
            own.push(d.as_secs_f64() * 1e3);
        }
    }
    if !pause.is_empty() {
        println!("swap_pause_p50_ms={:.3}", pct(&mut pause, 0.5));
        println!("swap_fallback_own_ttft_p50_ms={:.3}", pct(&mut own, 0.5));
    }
}

/// `bench_router count direct|router N`: only N requests of one kind, for
/// `valgrind --tool=callgrind` (instructions are repeatable where wall times are not): the
/// difference of the two runs / N is what the router executes per request.
async fn count(kind: &str, n: usize) {
    let config =
        Config::from_value(json!({"providers": {"instant": {"kind": "llamacpp"}}})).unwrap();
    let provider: Arc<dyn Provider> = Arc::new(Instant64 {
        info: ProviderInfo::new(&config.providers["instant"]),
    });
    let pool: Arc<dyn Pool> = Arc::new(OnePool {
        config,
        provider: provider.clone(),
    });
    let router = Router::new(None);
    for _ in 0..n {
        if kind == "direct" {
            let mut s = provider.chat(req());
            while s.next().await.is_some() {}
        } else {
            let mut s = router.chat(
                pool.clone(),
                RouteRequest::new(Intent::Chat, Surface::Cli),
                req(),
            );
            while let Some(item) = s.next().await {
                if matches!(item, Ok(Routed::Done(_))) {
                    break;
                }
            }
        }
    }
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("count") {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let n = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(100);
        rt.block_on(count(
            args.get(2).map(String::as_str).unwrap_or("router"),
            n,
        ));
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let ledger = zeke::ledger::Ledger::open(&dir.path().join("u.sqlite3"))
            .ok()
            .map(Arc::new);
        pure_overhead(ledger).await;
        if let Ok(url) = std::env::var("ZEKE_TEST_LLAMA_URL") {
            let fault = std::env::var("ZEKE_TEST_FAULT_URL").ok();
            against_llama(&url, fault.as_deref()).await;
        }
    });
}
