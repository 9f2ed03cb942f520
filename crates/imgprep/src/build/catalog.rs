//! The catalog: every item checked (file exists, labels known, no duplicate)
//! and the label map (class name <-> id, human names).

use super::sources::{Item, Sources};
use crate::error::{Error, Result};
use crate::recipe::{LoadedRecipe, NamesSpec, OnError};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LabelEntry {
    pub id: usize,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub human: Option<String>,
}

/// Class names in id order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelMap {
    pub entries: Vec<LabelEntry>,
    index: HashMap<String, usize>,
}

impl LabelMap {
    /// Explicit names keep their order; otherwise names are sorted (numerically
    /// when all are non-negative integers, so `.lst` labels keep their ids).
    pub fn new(mut names: Vec<String>, explicit: bool, human: &HashMap<String, String>) -> Self {
        if !explicit {
            names.sort();
            names.dedup();
            // whole numbers written in digits only (not `+5`, `-3` or `1.5`)
            let digits =
                |n: &str| !n.is_empty() && n.len() <= 19 && n.bytes().all(|b| b.is_ascii_digit());
            if names.iter().all(|n| digits(n)) {
                names.sort_by_key(|n| n.parse::<u64>().unwrap());
            }
        }
        let entries: Vec<LabelEntry> = names
            .into_iter()
            .enumerate()
            .map(|(id, name)| LabelEntry {
                id,
                human: human.get(&name).cloned(),
                name,
            })
            .collect();
        let index = entries.iter().map(|e| (e.name.clone(), e.id)).collect();
        LabelMap { entries, index }
    }

