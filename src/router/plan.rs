//! Choosing the candidates for one request (pure): which providers may answer, in which order,
//! and why the others may not.
//!
//! Candidates are the intent's `[routes]` entry (in its order), else every configured provider.
//! Filters, in this order, each with a [`Skip`] reason: tools needed but not offered, the context
//! window too small for the estimated prompt + output, an exhausted quota, a cooldown (unless every
//! candidate is cooling down: then they are tried anyway, soonest-ready first), a hard budget that
//! the worst-case estimate would cross (cloud providers only; local ones cost nothing).
//! Ranking: a provider the user picked for this session first, then the conversation's sticky
//! provider, then the route order; without a route: the provider the config names for the job
//! (`[explain] provider`, …), local first for short hops (completions, and prompts under
//! [`SHORT_HOP_TOKENS`]), native FIM first for completions, then measured TTFT (EWMA; unmeasured
//! after measured), then the estimated price, then the name.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use crate::config::{Budget, BudgetMode, ProviderKind};
use crate::core::llm::{ErrorKind, Intent};
use crate::ledger::Spend;
use crate::router::pricing::{self, Price};

use super::health::Health;

/// Prompts under this many estimated tokens count as short hops (local first).
pub const SHORT_HOP_TOKENS: u32 = 2_000;

/// What the router knows of one configured provider before calling it.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateInfo {
    pub name: String,
    pub kind: ProviderKind,
    /// Model id, when known (configured, learned from the server, or the kind's default).
    pub model: Option<String>,
    /// Runs on this machine: costs nothing, preferred for short hops, allowed past a hard budget.
    pub local: bool,
    /// Can take tool definitions.
    pub tools: bool,
    /// Has a native FIM endpoint (else FIM goes through a chat template).
    pub native_fim: bool,
    /// Tokens, prompt + output.
    pub context_window: Option<u32>,
    /// USD per million tokens; `None` = unknown (cloud) or free (local).
    pub price: Option<Price>,
    pub budget: Option<Budget>,
    /// The provider needs a key and its environment variable is unset (a key command is not run
    /// to find out): what to set, e.g. `"set ANTHROPIC_API_KEY"`.
    pub key_missing: Option<String>,
}

impl CandidateInfo {
    /// The worst-case cost of a request (prompt `input` tokens, up to `output` generated); local
    /// providers and unknown prices cost 0.
    pub fn estimate_usd(&self, input: u32, output: u32) -> f64 {
        match (&self.price, self.local) {
            (Some(p), false) => pricing::estimate_usd(p, input, output),
            _ => 0.0,
        }
    }
}

/// What the request needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Need {
    pub intent: Intent,
    pub est_tokens: u32,
    pub max_output: u32,
    pub tools: bool,
}

impl Need {
    pub fn short_hop(&self) -> bool {
        self.intent.latency_critical() || self.est_tokens < SHORT_HOP_TOKENS
    }
}

/// Which budget a [`Skip::Budget`] or warning is about.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetHit {
    /// `None` = the total (`[budget]`), else the provider (`[providers.NAME.budget]`).
    pub provider: Option<String>,
    /// `"daily"` or `"monthly"`.
    pub period: &'static str,
    pub limit_usd: f64,
    pub spent_usd: f64,
    /// The worst-case cost of the request that would cross it.
    pub request_usd: f64,
    pub mode: BudgetMode,
}

impl std::fmt::Display for BudgetHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let whose = match &self.provider {
            None => "total".to_string(),
            Some(p) => format!("{p}'s"),
        };
        let key = match &self.provider {
            None => format!("budget.{}_usd", self.period),
            Some(p) => format!("providers.{p}.budget.{}_usd", self.period),
        };
        if self.spent_usd >= self.limit_usd {
            write!(
                f,
                "{whose} {} budget is spent: ${:.4} of ${:.2} ({key})",
                self.period, self.spent_usd, self.limit_usd
            )
        } else {
            write!(
                f,
                "{whose} {} budget: ${:.4} spent of ${:.2}, and this request may cost up to ${:.4} ({key})",
                self.period, self.spent_usd, self.limit_usd, self.request_usd
            )
        }
    }
}

