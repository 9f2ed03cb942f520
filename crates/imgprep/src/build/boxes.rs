//! Boxes: detection sources turned into items, and every box checked and
//! moved into output pixels before anything is written.
//!
//! Sources give boxes in the units and on the picture their file uses
//! (pixels or 0..1; the stored pixels or the upright image). After the
//! prepare stage knows each image's real size and EXIF orientation,
//! [`resolve`] puts every box in output pixels: relative boxes are scaled,
//! boxes drawn on the stored pixels are turned with the orientation, then
//! each is checked (NaN, size, outside the image, duplicate, class) and
//! mapped through the crop and resize. What is dropped or changed is counted
//! by reason and listed with where it was declared.

use super::catalog::Catalog;
use super::sources::Item;
use super::Prepared;
use crate::annotations::{self, BBox, ImageAnnotation, Object, Units};
use crate::error::{Error, Result};
use crate::image::geometry::{orient_box, Mapping};
use crate::image::ImageSpec;
use crate::recipe::{
    BoxSpec, CrowdPolicy, ExifFrame, LoadedRecipe, OnError, OutsidePolicy, SourceSpec, VocOrigin,
};
use std::collections::{BTreeMap, BTreeSet};

/// What detection sources declared beside their items.
#[derive(Debug, Default, Clone)]
pub struct SourceBoxes {
    /// Some source gives boxes: this is a detection dataset.
    pub any: bool,
    /// Tolerated quirks: kind -> (count, first place).
    pub quirks: BTreeMap<String, (u64, String)>,
    /// Annotations that belong to no image and cannot be read (a COCO
    /// annotation of an image id not in `images`): (reason, where). The
    /// objects of an image that cannot be read go with their image.
    pub unreadable: Vec<(String, String)>,
    /// Images the annotation files name that cannot be used (reason, origin).
    pub unusable_images: Vec<(String, String)>,
    /// Class names the sources declare (COCO categories, YOLO names), in order.
    pub declared_classes: Vec<String>,
    /// How VOC coordinates were read, for the manifest.
    pub voc_origin: Option<VocOrigin>,
    /// Annotations whose image is missing (under `on_error = "skip"`).
    pub missing: Vec<super::catalog::Skip>,
}

fn local(r: &LoadedRecipe, p: &std::path::Path, what: &str) -> Result<std::path::PathBuf> {
    let p = r.resolve(p);
    if crate::files::is_remote(&p) {
        return Err(Error::Usage(format!(
            "{}: {what} sources read local folders (pull the data first with `imgprep pull`)",
            p.display()
        )));
    }
    Ok(p)
}

/// A source's folder or file that is not there is a usage error (exit 2),
/// as a missing ROOT is for every other source.
fn present(p: std::path::PathBuf, folder: bool) -> Result<std::path::PathBuf> {
    let ok = if folder { p.is_dir() } else { p.is_file() };
    if !ok {
        let what = if folder { "a folder" } else { "a file" };
        return Err(Error::Usage(format!("{}: is not {what}", p.display())));
    }
    Ok(p)
}

