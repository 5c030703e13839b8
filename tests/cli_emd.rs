//! `mouton emd` end to end: output format, exit codes, error messages.

use assert_cmd::Command;
use predicates::prelude::*;

fn mouton() -> Command {
    Command::new(mouton_tests::mouton_bin())
}

#[test]
fn slides_example_prints_trace_and_distance() {
    let out = mouton()
        .args(["emd", "--p", "3,2,1,4", "--q", "1,2,4,3", "--trace"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    let deltas: Vec<&str> = lines[1..5]
        .iter()
        .map(|l| l.split_whitespace().last().unwrap())
        .collect();
    assert_eq!(deltas, ["2", "2", "-1", "0"]);
    assert_eq!(lines[5], "W = 5");
}

#[test]
fn without_trace_prints_only_the_distance() {
    mouton()
        .args(["emd", "--p", "3,2,1,4", "--q", "1,2,4,3"])
        .assert()
        .success()
        .stdout("W = 5\n");
    mouton()
        .args([
            "emd",
            "--p",
            "1,0,0",
            "--q",
            "0,0,1",
            "--positions",
            "0,3,10",
        ])
        .assert()
        .success()
        .stdout("W = 10\n");
}

#[test]
fn samples_from_files_full_precision() {
    let dir = tempfile::tempdir().unwrap();
    let (u, v, uw, vw) = (
        dir.path().join("u"),
        dir.path().join("v"),
        dir.path().join("uw"),
        dir.path().join("vw"),
    );
    std::fs::write(&u, "3.4 3.9\n7.5 7.8\n").unwrap();
    std::fs::write(&v, "4.5 1.4").unwrap();
    std::fs::write(&uw, "1.4 0.9 3.1 7.2").unwrap();
    std::fs::write(&vw, "3.2 3.5").unwrap();
    let out = mouton()
        .arg("emd")
        .arg("--u-file")
        .arg(&u)
        .arg("--v-file")
        .arg(&v)
        .arg("--u-weights")
        .arg(&uw)
        .arg("--v-weights")
        .arg(&vw)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let w: f64 = text.trim().strip_prefix("W = ").unwrap().parse().unwrap();
    // scipy.stats.wasserstein_distance's documented value
    assert!((w - 4.078_133_143_804_786).abs() < 1e-14, "{text}");

    // W2 between (0, 1, 3) and (5, 6, 8) is 5, also from files saved with a UTF-8 byte order
    // mark and CRLF (as some Windows editors save text).
    for (a, b) in [("0 1 3", "5 6 8"), ("\u{feff}0 1 3\r\n", "\u{feff}5 6 8")] {
        std::fs::write(&u, a).unwrap();
        std::fs::write(&v, b).unwrap();
        mouton()
            .arg("emd")
            .arg("--u-file")
            .arg(&u)
            .arg("--v-file")
            .arg(&v)
            .args(["--order", "2"])
            .assert()
            .success()
            .stdout("W = 5\n");
    }
}

fn fails_with(args: &[&str], needle: &str) {
    mouton()
        .args(args)
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(needle))
        .stderr(predicate::str::contains("panicked").not());
}

#[test]
fn bad_input_exits_2_with_one_clear_line() {
    fails_with(
        &["emd", "--p", "3,x,1", "--q", "1,2,3"],
        "--p: entry 2 (\"x\") is not a number",
    );
    fails_with(
        &["emd", "--p", "3,-2,1", "--q", "1,2,3"],
        "p[1] = -2 is negative",
    );
    fails_with(&["emd", "--p", "1,2", "--q", "1,2,0"], "length mismatch");
    fails_with(
        &["emd", "--p", "1,2", "--q", "1,1"],
        "--p sums to 3 but --q sums to 2 (pass --normalize to compare shapes only)",
    );
    fails_with(
        &[
            "emd",
            "--u-file",
            "/nonexistent/u",
            "--v-file",
            "/nonexistent/v",
        ],
        "/nonexistent/u: cannot read",
    );
    for order in ["0.5", "inf", "NaN"] {
        fails_with(
            &[
                "emd",
                "--u-file",
                "/nonexistent/u",
                "--v-file",
                "/nonexistent/v",
                "--order",
                order,
            ],
            &format!(
                "--order {order}: the order of a Wasserstein distance must be a finite number >= 1"
            ),
        );
    }
    fails_with(&["emd", "--q", "1,2"], "--p");
    fails_with(&["emd"], "required");
}

#[test]
fn bad_file_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let u = dir.path().join("u.txt");
    std::fs::write(&u, "1 2\n3 four\n").unwrap();
    let us = u.to_str().unwrap();
    fails_with(
        &["emd", "--u-file", us, "--v-file", us],
        "u.txt:2:3: \"four\" is not a number",
    );

    let w = dir.path().join("w.txt");
    std::fs::write(&u, "1 2\n3\n").unwrap();
    std::fs::write(&w, "0.5 0.5\n\n-1\n").unwrap();
    let ws = w.to_str().unwrap();
    fails_with(
        &["emd", "--u-file", us, "--v-file", us, "--u-weights", ws],
        "w.txt:3: invalid input: u_weights[2] = -1 is negative",
    );
    std::fs::write(&w, "0.5 0.5").unwrap();
    fails_with(
        &["emd", "--u-file", us, "--v-file", us, "--u-weights", ws],
        "length mismatch: u_weights has 2 entries but u has 3",
    );
}
