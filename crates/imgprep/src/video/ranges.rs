//! Labels from ranges: which frames of a session a `label,start,end` range
//! (or an ActivityNet segment) covers, and which of them are kept.
//!
//! Rules (also written to the manifest):
//! - times (seconds, milliseconds) select frames whose session time `t`
//!   has `start <= t < end` (half-open: a frame at a boundary between two
//!   consecutive ranges belongs to the later one only; a frame within a
//!   microsecond of a boundary is on it, whatever the float rounding);
//! - frame numbers are inclusive at both ends and counted from the
//!   declared base (0 or 1), over the session's presented frames.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// What the range numbers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Seconds,
    Milliseconds,
    Frames,
}

/// One labelled range as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    pub label: String,
    pub start: f64,
    pub end: f64,
    /// `file:line` (or `file: database/ID/annotations/K`).
    pub origin: String,
    /// The video a row of a CSV with a video column names (one file for
    /// several sessions).
    pub video: Option<String>,
}

/// Frames in no range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outside {
    /// Not written (and not even converted).
    #[default]
    Drop,
    /// Written without a label.
    Unlabelled,
    /// Written with the `background_class` label.
    Background,
}

/// A frame in two ranges with different labels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Overlap {
    /// Stop, naming both ranges.
    #[default]
    Error,
    /// The range that starts first (earlier line on a tie) keeps the frame.
    First,
    /// The range that starts last (later line on a tie) takes the frame.
    Last,
}

/// Which frames of a range to keep.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sampling {
    /// Every k-th frame, from the range's first.
    pub every: Option<u32>,
    /// About this many frames per second: the nearest frame to each point
    /// of a time grid starting at the range's first frame (never one frame
    /// twice).
    pub fps: Option<f64>,
    /// At most this many per range, evenly spread.
    pub max_per_range: Option<usize>,
}

/// A clock time `[H:]MM:SS[.fff]` (as video players and many annotation
/// tools show times) in seconds; `None` for anything else.
fn clock_seconds(c: &str) -> Option<f64> {
    let parts: Vec<&str> = c.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return None;
    }
    let whole = |p: &str| {
        (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse::<u64>().ok())
            .flatten()
    };
    let (last, rest) = parts.split_last()?;
    // seconds: digits, optionally a point and more digits
    let (int, frac) = last.split_once('.').unwrap_or((last, "0"));
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !digits(frac) {
        return None;
    }
    let secs: f64 = last.parse().ok().filter(|s: &f64| *s < 60.0)?;
    let mut total = 0u64;
    for (k, p) in rest.iter().enumerate() {
        let v = whole(p)?;
        // minutes below 60 when hours come first
        if rest.len() == 2 && k == 1 && v >= 60 {
            return None;
        }
        total = total.checked_mul(60)?.checked_add(v)?;
    }
    Some(total as f64 * 60.0 + secs)
}

/// The names a header may give the column naming each row's video (a
/// ranges file for several sessions).
const VIDEO_COLUMN: [&str; 9] = [
    "video",
    "video_id",
    "video_name",
    "session",
    "file",
    "filename",
    "file_name",
    "clip",
    "recording",
];

