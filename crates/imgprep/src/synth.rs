//! Synthetic datasets for demos and tests: a class-folder tree of images the
//! project makes itself (no download). Deterministic for a given seed.

use crate::error::{Error, Result};
use crate::image::{Encoding, Pixels, Processor};
use crate::output::write_atomic;
use std::f32::consts::TAU;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct SynthOptions {
    pub classes: usize,
    pub per_class: usize,
    pub width: u32,
    pub height: u32,
    pub seed: u64,
    /// `jpg` or `png`.
    pub format: String,
    /// What to lay out: a class-folder tree with a CSV index, multi-label
    /// `.lst` files, or a TinyImageNet-like tree.
    pub layout: Layout,
    /// Video layout: sessions, chunks per session, seconds per chunk, frame rate.
    pub sessions: usize,
    pub chunks: usize,
    pub seconds: f64,
    pub fps: u32,
}

/// The dataset layouts `synth` writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Layout {
    /// `class_K/img_NNNNN.EXT` and `index.csv` (`subject,classname,img`,
    /// eight subjects as groups).
    #[default]
    Classes,
    /// `images/img_NNNNN.EXT`, `train.lst` and `val.lst` with one 0/1
    /// column per class (one to three classes per image), 80/20.
    MultiLabel,
    /// `wnids.txt`, `words.txt`, `train/{id}/images/{id}_N.JPEG`,
    /// `val/images/val_N.JPEG` + `val/val_annotations.txt`, `test/images/`.
    TinyImageNet,
    /// Pascal VOC object detection: `JPEGImages/segGG_NNNNN.jpg` with one to
    /// four painted rectangles each and `Annotations/segGG_NNNNN.xml` with
    /// their exact boxes (classes `D00`, `D10`, `D20`, `D40`, the rarer the
    /// later; `GG` a road segment, six of them, for group splits).
    Voc,
    /// Labelled video: `videos/sessionK/chunkNN.mp4` (H.264 with B-frames,
    /// every frame's session frame number painted in its upper half, see
    /// [`FRAME_CODE`]) and `labels/sessionK.csv` with `label,start,end`
    /// ranges in seconds (classes `activity_1`..; some stretches in no range).
    Video,
}

/// How `synth --layout video` paints a frame's number: the upper half of
/// the frame is a 4 x 4 grid of cells (row-major); cell `k` is white when bit
/// `k` of the session frame number is set, else black.
pub const FRAME_CODE: &str = "4x4 grid over the upper half, cell k white = bit k";

/// Reads the number [`FRAME_CODE`] painted into an RGB or gray frame.
pub fn read_frame_code(px: &Pixels) -> u32 {
    let (w, h) = (px.width as usize, px.height as usize);
    let mut n = 0u32;
    for k in 0..16 {
        let (col, row) = (k % 4, k / 4);
        // the middle half of the cell, averaged
        let (x0, x1) = ((4 * col + 1) * w / 16, (4 * col + 3) * w / 16);
        let (y0, y1) = ((4 * row + 1) * h / 32, (4 * row + 3) * h / 32);
        let (mut sum, mut count) = (0u64, 0u64);
        for y in y0..y1.max(y0 + 1) {
            for x in x0..x1.max(x0 + 1) {
                let o = (y * w + x) * px.channels;
                sum += px.data[o] as u64;
                count += 1;
            }
        }
        if sum / count.max(1) > 128 {
            n |= 1 << k;
        }
    }
    n
}

impl std::str::FromStr for Layout {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "classes" => Ok(Layout::Classes),
            "multilabel" | "multi-label" => Ok(Layout::MultiLabel),
            "tinyimagenet" | "tiny-imagenet" => Ok(Layout::TinyImageNet),
            "voc" => Ok(Layout::Voc),
            "video" => Ok(Layout::Video),
            _ => Err(format!(
                "unknown layout {s:?}: classes, multilabel, tinyimagenet, voc or video"
            )),
        }
    }
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            classes: 3,
            per_class: 20,
            width: 640,
            height: 480,
            seed: 1,
            format: "jpg".into(),
            layout: Layout::Classes,
            sessions: 3,
            chunks: 2,
            seconds: 6.0,
            fps: 30,
        }
    }
}

