//! The plan: which item goes to which split of which variant, in which order.
//! Deterministic from the seed; independent of thread count and machine.

use super::catalog::{Catalog, Skip};
use crate::error::{Error, Result};
use crate::recipe::{Recipe, SplitMethod};
use crate::rng::Rng;
use std::collections::BTreeMap;

pub const TRAIN: &str = "train";
pub const VALIDATION: &str = "validation";
pub const TEST: &str = "test";

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedVariant {
    pub name: String,
    /// Split name -> catalog indices in output order.
    pub splits: BTreeMap<String, Vec<usize>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub method: SplitMethod,
    pub variants: Vec<PlannedVariant>,
    pub skipped: Vec<Skip>,
    /// Per split: the ratio asked for (none for `source` and `explicit`)
    /// and the share of items it got.
    pub ratios: BTreeMap<String, SplitRatio>,
    /// Under `auto`, items that kept the split their source gave them while
    /// the others were divided by the ratios (see `keep_source_splits`):
    /// how many per split. Empty otherwise.
    pub kept: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SplitRatio {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested: Option<f64>,
    pub achieved: f64,
}

/// How far (in share of items) a split may drift from its ratio before the
/// build warns.
pub const DRIFT_WARNING: f64 = 0.05;

impl Plan {
    /// Every catalog index used by any variant, sorted.
    pub fn needed(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .variants
            .iter()
            .flat_map(|pv| pv.splits.values().flatten().copied())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Class key used for stratification and per-class sampling.
fn class_key(c: &Catalog, i: usize) -> String {
    c.items[i].labels.first().cloned().unwrap_or_default()
}

/// `round(n * r)` counts for validation and test; train gets the rest.
fn counts(n: usize, validation: f64, test: f64) -> (usize, usize) {
    let v = ((n as f64) * validation).round() as usize;
    let t = (((n as f64) * test).round() as usize).min(n - v.min(n));
    (v.min(n), t)
}

/// Group splits need a group for every item: the point of them is that no
/// group is in two splits, and an item without one would be split alone.
fn check_groups(c: &Catalog, members: &[usize], method: SplitMethod) -> Result<()> {
    let missing: Vec<&super::sources::Item> = members
        .iter()
        .map(|&i| &c.items[i])
        .filter(|i| i.group.is_none())
        .collect();
    if missing.is_empty() || members.is_empty() {
        return Ok(());
    }
    let how = if c.detection {
        "set `group = \"PATTERN\"` on the source: a regular expression over the image's path \
         whose first group names e.g. the road segment or video whose images must stay in one split"
    } else {
        "set `group = \"COLUMN\"` on a csv source (the column naming e.g. the driver or \
         patient whose images must stay in one split; folders, lst and metadata sources have no \
         groups: list the images in a CSV index with a group column)"
    };
    let name = format!("{:?}", method).to_lowercase();
    if missing.len() == members.len() {
        return Err(Error::Usage(format!(
            "split.method = \"{name}\" needs a group for each item, but no item has one: {how}"
        )));
    }
    Err(Error::Usage(format!(
        "split.method = \"{name}\": {} of {} items have no group (first: {} from {}); \
         give every row a group, or {how}",
        missing.len(),
        members.len(),
        missing[0].rel,
        missing[0].origin
    )))
}

/// The splits with a ratio above 0, in the order ties go (train,
/// validation, test), and the sum of their ratios (the shares are ratio /
/// sum): what the balancing splits (groups by items, detection by objects)
/// aim at.
fn weighted_splits(s: &crate::recipe::SplitSpec) -> (Vec<(&'static str, f64)>, f64) {
    let splits: Vec<(&str, f64)> = [(TRAIN, s.train), (VALIDATION, s.validation), (TEST, s.test)]
        .into_iter()
        .filter(|(_, w)| *w > 0.0)
        .collect();
    let sum = splits.iter().map(|(_, w)| w).sum::<f64>().max(1e-12);
    (splits, sum)
}

/// Split name -> catalog indices.
type Splits = BTreeMap<String, Vec<usize>>;

/// Splits the catalog items `members` (in catalog order) by `method`;
/// the order within each split is made by the caller.
fn assign_split(
    r: &Recipe,
    c: &Catalog,
    method: SplitMethod,
    members: &[usize],
    skipped: &mut Vec<Skip>,
) -> BTreeMap<String, Vec<usize>> {
    let mut out: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let s = &r.split;
    if c.detection && matches!(method, SplitMethod::Stratified | SplitMethod::Group) {
        out = balance_objects(r, c, members, method == SplitMethod::Group);
    } else {
        match method {
            SplitMethod::Source => {
                for &i in members {
                    let item = &c.items[i];
                    match &item.split {
                        Some(sp) => out.entry(sp.clone()).or_default().push(i),
                        None => skipped.push(Skip {
                            origin: Some(item.origin.to_string()),
                            item: item.rel.clone(),
                            reason: "its source gives it no split".into(),
                        }),
                    }
                }
            }
            SplitMethod::Stratified | SplitMethod::Auto => {
                let mut by_class: BTreeMap<String, Vec<usize>> = BTreeMap::new();
                for &i in members {
                    by_class.entry(class_key(c, i)).or_default().push(i);
                }
                for (class, mut idx) in by_class {
                    Rng::new(r.seed, &format!("split/{class}")).shuffle(&mut idx);
                    let (nv, nt) = counts(idx.len(), s.validation, s.test);
                    out.entry(VALIDATION.into()).or_default().extend(&idx[..nv]);
                    out.entry(TEST.into())
                        .or_default()
                        .extend(&idx[nv..nv + nt]);
                    out.entry(TRAIN.into()).or_default().extend(&idx[nv + nt..]);
                }
            }
            SplitMethod::Group | SplitMethod::Explicit => {
                // (check_groups made sure every item has one)
                let group_of = |i: usize| c.items[i].group.clone().unwrap_or_default();
                let mut groups: Vec<String> = members.iter().map(|&i| group_of(i)).collect();
                groups.sort();
                groups.dedup();
                let mut split_of: BTreeMap<String, String> = BTreeMap::new();
                if method == SplitMethod::Group {
                    let mut size: BTreeMap<&str, usize> = BTreeMap::new();
                    for &i in members {
                        *size
                            .entry(c.items[i].group.as_deref().unwrap_or(""))
                            .or_default() += 1;
                    }
                    Rng::new(r.seed, "groups").shuffle(&mut groups);
                    // largest groups first (ties in the seeded order), each to
                    // the split furthest below its share of the items, so the
                    // ratios hold in items, not only in groups
                    groups.sort_by_key(|g| std::cmp::Reverse(size[g.as_str()]));
                    let (splits, sum) = weighted_splits(s);
                    let total = members.len() as f64;
                    let mut have = vec![0usize; splits.len()];
                    for g in &groups {
                        let best = (0..splits.len())
                            .max_by(|&a, &b| {
                                let want = |k: usize| splits[k].1 / sum * total - have[k] as f64;
                                want(a).total_cmp(&want(b)).then(b.cmp(&a))
                            })
                            .unwrap_or(0);
                        have[best] += size[g.as_str()];
                        split_of.insert(g.clone(), splits[best].0.into());
                    }
                } else {
                    for (sp, gs) in &s.assign {
                        for g in gs {
                            split_of.insert(g.clone(), sp.clone());
                        }
                    }
                }
                for &i in members {
                    let g = group_of(i);
                    match split_of.get(&g) {
                        Some(sp) => out.entry(sp.clone()).or_default().push(i),
                        None => skipped.push(Skip {
                            origin: Some(c.items[i].origin.to_string()),
                            item: c.items[i].rel.clone(),
                            reason: format!("group {g:?} is not assigned to a split"),
                        }),
                    }
                }
            }
        }
    }
    out.retain(|_, v| !v.is_empty());
    out
}

/// The split each group's items get from their sources (with the first
/// such item); refuses a group whose items' sources put it in two splits,
/// whatever the method: a group (a driver, a patient) in two splits leaks
/// it from train into evaluation.
fn source_group_splits(c: &Catalog) -> Result<BTreeMap<&str, (&str, usize)>> {
    let mut group_split: BTreeMap<&str, (&str, usize)> = BTreeMap::new();
    for (i, item) in c.items.iter().enumerate() {
        let (Some(sp), Some(g)) = (&item.split, &item.group) else {
            continue;
        };
        match group_split.get(g.as_str()) {
            Some((other, j)) if *other != sp.as_str() => {
                return Err(Error::Usage(format!(
                    "group {g:?} is in two splits by its sources: {} ({}) in {other}, {} ({}) \
                     in {sp}; a group must stay in one split",
                    c.items[*j].rel, c.items[*j].origin, item.rel, item.origin
                )))
            }
            Some(_) => {}
            None => {
                group_split.insert(g, (sp, i));
            }
        }
    }
    Ok(group_split)
}

/// Under `auto`, when only some items get a split from their source (VOC's
/// ImageSets test.txt beside trainval.txt, a source with `split = "test"`
/// beside one without): those keep it, so that e.g. test images never go
/// to train, and only the others are divided by the ratios. An item whose
/// group has kept items goes where they are. Returns the kept items by
/// split and the items left to divide.
fn keep_source_splits(c: &Catalog) -> Result<(Splits, Vec<usize>)> {
    let mut kept: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, item) in c.items.iter().enumerate() {
        if let Some(sp) = &item.split {
            kept.entry(sp.clone()).or_default().push(i);
        }
    }
    let group_split = source_group_splits(c)?;
    let mut pool = Vec::new();
    for (i, item) in c.items.iter().enumerate() {
        if item.split.is_some() {
            continue;
        }
        match item.group.as_deref().and_then(|g| group_split.get(g)) {
            Some((sp, _)) => kept.get_mut(*sp).expect("kept above").push(i),
            None => pool.push(i),
        }
    }
    Ok((kept, pool))
}

/// The objects of the catalog items `idx`, counted per class.
fn objects_of(c: &Catalog, idx: &[usize]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for &i in idx {
        for o in c.items[i].annotation.iter().flat_map(|a| &a.objects) {
            *m.entry(o.class.to_string()).or_default() += 1;
        }
    }
    m
}

/// Iterative stratification (Sechidis et al., 2011) of `units` (an image,
/// or every image of a group) into parts of the given `share`s (summing to
/// 1): take the class with the fewest objects still to place; each unit
/// holding it goes to the part that still wants the most of that class
/// (then the most images; ties: the part listed first). Units in `rng`'s
/// order. Returns each part's items in the order placed, and the units
/// without objects, left to the caller.
fn stratify_objects(
    c: &Catalog,
    units: impl IntoIterator<Item = Vec<usize>>,
    share: &[f64],
    mut rng: Rng,
) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
    let mut total: BTreeMap<String, u64> = BTreeMap::new();
    let mut with: Vec<(Vec<usize>, BTreeMap<String, u64>)> = Vec::new();
    let mut background: Vec<Vec<usize>> = Vec::new();
    for idx in units {
        let m = objects_of(c, &idx);
        if m.is_empty() {
            background.push(idx);
            continue;
        }
        for (k, v) in &m {
            *total.entry(k.clone()).or_default() += v;
        }
        with.push((idx, m));
    }
    rng.shuffle(&mut with);
    let images: usize = with.iter().map(|(idx, _)| idx.len()).sum();
    let mut want: Vec<BTreeMap<String, f64>> = share
        .iter()
        .map(|&s| {
            total
                .iter()
                .map(|(c, &t)| (c.clone(), s * t as f64))
                .collect()
        })
        .collect();
    let mut want_images: Vec<f64> = share.iter().map(|&s| s * images as f64).collect();
    let mut left: BTreeMap<String, u64> = total.clone();
    let mut placed = vec![false; with.len()];
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); share.len()];
    while let Some(class) = left
        .iter()
        .filter(|(_, &n)| n > 0)
        .min_by_key(|(c, &n)| (n, (*c).clone()))
        .map(|(c, _)| c.clone())
    {
        for u in 0..with.len() {
            if placed[u] || !with[u].1.contains_key(&class) {
                continue;
            }
            let best = (0..share.len())
                .max_by(|&a, &b| {
                    let key = |k: usize| (want[k][&class], want_images[k]);
                    let (ka, kb) = (key(a), key(b));
                    ka.0.total_cmp(&kb.0)
                        .then(ka.1.total_cmp(&kb.1))
                        .then(b.cmp(&a))
                })
                .unwrap_or(0);
            placed[u] = true;
            let (idx, m) = &with[u];
            for (c, &n) in m {
                *want[best].get_mut(c).unwrap() -= n as f64;
                *left.get_mut(c).unwrap() -= n;
            }
            want_images[best] -= idx.len() as f64;
            out[best].extend(idx);
        }
    }
    (out, background)
}

