//! `im2rec` record mode: read a `.lst`, process every image in parallel, and
//! write `.rec` + `.idx` in list order.

use crate::error::{Error, Result};
use crate::execute::ordered_map_batched;
use crate::image::{ImageSpec, Processor};
use crate::output::AtomicFile;
use crate::report::Reporter;
use recordio::{parse_lst_line, write_idx_line, ImageRecord, Labels, LstEntry, RecordWriter};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct PackOptions {
    pub root: PathBuf,
    pub spec: ImageSpec,
    /// Store each file's own bytes (after a header check) instead of re-encoding.
    pub pass_through: bool,
    /// Put every label of multi-label lines into the record (`flag = N`).
    pub pack_label: bool,
    pub threads: usize,
}

/// What one `.lst` -> `.rec` conversion did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PackSummary {
    pub lst: PathBuf,
    pub rec: PathBuf,
    pub idx: PathBuf,
    pub images: u64,
    pub skipped: u64,
    /// Skips counted by kind (`missing`, `corrupt`, `too-large`, ...).
    pub skip_reasons: BTreeMap<String, u64>,
    /// The first [`SKIPS_LISTED`] skips: file, `.lst` line and reason.
    pub skipped_items: Vec<String>,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub seconds: f64,
}

/// Skips listed by name in a [`PackSummary`] (the rest are counted).
pub const SKIPS_LISTED: usize = 1000;

/// The `.lst` files im2rec.py would convert for PREFIX: every regular file in
/// PREFIX's folder (or in PREFIX, if it is a folder) whose path starts with
/// PREFIX and ends with `.lst`. Sorted.
pub fn find_lists(prefix: &Path) -> Result<Vec<PathBuf>> {
    let abs = std::path::absolute(prefix).map_err(Error::io(prefix))?;
    let dir = if abs.is_dir() {
        abs.clone()
    } else {
        abs.parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    };
    let abs_str = abs.to_string_lossy().into_owned();
    let mut found = Vec::new();
    let entries = std::fs::read_dir(&dir).map_err(Error::io(&dir))?;
    for entry in entries {
        let path = entry.map_err(Error::io(&dir))?.path();
        let s = path.to_string_lossy();
        if s.starts_with(&abs_str) && s.ends_with(".lst") && path.is_file() {
            found.push(path);
        }
    }
    found.sort();
    if found.is_empty() {
        return Err(Error::Usage(format!(
            "no .lst file matches {}* (make one with --list)",
            prefix.display()
        )));
    }
    Ok(found)
}

/// Items per hand-off between threads for local images.
const PACK_BATCH: usize = 4;

/// Images read at a time when ROOT is in object storage.
const REMOTE_READS: usize = 16;

/// Reads a `.lst` line by line. Blank lines are passed over; anything else
/// that does not parse is an error naming `file:line`.
pub struct LstReader {
    path: PathBuf,
    reader: BufReader<Box<dyn Read + Send>>,
    line_no: usize,
    buf: String,
}

impl LstReader {
    /// A local `.lst` or one in object storage.
    pub fn open(path: &Path) -> Result<Self> {
        let f = crate::files::open(path).map_err(Error::io(path))?;
        Ok(LstReader {
            path: path.to_path_buf(),
            reader: BufReader::new(f),
            line_no: 0,
            buf: String::new(),
        })
    }

    /// The next entry with its line number.
    pub fn next_entry(&mut self) -> Result<Option<(usize, LstEntry)>> {
        loop {
            self.buf.clear();
            self.line_no += 1;
            let n = self
                .reader
                .read_line(&mut self.buf)
                .map_err(|e| Error::Line {
                    path: self.path.clone(),
                    line: self.line_no,
                    message: e.to_string(),
                })?;
            if n == 0 {
                return Ok(None);
            }
            match parse_lst_line(&self.buf) {
                Ok(Some(e)) => return Ok(Some((self.line_no, e))),
                Ok(None) => continue,
                Err(e) => {
                    return Err(Error::Line {
                        path: self.path.clone(),
                        line: self.line_no,
                        message: e.to_string(),
                    })
                }
            }
        }
    }
}

