//! Object storage against a real S3 server (Garage on 127.0.0.1).

use crate::env::{s3, stderr, stdout, OwnServer, TestEnv};

/// Deterministic pseudo-random bytes (incompressible, like images).
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

#[test]
fn push_skips_by_etag_multipart_and_pull_resumes_with_failures() {
    let Some(s3) = s3() else { return };
    let env = TestEnv::new();
    // a 9 MiB + 5 byte file (two 8 MiB parts) and small ones
    env.write("data/big.bin", &noise((9 << 20) + 5, 1));
    for i in 0..12 {
        env.write(&format!("data/img/{i:02}.jpg"), &noise(3000 + i, i as u64));
    }
    let dest = s3.uri("t-push/data");
    let push = |extra: &[&str]| {
        let mut a = vec![
            "push",
            "data",
            dest.as_str(),
            "--layout",
            "mirror",
            "--json",
        ];
        a.extend_from_slice(extra);
        json(&env.ok_s3(&s3, &a))
    };
    let dry = push(&["--dry-run"]);
    assert_eq!(dry["uploaded"], 13);
    assert_eq!(dry["plan"].as_array().unwrap().len(), 13);
    let first = push(&[]);
    assert_eq!(
        (first["uploaded"].as_u64(), first["skipped"].as_u64()),
        (Some(13), Some(0))
    );
    assert_eq!(
        first["bytes_transferred"],
        (9 << 20) + 5 + (0..12).map(|i| 3000 + i).sum::<u64>()
    );
    // same ETags (the big one is multipart, `md5-of-md5s-2`): nothing re-sent
    let again = push(&[]);
    assert_eq!(
        (again["uploaded"].as_u64(), again["skipped"].as_u64()),
        (Some(0), Some(13))
    );
    // a changed file is sent again
    env.write("data/img/03.jpg", &noise(3003, 99));
    let changed = push(&[]);
    assert_eq!(changed["uploaded"], 1);

    // pull: URIs, a plain key under --base, comments, a missing key, an escaping key
    let list = format!(
        "# seed 002's s3-paths.txt\n{}\n\nimg/05.jpg\n{}\n../../etc/passwd\n{}\n",
        s3.uri("t-push/data/big.bin"),
        s3.uri("t-push/data/img/missing.jpg"),
        s3.uri("t-push/data/img/03.jpg"),
    );
    env.write("list.txt", list.as_bytes());
    let base = s3.uri("t-push/data");
    let out = env.run_s3(&s3, &["pull", "list.txt", "dl", "--base", &base, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let r = json(&out);
    assert_eq!(
        (r["downloaded"].as_u64(), r["skipped"].as_u64()),
        (Some(3), Some(0))
    );
    assert_eq!(env.read("dl/big.bin"), env.read("data/big.bin"));
    assert_eq!(env.read("dl/img/05.jpg"), env.read("data/img/05.jpg"));
    assert_eq!(env.read("dl/img/03.jpg"), env.read("data/img/03.jpg"));
    let failed = String::from_utf8(env.read("dl/failed.txt")).unwrap();
    let lines: Vec<&str> = failed.lines().collect();
    assert_eq!(lines.len(), 2, "{failed}");
    assert!(lines[0].ends_with("missing.jpg\tnot found"), "{failed}");
    assert!(lines[1].contains("passwd\trefused"), "{failed}");
    assert!(!env.path("etc").exists());
    let done = String::from_utf8(env.read("dl/downloaded.txt")).unwrap();
    assert_eq!(done.lines().count(), 3, "{done}");
    // a re-run keeps what is there (size and multipart ETag match)
    let r = json(&env.run_s3(&s3, &["pull", "list.txt", "dl", "--base", &base, "--json"]));
    assert_eq!(
        (r["downloaded"].as_u64(), r["skipped"].as_u64()),
        (Some(0), Some(3))
    );
    // a corrupted local copy is downloaded again
    env.write("dl/img/05.jpg", b"broken");
    let r = json(&env.run_s3(&s3, &["pull", "list.txt", "dl", "--base", &base, "--json"]));
    assert_eq!(r["downloaded"], 1);
    assert_eq!(env.read("dl/img/05.jpg"), env.read("data/img/05.jpg"));
    // no partial file left anywhere
    let partials = walk(&env.path("dl"))
        .into_iter()
        .filter(|p| p.contains(".partial"))
        .count();
    assert_eq!(partials, 0);
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path().display().to_string());
        }
    }
    out
}

