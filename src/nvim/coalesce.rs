//! Coalescing of the events queued for the editor while it was busy: one `zeke.rpc.dispatch`
//! call then carries what many would have. Completion snapshots of one id keep only the newest;
//! explain and chat deltas of one id (and, for chat, one session and one answering model) are
//! joined, a `restart` among them replacing what came before it. Order is otherwise kept.

use crate::app::UiEvent;

/// `batch` in order, consecutive events of one stream merged as described above.
pub fn coalesce(batch: Vec<UiEvent>) -> Vec<UiEvent> {
    let mut out: Vec<UiEvent> = Vec::with_capacity(batch.len());
    for ev in batch {
        match (out.last_mut(), ev) {
            (
                Some(UiEvent::Completion {
                    id: a,
                    text,
                    done,
                    provider_ttft,
                    ..
                }),
                UiEvent::Completion {
                    id: b,
                    text: t2,
                    done: d2,
                    provider_ttft: p2,
                    ..
                },
            ) if *a == b && !*done => {
                *text = t2;
                *done = d2;
                *provider_ttft = provider_ttft.or(p2);
            }
            (
                Some(UiEvent::Explain {
                    id: a,
                    delta,
                    restart,
                    done,
                    provider,
                    model,
                    ..
                }),
                UiEvent::Explain {
                    id: b,
                    delta: d2,
                    restart: r2,
                    done: dn2,
                    provider: p2,
                    model: m2,
                    ..
                },
            ) if *a == b && !*done => {
                if r2 {
                    // a restart replaces what came before it
                    *delta = d2;
                    *restart = true;
                } else {
                    delta.push_str(&d2);
                }
                *done = dn2;
                *provider = p2;
                *model = m2;
            }
            (
                Some(UiEvent::ChatDelta {
                    id: a,
                    session: s1,
                    delta,
                    restart,
                    provider,
                    model,
                }),
                UiEvent::ChatDelta {
                    id: b,
                    session: s2,
                    delta: d2,
                    restart: r2,
                    provider: p2,
                    model: m2,
                },
            ) if *a == b && *s1 == s2 && *provider == p2 && *model == m2 => {
                if r2 {
                    *delta = d2;
                    *restart = true;
                } else {
                    delta.push_str(&d2);
                }
            }
            (_, ev) => out.push(ev),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(id: u64, text: &str, restart: bool, model: &str) -> UiEvent {
        UiEvent::ChatDelta {
            id,
            session: "s".into(),
            delta: text.into(),
            restart,
            provider: "p".into(),
            model: model.into(),
        }
    }

    fn texts(evs: &[UiEvent]) -> Vec<(u64, String, bool, String)> {
        evs.iter()
            .map(|e| match e {
                UiEvent::ChatDelta {
                    id,
                    delta,
                    restart,
                    model,
                    ..
                } => (*id, delta.clone(), *restart, model.clone()),
                _ => panic!("not a chat delta"),
            })
            .collect()
    }

    #[test]
    fn chat_deltas_of_one_answer_are_joined_and_a_restart_replaces() {
        let out = coalesce(vec![
            delta(1, "a", false, "m"),
            delta(1, "b", false, "m"),
            delta(1, "", true, "m"),
            delta(1, "c", false, "m"),
            delta(2, "x", false, "m"),
            delta(2, "y", false, "other"),
        ]);
        assert_eq!(
            texts(&out),
            vec![
                (1, "c".into(), true, "m".into()),
                (2, "x".into(), false, "m".into()),
                (2, "y".into(), false, "other".into()),
            ]
        );
    }
}
