//! Checkpoints: `checkpoints/step_NNNNNNNNN.safetensors` in the run directory, each holding the
//! generator (`g.*`), the critic (`d.*`), both optimizers' state (`opt_g.*`, `opt_d.*`), the
//! moving average of the generator's weights when the run keeps one (`ema.*`, see
//! [`crate::ema`]) and the step, written atomically (a killed process leaves the previous
//! checkpoints intact), the oldest deleted beyond the number kept.

use std::path::{Path, PathBuf};

use dfdx::nn::tensor_collection::TensorCollection;
use dfdx::prelude::*;
use mouton_models::weights::{WeightsFile, WeightsWriter};

use crate::optim::Optimizer;
use crate::{io_err, TrainError};

/// The checkpoint folder of a run directory.
///
/// ```
/// use std::path::Path;
/// assert_eq!(mouton_train::checkpoint::dir(Path::new("runs/s1")), Path::new("runs/s1/checkpoints"));
/// ```
pub fn dir(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoints")
}

/// The file for `step`.
///
/// ```
/// use std::path::Path;
/// let p = mouton_train::checkpoint::path_for(Path::new("runs/s1"), 985);
/// assert_eq!(p, Path::new("runs/s1/checkpoints/step_000000985.safetensors"));
/// ```
pub fn path_for(run_dir: &Path, step: u64) -> PathBuf {
    dir(run_dir).join(format!("step_{step:09}.safetensors"))
}

/// The checkpoints present, oldest first, as (step, path).
///
/// ```
/// use mouton_train::checkpoint::{dir, list, path_for};
/// # let tmp = tempfile::tempdir()?;
/// let run = tmp.path();
/// assert!(list(run)?.is_empty()); // no folder yet: no checkpoint, no error
/// std::fs::create_dir_all(dir(run))?;
/// for step in [20, 3] {
///     std::fs::write(path_for(run, step), b"")?;
/// }
/// std::fs::write(dir(run).join("notes.txt"), b"")?; // not a checkpoint's name: ignored
/// let steps: Vec<u64> = list(run)?.into_iter().map(|(s, _)| s).collect();
/// assert_eq!(steps, [3, 20]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn list(run_dir: &Path) -> Result<Vec<(u64, PathBuf)>, TrainError> {
    let d = dir(run_dir);
    let entries = match std::fs::read_dir(&d) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&d)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(io_err(&d))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(step) = name
            .strip_prefix("step_")
            .and_then(|s| s.strip_suffix(".safetensors"))
            .and_then(|s| s.parse().ok())
        {
            out.push((step, path));
        }
    }
    out.sort();
    Ok(out)
}

/// The networks and optimizers a checkpoint holds.
pub struct State<'a, G, D, B: Storage<f32> = Cpu> {
    /// Generator.
    pub g: &'a mut G,
    /// Critic.
    pub d: &'a mut D,
    /// Generator's optimizer.
    pub opt_g: &'a mut Optimizer<f32, B>,
    /// Critic's optimizer.
    pub opt_d: &'a mut Optimizer<f32, B>,
    /// The moving average of the generator's weights, when the run keeps one.
    pub ema: Option<&'a mut G>,
}

const FORMAT: &str = "mouton-checkpoint/1";

/// The prefix of the generator's moving average in a checkpoint.
const EMA: &str = "ema.";

/// Whether the checkpoint `f` holds a moving average of the generator.
fn holds_ema(f: &WeightsFile) -> bool {
    f.entries().iter().any(|(name, _)| name.starts_with(EMA))
}

