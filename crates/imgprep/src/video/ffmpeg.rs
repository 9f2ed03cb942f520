//! The system `ffmpeg` and `ffprobe` programs as the [`Decoder`]: child
//! processes streaming raw RGB frames over a pipe (no image files, ffmpeg's
//! GPL code in its own process).
//!
//! - The frame table comes from `ffprobe -show_packets` (demuxing only):
//!   every packet not marked discarded (`D`, before an edit list's start) is a
//!   frame, in pts order.
//! - Decoding runs `showinfo` first in the filter graph, so every decoded
//!   frame's number and pts come back on stderr and are checked against the
//!   table one for one; `select` then keeps the chosen frames, `crop`/`scale`
//!   shrink them in YUV and `format=rgb24` converts only what is kept.
//!   `-fps_mode passthrough` stops ffmpeg from duplicating or dropping frames
//!   to force a constant rate.
//! - Every wait is bounded: a child that writes nothing for the stall time
//!   (`IMGPREP_VIDEO_STALL_SECS`, default 120) is killed and the chunk fails.

use super::{Decoder, FrameShape, FrameTable};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The oldest ffmpeg with `-fps_mode` (Debian bookworm ships 5.1).
const MIN_VERSION: (u32, u32) = (5, 1);
/// More frames than this in one chunk is refused (8 bytes each in memory).
pub const MAX_FRAMES: usize = 20_000_000;
/// stderr lines kept for an error message.
const TAIL_LINES: usize = 12;

/// An ffmpeg log line without the memory addresses in its prefixes
/// (`[mov,mp4 @ 0x5583d0584180] moov atom not found` ->
/// `[mov,mp4] moov atom not found`): they differ on every run, and the
/// lines go into skip reasons that the manifest and `items.csv` keep.
fn without_addresses(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find(" @ 0x") {
        out.push_str(&rest[..at]);
        let hex = &rest[at + 5..];
        let n = hex.bytes().take_while(u8::is_ascii_hexdigit).count();
        if n > 0 && hex[n..].starts_with(']') {
            rest = &hex[n..];
        } else {
            out.push_str(" @ 0x");
            rest = hex;
        }
    }
    out.push_str(rest);
    out
}

#[derive(Debug, Clone)]
pub struct Ffmpeg {
    ffmpeg: PathBuf,
    ffprobe: PathBuf,
    version: String,
    stall: Duration,
}

