//! `mouton encode`, `mouton reconstruct`: what a VAE run's encoder makes of images (glue over
//! `mouton_train::encoding`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use mouton_data::Filter;
use mouton_train::checkpoint::Pick;
use mouton_train::{data, encoding, pca, plot, sampling};

use crate::output::{cannot_write, check_output};
use crate::train_cmd::{generator_name, lib_err, run_dir_check, WhichCheckpoint, MAX_GRID_IMAGES};
use crate::BadInput;

/// The VAE's image side.
const SIDE: usize = 28;

#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// A VAE run directory (mouton train --preset vae).
    dir: PathBuf,
    #[command(flatten)]
    which: WhichCheckpoint,
    /// Images to encode (any Quick Draw format), up to 10 files: one colour each in the
    /// scatter (`--data sheep.npy --data cat.npy`, or `--data sheep.npy cat.npy`).
    #[arg(long, required = true, num_args = 1..)]
    data: Vec<PathBuf>,
    /// The data files' format when it cannot be detected.
    #[arg(long, value_parser = ["ndjson", "binary", "npy", "bitmap28"])]
    format: Option<String>,
    /// Images per file: its first N.
    #[arg(short, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    n: u64,
    /// Output: a scatter of the latent means (*.png; one colour per file, both axes at one
    /// scale, the origin always in view; with more than 2 latent dimensions, along the two
    /// principal axes of all the means), or every image's latent mean and log-variance
    /// (*.csv: source, index, mu0, mu1, ..., logvar0, logvar1, ...).
    #[arg(short, long)]
    output: PathBuf,
    /// The scatter's side in pixels.
    #[arg(long, default_value_t = 800, value_parser = clap::value_parser!(u32).range(64..=8192))]
    px: u32,
}

pub fn encode(a: &EncodeArgs) -> Result<()> {
    let ext = a
        .output
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase());
    let csv = match ext.as_deref() {
        Some("csv") => true,
        Some("png") => false,
        _ => {
            return Err(BadInput(format!(
                "{}: encode writes a scatter (name it *.png) or the numbers (*.csv)",
                a.output.display()
            ))
            .into())
        }
    };
    if a.data.len() > plot::PALETTE.len() {
        return Err(BadInput(format!(
            "--data: {} files, but the scatter has {} colours",
            a.data.len(),
            plot::PALETTE.len()
        ))
        .into());
    }
    run_dir_check(&a.dir)?;
    check_output(&a.output, ext.as_deref())?;
    let first = Filter {
        first: Some(a.n as usize),
        ..Filter::default()
    };
    // A file at a time: memory holds one file's images (a whole category is 126,121 images,
    // 395 MB as f32), not ten.
    let mut encodings = Vec::new();
    let (mut pick, mut loaded) = (a.which.pick(), None);
    for path in &a.data {
        let images =
            data::load_file_filtered(path, a.format.as_deref(), SIDE, &first).map_err(lib_err)?;
        if images.is_empty() {
            return Err(BadInput(format!("{}: holds no images", path.display())).into());
        }
        let (e, l) = encoding::encode_from_run(&a.dir, pick, a.which.weights(), images.as_slice())
            .map_err(lib_err)?;
        // The same checkpoint for every file, even if training writes a newer one meanwhile.
        pick = Pick::Step(l.step);
        encodings.push(e);
        loaded = Some(l);
    }
    let Some(loaded) = loaded else {
        return Err(BadInput("--data: give at least one file".into()).into());
    };
    let names: Vec<String> = a.data.iter().map(|p| p.display().to_string()).collect();
    let mut axes = None;
    let what = if csv {
        let groups: Vec<(&str, &encoding::Encoding)> =
            names.iter().map(|n| n.as_str()).zip(&encodings).collect();
        encoding::write_csv(&a.output, &groups).map_err(cannot_write)?;
        "latent means and log-variances".to_string()
    } else {
        let latent = encodings.first().map_or(2, |e| e.latent);
        let all: Vec<&encoding::Encoding> = encodings.iter().collect();
        let (points, plane) = pca::scatter_points(&all).map_err(lib_err)?;
        let groups: Vec<&[f32]> = points.iter().map(|p| p.as_slice()).collect();
        let frame = plot::latent_scatter_png(&groups, a.px, &a.output).map_err(cannot_write)?;
        let (x, y) = match &plane {
            None => ("z0".to_string(), "z1".to_string()),
            Some(p) => (
                format!(
                    "principal axis 1 ({:.1}% of the variance)",
                    100.0 * p.explained[0]
                ),
                format!("principal axis 2 ({:.1}%)", 100.0 * p.explained[1]),
            ),
        };
        let what = format!(
            "a scatter of the latent means ({x} from {:.2} to {:.2} left to right, {y} from \
             {:.2} to {:.2} bottom to top; grid lines every {}, darker through 0)",
            frame.x.0, frame.x.1, frame.y.0, frame.y.1, frame.grid
        );
        axes = plane.map(|p| {
            format!(
                "  the {latent}-D means projected, not centred (the latent origin stays at 0): \
                 axis 1 = {}, axis 2 = {}",
                vector(&p.axes[0]),
                vector(&p.axes[1])
            )
        });
        what
    };
    out!(
        "wrote {}: {what} from {}",
        a.output.display(),
        generator_name(&loaded)
    )?;
    if let Some(line) = axes {
        out!("{line}")?;
    }
    for (i, (name, e)) in names.iter().zip(&encodings).enumerate() {
        let colour = if csv {
            String::new()
        } else {
            format!(" ({})", plot::PALETTE[i].0)
        };
        let (centre, spread) = e.centre_and_spread();
        out!(
            "  {name}{colour}: {} images, latent means centred at {}, standard deviation {}",
            e.len(),
            vector(&centre),
            vector(&spread)
        )?;
    }
    Ok(())
}

