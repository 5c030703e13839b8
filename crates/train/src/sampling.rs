//! Drawing new sheep: latent vectors, generation in batches, grids, and spherical
//! interpolation between latent vectors.

use std::path::Path;

use dfdx::prelude::*;
use mouton_models::generator::{Generator, OutputRange};
use mouton_models::layers::Layers;

/// Latent vector length of every generator mouton trains.
pub const LATENT: usize = 128;
use rand_distr::{Distribution, StandardNormal};

use crate::checkpoint::{Loaded, Pick, Weights};
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
///
/// ```
/// use mouton_train::sampling::{latent, latent_of};
/// let z = latent_of(3, 0, 1000, 2); // a VAE's 2-D latent points
/// assert_eq!(z.len(), 2000);
/// let mean = z.iter().sum::<f32>() / 2000.0;
/// let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 2000.0;
/// assert!(mean.abs() < 0.1 && (var - 1.0).abs() < 0.1, "N(0, 1): {mean} {var}");
/// assert_eq!(latent_of(3, 0, 2, 128), latent(3, 0, 2));
/// ```
pub fn latent_of(seed: u64, a: u64, n: usize, k: usize) -> Vec<f32> {
    latent_chunks(seed, a, n, k, n).flatten().collect()
}

/// [`latent_of`]'s vectors made `chunk` at a time (the same values, in the same order), so
/// that a million sheep need not hold a million latent vectors at once.
///
/// ```
/// use mouton_train::sampling::{latent_chunks, latent_of};
/// let chunks: Vec<Vec<f32>> = latent_chunks(5, 2, 10, 3, 4).collect();
/// assert_eq!(chunks.iter().map(|c| c.len() / 3).collect::<Vec<_>>(), [4, 4, 2]);
/// assert_eq!(chunks.concat(), latent_of(5, 2, 10, 3));
/// ```
pub fn latent_chunks(
    seed: u64,
    a: u64,
    n: usize,
    k: usize,
    chunk: usize,
) -> impl Iterator<Item = Vec<f32>> {
    let mut r = rng(seed, Stream::Samples, a, 0);
    let mut left = n;
    let chunk = chunk.max(1);
    std::iter::from_fn(move || {
        let m = left.min(chunk);
        left -= m;
        (m > 0).then(|| (0..m * k).map(|_| StandardNormal.sample(&mut r)).collect())
    })
}

