//! The run summary: prose for people on stderr, or one JSON object for scripts and tests.

use serde::{Deserialize, Serialize};

/// Counts of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Inputs this run handled (after sharding and skipping what was already done).
    pub inputs: usize,
    pub classified: usize,
    pub failed: usize,
    /// Inputs skipped because an earlier run's output already holds them.
    pub already_done: usize,
    pub records: usize,
    pub views: usize,
    pub elapsed_s: f64,
}

impl RunSummary {
    /// One line for people.
    pub fn prose(&self) -> String {
        let secs = self.elapsed_s.max(1e-9);
        let resumed = if self.already_done > 0 {
            format!(", {} already done", self.already_done)
        } else {
            String::new()
        };
        format!(
            "{} input(s): {} classified, {} failed{resumed}; {} record(s), {} view(s) in {:.1} s ({:.2} videos/s, {:.2} views/s)",
            self.inputs,
            self.classified,
            self.failed,
            self.records,
            self.views,
            self.elapsed_s,
            self.classified as f64 / secs,
            self.views as f64 / secs
        )
    }

    /// One JSON object on one line.
    pub fn json(&self) -> String {
        serde_json::to_string(self).expect("a summary serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_and_json_say_the_same() {
        let s = RunSummary {
            inputs: 3,
            classified: 2,
            failed: 1,
            already_done: 4,
            records: 3,
            views: 6,
            elapsed_s: 2.0,
        };
        assert_eq!(
            s.prose(),
            "3 input(s): 2 classified, 1 failed, 4 already done; 3 record(s), 6 view(s) in 2.0 s (1.00 videos/s, 3.00 views/s)"
        );
        let back: RunSummary = serde_json::from_str(&s.json()).unwrap();
        assert_eq!(back, s);
        assert!(!s.json().contains('\n'));
    }
}