/// Checks a whole `.lst` before anything is written; returns its entry count.
/// An index on two lines is refused, naming both: the `.idx` would hold it
/// twice, and a reader by index would find only one of the two records.
pub fn validate_list(path: &Path) -> Result<ListStats> {
    let mut r = LstReader::open(path)?;
    let mut s = ListStats::default();
    // 8 bytes a line, for the duplicate check
    let mut ids: Vec<u64> = Vec::new();
    while let Some((line, e)) = r.next_entry()? {
        s.entries += 1;
        ids.push(e.index);
        let n = e.labels.len();
        // a detection list's line: header width A, object width B, then A - 2
        // more header values and whole objects (widths differ by design)
        let detection = match e.labels[..] {
            [a, b, ..] => {
                a.fract() == 0.0
                    && b.fract() == 0.0
                    && a >= 2.0
                    && b >= 5.0
                    && n >= a as usize
                    && (n - a as usize).is_multiple_of(b as usize)
            }
            _ => false,
        };
        s.detection_lines += u64::from(detection);
        if n > 1 {
            s.multi_label_lines += 1;
            s.first_multi_label.get_or_insert((line, n));
        }
        match s.label_widths {
            None => s.label_widths = Some(((line, n), (line, n))),
            Some((ref mut lo, ref mut hi)) => {
                if n < lo.1 {
                    *lo = (line, n);
                }
                if n > hi.1 {
                    *hi = (line, n);
                }
            }
        }
    }
    ids.sort_unstable();
    if let Some(dup) = ids.windows(2).find(|w| w[0] == w[1]).map(|w| w[0]) {
        drop(ids);
        let mut r = LstReader::open(path)?;
        let mut lines = Vec::new();
        while let Some((line, e)) = r.next_entry()? {
            if e.index == dup {
                lines.push(line);
                if lines.len() == 2 {
                    break;
                }
            }
        }
        return Err(Error::Line {
            path: path.to_path_buf(),
            line: lines[1],
            message: format!(
                "index {dup} is also on line {}: each line needs its own index (the .idx \
                 would list it twice, and a reader by index would find only one of the records)",
                lines[0]
            ),
        });
    }
    Ok(s)
}

/// What [`validate_list`] saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListStats {
    pub entries: u64,
    /// Lines with more than one label column.
    pub multi_label_lines: u64,
    /// The first of them: line number and label count.
    pub first_multi_label: Option<(usize, usize)>,
    /// The fewest and the most label columns, each with the first line
    /// that has them.
    pub label_widths: Option<((usize, usize), (usize, usize))>,
    /// Lines shaped as a detection list's (`A B header... objects...`).
    pub detection_lines: u64,
}

/// Output of one worker for one list entry.
enum Packed {
    Record {
        id: u64,
        payload: Vec<u8>,
        bytes_read: u64,
    },
    Skipped {
        kind: &'static str,
        message: String,
    },
}

fn labels_for(entry: &LstEntry, pack_label: bool) -> Labels {
    if pack_label && entry.labels.len() > 1 {
        Labels::Packed(entry.labels.iter().map(|&l| l as f32).collect())
    } else {
        Labels::Scalar(entry.labels[0] as f32)
    }
}

fn read_into(path: &Path, out: &mut Vec<u8>, max_pixels: u64) -> std::io::Result<u64> {
    if crate::files::is_remote(path) {
        let data = crate::files::read_image(path, max_pixels)?;
        out.extend_from_slice(&data);
        return Ok(data.len() as u64);
    }
    let (mut f, len) = crate::files::open_regular_len(path)?;
    crate::files::check_image_size(len, max_pixels)?;
    // room for one byte more: the read that finds the end needs no new buffer
    out.reserve(usize::try_from(len).unwrap_or(usize::MAX).saturating_add(1));
    Ok(f.read_to_end(out)? as u64)
}

fn pack_one(
    proc: &mut Processor,
    opts: &PackOptions,
    line: usize,
    entry: LstEntry,
    lst: &Path,
) -> Packed {
    let header = ImageRecord {
        labels: labels_for(&entry, opts.pack_label),
        id: entry.index,
        id2: 0,
    };
    let path = crate::files::join(&opts.root, Path::new(&entry.path));
    let skip = |kind: &'static str, why: String| Packed::Skipped {
        kind,
        message: format!(
            "skipped {} ({}:{line}): {why}",
            path.display(),
            lst.display()
        ),
    };
    let mut payload = Vec::new();
    header.write_header(&mut payload);
    if opts.pass_through {
        let bytes_read = match read_into(&path, &mut payload, opts.spec.max_pixels) {
            Ok(n) => n,
            Err(e) => return skip("unreadable", e.to_string()),
        };
        match proc.probe(&payload[header.header_len()..], opts.spec.max_pixels) {
            Err(e) => return skip(e.kind(), e.to_string()),
            // stored as it is, it would fail in ImageRecordIter, not here
            Ok(info) if !crate::image::MXNET_DECODES.contains(&info.format) => {
                return skip(
                    "format",
                    format!(
                        "a {} file, which MXNet's image decoder cannot read (it reads JPEG, PNG, \
                         BMP and TIFF): leave out --pass-through to re-encode it",
                        info.format.name().to_uppercase()
                    ),
                )
            }
            Ok(info)
                if info.format == crate::image::ImageFormat::Tiff
                    && !crate::image::mxnet_reads_tiff(std::io::Cursor::new(
                        &payload[header.header_len()..],
                    )) =>
            {
                return skip(
                    "format",
                    "a TIFF file whose compression MXNet's image decoder cannot read (it reads \
                     uncompressed, LZW and PackBits TIFFs): leave out --pass-through to re-encode it"
                        .into(),
                )
            }
            Ok(_) => {}
        }
        return Packed::Record {
            id: entry.index,
            payload,
            bytes_read,
        };
    }
    let mut data = Vec::new();
    let bytes_read = match read_into(&path, &mut data, opts.spec.max_pixels) {
        Ok(n) => n,
        Err(e) => return skip("unreadable", e.to_string()),
    };
    match proc.process(&data, &opts.spec, &mut payload) {
        Ok(_) => Packed::Record {
            id: entry.index,
            payload,
            bytes_read,
        },
        Err(e) => skip(e.kind(), e.to_string()),
    }
}

