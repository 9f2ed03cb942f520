//! TFRecord output read by the real TensorFlow.

use crate::env::{interop, shared_data, stderr, tf_python, TestEnv};

const RECIPE: &str = r#"name = "tiny"
[[sources]]
type = "folders"
root = "photos"
[split]
train = 0.8
validation = 0.2
[transform]
encoding = "passthrough"
[[outputs]]
format = "tfrecord"
preset = "tfds"
[[outputs]]
format = "tfrecord"
preset = "raw"
compression = "gzip"
shard_records = 4
"#;

#[test]
fn tensorflow_reads_both_presets_and_pixels_match() {
    let Some(py) = tf_python() else { return };
    let env = TestEnv::new();
    env.synth("photos", 3, 5, 64, 48);
    if let Some(data) = shared_data() {
        // a grayscale JPEG: converted to RGB, never dropped
        let gray = std::fs::read(data.join("edge_cases/grayscale/hopper_gray.jpg")).unwrap();
        env.write("photos/class_1/gray.jpg", &gray);
    }
    env.write("r.toml", RECIPE.as_bytes());
    env.ok(&["build", "r.toml", "--out", "o"]);
    let m: serde_json::Value = serde_json::from_slice(&env.read("o/manifest.json")).unwrap();
    let train_items = m["variants"]["complete"]["splits"]["train"]["items"]
        .as_u64()
        .unwrap();
    let shards: Vec<String> = (0..train_items.div_ceil(4))
        .map(|k| {
            format!(
                "o/complete/tfrecord-raw/train-{k:05}-of-{:05}.tfrecord.gz",
                train_items.div_ceil(4)
            )
        })
        .collect();
    for s in &shards {
        assert!(
            m["records"][s.trim_start_matches("o/")].as_u64().unwrap() <= 4,
            "{s} in manifest records"
        );
    }
    let tfds = interop(
        &py,
        "tf_read.py",
        &[
            "o/complete/tfrecord-tfds/train-00000-of-00001.tfrecord",
            "--preset",
            "tfds",
        ],
        env.dir.path(),
    );
    let mut raw_args: Vec<&str> = shards.iter().map(String::as_str).collect();
    raw_args.extend(["--preset", "raw", "--compression", "GZIP"]);
    let raw = interop(&py, "tf_read.py", &raw_args, env.dir.path());
    let (t, r) = (
        tfds["records"].as_array().unwrap(),
        raw["records"].as_array().unwrap(),
    );
    assert!(
        tfds.get("error").is_none() && raw.get("error").is_none(),
        "{tfds} {raw}"
    );
    assert_eq!(t.len() as u64, train_items);
    assert_eq!(r.len() as u64, train_items);
    for (a, b) in t.iter().zip(r) {
        assert_eq!(a["key_ok"], true);
        assert_eq!(a["labels"][0], b["label"]);
        // TensorFlow's decode of our image/encoded == our decode in image_raw
        assert_eq!(a["pixels_sha256"], b["pixels_sha256"], "{a} vs {b}");
        assert_eq!(b["shape"][2], 3, "raw pixels are RGB: {b}");
        let one_hot: Vec<u64> = b["one_hot"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(one_hot.iter().sum::<u64>(), 1);
        assert_eq!(one_hot[b["label"].as_u64().unwrap() as usize], 1);
    }
    env.ok(&["verify", "o"]);
}

#[test]
fn a_corrupted_byte_is_caught_by_us_and_by_tensorflow() {
    let env = TestEnv::new();
    env.synth("photos", 2, 4, 32, 32);
    env.write("r.toml", RECIPE.as_bytes());
    env.ok(&["build", "r.toml", "--out", "o"]);
    let f = "o/complete/tfrecord-tfds/train-00000-of-00001.tfrecord";
    let mut bytes = env.read(f);
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    env.write(f, &bytes);
    let out = env.run(&["verify", f]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("CRC"), "{}", stderr(&out));
    assert_eq!(env.run(&["verify", "o"]).status.code(), Some(1));
    let Some(py) = tf_python() else { return };
    let v = interop(&py, "tf_read.py", &[f, "--preset", "tfds"], env.dir.path());
    assert!(
        v["error"].as_str().unwrap_or("").contains("DataLoss")
            || v["error"].as_str().unwrap_or("").contains("corrupted"),
        "{v}"
    );
}

#[test]
fn tfrecord_output_is_deterministic_and_inspectable() {
    let env = TestEnv::new();
    env.synth("photos", 2, 6, 32, 32);
    env.write("r.toml", RECIPE.as_bytes());
    env.ok(&["build", "r.toml", "--out", "a", "--num-thread", "1"]);
    env.ok(&["build", "r.toml", "--out", "b", "--num-thread", "2"]);
    for f in [
        "complete/tfrecord-tfds/train-00000-of-00001.tfrecord",
        "complete/tfrecord-raw/train-00000-of-00003.tfrecord.gz",
    ] {
        assert_eq!(
            env.read(&format!("a/{f}")),
            env.read(&format!("b/{f}")),
            "{f}"
        );
    }
    let out = env.ok(&[
        "inspect",
        "a/complete/tfrecord-raw/train-00000-of-00003.tfrecord.gz",
        "--json",
    ]);
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["format"], "raw");
    assert_eq!(first["width"], 32);
}

