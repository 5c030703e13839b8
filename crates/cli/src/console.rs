//! Writing to standard output and standard error without panicking.
//!
//! `println!` panics when its write fails: stdout redirected to a full disk, or a terminal gone
//! after SIGHUP (an SSH session that drops), which turned a finished command, or a training's
//! last checkpoint, into a panic (exit 101). Here results go through `out!`, whose failure
//! is an error naming standard output (exit 1), and diagnostics through `note!`, which drops
//! what cannot be written: stderr is where a failure would be reported, so there is nowhere
//! left to say it.

use std::fmt;
use std::io::{self, Write};

/// Writes a line to standard output; a failed write is an error (`?` it).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::console::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Writes a line to standard error, dropping it if that fails.
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::console::write_err(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// What `out!` does: write and flush, so that a failure shows here and not later.
pub fn write_out(args: fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut o = io::stdout().lock();
    o.write_fmt(args)
        .and_then(|()| o.flush())
        .map_err(|e| anyhow::anyhow!("writing to standard output: {e}"))
}

/// What `note!` does.
pub fn write_err(args: fmt::Arguments<'_>) {
    let mut e = io::stderr().lock();
    let _ = e.write_fmt(args).and_then(|()| e.flush());
}