/// SplitMix64: tiny, good enough for pictures, stable forever.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// One picture: a colour gradient tinted by class, a few soft discs, grain.
pub fn synth_image(width: u32, height: u32, class: usize, seed: u64) -> Pixels {
    let mut rng = Rng(seed ^ (class as u64).wrapping_mul(0xA24B_AED4_963E_E407));
    let hue = class as f32 * 0.61803;
    let base = [
        0.5 + 0.4 * (hue * TAU).sin(),
        0.5 + 0.4 * (hue * TAU + TAU / 3.0).sin(),
        0.5 + 0.4 * (hue * TAU + 2.0 * TAU / 3.0).sin(),
    ];
    let discs: Vec<(f32, f32, f32, [f32; 3])> = (0..5)
        .map(|_| {
            (
                rng.unit() * width as f32,
                rng.unit() * height as f32,
                (0.05 + 0.2 * rng.unit()) * width.min(height) as f32,
                [rng.unit(), rng.unit(), rng.unit()],
            )
        })
        .collect();
    let (gx, gy) = (rng.unit() - 0.5, rng.unit() - 0.5);
    let mut data = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        for x in 0..width {
            let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
            let mut c = [0f32; 3];
            for k in 0..3 {
                c[k] = base[k] + gx * (fx - 0.5) + gy * (fy - 0.5);
            }
            for (cx, cy, r, col) in &discs {
                let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
                let a = (1.0 - (d - r) / 8.0).clamp(0.0, 1.0) * 0.7;
                for k in 0..3 {
                    c[k] = c[k] * (1.0 - a) + col[k] * a;
                }
            }
            let grain = (rng.next() & 15) as f32 / 255.0 - 0.03;
            for v in c {
                data.push(((v + grain).clamp(0.0, 1.0) * 255.0) as u8);
            }
        }
    }
    Pixels {
        width,
        height,
        channels: 3,
        data,
    }
}

/// Writes the layout `opts.layout` asks for under `dir`; returns the image
/// files written.
pub fn synth_tree(dir: &Path, opts: &SynthOptions) -> Result<Vec<PathBuf>> {
    for (what, n) in [
        ("classes", opts.classes as u64),
        ("per_class", opts.per_class as u64),
        ("width", opts.width as u64),
        ("height", opts.height as u64),
    ] {
        if n == 0 {
            return Err(crate::Error::Usage(format!(
                "synth: {what} = 0: give 1 or more"
            )));
        }
    }
    match opts.layout {
        Layout::Classes => synth_classes(dir, opts),
        Layout::MultiLabel => synth_multilabel(dir, opts),
        Layout::TinyImageNet => synth_tinyimagenet(dir, opts),
        Layout::Voc => synth_voc(dir, opts),
        Layout::Video => synth_video(dir, opts),
    }
}

/// One encoded picture of `class`, number `i`, written to `path`.
struct Painter {
    proc: Processor,
    encoding: Encoding,
    opts: SynthOptions,
}

impl Painter {
    fn new(opts: &SynthOptions) -> Result<Self> {
        let encoding = match opts.format.as_str() {
            "jpg" | "jpeg" => Encoding::Jpeg { quality: 90 },
            "png" => Encoding::Png { compression: 3 },
            other => {
                return Err(Error::Usage(format!(
                    "unknown synth format {other:?} (jpg or png)"
                )))
            }
        };
        Ok(Painter {
            proc: Processor::new().map_err(|e| Error::Usage(e.to_string()))?,
            encoding,
            opts: opts.clone(),
        })
    }

    fn paint(&mut self, path: &Path, class: usize, i: usize) -> Result<()> {
        let seed = self
            .opts
            .seed
            .wrapping_mul(1_000_003)
            .wrapping_add((class * 100_000 + i) as u64);
        let px = synth_image(self.opts.width, self.opts.height, class, seed);
        self.save(path, px)
    }

    fn save(&mut self, path: &Path, px: Pixels) -> Result<()> {
        let mut out = Vec::new();
        self.proc
            .encode(px, self.encoding, &mut out)
            .map_err(|e| Error::Usage(e.to_string()))?;
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).map_err(Error::io(d))?;
        }
        put(path, &out)
    }
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    put(path, text.as_bytes())
}

/// Writes a file synth makes, never over somebody else's: a file already at
/// `path` is left as it is when it holds exactly these bytes (the same synth
/// run again), and refused otherwise.
fn put(path: &Path, bytes: &[u8]) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => match crate::output::holds_exactly(path, bytes) {
            true => Ok(()),
            false => Err(taken(path)),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            write_atomic(path, bytes).map(drop).map_err(Error::io(path))
        }
        Err(e) => Err(Error::io(path)(e)),
    }
}

