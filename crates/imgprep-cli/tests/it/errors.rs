//! Usage and setup errors: one line, exit 2, nothing half-written.

use crate::env::{stderr, TestEnv};

fn one_line_error(out: &std::process::Output) -> String {
    assert_eq!(out.status.code(), Some(2), "{}", stderr(out));
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines[0].contains("error"), "{err}");
    err
}

#[test]
fn missing_root_is_a_one_line_error() {
    let env = TestEnv::new();
    env.write("p.lst", b"0\t0\ta.jpg\n");
    let out = env.run(&["im2rec", "p", "nowhere"]);
    let err = one_line_error(&out);
    assert!(err.contains("nowhere") && err.lines().count() == 1, "{err}");
    let out = env.run(&["im2rec", "p", "nowhere", "--list"]);
    assert!(one_line_error(&out).contains("nowhere"));
}

#[test]
fn malformed_lst_line_names_file_and_line() {
    let env = TestEnv::new();
    env.synth("imgs", 1, 1, 32, 32);
    env.write(
        "p.lst",
        b"0\t0\tclass_0/img_00000.jpg\n\n1\tcat\tclass_0/img_00000.jpg\n",
    );
    let out = env.run(&["im2rec", "p", "imgs"]);
    let err = one_line_error(&out);
    assert!(err.contains("p.lst:3:"), "{err}");
    assert!(
        !env.path("p.rec").exists(),
        "nothing is written when the list is bad"
    );
    env.write("p.lst", b"0\tclass_0/img_00000.jpg\n");
    assert!(one_line_error(&env.run(&["im2rec", "p", "imgs"])).contains("p.lst:1:"));
    // one index on two lines: the .idx would hold it twice (im2rec.py packs
    // it, and a reader by index finds one of the two records)
    env.write(
        "p.lst",
        b"0\t1\tclass_0/img_00000.jpg\n5\t0\tclass_0/img_00000.jpg\n0\t2\tclass_0/img_00000.jpg\n",
    );
    let err = one_line_error(&env.run(&["im2rec", "p", "imgs"]));
    assert!(
        err.contains("p.lst:3:") && err.contains("index 0 is also on line 1"),
        "{err}"
    );
    assert!(!env.path("p.rec").exists());
}

