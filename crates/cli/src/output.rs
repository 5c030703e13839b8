//! Checks on an output path, made before any work so that a typo does not cost a long run.

use std::path::Path;

use crate::BadInput;

/// Refuses an output whose folder does not exist, that names a folder, or whose extension says
/// another format than the one written (`ext`, e.g. `png`; a name without extension is fine).
pub fn check_output(path: &Path, ext: Option<&str>) -> Result<(), BadInput> {
    let shown = path.display();
    if path.is_dir() {
        return Err(BadInput(format!(
            "{shown}: is a folder; give a file name to write"
        )));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(BadInput(format!(
            "{shown}: the folder {} does not exist",
            parent.display()
        )));
    }
    if let (Some(want), Some(got)) = (ext, path.extension()) {
        if !got.to_string_lossy().eq_ignore_ascii_case(want) {
            return Err(BadInput(format!(
                "{shown}: this writes {} (name it *.{want}), not .{}",
                want.to_uppercase(),
                got.to_string_lossy()
            )));
        }
    }
    Ok(())
}

/// A failure to write an output that passed [`check_output`] (exit 1: not bad input). The
/// error's message already names the file and holds its cause.
pub fn cannot_write(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::msg(e.to_string()).context("cannot write the output")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_missing_folders_folders_and_other_formats() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(check_output(&d.join("a.png"), Some("png")).is_ok());
        assert!(check_output(&d.join("A.PNG"), Some("png")).is_ok());
        assert!(check_output(&d.join("grid"), Some("png")).is_ok());
        assert!(check_output(&d.join("x.ndjson"), None).is_ok());
        assert!(check_output(Path::new("rel.png"), Some("png")).is_ok());

        let e = check_output(&d.join("nope/a.png"), Some("png")).unwrap_err();
        assert!(e.0.ends_with("nope does not exist"), "{}", e.0);
        let e = check_output(d, Some("png")).unwrap_err();
        assert!(e.0.contains("is a folder"), "{}", e.0);
        let e = check_output(&d.join("a.jpg"), Some("png")).unwrap_err();
        assert!(
            e.0.ends_with("this writes PNG (name it *.png), not .jpg"),
            "{}",
            e.0
        );
        let e = check_output(&d.join("a.png"), Some("npy")).unwrap_err();
        assert!(e.0.contains("name it *.npy"), "{}", e.0);
    }
}
