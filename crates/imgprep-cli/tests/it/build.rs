//! `imgprep build`, `init`, `merge` and `verify OUT` on the seed stories' layouts.

use crate::env::{stderr, stdout, TestEnv};
use recordio::{ImageRecord, Labels, RecordReader};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn records(path: &Path) -> Vec<(u64, Labels)> {
    let bytes = std::fs::read(path).unwrap();
    let mut r = RecordReader::new(&bytes[..]);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while r.read_record(&mut buf).unwrap().is_some() {
        let (h, _) = ImageRecord::parse(&buf).unwrap();
        out.push((h.id, h.labels));
    }
    out
}

fn manifest(env: &TestEnv, out: &str) -> serde_json::Value {
    serde_json::from_slice(&env.read(&format!("{out}/manifest.json"))).unwrap()
}

/// Builds `recipe` twice: as is it must fail (exit 1, a problem found in the
/// data; stderr naming every needle); with `on_error = "skip"` it must
/// succeed. Returns the manifest.
fn fails_then_skips(env: &TestEnv, recipe: &str, needles: &[&str]) -> serde_json::Value {
    env.write("r.toml", recipe.as_bytes());
    let out = env.run(&["build", "r.toml", "--out", "o"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        needles.iter().all(|n| err.contains(n)),
        "{needles:?}: {err}"
    );
    env.write(
        "r.toml",
        format!("on_error = \"skip\"\n{recipe}").as_bytes(),
    );
    env.ok(&["build", "r.toml", "--out", "o"]);
    manifest(env, "o")
}

/// A CSV index split by driver: a CSV index `subject,classname,img`, images under
/// `imgs/train/{classname}/{img}`, drivers as groups.
fn drivers(env: &TestEnv) {
    env.synth("imgs/train", 3, 12, 96, 72);
    let mut csv = String::from("subject,classname,img\n");
    for c in 0..3 {
        let dir = env.path(&format!("imgs/train/class_{c}"));
        for i in 0..12 {
            std::fs::rename(
                dir.join(format!("img_{i:05}.jpg")),
                dir.join(format!("img_{c}{i}.jpg")),
            )
            .unwrap();
            csv.push_str(&format!("p{:03},class_{c},img_{c}{i}.jpg\n", i % 6));
        }
    }
    env.write("driver_imgs_list.csv", csv.as_bytes());
    env.write(
        "drivers.toml",
        br#"name = "drivers"
seed = 5590

[[sources]]
type = "csv"
file = "driver_imgs_list.csv"
root = "imgs/train"
path = "{classname}/{img}"
label = "classname"
group = "subject"

[split]
method = "group"
train = 0.7
validation = 0.3

[[variants]]
name = "complete"

[[variants]]
name = "sample"
fraction = 0.5

[transform]
resize = { area = 2000 }

[[outputs]]
format = "recordio"

[[outputs]]
format = "sagemaker-image"

[[outputs]]
format = "folders"
"#,
    );
}

/// A group that the CSV's own split column puts in two splits is refused
/// under every method that keeps the source's splits (it used to pass
/// under `source`, and under `auto` when every row had a split).
#[test]
fn a_group_in_two_source_splits_is_refused() {
    let env = TestEnv::new();
    env.synth("p", 2, 3, 32, 24);
    let mut csv = String::from("path,label,grp,split\n");
    // driver d0's two images: one in train, one in validation
    for (k, (class, group, split)) in [
        ("class_0", "d0", "train"),
        ("class_0", "d0", "validation"),
        ("class_0", "d1", "train"),
        ("class_1", "d2", "train"),
        ("class_1", "d3", "validation"),
        ("class_1", "d3", "validation"),
    ]
    .iter()
    .enumerate()
    {
        csv += &format!("{class}/img_{:05}.jpg,{class},{group},{split}\n", k % 3);
    }
    env.write("idx.csv", csv.as_bytes());
    for method in ["source", "auto"] {
        let t = format!(
            "name = \"g\"\n[[sources]]\ntype = \"csv\"\nfile = \"idx.csv\"\nroot = \"p\"\n\
             path = \"path\"\nlabel = \"label\"\ngroup = \"grp\"\nsplit_column = \"split\"\n\
             [split]\nmethod = \"{method}\"\n[[outputs]]\nformat = \"recordio\"\n"
        );
        env.write("g.toml", t.as_bytes());
        let out = env.run(&["build", "g.toml", "--out", method]);
        assert_eq!(out.status.code(), Some(2), "{method}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("group \"d0\" is in two splits")
                && stderr(&out).contains("idx.csv:3"),
            "{method}: {}",
            stderr(&out)
        );
        assert!(!env.path(method).join("manifest.json").exists());
    }
}

