//! The `imgprep` binary: flags in, library calls, messages and exit codes out.

mod cli;
mod progress;

/// `println!` for results on stdout: a reader that went away (`| head`)
/// ends the program quietly with exit 0 instead of a panic.
macro_rules! outln {
    ($($t:tt)*) => {
        $crate::write_out(format_args!("{}\n", format_args!($($t)*)))
    };
}

fn write_out(args: std::fmt::Arguments) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|_| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("imgprep: error: writing to standard output: {e}");
        std::process::exit(exit::USAGE as i32);
    }
}

use anyhow::Result;
use clap::Parser;
use cli::{
    BuildArgs, Cli, Command, ConvertArgs, Im2recArgs, InitArgs, InspectArgs, PullArgs, PushArgs,
    SynthArgs, VerifyArgs,
};
use imgprep::im2rec::{find_lists, make_lists, pack_list, validate_list, ListOptions, PackOptions};
use imgprep::image::{ColorMode, Encoding, ImageSpec, Resize};
use progress::Progress;
use std::process::ExitCode;

/// Exit codes: 0 ok, 1 problems found, 2 usage or setup error.
mod exit {
    pub const PROBLEMS: u8 = 1;
    pub const USAGE: u8 = 2;
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Im2rec(a) => im2rec(a),
        Command::Inspect(a) => inspect(a),
        Command::Verify(a) => verify(a),
        Command::Synth(a) => synth(a),
        Command::Build(a) => build(a),
        Command::Convert(a) => convert(*a),
        Command::Push(a) => push(a),
        Command::Pull(a) => pull(a),
        Command::Init(a) => init(a),
        Command::Merge(a) => {
            let shard_check: Result<()> =
                a.shards
                    .iter()
                    .try_for_each(|d| match imgprep::build::read_manifest(d) {
                        Some(m) if m.shard.is_some() => Ok(()),
                        _ => Err(anyhow::anyhow!(
                            "{}: not a shard output (no manifest.json with a shard)",
                            d.display()
                        )),
                    });
            shard_check.and_then(|_| {
                build(BuildArgs {
                    recipe: a.recipe,
                    out: Some(a.out),
                    shard: None,
                    num_thread: a.num_thread,
                    json: a.json,
                    quiet: a.quiet,
                    merge_from: a.shards,
                    cache_dir: a.cache_dir,
                    drop_cache: false,
                    force: a.force,
                })
            })
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("imgprep: error: {e:#}");
            // bad input data under on_error = "fail" is a problem found
            let problem = matches!(
                e.downcast_ref::<imgprep::Error>(),
                Some(imgprep::Error::Problem(_))
            );
            ExitCode::from(if problem { exit::PROBLEMS } else { exit::USAGE })
        }
    }
}

