//! TFRecord output: `tf.train.Example` records, sharded deterministically,
//! optionally GZIP/ZLIB-compressed, under `{variant}/tfrecord-{preset}/`.
//!
//! Presets: `tfds` (encoded image + TFDS keys), `raw` (decoded pixels), and
//! for detection `object-detection`: the TF Object Detection API's keys
//! (`image/object/bbox/{xmin,ymin,xmax,ymax}` as fractions of the image,
//! `image/object/class/label` 1..N with `label_map.pbtxt`, class text,
//! difficult, truncated, view, is_crowd, area).

use super::{Format, Sink};
use crate::build::reuse;
use crate::build::write::Context;
use crate::build::Prepared;
use crate::error::{Error, Result};
use crate::execute::ordered_map_batched;
use crate::image::{ColorMode, ImageFormat, ImageSpec, Processor};
use crate::output::{AtomicFile, CopyFrom};
use crate::recipe::{TfCompression, TfPreset};
use std::collections::BTreeMap;
use std::io::Write;
use tfrecord::{encode_example, Example, Feature, RecordWriter};

pub(in crate::build) struct TfOptions<'a> {
    pub preset: TfPreset,
    /// `image/filename` in `raw` records too.
    pub filename: bool,
    pub rename: &'a BTreeMap<String, String>,
    pub compression: TfCompression,
    pub shard_records: Option<usize>,
    pub shard_bytes: u64,
}

/// Splits `sizes` into consecutive shards: by count, or greedily up to a byte
/// target (a shard holds at least one record). Deterministic.
pub fn shard_bounds(
    sizes: &[u64],
    per_shard: Option<usize>,
    target: u64,
) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    if let Some(n) = per_shard.filter(|&n| n > 0) {
        let mut lo = 0;
        while lo < sizes.len() {
            out.push(lo..(lo + n).min(sizes.len()));
            lo += n;
        }
    } else {
        let (mut lo, mut acc) = (0, 0u64);
        for (i, &s) in sizes.iter().enumerate() {
            if i > lo && acc + s > target {
                out.push(lo..i);
                lo = i;
                acc = 0;
            }
            acc += s;
        }
        if lo < sizes.len() {
            out.push(lo..sizes.len());
        }
    }
    if out.is_empty() {
        out.push(0..0);
    }
    out
}

/// The `tfrecord` output of one `[[outputs]]` entry.
pub(super) struct Tfrecord<'a> {
    o: TfOptions<'a>,
}

impl<'a> Tfrecord<'a> {
    pub fn new(spec: &'a crate::recipe::OutputSpec) -> Self {
        let crate::recipe::OutputSpec::Tfrecord {
            preset,
            rename,
            compression,
            shard_records,
            shard_mib,
            filename,
        } = spec
        else {
            unreachable!("a tfrecord output")
        };
        Tfrecord {
            o: TfOptions {
                preset: *preset,
                filename: *filename,
                rename,
                compression: *compression,
                shard_records: *shard_records,
                shard_bytes: shard_mib.saturating_mul(1 << 20),
            },
        }
    }
}

/// The folder name of a preset's output.
pub fn preset_name(p: TfPreset) -> &'static str {
    match p {
        TfPreset::Tfds => "tfds",
        TfPreset::Raw => "raw",
        TfPreset::ObjectDetection => "object-detection",
    }
}

