//! The training loop.
//!
//! A *step* is `n_critic` critic updates, each on a fresh batch of real images and a batch of
//! generated ones, followed by one generator update; an epoch is as many steps as the training
//! images allow without reusing one (`floor(N / (batch_size * n_critic))`). Each epoch ends
//! with a sample grid from fixed latent vectors, the sliced Wasserstein distance to held-out
//! real images, a checkpoint and `loss.png`; `checkpoint_every` and a stop request
//! ([`RunOptions::stop`]) write checkpoints inside epochs too.
//!
//! Determinism: every random draw comes from a stream derived from (seed, purpose, step), the
//! CPU kernels reduce in a fixed order, so the same seed gives bit-identical weights, and a run
//! resumed from a checkpoint continues bit-identically to an uninterrupted one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use dfdx::nn::tensor_collection::TensorCollection;
use dfdx::nn::BuildModule;
use dfdx::prelude::*;
use mouton_losses::gan::{
    discriminator_bce_with, generator_non_saturating, generator_saturating, Labels,
};
use mouton_losses::gradient_penalty::{interpolation_weights, wgan_gp_critic_loss, Interpolation};
use mouton_losses::hinge::{discriminator_hinge, generator_hinge};
use mouton_losses::lsgan::{discriminator_lsgan, generator_lsgan, LsganTargets};
use mouton_losses::wasserstein::{clip_weights, critic_loss, generator_loss};
use mouton_models::critic::Critic;
use mouton_models::generator::{Generator, OutputRange};
use mouton_models::layers::Layers;
use rand_distr::{Distribution, StandardNormal};

use crate::checkpoint::{self, State};
use crate::config::{InterpolationKind, LossKind, TrainConfig};
use crate::data::TrainingData;
use crate::metrics::{self, EpochRecord, StepRecord};
use crate::optim::Optimizer;
use crate::rng::{derive, rng, Stream};
use crate::sampling;
use crate::{eval, io_err, TrainError};

/// What the loop reports as it goes (the CLI turns these into progress bars or log lines).
#[derive(Debug)]
pub enum Event<'a> {
    /// Training starts (or resumes) at `start_step` of `total_steps`.
    Start {
        /// Steps already done.
        start_step: u64,
        /// Steps in the whole run.
        total_steps: u64,
        /// Steps per epoch.
        steps_per_epoch: u64,
        /// Where the images come from.
        data: &'a str,
        /// Training / validation image counts.
        images: (usize, usize),
    },
    /// A step finished.
    Step(&'a StepRecord),
    /// An epoch finished (its checkpoint, samples and plot are written).
    Epoch(&'a EpochRecord, &'a Path),
    /// A checkpoint was written inside an epoch (`checkpoint_every`, or a stop request) after
    /// this many steps.
    Checkpoint(u64, &'a Path),
    /// Something the user should know (mode collapse suspected, no checkpoint to resume).
    Warning(String),
}

/// Options that are not part of the configuration.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Continue from the newest checkpoint of the run directory.
    pub resume: bool,
    /// Test hook: make the critic loss NaN at this step (1-based), to exercise the NaN guard.
    pub inject_nan_at_step: Option<u64>,
    /// Where the networks train.
    pub device: DeviceChoice,
    /// On CUDA, let mouton's convolution GEMMs use TF32 tensor cores (10-bit mantissa
    /// products, FP32 sums), as PyTorch's cuDNN convolutions do by default: faster, less
    /// exact. Off by default (plain FP32, which the CPU-parity checks hold to 1e-4).
    pub tf32: bool,
    /// On CUDA, run the convolutions that cuDNN can express (symmetric padding) through
    /// cuDNN, opened at run time, with deterministic algorithms only (FP32 unless `tf32`).
    /// Off by default: mouton's own kernels.
    pub cudnn: bool,
    /// A stop request, checked after every step: once it is set, the run writes a checkpoint
    /// (unless that step's was just written) and returns with [`Summary::interrupted`], so that
    /// a resumed run goes on bit-identically. The CLI sets it on SIGINT, SIGTERM and SIGHUP.
    ///
    /// ```
    /// use std::sync::{atomic::{AtomicBool, Ordering}, Arc};
    /// use mouton_train::config::{CriticArch, GeneratorArch, Preset, TrainConfig};
    /// use mouton_train::trainer::{train, Event, RunOptions};
    /// # let dir = tempfile::tempdir()?;
    /// let mut cfg = TrainConfig::preset(Preset::Sheep1);
    /// (cfg.generator, cfg.critic) = (GeneratorArch::MlpG, CriticArch::MlpD);
    /// (cfg.synthetic_count, cfg.batch_size, cfg.epochs) = (80, 16, 1); // 4 steps
    /// let data = mouton_train::data::load(&cfg)?;
    /// let stop = Arc::new(AtomicBool::new(false));
    /// let opts = RunOptions { stop: Some(stop.clone()), ..Default::default() };
    /// let summary = train(&cfg, &data, dir.path(), &opts, &mut |e| {
    ///     if let Event::Step(s) = e {
    ///         stop.store(s.step == 2, Ordering::SeqCst); // as a signal handler would
    ///     }
    /// })?;
    /// assert!(summary.interrupted && summary.steps == 2);
    /// assert!(summary.checkpoint.unwrap().ends_with("step_000000002.safetensors"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub stop: Option<Arc<AtomicBool>>,
}

