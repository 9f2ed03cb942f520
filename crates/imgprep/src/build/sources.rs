//! Sources: list items (where the bytes are, labels, group, split) from a
//! class-folder tree, a CSV/TSV index, `.lst` files or a TinyImageNet-like
//! metadata layout.

use crate::error::{Error, Result};
use crate::im2rec::{list_images, LstReader};
use crate::recipe::{LabelFormat, LoadedRecipe, MetadataSplit, SourceSpec};
use recordio::LstEntry;
use std::collections::HashMap;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// One input image as a source describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Path relative to the source root, `/`-separated: the item's name in outputs.
    pub rel: String,
    /// Where the bytes are.
    pub path: PathBuf,
    /// Class names (empty: unlabelled); for a `.lst` source, class ids
    /// written as numbers (`"3"`).
    pub labels: Vec<String>,
    /// The labels are class ids (a `.lst` source), not names.
    pub numeric: bool,
    pub group: Option<String>,
    pub split: Option<String>,
    /// Where the item was declared, for messages (`file:line` or the folder).
    pub origin: crate::annotations::Origin,
    /// The item's objects (boxes), for detection sources; `None` for
    /// classification items.
    pub annotation: Option<Box<crate::annotations::ImageAnnotation>>,
    /// For video sources: which frame of which chunk (`path` is the chunk).
    pub frame: Option<super::video::FrameRef>,
}

/// Human names found along the way (metadata `names` files).
pub type HumanNames = HashMap<String, String>;

/// Everything the sources declared.
#[derive(Debug, Default)]
pub struct Sources {
    pub items: Vec<Item>,
    pub human: HumanNames,
    /// Class ids a metadata source declares, in its file's order (labels
    /// outside them are errors), and that file.
    pub declared: Vec<String>,
    pub declared_in: Option<PathBuf>,
    /// A multi-hot `.lst` source's width: it declares that many classes.
    pub multi_hot_width: Option<usize>,
    /// A source is multi-label by declaration (several label columns, a
    /// label separator, a multi-hot or id-list `.lst`), so every item's
    /// labels are written as a multi-hot vector, even with one label.
    pub multi_label: bool,
    /// Names a folder walk passed over (not files, loops, names no `.lst`
    /// can hold): listed as skipped, never dropped without a word.
    pub walk_skips: Vec<super::catalog::Skip>,
    /// Links to folders outside a source's root that its walk entered:
    /// inputs too (an output folder must not be one of them).
    pub linked_folders: Vec<PathBuf>,
    /// What detection sources declared beside their items.
    pub boxes: super::boxes::SourceBoxes,
    /// Video sources' chunks and frame tables.
    pub video: super::video::VideoSet,
}

