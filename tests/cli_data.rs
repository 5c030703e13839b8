//! `mouton data` end to end, on the real Quick, Draw! sample where it is present.

use assert_cmd::Command;
use predicates::prelude::*;

fn mouton() -> Command {
    Command::new(mouton_tests::mouton_bin())
}

#[test]
fn rasterize_matches_googles_sheep_bitmaps() {
    let Some(qd) = mouton_tests::quickdraw_sample() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sheep.npy");
    mouton()
        .args(["data", "rasterize"])
        .arg(qd.join("simplified_ndjson_first25/sheep.ndjson"))
        .arg("-o")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("25 drawings at 28x28"));
    let ours = mouton_data::read_npy_bitmaps(&out).unwrap();
    let google = std::fs::read(qd.join("bitmap28_uint8/sheep.bin")).unwrap();
    assert_eq!((ours.len(), ours.side), (25, 28));
    let (mut abs, mut within) = (0u64, 0u64);
    for (a, b) in ours.data.iter().zip(&google[..25 * 784]) {
        let d = (*a as i32 - *b as i32).unsigned_abs() as u64;
        abs += d;
        within += (d <= 16) as u64;
    }
    let (mae, share) = (abs as f64 / (25.0 * 784.0), within as f64 / (25.0 * 784.0));
    println!(
        "mouton data rasterize vs sheep.bin rows 0..24: MAE {mae:.4}, {:.3} % within +-16",
        100.0 * share
    );
    assert!(mae <= 1.0 && share >= 0.99);
}

#[test]
fn show_writes_a_grid_png() {
    let Some(qd) = mouton_tests::quickdraw_sample() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("grid.png");
    mouton()
        .args(["data", "show"])
        .arg(qd.join("simplified_ndjson_first25/sheep.ndjson"))
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let png = std::fs::read(&out).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // 5 cells of 28 px and 6 gaps of 2 px each way.
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 152);
    assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 152);
}

#[test]
fn simplify_then_info_on_raw_sheep() {
    let Some(qd) = mouton_tests::quickdraw_sample() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("simple.ndjson");
    mouton()
        .args(["data", "simplify"])
        .arg(qd.join("raw_ndjson_head/sheep.ndjson"))
        .arg("-o")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("23 simplified drawings"));
    // Compare line by line with Google's own simplified file.
    let ours = std::fs::read_to_string(&out).unwrap();
    let google =
        std::fs::read_to_string(qd.join("simplified_ndjson_first25/sheep.ndjson")).unwrap();
    let same = ours
        .lines()
        .zip(google.lines())
        .filter(|(a, b)| a == b)
        .count();
    println!("mouton data simplify: {same}/23 sheep lines byte-identical to Google's");
    assert!(same >= 22, "{same}");
    mouton()
        .args(["data", "info"])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("drawings: 23"))
        .stdout(predicate::str::contains("raw (unsimplified)").not());
}

#[test]
fn bad_line_exits_2_names_file_and_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bad.ndjson");
    let good = r#"{"word":"sheep","countrycode":"FR","timestamp":"","recognized":true,"key_id":"1","drawing":[[[0,9],[0,9]]]}"#;
    std::fs::write(
        &input,
        format!("{good}\n{good}\n{{\"word\":\"sheep\",\"key_id\":\"1\"}}\n"),
    )
    .unwrap();
    let out = dir.path().join("out.npy");
    mouton()
        .args(["data", "rasterize"])
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "bad.ndjson:3: missing field `drawing`",
        ));
    assert!(!out.exists(), "no half-written output");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left"
    );

    mouton()
        .args(["data", "rasterize", "--skip-invalid"])
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .assert()
        .success()
        .stderr(predicate::str::contains("skipped 1 invalid record"))
        .stdout(predicate::str::contains("2 drawings"));
    assert_eq!(mouton_data::read_npy_bitmaps(&out).unwrap().len(), 2);
}

