//! SageMaker's image channels.
//!
//! Classification (`sagemaker-image`): `{split}/` images and
//! `{split}_lst/{split}.lst`. Detection (`sagemaker-detection`): `{split}/`
//! images and `{split}_annotation/` with one JSON per image (`file`,
//! `image_size`, `annotations` as left/top/width/height in pixels,
//! `categories`); class ids 0..N-1. Images without boxes are left out (the
//! algorithm cannot train on them) and counted.

use super::{with_extension, Format, Sink};
use crate::build::write::Context;
use crate::error::Result;
use crate::image::ImageFormat;
use recordio::{format_lst_line, LstEntry};
use serde_json::{json, Value};

pub(super) struct ImageClasses;
pub(super) struct Detection;

impl Format for ImageClasses {
    fn name(&self) -> String {
        "sagemaker-image".into()
    }

    fn folder(&self) -> String {
        "sagemaker".into()
    }

    fn stored_formats(&self) -> Option<(&'static [ImageFormat], &'static str)> {
        Some(super::SAGEMAKER_READS)
    }

    fn files_per_item(&self) -> usize {
        1
    }

    /// The item's output path, as it is.
    fn item_name(&self, out_rel: &str, _class: &str) -> Option<String> {
        Some(out_rel.to_string())
    }

    fn item_files(&self, split: &str, out_rel: &str, _class: &str) -> Vec<String> {
        vec![format!("{split}/{out_rel}")]
    }

    fn write_split(
        &self,
        ctx: &Context,
        variant: &str,
        split: &str,
        items: &[usize],
        sink: &mut Sink,
    ) -> Result<()> {
        let dir = format!("{variant}/{}", self.folder());
        let mut lst = String::new();
        for &i in items {
            let item = &ctx.catalog.items[i];
            let path = ctx.out_rel(item);
            let [image] = &self.item_files(split, &path, "")[..] else {
                unreachable!("one file an item")
            };
            sink.image(ctx, i, &format!("{dir}/{image}"))?;
            lst.push_str(&format_lst_line(&LstEntry {
                index: i as u64,
                labels: ctx.labels(item, true),
                path,
            }));
        }
        let rel = format!("{dir}/{split}_lst/{split}.lst");
        sink.put(ctx, rel, lst.as_bytes())?;
        Ok(())
    }
}

/// A pixel value as JSON, to a millionth of a pixel (so `xmax - xmin` of
/// `53.4` and `12.2` is `41.2`, not `41.199999999999996`): an integer when
/// it is one (`12`, not `12.0`).
pub fn px(v: f64) -> Value {
    let r = (v * 1e6).round() / 1e6;
    if r.fract() == 0.0 && r.abs() < 1e15 {
        json!(r as i64)
    } else {
        json!(r)
    }
}

/// `categories` of SageMaker's JSON: every class with its 0-based id.
pub fn categories(ctx: &Context) -> Value {
    Value::Array(
        ctx.catalog
            .labels
            .entries
            .iter()
            .map(|e| json!({"class_id": e.id, "name": e.name}))
            .collect(),
    )
}

/// `image_size` and `annotations` of item `i`, as SageMaker's JSON and the
/// augmented manifest write them.
pub fn boxes_json(ctx: &Context, i: usize) -> (Value, Value) {
    let info = ctx.info(i);
    let size = json!([{"width": info.width, "height": info.height, "depth": depth(info.channels)}]);
    let anns: Vec<Value> = ctx
        .objects(i)
        .iter()
        .map(|o| {
            json!({
                "class_id": ctx.class_id(o),
                "left": px(o.bbox.xmin),
                "top": px(o.bbox.ymin),
                "width": px(o.bbox.width()),
                "height": px(o.bbox.height()),
            })
        })
        .collect();
    (size, Value::Array(anns))
}

/// Channels as a reader decodes the image (0: the header did not say: 3).
fn depth(channels: u8) -> u8 {
    match channels {
        0 => 3,
        c => c,
    }
}

impl Format for Detection {
    fn name(&self) -> String {
        "sagemaker-detection".into()
    }

    fn stored_formats(&self) -> Option<(&'static [ImageFormat], &'static str)> {
        Some(super::SAGEMAKER_READS)
    }

    fn files_per_item(&self) -> usize {
        2
    }

    /// The output path without its extension: the image and its annotation JSON
    /// share it.
    fn item_name(&self, out_rel: &str, _class: &str) -> Option<String> {
        Some(super::without_extension(out_rel).to_string())
    }

    fn item_files(&self, split: &str, out_rel: &str, _class: &str) -> Vec<String> {
        vec![
            format!("{split}/{out_rel}"),
            format!("{split}_annotation/{}", with_extension(out_rel, "json")),
        ]
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
        let dir = format!("{variant}/sagemaker-detection");
        let cats = categories(ctx);
        for &i in items {
            let item = &ctx.catalog.items[i];
            let file = ctx.out_rel(item);
            let [image, annotation] = &self.item_files(split, &file, "")[..] else {
                unreachable!("two files an item")
            };
            sink.image(ctx, i, &format!("{dir}/{image}"))?;
            let (size, anns) = boxes_json(ctx, i);
            let doc = json!({
                "file": file,
                "image_size": size,
                "annotations": anns,
                "categories": cats,
            });
            let text = serde_json::to_string(&doc).expect("JSON of plain values") + "\n";
            sink.put(ctx, format!("{dir}/{annotation}"), text.as_bytes())?;
        }
        Ok(())
    }
}