/// A file of somebody else's where synth would write one.
fn taken(path: &Path) -> Error {
    Error::Usage(format!(
        "{}: a file is there that synth did not make (or made with other settings); synth \
         writes only new files: give a new or empty folder",
        path.display()
    ))
}

/// The colour a class's rectangles are painted in (saturated, far from the
/// pastel backgrounds).
pub fn box_colour(class: usize) -> [u8; 3] {
    [[230, 20, 20], [20, 200, 20], [20, 40, 230], [240, 220, 10]][class % 4]
}

/// Names of the synthetic detection classes.
pub const VOC_CLASSES: [&str; 4] = ["D00", "D10", "D20", "D40"];

fn synth_voc(dir: &Path, opts: &SynthOptions) -> Result<Vec<PathBuf>> {
    let mut painter = Painter::new(opts)?;
    let ext = match opts.format.as_str() {
        "png" => "png",
        _ => "jpg",
    };
    let (w, h) = (opts.width, opts.height);
    if w < 40 || h < 40 {
        return Err(Error::Usage(format!(
            "voc layout: images of at least 40x40 are needed for boxes ({w}x{h} asked)"
        )));
    }
    let n = opts.per_class * opts.classes.max(1);
    let mut rng = Rng(opts.seed ^ 0x766F_6321);
    let mut written = Vec::new();
    for i in 0..n {
        let name = format!("seg{:02}_{i:05}", i % 6);
        let mut px = synth_image(w, h, i % 7, opts.seed.wrapping_add(i as u64));
        let mut xml = format!(
            "<annotation>\n  <folder>JPEGImages</folder>\n  <filename>{name}.{ext}</filename>\n  \
             <size><width>{w}</width><height>{h}</height><depth>3</depth></size>\n"
        );
        let count = 1 + (rng.next() % 4) as usize;
        let mut placed: Vec<(u32, u32, u32, u32)> = Vec::new();
        for _ in 0..count {
            // rarer classes later: D00 half of the boxes, D40 a tenth
            let u = rng.unit();
            let class = if u < 0.5 {
                0
            } else if u < 0.75 {
                1
            } else if u < 0.9 {
                2
            } else {
                3
            };
            let bw = (w as f32 * (0.1 + 0.25 * rng.unit())) as u32;
            let bh = (h as f32 * (0.1 + 0.25 * rng.unit())) as u32;
            let x0 = (rng.unit() * (w - bw) as f32) as u32;
            let y0 = (rng.unit() * (h - bh) as f32) as u32;
            let r = (x0, y0, x0 + bw, y0 + bh);
            // rectangles do not overlap, so each box holds one colour
            if placed
                .iter()
                .any(|p| r.0 < p.2 + 8 && p.0 < r.2 + 8 && r.1 < p.3 + 8 && p.1 < r.3 + 8)
            {
                continue;
            }
            placed.push(r);
            let c = box_colour(class);
            for y in r.1..r.3 {
                for x in r.0..r.2 {
                    let k = (y as usize * w as usize + x as usize) * 3;
                    px.data[k..k + 3].copy_from_slice(&c);
                }
            }
            xml.push_str(&format!(
                "  <object>\n    <name>{}</name>\n    <pose>Unspecified</pose>\n    \
                 <truncated>0</truncated>\n    <difficult>0</difficult>\n    <bndbox>\n      \
                 <xmin>{}</xmin>\n      <ymin>{}</ymin>\n      <xmax>{}</xmax>\n      \
                 <ymax>{}</ymax>\n    </bndbox>\n  </object>\n",
                VOC_CLASSES[class], r.0, r.1, r.2, r.3
            ));
        }
        xml.push_str("</annotation>\n");
        let img = dir.join(format!("JPEGImages/{name}.{ext}"));
        painter.save(&img, px)?;
        written.push(img);
        let ann = dir.join(format!("Annotations/{name}.xml"));
        if let Some(d) = ann.parent() {
            std::fs::create_dir_all(d).map_err(Error::io(d))?;
        }
        write_text(&ann, &xml)?;
    }
    Ok(written)
}

