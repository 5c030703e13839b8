//! Drawing new sheep: latent vectors, generation in batches, grids, and spherical
//! interpolation between latent vectors.

use std::path::Path;

use dfdx::prelude::*;
use mouton_models::generator::{Generator, OutputRange};
use mouton_models::layers::Layers;

/// Latent vector length of every generator mouton trains.
pub const LATENT: usize = 128;
use rand_distr::{Distribution, StandardNormal};

use crate::rng::{rng, Stream};
use crate::TrainError;

/// `n` latent vectors (n x 128, N(0, 1)) from `seed`; `a` selects an independent set.
///
/// ```
/// let z = mouton_train::sampling::latent(1, 0, 3);
/// assert_eq!(z.len(), 3 * 128);
/// assert_eq!(z, mouton_train::sampling::latent(1, 0, 3));
/// ```
pub fn latent(seed: u64, a: u64, n: usize) -> Vec<f32> {
    latent_of(seed, a, n, LATENT)
}

/// `n` latent vectors of length `k` (see [`latent`]).
pub fn latent_of(seed: u64, a: u64, n: usize, k: usize) -> Vec<f32> {
    let mut r = rng(seed, Stream::Samples, a, 0);
    (0..n * k).map(|_| StandardNormal.sample(&mut r)).collect()
}

/// Images (n x side x side, in [0, 1] whatever the generator's range) for latent vectors
/// (n x latent), 64 at a time, in inference mode.
pub fn generate<G, B>(g: &mut G, z: &[f32], dev: &B) -> Result<Vec<f32>, TrainError>
where
    G: Generator<f32, B>,
    B: Layers<f32>,
{
    let k = g.latent();
    let mut out = Vec::new();
    for chunk in z.chunks(64 * k) {
        let n = chunk.len() / k;
        let zt = dev.tensor_from_vec(chunk.to_vec(), (n, k));
        let img = g.generate(zt, false)?;
        let mut v = vec![0f32; img.shape().num_elements()];
        img.copy_into(&mut v);
        if g.output_range() == OutputRange::MinusOneOne {
            v.iter_mut().for_each(|x| *x = (*x + 1.0) * 0.5);
        }
        out.extend(v);
    }
    Ok(out)
}

/// Pixels in [0, 1] to grey levels.
pub fn to_u8(images: &[f32]) -> Vec<u8> {
    images
        .iter()
        .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect()
}

/// Writes `side` x `side` images (in [0, 1]) as a grid PNG with `cols` columns, atomically.
pub fn write_grid(path: &Path, images: &[f32], side: usize, cols: usize) -> Result<(), TrainError> {
    let px = to_u8(images);
    let cells: Vec<&[u8]> = px.chunks(side * side).collect();
    let cols = cols.max(1);
    let rows = cells.len().div_ceil(cols).max(1);
    let (w, h, grid) = mouton_data::tile(&cells, side, cols, rows, 2);
    mouton_data::write_png_gray(path, w, h, &grid)?;
    Ok(())
}

/// Spherical interpolation between `a` and `b` at `t` in [0, 1] (the path stays at the typical
/// norm of Gaussian vectors, unlike a straight line, which passes near the low-norm centre).
///
/// ```
/// use mouton_train::sampling::slerp;
/// let (a, b) = ([1.0f32, 0.0], [0.0f32, 1.0]);
/// let m = slerp(&a, &b, 0.5);
/// assert!((m[0] - 0.70710677).abs() < 1e-6 && (m[1] - 0.70710677).abs() < 1e-6);
/// assert_eq!(slerp(&a, &b, 0.0), a);
/// ```
pub fn slerp(a: &[f32], b: &[f32], t: f64) -> Vec<f32> {
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum();
    let na = a.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    let nb = b.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    let cos = (dot / (na * nb).max(1e-300)).clamp(-1.0, 1.0);
    let omega = cos.acos();
    let (wa, wb) = if omega.abs() < 1e-6 {
        (1.0 - t, t)
    } else {
        (
            ((1.0 - t) * omega).sin() / omega.sin(),
            (t * omega).sin() / omega.sin(),
        )
    };
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (wa * x as f64 + wb * y as f64) as f32)
        .collect()
}

/// `steps` latent vectors from `a` to `b` (both included) along [`slerp`].
pub fn interpolation(a: &[f32], b: &[f32], steps: usize) -> Vec<f32> {
    let steps = steps.max(2);
    (0..steps)
        .flat_map(|k| slerp(a, b, k as f64 / (steps - 1) as f64))
        .collect()
}

/// Images for latent vectors `z` from the newest checkpoint of a run directory (whatever its
/// architecture); returns them with the checkpoint's step.
pub fn generate_from_run(
    run_dir: &std::path::Path,
    z: &[f32],
) -> Result<(Vec<f32>, u64), TrainError> {
    let cfg = crate::config::TrainConfig::load(&run_dir.join("config.toml"))?;
    if cfg.generator == crate::config::GeneratorArch::Vae {
        return generate_with::<mouton_models::vae::Vae<2, f32, Cpu>, (), Cpu>(&cfg, run_dir, z);
    }
    crate::with_architectures!(cfg, Cpu, generate_with(&cfg, run_dir, z))
}

// `D` (the critic) comes with the dispatch macro and is not needed here.
#[allow(clippy::extra_unused_type_parameters)]
fn generate_with<G, D, B>(
    cfg: &crate::config::TrainConfig,
    run_dir: &std::path::Path,
    z: &[f32],
) -> Result<(Vec<f32>, u64), TrainError>
where
    G: Generator<f32>
        + dfdx::nn::tensor_collection::TensorCollection<f32, Cpu>
        + dfdx::nn::BuildModule<Cpu, f32>,
{
    let mut g: G = crate::trainer::build(cfg, 0);
    let (step, _) = crate::checkpoint::load_generator(run_dir, &mut g)?;
    Ok((generate(&mut g, z, &Cpu::default())?, step))
}

/// The latent length of a run directory's generator.
pub fn run_latent(run_dir: &std::path::Path) -> Result<usize, TrainError> {
    let cfg = crate::config::TrainConfig::load(&run_dir.join("config.toml"))?;
    Ok(match cfg.generator {
        crate::config::GeneratorArch::Vae => 2,
        crate::config::GeneratorArch::DcganG => mouton_models::dcgan::DCGAN_LATENT,
        _ => LATENT,
    })
}

/// The image side of the run in `run_dir` (its config's `image_size`).
pub fn run_image_size(run_dir: &std::path::Path) -> Result<usize, TrainError> {
    Ok(crate::config::TrainConfig::load(&run_dir.join("config.toml"))?.image_size)
}
