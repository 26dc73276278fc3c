//! What the router has measured about each provider: time to first token (EWMA and a window of
//! recent samples for the p95 that hedging waits), failures, cooldowns and exhausted quotas.
//!
//! Cooldown rules (one place): a 429 cools the provider for its `retry-after` (else the
//! configured cooldown); an exhausted quota (a 429 whose message says quota, billing or credit) is
//! skipped for an hour and never retried within a request; `overloaded` and `unavailable`
//! (connection refused, 5xx) cool at once; `timeout` and `malformed` after two in a row; `auth`
//! cools for the configured cooldown (a new config clears it); `invalid`, `context_too_large` and
//! `denied` are about the request, not the provider, and cool nothing.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::core::llm::{ErrorKind, ProviderError};

/// Smoothing of the TTFT average: weight of the newest sample.
const EWMA_ALPHA: f64 = 0.3;
/// Samples kept for the p95.
const WINDOW: usize = 32;
/// Samples needed before the p95 replaces the configured hedge delay.
pub const MIN_SAMPLES_FOR_P95: usize = 5;
/// How long an exhausted quota is skipped.
const QUOTA_COOLDOWN: Duration = Duration::from_secs(3600);

/// One provider's record.
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// Exponentially weighted mean time to first token, ms.
    pub ewma_ttft_ms: Option<f64>,
    recent: VecDeque<f64>,
    pub successes: u64,
    pub failures: u64,
    consecutive_soft: u32,
    pub cooldown_until: Option<Instant>,
    /// Whether the cooldown is an exhausted quota (never retried within a request).
    pub quota_exhausted: bool,
    pub last_error: Option<(ErrorKind, String)>,
}

impl Health {
    /// The 95th percentile of recent TTFTs (nearest rank), once there are enough samples.
    pub fn p95_ttft(&self) -> Option<Duration> {
        if self.recent.len() < MIN_SAMPLES_FOR_P95 {
            return None;
        }
        let mut v: Vec<f64> = self.recent.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        let rank = ((v.len() as f64) * 0.95).ceil() as usize;
        Some(Duration::from_secs_f64(v[rank.clamp(1, v.len()) - 1] / 1e3))
    }

    /// Whether the provider is cooling down at `now`, and until when.
    pub fn cooling(&self, now: Instant) -> Option<Instant> {
        self.cooldown_until.filter(|u| *u > now)
    }

    pub fn samples(&self) -> usize {
        self.recent.len()
    }
}

/// Every provider's record, keyed by provider name.
#[derive(Debug, Default)]
pub struct Board {
    map: HashMap<String, Health>,
}

/// Whether a 429 is an exhausted quota rather than a short-term rate limit.
pub fn is_quota_exhausted(e: &ProviderError) -> bool {
    if e.kind != ErrorKind::RateLimited {
        return false;
    }
    let m = e.message.to_ascii_lowercase();
    [
        "quota",
        "billing",
        "credit",
        "insufficient_quota",
        "resource_exhausted",
    ]
    .iter()
    .any(|w| m.contains(w))
}

impl Board {
    pub fn get(&self, name: &str) -> Option<&Health> {
        self.map.get(name)
    }

    /// Records a first token after `ttft`.
    pub fn first_token(&mut self, name: &str, ttft: Duration) {
        let h = self.map.entry(name.to_string()).or_default();
        let ms = ttft.as_secs_f64() * 1e3;
        h.ewma_ttft_ms = Some(match h.ewma_ttft_ms {
            None => ms,
            Some(old) => old + EWMA_ALPHA * (ms - old),
        });
        if h.recent.len() == WINDOW {
            h.recent.pop_front();
        }
        h.recent.push_back(ms);
    }

    /// Records an answer that ended well: clears the failure streak and any cooldown.
    pub fn success(&mut self, name: &str) {
        let h = self.map.entry(name.to_string()).or_default();
        h.successes += 1;
        h.consecutive_soft = 0;
        h.cooldown_until = None;
        h.quota_exhausted = false;
    }

