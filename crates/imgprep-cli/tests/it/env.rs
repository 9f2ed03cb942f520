//! `TestEnv`: a temporary folder, the binary, fixture makers and the peers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct TestEnv {
    pub dir: tempfile::TempDir,
}

impl TestEnv {
    pub fn new() -> Self {
        TestEnv {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs `imgprep ARGS` in the temp folder (its item caches under
    /// `cache/`, not in the user's).
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_imgprep"))
            .args(args)
            .env("IMGPREP_CACHE_DIR", self.dir.path().join("cache"))
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }

    /// Runs and asserts exit 0.
    pub fn ok(&self, args: &[&str]) -> Output {
        succeeded(args, self.run(args))
    }

    /// [`TestEnv::ok`], its stdout read as JSON (commands run with `--json`).
    pub fn ok_json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.ok(args);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON: {e}: {}", stdout(&out)))
    }

    /// A class-folder tree of synthetic JPEGs.
    pub fn synth(&self, dir: &str, classes: usize, per_class: usize, w: u32, h: u32) {
        self.ok(&[
            "synth",
            dir,
            "--classes",
            &classes.to_string(),
            "--per-class",
            &per_class.to_string(),
            "--width",
            &w.to_string(),
            "--height",
            &h.to_string(),
        ]);
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    pub fn write(&self, rel: &str, bytes: &[u8]) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

fn succeeded(args: &[&str], out: Output) -> Output {
    assert!(
        out.status.success(),
        "imgprep {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts that `out`'s stderr holds `needle` (and shows it when not).
pub fn assert_stderr_has(out: &Output, needle: &str) {
    let err = stderr(out);
    assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The peers' Python (a venv with MXNet, OpenCV, Pillow) from scripts/venv.sh.
/// Missing: the test is skipped with a message, except under CI=true.
pub fn python() -> Option<PathBuf> {
    match std::env::var_os("IMGPREP_PYTHON") {
        Some(p) if Path::new(&p).exists() => Some(PathBuf::from(p)),
        _ if ci() => panic!("IMGPREP_PYTHON is not set under CI=true: run scripts/test.sh"),
        _ => {
            eprintln!("SKIPPED: IMGPREP_PYTHON not set (scripts/test.sh sets it up)");
            None
        }
    }
}

/// ../shared/data (the real troublesome files), or skip unless CI.
pub fn shared_data() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("IMGPREP_SHARED_DATA").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")),
    ];
    for c in candidates.into_iter().flatten() {
        if c.join("edge_cases").is_dir() {
            return Some(c);
        }
    }
    if ci() {
        panic!("../shared/data is missing under CI=true");
    }
    eprintln!("SKIPPED: ../shared/data not found");
    None
}

/// Runs one of tests/interop/*.py with the peers' Python; returns its JSON.
pub fn interop(py: &Path, script: &str, args: &[&str], cwd: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/interop")
        .join(script);
    let out = Command::new(py)
        .arg(&script)
        .args(args)
        .current_dir(cwd)
        .env("TF_CPP_MIN_LOG_LEVEL", "2")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: bad JSON ({e}): {}",
            script.display(),
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A real JPEG whose SOF header claims `w` x `h` (a decompression bomb).
pub fn patch_jpeg_dims(jpeg: &[u8], w: u16, h: u16) -> Vec<u8> {
    let mut v = jpeg.to_vec();
    let sof = v
        .windows(2)
        .position(|m| m[0] == 0xFF && (m[1] == 0xC0 || m[1] == 0xC2))
        .expect("SOF marker");
    v[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    v[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    v
}

/// The TensorFlow venv's Python (scripts/venv.sh tf); skip unless CI.
pub fn tf_python() -> Option<PathBuf> {
    match std::env::var_os("IMGPREP_TF_PYTHON") {
        Some(p) if Path::new(&p).exists() => Some(PathBuf::from(p)),
        _ if ci() => panic!("IMGPREP_TF_PYTHON is not set under CI=true: run scripts/test.sh"),
        _ => {
            eprintln!("SKIPPED: IMGPREP_TF_PYTHON not set (scripts/test.sh sets it up)");
            None
        }
    }
}

/// A real S3 server (Garage, started by scripts/test.sh): endpoint, bucket,
/// key, secret. Missing: skipped with a message, except under CI=true.
#[derive(Clone, Debug)]
pub struct S3 {
    pub endpoint: String,
    pub bucket: String,
    pub key: String,
    pub secret: String,
}

impl S3 {
    fn from_vars(get: impl Fn(&str) -> Option<String>) -> Option<S3> {
        Some(S3 {
            endpoint: get("IMGPREP_S3_ENDPOINT")?,
            bucket: get("IMGPREP_S3_BUCKET")?,
            key: get("IMGPREP_S3_KEY")?,
            secret: get("IMGPREP_S3_SECRET")?,
        })
    }

    /// The AWS settings imgprep reads.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", self.key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_PROFILE", "imgprep-test-none".into()),
        ]
    }

    /// `s3://BUCKET/RUN/key`: RUN is new for every test process, so tests
    /// never see objects an earlier run left on the same server.
    pub fn uri(&self, key: &str) -> String {
        format!("s3://{}/{}/{key}", self.bucket, run_id())
    }
}

/// A unique part of object keys for this test process: tests never see
/// objects an earlier run left on the same server.
fn run_id() -> &'static str {
    static RUN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RUN.get_or_init(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!("run-{}-{t}", std::process::id())
    })
}

/// Azurite, Microsoft's Azure Blob Storage emulator (started by
/// scripts/test.sh): its endpoint and container.
#[derive(Clone, Debug)]
pub struct Az {
    pub endpoint: String,
    pub container: String,
}

impl Az {
    /// The settings imgprep reads (object_store's standard AZURE_* ones).
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
            ("AZURITE_BLOB_STORAGE_URL", self.endpoint.clone()),
        ]
    }

    pub fn uri(&self, key: &str) -> String {
        format!("az://{}/{}/{key}", self.container, run_id())
    }
}

pub fn az() -> Option<Az> {
    let get = |k: &str| std::env::var(k).ok();
    match (get("IMGPREP_AZ_ENDPOINT"), get("IMGPREP_AZ_CONTAINER")) {
        (Some(endpoint), Some(container)) => Some(Az {
            endpoint,
            container,
        }),
        _ if ci() => panic!("IMGPREP_AZ_* not set under CI=true: run scripts/test.sh"),
        _ => {
            eprintln!("SKIPPED: no Azurite server (scripts/test.sh starts one)");
            None
        }
    }
}

pub fn s3() -> Option<S3> {
    match S3::from_vars(|k| std::env::var(k).ok()) {
        Some(s) => Some(s),
        None if ci() => panic!("IMGPREP_S3_* not set under CI=true: run scripts/test.sh"),
        None => {
            eprintln!("SKIPPED: no S3 server (scripts/test.sh starts Garage)");
            None
        }
    }
}

/// A Garage server of the test's own (for outage tests), in `dir`.
pub struct OwnServer {
    script: PathBuf,
    pub dir: PathBuf,
    pub s3: S3,
}

impl OwnServer {
    pub fn start(dir: &Path) -> Option<OwnServer> {
        let script = PathBuf::from(std::env::var_os("IMGPREP_GARAGE_SCRIPT")?);
        let ok = Command::new("bash")
            .arg(&script)
            .arg("start")
            .arg(dir)
            .output()
            .unwrap();
        assert!(ok.status.success(), "garage start: {}", stderr(&ok));
        let text = std::fs::read_to_string(dir.join("env")).unwrap();
        let vars: std::collections::HashMap<String, String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect();
        Some(OwnServer {
            script,
            dir: dir.to_path_buf(),
            s3: S3::from_vars(|k| vars.get(k).cloned()).unwrap(),
        })
    }

