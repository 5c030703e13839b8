//! `mouton train`, `sample`, `interpolate`, `eval`, `history` end to end, on synthetic sheep and
//! on the shared real ones: files, exit codes, the NaN guard, checkpoint errors, a run killed
//! with SIGKILL that `--resume` continues, and runs stopped cleanly by SIGTERM or SIGINT.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use assert_cmd::prelude::*;
use mouton_tests::{mouton_bin, quickdraw_sample};
use predicates::prelude::*;

fn mouton() -> Command {
    Command::new(mouton_bin())
}

/// A tiny synthetic run: 72 sheep, 65 for training, batch 16: 4 steps per epoch.
fn tiny(dir: &Path) -> Command {
    let mut c = mouton();
    c.args([
        "train",
        "--synthetic-count",
        "72",
        "--batch-size",
        "16",
        "--seed",
        "3",
        "--run-dir",
    ])
    .arg(dir);
    c
}

#[test]
fn train_then_sample_interpolate_history_eval() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    tiny(&run)
        .args(["--epochs", "1"])
        .assert()
        .success()
        .stderr(predicate::str::contains("synthetic"))
        .stdout(predicate::str::contains("epoch 1 done"));
    for f in [
        "config.toml",
        "metrics.jsonl",
        "loss.png",
        "samples/epoch_001.png",
        "checkpoints/step_000000004.safetensors",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        cfg.contains("batch_size = 16") && cfg.contains("loss = \"nsgan\""),
        "{cfg}"
    );

    let grid = tmp.path().join("grid.png");
    mouton()
        .arg("sample")
        .arg(&run)
        .args(["-n", "9", "-o"])
        .arg(&grid)
        .assert()
        .success();
    let img = image::open(&grid).unwrap();
    assert_eq!(
        (img.width(), img.height()),
        (3 * 28 + 4 * 2, 3 * 28 + 4 * 2)
    );
    // The same sheep as uint8 rows: what the grid shows, cell by cell, in a file mouton reads.
    let rows = tmp.path().join("sheep.npy");
    mouton()
        .arg("sample")
        .arg(&run)
        .args(["-n", "9", "-o"])
        .arg(&rows)
        .assert()
        .success()
        .stdout(predicate::str::contains("9 sheep (uint8, 9 x 784)"));
    let b = mouton_data::read_npy_bitmaps(&rows).unwrap();
    assert_eq!((b.len(), b.side), (9, 28));
    let g = img.to_luma8();
    for i in 0..9 {
        let (x0, y0) = (2 + 30 * (i as u32 % 3), 2 + 30 * (i as u32 / 3));
        for (j, &v) in b.image(i).iter().enumerate() {
            let (x, y) = (j as u32 % 28, j as u32 / 28);
            assert_eq!(g.get_pixel(x0 + x, y0 + y).0[0], v, "sheep {i}, pixel {j}");
        }
    }
    mouton()
        .args(["data", "info"])
        .arg(&rows)
        .assert()
        .success()
        .stdout(predicate::str::contains("images: 9 of 28x28"));

    let strip = tmp.path().join("strip.png");
    mouton()
        .arg("interpolate")
        .arg(&run)
        .args(["--steps", "5", "-o"])
        .arg(&strip)
        .assert()
        .success();
    assert_eq!(image::open(&strip).unwrap().width(), 5 * 28 + 6 * 2);

    // Grids too big to hold (a huge -n aborted on a failed allocation) and outputs that cannot
    // be written as asked are refused before the generator runs.
    for (cmd, args, name, says) in [
        (
            "sample",
            vec!["-n", "65537"],
            "a.png",
            "-n 65537: a grid holds 1 to 65536",
        ),
        (
            "sample",
            vec!["-n", "0"],
            "a.png",
            "-n 0: a grid holds 1 to 65536",
        ),
        (
            "interpolate",
            vec!["--steps", "1000", "--rows", "1000"],
            "a.png",
            "--steps 1000 x --rows 1000",
        ),
        (
            "sample",
            vec![],
            "a.jpg",
            "sample writes a grid (name it *.png) or the images as uint8 rows (*.npy), not .jpg",
        ),
        (
            "sample",
            vec!["-n", "16777217"],
            "a.npy",
            "-n 16777217: a .npy holds 1 to 16777216",
        ),
        ("sample", vec![], "no/a.npy", "does not exist"),
        ("interpolate", vec![], "no/a.png", "does not exist"),
        ("history", vec![], "a.npy", "writes PNG"),
    ] {
        let out = tmp.path().join(name);
        mouton()
            .arg(cmd)
            .arg(&run)
            .args(args)
            .arg("-o")
            .arg(&out)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(says));
        assert!(!out.exists());
    }
    // An edited config.toml that no longer validates is named, not a panic in the grid code.
    let cfg_path = run.join("config.toml");
    let saved = std::fs::read_to_string(&cfg_path).unwrap();
    std::fs::write(
        &cfg_path,
        saved.replace("image_size = 28", "image_size = 64"),
    )
    .unwrap();
    mouton()
        .arg("sample")
        .arg(&run)
        .args(["-o"])
        .arg(tmp.path().join("edited.png"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "config.toml: image_size: 32 and 64 px",
        ));
    std::fs::write(&cfg_path, saved).unwrap();
    // A name the file system refuses fails at the write: exit 1, as in the data commands.
    for ext in ["png", "npy"] {
        let long = tmp.path().join(format!("{}.{ext}", "g".repeat(300)));
        mouton()
            .arg("sample")
            .arg(&run)
            .arg("-o")
            .arg(&long)
            .assert()
            .code(1)
            .stderr(predicate::str::contains("error: cannot write the output: "));
    }

    let plot = tmp.path().join("loss.png");
    mouton()
        .arg("history")
        .arg(&run)
        .arg("-o")
        .arg(&plot)
        .assert()
        .success()
        .stdout(predicate::str::contains("epoch").and(predicate::str::contains("SWD")));
    assert!(plot.is_file());

    // Evaluate against synthetic sheep written by `mouton data synth`.
    let real = tmp.path().join("real.ndjson");
    mouton()
        .args(["data", "synth", "--count", "40", "--seed", "5", "-o"])
        .arg(&real)
        .assert()
        .success();
    mouton()
        .arg("eval")
        .arg(&run)
        .arg("--real")
        .arg(&real)
        .args(["-n", "20"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("precision")
                .and(predicate::str::contains("recall"))
                .and(predicate::str::contains("real-vs-real")),
        );
    // Images from elsewhere (here `mouton sample -o *.npy`) are judged the same way.
    mouton()
        .args(["eval", "--fake"])
        .arg(&rows)
        .arg("--real")
        .arg(&real)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("sheep.npy vs")
                .and(predicate::str::contains("(9 images per side)"))
                .and(predicate::str::contains("precision")),
        );
    for (args, says) in [
        (
            vec!["--size", "32"],
            "holds 28x28 bitmaps; they cannot be rendered at 32x32",
        ),
        (vec!["--size", "30"], "--size 30: must be 28, 32 or 64"),
    ] {
        mouton()
            .args(["eval", "--fake"])
            .arg(&rows)
            .arg("--real")
            .arg(&real)
            .args(args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(says));
    }
    // A run directory or --fake, not both, not neither.
    mouton()
        .arg("eval")
        .arg(&run)
        .arg("--fake")
        .arg(&rows)
        .arg("--real")
        .arg(&real)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot be used with"));
    mouton()
        .args(["eval", "--real"])
        .arg(&real)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("required arguments"));
}

