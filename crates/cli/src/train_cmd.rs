//! `mouton train`, `sample`, `interpolate`, `eval`, `history`: glue over mouton-train.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use mouton_train::checkpoint::{Loaded, Pick, Weights};
use mouton_train::config::{
    CriticArch, GeneratorArch, InterpolationKind, LossKind, OptimizerKind, Overrides, Preset,
    TrainConfig,
};
use mouton_train::trainer::{Event, RunOptions};
use mouton_train::{data, eval, metrics, sampling, TrainError};

use crate::output::{cannot_write, check_output};
use crate::{signals, BadInput, Interrupted};
use mouton_train::trainer::DeviceChoice;

pub(crate) fn lib_err(e: TrainError) -> anyhow::Error {
    if e.is_bad_input() {
        BadInput(e.to_string()).into()
    } else {
        // The message already holds its cause (an I/O error's text): printing the error chain
        // as well said it twice.
        anyhow::Error::msg(e.to_string())
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PresetArg {
    /// FIDLE SHEEP1: DCGAN, non-saturating BCE, Adam 1e-4, batch 32.
    Sheep1,
    /// FIDLE SHEEP2: WGAN-GP, n_critic 2, Adam 2e-4 (0.5, 0.9), batch 64.
    Sheep2,
    /// A convolutional VAE (latent 2): BCE reconstruction + KL, Adam 1e-3, batch 64.
    Vae,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LossArg {
    Gan,
    Nsgan,
    Lsgan,
    Hinge,
    Wgan,
    #[value(name = "wgan-gp")]
    WganGp,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OptimizerArg {
    Adam,
    Rmsprop,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum InterpolationArg {
    Uniform,
    #[value(name = "fidle-normal")]
    FidleNormal,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The run directory: config.toml, metrics.jsonl, samples/, loss.png, checkpoints/.
    #[arg(long)]
    run_dir: PathBuf,
    /// Continue the run in --run-dir from its newest checkpoint (only --epochs, --max-steps,
    /// --checkpoint-every, --keep-checkpoints, --detect-collapse, --tensorboard and --ema may
    /// change; --epochs alone lifts a saved --max-steps cap).
    #[arg(long)]
    resume: bool,
    /// Training images (any Quick Draw format); without it, synthetic sheep.
    #[arg(long)]
    data: Option<PathBuf>,
    /// The data's format when it cannot be detected (bitmap28 is never guessed). `--format`
    /// works too, as in `mouton data` and `mouton eval`.
    #[arg(long, alias = "format", value_parser = ["ndjson", "binary", "npy", "bitmap28"])]
    data_format: Option<String>,
    /// Start from a preset (default sheep1).
    #[arg(long, value_enum)]
    preset: Option<PresetArg>,
    /// Generator architecture (default: the preset's).
    #[arg(long, value_parser = ["sheep1-g", "mlp-g", "dcgan-g"])]
    generator: Option<String>,
    /// Critic architecture (default: the preset's).
    #[arg(long, value_parser = ["sheep1-d", "sheep2-critic", "mlp-d", "dcgan-d"])]
    critic: Option<String>,
    /// Adversarial loss (switching it takes that loss's usual optimizer settings; the VAE's
    /// loss comes with --preset vae).
    #[arg(long, value_enum)]
    loss: Option<LossArg>,
    /// A TOML file of settings (the keys of config.toml); flags win over it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Epochs in the whole run.
    #[arg(long)]
    epochs: Option<u64>,
    /// Steps in the whole run, at most.
    #[arg(long)]
    max_steps: Option<u64>,
    /// Images per batch (default: the preset's).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Seed of everything random.
    #[arg(long)]
    seed: Option<u64>,
    /// Where to train: cpu, cuda (GPU 0) or cuda:N. CUDA needs a build with the `cuda`
    /// feature (see README); every model runs there.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// On CUDA, let the convolutions' GEMMs use TF32 tensor cores, as PyTorch's cuDNN does by
    /// default: faster, less exact (off: plain FP32, matching the CPU to about 1e-6).
    #[arg(long)]
    tf32: bool,
    /// On CUDA, run the convolutions cuDNN can express through cuDNN (found at run time:
    /// libcudnn.so.9 or .8, or the path in MOUTON_CUDNN), deterministic algorithms only.
    #[arg(long)]
    cudnn: bool,
    /// Optimizer of both networks (default: the preset's).
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerArg>,
    /// Generator learning rate.
    #[arg(long)]
    lr_g: Option<f64>,
    /// Critic / discriminator learning rate.
    #[arg(long)]
    lr_d: Option<f64>,
    /// Adam's beta1 (unused by RMSprop).
    #[arg(long)]
    beta1: Option<f64>,
    /// Adam's beta2, or RMSprop's alpha.
    #[arg(long)]
    beta2: Option<f64>,
    /// Critic updates per generator update.
    #[arg(long)]
    n_critic: Option<usize>,
    /// WGAN-GP penalty weight.
    #[arg(long)]
    gp_lambda: Option<f64>,
    /// WGAN-GP interpolation weights.
    #[arg(long, value_enum)]
    interpolation: Option<InterpolationArg>,
    /// WGAN weight clipping bound.
    #[arg(long)]
    clip: Option<f64>,
    /// BCE target for real images (0.9: one-sided label smoothing).
    #[arg(long)]
    real_label: Option<f64>,
    /// Probability of flipping a BCE label.
    #[arg(long)]
    label_flip: Option<f64>,
    /// Synthetic sheep to draw when there is no --data.
    #[arg(long)]
    synthetic_count: Option<usize>,
    /// Checkpoints kept in the run directory (the oldest are deleted).
    #[arg(long)]
    keep_checkpoints: Option<usize>,
    /// Also write a checkpoint every this many steps, not only at each epoch's end (SIGINT,
    /// SIGTERM and SIGHUP write one too, then stop).
    #[arg(long, value_name = "STEPS")]
    checkpoint_every: Option<u64>,
    /// Also write TensorBoard event files in the run directory (losses, quality metrics and
    /// sample grids; `tensorboard --logdir runs`). `--tensorboard false` stops them on resume.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    tensorboard: Option<bool>,
    /// Warn when the samples' diversity falls below this fraction of the real images'.
    #[arg(long, num_args = 0..=1, default_missing_value = "0.25")]
    detect_collapse: Option<f64>,
    /// Keep a moving average of the generator's weights with this decay (0.999 if no value
    /// is given), which then draws the epoch samples and metrics and `mouton sample`'s sheep
    /// (`--trained-weights` there for the generator's own). With --resume: a new decay, or an
    /// average started from the resumed weights.
    #[arg(long, num_args = 0..=1, default_missing_value = "0.999", value_name = "DECAY")]
    ema: Option<f64>,
    /// VAE: weight of the KL term.
    #[arg(long)]
    kl_weight: Option<f64>,
    /// VAE: FIDLE's KL without the 1/2.
    #[arg(long)]
    kl_fidle_no_half: bool,
    /// VAE: raise the KL term's weight linearly from 0 to --kl-weight over this many epochs
    /// (KL warm-up; FIDLE's recipe has none). Fractions of an epoch are fine.
    #[arg(long, value_name = "EPOCHS")]
    kl_warmup: Option<f64>,
    /// Image side in pixels: 28, or 32 / 64 with --generator dcgan-g --critic dcgan-d.
    #[arg(long)]
    image_size: Option<usize>,
    /// VAE: dimensions of the latent space, 2 (the default, which can be plotted), 4, 8 or
    /// 16.
    #[arg(long, value_name = "N")]
    latent_dim: Option<usize>,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
    /// Test hook: make the critic loss NaN at this step.
    #[arg(long, hide = true)]
    debug_inject_nan_at_step: Option<u64>,
}

impl TrainArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            preset: self.preset.map(|p| match p {
                PresetArg::Sheep1 => Preset::Sheep1,
                PresetArg::Sheep2 => Preset::Sheep2,
                PresetArg::Vae => Preset::Vae,
            }),
            loss: self.loss.map(|l| match l {
                LossArg::Gan => LossKind::Gan,
                LossArg::Nsgan => LossKind::Nsgan,
                LossArg::Lsgan => LossKind::Lsgan,
                LossArg::Hinge => LossKind::Hinge,
                LossArg::Wgan => LossKind::Wgan,
                LossArg::WganGp => LossKind::WganGp,
            }),
            generator: self.generator.as_deref().map(|g| match g {
                "mlp-g" => GeneratorArch::MlpG,
                "dcgan-g" => GeneratorArch::DcganG,
                _ => GeneratorArch::Sheep1G,
            }),
            critic: self.critic.as_deref().map(|c| match c {
                "mlp-d" => CriticArch::MlpD,
                "dcgan-d" => CriticArch::DcganD,
                "sheep2-critic" => CriticArch::Sheep2Critic,
                _ => CriticArch::Sheep1D,
            }),
            data: self.data.clone(),
            data_format: self.data_format.clone(),
            synthetic_count: self.synthetic_count,
            validation_fraction: None,
            epochs: self.epochs,
            max_steps: self.max_steps,
            batch_size: self.batch_size,
            seed: self.seed,
            optimizer: self.optimizer.map(|o| match o {
                OptimizerArg::Adam => OptimizerKind::Adam,
                OptimizerArg::Rmsprop => OptimizerKind::Rmsprop,
            }),
            lr_g: self.lr_g,
            lr_d: self.lr_d,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: None,
            n_critic: self.n_critic,
            gp_lambda: self.gp_lambda,
            interpolation: self.interpolation.map(|i| match i {
                InterpolationArg::Uniform => InterpolationKind::Uniform,
                InterpolationArg::FidleNormal => InterpolationKind::FidleNormal,
            }),
            clip: self.clip,
            real_label: self.real_label,
            label_flip: self.label_flip,
            keep_checkpoints: self.keep_checkpoints,
            checkpoint_every: self.checkpoint_every,
            tensorboard: self.tensorboard,
            ema: self.ema,
            swd_projections: None,
            detect_collapse: self.detect_collapse,
            kl_weight: self.kl_weight,
            kl_fidle_no_half: self.kl_fidle_no_half.then_some(true),
            kl_warmup: self.kl_warmup,
            image_size: self.image_size,
            latent_dim: self.latent_dim,
        }
    }
}

fn check_device(device: &str) -> Result<DeviceChoice> {
    let choice: DeviceChoice = device
        .parse()
        .map_err(|e| BadInput(format!("--device: {e}")))?;
    if matches!(choice, DeviceChoice::Cuda(_)) && !cfg!(feature = "cuda") {
        return Err(BadInput(format!(
            "--device {device}: this mouton was built without CUDA support; build it with \
             `cargo build --release --features cuda` (CUDA toolkit) or scripts/build-cuda.sh \
             (see README), or train on the CPU (--device cpu)"
        ))
        .into());
    }
    Ok(choice)
}

/// The settings a resumed run may change: none of them touches the weights' arithmetic.
const RESUMABLE: [&str; 7] = [
    "epochs",
    "max_steps",
    "checkpoint_every",
    "keep_checkpoints",
    "detect_collapse",
    "tensorboard",
    "ema",
];

fn resolve(args: &TrainArgs) -> Result<TrainConfig> {
    let flags = args.overrides();
    if args.resume {
        let path = args.run_dir.join("config.toml");
        if !path.is_file() {
            return Err(BadInput(format!(
                "--resume: {} does not exist (nothing to resume in {})",
                path.display(),
                args.run_dir.display()
            ))
            .into());
        }
        if args.config.is_some() {
            return Err(BadInput(
                "--resume continues the saved config.toml: --config cannot be given with it".into(),
            )
            .into());
        }
        let saved = TrainConfig::load(&path).map_err(lib_err)?;
        let mut cfg = flags.apply(saved.clone());
        let changed: Vec<String> = cfg
            .differences(&saved)
            .into_iter()
            .filter(|k| !RESUMABLE.contains(&k.as_str()))
            .collect();
        if !changed.is_empty() {
            return Err(BadInput(format!(
                "--resume continues the saved config.toml: only --epochs, --max-steps, \
                 --checkpoint-every, --keep-checkpoints, --detect-collapse, --tensorboard and \
                 --ema may change, not {}",
                changed.join(", ")
            ))
            .into());
        }
        if let (Some(e), None) = (flags.epochs, flags.max_steps) {
            // A new length in epochs replaces the run's length; a step cap left from a short
            // first run (a smoke test) would otherwise keep it from going on.
            if let Some(m) = cfg.max_steps.take() {
                if !args.quiet {
                    note!(
                        "note: --epochs {e} without --max-steps: the saved max_steps = {m} no \
                         longer caps the run"
                    );
                }
            }
        }
        cfg.validate().map_err(lib_err)?;
        return Ok(cfg);
    }
    let base = match &args.config {
        Some(p) => Overrides::load(p).map_err(lib_err)?,
        None => Overrides::default(),
    };
    base.then(flags).resolve().map_err(lib_err)
}

/// Training's console: the run's record is its directory, so progress lines are best effort.
struct Progress {
    quiet: bool,
    tty: bool,
    bar: Option<ProgressBar>,
    last_line: Instant,
    per_epoch: u64,
    /// Set once a line could not be written; the training goes on without them.
    out_failed: bool,
}

impl Progress {
    /// Prints a progress line. If stdout fails (a full disk, a terminal gone after SIGHUP), says
    /// so once on stderr and prints no more: stopping would lose the steps since the last
    /// checkpoint, and a SIGHUP's stop must still write its checkpoint.
    fn line(&mut self, text: &str) {
        if self.out_failed {
            return;
        }
        let res = match &self.bar {
            Some(b) => b.suspend(|| out!("{text}")),
            None => out!("{text}"),
        };
        if let Err(e) = res {
            self.out_failed = true;
            note!(
                "warning: {e:#}; training goes on without progress lines (metrics.jsonl has them)"
            );
        }
    }

    fn event(&mut self, e: Event<'_>) {
        match e {
            Event::Warning(w) => {
                if let Some(b) = &self.bar {
                    b.suspend(|| note!("warning: {w}"));
                } else {
                    note!("warning: {w}");
                }
            }
            _ if self.quiet => {}
            Event::Start {
                start_step,
                total_steps,
                steps_per_epoch,
                data,
                images,
            } => {
                self.per_epoch = steps_per_epoch;
                // (A resumed run that is already complete trains nothing: a warning said so.)
                let steps = if start_step < total_steps {
                    format!("steps {}..{total_steps}", start_step + 1)
                } else {
                    "no step to train".into()
                };
                self.line(&format!(
                    "training on {data}: {} images (+{} held out), {steps_per_epoch} steps per epoch, {steps}",
                    images.0, images.1
                ));
            }
            Event::Step(s) => {
                let msg = format!(
                    "d {:.4} g {:.4}{} · {:.0} img/s",
                    s.d_loss,
                    s.g_loss,
                    s.gp.map_or(String::new(), |gp| format!(" gp {gp:.4}")),
                    s.images_per_s
                );
                if self.tty {
                    let k = (s.step - 1) % self.per_epoch.max(1);
                    let bar = self.bar.get_or_insert_with(|| {
                        let b = ProgressBar::new(self.per_epoch);
                        b.set_style(
                            ProgressStyle::with_template(
                                "epoch {prefix:>3} [{bar:30}] {pos}/{len} ETA {eta} {msg}",
                            )
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> "),
                        );
                        b
                    });
                    bar.set_prefix(s.epoch.to_string());
                    bar.set_position(k + 1);
                    bar.set_message(msg);
                } else if self.last_line.elapsed() >= Duration::from_secs(10)
                    || s.step % self.per_epoch.max(1) == 1
                {
                    self.last_line = Instant::now();
                    self.line(&format!("epoch {} step {}: {msg}", s.epoch, s.step));
                }
            }
            Event::Checkpoint(step, path) => {
                let line = format!("step {step}: checkpoint {}", path.display());
                self.line(&line);
            }
            Event::Epoch(r, path) => {
                if let Some(b) = self.bar.take() {
                    b.finish_and_clear();
                }
                // With a moving average, `swd` is its samples'.
                let trained = r
                    .swd_trained
                    .map_or(String::new(), |t| format!("trained weights {t:.4}; "));
                let quality = match (r.swd, r.swd_real_baseline, r.diversity_ratio) {
                    (Some(s), Some(b), Some(d)) => format!(
                        "SWD {s:.4} ({trained}real vs real {b:.4}), diversity {:.0}% of real",
                        d * 100.0
                    ),
                    _ => "no metric (fewer than 8 held-out images)".into(),
                };
                let per = self.per_epoch.max(1);
                let ended = match r.step % per {
                    0 => "done".to_string(),
                    k => format!("stopped after {k} of its {per} steps"),
                };
                self.line(&format!(
                    "epoch {} {ended} (step {}, {:.1} s): {quality}; checkpoint {}",
                    r.epoch,
                    r.step,
                    r.seconds,
                    path.display()
                ));
            }
        }
    }
}

pub fn train(args: &TrainArgs) -> Result<()> {
    let device = check_device(&args.device)?;
    let cfg = resolve(args)?;
    // Before the data, which can take a while to load.
    mouton_train::trainer::check_run_dir(&args.run_dir, args.resume).map_err(lib_err)?;
    let data = data::load(&cfg).map_err(lib_err)?;
    if data.synthetic && !args.quiet {
        note!(
            "no --data: training on {} synthetic sheep drawn by mouton.",
            data.train.len() + data.validation.len()
        );
        note!("{}", mouton_data::SYNTH_NOTICE);
    }
    // From here on a signal stops the run at a step's end with a checkpoint (before, nothing
    // is written yet, and the default handling ends the process).
    let stop = signals::install(
        "finishing this step and writing a checkpoint",
        " (the last checkpoint stays)",
    )
    .map_err(|e| anyhow::anyhow!("cannot watch for SIGINT/SIGTERM: {e}"))?;
    let opts = RunOptions {
        resume: args.resume,
        inject_nan_at_step: args.debug_inject_nan_at_step,
        device,
        tf32: args.tf32,
        cudnn: args.cudnn,
        stop: Some(stop.flag.clone()),
    };
    let mut progress = Progress {
        quiet: args.quiet,
        tty: std::io::stdout().is_terminal(),
        bar: None,
        last_line: Instant::now(),
        per_epoch: 1,
        out_failed: false,
    };
    let summary = mouton_train::trainer::train(&cfg, &data, &args.run_dir, &opts, &mut |e| {
        progress.event(e)
    })
    .map_err(lib_err)?;
    if let Some(b) = progress.bar.take() {
        b.finish_and_clear();
    }
    if summary.interrupted {
        let (signal, code) = stop.received().unwrap_or(("a stop request", 130));
        let saved = summary.checkpoint.map_or("no checkpoint".into(), |p| {
            format!("checkpoint {}", p.display())
        });
        return Err(Interrupted {
            message: format!(
                "stopped by {signal} after step {}: {saved}; go on with `mouton train --run-dir \
                 {} --resume`",
                summary.steps,
                args.run_dir.display()
            ),
            code,
        }
        .into());
    }
    if !args.quiet {
        progress.line(&format!(
            "done: {} steps; run directory {} (config.toml, metrics.jsonl, samples/, loss.png{})",
            summary.steps,
            args.run_dir.display(),
            summary
                .checkpoint
                .map_or(String::new(), |p| format!(", {}", p.display()))
        ));
    }
    Ok(())
}

pub(crate) fn run_dir_check(dir: &Path) -> Result<()> {
    if !dir.join("config.toml").is_file() {
        return Err(BadInput(format!(
            "{}: not a run directory (no config.toml; train first with mouton train --run-dir {0})",
            dir.display()
        ))
        .into());
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct SampleArgs {
    /// A run directory.
    dir: PathBuf,
    #[command(flatten)]
    which: WhichCheckpoint,
    /// How many sheep: 1 to 65,536 in a grid, up to 16,777,216 in a .npy.
    #[arg(short, default_value_t = 64)]
    n: usize,
    /// Output: a grid (*.png), or every image as uint8 rows (*.npy, Google's numpy_bitmap
    /// layout, which `mouton data` and `mouton eval --real` or `--fake` read).
    #[arg(short, long)]
    output: PathBuf,
    /// Seed of the latent vectors (the same seed draws the same sheep in either output).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Instead of random sheep, a SIDE x SIDE map of a 2-D latent plane (a VAE's, --preset
    /// vae): columns and rows at the N(0, 1) quantiles of 5% to 95%, z1 growing upwards.
    #[arg(long, value_name = "SIDE", conflicts_with_all = ["n", "seed"],
          value_parser = clap::value_parser!(u64).range(2..=256))]
    latent_map: Option<u64>,
}

/// Which checkpoint's generator draws (the newest unless told), and with which weights.
#[derive(Debug, Args)]
pub struct WhichCheckpoint {
    /// Draw with the generator's trained weights, not the moving average of them that a run
    /// trained with --ema keeps (and draws with by default).
    #[arg(long)]
    trained_weights: bool,
    /// The checkpoint of this step (`checkpoints/step_N.safetensors`).
    #[arg(long, conflicts_with = "epoch")]
    step: Option<u64>,
    /// The checkpoint of this epoch's end (as `metrics.jsonl` records it; training keeps the
    /// newest --keep-checkpoints).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    epoch: Option<u64>,
}

impl WhichCheckpoint {
    pub(crate) fn pick(&self) -> Pick {
        match (self.step, self.epoch) {
            (Some(s), _) => Pick::Step(s),
            (None, Some(e)) => Pick::Epoch(e),
            (None, None) => Pick::Newest,
        }
    }

    pub(crate) fn weights(&self) -> Weights {
        if self.trained_weights {
            Weights::Trained
        } else {
            Weights::Average
        }
    }
}

/// "the step-N generator", or "the step-N generator's moving average" when that drew.
pub(crate) fn generator_name(loaded: &Loaded) -> String {
    let avg = if loaded.averaged {
        "'s moving average"
    } else {
        ""
    };
    format!("the step-{} generator{avg}", loaded.step)
}

/// The most images one grid holds: a few minutes of CPU, and at most 285 MB of pixels at 64 px
/// (a square grid of 256 x 256 cells is about 17,000 pixels a side). More used to abort on a
/// failed allocation, not say why.
pub(crate) const MAX_GRID_IMAGES: usize = 65_536;

/// The most images one `.npy` holds: 13 GB at 28 px, about 17 hours of a 2-core CPU. The
/// images are streamed to the file, so memory is not the limit; a typo's 10^12 is.
const MAX_NPY_IMAGES: usize = 1 << 24;

/// Latent vectors per generated chunk (a multiple of the generator's 64-image batches, so the
/// images do not depend on it): a progress update every few seconds on a CPU.
const SAMPLE_CHUNK: usize = 1024;

pub fn sample(a: &SampleArgs) -> Result<()> {
    if let Some(side) = a.latent_map {
        return latent_map(a, side as usize);
    }
    let ext = a
        .output
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase());
    let npy = ext.as_deref() == Some("npy");
    if let Some(e) = ext.as_deref().filter(|e| !["png", "npy"].contains(e)) {
        return Err(BadInput(format!(
            "{}: sample writes a grid (name it *.png) or the images as uint8 rows (*.npy), \
             not .{e}",
            a.output.display()
        ))
        .into());
    }
    let most = if npy { MAX_NPY_IMAGES } else { MAX_GRID_IMAGES };
    if a.n == 0 || a.n > most {
        let what = if npy { "a .npy" } else { "a grid" };
        return Err(BadInput(format!("-n {}: {what} holds 1 to {most} sheep", a.n)).into());
    }
    run_dir_check(&a.dir)?;
    check_output(&a.output, ext.as_deref())?;
    let k = sampling::run_latent(&a.dir).map_err(lib_err)?;
    let side = sampling::run_image_size(&a.dir).map_err(lib_err)?;
    let mut npy_out = if npy {
        Some(mouton_data::NpyRowWriter::create(&a.output, side * side).map_err(cannot_write)?)
    } else {
        None
    };
    // Ctrl-C between chunks drops the unfinished file (nothing is left at -o, nor beside it).
    let stop = signals::install("stopping after this chunk of sheep, writing nothing", "")
        .map_err(|e| anyhow::anyhow!("cannot watch for SIGINT/SIGTERM: {e}"))?;
    let bar = ProgressBar::new(a.n as u64);
    bar.set_style(
        ProgressStyle::with_template("sampling [{bar:30}] {pos}/{len} ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut grid = Vec::new();
    let mut write_failed = None;
    let mut z = sampling::latent_chunks(a.seed, 2, a.n, k, SAMPLE_CHUNK);
    let (pick, weights) = (a.which.pick(), a.which.weights());
    let loaded = sampling::generate_each(&a.dir, pick, weights, &mut z, &mut |images| {
        if stop.flag.load(std::sync::atomic::Ordering::SeqCst) {
            // Never shown: the signal is reported below.
            return Err(TrainError::RunDir("sampling stopped".into()));
        }
        match &mut npy_out {
            Some(w) => w.write_rows(&sampling::to_u8(images)).map_err(|e| {
                write_failed = Some(e.to_string());
                TrainError::from(e)
            })?,
            None => grid.extend_from_slice(images),
        }
        bar.inc((images.len() / (side * side)) as u64);
        Ok(())
    });
    bar.finish_and_clear();
    if let Some((signal, code)) = stop.received() {
        return Err(Interrupted {
            message: format!(
                "stopped by {signal}: nothing written to {}",
                a.output.display()
            ),
            code,
        }
        .into());
    }
    if let Some(e) = write_failed {
        return Err(cannot_write(e));
    }
    let loaded = loaded.map_err(lib_err)?;
    match npy_out {
        Some(w) => {
            w.finish().map_err(cannot_write)?;
        }
        None => {
            let cols = (a.n as f64).sqrt().ceil() as usize;
            sampling::write_grid(&a.output, &grid, side, cols).map_err(cannot_write)?;
        }
    }
    let layout = if npy {
        format!(" (uint8, {} x {})", a.n, side * side)
    } else {
        String::new()
    };
    out!(
        "wrote {}: {} sheep{layout} from {} (seed {})",
        a.output.display(),
        a.n,
        generator_name(&loaded),
        a.seed
    )?;
    Ok(())
}

/// `mouton sample --latent-map SIDE`: the decoded latent plane of a 2-D latent run.
fn latent_map(a: &SampleArgs, side: usize) -> Result<()> {
    run_dir_check(&a.dir)?;
    check_output(&a.output, Some("png"))?;
    let k = sampling::run_latent(&a.dir).map_err(lib_err)?;
    if k != 2 {
        return Err(BadInput(format!(
            "--latent-map: {}'s generator has {k} latent dimensions; a map needs 2 (a VAE \
             trained with the default --latent-dim 2: mouton train --preset vae)",
            a.dir.display()
        ))
        .into());
    }
    let z = sampling::latent_plane(side);
    let (images, loaded) =
        sampling::generate_from_run(&a.dir, a.which.pick(), a.which.weights(), &z)
            .map_err(lib_err)?;
    let px = sampling::run_image_size(&a.dir).map_err(lib_err)?;
    sampling::write_grid(&a.output, &images, px, side).map_err(cannot_write)?;
    out!(
        "wrote {}: a {side} x {side} map of the latent plane (N(0, 1) quantiles 5% to 95% on \
         each axis, z0 left to right, z1 bottom to top) from {}",
        a.output.display(),
        generator_name(&loaded)
    )?;
    Ok(())
}

#[derive(Debug, Args)]
pub struct InterpolateArgs {
    /// A run directory.
    dir: PathBuf,
    #[command(flatten)]
    which: WhichCheckpoint,
    /// Images per row, ends included.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Rows (each between two random latent vectors).
    #[arg(long, default_value_t = 1)]
    rows: usize,
    /// Output PNG.
    #[arg(short, long)]
    output: PathBuf,
    /// Seed of the latent vectors at the rows' ends.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn interpolate(a: &InterpolateArgs) -> Result<()> {
    if a.steps < 2 || a.rows == 0 {
        return Err(BadInput("--steps must be at least 2 and --rows at least 1".into()).into());
    }
    if a.steps.saturating_mul(a.rows) > MAX_GRID_IMAGES {
        return Err(BadInput(format!(
            "--steps {} x --rows {}: a grid holds at most {MAX_GRID_IMAGES} images",
            a.steps, a.rows
        ))
        .into());
    }
    run_dir_check(&a.dir)?;
    check_output(&a.output, Some("png"))?;
    let d = sampling::run_latent(&a.dir).map_err(lib_err)?;
    let ends = sampling::latent_of(a.seed, 3, 2 * a.rows, d);
    let mut z = Vec::new();
    for r in 0..a.rows {
        let (x, y) = (
            &ends[2 * r * d..(2 * r + 1) * d],
            &ends[(2 * r + 1) * d..(2 * r + 2) * d],
        );
        z.extend(sampling::interpolation(x, y, a.steps));
    }
    let (images, loaded) =
        sampling::generate_from_run(&a.dir, a.which.pick(), a.which.weights(), &z)
            .map_err(lib_err)?;
    let side = sampling::run_image_size(&a.dir).map_err(lib_err)?;
    sampling::write_grid(&a.output, &images, side, a.steps).map_err(cannot_write)?;
    out!(
        "wrote {}: {} row(s) of {} steps (slerp), {}",
        a.output.display(),
        a.rows,
        a.steps,
        generator_name(&loaded)
    )?;
    Ok(())
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A run directory, whose newest generator draws the images to judge (or give --fake).
    #[arg(required_unless_present = "fake")]
    dir: Option<PathBuf>,
    #[command(flatten)]
    which: WhichCheckpoint,
    /// Judge these images instead of a run's (any Quick Draw format: `mouton sample -o
    /// fake.npy`, another tool's uint8 .npy, drawings).
    #[arg(long, conflicts_with_all = ["dir", "step", "epoch", "trained_weights"])]
    fake: Option<PathBuf>,
    /// The --fake file's format when it cannot be detected.
    #[arg(long, value_parser = ["ndjson", "binary", "npy", "bitmap28"], requires = "fake")]
    fake_format: Option<String>,
    /// With --fake: the image side (drawings are rendered at it, bitmaps must have it; 28 if
    /// not given).
    #[arg(long, requires = "fake")]
    size: Option<usize>,
    /// Real images to compare with (any Quick Draw format).
    #[arg(long)]
    real: PathBuf,
    /// The real file's format when it cannot be detected.
    #[arg(long, value_parser = ["ndjson", "binary", "npy", "bitmap28"])]
    format: Option<String>,
    /// Images per side (at most half the real ones are used, the other half is the baseline).
    #[arg(short, default_value_t = 500)]
    n: usize,
    /// Seed of the generated images' latent vectors and of the SWD projections.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn evaluate(a: &EvalArgs) -> Result<()> {
    /// What is judged: a file of images, or the images a run's generator draws.
    enum Judged<'a> {
        File(&'a Path),
        Run(&'a Path),
    }
    let judged = match (&a.fake, &a.dir) {
        (Some(f), _) => Judged::File(f),
        (None, Some(dir)) => Judged::Run(dir),
        (None, None) => return Err(BadInput("give a run directory or --fake FILE".into()).into()),
    };
    let side = match judged {
        Judged::File(_) => a.size.unwrap_or(28),
        Judged::Run(dir) => {
            run_dir_check(dir)?;
            sampling::run_image_size(dir).map_err(lib_err)?
        }
    };
    if ![28, 32, 64].contains(&side) {
        return Err(BadInput(format!("--size {side}: must be 28, 32 or 64")).into());
    }
    // Read first: a bad real file should not cost a sampling.
    let real = data::load_file(&a.real, a.format.as_deref(), side).map_err(lib_err)?;
    let (fake, what) = match judged {
        Judged::File(f) => {
            let fake = data::load_file(f, a.fake_format.as_deref(), side).map_err(lib_err)?;
            let n = a.n.min(fake.len());
            let images = fake.as_slice()[..n * side * side].to_vec();
            (images, f.display().to_string())
        }
        Judged::Run(dir) => {
            let k = sampling::run_latent(dir).map_err(lib_err)?;
            let n = a.n.min(real.len() / 2);
            let (fake, loaded) = sampling::generate_from_run(
                dir,
                a.which.pick(),
                a.which.weights(),
                &sampling::latent_of(a.seed, 4, n, k),
            )
            .map_err(lib_err)?;
            (fake, generator_name(&loaded))
        }
    };
    let r =
        eval::report(&fake, real.as_slice(), side, a.seed).map_err(|e| BadInput(e.to_string()))?;
    out!("{what} vs {} ({} images per side)", a.real.display(), r.n)?;
    out!(
        "{:<12} {:>18} {:>14}",
        "metric",
        "generated-vs-real",
        "real-vs-real"
    )?;
    out!(
        "{:<12} {:>18.4} {:>14.4}",
        "SWD (p=2)",
        r.swd,
        r.swd_baseline
    )?;
    out!(
        "{:<12} {:>18.3} {:>14.3}",
        "precision",
        r.precision,
        r.precision_baseline
    )?;
    out!(
        "{:<12} {:>18.3} {:>14.3}",
        "recall",
        r.recall,
        r.recall_baseline
    )?;
    out!("(precision/recall: k = 3 nearest neighbours on 14x14 average-pooled pixels; lower SWD is better)")?;
    Ok(())
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// A run directory.
    dir: PathBuf,
    /// Output PNG (critic loss red, generator loss blue, gradient penalty green).
    #[arg(short, long)]
    output: PathBuf,
}

pub fn history(a: &HistoryArgs) -> Result<()> {
    let path = a.dir.join("metrics.jsonl");
    if !path.is_file() {
        return Err(BadInput(format!(
            "{}: no such file (not a run directory?)",
            path.display()
        ))
        .into());
    }
    check_output(&a.output, Some("png"))?;
    let (steps, epochs) = metrics::read(&path).map_err(|e| BadInput(e.to_string()))?;
    mouton_train::plot::loss_png(&steps, &a.output).map_err(cannot_write)?;
    // A run with a moving average: SWD is the average's, and the trained weights' beside it.
    let averaged = epochs.iter().any(|e| e.swd_trained.is_some());
    let extra = |v: String| if averaged { v } else { String::new() };
    out!(
        "{:>5} {:>7} {:>10} {:>10} {:>9} {:>10}{}",
        "epoch",
        "step",
        "d_loss",
        "g_loss",
        "SWD",
        "real SWD",
        extra(format!(" {:>11}", "trained SWD"))
    )?;
    for e in &epochs {
        // A run stopped mid-epoch (max_steps) and resumed has two records of that epoch: each
        // row averages the steps up to its own.
        let in_epoch: Vec<_> = steps
            .iter()
            .filter(|s| s.epoch == e.epoch && s.step <= e.step)
            .collect();
        let m = |f: &dyn Fn(&metrics::StepRecord) -> f64| {
            in_epoch.iter().map(|s| f(s)).sum::<f64>() / in_epoch.len().max(1) as f64
        };
        out!(
            "{:>5} {:>7} {:>10.4} {:>10.4} {:>9.4} {:>10.4}{}",
            e.epoch,
            e.step,
            m(&|s| s.d_loss),
            m(&|s| s.g_loss),
            e.swd.unwrap_or(f64::NAN),
            e.swd_real_baseline.unwrap_or(f64::NAN),
            extra(format!(" {:>11.4}", e.swd_trained.unwrap_or(f64::NAN)))
        )?;
    }
    out!(
        "wrote {} ({} steps; red: critic loss, blue: generator loss, green: gradient penalty)",
        a.output.display(),
        steps.len()
    )?;
    Ok(())
}
