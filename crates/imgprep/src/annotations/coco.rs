//! COCO instances JSON (`images`, `annotations`, `categories`).
//!
//! The file is streamed: each annotation is reduced while it is read to
//! what the model keeps (a polygon segmentation to its extent, an RLE mask
//! to a mark), so a large file costs memory in proportion to its
//! annotations, not to its polygons. No structure is ever sized from a
//! number in the file (category ids may be huge and have gaps).
//!
//! Quirks: "box from polygon" (no `bbox`, box of the polygon points),
//! "missing iscrowd", "unreadable iscrowd taken as 0", "unreadable area"
//! (each per annotation), "id written as text" (a numeric id in quotes, as
//! pylabel writes them; once per file), "missing image size",
//! "non-integer image size", "unreadable image size" (per image).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::BufReader;
use std::path::Path;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::{
    normalize_rel, open_limited, quirk, show, Attributes, BBox, ImageAnnotation, Object,
    ParseError, Parsed, QuirksOnce, Units, Unreadable, MAX_COCO_BYTES,
};

/// Reads a COCO instances file. `images_root` is where the images'
/// `file_name`s are relative to (it becomes `image_root`).
///
/// Each `images[]` entry is one [`ImageAnnotation`] (in file order, with
/// no objects when no annotation names it); `image` is its `file_name`
/// with `/` separators. Annotations join their image by `image_id` and
/// take their category's `name` as class; `declared_classes` are the
/// category names in ascending id order. Annotations that cannot be used
/// (unknown image or category, no box) are dropped with a reason and
/// `file: annotation id N`. Duplicate image ids or file names, duplicate
/// category ids or names, and malformed JSON are errors.
pub fn read(file: &Path, images_root: &Path) -> Result<Parsed, ParseError> {
    let shown = show(file);
    let mut reader = BufReader::with_capacity(1 << 16, open_limited(file, MAX_COCO_BYTES)?);
    // a byte-order mark (Windows editors write one) is not JSON: passed over
    {
        use std::io::BufRead;
        let start = reader
            .fill_buf()
            .map_err(|e| ParseError::new(&shown, format!("cannot read it: {e}")))?;
        if start.starts_with(b"\xEF\xBB\xBF") {
            reader.consume(3);
        }
    }
    let raw: RawFile = serde_json::from_reader(reader).map_err(|e| {
        if e.is_io() {
            ParseError::new(&shown, format!("cannot read it: {e}"))
        } else {
            ParseError::new(
                format!("{shown}:{}", e.line()),
                format!("not a COCO instances JSON: {e}"),
            )
        }
    })?;
    convert(&shown, raw, images_root)
}

#[derive(Deserialize)]
struct RawFile {
    images: Option<Vec<RawImage>>,
    #[serde(default)]
    annotations: Vec<RawAnn>,
    #[serde(default)]
    categories: Vec<RawCat>,
}

#[derive(Deserialize)]
struct RawImage {
    id: Option<Scalar>,
    file_name: Option<Scalar>,
    width: Option<Scalar>,
    height: Option<Scalar>,
}

#[derive(Deserialize)]
struct RawCat {
    id: Option<Scalar>,
    name: Option<Scalar>,
}

/// A JSON value where a scalar is expected; lists and objects are skipped
/// unread (`Other`).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Scalar {
    Int(i128),
    Float(f64),
    Str(String),
    Bool(bool),
    Null,
    Other,
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar::Str(v))
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Scalar, D::Error> {
                Scalar::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Scalar, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Scalar, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
        }
        d.deserialize_any(V)
    }
}