/// Reads one detection source into items (one per annotated image).
pub fn read(
    r: &LoadedRecipe,
    spec: &SourceSpec,
    items: &mut Vec<Item>,
    b: &mut SourceBoxes,
) -> Result<()> {
    b.any = true;
    let perr = |e: annotations::ParseError| Error::Problem(e.to_string());
    let (parsed, split, group) = match spec {
        SourceSpec::Voc {
            root,
            voc_origin,
            split,
            group,
        } => {
            if b.voc_origin.is_some_and(|o| o != *voc_origin) {
                return Err(Error::Usage(format!(
                    "{}: two voc sources with different voc_origin settings: one convention \
                     for all of them",
                    r.path.display()
                )));
            }
            b.voc_origin = Some(*voc_origin);
            let opts = annotations::voc::VocOptions {
                one_based: *voc_origin == VocOrigin::OneBased,
            };
            (
                annotations::voc::read_layout(&present(local(r, root, "voc")?, true)?, &opts)
                    .map_err(perr)?,
                split,
                group,
            )
        }
        SourceSpec::Coco {
            file,
            images,
            split,
            group,
        } => (
            annotations::coco::read(
                &present(local(r, file, "coco")?, false)?,
                &present(local(r, images, "coco")?, true)?,
            )
            .map_err(perr)?,
            split,
            group,
        ),
        SourceSpec::Yolo { root, split, group } => (
            annotations::yolo::read(&present(local(r, root, "yolo")?, true)?).map_err(perr)?,
            split,
            group,
        ),
        SourceSpec::Labelme { root, split, group } => (
            annotations::labelme::read(&present(local(r, root, "labelme")?, true)?)
                .map_err(perr)?,
            split,
            group,
        ),
        _ => unreachable!("only sources with boxes come here"),
    };
    let group_re = match group {
        Some(g) => Some(regex::Regex::new(g).map_err(|e| {
            Error::Usage(format!(
                "{}: group pattern {g:?} is not a regular expression: {e}",
                r.path.display()
            ))
        })?),
        None => None,
    };
    let mut parsed = parsed;
    // labelme marks regions to ignore with the label `__ignore__` (its own
    // converters leave them out): never a class
    if matches!(spec, SourceSpec::Labelme { .. }) {
        for ann in &mut parsed.images {
            let lost = &mut ann.unreadable;
            ann.objects.retain(|o| {
                let ignore = &*o.class == "__ignore__";
                if ignore {
                    lost.push(annotations::Unreadable::new(
                        "labelme __ignore__ region".into(),
                        o.origin.to_string(),
                        "",
                    ));
                }
                !ignore
            });
        }
    }
    // an annotation whose image is missing is a missing item, not a lost box
    let (missing, dropped): (Vec<_>, Vec<_>) = parsed.dropped.into_iter().partition(|(why, _)| {
        why.starts_with("no image for this annotation")
            || why.starts_with("listed, but")
            || why.starts_with(annotations::voc::UNREADABLE)
    });
    for (why, origin) in missing {
        if r.recipe.on_error == OnError::Fail {
            return Err(Error::Problem(format!(
                "{origin}: {why} (set on_error = \"skip\" to leave such items out)"
            )));
        }
        b.missing.push(super::catalog::Skip {
            item: origin.clone(),
            reason: why,
            origin: Some(origin),
        });
    }
    parsed.dropped = dropped;
    for q in parsed.quirks {
        let e = b.quirks.entry(q.kind).or_insert((0, q.origin));
        e.0 += 1;
    }
    b.unreadable.extend(parsed.dropped);
    // an image two files annotate, or one named outside the image folder:
    // bad input, which on_error decides about like a missing image
    if r.recipe.on_error == OnError::Fail {
        if let Some((why, origin)) = parsed.dropped_images.first() {
            return Err(Error::Problem(format!(
                "{origin}: {why} (set on_error = \"skip\" to leave it out and go on){}",
                match parsed.dropped_images.len() {
                    1 => String::new(),
                    n => format!("; {} more such annotation files", n - 1),
                }
            )));
        }
    }
    b.unusable_images.extend(parsed.dropped_images);
    for c in parsed.declared_classes {
        if !b.declared_classes.contains(&c) {
            b.declared_classes.push(c);
        }
    }
    items.reserve(parsed.images.len());
    // one string per class, whatever the reader made
    let mut classes = annotations::ClassNames::default();
    for mut ann in parsed.images {
        for o in &mut ann.objects {
            o.class = classes.get(&o.class);
        }
        let mut labels: Vec<String> = ann.objects.iter().map(|o| o.class.to_string()).collect();
        labels.sort();
        labels.dedup();
        labels.shrink_to_fit();
        // (a joined path keeps slack; items are held for the whole build)
        let mut path = parsed.image_root.join(&ann.image);
        path.shrink_to_fit();
        let group = match &group_re {
            None => None,
            Some(re) => match re.captures(&ann.image) {
                Some(c) => Some(
                    c.get(1)
                        .or_else(|| c.get(0))
                        .map(|m| m.as_str().to_string())
                        .unwrap_or_default(),
                ),
                None => {
                    return Err(Error::Usage(format!(
                        "{}: image {} does not match the source's group pattern {:?}",
                        ann.origin,
                        ann.image,
                        re.as_str()
                    )))
                }
            },
        };
        items.push(Item {
            rel: ann.image.clone(),
            path,
            labels,
            numeric: false,
            group,
            split: split.clone().or_else(|| ann.split.clone()),
            origin: ann.origin.clone(),
            annotation: Some(Box::new(ann)),
            frame: None,
        });
    }
    Ok(())
}

