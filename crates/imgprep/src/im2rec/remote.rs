//! A PREFIX in object storage (`s3://bucket/lists/data`): the `.lst` files
//! are fetched into a local staging folder, worked on there like local ones,
//! and what was written (`.lst`, `.rec`, `.idx`) is sent back next to them.

use crate::error::{Error, Result};
use crate::storage::transfer::{get_file, put_file, staging_dir};
use crate::storage::{bucket_for, Uri};
use std::path::{Path, PathBuf};

/// An object-store PREFIX and the local folder standing in for its folder.
#[derive(Debug, Clone)]
pub struct RemotePrefix {
    /// The folder (prefix ending before the last `/`) holding the lists.
    pub dir: Uri,
    /// The last segment (`data` in `.../lists/data`); empty for a folder
    /// PREFIX ending in `/`.
    pub stem: String,
    pub local_dir: PathBuf,
}

impl RemotePrefix {
    /// `None` for a local PREFIX.
    pub fn parse(prefix: &Path) -> Result<Option<RemotePrefix>> {
        let Some(s) = prefix.to_str().filter(|s| crate::storage::is_remote(s)) else {
            return Ok(None);
        };
        let uri = Uri::parse(s).map_err(Error::Usage)?;
        let (dir_key, stem) = match uri.key.rsplit_once('/') {
            Some((d, stem)) => (d.to_string(), stem.to_string()),
            None => (String::new(), uri.key.clone()),
        };
        let dir = Uri {
            key: dir_key,
            ..uri.clone()
        };
        let local_dir = staging_dir(&dir)?;
        Ok(Some(RemotePrefix {
            dir,
            stem,
            local_dir,
        }))
    }

    /// The local PREFIX standing in for the remote one.
    pub fn local_prefix(&self) -> PathBuf {
        self.local_dir.join(&self.stem)
    }

    /// Fetches every `.lst` object next to PREFIX whose name starts with its
    /// last segment (im2rec.py's rule); a PREFIX that names a folder takes
    /// the lists in it. Returns their local copies, sorted.
    pub fn fetch_lists(&self) -> Result<Vec<PathBuf>> {
        let b = bucket_for(&self.dir).map_err(|e| Error::Usage(e.to_string()))?;
        let list = |dir: &Uri, stem: &str| -> Result<Vec<String>> {
            let (files, _) = b
                .list_dir(&dir.key)
                .map_err(|e| Error::Usage(e.to_string()))?;
            Ok(files
                .into_iter()
                .filter_map(|o| o.key.rsplit('/').next().map(str::to_string))
                .filter(|n| n.starts_with(stem) && n.ends_with(".lst"))
                .collect())
        };
        let mut names = list(&self.dir, &self.stem)?;
        let mut from = self.dir.clone();
        let mut local_dir = self.local_dir.clone();
        if names.is_empty() && !self.stem.is_empty() {
            // PREFIX is a folder of lists
            from = self.dir.join(&self.stem);
            names = list(&from, "")?;
            local_dir = self.local_dir.join(&self.stem);
        }
        if names.is_empty() {
            return Err(Error::Usage(format!(
                "no .lst object matches {}* (make one with --list)",
                self.dir.join(&self.stem)
            )));
        }
        names.sort();
        let mut out = Vec::new();
        for n in names {
            let local = local_dir.join(&n);
            get_file(&from.join(&n), &local)?;
            out.push(local);
        }
        Ok(out)
    }

    /// Sends files written under the staging folder to the same relative
    /// place under the remote folder; returns how many were uploaded
    /// (unchanged ones are not sent again).
    pub fn send(&self, files: &[PathBuf]) -> Result<usize> {
        let mut sent = 0;
        for f in files {
            let rel = f
                .strip_prefix(&self.local_dir)
                .map_err(|_| {
                    Error::Usage(format!(
                        "{}: not under the staging folder {}",
                        f.display(),
                        self.local_dir.display()
                    ))
                })?
                .to_string_lossy()
                .replace('\\', "/");
            sent += usize::from(put_file(f, &self.dir.join(&rel))?);
        }
        Ok(sent)
    }
}
