//! Exact search.

use std::collections::HashMap;

use crate::aligned::LineAligned;
use crate::topk::TopK;
use crate::{check, dot, Hit, Index, IndexError};

/// Exact search over a contiguous row-major matrix. Removal swaps the last row into the hole.
/// The rows are zeroed wherever they stop being used: a removed row, a block left as the
/// matrix grows, the whole matrix when the index drops.
#[derive(Debug, Default)]
pub struct FlatIndex {
    dim: usize,
    data: LineAligned<f32>,
    ids: Vec<u64>,
    slots: HashMap<u64, usize>,
}

impl FlatIndex {
    /// An empty index of dimension `dim`.
    pub fn new(dim: usize) -> Self {
        FlatIndex {
            dim,
            ..Default::default()
        }
    }

    pub(crate) fn row(&self, slot: usize) -> &[f32] {
        &self.data[slot * self.dim..(slot + 1) * self.dim]
    }

    pub(crate) fn slot(&self, id: u64) -> Option<usize> {
        self.slots.get(&id).copied()
    }

    pub(crate) fn id_at(&self, slot: usize) -> u64 {
        self.ids[slot]
    }

    /// Removes `id`, returning the slot it had and the slot whose row moved into it.
    pub(crate) fn remove_slot(&mut self, id: u64) -> Option<(usize, usize)> {
        let slot = self.slots.remove(&id)?;
        let last = self.ids.len() - 1;
        let d = self.dim;
        if slot != last {
            self.data.copy_within(last * d..(last + 1) * d, slot * d);
            self.ids[slot] = self.ids[last];
            self.slots.insert(self.ids[slot], slot);
        }
        // Removed templates do not linger in memory: the row cut off is zeroed.
        self.data.truncate(last * d);
        self.ids.truncate(last);
        Some((slot, last))
    }
}

impl Index for FlatIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn add(&mut self, id: u64, vector: &[f32]) -> Result<(), IndexError> {
        check(vector, self.dim)?;
        if let Some(&slot) = self.slots.get(&id) {
            self.data[slot * self.dim..(slot + 1) * self.dim].copy_from_slice(vector);
            return Ok(());
        }
        self.slots.insert(id, self.ids.len());
        self.ids.push(id);
        self.data.extend_from_slice(vector);
        Ok(())
    }

    fn remove(&mut self, id: u64) -> bool {
        self.remove_slot(id).is_some()
    }

    fn search(&self, query: &[f32], k: usize) -> Vec<Hit> {
        if query.len() != self.dim || self.dim == 0 {
            return Vec::new();
        }
        let mut top = TopK::new(k);
        // The embedding sizes in use get a loop compiled for their length: with the trip count
        // known, the dot product is fully unrolled and the scan runs near memory speed.
        match self.dim {
            128 => scan::<128>(query, &self.data, &self.ids, &mut top),
            512 => scan::<512>(query, &self.data, &self.ids, &mut top),
            _ => {
                for (row, &id) in self.data.chunks_exact(self.dim).zip(&self.ids) {
                    let s = dot(query, row);
                    if s > top.floor() {
                        top.push(id, s);
                    }
                }
            }
        }
        top.into_vec()
    }

    fn bytes_per_vector(&self) -> f64 {
        // Row, id, and the id -> slot map entry (key, value, about one control byte).
        (self.dim * 4 + 8 + 8 + 8 + 1) as f64
    }
}

/// Exact scan with the row length `D` known at compile time.
fn scan<const D: usize>(query: &[f32], data: &[f32], ids: &[u64], top: &mut TopK) {
    let Ok(q) = <&[f32; D]>::try_from(query) else {
        return;
    };
    let (rows, _) = data.as_chunks::<D>();
    for (row, &id) in rows.iter().zip(ids) {
        let s = dot(q, row);
        if s > top.floor() {
            top.push(id, s);
        }
    }
}
