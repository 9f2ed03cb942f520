//! An ultralytics YOLO tree: `{variant}/yolo/images/{split}/`,
//! `labels/{split}/{stem}.txt` with `class cx cy w h` (fractions of the
//! image, class ids 0..N-1) and `data.yaml` naming the splits and classes.
//! An image without boxes gets an empty label file (a background image, said
//! explicitly rather than by a missing file).

use super::{with_extension, Format, Sink};
use crate::build::write::Context;
use crate::error::Result;
use std::collections::BTreeMap;

pub(super) struct Yolo;

/// A fraction with 9 decimals, trailing zeros trimmed (`0.5`, `0.123456789`).
pub fn frac(v: f64) -> String {
    let s = format!("{v:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

/// Where ultralytics looks for an image's labels: the last `images`
/// folder of its path replaced by `labels`, the extension by `.txt` (so an
/// item whose own path holds an `images` folder still gets found).
pub fn label_path(image: &str) -> String {
    let mut parts: Vec<&str> = image.split('/').collect();
    if let Some(k) = parts[..parts.len() - 1]
        .iter()
        .rposition(|p| *p == "images")
    {
        parts[k] = "labels";
    }
    with_extension(&parts.join("/"), "txt")
}

/// An item's path under `images/{split}/`: its output path, less a YOLO
/// tree's own `images/` and split folder (`images/train/a.jpg` is `a.jpg`,
/// not `images/train/images/train/a.jpg`, which only ultralytics finds).
fn file_in_split(out_rel: &str) -> &str {
    let Some(rest) = out_rel.strip_prefix("images/") else {
        return out_rel;
    };
    match rest.split_once('/') {
        Some(("train" | "val" | "valid" | "validation" | "test", file)) => file,
        _ => rest,
    }
}

/// The folder and data.yaml key of a split (`validation` is `val` there).
fn key(split: &str) -> &str {
    match split {
        "validation" => "val",
        s => s,
    }
}

impl Format for Yolo {
    /// The output path without its extension: the image and its label file
    /// share it.
    fn item_name(&self, out_rel: &str, _class: &str) -> Option<String> {
        Some(super::without_extension(file_in_split(out_rel)).to_string())
    }

    fn item_files(&self, split: &str, out_rel: &str, _class: &str) -> Vec<String> {
        let image = format!("images/{split}/{}", file_in_split(out_rel));
        let labels = label_path(&image);
        vec![image, labels]
    }

    fn name(&self) -> String {
        "yolo".into()
    }

    fn files_per_item(&self) -> usize {
        2
    }

    fn write_split(
        &self,
        ctx: &Context,
        variant: &str,
        split: &str,
        items: &[usize],
        sink: &mut Sink,
    ) -> Result<()> {
        let dir = format!("{variant}/yolo");
        for &i in items {
            let item = &ctx.catalog.items[i];
            let [image, labels] = &self.item_files(split, &ctx.out_rel(item), "")[..] else {
                unreachable!("two files an item")
            };
            sink.image(ctx, i, &format!("{dir}/{image}"))?;
            let info = ctx.info(i);
            let (w, h) = (info.width as f64, info.height as f64);
            let mut text = String::new();
            for o in ctx.objects(i) {
                let b = &o.bbox;
                text.push_str(&format!(
                    "{} {} {} {} {}\n",
                    ctx.class_id(o),
                    frac((b.xmin + b.xmax) / 2.0 / w),
                    frac((b.ymin + b.ymax) / 2.0 / h),
                    frac(b.width() / w),
                    frac(b.height() / h),
                ));
            }
            sink.put(ctx, format!("{dir}/{labels}"), text.as_bytes())?;
        }
        Ok(())
    }

    fn finish_variant(
        &self,
        ctx: &Context,
        variant: &str,
        splits: &BTreeMap<String, Vec<usize>>,
        sink: &mut Sink,
    ) -> Result<()> {
        // strings as JSON, which YAML reads as double-quoted scalars
        let q = |s: &str| serde_json::to_string(s).expect("a string");
        let mut y =
            String::from("# written by imgprep; paths are relative to this file's folder\n");
        for split in splits.keys() {
            y.push_str(&format!(
                "{}: {}\n",
                key(split),
                q(&format!("images/{split}"))
            ));
        }
        y.push_str(&format!("nc: {}\nnames:\n", ctx.catalog.labels.len()));
        for e in &ctx.catalog.labels.entries {
            y.push_str(&format!("  {}: {}\n", e.id, q(&e.name)));
        }
        let rel = format!("{variant}/yolo/data.yaml");
        sink.put(ctx, rel, y.as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_where_ultralytics_looks() {
        assert_eq!(label_path("images/train/a.jpg"), "labels/train/a.txt");
        assert_eq!(
            label_path("images/train/images/val/a.jpg"),
            "images/train/labels/val/a.txt"
        );
        assert_eq!(file_in_split("images/train/a.jpg"), "a.jpg");
        assert_eq!(file_in_split("images/val/x/a.jpg"), "x/a.jpg");
        assert_eq!(file_in_split("images/a.jpg"), "a.jpg");
        assert_eq!(file_in_split("class_0/a.jpg"), "class_0/a.jpg");
        assert_eq!(frac(0.5), "0.5");
        assert_eq!(frac(1.0 / 3.0), "0.333333333");
        assert_eq!(frac(0.0), "0");
    }
}
