//! `mouton encode` and `mouton reconstruct` end to end: a VAE run's scatter, CSV and
//! reconstruction grid from given images, and the refusals (a GAN run, bad outputs and
//! inputs), which leave nothing written.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::prelude::*;
use mouton_tests::mouton_bin;
use predicates::prelude::*;

fn mouton() -> Command {
    Command::new(mouton_bin())
}

/// `n` distinct 28x28 images as a uint8 .npy: a bright block whose place and size vary.
fn blocks(path: &Path, n: usize) -> Vec<u8> {
    let mut px = vec![0u8; n * 784];
    for i in 0..n {
        let (x0, y0, s) = (2 + i % 11, 3 + (3 * i) % 9, 6 + i % 7);
        for y in y0..y0 + s {
            for x in x0..x0 + s {
                px[i * 784 + y * 28 + x] = 255 - (i as u8 % 5) * 20;
            }
        }
    }
    mouton_data::write_npy_u8(path, &px, &[n as u64, 784]).unwrap();
    px
}

fn vae_run(dir: &Path) -> PathBuf {
    vae_run_with(dir, "vae", &[])
}

fn vae_run_with(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let run = dir.join(name);
    mouton()
        .args(["train", "--preset", "vae", "--synthetic-count", "72"])
        .args(extra)
        .args([
            "--batch-size",
            "16",
            "--epochs",
            "1",
            "--quiet",
            "--run-dir",
        ])
        .arg(&run)
        .assert()
        .success();
    run
}

#[test]
fn a_vae_run_encodes_images_as_a_scatter_or_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let run = vae_run(tmp.path());
    let (a, b) = (tmp.path().join("a.npy"), tmp.path().join("b.npy"));
    blocks(&a, 12);
    blocks(&b, 4);
    let png = tmp.path().join("latent.png");
    let out = mouton()
        .arg("encode")
        .arg(&run)
        .arg("--data")
        .args([&a, &b])
        .args(["-n", "10", "--px", "300", "-o"])
        .arg(&png)
        .assert()
        .success()
        .stdout(predicate::str::contains("a scatter of the latent means"))
        .stdout(predicate::str::contains("from the step-4 generator"))
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    let line = |name: &str| {
        out.lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no line for {name}: {out}"))
            .to_string()
    };
    // -n 10 of a's 12 images; b has only 4.
    assert!(line("a.npy").contains("(blue): 10 images"), "{out}");
    assert!(line("b.npy").contains("(orange): 4 images"), "{out}");
    assert_eq!(
        image::open(&png).unwrap().to_rgb8().dimensions(),
        (300, 300)
    );

    let csv = tmp.path().join("latent.csv");
    mouton()
        .arg("encode")
        .arg(&run)
        .args(["--data"])
        .arg(&a)
        .arg("--data")
        .arg(&b)
        .args(["-n", "10", "-o"])
        .arg(&csv)
        .assert()
        .success()
        .stdout(predicate::str::contains("latent means and log-variances"));
    let text = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(
        rows[0],
        ["source", "index", "mu0", "mu1", "logvar0", "logvar1"]
    );
    assert_eq!(rows.len(), 1 + 10 + 4);
    assert!(rows[1][0].ends_with("a.npy") && rows[11][0].ends_with("b.npy"));
    assert_eq!((rows[10][1], rows[14][1]), ("9", "3"));
    // The printed centre of a's latent means is the mean of the CSV's column.
    let mu0: Vec<f64> = rows[1..11].iter().map(|r| r[2].parse().unwrap()).collect();
    let centre = mu0.iter().sum::<f64>() / 10.0;
    assert!(
        line("a.npy").contains(&format!("centred at ({centre:.3},")),
        "{centre} {out}"
    );
    // The images differ, so do their encodings.
    assert_ne!(rows[1][2..], rows[2][2..]);
}

