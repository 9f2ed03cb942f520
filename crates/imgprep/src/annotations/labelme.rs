//! labelme JSON: one file per image with `shapes`, `imagePath`,
//! `imageWidth`, `imageHeight` (and often the image itself, base64, in
//! `imageData`, which is skipped unread).
//!
//! Quirks: "not a labelme file" (a JSON file without `shapes` and
//! `imagePath`, per file), "absolute imagePath, file name used" (per
//! file), "missing image size" / "non-integer image size" / "unreadable
//! image size" (per file), "polygon as box", "circle as box", "rectangle
//! with more than 2 points" (per shape).

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::Path;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::coco::{declared_size, Scalar};
use super::voc::UNREADABLE;
use super::{
    normalize_rel, open_limited, quirk, rel_slash, show, walk_files, Attributes, BBox,
    ImageAnnotation, Object, ParseError, Parsed, Units, Unreadable, MAX_FILE_BYTES,
};

/// Reads every labelme `*.json` under `root` (recursive, sorted; hidden
/// folders skipped). `image_root` is root; `image` is the JSON's folder
/// joined with `imagePath` (either separator; an `imagePath` that leaves
/// root drops the file with a reason, an absolute one is replaced by its
/// file name beside the JSON, with a quirk). Images are sorted by `image`;
/// a second JSON file for one image is dropped.
///
/// Shapes: `rectangle` -> the box of its points in any drag order;
/// `polygon` -> the box of its points (`from_polygon`); `circle` (centre,
/// a point on the rim) -> the circle's bounding square (`from_polygon`,
/// and `shape=circle` in `extra`); `line`, `linestrip`, `point`, `points`
/// -> dropped ("a line has no area"); `mask` (a bitmap) -> dropped, said so. Shapes sharing a label and a
/// `group_id` are one object: one box around them (see `merge_groups`).
/// `group_id`, the `flags` that are true (`flag:NAME=true`) and a non-empty `description` go to
/// `attrs.extra`. Labels are trimmed; a shape without a label is dropped.
/// Origins are `file: shapes[i]` (JSON positions are not kept).
/// `declared_classes` stays empty.
pub fn read(root: &Path) -> Result<Parsed, ParseError> {
    if !root.is_dir() {
        return Err(ParseError::new(show(root), "is not a folder"));
    }
    let files = walk_files(root, &|n| n.to_ascii_lowercase().ends_with(".json"))?;
    let mut out = Parsed {
        image_root: root.to_path_buf(),
        ..Parsed::default()
    };
    let mut owners = super::Owners::default();
    for f in &files {
        let shown = show(f);
        let raw = match read_file(f, &shown) {
            Ok(raw) => raw,
            // one file that cannot be read or parsed is one unreadable item
            Err(e) => {
                out.dropped
                    .push((format!("{UNREADABLE}: {}", e.message), e.origin));
                continue;
            }
        };
        let (Some(shapes), Some(image_path)) = (raw.shapes, raw.image_path) else {
            out.quirks.push(quirk("not a labelme file", &shown));
            continue;
        };
        let Some(shapes) = shapes else {
            out.dropped
                .push((format!("{UNREADABLE}: shapes is not a list"), shown.clone()));
            continue;
        };
        let dir = rel_slash(root, f.parent().unwrap_or(root)).unwrap_or_default();
        let Some(image) = image_for(&dir, &image_path, &shown, &mut out) else {
            continue;
        };
        let next = out.images.len();
        let Some(at) = owners.claim(&image, &shown, next, &mut out.dropped_images) else {
            continue;
        };
        let (size, q) = declared_size(raw.width.as_ref(), raw.height.as_ref());
        if let Some(kind) = q {
            out.quirks.push(quirk(kind, &shown));
        }
        let mut ann = ImageAnnotation {
            image,
            declared_size: size,
            units: Units::Pixels,
            objects: Vec::new(),
            split: None,
            origin: shown.clone().into(),
            unreadable: Default::default(),
        };
        for (i, s) in shapes.into_iter().enumerate() {
            let origin = format!("{shown}: shapes[{i}]");
            let class = label_of(&s);
            match shape(s, &class, &origin, &mut out) {
                Ok(o) => ann.objects.push(o),
                Err(reason) => ann.unreadable.push(Unreadable::new(reason, origin, class)),
            }
        }
        merge_groups(&mut ann.objects, &mut out);
        match at == next {
            true => out.images.push(ann),
            false => out.images[at] = ann,
        }
    }
    out.images.sort_by(|a, b| a.image.cmp(&b.image));
    Ok(out)
}

