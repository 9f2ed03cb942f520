//! MXNet RecordIO: `{variant}/recordio/{split}.rec`, `.idx` and `.lst`.
//!
//! Classification records carry the class id (or, with `pack_label`, the
//! multi-hot vector). Detection records carry im2rec's packed detection
//! label: header width 2, object width 5, then per object `class xmin ymin
//! xmax ymax` with coordinates as fractions of the image (MXNet's
//! `ImageDetIter` / `ImageDetRecordIter` layout). An image without boxes
//! cannot be read by those iterators, so it is left out and counted.

use super::{Format, Sink};
use crate::build::reuse;
use crate::build::write::{create_parent, io_err, Context};
use crate::error::Result;
use crate::image::ImageFormat;
use crate::output::{AtomicFile, CopyFrom};
use recordio::{format_lst_line, write_idx_line, ImageRecord, Labels, LstEntry, RecordWriter};
use std::io::Write;

/// Header width (A) and values per object (B) of detection labels.
pub const DET_HEADER: usize = 2;
pub const DET_OBJECT: usize = 5;

pub(super) struct Classes {
    pub pack_label: bool,
}

pub(super) struct Detection;

impl Format for Classes {
    fn name(&self) -> String {
        "recordio".into()
    }

    fn stored_formats(&self) -> Option<(&'static [ImageFormat], &'static str)> {
        Some(super::MXNET_READS)
    }

    /// None: a few record files per split.
    fn files_per_item(&self) -> usize {
        0
    }

    fn write_split(
        &self,
        ctx: &Context,
        variant: &str,
        split: &str,
        items: &[usize],
        sink: &mut Sink,
    ) -> Result<()> {
        let packed = self.pack_label && ctx.catalog.multi_label;
        let base = format!("{variant}/recordio/{split}");
        write(ctx, &base, items, sink, |i| {
            let labels = ctx.labels(&ctx.catalog.items[i], self.pack_label);
            let header = if packed {
                Labels::Packed(labels.iter().map(|&l| l as f32).collect())
            } else {
                Labels::Scalar(labels[0] as f32)
            };
            (labels, header)
        })
    }
}

/// An item's detection label: `[2, 5, class, xmin, ymin, xmax, ymax, ...]`
/// with coordinates as fractions of the output image.
pub fn detection_label(ctx: &Context, i: usize) -> Vec<f64> {
    let info = ctx.info(i);
    let (w, h) = (info.width as f64, info.height as f64);
    let mut v = vec![DET_HEADER as f64, DET_OBJECT as f64];
    for o in ctx.objects(i) {
        v.extend([
            ctx.class_id(o) as f64,
            o.bbox.xmin / w,
            o.bbox.ymin / h,
            o.bbox.xmax / w,
            o.bbox.ymax / h,
        ]);
    }
    v
}

impl Format for Detection {
    fn name(&self) -> String {
        "recordio".into()
    }

    fn stored_formats(&self) -> Option<(&'static [ImageFormat], &'static str)> {
        Some(super::MXNET_READS)
    }

    /// None: a few record files per split.
    fn files_per_item(&self) -> usize {
        0
    }

    fn needs_boxes(&self) -> bool {
        true
    }

    fn write_split(
        &self,
        ctx: &Context,
        variant: &str,
        split: &str,
        items: &[usize],
        sink: &mut Sink,
    ) -> Result<()> {
        let base = format!("{variant}/recordio/{split}");
        write(ctx, &base, items, sink, |i| {
            let labels = detection_label(ctx, i);
            let header = Labels::Packed(labels.iter().map(|&l| l as f32).collect());
            (labels, header)
        })
    }
}