impl Scalar {
    /// An integer, and whether it was written otherwise (`"5"`, `5.0`).
    pub(super) fn int(&self) -> Option<(i64, bool)> {
        match self {
            Scalar::Int(v) => i64::try_from(*v).ok().map(|v| (v, false)),
            Scalar::Float(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => Some((*v as i64, true)),
            Scalar::Str(s) => s.trim().parse::<i64>().ok().map(|v| (v, true)),
            _ => None,
        }
    }

    /// A JSON number.
    pub(super) fn num(&self) -> Option<f64> {
        match self {
            Scalar::Int(v) => Some(*v as f64),
            Scalar::Float(v) => Some(*v),
            _ => None,
        }
    }

    /// The text of a string, number or boolean.
    pub(super) fn text(&self) -> Option<String> {
        match self {
            Scalar::Str(s) => Some(s.clone()),
            Scalar::Int(v) => Some(v.to_string()),
            Scalar::Float(v) => Some(v.to_string()),
            Scalar::Bool(v) => Some(v.to_string()),
            Scalar::Null | Scalar::Other => None,
        }
    }

    /// As shown in a message.
    pub(super) fn shown(&self) -> String {
        match self {
            Scalar::Str(s) => format!("{s:?}"),
            Scalar::Null => "null".into(),
            Scalar::Other => "a list or object".into(),
            s => s.text().unwrap_or_default(),
        }
    }
}

/// A declared image size from JSON numbers, and the quirk kind when it is
/// missing, zero, written as a float or unreadable.
pub(super) fn declared_size(
    w: Option<&Scalar>,
    h: Option<&Scalar>,
) -> (Option<(u32, u32)>, Option<&'static str>) {
    let dim = |s: Option<&Scalar>| -> Result<Option<(u32, bool)>, ()> {
        match s {
            None | Some(Scalar::Null) => Ok(None),
            Some(Scalar::Int(0)) => Ok(None),
            Some(Scalar::Int(v)) => u32::try_from(*v).map(|v| Some((v, false))).map_err(|_| ()),
            Some(Scalar::Float(v)) if *v == 0.0 => Ok(None),
            Some(Scalar::Float(v)) if *v > 0.0 && v.fract() == 0.0 && *v <= u32::MAX as f64 => {
                Ok(Some((*v as u32, true)))
            }
            _ => Err(()),
        }
    };
    match (dim(w), dim(h)) {
        (Ok(Some((w, fw))), Ok(Some((h, fh)))) => {
            (Some((w, h)), (fw || fh).then_some("non-integer image size"))
        }
        (Err(()), _) | (_, Err(())) => (None, Some("unreadable image size")),
        _ => (None, Some("missing image size")),
    }
}

/// The extent of polygon points, gathered as they are read.
#[derive(Debug, Default, Clone, Copy)]
struct Extent {
    xmin: f64,
    ymin: f64,
    xmax: f64,
    ymax: f64,
    points: usize,
    /// A coordinate that is not a number, or a polygon of odd length.
    bad: bool,
}

impl Extent {
    fn add(&mut self, x: f64, y: f64) {
        if !x.is_finite() || !y.is_finite() {
            self.bad = true;
            return;
        }
        if self.points == 0 {
            (self.xmin, self.ymin, self.xmax, self.ymax) = (x, y, x, y);
        } else {
            self.xmin = self.xmin.min(x);
            self.ymin = self.ymin.min(y);
            self.xmax = self.xmax.max(x);
            self.ymax = self.ymax.max(y);
        }
        self.points += 1;
    }

    /// Adds the pairs of a flat `[x1, y1, x2, y2, ...]` list.
    fn add_flat<'de, A: SeqAccess<'de>>(&mut self, mut a: A) -> Result<(), A::Error> {
        let mut pending: Option<f64> = None;
        while let Some(v) = a.next_element::<Scalar>()? {
            let Some(v) = v.num() else {
                self.bad = true;
                continue;
            };
            match pending.take() {
                None => pending = Some(v),
                Some(x) => self.add(x, v),
            }
        }
        if pending.is_some() {
            self.bad = true;
        }
        Ok(())
    }
}

/// What an annotation's `segmentation` is.
#[derive(Debug, Clone, Copy)]
enum Seg {
    /// Polygons (`[[x1, y1, ...], ...]`, or one flat list), as their extent.
    Polygons(Extent),
    /// An RLE mask (`{"counts", "size"}`).
    Rle,
    /// Anything else.
    Other,
}

impl<'de> Deserialize<'de> for Seg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// One element of the outer list: a polygon, or a number of a flat one.
        struct Elem<'a>(&'a mut Extent, &'a mut Option<f64>);
        impl<'de> de::DeserializeSeed<'de> for Elem<'_> {
            type Value = ();
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
                d.deserialize_any(self)
            }
        }
        impl<'de> Visitor<'de> for Elem<'_> {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a polygon")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, a: A) -> Result<(), A::Error> {
                self.0.add_flat(a)
            }
            fn visit_f64<E>(self, v: f64) -> Result<(), E> {
                match self.1.take() {
                    None => *self.1 = Some(v),
                    Some(x) => self.0.add(x, v),
                }
                Ok(())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
                self.visit_f64(v as f64)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
                self.0.bad = true;
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(())
            }
            fn visit_bool<E>(self, _: bool) -> Result<(), E> {
                self.0.bad = true;
                Ok(())
            }
            fn visit_str<E>(self, _: &str) -> Result<(), E> {
                self.0.bad = true;
                Ok(())
            }
            fn visit_unit<E>(self) -> Result<(), E> {
                self.0.bad = true;
                Ok(())
            }
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Seg;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a segmentation")
            }
            super::scalars_as!(Seg, Seg::Other, null = Seg::Polygons(Extent::default()));
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Seg, A::Error> {
                let mut ext = Extent::default();
                let mut pending = None;
                while a.next_element_seed(Elem(&mut ext, &mut pending))?.is_some() {}
                if pending.is_some() {
                    ext.bad = true;
                }
                Ok(Seg::Polygons(ext))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Seg, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Seg::Rle)
            }
        }
        d.deserialize_any(V)
    }
}

