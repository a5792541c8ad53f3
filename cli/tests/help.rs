//! `inlet --help` names every command, each with what it does.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
use std::process::Command;

#[test]
fn help_names_every_command() {
    let out = Command::new(env!("CARGO_BIN_EXE_inlet"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    for name in [
        "demo",
        "produce",
        "consume",
        "verify",
        "report",
        "warehouse",
        "dashboard",
        "collector",
        "replay",
        "bench",
        "streams",
        "spool",
        "shard",
        "config",
    ] {
        let line = commands
            .iter()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} in:\n{help}"));
        assert!(line.split_whitespace().count() > 2, "{name} has no description: {line}");
    }
    // Every listed command has a description.
    for line in &commands {
        assert!(line.split_whitespace().count() > 1, "{line}");
    }
}
