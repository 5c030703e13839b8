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
    let run = dir.join("vae");
    mouton()
        .args(["train", "--preset", "vae", "--synthetic-count", "72"])
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