/// Whether the checkpoint at `path` holds a moving average of the generator (`ema`): a run
/// that starts keeping one on resume has none in the checkpoint it resumes from.
///
/// ```
/// use mouton_train::checkpoint::{holds_average, path_for};
/// use mouton_train::config::{CriticArch, GeneratorArch, Preset, TrainConfig};
/// use mouton_train::trainer::{train, RunOptions};
/// # let dir = tempfile::tempdir()?;
/// let mut cfg = TrainConfig::preset(Preset::Sheep1);
/// (cfg.generator, cfg.critic) = (GeneratorArch::MlpG, CriticArch::MlpD);
/// (cfg.synthetic_count, cfg.batch_size, cfg.max_steps) = (80, 16, Some(1));
/// let data = mouton_train::data::load(&cfg)?;
/// train(&cfg, &data, dir.path(), &RunOptions::default(), &mut |_| {})?;
/// assert!(!holds_average(&path_for(dir.path(), 1))?);
/// (cfg.ema, cfg.max_steps) = (Some(0.99), Some(2));
/// let resume = RunOptions { resume: true, ..RunOptions::default() };
/// train(&cfg, &data, dir.path(), &resume, &mut |_| {})?;
/// assert!(holds_average(&path_for(dir.path(), 2))?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn holds_average(path: &Path) -> Result<bool, TrainError> {
    Ok(holds_ema(&WeightsFile::open(path)?))
}

/// Writes the checkpoint of `step` and deletes all but the newest `keep`.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::mlp::{MlpDiscriminator, MlpGenerator};
/// use mouton_train::checkpoint::{list, load, save, State};
/// use mouton_train::config::{Preset, TrainConfig};
/// use mouton_train::optim::Optimizer;
/// use mouton_train::trainer::build;
/// # let tmp = tempfile::tempdir()?;
/// let cfg = TrainConfig::preset(Preset::Sheep1);
/// let mut g: MlpGenerator<f32, Cpu> = build(&cfg, 0);
/// let mut d: MlpDiscriminator<f32, Cpu> = build(&cfg, 1);
/// let adam = || Optimizer::new(cfg.optimizer, 1e-4, 0.9, 0.999, 1e-7);
/// let (mut opt_g, mut opt_d) = (adam(), adam());
/// for step in 1..=3 {
///     let state = State { g: &mut g, d: &mut d, opt_g: &mut opt_g, opt_d: &mut opt_d, ema: None };
///     save(tmp.path(), step, state, 2)?; // keep the newest two
/// }
/// let kept: Vec<u64> = list(tmp.path())?.into_iter().map(|(s, _)| s).collect();
/// assert_eq!(kept, [2, 3]);
/// // Into freshly built networks (other seeds), the weights come back exactly.
/// let mut g2: MlpGenerator<f32, Cpu> = build(&TrainConfig { seed: 5, ..cfg.clone() }, 0);
/// let mut d2: MlpDiscriminator<f32, Cpu> = build(&TrainConfig { seed: 5, ..cfg.clone() }, 1);
/// let (mut o1, mut o2) = (adam(), adam());
/// let state = State { g: &mut g2, d: &mut d2, opt_g: &mut o1, opt_d: &mut o2, ema: None };
/// assert_eq!(load(&list(tmp.path())?[1].1, state)?, 3);
/// assert_eq!(g2.l1.weight.as_vec(), g.l1.weight.as_vec());
/// assert_eq!(d2.l3.weight.as_vec(), d.l3.weight.as_vec());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn save<G, D, B>(
    run_dir: &Path,
    step: u64,
    s: State<'_, G, D, B>,
    keep: usize,
) -> Result<PathBuf, TrainError>
where
    B: Device<f32>,
    G: TensorCollection<f32, B>,
    D: TensorCollection<f32, B>,
{
    std::fs::create_dir_all(dir(run_dir)).map_err(io_err(&dir(run_dir)))?;
    let mut w = WeightsWriter::new();
    w.set_metadata("format", FORMAT);
    w.set_metadata("step", &step.to_string());
    w.add_module("g.", &*s.g);
    w.add_module("d.", &*s.d);
    s.opt_g.save(&mut w, "opt_g.", s.g)?;
    s.opt_d.save(&mut w, "opt_d.", s.d)?;
    if let Some(avg) = s.ema {
        w.add_module(EMA, &*avg);
    }
    let path = path_for(run_dir, step);
    w.write(&path)?;
    let all = list(run_dir)?;
    if all.len() > keep {
        for (_, old) in &all[..all.len() - keep] {
            std::fs::remove_file(old).map_err(io_err(old))?;
        }
    }
    Ok(path)
}