#[test]
fn trains_on_the_shared_real_sheep() {
    let Some(qd) = quickdraw_sample() else { return };
    let run = |format: &[&str], dir: &std::path::Path| {
        mouton()
            .args([
                "train",
                "--max-steps",
                "2",
                "--batch-size",
                "16",
                "--quiet",
                "--data",
            ])
            .arg(qd.join("bitmap28_uint8/sheep.bin"))
            .args(format)
            .arg("--run-dir")
            .arg(dir)
            .assert()
    };
    let tmp = tempfile::tempdir().unwrap();
    // Headerless bitmaps are never detected; the error says which flag reads them, and
    // `--format` (as the other commands spell it) is the same flag as `--data-format`.
    run(&[], &tmp.path().join("undetected"))
        .code(2)
        .stderr(predicate::str::contains("--format bitmap28"));
    assert!(!tmp.path().join("undetected").exists());
    run(&["--format", "bitmap28"], &tmp.path().join("alias")).success();
    run(&["--data-format", "bitmap28"], tmp.path()).success();
    assert!(tmp
        .path()
        .join("checkpoints/step_000000002.safetensors")
        .is_file());
    let metrics = std::fs::read_to_string(tmp.path().join("metrics.jsonl")).unwrap();
    assert_eq!(
        metrics
            .lines()
            .filter(|l| l.contains("\"kind\":\"step\""))
            .count(),
        2
    );
}

