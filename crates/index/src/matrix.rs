//! Raw little-endian `f32` matrices (`n × d`, no header) and synthetic test data.

use std::io::{Read, Write};
use std::path::Path;

/// Reads an `n × dim` matrix; the file length must be a multiple of `4 · dim`.
pub fn read(path: &Path, dim: usize) -> std::io::Result<Vec<f32>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.read_to_end(&mut bytes)?;
    if dim == 0 || bytes.len() % (4 * dim) != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{}: {} bytes is not a whole number of {dim}-d f32 rows",
                path.display(),
                bytes.len()
            ),
        ));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Writes a matrix.
pub fn write(path: &Path, data: &[f32]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for x in data {
        out.write_all(&x.to_le_bytes())?;
    }
    out.flush()
}

/// A small deterministic generator (xorshift64*), so test data is the same everywhere.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u = self.uniform().max(f64::MIN_POSITIVE);
        let v = self.uniform();
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

/// Normalises each `dim`-row to unit length in place.
pub fn normalise_rows(data: &mut [f32], dim: usize) {
    for row in data.chunks_exact_mut(dim) {
        let n = row
            .iter()
            .map(|x| x * x)
            .sum::<f32>()
            .sqrt()
            .max(f32::MIN_POSITIVE);
        row.iter_mut().for_each(|x| *x /= n);
    }
}

/// `n` random unit vectors.
pub fn random_unit(n: usize, dim: usize, rng: &mut Rng) -> Vec<f32> {
    let mut v: Vec<f32> = (0..n * dim).map(|_| rng.normal()).collect();
    normalise_rows(&mut v, dim);
    v
}

/// Face-like data: `identities` random unit centres, each with `per_identity` gallery samples
/// (a person enrolled from several photos) and query samples drawn from random identities. A
/// sample is its centre plus Gaussian noise of total norm about `noise`, normalised: with
/// `noise = 0.8` two samples of one identity have cosine about 0.6 and samples of different
/// identities about 0, as SFace embeddings of the same and of different people do. Returns
/// `(gallery, queries, query_identity)`; gallery row `i` belongs to identity `i / per_identity`.
pub fn clustered(
    identities: usize,
    per_identity: usize,
    queries: usize,
    dim: usize,
    noise: f32,
    rng: &mut Rng,
) -> (Vec<f32>, Vec<f32>, Vec<usize>) {
    let centres = random_unit(identities, dim, rng);
    let sigma = noise / (dim as f32).sqrt();
    let sample = |c: usize, rng: &mut Rng| -> Vec<f32> {
        centres[c * dim..(c + 1) * dim]
            .iter()
            .map(|x| x + sigma * rng.normal())
            .collect()
    };
    let mut gallery = Vec::with_capacity(identities * per_identity * dim);
    for c in 0..identities {
        for _ in 0..per_identity {
            gallery.extend(sample(c, rng));
        }
    }
    let mut qs = Vec::with_capacity(queries * dim);
    let mut who = Vec::with_capacity(queries);
    for _ in 0..queries {
        let c = ((rng.uniform() * identities as f64) as usize).min(identities.saturating_sub(1));
        qs.extend(sample(c, rng));
        who.push(c);
    }
    normalise_rows(&mut gallery, dim);
    normalise_rows(&mut qs, dim);
    (gallery, qs, who)
}
