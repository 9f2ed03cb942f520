//! `im2rec --list`: walk a folder, label images, shuffle, split, write `.lst`.

use crate::error::{Error, Result};
use crate::output::write_atomic;
use crate::pyrandom::PyRandom;
use recordio::{format_lst_line, LstEntry};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct ListOptions {
    pub prefix: PathBuf,
    pub root: PathBuf,
    /// Accepted extensions, with the dot, compared with the file's lower-cased extension.
    pub exts: Vec<String>,
    pub chunks: usize,
    pub train_ratio: f64,
    pub test_ratio: f64,
    pub recursive: bool,
    pub shuffle: bool,
}

impl Default for ListOptions {
    fn default() -> Self {
        ListOptions {
            prefix: PathBuf::new(),
            root: PathBuf::new(),
            exts: vec![".jpeg".into(), ".jpg".into(), ".png".into()],
            chunks: 1,
            train_ratio: 1.0,
            test_ratio: 0.0,
            recursive: false,
            shuffle: true,
        }
    }
}

/// What `make_lists` wrote.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ListSummary {
    /// Each `.lst` written, with its number of lines.
    pub files: Vec<(PathBuf, usize)>,
    /// Folder (relative to ROOT, `.` for ROOT itself) and its label, with `--recursive`.
    pub classes: Vec<(String, usize)>,
    pub images: usize,
    /// Files passed over (names that cannot go into a .lst), with reasons.
    pub skipped: Vec<String>,
}

/// Python's `os.path.splitext(name)[1].lower()`.
fn extension(name: &str) -> String {
    let stem_start = name.len() - name.trim_start_matches('.').len();
    match name[stem_start..].rfind('.') {
        Some(i) => name[stem_start + i..].to_lowercase(),
        None => String::new(),
    }
}

struct Walker<'a> {
    root: &'a Path,
    exts: &'a [String],
    items: Vec<(String, usize)>,
    classes: Vec<(String, usize)>,
    skipped: Vec<(String, String)>,
    /// Folders outside ROOT entered through symbolic links (each once).
    visited: HashSet<PathBuf>,
    /// The links entered, as paths under ROOT.
    linked: Vec<PathBuf>,
    /// For a ROOT in object storage: its folders, from one listing.
    remote: Option<Tree>,
}

/// Folder (relative, `.` for ROOT) -> (sub-folder names, file names).
type Tree = BTreeMap<String, (BTreeSet<String>, Vec<String>)>;

/// The folder tree under an object-store prefix, from one listing.
fn remote_tree(root: &Path) -> Result<Tree> {
    let uri = root.to_string_lossy();
    let objects = crate::files::list_remote(&uri).map_err(Error::io(root))?;
    let mut tree = Tree::new();
    tree.entry(".".into()).or_default();
    for (_, rel) in objects {
        let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
        let Some((file, dirs)) = parts.split_last() else {
            continue;
        };
        let mut here = ".".to_string();
        for d in dirs {
            let child = if here == "." {
                d.to_string()
            } else {
                format!("{here}/{d}")
            };
            tree.entry(here).or_default().0.insert(d.to_string());
            here = child;
        }
        tree.entry(here).or_default().1.push(file.to_string());
    }
    for (_, files) in tree.values_mut() {
        files.sort();
    }
    Ok(tree)
}

