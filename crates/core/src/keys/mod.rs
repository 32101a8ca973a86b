//! The keys: the root secret, from which each tenant's signing, lookup and transform keys are
//! derived, and the key-encryption keys in epochs, which wrap the subjects' data keys.
//!
//! Both live in the key store, apart from the database: a directory (`root.key`, `store-id`,
//! `kek-NNNNNN.key`, all mode 0600) or, for the epochs, a PKCS#11 token. The epochs are random
//! (not derived from the root key), so destroying one destroys every wrapped key still under
//! it, in the database and in every copy of it (see `actions/rotation.rs`).

mod files;
#[cfg(feature = "pkcs11")]
mod token;

use std::path::Path;

use consentry_vault::{
    key_from_hex, key_to_hex, random_key, DataKey, Kek, KeyContext, TransformSecret, WrappedKey,
};
use ed25519_dalek::SigningKey;
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::CoreError;
pub(crate) use files::{check_private, write_private};
#[cfg(feature = "pkcs11")]
pub use token::TokenConfig;

/// The database's name of epoch `seq` (`kek_epochs.id`, `data_keys.kek_id`).
pub(crate) fn epoch_id(seq: u64) -> String {
    format!("epoch-{seq}")
}

/// The epoch a `kek_id` names; `None` for a key derived from the root key (databases from
/// before epochs, whose ids are 16 hex digits).
pub(crate) fn epoch_seq(id: &str) -> Option<u64> {
    id.strip_prefix("epoch-").and_then(|n| n.parse().ok())
}

/// Where the epochs are held.
pub(crate) enum KekStore {
    Files(files::FileKeks),
    #[cfg(feature = "pkcs11")]
    Token(token::TokenKeks),
}

macro_rules! each {
    ($self:expr, $k:ident => $e:expr) => {
        match $self {
            KekStore::Files($k) => $e,
            #[cfg(feature = "pkcs11")]
            KekStore::Token($k) => $e,
        }
    };
}

impl KekStore {
    pub(crate) fn describe(&self) -> String {
        each!(self, k => k.describe())
    }
    pub(crate) fn reload(&self) -> Result<(), CoreError> {
        each!(self, k => k.reload())
    }
    pub(crate) fn epochs(&self) -> Result<Vec<u64>, CoreError> {
        each!(self, k => k.epochs())
    }
    pub(crate) fn create(&self, seq: u64) -> Result<(), CoreError> {
        each!(self, k => k.create(seq))
    }
    pub(crate) fn destroy(&self, seq: u64) -> Result<(), CoreError> {
        each!(self, k => k.destroy(seq))
    }
    pub(crate) fn forget(&self, seq: u64) -> Result<(), CoreError> {
        each!(self, k => k.forget(seq))
    }
    pub(crate) fn store_id(&self) -> Result<Option<String>, CoreError> {
        each!(self, k => k.store_id())
    }
    pub(crate) fn set_store_id(&self, id: &str) -> Result<(), CoreError> {
        each!(self, k => k.set_store_id(id))
    }

    fn holds(&self, seq: u64) -> Result<bool, CoreError> {
        Ok(self.epochs()?.contains(&seq))
    }

    fn wrap(&self, seq: u64, ctx: KeyContext<'_>, key: &DataKey) -> Result<Vec<u8>, CoreError> {
        match self {
            KekStore::Files(k) => Ok(k
                .kek(seq, ctx.tenant)?
                .ok_or_else(|| missing(seq))?
                .wrap(key, ctx)?
                .0),
            #[cfg(feature = "pkcs11")]
            KekStore::Token(k) => k.wrap(seq, ctx, key),
        }
    }

    fn unwrap(&self, seq: u64, ctx: KeyContext<'_>, wrapped: &[u8]) -> Result<DataKey, CoreError> {
        match self {
            KekStore::Files(k) => Ok(k
                .kek(seq, ctx.tenant)?
                .ok_or_else(|| missing(seq))?
                .unwrap(&WrappedKey(wrapped.to_vec()), ctx)?),
            #[cfg(feature = "pkcs11")]
            KekStore::Token(k) => k.unwrap(seq, ctx, wrapped),
        }
    }
}

