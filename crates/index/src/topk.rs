//! A bounded best-k list: sorted, best first; cheap for the small k of identification.

use crate::Hit;

pub(crate) struct TopK {
    k: usize,
    hits: Vec<Hit>,
}

impl TopK {
    pub(crate) fn new(k: usize) -> Self {
        TopK {
            k,
            hits: Vec::with_capacity(k + 1),
        }
    }

    /// The score a candidate must beat to enter.
    #[inline]
    pub(crate) fn floor(&self) -> f32 {
        if self.hits.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.hits.last().map_or(f32::NEG_INFINITY, |h| h.score)
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, id: u64, score: f32) {
        if self.k == 0 || score <= self.floor() {
            return;
        }
        let pos = self.hits.partition_point(|h| h.score >= score);
        self.hits.insert(pos, Hit { id, score });
        self.hits.truncate(self.k);
    }

    pub(crate) fn into_vec(self) -> Vec<Hit> {
        self.hits
    }
}
