//! The catalog: every item checked (file exists, labels known, no duplicate)
//! and the label map (class name <-> id, human names).

use super::sources::{Item, Sources};
use crate::error::{Error, Result};
use crate::recipe::{LoadedRecipe, OnError};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LabelEntry {
    pub id: usize,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub human: Option<String>,
}

/// Class names in id order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelMap {
    pub entries: Vec<LabelEntry>,
    index: HashMap<String, usize>,
}

impl LabelMap {
    /// Explicit names keep their order; otherwise names are sorted (numerically
    /// when all are non-negative integers, so `.lst` labels keep their ids).
    pub fn new(mut names: Vec<String>, explicit: bool, human: &HashMap<String, String>) -> Self {
        if !explicit {
            names.sort();
            names.dedup();
            if names.iter().all(|n| n.parse::<u64>().is_ok()) {
                names.sort_by_key(|n| n.parse::<u64>().unwrap());
            }
        }
        let entries: Vec<LabelEntry> = names
            .into_iter()
            .enumerate()
            .map(|(id, name)| LabelEntry {
                id,
                human: human.get(&name).cloned(),
                name,
            })
            .collect();
        let index = entries.iter().map(|e| (e.name.clone(), e.id)).collect();
        LabelMap { entries, index }
    }

    pub fn id(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// An item that was left out, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Skip {
    pub item: String,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct Catalog {
    /// Sorted by `rel`; the position is the item's id in every output.
    pub items: Vec<Item>,
    pub labels: LabelMap,
    pub skipped: Vec<Skip>,
}

impl Catalog {
    /// Label ids of an item (empty for unlabelled items).
    pub fn label_ids(&self, item: &Item) -> Vec<usize> {
        item.labels
            .iter()
            .filter_map(|l| self.labels.id(l))
            .collect()
    }
}

pub fn build_catalog(r: &LoadedRecipe, sources: Sources) -> Result<Catalog> {
    let Sources {
        items,
        human,
        declared,
    } = sources;
    let mut human = human;
    if let Some(path) = &r.recipe.labels.human_names {
        let path = r.resolve(path);
        let text = crate::files::read_to_string(&path).map_err(Error::io(&path))?;
        for line in text.lines() {
            if let Some((k, v)) = line.split_once('\t') {
                human.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
    }
    let (names, explicit) = match &r.recipe.labels.names {
        Some(n) => (n.clone(), true),
        None if !declared.is_empty() => (declared, false),
        None => (
            items
                .iter()
                .flat_map(|i| i.labels.iter().cloned())
                .collect(),
            false,
        ),
    };
    let closed = r.recipe.labels.names.is_some()
        || r.recipe
            .sources
            .iter()
            .any(|s| matches!(s, crate::recipe::SourceSpec::Metadata { .. }));
    let labels = LabelMap::new(names, explicit, &human);
    let mut skipped = Vec::new();
    let mut problem = |item: &Item, reason: String| -> Result<()> {
        match r.recipe.on_error {
            OnError::Fail => Err(Error::Problem(format!(
                "{}: {} ({reason})",
                item.origin, item.rel
            ))),
            OnError::Skip => {
                skipped.push(Skip {
                    item: item.rel.clone(),
                    reason,
                });
                Ok(())
            }
        }
    };
    let mut by_rel: BTreeMap<String, Item> = BTreeMap::new();
    for item in items {
        if let Some(bad) = item
            .labels
            .iter()
            .find(|l| closed && labels.id(l).is_none())
        {
            problem(&item, format!("label {bad:?} is not in the label map"))?;
            continue;
        }
        if !item.path.is_file() && crate::files::fingerprint(&item.path).is_err() {
            problem(&item, format!("{} does not exist", item.path.display()))?;
            continue;
        }
        if let Some(first) = by_rel.get(&item.rel) {
            let first_origin = first.origin.clone();
            problem(
                &item,
                format!("duplicate item, first declared at {first_origin}"),
            )?;
            continue;
        }
        by_rel.insert(item.rel.clone(), item);
    }
    Ok(Catalog {
        items: by_rel.into_values().collect(),
        labels,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_maps_sort_names_or_numbers() {
        let h = HashMap::new();
        let m = LabelMap::new(vec!["dog".into(), "cat".into(), "dog".into()], false, &h);
        assert_eq!(m.id("cat"), Some(0));
        assert_eq!(m.id("dog"), Some(1));
        let m = LabelMap::new(vec!["10".into(), "2".into(), "0".into()], false, &h);
        assert_eq!(
            (m.id("0"), m.id("2"), m.id("10")),
            (Some(0), Some(1), Some(2))
        );
        let m = LabelMap::new(vec!["z".into(), "a".into()], true, &h);
        assert_eq!(m.id("z"), Some(0));
    }
}