impl Format for Tfrecord<'_> {
    fn name(&self) -> String {
        format!("tfrecord-{}", preset_name(self.o.preset))
    }

    /// None: a few record files per split.
    fn files_per_item(&self) -> usize {
        0
    }

    fn stored_formats(&self) -> Option<(&'static [ImageFormat], &'static str)> {
        match self.o.preset {
            TfPreset::Raw => None,
            // tf.io.decode_image gives GIF and WebP as a stack of frames
            // (4-D), an animated WebP crashes TensorFlow 2.21's decoder, and
            // TIFF is not read at all
            TfPreset::Tfds => Some((
                &[ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::Bmp],
                "TensorFlow's tf.io.decode_image as image pipelines use it (it reads JPEG, PNG and \
                 BMP as one image; GIF and WebP as a stack of frames, TIFF not at all)",
            )),
            TfPreset::ObjectDetection => Some((
                &[ImageFormat::Jpeg, ImageFormat::Png],
                "the TF Object Detection API (its image/format is JPEG or PNG)",
            )),
        }
    }

    fn decodes_sources(&self) -> bool {
        self.o.preset == TfPreset::Raw
    }

    fn class_id_base(&self) -> Option<u32> {
        // the Object Detection API keeps 0 for the background
        Some(u32::from(self.o.preset == TfPreset::ObjectDetection))
    }

    fn flags_crowd(&self) -> bool {
        // `image/object/is_crowd`
        self.o.preset == TfPreset::ObjectDetection
    }

    fn write_split(
        &self,
        ctx: &Context,
        variant: &str,
        split: &str,
        items: &[usize],
        sink: &mut Sink,
    ) -> Result<()> {
        let dir = format!("{variant}/{}", self.name());
        let mut k = 0;
        for (rel, sums, n) in write_split(ctx, &dir, split, items, &self.o, sink.threads)? {
            for r in 0..n as usize {
                sink.places.push((items[k], format!("{rel}#{r}").into()));
                k += 1;
            }
            sink.records.insert(rel.clone(), n);
            sink.file(rel, sums);
        }
        Ok(())
    }

    fn finish_variant(
        &self,
        ctx: &Context,
        variant: &str,
        _splits: &BTreeMap<String, Vec<usize>>,
        sink: &mut Sink,
    ) -> Result<()> {
        if self.o.preset != TfPreset::ObjectDetection {
            return Ok(());
        }
        let rel = format!("{variant}/{}/label_map.pbtxt", self.name());
        let text = label_map_pbtxt(&ctx.catalog.labels);
        sink.put(ctx, rel, text.as_bytes())?;
        Ok(())
    }
}

/// The TF Object Detection API's label map: ids 1..N (0 is background).
pub fn label_map_pbtxt(labels: &crate::build::LabelMap) -> String {
    let mut t = String::new();
    for e in &labels.entries {
        let name = e.name.replace('\\', "\\\\").replace('\'', "\\'");
        t.push_str(&format!(
            "item {{\n  id: {}\n  name: '{name}'\n}}\n",
            e.id + 1
        ));
    }
    t
}

/// Where an example's image features come from (see [`features`]).
enum Image {
    /// `image/encoded` from the item's bytes, and `image/key/sha256` of
    /// them unless the source's own sum is already in the example.
    Encoded { sha_known: bool },
    /// `image_raw`, `height`, `width`, `channel`: the source decoded with
    /// these settings.
    Raw(ImageSpec),
}

/// The record table key of an example (see `reuse`): its features that do
/// not come from the item's bytes, the bytes named by their identity (for
/// `raw` with the decode settings), and the renames the recipe asks for.
fn record_key(ctx: &Context, i: usize, o: &TfOptions, ex: &Example, image: &Image) -> reuse::Key {
    let mut named = ctx.bytes_key(i).to_string();
    if let Image::Raw(spec) = image {
        named.push_str(&format!("\0{spec:?}"));
    }
    named.push_str(&format!("\0{:?}", o.rename));
    let mut meta = Vec::new();
    encode_example(ex, &mut meta);
    reuse::key(
        &format!("tfrecord-{}", preset_name(o.preset)),
        &meta,
        &named,
    )
}

/// The encoded example: `ex` (from [`features`]) with its image features
/// added from the item, and the recipe's renames applied.
fn with_image(
    ctx: &Context,
    p: &mut Processor,
    i: usize,
    o: &TfOptions,
    mut ex: Example,
    image: Image,
) -> Result<Vec<u8>> {
    let int = |v: i64| Feature::Int64(vec![v]);
    match image {
        Image::Encoded { sha_known } => {
            let bytes = ctx.bytes(i)?;
            if !sha_known {
                let sha = crate::checksum::sha256_hex(&bytes).into_bytes();
                ex.insert("image/key/sha256".into(), Feature::Bytes(vec![sha]));
            }
            ex.insert("image/encoded".into(), Feature::Bytes(vec![bytes]));
        }
        Image::Raw(spec) => {
            let item = &ctx.catalog.items[i];
            let source = ctx.source_bytes(i)?;
            let px = p
                .decode(&source, &spec)
                .and_then(|d| p.transform(d, &spec))
                .map_err(|e| Error::Problem(format!("{}: {e}", item.path.display())))?;
            ex.insert("height".into(), int(px.height as i64));
            ex.insert("width".into(), int(px.width as i64));
            ex.insert("channel".into(), int(px.channels as i64));
            ex.insert("image_raw".into(), Feature::Bytes(vec![px.data]));
        }
    }
    for (from, to) in o.rename {
        if let Some(f) = ex.remove(from) {
            ex.insert(to.clone(), f);
        }
    }
    let mut out = Vec::new();
    encode_example(&ex, &mut out);
    Ok(out)
}

