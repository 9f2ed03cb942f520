//! YOLO txt labels in the ultralytics layout: one `.txt` per image with a
//! line `class cx cy w h` (fractions of the image) per object, class names
//! in `data.yaml` (or labelImg's `classes.txt`).
//!
//! Quirks (per object unless said): "polygon as box" (a segment line
//! `class x1 y1 x2 y2 ...`, or an OBB's four corners, read as the box of
//! its points), "keypoints ignored" (a pose line matching data.yaml's
//! `kpt_shape`), "coordinate outside 0..1" (kept; the build clips), "no
//! label file (background)" (per image), "image listed twice" (per
//! image), "validation: read as val" and "data.yaml path: not found, using
//! its folder" (once).

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_yaml_ng::Value;

use super::voc::UNREADABLE;
use super::{
    is_file, is_image_name, list_dir, parse_num, quirk, read_text, rel_slash, show, walk_files,
    Attributes, BBox, ImageAnnotation, Object, ParseError, Parsed, Quirk, Units, Unreadable,
    MAX_FILE_BYTES,
};

/// Largest data.yaml / classes.txt read.
const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// Most nodes plus string bytes a data.yaml may expand to. YAML aliases
/// repeat what they name: serde_yaml_ng stops exponential expansion, but
/// 100k aliases of a 100k-item anchor would still be 10^10 values, so the
/// document is first walked with this budget.
const YAML_BUDGET: usize = 8 << 20;

/// A value further than this outside 0..1 cannot be a fraction of the
/// image: the line is dropped (pixel coordinates, most likely).
const FAR_BELOW: f64 = -1.0;
const FAR_ABOVE: f64 = 2.0;

/// Reads an ultralytics YOLO dataset folder.
///
/// Class names: `root/data.yaml` (else the one `*.yaml`/`*.yml` in root)
/// `names:`, a list or an `{id: name}` map with ids 0..N-1 (an `nc:` that
/// disagrees is an error); else `root/classes.txt` or
/// `root/labels/classes.txt` (one name a line, as labelImg writes it).
/// They are `declared_classes`.
///
/// Images: data.yaml's `train`, `val` (or `validation`), `test` give
/// split `"train"`, `"validation"`, `"test"`; each is a folder of images
/// (searched recursively), a `.txt` list of image paths (`./x` and other
/// relative lines are relative to the list's folder), or a list of those.
/// They are relative to `path:` when it names an existing folder (relative
/// to root when relative), else to root; a value starting with `../` that
/// does not exist is retried without it, as ultralytics does (Roboflow's
/// exports rely on it). Without these keys: the images under
/// `root/images/`, where a first folder named `train`, `val`/`valid`/
/// `validation` or `test` gives the split; without `images/`, every image
/// under root, with no split. An image in two splits is an error.
///
/// `image_root` is root (or data.yaml's `path:` folder); `image` is
/// relative to it. An image's label file replaces the last `images` folder
/// of its path by `labels` and the extension by `.txt`, or is beside it
/// when there is no `images` folder. A missing label file is a background
/// image (quirk); an empty one is too, without a quirk. Boxes are
/// [`Units::Relative`]. Lines that cannot be read are dropped with a reason
/// and `file:line`. A label file in a `labels` folder with no image is an
/// annotation without its image ("no image for this annotation").
pub fn read(root: &Path) -> Result<Parsed, ParseError> {
    if !root.is_dir() {
        return Err(ParseError::new(show(root), "is not a folder"));
    }
    let mut quirks = Vec::new();
    let cfg = config(root, &mut quirks)?;
    let base = cfg.base.clone();
    let mut out = Parsed {
        image_root: base.clone(),
        declared_classes: cfg.names.clone(),
        quirks,
        ..Parsed::default()
    };
    let entries = match &cfg.splits {
        Some(splits) => listed_images(&cfg, splits, &mut out)?,
        None => found_images(&base)?,
    };
    orphan_labels(&base, &entries, cfg.splits.is_none(), &mut out)?;
    for (image, split) in entries {
        let label = base.join(label_path(&image));
        let label_shown = show(&label);
        let mut ann = ImageAnnotation {
            image,
            declared_size: None,
            units: Units::Relative,
            objects: Vec::new(),
            split,
            origin: label_shown.clone().into(),
            unreadable: Default::default(),
        };
        if !label.exists() {
            out.quirks
                .push(quirk("no label file (background)", &label_shown));
        } else {
            // a label file that cannot be read (not UTF-8, a FIFO): its
            // image's boxes are unknown, so the image is left out, named
            let text = match read_text(&label, MAX_FILE_BYTES) {
                Ok(t) => t,
                Err(e) => {
                    out.dropped
                        .push((format!("{UNREADABLE}: {}", e.message), e.origin));
                    continue;
                }
            };
            for (i, line) in text.lines().enumerate() {
                let origin = format!("{label_shown}:{}", i + 1);
                match parse_line(line, &cfg, &origin, &mut out.quirks) {
                    Ok(Some(o)) => ann.objects.push(o),
                    Ok(None) => {}
                    Err(reason) => {
                        let class = line
                            .split_whitespace()
                            .next()
                            .and_then(|t| t.parse::<usize>().ok())
                            .and_then(|c| cfg.names.get(c))
                            .map(|c| c.to_string())
                            .unwrap_or_default();
                        ann.unreadable.push(Unreadable::new(reason, origin, class))
                    }
                }
            }
        }
        out.images.push(ann);
    }
    Ok(out)
}