/// `threads`: how many files (video chunks) are looked at at once.
pub fn read_sources(r: &LoadedRecipe, threads: usize) -> Result<Sources> {
    let mut items = Vec::new();
    let mut human = HumanNames::new();
    let mut declared = Vec::new();
    let mut declared_in = None;
    let mut multi_hot_width: Option<usize> = None;
    let mut multi_label = false;
    let mut walk_skips = Vec::new();
    let mut linked_folders = Vec::new();
    let mut boxes = super::boxes::SourceBoxes::default();
    let mut video = super::video::VideoSet::default();
    for s in &r.recipe.sources {
        match s {
            SourceSpec::Folders { root, exts, split } => {
                let root = r.resolve(root);
                match root.to_str() {
                    Some(uri) if crate::storage::is_remote(uri) => {
                        remote_folders(uri, exts, split, &mut items)?
                    }
                    _ => walk_skips.extend(folders(
                        &root,
                        exts,
                        split,
                        &mut items,
                        &mut linked_folders,
                    )?),
                }
            }
            SourceSpec::Csv {
                file,
                root,
                path,
                label,
                label_separator,
                group,
                split_column,
                split,
                delimiter,
            } => {
                multi_label |= label.to_vec().len() > 1 || label_separator.is_some();
                csv_index(
                    &r.resolve(file),
                    &r.resolve(root),
                    CsvColumns {
                        path,
                        labels: label.to_vec(),
                        label_separator: label_separator.as_deref(),
                        group: group.as_deref(),
                        split_column: split_column.as_deref(),
                    },
                    split,
                    delimiter.as_deref(),
                    &mut items,
                )?
            }
            SourceSpec::Lst {
                file,
                root,
                split,
                label_format,
            } => {
                let file = r.resolve(file);
                match lst(&file, &r.resolve(root), split, *label_format, &mut items)? {
                    LstLabels::Single => {}
                    LstLabels::Ids => multi_label = true,
                    LstLabels::MultiHot(w) => {
                        multi_label = true;
                        if let Some(other) = multi_hot_width.filter(|&o| o != w) {
                            return Err(Error::Usage(format!(
                                "{}: multi-hot labels {w} wide, another .lst source has {other}: \
                                 every list must have one column per class",
                                file.display()
                            )));
                        }
                        multi_hot_width = Some(w);
                    }
                }
            }
            SourceSpec::Metadata {
                root,
                class_ids,
                names,
                splits,
            } => {
                if declared_in.is_some() {
                    return Err(Error::Usage(
                        "only one metadata source may declare class ids".into(),
                    ));
                }
                declared_in = Some(class_ids.clone());
                declared.extend(metadata(
                    r,
                    &r.resolve(root),
                    &r.resolve(class_ids),
                    names.as_deref(),
                    splits,
                    (&mut items, &mut walk_skips),
                    &mut human,
                )?)
            }
            spec @ SourceSpec::Video { .. } => {
                super::video::read(r, spec, &mut items, &mut video, &mut walk_skips, threads)?
            }
            spec if spec.has_boxes() => super::boxes::read(r, spec, &mut items, &mut boxes)?,
            _ => unreachable!("every source type is handled"),
        }
    }
    if boxes.any && items.iter().any(|i| i.annotation.is_none()) {
        return Err(Error::Usage(format!(
            "{}: the recipe mixes sources with boxes (voc, coco, yolo, labelme) and sources with \
             class labels; a dataset is either for detection or for classification",
            r.path.display()
        )));
    }
    warm_listings(r, &items)?;
    Ok(Sources {
        items,
        human,
        declared,
        declared_in,
        multi_hot_width,
        multi_label,
        walk_skips,
        linked_folders,
        boxes,
        video,
    })
}

/// The folder each image source's images are under (a COCO source's
/// `images`), as the recipe resolves it; video sources have none.
pub fn image_roots(r: &LoadedRecipe) -> Vec<PathBuf> {
    r.recipe
        .sources
        .iter()
        .filter_map(|s| match s {
            SourceSpec::Folders { root, .. }
            | SourceSpec::Csv { root, .. }
            | SourceSpec::Lst { root, .. }
            | SourceSpec::Metadata { root, .. }
            | SourceSpec::Voc { root, .. }
            | SourceSpec::Yolo { root, .. }
            | SourceSpec::Labelme { root, .. } => Some(r.resolve(root)),
            SourceSpec::Coco { images, .. } => Some(r.resolve(images)),
            SourceSpec::Video { .. } => None,
        })
        .collect()
}

/// Every path a build of `r` reads: [`input_paths`], the folders that
/// folder links in the sources lead to, and the videos' label files (an
/// output must not overlap any of them).
pub fn all_inputs(r: &LoadedRecipe, sources: &Sources) -> Vec<PathBuf> {
    let mut inputs = input_paths(r);
    inputs.extend(sources.linked_folders.iter().cloned());
    inputs.extend(sources.video.label_files.iter().cloned());
    inputs
}

/// Every folder and index file the recipe's sources read (for checking
/// that the output does not overlap them).
pub fn input_paths(r: &LoadedRecipe) -> Vec<PathBuf> {
    let mut v = image_roots(r);
    for s in &r.recipe.sources {
        match s {
            SourceSpec::Csv { file, .. }
            | SourceSpec::Lst { file, .. }
            | SourceSpec::Coco { file, .. } => v.push(r.resolve(file)),
            SourceSpec::Metadata { class_ids, .. } => v.push(r.resolve(class_ids)),
            SourceSpec::Video { chunks, labels, .. } => {
                v.extend(super::video::input_paths(r, chunks, labels.as_deref()))
            }
            SourceSpec::Folders { .. }
            | SourceSpec::Voc { .. }
            | SourceSpec::Yolo { .. }
            | SourceSpec::Labelme { .. } => {}
        }
    }
    v
}

/// Items from an index (CSV, `.lst`, metadata) under an object-store root
/// at or above which one listing is cheaper than a HEAD per item.
const LIST_INSTEAD_OF_HEADS: usize = 64;

