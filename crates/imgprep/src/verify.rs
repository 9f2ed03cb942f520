//! `verify PREFIX`: re-check a packed dataset end to end.

use crate::error::{Error, Result};
use crate::execute::ordered_map;
use crate::im2rec::LstReader;
use crate::image::{ColorMode, ImageSpec, Processor};
use crate::report::Reporter;
use recordio::{parse_idx, ImageRecord, RecordReader};
use std::collections::HashMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// How many problems are kept word for word (all are counted).
const MAX_LISTED: usize = 50;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyReport {
    pub rec: PathBuf,
    pub records: u64,
    pub images_ok: u64,
    pub idx_entries: Option<u64>,
    pub lst_entries: Option<u64>,
    pub problems: u64,
    pub first_problems: Vec<String>,
    pub ok: bool,
}

impl VerifyReport {
    fn problem(&mut self, p: String) {
        self.problems += 1;
        if self.first_problems.len() < MAX_LISTED {
            self.first_problems.push(p);
        }
    }
}

/// PREFIX may be given with or without `.rec`.
pub fn prefix_paths(prefix: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let s = prefix.to_string_lossy();
    let base = s.strip_suffix(".rec").unwrap_or(&s).to_string();
    (
        PathBuf::from(format!("{base}.rec")),
        PathBuf::from(format!("{base}.idx")),
        PathBuf::from(format!("{base}.lst")),
    )
}

/// Checks framing, that every image decodes, that every `.idx` offset points
/// at the record with that id, and that records match the `.lst` (ids, labels,
/// counts). `.idx` and `.lst` are checked when present.
pub fn verify_rec(prefix: &Path, threads: usize, reporter: &dyn Reporter) -> Result<VerifyReport> {
    let (rec, idx, lst) = prefix_paths(prefix);
    verify_rec_files(rec, idx, lst, threads, reporter)
}