/// `bbox`: at most four numbers are kept; `n` counts all elements.
#[derive(Debug, Default, Clone, Copy)]
struct RawBox {
    v: [f64; 4],
    n: usize,
    bad: bool,
}

impl<'de> Deserialize<'de> for RawBox {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawBox;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a bbox")
            }
            super::scalars_as!(RawBox, RawBox::bad(), null = RawBox::default());
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<RawBox, A::Error> {
                let mut b = RawBox::default();
                while let Some(x) = a.next_element::<Scalar>()? {
                    match x.num().filter(|v| v.is_finite()) {
                        Some(v) if b.n < 4 => b.v[b.n] = v,
                        Some(_) => {}
                        None => b.bad = true,
                    }
                    b.n += 1;
                }
                Ok(b)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<RawBox, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(RawBox::bad())
            }
        }
        d.deserialize_any(V)
    }
}

impl RawBox {
    fn bad() -> RawBox {
        RawBox {
            bad: true,
            n: 1,
            ..RawBox::default()
        }
    }
}

/// One `annotations[]` entry, reduced as it is read.
#[derive(Debug, Default)]
struct RawAnn {
    id: Option<Scalar>,
    image_id: Option<Scalar>,
    category_id: Option<Scalar>,
    bbox: Option<RawBox>,
    segmentation: Option<Seg>,
    area: Option<Scalar>,
    iscrowd: Option<Scalar>,
    /// Other keys with a scalar value, and the scalar entries of an
    /// `attributes` object (CVAT: `occluded`, `rotation`, ...).
    extra: BTreeMap<String, String>,
}

impl<'de> Deserialize<'de> for RawAnn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// The scalar entries of an object.
        struct Attrs(BTreeMap<String, String>);
        impl<'de> Deserialize<'de> for Attrs {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = Attrs;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("attributes")
                    }
                    super::scalars_as!(Attrs, Attrs(BTreeMap::new()));
                    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Attrs, A::Error> {
                        let mut m = BTreeMap::new();
                        while let Some((k, v)) = a.next_entry::<String, Scalar>()? {
                            if let Some(t) = v.text() {
                                m.entry(k).or_insert(t);
                            }
                        }
                        Ok(Attrs(m))
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Attrs, A::Error> {
                        while a.next_element::<IgnoredAny>()?.is_some() {}
                        Ok(Attrs(BTreeMap::new()))
                    }
                }
                d.deserialize_any(V)
            }
        }

        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawAnn;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an annotation object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<RawAnn, A::Error> {
                let mut r = RawAnn::default();
                while let Some(key) = a.next_key::<String>()? {
                    match key.as_str() {
                        "id" => r.id = Some(a.next_value()?),
                        "image_id" => r.image_id = Some(a.next_value()?),
                        "category_id" => r.category_id = Some(a.next_value()?),
                        "bbox" => r.bbox = Some(a.next_value()?),
                        "segmentation" => r.segmentation = Some(a.next_value()?),
                        "area" => r.area = Some(a.next_value()?),
                        "iscrowd" => r.iscrowd = Some(a.next_value()?),
                        "attributes" => {
                            for (k, v) in a.next_value::<Attrs>()?.0 {
                                r.extra.entry(k).or_insert(v);
                            }
                        }
                        _ => {
                            if let Some(t) = a.next_value::<Scalar>()?.text() {
                                r.extra.insert(key, t);
                            }
                        }
                    }
                }
                Ok(r)
            }
        }
        d.deserialize_map(V)
    }
}

/// An image id: an integer (also when written `"5"`), or other text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ImageKey {
    Int(i64),
    Text(String),
}

impl ImageKey {
    fn from(s: &Scalar) -> Option<(ImageKey, bool)> {
        if let Some((v, texty)) = s.int() {
            return Some((ImageKey::Int(v), texty));
        }
        match s {
            Scalar::Str(t) if !t.trim().is_empty() => Some((ImageKey::Text(t.clone()), false)),
            _ => None,
        }
    }
}

impl fmt::Display for ImageKey {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ImageKey::Int(v) => write!(f, "{v}"),
            ImageKey::Text(t) => write!(f, "{t:?}"),
        }
    }
}

