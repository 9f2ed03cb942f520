//! Object storage against real servers on 127.0.0.1: S3 (Garage), Azure Blob
//! Storage (Azurite) and plain HTTP (Python's http.server).

use crate::env::{az, s3, sharded_photos, stderr, stdout, OwnServer, TestEnv};

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
        "# an s3-paths.txt of keys\n{}\n\nimg/05.jpg\n{}\n../../etc/passwd\n{}\n",
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
    // a different file that no pull wrote is the user's: left as it is, the
    // key failed with the reason, unless --overwrite
    env.write("mine/img/05.jpg", b"my own edit");
    env.write("one.txt", b"img/05.jpg\n");
    let out = env.run_s3(&s3, &["pull", "one.txt", "mine", "--base", &base]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(env.read("mine/img/05.jpg"), b"my own edit");
    let failed = String::from_utf8(env.read("mine/failed.txt")).unwrap();
    assert!(
        failed.contains("no earlier pull into this folder wrote it"),
        "{failed}"
    );
    assert!(stderr(&out).contains("--overwrite"), "{}", stderr(&out));
    let args = ["pull", "one.txt", "mine", "--base", &base, "--json"];
    let r = json(&env.ok_s3(&s3, &[&args[..], &["--overwrite"]].concat()));
    assert_eq!(r["downloaded"], 1);
    assert_eq!(env.read("mine/img/05.jpg"), env.read("data/img/05.jpg"));
    // keys that would write pull's reports, the same file twice, or through a
    // symbolic link in DEST are refused, each with its reason
    env.write("outside/keep.jpg", b"keep");
    std::os::unix::fs::symlink(env.path("outside"), env.path("dl/linked")).unwrap();
    let list = format!(
        "{}\n{}\nimg/03.jpg\nimg//03.jpg\nlinked/keep.jpg\nfailed.txt\n",
        s3.uri("t-push/data/img/05.jpg"),
        s3.uri("t-push/data/img/05.jpg"),
    );
    env.write("list2.txt", list.as_bytes());
    let out = env.run_s3(&s3, &["pull", "list2.txt", "dl", "--base", &base, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let failed = String::from_utf8(env.read("dl/failed.txt")).unwrap();
    assert_eq!(failed.lines().count(), 4, "{failed}");
    assert!(
        failed.contains("as s3://") && failed.contains("already is"),
        "{failed}"
    );
    assert!(failed.contains("symbolic link"), "{failed}");
    assert!(failed.contains("pull's own failed.txt"), "{failed}");
    assert_eq!(env.read("outside/keep.jpg"), b"keep");
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
        if e.file_type().unwrap().is_symlink() {
            continue;
        }
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
    env.upload(&s3, "photos", &s3.uri("t-build/photos"));
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
    // an output under the source prefix: refused before anything is read
    // (each re-run read the last one's outputs as new images)
    let inside = s3.uri("t-build/photos/out");
    let out = env.run_s3(&s3, &["build", "r.toml", "--out", &inside]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is inside the input"),
        "{}",
        stderr(&out)
    );
    // a bucket that is not there: said before anything is built
    let out = env.run_s3(
        &s3,
        &["build", "r.toml", "--out", "s3://no-such-bucket-here/x"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("NoSuchBucket"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("processed"), "{}", stderr(&out));
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
    assert_same_files(&env, &files, "got", "ref", "");
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
    // pushed as channels, the dataset verifies where it is: every file under
    // its channel key, the .rec with its .idx and .lst from recordio-index/
    env.ok_s3(&s3, &["push", "ref", &s3.uri("t-build/channels"), "-q"]);
    let v = env.run_s3(&s3, &["verify", &s3.uri("t-build/channels"), "--json"]);
    assert_eq!(v.status.code(), Some(0), "{}{}", stdout(&v), stderr(&v));
    let r = json(&v);
    assert_eq!(r["files_checked"].as_u64(), Some(files.len() as u64), "{r}");
    assert_eq!(r["records_checked"].as_u64(), Some(18), "{r}");
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

/// Each of `files` is the same under `got` and `want`.
fn assert_same_files<S: AsRef<str>>(
    env: &TestEnv,
    files: &[S],
    got: &str,
    want: &str,
    context: &str,
) {
    for f in files {
        let f = f.as_ref();
        assert_eq!(
            env.read(&format!("{got}/{f}")),
            env.read(&format!("{want}/{f}")),
            "{context} {f}"
        );
    }
}

/// Every file a build output's manifest lists, except the manifest.
fn output_files(env: &TestEnv, out: &str) -> Vec<String> {
    let m: serde_json::Value =
        serde_json::from_slice(&env.read(&format!("{out}/manifest.json"))).unwrap();
    m["files"].as_object().unwrap().keys().cloned().collect()
}

/// A folder tree holding CSV, `.lst` and TinyImageNet-like metadata sources
/// and recipes that name them by relative paths.
fn write_site(env: &TestEnv) {
    env.synth("site/photos", 4, 17, 40, 30);
    let mut csv = String::from("file,label\n");
    for c in 0..4 {
        for i in 0..17 {
            csv.push_str(&format!("class_{c}/img_{i:05}.jpg,class_{c}\n"));
        }
    }
    csv.push_str("class_0/missing.jpg,class_0\n");
    env.write("site/index/photos.csv", csv.as_bytes());
    env.write(
        "site/index/train.lst",
        b"0\t1\tclass_1/img_00000.jpg\n1\t0\tclass_0/img_00003.jpg\n2\t3\tclass_3/img_00009.jpg\n",
    );
    let ids = ["n01443537", "n01629819"];
    let mut ann = String::new();
    for (c, id) in ids.iter().enumerate() {
        for i in 0..3 {
            let src = env.read(&format!("site/photos/class_{c}/img_{i:05}.jpg"));
            if i == 0 {
                env.write(&format!("site/tiny/val/images/val_{c}.JPEG"), &src);
                ann.push_str(&format!("val_{c}.JPEG\t{id}\t0\t0\t10\t10\n"));
            } else {
                env.write(&format!("site/tiny/train/{id}/images/{id}_{i}.JPEG"), &src);
            }
        }
    }
    env.write("site/tiny/wnids.txt", ids.join("\n").as_bytes());
    env.write(
        "site/tiny/words.txt",
        b"n01443537\tgoldfish\nn01629819\tsalamander\n",
    );
    env.write("site/tiny/val/val_annotations.txt", ann.as_bytes());
    let tail = "[transform]\nresize = 20\n[[outputs]]\nformat = \"recordio\"\n[[outputs]]\nformat = \"tfrecord\"\n";
    env.write(
        "site/recipes/csv.toml",
        format!(
            "name = \"csv\"\non_error = \"skip\"\n[[sources]]\ntype = \"csv\"\nfile = \"../index/photos.csv\"\n\
             root = \"../photos\"\npath = \"file\"\nlabel = \"label\"\n[split]\ntrain = 0.75\nvalidation = 0.25\n{tail}"
        )
        .as_bytes(),
    );
    env.write(
        "site/recipes/lst.toml",
        format!(
            "name = \"lst\"\n[[sources]]\ntype = \"lst\"\nfile = \"../index/train.lst\"\nroot = \"../photos\"\nsplit = \"train\"\n\
             [split]\nmethod = \"source\"\n{tail}"
        )
        .as_bytes(),
    );
    env.write(
        "site/recipes/tiny.toml",
        format!(
            "name = \"tiny\"\n[[sources]]\ntype = \"metadata\"\nroot = \"../tiny\"\nclass_ids = \"../tiny/wnids.txt\"\n\
             names = \"../tiny/words.txt\"\nsplits = [\n  {{ split = \"train\", folders = \"train/{{class}}/images\" }},\n  \
             {{ split = \"validation\", annotations = \"val/val_annotations.txt\", images = \"val/images\" }},\n]\n{tail}"
        )
        .as_bytes(),
    );
}

#[test]
fn csv_lst_and_metadata_sources_and_the_recipe_itself_read_from_s3() {
    let Some(s3) = s3() else { return };
    let env = TestEnv::new();
    write_site(&env);
    let site = s3.uri("t-sources/site");
    env.upload(&s3, "site", &site);
    for name in ["csv", "lst", "tiny"] {
        let local_out = format!("local-{name}");
        env.ok(&[
            "build",
            &format!("site/recipes/{name}.toml"),
            "--out",
            &local_out,
        ]);
        // the recipe is read from the bucket; its relative paths resolve there
        let remote_out = format!("remote-{name}");
        let out = env.ok_s3(
            &s3,
            &[
                "build",
                &format!("{site}/recipes/{name}.toml"),
                "--out",
                &remote_out,
            ],
        );
        let files = output_files(&env, &local_out);
        assert!(files.iter().any(|f| f.ends_with(".tfrecord")), "{files:?}");
        assert_eq!(files, output_files(&env, &remote_out), "{name}");
        assert_same_files(&env, &files, &remote_out, &local_out, name);
        if name == "csv" {
            // 68 rows: one listing of the root, which also shows the missing one
            let m: serde_json::Value =
                serde_json::from_slice(&env.read(&format!("{remote_out}/manifest.json"))).unwrap();
            let why = m["skipped"][0]["reason"].as_str().unwrap_or_default();
            assert_eq!(why, "the file does not exist", "{m}");
            assert_eq!(m["skipped"][0]["item"], "class_0/missing.jpg", "{m}");
            let origin = m["skipped"][0]["origin"].as_str().unwrap_or_default();
            assert!(origin.starts_with(&site.to_string()), "{m}");
            assert!(stderr(&out).contains("1 skipped"), "{}", stderr(&out));
        }
    }
    // a missing index object is one clear error naming it
    env.write(
        "bad.toml",
        format!("name = \"bad\"\n[[sources]]\ntype = \"lst\"\nfile = \"{site}/index/nope.lst\"\nroot = \"{site}/photos\"\n")
            .as_bytes(),
    );
    let out = env.run_s3(&s3, &["build", "bad.toml", "--out", "bad"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("{site}/index/nope.lst")) && err.contains("not found"),
        "{err}"
    );
}

#[test]
fn im2rec_inspect_verify_and_convert_take_s3_uris() {
    let Some(s3) = s3() else { return };
    let env = TestEnv::new();
    env.synth("images", 3, 6, 48, 36);
    let images = s3.uri("t-im2rec/images");
    env.upload(&s3, "images", &images);
    let prefix = s3.uri("t-im2rec/lists/data");
    let list_args = ["--list", "--recursive", "--train-ratio", "0.8"];
    let pack_args = ["--resize", "24", "--num-thread", "2"];
    let run = |prefix: &str, root: &str, extra: &[&str]| {
        let mut a = vec!["im2rec", prefix, root];
        a.extend_from_slice(extra);
        env.ok_s3(&s3, &a)
    };
    run(&prefix, &images, &list_args);
    run(&prefix, &images, &pack_args);
    run("local/data", "images", &list_args);
    run("local/data", "images", &pack_args);
    // everything im2rec wrote went next to the remote lists, byte-identical
    let names = [
        "data_train.lst",
        "data_val.lst",
        "data_train.rec",
        "data_train.idx",
        "data_val.rec",
        "data_val.idx",
    ];
    let list: String = names.iter().map(|n| format!("{n}\n")).collect();
    env.write("keys.txt", list.as_bytes());
    env.ok_s3(
        &s3,
        &[
            "pull",
            "keys.txt",
            "back",
            "--base",
            &s3.uri("t-im2rec/lists"),
            "-q",
        ],
    );
    assert_same_files(&env, &names, "back", "local", "");
    // verify and inspect read them in place
    let v = env.ok_s3(
        &s3,
        &["verify", &s3.uri("t-im2rec/lists/data_train"), "--json"],
    );
    let r = json(&v);
    assert_eq!(
        (
            r["ok"].as_bool(),
            r["records"].as_u64(),
            r["lst_entries"].as_u64()
        ),
        (Some(true), Some(14), Some(14))
    );
    let i = env.ok_s3(
        &s3,
        &["inspect", &s3.uri("t-im2rec/lists/data_val.rec"), "--json"],
    );
    assert_eq!(stdout(&i).lines().count(), 4);
    assert!(stdout(&i).contains("\"width\":32"), "{}", stdout(&i));
    // a damaged remote .rec fails verification (exit 1), like a local one
    let rec = env.read("local/data_val.rec");
    env.write("bad/data_val.rec", &rec[..rec.len() - 5]);
    env.upload(&s3, "bad", &s3.uri("t-im2rec/bad"));
    let out = env.run_s3(&s3, &["verify", &s3.uri("t-im2rec/bad/data_val.rec")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    // init writes a starter recipe for a tree in the bucket; it builds as is
    let init = env.ok_s3(&s3, &["init", &images, "--output", "started.toml"]);
    assert!(
        stderr(&init).contains("18 image files in 3 classes"),
        "{}",
        stderr(&init)
    );
    let text = String::from_utf8(env.read("started.toml")).unwrap();
    assert!(text.contains(&format!("root = \"{images}\"")), "{text}");
    env.ok_s3(&s3, &["build", "started.toml", "--out", "started"]);

    // convert from s3:// to s3://, then verify the output in the bucket
    let conv = s3.uri("t-im2rec/conv");
    let c = [
        "--to",
        "tfrecord",
        "--to",
        "recordio",
        "--resize",
        "24",
        "--validation",
        "0.5",
        "--train",
        "0.5",
    ];
    let mut a = vec!["convert", images.as_str(), conv.as_str()];
    a.extend_from_slice(&c);
    env.ok_s3(&s3, &a);
    let mut a = vec!["convert", "images", "conv-local"];
    a.extend_from_slice(&c);
    env.ok(&a);
    let v = env.ok_s3(&s3, &["verify", &conv, "--json"]);
    let r = json(&v);
    assert_eq!(
        (r["ok"].as_bool(), r["records_checked"].as_u64()),
        (Some(true), Some(36)),
        "{r}"
    );
    // the kept recipes differ (one names the bucket, one the local folder)
    let files: Vec<String> = output_files(&env, "conv-local")
        .into_iter()
        .filter(|f| f != "imgprep-convert.toml")
        .collect();
    let list: String = files.iter().map(|f| format!("{f}\n")).collect();
    env.write("conv.txt", list.as_bytes());
    env.ok_s3(
        &s3,
        &["pull", "conv.txt", "conv-back", "--base", &conv, "-q"],
    );
    assert_same_files(&env, &files, "conv-back", "conv-local", "");
}

/// A plain HTTP server (Python's `http.server`) over `dir` on a free port,
/// stopped when dropped.
struct HttpServer {
    child: std::process::Child,
    base: String,
}

impl HttpServer {
    fn start(dir: &std::path::Path) -> HttpServer {
        use std::io::BufRead;
        let mut child = std::process::Command::new("python3")
            .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1"])
            .current_dir(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs");
        // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .unwrap_or_else(|| panic!("no port in {line:?}"))
            .to_string();
        HttpServer {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn http_urls_are_read_like_files() {
    let env = TestEnv::new();
    write_site(&env);
    let server = HttpServer::start(&env.path("site"));
    let base = &server.base;
    // the recipe and everything it names, over HTTP (no listing needed for CSV)
    let out = env.ok(&[
        "build",
        &format!("{base}/recipes/csv.toml"),
        "--out",
        "remote",
    ]);
    env.ok(&["build", "site/recipes/csv.toml", "--out", "local"]);
    let files = output_files(&env, "local");
    assert_same_files(&env, &files, "remote", "local", "");
    let m: serde_json::Value = serde_json::from_slice(&env.read("remote/manifest.json")).unwrap();
    assert_eq!(
        (&m["skipped"][0]["reason"], &m["skipped"][0]["item"]),
        (
            &serde_json::json!("the file does not exist"),
            &serde_json::json!("class_0/missing.jpg")
        ),
        "{}",
        stderr(&out)
    );
    assert!(
        m["skipped"][0]["origin"]
            .as_str()
            .unwrap_or_default()
            .starts_with(base.as_str()),
        "{m}"
    );
    // a folder source cannot list over plain HTTP: one clear line, no retries
    env.write(
        "folders.toml",
        format!("name = \"f\"\n[[sources]]\ntype = \"folders\"\nroot = \"{base}/photos\"\n")
            .as_bytes(),
    );
    let t = std::time::Instant::now();
    let out = env.run(&["build", "folders.toml", "--out", "f"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("cannot list"), "{err}");
    assert!(t.elapsed().as_secs() < 3, "{err}");
    // pull takes URLs; a missing one is listed in failed.txt
    env.write(
        "urls.txt",
        format!("{base}/photos/class_2/img_00004.jpg\n{base}/photos/nope.jpg\n").as_bytes(),
    );
    let out = env.run(&["pull", "urls.txt", "dl", "-q"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        env.read("dl/photos/class_2/img_00004.jpg"),
        env.read("site/photos/class_2/img_00004.jpg")
    );
    let failed = String::from_utf8(env.read("dl/failed.txt")).unwrap();
    assert!(
        failed.starts_with(&format!("{base}/photos/nope.jpg\tnot found")),
        "{failed}"
    );
    // URLs are percent-encoded: `img%200.jpg` is the file `img 0.jpg` (and
    // a file named `img%200.jpg` is `img%25200.jpg`), as curl reads them
    std::fs::create_dir_all(env.path("site/odd/cat é")).unwrap();
    env.write("site/odd/cat é/img 0.jpg", b"spaced");
    env.write("site/odd/cat é/img%200.jpg", b"literal");
    env.write(
        "odd.txt",
        format!("{base}/odd/cat%20%C3%A9/img%200.jpg\n{base}/odd/cat%20%C3%A9/img%25200.jpg\n")
            .as_bytes(),
    );
    env.ok(&["pull", "odd.txt", "odd", "-q"]);
    assert_eq!(env.read("odd/odd/cat é/img 0.jpg"), b"spaced");
    assert_eq!(env.read("odd/odd/cat é/img%200.jpg"), b"literal");
    // a key line starting with `/` is refused (listed), not fetched as another key
    env.write(
        "slash.txt",
        b"/photos/class_2/img_00004.jpg\nphotos/class_2/img_00004.jpg\n",
    );
    let out = env.run(&["pull", "slash.txt", "sl", "--base", base, "-q"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let failed = String::from_utf8(env.read("sl/failed.txt")).unwrap();
    assert!(failed.contains("starting with `/`"), "{failed}");
    assert_eq!(
        env.read("sl/photos/class_2/img_00004.jpg"),
        env.read("site/photos/class_2/img_00004.jpg")
    );
    // inspect reads a .rec over HTTP
    let rec = files.iter().find(|f| f.ends_with("train.rec")).unwrap();
    std::fs::create_dir_all(env.path("site/out")).unwrap();
    std::fs::copy(
        env.path(&format!("local/{rec}")),
        env.path("site/out/train.rec"),
    )
    .unwrap();
    let i = env.ok(&[
        "inspect",
        &format!("{base}/out/train.rec"),
        "--limit",
        "2",
        "--json",
    ]);
    assert_eq!(stdout(&i).lines().count(), 2);
}

/// Starts `imgprep ARGS` with the S3 settings and kills it (SIGKILL) after
/// `ms` milliseconds, or lets it finish.
fn killed_after(env: &TestEnv, s3: &crate::env::S3, args: &[&str], ms: u64) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_imgprep"))
        .args(args)
        .envs(s3.vars())
        .current_dir(env.dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(ms));
    let _ = child.kill();
    let _ = child.wait();
}

/// Counts of each dry-run action (`upload`, `replace`, `skip`).
fn dry_run_actions(
    env: &TestEnv,
    s3: &crate::env::S3,
    dir: &str,
    dest: &str,
) -> std::collections::BTreeMap<String, u64> {
    let r = json(&env.ok_s3(
        s3,
        &[
            "push",
            dir,
            dest,
            "--layout",
            "mirror",
            "--part-size-mib",
            "5",
            "--dry-run",
            "--json",
        ],
    ));
    let mut n = std::collections::BTreeMap::new();
    for p in r["plan"].as_array().unwrap() {
        *n.entry(p["action"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    n
}

#[test]
fn a_killed_push_or_pull_resumes_and_never_shows_a_partial_object() {
    let Some(s3) = s3() else { return };
    let env = TestEnv::new();
    const N: u64 = 24;
    for i in 0..N {
        // over one 5 MiB part: multipart uploads
        env.write(
            &format!("data/f{i:02}.bin"),
            &noise((5 << 20) + 4096, 100 + i),
        );
    }
    // push, killed at a growing delay until it was caught half-way
    let mut caught = None;
    for (attempt, ms) in [150u64, 300, 600, 1200, 2400].into_iter().enumerate() {
        let dest = s3.uri(&format!("t-kill/push{attempt}"));
        killed_after(
            &env,
            &s3,
            &[
                "push",
                "data",
                &dest,
                "--layout",
                "mirror",
                "--part-size-mib",
                "5",
                "--concurrency",
                "2",
            ],
            ms,
        );
        let n = dry_run_actions(&env, &s3, "data", &dest);
        // an object under its final name is always whole
        assert_eq!(n.get("replace"), None, "a partial object is visible: {n:?}");
        let done = n.get("skip").copied().unwrap_or(0);
        if done > 0 && done < N {
            caught = Some((dest, done));
            break;
        }
    }
    let (dest, done) = caught.expect("no kill landed half-way through the push");
    let r = json(&env.ok_s3(
        &s3,
        &[
            "push",
            "data",
            &dest,
            "--layout",
            "mirror",
            "--part-size-mib",
            "5",
            "--json",
        ],
    ));
    assert_eq!(
        (r["uploaded"].as_u64(), r["skipped"].as_u64()),
        (Some(N - done), Some(done)),
        "{r}"
    );
    assert_eq!(
        dry_run_actions(&env, &s3, "data", &dest).get("skip"),
        Some(&N)
    );

    // pull the pushed objects, killed half-way
    let keys: String = (0..N).map(|i| format!("f{i:02}.bin\n")).collect();
    env.write("keys.txt", keys.as_bytes());
    let whole = |dir: &str| -> u64 {
        let mut n = 0;
        for i in 0..N {
            let p = env.path(&format!("{dir}/f{i:02}.bin"));
            if p.exists() {
                // a file under its final name is always complete
                assert_eq!(
                    env.read(&format!("{dir}/f{i:02}.bin")),
                    env.read(&format!("data/f{i:02}.bin"))
                );
                n += 1;
            }
        }
        n
    };
    let mut caught = None;
    for (attempt, ms) in [100u64, 200, 400, 800, 1600].into_iter().enumerate() {
        let dir = format!("dl{attempt}");
        killed_after(
            &env,
            &s3,
            &[
                "pull",
                "keys.txt",
                &dir,
                "--base",
                &dest,
                "--concurrency",
                "2",
            ],
            ms,
        );
        let n = whole(&dir);
        if n > 0 && n < N {
            caught = Some((dir, n));
            break;
        }
    }
    let (dir, n) = caught.expect("no kill landed half-way through the pull");
    let r = json(&env.ok_s3(&s3, &["pull", "keys.txt", &dir, "--base", &dest, "--json"]));
    assert_eq!(
        (r["downloaded"].as_u64(), r["skipped"].as_u64()),
        (Some(N - n), Some(n)),
        "{r}"
    );
    assert_eq!(whole(&dir), N);
    // the killed run's partial files are gone
    let left: Vec<String> = walk(&env.path(&dir))
        .into_iter()
        .filter(|p| p.ends_with(".partial"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// az:// against Azurite: push skips by content (Azure's own ETags are not
/// content hashes, so imgprep keeps one in the blob's metadata), multipart,
/// pull resumes, and a build from az:// sources to az:// outputs.
#[test]
fn azure_blob_storage_through_az_uris() {
    let Some(az) = az() else { return };
    let env = TestEnv::new();
    env.synth("photos", 3, 6, 48, 36);
    env.write("photos/big.bin", &noise((9 << 20) + 5, 7));
    let photos = az.uri("photos");
    let push = |extra: &[&str]| {
        let mut a = vec![
            "push",
            "photos",
            photos.as_str(),
            "--layout",
            "mirror",
            "--json",
        ];
        a.extend_from_slice(extra);
        json(&env.ok_az(&az, &a))
    };
    let first = push(&[]);
    assert_eq!(
        (first["uploaded"].as_u64(), first["skipped"].as_u64()),
        (Some(20), Some(0)),
        "{first}"
    );
    let again = push(&[]);
    assert_eq!(
        (again["uploaded"].as_u64(), again["skipped"].as_u64()),
        (Some(0), Some(20)),
        "{again}"
    );
    let other = env.read("photos/class_1/img_00003.jpg");
    env.write("photos/class_1/img_00002.jpg", &other);
    let changed = push(&["--dry-run"]);
    let plan = changed["plan"].as_array().unwrap();
    let replace: Vec<&serde_json::Value> =
        plan.iter().filter(|p| p["action"] == "replace").collect();
    assert_eq!(replace.len(), 1, "{changed}");
    assert!(replace[0]["local"]
        .as_str()
        .unwrap()
        .ends_with("img_00002.jpg"));
    push(&[]);

    // pull: the multipart one and a small one, then a resume that skips both
    env.write(
        "keys.txt",
        b"big.bin\nclass_0/img_00001.jpg\nclass_0/missing.jpg\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_imgprep"))
        .args(["pull", "keys.txt", "dl", "--base", &photos, "--json"])
        .envs(az.vars())
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(json(&out)["downloaded"], 2);
    assert_eq!(env.read("dl/big.bin"), env.read("photos/big.bin"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_imgprep"))
        .args(["pull", "keys.txt", "dl", "--base", &photos, "--json"])
        .envs(az.vars())
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    assert_eq!(
        (
            json(&out)["downloaded"].as_u64(),
            json(&out)["skipped"].as_u64()
        ),
        (Some(0), Some(2))
    );

    // build from az:// to az://, the same bytes as a local build; verify in place
    let recipe = format!(
        "name = \"az\"\n[[sources]]\ntype = \"folders\"\nroot = \"{photos}\"\n[split]\ntrain = 0.5\nvalidation = 0.5\n\
         [transform]\nresize = 24\n[[outputs]]\nformat = \"recordio\"\n[[outputs]]\nformat = \"tfrecord\"\n"
    );
    env.write("r.toml", recipe.as_bytes());
    env.write("local.toml", recipe.replace(&photos, "photos").as_bytes());
    env.ok(&["build", "local.toml", "--out", "ref"]);
    let out_uri = az.uri("out");
    env.ok_az(&az, &["build", "r.toml", "--out", &out_uri]);
    let v = json(&env.ok_az(&az, &["verify", &out_uri, "--json"]));
    assert_eq!(v["ok"], true, "{v}");
    let files = output_files(&env, "ref");
    let list: String = files.iter().map(|f| format!("{f}\n")).collect();
    env.write("got.txt", list.as_bytes());
    env.ok_az(&az, &["pull", "got.txt", "got", "--base", &out_uri, "-q"]);
    assert_same_files(&env, &files, "got", "ref", "");
}

/// Pass-through from s3://: each object is fetched once, into the item
/// cache; a rebuild with another split reads none of them again.
#[test]
fn pass_through_from_s3_fetches_each_object_once() {
    let Some(s3) = s3() else { return };
    let env = TestEnv::new();
    env.synth("photos", 2, 5, 40, 30);
    let photos = s3.uri("t-pass/photos");
    env.upload(&s3, "photos", &photos);
    let recipe = |seed: u32, root: &str| {
        format!(
            "name = \"p\"\nseed = {seed}\n[[sources]]\ntype = \"folders\"\nroot = \"{root}\"\n[split]\ntrain = 0.6\nvalidation = 0.4\n\
             [transform]\nencoding = \"passthrough\"\n[[outputs]]\nformat = \"recordio\"\n[[outputs]]\nformat = \"tfrecord\"\n"
        )
    };
    for seed in [1, 2] {
        env.write("r.toml", recipe(seed, &photos).as_bytes());
        env.write("local.toml", recipe(seed, "photos").as_bytes());
        let s = json(&env.ok_s3(&s3, &["build", "r.toml", "--out", "out", "--json"]));
        let want = if seed == 1 { (10, 0) } else { (0, 10) };
        assert_eq!(
            (s["processed"].as_u64(), s["cached"].as_u64()),
            (Some(want.0), Some(want.1)),
            "seed {seed}"
        );
        env.ok(&["build", "local.toml", "--out", "ref", "-q"]);
        assert_same_files(
            &env,
            &output_files(&env, "ref"),
            "out",
            "ref",
            &format!("seed {seed}"),
        );
    }
}

/// A dataset pushed again after a rebuild that names its files otherwise
/// (fewer shards): the earlier push's objects are not deleted (imgprep
/// deletes nothing in a bucket) but named, with exit 1, since a channel
/// reading the folder would train on them too.
#[test]
fn objects_of_an_earlier_push_in_a_channel_folder_are_named() {
    let Some(s3) = s3() else { return };
    let env = TestEnv::new();
    let recipe = sharded_photos(&env);
    env.write("r.toml", recipe(4).as_bytes());
    env.ok(&["build", "r.toml", "--out", "o"]);
    let dest = s3.uri("t-foreign/ch");
    env.ok_s3(&s3, &["push", "o", &dest, "-q"]);
    env.write("r.toml", recipe(6).as_bytes());
    env.ok(&["build", "r.toml", "--out", "o"]);
    let out = env.run_s3(&s3, &["push", "o", &dest, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let foreign: Vec<&str> = r["not_in_dataset"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let old = |k: u32| {
        s3.uri(&format!(
            "t-foreign/ch/complete/tfrecord-tfds/train/train-{k:05}-of-00003.tfrecord"
        ))
    };
    assert_eq!(foreign, [old(0), old(1), old(2)], "{r}");
    assert!(
        stderr(&out).contains("not part of this dataset"),
        "{}",
        stderr(&out)
    );
    // the new shards are there all the same; an empty prefix takes it cleanly
    assert!(r["uploaded"].as_u64().unwrap() >= 2, "{r}");
    let v = env.run_s3(&s3, &["verify", &dest]);
    let said = format!("{}{}", stdout(&v), stderr(&v));
    assert_eq!(v.status.code(), Some(1), "{said}");
    assert!(
        said.contains(
            "complete/tfrecord-tfds/train/train-00000-of-00003.tfrecord: not in the manifest"
        ),
        "{said}"
    );
    env.ok_s3(&s3, &["push", "o", &s3.uri("t-foreign/clean"), "-q"]);
    env.ok_s3(&s3, &["verify", &s3.uri("t-foreign/clean"), "-q"]);
    // a build straight to the bucket: the same, and verify names them too
    let out_uri = s3.uri("t-foreign/built");
    env.write("r.toml", recipe(4).as_bytes());
    env.ok_s3(&s3, &["build", "r.toml", "--out", &out_uri, "-q"]);
    assert_eq!(
        env.run_s3(&s3, &["verify", &out_uri]).status.code(),
        Some(0)
    );
    env.write("r.toml", recipe(6).as_bytes());
    let out = env.run_s3(&s3, &["build", "r.toml", "--out", &out_uri]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("3 objects there not in this dataset"),
        "{}",
        stderr(&out)
    );
    let v = env.run_s3(&s3, &["verify", &out_uri]);
    let said = format!("{}{}", stdout(&v), stderr(&v));
    assert_eq!(v.status.code(), Some(1), "{said}");
    assert!(
        said.contains("complete/tfrecord-tfds/train-00002-of-00003.tfrecord: not in the manifest"),
        "{said}"
    );
}

/// Every key in the bucket under `prefix` (`s3.uri`'s key part), listed by
/// curl's own SigV4 signing: a reader that is not imgprep.
fn listed_keys(s3: &crate::env::S3, prefix: &str) -> Vec<String> {
    let uri = s3.uri(prefix);
    let key_prefix = uri.trim_start_matches(&format!("s3://{}/", s3.bucket));
    let enc: String = key_prefix
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let out = std::process::Command::new("curl")
        .args(["-s", "--fail-with-body", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user"])
        .arg(format!("{}:{}", s3.key, s3.secret))
        .args(["-H", "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"])
        .arg(format!("{}/{}?list-type=2&prefix={enc}", s3.endpoint, s3.bucket))
        .output()
        .expect("curl (it lists the bucket with its own S3 signing)");
    let xml = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{xml}");
    xml.split("<Key>")
        .skip(1)
        .map(|k| {
            let k = k.split("</Key>").next().unwrap();
            k.replace("&amp;", "&")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
        })
        .map(|k| {
            k.trim_start_matches(key_prefix)
                .trim_start_matches('/')
                .to_string()
        })
        .collect()
}

/// Object keys are the files' exact UTF-8 paths, however they are spelled
/// (letters outside ASCII, `%`, `[`, `#`, spaces): written so by push and a
/// build, read back so as sources, and named so in SageMaker's .lst files.
#[test]
fn object_keys_are_the_exact_file_names() {
    let Some(s3) = s3() else { return };
    let env = TestEnv::new();
    env.synth("tmp", 1, 3, 48, 36);
    let jpg = |k: usize| env.read(&format!("tmp/class_0/img_{k:05}.jpg"));
    let names = ["café/thé 1.jpg", "日本/写真.jpg", "w/a%b[1]#~.jpg"];
    for (k, n) in names.iter().enumerate() {
        env.write(&format!("photos/{n}"), &jpg(k));
    }
    env.upload(&s3, "photos", &s3.uri("t-names/src"));
    let mut keys = listed_keys(&s3, "t-names/src");
    keys.sort();
    let mut want: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    want.sort();
    assert_eq!(keys, want);
    // a build from those objects equals the local one, and its channel
    // objects and .lst name the same keys
    let recipe = |root: &str| {
        format!(
            "name = \"n\"\n[[sources]]\ntype = \"folders\"\nroot = \"{root}\"\nsplit = \"train\"\n\
             [transform]\nencoding = \"passthrough\"\n[[outputs]]\nformat = \"sagemaker-image\"\n"
        )
    };
    env.write("local.toml", recipe("photos").as_bytes());
    env.ok(&["build", "local.toml", "--out", "ref"]);
    env.write("r.toml", recipe(&s3.uri("t-names/src")).as_bytes());
    env.ok_s3(&s3, &["build", "r.toml", "--out", "o", "-q"]);
    assert_eq!(
        env.read("o/complete/sagemaker/train_lst/train.lst"),
        env.read("ref/complete/sagemaker/train_lst/train.lst")
    );
    env.ok_s3(&s3, &["push", "o", &s3.uri("t-names/ds"), "-q"]);
    let keys = listed_keys(&s3, "t-names/ds");
    let lst = String::from_utf8(env.read("o/complete/sagemaker/train_lst/train.lst")).unwrap();
    for line in lst.lines() {
        let path = line.rsplit('\t').next().unwrap();
        assert!(
            keys.contains(&format!("complete/train/{path}")),
            "{path} not in {keys:?}"
        );
    }
    env.ok_s3(&s3, &["verify", &s3.uri("t-names/ds"), "-q"]);
    // a backslash in a file name is part of the name (on this system it is
    // no separator): pushed as it is, not a path that does not exist
    env.write("plain/back\\slash.txt", b"b");
    env.upload(&s3, "plain", &s3.uri("t-names/plain"));
    assert_eq!(listed_keys(&s3, "t-names/plain"), ["back\\slash.txt"]);
}

/// A dataset pushed (or built) where objects of the same names lie that
/// imgprep did not put there (no imgprep manifest.json at the prefix):
/// they are left as they are, each named, exit 1; --force replaces them.
#[test]
fn a_dataset_never_replaces_objects_imgprep_did_not_put_there() {
    let Some(s3) = s3() else { return };
    let env = TestEnv::new();
    env.synth("photos", 2, 3, 32, 24);
    env.write(
        "r.toml",
        b"name = \"f\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n\
          [transform]\nresize = 16\n[[outputs]]\nformat = \"recordio\"\n",
    );
    env.ok(&["build", "r.toml", "--out", "o"]);
    // someone's files at the destination, two of them at the dataset's names
    env.write("theirs/manifest.json", b"{\"theirs\": true}");
    env.write("theirs/complete/recordio/train.rec", b"their records");
    env.write("theirs/notes.txt", b"theirs");
    env.upload(&s3, "theirs", &s3.uri("t-theirs/d"));
    let dest = s3.uri("t-theirs/d");
    let out = env.run_s3(&s3, &["push", "o", &dest, "--layout", "mirror"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("complete/recordio/train.rec: an object with other content"),
        "{}",
        stderr(&out)
    );
    let back = |dir: &str| {
        env.write(
            "keys.txt",
            b"manifest.json\ncomplete/recordio/train.rec\nnotes.txt\n",
        );
        env.ok_s3(&s3, &["pull", "keys.txt", dir, "--base", &dest, "-q"]);
        (
            env.read(&format!("{dir}/manifest.json")),
            env.read(&format!("{dir}/complete/recordio/train.rec")),
        )
    };
    assert_eq!(
        back("got"),
        (b"{\"theirs\": true}".to_vec(), b"their records".to_vec())
    );
    // a build straight to such a prefix: the same
    let out = env.run_s3(&s3, &["build", "r.toml", "--out", &dest]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(back("got2").1, b"their records");
    // --force: the dataset's objects replace theirs; other objects stay
    env.ok_s3(
        &s3,
        &["push", "o", &dest, "--layout", "mirror", "--force", "-q"],
    );
    let (m, rec) = back("got3");
    assert_eq!(m, env.read("o/manifest.json"));
    assert_eq!(rec, env.read("o/complete/recordio/train.rec"));
    assert_eq!(env.read("got3/notes.txt"), b"theirs");
    // and now the prefix holds an imgprep dataset: a rebuild replaces freely
    env.write(
        "photos/class_0/extra.jpg",
        &env.read("photos/class_1/img_00000.jpg"),
    );
    env.ok(&["build", "r.toml", "--out", "o"]);
    env.ok_s3(&s3, &["push", "o", &dest, "--layout", "mirror", "-q"]);
}

/// verify of a prefix with nothing to verify says so, naming what it
/// looked for, not "PREFIX.rec: not found".
#[test]
fn verify_of_an_empty_prefix_says_what_it_looked_for() {
    let Some(s3) = s3() else { return };
    let env = TestEnv::new();
    let uri = s3.uri("t-nothing/here");
    let out = env.run_s3(&s3, &["verify", &uri]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing to verify there"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("here/manifest.json (a build output)"),
        "{}",
        stderr(&out)
    );
}

/// A `folders` source under a prefix with no object (a misspelt path) is a
/// usage error naming it, as a missing local folder is, not "no labelled
/// item" after an empty build.
#[test]
fn a_source_prefix_with_nothing_under_it_is_named() {
    let Some(s3) = s3() else { return };
    let env = TestEnv::new();
    let uri = s3.uri("t-nothing/imagse");
    env.write(
        "r.toml",
        format!("name = \"e\"\n[[sources]]\ntype = \"folders\"\nroot = \"{uri}\"\n").as_bytes(),
    );
    let out = env.run_s3(&s3, &["build", "r.toml", "--out", "o"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("{uri}: no object under this prefix")),
        "{}",
        stderr(&out)
    );
}