#[test]
fn a_vae_run_reconstructs_images_below_them() {
    let tmp = tempfile::tempdir().unwrap();
    let run = vae_run(tmp.path());
    let data = tmp.path().join("blocks.npy");
    let px = blocks(&data, 9);
    let png = tmp.path().join("recon.png");
    mouton()
        .arg("reconstruct")
        .arg(&run)
        .arg("--data")
        .arg(&data)
        .args(["-n", "4", "--cols", "3", "-o"])
        .arg(&png)
        .assert()
        .success()
        .stdout(predicate::str::contains("the first 4 images of"))
        .stdout(predicate::str::contains("reconstruction BCE"))
        .stdout(predicate::str::contains("KL"));
    // Two pairs of rows of 3 cells of 28 px, 2 px between and around them.
    let im = image::open(&png).unwrap().to_luma8();
    assert_eq!(im.dimensions(), (92, 122));
    let cell = |row: u32, col: u32| -> Vec<u8> {
        let (x, y) = (2 + col * 30, 2 + row * 30);
        (0..784)
            .map(|k| im.get_pixel(x + k % 28, y + k / 28)[0])
            .collect()
    };
    // Originals in rows 0 and 2 (images 0-2, then 3), reconstructions below them.
    assert_eq!(cell(0, 0), px[..784]);
    assert_eq!(cell(0, 2), px[2 * 784..3 * 784]);
    assert_eq!(cell(2, 0), px[3 * 784..4 * 784]);
    assert_ne!(cell(1, 0), cell(0, 0));
    assert!(cell(1, 0).iter().any(|&v| v > 0), "an empty reconstruction");
    assert!(cell(2, 1).iter().all(|&v| v == 0) && cell(3, 1).iter().all(|&v| v == 0));
    // Chosen at random instead: the same seed, the same images.
    let grid = |seed: &str| {
        mouton()
            .arg("reconstruct")
            .arg(&run)
            .arg("--data")
            .arg(&data)
            .args(["-n", "3", "--seed", seed, "-o"])
            .arg(&png)
            .assert()
            .success()
            .stdout(predicate::str::contains(format!(
                "3 images chosen with seed {seed} from"
            )));
        std::fs::read(&png).unwrap()
    };
    assert_eq!(grid("5"), grid("5"));
    assert_ne!(grid("5"), grid("6"));
}

#[test]
fn encode_and_reconstruct_refuse_what_they_cannot_do_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let run = vae_run(tmp.path());
    let data = tmp.path().join("blocks.npy");
    blocks(&data, 3);
    let gan = tmp.path().join("gan");
    mouton()
        .args(["train", "--generator", "mlp-g", "--critic", "mlp-d"])
        .args([
            "--synthetic-count",
            "72",
            "--batch-size",
            "16",
            "--max-steps",
            "1",
        ])
        .args(["--quiet", "--run-dir"])
        .arg(&gan)
        .assert()
        .success();
    let missing = tmp.path().join("nope.npy");
    let eleven: Vec<&Path> = (0..11).map(|_| data.as_path()).collect();
    // Each case: its arguments (command, run, --data files, more), the -o name, the error.
    let args = |cmd: &str, dir: &Path, files: &[&Path], extra: &[&str]| {
        let mut v: Vec<std::ffi::OsString> = vec![cmd.into(), dir.into(), "--data".into()];
        v.extend(files.iter().map(|f| f.as_os_str().to_owned()));
        v.extend(extra.iter().map(|e| e.into()));
        v
    };
    let (d, m) = (data.as_path(), missing.as_path());
    let cases = [
        (args("encode", &gan, &[d], &[]), "out.png", "is not a VAE"),
        (
            args("reconstruct", &gan, &[d], &[]),
            "out.png",
            "is not a VAE",
        ),
        (args("encode", &run, &[m], &[]), "out.png", "nope.npy"),
        (args("reconstruct", &run, &[m], &[]), "out.png", "nope.npy"),
        (
            args("encode", &run, &eleven, &[]),
            "out.png",
            "11 files, but the scatter has 10 colours",
        ),
        (args("encode", &run, &[d], &[]), "out.jpg", "name it *.png"),
        (
            args("reconstruct", &run, &[d], &["-n", "0"]),
            "out.png",
            "-n 0",
        ),
        (
            args("encode", tmp.path(), &[d], &[]),
            "out.png",
            "not a run directory",
        ),
    ];
    for (args, output, msg) in cases {
        let output = tmp.path().join(output);
        mouton()
            .args(&args)
            .arg("-o")
            .arg(&output)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(msg));
        assert!(!output.exists(), "{args:?} wrote {}", output.display());
    }
    // Nothing but the inputs and the runs is left behind (no temporary files either).
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["blocks.npy", "gan", "vae"]);
}