/// A detection variant's share of one split: by `fraction`, the images that
/// keep that share of each class's objects (iterative stratification), and
/// that share of the images without objects; by `count`, images taken in a
/// seeded order for each class, rarest first, until that many images hold
/// it (or the split has no more), and that many images without objects.
fn sample_objects(
    c: &Catalog,
    idx: &[usize],
    fraction: Option<f64>,
    count: Option<usize>,
    seed: u64,
    scope: &str,
) -> std::collections::HashSet<usize> {
    let mut keep = std::collections::HashSet::new();
    let mut background: Vec<usize> = Vec::new();
    let n_background = |n: usize| match (fraction, count) {
        (Some(f), _) => ((n as f64) * f).round() as usize,
        (_, Some(k)) => k.min(n),
        _ => n,
    };
    if let Some(f) = fraction {
        let (placed, bg) = stratify_objects(
            c,
            idx.iter().map(|&i| vec![i]),
            &[f, 1.0 - f],
            Rng::new(seed, &format!("{scope}/objects")),
        );
        keep.extend(&placed[0]);
        background = bg.into_iter().flatten().collect();
    } else if let Some(n) = count {
        let mut order: Vec<usize> = idx.to_vec();
        Rng::new(seed, &format!("{scope}/objects")).shuffle(&mut order);
        let classes: Vec<(usize, BTreeMap<String, u64>)> = order
            .into_iter()
            .map(|i| (i, objects_of(c, &[i])))
            .collect();
        let mut total: BTreeMap<&str, u64> = BTreeMap::new();
        for (_, m) in &classes {
            for (k, v) in m {
                *total.entry(k.as_str()).or_default() += v;
            }
        }
        let mut rarest: Vec<(&str, u64)> = total.into_iter().collect();
        rarest.sort_by_key(|&(k, n)| (n, k));
        for (class, _) in rarest {
            let mut have = classes
                .iter()
                .filter(|(i, m)| keep.contains(i) && m.contains_key(class))
                .count();
            for (i, m) in &classes {
                if have >= n {
                    break;
                }
                if m.contains_key(class) && keep.insert(*i) {
                    have += 1;
                }
            }
        }
        background = classes
            .iter()
            .filter(|(_, m)| m.is_empty())
            .map(|(i, _)| *i)
            .collect();
    }
    background.sort_unstable();
    Rng::new(seed, &format!("{scope}/background")).shuffle(&mut background);
    let k = n_background(background.len());
    keep.extend(background.into_iter().take(k));
    keep
}