fn synth_multilabel(dir: &Path, opts: &SynthOptions) -> Result<Vec<PathBuf>> {
    let mut painter = Painter::new(opts)?;
    let n = opts.classes.max(2) * opts.per_class;
    let mut rng = Rng(opts.seed ^ 0x6D75_6C74);
    let (mut train, mut val) = (String::new(), String::new());
    let mut written = Vec::new();
    for i in 0..n {
        let first = i % opts.classes.max(1);
        let mut hot = vec![0u8; opts.classes.max(1)];
        hot[first] = 1;
        for _ in 0..(rng.next() % 3) {
            let k = (rng.next() as usize) % hot.len();
            hot[k] = 1;
        }
        let name = format!("img_{i:05}.{}", opts.format);
        let path = dir.join("images").join(&name);
        painter.paint(&path, first, i)?;
        written.push(path);
        let cols: Vec<String> = hot.iter().map(|v| v.to_string()).collect();
        let line = format!("{i}\t{}\t{name}\n", cols.join("\t"));
        if i % 5 == 4 {
            val.push_str(&line);
        } else {
            train.push_str(&line);
        }
    }
    write_text(&dir.join("train.lst"), &train)?;
    write_text(&dir.join("val.lst"), &val)?;
    Ok(written)
}

fn synth_tinyimagenet(dir: &Path, opts: &SynthOptions) -> Result<Vec<PathBuf>> {
    let mut painter = Painter::new(&SynthOptions {
        format: "jpg".into(),
        ..opts.clone()
    })?;
    let ids: Vec<String> = (0..opts.classes)
        .map(|k| format!("n{:08}", 1_000_000 + k * 7919))
        .collect();
    let mut words = String::new();
    for (k, id) in ids.iter().enumerate() {
        words.push_str(&format!("{id}\tthing number {k}, synthetic\n"));
    }
    // the real words.txt names far more ids than wnids.txt lists
    words.push_str("n99999999\tnot one of the classes\n");
    let mut written = Vec::new();
    for (k, id) in ids.iter().enumerate() {
        for i in 0..opts.per_class {
            let p = dir.join(format!("train/{id}/images/{id}_{i}.JPEG"));
            painter.paint(&p, k, i)?;
            written.push(p);
        }
    }
    let mut ann = String::new();
    let per_val = (opts.per_class / 4).max(1);
    for v in 0..ids.len() * per_val {
        let k = v % ids.len();
        let name = format!("val_{v}.JPEG");
        let p = dir.join("val/images").join(&name);
        painter.paint(&p, k, 50_000 + v)?;
        written.push(p);
        ann.push_str(&format!("{name}\t{}\t0\t0\t10\t10\n", ids[k]));
    }
    for t in 0..ids.len() * per_val {
        let p = dir.join(format!("test/images/test_{t}.JPEG"));
        painter.paint(&p, t % ids.len(), 90_000 + t)?;
        written.push(p);
    }
    // like the real file, not in sorted order
    let listed: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    write_text(&dir.join("wnids.txt"), &(listed.join("\n") + "\n"))?;
    write_text(&dir.join("words.txt"), &words)?;
    write_text(&dir.join("val/val_annotations.txt"), &ann)?;
    Ok(written)
}

/// `DIR/class_K/img_NNNNN.EXT` and `DIR/index.csv` (`subject,classname,img`,
/// eight subjects as groups).
fn synth_classes(dir: &Path, opts: &SynthOptions) -> Result<Vec<PathBuf>> {
    let mut painter = Painter::new(opts)?;
    let mut written = Vec::new();
    let mut index = String::from("subject,classname,img\n");
    for class in 0..opts.classes {
        for i in 0..opts.per_class {
            let path = dir.join(format!("class_{class}/img_{i:05}.{}", opts.format));
            painter.paint(&path, class, i)?;
            index.push_str(&format!(
                "p{:03},class_{class},img_{i:05}.{}\n",
                i % 8,
                opts.format
            ));
            written.push(path);
        }
    }
    write_text(&dir.join("index.csv"), &index)?;
    Ok(written)
}

/// The ffmpeg filter that paints [`FRAME_CODE`] for frame numbers from `base`.
pub fn frame_code_filter(w: u32, h: u32, base: u64) -> String {
    let (cw, ch) = (w / 4, h / 8);
    let mut f = format!("drawbox=x=0:y=0:w={w}:h={}:color=black:t=fill", h / 2);
    for k in 0..16 {
        let (col, row) = (k % 4, k / 4);
        f.push_str(&format!(
            ",drawbox=x={}:y={}:w={cw}:h={ch}:color=white:t=fill:enable='mod(floor((n+{base})/{}),2)'",
            col * cw,
            row * ch,
            1u64 << k
        ));
    }
    f
}

