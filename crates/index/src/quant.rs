//! 8-bit scalar quantisation with exact re-ranking.

use crate::aligned::LineAligned;
use crate::flat::FlatIndex;
use crate::topk::TopK;
use crate::{dot, Hit, Index, IndexError};

/// Each vector is also stored as `i8` codes with one scale (`v ≈ scale · code`). A search scans
/// the codes with an integer dot product against the quantised query (a quarter of the memory
/// traffic of the `f32` scan), keeps the best `rerank` candidates, and re-ranks them exactly on
/// their `f32` rows, so the returned scores are exact.
#[derive(Debug)]
pub struct QuantIndex {
    exact: FlatIndex,
    codes: LineAligned<i8>,
    scales: Vec<f32>,
    rerank: usize,
}

pub(crate) fn quantise(v: &[f32], out: &mut [i8]) -> f32 {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 {
        out.fill(0);
        return 0.0;
    }
    let scale = max / 127.0;
    for (o, x) in out.iter_mut().zip(v) {
        *o = (x / scale).round().clamp(-127.0, 127.0) as i8;
    }
    scale
}

/// Integer dot product, written for the compiler to vectorise (widening multiply-add).
#[inline]
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let mut acc = [0i32; 16];
    let chunks = n / 16;
    for c in 0..chunks {
        let (x, y) = (&a[c * 16..c * 16 + 16], &b[c * 16..c * 16 + 16]);
        for j in 0..16 {
            acc[j] += i32::from(x[j]) * i32::from(y[j]);
        }
    }
    let mut sum: i32 = acc.iter().sum();
    for i in chunks * 16..n {
        sum += i32::from(a[i]) * i32::from(b[i]);
    }
    sum
}

sized! {
    /// [`dot_i8`] with the common embedding lengths (128, 512) dispatched to copies compiled
    /// for them.
    pub(crate) fn dot_i8_sized(&[i8]) -> i32 = dot_i8
}

impl QuantIndex {
    /// An empty index re-ranking the best 32 candidates.
    pub fn new(dim: usize) -> Self {
        Self::with_rerank(dim, 32)
    }

    /// An empty index re-ranking the best `rerank` candidates.
    pub fn with_rerank(dim: usize, rerank: usize) -> Self {
        QuantIndex {
            exact: FlatIndex::new(dim),
            codes: LineAligned::default(),
            scales: Vec::new(),
            rerank,
        }
    }
}

impl Index for QuantIndex {
    fn dim(&self) -> usize {
        self.exact.dim()
    }

    fn len(&self) -> usize {
        self.exact.len()
    }

    fn add(&mut self, id: u64, vector: &[f32]) -> Result<(), IndexError> {
        let existing = self.exact.slot(id);
        self.exact.add(id, vector)?;
        let d = self.dim();
        let slot = match existing {
            Some(slot) => slot,
            None => {
                self.codes.extend_from_slice(&vec![0; d]);
                self.scales.push(0.0);
                self.scales.len() - 1
            }
        };
        self.scales[slot] = quantise(vector, &mut self.codes[slot * d..(slot + 1) * d]);
        Ok(())
    }

    fn remove(&mut self, id: u64) -> bool {
        let Some((slot, last)) = self.exact.remove_slot(id) else {
            return false;
        };
        let d = self.dim();
        if slot != last {
            self.codes.copy_within(last * d..(last + 1) * d, slot * d);
            self.scales[slot] = self.scales[last];
        }
        self.codes.truncate(last * d);
        self.scales.truncate(last);
        true
    }

    fn search(&self, query: &[f32], k: usize) -> Vec<Hit> {
        let d = self.dim();
        if query.len() != d || d == 0 || k == 0 {
            return Vec::new();
        }
        let mut q = vec![0i8; d];
        // The query's own scale is the same for every row, so ranking ignores it.
        quantise(query, &mut q);
        let mut candidates = TopK::new(self.rerank.max(k));
        // As in the flat scan: the common lengths get a loop compiled for them.
        match d {
            128 => scan_codes::<128>(&q, &self.codes, &self.scales, &mut candidates),
            512 => scan_codes::<512>(&q, &self.codes, &self.scales, &mut candidates),
            _ => {
                for (slot, (code, &scale)) in
                    self.codes.chunks_exact(d).zip(&self.scales).enumerate()
                {
                    let approx = dot_i8(&q, code) as f32 * scale;
                    if approx > candidates.floor() {
                        candidates.push(slot as u64, approx);
                    }
                }
            }
        }
        let mut top = TopK::new(k);
        for c in candidates.into_vec() {
            let slot = c.id as usize;
            top.push(self.exact.id_at(slot), dot(query, self.exact.row(slot)));
        }
        top.into_vec()
    }

    fn bytes_per_vector(&self) -> f64 {
        self.exact.bytes_per_vector() + self.dim() as f64 + 4.0
    }
}

/// The 8-bit scan with the code length `D` known at compile time; candidates carry slots.
fn scan_codes<const D: usize>(q: &[i8], codes: &[i8], scales: &[f32], top: &mut TopK) {
    let Ok(q) = <&[i8; D]>::try_from(q) else {
        return;
    };
    let (rows, _) = codes.as_chunks::<D>();
    for (slot, (code, &scale)) in rows.iter().zip(scales).enumerate() {
        let approx = dot_i8(q, code) as f32 * scale;
        if approx > top.floor() {
            top.push(slot as u64, approx);
        }
    }
}
