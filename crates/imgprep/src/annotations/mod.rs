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

use std::collections::BTreeMap;

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

/// Per-object attributes kept across formats.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attributes {
    /// VOC `<difficult>`.
    pub difficult: bool,
    /// VOC `<truncated>`.
    pub truncated: bool,
    /// VOC `<occluded>`.
    pub occluded: bool,
    /// VOC `<pose>` (None when empty, missing or `Unspecified`).
    pub pose: Option<String>,
    /// COCO `iscrowd`.
    pub iscrowd: bool,
    /// COCO `area` as the file gives it (segment area, not box area).
    pub area: Option<f64>,
    /// The box was computed from a polygon (labelme, COCO segmentation
    /// without bbox): flagged, since it is the polygon's bounding box.
    pub from_polygon: bool,
    /// Any other key/value kept with the object (labelme flags, VOC
    /// `<attributes>`, COCO extra keys), in a stable order.
    pub extra: BTreeMap<String, String>,
}

/// One annotated object.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// Class name as written in the file (COCO: the category's name;
    /// YOLO: the name from data.yaml / classes.txt).
    pub class: String,
    pub bbox: BBox,
    pub attrs: Attributes,
    /// Where it was declared: `file:line` (VOC, YOLO, labelme) or
    /// `file: annotation id N` (COCO).
    pub origin: String,
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
    pub origin: String,
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
    /// Objects the file declares but that cannot be read (reason, origin):
    /// counted as dropped, never silently lost.
    pub dropped: Vec<(String, String)>,
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