/// `--latent-dim 4`: the run keeps its size, its scatter is drawn on the principal plane of
/// the means (the printed axis is the covariance's top eigenvector of the CSV's numbers,
/// with the printed share of the variance), a latent map is refused, and `model summary`
/// counts the larger heads.
#[test]
fn a_vae_with_four_latent_dimensions_draws_its_principal_plane() {
    let tmp = tempfile::tempdir().unwrap();
    let run = vae_run_with(tmp.path(), "vae4", &["--latent-dim", "4"]);
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("latent_dim = 4\n"), "{config}");
    let data = tmp.path().join("blocks.npy");
    blocks(&data, 40);
    let csv = tmp.path().join("latent.csv");
    mouton()
        .arg("encode")
        .arg(&run)
        .arg("--data")
        .arg(&data)
        .arg("-o")
        .arg(&csv)
        .assert()
        .success();
    let text = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(
        rows[0][2..],
        ["mu0", "mu1", "mu2", "mu3", "logvar0", "logvar1", "logvar2", "logvar3"]
    );
    let mu: Vec<[f64; 4]> = rows[1..]
        .iter()
        .map(|r| std::array::from_fn(|k| r[2 + k].parse().unwrap()))
        .collect();
    assert_eq!(mu.len(), 40);

    let png = tmp.path().join("latent.png");
    let out = mouton()
        .arg("encode")
        .arg(&run)
        .arg("--data")
        .arg(&data)
        .args(["--px", "200", "-o"])
        .arg(&png)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    // "principal axis 1 (P% of the variance)" and "axis 1 = (a, b, c, d), axis 2 = (...)".
    let share: f64 = out
        .split("principal axis 1 (")
        .nth(1)
        .and_then(|r| r.split('%').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no share of the variance: {out}"));
    let axis = |k: usize| -> Vec<f64> {
        let part = out
            .split(&format!("axis {k} = ("))
            .nth(1)
            .unwrap_or_else(|| panic!("no axis {k}: {out}"));
        part.split(')')
            .next()
            .unwrap()
            .split(", ")
            .map(|v| v.parse().unwrap())
            .collect()
    };
    let (a1, a2) = (axis(1), axis(2));
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    assert!((dot(&a1, &a1) - 1.0).abs() < 5e-3 && (dot(&a2, &a2) - 1.0).abs() < 5e-3);
    assert!(dot(&a1, &a2).abs() < 5e-3, "{a1:?} {a2:?}");
    // The covariance of the CSV's means, computed here.
    let n = mu.len() as f64;
    let mean: Vec<f64> = (0..4)
        .map(|k| mu.iter().map(|m| m[k]).sum::<f64>() / n)
        .collect();
    let cov = |a: usize, b: usize| {
        mu.iter()
            .map(|m| (m[a] - mean[a]) * (m[b] - mean[b]))
            .sum::<f64>()
            / n
    };
    let quad = |v: &[f64]| {
        (0..4)
            .flat_map(|a| (0..4).map(move |b| (a, b)))
            .map(|(a, b)| v[a] * cov(a, b) * v[b])
            .sum::<f64>()
            / dot(v, v)
    };
    let trace: f64 = (0..4).map(|k| cov(k, k)).sum();
    // Axis 1 carries the printed share, more than any latent dimension alone or axis 2.
    assert!(
        (100.0 * quad(&a1) / trace - share).abs() < 0.5,
        "{} vs {share}",
        100.0 * quad(&a1) / trace
    );
    assert!((0..4).all(|k| quad(&a1) >= cov(k, k) * 0.999), "{out}");
    assert!(quad(&a1) >= quad(&a2));
    assert_eq!(
        image::open(&png).unwrap().to_rgb8().dimensions(),
        (200, 200)
    );

    mouton()
        .arg("sample")
        .arg(&run)
        .args(["--latent-map", "4", "-o"])
        .arg(tmp.path().join("map.png"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "has 4 latent dimensions; a map needs 2",
        ));
    assert!(!tmp.path().join("map.png").exists());
    // Two heads of 16 -> 4 instead of 16 -> 2, and a decoder input of 4: 2 x 2 x 17 + 2 x 3,136
    // more than the 134,165 of latent 2.
    let total = 134_165 + 2 * 2 * 17 + 2 * 3136;
    mouton()
        .args(["model", "summary", "vae", "--latent-dim", "4"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "Total params: {},{:03}",
            total / 1000,
            total % 1000
        )));
    for (args, msg) in [
        (
            &["model", "summary", "vae", "--latent-dim", "3"][..],
            "--latent-dim 3",
        ),
        (
            &["model", "summary", "mlp-g", "--latent-dim", "4"][..],
            "fixed",
        ),
    ] {
        mouton()
            .args(args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(msg));
    }
    for (extra, msg) in [
        (
            &["--latent-dim", "5"][..],
            "latent_dim: must be 2, 4, 8 or 16",
        ),
        (&["--latent-dim", "4", "--loss", "hinge"][..], "vae"),
    ] {
        let dir = tmp.path().join("refused");
        mouton()
            .args(["train", "--preset", "vae", "--run-dir"])
            .arg(&dir)
            .args(extra)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(msg));
        assert!(!dir.exists());
    }
    mouton()
        .args([
            "train",
            "--preset",
            "sheep2",
            "--latent-dim",
            "4",
            "--run-dir",
        ])
        .arg(tmp.path().join("refused"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "latent_dim: sets the VAE's latent size",
        ));
    // A resumed run keeps its size.
    mouton()
        .args(["train", "--resume", "--latent-dim", "8", "--run-dir"])
        .arg(&run)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not latent_dim"));
}