/// [`verify_rec`] with the three files named one by one (a pushed dataset's
/// SageMaker channels keep the `.idx` and `.lst` apart from the `.rec`).
pub fn verify_rec_files(
    rec: PathBuf,
    idx: PathBuf,
    lst: PathBuf,
    threads: usize,
    reporter: &dyn Reporter,
) -> Result<VerifyReport> {
    let (file, size) = crate::files::open_sized(&rec).map_err(Error::io(&rec))?;
    let mut report = VerifyReport {
        rec: rec.clone(),
        ..Default::default()
    };
    let mut reader = RecordReader::new(BufReader::with_capacity(1 << 20, file));
    // Offsets and header ids, in file order.
    let mut seen: Vec<(u64, u64, Vec<f32>)> = Vec::new();
    let mut framing_error = None;
    let records = std::iter::from_fn(|| {
        let mut buf = Vec::new();
        match reader.read_record(&mut buf) {
            Ok(Some(off)) => Some((off, buf)),
            Ok(None) => None,
            Err(e) => {
                framing_error = Some(e.to_string());
                None
            }
        }
    });
    let spec = ImageSpec {
        color: ColorMode::Unchanged,
        ..Default::default()
    };
    reporter.begin("verify", Some(size));
    // (offset, length, the header's id and labels when it parses, the
    // record's problem): a record whose image does not decode still has
    // its place and id for the `.idx` and `.lst` checks
    type Checked = (u64, u64, Option<(u64, Vec<f32>)>, Option<String>);
    let check = |p: &mut Processor, (off, buf): (u64, Vec<u8>)| -> Checked {
        let len = buf.len() as u64;
        match ImageRecord::parse(&buf) {
            Ok((h, img)) => {
                let labels = h.labels.as_slice().to_vec();
                let problem = if let Some(l) = labels.iter().find(|l| !l.is_finite()) {
                    Some(format!(
                        "record at byte {off} (id {}): label {l} is not a finite number",
                        h.id
                    ))
                } else {
                    p.decode(img, &spec).err().map(|e| {
                        format!(
                            "record at byte {off} (id {}): image does not decode: {e}",
                            h.id
                        )
                    })
                };
                (off, len, Some((h.id, labels)), problem)
            }
            Err(e) => (off, len, None, Some(format!("record at byte {off}: {e}"))),
        }
    };
    let init = || Processor::new().expect("libjpeg-turbo initialises");
    ordered_map(
        records,
        threads,
        threads * 8,
        init,
        check,
        |(off, len, header, problem): Checked| {
            report.records += 1;
            match problem {
                Some(p) => report.problem(p),
                None => report.images_ok += 1,
            }
            if let Some((id, labels)) = header {
                seen.push((off, id, labels));
            }
            reporter.advance(len + 8);
            Ok::<(), ()>(())
        },
    )
    .ok();
    reporter.end();
    if let Some(e) = framing_error {
        report.problem(format!("{}: framing: {e}", rec.display()));
    }

    let by_offset: HashMap<u64, u64> = seen.iter().map(|(o, id, _)| (*o, *id)).collect();
    // one record per id: a reader that looks records up by id (the `.idx`)
    // reaches only one of two
    let mut ids = std::collections::HashSet::with_capacity(seen.len());
    for (off, id, _) in &seen {
        if !ids.insert(*id) {
            report.problem(format!(
                "{}: record at byte {off} has id {id}, as an earlier record has",
                rec.display()
            ));
        }
    }
    drop(ids);
    if crate::files::is_file(&idx) {
        let text = crate::files::read_to_string(&idx).map_err(Error::io(&idx))?;
        match parse_idx(&text) {
            Ok(entries) => {
                report.idx_entries = Some(entries.len() as u64);
                let mut keys = std::collections::HashSet::with_capacity(entries.len());
                for e in &entries {
                    if !keys.insert(e.key) {
                        report.problem(format!(
                            "{}: key {} is listed more than once",
                            idx.display(),
                            e.key
                        ));
                    }
                    match by_offset.get(&e.offset) {
                        Some(&id) if id == e.key => {}
                        Some(&id) => report.problem(format!(
                            "{}: key {} points at byte {} where the record has id {id}",
                            idx.display(),
                            e.key,
                            e.offset
                        )),
                        None => report.problem(format!(
                            "{}: key {} points at byte {}, where no record starts",
                            idx.display(),
                            e.key,
                            e.offset
                        )),
                    }
                }
                if entries.len() as u64 != report.records {
                    report.problem(format!(
                        "{} has {} entries for {} records",
                        idx.display(),
                        entries.len(),
                        report.records
                    ));
                }
            }
            Err(e) => report.problem(format!("{}:{}: {}", idx.display(), e.line, e.message)),
        }
    }
    if crate::files::is_file(&lst) {
        let mut r = LstReader::open(&lst)?;
        let mut wanted: HashMap<u64, Vec<f64>> = HashMap::new();
        // (index, line, path) in list order, to name the lines without a record
        let mut lines: Vec<(u64, usize, String)> = Vec::new();
        let mut n = 0u64;
        while let Some((line, e)) = r.next_entry()? {
            n += 1;
            lines.push((e.index, line, e.path.clone()));
            if wanted.insert(e.index, e.labels).is_some() {
                report.problem(format!(
                    "{}:{line}: index {} is listed more than once",
                    lst.display(),
                    e.index
                ));
            }
        }
        report.lst_entries = Some(n);
        if n != report.records {
            let have: std::collections::HashSet<u64> = seen.iter().map(|(_, id, _)| *id).collect();
            let missing: Vec<&(u64, usize, String)> = lines
                .iter()
                .filter(|(id, _, _)| !have.contains(id))
                .collect();
            let mut text = format!(
                "{} has {n} entries but {} has {} records",
                lst.display(),
                rec.display(),
                report.records
            );
            if !missing.is_empty() {
                let shown: Vec<String> = missing
                    .iter()
                    .take(5)
                    .map(|(id, line, path)| format!("line {line} (index {id}, {path})"))
                    .collect();
                text.push_str(&format!(
                    "; {} lines have no record (images skipped when packing, if im2rec said \
                     so): {}{}",
                    missing.len(),
                    shown.join(", "),
                    if missing.len() > 5 { ", ..." } else { "" }
                ));
            }
            report.problem(text);
        }
        for (_, id, labels) in &seen {
            match wanted.get(id) {
                None => report.problem(format!("record id {id} is not in {}", lst.display())),
                Some(want) => {
                    let ok = if labels.len() == 1 {
                        want.first().map(|&w| w as f32) == Some(labels[0])
                    } else {
                        // (the .lst holds 6 decimals, the record the float)
                        labels.len() == want.len()
                            && want
                                .iter()
                                .zip(labels)
                                .all(|(&w, &l)| (w - l as f64).abs() <= 1e-6)
                    };
                    if !ok {
                        report.problem(format!(
                            "record id {id}: labels {labels:?} differ from {}'s {want:?}",
                            lst.display()
                        ));
                    }
                }
            }
        }
    }
    report.ok = report.problems == 0;
    Ok(report)
}