/// `(a, b, ...)` to 3 decimals.
fn vector(v: &[f64]) -> String {
    let parts: Vec<String> = v.iter().map(|x| format!("{x:.3}")).collect();
    format!("({})", parts.join(", "))
}

#[derive(Debug, Args)]
pub struct ReconstructArgs {
    /// A VAE run directory (mouton train --preset vae).
    dir: PathBuf,
    #[command(flatten)]
    which: WhichCheckpoint,
    /// Images to reconstruct (any Quick Draw format).
    #[arg(long)]
    data: PathBuf,
    /// The data file's format when it cannot be detected.
    #[arg(long, value_parser = ["ndjson", "binary", "npy", "bitmap28"])]
    format: Option<String>,
    /// How many images: the file's first N, or N chosen at random with --seed.
    #[arg(short, default_value_t = 10)]
    n: usize,
    /// Choose the images at random with this seed (in file order) instead of the first N.
    #[arg(long)]
    seed: Option<u64>,
    /// Images per row (each row of originals has its row of reconstructions below it).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=256))]
    cols: u64,
    /// Output PNG.
    #[arg(short, long)]
    output: PathBuf,
}

pub fn reconstruct(a: &ReconstructArgs) -> Result<()> {
    if a.n == 0 || 2 * a.n > MAX_GRID_IMAGES {
        return Err(BadInput(format!(
            "-n {}: a grid holds 1 to {} images and their reconstructions",
            a.n,
            MAX_GRID_IMAGES / 2
        ))
        .into());
    }
    run_dir_check(&a.dir)?;
    check_output(&a.output, Some("png"))?;
    let filter = match a.seed {
        Some(seed) => Filter {
            random: Some((a.n, seed)),
            ..Filter::default()
        },
        None => Filter {
            first: Some(a.n),
            ..Filter::default()
        },
    };
    let images =
        data::load_file_filtered(&a.data, a.format.as_deref(), SIDE, &filter).map_err(lib_err)?;
    if images.is_empty() {
        return Err(BadInput(format!("{}: holds no images", a.data.display())).into());
    }
    let (r, loaded) = encoding::reconstruct_from_run(
        &a.dir,
        a.which.pick(),
        a.which.weights(),
        images.as_slice(),
    )
    .map_err(lib_err)?;
    let cols = (a.cols as usize).min(images.len());
    let grid = encoding::paired_rows(images.as_slice(), &r.images, SIDE * SIDE, cols);
    sampling::write_grid(&a.output, &grid, SIDE, cols).map_err(cannot_write)?;
    let n = images.len();
    let chosen = match a.seed {
        Some(s) => format!("{n} images chosen with seed {s} from"),
        None => format!("the first {n} images of"),
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (bce, kl) = (mean(&r.bce), mean(&r.kl));
    out!(
        "wrote {}: {chosen} {}, each row above its reconstructions (decoded from the latent \
         means) by {}",
        a.output.display(),
        a.data.display(),
        generator_name(&loaded)
    )?;
    out!(
        "per image, mean over these {n}: reconstruction BCE {bce:.2} nats ({:.4} per pixel), \
         KL {kl:.2} nats",
        bce / (SIDE * SIDE) as f64
    )?;
    Ok(())
}