#[test]
fn a_kl_warm_up_is_saved_recorded_and_kept_on_resume() {
    let tmp = tempfile::tempdir().unwrap();
    // 72 synthetic sheep, 65 for training, batch 16: 4 steps per epoch; half an epoch of ramp
    // is 2 steps.
    let run = vae_run_with(tmp.path(), "warm", &["--kl-warmup", "0.5", "--seed", "3"]);
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("kl_warmup = 0.5"), "{config}");
    let weights: Vec<f64> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["kind"] == "step")
        .map(|r| r["kl_weight"].as_f64().unwrap())
        .collect();
    assert_eq!(weights, [0.0, 0.5, 1.0, 1.0]);

    // The ramp changes the weights' arithmetic: a resumed run keeps it.
    mouton()
        .args([
            "train",
            "--resume",
            "--epochs",
            "2",
            "--kl-warmup",
            "1",
            "--run-dir",
        ])
        .arg(&run)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("may change, not kl_warmup"));
    mouton()
        .args(["train", "--resume", "--epochs", "2", "--quiet", "--run-dir"])
        .arg(&run)
        .assert()
        .success();
    // A GAN has no KL term to ramp; a bad length is named.
    for (args, says) in [
        (
            vec!["--kl-warmup", "2"],
            "kl_warmup: ramps up a VAE's KL term",
        ),
        (
            vec!["--preset", "vae", "--kl-warmup", "nan"],
            "kl_warmup: must be a number of epochs",
        ),
    ] {
        let dir = tmp.path().join("refused");
        mouton()
            .args(["train", "--max-steps", "1", "--run-dir"])
            .arg(&dir)
            .args(args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(says));
        assert!(!dir.exists(), "{says}: a refused run leaves no directory");
    }
}
