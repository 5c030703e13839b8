//! Stopping long commands cleanly: SIGINT (Ctrl-C), SIGTERM (a batch scheduler's notice) or
//! SIGHUP (a closed terminal) sets a stop request that the work checks at safe points (`mouton
//! train` finishes its step and writes a checkpoint; `mouton sample` drops its unfinished
//! file); a second signal quits at once.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;

/// The stop request handed to the training loop, and the signal that made it.
pub struct StopOnSignal {
    /// Set by the first signal.
    pub flag: Arc<AtomicBool>,
    signal: Arc<AtomicI32>,
}

impl StopOnSignal {
    /// The first signal received: its name and the exit code a shell expects (128 + number).
    pub fn received(&self) -> Option<(&'static str, u8)> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            s => Some((name(s), 128u8.saturating_add(s.clamp(0, 127) as u8))),
        }
    }
}

#[cfg(unix)]
fn name(signal: i32) -> &'static str {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

#[cfg(not(unix))]
fn name(_signal: i32) -> &'static str {
    "a signal"
}

/// Routes SIGINT, SIGTERM and SIGHUP to a stop request from now on (a thread of its own
/// receives them: signal handlers themselves can do next to nothing safely). `first` says
/// what the first signal does ("finishing this step..."), `second` what quitting leaves.
///
/// It also ignores SIGPIPE again (`main` restored its default for short commands): a reader
/// of stdout that goes away (`mouton train | tee log`, then Ctrl-C, which stops `tee` first)
/// then fails a write, which the work handles, instead of killing the process before its
/// checkpoint.
#[cfg(unix)]
pub fn install(first: &'static str, second: &'static str) -> std::io::Result<StopOnSignal> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    // SAFETY: setting a signal's disposition to "ignore"; no handler runs.
    if unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) } == libc::SIG_ERR {
        return Err(std::io::Error::last_os_error());
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    let stop = StopOnSignal {
        flag: Arc::new(AtomicBool::new(false)),
        signal: Arc::new(AtomicI32::new(0)),
    };
    let (flag, received) = (stop.flag.clone(), stop.signal.clone());
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for s in signals.forever() {
                if flag.load(Ordering::SeqCst) {
                    say(format_args!(
                        "{}: a second stop signal, quitting now{second}",
                        name(s)
                    ));
                    std::process::exit(128 + s);
                }
                // The signal first: whoever sees the flag may ask which one it was.
                received.store(s, Ordering::SeqCst);
                flag.store(true, Ordering::SeqCst);
                say(format_args!(
                    "{}: {first} (send it again to quit at once)",
                    name(s)
                ));
            }
        })?;
    Ok(stop)
}

/// A line on stderr, unless stderr is gone (after SIGHUP, a closed terminal's writes fail, and
/// `eprintln!` would panic).
#[cfg(unix)]
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n{line}");
}

/// Elsewhere the default handling stays: the process ends, keeping the last checkpoint.
#[cfg(not(unix))]
pub fn install(_first: &'static str, _second: &'static str) -> std::io::Result<StopOnSignal> {
    Ok(StopOnSignal {
        flag: Arc::new(AtomicBool::new(false)),
        signal: Arc::new(AtomicI32::new(0)),
    })
}