/// Images (n x side x side, in [0, 1] whatever the generator's range) for latent vectors
/// (n x latent), 64 at a time, in inference mode.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::sheep::Sheep1Generator;
/// use mouton_train::sampling::{generate, latent};
/// let dev = Cpu::seed_from_u64(0);
/// let mut g = Sheep1Generator::<f32, Cpu>::build(&dev); // tanh output, in [-1, 1]
/// let images = generate(&mut g, &latent(0, 0, 70), &dev)?; // two batches: 64 + 6
/// assert_eq!(images.len(), 70 * 784);
/// assert!(images.iter().all(|v| (0.0..=1.0).contains(v))); // mapped to [0, 1]
/// // Inference mode: an image does not depend on the rest of its batch (up to the
/// // rounding of differently blocked products).
/// let one = generate(&mut g, &latent(0, 0, 70)[69 * 128..], &dev)?;
/// assert!(one.iter().zip(&images[69 * 784..]).all(|(a, b)| (a - b).abs() < 1e-5));
/// // Values that are not whole latent vectors are an error, not a panic.
/// assert!(generate(&mut g, &[0.0; 130], &dev).is_err());
/// # Ok::<(), mouton_train::TrainError>(())
/// ```
pub fn generate<G, B>(g: &mut G, z: &[f32], dev: &B) -> Result<Vec<f32>, TrainError>
where
    G: Generator<f32, B>,
    B: Layers<f32>,
{
    let k = g.latent();
    if !z.len().is_multiple_of(k) {
        return Err(TrainError::Config(format!(
            "{} latent values are not whole vectors of this generator's {k}",
            z.len()
        )));
    }
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
///
/// ```
/// assert_eq!(mouton_train::sampling::to_u8(&[-0.5, 0.0, 0.5, 1.0, 7.0]), [0, 0, 128, 255, 255]);
/// ```
pub fn to_u8(images: &[f32]) -> Vec<u8> {
    images
        .iter()
        .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect()
}

/// Writes `side` x `side` images (in [0, 1]) as a grid PNG with `cols` columns, atomically.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("grid.png");
/// // Three white 4x4 images, two columns: 2 rows, 2-pixel gaps.
/// mouton_train::sampling::write_grid(&path, &[1.0f32; 3 * 16], 4, 2)?;
/// let img = image::open(&path)?.to_luma8();
/// assert_eq!(img.dimensions(), (14, 14));
/// assert_eq!((img.get_pixel(2, 2).0, img.get_pixel(8, 8).0), ([255], [0])); // cell 4 is empty
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
///
/// ```
/// use mouton_train::sampling::interpolation;
/// let path = interpolation(&[1.0, 0.0], &[0.0, 1.0], 3);
/// assert_eq!((&path[..2], &path[4..]), (&[1.0f32, 0.0][..], &[0.0f32, 1.0][..]));
/// let norm = (path[2].powi(2) + path[3].powi(2)).sqrt();
/// assert!((norm - 1.0).abs() < 1e-6); // on the arc, not the chord
/// ```
pub fn interpolation(a: &[f32], b: &[f32], steps: usize) -> Vec<f32> {
    let steps = steps.max(2);
    (0..steps)
        .flat_map(|k| slerp(a, b, k as f64 / (steps - 1) as f64))
        .collect()
}

/// The standard normal distribution's quantile: the `x` with `P(N(0, 1) <= x) = p`, for `p`
/// in (0, 1) (NaN outside). Bisection on the CDF `erfc(-x / sqrt 2) / 2`, which is accurate in
/// both tails, down to adjacent floats or an exact hit (within 4e-15 relative of Python's
/// `statistics.NormalDist().inv_cdf` from 1e-300 to 1 - 1e-16, tested).
///
/// ```
/// use mouton_train::sampling::normal_quantile;
/// assert_eq!(normal_quantile(0.5), 0.0);
/// assert!((normal_quantile(0.975) - 1.959963984540054).abs() < 1e-14);
/// assert!(normal_quantile(1.0).is_nan());
/// ```
pub fn normal_quantile(p: f64) -> f64 {
    if !(p > 0.0 && p < 1.0) {
        return f64::NAN;
    }
    if p > 0.5 {
        // By symmetry, from the lower tail, where the CDF keeps its relative precision
        // (1 - p is exact for p in [0.5, 1]).
        return -normal_quantile(1.0 - p);
    }
    let cdf = |x: f64| 0.5 * libm::erfc(-x / std::f64::consts::SQRT_2);
    // The CDF rounds to 0 below -38.5: every p in (0, 0.5] lies between -40 and 0 (the
    // first midpoint, hit exactly by 0.5).
    let (mut lo, mut hi) = (-40.0f64, 40.0f64);
    loop {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            // Adjacent floats: the nearer one.
            return if (cdf(lo) - p).abs() <= (cdf(hi) - p).abs() {
                lo
            } else {
                hi
            };
        }
        let c = cdf(mid);
        if c == p {
            return mid;
        }
        if c < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
}

/// Latent points on a `side` x `side` grid over a 2-D latent plane (a VAE's): column `j` at
/// `z0 = q_j`, row `i` at `z1 = q_(side-1-i)` (up is positive, as on a plot), with `q` the
/// standard normal quantiles of `side` evenly spaced probabilities from 5% to 95%, so that each
/// cell covers an equal share of the prior, as Keras' and FIDLE's VAE notebooks draw it. Row by
/// row, `side * side` points of 2 values.
///
/// ```
/// use mouton_train::sampling::latent_plane;
/// let z = latent_plane(3);
/// assert_eq!(z.len(), 3 * 3 * 2);
/// let q95 = 1.6448536269514722_f32;
/// assert_eq!(&z[..2], &[-q95, q95]); // top left
/// assert_eq!(&z[8..10], &[0.0, 0.0]); // the centre
/// assert_eq!(&z[16..], &[q95, -q95]); // bottom right
/// ```
pub fn latent_plane(side: usize) -> Vec<f32> {
    let q: Vec<f32> = (0..side)
        .map(|k| {
            let t = if side > 1 {
                k as f64 / (side - 1) as f64
            } else {
                0.5
            };
            normal_quantile(0.05 + 0.9 * t) as f32
        })
        .collect();
    let mut z = Vec::with_capacity(side * side * 2);
    for i in 0..side {
        for &x in &q {
            z.extend([x, q[side - 1 - i]]);
        }
    }
    z
}

/// Images for latent vectors `z` from the checkpoint `pick` names in a run directory (whatever
/// its architecture), drawn by the `weights` it asks for; returns them with what was loaded.
///
/// ```
/// use mouton_train::checkpoint::{Pick, Weights};
/// use mouton_train::config::{CriticArch, GeneratorArch, Preset, TrainConfig};
/// use mouton_train::sampling::{generate_from_run, latent, run_image_size, run_latent};
/// use mouton_train::trainer::{train, RunOptions};
/// # let dir = tempfile::tempdir()?;
/// let mut cfg = TrainConfig::preset(Preset::Sheep1);
/// (cfg.generator, cfg.critic) = (GeneratorArch::MlpG, CriticArch::MlpD);
/// (cfg.synthetic_count, cfg.batch_size, cfg.max_steps) = (80, 16, Some(2));
/// cfg.checkpoint_every = Some(1);
/// let run = dir.path().join("run");
/// let data = mouton_train::data::load(&cfg)?;
/// train(&cfg, &data, &run, &RunOptions::default(), &mut |_| {})?;
/// assert_eq!((run_latent(&run)?, run_image_size(&run)?), (128, 28));
/// let z = latent(1, 0, 4);
/// let (images, loaded) = generate_from_run(&run, Pick::Newest, Weights::Average, &z)?;
/// // The run keeps no moving average (no `ema`): the trained weights drew.
/// assert_eq!((images.len(), loaded.step, loaded.averaged), (4 * 784, 2, false));
/// // The generator of step 1 draws other sheep from the same latent vectors.
/// let (earlier, loaded) = generate_from_run(&run, Pick::Step(1), Weights::Average, &z)?;
/// assert!(loaded.step == 1 && earlier != images);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn generate_from_run(
    run_dir: &std::path::Path,
    pick: Pick,
    weights: Weights,
    z: &[f32],
) -> Result<(Vec<f32>, Loaded), TrainError> {
    let mut images = Vec::new();
    let mut one = std::iter::once(z.to_vec());
    let loaded = generate_each(run_dir, pick, weights, &mut one, &mut |im| {
        images.extend_from_slice(im);
        Ok(())
    })?;
    Ok((images, loaded))
}