/// The device a run trains on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeviceChoice {
    /// dfdx's CPU device (all threads).
    #[default]
    Cpu,
    /// dfdx's CUDA device with this ordinal (needs the `cuda` feature and an NVIDIA GPU).
    Cuda(usize),
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;

    /// `cpu`, `cuda` (GPU 0) or `cuda:N`.
    ///
    /// ```
    /// use mouton_train::trainer::DeviceChoice;
    /// assert_eq!("cuda:1".parse(), Ok(DeviceChoice::Cuda(1)));
    /// assert_eq!("cpu".parse(), Ok(DeviceChoice::Cpu));
    /// assert!("gpu".parse::<DeviceChoice>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| format!("unknown device {s:?}: expected cpu, cuda or cuda:N")),
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Steps done in total.
    pub steps: u64,
    /// The last checkpoint written.
    pub checkpoint: Option<PathBuf>,
    /// The last epoch's record.
    pub last_epoch: Option<EpochRecord>,
    /// The run stopped early on a [`RunOptions::stop`] request, after `steps` steps.
    pub interrupted: bool,
}

type Images<B> = Tensor<(usize, usize, usize, usize), f32, B>;

fn latent_batch<B: Device<f32>>(
    dev: &B,
    seed: u64,
    stream: Stream,
    step: u64,
    j: u64,
    n: usize,
    k: usize,
) -> Tensor<(usize, usize), f32, B> {
    let mut r = rng(seed, stream, step, j);
    let v: Vec<f32> = (0..n * k).map(|_| StandardNormal.sample(&mut r)).collect();
    dev.tensor_from_vec(v, (n, k))
}

/// `value` if finite, else the error that stops training at `step` (0-based).
fn finite_or_stop(value: f64, step: u64, quantity: &str) -> Result<f64, TrainError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(TrainError::NonFinite {
            step: step + 1,
            quantity: quantity.into(),
            value,
        })
    }
}

/// A scalar of a step, still on the device where it was computed: a step reads its scalars
/// once, at its end, because every read waits for the device (reading mid-step would leave
/// the GPU idle while the host queues the next work).
enum Scalar<B: Storage<f32>> {
    Host(f64),
    Device(Tensor<(), f32, B>),
}

impl<B: Layers<f32>> Scalar<B> {
    fn of(t: Option<Tensor<(), f32, B>>) -> Self {
        t.map_or(Scalar::Host(0.0), Scalar::Device)
    }

    fn get(&self) -> f64 {
        match self {
            Scalar::Host(v) => *v,
            Scalar::Device(t) => t.array() as f64,
        }
    }
}

/// One critic update's scalars.
struct CriticUpdate<B: Storage<f32>> {
    loss: Scalar<B>,
    gp: Option<Scalar<B>>,
    d_real: Scalar<B>,
    d_fake: Scalar<B>,
    /// The squared gradient norm (NaN when a weight is not finite after the update).
    norm_sq: Scalar<B>,
}

/// One critic update.
#[allow(clippy::too_many_arguments)]
fn critic_update<G, D, B>(
    cfg: &TrainConfig,
    g: &mut G,
    d: &mut D,
    opt_d: &mut Optimizer<f32, B>,
    real: Images<B>,
    z: Tensor<(usize, usize), f32, B>,
    step: u64,
    j: u64,
) -> Result<CriticUpdate<B>, TrainError>
where
    B: Layers<f32>,
    G: Generator<f32, B>,
    D: Critic<f32, B> + TensorCollection<f32, B>,
{
    let n = real.shape().0;
    let fake = g.generate(z, true)?;
    let mut drop = rng(cfg.seed, Stream::Dropout, step, 2 * j);
    let mut labels_rng = rng(cfg.seed, Stream::Labels, step, j);
    let (loss, gp, d_real, d_fake) = if cfg.loss == LossKind::WganGp {
        let how = match cfg.interpolation {
            InterpolationKind::Uniform => Interpolation::Uniform,
            InterpolationKind::FidleNormal => Interpolation::FidleNormal,
        };
        let e: Vec<f32> = interpolation_weights(n, how, &mut labels_rng);
        // Means of D(real) and D(fake) for the record, without dropout.
        let (loss, parts) = wgan_gp_critic_loss(
            &*d,
            &real,
            &fake,
            &e,
            cfg.gp_lambda,
            d.alloc_grads(),
            Some(&mut drop),
        )?;
        let w = Scalar::Device(parts.wasserstein);
        (
            loss,
            Some(Scalar::Device(parts.penalty.penalty)),
            w,
            Scalar::Host(0.0),
        )
    } else {
        let (s_real, tape) = d
            .score(real.traced(d.alloc_grads()), Some(&mut drop))?
            .split_tape();
        let s_fake = d.score(fake.put_tape(tape), Some(&mut drop))?;
        fn mean<B: Layers<f32>, T>(s: &Tensor<(usize,), f32, B, T>) -> Scalar<B> {
            Scalar::Device(s.retaped::<NoneTape>().mean::<(), _>())
        }
        let (mr, mf) = (mean(&s_real), mean(&s_fake));
        let loss = match cfg.loss {
            LossKind::Gan | LossKind::Nsgan => {
                let labels = Labels {
                    real: cfg.real_label,
                    flip: cfg.label_flip,
                };
                discriminator_bce_with(s_real, s_fake, &labels, &mut labels_rng)
            }
            LossKind::Lsgan => discriminator_lsgan(s_real, s_fake, &LsganTargets::default()),
            LossKind::Hinge => discriminator_hinge(s_real, s_fake),
            LossKind::Wgan | LossKind::WganGp => critic_loss(s_real, s_fake),
            LossKind::Vae => return Err(TrainError::Config("a VAE has no critic".into())),
        };
        (loss, None, mr, mf)
    };
    let value = Scalar::Device(loss.retaped::<NoneTape>());
    let mut grads = loss.backward();
    let norm_sq = Scalar::of(opt_d.step_on_device(d, &mut grads)?);
    if cfg.loss == LossKind::Wgan {
        clip_weights(d, cfg.clip)?;
        // Written outside the optimizer: its CUDA mirrors of them are stale.
        opt_d.forget_mirrors();
    }
    // For WGAN-GP, d_real carries the Wasserstein estimate and d_fake is 0 (see StepRecord).
    Ok(CriticUpdate {
        loss: value,
        gp,
        d_real,
        d_fake,
        norm_sq,
    })
}

