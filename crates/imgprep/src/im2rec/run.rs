//! The whole `im2rec` job for a PREFIX, local or in object storage: lists
//! fetched to and written in a staging folder, what is written sent back
//! next to them, and the paths reported as the user named them.

use super::{find_lists, make_lists, pack_list, validate_list, ListOptions, ListSummary};
use super::{PackOptions, PackSummary, RemotePrefix};
use crate::error::Result;
use crate::report::Reporter;
use std::path::{Path, PathBuf};

/// How a local path of the staging folder reads to the user (its URI).
fn shown(remote: Option<&RemotePrefix>, p: &Path) -> PathBuf {
    match remote.and_then(|r| Some((r, p.strip_prefix(&r.local_dir).ok()?))) {
        Some((r, rel)) => r.dir.join(&rel.to_string_lossy()).to_string().into(),
        None => p.to_path_buf(),
    }
}

/// `im2rec --list`: makes the `.lst` files for `opts.prefix` (which may be
/// in object storage; they are written there).
pub fn list_prefix(opts: &ListOptions) -> Result<ListSummary> {
    let remote = RemotePrefix::parse(&opts.prefix)?;
    let Some(r) = &remote else {
        // as im2rec.py's `os.path.abspath(prefix)`: `out/` is `out`, whose
        // lists are `out.lst` beside the folder (not `out/.lst`)
        let text = opts.prefix.to_string_lossy();
        let trimmed = text.trim_end_matches('/');
        if trimmed.len() < text.len() && !trimmed.is_empty() {
            return make_lists(&ListOptions {
                prefix: PathBuf::from(trimmed),
                ..opts.clone()
            });
        }
        return make_lists(opts);
    };
    let local = ListOptions {
        prefix: r.local_prefix(),
        ..opts.clone()
    };
    let mut s = make_lists(&local)?;
    let files: Vec<PathBuf> = s.files.iter().map(|(f, _)| f.clone()).collect();
    r.send(&files)?;
    for (f, _) in &mut s.files {
        *f = shown(remote.as_ref(), f);
    }
    Ok(s)
}

/// `im2rec` packing: every `PREFIX*.lst` into `.rec` + `.idx`. Every list
/// is checked before anything is written; a list with several labels per
/// line packed without `pack_label` gets a warning.
pub fn pack_prefix(
    prefix: &Path,
    opts: &PackOptions,
    reporter: &dyn Reporter,
) -> Result<Vec<PackSummary>> {
    let remote = RemotePrefix::parse(prefix)?;
    let lists = match &remote {
        Some(r) => r.fetch_lists()?,
        None => find_lists(prefix)?,
    };
    for l in &lists {
        let stats = validate_list(l)?;
        if let (false, Some((line, n))) = (opts.pack_label, stats.first_multi_label) {
            reporter.warn(&format!(
                "{}: {} of {} lines have several labels (line {line}: {n}); without \
                 --pack-label each record keeps only the first. Add --pack-label to store them all",
                shown(remote.as_ref(), l).display(),
                stats.multi_label_lines,
                stats.entries
            ));
        }
        // packed labels of several widths: a reader takes one label_width
        match stats.label_widths {
            Some(((l0, n0), (l1, n1)))
                if opts.pack_label && n0 != n1 && stats.detection_lines < stats.entries =>
            {
                reporter.warn(&format!(
                    "{}: lines have {n0} to {n1} labels (line {l0}: {n0}, line {l1}: {n1}); \
                     --pack-label stores each line's own, but ImageRecordIter reads one \
                     label_width and stops at a record of another. Pad the lists to one width \
                     (e.g. with -1)",
                    shown(remote.as_ref(), l).display(),
                ));
            }
            _ => {}
        }
    }
    let mut summaries = Vec::new();
    for l in &lists {
        let mut s = pack_list(l, opts, reporter)?;
        if let Some(r) = &remote {
            r.send(&[s.rec.clone(), s.idx.clone()])?;
            for p in [&mut s.lst, &mut s.rec, &mut s.idx] {
                *p = shown(remote.as_ref(), p);
            }
        }
        summaries.push(s);
    }
    Ok(summaries)
}
