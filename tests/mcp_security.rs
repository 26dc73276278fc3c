//! The confinement suite: every CVE class of the reference servers (prefix match, symlink escape,
//! `..`, absolute paths, a symlink swapped in during a write, git flag injection, `git_add` outside
//! the repository, a repository outside the roots), each refused with a message naming its rule,
//! and no side effect outside the roots.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::mcp::{Mcp, Opts, git_env, repo};

struct World {
    _t: tempfile::TempDir,
    base: PathBuf,
    root: PathBuf,
    outside: PathBuf,
}

/// base/root (the only root, a git repo), base/root_evil (prefix sibling), base/outside (secrets),
/// base/outside_repo (another repo), base/big (a repo enclosing base/big/sub), symlinks inside
/// the root pointing out.
fn world() -> World {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().canonicalize().unwrap();
    let root = repo(&base.join("root"));
    let outside = base.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "TOP SECRET").unwrap();
    std::fs::create_dir_all(base.join("root_evil")).unwrap();
    std::fs::write(base.join("root_evil/secret.txt"), "EVIL SECRET").unwrap();
    repo(&base.join("outside_repo"));
    repo(&base.join("big"));
    std::fs::create_dir_all(base.join("big/sub")).unwrap();
    symlink(&outside, root.join("link_out")).unwrap();
    symlink(outside.join("secret.txt"), root.join("file_link")).unwrap();
    symlink(
        outside.join("created_through_dangling"),
        root.join("dangling"),
    )
    .unwrap();
    std::fs::write(root.join("inside.txt"), "inside").unwrap();
    World {
        _t: t,
        base,
        root,
        outside,
    }
}

fn server(w: &World) -> Mcp {
    Mcp::start(
        &w.base,
        Opts {
            roots: vec![&w.root],
            env: git_env(),
            ..Opts::default()
        },
    )
}

