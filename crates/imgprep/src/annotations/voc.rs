//! Pascal VOC XML (one `<annotation>` per image), as the VOC devkit,
//! labelImg, CVAT and labelme's `labelme2voc` write it.
//!
//! Tolerated (each reported as a [`Quirk`], every kind at most once per
//! file, at its first line): float coordinates (`292.33`), empty
//! `<difficult/>`, `<truncated/>` and `<occluded/>` tags, unreadable
//! flag values (taken as 0), a missing or non-integer `<size>`, `<part>`
//! boxes (kept as attributes, never objects), nested children that are not
//! simple text. Objects that cannot be read are dropped with a reason and
//! their `file:line`; a file that is not XML, or whose root is not
//! `<annotation>`, is an error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use roxmltree::{Document, Node};

use super::{
    list_dir, normalize_rel, parse_num, quirk, read_text, rel_slash, show, walk_files, Attributes,
    BBox, ClassNames, ImageAnnotation, ImagesByStem, Object, Origin, ParseError, Parsed, Quirk,
    QuirksOnce, Units, Unreadable, IMAGE_EXTENSIONS, MAX_FILE_BYTES,
};

/// How to read VOC coordinates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VocOptions {
    /// `false` (the default): coordinates are taken as they are written,
    /// as edges in pixels (labelImg, CVAT and most tools).
    ///
    /// `true`: the VOC devkit's 1-based pixel indices. Pixel `i` (1-based)
    /// spans `[i-1, i]`, so `xmin`/`ymin` (the first pixel inside the box)
    /// move to their left/top edge by subtracting 1, while `xmax`/`ymax`
    /// (the last pixel inside) already are the right/bottom edge and stay:
    /// `xmin=1 .. xmax=W` covers the whole image `[0, W]`. This is
    /// detectron2's convention (`pascal_voc.py`: `bbox[0] -= 1.0;
    /// bbox[1] -= 1.0`). `<part>` boxes move the same way.
    pub one_based: bool,
}

/// What [`parse_file`] returns: the image's annotation (with the objects
/// that cannot be read in its `unreadable`) and its quirks.
pub type VocFile = (ImageAnnotation, Vec<Quirk>);

/// Reads one VOC XML document. `file` is the path shown in origins
/// (`file:line`).
///
/// Returns the image's annotation (`image` = the `<filename>` text, which
/// [`read_layout`] replaces by the image it finds; the objects that cannot
/// be read in `unreadable`) and the tolerated quirks.
pub fn parse_file(file: &str, text: &str, opts: &VocOptions) -> Result<VocFile, ParseError> {
    match parse(file, text, opts, &mut ClassNames::default()) {
        Ok(r) => Ok(r),
        Err(Failure::Malformed(e) | Failure::NotVoc(e)) => Err(e),
    }
}

enum Failure {
    /// Not XML at all.
    Malformed(ParseError),
    /// XML whose root is not `<annotation>`.
    NotVoc(ParseError),
}

/// [`parse_file`], with the class names shared across the files of a layout.
fn parse(
    file: &str,
    text: &str,
    opts: &VocOptions,
    classes: &mut ClassNames,
) -> Result<VocFile, Failure> {
    let doc = Document::parse(text).map_err(|e| {
        Failure::Malformed(ParseError::new(
            format!("{file}:{}", e.pos().row),
            format!("malformed XML: {e}"),
        ))
    })?;
    // line of a byte offset by binary search (roxmltree's text_pos_at
    // scans from the start each time: quadratic over a large file)
    let starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let line = |n: Node| starts.partition_point(|&s| s <= n.range().start);
    let at = |n: Node| format!("{file}:{}", line(n));
    // the file's name, shared by the annotation and each of its objects
    let shared_file: Arc<str> = file.into();
    let root = doc.root_element();
    if root.tag_name().name() != "annotation" {
        return Err(Failure::NotVoc(ParseError::new(
            at(root),
            format!(
                "the root element is <{}>, not <annotation>: not a Pascal VOC file",
                root.tag_name().name()
            ),
        )));
    }
    let mut quirks = QuirksOnce::default();
    let mut unreadable = Vec::new();

    let image = match child(root, "filename").map(text_of) {
        Some(t) if !t.trim().is_empty() => t.trim().to_string(),
        _ => {
            quirks.add("missing <filename>", file);
            String::new()
        }
    };
    let declared_size = read_size(root, &at, &mut quirks, file);

    let mut objects = Vec::new();
    for obj in root.children().filter(|n| n.has_tag_name("object")) {
        let origin = Origin::line(&shared_file, line(obj));
        match read_object(obj, origin, &at, opts, &mut quirks, classes) {
            Ok(o) => objects.push(o),
            Err((reason, origin)) => {
                let class = child(obj, "name").map(text_of).unwrap_or_default();
                unreadable.push(Unreadable::new(reason, origin, class.trim()));
            }
        }
    }
    // (held for the whole build, one per image: no growth slack)
    objects.shrink_to_fit();
    let ann = ImageAnnotation {
        image,
        declared_size,
        units: Units::Pixels,
        objects,
        split: None,
        origin: Origin::File(shared_file),
        unreadable: unreadable.into(),
    };
    Ok((ann, quirks.list))
}

/// The first child element named `name`.
fn child<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name(name))
}

/// All the text directly inside an element (text and CDATA).
fn text_of(n: Node) -> String {
    n.children()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text())
        .collect()
}

