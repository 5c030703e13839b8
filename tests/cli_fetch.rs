//! `mouton data fetch` against a small HTTP server of the test's own on 127.0.0.1: download,
//! resume after a dropped connection, 404, and nothing half-written.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;

use assert_cmd::Command;
use predicates::prelude::*;

fn mouton() -> Command {
    Command::new(mouton_tests::mouton_bin())
}

/// Serves at most `max_conns` requests (then stops): `body` at /full/simplified/sheep.ndjson,
/// honouring `Range: bytes=N-`; the first request is cut after `cut_first` bytes if set; every
/// other path is a 404. Returns the base URL and the Range headers seen.
fn serve(
    body: Vec<u8>,
    cut_first: Option<usize>,
    max_conns: usize,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let seen = ranges.clone();
    thread::spawn(move || {
        for (k, conn) in listener.incoming().take(max_conns).enumerate() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            let mut from = 0usize;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    seen.lock().unwrap().push(v.trim().to_string());
                    from = v.trim().trim_end_matches('-').parse().unwrap();
                }
            }
            if !request.contains(" /full/simplified/sheep.ndjson ") {
                let _ = conn.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            }
            let rest = &body[from..];
            let head = if from > 0 {
                format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {from}-{}/{}\r\nConnection: close\r\n\r\n",
                    rest.len(),
                    body.len() - 1,
                    body.len()
                )
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    rest.len()
                )
            };
            conn.write_all(head.as_bytes()).unwrap();
            let send = match (k, cut_first) {
                (0, Some(n)) => &rest[..n],
                _ => rest,
            };
            let _ = conn.write_all(send);
        }
    });
    (base, ranges)
}

fn body() -> Vec<u8> {
    (0..200_000u32).map(|i| (i % 251) as u8).collect()
}

#[test]
fn downloads_then_says_it_is_already_there() {
    let (base, ranges) = serve(body(), None, 2);
    let dir = tempfile::tempdir().unwrap();
    mouton()
        .args(["data", "fetch", "sheep", "--dir"])
        .arg(dir.path())
        .env("MOUTON_QUICKDRAW_URL", &base)
        .assert()
        .success()
        .stdout(predicate::str::contains("downloaded"))
        .stdout(predicate::str::contains("200000 bytes"));
    assert_eq!(
        std::fs::read(dir.path().join("sheep.ndjson")).unwrap(),
        body()
    );
    assert!(ranges.lock().unwrap().is_empty());
    mouton()
        .args(["data", "fetch", "sheep", "--base-url", &base, "--dir"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("already there"));
}

#[test]
fn resumes_after_a_dropped_connection() {
    let (base, ranges) = serve(body(), Some(70_000), 2);
    let dir = tempfile::tempdir().unwrap();
    mouton()
        .args(["data", "fetch", "sheep", "--base-url", &base, "--dir"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("run again to resume"));
    assert!(
        !dir.path().join("sheep.ndjson").exists(),
        "no partial file under the final name"
    );
    assert_eq!(
        std::fs::metadata(dir.path().join("sheep.ndjson.part"))
            .unwrap()
            .len(),
        70_000
    );
    mouton()
        .args(["data", "fetch", "sheep", "--base-url", &base, "--dir"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("resumed after 70000 bytes"));
    assert_eq!(ranges.lock().unwrap().as_slice(), ["70000-"]);
    assert_eq!(
        std::fs::read(dir.path().join("sheep.ndjson")).unwrap(),
        body()
    );
    assert!(!dir.path().join("sheep.ndjson.part").exists());
}

#[test]
fn unknown_category_is_bad_input() {
    let (base, _) = serve(body(), None, 1);
    let dir = tempfile::tempdir().unwrap();
    mouton()
        .args(["data", "fetch", "shep", "--base-url", &base, "--dir"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not found (HTTP 404)"))
        .stderr(predicate::str::contains("\"shep\""));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    mouton()
        .args(["data", "fetch", "../etc", "--base-url", &base])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a category name"));
}