fn read_file(f: &Path, shown: &str) -> Result<RawFile, ParseError> {
    let mut buf = Vec::new();
    open_limited(f, MAX_FILE_BYTES)?
        .read_to_end(&mut buf)
        .map_err(|e| ParseError::new(shown, format!("cannot read it: {e}")))?;
    let text = buf.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&buf);
    serde_json::from_slice::<RawFile>(text).map_err(|e| {
        ParseError::new(
            format!("{shown}:{}", e.line()),
            format!("unreadable JSON: {e}"),
        )
    })
}

/// The image a file names, relative to root; `None` (dropped) when it
/// leaves root or is empty.
fn image_for(dir: &str, image_path: &Scalar, shown: &str, out: &mut Parsed) -> Option<String> {
    let p = match image_path {
        Scalar::Str(s) if !s.trim().is_empty() => s.trim().replace('\\', "/"),
        _ => {
            out.dropped_images
                .push(("no imagePath".into(), shown.to_string()));
            return None;
        }
    };
    let b = p.as_bytes();
    let absolute = p.starts_with('/') || (b.len() >= 2 && b[1] == b':');
    let rel = if absolute {
        out.quirks
            .push(quirk("absolute imagePath, file name used", shown));
        p.rsplit('/').next().unwrap_or_default().to_string()
    } else {
        p.clone()
    };
    let joined = if dir.is_empty() {
        rel
    } else {
        format!("{dir}/{rel}")
    };
    match normalize_rel(&joined) {
        Some(image) => Some(image),
        None => {
            out.dropped_images.push((
                format!("imagePath {p:?} leaves the folder being read"),
                shown.to_string(),
            ));
            None
        }
    }
}

/// The keys of a labelme file that are read; `imageData` and the rest are
/// skipped unread. A JSON document that is not an object reads as one
/// without keys (not a labelme file).
#[derive(Default)]
struct RawFile {
    /// `Some(None)`: present but not a list.
    shapes: Option<Option<Vec<RawShape>>>,
    image_path: Option<Scalar>,
    width: Option<Scalar>,
    height: Option<Scalar>,
}

