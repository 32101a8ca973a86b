//! Keys, wrapping and sealing.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::VaultError;

/// Envelope version of a wrapped data key.
const KEY_VERSION: u8 = 1;
/// Envelope version of a sealed template. Version 2 binds purpose, model, retention and
/// envelope version besides tenant, subject and template id; version 1 bound only the ids and
/// is opened only by [`DataKey::open_template_v1`], to upgrade old envelopes.
pub const TEMPLATE_VERSION: u8 = 2;
const NONCE: usize = 24;

/// Length-prefixed encoding of the associated data: unambiguous for any field contents.
fn aad(label: &str, fields: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    for f in std::iter::once(label).chain(fields.iter().copied()) {
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f.as_bytes());
    }
    out
}

fn seal(key: &[u8; 32], version: u8, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let ct = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| VaultError::Seal)?;
    let mut out = Vec::with_capacity(1 + NONCE + ct.len());
    out.push(version);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

fn open(
    key: &[u8; 32],
    version: u8,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    if sealed.len() < 1 + NONCE + 16 || sealed[0] != version {
        return Err(VaultError::Malformed);
    }
    let cipher = XChaCha20Poly1305::new(key.into());
    let nonce = XNonce::from_slice(&sealed[1..1 + NONCE]);
    cipher
        .decrypt(
            nonce,
            Payload {
                msg: &sealed[1 + NONCE..],
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| VaultError::Unopenable)
}

/// Parses 64 hex digits, with no copy of the secret outside a zeroizing buffer.
fn parse_hex(text: &str) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    let text = text.trim();
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(VaultError::KeyFormat);
    }
    let mut out = Zeroizing::new([0u8; 32]);
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| VaultError::KeyFormat)?;
    }
    Ok(out)
}

/// Hex into a buffer allocated once at its final size (no reallocation leaves a copy behind)
/// and written digit by digit (no temporary strings holding the secret).
fn to_hex(bytes: &[u8]) -> Zeroizing<String> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = Zeroizing::new(String::with_capacity(bytes.len() * 2));
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

fn random32() -> [u8; 32] {
    // A fresh XChaCha20-Poly1305 key from the OS generator is 32 uniform bytes.
    XChaCha20Poly1305::generate_key(&mut OsRng).into()
}

/// What a data key is bound to when wrapped.
#[derive(Clone, Copy, Debug)]
pub struct KeyContext<'a> {
    /// Tenant id.
    pub tenant: &'a str,
    /// Subject id.
    pub subject: &'a str,
}

/// What a template is bound to when sealed: every column that decides whether and how it may
/// be used. A template whose row was edited (moved to another purpose, model, subject or
/// tenant, or given a longer retention) no longer opens.
#[derive(Clone, Copy, Debug)]
pub struct TemplateContext<'a> {
    /// Tenant id.
    pub tenant: &'a str,
    /// Subject id.
    pub subject: &'a str,
    /// Template id.
    pub template: &'a str,
    /// Purpose (`access`, `verification`).
    pub purpose: &'a str,
    /// The model that made it.
    pub model: &'a str,
    /// Unix seconds of its last successful use (its retention period runs from there).
    pub last_used_at: i64,
    /// Unix seconds when its retention ends.
    pub expires_at: i64,
}

impl TemplateContext<'_> {
    fn aad(&self) -> Vec<u8> {
        let (used, expires) = (self.last_used_at.to_string(), self.expires_at.to_string());
        aad(
            "consentry-template",
            &[
                &TEMPLATE_VERSION.to_string(),
                self.tenant,
                self.subject,
                self.template,
                self.purpose,
                self.model,
                &used,
                &expires,
            ],
        )
    }
}

/// A tenant's key-encryption key.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Kek([u8; 32]);

impl Kek {
    /// A new random key.
    pub fn generate() -> Kek {
        Kek(random32())
    }

    /// From raw bytes (e.g. derived per tenant from a root key).
    pub fn from_bytes(bytes: [u8; 32]) -> Kek {
        Kek(bytes)
    }

    /// From 64 hex digits (a key file's content or an environment variable).
    pub fn from_hex(text: &str) -> Result<Kek, VaultError> {
        parse_hex(text).map(|k| Kek(*k))
    }

    /// The key as 64 hex digits, for writing a key file once.
    pub fn to_hex(&self) -> Zeroizing<String> {
        to_hex(&self.0)
    }

