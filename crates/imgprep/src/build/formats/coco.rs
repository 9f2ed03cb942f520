//! COCO instances JSON: `{variant}/coco/{split}/` images and
//! `{variant}/coco/annotations/{split}.json`. Category ids 1..N (COCO's
//! convention; the manifest says so), `bbox` = left, top, width, height in
//! pixels, `area` and `iscrowd` always present (pycocotools' evaluation
//! needs both). Images without boxes are kept (COCO allows them).

use super::{Format, Sink};
use crate::build::write::Context;
use crate::error::Result;
use serde_json::{json, Map, Value};
use std::io::Write;

pub(super) struct Coco;

/// Non-default attributes of an object, as a JSON object.
pub fn attributes(o: &crate::annotations::Object) -> Map<String, Value> {
    let a = &o.attrs;
    let mut m = Map::new();
    if a.difficult {
        m.insert("difficult".into(), json!(true));
    }
    if a.truncated {
        m.insert("truncated".into(), json!(true));
    }
    if a.occluded {
        m.insert("occluded".into(), json!(true));
    }
    if let Some(p) = a.pose() {
        m.insert("pose".into(), json!(p));
    }
    if a.from_polygon {
        m.insert("box_from_polygon".into(), json!(true));
    }
    for (k, v) in a.extra() {
        m.insert(k.clone(), json!(v));
    }
    m
}

impl Format for Coco {
    fn flags_crowd(&self) -> bool {
        true
    }

    fn item_name(&self, out_rel: &str, _class: &str) -> Option<String> {
        Some(out_rel.to_string())
    }

    fn item_files(&self, split: &str, out_rel: &str, _class: &str) -> Vec<String> {
        vec![format!("{split}/{out_rel}")]
    }

    fn name(&self) -> String {
        "coco".into()
    }

    fn files_per_item(&self) -> usize {
        1
    }

    fn class_id_base(&self) -> Option<u32> {
        Some(1)
    }

    fn write_split(
        &self,
        ctx: &Context,
        variant: &str,
        split: &str,
        items: &[usize],
        sink: &mut Sink,
    ) -> Result<()> {
        let dir = format!("{variant}/coco");
        let px = super::sagemaker::px;
        for &i in items {
            let out_rel = ctx.out_rel(&ctx.catalog.items[i]);
            let [image] = &self.item_files(split, &out_rel, "")[..] else {
                unreachable!("one file an item")
            };
            sink.image(ctx, i, &format!("{dir}/{image}"))?;
        }
        let categories: Vec<Value> = ctx
            .catalog
            .labels
            .entries
            .iter()
            .map(|e| json!({"id": e.id + 1, "name": e.name, "supercategory": ""}))
            .collect();
        let info = json!({"description": ctx.recipe.recipe.name, "version": "1.0"});
        // streamed to the file element by element, keys in sorted order as
        // serde_json writes objects: a large split is never held whole, as
        // text or as JSON values
        let write = |w: &mut dyn Write| -> std::io::Result<()> {
            w.write_all(b"{\"annotations\":[")?;
            let mut ann_id = 0u64;
            for &i in items {
                // the catalog position: one id for an image in every output
                let image_id = i as u64 + 1;
                for o in ctx.objects(i) {
                    let b = &o.bbox;
                    // the source's segment area (scaled with the image), or
                    // the box's
                    let area = o.attrs.area().unwrap_or(b.width() * b.height());
                    let mut a = Map::new();
                    ann_id += 1;
                    a.insert("id".into(), json!(ann_id));
                    a.insert("image_id".into(), json!(image_id));
                    a.insert("category_id".into(), json!(ctx.class_id(o) + 1));
                    a.insert(
                        "bbox".into(),
                        json!([px(b.xmin), px(b.ymin), px(b.width()), px(b.height())]),
                    );
                    a.insert("area".into(), px(area));
                    a.insert("iscrowd".into(), json!(o.attrs.iscrowd as u8));
                    let attrs = attributes(o);
                    if !attrs.is_empty() {
                        a.insert("attributes".into(), Value::Object(attrs));
                    }
                    if ann_id > 1 {
                        w.write_all(b",")?;
                    }
                    serde_json::to_writer(&mut *w, &Value::Object(a))?;
                }
            }
            write!(
                w,
                "],\"categories\":{},\"images\":[",
                Value::Array(categories)
            )?;
            for (k, &i) in items.iter().enumerate() {
                let info = ctx.info(i);
                if k > 0 {
                    w.write_all(b",")?;
                }
                let image = json!({
                    "id": i as u64 + 1,
                    "file_name": ctx.out_rel(&ctx.catalog.items[i]),
                    "width": info.width,
                    "height": info.height,
                });
                serde_json::to_writer(&mut *w, &image)?;
            }
            writeln!(w, "],\"info\":{info},\"licenses\":[]}}")
        };
        sink.put_streamed(ctx, format!("{dir}/annotations/{split}.json"), write)?;
        Ok(())
    }
}