fn program(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

/// `ffmpeg version 5.1.9-0+deb12u1 Copyright ...` -> `5.1.9-0+deb12u1`, (5, 1).
fn parse_version(banner: &str) -> Option<(String, Option<(u32, u32)>)> {
    let first = banner.lines().next()?;
    let v = first.split_whitespace().nth(2)?.to_string();
    let mut nums = v
        .trim_start_matches('n')
        .split(|c: char| !c.is_ascii_digit())
        .map(|s| s.parse::<u32>().ok());
    let parsed = match (nums.next().flatten(), nums.next().flatten()) {
        (Some(a), Some(b)) if !v.starts_with('N') => Some((a, b)),
        _ => None, // a git build (`N-109...`): assume recent
    };
    Some((v, parsed))
}

impl Ffmpeg {
    /// Finds `ffmpeg` and `ffprobe` (on PATH, or `IMGPREP_FFMPEG` /
    /// `IMGPREP_FFPROBE`) and checks their version.
    pub fn find() -> Result<Ffmpeg, String> {
        let ffmpeg = program("IMGPREP_FFMPEG", "ffmpeg");
        let ffprobe = program("IMGPREP_FFPROBE", "ffprobe");
        let mut version = String::new();
        for (p, name) in [(&ffmpeg, "ffmpeg"), (&ffprobe, "ffprobe")] {
            let out = Command::new(p)
                .arg("-version")
                .stdin(Stdio::null())
                .output()
                .map_err(|e| {
                    format!(
                        "video sources need the {name} program ({}: {e}); install it, e.g. \
                         `apt-get install ffmpeg` (or set IMGPREP_{})",
                        p.display(),
                        name.to_uppercase()
                    )
                })?;
            let text = String::from_utf8_lossy(&out.stdout);
            let (v, parsed) = parse_version(&text).ok_or_else(|| {
                format!("{}: cannot read its version from `-version`", p.display())
            })?;
            if let Some(mm) = parsed {
                if mm < MIN_VERSION {
                    return Err(format!(
                        "{} is version {v}; video sources need {} {}.{} or newer (for -fps_mode)",
                        p.display(),
                        name,
                        MIN_VERSION.0,
                        MIN_VERSION.1
                    ));
                }
            }
            if name == "ffmpeg" {
                version = v;
            }
        }
        let stall = std::env::var("IMGPREP_VIDEO_STALL_SECS")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|&s| s > 0)
            .unwrap_or(120);
        Ok(Ffmpeg {
            ffmpeg,
            ffprobe,
            version,
            stall: Duration::from_secs(stall),
        })
    }

    fn probe_stream(&self, path: &Path) -> Result<StreamInfo, String> {
        let input = Input::of(path)?;
        let mut cmd = Command::new(&self.ffprobe);
        cmd.args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
            .arg(
                "stream=codec_name,width,height,sample_aspect_ratio,time_base,nb_frames:\
                 stream_side_data=rotation:\
                 stream_tags=rotate:format=start_time,duration",
            )
            .args(["-of", "json"])
            .arg(&input.url);
        let mut text = Vec::new();
        let status = run(&mut cmd, None, self.stall, |out| {
            out.take(16 << 20)
                .read_to_end(&mut text)
                .map(drop)
                .map_err(|e| e.to_string())
        })?;
        if !status.ok {
            return Err(input.scrub(format!("ffprobe cannot read it: {}", status.tail())));
        }
        let v: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| format!("ffprobe's answer: {e}"))?;
        let s = v["streams"]
            .get(0)
            .ok_or("no video stream (ffprobe lists none)")?;
        let num = |x: &serde_json::Value| -> Option<f64> {
            x.as_str()
                .and_then(|s| s.parse().ok())
                .or_else(|| x.as_f64())
        };
        let tb = s["time_base"]
            .as_str()
            .and_then(|t| t.split_once('/'))
            .and_then(|(a, b)| Some((a.parse::<i64>().ok()?, b.parse::<i64>().ok()?)))
            .filter(|&(a, b)| a > 0 && b > 0)
            .ok_or("the video stream has no time base")?;
        let mut rotation = s["side_data_list"]
            .as_array()
            .and_then(|l| l.iter().find_map(|d| num(&d["rotation"])))
            .or_else(|| num(&s["tags"]["rotate"]).map(|r| -r))
            .unwrap_or(0.0)
            .round() as i64;
        rotation = rotation.rem_euclid(360);
        let (w, h) = (
            s["width"].as_u64().unwrap_or(0) as u32,
            s["height"].as_u64().unwrap_or(0) as u32,
        );
        if w == 0 || h == 0 {
            return Err("the video stream has no frame size".into());
        }
        let turned = rotation == 90 || rotation == 270;
        // "N:M"; "0:1" or none: not declared (square)
        let sar = s["sample_aspect_ratio"]
            .as_str()
            .and_then(|t| t.split_once(':'))
            .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
            .filter(|&(a, b)| a > 0 && b > 0 && a <= 100 * b && b <= 100 * a)
            .map(|(a, b)| if a == b { (1, 1) } else { (a, b) })
            .unwrap_or((1, 1));
        Ok(StreamInfo {
            codec: s["codec_name"].as_str().unwrap_or("?").to_string(),
            time_base: tb,
            width: if turned { h } else { w },
            height: if turned { w } else { h },
            rotation: rotation as i32,
            sar: if turned { (sar.1, sar.0) } else { sar },
            start: num(&v["format"]["start_time"]).unwrap_or(0.0),
            nb_frames: num(&s["nb_frames"]).map(|n| n as u64),
            duration: num(&v["format"]["duration"]),
        })
    }
}

