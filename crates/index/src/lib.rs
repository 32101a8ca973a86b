//! Consentry's gallery index: the 1:N search behind identification at a gate.
//!
//! Three implementations of one [`Index`] trait (add, remove, top-k search by cosine):
//! - [`FlatIndex`]: exact search over a contiguous `f32` matrix (dot products the compiler
//!   vectorises 8 lanes wide).
//! - [`QuantIndex`]: 8-bit scalar-quantised vectors scanned first, then the best candidates
//!   re-ranked exactly against their `f32` vectors.
//! - [`HnswIndex`]: an approximate HNSW graph (Malkov & Yashunin) for large galleries, walked
//!   on 8-bit codes of the vectors and answering with exact scores.
//!
//! Vectors are unit length, so cosine is the dot product. Removal is immediate in all three: a
//! removed id is never returned again, and its vector is overwritten in memory (the HNSW keeps
//! the node, zeroed, as a waypoint until the next rebuild). [`matrix`] reads and writes raw
//! little-endian `f32` matrices and makes clustered test data that behaves like face embeddings.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// Defines `fn $name(a, b)`: `$f(a, b)` with the common embedding lengths (128, 512)
/// dispatched to copies of `$f` compiled for them, where its loop is fully unrolled, for code
/// that takes rows of any length. A macro, so that each copy is the very code written out by
/// hand.
macro_rules! sized {
    ($(#[$meta:meta])* $vis:vis fn $name:ident(&[$t:ty]) -> $r:ty = $f:ident) => {
        $(#[$meta])*
        #[inline]
        $vis fn $name(a: &[$t], b: &[$t]) -> $r {
            fn fixed<const D: usize>(a: &[$t], b: &[$t]) -> Option<$r> {
                Some($f(
                    <&[$t; D]>::try_from(a).ok()?,
                    <&[$t; D]>::try_from(b).ok()?,
                ))
            }
            match a.len() {
                128 => fixed::<128>(a, b),
                512 => fixed::<512>(a, b),
                _ => None,
            }
            .unwrap_or_else(|| $f(a, b))
        }
    };
}

mod aligned;
mod flat;
mod hnsw;
pub mod matrix;
mod quant;
mod topk;

pub use flat::FlatIndex;
pub use hnsw::{HnswIndex, HnswParams};
pub use quant::QuantIndex;

/// One search result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    /// The id given to [`Index::add`].
    pub id: u64,
    /// Cosine similarity with the query.
    pub score: f32,
}

/// Errors from index operations.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum IndexError {
    /// A vector's length differs from the index dimension.
    #[error("vector has {got} dimensions, the index has {want}")]
    Dimension {
        /// Length given.
        got: usize,
        /// Index dimension.
        want: usize,
    },
    /// A vector with NaN or infinite components.
    #[error("vector is not finite")]
    NotFinite,
}

/// A searchable set of unit vectors keyed by `u64` ids.
pub trait Index: Send + Sync {
    /// Vector dimension.
    fn dim(&self) -> usize;
    /// Number of live (not removed) vectors.
    fn len(&self) -> usize;
    /// True when no live vectors.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Adds a vector, replacing any vector already stored under `id`.
    fn add(&mut self, id: u64, vector: &[f32]) -> Result<(), IndexError>;
    /// Removes `id`; true when it was present. Effective for every later search.
    fn remove(&mut self, id: u64) -> bool;
    /// The `k` best matches, best first.
    fn search(&self, query: &[f32], k: usize) -> Vec<Hit>;
    /// Memory held per live vector, in bytes (vectors, ids, graph; not allocator slack).
    fn bytes_per_vector(&self) -> f64;
    /// How hard an approximate index searches (HNSW's efSearch); exact indexes ignore it.
    fn set_ef_search(&mut self, _ef: usize) {}
}

pub(crate) fn check(vector: &[f32], dim: usize) -> Result<(), IndexError> {
    if vector.len() != dim {
        return Err(IndexError::Dimension {
            got: vector.len(),
            want: dim,
        });
    }
    if vector.iter().any(|x| !x.is_finite()) {
        return Err(IndexError::NotFinite);
    }
    Ok(())
}

/// Dot product, written so the compiler vectorises it: the slices are viewed as arrays of 8
/// floats (one AVX register), multiplied and added into one array of 8 sums built whole by
/// `array::from_fn` each step. (Written as 8 updates of two arrays, LLVM vectorised it only 2
/// floats wide: docs/benchmarks.md.)
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (xa, ta) = a[..n].as_chunks::<8>();
    let (xb, tb) = b[..n].as_chunks::<8>();
    let mut acc = [0f32; 8];
    for (x, y) in xa.iter().zip(xb) {
        acc = std::array::from_fn(|j| x[j].mul_add(y[j], acc[j]));
    }
    let mut sum = 0.0;
    for s in acc {
        sum += s;
    }
    for (x, y) in ta.iter().zip(tb) {
        sum += x * y;
    }
    sum
}

sized! {
    /// [`dot`] with the common embedding lengths (128, 512) dispatched to copies compiled for
    /// them, where the loop is fully unrolled: for code that takes rows of any length.
    pub fn dot_sized(&[f32]) -> f32 = dot
}

#[cfg(test)]
mod tests;
