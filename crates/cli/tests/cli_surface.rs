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

/// The subcommands listed under "Commands:" in a help text (clap's own `help` left out).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

/// The options and arguments of a help text that have no description: in `-h` output clap
/// prints each one's description on its line or the line after it, or nothing.
fn options_without_help(help: &str) -> Vec<String> {
    let lines: Vec<&str> = help.lines().collect();
    let mut missing = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if !(t.starts_with('-') || t.starts_with('<')) || line.len() == t.len() {
            continue;
        }
        let indent = line.len() - t.len();
        let described_inline = t.contains("  ") && !t.trim_end().ends_with('>');
        let next = lines.get(i + 1).copied().unwrap_or("");
        let next_t = next.trim_start();
        let described_below =
            next.len() - next_t.len() > indent && !next_t.is_empty() && !next_t.starts_with('-');
        if !described_inline && !described_below {
            missing.push(t.trim_end().to_owned());
        }
    }
    missing
}

#[test]
fn every_option_of_every_subcommand_is_described() {
    let mut queue = vec![Vec::<String>::new()];
    let mut checked = 0;
    let mut missing = Vec::new();
    while let Some(path) = queue.pop() {
        let out = mouton().args(&path).arg("-h").output().expect("run mouton");
        assert!(out.status.success(), "mouton {path:?} -h failed");
        let help = String::from_utf8_lossy(&out.stdout).into_owned();
        for m in options_without_help(&help) {
            missing.push(format!("mouton {} {m}", path.join(" ")));
        }
        for sub in subcommands(&help) {
            let mut p = path.clone();
            p.push(sub);
            queue.push(p);
        }
        checked += 1;
    }
    // mouton, its 8 commands, data's 6, emd's and model's own.
    assert!(checked >= 15, "only {checked} help texts found");
    eprintln!("{checked} help texts checked");
    assert!(
        missing.is_empty(),
        "options without a description:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_help_checker_finds_an_undescribed_option() {
    let help = "Usage: x\n\nArguments:\n  <DIR>  A run\n  <OUT>\n\nOptions:\n      --batch-size <N>\n          \n      --seed <SEED>\n          Seed\n  -h, --help  Print help\n";
    assert_eq!(options_without_help(help), ["<OUT>", "--batch-size <N>"]);
    let commands = "Commands:\n  info  Counts\n  help  Print this\n\nOptions:\n";
    assert_eq!(subcommands(commands), ["info"]);
}