struct StreamInfo {
    codec: String,
    time_base: (i64, i64),
    width: u32,
    height: u32,
    rotation: i32,
    /// Sample aspect ratio of the upright frame.
    sar: (u32, u32),
    start: f64,
    duration: Option<f64>,
    /// Frames the container's index lists (MP4, AVI), discarded ones included.
    nb_frames: Option<u64>,
}

/// What ffmpeg opens for a chunk: its path, or a (signed) URL of an object,
/// which never shows in messages.
struct Input {
    url: std::ffi::OsString,
    shown: String,
}

impl Input {
    fn of(path: &Path) -> Result<Input, String> {
        // an hour: decoding a chunk takes seconds to minutes
        let url =
            crate::files::read_url(path, Duration::from_secs(3600)).map_err(|e| e.to_string())?;
        Ok(Input {
            url,
            shown: path.display().to_string(),
        })
    }

    /// `text` with the URL (a signature is a credential) put back as the path.
    fn scrub(&self, text: String) -> String {
        let url = self.url.to_string_lossy();
        if url == self.shown {
            text
        } else {
            text.replace(url.as_ref(), &self.shown)
        }
    }
}

/// What a child process left behind.
struct Finished {
    ok: bool,
    code: Option<i32>,
    stalled: bool,
    tail: Vec<String>,
}

impl Finished {
    fn tail(&self) -> String {
        if self.stalled {
            return "no output for the stall time; stopped (IMGPREP_VIDEO_STALL_SECS)".into();
        }
        let t: Vec<&str> = self
            .tail
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        match (t.is_empty(), self.code) {
            (false, _) => t.join(" | "),
            (true, Some(c)) => format!("exit code {c}"),
            (true, None) => "killed by a signal".into(),
        }
    }
}

/// Kills `child` and every process of its group (it leads one: see
/// [`run_with`]).
fn kill_group(child: &mut Child) {
    #[cfg(unix)]
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals that process group;
        // it touches no memory of ours
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
}

/// Runs `cmd`, hands its stdout to `read`, keeps the last stderr lines
/// (and gives every stderr line to `on_err`), and kills it when neither
/// stream moves for `stall`.
fn run_with<F, E>(
    cmd: &mut Command,
    stdin: Option<String>,
    stall: Duration,
    read: F,
    mut on_err: E,
) -> Result<Finished, String>
where
    F: FnOnce(&mut dyn Read) -> Result<(), String>,
    E: FnMut(&str) + Send,
{
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    // its own process group, so that stopping it stops whatever it started
    // (a wrapper script's ffmpeg would keep the pipes open, and the wait)
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(cmd, 0);
    let mut child: Child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    let start = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let stalled = Arc::new(AtomicBool::new(false));
    let mut out = child.stdout.take().expect("piped");
    let err = child.stderr.take().expect("piped");
    let input = child.stdin.take();
    let child = Arc::new(Mutex::new(child));
    let touch = {
        let last = last.clone();
        move || last.store(start.elapsed().as_millis() as u64, Ordering::Relaxed)
    };
    std::thread::scope(|s| {
        if let (Some(mut w), Some(text)) = (input, stdin) {
            s.spawn(move || {
                let _ = w.write_all(text.as_bytes());
            });
        }
        let watchdog = {
            let (child, done, stalled, last) =
                (child.clone(), done.clone(), stalled.clone(), last.clone());
            s.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    let idle = start.elapsed().as_millis() as u64 - last.load(Ordering::Relaxed);
                    if idle > stall.as_millis() as u64 {
                        // (under the lock, and not once the child is reaped:
                        // its group id could be another's by then)
                        let mut c = child.lock().unwrap();
                        if !done.load(Ordering::Relaxed) {
                            stalled.store(true, Ordering::Relaxed);
                            kill_group(&mut c);
                        }
                        return;
                    }
                }
            })
        };
        let err_thread = {
            let touch = touch.clone();
            let on_err = &mut on_err;
            s.spawn(move || {
                let mut tail: std::collections::VecDeque<String> = Default::default();
                let mut r = BufReader::new(err);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    // one line at most 64 KiB (a longer one is cut)
                    match (&mut r).take(64 << 10).read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    touch();
                    let l = String::from_utf8_lossy(&line);
                    on_err(&l);
                    if !l.contains("Parsed_showinfo") {
                        if tail.len() == TAIL_LINES {
                            tail.pop_front();
                        }
                        tail.push_back(without_addresses(l.trim_end()));
                    }
                }
                tail.into_iter().collect::<Vec<_>>()
            })
        };
        let mut counting = Touching {
            inner: &mut out,
            touch: &touch,
        };
        let read_result = read(&mut counting);
        // whatever it still writes is not wanted (and must not block it)
        if read_result.is_err() {
            kill_group(&mut child.lock().unwrap());
        }
        let _ = std::io::copy(&mut out, &mut std::io::sink());
        let tail = err_thread.join().unwrap_or_default();
        let status = loop {
            // the watchdog may hold the lock for a moment
            let mut c = child.lock().unwrap();
            if let Some(st) = c.try_wait().map_err(|e| e.to_string())? {
                done.store(true, Ordering::Relaxed);
                break st;
            }
            drop(c);
            std::thread::sleep(Duration::from_millis(5));
        };
        let _ = watchdog.join();
        read_result?;
        Ok(Finished {
            ok: status.success() && !stalled.load(Ordering::Relaxed),
            code: status.code(),
            stalled: stalled.load(Ordering::Relaxed),
            tail,
        })
    })
}