fn convert(file: &str, raw: RawFile, images_root: &Path) -> Result<Parsed, ParseError> {
    let Some(raw_images) = raw.images else {
        return Err(ParseError::new(
            file,
            "has no \"images\" list: not a COCO instances file",
        ));
    };
    let mut out = Parsed {
        image_root: images_root.to_path_buf(),
        ..Parsed::default()
    };
    let mut once = QuirksOnce::default();

    // categories: id -> name, in ascending id order
    let mut cats: BTreeMap<i64, String> = BTreeMap::new();
    let mut cat_names: HashMap<String, i64> = HashMap::new();
    for (i, c) in raw.categories.iter().enumerate() {
        let at = format!("{file}: categories[{i}]");
        let Some((id, texty)) = c.id.as_ref().and_then(Scalar::int) else {
            return Err(ParseError::new(at, "has no integer id"));
        };
        if texty {
            once.add("id written as text", &at);
        }
        let name = c
            .name
            .as_ref()
            .and_then(Scalar::text)
            .map(|n| n.trim().to_string())
            .unwrap_or_default();
        if name.is_empty() {
            return Err(ParseError::new(at, format!("category id {id} has no name")));
        }
        if let Some(first) = cats.get(&id) {
            return Err(ParseError::new(
                at,
                format!("category id {id} appears twice ({first:?} and {name:?})"),
            ));
        }
        if let Some(other) = cat_names.get(&name) {
            return Err(ParseError::new(
                at,
                format!("category name {name:?} appears twice (ids {other} and {id})"),
            ));
        }
        cat_names.insert(name.clone(), id);
        cats.insert(id, name);
    }

    // images, in file order; those whose path leaves the root are dropped
    let mut index: HashMap<ImageKey, Option<usize>> = HashMap::new();
    let mut paths: HashMap<String, ImageKey> = HashMap::new();
    for (i, im) in raw_images.iter().enumerate() {
        let at = format!("{file}: images[{i}]");
        let Some((key, texty)) = im.id.as_ref().and_then(ImageKey::from) else {
            return Err(ParseError::new(at, "has no readable id"));
        };
        if texty {
            once.add("id written as text", &at);
        }
        let origin = format!("{file}: image id {key}");
        if index.contains_key(&key) {
            return Err(ParseError::new(
                origin,
                format!("image id {key} appears twice (images[{i}] is the second)"),
            ));
        }
        let name = match &im.file_name {
            Some(Scalar::Str(s)) if !s.trim().is_empty() => s.trim().to_string(),
            _ => return Err(ParseError::new(origin, "has no file_name")),
        };
        let Some(image) = normalize_rel(&name) else {
            out.dropped_images.push((
                format!("file_name {name:?} is not a path inside the image folder"),
                origin,
            ));
            index.insert(key, None);
            continue;
        };
        if let Some(other) = paths.get(&image) {
            // one image declared twice: the later declaration is left out
            // (on_error decides whether that stops the build)
            out.dropped_images.push((
                format!("file_name {image:?} is also image id {other}'s"),
                origin,
            ));
            index.insert(key, None);
            continue;
        }
        let (declared_size, q) = declared_size(im.width.as_ref(), im.height.as_ref());
        if let Some(kind) = q {
            out.quirks.push(quirk(kind, &origin));
        }
        paths.insert(image.clone(), key.clone());
        index.insert(key, Some(out.images.len()));
        out.images.push(ImageAnnotation {
            image,
            declared_size,
            units: Units::Pixels,
            objects: Vec::new(),
            split: None,
            origin: origin.into(),
            unreadable: Default::default(),
        });
    }

    for (i, a) in raw.annotations.into_iter().enumerate() {
        let origin = match &a.id {
            Some(id @ (Scalar::Int(_) | Scalar::Str(_) | Scalar::Float(_))) => {
                format!("{file}: annotation id {}", id.text().unwrap_or_default())
            }
            _ => format!("{file}: annotations[{i}]"),
        };
        match annotation(a, &cats, &index, &origin, &mut out, &mut once) {
            Ok((at, obj)) => out.images[at].objects.push(obj),
            // an object of a known image goes with its image
            Err((Some((at, class)), reason)) => out.images[at]
                .unreadable
                .push(Unreadable::new(reason, origin, class)),
            Err((None, reason)) => out.dropped.push((reason, origin)),
        }
    }
    out.quirks.extend(once.list);
    out.declared_classes = cats.into_values().collect();
    Ok(out)
}

/// Why an annotation is dropped, with its image's index and its class
/// when they are known.
type Refused = (Option<(usize, String)>, String);