/// Label files in a `labels` folder with no image of their name in the
/// matching `images` folder: annotations whose image is missing, dropped
/// as such (the build's on_error decides; they were passed over without a
/// word, their boxes not even counted). Looked for in the folders of the
/// dataset's label files and, when the images were found under
/// `images/` (`whole_tree`), everywhere under `labels/`. A label file whose
/// image is there but not in the dataset's lists is not the dataset's
/// business. Labels beside their images (no `labels` folder) are not
/// looked at: other text files live there.
fn orphan_labels(
    base: &Path,
    entries: &[(String, Option<String>)],
    whole_tree: bool,
    out: &mut Parsed,
) -> Result<(), ParseError> {
    let used: std::collections::HashSet<String> =
        entries.iter().map(|(image, _)| label_path(image)).collect();
    let mut dirs: std::collections::BTreeSet<String> = used
        .iter()
        .filter_map(|l| l.rsplit_once('/').map(|(d, _)| d.to_string()))
        .filter(|d| d.split('/').any(|p| p == "labels"))
        .collect();
    let labels = base.join("labels");
    if whole_tree && base.join("images").is_dir() && labels.is_dir() {
        for f in walk_files(&labels, &|n| n.ends_with(".txt"))? {
            if let Some(rel) = rel_slash(base, &f) {
                if let Some((d, _)) = rel.rsplit_once('/') {
                    dirs.insert(d.to_string());
                }
            }
        }
    }
    for dir in dirs {
        let images_dir = {
            let mut parts: Vec<&str> = dir.split('/').collect();
            let Some(k) = parts.iter().rposition(|p| *p == "labels") else {
                continue;
            };
            parts[k] = "images";
            parts.join("/")
        };
        let names = list_dir(&base.join(&dir))?;
        let mut image_stems: Option<std::collections::HashSet<String>> = None;
        for name in names.iter().filter(|n| n.ends_with(".txt")) {
            let rel = format!("{dir}/{name}");
            if used.contains(&rel) || (name == "classes.txt" && dir == "labels") {
                continue;
            }
            let stem = &name[..name.len() - 4];
            let stems = image_stems.get_or_insert_with(|| {
                list_dir(&base.join(&images_dir))
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|n| is_image_name(n))
                    .filter_map(|n| n.rsplit_once('.').map(|(s, _)| s.to_string()))
                    .collect()
            });
            if stems.contains(stem) {
                continue;
            }
            out.dropped.push((
                format!(
                    "no image for this annotation (looked for {}/{images_dir}/{stem}.{{{}}})",
                    show(base),
                    super::IMAGE_EXTENSIONS.join(",")
                ),
                show(&base.join(&rel)),
            ));
        }
    }
    Ok(())
}

/// What the class names file and data.yaml say.
struct Config {
    names: Vec<String>,
    /// data.yaml shown, when there is one.
    yaml: Option<String>,
    /// Folder image paths are relative to (root, or data.yaml's `path:`).
    base: PathBuf,
    /// data.yaml's split keys: (split, values), in train, val, test order.
    splits: Option<Vec<(&'static str, &'static str, Vec<String>)>>,
    /// data.yaml `kpt_shape: [keypoints, values per keypoint]`.
    kpt: Option<(usize, usize)>,
}