impl Walker<'_> {
    fn rel(&self, p: &Path) -> String {
        let r = p.strip_prefix(self.root).unwrap_or(p);
        if r.as_os_str().is_empty() {
            ".".into()
        } else {
            r.to_string_lossy().into_owned()
        }
    }

    /// Sorted (dirs, files) of one folder, as `os.walk` sees them.
    fn read_dir(&mut self, dir: &Path) -> Result<(Vec<String>, Vec<String>)> {
        if let Some(tree) = &self.remote {
            let (dirs, files) = tree.get(&self.rel(dir)).cloned().unwrap_or_default();
            return Ok((dirs.into_iter().collect(), files));
        }
        let mut dirs = Vec::new();
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(Error::io(dir))? {
            let entry = entry.map_err(Error::io(dir))?;
            let name = match entry.file_name().into_string() {
                Ok(n) => n,
                Err(n) => {
                    self.skipped.push((
                        dir.join(n).display().to_string(),
                        "the name is not UTF-8".into(),
                    ));
                    continue;
                }
            };
            // the entry's own type where the folder listing gives it (no
            // look at the file); links are followed, like
            // os.walk(followlinks=True) + isfile
            match entry.file_type() {
                Ok(t) if t.is_file() => {
                    files.push(name);
                    continue;
                }
                Ok(t) if t.is_dir() => {
                    dirs.push(name);
                    continue;
                }
                _ => {}
            }
            match std::fs::metadata(entry.path()) {
                Ok(m) if m.is_dir() => dirs.push(name),
                Ok(m) if m.is_file() => files.push(name),
                // an image name that is no image file: said, not dropped
                Ok(_) if self.accept(&name) => self.skipped.push((
                    entry.path().display().to_string(),
                    "not a regular file (a FIFO, device or socket)".into(),
                )),
                Err(_) if self.accept(&name) => self.skipped.push((
                    entry.path().display().to_string(),
                    "a symbolic link to nothing".into(),
                )),
                _ => {}
            }
        }
        dirs.sort();
        files.sort();
        Ok((dirs, files))
    }

    fn accept(&self, name: &str) -> bool {
        let ext = extension(name);
        self.exts.contains(&ext)
    }

    fn push(&mut self, path: &Path, label: usize) {
        let rel = self.rel(path);
        if rel.contains(['\t', '\n', '\r']) {
            self.skipped.push((
                path.display().to_string(),
                "a tab or newline in the name cannot go into a .lst".into(),
            ));
            return;
        }
        self.items.push((rel, label));
    }

    fn walk(&mut self, dir: &Path) -> Result<()> {
        let (dirs, files) = self.read_dir(dir)?;
        let mut label = None;
        let images: Vec<&String> = files.iter().filter(|f| self.accept(f)).collect();
        for f in images {
            let label = *label.get_or_insert_with(|| {
                let l = self.classes.len();
                self.classes.push((self.rel(dir), l));
                l
            });
            self.push(&dir.join(f), label);
        }
        for d in dirs {
            let sub = dir.join(d);
            if self.remote.is_none()
                && std::fs::symlink_metadata(&sub).is_ok_and(|m| m.file_type().is_symlink())
            {
                // A link to a folder of the tree would list its images twice
                // (under two classes); a link out of the tree is followed
                // once; a link back to where the walk has been is a loop.
                let target = std::fs::canonicalize(&sub).map_err(Error::io(&sub))?;
                let root = std::fs::canonicalize(self.root).map_err(Error::io(self.root))?;
                if target.starts_with(&root) {
                    self.skipped.push((
                        sub.display().to_string(),
                        "a symbolic link to a folder of the same tree, whose images are listed \
                         under their own folder"
                            .into(),
                    ));
                    continue;
                }
                if !self.visited.insert(target) {
                    self.skipped.push((
                        sub.display().to_string(),
                        "a symbolic link to a folder already listed (or a loop): not entered again"
                            .into(),
                    ));
                    continue;
                }
                self.linked.push(sub.clone());
            }
            self.walk(&sub)?;
        }
        Ok(())
    }
}

/// Images found under a root, in im2rec.py's order.
#[derive(Debug, Default, Clone)]
pub struct Listing {
    /// Path relative to the root, and label.
    pub items: Vec<(String, usize)>,
    /// Folder (relative to the root, `.` for the root itself) and its label.
    pub classes: Vec<(String, usize)>,
    /// Files passed over: path and reason.
    pub skipped: Vec<(String, String)>,
    /// Symbolic links to folders outside ROOT that the walk entered (their
    /// paths under ROOT): a build checks that none leads to its output.
    pub linked: Vec<PathBuf>,
}

/// Lists images under `root` exactly as im2rec.py's `list_image` does:
/// with `recursive`, folders in sorted pre-order, each folder holding images
/// gets the next label; without, the files directly in `root`, label 0.
/// A ROOT in object storage is listed once and walked the same way.
pub fn list_images(root: &Path, exts: &[String], recursive: bool) -> Result<Listing> {
    let remote = if crate::files::is_remote(root) {
        let tree = remote_tree(root)?;
        if tree.len() == 1 && tree["."].1.is_empty() {
            return Err(Error::Usage(format!(
                "{}: ROOT holds no objects",
                root.display()
            )));
        }
        Some(tree)
    } else {
        None
    };
    if remote.is_none() && !root.is_dir() {
        return Err(Error::Usage(format!(
            "{}: ROOT is not a folder",
            root.display()
        )));
    }
    let mut w = Walker {
        root,
        exts,
        items: Vec::new(),
        classes: Vec::new(),
        skipped: Vec::new(),
        visited: HashSet::new(),
        linked: Vec::new(),
        remote,
    };
    if recursive {
        w.walk(root)?;
    } else {
        let (_, files) = w.read_dir(root)?;
        let images: Vec<&String> = files.iter().filter(|f| w.accept(f)).collect();
        for f in images {
            w.push(&root.join(f), 0);
        }
    }
    Ok(Listing {
        items: w.items,
        classes: w.classes,
        skipped: w.skipped,
        linked: w.linked,
    })
}

