//! Per-buffer rope mirrors kept in step with Neovim through `nvim_buf_attach` events, keyed by
//! buffer number and stamped with `changedtick`.
//!
//! Invariant: a DashMap guard is never held across an `.await`; readers take an O(1) snapshot.
//! A mirror is created only from the full-buffer event that follows an attach (`0, -1`); an event
//! for a buffer not mirrored yet is ignored (its full event is on the way). An `inccommand`
//! preview (`changedtick` null: screen lines, not buffer text) is ignored. A mirror that fails to
//! apply an event — a range outside it, or a `changedtick` that is not the next one (Neovim
//! advances it by one per lines or changedtick event) — is dropped (the
//! handler re-attaches to resynchronise, and counts it), so a completion is never computed from
//! text that differs from the buffer at its `changedtick`.

use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::Notify;

use crate::core::text::{BufferText, TextError};

struct Mirror {
    text: BufferText,
    tick: i64,
}

/// What became of a lines event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Applied,
    /// Not buffer text (an `inccommand` preview), or for a buffer whose full event has not come.
    Ignored,
}

/// The mirrored buffers.
#[derive(Default)]
pub struct Buffers {
    map: DashMap<i64, Mirror>,
    /// Woken after every applied lines event, for requests waiting on a buffer's first mirror.
    changed: Notify,
}

impl Buffers {
    /// Applies `nvim_buf_lines_event(buf, tick, first, last, lines)`; `last == -1` means "to the
    /// end" (the first event after attaching carries the whole buffer that way). `tick == None` is
    /// an `inccommand` preview and is ignored.
    pub fn on_lines(
        &self,
        buf: i64,
        tick: Option<i64>,
        first: i64,
        last: i64,
        lines: &[String],
    ) -> Result<Applied, TextError> {
        let Some(tick) = tick else {
            return Ok(Applied::Ignored);
        };
        let whole = first == 0 && last == -1;
        let first = first.max(0) as usize;
        let last = (last >= 0).then_some(last as usize);
        let result = match self.map.entry(buf) {
            dashmap::Entry::Vacant(v) => {
                if !whole {
                    return Ok(Applied::Ignored);
                }
                v.insert(Mirror {
                    text: BufferText::from_lines(lines),
                    tick,
                });
                Ok(())
            }
            dashmap::Entry::Occupied(mut o) => {
                let m = o.get_mut();
                // each change advances the tick by one; equal is a multipart event of one change
                if tick < m.tick || tick > m.tick + 1 {
                    Err(TextError::TickOrder {
                        had: m.tick,
                        got: tick,
                    })
                } else {
                    let r = m.text.replace_lines(first, last, lines);
                    m.tick = tick;
                    r
                }
            }
        };
        if result.is_err() {
            self.map.remove(&buf);
        }
        self.changed.notify_waiters();
        result.map(|()| Applied::Applied)
    }

    /// Applies `nvim_buf_changedtick_event`; a tick that is not the next one drops the mirror
    /// (`Err`: the caller resyncs), as for lines events.
    pub fn on_tick(&self, buf: i64, tick: i64) -> Result<(), TextError> {
        let result = match self.map.get_mut(&buf) {
            Some(mut m) if tick == m.tick + 1 || tick == m.tick => {
                m.tick = tick;
                Ok(())
            }
            Some(m) => Err(TextError::TickOrder {
                had: m.tick,
                got: tick,
            }),
            None => Ok(()),
        };
        if result.is_err() {
            self.map.remove(&buf);
        }
        self.changed.notify_waiters();
        result
    }

    pub fn remove(&self, buf: i64) -> bool {
        self.map.remove(&buf).is_some()
    }

    pub fn contains(&self, buf: i64) -> bool {
        self.map.contains_key(&buf)
    }

    /// An O(1) snapshot of the buffer's text and its `changedtick`.
    pub fn snapshot(&self, buf: i64) -> Option<(BufferText, i64)> {
        self.map.get(&buf).map(|m| (m.text.clone(), m.tick))
    }

