//! Object annotations (boxes) and the readers of the formats people keep them
//! in: Pascal VOC XML, COCO instances JSON, YOLO txt and labelme JSON.
//!
//! A reader turns one annotation file into [`ImageAnnotation`]s and nothing
//! else: no image is opened here. Boxes stay floats in the units the file
//! gives them; the build resolves relative boxes against the decoded image
//! size, checks every box and moves it with the image's transforms.
//! Tolerated quirks (float coordinates, empty `<difficult/>`, a missing
//! `<size>`) are not errors: each is reported as a [`Quirk`] so the build can
//! count it.

pub mod coco;
pub mod labelme;
pub mod voc;
pub mod yolo;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// An axis-aligned box as `xmin, ymin, xmax, ymax`. Units depend on
/// [`ImageAnnotation::units`]; in pixels the origin is the top-left corner
/// of the top-left pixel, so a box covering a whole W x H image is
/// `0, 0, W, H`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    pub xmin: f64,
    pub ymin: f64,
    pub xmax: f64,
    pub ymax: f64,
}

impl BBox {
    pub fn width(&self) -> f64 {
        self.xmax - self.xmin
    }
    pub fn height(&self) -> f64 {
        self.ymax - self.ymin
    }
    /// From COCO's / SageMaker's `left, top, width, height`.
    pub fn from_xywh(x: f64, y: f64, w: f64, h: f64) -> BBox {
        BBox {
            xmin: x,
            ymin: y,
            xmax: x + w,
            ymax: y + h,
        }
    }
}

/// What a box's numbers are measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Units {
    /// Pixels of the image (VOC, COCO, labelme).
    #[default]
    Pixels,
    /// Fractions 0..1 of the image's width and height (YOLO).
    Relative,
}

/// Per-object attributes kept across formats. The flags are fields; what
/// few objects have (pose, area, free key/values) is one box behind
/// accessors, so an object without them costs 16 bytes here, not 64 (at
/// 130,000 objects that was 6 MB of a build's peak).
#[derive(Clone, Default)]
pub struct Attributes {
    /// VOC `<difficult>`.
    pub difficult: bool,
    /// VOC `<truncated>`.
    pub truncated: bool,
    /// VOC `<occluded>`.
    pub occluded: bool,
    /// COCO `iscrowd`.
    pub iscrowd: bool,
    /// The box was computed from a polygon (labelme, COCO segmentation
    /// without bbox): flagged, since it is the polygon's bounding box.
    pub from_polygon: bool,
    more: Option<Box<MoreAttributes>>,
}

#[derive(Clone, Default)]
struct MoreAttributes {
    pose: Option<Box<str>>,
    area: Option<f64>,
    extra: BTreeMap<String, String>,
}

static NO_EXTRA: BTreeMap<String, String> = BTreeMap::new();

impl Attributes {
    /// VOC `<pose>` (None when empty, missing or `Unspecified`).
    pub fn pose(&self) -> Option<&str> {
        self.more.as_ref().and_then(|m| m.pose.as_deref())
    }

    pub fn set_pose(&mut self, pose: Option<Box<str>>) {
        if pose.is_some() || self.more.is_some() {
            self.more_mut().pose = pose;
        }
    }

    /// COCO `area` as the file gives it (segment area, not box area).
    pub fn area(&self) -> Option<f64> {
        self.more.as_ref().and_then(|m| m.area)
    }

    pub fn set_area(&mut self, area: Option<f64>) {
        if area.is_some() || self.more.is_some() {
            self.more_mut().area = area;
        }
    }

    /// Any other key/value kept with the object (labelme flags, VOC
    /// `<attributes>`, COCO extra keys), in a stable order.
    pub fn extra(&self) -> &BTreeMap<String, String> {
        self.more.as_ref().map(|m| &m.extra).unwrap_or(&NO_EXTRA)
    }

    pub fn extra_mut(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.more_mut().extra
    }

    fn more_mut(&mut self) -> &mut MoreAttributes {
        self.more.get_or_insert_with(Box::default)
    }
}