/// The features of item `i`'s example that do not come from its bytes (by
/// their own names, before renames), and where the others come from.
fn features(ctx: &Context, i: usize, o: &TfOptions) -> Result<(Example, Image)> {
    let item = &ctx.catalog.items[i];
    let Some(Prepared::Ok(info, ..)) = ctx.prepared.get(&i) else {
        return Err(Error::Usage(format!("{}: not prepared", item.rel)));
    };
    let ids = ctx.catalog.label_ids(item);
    let first = ids.first().map(|&i| i as i64).unwrap_or(-1);
    let mut ex = Example::new();
    let int = |v: i64| Feature::Int64(vec![v]);
    // pass-through stores the source itself, whose sum is known
    let known_sha = match (ctx.spec, ctx.source_sha(i)) {
        (None, Some(sha)) => Some(crate::checksum::hex(sha).into_bytes()),
        _ => None,
    };
    let encoded = Image::Encoded {
        sha_known: known_sha.is_some(),
    };
    if let (Some(sha), TfPreset::Tfds | TfPreset::ObjectDetection) = (known_sha, o.preset) {
        ex.insert("image/key/sha256".into(), Feature::Bytes(vec![sha]));
    }
    let image = match o.preset {
        TfPreset::Tfds => {
            ex.insert(
                "image/format".into(),
                Feature::Bytes(vec![info.format.name().as_bytes().to_vec()]),
            );
            ex.insert("image/height".into(), int(info.height as i64));
            ex.insert("image/width".into(), int(info.width as i64));
            ex.insert("image/channels".into(), int(info.channels as i64));
            ex.insert(
                "image/class/label".into(),
                Feature::Int64(if ids.is_empty() {
                    vec![-1]
                } else {
                    ids.iter().map(|&i| i as i64).collect()
                }),
            );
            ex.insert(
                "image/class/text".into(),
                Feature::Bytes(item.labels.iter().map(|l| l.as_bytes().to_vec()).collect()),
            );
            ex.insert(
                "image/filename".into(),
                Feature::Bytes(vec![item.rel.as_bytes().to_vec()]),
            );
            encoded
        }
        TfPreset::ObjectDetection => {
            let (w, h) = (info.width as f64, info.height as f64);
            let objs = ctx.objects(i);
            let floats = |f: &dyn Fn(&crate::annotations::Object) -> f64| {
                Feature::Float(objs.iter().map(|o| f(o) as f32).collect())
            };
            let ints = |f: &dyn Fn(&crate::annotations::Object) -> i64| {
                Feature::Int64(objs.iter().map(f).collect())
            };
            let bytes_of = |v: &str| v.as_bytes().to_vec();
            ex.insert(
                "image/format".into(),
                Feature::Bytes(vec![info.format.name().as_bytes().to_vec()]),
            );
            ex.insert("image/height".into(), int(info.height as i64));
            ex.insert("image/width".into(), int(info.width as i64));
            ex.insert(
                "image/filename".into(),
                Feature::Bytes(vec![bytes_of(&item.rel)]),
            );
            ex.insert(
                "image/source_id".into(),
                Feature::Bytes(vec![bytes_of(&item.rel)]),
            );
            ex.insert(
                "image/object/bbox/xmin".into(),
                floats(&|o| o.bbox.xmin / w),
            );
            ex.insert(
                "image/object/bbox/xmax".into(),
                floats(&|o| o.bbox.xmax / w),
            );
            ex.insert(
                "image/object/bbox/ymin".into(),
                floats(&|o| o.bbox.ymin / h),
            );
            ex.insert(
                "image/object/bbox/ymax".into(),
                floats(&|o| o.bbox.ymax / h),
            );
            ex.insert(
                "image/object/class/label".into(),
                ints(&|o| ctx.class_id(o) as i64 + 1),
            );
            ex.insert(
                "image/object/class/text".into(),
                Feature::Bytes(objs.iter().map(|o| bytes_of(&o.class)).collect()),
            );
            ex.insert(
                "image/object/difficult".into(),
                ints(&|o| o.attrs.difficult as i64),
            );
            ex.insert(
                "image/object/truncated".into(),
                ints(&|o| o.attrs.truncated as i64),
            );
            ex.insert(
                "image/object/is_crowd".into(),
                ints(&|o| o.attrs.iscrowd as i64),
            );
            ex.insert(
                "image/object/view".into(),
                Feature::Bytes(
                    objs.iter()
                        .map(|o| bytes_of(o.attrs.pose().unwrap_or("")))
                        .collect(),
                ),
            );
            ex.insert(
                "image/object/area".into(),
                floats(&|o| o.attrs.area().unwrap_or(o.bbox.width() * o.bbox.height())),
            );
            encoded
        }
        TfPreset::Raw => {
            // The source's own decoded pixels after the declared transforms
            // (EXIF orientation, crop, resize, colour mode), never pixels
            // that went through the encoded image other outputs store: no
            // hidden JPEG round trip. Without a resize or crop they are the
            // source's pixels exactly.
            let base = ctx.spec.cloned().unwrap_or_default();
            let mut spec = ImageSpec {
                color: ctx.spec.map(|s| s.color).unwrap_or(ColorMode::Color),
                max_pixels: ctx.recipe.recipe.transform.max_pixels,
                ..base
            };
            if item.frame.is_some() {
                // a video frame's source is its stored image, already cropped
                // and scaled by the decoder (exact with encoding = "png")
                spec.resize = crate::image::Resize::None;
                spec.center_crop = false;
            }
            ex.insert("label".into(), int(first));
            let mut one_hot = vec![0u8; ctx.catalog.labels.len()];
            for &id in &ids {
                one_hot[id] = 1;
            }
            ex.insert("label_one_hot".into(), Feature::Bytes(vec![one_hot]));
            if o.filename {
                ex.insert(
                    "image/filename".into(),
                    Feature::Bytes(vec![item.rel.as_bytes().to_vec()]),
                );
            }
            Image::Raw(spec)
        }
    };
    Ok((ex, image))
}