fn missing(seq: u64) -> CoreError {
    CoreError::KeyFile(format!(
        "key-encryption key {} is not in the key store (destroyed by a rotation, or another \
         key store)",
        epoch_id(seq)
    ))
}

/// The server's keys: the root secret, and the store of key-encryption-key epochs. Each tenant's
/// other keys are derived from the root with HKDF-SHA256 under the tenant id and a purpose
/// label, so tenants never share a key, and the database alone (which holds no key) opens
/// nothing.
pub struct Keyring {
    root: Zeroizing<[u8; 32]>,
    pub(crate) keks: KekStore,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring(store={}, <redacted>)", self.keks.describe())
    }
}

impl Keyring {
    /// Opens the key directory, creating it (mode 0700) and its root key (mode 0600) when
    /// missing; the key-encryption-key epochs are files in it. Returns whether the root key was
    /// created, so the caller can say where it is. A directory or key file that its group or
    /// others may use is refused: these keys open every template.
    pub fn open(dir: &Path) -> Result<(Keyring, bool), CoreError> {
        let (root, created) = load_or_create_root(dir)?;
        let keks = KekStore::Files(files::FileKeks::open(dir)?);
        Ok((Keyring { root, keks }, created))
    }

    /// [`open`](Self::open) with the root key given as 64 hex digits (e.g. from
    /// `CONSENTRY_ROOT_KEY`) instead of `root.key`.
    pub fn open_with_root(dir: &Path, root_hex: &str) -> Result<Keyring, CoreError> {
        ensure_dir(dir)?;
        Ok(Keyring {
            root: key_from_hex(root_hex)?,
            keks: KekStore::Files(files::FileKeks::open(dir)?),
        })
    }

    /// The root key from the key directory (as [`open`](Self::open)); the epochs in a PKCS#11
    /// token, generated inside it and never leaving it.
    #[cfg(feature = "pkcs11")]
    pub fn open_with_token(dir: &Path, token: &TokenConfig) -> Result<(Keyring, bool), CoreError> {
        let (root, created) = load_or_create_root(dir)?;
        let keks = KekStore::Token(token::TokenKeks::open(token)?);
        Ok((Keyring { root, keks }, created))
    }

    /// Wraps a subject's data key under epoch `seq`.
    pub(crate) fn wrap(
        &self,
        seq: u64,
        ctx: KeyContext<'_>,
        key: &DataKey,
    ) -> Result<Vec<u8>, CoreError> {
        if !self.keks.holds(seq)? {
            self.keks.reload()?;
        }
        self.keks.wrap(seq, ctx, key)
    }

    /// Unwraps a subject's data key stored with `kek_id`. Fails with `key_unavailable` when its
    /// epoch has been destroyed, and `internal` when the bytes do not open.
    pub(crate) fn unwrap(
        &self,
        kek_id: &str,
        ctx: KeyContext<'_>,
        wrapped: &[u8],
    ) -> Result<DataKey, CoreError> {
        match epoch_seq(kek_id) {
            Some(seq) => {
                if !self.keks.holds(seq)? {
                    // Another process may have rotated since this one last looked.
                    self.keks.reload()?;
                }
                self.keks.unwrap(seq, ctx, wrapped)
            }
            None => {
                let kek = self.legacy_kek(ctx.tenant);
                if kek.id() != kek_id {
                    return Err(CoreError::KeyFile(format!(
                        "key-encryption key {kek_id} is not in the key store"
                    )));
                }
                Ok(kek.unwrap(&WrappedKey(wrapped.to_vec()), ctx)?)
            }
        }
    }

