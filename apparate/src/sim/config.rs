//! The active ramp configuration: ramp ids in model order with their thresholds.

/// Active ramps `A = [a_0 <= ... <= a_{J-1}]` and thresholds `T = [t_0 .. t_{J-1}]`.
#[derive(Clone, Debug, PartialEq)]
pub struct RampConfig {
    /// Ramp ids, non-decreasing.
    pub ramp_ids: Vec<usize>,
    /// One threshold per active ramp.
    pub thresholds: Vec<f64>,
}

impl RampConfig {
    /// Ramps with thresholds all 0.
    pub fn with_zero_thresholds(ramp_ids: Vec<usize>) -> RampConfig {
        let thresholds = vec![0.0; ramp_ids.len()];
        RampConfig {
            ramp_ids,
            thresholds,
        }
    }

    /// `J`, the number of active ramps.
    pub fn len(&self) -> usize {
        self.ramp_ids.len()
    }

    /// Whether no ramp is active.
    pub fn is_empty(&self) -> bool {
        self.ramp_ids.is_empty()
    }

    /// Adds a ramp in front.
    pub fn prepend(&mut self, ramp: usize, threshold: f64) {
        self.ramp_ids.insert(0, ramp);
        self.thresholds.insert(0, threshold);
    }

    /// Adds a ramp at the end.
    pub fn push(&mut self, ramp: usize, threshold: f64) {
        self.ramp_ids.push(ramp);
        self.thresholds.push(threshold);
    }

    /// Removes the ramp at position `pos`.
    pub fn remove_at(&mut self, pos: usize) {
        self.ramp_ids.remove(pos);
        self.thresholds.remove(pos);
    }

    /// Keeps only the positions whose ramp id satisfies `keep`.
    pub fn retain_ids(&mut self, keep: impl Fn(usize) -> bool) {
        let (ids, ts): (Vec<usize>, Vec<f64>) = self
            .ramp_ids
            .iter()
            .zip(&self.thresholds)
            .filter(|(&a, _)| keep(a))
            .map(|(&a, &t)| (a, t))
            .unzip();
        self.ramp_ids = ids;
        self.thresholds = ts;
    }
}