fn run<F>(
    cmd: &mut Command,
    stdin: Option<String>,
    stall: Duration,
    read: F,
) -> Result<Finished, String>
where
    F: FnOnce(&mut dyn Read) -> Result<(), String>,
{
    run_with(cmd, stdin, stall, read, |_| {})
}

/// A reader that marks progress for the watchdog.
struct Touching<'a, R: Read, T: Fn()> {
    inner: &'a mut R,
    touch: &'a T,
}

impl<R: Read, T: Fn()> Read for Touching<'_, R, T> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.touch)();
        Ok(n)
    }
}

/// What showinfo reported: its input time base, and each frame's (n, pts).
type Shown = (Option<(i64, i64)>, Vec<(u64, Option<i64>)>);

/// `[Parsed_showinfo_0 @ 0x..] n:  12 pts:  6144 pts_time:0.4 ...` -> (12, Some(6144)).
/// ffmpeg pads the numbers to a width (`n:%4d pts:%7d`), so wide ones follow
/// the colon directly (`n:12345 pts:1000448`).
fn showinfo_frame(line: &str) -> Option<(u64, Option<i64>)> {
    if !line.contains("Parsed_showinfo") {
        return None;
    }
    let rest = &line[line.find("] n:")? + 4..];
    let value = |s: &str| -> Option<(String, usize)> {
        let t = s.trim_start();
        let skipped = s.len() - t.len();
        let v: String = t.chars().take_while(|c| !c.is_whitespace()).collect();
        let used = skipped + v.len();
        Some((v, used))
    };
    let (n, used) = value(rest)?;
    let n = n.parse().ok()?;
    let rest = rest[used..].trim_start();
    let pts = match rest.strip_prefix("pts:") {
        Some(r) => value(r).and_then(|(v, _)| v.parse().ok()),
        None => None,
    };
    Some((n, pts))
}

/// Whether an ffmpeg log line is a decoder's report of damaged data that
/// it decoded anyway (H.264/HEVC/MPEG error concealment, MPEG-4's "Error
/// at MB"): the picture it gives then holds pixels of other frames.
fn is_damage_report(line: &str) -> bool {
    line.contains(" @ 0x")
        && !line.contains("Parsed_")
        && [
            "error while decoding",
            "concealing ",
            "Error at MB",
            "corrupted macroblock",
            "damaged",
        ]
        .iter()
        .any(|t| line.contains(t))
}

