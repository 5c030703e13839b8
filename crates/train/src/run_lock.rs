//! One training at a time per run directory: two runs writing the same checkpoints and
//! `metrics.jsonl` (a job started twice, a scheduler's requeue while the first still runs)
//! would interleave their records and overwrite each other's checkpoints.
//!
//! The lock is an OS file lock on `<run_dir>/.lock`, not a pid file: the kernel drops it when
//! the process ends however it ends, so a killed run never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use crate::{io_err, TrainError};

/// Holds a run directory for one training; dropping it lets the next one in.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Takes the run directory (which must exist) for this process, or says which one holds it.
///
/// ```
/// use mouton_train::run_lock;
/// # let dir = tempfile::tempdir()?;
/// let held = run_lock::lock(dir.path())?;
/// let err = run_lock::lock(dir.path()).unwrap_err().to_string();
/// assert!(err.contains("is in use by another training"), "{err}");
/// drop(held);
/// assert!(run_lock::lock(dir.path()).is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn lock(run_dir: &Path) -> Result<RunLock, TrainError> {
    let path = run_dir.join(".lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(RunLock { _file: file }),
        Err(TryLockError::WouldBlock) => Err(TrainError::RunDir(format!(
            "{} is in use by another training (it holds {}): wait for that run to end, or \
             stop it (Ctrl-C, or SIGTERM to its process) and resume",
            run_dir.display(),
            path.display()
        ))),
        Err(TryLockError::Error(e)) => Err(io_err(&path)(e)),
    }
}

/// Whether another process holds `run_dir`'s lock now (a check before long work; the lock
/// itself is taken by [`lock`]).
pub(crate) fn check_free(run_dir: &Path) -> Result<(), TrainError> {
    if run_dir.join(".lock").is_file() {
        lock(run_dir)?;
    }
    Ok(())
}
