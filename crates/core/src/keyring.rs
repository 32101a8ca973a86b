//! The root secret and the per-tenant keys derived from it.

use std::io::Write;
use std::path::Path;

use consentry_vault::{key_from_hex, key_to_hex, random_key, Kek, TransformSecret};
use ed25519_dalek::SigningKey;
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::CoreError;

/// The server's root secret. Each tenant's keys are derived from it with HKDF-SHA256 under the
/// tenant id and a purpose label, so tenants never share a key, and the database alone (which
/// holds no key) opens nothing.
pub struct Keyring {
    root: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring(<redacted>)")
    }
}

impl Keyring {
    /// From 64 hex digits (e.g. `CONSENTRY_ROOT_KEY`).
    pub fn from_hex(text: &str) -> Result<Keyring, CoreError> {
        Ok(Keyring {
            root: key_from_hex(text)?,
        })
    }

    /// Reads the key file, or creates it (mode 0600) with a new random key when missing.
    /// Returns whether it was created, so the caller can warn that it must be backed up. A
    /// file that its group or others may read or write is refused: the root key opens every
    /// template.
    pub fn load_or_create(path: &Path) -> Result<(Keyring, bool), CoreError> {
        #[cfg(unix)]
        if let Ok(meta) = std::fs::metadata(path) {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(CoreError::KeyFile(format!(
                    "{}: mode {mode:03o} lets others read the root key; run chmod 600 on it",
                    path.display()
                )));
            }
        }
        // The file's text is the root key in hex: kept in a zeroizing buffer, wiped after use.
        match std::fs::read_to_string(path).map(Zeroizing::new) {
            Ok(text) => Ok((Keyring::from_hex(&text)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let root = Zeroizing::new(random_key());
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options
                    .open(path)
                    .map_err(|e| CoreError::KeyFile(format!("{}: {e}", path.display())))?;
                file.write_all(key_to_hex(&root).as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| CoreError::KeyFile(format!("{}: {e}", path.display())))?;
                Ok((Keyring { root }, true))
            }
            Err(e) => Err(CoreError::KeyFile(format!("{}: {e}", path.display()))),
        }
    }

    fn derive(&self, tenant: &str, label: &str) -> Zeroizing<[u8; 32]> {
        let hk = Hkdf::<Sha256>::new(Some(b"consentry tenant keys v1"), self.root.as_ref());
        let mut out = Zeroizing::new([0u8; 32]);
        let info = [label.as_bytes(), b"\0", tenant.as_bytes()].concat();
        // 32 bytes is within HKDF-SHA256's output limit, so expand cannot fail.
        let _ = hk.expand(&info, out.as_mut());
        out
    }

    /// The tenant's key-encryption key.
    pub fn kek(&self, tenant: &str) -> Kek {
        Kek::from_bytes(*self.derive(tenant, "kek"))
    }

    /// The tenant's template-transform secret.
    pub fn transform_secret(&self, tenant: &str) -> TransformSecret {
        TransformSecret::from_bytes(*self.derive(tenant, "template-transform"))
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