    /// The tenant's key-encryption key derived from the root key: what wrapped data keys before
    /// epochs existed. Only unwraps them, until the first rotation re-wraps them.
    pub(crate) fn legacy_kek(&self, tenant: &str) -> Kek {
        Kek::from_bytes(*self.derive(tenant, "kek"))
    }

    fn derive(&self, tenant: &str, label: &str) -> Zeroizing<[u8; 32]> {
        let hk = Hkdf::<Sha256>::new(Some(b"consentry tenant keys v1"), self.root.as_ref());
        let mut out = Zeroizing::new([0u8; 32]);
        let info = [label.as_bytes(), b"\0", tenant.as_bytes()].concat();
        // 32 bytes is within HKDF-SHA256's output limit, so expand cannot fail.
        let _ = hk.expand(&info, out.as_mut());
        out
    }

    /// The tenant's template-transform secret of generation `generation` (0 at the tenant's
    /// creation, one more at each re-key).
    pub fn transform_secret(&self, tenant: &str, generation: i64) -> TransformSecret {
        let label = match generation {
            0 => "template-transform".to_string(),
            g => format!("template-transform/{g}"),
        };
        TransformSecret::from_bytes(*self.derive(tenant, &label))
    }

    /// The tenant's key for liveness tokens (HMAC) and for sealing a liveness result's face.
    pub(crate) fn liveness_key(&self, tenant: &str) -> Zeroizing<[u8; 32]> {
        self.derive(tenant, "liveness")
    }

    /// The tenant's key for credential lookups (HMAC of card numbers and PINs).
    pub(crate) fn credential_key(&self, tenant: &str) -> Zeroizing<[u8; 32]> {
        self.derive(tenant, "credential-lookup")
    }

    /// The tenant's consent-receipt signing key.
    pub fn receipt_key(&self, tenant: &str) -> SigningKey {
        SigningKey::from_bytes(&self.derive(tenant, "consent-receipt"))
    }

    /// The tenant's audit-checkpoint signing key.
    pub fn audit_key(&self, tenant: &str) -> SigningKey {
        SigningKey::from_bytes(&self.derive(tenant, "audit-checkpoint"))
    }

    /// The tenant's pass-signing key of `epoch` (a new epoch on each rotation).
    pub fn pass_key(&self, tenant: &str, epoch: i64) -> SigningKey {
        SigningKey::from_bytes(&self.derive(tenant, &format!("pass-signing/{epoch}")))
    }

    /// The secret bytes of the tenant's ES256 pass-signing key of `epoch`.
    pub(crate) fn pass_key_es256(&self, tenant: &str, epoch: i64) -> Zeroizing<[u8; 32]> {
        self.derive(tenant, &format!("pass-signing-es256/{epoch}"))
    }

    /// The tenant's secret for the pairwise pseudonyms in passes.
    pub(crate) fn pass_pseudonym_secret(&self, tenant: &str) -> Zeroizing<[u8; 32]> {
        self.derive(tenant, "pass-pseudonym")
    }
}

fn ensure_dir(dir: &Path) -> Result<(), CoreError> {
    if !dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir)
            .map_err(|e| CoreError::KeyFile(format!("{}: {e}", dir.display())))?;
    }
    check_private(dir, "the keys")
}

/// Reads `root.key`, or creates it with a new random key when missing.
fn load_or_create_root(dir: &Path) -> Result<(Zeroizing<[u8; 32]>, bool), CoreError> {
    ensure_dir(dir)?;
    let path = dir.join("root.key");
    check_private(&path, "the root key")?;
    // The file's text is the root key in hex: kept in a zeroizing buffer, wiped after use.
    match std::fs::read_to_string(&path).map(Zeroizing::new) {
        Ok(text) => Ok((key_from_hex(&text)?, false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let root = Zeroizing::new(random_key());
            write_private(&path, &key_to_hex(&root))?;
            Ok((root, true))
        }
        Err(e) => Err(CoreError::KeyFile(format!("{}: {e}", path.display()))),
    }
}