/// One annotation: the index of its image and the object, or why it is
/// dropped.
fn annotation(
    a: RawAnn,
    cats: &BTreeMap<i64, String>,
    index: &HashMap<ImageKey, Option<usize>>,
    origin: &str,
    out: &mut Parsed,
    once: &mut QuirksOnce,
) -> Result<(usize, Object), Refused> {
    let image = image_of(&a, index, origin, once).map_err(|why| (None, why))?;
    // (its class's name, for the message, only when it is dropped)
    let category = a
        .category_id
        .as_ref()
        .and_then(Scalar::int)
        .map(|(id, _)| id);
    object(a, cats, origin, out, once)
        .map(|o| (image, o))
        .map_err(|why| {
            let class = category.and_then(|id| cats.get(&id)).cloned();
            (Some((image, class.unwrap_or_default())), why)
        })
}

/// The index of an annotation's image.
fn image_of(
    a: &RawAnn,
    index: &HashMap<ImageKey, Option<usize>>,
    origin: &str,
    once: &mut QuirksOnce,
) -> Result<usize, String> {
    Ok(match a.image_id.as_ref().map(|s| (s, ImageKey::from(s))) {
        None => return Err("annotation without image_id".into()),
        Some((s, None)) => return Err(format!("unreadable image_id {}", s.shown())),
        Some((_, Some((key, texty)))) => {
            if texty {
                once.add("id written as text", origin);
            }
            match index.get(&key) {
                None => return Err(format!("image id {key} not in images")),
                Some(None) => return Err(format!("its image (id {key}) was dropped")),
                Some(Some(at)) => *at,
            }
        }
    })
}

