//! Video: frame tables, decoding behind one interface ([`Decoder`]), and
//! labels from time or frame ranges ([`ranges`]).
//!
//! Numbering rule: a chunk's frames are numbered from 0 in presentation
//! order (sorted pts), after the container's edit list (packets the demuxer
//! marks as discarded are not frames). A frame's chunk time is its pts minus
//! the pts of the chunk's first presented frame. Sessions (several chunks
//! of one recording) number frames on continuously; session time is the sum
//! of the previous chunks' durations plus the chunk time (see
//! [`TimeReference`]).

pub mod ffmpeg;
pub mod ranges;

use std::path::Path;

/// One chunk's presented frames, from its packets (no decoding).
#[derive(Debug, Clone, PartialEq)]
pub struct FrameTable {
    pub codec: String,
    /// The video stream's time base (numerator, denominator).
    pub time_base: (i64, i64),
    /// Every presented frame's pts, in presentation order (sorted), in
    /// `time_base` units.
    pub pts: Vec<i64>,
    /// Duration of the last frame (`time_base` units; 0 when unknown).
    pub last_duration: i64,
    /// The container's start time and duration in seconds, as the demuxer
    /// reports them (audio included).
    pub container_start: f64,
    pub container_duration: Option<f64>,
    /// Upright frame size (coded size turned by the declared rotation).
    pub width: u32,
    pub height: u32,
    /// Declared display rotation in degrees (0, 90, 180, 270).
    pub rotation: i32,
    /// The upright frame's sample (pixel) aspect ratio, width:height
    /// (1:1 when square or not declared).
    pub sar: (u32, u32),
    /// With `pixel_aspect = "display"`: the decoded size, stretched to
    /// `width` x `height` before anything else.
    pub stretched_from: Option<(u32, u32)>,
}

impl FrameTable {
    /// The size players show a frame at: the sample aspect ratio applied by
    /// growing the smaller side (no pixel lost), when it is not 1:1.
    pub fn display_size(&self) -> (u32, u32) {
        let (n, d) = self.sar;
        let grow =
            |v: u32, a: u32, b: u32| ((v as u64 * a as u64 + b as u64 / 2) / b as u64) as u32;
        match n.cmp(&d) {
            std::cmp::Ordering::Greater => (grow(self.width, n, d), self.height),
            std::cmp::Ordering::Less => (self.width, grow(self.height, d, n)),
            std::cmp::Ordering::Equal => (self.width, self.height),
        }
    }

    pub fn len(&self) -> usize {
        self.pts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pts.is_empty()
    }

    fn seconds(&self, ticks: i64) -> f64 {
        ticks as f64 * self.time_base.0 as f64 / self.time_base.1 as f64
    }

    /// Seconds from the chunk's first presented frame to frame `i`.
    pub fn time(&self, i: usize) -> f64 {
        self.seconds(self.pts[i] - self.pts[0])
    }

    /// Frame `i`'s pts in seconds (the stream's own clock).
    pub fn pts_time(&self, i: usize) -> f64 {
        self.seconds(self.pts[i])
    }

    /// From the first presented frame to the end of the last one.
    pub fn video_duration(&self) -> f64 {
        match (self.pts.first(), self.pts.last()) {
            (Some(a), Some(b)) => {
                let last = if self.last_duration > 0 {
                    self.last_duration
                } else if self.pts.len() > 1 {
                    // the previous frame's spacing
                    b - self.pts[self.pts.len() - 2]
                } else {
                    0
                };
                self.seconds(b - a + last)
            }
            _ => 0.0,
        }
    }

    /// Seconds from the container's start to the first presented frame (the
    /// shift ffmpeg's concat demuxer keeps).
    pub fn lead_in(&self) -> f64 {
        self.pts
            .first()
            .map_or(0.0, |&p| (self.seconds(p) - self.container_start).max(0.0))
    }

    /// The typical frame spacing (median), in seconds.
    pub fn frame_interval(&self) -> f64 {
        let mut d: Vec<i64> = self.pts.windows(2).map(|w| w[1] - w[0]).collect();
        if d.is_empty() {
            return self.seconds(self.last_duration);
        }
        d.sort_unstable();
        self.seconds(d[d.len() / 2])
    }
}

/// What a frame of a video with non-square pixels becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelAspect {
    /// Stretched to the shape players show (the smaller side of the
    /// sample aspect ratio grown), before any crop or resize.
    Display,
    /// The stored pixels as they are (OpenCV's and decord's frames).
    Stored,
}

/// How session time runs across chunk joins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeReference {
    /// Each chunk starts where the previous chunk's video ends (its last
    /// frame's time plus duration): the frames' own timeline, no gaps.
    #[default]
    Video,
    /// Each chunk starts at the sum of the previous chunks' container
    /// durations, as ffmpeg's concat demuxer joins them: the timeline of a
    /// concatenated file, for labels made on one (a chunk whose audio runs
    /// longer than its video leaves a gap).
    Concat,
}

/// What the decoder hands over: frames of `width` x `height`, cut to
/// `crop` (in upright source pixels) and scaled, in that order, in `layout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameShape {
    pub crop: Option<(u32, u32, u32, u32)>,
    pub width: u32,
    pub height: u32,
    pub layout: FrameLayout,
}

