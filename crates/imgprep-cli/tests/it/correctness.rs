//! Numbers handed to a trainer are right or refused with a reason: label
//! maps, splits, pixels, image_shape, unlabelled-by-accident layouts,
//! messages that point at the right place, output hygiene, the per-item
//! table.

use crate::env::{assert_stderr_has, stderr, stdout, TestEnv};
use recordio::{ImageRecord, Labels, RecordReader};
use std::collections::BTreeMap;

fn manifest(env: &TestEnv, out: &str) -> serde_json::Value {
    serde_json::from_slice(&env.read(&format!("{out}/manifest.json"))).unwrap()
}

fn hyper(env: &TestEnv, out: &str) -> serde_json::Value {
    serde_json::from_slice(&env.read(&format!("{out}/complete/hyperparameters.json"))).unwrap()
}

/// (id, labels) of every record.
fn records(env: &TestEnv, rel: &str) -> Vec<(u64, Vec<f32>)> {
    let bytes = env.read(rel);
    let mut r = RecordReader::new(&bytes[..]);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while r.read_record(&mut buf).unwrap().is_some() {
        let (h, _) = ImageRecord::parse(&buf).unwrap();
        let labels = match h.labels {
            Labels::Scalar(l) => vec![l],
            Labels::Packed(v) => v,
        };
        out.push((h.id, labels));
    }
    out
}

