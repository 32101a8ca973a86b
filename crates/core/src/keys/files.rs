//! Key-encryption-key epochs as files in the key directory (`kek-NNNNNN.key`, mode 0600).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use consentry_vault::{key_from_hex, key_to_hex, random_key, Kek};
use zeroize::Zeroizing;

use crate::CoreError;

fn io(path: &Path, e: impl std::fmt::Display) -> CoreError {
    CoreError::KeyFile(format!("{}: {e}", path.display()))
}

/// Refuses a key file or directory that its group or others may use.
pub(crate) fn check_private(path: &Path, what: &str) -> Result<(), CoreError> {
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            let fix = if meta.is_dir() {
                "chmod 700"
            } else {
                "chmod 600"
            };
            return Err(CoreError::KeyFile(format!(
                "{}: mode {mode:03o} lets others read {what}; run {fix} on it",
                path.display()
            )));
        }
    }
    Ok(())
}

/// Writes a new file that only its owner may read, and makes it durable (the file, then the
/// directory entry). Fails when the file exists.
pub(crate) fn write_private(path: &Path, text: &str) -> Result<(), CoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| io(path, e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io(path, e))?;
    sync_dir(path)
}

fn sync_dir(path: &Path) -> Result<(), CoreError> {
    if let Some(dir) = path.parent() {
        #[cfg(unix)]
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io(dir, e))?;
    }
    Ok(())
}

/// The epochs held in a directory. Each epoch's secret is 32 random bytes (never derived from
/// the root key, so that destroying the file destroys the epoch); a tenant's KEK of an epoch is
/// derived from it with HKDF under the tenant id.
pub(crate) struct FileKeks {
    dir: PathBuf,
    held: RwLock<BTreeMap<u64, Zeroizing<[u8; 32]>>>,
}

impl FileKeks {
    pub(crate) fn open(dir: &Path) -> Result<FileKeks, CoreError> {
        let keks = FileKeks {
            dir: dir.to_path_buf(),
            held: RwLock::new(BTreeMap::new()),
        };
        keks.reload()?;
        Ok(keks)
    }

    pub(crate) fn describe(&self) -> String {
        self.dir.display().to_string()
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("kek-{seq:06}.key"))
    }

    fn lock_err() -> CoreError {
        CoreError::Internal("key store lock poisoned".into())
    }

    /// Reads the directory again (another process may have rotated).
    pub(crate) fn reload(&self) -> Result<(), CoreError> {
        let mut found = BTreeMap::new();
        let entries = std::fs::read_dir(&self.dir).map_err(|e| io(&self.dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io(&self.dir, e))?;
            let name = entry.file_name();
            let Some(seq) = name
                .to_str()
                .and_then(|n| n.strip_prefix("kek-"))
                .and_then(|n| n.strip_suffix(".key"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let path = entry.path();
            check_private(&path, "a key-encryption key")?;
            let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| io(&path, e))?);
            found.insert(seq, key_from_hex(&text).map_err(|e| io(&path, e))?);
        }
        *self.held.write().map_err(|_| Self::lock_err())? = found;
        Ok(())
    }

    pub(crate) fn epochs(&self) -> Result<Vec<u64>, CoreError> {
        Ok(self
            .held
            .read()
            .map_err(|_| Self::lock_err())?
            .keys()
            .copied()
            .collect())
    }

    /// Makes epoch `seq` (kept when a file for it exists already: an interrupted rotation).
    pub(crate) fn create(&self, seq: u64) -> Result<(), CoreError> {
        let path = self.path(seq);
        if !path.exists() {
            let secret = Zeroizing::new(random_key());
            write_private(&path, &key_to_hex(&secret))?;
        }
        self.reload()
    }

    /// Destroys epoch `seq`: the file is overwritten with zeros, synced, then removed, and the
    /// copy in memory is wiped. (On a copy-on-write or wear-levelled disk the old blocks may
    /// survive the overwrite; the PKCS#11 store is the answer there.)
    pub(crate) fn destroy(&self, seq: u64) -> Result<(), CoreError> {
        let path = self.path(seq);
        if let Ok(meta) = std::fs::metadata(&path) {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| io(&path, e))?;
            let zeros = vec![0u8; usize::try_from(meta.len()).unwrap_or(64)];
            file.write_all(&zeros)
                .and_then(|()| file.sync_all())
                .map_err(|e| io(&path, e))?;
            std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
            sync_dir(&path)?;
        }
        self.forget(seq)
    }

    /// Wipes the copy in memory of an epoch another process destroyed.
    pub(crate) fn forget(&self, seq: u64) -> Result<(), CoreError> {
        self.held
            .write()
            .map_err(|_| Self::lock_err())?
            .remove(&seq);
        Ok(())
    }

    /// The tenant's KEK of epoch `seq`, when this store holds the epoch.
    pub(crate) fn kek(&self, seq: u64, tenant: &str) -> Result<Option<Kek>, CoreError> {
        let held = self.held.read().map_err(|_| Self::lock_err())?;
        Ok(held.get(&seq).map(|secret| {
            let hk =
                hkdf::Hkdf::<sha2::Sha256>::new(Some(b"consentry kek epoch v1"), secret.as_ref());
            let mut out = Zeroizing::new([0u8; 32]);
            let info = [b"kek\0".as_slice(), tenant.as_bytes()].concat();
            // 32 bytes is within HKDF-SHA256's output limit, so expand cannot fail.
            let _ = hk.expand(&info, out.as_mut());
            Kek::from_bytes(*out)
        }))
    }

    pub(crate) fn store_id(&self) -> Result<Option<String>, CoreError> {
        let path = self.dir.join("store-id");
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text.trim().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path, e)),
        }
    }

    pub(crate) fn set_store_id(&self, id: &str) -> Result<(), CoreError> {
        write_private(&self.dir.join("store-id"), id)
    }
}