#[test]
fn nan_in_a_loss_stops_with_exit_1_and_names_the_step() {
    let tmp = tempfile::tempdir().unwrap();
    tiny(tmp.path())
        .args(["--epochs", "2", "--debug-inject-nan-at-step", "6"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "step 6: critic loss is not finite",
        ));
    assert!(tmp
        .path()
        .join("checkpoints/step_000000004.safetensors")
        .is_file());
    assert!(!tmp
        .path()
        .join("checkpoints/step_000000008.safetensors")
        .exists());
}

#[test]
fn bad_settings_and_corrupt_checkpoints_are_exit_2_with_the_file_named() {
    let tmp = tempfile::tempdir().unwrap();
    mouton()
        .args(["train", "--batch-size", "0", "--run-dir"])
        .arg(tmp.path().join("z"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("batch_size"));
    for (flag, field) in [("--epochs", "epochs"), ("--max-steps", "max_steps")] {
        let dir = tmp.path().join(field);
        mouton()
            .args(["train", flag, "0", "--run-dir"])
            .arg(&dir)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!(
                "{field}: must be at least 1"
            )));
        assert!(!dir.exists(), "a refused run leaves no directory");
    }
    // Sizes whose product overflowed (a panic in debug builds, a division by zero in release)
    // or that asked for terabytes at the first epoch's end are refused before any work.
    for (text, says) in [
        (
            "batch_size = 4611686018427387904\nn_critic = 4\n",
            "batch_size: must be at most 65536",
        ),
        ("n_critic = 1000000000\n", "n_critic: must be at most 100"),
        (
            "swd_projections = 1000000000000\n",
            "swd_projections: must be 1 to 65536",
        ),
    ] {
        let cfg = tmp.path().join("sizes.toml");
        std::fs::write(&cfg, text).unwrap();
        let dir = tmp.path().join("sizes");
        mouton()
            .args(["train", "--run-dir"])
            .arg(&dir)
            .arg("--config")
            .arg(&cfg)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(says));
        assert!(!dir.exists(), "a refused run leaves no directory");
    }
    // A file where the run directory should go; the error said the I/O cause twice, exit 1.
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    mouton()
        .args(["train", "--run-dir"])
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("a-file is a file, not a folder"));
    // Too many synthetic sheep to hold is refused up front; it aborted on a failed allocation.
    for (size, most) in [("28", "1369568 at 28x28"), ("64", "262144 at 64x64")] {
        let dir = tmp.path().join(format!("huge{size}"));
        mouton()
            .args([
                "train",
                "--synthetic-count",
                "1000000000000",
                "--image-size",
                size,
            ])
            .args(["--generator", "dcgan-g", "--critic", "dcgan-d", "--run-dir"])
            .arg(&dir)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!(
                "synthetic_count: must be 1 to {most} px"
            )));
        assert!(!dir.exists(), "a refused run leaves no directory");
    }
    let cfg = tmp.path().join("c.toml");
    std::fs::write(&cfg, "epochs = 1\nlearning_rate = 3\n").unwrap();
    mouton()
        .args(["train", "--run-dir"])
        .arg(tmp.path().join("x"))
        .arg("--config")
        .arg(&cfg)
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("c.toml:2").and(predicate::str::contains("learning_rate")),
        );
    mouton()
        .args(["train", "--device", "cuda", "--run-dir"])
        .arg(tmp.path().join("y"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("CUDA"));

    let run = tmp.path().join("run");
    tiny(&run)
        .args(["--epochs", "1", "--quiet"])
        .assert()
        .success();
    let cp = run.join("checkpoints/step_000000004.safetensors");
    std::fs::write(&cp, b"not a checkpoint at all").unwrap();
    mouton()
        .args(["train", "--resume", "--epochs", "2", "--run-dir"])
        .arg(&run)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("step_000000004.safetensors"));
    mouton()
        .arg("sample")
        .arg(&run)
        .args(["-o"])
        .arg(tmp.path().join("s.png"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a valid safetensors"));
    // Changing settings on resume is refused.
    mouton()
        .args(["train", "--resume", "--batch-size", "8", "--run-dir"])
        .arg(&run)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("may change, not batch_size"));
}