/// Counts of what the box checks did, with every dropped or changed object listed.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BoxReport {
    /// Objects the sources declared (readable ones).
    pub objects_declared: u64,
    /// Objects written (in at least one output).
    pub objects_kept: u64,
    /// Objects left out, by reason.
    pub dropped: BTreeMap<String, u64>,
    /// Objects kept but changed, by what was done (clipped to the image,
    /// turned with the EXIF orientation).
    pub changed: BTreeMap<String, u64>,
    /// Tolerated quirks of the annotation files, by kind.
    pub quirks: BTreeMap<String, u64>,
    /// Images with no object left (kept as background, or dropped).
    pub images_without_objects: u64,
    /// Images the annotation files name but that cannot be used (a path
    /// outside the folder, a second annotation file for one image), by
    /// reason; their objects are not among the objects declared.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub images_dropped: BTreeMap<String, u64>,
    /// Every dropped or changed object: where, class, what.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ObjectNote>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ObjectNote {
    pub origin: String,
    pub class: String,
    pub what: String,
}

/// Reasons objects are dropped or changed (stable strings: they are
/// counted in the manifest).
pub mod why {
    pub const NAN: &str = "a coordinate is not a number";
    pub const EMPTY: &str = "zero or negative width or height";
    pub const OUTSIDE: &str = "outside the image";
    pub const CLIPPED: &str = "clipped to the image";
    pub const CUT: &str = "cut away by the crop";
    pub const CUT_CLIPPED: &str = "clipped by the crop";
    pub const DUPLICATE: &str = "duplicate of another box of the same class";
    pub const UNKNOWN: &str = "class not in labels.names";
    pub const DIFFICULT: &str = "difficult (boxes.skip_difficult)";
    pub const CROWD: &str = "crowd region (boxes.crowd = \"drop\")";
    pub const TURNED: &str = "turned with the image's EXIF orientation";
}

/// A box is inside `0..w` x `0..h` up to this much (float noise of
/// normalised coordinates such as 1.0000005).
const EPS: f64 = 1e-6;
/// A box narrower or lower than this in the output image, in pixels, has
/// no size: outputs write pixels to a millionth and MXNet's coordinates as
/// 32-bit fractions of the image, so a thinner box could be written with a
/// width of 0, which trainers divide by.
const MIN_SIDE: f64 = 1e-3;

/// Refuses crowd regions (COCO `iscrowd = 1`) headed for outputs that
/// would write them as ordinary boxes (`unflagged`), until `boxes.crowd`
/// says what to do with them: a box around a crowd of people taught as one
/// person is a wrong label, and training code usually leaves them out.
fn check_crowds(catalog: &Catalog, written: &[usize], unflagged: &[String]) -> Result<()> {
    let crowds = written
        .iter()
        .filter_map(|&i| catalog.items[i].annotation.as_deref())
        .flat_map(|a| a.objects.iter())
        .filter(|o| o.attrs.iscrowd);
    let (mut n, mut first) = (0u64, None);
    for o in crowds {
        n += 1;
        first.get_or_insert_with(|| o.origin.to_string());
    }
    let Some(first) = first else {
        return Ok(());
    };
    Err(Error::Usage(format!(
        "{n} crowd region(s) (iscrowd = 1; first: {first}), and the output(s) {} have no crowd \
         flag: they would be ordinary boxes there. Set boxes.crowd = \"drop\" to leave them out \
         (as detectron2, MMDetection and torchvision's references train) or \"keep\" to write \
         them as boxes",
        unflagged.join(", ")
    )))
}