/// Writes one split's shards; returns (relative path, sums, record count) per shard.
fn write_split(
    ctx: &Context,
    dir: &str,
    split: &str,
    items: &[usize],
    o: &TfOptions,
    threads: usize,
) -> Result<Vec<(String, crate::checksum::FileSums, u64)>> {
    let sizes: Vec<u64> = items
        .iter()
        .map(|&i| match (o.preset, ctx.prepared.get(&i)) {
            (TfPreset::Raw, Some(Prepared::Ok(info, ..))) => {
                info.width as u64 * info.height as u64 * 3 + 256
            }
            _ => ctx.stored_len(i) + 256,
        })
        .collect();
    let bounds = shard_bounds(&sizes, o.shard_records, o.shard_bytes);
    let n = bounds.len();
    let ext = match o.compression {
        TfCompression::None => "tfrecord",
        TfCompression::Gzip => "tfrecord.gz",
        TfCompression::Zlib => "tfrecord.zz",
    };
    // records the previous build made from the same features and item
    // bytes are copied from its shards, not made again (see `reuse`); a
    // compressed stream has no record offsets to copy from
    let table_path = match o.compression {
        TfCompression::None => ctx.record_table(&format!("{dir}/{split}")),
        _ => None,
    };
    let previous = table_path
        .as_ref()
        .and_then(|t| reuse::Previous::open(t, |name| ctx.previous_file(name)));
    let mut table = reuse::Table::default();
    let mut written = Vec::new();
    let mut placed = Vec::new();
    for (k, range) in bounds.into_iter().enumerate() {
        let rel = format!("{dir}/{split}-{k:05}-of-{n:05}.{ext}");
        let path = ctx.path(&rel)?;
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).map_err(Error::io(d))?;
        }
        let file = AtomicFile::create(&path).map_err(Error::io(&path))?;
        let sink = match o.compression {
            TfCompression::None => Compressed::Plain(file),
            TfCompression::Gzip => Compressed::Gzip(
                flate2::GzBuilder::new()
                    .mtime(0)
                    .write(file, flate2::Compression::default()),
            ),
            TfCompression::Zlib => Compressed::Zlib(flate2::write::ZlibEncoder::new(
                file,
                flate2::Compression::default(),
            )),
        };
        let mut w = RecordWriter::new(sink);
        let mut copier = previous.as_ref().map(reuse::Copier::new);
        let mut count = 0u64;
        let init = || Processor::new().expect("libjpeg-turbo initialises");
        let keyed = table_path.is_some();
        let work = |p: &mut Processor, i: usize| -> Result<Made> {
            let (ex, image) = features(ctx, i, o)?;
            let key = keyed.then(|| record_key(ctx, i, o, &ex, &image));
            let found = key.zip(previous.as_ref()).and_then(|(k, p)| p.find(&k));
            match (key, found) {
                (Some(key), Some(found)) => Ok(Made::Copy(key, found)),
                _ => Ok(Made::New(key, with_image(ctx, p, i, o, ex, image)?)),
            }
        };
        // Batches of about 4 MiB of records at most (a record of decoded
        // pixels can be large), at most ITEM_BATCH items.
        let avg = sizes[range.clone()].iter().sum::<u64>() / range.len().max(1) as u64;
        let batch = ((4 << 20) / avg.max(1)).clamp(1, crate::build::ITEM_BATCH as u64) as usize;
        let io = Error::io(&path);
        ordered_map_batched(
            items[range].iter().copied(),
            batch,
            threads,
            threads * 2 * batch,
            init,
            work,
            |made| -> Result<()> {
                match (made?, copier.as_mut()) {
                    (Made::Copy(key, found), Some(c)) => {
                        let off = w.position() + c.pending();
                        c.add(found, &mut |f, off, len| {
                            w.write_framed_with(len, |w| w.copy_from(f, off, len))
                                .map(drop)
                        })
                        .map_err(Error::io(&path))?;
                        table.push(key, k as u32, off, found.2);
                        ctx.reused
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    (Made::Copy(..), None) => unreachable!("copies only from a previous file"),
                    (Made::New(key, ex), c) => {
                        if let Some(c) = c {
                            c.flush(&mut |f, off, len| {
                                w.write_framed_with(len, |w| w.copy_from(f, off, len))
                                    .map(drop)
                            })
                            .map_err(Error::io(&path))?;
                        }
                        let off = w.write_record(&ex).map_err(Error::io(&path))?;
                        if let Some(key) = key {
                            table.push(key, k as u32, off, w.position() - off);
                        }
                    }
                }
                count += 1;
                Ok(())
            },
        )?;
        if let Some(c) = copier.as_mut() {
            c.flush(&mut |f, off, len| {
                w.write_framed_with(len, |w| w.copy_from(f, off, len))
                    .map(drop)
            })
            .map_err(Error::io(&path))?;
        }
        let sums = w
            .into_inner()
            .finish()
            .and_then(AtomicFile::commit)
            .map_err(io)?;
        placed.push((rel.clone(), path));
        written.push((rel, sums, count));
    }
    drop(previous);
    if let Some(t) = &table_path {
        table.save(t, &placed);
    }
    Ok(written)
}