#[test]
fn a_run_killed_with_sigkill_resumes_to_the_same_end() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    // A pseudo-random kill time from the clock: over many CI runs it lands everywhere, in a
    // step, in a checkpoint write, between epochs.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let delay = Duration::from_millis(800 + nanos % 2500);
    let mut child = tiny(&run)
        .args(["--epochs", "6", "--quiet"])
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    child.kill().unwrap(); // SIGKILL on Unix
    let _ = child.wait();
    eprintln!("killed after {delay:?}");
    // Whatever was on disk is consistent: no temporary files are mistaken for checkpoints,
    // and --resume finishes the run.
    tiny(&run)
        .args(["--epochs", "6", "--quiet"])
        .arg("--resume")
        .assert()
        .success();
    assert!(run.join("checkpoints/step_000000024.safetensors").is_file());
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let steps: Vec<u64> = metrics
        .lines()
        .filter(|l| l.contains("\"kind\":\"step\""))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["step"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(
        steps,
        (1..=24).collect::<Vec<_>>(),
        "every step recorded once, in order"
    );
    // Resuming a finished run (or asking for fewer epochs) trains nothing, and says so.
    for epochs in ["6", "2"] {
        tiny(&run)
            .args(["--epochs", epochs, "--resume"])
            .assert()
            .success()
            .stdout(predicate::str::contains("no step to train"))
            .stderr(predicate::str::contains(
                "the run already has 24 steps and epochs/max_steps ask for",
            ));
    }
    assert_eq!(
        std::fs::read_to_string(run.join("metrics.jsonl")).unwrap(),
        metrics
    );
}

#[test]
fn a_step_capped_run_resumed_with_epochs_alone_trains_its_whole_epochs() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    // A smoke test of 3 steps stops inside epoch 1 (4 steps) and says so.
    tiny(&run)
        .args(["--epochs", "2", "--max-steps", "3"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "epoch 1 stopped after 3 of its 4 steps (step 3",
        ));
    // --epochs alone lifts the saved cap, and says so.
    tiny(&run)
        .args(["--epochs", "2", "--resume"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "the saved max_steps = 3 no longer caps the run",
        ))
        .stdout(
            predicate::str::contains("epoch 1 done (step 4")
                .and(predicate::str::contains("epoch 2 done (step 8")),
        );
    assert!(run.join("checkpoints/step_000000008.safetensors").is_file());
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(!cfg.contains("max_steps"), "{cfg}");

    // Epoch 1 has two records (steps 3 and 4): each history row averages its own steps.
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let d_losses: Vec<f64> = metrics
        .lines()
        .filter(|l| l.contains("\"kind\":\"step\""))
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["d_loss"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_eq!(d_losses.len(), 8);
    let out = mouton()
        .arg("history")
        .arg(&run)
        .arg("-o")
        .arg(tmp.path().join("loss.png"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<(u64, u64, f64)> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f[0].parse().ok()?, f[1].parse().ok()?, f[2].parse().ok()?))
        })
        .collect();
    let mean =
        |r: std::ops::Range<usize>| r.clone().map(|i| d_losses[i]).sum::<f64>() / r.len() as f64;
    let want = [(1, 3, mean(0..3)), (1, 4, mean(0..4)), (2, 8, mean(4..8))];
    assert_eq!(rows.len(), want.len(), "{table}");
    for ((e, s, d), (we, ws, wd)) in rows.iter().zip(want) {
        assert_eq!((*e, *s), (we, ws), "{table}");
        assert!((d - wd).abs() < 1e-4, "{table}: {d} vs {wd}");
    }
}

#[test]
fn the_vae_preset_trains_and_samples() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("vae");
    mouton()
        .args([
            "train",
            "--preset",
            "vae",
            "--synthetic-count",
            "72",
            "--batch-size",
            "16",
        ])
        .args(["--epochs", "1", "--quiet", "--run-dir"])
        .arg(&run)
        .assert()
        .success();
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        cfg.contains("loss = \"vae\"") && cfg.contains("generator = \"vae\""),
        "{cfg}"
    );
    let grid = tmp.path().join("g.png");
    mouton()
        .arg("sample")
        .arg(&run)
        .args(["-n", "4", "-o"])
        .arg(&grid)
        .assert()
        .success();
    mouton()
        .arg("interpolate")
        .arg(&run)
        .args(["--steps", "3", "-o"])
        .arg(tmp.path().join("s.png"))
        .assert()
        .success();
    // The decoded latent plane: 5 x 5 cells of 28 px with 2 px between and around them.
    let map = tmp.path().join("map.png");
    mouton()
        .arg("sample")
        .arg(&run)
        .args(["--latent-map", "5", "-o"])
        .arg(&map)
        .assert()
        .success()
        .stdout(predicate::str::contains("a 5 x 5 map of the latent plane"));
    let im = image::open(&map).unwrap().to_luma8();
    assert_eq!(im.dimensions(), (152, 152));
    let cell = |i: u32, j: u32| -> Vec<u8> {
        let (x, y) = (2 + j * 30, 2 + i * 30);
        (0..28 * 28)
            .map(|k| im.get_pixel(x + k % 28, y + k / 28)[0])
            .collect()
    };
    assert!(
        cell(0, 0) != cell(4, 4),
        "opposite corners of the plane decode alike"
    );
    for (args, msg) in [
        (
            &["--latent-map", "1"][..],
            "invalid value '1' for '--latent-map",
        ),
        (&["--latent-map", "4", "-n", "9"], "cannot be used with"),
    ] {
        mouton()
            .arg("sample")
            .arg(&run)
            .args(args)
            .arg("-o")
            .arg(tmp.path().join("no.png"))
            .assert()
            .code(2)
            .stderr(predicate::str::contains(msg));
    }
    // A GAN's 128-D latent space has no map.
    let gan = tmp.path().join("gan");
    tiny(&gan)
        .args(["--max-steps", "1", "--quiet"])
        .assert()
        .success();
    mouton()
        .arg("sample")
        .arg(&gan)
        .args(["--latent-map", "4", "-o"])
        .arg(tmp.path().join("no.png"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "generator has 128 latent dimensions; a map needs 2",
        ));
    assert!(!tmp.path().join("no.png").exists());
    // A GAN loss with the VAE preset is refused.
    mouton()
        .args(["train", "--preset", "vae", "--loss", "hinge", "--run-dir"])
        .arg(tmp.path().join("x"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("vae"));
}