/// One generator update; returns its loss and squared gradient norm.
fn generator_update<G, D, B>(
    cfg: &TrainConfig,
    g: &mut G,
    d: &D,
    opt_g: &mut Optimizer<f32, B>,
    z: Tensor<(usize, usize), f32, B>,
    step: u64,
) -> Result<(Scalar<B>, Scalar<B>), TrainError>
where
    B: Layers<f32>,
    G: Generator<f32, B> + TensorCollection<f32, B>,
    D: Critic<f32, B>,
{
    let grads = g.alloc_grads();
    let fake = g.generate(z.traced(grads), true)?;
    let mut drop = rng(cfg.seed, Stream::Dropout, step, u64::MAX);
    let s = d.score(fake, Some(&mut drop))?;
    let loss = match cfg.loss {
        LossKind::Gan => generator_saturating(s),
        LossKind::Nsgan => generator_non_saturating(s),
        LossKind::Lsgan => generator_lsgan(s, &LsganTargets::default()),
        LossKind::Hinge => generator_hinge(s),
        LossKind::Wgan | LossKind::WganGp => generator_loss(s),
        LossKind::Vae => return Err(TrainError::Config("a VAE has no critic".into())),
    };
    let value = Scalar::Device(loss.retaped::<NoneTape>());
    let mut grads = loss.backward();
    let norm_sq = Scalar::of(opt_g.step_on_device(g, &mut grads)?);
    Ok((value, norm_sq))
}

/// Builds a network from the run's seed; `which` (0: generator, 1: critic) selects the stream,
/// so a generator's initialization does not depend on the critic chosen.
///
/// ```
/// use mouton_models::mlp::MlpGenerator;
/// use mouton_train::config::{Preset, TrainConfig};
/// use mouton_train::trainer::build;
/// let mut cfg = TrainConfig::preset(Preset::Sheep1);
/// let a: MlpGenerator<f32, dfdx::prelude::Cpu> = build(&cfg, 0);
/// let b: MlpGenerator<f32, dfdx::prelude::Cpu> = build(&cfg, 0);
/// assert_eq!(a.l1.weight.as_vec(), b.l1.weight.as_vec()); // the same seed, the same weights
/// cfg.seed = 1;
/// let c: MlpGenerator<f32, dfdx::prelude::Cpu> = build(&cfg, 0);
/// assert_ne!(a.l1.weight.as_vec(), c.l1.weight.as_vec());
/// ```
pub fn build<M: BuildModule<Cpu, f32>>(cfg: &TrainConfig, which: u64) -> M {
    let dev = Cpu::seed_from_u64(derive(cfg.seed, Stream::Init, which, 0));
    M::build(&dev)
}

/// [`build`] on the CPU, then moved to `dev`: the same initial weights on every device.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::mlp::MlpDiscriminator;
/// use mouton_train::config::{Preset, TrainConfig};
/// use mouton_train::trainer::{build, build_on};
/// let cfg = TrainConfig::preset(Preset::Sheep1);
/// // Any dfdx device (`Cuda` with the `cuda` feature): here a second CPU device.
/// let moved: MlpDiscriminator<f32, Cpu> = build_on(&cfg, 1, &Cpu::seed_from_u64(99));
/// let built: MlpDiscriminator<f32, Cpu> = build(&cfg, 1);
/// assert_eq!(moved.l1.weight.as_vec(), built.l1.weight.as_vec());
/// ```
pub fn build_on<M, B>(cfg: &TrainConfig, which: u64, dev: &B) -> M
where
    B: Device<f32>,
    M: TensorCollection<f32, B>,
    M::To<f32, Cpu>: BuildModule<Cpu, f32> + TensorCollection<f32, Cpu, To<f32, B> = M>,
{
    use dfdx::nn::ToDevice;
    build::<M::To<f32, Cpu>>(cfg, which).to_device(dev)
}

fn optimizers<B: Device<f32>>(cfg: &TrainConfig) -> (Optimizer<f32, B>, Optimizer<f32, B>) {
    let o = |lr| Optimizer::new(cfg.optimizer, lr, cfg.beta1, cfg.beta2, cfg.eps);
    (o(cfg.lr_g), o(cfg.lr_d))
}

/// Steps per epoch and in total for `cfg` on `n_train` images.
///
/// ```
/// use mouton_train::config::{Preset, TrainConfig};
/// use mouton_train::trainer::schedule;
/// let mut cfg = TrainConfig::preset(Preset::Sheep2); // batch 64, n_critic 2: 128 images a step
/// assert_eq!(schedule(&cfg, 126_121), (985, 9_850)); // 10 epochs; the last partial step dropped
/// cfg.max_steps = Some(100);
/// assert_eq!(schedule(&cfg, 126_121), (985, 100));
/// ```
pub fn schedule(cfg: &TrainConfig, n_train: usize) -> (u64, u64) {
    let per = (n_train / cfg.batch_size.saturating_mul(cfg.n_critic).max(1)).max(1) as u64;
    let total = cfg.epochs.saturating_mul(per);
    (per, cfg.max_steps.map_or(total, |m| m.min(total)))
}