/// Puts every written item's boxes in output pixels, checked; returns the
/// report and the items that cannot be written (size or frame problems),
/// with the reason. Items keep only their surviving objects, in
/// `annotation.objects`, with `declared_size` = the output size.
pub(super) fn resolve(
    catalog: &mut Catalog,
    written: &[usize],
    prepared: &mut super::PreparedItems,
    spec: Option<&ImageSpec>,
    settings: &BoxSpec,
    on_error: OnError,
    unflagged: &[String],
) -> Result<BoxReport> {
    let mut rep = BoxReport::default();
    let fixed = catalog.fixed_labels();
    if settings.crowd.is_none() && !unflagged.is_empty() {
        check_crowds(catalog, written, unflagged)?;
    }
    for (reason, origin) in &catalog.boxes.unreadable {
        rep.objects_declared += 1;
        *rep.dropped.entry(reason.clone()).or_default() += 1;
        rep.objects.push(ObjectNote {
            origin: origin.clone(),
            class: String::new(),
            what: reason.clone(),
        });
    }
    for (reason, origin) in &catalog.boxes.unusable_images {
        *rep.images_dropped.entry(reason.clone()).or_default() += 1;
        rep.objects.push(ObjectNote {
            origin: origin.clone(),
            class: String::new(),
            what: format!("image dropped: {reason}"),
        });
    }
    rep.quirks = catalog
        .boxes
        .quirks
        .iter()
        .map(|(k, (n, _))| (k.clone(), *n))
        .collect();
    for &i in written {
        let Some(Prepared::Ok(info, _, geom)) = prepared.get(&i).cloned() else {
            continue;
        };
        let item = &mut catalog.items[i];
        let Some(ann) = item.annotation.as_deref_mut() else {
            continue;
        };
        rep.objects_declared += (ann.objects.len() + ann.unreadable.len()) as u64;
        for u in std::mem::take(&mut ann.unreadable).into_vec() {
            *rep.dropped.entry(u.reason.clone()).or_default() += 1;
            rep.objects.push(ObjectNote {
                origin: u.origin,
                class: u.class,
                what: u.reason,
            });
        }
        // which picture the boxes are on
        let turned = match frame(ann, &geom, spec.is_none(), settings.exif_frame) {
            Ok(t) => t,
            Err(Unsure::Ask(why)) => {
                return Err(Error::Usage(format!(
                    "{}: {} ({why})",
                    ann.origin, item.rel
                )))
            }
            Err(Unsure::Bad(why)) => {
                if on_error == OnError::Fail {
                    return Err(Error::Problem(format!(
                        "{}: {} ({why})",
                        ann.origin, item.rel
                    )));
                }
                // its boxes go with it, counted
                for o in &ann.objects {
                    *rep.dropped
                        .entry("its image was skipped (see skipped)".into())
                        .or_default() += 1;
                    rep.objects.push(ObjectNote {
                        origin: o.origin.to_string(),
                        class: o.class.to_string(),
                        what: format!("its image was skipped: {why}"),
                    });
                }
                prepared.insert(i, Prepared::Skipped(why));
                continue;
            }
        };
        let (w, h) = (geom.width as f64, geom.height as f64);
        let (sw, sh) = geom.stored();
        let map = Mapping::new(geom.width, geom.height, spec);
        let mut kept: Vec<Object> = Vec::with_capacity(ann.objects.len());
        let mut seen: BTreeSet<(std::sync::Arc<str>, [u64; 4])> = BTreeSet::new();
        for mut o in std::mem::take(&mut ann.objects) {
            let note = |what: &str, dropped: bool, rep: &mut BoxReport| {
                let counts = if dropped {
                    &mut rep.dropped
                } else {
                    &mut rep.changed
                };
                *counts.entry(what.to_string()).or_default() += 1;
                rep.objects.push(ObjectNote {
                    origin: o.origin.to_string(),
                    class: o.class.to_string(),
                    what: what.to_string(),
                });
            };
            if fixed.as_ref().is_some_and(|f| !f.contains(&*o.class)) {
                note(why::UNKNOWN, true, &mut rep);
                continue;
            }
            if settings.skip_difficult && o.attrs.difficult {
                note(why::DIFFICULT, true, &mut rep);
                continue;
            }
            if o.attrs.iscrowd && settings.crowd == Some(CrowdPolicy::Drop) {
                note(why::CROWD, true, &mut rep);
                continue;
            }
            // what changed an object is counted once it is kept (a
            // duplicate dropped after its clip counts as dropped only)
            let mut changes: Vec<&str> = Vec::new();
            let mut b = o.bbox;
            if [b.xmin, b.ymin, b.xmax, b.ymax]
                .iter()
                .any(|v| !v.is_finite())
            {
                note(why::NAN, true, &mut rep);
                continue;
            }
            if ann.units == Units::Relative {
                b = BBox {
                    xmin: b.xmin * w,
                    ymin: b.ymin * h,
                    xmax: b.xmax * w,
                    ymax: b.ymax * h,
                };
            } else if turned {
                b = orient_box(&b, sw, sh, geom.orientation);
                changes.push(why::TURNED);
            }
            if b.xmax <= b.xmin || b.ymax <= b.ymin {
                note(why::EMPTY, true, &mut rep);
                continue;
            }
            // inside the upright image
            let inside = b.xmin >= -EPS && b.ymin >= -EPS && b.xmax <= w + EPS && b.ymax <= h + EPS;
            let c = clip(&b, w, h);
            if !inside {
                // float noise of relative coordinates (1.0000005) is
                // clipped without a word, whatever the policy
                let noise = ann.units == Units::Relative
                    && b.xmin >= -1e-3 * w.max(1.0)
                    && b.ymin >= -1e-3 * h.max(1.0)
                    && b.xmax <= w * (1.0 + 1e-3)
                    && b.ymax <= h * (1.0 + 1e-3);
                if (settings.outside == OutsidePolicy::Drop && !noise)
                    || c.xmax <= c.xmin
                    || c.ymax <= c.ymin
                {
                    note(why::OUTSIDE, true, &mut rep);
                    continue;
                }
                if !noise {
                    changes.push(why::CLIPPED);
                }
            }
            b = c;
            // through the crop and resize
            let (tw, th) = (map.target.0 as f64, map.target.1 as f64);
            let m = map.map_box(&b);
            let mc = clip(&m, tw, th);
            // a segment's area (COCO's `area`) scales with the resize; the
            // area of a segment the crop cuts is not known: the box's is
            // written then
            if let Some(a) = o.attrs.area() {
                let (_, _, cw, ch) = map.crop;
                let scale = (tw / cw as f64) * (th / ch as f64);
                o.attrs.set_area((mc == m).then_some(a * scale));
            }
            if mc != m {
                let visible = mc.xmax > mc.xmin && mc.ymax > mc.ymin;
                if !visible || settings.outside == OutsidePolicy::Drop {
                    note(why::CUT, true, &mut rep);
                    continue;
                }
                changes.push(why::CUT_CLIPPED);
            }
            if mc.xmax - mc.xmin < MIN_SIDE || mc.ymax - mc.ymin < MIN_SIDE {
                note(why::EMPTY, true, &mut rep);
                continue;
            }
            let key = (
                o.class.clone(),
                [mc.xmin, mc.ymin, mc.xmax, mc.ymax].map(f64::to_bits),
            );
            if !seen.insert(key) {
                note(why::DUPLICATE, true, &mut rep);
                continue;
            }
            for what in changes {
                note(what, false, &mut rep);
            }
            // a VOC <part>'s boxes (attribute `part:NAME`, pixels of the
            // annotation's frame) go where the object's box goes; a part
            // the crop cuts away is left out
            if spec.is_some() || turned {
                move_parts(&mut o.attrs, |p| {
                    let p = if turned {
                        orient_box(&p, sw, sh, geom.orientation)
                    } else {
                        p
                    };
                    let p = clip(&map.map_box(&clip(&p, w, h)), tw, th);
                    (p.xmax > p.xmin && p.ymax > p.ymin).then_some(p)
                });
            }
            o.bbox = mc;
            kept.push(o);
        }
        rep.objects_kept += kept.len() as u64;
        if kept.is_empty() {
            rep.images_without_objects += 1;
        }
        ann.objects = kept;
        ann.units = Units::Pixels;
        ann.declared_size = Some((info.width, info.height));
        let mut labels: Vec<String> = ann.objects.iter().map(|o| o.class.to_string()).collect();
        labels.sort();
        labels.dedup();
        labels.shrink_to_fit();
        item.labels = labels;
    }
    Ok(rep)
}