#[test]
fn dcgan_trains_at_32_px_and_other_sizes_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run32");
    tiny(&run)
        .args([
            "--generator",
            "dcgan-g",
            "--critic",
            "dcgan-d",
            "--image-size",
            "32",
            "--max-steps",
            "2",
        ])
        .assert()
        .success();
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(cfg.contains("image_size = 32"), "{cfg}");
    // The per-epoch grid holds 32 px cells (8 columns, 2 px gaps).
    let grid = image::open(run.join("samples/epoch_001.png")).unwrap();
    assert_eq!(grid.width(), 8 * 32 + 9 * 2);
    let out = tmp.path().join("s.png");
    mouton()
        .arg("sample")
        .arg(&run)
        .args(["-n", "4", "-o"])
        .arg(&out)
        .assert()
        .success();
    assert_eq!(image::open(&out).unwrap().width(), 2 * 32 + 3 * 2);
    // Real drawings are rasterized at the run's size for `eval`.
    let real = tmp.path().join("real.ndjson");
    mouton()
        .args(["data", "synth", "--count", "40", "--seed", "5", "-o"])
        .arg(&real)
        .assert()
        .success();
    mouton()
        .arg("eval")
        .arg(&run)
        .arg("--real")
        .arg(&real)
        .args(["-n", "20"])
        .assert()
        .success()
        .stdout(predicate::str::contains("precision"));

    for (args, msg) in [
        (
            vec!["--image-size", "64"],
            "image_size: 32 and 64 px are for the DCGAN pair",
        ),
        (
            vec![
                "--generator",
                "dcgan-g",
                "--critic",
                "dcgan-d",
                "--image-size",
                "48",
            ],
            "image_size: must be 28, 32 or 64",
        ),
    ] {
        tiny(&tmp.path().join("refused"))
            .args(args)
            .args(["--max-steps", "1"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(msg));
    }
}

/// `--tensorboard` writes an event file per training session in the run directory (their
/// content is checked in mouton-train); it may be switched on resume.
#[test]
fn tensorboard_event_files_come_and_go_with_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let event_files = || {
        std::fs::read_dir(&run)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with("events.out.tfevents.")
            })
            .count()
    };
    let config = || std::fs::read_to_string(run.join("config.toml")).unwrap();
    tiny(&run)
        .args(["--max-steps", "1", "--quiet"])
        .assert()
        .success();
    assert_eq!(event_files(), 0);
    assert!(config().contains("tensorboard = false"), "{}", config());
    tiny(&run)
        .args(["--resume", "--max-steps", "2", "--tensorboard", "--quiet"])
        .assert()
        .success();
    assert_eq!(event_files(), 1);
    assert!(config().contains("tensorboard = true"), "{}", config());
    tiny(&run)
        .args([
            "--resume",
            "--max-steps",
            "3",
            "--tensorboard",
            "false",
            "--quiet",
        ])
        .assert()
        .success();
    assert_eq!(event_files(), 1);
    tiny(&run)
        .args(["--resume", "--max-steps", "4", "--tensorboard", "maybe"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "invalid value 'maybe' for '--tensorboard",
        ));
}

