//! Helpers for mouton's cross-crate and command-line end-to-end tests (the test targets of this
//! package).

use std::path::PathBuf;

/// Path of the `mouton` binary built by `cargo test --workspace`.
///
/// Cargo sets `CARGO_BIN_EXE_mouton` only for the `mouton` package's own tests; its integration
/// test `crates/cli/tests/cli_surface.rs` makes the workspace test run build the binary into the
/// target directory, next to this package's test executables' `deps/` folder.
pub fn mouton_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executables live in <target>/<profile>/deps");
    let bin = dir.join(format!("mouton{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test --workspace`, which builds it",
        bin.display()
    );
    bin
}

/// The real Quick, Draw! sample beside the checkout (`../shared/quickdraw`, or `$MOUTON_SHARED`),
/// or `None` after printing why the calling test is skipped.
pub fn quickdraw_sample() -> Option<PathBuf> {
    let dir = std::env::var_os("MOUTON_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
        .join("quickdraw");
    if dir.join("bitmap28_uint8").is_dir() {
        Some(dir)
    } else {
        // Straight to the stderr handle: the test harness captures println!, and a skip must
        // be visible in CI's log.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: no Quick, Draw! sample at {} (set MOUTON_SHARED to its parent)",
            dir.display()
        );
        None
    }
}
