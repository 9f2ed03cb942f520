//! Video sources in the pipeline: sessions of chunk files become frame
//! items (sources stage), and the needed frames are decoded once per chunk
//! into the item cache (prepare stage).

use super::cache::{Cache, SourceSha};
use super::catalog::Catalog;
use super::sources::Item;
use super::Prepared;
use crate::error::{Error, Result};
use crate::image::{
    ColorMode, ImageInfo, ImageSpec, Pixels, Processor, SourceColor, SourceGeometry,
};
use crate::recipe::{LoadedRecipe, SourceSpec};
use crate::video::ranges::{self, Outside, Range, Sampling, SessionFrames, Unit};
use crate::video::{Decoder, FrameLayout, FrameShape, FrameTable, TimeReference};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A needed frame item: (item, chunk frame number, source size and time).
type NeededFrame = (usize, u32, (u64, i128));

/// Which frame of which chunk an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRef {
    /// Index into [`VideoSet::chunks`].
    pub chunk: u32,
    /// The chunk's frame number (0-based, presentation order).
    pub index: u32,
}

/// One chunk file of a session, with its frame table.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub path: PathBuf,
    pub session: String,
    /// The file name without extension (a part of its frames' names).
    pub name: String,
    pub table: FrameTable,
    /// The session frame number of the chunk's frame 0.
    pub first_frame: u64,
    /// The session time of the chunk's frame 0, in seconds.
    pub offset: f64,
    /// How far the file runs past its video's end (audio longer than video),
    /// in seconds; shifts later chunks under `time_reference = "concat"`.
    pub tail_gap: f64,
}

impl Chunk {
    pub fn session_time(&self, i: usize) -> f64 {
        self.offset + self.table.time(i)
    }
}

/// Everything the video sources found, for the prepare stage and the manifest.
#[derive(Clone, Default)]
pub struct VideoSet {
    pub decoder: Option<Arc<dyn Decoder>>,
    pub chunks: Vec<Chunk>,
    /// Per source: the rules that applied, for the manifest.
    pub rules: Vec<serde_json::Value>,
    /// Problems worth a word that did not stop the build.
    pub warnings: Vec<String>,
    /// The range files read (inputs: the output must not hold them).
    pub label_files: Vec<PathBuf>,
}

impl std::fmt::Debug for VideoSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoSet")
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

impl VideoSet {
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }
}

/// A chunk pattern as a regex over `/`-separated paths relative to its
/// literal base folder; the session name is the `{name}` capture.
struct Pattern {
    base: PathBuf,
    regex: regex::Regex,
    depth: Option<usize>,
    placeholder: Option<String>,
}

fn compile_pattern(r: &LoadedRecipe, pattern: &str) -> Result<Pattern> {
    let parts: Vec<&str> = pattern.split('/').collect();
    let wild = |p: &str| p.contains(['*', '?', '{']);
    let first = parts.iter().position(|p| wild(p)).ok_or_else(|| {
        Error::Usage(format!(
            "{}: chunks = {pattern:?} names no pattern (use `*` and a `{{name}}` part, e.g. \
             \"videos/{{subject}}/*.mp4\")",
            r.path.display()
        ))
    })?;
    let base = r.resolve(Path::new(&parts[..first].join("/")));
    let mut re = String::from("^");
    let mut placeholder = None;
    let rest = &parts[first..];
    for (k, part) in rest.iter().enumerate() {
        let last = k + 1 == rest.len();
        if *part == "**" {
            // any folders (with their slashes); at the end, anything
            re.push_str(if last { ".*" } else { "(?:[^/]+/)*" });
            continue;
        }
        // a literal extension at the end of the last part matches in any
        // case (cameras write .MP4, .MOV)
        let ext_at = part
            .rfind('.')
            .filter(|&i| last && !part[i..].contains(['*', '?', '{', '}']));
        let (part, ext) = match ext_at {
            Some(i) => (&part[..i], Some(&part[i..])),
            None => (*part, None),
        };
        let mut chars = part.chars();
        while let Some(c) = chars.next() {
            match c {
                '*' => re.push_str("[^/]*"),
                '?' => re.push_str("[^/]"),
                '{' => {
                    let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                        return Err(Error::Usage(format!(
                            "{}: chunks = {pattern:?}: `{{{name}}}` is not a name",
                            r.path.display()
                        )));
                    }
                    if placeholder.replace(name.clone()).is_some() {
                        return Err(Error::Usage(format!(
                            "{}: chunks = {pattern:?} has two `{{...}}` parts; one names the session",
                            r.path.display()
                        )));
                    }
                    re.push_str("(?P<session>[^/]+)");
                }
                c => re.push_str(&regex::escape(&c.to_string())),
            }
        }
        for c in ext.unwrap_or("").chars() {
            match (c.to_ascii_lowercase(), c.to_ascii_uppercase()) {
                (l, u) if l != u => re.push_str(&format!("[{l}{u}]")),
                _ => re.push_str(&regex::escape(&c.to_string())),
            }
        }
        if !last {
            re.push('/');
        }
    }
    re.push('$');
    let regex = regex::Regex::new(&re)
        .map_err(|e| Error::Usage(format!("{}: chunks = {pattern:?}: {e}", r.path.display())))?;
    let depth = (!rest.contains(&"**")).then_some(rest.len());
    Ok(Pattern {
        base,
        regex,
        depth,
        placeholder,
    })
}

/// What a chunk pattern found: files whose relative path matches, as
/// (relative path, full path, why it cannot be a chunk: a FIFO, a device, a
/// folder, a dangling link), and folders the walk could not enter.
#[derive(Default)]
struct Walked {
    files: Vec<(String, PathBuf, Option<String>)>,
    unreadable: Vec<(String, String)>,
}

