//! Video sources: clips made here with ffmpeg's lavfi sources carry each
//! frame's number painted in their pixels (`imgprep::synth::FRAME_CODE`), so
//! every written image is read back and must be the frame, with the label,
//! that the ranges say: B-frames, a variable frame rate, an edit list, two
//! chunks joined across a gap; plus the real files in ../shared/data/video.

use crate::env::{assert_stderr_has, shared_data, stderr, TestEnv};
use imgprep::image::{ImageSpec, Processor};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// ffmpeg is there, or the test is skipped (never under CI=true).
fn have_ffmpeg() -> bool {
    let ok = Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("ffmpeg is missing under CI=true (scripts/test.sh installs it)");
        }
        eprintln!("SKIPPED: ffmpeg not installed");
    }
    ok
}

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `frames` frames at `fps` with numbers from `base` painted in, H.264 with
/// two B-frames between references; `vf` is appended to the filter chain
/// (e.g. a setpts for a variable rate) and `extra` goes before the output.
fn clip(env: &TestEnv, rel: &str, frames: u64, fps: u32, base: u64, vf: &str, extra: &[&str]) {
    let p = env.path(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    // the source ends with the last frame (so a longer audio track runs on)
    let mut chain = format!(
        "color=c=gray:s=128x96:r={fps}:d={},format=yuv420p,{}",
        frames as f64 / fps as f64,
        imgprep::synth::frame_code_filter(128, 96, base)
    );
    if !vf.is_empty() {
        chain.push(',');
        chain.push_str(vf);
    }
    let mut args = vec!["-f", "lavfi", "-i", &chain];
    args.extend(extra);
    args.extend([
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "12",
        "-g",
        "24",
        "-bf",
        "2",
        "-x264-params",
        "b-adapt=0",
        "-pix_fmt",
        "yuv420p",
        p.to_str().unwrap(),
    ]);
    ffmpeg(&args);
}

/// Frames ffmpeg itself decodes from a file.
fn ffprobe_count(p: &Path) -> u64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn recipe(env: &TestEnv, name: &str, source: &str, extra: &str) -> String {
    // extra first: it may hold top-level keys (on_error) and tables
    let t = format!(
        "name = \"{name}\"\n{extra}\n[[sources]]\ntype = \"video\"\n{source}\n\
         [[outputs]]\nformat = \"folders\"\n"
    );
    let file = format!("{name}.toml");
    env.write(&file, t.as_bytes());
    file
}

/// One written frame: its items.csv row and the number painted in its image.
#[derive(Debug)]
struct Written {
    item: String,
    label: String,
    split: String,
    chunk: String,
    frame: u64,
    session_frame: u64,
    session_time: f64,
    painted: u32,
}

/// Every written frame of a build (folders output), read back.
fn written(env: &TestEnv, out: &str) -> Vec<Written> {
    let mut r = csv::Reader::from_path(env.path(&format!("{out}/items.csv"))).unwrap();
    let h = r.headers().unwrap().clone();
    let col = |name: &str| h.iter().position(|c| c == name).unwrap();
    let mut p = Processor::new().unwrap();
    let mut v = Vec::new();
    for rec in r.records() {
        let rec = rec.unwrap();
        if rec[col("status")] != *"written" {
            continue;
        }
        let file = &rec[col("folders")];
        let bytes = env.read(&format!("{out}/{file}"));
        let px = p.decode(&bytes, &ImageSpec::default()).unwrap().pixels;
        v.push(Written {
            item: rec[col("item")].to_string(),
            label: rec[col("labels")].to_string(),
            split: rec[col("split")].to_string(),
            chunk: rec[col("chunk")].to_string(),
            frame: rec[col("frame")].parse().unwrap(),
            session_frame: rec[col("session_frame")].parse().unwrap(),
            session_time: rec[col("session_time")].parse().unwrap(),
            painted: imgprep::synth::read_frame_code(&px),
        });
    }
    v
}

fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn manifest(env: &TestEnv, out: &str) -> Value {
    serde_json::from_slice(&env.read(&format!("{out}/manifest.json"))).unwrap()
}

/// The label a time range list gives time `t` (half-open ranges).
fn label_at(ranges: &[(&str, f64, f64)], t: f64) -> String {
    ranges
        .iter()
        .find(|(_, a, b)| *a <= t && t < *b)
        .map(|r| r.0.to_string())
        .unwrap_or_default()
}

fn ranges_csv(ranges: &[(&str, f64, f64)]) -> String {
    let mut s = String::from("label,start,end\n");
    for (l, a, b) in ranges {
        s.push_str(&format!("{l},{a},{b}\n"));
    }
    s
}

#[test]
fn every_frame_carries_its_own_number_and_label_across_chunks_and_b_frames() {
    if !have_ffmpeg() {
        return;
    }
    let env = TestEnv::new();
    // two sessions of two chunks, 36 + 24 frames at 24 fps (1.5 s + 1 s)
    for s in ["s1", "s2"] {
        clip(&env, &format!("v/{s}/part1.mp4"), 36, 24, 0, "", &[]);
        clip(&env, &format!("v/{s}/part2.mp4"), 24, 24, 36, "", &[]);
    }
    // a frame number 10 was written with ffmpeg's %d-style and natural order
    // must put part2 before part10: add part10 to s2 only
    clip(&env, "v/s2/part10.mp4", 12, 24, 60, "", &[]);
    let ranges = [("a", 0.0, 0.5), ("b", 0.5, 1.7), ("c", 2.0, 2.9)];
    env.write("l/s1.csv", ranges_csv(&ranges).as_bytes());
    env.write("l/s2.csv", ranges_csv(&ranges).as_bytes());
    // ranges of a session whose recordings are not there: a missing input
    // (a warning, hidden by -q, lost its frames and classes)
    env.write("l/s3.csv", ranges_csv(&[("z", 0.0, 1.0)]).as_bytes());
    let r = recipe(
        &env,
        "v",
        "chunks = \"v/{subject}/*.mp4\"\nlabels = \"l/{subject}.csv\"\nunit = \"seconds\"",
        "[split]\nmethod = \"explicit\"\n[split.assign]\ntrain = [\"s1\"]\nvalidation = [\"s2\"]",
    );
    let out = env.run(&["build", &r, "--out", "out"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_stderr_has(
        &out,
        "l/s3.csv: ranges for session \"s3\", which has no recordings",
    );
    std::fs::remove_file(env.path("l/s3.csv")).unwrap();
    env.ok(&["build", &r, "--out", "out"]);
    let w = written(&env, "out");
    // every frame in a range, once, with its own number and the range's label
    let mut seen = std::collections::HashSet::new();
    for f in &w {
        assert_eq!(
            f.painted as u64, f.session_frame,
            "{}: image shows frame {}",
            f.item, f.painted
        );
        assert!(seen.insert(f.item.clone()), "{} twice", f.item);
        let t = f.session_frame as f64 / 24.0;
        assert!(
            (f.session_time - t).abs() < 1e-4,
            "{}: time {}",
            f.item,
            f.session_time
        );
        assert_eq!(f.label, label_at(&ranges, t), "{} at {t}", f.item);
        let want_split = if f.item.starts_with("s1/") {
            "train"
        } else {
            "validation"
        };
        assert_eq!(f.split, want_split);
    }
    let expect = |total: u64| {
        (0..total)
            .filter(|&k| !label_at(&ranges, k as f64 / 24.0).is_empty())
            .count()
    };
    let s1 = w.iter().filter(|f| f.item.starts_with("s1/")).count();
    let s2 = w.iter().filter(|f| f.item.starts_with("s2/")).count();
    assert_eq!((s1, s2), (expect(60), expect(72)));
    // part10 comes after part2 in s2's session
    assert!(w
        .iter()
        .any(|f| f.chunk == "part10" && f.frame == 0 && f.session_frame == 60));
    // the frame table lists every presented frame, the manifest says the rules
    let m = manifest(&env, "out");
    let v = &m["video"];
    assert_eq!(v["chunks"].as_array().unwrap().len(), 5);
    assert!(v["decoder"].as_str().unwrap().starts_with("ffmpeg "));
    assert!(v["sources"][0]["time_rule"]
        .as_str()
        .unwrap()
        .contains("start <= t < end"));
    let table = String::from_utf8(env.read("out/video-frames.csv")).unwrap();
    assert_eq!(table.lines().count(), 1 + 60 + 72);
    assert_eq!(m["num_classes"], 3);
    // the same build again is byte-identical, whatever the thread count
    env.ok(&["build", &r, "--out", "again", "--num-thread", "1"]);
    assert_eq!(env.read("out/items.csv"), env.read("again/items.csv"));
    assert_eq!(
        env.read("out/video-frames.csv"),
        env.read("again/video-frames.csv")
    );
    // with --drop-cache: the same outputs, and no cached frame left behind
    env.ok(&[
        "build",
        &r,
        "--out",
        "dropped",
        "--drop-cache",
        "--cache-dir",
        "c2",
    ]);
    assert_eq!(env.read("out/items.csv"), env.read("dropped/items.csv"));
    // (the folder's tag stays: it marks the folder the user named as a cache)
    let left: Vec<_> = walk_files(&env.path("c2"))
        .into_iter()
        .filter(|f| !f.ends_with("CACHEDIR.TAG"))
        .collect();
    assert!(left.is_empty(), "cache entries left: {left:?}");
}

#[test]
fn variable_frame_rate_frames_are_placed_by_their_timestamps() {
    if !have_ffmpeg() {
        return;
    }
    let env = TestEnv::new();
    // 30 frames at 30 fps, then a 0.5 s jump and 30 frames at 15 fps
    // (in ticks of the source's 1/30 s time base: exact)
    let pts = "setpts='if(lt(N,30),N,45+2*(N-30))'";
    clip(
        &env,
        "v/rec/a.mp4",
        60,
        30,
        0,
        pts,
        &["-fps_mode", "passthrough"],
    );
    // ffmpeg's own default (constant rate) would make up frames in the jump
    let cfr = env.path("cfr");
    std::fs::create_dir_all(&cfr).unwrap();
    ffmpeg(&[
        "-i",
        env.path("v/rec/a.mp4").to_str().unwrap(),
        &format!("{}/%06d.png", cfr.display()),
    ]);
    let made = std::fs::read_dir(&cfr).unwrap().count();
    let time = |k: u64| {
        if k < 30 {
            k as f64 / 30.0
        } else {
            (45 + 2 * (k - 30)) as f64 / 30.0
        }
    };
    let ranges = [("x", 0.0, 0.7), ("y", 0.7, 1.6), ("z", 2.0, 9.0)];
    env.write("l/rec.csv", ranges_csv(&ranges).as_bytes());
    let r = recipe(
        &env,
        "v",
        "chunks = \"v/{s}/*.mp4\"\nlabels = \"l/{s}.csv\"\nunit = \"seconds\"",
        "",
    );
    env.ok(&["build", &r, "--out", "out"]);
    let w = written(&env, "out");
    for f in &w {
        assert_eq!(f.painted as u64, f.session_frame, "{}", f.item);
        let t = time(f.session_frame);
        assert!(
            (f.session_time - t).abs() < 1e-3,
            "{}: {} vs {t}",
            f.item,
            f.session_time
        );
        assert_eq!(f.label, label_at(&ranges, t), "{}", f.item);
    }
    let want = (0..60)
        .filter(|&k| !label_at(&ranges, time(k)).is_empty())
        .count();
    assert_eq!(w.len(), want);
    let table = String::from_utf8(env.read("out/video-frames.csv")).unwrap();
    assert_eq!(
        table.lines().count() - 1,
        60,
        "every presented frame, none made up"
    );
    assert!(
        made > 60,
        "ffmpeg's constant-rate default made {made} files of 60 frames"
    );
    // sampling at 10 fps picks real frames, never one twice
    let r = recipe(
        &env,
        "s",
        "chunks = \"v/{s}/*.mp4\"\nlabels = \"l/{s}.csv\"\nunit = \"seconds\"\nfps = 10",
        "",
    );
    env.ok(&["build", &r, "--out", "sampled"]);
    let s = written(&env, "sampled");
    let mut frames: Vec<u64> = s.iter().map(|f| f.session_frame).collect();
    frames.sort_unstable();
    let n = frames.len();
    frames.dedup();
    assert_eq!(frames.len(), n, "a frame was written twice");
    for f in &s {
        assert_eq!(f.painted as u64, f.session_frame);
        assert_eq!(f.label, label_at(&ranges, time(f.session_frame)));
    }
    // x: 0-0.7 s at 30 fps -> 7 picks (0, 0.1, ..., 0.6); z at 15 fps, 2.0-3.5 s
    let per: BTreeMap<&str, usize> = s.iter().fold(BTreeMap::new(), |mut m, f| {
        *m.entry(f.label.as_str()).or_default() += 1;
        m
    });
    assert_eq!(per["x"], 7, "{per:?}");
    assert!((14..=16).contains(&per["z"]), "{per:?}");
}

#[test]
fn an_edit_list_hides_the_frames_before_its_start() {
    if !have_ffmpeg() {
        return;
    }
    let env = TestEnv::new();
    // a fine time base: pts of 7 digits and more (ffmpeg prints them unpadded)
    clip(
        &env,
        "src.mp4",
        60,
        30,
        0,
        "",
        &["-video_track_timescale", "3000000"],
    );
    std::fs::create_dir_all(env.path("v/cut")).unwrap();
    // cut at 0.5 s without re-encoding: the file keeps the frames from the
    // keyframe before and an edit list hides them
    ffmpeg(&[
        "-ss",
        "0.5",
        "-i",
        env.path("src.mp4").to_str().unwrap(),
        "-c",
        "copy",
        env.path("v/cut/cut.mp4").to_str().unwrap(),
    ]);
    let shown = ffprobe_count(&env.path("v/cut/cut.mp4"));
    assert!(shown < 60);
    let r = recipe(
        &env,
        "v",
        "chunks = \"v/{s}/*.mp4\"",
        "[labels]\nunlabelled = true",
    );
    env.ok(&["build", &r, "--out", "out"]);
    let w = written(&env, "out");
    assert_eq!(
        w.len() as u64,
        shown,
        "frames written = frames ffmpeg shows"
    );
    for f in &w {
        // frame 0 is the first shown frame, the one painted 60 - shown
        assert_eq!(f.painted as u64, 60 - shown + f.frame, "{}", f.item);
    }
}

#[test]
fn chunks_joined_across_a_gap_follow_the_chosen_timeline() {
    if !have_ffmpeg() {
        return;
    }
    let env = TestEnv::new();
    // 2 s of video with 2.5 s of audio per chunk: the file runs past its video
    for (c, base) in [("c1", 0), ("c2", 48)] {
        clip(
            &env,
            &format!("v/rec/{c}.mp4"),
            48,
            24,
            base,
            "",
            &[
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:duration=2.5",
                "-c:a",
                "aac",
            ],
        );
    }
    let dur = |c: &str| -> f64 {
        let o = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "format=duration",
                "-of",
                "csv=p=0",
            ])
            .arg(env.path(&format!("v/rec/{c}.mp4")))
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
    };
    let d1 = dur("c1");
    assert!(d1 > 2.3, "audio should run past the video: {d1}");
    // ranges made on the concatenated file: c2 starts at d1 there
    let ranges = [("first", 0.0, 1.0), ("late", d1 - 0.01, d1 + 1.0)];
    env.write("l/rec.csv", ranges_csv(&ranges).as_bytes());
    let src = "chunks = \"v/{s}/*.mp4\"\nlabels = \"l/{s}.csv\"\nunit = \"seconds\"";
    let r = recipe(
        &env,
        "concat",
        &format!("{src}\ntime_reference = \"concat\""),
        "",
    );
    let out = env.ok(&["build", &r, "--out", "concat"]);
    assert_stderr_has(&out, "past its last video frame");
    let w = written(&env, "concat");
    let late: Vec<&Written> = w.iter().filter(|f| f.label == "late").collect();
    // c2's first 24 frames (1 s from d1), none of c1's
    assert_eq!(late.len(), 24);
    assert!(late
        .iter()
        .all(|f| f.chunk == "c2" && f.painted as u64 == 48 + f.frame));
    assert!(
        (late[0].session_time - d1).abs() < 0.05,
        "{}",
        late[0].session_time
    );
    // the video's own timeline: c2 starts at 2.0 s, so the same ranges now
    // cover c2 from d1 - 2.0 on
    let r = recipe(&env, "video", src, "");
    env.ok(&["build", &r, "--out", "video"]);
    let w = written(&env, "video");
    let late: Vec<&Written> = w.iter().filter(|f| f.label == "late").collect();
    assert!(late.iter().all(
        |f| (f.session_time - (2.0 + f.frame as f64 / 24.0)).abs() < 1e-3
            && f.session_time >= d1 - 0.01
    ));
    let m = manifest(&env, "concat");
    assert!(m["video"]["chunks"][0]["tail_gap"].as_f64().unwrap() > 0.3);
    // a file whose video starts 0.2 s after its audio: "video" time counts
    // from the first frame, a player from the file's start; said
    std::fs::create_dir_all(env.path("lead/rec")).unwrap();
    let (src_clip, lead) = (env.path("v/rec/c1.mp4"), env.path("lead/rec/a.mp4"));
    ffmpeg(&[
        "-itsoffset",
        "0.2",
        "-i",
        src_clip.to_str().unwrap(),
        "-f",
        "lavfi",
        "-i",
        "sine=d=2.2",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "copy",
        "-c:a",
        "aac",
        lead.to_str().unwrap(),
    ]);
    let src = "chunks = \"lead/{s}/*.mp4\"\nlabels = \"l/{s}.csv\"\nunit = \"seconds\"";
    for (reference, said) in [("video", true), ("concat", false)] {
        let name = format!("lead-{reference}");
        let with = format!("{src}\ntime_reference = \"{reference}\"");
        let out = env.ok(&["build", &recipe(&env, &name, &with, ""), "--out", &name]);
        let err = stderr(&out);
        assert_eq!(
            err.contains("its video starts 0.2"),
            said,
            "{reference}: {err}"
        );
    }
}

#[test]
fn frame_ranges_count_from_the_declared_base() {
    if !have_ffmpeg() {
        return;
    }
    let env = TestEnv::new();
    clip(&env, "v/r/a.mp4", 20, 10, 0, "", &[]);
    env.write("l/r.csv", b"label,start,end\non,1,5\n");
    let src = "chunks = \"v/{s}/*.mp4\"\nlabels = \"l/{s}.csv\"\nunit = \"frames\"";
    // without the base: asked for, not guessed
    let r = recipe(&env, "nobase", src, "");
    let out = env.run(&["build", &r, "--out", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert_stderr_has(&out, "frame_base");
    for (base, first) in [(0, 1u64), (1, 0)] {
        let r = recipe(
            &env,
            &format!("b{base}"),
            &format!("{src}\nframe_base = {base}"),
            "",
        );
        env.ok(&["build", &r, "--out", &format!("b{base}")]);
        let w = written(&env, &format!("b{base}"));
        let mut got: Vec<u64> = w.iter().map(|f| f.painted as u64).collect();
        got.sort_unstable();
        assert_eq!(
            got,
            (first..first + 5).collect::<Vec<_>>(),
            "frame_base = {base}"
        );
    }
}

/// Range files named per session beside the recipe: the output may go
/// beside them too, but never be the folder holding them.
#[test]
fn range_files_beside_the_recipe_leave_its_folder_free_for_the_output() {
    if !have_ffmpeg() {
        return;
    }
    let env = TestEnv::new();
    clip(&env, "v/r/a.mp4", 10, 10, 0, "", &[]);
    env.write(
        "ranges_r.csv",
        b"label,start,end
a,0,1
",
    );
    let r = recipe(
        &env,
        "beside",
        "chunks = \"v/{s}/*.mp4\"\nlabels = \"ranges_{s}.csv\"\nunit = \"seconds\"",
        "",
    );
    env.ok(&["build", &r, "--out", "out"]);
    assert_eq!(written(&env, "out").len(), 10);
    env.write("l/ranges_r.csv", b"label,start,end\na,0,1\n");
    let r = recipe(
        &env,
        "inside",
        "chunks = \"v/{s}/*.mp4\"\nlabels = \"l/ranges_{s}.csv\"\nunit = \"seconds\"",
        "",
    );
    let out = env.run(&["build", &r, "--out", "l", "--force"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_stderr_has(&out, "ranges_r.csv: outputs and inputs must not overlap");
    assert_eq!(std::fs::read_dir(env.path("l")).unwrap().count(), 1);
}

#[test]
fn overlapping_ranges_name_both_lines_unless_a_policy_is_set() {
    if !have_ffmpeg() {
        return;
    }
    let env = TestEnv::new();
    clip(&env, "v/r/a.mp4", 20, 10, 0, "", &[]);
    env.write("l/r.csv", b"label,start,end\na,0,1.2\nb,1.0,2.0\n");
    let src = "chunks = \"v/{s}/*.mp4\"\nlabels = \"l/{s}.csv\"\nunit = \"seconds\"";
    let r = recipe(&env, "err", src, "");
    let out = env.run(&["build", &r, "--out", "x"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_stderr_has(&out, "r.csv:2 (a)");
    assert_stderr_has(&out, "r.csv:3 (b)");
    let r = recipe(&env, "last", &format!("{src}\noverlap = \"last\""), "");
    env.ok(&["build", &r, "--out", "last"]);
    let w = written(&env, "last");
    assert_eq!(w.len(), 20);
    assert!(w
        .iter()
        .all(|f| f.label == if f.painted < 10 { "a" } else { "b" }));
    // outside frames as a background class; every 4th frame only
    env.write("l/r.csv", b"label,start,end\na,0.5,1.0\n");
    let r = recipe(
        &env,
        "bg",
        &format!("{src}\noutside = \"background\"\nbackground_class = \"none\"\nevery = 4"),
        "",
    );
    env.ok(&["build", &r, "--out", "bg"]);
    let w = written(&env, "bg");
    let mut got: Vec<(u32, String)> = w.iter().map(|f| (f.painted, f.label.clone())).collect();
    got.sort();
    let want: Vec<(u32, String)> = [
        (0, "none"),
        (4, "none"),
        (5, "a"),
        (9, "a"),
        (10, "none"),
        (14, "none"),
        (18, "none"),
    ]
    .iter()
    .map(|(k, l)| (*k, l.to_string()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn a_changed_chunk_is_decoded_again_and_no_other() {
    if !have_ffmpeg() {
        return;
    }
    let env = TestEnv::new();
    for s in ["s1", "s2"] {
        clip(&env, &format!("v/{s}/a.mp4"), 12, 12, 0, "", &[]);
        clip(&env, &format!("v/{s}/b.mp4"), 12, 12, 12, "", &[]);
    }
    let r = recipe(
        &env,
        "v",
        "chunks = \"v/{s}/*.mp4\"",
        "[labels]\nunlabelled = true",
    );
    let first = env.ok_json(&["build", &r, "--out", "out", "--json"]);
    assert_eq!(first["processed"], 48);
    let again = env.ok_json(&["build", &r, "--out", "out", "--json"]);
    assert_eq!(again["up_to_date"], true);
    // another take of s2/b.mp4
    std::thread::sleep(std::time::Duration::from_millis(20));
    clip(&env, "v/s2/b.mp4", 12, 12, 100, "", &[]);
    let after = env.ok_json(&["build", &r, "--out", "out", "--json"]);
    assert_eq!(
        (after["processed"].clone(), after["cached"].clone()),
        (12.into(), 36.into())
    );
    let w = written(&env, "out");
    assert!(w
        .iter()
        .filter(|f| f.item.starts_with("s2/b/"))
        .all(|f| f.painted as u64 == 100 + f.frame));
}

#[test]
fn broken_and_stuck_videos_are_reported_not_hung_on() {
    if !have_ffmpeg() {
        return;
    }
    let env = TestEnv::new();
    // moov first, so the cut file still lists packets whose data is gone
    clip(
        &env,
        "v/ok/a.mp4",
        48,
        24,
        0,
        "",
        &["-movflags", "+faststart"],
    );
    let whole = env.read("v/ok/a.mp4");
    env.write("v/cut/a.mp4", &whole[..whole.len() * 6 / 10]);
    let r = recipe(
        &env,
        "cut",
        "chunks = \"v/{s}/*.mp4\"",
        "[labels]\nunlabelled = true",
    );
    let out = env.run(&["build", &r, "--out", "x"]);
    // bad input under on_error = "fail": a problem found, exit 1
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_stderr_has(&out, "cut/a.mp4");
    assert_stderr_has(&out, "cut short");
    // under on_error = "skip" the cut chunk and a file that is no video are
    // listed skips, the good session is written
    env.write("v/junk/a.mp4", b"this is not a video at all");
    // chunks that are no file: a FIFO (never opened: it could block), a
    // dangling link, a folder; each leaves its session out, named
    std::fs::create_dir_all(env.path("v/fifo")).unwrap();
    let made = Command::new("mkfifo")
        .arg(env.path("v/fifo/a.mp4"))
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::create_dir_all(env.path("v/gone")).unwrap();
    std::os::unix::fs::symlink(env.path("nowhere.mp4"), env.path("v/gone/a.mp4")).unwrap();
    std::fs::create_dir_all(env.path("v/dir/a.mp4")).unwrap();
    let r = recipe(
        &env,
        "skip",
        "chunks = \"v/{s}/*.mp4\"",
        "on_error = \"skip\"\n[labels]\nunlabelled = true",
    );
    env.ok(&["build", &r, "--out", "skip"]);
    let m = manifest(&env, "skip");
    assert_eq!(m["variants"]["complete"]["splits"]["train"]["items"], 48);
    let skipped: Vec<&str> = m["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["item"].as_str().unwrap())
        .collect();
    assert_eq!(
        skipped,
        [
            "cut/a.mp4",
            "dir/a.mp4",
            "fifo/a.mp4",
            "gone/a.mp4",
            "junk/a.mp4"
        ]
    );
    let reasons = m["skipped"].to_string();
    for why in ["is a FIFO", "is a folder", "cannot be read"] {
        assert!(reasons.contains(why), "{why}: {reasons}");
    }
    // the reasons quote ffmpeg without the addresses in its log prefixes,
    // so a second build (other cache) gives the same bytes
    let reasons = m["skipped"].to_string();
    assert!(
        reasons.contains("cut short") && !reasons.contains(" @ 0x"),
        "{reasons}"
    );
    env.ok(&["build", &r, "--out", "skip2", "--cache-dir", "other-cache"]);
    for f in ["manifest.json", "items.csv"] {
        assert_eq!(
            env.read(&format!("skip/{f}")),
            env.read(&format!("skip2/{f}")),
            "{f}"
        );
    }
    for d in ["junk", "fifo", "gone", "dir"] {
        std::fs::remove_dir_all(env.path(&format!("v/{d}"))).unwrap();
    }
    std::fs::remove_dir_all(env.path("v/cut")).unwrap();
    // no ffmpeg at all: said at once, with how to get it
    let out = Command::new(env!("CARGO_BIN_EXE_imgprep"))
        .args(["build", &r, "--out", "none"])
        .env("IMGPREP_CACHE_DIR", env.path("cache3"))
        .env("IMGPREP_FFPROBE", env.path("no-such-ffprobe"))
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_stderr_has(&out, "apt-get install ffmpeg");
    // a decoder that stops answering is stopped after the stall time, with
    // what it started (a wrapper script's child held the pipes, and the
    // build waited for it)
    let fake = env.path("fake-ffmpeg");
    env.write(
        "fake-ffmpeg",
        b"#!/bin/sh\ncase \"$1\" in -version) echo 'ffmpeg version 5.1.9 fake';; *) sleep 60;; esac\n",
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let start = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_imgprep"))
        .args(["build", &r, "--out", "z"])
        .env("IMGPREP_CACHE_DIR", env.path("cache2"))
        .env("IMGPREP_FFMPEG", &fake)
        .env("IMGPREP_VIDEO_STALL_SECS", "2")
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    assert!(start.elapsed().as_secs() < 30, "took {:?}", start.elapsed());
    assert_stderr_has(&out, "stall time");
}

#[test]
fn the_real_videos_give_every_frame_ffmpeg_counts() {
    let Some(data) = shared_data() else { return };
    if !have_ffmpeg() {
        return;
    }
    let env = TestEnv::new();
    let dir = data.join("video");
    // frame counts listed in ../shared/data/SOURCES.md (ffprobe -count_frames)
    let want = [
        ("carphone_pristine", 120u64),
        ("bikes", 250),
        ("bigbuckbunny", 132),
        ("vtest", 795),
    ];
    let extra = "[labels]\nunlabelled = true\n[transform]\nresize = 48\nquality = 80";
    let chunks = format!("chunks = \"{}/**/*.*\"", dir.display());
    // the QCIF test sequence has non-square pixels (128:117): asked about
    let r = recipe(&env, "ask", &chunks, extra);
    let out = env.run(&["build", &r, "--out", "out"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_stderr_has(&out, "carphone_pristine.mp4: its pixels are not square (sample aspect ratio 128:117: stored 176x144, shown 193x144)");
    let r = recipe(
        &env,
        "real",
        &format!("{chunks}\npixel_aspect = \"display\""),
        extra,
    );
    env.ok(&["build", &r, "--out", "out"]);
    let m = manifest(&env, "out");
    let chunks = m["video"]["chunks"].as_array().unwrap();
    for (name, n) in want {
        let c = chunks
            .iter()
            .find(|c| c["chunk"] == name)
            .unwrap_or_else(|| panic!("{name} not read"));
        assert_eq!(c["frames"], n, "{name}");
        assert_eq!(c["frames_prepared"], n, "{name}");
    }
    let items = String::from_utf8(env.read("out/items.csv")).unwrap();
    assert_eq!(items.lines().count() - 1, 120 + 250 + 132 + 795);
}

/// The real readers (MXNet's RecordIO reader and ImageRecordIter,
/// TensorFlow's tf.data) get each frame with its label: the number painted in
/// the pixels they decode gives the frame, the ranges its class.
#[test]
fn mxnet_and_tensorflow_read_each_frame_with_its_label() {
    if !have_ffmpeg() {
        return;
    }
    let (Some(py), Some(tf)) = (crate::env::python(), crate::env::tf_python()) else {
        return;
    };
    let env = TestEnv::new();
    clip(&env, "v/s1/a.mp4", 30, 10, 0, "", &[]);
    clip(&env, "v/s1/b.mp4", 30, 10, 30, "", &[]);
    let ranges = [("k1", 0.0, 1.45), ("k2", 1.45, 3.0), ("k3", 3.0, 5.5)];
    env.write("l/s1.csv", ranges_csv(&ranges).as_bytes());
    let t = "name = \"rt\"\n[[sources]]\ntype = \"video\"\nchunks = \"v/{s}/*.mp4\"\n\
             labels = \"l/{s}.csv\"\nunit = \"seconds\"\n[transform]\nresize = \"224x224\"\n\
             [[outputs]]\nformat = \"recordio\"\n[[outputs]]\nformat = \"tfrecord\"\n";
    env.write("rt.toml", t.as_bytes());
    env.ok(&["build", "rt.toml", "--out", "out"]);
    let class = |name: &str| ["k1", "k2", "k3"].iter().position(|c| *c == name).unwrap() as f64;
    let check = |doc: &Value, reader: &str| {
        let recs = doc["records"].as_array().unwrap();
        assert_eq!(recs.len(), 55, "{reader}: frames 0..54 are in a range");
        let mut seen = std::collections::HashSet::new();
        for r in recs {
            let n = r["painted"].as_u64().unwrap();
            assert!(seen.insert(n), "{reader}: frame {n} twice");
            let want = class(&label_at(&ranges, n as f64 / 10.0));
            assert_eq!(r["label"].as_f64().unwrap(), want, "{reader}: frame {n}");
        }
    };
    let mx = crate::env::interop(
        &py,
        "video_frames_read.py",
        &["mxnet", "out/complete/recordio/train"],
        env.dir.path(),
    );
    check(&mx, "MXNet");
    let from_iter: Vec<f64> = mx["iter_labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let from_records: Vec<f64> = mx["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_f64().unwrap())
        .collect();
    assert_eq!(from_iter, from_records, "ImageRecordIter's labels");
    let shard = std::fs::read_dir(env.path("out/complete/tfrecord-tfds"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("train"))
        .unwrap();
    let tfd = crate::env::interop(
        &tf,
        "video_frames_read.py",
        &["tf", shard.to_str().unwrap()],
        env.dir.path(),
    );
    check(&tfd, "TensorFlow");
}

/// JPEG frames are encoded straight from ffmpeg's YUV planes (no RGB step):
/// they must look like the RGB path (PNG) within JPEG's own loss, with no
/// colour shift from a wrong range or matrix.
#[test]
fn frames_encoded_from_yuv_keep_their_colours() {
    if !have_ffmpeg() {
        return;
    }
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path("v/s")).unwrap();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=640x360:r=10:d=0.5",
        "-c:v",
        "libx264",
        "-crf",
        "10",
        "-pix_fmt",
        "yuv420p",
        env.path("v/s/a.mp4").to_str().unwrap(),
    ]);
    let mut p = Processor::new().unwrap();
    let mut frames = BTreeMap::new();
    for enc in ["jpg", "png"] {
        let r = recipe(
            &env,
            enc,
            "chunks = \"v/{s}/*.mp4\"",
            &format!(
                "[labels]\nunlabelled = true\n[transform]\nresize = \"224x224\"\nencoding = \"{enc}\"\nquality = 100"
            ),
        );
        env.ok(&["build", &r, "--out", enc]);
        let file = format!("{enc}/complete/folders/train/unlabelled/s_a_000002.{enc}");
        let px = p
            .decode(&env.read(&file), &ImageSpec::default())
            .unwrap()
            .pixels;
        frames.insert(enc, px);
    }
    let (a, b) = (&frames["jpg"], &frames["png"]);
    assert_eq!((a.width, a.height, a.channels), (224, 224, 3));
    assert_eq!((b.width, b.height), (224, 224));
    let n = a.data.len() as f64;
    let mse: f64 = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum::<f64>()
        / n;
    let psnr = 10.0 * (255.0f64 * 255.0 / mse).log10();
    // testsrc2's saturated edges lose to 4:2:0 chroma in any JPEG (~28 dB)
    assert!(psnr > 25.0, "PSNR {psnr:.1} dB");
    for c in 0..3 {
        let bias: f64 = a
            .data
            .iter()
            .zip(&b.data)
            .skip(c)
            .step_by(3)
            .map(|(&x, &y)| x as f64 - y as f64)
            .sum::<f64>()
            / (n / 3.0);
        assert!(bias.abs() < 3.0, "channel {c} shifted by {bias:.2}");
    }
}

#[test]
fn convert_takes_a_folder_of_recordings() {
    if !have_ffmpeg() {
        return;
    }
    let env = TestEnv::new();
    for (s, base) in [("s1", 0), ("s2", 100), ("s3", 200)] {
        clip(&env, &format!("rec/{s}/a.mp4"), 20, 10, base, "", &[]);
    }
    let ranges = [("walk", 0.0, 1.0), ("run", 1.0, 1.5)];
    for s in ["s1", "s2", "s3"] {
        env.write(&format!("labels/{s}.csv"), ranges_csv(&ranges).as_bytes());
    }
    // the ranges are asked for, not guessed
    let out = env.run(&["convert", "rec", "x", "--to", "folders"]);
    assert_eq!(out.status.code(), Some(2));
    assert_stderr_has(&out, "--labels");
    env.ok(&[
        "convert",
        "rec",
        "out",
        "--to",
        "folders",
        "--labels",
        "labels/{session}.csv",
        "--unit",
        "seconds",
        "--train",
        "0.67",
        "--validation",
        "0.33",
    ]);
    let w = written(&env, "out");
    assert_eq!(w.len(), 3 * 15);
    let mut split_of: BTreeMap<String, String> = BTreeMap::new();
    for f in &w {
        let base = (f.painted / 100) * 100;
        let k = f.painted - base;
        assert_eq!(k as u64, f.session_frame, "{}", f.item);
        assert_eq!(f.label, label_at(&ranges, k as f64 / 10.0));
        let session = f.item.split('/').next().unwrap().to_string();
        let prev = split_of.insert(session.clone(), f.split.clone());
        assert!(prev.is_none_or(|p| p == f.split), "{session} in two splits");
    }
    assert_eq!(split_of.len(), 3);
    let recipe = String::from_utf8(env.read("out/imgprep-convert.toml")).unwrap();
    assert!(recipe.contains("type = \"video\""), "{recipe}");
    // a camera's upper-case .MP4 is a chunk like the others (it was left out
    // without a word); recordings of two kinds are refused, not half taken
    clip(&env, "rec/s3/b.MP4", 5, 10, 220, "", &[]);
    env.ok(&[
        "convert",
        "rec",
        "upper",
        "--to",
        "folders",
        "--labels",
        "labels/{session}.csv",
        "--unit",
        "seconds",
    ]);
    let m = manifest(&env, "upper");
    assert_eq!(
        m["video"]["chunks"].as_array().unwrap().len(),
        4,
        "{}",
        m["video"]
    );
    std::fs::copy(env.path("rec/s1/a.mp4"), env.path("rec/s1/z.mov")).unwrap();
    let out = env.run(&[
        "convert",
        "rec",
        "mixed",
        "--to",
        "folders",
        "--labels",
        "labels/{session}.csv",
        "--unit",
        "seconds",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_stderr_has(&out, "more than one kind (1 .mov, 4 .mp4)");
    // one file per session: `{session}` in --labels is filled in (the made
    // pattern had no placeholder, and every build asked for labels/{session}.csv)
    for (s, base) in [("s1", 0), ("s2", 100)] {
        clip(&env, &format!("flat/{s}.mp4"), 20, 10, base, "", &[]);
    }
    let out = env.ok(&[
        "convert",
        "flat",
        "flatout",
        "--to",
        "folders",
        "--labels",
        "labels/{session}.csv",
        "--unit",
        "seconds",
    ]);
    assert_eq!(written(&env, "flatout").len(), 2 * 15, "{}", stderr(&out));
    // an error of the build names the recipe as convert's, not as a file in
    // OUT that was never written
    let out = env.run(&[
        "convert",
        "flat",
        "bad",
        "--to",
        "folders",
        "--labels",
        "nolabels/{session}.csv",
        "--unit",
        "seconds",
    ]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        !stderr(&out).contains("imgprep-convert.toml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn shards_of_a_video_build_merge_into_the_same_dataset() {
    if !have_ffmpeg() {
        return;
    }
    let env = TestEnv::new();
    for (s, base) in [("s1", 0), ("s2", 40)] {
        clip(&env, &format!("v/{s}/a.mp4"), 20, 10, base, "", &[]);
        clip(&env, &format!("v/{s}/b.mp4"), 20, 10, base + 20, "", &[]);
    }
    env.write("l/s1.csv", b"label,start,end\nx,0,2.2\ny,2.2,4\n");
    env.write("l/s2.csv", b"label,start,end\nx,0.5,3\n");
    let t = "name = \"sh\"\n[[sources]]\ntype = \"video\"\nchunks = \"v/{s}/*.mp4\"\n\
             labels = \"l/{s}.csv\"\nunit = \"seconds\"\n[split]\nmethod = \"group\"\n\
             train = 0.5\nvalidation = 0.5\n[[outputs]]\nformat = \"recordio\"\n";
    env.write("sh.toml", t.as_bytes());
    for i in 0..3 {
        env.ok(&[
            "build",
            "sh.toml",
            "--out",
            &format!("p{i}"),
            "--shard",
            &format!("{i}/3"),
        ]);
    }
    let merged = env.ok(&[
        "merge", "sh.toml", "--out", "merged", "p0", "p1", "p2", "--json",
    ]);
    let m: Value = serde_json::from_slice(&merged.stdout).unwrap();
    assert_eq!(m["processed"], 0, "merge decodes nothing");
    env.ok(&["build", "sh.toml", "--out", "one"]);
    for f in [
        "items.csv",
        "video-frames.csv",
        "complete/recordio/train.rec",
        "complete/recordio/validation.rec",
        "complete/recordio/train.idx",
    ] {
        assert_eq!(
            env.read(&format!("merged/{f}")),
            env.read(&format!("one/{f}")),
            "{f}"
        );
    }
}

/// A shard that could not decode a chunk (its frames skipped, with the
/// reason) merges into what one build gives: the frames are skipped there
/// too, for the shard's reason, and the merge asks for no cache entry.
#[test]
fn shards_that_skipped_a_chunk_merge_like_one_build() {
    if !have_ffmpeg() {
        return;
    }
    let env = TestEnv::new();
    for (s, base) in [("s1", 0), ("s2", 40), ("s3", 80)] {
        clip(&env, &format!("v/{s}/a.mp4"), 20, 10, base, "", &[]);
    }
    // ffmpeg that fails on session s2's chunk (ffprobe, the real one,
    // lists it, so the catalog holds its frames)
    let real = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v ffmpeg"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let fake = env.path("fails-on-s2");
    env.write(
        "fails-on-s2",
        format!(
            "#!/bin/sh\ncase \"$*\" in *v/s2/*) echo 'decoder refuses this chunk' >&2; exit 1;; esac\n\
             exec {} \"$@\"\n",
            real.trim()
        )
        .as_bytes(),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let t = "name = \"sk\"\non_error = \"skip\"\n[[sources]]\ntype = \"video\"\n\
             chunks = \"v/{s}/*.mp4\"\n[labels]\nunlabelled = true\n[[outputs]]\n\
             format = \"recordio\"\n";
    env.write("sk.toml", t.as_bytes());
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_imgprep"))
            .args(args)
            .env("IMGPREP_CACHE_DIR", env.path("cache"))
            .env("IMGPREP_FFMPEG", &fake)
            .current_dir(env.dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        out
    };
    for i in 0..3 {
        run(&[
            "build",
            "sk.toml",
            "--out",
            &format!("p{i}"),
            "--shard",
            &format!("{i}/3"),
        ]);
    }
    let merged = run(&[
        "merge", "sk.toml", "--out", "merged", "p0", "p1", "p2", "--json",
    ]);
    let m: Value = serde_json::from_slice(&merged.stdout).unwrap();
    assert_eq!(m["processed"], 0, "merge decodes nothing");
    run(&["build", "sk.toml", "--out", "one"]);
    let one = manifest(&env, "one");
    let skipped = one["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 20, "{one}");
    assert!(
        skipped
            .iter()
            .all(|s| s["item"].as_str().unwrap().starts_with("s2/")
                && s["reason"].as_str().unwrap().contains("decoder refuses")),
        "{one}"
    );
    assert_eq!(one["variants"]["complete"]["splits"]["train"]["items"], 40);
    for f in [
        "manifest.json",
        "items.csv",
        "video-frames.csv",
        "complete/recordio/train.rec",
        "complete/recordio/train.idx",
        "complete/recordio/train.lst",
    ] {
        assert_eq!(
            env.read(&format!("merged/{f}")),
            env.read(&format!("one/{f}")),
            "{f}"
        );
    }
}

/// Chunks in object storage: listed like files, read by ffmpeg through a
/// signed URL that never shows in messages or outputs.
#[test]
fn chunks_in_s3_are_read_through_signed_urls() {
    if !have_ffmpeg() {
        return;
    }
    let Some(s3) = crate::env::s3() else { return };
    let env = TestEnv::new();
    clip(&env, "v/s1/a.mp4", 20, 10, 0, "", &[]);
    clip(&env, "v/s1/b.mp4", 20, 10, 20, "", &[]);
    let prefix = s3.uri("t-video/v");
    env.upload(&s3, "v", &prefix);
    let ranges = [("x", 0.0, 1.5), ("y", 1.5, 4.0)];
    env.write("l/s1.csv", ranges_csv(&ranges).as_bytes());
    let t = format!(
        "name = \"s3v\"\n[[sources]]\ntype = \"video\"\nchunks = \"{prefix}/{{s}}/*.mp4\"\n\
         labels = \"l/{{s}}.csv\"\nunit = \"seconds\"\n[[outputs]]\nformat = \"folders\"\n"
    );
    env.write("r.toml", t.as_bytes());
    let out = env.ok_s3(&s3, &["build", "r.toml", "--out", "out"]);
    let w = written(&env, "out");
    assert_eq!(w.len(), 40);
    for f in &w {
        assert_eq!(f.painted as u64, f.session_frame, "{}", f.item);
        assert_eq!(f.label, label_at(&ranges, f.session_frame as f64 / 10.0));
    }
    let m = String::from_utf8(env.read("out/manifest.json")).unwrap();
    assert!(m.contains(&format!("{prefix}/s1/a.mp4")));
    for text in [stderr(&out), m] {
        assert!(!text.contains("X-Amz-Signature"), "a signed URL leaked");
    }
}

/// Ranges from a Label Studio export (frames from 1 at the project's frame
/// rate, ends included) and from an ActivityNet JSON land on the same frames
/// as the same ranges in seconds.
#[test]
fn label_studio_and_activitynet_ranges_mean_the_same_frames() {
    if !have_ffmpeg() {
        return;
    }
    let env = TestEnv::new();
    clip(&env, "v/s1/a.mp4", 30, 10, 0, "", &[]);
    // walk: frames 1-10 at 10 fps = [0, 1.0) s; run: 16-25 = [1.5, 2.5) s
    env.write(
        "ls.json",
        br#"[{"id": 7, "data": {"video": "/data/upload/3/5c1e2f-s1.mp4"}, "annotations": [{"result": [
            {"type": "timelinelabels", "value": {"ranges": [{"start": 1, "end": 10}], "timelinelabels": ["walk"]}},
            {"type": "timelinelabels", "value": {"ranges": [{"start": 16, "end": 25}], "timelinelabels": ["run"]}}]}]}]"#,
    );
    env.write(
        "an.json",
        br#"{"database": {"s1": {"annotations": [
            {"segment": [0.0, 1.0], "label": "walk"}, {"segment": [1.5, 2.5], "label": "run"}]}}}"#,
    );
    let src = "chunks = \"v/{s}/*.mp4\"";
    let r = recipe(&env, "ls0", &format!("{src}\nlabels = \"ls.json\""), "");
    let out = env.run(&["build", &r, "--out", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert_stderr_has(&out, "frame_rate");
    let mut got = Vec::new();
    for (name, extra) in [
        ("ls", "labels = \"ls.json\"\nframe_rate = 10"),
        ("an", "labels = \"an.json\""),
    ] {
        let r = recipe(&env, name, &format!("{src}\n{extra}"), "");
        env.ok(&["build", &r, "--out", name]);
        let mut w: Vec<(u32, String)> = written(&env, name)
            .into_iter()
            .map(|f| (f.painted, f.label))
            .collect();
        w.sort();
        got.push(w);
    }
    let want: Vec<(u32, String)> = (0..10)
        .map(|k| (k, "walk".to_string()))
        .chain((15..25).map(|k| (k, "run".to_string())))
        .collect();
    assert_eq!(got[0], want, "Label Studio");
    assert_eq!(got[1], want, "ActivityNet");
}

/// The same from Azure Blob Storage (Azurite): a service-SAS URL.
#[test]
fn chunks_in_azure_are_read_through_sas_urls() {
    if !have_ffmpeg() {
        return;
    }
    let Some(az) = crate::env::az() else { return };
    let env = TestEnv::new();
    clip(&env, "v/s1/a.mp4", 20, 10, 0, "", &[]);
    let prefix = az.uri("t-video/v");
    env.ok_az(&az, &["push", "v", &prefix, "--layout", "mirror", "-q"]);
    env.write("l/s1.csv", b"label,start,end\nx,0,1\n");
    let t = format!(
        "name = \"azv\"\n[[sources]]\ntype = \"video\"\nchunks = \"{prefix}/{{s}}/*.mp4\"\n\
         labels = \"l/{{s}}.csv\"\nunit = \"seconds\"\n[[outputs]]\nformat = \"folders\"\n"
    );
    env.write("r.toml", t.as_bytes());
    let out = env.ok_az(&az, &["build", "r.toml", "--out", "out"]);
    let w = written(&env, "out");
    assert_eq!(w.len(), 10);
    assert!(w
        .iter()
        .all(|f| f.painted as u64 == f.session_frame && f.label == "x"));
    assert!(!stderr(&out).contains("sig="), "a SAS leaked");
}

/// Relabelled ranges over the same frames re-decode no video: frames are
/// cached by chunk, frame and transform, and labels come from the ranges
/// after decoding.
#[test]
fn relabelled_ranges_decode_no_frame_again() {
    if !have_ffmpeg() {
        return;
    }
    let env = TestEnv::new();
    clip(&env, "v/s1/a.mp4", 24, 12, 0, "", &[]);
    env.write(
        "l/s1.csv",
        ranges_csv(&[("a", 0.0, 1.0), ("b", 1.0, 2.0)]).as_bytes(),
    );
    let r = recipe(
        &env,
        "v",
        "chunks = \"v/{subject}/*.mp4\"\nlabels = \"l/{subject}.csv\"\nunit = \"seconds\"",
        "",
    );
    let first = env.ok_json(&["build", &r, "--out", "out", "--json"]);
    assert_eq!(first["processed"], 24);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let swapped = [("b", 0.0, 1.0), ("a", 1.0, 2.0)];
    env.write("l/s1.csv", ranges_csv(&swapped).as_bytes());
    let after = env.ok_json(&["build", &r, "--out", "out", "--json"]);
    assert_eq!(
        (after["processed"].clone(), after["cached"].clone()),
        (0.into(), 24.into()),
        "{after}"
    );
    let w = written(&env, "out");
    assert_eq!(w.len(), 24);
    for f in &w {
        assert_eq!(f.painted as u64, f.frame, "{}", f.item);
        assert_eq!(
            f.label,
            label_at(&swapped, f.frame as f64 / 12.0),
            "{}",
            f.item
        );
    }
}

/// Thousands of ranges that hold no frame: a few warnings word for word,
/// the rest counted, not one line each.
#[test]
fn many_empty_ranges_are_counted_not_each_printed() {
    if !have_ffmpeg() {
        return;
    }
    let env = TestEnv::new();
    clip(&env, "v/r/a.mp4", 20, 10, 0, "", &[]);
    let mut csv = String::from("label,start,end\na,0,1.0\n");
    for k in 0..500 {
        csv.push_str(&format!("b,{}.0,{}.5\n", 100 + k, 100 + k));
    }
    env.write("l/r.csv", csv.as_bytes());
    let src = "chunks = \"v/{s}/*.mp4\"\nlabels = \"l/{s}.csv\"\nunit = \"seconds\"";
    let r = recipe(&env, "many", src, "");
    let out = env.ok(&["build", &r, "--out", "x"]);
    let err = stderr(&out);
    let said = err.matches("holds no frame").count();
    assert!(said <= 20, "{said} lines: {err}");
    assert_stderr_has(&out, "and 480 more warnings");
}

/// An AVI whose index counts frames dropped while recording (empty chunks)
/// is whole: its frames are read, not refused as cut short (a file that is
/// cut short still is, see above). Stratified splits of its frames are
/// warned about; a raw H.264 stream is refused with a way to read it.
#[test]
fn dropped_frame_avis_are_read_and_raw_streams_refused_with_a_way_out() {
    if !have_ffmpeg() {
        return;
    }
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path("v/s")).unwrap();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=160x120:r=25:d=3",
        "-vf",
        "select='not(between(n,20,29))'",
        "-fps_mode",
        "passthrough",
        "-c:v",
        "mpeg4",
        env.path("v/s/gap.avi").to_str().unwrap(),
    ]);
    let r = recipe(
        &env,
        "gap",
        "chunks = \"v/{s}/*.avi\"",
        "[labels]\nunlabelled = true",
    );
    let out = env.ok(&["build", &r, "--out", "o"]);
    let m = manifest(&env, "o");
    assert_eq!(
        m["video"]["chunks"][0]["frames"],
        65,
        "{}\n{}",
        m["video"],
        stderr(&out)
    );
    // frames of one recording spread over the splits: said
    let r = recipe(
        &env,
        "strat",
        "chunks = \"v/{s}/*.avi\"",
        "[labels]\nunlabelled = true\n[split]\nmethod = \"stratified\"\ntrain = 0.8\nvalidation = 0.2",
    );
    let out = env.ok(&["build", &r, "--out", "st"]);
    assert_stderr_has(&out, "neighbouring frames are near copies");
    // a raw H.264 stream has no timestamps: refused, saying how to make a
    // file that is read
    std::fs::create_dir_all(env.path("raw/s")).unwrap();
    let raw = env.path("raw/s/a.h264");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=160x120:r=25:d=1",
        "-c:v",
        "libx264",
        "-f",
        "h264",
        raw.to_str().unwrap(),
    ]);
    let r = recipe(
        &env,
        "raw",
        "chunks = \"raw/{s}/*.h264\"",
        "[labels]\nunlabelled = true",
    );
    let out = env.run(&["build", &r, "--out", "rawout"]);
    assert_ne!(out.status.code(), Some(0));
    assert_stderr_has(&out, "encode it into a container at its frame rate first");
}

/// One ranges file for several videos names each row's video in a column
/// (every row labelled every video when the column was not read); without
/// such a column, one file for several sessions is refused; a row naming a
/// video that is not there is a missing input, which on_error decides about.
#[test]
fn one_ranges_file_for_several_videos_names_each_rows_video() {
    if !have_ffmpeg() {
        return;
    }
    let env = TestEnv::new();
    clip(&env, "v/a.mp4", 30, 10, 0, "", &[]);
    clip(&env, "v/b.mp4", 30, 10, 0, "", &[]);
    env.write(
        "ranges.csv",
        b"video,start,end,label\na.mp4,0,1,walk\nb,2,3,run\n",
    );
    let src = "chunks = \"v/{video}.mp4\"\nlabels = \"ranges.csv\"\nunit = \"seconds\"";
    let r = recipe(&env, "one", src, "");
    env.ok(&["build", &r, "--out", "out"]);
    let w = written(&env, "out");
    assert_eq!(w.len(), 20);
    for f in &w {
        let (video, t) = (&f.item[..1], f.session_time);
        let want = match video {
            "a" => (t < 1.0).then_some("walk"),
            _ => (2.0..3.0).contains(&t).then_some("run"),
        };
        assert_eq!(Some(f.label.as_str()), want, "{} at {t}", f.item);
    }
    // a row of a video that is not there
    env.write(
        "ranges.csv",
        b"video,start,end,label\na.mp4,0,1,walk\nb,2,3,run\nc.mp4,0,1,sit\nc.mp4,1,2,stand\n",
    );
    let out = env.run(&["build", &r, "--out", "out2"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_stderr_has(&out, "ranges.csv:4: ranges for session \"c.mp4\"");
    let r2 = recipe(&env, "skip", src, "on_error = \"skip\"");
    env.ok(&["build", &r2, "--out", "out2"]);
    let m: Value = serde_json::from_slice(&env.read("out2/manifest.json")).unwrap();
    let skipped = m["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(skipped[0]["origin"]
        .as_str()
        .unwrap()
        .ends_with("ranges.csv:4"));
    // no video column: which video a row is about is not said
    env.write("ranges.csv", b"label,start,end\nwalk,0,1\n");
    let out = env.run(&["build", &r, "--out", "out3"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_stderr_has(&out, "no column says which video a row is about");
    // a file per session naming another video: a mix-up
    env.write("l/a.csv", b"video,start,end,label\nb.mp4,0,1,walk\n");
    env.write("l/b.csv", b"video,start,end,label\nb.mp4,0,1,run\n");
    let r3 = recipe(
        &env,
        "per",
        "chunks = \"v/{video}.mp4\"\nlabels = \"l/{video}.csv\"\nunit = \"seconds\"",
        "",
    );
    let out = env.run(&["build", &r3, "--out", "out4"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_stderr_has(&out, "l/a.csv:2: names video \"b.mp4\"");
}

/// A recording with damaged bytes that ffmpeg decodes anyway, patching
/// the damage over with pixels of other frames ("error while decoding MB",
/// "concealing"): its frames are not written as if they were right (they
/// were, exit 0, without a word); the chunk is bad input, which on_error
/// decides about.
#[test]
fn frames_the_decoder_patched_over_are_not_written() {
    if !have_ffmpeg() {
        return;
    }
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path("v")).unwrap();
    let good = env.path("v/a.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=25:duration=8",
        "-c:v",
        "libx264",
        "-threads",
        "1",
        "-bf",
        "3",
        "-g",
        "50",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        good.to_str().unwrap(),
    ]);
    env.write("l/a.csv", b"label,start,end\nwalk,0,8\n");
    let r = recipe(
        &env,
        "d",
        "chunks = \"v/{s}.mp4\"\nlabels = \"l/{s}.csv\"\nunit = \"seconds\"",
        "",
    );
    env.ok(&["build", &r, "--out", "clean"]);
    // a second recording, undamaged
    std::fs::copy(&good, env.path("v/b.mp4")).unwrap();
    env.write("l/b.csv", b"label,start,end\nrun,0,8\n");
    // 40 bytes in the middle of the stream overwritten
    let mut bytes = std::fs::read(&good).unwrap();
    let at = bytes.len() * 55 / 100;
    let mut x = 12345u32;
    for b in &mut bytes[at..at + 40] {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        *b = (x >> 16) as u8;
    }
    std::fs::write(&good, &bytes).unwrap();
    let out = env.run(&["build", &r, "--out", "out"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_stderr_has(&out, "damaged data: the decoder reported");
    assert_stderr_has(&out, "h264: ");
    let r2 = recipe(
        &env,
        "s",
        "chunks = \"v/{s}.mp4\"\nlabels = \"l/{s}.csv\"\nunit = \"seconds\"",
        "on_error = \"skip\"",
    );
    env.ok(&["build", &r2, "--out", "out2"]);
    let m: Value = serde_json::from_slice(&env.read("out2/manifest.json")).unwrap();
    assert_eq!(m["skipped"].as_array().unwrap().len(), 200);
    assert!(m["skipped"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("chunk a of session a: damaged data"));
    let w = written(&env, "out2");
    assert_eq!(w.len(), 200);
    assert!(w
        .iter()
        .all(|f| f.item.starts_with("b/") && f.label == "run"));
}

/// A video with non-square pixels (sample aspect ratio 2:1, which players
/// show twice as wide) asks whether its frames are to be the shape shown or
/// the pixels stored (its frames came out squashed, without a word); both
/// give the right frames.
#[test]
fn non_square_pixels_ask_which_shape_frames_take() {
    if !have_ffmpeg() {
        return;
    }
    let env = TestEnv::new();
    clip(&env, "v/a.mp4", 12, 12, 0, "setsar=2/1", &[]);
    env.write("l/a.csv", b"label,start,end\nwalk,0,1\n");
    let src = "chunks = \"v/{s}.mp4\"\nlabels = \"l/{s}.csv\"\nunit = \"seconds\"";
    let r = recipe(&env, "ask", src, "[transform]\nencoding = \"png\"");
    let out = env.run(&["build", &r, "--out", "out"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_stderr_has(
        &out,
        "its pixels are not square (sample aspect ratio 2:1: stored 128x96, shown 256x96)",
    );
    let mut p = Processor::new().unwrap();
    for (setting, width) in [("display", 256), ("stored", 128)] {
        let r = recipe(
            &env,
            setting,
            &format!("{src}\npixel_aspect = \"{setting}\""),
            "[transform]\nencoding = \"png\"",
        );
        env.ok(&["build", &r, "--out", setting]);
        let w = written(&env, setting);
        assert_eq!(w.len(), 12);
        for f in &w {
            assert_eq!(f.painted as u64, f.session_frame, "{setting}: {}", f.item);
        }
        let png = walk_files(&env.path(setting))
            .into_iter()
            .find(|f| f.extension().is_some_and(|e| e == "png"))
            .unwrap();
        let px = p
            .decode(&std::fs::read(png).unwrap(), &ImageSpec::default())
            .unwrap()
            .pixels;
        assert_eq!((px.width, px.height), (width, 96), "{setting}");
    }
}