/// `im2rec --list`: writes `PREFIX[_chunk][_train|_val|_test].lst`.
pub fn make_lists(opts: &ListOptions) -> Result<ListSummary> {
    if opts.chunks == 0 {
        return Err(Error::Usage("--chunks must be at least 1".into()));
    }
    // shares of the images: im2rec.py slices past the list with others and
    // quietly writes other shares than asked
    let (tr, te) = (opts.train_ratio, opts.test_ratio);
    if !(0.0..=1.0).contains(&tr) || !(0.0..=1.0).contains(&te) || tr + te > 1.0 + 1e-9 {
        return Err(Error::Usage(format!(
            "--train-ratio {tr} and --test-ratio {te}: each is a share from 0 to 1, and \
             together at most 1 (the rest is validation)"
        )));
    }
    let listing = list_images(&opts.root, &opts.exts, opts.recursive)?;
    // im2rec.py compares with the dot: `--exts jpg` lists nothing, said
    let dotless: Vec<&String> = opts.exts.iter().filter(|e| !e.starts_with('.')).collect();
    if listing.items.is_empty() && !dotless.is_empty() {
        return Err(Error::Usage(format!(
            "--exts {}: no file matched; extensions are compared with their dot (--exts .{})",
            dotless
                .iter()
                .map(|e| e.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            dotless[0]
        )));
    }
    let mut summary = ListSummary {
        files: Vec::new(),
        classes: listing.classes,
        images: listing.items.len(),
        skipped: listing
            .skipped
            .into_iter()
            .map(|(p, why)| format!("{p}: {why}"))
            .collect(),
    };
    let mut entries: Vec<LstEntry> = listing
        .items
        .into_iter()
        .enumerate()
        .map(|(i, (path, label))| LstEntry {
            index: i as u64,
            labels: vec![label as f64],
            path,
        })
        .collect();
    if opts.shuffle {
        PyRandom::seed(100).shuffle(&mut entries);
    }
    let n = entries.len();
    let chunk_size = n.div_ceil(opts.chunks);
    let prefix = opts.prefix.to_string_lossy().into_owned();
    for c in 0..opts.chunks {
        let lo = (c * chunk_size).min(n);
        let hi = ((c + 1) * chunk_size).min(n);
        let chunk = &entries[lo..hi];
        let suffix = if opts.chunks > 1 {
            format!("_{c}")
        } else {
            String::new()
        };
        let sep = (chunk_size as f64 * opts.train_ratio) as usize;
        let sep_test = (chunk_size as f64 * opts.test_ratio) as usize;
        let slice = |a: usize, b: usize| {
            &chunk[a.min(chunk.len())..b.min(chunk.len()).max(a.min(chunk.len()))]
        };
        let mut outputs: Vec<(String, &[LstEntry])> = Vec::new();
        if opts.train_ratio == 1.0 {
            outputs.push((format!("{prefix}{suffix}.lst"), chunk));
        } else {
            if opts.test_ratio != 0.0 {
                outputs.push((format!("{prefix}{suffix}_test.lst"), slice(0, sep_test)));
            }
            if opts.train_ratio + opts.test_ratio < 1.0 {
                outputs.push((
                    format!("{prefix}{suffix}_val.lst"),
                    slice(sep_test + sep, chunk.len()),
                ));
            }
            outputs.push((
                format!("{prefix}{suffix}_train.lst"),
                slice(sep_test, sep_test + sep),
            ));
        }
        for (path, part) in outputs {
            let text: String = part.iter().map(format_lst_line).collect();
            let path = PathBuf::from(path);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
            }
            write_atomic(&path, text.as_bytes()).map_err(Error::io(&path))?;
            summary.files.push((path, part.len()));
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_follows_python_splitext() {
        assert_eq!(extension("a.JPG"), ".jpg");
        assert_eq!(extension("a.b.png"), ".png");
        assert_eq!(extension(".hidden"), "");
        assert_eq!(extension("..x.jpg"), ".jpg");
        assert_eq!(extension("noext"), "");
    }
}
