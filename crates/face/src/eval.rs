//! Verification accuracy on labelled pairs: LFW-format protocol files, k-fold accuracy with the
//! threshold chosen on the other folds, TAR at fixed FAR, and the ROC curve.
//!
//! Pairs whose images yield no face ("failures to enrol") are kept, scored −1 (a non-match),
//! so a pipeline cannot look better by failing to detect hard faces.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// One pair of the protocol.
#[derive(Clone, Debug, PartialEq)]
pub struct Pair {
    /// First image.
    pub a: PathBuf,
    /// Second image.
    pub b: PathBuf,
    /// Same person?
    pub same: bool,
    /// Fold index (0-based).
    pub fold: usize,
}

/// Parses an LFW `pairs.txt`: an optional header `folds<TAB>n`, then per fold `n` lines
/// `name i j` (same person) followed by `n` lines `name1 i name2 j`. Without a header every
/// line belongs to fold 0. Image paths are `root/name/name_NNNN.jpg`.
pub fn parse_lfw_pairs(text: &str, root: &Path) -> Result<Vec<Pair>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .peekable();
    let mut per_fold = usize::MAX;
    if let Some((_, first)) = lines.peek() {
        let cols: Vec<&str> = first.split_whitespace().collect();
        if cols.len() == 2 && cols.iter().all(|c| c.parse::<usize>().is_ok()) {
            let n: usize = cols[1].parse().map_err(|_| "bad header".to_string())?;
            per_fold = 2 * n.max(1);
            lines.next();
        }
    }
    let path = |name: &str, idx: &str| -> Result<PathBuf, String> {
        let i: u32 = idx
            .parse()
            .map_err(|_| format!("bad image number {idx:?}"))?;
        Ok(root.join(name).join(format!("{name}_{i:04}.jpg")))
    };
    let mut pairs = Vec::new();
    for (k, (lineno, line)) in lines.enumerate() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let fold = if per_fold == usize::MAX {
            0
        } else {
            k / per_fold
        };
        let pair = match cols.as_slice() {
            [name, i, j] => Pair {
                a: path(name, i)?,
                b: path(name, j)?,
                same: true,
                fold,
            },
            [n1, i, n2, j] => Pair {
                a: path(n1, i)?,
                b: path(n2, j)?,
                same: false,
                fold,
            },
            _ => return Err(format!("line {}: expected 3 or 4 fields", lineno + 1)),
        };
        pairs.push(pair);
    }
    Ok(pairs)
}

/// A scored pair: `score` is the cosine similarity, or −1 when a face was not found.
#[derive(Clone, Copy, Debug)]
pub struct Scored {
    /// Cosine similarity.
    pub score: f32,
    /// Same person?
    pub same: bool,
    /// Fold index.
    pub fold: usize,
}

/// One point of the ROC curve.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct RocPoint {
    /// Decision threshold (score ≥ threshold is a match).
    pub threshold: f32,
    /// False accept rate.
    pub far: f64,
    /// True accept rate.
    pub tar: f64,
}

/// Accuracy at a fixed threshold.
pub fn accuracy(scored: &[Scored], threshold: f32) -> f64 {
    if scored.is_empty() {
        return 0.0;
    }
    let right = scored
        .iter()
        .filter(|s| (s.score >= threshold) == s.same)
        .count();
    right as f64 / scored.len() as f64
}

/// The threshold maximising accuracy on `scored`. Among equally good thresholds the middle of
/// the best run is taken, which generalises better than its edge.
pub fn best_threshold(scored: &[Scored]) -> f32 {
    let mut cands: Vec<f32> = scored.iter().map(|s| s.score).collect();
    cands.sort_by(f32::total_cmp);
    cands.dedup();
    if cands.is_empty() {
        return 0.0;
    }
    // Midpoints between consecutive distinct scores are the only thresholds that differ.
    let mids: Vec<f32> = cands.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect();
    let accs: Vec<f64> = mids.iter().map(|&t| accuracy(scored, t)).collect();
    let best = accs.iter().cloned().fold(f64::MIN, f64::max);
    let idx: Vec<usize> = (0..mids.len())
        .filter(|&i| accs[i] >= best - 1e-12)
        .collect();
    match (idx.first(), idx.last()) {
        (Some(&lo), Some(&hi)) => (mids[lo] + mids[hi]) / 2.0,
        _ => cands[0],
    }
}

/// The k-fold result.
#[derive(Clone, Debug, Serialize)]
pub struct KFold {
    /// Mean accuracy over folds.
    pub mean: f64,
    /// Standard deviation of the fold accuracies.
    pub std: f64,
    /// Per fold: (threshold chosen on the other folds, accuracy on this fold).
    pub folds: Vec<(f32, f64)>,
}