/// [`generate_from_run`] for latent vectors that come in chunks (see [`latent_chunks`]):
/// hands each chunk's images to `each` as they are made, so that memory stays that of one
/// chunk however many sheep are drawn. Returns what was loaded. Chunks of a multiple
/// of 64 vectors give the very images of one [`generate_from_run`] call.
///
/// ```
/// use mouton_train::config::{CriticArch, GeneratorArch, Preset, TrainConfig};
/// use mouton_train::checkpoint::{Pick, Weights};
/// use mouton_train::sampling::{generate_each, generate_from_run, latent_chunks, latent_of};
/// use mouton_train::trainer::{train, RunOptions};
/// # let dir = tempfile::tempdir()?;
/// # let run = dir.path().join("run");
/// let mut cfg = TrainConfig::preset(Preset::Sheep1);
/// (cfg.generator, cfg.critic) = (GeneratorArch::MlpG, CriticArch::MlpD);
/// (cfg.synthetic_count, cfg.batch_size, cfg.max_steps) = (80, 16, Some(1));
/// train(&cfg, &mouton_train::data::load(&cfg)?, &run, &RunOptions::default(), &mut |_| {})?;
/// let mut sizes = Vec::new();
/// let mut images = Vec::new();
/// let mut z = latent_chunks(7, 0, 150, 128, 64);
/// let loaded = generate_each(&run, Pick::Newest, Weights::Average, &mut z, &mut |im| {
///     sizes.push(im.len() / 784);
///     images.extend_from_slice(im);
///     Ok(())
/// })?;
/// assert_eq!((loaded.step, sizes), (1, vec![64, 64, 22]));
/// let z = latent_of(7, 0, 150, 128);
/// assert!(images == generate_from_run(&run, Pick::Newest, Weights::Average, &z)?.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn generate_each(
    run_dir: &std::path::Path,
    pick: Pick,
    weights: Weights,
    z: &mut dyn Iterator<Item = Vec<f32>>,
    each: &mut dyn FnMut(&[f32]) -> Result<(), TrainError>,
) -> Result<Loaded, TrainError> {
    let cfg = crate::config::TrainConfig::load(&run_dir.join("config.toml"))?;
    let which = (pick, weights);
    if cfg.generator == crate::config::GeneratorArch::Vae {
        return crate::with_vae_latent!(cfg.vae_latent(), L => {
            generate_with::<mouton_models::vae::Vae<L, f32, Cpu>, (), Cpu>(
                &cfg, run_dir, which, z, each,
            )
        });
    }
    crate::with_architectures!(cfg, Cpu, generate_with(&cfg, run_dir, which, z, each))
}