/// `[h264 @ 0x55d0] error ...` -> `h264: error ...` (the address says
/// nothing to a reader).
fn without_context(line: &str) -> String {
    let line = line.trim();
    match (line.strip_prefix('['), line.find("] ")) {
        (Some(rest), Some(end)) if rest[..end - 1].contains(" @ 0x") => {
            let codec = rest[..end - 1].split(" @ ").next().unwrap_or("");
            format!("{codec}: {}", &line[end + 2..])
        }
        _ => line.to_string(),
    }
}

/// `config in time_base: 1/15360, ...` -> (1, 15360).
fn showinfo_time_base(line: &str) -> Option<(i64, i64)> {
    let rest = &line[line.find("config in time_base:")? + 20..];
    let tb = rest.trim().split(',').next()?.trim();
    let (a, b) = tb.split_once('/')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The `select` expression for frame runs.
fn select_expr(frames: &[u32]) -> String {
    let terms: Vec<String> = super::runs(frames)
        .iter()
        .map(|&(a, b, step)| match (a == b, step) {
            (true, _) => format!("eq(n,{a})"),
            (false, 1) => format!("between(n,{a},{b})"),
            (false, s) => format!("between(n,{a},{b})*not(mod(n-{a},{s}))"),
        })
        .collect();
    terms.join("+")
}

impl Decoder for Ffmpeg {
    fn describe(&self) -> String {
        format!("ffmpeg {}", self.version)
    }

    fn probe(&self, path: &Path) -> Result<FrameTable, String> {
        let info = self.probe_stream(path)?;
        let input = Input::of(path)?;
        let mut cmd = Command::new(&self.ffprobe);
        cmd.args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts,dts,duration,flags",
            "-of",
            "csv=p=0",
        ])
        .arg(&input.url);
        let mut pts: Vec<i64> = Vec::new();
        let mut last_duration = 0i64;
        let mut last_pts = i64::MIN;
        let mut bad = None;
        let mut packets = 0u64;
        let status = run(&mut cmd, None, self.stall, |out| {
            let mut r = BufReader::new(out);
            let mut line = String::new();
            let mut no = 0usize;
            loop {
                line.clear();
                if (&mut r)
                    .take(4096)
                    .read_line(&mut line)
                    .map_err(|e| e.to_string())?
                    == 0
                {
                    break;
                }
                no += 1;
                let f: Vec<&str> = line.trim().split(',').collect();
                if f.len() < 4 {
                    continue;
                }
                packets += 1;
                if f[3].contains('D') {
                    continue; // before the edit list's start: decoded, never shown
                }
                let t = f[0].parse::<i64>().ok().or_else(|| f[1].parse().ok());
                match t {
                    Some(t) => {
                        if pts.len() >= MAX_FRAMES {
                            return Err(format!("more than {MAX_FRAMES} frames"));
                        }
                        pts.push(t);
                        if t >= last_pts {
                            last_pts = t;
                            last_duration = f[2].parse().unwrap_or(0);
                        }
                    }
                    None => {
                        bad.get_or_insert(no);
                    }
                }
            }
            Ok(())
        })?;
        if !status.ok {
            return Err(format!(
                "ffprobe cannot read its packets: {}",
                status.tail()
            ));
        }
        if let Some(no) = bad {
            return Err(format!(
                "packet {no} of the video stream has no timestamp, so frames cannot be placed in \
                 time (a raw stream such as .h264 has none; encode it into a container at its \
                 frame rate first, e.g. ffmpeg -framerate 25 -i x.h264 -crf 12 x.mp4: a copy \
                 with -c copy keeps no B-frame order and is refused)"
            ));
        }
        if pts.is_empty() {
            return Err("the video stream has no frames".into());
        }
        pts.sort_unstable();
        if let Some(n) = info.nb_frames.filter(|&n| n > packets) {
            // fewer packets than the header counts: cut short, unless the
            // timestamps still span that many frame steps (an AVI's empty
            // chunks for frames dropped while recording are holes, not frames)
            let mut steps: Vec<i64> = pts
                .windows(2)
                .map(|w| w[1] - w[0])
                .filter(|&d| d > 0)
                .collect();
            steps.sort_unstable();
            let span = match steps.get(steps.len() / 2) {
                Some(&step) => ((pts[pts.len() - 1] - pts[0]) / step) as u64 + 1,
                None => packets,
            };
            if span < n {
                return Err(format!(
                    "the file is cut short: its index lists {n} frames, only {packets} are there"
                ));
            }
        }
        if let Some(w) = pts.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!(
                "two frames share the timestamp {} (time base {}/{}): their order is not defined",
                w[0], info.time_base.0, info.time_base.1
            ));
        }
        Ok(FrameTable {
            codec: info.codec,
            time_base: info.time_base,
            pts,
            last_duration,
            container_start: info.start,
            container_duration: info.duration,
            width: info.width,
            height: info.height,
            rotation: info.rotation,
            sar: info.sar,
            stretched_from: None,
        })
    }

    fn decode(
        &self,
        path: &Path,
        table: &FrameTable,
        frames: &[u32],
        shape: &FrameShape,
        on_frame: &mut super::FrameSink,
    ) -> Result<(), String> {
        if frames.is_empty() {
            return Ok(());
        }
        let mut graph = format!("showinfo=checksum=0,select='{}'", select_expr(frames));
        if table.stretched_from.is_some() {
            // non-square pixels shown as players show them, first
            graph.push_str(&format!(
                ",scale={}:{}:flags=bicubic,setsar=1",
                table.width, table.height
            ));
        }
        if let Some((x, y, w, h)) = shape.crop {
            graph.push_str(&format!(",crop={w}:{h}:{x}:{y}"));
        }
        let size = shape
            .crop
            .map_or((table.width, table.height), |c| (c.2, c.3));
        let resized = size != (shape.width, shape.height);
        // area averaging down, bicubic up (swscale's accurate_rnd and
        // full_chroma_int flags were measured: about +40 % of the decode time,
        // for differences of about one level)
        let flags = if shape.width < size.0 {
            "area"
        } else {
            "bicubic"
        };
        match shape.layout {
            super::FrameLayout::Rgb24 => {
                if resized {
                    graph.push_str(&format!(
                        ",scale={}:{}:flags={flags}",
                        shape.width, shape.height
                    ));
                }
                graph.push_str(",format=rgb24");
            }
            super::FrameLayout::Yuvj420 => {
                // scaled in YUV and moved to JPEG's full-range BT.601: no RGB
                graph.push_str(&format!(
                    ",scale={}:{}:flags={flags}:out_range=full:out_color_matrix=bt601,format=yuvj420p",
                    shape.width, shape.height
                ));
            }
        }
        let input = Input::of(path)?;
        let mut cmd = Command::new(&self.ffmpeg);
        cmd.args(["-nostdin", "-hide_banner", "-nostats", "-v", "info"])
            .args(["-threads", "1", "-i"])
            .arg(&input.url)
            .args(["-map", "0:v:0", "-an", "-sn", "-dn"])
            .args(["-filter_script:v", "pipe:0"])
            .args(["-fps_mode", "passthrough", "-f", "rawvideo", "pipe:1"]);
        let seen: Mutex<Shown> = Mutex::new((None, Vec::new()));
        // the decoder's reports of damaged data: (frames shown before the
        // first, its line, how many)
        let damaged: Mutex<Option<(usize, String, usize)>> = Mutex::new(None);
        let mut got = 0usize;
        let frame_bytes = shape.frame_bytes();
        let status = run_with(
            &mut cmd,
            Some(graph),
            self.stall,
            |out| {
                let mut buf = vec![0u8; frame_bytes];
                for &f in frames {
                    match read_full(out, &mut buf) {
                        Ok(true) => {}
                        Ok(false) => return Ok(()), // fewer than asked: checked below
                        Err(e) => return Err(e.to_string()),
                    }
                    got += 1;
                    on_frame(f, &buf)?;
                }
                let extra = std::io::copy(out, &mut std::io::sink()).map_err(|e| e.to_string())?;
                if extra > 0 {
                    return Err(format!(
                        "ffmpeg gave {extra} bytes more than the {} frames asked for",
                        frames.len()
                    ));
                }
                Ok(())
            },
            |line| {
                let mut s = seen.lock().unwrap();
                if let Some(f) = showinfo_frame(line) {
                    if s.1.len() <= MAX_FRAMES {
                        s.1.push(f);
                    }
                } else if let Some(tb) = showinfo_time_base(line) {
                    s.0.get_or_insert(tb);
                } else if is_damage_report(line) {
                    let mut d = damaged.lock().unwrap();
                    match d.as_mut() {
                        Some(d) => d.2 += 1,
                        None => *d = Some((s.1.len(), without_context(line), 1)),
                    }
                }
            },
        )?;
        if !status.ok {
            return Err(input.scrub(format!("ffmpeg failed: {}", status.tail())));
        }
        if let Some((at, first, n)) = damaged.into_inner().unwrap() {
            // concealed, its frames would look like video and be wrong
            return Err(input.scrub(format!(
                "damaged data: the decoder reported {n} error(s) from about frame {at} on \
                 ({}); the frames it patched over would be written as if they were right",
                crate::report::cut(&first, 200)
            )));
        }
        let (tb, shown) = seen.into_inner().unwrap();
        check_frames(table, tb, &shown)?;
        if got != frames.len() {
            return Err(format!(
                "ffmpeg gave {got} of the {} frames asked for",
                frames.len()
            ));
        }
        Ok(())
    }
}