/// The `{...}` name in a ranges file pattern that a session's name fills:
/// the chunks pattern's, or (when every file is a session of its own, and
/// the chunks pattern has none) the one the labels pattern has.
fn labels_placeholder<'a>(pattern: &'a Pattern, labels: &'a str) -> &'a str {
    if let Some(p) = pattern.placeholder.as_deref() {
        return p;
    }
    labels
        .split_once('{')
        .and_then(|(_, rest)| rest.split_once('}'))
        .map(|(name, _)| name)
        .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_alphanumeric() || c == '_'))
        .unwrap_or("name")
}

/// The ranges files that `labels` (a path with a `{name}` part in its file
/// name) would read for sessions not in `sessions`: (the pattern, the
/// session names). `None` when the pattern's folder cannot be listed.
fn ranges_files_without_sessions(
    r: &LoadedRecipe,
    labels: &str,
    name: &str,
    sessions: &BTreeMap<String, Vec<(String, PathBuf)>>,
) -> Option<(String, Vec<String>)> {
    let (dir, file) = labels.rsplit_once('/').unwrap_or((".", labels));
    let (pre, post) = file.split_once(&format!("{{{name}}}"))?;
    if dir.contains('{') || post.contains('{') {
        return None;
    }
    let (names, _) = crate::files::list_files(&r.resolve(Path::new(dir))).ok()?;
    let ids = names
        .iter()
        .filter_map(|f| f.strip_prefix(pre)?.strip_suffix(post))
        .filter(|id| !id.is_empty() && !sessions.contains_key(*id))
        .map(String::from)
        .collect();
    Some((r.resolve(Path::new(labels)).display().to_string(), ids))
}

/// Folders deeper than this under a pattern's base are not entered.
const MAX_DEPTH: usize = 32;

fn walk(p: &Pattern) -> Result<Walked> {
    if crate::files::is_remote(&p.base) {
        // objects: one listing of the base prefix
        let base = p.base.to_string_lossy();
        let listed = crate::files::list_remote(&base).map_err(Error::io(&p.base))?;
        return Ok(Walked {
            files: listed
                .into_iter()
                .filter(|(_, rel)| p.regex.is_match(rel))
                .map(|(uri, rel)| (rel, PathBuf::from(uri), None))
                .collect(),
            unreadable: Vec::new(),
        });
    }
    let mut out = Walked::default();
    let mut stack = vec![(p.base.clone(), String::new(), 0usize)];
    while let Some((dir, rel, depth)) = stack.pop() {
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if depth == 0 => return Err(Error::io(&dir)(e)),
            Err(e) => {
                out.unreadable
                    .push((rel, format!("folder cannot be read: {e}")));
                continue;
            }
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let r = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let ft = match std::fs::metadata(e.path()) {
                Ok(m) => m.file_type(),
                Err(err) => {
                    if p.regex.is_match(&r) {
                        let why = format!("cannot be read: {err}");
                        out.files.push((r, e.path(), Some(why)));
                    }
                    continue;
                }
            };
            let matched = p.regex.is_match(&r);
            if ft.is_dir() {
                if matched {
                    out.files.push((
                        r.clone(),
                        e.path(),
                        Some("is a folder, not a video file".into()),
                    ));
                }
                if p.depth.is_none_or(|d| depth + 1 < d) {
                    if depth + 1 < MAX_DEPTH {
                        stack.push((e.path(), r, depth + 1));
                    } else {
                        out.unreadable.push((
                            r,
                            format!("folder more than {MAX_DEPTH} levels deep, not searched"),
                        ));
                    }
                }
            } else if matched {
                let why = (!ft.is_file())
                    .then(|| format!("is {}, not a video file", crate::files::kind_of(&ft)));
                out.files.push((r, e.path(), why));
            }
        }
    }
    Ok(out)
}

/// The literal folder a chunk pattern starts in, and the labels file (or,
/// when a folder of its path names the session, the literal folder before
/// it), for the output-overlap check. Labels files named per session in one
/// folder are checked one by one once read (`VideoSet::label_files`): the
/// folder beside them (the recipe's, often) may hold the output.
pub fn input_paths(r: &LoadedRecipe, chunks: &str, labels: Option<&str>) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(p) = compile_pattern(r, chunks) {
        v.push(p.base);
    }
    if let Some(l) = labels {
        let parts: Vec<&str> = l.split('/').collect();
        match parts.iter().position(|p| p.contains('{')) {
            None => v.push(r.resolve(Path::new(l))),
            Some(k) if k + 1 < parts.len() => v.push(r.resolve(Path::new(&parts[..k].join("/")))),
            Some(_) => {}
        }
    }
    v
}