fn threads(n: Option<usize>) -> usize {
    n.filter(|&n| n > 0).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn im2rec(a: Im2recArgs) -> Result<u8> {
    // PREFIX in object storage: lists are fetched to and written in a
    // staging folder, and what is written is sent back next to them
    let remote = imgprep::im2rec::RemotePrefix::parse(&a.prefix)?;
    let shown = |p: &std::path::Path| -> String {
        match remote
            .as_ref()
            .and_then(|r| Some((r, p.strip_prefix(&r.local_dir).ok()?)))
        {
            Some((r, rel)) => r.dir.join(&rel.to_string_lossy()).to_string(),
            None => p.display().to_string(),
        }
    };
    if a.list {
        let opts = ListOptions {
            prefix: remote
                .as_ref()
                .map(|r| r.local_prefix())
                .unwrap_or_else(|| a.prefix.clone()),
            root: a.root,
            exts: a.exts,
            chunks: a.chunks,
            train_ratio: a.train_ratio,
            test_ratio: a.test_ratio,
            recursive: a.recursive,
            shuffle: !a.no_shuffle,
        };
        let mut s = make_lists(&opts)?;
        if let Some(r) = &remote {
            let local: Vec<std::path::PathBuf> = s.files.iter().map(|(f, _)| f.clone()).collect();
            r.send(&local)?;
            for (f, _) in &mut s.files {
                *f = shown(f).into();
            }
        }
        for w in &s.skipped {
            eprintln!("warning: skipped {w}");
        }
        if a.json {
            outln!("{}", serde_json::to_string_pretty(&s)?);
        } else {
            for (dir, label) in &s.classes {
                outln!("{dir} {label}");
            }
            if !a.quiet {
                for (f, n) in &s.files {
                    eprintln!("wrote {} ({n} images)", f.display());
                }
            }
        }
        return Ok(if a.strict && !s.skipped.is_empty() {
            exit::PROBLEMS
        } else {
            0
        });
    }

    let encoding = match a.encoding.as_str() {
        ".png" => Encoding::Png {
            compression: a.quality.min(9) as u8,
        },
        _ => {
            if !(1..=100).contains(&a.quality) {
                anyhow::bail!("--quality must be 1-100 for JPEG (got {})", a.quality);
            }
            Encoding::Jpeg {
                quality: a.quality as u8,
            }
        }
    };
    let opts = PackOptions {
        root: a.root,
        spec: ImageSpec {
            color: match a.color {
                0 => ColorMode::Grayscale,
                -1 => ColorMode::Unchanged,
                _ => ColorMode::Color,
            },
            center_crop: a.center_crop,
            resize: if a.resize > 0 {
                Resize::ShorterEdge(a.resize)
            } else {
                Resize::None
            },
            encoding,
            max_pixels: a.max_pixels,
        },
        pass_through: a.pass_through,
        pack_label: a.pack_label,
        threads: threads(a.num_thread),
    };
    let lists = match &remote {
        Some(r) => r.fetch_lists()?,
        None => find_lists(&a.prefix)?,
    };
    // Every list is checked before anything is written.
    let progress = Progress::new(a.quiet || a.json).silent(a.quiet);
    for l in &lists {
        let stats = validate_list(l)?;
        if let (false, Some((line, n))) = (a.pack_label, stats.first_multi_label) {
            imgprep::report::Reporter::warn(
                &progress,
                &format!(
                    "{}: {} of {} lines have several labels (line {line}: {n}); without \
                     --pack-label each record keeps only the first. Add --pack-label to store them all",
                    shown(l),
                    stats.multi_label_lines,
                    stats.entries
                ),
            );
        }
    }
    let mut summaries = Vec::new();
    for l in &lists {
        let mut s = pack_list(l, &opts, &progress)?;
        if let Some(r) = &remote {
            r.send(&[s.rec.clone(), s.idx.clone()])?;
            for p in [&mut s.lst, &mut s.rec, &mut s.idx] {
                *p = shown(p).into();
            }
        }
        if !a.quiet && !a.json {
            let reasons: Vec<String> = s
                .skip_reasons
                .iter()
                .map(|(k, v)| format!("{v} {k}"))
                .collect();
            eprintln!(
                "{}: {} images, {} skipped{}, {} written, {:.0} img/s, {:.2} s -> {}",
                s.lst.display(),
                s.images,
                s.skipped,
                if reasons.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", reasons.join(", "))
                },
                mb(s.bytes_written),
                (s.images + s.skipped) as f64 / s.seconds.max(1e-9),
                s.seconds,
                s.rec.display()
            );
        }
        summaries.push(s);
    }
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&summaries)?);
    }
    let skipped: u64 = summaries.iter().map(|s| s.skipped).sum();
    Ok(if a.strict && skipped > 0 {
        exit::PROBLEMS
    } else {
        0
    })
}

fn inspect_tfrecord(a: &InspectArgs) -> Result<u8> {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let limit = a.limit.unwrap_or(u64::MAX);
    let mut errors = 0u64;
    imgprep::tfcheck::inspect_tfrecord(&a.rec, |r| {
        errors += u64::from(r.error.is_some());
        let line = if a.json {
            serde_json::to_string(&r).unwrap()
        } else {
            let dim = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "?".into());
            format!(
                "{:>8} {:>12} {:>8} {:>6} {}x{}x{} {} [{}]{}",
                r.n,
                r.offset,
                r.bytes,
                r.format.clone().unwrap_or_else(|| "?".into()),
                dim(r.width),
                dim(r.height),
                dim(r.channels),
                match r.boxes {
                    Some(n) => format!("{n} boxes"),
                    None => format!("label {}", dim(r.label)),
                },
                r.features.join(","),
                r.error
                    .as_ref()
                    .map(|e| format!(" error: {e}"))
                    .unwrap_or_default()
            )
        };
        writeln!(out, "{line}").is_ok() && r.n + 1 < limit
    })?;
    Ok(if errors > 0 { exit::PROBLEMS } else { 0 })
}

