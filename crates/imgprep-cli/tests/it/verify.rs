//! `imgprep verify` and `inspect` catch what is wrong.

use crate::env::{stdout, TestEnv};

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
