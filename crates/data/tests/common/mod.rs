//! Shared by the golden tests: where the real Quick, Draw! sample is.

use std::path::PathBuf;

/// `../shared/quickdraw` beside the checkout (or `$MOUTON_SHARED/quickdraw`) if it holds
/// `needed`; otherwise prints why the calling test is skipped and returns `None`.
pub fn quickdraw(needed: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("MOUTON_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
        .join("quickdraw");
    if dir.join(needed).is_dir() {
        Some(dir)
    } else {
        // Straight to the stderr handle: the test harness captures println!, and a skip must
        // be visible in CI's log.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: no Quick, Draw! sample at {} (set MOUTON_SHARED)",
            dir.display()
        );
        None
    }
}
