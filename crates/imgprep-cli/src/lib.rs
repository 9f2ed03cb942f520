//! The `imgprep` command line: flags in, library calls, messages and exit
//! codes out. The binary (`main.rs`) and the Python module both call [`run`].

/// Messages on stderr: a reader that went away (`2>&1 | head`) loses
/// them, and the command goes on to its own end (std's `eprintln!` panics
/// there, exit 101, in the middle of a build). Defined before the modules
/// so it is the one they use.
macro_rules! eprintln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

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
    BuildArgs, Cli, Command, ConvertArgs, Im2recArgs, InitArgs, InspectArgs, MergeArgs, PullArgs,
    PushArgs, SynthArgs, VerifyArgs,
};
use imgprep::im2rec::{list_prefix, pack_prefix, ListOptions, PackOptions};
use imgprep::image::{ColorMode, Encoding, ImageSpec, Resize};
use progress::Progress;

/// Exit codes: 0 ok, 1 problems found, 2 usage or setup error.
mod exit {
    pub const PROBLEMS: u8 = 1;
    pub const USAGE: u8 = 2;
}

/// Runs the command line `args` (the program name first, as in
/// `std::env::args_os`) and returns the exit code. The binary and the Python
/// module's `imgprep` command both come here.
pub fn run<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { exit::USAGE } else { 0 };
        }
    };
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
        Command::Merge(a) => merge(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("imgprep: error: {e:#}");
            match e.downcast_ref::<imgprep::Error>() {
                // bad input data under on_error = "fail" is a problem found
                Some(imgprep::Error::Problem(_)) => exit::PROBLEMS,
                Some(imgprep::Error::Interrupted) => 130,
                _ => exit::USAGE,
            }
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
    if a.list {
        let opts = ListOptions {
            prefix: a.prefix.clone(),
            root: a.root,
            exts: a.exts,
            chunks: a.chunks,
            train_ratio: a.train_ratio,
            test_ratio: a.test_ratio,
            recursive: a.recursive,
            shuffle: !a.no_shuffle,
        };
        let s = list_prefix(&opts)?;
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
    // under --strict a skip is a problem: said even with -q
    let progress = Progress::new(a.quiet || a.json).silent(a.quiet && !a.strict);
    let summaries = pack_prefix(&a.prefix, &opts, &progress)?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&summaries)?);
    } else if !a.quiet {
        for s in &summaries {
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
    if a.limit == Some(0) {
        return Ok(0);
    }
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
    use imgprep::verify::Verified;
    let progress = Progress::new(a.quiet || a.json).silent(a.quiet);
    let bytes = Progress::new(a.quiet || a.json).silent(a.quiet).in_bytes();
    let v = imgprep::verify::verify_path(&a.prefix, threads(a.num_thread), &progress, &bytes)?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(if v.ok() { 0 } else { exit::PROBLEMS });
    }
    let status = if v.ok() { "OK" } else { "FAILED" };
    match &v {
        Verified::TfRecord {
            file,
            records,
            problems,
            ..
        } => {
            for p in problems {
                eprintln!("problem: {p}");
            }
            if !a.quiet {
                eprintln!(
                    "{}: {status} ({records} records, {} problems)",
                    file.display(),
                    problems.len()
                );
            }
        }
        Verified::Dataset(r) => {
            for p in &r.problems {
                eprintln!("problem: {p}");
            }
            if !a.quiet {
                eprintln!(
                    "{}: {status} ({} files, {} records checked, {} problems)",
                    r.out.display(),
                    r.files_checked,
                    r.records_checked,
                    r.problems.len()
                );
            }
        }
        Verified::Rec(r) => {
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
                    "{}: {status} ({} records, {} images decode, .idx {}, .lst {}, {} problems)",
                    r.rec.display(),
                    r.records,
                    r.images_ok,
                    n(r.idx_entries),
                    n(r.lst_entries),
                    r.problems
                );
            }
        }
    }
    Ok(if v.ok() { 0 } else { exit::PROBLEMS })
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
    if a.quiet {
    } else if a.layout == imgprep::synth::Layout::Video {
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
    // objects of the destination's folders that are not this dataset's
    // (warned about, by name) are a problem found, as a failed upload is
    Ok(u8::from(
        !r.failed.is_empty() || !r.not_in_dataset.is_empty(),
    ))
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
        overwrite: a.overwrite,
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

fn convert(a: ConvertArgs) -> Result<u8> {
    let o = imgprep::convert::ConvertOptions {
        src: a.src.clone(),
        to: a.to.clone(),
        split: (a.train, a.validation, a.test),
        seed: a.seed,
        resize: a.resize.clone(),
        center_crop: a.center_crop,
        color: a.color.clone(),
        color_policy: a.color_policy.clone(),
        encoding: a.encoding.clone(),
        quality: a.quality,
        exts: a.exts.clone(),
        preset: a.preset.clone(),
        compression: a.compression.clone(),
        shard_records: a.shard_records,
        shard_mib: a.shard_mib,
        pack_label: a.pack_label,
        fail_on_error: a.fail_on_error,
        unlabelled: a.unlabelled,
        labels: a.labels.clone(),
        unit: a.unit.clone(),
        frame_base: a.frame_base,
        time_reference: a.time_reference.clone(),
    };
    let made = imgprep::convert::make_recipe(&o)?;
    if a.print_recipe {
        write_out(format_args!("{}", made.text));
        return Ok(0);
    }
    if !a.quiet {
        for n in &made.notes {
            eprintln!("note: {n}");
        }
    }
    let opts = imgprep::build::BuildOptions {
        out: a.out.clone(),
        threads: threads(a.num_thread),
        shard: None,
        merge_from: Vec::new(),
        merge_caches: Vec::new(),
        cache_dir: a.cache_dir.clone(),
        force: a.force,
        extra_files: Vec::new(),
        drop_cache: false,
    };
    let progress = Progress::new(a.quiet || a.json).silent(a.quiet);
    let push_progress = Progress::new(a.quiet || a.json).silent(a.quiet).in_bytes();
    let done = imgprep::convert::convert(&made, &opts, &progress, &push_progress)?;
    report(&done, a.json, a.quiet)
}

fn build(a: BuildArgs) -> Result<u8> {
    let out = a.out.clone().unwrap_or_else(|| {
        imgprep::files::join(
            &imgprep::files::parent(&a.recipe),
            std::path::Path::new("out"),
        )
    });
    let opts = imgprep::build::BuildOptions {
        out,
        threads: threads(a.num_thread),
        shard: a.shard.as_deref().map(parse_shard).transpose()?,
        merge_from: Vec::new(),
        merge_caches: Vec::new(),
        cache_dir: a.cache_dir,
        force: a.force,
        extra_files: Vec::new(),
        drop_cache: a.drop_cache,
    };
    let recipe = imgprep::recipe::load(&a.recipe)?;
    let progress = Progress::new(a.quiet || a.json).silent(a.quiet);
    let push_progress = Progress::new(a.quiet || a.json).silent(a.quiet).in_bytes();
    let done = imgprep::build::publish::build_to(&recipe, &opts, &progress, &push_progress)?;
    report(&done, a.json, a.quiet)
}

fn merge(a: MergeArgs) -> Result<u8> {
    let opts = imgprep::build::BuildOptions {
        out: a.out,
        threads: threads(a.num_thread),
        shard: None,
        merge_from: a.shards,
        merge_caches: a.shard_cache,
        cache_dir: a.cache_dir,
        force: a.force,
        extra_files: Vec::new(),
        drop_cache: false,
    };
    let recipe = imgprep::recipe::load(&a.recipe)?;
    let progress = Progress::new(a.quiet || a.json).silent(a.quiet);
    let push_progress = Progress::new(a.quiet || a.json).silent(a.quiet).in_bytes();
    let done = imgprep::build::publish::merge_to(&recipe, &opts, &progress, &push_progress)?;
    report(&done, a.json, a.quiet)
}

/// Prints a build's summary (JSON on stdout, or lines on stderr) and what a
/// push to object storage did; exit code 1 when an upload failed or the
/// destination's folders hold objects that are not this dataset's.
fn report(done: &imgprep::build::publish::Published, json: bool, quiet: bool) -> Result<u8> {
    if json {
        outln!("{}", serde_json::to_string_pretty(&done.summary)?);
    } else if !quiet {
        for line in imgprep::build::publish::summary_lines(&done.summary) {
            eprintln!("{line}");
        }
    }
    if let Some(r) = &done.pushed {
        if !quiet && !json {
            let uri = imgprep::storage::Uri::parse(&done.summary.out.to_string_lossy())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            eprintln!("{}", imgprep::build::publish::push_line(&uri, r));
        }
        for (k, why) in &r.failed {
            eprintln!("failed: {k}: {why}");
        }
    }
    let foreign = done
        .pushed
        .as_ref()
        .is_some_and(|r| !r.not_in_dataset.is_empty());
    Ok(if done.complete() && !foreign {
        0
    } else {
        exit::PROBLEMS
    })
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
    for n in notes.iter().filter(|_| !a.quiet) {
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
    imgprep::output::write_atomic(&a.output, text.as_bytes())
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.output.display()))?;
    if !a.quiet {
        // (files by their names: whether each decodes is the build's to say)
        eprintln!(
            "wrote {} ({} image files in {} classes under {}); build it with: imgprep build {}",
            a.output.display(),
            survey.images,
            classes,
            a.dir.display(),
            a.output.display()
        );
    }
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
