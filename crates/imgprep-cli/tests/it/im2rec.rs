//! `imgprep im2rec`: lists, packing, determinism, bad input.

use crate::env::{assert_stderr_has, patch_jpeg_dims, shared_data, stderr, stdout, TestEnv};
use recordio::{ImageRecord, Labels, RecordReader};

/// (id, labels, image bytes) of every record, in file order.
fn records(env: &TestEnv, rec: &str) -> Vec<(u64, Labels, Vec<u8>)> {
    let bytes = env.read(rec);
    let mut r = RecordReader::new(&bytes[..]);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while r.read_record(&mut buf).unwrap().is_some() {
        let (h, img) = ImageRecord::parse(&buf).unwrap();
        out.push((h.id, h.labels, img.to_vec()));
    }
    out
}

#[test]
fn recursive_list_labels_folders_in_sorted_walk_order() {
    let env = TestEnv::new();
    env.synth("imgs", 3, 2, 64, 48);
    env.write("imgs/top.jpg", &env.read("imgs/class_0/img_00000.jpg"));
    env.write("imgs/class_1/deeper/x.png", b"not really a png");
    env.write("imgs/class_2/notes.txt", b"ignored");
    let out = env.ok(&[
        "im2rec",
        "data/all",
        "imgs",
        "--list",
        "--recursive",
        "--no-shuffle",
    ]);
    assert_eq!(
        stdout(&out),
        ". 0\nclass_0 1\nclass_1 2\nclass_1/deeper 3\nclass_2 4\n"
    );
    let lst = String::from_utf8(env.read("data/all.lst")).unwrap();
    let lines: Vec<&str> = lst.lines().collect();
    assert_eq!(lines[0], "0\t0.000000\ttop.jpg");
    assert_eq!(lines[1], "1\t1.000000\tclass_0/img_00000.jpg");
    assert_eq!(lines[5], "5\t3.000000\tclass_1/deeper/x.png");
    assert_eq!(lines.len(), 8);
    // a PREFIX that ends in `/` names the file beside the folder, as
    // im2rec.py's abspath makes it (not a hidden `data/.lst`)
    env.ok(&["im2rec", "data/", "imgs", "--list", "--recursive", "-q"]);
    assert!(env.path("data.lst").is_file() && !env.path("data/.lst").exists());
    // extensions without their dot match nothing (as in im2rec.py): said
    let out = env.run(&[
        "im2rec",
        "data/none",
        "data",
        "--list",
        "--recursive",
        "--exts",
        "jpg",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--exts .jpg"), "{}", stderr(&out));
}

#[test]
fn ratios_and_chunks_split_like_im2rec() {
    let env = TestEnv::new();
    env.synth("imgs", 2, 10, 32, 32);
    env.ok(&[
        "im2rec",
        "p",
        "imgs",
        "--list",
        "--recursive",
        "--train-ratio",
        "0.6",
        "--test-ratio",
        "0.2",
        "--chunks",
        "2",
    ]);
    for c in 0..2 {
        let count = |s: &str| {
            String::from_utf8(env.read(&format!("p_{c}_{s}.lst")))
                .unwrap()
                .lines()
                .count()
        };
        // chunk of 10: test 2, train 6, val the rest
        assert_eq!((count("test"), count("train"), count("val")), (2, 6, 2));
    }
    // shares out of 0..1, or over 1 together, are refused (im2rec.py
    // writes other shares than asked); a negative one is read as a number
    for (train, test) in [("-0.5", "0"), ("1.5", "0"), ("0.8", "0.5")] {
        let out = env.run(&[
            "im2rec",
            "bad",
            "imgs",
            "--list",
            "--recursive",
            "--train-ratio",
            train,
            "--test-ratio",
            test,
        ]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{train} {test}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("each is a share from 0 to 1"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn output_is_byte_identical_for_any_thread_count() {
    let env = TestEnv::new();
    env.synth("imgs", 3, 12, 160, 120);
    env.ok(&["im2rec", "a", "imgs", "--list", "--recursive"]);
    for t in ["1", "2", "5"] {
        std::fs::copy(env.path("a.lst"), env.path(&format!("t{t}.lst"))).unwrap();
        env.ok(&[
            "im2rec",
            &format!("t{t}"),
            "imgs",
            "--resize",
            "50",
            "--num-thread",
            t,
        ]);
    }
    assert_eq!(env.read("t1.rec"), env.read("t2.rec"));
    assert_eq!(env.read("t1.rec"), env.read("t5.rec"));
    assert_eq!(env.read("t1.idx"), env.read("t5.idx"));
    let recs = records(&env, "t1.rec");
    assert_eq!(recs.len(), 36);
    // ids follow the .lst order (shuffled), labels are scalar
    let lst = String::from_utf8(env.read("a.lst")).unwrap();
    let first: u64 = lst
        .lines()
        .next()
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(recs[0].0, first);
    assert!(matches!(recs[0].1, Labels::Scalar(_)));
}

#[test]
fn pass_through_stores_the_files_own_bytes() {
    let env = TestEnv::new();
    env.synth("imgs", 1, 3, 80, 60);
    env.ok(&[
        "im2rec",
        "p",
        "imgs",
        "--list",
        "--recursive",
        "--no-shuffle",
    ]);
    env.ok(&["im2rec", "p", "imgs", "--pass-through"]);
    let recs = records(&env, "p.rec");
    for (i, (id, _, img)) in recs.iter().enumerate() {
        assert_eq!(*id, i as u64);
        assert_eq!(img, &env.read(&format!("imgs/class_0/img_{i:05}.jpg")));
    }
}

#[test]
fn pack_label_stores_every_label() {
    let env = TestEnv::new();
    env.synth("imgs", 1, 2, 40, 30);
    env.write(
        "m.lst",
        b"7\t1.000000\t0.000000\t2.500000\tclass_0/img_00000.jpg\n9\t3\tclass_0/img_00001.jpg\n",
    );
    env.ok(&["im2rec", "m", "imgs", "--pack-label"]);
    let recs = records(&env, "m.rec");
    assert_eq!(recs[0].0, 7);
    assert_eq!(recs[0].1, Labels::Packed(vec![1.0, 0.0, 2.5]));
    // a single label stays scalar, as im2rec.py does
    assert_eq!(recs[1].1, Labels::Scalar(3.0));
    // without --pack-label only the first label is kept
    env.ok(&["im2rec", "m", "imgs"]);
    assert_eq!(records(&env, "m.rec")[0].1, Labels::Scalar(1.0));
    // packed labels of two widths: said (a reader takes one label_width)
    let out = env.ok(&["im2rec", "m", "imgs", "--pack-label"]);
    assert_stderr_has(&out, "lines have 1 to 3 labels (line 2: 1, line 1: 3)");
    // a detection list's widths differ by design: not said
    env.write(
        "d.lst",
        b"0\t2\t5\t1\t0.1\t0.1\t0.5\t0.5\tclass_0/img_00000.jpg\n\
          1\t2\t5\t1\t0.1\t0.1\t0.5\t0.5\t0\t0.2\t0.2\t0.4\t0.4\tclass_0/img_00001.jpg\n",
    );
    let out = env.ok(&["im2rec", "d", "imgs", "--pack-label"]);
    assert!(!stderr(&out).contains("labels (line"), "{}", stderr(&out));
}

#[test]
fn resize_center_crop_color_and_png_encoding() {
    let env = TestEnv::new();
    env.synth("imgs", 1, 2, 300, 200);
    env.write(
        "p.lst",
        b"0\t0\tclass_0/img_00000.jpg\n1\t0\tclass_0/img_00001.jpg\n",
    );
    env.ok(&[
        "im2rec",
        "p",
        "imgs",
        "--resize",
        "100",
        "--center-crop",
        "--color",
        "0",
        "--encoding",
        ".png",
        "--quality",
        "9",
    ]);
    let out = env.ok(&["inspect", "p.rec", "--json"]);
    let rows: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    for r in rows {
        assert_eq!(r["format"], "png");
        assert_eq!(
            (r["width"].as_u64(), r["height"].as_u64()),
            (Some(100), Some(100))
        );
        assert_eq!(r["channels"], 1);
    }
    // shorter edge 100 of 300x200 -> 150x100, as im2rec computes it
    env.ok(&["im2rec", "p", "imgs", "--resize", "100"]);
    let out = env.ok(&["inspect", "p.rec", "--json", "--limit", "1"]);
    let r: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(
        (
            r["width"].as_u64(),
            r["height"].as_u64(),
            r["channels"].as_u64()
        ),
        (Some(150), Some(100), Some(3))
    );
}

#[test]
fn bad_images_are_skipped_with_reasons_and_counted() {
    let env = TestEnv::new();
    env.synth("imgs", 1, 2, 64, 48);
    let good = env.read("imgs/class_0/img_00000.jpg");
    env.write("imgs/bad/empty.jpg", b"");
    env.write("imgs/bad/text.jpg", b"hello, I am not an image\n");
    env.write("imgs/bad/truncated.jpg", &good[..good.len() / 2]);
    // complete but for its end marker: packed, as im2rec.py packs it (its
    // pixels are all there); a cut one stays skipped
    env.write("imgs/bad/no_eoi.jpg", &good[..good.len() - 2]);
    env.write("imgs/bad/bomb.jpg", &patch_jpeg_dims(&good, 60000, 60000));
    env.write(
        "imgs/bad/corrupt.png",
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDRjunkjunkjunk",
    );
    env.ok(&[
        "im2rec",
        "b",
        "imgs",
        "--list",
        "--recursive",
        "--no-shuffle",
    ]);
    let mut lst = String::from_utf8(env.read("b.lst")).unwrap();
    lst.push_str("99\t0\tbad/missing.jpg\n");
    env.write("b.lst", lst.as_bytes());
    let out = env.ok(&["im2rec", "b", "imgs", "--json", "--num-thread", "2"]);
    let err = stderr(&out);
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("warning: skipped"))
        .collect();
    assert_eq!(warnings.len(), 6, "{err}");
    for (name, why) in [
        ("empty.jpg", "empty file"),
        ("text.jpg", "not a supported image"),
        ("truncated.jpg", "remature end"),
        ("bomb.jpg", "over the limit"),
        ("corrupt.png", "corrupt"),
        ("missing.jpg", "No such file"),
    ] {
        assert!(
            warnings.iter().any(|w| w.contains(name) && w.contains(why)),
            "{name}: {err}"
        );
    }
    assert!(
        warnings.iter().any(|w| w.contains("b.lst:")),
        "warnings name file:line: {err}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary[0]["images"], 3);
    assert_eq!(summary[0]["skipped"], 6);
    assert_eq!(summary[0]["skip_reasons"]["too-large"], 1);
    // verify names the list lines that have no record
    let out = env.run(&["verify", "b"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains("6 lines have no record") && text.contains("line 1 (index 0, bad/bomb.jpg)"),
        "{text}"
    );
    // --strict turns skips into exit 1, still writing the good records
    let out = env.run(&["im2rec", "b", "imgs", "--strict", "-q"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(records(&env, "b.rec").len(), 3);
    assert!(!err.contains("no_eoi.jpg"), "{err}");
    // the pass-through check catches the same files without decoding (and
    // the one without its end marker: stored as it is, a reader would warn)
    let out = env.run(&["im2rec", "b", "imgs", "--pass-through", "--strict", "-q"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(records(&env, "b.rec").len(), 2);
    // a smaller limit is settable
    let out = env.run(&["im2rec", "b", "imgs", "--max-pixels", "1000", "--json"]);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // 64x48 = 3072 pixels: the two good images, the bomb and the cut copies
    assert_eq!(summary[0]["skip_reasons"]["too-large"], 5);
}

#[test]
fn outputs_are_replaced_atomically_and_no_partial_files_remain() {
    let env = TestEnv::new();
    env.synth("imgs", 1, 4, 64, 48);
    env.ok(&["im2rec", "x", "imgs", "--list", "--recursive"]);
    env.write("x.idx", b"stale\n");
    env.ok(&["im2rec", "x", "imgs"]);
    let idx = String::from_utf8(env.read("x.idx")).unwrap();
    assert_eq!(idx.lines().count(), 4);
    let leftovers: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Every file in ../shared/data/edge_cases is packed or skipped with its
/// reason; nothing crashes or hangs. The skips are exactly the files that are
/// really broken.
#[test]
fn shared_edge_cases_are_packed_or_skipped_with_reasons() {
    let Some(data) = shared_data() else { return };
    let env = TestEnv::new();
    let root = data.join("edge_cases");
    let root = root.to_str().unwrap();
    env.ok(&[
        "im2rec",
        "e",
        root,
        "--list",
        "--recursive",
        "--no-shuffle",
        "--exts",
        ".jpg",
        ".jpeg",
        ".png",
        ".webp",
        ".tif",
        ".gif",
        ".bmp",
    ]);
    let listed = String::from_utf8(env.read("e.lst"))
        .unwrap()
        .lines()
        .count();
    for mode in [
        &["--resize", "64"][..],
        &["--pass-through"][..],
        &["--color", "-1", "--encoding", ".png"][..],
    ] {
        let mut args = vec!["im2rec", "e", root, "--json"];
        args.extend_from_slice(mode);
        let out = env.ok(&args);
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let (images, skipped) = (
            s[0]["images"].as_u64().unwrap(),
            s[0]["skipped"].as_u64().unwrap(),
        );
        assert_eq!(images + skipped, listed as u64);
        let err = stderr(&out);
        // (truncated_jpeg.jpg is progressive, cut after a scan: with an end
        // marker put back it would decode, blurred, without a warning)
        for broken in ["truncated_jpeg.jpg", "ultrahdr.jpg"] {
            assert!(
                err.contains(broken),
                "{mode:?}: {broken} not skipped: {err}"
            );
        }
        if mode[0] != "--pass-through" {
            // scrambled scan data: decodes with a warning, must not be packed
            assert!(err.contains("hopper_bad_exif.jpg"), "{err}");
            assert_eq!(skipped, 3, "{err}");
        }
        let out = env.run(&["verify", "e", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        // pass-through checks headers only: the scrambled-scan file goes in
        // as is, and verify (which decodes everything) flags it
        let expect_ok = if mode[0] == "--pass-through" {
            images - 1
        } else {
            images
        };
        assert_eq!(v["images_ok"].as_u64(), Some(expect_ok), "{v}");
    }
}

/// `--strict` makes skips problems: they are printed even with `-q`, and
/// `--json` names them; `inspect --limit 0` prints no record.
#[test]
fn strict_skips_are_said_with_quiet_and_named_in_json() {
    let env = TestEnv::new();
    env.synth("imgs", 1, 3, 40, 30);
    env.write("imgs/class_0/bad.jpg", b"\xff\xd8\xff\xe0 not a JPEG");
    env.ok(&[
        "im2rec",
        "p",
        "imgs",
        "--list",
        "--recursive",
        "--no-shuffle",
    ]);
    let out = env.run(&["im2rec", "p", "imgs", "--strict", "-q"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("class_0/bad.jpg"), "{}", stderr(&out));
    let out = env.run(&["im2rec", "p", "imgs", "--json", "-q"]);
    let s: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let items = s[0]["skipped_items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{s}");
    assert!(
        items[0].as_str().unwrap().contains("bad.jpg (")
            && items[0].as_str().unwrap().contains("p.lst:"),
        "{s}"
    );
    let out = env.ok(&["inspect", "p.rec", "--limit", "0", "--json"]);
    assert_eq!(stdout(&out), "");
    let out = env.ok(&["inspect", "p.rec", "--limit", "1", "--json"]);
    assert_eq!(stdout(&out).lines().count(), 1);
}
