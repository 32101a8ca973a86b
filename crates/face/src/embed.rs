//! SFace embeddings.
//!
//! The prepared SFace graph takes `[N, 3, 112, 112]` RGB in 0..255 (its normalisation is inside
//! the graph) and returns `[N, 128]`. With flip test-time augmentation the crop and its mirror
//! run as one batch of two and their embeddings are summed before L2 normalisation.

use ort::value::TensorRef;
use serde::{Deserialize, Serialize};

use crate::align::{AlignedFace, CROP};
use crate::runtime::{Assets, SessionPool};
use crate::FaceError;

/// Asset path of the prepared recogniser.
pub const RECOGNISER_MODEL: &str = "models/sface_2021dec_fp32.onnx";

/// Dimension of an SFace embedding.
pub const DIM: usize = 128;

/// A unit-length face embedding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Embedding(pub Vec<f32>);

impl Embedding {
    /// Cosine similarity (a dot product: both are unit length). 0 for mismatched lengths.
    pub fn cosine(&self, other: &Embedding) -> f32 {
        if self.0.len() != other.0.len() {
            return 0.0;
        }
        self.0.iter().zip(&other.0).map(|(a, b)| a * b).sum()
    }

    /// Normalises `v` to unit length; `None` for a zero or non-finite vector.
    pub fn normalised(mut v: Vec<f32>) -> Option<Embedding> {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if !norm.is_finite() || norm <= f32::EPSILON {
            return None;
        }
        v.iter_mut().for_each(|x| *x /= norm);
        Some(Embedding(v))
    }
}

/// The SFace recogniser.
#[derive(Debug)]
pub struct Embedder {
    pool: SessionPool,
    flip: bool,
}

impl Embedder {
    /// Loads the prepared SFace model. `flip` enables flip test-time augmentation.
    pub fn load(assets: &Assets, threads: usize, flip: bool) -> Result<Self, FaceError> {
        Ok(Embedder {
            pool: SessionPool::new(assets, RECOGNISER_MODEL, threads)?,
            flip,
        })
    }

    /// Whether flip augmentation is on.
    pub fn flip(&self) -> bool {
        self.flip
    }

    /// Embeds one aligned crop.
    pub fn embed(&self, face: &AlignedFace) -> Result<Embedding, FaceError> {
        let plane = CROP * CROP;
        let batch = if self.flip { 2 } else { 1 };
        let mut data = vec![0f32; batch * 3 * plane];
        for (i, px) in face.rgb.chunks_exact(3).enumerate() {
            for c in 0..3 {
                data[c * plane + i] = f32::from(px[c]);
            }
            if self.flip {
                let (y, x) = (i / CROP, i % CROP);
                let mirrored = y * CROP + (CROP - 1 - x);
                for c in 0..3 {
                    data[(3 + c) * plane + mirrored] = f32::from(px[c]);
                }
            }
        }
        let raw = self.pool.with(|session| {
            let tensor = TensorRef::from_array_view(([batch, 3, CROP, CROP], &data[..]))?;
            let outputs = session.run(ort::inputs!["data" => tensor])?;
            let out = outputs
                .get("fc1")
                .ok_or_else(|| FaceError::Inference("recogniser output fc1 missing".into()))?;
            Ok(out.try_extract_tensor::<f32>()?.1.to_vec())
        })?;
        if raw.len() != batch * DIM {
            return Err(FaceError::Inference(format!(
                "recogniser gave {} values",
                raw.len()
            )));
        }
        let mut sum = raw[..DIM].to_vec();
        if self.flip {
            // Each half is normalised first so both views weigh the same.
            let a = Embedding::normalised(raw[..DIM].to_vec());
            let b = Embedding::normalised(raw[DIM..].to_vec());
            if let (Some(a), Some(b)) = (a, b) {
                sum = a.0.iter().zip(&b.0).map(|(x, y)| x + y).collect();
            }
        }
        Embedding::normalised(sum)
            .ok_or_else(|| FaceError::Inference("recogniser gave a zero embedding".into()))
    }
}