/// What [`verify_path`] checked, by the kind of thing it was given.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(untagged)]
pub enum Verified {
    /// A TFRecord file: CRCs, Examples, every image.
    TfRecord {
        file: PathBuf,
        records: u64,
        problems: Vec<String>,
        ok: bool,
    },
    /// A build output: everything its manifest claims.
    Dataset(crate::build::OutReport),
    /// A `.rec` (or its PREFIX) with its `.idx` and `.lst`.
    Rec(VerifyReport),
}

impl Verified {
    pub fn ok(&self) -> bool {
        match self {
            Verified::TfRecord { ok, .. } => *ok,
            Verified::Dataset(r) => r.ok,
            Verified::Rec(r) => r.ok,
        }
    }
}

/// `imgprep verify`: a build output folder (with its `manifest.json`), a
/// TFRecord file, or a `.rec` / PREFIX. `bytes_reporter` counts bytes (the
/// `.rec` walk), `reporter` files.
pub fn verify_path(
    path: &Path,
    threads: usize,
    reporter: &dyn Reporter,
    bytes_reporter: &dyn Reporter,
) -> Result<Verified> {
    // a build that stopped half-way (or is writing now): a problem found,
    // reported as any other (callers read `ok`, not an error)
    if path.is_dir() && !path.join(crate::build::MANIFEST).is_file() {
        if let Some(why) = crate::build::outdir::unfinished(path) {
            return Ok(Verified::Dataset(crate::build::OutReport {
                out: path.to_path_buf(),
                files_checked: 0,
                records_checked: 0,
                problems: vec![why],
                ok: false,
            }));
        }
    }
    crate::inspect::check_input(path, crate::inspect::Wanted::Dataset)?;
    if crate::tfcheck::is_tfrecord(path) {
        let (records, problems) = crate::tfcheck::verify_tfrecord(path)?;
        return Ok(Verified::TfRecord {
            file: path.to_path_buf(),
            records,
            ok: problems.is_empty(),
            problems,
        });
    }
    let manifest = crate::files::join(path, Path::new(crate::build::MANIFEST));
    let dataset = if crate::files::is_remote(path) {
        // one look at the manifest, whose failure (no access, no answer) is
        // said as such; with neither it nor PATH.rec there, both are named
        match crate::files::fingerprint(&manifest) {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let s = path.to_string_lossy();
                let rec = format!("{}.rec", s.trim_end_matches('/').trim_end_matches(".rec"));
                if crate::files::fingerprint(Path::new(&rec))
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
                {
                    return Err(Error::Usage(format!(
                        "{}: nothing to verify there: no {} (a build output) and no {rec} (a .rec \
                         or im2rec PREFIX)",
                        s.trim_end_matches('/'),
                        manifest.display()
                    )));
                }
                false
            }
            Err(e) => return Err(Error::io(&manifest)(e)),
        }
    } else {
        crate::files::is_file(&manifest)
    };
    if dataset {
        return Ok(Verified::Dataset(crate::build::verify_out(
            path, threads, reporter,
        )?));
    }
    Ok(Verified::Rec(verify_rec(path, threads, bytes_reporter)?))
}