/// An example made, or found in a previous build's shard; with its record
/// table key when the build keeps a table.
enum Made {
    New(Option<reuse::Key>, Vec<u8>),
    Copy(reuse::Key, (u32, u64, u64)),
}

/// The file, plain or behind a compressor.
enum Compressed {
    Plain(AtomicFile),
    Gzip(flate2::write::GzEncoder<AtomicFile>),
    Zlib(flate2::write::ZlibEncoder<AtomicFile>),
}

impl Compressed {
    /// Ends the compressed stream and hands back the file to commit.
    fn finish(self) -> std::io::Result<AtomicFile> {
        match self {
            Compressed::Plain(f) => Ok(f),
            Compressed::Gzip(g) => g.finish(),
            Compressed::Zlib(z) => z.finish(),
        }
    }
}

impl CopyFrom for Compressed {
    fn copy_from(&mut self, src: &std::fs::File, off: u64, len: u64) -> std::io::Result<()> {
        match self {
            Compressed::Plain(f) => f.copy_from(src, off, len),
            other => crate::output::copy_through(other, src, off, len),
        }
    }
}

impl Write for Compressed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Compressed::Plain(f) => f.write(buf),
            Compressed::Gzip(g) => g.write(buf),
            Compressed::Zlib(z) => z.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Compressed::Plain(f) => f.flush(),
            Compressed::Gzip(g) => g.flush(),
            Compressed::Zlib(z) => z.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::shard_bounds;

    #[test]
    fn shards_by_count_and_by_size() {
        assert_eq!(shard_bounds(&[1; 5], Some(2), 0), vec![0..2, 2..4, 4..5]);
        assert_eq!(
            shard_bounds(&[4, 4, 4, 10, 1], None, 8),
            vec![0..2, 2..3, 3..4, 4..5]
        );
        assert_eq!(shard_bounds(&[], None, 8), vec![0..0]);
    }
}