#[test]
fn color_policy_converts_or_skips_non_rgb_sources_with_reasons() {
    let Some(data) = shared_data() else { return };
    let env = TestEnv::new();
    env.synth("photos", 2, 3, 32, 32);
    for (from, to) in [
        ("grayscale/hopper_gray.jpg", "class_0/gray.jpg"),
        (
            "grayscale/cvo9xd_keong_macan_grayscale.png",
            "class_1/gray.png",
        ),
        ("cmyk/pil_sample_cmyk.jpg", "class_0/cmyk.jpg"),
        // decoded to RGB by the image crate, but CMYK as stored
        ("cmyk/tiff_strip_cmyk_jpeg.tif", "class_1/cmyk.tif"),
        ("alpha/tmshre_riaphotographs_alpha.png", "class_1/alpha.png"),
    ] {
        let bytes = std::fs::read(data.join("edge_cases").join(from)).unwrap();
        env.write(&format!("photos/{to}"), &bytes);
    }
    let args = |out: &'static str, policy: &'static str| {
        vec![
            "convert",
            "photos",
            out,
            "--to",
            "tfrecord",
            "--preset",
            "raw",
            "--resize",
            "16x16",
            "--color-policy",
            policy,
            "--exts",
            ".jpg",
            ".png",
            ".tif",
            "--fail-on-error",
        ]
    };
    // convert (default): all 11 in, as RGB, and counted by source layout
    env.ok(&args("conv", "convert"));
    let m: serde_json::Value = serde_json::from_slice(&env.read("conv/manifest.json")).unwrap();
    assert_eq!(
        m["non_rgb_sources"],
        serde_json::json!({"grayscale": 2, "cmyk": 2, "rgba": 1})
    );
    let shard = "conv/complete/tfrecord-raw/train-00000-of-00001.tfrecord";
    let out = env.ok(&["inspect", shard, "--json"]);
    let recs: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 11);
    assert!(recs.iter().all(|r| r["channels"] == 3), "{recs:?}");
    // skip: the 5 are left out with their reasons, not an error even under --fail-on-error
    let out = env.ok(&args("skip", "skip"));
    assert!(stderr(&out).contains("color_policy"), "{}", stderr(&out));
    let m: serde_json::Value = serde_json::from_slice(&env.read("skip/manifest.json")).unwrap();
    let skipped = m["skipped"].as_array().unwrap();
    let mut reasons: Vec<String> = skipped
        .iter()
        .map(|s| format!("{} {}", s["item"], s["reason"]))
        .collect();
    reasons.sort();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert!(reasons[0].contains("cmyk.jpg") && reasons[0].contains("cmyk source"));
    assert!(reasons[3].contains("cmyk.tif") && reasons[3].contains("cmyk source"));
    assert!(reasons[4].contains("gray.png") && reasons[4].contains("grayscale source"));
    assert_eq!(
        m["records"]["complete/tfrecord-raw/train-00000-of-00001.tfrecord"],
        6
    );
    env.ok(&["verify", "skip"]);
}