fn config(root: &Path, quirks: &mut Vec<Quirk>) -> Result<Config, ParseError> {
    let mut looked = Vec::new();
    let mut yaml_path = None;
    let data = root.join("data.yaml");
    looked.push(show(&data));
    if is_file(&data) {
        yaml_path = Some(data);
    } else {
        let yamls: Vec<String> = list_dir(root)?
            .into_iter()
            .filter(|n| {
                let l = n.to_ascii_lowercase();
                l.ends_with(".yaml") || l.ends_with(".yml")
            })
            .collect();
        match yamls.len() {
            1 => yaml_path = Some(root.join(&yamls[0])),
            0 => looked.push(format!("{}/*.yaml", show(root))),
            _ => looked.push(format!(
                "a single {}/*.yaml (found {})",
                show(root),
                yamls.join(", ")
            )),
        }
    }
    let mut cfg = Config {
        names: Vec::new(),
        yaml: None,
        base: root.to_path_buf(),
        splits: None,
        kpt: None,
    };
    if let Some(p) = &yaml_path {
        let shown = show(p);
        let map = read_yaml(p)?;
        let get = |k: &str| map.get(k).filter(|v| !v.is_null());
        if let Some(names) = get("names") {
            cfg.names = yaml_names(names, &shown)?;
            if let Some(nc) = get("nc") {
                if nc.as_u64() != Some(cfg.names.len() as u64) {
                    return Err(ParseError::new(
                        &shown,
                        format!(
                            "nc: {} disagrees with the {} names",
                            yaml_show(nc),
                            cfg.names.len()
                        ),
                    ));
                }
            }
        } else {
            looked[0] = format!("{shown} (has no names:)");
        }
        if let Some(base) = get("path") {
            let Some(s) = base.as_str() else {
                return Err(ParseError::new(&shown, "path: is not a folder name"));
            };
            let b = root.join(s);
            if b.is_dir() {
                // (`path: .` is the folder itself, not `root/.` in messages)
                cfg.base = lexical(&b);
            } else {
                quirks.push(quirk("data.yaml path: not found, using its folder", &shown));
            }
        }
        if let Some(k) = get("kpt_shape") {
            let v: Vec<u64> = k
                .as_sequence()
                .map(|s| s.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            match v[..] {
                [n, d] if n > 0 && d > 0 => cfg.kpt = Some((n as usize, d as usize)),
                _ => {
                    return Err(ParseError::new(
                        &shown,
                        "kpt_shape: is not [keypoints, values per keypoint]",
                    ))
                }
            }
        }
        let mut splits = Vec::new();
        for (key, split) in [("train", "train"), ("val", "validation"), ("test", "test")] {
            let mut v = get(key);
            if key == "val" && v.is_none() {
                v = get("validation");
                if v.is_some() {
                    quirks.push(quirk("validation: read as val", &shown));
                }
            }
            let Some(v) = v else { continue };
            let values: Option<Vec<String>> = match v {
                Value::String(s) => Some(vec![s.clone()]),
                Value::Sequence(s) => s.iter().map(|x| x.as_str().map(str::to_string)).collect(),
                _ => None,
            };
            let Some(values) = values else {
                return Err(ParseError::new(
                    &shown,
                    format!("{key}: is not a folder, a list file, or a list of them"),
                ));
            };
            splits.push((key, split, values));
        }
        if !splits.is_empty() {
            cfg.splits = Some(splits);
        }
        cfg.yaml = Some(shown);
    }
    if cfg.names.is_empty() {
        for p in [
            root.join("classes.txt"),
            root.join("labels").join("classes.txt"),
        ] {
            looked.push(show(&p));
            if is_file(&p) {
                cfg.names = classes_txt(&p)?;
                break;
            }
        }
    }
    if cfg.names.is_empty() {
        return Err(ParseError::new(
            show(root),
            format!(
                "no YOLO class names: looked for names: in {}",
                looked.join(", then in ")
            ),
        ));
    }
    Ok(cfg)
}

fn read_yaml(p: &Path) -> Result<serde_yaml_ng::Mapping, ParseError> {
    let shown = show(p);
    let text = read_text(p, MAX_CONFIG_BYTES)?;
    let yaml_err = |e: serde_yaml_ng::Error| {
        let origin = match e.location() {
            Some(l) => format!("{shown}:{}", l.line()),
            None => shown.clone(),
        };
        ParseError::new(
            origin,
            format!("unreadable YAML: {}", one_line(&e.to_string())),
        )
    };
    let used = std::cell::Cell::new(0);
    Budget(&used)
        .deserialize(serde_yaml_ng::Deserializer::from_str(&text))
        .map_err(yaml_err)?;
    let v: Value = serde_yaml_ng::from_str(&text).map_err(yaml_err)?;
    match v {
        Value::Mapping(m) => Ok(m),
        Value::Null => Ok(serde_yaml_ng::Mapping::new()),
        _ => Err(ParseError::new(shown, "is not a YAML mapping of keys")),
    }
}

/// Walks a document as the deserializer expands it (aliases included),
/// failing once it exceeds [`YAML_BUDGET`].
struct Budget<'a>(&'a std::cell::Cell<usize>);

impl Budget<'_> {
    fn spend<E: serde::de::Error>(&self, n: usize) -> Result<(), E> {
        self.0.set(self.0.get() + n);
        if self.0.get() > YAML_BUDGET {
            return Err(E::custom(
                "the document expands to too much data (aliases repeating large parts?)",
            ));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Budget<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Budget<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("YAML")
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.spend(1)
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.spend(1)
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        self.spend(1)
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        self.spend(1)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.spend(1 + v.len())
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.spend(1)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.spend(1)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
        self.spend(1)?;
        while a.next_element_seed(Budget(self.0))?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
        self.spend(1)?;
        while a.next_key_seed(Budget(self.0))?.is_some() {
            a.next_value_seed(Budget(self.0))?;
        }
        Ok(())
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn yaml_show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        _ => "a list or mapping".into(),
    }
}

fn yaml_name(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    (!s.is_empty()).then_some(s)
}

/// `names:` as a list or an `{id: name}` map with ids 0..N-1.
fn yaml_names(v: &Value, shown: &str) -> Result<Vec<String>, ParseError> {
    let err = |m: String| ParseError::new(shown, m);
    let names: Vec<String> = match v {
        Value::Sequence(s) => s
            .iter()
            .enumerate()
            .map(|(i, x)| {
                yaml_name(x).ok_or_else(|| err(format!("names: entry {i} is not a class name")))
            })
            .collect::<Result<_, _>>()?,
        Value::Mapping(m) => {
            let mut by_id = BTreeMap::new();
            for (k, x) in m {
                let id = match k {
                    Value::Number(n) => n.as_u64(),
                    Value::String(s) => s.trim().parse::<u64>().ok(),
                    _ => None,
                }
                .ok_or_else(|| err(format!("names: {} is not a class id", yaml_show(k))))?;
                let name =
                    yaml_name(x).ok_or_else(|| err(format!("names: id {id} has no class name")))?;
                by_id.insert(id, name);
            }
            let mut names = Vec::new();
            for (i, (id, name)) in by_id.into_iter().enumerate() {
                if id != i as u64 {
                    return Err(err(format!(
                        "names: ids must run 0..N-1 without gaps, and id {i} is missing"
                    )));
                }
                names.push(name);
            }
            names
        }
        _ => return Err(err("names: is neither a list nor an {id: name} map".into())),
    };
    if names.is_empty() {
        return Err(err("names: is empty".into()));
    }
    no_duplicates(&names).map_err(err)?;
    Ok(names)
}

