//! The real peers: MXNet 1.9.1 reads what we write, and the wheel's own
//! im2rec.py run side by side gives the same lists, ids, labels and sizes.

use crate::env::{interop, python, shared_data, TestEnv};
use recordio::{ImageRecord, RecordReader};

fn im2rec_py(env: &TestEnv, py: &std::path::Path, args: &[&str]) {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/run_im2rec.py");
    let out = std::process::Command::new(py)
        .arg(script)
        .args(args)
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "im2rec.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn mxnet_reads_our_records_and_image_record_iter_counts_them() {
    let Some(py) = python() else { return };
    let env = TestEnv::new();
    env.synth("imgs", 3, 4, 120, 90);
    env.ok(&["im2rec", "d", "imgs", "--list", "--recursive"]);
    env.ok(&["im2rec", "d", "imgs", "--resize", "60"]);
    let v = interop(
        &py,
        "mxnet_read.py",
        &["d", "--batch-size", "4"],
        env.dir.path(),
    );
    let recs = v["records"].as_array().unwrap();
    assert_eq!(recs.len(), 12);
    let lst = String::from_utf8(env.read("d.lst")).unwrap();
    for (r, line) in recs.iter().zip(lst.lines()) {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(r["id"].as_u64().unwrap().to_string(), f[0]);
        assert_eq!(
            r["labels"][0].as_f64().unwrap(),
            f[1].parse::<f64>().unwrap()
        );
        assert_eq!(r["shape"], serde_json::json!([60, 80, 3]));
    }
    assert_eq!(v["iter"]["count"], 12, "{v}");
}

#[test]
fn packed_labels_read_with_label_width() {
    let Some(py) = python() else { return };
    let env = TestEnv::new();
    env.synth("imgs", 1, 3, 64, 64);
    env.write(
        "m.lst",
        b"0\t1\t0\t1\tclass_0/img_00000.jpg\n1\t0\t1\t1\tclass_0/img_00001.jpg\n2\t1\t1\t0\tclass_0/img_00002.jpg\n",
    );
    env.ok(&["im2rec", "m", "imgs", "--pack-label", "--resize", "32"]);
    let v = interop(
        &py,
        "mxnet_read.py",
        &["m", "--label-width", "3", "--batch-size", "3"],
        env.dir.path(),
    );
    assert_eq!(v["records"][2]["flag"], 3);
    assert_eq!(
        v["records"][2]["labels"],
        serde_json::json!([1.0, 1.0, 0.0])
    );
    assert_eq!(v["iter"]["count"], 3, "{v}");
    assert_eq!(
        v["iter"]["labels"][1],
        serde_json::json!([0.0, 1.0, 1.0]),
        "{v}"
    );
}