/// Runs a generic function with the generator and critic types that `cfg` names.
#[macro_export]
#[doc(hidden)]
macro_rules! with_architectures {
    ($cfg:expr, $dev:ty, $f:ident ( $($arg:expr),* )) => {{
        use $crate::config::{CriticArch, GeneratorArch};
        use mouton_models::dcgan::{DcganDiscriminator, DcganGenerator};
        use mouton_models::mlp::{MlpDiscriminator, MlpGenerator};
        use mouton_models::sheep::{Sheep1Discriminator, Sheep1Generator};
        type C = $dev;
        use mouton_models::dcgan::{
            DcganDiscriminator32, DcganDiscriminator64, DcganGenerator32, DcganGenerator64,
        };
        match ($cfg.generator, $cfg.critic) {
            // validate() allows 32 and 64 px for this pair only.
            (GeneratorArch::DcganG, CriticArch::DcganD) if $cfg.image_size == 32 => {
                $f::<DcganGenerator32<f32, C>, DcganDiscriminator32<f32, C>, C>($($arg),*)
            }
            (GeneratorArch::DcganG, CriticArch::DcganD) if $cfg.image_size == 64 => {
                $f::<DcganGenerator64<f32, C>, DcganDiscriminator64<f32, C>, C>($($arg),*)
            }
            (GeneratorArch::Sheep1G, CriticArch::Sheep1D | CriticArch::Sheep2Critic) => {
                $f::<Sheep1Generator<f32, C>, Sheep1Discriminator<f32, C>, C>($($arg),*)
            }
            (GeneratorArch::Sheep1G, CriticArch::MlpD) => {
                $f::<Sheep1Generator<f32, C>, MlpDiscriminator<f32, C>, C>($($arg),*)
            }
            (GeneratorArch::MlpG, CriticArch::Sheep1D | CriticArch::Sheep2Critic) => {
                $f::<MlpGenerator<f32, C>, Sheep1Discriminator<f32, C>, C>($($arg),*)
            }
            (GeneratorArch::MlpG, CriticArch::MlpD) => {
                $f::<MlpGenerator<f32, C>, MlpDiscriminator<f32, C>, C>($($arg),*)
            }
            (GeneratorArch::Sheep1G, CriticArch::DcganD) => {
                $f::<Sheep1Generator<f32, C>, DcganDiscriminator<f32, C>, C>($($arg),*)
            }
            (GeneratorArch::MlpG, CriticArch::DcganD) => {
                $f::<MlpGenerator<f32, C>, DcganDiscriminator<f32, C>, C>($($arg),*)
            }
            (GeneratorArch::DcganG, CriticArch::Sheep1D | CriticArch::Sheep2Critic) => {
                $f::<DcganGenerator<f32, C>, Sheep1Discriminator<f32, C>, C>($($arg),*)
            }
            (GeneratorArch::DcganG, CriticArch::MlpD) => {
                $f::<DcganGenerator<f32, C>, MlpDiscriminator<f32, C>, C>($($arg),*)
            }
            (GeneratorArch::DcganG, CriticArch::DcganD) => {
                $f::<DcganGenerator<f32, C>, DcganDiscriminator<f32, C>, C>($($arg),*)
            }
            (GeneratorArch::Vae, _) => Err($crate::TrainError::Config(
                "the vae generator is trained as a VAE (--preset vae), not with a critic".into(),
            )),
        }
    }};
}

/// Runs `$body` with the const `$L` set to `$latent`, one of
/// [`VAE_LATENT_DIMS`](crate::config::VAE_LATENT_DIMS) (the VAE's latent size is a type
/// parameter); any other size is a configuration error.
#[macro_export]
#[doc(hidden)]
macro_rules! with_vae_latent {
    ($latent:expr, $L:ident => $body:expr) => {
        match $latent {
            2 => {
                const $L: usize = 2;
                $body
            }
            4 => {
                const $L: usize = 4;
                $body
            }
            8 => {
                const $L: usize = 8;
                $body
            }
            16 => {
                const $L: usize = 16;
                $body
            }
            other => Err($crate::TrainError::Config(format!(
                "latent_dim: {other}: must be 2, 4, 8 or 16"
            ))),
        }
    };
}

/// Whether `run_dir` can take a run: it must be a folder or not exist yet, hold no run unless
/// `resume`, and not be in use by another training ([`run_lock`](crate::run_lock)). [`train`]
/// checks this too, under the lock; call it first to refuse before loading data.
///
/// ```
/// use mouton_train::trainer::check_run_dir;
/// # let dir = tempfile::tempdir()?;
/// assert!(check_run_dir(&dir.path().join("new"), false).is_ok());
/// std::fs::write(dir.path().join("f"), "")?;
/// let err = check_run_dir(&dir.path().join("f"), false).unwrap_err();
/// assert!(err.to_string().ends_with("f is a file, not a folder"), "{err}");
/// std::fs::write(dir.path().join("metrics.jsonl"), "")?;
/// assert!(check_run_dir(dir.path(), false).unwrap_err().is_bad_input());
/// assert!(check_run_dir(dir.path(), true).is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn check_run_dir(run_dir: &Path, resume: bool) -> Result<(), TrainError> {
    check_not_a_file(run_dir)?;
    crate::run_lock::check_free(run_dir)?;
    check_holds_no_run(run_dir, resume)
}

fn check_not_a_file(run_dir: &Path) -> Result<(), TrainError> {
    if run_dir.exists() && !run_dir.is_dir() {
        return Err(TrainError::RunDir(format!(
            "{} is a file, not a folder",
            run_dir.display()
        )));
    }
    Ok(())
}

fn check_holds_no_run(run_dir: &Path, resume: bool) -> Result<(), TrainError> {
    if !resume && (!checkpoint::list(run_dir)?.is_empty() || run_dir.join("metrics.jsonl").exists())
    {
        return Err(TrainError::RunDir(format!(
            "{} already holds a run: continue it with --resume, or choose another --run-dir",
            run_dir.display()
        )));
    }
    Ok(())
}