/// `--step` and `--epoch` pick an earlier checkpoint for sample, interpolate and eval; a pick
/// that is not on disk says which are.
#[test]
fn sample_interpolate_and_eval_read_the_checkpoint_of_a_step_or_an_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    // 4 steps per epoch, 4 epochs, the newest 3 kept: steps 8, 12, 16.
    tiny(&run)
        .args(["--epochs", "4", "--quiet"])
        .assert()
        .success();
    let grid = |which: &[&str], name: &str| {
        let out = tmp.path().join(name);
        let assert = mouton()
            .arg("sample")
            .arg(&run)
            .args(["-n", "4", "-o"])
            .arg(&out)
            .args(which)
            .assert()
            .success();
        let said = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
        (std::fs::read(&out).unwrap(), said)
    };
    let (newest, said) = grid(&[], "newest.png");
    assert!(said.contains("step-16 generator"), "{said}");
    let (epoch3, said) = grid(&["--epoch", "3"], "epoch3.png");
    assert!(said.contains("step-12 generator"), "{said}");
    let (step12, _) = grid(&["--step", "12"], "step12.png");
    let (step16, _) = grid(&["--step", "16"], "step16.png");
    assert!(epoch3 == step12, "--epoch 3 is step 12's checkpoint");
    assert!(step16 == newest);
    assert!(epoch3 != newest, "an earlier generator draws other sheep");

    mouton()
        .arg("interpolate")
        .arg(&run)
        .args(["--epoch", "2", "-o"])
        .arg(tmp.path().join("strip.png"))
        .assert()
        .success()
        .stdout(predicate::str::contains("step-8 generator"));
    let real = tmp.path().join("real.npy");
    mouton()
        .args(["sample", "-n", "40", "--seed", "9", "-o"])
        .arg(&real)
        .arg(&run)
        .assert()
        .success();
    mouton()
        .arg("eval")
        .arg(&run)
        .args(["--step", "8", "-n", "20", "--real"])
        .arg(&real)
        .assert()
        .success()
        .stdout(predicate::str::contains("step-8 generator vs"));

    let fails = |which: &[&str], msg: &str| {
        mouton()
            .arg("sample")
            .arg(&run)
            .args(["-o"])
            .arg(tmp.path().join("no.png"))
            .args(which)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(msg));
        assert!(!tmp.path().join("no.png").exists());
    };
    fails(
        &["--epoch", "1"],
        "epoch 1 ended at step 4, whose checkpoint is gone; there are steps 8 (epoch 2), 12 \
         (epoch 3), 16 (epoch 4)",
    );
    fails(
        &["--step", "9"],
        "no checkpoint of step 9; there are steps 8",
    );
    fails(
        &["--epoch", "5"],
        "epoch 5 was not reached (the run has epochs 1 to 4)",
    );
    fails(&["--epoch", "0"], "invalid value '0' for '--epoch");
    fails(&["--epoch", "2", "--step", "8"], "cannot be used with");
    mouton()
        .args(["eval", "--step", "8", "--fake"])
        .arg(&real)
        .arg("--real")
        .arg(&real)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot be used with"));
}

/// Starts `cmd` and waits for its "training on" line (the signal handlers are in place by
/// then); stdout goes on being read so that the run never blocks on a full pipe.
#[cfg(unix)]
fn start_training(mut cmd: Command) -> std::process::Child {
    use std::io::BufRead;
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("training on") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("the run never started training");
    child
}

#[cfg(unix)]
fn send(child: &std::process::Child, signal: i32) {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
}