impl PartialEq for Attributes {
    fn eq(&self, other: &Attributes) -> bool {
        (
            self.difficult,
            self.truncated,
            self.occluded,
            self.iscrowd,
            self.from_polygon,
        ) == (
            other.difficult,
            other.truncated,
            other.occluded,
            other.iscrowd,
            other.from_polygon,
        ) && self.pose() == other.pose()
            && self.area() == other.area()
            && self.extra() == other.extra()
    }
}

/// The text a derived `Debug` of all fields gave (the build's fingerprint
/// hashes annotations' debug text, so it must not change).
impl std::fmt::Debug for Attributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attributes")
            .field("difficult", &self.difficult)
            .field("truncated", &self.truncated)
            .field("occluded", &self.occluded)
            .field("pose", &self.pose())
            .field("iscrowd", &self.iscrowd)
            .field("area", &self.area())
            .field("from_polygon", &self.from_polygon)
            .field("extra", self.extra())
            .finish()
    }
}

/// One annotated object.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// Class name as written in the file (COCO: the category's name;
    /// YOLO: the name from data.yaml / classes.txt); one shared string per
    /// class (see [`ClassNames`]).
    pub class: Arc<str>,
    pub bbox: BBox,
    pub attrs: Attributes,
    /// Where it was declared: `file:line` (VOC, YOLO), `file: shapes[N]`
    /// (labelme) or `file: annotation id N` (COCO).
    pub origin: Origin,
}

/// Where something was declared, for messages: a file or folder, with a
/// line or another place in it. The file's name is one string shared by
/// everything declared in it (not a copy per object: at 50,000 images the
/// copies were 10 MB), and the text is made only when a message needs it.
#[derive(Clone, PartialEq, Eq)]
pub enum Origin {
    /// A whole file or folder.
    File(Arc<str>),
    /// `file:line` (1-based).
    Line(Arc<str>, u32),
    /// Any other place, as text (`file: annotation id N`, `file: shapes[N]`).
    Text(Box<str>),
}

impl Origin {
    /// `file:line`, the line saturating at `u32::MAX` (files are far smaller).
    pub fn line(file: &Arc<str>, line: usize) -> Origin {
        Origin::Line(file.clone(), u32::try_from(line).unwrap_or(u32::MAX))
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File(file) => f.write_str(file),
            Origin::Line(file, line) => write!(f, "{file}:{line}"),
            Origin::Text(text) => f.write_str(text),
        }
    }
}

/// As the text in quotes, exactly as when origins were strings: the build's
/// fingerprint hashes annotations' debug text, so it must not change.
impl std::fmt::Debug for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.to_string().as_str(), f)
    }
}

impl From<&str> for Origin {
    fn from(text: &str) -> Origin {
        Origin::Text(text.into())
    }
}

impl From<String> for Origin {
    fn from(text: String) -> Origin {
        Origin::Text(text.into_boxed_str())
    }
}

/// Class names, one shared string per class: objects of a class point to
/// it instead of each holding a copy.
#[derive(Debug, Default)]
pub struct ClassNames(HashSet<Arc<str>>);

impl ClassNames {
    /// The shared string of class `name`.
    pub fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(shared) = self.0.get(name) {
            return shared.clone();
        }
        let shared: Arc<str> = name.into();
        self.0.insert(shared.clone());
        shared
    }
}

/// A tolerated irregularity, counted by its `kind` and listed with where it
/// was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quirk {
    /// Short stable name used for counting, e.g. `"float coordinates"`,
    /// `"empty <difficult>"`, `"missing <size>"`, `"polygon as box"`.
    pub kind: String,
    /// `file:line` or `file` (or `file: annotation id N`).
    pub origin: String,
}

/// The annotation of one image as a file declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageAnnotation {
    /// The image's path relative to the reader's image root, `/`-separated.
    pub image: String,
    /// Width and height the file declares (VOC `<size>`, COCO `images[]`,
    /// labelme `imageWidth/imageHeight`); None when absent or zero.
    pub declared_size: Option<(u32, u32)>,
    pub units: Units,
    pub objects: Vec<Object>,
    /// The split the source itself assigns (VOC ImageSets, YOLO data.yaml), if any.
    pub split: Option<String>,
    /// Where the annotation is (`file`, or `file:line`).
    pub origin: Origin,
    /// Objects the file declares for this image that cannot be read: they
    /// are counted as dropped when the image is written, and go with it
    /// when it is not.
    pub unreadable: Lost,
}

