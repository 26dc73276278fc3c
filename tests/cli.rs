//! The one-shot CLI commands spoken to through the real binary: what a person sees when a key
//! command fails, and which programs `zeke doctor` says Zeke will run.

use std::process::Command;

use crate::common::zeke_bin;

#[test]
fn a_failing_api_key_cmd_never_shows_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    // a key command that prints the key (to both streams) and then fails
    std::fs::write(
        &config,
        "[providers.cloud]\nkind = \"openai\"\nurl = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n\
         api_key_cmd = \"echo sk-LEAKED-1; echo sk-LEAKED-2 >&2; exit 3\"\n",
    )
    .unwrap();
    let out = Command::new(zeke_bin())
        .args(["ask", "--provider", "cloud", "hello"])
        .env("ZEKE_CONFIG", &config)
        .env_remove("ZEKE_LOG")
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{all}");
    assert!(
        all.contains("providers.cloud.api_key_cmd failed (exited with status 3)"),
        "the message names the key and the exit status: {all}"
    );
    assert!(
        !all.contains("sk-LEAKED"),
        "the key command's output was shown: {all}"
    );
}

#[test]
fn doctor_names_the_git_binary_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "").unwrap();
    let real_path = std::env::var("PATH").unwrap();
    let out = Command::new(zeke_bin())
        .arg("doctor")
        .current_dir(dir.path())
        .env("ZEKE_CONFIG", &config)
        // a relative entry first: never used
        .env("PATH", format!(".:{real_path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("git: "))
        .unwrap_or_else(|| panic!("no git line: {text}"));
    let path = line
        .split("git: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap();
    assert!(line.starts_with("ok"), "{line}");
    assert!(
        std::path::Path::new(path).is_absolute() && std::path::Path::new(path).ends_with("git"),
        "{line}"
    );
}