fn inspect(a: InspectArgs) -> Result<u8> {
    use std::io::Write;
    imgprep::inspect::check_input(&a.rec, imgprep::inspect::Wanted::RecordFile)?;
    if imgprep::tfcheck::is_tfrecord(&a.rec) {
        return inspect_tfrecord(&a);
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let limit = a.limit.unwrap_or(u64::MAX);
    let mut errors = 0u64;
    let mut io_err = None;
    imgprep::inspect::inspect_rec(&a.rec, |r| {
        if r.n == 0 && !a.json {
            let _ = writeln!(
                out,
                "{:>8} {:>12} {:>10} {:>8} {:>6} {:>11}  labels",
                "n", "offset", "id", "bytes", "format", "size"
            );
        }
        if r.error.is_some() {
            errors += 1;
        }
        let line = if a.json {
            serde_json::to_string(&r).unwrap()
        } else {
            let (fmt, size) = match (&r.image, &r.error) {
                (Some(i), _) => (
                    i.format.to_string(),
                    format!("{}x{}x{}", i.width, i.height, i.channels),
                ),
                (None, Some(e)) => ("?".into(), format!("error: {e}")),
                _ => ("?".into(), String::new()),
            };
            let labels: Vec<String> = match imgprep::inspect::detection_boxes(&r.labels) {
                // detection records: class and box (fractions of the image) per object
                Some(boxes) => vec![format!(
                    "{} boxes: {}",
                    boxes.len(),
                    boxes
                        .iter()
                        .map(|(c, b)| format!(
                            "{c} [{:.4} {:.4} {:.4} {:.4}]",
                            b[0], b[1], b[2], b[3]
                        ))
                        .collect::<Vec<_>>()
                        .join(" ")
                )],
                None => r.labels.iter().map(|l| format!("{l}")).collect(),
            };
            format!(
                "{:>8} {:>12} {:>10} {:>8} {:>6} {:>11}  {}",
                r.n,
                r.offset,
                r.id,
                r.bytes,
                fmt,
                size,
                labels.join(",")
            )
        };
        if let Err(e) = writeln!(out, "{line}") {
            io_err = Some(e);
            return false;
        }
        r.n + 1 < limit
    })?;
    match io_err {
        Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(0),
        Some(e) => return Err(e.into()),
        None => {}
    }
    out.flush().ok();
    Ok(if errors > 0 { exit::PROBLEMS } else { 0 })
}

fn verify(a: VerifyArgs) -> Result<u8> {
    imgprep::inspect::check_input(&a.prefix, imgprep::inspect::Wanted::Dataset)?;
    if imgprep::tfcheck::is_tfrecord(&a.prefix) {
        let (n, problems) = imgprep::tfcheck::verify_tfrecord(&a.prefix)?;
        if a.json {
            let v = serde_json::json!({"file": a.prefix, "records": n, "problems": problems, "ok": problems.is_empty()});
            outln!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            for p in &problems {
                eprintln!("problem: {p}");
            }
            let status = if problems.is_empty() { "OK" } else { "FAILED" };
            if !a.quiet {
                eprintln!(
                    "{}: {status} ({n} records, {} problems)",
                    a.prefix.display(),
                    problems.len()
                );
            }
        }
        return Ok(if problems.is_empty() {
            0
        } else {
            exit::PROBLEMS
        });
    }
    let manifest = imgprep::files::join(&a.prefix, std::path::Path::new(imgprep::build::MANIFEST));
    if imgprep::files::is_file(&manifest) {
        let progress = Progress::new(a.quiet || a.json).silent(a.quiet);
        let r = imgprep::build::verify_out(&a.prefix, threads(a.num_thread), &progress)?;
        if a.json {
            outln!("{}", serde_json::to_string_pretty(&r)?);
        } else {
            for p in &r.problems {
                eprintln!("problem: {p}");
            }
            if !a.quiet {
                eprintln!(
                    "{}: {} ({} files, {} records checked, {} problems)",
                    r.out.display(),
                    if r.ok { "OK" } else { "FAILED" },
                    r.files_checked,
                    r.records_checked,
                    r.problems.len()
                );
            }
        }
        return Ok(if r.ok { 0 } else { exit::PROBLEMS });
    }
    let progress = Progress::new(a.quiet || a.json).silent(a.quiet).in_bytes();
    let r = imgprep::verify::verify_rec(&a.prefix, threads(a.num_thread), &progress)?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        for p in &r.first_problems {
            eprintln!("problem: {p}");
        }
        if r.problems as usize > r.first_problems.len() {
            eprintln!(
                "... and {} more problems",
                r.problems as usize - r.first_problems.len()
            );
        }
        let n = |o: Option<u64>| o.map(|v| v.to_string()).unwrap_or_else(|| "no file".into());
        if !a.quiet {
            eprintln!(
                "{}: {} ({} records, {} images decode, .idx {}, .lst {}, {} problems)",
                r.rec.display(),
                if r.ok { "OK" } else { "FAILED" },
                r.records,
                r.images_ok,
                n(r.idx_entries),
                n(r.lst_entries),
                r.problems
            );
        }
    }
    Ok(if r.ok { 0 } else { exit::PROBLEMS })
}

