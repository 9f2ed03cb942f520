//! What users read: the README's quickstart runs as written, the example
//! recipes run as their comments say, and no user-facing text speaks in
//! internal names.

use crate::env::{stderr, TestEnv};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_imgprep"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs shell lines (bash, stop at the first failure) in `dir` with this
/// build's `imgprep` first on PATH.
fn run_lines(dir: &Path, lines: &str, what: &str) {
    let path = format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", lines])
        .env("PATH", path)
        .env("IMGPREP_CACHE_DIR", dir.join(".cache"))
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{what} failed: {}\n--- script\n{lines}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
}

/// The README's quickstart (the sh block after the marker) runs as written
/// in an empty folder.
#[test]
fn the_readme_quickstart_runs_as_written() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let marker = "<!-- quickstart: run by the test suite -->";
    let at = readme
        .find(marker)
        .expect("README.md has the quickstart marker");
    let rest = &readme[at + marker.len()..];
    let start = rest
        .find("```sh\n")
        .expect("a ```sh block after the marker")
        + 6;
    let end = rest[start..].find("```").unwrap() + start;
    let block = &rest[start..end];
    assert!(block.contains("imgprep"), "{block}");
    let env = TestEnv::new();
    run_lines(env.dir.path(), block, "the README quickstart");
}

/// Every example recipe says how to make its data and build it (comment
/// lines `#   imgprep ...`), and those commands run as written from a copy
/// of the repository's examples/.
#[test]
fn the_example_recipes_run_as_their_comments_say() {
    let mut checked = 0;
    for e in std::fs::read_dir(repo().join("examples")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let commands: Vec<&str> = text
            .lines()
            .take_while(|l| l.starts_with('#') || l.trim().is_empty())
            .filter_map(|l| l.trim_start_matches('#').trim().strip_prefix("$ "))
            .collect();
        assert!(
            commands.iter().any(|c| c.starts_with("imgprep synth"))
                && commands.iter().any(|c| c.starts_with("imgprep build")),
            "{}: the header must say (as `#   $ imgprep ...` lines) how to make the data and build",
            p.display()
        );
        let env = TestEnv::new();
        std::fs::create_dir_all(env.path("examples")).unwrap();
        std::fs::copy(&p, env.path("examples").join(p.file_name().unwrap())).unwrap();
        run_lines(
            env.dir.path(),
            &commands.join("\n"),
            &p.display().to_string(),
        );
        checked += 1;
    }
    assert!(checked >= 3, "examples/*.toml: {checked}");
}

/// Words a user cannot follow stay out of what users read.
#[test]
fn user_facing_text_has_no_internal_names() {
    let mut texts = vec![(
        "README.md".to_string(),
        std::fs::read_to_string(repo().join("README.md")).unwrap(),
    )];
    for e in std::fs::read_dir(repo().join("examples")).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            texts.push((
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            ));
        }
    }
    let env = TestEnv::new();
    let help = |args: &[&str]| String::from_utf8(env.ok(args).stdout).unwrap();
    texts.push(("imgprep --help".into(), help(&["--help"])));
    for cmd in [
        "im2rec", "inspect", "verify", "build", "convert", "push", "pull", "merge", "init", "synth",
    ] {
        texts.push((format!("imgprep {cmd} --help"), help(&[cmd, "--help"])));
    }
    for (name, text) in &texts {
        let lower = text.to_lowercase();
        for word in [
            "seed 0",
            "seed00",
            "cflag",
            "irheader",
            "object_store",
            "crc-32c",
            "state farm",
            "kaggle",
            "deeplens",
        ] {
            assert!(!lower.contains(word), "{name} mentions {word:?}");
        }
    }
}

/// `-q` is quiet: a successful `synth`, `init`, `build`, `verify` and
/// `im2rec` print nothing on stderr, so a script's log holds only what
/// failed (stdout keeps what scripts read: `im2rec --list` prints the class
/// ids, as im2rec.py does).
#[test]
fn quiet_commands_print_nothing_when_they_succeed() {
    let env = TestEnv::new();
    let runs: [&[&str]; 6] = [
        &[
            "synth",
            "p",
            "--classes",
            "2",
            "--per-class",
            "3",
            "--width",
            "32",
            "--height",
            "24",
            "-q",
        ],
        &["init", "p", "--output", "r.toml", "-q"],
        &["build", "r.toml", "--out", "o", "-q"],
        &["verify", "o", "-q"],
        &["im2rec", "l", "p", "--list", "--recursive", "-q"],
        &["im2rec", "l", "p", "-q"],
    ];
    for args in runs {
        let out = env.ok(args);
        let listing = args.contains(&"--list");
        assert!(
            out.stdout.is_empty() != listing && out.stderr.is_empty(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