/// Class names of the manifest's label map, in id order.
fn label_names(m: &serde_json::Value) -> Vec<String> {
    m["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect()
}

fn lst_recipe(label_format: &str) -> String {
    format!(
        "name = \"ml\"\n[[sources]]\ntype = \"lst\"\nfile = \"train.lst\"\nroot = \"images\"\nsplit = \"train\"\n{label_format}\n\
         [[sources]]\ntype = \"lst\"\nfile = \"val.lst\"\nroot = \"images\"\nsplit = \"validation\"\n{label_format}\n\
         [transform]\nresize = 24\n[[outputs]]\nformat = \"recordio\"\npack_label = true\n"
    )
}

/// Writes images/img_K.jpg and train.lst / val.lst from label columns.
fn lists(env: &TestEnv, rows: &[&[f64]]) {
    env.synth("pool", 1, rows.len(), 32, 24);
    let (mut train, mut val) = (String::new(), String::new());
    for (k, labels) in rows.iter().enumerate() {
        std::fs::rename(env.path(&format!("pool/class_0/img_{k:05}.jpg")), {
            std::fs::create_dir_all(env.path("images")).unwrap();
            env.path(&format!("images/img_{k}.jpg"))
        })
        .unwrap();
        let cols: Vec<String> = labels.iter().map(|v| format!("{v}")).collect();
        let line = format!("{k}\t{}\timg_{k}.jpg\n", cols.join("\t"));
        if k % 4 == 3 {
            val.push_str(&line);
        } else {
            train.push_str(&line);
        }
    }
    env.write("train.lst", train.as_bytes());
    env.write("val.lst", val.as_bytes());
}

/// Multi-hot `.lst` labels: num_classes is the width (a class no image has
/// still counts), every record carries the full vector.
/// A split asked for that gets no item says so, however small its share;
/// and the drift warning gives the shares written, as the summary does,
/// when skipped items moved them.
#[test]
fn split_shares_written_are_warned_about() {
    let env = TestEnv::new();
    env.synth("photos", 3, 20, 32, 24);
    let recipe = |ratios: &str| {
        format!(
            "name = \"s\"\non_error = \"skip\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n\
             [split]\n{ratios}\n[transform]\nresize = 16\n"
        )
    };
    env.write(
        "tiny.toml",
        recipe("train = 0.98\nvalidation = 0.02").as_bytes(),
    );
    let out = env.ok(&["build", "tiny.toml", "--out", "o"]);
    assert_stderr_has(&out, "split validation got no items, 2.0 % was asked for");
    assert!(!env.path("o/complete/recordio/validation.rec").exists());
    // shards of a set whose small split is fine: a shard's slice of it may
    // hold none of it, which is not the split being lost
    env.write(
        "few.toml",
        recipe("train = 0.94\nvalidation = 0.06").as_bytes(),
    );
    let whole = env.ok(&["build", "few.toml", "--out", "w"]);
    assert!(!stderr(&whole).contains("got"), "{}", stderr(&whole));
    for i in 0..8 {
        let shard = format!("{i}/8");
        let out = env.ok(&[
            "build",
            "few.toml",
            "--out",
            &format!("s{i}"),
            "--shard",
            &shard,
        ]);
        assert!(
            !stderr(&out).contains("got no items"),
            "{shard}: {}",
            stderr(&out)
        );
    }
    // the 6 validation images of class 0 do not decode: planned 30 %,
    // written 12 of 54 (22.2 %)
    env.write(
        "half.toml",
        recipe("train = 0.7\nvalidation = 0.3").as_bytes(),
    );
    env.ok(&["build", "half.toml", "--out", "h"]);
    let items = std::fs::read_to_string(env.path("h/items.csv")).unwrap();
    let val: Vec<&str> = items
        .lines()
        .filter(|l| l.contains(",validation,") && l.contains("class_0/"))
        .collect();
    assert_eq!(val.len(), 6, "{items}");
    let mut broken = 0;
    for line in &val {
        let rel = line.split(',').find(|c| c.contains("class_0/")).unwrap();
        let rel = rel.rsplit("photos/").next().unwrap();
        env.write(&format!("photos/{rel}"), b"not a jpeg");
        broken += 1;
    }
    assert_eq!(broken, 6);
    let out = env.ok(&["build", "half.toml", "--out", "h2"]);
    let m = manifest(&env, "h2");
    let got = m["split_ratios"]["validation"]["achieved"]
        .as_f64()
        .unwrap();
    assert_stderr_has(
        &out,
        &format!(
            "split validation got {:.1} % of the items, 30.0 % was asked for (6 items were skipped)",
            got * 100.0
        ),
    );
}

#[test]
fn multi_hot_lists_give_the_width_as_num_classes() {
    let env = TestEnv::new();
    // 5 columns; column 4 is never set; one row has a single label
    let rows: Vec<&[f64]> = vec![
        &[1., 0., 1., 0., 0.],
        &[0., 1., 0., 0., 0.],
        &[1., 1., 0., 1., 0.],
        &[0., 0., 1., 0., 0.],
        &[0., 1., 1., 0., 0.],
        &[1., 0., 0., 1., 0.],
        &[0., 0., 0., 1., 0.],
        &[1., 0., 0., 0., 0.],
    ];
    lists(&env, &rows);
    env.write("r.toml", lst_recipe("").as_bytes());
    env.ok(&["build", "r.toml", "--out", "o"]);
    let m = manifest(&env, "o");
    assert_eq!(m["num_classes"], 5);
    assert_eq!(m["multi_label"], true);
    assert_eq!(m["variants"]["complete"]["label_width"], 5);
    assert_eq!(hyper(&env, "o")["num_classes"], "5");
    assert_eq!(hyper(&env, "o")["multi_label"], "1");
    assert_eq!(hyper(&env, "o")["num_training_samples"], "6");
    for (id, labels) in records(&env, "o/complete/recordio/train.rec") {
        let want: Vec<f32> = rows[id as usize].iter().map(|&v| v as f32).collect();
        assert_eq!(labels, want, "record {id}");
    }
}

/// Label-id lists: the true class count (ids on multi-label lines count),
/// written as multi-hot vectors of that width.
#[test]
fn id_lists_count_every_class() {
    let env = TestEnv::new();
    // ids 0..=6; 5 and 6 appear only on multi-label lines
    let rows: Vec<&[f64]> = vec![
        &[0., 5.],
        &[1., 6.],
        &[2., 3.],
        &[4., -1.],
        &[0., 1.],
        &[2., 5.],
        &[3., 6.],
        &[4., 0.],
    ];
    lists(&env, &rows);
    env.write("r.toml", lst_recipe("").as_bytes());
    env.ok(&["build", "r.toml", "--out", "o"]);
    let m = manifest(&env, "o");
    assert_eq!(m["num_classes"], 7, "{}", m["labels"]);
    for (id, labels) in records(&env, "o/complete/recordio/train.rec") {
        assert_eq!(labels.len(), 7);
        for &c in rows[id as usize].iter().filter(|&&c| c >= 0.0) {
            assert_eq!(labels[c as usize], 1.0, "record {id}: {labels:?}");
        }
        assert_eq!(
            labels.iter().filter(|&&v| v == 1.0).count(),
            rows[id as usize].iter().filter(|&&c| c >= 0.0).count()
        );
    }
}

/// 0/1 columns that could also be lists of distinct ids: asked, not guessed.
#[test]
fn ambiguous_label_columns_ask_for_label_format() {
    let env = TestEnv::new();
    let rows: Vec<&[f64]> = vec![&[0., 1.], &[1., 0.], &[0., 1.], &[1., 0.]];
    lists(&env, &rows);
    env.write("r.toml", lst_recipe("").as_bytes());
    let out = env.run(&["build", "r.toml", "--out", "o"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_stderr_has(&out, "label_format");
    env.write(
        "r.toml",
        lst_recipe("label_format = \"multi-hot\"").as_bytes(),
    );
    env.ok(&["build", "r.toml", "--out", "o"]);
    assert_eq!(manifest(&env, "o")["num_classes"], 2);
    env.write("r.toml", lst_recipe("label_format = \"ids\"").as_bytes());
    env.ok(&["build", "r.toml", "--out", "o2"]);
    assert_eq!(manifest(&env, "o2")["num_classes"], 2);
}

/// A CSV row whose file is missing (so skipped) adds no class, and ids of
/// the classes after it do not move; a class whose only image does not
/// decode is gone too.
#[test]
fn skipped_items_add_no_class() {
    let env = TestEnv::new();
    env.synth("imgs", 3, 4, 32, 24);
    let mut csv = String::from("img,classname\n");
    for c in 0..3 {
        for i in 0..4 {
            csv.push_str(&format!("class_{c}/img_{i:05}.jpg,class_{c}\n"));
        }
    }
    // a typo'd class on a row whose file is missing, sorting before class_1
    csv.push_str("class_0/nope.jpg,class_0x\n");
    // a class whose only image is broken
    env.write("imgs/broken/b.jpg", b"\xff\xd8\xff\xe0 not really a jpeg");
    csv.push_str("broken/b.jpg,class_00\n");
    env.write("index.csv", csv.as_bytes());
    env.write(
        "r.toml",
        b"name = \"c\"\non_error = \"skip\"\n[[sources]]\ntype = \"csv\"\nfile = \"index.csv\"\nroot = \"imgs\"\npath = \"img\"\nlabel = \"classname\"\n",
    );
    let out = env.ok(&["build", "r.toml", "--out", "o"]);
    let m = manifest(&env, "o");
    assert_eq!(label_names(&m), ["class_0", "class_1", "class_2"]);
    assert_eq!(m["num_classes"], 3);
    // the skips are named on stderr, not only counted
    let err = stderr(&out);
    assert!(err.contains("2 items skipped"), "{err}");
    assert!(err.contains("nope.jpg") && err.contains("b.jpg"), "{err}");
    // class_2's records carry id 2
    let lst = String::from_utf8(env.read("o/complete/recordio/train.lst")).unwrap();
    for line in lst.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let class: usize = f[2].split('/').next().unwrap()["class_".len()..]
            .parse()
            .unwrap();
        assert_eq!(f[1], format!("{class}.000000"), "{line}");
    }
}

/// A class-id file keeps its order (and says so); `labels.names` can be a
/// file; explicit names win and keep classes with no items.
#[test]
fn class_id_files_keep_their_order_and_names_can_be_a_file() {
    let env = TestEnv::new();
    env.ok(&[
        "synth",
        "tiny",
        "--layout",
        "tinyimagenet",
        "--classes",
        "4",
        "--per-class",
        "4",
        "--width",
        "16",
        "--height",
        "16",
    ]);
    let wnids: Vec<String> = String::from_utf8(env.read("tiny/wnids.txt"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let mut sorted = wnids.clone();
    sorted.sort();
    assert_ne!(wnids, sorted, "the fixture must not be sorted already");
    env.write(
        "t.toml",
        br#"name = "tiny"
[[sources]]
type = "metadata"
root = "tiny"
class_ids = "tiny/wnids.txt"
names = "tiny/words.txt"
splits = [
  { split = "train", folders = "train/{class}/images" },
  { split = "validation", annotations = "val/val_annotations.txt", images = "val/images" },
]
[transform]
encoding = "passthrough"
[[outputs]]
format = "tfrecord"
preset = "raw"
"#,
    );
    env.ok(&["build", "t.toml", "--out", "o"]);
    let m = manifest(&env, "o");
    assert_eq!(label_names(&m), wnids);
    assert!(
        m["label_order"].as_str().unwrap().contains("wnids.txt"),
        "{}",
        m["label_order"]
    );
    // names from a file, with a class no image has
    env.synth("photos", 2, 3, 24, 16);
    env.write(
        "classes.txt",
        b"# one per line\nclass_1\nclass_0\nclass_9\n",
    );
    env.write(
        "n.toml",
        b"name = \"n\"\n[labels]\nnames = \"classes.txt\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n",
    );
    env.ok(&["build", "n.toml", "--out", "n"]);
    let m = manifest(&env, "n");
    assert_eq!(label_names(&m), ["class_1", "class_0", "class_9"]);
    assert_eq!(m["num_classes"], 3);
    assert!(m["label_order"].as_str().unwrap().contains("classes.txt"));
}

fn drivers(env: &TestEnv, group: bool) {
    env.synth("imgs", 2, 12, 32, 24);
    let mut csv = String::from("subject,classname,img\r\n");
    for c in 0..2 {
        for i in 0..12 {
            csv.push_str(&format!("p{},class_{c},img_{i:05}.jpg\r\n", i % 3));
        }
    }
    env.write("index.csv", csv.as_bytes());
    let group = if group { "group = \"subject\"\n" } else { "" };
    env.write(
        "d.toml",
        format!(
            "name = \"d\"\n[[sources]]\ntype = \"csv\"\nfile = \"index.csv\"\nroot = \"imgs\"\n\
             path = \"{{classname}}/{{img}}\"\nlabel = \"classname\"\n{group}\n\
             [split]\nmethod = \"group\"\ntrain = 0.7\nvalidation = 0.3\n"
        )
        .as_bytes(),
    );
}

/// `method = "group"` with no group column is an error naming the setting
/// (it used to split per image and leak drivers); with too few groups for
/// the ratio the build says how far off the split is.
#[test]
fn group_splits_need_groups_and_report_drift() {
    let env = TestEnv::new();
    drivers(&env, false);
    let out = env.run(&["build", "d.toml", "--out", "o"]);
    assert_eq!(out.status.code(), Some(2));
    assert_stderr_has(&out, "group = \"COLUMN\"");
    assert!(!env.path("o/manifest.json").exists());
    drivers(&env, true);
    let out = env.ok(&["build", "d.toml", "--out", "o"]);
    // 3 drivers, 30 %: round(0.9) = 1 driver = 33.3 % of the items
    let m = manifest(&env, "o");
    let v = &m["split_ratios"]["validation"];
    assert_eq!(v["requested"], 0.3);
    assert!(
        (v["achieved"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9,
        "{v}"
    );
    assert_stderr_has(&out, "asked 30.0 %");
    // 3 of 10 groups on the wrong side of the ratio: a warning
    let mut csv = String::from("subject,classname,img\n");
    for i in 0..12 {
        let subject = if i < 10 {
            "p0".to_string()
        } else {
            format!("p{i}")
        };
        csv.push_str(&format!("{subject},class_0,img_{i:05}.jpg\n"));
    }
    env.write("index.csv", csv.as_bytes());
    let out = env.ok(&["build", "d.toml", "--out", "o2"]);
    assert_stderr_has(&out, "was asked for (whole groups are kept together");
    // groups of uneven size (one person with a quarter of the images): the
    // ratios hold in items, not only in numbers of groups
    env.synth("many", 1, 60, 16, 12);
    let mut csv = String::from("subject,img\n");
    for i in 0..60 {
        let subject = if i < 15 { 0 } else { 1 + i % 12 };
        csv.push_str(&format!("p{subject},class_0/img_{i:05}.jpg\n"));
    }
    env.write("uneven.csv", csv.as_bytes());
    env.write(
        "u.toml",
        b"name = \"u\"\nseed = 3\n[[sources]]\ntype = \"csv\"\nfile = \"uneven.csv\"\nroot = \"many\"\n\
          path = \"img\"\ngroup = \"subject\"\n[labels]\nunlabelled = true\n\
          [split]\nmethod = \"group\"\ntrain = 0.6\nvalidation = 0.2\ntest = 0.2\n",
    );
    env.ok(&["build", "u.toml", "--out", "o3"]);
    let m = manifest(&env, "o3");
    for (split, want) in [("train", 0.6), ("validation", 0.2), ("test", 0.2)] {
        let got = m["split_ratios"][split]["achieved"].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 0.05,
            "{split}: {got} for {want}: {}",
            m["split_ratios"]
        );
    }
}

/// Recipe errors point at the value itself, ratios print as people write
/// them, and CSV errors give the right line in CRLF files.
#[test]
fn messages_point_at_the_right_place() {
    let env = TestEnv::new();
    env.synth("photos", 2, 2, 24, 16);
    env.write(
        "r.toml",
        b"# train hard\nname = \"train\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n[split]\nvalidation = 0.1\ntrain = 1.5\n",
    );
    let out = env.run(&["build", "r.toml", "--out", "o"]);
    assert_stderr_has(&out, "r.toml:8:9: split.train = 1.5");
    env.write(
        "r.toml",
        b"name = \"x\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n[split]\ntrain = 0.7\nvalidation = 0.2\n",
    );
    let out = env.run(&["build", "r.toml", "--out", "o"]);
    let err = stderr(&out);
    assert!(
        err.contains("r.toml:5:1: split ratios add up to 0.9 "),
        "{err}"
    );
    assert!(!err.contains("0.8999"), "{err}");
    // a CSV written by Python's csv module (CRLF), bad quoting on line 4
    env.write(
        "i.csv",
        b"img,classname\r\nclass_0/img_00000.jpg,class_0\r\nclass_0/img_00001.jpg,class_0\r\n\"class_1/img_00000.jpg,class_1\r\n",
    );
    env.write(
        "c.toml",
        b"name = \"c\"\n[[sources]]\ntype = \"csv\"\nfile = \"i.csv\"\nroot = \"photos\"\npath = \"img\"\nlabel = \"nope\"\n",
    );
    let out = env.run(&["build", "c.toml", "--out", "o"]);
    assert_stderr_has(&out, "i.csv:1: no column \"nope\"");
    env.write(
        "i.csv",
        b"img,classname\r\nclass_0/img_00000.jpg,class_0\r\nclass_0/img_00001.jpg,class_0\r\nclass_1/img_00000.jpg\r\n",
    );
    env.write(
        "c.toml",
        String::from_utf8(env.read("c.toml"))
            .unwrap()
            .replace("nope", "classname")
            .as_bytes(),
    );
    let out = env.run(&["build", "c.toml", "--out", "o"]);
    assert_stderr_has(&out, "i.csv:4:");
}

/// The raw TFRecord preset stores the source's decoded pixels: bit-exact
/// without a resize (no hidden JPEG round trip), for JPEG and PNG sources,
/// whatever `encoding` the other outputs use.
#[test]
fn raw_pixels_are_the_decoded_source_pixels() {
    let env = TestEnv::new();
    env.synth("photos/a", 1, 3, 40, 30);
    env.ok(&[
        "synth",
        "photos/b",
        "--classes",
        "1",
        "--per-class",
        "3",
        "--width",
        "40",
        "--height",
        "30",
        "--format",
        "png",
    ]);
    env.write(
        "r.toml",
        b"name = \"raw\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n[transform]\nencoding = \"jpg\"\nquality = 50\n\
          [[outputs]]\nformat = \"recordio\"\n[[outputs]]\nformat = \"tfrecord\"\npreset = \"raw\"\nfilename = true\n",
    );
    env.ok(&["build", "r.toml", "--out", "o"]);
    let bytes = env.read("o/complete/tfrecord-raw/train-00000-of-00001.tfrecord");
    let mut r = tfrecord::RecordReader::new(&bytes[..]);
    let mut buf = Vec::new();
    let mut p = imgprep::image::Processor::new().unwrap();
    let spec = imgprep::image::ImageSpec::default();
    let mut n = 0;
    while r.read_record(&mut buf).unwrap().is_some() {
        let ex = tfrecord::decode_example(&buf).unwrap();
        let name = match &ex["image/filename"] {
            tfrecord::Feature::Bytes(v) => String::from_utf8(v[0].clone()).unwrap(),
            f => panic!("{f:?}"),
        };
        let raw = match &ex["image_raw"] {
            tfrecord::Feature::Bytes(v) => v[0].clone(),
            f => panic!("{f:?}"),
        };
        let source = env.read(&format!("photos/{name}"));
        let direct = p.decode(&source, &spec).unwrap().pixels.data;
        assert!(
            raw == direct,
            "{name}: raw pixels differ from a direct decode"
        );
        n += 1;
    }
    assert_eq!(n, 6);
}

/// image_shape is the outputs' one size; unresized photos of several sizes
/// get no image_shape (and a warning) unless the recipe sets one.
#[test]
fn image_shape_is_the_shared_size_or_set_by_the_user() {
    let env = TestEnv::new();
    env.synth("photos/big", 1, 2, 80, 60);
    env.synth("photos/small", 1, 2, 32, 24);
    let recipe = |extra: &str| {
        format!("name = \"s\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n{extra}")
    };
    env.write("r.toml", recipe("").as_bytes());
    let out = env.ok(&["build", "r.toml", "--out", "o"]);
    assert_stderr_has(&out, "2 different sizes");
    let hp = hyper(&env, "o");
    assert!(hp.get("image_shape").is_none(), "{hp}");
    assert!(manifest(&env, "o")["variants"]["complete"]["image_shape"].is_null());
    env.write(
        "r.toml",
        recipe("[hyperparameters]\nimage_shape = \"3,24,24\"\n").as_bytes(),
    );
    env.ok(&["build", "r.toml", "--out", "o"]);
    assert_eq!(hyper(&env, "o")["image_shape"], "3,24,24");
    env.write(
        "r.toml",
        recipe("[transform]\nresize = \"28x20\"\n").as_bytes(),
    );
    env.ok(&["build", "r.toml", "--out", "o"]);
    assert_eq!(hyper(&env, "o")["image_shape"], "3,20,28");
    env.write(
        "r.toml",
        recipe("[hyperparameters]\nimage_shape = \"3,x,24\"\n").as_bytes(),
    );
    let out = env.run(&["build", "r.toml", "--out", "o"]);
    assert_stderr_has(&out, "r.toml:6:15: image_shape");
    // color = "unchanged" with a grayscale photo among RGB ones: the one
    // channel count of image_shape is said to be the readers' RGB
    let mut gray = Vec::new();
    imgprep::image::Processor::new()
        .unwrap()
        .encode(
            imgprep::image::Pixels {
                width: 32,
                height: 24,
                channels: 1,
                data: (0..32 * 24).map(|i| (i % 251) as u8).collect(),
            },
            imgprep::image::Encoding::Jpeg { quality: 90 },
            &mut gray,
        )
        .unwrap();
    env.write("photos/small/gray.jpg", &gray);
    env.write(
        "r.toml",
        recipe("[transform]\nresize = \"28x20\"\ncolor = \"unchanged\"\n").as_bytes(),
    );
    let out = env.ok(&["build", "r.toml", "--out", "o"]);
    assert_stderr_has(&out, "kept the images' own channels (1 with 1 of 5 images)");
    assert_eq!(hyper(&env, "o")["image_shape"], "3,20,28");
}

/// Layouts that would come out unlabelled are refused with a hint; a
/// TinyImageNet-like tree is recognised; a forgotten --pack-label warns.
#[test]
fn unlabelled_by_accident_is_refused() {
    let env = TestEnv::new();
    env.synth("photos", 2, 3, 24, 16);
    // images directly in the folder, beside a CSV index
    env.synth("flatsrc", 1, 4, 24, 16);
    std::fs::rename(env.path("flatsrc/class_0"), env.path("flat")).unwrap();
    env.write("flat/labels.csv", b"img,label\n");
    let out = env.run(&["convert", "flat", "o", "--to", "recordio"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("no class sub-folders") && err.contains("labels.csv"),
        "{err}"
    );
    assert!(!env.path("o/manifest.json").exists());
    let out = env.run(&["init", "flat", "--output", "flat.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    env.ok(&["convert", "flat", "o", "--to", "recordio", "--unlabelled"]);
    assert_eq!(manifest(&env, "o")["num_classes"], 0);
    // a recipe whose items have no label at all
    env.write(
        "u.toml",
        b"name = \"u\"\n[[sources]]\ntype = \"folders\"\nroot = \"flat\"\n",
    );
    let out = env.run(&["build", "u.toml", "--out", "u"]);
    assert_stderr_has(&out, "unlabelled = true");
    // TinyImageNet: classes from wnids.txt, splits from the layout
    env.ok(&[
        "synth",
        "tiny",
        "--layout",
        "tinyimagenet",
        "--classes",
        "3",
        "--per-class",
        "4",
        "--width",
        "16",
        "--height",
        "16",
    ]);
    env.ok(&[
        "convert",
        "tiny",
        "t",
        "--to",
        "tfrecord",
        "--encoding",
        "passthrough",
    ]);
    let m = manifest(&env, "t");
    assert_eq!(m["num_classes"], 3);
    assert_eq!(m["split_method"], "source");
    let splits = &m["variants"]["complete"]["splits"];
    assert_eq!(splits["train"]["items"], 12);
    assert_eq!(splits["validation"]["items"], 3);
    assert!(label_names(&m).iter().all(|n| n.starts_with('n')), "{m}");
    // its train/ folder alone: class names without the shared /images part
    env.ok(&["convert", "tiny/train", "tt", "--to", "recordio"]);
    let names = label_names(&manifest(&env, "tt"));
    assert!(names.iter().all(|n| !n.contains('/')), "{names:?}");
    // init writes a metadata recipe for it, which builds
    env.ok(&["init", "tiny", "--output", "tiny.toml"]);
    env.ok(&["build", "tiny.toml", "--out", "ti"]);
    assert_eq!(manifest(&env, "ti")["num_classes"], 3);
    // im2rec: multi-column lists without --pack-label
    env.write(
        "ml.lst",
        b"0\t1\t0\tclass_0/img_00000.jpg\n1\t0\t1\tclass_1/img_00000.jpg\n",
    );
    let out = env.ok(&["im2rec", "ml.lst", "photos"]);
    assert_stderr_has(&out, "--pack-label");
    let out = env.ok(&["im2rec", "ml.lst", "photos", "--pack-label"]);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
}

/// inspect and verify say what a wrong input is, in plain words.
#[test]
fn wrong_inputs_are_named() {
    let env = TestEnv::new();
    env.synth("photos", 1, 2, 24, 16);
    env.ok(&["im2rec", "d", "photos", "--list", "--recursive"]);
    env.ok(&["im2rec", "d", "photos"]);
    for (args, needle) in [
        (vec!["verify", "d.idx"], "RecordIO index (.idx"),
        (vec!["inspect", "d.lst"], "im2rec image list"),
        (vec!["verify", "d.lst"], "imgprep verify d"),
        (
            vec!["inspect", "photos/class_0/img_00000.jpg"],
            "is a JPEG image",
        ),
        (vec!["verify", "photos"], "not an imgprep build output"),
        (vec!["verify", "missing.rec"], "missing.rec does not exist"),
        (vec!["inspect", "missing.rec"], "missing.rec does not exist"),
    ] {
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("magic"), "{args:?}: {err}");
    }
}

/// `--json` is a summary, a closed pipe ends quietly, warnings are one
/// table and `-q` silences them, OUT holds the dataset only.
#[test]
fn output_hygiene() {
    let env = TestEnv::new();
    env.synth("photos", 6, 10, 24, 16);
    // two named classes no image has: missing from every split of both
    // variants, which is one warning (a table), not one line each
    env.write(
        "r.toml",
        b"name = \"h\"\n[labels]\nnames = [\"class_0\", \"class_1\", \"class_2\", \"class_3\", \"class_4\", \"class_5\", \"x\", \"y\"]\n\
          [[sources]]\ntype = \"folders\"\nroot = \"photos\"\n[split]\ntrain = 0.9\nvalidation = 0.1\n\
          [[variants]]\nname = \"complete\"\n[[variants]]\nname = \"sample\"\ncount = 1\n[transform]\nresize = \"16x16\"\n",
    );
    let out = env.ok(&["build", "r.toml", "--out", "o", "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(stdout(&out).len() < 8000, "{}", stdout(&out));
    assert_eq!(s["dataset"]["num_classes"], 8);
    assert!(s["dataset"]["files"].is_u64(), "{s}");
    assert!(s["dataset"].get("skipped").is_some());
    let err = stderr(&out);
    assert_eq!(err.matches("warning:").count(), 1, "{err}");
    assert!(err.contains("classes with no item in a split"), "{err}");
    assert!(err.contains("sample/validation: 2 of 8: x, y"), "{err}");
    let out = env.ok(&["build", "r.toml", "--out", "o2", "-q"]);
    assert_eq!(stderr(&out), "");
    // only the dataset in OUT
    let mut names: Vec<String> = std::fs::read_dir(env.path("o"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["complete", "items.csv", "manifest.json", "sample"]);
    // a reader that goes away: no panic, exit 0
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_imgprep"))
        .args(["inspect", "o/complete/recordio/train.rec"])
        .current_dir(env.path(""))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Read;
        let mut first = [0u8; 10];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert!(out.status.success(), "{:?}", out.status);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_imgprep"))
        .args(["build", "r.toml", "--out", "o3", "--json"])
        .current_dir(env.path(""))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

/// OUT/items.csv says which file, labels and group went to which split and
/// variant, with the source's SHA-256 and each record's place; every place
/// points at the record of that item.
#[test]
fn the_item_table_traces_every_record() {
    let env = TestEnv::new();
    drivers(&env, true);
    env.write(
        "d.toml",
        (String::from_utf8(env.read("d.toml")).unwrap()
            + "[[variants]]\nname = \"complete\"\n[[variants]]\nname = \"sample\"\nfraction = 0.5\n\
               [[outputs]]\nformat = \"recordio\"\n[[outputs]]\nformat = \"tfrecord\"\nshard_records = 5\n")
            .as_bytes(),
    );
    env.ok(&["build", "d.toml", "--out", "o"]);
    let text = String::from_utf8(env.read("o/items.csv")).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let mut rows = 0;
    let mut split_of: BTreeMap<String, String> = BTreeMap::new();
    let mut recs: BTreeMap<String, Vec<(u64, Vec<f32>)>> = BTreeMap::new();
    for row in rdr.records() {
        let row = row.unwrap();
        rows += 1;
        let (variant, split, id, item) = (
            &row[col("variant")],
            &row[col("split")],
            &row[col("id")],
            &row[col("item")],
        );
        let source = env.read(&format!("imgs/{item}"));
        assert_eq!(
            &row[col("source_sha256")],
            imgprep::checksum::sha256_hex(&source)
        );
        // a group is in one split only
        let group = row[col("group")].to_string();
        if variant == "complete" {
            if let Some(s) = split_of.insert(group.clone(), split.to_string()) {
                assert_eq!(s, split, "group {group}");
            }
        }
        let (file, k) = row[col("recordio")].split_once('#').unwrap();
        let r = recs
            .entry(file.to_string())
            .or_insert_with(|| records(&env, &format!("o/{file}")));
        let (rid, labels) = &r[k.parse::<usize>().unwrap()];
        assert_eq!(rid.to_string(), id, "{item}");
        assert_eq!(labels[0].to_string(), row[col("label_ids")], "{item}");
        assert!(row[col("tfrecord-tfds")].contains(".tfrecord#"));
    }
    let m = manifest(&env, "o");
    let total: u64 = ["complete", "sample"]
        .iter()
        .flat_map(|v| {
            ["train", "validation"]
                .map(|s| m["variants"][v]["splits"][s]["items"].as_u64().unwrap_or(0))
        })
        .sum();
    assert_eq!(rows as u64, total);
    assert!(m["files"]["items.csv"]["sha256"].is_string());
    env.ok(&["verify", "o"]);
}

/// A path with a tab or a newline (legal in file names, fatal to a `.lst`)
/// is bad input, and a corrupt record file is a problem found (exit 1).
#[test]
fn tabs_in_paths_and_corrupt_records() {
    let env = TestEnv::new();
    env.synth("photos", 1, 2, 24, 16);
    std::fs::copy(
        env.path("photos/class_0/img_00000.jpg"),
        env.path("photos/class_0/a\tb.jpg"),
    )
    .unwrap();
    env.write(
        "i.csv",
        b"img,label\nclass_0/img_00000.jpg,a\nclass_0/img_00001.jpg,b\n\"class_0/a\tb.jpg\",b\n",
    );
    env.write(
        "r.toml",
        b"name = \"t\"\non_error = \"skip\"\n[[sources]]\ntype = \"csv\"\nfile = \"i.csv\"\nroot = \"photos\"\npath = \"img\"\nlabel = \"label\"\n",
    );
    env.ok(&["build", "r.toml", "--out", "o"]);
    let m = manifest(&env, "o");
    assert!(
        serde_json::to_string(&m["skipped"])
            .unwrap()
            .contains("tab or newline"),
        "{m}"
    );
    env.ok(&["verify", "o"]);
    let mut rec = env.read("o/complete/recordio/train.rec");
    rec.truncate(rec.len() - 7);
    env.write("bad.rec", &rec);
    let out = env.run(&["inspect", "bad.rec"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

/// num_training_samples counts the split named train; with no such split
/// it is left out (and said), never written as 0.
#[test]
fn no_train_split_means_no_num_training_samples() {
    let env = TestEnv::new();
    env.synth("photos", 2, 3, 32, 24);
    env.write(
        "r.toml",
        b"name = \"s\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\nsplit = \"training\"\n",
    );
    let out = env.ok(&["build", "r.toml", "--out", "o"]);
    assert_stderr_has(
        &out,
        "no split is named \"train\" (the splits are training)",
    );
    let hp = hyper(&env, "o");
    assert!(hp.get("num_training_samples").is_none(), "{hp}");
    assert_eq!(hp["num_classes"], "2");
    env.write(
        "r.toml",
        b"name = \"s\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\nsplit = \"train\"\n",
    );
    env.ok(&["build", "r.toml", "--out", "o"]);
    assert_eq!(hyper(&env, "o")["num_training_samples"], "6");
}

/// Several labels in one cell (`label_separator`) or in several columns: a
/// class named twice on a row is one label, counted once.
#[test]
fn a_class_named_twice_on_a_row_is_one_label() {
    let env = TestEnv::new();
    env.synth("photos", 2, 2, 32, 24);
    let files: Vec<String> = ["class_0", "class_1"]
        .iter()
        .flat_map(|c| (0..2).map(move |i| format!("{c}/img_{i:05}.jpg")))
        .collect();
    for f in &files {
        assert!(env.path(&format!("photos/{f}")).exists(), "{f}");
    }
    env.write(
        "index.csv",
        format!(
            "path,tags,more\n{},cat|cat,cat\n{},cat|dog,\n{},dog| dog,dog\n{},bird,\n",
            files[0], files[1], files[2], files[3]
        )
        .as_bytes(),
    );
    for (name, label) in [("sep", "\"tags\""), ("cols", "[\"tags\", \"more\"]")] {
        env.write(
            "r.toml",
            format!(
                "name = \"m\"\n[[sources]]\ntype = \"csv\"\nfile = \"index.csv\"\nroot = \"photos\"\n\
                 path = \"path\"\nlabel = {label}\nlabel_separator = \"|\"\nsplit = \"train\"\n\
                 [[outputs]]\nformat = \"tfrecord\"\n"
            )
            .as_bytes(),
        );
        env.ok(&["build", "r.toml", "--out", name]);
        let m = manifest(&env, name);
        let per_class = &m["variants"]["complete"]["splits"]["train"]["per_class"];
        assert_eq!(per_class["cat"], 2, "{name}: {per_class}");
        assert_eq!(per_class["dog"], 2, "{name}: {per_class}");
        assert_eq!(per_class["bird"], 1, "{name}: {per_class}");
        let items = String::from_utf8(env.read(&format!("{name}/items.csv"))).unwrap();
        assert!(
            items.contains(",cat,") || items.contains(",cat;"),
            "{items}"
        );
        assert!(
            !items.contains("cat;cat") && !items.contains("dog;dog"),
            "{items}"
        );
    }
}

/// Under split.method = "auto", items whose source gives them a split keep
/// it (held-out test images never go to train) and the ratios divide only
/// the others; a group with kept items stays with them.
#[test]
fn auto_keeps_the_splits_some_sources_give() {
    let env = TestEnv::new();
    env.synth("pool", 2, 10, 32, 24);
    env.synth("held", 2, 3, 32, 24);
    // other names than the pool's (items are named by their path)
    for c in ["class_0", "class_1"] {
        for i in 0..3 {
            std::fs::rename(
                env.path(&format!("held/{c}/img_{i:05}.jpg")),
                env.path(&format!("held/{c}/held_{i}.jpg")),
            )
            .unwrap();
        }
    }
    env.write(
        "r.toml",
        b"name = \"k\"\nseed = 5\n[[sources]]\ntype = \"folders\"\nroot = \"pool\"\n\
          [[sources]]\ntype = \"folders\"\nroot = \"held\"\nsplit = \"test\"\n\
          [split]\nmethod = \"auto\"\ntrain = 0.8\nvalidation = 0.2\n",
    );
    let out = env.ok(&["build", "r.toml", "--out", "o"]);
    assert_stderr_has(
        &out,
        "6 items keep the split their source gives them (test 6)",
    );
    let items = String::from_utf8(env.read("o/items.csv")).unwrap();
    let mut by_split: BTreeMap<String, usize> = BTreeMap::new();
    for row in items.lines().skip(1) {
        let cols: Vec<&str> = row.split(',').collect();
        assert_eq!(cols[3].contains("held_"), cols[1] == "test", "{row}");
        *by_split.entry(cols[1].to_string()).or_default() += 1;
    }
    assert_eq!(by_split["test"], 6, "{items}");
    assert_eq!(by_split["train"] + by_split["validation"], 20, "{items}");
    assert_eq!(by_split["validation"], 4, "{items}");
}

/// Class "a/b" is a folder inside class "a"'s folder in the folders
/// output: said, since first-level readers would label it "a".
#[test]
fn nested_class_folders_are_said() {
    let env = TestEnv::new();
    env.synth("src", 1, 2, 24, 16);
    let jpg = env.read("src/class_0/img_00000.jpg");
    env.write("photos/a/1.jpg", &jpg);
    env.write("photos/a/b/2.jpg", &jpg);
    env.write("photos/c/3.jpg", &jpg);
    env.write(
        "r.toml",
        b"name = \"n\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n\
          [transform]\nencoding = \"passthrough\"\n[[outputs]]\nformat = \"folders\"\n",
    );
    let out = env.ok(&["build", "r.toml", "--out", "o"]);
    assert_stderr_has(&out, "1 class folders lie inside another class's folder");
    assert_stderr_has(&out, "a/b inside a");
    // without a folders output there is nothing to say
    env.write(
        "r.toml",
        b"name = \"n\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n\
          [transform]\nencoding = \"passthrough\"\n[[outputs]]\nformat = \"recordio\"\n",
    );
    let out = env.ok(&["build", "r.toml", "--out", "o2"]);
    assert!(
        !stderr(&out).contains("inside another class"),
        "{}",
        stderr(&out)
    );
}