/// For index sources whose root is in object storage: one listing of the
/// root gives every item's size and time (and who is missing), where the
/// catalog would otherwise ask for each object on its own.
fn warm_listings(r: &LoadedRecipe, items: &[Item]) -> Result<()> {
    for s in &r.recipe.sources {
        // (local roots and plain http, which cannot list, are passed over)
        let root = match s {
            SourceSpec::Csv { root, .. }
            | SourceSpec::Lst { root, .. }
            | SourceSpec::Metadata { root, .. } => r.resolve(root),
            _ => continue,
        };
        let Some(uri) = root
            .to_str()
            .filter(|u| crate::storage::Uri::parse(u).is_ok_and(|u| u.can_list()))
        else {
            continue;
        };
        let under = items.iter().filter(|i| i.path.starts_with(&root)).count();
        if under >= LIST_INSTEAD_OF_HEADS {
            crate::files::list_remote(uri).map_err(|e| Error::Io {
                path: root.clone(),
                err: e,
            })?;
        }
    }
    Ok(())
}

/// Class names for class folders: the folder holding the image, with a last
/// part that every class folder shares dropped (`n01443537/images` ->
/// `n01443537`, as in TinyImageNet's `train/`). `.` (the root) stays `.`.
pub fn class_names(folders: &[String]) -> Vec<String> {
    let classes: Vec<&String> = folders.iter().filter(|f| *f != ".").collect();
    let shared = classes
        .first()
        .and_then(|f| f.rsplit_once('/'))
        .map(|(_, last)| last)
        .filter(|last| {
            classes.len() > 1
                && classes
                    .iter()
                    .all(|f| f.rsplit_once('/').is_some_and(|(_, l)| l == *last))
        });
    folders
        .iter()
        .map(|f| match shared {
            Some(last) if f != "." => f[..f.len() - last.len() - 1].to_string(),
            _ => f.clone(),
        })
        .collect()
}

/// What a folder given to `convert` or `init` holds.
#[derive(Debug, Clone, Default)]
pub struct Survey {
    pub images: usize,
    /// Class names of the class folders (not the root).
    pub classes: Vec<String>,
    /// Images directly in the folder, outside any class folder.
    pub loose: usize,
    /// Index files directly in the folder (`.csv`, `.tsv`, `.lst`).
    pub indexes: Vec<String>,
    /// `wnids.txt` and `train/`: a TinyImageNet-like layout.
    pub tinyimagenet: bool,
}

/// Looks at a folder (or an object-store prefix) before converting it.
pub fn survey(dir: &Path, exts: &[String]) -> Result<Survey> {
    let exts: Vec<String> = exts.iter().map(|e| e.to_lowercase()).collect();
    let (top, _) = crate::files::list_files(dir).unwrap_or_default();
    let has = |name: &str| top.iter().any(|f| f == name);
    let tinyimagenet =
        has("wnids.txt") && (crate::files::is_remote(dir) || dir.join("train").is_dir());
    let indexes = top
        .iter()
        .filter(|f| !f.contains('/'))
        .filter(|f| {
            let l = f.to_lowercase();
            l.ends_with(".csv") || l.ends_with(".tsv") || l.ends_with(".lst")
        })
        .cloned()
        .collect();
    let listing = list_images(dir, &exts, true)?;
    let folders: Vec<String> = listing.classes.iter().map(|(c, _)| c.clone()).collect();
    let names = class_names(&folders);
    let root_label = listing.classes.iter().find(|(c, _)| c == ".").map(|c| c.1);
    Ok(Survey {
        images: listing.items.len(),
        classes: names.into_iter().filter(|n| n != ".").collect(),
        loose: listing
            .items
            .iter()
            .filter(|(_, l)| Some(*l) == root_label)
            .count(),
        indexes,
        tinyimagenet,
    })
}

fn folders(
    root: &Path,
    exts: &[String],
    split: &Option<String>,
    out: &mut Vec<Item>,
    linked: &mut Vec<PathBuf>,
) -> Result<Vec<super::catalog::Skip>> {
    let exts: Vec<String> = exts.iter().map(|e| e.to_lowercase()).collect();
    let listing = list_images(root, &exts, true)?;
    linked.extend(listing.linked);
    let folders: Vec<String> = listing.classes.iter().map(|(c, _)| c.clone()).collect();
    let names = class_names(&folders);
    for (rel, label) in listing.items {
        let class = &names[label];
        out.push(Item {
            annotation: None,
            frame: None,
            path: at(root, &rel),
            rel,
            labels: if class == "." {
                Vec::new()
            } else {
                vec![class.clone()]
            },
            numeric: false,
            group: None,
            split: split.clone(),
            origin: root.display().to_string().into(),
        });
    }
    Ok(listing
        .skipped
        .into_iter()
        .map(|(path, reason)| super::catalog::Skip {
            item: path,
            reason,
            origin: Some(root.display().to_string()),
        })
        .collect())
}

