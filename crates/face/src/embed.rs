//! Face embeddings: SFace (default) or, opted into, InsightFace's w600k_mbf.
//!
//! The prepared SFace graph takes `[N, 3, 112, 112]` RGB in 0..255 (its normalisation is inside
//! the graph) and returns `[N, 128]`; w600k_mbf takes RGB as (x − 127.5)/127.5 and returns
//! `[N, 512]`. With flip test-time augmentation the crop and its mirror
//! run as one batch of two and their embeddings are summed before L2 normalisation.

use ort::value::TensorRef;
use serde::{Deserialize, Serialize};

use crate::align::{AlignedFace, CROP};
use crate::runtime::{Assets, SessionPool};
use crate::FaceError;

/// Which recognition network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecogniserModel {
    /// SFace 2021dec (Apache-2.0), 128-d, the default: the weights as published (fp32).
    SFace,
    /// The same SFace statically quantised to int8 in setup (`prepare_models.py sface-int8`),
    /// weights in 7 bits so that CPUs without VNNI compute it exactly too: the same LFW
    /// accuracy, embeddings within cosine 0.94–1.0 of fp32 (docs/accuracy.md).
    SFaceInt8,
    /// InsightFace w600k_mbf (MobileFaceNet on WebFace600K; non-commercial upstream), 512-d.
    Mbf,
}

impl RecogniserModel {
    /// Asset path of the prepared model.
    pub fn asset(self) -> &'static str {
        match self {
            RecogniserModel::SFace => "models/sface_2021dec_fp32.onnx",
            RecogniserModel::SFaceInt8 => "models/sface_2021dec_int8w7.onnx",
            RecogniserModel::Mbf => "models/w600k_mbf_prepared.onnx",
        }
    }

    /// Embedding dimension.
    pub fn dim(self) -> usize {
        match self {
            RecogniserModel::SFace | RecogniserModel::SFaceInt8 => 128,
            RecogniserModel::Mbf => 512,
        }
    }

    fn io(self) -> (&'static str, &'static str) {
        match self {
            RecogniserModel::SFace | RecogniserModel::SFaceInt8 => ("data", "fc1"),
            RecogniserModel::Mbf => ("input.1", "516"),
        }
    }

    /// (mean, scale) applied to 0..255 pixel values.
    fn normalisation(self) -> (f32, f32) {
        match self {
            RecogniserModel::SFace | RecogniserModel::SFaceInt8 => (0.0, 1.0),
            RecogniserModel::Mbf => (127.5, 1.0 / 127.5),
        }
    }
}

/// A unit-length face embedding: biometric data, wiped from memory when dropped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Embedding(pub Vec<f32>);

impl Drop for Embedding {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

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

/// The recogniser.
#[derive(Debug)]
pub struct Embedder {
    pool: SessionPool,
    flip: bool,
    model: RecogniserModel,
}

impl Embedder {
    /// Loads a prepared model. `flip` enables flip test-time augmentation.
    pub fn load(
        assets: &Assets,
        model: RecogniserModel,
        threads: usize,
        flip: bool,
    ) -> Result<Self, FaceError> {
        Ok(Embedder {
            pool: SessionPool::new(assets, model.asset(), threads)?,
            flip,
            model,
        })
    }

    /// The network in use.
    pub fn model(&self) -> RecogniserModel {
        self.model
    }

    /// Whether flip augmentation is on.
    pub fn flip(&self) -> bool {
        self.flip
    }

    /// Embeds one aligned crop.
    pub fn embed(&self, face: &AlignedFace) -> Result<Embedding, FaceError> {
        let plane = CROP * CROP;
        let (mean, scale) = self.model.normalisation();
        let (input, output) = self.model.io();
        let dim = self.model.dim();
        let batch = if self.flip { 2 } else { 1 };
        let mut data = vec![0f32; batch * 3 * plane];
        for (i, px) in face.rgb.chunks_exact(3).enumerate() {
            for c in 0..3 {
                data[c * plane + i] = (f32::from(px[c]) - mean) * scale;
            }
            if self.flip {
                let (y, x) = (i / CROP, i % CROP);
                let mirrored = y * CROP + (CROP - 1 - x);
                for c in 0..3 {
                    data[(3 + c) * plane + mirrored] = (f32::from(px[c]) - mean) * scale;
                }
            }
        }
        let raw = self.pool.with(|session| {
            let tensor = TensorRef::from_array_view(([batch, 3, CROP, CROP], &data[..]))?;
            let outputs = session.run(ort::inputs![input => tensor])?;
            let out = outputs.get(output).ok_or_else(|| {
                FaceError::Inference(format!("recogniser output {output} missing"))
            })?;
            Ok(out.try_extract_tensor::<f32>()?.1.to_vec())
        })?;
        if raw.len() != batch * dim {
            return Err(FaceError::Inference(format!(
                "recogniser gave {} values",
                raw.len()
            )));
        }
        let mut sum = raw[..dim].to_vec();
        if self.flip {
            // Each half is normalised first so both views weigh the same.
            let a = Embedding::normalised(raw[..dim].to_vec());
            let b = Embedding::normalised(raw[dim..].to_vec());
            if let (Some(a), Some(b)) = (a, b) {
                sum = a.0.iter().zip(&b.0).map(|(x, y)| x + y).collect();
            }
        }
        Embedding::normalised(sum)
            .ok_or_else(|| FaceError::Inference("recogniser gave a zero embedding".into()))
    }
}