#[cfg(unix)]
fn stderr_of(child: std::process::Child) -> (Option<i32>, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// FIDLE's fully connected pair on 400 synthetic sheep, batch 16: 22 fast steps per epoch.
#[cfg(unix)]
fn mlp_run(dir: &Path) -> Command {
    let mut c = mouton();
    c.args([
        "train",
        "--generator",
        "mlp-g",
        "--critic",
        "mlp-d",
        "--synthetic-count",
        "400",
        "--batch-size",
        "16",
        "--epochs",
        "50",
        "--seed",
        "5",
        "--run-dir",
    ])
    .arg(dir);
    c
}

#[cfg(unix)]
#[test]
fn sigterm_stops_at_a_step_with_a_checkpoint_that_resumes_to_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, straight) = (tmp.path().join("run"), tmp.path().join("straight"));
    let child = start_training(mlp_run(&run));
    // While it trains, a second training in its directory is refused before any work.
    mlp_run(&run)
        .arg("--resume")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is in use by another training"));
    send(&child, libc::SIGTERM);
    let (code, stderr) = stderr_of(child);
    assert_eq!(code, Some(128 + 15), "{stderr}");
    assert!(stderr.contains("SIGTERM: finishing this step"), "{stderr}");
    let step: u64 = stderr
        .split("stopped by SIGTERM after step ")
        .nth(1)
        .and_then(|t| t.split(':').next())
        .and_then(|k| k.parse().ok())
        .unwrap_or_else(|| panic!("no step in: {stderr}"));
    assert!(step < 1100, "the run of 1,100 steps stopped early");
    let saved = run.join(format!("checkpoints/step_{step:09}.safetensors"));
    assert!(saved.is_file(), "{stderr}");
    assert!(
        stderr.contains(&format!("checkpoint {}", saved.display())),
        "{stderr}"
    );
    assert!(stderr.contains("--resume"), "{stderr}");
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let steps = metrics
        .lines()
        .filter(|l| l.contains("\"kind\":\"step\""))
        .count();
    assert_eq!(
        steps as u64, step,
        "every step up to the stop recorded once"
    );

    // Resumed for three more steps, it ends on the bytes of a run that was never stopped.
    let end = (step + 3).to_string();
    mlp_run(&run)
        .args(["--resume", "--max-steps", &end, "--quiet"])
        .assert()
        .success();
    mlp_run(&straight)
        .args(["--max-steps", &end, "--quiet"])
        .assert()
        .success();
    let last = format!("checkpoints/step_{:09}.safetensors", step + 3);
    assert!(
        std::fs::read(run.join(&last)).unwrap() == std::fs::read(straight.join(&last)).unwrap(),
        "stopped at step {step} and resumed: different weights"
    );
}

/// `mouton train | tee log`, then Ctrl-C: the terminal's SIGINT stops `tee` too, so the run's
/// stdout is a pipe nobody reads. Its progress lines then fail, which must neither end the
/// training (SIGPIPE's default) nor panic (`println!`), and the stop still writes its
/// checkpoint.
#[cfg(unix)]
#[test]
fn a_closed_stdout_neither_kills_nor_panics_a_training_and_its_stop_still_saves() {
    use std::io::BufRead;
    use std::process::Stdio;
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let mut child = mlp_run(&run)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.starts_with("training on")));
    drop(lines);
    // Each epoch (22 steps) starts with a line: let some of them fail.
    let metrics = run.join("metrics.jsonl");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while std::fs::read_to_string(&metrics).map_or(0, |m| m.matches("\"kind\":\"epoch\"").count())
        < 3
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no progress after stdout closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    send(&child, libc::SIGINT);
    let (code, stderr) = stderr_of(child);
    assert_eq!(code, Some(128 + 2), "{stderr}");
    assert!(
        stderr.contains("warning: writing to standard output: Broken pipe"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("stopped by SIGINT after step"), "{stderr}");
    let saved = std::fs::read_dir(run.join("checkpoints")).unwrap().count();
    assert!(saved >= 1, "{stderr}");
}

/// Output that cannot be written (here a full disk) is an error naming standard output, not a
/// panic; a training's results are its run directory, so it goes on and succeeds.
#[cfg(target_os = "linux")]
#[test]
fn a_full_stdout_is_an_error_for_a_command_and_a_warning_for_a_training() {
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    tiny(&run)
        .args(["--max-steps", "2"])
        .stdout(full())
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "warning: writing to standard output: No space left on device",
        ))
        .stderr(predicate::str::contains("panicked").not());
    assert!(run.join("checkpoints/step_000000002.safetensors").is_file());
    mouton()
        .args(["history", "-o"])
        .arg(tmp.path().join("loss.png"))
        .arg(&run)
        .stdout(full())
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "error: writing to standard output: No space left on device",
        ))
        .stderr(predicate::str::contains("panicked").not());
    // An error that cannot be reported keeps its exit code.
    mouton()
        .args(["history", "-o", "x.png"])
        .arg(tmp.path().join("nothing"))
        .stderr(full())
        .assert()
        .code(2);
}

