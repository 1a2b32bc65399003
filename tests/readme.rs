//! The README's command examples that need no AWS account (`render`, `init`,
//! `completions`, `--version`, `--help`), run as written by `sh` with the real binary as
//! `wsconn` on PATH, each in a fresh directory: every one must exit 0. The README
//! cannot drift from the binary in silence.

mod common;

use std::path::Path;
use std::process::Command;

/// Subcommands (or flags) that make no AWS call.
const OFFLINE: &[&str] = &[
    "render",
    "init",
    "completions",
    "--version",
    "--help",
    "help",
];

/// Every shell command line in the README's fenced blocks that runs `wsconn`: a line
/// starting with `wsconn ` or `$ wsconn `, with `\` continuations joined.
fn examples(readme: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_block = false;
    let mut pending: Option<String> = None;
    for line in readme.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            pending = None;
            continue;
        }
        if !in_block {
            continue;
        }
        let text = line.trim();
        if let Some(mut acc) = pending.take() {
            acc.push(' ');
            acc.push_str(text.trim_end_matches('\\'));
            if text.ends_with('\\') {
                pending = Some(acc);
            } else {
                out.push(acc);
            }
            continue;
        }
        let cmd = text.strip_prefix("$ ").unwrap_or(text);
        if !cmd.starts_with("wsconn ") {
            continue;
        }
        if cmd.ends_with('\\') {
            pending = Some(cmd.trim_end_matches('\\').to_string());
        } else {
            out.push(cmd.to_string());
        }
    }
    out
}

/// The first word after `wsconn` that is not a global option (or its value).
fn subcommand(cmd: &str) -> Option<&str> {
    const WITH_VALUE: &[&str] = &[
        "--stack",
        "--output",
        "--config",
        "--region",
        "--profile",
        "--endpoint-url",
    ];
    let mut words = cmd.split_whitespace().skip(1);
    while let Some(w) = words.next() {
        if WITH_VALUE.contains(&w) {
            words.next();
        } else if w == "--yes"
            || w == "-y"
            || WITH_VALUE.iter().any(|o| w.starts_with(&format!("{o}=")))
        {
            continue;
        } else {
            return Some(w);
        }
    }
    None
}

fn sh(bin_dir: &Path, dir: &Path, cmd: &str) -> std::process::Output {
    let home = dir.join("home");
    for d in [
        ".local/share/bash-completion/completions",
        ".zfunc",
        ".config/fish/completions",
    ] {
        std::fs::create_dir_all(home.join(d)).unwrap();
    }
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
        .env("HOME", &home)
        .env("PROFILE", home.join("profile.ps1"))
        .env("NO_COLOR", "1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("running sh")
}

#[test]
fn the_readmes_offline_examples_run_and_exit_0() {
    let readme = std::fs::read_to_string(common::repo().join("README.md")).unwrap();
    let all = examples(&readme);
    assert!(
        all.len() > 30,
        "the README's examples were not found: {all:?}"
    );
    let bin_dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_wsconn"), bin_dir.path().join("wsconn"))
        .unwrap();
    let mut ran = Vec::new();
    for cmd in &all {
        let Some(sub) = subcommand(cmd) else { continue };
        if !OFFLINE.contains(&sub) {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = sh(bin_dir.path(), dir.path(), cmd);
        assert_eq!(
            out.status.code(),
            Some(0),
            "README example `{cmd}`\n--- stdout\n{}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ran.push(cmd.clone());
    }
    for needed in ["render", "init", "completions", "--version"] {
        assert!(
            ran.iter().any(|c| subcommand(c) == Some(needed)),
            "no README example of {needed} ran: {ran:#?}"
        );
    }
}

#[test]
fn every_command_has_help_and_the_version_names_the_commit() {
    let bin = env!("CARGO_BIN_EXE_wsconn");
    for cmd in [
        "deploy",
        "diff",
        "destroy",
        "outputs",
        "render",
        "local",
        "smoke",
        "connections",
        "init",
        "releases",
        "rollback",
        "logs",
        "completions",
    ] {
        let out = Command::new(bin).args([cmd, "--help"]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{cmd} --help");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage: wsconn"),
            "{cmd}"
        );
    }
    let out = Command::new(bin).arg("--version").output().unwrap();
    let v = String::from_utf8_lossy(&out.stdout);
    let commit = v
        .trim()
        .strip_prefix(&format!("wsconn {} (commit ", env!("CARGO_PKG_VERSION")))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{v}"));
    assert!(
        commit == "unknown"
            || (commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{v}"
    );
}

#[test]
fn examples_are_found_with_their_continuations() {
    let md = "text\n```\n$ wsconn render '$connect' --query a=b \\\n    --context x=y\nwsconn init  # c\nnot a command\n```\nwsconn outside\n";
    assert_eq!(
        examples(md),
        [
            "wsconn render '$connect' --query a=b  --context x=y",
            "wsconn init  # c"
        ]
    );
    assert_eq!(subcommand("wsconn --output json local"), Some("local"));
}