/// Converts one `.lst` into `.rec` + `.idx` next to it.
pub fn pack_list(lst: &Path, opts: &PackOptions, reporter: &dyn Reporter) -> Result<PackSummary> {
    let packed = pack_list_in(lst, opts, reporter);
    // (a replaced .rec still being removed: no space is held after a pack)
    crate::output::finish_removals();
    packed
}

fn pack_list_in(lst: &Path, opts: &PackOptions, reporter: &dyn Reporter) -> Result<PackSummary> {
    let start = Instant::now();
    let remote = crate::files::is_remote(&opts.root);
    if !remote && !opts.root.is_dir() {
        return Err(Error::Usage(format!(
            "{}: ROOT is not a folder",
            opts.root.display()
        )));
    }
    let total = validate_list(lst)?.entries;
    let rec_path = lst.with_extension("rec");
    let idx_path = lst.with_extension("idx");
    // no SHA-256: im2rec's outputs have no manifest
    let mut rec_file = AtomicFile::create_unsummed(&rec_path).map_err(Error::io(&rec_path))?;
    let mut idx_file = AtomicFile::create_unsummed(&idx_path).map_err(Error::io(&idx_path))?;
    let mut rec = RecordWriter::new(&mut rec_file);
    let mut summary = PackSummary {
        lst: lst.to_path_buf(),
        rec: rec_path.clone(),
        idx: idx_path.clone(),
        ..Default::default()
    };

    let mut reader = LstReader::open(lst)?;
    let entries = std::iter::from_fn(move || reader.next_entry().ok().flatten());
    let name = lst
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    reporter.begin(&name, Some(total));
    // objects from a store: more requests in flight than cores
    let threads = if remote {
        opts.threads.max(REMOTE_READS)
    } else {
        opts.threads
    };
    // a few items per hand-off between threads (a pass-through item takes
    // microseconds, its wake-up as long); at most 8 items per thread in
    // flight, so memory stays bounded by the images' size
    let batch = if remote { 1 } else { PACK_BATCH };
    let window = threads.max(1) * 8;
    let init = || Processor::new().expect("libjpeg-turbo initialises");
    let work =
        |p: &mut Processor, (line, entry): (usize, LstEntry)| pack_one(p, opts, line, entry, lst);
    ordered_map_batched(
        entries,
        batch,
        threads,
        window,
        init,
        work,
        |packed| -> Result<()> {
            match packed {
                Packed::Record {
                    id,
                    payload,
                    bytes_read,
                } => {
                    let offset = rec.write_record(&payload).map_err(Error::io(&rec_path))?;
                    write_idx_line(&mut idx_file, id, offset).map_err(Error::io(&idx_path))?;
                    summary.images += 1;
                    summary.bytes_read += bytes_read;
                }
                Packed::Skipped { kind, message } => {
                    reporter.warn(&message);
                    if summary.skipped_items.len() < SKIPS_LISTED {
                        let item = message.strip_prefix("skipped ").unwrap_or(&message);
                        summary.skipped_items.push(item.to_string());
                    }
                    summary.skipped += 1;
                    *summary.skip_reasons.entry(kind.to_string()).or_default() += 1;
                }
            }
            reporter.advance(1);
            Ok(())
        },
    )?;
    reporter.end();
    summary.bytes_written = rec.position();
    rec.flush().map_err(Error::io(&rec_path))?;
    // Old .idx out of the way first: a crash between the renames leaves a
    // .rec without .idx, never a new .rec with an old .idx.
    match std::fs::remove_file(&idx_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&idx_path)(e)),
        _ => {}
    }
    // (the old .rec is removed just before the new one is renamed in: see
    // output::put_in_place; a crash in between leaves none, and the .idx is
    // gone already)
    rec_file.persist().map_err(Error::io(&rec_path))?;
    idx_file.flush().map_err(Error::io(&idx_path))?;
    idx_file.persist().map_err(Error::io(&idx_path))?;
    summary.seconds = start.elapsed().as_secs_f64();
    Ok(summary)
}
