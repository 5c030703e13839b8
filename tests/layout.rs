//! The workspace's test layout: crates that build their integration tests as one binary
//! (`autotests = false`, a `tests/main.rs` declaring one module per file) must not leave a
//! test file out, since cargo would then silently skip it, nor keep proptest's saved cases
//! beside the test files, where proptest no longer looks for them.

use std::collections::BTreeSet;
use std::path::Path;

/// The modules a test root declares (`mod name;` lines).
fn declared_modules(root: &str) -> BTreeSet<String> {
    root.lines()
        .filter_map(|l| l.trim().strip_prefix("mod ")?.strip_suffix(';'))
        .map(str::to_string)
        .collect()
}

/// Test files of `crate_dir` that no test target builds, or `None` if the crate lets cargo
/// discover its tests (each file then is its own target).
fn unbuilt_test_files(crate_dir: &Path) -> Option<Vec<String>> {
    let manifest: toml::Table = std::fs::read_to_string(crate_dir.join("Cargo.toml"))
        .expect("a readable Cargo.toml")
        .parse()
        .expect("a valid Cargo.toml");
    let autotests = manifest["package"]
        .get("autotests")
        .and_then(|v| v.as_bool())
        .unwrap_or(true);
    if autotests {
        return None;
    }
    let targets: Vec<String> = manifest
        .get("test")
        .and_then(|t| t.as_array())
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("path")?.as_str().map(str::to_string))
        .collect();
    let mut declared = BTreeSet::new();
    for path in &targets {
        let root = std::fs::read_to_string(crate_dir.join(path)).expect("a test root");
        declared.extend(declared_modules(&root));
    }
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(crate_dir.join("tests")).expect("a tests folder") {
        let path = entry.expect("a directory entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let module = if path.is_dir() && path.join("mod.rs").is_file() {
            name.to_string()
        } else if let Some(stem) = name.strip_suffix(".rs") {
            stem.to_string()
        } else if let Some(stem) = name.strip_suffix(".proptest-regressions") {
            // With a tests/main.rs, proptest reads saved cases from proptest-regressions/.
            missing.push(format!(
                "tests/{name} (move it to proptest-regressions/{stem}.txt)"
            ));
            continue;
        } else {
            continue; // fixtures
        };
        let as_target = format!("tests/{name}");
        if !declared.contains(&module) && !targets.contains(&as_target) {
            missing.push(as_target);
        }
    }
    Some(missing)
}

#[test]
fn every_test_file_is_built() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates");
    let mut single_binary = Vec::new();
    for entry in std::fs::read_dir(&crates).expect("the crates folder") {
        let dir = entry.expect("a directory entry").path();
        if !dir.join("tests").is_dir() {
            continue;
        }
        if let Some(missing) = unbuilt_test_files(&dir) {
            assert!(
                missing.is_empty(),
                "{}: {missing:?}: declare test files in tests/main.rs",
                dir.display()
            );
            single_binary.push(dir.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    single_binary.sort();
    assert_eq!(single_binary, ["data", "emd", "losses", "models", "train"]);
}

#[test]
fn a_file_left_out_is_found() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::create_dir_all(dir.path().join("tests/common")).unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[package]\nname = \"x\"\nautotests = false\n\n[[test]]\nname = \"x\"\npath = \"tests/main.rs\"\n\n[[test]]\nname = \"gpu\"\npath = \"tests/gpu.rs\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("tests/main.rs"), "mod common;\nmod a;\n").unwrap();
    for f in ["a.rs", "b.rs", "gpu.rs", "common/mod.rs", "data.json"] {
        std::fs::write(dir.path().join("tests").join(f), "").unwrap();
    }
    assert_eq!(
        unbuilt_test_files(dir.path()),
        Some(vec!["tests/b.rs".into()])
    );
    std::fs::write(
        dir.path().join("tests/main.rs"),
        "mod common;\nmod a;\nmod b;\n",
    )
    .unwrap();
    assert_eq!(unbuilt_test_files(dir.path()), Some(vec![]));
    std::fs::write(dir.path().join("tests/a.proptest-regressions"), "").unwrap();
    let found = unbuilt_test_files(dir.path()).unwrap();
    assert!(found.len() == 1 && found[0].starts_with("tests/a.proptest-regressions"));
}