/// Reads exactly `buf.len()` bytes; `false` at a clean end of stream.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) if n == 0 => return Ok(false),
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "the frame pipe ended inside a frame ({n} of {} bytes)",
                        buf.len()
                    ),
                ))
            }
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Every decoded frame (as showinfo saw it, before `select`) is the table's
/// frame of the same number: same count, same pts up to one constant shift
/// (ffmpeg moves the start to 0).
fn check_frames(
    table: &FrameTable,
    tb: Option<(i64, i64)>,
    shown: &[(u64, Option<i64>)],
) -> Result<(), String> {
    if shown.len() != table.len() {
        return Err(format!(
            "decoding gave {} frames where the packets promise {} (a damaged or truncated file?)",
            shown.len(),
            table.len()
        ));
    }
    let same_base = tb == Some(table.time_base);
    let secs = |t: i64, base: (i64, i64)| t as f64 * base.0 as f64 / base.1 as f64;
    let mut shift: Option<f64> = None;
    let tolerance = (table.frame_interval() / 4.0).clamp(1e-9, 0.001);
    for (k, &(n, pts)) in shown.iter().enumerate() {
        if n != k as u64 {
            return Err(format!("decoded frame {k} came out numbered {n}"));
        }
        let Some(p) = pts else {
            return Err(format!("decoded frame {n} has no timestamp"));
        };
        let (have, want) = if same_base {
            (p as f64, table.pts[k] as f64)
        } else {
            (secs(p, tb.unwrap_or(table.time_base)), table.pts_time(k))
        };
        let d = want - have;
        let s = *shift.get_or_insert(d);
        let off = if same_base {
            (d - s).abs()
        } else {
            (d - s).abs() / tolerance
        };
        if off > 0.5 {
            return Err(format!(
                "decoded frame {n} has pts {p}, but the table's frame {n} is at {} (time base {}/{}): \
                 frames would be mislabelled",
                table.pts[k], table.time_base.0, table.time_base.1
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn damage_reports_are_told_from_other_lines() {
        use super::{is_damage_report, without_context};
        let line = "[h264 @ 0x55de1535fd80] error while decoding MB 0 4, bytestream 626";
        assert!(is_damage_report(line));
        assert_eq!(
            without_context(line),
            "h264: error while decoding MB 0 4, bytestream 626"
        );
        assert!(is_damage_report(
            "[h264 @ 0x55de1535fd80] concealing 120 DC, 120 AC, 120 MV errors in P frame"
        ));
        assert!(!is_damage_report(
            "[Parsed_showinfo_0 @ 0x55ec2] n:   3 pts:  3 pts_time:0.3"
        ));
        assert!(!is_damage_report("Stream mapping:"));
    }

    #[test]
    fn log_lines_lose_their_addresses() {
        assert_eq!(
            super::without_addresses(
                "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x5583d0584180] moov atom not found"
            ),
            "[mov,mp4,m4a,3gp,3g2,mj2] moov atom not found"
        );
        assert_eq!(
            super::without_addresses("[h264 @ 0xab] a @ 0x12] b @ 0xzz] c @ 0x"),
            "[h264] a] b @ 0xzz] c @ 0x"
        );
        assert_eq!(super::without_addresses("plain"), "plain");
    }

    use super::*;

    #[test]
    fn versions() {
        let (v, mm) = parse_version("ffmpeg version 5.1.9-0+deb12u1 Copyright (c)").unwrap();
        assert_eq!(v, "5.1.9-0+deb12u1");
        assert_eq!(mm, Some((5, 1)));
        assert_eq!(
            parse_version("ffmpeg version 4.4.2 x").unwrap().1,
            Some((4, 4))
        );
        assert_eq!(
            parse_version("ffprobe version n7.0 x").unwrap().1,
            Some((7, 0))
        );
        assert_eq!(
            parse_version("ffmpeg version N-109421-g1234 x").unwrap().1,
            None
        );
    }

    #[test]
    fn showinfo_lines() {
        let l =
            "[Parsed_showinfo_0 @ 0x55c2] n:  12 pts:   6144 pts_time:0.4     pos: 3 fmt:yuv420p";
        assert_eq!(showinfo_frame(l), Some((12, Some(6144))));
        let l = "[Parsed_showinfo_0 @ 0x55c2] n:   3 pts:NOPTS pts_time:NOPTS";
        assert_eq!(showinfo_frame(l), Some((3, None)));
        assert_eq!(showinfo_frame("frame=  4 fps=0.0"), None);
        let l = "[Parsed_showinfo_0 @ 0x5] n:12345 pts:1000448 pts_time:65.1333 pos: 1";
        assert_eq!(showinfo_frame(l), Some((12345, Some(1000448))));
        let l = "[Parsed_showinfo_0 @ 0x5] config in time_base: 1/15360, frame_rate: 30/1";
        assert_eq!(showinfo_time_base(l), Some((1, 15360)));
    }

    #[test]
    fn select_expressions() {
        assert_eq!(select_expr(&[0, 1, 2, 9]), "between(n,0,2)+eq(n,9)");
        assert_eq!(
            select_expr(&[10, 20, 30]),
            "between(n,10,30)*not(mod(n-10,10))"
        );
    }

    fn table(pts: Vec<i64>) -> FrameTable {
        FrameTable {
            codec: "h264".into(),
            time_base: (1, 15360),
            pts,
            last_duration: 512,
            container_start: 0.0,
            container_duration: None,
            width: 2,
            height: 2,
            rotation: 0,
            sar: (1, 1),
            stretched_from: None,
        }
    }

    #[test]
    fn frames_checked_against_the_table() {
        let t = table(vec![1024, 1536, 2048]);
        let tb = Some((1, 15360));
        // ffmpeg moved the start to 0: a constant shift is fine
        assert!(check_frames(&t, tb, &[(0, Some(0)), (1, Some(512)), (2, Some(1024))]).is_ok());
        // one frame short
        let e = check_frames(&t, tb, &[(0, Some(0)), (1, Some(512))]).unwrap_err();
        assert!(e.contains("2 frames where the packets promise 3"), "{e}");
        // a dropped frame in the middle shifts the rest
        let e =
            check_frames(&t, tb, &[(0, Some(0)), (1, Some(1024)), (2, Some(1536))]).unwrap_err();
        assert!(e.contains("decoded frame 1"), "{e}");
    }
}
