//! The provider set: which configured provider answers which job, built on first use (API keys are
//! resolved then, from an environment variable or a `*_cmd` command, and never logged), and the
//! local-server detection used when nothing is configured.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::OnceCell;

use crate::app::Job;
use crate::config::{Config, KeySource, ProviderConfig, ProviderKind};
use crate::core::llm::{ErrorKind, ProviderError};
use crate::providers::{self, Provider, Secret, http};
use crate::router::pricing;
use crate::router::{CandidateInfo, Pool};
use futures_util::future::BoxFuture;

/// Time allowed to an `api_key_cmd`.
const KEY_CMD_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed to learning a local server's model when its provider is first built.
const LEARN_TIMEOUT: Duration = Duration::from_millis(500);
/// Time allowed to each local-server probe during detection.
const DETECT_TIMEOUT: Duration = Duration::from_millis(800);

/// The outcome of looking for a local server.
#[derive(Debug, Clone)]
pub struct Detection {
    pub chosen: ProviderConfig,
    pub reachable: bool,
    pub detail: String,
}

struct Entry {
    cfg: ProviderConfig,
    built: OnceCell<Arc<dyn Provider>>,
}

/// A provider's name, kind, URL and model, for status and events.
#[derive(Debug, Clone)]
pub struct Selected {
    pub name: String,
    pub kind: ProviderKind,
    pub url: String,
    pub model: Option<String>,
}

/// One provider's health: reachability and key presence (never the key).
#[derive(Debug, Clone)]
pub struct ProviderHealth {
    pub selected: Selected,
    pub reachable: bool,
    pub detail: String,
    /// "present", "missing" or "not needed".
    pub key: &'static str,
}

/// The providers of one configuration.
pub struct ProviderSet {
    pub config: Config,
    pub detection: Option<Detection>,
    entries: BTreeMap<String, Entry>,
    client: reqwest::Client,
}

impl ProviderSet {
    pub fn new(config: Config, client: reqwest::Client, detection: Option<Detection>) -> Self {
        let mut entries: BTreeMap<String, Entry> = config
            .providers
            .iter()
            .map(|(n, c)| {
                (
                    n.clone(),
                    Entry {
                        cfg: c.clone(),
                        built: OnceCell::new(),
                    },
                )
            })
            .collect();
        if entries.is_empty() {
            let chosen = detection
                .as_ref()
                .map(|d| d.chosen.clone())
                .unwrap_or_else(|| local_default(ProviderKind::Llamacpp));
            entries.insert(
                chosen.name.clone(),
                Entry {
                    cfg: chosen,
                    built: OnceCell::new(),
                },
            );
        }
        ProviderSet {
            config,
            detection,
            entries,
            client,
        }
    }

    /// The name of the provider that answers `job`: the one the config names, else the only (or
    /// first, by name) configured provider.
    pub fn name_for(&self, job: Job) -> &str {
        let named = match job {
            Job::Explain => self.config.explain.provider.as_deref().or(self
                .config
                .completion
                .provider
                .as_deref()),
            Job::Fix | Job::Test | Job::Edit => self
                .config
                .fix
                .provider
                .as_deref()
                .or(self.config.explain.provider.as_deref())
                .or(self.config.completion.provider.as_deref()),
            _ => self.config.completion.provider.as_deref(),
        };
        named
            .filter(|n| self.entries.contains_key(*n))
            .unwrap_or_else(|| self.entries.keys().next().map(String::as_str).unwrap_or(""))
    }

    /// Name, kind, URL and (known) model of the provider for `job`.
    pub fn selected(&self, job: Job) -> Option<Selected> {
        let e = self.entries.get(self.name_for(job))?;
        let model = e
            .built
            .get()
            .and_then(|p| p.info().model_label())
            .or_else(|| e.cfg.model.clone())
            .map(|m| providers::label(&m));
        Some(Selected {
            name: e.cfg.name.clone(),
            kind: e.cfg.kind,
            url: e.cfg.url.clone(),
            model,
        })
    }

    /// The provider for `job`, built on first use. Fails with `ErrorKind::Auth` when a provider
    /// that needs a key has none (naming the variable or command to fix).
    pub async fn provider(&self, job: Job) -> Result<Arc<dyn Provider>, ProviderError> {
        let name = self.name_for(job).to_string();
        self.by_name(&name).await
    }