fn read_size(
    root: Node,
    at: &dyn Fn(Node) -> String,
    quirks: &mut QuirksOnce,
    file: &str,
) -> Option<(u32, u32)> {
    let Some(size) = child(root, "size") else {
        quirks.add("missing <size>", file);
        return None;
    };
    let dim = |tag: &str| -> Result<Option<(u32, bool)>, ()> {
        let Some(t) = child(size, tag).map(text_of) else {
            return Ok(None);
        };
        let t = t.trim();
        if t.is_empty() {
            return Ok(None);
        }
        if let Ok(v) = t.parse::<u32>() {
            return Ok((v > 0).then_some((v, false)));
        }
        match parse_num(t) {
            Some(0.0) => Ok(None),
            Some(v) if v > 0.0 && v.fract() == 0.0 && v <= u32::MAX as f64 => {
                Ok(Some((v as u32, true)))
            }
            _ => Err(()),
        }
    };
    match (dim("width"), dim("height")) {
        (Ok(Some((w, fw))), Ok(Some((h, fh)))) => {
            if fw || fh {
                quirks.add("non-integer <size>", at(size));
            }
            Some((w, h))
        }
        (Err(()), _) | (_, Err(())) => {
            quirks.add("unreadable <size>", at(size));
            None
        }
        _ => {
            quirks.add("missing <size>", at(size));
            None
        }
    }
}

/// How a VOC flag (`<difficult>`, `<truncated>`, `<occluded>`) reads.
fn flag(obj: Node, tag: &str, at: &dyn Fn(Node) -> String, quirks: &mut QuirksOnce) -> bool {
    let Some(n) = child(obj, tag) else {
        return false;
    };
    let t = text_of(n);
    let t = t.trim();
    if t.is_empty() {
        quirks.add(&format!("empty <{tag}>"), at(n));
        false
    } else if t == "1" || t.eq_ignore_ascii_case("true") {
        true
    } else if t == "0" || t.eq_ignore_ascii_case("false") {
        false
    } else {
        quirks.add(&format!("unreadable <{tag}> taken as 0"), at(n));
        false
    }
}

/// The four numbers of a `<bndbox>`, or why they cannot be read.
fn read_box(
    bb: Node,
    at: &dyn Fn(Node) -> String,
    opts: &VocOptions,
    quirks: &mut QuirksOnce,
    what: &str,
) -> Result<BBox, (String, String)> {
    let mut v = [0.0f64; 4];
    for (slot, tag) in v.iter_mut().zip(["xmin", "ymin", "xmax", "ymax"]) {
        let Some(n) = child(bb, tag) else {
            return Err((format!("{what} without <{tag}>"), at(bb)));
        };
        let t = text_of(n);
        let Some(x) = parse_num(&t) else {
            let t = t.trim();
            let reason = if t.is_empty() {
                format!("empty <{tag}> in {what}")
            } else {
                format!("unreadable <{tag}> {t:?} in {what}")
            };
            return Err((reason, at(n)));
        };
        if t.contains(['.', 'e', 'E']) {
            quirks.add("float coordinates", at(n));
        }
        *slot = x;
    }
    let shift = if opts.one_based { 1.0 } else { 0.0 };
    Ok(BBox {
        xmin: v[0] - shift,
        ymin: v[1] - shift,
        xmax: v[2],
        ymax: v[3],
    })
}

fn read_object(
    obj: Node,
    origin: Origin,
    at: &dyn Fn(Node) -> String,
    opts: &VocOptions,
    quirks: &mut QuirksOnce,
    classes: &mut ClassNames,
) -> Result<Object, (String, String)> {
    let class = child(obj, "name").map(text_of).unwrap_or_default();
    let class = class.trim();
    if class.is_empty() {
        return Err(("object without <name>".to_string(), origin.to_string()));
    }
    let class = classes.get(class);
    let Some(bb) = child(obj, "bndbox") else {
        return Err(("object without <bndbox>".to_string(), origin.to_string()));
    };
    let bbox = read_box(bb, at, opts, quirks, "<bndbox>")?;
    let mut attrs = Attributes {
        difficult: flag(obj, "difficult", at, quirks),
        truncated: flag(obj, "truncated", at, quirks),
        occluded: flag(obj, "occluded", at, quirks),
        ..Attributes::default()
    };
    attrs.set_pose(
        child(obj, "pose")
            .map(text_of)
            .filter(|p| !p.trim().is_empty() && !p.trim().eq_ignore_ascii_case("unspecified"))
            .map(|p| p.trim().into()),
    );
    let known = [
        "name",
        "bndbox",
        "difficult",
        "truncated",
        "occluded",
        "pose",
    ];
    for c in obj.children().filter(|c| c.is_element()) {
        let tag = c.tag_name().name();
        if known.contains(&tag) {
            continue;
        }
        if tag == "part" {
            read_part(c, at, opts, quirks, &mut attrs);
        } else if tag == "attributes" && is_cvat_attributes(c) {
            // CVAT: <attributes><attribute><name>k</name><value>v</value>...
            for a in c.children().filter(|a| a.has_tag_name("attribute")) {
                let k = child(a, "name").map(text_of).unwrap_or_default();
                let v = child(a, "value").map(text_of).unwrap_or_default();
                if !k.trim().is_empty() {
                    attrs
                        .extra_mut()
                        .entry(k.trim().to_string())
                        .or_insert_with(|| v.trim().to_string());
                }
            }
        } else if c.children().any(|g| g.is_element()) {
            quirks.add(&format!("nested <{tag}> ignored"), at(c));
        } else {
            let v = text_of(c);
            if !v.trim().is_empty() {
                attrs
                    .extra_mut()
                    .entry(tag.to_string())
                    .or_insert_with(|| v.trim().to_string());
            }
        }
    }
    Ok(Object {
        class,
        bbox,
        attrs,
        origin,
    })
}