/// Why a provider is not a candidate for this request.
#[derive(Debug, Clone, PartialEq)]
pub enum Skip {
    /// Needs a key that is not set.
    NoKey(String),
    NoTools,
    ContextWindow {
        window: u32,
        need: u32,
    },
    QuotaExhausted,
    CoolingDown {
        secs_left: u64,
        last: Option<ErrorKind>,
    },
    Budget(BudgetHit),
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::NoKey(hint) => write!(f, "no API key ({hint})"),
            Skip::NoTools => write!(f, "cannot take tools"),
            Skip::ContextWindow { window, need } => {
                write!(f, "context window {window} tokens < ~{need} needed")
            }
            Skip::QuotaExhausted => write!(f, "quota exhausted"),
            Skip::CoolingDown { secs_left, last } => {
                write!(f, "cooling down for {secs_left} s")?;
                if let Some(k) = last {
                    write!(f, " after {}", k.as_str())?;
                }
                Ok(())
            }
            Skip::Budget(b) => write!(f, "{b}"),
        }
    }
}

/// Everything planning reads.
pub struct Inputs<'a> {
    pub candidates: &'a [CandidateInfo],
    pub routes: &'a BTreeMap<Intent, Vec<String>>,
    /// The provider the config names for this job (`[completion|explain|fix] provider`).
    pub job_provider: Option<&'a str>,
    /// Picked by the user for this session (`:Zeke provider`), or by `--provider`.
    pub pinned: Option<&'a str>,
    /// The provider this conversation stayed on.
    pub sticky: Option<&'a str>,
    pub health: &'a HashMap<String, Health>,
    pub spend: &'a HashMap<String, Spend>,
    pub total_budget: Option<Budget>,
    pub now: Instant,
}

/// The outcome of planning.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// Provider names in the order they will be tried.
    pub order: Vec<String>,
    pub skipped: Vec<(String, Skip)>,
    /// Soft budgets this request crosses (warn once).
    pub warnings: Vec<BudgetHit>,
}

