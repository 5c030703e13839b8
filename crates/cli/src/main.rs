//! `mouton`: the command line of the mouton workspace.
//!
//! Thin glue: every subcommand parses its arguments, calls a library crate and prints.
//! Exit codes: 0 success, 2 bad input or usage, 1 internal failure.

#[macro_use]
mod console;
mod data_cmd;
mod emd_cmd;
mod input;
mod model_cmd;
mod output;
mod signals;
mod train_cmd;
mod vae_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Teach a machine to draw sheep: Quick, Draw! doodles, GANs on dfdx, Earth Mover's distances.
#[derive(Debug, Parser)]
#[command(name = "mouton", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Quick, Draw! files: inspect, look at, rasterize, simplify.
    #[command(subcommand)]
    Data(data_cmd::DataCommand),
    /// Earth Mover's / Wasserstein distance between two histograms or two samples.
    Emd(emd_cmd::EmdArgs),
    /// GAN architectures: summaries.
    #[command(subcommand)]
    Model(model_cmd::ModelCommand),
    /// Train a GAN (FIDLE SHEEP1/SHEEP2 presets; synthetic sheep without --data).
    Train(Box<train_cmd::TrainArgs>),
    /// Draw new sheep with a run's generator.
    Sample(train_cmd::SampleArgs),
    /// Walk the latent space between random points (slerp).
    Interpolate(train_cmd::InterpolateArgs),
    /// Sliced Wasserstein distance and precision/recall against real drawings.
    Eval(train_cmd::EvalArgs),
    /// Plot a run's losses and print its per-epoch history.
    History(train_cmd::HistoryArgs),
    /// Where a VAE puts images in its latent space: a scatter (PNG) or the numbers (CSV).
    Encode(vae_cmd::EncodeArgs),
    /// A VAE's reconstructions of images, below them, with their loss terms.
    Reconstruct(vae_cmd::ReconstructArgs),
}

/// A problem with what the user gave us (exit code 2), as opposed to an internal failure (1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// A run stopped by a signal after saving its state: not an error, but the exit code a shell
/// expects of that signal (130 for SIGINT), so that scripts stop too.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Interrupted {
    /// What happened and how to go on.
    pub message: String,
    /// 128 + the signal's number.
    pub code: u8,
}

/// Lets a closed pipe end the process quietly, as it does `cat` or `grep` (`mouton data info
/// f | head -1`): Rust ignores SIGPIPE, so `println!` would panic on the broken pipe instead.
fn default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: restoring a signal's default disposition at startup, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    default_sigpipe();
    mouton_train::keep_freed_memory();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    let result = match cli.command {
        Command::Data(cmd) => data_cmd::run(&cmd),
        Command::Emd(args) => emd_cmd::run(&args),
        Command::Model(cmd) => model_cmd::run(&cmd),
        Command::Train(args) => train_cmd::train(&args),
        Command::Sample(args) => train_cmd::sample(&args),
        Command::Interpolate(args) => train_cmd::interpolate(&args),
        Command::Eval(args) => train_cmd::evaluate(&args),
        Command::History(args) => train_cmd::history(&args),
        Command::Encode(args) => vae_cmd::encode(&args),
        Command::Reconstruct(args) => vae_cmd::reconstruct(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(i) = e.downcast_ref::<Interrupted>() {
                note!("{i}");
                return ExitCode::from(i.code);
            }
            note!("error: {e:#}");
            if e.downcast_ref::<BadInput>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
