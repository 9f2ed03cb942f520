//! `imgprep._native`: the Python module's way into the library. Thin on
//! purpose: arguments in, one library call with the GIL released, JSON or
//! plain values out. The Python side (`python/imgprep`) shapes the API.
//!
//! Long calls run on a worker thread while the calling thread waits with
//! the GIL released, waking every 100 ms to hand progress to Python and to
//! look for Ctrl-C: a `KeyboardInterrupt` asks the job to stop at its next
//! item and is raised once it has.

use imgprep::report::Reporter;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyKeyboardInterrupt};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

create_exception!(
    imgprep,
    ImgprepError,
    PyException,
    "A job stopped: the message names the file (and line) it is about."
);
create_exception!(
    imgprep,
    UsageError,
    ImgprepError,
    "A setting or recipe is wrong (the binary's exit code 2)."
);
create_exception!(
    imgprep,
    ProblemError,
    ImgprepError,
    "Bad input data met under on_error = \"fail\" (the binary's exit code 1)."
);

/// A library error as a Python exception with the same message, and the
/// file and line as attributes (`path`, `line`) where the error has them.
fn py_err(e: imgprep::Error) -> PyErr {
    let (path, line) = match &e {
        imgprep::Error::Io { path, .. } => (Some(path.clone()), None),
        imgprep::Error::Line { path, line, .. } => (Some(path.clone()), Some(*line)),
        _ => (None, None),
    };
    let msg = e.to_string();
    let err = match e {
        imgprep::Error::Usage(_) => UsageError::new_err(msg),
        imgprep::Error::Problem(_) => ProblemError::new_err(msg),
        imgprep::Error::Interrupted => return PyKeyboardInterrupt::new_err(msg),
        // a file that cannot be read, a malformed line: what the command
        // exits 2 for, as for usage errors
        imgprep::Error::Io { .. } | imgprep::Error::Line { .. } => UsageError::new_err(msg),
    };
    Python::attach(|py| {
        let v = err.value(py);
        let _ = v.setattr("path", path.map(|p| p.to_string_lossy().into_owned()));
        let _ = v.setattr("line", line);
        let _ = v.setattr("result", py.None());
    });
    err
}

/// [`py_err`] for a call on the file or folder `path`: when the file is
/// not there, the error names it in `err.path` too, as a file that cannot
/// be read does.
fn py_err_at(path: &Path) -> impl Fn(imgprep::Error) -> PyErr + '_ {
    move |e| {
        let missing = !imgprep::files::is_remote(path) && std::fs::symlink_metadata(path).is_err();
        let err = py_err(e);
        if missing {
            Python::attach(|py| {
                let v = err.value(py);
                if v.getattr("path").is_ok_and(|p| p.is_none()) {
                    let _ = v.setattr("path", path.to_string_lossy().into_owned());
                }
            });
        }
        err
    }
}

fn usage(msg: impl Into<String>) -> PyErr {
    UsageError::new_err(msg.into())
}

/// What a job reports, queued until the waiting thread hands it to Python.
enum Event {
    Begin(String, Option<u64>),
    Advance(u64),
    Warn(String),
    End,
}

#[derive(Default)]
struct Events {
    queue: Mutex<Vec<Event>>,
    cancel: AtomicBool,
}