/// Detection splits: whole images (or whole groups) go to the split that
/// most needs the objects they hold, so every class, rare ones too, is
/// spread by the ratios in object counts, and the image counts follow the
/// ratios as well. Units are placed rarest class first (ties in a seeded
/// order); images without objects are spread by the ratios on their own.
fn balance_objects(
    r: &Recipe,
    c: &Catalog,
    members: &[usize],
    by_group: bool,
) -> BTreeMap<String, Vec<usize>> {
    let s = &r.split;
    let (splits, sum) = weighted_splits(s);
    // units: an image, or every image of a group
    let mut units: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for &i in members {
        let item = &c.items[i];
        let key = match (&item.group, by_group) {
            (Some(g), true) => g.clone(),
            _ => format!("\0{i}"),
        };
        units.entry(key).or_default().push(i);
    }
    let share: Vec<f64> = splits.iter().map(|(_, w)| w / sum).collect();
    let (placed, mut background) = stratify_objects(
        c,
        units.into_values(),
        &share,
        Rng::new(r.seed, "split/objects"),
    );
    let mut out: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (k, idx) in placed.into_iter().enumerate() {
        if !idx.is_empty() {
            out.insert(splits[k].0.to_string(), idx);
        }
    }
    Rng::new(r.seed, "split/background").shuffle(&mut background);
    let (nv, nt) = counts(background.len(), s.validation / sum, s.test / sum);
    for (k, idx) in background.into_iter().enumerate() {
        let sp = if k < nv {
            VALIDATION
        } else if k < nv + nt {
            TEST
        } else {
            TRAIN
        };
        out.entry(sp.to_string()).or_default().extend(idx);
    }
    out
}

