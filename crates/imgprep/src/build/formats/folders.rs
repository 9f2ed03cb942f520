//! A class-folder tree per split: `{variant}/folders/{split}/{class}/{file}`
//! (hard links to the sources when possible, else copies).

use super::{file_name, Format, Sink};
use crate::build::write::Context;
use crate::error::Result;

pub(super) struct Folders;

impl Format for Folders {
    fn name(&self) -> String {
        "folders".into()
    }

    fn files_per_item(&self) -> usize {
        1
    }

    /// `{class}/{file name}`: only the file name is kept.
    fn item_name(&self, out_rel: &str, class: &str) -> Option<String> {
        Some(format!("{class}/{}", file_name(out_rel)))
    }

    fn item_files(&self, split: &str, out_rel: &str, class: &str) -> Vec<String> {
        vec![format!("{split}/{class}/{}", file_name(out_rel))]
    }

    fn write_split(
        &self,
        ctx: &Context,
        variant: &str,
        split: &str,
        items: &[usize],
        sink: &mut Sink,
    ) -> Result<()> {
        // (class names were checked before writing began, and two items on
        // one path are refused by ctx.path)
        for &i in items {
            let item = &ctx.catalog.items[i];
            let class = item
                .labels
                .first()
                .map(String::as_str)
                .unwrap_or("unlabelled");
            let [image] = &self.item_files(split, &ctx.out_rel(item), class)[..] else {
                unreachable!("one file an item")
            };
            sink.image(ctx, i, &format!("{variant}/{}/{image}", self.folder()))?;
        }
        Ok(())
    }
}