    pub fn run(&self, what: &str) {
        let out = Command::new("bash")
            .arg(&self.script)
            .arg(what)
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "garage {what}: {}", stderr(&out));
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}

impl TestEnv {
    /// Runs `imgprep ARGS` with the S3 settings.
    pub fn run_s3(&self, s3: &S3, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_imgprep"))
            .args(args)
            .envs(s3.vars())
            .env("IMGPREP_STAGING", self.path("staging"))
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }

    pub fn ok_s3(&self, s3: &S3, args: &[&str]) -> Output {
        succeeded(args, self.run_s3(s3, args))
    }

    /// Puts a local folder under `uri` with the same relative paths (test
    /// input for the bucket), with `imgprep push --layout mirror`.
    pub fn upload(&self, s3: &S3, dir: &str, uri: &str) {
        self.ok_s3(s3, &["push", dir, uri, "--layout", "mirror", "-q"]);
    }

    /// Runs `imgprep ARGS` with the Azurite settings.
    pub fn ok_az(&self, az: &Az, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_imgprep"))
            .args(args)
            .envs(az.vars())
            .env("IMGPREP_STAGING", self.path("staging"))
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        succeeded(args, out)
    }
}

/// Twelve photos in two class folders and, by the shard size in records, the
/// recipe of their TFRecord build (write it to `r.toml`).
pub fn sharded_photos(env: &TestEnv) -> impl Fn(u32) -> String {
    env.synth("photos", 2, 6, 32, 24);
    |shards: u32| {
        format!(
            "name = \"p\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n\
             [[outputs]]\nformat = \"tfrecord\"\nshard_records = {shards}\n"
        )
    }
}