/// Reads a video source: sessions, frame tables, ranges -> frame items.
pub fn read(
    r: &LoadedRecipe,
    spec: &SourceSpec,
    items: &mut Vec<Item>,
    set: &mut VideoSet,
    skips: &mut Vec<super::catalog::Skip>,
    threads: usize,
) -> Result<()> {
    let SourceSpec::Video {
        chunks,
        labels,
        labels_format,
        frame_rate,
        unit,
        frame_base,
        time_reference,
        outside,
        background_class,
        overlap,
        every,
        fps,
        max_per_range,
        pixel_aspect,
        split,
    } = spec
    else {
        unreachable!("a video source");
    };
    let at = r.path.display();
    let pattern = compile_pattern(r, chunks)?;
    // settings that only make sense together
    let label_kind: Option<&str> = match (labels.as_deref(), labels_format.as_deref()) {
        (None, Some(_)) => return Err(Error::Usage(format!("{at}: labels_format without labels"))),
        (None, None) => None,
        (Some(_), Some(f @ ("csv" | "activitynet" | "label-studio"))) => Some(f),
        (Some(_), Some(f)) => {
            return Err(Error::Usage(format!(
                "{at}: labels_format = {f:?}: csv, activitynet or label-studio"
            )))
        }
        // a JSON export: ActivityNet is an object, Label Studio a list
        (Some(l), None) if l.ends_with(".json") => None,
        (Some(_), None) => Some("csv"),
    };
    // a JSON file is one document for all sessions: read and parsed once
    let json = match (labels.as_deref(), label_kind) {
        (Some(l), None | Some("activitynet" | "label-studio")) => {
            let file = r.resolve(Path::new(l));
            Some((ranges::read_json(&file).map_err(Error::Usage)?, file))
        }
        _ => None,
    };
    let label_kind = match (&json, label_kind) {
        (Some((v, _)), None) if v.is_array() => Some("label-studio"),
        (Some(_), None) => Some("activitynet"),
        (_, k) => k,
    };
    let ls_rate = match (label_kind, frame_rate) {
        (Some("label-studio"), Some(f)) if *f > 0.0 && f.is_finite() => *f,
        (Some("label-studio"), _) => {
            return Err(Error::Usage(format!(
                "{at}: a Label Studio export counts frames as time x the project's frame rate: set \
                 frame_rate = the <Video frameRate> of the labelling project (e.g. 30)"
            )))
        }
        (_, Some(_)) => {
            return Err(Error::Usage(format!(
                "{at}: frame_rate applies to Label Studio exports only"
            )))
        }
        _ => 0.0,
    };
    let unit = match (label_kind, unit) {
        (Some("label-studio"), None) => Unit::Seconds,
        (Some("label-studio"), Some(u)) => {
            return Err(Error::Usage(format!(
                "{at}: a Label Studio export gives frame numbers at frame_rate, turned into \
                 times; unit = {u:?} cannot apply"
            )))
        }
        (Some("activitynet"), None | Some(Unit::Seconds)) => Unit::Seconds,
        (Some("activitynet"), Some(u)) => {
            return Err(Error::Usage(format!(
            "{at}: labels {:?} is ActivityNet JSON, whose segments are in seconds; unit = {u:?} \
                 cannot apply",
            labels.as_deref().unwrap_or_default()
        )))
        }
        (Some(_), None) => {
            return Err(Error::Usage(format!(
                "{at}: the video source's ranges need unit = \"seconds\", \"milliseconds\" or \
                 \"frames\": the numbers in {} could be any of them",
                labels.as_deref().unwrap_or_default()
            )))
        }
        (_, Some(u)) => *u,
        (None, None) => Unit::Seconds,
    };
    let frame_base = match (unit, frame_base) {
        (Unit::Frames, Some(b @ (0 | 1))) => *b,
        (Unit::Frames, Some(b)) => {
            return Err(Error::Usage(format!(
                "{at}: frame_base = {b}: it is 0 or 1"
            )))
        }
        (Unit::Frames, None) => {
            return Err(Error::Usage(format!(
                "{at}: unit = \"frames\" needs frame_base = 0 or 1: is a session's first frame \
                 numbered 0 (OpenCV, decord, CVAT) or 1 (ffmpeg's %06d, Label Studio)?"
            )))
        }
        (_, Some(_)) => {
            return Err(Error::Usage(format!(
                "{at}: frame_base applies to unit = \"frames\" only"
            )))
        }
        (_, None) => 0,
    };
    let background = match (outside, background_class) {
        (Outside::Background, Some(c)) if !c.trim().is_empty() => Some(c.trim().to_string()),
        (Outside::Background, _) => {
            return Err(Error::Usage(format!(
                "{at}: outside = \"background\" needs background_class = \"NAME\""
            )))
        }
        (_, Some(_)) => {
            return Err(Error::Usage(format!(
                "{at}: background_class applies to outside = \"background\" only"
            )))
        }
        _ => None,
    };
    if labels.is_none() && *outside == Outside::Background {
        return Err(Error::Usage(format!(
            "{at}: outside = \"background\" needs ranges (labels = ...): without them every frame \
             is outside and would all be one class"
        )));
    }
    if every.is_some() && fps.is_some() {
        return Err(Error::Usage(format!(
            "{at}: every and fps both choose frames; set one"
        )));
    }
    if every == &Some(0)
        || fps.is_some_and(|f| !(f > 0.0 && f.is_finite()))
        || max_per_range == &Some(0)
    {
        return Err(Error::Usage(format!(
            "{at}: every, fps and max_per_range must be above 0"
        )));
    }
    let sampling = Sampling {
        every: *every,
        fps: *fps,
        max_per_range: *max_per_range,
    };
    if set.decoder.is_none() {
        let d = crate::video::ffmpeg::Ffmpeg::find().map_err(Error::Usage)?;
        set.decoder = Some(Arc::new(d));
    }
    let decoder = set.decoder.clone().expect("set above");

    // Sessions: chunk files by session name, in natural order.
    let mut sessions: BTreeMap<String, Vec<(String, PathBuf)>> = BTreeMap::new();
    let walked = walk(&pattern)?;
    for (rel, why) in walked.unreadable {
        if r.recipe.on_error == crate::recipe::OnError::Fail {
            return Err(Error::Problem(format!(
                "{}: {why} (set on_error = \"skip\" to leave it out)",
                pattern.base.join(&rel).display()
            )));
        }
        skips.push(super::catalog::Skip {
            item: rel.clone(),
            reason: why,
            origin: Some(pattern.base.join(&rel).display().to_string()),
        });
    }
    // chunks that cannot be one: their session is left out (or the build
    // fails) as for a chunk ffmpeg cannot read
    let mut not_chunks: HashMap<PathBuf, String> = HashMap::new();
    for (rel, path, why) in walked.files {
        if let Some(why) = why {
            not_chunks.insert(path.clone(), why);
        }
        let caps = pattern.regex.captures(&rel).expect("matched");
        let session = match caps.name("session") {
            Some(m) => m.as_str().to_string(),
            // every file a session: named by its path (one folder level)
            None => super::formats::without_extension(&rel).replace('/', "-"),
        };
        sessions.entry(session).or_default().push((rel, path));
    }
    if sessions.is_empty() {
        return Err(Error::Usage(format!(
            "{at}: chunks = {chunks:?} matches no file under {}",
            pattern.base.display()
        )));
    }
    for files in sessions.values_mut() {
        files.sort_by(|a, b| crate::video::natural_cmp(&a.0, &b.0));
    }
    // ranges for sessions that have no recordings: said, not passed over
    // (a missing folder of videos would otherwise just lose its classes)
    let placeholder = labels
        .as_deref()
        .map_or("name", |l| labels_placeholder(&pattern, l));
    // one CSV for all sessions (no `{name}` in its path): each row names
    // its video, or there is one session
    let mut shared: Option<(PathBuf, BTreeMap<String, Vec<Range>>)> = None;
    let mut orphan_rows: Vec<(String, String)> = Vec::new();
    if let (Some(l), Some("csv")) = (labels.as_deref(), label_kind) {
        if !l.contains(&format!("{{{placeholder}}}")) {
            let file = r.resolve(Path::new(l));
            if !file.is_file() {
                return Err(Error::Usage(format!(
                    "{}: the ranges file is missing (labels = {l:?})",
                    file.display()
                )));
            }
            let rows = ranges::read_csv(&file, unit).map_err(Error::Usage)?;
            let mut by_session: BTreeMap<String, Vec<Range>> = BTreeMap::new();
            if rows.iter().any(|row| row.video.is_some()) {
                for row in rows {
                    let video = row
                        .video
                        .clone()
                        .expect("a video column: every row has one");
                    match session_named(&video, &sessions) {
                        Some(s) => by_session.entry(s.to_string()).or_default().push(row),
                        // one missing input per video, named at its first row
                        None if orphan_rows.iter().any(|(v, _)| *v == video) => {}
                        None => orphan_rows.push((video, row.origin)),
                    }
                }
            } else if sessions.len() > 1 {
                let mut names: Vec<String> =
                    sessions.keys().take(3).map(|s| format!("{s:?}")).collect();
                if sessions.len() > 3 {
                    names.push("...".into());
                }
                return Err(Error::Usage(format!(
                    "{}: one ranges file for {} sessions ({}), and no column says which video a \
                     row is about, so every range would label every video: add a header with a \
                     video column (video,start,end,label), or give a file per session with \
                     {{{placeholder}}} in labels",
                    file.display(),
                    sessions.len(),
                    names.join(", ")
                )));
            } else if let Some(only) = sessions.keys().next() {
                by_session.insert(only.clone(), rows);
            }
            shared = Some((file, by_session));
        }
    }
    let orphans = match (labels.as_deref(), label_kind, &json) {
        (_, Some("activitynet"), Some((v, file))) => {
            v.get("database").and_then(|d| d.as_object()).map(|db| {
                let ids = db.keys().filter(|k| !sessions.contains_key(*k));
                let at = |k: &String| format!("{}: database/{k}", file.display());
                ids.map(|k| (k.clone(), at(k))).collect()
            })
        }
        (Some(_), Some("csv"), _) if shared.is_some() => Some(orphan_rows),
        (Some(l), Some("csv"), _) => ranges_files_without_sessions(r, l, placeholder, &sessions)
            .map(|(file, ids)| {
                let at = |id: &String| file.replace(&format!("{{{placeholder}}}"), id);
                ids.iter().map(|id| (id.clone(), at(id))).collect()
            }),
        _ => None,
    };
    // ranges of a video that is not there: a missing input, which on_error
    // decides about (a warning, hidden by -q, lost its frames and classes)
    for (session, origin) in orphans.unwrap_or_default() {
        let why = format!(
            "ranges for session {session:?}, which has no recordings under chunks = {chunks:?}"
        );
        if r.recipe.on_error == crate::recipe::OnError::Fail {
            return Err(Error::Problem(format!(
                "{origin}: {why} (set on_error = \"skip\" to leave them out)"
            )));
        }
        skips.push(super::catalog::Skip {
            item: session,
            reason: why,
            origin: Some(origin),
        });
    }
    // Frame tables, several chunks at a time.
    let all: Vec<&PathBuf> = sessions
        .values()
        .flatten()
        .map(|(_, p)| p)
        .filter(|p| !not_chunks.contains_key(*p))
        .collect();
    let mut probed = probe_all(decoder.as_ref(), &all, threads).into_iter();
    let mut tables = sessions
        .values()
        .flatten()
        .map(|(_, p)| match not_chunks.get(p) {
            Some(why) => Err(why.clone()),
            None => probed.next().expect("one table per chunk probed"),
        })
        .collect::<Vec<_>>()
        .into_iter();
    let base_chunk = set.chunks.len();
    let mut rule = serde_json::json!({
        "chunks": chunks,
        "labels": labels,
        "labels_format": label_kind,
        "frame_rate": frame_rate,
        "unit": unit,
        "frame_base": frame_base,
        "time_reference": time_reference,
        "outside": outside,
        "background_class": background,
        "overlap": overlap,
        "every": every,
        "fps": fps,
        "max_per_range": max_per_range,
        "pixel_aspect": pixel_aspect,
        "frame_numbering": "per chunk from 0, presentation order (sorted pts), after the edit list; \
                            sessions number on across chunks",
        "time_rule": "time ranges hold frames with start <= t < end (half-open; a frame within 1 us \
                      of a boundary is on it); frame ranges are inclusive at both ends",
        "session_time": match time_reference {
            TimeReference::Video => "each chunk starts where the previous chunk's video ends",
            TimeReference::Concat => "each chunk starts at the sum of the previous files' durations \
                                      plus its own lead-in (ffmpeg's concat demuxer)",
        },
    });
    let mut summary = Vec::new();
    for (session, files) in &sessions {
        // a chunk that cannot be read leaves its session without a timeline
        let session_tables: Vec<std::result::Result<FrameTable, String>> =
            tables.by_ref().take(files.len()).collect();
        if let Some((k, e)) = session_tables
            .iter()
            .enumerate()
            .find_map(|(k, t)| t.as_ref().err().map(|e| (k, e)))
        {
            let (rel, path) = &files[k];
            if r.recipe.on_error == crate::recipe::OnError::Fail {
                // bad input under on_error = "fail": a problem found (exit 1)
                return Err(Error::Problem(format!(
                    "{}: {e} (set on_error = \"skip\" to leave its session out)",
                    path.display()
                )));
            }
            for (j, (rel_j, _)) in files.iter().enumerate() {
                skips.push(super::catalog::Skip {
                    item: rel_j.clone(),
                    reason: if j == k {
                        e.clone()
                    } else {
                        format!("session {session} left out: chunk {rel} cannot be read")
                    },
                    origin: Some(path.display().to_string()),
                });
            }
            continue;
        }
        let mut session_tables = session_tables.into_iter().map(|t| t.expect("checked"));
        // chunk timeline
        let mut first_frame = 0u64;
        let mut offset = 0.0f64;
        let first_chunk = set.chunks.len();
        let mut names = std::collections::HashSet::new();
        for (rel, path) in files {
            let mut table = session_tables.next().expect("one table per file");
            if table.sar != (1, 1) {
                let (w, h) = table.display_size();
                match pixel_aspect {
                    None => {
                        return Err(Error::Usage(format!(
                            "{}: its pixels are not square (sample aspect ratio {}:{}: stored \
                             {}x{}, shown {w}x{h}): set pixel_aspect = \"display\" to make frames \
                             of the shape players show, or \"stored\" to keep the stored pixels \
                             (as OpenCV reads them)",
                            path.display(),
                            table.sar.0,
                            table.sar.1,
                            table.width,
                            table.height
                        )))
                    }
                    Some(crate::video::PixelAspect::Stored) => {}
                    Some(crate::video::PixelAspect::Display) => {
                        table.stretched_from = Some((table.width, table.height));
                        (table.width, table.height) = (w, h);
                    }
                }
            }
            let name = file_stem(rel);
            if !names.insert(name.clone()) {
                return Err(Error::Usage(format!(
                    "{}: session {session:?} has two chunks named {name:?}; frame names would clash",
                    path.display()
                )));
            }
            let lead = match time_reference {
                TimeReference::Video => 0.0,
                TimeReference::Concat => table.lead_in(),
            };
            let video_len = table.video_duration();
            let tail_gap = table
                .container_duration
                .map_or(0.0, |d| d - table.lead_in() - video_len);
            let n = table.len() as u64;
            let step = match time_reference {
                TimeReference::Video => video_len,
                TimeReference::Concat => table.container_duration.ok_or_else(|| {
                    Error::Usage(format!(
                        "{}: the file does not say its duration, so time_reference = \"concat\" \
                         cannot place the next chunk",
                        path.display()
                    ))
                })?,
            };
            set.chunks.push(Chunk {
                path: path.clone(),
                session: session.clone(),
                name,
                table,
                first_frame,
                offset: offset + lead,
                tail_gap,
            });
            first_frame += n;
            offset += step;
        }
        let chunks_of = &set.chunks[first_chunk..];
        // a lead-in: the file starts before its video (audio first); in
        // "video" time the ranges count from the first frame, in a player's
        // from the file's start
        if *time_reference == TimeReference::Video {
            for c in chunks_of {
                let lead = c.table.lead_in();
                if lead > (c.table.frame_interval() / 2.0).max(0.001) {
                    set.warnings.push(format!(
                        "{}: its video starts {lead:.3} s after the file does (audio first?); with \
                         time_reference = \"video\" time 0 is its first video frame, so ranges read \
                         off a player that counts from the file's start are {lead:.3} s late: set \
                         time_reference = \"concat\" to count from the file's start",
                        c.path.display()
                    ));
                }
            }
        }
        // gaps at joins: the file runs on past its video
        for c in &chunks_of[..chunks_of.len().saturating_sub(1)] {
            let half = c.table.frame_interval() / 2.0;
            if c.tail_gap > half.max(0.001) {
                set.warnings.push(format!(
                    "{}: the file's duration runs {:.3} s past its last video frame (a longer audio \
                     track, or video timestamps that start late); \
                     {}",
                    c.path.display(),
                    c.tail_gap,
                    match time_reference {
                        TimeReference::Concat => "with time_reference = \"concat\" the next chunk starts after that gap, as in a concatenated file",
                        TimeReference::Video => "with time_reference = \"video\" the next chunk starts right after the last frame (set \"concat\" if the labels were made on a file joined by ffmpeg's concat demuxer)",
                    }
                ));
            }
        }
        // session frame times
        let times: Vec<f64> = chunks_of
            .iter()
            .flat_map(|c| (0..c.table.len()).map(move |i| c.session_time(i)))
            .collect();
        let ranges: Vec<Range> = match (labels, label_kind) {
            (None, _) => Vec::new(),
            (Some(_), Some("label-studio")) => {
                let (v, file) = json.as_ref().expect("read above");
                ranges::label_studio(v, file, session, ls_rate)
                    .map_err(Error::Usage)?
                    .ok_or_else(|| {
                        Error::Usage(format!(
                            "{}: no task shows a video named {session:?} (NAME.mp4 or HASH-NAME.mp4)",
                            file.display()
                        ))
                    })?
            }
            (Some(_), Some("activitynet")) => {
                let (v, file) = json.as_ref().expect("read above");
                ranges::activitynet(v, file, session)
                    .map_err(Error::Usage)?
                    .ok_or_else(|| {
                        Error::Usage(format!(
                            "{}: no entry for session {session:?} under \"database\"",
                            file.display()
                        ))
                    })?
            }
            (Some(_), _) if shared.is_some() => {
                let (file, by_session) = shared.as_mut().expect("checked");
                if !set.label_files.contains(file) {
                    set.label_files.push(file.clone());
                }
                by_session.remove(session).unwrap_or_default()
            }
            (Some(l), _) => {
                let name = labels_placeholder(&pattern, l);
                let file = r.resolve(Path::new(&l.replace(&format!("{{{name}}}"), session)));
                if !file.is_file() {
                    return Err(Error::Usage(format!(
                        "{}: the ranges of session {session:?} are missing (labels = {l:?})",
                        file.display()
                    )));
                }
                let ranges = ranges::read_csv(&file, unit).map_err(Error::Usage)?;
                // a file of this session's naming another video: a mix-up
                if let Some(row) = ranges.iter().find(|row| {
                    row.video.as_deref().is_some_and(|v| {
                        session_named(v, &sessions).map(String::as_str) != Some(session.as_str())
                    })
                }) {
                    return Err(Error::Usage(format!(
                        "{}: names video {:?}, but this file holds the ranges of session {session:?}",
                        row.origin,
                        row.video.as_deref().unwrap_or_default()
                    )));
                }
                set.label_files.push(file);
                ranges
            }
        };
        let outside_policy = if labels.is_none() {
            Outside::Unlabelled
        } else {
            *outside
        };
        let frames = SessionFrames {
            times: &times,
            unit,
            frame_base,
        };
        let a = ranges::assign(&ranges, &frames, outside_policy, *overlap, &sampling)
            .map_err(Error::Usage)?;
        set.warnings.extend(a.warnings.iter().cloned());
        // session frame -> (chunk, index)
        let starts: Vec<u64> = chunks_of.iter().map(|c| c.first_frame).collect();
        for &(sf, range) in &a.picks {
            let k = starts.partition_point(|&s| s <= sf as u64) - 1;
            let c = &chunks_of[k];
            let index = (sf as u64 - c.first_frame) as u32;
            let (labels, origin) = match range {
                Some(ri) => (vec![ranges[ri].label.clone()], ranges[ri].origin.clone()),
                None => (
                    background.iter().cloned().collect(),
                    format!("{} frame {index}", c.path.display()),
                ),
            };
            items.push(Item {
                // the file name alone is unique too (class-folder outputs use it)
                rel: format!("{session}/{0}/{session}_{0}_{index:06}", c.name),
                path: c.path.clone(),
                labels,
                numeric: false,
                group: Some(session.clone()),
                split: split.clone(),
                origin: origin.into(),
                annotation: None,
                frame: Some(FrameRef {
                    chunk: (first_chunk + k) as u32,
                    index,
                }),
            });
        }
        summary.push(serde_json::json!({
            "session": session,
            "chunks": chunks_of.len(),
            "frames": times.len(),
            "ranges": ranges.len(),
            "frames_in_ranges": a.in_ranges,
            "frames_picked": a.picks.len(),
            "overlaps_settled": a.overlaps_settled,
        }));
    }
    rule["sessions"] = serde_json::Value::Array(summary);
    rule["first_chunk"] = base_chunk.into();
    set.rules.push(rule);
    Ok(())
}