/// Asserts a refusal naming `rule` (and never the secret).
fn refused(m: &mut Mcp, tool: &str, args: Value, rule: &str) {
    let (err, body, _) = m.call(tool, args.clone());
    assert!(err, "{tool} {args} was not refused: {body}");
    assert!(
        body.contains(&format!("(rule {rule})")),
        "{tool} {args}: expected rule {rule}, got: {body}"
    );
    assert!(!body.contains("SECRET"), "{tool} leaked a secret: {body}");
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn paths_outside_the_roots_are_refused() {
    let w = world();
    let mut m = server(&w);
    let (root, base) = (&w.root, &w.base);
    // prefix match (CVE class: /allowed admitting /allowed_evil)
    refused(
        &mut m,
        "read_text_file",
        json!({"path": s(&base.join("root_evil/secret.txt"))}),
        "outside-roots",
    );
    refused(
        &mut m,
        "list_directory",
        json!({"path": s(&base.join("root_evil"))}),
        "outside-roots",
    );
    refused(
        &mut m,
        "write_file",
        json!({"path": s(&base.join("root_evil/new.txt")), "content": "x"}),
        "outside-roots",
    );
    refused(
        &mut m,
        "read_text_file",
        json!({"path": "../root_evil/secret.txt"}),
        "dotdot-escape",
    );
    // absolute paths
    refused(
        &mut m,
        "read_text_file",
        json!({"path": "/etc/passwd"}),
        "outside-roots",
    );
    refused(
        &mut m,
        "get_file_info",
        json!({"path": "/etc"}),
        "outside-roots",
    );
    refused(
        &mut m,
        "read_media_file",
        json!({"path": s(&w.outside.join("secret.txt"))}),
        "outside-roots",
    );
    refused(
        &mut m,
        "search_files",
        json!({"path": "/", "pattern": "secret.txt"}),
        "outside-roots",
    );
    refused(
        &mut m,
        "directory_tree",
        json!({"path": s(base)}),
        "outside-roots",
    );
    // `..`
    refused(
        &mut m,
        "read_text_file",
        json!({"path": "../outside/secret.txt"}),
        "dotdot-escape",
    );
    refused(
        &mut m,
        "read_text_file",
        json!({"path": format!("{}/../outside/secret.txt", s(root))}),
        "dotdot-escape",
    );
    // escaping through a missing directory reads like any other escape
    refused(
        &mut m,
        "create_directory",
        json!({"path": "nope/../../outside/made"}),
        "dotdot-escape",
    );
    refused(
        &mut m,
        "create_directory",
        json!({"path": "nope/../made"}),
        "tail-dotdot",
    );
    refused(
        &mut m,
        "write_file",
        json!({"path": "../outside/new.txt", "content": "x"}),
        "dotdot-escape",
    );
    refused(
        &mut m,
        "move_file",
        json!({"source": "inside.txt", "destination": "../outside/moved.txt"}),
        "dotdot-escape",
    );
    refused(
        &mut m,
        "move_file",
        json!({"source": s(&w.outside.join("secret.txt")), "destination": "stolen.txt"}),
        "outside-roots",
    );
    refused(
        &mut m,
        "move_file",
        json!({"source": s(root), "destination": s(&base.join("moved_root"))}),
        "outside-roots",
    );
    refused(
        &mut m,
        "read_text_file",
        json!({"path": "inside\u{0}.txt"}),
        "bad-path",
    );
    // read_multiple_files reports the refusal for one path and still reads the other
    let (err, body, _) = m.call(
        "read_multiple_files",
        json!({"paths": ["inside.txt", s(&w.outside.join("secret.txt"))]}),
    );
    assert!(
        !err && body.contains("inside.txt:\ninside")
            && body.contains("(rule outside-roots)")
            && !body.contains("SECRET"),
        "{body}"
    );
    assert!(
        !w.outside.join("new.txt").exists()
            && !w.outside.join("moved.txt").exists()
            && !w.outside.join("made").exists()
    );
    assert!(!base.join("root_evil/new.txt").exists() && !root.join("stolen.txt").exists());
    assert!(root.join("inside.txt").exists() && w.outside.join("secret.txt").exists());
}

#[test]
fn symlinks_pointing_out_are_refused() {
    let w = world();
    let mut m = server(&w);
    refused(
        &mut m,
        "read_text_file",
        json!({"path": "link_out/secret.txt"}),
        "symlink-escape",
    );
    refused(
        &mut m,
        "read_text_file",
        json!({"path": "file_link"}),
        "symlink-escape",
    );
    let (_, body, _) = m.call("read_multiple_files", json!({"paths": ["file_link"]}));
    assert!(
        body.contains("(rule symlink-escape)") && !body.contains("SECRET"),
        "{body}"
    );
    refused(
        &mut m,
        "list_directory",
        json!({"path": "link_out"}),
        "symlink-escape",
    );
    refused(
        &mut m,
        "search_files",
        json!({"path": "link_out", "pattern": "*"}),
        "symlink-escape",
    );
    refused(
        &mut m,
        "write_file",
        json!({"path": "link_out/new.txt", "content": "x"}),
        "symlink-escape",
    );
    refused(
        &mut m,
        "write_file",
        json!({"path": "file_link", "content": "overwritten"}),
        "symlink-escape",
    );
    refused(
        &mut m,
        "write_file",
        json!({"path": "dangling", "content": "x"}),
        "symlink-escape",
    );
    refused(
        &mut m,
        "edit_file",
        json!({"path": "file_link", "edits": [{"oldText": "TOP", "newText": "NOT"}]}),
        "symlink-escape",
    );
    refused(
        &mut m,
        "create_directory",
        json!({"path": "link_out/newdir"}),
        "symlink-escape",
    );
    refused(
        &mut m,
        "move_file",
        json!({"source": "inside.txt", "destination": "link_out/moved.txt"}),
        "symlink-escape",
    );
    refused(
        &mut m,
        "get_file_info",
        json!({"path": "file_link"}),
        "symlink-escape",
    );
    // walks never follow links out
    let (err, body, _) = m.call(
        "search_files",
        json!({"path": ".", "pattern": "**/secret*"}),
    );
    assert!(!err && body == "No matches found", "{body}");
    let (err, body, _) = m.call("directory_tree", json!({"path": "."}));
    assert!(!err && !body.contains("secret.txt"), "{body}");
    assert_eq!(
        std::fs::read_to_string(w.outside.join("secret.txt")).unwrap(),
        "TOP SECRET"
    );
    assert_eq!(
        std::fs::read_dir(&w.outside).unwrap().count(),
        1,
        "nothing created outside"
    );
}

#[test]
fn git_arguments_never_become_options() {
    let w = world();
    let mut m = server(&w);
    let r = s(&w.root);
    let pwn = s(&w.outside.join("pwned"));
    refused(
        &mut m,
        "git_diff",
        json!({"repo_path": r, "target": format!("--output={pwn}")}),
        "git-option",
    );
    refused(
        &mut m,
        "git_show",
        json!({"repo_path": r, "revision": format!("--output={pwn}")}),
        "git-option",
    );
    refused(
        &mut m,
        "git_log",
        json!({"repo_path": r, "start_timestamp": format!("--output={pwn}")}),
        "git-option",
    );
    refused(
        &mut m,
        "git_log",
        json!({"repo_path": r, "end_timestamp": "-p"}),
        "git-option",
    );
    refused(
        &mut m,
        "git_checkout",
        json!({"repo_path": r, "branch_name": "-f"}),
        "git-option",
    );
    refused(
        &mut m,
        "git_create_branch",
        json!({"repo_path": r, "branch_name": "--track"}),
        "git-option",
    );
    refused(
        &mut m,
        "git_create_branch",
        json!({"repo_path": r, "branch_name": "ok", "base_branch": "--orphan"}),
        "git-option",
    );
    refused(
        &mut m,
        "git_branch",
        json!({"repo_path": r, "branch_type": "local", "contains": "--exec=x"}),
        "git-option",
    );
    refused(
        &mut m,
        "git_add",
        json!({"repo_path": r, "files": ["--all"]}),
        "git-option",
    );
    refused(
        &mut m,
        "git_status",
        json!({"repo_path": format!("-C{}", s(&w.base.join("outside_repo")))}),
        "git-option",
    );
    assert!(!w.outside.join("pwned").exists());
    let branches = crate::mcp::git(&w.root, &["branch", "--list"]);
    assert_eq!(branches.trim(), "* main", "no branch was created");
}

#[test]
fn repositories_and_staged_paths_stay_inside() {
    let w = world();
    let mut m = server(&w);
    let r = s(&w.root);
    // git_add outside the repository
    refused(
        &mut m,
        "git_add",
        json!({"repo_path": r, "files": ["../outside/secret.txt"]}),
        "outside-repo",
    );
    refused(
        &mut m,
        "git_add",
        json!({"repo_path": r, "files": ["/etc/passwd"]}),
        "outside-repo",
    );
    refused(
        &mut m,
        "git_add",
        json!({"repo_path": r, "files": ["link_out/secret.txt"]}),
        "outside-repo",
    );
    refused(
        &mut m,
        "git_add",
        json!({"repo_path": r, "files": [".git/config"]}),
        "outside-repo",
    );
    // repository outside the roots
    refused(
        &mut m,
        "git_status",
        json!({"repo_path": s(&w.base.join("outside_repo"))}),
        "outside-roots",
    );
    refused(
        &mut m,
        "git_log",
        json!({"repo_path": "../outside_repo"}),
        "dotdot-escape",
    );
    refused(
        &mut m,
        "git_status",
        json!({"repo_path": "link_out"}),
        "symlink-escape",
    );
    let staged = crate::mcp::git(&w.root, &["diff", "--cached", "--name-only"]);
    assert_eq!(staged, "", "nothing was staged");
    let (err, body, _) = m.call("git_status", json!({"repo_path": r}));
    assert!(
        !err && body.starts_with("Repository status:\nOn branch main"),
        "{body}"
    );
    // a root inside a bigger repository: git would walk up out of the root
    let sub = w.base.join("big/sub");
    let mut m2 = Mcp::start(
        &w.base,
        Opts {
            roots: vec![&sub],
            ..Opts::default()
        },
    );
    refused(
        &mut m2,
        "git_status",
        json!({"repo_path": s(&sub)}),
        "repo-outside-roots",
    );
    refused(
        &mut m2,
        "git_add",
        json!({"repo_path": s(&sub), "files": ["."]}),
        "repo-outside-roots",
    );
}

#[test]
fn a_symlink_swapped_in_during_writes_never_escapes() {
    let w = world();
    let mut m = server(&w);
    let swap = w.root.join("swap");
    let real_dir = w.root.join("swap_real");
    std::fs::create_dir_all(&real_dir).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flipper = {
        let (stop, swap, real_dir, outside) = (
            stop.clone(),
            swap.clone(),
            real_dir.clone(),
            w.outside.clone(),
        );
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::fs::remove_file(&swap);
                let target = if n.is_multiple_of(2) {
                    &real_dir
                } else {
                    &outside
                };
                let _ = symlink(target, &swap);
                n += 1;
            }
            n
        })
    };
    let (mut ok, mut refused_n) = (0, 0);
    for i in 0..300 {
        let (err, body, _) = m.call(
            "write_file",
            json!({"path": "swap/f.txt", "content": format!("{i}")}),
        );
        if err {
            assert!(
                body.contains("(rule ")
                    || body.contains("No such file")
                    || body.contains("does not exist"),
                "{body}"
            );
            refused_n += 1;
        } else {
            ok += 1;
        }
        let (_, body, _) = m.call("read_text_file", json!({"path": "swap/secret.txt"}));
        assert!(
            !body.contains("SECRET"),
            "read through the swapped link: {body}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let flips = flipper.join().unwrap();
    assert!(
        flips > 10,
        "the link flipped during the writes ({flips} flips)"
    );
    assert!(
        !w.outside.join("f.txt").exists(),
        "a write escaped through the swapped symlink ({ok} ok, {refused_n} refused)"
    );
    assert!(refused_n > 0, "the swap was observed at least once");
    assert_eq!(
        std::fs::read_dir(&w.outside).unwrap().count(),
        1,
        "no temp file left outside"
    );
}

#[test]
fn git_config_cannot_be_planted_or_run() {
    let w = world();
    let mut m = server(&w);
    let hook = "#!/bin/sh\ntouch \"$0.ran\"\n";
    refused(
        &mut m,
        "write_file",
        json!({"path": ".git/config", "content": "[core]\n\tfsmonitor = /tmp/x\n"}),
        "git-internals",
    );
    refused(
        &mut m,
        "write_file",
        json!({"path": ".git/hooks/pre-commit", "content": hook}),
        "git-internals",
    );
    refused(
        &mut m,
        "create_directory",
        json!({"path": ".git/hooks/x"}),
        "git-internals",
    );
    refused(
        &mut m,
        "edit_file",
        json!({"path": ".git/HEAD", "edits": [{"oldText": "main", "newText": "x"}]}),
        "git-internals",
    );
    std::fs::write(w.root.join("hook.sh"), hook).unwrap();
    refused(
        &mut m,
        "move_file",
        json!({"source": "hook.sh", "destination": ".git/hooks/post-commit"}),
        "git-internals",
    );
    refused(
        &mut m,
        "move_file",
        json!({"source": ".git/config", "destination": "config.txt"}),
        "git-internals",
    );
    // a repository whose own config asks for hooks, fsmonitor and signing programs: none run
    let marker = w.outside.join("ran");
    let prog = w.base.join("prog.sh");
    std::fs::write(
        &prog,
        format!("#!/bin/sh\ntouch {}\nexit 1\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(&prog, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let p = prog.display().to_string();
    for (k, v) in [
        ("core.fsmonitor", p.as_str()),
        ("core.hooksPath", w.base.to_str().unwrap()),
        ("commit.gpgSign", "true"),
        ("gpg.program", p.as_str()),
    ] {
        crate::mcp::git(&w.root, &["config", k, v]);
    }
    std::fs::copy(&prog, w.base.join("pre-commit")).unwrap();
    let r = s(&w.root);
    let (err, body, _) = m.call("git_add", json!({"repo_path": r, "files": ["hook.sh"]}));
    assert!(!err, "{body}");
    let (err, body, _) = m.call(
        "git_commit",
        json!({"repo_path": r, "message": "no programs"}),
    );
    assert!(!err, "{body}");
    let (err, body, _) = m.call("git_status", json!({"repo_path": r}));
    assert!(!err, "{body}");
    assert!(
        !marker.exists(),
        "a program named in the repository's config ran"
    );
}

#[test]
fn a_planted_git_never_runs_whatever_path_says() {
    // PATH with an empty entry, `.` and a relative entry first: the OS would resolve those against
    // the working directory git runs in — the repository, which a client with fs.write fills.
    let w = world();
    let marker = w.outside.join("planted-git-ran");
    let fake = format!("#!/bin/sh\ntouch {}\necho planted\n", marker.display());
    for dir in [w.root.clone(), w.root.join("bin")] {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("git"), &fake).unwrap();
        std::fs::set_permissions(
            dir.join("git"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
    }
    let real_path = std::env::var("PATH").unwrap();
    let mut env = git_env();
    env.push(("PATH", format!(":.:bin:{real_path}")));
    let mut m = Mcp::start(
        &w.base,
        Opts {
            roots: vec![&w.root],
            env,
            ..Opts::default()
        },
    );
    let r = s(&w.root);
    let (err, body, _) = m.call("git_status", json!({"repo_path": r}));
    assert!(!err, "{body}");
    assert!(
        body.contains("On branch main") && !body.contains("planted"),
        "the real git answered: {body}"
    );
    let (err, body, _) = m.call("git_log", json!({"repo_path": r, "max_count": 1}));
    assert!(!err && body.contains("first"), "{body}");
    assert!(!marker.exists(), "a git from a relative PATH entry ran");
}

#[test]
fn a_git_moved_into_a_path_directory_after_start_never_runs() {
    // An absolute PATH entry inside the root, ahead of the real git, with no git in it at start;
    // an executable the client renames to `git` there must not be what the git tools run.
    let w = world();
    let bin = w.root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let marker = w.outside.join("moved-git-ran");
    std::fs::write(
        bin.join("tool"),
        format!("#!/bin/sh\ntouch {}\necho planted\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(
        bin.join("tool"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut env = git_env();
    env.push((
        "PATH",
        format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
    ));
    // no git config file anywhere, so nothing runs git at start but the resolution itself
    env.push(("GIT_CONFIG_SYSTEM", "/dev/null".into()));
    env.push((
        "XDG_CONFIG_HOME",
        w.base.join("no-config").display().to_string(),
    ));
    let mut m = Mcp::start(
        &w.base,
        Opts {
            roots: vec![&w.root],
            env,
            ..Opts::default()
        },
    );
    let (err, body, _) = m.call(
        "move_file",
        json!({"source": "bin/tool", "destination": "bin/git"}),
    );
    assert!(!err, "{body}");
    let (err, body, _) = m.call("git_status", json!({"repo_path": s(&w.root)}));
    assert!(!err && !body.contains("planted"), "{body}");
    assert!(!marker.exists(), "the git moved into PATH after start ran");
}

#[test]
fn protected_files_are_never_changed_even_inside_a_root() {
    // `zeke mcp --root ~`: the root holds $HOME, with git's global and XDG config (one including
    // another file), Zeke's own config, grant store and audit log.
    let t = tempfile::tempdir().unwrap();
    let home = t.path().canonicalize().unwrap();
    let repo_dir = repo(&home.join("src/app"));
    let marker = home.join("filter-ran");
    let prog = home.join("prog.sh");
    std::fs::write(
        &prog,
        format!("#!/bin/sh\ntouch {}\ncat\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(&prog, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let gitconfig =
        "[include]\n\tpath = ~/.gitinc\n[includeIf \"gitdir:~/my work/\"]\n\tpath = work inc.cfg\n";
    std::fs::write(home.join(".gitconfig"), gitconfig).unwrap();
    std::fs::write(home.join(".gitinc"), "[user]\n\tname = x\n").unwrap();
    let mut env: Vec<(&str, String)> = git_env()
        .into_iter()
        .filter(|(k, _)| *k != "GIT_CONFIG_GLOBAL")
        .collect();
    for (k, v) in [
        ("HOME", home.display().to_string()),
        (
            "XDG_CONFIG_HOME",
            home.join(".config").display().to_string(),
        ),
        (
            "XDG_STATE_HOME",
            home.join(".local/state").display().to_string(),
        ),
    ] {
        env.push((k, v));
    }
    let mut m = Mcp::start(
        &home,
        Opts {
            roots: vec![&home],
            env,
            ..Opts::default()
        },
    );
    let config = std::fs::read_dir(&home)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("config-") && n.ends_with(".toml"))
        .expect("the test harness wrote the server's config into the root");
    let audit = m.audit.file_name().unwrap().to_string_lossy().into_owned();
    let filter = format!("[filter \"x\"]\n\tclean = {}\n", prog.display());
    for path in [
        ".gitconfig",                    // git's global config
        ".gitinc",                       // a file it includes
        "work inc.cfg",                  // one it includes under a condition with a space
        ".config/git/config",            // git's XDG config, not there yet: creating it counts
        &config,                         // Zeke's config: the policy itself
        &audit,                          // the audit log
        ".local/state/zeke/grants.json", // the grant store
    ] {
        refused(
            &mut m,
            "write_file",
            json!({"path": path, "content": filter}),
            "protected-path",
        );
        std::fs::write(home.join("tmp.txt"), "x").unwrap();
        refused(
            &mut m,
            "move_file",
            json!({"source": "tmp.txt", "destination": path}),
            "protected-path",
        );
    }
    refused(
        &mut m,
        "edit_file",
        json!({"path": ".gitconfig", "edits": [{"oldText": "include", "newText": "x"}]}),
        "protected-path",
    );
    refused(
        &mut m,
        "create_directory",
        json!({"path": ".config/git/config"}),
        "protected-path",
    );
    // moving a directory that holds one moves the file too
    refused(
        &mut m,
        "move_file",
        json!({"source": ".gitconfig", "destination": "old-gitconfig"}),
        "protected-path",
    );
    std::fs::create_dir_all(home.join(".config/zeke")).unwrap();
    refused(
        &mut m,
        "move_file",
        json!({"source": ".config", "destination": "old-config"}),
        "protected-path",
    );
    // other spellings of .git
    for path in [
        "src/app/.GIT/config",
        "src/app/.git./config",
        "src/app/GIT~1/config",
    ] {
        refused(
            &mut m,
            "write_file",
            json!({"path": path, "content": filter}),
            "git-internals",
        );
    }
    // reading stays as the policy says
    let (err, body, _) = m.call("read_text_file", json!({"path": ".gitconfig"}));
    assert!(!err && body.contains("include"), "{body}");
    // and after git tools run, no program named anywhere ran
    std::fs::write(repo_dir.join("b.txt"), "b\n").unwrap();
    std::fs::write(repo_dir.join(".gitattributes"), "*.txt filter=x\n").unwrap();
    let r = s(&repo_dir);
    let (err, body, _) = m.call("git_add", json!({"repo_path": r, "files": ["b.txt"]}));
    assert!(!err, "{body}");
    let (err, body, _) = m.call("git_status", json!({"repo_path": r}));
    assert!(!err, "{body}");
    assert!(!marker.exists(), "a program from a planted git config ran");
    assert_eq!(
        std::fs::read_to_string(home.join(".gitconfig")).unwrap(),
        gitconfig
    );
}

#[test]
fn client_roots_narrow_and_never_widen() {
    let w = world();
    let sub = w.root.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(sub.join("in_sub.txt"), "sub").unwrap();
    let uris = [url_of(&sub), url_of(&w.outside)];
    let responder: crate::mcp::Responder = Box::new(move |method, _| {
        assert_eq!(method, "roots/list");
        json!({"roots": uris.iter().map(|u| json!({"uri": u})).collect::<Vec<_>>()})
    });
    let mut m = Mcp::start(
        &w.base,
        Opts {
            roots: vec![&w.root],
            capabilities: json!({"roots": {"listChanged": true}}),
            responder: Some(responder),
            ..Opts::default()
        },
    );
    let (err, body, _) = m.call(
        "read_text_file",
        json!({"path": s(&sub.join("in_sub.txt"))}),
    );
    assert!(!err && body == "sub", "{body}");
    refused(
        &mut m,
        "read_text_file",
        json!({"path": s(&w.root.join("inside.txt"))}),
        "client-roots",
    );
    refused(
        &mut m,
        "read_text_file",
        json!({"path": s(&w.outside.join("secret.txt"))}),
        "outside-roots",
    );
    let (_, body, _) = m.call("list_allowed_directories", json!({}));
    assert_eq!(body, format!("Allowed directories:\n{}", s(&sub)));
    assert_eq!(m.server_requests, ["roots/list"]);
}

fn url_of(p: &Path) -> String {
    format!("file://{}", p.display())
}
