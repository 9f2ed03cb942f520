//! Never touch what isn't ours: writes stay under the output folder, only
//! our own files are replaced or removed, one build per folder at a time,
//! an interrupted build never looks finished, and a file cannot make a
//! build block forever.

use crate::env::{assert_stderr_has, sharded_photos, stderr, stdout, TestEnv};
use std::time::{Duration, Instant};

fn manifest(env: &TestEnv, out: &str) -> serde_json::Value {
    serde_json::from_slice(&env.read(&format!("{out}/manifest.json"))).unwrap()
}

/// Runs imgprep and gives up (failing the test) after `secs`.
fn run_bounded(env: &TestEnv, args: &[&str], secs: u64) -> std::process::Output {
    run_bounded_with(env, args, secs, &[])
}

fn run_bounded_with(
    env: &TestEnv,
    args: &[&str],
    secs: u64,
    vars: &[(&str, &str)],
) -> std::process::Output {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_imgprep"))
        .args(args)
        .envs(vars.iter().copied())
        .env("IMGPREP_CACHE_DIR", env.path("cache"))
        .current_dir(env.dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            panic!("imgprep {args:?} still running after {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

const CSV_RECIPE: &[u8] = b"name = \"c\"\non_error = \"skip\"\n[[sources]]\ntype = \"csv\"\nfile = \"index.csv\"\nroot = \"imgs/train\"\npath = \"img\"\nlabel = \"label\"\n\
[transform]\nresize = 8\n[[outputs]]\nformat = \"sagemaker-image\"\n[[outputs]]\nformat = \"folders\"\n";

/// A CSV path with `..` no longer lets an output overwrite the source
/// photo; labels that are not folder names are refused; spellings of one
/// path are one item.
#[test]
fn writes_stay_under_the_output_folder() {
    let env = TestEnv::new();
    env.synth("imgs/train", 2, 2, 32, 24);
    env.synth("imgs/other", 1, 1, 32, 24);
    let before = env.read("imgs/other/class_0/img_00000.jpg");
    env.write(
        "index.csv",
        b"img,label\nclass_0/img_00000.jpg,a\n./class_0//img_00001.jpg,a\nclass_1/../class_0/img_00001.jpg,a\n\
          ../other/class_0/img_00000.jpg,b\nclass_1/img_00000.jpg,b\n",
    );
    env.write("r.toml", CSV_RECIPE);
    env.ok(&["build", "r.toml", "--out", "o"]);
    assert_eq!(env.read("imgs/other/class_0/img_00000.jpg"), before);
    let m = manifest(&env, "o");
    let reasons: Vec<String> = m["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reason"].as_str().unwrap().to_string())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("leads outside")),
        "{reasons:?}"
    );
    // `./class_0//img_00001.jpg` and `class_1/../class_0/img_00001.jpg` are one
    assert_eq!(
        reasons.iter().filter(|r| r.contains("duplicate")).count(),
        1,
        "{reasons:?}"
    );
    for f in m["files"].as_object().unwrap().keys() {
        assert!(!f.contains(".."), "{f}");
    }
    // a class name that would climb out of the folders output
    env.write(
        "index.csv",
        b"img,label\nclass_0/img_00000.jpg,../../../escaped\nclass_1/img_00000.jpg,b\n",
    );
    let out = env.run(&["build", "r.toml", "--out", "o2"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_stderr_has(&out, "cannot be a folder name");
    assert!(!env.path("escaped").exists() && !env.path("o2/escaped").exists());
}

/// Paths read back from a manifest are not trusted: an entry naming a file
/// outside the output is neither removed by the next build nor pushed.
#[test]
fn manifest_paths_outside_the_output_are_ignored() {
    let env = TestEnv::new();
    env.synth("photos", 2, 2, 32, 24);
    env.write(
        "r.toml",
        b"name = \"p\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n",
    );
    env.ok(&["build", "r.toml", "--out", "o"]);
    env.write("precious.txt", b"mine");
    let mut m = manifest(&env, "o");
    let sums = m["files"]["items.csv"].clone();
    m["files"]["../precious.txt"] = sums.clone();
    m["files"][env.path("precious.txt").to_str().unwrap()] = sums;
    env.write(
        "o/manifest.json",
        serde_json::to_string(&m).unwrap().as_bytes(),
    );
    // a changed recipe: a rebuild that removes the old build's files
    env.write(
        "r.toml",
        b"name = \"p\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n[transform]\nresize = 10\n",
    );
    env.ok(&["build", "r.toml", "--out", "o"]);
    assert_eq!(env.read("precious.txt"), b"mine");
    // push refuses such a manifest before sending anything
    env.write(
        "o/manifest.json",
        serde_json::to_string(&m).unwrap().as_bytes(),
    );
    let out = env.run(&["push", "o", "s3://nowhere/x", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_stderr_has(&out, "not a plain path");
}

/// A non-empty folder imgprep did not make is refused (nothing written),
/// `--force` builds into it and leaves its files alone; outputs and inputs
/// must not overlap.
#[test]
fn foreign_and_overlapping_output_folders_are_refused() {
    let env = TestEnv::new();
    env.synth("photos", 2, 2, 32, 24);
    env.write(
        "r.toml",
        b"name = \"f\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n",
    );
    env.write("mine/manifest.json", b"{\"my\": \"own file\"}");
    env.write("mine/.notes.abc123.partial", b"my partial-looking file");
    let out = env.run(&["build", "r.toml", "--out", "mine"]);
    assert_eq!(out.status.code(), Some(2));
    assert_stderr_has(&out, "not made by imgprep");
    let out = env.run(&["convert", "photos", "mine", "--to", "recordio"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!env.path("mine/imgprep-convert.toml").exists());
    assert_eq!(
        env.read("mine/.notes.abc123.partial"),
        b"my partial-looking file"
    );
    env.write("other/keep.txt", b"keep");
    env.ok(&["build", "r.toml", "--out", "other", "--force"]);
    assert_eq!(env.read("other/keep.txt"), b"keep");
    // a re-run there is ours now
    env.ok(&["build", "r.toml", "--out", "other"]);
    // output inside an input, input inside the output
    // (also through `..` after a folder that does not exist yet)
    for out_dir in ["photos/out", "photos", ".", "missing/../photos/out"] {
        let out = env.run(&["build", "r.toml", "--out", out_dir, "--force"]);
        assert_eq!(out.status.code(), Some(2), "{out_dir}");
        assert_stderr_has(&out, "must not overlap");
    }
    assert!(!env.path("photos/out").exists() && !env.path("missing").exists());
    // a folder link in a source that leads to the output: a rebuild would
    // read the outputs as new classes, so it is refused before any work
    env.ok(&["build", "r.toml", "--out", "linked"]);
    let before = manifest(&env, "linked");
    std::os::unix::fs::symlink("../linked", env.path("photos/zz_link")).unwrap();
    let out = env.run(&["build", "r.toml", "--out", "linked"]);
    assert_eq!(out.status.code(), Some(2));
    assert_stderr_has(&out, "zz_link");
    assert_stderr_has(&out, "must not overlap");
    assert_eq!(manifest(&env, "linked"), before);
}

/// `synth` never writes over somebody's file: run again with the same
/// settings it leaves its own files as they are; a file of the user's where
/// it would write one is refused and kept.
#[test]
fn synth_writes_only_its_own_files() {
    let env = TestEnv::new();
    let synth = |dir: &str, w: &str| {
        env.run(&[
            "synth",
            dir,
            "--classes",
            "1",
            "--per-class",
            "2",
            "--width",
            w,
            "--height",
            "24",
        ])
    };
    assert_eq!(synth("s", "32").status.code(), Some(0));
    let first = env.read("s/class_0/img_00001.jpg");
    assert_eq!(synth("s", "32").status.code(), Some(0));
    assert_eq!(env.read("s/class_0/img_00001.jpg"), first);
    // other settings: other pixels where its files are
    let out = synth("s", "40");
    assert_eq!(out.status.code(), Some(2));
    assert_stderr_has(
        &out,
        "img_00000.jpg: a file is there that synth did not make",
    );
    assert_eq!(env.read("s/class_0/img_00001.jpg"), first);
    env.write("mine/index.csv", b"my own index\n");
    env.write("mine/class_0/img_00000.jpg", b"my own photo");
    let out = synth("mine", "32");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(env.read("mine/index.csv"), b"my own index\n");
    assert_eq!(env.read("mine/class_0/img_00000.jpg"), b"my own photo");
}

/// One build per output folder: a second one fails at once, naming the
/// holder; a rebuild interrupted after it started writing is never taken
/// for up to date.
#[test]
fn one_build_at_a_time_and_interrupted_builds_never_look_finished() {
    let env = TestEnv::new();
    env.synth("photos", 2, 40, 160, 120);
    let recipe = |resize: u32| {
        format!(
            "name = \"l\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n[split]\ntrain = 0.5\nvalidation = 0.5\n\
             [transform]\nresize = {resize}\n[[outputs]]\nformat = \"recordio\"\n[[outputs]]\nformat = \"folders\"\n"
        )
    };
    env.write("r.toml", recipe(20).as_bytes());
    env.ok(&["build", "r.toml", "--out", "o"]);
    let clean = env.read("o/complete/recordio/train.lst");
    let rec_a = env.read("o/complete/recordio/train.rec");
    // another process holds the folder
    let held = std::fs::File::open(env.path("o")).unwrap();
    held.lock().unwrap();
    let out = env.run(&["build", "r.toml", "--out", "o"]);
    assert_eq!(out.status.code(), Some(2));
    assert_stderr_has(&out, "being built by another imgprep");
    drop(held);
    // the same images with the classes the other way round (outputs of the
    // same sizes, other labels), killed once it has begun writing
    env.write(
        "r2.toml",
        (recipe(20).replace("name = \"l\"", "name = \"l\"\nseed = 7")
            + "[labels]\nnames = [\"class_1\", \"class_0\"]\n")
            .as_bytes(),
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_imgprep"))
        .args(["build", "r2.toml", "--out", "o", "-q", "--num-thread", "1"])
        .env("IMGPREP_CACHE_DIR", env.path("cache"))
        .current_dir(env.dir.path())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while env.path("o/manifest.json").exists()
        && std::fs::read(env.path("o/complete/recordio/train.rec"))
            .ok()
            .as_ref()
            == Some(&rec_a)
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the build never began writing"
        );
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = child.kill();
    let _ = child.wait();
    // back to the first recipe: not "up to date" over the other's outputs
    let out = env.ok(&["build", "r.toml", "--out", "o"]);
    assert!(!stderr(&out).contains("up to date"), "{}", stderr(&out));
    assert_eq!(env.read("o/complete/recordio/train.lst"), clean);
    assert_eq!(env.read("o/complete/recordio/train.rec"), rec_a);
    assert!(!env.path("o/.imgprep-building").exists());
    env.ok(&["verify", "o"]);
    // nothing the killed build wrote is left (it would put images of one
    // split in the other's folders): every file is the manifest's
    let m = manifest(&env, "o");
    let mut stack = vec![env.path("o")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p
                .strip_prefix(env.path("o"))
                .unwrap()
                .to_string_lossy()
                .into_owned();
            assert!(
                rel == "manifest.json" || m["files"].get(&rel).is_some(),
                "{rel} is left over from the killed build"
            );
        }
    }
}

/// A FIFO or a device named by a list is refused with a reason, never read
/// (which would block or never end); a 254-byte file name builds.
#[test]
fn files_that_would_block_or_never_end_are_refused() {
    let env = TestEnv::new();
    env.synth("imgs/train", 1, 2, 32, 24);
    let fifo = env.path("imgs/train/class_0/pipe.jpg");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    std::os::unix::fs::symlink("/dev/zero", env.path("imgs/train/class_0/zero.jpg")).unwrap();
    let long = format!("{}.jpg", "x".repeat(250));
    std::fs::copy(
        env.path("imgs/train/class_0/img_00000.jpg"),
        env.path(&format!("imgs/train/class_0/{long}")),
    )
    .unwrap();
    env.write(
        "index.csv",
        format!(
            "img,label\nclass_0/img_00000.jpg,a\nclass_0/pipe.jpg,a\nclass_0/zero.jpg,b\nclass_0/{long},b\n"
        )
        .as_bytes(),
    );
    env.write("r.toml", CSV_RECIPE);
    let out = run_bounded(&env, &["build", "r.toml", "--out", "o"], 60);
    assert!(out.status.success(), "{}", stderr(&out));
    let m = manifest(&env, "o");
    let skipped = serde_json::to_string(&m["skipped"]).unwrap();
    assert!(
        skipped.contains("FIFO") && skipped.contains("device"),
        "{skipped}"
    );
    assert_eq!(m["variants"]["complete"]["splits"]["train"]["items"], 2);
    assert!(env
        .path(&format!("o/complete/sagemaker/train/class_0/{long}"))
        .is_file());
    // the same through im2rec's lists
    env.write(
        "l.lst",
        b"0\t0\tclass_0/img_00000.jpg\n1\t0\tclass_0/pipe.jpg\n2\t0\tclass_0/zero.jpg\n",
    );
    let out = run_bounded(&env, &["im2rec", "l.lst", "imgs/train"], 60);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_stderr_has(&out, "2 skipped");
}

/// Sizes a file claims are checked before anything of that size is
/// allocated: a 65500x1 strip resized by its shorter edge, a huge resize,
/// a TFRecord or RecordIO header claiming gigabytes.
#[test]
fn sizes_are_checked_before_allocation() {
    let env = TestEnv::new();
    env.synth("strip", 1, 1, 65500, 1);
    env.synth("photos", 1, 1, 32, 24);
    env.ok(&["im2rec", "s", "strip", "--list", "--recursive"]);
    let out = run_bounded(&env, &["im2rec", "s", "strip", "--resize", "256"], 60);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("1 skipped") && err.contains("16768000x256"),
        "{err}"
    );
    env.write(
        "r.toml",
        b"name = \"h\"\non_error = \"skip\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n[transform]\nresize = 4000000000\n[labels]\nnames = [\"class_0\"]\n",
    );
    let out = run_bounded(&env, &["build", "r.toml", "--out", "o"], 60);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_stderr_has(&out, "over the limit");
    // a 28-byte TFRecord whose header claims 2 GiB
    let len = (1u64 << 31).to_le_bytes();
    let mut file = len.to_vec();
    file.extend_from_slice(&tfrecord::masked_crc32c(&len).to_le_bytes());
    file.extend_from_slice(&[0u8; 16]);
    env.write("claims.tfrecord", &file);
    let out = run_bounded(&env, &["verify", "claims.tfrecord"], 30);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // the same inside gzip, with the bytes there: 64 MiB of zeros are 64 KB
    // of gzip; a compressed record may be no longer than the decode budget
    let len = (64u64 << 20).to_le_bytes();
    let mut file = len.to_vec();
    file.extend_from_slice(&tfrecord::masked_crc32c(&len).to_le_bytes());
    file.resize(file.len() + (64 << 20) + 4, 0);
    env.write("bomb.tfrecord", &file);
    let zipped = std::process::Command::new("gzip")
        .arg("-f")
        .arg(env.path("bomb.tfrecord"))
        .status()
        .unwrap();
    assert!(zipped.success());
    let out = run_bounded_with(
        &env,
        &["verify", "bomb.tfrecord.gz"],
        30,
        &[("IMGPREP_DECODE_MEMORY_MIB", "16")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_stderr_has(&out, "is over the 16777216 bytes");
    // a 40-byte .rec whose header claims 512 MiB
    let mut rec = recordio::MAGIC.to_le_bytes().to_vec();
    rec.extend_from_slice(&((1u32 << 29) - 1).to_le_bytes());
    rec.extend_from_slice(&[0u8; 32]);
    env.write("claims.rec", &rec);
    let out = run_bounded(&env, &["verify", "claims"], 30);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

/// A TCP server on a free port of 127.0.0.1 that hands every connection
/// to `answer` on a thread of its own; returns the port.
fn fake_server(answer: impl Fn(std::net::TcpStream) + Clone + Send + 'static) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in listener.incoming().flatten() {
            let answer = answer.clone();
            std::thread::spawn(move || answer(c));
        }
    });
    port
}

/// An endpoint that accepts connections and never answers: every command
/// gives up within the I/O timeout and the retry budget, with a message.
#[test]
fn a_server_that_never_answers_is_given_up_on() {
    let env = TestEnv::new();
    // read nothing, answer nothing, close nothing
    let port = fake_server(|c| {
        let _held = c;
        std::thread::sleep(Duration::from_secs(3600));
    });
    let url = format!("http://127.0.0.1:{port}/data/train.rec");
    let vars = [
        ("IMGPREP_IO_TIMEOUT_SECONDS", "1"),
        ("IMGPREP_S3_RETRY_SECONDS", "2"),
    ];
    let start = Instant::now();
    let out = run_bounded_with(&env, &["inspect", &url], 40, &vars);
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).is_empty());
    env.write("list.txt", format!("{url}\n").as_bytes());
    let out = run_bounded_with(&env, &["pull", "list.txt", "dl"], 40, &vars);
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(start.elapsed() < Duration::from_secs(60));
    // a CSV of 12 such URLs: looked at together, so the build pays about
    // one wait, not twelve (it took 12 x 2 s here)
    let mut csv = String::from("path,label\n");
    for k in 0..12 {
        csv += &format!("http://127.0.0.1:{port}/data/{k}.jpg,a\n");
    }
    env.write("urls.csv", csv.as_bytes());
    std::fs::create_dir_all(env.path("root")).unwrap();
    env.write(
        "u.toml",
        b"name = \"u\"\non_error = \"skip\"\n[[sources]]\ntype = \"csv\"\nfile = \"urls.csv\"\n\
          root = \"root\"\npath = \"path\"\nlabel = \"label\"\n",
    );
    let start = Instant::now();
    let out = run_bounded_with(&env, &["build", "u.toml", "--out", "u"], 40, &vars);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_stderr_has(&out, "the server did not answer; nothing was built");
    assert!(
        start.elapsed() < Duration::from_secs(12),
        "{:?}",
        start.elapsed()
    );
}

/// A push to an S3 endpoint that answers the listing and then stops
/// answering: after the first upload that gets no answer the others are not
/// tried (each would wait out the same timeouts: 20 files took 20 waits),
/// and the push says how many were not sent.
#[test]
fn a_push_stops_at_the_first_upload_the_server_does_not_answer() {
    use std::io::{Read, Write};
    let env = TestEnv::new();
    env.synth("p", 2, 10, 16, 16);
    env.write(
        "r.toml",
        b"name = \"p\"\n[[sources]]\ntype = \"folders\"\nroot = \"p\"\n[[outputs]]\nformat = \"sagemaker-image\"\n",
    );
    env.ok(&["build", "r.toml", "--out", "o"]);
    let port = fake_server(|mut c| {
        let mut buf = vec![0u8; 1 << 16];
        let n = c.read(&mut buf).unwrap_or(0);
        let req = String::from_utf8_lossy(&buf[..n]).to_string();
        let reply = |c: &mut std::net::TcpStream, status: &str, body: &str| {
            let _ = write!(
                c,
                "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
        };
        if req.starts_with("GET") && req.contains("list-type=2") {
            reply(
                &mut c,
                "200 OK",
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>b</Name>\
                 <Prefix>ds/</Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys>\
                 <IsTruncated>false</IsTruncated></ListBucketResult>",
            );
        } else if req.starts_with("HEAD") {
            reply(&mut c, "404 Not Found", "");
        } else {
            // an upload: read nothing more, answer nothing
            std::thread::sleep(Duration::from_secs(3600));
        }
    });
    let endpoint = format!("http://127.0.0.1:{port}");
    let vars = [
        ("IMGPREP_IO_TIMEOUT_SECONDS", "1"),
        ("IMGPREP_S3_RETRY_SECONDS", "2"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "k"),
        ("AWS_SECRET_ACCESS_KEY", "s"),
        ("AWS_REGION", "us-east-1"),
    ];
    let start = Instant::now();
    let out = run_bounded_with(
        &env,
        &["push", "o", "s3://b/ds", "--concurrency", "2"],
        60,
        &vars,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_stderr_has(&out, "files not sent: the server stopped answering");
    assert_stderr_has(&out, "no answer from the server");
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
}

/// An S3 endpoint whose listing never ends (every page "truncated", with
/// the same continuation token and the same object, or with none) is given
/// up on with a message, not listed for ever.
#[test]
fn a_listing_that_loops_is_given_up_on() {
    use std::io::{BufRead, BufReader, Write};
    for with_object in [true, false] {
        let env = TestEnv::new();
        let port = fake_server(move |c| {
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut c = c;
            loop {
                // one request: its head (no body on GET)
                let mut line = String::new();
                let mut got = false;
                while r.read_line(&mut line).unwrap_or(0) > 0 {
                    got = true;
                    if line == "\r\n" {
                        break;
                    }
                    line.clear();
                }
                if !got {
                    return;
                }
                let contents = if with_object {
                    "<Contents><Key>src/a/x.jpg</Key><Size>3</Size>\
                     <LastModified>2026-01-01T00:00:00.000Z</LastModified>\
                     <ETag>\"e\"</ETag></Contents>"
                } else {
                    ""
                };
                let body = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
                     <ListBucketResult><Name>b</Name><Prefix>src/</Prefix>\
                     <KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys>\
                     <IsTruncated>true</IsTruncated>{contents}\
                     <NextContinuationToken>same</NextContinuationToken>\
                     </ListBucketResult>"
                );
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n\
                     Content-Length: {}\r\n\r\n",
                    body.len()
                );
                if c.write_all(head.as_bytes()).is_err() || c.write_all(body.as_bytes()).is_err() {
                    return;
                }
            }
        });
        env.write(
            "r.toml",
            b"name = \"l\"\n[[sources]]\ntype = \"folders\"\nroot = \"s3://b/src\"\n",
        );
        let vars = [
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", &format!("http://127.0.0.1:{port}")),
            ("AWS_PROFILE", "imgprep-test-none"),
            ("IMGPREP_IO_TIMEOUT_SECONDS", "2"),
            ("IMGPREP_S3_RETRY_SECONDS", "2"),
        ];
        let out = run_bounded_with(&env, &["build", "r.toml", "--out", "o"], 60, &vars);
        assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
        let want = if with_object {
            "twice"
        } else {
            "no new object"
        };
        assert_stderr_has(&out, want);
    }
}

/// Names a folder walk cannot take are listed in `skipped` with a reason,
/// never dropped without a word.
#[test]
fn a_folder_walk_drops_nothing_silently() {
    let env = TestEnv::new();
    env.synth("photos", 2, 2, 32, 24);
    let c0 = env.path("photos/class_0");
    assert!(std::process::Command::new("mkfifo")
        .arg(c0.join("pipe.jpg"))
        .status()
        .unwrap()
        .success());
    std::os::unix::fs::symlink(c0.join("gone.jpg"), c0.join("dangling.jpg")).unwrap();
    std::fs::copy(c0.join("img_00000.jpg"), c0.join("tab\there.jpg")).unwrap();
    std::os::unix::fs::symlink(env.path("photos"), env.path("photos/class_1/loop")).unwrap();
    env.write(
        "r.toml",
        b"name = \"w\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n",
    );
    let out = run_bounded(&env, &["build", "r.toml", "--out", "o"], 60);
    assert!(out.status.success(), "{}", stderr(&out));
    let m = manifest(&env, "o");
    let skipped = serde_json::to_string(&m["skipped"]).unwrap();
    for needle in ["pipe.jpg", "dangling.jpg", "tab\\there.jpg", "loop"] {
        assert!(skipped.contains(needle), "{needle}: {skipped}");
    }
    assert_stderr_has(&out, "items skipped");
    assert_eq!(m["variants"]["complete"]["splits"]["train"]["items"], 4);
}

/// Links and names that would lead writes astray: a symbolic link inside
/// OUT is not written through, a link among the class folders does not
/// take a class over, a linked source is linked as the file it points to,
/// colliding names are refused before writing, a FIFO given to verify is
/// refused, and convert keeps its recipe only in a folder that is its own.
#[test]
fn links_and_colliding_names_are_refused() {
    let env = TestEnv::new();
    env.synth("photos", 2, 3, 32, 24);
    env.write(
        "r.toml",
        b"name = \"s\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n[split]\ntrain = 0.5\nvalidation = 0.5\n\
          [transform]\nencoding = \"passthrough\"\n[[outputs]]\nformat = \"recordio\"\n[[outputs]]\nformat = \"folders\"\n",
    );
    env.ok(&["build", "r.toml", "--out", "o"]);
    // a folder of OUT replaced by a link to the user's folder
    env.write("victim/train.rec", b"VICTIM");
    std::fs::remove_dir_all(env.path("o/complete/recordio")).unwrap();
    std::os::unix::fs::symlink(env.path("victim"), env.path("o/complete/recordio")).unwrap();
    env.write(
        "r.toml",
        &[env.read("r.toml"), b"seed = 3\n".to_vec()].concat(),
    );
    let out = env.run(&["build", "r.toml", "--out", "o"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_stderr_has(&out, "symbolic link");
    assert_eq!(env.read("victim/train.rec"), b"VICTIM");
    assert_eq!(std::fs::read_dir(env.path("victim")).unwrap().count(), 1);
    // a link to a sibling class folder, sorting first
    std::os::unix::fs::symlink("class_1", env.path("photos/aaa_link")).unwrap();
    // a source that is a relative link
    std::os::unix::fs::symlink(
        "../class_0/img_00000.jpg",
        env.path("photos/class_1/rel.jpg"),
    )
    .unwrap();
    env.write(
        "r.toml",
        &String::from_utf8(env.read("r.toml"))
            .unwrap()
            .replace("seed = 3\n", "")
            .into_bytes(),
    );
    env.ok(&["build", "r.toml", "--out", "o2"]);
    let m = manifest(&env, "o2");
    let names: Vec<&str> = m["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["class_0", "class_1"], "{m}");
    let linked: Vec<String> = m["files"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.ends_with("rel.jpg"))
        .cloned()
        .collect();
    assert_eq!(linked.len(), 1, "{m}");
    let p = env.path(&format!("o2/{}", linked[0]));
    assert!(!std::fs::symlink_metadata(&p)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read(&p).unwrap(),
        env.read("photos/class_0/img_00000.jpg")
    );
    std::fs::remove_file(env.path("photos/aaa_link")).unwrap();
    std::fs::remove_file(env.path("photos/class_1/rel.jpg")).unwrap();
    // a split named like SageMaker's list folder: refused before it overwrites
    env.write(
        "e.toml",
        b"name = \"e\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n[split]\nmethod = \"explicit\"\n\
          [split.assign]\ntrain = [\"g0\"]\ntrain_lst = [\"g1\"]\n[[outputs]]\nformat = \"sagemaker-image\"\n",
    );
    let mut csv = String::from("img,label,group\n");
    for c in 0..2 {
        for i in 0..3 {
            csv.push_str(&format!("class_{c}/img_{i:05}.jpg,c{c},g{c}\n"));
        }
    }
    csv.push_str("train.lst,c1,g1\n");
    std::fs::copy(
        env.path("photos/class_0/img_00000.jpg"),
        env.path("photos/train.lst"),
    )
    .unwrap();
    env.write("i.csv", csv.as_bytes());
    env.write(
        "e.toml",
        &String::from_utf8(env.read("e.toml"))
            .unwrap()
            .replace(
                "type = \"folders\"\nroot = \"photos\"",
                "type = \"csv\"\nfile = \"i.csv\"\nroot = \"photos\"\npath = \"img\"\nlabel = \"label\"\ngroup = \"group\"",
            )
            .replace("[transform]", "")
            .into_bytes(),
    );
    let e = String::from_utf8(env.read("e.toml")).unwrap().replace(
        "[[outputs]]",
        "[transform]\nencoding = \"passthrough\"\n[[outputs]]",
    );
    env.write("e.toml", e.as_bytes());
    let out = env.run(&["build", "e.toml", "--out", "e"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_stderr_has(&out, "would both be");
    // a FIFO given to verify and inspect is refused, not waited on
    assert!(std::process::Command::new("mkfifo")
        .arg(env.path("f.rec"))
        .status()
        .unwrap()
        .success());
    for cmd in ["verify", "inspect"] {
        let out = run_bounded(&env, &[cmd, "f.rec"], 20);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {}", stderr(&out));
        assert_stderr_has(&out, "FIFO");
    }
    // convert: a user's file of the recipe's name makes the folder theirs,
    // and an output inside the source gets nothing
    env.write("u/imgprep-convert.toml", b"mine");
    let out = env.run(&["convert", "photos", "u", "--to", "recordio"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(env.read("u/imgprep-convert.toml"), b"mine");
    let out = env.run(&["convert", "photos", "photos/deep/out", "--to", "recordio"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!env.path("photos/deep").exists());
    env.ok(&["convert", "photos", "c", "--to", "recordio"]);
    assert!(manifest(&env, "c")["files"]["imgprep-convert.toml"].is_object());
}

/// An earlier build's file that someone changed is not deleted by a rebuild
/// that no longer writes it, but it is not left there silently either: the
/// build names it, and `verify` reports it until it is removed (a reader
/// that globs `train-*.tfrecord` would read it).
#[test]
fn changed_files_of_an_earlier_build_are_kept_and_named() {
    let env = TestEnv::new();
    let recipe = sharded_photos(&env);
    env.write("r.toml", recipe(4).as_bytes());
    env.ok(&["build", "r.toml", "--out", "o"]);
    let dir = "o/complete/tfrecord-tfds";
    let edited = format!("{dir}/train-00001-of-00003.tfrecord");
    let mut bytes = env.read(&edited);
    bytes.truncate(100);
    env.write(&edited, &bytes);
    // three shards become two: the edited one is not this build's to delete
    env.write("r.toml", recipe(6).as_bytes());
    let out = env.ok(&["build", "r.toml", "--out", "o"]);
    assert_stderr_has(&out, "1 file left in place");
    assert_stderr_has(&out, "complete/tfrecord-tfds/train-00001-of-00003.tfrecord");
    assert_eq!(env.read(&edited), bytes);
    // the unedited old shards are gone, the new ones are in place
    let names: Vec<String> = std::fs::read_dir(env.path(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names
        .iter()
        .any(|n| n.ends_with("-of-00003.tfrecord") && !n.contains("00001")));
    assert!(
        names.iter().any(|n| n == "train-00001-of-00002.tfrecord"),
        "{names:?}"
    );
    let v = env.run(&["verify", "o", "--json"]);
    assert_eq!(v.status.code(), Some(1), "{}", stdout(&v));
    let text = stdout(&v);
    assert!(
        text.contains("train-00001-of-00003.tfrecord: not in the manifest"),
        "{text}"
    );
    std::fs::remove_file(env.path(&edited)).unwrap();
    let v = env.run(&["verify", "o"]);
    assert_eq!(v.status.code(), Some(0), "{}", stdout(&v));
    // an output the recipe no longer has: its edited file is in a folder
    // no output uses now, and verify still reports it (it said OK)
    env.write(
        "r.toml",
        recipe(6)
            .replace(
                "format = \"tfrecord\"\nshard_records = 6",
                "format = \"recordio\"",
            )
            .as_bytes(),
    );
    let edited = "o/complete/tfrecord-tfds/train-00000-of-00002.tfrecord";
    let mut bytes = env.read(edited);
    bytes.truncate(100);
    env.write(edited, &bytes);
    let out = env.ok(&["build", "r.toml", "--out", "o"]);
    assert_stderr_has(&out, "1 file left in place");
    let v = env.run(&["verify", "o"]);
    assert_eq!(v.status.code(), Some(1), "{}", stderr(&v));
    assert!(
        stderr(&v).contains("train-00000-of-00002.tfrecord: not in the manifest"),
        "{}",
        stderr(&v)
    );
}

/// Items an output would write to one file are refused before anything is
/// written, naming both: one file name in two folders of one class (the
/// folders output keeps file names), `a.png` and `a.jpg` both re-encoded
/// to `a.jpg`.
#[test]
fn items_that_would_share_an_output_file_are_refused_before_writing() {
    let env = TestEnv::new();
    env.synth("src", 1, 2, 32, 24);
    let jpg = env.read("src/class_0/img_00000.jpg");
    env.write("src/a/0001.jpg", &jpg);
    env.write("src/b/0001.jpg", &jpg);
    env.write("i.csv", b"path,label\na/0001.jpg,x\nb/0001.jpg,x\n");
    let recipe = |outputs: &str| {
        format!(
            "name = \"c\"\n[[sources]]\ntype = \"csv\"\nfile = \"i.csv\"\nroot = \"src\"\npath = \"path\"\n\
             label = \"label\"\n[transform]\nresize = \"16x16\"\n{outputs}"
        )
    };
    env.write(
        "r.toml",
        recipe("[[outputs]]\nformat = \"recordio\"\n[[outputs]]\nformat = \"folders\"\n")
            .as_bytes(),
    );
    let out = env.run(&["build", "r.toml", "--out", "o"]);
    assert_eq!(out.status.code(), Some(2));
    assert_stderr_has(&out, "a/0001.jpg (");
    assert_stderr_has(&out, "b/0001.jpg (");
    assert_stderr_has(&out, "folders output (complete/train: x/0001.jpg)");
    let left: Vec<_> = std::fs::read_dir(env.path("o"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    // the same files as .png and .jpg, re-encoded to JPEG in one channel
    std::fs::rename(env.path("src/b/0001.jpg"), env.path("src/a/0001.png")).unwrap();
    let png = {
        let mut v = Vec::new();
        imgprep::image::Processor::new()
            .unwrap()
            .encode(
                imgprep::image::Pixels {
                    width: 8,
                    height: 8,
                    channels: 3,
                    data: vec![90; 192],
                },
                imgprep::image::Encoding::Png { compression: 3 },
                &mut v,
            )
            .unwrap();
        v
    };
    env.write("src/a/0001.png", &png);
    env.write("i.csv", b"path,label\na/0001.jpg,x\na/0001.png,y\n");
    env.write(
        "r.toml",
        recipe("[[outputs]]\nformat = \"sagemaker-image\"\n").as_bytes(),
    );
    let out = env.run(&["build", "r.toml", "--out", "o2"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_stderr_has(&out, "sagemaker-image output");
    assert_stderr_has(&out, "a/0001.jpg");
    // with pass-through both keep their names: no collision
    env.write(
        "r.toml",
        recipe("[[outputs]]\nformat = \"sagemaker-image\"\n")
            .replace("resize = \"16x16\"", "encoding = \"passthrough\"")
            .as_bytes(),
    );
    env.ok(&["build", "r.toml", "--out", "o3"]);
}

/// An output taken out of the recipe goes with its folders; a folder that
/// holds a file the build did not make stays, with that file.
#[test]
fn an_output_taken_out_of_the_recipe_leaves_no_empty_folders() {
    let env = TestEnv::new();
    env.synth("photos", 2, 3, 32, 24);
    let recipe = |outputs: &str| {
        format!(
            "name = \"e\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n\
             [transform]\nencoding = \"passthrough\"\n[[outputs]]\nformat = \"recordio\"\n{outputs}"
        )
    };
    env.write(
        "r.toml",
        recipe("[[outputs]]\nformat = \"folders\"\n[[outputs]]\nformat = \"sagemaker-image\"\n")
            .as_bytes(),
    );
    env.ok(&["build", "r.toml", "--out", "o"]);
    assert!(env.path("o/complete/folders/train/class_0").is_dir());
    env.write("o/complete/sagemaker/notes.txt", b"mine");
    env.write("r.toml", recipe("").as_bytes());
    env.ok(&["build", "r.toml", "--out", "o"]);
    assert!(!env.path("o/complete/folders").exists());
    // the user's file keeps its folder; the build's own sub-folders go
    assert_eq!(env.read("o/complete/sagemaker/notes.txt"), b"mine");
    let left: Vec<String> = std::fs::read_dir(env.path("o/complete/sagemaker"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["notes.txt"]);
    assert!(env.path("o/complete/recordio/train.rec").is_file());
}

/// A build that stopped before it finished (its in-progress marker is
/// there) is not pushed: its files are a mix of two builds.
#[test]
fn an_unfinished_build_is_not_pushed() {
    let env = TestEnv::new();
    env.synth("photos", 2, 2, 32, 24);
    env.write(
        "r.toml",
        b"name = \"u\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n",
    );
    env.ok(&["build", "r.toml", "--out", "o"]);
    env.write("o/.imgprep-building", b"complete/recordio/train.rec\n");
    std::fs::remove_file(env.path("o/manifest.json")).unwrap();
    // refused before any request (the endpoint does not exist)
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_imgprep"))
        .args(["push", "o", "s3://no-such-bucket/x"])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_stderr_has(&out, "stopped before it finished");
}

/// A rebuild that no longer makes a file leaves it in place when the user
/// changed it, also when the rebuild before it was killed half-way (the
/// killed build had removed the manifest that held the file's sums).
#[test]
fn a_user_edit_survives_a_killed_rebuild() {
    let env = TestEnv::new();
    env.synth("photos", 4, 60, 320, 240);
    let base = "name = \"k\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n[transform]\nresize = 100\n[[outputs]]\nformat = \"recordio\"\n";
    env.write("r1.toml", base.as_bytes());
    env.write(
        "r0.toml",
        format!("{base}[[outputs]]\nformat = \"sagemaker-image\"\n").as_bytes(),
    );
    let edited = "complete/sagemaker/train_lst/train.lst";
    for attempt in 0..20 {
        let out = format!("o{attempt}");
        env.ok(&["build", "r0.toml", "--out", &out, "-q"]);
        let mut mine = env.read(&format!("{out}/{edited}"));
        mine.extend_from_slice(b"# my notes\n");
        env.write(&format!("{out}/{edited}"), &mine);
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_imgprep"))
            .args(["build", "r1.toml", "--out", &out, "-q", "--num-thread", "1"])
            .env("IMGPREP_CACHE_DIR", env.path("cache"))
            .current_dir(env.dir.path())
            .spawn()
            .unwrap();
        let marker = env.path(&format!("{out}/.imgprep-building"));
        while !marker.exists() && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_micros(200));
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        if !marker.exists() {
            continue; // finished before the kill: try again
        }
        let out2 = env.ok(&["build", "r1.toml", "--out", &out]);
        assert_eq!(env.read(&format!("{out}/{edited}")), mine);
        assert_stderr_has(&out2, "train.lst");
        return;
    }
    panic!("no kill landed while the rebuild was writing");
}

/// Pass-through images are hard links to their sources: a source edited in
/// place changes the output too. A rebuild that moves the item elsewhere
/// removes the old link (the data stays at the source) instead of leaving
/// it as somebody else's file, so no image is in two splits.
#[test]
fn links_to_sources_edited_in_place_do_not_stay_behind() {
    let env = TestEnv::new();
    env.synth("p", 2, 10, 96, 72);
    let recipe = |seed: u32| {
        format!("name = \"pt\"\nseed = {seed}\n[[sources]]\ntype = \"folders\"\nroot = \"p\"\n[split]\nmethod = \"stratified\"\ntrain = 0.5\nvalidation = 0.5\n[transform]\nencoding = \"passthrough\"\n[[outputs]]\nformat = \"folders\"\n")
    };
    env.write("r.toml", recipe(3).as_bytes());
    env.ok(&["build", "r.toml", "--out", "out", "-q"]);
    let other = env.read("p/class_1/img_00000.jpg");
    for k in 0..10 {
        // in place: the same inode, new bytes
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(env.path(&format!("p/class_0/img_{k:05}.jpg")))
            .unwrap();
        f.write_all(&other).unwrap();
    }
    env.write("r.toml", recipe(4).as_bytes());
    env.ok(&["build", "r.toml", "--out", "out", "-q"]);
    env.ok(&[
        "build",
        "r.toml",
        "--out",
        "clean",
        "-q",
        "--cache-dir",
        "c2",
    ]);
    let files = |out: &str| -> Vec<String> {
        let m = manifest(&env, out);
        let mut v: Vec<String> = m["files"].as_object().unwrap().keys().cloned().collect();
        let on_disk = walk(&env.path(out));
        v.sort();
        assert_eq!(v, on_disk, "{out}: files on disk are the manifest's");
        v
    };
    assert_eq!(files("out"), files("clean"));
    env.ok(&["verify", "out"]);
}

/// Every file under `dir` but the manifest, relative, sorted.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                if rel != "manifest.json" {
                    v.push(rel);
                }
            }
        }
    }
    v.sort();
    v
}

/// A file of the user's where a newly added output would go is refused,
/// not replaced; `--force` replaces it.
#[test]
fn a_new_output_does_not_replace_a_users_file() {
    let env = TestEnv::new();
    env.synth("p", 2, 4, 64, 48);
    let base = "name = \"u\"\n[[sources]]\ntype = \"folders\"\nroot = \"p\"\n[[outputs]]\nformat = \"recordio\"\n";
    env.write("r.toml", base.as_bytes());
    env.ok(&["build", "r.toml", "--out", "out", "-q"]);
    env.write(
        "out/complete/sagemaker/train_lst/train.lst",
        b"my own list\n",
    );
    env.write(
        "r.toml",
        format!("{base}[[outputs]]\nformat = \"sagemaker-image\"\n").as_bytes(),
    );
    let refused = env.run(&["build", "r.toml", "--out", "out"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert_stderr_has(&refused, "train_lst/train.lst is in");
    assert_stderr_has(&refused, "the folder of an output new to this build");
    assert_eq!(
        env.read("out/complete/sagemaker/train_lst/train.lst"),
        b"my own list\n"
    );
    // refused before anything was written: the dataset is as it was (its
    // manifest was removed and files rewritten before the refusal came)
    assert!(env.path("out/manifest.json").is_file());
    assert!(!env.path("out/.imgprep-building").exists());
    assert!(!env.path("out/complete/sagemaker/train").exists());
    env.ok(&["build", "r.toml", "--out", "out", "--force"]);
    assert_ne!(
        env.read("out/complete/sagemaker/train_lst/train.lst"),
        b"my own list\n"
    );
    env.ok(&["verify", "out"]);
}

/// A server that answers and then sends its body a byte at a time is given
/// up on once a timeout's worth of waiting brought less than the rate floor
/// (a total time limit would also cut large objects on slow links); its
/// object is a listed failure of `pull` (exit 1), as one that answers 500.
#[test]
fn a_server_that_trickles_is_given_up_on() {
    use std::io::{BufRead, BufReader, Write};
    let env = TestEnv::new();
    let port = fake_server(|c| {
        let mut r = BufReader::new(c.try_clone().unwrap());
        let mut first = String::new();
        let _ = r.read_line(&mut first);
        let mut line = String::new();
        while r.read_line(&mut line).is_ok_and(|n| n > 2) {
            line.clear();
        }
        let mut c = c;
        if first.contains("/e500") {
            let _ = c.write_all(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n");
            return;
        }
        let head =
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\nContent-Type: image/jpeg\r\n\r\n";
        if c.write_all(head).is_err() || first.starts_with("HEAD") {
            return;
        }
        while c.write_all(b"x").is_ok() {
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let vars = [
        ("IMGPREP_IO_TIMEOUT_SECONDS", "2"),
        ("IMGPREP_S3_RETRY_SECONDS", "2"),
    ];
    for name in ["trickle.jpg", "e500.jpg"] {
        env.write(
            "list.txt",
            format!("http://127.0.0.1:{port}/{name}\n").as_bytes(),
        );
        let start = Instant::now();
        let out = run_bounded_with(&env, &["pull", "list.txt", "dl"], 60, &vars);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        assert!(start.elapsed() < Duration::from_secs(30), "{name}");
        let failed = String::from_utf8(env.read("dl/failed.txt")).unwrap();
        assert!(failed.contains(name), "{failed}");
        if name == "trickle.jpg" {
            assert!(failed.contains("under the floor"), "{failed}");
        }
    }
}

/// A source far larger than any image of `max_pixels` pixels is skipped by
/// its size, before it is read (a stray 1.5 GB object named `.jpg` took
/// 3 GB of memory only to be found not to decode).
#[test]
fn a_source_larger_than_any_image_is_not_read() {
    let env = TestEnv::new();
    env.synth("p", 1, 2, 16, 16);
    // sparse: 200 MB on paper, nothing on disk
    let f = std::fs::File::create(env.path("p/class_0/huge.jpg")).unwrap();
    f.set_len(200 << 20).unwrap();
    drop(f);
    env.write(
        "r.toml",
        b"name = \"h\"\non_error = \"skip\"\n[[sources]]\ntype = \"folders\"\nroot = \"p\"\n[transform]\nmax_pixels = 1000000\n[[outputs]]\nformat = \"recordio\"\n",
    );
    let out = env.ok(&["build", "r.toml", "--out", "o"]);
    assert_stderr_has(&out, "huge.jpg");
    assert_stderr_has(&out, "more than an image of at most 1000000 pixels");
    env.ok(&["im2rec", "l", "p", "--list", "--recursive"]);
    let out = env.ok(&["im2rec", "l", "p", "--max-pixels", "1000000"]);
    assert_stderr_has(&out, "more than an image of at most 1000000 pixels");
}

/// A multipart upload whose part the server refuses: the push names the
/// part's error (not the clean-up's), and the unfinished upload is removed
/// (`DELETE ?uploadId=`), so the store does not keep its parts. When the
/// removal fails too, both are said.
#[test]
fn a_failed_multipart_upload_is_removed_and_names_its_own_error() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::{Arc, Mutex};
    for delete_fails in [false, true] {
        let env = TestEnv::new();
        // 11 MiB: parts of 5 MiB, 5 MiB and 1 MiB
        env.write("d/big.bin", &vec![7u8; 11 << 20]);
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = seen.clone();
        let port = fake_server(move |c| {
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut c = c;
            loop {
                let mut first = String::new();
                if r.read_line(&mut first).unwrap_or(0) == 0 {
                    return;
                }
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; length];
                if r.read_exact(&mut body).is_err() {
                    return;
                }
                let req = first.trim().to_string();
                log.lock().unwrap().push(req.clone());
                let (status, extra, body) = if req.starts_with("GET") {
                    (
                        "200 OK",
                        "",
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>b</Name>\
                         <Prefix>ds/</Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys>\
                         <IsTruncated>false</IsTruncated></ListBucketResult>"
                            .to_string(),
                    )
                } else if req.starts_with("HEAD") {
                    ("404 Not Found", "", String::new())
                } else if req.starts_with("POST") && req.contains("uploads") {
                    (
                        "200 OK",
                        "",
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><InitiateMultipartUploadResult>\
                         <Bucket>b</Bucket><Key>ds/big.bin</Key><UploadId>up1</UploadId>\
                         </InitiateMultipartUploadResult>"
                            .to_string(),
                    )
                } else if req.starts_with("PUT") && req.contains("partNumber=2") {
                    (
                        "403 Forbidden",
                        "",
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied\
                         </Code><Message>part two is not welcome</Message></Error>"
                            .to_string(),
                    )
                } else if req.starts_with("PUT") {
                    ("200 OK", "ETag: \"p\"\r\n", String::new())
                } else if req.starts_with("DELETE") && delete_fails {
                    (
                        "403 Forbidden",
                        "",
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied\
                         </Code><Message>no deleting</Message></Error>"
                            .to_string(),
                    )
                } else if req.starts_with("DELETE") {
                    ("204 No Content", "", String::new())
                } else {
                    ("500 Internal Server Error", "", String::new())
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\n{extra}\
                     Content-Length: {}\r\n\r\n",
                    body.len()
                );
                if c.write_all(head.as_bytes()).is_err() || c.write_all(body.as_bytes()).is_err() {
                    return;
                }
            }
        });
        let endpoint = format!("http://127.0.0.1:{port}");
        let vars = [
            ("IMGPREP_IO_TIMEOUT_SECONDS", "5"),
            ("IMGPREP_S3_RETRY_SECONDS", "2"),
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_REGION", "us-east-1"),
        ];
        let out = run_bounded_with(
            &env,
            &[
                "push",
                "d",
                "s3://b/ds",
                "--layout",
                "mirror",
                "--part-size-mib",
                "5",
            ],
            60,
            &vars,
        );
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("part two is not welcome"), "{err}");
        let seen = seen.lock().unwrap();
        assert!(
            seen.iter()
                .any(|r| r.starts_with("DELETE") && r.contains("uploadId=up1")),
            "{seen:?}"
        );
        assert!(!seen
            .iter()
            .any(|r| r.starts_with("POST") && r.contains("uploadId")));
        assert_eq!(
            err.contains("unfinished upload was not removed"),
            delete_fails,
            "{err}"
        );
    }
}

/// A user's file at the path where a rebuild would put a new item's file
/// (in a folder earlier builds wrote into) is refused before anything is
/// written, for every file every per-item format writes: found while
/// writing, it left the dataset without its manifest, half of it replaced.
#[test]
fn a_rebuild_refuses_a_users_file_at_a_new_items_path_before_writing() {
    let env = TestEnv::new();
    env.ok(&[
        "synth",
        "voc",
        "--layout",
        "voc",
        "--classes",
        "1",
        "--per-class",
        "9",
        "--width",
        "64",
        "--height",
        "48",
    ]);
    env.synth("cls", 2, 5, 64, 48);
    let cases = [
        (
            "type = \"voc\"\nroot = \"voc\"",
            vec![
                "sagemaker-detection",
                "coco",
                "yolo",
                "voc",
                "augmented-manifest",
            ],
            vec![
                "voc/JPEGImages/seg02_00008.jpg",
                "voc/Annotations/seg02_00008.xml",
            ],
            "seg02_00008.",
        ),
        (
            "type = \"folders\"\nroot = \"cls\"",
            vec!["sagemaker-image", "folders"],
            vec!["cls/class_0/img_00004.jpg", "cls/class_1/img_00004.jpg"],
            "img_00004.",
        ),
    ];
    for (source, formats, held_back, stem) in cases {
        let mut r = format!(
            "name = \"n\"\n[[sources]]\n{source}\n[split]\ntrain = 0.6\nvalidation = 0.4\n\
             [transform]\nencoding = \"passthrough\"\n"
        );
        for f in &formats {
            r.push_str(&format!("[[outputs]]\nformat = \"{f}\"\n"));
        }
        env.write("r.toml", r.as_bytes());
        // where each of the new item's files goes: a build with the item
        for dir in ["ref", "out"] {
            let _ = std::fs::remove_dir_all(env.path(dir));
        }
        env.ok(&["build", "r.toml", "--out", "ref", "-q"]);
        let new_files: Vec<String> = walk(&env.path("ref"))
            .into_iter()
            .filter(|p| p.rsplit('/').next().unwrap().starts_with(stem))
            .collect();
        assert!(
            new_files.len() >= formats.len(),
            "{formats:?}: {new_files:?}"
        );
        // the dataset without it
        let aside = env.path("aside");
        std::fs::create_dir_all(&aside).unwrap();
        for (k, f) in held_back.iter().enumerate() {
            std::fs::rename(env.path(f), aside.join(k.to_string()))
                .unwrap_or_else(|e| panic!("{f}: {e}"));
        }
        env.ok(&["build", "r.toml", "--out", "out", "-q"]);
        for (k, f) in held_back.iter().enumerate() {
            std::fs::rename(aside.join(k.to_string()), env.path(f)).unwrap();
        }
        let manifest = env.read("out/manifest.json");
        for rel in &new_files {
            let mine = format!("out/{rel}");
            env.write(&mine, b"the user's own file\n");
            let refused = env.run(&["build", "r.toml", "--out", "out"]);
            assert_eq!(
                refused.status.code(),
                Some(2),
                "{rel}: {}",
                stderr(&refused)
            );
            assert_stderr_has(&refused, "no imgprep build wrote it");
            assert_stderr_has(&refused, "Nothing was written");
            assert_eq!(env.read(&mine), b"the user's own file\n", "{rel}");
            assert_eq!(env.read("out/manifest.json"), manifest, "{rel}");
            assert!(!env.path("out/.imgprep-building").exists(), "{rel}");
            std::fs::remove_file(env.path(&mine)).unwrap();
        }
        env.ok(&["build", "r.toml", "--out", "out", "-q"]);
        env.ok(&["verify", "out"]);
        assert_eq!(walk(&env.path("out")), walk(&env.path("ref")));
    }
}