/// An annotation's object, or why it cannot be read.
fn object(
    a: RawAnn,
    cats: &BTreeMap<i64, String>,
    origin: &str,
    out: &mut Parsed,
    once: &mut QuirksOnce,
) -> Result<Object, String> {
    let class = match a.category_id.as_ref().map(|s| (s, s.int())) {
        None => return Err("annotation without category_id".into()),
        Some((s, None)) => return Err(format!("unreadable category_id {}", s.shown())),
        Some((_, Some((id, texty)))) => {
            if texty {
                once.add("id written as text", origin);
            }
            match cats.get(&id) {
                Some(name) => name.clone(),
                None => return Err(format!("category id {id} not in categories")),
            }
        }
    };
    let mut attrs = Attributes::default();
    if !a.extra.is_empty() {
        *attrs.extra_mut() = a.extra;
    }
    let bbox = match (a.bbox, a.segmentation) {
        (Some(b), _) if b.n == 4 && !b.bad => BBox::from_xywh(b.v[0], b.v[1], b.v[2], b.v[3]),
        (Some(b), _) if b.n == 4 => {
            return Err(
                "unreadable bbox (a value is not a finite number; want 4 numbers x, y, width, \
                 height)"
                    .into(),
            )
        }
        (Some(b), _) if b.n != 0 => {
            return Err(format!(
                "unreadable bbox ({} values; want 4 numbers x, y, width, height)",
                b.n
            ))
        }
        (_, Some(Seg::Polygons(e))) if e.bad => {
            return Err("no bbox, and an unreadable segmentation polygon".into())
        }
        (_, Some(Seg::Polygons(e))) if e.points > 0 => {
            attrs.from_polygon = true;
            out.quirks.push(quirk("box from polygon", origin));
            BBox {
                xmin: e.xmin,
                ymin: e.ymin,
                xmax: e.xmax,
                ymax: e.ymax,
            }
        }
        (_, Some(Seg::Rle)) => return Err("RLE mask without bbox".into()),
        _ => return Err("annotation without bbox or segmentation".into()),
    };
    attrs.iscrowd = match &a.iscrowd {
        None | Some(Scalar::Null) => {
            out.quirks.push(quirk("missing iscrowd", origin));
            false
        }
        Some(Scalar::Int(0)) | Some(Scalar::Bool(false)) => false,
        Some(Scalar::Int(1)) | Some(Scalar::Bool(true)) => true,
        Some(_) => {
            out.quirks
                .push(quirk("unreadable iscrowd taken as 0", origin));
            false
        }
    };
    attrs.set_area(match &a.area {
        None | Some(Scalar::Null) => None,
        Some(s) => match s.num().filter(|v| v.is_finite()) {
            Some(v) => Some(v),
            None => {
                out.quirks.push(quirk("unreadable area", origin));
                None
            }
        },
    });
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

    fn parse(json: &str) -> Result<Parsed, ParseError> {
        let raw: RawFile = serde_json::from_str(json)
            .map_err(|e| ParseError::new(format!("c.json:{}", e.line()), e.to_string()))?;
        convert("c.json", raw, Path::new("imgs"))
    }

    fn kinds(p: &Parsed) -> Vec<&str> {
        p.quirks.iter().map(|q| q.kind.as_str()).collect()
    }

    const CATS: &str = r#""categories": [{"id": 90, "name": "zebra"}, {"id": 1, "name": "person"}, {"id": 3000000000000, "name": "car"}]"#;

    #[test]
    fn real_labelme_coco_instances() {
        let Some(data) = crate::annotations::shared_data() else {
            return;
        };
        let dir = data.join("detection/labelme_coco_instances");
        let file = dir.join("annotations.json");
        let p = read(&file, &dir).unwrap();
        assert_eq!(p.image_root, dir);
        assert_eq!(p.declared_classes.len(), 21);
        assert_eq!(p.declared_classes[0], "_background_");
        assert_eq!(p.declared_classes[15], "person");
        assert_eq!(p.declared_classes[20], "tv/monitor");
        let names: Vec<&str> = p.images.iter().map(|a| a.image.as_str()).collect();
        assert_eq!(
            names,
            [
                "JPEGImages/2011_000003.jpg",
                "JPEGImages/2011_000025.jpg",
                "JPEGImages/2011_000006.jpg"
            ]
        );
        let n: Vec<usize> = p.images.iter().map(|a| a.objects.len()).collect();
        assert_eq!(n, [3, 3, 6]);
        assert!(
            p.dropped.is_empty() && p.quirks.is_empty(),
            "{:?} {:?}",
            p.dropped,
            p.quirks
        );
        let a = &p.images[0];
        assert_eq!(a.declared_size, Some((500, 338)));
        let shown = show(&file);
        assert_eq!(a.origin.to_string(), format!("{shown}: image id 0"));
        let o = &a.objects[1];
        assert_eq!(&*o.class, "person");
        assert_eq!(o.bbox, BBox::from_xywh(365.0, 87.0, 135.0, 251.0));
        assert_eq!(o.attrs.area(), Some(17254.0));
        assert!(!o.attrs.iscrowd && !o.attrs.from_polygon);
        assert_eq!(o.origin.to_string(), format!("{shown}: annotation id 1"));
        let classes: Vec<&str> = p.images[2].objects.iter().map(|o| &*o.class).collect();
        assert_eq!(
            classes,
            ["person", "person", "person", "chair", "person", "sofa"]
        );
    }

    #[test]
    fn id_gaps_huge_ids_and_unknown_category() {
        let p = parse(&format!(
            r#"{{"images": [{{"id": 7, "file_name": "a\\b.jpg", "width": 640, "height": 480}},
                           {{"id": 8, "file_name": "./c.jpg"}}],
               "annotations": [
                 {{"id": 1, "image_id": 7, "category_id": 3000000000000, "bbox": [10, 20.5, 30, 40], "area": 1200, "iscrowd": 0}},
                 {{"id": 2, "image_id": 7, "category_id": 2, "bbox": [1, 1, 1, 1], "iscrowd": 0}},
                 {{"id": 3, "image_id": 9, "category_id": 1, "bbox": [1, 1, 1, 1], "iscrowd": 0}},
                 {{"image_id": 7, "category_id": "x", "bbox": [1, 1, 1, 1], "iscrowd": 0}}
               ], {CATS}}}"#
        ))
        .unwrap();
        assert_eq!(p.declared_classes, ["person", "zebra", "car"]);
        assert_eq!(p.images[0].image, "a/b.jpg");
        assert_eq!(p.images[1].image, "c.jpg");
        assert_eq!(p.images[0].declared_size, Some((640, 480)));
        assert_eq!(p.images[1].declared_size, None);
        assert_eq!(kinds(&p), ["missing image size"]);
        assert_eq!(p.images[0].objects.len(), 1);
        let o = &p.images[0].objects[0];
        assert_eq!(&*o.class, "car");
        assert_eq!(
            o.bbox,
            BBox {
                xmin: 10.0,
                ymin: 20.5,
                xmax: 40.0,
                ymax: 60.5
            }
        );
        assert_eq!(o.attrs.area(), Some(1200.0));
        assert_eq!(o.origin.to_string(), "c.json: annotation id 1");
        assert!(p.images[1].objects.is_empty());
        // objects of a known image go with it; the others are the source's
        let d: Vec<(&str, &str)> = p
            .dropped
            .iter()
            .map(|(r, o)| (r.as_str(), o.as_str()))
            .collect();
        assert_eq!(d, [("image id 9 not in images", "c.json: annotation id 3")]);
        let d: Vec<(&str, &str)> = p
            .images
            .iter()
            .flat_map(|a| a.unreadable.iter())
            .map(|u| (u.reason.as_str(), u.origin.as_str()))
            .collect();
        assert_eq!(
            d,
            [
                ("category id 2 not in categories", "c.json: annotation id 2"),
                ("unreadable category_id \"x\"", "c.json: annotations[3]"),
            ]
        );
    }

    #[test]
    fn boxes_from_polygons_rle_and_missing_iscrowd() {
        let p = parse(&format!(
            r#"{{"images": [{{"id": 1, "file_name": "a.jpg", "width": 100.0, "height": 50}}],
               "annotations": [
                 {{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[10, 20, 30, 5.5, 25, 40], [50, 45, 52, 46]], "iscrowd": 0}},
                 {{"id": 2, "image_id": 1, "category_id": 1, "segmentation": {{"counts": "abc", "size": [50, 100]}}, "iscrowd": 1}},
                 {{"id": 3, "image_id": 1, "category_id": 1, "segmentation": {{"counts": [1, 2], "size": [50, 100]}}, "bbox": [1, 2, 3, 4], "iscrowd": 1, "area": 6}},
                 {{"id": 4, "image_id": 1, "category_id": 1, "bbox": [], "segmentation": [1, 2, 3, 4, 5, 6]}},
                 {{"id": 5, "image_id": 1, "category_id": 1, "segmentation": [[1, 2, 3]]}},
                 {{"id": 6, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3]}},
                 {{"id": 7, "image_id": 1, "category_id": 1}},
                 {{"id": 8, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "iscrowd": 2, "area": "big",
                   "attributes": {{"occluded": false, "rotation": 0.0, "track": [1]}}, "score": 0.9, "keypoints": [1, 2, 2]}}
               ], {CATS}}}"#
        ))
        .unwrap();
        let a = &p.images[0];
        assert_eq!(a.declared_size, Some((100, 50)));
        let objs: Vec<(BBox, bool, bool)> = a
            .objects
            .iter()
            .map(|o| (o.bbox, o.attrs.from_polygon, o.attrs.iscrowd))
            .collect();
        let b = |x0, y0, x1, y1| BBox {
            xmin: x0,
            ymin: y0,
            xmax: x1,
            ymax: y1,
        };
        assert_eq!(
            objs,
            [
                (b(10.0, 5.5, 52.0, 46.0), true, false),
                (b(1.0, 2.0, 4.0, 6.0), false, true),
                (b(1.0, 2.0, 5.0, 6.0), true, false),
                (b(1.0, 2.0, 4.0, 6.0), false, false),
            ]
        );
        let extra = a.objects[3].attrs.extra();
        assert_eq!(extra.get("occluded").map(String::as_str), Some("false"));
        assert_eq!(extra.get("rotation").map(String::as_str), Some("0"));
        assert_eq!(extra.get("score").map(String::as_str), Some("0.9"));
        assert_eq!(extra.len(), 3, "{extra:?}");
        assert_eq!(a.objects[3].attrs.area(), None);
        let q: Vec<(&str, &str)> = p
            .quirks
            .iter()
            .map(|q| (q.kind.as_str(), q.origin.as_str()))
            .collect();
        assert_eq!(
            q,
            [
                ("non-integer image size", "c.json: image id 1"),
                ("box from polygon", "c.json: annotation id 1"),
                ("box from polygon", "c.json: annotation id 4"),
                ("missing iscrowd", "c.json: annotation id 4"),
                ("unreadable iscrowd taken as 0", "c.json: annotation id 8"),
                ("unreadable area", "c.json: annotation id 8"),
            ]
        );
        assert!(p.dropped.is_empty());
        let d: Vec<&str> = a.unreadable.iter().map(|u| u.reason.as_str()).collect();
        assert!(a.unreadable.iter().all(|u| u.class == "person"), "{a:?}");
        assert_eq!(
            d,
            [
                "RLE mask without bbox",
                "no bbox, and an unreadable segmentation polygon",
                "unreadable bbox (3 values; want 4 numbers x, y, width, height)",
                "annotation without bbox or segmentation",
            ]
        );
    }

    #[test]
    fn duplicates_are_errors() {
        let e = |json: &str| parse(json).unwrap_err().to_string();
        assert_eq!(
            e(r#"{"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 1, "file_name": "b.jpg"}]}"#),
            "c.json: image id 1: image id 1 appears twice (images[1] is the second)"
        );
        // one file declared by two images: the later one is left out, said
        // (the build's on_error decides whether that stops it)
        let p = parse(
            r#"{"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "./a.jpg"}]}"#,
        )
        .unwrap();
        assert_eq!(p.images.len(), 1);
        assert_eq!(
            p.dropped_images,
            [(
                "file_name \"a.jpg\" is also image id 1's".to_string(),
                "c.json: image id 2".to_string()
            )]
        );
        assert_eq!(
            e(r#"{"images": [], "categories": [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]}"#),
            "c.json: categories[1]: category id 1 appears twice (\"a\" and \"b\")"
        );
        assert_eq!(
            e(r#"{"images": [], "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": " a"}]}"#),
            "c.json: categories[1]: category name \"a\" appears twice (ids 1 and 2)"
        );
        assert_eq!(
            e(r#"{"images": [], "categories": [{"id": 1.5, "name": "a"}]}"#),
            "c.json: categories[0]: has no integer id"
        );
        assert_eq!(
            e(r#"{"images": [{"file_name": "a.jpg"}]}"#),
            "c.json: images[0]: has no readable id"
        );
        assert_eq!(
            e(r#"{"annotations": []}"#),
            "c.json: has no \"images\" list: not a COCO instances file"
        );
    }

    #[test]
    fn text_ids_and_paths_outside() {
        // pylabel writes ids as text; some tools use non-numeric image ids
        let p = parse(
            r#"{"images": [{"id": "1", "file_name": "a.jpg"}, {"id": "img-b", "file_name": "b.jpg"},
                           {"id": 3, "file_name": "../up.jpg"}],
               "annotations": [
                 {"id": 1, "image_id": 1, "category_id": "1", "bbox": [1, 2, 3, 4], "iscrowd": 0},
                 {"id": 2, "image_id": "img-b", "category_id": 1, "bbox": [1, 2, 3, 4], "iscrowd": 0},
                 {"id": 3, "image_id": 3, "category_id": 1, "bbox": [1, 2, 3, 4], "iscrowd": 0}],
               "categories": [{"id": 1, "name": "x"}]}"#,
        )
        .unwrap();
        assert_eq!(p.images.len(), 2);
        assert_eq!(p.images[0].objects.len(), 1);
        assert_eq!(p.images[1].objects.len(), 1);
        assert_eq!(p.images[1].origin.to_string(), "c.json: image id \"img-b\"");
        let q: Vec<&str> = p.quirks.iter().map(|q| q.kind.as_str()).collect();
        assert_eq!(q.iter().filter(|k| **k == "id written as text").count(), 1);
        // the image is dropped as an image, its annotation as an object
        let d: Vec<&str> = p.dropped.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(d, ["its image (id 3) was dropped"]);
        let d: Vec<&str> = p.dropped_images.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(
            d,
            ["file_name \"../up.jpg\" is not a path inside the image folder"]
        );
    }

    #[test]
    fn files_errors_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bad.json");
        std::fs::write(&f, "{\"images\": [\n{\"id\": 1,,}]}").unwrap();
        let e = read(&f, dir.path()).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}:2: not a COCO instances JSON", show(&f))),
            "{e}"
        );
        assert!(!e.contains('\n'));
        std::fs::write(&f, "[1, 2]").unwrap();
        assert!(read(&f, dir.path()).is_err());
        std::fs::write(&f, r#"{"images": [], "annotations": [null]}"#).unwrap();
        assert!(read(&f, dir.path()).is_err());
        let e = read(&dir.path().join("none.json"), dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("none.json: cannot read it"), "{e}");
    }

    /// Every prefix of a file and every byte replaced: an error or a
    /// result, never a panic.
    #[test]
    fn damaged_files_never_panic() {
        let doc = format!(
            r#"{{"images": [{{"id": 1, "file_name": "a.jpg", "width": 10, "height": 5}}],
               "annotations": [{{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[1, 2, 3, 4, 5, 6]], "iscrowd": 0, "area": 2.5}},
                               {{"id": 2, "image_id": 1, "category_id": 90, "bbox": [1, 2, 3, 4], "attributes": {{"a": 1}}}}], {CATS}}}"#
        );
        for end in 0..=doc.len() {
            let _ = parse(&doc[..end]);
        }
        for i in 0..doc.len() {
            for c in [
                "[",
                "]",
                "{",
                "}",
                "\"",
                ",",
                "9",
                "-",
                "e",
                "n",
                "1e999",
                "18446744073709551616",
            ] {
                let _ = parse(&format!("{}{c}{}", &doc[..i], &doc[i + 1..]));
            }
        }
        let deep = format!(
            "{{\"images\": {}{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(parse(&deep).is_err());
    }
}
