//! Task control for model work: every job is a spawned task keyed by (kind, id), aborted on cancel
//! and when a newer completion starts. Aborting drops the provider stream, which closes the HTTP
//! connection so the server stops generating.
//!
//! Invariant: tasks here never call the editor themselves (they send `UiEvent`s), so aborting one
//! cannot leave an editor request half-answered.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use tokio::task::AbortHandle;

/// The kind of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Job {
    Complete,
    Explain,
    /// `:Zeke fix`: a patch for code.
    Fix,
    /// `:Zeke test`: a patch adding tests.
    Test,
    /// A chat turn (the panel's conversation and its agent).
    Chat,
    /// `:Zeke edit`: a patch rewriting code as the user instructed.
    Edit,
    Config,
    Rpc,
}

impl Job {
    pub fn as_str(self) -> &'static str {
        match self {
            Job::Complete => "complete",
            Job::Explain => "explain",
            Job::Fix => "fix",
            Job::Test => "test",
            Job::Chat => "chat",
            Job::Edit => "edit",
            Job::Config => "config",
            Job::Rpc => "rpc",
        }
    }
}

/// Running jobs. The mutex guards only map updates (never held across an `.await`).
#[derive(Default)]
pub struct Tasks {
    running: Mutex<HashMap<(Job, u64), AbortHandle>>,
}

impl Tasks {
    /// Spawns `fut` as job (kind, id). With `exclusive`, every other job of the same kind is aborted
    /// first. Returns how many running jobs were aborted.
    pub fn spawn<F>(
        self: &std::sync::Arc<Self>,
        kind: Job,
        id: u64,
        exclusive: bool,
        fut: F,
    ) -> usize
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let aborted = if exclusive {
            self.cancel(kind, None)
        } else {
            0
        };
        let me = self.clone();
        let handle = tokio::spawn(async move {
            fut.await;
            me.running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&(kind, id));
        });
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((kind, id), handle.abort_handle());
        aborted
    }

    /// Aborts job (kind, id), or every job of `kind` when `id` is `None`. Returns how many were
    /// still running.
    pub fn cancel(&self, kind: Job, id: Option<u64>) -> usize {
        let mut map = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let keys: Vec<(Job, u64)> = map
            .keys()
            .filter(|(k, i)| *k == kind && id.is_none_or(|id| id == *i))
            .copied()
            .collect();
        let mut n = 0;
        for key in keys {
            if let Some(h) = map.remove(&key)
                && !h.is_finished()
            {
                h.abort();
                n += 1;
            }
        }
        n
    }

    /// Aborts everything. Returns how many were running.
    pub fn cancel_all(&self) -> usize {
        let mut map = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.values().filter(|h| !h.is_finished()).count();
        for (_, h) in map.drain() {
            h.abort();
        }
        n
    }

    /// Number of jobs of `kind` running.
    pub fn running(&self, kind: Job) -> usize {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|((k, _), h)| *k == kind && !h.is_finished())
            .count()
    }
}
