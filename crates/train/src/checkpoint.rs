//! Checkpoints: `checkpoints/step_NNNNNNNNN.safetensors` in the run directory, each holding the
//! generator (`g.*`), the critic (`d.*`), both optimizers' state (`opt_g.*`, `opt_d.*`) and the
//! step, written atomically (a killed process leaves the previous checkpoints intact), the
//! oldest deleted beyond the number kept.

use std::path::{Path, PathBuf};

use dfdx::nn::tensor_collection::TensorCollection;
use dfdx::prelude::*;
use mouton_models::weights::{WeightsFile, WeightsWriter};

use crate::optim::Optimizer;
use crate::{io_err, TrainError};

/// The checkpoint folder of a run directory.
pub fn dir(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoints")
}

/// The file for `step`.
pub fn path_for(run_dir: &Path, step: u64) -> PathBuf {
    dir(run_dir).join(format!("step_{step:09}.safetensors"))
}

/// The checkpoints present, oldest first, as (step, path).
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
}

const FORMAT: &str = "mouton-checkpoint/1";

/// Writes the checkpoint of `step` and deletes all but the newest `keep`.
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
    Ok(step)
}

/// Loads only the generator of the newest checkpoint; returns its step and path.
pub fn load_generator<G: TensorCollection<f32, B>, B: Device<f32>>(
    run_dir: &Path,
    g: &mut G,
) -> Result<(u64, PathBuf), TrainError> {
    let (step, path) = list(run_dir)?.pop().ok_or_else(|| {
        TrainError::Checkpoint(format!(
            "{}: no checkpoint (train first: mouton train --run-dir {})",
            dir(run_dir).display(),
            run_dir.display()
        ))
    })?;
    let f = WeightsFile::open(&path)?;
    f.load_module("g.", g)?;
    Ok((step, path))
}