    /// Like [`Buffers::snapshot`], but when the buffer is not mirrored yet (attached just now),
    /// waits up to `limit` for its first lines event. `None` if it never arrives.
    pub async fn wait_snapshot(&self, buf: i64, limit: Duration) -> Option<(BufferText, i64)> {
        self.wait_for(buf, limit, |_| true).await
    }

    /// Waits up to `limit` until the mirror of `buf` is at `changedtick` `tick`.
    pub async fn wait_tick(&self, buf: i64, tick: i64, limit: Duration) -> Option<BufferText> {
        self.wait_for(buf, limit, |t| t == tick)
            .await
            .map(|(text, _)| text)
    }

    async fn wait_for(
        &self,
        buf: i64,
        limit: Duration,
        ok: impl Fn(i64) -> bool,
    ) -> Option<(BufferText, i64)> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(s) = self.snapshot(buf).filter(|(_, t)| ok(*t)) {
                return Some(s);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return None;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Bytes of text held across all mirrors.
    pub fn bytes(&self) -> usize {
        self.map.iter().map(|m| m.text.len_bytes()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_events_and_drops_on_mismatch() {
        let b = Buffers::default();
        b.on_lines(1, Some(2), 0, -1, &["a".into(), "b".into()])
            .unwrap();
        b.on_lines(1, Some(3), 1, 2, &["bb".into(), "c".into()])
            .unwrap();
        let (t, tick) = b.snapshot(1).unwrap();
        assert_eq!((t.text().as_str(), tick), ("a\nbb\nc\n", 3));
        b.on_tick(1, 4).unwrap();
        assert_eq!(b.snapshot(1).unwrap().1, 4);
        assert!(b.on_lines(1, Some(5), 7, 9, &[]).is_err());
        assert!(
            !b.contains(1),
            "a mirror that cannot apply an event is dropped"
        );
        // a skipped tick (an event lost): dropped for a resync, from either kind of event
        b.on_lines(2, Some(10), 0, -1, &["x".into()]).unwrap();
        assert!(b.on_lines(2, Some(12), 0, 1, &["y".into()]).is_err());
        assert!(!b.contains(2));
        b.on_lines(3, Some(10), 0, -1, &["x".into()]).unwrap();
        assert!(b.on_tick(3, 13).is_err());
        assert!(!b.contains(3));
    }

    #[test]
    fn only_a_full_event_starts_a_mirror_previews_are_ignored_old_ticks_resync() {
        let b = Buffers::default();
        // a partial event for a buffer not mirrored (its full event is still coming): ignored
        assert_eq!(
            b.on_lines(1, Some(4), 1, 2, &["x".into()]),
            Ok(Applied::Ignored)
        );
        assert!(!b.contains(1), "no partial mirror with a valid tick");
        b.on_lines(1, Some(5), 0, -1, &["a".into(), "b".into()])
            .unwrap();
        // an inccommand preview: screen lines, not the buffer
        assert_eq!(
            b.on_lines(1, None, 0, 1, &["PREVIEW".into()]),
            Ok(Applied::Ignored)
        );
        assert_eq!(b.snapshot(1).unwrap().0.text(), "a\nb\n");
        // an event older than the mirror: out of step, dropped for a resync
        assert_eq!(
            b.on_lines(1, Some(3), 0, 1, &["old".into()]),
            Err(TextError::TickOrder { had: 5, got: 3 })
        );
        assert!(!b.contains(1));
    }

    #[tokio::test]
    async fn waiting_for_a_first_mirror() {
        let b = std::sync::Arc::new(Buffers::default());
        assert!(
            b.wait_snapshot(7, Duration::from_millis(20))
                .await
                .is_none(),
            "never attached: gives up"
        );
        let b2 = b.clone();
        let waiter = tokio::spawn(async move { b2.wait_snapshot(7, Duration::from_secs(5)).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        b.on_lines(7, Some(3), 0, -1, &["x".into()]).unwrap();
        let (t, tick) = waiter
            .await
            .unwrap()
            .expect("woken by the first lines event");
        assert_eq!((t.text().as_str(), tick), ("x\n", 3));
    }
}