#[test]
fn group_split_keeps_every_driver_in_one_split() {
    let env = TestEnv::new();
    drivers(&env);
    env.ok(&["build", "drivers.toml", "--out", "out"]);
    let csv = String::from_utf8(env.read("driver_imgs_list.csv")).unwrap();
    let subject: BTreeMap<String, String> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (format!("{}/{}", f[1], f[2]), f[0].to_string())
        })
        .collect();
    let mut seen: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for split in ["train", "validation"] {
        let lst =
            String::from_utf8(env.read(&format!("out/complete/recordio/{split}.lst"))).unwrap();
        for line in lst.lines() {
            let path = line.rsplit('\t').next().unwrap();
            seen.entry(subject[path].clone()).or_default().insert(split);
        }
    }
    assert_eq!(seen.len(), 6);
    assert!(
        seen.values().all(|s| s.len() == 1),
        "a driver is in two splits: {seen:?}"
    );
    let m = manifest(&env, "out");
    // round(6 * 0.3) = 2 drivers for validation
    assert_eq!(
        m["variants"]["complete"]["splits"]["validation"]["groups"],
        2
    );
    assert_eq!(m["variants"]["complete"]["splits"]["train"]["groups"], 4);
    assert_eq!(m["variants"]["complete"]["splits"]["train"]["items"], 24);
    assert_eq!(
        m["variants"]["complete"]["hyperparameters"]["num_training_samples"],
        "24"
    );
    assert_eq!(
        m["variants"]["complete"]["hyperparameters"]["num_classes"],
        "3"
    );
    // area 2000 of 96x72 keeps 4:3: 52x39
    assert_eq!(m["variants"]["complete"]["image_shape"], "3,39,52");
    // the sample variant: half of each class of each split, drawn from that split
    let sample = &m["variants"]["sample"]["splits"]["train"];
    assert_eq!(sample["items"], 12);
    let train: BTreeSet<String> = String::from_utf8(env.read("out/complete/recordio/train.lst"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    for l in String::from_utf8(env.read("out/sample/recordio/train.lst"))
        .unwrap()
        .lines()
    {
        assert!(train.contains(l), "{l} is not in the complete train split");
    }
    // SageMaker image layout and class folders
    assert!(env
        .path("out/complete/sagemaker/train_lst/train.lst")
        .is_file());
    assert!(env
        .path("out/complete/sagemaker/validation/class_0")
        .is_dir());
    assert!(env.path("out/complete/folders/train/class_1").is_dir());
    let hp: serde_json::Value =
        serde_json::from_slice(&env.read("out/complete/hyperparameters.json")).unwrap();
    assert_eq!(hp["num_training_samples"], "24");
    // every file is in the manifest with its size and SHA-256 (summed while
    // writing); verify agrees, and catches a changed byte
    let files = m["files"].as_object().unwrap();
    let rec = &files["complete/recordio/train.rec"];
    let rec_path = env.path("out/complete/recordio/train.rec");
    let bytes = std::fs::read(&rec_path).unwrap();
    assert_eq!(rec["size"].as_u64().unwrap(), bytes.len() as u64);
    assert_eq!(
        rec["sha256"].as_str().unwrap(),
        imgprep::checksum::sha256_hex(&bytes)
    );
    env.ok(&["verify", "out"]);
    let mut bad = bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    std::fs::write(&rec_path, &bad).unwrap();
    assert_eq!(env.run(&["verify", "out"]).status.code(), Some(1));
}

#[test]
fn stratified_splits_are_within_one_item_per_class_and_deterministic() {
    let env = TestEnv::new();
    env.synth("photos", 3, 11, 40, 30);
    env.write(
        "r.toml",
        br#"name = "pets"
[[sources]]
type = "folders"
root = "photos"
[split]
train = 0.7
validation = 0.2
test = 0.1
[[outputs]]
format = "recordio"
[[outputs]]
format = "tfrecord"
[[outputs]]
format = "folders"
"#,
    );
    env.ok(&["build", "r.toml", "--out", "a", "--num-thread", "1"]);
    env.ok(&["build", "r.toml", "--out", "b", "--num-thread", "3"]);
    let m = manifest(&env, "a");
    for (split, share) in [("train", 0.7), ("validation", 0.2), ("test", 0.1)] {
        for c in 0..3 {
            let n = m["variants"]["complete"]["splits"][split]["per_class"][format!("class_{c}")]
                .as_f64()
                .unwrap_or(0.0);
            assert!((n - 11.0 * share).abs() <= 1.0, "{split} class_{c}: {n}");
        }
    }
    assert_eq!(m["split_method"], "stratified");
    // (the splits are written side by side with more than one thread)
    assert_same_tree(&env, "a", "b", "outputs depend on the thread count");
}

/// `method = "explicit"`: each group goes where `[split.assign]` lists it;
/// a group listed twice is refused, naming both splits (it used to land
/// quietly in one of them), and a name no item has is said.
#[test]
fn explicit_assignment_puts_each_group_where_listed() {
    let env = TestEnv::new();
    env.synth("frames", 2, 7, 32, 32);
    let mut csv = String::from("file\tprocedure\tsubject\n");
    for c in 0..2 {
        for i in 0..7 {
            csv.push_str(&format!("class_{c}/img_{i:05}.jpg\tclass_{c}\t{}\n", i + 1));
        }
    }
    env.write("frames.tsv", csv.as_bytes());
    env.write(
        "r.toml",
        br#"name = "live"
[[sources]]
type = "csv"
file = "frames.tsv"
root = "frames"
path = "file"
label = "procedure"
group = "subject"
[split]
method = "explicit"
[split.assign]
train = ["1", "2", "3", "4", "5"]
validation = ["6"]
test = ["7"]
"#,
    );
    env.ok(&["build", "r.toml", "--out", "o"]);
    let m = manifest(&env, "o");
    let s = &m["variants"]["complete"]["splits"];
    assert_eq!(
        (
            s["train"]["items"].as_u64(),
            s["validation"]["items"].as_u64(),
            s["test"]["items"].as_u64()
        ),
        (Some(10), Some(2), Some(2))
    );
    let text = String::from_utf8(env.read("r.toml")).unwrap();
    env.write(
        "twice.toml",
        text.replace(r#"validation = ["6"]"#, r#"validation = ["6", "3"]"#)
            .as_bytes(),
    );
    let out = env.run(&["build", "twice.toml", "--out", "t"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("twice.toml:")
            && err.contains(r#"group "3" is listed in train and in validation"#),
        "{err}"
    );
    env.write(
        "typo.toml",
        text.replace(r#"test = ["7"]"#, r#"test = ["07"]"#)
            .as_bytes(),
    );
    let out = env.ok(&["build", "typo.toml", "--out", "y"]);
    assert!(
        stderr(&out).contains(r#"split.assign.test lists group "07", which no item has"#),
        "{}",
        stderr(&out)
    );
}

/// A TinyImageNet-style tree: wnids.txt, wnids.txt, words.txt, train/{id}/images,
/// val/images + val_annotations.txt, unlabelled test/images.
#[test]
fn tinyimagenet_metadata_layout() {
    let env = TestEnv::new();
    env.synth("tmp", 3, 4, 64, 64);
    let ids = ["n01443537", "n01629819", "n01641577"];
    let mut ann = String::new();
    for (c, id) in ids.iter().enumerate() {
        for i in 0..4 {
            let src = env.read(&format!("tmp/class_{c}/img_{i:05}.jpg"));
            match i {
                0 => {
                    env.write(&format!("tiny/val/images/val_{c}.JPEG"), &src);
                    ann.push_str(&format!("val_{c}.JPEG\t{id}\t0\t0\t10\t10\n"));
                }
                1 => env.write(&format!("tiny/test/images/test_{c}.JPEG"), &src),
                _ => env.write(&format!("tiny/train/{id}/images/{id}_{i}.JPEG"), &src),
            }
        }
    }
    env.write("tiny/wnids.txt", ids.join("\n").as_bytes());
    env.write("tiny/words.txt", b"n01443537\tgoldfish, Carassius auratus\nn01629819\tEuropean fire salamander\nn01641577\tbullfrog\nn99999999\tnot used\n");
    env.write("tiny/val/val_annotations.txt", ann.as_bytes());
    env.write(
        "tiny.toml",
        br#"name = "tiny"
[[sources]]
type = "metadata"
root = "tiny"
class_ids = "tiny/wnids.txt"
names = "tiny/words.txt"
splits = [
  { split = "train", folders = "train/{class}/images" },
  { split = "validation", annotations = "val/val_annotations.txt", images = "val/images" },
  { split = "test", images = "test/images" },
]
[transform]
encoding = "passthrough"
"#,
    );
    env.ok(&["build", "tiny.toml", "--out", "o"]);
    let m = manifest(&env, "o");
    assert_eq!(m["split_method"], "source");
    assert_eq!(m["labels"][0]["human"], "goldfish, Carassius auratus");
    let s = &m["variants"]["complete"]["splits"];
    assert_eq!(
        (
            s["train"]["items"].as_u64(),
            s["validation"]["items"].as_u64(),
            s["test"]["items"].as_u64()
        ),
        (Some(6), Some(3), Some(3))
    );
    let test = records(&env.path("o/complete/recordio/test.rec"));
    assert!(
        test.iter().all(|(_, l)| *l == Labels::Scalar(-1.0)),
        "unlabelled test items get -1"
    );
    let val = records(&env.path("o/complete/recordio/validation.rec"));
    assert_eq!(val.len(), 3);
    // an image in val/images that the annotations do not list is skipped and
    // said, not passed over without a word
    env.write(
        "tiny/val/images/val_extra.JPEG",
        &env.read("tiny/val/images/val_0.JPEG"),
    );
    let out = env.ok(&["build", "tiny.toml", "--out", "o"]);
    assert!(
        stderr(&out).contains("val/images/val_extra.JPEG"),
        "{}",
        stderr(&out)
    );
    let skipped = &manifest(&env, "o")["skipped"];
    assert_eq!(skipped[0]["item"], "val/images/val_extra.JPEG", "{skipped}");
    assert!(skipped[0]["reason"]
        .as_str()
        .unwrap()
        .contains("not listed in"));
    // on Unix a backslash is part of a name (it used to become a folder
    // separator in the item's name), and a name that is not UTF-8 is a
    // skip that says so (it used to be passed over without a word)
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let train = env.path("tiny/train/n01443537/images");
        let src = env.read("tiny/val/images/val_0.JPEG");
        std::fs::write(train.join("a\\b.JPEG"), &src).unwrap();
        std::fs::write(
            train.join(std::ffi::OsStr::from_bytes(b"bad\xff.JPEG")),
            &src,
        )
        .unwrap();
        let out = env.ok(&["build", "tiny.toml", "--out", "o"]);
        let items = String::from_utf8(env.read("o/items.csv")).unwrap();
        assert!(
            items.contains("train/n01443537/images/a\\b.JPEG"),
            "{items}"
        );
        let skipped = &manifest(&env, "o")["skipped"];
        let bad = skipped
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["item"].as_str().unwrap().contains("bad"))
            .unwrap_or_else(|| panic!("{skipped}"));
        assert_eq!(bad["reason"], "the name is not UTF-8", "{skipped}");
        assert!(stderr(&out).contains("not UTF-8"), "{}", stderr(&out));
    }
    // a class id with no folder of images: named with the file that lists it
    let mut wnids = String::from_utf8(env.read("tiny/wnids.txt")).unwrap();
    wnids.push_str("\nn09999999\n");
    env.write("tiny/wnids.txt", wnids.as_bytes());
    let out = env.run(&["build", "tiny.toml", "--out", "o"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no such folder for class \"n09999999\", which")
            && stderr(&out).contains("wnids.txt lists"),
        "{}",
        stderr(&out)
    );
}

/// Multi-label lists for SageMaker: given multi-label lists, packed, with num_classes from the data.
#[test]
fn multi_label_lists_are_packed() {
    let env = TestEnv::new();
    env.synth("images", 1, 4, 32, 32);
    env.write("train.lst", b"0\t1\t0\t1\tclass_0/img_00000.jpg\n1\t0\t1\t1\tclass_0/img_00001.jpg\n2\t1\t1\t0\tclass_0/img_00002.jpg\n");
    env.write("val.lst", b"3\t0\t0\t1\tclass_0/img_00003.jpg\n");
    env.write(
        "r.toml",
        br#"name = "ml"
[[sources]]
type = "lst"
file = "train.lst"
root = "images"
split = "train"
[[sources]]
type = "lst"
file = "val.lst"
root = "images"
split = "validation"
[[outputs]]
format = "recordio"
pack_label = true
"#,
    );
    env.ok(&["build", "r.toml", "--out", "o"]);
    let recs = records(&env.path("o/complete/recordio/train.rec"));
    assert_eq!(recs.len(), 3);
    assert!(
        recs.iter()
            .any(|(_, l)| *l == Labels::Packed(vec![1.0, 0.0, 1.0])),
        "{recs:?}"
    );
    let m = manifest(&env, "o");
    assert_eq!(
        m["variants"]["complete"]["hyperparameters"]["multi_label"],
        "1"
    );
    assert_eq!(
        m["variants"]["complete"]["hyperparameters"]["num_training_samples"],
        "3"
    );
}

#[test]
fn recipe_errors_name_file_line_and_column() {
    let env = TestEnv::new();
    env.synth("photos", 1, 2, 16, 16);
    env.write(
        "r.toml",
        b"name = \"x\"\nseeds = 3\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n",
    );
    let out = env.run(&["build", "r.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("r.toml:2:1") && stderr(&out).contains("seeds"),
        "{}",
        stderr(&out)
    );
    env.write("r.toml", b"name = \"x\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n[transform]\nquality = 400\n");
    let out = env.run(&["build", "r.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("r.toml:6"), "{}", stderr(&out));
    // an unknown key of a second source: its own line, not the first
    // source's header
    let two = "name = \"x\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n\
               [[sources]]\ntype = \"folders\"\nroot = \"photos\"\nbogus = 3\n";
    env.write("r.toml", two.as_bytes());
    let out = env.run(&["build", "r.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("r.toml:8:1: unknown field `bogus`"),
        "{}",
        stderr(&out)
    );
    // a wrong value in the second source: that source's header
    env.write("r.toml", two.replace("bogus = 3", "exts = 5").as_bytes());
    let out = env.run(&["build", "r.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("r.toml:5:1: invalid type"),
        "{}",
        stderr(&out)
    );
    // a value of neither form a setting takes: the forms, not a Rust type
    for (setting, said) in [
        ("[transform]\nresize = -5", "resize takes a whole number"),
        ("[labels]\nnames = 5", "names takes a list of class names"),
    ] {
        let text = format!(
            "name = \"x\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n{setting}\n"
        );
        env.write("r.toml", text.as_bytes());
        let out = env.run(&["build", "r.toml"]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains(said), "{}", stderr(&out));
        assert!(!stderr(&out).contains("untagged"), "{}", stderr(&out));
    }
}

#[test]
fn missing_files_fail_or_are_counted_skips() {
    let env = TestEnv::new();
    env.synth("imgs", 1, 3, 16, 16);
    env.write("i.csv", b"path,label\nclass_0/img_00000.jpg,a\nclass_0/nope.jpg,a\nclass_0/img_00001.jpg,b\nclass_0/img_00001.jpg,b\n");
    let recipe = "name = \"x\"\n[[sources]]\ntype = \"csv\"\nfile = \"i.csv\"\nroot = \"imgs\"\npath = \"path\"\nlabel = \"label\"\n";
    let m = fails_then_skips(&env, recipe, &["i.csv:3", "nope.jpg"]);
    let reasons: Vec<String> = m["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reason"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("does not exist"))
            && reasons.iter().any(|r| r.contains("duplicate"))
    );
}

/// Files under `dir`, relative, with contents.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn summary(env: &TestEnv, args: &[&str]) -> serde_json::Value {
    let out = env.ok(&[args, &["--json"]].concat());
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn rebuilds_are_incremental_and_equal_to_clean_builds() {
    let env = TestEnv::new();
    drivers(&env);
    let first = summary(&env, &["build", "drivers.toml", "--out", "o"]);
    assert_eq!(first["processed"], 36);
    let again = summary(&env, &["build", "drivers.toml", "--out", "o"]);
    assert_eq!(again["up_to_date"], true);
    assert_eq!(again["processed"], 0);
    // change one image, remove one (from the index), add one
    let other = env.read("imgs/train/class_1/img_10.jpg");
    env.write("imgs/train/class_0/img_00.jpg", &other);
    let csv = String::from_utf8(env.read("driver_imgs_list.csv")).unwrap();
    let csv = csv.replace("p001,class_2,img_21.jpg\n", "") + "p005,class_2,extra.jpg\n";
    env.write(
        "imgs/train/class_2/extra.jpg",
        &env.read("imgs/train/class_2/img_20.jpg"),
    );
    env.write("driver_imgs_list.csv", csv.as_bytes());
    let third = summary(&env, &["build", "drivers.toml", "--out", "o"]);
    assert_eq!(third["processed"], 2, "{third}");
    assert_eq!(third["cached"], 34);
    env.ok(&["build", "drivers.toml", "--out", "clean"]);
    assert_same_tree(&env, "o", "clean", "");
}

/// A 24-bit BMP of `w` x `h` pixels of one colour: files of one size
/// whatever their pixels.
fn bmp(w: u32, h: u32, rgb: [u8; 3]) -> Vec<u8> {
    let row = (w * 3).div_ceil(4) * 4;
    let size = 54 + row * h;
    let mut v = b"BM".to_vec();
    for x in [size, 0, 54, 40, w, h] {
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&24u16.to_le_bytes());
    for x in [0u32, row * h, 2835, 2835, 0, 0] {
        v.extend_from_slice(&x.to_le_bytes());
    }
    for _ in 0..h {
        let mut line: Vec<u8> = (0..w).flat_map(|_| [rgb[2], rgb[1], rgb[0]]).collect();
        line.resize(row as usize, 0);
        v.extend(line);
    }
    v
}

/// A pass-through rebuild reads only the sources that changed: the header
/// check and SHA-256 of the others come from the last build's notes, by
/// their prints after the build linked them into its outputs. What it
/// writes is a clean build's, also when a file is rewritten with its old
/// size and time, and when the pixel limit is lowered.
#[test]
fn passthrough_rebuilds_read_only_the_sources_that_changed() {
    let env = TestEnv::new();
    for class in ["a", "b"] {
        for i in 0..4u8 {
            let big = if i == 0 { 40 } else { 16 };
            env.write(
                &format!("photos/{class}/{i}.bmp"),
                &bmp(big, 12, [200, 30 * i, 30]),
            );
        }
    }
    let recipe = |limit: &str| {
        format!(
            "name = \"pt\"\non_error = \"skip\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n\
             exts = [\".bmp\"]\n[split]\ntrain = 1.0\n[transform]\nencoding = \"passthrough\"\n{limit}\
             [[outputs]]\nformat = \"folders\"\n[[outputs]]\nformat = \"recordio\"\n"
        )
    };
    env.write("r.toml", recipe("").as_bytes());
    let first = summary(&env, &["build", "r.toml", "--out", "o"]);
    assert_eq!(first["processed"], 8, "{first}");
    // the class folders hold links to the sources (which changes their
    // change times): the next build still knows them
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(env.path("photos/a/1.bmp"))
            .unwrap()
            .nlink(),
        2
    );
    env.write("photos/a/1.bmp", &bmp(16, 12, [1, 2, 3]));
    let second = summary(&env, &["build", "r.toml", "--out", "o"]);
    assert_eq!(
        (second["processed"].as_u64(), second["cached"].as_u64()),
        (Some(1), Some(7)),
        "{second}"
    );
    env.ok(&["build", "r.toml", "--out", "clean1"]);
    assert_same_tree(&env, "o", "clean1", "after one source changed");
    // (the clean build linked the sources too, which changed their change
    // times: the next build of o reads them all again, and notes them)
    let relinked = summary(&env, &["build", "r.toml", "--out", "o"]);
    assert_eq!(relinked["processed"], 8, "{relinked}");
    // other bytes, the old size and modification time
    let path = env.path("photos/b/2.bmp");
    let before = std::fs::metadata(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    env.write("photos/b/2.bmp", &bmp(16, 12, [9, 9, 9]));
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_times(std::fs::FileTimes::new().set_modified(before.modified().unwrap()))
        .unwrap();
    drop(f);
    let third = summary(&env, &["build", "r.toml", "--out", "o"]);
    assert_eq!(third["processed"], 1, "{third}");
    env.ok(&["build", "r.toml", "--out", "clean2"]);
    assert_same_tree(&env, "o", "clean2", "after a same-size, same-time rewrite");
    env.ok(&["build", "r.toml", "--out", "o"]);
    // a lower pixel limit leaves out the larger images, as a clean build does
    env.write("r.toml", recipe("max_pixels = 300\n").as_bytes());
    let fourth = summary(&env, &["build", "r.toml", "--out", "o"]);
    assert_eq!(fourth["processed"], 0, "{fourth}");
    env.ok(&["build", "r.toml", "--out", "clean3"]);
    assert_same_tree(&env, "o", "clean3", "after max_pixels was lowered");
    let m: serde_json::Value = serde_json::from_slice(&env.read("o/manifest.json")).unwrap();
    assert_eq!(
        m["skipped"].as_array().unwrap().len(),
        2,
        "{}",
        m["skipped"]
    );
}

/// A source rewritten with other bytes but its old size and modification
/// time (as `cp -p`, `tar x` or `rsync -t` leave a file, or another file of
/// the same size moved into its place) is made again: its change time and
/// inode are part of what the item cache and "up to date" go by.
#[test]
fn a_source_rewritten_with_its_old_size_and_time_is_made_again() {
    let env = TestEnv::new();
    for (class, colours) in [
        ("a", [[200, 30, 30], [210, 40, 40]]),
        ("b", [[30, 30, 200], [40, 40, 210]]),
    ] {
        for (i, c) in colours.iter().enumerate() {
            env.write(&format!("photos/{class}/{i}.bmp"), &bmp(16, 12, *c));
        }
    }
    env.write(
        "r.toml",
        br#"name = "same-size"
[[sources]]
type = "folders"
root = "photos"
exts = [".bmp"]
[split]
train = 1.0
[transform]
resize = "8x6"
[[outputs]]
format = "folders"
"#,
    );
    env.ok(&["build", "r.toml", "--out", "o"]);
    let path = env.path("photos/a/0.bmp");
    let before = std::fs::metadata(&path).unwrap();
    // other pixels, same size, the old modification time put back
    env.write("photos/a/0.bmp", &bmp(16, 12, [20, 220, 20]));
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_times(std::fs::FileTimes::new().set_modified(before.modified().unwrap()))
        .unwrap();
    drop(f);
    let after = std::fs::metadata(&path).unwrap();
    assert_eq!(
        (after.len(), after.modified().unwrap()),
        (before.len(), before.modified().unwrap())
    );
    let again = summary(&env, &["build", "r.toml", "--out", "o"]);
    assert_eq!(again["up_to_date"], false, "{again}");
    assert_eq!(again["processed"], 1, "{again}");
    env.ok(&["build", "r.toml", "--out", "clean"]);
    assert_same_tree(&env, "o", "clean", "after a same-size, same-time rewrite");
    // a file of the same size and time moved into another's place
    let other = env.path("photos/b/1.bmp");
    let t = std::fs::metadata(&other).unwrap().modified().unwrap();
    let f = std::fs::File::options()
        .write(true)
        .open(env.path("photos/b/0.bmp"))
        .unwrap();
    f.set_times(std::fs::FileTimes::new().set_modified(t))
        .unwrap();
    drop(f);
    env.ok(&["build", "r.toml", "--out", "o"]);
    std::fs::rename(&other, env.path("photos/b/0.bmp")).unwrap();
    env.write("photos/b/1.bmp", &bmp(16, 12, [40, 40, 210]));
    let again = summary(&env, &["build", "r.toml", "--out", "o"]);
    assert_eq!(again["up_to_date"], false, "{again}");
    let _ = std::fs::remove_dir_all(env.path("clean"));
    env.ok(&["build", "r.toml", "--out", "clean"]);
    assert_same_tree(
        &env,
        "o",
        "clean",
        "after a file moved into another's place",
    );
}

#[test]
fn many_files_are_looked_at_alike_on_one_thread_and_several() {
    // 2,200 items: enough for the catalog to look at the files' sizes and
    // times on --num-thread threads (one thread: one after another); with
    // two, the first build also prepares images beside the catalog
    let env = TestEnv::new();
    env.synth("photos", 2, 1100, 8, 8);
    env.write(
        "r.toml",
        br#"name = "many"
[[sources]]
type = "folders"
root = "photos"
[split]
train = 0.8
validation = 0.2
[transform]
encoding = "passthrough"
[[outputs]]
format = "recordio"
"#,
    );
    let one = summary(
        &env,
        &["build", "r.toml", "--out", "a", "--num-thread", "1"],
    );
    let two = summary(
        &env,
        &["build", "r.toml", "--out", "b", "--num-thread", "2"],
    );
    assert_eq!(
        (one["processed"].as_u64(), two["processed"].as_u64()),
        (Some(2200), Some(2200))
    );
    assert_same_tree(&env, "a", "b", "outputs depend on the thread count");
    // a changed file (other bytes, other size) is seen by the threads' look
    let other = env.read("photos/class_1/img_01000.jpg");
    env.write("photos/class_0/img_00007.jpg", &other);
    let again = summary(
        &env,
        &["build", "r.toml", "--out", "b", "--num-thread", "2"],
    );
    assert_eq!(again["up_to_date"], false, "{again}");
    // (pass-through items are read again, not cached; their records are copied)
    assert_eq!(again["records_reused"], 2199, "{again}");
    env.ok(&["build", "r.toml", "--out", "clean", "--num-thread", "2"]);
    assert_same_tree(&env, "b", "clean", "");
}

/// Edits that change outputs without touching an image or a label: a
/// row's group, the class order of a `labels.names` file. Each must make a
/// rebuild (not "up to date") equal to a clean build.
#[test]
fn group_and_class_order_edits_are_rebuilt() {
    let env = TestEnv::new();
    drivers(&env);
    env.write("names.txt", b"class_2\nclass_0\nclass_1\n");
    let recipe = String::from_utf8(env.read("drivers.toml")).unwrap();
    env.write(
        "drivers.toml",
        format!("{recipe}\n[labels]\nnames = \"names.txt\"\n").as_bytes(),
    );
    env.ok(&["build", "drivers.toml", "--out", "o"]);
    let same_as_clean = |what: &str| {
        let s = summary(&env, &["build", "drivers.toml", "--out", "o"]);
        assert_eq!(s["up_to_date"], false, "{what}: {s}");
        let _ = std::fs::remove_dir_all(env.path("clean"));
        env.ok(&["build", "drivers.toml", "--out", "clean"]);
        assert_same_tree(&env, "o", "clean", what);
    };
    // one driver's rows move to another driver
    let csv = String::from_utf8(env.read("driver_imgs_list.csv")).unwrap();
    env.write(
        "driver_imgs_list.csv",
        csv.replace("\np000,", "\np005,").as_bytes(),
    );
    same_as_clean("a group edited");
    env.write("names.txt", b"class_0\nclass_1\nclass_2\n");
    same_as_clean("the class order edited");
}

/// The output folders `a` and `b` hold the same files with the same bytes.
fn assert_same_tree(env: &TestEnv, a: &str, b: &str, what: &str) {
    let (x, y) = (tree(&env.path(a)), tree(&env.path(b)));
    assert_eq!(
        x.keys().collect::<Vec<_>>(),
        y.keys().collect::<Vec<_>>(),
        "{what}"
    );
    for (k, v) in &x {
        assert!(v == &y[k], "{what}: {k} differs in {a} and {b}");
    }
}

/// Every `.lst` line of the RecordIO outputs under `out`: (total, lines naming `rel`).
fn records_naming(env: &TestEnv, out: &str, rel: &str) -> (u64, u64) {
    let (mut total, mut naming) = (0, 0);
    for (path, bytes) in tree(&env.path(out)) {
        if path.contains("/recordio/") && path.ends_with(".lst") {
            for line in String::from_utf8(bytes).unwrap().lines() {
                total += 1;
                naming += line.ends_with(&format!("\t{rel}")) as u64;
            }
        }
    }
    (total, naming)
}

#[test]
fn rebuilds_copy_unchanged_records_and_never_trust_an_edited_record_file() {
    let env = TestEnv::new();
    drivers(&env);
    env.ok(&["build", "drivers.toml", "--out", "o"]);
    let clean_compare = |name: &str| {
        env.ok(&["build", "drivers.toml", "--out", name]);
        let (a, b) = (tree(&env.path("o")), tree(&env.path(name)));
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        for (k, v) in &a {
            assert!(v == &b[k], "{k} differs from a clean build");
        }
    };
    // one image changed: only its records are made again (the recipe and
    // OUT named another way, as from another folder: the same cache)
    env.write(
        "imgs/train/class_0/img_00.jpg",
        &env.read("imgs/train/class_1/img_10.jpg"),
    );
    let (recipe, out) = (env.path("drivers.toml"), env.path("o"));
    let second = summary(
        &env,
        &[
            "build",
            recipe.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let (total, changed) = records_naming(&env, "o", "class_0/img_00.jpg");
    assert!(changed >= 1 && total > 30, "{total} {changed}");
    assert_eq!(second["processed"], 1, "{second}");
    assert_eq!(second["records_reused"], total - changed, "{second}");
    clean_compare("clean1");

    // a record file edited after the build (same size) is not copied from
    // (its identity differs from the one its table was saved for)
    let rec = env.path("o/complete/recordio/train.rec");
    let mut bytes = std::fs::read(&rec).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&rec, &bytes).unwrap();
    env.write(
        "imgs/train/class_1/img_11.jpg",
        &env.read("imgs/train/class_2/img_20.jpg"),
    );
    let third = summary(&env, &["build", "drivers.toml", "--out", "o"]);
    let (_, changed) = records_naming(&env, "o", "class_1/img_11.jpg");
    let train = std::fs::read_to_string(env.path("o/complete/recordio/train.lst")).unwrap();
    let in_train = train.lines().count() as u64;
    let changed_in_train = train
        .lines()
        .filter(|l| l.ends_with("\tclass_1/img_11.jpg"))
        .count() as u64;
    assert_eq!(
        third["records_reused"],
        total - in_train - (changed - changed_in_train),
        "every file but the edited one is copied from: {third}"
    );
    clean_compare("clean2");

    // --drop-cache keeps no table (nor any image): the next build starts from scratch
    env.write(
        "imgs/train/class_2/img_20.jpg",
        &env.read("imgs/train/class_0/img_01.jpg"),
    );
    let dropped = summary(
        &env,
        &["build", "drivers.toml", "--out", "o", "--drop-cache"],
    );
    assert_eq!(dropped["up_to_date"], false, "{dropped}");
    let cache_dir = PathBuf::from(dropped["cache_dir"].as_str().unwrap());
    let left: Vec<_> = std::fs::read_dir(cache_dir.join("records"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "record tables left: {left:?}");
}

/// `image/filename` of every record of the plain TFRecord files under `dir`
/// of the output `out`, by variant and split (`complete/train`).
fn tfrecord_names(env: &TestEnv, out: &str, dir: &str) -> BTreeMap<String, Vec<String>> {
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, bytes) in tree(&env.path(out)) {
        if path.contains(dir) && path.ends_with(".tfrecord") {
            let variant = path.split('/').next().unwrap();
            let split = path.rsplit('/').next().unwrap().split('-').next().unwrap();
            let at = names.entry(format!("{variant}/{split}")).or_default();
            let mut r = tfrecord::RecordReader::new(&bytes[..]);
            let mut buf = Vec::new();
            while r.read_record(&mut buf).unwrap().is_some() {
                let ex = tfrecord::decode_example(&buf).unwrap();
                match &ex["image/filename"] {
                    tfrecord::Feature::Bytes(v) => {
                        at.push(String::from_utf8(v[0].clone()).unwrap())
                    }
                    f => panic!("{f:?}"),
                }
            }
        }
    }
    names
}

/// Records a rebuild can copy: those of items in the same variant and split
/// before and after, other than `changed`.
fn copyable(
    before: &BTreeMap<String, Vec<String>>,
    after: &BTreeMap<String, Vec<String>>,
    changed: &str,
) -> u64 {
    after
        .iter()
        .map(|(k, names)| {
            names
                .iter()
                .filter(|n| *n != changed && before.get(k).is_some_and(|b| b.contains(n)))
                .count() as u64
        })
        .sum()
}

/// TFRecord shards are rebuilt from the previous build's shards: records of
/// unchanged items are copied (also into another shard, when an item left
/// the index moved the shard boundaries), the rest made again, and the
/// result equals a clean build. Compressed shards are made again whole.
#[test]
fn tfrecord_rebuilds_copy_unchanged_records_across_shards() {
    let env = TestEnv::new();
    drivers(&env);
    // drivers assigned by name: removing an image below must not move a
    // driver to another split (a group split balances item counts, so it may)
    let recipe = String::from_utf8(env.read("drivers.toml"))
        .unwrap()
        .replace(
        "method = \"group\"\ntrain = 0.7\nvalidation = 0.3\n",
        "method = \"explicit\"\n[split.assign]\ntrain = [\"p000\", \"p001\", \"p002\", \"p003\"]\n\
             validation = [\"p004\", \"p005\"]\n",
    );
    assert!(recipe.contains("explicit"));
    let at = recipe.find("[[outputs]]").unwrap();
    let recipe = format!(
        "{}{}",
        &recipe[..at],
        "[[outputs]]\nformat = \"tfrecord\"\npreset = \"raw\"\nfilename = true\nshard_records = 4\n\n\
         [[outputs]]\nformat = \"tfrecord\"\ncompression = \"gzip\"\nshard_records = 4\n"
    );
    env.write("drivers.toml", recipe.as_bytes());
    let first = summary(&env, &["build", "drivers.toml", "--out", "o"]);
    assert_eq!(first["records_reused"], 0, "{first}");
    let raw_before = tfrecord_names(&env, "o", "/tfrecord-raw/");
    let n: usize = raw_before.values().map(|v| v.len()).sum();
    assert!(n > 36, "both variants: {n}");
    // one image changed, one left out of the index (every later record of
    // its split moves to another place, across shard boundaries)
    env.write(
        "imgs/train/class_0/img_00.jpg",
        &env.read("imgs/train/class_1/img_10.jpg"),
    );
    let csv = String::from_utf8(env.read("driver_imgs_list.csv")).unwrap();
    env.write(
        "driver_imgs_list.csv",
        csv.replace("p001,class_0,img_01.jpg\n", "").as_bytes(),
    );
    let second = summary(&env, &["build", "drivers.toml", "--out", "o"]);
    let raw_after = tfrecord_names(&env, "o", "/tfrecord-raw/");
    let all: Vec<&String> = raw_after.values().flatten().collect();
    assert!(all.iter().any(|n| *n == "class_0/img_00.jpg"));
    assert!(!all.iter().any(|n| *n == "class_0/img_01.jpg"));
    let want = copyable(&raw_before, &raw_after, "class_0/img_00.jpg");
    assert!(want as usize + 4 >= all.len(), "{want} of {}", all.len());
    assert_eq!(second["processed"], 1, "{second}");
    assert_eq!(
        second["records_reused"].as_u64().unwrap(),
        want,
        "only the raw records of unchanged items are copied: {second}"
    );
    env.ok(&["build", "drivers.toml", "--out", "clean"]);
    assert_same_tree(&env, "o", "clean", "");
    // a label change alone changes those records' features: made again
    let csv = String::from_utf8(env.read("driver_imgs_list.csv")).unwrap();
    env.write(
        "driver_imgs_list.csv",
        csv.replace("p002,class_0,img_02.jpg\n", "p002,class_1,img_02.jpg\n")
            .as_bytes(),
    );
    std::fs::rename(
        env.path("imgs/train/class_0/img_02.jpg"),
        env.path("imgs/train/class_1/img_02.jpg"),
    )
    .unwrap();
    let third = summary(&env, &["build", "drivers.toml", "--out", "o"]);
    let raw = tfrecord_names(&env, "o", "/tfrecord-raw/");
    assert_eq!(
        third["records_reused"].as_u64().unwrap(),
        copyable(&raw_after, &raw, "class_1/img_02.jpg"),
        "{third}"
    );
    env.ok(&["build", "drivers.toml", "--out", "clean2"]);
    assert_eq!(tree(&env.path("o")), tree(&env.path("clean2")));
}

#[test]
fn shards_merged_equal_one_build() {
    let env = TestEnv::new();
    drivers(&env);
    for i in 0..4 {
        env.ok(&[
            "build",
            "drivers.toml",
            "--out",
            &format!("s{i}"),
            "--shard",
            &format!("{i}/4"),
        ]);
    }
    let m = summary(
        &env,
        &[
            "merge",
            "drivers.toml",
            "--out",
            "merged",
            "s0",
            "s1",
            "s2",
            "s3",
        ],
    );
    assert_eq!(m["processed"], 0, "merge decodes nothing");
    env.ok(&["build", "drivers.toml", "--out", "one"]);
    let (a, b) = (tree(&env.path("merged")), tree(&env.path("one")));
    assert_eq!(a, b);
    // a missing shard is an error, not a silent re-decode
    let out = env.run(&[
        "merge",
        "drivers.toml",
        "--out",
        "partial",
        "s0",
        "s1",
        "s2",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("merge needs all 4 shard outputs; missing: 3/4"),
        "{}",
        stderr(&out)
    );
    // a shard given twice, a shard of another recipe: said as such
    let out = env.run(&[
        "merge",
        "drivers.toml",
        "--out",
        "twice",
        "s0",
        "s1",
        "s2",
        "s2",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("are both shard 2/4"),
        "{}",
        stderr(&out)
    );
    let recipe = String::from_utf8(env.read("drivers.toml")).unwrap();
    env.write(
        "drivers.toml",
        recipe.replace("seed = 5590", "seed = 5591").as_bytes(),
    );
    let out = env.run(&[
        "merge",
        "drivers.toml",
        "--out",
        "other",
        "s0",
        "s1",
        "s2",
        "s3",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("was built from another recipe"),
        "{}",
        stderr(&out)
    );
    for d in ["partial", "twice", "other"] {
        assert!(
            !env.path(d).exists(),
            "{d}: nothing is made for a refused merge"
        );
    }
}

#[test]
fn verify_out_catches_changed_files() {
    let env = TestEnv::new();
    drivers(&env);
    env.ok(&["build", "drivers.toml", "--out", "o"]);
    let p = "o/complete/sagemaker/train_lst/train.lst";
    let mut lst = env.read(p);
    lst.push(b'\n');
    env.write(p, &lst);
    let out = env.run(&["verify", "o"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("train.lst"), "{}", stderr(&out));
    // missing record files are problems found (exit 1), each named, not
    // an error that stops verify at the first
    std::fs::remove_file(env.path("o/complete/recordio/train.rec")).unwrap();
    std::fs::remove_file(env.path("o/complete/recordio/validation.idx")).unwrap();
    let out = env.run(&["verify", "o"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    for f in ["train.lst", "recordio/train.rec", "recordio/validation.idx"] {
        assert!(stderr(&out).contains(f), "{f}: {}", stderr(&out));
    }
}

#[test]
fn init_writes_a_recipe_that_builds() {
    let env = TestEnv::new();
    env.synth("photos", 2, 10, 32, 32);
    env.ok(&["init", "photos"]);
    assert!(String::from_utf8(env.read("imgprep.toml"))
        .unwrap()
        .contains("type = \"folders\""));
    assert_eq!(
        env.run(&["init", "photos"]).status.code(),
        Some(2),
        "no overwrite without --force"
    );
    env.ok(&["build", "imgprep.toml", "--out", "o"]);
    env.ok(&["verify", "o"]);
}

#[test]
fn labels_outside_an_explicit_label_map_are_errors() {
    let env = TestEnv::new();
    env.synth("photos", 3, 2, 16, 16);
    let recipe = "name = \"x\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n[labels]\nnames = [\"class_1\", \"class_0\"]\n";
    let m = fails_then_skips(&env, recipe, &["class_2", "label map"]);
    assert_eq!(m["labels"][0]["name"], "class_1", "explicit order is kept");
    assert_eq!(m["skipped"].as_array().unwrap().len(), 2);
}

/// A build killed with SIGKILL at any moment and run again gives exactly
/// what a clean build gives.
#[test]
fn killed_builds_rerun_to_a_correct_result() {
    let env = TestEnv::new();
    env.synth("photos", 4, 60, 320, 240);
    env.write(
        "r.toml",
        b"name = \"k\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n[split]\ntrain = 0.8\nvalidation = 0.2\n[transform]\nresize = 100\n[[outputs]]\nformat = \"recordio\"\n[[outputs]]\nformat = \"sagemaker-image\"\n",
    );
    env.ok(&["build", "r.toml", "--out", "clean"]);
    let want = tree(&env.path("clean"));
    for (n, delay_ms) in [10u64, 60, 150, 300].into_iter().enumerate() {
        let out = format!("k{n}");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_imgprep"))
            .args(["build", "r.toml", "--out", &out, "-q", "--num-thread", "1"])
            .current_dir(env.dir.path())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        env.ok(&["build", "r.toml", "--out", &out, "-q"]);
        let got = tree(&env.path(&out));
        let stray: Vec<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
        assert!(
            stray.iter().all(|k| k.contains(".partial")) || stray.is_empty(),
            "{stray:?}"
        );
        for (k, v) in &want {
            assert!(
                got.get(k) == Some(v),
                "after a kill at {delay_ms} ms, {k} differs from a clean build"
            );
        }
    }
}

/// The item cache holds what the last build used: entries of an earlier
/// transform or of removed images are removed.
#[test]
fn the_cache_keeps_only_what_the_last_build_used() {
    let env = TestEnv::new();
    env.synth("photos", 2, 4, 40, 30);
    let recipe = |resize: u32| {
        format!("name = \"c\"\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n[transform]\nresize = {resize}\n")
    };
    let entries = || -> usize {
        let dir = env.path("cache/items");
        let dir = std::fs::read_dir(dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    // (beside the items: the record tables, counted below,
                    // and the up-to-date stamp)
                    .filter(|s| s.file_name() != "records" && s.file_name() != "stamps")
                    .map(|s| std::fs::read_dir(s.path()).map(|e| e.count()).unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0)
    };
    // one record table per record file of the output
    let tables = || -> (usize, usize) {
        let items = std::fs::read_dir(env.path("cache/items"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let recs = tree(&env.path("out"))
            .keys()
            .filter(|k| k.ends_with(".rec"))
            .count();
        (
            std::fs::read_dir(items.join("records")).unwrap().count(),
            recs,
        )
    };
    let build = |resize: u32| -> serde_json::Value {
        env.write("r.toml", recipe(resize).as_bytes());
        let out = env.ok(&["build", "r.toml", "--out", "out", "--json"]);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let s = build(24);
    assert_eq!(
        (s["processed"].as_u64(), s["cache_pruned_bytes"].as_u64()),
        (Some(8), Some(0))
    );
    // the cache is not in the output folder: OUT holds the dataset only
    let cache_dir = s["cache_dir"].as_str().unwrap();
    assert!(
        cache_dir.starts_with(env.path("cache").to_str().unwrap()),
        "{s}"
    );
    assert!(!env.path("out/.imgprep-cache").exists());
    assert_eq!(entries(), 8);
    let (t, recs) = tables();
    assert!(t == recs && t > 0, "{t} tables for {recs} record files");
    let s = build(20);
    assert_eq!(s["processed"], 8);
    assert!(s["cache_pruned_bytes"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(entries(), 8);
    std::fs::remove_file(env.path("photos/class_0/img_00000.jpg")).unwrap();
    let s = build(20);
    assert_eq!(
        (s["processed"].as_u64(), s["cached"].as_u64()),
        (Some(0), Some(7))
    );
    assert_eq!(entries(), 7);
    let (t, recs) = tables();
    assert!(t == recs && t > 0, "{t} tables for {recs} record files");
}

/// A rebuild takes unchanged items' info from the list of entries the last
/// build used, not from each entry; an entry removed from the cache since
/// (by hand) is made again, and a list that is not one of ours is ignored.
/// Either way the result is a clean build's, in every output (folders read
/// every entry's bytes; RecordIO and TFRecord copy unchanged records).
#[test]
fn rebuilds_make_again_what_the_cache_no_longer_holds() {
    let env = TestEnv::new();
    env.synth("photos", 2, 5, 40, 30);
    env.write(
        "r.toml",
        b"name = \"c\"\nseed = 3\n[[sources]]\ntype = \"folders\"\nroot = \"photos\"\n\
          [split]\ntrain = 0.6\nvalidation = 0.4\n[transform]\nresize = 24\n\
          [[outputs]]\nformat = \"recordio\"\n[[outputs]]\nformat = \"tfrecord\"\n\
          [[outputs]]\nformat = \"folders\"\n",
    );
    let first = summary(&env, &["build", "r.toml", "--out", "o"]);
    assert_eq!(first["processed"], 10, "{first}");
    let items = std::fs::read_dir(env.path("cache/items"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let entries = || -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(&items)
            .unwrap()
            .flatten()
            .filter(|d| d.file_name().len() == 2)
            .flat_map(|d| {
                std::fs::read_dir(d.path())
                    .unwrap()
                    .flatten()
                    .map(|e| e.path())
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(entries().len(), 10);
    let known = std::fs::read_dir(items.join("stamps"))
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read(e.path()).unwrap().starts_with(b"IPKNOWN"))
        .map(|e| e.path())
        .collect::<Vec<_>>();
    assert_eq!(known.len(), 1, "one list of the entries used");
    let change = || {
        let other = env.read("photos/class_1/img_00002.jpg");
        env.write("photos/class_0/img_00000.jpg", &other);
    };
    let clean = |what: &str| {
        let _ = std::fs::remove_dir_all(env.path("clean"));
        env.ok(&["build", "r.toml", "--out", "clean"]);
        assert_same_tree(&env, "o", "clean", what);
    };
    let rebuild_makes_one = || {
        let s = summary(&env, &["build", "r.toml", "--out", "o"]);
        let counts = (s["processed"].as_u64(), s["cached"].as_u64());
        assert_eq!(counts, (Some(1), Some(9)), "{s}");
    };
    // one entry gone (and the up-to-date stamp, so that the build runs):
    // that image is made again
    for e in std::fs::read_dir(items.join("stamps")).unwrap().flatten() {
        if e.path() != known[0] {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    std::fs::remove_file(&entries()[3]).unwrap();
    rebuild_makes_one();
    clean("an entry removed from the cache");
    // the list replaced by something else: every entry looked at again
    std::fs::write(&known[0], b"IPKNOWN1 but then nothing that parses").unwrap();
    change();
    rebuild_makes_one();
    clean("a damaged list of entries");
    assert_eq!(
        entries().len(),
        10,
        "the cache holds what the last build used"
    );
}

/// The same data gives the same dataset, manifest included, whenever its
/// files were copied (new modification times); the up-to-date check that
/// uses the times lives beside the item cache, not in the manifest.
#[test]
fn the_manifest_names_inputs_by_content_not_by_time() {
    let env = TestEnv::new();
    env.synth("p", 2, 5, 64, 48);
    env.write(
        "r.toml",
        b"name = \"m\"\n[[sources]]\ntype = \"folders\"\nroot = \"p\"\n[[outputs]]\nformat = \"recordio\"\n",
    );
    env.ok(&["build", "r.toml", "--out", "a"]);
    let again = summary(&env, &["build", "r.toml", "--out", "a"]);
    assert_eq!(again["up_to_date"], true, "{again}");
    // every source copied anew: new times, same bytes
    for c in 0..2 {
        for i in 0..5 {
            let rel = format!("p/class_{c}/img_{i:05}.jpg");
            let bytes = env.read(&rel);
            std::fs::remove_file(env.path(&rel)).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(2));
            env.write(&rel, &bytes);
        }
    }
    let after = summary(&env, &["build", "r.toml", "--out", "a"]);
    assert_eq!(after["up_to_date"], false, "new times: looked at again");
    env.ok(&["build", "r.toml", "--out", "b", "--cache-dir", "other"]);
    assert_eq!(tree(&env.path("a")), tree(&env.path("b")));
}

/// Settings whose numbers would not describe what is written are refused
/// before any work: a multi-label dataset's RecordIO output without
/// pack_label (each record would keep one label while label_width says
/// more), grayscale with pass-through (the files stay as they are).
#[test]
fn settings_that_would_make_wrong_numbers_are_refused() {
    let env = TestEnv::new();
    env.synth("p", 2, 3, 32, 24);
    let mut csv = String::from("file,labels\n");
    for c in 0..2 {
        for i in 0..3 {
            csv.push_str(&format!("class_{c}/img_{i:05}.jpg,a;b{c}\n"));
        }
    }
    env.write("multi.csv", csv.as_bytes());
    let source = "[[sources]]\ntype = \"csv\"\nfile = \"multi.csv\"\nroot = \"p\"\npath = \"{file}\"\nlabel = \"labels\"\nlabel_separator = \";\"\n";
    env.write(
        "m.toml",
        format!("name = \"m\"\n{source}[[outputs]]\nformat = \"recordio\"\n").as_bytes(),
    );
    let out = env.run(&["build", "m.toml", "--out", "m"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("pack_label = true"),
        "{}",
        stderr(&out)
    );
    assert!(!env.path("m").exists());
    env.write(
        "m.toml",
        format!("name = \"m\"\n{source}[[outputs]]\nformat = \"recordio\"\npack_label = true\n")
            .as_bytes(),
    );
    let m = summary(&env, &["build", "m.toml", "--out", "m"]);
    assert_eq!(
        m["dataset"]["variants"]["complete"]["label_width"], 3,
        "{m}"
    );
    env.write(
        "g.toml",
        b"name = \"g\"\n[[sources]]\ntype = \"folders\"\nroot = \"p\"\n[transform]\nencoding = \"passthrough\"\ncolor = \"grayscale\"\n",
    );
    let out = env.run(&["build", "g.toml", "--out", "g"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("color"), "{}", stderr(&out));
}

/// Pass-through files turned by 90 degrees in EXIF: readers disagree on
/// their height and width, so image_shape is left out, with the reason.
#[test]
fn pass_through_images_turned_by_exif_have_no_image_shape() {
    let env = TestEnv::new();
    env.synth("p", 2, 2, 48, 32);
    let f = "p/class_0/img_00000.jpg";
    let turned = crate::detection::with_orientation(&env.read(f), 6);
    env.write(f, &turned);
    env.write(
        "r.toml",
        b"name = \"t\"\n[[sources]]\ntype = \"folders\"\nroot = \"p\"\n[transform]\nencoding = \"passthrough\"\n[[outputs]]\nformat = \"recordio\"\n",
    );
    let out = env.run(&["build", "r.toml", "--out", "o", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("EXIF rotation"), "{}", stderr(&out));
    let m = manifest(&env, "o");
    assert!(m["variants"]["complete"]["image_shape"].is_null(), "{m}");
}

/// Shards built one after another with one shared `--cache-dir` keep each
/// other's cached items (each build used to prune everything the others
/// had put there), so the merge finds them all; a shard folder that is
/// gone no longer holds its entries.
#[test]
fn shards_sharing_one_cache_dir_keep_each_others_items() {
    let env = TestEnv::new();
    env.synth("p", 2, 6, 48, 32);
    env.write(
        "r.toml",
        b"name = \"s\"\n[[sources]]\ntype = \"folders\"\nroot = \"p\"\n[transform]\nresize = 24\n\
          [[outputs]]\nformat = \"recordio\"\n",
    );
    for i in 0..3 {
        env.ok(&[
            "build",
            "r.toml",
            "--out",
            &format!("s{i}"),
            "--shard",
            &format!("{i}/3"),
            "--cache-dir",
            "shared",
        ]);
    }
    let merged = env.ok_json(&[
        "merge",
        "r.toml",
        "--out",
        "merged",
        "s0",
        "s1",
        "s2",
        "--shard-cache",
        "shared",
        "--json",
    ]);
    assert_eq!(merged["processed"], 0, "{merged}");
    env.ok(&["build", "r.toml", "--out", "one"]);
    assert_eq!(tree(&env.path("merged")), tree(&env.path("one")));
    // s0 gone: a rebuild of s1 prunes what only s0 used
    let entries = |env: &TestEnv| tree(&env.path("shared")).len();
    let before = entries(&env);
    std::fs::remove_dir_all(env.path("s0")).unwrap();
    env.write(
        "r.toml",
        &[b"seed = 5\n".to_vec(), env.read("r.toml")].concat(),
    );
    env.ok(&[
        "build",
        "r.toml",
        "--out",
        "s1",
        "--shard",
        "1/3",
        "--cache-dir",
        "shared",
    ]);
    assert!(entries(&env) < before, "{} of {before}", entries(&env));
}

/// Shards that skipped an item (a file that does not decode) merge into
/// what one build gives: the item is skipped there too, for the reason the
/// shard gave.
#[test]
fn shards_that_skipped_an_item_merge_like_one_build() {
    let env = TestEnv::new();
    env.synth("p", 2, 6, 48, 32);
    env.write("p/class_1/broken.jpg", b"\xff\xd8\xff\xe0 this is no JPEG");
    env.write(
        "r.toml",
        b"name = \"s\"\non_error = \"skip\"\n[[sources]]\ntype = \"folders\"\nroot = \"p\"\n[[outputs]]\nformat = \"recordio\"\n",
    );
    for i in 0..2 {
        env.ok(&[
            "build",
            "r.toml",
            "--out",
            &format!("s{i}"),
            "--shard",
            &format!("{i}/2"),
        ]);
    }
    env.ok(&["merge", "r.toml", "--out", "merged", "s0", "s1"]);
    env.ok(&["build", "r.toml", "--out", "one"]);
    assert_eq!(tree(&env.path("merged")), tree(&env.path("one")));
    let m = manifest(&env, "one");
    assert_eq!(m["skipped"].as_array().unwrap().len(), 1, "{m}");
}

/// Each shard's outputs give a class the id the whole dataset gives it,
/// also when the shard holds only some of the classes (its records, its
/// `.lst` lines and its manifest's class map), so shards agree with each
/// other and with one build.
#[test]
fn shards_give_every_class_the_whole_datasets_id() {
    let env = TestEnv::new();
    env.synth("p", 6, 2, 32, 32);
    folders_to_recordio(&env);
    env.ok(&["build", "r.toml", "--out", "one"]);
    let one = manifest(&env, "one");
    // items.csv: item -> (record id, label ids)
    let ids = |out: &str| -> BTreeMap<String, (String, String)> {
        let csv = String::from_utf8(env.read(&format!("{out}/items.csv"))).unwrap();
        let mut lines = csv.lines();
        let head: Vec<&str> = lines.next().unwrap().split(',').collect();
        let col = |n: &str| head.iter().position(|h| *h == n).unwrap();
        let (id, item, label_ids) = (col("id"), col("item"), col("label_ids"));
        lines
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (
                    f[item].to_string(),
                    (f[id].to_string(), f[label_ids].to_string()),
                )
            })
            .collect()
    };
    let whole = ids("one");
    let mut seen = 0;
    for i in 0..3 {
        let out = format!("s{i}");
        env.ok(&[
            "build",
            "r.toml",
            "--out",
            &out,
            "--shard",
            &format!("{i}/3"),
        ]);
        let m = manifest(&env, &out);
        assert_eq!(m["labels"], one["labels"], "shard {i}");
        assert_eq!(m["num_classes"], 6, "shard {i}");
        let part = ids(&out);
        // fewer than 6 classes in this shard, so the ids were at stake
        let classes: BTreeSet<&String> = part.values().map(|v| &v.1).collect();
        assert!(classes.len() < 6, "{part:?}");
        let mut label_of = BTreeMap::new();
        for (item, (id, label)) in &part {
            assert_eq!(label, &whole[item].1, "shard {i}: {item}");
            label_of.insert(id.clone(), label.clone());
        }
        // the records hold the same ids as items.csv
        let out = env.ok(&[
            "inspect",
            &format!("{out}/complete/recordio/train.rec"),
            "--json",
        ]);
        let records = stdout(&out);
        for line in records.lines() {
            let r: serde_json::Value = serde_json::from_str(line).unwrap();
            let label = r["labels"][0].as_f64().unwrap();
            assert_eq!(
                format!("{label}"),
                label_of[&r["id"].to_string()],
                "shard {i}: {r}"
            );
        }
        assert_eq!(records.lines().count(), part.len());
        seen += part.len();
    }
    assert_eq!(seen, whole.len());
    env.ok(&["merge", "r.toml", "--out", "merged", "s0", "s1", "s2"]);
    assert_eq!(tree(&env.path("merged")), tree(&env.path("one")));
}

/// More shards than items: the empty slices are shard outputs too (no
/// record, the dataset's class map), and the merge is one build's result.
#[test]
fn empty_shards_merge_like_one_build() {
    let env = TestEnv::new();
    env.synth("p", 2, 2, 32, 32);
    folders_to_recordio(&env);
    let mut parts = Vec::new();
    for i in 0..6 {
        let out = format!("s{i}");
        env.ok(&[
            "build",
            "r.toml",
            "--out",
            &out,
            "--shard",
            &format!("{i}/6"),
        ]);
        parts.push(out);
    }
    let empty = parts
        .iter()
        .filter(|p| manifest(&env, p)["variants"]["complete"]["splits"]["train"]["items"] == 0)
        .count();
    assert_eq!(empty, 2);
    let mut args = vec!["merge", "r.toml", "--out", "merged"];
    args.extend(parts.iter().map(String::as_str));
    env.ok(&args);
    env.ok(&["build", "r.toml", "--out", "one"]);
    assert_eq!(tree(&env.path("merged")), tree(&env.path("one")));
}

/// Pass-through stores only what each output's readers decode: a WebP is
/// skipped for RecordIO (MXNet's decoder has no WebP) and TFRecord, a TIFF
/// for TFRecord (TensorFlow reads none) and SageMaker (JPEG and PNG only),
/// each with the reason; class folders take both. It passed `verify` and
/// failed in the trainer's reader. The im2rec drop-in does the same.
#[test]
fn pass_through_skips_formats_the_outputs_readers_cannot_decode() {
    let Some(data) = crate::env::shared_data() else {
        return;
    };
    let env = TestEnv::new();
    env.synth("p", 2, 2, 32, 32);
    let edge = data.join("edge_cases");
    for (from, to) in [
        (
            "exif_orientation/hopper_orientation_3.webp",
            "p/class_0/w.webp",
        ),
        ("cmyk/tiff_strip_cmyk_jpeg.tif", "p/class_1/t.tif"),
    ] {
        env.write(to, &std::fs::read(edge.join(from)).unwrap());
    }
    // an uncompressed 2x2 gray TIFF: MXNet reads it (the JPEG-compressed one
    // above it does not)
    env.write("p/class_1/plain.tif", &plain_tiff());
    let skipped = |to: &str| -> Vec<String> {
        let out = format!("o-{to}");
        env.ok(&[
            "convert",
            "p",
            &out,
            "--to",
            to,
            "--encoding",
            "passthrough",
            "--exts",
            ".jpg",
            ".webp",
            ".tif",
        ]);
        env.ok(&["verify", &out]);
        let m = manifest(&env, &out);
        let mut v: Vec<String> = m["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| format!("{} {}", s["item"], s["reason"]))
            .collect();
        v.sort();
        v
    };
    let r = skipped("recordio");
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(
        r[0].contains("w.webp") && r[0].contains("a WEBP file") && r[0].contains("MXNet"),
        "{r:?}"
    );
    assert!(
        r[1].contains("t.tif") && r[1].contains("compression") && r[1].contains("MXNet"),
        "{r:?}"
    );
    let t = skipped("tfrecord");
    assert_eq!(t.len(), 3, "{t:?}");
    assert!(
        t[0].contains("w.webp") && t[0].contains("TensorFlow"),
        "{t:?}"
    );
    assert!(
        t[1].contains("plain.tif") && t[2].contains("t.tif") && t[2].contains("a TIFF file"),
        "{t:?}"
    );
    let s = skipped("sagemaker-image");
    assert_eq!(s.len(), 3, "{s:?}");
    assert!(s.iter().all(|r| r.contains("SageMaker")), "{s:?}");
    assert!(skipped("folders").is_empty());
    // re-encoded, every one is in
    env.ok(&[
        "convert", "p", "enc", "--to", "recordio", "--exts", ".jpg", ".webp", ".tif",
    ]);
    assert!(manifest(&env, "enc")["skipped"]
        .as_array()
        .unwrap()
        .is_empty());
    // the im2rec drop-in
    env.ok(&[
        "im2rec",
        "l",
        "p",
        "--list",
        "--recursive",
        "--exts",
        ".jpg",
        ".webp",
        ".tif",
    ]);
    let out = env.ok(&["im2rec", "l", "p", "--pass-through"]);
    assert!(
        stderr(&out).contains("w.webp")
            && stderr(&out).contains("MXNet's image decoder cannot read"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("t.tif") && stderr(&out).contains("compression"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("5 images, 2 skipped"),
        "{}",
        stderr(&out)
    );
}

/// A 2x2 8-bit gray TIFF, uncompressed (one strip).
fn plain_tiff() -> Vec<u8> {
    let mut t = b"II*\0".to_vec();
    t.extend_from_slice(&8u32.to_le_bytes());
    // (tag, type SHORT = 3 or LONG = 4, value)
    let entries: [(u16, u16, u32); 8] = [
        (256, 3, 2),
        (257, 3, 2),
        (258, 3, 8),
        (259, 3, 1),
        (262, 3, 1),
        (273, 4, 8 + 2 + 8 * 12 + 4),
        (278, 3, 2),
        (279, 4, 4),
    ];
    t.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, ty, v) in entries {
        t.extend_from_slice(&tag.to_le_bytes());
        t.extend_from_slice(&ty.to_le_bytes());
        t.extend_from_slice(&1u32.to_le_bytes());
        match ty {
            3 => {
                t.extend_from_slice(&(v as u16).to_le_bytes());
                t.extend_from_slice(&[0, 0]);
            }
            _ => t.extend_from_slice(&v.to_le_bytes()),
        }
    }
    t.extend_from_slice(&0u32.to_le_bytes());
    t.extend_from_slice(&[0, 85, 170, 255]);
    t
}

/// A source added after the shards were built: the merge says so (it
/// advised looking for the shards' caches, which were where they belong).
#[test]
fn merge_names_a_source_newer_than_the_shards() {
    let env = TestEnv::new();
    env.synth("p", 2, 2, 32, 32);
    folders_to_recordio(&env);
    for i in 0..2 {
        let out = format!("s{i}");
        env.ok(&[
            "build",
            "r.toml",
            "--out",
            &out,
            "--shard",
            &format!("{i}/2"),
        ]);
    }
    // a folder that is not there is said so (it read "not a shard output")
    let out = env.run(&["merge", "r.toml", "--out", "m", "s0", "s9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("s9: no such folder"),
        "{}",
        stderr(&out)
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    let img = env.read("p/class_0/img_00000.jpg");
    env.write("p/class_0/new.jpg", &img);
    let out = env.run(&["merge", "r.toml", "--out", "m", "s0", "s1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("new.jpg")
            && stderr(&out).contains("changed or added after the shards were built"),
        "{}",
        stderr(&out)
    );
}

/// `r.toml`: the class folders under `p` to RecordIO, nothing else.
fn folders_to_recordio(env: &TestEnv) {
    env.write(
        "r.toml",
        b"name = \"s\"\n[[sources]]\ntype = \"folders\"\nroot = \"p\"\n[[outputs]]\nformat = \"recordio\"\n",
    );
}

/// `--cache-dir` naming a folder that is not an item cache (a project
/// folder, `.`) is refused before anything is built: a build prunes its
/// cache folder, and the user's files there were removed. A folder that
/// only looks like one inside keeps what is not the cache's.
#[test]
fn a_cache_folder_of_somebody_else_is_refused_and_never_pruned() {
    let env = TestEnv::new();
    env.synth("p", 2, 4, 32, 24);
    folders_to_recordio(&env);
    env.write("proj/notes.txt", b"mine");
    env.write("proj/docs/thesis.tex", b"mine too");
    let out = env.run(&["build", "r.toml", "--out", "o", "--cache-dir", "proj"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not empty and not an imgprep item cache"),
        "{}",
        stderr(&out)
    );
    assert!(!env.path("o").exists());
    // another program's cache folder, tagged by it: not ours either
    env.write(
        "theirs/CACHEDIR.TAG",
        b"Signature: 8a477f597d28d172789f06886806bc55\n# theirs\n",
    );
    let out = env.run(&["build", "r.toml", "--out", "o", "--cache-dir", "theirs"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // folders named like entry folders (months 01-12) holding somebody's
    // files, or only such folders: not a cache either
    env.write("months/01/photo.jpg", b"mine");
    std::fs::create_dir_all(env.path("months/02")).unwrap();
    env.write(
        "months/03/0123456789abcdef0123456789abcdef01234567",
        b"mine",
    );
    for d in ["months/01", "months"] {
        let out = env.run(&["build", "r.toml", "--out", "o", "--cache-dir", d]);
        assert_eq!(out.status.code(), Some(2), "{d}: {}", stderr(&out));
    }
    std::fs::remove_dir_all(env.path("months/01")).unwrap();
    let out = env.run(&["build", "r.toml", "--out", "o", "--cache-dir", "months"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(env.path("months/02").is_dir() && !env.path("months/CACHEDIR.TAG").exists());
    // what a file system or a file browser leaves is no obstacle
    std::fs::create_dir_all(env.path("c2/lost+found")).unwrap();
    env.write("c2/.DS_Store", b"x");
    env.ok(&["build", "r.toml", "--out", "o", "--cache-dir", "c2", "-q"]);
    env.write(
        "r.toml",
        &[env.read("r.toml"), b"[transform]\nquality = 80\n".to_vec()].concat(),
    );
    env.ok(&["build", "r.toml", "--out", "o", "--cache-dir", "c2", "-q"]);
    assert!(env.path("c2/lost+found").is_dir());
    // a first build stopped before its notes were written: the folder was
    // tagged when the build began, so the next one takes it
    std::fs::remove_dir_all(env.path("c2/stamps")).unwrap();
    env.ok(&["build", "r.toml", "--out", "o2", "--cache-dir", "c2", "-q"]);
    // the default cache folder, under imgprep's own root, is not checked: a
    // first build stopped with entries and no notes or tag there is no
    // obstacle (the next build into that output was refused)
    env.ok(&["build", "r.toml", "--out", "o3", "-q"]);
    let items = env.path("cache/items");
    for d in std::fs::read_dir(&items).unwrap().flatten() {
        for notes in ["stamps", "records"] {
            let _ = std::fs::remove_dir_all(d.path().join(notes));
        }
        let _ = std::fs::remove_file(d.path().join("CACHEDIR.TAG"));
    }
    env.ok(&["build", "r.toml", "--out", "o3", "-q"]);
    assert_eq!(env.read("proj/docs/thesis.tex"), b"mine too");
    assert!(env.path("c2/CACHEDIR.TAG").is_file());
}

/// Two outputs sharing one cache folder keep each other's record tables: a
/// rebuild of the first after the second was built still copies its
/// unchanged records (the second's build removed the first's tables).
#[test]
fn outputs_sharing_a_cache_folder_keep_each_others_record_tables() {
    let env = TestEnv::new();
    env.synth("p", 2, 10, 32, 24);
    folders_to_recordio(&env);
    env.write(
        "r2.toml",
        &[env.read("r.toml"), b"[transform]\nquality = 80\n".to_vec()].concat(),
    );
    env.ok(&["build", "r.toml", "--out", "a", "--cache-dir", "c", "-q"]);
    env.ok(&["build", "r2.toml", "--out", "b", "--cache-dir", "c", "-q"]);
    env.write(
        "p/class_0/img_00000.jpg",
        &env.read("p/class_1/img_00001.jpg"),
    );
    let again = summary(&env, &["build", "r.toml", "--out", "a", "--cache-dir", "c"]);
    assert_eq!(again["processed"], 1, "{again}");
    assert_eq!(again["records_reused"], 19, "{again}");
}

/// After a killed build, the next one removes what the killed one wrote
/// (files it named in its marker, put there before its last note), but not
/// a file somebody put at such a path afterwards: that one is left as it is.
#[test]
fn after_a_killed_build_files_put_there_since_are_left_alone() {
    let env = TestEnv::new();
    env.synth("p", 2, 3, 32, 24);
    folders_to_recordio(&env);
    env.ok(&["build", "r.toml", "--out", "o", "-q"]);
    // what a build killed while writing a `folders` output leaves: a file it
    // wrote, its marker (naming it and one it had not written yet), and no
    // manifest (removed before its first write)
    let pause = || std::thread::sleep(std::time::Duration::from_millis(50));
    env.write(
        "o/complete/folders/train/a.jpg",
        b"written by the killed build",
    );
    pause();
    // (the marker starts with the files of the build before, with their sums)
    let m = manifest(&env, "o");
    let mut marker = String::new();
    for (f, s) in m["files"].as_object().unwrap() {
        marker += &format!("{f}\t{}\t{}\n", s["size"], s["sha256"].as_str().unwrap());
    }
    marker += "complete/folders/train/a.jpg\ncomplete/folders/train/b.jpg\n";
    env.write("o/.imgprep-building", marker.as_bytes());
    std::fs::remove_file(env.path("o/manifest.json")).unwrap();
    pause();
    // the user's own file at the path the killed build had not written
    env.write("o/complete/folders/train/b.jpg", b"mine");
    env.ok(&["build", "r.toml", "--out", "o", "-q"]);
    assert!(!env.path("o/complete/folders/train/a.jpg").exists());
    assert_eq!(env.read("o/complete/folders/train/b.jpg"), b"mine");
    // the killed build's last file, finished after its last note, at a path
    // the re-run writes: the plain re-run is not refused (it was, exit 2)
    let m = manifest(&env, "o");
    let mut marker = String::new();
    for (f, s) in m["files"].as_object().unwrap() {
        marker += &format!("{f}\t{}\t{}\n", s["size"], s["sha256"].as_str().unwrap());
    }
    marker += "complete/folders/train/class_0/img_00000.jpg\n";
    env.write("o/.imgprep-building", marker.as_bytes());
    std::fs::remove_file(env.path("o/manifest.json")).unwrap();
    pause();
    env.write("o/complete/folders/train/class_0/img_00000.jpg", b"half");
    env.write(
        "r2.toml",
        &[
            env.read("r.toml"),
            b"[[outputs]]\nformat = \"folders\"\n".to_vec(),
        ]
        .concat(),
    );
    env.ok(&["build", "r2.toml", "--out", "o", "-q"]);
    std::fs::remove_file(env.path("o/complete/folders/train/b.jpg")).unwrap();
    env.ok(&["verify", "o"]);
}

/// Pass-through into an output of image files links the sources: a new
/// link changes a source's change time, which the next run took for a
/// changed source (every run made everything again, and changed every
/// source's ctime again). Now the next run is up to date and touches none.
#[test]
fn linked_pass_through_sources_are_up_to_date_on_the_next_run() {
    use std::os::unix::fs::MetadataExt;
    let env = TestEnv::new();
    env.synth("p", 2, 4, 32, 24);
    env.write(
        "r.toml",
        b"name = \"s\"\n[[sources]]\ntype = \"folders\"\nroot = \"p\"\n[transform]\n\
          encoding = \"passthrough\"\n[[outputs]]\nformat = \"recordio\"\n\
          [[outputs]]\nformat = \"sagemaker-image\"\n",
    );
    env.ok(&["build", "r.toml", "--out", "o", "-q"]);
    let ctime = || {
        std::fs::metadata(env.path("p/class_0/img_00000.jpg"))
            .unwrap()
            .ctime_nsec()
    };
    let before = ctime();
    let again = summary(&env, &["build", "r.toml", "--out", "o"]);
    assert_eq!(again["up_to_date"], true, "{again}");
    // a changed recipe (one more output) rebuilds, and finds the links in place
    env.write(
        "r.toml",
        &[
            env.read("r.toml"),
            b"[[outputs]]\nformat = \"tfrecord\"\n".to_vec(),
        ]
        .concat(),
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    let rebuilt = summary(&env, &["build", "r.toml", "--out", "o"]);
    assert_eq!(rebuilt["up_to_date"], false, "{rebuilt}");
    assert_eq!(ctime(), before);
    let again = summary(&env, &["build", "r.toml", "--out", "o"]);
    assert_eq!(again["up_to_date"], true, "{again}");
}

/// An output file edited in place with its size kept (a label flipped in a
/// `.lst`) is not "up to date": the re-run makes it again, equal to a clean
/// build. It said up to date, and the folder failed `verify`.
#[test]
fn an_output_edited_with_its_size_kept_is_made_again() {
    let env = TestEnv::new();
    env.synth("p", 2, 3, 32, 24);
    folders_to_recordio(&env);
    env.ok(&["build", "r.toml", "--out", "o", "-q"]);
    let clean = env.read("o/complete/recordio/train.lst");
    let mut edited = clean.clone();
    let at = edited.iter().position(|&b| b == b'\t').unwrap() + 1;
    edited[at] = if edited[at] == b'0' { b'1' } else { b'0' };
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(env.path("o/complete/recordio/train.lst"), &edited).unwrap();
    let again = summary(&env, &["build", "r.toml", "--out", "o"]);
    assert_eq!(again["up_to_date"], false, "{again}");
    assert_eq!(env.read("o/complete/recordio/train.lst"), clean);
    let again = summary(&env, &["build", "r.toml", "--out", "o"]);
    assert_eq!(again["up_to_date"], true, "{again}");
}

/// `--drop-cache` into a cache folder another output shares removes only
/// what no other output's last build used: it removed every entry, and the
/// other output's next build decoded everything again.
#[test]
fn drop_cache_keeps_what_other_outputs_sharing_the_folder_use() {
    let env = TestEnv::new();
    env.synth("p", 2, 5, 32, 24);
    folders_to_recordio(&env);
    env.write(
        "r.toml",
        &[env.read("r.toml"), b"[transform]\nquality = 80\n".to_vec()].concat(),
    );
    env.ok(&["build", "r.toml", "--out", "a", "--cache-dir", "c", "-q"]);
    let args = [
        "build",
        "r.toml",
        "--out",
        "b",
        "--cache-dir",
        "c",
        "--drop-cache",
        "-q",
    ];
    env.ok(&args);
    env.write(
        "p/class_0/img_00000.jpg",
        &env.read("p/class_1/img_00001.jpg"),
    );
    let again = summary(&env, &["build", "r.toml", "--out", "a", "--cache-dir", "c"]);
    assert_eq!(again["processed"], 1, "{again}");
    assert_eq!(again["cached"], 9, "{again}");
}

/// The pixel limit is not part of the item cache's keys (a new limit keeps
/// every entry), so an image from the cache is held to today's limit as
/// its decode would be: lowering `max_pixels` skipped nothing when the
/// images came from the cache, where a clean build refused them. Both the
/// source's size and a resize's output size count.
#[test]
fn a_lower_pixel_limit_counts_for_images_from_the_cache() {
    let env = TestEnv::new();
    env.synth("p", 2, 3, 64, 48);
    let recipe = |resize: u32, limit: Option<u64>| {
        let limit = limit.map_or(String::new(), |l| format!("max_pixels = {l}\n"));
        env.write(
            "r.toml",
            format!(
                "name = \"m\"\n[[sources]]\ntype = \"folders\"\nroot = \"p\"\n\
                 [transform]\nresize = {resize}\n{limit}[[outputs]]\nformat = \"folders\"\n"
            )
            .as_bytes(),
        );
    };
    for (resize, limit, why) in [
        (32, 2000, "64x48 is 3072 pixels, over the limit of 2000"),
        (
            100,
            5000,
            "resized it would be 133x100 = 13300 pixels, over the limit of 5000",
        ),
    ] {
        recipe(resize, None);
        env.ok(&["build", "r.toml", "--out", "out", "-q"]);
        recipe(resize, Some(limit));
        let run = env.run(&["build", "r.toml", "--out", "out"]);
        // (a clean build: its own empty cache)
        let clean = std::process::Command::new(env!("CARGO_BIN_EXE_imgprep"))
            .args(["build", "r.toml", "--out", "clean"])
            .env("IMGPREP_CACHE_DIR", env.path("clean-cache"))
            .current_dir(env.path(""))
            .output()
            .unwrap();
        assert_eq!(clean.status.code(), Some(1), "{}", stderr(&clean));
        assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
        assert!(stderr(&clean).contains(why), "{}", stderr(&clean));
        assert!(stderr(&run).contains(why), "{}", stderr(&run));
        for dir in ["out", "clean", "clean-cache"] {
            let _ = std::fs::remove_dir_all(env.path(dir));
        }
    }
}