/// The session a ranges row's video cell names: the session's name, or a
/// path or file name of it with an extension (`a.mp4`, `clips/a.mp4` for
/// session `a`; `sub/a.mp4` for the file-per-session `sub-a`).
fn session_named<'a>(
    video: &str,
    sessions: &'a BTreeMap<String, Vec<(String, PathBuf)>>,
) -> Option<&'a String> {
    let v = video.trim().replace('\\', "/");
    let bare = super::formats::without_extension(&v).to_string();
    [
        v.clone(),
        bare.clone(),
        bare.replace('/', "-"),
        file_stem(&v),
    ]
    .into_iter()
    .find_map(|c| sessions.get_key_value(&c).map(|(k, _)| k))
}

fn file_stem(rel: &str) -> String {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    match name.rfind('.') {
        Some(d) if d > 0 => name[..d].to_string(),
        _ => name.to_string(),
    }
}

/// Frame tables of many chunks, up to `threads` (at most 8) ffprobe
/// processes at a time.
fn probe_all(
    decoder: &dyn Decoder,
    paths: &[&PathBuf],
    threads: usize,
) -> Vec<std::result::Result<FrameTable, String>> {
    let threads = threads.clamp(1, 8);
    let mut tables = Vec::with_capacity(paths.len());
    let _ = crate::execute::ordered_map(
        paths.iter(),
        threads,
        paths.len(),
        || (),
        |_, p| decoder.probe(p),
        |t| -> std::result::Result<(), ()> {
            tables.push(t);
            Ok(())
        },
    );
    tables
}

