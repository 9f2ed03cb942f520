//! Pascal VOC: `{variant}/voc/JPEGImages/`, `Annotations/{stem}.xml` and
//! `ImageSets/Main/{split}.txt` (`validation` is `val` there). VOC is flat:
//! an item in sub-folders is named with `_` for `/` (`train/a.jpg` ->
//! `train_a.jpg`; two items on one name are refused). Coordinates
//! are written as they are held (0-based continuous pixels, no 1-based
//! shift; the manifest says so), integers when they are whole numbers.

use super::{with_extension, Format, Sink};
use crate::build::write::Context;
use crate::error::Result;

pub(super) struct Voc;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// VOC keeps every image in one folder: sub-folders become `_`.
fn flat(out_rel: &str) -> String {
    out_rel.replace('/', "_")
}

fn num(v: f64) -> String {
    super::sagemaker::px(v).to_string()
}

impl Format for Voc {
    /// Flat: the output path with `_` for `/`, without its extension (the
    /// image in JPEGImages/ and its XML in Annotations/ share it).
    fn item_name(&self, out_rel: &str, _class: &str) -> Option<String> {
        Some(super::without_extension(&flat(out_rel)).to_string())
    }

    fn item_files(&self, _split: &str, out_rel: &str, _class: &str) -> Vec<String> {
        let file = flat(out_rel);
        vec![
            format!("JPEGImages/{file}"),
            format!("Annotations/{}", with_extension(&file, "xml")),
        ]
    }

    fn one_folder(&self) -> bool {
        true
    }

    fn name(&self) -> String {
        "voc".into()
    }

    fn files_per_item(&self) -> usize {
        2
    }

    fn class_id_base(&self) -> Option<u32> {
        None
    }

    fn write_split(
        &self,
        ctx: &Context,
        variant: &str,
        split: &str,
        items: &[usize],
        sink: &mut Sink,
    ) -> Result<()> {
        let dir = format!("{variant}/voc");
        let mut list = String::new();
        for &i in items {
            let item = &ctx.catalog.items[i];
            let out_rel = ctx.out_rel(item);
            let file = flat(&out_rel);
            let [image, annotation] = &self.item_files(split, &out_rel, "")[..] else {
                unreachable!("two files an item")
            };
            sink.image(ctx, i, &format!("{dir}/{image}"))?;
            let info = ctx.info(i);
            let depth = if info.channels == 0 { 3 } else { info.channels };
            let name = super::file_name(&file);
            let mut x = format!(
                "<annotation>\n  <folder>JPEGImages</folder>\n  <filename>{}</filename>\n  \
                 <size>\n    <width>{}</width>\n    <height>{}</height>\n    <depth>{depth}</depth>\n  \
                 </size>\n  <segmented>0</segmented>\n",
                esc(name),
                info.width,
                info.height
            );
            for o in ctx.objects(i) {
                let a = &o.attrs;
                let b = &o.bbox;
                x.push_str(&format!(
                    "  <object>\n    <name>{}</name>\n    <pose>{}</pose>\n    \
                     <truncated>{}</truncated>\n    <difficult>{}</difficult>\n    \
                     <occluded>{}</occluded>\n    <bndbox>\n      <xmin>{}</xmin>\n      \
                     <ymin>{}</ymin>\n      <xmax>{}</xmax>\n      <ymax>{}</ymax>\n    \
                     </bndbox>\n",
                    esc(&o.class),
                    esc(a.pose().unwrap_or("Unspecified")),
                    a.truncated as u8,
                    a.difficult as u8,
                    a.occluded as u8,
                    num(b.xmin),
                    num(b.ymin),
                    num(b.xmax),
                    num(b.ymax)
                ));
                // the person layout's parts, where the build moved them
                use crate::annotations::voc::{part_boxes, PART};
                for (k, v) in a.extra() {
                    let Some(name) = k.strip_prefix(PART) else {
                        continue;
                    };
                    for p in part_boxes(v) {
                        x.push_str(&format!(
                            "    <part>\n      <name>{}</name>\n      <bndbox>\n        \
                             <xmin>{}</xmin>\n        <ymin>{}</ymin>\n        \
                             <xmax>{}</xmax>\n        <ymax>{}</ymax>\n      </bndbox>\n    \
                             </part>\n",
                            esc(name),
                            num(p.xmin),
                            num(p.ymin),
                            num(p.xmax),
                            num(p.ymax)
                        ));
                    }
                }
                x.push_str("  </object>\n");
            }
            x.push_str("</annotation>\n");
            sink.put(ctx, format!("{dir}/{annotation}"), x.as_bytes())?;
            list.push_str(super::without_extension(&file));
            list.push('\n');
        }
        let key = if split == "validation" { "val" } else { split };
        let rel = format!("{dir}/ImageSets/Main/{key}.txt");
        sink.put(ctx, rel, list.as_bytes())?;
        Ok(())
    }
}