impl Plan {
    /// Why nothing can answer, for the error message.
    pub fn why_empty(&self) -> String {
        if self.skipped.is_empty() {
            return "no provider is configured for this request".into();
        }
        self.skipped
            .iter()
            .map(|(n, s)| format!("{n}: {s}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn budget_hits(
    b: &Budget,
    provider: Option<&str>,
    spent: Spend,
    estimate: f64,
) -> impl Iterator<Item = BudgetHit> + use<> {
    let provider = provider.map(str::to_string);
    let b = *b;
    [
        ("daily", b.daily_usd, spent.today_usd),
        ("monthly", b.monthly_usd, spent.month_usd),
    ]
    .into_iter()
    .filter_map(move |(period, limit, spent)| {
        let limit = limit?;
        (spent + estimate > limit).then(|| BudgetHit {
            provider: provider.clone(),
            period,
            limit_usd: limit,
            // + 0.0: a sum of nothing is -0.0
            spent_usd: spent + 0.0,
            request_usd: estimate,
            mode: b.mode,
        })
    })
}

/// Plans one request (see the module docs for the rules).
pub fn plan(inp: &Inputs<'_>, need: &Need) -> Plan {
    let mut out = Plan::default();
    let route = inp.routes.get(&need.intent);
    let mut pool: Vec<&CandidateInfo> = match route {
        Some(names) => names
            .iter()
            .filter_map(|n| inp.candidates.iter().find(|c| &c.name == n))
            .collect(),
        None => inp.candidates.iter().collect(),
    };
    if let Some(p) = inp.pinned
        && !pool.iter().any(|c| c.name == p)
        && let Some(c) = inp.candidates.iter().find(|c| c.name == p)
    {
        pool.push(c);
    }
    let total_spent = Spend {
        today_usd: inp.spend.values().map(|s| s.today_usd).sum::<f64>() + 0.0,
        month_usd: inp.spend.values().map(|s| s.month_usd).sum::<f64>() + 0.0,
    };
    let mut ok: Vec<&CandidateInfo> = Vec::new();
    let mut cooling: Vec<(&CandidateInfo, Instant)> = Vec::new();
    for c in pool {
        let need_tokens = need.est_tokens.saturating_add(need.max_output);
        if let Some(hint) = &c.key_missing {
            out.skipped
                .push((c.name.clone(), Skip::NoKey(hint.clone())));
            continue;
        }
        if need.tools && !c.tools {
            out.skipped.push((c.name.clone(), Skip::NoTools));
            continue;
        }
        if let Some(w) = c.context_window
            && need_tokens > w
        {
            out.skipped.push((
                c.name.clone(),
                Skip::ContextWindow {
                    window: w,
                    need: need_tokens,
                },
            ));
            continue;
        }
        let h = inp.health.get(&c.name);
        if let Some(h) = h
            && h.quota_exhausted
            && h.cooling(inp.now).is_some()
        {
            out.skipped.push((c.name.clone(), Skip::QuotaExhausted));
            continue;
        }
        if !c.local {
            let est = c.estimate_usd(need.est_tokens, need.max_output);
            let spent = inp.spend.get(&c.name).copied().unwrap_or_default();
            let hits: Vec<BudgetHit> = c
                .budget
                .iter()
                .flat_map(|b| budget_hits(b, Some(&c.name), spent, est))
                .chain(
                    inp.total_budget
                        .iter()
                        .flat_map(|b| budget_hits(b, None, total_spent, est)),
                )
                .collect();
            if let Some(hard) = hits.iter().find(|h| h.mode == BudgetMode::Hard) {
                out.skipped
                    .push((c.name.clone(), Skip::Budget(hard.clone())));
                continue;
            }
            for h in hits {
                if !out.warnings.contains(&h) {
                    out.warnings.push(h);
                }
            }
        }
        if let Some(until) = h.and_then(|h| h.cooling(inp.now)) {
            cooling.push((c, until));
            continue;
        }
        ok.push(c);
    }
    let explicit = route.is_some();
    let rank = |a: &&CandidateInfo, b: &&CandidateInfo| -> Ordering {
        let first = |c: &CandidateInfo, n: Option<&str>| n != Some(c.name.as_str());
        let mut o = first(a, inp.pinned)
            .cmp(&first(b, inp.pinned))
            .then(first(a, inp.sticky).cmp(&first(b, inp.sticky)));
        if explicit {
            return o; // a stable sort keeps the route order
        }
        o = o.then(first(a, inp.job_provider).cmp(&first(b, inp.job_provider)));
        if need.short_hop() {
            o = o.then(b.local.cmp(&a.local));
        }
        if need.intent == Intent::Complete {
            o = o.then(b.native_fim.cmp(&a.native_fim));
        }
        let ttft = |c: &CandidateInfo| inp.health.get(&c.name).and_then(|h| h.ewma_ttft_ms);
        o = o.then(match (ttft(a), ttft(b)) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        });
        o.then(
            a.estimate_usd(need.est_tokens, need.max_output)
                .total_cmp(&b.estimate_usd(need.est_tokens, need.max_output)),
        )
        .then(a.name.cmp(&b.name))
    };
    ok.sort_by(rank);
    if ok.is_empty() {
        // everything is cooling down: try anyway, soonest ready first
        cooling.sort_by_key(|(_, u)| *u);
        ok = cooling.iter().map(|(c, _)| *c).collect();
    } else {
        for (c, until) in &cooling {
            let h = inp.health.get(&c.name);
            out.skipped.push((
                c.name.clone(),
                Skip::CoolingDown {
                    secs_left: until.saturating_duration_since(inp.now).as_secs().max(1),
                    last: h.and_then(|h| h.last_error.as_ref().map(|(k, _)| *k)),
                },
            ));
        }
    }
    out.order = ok.into_iter().map(|c| c.name.clone()).collect();
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use expect_test::{Expect, expect};

    use super::*;
    use crate::core::llm::ProviderError;
    use crate::router::health::Board;

    fn cand(
        name: &str,
        kind: ProviderKind,
        local: bool,
        price: Option<(f64, f64)>,
    ) -> CandidateInfo {
        CandidateInfo {
            name: name.into(),
            kind,
            model: Some(format!("{name}-model")),
            local,
            tools: true,
            native_fim: kind == ProviderKind::Mistral,
            context_window: Some(if local { 8_192 } else { 200_000 }),
            price: price.map(|(i, o)| Price {
                input_per_mtok: i,
                output_per_mtok: o,
                cached_input_per_mtok: None,
                cache_write_per_mtok: None,
            }),
            budget: None,
            key_missing: None,
        }
    }

    fn set() -> Vec<CandidateInfo> {
        vec![
            cand("claude", ProviderKind::Anthropic, false, Some((3.0, 15.0))),
            cand("codestral", ProviderKind::Mistral, false, Some((0.3, 0.9))),
            cand("local", ProviderKind::Llamacpp, true, None),
        ]
    }

    struct World {
        cands: Vec<CandidateInfo>,
        routes: BTreeMap<Intent, Vec<String>>,
        board: Board,
        spend: HashMap<String, Spend>,
        total: Option<Budget>,
        pinned: Option<&'static str>,
        sticky: Option<&'static str>,
    }

    impl World {
        fn new() -> Self {
            World {
                cands: set(),
                routes: BTreeMap::new(),
                board: Board::default(),
                spend: HashMap::new(),
                total: None,
                pinned: None,
                sticky: None,
            }
        }
        fn check(&self, intent: Intent, est_tokens: u32, tools: bool, now: Instant, e: Expect) {
            let health = self.board.snapshot();
            let p = plan(
                &Inputs {
                    candidates: &self.cands,
                    routes: &self.routes,
                    job_provider: None,
                    pinned: self.pinned,
                    sticky: self.sticky,
                    health: &health,
                    spend: &self.spend,
                    total_budget: self.total,
                    now,
                },
                &Need {
                    intent,
                    est_tokens,
                    max_output: 1_000,
                    tools,
                },
            );
            let mut s = format!("order: {}\n", p.order.join(", "));
            for (n, why) in &p.skipped {
                s.push_str(&format!("skip {n}: {why}\n"));
            }
            for w in &p.warnings {
                s.push_str(&format!("warn: {w}\n"));
            }
            e.assert_eq(&s);
        }
    }

    #[test]
    fn local_first_for_short_hops_price_for_long() {
        let w = World::new();
        let now = Instant::now();
        w.check(
            Intent::Complete,
            500,
            false,
            now,
            expect![[r#"
            order: local, codestral, claude
        "#]],
        );
        w.check(
            Intent::Chat,
            500,
            false,
            now,
            expect![[r#"
            order: local, codestral, claude
        "#]],
        );
        // too big for the local window (8192): cloud only, cheapest first
        w.check(
            Intent::Chat,
            9_000,
            false,
            now,
            expect![[r#"
            order: codestral, claude
            skip local: context window 8192 tokens < ~10000 needed
        "#]],
        );
    }

    #[test]
    fn routes_keep_their_order_and_pins_and_stickiness_go_first() {
        let mut w = World::new();
        let now = Instant::now();
        w.routes
            .insert(Intent::Chat, vec!["claude".into(), "local".into()]);
        w.check(
            Intent::Chat,
            500,
            false,
            now,
            expect![[r#"
            order: claude, local
        "#]],
        );
        w.sticky = Some("local");
        w.check(
            Intent::Chat,
            500,
            false,
            now,
            expect![[r#"
            order: local, claude
        "#]],
        );
        w.pinned = Some("codestral"); // not in the route, but the user picked it
        w.check(
            Intent::Chat,
            500,
            false,
            now,
            expect![[r#"
            order: codestral, local, claude
        "#]],
        );
    }

    #[test]
    fn measured_latency_orders_equals() {
        let mut w = World::new();
        let now = Instant::now();
        w.board.first_token("claude", Duration::from_millis(300));
        w.board.first_token("codestral", Duration::from_millis(900));
        w.check(
            Intent::Fix,
            5_000,
            false,
            now,
            expect![[r#"
            order: claude, codestral, local
        "#]],
        );
    }

    #[test]
    fn cooldowns_quota_and_all_cooling() {
        let mut w = World::new();
        let now = Instant::now();
        let mut rl = ProviderError::new(ErrorKind::RateLimited, "HTTP 429: slow down");
        rl.retry_after = Some(Duration::from_secs(7));
        w.board.failure("local", &rl, Duration::from_secs(30), now);
        let q = ProviderError::new(ErrorKind::RateLimited, "HTTP 429: insufficient_quota");
        w.board
            .failure("codestral", &q, Duration::from_secs(30), now);
        w.check(
            Intent::Chat,
            500,
            false,
            now,
            expect![[r#"
            order: claude
            skip codestral: quota exhausted
            skip local: cooling down for 7 s after rate_limited
        "#]],
        );
        let down = ProviderError::new(ErrorKind::Unavailable, "refused");
        w.board
            .failure("claude", &down, Duration::from_secs(30), now);
        // every usable one cools: tried anyway, soonest first; the exhausted quota never
        w.check(
            Intent::Chat,
            500,
            false,
            now,
            expect![[r#"
            order: local, claude
            skip codestral: quota exhausted
        "#]],
        );
    }

    #[test]
    fn budgets_hard_skip_cloud_soft_warn() {
        let mut w = World::new();
        let now = Instant::now();
        w.spend.insert(
            "claude".into(),
            Spend {
                today_usd: 0.99,
                month_usd: 4.0,
            },
        );
        w.cands[0].budget = Some(Budget {
            daily_usd: Some(1.0),
            monthly_usd: None,
            mode: BudgetMode::Hard,
        });
        w.total = Some(Budget {
            daily_usd: None,
            monthly_usd: Some(4.0),
            mode: BudgetMode::Soft,
        });
        w.check(Intent::Chat, 9_000, false, now, expect![[r#"
            order: codestral
            skip claude: claude's daily budget: $0.9900 spent of $1.00, and this request may cost up to $0.0420 (providers.claude.budget.daily_usd)
            skip local: context window 8192 tokens < ~10000 needed
            warn: total monthly budget is spent: $4.0000 of $4.00 (budget.monthly_usd)
        "#]]);
        // a hard total stops every cloud call; the local model still answers
        w.total = Some(Budget {
            daily_usd: Some(0.5),
            monthly_usd: None,
            mode: BudgetMode::Hard,
        });
        w.check(Intent::Chat, 500, false, now, expect![[r#"
            order: local
            skip claude: claude's daily budget: $0.9900 spent of $1.00, and this request may cost up to $0.0165 (providers.claude.budget.daily_usd)
            skip codestral: total daily budget is spent: $0.9900 of $0.50 (budget.daily_usd)
        "#]]);
    }

    #[test]
    fn a_missing_key_is_skipped_with_what_to_set() {
        let mut w = World::new();
        w.cands[0].key_missing = Some("set the environment variable ANTHROPIC_API_KEY".into());
        w.check(
            Intent::Chat,
            9_000,
            false,
            Instant::now(),
            expect![[r#"
            order: codestral
            skip claude: no API key (set the environment variable ANTHROPIC_API_KEY)
            skip local: context window 8192 tokens < ~10000 needed
        "#]],
        );
    }

    #[test]
    fn tools_filter() {
        let mut w = World::new();
        w.cands[2].tools = false;
        w.check(
            Intent::Chat,
            100,
            true,
            Instant::now(),
            expect![[r#"
            order: codestral, claude
            skip local: cannot take tools
        "#]],
        );
    }
}