fn synth(a: SynthArgs) -> Result<u8> {
    let opts = imgprep::synth::SynthOptions {
        classes: a.classes,
        per_class: a.per_class,
        width: a.width,
        height: a.height,
        seed: a.seed,
        format: a.format,
        layout: a.layout,
        sessions: a.sessions,
        chunks: a.chunks,
        seconds: a.seconds,
        fps: a.fps,
    };
    let files = imgprep::synth::synth_tree(&a.dir, &opts)?;
    if a.layout == imgprep::synth::Layout::Video {
        eprintln!(
            "wrote {} files (videos, labels) under {}",
            files.len(),
            a.dir.display()
        );
    } else {
        eprintln!("wrote {} images under {}", files.len(), a.dir.display());
    }
    Ok(0)
}

fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let bad = || anyhow::anyhow!("--shard {s:?}: expected I/N with 0 <= I < N, e.g. 0/4");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

fn push(a: PushArgs) -> Result<u8> {
    use imgprep::storage::transfer::{self, Layout, PushOptions};
    let dest = imgprep::storage::Uri::parse(&a.dest).map_err(|e| anyhow::anyhow!("{e}"))?;
    if !a.dir.is_dir() {
        anyhow::bail!("{}: not a folder", a.dir.display());
    }
    let o = PushOptions {
        layout: if a.layout == "mirror" {
            Layout::Mirror
        } else {
            Layout::Channels
        },
        dry_run: a.dry_run,
        force: a.force,
        part_size: a.part_size_mib.max(5) << 20,
        concurrency: a.concurrency.max(1),
    };
    let progress = Progress::new(a.quiet || a.json).silent(a.quiet).in_bytes();
    let r = transfer::push(&a.dir, &dest, &o, &progress)?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        if a.dry_run {
            for p in &r.plan {
                outln!("{}\t{}\t{}\t{}", p.action, p.local, p.uri, p.size);
            }
        }
        if !a.quiet {
            let verb = if a.dry_run { "to upload" } else { "uploaded" };
            eprintln!(
                "{}: {} {verb} ({}), {} skipped ({} already there), {} failed, {:.2} s, {:.1} MB/s{}",
                dest,
                r.uploaded,
                mb(r.bytes_transferred),
                r.skipped,
                mb(r.bytes_skipped),
                r.failed.len(),
                r.seconds,
                r.rate_mb_s,
                if a.dry_run { " (dry run: nothing sent)" } else { "" }
            );
        }
    }
    Ok(u8::from(!r.failed.is_empty()))
}

fn pull(a: PullArgs) -> Result<u8> {
    use imgprep::storage::transfer::{self, PullOptions};
    let base = a
        .base
        .as_deref()
        .map(imgprep::storage::Uri::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let o = PullOptions {
        base,
        concurrency: a.concurrency.max(1),
    };
    let progress = Progress::new(a.quiet || a.json)
        .silent(a.quiet)
        .counting("files");
    let r = transfer::pull(&a.list, &a.dest, &o, &progress)?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&r)?);
    } else if !a.quiet {
        for (k, why) in r.failed.iter().take(10) {
            eprintln!("failed: {k}: {why}");
        }
        eprintln!(
            "{}: {} downloaded ({}), {} already there, {} failed (see failed.txt), {:.2} s, {:.1} MB/s",
            a.dest.display(),
            r.downloaded,
            mb(r.bytes_transferred),
            r.skipped,
            r.failed.len(),
            r.seconds,
            r.rate_mb_s
        );
    }
    Ok(u8::from(!r.failed.is_empty()))
}

