//! The per-tenant secret orthogonal transform.

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::keys::{random_secret, secret_from_hex, secret_to_hex};
use crate::VaultError;

/// The secret a tenant's transform is derived from (kept beside the KEK, never in the database).
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct TransformSecret([u8; 32]);

impl TransformSecret {
    /// A new random secret.
    pub fn generate() -> Self {
        TransformSecret(random_secret())
    }

    /// From raw bytes (e.g. derived per tenant from a root key).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        TransformSecret(bytes)
    }

    /// From 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Self, VaultError> {
        secret_from_hex(text).map(|k| TransformSecret(*k))
    }

    /// As 64 hex digits.
    pub fn to_hex(&self) -> Zeroizing<String> {
        secret_to_hex(&self.0)
    }
}

impl std::fmt::Debug for TransformSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TransformSecret(<redacted>)")
    }
}

/// A random orthogonal `d × d` matrix `Q`, the same for the same secret. `Q·a · Q·b = a · b`,
/// so matching works unchanged on transformed templates, and a transformed template compared
/// directly with another tenant's says nothing about whether they are the same face. Not
/// one-way: `d` known pairs of raw and transformed templates give `Q` (docs/accuracy.md).
pub struct TemplateTransform {
    dim: usize,
    /// Row-major `Q`.
    q: Zeroizing<Vec<f32>>,
}

impl std::fmt::Debug for TemplateTransform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TemplateTransform(dim={}, <redacted>)", self.dim)
    }
}

impl TemplateTransform {
    /// Derives the transform: HKDF-SHA256 of the secret keys a ChaCha20 stream, whose output is
    /// turned into Gaussian numbers (Box–Muller); Gram–Schmidt (in f64, twice for stability)
    /// orthonormalises the rows, giving a uniformly random rotation.
    pub fn derive(secret: &TransformSecret, dim: usize) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(b"consentry template transform v1"), &secret.0);
        let mut key = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's output limit, so expand cannot fail.
        let _ = hk.expand(&(dim as u64).to_le_bytes(), key.as_mut());
        let mut stream = ChaCha20::new(key.as_ref().into(), &[0u8; 12].into());
        let mut uniform = || {
            let mut b = [0u8; 8];
            stream.apply_keystream(&mut b);
            ((u64::from_le_bytes(b) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let mut m = Zeroizing::new(vec![0f64; dim * dim]);
        for v in m.iter_mut() {
            let (u1, u2) = (uniform(), uniform());
            *v = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        }
        for i in 0..dim {
            for _pass in 0..2 {
                for j in 0..i {
                    let proj: f64 = (0..dim).map(|k| m[i * dim + k] * m[j * dim + k]).sum();
                    for k in 0..dim {
                        m[i * dim + k] -= proj * m[j * dim + k];
                    }
                }
            }
            let norm = (0..dim)
                .map(|k| m[i * dim + k].powi(2))
                .sum::<f64>()
                .sqrt()
                .max(f64::MIN_POSITIVE);
            for k in 0..dim {
                m[i * dim + k] /= norm;
            }
        }
        TemplateTransform {
            dim,
            q: Zeroizing::new(m.iter().map(|&x| x as f32).collect()),
        }
    }

    /// The dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// `Q · t`.
    pub fn apply(&self, t: &[f32]) -> Result<Zeroizing<Vec<f32>>, VaultError> {
        if t.len() != self.dim {
            return Err(VaultError::Dimension {
                got: t.len(),
                want: self.dim,
            });
        }
        Ok(Zeroizing::new(
            self.q
                .chunks_exact(self.dim)
                .map(|row| {
                    row.iter()
                        .zip(t)
                        .map(|(a, b)| f64::from(*a) * f64::from(*b))
                        .sum::<f64>() as f32
                })
                .collect(),
        ))
    }

    /// `Qᵀ · t`: undoes [`apply`](Self::apply), for re-keying to a new secret.
    pub fn invert(&self, t: &[f32]) -> Result<Vec<f32>, VaultError> {
        if t.len() != self.dim {
            return Err(VaultError::Dimension {
                got: t.len(),
                want: self.dim,
            });
        }
        let mut out = vec![0f64; self.dim];
        for (row, &x) in self.q.chunks_exact(self.dim).zip(t) {
            for (o, &q) in out.iter_mut().zip(row) {
                *o += f64::from(q) * f64::from(x);
            }
        }
        Ok(out.into_iter().map(|x| x as f32).collect())
    }
}