    /// The provider named `name`, built on first use (its key resolved then).
    pub async fn by_name(&self, name: &str) -> Result<Arc<dyn Provider>, ProviderError> {
        let entry = self.entries.get(name).ok_or_else(|| {
            ProviderError::new(ErrorKind::Invalid, format!("no provider named {name:?}"))
        })?;
        entry
            .built
            .get_or_try_init(|| async {
                let key = resolve_key(&entry.cfg).await?;
                if key.is_none() && entry.cfg.kind.needs_key() {
                    return Err(ProviderError::new(
                        ErrorKind::Auth,
                        format!(
                            "provider {:?} needs an API key: {}",
                            entry.cfg.name,
                            key_hint(&entry.cfg.key)
                        ),
                    ));
                }
                let p = providers::build(&entry.cfg, key, &self.client);
                if entry.cfg.local && p.info().model().is_none() {
                    // a local server names the model it loaded: learn it once (≤ 500 ms), so
                    // answers, the ledger and the status line name it
                    let _ = tokio::time::timeout(LEARN_TIMEOUT, p.probe().next())
                        .await
                        .ok()
                        .flatten()
                        .map(|r| {
                            if let Ok(m) = r {
                                p.info().learn_model(&m);
                            }
                        });
                }
                Ok(p)
            })
            .await
            .cloned()
    }

    /// Probes every provider (concurrently, 3 s each) and reports reachability and keys.
    pub async fn health(&self) -> Vec<ProviderHealth> {
        let checks = self.entries.values().map(|e| async move {
            let key = match &e.cfg.key {
                KeySource::None if !e.cfg.kind.needs_key() => "not needed",
                KeySource::None => "missing",
                KeySource::Env(var) => {
                    if std::env::var(var).is_ok_and(|v| !v.is_empty()) {
                        "present"
                    } else {
                        "missing"
                    }
                }
                KeySource::Cmd(_) => match resolve_key(&e.cfg).await {
                    Ok(Some(_)) => "present",
                    _ => "missing",
                },
            };
            let (reachable, detail) = match self.by_name(&e.cfg.name).await {
                Err(err) => (false, err.to_string()),
                Ok(p) => probe(p.as_ref()).await,
            };
            let model = self
                .entries
                .get(&e.cfg.name)
                .and_then(|e| e.built.get())
                .and_then(|p| p.info().model_label())
                .or(e.cfg.model.clone());
            ProviderHealth {
                selected: Selected {
                    name: e.cfg.name.clone(),
                    kind: e.cfg.kind,
                    url: e.cfg.url.clone(),
                    model,
                },
                reachable,
                detail,
                key,
            }
        });
        futures_util::future::join_all(checks).await
    }
}

impl ProviderSet {
    /// What the router knows of each provider before calling it: model (configured, learned, or
    /// the kind's default), locality, capabilities, context window and price (config overrides
    /// over the bundled table; local providers are free).
    pub fn candidate_infos(&self) -> Vec<CandidateInfo> {
        self.entries
            .values()
            .map(|e| {
                let built = e.built.get();
                let model = built
                    .and_then(|p| p.info().model())
                    .or_else(|| e.cfg.model.clone())
                    .or_else(|| e.cfg.kind.default_model().map(str::to_string));
                let known = model
                    .as_deref()
                    .and_then(|m| pricing::lookup(e.cfg.kind.as_str(), m));
                let o = &e.cfg.overrides;
                let table = known.map(|k| k.price);
                let any_override =
                    o.input_cost_per_mtok.is_some() || o.output_cost_per_mtok.is_some();
                let price = if e.cfg.local {
                    None
                } else if table.is_some() || any_override {
                    let t = table.unwrap_or(pricing::Price {
                        input_per_mtok: 0.0,
                        output_per_mtok: 0.0,
                        cached_input_per_mtok: None,
                        cache_write_per_mtok: None,
                    });
                    Some(pricing::Price {
                        input_per_mtok: o.input_cost_per_mtok.unwrap_or(t.input_per_mtok),
                        output_per_mtok: o.output_cost_per_mtok.unwrap_or(t.output_per_mtok),
                        cached_input_per_mtok: o
                            .cached_input_cost_per_mtok
                            .or(t.cached_input_per_mtok),
                        cache_write_per_mtok: o
                            .cache_write_cost_per_mtok
                            .or(t.cache_write_per_mtok),
                    })
                } else {
                    None
                };
                CandidateInfo {
                    name: e.cfg.name.clone(),
                    kind: e.cfg.kind,
                    local: e.cfg.local,
                    // the fake provider ignores tools (UI tests drive the agent with scripts)
                    tools: known.is_none_or(|k| k.tools),
                    native_fim: built.is_some_and(|p| p.native_fim())
                        || matches!(
                            e.cfg.kind,
                            ProviderKind::Mistral | ProviderKind::Deepseek | ProviderKind::Ollama
                        ),
                    context_window: o
                        .context_window
                        .or_else(|| built.and_then(|p| p.context_window()))
                        .or_else(|| known.and_then(|k| k.context_window)),
                    price,
                    budget: e.cfg.budget,
                    key_missing: match &e.cfg.key {
                        KeySource::Env(var)
                            if e.cfg.kind.needs_key()
                                && built.is_none()
                                && std::env::var(var).ok().is_none_or(|v| v.trim().is_empty()) =>
                        {
                            Some(key_hint(&e.cfg.key))
                        }
                        KeySource::None if e.cfg.kind.needs_key() => Some(key_hint(&e.cfg.key)),
                        _ => None,
                    },
                    model,
                }
            })
            .collect()
    }
}

