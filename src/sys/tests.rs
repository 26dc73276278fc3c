//! Tests of `sys`: `$PATH` lookup, time limits, process groups.

use super::*;

#[test]
fn only_absolute_path_entries_are_searched() {
    let dir = tempfile::tempdir().unwrap();
    let abs = dir.path().join("abs");
    let rel = dir.path().join("rel");
    for d in [&abs, &rel] {
        std::fs::create_dir(d).unwrap();
    }
    let planted = rel.join("tool");
    std::fs::write(&planted, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        &planted,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // a relative entry ("rel", ".", "") is never searched, whatever the working directory
    let path_var =
        std::env::join_paths([Path::new(""), Path::new("."), Path::new("rel"), &abs]).unwrap();
    assert_eq!(find_in("tool", &path_var), None);
    // an absolute entry is, and only an executable file counts
    let real = abs.join("tool");
    std::fs::write(&real, "#!/bin/sh\n").unwrap();
    assert_eq!(find_in("tool", &path_var), None, "not executable");
    std::fs::set_permissions(&real, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    assert_eq!(find_in("tool", &path_var), Some(real));
}

#[test]
fn a_capture_keeps_the_first_and_last_bytes() {
    let mut c = Capture::new(6);
    c.push(b"ab");
    c.push(b"cd");
    assert_eq!(
        c.take(),
        Captured {
            head: b"abc".to_vec(),
            tail: b"d".to_vec(),
            total: 4
        },
        "under the cap: all of it, head then tail"
    );
    let mut c = Capture::new(6);
    for chunk in [&b"0123"[..], b"456789", b"a", b"bcdefghij"] {
        c.push(chunk);
    }
    let got = c.take();
    assert_eq!((got.total, got.cut()), (20, 14));
    assert_eq!((got.head, got.tail), (b"012".to_vec(), b"hij".to_vec()));
}

#[test]
fn relative_program_paths_are_refused() {
    for p in ["./git", "sub/git", ""] {
        assert!(matches!(resolve(p), Err(SysError::NotFound { .. })), "{p}");
    }
    assert_eq!(resolve("/bin/sh").unwrap(), PathBuf::from("/bin/sh"));
}

/// A program that records SIGTERM in `marker` and then exits; SIGKILL would leave no marker.
fn trapping(marker: &Path) -> String {
    format!(
        "trap 'echo term > {}; exit 0' TERM; sleep 30 & wait",
        marker.display()
    )
}

fn wait_for(marker: &Path) -> bool {
    for _ in 0..200 {
        if marker.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

#[tokio::test]
async fn a_time_out_asks_the_program_to_stop_before_killing_it() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("termed");
    let line = trapping(&marker);
    let r = run("sh", &["-c", &line], None, Duration::from_millis(300)).await;
    assert!(matches!(r, Err(SysError::Timeout { .. })), "{r:?}");
    assert!(
        wait_for(&marker),
        "the program got SIGTERM (git removes its lock then)"
    );
}

#[tokio::test]
async fn a_dropped_call_asks_the_program_to_stop() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("termed");
    let line = trapping(&marker);
    let task = tokio::spawn(async move {
        let _ = run("sh", &["-c", &line], None, Duration::from_secs(60)).await;
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    task.abort();
    let _ = task.await;
    assert!(
        wait_for(&marker),
        "a cancelled call ends its program gracefully"
    );
}
