//! Sources: list items (where the bytes are, labels, group, split) from a
//! class-folder tree, a CSV/TSV index, `.lst` files or a TinyImageNet-like
//! metadata layout.

use crate::error::{Error, Result};
use crate::im2rec::{list_images, LstReader};
use crate::recipe::{LoadedRecipe, MetadataSplit, SourceSpec};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One input image as a source describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Path relative to the source root, `/`-separated: the item's name in outputs.
    pub rel: String,
    /// Where the bytes are.
    pub path: PathBuf,
    /// Class names (empty: unlabelled).
    pub labels: Vec<String>,
    /// Numeric labels given verbatim by a `.lst` source (written back as they are).
    pub raw_labels: Option<Vec<f64>>,
    pub group: Option<String>,
    pub split: Option<String>,
    /// Where the item was declared, for messages (`file:line` or the folder).
    pub origin: String,
}

/// Human names found along the way (metadata `names` files).
pub type HumanNames = HashMap<String, String>;

/// Everything the sources declared.
#[derive(Debug, Default)]
pub struct Sources {
    pub items: Vec<Item>,
    pub human: HumanNames,
    /// Class ids a metadata source declares (labels outside them are errors).
    pub declared: Vec<String>,
}

pub fn read_sources(r: &LoadedRecipe) -> Result<Sources> {
    let mut items = Vec::new();
    let mut human = HumanNames::new();
    let mut declared = Vec::new();
    for s in &r.recipe.sources {
        match s {
            SourceSpec::Folders { root, exts, split } => {
                let root = r.resolve(root);
                match root.to_str() {
                    Some(uri) if crate::storage::is_remote(uri) => {
                        remote_folders(uri, exts, split, &mut items)?
                    }
                    _ => folders(&root, exts, split, &mut items)?,
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
            } => csv_index(
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
            )?,
            SourceSpec::Lst { file, root, split } => {
                lst(&r.resolve(file), &r.resolve(root), split, &mut items)?
            }
            SourceSpec::Metadata {
                root,
                class_ids,
                names,
                splits,
            } => declared.extend(metadata(
                r,
                &r.resolve(root),
                &r.resolve(class_ids),
                names.as_deref(),
                splits,
                &mut items,
                &mut human,
            )?),
        }
    }
    warm_listings(r, &items)?;
    Ok(Sources {
        items,
        human,
        declared,
    })
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
            SourceSpec::Folders { .. } => continue,
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

fn folders(
    root: &Path,
    exts: &[String],
    split: &Option<String>,
    out: &mut Vec<Item>,
) -> Result<()> {
    let exts: Vec<String> = exts.iter().map(|e| e.to_lowercase()).collect();
    let listing = list_images(root, &exts, true)?;
    for (rel, label) in listing.items {
        let class = &listing.classes[label].0;
        out.push(Item {
            path: at(root, &rel),
            rel,
            labels: if class == "." {
                Vec::new()
            } else {
                vec![class.clone()]
            },
            raw_labels: None,
            group: None,
            split: split.clone(),
            origin: root.display().to_string(),
        });
    }
    Ok(())
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
    for (uri, rel) in objects {
        let lower = rel.to_lowercase();
        if !exts.iter().any(|e| lower.ends_with(e.as_str())) {
            continue;
        }
        let labels = match rel.rsplit_once('/') {
            Some((dir, _)) => vec![dir.to_string()],
            None => Vec::new(),
        };
        out.push(Item {
            path: PathBuf::from(uri),
            rel,
            labels,
            raw_labels: None,
            group: None,
            split: split.clone(),
            origin: prefix.to_string(),
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
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delim)
        .from_reader(text.as_slice());
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
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            line_err(line, e.to_string())
        })?;
        let line = row.position().map(|p| p.line()).unwrap_or(0);
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
        let cell = |i: Option<usize>| {
            i.and_then(|i| row.get(i))
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        out.push(Item {
            path: at(root, &rel),
            rel,
            labels,
            raw_labels: None,
            group: cell(group_col),
            split: cell(split_col).or_else(|| split.clone()),
            origin: format!("{}:{line}", file.display()),
        });
    }
    Ok(())
}

/// A numeric label as a class name: `3.0` -> `"3"`.
pub fn number_name(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn lst(file: &Path, root: &Path, split: &Option<String>, out: &mut Vec<Item>) -> Result<()> {
    let mut r = LstReader::open(file)?;
    while let Some((line, e)) = r.next_entry()? {
        out.push(Item {
            path: at(root, &e.path),
            rel: e.path,
            labels: if e.labels.len() == 1 {
                vec![number_name(e.labels[0])]
            } else {
                Vec::new()
            },
            raw_labels: Some(e.labels),
            group: None,
            split: split.clone(),
            origin: format!("{}:{line}", file.display()),
        });
    }
    Ok(())
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

fn image_files(dir: &Path) -> Result<Vec<String>> {
    crate::files::list_files(dir).map_err(Error::io(dir))
}

/// `rel` under `base` (a folder or an object-store prefix).
fn at(base: &Path, rel: impl AsRef<Path>) -> PathBuf {
    crate::files::join(base, rel.as_ref())
}

fn rel_to(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}

fn metadata(
    r: &LoadedRecipe,
    root: &Path,
    class_ids: &Path,
    names: Option<&Path>,
    splits: &[MetadataSplit],
    out: &mut Vec<Item>,
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
                for f in image_files(&dir)? {
                    let path = at(&dir, &f);
                    out.push(Item {
                        rel: rel_to(root, &path),
                        path,
                        labels: vec![id.clone()],
                        raw_labels: None,
                        group: None,
                        split: Some(s.split.clone()),
                        origin: origin(&dir),
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
                for (line, text) in read_lines(&ann)? {
                    let fields: Vec<&str> = text.split('\t').collect();
                    if fields.len() < 2 {
                        return Err(Error::Line {
                            path: ann.clone(),
                            line,
                            message: "expected FILE<TAB>CLASS_ID".into(),
                        });
                    }
                    let path = at(&dir, fields[0].trim());
                    out.push(Item {
                        rel: rel_to(root, &path),
                        path,
                        labels: vec![fields[1].trim().to_string()],
                        raw_labels: None,
                        group: None,
                        split: Some(s.split.clone()),
                        origin: format!("{}:{line}", ann.display()),
                    });
                }
            }
            (None, Some(images)) if s.folders.is_none() => {
                let dir = at(root, images);
                for f in image_files(&dir)? {
                    let path = at(&dir, &f);
                    out.push(Item {
                        rel: rel_to(root, &path),
                        path,
                        labels: Vec::new(),
                        raw_labels: None,
                        group: None,
                        split: Some(s.split.clone()),
                        origin: origin(&dir),
                    });
                }
            }
            _ => {}
        }
    }
    Ok(ids)
}