fn synth_video(dir: &Path, opts: &SynthOptions) -> Result<Vec<PathBuf>> {
    use crate::video::Decoder as _;
    let ff = crate::video::ffmpeg::Ffmpeg::find().map_err(Error::Usage)?;
    let (w, h) = (opts.width & !1, opts.height & !1);
    if w < 32 || h < 32 || opts.fps == 0 || opts.seconds.is_nan() || opts.seconds <= 0.0 {
        return Err(Error::Usage(format!(
            "video layout: frames of at least 32x32, fps and seconds above 0 ({w}x{h}, {} fps, {} s)",
            opts.fps, opts.seconds
        )));
    }
    let frames_per_chunk = (opts.seconds * opts.fps as f64).round() as u64;
    let mut rng = Rng(opts.seed ^ 0x7669_6465);
    let classes = opts.classes.max(1);
    let mut written = Vec::new();
    let ffmpeg = std::env::var_os("IMGPREP_FFMPEG").unwrap_or_else(|| "ffmpeg".into());
    for s in 1..=opts.sessions.max(1) {
        let session = format!("session{s}");
        let vdir = dir.join("videos").join(&session);
        std::fs::create_dir_all(&vdir).map_err(Error::io(&vdir))?;
        for c in 1..=opts.chunks.max(1) {
            let base = (c as u64 - 1) * frames_per_chunk;
            let path = vdir.join(format!("chunk{c:02}.mp4"));
            let tmp = vdir.join(format!(".chunk{c:02}.mp4.part"));
            let src = format!(
                "testsrc2=s={w}x{h}:r={}:d={},format=yuv420p,{}",
                opts.fps,
                frames_per_chunk as f64 / opts.fps as f64,
                frame_code_filter(w, h, base)
            );
            let out = std::process::Command::new(&ffmpeg)
                .args([
                    "-nostdin",
                    "-hide_banner",
                    "-loglevel",
                    "error",
                    "-y",
                    "-f",
                    "lavfi",
                    "-i",
                ])
                .arg(&src)
                .args(["-frames:v", &frames_per_chunk.to_string()])
                .args(["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-g"])
                .arg((opts.fps * 2).to_string())
                .args([
                    "-bf",
                    "2",
                    "-x264-params",
                    "b-adapt=0",
                    "-pix_fmt",
                    "yuv420p",
                ])
                .args(["-f", "mp4"])
                .arg(&tmp)
                .output()
                .map_err(|e| Error::Usage(format!("cannot run ffmpeg: {e}")))?;
            if !out.status.success() {
                let _ = std::fs::remove_file(&tmp);
                return Err(Error::Usage(format!(
                    "ffmpeg could not make {}: {}",
                    path.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            // (a video already there: the same made again, or somebody's)
            match std::fs::symlink_metadata(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::rename(&tmp, &path).map_err(Error::io(&path))?
                }
                _ => {
                    let same = std::fs::read(&tmp)
                        .is_ok_and(|made| crate::output::holds_exactly(&path, &made));
                    let _ = std::fs::remove_file(&tmp);
                    if !same {
                        return Err(taken(&path));
                    }
                }
            }
            // what was made is what a reader sees
            let t = ff.probe(&path).map_err(Error::Usage)?;
            if t.len() as u64 != frames_per_chunk {
                return Err(Error::Usage(format!(
                    "{}: {} frames made, {frames_per_chunk} asked for",
                    path.display(),
                    t.len()
                )));
            }
            written.push(path);
        }
        // ranges over the session: labelled stretches of 1-4 s, some gaps
        let total = (opts.chunks.max(1) as u64 * frames_per_chunk) as f64 / opts.fps as f64;
        let mut csv = String::from("label,start,end\n");
        let mut t = 0.0f64;
        while t < total {
            let len = 1.0 + (rng.next() % 300) as f64 / 100.0;
            let end = (t + len).min(total);
            if !rng.next().is_multiple_of(5) {
                let class = 1 + (rng.next() % classes as u64) as usize;
                csv.push_str(&format!("activity_{class},{t:.3},{end:.3}\n"));
            }
            t = end;
        }
        let lpath = dir.join("labels").join(format!("{session}.csv"));
        std::fs::create_dir_all(lpath.parent().unwrap()).map_err(Error::io(&lpath))?;
        write_text(&lpath, &csv)?;
        written.push(lpath);
    }
    Ok(written)
}