/// Same tree, same options: im2rec.py and we write identical .lst files,
/// shuffled or not, with splits and chunks.
#[test]
fn lists_are_identical_to_im2rec_py() {
    let Some(py) = python() else { return };
    let env = TestEnv::new();
    env.synth("imgs", 4, 7, 16, 16);
    env.write(
        "imgs/class_1/sub/extra.png",
        &env.read("imgs/class_0/img_00000.jpg"),
    );
    env.write("imgs/UPPER.JPG", &env.read("imgs/class_0/img_00000.jpg"));
    let root = env.path("imgs");
    let root = root.to_str().unwrap();
    for opts in [
        &["--recursive", "--no-shuffle"][..],
        &["--recursive"][..],
        &[
            "--recursive",
            "--train-ratio",
            "0.7",
            "--test-ratio",
            "0.1",
            "--chunks",
            "3",
        ][..],
        &[][..],
    ] {
        for (who, prefix) in [("ours", "o/p"), ("theirs", "t/p")] {
            std::fs::create_dir_all(env.path(prefix).parent().unwrap()).unwrap();
            let mut args = vec![prefix, root, "--list"];
            args.extend_from_slice(opts);
            if who == "ours" {
                env.ok(&[&["im2rec"][..], &args].concat());
            } else {
                im2rec_py(&env, &py, &args);
            }
        }
        let mut names: Vec<String> = std::fs::read_dir(env.path("t"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert!(!names.is_empty());
        for n in &names {
            assert_eq!(
                env.read(&format!("o/{n}")),
                env.read(&format!("t/{n}")),
                "{opts:?}: {n} differs"
            );
        }
        std::fs::remove_dir_all(env.path("o")).unwrap();
        std::fs::remove_dir_all(env.path("t")).unwrap();
    }
}

/// Packing the same .lst: pass-through output is byte-identical; re-encoded
/// output has the same ids, labels and sizes, and pixels within a re-encode.
#[test]
fn packing_matches_im2rec_py() {
    let Some(py) = python() else { return };
    let env = TestEnv::new();
    env.synth("imgs", 2, 5, 200, 150);
    env.write("imgs/class_1/tall.jpg", &{
        let t = TestEnv::new();
        t.synth("x", 1, 1, 150, 260);
        t.read("x/class_0/img_00000.jpg")
    });
    env.ok(&[
        "im2rec",
        "base",
        "imgs",
        "--list",
        "--recursive",
        "--no-shuffle",
    ]);
    for dir in ["o", "t"] {
        std::fs::create_dir_all(env.path(dir)).unwrap();
    }
    let cases: [&[&str]; 3] = [
        &["--pass-through"],
        &["--resize", "96"],
        &["--resize", "64", "--center-crop"],
    ];
    for opts in cases {
        for dir in ["o", "t"] {
            std::fs::copy(env.path("base.lst"), env.path(&format!("{dir}/p.lst"))).unwrap();
        }
        let root = env.path("imgs");
        let mut args = vec!["o/p", root.to_str().unwrap()];
        args.extend_from_slice(opts);
        env.ok(&[&["im2rec"][..], &args, &["--num-thread", "2"]].concat());
        args[0] = "t/p";
        im2rec_py(&env, &py, &args);
        if opts[0] == "--pass-through" {
            assert_eq!(
                env.read("o/p.rec"),
                env.read("t/p.rec"),
                "pass-through .rec differs"
            );
            assert_eq!(env.read("o/p.idx"), env.read("t/p.idx"));
            continue;
        }
        let v = interop(&py, "im2rec_parity.py", &["o/p", "t/p"], env.dir.path());
        assert_eq!(v["count_ours"], 11, "{v}");
        assert_eq!(v["compared"], 11, "{v}");
        for k in ["ids_equal", "order_equal", "labels_equal", "shapes_equal"] {
            assert_eq!(v[k], true, "{opts:?} {k}: {v}");
        }
        assert!(v["min_psnr"].as_f64().unwrap() >= 30.0, "{opts:?}: {v}");
    }
}

/// Resize quality is at least OpenCV INTER_LINEAR's: PSNR of both against a
/// float Lanczos resize of the full-size decode, on real photos. Once as
/// pixels (PNG), and once as JPEG at quality 95 against im2rec.py's
/// `--resize` + `--quality 95` (OpenCV's resize, encoded by OpenCV): ours then
/// goes JPEG to JPEG through the file's own colour planes.
#[test]
fn resize_quality_beats_opencv_linear() {
    let Some(py) = python() else { return };
    let Some(data) = shared_data() else { return };
    let env = TestEnv::new();
    let photos = [
        ("photos/sklearn/china.jpg", "210"),
        ("photos/sklearn/flower.jpg", "300"),
        ("photos/matplotlib/grace_hopper.jpg", "224"),
        ("photos/forensics_phone", "210"),
    ];
    for (rel, size) in photos {
        let mut src = data.join(rel);
        if src.is_dir() {
            // the first 4000x3000 phone photo: decoded at 1/8 DCT scale
            let mut all: Vec<_> = std::fs::read_dir(&src)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            all.sort();
            src = all
                .into_iter()
                .find(|p| std::fs::metadata(p).unwrap().len() > 2_000_000)
                .unwrap();
        }
        env.write("q.lst", format!("0\t0\t{}\n", src.display()).as_bytes());
        for (encoding, file, quality) in
            [(".png", "ours.png", None), (".jpg", "ours.jpg", Some("95"))]
        {
            let mut args = vec!["im2rec", "q", "/", "--resize", size, "--encoding", encoding];
            if let Some(q) = quality {
                args.extend(["--quality", q]);
            }
            env.ok(&args);
            let rec = env.read("q.rec");
            let mut buf = Vec::new();
            RecordReader::new(&rec[..]).read_record(&mut buf).unwrap();
            let (_, img) = ImageRecord::parse(&buf).unwrap();
            env.write(file, img);
            let info = env.ok(&["inspect", "q.rec", "--json"]);
            let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
            let (w, h) = (info["width"].to_string(), info["height"].to_string());
            let mut args = vec![src.to_str().unwrap(), file, "--width", &w, "--height", &h];
            if let Some(q) = quality {
                args.extend(["--jpeg-quality", q]);
            }
            let v = interop(&py, "resize_quality.py", &args, env.dir.path());
            let (ours, cv) = (
                v["psnr_ours"].as_f64().unwrap(),
                v["psnr_opencv_linear"].as_f64().unwrap(),
            );
            eprintln!(
                "{rel} -> {w}x{h} {encoding}: ours {ours:.2} dB, OpenCV INTER_LINEAR {cv:.2} dB"
            );
            assert!(
                ours >= cv,
                "{rel} {encoding}: ours {ours:.2} dB < OpenCV {cv:.2} dB"
            );
        }
    }
}

/// A multi-label build from multi-hot `.lst` files, read by the real MXNet
/// the way SageMaker does (`ImageRecordIter(label_width=num_classes)`):
/// every record, including those with a single class, carries the full
/// multi-hot vector the `.lst` gave, and the iterator sees
/// `num_training_samples` images.
#[test]
fn mxnet_reads_a_multi_label_build_with_label_width_num_classes() {
    let Some(py) = python() else { return };
    let env = TestEnv::new();
    env.ok(&[
        "synth",
        "ml",
        "--layout",
        "multilabel",
        "--classes",
        "5",
        "--per-class",
        "4",
        "--width",
        "48",
        "--height",
        "40",
    ]);
    env.write(
        "r.toml",
        b"name = \"ml\"\n[[sources]]\ntype = \"lst\"\nfile = \"ml/train.lst\"\nroot = \"ml/images\"\nsplit = \"train\"\n\
          [transform]\nresize = \"32x32\"\n[[outputs]]\nformat = \"recordio\"\npack_label = true\n",
    );
    env.ok(&["build", "r.toml", "--out", "o"]);
    let m: serde_json::Value = serde_json::from_slice(&env.read("o/manifest.json")).unwrap();
    assert_eq!(m["num_classes"], 5);
    let n = m["variants"]["complete"]["num_training_samples"]
        .as_u64()
        .unwrap();
    // the source rows by path: what each record must carry
    let given: std::collections::BTreeMap<String, Vec<f64>> =
        String::from_utf8(env.read("ml/train.lst"))
            .unwrap()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                let labels = f[1..f.len() - 1]
                    .iter()
                    .map(|v| v.parse().unwrap())
                    .collect();
                (f[f.len() - 1].to_string(), labels)
            })
            .collect();
    assert!(given.values().any(|v| v.iter().sum::<f64>() == 1.0));
    let v = interop(
        &py,
        "mxnet_read.py",
        &[
            "o/complete/recordio/train",
            "--label-width",
            "5",
            "--batch-size",
            "4",
        ],
        env.dir.path(),
    );
    let lst = String::from_utf8(env.read("o/complete/recordio/train.lst")).unwrap();
    let recs = v["records"].as_array().unwrap();
    assert_eq!(recs.len() as u64, n);
    for (r, line) in recs.iter().zip(lst.lines()) {
        let path = line.rsplit('\t').next().unwrap();
        let want: Vec<serde_json::Value> = given[path].iter().map(|&x| x.into()).collect();
        assert_eq!(r["flag"], 5, "{r}");
        assert_eq!(r["labels"].as_array().unwrap(), &want, "{path}");
        assert_eq!(r["shape"], serde_json::json!([32, 32, 3]));
    }
    assert_eq!(v["iter"]["count"].as_u64(), Some(n), "{v}");
    assert!(v["iter_error"].is_null(), "{v}");
}