// `D` (the critic) comes with the dispatch macro and is not needed here.
#[allow(clippy::extra_unused_type_parameters)]
fn generate_with<G, D, B>(
    cfg: &crate::config::TrainConfig,
    run_dir: &std::path::Path,
    (pick, weights): (Pick, Weights),
    z: &mut dyn Iterator<Item = Vec<f32>>,
    each: &mut dyn FnMut(&[f32]) -> Result<(), TrainError>,
) -> Result<Loaded, TrainError>
where
    G: Generator<f32>
        + dfdx::nn::tensor_collection::TensorCollection<f32, Cpu>
        + dfdx::nn::BuildModule<Cpu, f32>,
{
    let mut g: G = crate::trainer::build(cfg, 0);
    let loaded = crate::checkpoint::load_generator(run_dir, pick, weights, &mut g)?;
    let dev = Cpu::default();
    for chunk in z {
        each(&generate(&mut g, &chunk, &dev)?)?;
    }
    Ok(loaded)
}

/// The latent length of a run directory's generator (read from its `config.toml`).
///
/// ```
/// use mouton_train::config::{Preset, TrainConfig};
/// # let dir = tempfile::tempdir()?;
/// let mut cfg = TrainConfig::preset(Preset::Vae);
/// std::fs::write(dir.path().join("config.toml"), cfg.to_toml())?;
/// assert_eq!(mouton_train::sampling::run_latent(dir.path())?, 2);
/// cfg.latent_dim = Some(16);
/// std::fs::write(dir.path().join("config.toml"), cfg.to_toml())?;
/// assert_eq!(mouton_train::sampling::run_latent(dir.path())?, 16);
/// // No run there: the error names the missing file.
/// let err = mouton_train::sampling::run_latent(&dir.path().join("nope")).unwrap_err();
/// assert!(err.to_string().contains("config.toml"), "{err}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run_latent(run_dir: &std::path::Path) -> Result<usize, TrainError> {
    let cfg = crate::config::TrainConfig::load(&run_dir.join("config.toml"))?;
    Ok(match cfg.generator {
        crate::config::GeneratorArch::Vae => cfg.vae_latent(),
        crate::config::GeneratorArch::DcganG => mouton_models::dcgan::DCGAN_LATENT,
        _ => LATENT,
    })
}

/// The image side of the run in `run_dir` (its config's `image_size`).
///
/// ```
/// use mouton_train::config::{CriticArch, GeneratorArch, Preset, TrainConfig};
/// # let dir = tempfile::tempdir()?;
/// let mut cfg = TrainConfig::preset(Preset::Sheep1);
/// (cfg.generator, cfg.critic, cfg.image_size) = (GeneratorArch::DcganG, CriticArch::DcganD, 64);
/// std::fs::write(dir.path().join("config.toml"), cfg.to_toml())?;
/// assert_eq!(mouton_train::sampling::run_image_size(dir.path())?, 64);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run_image_size(run_dir: &std::path::Path) -> Result<usize, TrainError> {
    Ok(crate::config::TrainConfig::load(&run_dir.join("config.toml"))?.image_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantiles_match_python_statistics() {
        // python3 -c "from statistics import NormalDist; print(NormalDist().inv_cdf(p))"
        let golden = [
            (1e-300, -37.0470962993612),
            (1e-100, -21.27345356096532),
            (1e-20, -9.262340089798405),
            (1e-10, -6.361340902404056),
            (1e-05, -4.2648907939228256),
            (0.001, -3.090232306167813),
            (0.05, -1.6448536269514726),
            (0.1, -1.2815515655446008),
            (0.25, -0.6744897501960817),
            (0.4, -0.2533471031357998),
            (0.5, 0.0),
            (0.6, 0.2533471031357998),
            (0.75, 0.6744897501960817),
            (0.9, 1.2815515655446008),
            (0.95, 1.6448536269514715),
            (0.975, 1.9599639845400536),
            (0.999, 3.090232306167813),
            (0.9999999999, 6.361340889697421),
            (0.9999999999999999, 8.209536151601386),
        ];
        for (p, want) in golden {
            let got = normal_quantile(p);
            let err = (got - want).abs() / want.abs().max(1e-300);
            assert!(
                got == want || err < 4e-15,
                "p = {p}: {got} vs {want} ({err:e})"
            );
        }
        for bad in [0.0, 1.0, -0.1, f64::NAN, f64::INFINITY] {
            assert!(normal_quantile(bad).is_nan(), "{bad}");
        }
    }
}