/// Trains on `data` into `run_dir` (created if needed), with the architectures `cfg` names.
/// With `opts.resume`, continues from the newest checkpoint there (from scratch, with a
/// warning, if none was written yet); without it, refuses a directory that already holds a run.
///
/// ```
/// use mouton_train::config::{CriticArch, GeneratorArch, Preset, TrainConfig};
/// use mouton_train::trainer::{train, Event, RunOptions};
/// # let dir = tempfile::tempdir()?;
/// let mut cfg = TrainConfig::preset(Preset::Sheep1);
/// // FIDLE's small fully connected pair on 80 synthetic sheep: 4 steps of 16 images.
/// (cfg.generator, cfg.critic) = (GeneratorArch::MlpG, CriticArch::MlpD);
/// (cfg.synthetic_count, cfg.batch_size, cfg.epochs) = (80, 16, 1);
/// let data = mouton_train::data::load(&cfg)?; // 72 to train on, 8 held out
/// let run = dir.path().join("run");
/// let mut steps = 0;
/// let summary = train(&cfg, &data, &run, &RunOptions::default(), &mut |e| {
///     if let Event::Step(s) = e {
///         steps += 1;
///         assert!(s.d_loss.is_finite() && s.g_loss.is_finite());
///     }
/// })?;
/// assert_eq!((summary.steps, steps), (4, 4));
/// assert!(summary.checkpoint.unwrap().is_file());
/// assert!(run.join("samples/epoch_001.png").is_file() && run.join("config.toml").is_file());
/// // The directory now holds a run: training again there needs `resume`.
/// assert!(train(&cfg, &data, &run, &RunOptions::default(), &mut |_| {}).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn train(
    cfg: &TrainConfig,
    data: &TrainingData,
    run_dir: &Path,
    opts: &RunOptions,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Summary, TrainError> {
    cfg.validate()?;
    match opts.device {
        DeviceChoice::Cpu if opts.tf32 => Err(TrainError::Config(
            "TF32 applies to CUDA runs only (--device cuda)".into(),
        )),
        DeviceChoice::Cpu if opts.cudnn => Err(TrainError::Config(
            "cuDNN applies to CUDA runs only (--device cuda)".into(),
        )),
        DeviceChoice::Cpu if cfg.loss == LossKind::Vae => {
            let dev = Cpu::default();
            with_vae_latent!(cfg.vae_latent(), L => run_vae::<L, _>(cfg, data, run_dir, opts, on_event, &dev))
        }
        DeviceChoice::Cpu => {
            let dev = Cpu::default();
            with_architectures!(cfg, Cpu, run(cfg, data, run_dir, opts, on_event, &dev))
        }
        DeviceChoice::Cuda(ordinal) => train_cuda(cfg, data, run_dir, opts, on_event, ordinal),
    }
}

