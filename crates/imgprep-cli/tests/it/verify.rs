//! `imgprep verify` and `inspect` catch what is wrong.

use crate::env::{stderr, stdout, TestEnv};

fn packed() -> TestEnv {
    let env = TestEnv::new();
    env.synth("imgs", 2, 5, 96, 64);
    env.ok(&["im2rec", "d", "imgs", "--list", "--recursive"]);
    env.ok(&["im2rec", "d", "imgs"]);
    env
}

fn verify_json(env: &TestEnv) -> (Option<i32>, serde_json::Value) {
    let out = env.run(&["verify", "d", "--json"]);
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap(),
    )
}

#[test]
fn a_good_dataset_verifies() {
    let env = packed();
    let (code, v) = verify_json(&env);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(
        (
            v["records"].as_u64(),
            v["idx_entries"].as_u64(),
            v["lst_entries"].as_u64()
        ),
        (Some(10), Some(10), Some(10))
    );
    // PREFIX.rec works too
    assert_eq!(env.run(&["verify", "d.rec", "-q"]).status.code(), Some(0));
}

#[test]
fn a_flipped_byte_in_an_image_is_caught() {
    let env = packed();
    let mut rec = env.read("d.rec");
    let n = rec.len();
    // inside the last image's entropy-coded data
    for b in &mut rec[n - 400..n - 300] {
        *b = 0xFF;
    }
    env.write("d.rec", &rec);
    let (code, v) = verify_json(&env);
    assert_eq!(code, Some(1), "{v}");
    assert!(v["problems"].as_u64().unwrap() >= 1);
}

#[test]
fn broken_framing_and_wrong_idx_offsets_are_caught() {
    let env = packed();
    let good = env.read("d.rec");
    env.write("d.rec", &good[..good.len() - 10]);
    let (code, v) = verify_json(&env);
    assert_eq!(code, Some(1));
    assert!(v["first_problems"].to_string().contains("framing"), "{v}");

    env.write("d.rec", &good);
    let idx = String::from_utf8(env.read("d.idx")).unwrap();
    let bad: String = idx
        .lines()
        .map(|l| {
            let (k, o) = l.split_once('\t').unwrap();
            format!("{k}\t{}\n", o.parse::<u64>().unwrap() + 4)
        })
        .collect();
    env.write("d.idx", bad.as_bytes());
    let (code, v) = verify_json(&env);
    assert_eq!(code, Some(1));
    assert_eq!(v["problems"].as_u64(), Some(10), "{v}");
}

#[test]
fn counts_and_labels_are_checked_against_the_lst() {
    let env = packed();
    let lst = String::from_utf8(env.read("d.lst")).unwrap();
    let mut lines: Vec<String> = lst.lines().map(String::from).collect();
    lines.pop();
    let first = lines[0].split('\t').map(String::from).collect::<Vec<_>>();
    lines[0] = format!("{}\t7.000000\t{}", first[0], first[2]);
    env.write("d.lst", (lines.join("\n") + "\n").as_bytes());
    let (code, v) = verify_json(&env);
    assert_eq!(code, Some(1));
    let text = v["first_problems"].to_string();
    assert!(
        text.contains("labels") && text.contains("entries"),
        "{text}"
    );
}

#[test]
fn inspect_lists_every_record() {
    let env = packed();
    let out = env.ok(&["inspect", "d.rec"]);
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 11, "{text}");
    assert!(text.contains("96x64x3"));
    let out = env.ok(&["inspect", "d.rec", "--json", "--limit", "3"]);
    assert_eq!(stdout(&out).lines().count(), 3);
}

/// A record whose image does not decode is that one problem: its place
/// and id still count for the `.idx` check (it was also called a key
/// pointing "where no record starts").
#[test]
fn an_undecodable_record_is_one_problem_not_an_idx_one() {
    let env = packed();
    let bytes = env.read("d.rec");
    let mut r = recordio::RecordReader::new(&bytes[..]);
    let (mut rec, mut idx) = (Vec::new(), Vec::new());
    let mut w = recordio::RecordWriter::new(&mut rec);
    let mut buf = Vec::new();
    let mut k = 0;
    while r.read_record(&mut buf).unwrap().is_some() {
        let (h, img) = recordio::ImageRecord::parse(&buf).unwrap();
        let mut payload = Vec::new();
        h.write_header(&mut payload);
        payload.extend_from_slice(if k == 1 { b"this is no image" } else { img });
        recordio::write_idx_line(&mut idx, h.id, w.position()).unwrap();
        w.write_record(&payload).unwrap();
        k += 1;
    }
    env.write("d.rec", &rec);
    env.write("d.idx", &idx);
    let (code, v) = verify_json(&env);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["problems"], 1, "{v}");
    assert!(v["first_problems"][0]
        .as_str()
        .unwrap()
        .contains("does not decode"));
}