/// Moves the boxes of a VOC `<part>` (attribute `part:NAME`) with `f`; a
/// part `f` gives no box for is left out, and a name with no part left is
/// removed.
fn move_parts(attrs: &mut crate::annotations::Attributes, f: impl Fn(BBox) -> Option<BBox>) {
    use crate::annotations::voc::{part_boxes, part_value, PART};
    let names: Vec<String> = attrs
        .extra()
        .keys()
        .filter(|k| k.starts_with(PART))
        .cloned()
        .collect();
    for name in names {
        let extra = attrs.extra_mut();
        let moved: Vec<String> = part_boxes(&extra[&name])
            .filter_map(|b| f(b).map(|b| part_value(&b)))
            .collect();
        if moved.is_empty() {
            extra.remove(&name);
        } else {
            extra.insert(name, moved.join(";"));
        }
    }
}

fn clip(b: &BBox, w: f64, h: f64) -> BBox {
    BBox {
        xmin: b.xmin.clamp(0.0, w),
        ymin: b.ymin.clamp(0.0, h),
        xmax: b.xmax.clamp(0.0, w),
        ymax: b.ymax.clamp(0.0, h),
    }
}

/// Why an item's boxes cannot be placed: bad input (an error under
/// `on_error = "fail"`, else a counted skip), or a question only a setting
/// answers (always an error: skipping would drop every such image).
enum Unsure {
    Bad(String),
    Ask(String),
}