#[cfg(feature = "cuda")]
fn train_cuda(
    cfg: &TrainConfig,
    data: &TrainingData,
    run_dir: &Path,
    opts: &RunOptions,
    on_event: &mut dyn FnMut(Event<'_>),
    ordinal: usize,
) -> Result<Summary, TrainError> {
    let dev = mouton_models::layers::open_cuda(ordinal, cfg.seed)
        .map_err(|e| TrainError::Device(format!("cuda:{ordinal}: {e}")))?;
    mouton_models::layers::set_tf32_gemms(opts.tf32);
    mouton_models::layers::set_cudnn_convs(opts.cudnn)
        .map_err(|e| TrainError::Device(format!("cuda:{ordinal}: {e}")))?;
    if cfg.loss == LossKind::Vae {
        return with_vae_latent!(cfg.vae_latent(), L => run_vae::<L, _>(cfg, data, run_dir, opts, on_event, &dev));
    }
    with_architectures!(
        cfg,
        dfdx::prelude::Cuda,
        run(cfg, data, run_dir, opts, on_event, &dev)
    )
}

#[cfg(not(feature = "cuda"))]
fn train_cuda(
    _cfg: &TrainConfig,
    _data: &TrainingData,
    _run_dir: &Path,
    _opts: &RunOptions,
    _on_event: &mut dyn FnMut(Event<'_>),
    ordinal: usize,
) -> Result<Summary, TrainError> {
    Err(TrainError::Device(format!(
        "cuda:{ordinal}: this mouton was built without CUDA support; build it with \
         `cargo build --release --features cuda` (CUDA toolkit) or scripts/build-cuda.sh"
    )))
}

/// One step's updates: networks, optimizers, the epoch's batches, step, epoch -> its record.
type StepFn<'a, G, D, B> = dyn FnMut(
        &mut G,
        &mut D,
        &mut Optimizer<f32, B>,
        &mut Optimizer<f32, B>,
        &mut mouton_data::Batches<'_>,
        u64,
        u64,
    ) -> Result<StepRecord, TrainError>
    + 'a;

/// The loop shared by every model: schedule, batches, metrics, samples, checkpoints, resume.
/// `step_fn` does one step's updates and returns its record (images/s filled in here).
#[allow(clippy::too_many_arguments)]
fn drive<G, D, B>(
    cfg: &TrainConfig,
    data: &TrainingData,
    run_dir: &Path,
    opts: &RunOptions,
    on_event: &mut dyn FnMut(Event<'_>),
    mut g: G,
    mut d: D,
    mut ema: Option<G>,
    step_fn: &mut StepFn<'_, G, D, B>,
    dev: &B,
) -> Result<Summary, TrainError>
where
    B: Layers<f32>,
    G: Generator<f32, B> + TensorCollection<f32, B>,
    D: TensorCollection<f32, B>,
{
    cfg.validate()?;
    check_not_a_file(run_dir)?;
    let samples_dir = run_dir.join("samples");
    std::fs::create_dir_all(&samples_dir).map_err(io_err(&samples_dir))?;
    let _lock = crate::run_lock::lock(run_dir)?;
    // Under the lock: a run that held it a moment ago may have left a run here.
    check_holds_no_run(run_dir, opts.resume)?;
    let existing = checkpoint::list(run_dir)?;
    let config_path = run_dir.join("config.toml");
    let text = cfg.to_toml();
    mouton_data::write_atomically(&config_path, |f| {
        std::io::Write::write_all(f, text.as_bytes())
    })?;
    let metrics_path = run_dir.join("metrics.jsonl");

    let (mut opt_g, mut opt_d) = optimizers(cfg);
    if cfg.ema.is_some() != ema.is_some() {
        return Err(TrainError::Config(
            "ema: the moving average of the generator was not built".into(),
        ));
    }
    if let Some(avg) = &mut ema {
        crate::ema::copy(avg, &g)?;
    }
    let mut start = 0;
    let mut last_checkpoint = None;
    if opts.resume {
        match existing.last() {
            Some((_, path)) => {
                // A run that starts keeping an average on resume starts it from the weights
                // it resumes with.
                let fresh_average = ema.is_some() && !checkpoint::holds_average(path)?;
                start = checkpoint::load(
                    path,
                    State {
                        g: &mut g,
                        d: &mut d,
                        opt_g: &mut opt_g,
                        opt_d: &mut opt_d,
                        ema: ema.as_mut().filter(|_| !fresh_average),
                    },
                )?;
                if let (true, Some(avg)) = (fresh_average, &mut ema) {
                    crate::ema::copy(avg, &g)?;
                    on_event(Event::Warning(format!(
                        "{} holds no moving average of the generator: the average (ema) starts \
                         from its step-{start} weights",
                        path.display()
                    )));
                }
                metrics::truncate_after(&metrics_path, start)?;
                last_checkpoint = Some(path.clone());
            }
            None => {
                on_event(Event::Warning(format!(
                    "{}: no checkpoint yet, starting from step 0",
                    run_dir.display()
                )));
                metrics::truncate_after(&metrics_path, 0)?;
            }
        }
    }

    let (per_epoch, total) = schedule(cfg, data.train.len());
    if start >= total {
        on_event(Event::Warning(format!(
            "the run already has {start} steps and epochs/max_steps ask for {total}: nothing \
             to train (raise epochs or max_steps to go on)"
        )));
    }
    on_event(Event::Start {
        start_step: start,
        total_steps: total,
        steps_per_epoch: per_epoch,
        data: &data.source,
        images: (data.train.len(), data.validation.len()),
    });
    let mut board = if cfg.tensorboard {
        let mut b = crate::tensorboard::EventWriter::create(run_dir)?;
        if opts.resume {
            // What earlier files hold past the checkpoint is trained again: TensorBoard drops
            // it on this mark.
            b.session_start(start + 1)?;
        }
        b.flush()?;
        Some(b)
    } else {
        None
    };
    let fixed_z = sampling::latent_of(cfg.seed, 0, 64, g.latent());
    let n_metric = data.validation.len().min(512);
    let metric_z = sampling::latent_of(cfg.seed, 1, n_metric, g.latent());
    let mut batches = None;
    let mut last_epoch = None;
    let mut epoch_start = Instant::now();
    for step in start..total {
        let t0 = Instant::now();
        let epoch = step / per_epoch;
        let k = step % per_epoch;
        if batches.is_none() || k == 0 {
            let seed = derive(cfg.seed, Stream::Shuffle, epoch, 0);
            let mut it = data.train.batches(cfg.batch_size, seed, true);
            for _ in 0..k * cfg.n_critic as u64 {
                it.next();
            }
            batches = Some(it);
            if k == 0 {
                epoch_start = Instant::now();
            }
        }
        let it = batches
            .as_mut()
            .ok_or_else(|| TrainError::NoData("no batches".into()))?;
        let mut record = step_fn(&mut g, &mut d, &mut opt_g, &mut opt_d, it, step, epoch)?;
        if let (Some(avg), Some(decay)) = (&mut ema, cfg.ema) {
            // `step` generator updates came before this step's.
            crate::ema::update(avg, &g, crate::ema::decay_at(decay, step))?;
        }
        record.images_per_s =
            (cfg.batch_size * cfg.n_critic) as f64 / t0.elapsed().as_secs_f64().max(1e-9);
        metrics::append(&metrics_path, &record)?;
        if let Some(b) = &mut board {
            b.add_step(&record)?;
            b.flush()?;
        }
        on_event(Event::Step(&record));

        let done = step + 1;
        let epoch_end = k + 1 == per_epoch || done == total;
        let stop = opts.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) && done < total;
        let periodic = cfg.checkpoint_every.is_some_and(|n| done % n == 0);
        // The epoch's samples and metrics, before its checkpoint as they always were.
        let quality = if epoch_end {
            let (side, px) = (cfg.image_size, cfg.image_size * cfg.image_size);
            // The moving average draws when the run keeps one.
            let samples = sampling::generate(ema.as_mut().unwrap_or(&mut g), &fixed_z, dev)?;
            let grid = samples_dir.join(format!("epoch_{:03}.png", epoch + 1));
            sampling::write_grid(&grid, &samples, side, 8)?;
            if let Some(b) = &mut board {
                let png = std::fs::read(&grid).map_err(io_err(&grid))?;
                b.add_gray_png("samples", done, &png)?;
            }
            let (swd, swd_real_baseline, diversity_ratio, swd_trained) = if n_metric >= 8 {
                let val = data.validation.as_slice();
                let half = n_metric / 2;
                let swd_of = |fake: &[f32]| {
                    eval::swd(
                        &fake[..half * px],
                        &val[..half * px],
                        side,
                        cfg.swd_projections,
                        cfg.seed,
                    )
                };
                let fake = sampling::generate(ema.as_mut().unwrap_or(&mut g), &metric_z, dev)?;
                let swd = swd_of(&fake)?;
                // With an average, the trained weights' distance too, to show what it brings.
                let swd_trained = match ema {
                    Some(_) => Some(swd_of(&sampling::generate(&mut g, &metric_z, dev)?)?),
                    None => None,
                };
                let base = eval::swd(
                    &val[half * px..2 * half * px],
                    &val[..half * px],
                    side,
                    cfg.swd_projections,
                    cfg.seed,
                )?;
                let m = half.min(64);
                let div = eval::mean_pairwise_distance(&fake[..m * px], side)
                    / eval::mean_pairwise_distance(&val[..m * px], side).max(1e-12);
                (Some(swd), Some(base), Some(div), swd_trained)
            } else {
                (None, None, None, None)
            };
            if let Some(frac) = cfg.detect_collapse {
                if let Some(diversity_ratio) = diversity_ratio.filter(|&d| d < frac) {
                    on_event(Event::Warning(format!(
                        "epoch {}: possible mode collapse: the samples' diversity is {:.0}% of the real images' (threshold {:.0}%)",
                        epoch + 1,
                        diversity_ratio * 100.0,
                        frac * 100.0
                    )));
                }
            }
            Some((swd, swd_real_baseline, diversity_ratio, swd_trained))
        } else {
            None
        };
        if !(epoch_end || stop || periodic) {
            continue;
        }
        let path = checkpoint::save(
            run_dir,
            done,
            State {
                g: &mut g,
                d: &mut d,
                opt_g: &mut opt_g,
                opt_d: &mut opt_d,
                ema: ema.as_mut(),
            },
            cfg.keep_checkpoints,
        )?;
        match quality {
            Some((swd, swd_real_baseline, diversity_ratio, swd_trained)) => {
                let rec = EpochRecord {
                    kind: "epoch".into(),
                    step: done,
                    epoch: epoch + 1,
                    swd,
                    swd_real_baseline,
                    diversity_ratio,
                    swd_trained,
                    seconds: epoch_start.elapsed().as_secs_f64(),
                };
                metrics::append(&metrics_path, &rec)?;
                if let Some(b) = &mut board {
                    b.add_epoch(&rec)?;
                    b.flush()?;
                }
                let (steps, _) = metrics::read(&metrics_path)?;
                crate::plot::loss_png(&steps, &run_dir.join("loss.png"))?;
                on_event(Event::Epoch(&rec, &path));
                last_epoch = Some(rec);
            }
            None => on_event(Event::Checkpoint(done, &path)),
        }
        last_checkpoint = Some(path);
        if stop {
            return Ok(Summary {
                steps: done,
                checkpoint: last_checkpoint,
                last_epoch,
                interrupted: true,
            });
        }
    }
    Ok(Summary {
        steps: total.max(start),
        checkpoint: last_checkpoint,
        last_epoch,
        interrupted: false,
    })
}

/// GAN training with the architectures `G` and `D`.
fn run<G, D, B>(
    cfg: &TrainConfig,
    data: &TrainingData,
    run_dir: &Path,
    opts: &RunOptions,
    on_event: &mut dyn FnMut(Event<'_>),
    dev: &B,
) -> Result<Summary, TrainError>
where
    B: Layers<f32>,
    G: Generator<f32, B> + TensorCollection<f32, B>,
    D: Critic<f32, B> + TensorCollection<f32, B>,
    G::To<f32, Cpu>: BuildModule<Cpu, f32> + TensorCollection<f32, Cpu, To<f32, B> = G>,
    D::To<f32, Cpu>: BuildModule<Cpu, f32> + TensorCollection<f32, Cpu, To<f32, B> = D>,
{
    let g: G = build_on(cfg, 0, dev);
    let d: D = build_on(cfg, 1, dev);
    // Its own tensors (see crate::ema): built, not cloned.
    let ema: Option<G> = cfg.ema.map(|_| build_on(cfg, 0, dev));
    let signed = g.output_range() == OutputRange::MinusOneOne;
    let inject_at = opts.inject_nan_at_step;
    let mut step_fn = |g: &mut G,
                       d: &mut D,
                       opt_g: &mut Optimizer<f32, B>,
                       opt_d: &mut Optimizer<f32, B>,
                       it: &mut mouton_data::Batches<'_>,
                       step: u64,
                       epoch: u64|
     -> Result<StepRecord, TrainError> {
        // Every upload first: the updates then queue their work without waiting.
        let mut inputs = Vec::with_capacity(cfg.n_critic);
        for j in 0..cfg.n_critic as u64 {
            let batch = it
                .next()
                .ok_or_else(|| TrainError::NoData("ran out of batches within an epoch".into()))?;
            let mut pixels = batch.pixels;
            if signed {
                // A tanh generator: real images go to [-1, 1] too.
                pixels.iter_mut().for_each(|v| *v = *v * 2.0 - 1.0);
            }
            let side = cfg.image_size;
            let n = batch.indices.len();
            let real: Images<B> = dev.tensor_from_vec(pixels, (n, 1, side, side));
            let z = latent_batch(dev, cfg.seed, Stream::CriticLatent, step, j, n, g.latent());
            inputs.push((real, z));
        }
        let z_g = latent_batch(
            dev,
            cfg.seed,
            Stream::GeneratorLatent,
            step,
            0,
            cfg.batch_size,
            g.latent(),
        );
        let mut critic = Vec::with_capacity(cfg.n_critic);
        for (j, (real, z)) in inputs.into_iter().enumerate() {
            critic.push(critic_update(cfg, g, d, opt_d, real, z, step, j as u64)?);
        }
        let (g_value, g_norm_sq) = generator_update(cfg, g, d, opt_g, z_g, step)?;
        // The step's scalars, read once its work is queued.
        let (mut d_loss, mut gp_sum, mut d_real, mut d_fake, mut norm_d) =
            (0.0, None, 0.0, 0.0, 0.0);
        for (j, u) in critic.iter().enumerate() {
            let inject = inject_at == Some(step + 1) && j == 0;
            let value = if inject { f64::NAN } else { u.loss.get() };
            d_loss += finite_or_stop(value, step, "critic loss")?;
            if let Some(gp) = &u.gp {
                gp_sum = Some(gp_sum.unwrap_or(0.0) + gp.get());
            }
            d_real += u.d_real.get();
            d_fake += u.d_fake.get();
            norm_d = u.norm_sq.get().sqrt();
        }
        let nc = cfg.n_critic as f64;
        let g_loss = finite_or_stop(g_value.get(), step, "generator loss")?;
        let norm_g = g_norm_sq.get().sqrt();
        // The optimizer's norm is NaN when a weight is not finite after the update.
        finite_or_stop(norm_d, step, "critic weights")?;
        finite_or_stop(norm_g, step, "generator weights")?;
        Ok(StepRecord {
            kind: "step".into(),
            step: step + 1,
            epoch: epoch + 1,
            d_loss: d_loss / nc,
            g_loss,
            gp: gp_sum.map(|s| s / nc),
            d_real: d_real / nc,
            d_fake: d_fake / nc,
            grad_norm_d: norm_d,
            grad_norm_g: norm_g,
            images_per_s: 0.0,
            recon: None,
            kl: None,
            kl_weight: None,
        })
    };
    drive(
        cfg,
        data,
        run_dir,
        opts,
        on_event,
        g,
        d,
        ema,
        &mut step_fn,
        dev,
    )
}

/// VAE training: one update per step of `reconstruction BCE + kl_weight x KL` (the weight
/// ramped up over `kl_warmup` epochs when set).
fn run_vae<const L: usize, B: Layers<f32>>(
    cfg: &TrainConfig,
    data: &TrainingData,
    run_dir: &Path,
    opts: &RunOptions,
    on_event: &mut dyn FnMut(Event<'_>),
    dev: &B,
) -> Result<Summary, TrainError> {
    use mouton_losses::vae::{kl_divergence, reconstruction_bce, reparameterize, vae_loss, KlForm};
    let vae: mouton_models::vae::Vae<L, f32, B> = build_on(cfg, 0, dev);
    let ema: Option<mouton_models::vae::Vae<L, f32, B>> = cfg.ema.map(|_| build_on(cfg, 0, dev));
    let form = if cfg.kl_fidle_no_half {
        KlForm::FidleNoHalf
    } else {
        KlForm::Exact
    };
    let inject_at = opts.inject_nan_at_step;
    let (per_epoch, _) = schedule(cfg, data.train.len());
    let mut step_fn = |vae: &mut mouton_models::vae::Vae<L, f32, B>,
                       _: &mut (),
                       opt: &mut Optimizer<f32, B>,
                       _: &mut Optimizer<f32, B>,
                       it: &mut mouton_data::Batches<'_>,
                       step: u64,
                       epoch: u64|
     -> Result<StepRecord, TrainError> {
        let batch = it
            .next()
            .ok_or_else(|| TrainError::NoData("ran out of batches within an epoch".into()))?;
        let n = batch.indices.len();
        let target = dev.tensor_from_vec(batch.pixels.clone(), (n, 784usize));
        let x: Images<B> = dev.tensor_from_vec(batch.pixels, (n, 1, 28, 28));
        let (mu, logvar) = vae.encode(x.traced(vae.alloc_grads()))?;
        // Each op is recorded once on the tape that reaches the loss: the KL reads tapeless
        // copies of both heads, the sample takes the heads' tapes.
        let (kl_mu, kl_lv) = (mu.with_empty_tape(), logvar.with_empty_tape());
        let mut r = rng(cfg.seed, Stream::CriticLatent, step, 0);
        let z = reparameterize(mu, logvar, &mut r)?;
        let logits = vae.decode(z)?.reshape_like(&(n, 784usize));
        let recon = reconstruction_bce(logits, target)?;
        let kl = kl_divergence(kl_mu, kl_lv, form)?;
        let (recon_v, kl_v) = (recon.array() as f64, kl.array() as f64);
        let kl_weight = cfg.kl_weight_at(step, per_epoch);
        let loss = vae_loss(recon, kl, kl_weight);
        let value = if inject_at == Some(step + 1) {
            f64::NAN
        } else {
            loss.array() as f64
        };
        finite_or_stop(value, step, "VAE loss")?;
        let mut grads = loss.backward();
        let norm = opt.step(vae, &mut grads)?;
        // The optimizer's norm is NaN when a weight is not finite after the update.
        finite_or_stop(norm, step, "VAE weights")?;
        Ok(StepRecord {
            kind: "step".into(),
            step: step + 1,
            epoch: epoch + 1,
            d_loss: value,
            g_loss: kl_weight * kl_v,
            gp: None,
            d_real: 0.0,
            d_fake: 0.0,
            grad_norm_d: 0.0,
            grad_norm_g: norm,
            images_per_s: 0.0,
            recon: Some(recon_v),
            kl: Some(kl_v),
            kl_weight: Some(kl_weight),
        })
    };
    drive(
        cfg,
        data,
        run_dir,
        opts,
        on_event,
        vae,
        (),
        ema,
        &mut step_fn,
        dev,
    )
}
