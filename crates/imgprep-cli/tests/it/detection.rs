//! Detection datasets: boxes from VOC, COCO, YOLO and labelme files, checked
//! and written in every training format; the real readers (MXNet's two
//! detection iterators, TensorFlow, pycocotools) must return the boxes we
//! meant, and conversions between formats must keep every box.

use crate::env::{assert_stderr_has, interop, python, shared_data, stderr, tf_python, TestEnv};
use serde_json::Value;
use std::collections::BTreeMap;

/// A recipe reading `source` (TOML of one `[[sources]]` table's keys) with
/// `outputs` formats and extra TOML appended.
fn recipe(env: &TestEnv, name: &str, source: &str, outputs: &[&str], extra: &str) -> String {
    let mut t = format!("name = \"{name}\"\n[[sources]]\n{source}\n");
    t.push_str(extra);
    for o in outputs {
        t.push_str(&format!("\n[[outputs]]\n{o}\n"));
    }
    let file = format!("{name}.toml");
    env.write(&file, t.as_bytes());
    file
}

fn json(env: &TestEnv, rel: &str) -> Value {
    serde_json::from_slice(&env.read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn synth_voc(env: &TestEnv, dir: &str, n: usize, w: u32, h: u32) {
    env.ok(&[
        "synth",
        dir,
        "--layout",
        "voc",
        "--classes",
        "1",
        "--per-class",
        &n.to_string(),
        "--width",
        &w.to_string(),
        "--height",
        &h.to_string(),
    ]);
}

/// COCO output boxes by file name: (category name, [x, y, w, h]) sorted.
fn coco_boxes(doc: &Value) -> BTreeMap<String, Vec<(String, [f64; 4])>> {
    let cats: BTreeMap<u64, String> = doc["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_u64().unwrap(),
                c["name"].as_str().unwrap().into(),
            )
        })
        .collect();
    let files: BTreeMap<u64, String> = doc["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"].as_u64().unwrap(),
                i["file_name"].as_str().unwrap().into(),
            )
        })
        .collect();
    let mut out: BTreeMap<String, Vec<(String, [f64; 4])>> =
        files.values().map(|f| (f.clone(), Vec::new())).collect();
    for a in doc["annotations"].as_array().unwrap() {
        let b: Vec<f64> = a["bbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        out.get_mut(&files[&a["image_id"].as_u64().unwrap()])
            .unwrap()
            .push((
                cats[&a["category_id"].as_u64().unwrap()].clone(),
                [b[0], b[1], b[2], b[3]],
            ));
    }
    for v in out.values_mut() {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    }
    out
}

fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
}

/// The main job: VOC in, every output; hyperparameters from what was
/// written; the split spreads every class by its ratio.
#[test]
fn voc_to_every_format_with_counts_from_what_was_written() {
    let env = TestEnv::new();
    synth_voc(&env, "voc", 60, 160, 120);
    let r = recipe(
        &env,
        "roads",
        "type = \"voc\"\nroot = \"voc\"",
        &[
            "format = \"sagemaker-detection\"",
            "format = \"recordio\"",
            "format = \"coco\"",
            "format = \"yolo\"",
            "format = \"voc\"",
            "format = \"tfrecord\"\npreset = \"object-detection\"",
            "format = \"augmented-manifest\"\npush_to = \"s3://bucket/roads\"",
        ],
        "[split]\nmethod = \"stratified\"\ntrain = 0.7\nvalidation = 0.3\n[transform]\nencoding = \"passthrough\"\n",
    );
    env.ok(&["build", &r, "--out", "out"]);
    let m = json(&env, "out/manifest.json");
    let d = &m["detection"];
    let objects = &d["objects"]["complete"];
    // every class in both splits, near 70/30 in objects
    for class in ["D00", "D10", "D20", "D40"] {
        let t = objects["train"][class].as_f64().unwrap_or(0.0);
        let v = objects["validation"][class].as_f64().unwrap_or(0.0);
        assert!(v > 0.0 && t > 0.0, "{class}: {t} / {v}");
        assert!((v / (t + v) - 0.3).abs() < 0.12, "{class}: {t} / {v}");
    }
    let hp = json(&env, "out/complete/hyperparameters.json");
    let lst = String::from_utf8(env.read("out/complete/recordio/train.lst")).unwrap();
    assert_eq!(hp["num_training_samples"], lst.lines().count().to_string());
    assert_eq!(hp["num_classes"], "4");
    let most = ["train", "validation"]
        .iter()
        .flat_map(|s| {
            String::from_utf8(env.read(&format!("out/complete/recordio/{s}.lst")))
                .unwrap()
                .lines()
                .map(|l| (l.split('\t').count() - 4) / 5)
                .collect::<Vec<_>>()
        })
        .max()
        .unwrap();
    assert_eq!(hp["label_width"], (2 + 5 * most).to_string());
    assert!(hp.get("image_shape").is_none(), "{hp}");
    // the ids each output uses
    assert_eq!(d["class_id_base"]["coco"], 1);
    assert_eq!(d["class_id_base"]["tfrecord-object-detection"], 1);
    assert_eq!(d["class_id_base"]["sagemaker-detection"], 0);
    // SageMaker JSON: the same boxes as the source XML (pass-through: same pixels)
    let coco = coco_boxes(&json(&env, "out/complete/coco/annotations/train.json"));
    let (file, boxes) = coco.iter().find(|(_, b)| !b.is_empty()).unwrap();
    let stem = file.trim_end_matches(".jpg");
    let sm = json(
        &env,
        &format!("out/complete/sagemaker-detection/train_annotation/{stem}.json"),
    );
    assert_eq!(sm["file"], file.as_str());
    assert_eq!(sm["image_size"][0]["width"], 160);
    let mut got: Vec<(String, [f64; 4])> = sm["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let name = sm["categories"][a["class_id"].as_u64().unwrap() as usize]["name"]
                .as_str()
                .unwrap()
                .to_string();
            let f = |k: &str| a[k].as_f64().unwrap();
            (name, [f("left"), f("top"), f("width"), f("height")])
        })
        .collect();
    got.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(&got, boxes);
    let xml = String::from_utf8(env.read(&format!("voc/Annotations/{stem}.xml"))).unwrap();
    let (_, b) = &boxes[0];
    assert!(
        xml.contains(&format!("<xmin>{}</xmin>", b[0])),
        "{xml} vs {b:?}"
    );
    // the augmented manifest points where push will put the images
    let am = String::from_utf8(env.read("out/complete/augmented-manifest/train.manifest")).unwrap();
    let first: Value = serde_json::from_str(am.lines().next().unwrap()).unwrap();
    assert!(first["source-ref"]
        .as_str()
        .unwrap()
        .starts_with("s3://bucket/roads/complete/augmented-manifest/train/"));
    assert!(first["bounding-box-metadata"]["class-map"]["0"] == "D00");
    // inspect shows each record's boxes
    let shown = crate::env::stdout(&env.ok(&["inspect", "out/complete/recordio/train.rec"]));
    assert!(
        shown.lines().nth(1).unwrap().contains(" boxes: "),
        "{shown}"
    );
    // verify re-reads every box; a box moved outside its image is found
    env.ok(&["verify", "out"]);
    let sm_rel = format!("out/complete/sagemaker-detection/train_annotation/{stem}.json");
    let mut bad = sm.clone();
    bad["annotations"][0]["left"] = serde_json::json!(150);
    env.write(&sm_rel, bad.to_string().as_bytes());
    let v = env.run(&["verify", "out"]);
    assert_eq!(v.status.code(), Some(1));
    let said = format!("{}{}", crate::env::stdout(&v), stderr(&v));
    assert!(said.contains("is not a box inside 160x120"), "{said}");
    // the same build again: byte-identical, whatever the thread count
    let again = env.run(&["build", &r, "--out", "out2", "--num-thread", "1"]);
    assert!(again.status.success(), "{}", stderr(&again));
    for f in [
        "out/complete/recordio/train.rec",
        "out/complete/coco/annotations/validation.json",
        "out/complete/tfrecord-object-detection/train-00000-of-00001.tfrecord",
    ] {
        assert_eq!(
            env.read(f),
            env.read(&f.replacen("out/", "out2/", 1)),
            "{f}"
        );
    }
}