/// The recipe file `convert` keeps in its output folder.
const CONVERT_RECIPE: &str = "imgprep-convert.toml";

fn convert(a: ConvertArgs) -> Result<u8> {
    let root = if imgprep::files::is_remote(&a.src) {
        a.src.clone()
    } else if a.src.is_dir() {
        std::fs::canonicalize(&a.src)?
    } else {
        anyhow::bail!("{}: not a folder", a.src.display());
    };
    let name = imgprep::files::file_name(&root).unwrap_or_else(|| "dataset".into());
    // a folder of recordings (and no images): a video source
    let video_settings = a.labels.is_some()
        || a.unit.is_some()
        || a.frame_base.is_some()
        || a.time_reference.is_some();
    let video = if imgprep::files::is_remote(&root) {
        None
    } else {
        imgprep::build::video::convert_pattern(&root)
    };
    let video = match video {
        Some(chunks) => {
            let images = imgprep::build::sources::survey(&root, &a.exts)?.images;
            if images > 0 && !video_settings {
                None
            } else {
                if a.labels.is_none() && !a.unlabelled {
                    anyhow::bail!(
                        "{}: recordings need their ranges: --labels 'labels/{{session}}.csv' (label,start,end \
                         rows) with --unit seconds|milliseconds|frames, or --unlabelled for every frame \
                         without a label",
                        a.src.display()
                    );
                }
                Some(imgprep::recipe::OneShotVideo {
                    chunks,
                    labels: a.labels.as_ref().map(|l| {
                        // relative to where the command runs, as every path it takes
                        let p = std::path::Path::new(l);
                        if p.is_absolute() {
                            l.clone()
                        } else {
                            std::env::current_dir()
                                .map(|d| d.join(p).to_string_lossy().into_owned())
                                .unwrap_or_else(|_| l.clone())
                        }
                    }),
                    unit: a.unit.clone(),
                    frame_base: a.frame_base,
                    time_reference: a.time_reference.clone(),
                })
            }
        }
        None if video_settings => anyhow::bail!(
            "{}: --labels, --unit, --frame-base and --time-reference are for a folder of recordings \
             ({}); none found",
            a.src.display(),
            imgprep::build::video::VIDEO_EXTS.join(", ")
        ),
        None => None,
    };
    let (tinyimagenet, notes) = if video.is_some() {
        (false, Vec::new())
    } else {
        imgprep::build::sources::convert_layout(
            &root,
            &a.exts,
            a.unlabelled,
            "pass --unlabelled to build an unlabelled set",
        )?
    };
    if tinyimagenet && (a.validation > 0.0 || a.test > 0.0 || a.train != 1.0) {
        anyhow::bail!(
            "{}: a TinyImageNet-like tree has its own train/val/test splits; drop --train/--validation/--test, \
             or convert its train/ folder alone to split that by ratios",
            a.src.display()
        );
    }
    if !a.quiet && !a.print_recipe {
        for n in &notes {
            eprintln!("note: {n}");
        }
    }
    let one = imgprep::recipe::OneShot {
        tinyimagenet,
        unlabelled: a.unlabelled,
        name,
        root,
        exts: a.exts.clone(),
        seed: a.seed,
        on_error: if a.fail_on_error {
            imgprep::recipe::OnError::Fail
        } else {
            imgprep::recipe::OnError::Skip
        },
        split: (a.train, a.validation, a.test),
        resize: a.resize.clone(),
        center_crop: a.center_crop,
        color: a.color.clone(),
        color_policy: a.color_policy.clone(),
        encoding: a.encoding.clone(),
        quality: a.quality,
        outputs: a.to.clone(),
        pack_label: a.pack_label,
        tf_preset: a.preset.clone(),
        tf_compression: a.compression.clone(),
        shard_records: a.shard_records,
        shard_mib: a.shard_mib,
        video,
    };
    let text = one.to_toml().map_err(|e| anyhow::anyhow!("{e}"))?;
    if a.print_recipe {
        write_out(format_args!("{text}"));
        return Ok(0);
    }
    let (out, remote_out) = out_target(&a.out)?;
    // the recipe is kept in OUT by the build itself (under its lock, listed
    // in the manifest, sent along by push)
    let path = out.join(CONVERT_RECIPE);
    let recipe = imgprep::recipe::from_text(&text, &path)?;
    let opts = imgprep::build::BuildOptions {
        out: out.clone(),
        threads: threads(a.num_thread),
        shard: None,
        merge_from: Vec::new(),
        cache_dir: a.cache_dir.clone(),
        force: a.force,
        extra_files: vec![(CONVERT_RECIPE.to_string(), text.clone().into_bytes())],
        drop_cache: false,
    };
    let progress = Progress::new(a.quiet || a.json).silent(a.quiet);
    let mut s = imgprep::build::build_loaded(&recipe, &opts, &progress)?;
    if let Some(uri) = &remote_out {
        s.out = uri.to_string().into();
    }
    let code = report_build(&s, a.json, a.quiet)?;
    match remote_out {
        Some(uri) => send_out(&out, &uri, a.json, a.quiet, code),
        None => Ok(code),
    }
}