#[test]
fn wrong_credentials_are_one_clear_line_without_the_secret() {
    let Some(s3) = s3() else { return };
    let env = TestEnv::new();
    env.write("data/a.bin", b"abc");
    let mut bad = s3.clone();
    bad.secret = "not-the-secret-0123456789".into();
    let out = env.run_s3(
        &bad,
        &["push", "data", &s3.uri("t-cred"), "--layout", "mirror"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("access denied"), "{err}");
    assert!(!err.contains(&bad.secret), "{err}");
    env.write("l.txt", s3.uri("t-cred/a.bin").as_bytes());
    let out = env.run_s3(&bad, &["pull", "l.txt", "dl"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("access denied"), "{}", stderr(&out));
}

#[test]
fn build_from_s3_sources_to_s3_outputs_and_push_channels() {
    let Some(s3) = s3() else { return };
    let env = TestEnv::new();
    env.synth("photos", 3, 6, 48, 36);
    env.ok_s3(
        &s3,
        &[
            "push",
            "photos",
            &s3.uri("t-build/photos"),
            "--layout",
            "mirror",
            "-q",
        ],
    );
    let recipe = format!(
        "name = \"s3\"\n[[sources]]\ntype = \"folders\"\nroot = \"{}\"\n[split]\ntrain = 0.5\nvalidation = 0.5\n\
         [transform]\nresize = 24\n[[outputs]]\nformat = \"recordio\"\n[[outputs]]\nformat = \"sagemaker-image\"\n",
        s3.uri("t-build/photos")
    );
    env.write("r.toml", recipe.as_bytes());
    // the same recipe on local sources gives the reference bytes
    env.write(
        "local.toml",
        recipe
            .replace(&s3.uri("t-build/photos"), "photos")
            .as_bytes(),
    );
    env.ok(&["build", "local.toml", "--out", "ref"]);
    let out = env.ok_s3(&s3, &["build", "r.toml", "--out", &s3.uri("t-build/out")]);
    assert!(
        stderr(&out).contains("10 uploaded") || stderr(&out).contains("uploaded"),
        "{}",
        stderr(&out)
    );
    // nothing of the sources was staged on disk: only outputs and the cache
    let staged: Vec<String> = walk(&env.path("staging"));
    assert!(
        staged
            .iter()
            .all(|p| !p.ends_with("img_00000.jpg") || p.contains("sagemaker")),
        "{staged:?}"
    );
    // read it back: byte-identical to the local build
    let m: serde_json::Value = serde_json::from_slice(&env.read("ref/manifest.json")).unwrap();
    let files: Vec<String> = m["files"].as_object().unwrap().keys().cloned().collect();
    let list: String = files
        .iter()
        .map(|f| s3.uri(&format!("t-build/out/{f}")) + "\n")
        .collect();
    env.write("got.txt", list.as_bytes());
    env.ok_s3(
        &s3,
        &[
            "pull",
            "got.txt",
            "got",
            "--base",
            &s3.uri("t-build/out"),
            "-q",
        ],
    );
    for f in &files {
        assert_eq!(
            env.read(&format!("got/{f}")),
            env.read(&format!("ref/{f}")),
            "{f}"
        );
    }
    // a re-run changes nothing remotely
    let out = env.ok_s3(&s3, &["build", "r.toml", "--out", &s3.uri("t-build/out")]);
    assert!(stderr(&out).contains("0 uploaded"), "{}", stderr(&out));
    // SageMaker channels from a local build output
    let dry = env.ok_s3(
        &s3,
        &["push", "ref", &s3.uri("t-build/channels"), "--dry-run"],
    );
    let plan = stdout(&dry);
    for key in [
        "t-build/channels/complete/train/train.rec",
        "t-build/channels/complete/validation/validation.rec",
        "t-build/channels/complete/train_lst/train.lst",
        "t-build/channels/complete/validation/class_0/",
        "t-build/channels/manifest.json",
    ] {
        assert!(plan.contains(key), "{key} not in\n{plan}");
    }
}

#[test]
fn a_push_interrupted_by_a_server_outage_resumes_without_resending() {
    let Some(_) = s3() else { return };
    let env = TestEnv::new();
    let Some(server) = OwnServer::start(&env.path("garage")) else {
        return;
    };
    let s3 = server.s3.clone();
    for i in 0..24 {
        env.write(&format!("data/f{i:02}.bin"), &noise(6 << 20, i as u64));
    }
    let dest = s3.uri("t-outage");
    let push_args = [
        "push",
        "data",
        &dest,
        "--layout",
        "mirror",
        "--part-size-mib",
        "5",
        "--json",
    ];
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_imgprep"))
        .args(push_args)
        .args(["--concurrency", "2"])
        .envs(s3.vars())
        .env("IMGPREP_S3_RETRY_SECONDS", "1")
        .current_dir(env.dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(250));
    server.run("stop");
    let out = child.wait_with_output().unwrap();
    server.run("start");
    let first: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let sent_before = first["uploaded"].as_u64().unwrap_or(0);
    assert!(
        sent_before < 24,
        "the outage did not interrupt the push: {first}"
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // re-run: completes, and what was finished is not sent again
    let push_again = || json(&env.ok_s3(&s3, &push_args));
    let r = push_again();
    // (an object completed just as the server stopped counts as failed in
    // the first run and is skipped now)
    let (up, skipped) = (
        r["uploaded"].as_u64().unwrap(),
        r["skipped"].as_u64().unwrap(),
    );
    assert!(skipped >= sent_before, "{r}");
    assert_eq!(up + skipped, 24, "{r}");
    // every object is whole: a third run skips all 24
    let r = push_again();
    assert_eq!(r["skipped"], 24);
}