/// What decoding hands over for `spec`: crop then scale, in ffmpeg.
pub fn frame_shape(table: &FrameTable, spec: &ImageSpec) -> FrameShape {
    let map = crate::image::geometry::Mapping::new(table.width, table.height, Some(spec));
    let (cx, cy, cw, ch) = map.crop;
    let (w, h) = map.target;
    // JPEG of even size: straight from YUV planes (no colour conversion)
    let layout = match spec.encoding {
        crate::image::Encoding::Jpeg { .. } if w % 2 == 0 && h % 2 == 0 => FrameLayout::Yuvj420,
        _ => FrameLayout::Rgb24,
    };
    FrameShape {
        crop: ((cw, ch) != (table.width, table.height)).then_some((cx, cy, cw, ch)),
        width: w,
        height: h,
        layout,
    }
}

/// The item cache's key for an item (a frame's includes its number).
pub fn cache_key(
    transform_key: &str,
    set: &VideoSet,
    item: &Item,
    size: u64,
    mtime: i128,
) -> String {
    match &item.frame {
        Some(f) => Cache::key(
            &frame_transform_key(transform_key, f.index, &set.chunks[f.chunk as usize].table),
            &item.path,
            size,
            mtime,
        ),
        None => Cache::key(transform_key, &item.path, size, mtime),
    }
}