/// A class-folder tree under an `s3://` prefix: one listing, no download;
/// label = the folder directly holding the object.
fn remote_folders(
    prefix: &str,
    exts: &[String],
    split: &Option<String>,
    out: &mut Vec<Item>,
) -> Result<()> {
    let exts: Vec<String> = exts.iter().map(|e| e.to_lowercase()).collect();
    let objects = crate::files::list_remote(prefix).map_err(|e| Error::Io {
        path: prefix.into(),
        err: e,
    })?;
    // an object store has no folders: a prefix with nothing under it is the
    // missing folder of a local root (a misspelt path, most often)
    if objects.is_empty() {
        return Err(Error::Usage(format!(
            "{prefix}: no object under this prefix (is the path right?)"
        )));
    }
    let objects: Vec<(String, String)> = objects
        .into_iter()
        .filter(|(_, rel)| {
            let lower = rel.to_lowercase();
            exts.iter().any(|e| lower.ends_with(e.as_str()))
        })
        .collect();
    let dir_of = |rel: &str| rel.rsplit_once('/').map(|(d, _)| d.to_string());
    let dirs: Vec<String> = objects
        .iter()
        .filter_map(|(_, rel)| dir_of(rel))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let names: HashMap<&String, String> = dirs.iter().zip(class_names(&dirs)).collect();
    for (uri, rel) in objects {
        let labels = match dir_of(&rel) {
            Some(dir) => vec![names[&dir].clone()],
            None => Vec::new(),
        };
        out.push(Item {
            annotation: None,
            frame: None,
            path: PathBuf::from(uri),
            rel,
            labels,
            numeric: false,
            group: None,
            split: split.clone(),
            origin: prefix.into(),
        });
    }
    Ok(())
}

struct CsvColumns<'a> {
    path: &'a str,
    labels: Vec<String>,
    label_separator: Option<&'a str>,
    group: Option<&'a str>,
    split_column: Option<&'a str>,
}

/// `{column}` templates, or a bare column name.
fn render(
    template: &str,
    row: &csv::StringRecord,
    cols: &HashMap<String, usize>,
) -> std::result::Result<String, String> {
    if !template.contains('{') {
        let i = cols
            .get(template)
            .ok_or_else(|| format!("no column {template:?}"))?;
        return Ok(row.get(*i).unwrap_or("").to_string());
    }
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("unclosed '{{' in {template:?}"))?
            + open;
        let name = &rest[open + 1..close];
        let i = cols
            .get(name)
            .ok_or_else(|| format!("no column {name:?} (in {template:?})"))?;
        out.push_str(row.get(*i).unwrap_or(""));
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn csv_index(
    file: &Path,
    root: &Path,
    c: CsvColumns,
    split: &Option<String>,
    delimiter: Option<&str>,
    out: &mut Vec<Item>,
) -> Result<()> {
    let delim = match delimiter {
        Some("\\t") | Some("\t") => b'\t',
        Some(d) if d.len() == 1 => d.as_bytes()[0],
        Some(d) => {
            return Err(Error::Usage(format!(
                "{}: delimiter {d:?} must be one character",
                file.display()
            )))
        }
        None if file
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("tsv")) =>
        {
            b'\t'
        }
        None => b',',
    };
    let text = crate::files::read(file).map_err(Error::io(file))?;
    // a UTF-8 byte-order mark (Excel, `to_csv(encoding="utf-8-sig")`) is not
    // part of the first column's name
    let body = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&text);
    let mut lines = LineCounter::new(body);
    let mut rdr = csv::ReaderBuilder::new().delimiter(delim).from_reader(body);
    let headers = rdr
        .headers()
        .map_err(|e| Error::Usage(format!("{}:1: {e}", file.display())))?
        .clone();
    let cols: HashMap<String, usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (h.trim().to_string(), i))
        .collect();
    let line_err = |line: u64, message: String| Error::Line {
        path: file.to_path_buf(),
        line: line as usize,
        message,
    };
    let col = |name: &str| -> Result<usize> {
        cols.get(name).copied().ok_or_else(|| {
            line_err(
                1,
                format!(
                    "no column {name:?}; the header has {:?}",
                    headers.iter().collect::<Vec<_>>()
                ),
            )
        })
    };
    let label_cols = c
        .labels
        .iter()
        .map(|l| col(l))
        .collect::<Result<Vec<_>>>()?;
    let group_col = c.group.map(col).transpose()?;
    let split_col = c.split_column.map(col).transpose()?;
    for row in rdr.records() {
        let row = row.map_err(|e| {
            let line = e.position().map(|p| lines.at(p.byte())).unwrap_or(0);
            let message = match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => format!("{len} fields where the header has {expected_len}"),
                csv::ErrorKind::Utf8 { .. } => "not valid UTF-8 text".to_string(),
                _ => e.to_string(),
            };
            line_err(line, message)
        })?;
        let line = row.position().map(|p| lines.at(p.byte())).unwrap_or(0);
        let rel = render(c.path, &row, &cols).map_err(|m| line_err(line, m))?;
        if rel.is_empty() {
            return Err(line_err(line, "empty path".into()));
        }
        let mut labels = Vec::new();
        for &i in &label_cols {
            let cell = row.get(i).unwrap_or("").trim();
            match c.label_separator {
                Some(sep) => labels.extend(
                    cell.split(sep)
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from),
                ),
                None if !cell.is_empty() => labels.push(cell.to_string()),
                None => {}
            }
        }
        // a class named twice on a row is one label (as in a .lst id list):
        // counted twice it would be written twice in TFRecord labels and
        // count the item twice per class
        let mut seen = HashSet::new();
        labels.retain(|l| seen.insert(l.clone()));
        let cell = |i: Option<usize>| {
            i.and_then(|i| row.get(i))
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        out.push(Item {
            annotation: None,
            frame: None,
            path: at(root, &rel),
            rel,
            labels,
            numeric: false,
            group: cell(group_col),
            split: cell(split_col).or_else(|| split.clone()),
            origin: format!("{}:{line}", file.display()).into(),
        });
    }
    Ok(())
}