/// Loads a checkpoint into the state; returns its step. Every tensor is checked (names,
/// shapes, dtype) and a file that is not a mouton checkpoint is refused.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::mlp::{MlpDiscriminator, MlpGenerator};
/// use mouton_models::weights::WeightsWriter;
/// use mouton_train::checkpoint::{load, State};
/// use mouton_train::config::{Preset, TrainConfig};
/// use mouton_train::optim::Optimizer;
/// use mouton_train::trainer::build;
/// # let tmp = tempfile::tempdir()?;
/// let cfg = TrainConfig::preset(Preset::Sheep1);
/// let mut g: MlpGenerator<f32, Cpu> = build(&cfg, 0);
/// let mut d: MlpDiscriminator<f32, Cpu> = build(&cfg, 1);
/// // A valid weights file holding only the generator is not a checkpoint.
/// let path = tmp.path().join("g.safetensors");
/// let mut w = WeightsWriter::new();
/// w.add_module("g.", &g);
/// w.write(&path)?;
/// let adam = || Optimizer::new(cfg.optimizer, 1e-4, 0.9, 0.999, 1e-7);
/// let (mut o1, mut o2) = (adam(), adam());
/// let err = load(&path, State { g: &mut g, d: &mut d, opt_g: &mut o1, opt_d: &mut o2, ema: None });
/// assert!(err.unwrap_err().to_string().contains("not a mouton checkpoint"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn load<G, D, B>(path: &Path, s: State<'_, G, D, B>) -> Result<u64, TrainError>
where
    B: Device<f32>,
    G: TensorCollection<f32, B>,
    D: TensorCollection<f32, B>,
{
    let f = WeightsFile::open(path)?;
    if f.metadata("format") != Some(FORMAT) {
        return Err(TrainError::Checkpoint(format!(
            "{}: not a mouton checkpoint (format {:?})",
            path.display(),
            f.metadata("format")
        )));
    }
    let step: u64 = f
        .metadata("step")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| TrainError::Checkpoint(format!("{}: no step", path.display())))?;
    f.load_module("g.", s.g)?;
    f.load_module("d.", s.d)?;
    s.opt_g.load(&f, "opt_g.", s.g)?;
    s.opt_d.load(&f, "opt_d.", s.d)?;
    if let Some(avg) = s.ema {
        if !holds_ema(&f) {
            return Err(TrainError::Checkpoint(format!(
                "{}: holds no moving average of the generator (ema), which the run keeps",
                path.display()
            )));
        }
        f.load_module(EMA, avg)?;
    }
    Ok(step)
}

/// Which of a run's checkpoints to read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pick {
    /// The newest (the end of the run so far).
    #[default]
    Newest,
    /// The one written at this step.
    Step(u64),
    /// The one written at the end of this epoch (1-based), found through `metrics.jsonl`.
    Epoch(u64),
}