#[cfg(unix)]
#[test]
fn a_second_sigint_quits_at_once_checkpoint_every_saves_inside_epochs_and_sample_stops_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    // SHEEP1 steps of 256 images take seconds: both signals land in the first one.
    let mut cmd = mouton();
    cmd.args(["train", "--batch-size", "256", "--run-dir"])
        .arg(&run);
    let child = start_training(cmd);
    send(&child, libc::SIGINT);
    std::thread::sleep(Duration::from_millis(100));
    send(&child, libc::SIGINT);
    let (code, stderr) = stderr_of(child);
    assert_eq!(code, Some(128 + 2), "{stderr}");
    assert!(
        stderr.contains("SIGINT: a second stop signal, quitting now"),
        "{stderr}"
    );
    assert!(!run.join("checkpoints/step_000000001.safetensors").exists());

    // --checkpoint-every: mid-epoch checkpoints, announced; resume may change it.
    let every = tmp.path().join("every");
    mlp_run(&every)
        .args(["--max-steps", "7", "--checkpoint-every", "3"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("step 3: checkpoint")
                .and(predicate::str::contains("step 6: checkpoint")),
        );
    let cfg = std::fs::read_to_string(every.join("config.toml")).unwrap();
    assert!(cfg.contains("checkpoint_every = 3"), "{cfg}");
    mlp_run(&every)
        .args([
            "--resume",
            "--max-steps",
            "9",
            "--checkpoint-every",
            "2",
            "--quiet",
        ])
        .assert()
        .success();
    let listed: Vec<String> = std::fs::read_dir(every.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        listed.contains(&"step_000000008.safetensors".to_string()),
        "{listed:?}"
    );
    // Ctrl-C stops a long `sample` between chunks, leaving nothing behind.
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let child = mouton()
        .arg("sample")
        .arg(&every)
        .args(["-n", "16777216", "-o"])
        .arg(out.join("many.npy"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    send(&child, libc::SIGINT);
    let (code, stderr) = stderr_of(child);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains("stopped by SIGINT: nothing written"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        0,
        "left in the folder"
    );

    mlp_run(&tmp.path().join("zero"))
        .args(["--checkpoint-every", "0"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "checkpoint_every: must be at least 1",
        ));
}

/// `--ema`: the moving average draws by default (and says so), `--trained-weights` draws with
/// the generator's own weights; `history` shows both distances; the decay is checked, may
/// change on `--resume`, and a run without an average may start one there.
#[test]
fn a_run_with_a_moving_average_draws_with_it_unless_told() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    // 96 sheep: 10 held out, enough for the epoch's distances; 86 to train on, 5 steps.
    let train = |dir: &Path| {
        let mut c = mouton();
        c.args([
            "train",
            "--synthetic-count",
            "96",
            "--batch-size",
            "16",
            "--run-dir",
        ])
        .arg(dir);
        c
    };
    train(&run)
        .args(["--epochs", "1", "--ema"])
        .assert()
        .success()
        .stdout(predicate::str::contains("(trained weights 0."));
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(cfg.contains("ema = 0.999"), "{cfg}");
    let grid = |extra: &[&str], name: &str| {
        let out = tmp.path().join(name);
        let assert = mouton()
            .arg("sample")
            .arg(&run)
            .args(["-n", "64", "-o"])
            .arg(&out)
            .args(extra)
            .assert()
            .success();
        let said = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
        (std::fs::read(&out).unwrap(), said)
    };
    let (avg, said) = grid(&[], "avg.png");
    assert!(
        said.contains("from the step-5 generator's moving average (seed 0)"),
        "{said}"
    );
    let (trained, said) = grid(&["--trained-weights"], "trained.png");
    assert!(
        said.contains("from the step-5 generator (seed 0)"),
        "{said}"
    );
    assert!(avg != trained);
    mouton()
        .arg("history")
        .arg(&run)
        .arg("-o")
        .arg(tmp.path().join("loss.png"))
        .assert()
        .success()
        .stdout(predicate::str::contains("trained SWD"));
    mouton()
        .args(["eval", "--trained-weights", "--fake"])
        .arg(tmp.path().join("x.npy"))
        .arg("--real")
        .arg(tmp.path().join("y.npy"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot be used with"));

    // On resume the decay may change, and a run without an average may start one.
    train(&run)
        .args(["--resume", "--epochs", "2", "--ema", "0.99"])
        .assert()
        .success();
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(cfg.contains("ema = 0.99\n"), "{cfg}");
    let plain = tmp.path().join("plain");
    train(&plain).args(["--epochs", "1"]).assert().success();
    train(&plain)
        .args(["--resume", "--epochs", "2", "--ema"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "holds no moving average of the generator: the average (ema) starts from its \
             step-5 weights",
        ));
    mouton()
        .arg("sample")
        .arg(&plain)
        .args(["-n", "4", "-o"])
        .arg(tmp.path().join("plain.png"))
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "from the step-10 generator's moving average",
        ));
    let other = tmp.path().join("other");
    train(&other)
        .args(["--epochs", "1", "--ema", "1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("ema: the decay must be in (0, 1)"));
    assert!(!other.join("config.toml").exists());
}