/// The transform part of a frame item's cache key (with the shape its
/// frames are stretched to, for non-square pixels shown as players do).
pub fn frame_transform_key(transform_key: &str, index: u32, table: &FrameTable) -> String {
    match table.stretched_from {
        None => format!("{transform_key}#frame{index}"),
        Some(_) => format!(
            "{transform_key}#shown{}x{}#frame{index}",
            table.width, table.height
        ),
    }
}

/// Prepare stage for frame items: per chunk, frames missing from the cache
/// are decoded in one pass and encoded into it. Chunks run in parallel
/// (`threads` at a time), one ffmpeg each.
#[allow(clippy::too_many_arguments)]
pub(super) fn prepare(
    catalog: &Catalog,
    needed: &[(usize, (u64, i128))],
    spec: &ImageSpec,
    cache: &Cache,
    shard_caches: &[Cache],
    merging: Option<&(dyn Fn(usize) -> String + Sync)>,
    transform_key: &str,
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<BTreeMap<usize, (Prepared, bool)>> {
    let set = &catalog.video;
    let decoder = set
        .decoder
        .clone()
        .ok_or_else(|| Error::Usage("frame items without a decoder".into()))?;
    if spec.max_pixels > 0 {
        for c in &set.chunks {
            let s = frame_shape(&c.table, spec);
            if s.width as u64 * s.height as u64 > spec.max_pixels {
                return Err(Error::Usage(format!(
                    "{}: frames of {}x{} are above transform.max_pixels ({})",
                    c.path.display(),
                    s.width,
                    s.height,
                    spec.max_pixels
                )));
            }
        }
    }
    // needed frames by chunk
    let mut by_chunk: BTreeMap<u32, Vec<NeededFrame>> = BTreeMap::new();
    for &(i, print) in needed {
        let f = catalog.items[i].frame.expect("frame items only");
        by_chunk
            .entry(f.chunk)
            .or_default()
            .push((i, f.index, print));
    }
    // one job per chunk, `threads` chunks (ffmpeg processes) at a time; the
    // window is every chunk, so a long chunk never holds back the next ones
    // (results are small; their order does not matter)
    let mut out = BTreeMap::new();
    let chunks = by_chunk.len();
    crate::execute::ordered_map(
        by_chunk.into_iter(),
        threads,
        chunks,
        || Processor::new().expect("libjpeg-turbo initialises"),
        |p, (chunk, frames): (u32, Vec<NeededFrame>)| {
            prepare_chunk(
                &set.chunks[chunk as usize],
                &frames,
                decoder.as_ref(),
                spec,
                cache,
                shard_caches,
                merging,
                transform_key,
                p,
                progress,
            )
        },
        |done| -> Result<()> {
            out.extend(done?);
            Ok(())
        },
    )?;
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn prepare_chunk(
    c: &Chunk,
    frames: &[NeededFrame],
    decoder: &dyn Decoder,
    spec: &ImageSpec,
    cache: &Cache,
    shard_caches: &[Cache],
    merging: Option<&(dyn Fn(usize) -> String + Sync)>,
    transform_key: &str,
    p: &mut Processor,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<(usize, (Prepared, bool))>> {
    let geometry = SourceGeometry {
        width: c.table.width,
        height: c.table.height,
        orientation: 1,
    };
    let key_of = |index: u32, (size, mtime): (u64, i128)| {
        Cache::key(
            &frame_transform_key(transform_key, index, &c.table),
            &c.path,
            size,
            mtime,
        )
    };
    let mut done = Vec::with_capacity(frames.len());
    let (size, mtime) = frames.first().map_or((0, 0), |f| f.2);
    let mut missing: Vec<(usize, u32, String)> = Vec::new();
    for &(i, index, print) in frames {
        let key = key_of(index, print);
        if let Some((info, sha, g)) = cache.info(&key) {
            done.push((i, (Prepared::Ok(info, sha, g), true)));
            continue;
        }
        let from_shard = shard_caches.iter().find_map(|sc| sc.get(&key));
        if let Some((info, sha, g, bytes)) = from_shard {
            cache
                .put(&key, &info, &sha, &g, &bytes)
                .map_err(|e| Error::Usage(format!("cache write failed: {e}")))?;
            done.push((i, (Prepared::Ok(info, sha, g), true)));
            continue;
        }
        if let Some(why) = merging {
            // a frame no shard holds: skipped for the reason its shard
            // gave (a chunk that did not decode there), or missing
            done.push((i, (Prepared::Skipped(why(i)), false)));
            continue;
        }
        missing.push((i, index, key));
    }
    progress(done.len() as u64);
    if missing.is_empty() {
        return Ok(done);
    }
    let shape = frame_shape(&c.table, spec);
    let wanted: Vec<u32> = missing.iter().map(|m| m.1).collect();
    let mut k = 0usize;
    let mut written: Vec<String> = Vec::new();
    // `frame`: its bytes in `shape.layout` (RGB, or YUV planes)
    let mut on_frame = |index: u32, frame: &[u8]| -> std::result::Result<(), String> {
        let (i, want, key) = &missing[k];
        debug_assert_eq!(*want, index);
        k += 1;
        // a frame's "source" identity: its chunk (path, size, time) and
        // number, not a hash of its pixels (that cost 6 % of a build)
        let sha: SourceSha = crate::checksum::sha256(
            format!("{}\0{size}\0{mtime}\0{index}", c.path.display()).as_bytes(),
        );
        let gray = spec.color == ColorMode::Grayscale;
        let mut bytes = Vec::new();
        let info = match (shape.layout, spec.encoding) {
            (FrameLayout::Yuvj420, crate::image::Encoding::Jpeg { quality }) => p
                .encode_yuv420(frame, shape.width, shape.height, quality, gray, &mut bytes)
                .map_err(|e| e.to_string())?,
            _ => {
                let mut px = Pixels {
                    width: shape.width,
                    height: shape.height,
                    channels: 3,
                    data: frame.to_vec(),
                };
                if gray {
                    px = crate::image::ops::to_channels(px, 1);
                }
                p.encode(px, spec.encoding, &mut bytes)
                    .map_err(|e| e.to_string())?
            }
        };
        let info = ImageInfo {
            source: SourceColor::Rgb,
            ..info
        };
        cache
            .put(key, &info, &sha, &geometry, &bytes)
            .map_err(|e| format!("cache write failed: {e}"))?;
        written.push(key.clone());
        done.push((*i, (Prepared::Ok(info, sha, geometry), false)));
        progress(1);
        Ok(())
    };
    let res = decoder.decode(&c.path, &c.table, &wanted, &shape, &mut on_frame);
    if let Err(e) = res {
        // nothing of a chunk whose frames cannot be trusted stays: its frames
        // are skipped (or stop the build, by on_error) with the reason
        for key in &written {
            cache.remove(key);
        }
        let why = format!("chunk {} of session {}: {e}", c.name, c.session);
        let mut out: Vec<(usize, (Prepared, bool))> =
            done.into_iter().filter(|(_, (_, hit))| *hit).collect();
        out.extend(
            missing
                .iter()
                .map(|(i, ..)| (*i, (Prepared::Skipped(why.clone()), false))),
        );
        return Ok(out);
    }
    Ok(done)
}

/// The frame table of every chunk, beside the manifest.
pub const FRAMES_CSV: &str = "video-frames.csv";

/// An item's video columns in `items.csv`: chunk, frame, pts, time,
/// session_frame, session_time (empty for other items).
pub fn item_columns(c: &Catalog, item: &Item) -> Vec<String> {
    let Some(f) = item.frame else {
        return vec![String::new(); 6];
    };
    let ch = &c.video.chunks[f.chunk as usize];
    let i = f.index as usize;
    vec![
        ch.name.clone(),
        f.index.to_string(),
        ch.table.pts[i].to_string(),
        format!("{:.6}", ch.table.time(i)),
        (ch.first_frame + f.index as u64).to_string(),
        format!("{:.6}", ch.session_time(i)),
    ]
}

/// Writes every presented frame of every chunk: session, chunk, frame,
/// pts, time_base, time (from the chunk's first frame), session_frame,
/// session_time.
pub fn write_frame_table(p: &Path, set: &VideoSet) -> Result<crate::checksum::FileSums> {
    let f = crate::output::AtomicFile::create(p).map_err(Error::io(p))?;
    let mut w = csv::Writer::from_writer(f);
    let err = |e: csv::Error| Error::Usage(format!("{}: {e}", p.display()));
    w.write_record([
        "session",
        "chunk",
        "frame",
        "pts",
        "time_base",
        "time",
        "session_frame",
        "session_time",
    ])
    .map_err(err)?;
    for c in &set.chunks {
        let tb = format!("{}/{}", c.table.time_base.0, c.table.time_base.1);
        for i in 0..c.table.len() {
            w.write_record([
                c.session.as_str(),
                c.name.as_str(),
                &i.to_string(),
                &c.table.pts[i].to_string(),
                &tb,
                &format!("{:.6}", c.table.time(i)),
                &(c.first_frame + i as u64).to_string(),
                &format!("{:.6}", c.session_time(i)),
            ])
            .map_err(err)?;
        }
    }
    let f = w
        .into_inner()
        .map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?;
    f.commit().map_err(Error::io(p))
}

/// The manifest's `video` section.
pub(super) fn manifest_section(
    catalog: &Catalog,
    prepared: &super::PreparedItems,
) -> serde_json::Value {
    let set = &catalog.video;
    let mut written = vec![0u64; set.chunks.len()];
    for (i, p) in prepared.iter() {
        if let (Some(f), Prepared::Ok(..)) = (catalog.items[i].frame, p) {
            written[f.chunk as usize] += 1;
        }
    }
    let chunks: Vec<serde_json::Value> = set
        .chunks
        .iter()
        .zip(&written)
        .map(|(c, n)| {
            serde_json::json!({
                "session": c.session,
                "chunk": c.name,
                "path": c.path.display().to_string(),
                "codec": c.table.codec,
                "width": c.table.width,
                "height": c.table.height,
                "rotation": c.table.rotation,
                "time_base": format!("{}/{}", c.table.time_base.0, c.table.time_base.1),
                "frames": c.table.len(),
                "first_pts": c.table.pts.first(),
                "first_session_frame": c.first_frame,
                "session_offset": c.offset,
                "video_duration": c.table.video_duration(),
                "container_duration": c.table.container_duration,
                "lead_in": c.table.lead_in(),
                "tail_gap": c.tail_gap,
                "frames_prepared": n,
            })
        })
        .collect();
    serde_json::json!({
        "decoder": set.decoder.as_ref().map(|d| d.describe()),
        "sources": set.rules,
        "chunks": chunks,
        "frame_table": FRAMES_CSV,
        "warnings": set.warnings,
    })
}

/// File extensions taken for recordings by `convert`.
pub const VIDEO_EXTS: &[&str] = &[
    "mp4", "mov", "m4v", "mkv", "avi", "webm", "mts", "m2ts", "ts", "mpg", "mpeg", "wmv", "3gp",
];

/// For `convert`: the chunk pattern of a local folder of recordings, when it
/// is one. Recordings in sub-folders make one session per sub-folder
/// (`DIR/{session}/*.EXT`); recordings directly in it are a session each
/// (`DIR/*.EXT`). EXT is the most common video extension found.
pub fn convert_pattern(dir: &Path) -> Result<Option<String>> {
    let ext_of = |p: &Path| {
        p.extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .filter(|e| VIDEO_EXTS.contains(&e.as_str()))
    };
    let mut top: BTreeMap<String, usize> = BTreeMap::new();
    let mut nested: BTreeMap<String, usize> = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(None);
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            for f in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                if let Some(x) = f.path().is_file().then(|| ext_of(&f.path())).flatten() {
                    *nested.entry(x).or_default() += 1;
                }
            }
        } else if let Some(x) = ext_of(&p) {
            *top.entry(x).or_default() += 1;
        }
    }
    let base = dir.to_string_lossy().trim_end_matches('/').to_string();
    // a folder per session (its files joined), or a file per session
    let (kinds, form): (_, fn(&str) -> String) = if !nested.is_empty() {
        (nested, |x| format!("{{session}}/*.{x}"))
    } else {
        (top, |x| format!("{{session}}.{x}"))
    };
    match kinds.len() {
        0 => Ok(None),
        1 => {
            let x = kinds.keys().next().expect("one");
            Ok(Some(format!("{base}/{}", form(x))))
        }
        _ => Err(Error::Usage(format!(
            "{base}: recordings of more than one kind ({}): convert takes one kind of file per \
             folder; write a recipe with a video source whose chunks pattern names the files",
            kinds
                .iter()
                .map(|(x, n)| format!("{n} .{x}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}