/// Reads `label,start,end` rows (a header row is optional; with one,
/// columns are found by name, a video column among them when there is one,
/// and others are ignored; without one, a row of more than three cells is
/// refused: a fourth would be lost). Times are numbers in `unit`, or clock
/// times (`00:01:02.5`) with a time unit.
pub fn read_csv(path: &Path, unit: Unit) -> Result<Vec<Range>, String> {
    let text = crate::files::read_text_capped(path, 256 << 20)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let delim = if path.extension().is_some_and(|e| e == "tsv") {
        b'\t'
    } else {
        b','
    };
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delim)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    let mut cols = (0usize, 1usize, 2usize);
    // cells a row may have: as many as the header names, or three
    let mut header: Option<usize> = None;
    let mut video_col: Option<usize> = None;
    for (k, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| format!("{}: {e}", path.display()))?;
        let line = rec.position().map_or(k as u64 + 1, |p| p.line());
        let at = format!("{}:{line}", path.display());
        let cell = |i: usize| rec.get(i).unwrap_or("").trim();
        if rec.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        if k == 0 && cell(1).parse::<f64>().is_err() && clock_seconds(cell(1)).is_none() {
            // a header: find the columns by name
            let find = |names: &[&str]| {
                rec.iter()
                    .position(|c| names.contains(&c.trim().to_lowercase().as_str()))
            };
            let (Some(l), Some(s), Some(e)) = (
                find(&["label", "class", "procedure", "name"]),
                find(&["start", "begin", "from", "start_time", "start_frame"]),
                find(&["end", "stop", "to", "end_time", "end_frame", "stop_frame"]),
            ) else {
                return Err(format!(
                    "{at}: a header row needs columns label, start and end (found: {})",
                    rec.iter().collect::<Vec<_>>().join(", ")
                ));
            };
            cols = (l, s, e);
            header = Some(rec.len());
            video_col = find(&VIDEO_COLUMN);
            continue;
        }
        // a cell past the columns would be lost (an unquoted 00:00:01,500
        // shifts the rest of its row)
        if let Some(extra) = (header.unwrap_or(3)..rec.len()).find(|&i| !cell(i).is_empty()) {
            let (columns, fix) = match header {
                None => (
                    "without a header row a ranges row is label,start,end".to_string(),
                    "add a header row naming the columns (label, start, end, and video when one \
                     file holds several videos' ranges)",
                ),
                Some(n) => (
                    format!("the header names {n} columns"),
                    "name its column in the header",
                ),
            };
            return Err(format!(
                "{at}: {} cells, and {columns}: cell {} ({:?}) would be lost; {fix}, and write a \
                 time with a dot (00:00:01.500)",
                rec.len(),
                extra + 1,
                cell(extra)
            ));
        }
        let need = cols.0.max(cols.1).max(cols.2) + 1;
        if rec.len() < need {
            return Err(format!(
                "{at}: {} column(s), {need} needed (label, start, end)",
                rec.len()
            ));
        }
        let label = cell(cols.0);
        if label.is_empty() {
            return Err(format!("{at}: the label is empty"));
        }
        let video = match video_col.map(cell) {
            Some("") => return Err(format!("{at}: the video is empty")),
            v => v.map(str::to_string),
        };
        let num = |i: usize, what: &str| -> Result<f64, String> {
            let c = cell(i);
            if let Some(v) = c.parse::<f64>().ok().filter(|v| v.is_finite()) {
                return Ok(v);
            }
            match (clock_seconds(c), unit) {
                (Some(s), Unit::Seconds) => Ok(s),
                (Some(s), Unit::Milliseconds) => Ok(s * 1000.0),
                (Some(_), Unit::Frames) => Err(format!(
                    "{at}: {what} {c:?} is a clock time, but unit = \"frames\" (use unit = \"seconds\")"
                )),
                (None, _) => Err(format!(
                    "{at}: {what} {c:?} is not a number (or a clock time such as 00:01:02.5)"
                )),
            }
        };
        out.push(Range {
            label: label.to_string(),
            start: num(cols.1, "start")?,
            end: num(cols.2, "end")?,
            origin: at,
            video,
        });
    }
    Ok(out)
}

/// ActivityNet-style JSON
/// (`{"database": {ID: {"annotations": [{"segment": [s, e], "label": L}]}}}`,
/// seconds). `None` when the file does not list the id.
/// A JSON ranges file (ActivityNet, Label Studio), read once for all sessions.
pub fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    let text = crate::files::read_text_capped(path, 1 << 30)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The segments of video `id` in an ActivityNet document `v` (read from
/// `path`, named in messages); `None` when it does not list the id.
pub fn activitynet(
    v: &serde_json::Value,
    path: &Path,
    id: &str,
) -> Result<Option<Vec<Range>>, String> {
    let db = v
        .get("database")
        .and_then(|d| d.as_object())
        .ok_or_else(|| {
            format!(
                "{}: no \"database\" object (ActivityNet layout)",
                path.display()
            )
        })?;
    let Some(video) = db.get(id) else {
        return Ok(None);
    };
    let anns = video
        .get("annotations")
        .and_then(|a| a.as_array())
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut out = Vec::new();
    for (k, a) in anns.iter().enumerate() {
        let at = format!("{}: database/{id}/annotations/{k}", path.display());
        let seg = a
            .get("segment")
            .and_then(|s| s.as_array())
            .filter(|s| s.len() == 2)
            .ok_or_else(|| format!("{at}: \"segment\" must be [start, end]"))?;
        let n = |x: &serde_json::Value| {
            x.as_f64()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("{at}: segment value {x} is not a number"))
        };
        let label = a
            .get("label")
            .and_then(|l| l.as_str())
            .filter(|l| !l.trim().is_empty())
            .ok_or_else(|| format!("{at}: no \"label\""))?;
        out.push(Range {
            label: label.trim().to_string(),
            start: n(&seg[0])?,
            end: n(&seg[1])?,
            origin: at,
            video: None,
        });
    }
    Ok(Some(out))
}

