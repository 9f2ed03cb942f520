//! SageMaker augmented manifest for Pipe mode: `{variant}/augmented-manifest/
//! {split}/` images and `{split}.manifest`, one JSON line per image with
//! `source-ref`, the box attribute (`image_size`, `annotations` as in the
//! image-mode JSON) and its `-metadata` with the `class-map`.
//!
//! `source-ref` must be the image's final S3 URI: with `push_to =
//! "s3://bucket/prefix"` it is that prefix + the image's path in the output
//! folder (where `imgprep push` puts it, and push refuses any other
//! destination for such a dataset); without it, the path relative to the
//! manifest's folder.

use super::{Format, Sink};
use crate::build::write::Context;
use crate::error::Result;
use crate::image::ImageFormat;
use serde_json::{json, Map, Value};

pub(super) struct AugmentedManifest {
    pub attribute: String,
    pub push_to: Option<String>,
}

/// The folder name under a variant (also what `push` looks for).
pub const DIR: &str = "augmented-manifest";

impl Format for AugmentedManifest {
    fn item_name(&self, out_rel: &str, _class: &str) -> Option<String> {
        Some(out_rel.to_string())
    }

    fn item_files(&self, split: &str, out_rel: &str, _class: &str) -> Vec<String> {
        vec![format!("{split}/{out_rel}")]
    }

    fn name(&self) -> String {
        DIR.into()
    }

    fn stored_formats(&self) -> Option<(&'static [ImageFormat], &'static str)> {
        Some(super::SAGEMAKER_READS)
    }

    fn files_per_item(&self) -> usize {
        1
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
        let dir = format!("{variant}/{DIR}");
        let class_map: Map<String, Value> = ctx
            .catalog
            .labels
            .entries
            .iter()
            .map(|e| (e.id.to_string(), json!(e.name)))
            .collect();
        let mut lines = String::new();
        for &i in items {
            let item = &ctx.catalog.items[i];
            let [file] = &self.item_files(split, &ctx.out_rel(item), "")[..] else {
                unreachable!("one file an item")
            };
            let rel = format!("{dir}/{file}");
            sink.image(ctx, i, &rel)?;
            let (size, anns) = super::sagemaker::boxes_json(ctx, i);
            let n = ctx.objects(i).len();
            let mut line = Map::new();
            let source_ref = match &self.push_to {
                Some(p) => format!("{}/{rel}", p.trim_end_matches('/')),
                None => file.clone(),
            };
            line.insert("source-ref".into(), json!(source_ref));
            line.insert(
                self.attribute.clone(),
                json!({"image_size": size, "annotations": anns}),
            );
            line.insert(
                format!("{}-metadata", self.attribute),
                json!({
                    "objects": vec![json!({"confidence": 1}); n],
                    "class-map": class_map,
                    "type": "groundtruth/object-detection",
                    "human-annotated": "yes",
                }),
            );
            lines.push_str(&serde_json::to_string(&Value::Object(line)).expect("plain JSON"));
            lines.push('\n');
        }
        let rel = format!("{dir}/{split}.manifest");
        sink.put(ctx, rel, lines.as_bytes())?;
        Ok(())
    }
}