/// An image's objects that cannot be read: a pointer when there are none,
/// as for nearly every image (held for the whole build, one per image).
#[derive(Clone, Default, PartialEq)]
#[allow(clippy::box_collection)] // (8 bytes an image instead of 24)
pub struct Lost(Option<Box<Vec<Unreadable>>>);

impl Lost {
    pub fn push(&mut self, u: Unreadable) {
        self.0.get_or_insert_with(Default::default).push(u);
    }

    pub fn into_vec(self) -> Vec<Unreadable> {
        self.0.map(|v| *v).unwrap_or_default()
    }
}

impl From<Vec<Unreadable>> for Lost {
    fn from(v: Vec<Unreadable>) -> Lost {
        Lost((!v.is_empty()).then(|| Box::new(v)))
    }
}

impl std::ops::Deref for Lost {
    type Target = [Unreadable];
    fn deref(&self) -> &[Unreadable] {
        self.0.as_deref().map_or(&[], |v| v.as_slice())
    }
}

impl std::fmt::Debug for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// An object of an image that its file declares but that cannot be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    pub reason: String,
    /// `file:line` or another place in the file.
    pub origin: String,
    /// Its class, when the file names one ("" when not).
    pub class: String,
}

impl Unreadable {
    pub fn new(reason: String, origin: String, class: impl Into<String>) -> Unreadable {
        Unreadable {
            reason,
            origin,
            class: class.into(),
        }
    }
}

/// A reader's result: annotations, counted quirks, and per-object problems
/// that were dropped with a reason (e.g. a YOLO class id outside the names).
#[derive(Debug, Default)]
pub struct Parsed {
    /// The folder the images' paths are relative to (VOC `JPEGImages/`,
    /// the COCO `images` setting, YOLO `images/`, the labelme folder).
    pub image_root: std::path::PathBuf,
    pub images: Vec<ImageAnnotation>,
    pub quirks: Vec<Quirk>,
    /// Annotations that belong to no usable image (reason, origin): a file
    /// that cannot be read, an image that is missing, a COCO annotation of
    /// no known image. An image's own unreadable objects travel with it, in
    /// `ImageAnnotation::unreadable`.
    pub dropped: Vec<(String, String)>,
    /// Images the files name that cannot be used, with whatever objects
    /// they hold (reason, origin): counted apart from objects.
    pub dropped_images: Vec<(String, String)>,
    /// Class names the file declares in order (COCO categories, YOLO
    /// names, labelme/VOC class files), if it declares any.
    pub declared_classes: Vec<String>,
}

/// A file that cannot be read at all: one line naming the file (and line).
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct ParseError {
    pub origin: String,
    pub message: String,
}

impl ParseError {
    pub fn new(origin: impl Into<String>, message: impl Into<String>) -> Self {
        ParseError {
            origin: origin.into(),
            message: message.into(),
        }
    }
}

// ---------------------------------------------------------------------------
// Shared by the readers: bounded reads, folder walks, paths, numbers.

/// Largest annotation file read whole (VOC XML, labelme JSON, a YOLO label
/// file, an ImageSets list, data.yaml, classes.txt): a larger one is refused.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// Largest COCO JSON: it is streamed into compact objects (polygons are
/// reduced to their extent as they are read), and the canonical
/// `instances_train2017.json` alone is 448 MB, so its bound is higher.
pub const MAX_COCO_BYTES: u64 = 2 << 30;

/// Image file extensions (compared without case) a reader looks for when it
/// has to find an image by name, in order of preference.
pub const IMAGE_EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "bmp", "webp", "tif", "tiff"];

/// Whether a file name ends in one of [`IMAGE_EXTENSIONS`].
pub fn is_image_name(name: &str) -> bool {
    image_ext_rank(name).is_some()
}

/// The position of a file name's extension in [`IMAGE_EXTENSIONS`].
fn image_ext_rank(name: &str) -> Option<usize> {
    let (_, ext) = name.rsplit_once('.')?;
    IMAGE_EXTENSIONS
        .iter()
        .position(|e| e.eq_ignore_ascii_case(ext))
}