fn build(a: BuildArgs) -> Result<u8> {
    let out = a.out.clone().unwrap_or_else(|| {
        imgprep::files::join(
            &imgprep::files::parent(&a.recipe),
            std::path::Path::new("out"),
        )
    });
    let (local_out, remote_out) = out_target(&out)?;
    let opts = imgprep::build::BuildOptions {
        out: local_out.clone(),
        threads: threads(a.num_thread),
        shard: a.shard.as_deref().map(parse_shard).transpose()?,
        merge_from: a.merge_from,
        cache_dir: a.cache_dir,
        force: a.force,
        extra_files: Vec::new(),
        drop_cache: a.drop_cache,
    };
    let progress = Progress::new(a.quiet || a.json).silent(a.quiet);
    let mut s = imgprep::build::build(&a.recipe, &opts, &progress)?;
    if let Some(uri) = &remote_out {
        s.out = uri.to_string().into();
    }
    let code = report_build(&s, a.json, a.quiet)?;
    match remote_out {
        Some(uri) => send_out(&local_out, &uri, a.json, a.quiet, code),
        None => Ok(code),
    }
}

/// Where to build for OUT: OUT itself, or for an object-store OUT a local
/// staging folder (kept, so re-runs are incremental) and the URI to push it to.
fn out_target(
    out: &std::path::Path,
) -> Result<(std::path::PathBuf, Option<imgprep::storage::Uri>)> {
    if !imgprep::files::is_remote(out) {
        return Ok((out.to_path_buf(), None));
    }
    let uri =
        imgprep::storage::Uri::parse(&out.to_string_lossy()).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((imgprep::storage::transfer::staging_dir(&uri)?, Some(uri)))
}

/// Pushes a staged build output to its object-store OUT with the same
/// relative paths; exit code 1 when anything failed, else `code`.
fn send_out(
    local_out: &std::path::Path,
    uri: &imgprep::storage::Uri,
    json: bool,
    quiet: bool,
    code: u8,
) -> Result<u8> {
    use imgprep::storage::transfer::{push, Layout, PushOptions};
    let o = PushOptions {
        layout: Layout::Mirror,
        dry_run: false,
        force: false,
        part_size: imgprep::checksum::ETAG_PART_SIZE,
        concurrency: 8,
    };
    let r = push(
        local_out,
        uri,
        &o,
        &Progress::new(quiet || json).silent(quiet).in_bytes(),
    )?;
    if !quiet && !json {
        eprintln!(
            "{uri}: {} uploaded ({}), {} unchanged, {} failed, {:.2} s",
            r.uploaded,
            mb(r.bytes_transferred),
            r.skipped,
            r.failed.len(),
            r.seconds
        );
    }
    for (k, why) in &r.failed {
        eprintln!("failed: {k}: {why}");
    }
    Ok(if r.failed.is_empty() {
        code
    } else {
        exit::PROBLEMS
    })
}