impl Pool for ProviderSet {
    fn config(&self) -> &Config {
        &self.config
    }
    fn candidates(&self) -> Vec<CandidateInfo> {
        self.candidate_infos()
    }
    fn provider<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Arc<dyn Provider>, ProviderError>> {
        Box::pin(self.by_name(name))
    }
}

/// Probes a provider once (3 s): `(true, "model …")` or `(false, reason)`; learns its model.
pub async fn probe(p: &dyn Provider) -> (bool, String) {
    let fut = async { p.probe().next().await };
    match tokio::time::timeout(Duration::from_secs(3), fut).await {
        Err(_) => (false, format!("{} did not answer within 3 s", p.info().url)),
        Ok(None) => (false, "no answer".into()),
        Ok(Some(Err(e))) => (false, e.to_string()),
        Ok(Some(Ok(model))) => {
            p.info().learn_model(&model);
            let m = p
                .info()
                .model_label()
                .unwrap_or_else(|| "server default".into());
            (
                true,
                format!(
                    "{} answers at {} (model {m})",
                    p.info().kind.as_str(),
                    p.info().url
                ),
            )
        }
    }
}

fn key_hint(key: &KeySource) -> String {
    match key {
        KeySource::None => "set api_key_env or api_key_cmd".into(),
        KeySource::Env(var) => format!("set the environment variable {var}"),
        KeySource::Cmd(cmd) => format!("the command `{cmd}` printed no key"),
    }
}

async fn resolve_key(cfg: &ProviderConfig) -> Result<Option<Secret>, ProviderError> {
    match &cfg.key {
        KeySource::None => Ok(None),
        KeySource::Env(var) => Ok(std::env::var(var)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| Secret::new(v.trim().to_string()))),
        KeySource::Cmd(line) => {
            let out = crate::sys::run_shell(line, KEY_CMD_TIMEOUT)
                .await
                .map_err(|e| {
                    ProviderError::new(
                        ErrorKind::Auth,
                        format!("providers.{}.api_key_cmd: {e}", cfg.name),
                    )
                })?;
            if out.status != Some(0) {
                // Never its output: a key command that fails may still have printed the key.
                let status = out
                    .status
                    .map(|c| format!("status {c}"))
                    .unwrap_or_else(|| "a signal".into());
                return Err(ProviderError::new(
                    ErrorKind::Auth,
                    format!(
                        "providers.{}.api_key_cmd failed (exited with {status}); its output is not \
                         shown because it may hold the key — run the command yourself to see why",
                        cfg.name
                    ),
                ));
            }
            Ok(out
                .stdout
                .lines()
                .next()
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(|k| Secret::new(k.to_string())))
        }
    }
}

fn local_default(kind: ProviderKind) -> ProviderConfig {
    ProviderConfig {
        name: kind.as_str().to_string(),
        kind,
        url: kind.default_url().unwrap_or_default().to_string(),
        model: None,
        key: KeySource::None,
        reply: None,
        delay: Duration::ZERO,
        api_version: None,
        keep_alive: None,
        local: true,
        overrides: Default::default(),
        budget: None,
    }
}

/// Looks for llama-server (`GET 127.0.0.1:8080/health`) and Ollama (`GET 127.0.0.1:11434/api/tags`)
/// at once and picks the first that answers, preferring llama-server.
pub async fn detect_local(client: &reqwest::Client) -> Detection {
    let llama = local_default(ProviderKind::Llamacpp);
    let ollama = local_default(ProviderKind::Ollama);
    let check = |url: String| {
        let client = client.clone();
        async move {
            http::get(&client, &url, http::headers(&[], None), DETECT_TIMEOUT)
                .await
                .is_ok()
        }
    };
    let (l, o) = tokio::join!(
        check(format!("{}/health", llama.url)),
        check(format!("{}/api/tags", ollama.url))
    );
    match (l, o) {
        (true, _) => Detection {
            detail: format!("found llama-server at {}", llama.url),
            chosen: llama,
            reachable: true,
        },
        (false, true) => Detection {
            detail: format!("found Ollama at {}", ollama.url),
            chosen: ollama,
            reachable: true,
        },
        (false, false) => Detection {
            detail: format!(
                "no local server found (tried llama-server at {} and Ollama at {}); configure [providers]",
                llama.url, ollama.url
            ),
            chosen: llama,
            reachable: false,
        },
    }
}