impl Reporter for Events {
    fn begin(&self, label: &str, total: Option<u64>) {
        self.queue
            .lock()
            .unwrap()
            .push(Event::Begin(label.to_string(), total));
    }
    fn advance(&self, n: u64) {
        let mut q = self.queue.lock().unwrap();
        match q.last_mut() {
            Some(Event::Advance(m)) => *m += n,
            _ => q.push(Event::Advance(n)),
        }
    }
    fn warn(&self, message: &str) {
        self.queue
            .lock()
            .unwrap()
            .push(Event::Warn(message.to_string()));
    }
    fn end(&self) {
        self.queue.lock().unwrap().push(Event::End);
    }
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// Hands queued events to `progress` (an object with `begin(label, total)`,
/// `advance(n)`, `warn(message)` and `end()`); warnings go to Python's
/// `warnings` when there is no such object.
fn deliver(
    py: Python<'_>,
    progress: Option<&Bound<'_, PyAny>>,
    events: Vec<Event>,
) -> PyResult<()> {
    for e in events {
        match (e, progress) {
            (Event::Begin(label, total), Some(p)) => {
                p.call_method1("begin", (label, total))?;
            }
            (Event::Advance(n), Some(p)) => {
                p.call_method1("advance", (n,))?;
            }
            (Event::End, Some(p)) => {
                p.call_method0("end")?;
            }
            (Event::Warn(m), Some(p)) => {
                p.call_method1("warn", (m,))?;
            }
            (Event::Warn(m), None) => {
                let w = py.import("warnings")?;
                w.call_method1("warn", (m,))?;
            }
            (_, None) => {}
        }
    }
    Ok(())
}

/// Runs `job` on a worker thread; see the module comment.
fn run_job<T: Send>(
    py: Python<'_>,
    progress: Option<&Bound<'_, PyAny>>,
    job: impl FnOnce(&Events) -> imgprep::Result<T> + Send,
) -> PyResult<T> {
    run_job_then(py, progress, job, &py_err)
}

/// [`run_job`] on the file or folder `path` (see [`py_err_at`]).
fn run_job_at<T: Send>(
    py: Python<'_>,
    progress: Option<&Bound<'_, PyAny>>,
    path: &Path,
    job: impl FnOnce(&Events) -> imgprep::Result<T> + Send,
) -> PyResult<T> {
    run_job_then(py, progress, job, &py_err_at(path))
}

fn run_job_then<T: Send>(
    py: Python<'_>,
    progress: Option<&Bound<'_, PyAny>>,
    job: impl FnOnce(&Events) -> imgprep::Result<T> + Send,
    to_py: &dyn Fn(imgprep::Error) -> PyErr,
) -> PyResult<T> {
    let events = Events::default();
    std::thread::scope(|s| {
        let handle = s.spawn(|| job(&events));
        let mut stopped_by: Option<PyErr> = None;
        loop {
            let finished = py.detach(|| {
                for _ in 0..10 {
                    if handle.is_finished() {
                        return true;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                handle.is_finished()
            });
            let queued = std::mem::take(&mut *events.queue.lock().unwrap());
            if stopped_by.is_none() {
                // Ctrl-C, or a progress callback that raised: stop the job
                let err = py
                    .check_signals()
                    .and_then(|_| deliver(py, progress, queued))
                    .err();
                if let Some(e) = err {
                    events.cancel.store(true, Ordering::Relaxed);
                    stopped_by = Some(e);
                }
            }
            if finished {
                break;
            }
        }
        let result = handle
            .join()
            .map_err(|_| ImgprepError::new_err("internal error: the job panicked"))?;
        if let Some(e) = stopped_by {
            return Err(e);
        }
        result.map_err(to_py)
    })
}

fn json<T: serde::Serialize>(v: &T) -> PyResult<String> {
    serde_json::to_string(v).map_err(|e| ImgprepError::new_err(e.to_string()))
}

/// A recipe's TOML text: the file's, or `text` (TOML, or a JSON object,
/// which is written as TOML).
fn recipe_toml(path: &str, text: Option<&str>) -> imgprep::Result<String> {
    match text {
        None => imgprep::files::read_to_string(Path::new(path)).map_err(imgprep::Error::io(path)),
        Some(t) if t.trim_start().starts_with('{') => {
            let v: serde_json::Value = serde_json::from_str(t)
                .map_err(|e| imgprep::Error::Usage(format!("recipe: {e}")))?;
            toml::to_string(&v).map_err(|e| {
                imgprep::Error::Usage(format!(
                    "recipe: cannot be written as TOML ({e}); use no None values"
                ))
            })
        }
        Some(t) => Ok(t.to_string()),
    }
}

/// A recipe from its file, or from text standing at `path` (relative paths
/// in it resolve against its folder).
fn load_recipe(path: &str, text: Option<&str>) -> imgprep::Result<imgprep::recipe::LoadedRecipe> {
    match text {
        None => imgprep::recipe::load(Path::new(path)),
        Some(t) => {
            let toml = recipe_toml(path, text)?;
            // a dict: its mistakes named by key, not by a line of the TOML
            // text made from it
            if t.trim_start().starts_with('{') {
                if let Err((offset, message)) = imgprep::recipe::parse(&toml) {
                    let mut at = offset
                        .and_then(|o| imgprep::recipe::key_path_at(&toml, o))
                        .unwrap_or_default();
                    // a missing key is the table's, whose first key the
                    // place names
                    if message.starts_with("missing field") {
                        if let Some(cut) = at.rfind('[') {
                            at.truncate(cut);
                        }
                    }
                    return Err(imgprep::Error::Usage(format!("recipe{at}: {message}")));
                }
            }
            imgprep::recipe::from_text(&toml, Path::new(path))
        }
    }
}

/// Runs the `imgprep` command line (argv with the program name first);
/// returns its exit code.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<String>) -> u8 {
    py.detach(|| imgprep_cli::run(argv))
}

/// Checks a recipe; returns its TOML text and SHA-256.
#[pyfunction]
#[pyo3(signature = (path, text=None))]
fn recipe_info(path: &str, text: Option<&str>) -> PyResult<(String, String)> {
    let r = load_recipe(path, text).map_err(py_err)?;
    Ok((recipe_toml(path, text).map_err(py_err)?, r.hash))
}

/// Plans a recipe: JSON with the method, ratios, classes, counts, skips and
/// one row per planned item. With `outs` (the local folders a driver's
/// tasks will write into), also the checks a build makes before writing,
/// on every planned item.
#[pyfunction]
#[pyo3(signature = (path, text=None, progress=None, outs=None))]
fn plan(
    py: Python<'_>,
    path: &str,
    text: Option<&str>,
    progress: Option<&Bound<'_, PyAny>>,
    outs: Option<Vec<String>>,
) -> PyResult<String> {
    let (path, text) = (path.to_string(), text.map(str::to_string));
    let outs = paths(outs.unwrap_or_default());
    let v = run_job(py, progress, move |_| {
        let r = load_recipe(&path, text.as_deref())?;
        let outs: Vec<&Path> = outs.iter().map(PathBuf::as_path).collect();
        let p = imgprep::build::preview::preview_for(&r, &outs)?;
        let classes: Vec<&str> = p
            .catalog
            .labels
            .entries
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        Ok(serde_json::json!({
            "recipe": r.path,
            "method": format!("{:?}", p.plan.method).to_lowercase(),
            "ratios": p.plan.ratios,
            "classes": classes,
            "num_classes": p.catalog.labels.len(),
            "multi_label": p.catalog.multi_label,
            "detection": p.catalog.detection,
            "counts": p.counts(),
            "skipped": p.plan.skipped.iter().chain(&p.catalog.skipped).map(|s| serde_json::json!({
                "item": s.item, "reason": s.reason, "origin": s.origin
            })).collect::<Vec<_>>(),
            "rows": p.rows(),
        }))
    })?;
    json(&v)
}

/// The first and one-past-last position of shard `i` of `n` in a split of
/// `len` items (what `build --shard I/N` builds).
#[pyfunction]
fn shard_range(len: usize, i: i64, n: i64) -> PyResult<(usize, usize)> {
    if n <= 0 || i < 0 || i >= n {
        return Err(usage(format!("shard {i}/{n}: need 0 <= i < n")));
    }
    let r = imgprep::build::plan::shard_range(len, i as usize, n as usize);
    Ok((r.start, r.end))
}

fn paths(v: Vec<String>) -> Vec<PathBuf> {
    v.into_iter().map(PathBuf::from).collect()
}

/// Builds (or merges, with `merge_from`) a recipe; returns the summary as JSON.
#[pyfunction]
#[pyo3(signature = (path, text, out, shard=None, threads=None, cache_dir=None, force=false,
                    drop_cache=false, merge_from=Vec::new(), merge_caches=Vec::new(), progress=None))]