fn no_duplicates(names: &[String]) -> Result<(), String> {
    let mut seen = HashMap::new();
    for (i, n) in names.iter().enumerate() {
        if let Some(first) = seen.insert(n.as_str(), i) {
            return Err(format!(
                "class name {n:?} appears twice (ids {first} and {i})"
            ));
        }
    }
    Ok(())
}

/// labelImg's `classes.txt`: the name of class `i` on line `i + 1`.
fn classes_txt(p: &Path) -> Result<Vec<String>, ParseError> {
    let shown = show(p);
    let text = read_text(p, MAX_CONFIG_BYTES)?;
    let mut names = Vec::new();
    for (i, l) in text.trim_end().lines().enumerate() {
        let name = l.trim();
        if name.is_empty() {
            return Err(ParseError::new(
                format!("{shown}:{}", i + 1),
                "empty line: class ids are line numbers, so no line may be empty",
            ));
        }
        names.push(name.to_string());
    }
    no_duplicates(&names).map_err(|m| ParseError::new(&shown, m))?;
    Ok(names)
}

/// `.` and `..` resolved in the text of a path (no link is followed).
fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The images of data.yaml's splits.
fn listed_images(
    cfg: &Config,
    splits: &[(&'static str, &'static str, Vec<String>)],
    out: &mut Parsed,
) -> Result<Vec<(String, Option<String>)>, ParseError> {
    let yaml = cfg.yaml.clone().unwrap_or_default();
    let base = lexical(&cfg.base);
    let mut owner: HashMap<String, &str> = HashMap::new();
    let mut entries = Vec::new();
    for (key, split, values) in splits {
        for v in values {
            let mut p = lexical(&cfg.base.join(v));
            if !p.exists() {
                if let Some(rest) = v.strip_prefix("../") {
                    p = lexical(&cfg.base.join(rest));
                }
            }
            let mut found: Vec<(PathBuf, String)> = Vec::new();
            if p.is_dir() {
                if rel_slash(&base, &p).is_none() && p != base {
                    return Err(ParseError::new(
                        &yaml,
                        format!("{key}: {v} is outside the dataset folder {}", show(&base)),
                    ));
                }
                for f in walk_files(&p, &|n| is_image_name(n))? {
                    found.push((f, show(&p)));
                }
            } else if is_file(&p) {
                let list = show(&p);
                let dir = p.parent().unwrap_or(&base).to_path_buf();
                let text = read_text(&p, MAX_FILE_BYTES)?;
                for (i, l) in text.lines().enumerate() {
                    let l = l.trim();
                    if l.is_empty() {
                        continue;
                    }
                    let l = l.strip_prefix("./").unwrap_or(l);
                    found.push((lexical(&dir.join(l)), format!("{list}:{}", i + 1)));
                }
            } else {
                return Err(ParseError::new(
                    &yaml,
                    format!(
                        "{key}: {v} is neither a folder nor a list file (looked at {})",
                        show(&p)
                    ),
                ));
            }
            for (f, origin) in found {
                let Some(rel) = rel_slash(&base, &f) else {
                    out.dropped_images
                        .push(("image outside the dataset folder".into(), origin));
                    continue;
                };
                match owner.get(&rel) {
                    Some(k) if k == key => {
                        out.quirks.push(quirk("image listed twice", origin));
                    }
                    Some(k) => {
                        return Err(ParseError::new(
                            &yaml,
                            format!(
                                "{rel} is in both {k} and {key}: an image can be in one split only"
                            ),
                        ))
                    }
                    None => {
                        owner.insert(rel.clone(), key);
                        entries.push((rel, Some(split.to_string())));
                    }
                }
            }
        }
    }
    entries.sort();
    Ok(entries)
}

/// The images found without data.yaml's split keys.
fn found_images(base: &Path) -> Result<Vec<(String, Option<String>)>, ParseError> {
    let images = base.join("images");
    let (dir, in_images) = if images.is_dir() {
        (images, true)
    } else {
        (base.to_path_buf(), false)
    };
    let mut entries = Vec::new();
    for f in walk_files(&dir, &|n| is_image_name(n))? {
        let (Some(rel), Some(inner)) = (rel_slash(base, &f), rel_slash(&dir, &f)) else {
            continue;
        };
        let split = match inner.split_once('/') {
            Some((first, _)) if in_images => match first {
                "train" => Some("train"),
                "val" | "valid" | "validation" => Some("validation"),
                "test" => Some("test"),
                _ => None,
            },
            _ => None,
        };
        entries.push((rel, split.map(str::to_string)));
    }
    Ok(entries)
}