    pub fn id(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// An item that was left out, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Skip {
    pub item: String,
    pub reason: String,
    /// Where the item was declared (`file:line`), when a source says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// Where the label map comes from.
#[derive(Debug, Clone, PartialEq)]
enum Rule {
    /// Fixed before the build: `labels.names` or a class-id file.
    Fixed,
    /// The classes of the items written, sorted (numerically when all are numbers).
    Sorted,
    /// Class ids given as numbers (`.lst` sources): id `k` is class `k`, so
    /// the map runs from 0 to the largest id written (or the multi-hot width).
    Ids { min_classes: usize },
}

#[derive(Debug, Clone)]
pub struct Catalog {
    /// Sorted by `rel`; the position is the item's id in every output.
    pub items: Vec<Item>,
    /// Size and modification time of each item's file (for frames: of its
    /// chunk), taken when the catalog was made; the build's fingerprint and
    /// cache keys use them (the build takes them, leaving this empty).
    pub prints: Vec<(u64, i128)>,
    pub labels: LabelMap,
    /// How the label map's order was decided, for the manifest.
    pub label_order: String,
    /// Multi-label dataset: labels are written as multi-hot vectors.
    pub multi_label: bool,
    pub skipped: Vec<Skip>,
    /// A detection dataset: items carry boxes.
    pub detection: bool,
    /// What the detection sources declared beside their items.
    pub boxes: super::boxes::SourceBoxes,
    /// Video sources' chunks (frame items point into them).
    pub video: super::video::VideoSet,
    rule: Rule,
    human: HashMap<String, String>,
}

impl Catalog {
    /// The classes the recipe fixed (`labels.names`), if it did.
    pub fn fixed_labels(&self) -> Option<std::collections::HashSet<String>> {
        (self.rule == Rule::Fixed)
            .then(|| self.labels.entries.iter().map(|e| e.name.clone()).collect())
    }

    /// Label ids of an item (empty for unlabelled items).
    pub fn label_ids(&self, item: &Item) -> Vec<usize> {
        item.labels
            .iter()
            .filter_map(|l| self.labels.id(l))
            .collect()
    }

    /// Makes the label map from exactly the items that are written (unless
    /// it was fixed by the recipe): a class whose items were all skipped or
    /// left out of every split does not count.
    pub fn finalize_labels(&mut self, written: impl IntoIterator<Item = usize>) {
        let names = || {
            let mut seen = std::collections::BTreeSet::new();
            for i in written {
                seen.extend(self.items[i].labels.iter().cloned());
            }
            seen
        };
        match self.rule {
            Rule::Fixed => {}
            Rule::Sorted => {
                self.labels = LabelMap::new(names().into_iter().collect(), false, &self.human)
            }
            Rule::Ids { min_classes } => {
                let top = names()
                    .iter()
                    .filter_map(|n| n.parse::<usize>().ok())
                    .map(|k| k + 1)
                    .max()
                    .unwrap_or(0);
                let n = top.max(min_classes);
                self.labels =
                    LabelMap::new((0..n).map(|k| k.to_string()).collect(), true, &self.human);
            }
        }
    }
}

/// The canonical name of an item path under its source root: `.` parts and
/// repeated separators dropped, `..` resolved against the parts before it.
/// Objects a look at them is asked for at once (HEAD requests in flight).
const LOOKS: usize = 16;

/// Sizes and times of the objects among `paths` (local files are left to
/// the caller), [`LOOKS`] requests at a time: a server that makes each wait
/// for its timeout costs one timeout per 16 objects, not one per object.
/// `stop` is asked after each answer: true ends the looks (the requests in
/// flight are waited for, each bounded by its timeout) with
/// [`Error::Interrupted`].
fn look_at_objects<'a>(
    paths: impl Iterator<Item = &'a Path>,
    stop: &dyn Fn() -> bool,
) -> Result<HashMap<std::path::PathBuf, std::io::Result<(u64, i128)>>> {
    let remote: Vec<&Path> = paths.filter(|p| crate::files::is_remote(p)).collect();
    let mut found = HashMap::new();
    if remote.len() < 2 {
        return Ok(found);
    }
    crate::execute::ordered_map(
        remote.into_iter(),
        LOOKS,
        LOOKS,
        || (),
        |_, p| (p, crate::files::fingerprint(p)),
        |(p, r)| {
            // a server that stopped answering: the looks after this one
            // would each wait out the same timeouts
            if let Err(e) = &r {
                if crate::storage::is_unreachable(&e.to_string()) {
                    return Err(Error::Problem(format!(
                        "{}: {e}: the server did not answer; nothing was built",
                        p.display()
                    )));
                }
            }
            found.insert(p.to_path_buf(), r);
            match stop() {
                true => Err(Error::Interrupted),
                false => Ok(()),
            }
        },
    )?;
    Ok(found)
}

/// Sizes and times (ns) of the local files of `items`, by position, looked
/// at on `threads` threads when there are many: 20,000 `statx` calls were 0.045 s
/// of a rebuild's catalog on one. 16 bytes an item, written in place by the
/// threads, which allocate nothing (the catalog is at the build's memory
/// peak, and a thread's first allocation gives it an arena of its own).
/// `NOT_LOOKED` for objects, files that could not be looked at (looked at
/// again, for the error) and times outside an `i64`.
fn look_at_files(items: &[Item], threads: usize) -> Vec<(u64, i64)> {
    if items.len() < crate::execute::FEW_ITEMS || threads < 2 {
        return Vec::new();
    }
    let mut found = vec![NOT_LOOKED; items.len()];
    crate::execute::in_parts(items, &mut found, threads, |items, found| {
        for (i, f) in items.iter().zip(found) {
            if crate::files::is_remote(&i.path) {
                continue;
            }
            if let Ok((size, t)) = crate::files::fingerprint(&i.path) {
                if let Ok(t) = i64::try_from(t) {
                    *f = (size, t);
                }
            }
        }
    });
    found
}

const NOT_LOOKED: (u64, i64) = (u64::MAX, i64::MIN);

/// `None` for a path that is absolute, empty or leads outside the root.
/// Symbolic links are not followed: a link and its target are two names.
pub fn normalize_rel(rel: &str) -> Option<String> {
    if rel.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for p in rel.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() || parts.iter().any(|p| p.contains('\0')) {
        return None;
    }
    Some(parts.join("/"))
}

/// One name per line (blank lines and `#` comments ignored), for
/// `labels.names = "FILE"`.
fn read_names(path: &std::path::Path) -> Result<Vec<String>> {
    let text = crate::files::read_to_string(path).map_err(Error::io(path))?;
    let mut names: Vec<String> = Vec::new();
    for (k, line) in text.lines().enumerate() {
        let name = line.trim();
        if name.is_empty() || name.starts_with('#') {
            continue;
        }
        if names.iter().any(|n| n == name) {
            return Err(Error::Line {
                path: path.to_path_buf(),
                line: k + 1,
                message: format!("class {name:?} is listed twice"),
            });
        }
        names.push(name.to_string());
    }
    if names.is_empty() {
        return Err(Error::Usage(format!(
            "{}: no class names in it",
            path.display()
        )));
    }
    Ok(names)
}

/// `threads`: how many threads look at the local files (`--num-thread`).
/// The catalog of the items `sources` read. `stop` is asked between the
/// looks at objects in storage (a long wait on a slow server): true ends
/// the catalog with [`Error::Interrupted`].
pub fn build_catalog(
    r: &LoadedRecipe,
    sources: Sources,
    threads: usize,
    stop: &dyn Fn() -> bool,
) -> Result<Catalog> {
    let Sources {
        items,
        human,
        declared,
        declared_in,
        multi_hot_width,
        multi_label,
        walk_skips,
        linked_folders: _,
        boxes,
        video,
    } = sources;
    let mut human = human;
    if let Some(path) = &r.recipe.labels.human_names {
        let path = r.resolve(path);
        let text = crate::files::read_to_string(&path).map_err(Error::io(&path))?;
        for line in text.lines() {
            if let Some((k, v)) = line.split_once('\t') {
                human.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
    }
    let any_numeric = items.iter().any(|i| i.numeric);
    let (fixed, label_order) = match &r.recipe.labels.names {
        Some(NamesSpec::List(n)) => {
            let mut seen = std::collections::HashSet::new();
            if let Some(d) = n.iter().find(|x| !seen.insert(*x)) {
                return Err(Error::Usage(format!(
                    "{}: labels.names lists {d:?} twice",
                    r.path.display()
                )));
            }
            (Some(n.clone()), "labels.names".to_string())
        }
        Some(NamesSpec::File(f)) => (
            Some(read_names(&r.resolve(f))?),
            format!("labels.names file {}", f.display()),
        ),
        None if declared_in.is_some() => (
            Some(declared),
            format!(
                "class_ids file {} (its order)",
                declared_in.as_ref().unwrap().display()
            ),
        ),
        None if any_numeric => (None, "class ids (numbers in .lst sources)".to_string()),
        None => (None, "sorted".to_string()),
    };
    let explicit_names = r.recipe.labels.names.is_some();
    if let Some(f) = &fixed {
        if f.is_empty() {
            return Err(Error::Usage(format!(
                "{}: labels.names is empty",
                r.path.display()
            )));
        }
    }
    if fixed.is_none() && any_numeric {
        if let Some(named) = items
            .iter()
            .find(|i| !i.numeric && i.labels.iter().any(|l| l.parse::<usize>().is_err()))
        {
            return Err(Error::Usage(format!(
                "{}: class {:?} is a name, but the .lst sources give class ids (numbers); \
                 set labels.names (a list or a file) so ids and names mean the same classes",
                named.origin, named.labels[0]
            )));
        }
    }
    let rule = match &fixed {
        Some(_) => Rule::Fixed,
        None if any_numeric => Rule::Ids {
            min_classes: multi_hot_width.unwrap_or(0),
        },
        None => Rule::Sorted,
    };
    let labels = match &fixed {
        Some(names) => LabelMap::new(names.clone(), true, &human),
        None => LabelMap::new(
            items
                .iter()
                .flat_map(|i| i.labels.iter().cloned())
                .collect(),
            false,
            &human,
        ),
    };
    if let (Some(w), Some(names)) = (multi_hot_width, &fixed) {
        if explicit_names && w != names.len() {
            return Err(Error::Usage(format!(
                "labels.names has {} classes but the multi-hot .lst labels are {w} wide",
                names.len()
            )));
        }
    }
    let mut skipped = walk_skips;
    skipped.extend(boxes.missing.iter().cloned());
    let mut problem = |item: &Item, reason: String| -> Result<()> {
        match r.recipe.on_error {
            OnError::Fail => Err(Error::Problem(format!(
                "{}: {} ({reason})",
                item.origin, item.rel
            ))),
            OnError::Skip => {
                skipped.push(Skip {
                    item: item.rel.clone(),
                    reason,
                    origin: Some(item.origin.to_string()),
                });
                Ok(())
            }
        }
    };
    // objects named one by one (URLs in a CSV: no listing to take their
    // sizes from) are looked at many at a time, not one after another
    let mut looked = look_at_objects(items.iter().map(|i| i.path.as_path()), stop)?;
    let files = look_at_files(&items, threads);
    // each item with its file's size and modification time (one look at the file)
    let mut by_rel: BTreeMap<String, (Item, (u64, i128))> = BTreeMap::new();
    for (k, mut item) in items.into_iter().enumerate() {
        // one name per file: `./a`, `a//b` and `x/../a` are `a`, `a/b`, `a`
        if item.rel.contains(['\t', '\n', '\r']) {
            problem(
                &item,
                "a tab or newline in the path cannot go into a .lst or a CSV cell".into(),
            )?;
            continue;
        }
        match normalize_rel(&item.rel) {
            Some(rel) => item.rel = rel,
            None => {
                problem(
                    &item,
                    format!(
                        "path {:?} leads outside its source's root (items are named by their \
                         path under the root, and outputs use that name)",
                        item.rel
                    ),
                )?;
                continue;
            }
        }
        // class ids of a .lst source name the explicit classes by position
        if item.numeric && explicit_names {
            let names = fixed.as_ref().unwrap();
            let mut mapped = Vec::new();
            let mut bad = None;
            for l in &item.labels {
                match l.parse::<usize>().ok().and_then(|k| names.get(k)) {
                    Some(n) => mapped.push(n.clone()),
                    None => bad = Some(l.clone()),
                }
            }
            if let Some(bad) = bad {
                problem(
                    &item,
                    format!(
                        "class id {bad} is outside labels.names ({} classes, ids 0-{})",
                        names.len(),
                        names.len() - 1
                    ),
                )?;
                continue;
            }
            item.labels = mapped;
        }
        // (an object of a class outside labels.names is dropped and counted
        // by the box checks, not the whole image)
        if item.annotation.is_some() {
            item.labels
                .retain(|l| fixed.is_none() || labels.id(l).is_some());
        }
        if let Some(bad) = item
            .labels
            .iter()
            .find(|l| fixed.is_some() && labels.id(l).is_none())
        {
            problem(&item, format!("label {bad:?} is not in the label map"))?;
            continue;
        }
        let looked = looked.remove(&item.path).or_else(|| {
            let &(size, t) = files.get(k).filter(|&&f| f != NOT_LOOKED)?;
            Some(Ok((size, t as i128)))
        });
        let print = match looked.unwrap_or_else(|| crate::files::fingerprint(&item.path)) {
            Ok(p) => p,
            Err(e) => {
                // the item and its origin name the file; the reason says only
                // what is wrong, so it reads the same wherever the sources are
                let why = match e.kind() {
                    std::io::ErrorKind::InvalidInput => format!("the file {e}"),
                    std::io::ErrorKind::NotFound => "the file does not exist".to_string(),
                    _ => e.to_string(),
                };
                problem(&item, why)?;
                continue;
            }
        };
        if let Some((first, _)) = by_rel.get(&item.rel) {
            let first_origin = first.origin.clone();
            problem(
                &item,
                format!("duplicate item, first declared at {first_origin}"),
            )?;
            continue;
        }
        by_rel.insert(item.rel.clone(), (item, print));
    }
    let (items, prints): (Vec<Item>, Vec<(u64, i128)>) = by_rel.into_values().unzip();
    if !r.recipe.labels.unlabelled
        && !boxes.any
        && !items.is_empty()
        && items.iter().all(|i| i.labels.is_empty())
    {
        return Err(Error::Usage(format!(
            "{}: no item has a label, so num_classes would be 0 (first item: {}, from {}). \
             For an unlabelled dataset set [labels] unlabelled = true; otherwise give the source \
             its labels (class sub-folders, a label column, a .lst with labels)",
            r.path.display(),
            items[0].rel,
            items[0].origin
        )));
    }
    let detection = boxes.any;
    let multi_label = !detection && (multi_label || items.iter().any(|i| i.labels.len() > 1));
    let mut c = Catalog {
        items,
        prints,
        labels,
        label_order,
        multi_label,
        skipped,
        detection,
        boxes,
        video,
        rule,
        human,
    };
    c.finalize_labels(0..c.items.len());
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asked to stop (Ctrl-C in a notebook), the looks at objects end after
    /// the answers in flight, not after every object of a long list.
    #[test]
    fn looks_at_objects_stop_when_asked() {
        // a server that answers every request with 404 at once
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            for mut c in server.incoming().flatten() {
                let mut buf = [0u8; 4096];
                let _ = c.read(&mut buf);
                let _ = c.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        let urls: Vec<std::path::PathBuf> = (0..200)
            .map(|k| format!("http://127.0.0.1:{port}/img_{k}.jpg").into())
            .collect();
        let asked = std::sync::atomic::AtomicUsize::new(0);
        let stop = || asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= 2;
        let r = look_at_objects(urls.iter().map(|p| p.as_path()), &stop);
        assert!(matches!(r, Err(Error::Interrupted)), "{r:?}");
        assert_eq!(asked.load(std::sync::atomic::Ordering::Relaxed), 3);
        let all = look_at_objects(urls.iter().map(|p| p.as_path()), &|| false).unwrap();
        assert_eq!(all.len(), 200);
        assert!(all.values().all(|r| r.is_err()));
    }

    #[test]
    fn class_names_sort_numerically_only_when_all_are_digits() {
        let order = |names: &[&str]| -> Vec<String> {
            let m = LabelMap::new(
                names.iter().map(|s| s.to_string()).collect(),
                false,
                &HashMap::new(),
            );
            m.entries.into_iter().map(|e| e.name).collect()
        };
        assert_eq!(order(&["10", "2", "1"]), ["1", "2", "10"]);
        assert_eq!(order(&["10", "2", "+5"]), ["+5", "10", "2"]);
        assert_eq!(order(&["10", "2", "-3"]), ["-3", "10", "2"]);
        // too long for a u64: text order, no overflow
        assert_eq!(
            order(&["99999999999999999999", "3"]),
            ["3", "99999999999999999999"]
        );
    }

    #[test]
    fn item_paths_have_one_name() {
        assert_eq!(normalize_rel("./a.jpg").as_deref(), Some("a.jpg"));
        assert_eq!(normalize_rel("c//b.jpg").as_deref(), Some("c/b.jpg"));
        assert_eq!(normalize_rel("x/../a.jpg").as_deref(), Some("a.jpg"));
        assert_eq!(normalize_rel("../a.jpg"), None);
        assert_eq!(normalize_rel("x/../../a.jpg"), None);
        assert_eq!(normalize_rel("/etc/passwd"), None);
        assert_eq!(normalize_rel("."), None);
    }

    #[test]
    fn label_maps_sort_names_or_numbers() {
        let h = HashMap::new();
        let m = LabelMap::new(vec!["dog".into(), "cat".into(), "dog".into()], false, &h);
        assert_eq!(m.id("cat"), Some(0));
        assert_eq!(m.id("dog"), Some(1));
        let m = LabelMap::new(vec!["10".into(), "2".into(), "0".into()], false, &h);
        assert_eq!(
            (m.id("0"), m.id("2"), m.id("10")),
            (Some(0), Some(1), Some(2))
        );
        let m = LabelMap::new(vec!["z".into(), "a".into()], true, &h);
        assert_eq!(m.id("z"), Some(0));
    }
}