#[test]
fn bitmaps_need_their_flag_and_size() {
    let Some(qd) = mouton_tests::quickdraw_sample() else {
        return;
    };
    let sheep = qd.join("bitmap28_uint8/sheep.bin");
    // Detected as Google's binary format, it fails, and the error says what it may be.
    mouton()
        .args(["data", "info"])
        .arg(&sheep)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("sheep.bin at byte "))
        .stderr(predicate::str::contains("1000 images of 28x28"))
        .stderr(predicate::str::contains("--format bitmap28"));
    mouton()
        .args(["data", "info", "--format", "bitmap28"])
        .arg(&sheep)
        .assert()
        .success()
        .stdout(predicate::str::contains("images: 1000 of 28x28"))
        .stdout(predicate::str::contains("mean pixel: 45.4"));
    mouton()
        .args([
            "data",
            "rasterize",
            "--format",
            "bitmap28",
            "--size",
            "64",
            "-o",
            "/tmp/never.npy",
        ])
        .arg(&sheep)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot be rendered at 64x64"));
}

#[test]
fn synth_writes_a_deterministic_flock_and_says_it_is_synthetic() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.ndjson"), dir.path().join("b.ndjson"));
    for out in [&a, &b] {
        mouton()
            .args(["data", "synth", "-n", "50", "--seed", "9", "-o"])
            .arg(out)
            .assert()
            .success()
            .stdout(predicate::str::contains("50 synthetic sheep"))
            .stderr(predicate::str::contains("synthetic stand-ins"));
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    mouton()
        .args(["data", "info"])
        .arg(&a)
        .assert()
        .success()
        .stdout(predicate::str::contains("drawings: 50"))
        .stdout(predicate::str::contains("countries: 1 (ZZ 50)"));
}

#[test]
fn an_output_that_cannot_be_written_is_exit_1_naming_the_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("flock.ndjson");
    mouton()
        .args(["data", "synth", "-n", "3", "-o"])
        .arg(&input)
        .assert()
        .success();
    // A folder that does not exist is a usage error, found before any work.
    let missing = dir.path().join("missing/out.npy");
    mouton()
        .args(["data", "rasterize"])
        .arg(&input)
        .arg("-o")
        .arg(&missing)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing does not exist"));
    // A name the file system refuses (longer than 255 bytes) fails only at the write.
    let out = dir.path().join(format!("{}.npy", "o".repeat(300)));
    let assert = mouton()
        .args(["data", "rasterize"])
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("error: cannot write the output: "));
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert_eq!(
        stderr.matches(&*out.to_string_lossy()).count(),
        1,
        "{stderr}"
    );
    assert!(!out.exists());
}

#[test]
fn pipes_need_a_named_format_and_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let flock = dir.path().join("flock.ndjson");
    mouton()
        .args(["data", "synth", "-n", "300", "-o"])
        .arg(&flock)
        .assert()
        .success();
    let text = std::fs::read(&flock).unwrap();
    // Detecting the format used up the pipe's first bytes: it read 0 drawings and said so as
    // if the file were empty.
    mouton()
        .args(["data", "info", "/dev/stdin"])
        .write_stdin(text.clone())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/dev/stdin: not a regular file"))
        .stderr(predicate::str::contains("name its format"));
    mouton()
        .args(["data", "info", "/dev/stdin", "--format", "ndjson"])
        .write_stdin(text)
        .assert()
        .success()
        .stdout(predicate::str::contains("drawings: 300"));

    // stdout is a pipe whose reader is already gone: the process ends on SIGPIPE, like `cat`,
    // instead of panicking in println! (exit 101 and a backtrace).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(mouton_tests::mouton_bin())
        .args(["data", "info"])
        .arg(&flock)
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        // 13: SIGPIPE on Linux and the BSDs.
        assert_eq!(out.status.signal(), Some(13), "{:?}", out.status);
    }
}