#[allow(clippy::too_many_arguments)]
fn build(
    py: Python<'_>,
    path: &str,
    text: Option<&str>,
    out: &str,
    shard: Option<(i64, i64)>,
    threads: Option<i64>,
    cache_dir: Option<String>,
    force: bool,
    drop_cache: bool,
    merge_from: Vec<String>,
    merge_caches: Vec<String>,
    progress: Option<&Bound<'_, PyAny>>,
) -> PyResult<String> {
    if let Some((i, n)) = shard {
        if n <= 0 || i < 0 || i >= n {
            return Err(usage(format!("shard ({i}, {n}): need 0 <= i < n")));
        }
    }
    let shard = shard.map(|(i, n)| (i as usize, n as usize));
    let opts = imgprep::build::BuildOptions {
        out: out.into(),
        threads: threads_arg(threads)?,
        shard,
        merge_from: paths(merge_from),
        merge_caches: paths(merge_caches),
        cache_dir: cache_dir.map(PathBuf::from),
        force,
        extra_files: Vec::new(),
        drop_cache,
    };
    let (path, text) = (path.to_string(), text.map(str::to_string));
    let done = run_job(py, progress, move |events| {
        let r = load_recipe(&path, text.as_deref())?;
        let quiet = imgprep::report::Collect::default();
        if opts.merge_from.is_empty() {
            imgprep::build::publish::build_to(&r, &opts, events, &quiet)
        } else {
            imgprep::build::publish::merge_to(&r, &opts, events, &quiet)
        }
    })?;
    json(&serde_json::json!({
        "summary": done,
        "lines": imgprep::build::publish::summary_lines(&done.summary),
    }))
}