/// The session's frames as the ranges see them.
pub struct SessionFrames<'a> {
    /// Session time of each presented frame, increasing.
    pub times: &'a [f64],
    pub unit: Unit,
    /// With `Unit::Frames`: the number of the first frame (0 or 1).
    pub frame_base: u32,
}

/// What a session's ranges decided.
#[derive(Debug, Default, PartialEq)]
pub struct Assignment {
    /// (session frame, range index or `None` for an outside frame kept),
    /// in frame order: the frames to write.
    pub picks: Vec<(usize, Option<usize>)>,
    /// Per range: frames it covers and frames kept after sampling.
    pub covered: Vec<usize>,
    pub kept: Vec<usize>,
    /// Frames in two ranges whose conflict a policy settled.
    pub overlaps_settled: usize,
    /// Frames in at least one range (each counted once).
    pub in_ranges: usize,
    /// Problems that do not stop the build (`file:line: ...`).
    pub warnings: Vec<String>,
}

/// How close (seconds) a frame's time must be to a range's start or end to
/// count as on it. Float rounding is below a nanosecond for times of days;
/// stream clocks tick in 1 ms (Matroska) to 11 µs (MPEG-TS) steps, so no
/// frame that is not on a boundary comes this close to one.
pub const ON_BOUNDARY: f64 = 1e-6;

/// Whether a range ends more than a frame past the session's last frame
/// (a wrong unit, or ranges made on a longer recording).
fn past_end(r: &Range, f: &SessionFrames) -> bool {
    let n = f.times.len();
    match f.unit {
        Unit::Frames => r.end - f.frame_base as f64 >= n as f64,
        Unit::Seconds | Unit::Milliseconds => {
            let k = if f.unit == Unit::Milliseconds {
                1000.0
            } else {
                1.0
            };
            let (first, last) = (f.times[0], f.times[n - 1]);
            let step = if n > 1 {
                (last - first) / (n - 1) as f64
            } else {
                0.0
            };
            r.end / k > last + step + ON_BOUNDARY
        }
    }
}

/// Frame span `[lo, hi)` a range covers.
fn span(r: &Range, f: &SessionFrames) -> (usize, usize) {
    let n = f.times.len();
    match f.unit {
        Unit::Frames => {
            let b = f.frame_base as f64;
            let lo = (r.start - b).max(0.0);
            let hi = (r.end - b + 1.0).max(0.0);
            (
                (lo.ceil() as usize).min(n),
                (hi.ceil() as usize).min(n).max((lo.ceil() as usize).min(n)),
            )
        }
        Unit::Seconds | Unit::Milliseconds => {
            let k = if f.unit == Unit::Milliseconds {
                1000.0
            } else {
                1.0
            };
            // a frame within ON_BOUNDARY of a range's start or end is on it:
            // times are sums and products of floats (1400 ms, 68.96 s, a
            // chunk's offset plus pts x time base), which land a frame that
            // is exactly on a boundary a hair to either side of it
            let (s, e) = (r.start / k - ON_BOUNDARY, r.end / k - ON_BOUNDARY);
            let lo = f.times.partition_point(|&t| t < s);
            let hi = f.times.partition_point(|&t| t < e).max(lo);
            (lo, hi)
        }
    }
}