/// A path as shown in origins and messages.
pub(crate) fn show(path: &Path) -> String {
    path.display().to_string()
}

fn io_error(path: &Path, what: &str, e: &std::io::Error) -> ParseError {
    ParseError::new(show(path), format!("cannot {what}: {e}"))
}

/// Opens a regular file for reading, refusing one larger than `limit`
/// (and reading at most `limit` bytes should it grow meanwhile).
pub(crate) fn open_limited(
    path: &Path,
    limit: u64,
) -> Result<std::io::Take<std::fs::File>, ParseError> {
    let f = crate::files::open_regular(path).map_err(|e| io_error(path, "read it", &e))?;
    let len = f
        .metadata()
        .map_err(|e| io_error(path, "read it", &e))?
        .len();
    if len > limit {
        return Err(ParseError::new(
            show(path),
            format!(
                "is {} MiB, over the {} MiB limit for an annotation file (refused)",
                len >> 20,
                limit >> 20
            ),
        ));
    }
    Ok(f.take(limit))
}

/// A whole text file (UTF-8, a leading byte-order mark dropped), at most
/// `limit` bytes.
pub(crate) fn read_text(path: &Path, limit: u64) -> Result<String, ParseError> {
    let mut buf = Vec::new();
    open_limited(path, limit)?
        .read_to_end(&mut buf)
        .map_err(|e| io_error(path, "read it", &e))?;
    if buf.starts_with(b"\xEF\xBB\xBF") {
        buf.drain(..3);
    }
    String::from_utf8(buf).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
        ParseError::new(
            format!("{}:{line}", show(path)),
            "is not UTF-8 text (save it as UTF-8)",
        )
    })
}

/// Whether the annotation file `file` (a path as shown) is named after
/// the image `image` (`a/b.xml` for `x/b.jpg`): its own file, not a copy
/// left under another name.
fn named_after(file: &str, image: &str) -> bool {
    Path::new(file).file_stem() == Path::new(image).file_stem()
}

/// Which annotation file each image takes where several files can name
/// one image (VOC's `<filename>`, labelme's `imagePath`): the first,
/// unless only a later one is named after the image (a stray copy that
/// names it does not outrank the image's own file). The file that loses is
/// noted in `dropped_images`.
#[derive(Default)]
pub(crate) struct Owners(HashMap<String, (String, usize)>);

impl Owners {
    /// `file` annotates `image`; `next` is where a new annotation goes in
    /// the reader's list. Some(place): put it there (`next`, or the place
    /// of the copy it takes over); None: it is dropped.
    pub fn claim(
        &mut self,
        image: &str,
        file: &str,
        next: usize,
        dropped_images: &mut Vec<(String, String)>,
    ) -> Option<usize> {
        match self.0.get_mut(image) {
            None => {
                self.0.insert(image.to_string(), (file.to_string(), next));
                Some(next)
            }
            Some((first, at)) if named_after(file, image) && !named_after(first, image) => {
                let stray = std::mem::replace(first, file.to_string());
                dropped_images.push((
                    format!("{image} is annotated by {file}, named after it"),
                    stray,
                ));
                Some(*at)
            }
            Some((first, _)) => {
                dropped_images.push((
                    format!("{image} is already annotated by {first}"),
                    file.to_string(),
                ));
                None
            }
        }
    }
}

/// Whether a path names an existing regular file (following links).
pub(crate) fn is_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