/// Prints a build's summary: JSON on stdout, or lines on stderr.
fn report_build(s: &imgprep::build::BuildSummary, json: bool, quiet: bool) -> Result<u8> {
    if json {
        outln!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(0);
    }
    if quiet {
        return Ok(0);
    }
    let m = &s.manifest;
    if s.up_to_date {
        eprintln!("{}: up to date ({:.2} s)", s.out.display(), s.seconds);
        return Ok(0);
    }
    for (vname, v) in &m.variants {
        for (split, c) in &v.splits {
            let classes: Vec<String> = c
                .per_class
                .iter()
                .map(|(k, n)| format!("{k}={n}"))
                .collect();
            let shown = if classes.len() > 8 {
                format!("{} classes", classes.len())
            } else {
                classes.join(" ")
            };
            let groups = if c.groups > 0 {
                format!(", {} groups", c.groups)
            } else {
                String::new()
            };
            eprintln!("{vname}/{split}: {} items{groups} ({shown})", c.items);
        }
    }
    let ratios: Vec<String> = m
        .split_ratios
        .iter()
        .map(|(k, r)| match r.requested {
            Some(want) => format!(
                "{k} {:.1} % (asked {:.1} %)",
                r.achieved * 100.0,
                want * 100.0
            ),
            None => format!("{k} {:.1} %", r.achieved * 100.0),
        })
        .collect();
    eprintln!(
        "{}: {} classes, split {} ({}), {} processed, {} from cache, {} skipped, {} files, {:.2} s",
        s.out.display(),
        m.num_classes,
        m.split_method,
        ratios.join(", "),
        s.processed,
        s.cached,
        m.skipped.len(),
        m.files.len(),
        s.seconds
    );
    if !m.non_rgb_sources.is_empty() {
        let kinds: Vec<String> = m
            .non_rgb_sources
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        eprintln!(
            "non-RGB sources included: {} (converted wherever pixels are decoded or re-encoded; color_policy = \"skip\" leaves them out)",
            kinds.join(" ")
        );
    }
    Ok(0)
}

fn init(a: InitArgs) -> Result<u8> {
    if a.output.exists() && !a.force {
        anyhow::bail!("{} exists (use --force to overwrite)", a.output.display());
    }
    let remote = imgprep::files::is_remote(&a.dir);
    if !remote && !a.dir.is_dir() {
        anyhow::bail!("{}: not a folder", a.dir.display());
    }
    let exts: Vec<String> = [".jpg", ".jpeg", ".png"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (tinyimagenet, notes) = imgprep::build::sources::convert_layout(
        &a.dir,
        &exts,
        false,
        "for an unlabelled set write a recipe with [labels] unlabelled = true",
    )?;
    for n in &notes {
        eprintln!("note: {n}");
    }
    let survey = imgprep::build::sources::survey(&a.dir, &exts)?;
    let recipe_dir = a
        .output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let root = if remote {
        a.dir.to_string_lossy().into_owned()
    } else {
        pathdiff(&a.dir, recipe_dir)
    };
    let name = imgprep::files::file_name(&a.dir).unwrap_or_else(|| "dataset".into());
    let classes = if tinyimagenet {
        std::fs::read_to_string(a.dir.join("wnids.txt"))
            .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
            .unwrap_or(0)
    } else {
        survey.classes.len()
    };
    let text = imgprep::recipe::starter(&name, &root, survey.images, classes, tinyimagenet);
    std::fs::write(&a.output, text)?;
    eprintln!(
        "wrote {} ({} images in {} classes under {}); build it with: imgprep build {}",
        a.output.display(),
        survey.images,
        classes,
        a.dir.display(),
        a.output.display()
    );
    Ok(0)
}

/// `dir` relative to `base` when both are relative or both absolute; else absolute.
fn pathdiff(dir: &std::path::Path, base: &std::path::Path) -> String {
    let abs = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (d, b) = (abs(dir), abs(base));
    let common = d
        .components()
        .zip(b.components())
        .take_while(|(x, y)| x == y)
        .count();
    let mut rel = std::path::PathBuf::new();
    for _ in b.components().skip(common) {
        rel.push("..");
    }
    for c in d.components().skip(common) {
        rel.push(c);
    }
    if rel.as_os_str().is_empty() {
        ".".into()
    } else {
        rel.to_string_lossy().into_owned()
    }
}