/// The checkpoint `pick` names in `run_dir`, as (step, path). An error says what there is
/// instead: the steps (and epochs) still on disk, as only the newest `keep_checkpoints` are
/// kept.
///
/// ```
/// use mouton_train::checkpoint::{dir, find, path_for, Pick};
/// # let tmp = tempfile::tempdir()?;
/// let run = tmp.path();
/// std::fs::create_dir_all(dir(run))?;
/// for step in [4, 6, 8] {
///     std::fs::write(path_for(run, step), b"")?;
/// }
/// // Two epochs of 4 steps, as training records them; the second was stopped after step 6
/// // and resumed.
/// let epoch = |e: u64, step: u64| {
///     format!("{{\"kind\":\"epoch\",\"step\":{step},\"epoch\":{e},\"seconds\":1.0}}\n")
/// };
/// std::fs::write(run.join("metrics.jsonl"), epoch(1, 4) + &epoch(2, 6) + &epoch(2, 8))?;
/// assert_eq!(find(run, Pick::Newest)?.0, 8);
/// assert_eq!(find(run, Pick::Step(4))?, (4, path_for(run, 4)));
/// assert_eq!(find(run, Pick::Epoch(1))?.0, 4);
/// assert_eq!(find(run, Pick::Epoch(2))?.0, 8); // its end, not where it was stopped
/// let err = find(run, Pick::Step(5)).unwrap_err().to_string();
/// assert!(err.contains("no checkpoint of step 5; there are steps 4 (epoch 1), 6 (epoch 2), 8 (epoch 2)"), "{err}");
/// let err = find(run, Pick::Epoch(3)).unwrap_err().to_string();
/// assert!(err.contains("epoch 3 was not reached (the run has epochs 1 to 2)"), "{err}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn find(run_dir: &Path, pick: Pick) -> Result<(u64, PathBuf), TrainError> {
    let all = list(run_dir)?;
    let Some(newest) = all.last().cloned() else {
        return Err(TrainError::Checkpoint(format!(
            "{}: no checkpoint (train first: mouton train --run-dir {})",
            dir(run_dir).display(),
            run_dir.display()
        )));
    };
    let epochs = || -> Result<Vec<crate::metrics::EpochRecord>, TrainError> {
        Ok(crate::metrics::read(&run_dir.join("metrics.jsonl"))?.1)
    };
    let step = match pick {
        Pick::Newest => return Ok(newest),
        Pick::Step(s) => s,
        Pick::Epoch(e) => {
            let records = epochs()?;
            // A run stopped inside an epoch and resumed records that epoch twice: its end is
            // the later record.
            match records.iter().rev().find(|r| r.epoch == e) {
                Some(r) => r.step,
                None => {
                    let last = records.iter().map(|r| r.epoch).max();
                    return Err(TrainError::Checkpoint(format!(
                        "{}: epoch {e} was not reached ({})",
                        run_dir.display(),
                        last.map_or("no epoch is recorded in metrics.jsonl".into(), |l| {
                            format!("the run has epochs 1 to {l}")
                        })
                    )));
                }
            }
        }
    };
    if let Some(found) = all.iter().find(|(s, _)| *s == step) {
        return Ok(found.clone());
    }
    // Say which are there, with their epochs where metrics.jsonl has them.
    let records = epochs().unwrap_or_default();
    let there: Vec<String> = all
        .iter()
        .map(|(s, _)| match records.iter().rev().find(|r| r.step == *s) {
            Some(r) => format!("{s} (epoch {})", r.epoch),
            None => s.to_string(),
        })
        .collect();
    let what = match pick {
        Pick::Epoch(e) => format!("epoch {e} ended at step {step}, whose checkpoint is gone"),
        _ => format!("no checkpoint of step {step}"),
    };
    Err(TrainError::Checkpoint(format!(
        "{}: {what}; there are steps {} (training keeps the newest --keep-checkpoints, 3 by \
         default)",
        dir(run_dir).display(),
        there.join(", ")
    )))
}

/// Which weights of a checkpoint's generator draw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Weights {
    /// The moving average of the generator's weights when the run keeps one (`ema`), else
    /// the trained weights.
    #[default]
    Average,
    /// The trained weights, even when the run keeps an average.
    Trained,
}

/// The generator [`load_generator`] loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// The checkpoint's step.
    pub step: u64,
    /// The checkpoint file.
    pub path: PathBuf,
    /// Whether these are the moving average's weights.
    pub averaged: bool,
}

/// Loads only the generator of the checkpoint `pick` names: the moving average of its weights
/// when the run keeps one, unless `weights` asks for the trained weights.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::mlp::MlpGenerator;
/// use mouton_train::checkpoint::{load_generator, Pick, Weights};
/// use mouton_train::config::{Preset, TrainConfig};
/// use mouton_train::trainer::build;
/// # let tmp = tempfile::tempdir()?;
/// let mut g: MlpGenerator<f32, Cpu> = build(&TrainConfig::preset(Preset::Sheep1), 0);
/// // An empty run directory: the error says what to do.
/// let err = load_generator(tmp.path(), Pick::Newest, Weights::Average, &mut g).unwrap_err();
/// assert!(err.to_string().contains("no checkpoint (train first"), "{err}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn load_generator<G: TensorCollection<f32, B>, B: Device<f32>>(
    run_dir: &Path,
    pick: Pick,
    weights: Weights,
    g: &mut G,
) -> Result<Loaded, TrainError> {
    let (step, path) = find(run_dir, pick)?;
    let f = WeightsFile::open(&path)?;
    let averaged = weights == Weights::Average && holds_ema(&f);
    f.load_module(if averaged { EMA } else { "g." }, g)?;
    Ok(Loaded {
        step,
        path,
        averaged,
    })
}