fn all_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// A `threads=` argument: None or 0 for every core, else 1 or more.
fn threads_arg(t: Option<i64>) -> PyResult<usize> {
    match t {
        None | Some(0) => Ok(all_cores()),
        Some(n) if n > 0 => Ok(n as usize),
        Some(n) => Err(UsageError::new_err(format!(
            "threads = {n}: give 1 or more, or None (or 0) for every core"
        ))),
    }
}

/// `convert`: `options` is a JSON object of [`imgprep::convert::ConvertOptions`]
/// fields (missing ones take their defaults). Returns JSON with the recipe
/// text, notes and the build summary; `print_recipe` stops after the recipe.
#[pyfunction]
#[pyo3(signature = (options, out, threads=None, cache_dir=None, force=false, print_recipe=false, progress=None))]
#[allow(clippy::too_many_arguments)]
fn convert(
    py: Python<'_>,
    options: &str,
    out: &str,
    threads: Option<i64>,
    cache_dir: Option<String>,
    force: bool,
    print_recipe: bool,
    progress: Option<&Bound<'_, PyAny>>,
) -> PyResult<String> {
    let o = convert_options(options)?;
    let opts = imgprep::build::BuildOptions {
        out: out.into(),
        threads: threads_arg(threads)?,
        shard: None,
        merge_from: Vec::new(),
        merge_caches: Vec::new(),
        cache_dir: cache_dir.map(PathBuf::from),
        force,
        extra_files: Vec::new(),
        drop_cache: false,
    };
    let v = run_job(py, progress, move |events| {
        let made = imgprep::convert::make_recipe(&o)?;
        if print_recipe {
            return Ok(serde_json::json!({"recipe": made.text, "notes": made.notes}));
        }
        for n in &made.notes {
            events.warn(&format!("note: {n}"));
        }
        let quiet = imgprep::report::Collect::default();
        let done = imgprep::convert::convert(&made, &opts, events, &quiet)?;
        Ok(serde_json::json!({
            "recipe": made.text,
            "notes": made.notes,
            "lines": imgprep::build::publish::summary_lines(&done.summary),
            "result": done,
        }))
    })?;
    json(&v)
}

/// What `convert(resize=...)` takes.
const RESIZE_FORMS: &str =
    "210 (shorter edge), (224, 224) or \"224x224\" (width, height), or \"area=50176\"";