#[test]
fn convert_is_a_recipe_build_kept_in_the_output() {
    let env = TestEnv::new();
    env.synth("photos", 3, 4, 40, 30);
    let args = [
        "convert",
        "photos",
        "o",
        "--to",
        "tfrecord",
        "--to",
        "recordio",
        "--train",
        "0.75",
        "--validation",
        "0.25",
        "--resize",
        "area=600",
        "--compression",
        "gzip",
        "--shard-records",
        "4",
    ];
    env.ok(&args);
    // TFRecord's settings with no TFRecord output: said, not dropped
    let out = env.run(&[
        "convert",
        "photos",
        "o3",
        "--to",
        "recordio",
        "--preset",
        "raw",
        "--shard-mib",
        "8",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--preset, --shard-mib are for TFRecord output"),
        "{}",
        stderr(&out)
    );
    assert!(!env.path("o3").exists());
    // the recipe it ran is kept; building it gives the same bytes
    env.ok(&["build", "o/imgprep-convert.toml", "--out", "o2"]);
    let m: serde_json::Value = serde_json::from_slice(&env.read("o/manifest.json")).unwrap();
    let files = m["files"].as_object().unwrap();
    assert!(files.contains_key("complete/tfrecord-tfds/train-00000-of-00003.tfrecord.gz"));
    assert!(files.contains_key("complete/recordio/validation.rec"));
    // (the kept recipe itself is convert's, listed in its manifest only)
    assert!(files.contains_key("imgprep-convert.toml"));
    for f in files.keys().filter(|f| *f != "imgprep-convert.toml") {
        assert_eq!(
            env.read(&format!("o/{f}")),
            env.read(&format!("o2/{f}")),
            "{f}"
        );
    }
    // a second run is a no-op; bad arguments are usage errors
    assert!(stderr(&env.ok(&args)).contains("up to date"));
    let out = env.run(&[
        "convert", "photos", "o3", "--to", "tfrecord", "--train", "0.5",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("add up to"), "{}", stderr(&out));
    let out = env.run(&["convert", "nowhere", "o3", "--to", "tfrecord"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nowhere"), "{}", stderr(&out));
}

/// A rebuild that copies most records from the previous shards (one image
/// changed, one label changed) is read by the real TensorFlow: every
/// record parses, each `image/key/sha256` is the SHA-256 of its image, the
/// changed label is the new one, the shapes agree record by record, and
/// every shard is byte-identical to a clean build's.
#[test]
fn tensorflow_reads_a_rebuild_made_of_copied_records() {
    let Some(py) = tf_python() else { return };
    let env = TestEnv::new();
    env.synth("photos", 3, 5, 64, 48);
    let recipe = RECIPE
        .replace("encoding = \"passthrough\"", "resize = 40")
        .replace("compression = \"gzip\"\n", "")
        .replace(
            "preset = \"tfds\"\n",
            "preset = \"tfds\"\nshard_records = 3\n",
        );
    env.write("r.toml", recipe.as_bytes());
    env.ok(&["build", "r.toml", "--out", "o"]);
    env.write(
        "photos/class_0/img_00001.jpg",
        &env.read("photos/class_2/img_00003.jpg"),
    );
    std::fs::rename(
        env.path("photos/class_1/img_00002.jpg"),
        env.path("photos/class_2/img_00002.jpg"),
    )
    .unwrap();
    let out = env.ok(&["build", "r.toml", "--out", "o", "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(s["records_reused"].as_u64().unwrap() >= 20, "{s}");
    let shards = |preset: &str| -> Vec<String> {
        let dir = format!("o/complete/tfrecord-{preset}");
        let mut v: Vec<String> = std::fs::read_dir(env.path(&dir))
            .unwrap()
            .map(|e| format!("{dir}/{}", e.unwrap().file_name().to_string_lossy()))
            .filter(|f| f.contains("/train-"))
            .collect();
        v.sort();
        v
    };
    let (tfds_files, raw_files) = (shards("tfds"), shards("raw"));
    assert!(tfds_files.len() >= 3, "{tfds_files:?}");
    let read = |files: &[String], preset: &str| {
        let mut args: Vec<&str> = files.iter().map(String::as_str).collect();
        args.extend(["--preset", preset]);
        let v = interop(&py, "tf_read.py", &args, env.dir.path());
        assert!(v.get("error").is_none(), "{v}");
        v["records"].as_array().unwrap().clone()
    };
    let (t, r) = (read(&tfds_files, "tfds"), read(&raw_files, "raw"));
    let m: serde_json::Value = serde_json::from_slice(&env.read("o/manifest.json")).unwrap();
    let n = m["variants"]["complete"]["splits"]["train"]["items"]
        .as_u64()
        .unwrap();
    assert_eq!((t.len() as u64, r.len() as u64), (n, n));
    for (a, b) in t.iter().zip(&r) {
        assert_eq!(a["key_ok"], true, "{a}");
        assert_eq!(a["labels"][0], b["label"]);
        // (resized: tfds holds a JPEG, raw the exact pixels; same shape)
        assert_eq!(a["shape"], a["declared"], "{a}");
        assert_eq!(a["shape"], b["shape"], "{a} vs {b}");
        let file = a["filename"].as_str().unwrap();
        assert_ne!(
            file, "class_1/img_00002.jpg",
            "the moved image is not in its old class"
        );
        if file == "class_2/img_00002.jpg" {
            assert_eq!(a["text"][0], "class_2", "{a}");
        }
    }
    // and the rebuild is what a clean build makes
    env.ok(&["build", "r.toml", "--out", "clean"]);
    for f in tfds_files.iter().chain(&raw_files) {
        assert!(
            env.read(f) == env.read(&f.replacen("o/", "clean/", 1)),
            "{f}"
        );
    }
}

/// Pass-through into raw pixels: a JPEG whose header is fine but whose scan
/// is cut short is skipped when the sources are prepared (by `on_error`, as
/// a re-encoding build skips it), not found broken while the records are
/// written, which stopped the build and left a half-made output.
#[test]
fn passthrough_into_raw_pixels_skips_a_source_that_does_not_decode() {
    let env = TestEnv::new();
    env.synth("photos", 2, 3, 64, 64);
    let good = env.read("photos/class_0/img_00000.jpg");
    env.write("photos/class_1/cut.jpg", &good[..good.len() * 2 / 3]);
    let args = |out: &'static str, extra: &[&'static str]| {
        let mut a = vec![
            "convert",
            "photos",
            out,
            "--to",
            "tfrecord",
            "--preset",
            "raw",
            "--encoding",
            "passthrough",
        ];
        a.extend(extra);
        a
    };
    let out = env.ok(&args("skip", &[]));
    assert!(
        stderr(&out).contains("class_1/cut.jpg") && stderr(&out).contains("JPEG"),
        "{}",
        stderr(&out)
    );
    let m: serde_json::Value = serde_json::from_slice(&env.read("skip/manifest.json")).unwrap();
    assert_eq!(m["skipped"].as_array().unwrap().len(), 1, "{m}");
    assert_eq!(
        m["records"]["complete/tfrecord-raw/train-00000-of-00001.tfrecord"],
        6
    );
    env.ok(&["verify", "skip"]);
    // told to fail: it fails before any record file is made, naming the file
    let out = env.run(&args("fail", &["--fail-on-error"]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("cut.jpg"), "{}", stderr(&out));
    assert!(!env.path("fail/complete").exists());
}
