//! Classification metrics: accuracy, macro recall (TweetEval's official sentiment metric),
//! macro F1, per-class precision/recall/F1 and the confusion matrix.

use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClassMetrics {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EvalReport {
    pub n: u64,
    pub accuracy: f64,
    pub macro_recall: f64,
    pub macro_f1: f64,
    pub per_class: Vec<ClassMetrics>,
    /// `confusion[gold][predicted]`.
    pub confusion: Vec<Vec<u64>>,
    pub labels: Vec<String>,
}

impl EvalReport {
    pub fn new(labels: &[String], gold: &[usize], predicted: &[usize]) -> Self {
        let k = labels.len();
        let mut confusion = vec![vec![0u64; k]; k];
        for (&g, &p) in gold.iter().zip(predicted) {
            confusion[g][p] += 1;
        }
        let n: u64 = gold.len() as u64;
        let correct: u64 = (0..k).map(|i| confusion[i][i]).sum();
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let per_class: Vec<ClassMetrics> = (0..k)
            .map(|c| {
                let tp = confusion[c][c];
                let support: u64 = confusion[c].iter().sum();
                let predicted: u64 = (0..k).map(|g| confusion[g][c]).sum();
                let (precision, recall) = (ratio(tp, predicted), ratio(tp, support));
                let f1 = if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
                ClassMetrics { label: labels[c].clone(), precision, recall, f1, support }
            })
            .collect();
        let mean = |f: &dyn Fn(&ClassMetrics) -> f64| per_class.iter().map(f).sum::<f64>() / k as f64;
        EvalReport {
            n,
            accuracy: ratio(correct, n),
            macro_recall: mean(&|c| c.recall),
            macro_f1: mean(&|c| c.f1),
            per_class: per_class.clone(),
            confusion,
            labels: labels.to_vec(),
        }
    }

    /// A plain-text table for the terminal.
    pub fn to_table(&self) -> String {
        let mut s = format!(
            "n = {}\naccuracy     {:.4}\nmacro recall {:.4}  (TweetEval's official metric)\nmacro F1     {:.4}\n\n",
            self.n, self.accuracy, self.macro_recall, self.macro_f1
        );
        s.push_str(&format!("{:<12} {:>9} {:>9} {:>9} {:>8}\n", "label", "precision", "recall", "f1", "support"));
        for c in &self.per_class {
            s.push_str(&format!(
                "{:<12} {:>9.4} {:>9.4} {:>9.4} {:>8}\n",
                c.label, c.precision, c.recall, c.f1, c.support
            ));
        }
        s.push_str("\nconfusion (rows: gold, columns: predicted)\n");
        s.push_str(&format!("{:<12}", ""));
        for l in &self.labels {
            s.push_str(&format!(" {l:>9}"));
        }
        s.push('\n');
        for (l, row) in self.labels.iter().zip(&self.confusion) {
            s.push_str(&format!("{l:<12}"));
            for v in row {
                s.push_str(&format!(" {v:>9}"));
            }
            s.push('\n');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_hand_computed_example() {
        let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        // gold:      a a a b b c
        // predicted: a a b b c c
        let r = EvalReport::new(&labels, &[0, 0, 0, 1, 1, 2], &[0, 0, 1, 1, 2, 2]);
        assert_eq!(r.confusion, vec![vec![2, 1, 0], vec![0, 1, 1], vec![0, 0, 1]]);
        assert!((r.accuracy - 4.0 / 6.0).abs() < 1e-12);
        // recalls: 2/3, 1/2, 1 → mean 13/18
        assert!((r.macro_recall - 13.0 / 18.0).abs() < 1e-12);
        // precisions: 1, 1/2, 1/2; f1: 0.8, 0.5, 2/3
        assert!((r.per_class[0].f1 - 0.8).abs() < 1e-12);
        assert!((r.macro_f1 - (0.8 + 0.5 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
    }
}