fn is_cvat_attributes(n: Node) -> bool {
    n.children()
        .filter(|c| c.is_element())
        .all(|c| c.has_tag_name("attribute"))
}

/// The attribute key prefix of a `<part>`'s boxes: `part:NAME`.
pub const PART: &str = "part:";

/// A `part:NAME` attribute's boxes (`xmin,ymin,xmax,ymax`, `;` between
/// several); a piece that is not four numbers is passed over.
pub fn part_boxes(value: &str) -> impl Iterator<Item = BBox> + '_ {
    value.split(';').filter_map(|v| {
        let n: Vec<f64> = v.split(',').filter_map(|x| x.trim().parse().ok()).collect();
        match n[..] {
            [xmin, ymin, xmax, ymax] => Some(BBox {
                xmin,
                ymin,
                xmax,
                ymax,
            }),
            _ => None,
        }
    })
}

/// One box as a `part:NAME` attribute holds it.
pub fn part_value(b: &BBox) -> String {
    format!("{},{},{},{}", b.xmin, b.ymin, b.xmax, b.ymax)
}

/// A `<part>` (VOC person layout: head, hand, foot) is kept with its
/// object as `part:NAME = xmin,ymin,xmax,ymax` (`;` between several parts
/// of one name), never as an object of its own.
fn read_part(
    part: Node,
    at: &dyn Fn(Node) -> String,
    opts: &VocOptions,
    quirks: &mut QuirksOnce,
    attrs: &mut Attributes,
) {
    let name = child(part, "name")
        .map(|n| text_of(n).trim().to_string())
        .unwrap_or_default();
    let b = child(part, "bndbox").map(|bb| read_box(bb, at, opts, quirks, "<part>"));
    match (name.is_empty(), b) {
        (false, Some(Ok(b))) => {
            quirks.add("<part> kept as attribute", at(part));
            let v = part_value(&b);
            attrs
                .extra_mut()
                .entry(format!("{PART}{name}"))
                .and_modify(|e| {
                    e.push(';');
                    e.push_str(&v);
                })
                .or_insert(v);
        }
        _ => quirks.add("unreadable <part> ignored", at(part)),
    }
}

/// The start of the reason given for an XML file that cannot be parsed (the
/// build treats it as a missing item: an error, or a skip under
/// `on_error = "skip"`).
pub const UNREADABLE: &str = "unreadable annotation file";

/// Reads a VOC dataset folder.
///
/// Two layouts:
///
/// (a) The devkit's: `root/Annotations/*.xml` with the images in
/// `root/JPEGImages/` (`image_root`; `image` is the file name there).
/// Splits come from `root/ImageSets/Main/`: when `train.txt` or `val.txt`
/// is there, `train.txt` -> `"train"`, `val.txt` -> `"validation"`,
/// `test.txt` -> `"test"`, and `trainval.txt` is ignored (it is their
/// union). With neither, `trainval.txt` members get no split (the pool the
/// recipe divides) and `test.txt` members `"test"`. Class lists such as
/// `aeroplane_train.txt` are ignored. When any list exists, only listed
/// images are read (VOC2012 keeps XML for images of other tasks, whose
/// objects are not all annotated): each other XML file is a quirk "not in
/// ImageSets/Main lists, left out", and a listed id without its XML file is
/// dropped. An id in two lists used is an error naming both.
///
/// (b) Otherwise (labelImg, or `Annotations/` beside `images/` with no
/// `JPEGImages/`): every `*.xml` under `root` (recursive, sorted;
/// hidden folders skipped), `image_root = root`, `image` relative to it.
/// XML files whose root is not `<annotation>` are skipped (quirk "not a VOC
/// file").
///
/// In both, the image is the XML file's stem with an image extension
/// (`jpg`, `jpeg`, `png`, `bmp`, `webp`, `tif`, `tiff`, any case) in the
/// image folder — (b): the XML's folder, then a sibling `images/` or
/// `JPEGImages/` folder — and failing that the `<filename>` there; when
/// neither exists the annotation is dropped ("no image for this annotation
/// (looked for ...)"). A `<filename>` naming another file than the one
/// found is the quirk "<filename> differs from the file name". Two XML
/// files for one image: the second is dropped. Images are sorted by
/// `image`. `declared_classes` stays empty (the build takes class lists
/// from the recipe).
pub fn read_layout(root: &Path, opts: &VocOptions) -> Result<Parsed, ParseError> {
    let ann_dir = root.join("Annotations");
    // `Annotations/` beside `images/` (no `JPEGImages/`): XML files with
    // their images in a sibling folder, as (b) reads them
    let devkit =
        ann_dir.is_dir() && (root.join("JPEGImages").is_dir() || !root.join("images").is_dir());
    let mut out = if devkit {
        read_devkit(root, &ann_dir, opts)?
    } else if root.is_dir() {
        read_beside(root, opts)?
    } else {
        return Err(ParseError::new(show(root), "is not a folder"));
    };
    out.images.sort_by(|a, b| a.image.cmp(&b.image));
    Ok(out)
}

/// Where each listed image id goes: split, list file shown, line.
type SplitMap = HashMap<String, (Option<String>, String, usize)>;