/// Writes `{base}.rec`, `.idx` and `.lst`; `label(i)` gives the `.lst`
/// labels and the record header's labels.
fn write(
    ctx: &Context,
    base: &str,
    items: &[usize],
    sink: &mut Sink,
    label: impl Fn(usize) -> (Vec<f64>, Labels),
) -> Result<()> {
    let (rec_rel, idx_rel, lst_rel) = (
        format!("{base}.rec"),
        format!("{base}.idx"),
        format!("{base}.lst"),
    );
    let (rec_p, idx_p, lst_p) = (
        ctx.path(&rec_rel)?,
        ctx.path(&idx_rel)?,
        ctx.path(&lst_rel)?,
    );
    create_parent(&rec_p)?;
    let mut rec_f = AtomicFile::create(&rec_p).map_err(io_err(&rec_p))?;
    let mut idx_f = AtomicFile::create(&idx_p).map_err(io_err(&idx_p))?;
    let mut lst_f = AtomicFile::create(&lst_p).map_err(io_err(&lst_p))?;
    let mut rec = RecordWriter::new(&mut rec_f);
    // records the previous build made from the same header and item bytes
    // are copied from its file, not made again (see `reuse`)
    let table_path = ctx.record_table(&rec_rel);
    let previous = table_path
        .as_ref()
        .and_then(|t| reuse::Previous::open(t, |name| ctx.previous_file(name)));
    let mut copier = previous.as_ref().map(reuse::Copier::new);
    let mut table = reuse::Table::default();
    let mut payload = Vec::new();
    for (k, &i) in items.iter().enumerate() {
        let item = &ctx.catalog.items[i];
        let (labels, header_labels) = label(i);
        let header = ImageRecord {
            labels: header_labels,
            id: i as u64,
            id2: 0,
        };
        payload.clear();
        header.write_header(&mut payload);
        let key = reuse::key("recordio", &payload, ctx.bytes_key(i));
        let found = previous.as_ref().and_then(|p| p.find(&key));
        let off = rec.position() + copier.as_ref().map_or(0, |c| c.pending());
        match (found, copier.as_mut()) {
            (Some(found), Some(c)) => {
                c.add(found, &mut |f, off, len| {
                    rec.write_framed_with(len, |w| w.copy_from(f, off, len))
                        .map(drop)
                })
                .map_err(io_err(&rec_p))?;
                table.push(key, 0, off, found.2);
                ctx.reused
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            (_, c) => {
                if let Some(c) = c {
                    c.flush(&mut |f, off, len| {
                        rec.write_framed_with(len, |w| w.copy_from(f, off, len))
                            .map(drop)
                    })
                    .map_err(io_err(&rec_p))?;
                }
                payload.extend_from_slice(&ctx.bytes(i)?);
                rec.write_record(&payload).map_err(io_err(&rec_p))?;
                table.push(key, 0, off, rec.position() - off);
            }
        }
        write_idx_line(&mut idx_f, i as u64, off).map_err(io_err(&idx_p))?;
        lst_f
            .write_all(
                format_lst_line(&LstEntry {
                    index: i as u64,
                    labels,
                    path: item.rel.clone(),
                })
                .as_bytes(),
            )
            .map_err(io_err(&lst_p))?;
        sink.places.push((i, format!("{rec_rel}#{k}").into()));
    }
    if let Some(c) = copier.as_mut() {
        c.flush(&mut |f, off, len| {
            rec.write_framed_with(len, |w| w.copy_from(f, off, len))
                .map(drop)
        })
        .map_err(io_err(&rec_p))?;
    }
    rec.flush().map_err(io_err(&rec_p))?;
    drop(previous);
    let sums = rec_f.commit().map_err(io_err(&rec_p))?;
    if let Some(t) = &table_path {
        table.save(t, &[(rec_rel.clone(), rec_p.clone())]);
    }
    sink.records.insert(rec_rel.clone(), items.len() as u64);
    sink.file(rec_rel, sums);
    sink.file(idx_rel, idx_f.commit().map_err(io_err(&idx_p))?);
    sink.file(lst_rel, lst_f.commit().map_err(io_err(&lst_p))?);
    Ok(())
}