/// Assigns the session's frames to ranges, applies the outside and overlap
/// policies, and samples within each range (and each kept outside stretch).
pub fn assign(
    ranges: &[Range],
    frames: &SessionFrames,
    outside: Outside,
    overlap: Overlap,
    sampling: &Sampling,
) -> Result<Assignment, String> {
    let n = frames.times.len();
    let mut a = Assignment {
        covered: vec![0; ranges.len()],
        kept: vec![0; ranges.len()],
        ..Default::default()
    };
    let unit_name = match frames.unit {
        Unit::Seconds => "s",
        Unit::Milliseconds => "ms",
        Unit::Frames => "",
    };
    for r in ranges {
        let bad_order = match frames.unit {
            Unit::Frames => r.end < r.start,
            _ => r.end <= r.start,
        };
        if bad_order {
            return Err(format!(
                "{}: the range ends ({}) before it starts ({}){}",
                r.origin,
                r.end,
                r.start,
                if frames.unit == Unit::Frames {
                    ""
                } else {
                    " or is empty: time ranges are [start, end)"
                }
            ));
        }
        if r.start < 0.0 || (frames.unit == Unit::Frames && r.start < frames.frame_base as f64) {
            return Err(format!(
                "{}: start {} is before the first frame{}",
                r.origin,
                r.start,
                if frames.unit == Unit::Frames {
                    format!(" (frame_base = {})", frames.frame_base)
                } else {
                    String::new()
                }
            ));
        }
        if frames.unit == Unit::Frames && (r.start.fract() != 0.0 || r.end.fract() != 0.0) {
            return Err(format!(
                "{}: frame numbers must be whole ({} to {})",
                r.origin, r.start, r.end
            ));
        }
    }
    // Which range holds each frame; order of precedence by the policy.
    let mut order: Vec<usize> = (0..ranges.len()).collect();
    order.sort_by(|&x, &y| ranges[x].start.total_cmp(&ranges[y].start).then(x.cmp(&y)));
    if overlap == Overlap::First {
        order.reverse(); // the first one assigned last wins
    }
    let mut owner: Vec<Option<usize>> = vec![None; n];
    let last_time = frames.times.last().copied().unwrap_or(0.0);
    for &ri in &order {
        let r = &ranges[ri];
        let (lo, hi) = span(r, frames);
        a.covered[ri] = hi - lo;
        if lo == hi {
            a.warnings.push(format!(
                "{}: the range {} to {}{unit_name} holds no frame (the session has {n} frames, \
                 the last at {last_time:.3} s)",
                r.origin, r.start, r.end
            ));
        } else if past_end(r, frames) {
            a.warnings.push(format!(
                "{}: the range {} to {}{unit_name} runs past the session's end (it has {n} \
                 frames, the last at {last_time:.3} s): its {} frames up to the end are taken",
                r.origin,
                r.start,
                r.end,
                hi - lo
            ));
        }
        for (f, o) in owner.iter_mut().enumerate().take(hi).skip(lo) {
            if let Some(prev) = *o {
                if ranges[prev].label != r.label {
                    if overlap == Overlap::Error {
                        let (p, q) = if prev < ri { (prev, ri) } else { (ri, prev) };
                        return Err(format!(
                            "frame {} (session time {:.3} s) is in two ranges with different labels: \
                             {} ({}) and {} ({}); fix the ranges or set overlap = \"first\" or \"last\"",
                            f as u64 + if frames.unit == Unit::Frames { frames.frame_base as u64 } else { 0 },
                            frames.times[f],
                            ranges[p].origin,
                            ranges[p].label,
                            ranges[q].origin,
                            ranges[q].label
                        ));
                    }
                    a.overlaps_settled += 1;
                }
            }
            *o = Some(ri);
        }
    }
    a.in_ranges = owner.iter().filter(|o| o.is_some()).count();
    // Stretches of one owner (a range, or outside), sampled each.
    let mut f = 0;
    while f < n {
        let o = owner[f];
        let mut g = f;
        while g < n && owner[g] == o {
            g += 1;
        }
        let keep = match o {
            Some(_) => true,
            None => outside != Outside::Drop,
        };
        if keep {
            let picked = sample(&frames.times[f..g], sampling);
            if let Some(ri) = o {
                a.kept[ri] += picked.len();
            }
            a.picks.extend(picked.into_iter().map(|k| (f + k, o)));
        }
        f = g;
    }
    Ok(a)
}

/// Positions (into `times`) kept by the sampling.
fn sample(times: &[f64], s: &Sampling) -> Vec<usize> {
    let n = times.len();
    let mut picks: Vec<usize> = match (s.every, s.fps) {
        (Some(k), _) if k > 1 => (0..n).step_by(k as usize).collect(),
        (_, Some(fps)) if fps > 0.0 && n > 0 => {
            let step = 1.0 / fps;
            let (t0, t1) = (times[0], times[n - 1]);
            let mut out: Vec<usize> = Vec::new();
            let mut j = 0u64;
            loop {
                let t = t0 + j as f64 * step;
                // grid points past the last frame would pick it again, too close
                if t > t1 + 1e-9 {
                    break;
                }
                // nearest frame to t (earlier on a tie)
                let i = times.partition_point(|&x| x < t);
                let best = if i == 0 {
                    0
                } else if i >= n {
                    n - 1
                } else if (times[i] - t) < (t - times[i - 1]) {
                    i
                } else {
                    i - 1
                };
                if out.last() != Some(&best) {
                    out.push(best);
                }
                j += 1;
            }
            out.dedup();
            out
        }
        _ => (0..n).collect(),
    };
    if let Some(m) = s.max_per_range {
        if picks.len() > m {
            let len = picks.len();
            picks = if m <= 1 {
                picks.into_iter().take(m).collect()
            } else {
                (0..m)
                    .map(|j| picks[(j as f64 * (len - 1) as f64 / (m - 1) as f64).round() as usize])
                    .collect()
            };
        }
    }
    picks
}