fn read_imagesets(root: &Path) -> Result<Option<SplitMap>, ParseError> {
    let main = root.join("ImageSets").join("Main");
    let exists = |n: &str| super::is_file(&main.join(n));
    let lists: Vec<(&str, Option<&str>)> = if exists("train.txt") || exists("val.txt") {
        vec![
            ("train.txt", Some("train")),
            ("val.txt", Some("validation")),
            ("test.txt", Some("test")),
        ]
    } else if exists("trainval.txt") || exists("test.txt") {
        vec![("trainval.txt", None), ("test.txt", Some("test"))]
    } else {
        return Ok(None);
    };
    let mut map = SplitMap::new();
    for (name, split) in lists {
        let path = main.join(name);
        if !super::is_file(&path) {
            continue;
        }
        let shown = show(&path);
        let text = read_text(&path, MAX_FILE_BYTES)?;
        for (i, l) in text.lines().enumerate() {
            let Some(id) = l.split_whitespace().next() else {
                continue;
            };
            match map.get(id) {
                Some((_, other, other_line)) if *other != shown => {
                    return Err(ParseError::new(
                        format!("{shown}:{}", i + 1),
                        format!(
                            "{id} is also listed in {other}:{other_line}: an image can be in one split only"
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    map.insert(
                        id.to_string(),
                        (split.map(str::to_string), shown.clone(), i + 1),
                    );
                }
            }
        }
    }
    Ok(Some(map))
}

/// Reads and parses one XML file of a layout.
fn parse_path(
    path: &Path,
    opts: &VocOptions,
    classes: &mut ClassNames,
) -> Result<Result<VocFile, Failure>, ParseError> {
    // a file that cannot be read is one unreadable item, as a malformed one
    let text = match read_text(path, MAX_FILE_BYTES) {
        Ok(t) => t,
        Err(e) => return Ok(Err(Failure::Malformed(e))),
    };
    Ok(parse(&show(path), &text, opts, classes))
}

fn stem_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn looked_for(dir: &str, stem: &str) -> String {
    format!("{dir}/{stem}.{{{}}}", IMAGE_EXTENSIONS.join(","))
}

/// Adds one annotation whose image was found as `image`, checking the
/// `<filename>` against it and refusing a second annotation of one image
/// (the first kept, unless only the second file is named after the image:
/// a stray copy that names it does not outrank the image's own file).
fn add_found(
    out: &mut Parsed,
    owners: &mut super::Owners,
    mut ann: ImageAnnotation,
    image: String,
) {
    let named = ann.image.rsplit(['/', '\\']).next().unwrap_or("");
    let found = image.rsplit('/').next().unwrap_or("");
    if !named.is_empty() && named != found {
        out.quirks.push(quirk(
            "<filename> differs from the file name",
            ann.origin.to_string(),
        ));
    }
    let next = out.images.len();
    let origin = ann.origin.to_string();
    let Some(at) = owners.claim(&image, &origin, next, &mut out.dropped_images) else {
        return;
    };
    ann.image = image;
    match at == next {
        true => out.images.push(ann),
        false => out.images[at] = ann,
    }
}

fn read_devkit(root: &Path, ann_dir: &Path, opts: &VocOptions) -> Result<Parsed, ParseError> {
    let jpeg_dir = root.join("JPEGImages");
    if !jpeg_dir.is_dir() {
        return Err(ParseError::new(
            show(root),
            "has Annotations/ but no JPEGImages/ folder beside it for the images",
        ));
    }
    let images = ImagesByStem::new(list_dir(&jpeg_dir)?);
    let splits = read_imagesets(root)?;
    let mut xmls: Vec<PathBuf> = list_dir(ann_dir)?
        .into_iter()
        .filter(|n| n.to_ascii_lowercase().ends_with(".xml"))
        .map(|n| ann_dir.join(n))
        .collect();
    xmls.sort();
    let mut out = Parsed {
        image_root: jpeg_dir.clone(),
        ..Parsed::default()
    };
    let mut owners = super::Owners::default();
    let mut classes = ClassNames::default();
    let mut seen_ids = std::collections::HashSet::new();
    for xml in &xmls {
        let stem = stem_of(xml);
        let split = match &splits {
            Some(map) => match map.get(&stem) {
                Some((split, _, _)) => split.clone(),
                None => {
                    out.quirks
                        .push(quirk("not in ImageSets/Main lists, left out", show(xml)));
                    continue;
                }
            },
            None => None,
        };
        seen_ids.insert(stem.clone());
        let (mut ann, quirks) = match parse_path(xml, opts, &mut classes)? {
            Ok(r) => r,
            // one broken file is one unreadable item, not the end of the source
            Err(Failure::Malformed(e) | Failure::NotVoc(e)) => {
                out.dropped
                    .push((format!("{UNREADABLE}: {}", e.message), e.origin));
                continue;
            }
        };
        out.quirks.extend(quirks);
        ann.split = split;
        let image = images
            .get(&stem)
            .map(str::to_string)
            .or_else(|| normalize_rel(&ann.image).filter(|n| super::is_file(&jpeg_dir.join(n))));
        match image {
            Some(image) => add_found(&mut out, &mut owners, ann, image),
            None => {
                let mut reason = format!(
                    "no image for this annotation (looked for {}",
                    looked_for(&show(&jpeg_dir), &stem)
                );
                if !ann.image.is_empty() {
                    reason.push_str(&format!(" and {}", show(&jpeg_dir.join(&ann.image))));
                }
                reason.push(')');
                out.dropped.push((reason, ann.origin.to_string()));
            }
        }
    }
    if let Some(map) = &splits {
        let mut missing: Vec<_> = map
            .iter()
            .filter(|(id, _)| !seen_ids.contains(*id))
            .collect();
        missing.sort_by(|a, b| (&a.1 .1, a.1 .2).cmp(&(&b.1 .1, b.1 .2)));
        for (id, (_, list, line)) in missing {
            out.dropped.push((
                format!("listed, but Annotations/{id}.xml is missing"),
                format!("{list}:{line}"),
            ));
        }
    }
    Ok(out)
}

fn read_beside(root: &Path, opts: &VocOptions) -> Result<Parsed, ParseError> {
    let xmls = walk_files(root, &|n| n.to_ascii_lowercase().ends_with(".xml"))?;
    let mut out = Parsed {
        image_root: root.to_path_buf(),
        ..Parsed::default()
    };
    let mut owners = super::Owners::default();
    let mut classes = ClassNames::default();
    let mut listings: HashMap<PathBuf, ImagesByStem> = HashMap::new();
    for xml in &xmls {
        let (ann, quirks) = match parse_path(xml, opts, &mut classes)? {
            Ok(r) => r,
            Err(Failure::NotVoc(_)) => {
                out.quirks.push(quirk("not a VOC file", show(xml)));
                continue;
            }
            Err(Failure::Malformed(e)) => {
                out.dropped
                    .push((format!("{UNREADABLE}: {}", e.message), e.origin));
                continue;
            }
        };
        out.quirks.extend(quirks);
        let stem = stem_of(xml);
        let dir = xml.parent().unwrap_or(root).to_path_buf();
        let mut dirs = vec![dir.clone()];
        if dir != root {
            if let Some(up) = dir.parent() {
                dirs.push(up.join("images"));
                dirs.push(up.join("JPEGImages"));
            }
        }
        let mut found = None;
        for d in &dirs {
            if !listings.contains_key(d) {
                listings.insert(d.clone(), ImagesByStem::new(list_dir(d)?));
            }
            if let Some(n) = listings[d].get(&stem) {
                found = Some(d.join(n));
                break;
            }
        }
        if found.is_none() {
            if let Some(n) = normalize_rel(&ann.image) {
                found = dirs.iter().map(|d| d.join(&n)).find(|p| super::is_file(p));
            }
        }
        match found.and_then(|p| rel_slash(root, &p)) {
            Some(image) => add_found(&mut out, &mut owners, ann, image),
            None => {
                let mut reason = format!(
                    "no image for this annotation (looked for {}",
                    looked_for(&show(&dir), &stem)
                );
                if !ann.image.is_empty() {
                    reason.push_str(&format!(" and {}", show(&dir.join(&ann.image))));
                }
                reason.push(')');
                out.dropped.push((reason, ann.origin.to_string()));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AS_IS: VocOptions = VocOptions { one_based: false };

    fn kinds(q: &[Quirk]) -> Vec<&str> {
        q.iter().map(|q| q.kind.as_str()).collect()
    }

    fn count(q: &[Quirk], kind: &str) -> usize {
        q.iter().filter(|q| q.kind == kind).count()
    }

    fn voc(objects: &str) -> String {
        format!(
            "<annotation>\n<filename>a.jpg</filename>\n<size><width>500</width><height>375</height><depth>3</depth></size>\n{objects}</annotation>\n"
        )
    }

    fn one(text: &str) -> VocFile {
        parse_file("a.xml", text, &AS_IS).unwrap()
    }

    #[test]
    fn real_labelme_voc_bbox() {
        let Some(data) = crate::annotations::shared_data() else {
            return;
        };
        let root = data.join("detection/labelme_voc_bbox");
        let p = read_layout(&root, &AS_IS).unwrap();
        assert_eq!(p.image_root, root.join("JPEGImages"));
        let names: Vec<&str> = p.images.iter().map(|a| a.image.as_str()).collect();
        assert_eq!(
            names,
            ["2011_000003.jpg", "2011_000006.jpg", "2011_000025.jpg"]
        );
        let n: Vec<usize> = p.images.iter().map(|a| a.objects.len()).collect();
        assert_eq!(n, [2, 4, 3]);
        assert!(p.dropped.is_empty(), "{:?}", p.dropped);
        assert!(p.declared_classes.is_empty());
        let a = &p.images[0];
        assert_eq!(a.declared_size, Some((500, 338)));
        assert_eq!(a.split, None);
        assert_eq!(a.units, Units::Pixels);
        let o = &a.objects[0];
        assert_eq!(&*o.class, "person");
        assert_eq!(
            o.bbox,
            BBox {
                xmin: 191.0,
                ymin: 107.36900369003689,
                xmax: 313.0,
                ymax: 329.36900369003695
            }
        );
        assert!(
            o.origin
                .to_string()
                .ends_with("Annotations/2011_000003.xml:13"),
            "{}",
            o.origin
        );
        assert_eq!(o.attrs.pose(), None);
        assert!(!o.attrs.difficult && !o.attrs.truncated);
        assert!(o.attrs.extra().is_empty(), "{:?}", o.attrs.extra());
        // every file: float text, empty <truncated/> and <difficult/> (once per file)
        assert_eq!(count(&p.quirks, "float coordinates"), 3);
        assert_eq!(count(&p.quirks, "empty <truncated>"), 3);
        assert_eq!(count(&p.quirks, "empty <difficult>"), 3);
        assert_eq!(p.quirks.len(), 9, "{:?}", p.quirks);
        let classes: Vec<&str> = p
            .images
            .iter()
            .flat_map(|a| a.objects.iter().map(|o| &*o.class))
            .collect();
        assert_eq!(
            classes,
            ["person", "person", "person", "person", "person", "person", "bus", "bus", "car"]
        );

        // one-based: the bus touching the left edge (xmin 1) starts at 0
        let p1 = read_layout(&root, &VocOptions { one_based: true }).unwrap();
        let bus = &p1.images[2].objects[1];
        assert_eq!(
            (bus.bbox.xmin, bus.bbox.ymin, bus.bbox.xmax, bus.bbox.ymax),
            (0.0, 98.0, 107.0, 282.0)
        );
    }

    #[test]
    fn float_coordinates_are_kept_and_reported_once() {
        let obj = "<object><name>dog</name><bndbox><xmin>292.33</xmin><ymin>1e1</ymin><xmax>300.5</xmax><ymax>40</ymax></bndbox></object>\n";
        let (a, q) = one(&voc(&format!("{obj}{obj}")));
        assert!(a.unreadable.is_empty());
        assert_eq!(a.objects.len(), 2);
        assert_eq!(a.objects[0].bbox.xmin, 292.33);
        assert_eq!(a.objects[0].bbox.ymin, 10.0);
        assert_eq!(kinds(&q), ["float coordinates"]);
        assert_eq!(q[0].origin, "a.xml:4");
    }

    #[test]
    fn flags_empty_missing_and_unreadable() {
        let (a, q) = one(&voc(
            "<object><name>a</name><difficult/><truncated>1</truncated><occluded>true</occluded>\
             <bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>\n\
             <object><name>b</name><difficult>2</difficult><truncated>yes</truncated><occluded> </occluded>\
             <bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>\n\
             <object><name>c</name><difficult>0</difficult><truncated>False</truncated>\
             <bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>\n",
        ));
        let f: Vec<(bool, bool, bool)> = a
            .objects
            .iter()
            .map(|o| (o.attrs.difficult, o.attrs.truncated, o.attrs.occluded))
            .collect();
        assert_eq!(
            f,
            [
                (false, true, true),
                (false, false, false),
                (false, false, false)
            ]
        );
        assert_eq!(
            kinds(&q),
            [
                "empty <difficult>",
                "unreadable <difficult> taken as 0",
                "unreadable <truncated> taken as 0",
                "empty <occluded>"
            ]
        );
        assert_eq!(q[0].origin, "a.xml:4");
        assert_eq!(q[1].origin, "a.xml:5");
    }

    #[test]
    fn size_missing_zero_float_and_unreadable() {
        let body = "<object><name>a</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>";
        let case = |size: &str| {
            let t = format!("<annotation><filename>a.jpg</filename>{size}{body}</annotation>");
            let (a, q) = one(&t);
            (a.declared_size, kinds(&q).join("|"))
        };
        assert_eq!(case(""), (None, "missing <size>".to_string()));
        assert_eq!(
            case("<size><width>0</width><height>0</height></size>"),
            (None, "missing <size>".to_string())
        );
        assert_eq!(
            case("<size><width/><height>3</height></size>"),
            (None, "missing <size>".to_string())
        );
        assert_eq!(
            case("<size><width>500.0</width><height>375</height></size>"),
            (Some((500, 375)), "non-integer <size>".to_string())
        );
        assert_eq!(
            case("<size><width>500.5</width><height>375</height></size>"),
            (None, "unreadable <size>".to_string())
        );
        assert_eq!(
            case("<size><width>-5</width><height>abc</height></size>"),
            (None, "unreadable <size>".to_string())
        );
        assert_eq!(
            case("<size><height> 375 </height><width>500</width></size>"),
            (Some((500, 375)), String::new())
        );
    }

    #[test]
    fn parts_are_attributes_not_objects() {
        let (a, q) = one(&voc(
            "<object><name>person</name>\
             <bndbox><xmin>10</xmin><ymin>20</ymin><xmax>100</xmax><ymax>200</ymax></bndbox>\
             <part><name>head</name><bndbox><xmin>40</xmin><ymin>20</ymin><xmax>60</xmax><ymax>45</ymax></bndbox></part>\
             <part><name>hand</name><bndbox><xmin>10</xmin><ymin>90</ymin><xmax>20</xmax><ymax>100</ymax></bndbox></part>\
             <part><name>hand</name><bndbox><xmin>90</xmin><ymin>90</ymin><xmax>100</xmax><ymax>100.5</ymax></bndbox></part>\
             <part><name>foot</name></part>\
             </object>\n",
        ));
        assert!(a.unreadable.is_empty());
        assert_eq!(a.objects.len(), 1);
        let e = a.objects[0].attrs.extra();
        assert_eq!(e["part:head"], "40,20,60,45");
        assert_eq!(e["part:hand"], "10,90,20,100;90,90,100,100.5");
        assert_eq!(e.len(), 2);
        assert_eq!(
            kinds(&q),
            [
                "<part> kept as attribute",
                "float coordinates",
                "unreadable <part> ignored"
            ]
        );
    }

    #[test]
    fn children_in_any_order_and_extra_attributes() {
        let (a, q) = one(&voc(
            "<object>\n<bndbox><ymax>4</ymax><xmax>3</xmax><ymin>2</ymin><xmin>1</xmin></bndbox>\n\
             <difficult>1</difficult><pose>Left</pose><name>  cat\n</name>\
             <occluded>0</occluded><note>from CVAT</note><empty/>\
             <attributes><attribute><name>color</name><value>black</value></attribute></attributes>\
             <actions><jumping>1</jumping></actions>\
             </object>\n\
             <object><pose>Unspecified</pose><name>dog</name>\
             <bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>\n",
        ));
        assert!(a.unreadable.is_empty());
        let o = &a.objects[0];
        assert_eq!(&*o.class, "cat");
        assert_eq!(
            o.bbox,
            BBox {
                xmin: 1.0,
                ymin: 2.0,
                xmax: 3.0,
                ymax: 4.0
            }
        );
        assert!(o.attrs.difficult);
        assert_eq!(o.attrs.pose(), Some("Left"));
        assert_eq!(o.attrs.extra()["note"], "from CVAT");
        assert_eq!(o.attrs.extra()["color"], "black");
        assert_eq!(o.attrs.extra().len(), 2);
        assert_eq!(o.origin.to_string(), "a.xml:4");
        assert_eq!(kinds(&q), ["nested <actions> ignored"]);
        assert_eq!(a.objects[1].attrs.pose(), None);
        assert_eq!(a.image, "a.jpg");
        assert_eq!(a.declared_size, Some((500, 375)));
    }

    #[test]
    fn one_based_moves_xmin_and_ymin_only() {
        let t = voc("<object><name>a</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>500</xmax><ymax>375</ymax></bndbox></object>");
        let (a, _) = parse_file("a.xml", &t, &VocOptions { one_based: true }).unwrap();
        assert_eq!(
            a.objects[0].bbox,
            BBox {
                xmin: 0.0,
                ymin: 0.0,
                xmax: 500.0,
                ymax: 375.0
            }
        );
        let (a, _) = parse_file("a.xml", &t, &AS_IS).unwrap();
        assert_eq!(a.objects[0].bbox.xmin, 1.0);
    }

    #[test]
    fn unreadable_objects_are_dropped_with_file_and_line() {
        let (a, _) = one(&voc(
            "<object><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>\n\
             <object><name> </name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>\n\
             <object><name>a</name><bndbox><xmin>1</xmin><ymin>2</ymin>\n<xmax>3,5</xmax><ymax>4</ymax></bndbox></object>\n\
             <object><name>a</name><bndbox><xmin>1</xmin><ymin>2</ymin><ymax>4</ymax></bndbox></object>\n\
             <object><name>a</name><bndbox><xmin>nan</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>\n\
             <object><name>a</name><bndbox><xmin/><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>\n\
             <object><name>a</name></object>\n\
             <object><name>ok</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>\n",
        ));
        assert_eq!(a.objects.len(), 1);
        assert_eq!(&*a.objects[0].class, "ok");
        let d: Vec<(&str, &str, &str)> = a
            .unreadable
            .iter()
            .map(|u| (u.reason.as_str(), u.origin.as_str(), u.class.as_str()))
            .collect();
        assert_eq!(
            d,
            [
                ("object without <name>", "a.xml:4", ""),
                ("object without <name>", "a.xml:5", ""),
                ("unreadable <xmax> \"3,5\" in <bndbox>", "a.xml:7", "a"),
                ("<bndbox> without <xmax>", "a.xml:8", "a"),
                ("unreadable <xmin> \"nan\" in <bndbox>", "a.xml:9", "a"),
                ("empty <xmin> in <bndbox>", "a.xml:10", "a"),
                ("object without <bndbox>", "a.xml:11", "a"),
            ]
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse_file("x/a.xml", "<annotation>\n<object>\n</annotation>", &AS_IS)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x/a.xml:3: malformed XML"), "{e}");
        assert!(!e.contains('\n'));
        let e = parse_file("a.xml", "\n<doc><object/></doc>", &AS_IS)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "a.xml:2: the root element is <doc>, not <annotation>: not a Pascal VOC file"
        );
        let e = parse_file("a.xml", "", &AS_IS).unwrap_err().to_string();
        assert!(e.starts_with("a.xml:1: malformed XML"), "{e}");
        // a DTD (entity expansion) is refused, not expanded
        let bomb = "<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY x \"xxxxxxxx\">]><annotation>&x;</annotation>";
        assert!(parse_file("a.xml", bomb, &AS_IS).is_err());
        // missing <filename>: a quirk, the image is found by the layout
        let (a, q) = one("<annotation/>");
        assert_eq!(a.image, "");
        assert_eq!(kinds(&q), ["missing <filename>", "missing <size>"]);
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn ann(filename: &str) -> String {
        format!(
            "<annotation><filename>{filename}</filename><size><width>10</width><height>10</height></size>\
             <object><name>a</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object></annotation>"
        )
    }

    #[test]
    fn labelimg_layout_finds_images_beside_the_xml() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "b/x1.xml", &ann("x1.jpg"));
        write(r, "b/x1.JPG", "");
        write(r, "b/x1.png", "");
        write(r, "a/x2.xml", &ann("photo.png")); // stem found; <filename> differs
        write(r, "a/x2.jpeg", "");
        write(r, "a/x3.xml", &ann("sub/real.png")); // found by <filename>
        write(r, "a/sub/real.png", "");
        write(r, "a/x4.xml", &ann("gone.jpg")); // nothing
        write(r, "set/annotations/k.xml", &ann("k.jpg")); // sibling images/
        write(r, "set/images/k.jpg", "");
        write(r, "set/annotations/y.xml", &ann("k.jpg")); // same image again
        write(r, "c/other.xml", "<svg/>");
        write(r, ".hidden/h.xml", "not even xml");
        let p = read_layout(r, &AS_IS).unwrap();
        assert_eq!(p.image_root, r);
        let names: Vec<&str> = p.images.iter().map(|a| a.image.as_str()).collect();
        assert_eq!(
            names,
            [
                "a/sub/real.png",
                "a/x2.jpeg",
                "b/x1.JPG",
                "set/images/k.jpg"
            ]
        );
        assert!(p
            .images
            .iter()
            .all(|a| a.objects.len() == 1 && a.split.is_none()));
        let q: Vec<(&str, String)> = p
            .quirks
            .iter()
            .map(|q| (q.kind.as_str(), q.origin.replace(&show(r), "R")))
            .collect();
        assert_eq!(
            q,
            [
                ("<filename> differs from the file name", "R/a/x2.xml".into()),
                ("<filename> differs from the file name", "R/b/x1.xml".into()),
                ("not a VOC file", "R/c/other.xml".into()),
            ]
        );
        assert_eq!(p.dropped.len(), 1, "{:?}", p.dropped);
        let (reason, origin) = &p.dropped[0];
        assert!(origin.ends_with("a/x4.xml"));
        assert!(
            reason.starts_with("no image for this annotation (looked for ")
                && reason.contains("/a/x4.{jpg,jpeg,png,bmp,webp,tif,tiff} and ")
                && reason.ends_with("/a/gone.jpg)"),
            "{reason}"
        );
        // a second annotation file for one image: the image is dropped
        assert_eq!(p.dropped_images.len(), 1, "{:?}", p.dropped_images);
        let (reason, origin) = &p.dropped_images[0];
        assert!(origin.ends_with("set/annotations/y.xml"));
        assert!(
            reason.starts_with("set/images/k.jpg is already annotated by "),
            "{reason}"
        );

        // a broken file is one unreadable item (the build decides: error or skip)
        write(r, "bad/b.xml", "<annotation><object></annotation>");
        let p = read_layout(r, &AS_IS).unwrap();
        let (reason, origin) = p
            .dropped
            .iter()
            .find(|(w, _)| w.starts_with(UNREADABLE))
            .unwrap();
        assert!(origin.contains("bad/b.xml:1"), "{origin}");
        assert!(reason.contains("malformed XML"), "{reason}");
    }

    #[test]
    fn devkit_layout_with_image_sets() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for id in ["000001", "000002", "000003", "000004", "000005"] {
            write(
                r,
                &format!("Annotations/{id}.xml"),
                &ann(&format!("{id}.jpg")),
            );
            write(r, &format!("JPEGImages/{id}.jpg"), "");
        }
        write(r, "ImageSets/Main/train.txt", "000001\n000002\n");
        write(r, "ImageSets/Main/val.txt", "000003\n\n000009\n");
        write(r, "ImageSets/Main/test.txt", "000004\n");
        write(r, "ImageSets/Main/trainval.txt", "000001\n000002\n000003\n");
        write(r, "ImageSets/Main/aeroplane_train.txt", "000005 -1\n");
        let p = read_layout(r, &AS_IS).unwrap();
        assert_eq!(p.image_root, r.join("JPEGImages"));
        let got: Vec<(&str, Option<&str>)> = p
            .images
            .iter()
            .map(|a| (a.image.as_str(), a.split.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("000001.jpg", Some("train")),
                ("000002.jpg", Some("train")),
                ("000003.jpg", Some("validation")),
                ("000004.jpg", Some("test")),
            ]
        );
        assert_eq!(kinds(&p.quirks), ["not in ImageSets/Main lists, left out"]);
        assert!(p.quirks[0]
            .origin
            .to_string()
            .ends_with("Annotations/000005.xml"));
        assert_eq!(p.dropped.len(), 1);
        assert_eq!(
            p.dropped[0].0,
            "listed, but Annotations/000009.xml is missing"
        );
        assert!(p.dropped[0].1.ends_with("ImageSets/Main/val.txt:3"));

        // only trainval + test: trainval is the undivided pool
        std::fs::remove_file(r.join("ImageSets/Main/train.txt")).unwrap();
        std::fs::remove_file(r.join("ImageSets/Main/val.txt")).unwrap();
        let p = read_layout(r, &AS_IS).unwrap();
        let got: Vec<Option<&str>> = p.images.iter().map(|a| a.split.as_deref()).collect();
        assert_eq!(got, [None, None, None, Some("test")]);

        // one image in two lists
        write(r, "ImageSets/Main/test.txt", "000004\n000002\n");
        let e = read_layout(r, &AS_IS).unwrap_err().to_string();
        assert!(
            e.contains("test.txt:2: 000002 is also listed in ")
                && e.contains("trainval.txt:2: an image can be in one split only"),
            "{e}"
        );

        // no lists: everything, no split; JPEGImages is required
        std::fs::remove_dir_all(r.join("ImageSets")).unwrap();
        let p = read_layout(r, &AS_IS).unwrap();
        assert_eq!(p.images.len(), 5);
        let images: Vec<String> = p.images.iter().map(|a| a.image.clone()).collect();
        std::fs::rename(r.join("JPEGImages"), r.join("images")).unwrap();
        // Annotations/ beside images/: the images found there
        let p = read_layout(r, &AS_IS).unwrap();
        let found: Vec<String> = p
            .images
            .iter()
            .map(|a| a.image.trim_start_matches("images/").to_string())
            .collect();
        assert_eq!(found, images);
        assert!(p.dropped.is_empty(), "{:?}", p.dropped);
        std::fs::remove_dir_all(r.join("images")).unwrap();
        let e = read_layout(r, &AS_IS).unwrap_err().to_string();
        assert!(e.contains("no JPEGImages/"), "{e}");
    }

    /// Every prefix of a document and every byte replaced by an XML
    /// metacharacter or digit: an error or a result, never a panic.
    #[test]
    fn damaged_documents_never_panic() {
        let doc = voc(
            "<object><name>a</name><difficult/><part><name>h</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></part>\
             <bndbox><xmin>1.5</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>",
        );
        for end in (0..=doc.len()).filter(|i| doc.is_char_boundary(*i)) {
            let _ = parse_file("a.xml", &doc[..end], &AS_IS);
        }
        for i in 0..doc.len() {
            for c in ["<", ">", "&", "\"", "/", "9", "-", "e", " ", "\u{e9}"] {
                let t = format!("{}{c}{}", &doc[..i], &doc[i + 1..]);
                let _ = parse_file("a.xml", &t, &VocOptions { one_based: true });
            }
        }
        let deep = format!(
            "<annotation>{}{}</annotation>",
            "<a>".repeat(100_000),
            "</a>".repeat(100_000)
        );
        let _ = parse_file("a.xml", &deep, &AS_IS);
    }
}