/// The regular files directly in `dir` (links to files included), by name,
/// sorted; empty when `dir` does not exist.
pub(crate) fn list_dir(dir: &Path) -> Result<Vec<String>, ParseError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(dir, "list the folder", &e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| io_error(dir, "list the folder", &e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        // the listing's own file type, where it has one: a `stat` of every
        // entry was 0.2 s of a 50,000-image VOC set's catalog; links are
        // followed to see what they name
        let file = match entry.file_type() {
            Ok(t) if t.is_file() => true,
            Ok(t) if t.is_dir() => false,
            _ => is_file(&entry.path()),
        };
        if file {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// Every regular file under `root` whose name `keep` accepts, sorted by
/// path. Hidden files and folders (a name starting with `.`) are skipped,
/// and linked folders are not entered (no cycles); linked files count.
pub(crate) fn walk_files(
    root: &Path,
    keep: &dyn Fn(&str) -> bool,
) -> Result<Vec<PathBuf>, ParseError> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let rd = std::fs::read_dir(&dir).map_err(|e| io_error(&dir, "list the folder", &e))?;
        for entry in rd {
            let entry = entry.map_err(|e| io_error(&dir, "list the folder", &e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            let kind = entry
                .file_type()
                .map_err(|e| io_error(&entry.path(), "read it", &e))?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if keep(name)
                && (kind.is_file() || !std::fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()))
            {
                // files, and what only looks like one (a FIFO, a device, a
                // dangling link): reading those fails with a reason, said
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `path` relative to `base` as a `/`-separated string, when it is inside.
pub(crate) fn rel_slash(base: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(base).ok()?;
    let parts: Option<Vec<&str>> = rel
        .components()
        .map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    let parts = parts?;
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// A relative path written in a file (either separator), with `.` and `..`
/// resolved: `None` when it is absolute (`/x`, `C:\x`, `\\server`), empty,
/// or leaves the folder it is relative to.
pub(crate) fn normalize_rel(p: &str) -> Option<String> {
    let p = p.replace('\\', "/");
    let b = p.as_bytes();
    if p.starts_with('/') || (b.len() >= 2 && b[1] == b':' && b[0].is_ascii_alphabetic()) {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// A number as text (surrounding blanks allowed); `None` when it is not a
/// finite decimal number (`nan`, `inf` and empty text are refused).
pub(crate) fn parse_num(s: &str) -> Option<f64> {
    let s = s.trim();
    let ok = !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'-' | b'+' | b'e' | b'E'));
    ok.then(|| s.parse::<f64>().ok())
        .flatten()
        .filter(|v| v.is_finite())
}

/// One folder's images by stem (`a` for `a.jpg`), preferring the order of
/// [`IMAGE_EXTENSIONS`] when several share a stem.
pub(crate) struct ImagesByStem(HashMap<String, (usize, String)>);

impl ImagesByStem {
    pub fn new(names: Vec<String>) -> Self {
        let mut m: HashMap<String, (usize, String)> = HashMap::new();
        for n in names {
            let (Some(rank), Some((stem, _))) = (image_ext_rank(&n), n.rsplit_once('.')) else {
                continue;
            };
            let stem = stem.to_string();
            match m.get(&stem) {
                Some((r, other)) if (*r, other.as_str()) <= (rank, n.as_str()) => {}
                _ => {
                    m.insert(stem, (rank, n));
                }
            }
        }
        ImagesByStem(m)
    }

    /// The file name of the image whose stem is `stem`.
    pub fn get(&self, stem: &str) -> Option<&str> {
        self.0.get(stem).map(|(_, n)| n.as_str())
    }
}

/// Visitor methods returning `$v` for every JSON scalar, and `$null` (by
/// default `$v`) for `null`: the readers' tolerant visitors decide lists
/// and objects themselves and take anything else as unreadable.
macro_rules! scalars_as {
    ($t:ty, $v:expr) => {
        $crate::annotations::scalars_as!($t, $v, null = $v);
    };
    ($t:ty, $v:expr, null = $null:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<$t, E> {
            Ok($v)
        }
        fn visit_i64<E>(self, _: i64) -> Result<$t, E> {
            Ok($v)
        }
        fn visit_u64<E>(self, _: u64) -> Result<$t, E> {
            Ok($v)
        }
        fn visit_f64<E>(self, _: f64) -> Result<$t, E> {
            Ok($v)
        }
        fn visit_str<E>(self, _: &str) -> Result<$t, E> {
            Ok($v)
        }
        fn visit_unit<E>(self) -> Result<$t, E> {
            Ok($null)
        }
        fn visit_none<E>(self) -> Result<$t, E> {
            Ok($null)
        }
    };
}
pub(crate) use scalars_as;

/// Quirks of one file where each kind is reported once, at its first place.
#[derive(Default)]
pub(crate) struct QuirksOnce {
    pub list: Vec<Quirk>,
    seen: BTreeSet<String>,
}

impl QuirksOnce {
    pub fn add(&mut self, kind: &str, origin: impl Into<String>) {
        if self.seen.insert(kind.to_string()) {
            self.list.push(Quirk {
                kind: kind.to_string(),
                origin: origin.into(),
            });
        }
    }
}

/// `Quirk` from a kind and an origin.
pub(crate) fn quirk(kind: &str, origin: impl Into<String>) -> Quirk {
    Quirk {
        kind: kind.to_string(),
        origin: origin.into(),
    }
}

/// The real annotation files in `../shared/data` (or `IMGPREP_SHARED_DATA`)
/// for tests: `None` (the test is skipped with a message) when absent,
/// except under `CI=true`, where a missing folder fails the test.
#[cfg(test)]
pub(crate) fn shared_data() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("IMGPREP_SHARED_DATA").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")),
    ];
    for c in candidates.into_iter().flatten() {
        if c.join("detection").is_dir() {
            return Some(c);
        }
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("../shared/data/detection is missing under CI=true");
    }
    eprintln!("SKIPPED: ../shared/data/detection not found (set IMGPREP_SHARED_DATA)");
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_rel_resolves_and_refuses_escapes() {
        assert_eq!(normalize_rel("a\\b/./c.jpg").as_deref(), Some("a/b/c.jpg"));
        assert_eq!(normalize_rel("a/../b.jpg").as_deref(), Some("b.jpg"));
        assert_eq!(normalize_rel("../b.jpg"), None);
        assert_eq!(normalize_rel("/abs/b.jpg"), None);
        assert_eq!(normalize_rel("C:\\x\\b.jpg"), None);
        assert_eq!(normalize_rel(""), None);
    }

    #[test]
    fn numbers_are_finite_decimals() {
        assert_eq!(parse_num(" 292.33 "), Some(292.33));
        assert_eq!(parse_num("1e2"), Some(100.0));
        assert_eq!(parse_num("-3"), Some(-3.0));
        for bad in ["", "nan", "inf", "1e999", "0x10", "1,5", "12px"] {
            assert_eq!(parse_num(bad), None, "{bad}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn listings_take_files_and_links_to_files_only() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::write(d.join("b.jpg"), b"x").unwrap();
        std::fs::create_dir(d.join("sub.jpg")).unwrap();
        std::os::unix::fs::symlink(d.join("b.jpg"), d.join("a.jpg")).unwrap();
        std::os::unix::fs::symlink(d.join("sub.jpg"), d.join("c.jpg")).unwrap();
        std::os::unix::fs::symlink(d.join("gone.jpg"), d.join("d.jpg")).unwrap();
        assert_eq!(list_dir(d).unwrap(), ["a.jpg", "b.jpg"]);
        let names: Vec<String> = walk_files(d, &|n| n.ends_with(".jpg"))
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        // a dangling link is kept by the walk (reading it fails with a reason)
        assert_eq!(names, ["a.jpg", "b.jpg", "d.jpg"]);
    }

    #[test]
    fn images_by_stem_prefer_jpg_and_ignore_other_files() {
        let names: Vec<String> = ["a.PNG", "a.jpg", "a.txt", "ab.jpg", "a.b.jpg", "b.txt"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let ix = ImagesByStem::new(names);
        assert_eq!(ix.get("a"), Some("a.jpg"));
        assert_eq!(ix.get("a.b"), Some("a.b.jpg"));
        assert_eq!(ix.get("ab"), Some("ab.jpg"));
        assert_eq!(ix.get("b"), None);
        assert_eq!(ix.get("c"), None);
    }

    #[test]
    fn oversized_files_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.xml");
        std::fs::write(&p, vec![b' '; 2048]).unwrap();
        let e = open_limited(&p, 1024).unwrap_err().to_string();
        assert!(e.contains("big.xml") && e.contains("limit"), "{e}");
        std::fs::write(&p, b"ok\n\xff\n").unwrap();
        let e = read_text(&p, 1024).unwrap_err().to_string();
        assert!(e.contains("big.xml:2") && e.contains("UTF-8"), "{e}");
    }
}