/// The bytes of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameLayout {
    /// Interleaved 8-bit RGB.
    Rgb24,
    /// Full-range BT.601 YUV 4:2:0 planes (JPEG's colour space; even sizes
    /// only): JPEG output needs no colour conversion at all.
    Yuvj420,
}

impl FrameShape {
    pub fn frame_bytes(&self) -> usize {
        let px = self.width as usize * self.height as usize;
        match self.layout {
            FrameLayout::Rgb24 => px * 3,
            FrameLayout::Yuvj420 => px * 3 / 2,
        }
    }
}

/// Takes one decoded frame: its chunk frame number and RGB bytes.
pub type FrameSink<'a> = dyn FnMut(u32, &[u8]) -> Result<(), String> + 'a;

/// A video decoder: a frame table from a chunk's packets, and the chosen
/// frames' pixels in one sequential pass. The ffmpeg programs are the one
/// implementation; a linked libav one could sit beside it.
pub trait Decoder: Send + Sync {
    /// What decodes, for the manifest (`ffmpeg 5.1.9-0+deb12u1`).
    fn describe(&self) -> String;
    fn probe(&self, path: &Path) -> Result<FrameTable, String>;
    /// Decodes `path` once, handing `on_frame` each frame of `frames`
    /// (sorted chunk frame numbers) as bytes of `shape` (its layout), in order. Fails
    /// when the decoded frames do not match `table` one for one.
    fn decode(
        &self,
        path: &Path,
        table: &FrameTable,
        frames: &[u32],
        shape: &FrameShape,
        on_frame: &mut FrameSink,
    ) -> Result<(), String>;
}

/// Frame numbers as runs `(first, last, step)`: consecutive picks with one
/// spacing share a run.
pub fn runs(frames: &[u32]) -> Vec<(u32, u32, u32)> {
    let mut out: Vec<(u32, u32, u32)> = Vec::new();
    for &f in frames {
        match out.last_mut() {
            Some((a, b, step)) if *a == *b && f > *b => {
                *step = f - *b;
                *b = f;
            }
            Some((_, b, step)) if f > *b && f - *b == *step => *b = f,
            _ => out.push((f, f, 1)),
        }
    }
    out
}

/// Natural order for file names: digit runs compare as numbers
/// (`chunk2` before `chunk10`).
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return a.cmp(b),
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let n = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let m = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (p, q) = (&x[..n], &y[..m]);
                let strip = |s: &[u8]| -> usize { s.iter().take_while(|&&c| c == b'0').count() };
                let (p2, q2) = (&p[strip(p)..], &q[strip(q)..]);
                let ord = p2.len().cmp(&q2.len()).then_with(|| p2.cmp(q2));
                if ord != Ordering::Equal {
                    return ord;
                }
                x = &x[n..];
                y = &y[m..];
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shown_size_grows_the_smaller_side() {
        let t = |w, h, sar| FrameTable {
            codec: "h264".into(),
            time_base: (1, 25),
            pts: vec![0],
            last_duration: 1,
            container_start: 0.0,
            container_duration: None,
            width: w,
            height: h,
            rotation: 0,
            sar,
            stretched_from: None,
        };
        assert_eq!(t(160, 120, (2, 1)).display_size(), (320, 120));
        // DV NTSC: 720x480 at 8:9 is shown 720x540
        assert_eq!(t(720, 480, (8, 9)).display_size(), (720, 540));
        // rounded to the nearest pixel: 101 x 4/3 = 134.67
        assert_eq!(t(101, 50, (4, 3)).display_size(), (135, 50));
        assert_eq!(t(64, 48, (1, 1)).display_size(), (64, 48));
    }

    #[test]
    fn runs_group_strides() {
        assert_eq!(runs(&[]), vec![]);
        assert_eq!(runs(&[3]), vec![(3, 3, 1)]);
        assert_eq!(runs(&[0, 1, 2, 3, 7, 8]), vec![(0, 3, 1), (7, 8, 1)]);
        assert_eq!(runs(&[0, 5, 10, 15, 16]), vec![(0, 15, 5), (16, 16, 1)]);
        let picks = [2, 4, 6, 9, 12, 13, 40];
        let expanded: Vec<u32> = runs(&picks)
            .iter()
            .flat_map(|&(a, b, s)| (a..=b).step_by(s as usize))
            .collect();
        assert_eq!(expanded, picks);
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["chunk10.mp4", "chunk2.mp4", "chunk1.mp4", "chunk02b.mp4"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            ["chunk1.mp4", "chunk2.mp4", "chunk02b.mp4", "chunk10.mp4"]
        );
    }

    #[test]
    fn table_times() {
        let t = FrameTable {
            codec: "h264".into(),
            time_base: (1, 90000),
            pts: vec![3000, 6000, 9000, 15000],
            last_duration: 3000,
            container_start: 0.0,
            container_duration: Some(0.25),
            width: 4,
            height: 4,
            rotation: 0,
            sar: (1, 1),
            stretched_from: None,
        };
        assert_eq!(t.time(0), 0.0);
        assert!((t.time(3) - 0.13333).abs() < 1e-4);
        assert!((t.video_duration() - 0.16667).abs() < 1e-4);
        assert!((t.lead_in() - 0.03333).abs() < 1e-4);
        assert!((t.frame_interval() - 0.03333).abs() < 1e-4);
    }
}