/// Whether the boxes were drawn on the stored pixels and must be turned
/// with the EXIF orientation (`Ok(true)`), are on the upright image
/// (`Ok(false)`), or the item cannot be used (`Err`, why).
fn frame(
    ann: &ImageAnnotation,
    geom: &crate::image::SourceGeometry,
    pass_through: bool,
    setting: Option<ExifFrame>,
) -> std::result::Result<bool, Unsure> {
    let upright = (geom.width, geom.height);
    let stored = geom.stored();
    let oriented = geom.orientation > 1 && geom.orientation <= 8;
    if oriented && pass_through {
        return Err(Unsure::Bad(format!(
            "EXIF orientation {} in an image that is passed through: readers disagree on \
             whether to turn it (OpenCV does, TensorFlow does not), so its boxes would be wrong \
             for some; set transform.encoding = \"jpg\" to store it upright",
            geom.orientation
        )));
    }
    let declared = ann.declared_size;
    if ann.units == Units::Relative {
        // 0..1 of the image as trainers load it (upright)
        return Ok(false);
    }
    match declared {
        Some(d) if !oriented => {
            if d == upright {
                Ok(false)
            } else {
                Err(Unsure::Bad(format!(
                    "the annotation says the image is {}x{}, the file is {}x{}",
                    d.0, d.1, upright.0, upright.1
                )))
            }
        }
        Some(d) if d == upright && d != stored => Ok(false),
        Some(d) if d == stored && d != upright => Ok(true),
        Some(d) if d == stored => match setting {
            Some(f) => Ok(f == ExifFrame::Stored),
            None => Err(Unsure::Ask(format!(
                "EXIF orientation {} and the declared size {}x{} fit both the stored and the \
                 upright picture: set boxes.exif_frame = \"upright\" or \"stored\" to say which \
                 one the boxes were drawn on",
                geom.orientation, d.0, d.1
            ))),
        },
        Some(d) => Err(Unsure::Bad(format!(
            "the annotation says the image is {}x{}, the file is {}x{} (EXIF orientation {}: \
             {}x{} as stored)",
            d.0, d.1, upright.0, upright.1, geom.orientation, stored.0, stored.1
        ))),
        None if !oriented => Ok(false),
        None => match setting {
            Some(f) => Ok(f == ExifFrame::Stored),
            None => Err(Unsure::Ask(format!(
                "EXIF orientation {} and no declared size: set boxes.exif_frame = \"upright\" \
                 or \"stored\" to say which picture the boxes were drawn on",
                geom.orientation
            ))),
        },
    }
}