/// Line numbers (1-based) of byte offsets met in increasing order; counts
/// `\n` only, so CRLF and LF files number their lines alike.
struct LineCounter<'a> {
    text: &'a [u8],
    byte: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a [u8]) -> Self {
        LineCounter {
            text,
            byte: 0,
            line: 1,
        }
    }

    fn at(&mut self, byte: u64) -> u64 {
        let mut byte = (byte as usize).min(self.text.len());
        // the csv crate places a record that follows a CRLF at its LF
        if self.text.get(byte) == Some(&b'\n') {
            byte += 1;
        }
        if byte < self.byte {
            *self = LineCounter::new(self.text);
        }
        self.line += self.text[self.byte..byte]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        self.byte = byte;
        self.line
    }
}

/// A numeric label as a class name: `3.0` -> `"3"`.
pub fn number_name(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// What a `.lst` file's label columns turned out to be.
enum LstLabels {
    /// One class id per line.
    Single,
    /// Several class ids per line.
    Ids,
    /// One 0/1 column per class, this many columns.
    MultiHot(usize),
}

fn lst(
    file: &Path,
    root: &Path,
    split: &Option<String>,
    format: Option<LabelFormat>,
    out: &mut Vec<Item>,
) -> Result<LstLabels> {
    let mut r = LstReader::open(file)?;
    let mut entries = Vec::new();
    while let Some((line, e)) = r.next_entry()? {
        entries.push((line, e));
    }
    let kind = lst_kind(file, &entries, format)?;
    for (line, e) in entries {
        let err = |message: String| Error::Line {
            path: file.to_path_buf(),
            line,
            message,
        };
        let mut labels = Vec::new();
        for (k, &v) in e.labels.iter().enumerate() {
            match kind {
                LstLabels::MultiHot(_) if v == 1.0 => labels.push(k.to_string()),
                LstLabels::MultiHot(_) => {}
                // negative ids pad id lists to one width
                LstLabels::Ids if v < 0.0 => {}
                _ if v >= 0.0 && v.fract() == 0.0 && v < 1e9 => {
                    let name = number_name(v);
                    if !labels.contains(&name) {
                        labels.push(name)
                    }
                }
                LstLabels::Single if v < 0.0 => {
                    return Err(err(format!(
                    "label {v} is not a class id; an unlabelled item has no place in a .lst source"
                )))
                }
                _ => {
                    return Err(err(format!(
                        "label {v} is not a class id (a whole number from 0)"
                    )))
                }
            }
        }
        out.push(Item {
            annotation: None,
            frame: None,
            path: at(root, &e.path),
            rel: e.path,
            labels,
            numeric: true,
            group: None,
            split: split.clone(),
            origin: format!("{}:{line}", file.display()).into(),
        });
    }
    Ok(kind)
}

/// Decides what several label columns mean, from the setting or, when the
/// data leaves only one reading, from the data.
fn lst_kind(
    file: &Path,
    entries: &[(usize, LstEntry)],
    format: Option<LabelFormat>,
) -> Result<LstLabels> {
    let widths: std::collections::BTreeSet<usize> =
        entries.iter().map(|(_, e)| e.labels.len()).collect();
    let width = *widths.iter().next().unwrap_or(&1);
    let binary = entries
        .iter()
        .all(|(_, e)| e.labels.iter().all(|&v| v == 0.0 || v == 1.0));
    let err = |line: usize, message: String| Error::Line {
        path: file.to_path_buf(),
        line,
        message,
    };
    match format {
        Some(LabelFormat::Ids) => Ok(LstLabels::Ids),
        Some(LabelFormat::MultiHot) => {
            if widths.len() > 1 {
                let (line, e) = entries
                    .iter()
                    .find(|(_, e)| e.labels.len() != width)
                    .unwrap();
                return Err(err(
                    *line,
                    format!(
                        "{} label columns where the first line has {width}: multi-hot lines need one column per class",
                        e.labels.len()
                    ),
                ));
            }
            if let Some((line, e)) = entries
                .iter()
                .find(|(_, e)| e.labels.iter().any(|&v| v != 0.0 && v != 1.0))
            {
                return Err(err(
                    *line,
                    format!(
                        "label values {:?} are not all 0 or 1 (label_format = \"multi-hot\")",
                        e.labels
                    ),
                ));
            }
            Ok(LstLabels::MultiHot(width))
        }
        None if widths.len() <= 1 && width <= 1 => Ok(LstLabels::Single),
        None if widths.len() > 1 || !binary => Ok(LstLabels::Ids),
        None => {
            // every line 0/1 and equally wide: multi-hot, unless every line
            // could also be a list of distinct ids (such as "0 1")
            let could_be_ids = entries.iter().all(|(_, e)| {
                let mut seen = e.labels.clone();
                seen.sort_by(f64::total_cmp);
                seen.dedup();
                seen.len() == e.labels.len()
            });
            if could_be_ids {
                Err(Error::Usage(format!(
                    "{}: every line has {width} label columns of 0 and 1: one 0/1 column per class \
                     or a list of class ids? Set label_format = \"multi-hot\" or \"ids\" on this source",
                    file.display()
                )))
            } else {
                Ok(LstLabels::MultiHot(width))
            }
        }
    }
}

fn read_lines(path: &Path) -> Result<Vec<(usize, String)>> {
    let text = crate::files::read_to_string(path).map_err(Error::io(path))?;
    Ok(text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r').to_string()))
        .filter(|(_, l)| !l.trim().is_empty())
        .collect())
}

/// The files in `dir`; a name that is not UTF-8 is a skip, said.
fn image_files(dir: &Path, skips: &mut Vec<super::catalog::Skip>) -> Result<Vec<String>> {
    let (names, not_utf8) = crate::files::list_files(dir).map_err(Error::io(dir))?;
    skips.extend(not_utf8.into_iter().map(|p| super::catalog::Skip {
        item: p.display().to_string(),
        reason: "the name is not UTF-8".into(),
        origin: Some(dir.display().to_string()),
    }));
    Ok(names)
}

/// `rel` under `base` (a folder or an object-store prefix).
fn at(base: &Path, rel: impl AsRef<Path>) -> PathBuf {
    crate::files::join(base, rel.as_ref())
}

/// `p` under `root`, with `/` between folders. On Unix a backslash is part
/// of a file's name, not a separator, and stays.
fn rel_to(root: &Path, p: &Path) -> String {
    let rel = p.strip_prefix(root).unwrap_or(p).to_string_lossy();
    if cfg!(windows) {
        rel.replace('\\', "/")
    } else {
        rel.into_owned()
    }
}

fn metadata(
    r: &LoadedRecipe,
    root: &Path,
    class_ids: &Path,
    names: Option<&Path>,
    splits: &[MetadataSplit],
    (out, skips): (&mut Vec<Item>, &mut Vec<super::catalog::Skip>),
    human: &mut HumanNames,
) -> Result<Vec<String>> {
    let ids: Vec<String> = read_lines(class_ids)?
        .into_iter()
        .map(|(_, l)| l.trim().to_string())
        .collect();
    let known: std::collections::HashSet<&String> = ids.iter().collect();
    if let Some(n) = names {
        let n = r.resolve(n);
        for (_, line) in read_lines(&n)? {
            if let Some((id, words)) = line.split_once('\t') {
                if known.contains(&id.trim().to_string()) {
                    human.insert(id.trim().to_string(), words.trim().to_string());
                }
            }
        }
    }
    for s in splits {
        let origin = |p: &Path| p.display().to_string();
        if let Some(pattern) = &s.folders {
            for id in &ids {
                let dir = at(root, pattern.replace("{class}", id));
                if !crate::files::is_remote(&dir) && !dir.is_dir() {
                    return Err(Error::Usage(format!(
                        "{}: no such folder for class {id:?}, which {} lists (folders = {pattern:?})",
                        dir.display(),
                        class_ids.display()
                    )));
                }
                for f in image_files(&dir, skips)? {
                    let path = at(&dir, &f);
                    out.push(Item {
                        annotation: None,
                        frame: None,
                        rel: rel_to(root, &path),
                        path,
                        labels: vec![id.clone()],
                        numeric: false,
                        group: None,
                        split: Some(s.split.clone()),
                        origin: origin(&dir).into(),
                    });
                }
            }
        }
        match (&s.annotations, &s.images) {
            (Some(ann), images) => {
                let ann = at(root, ann);
                let dir = at(
                    root,
                    images.clone().unwrap_or_else(|| PathBuf::from("images")),
                );
                let mut listed = HashSet::new();
                for (line, text) in read_lines(&ann)? {
                    let fields: Vec<&str> = text.split('\t').collect();
                    if fields.len() < 2 {
                        return Err(Error::Line {
                            path: ann.clone(),
                            line,
                            message: "expected FILE<TAB>CLASS_ID".into(),
                        });
                    }
                    listed.insert(fields[0].trim().to_string());
                    let path = at(&dir, fields[0].trim());
                    out.push(Item {
                        annotation: None,
                        frame: None,
                        rel: rel_to(root, &path),
                        path,
                        labels: vec![fields[1].trim().to_string()],
                        numeric: false,
                        group: None,
                        split: Some(s.split.clone()),
                        origin: format!("{}:{line}", ann.display()).into(),
                    });
                }
                // images in the folder the list does not name: said, not
                // dropped without a word
                let on_disk = match image_files(&dir, skips) {
                    Ok(files) => files,
                    Err(_) if !crate::files::is_remote(&dir) && !dir.is_dir() => Vec::new(),
                    Err(e) => return Err(e),
                };
                for f in on_disk {
                    if crate::annotations::is_image_name(&f) && !listed.contains(&f) {
                        skips.push(super::catalog::Skip {
                            item: rel_to(root, &at(&dir, &f)),
                            reason: format!("not listed in {}", ann.display()),
                            origin: Some(origin(&dir)),
                        });
                    }
                }
            }
            (None, Some(images)) if s.folders.is_none() => {
                let dir = at(root, images);
                for f in image_files(&dir, skips)? {
                    let path = at(&dir, &f);
                    out.push(Item {
                        annotation: None,
                        frame: None,
                        rel: rel_to(root, &path),
                        path,
                        labels: Vec::new(),
                        numeric: false,
                        group: None,
                        split: Some(s.split.clone()),
                        origin: origin(&dir).into(),
                    });
                }
            }
            _ => {}
        }
    }
    Ok(ids)
}

/// What `convert` (one folder, no recipe) makes of `dir`: whether it is a
/// TinyImageNet-like tree, and notes worth a warning. Refuses, with what to
/// do instead, a folder whose images would all come out unlabelled (no
/// class sub-folders) unless `unlabelled` says that is the point.
/// The box source type a local folder's layout looks like, and what gives
/// it away: Pascal VOC (`Annotations/*.xml`, or labelImg's XML beside the
/// images), YOLO (`data.yaml`, or `labels/` beside `images/`), COCO (a JSON
/// with `images` and `annotations`) or labelme (JSONs with `shapes`).
pub fn detection_layout(dir: &Path) -> Option<(&'static str, String)> {
    if crate::files::is_remote(dir) {
        return None;
    }
    let files = |d: &Path| -> Vec<String> {
        crate::files::list_files(d)
            .map(|(names, _)| names)
            .unwrap_or_default()
    };
    let with_ext = |names: &[String], ext: &str| {
        names
            .iter()
            .find(|n| n.to_lowercase().ends_with(ext))
            .cloned()
    };
    if let Some(x) = with_ext(&files(&dir.join("Annotations")), ".xml") {
        return Some(("voc", format!("Annotations/{x}")));
    }
    if dir.join("data.yaml").is_file() {
        return Some(("yolo", "data.yaml".into()));
    }
    // labels/ (or labels/SPLIT/) holding .txt files beside images/
    let labels = dir.join("labels");
    if dir.join("images").is_dir() && labels.is_dir() {
        let mut folders = vec![labels.clone()];
        if let Ok(rd) = std::fs::read_dir(&labels) {
            folders.extend(
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .take(8),
            );
        }
        if folders
            .iter()
            .any(|d| with_ext(&files(d), ".txt").is_some())
        {
            return Some(("yolo", "images/ and labels/*.txt".into()));
        }
    }
    // JSONs at the top or in annotations/, XML beside images (labelImg)
    let head = |p: &Path| -> String {
        let mut buf = Vec::new();
        let _ = std::fs::File::open(p).and_then(|f| {
            std::io::Read::read_to_end(&mut std::io::Read::take(f, 1 << 20), &mut buf)
        });
        String::from_utf8_lossy(&buf).into_owned()
    };
    for sub in ["", "annotations"] {
        let d = dir.join(sub);
        for n in files(&d)
            .iter()
            .filter(|n| n.to_lowercase().ends_with(".json"))
            .take(8)
        {
            let text = head(&d.join(n));
            let shown = if sub.is_empty() {
                n.clone()
            } else {
                format!("{sub}/{n}")
            };
            if text.contains("\"shapes\"") && text.contains("\"imagePath\"") {
                return Some(("labelme", shown));
            }
            if text.contains("\"annotations\"") && text.contains("\"images\"") {
                return Some(("coco", shown));
            }
        }
    }
    let top = files(dir);
    if let Some(x) = with_ext(&top, ".xml") {
        if head(&dir.join(&x)).contains("<bndbox>") {
            return Some(("voc", x));
        }
    }
    None
}

pub fn convert_layout(
    dir: &Path,
    exts: &[String],
    unlabelled: bool,
    unlabelled_hint: &str,
) -> Result<(bool, Vec<String>)> {
    let s = survey(dir, exts)?;
    let shown = dir.display();
    if s.tinyimagenet {
        return Ok((
            true,
            vec![format!(
                "{shown} is a TinyImageNet-like tree (wnids.txt, train/, val/, test/): classes come \
                 from wnids.txt in its order, splits from the layout (train, validation, test unlabelled)"
            )],
        ));
    }
    if let Some((source, evidence)) = detection_layout(dir) {
        return Err(Error::Usage(format!(
            "{shown} looks like a detection dataset ({evidence}): its folders are not classes. \
             Describe it in a recipe with a {source} source (README: Detection datasets), e.g. \
             [[sources]] type = \"{source}\" {}",
            match source {
                "coco" => format!("file = \"{shown}/annotations/instances_train.json\" images = \"{shown}/images\""),
                _ => format!("root = \"{shown}\""),
            }
        )));
    }
    let indexes = if s.indexes.is_empty() {
        String::new()
    } else {
        format!(
            "; it holds {} (an index with labels? describe it in a recipe: a csv or lst source, \
             see `imgprep init --help` and the README's recipe reference)",
            s.indexes.join(", ")
        )
    };
    if s.images == 0 {
        return Err(Error::Usage(format!(
            "{shown}: no images with the extensions {} found{indexes}",
            exts.join(" ")
        )));
    }
    let mut notes = Vec::new();
    if s.classes.is_empty() && !unlabelled {
        return Err(Error::Usage(format!(
            "{shown} has no class sub-folders: its {} images would all be unlabelled \
             (num_classes = 0){indexes}. Put each class's images in a sub-folder named after the \
             class, or {unlabelled_hint}",
            s.images
        )));
    }
    if !s.classes.is_empty() && unlabelled {
        return Err(Error::Usage(format!(
            "{shown} has {} class sub-folders, but --unlabelled was given: drop --unlabelled to \
             label images by their folder",
            s.classes.len()
        )));
    }
    if s.loose > 0 && !s.classes.is_empty() {
        notes.push(format!(
            "{} images lie directly in {shown}, outside the {} class folders: they are written \
             unlabelled (label -1)",
            s.loose,
            s.classes.len()
        ));
    }
    if !s.indexes.is_empty() && !s.classes.is_empty() {
        notes.push(format!(
            "{shown} holds {}: labels come from the class folders and the index is not read \
             (for its groups or labels, write a recipe with a csv or lst source)",
            s.indexes.join(", ")
        ));
    }
    Ok((false, notes))
}
