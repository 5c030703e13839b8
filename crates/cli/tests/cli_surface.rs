//! The binary's own surface: help, version, usage errors. Living in the `mouton` package, this
//! test also makes `cargo test --workspace` build the `mouton` binary that the end-to-end tests
//! in `tests/` run.

use assert_cmd::Command;
use predicates::prelude::*;

fn mouton() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mouton"))
}

#[test]
fn help_lists_the_subcommands_that_exist() {
    mouton()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("emd"))
        .stdout(predicate::str::contains("Earth Mover"));
}

#[test]
fn version() {
    mouton()
        .arg("--version")
        .assert()
        .success()
        .stdout(format!("mouton {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn usage_errors_exit_2() {
    mouton()
        .arg("no-such-command")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unrecognized subcommand"));
    mouton()
        .assert()
        .code(2)
        .stderr(predicate::str::contains("Usage"));
}

#[test]
fn model_summary_prints_the_parameter_counts() {
    mouton()
        .args(["model", "summary", "sheep1-g"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Total params: 779,969"))
        .stdout(predicate::str::contains("Conv2d 256->1 5x5 same"));
    mouton()
        .args(["model", "summary", "sheep1-d"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Total params: 396,609"));
    mouton()
        .args(["model", "summary", "no-such-net"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("sheep1-g"));
}