/// Two records with one id (a `.lst` that names an index twice): the
/// `.idx` can reach only one of them. im2rec.py packs such a list too;
/// verify says so.
#[test]
fn an_id_listed_twice_is_a_problem() {
    let env = TestEnv::new();
    env.synth("imgs", 1, 2, 32, 24);
    // (im2rec refuses such a list: the files are made from two packs)
    env.write("a.lst", b"1\t0\tclass_0/img_00000.jpg\n");
    env.write("b.lst", b"1\t0\tclass_0/img_00001.jpg\n");
    env.ok(&["im2rec", "a", "imgs"]);
    env.ok(&["im2rec", "b", "imgs"]);
    let (a, b) = (env.read("a.rec"), env.read("b.rec"));
    env.write("d.rec", &[a.clone(), b].concat());
    env.write("d.idx", format!("1\t0\n1\t{}\n", a.len()).as_bytes());
    env.write(
        "d.lst",
        b"1\t0\tclass_0/img_00000.jpg\n1\t0\tclass_0/img_00001.jpg\n",
    );
    let (code, v) = verify_json(&env);
    assert_eq!(code, Some(1), "{v}");
    let text = v["first_problems"].to_string();
    for needle in [
        "has id 1, as an earlier record has",
        "key 1 is listed more than once",
        "index 1 is listed more than once",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
}

/// Labels a float32 record cannot hold as numbers are refused when the
/// list is read, not packed as NaN or inf.
#[test]
fn non_finite_labels_are_refused() {
    let env = TestEnv::new();
    env.synth("imgs", 1, 2, 32, 24);
    for bad in ["nan", "1e40", "-inf"] {
        env.write(
            "b.lst",
            format!("0\t{bad}\tclass_0/img_00000.jpg\n").as_bytes(),
        );
        let out = env.run(&["im2rec", "b", "imgs"]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{bad}: {}",
            crate::env::stderr(&out)
        );
        crate::env::assert_stderr_has(&out, "b.lst:1");
        assert!(!env.path("b.rec").exists());
    }
}

/// A manifest naming a path outside its folder is refused before anything
/// is read; a folder a build stopped writing is a problem (exit 1), named.
#[test]
fn verify_reads_only_inside_the_folder_and_names_an_unfinished_build() {
    let env = TestEnv::new();
    env.synth("p", 2, 3, 32, 24);
    env.ok(&["convert", "p", "o", "--to", "recordio"]);
    env.write("victim.txt", b"victim\n");
    let m = String::from_utf8(env.read("o/manifest.json")).unwrap();
    let m = m.replacen(
        "\"files\": {",
        "\"files\": {\n    \"../victim.txt\": {\"size\": 7, \"sha256\": \"0000000000000000000000000000000000000000000000000000000000000000\"},",
        1,
    );
    env.write("o/manifest.json", m.as_bytes());
    let out = env.run(&["verify", "o"]);
    assert_eq!(out.status.code(), Some(1), "{}", crate::env::stderr(&out));
    crate::env::assert_stderr_has(&out, "not a plain path inside");
    // a build stopped half-way: its marker, no manifest
    std::fs::remove_file(env.path("o/manifest.json")).unwrap();
    env.write("o/.imgprep-building", b"");
    let out = env.run(&["verify", "o"]);
    assert_eq!(out.status.code(), Some(1), "{}", crate::env::stderr(&out));
    crate::env::assert_stderr_has(&out, "stopped before it finished");
}

/// The manifest's own numbers are checked against each other and the files
/// they describe: a hand-edited num_classes, num_training_samples, split
/// count, per-class count or class name fails verify (each used to pass,
/// as only the files' sums and the record counts were compared).
#[test]
fn a_manifest_whose_numbers_were_edited_fails() {
    let env = TestEnv::new();
    env.synth("p", 3, 6, 32, 24);
    env.write(
        "r.toml",
        b"name = \"m\"\n[[sources]]\ntype = \"folders\"\nroot = \"p\"\n[split]\ntrain = 0.7\nvalidation = 0.3\n\
          [[outputs]]\nformat = \"recordio\"\n[[outputs]]\nformat = \"tfrecord\"\n",
    );
    env.ok(&["build", "r.toml", "--out", "o"]);
    env.ok(&["verify", "o", "-q"]);
    let original = env.read("o/manifest.json");
    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit); 5] = [
        ("num_classes", |m| m["num_classes"] = 2.into()),
        ("num_training_samples", |m| {
            m["variants"]["complete"]["num_training_samples"] = 5.into()
        }),
        ("split items", |m| {
            m["variants"]["complete"]["splits"]["train"]["items"] = 70.into()
        }),
        ("a per-class count", |m| {
            m["variants"]["complete"]["splits"]["validation"]["per_class"]["class_0"] = 9.into()
        }),
        ("a class name", |m| {
            m["labels"][0]["name"] = "renamed".into()
        }),
    ];
    for (what, edit) in edits {
        let mut m: serde_json::Value = serde_json::from_slice(&original).unwrap();
        edit(&mut m);
        env.write("o/manifest.json", &serde_json::to_vec_pretty(&m).unwrap());
        let out = env.run(&["verify", "o"]);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stdout(&out));
    }
    // a flipped bit in a key: the manifest no longer parses, which is
    // damage found (exit 1), not a usage error
    let text = String::from_utf8(original.clone()).unwrap();
    env.write(
        "o/manifest.json",
        text.replacen("\"num_classes\"", "\"num_clastes\"", 1)
            .as_bytes(),
    );
    let out = env.run(&["verify", "o"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("damaged"), "{}", stderr(&out));
    env.write("o/manifest.json", &original);
    env.ok(&["verify", "o", "-q"]);
}