/// The ranges of one session in a Label Studio JSON export `v` of a
/// video project with `<TimelineLabels>`: the task whose video file is the
/// session (`NAME.mp4`, or `HASH-NAME.mp4` as Label Studio stores uploads),
/// its annotation's `timelinelabels` results. Label Studio counts frames
/// from 1 as time x `frame_rate` (the project's `<Video frameRate>`), ends
/// included, so frame `k` is the time `(k - 1) / frame_rate` and a range
/// `[s, e]` becomes the times `[(s - 1) / r, e / r)`. `None` when no task
/// is the session.
pub fn label_studio(
    v: &serde_json::Value,
    path: &Path,
    session: &str,
    frame_rate: f64,
) -> Result<Option<Vec<Range>>, String> {
    let tasks = v.as_array().ok_or_else(|| {
        format!(
            "{}: not a Label Studio export (a list of tasks)",
            path.display()
        )
    })?;
    let is_session = |video: &str| {
        let name = video.rsplit('/').next().unwrap_or(video);
        let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
        stem == session || stem.ends_with(&format!("-{session}"))
    };
    let mut found: Vec<(usize, &serde_json::Value)> = Vec::new();
    for (k, t) in tasks.iter().enumerate() {
        let video = t["data"].as_object().and_then(|d| {
            d.values()
                .find_map(|x| x.as_str().filter(|s| is_session(s)))
        });
        if video.is_some() {
            found.push((k, t));
        }
    }
    let (k, task) = match found.as_slice() {
        [] => return Ok(None),
        [one] => *one,
        many => {
            return Err(format!(
                "{}: tasks {} all show a video named {session:?}; keep one",
                path.display(),
                many.iter()
                    .map(|(k, _)| k.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
    };
    let anns: Vec<&serde_json::Value> = task["annotations"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|x| !x["was_cancelled"].as_bool().unwrap_or(false))
                .collect()
        })
        .unwrap_or_default();
    let ann = match anns.as_slice() {
        [] => return Ok(Some(Vec::new())),
        [one] => *one,
        many => {
            return Err(format!(
                "{}: task {k} ({session}) has {} annotations; export or keep one",
                path.display(),
                many.len()
            ))
        }
    };
    let mut out = Vec::new();
    for (j, res) in ann["result"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        if res["type"].as_str() != Some("timelinelabels") {
            continue;
        }
        let at = format!("{}: task {k} ({session}) result {j}", path.display());
        let labels = res["value"]["timelinelabels"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let label = match labels.as_slice() {
            [l] => l.as_str().unwrap_or_default().trim().to_string(),
            _ => {
                return Err(format!(
                    "{at}: {} labels on one region; one is expected",
                    labels.len()
                ))
            }
        };
        if label.is_empty() {
            return Err(format!("{at}: empty label"));
        }
        for (q, r) in res["value"]["ranges"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .enumerate()
        {
            let n = |x: &serde_json::Value| {
                x.as_f64()
                    .filter(|v| v.is_finite() && *v >= 1.0)
                    .ok_or_else(|| format!("{at} range {q}: frame {x} is not a number from 1"))
            };
            let (s, e) = (n(&r["start"])?, n(&r["end"])?);
            if e < s {
                return Err(format!("{at} range {q}: ends ({e}) before it starts ({s})"));
            }
            out.push(Range {
                label: label.clone(),
                start: (s - 1.0) / frame_rate,
                end: e / frame_rate,
                origin: format!("{at} range {q}"),
                video: None,
            });
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(label: &str, start: f64, end: f64, line: usize) -> Range {
        Range {
            label: label.into(),
            start,
            end,
            origin: format!("l.csv:{line}"),
            video: None,
        }
    }

    fn sf(times: &[f64], unit: Unit, frame_base: u32) -> SessionFrames<'_> {
        SessionFrames {
            times,
            unit,
            frame_base,
        }
    }

    /// The default policies: drop outside frames, overlaps are errors, all frames.
    fn plain(ranges: &[Range], f: &SessionFrames) -> Result<Assignment, String> {
        assign(
            ranges,
            f,
            Outside::Drop,
            Overlap::Error,
            &Sampling::default(),
        )
    }

    fn times(n: usize, fps: f64) -> Vec<f64> {
        (0..n).map(|i| i as f64 / fps).collect()
    }

    #[test]
    fn time_ranges_are_half_open() {
        let t = times(10, 10.0); // 0.0 .. 0.9
        let f = sf(&t, Unit::Seconds, 0);
        let ranges = [r("a", 0.0, 0.3, 2), r("b", 0.3, 0.6, 3)];
        let a = plain(&ranges, &f).unwrap();
        let labels: Vec<(usize, Option<usize>)> = a.picks.clone();
        assert_eq!(
            labels,
            vec![
                (0, Some(0)),
                (1, Some(0)),
                (2, Some(0)),
                (3, Some(1)),
                (4, Some(1)),
                (5, Some(1))
            ]
        );
        assert_eq!(a.covered, vec![3, 3]);
    }

    #[test]
    fn a_range_past_the_end_is_said() {
        let t = times(10, 10.0); // 0.0 .. 0.9
        let f = sf(&t, Unit::Seconds, 0);
        // ends one frame after the last: fine
        let a = plain(&[r("a", 0.0, 1.0, 2)], &f).unwrap();
        assert!(a.warnings.is_empty(), "{:?}", a.warnings);
        let a = plain(&[r("a", 0.5, 9.0, 2)], &f).unwrap();
        assert_eq!(a.covered, [5]);
        assert!(a.warnings[0].contains("l.csv:2") && a.warnings[0].contains("runs past"));
        let f = sf(&t, Unit::Frames, 1);
        assert!(plain(&[r("a", 1.0, 10.0, 2)], &f)
            .unwrap()
            .warnings
            .is_empty());
        assert!(!plain(&[r("a", 1.0, 11.0, 2)], &f)
            .unwrap()
            .warnings
            .is_empty());
    }

    /// A frame exactly on a boundary belongs to the later range, however the
    /// float arithmetic rounds: 1400 ms, clock times, and frames after a
    /// chunk's offset.
    #[test]
    fn frames_on_a_boundary_go_to_the_later_range_whatever_the_rounding() {
        // 25 fps, as pts x time base: 35 x 512 / 12800 and so on
        let t: Vec<f64> = (0..2000).map(|i| (i * 512) as f64 / 12800.0).collect();
        let f = sf(&t, Unit::Milliseconds, 0);
        let mut wrong = Vec::new();
        for k in 1..1999 {
            // a boundary on frame k, written in milliseconds
            let b = (k * 40) as f64;
            let ranges = [r("a", 0.0, b, 2), r("b", b, 80_000.0, 3)];
            let a = plain(&ranges, &f).unwrap();
            if a.picks[k] != (k, Some(1)) || a.picks[k - 1] != (k - 1, Some(0)) {
                wrong.push(k);
            }
        }
        assert!(
            wrong.is_empty(),
            "frames on a boundary mislabelled: {wrong:?}"
        );
        // a clock time (00:01:08.960 = 60 + 8.96) and a chunk offset
        // (session time = 4.0 + chunk time)
        let b = clock_seconds("00:01:08.960").unwrap();
        assert_eq!(t.partition_point(|&x| x < b - ON_BOUNDARY), 1724);
        let chunked: Vec<f64> = (0..100).map(|i| 4.0 + (i * 512) as f64 / 12800.0).collect();
        let f = sf(&chunked, Unit::Seconds, 0);
        let ranges = [r("a", 0.0, 5.44, 2), r("b", 5.44, 9.0, 3)];
        let a = plain(&ranges, &f).unwrap();
        assert_eq!(
            a.picks[36],
            (36, Some(1)),
            "5.44 s is frame 36 of the chunk"
        );
        assert_eq!(a.picks[35], (35, Some(0)));
    }

    #[test]
    fn frame_ranges_are_inclusive_with_their_base() {
        let t = times(10, 10.0);
        let f1 = sf(&t, Unit::Frames, 1);
        let a = plain(&[r("a", 1.0, 3.0, 2)], &f1).unwrap();
        assert_eq!(a.picks, vec![(0, Some(0)), (1, Some(0)), (2, Some(0))]);
        let f0 = sf(&t, Unit::Frames, 0);
        let a = plain(&[r("a", 1.0, 3.0, 2)], &f0).unwrap();
        assert_eq!(a.picks, vec![(1, Some(0)), (2, Some(0)), (3, Some(0))]);
        // a one-frame range
        let a = plain(&[r("a", 9.0, 9.0, 2)], &f0).unwrap();
        assert_eq!(a.picks, vec![(9, Some(0))]);
        // frame 0 with base 1 does not exist
        let e = plain(&[r("a", 0.0, 3.0, 7)], &f1).unwrap_err();
        assert!(e.contains("l.csv:7") && e.contains("frame_base = 1"), "{e}");
    }

    #[test]
    fn overlaps_name_both_lines_or_follow_the_policy() {
        let t = times(10, 10.0);
        let f = sf(&t, Unit::Seconds, 0);
        let ranges = [r("a", 0.0, 0.5, 2), r("b", 0.4, 0.8, 5)];
        let e = plain(&ranges, &f).unwrap_err();
        assert!(
            e.contains("l.csv:2 (a)") && e.contains("l.csv:5 (b)"),
            "{e}"
        );
        let a = assign(
            &ranges,
            &f,
            Outside::Drop,
            Overlap::First,
            &Sampling::default(),
        )
        .unwrap();
        assert_eq!(a.picks[4], (4, Some(0)));
        assert_eq!(a.overlaps_settled, 1);
        // frames 0-4 and 4-7: 8 frames in ranges, the shared one once
        assert_eq!(a.covered, vec![5, 4]);
        assert_eq!(a.in_ranges, 8);
        let a = assign(
            &ranges,
            &f,
            Outside::Drop,
            Overlap::Last,
            &Sampling::default(),
        )
        .unwrap();
        assert_eq!(a.picks[4], (4, Some(1)));
        // same label twice: no conflict
        let same = [r("a", 0.0, 0.5, 2), r("a", 0.4, 0.8, 5)];
        assert!(plain(&same, &f).is_ok());
    }

    #[test]
    fn outside_frames() {
        let t = times(6, 10.0);
        let f = sf(&t, Unit::Seconds, 0);
        let ranges = [r("a", 0.2, 0.4, 2)];
        let drop = plain(&ranges, &f).unwrap();
        assert_eq!(drop.picks, vec![(2, Some(0)), (3, Some(0))]);
        let keep = assign(
            &ranges,
            &f,
            Outside::Unlabelled,
            Overlap::Error,
            &Sampling::default(),
        )
        .unwrap();
        assert_eq!(keep.picks.len(), 6);
        assert_eq!(keep.picks[0], (0, None));
    }

    #[test]
    fn sampling_never_duplicates() {
        let t = times(30, 30.0);
        let every = Sampling {
            every: Some(10),
            ..Default::default()
        };
        assert_eq!(sample(&t, &every), vec![0, 10, 20]);
        // 10 fps from 30 fps: every third frame
        let fps = Sampling {
            fps: Some(10.0),
            ..Default::default()
        };
        assert_eq!(sample(&t, &fps), (0..30).step_by(3).collect::<Vec<_>>());
        // asking for more than the video has: each frame once
        let fast = Sampling {
            fps: Some(100.0),
            ..Default::default()
        };
        assert_eq!(sample(&t, &fast), (0..30).collect::<Vec<_>>());
        // a variable rate: nearest real frames
        let vfr = [0.0, 0.1, 0.15, 0.5, 0.9, 1.0];
        let one = Sampling {
            fps: Some(2.0),
            ..Default::default()
        };
        assert_eq!(sample(&vfr, &one), vec![0, 3, 5]);
        let cap = Sampling {
            max_per_range: Some(4),
            ..Default::default()
        };
        assert_eq!(sample(&t, &cap), vec![0, 10, 19, 29]);
    }

    #[test]
    fn clock_times_are_read_as_times() {
        assert_eq!(clock_seconds("00:01:02.5"), Some(62.5));
        assert_eq!(clock_seconds("1:02:03"), Some(3723.0));
        assert_eq!(clock_seconds("75:30.25"), Some(4530.25));
        for bad in [
            "1.5", "00:60.0", "1:60:00", ":30", "a:10", "1:2:3:4", "-1:00", "0:-5", "0:1e1",
        ] {
            assert_eq!(clock_seconds(bad), None, "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.csv");
        // no header row: clock times in the first row are data, not names
        std::fs::write(&p, "a,00:00:01.5,00:00:02\nb,2.5,0:03\n").unwrap();
        let r = read_csv(&p, Unit::Seconds).unwrap();
        let got: Vec<(&str, f64, f64)> = r
            .iter()
            .map(|r| (r.label.as_str(), r.start, r.end))
            .collect();
        assert_eq!(got, [("a", 1.5, 2.0), ("b", 2.5, 3.0)]);
        let r = read_csv(&p, Unit::Milliseconds);
        // (a plain number stays in the unit: 2.5 ms)
        assert_eq!(r.unwrap()[0].start, 1500.0);
        let e = read_csv(&p, Unit::Frames).unwrap_err();
        assert!(e.contains("r.csv:1") && e.contains("clock time"), "{e}");
        std::fs::write(&p, "label,start,end\na,1:2:3:4,5\n").unwrap();
        let e = read_csv(&p, Unit::Seconds).unwrap_err();
        assert!(
            e.contains("r.csv:2: start \"1:2:3:4\" is not a number"),
            "{e}"
        );
        // a row short of a column says so (it said the end "" was no number)
        std::fs::write(&p, "label,start,end\na,1,2\nb,3\n").unwrap();
        let e = read_csv(&p, Unit::Seconds).unwrap_err();
        assert!(e.contains("r.csv:3: 2 column(s), 3 needed"), "{e}");
    }

    #[test]
    fn a_cell_past_the_columns_is_refused_and_a_video_column_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.csv");
        let err = |text: &str| {
            std::fs::write(&p, text).unwrap();
            read_csv(&p, Unit::Seconds).unwrap_err()
        };
        // video,start,end,label without a header: the label was lost and
        // the video's name became the class
        let e = err("a,0,1,walk\n");
        assert!(
            e.contains("r.csv:1: 4 cells") && e.contains("(\"walk\") would be lost"),
            "{e}"
        );
        // an unquoted time with a comma shifts its row
        let e = err("label,start,end\nwalk,00:00:00,500,00:00:01,500\n");
        assert!(
            e.contains("r.csv:2: 5 cells, and the header names 3 columns"),
            "{e}"
        );
        // empty cells past the columns are nothing lost
        std::fs::write(&p, "walk,0,1,,\n").unwrap();
        assert_eq!(read_csv(&p, Unit::Seconds).unwrap()[0].label, "walk");
        // a header with a video column: each row names its video
        std::fs::write(
            &p,
            "video,start,end,label,note\na.mp4,0,1,walk,x\nb,2,3,run,\n",
        )
        .unwrap();
        let r = read_csv(&p, Unit::Seconds).unwrap();
        let got: Vec<(Option<&str>, &str, f64)> = r
            .iter()
            .map(|r| (r.video.as_deref(), r.label.as_str(), r.start))
            .collect();
        assert_eq!(got, [(Some("a.mp4"), "walk", 0.0), (Some("b"), "run", 2.0)]);
        let e = err("video,start,end,label\n,0,1,walk\n");
        assert!(e.contains("r.csv:2: the video is empty"), "{e}");
    }

    #[test]
    fn label_studio_frames_become_times() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("export.json");
        std::fs::write(
            &p,
            r#"[{"id": 1, "data": {"video": "/data/upload/1/3fa2c1-session1.mp4"},
                 "annotations": [{"result": [
                   {"type": "timelinelabels", "value": {"ranges": [{"start": 1, "end": 10}, {"start": 31, "end": 31}], "timelinelabels": ["walk"]}},
                   {"type": "labels", "value": {}}]}]},
                {"id": 2, "data": {"video": "/data/upload/1/99-session2.mp4"}, "annotations": []}]"#,
        )
        .unwrap();
        let r = label_studio(&read_json(&p).unwrap(), &p, "session1", 10.0)
            .unwrap()
            .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].label.as_str(), r[0].start, r[0].end),
            ("walk", 0.0, 1.0)
        );
        assert_eq!((r[1].start, r[1].end), (3.0, 3.1));
        assert_eq!(
            label_studio(&read_json(&p).unwrap(), &p, "session2", 10.0).unwrap(),
            Some(vec![])
        );
        assert_eq!(
            label_studio(&read_json(&p).unwrap(), &p, "session3", 10.0).unwrap(),
            None
        );
    }
}