fn convert_options(text: &str) -> PyResult<imgprep::convert::ConvertOptions> {
    let v: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| usage(e.to_string()))?;
    let mut o = imgprep::convert::ConvertOptions::default();
    let bad = |k: &str, want: &str| usage(format!("convert: {k} must be {want}"));
    let s = |v: &serde_json::Value, k: &str| -> PyResult<String> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| bad(k, "a string"))
    };
    let f = |v: &serde_json::Value, k: &str| -> PyResult<f64> {
        v.as_f64().ok_or_else(|| bad(k, "a number"))
    };
    let u = |v: &serde_json::Value, k: &str| -> PyResult<u64> {
        v.as_u64().ok_or_else(|| bad(k, "a whole number >= 0"))
    };
    let b = |v: &serde_json::Value, k: &str| -> PyResult<bool> {
        v.as_bool().ok_or_else(|| bad(k, "True or False"))
    };
    let list = |v: &serde_json::Value, k: &str| -> PyResult<Vec<String>> {
        match v {
            serde_json::Value::String(x) => Ok(vec![x.clone()]),
            serde_json::Value::Array(a) => a.iter().map(|x| s(x, k)).collect(),
            _ => Err(bad(k, "a string or a list of strings")),
        }
    };
    for (k, v) in &v {
        if v.is_null() {
            continue;
        }
        match k.as_str() {
            "src" => o.src = s(v, k)?.into(),
            "to" => o.to = list(v, k)?,
            "train" => o.split.0 = f(v, k)?,
            "validation" => o.split.1 = f(v, k)?,
            "test" => o.split.2 = f(v, k)?,
            "seed" => o.seed = u(v, k)?,
            "resize" => {
                let whole = |x: &serde_json::Value| x.as_u64().filter(|&n| n > 0);
                o.resize = Some(match v {
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::String(x) => x.clone(),
                    // (width, height), as PIL's resize takes it
                    serde_json::Value::Array(a) if a.len() == 2 => {
                        match (whole(&a[0]), whole(&a[1])) {
                            (Some(w), Some(h)) => format!("{w}x{h}"),
                            _ => return Err(bad(k, RESIZE_FORMS)),
                        }
                    }
                    _ => return Err(bad(k, RESIZE_FORMS)),
                })
            }
            "center_crop" => o.center_crop = b(v, k)?,
            "color" => o.color = s(v, k)?,
            "color_policy" => o.color_policy = s(v, k)?,
            "encoding" => o.encoding = s(v, k)?,
            "quality" => o.quality = Some(u8::try_from(u(v, k)?).map_err(|_| bad(k, "1-100"))?),
            "exts" => o.exts = list(v, k)?,
            "preset" => o.preset = s(v, k)?,
            "compression" => o.compression = s(v, k)?,
            "shard_records" => o.shard_records = Some(u(v, k)? as usize),
            "shard_mib" => o.shard_mib = Some(u(v, k)?),
            "pack_label" => o.pack_label = b(v, k)?,
            "fail_on_error" => o.fail_on_error = b(v, k)?,
            "unlabelled" => o.unlabelled = b(v, k)?,
            "labels" => o.labels = Some(s(v, k)?),
            "unit" => o.unit = Some(s(v, k)?),
            "frame_base" => {
                o.frame_base = Some(u32::try_from(u(v, k)?).map_err(|_| bad(k, "0 or 1"))?)
            }
            "time_reference" => o.time_reference = Some(s(v, k)?),
            other => return Err(usage(format!("convert: unknown option {other:?}"))),
        }
    }
    Ok(o)
}

/// `verify`: a build output folder, a TFRecord file or a `.rec`; JSON report.
#[pyfunction]
#[pyo3(signature = (path, threads=None, progress=None))]
fn verify(
    py: Python<'_>,
    path: &str,
    threads: Option<i64>,
    progress: Option<&Bound<'_, PyAny>>,
) -> PyResult<String> {
    let path = PathBuf::from(path);
    let threads = threads_arg(threads)?;
    let at = path.clone();
    let v = run_job_at(py, progress, &at, move |events| {
        let quiet = imgprep::report::Collect::default();
        imgprep::verify::verify_path(&path, threads, events, &quiet)
    })?;
    json(&v)
}

/// Makes a synthetic class-folder tree (for examples and tests); returns
/// the files written.
#[pyfunction]
#[pyo3(signature = (dir, classes=3, per_class=20, width=320, height=240, seed=1, layout="classes", format="jpg"))]
#[allow(clippy::too_many_arguments)]
fn synth(
    py: Python<'_>,
    dir: &str,
    classes: i64,
    per_class: i64,
    width: i64,
    height: i64,
    seed: u64,
    layout: &str,
    format: &str,
) -> PyResult<Vec<String>> {
    let layout: imgprep::synth::Layout = layout
        .parse()
        .map_err(|e| UsageError::new_err(format!("synth: {e}")))?;
    if !matches!(format, "jpg" | "png") {
        return Err(UsageError::new_err(format!(
            "synth: format = {format:?}: give \"jpg\" or \"png\""
        )));
    }
    let count = |what: &str, v: i64, max: i64| {
        if (0..=max).contains(&v) {
            Ok(v)
        } else {
            Err(UsageError::new_err(format!(
                "synth: {what} = {v}: give 1 to {max}"
            )))
        }
    };
    let opts = imgprep::synth::SynthOptions {
        classes: count("classes", classes, 100_000)? as usize,
        per_class: count("per_class", per_class, 10_000_000)? as usize,
        width: count("width", width, 65_535)? as u32,
        height: count("height", height, 65_535)? as u32,
        seed,
        layout,
        format: format.to_string(),
        ..Default::default()
    };
    let dir = PathBuf::from(dir);
    let files = py
        .detach(|| imgprep::synth::synth_tree(&dir, &opts))
        .map_err(py_err)?;
    Ok(files
        .into_iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect())
}