/// The ultralytics rule: the last `images` folder becomes `labels`, the
/// extension `.txt`; beside the image when no folder is named `images`.
pub(crate) fn label_path(image: &str) -> String {
    let mut parts: Vec<&str> = image.split('/').collect();
    let n = parts.len();
    if let Some(i) = parts[..n.saturating_sub(1)]
        .iter()
        .rposition(|p| *p == "images")
    {
        parts[i] = "labels";
    }
    let name = parts[n - 1];
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    parts.pop();
    parts.push(stem);
    format!("{}.txt", parts.join("/"))
}

/// One label line: an object, nothing (blank), or why it is dropped.
fn parse_line(
    line: &str,
    cfg: &Config,
    origin: &str,
    quirks: &mut Vec<Quirk>,
) -> Result<Option<Object>, String> {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let Some((&first, rest)) = tokens.split_first() else {
        return Ok(None);
    };
    let n = tokens.len();
    let class = match first.parse::<i64>() {
        Ok(c) if c < 0 => return Err(format!("class id {c} is negative")),
        Ok(c) => match cfg.names.get(c as usize) {
            Some(name) => name.clone(),
            None => {
                return Err(format!(
                    "class id {c} is not in the names (ids 0..{})",
                    cfg.names.len() - 1
                ))
            }
        },
        Err(_) => return Err(format!("class id {first:?} is not an integer")),
    };
    let mut v = Vec::with_capacity(rest.len().min(64));
    for t in rest {
        match parse_num(t) {
            Some(x) => v.push(x),
            None => return Err(format!("{t:?} is not a number")),
        }
    }
    if let Some(x) = v.iter().find(|x| !(FAR_BELOW..=FAR_ABOVE).contains(*x)) {
        return Err(format!(
            "value {x} is far outside 0..1: YOLO coordinates are fractions of the image (pixel values?)"
        ));
    }
    let mut attrs = Attributes::default();
    let keypoints = cfg.kpt.is_some_and(|(k, d)| n == 5 + k * d);
    let bbox = if n == 5 || keypoints {
        if keypoints {
            quirks.push(quirk("keypoints ignored", origin));
        }
        let (cx, cy, w, h) = (v[0], v[1], v[2], v[3]);
        BBox {
            xmin: cx - w / 2.0,
            ymin: cy - h / 2.0,
            xmax: cx + w / 2.0,
            ymax: cy + h / 2.0,
        }
    } else if n > 5 && n % 2 == 1 {
        attrs.from_polygon = true;
        quirks.push(quirk("polygon as box", origin));
        let xs = v.iter().step_by(2);
        let ys = v.iter().skip(1).step_by(2);
        BBox {
            xmin: xs.clone().copied().fold(f64::INFINITY, f64::min),
            xmax: xs.copied().fold(f64::NEG_INFINITY, f64::max),
            ymin: ys.clone().copied().fold(f64::INFINITY, f64::min),
            ymax: ys.copied().fold(f64::NEG_INFINITY, f64::max),
        }
    } else if n < 5 {
        return Err(format!(
            "{n} values: a YOLO line is class cx cy w h (5 values)"
        ));
    } else {
        return Err(format!(
            "{n} values: neither a box (class cx cy w h) nor a polygon (class and x y pairs)"
        ));
    };
    const EPS: f64 = 1e-9;
    if [bbox.xmin, bbox.ymin, bbox.xmax, bbox.ymax]
        .iter()
        .any(|x| *x < -EPS || *x > 1.0 + EPS)
    {
        quirks.push(quirk("coordinate outside 0..1", origin));
    }
    Ok(Some(Object {
        class: class.into(),
        bbox,
        attrs,
        origin: origin.into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn kinds(p: &Parsed) -> Vec<&str> {
        p.quirks.iter().map(|q| q.kind.as_str()).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn label_path_follows_ultralytics() {
        assert_eq!(label_path("images/train/a.jpg"), "labels/train/a.txt");
        assert_eq!(
            label_path("images/x/images/a.b.png"),
            "images/x/labels/a.b.txt"
        );
        assert_eq!(label_path("train/images/a.jpg"), "train/labels/a.txt");
        assert_eq!(label_path("photos/a.jpeg"), "photos/a.txt");
        assert_eq!(label_path("a.jpg"), "a.txt");
        assert_eq!(label_path("images.jpg"), "images.txt");
    }

    /// The quokka's box and polygon (imgaug's own JSON) written as YOLO
    /// lines, read back in pixels.
    #[test]
    fn real_quokka_as_yolo() {
        let Some(data) = crate::annotations::shared_data() else {
            return;
        };
        let src = data.join("detection/imgaug_quokka");
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(src.join("quokka_annotations.json")).unwrap())
                .unwrap();
        let (w, h) = (960.0, 643.0); // quokka.jpg
        let bb = &v["bounding_boxes"][0];
        let f = |k: &str| bb[k].as_f64().unwrap();
        let (x1, y1, x2, y2) = (f("x1"), f("y1"), f("x2"), f("y2"));
        let mut label = format!(
            "0 {} {} {} {}\n",
            (x1 + x2) / 2.0 / w,
            (y1 + y2) / 2.0 / h,
            (x2 - x1) / w,
            (y2 - y1) / h
        );
        label.push('0');
        let pts = v["polygons"][0]["keypoints"].as_array().unwrap();
        for p in pts {
            let x = p["x"].as_f64().unwrap();
            let y = p["y"].as_f64().unwrap();
            label.push_str(&format!(" {} {}", x / w, y / h));
        }
        label.push('\n');
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir_all(r.join("images/train")).unwrap();
        std::fs::copy(src.join("quokka.jpg"), r.join("images/train/quokka.jpg")).unwrap();
        write(r, "labels/train/quokka.txt", &label);
        write(r, "data.yaml", "names:\n  0: animal\n");
        let p = read(r).unwrap();
        assert_eq!(p.declared_classes, ["animal"]);
        assert_eq!(p.images.len(), 1);
        let a = &p.images[0];
        assert_eq!(a.image, "images/train/quokka.jpg");
        assert_eq!(a.split.as_deref(), Some("train"));
        assert_eq!(a.units, Units::Relative);
        let o = &a.objects[0];
        assert_eq!(&*o.class, "animal");
        assert!(close(o.bbox.xmin * w, 148.0) && close(o.bbox.ymin * h, 50.0));
        assert!(close(o.bbox.xmax * w, 550.0) && close(o.bbox.ymax * h, 642.0));
        let poly = &a.objects[1].bbox;
        assert!(a.objects[1].attrs.from_polygon);
        assert!(close(poly.xmin * w, 143.0) && close(poly.xmax * w, 548.0));
        assert!(close(poly.ymin * h, 50.0) && close(poly.ymax * h, 641.0));
        assert_eq!(kinds(&p), ["polygon as box"]);
        assert!(a.objects[1]
            .origin
            .to_string()
            .ends_with("labels/train/quokka.txt:2"));
    }

    #[test]
    fn names_as_list_map_or_classes_txt() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "images/a.jpg", "");
        write(r, "data.yaml", "nc: 3\nnames: [cat, ' dog', 7]\n");
        assert_eq!(read(r).unwrap().declared_classes, ["cat", "dog", "7"]);
        write(r, "data.yaml", "names:\n  2: c\n  0: a\n  '1': b\n");
        assert_eq!(read(r).unwrap().declared_classes, ["a", "b", "c"]);
        let err = |r: &Path| read(r).unwrap_err().to_string();
        write(r, "data.yaml", "names:\n  0: a\n  2: c\n");
        assert!(
            err(r).ends_with(
                "data.yaml: names: ids must run 0..N-1 without gaps, and id 1 is missing"
            ),
            "{}",
            err(r)
        );
        write(r, "data.yaml", "names:\n  1: b\n");
        assert!(err(r).contains("id 0 is missing"));
        write(r, "data.yaml", "names: [a, b]\nnc: 3\n");
        assert!(err(r).ends_with("nc: 3 disagrees with the 2 names"));
        write(r, "data.yaml", "names: [a, b, a]\n");
        assert!(err(r).ends_with("class name \"a\" appears twice (ids 0 and 2)"));
        write(r, "data.yaml", "names: [a, [b]]\n");
        assert!(err(r).ends_with("names: entry 1 is not a class name"));
        write(r, "data.yaml", "names: [a\ntrain: x\n");
        assert!(err(r).contains("data.yaml:"), "{}", err(r));
        assert!(!err(r).contains('\n'));
        // billion laughs: aliases are not expanded without bound
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
        for (i, c) in ('b'..='j').enumerate() {
            let prev = (b'a' + i as u8) as char;
            bomb.push_str(&format!(
                "{c}: &{c} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        bomb.push_str("names: [a]\n");
        write(r, "data.yaml", &bomb);
        assert!(err(r).contains("unreadable YAML"), "{}", err(r));

        // no names in data.yaml: classes.txt (labelImg)
        write(r, "data.yaml", "train: images\n");
        let e = err(r);
        assert!(
            e.contains("no YOLO class names: looked for names: in ")
                && e.contains("data.yaml (has no names:), then in ")
                && e.contains("classes.txt, then in ")
                && e.contains("labels/classes.txt"),
            "{e}"
        );
        write(r, "labels/classes.txt", "person\r\ncar\n\n");
        assert_eq!(read(r).unwrap().declared_classes, ["person", "car"]);
        write(r, "classes.txt", "a\n\nb\n");
        assert!(err(r).ends_with(
            "classes.txt:2: empty line: class ids are line numbers, so no line may be empty"
        ));
        // a single other yaml is data.yaml; several are not
        std::fs::remove_file(r.join("classes.txt")).unwrap();
        std::fs::remove_file(r.join("data.yaml")).unwrap();
        write(r, "coco8.yaml", "names: [x]\n");
        assert_eq!(read(r).unwrap().declared_classes, ["x"]);
        write(r, "other.yml", "names: [y]\n");
        assert_eq!(read(r).unwrap().declared_classes, ["person", "car"]);
        std::fs::remove_file(r.join("labels/classes.txt")).unwrap();
        assert!(err(r).contains("a single "), "{}", err(r));
    }

    #[test]
    fn label_lines_boxes_polygons_and_drops() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "data.yaml", "names: [a, b, c]\n");
        write(r, "images/x.jpg", "");
        write(r, "images/empty.jpg", "");
        write(r, "images/none.png", "");
        write(r, "labels/empty.txt", "");
        write(
            r,
            "labels/x.txt",
            "0 0.5 0.5 0.2 0.4\n\
             \n\
             1 0.1 0.2 0.3 0.2 0.2 0.6\n\
             3 0.5 0.5 0.1 0.1\n\
             -1 0.5 0.5 0.1 0.1\n\
             1.0 0.5 0.5 0.1 0.1\n\
             a 0.5 0.5 0.1 0.1\n\
             2 0.5 0.5 0.1 abc\n\
             2 0.5 0.5 0.1\n\
             2 0.5 0.5 0.1 0.1 0.9\n\
             2 0.99 0.5 0.1000001 0.1\n\
             2 245 120 30 40\n\
             2   0.5\t0.5 0.1 nan\n\
             2 0.5 0.5 1 1\r\n",
        );
        let p = read(r).unwrap();
        let names: Vec<&str> = p.images.iter().map(|a| a.image.as_str()).collect();
        assert_eq!(
            names,
            ["images/empty.jpg", "images/none.png", "images/x.jpg"]
        );
        assert!(p.images.iter().all(|a| a.split.is_none()));
        assert!(p.images[0].objects.is_empty() && p.images[1].objects.is_empty());
        let x = &p.images[2];
        let got: Vec<(&str, [f64; 4], bool)> = x
            .objects
            .iter()
            .map(|o| {
                (
                    &*o.class,
                    [o.bbox.xmin, o.bbox.ymin, o.bbox.xmax, o.bbox.ymax],
                    o.attrs.from_polygon,
                )
            })
            .collect();
        assert_eq!(got.len(), 4);
        assert_eq!(got[0].0, "a");
        let want = [0.4, 0.3, 0.6, 0.7];
        assert!(
            got[0].1.iter().zip(want).all(|(a, b)| close(*a, b)),
            "{:?}",
            got[0]
        );
        assert_eq!(got[1], ("b", [0.1, 0.2, 0.3, 0.6], true));
        assert_eq!(got[2].0, "c");
        assert_eq!(got[3].1, [0.0, 0.0, 1.0, 1.0]);
        let origins: Vec<String> = x
            .objects
            .iter()
            .map(|o| o.origin.to_string().rsplit('/').next().unwrap().to_string())
            .collect();
        assert_eq!(origins, ["x.txt:1", "x.txt:3", "x.txt:11", "x.txt:14"]);
        let q: Vec<(&str, &str)> = p
            .quirks
            .iter()
            .map(|q| (q.kind.as_str(), q.origin.rsplit('/').next().unwrap()))
            .collect();
        assert_eq!(
            q,
            [
                ("no label file (background)", "none.txt"),
                ("polygon as box", "x.txt:3"),
                ("coordinate outside 0..1", "x.txt:11"),
            ]
        );
        assert!(p.dropped.is_empty());
        let d: Vec<(&str, &str)> = p
            .images
            .iter()
            .flat_map(|a| a.unreadable.iter())
            .map(|u| (u.reason.as_str(), u.origin.rsplit('/').next().unwrap()))
            .collect();
        assert_eq!(
            d,
            [
                ("class id 3 is not in the names (ids 0..2)", "x.txt:4"),
                ("class id -1 is negative", "x.txt:5"),
                ("class id \"1.0\" is not an integer", "x.txt:6"),
                ("class id \"a\" is not an integer", "x.txt:7"),
                ("\"abc\" is not a number", "x.txt:8"),
                ("4 values: a YOLO line is class cx cy w h (5 values)", "x.txt:9"),
                ("6 values: neither a box (class cx cy w h) nor a polygon (class and x y pairs)", "x.txt:10"),
                ("value 245 is far outside 0..1: YOLO coordinates are fractions of the image (pixel values?)", "x.txt:12"),
                ("\"nan\" is not a number", "x.txt:13"),
            ]
        );
        // a pose dataset: box + keypoints
        write(r, "data.yaml", "names: [a, b, c]\nkpt_shape: [2, 3]\n");
        write(r, "labels/x.txt", "0 0.5 0.5 0.2 0.4 0.1 0.1 2 0.2 0.2 1\n");
        let p = read(r).unwrap();
        assert_eq!(p.images[2].objects.len(), 1);
        assert!(kinds(&p).contains(&"keypoints ignored"));
    }

    #[test]
    fn splits_from_data_yaml() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        // Roboflow's export: ../train/images relative to the yaml's folder
        write(
            r,
            "data.yaml",
            "train: ../train/images\nvalidation: [val.txt]\ntest: test/images\nnames: [a]\n",
        );
        write(r, "train/images/t1.jpg", "");
        write(r, "train/images/sub/t2.png", "");
        write(r, "train/images/notes.txt", "");
        write(r, "train/labels/t1.txt", "0 0.5 0.5 0.1 0.1\n");
        write(r, "valid/images/v1.jpg", "");
        write(
            r,
            "val.txt",
            "./valid/images/v1.jpg\nvalid/images/v2.jpg\n\n../elsewhere.jpg\nvalid/images/v1.jpg\n",
        );
        write(r, "test/images/s1.jpg", "");
        let p = read(r).unwrap();
        assert_eq!(p.image_root, r);
        let got: Vec<(&str, Option<&str>)> = p
            .images
            .iter()
            .map(|a| (a.image.as_str(), a.split.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("test/images/s1.jpg", Some("test")),
                ("train/images/sub/t2.png", Some("train")),
                ("train/images/t1.jpg", Some("train")),
                ("valid/images/v1.jpg", Some("validation")),
                ("valid/images/v2.jpg", Some("validation")),
            ]
        );
        assert_eq!(p.images[2].objects.len(), 1);
        assert!(p.images[2]
            .origin
            .to_string()
            .ends_with("train/labels/t1.txt"));
        let q = kinds(&p);
        assert_eq!(q[0], "validation: read as val");
        assert_eq!(q.iter().filter(|k| **k == "image listed twice").count(), 1);
        assert_eq!(
            q.iter()
                .filter(|k| **k == "no label file (background)")
                .count(),
            4
        );
        assert!(p.dropped.is_empty());
        assert_eq!(p.dropped_images.len(), 1);
        assert_eq!(p.dropped_images[0].0, "image outside the dataset folder");
        assert!(p.dropped_images[0].1.ends_with("val.txt:4"));

        // one image in two splits
        write(
            r,
            "data.yaml",
            "train: train/images\nval: train/images\nnames: [a]\n",
        );
        let e = read(r).unwrap_err().to_string();
        assert!(
            e.ends_with("data.yaml: train/images/sub/t2.png is in both train and val: an image can be in one split only"),
            "{e}"
        );
        write(r, "data.yaml", "train: nowhere\nnames: [a]\n");
        let e = read(r).unwrap_err().to_string();
        assert!(
            e.contains("train: nowhere is neither a folder nor a list file"),
            "{e}"
        );

        // path: names the dataset folder
        write(r, "data.yaml", "path: train\ntrain: images\nnames: [a]\n");
        let p = read(r).unwrap();
        assert_eq!(p.image_root, r.join("train"));
        let got: Vec<&str> = p.images.iter().map(|a| a.image.as_str()).collect();
        assert_eq!(got, ["images/sub/t2.png", "images/t1.jpg"]);
        assert_eq!(p.images[1].objects.len(), 1);
        write(
            r,
            "data.yaml",
            "path: /no/such/dataset\ntrain: train/images\nnames: [a]\n",
        );
        let p = read(r).unwrap();
        assert_eq!(p.image_root, r);
        assert_eq!(kinds(&p)[0], "data.yaml path: not found, using its folder");
    }

    #[test]
    fn splits_from_folders_without_data_yaml() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "classes.txt", "a\n");
        write(r, "images/train/1.jpg", "");
        write(r, "images/val/2.jpg", "");
        write(r, "images/valid/3.jpg", "");
        write(r, "images/test/4.jpg", "");
        write(r, "images/other/5.jpg", "");
        write(r, "images/6.jpg", "");
        write(r, "labels/val/2.txt", "0 0.5 0.5 0.1 0.1\n");
        let p = read(r).unwrap();
        let got: Vec<(&str, Option<&str>)> = p
            .images
            .iter()
            .map(|a| (a.image.as_str(), a.split.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("images/6.jpg", None),
                ("images/other/5.jpg", None),
                ("images/test/4.jpg", Some("test")),
                ("images/train/1.jpg", Some("train")),
                ("images/val/2.jpg", Some("validation")),
                ("images/valid/3.jpg", Some("validation")),
            ]
        );
        assert_eq!(p.images[4].objects.len(), 1);
        // labelImg: labels beside the images, no images/ folder
        std::fs::remove_dir_all(r.join("images")).unwrap();
        std::fs::remove_dir_all(r.join("labels")).unwrap();
        write(r, "shots/a.jpg", "");
        write(r, "shots/a.txt", "0 0.5 0.5 0.1 0.1\n");
        let p = read(r).unwrap();
        assert_eq!(p.images.len(), 1);
        assert_eq!(p.images[0].image, "shots/a.jpg");
        assert_eq!(p.images[0].split, None);
        assert_eq!(p.images[0].objects.len(), 1);
    }

    /// Label lines of any shape: an object, nothing or a reason, never a
    /// panic.
    #[test]
    fn damaged_lines_never_panic() {
        let cfg = Config {
            names: vec!["a".into(), "b".into()],
            yaml: None,
            base: PathBuf::from("."),
            splits: None,
            kpt: Some((1, 3)),
        };
        let line = "1 0.5 0.25 0.125 1e-3 0.5 0.5 0.7";
        let mut q = Vec::new();
        for end in 0..=line.len() {
            let _ = parse_line(&line[..end], &cfg, "x:1", &mut q);
        }
        for i in 0..line.len() {
            for c in [
                "-",
                "e",
                " ",
                "9",
                "nan",
                "inf",
                "99999999999999999999",
                "\u{e9}",
                "\t",
            ] {
                let l = format!("{}{c}{}", &line[..i], &line[i + 1..]);
                let _ = parse_line(&l, &cfg, "x:1", &mut q);
            }
        }
    }
}
