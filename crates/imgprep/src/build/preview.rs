//! A build's plan without the build: what would go where (per variant,
//! split and shard), read from the sources, nothing decoded or written.

use super::{
    build_catalog, check_collisions, check_names, check_outputs, make_plan, outdir, plan,
    read_sources, sources, Catalog, Plan,
};
use crate::error::Result;
use crate::recipe::LoadedRecipe;
use std::collections::BTreeMap;

/// The plan of a recipe, with the catalog it was made from.
pub struct Preview {
    pub catalog: Catalog,
    pub plan: Plan,
}

/// One planned item of one variant: a row of [`Preview::rows`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlannedItem {
    pub variant: String,
    pub split: String,
    /// Position in the split's output order.
    pub position: usize,
    /// The item's name (path relative to its source root).
    pub item: String,
    pub path: String,
    pub labels: Vec<String>,
    pub group: Option<String>,
    /// Where the item was declared (`file:line` or a folder).
    pub origin: String,
    /// Detection sources: the item's number of objects.
    pub objects: Option<usize>,
    /// Video sources: the frame number in its chunk.
    pub frame: Option<u32>,
}

/// Reads the sources and plans the splits, as a build would.
pub fn preview(r: &LoadedRecipe) -> Result<Preview> {
    preview_for(r, &[])
}

/// [`preview`], with the checks a build makes before it writes anything,
/// made on the plan alone (every planned item taken as written): for a
/// driver that hands the building to others (a Spark driver), so that
/// outputs in or around the inputs, names an output cannot hold and items
/// that would be written to one file are refused before any task runs.
/// `outs`: the local folders the work will write into.
pub fn preview_for(r: &LoadedRecipe, outs: &[&std::path::Path]) -> Result<Preview> {
    // (a preview has no thread setting: every core)
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sources = read_sources(r, threads)?;
    if !outs.is_empty() {
        let inputs = sources::all_inputs(r, &sources);
        for out in outs.iter().filter(|o| !crate::files::is_remote(o)) {
            outdir::check_overlap(out, &inputs)?;
        }
    }
    let catalog = build_catalog(r, sources, threads, &|| false)?;
    check_outputs(r, &catalog)?;
    let plan = make_plan(&r.recipe, &catalog)?;
    if !outs.is_empty() {
        let spec = r
            .recipe
            .transform
            .image_spec()
            .map_err(crate::Error::Usage)?;
        let planned = plan.needed();
        check_names(r, &catalog, &planned)?;
        check_collisions(r, &catalog, &plan, spec.as_ref(), &planned, None)?;
    }
    Ok(Preview { catalog, plan })
}

impl Preview {
    /// Items per variant and split.
    pub fn counts(&self) -> BTreeMap<String, BTreeMap<String, usize>> {
        self.plan
            .variants
            .iter()
            .map(|v| {
                let splits = v.splits.iter().map(|(s, i)| (s.clone(), i.len())).collect();
                (v.name.clone(), splits)
            })
            .collect()
    }

    /// Every planned item, variant by variant, split by split, in output order.
    pub fn rows(&self) -> Vec<PlannedItem> {
        let mut rows = Vec::new();
        for v in &self.plan.variants {
            for (split, idx) in &v.splits {
                for (position, &i) in idx.iter().enumerate() {
                    let item = &self.catalog.items[i];
                    rows.push(PlannedItem {
                        variant: v.name.clone(),
                        split: split.clone(),
                        position,
                        item: item.rel.clone(),
                        path: item.path.to_string_lossy().into_owned(),
                        labels: item.labels.clone(),
                        group: item.group.clone(),
                        origin: item.origin.to_string(),
                        objects: item.annotation.as_ref().map(|a| a.objects.len()),
                        frame: item.frame.map(|f| f.index),
                    });
                }
            }
        }
        rows
    }

    /// The items shard `i` of `n` builds (`build --shard I/N`): the same
    /// slice of every split of every variant.
    pub fn shard_counts(&self, i: usize, n: usize) -> BTreeMap<String, BTreeMap<String, usize>> {
        self.plan
            .variants
            .iter()
            .map(|v| {
                let splits = v
                    .splits
                    .iter()
                    .map(|(s, idx)| (s.clone(), plan::shard_range(idx.len(), i, n).len()))
                    .collect();
                (v.name.clone(), splits)
            })
            .collect()
    }
}