/// Sends the folder `dir` to `uri` (`s3://`, `az://`, `gs://`) with the
/// same relative paths, skipping files already there; JSON report.
#[pyfunction]
#[pyo3(signature = (dir, uri, progress=None))]
fn push_dir(
    py: Python<'_>,
    dir: &str,
    uri: &str,
    progress: Option<&Bound<'_, PyAny>>,
) -> PyResult<String> {
    let dir = PathBuf::from(dir);
    let uri = imgprep::storage::Uri::parse(uri).map_err(usage)?;
    let r = run_job(py, progress, move |events| {
        // (the Spark driver's own parts prefix: what is there is its own)
        imgprep::build::publish::push_out(&dir, &uri, true, events)
    })?;
    if !r.failed.is_empty() {
        let (k, why) = &r.failed[0];
        return Err(ImgprepError::new_err(format!(
            "{} of {} uploads failed, e.g. {k}: {why}",
            r.failed.len(),
            r.failed.len() as u64 + r.uploaded
        )));
    }
    json(&r)
}

/// Refuses a local output folder a build would refuse (not empty and not
/// imgprep's, unless `force`) without taking it.
#[pyfunction]
#[pyo3(signature = (out, force=false))]
fn check_out(out: &str, force: bool) -> PyResult<()> {
    imgprep::build::outdir::check_writable(Path::new(out), force).map_err(py_err)
}

/// The text of a file or of an object (`s3://`, `az://`, `gs://`, `http(s)://`).
#[pyfunction]
fn read_text(py: Python<'_>, path: &str) -> PyResult<String> {
    let p = PathBuf::from(path);
    py.detach(|| imgprep::files::read_to_string(&p))
        .map_err(|e| py_err(imgprep::Error::Io { path: p, err: e }))
}

/// Downloads everything under the folder `uri` into the new folder `dir`;
/// returns (objects, bytes).
#[pyfunction]
#[pyo3(signature = (uri, dir, threads=8))]
fn pull_prefix(py: Python<'_>, uri: &str, dir: &str, threads: usize) -> PyResult<(u64, u64)> {
    let dir = PathBuf::from(dir);
    let uri = imgprep::storage::Uri::parse(uri).map_err(usage)?;
    run_job(py, None, move |_| {
        imgprep::storage::transfer::pull_prefix(&uri, &dir, threads)
    })
}

/// The records of a `.rec` or TFRecord file, in order, as dicts.
#[pyclass(unsendable)]
struct RecordReader {
    records: imgprep::records::Records,
}

#[pymethods]
impl RecordReader {
    #[new]
    fn new(path: &str) -> PyResult<Self> {
        Ok(RecordReader {
            records: imgprep::records::Records::open(Path::new(path))
                .map_err(py_err_at(Path::new(path)))?,
        })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(r) = self.records.next() else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        match r.map_err(py_err)? {
            imgprep::records::Record::Image {
                offset,
                id,
                labels,
                packed,
                image,
            } => {
                d.set_item("offset", offset)?;
                d.set_item("id", id)?;
                d.set_item("labels", labels)?;
                d.set_item("packed", packed)?;
                d.set_item("image", PyBytes::new(py, &image))?;
            }
            imgprep::records::Record::Example { offset, features } => {
                d.set_item("offset", offset)?;
                let f = PyDict::new(py);
                for (k, v) in features {
                    match v {
                        tfrecord_feature::Bytes(b) => {
                            let l = PyList::empty(py);
                            for x in b {
                                l.append(PyBytes::new(py, &x))?;
                            }
                            f.set_item(k, l)?;
                        }
                        tfrecord_feature::Float(x) => f.set_item(k, x)?,
                        tfrecord_feature::Int64(x) => f.set_item(k, x)?,
                    }
                }
                d.set_item("features", f)?;
            }
        }
        Ok(Some(d))
    }
}

use imgprep::records::Feature as tfrecord_feature;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ImgprepError", py.get_type::<ImgprepError>())?;
    m.add("UsageError", py.get_type::<UsageError>())?;
    m.add("ProblemError", py.get_type::<ProblemError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(recipe_info, m)?)?;
    m.add_function(wrap_pyfunction!(plan, m)?)?;
    m.add_function(wrap_pyfunction!(shard_range, m)?)?;
    m.add_function(wrap_pyfunction!(build, m)?)?;
    m.add_function(wrap_pyfunction!(convert, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(synth, m)?)?;
    m.add_function(wrap_pyfunction!(push_dir, m)?)?;
    m.add_function(wrap_pyfunction!(pull_prefix, m)?)?;
    m.add_function(wrap_pyfunction!(read_text, m)?)?;
    m.add_function(wrap_pyfunction!(check_out, m)?)?;
    m.add_class::<RecordReader>()?;
    Ok(())
}