impl<'de> Deserialize<'de> for RawFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawFile;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON document")
            }
            super::scalars_as!(RawFile, RawFile::default());
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<RawFile, A::Error> {
                let mut r = RawFile::default();
                while let Some(key) = a.next_key::<String>()? {
                    match key.as_str() {
                        "shapes" => r.shapes = Some(a.next_value::<Shapes>()?.0),
                        "imagePath" => r.image_path = Some(a.next_value()?),
                        "imageWidth" => r.width = Some(a.next_value()?),
                        "imageHeight" => r.height = Some(a.next_value()?),
                        _ => {
                            a.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(r)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<RawFile, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(RawFile::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// `shapes`: the list, or `None` when it is something else.
struct Shapes(Option<Vec<RawShape>>);

impl<'de> Deserialize<'de> for Shapes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shapes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of shapes")
            }
            super::scalars_as!(Shapes, Shapes(None));
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Shapes, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = a.next_element::<RawShape>()? {
                    v.push(s);
                }
                Ok(Shapes(Some(v)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Shapes, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Shapes(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// One shape; anything unexpected inside is kept as `None`/`Other` so the
/// shape alone is dropped.
#[derive(Default)]
struct RawShape {
    label: Option<Scalar>,
    points: Option<Points>,
    shape_type: Option<Scalar>,
    group_id: Option<Scalar>,
    flags: Vec<String>,
    description: Option<Scalar>,
    /// Not an object at all.
    not_object: bool,
}

/// `points`: `[[x, y], ...]`, or `None` when anything in it is not a pair
/// of numbers.
struct Points(Option<Vec<(f64, f64)>>);

impl<'de> Deserialize<'de> for Points {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Points;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("points")
            }
            super::scalars_as!(Points, Points(None));
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Points, A::Error> {
                let mut pts = Some(Vec::new());
                while let Some(p) = a.next_element::<Pair>()? {
                    match (p.0, pts.as_mut()) {
                        (Some(xy), Some(v)) => v.push(xy),
                        _ => pts = None,
                    }
                }
                Ok(Points(pts))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Points, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Points(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// `[x, y]`, or `None`.
struct Pair(Option<(f64, f64)>);

impl<'de> Deserialize<'de> for Pair {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pair;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a point")
            }
            super::scalars_as!(Pair, Pair(None));
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Pair, A::Error> {
                let mut v = [0.0; 2];
                let mut n = 0;
                let mut ok = true;
                while let Some(s) = a.next_element::<Scalar>()? {
                    match s.num().filter(|x| x.is_finite()) {
                        Some(x) if n < 2 => v[n] = x,
                        _ => ok = false,
                    }
                    n += 1;
                }
                Ok(Pair((ok && n == 2).then_some((v[0], v[1]))))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Pair, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Pair(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawShape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawShape;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a shape")
            }
            super::scalars_as!(RawShape, RawShape::not_object());
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<RawShape, A::Error> {
                let mut s = RawShape::default();
                while let Some(key) = a.next_key::<String>()? {
                    match key.as_str() {
                        "label" => s.label = Some(a.next_value()?),
                        "points" => s.points = Some(a.next_value()?),
                        "shape_type" => s.shape_type = Some(a.next_value()?),
                        "group_id" => s.group_id = Some(a.next_value()?),
                        "description" => s.description = Some(a.next_value()?),
                        "flags" => s.flags = a.next_value::<TrueFlags>()?.0,
                        _ => {
                            a.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(s)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<RawShape, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(RawShape::not_object())
            }
        }
        d.deserialize_any(V)
    }
}

impl RawShape {
    fn not_object() -> RawShape {
        RawShape {
            not_object: true,
            ..RawShape::default()
        }
    }
}

/// The names of the flags set to `true`, sorted.
struct TrueFlags(Vec<String>);

impl<'de> Deserialize<'de> for TrueFlags {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TrueFlags;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("flags")
            }
            super::scalars_as!(TrueFlags, TrueFlags(Vec::new()));
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<TrueFlags, A::Error> {
                let mut set = Vec::new();
                while let Some((k, v)) = a.next_entry::<String, Scalar>()? {
                    if v == Scalar::Bool(true) {
                        set.push(k);
                    }
                }
                set.sort();
                Ok(TrueFlags(set))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<TrueFlags, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(TrueFlags(Vec::new()))
            }
        }
        d.deserialize_any(V)
    }
}

fn bounds(pts: &[(f64, f64)]) -> BBox {
    let mut b = BBox {
        xmin: f64::INFINITY,
        ymin: f64::INFINITY,
        xmax: f64::NEG_INFINITY,
        ymax: f64::NEG_INFINITY,
    };
    for &(x, y) in pts {
        b.xmin = b.xmin.min(x);
        b.ymin = b.ymin.min(y);
        b.xmax = b.xmax.max(x);
        b.ymax = b.ymax.max(y);
    }
    b
}

/// One shape as an object, or why it is dropped.
/// Shapes with one label and one `group_id` are one object drawn in parts
/// (an object split by an occluder, a polygon with a hole): one box around
/// them all, as labelme's own labelme2coco makes one instance of them. The
/// first part keeps its place and attributes; each part merged into it is
/// a quirk. Parts with coordinates that are not numbers stay apart, for the
/// box checks to drop.
fn merge_groups(objects: &mut Vec<Object>, out: &mut Parsed) {
    use std::collections::hash_map::Entry;
    let finite = |b: &BBox| {
        [b.xmin, b.ymin, b.xmax, b.ymax]
            .iter()
            .all(|v| v.is_finite())
    };
    let mut first: HashMap<(std::sync::Arc<str>, String), usize> = HashMap::new();
    let mut keep = vec![true; objects.len()];
    for i in 0..objects.len() {
        let Some(g) = objects[i].attrs.extra().get("group_id") else {
            continue;
        };
        if !finite(&objects[i].bbox) {
            continue;
        }
        match first.entry((objects[i].class.clone(), g.clone())) {
            Entry::Vacant(e) => {
                e.insert(i);
            }
            Entry::Occupied(e) => {
                let k = *e.get();
                let b = objects[i].bbox;
                let from_polygon = objects[i].attrs.from_polygon;
                let into = &mut objects[k];
                into.bbox = BBox {
                    xmin: into.bbox.xmin.min(b.xmin),
                    ymin: into.bbox.ymin.min(b.ymin),
                    xmax: into.bbox.xmax.max(b.xmax),
                    ymax: into.bbox.ymax.max(b.ymax),
                };
                into.attrs.from_polygon |= from_polygon;
                keep[i] = false;
                out.quirks.push(quirk(
                    "part of an object drawn in several shapes (same label and group_id), \
                     merged into one box",
                    objects[i].origin.to_string(),
                ));
            }
        }
    }
    let mut keep = keep.into_iter();
    objects.retain(|_| keep.next().unwrap_or(true));
}

/// A shape's label, trimmed ("" when it has none).
fn label_of(s: &RawShape) -> String {
    s.label
        .as_ref()
        .and_then(Scalar::text)
        .map(|l| l.trim().to_string())
        .unwrap_or_default()
}

/// A shape's object; `class`: its [`label_of`].
fn shape(s: RawShape, class: &str, origin: &str, out: &mut Parsed) -> Result<Object, String> {
    if s.not_object {
        return Err("a shape that is not a JSON object".into());
    }
    let kind = match &s.shape_type {
        None | Some(Scalar::Null) => "polygon".to_string(), // labelme < 3 wrote none
        Some(Scalar::Str(t)) => t.trim().to_string(),
        Some(other) => return Err(format!("unreadable shape_type {}", other.shown())),
    };
    if matches!(kind.as_str(), "line" | "linestrip" | "point" | "points") {
        return Err(format!("a {kind} has no area"));
    }
    if kind == "mask" {
        // its points are the bitmap's corners in pixel indices, and the
        // object is the bitmap's set pixels: not a box read as it is
        return Err(
            "a mask (a bitmap; imgprep reads no bitmaps: draw it as a polygon or rectangle)".into(),
        );
    }
    if class.is_empty() {
        return Err("shape without a label".into());
    }
    let Some(Points(Some(pts))) = s.points else {
        return Err(format!("unreadable points of a {kind}"));
    };
    let mut attrs = Attributes::default();
    let bbox = match kind.as_str() {
        "rectangle" => {
            if pts.len() < 2 {
                return Err(format!("a rectangle with {} points", pts.len()));
            }
            if pts.len() > 2 {
                out.quirks
                    .push(quirk("rectangle with more than 2 points", origin));
            }
            bounds(&pts)
        }
        "polygon" => {
            if pts.len() < 3 {
                return Err(format!("a polygon with {} points", pts.len()));
            }
            attrs.from_polygon = true;
            out.quirks.push(quirk("polygon as box", origin));
            bounds(&pts)
        }
        "circle" => {
            let [(cx, cy), (rx, ry)] = pts[..] else {
                return Err(format!(
                    "a circle with {} points (want centre and rim)",
                    pts.len()
                ));
            };
            let r = (rx - cx).hypot(ry - cy);
            attrs.from_polygon = true;
            attrs.extra_mut().insert("shape".into(), "circle".into());
            out.quirks.push(quirk("circle as box", origin));
            BBox {
                xmin: cx - r,
                ymin: cy - r,
                xmax: cx + r,
                ymax: cy + r,
            }
        }
        other => return Err(format!("unknown shape_type {other:?}")),
    };
    if let Some(g) = s.group_id.as_ref().and_then(Scalar::text) {
        attrs.extra_mut().insert("group_id".into(), g);
    }
    for f in s.flags {
        attrs.extra_mut().insert(format!("flag:{f}"), "true".into());
    }
    if let Some(d) = s.description.as_ref().and_then(Scalar::text) {
        if !d.trim().is_empty() {
            attrs
                .extra_mut()
                .insert("description".into(), d.trim().to_string());
        }
    }
    Ok(Object {
        class: class.into(),
        bbox,
        attrs,
        origin: origin.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(p: &Parsed, kind: &str) -> usize {
        p.quirks.iter().filter(|q| q.kind == kind).count()
    }

    fn objects(p: &Parsed) -> usize {
        p.images.iter().map(|a| a.objects.len()).sum()
    }

    #[test]
    fn real_labelme_rectangles_and_polygons() {
        let Some(data) = crate::annotations::shared_data() else {
            return;
        };
        // rectangles (the sources of labelme_voc_bbox's VOC files)
        let root = data.join("detection/labelme_voc_bbox");
        let p = read(&root).unwrap();
        assert_eq!(p.image_root, root);
        let names: Vec<&str> = p.images.iter().map(|a| a.image.as_str()).collect();
        assert_eq!(
            names,
            [
                "labelme_source/2011_000003.jpg",
                "labelme_source/2011_000006.jpg",
                "labelme_source/2011_000025.jpg"
            ]
        );
        assert_eq!(objects(&p), 9);
        assert!(p.quirks.is_empty() && p.dropped.is_empty());
        let a = &p.images[0];
        assert_eq!(a.declared_size, Some((500, 338)));
        let o = &a.objects[0];
        assert_eq!(
            o.bbox,
            BBox {
                xmin: 191.0,
                ymin: 107.36900369003689,
                xmax: 313.0,
                ymax: 329.36900369003695
            }
        );
        assert!(!o.attrs.from_polygon && o.attrs.extra().is_empty());
        assert!(o
            .origin
            .to_string()
            .ends_with("labelme_source/2011_000003.json: shapes[0]"));

        // polygons (the sources of labelme_coco_instances), beside a COCO file
        let root = data.join("detection/labelme_coco_instances");
        let p = read(&root).unwrap();
        assert_eq!(p.images.len(), 3);
        let n: Vec<usize> = p.images.iter().map(|a| a.objects.len()).collect();
        // 18 shapes, of which 4 are parts of a person and a sofa drawn in
        // several polygons with one group_id (the COCO file beside them
        // has 12 instances, with __ignore__ regions not yet dropped here)
        assert_eq!(n, [4, 7, 3]);
        assert_eq!(count(&p, "polygon as box"), 18);
        assert_eq!(count(&p, "not a labelme file"), 1);
        let merged = "part of an object drawn in several shapes (same label and group_id), merged into one box";
        assert_eq!(count(&p, merged), 4);
        assert_eq!(p.quirks.len(), 23);
        assert!(p.dropped.is_empty());
        let bottle = p.images[0]
            .objects
            .iter()
            .find(|o| &*o.class == "bottle")
            .unwrap();
        assert_eq!(&*bottle.class, "bottle");
        assert!(bottle.attrs.from_polygon);
        assert_eq!(
            bottle.bbox,
            BBox {
                xmin: 369.81422924901193,
                ymin: 159.33596837944665,
                xmax: 387.81422924901193,
                ymax: 212.33596837944665
            }
        );
        // labelme's group_id joins the parts of one instance: one box, within
        // a pixel of the instance's box in the COCO file made from them
        // (365, 87, 135 x 251: pycocotools' box of the rasterized mask)
        let grouped: Vec<&Object> = p.images[0]
            .objects
            .iter()
            .filter(|o| o.attrs.extra().get("group_id").map(String::as_str) == Some("0"))
            .collect();
        assert_eq!(grouped.len(), 1);
        let b = grouped[0].bbox;
        let coco = [365.0, 87.0, 135.0, 251.0];
        let ours = [b.xmin, b.ymin, b.xmax - b.xmin, b.ymax - b.ymin];
        assert!(
            ours.iter().zip(coco).all(|(a, c)| (a - c).abs() <= 1.0),
            "{ours:?} vs {coco:?}"
        );
        let ignore = p
            .images
            .iter()
            .flat_map(|a| &a.objects)
            .filter(|o| &*o.class == "__ignore__")
            .count();
        assert_eq!(ignore, 2);

        // imgaug's own JSON is not labelme
        let p = read(&data.join("detection/imgaug_quokka")).unwrap();
        assert!(p.images.is_empty());
        assert_eq!(count(&p, "not a labelme file"), 1);
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// One object drawn as several shapes (same label, same group_id) is one
    /// box around them; another label or group, or no group, stays apart.
    #[test]
    fn shapes_of_one_group_are_one_object() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(
            r,
            "a.json",
            r#"{"imagePath": "a.jpg", "imageWidth": 100, "imageHeight": 80, "shapes": [
                {"label": "person", "group_id": 1, "shape_type": "polygon", "points": [[10, 10], [30, 10], [20, 40]]},
                {"label": "person", "group_id": 2, "shape_type": "rectangle", "points": [[60, 5], [70, 15]]},
                {"label": "person", "group_id": 1, "shape_type": "rectangle", "points": [[25, 50], [35, 70]]},
                {"label": "sofa", "group_id": 1, "shape_type": "rectangle", "points": [[0, 0], [5, 5]]},
                {"label": "person", "shape_type": "rectangle", "points": [[80, 60], [90, 70]]},
                {"label": "person", "group_id": 1, "shape_type": "polygon", "points": [[12, 12], [14, 12], [13, 14]]}
              ]}"#,
        );
        let p = read(r).unwrap();
        let got: Vec<(&str, [f64; 4], bool)> = p.images[0]
            .objects
            .iter()
            .map(|o| {
                let b = o.bbox;
                (
                    &*o.class,
                    [b.xmin, b.ymin, b.xmax, b.ymax],
                    o.attrs.from_polygon,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("person", [10.0, 10.0, 35.0, 70.0], true),
                ("person", [60.0, 5.0, 70.0, 15.0], false),
                ("sofa", [0.0, 0.0, 5.0, 5.0], false),
                ("person", [80.0, 60.0, 90.0, 70.0], false),
            ]
        );
        assert_eq!(
            p.images[0].objects[0].origin.to_string(),
            format!("{}: shapes[0]", show(&r.join("a.json")))
        );
        let merged: Vec<&str> = p
            .quirks
            .iter()
            .filter(|q| q.kind.starts_with("part of an object"))
            .map(|q| q.origin.rsplit(' ').next().unwrap())
            .collect();
        assert_eq!(merged, ["shapes[2]", "shapes[5]"]);
    }

    #[test]
    fn shapes_become_boxes_or_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(
            r,
            "sub/a.json",
            r#"{"version": "5.4.1", "flags": {"blurry": true}, "imagePath": "..\\sub\\a.jpg",
                "imageData": "aGVsbG8=", "imageWidth": 640, "imageHeight": 480,
                "shapes": [
                  {"label": " cat ", "points": [[300.5, 200], [100, 50.25]], "shape_type": "rectangle",
                   "group_id": 3, "flags": {"occluded": true, "truncated": false}, "description": "tail only"},
                  {"label": "dog", "points": [[10, 10], [50, 5], [30, 40]], "shape_type": "polygon", "group_id": null, "flags": {}},
                  {"label": "ball", "points": [[100, 100], [103, 104]], "shape_type": "circle"},
                  {"label": "old", "points": [[1, 2], [3, 1], [2, 5]]},
                  {"label": "edge", "points": [[1, 2], [3, 4]], "shape_type": "line"},
                  {"label": "tip", "points": [[1, 2]], "shape_type": "point"},
                  {"label": "ls", "points": [[1, 2], [3, 4], [5, 6]], "shape_type": "linestrip"},
                  {"label": "m", "points": [[1, 2], [3, 4]], "shape_type": "mask", "mask": "iVBOR"},
                  {"label": "  ", "points": [[1, 2], [3, 4]], "shape_type": "rectangle"},
                  {"label": "x", "points": [[1, 2], [3, "a"]], "shape_type": "rectangle"},
                  {"label": "x", "points": [[1, 2]], "shape_type": "rectangle"},
                  {"label": "x", "points": [[1, 2], [3, 4]], "shape_type": "cuboid"},
                  {"label": "quad", "points": [[1, 2], [9, 2], [9, 8], [1, 8]], "shape_type": "rectangle"},
                  "not a shape"
                ]}"#,
        );
        let p = read(r).unwrap();
        assert_eq!(p.images.len(), 1);
        let a = &p.images[0];
        assert_eq!(a.image, "sub/a.jpg");
        assert_eq!(a.declared_size, Some((640, 480)));
        let b = |x0, y0, x1, y1| BBox {
            xmin: x0,
            ymin: y0,
            xmax: x1,
            ymax: y1,
        };
        let got: Vec<(&str, BBox, bool)> = a
            .objects
            .iter()
            .map(|o| (&*o.class, o.bbox, o.attrs.from_polygon))
            .collect();
        assert_eq!(
            got,
            [
                ("cat", b(100.0, 50.25, 300.5, 200.0), false),
                ("dog", b(10.0, 5.0, 50.0, 40.0), true),
                ("ball", b(95.0, 95.0, 105.0, 105.0), true),
                ("old", b(1.0, 1.0, 3.0, 5.0), true),
                ("quad", b(1.0, 2.0, 9.0, 8.0), false),
            ]
        );
        let cat = a.objects[0].attrs.extra();
        assert_eq!(cat.get("group_id").map(String::as_str), Some("3"));
        assert_eq!(cat.get("flag:occluded").map(String::as_str), Some("true"));
        assert_eq!(
            cat.get("description").map(String::as_str),
            Some("tail only")
        );
        assert_eq!(cat.len(), 3);
        assert!(a.objects[1].attrs.extra().is_empty());
        assert_eq!(
            a.objects[2].attrs.extra().get("shape").map(String::as_str),
            Some("circle")
        );
        let q: Vec<&str> = p.quirks.iter().map(|q| q.kind.as_str()).collect();
        assert_eq!(
            q,
            [
                "polygon as box",
                "circle as box",
                "polygon as box",
                "rectangle with more than 2 points"
            ]
        );
        assert!(p.dropped.is_empty());
        let lost = &p.images[0].unreadable;
        let d: Vec<String> = lost
            .iter()
            .map(|u| format!("{} @{}", u.reason, u.origin.rsplit(' ').next().unwrap()))
            .collect();
        assert_eq!(
            d,
            [
                "a line has no area @shapes[4]",
                "a point has no area @shapes[5]",
                "a linestrip has no area @shapes[6]",
                "a mask (a bitmap; imgprep reads no bitmaps: draw it as a polygon or rectangle) @shapes[7]",
                "shape without a label @shapes[8]",
                "unreadable points of a rectangle @shapes[9]",
                "a rectangle with 1 points @shapes[10]",
                "unknown shape_type \"cuboid\" @shapes[11]",
                "a shape that is not a JSON object @shapes[13]",
            ]
        );
        assert!(lost[0].origin.ends_with("sub/a.json: shapes[4]"));
        // each with its label, when it has one
        assert_eq!(lost[0].class, "edge");
        assert_eq!(lost[4].class, "");
    }

    #[test]
    fn image_paths_other_json_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let lm = |path: &str| {
            format!(r#"{{"shapes": [], "imagePath": {path:?}, "imageWidth": 0, "imageHeight": 0}}"#)
        };
        write(r, "a/one.json", &lm("one.jpg"));
        write(r, "a/two.json", &lm("../a/one.jpg")); // same image again
        write(r, "b/up.json", &lm("../../outside.jpg"));
        write(r, "b/abs.json", &lm("C:\\Users\\me\\Pictures\\abs.jpg"));
        write(r, "b/none.json", r#"{"shapes": [], "imagePath": null}"#);
        write(r, "c/coco.json", r#"{"images": [], "annotations": []}"#);
        write(r, "c/list.json", "[1, 2, 3]");
        write(r, ".cache/x.json", "not json");
        let p = read(r).unwrap();
        let names: Vec<&str> = p.images.iter().map(|a| a.image.as_str()).collect();
        assert_eq!(names, ["a/one.jpg", "b/abs.jpg"]);
        assert!(p.images.iter().all(|a| a.declared_size.is_none()));
        let q: Vec<&str> = p.quirks.iter().map(|q| q.kind.as_str()).collect();
        assert_eq!(
            q,
            [
                "missing image size",
                "absolute imagePath, file name used",
                "missing image size",
                "not a labelme file",
                "not a labelme file"
            ]
        );
        // images that cannot be used, apart from objects
        assert!(p.dropped.is_empty(), "{:?}", p.dropped);
        let d: Vec<&str> = p.dropped_images.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(d[0].starts_with("a/one.jpg is already annotated by "));
        assert_eq!(d[1], "no imagePath");
        assert_eq!(
            d[2],
            "imagePath \"../../outside.jpg\" leaves the folder being read"
        );

        // a file that does not parse is one unreadable item, named
        write(r, "d/bad.json", "{\"shapes\": [\n\n{]}");
        let p = read(r).unwrap();
        let (why, origin) = &p.dropped[0];
        assert!(origin.ends_with("d/bad.json:3"), "{origin}");
        assert!(
            why.starts_with("unreadable annotation file: unreadable JSON"),
            "{why}"
        );
        assert!(!why.contains('\n'));
        write(
            r,
            "d/bad.json",
            r#"{"shapes": {"a": 1}, "imagePath": "x.jpg"}"#,
        );
        let p = read(r).unwrap();
        let (why, origin) = &p.dropped[0];
        assert!(origin.ends_with("d/bad.json"), "{origin}");
        assert!(why.ends_with("shapes is not a list"), "{why}");
    }

    /// Every prefix of a file and every byte replaced: an error or a
    /// result, never a panic.
    #[test]
    fn damaged_files_never_panic() {
        let doc = r#"{"shapes": [{"label": "a", "points": [[1, 2], [3, 4]], "shape_type": "circle", "group_id": 1, "flags": {"x": true}},
                     {"label": "b", "points": [[1, 2], [3, 4], [0, 9]], "shape_type": "polygon"}],
                     "imagePath": "a.jpg", "imageWidth": 10, "imageHeight": 5}"#;
        let run = |t: &str| {
            if let Ok(RawFile {
                shapes: Some(Some(shapes)),
                ..
            }) = serde_json::from_str::<RawFile>(t)
            {
                let mut out = Parsed::default();
                for s in shapes {
                    let class = label_of(&s);
                    let _ = shape(s, &class, "x", &mut out);
                }
            }
        };
        for end in 0..=doc.len() {
            run(&doc[..end]);
        }
        for i in 0..doc.len() {
            for c in [
                "[", "]", "{", "}", "\"", ",", "9", "-", "e", "null", "1e999",
            ] {
                run(&format!("{}{c}{}", &doc[..i], &doc[i + 1..]));
            }
        }
    }
}
