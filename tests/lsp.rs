//! The `lsp_*` tools against a real rust-analyzer (`rustup component add rust-analyzer`, installed
//! by `make deps`) on small Cargo workspaces made by the tests, through the tool layer in-process
//! (the same calls `zeke mcp` and the chat agent make): definition across crates, references,
//! the implementations of a trait method, hover with the signature, incoming calls, document and
//! workspace symbols, a rename as a patch touching every use (and nothing written), diagnostics
//! of a broken line that clear after the fix written through `edit_file`, a query while the
//! server is still indexing (the right answer or "still indexing", never an empty one), a killed
//! server started again, and `cmd.exec = "deny"` refusing to start one. A second language: clangd
//! (Debian's package) on a small C project — definition, hover, diagnostics.
//!
//! A test binary of its own (libtest-mimic): without rust-analyzer each test says `ignored
//! (skipped: …)`; with `ZEKE_TEST_NO_SKIP=1` (set by `make test`) that is a failure instead.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use serde_json::{Value, json};
use zeke::app::audit::Audit;
use zeke::app::gate::{Asked, Asker, Gate, Question};
use zeke::app::grants::GrantStore;
use zeke::app::tools::{self, Invocation, Output, Roots, Settings, ToolError};
use zeke::config::Config;

const SKIP: &str = "skipped: rust-analyzer is not on PATH (make deps installs it)";
const SKIP_CLANGD: &str = "skipped: clangd is not on PATH (make deps installs it)";

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
});

/// Never asked in these tests except where a test says so.
struct NoAsk;
impl Asker for NoAsk {
    fn ask<'a>(&'a self, _q: &'a Question) -> futures_util::future::BoxFuture<'a, Asked> {
        Box::pin(async { Asked::CannotAsk("this test cannot ask".into()) })
    }
}