    /// A public identifier of the key (not secret): which KEK wrapped a data key.
    pub fn id(&self) -> String {
        let digest = Sha256::new()
            .chain_update(b"consentry kek id v1")
            .chain_update(self.0)
            .finalize();
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Wraps a subject's data key.
    pub fn wrap(&self, key: &DataKey, ctx: KeyContext<'_>) -> Result<WrappedKey, VaultError> {
        seal(
            &self.0,
            KEY_VERSION,
            &aad("consentry-data-key-v1", &[ctx.tenant, ctx.subject]),
            &key.0,
        )
        .map(WrappedKey)
    }

    /// Unwraps a data key; fails for another tenant's KEK, another subject, or altered bytes.
    pub fn unwrap(&self, wrapped: &WrappedKey, ctx: KeyContext<'_>) -> Result<DataKey, VaultError> {
        let plain = open(
            &self.0,
            KEY_VERSION,
            &aad("consentry-data-key-v1", &[ctx.tenant, ctx.subject]),
            &wrapped.0,
        )?;
        let bytes: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| VaultError::Malformed)?;
        Ok(DataKey(bytes))
    }
}

impl PartialEq for Kek {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kek(id={}, <redacted>)", self.id())
    }
}

/// A data key wrapped by a KEK: safe to store in the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedKey(pub Vec<u8>);

/// A subject's data key (plaintext: only in memory, zeroized on drop).
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; 32]);

impl DataKey {
    /// A new random key.
    pub fn generate() -> DataKey {
        DataKey(random32())
    }

    /// From raw bytes: a key a hardware token unwrapped.
    pub fn from_bytes(bytes: [u8; 32]) -> DataKey {
        DataKey(bytes)
    }

    /// The raw key, only to hand it to a hardware token for wrapping.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// Seals a (transformed) template.
    pub fn seal_template(
        &self,
        ctx: TemplateContext<'_>,
        template: &[f32],
    ) -> Result<Vec<u8>, VaultError> {
        let mut bytes = Zeroizing::new(Vec::with_capacity(template.len() * 4));
        for x in template {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        seal(&self.0, TEMPLATE_VERSION, &ctx.aad(), &bytes)
    }

    /// Opens a sealed template.
    pub fn open_template(
        &self,
        ctx: TemplateContext<'_>,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<f32>>, VaultError> {
        floats(open(&self.0, TEMPLATE_VERSION, &ctx.aad(), sealed)?)
    }

    /// Opens a version-1 envelope (bound to tenant, subject and template id only), to re-seal
    /// it as version 2.
    pub fn open_template_v1(
        &self,
        ctx: TemplateContext<'_>,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<f32>>, VaultError> {
        let aad = aad(
            "consentry-template-v1",
            &[ctx.tenant, ctx.subject, ctx.template],
        );
        floats(open(&self.0, 1, &aad, sealed)?)
    }

    /// Seals a version-1 envelope: only for tests of the upgrade.
    #[doc(hidden)]
    pub fn seal_template_v1(
        &self,
        ctx: TemplateContext<'_>,
        template: &[f32],
    ) -> Result<Vec<u8>, VaultError> {
        let bytes: Vec<u8> = template.iter().flat_map(|x| x.to_le_bytes()).collect();
        let aad = aad(
            "consentry-template-v1",
            &[ctx.tenant, ctx.subject, ctx.template],
        );
        seal(&self.0, 1, &aad, &bytes)
    }
}

fn floats(plain: Zeroizing<Vec<u8>>) -> Result<Zeroizing<Vec<f32>>, VaultError> {
    if !plain.len().is_multiple_of(4) {
        return Err(VaultError::Malformed);
    }
    Ok(Zeroizing::new(
        plain
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    ))
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// Parses 64 hex digits into 32 bytes (for key files), zeroized on drop.
pub fn key_from_hex(text: &str) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    parse_hex(text)
}

/// 32 bytes as 64 hex digits.
pub fn key_to_hex(bytes: &[u8; 32]) -> Zeroizing<String> {
    to_hex(bytes)
}

/// 32 random bytes from the operating system.
pub fn random_key() -> [u8; 32] {
    random32()
}

pub(crate) fn secret_from_hex(text: &str) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    parse_hex(text)
}

pub(crate) fn secret_to_hex(bytes: &[u8; 32]) -> Zeroizing<String> {
    to_hex(bytes)
}

pub(crate) fn random_secret() -> [u8; 32] {
    random32()
}