#[test]
fn unknown_flag_and_bad_values_are_usage_errors() {
    let env = TestEnv::new();
    assert_eq!(
        env.run(&["im2rec", "p", "r", "--no-such-flag"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        env.run(&["im2rec", "p", "r", "--color", "2"]).status.code(),
        Some(2)
    );
    assert_eq!(
        env.run(&["im2rec", "p", "r", "--encoding", ".gif"])
            .status
            .code(),
        Some(2)
    );
    // argparse-style unambiguous abbreviations work, as with im2rec.py
    env.synth("imgs", 1, 1, 32, 32);
    env.ok(&["im2rec", "p", "imgs", "--li", "--rec"]);
    assert!(env.path("p.lst").exists());
}

#[test]
fn no_matching_list_and_unwritable_output_are_errors() {
    let env = TestEnv::new();
    env.synth("imgs", 1, 1, 32, 32);
    assert!(one_line_error(&env.run(&["im2rec", "nothing", "imgs"])).contains(".lst"));
    env.write("out/p.lst", b"0\t0\tclass_0/img_00000.jpg\n");
    let out_dir = env.path("out");
    let mut perm = std::fs::metadata(&out_dir).unwrap().permissions();
    use std::os::unix::fs::PermissionsExt;
    perm.set_mode(0o555);
    std::fs::set_permissions(&out_dir, perm.clone()).unwrap();
    let probe = out_dir.join("probe");
    if std::fs::write(&probe, b"x").is_ok() {
        // root ignores permissions: use a path under a file instead
        std::fs::remove_file(&probe).unwrap();
        perm.set_mode(0o755);
        std::fs::set_permissions(&out_dir, perm).unwrap();
        env.write("blocker", b"a file, not a folder");
        let out = env.run(&["im2rec", "blocker/sub/x", "imgs", "--list", "--recursive"]);
        assert!(one_line_error(&out).contains("blocker"));
        return;
    }
    let err = one_line_error(&env.run(&["im2rec", "out/p", "imgs"]));
    assert!(err.contains("out"), "{err}");
}

/// A class name no file system can hold as a folder is refused before
/// anything is written (it used to stop the build halfway, "File name too
/// long"); where it names no path it is fine, and messages show long names
/// cut, not whole.
#[test]
fn names_too_long_for_a_file_system_are_refused_before_writing() {
    let env = TestEnv::new();
    env.synth("p", 1, 2, 32, 24);
    let long = "é".repeat(140); // 280 bytes
    let huge = "x".repeat(100_000);
    env.write(
        "idx.csv",
        format!("path,label\nclass_0/img_00000.jpg,{long}\nclass_0/img_00001.jpg,{huge}\n")
            .as_bytes(),
    );
    let recipe = |outputs: &str| {
        format!(
            "name = \"l\"\n[[sources]]\ntype = \"csv\"\nfile = \"idx.csv\"\nroot = \"p\"\n\
             path = \"path\"\nlabel = \"label\"\n{outputs}"
        )
    };
    env.write(
        "folders.toml",
        recipe("[[outputs]]\nformat = \"folders\"\n").as_bytes(),
    );
    let out = env.run(&["build", "folders.toml", "--out", "f"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let e = one_line_error(&out);
    assert!(e.contains("255") && e.contains("idx.csv:"), "{e}");
    assert!(e.len() < 1000, "{e}");
    assert!(!env.path("f").exists(), "nothing written");
    // RecordIO names no file after a class: built, the summary cuts the name
    env.write(
        "rec.toml",
        recipe("[[outputs]]\nformat = \"recordio\"\n").as_bytes(),
    );
    let out = env.ok(&["build", "rec.toml", "--out", "r"]);
    let text = format!("{}{}", crate::env::stdout(&out), stderr(&out));
    assert!(
        text.contains("(100000 bytes)"),
        "{}",
        &text[..text.len().min(2000)]
    );
    assert!(text.len() < 20_000, "{} bytes of output", text.len());
}

/// Messages to a stderr whose reader went away (`2>&1 | head -0`) are lost,
/// not a panic: the build goes on to its end and its own exit code, and so
/// does `verify` (std's `eprintln!` panicked there, exit 101, the build
/// stopped before writing anything).
#[test]
fn a_closed_stderr_neither_stops_nor_fails_a_command() {
    use std::process::{Command, Stdio};
    let env = TestEnv::new();
    env.synth("p", 2, 3, 64, 48);
    // a warning is printed before anything is written (the split is too
    // small for the ratios)
    env.write(
        "r.toml",
        b"name = \"c\"\n[[sources]]\ntype = \"folders\"\nroot = \"p\"\n[split]\ntrain = 0.9\nvalidation = 0.1\n[[outputs]]\nformat = \"recordio\"\n",
    );
    let closed = |args: &[&str]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_imgprep"))
            .args(args)
            .env("IMGPREP_CACHE_DIR", env.path("cache"))
            .current_dir(env.path(""))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stderr.take());
        child.wait().unwrap().code()
    };
    assert_eq!(closed(&["build", "r.toml", "--out", "out"]), Some(0));
    assert!(env.path("out/manifest.json").is_file());
    env.ok(&["verify", "out"]);
    assert_eq!(closed(&["verify", "out"]), Some(0));
    assert_eq!(closed(&["build", "missing.toml", "--out", "o2"]), Some(2));
}

/// A bad value in a source's table is reported at its own line (the
/// table's first line was given for a bad `unit`, and no line at all for a
/// zero `every`); a `[boxes]` table in a recipe without box sources is
/// refused (it was ignored).
#[test]
fn bad_recipe_values_are_reported_at_their_line() {
    let env = TestEnv::new();
    env.synth("p", 2, 2, 32, 24);
    let case = |body: &str, want: &str| {
        env.write("r.toml", body.as_bytes());
        let out = env.run(&["build", "r.toml", "--out", "out"]);
        let err = one_line_error(&out);
        assert!(err.contains(want), "{body}\n{err}");
    };
    let video = "name = \"v\"\n[[sources]]\ntype = \"video\"\nchunks = \"v/{s}.mp4\"\nlabels = \"l/{s}.csv\"\n";
    case(
        &format!("{video}unit = \"minutes\"\n"),
        "r.toml:6:8: unknown variant `minutes`",
    );
    case(
        &format!("{video}unit = \"seconds\"\nevery = 0\n"),
        "r.toml:7:9: every must be above 0",
    );
    case(
        &format!("{video}unit = \"seconds\"\nfps = -2.0\n"),
        "r.toml:7:7: fps must be above 0",
    );
    case(
        &format!("{video}unit = \"seconds\"\noutside = \"background\"\n"),
        "r.toml:7:11: outside = \"background\" needs background_class",
    );
    case(
        "name = \"c\"\n[[sources]]\ntype = \"folders\"\nroot = \"p\"\n[boxes]\noutside = \"drop\"\n",
        "r.toml:5:1: [boxes] applies to sources with boxes",
    );
}