/// MXNet's ImageDetIter and ImageDetRecordIter read our records and return
/// the boxes of the COCO export (normalised) for every image; the .lst
/// matches the records.
#[test]
fn mxnet_detection_readers_return_our_boxes() {
    let Some(py) = python() else { return };
    let env = TestEnv::new();
    synth_voc(&env, "voc", 24, 200, 150);
    // a resize: the normalised boxes stay, the pixels scale
    let r = recipe(
        &env,
        "mx",
        "type = \"voc\"\nroot = \"voc\"",
        &["format = \"recordio\"", "format = \"coco\""],
        "[split]\ntrain = 0.5\nvalidation = 0.5\n[transform]\nresize = \"100x75\"\n",
    );
    env.ok(&["build", &r, "--out", "out"]);
    let hp = json(&env, "out/complete/hyperparameters.json");
    let pad: usize = hp["label_width"].as_str().unwrap().parse().unwrap();
    for split in ["train", "validation"] {
        let coco = coco_boxes(&json(
            &env,
            &format!("out/complete/coco/annotations/{split}.json"),
        ));
        let cats = ["D00", "D10", "D20", "D40"];
        let v = interop(
            &py,
            "mxnet_det_read.py",
            &[
                &format!("out/complete/recordio/{split}"),
                "--width",
                "100",
                "--height",
                "75",
                "--pad-width",
                &pad.to_string(),
            ],
            env.dir.path(),
        );
        let lst =
            String::from_utf8(env.read(&format!("out/complete/recordio/{split}.lst"))).unwrap();
        let records = v["records"].as_array().unwrap();
        let det = v["det_iter"]
            .as_array()
            .unwrap_or_else(|| panic!("{}", v["det_iter"]));
        let rec_it = v["det_record_iter"]
            .as_array()
            .unwrap_or_else(|| panic!("{}", v["det_record_iter"]));
        assert_eq!(records.len(), lst.lines().count());
        assert_eq!(det.len(), records.len());
        assert_eq!(rec_it.len(), records.len());
        for (k, line) in lst.lines().enumerate() {
            let f: Vec<&str> = line.split('\t').collect();
            let file = f[f.len() - 1];
            // what we meant: the COCO export's boxes / the image size
            let mut want: Vec<Vec<f64>> = coco[file]
                .iter()
                .map(|(c, b)| {
                    let id = cats.iter().position(|x| x == c).unwrap() as f64;
                    vec![
                        id,
                        b[0] / 100.0,
                        b[1] / 75.0,
                        (b[0] + b[2]) / 100.0,
                        (b[1] + b[3]) / 75.0,
                    ]
                })
                .collect();
            want.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let label: Vec<f64> = records[k]["label"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            assert_eq!(&label[..2], &[2.0, 5.0]);
            let rows = |flat: &[f64]| -> Vec<Vec<f64>> {
                let mut r: Vec<Vec<f64>> = flat.chunks(5).map(|c| c.to_vec()).collect();
                r.sort_by(|a, b| a.partial_cmp(b).unwrap());
                r
            };
            let packed = rows(&label[2..]);
            let iter_rows: Vec<Vec<f64>> = {
                let mut r: Vec<Vec<f64>> = det[k]["objects"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|row| {
                        row.as_array()
                            .unwrap()
                            .iter()
                            .map(|x| x.as_f64().unwrap())
                            .collect()
                    })
                    .collect();
                r.sort_by(|a, b| a.partial_cmp(b).unwrap());
                r
            };
            let ri: Vec<f64> = rec_it[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            // [channels, height, width, label length, label..., padding]
            assert_eq!(ri[4..6], [2.0, 5.0]);
            let n = ri[3] as usize;
            let from_rec_iter = rows(&ri[6..4 + n]);
            assert_eq!(want.len(), packed.len(), "{file}");
            for (((w, p), d), q) in want.iter().zip(&packed).zip(&iter_rows).zip(&from_rec_iter) {
                assert!(close(w, p, 1e-6), "{file}: {w:?} vs packed {p:?}");
                assert!(close(w, d, 1e-6), "{file}: {w:?} vs ImageDetIter {d:?}");
                assert!(
                    close(w, q, 1e-6),
                    "{file}: {w:?} vs ImageDetRecordIter {q:?}"
                );
            }
            assert_eq!(det[k]["shape"], serde_json::json!([1, 3, 75, 100]));
        }
    }
}

/// TensorFlow parses the Object Detection API records: boxes and 1-based
/// labels match the COCO export; the label map names them.
#[test]
fn tensorflow_reads_object_detection_records() {
    let Some(py) = tf_python() else { return };
    let env = TestEnv::new();
    synth_voc(&env, "voc", 12, 160, 120);
    let r = recipe(
        &env,
        "tf",
        "type = \"voc\"\nroot = \"voc\"",
        &[
            "format = \"tfrecord\"\npreset = \"object-detection\"",
            "format = \"coco\"",
        ],
        "[transform]\nencoding = \"passthrough\"\n",
    );
    env.ok(&["build", &r, "--out", "out"]);
    let coco = coco_boxes(&json(&env, "out/complete/coco/annotations/train.json"));
    let v = interop(
        &py,
        "tf_od_read.py",
        &["out/complete/tfrecord-object-detection/train-00000-of-00001.tfrecord"],
        env.dir.path(),
    );
    let recs = v["records"].as_array().unwrap();
    assert_eq!(recs.len(), 12);
    let names = ["D00", "D10", "D20", "D40"];
    for rec in recs {
        let file = rec["filename"].as_str().unwrap();
        assert_eq!(rec["shape"], serde_json::json!([120, 160, 3]));
        let f = |k: &str| -> Vec<f64> {
            rec[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        };
        let (x0, x1, y0, y1) = (f("xmin"), f("xmax"), f("ymin"), f("ymax"));
        let mut got: Vec<(String, [f64; 4])> = (0..x0.len())
            .map(|k| {
                let label = rec["label"][k].as_u64().unwrap() as usize;
                assert_eq!(rec["text"][k], names[label - 1]);
                (
                    names[label - 1].to_string(),
                    [
                        x0[k] * 160.0,
                        y0[k] * 120.0,
                        (x1[k] - x0[k]) * 160.0,
                        (y1[k] - y0[k]) * 120.0,
                    ],
                )
            })
            .collect();
        got.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let want = &coco[file];
        assert_eq!(got.len(), want.len(), "{file}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.0, w.0);
            assert!(close(&g.1, &w.1, 1e-3), "{file}: {g:?} vs {w:?}");
        }
    }
    assert!(v["label_map"]
        .as_str()
        .unwrap()
        .contains("id: 1\n  name: 'D00'"));
}

/// pycocotools loads our COCO export (COCO(), loadAnns) and evaluates it
/// against itself with AP 1.0 (area, iscrowd and boxes all usable); the
/// real labelme COCO file converts with its float boxes and id gaps.
#[test]
fn pycocotools_loads_our_coco_export() {
    let Some(py) = tf_python() else { return };
    let Some(shared) = shared_data() else { return };
    let env = TestEnv::new();
    let src = shared.join("detection/labelme_coco_instances");
    let r = recipe(
        &env,
        "c",
        &format!(
            "type = \"coco\"\nfile = \"{}\"\nimages = \"{}\"",
            src.join("annotations.json").display(),
            src.display()
        ),
        &["format = \"coco\""],
        "[transform]\nencoding = \"passthrough\"\n",
    );
    env.ok(&["build", &r, "--out", "out"]);
    let ours = json(&env, "out/complete/coco/annotations/train.json");
    let v = interop(
        &py,
        "coco_read.py",
        &["out/complete/coco/annotations/train.json"],
        env.dir.path(),
    );
    assert_eq!(v["self_ap"].as_f64().unwrap(), 1.0, "{v}");
    let images = v["images"].as_array().unwrap();
    assert_eq!(images.len(), 3);
    let anns: usize = images
        .iter()
        .map(|i| i["anns"].as_array().unwrap().len())
        .sum();
    assert_eq!(anns, ours["annotations"].as_array().unwrap().len());
    // the source's boxes, by file and class name
    let src_doc: Value =
        serde_json::from_slice(&std::fs::read(src.join("annotations.json")).unwrap()).unwrap();
    let want = coco_boxes(&src_doc);
    let got = coco_boxes(&ours);
    for (file, boxes) in &want {
        let name = file.trim_start_matches("JPEGImages/");
        let g = got
            .iter()
            .find(|(f, _)| f.ends_with(name))
            .unwrap_or_else(|| panic!("{file} missing"))
            .1;
        assert_eq!(g.len(), boxes.len(), "{file}");
        for (a, b) in g.iter().zip(boxes) {
            assert_eq!(a.0, b.0);
            assert!(close(&a.1, &b.1, 1e-9), "{file}: {a:?} vs {b:?}");
        }
    }
}

/// SageMaker's object detection takes `image_shape` as one number (the
/// side of its square input, 300 or more): that is what a detection recipe
/// may set, and what hyperparameters.json gets; a C,H,W shape is refused.
#[test]
fn detection_image_shape_is_the_algorithms_one_number() {
    let env = TestEnv::new();
    synth_voc(&env, "voc", 4, 64, 48);
    for (value, ok) in [
        ("512", true),
        ("\"300\"", true),
        ("\"3,300,300\"", false),
        ("200", false),
    ] {
        let r = recipe(
            &env,
            "hp",
            "type = \"voc\"\nroot = \"voc\"",
            &["format = \"sagemaker-detection\""],
            &format!("[hyperparameters]\nimage_shape = {value}\n"),
        );
        let out = env.run(&["build", &r, "--out", "hp"]);
        if ok {
            assert!(out.status.success(), "{value}: {}", stderr(&out));
            let hp = json(&env, "hp/complete/hyperparameters.json");
            assert_eq!(hp["image_shape"], value.trim_matches('"'), "{hp}");
        } else {
            assert_eq!(out.status.code(), Some(2), "{value}: {}", stderr(&out));
            assert_stderr_has(&out, "300 or more");
        }
    }
}

/// Crowd regions (COCO `iscrowd = 1`) are never quietly written as
/// ordinary boxes: outputs with a crowd flag keep it; for the others the
/// build asks for `boxes.crowd`, then drops them (counted) or keeps them.
#[test]
fn crowd_regions_are_asked_about_where_no_flag_can_hold_them() {
    let env = TestEnv::new();
    env.synth("img", 1, 1, 64, 48);
    env.write(
        "ann.json",
        br#"{"images": [{"id": 1, "file_name": "class_0/img_00000.jpg", "width": 64, "height": 48}],
             "annotations": [
               {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10], "iscrowd": 0, "area": 100},
               {"id": 2, "image_id": 1, "category_id": 1, "bbox": [20, 20, 30, 20], "iscrowd": 1, "area": 300}],
             "categories": [{"id": 1, "name": "person"}]}"#,
    );
    let src = "type = \"coco\"\nfile = \"ann.json\"\nimages = \"img\"";
    let pass = "[transform]\nencoding = \"passthrough\"\n";
    // only outputs with the flag: kept, flagged
    let r = recipe(&env, "flagged", src, &["format = \"coco\""], pass);
    env.ok(&["build", &r, "--out", "flagged"]);
    let doc = json(&env, "flagged/complete/coco/annotations/train.json");
    let crowd: Vec<u64> = doc["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["iscrowd"].as_u64().unwrap())
        .collect();
    assert_eq!(crowd, [0, 1]);
    // an output without one: asked, nothing written
    let outputs = ["format = \"coco\"", "format = \"yolo\""];
    let r = recipe(&env, "ask", src, &outputs, pass);
    let out = env.run(&["build", &r, "--out", "ask"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_stderr_has(&out, "ann.json: annotation id 2");
    assert_stderr_has(&out, "boxes.crowd");
    assert_stderr_has(&out, "yolo");
    assert!(!env.path("ask/manifest.json").exists());
    // drop: left out of every output, counted
    let extra = format!("{pass}[boxes]\ncrowd = \"drop\"\n");
    let r = recipe(&env, "drop", src, &outputs, &extra);
    env.ok(&["build", &r, "--out", "drop"]);
    let yolo = String::from_utf8(env.read("drop/complete/yolo/labels/train/class_0/img_00000.txt"))
        .unwrap();
    assert_eq!(yolo.lines().count(), 1, "{yolo}");
    let doc = json(&env, "drop/complete/coco/annotations/train.json");
    assert_eq!(doc["annotations"].as_array().unwrap().len(), 1);
    let m = json(&env, "drop/manifest.json");
    assert_eq!(
        m["detection"]["boxes"]["dropped"]["crowd region (boxes.crowd = \"drop\")"], 1,
        "{m}"
    );
    // keep: a box in YOLO, flagged in COCO
    let extra = format!("{pass}[boxes]\ncrowd = \"keep\"\n");
    let r = recipe(&env, "keep", src, &outputs, &extra);
    env.ok(&["build", &r, "--out", "keep"]);
    let yolo = String::from_utf8(env.read("keep/complete/yolo/labels/train/class_0/img_00000.txt"))
        .unwrap();
    assert_eq!(yolo.lines().count(), 2, "{yolo}");
    let doc = json(&env, "keep/complete/coco/annotations/train.json");
    assert_eq!(doc["annotations"][1]["iscrowd"], 1);
}

/// VOC -> COCO -> VOC and VOC -> YOLO -> VOC keep every box: the COCO view
/// of the round-tripped VOC equals the COCO view of the original.
#[test]
fn round_trips_through_coco_and_yolo_keep_every_box() {
    let env = TestEnv::new();
    synth_voc(&env, "voc", 20, 333, 211);
    let pass = "[transform]\nencoding = \"passthrough\"\n";
    let a = recipe(
        &env,
        "a",
        "type = \"voc\"\nroot = \"voc\"",
        &["format = \"coco\"", "format = \"yolo\""],
        pass,
    );
    env.ok(&["build", &a, "--out", "a"]);
    let reference = coco_boxes(&json(&env, "a/complete/coco/annotations/train.json"));
    assert_eq!(reference.len(), 20);
    // COCO -> VOC -> COCO
    let b = recipe(
        &env,
        "b",
        "type = \"coco\"\nfile = \"a/complete/coco/annotations/train.json\"\nimages = \"a/complete/coco/train\"",
        &["format = \"voc\""],
        pass,
    );
    env.ok(&["build", &b, "--out", "b"]);
    let c = recipe(
        &env,
        "c",
        "type = \"voc\"\nroot = \"b/complete/voc\"",
        &["format = \"coco\""],
        pass,
    );
    env.ok(&["build", &c, "--out", "c"]);
    let back = coco_boxes(&json(&env, "c/complete/coco/annotations/train.json"));
    assert_eq!(back, reference, "VOC -> COCO -> VOC");
    // YOLO -> VOC -> COCO (normalised text: within float tolerance)
    let d = recipe(
        &env,
        "d",
        "type = \"yolo\"\nroot = \"a/complete/yolo\"",
        &["format = \"voc\""],
        pass,
    );
    env.ok(&["build", &d, "--out", "d"]);
    // YOLO -> YOLO keeps the ultralytics layout: images/train/NAME and
    // labels/train/NAME.txt (the tree's own images/train/ was nested in it)
    let y = recipe(
        &env,
        "y2",
        "type = \"yolo\"\nroot = \"a/complete/yolo\"",
        &["format = \"yolo\""],
        pass,
    );
    env.ok(&["build", &y, "--out", "y2"]);
    let labels: Vec<String> = std::fs::read_dir(env.path("y2/complete/yolo/labels/train"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        !labels.is_empty() && labels.iter().all(|f| f.ends_with(".txt")),
        "{labels:?}"
    );
    assert!(!env.path("y2/complete/yolo/images/train/images").exists());
    let e = recipe(
        &env,
        "e",
        "type = \"voc\"\nroot = \"d/complete/voc\"",
        &["format = \"coco\""],
        pass,
    );
    env.ok(&["build", &e, "--out", "e"]);
    let back = coco_boxes(&json(&env, "e/complete/coco/annotations/train.json"));
    assert_eq!(back.len(), reference.len());
    for (file, want) in &reference {
        let got = back
            .iter()
            .find(|(f, _)| f.ends_with(file.as_str()))
            .unwrap_or_else(|| panic!("{file}"))
            .1;
        assert_eq!(got.len(), want.len(), "{file}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.0, w.0);
            assert!(close(&g.1, &w.1, 1e-5), "{file}: {g:?} vs {w:?}");
        }
    }
}

/// A box around a painted rectangle stays around it after a centre crop
/// and a resize: inside the written box the pixels are the rectangle's
/// colour, just outside they are not.
#[test]
fn crop_and_resize_move_boxes_with_the_pixels() {
    let env = TestEnv::new();
    synth_voc(&env, "voc", 16, 320, 200);
    let r = recipe(
        &env,
        "g",
        "type = \"voc\"\nroot = \"voc\"",
        &["format = \"coco\""],
        "[transform]\ncenter_crop = true\nresize = 150\nencoding = \"png\"\n[boxes]\noutside = \"clip\"\n",
    );
    env.ok(&["build", &r, "--out", "out"]);
    let doc = json(&env, "out/complete/coco/annotations/train.json");
    let colours = [
        [230u8, 20, 20],
        [20, 200, 20],
        [20, 40, 230],
        [240, 220, 10],
    ];
    let mut proc = imgprep::image::Processor::new().unwrap();
    let spec = imgprep::image::ImageSpec::default();
    let mut checked = 0;
    for img in doc["images"].as_array().unwrap() {
        let file = img["file_name"].as_str().unwrap();
        let data = env.read(&format!("out/complete/coco/train/{file}"));
        let px = proc.decode(&data, &spec).unwrap().pixels;
        assert_eq!((px.width, px.height), (150, 150));
        let at = |x: f64, y: f64| -> [u8; 3] {
            let (x, y) = (x.floor() as usize, y.floor() as usize);
            let k = (y * px.width as usize + x) * 3;
            [px.data[k], px.data[k + 1], px.data[k + 2]]
        };
        let near = |a: [u8; 3], b: [u8; 3]| {
            a.iter()
                .zip(b)
                .all(|(p, q)| (*p as i32 - q as i32).abs() < 40)
        };
        for a in doc["annotations"].as_array().unwrap() {
            if a["image_id"] != img["id"] {
                continue;
            }
            let c = colours[a["category_id"].as_u64().unwrap() as usize - 1];
            let b: Vec<f64> = a["bbox"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let (x0, y0, x1, y1) = (b[0], b[1], b[0] + b[2], b[1] + b[3]);
            assert!(
                x0 >= 0.0 && y0 >= 0.0 && x1 <= 150.0 && y1 <= 150.0,
                "{file}: {b:?}"
            );
            if b[2] < 6.0 || b[3] < 6.0 {
                continue;
            }
            // inside, 2 px from each edge, and the centre
            let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
            for (x, y) in [
                (cx, cy),
                (x0 + 2.0, cy),
                (x1 - 2.0, cy),
                (cx, y0 + 2.0),
                (cx, y1 - 2.0),
            ] {
                assert!(
                    near(at(x, y), c),
                    "{file}: {:?} at {x},{y} in {b:?}",
                    at(x, y)
                );
            }
            // outside, 2 px from each edge (where the image goes on)
            for (x, y) in [
                (x0 - 2.0, cy),
                (x1 + 2.0, cy),
                (cx, y0 - 2.0),
                (cx, y1 + 2.0),
            ] {
                if x >= 0.0 && y >= 0.0 && x < 150.0 && y < 150.0 {
                    assert!(
                        !near(at(x, y), c),
                        "{file}: colour outside {b:?} at {x},{y}"
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} boxes checked");
}

/// The box counts are of the images written: an image the split leaves
/// out takes its objects with it, readable or not, and an object that
/// cannot be read counts with its image.
#[test]
fn box_counts_are_of_the_images_written() {
    let env = TestEnv::new();
    let obj = |x0: &str| {
        format!(
            "<object><name>car</name><bndbox><xmin>{x0}</xmin><ymin>10</ymin><xmax>40</xmax><ymax>30</ymax></bndbox></object>"
        )
    };
    synth_voc(&env, "voc", 1, 100, 80);
    let jpeg = env.read("voc/JPEGImages/seg00_00000.jpg");
    for (dir, name, objs) in [
        ("g1", "a", vec![obj("10")]),
        ("g2", "b", vec![obj("10"), obj("nan")]),
        ("g3", "c", vec![obj("12"), obj("x")]),
    ] {
        env.write(&format!("s/{dir}/{name}.jpg"), &jpeg);
        env.write(
            &format!("s/{dir}/{name}.xml"),
            format!(
                "<annotation><filename>{name}.jpg</filename><size><width>100</width><height>80</height></size>{}</annotation>",
                objs.concat()
            )
            .as_bytes(),
        );
    }
    env.write(
        "b.toml",
        b"name = \"b\"\non_error = \"skip\"\n[[sources]]\ntype = \"voc\"\nroot = \"s\"\n\
          group = \"^(g.)/\"\n[split]\nmethod = \"explicit\"\n[split.assign]\n\
          train = [\"g1\"]\nval = [\"g3\"]\n[[outputs]]\nformat = \"coco\"\n",
    );
    env.ok(&["build", "b.toml", "--out", "out"]);
    let b = &json(&env, "out/manifest.json")["detection"]["boxes"];
    // a (1) and c (2, one unreadable); b and its two objects are not written
    assert_eq!(b["objects_declared"], 3, "{b}");
    assert_eq!(b["objects_kept"], 2, "{b}");
    let dropped = b["dropped"].as_object().unwrap();
    assert_eq!(dropped.len(), 1, "{b}");
    assert!(dropped.keys().all(|k| k.contains("\"x\"")), "{b}");
    let listed = b["objects"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{b}");
    assert_eq!(listed[0]["class"], "car", "{b}");
    assert!(
        listed[0]["origin"].as_str().unwrap().contains("c.xml:"),
        "{b}"
    );
}

/// Bad boxes are dropped or clipped and counted, each listed with its
/// file:line; an image left without boxes is kept for COCO and left out of
/// RecordIO (counted), and num_training_samples counts the records.
#[test]
fn bad_boxes_are_counted_with_their_place_and_background_images_handled() {
    let env = TestEnv::new();
    synth_voc(&env, "voc", 3, 100, 80);
    let obj =
        |name: &str, b: &str| format!("<object><name>{name}</name><bndbox>{b}</bndbox></object>");
    let coords = |x0: &str, y0: &str, x1: &str, y1: &str| {
        format!("<xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax>")
    };
    let xml = format!(
        "<annotation><filename>bad.jpg</filename><size><width>100</width><height>80</height></size>\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n</annotation>",
        obj("D00", &coords("10", "10", "50.5", "40")),
        obj("D00", &coords("10", "10", "50.5", "40")),
        obj("D10", &coords("60", "60", "140", "79")),
        // a duplicate that reaches past the edge too: counted as a
        // duplicate only, not also as clipped
        obj("D10", &coords("60", "60", "140", "79")),
        obj("D10", &coords("30", "30", "20", "50")),
        obj("D20", &coords("nan", "1", "5", "5")),
        obj("cat", &coords("1", "1", "5", "5")),
        // wide enough to pass xmax > xmin, too thin to be written as more than 0
        obj("D40", &coords("10", "10", "10.0000001", "20")),
    );
    std::fs::copy(
        env.path("voc/JPEGImages/seg00_00000.jpg"),
        env.path("voc/JPEGImages/bad.jpg"),
    )
    .unwrap();
    env.write("voc/Annotations/bad.xml", xml.as_bytes());
    // an image whose only box lies outside it
    std::fs::copy(
        env.path("voc/JPEGImages/seg00_00000.jpg"),
        env.path("voc/JPEGImages/empty.jpg"),
    )
    .unwrap();
    env.write(
        "voc/Annotations/empty.xml",
        format!(
            "<annotation><filename>empty.jpg</filename><size><width>100</width><height>80</height></size>{}</annotation>",
            obj("D00", &coords("120", "10", "150", "40"))
        )
        .as_bytes(),
    );
    let r = recipe(
        &env,
        "b",
        "type = \"voc\"\nroot = \"voc\"",
        &["format = \"recordio\"", "format = \"coco\""],
        "[labels]\nnames = [\"D00\", \"D10\", \"D20\", \"D40\"]\n[transform]\nencoding = \"passthrough\"\n",
    );
    let out = env.ok(&["build", &r, "--out", "out"]);
    assert_stderr_has(&out, "boxes:");
    assert_stderr_has(&out, "bad.xml:");
    let m = json(&env, "out/manifest.json");
    let b = &m["detection"]["boxes"];
    assert_eq!(
        b["dropped"]["duplicate of another box of the same class"], 2,
        "{b}"
    );
    assert_eq!(b["dropped"]["zero or negative width or height"], 2, "{b}");
    assert_eq!(
        b["dropped"]["unreadable <xmin> \"nan\" in <bndbox>"], 1,
        "{b}"
    );
    assert_eq!(b["dropped"]["class not in labels.names"], 1, "{b}");
    assert_eq!(b["dropped"]["outside the image"], 1, "{b}");
    assert_eq!(b["changed"]["clipped to the image"], 1, "{b}");
    assert_eq!(b["images_without_objects"], 1, "{b}");
    let listed = b["objects"].as_array().unwrap();
    assert!(
        listed
            .iter()
            .all(|o| o["origin"].as_str().unwrap().contains(".xml:")),
        "{b}"
    );
    // an object that cannot be read is listed with the class its file names
    let nan = listed
        .iter()
        .find(|o| o["what"].as_str().unwrap().contains("nan"))
        .unwrap();
    assert_eq!(nan["class"], "D20", "{b}");
    // the clipped box ends at the image's edge
    let coco = coco_boxes(&json(&env, "out/complete/coco/annotations/train.json"));
    assert!(
        coco["bad.jpg"].contains(&("D10".to_string(), [60.0, 60.0, 40.0, 19.0])),
        "{:?}",
        coco["bad.jpg"]
    );
    assert!(coco["empty.jpg"].is_empty());
    // RecordIO cannot hold the empty image: left out and counted
    let lst = String::from_utf8(env.read("out/complete/recordio/train.lst")).unwrap();
    assert!(!lst.contains("empty.jpg"));
    assert_eq!(
        m["detection"]["left_out"]["complete"]["recordio"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap(),
        1
    );
    let hp = json(&env, "out/complete/hyperparameters.json");
    assert_eq!(hp["num_training_samples"], lst.lines().count().to_string());
    // the manifest counts the records written, so verify passes the build
    // and still checks that count
    assert_eq!(
        m["records"]["complete/recordio/train.rec"]
            .as_u64()
            .unwrap(),
        lst.lines().count() as u64
    );
    env.ok(&["verify", "out"]);
    // boxes.outside = "drop": the clipped box goes too
    let r2 = recipe(
        &env,
        "b2",
        "type = \"voc\"\nroot = \"voc\"",
        &["format = \"coco\""],
        "[boxes]\noutside = \"drop\"\nempty_images = \"drop\"\n[split]\ntrain = 0.5\nvalidation = 0.5\n\
         [transform]\nencoding = \"passthrough\"\n",
    );
    env.ok(&["build", &r2, "--out", "out2"]);
    let coco = coco_boxes(&json(&env, "out2/complete/coco/annotations/train.json"));
    assert!(!coco.contains_key("empty.jpg"));
    // the ratios are the shares of the images written, the dropped one not
    // among them
    let m2 = json(&env, "out2/manifest.json");
    let splits = m2["variants"]["complete"]["splits"].as_object().unwrap();
    let total: u64 = splits.values().map(|s| s["items"].as_u64().unwrap()).sum();
    assert_eq!(total, 4, "{splits:?}");
    for (name, s) in splits {
        let share = s["items"].as_u64().unwrap() as f64 / total as f64;
        let got = m2["split_ratios"][name]["achieved"].as_f64().unwrap();
        assert!((got - share).abs() < 1e-12, "{name}: {got} vs {share}");
    }
    assert!(!coco["bad.jpg"].iter().any(|(c, _)| c == "D10"));
}

/// Wrong outputs for the kind of dataset are refused before any work.
#[test]
fn box_outputs_need_box_sources_and_back() {
    let env = TestEnv::new();
    env.synth("imgs", 2, 2, 32, 32);
    let r = recipe(
        &env,
        "x",
        "type = \"folders\"\nroot = \"imgs\"",
        &["format = \"coco\""],
        "",
    );
    let out = env.run(&["build", &r, "--out", "out"]);
    assert_eq!(out.status.code(), Some(2));
    assert_stderr_has(&out, "holds boxes, but the sources give class labels");
    synth_voc(&env, "voc", 2, 64, 48);
    let r = recipe(
        &env,
        "y",
        "type = \"voc\"\nroot = \"voc\"",
        &["format = \"folders\""],
        "",
    );
    let out = env.run(&["build", &r, "--out", "out"]);
    assert_eq!(out.status.code(), Some(2));
    assert_stderr_has(&out, "holds class labels, but the sources give boxes");
    assert!(!env.path("out").exists());
}

/// The real VOC files (float coordinates, empty <pose/>, <truncated/>,
/// <difficult/>) and labelme files build, their quirks counted.
#[test]
fn real_voc_and_labelme_files_build() {
    let Some(shared) = shared_data() else { return };
    let env = TestEnv::new();
    let voc = shared.join("detection/labelme_voc_bbox");
    let r = recipe(
        &env,
        "v",
        &format!("type = \"voc\"\nroot = \"{}\"", voc.display()),
        &["format = \"coco\"", "format = \"sagemaker-detection\""],
        "[transform]\nencoding = \"passthrough\"\n",
    );
    env.ok(&["build", &r, "--out", "out"]);
    let m = json(&env, "out/manifest.json");
    let b = &m["detection"]["boxes"];
    assert_eq!(b["objects_declared"], 9, "{b}");
    assert!(
        b["quirks"]["float coordinates"].as_u64().unwrap() >= 1,
        "{b}"
    );
    let coco = coco_boxes(&json(&env, "out/complete/coco/annotations/train.json"));
    assert_eq!(coco.len(), 3);
    assert!(coco
        .values()
        .flatten()
        .any(|(_, b)| b.iter().any(|v| v.fract() != 0.0)));
    let lm = shared.join("detection/labelme_coco_instances/labelme_source");
    let r = recipe(
        &env,
        "l",
        &format!("type = \"labelme\"\nroot = \"{}\"", lm.display()),
        &["format = \"coco\""],
        "[transform]\nencoding = \"passthrough\"\n",
    );
    env.ok(&["build", &r, "--out", "out-l"]);
    let doc = json(&env, "out-l/complete/coco/annotations/train.json");
    // labelme's `__ignore__` regions are not a class
    assert!(!doc["categories"].to_string().contains("__ignore__"));
    let coco = coco_boxes(&doc);
    assert!(!coco.is_empty() && coco.values().any(|v| !v.is_empty()));
}

/// `jpeg` with an EXIF APP1 segment saying `orientation`, right after SOI.
pub(crate) fn with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    tiff.extend_from_slice(&1u16.to_le_bytes()); // one IFD entry
    tiff.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// An image stored sideways with EXIF orientation 6: boxes drawn on the
/// stored pixels (the declared size is the stored one) are turned with the
/// image, so they stay on the painted rectangles of the upright output; a
/// pass-through build refuses it (readers disagree on turning it); an
/// ambiguous declared size asks for boxes.exif_frame.
#[test]
fn exif_orientation_turns_boxes_drawn_on_the_stored_pixels() {
    let env = TestEnv::new();
    synth_voc(&env, "voc", 4, 240, 160);
    for k in 0..4 {
        let name = format!("voc/JPEGImages/seg{:02}_{k:05}.jpg", k % 6);
        let data = env.read(&name);
        env.write(&name, &with_orientation(&data, 6));
    }
    let r = recipe(
        &env,
        "x",
        "type = \"voc\"\nroot = \"voc\"",
        &["format = \"coco\""],
        "[transform]\nencoding = \"png\"\n",
    );
    env.ok(&["build", &r, "--out", "out"]);
    let doc = json(&env, "out/complete/coco/annotations/train.json");
    let m = json(&env, "out/manifest.json");
    assert!(
        m["detection"]["boxes"]["changed"]["turned with the image's EXIF orientation"]
            .as_u64()
            .unwrap()
            > 0
    );
    let colours = [
        [230u8, 20, 20],
        [20, 200, 20],
        [20, 40, 230],
        [240, 220, 10],
    ];
    let mut proc = imgprep::image::Processor::new().unwrap();
    let spec = imgprep::image::ImageSpec::default();
    for img in doc["images"].as_array().unwrap() {
        assert_eq!(
            (img["width"].as_u64(), img["height"].as_u64()),
            (Some(160), Some(240))
        );
        let file = img["file_name"].as_str().unwrap();
        let px = proc
            .decode(&env.read(&format!("out/complete/coco/train/{file}")), &spec)
            .unwrap()
            .pixels;
        for a in doc["annotations"].as_array().unwrap() {
            if a["image_id"] != img["id"] {
                continue;
            }
            let c = colours[a["category_id"].as_u64().unwrap() as usize - 1];
            let b: Vec<f64> = a["bbox"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let (x, y) = ((b[0] + b[2] / 2.0) as usize, (b[1] + b[3] / 2.0) as usize);
            let k = (y * px.width as usize + x) * 3;
            let got = &px.data[k..k + 3];
            assert!(
                got.iter()
                    .zip(c)
                    .all(|(p, q)| (*p as i32 - q as i32).abs() < 40),
                "{file}: {got:?} at the centre of {b:?}, want {c:?}"
            );
        }
    }
    // pass-through: refused, with the way out
    let r = recipe(
        &env,
        "p",
        "type = \"voc\"\nroot = \"voc\"",
        &["format = \"coco\""],
        "[transform]\nencoding = \"passthrough\"\n",
    );
    let out = env.run(&["build", &r, "--out", "out-p"]);
    assert_eq!(out.status.code(), Some(1));
    assert_stderr_has(&out, "EXIF orientation 6");
    assert_stderr_has(&out, "encoding = \"jpg\"");
    // a square picture cannot tell which way the boxes were drawn
    synth_voc(&env, "sq", 1, 120, 120);
    let data = env.read("sq/JPEGImages/seg00_00000.jpg");
    env.write("sq/JPEGImages/seg00_00000.jpg", &with_orientation(&data, 6));
    let r = recipe(
        &env,
        "s",
        "type = \"voc\"\nroot = \"sq\"",
        &["format = \"coco\""],
        "",
    );
    // a question for a setting (exit 2), whatever on_error says: skipping
    // would drop every such image
    let out = env.run(&["build", &r, "--out", "out-s"]);
    assert_eq!(out.status.code(), Some(2));
    assert_stderr_has(&out, "boxes.exif_frame");
    env.write(
        "s1.toml",
        b"name = \"s1\"\non_error = \"skip\"\n[[sources]]\ntype = \"voc\"\nroot = \"sq\"\n\
          [[outputs]]\nformat = \"coco\"\n",
    );
    let out = env.run(&["build", "s1.toml", "--out", "out-s1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_stderr_has(&out, "boxes.exif_frame");
    // a missing root is a usage error, as for other sources
    let r = recipe(
        &env,
        "gone",
        "type = \"voc\"\nroot = \"nowhere\"",
        &["format = \"coco\""],
        "",
    );
    let out = env.run(&["build", &r, "--out", "out-g"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_stderr_has(&out, "nowhere: is not a folder");
    let r = recipe(
        &env,
        "s2",
        "type = \"voc\"\nroot = \"sq\"",
        &["format = \"coco\""],
        "[boxes]\nexif_frame = \"stored\"\n",
    );
    env.ok(&["build", &r, "--out", "out-s2"]);
}

/// An annotation whose image is missing is a missing item: an error naming
/// the XML under on_error = "fail", a listed skip under "skip".
#[test]
fn an_annotation_without_its_image_is_a_missing_item() {
    let env = TestEnv::new();
    synth_voc(&env, "voc", 3, 64, 48);
    std::fs::remove_file(env.path("voc/JPEGImages/seg01_00001.jpg")).unwrap();
    // and a broken XML file: one unreadable item, not the end of the source
    env.write(
        "voc/Annotations/seg02_00002.xml",
        b"<annotation>\n<object><name>D00</name>\n",
    );
    let r = recipe(
        &env,
        "m",
        "type = \"voc\"\nroot = \"voc\"",
        &["format = \"coco\""],
        "",
    );
    let out = env.run(&["build", &r, "--out", "out"]);
    assert_eq!(out.status.code(), Some(1));
    assert_stderr_has(&out, "seg01_00001.xml");
    assert_stderr_has(&out, "no image for this annotation");
    let r = recipe(
        &env,
        "m2",
        "type = \"voc\"\nroot = \"voc\"",
        &["format = \"coco\""],
        "on_error = \"skip\"\n",
    );
    let r_text = String::from_utf8(env.read(&r)).unwrap();
    // (on_error is a top-level key: put it first)
    env.write(
        &r,
        format!(
            "on_error = \"skip\"\n{}",
            r_text.replace("on_error = \"skip\"\n", "")
        )
        .as_bytes(),
    );
    env.ok(&["build", &r, "--out", "out2"]);
    let m = json(&env, "out2/manifest.json");
    let skipped = m["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    let reasons: Vec<&str> = skipped
        .iter()
        .map(|s| s["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("no image")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("unreadable annotation file")),
        "{reasons:?}"
    );
    assert!(skipped
        .iter()
        .any(|s| s["origin"].as_str().unwrap().contains("seg02_00002.xml:")));
}

/// Editing a box in an annotation file makes the next build redo the
/// outputs (the images did not change, the boxes did).
#[test]
fn an_edited_box_is_not_up_to_date() {
    let env = TestEnv::new();
    synth_voc(&env, "voc", 2, 64, 48);
    let r = recipe(
        &env,
        "u",
        "type = \"voc\"\nroot = \"voc\"",
        &["format = \"coco\""],
        "",
    );
    env.ok(&["build", &r, "--out", "out"]);
    let before = env.read("out/complete/coco/annotations/train.json");
    let x = String::from_utf8(env.read("voc/Annotations/seg00_00000.xml")).unwrap();
    let at = x.find("<xmin>").unwrap() + 6;
    let end = x[at..].find('<').unwrap() + at;
    let edited = format!("{}{}{}", &x[..at], "1.5", &x[end..]);
    env.write("voc/Annotations/seg00_00000.xml", edited.as_bytes());
    env.ok(&["build", &r, "--out", "out"]);
    assert_ne!(before, env.read("out/complete/coco/annotations/train.json"));
    let m = json(&env, "out/manifest.json");
    assert_ne!(m["fingerprint"], Value::Null);
}

/// An annotation-only change re-decodes no image: the item cache is keyed by
/// the image file and the transform, and boxes are moved into output pixels
/// after the prepare stage, from the geometry the cache keeps.
#[test]
fn a_changed_annotation_decodes_no_image_again() {
    let env = TestEnv::new();
    synth_voc(&env, "voc", 6, 160, 120);
    let r = recipe(
        &env,
        "boxes",
        "type = \"voc\"\nroot = \"voc\"",
        &["format = \"coco\""],
        "[split]\ntrain = 0.5\nvalidation = 0.5\n[transform]\nresize = \"80x60\"\n",
    );
    let first = env.ok_json(&["build", &r, "--out", "out", "--json"]);
    assert_eq!(first["processed"], 6);
    // move the first box of one file by 20 px (halved by the resize)
    let xml_dir = env.path("voc/Annotations");
    let mut xmls: Vec<_> = std::fs::read_dir(&xml_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    xmls.sort();
    let text = std::fs::read_to_string(&xmls[0]).unwrap();
    // the first object's <xmin>, as written
    let written = text
        .split("<xmin>")
        .nth(1)
        .and_then(|t| t.split("</xmin>").next())
        .unwrap();
    let xmin: f64 = written.trim().parse().unwrap();
    let moved = text.replacen(
        &format!("<xmin>{written}</xmin>"),
        &format!("<xmin>{}</xmin>", xmin - 20.0),
        1,
    );
    assert_ne!(moved, text);
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&xmls[0], moved).unwrap();
    let after = env.ok_json(&["build", &r, "--out", "out", "--json"]);
    assert_eq!(
        (after["processed"].clone(), after["cached"].clone()),
        (0.into(), 6.into()),
        "{after}"
    );
    // the moved box is written, exactly as a clean build writes it
    env.ok(&["build", &r, "--out", "clean"]);
    for split in ["train", "validation"] {
        let rel = format!("complete/coco/annotations/{split}.json");
        assert_eq!(
            env.read(&format!("out/{rel}")),
            env.read(&format!("clean/{rel}")),
            "{rel}"
        );
    }
    let stem = xmls[0].file_stem().unwrap().to_string_lossy().into_owned();
    let found = ["train", "validation"].iter().any(|split| {
        let doc = json(&env, &format!("out/complete/coco/annotations/{split}.json"));
        coco_boxes(&doc)
            .iter()
            .filter(|(file, _)| file.contains(&stem))
            .any(|(_, boxes)| {
                boxes
                    .iter()
                    .any(|(_, b)| (b[0] - (xmin - 20.0) / 2.0).abs() < 1e-6)
            })
    });
    assert!(
        found,
        "the moved box (xmin {} at 80x60) is in the output",
        (xmin - 20.0) / 2.0
    );
}

/// An augmented manifest without push_to names its images by paths SageMaker
/// cannot read: said. With push_to nothing is said.
#[test]
fn an_augmented_manifest_without_push_to_is_said() {
    let env = TestEnv::new();
    synth_voc(&env, "voc", 3, 100, 80);
    let src = "type = \"voc\"\nroot = \"voc\"";
    let r = recipe(&env, "a", src, &["format = \"augmented-manifest\""], "");
    let out = env.ok(&["build", &r, "--out", "a"]);
    assert_stderr_has(&out, "augmented-manifest without push_to");
    let r = recipe(
        &env,
        "b",
        src,
        &["format = \"augmented-manifest\"\npush_to = \"s3://bucket/p\""],
        "",
    );
    let out = env.ok(&["build", &r, "--out", "b"]);
    assert!(
        !stderr(&out).contains("without push_to"),
        "{}",
        stderr(&out)
    );
}

/// Annotation files that cannot be read (not UTF-8, a FIFO) are unreadable
/// items: the build fails naming them, or under on_error = "skip" leaves
/// their images out, listed; never a stop under "skip", never a silent loss.
#[test]
fn unreadable_annotation_files_are_items_on_error_decides() {
    let env = TestEnv::new();
    synth_voc(&env, "voc", 4, 64, 48);
    let pass = "[transform]\nencoding = \"passthrough\"\n";
    let a = recipe(
        &env,
        "a",
        "type = \"voc\"\nroot = \"voc\"",
        &["format = \"yolo\""],
        pass,
    );
    env.ok(&["build", &a, "--out", "a"]);
    // copies of the YOLO set: one label file not UTF-8, one a FIFO
    let labels: Vec<std::path::PathBuf> = {
        let mut v: Vec<_> = std::fs::read_dir(env.path("a/complete/yolo/labels/train"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        v.sort();
        v
    };
    assert!(labels.len() >= 2, "{labels:?}");
    std::fs::write(&labels[0], b"\xff\xfe0 0.5 0.5 0.2 0.2\r\n").unwrap();
    std::fs::remove_file(&labels[1]).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&labels[1])
        .status()
        .unwrap();
    assert!(made.success());
    // and a VOC file that is not UTF-8
    let xml = env.path("voc/Annotations/seg01_00001.xml");
    let mut bytes = std::fs::read(&xml).unwrap();
    bytes.splice(0..0, *b"\xff\xfe");
    std::fs::write(&xml, bytes).unwrap();
    for (name, source, bad) in [
        ("y", "type = \"yolo\"\nroot = \"a/complete/yolo\"", 2usize),
        ("v", "type = \"voc\"\nroot = \"voc\"", 1),
    ] {
        let r = recipe(&env, name, source, &["format = \"coco\""], pass);
        let out = env.run(&["build", &r, "--out", &format!("{name}-fail")]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert_stderr_has(&out, "unreadable annotation file");
        let text = String::from_utf8(env.read(&r)).unwrap();
        env.write(&r, format!("on_error = \"skip\"\n{text}").as_bytes());
        env.ok(&["build", &r, "--out", name]);
        let m = json(&env, &format!("{name}/manifest.json"));
        let reasons: Vec<String> = m["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["reason"].to_string())
            .collect();
        assert_eq!(reasons.len(), bad, "{name}: {reasons:?}");
        assert!(
            reasons
                .iter()
                .all(|r| r.contains("unreadable annotation file")),
            "{reasons:?}"
        );
    }
}

/// Sample variants of a detection set keep their share of every class's
/// objects in every split (they used to count each image under its first
/// class only, so rarer classes thinned out or vanished), and `count`
/// keeps that many images holding each class.
#[test]
fn sample_variants_keep_every_class() {
    let env = TestEnv::new();
    synth_voc(&env, "voc", 160, 64, 48);
    let mut names: Vec<String> = std::fs::read_dir(env.path("voc/JPEGImages"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 160);
    // every image holds "common"; one in four "mid", one in sixteen "rare"
    let mut classes_of: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (k, f) in names.iter().enumerate() {
        let mut classes = vec!["common"];
        if k % 4 == 0 {
            classes.push("mid");
        }
        if k % 16 == 0 {
            classes.push("rare");
        }
        let objects: String = classes
            .iter()
            .map(|c| format!("<object><name>{c}</name><bndbox><xmin>4</xmin><ymin>4</ymin><xmax>30</xmax><ymax>30</ymax></bndbox></object>"))
            .collect();
        let stem = f.trim_end_matches(".jpg");
        env.write(
            &format!("voc/Annotations/{stem}.xml"),
            format!("<annotation><filename>{f}</filename><size><width>64</width><height>48</height></size>{objects}</annotation>").as_bytes(),
        );
        classes_of.insert(f.clone(), classes);
    }
    let r = recipe(
        &env,
        "v",
        "type = \"voc\"\nroot = \"voc\"",
        &["format = \"coco\""],
        "[split]\nmethod = \"stratified\"\ntrain = 0.6\nvalidation = 0.2\ntest = 0.2\n\
         [transform]\nencoding = \"passthrough\"\n\
         [[variants]]\nname = \"complete\"\n[[variants]]\nname = \"half\"\nfraction = 0.5\n\
         [[variants]]\nname = \"two\"\ncount = 2\n",
    );
    env.ok(&["build", &r, "--out", "o"]);
    // objects of each class per (variant, split)
    let items = String::from_utf8(env.read("o/items.csv")).unwrap();
    let mut n: BTreeMap<(String, String, &str), usize> = BTreeMap::new();
    let mut images: BTreeMap<(String, String), usize> = BTreeMap::new();
    for line in items.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (variant, split, item) = (f[0].to_string(), f[1].to_string(), f[3]);
        *images.entry((variant.clone(), split.clone())).or_default() += 1;
        for c in &classes_of[item] {
            *n.entry((variant.clone(), split.clone(), c)).or_default() += 1;
        }
    }
    let count = |v: &str, sp: &str, c: &str| {
        n.get(&(v.to_string(), sp.to_string(), c))
            .copied()
            .unwrap_or(0)
    };
    for sp in ["train", "validation", "test"] {
        for c in ["common", "mid", "rare"] {
            let all = count("complete", sp, c);
            assert!(all > 0, "{sp} {c}: none in the complete split");
            let half = count("half", sp, c) as f64;
            assert!(
                (half - all as f64 / 2.0).abs() <= 1.0,
                "half {sp} {c}: {half} of {all}"
            );
            assert!(
                count("two", sp, c) >= 2.min(all),
                "two {sp} {c}: {}",
                count("two", sp, c)
            );
        }
        // few more images than the rarest classes need
        assert!(
            images[&("two".to_string(), sp.to_string())] <= 6,
            "two {sp}: {} images",
            images[&("two".to_string(), sp.to_string())]
        );
    }
}

/// A VOC `<part>` (head, hand) moves with the resize and the crop like its
/// object's box (it used to keep the source's pixels), is left out when the
/// crop cuts it away, and is written back as a `<part>` by the VOC output.
#[test]
fn parts_move_with_their_object() {
    let env = TestEnv::new();
    synth_voc(&env, "voc", 1, 300, 200);
    let xml = "<annotation><filename>seg00_00000.jpg</filename><size><width>300</width><height>200</height></size>\
        <object><name>person</name><bndbox><xmin>100</xmin><ymin>50</ymin><xmax>200</xmax><ymax>190</ymax></bndbox>\
        <part><name>head</name><bndbox><xmin>120</xmin><ymin>50</ymin><xmax>160</xmax><ymax>90</ymax></bndbox></part>\
        <part><name>hand</name><bndbox><xmin>10</xmin><ymin>100</ymin><xmax>30</xmax><ymax>120</ymax></bndbox></part>\
        </object></annotation>";
    for f in std::fs::read_dir(env.path("voc/Annotations")).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    env.write("voc/Annotations/seg00_00000.xml", xml.as_bytes());
    // short side 100 after a centre crop to 200x200 from x = 50: x' = (x - 50) / 2
    let r = recipe(
        &env,
        "p",
        "type = \"voc\"\nroot = \"voc\"",
        &["format = \"coco\"", "format = \"voc\""],
        "[split]\nmethod = \"stratified\"\ntrain = 1.0\nvalidation = 0.0\n\
         [transform]\nresize = 100\ncenter_crop = true\n",
    );
    env.ok(&["build", &r, "--out", "o"]);
    let coco = json(&env, "o/complete/coco/annotations/train.json");
    let a = &coco["annotations"][0];
    assert_eq!(a["bbox"], serde_json::json!([25, 25, 50, 70]), "{a}");
    assert_eq!(a["attributes"]["part:head"], "35,25,55,45", "{a}");
    // the hand lay left of the crop
    assert!(a["attributes"].get("part:hand").is_none(), "{a}");
    let xml: Vec<std::path::PathBuf> = walkdir(&env.path("o/complete/voc"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    assert_eq!(xml.len(), 1, "{xml:?}");
    let voc = std::fs::read_to_string(&xml[0]).unwrap();
    assert!(
        voc.contains("<part>\n      <name>head</name>\n      <bndbox>\n        <xmin>35</xmin>"),
        "{voc}"
    );
}

fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// COCO's `area` (a segment's) is kept through a re-encode and scaled with
/// a resize (it became the box's area whenever the image was re-encoded);
/// an object the crop cuts gets its box's area.
#[test]
fn coco_areas_follow_the_geometry_not_the_encoding() {
    let env = TestEnv::new();
    env.synth("img", 1, 1, 300, 200);
    env.write(
        "ann.json",
        br#"{"images": [{"id": 1, "file_name": "class_0/img_00000.jpg", "width": 300, "height": 200}],
             "annotations": [
               {"id": 1, "image_id": 1, "category_id": 1, "bbox": [60, 10, 50, 40], "iscrowd": 0, "area": 1234.5},
               {"id": 2, "image_id": 1, "category_id": 1, "bbox": [30, 10, 40, 40], "iscrowd": 0, "area": 999}],
             "categories": [{"id": 1, "name": "pothole"}]}"#,
    );
    let src = "type = \"coco\"\nfile = \"ann.json\"\nimages = \"img\"";
    let areas = |name: &str, transform: &str| -> Vec<f64> {
        let r = recipe(&env, name, src, &["format = \"coco\""], transform);
        env.ok(&["build", &r, "--out", name]);
        let doc = json(
            &env,
            &format!("{name}/complete/coco/annotations/train.json"),
        );
        doc["annotations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["area"].as_f64().unwrap())
            .collect()
    };
    assert_eq!(
        areas("pass", "[transform]\nencoding = \"passthrough\"\n"),
        [1234.5, 999.0]
    );
    assert_eq!(areas("jpg", "[transform]\nquality = 90\n"), [1234.5, 999.0]);
    // short side 200 -> 100: a quarter of the pixels
    assert_eq!(
        areas("half", "[transform]\nresize = 100\n"),
        [308.625, 249.75]
    );
    // a centre crop (x from 50) cuts the second box: its box's area after
    // the crop and the resize (x 50..70, y 10..50 -> 10 x 20)
    assert_eq!(
        areas("crop", "[transform]\nresize = 100\ncenter_crop = true\n"),
        [308.625, 200.0]
    );
}

/// `convert` and `init` on a detection tree say what it is and which source
/// reads it (they made a classification set of its folders: one class,
/// `JPEGImages`, for a VOC tree).
#[test]
fn convert_and_init_point_detection_trees_to_their_source() {
    let env = TestEnv::new();
    synth_voc(&env, "voc", 4, 64, 48);
    for args in [
        vec!["convert", "voc", "out", "--to", "recordio"],
        vec!["init", "voc", "--output", "r.toml"],
    ] {
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("looks like a detection dataset (Annotations/")
                && err.contains("type = \"voc\""),
            "{err}"
        );
        assert!(!env.path("out").exists() && !env.path("r.toml").exists());
    }
    // a YOLO tree and a COCO file are named too
    env.synth("y/images/train", 1, 2, 16, 16);
    env.write("y/labels/train/img_00000.txt", b"0 0.5 0.5 0.2 0.2\n");
    let err = stderr(&env.run(&["convert", "y", "yo", "--to", "recordio"]));
    assert!(err.contains("type = \"yolo\""), "{err}");
    env.synth("c/images", 1, 2, 16, 16);
    env.write(
        "c/annotations/instances_train.json",
        br#"{"images": [], "annotations": [], "categories": []}"#,
    );
    let err = stderr(&env.run(&["convert", "c", "co", "--to", "recordio"]));
    assert!(
        err.contains("annotations/instances_train.json") && err.contains("type = \"coco\""),
        "{err}"
    );
}

/// Files saved by Windows editors start with a byte-order mark and end
/// lines with CR LF: a class list saved so names the same classes (its
/// first class was `\u{feff}D00`, and every D00 box was dropped as a class
/// not in the list), and a COCO file saved so is read.
#[test]
fn files_with_a_byte_order_mark_read_as_without() {
    let env = TestEnv::new();
    synth_voc(&env, "voc", 6, 64, 48);
    env.write("classes.txt", "\u{feff}D00\r\nD10\r\nD20\r\n".as_bytes());
    let r = recipe(
        &env,
        "n",
        "type = \"voc\"\nroot = \"voc\"",
        &["format = \"coco\""],
        "[labels]\nnames = \"classes.txt\"\n",
    );
    env.ok(&["build", &r, "--out", "out"]);
    let m = json(&env, "out/manifest.json");
    let boxes = &m["detection"]["boxes"];
    assert_eq!(boxes["objects_declared"], boxes["objects_kept"], "{boxes}");
    assert_eq!(boxes["dropped"], serde_json::json!({}), "{boxes}");
    assert_eq!(m["labels"][0]["name"], "D00");
    // the COCO export, saved with a mark, read back as a source
    let coco = env.read("out/complete/coco/annotations/train.json");
    env.write("marked.json", &[b"\xEF\xBB\xBF".as_slice(), &coco].concat());
    let r2 = recipe(
        &env,
        "c",
        "type = \"coco\"\nfile = \"marked.json\"\nimages = \"out/complete/coco/train\"",
        &["format = \"coco\""],
        "",
    );
    env.ok(&["build", &r2, "--out", "out2"]);
    let back = json(&env, "out2/manifest.json");
    assert_eq!(
        back["detection"]["boxes"]["objects_kept"],
        boxes["objects_kept"]
    );
}

/// An image two annotation files claim (a labelImg XML copied under
/// another name, a COCO file_name listed twice) is an item declared twice:
/// under on_error = "fail" the build stops naming it; under "skip" one
/// declaration is left out and listed: the later one, but never the file
/// named after the image in favour of a stray copy (the copy, sorted first,
/// won and the build went on, exit 0, with its stale box).
#[test]
fn an_image_two_files_annotate_is_declared_twice() {
    let env = TestEnv::new();
    env.synth("p", 1, 1, 100, 80);
    let img = env.read("p/class_0/img_00000.jpg");
    env.write("s/b.jpg", &img);
    let xml = |xmin: u32| {
        format!(
            "<annotation><filename>b.jpg</filename><size><width>100</width><height>80</height>\
             <depth>3</depth></size><object><name>car</name><bndbox><xmin>{xmin}</xmin>\
             <ymin>10</ymin><xmax>40</xmax><ymax>30</ymax></bndbox></object></annotation>"
        )
    };
    env.write("s/b.xml", xml(10).as_bytes());
    env.write("s/a.xml", xml(5).as_bytes());
    let r = recipe(
        &env,
        "d",
        "type = \"voc\"\nroot = \"s\"",
        &["format = \"coco\""],
        "",
    );
    let out = env.run(&["build", &r, "--out", "out"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_stderr_has(&out, "b.jpg is annotated by");
    assert!(!env.path("out/manifest.json").exists());
    let skip = |name: &str, source: &str| {
        let file = format!("{name}.toml");
        env.write(
            &file,
            format!(
                "on_error = \"skip\"\nname = \"{name}\"\n[[sources]]\n{source}\n\
                 [[outputs]]\nformat = \"coco\"\n"
            )
            .as_bytes(),
        );
        env.ok(&["build", &file, "--out", name]);
        json(
            &env,
            &format!("{name}/complete/coco/annotations/train.json"),
        )
    };
    let coco = skip("voc", "type = \"voc\"\nroot = \"s\"");
    assert_eq!(coco["annotations"].as_array().unwrap().len(), 1);
    assert_eq!(coco["annotations"][0]["bbox"][0], 10.0, "{coco}");
    // COCO: an image listed twice under one file_name, the later left out
    env.write(
        "c.json",
        br#"{"images": [{"id": 1, "file_name": "b.jpg", "width": 100, "height": 80},
                       {"id": 2, "file_name": "b.jpg", "width": 100, "height": 80}],
             "categories": [{"id": 1, "name": "car"}],
             "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 20]},
                             {"id": 2, "image_id": 2, "category_id": 1, "bbox": [5, 10, 35, 20]}]}"#,
    );
    let r = recipe(
        &env,
        "c",
        "type = \"coco\"\nfile = \"c.json\"\nimages = \"s\"",
        &["format = \"coco\""],
        "",
    );
    let out = env.run(&["build", &r, "--out", "out"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_stderr_has(&out, "is also image id 1's");
    let coco = skip("coco", "type = \"coco\"\nfile = \"c.json\"\nimages = \"s\"");
    assert_eq!(coco["annotations"].as_array().unwrap().len(), 1);
    assert_eq!(coco["annotations"][0]["bbox"][0], 10.0, "{coco}");
}

/// A YOLO label file whose image is gone is an annotation without its
/// image, as a VOC or labelme file is (it was passed over without a word,
/// its boxes not even counted); one whose image is there but not in the
/// dataset's lists is not.
#[test]
fn a_yolo_label_file_without_its_image_is_a_missing_item() {
    let env = TestEnv::new();
    synth_voc(&env, "voc", 4, 64, 48);
    let r = recipe(
        &env,
        "y",
        "type = \"voc\"\nroot = \"voc\"",
        &["format = \"yolo\""],
        "[transform]\nencoding = \"passthrough\"\n",
    );
    env.ok(&["build", &r, "--out", "y"]);
    let yolo = env.path("y/complete/yolo");
    let label = walkdir(&yolo.join("labels"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "txt"))
        .unwrap();
    let rel = label
        .strip_prefix(&yolo)
        .unwrap()
        .to_string_lossy()
        .replace("labels/", "images/");
    let image = yolo.join(rel.replace(".txt", ".jpg"));
    std::fs::rename(&image, env.path("aside.jpg")).unwrap();
    let src = "type = \"yolo\"\nroot = \"y/complete/yolo\"";
    let r = recipe(&env, "back", src, &["format = \"coco\""], "");
    let out = env.run(&["build", &r, "--out", "back"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_stderr_has(&out, "no image for this annotation");
    assert_stderr_has(&out, label.file_name().unwrap().to_str().unwrap());
    let file = "skip.toml";
    env.write(
        file,
        format!("on_error = \"skip\"\nname = \"s\"\n[[sources]]\n{src}\n[[outputs]]\nformat = \"coco\"\n")
            .as_bytes(),
    );
    env.ok(&["build", file, "--out", "skipped"]);
    let m = json(&env, "skipped/manifest.json");
    let skipped = m["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(skipped[0]["reason"]
        .as_str()
        .unwrap()
        .starts_with("no image for this annotation"));
}

/// A rebuild after one box moved rewrites that image's annotation file
/// only: the others already hold what it would write and stay as they are
/// (the same files), as do the re-encoded images; the result is a clean
/// build's.
#[test]
fn a_rebuild_rewrites_only_the_files_that_change() {
    use std::os::unix::fs::MetadataExt;
    let env = TestEnv::new();
    synth_voc(&env, "voc", 6, 160, 120);
    let r = recipe(
        &env,
        "one",
        "type = \"voc\"\nroot = \"voc\"",
        &["format = \"sagemaker-detection\""],
        "[transform]\nresize = \"80x60\"\n",
    );
    env.ok(&["build", &r, "--out", "out"]);
    let inodes = || -> BTreeMap<String, u64> {
        walkdir(&env.path("out/complete"))
            .into_iter()
            .map(|p| {
                let rel = p
                    .strip_prefix(env.path("out"))
                    .unwrap()
                    .display()
                    .to_string();
                (rel, std::fs::metadata(&p).unwrap().ino())
            })
            .collect()
    };
    let before = inodes();
    let xml = env.path("voc/Annotations/seg01_00001.xml");
    let text = std::fs::read_to_string(&xml).unwrap();
    let xmin = text
        .split("<xmin>")
        .nth(1)
        .unwrap()
        .split("</xmin>")
        .next()
        .unwrap();
    let moved = text.replacen(
        &format!("<xmin>{xmin}</xmin>"),
        &format!(
            "<xmin>{}</xmin>",
            xmin.trim().parse::<f64>().unwrap() - 10.0
        ),
        1,
    );
    std::fs::write(&xml, moved).unwrap();
    env.ok(&["build", &r, "--out", "out"]);
    let after = inodes();
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    let changed: Vec<&String> = after.keys().filter(|k| before[*k] != after[*k]).collect();
    assert_eq!(
        changed,
        ["complete/sagemaker-detection/train_annotation/seg01_00001.json"],
        "only the moved box's file is new"
    );
    env.ok(&["build", &r, "--out", "clean"]);
    for rel in after.keys() {
        assert_eq!(
            env.read(&format!("out/{rel}")),
            env.read(&format!("clean/{rel}")),
            "{rel}"
        );
    }
    env.ok(&["verify", "out"]);
}
