//! Per-view outputs -> one score vector per video, and its top-k.

use serde::{Deserialize, Serialize};

/// How the views (clips x crops) of one video are combined into class scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// Mean of per-view softmax probabilities.
    Prob,
    /// Softmax of the mean of per-view logits.
    Logit,
    /// Per-class maximum of per-view probabilities.
    Max,
}

/// One label of the top-k.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub label: String,
    pub index: usize,
    pub score: f64,
}

pub fn softmax(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// Combines the logits of every view (clips x crops) of one video into class scores.
pub fn aggregate(views: &[Vec<f64>], how: Aggregate) -> Vec<f64> {
    let n = views.len() as f64;
    let k = views.first().map_or(0, Vec::len);
    let sum_of = |rows: &[Vec<f64>]| {
        let mut acc = vec![0.0; k];
        for r in rows {
            for (a, v) in acc.iter_mut().zip(r) {
                *a += v;
            }
        }
        acc
    };
    match how {
        Aggregate::Logit => softmax(&sum_of(views).iter().map(|v| v / n).collect::<Vec<_>>()),
        Aggregate::Prob => {
            let probs: Vec<Vec<f64>> = views.iter().map(|v| softmax(v)).collect();
            sum_of(&probs).into_iter().map(|v| v / n).collect()
        }
        Aggregate::Max => {
            let mut acc = vec![0.0f64; k];
            for p in views.iter().map(|v| softmax(v)) {
                for (a, v) in acc.iter_mut().zip(p) {
                    *a = a.max(v);
                }
            }
            acc
        }
    }
}

/// The `k` best classes, highest score first; ties keep the lower class index first.
pub fn top_k(scores: &[f64], labels: &[String], k: usize) -> Vec<Prediction> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    idx.into_iter()
        .take(k)
        .map(|i| Prediction {
            label: labels
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("class_{i}")),
            index: i,
            score: scores[i],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    }

    #[test]
    fn prob_is_mean_of_softmaxes() {
        let v = vec![vec![0.0, 0.0], vec![(3.0f64).ln(), 0.0]];
        // softmax: [.5,.5] and [.75,.25] -> mean [.625,.375]
        assert!(close(&aggregate(&v, Aggregate::Prob), &[0.625, 0.375]));
    }

    #[test]
    fn logit_is_softmax_of_mean() {
        let v = vec![vec![0.0, 0.0], vec![2.0 * (3.0f64).ln(), 0.0]];
        // mean logits [ln 3, 0] -> [.75, .25]
        assert!(close(&aggregate(&v, Aggregate::Logit), &[0.75, 0.25]));
    }

    #[test]
    fn max_takes_per_class_maximum() {
        let v = vec![vec![(3.0f64).ln(), 0.0], vec![0.0, (3.0f64).ln()]];
        assert!(close(&aggregate(&v, Aggregate::Max), &[0.75, 0.75]));
    }

    #[test]
    fn top_k_orders_by_score_then_index() {
        let labels: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let t = top_k(&[0.1, 0.4, 0.4, 0.1], &labels, 3);
        let got: Vec<(usize, &str)> = t.iter().map(|p| (p.index, p.label.as_str())).collect();
        assert_eq!(got, vec![(1, "b"), (2, "c"), (0, "a")]);
        assert_eq!(top_k(&[0.5, 0.5], &labels[..2], 10).len(), 2);
    }
}