/// A Cargo workspace: `shapes` (a trait, two impls in their own files, a function calling the
/// trait method) and `app` (uses them from another crate).
fn workspace() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let files: &[(&str, &str)] = &[
        (
            "Cargo.toml",
            "[workspace]\nmembers = [\"shapes\", \"app\"]\nresolver = \"2\"\n",
        ),
        (
            "shapes/Cargo.toml",
            "[package]\nname = \"shapes\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
        ),
        (
            "shapes/src/lib.rs",
            "pub mod circle;\npub mod square;\n\n/// A shape with an area.\npub trait Shape {\n    /// The area in square units.\n    fn area(&self) -> f64;\n}\n\n/// The sum of the areas.\npub fn total_area(shapes: &[&dyn Shape]) -> f64 {\n    shapes.iter().map(|s| s.area()).sum()\n}\n",
        ),
        (
            "shapes/src/circle.rs",
            "use crate::Shape;\n\npub struct Circle {\n    pub r: f64,\n}\n\nimpl Shape for Circle {\n    fn area(&self) -> f64 {\n        3.0 * self.r * self.r\n    }\n}\n",
        ),
        (
            "shapes/src/square.rs",
            "use crate::Shape;\n\npub struct Square {\n    pub side: f64,\n}\n\nimpl Shape for Square {\n    fn area(&self) -> f64 {\n        self.side * self.side\n    }\n}\n",
        ),
        (
            "app/Cargo.toml",
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nshapes = { path = \"../shapes\" }\n",
        ),
        (
            "app/src/main.rs",
            "use shapes::circle::Circle;\nuse shapes::square::Square;\nuse shapes::total_area;\n\nfn report() -> f64 {\n    let c = Circle { r: 1.0 };\n    let s = Square { side: 2.0 };\n    total_area(&[&c, &s])\n}\n\nfn main() {\n    println!(\"{}\", report());\n}\n",
        ),
    ];
    for (p, text) in files {
        let path = d.path().join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    d
}

/// A project: its workspace, config, gate and roots.
struct Project {
    dir: tempfile::TempDir,
    root: PathBuf,
    gate: Gate,
    roots: Roots,
    settings: Settings,
}

fn project(extra: Value) -> Project {
    let dir = workspace();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let mut table = json!({"lsp": {"wait_ms": 120000}});
    if let (Value::Object(t), Value::Object(e)) = (&mut table, extra) {
        for (k, v) in e {
            t.insert(k, v);
        }
    }
    let config = Config::from_value(table).unwrap();
    let state = root.join(".state");
    std::fs::create_dir_all(&state).unwrap();
    let gate = Gate::new(
        config.policy.clone(),
        GrantStore::load(state.join("grants.json")),
        Audit::new(state.join("audit.jsonl")),
        None,
    );
    let roots = Roots::new(std::slice::from_ref(&root)).unwrap();
    let settings = Settings::from_config(&config);
    Project {
        dir,
        root,
        gate,
        roots,
        settings,
    }
}

impl Project {
    async fn call(&self, name: &str, args: Value) -> Result<Output, ToolError> {
        tools::run(
            &self.gate,
            Invocation {
                name,
                args: args.as_object().unwrap().clone(),
                roots: self.roots.clone(),
                ct: Default::default(),
                progress: None,
                asker: &NoAsk,
                settings: &self.settings,
                client: Some("lsp-test"),
                refused: None,
            },
        )
        .await
    }

    fn ok(&self, name: &str, args: Value) -> Output {
        RT.block_on(self.call(name, args.clone()))
            .unwrap_or_else(|e| panic!("{name} {args}: {e}"))
    }
}

/// (path, line) of every location of a result.
fn places(o: &Output) -> Vec<(String, u64)> {
    o.structured["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["path"].as_str().unwrap().to_string(),
                l["line"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The shared project of the read-only tests (one rust-analyzer for all of them).
static SHARED: LazyLock<Project> = LazyLock::new(|| project(json!({})));

fn definition_across_crates() {
    let p = &*SHARED;
    // `total_area` called in app/src/main.rs line 8
    let o = p.ok(
        "lsp_definition",
        json!({"path": "app/src/main.rs", "line": 8, "column": 5}),
    );
    assert_eq!(
        places(&o),
        [("shapes/src/lib.rs".to_string(), 11)],
        "{}",
        o.text
    );
    assert!(
        o.text.contains("pub fn total_area"),
        "the lines around it: {}",
        o.text
    );
    // a symbol name path instead of a position
    let o = p.ok(
        "lsp_definition",
        json!({"path": "app/src/main.rs", "symbol": "report"}),
    );
    assert_eq!(
        places(&o),
        [("app/src/main.rs".to_string(), 5)],
        "{}",
        o.text
    );
    // the type of `c` (line 6) is Circle
    let o = p.ok(
        "lsp_type_definition",
        json!({"path": "app/src/main.rs", "line": 6, "column": 9}),
    );
    assert_eq!(
        places(&o),
        [("shapes/src/circle.rs".to_string(), 3)],
        "{}",
        o.text
    );
}

fn references_and_implementations() {
    let p = &*SHARED;
    let o = p.ok(
        "lsp_references",
        json!({"path": "shapes/src/lib.rs", "symbol": "total_area"}),
    );
    let got = places(&o);
    assert!(
        got.contains(&("app/src/main.rs".to_string(), 8)),
        "the call: {got:?}"
    );
    assert!(
        got.contains(&("app/src/main.rs".to_string(), 3)),
        "the use: {got:?}"
    );
    let o = p.ok(
        "lsp_implementation",
        json!({"path": "shapes/src/lib.rs", "symbol": "Shape/area"}),
    );
    let mut files: Vec<String> = places(&o).into_iter().map(|(f, _)| f).collect();
    files.sort();
    assert_eq!(
        files,
        ["shapes/src/circle.rs", "shapes/src/square.rs"],
        "{}",
        o.text
    );
}

fn hover_and_calls() {
    let p = &*SHARED;
    let o = p.ok(
        "lsp_hover",
        json!({"path": "app/src/main.rs", "line": 8, "column": 6}),
    );
    assert!(
        o.text
            .contains("pub fn total_area(shapes: &[&dyn Shape]) -> f64"),
        "{}",
        o.text
    );
    assert!(
        o.text.contains("The sum of the areas."),
        "the doc comment: {}",
        o.text
    );
    let o = p.ok(
        "lsp_incoming_calls",
        json!({"path": "shapes/src/lib.rs", "symbol": "total_area"}),
    );
    let callers: Vec<&str> = o.structured["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(callers, ["report"], "{}", o.text);
    let o = p.ok(
        "lsp_outgoing_calls",
        json!({"path": "app/src/main.rs", "symbol": "report"}),
    );
    assert!(o.text.contains("total_area"), "{}", o.text);
}

fn symbols() {
    let p = &*SHARED;
    let o = p.ok("lsp_document_symbols", json!({"path": "shapes/src/lib.rs"}));
    for want in ["interface Shape", "  method area", "function total_area"] {
        assert!(o.text.contains(want), "{want:?} in {}", o.text);
    }
    let o = p.ok("lsp_workspace_symbols", json!({"query": "Circle"}));
    assert!(
        places(&o).contains(&("shapes/src/circle.rs".to_string(), 3)),
        "{}",
        o.text
    );
}

fn rename_is_a_patch_touching_every_use() {
    let p = &*SHARED;
    let before = std::fs::read_to_string(p.root.join("app/src/main.rs")).unwrap();
    let o = p.ok(
        "lsp_rename",
        json!({"path": "shapes/src/circle.rs", "line": 3, "column": 12, "new_name": "Disk"}),
    );
    let files: Vec<&str> = o.structured["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        files.contains(&"shapes/src/circle.rs") && files.contains(&"app/src/main.rs"),
        "{}",
        o.text
    );
    assert!(o.text.contains("+use shapes::circle::Disk;"), "{}", o.text);
    assert!(
        o.text.contains("+    let c = Disk { r: 1.0 };"),
        "{}",
        o.text
    );
    assert_eq!(
        std::fs::read_to_string(p.root.join("app/src/main.rs")).unwrap(),
        before,
        "nothing written"
    );
}

fn code_actions_come_as_diffs() {
    let p = &*SHARED;
    let before = std::fs::read_to_string(p.root.join("app/src/main.rs")).unwrap();
    // on `c` of `let c = Circle { r: 1.0 };`: rust-analyzer offers to write its type
    let o = p.ok(
        "lsp_code_actions",
        json!({"path": "app/src/main.rs", "line": 6, "column": 9}),
    );
    assert!(
        o.text.contains("+    let c: Circle = Circle { r: 1.0 };"),
        "{}",
        o.text
    );
    assert_eq!(
        std::fs::read_to_string(p.root.join("app/src/main.rs")).unwrap(),
        before,
        "nothing applied"
    );
}

fn diagnostics_are_fresh_after_an_edit() {
    let p = project(json!({"capabilities": {"fs.write": "allow"}}));
    let clean = p.ok("lsp_diagnostics", json!({"path": "app/src/main.rs"}));
    assert_eq!(clean.structured["diagnostics"], json!([]), "{}", clean.text);
    // broken by another program (the file changes under the server), asked at once
    let path = p.root.join("app/src/main.rs");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("Circle { r: 1.0 }", "Circle { r: \"one\" }"),
    )
    .unwrap();
    let o = p.ok("lsp_diagnostics", json!({"path": "app/src/main.rs"}));
    let errors: Vec<&Value> = o.structured["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["line"] == 6 && d["severity"] == "error")
        .collect();
    assert!(!errors.is_empty(), "an error on line 6: {}", o.text);
    assert_eq!(o.structured["fresh"], true);
    // the project's diagnostics hold it too
    let all = p.ok("lsp_diagnostics", json!({}));
    assert!(
        all.structured["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["path"] == "app/src/main.rs" && d["line"] == 6),
        "{}",
        all.text
    );
    // fixed through edit_file (the tool the agent uses), asked at once
    p.ok(
        "edit_file",
        json!({"path": "app/src/main.rs", "edits": [{"oldText": "r: \"one\"", "newText": "r: 1.0"}]}),
    );
    let o = p.ok("lsp_diagnostics", json!({"path": "app/src/main.rs"}));
    assert_eq!(
        o.structured["diagnostics"],
        json!([]),
        "cleared: {}",
        o.text
    );
}

fn an_edit_from_outside_to_another_file_is_seen() {
    let p = project(json!({}));
    let clean = p.ok("lsp_diagnostics", json!({"path": "app/src/main.rs"}));
    assert_eq!(clean.structured["diagnostics"], json!([]), "{}", clean.text);
    // another program renames the function in the other crate; main.rs itself is unchanged
    let lib = p.root.join("shapes/src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(
        &lib,
        text.replace("pub fn total_area(", "pub fn sum_of_areas("),
    )
    .unwrap();
    let started = std::time::Instant::now();
    loop {
        let o = p.ok("lsp_diagnostics", json!({"path": "app/src/main.rs"}));
        let seen = o.structured["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["line"] == 3 || d["line"] == 8);
        if seen {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 30,
            "the rename in lib.rs never reached main.rs's diagnostics: {}",
            o.text
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn a_location_behind_a_symlink_out_of_the_root_is_not_read() {
    let p = project(json!({}));
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.rs");
    std::fs::write(
        &secret,
        "pub fn secret() -> u32 {\n    4242 // SECRET-CONTENT\n}\n",
    )
    .unwrap();
    // a module of the workspace that is a link to a file outside the root
    std::os::unix::fs::symlink(&secret, p.root.join("shapes/src/secret.rs")).unwrap();
    let lib = p.root.join("shapes/src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, format!("pub mod secret;\n{text}")).unwrap();
    let main = p.root.join("app/src/main.rs");
    let text = std::fs::read_to_string(&main).unwrap().replace(
        "println!(\"{}\", report());",
        "println!(\"{} {}\", report(), shapes::secret::secret());",
    );
    std::fs::write(&main, &text).unwrap();
    let line = text
        .lines()
        .position(|l| l.contains("secret::secret()"))
        .unwrap()
        + 1;
    let column = text
        .lines()
        .nth(line - 1)
        .unwrap()
        .rfind("secret()")
        .unwrap()
        + 1;
    let o = p.ok(
        "lsp_definition",
        json!({"path": "app/src/main.rs", "line": line, "column": column}),
    );
    let got = places(&o);
    assert_eq!(got.len(), 1, "{}", o.text);
    assert!(got[0].0.ends_with("secret.rs"), "{}", o.text);
    assert!(
        !o.text.contains("SECRET-CONTENT"),
        "nothing outside the roots is read: {}",
        o.text
    );
    assert!(
        o.text.contains("(outside the roots: not shown)"),
        "{}",
        o.text
    );
}

fn while_indexing_the_answer_is_right_or_says_so() {
    // no wait at all: the first calls come while rust-analyzer loads the workspace
    let p = project(json!({"lsp": {"wait_ms": 0}}));
    let started = std::time::Instant::now();
    let mut indexing = 0;
    loop {
        match RT.block_on(p.call(
            "lsp_definition",
            json!({"path": "app/src/main.rs", "line": 8, "column": 5}),
        )) {
            Ok(o) => {
                assert_eq!(
                    places(&o),
                    [("shapes/src/lib.rs".to_string(), 11)],
                    "never a wrong or empty answer: {}",
                    o.text
                );
                break;
            }
            Err(ToolError::Failed(m)) if m.starts_with("still indexing") => {
                assert!(m.contains("retry in"), "{m}");
                indexing += 1;
            }
            Err(e) => panic!("{e}"),
        }
        assert!(
            started.elapsed().as_secs() < 180,
            "rust-analyzer never became ready"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    eprintln!("answered after {indexing} \"still indexing\" replies");
}

fn a_killed_server_is_started_again() {
    let p = project(json!({}));
    p.ok(
        "lsp_definition",
        json!({"path": "app/src/main.rs", "line": 8, "column": 5}),
    );
    let running = zeke::app::lsp::POOL.running(&p.root);
    let pid = running[0].1.pid().unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
    let o = p.ok(
        "lsp_definition",
        json!({"path": "app/src/main.rs", "line": 8, "column": 5}),
    );
    assert_eq!(
        places(&o),
        [("shapes/src/lib.rs".to_string(), 11)],
        "{}",
        o.text
    );
    let again = zeke::app::lsp::POOL.running(&p.root)[0].1.pid().unwrap();
    assert_ne!(pid, again, "a new process");
}

fn cmd_exec_deny_refuses_to_start_a_server() {
    let p = project(json!({"capabilities": {"cmd.exec": "deny"}}));
    let e = RT
        .block_on(p.call(
            "lsp_hover",
            json!({"path": "app/src/main.rs", "line": 8, "column": 5}),
        ))
        .unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("cmd.exec is denied") && m.contains("\"cmd.exec\" = \"allow\""),
        "{m}"
    );
    assert!(
        zeke::app::lsp::POOL.running(&p.root).is_empty(),
        "nothing started"
    );
    let _ = Path::new(&p.dir.path());
}

/// A C project (clangd, the second language): `add` declared in math.h, defined in math.c,
/// called from main.c; `compile_flags.txt` gives the include path.
fn c_project() -> Project {
    let p = project(json!({}));
    for (f, text) in [
        ("compile_flags.txt", "-I.\n"),
        (
            "math.h",
            "#pragma once\n/* Adds two numbers. */\nint add(int a, int b);\n",
        ),
        (
            "math.c",
            "#include \"math.h\"\n\nint add(int a, int b) {\n    return a + b;\n}\n",
        ),
        (
            "main.c",
            "#include \"math.h\"\n\nint main(void) {\n    return add(1, 2);\n}\n",
        ),
    ] {
        std::fs::write(p.root.join(f), text).unwrap();
    }
    p
}

fn clangd_answers_for_c() {
    let p = c_project();
    let o = p.ok(
        "lsp_definition",
        json!({"path": "main.c", "line": 4, "column": 12}),
    );
    let got = places(&o);
    assert!(
        got == [("math.h".to_string(), 3)] || got == [("math.c".to_string(), 3)],
        "the declaration or the definition of add: {}",
        o.text
    );
    let o = p.ok(
        "lsp_hover",
        json!({"path": "main.c", "line": 4, "column": 12}),
    );
    assert!(o.text.contains("int add(int a, int b)"), "{}", o.text);
    std::fs::write(
        p.root.join("main.c"),
        "#include \"math.h\"\n\nint main(void) {\n    return add(1, nope);\n}\n",
    )
    .unwrap();
    let o = p.ok("lsp_diagnostics", json!({"path": "main.c"}));
    assert!(
        o.structured["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["line"] == 4 && d["message"].as_str().unwrap().contains("nope")),
        "the undeclared identifier: {}",
        o.text
    );
}

fn main() {
    let args = Arguments::from_args();
    let tests: &[(&str, fn())] = &[
        ("lsp_definition_across_crates", definition_across_crates),
        (
            "lsp_references_and_implementations",
            references_and_implementations,
        ),
        ("lsp_hover_and_calls", hover_and_calls),
        ("lsp_symbols", symbols),
        ("lsp_code_actions_come_as_diffs", code_actions_come_as_diffs),
        (
            "lsp_a_location_behind_a_symlink_out_of_the_root_is_not_read",
            a_location_behind_a_symlink_out_of_the_root_is_not_read,
        ),
        (
            "lsp_an_edit_from_outside_to_another_file_is_seen",
            an_edit_from_outside_to_another_file_is_seen,
        ),
        (
            "lsp_rename_is_a_patch_touching_every_use",
            rename_is_a_patch_touching_every_use,
        ),
        (
            "lsp_diagnostics_are_fresh_after_an_edit",
            diagnostics_are_fresh_after_an_edit,
        ),
        (
            "lsp_while_indexing_the_answer_is_right_or_says_so",
            while_indexing_the_answer_is_right_or_says_so,
        ),
        (
            "lsp_a_killed_server_is_started_again",
            a_killed_server_is_started_again,
        ),
        (
            "lsp_cmd_exec_deny_refuses_to_start_a_server",
            cmd_exec_deny_refuses_to_start_a_server,
        ),
    ];
    let c_tests: &[(&str, fn())] = &[("lsp_clangd_answers_for_c", clangd_answers_for_c)];
    let works = |cmd: &str| {
        std::process::Command::new(cmd)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let no_skip = std::env::var("ZEKE_TEST_NO_SKIP").is_ok_and(|v| v == "1");
    let trial = |name: &'static str, f: fn(), have: bool, skip: &'static str| {
        Trial::ignorable_test(name, move || {
            if !have {
                if no_skip {
                    return Err(Failed::from(format!(
                        "{skip}, and ZEKE_TEST_NO_SKIP=1 forbids skipping"
                    )));
                }
                return Ok(Completion::ignored_with(skip));
            }
            f();
            Ok(Completion::Completed)
        })
    };
    let (ra, clangd) = (works("rust-analyzer"), works("clangd"));
    let trials = (tests.iter().map(|&(n, f)| trial(n, f, ra, SKIP)))
        .chain(
            c_tests
                .iter()
                .map(|&(n, f)| trial(n, f, clangd, SKIP_CLANGD)),
        )
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    RT.block_on(zeke::app::lsp::shutdown_all());
    conclusion.exit();
}