    /// Records a failure at `now` and applies the cooldown rules (module docs). Returns the end of
    /// the cooldown it set, if any.
    pub fn failure(
        &mut self,
        name: &str,
        e: &ProviderError,
        cooldown: Duration,
        now: Instant,
    ) -> Option<Instant> {
        let h = self.map.entry(name.to_string()).or_default();
        h.failures += 1;
        h.last_error = Some((e.kind, e.message.clone()));
        let until = match e.kind {
            ErrorKind::RateLimited if is_quota_exhausted(e) => {
                h.quota_exhausted = true;
                Some(now + QUOTA_COOLDOWN)
            }
            ErrorKind::RateLimited => Some(now + e.retry_after.unwrap_or(cooldown)),
            ErrorKind::Overloaded | ErrorKind::Unavailable => {
                Some(now + e.retry_after.unwrap_or(cooldown))
            }
            ErrorKind::Timeout | ErrorKind::Malformed => {
                h.consecutive_soft += 1;
                (h.consecutive_soft >= 2).then(|| now + cooldown)
            }
            ErrorKind::Auth => Some(now + cooldown),
            ErrorKind::Invalid | ErrorKind::ContextTooLarge | ErrorKind::Denied => None,
        };
        if let Some(u) = until {
            h.cooldown_until = Some(h.cooldown_until.map_or(u, |old| old.max(u)));
        }
        until
    }

    /// Forgets cooldowns for bad keys (after a new configuration, the user may have fixed them).
    pub fn clear_auth(&mut self) {
        for h in self.map.values_mut() {
            if matches!(h.last_error, Some((ErrorKind::Auth, _))) {
                h.cooldown_until = None;
            }
        }
    }

    /// Clones of every record, for planning and `zeke models`.
    pub fn snapshot(&self) -> HashMap<String, Health> {
        self.map.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p95_and_ewma() {
        let mut b = Board::default();
        for ms in [10, 20, 30, 40] {
            b.first_token("a", Duration::from_millis(ms));
        }
        assert_eq!(b.get("a").unwrap().p95_ttft(), None, "too few samples");
        b.first_token("a", Duration::from_millis(500));
        assert_eq!(
            b.get("a").unwrap().p95_ttft(),
            Some(Duration::from_millis(500))
        );
        let e = b.get("a").unwrap().ewma_ttft_ms.unwrap();
        // 10 → 13 → 18.1 → 24.67 → 167.269
        assert!((e - 167.269).abs() < 0.01, "{e}");
    }

    #[test]
    fn cooldown_rules() {
        let now = Instant::now();
        let cd = Duration::from_secs(30);
        let mut b = Board::default();
        let mut e = ProviderError::new(ErrorKind::RateLimited, "HTTP 429: slow down");
        e.retry_after = Some(Duration::from_secs(7));
        assert_eq!(
            b.failure("a", &e, cd, now),
            Some(now + Duration::from_secs(7))
        );
        assert!(!b.get("a").unwrap().quota_exhausted);
        let q = ProviderError::new(
            ErrorKind::RateLimited,
            "HTTP 429: You exceeded your current quota, please check your plan and billing",
        );
        b.failure("q", &q, cd, now);
        assert!(b.get("q").unwrap().quota_exhausted);
        let t = ProviderError::new(ErrorKind::Timeout, "slow");
        assert_eq!(
            b.failure("t", &t, cd, now),
            None,
            "one timeout is not a pattern"
        );
        assert_eq!(b.failure("t", &t, cd, now), Some(now + cd));
        let i = ProviderError::new(ErrorKind::ContextTooLarge, "too long");
        assert_eq!(b.failure("i", &i, cd, now), None);
        b.success("t");
        assert_eq!(b.get("t").unwrap().cooling(now), None);
    }
}
