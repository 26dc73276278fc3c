//! Property tests standing in for fuzzing (`cargo fuzz` needs a nightly toolchain, which this
//! project's machines cannot install): every parser that takes text from a provider, a model or
//! a config file is fed arbitrary and near-valid input and must answer with `Ok` or a clear
//! `Err` — never panic.

use proptest::prelude::*;
use serde_json::{Value, json};

/// JSON values built from the keys the wire formats use, so the mappers get past their first
/// `match` and into the interesting paths.
fn wire_json() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec![
        "choices",
        "delta",
        "content",
        "text",
        "tool_calls",
        "index",
        "function",
        "arguments",
        "finish_reason",
        "usage",
        "prompt_tokens",
        "completion_tokens",
        "error",
        "message",
        "response",
        "done",
        "done_reason",
        "stop",
        "tokens_predicted",
        "model",
        "type",
        "id",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..5).prop_map(|m| Value::Object(
                m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

proptest! {
    #[test]
    fn provider_event_mappers_never_panic(v in wire_json(), raw in ".{0,80}") {
        let text = v.to_string();
        for input in [text.as_str(), raw.as_str()] {
            let _ = zeke::providers::openai::map_chunk(input);
            let _ = zeke::providers::ollama::map_line(input);
            let _ = zeke::providers::llamacpp::map_infill(input);
        }
    }

    #[test]
    fn config_loader_never_panics(v in wire_json(), section in prop::sample::select(vec![
        "completion", "explain", "fix", "mcp", "fetch", "providers", "capabilities", "scopes", "ui",
    ])) {
        let _ = zeke::config::Config::from_value(json!({ section: v.clone() }));
        let _ = zeke::config::Config::from_value(v);
    }

    #[test]
    fn model_answers_never_panic_the_patch_parsers(
        answer in "(```[a-z]{0,5}\n)?((@@ -[0-9]{1,2}(,[0-9])? \\+[0-9]{1,2}(,[0-9])? @@\n)|([-+ ][a-z ]{0,6}\n)|(--- a/x\n\\+\\+\\+ b/x\n)){0,12}(```)?",
        lines in prop::collection::vec("[a-z ]{0,6}", 0..10),
    ) {
        let _ = zeke::core::patch::extract(&answer);
        if let Ok(hunks) = zeke::core::patch::parse_unified(&answer) {
            let _ = zeke::core::patch::apply_unified(&lines, &hunks);
        }
    }

    #[test]
    fn edit_matching_applies_exactly_one_occurrence_or_refuses(
        text in "[ab\n\r\u{e9}]{0,40}",
        old in "[ab\n\u{e9}]{1,6}",
        new in "[xy\n]{0,6}",
    ) {
        let edits = [zeke::core::edit::Edit { old: old.clone(), new: new.clone() }];
        let ending = zeke::core::edit::LineEnding::of(&text);
        let (o, n) = (ending.apply(&old), ending.apply(&new));
        match zeke::core::edit::apply(&text, &edits, "f") {
            // exactly one occurrence (in the file's line-ending style) was swapped, every other
            // byte is as it was
            Ok(done) => {
                prop_assert_eq!(text.matches(o.as_str()).count(), 1);
                prop_assert_eq!(done.text, text.replacen(o.as_str(), &n, 1));
            }
            Err(_) => prop_assert_ne!(text.matches(o.as_str()).count(), 1),
        }
    }
}