/// Resolves `auto` to the method actually used.
pub fn effective_method(r: &Recipe, c: &Catalog) -> SplitMethod {
    match r.split.method {
        SplitMethod::Auto if !c.items.is_empty() && c.items.iter().all(|i| i.split.is_some()) => {
            SplitMethod::Source
        }
        SplitMethod::Auto if c.items.iter().any(|i| i.group.is_some()) => SplitMethod::Group,
        SplitMethod::Auto => SplitMethod::Stratified,
        m => m,
    }
}

pub fn make_plan(r: &Recipe, c: &Catalog) -> Result<Plan> {
    let method = effective_method(r, c);
    let partial = r.split.method == SplitMethod::Auto
        && method != SplitMethod::Source
        && c.items.iter().any(|i| i.split.is_some());
    let (mut base, members) = if partial {
        keep_source_splits(c)?
    } else {
        (BTreeMap::new(), (0..c.items.len()).collect())
    };
    let kept: BTreeMap<String, usize> = base.iter().map(|(sp, v)| (sp.clone(), v.len())).collect();
    if matches!(method, SplitMethod::Group | SplitMethod::Explicit) {
        check_groups(c, &members, method)?;
    }
    if method == SplitMethod::Source {
        source_group_splits(c)?;
    }
    let mut skipped = Vec::new();
    for (sp, idx) in assign_split(r, c, method, &members, &mut skipped) {
        base.entry(sp).or_default().extend(idx);
    }
    for (sp, idx) in base.iter_mut() {
        idx.sort_unstable();
        Rng::new(r.seed, &format!("order/{sp}")).shuffle(idx);
    }
    for split in base.keys() {
        if !crate::recipe::is_safe_component(split) {
            let i = base[split][0];
            return Err(Error::Usage(format!(
                "{}: split name {split:?} cannot be a folder name (empty, `.`, `..` or a slash)",
                c.items[i].origin
            )));
        }
    }
    let total: usize = base.values().map(Vec::len).sum();
    // (with kept source splits, the ratios were for the other items only)
    let requested = |sp: &str| match (method, sp) {
        (SplitMethod::Source | SplitMethod::Explicit, _) => None,
        _ if partial => None,
        (_, TRAIN) => Some(r.split.train),
        (_, VALIDATION) => Some(r.split.validation),
        (_, TEST) => Some(r.split.test),
        _ => None,
    };
    let mut ratios: BTreeMap<String, SplitRatio> = base
        .iter()
        .map(|(sp, idx)| {
            (
                sp.clone(),
                SplitRatio {
                    requested: requested(sp),
                    achieved: idx.len() as f64 / total.max(1) as f64,
                },
            )
        })
        .collect();
    // a split asked for that got nothing
    for sp in [TRAIN, VALIDATION, TEST] {
        if let Some(want) = requested(sp).filter(|&w| w > 0.0) {
            ratios.entry(sp.into()).or_insert(SplitRatio {
                requested: Some(want),
                achieved: 0.0,
            });
        }
    }
    let variants = r
        .variants
        .iter()
        .map(|v| {
            let splits = base
                .iter()
                .map(|(sp, idx)| {
                    if v.fraction.is_none() && v.count.is_none() {
                        return (sp.clone(), idx.clone());
                    }
                    if c.detection {
                        let scope = format!("variant/{}/{sp}", v.name);
                        let keep = sample_objects(c, idx, v.fraction, v.count, r.seed, &scope);
                        return (
                            sp.clone(),
                            idx.iter().copied().filter(|i| keep.contains(i)).collect(),
                        );
                    }
                    let mut by_class: BTreeMap<String, Vec<usize>> = BTreeMap::new();
                    for &i in idx {
                        by_class.entry(class_key(c, i)).or_default().push(i);
                    }
                    let mut keep = std::collections::HashSet::new();
                    for (class, mut members) in by_class {
                        members.sort_unstable();
                        Rng::new(r.seed, &format!("variant/{}/{sp}/{class}", v.name))
                            .shuffle(&mut members);
                        let k = match (v.fraction, v.count) {
                            (Some(f), _) => ((members.len() as f64) * f).round() as usize,
                            (_, Some(n)) => n,
                            _ => members.len(),
                        };
                        keep.extend(members.into_iter().take(k));
                    }
                    (
                        sp.clone(),
                        idx.iter().copied().filter(|i| keep.contains(i)).collect(),
                    )
                })
                .collect();
            PlannedVariant {
                name: v.name.clone(),
                splits,
            }
        })
        .collect();
    Ok(Plan {
        method,
        variants,
        skipped,
        ratios,
        kept,
    })
}

/// Items `I` of `N` equal contiguous slices, per variant and split: the unit
/// of a shard build. Concatenating the slices in order gives the whole.
pub fn shard_range(len: usize, shard: usize, shards: usize) -> std::ops::Range<usize> {
    let lo = len * shard / shards;
    let hi = len * (shard + 1) / shards;
    lo..hi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_round_and_leave_the_rest_to_train() {
        assert_eq!(counts(26, 0.3, 0.0), (8, 0));
        assert_eq!(counts(10, 0.2, 0.1), (2, 1));
        assert_eq!(counts(1, 0.5, 0.5), (1, 0));
    }

    #[test]
    fn shard_ranges_cover_everything_once() {
        for len in [0, 1, 7, 100] {
            let mut all = Vec::new();
            for s in 0..4 {
                all.extend(shard_range(len, s, 4));
            }
            assert_eq!(all, (0..len).collect::<Vec<_>>());
        }
    }
}