/// k-fold accuracy: each fold is scored at the threshold best on all the other folds.
pub fn kfold(scored: &[Scored]) -> KFold {
    let k = scored.iter().map(|s| s.fold + 1).max().unwrap_or(0);
    let mut folds = Vec::new();
    for f in 0..k {
        let train: Vec<Scored> = scored.iter().filter(|s| s.fold != f).copied().collect();
        let test: Vec<Scored> = scored.iter().filter(|s| s.fold == f).copied().collect();
        let t = if train.is_empty() {
            best_threshold(&test)
        } else {
            best_threshold(&train)
        };
        folds.push((t, accuracy(&test, t)));
    }
    let n = folds.len().max(1) as f64;
    let mean = folds.iter().map(|f| f.1).sum::<f64>() / n;
    let std = (folds.iter().map(|f| (f.1 - mean).powi(2)).sum::<f64>() / n).sqrt();
    KFold { mean, std, folds }
}

/// The ROC curve, one point per distinct score, from the strictest threshold down.
pub fn roc(scored: &[Scored]) -> Vec<RocPoint> {
    let pos = scored.iter().filter(|s| s.same).count().max(1) as f64;
    let neg = scored.iter().filter(|s| !s.same).count().max(1) as f64;
    let mut sorted: Vec<Scored> = scored.to_vec();
    sorted.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut points = vec![RocPoint {
        threshold: f32::INFINITY,
        far: 0.0,
        tar: 0.0,
    }];
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut i = 0;
    while i < sorted.len() {
        let t = sorted[i].score;
        while i < sorted.len() && sorted[i].score == t {
            if sorted[i].same {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        points.push(RocPoint {
            threshold: t,
            far: fp as f64 / neg,
            tar: tp as f64 / pos,
        });
    }
    points
}

/// TAR at the largest threshold set whose FAR does not exceed `far`. With `m` impostor pairs a
/// FAR below `1/m` means no impostor may pass at all.
pub fn tar_at_far(roc: &[RocPoint], far: f64) -> (f64, f32) {
    roc.iter()
        .filter(|p| p.far <= far)
        .map(|p| (p.tar, p.threshold))
        .fold(
            (0.0, f32::INFINITY),
            |best, p| if p.0 > best.0 { p } else { best },
        )
}

/// Equal error rate and its threshold.
pub fn eer(roc: &[RocPoint]) -> (f64, f32) {
    roc.iter()
        .map(|p| {
            (
                (p.far - (1.0 - p.tar)).abs(),
                (p.far + 1.0 - p.tar) / 2.0,
                p.threshold,
            )
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, e, t)| (e, t))
        .unwrap_or((1.0, 0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(score: f32, same: bool, fold: usize) -> Scored {
        Scored { score, same, fold }
    }

    #[test]
    fn parses_lfw_pairs_with_folds() {
        let text = "2\t1\nA\t1\t2\nB\t1\tC\t3\nD\t4\t5\nE\t1\tF\t10\n";
        let pairs = parse_lfw_pairs(text, Path::new("/r")).unwrap_or_default();
        assert_eq!(pairs.len(), 4);
        assert_eq!(pairs[0].a, PathBuf::from("/r/A/A_0001.jpg"));
        assert!(pairs[0].same && !pairs[1].same);
        assert_eq!(pairs[1].b, PathBuf::from("/r/C/C_0003.jpg"));
        assert_eq!(
            [pairs[0].fold, pairs[1].fold, pairs[2].fold, pairs[3].fold],
            [0, 0, 1, 1]
        );
        assert!(parse_lfw_pairs("A\t1\n", Path::new("/r")).is_err());
    }

    #[test]
    fn separable_scores_give_perfect_kfold() {
        let mut v = Vec::new();
        for f in 0..3 {
            for i in 0..10 {
                v.push(s(0.6 + i as f32 * 0.01, true, f));
                v.push(s(0.1 + i as f32 * 0.01, false, f));
            }
        }
        let k = kfold(&v);
        assert_eq!(k.mean, 1.0);
        assert!(k.folds.iter().all(|(t, _)| *t > 0.19 && *t < 0.6));
        let r = roc(&v);
        assert_eq!(tar_at_far(&r, 0.0).0, 1.0);
        assert!(eer(&r).0 < 1e-9);
    }

    #[test]
    fn one_overlap_costs_accuracy() {
        let v = vec![
            s(0.9, true, 0),
            s(0.2, true, 0),
            s(0.3, false, 0),
            s(0.1, false, 0),
        ];
        assert_eq!(accuracy(&v, 0.5), 0.75);
        let r = roc(&v);
        assert_eq!(tar_at_far(&r, 0.0).0, 0.5);
        assert_eq!(r.last().map(|p| (p.far, p.tar)), Some((1.0, 1.0)));
    }
}
