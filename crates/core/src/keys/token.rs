//! Key-encryption-key epochs in a PKCS#11 token (a hardware security module; SoftHSM2 in the
//! tests). Each epoch is an AES-256 key generated inside the token, marked sensitive and not
//! extractable: it never leaves it. Data keys are wrapped and unwrapped by the token with
//! AES-256-GCM, the tenant, subject and epoch bound as associated data. Destroying an epoch is
//! `C_DestroyObject` inside the token.
//!
//! No `unsafe` here: the `cryptoki` crate is the FFI layer.

use std::path::PathBuf;
use std::sync::Mutex;

use consentry_vault::{random_key, DataKey, KeyContext};
use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use crate::CoreError;

const ENVELOPE: u8 = 2;
const IV: usize = 12;
const LABEL_PREFIX: &str = "consentry-kek-";
const STORE_ID_LABEL: &str = "consentry-store-id";

/// Which token holds the epochs, and how to log in to it.
pub struct TokenConfig {
    /// The PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so).
    pub module: PathBuf,
    /// The token's label.
    pub token_label: String,
    /// The user PIN.
    pub pin: Zeroizing<String>,
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("pin", &"<redacted>")
            .finish()
    }
}

fn err(what: &str, e: impl std::fmt::Display) -> CoreError {
    CoreError::KeyFile(format!("PKCS#11 token: {what}: {e}"))
}

pub(crate) struct TokenKeks {
    label: String,
    session: Mutex<Session>,
    // Kept alive for the session's sake (finalised on drop).
    _context: Pkcs11,
}

impl TokenKeks {
    pub(crate) fn open(cfg: &TokenConfig) -> Result<TokenKeks, CoreError> {
        let context = Pkcs11::new(&cfg.module).map_err(|e| err("load module", e))?;
        context
            .initialize(CInitializeArgs::OsThreads)
            .map_err(|e| err("initialize", e))?;
        let slot = context
            .get_slots_with_initialized_token()
            .map_err(|e| err("slots", e))?
            .into_iter()
            .find(|s| {
                context
                    .get_token_info(*s)
                    .is_ok_and(|i| i.label().trim_end() == cfg.token_label)
            })
            .ok_or_else(|| err("no token labelled", &cfg.token_label))?;
        let session = context
            .open_rw_session(slot)
            .map_err(|e| err("open session", e))?;
        let pin = AuthPin::new(cfg.pin.as_str().into());
        session
            .login(UserType::User, Some(&pin))
            .map_err(|e| err("log in", e))?;
        Ok(TokenKeks {
            label: cfg.token_label.clone(),
            session: Mutex::new(session),
            _context: context,
        })
    }

    fn session(&self) -> Result<std::sync::MutexGuard<'_, Session>, CoreError> {
        self.session
            .lock()
            .map_err(|_| CoreError::Internal("token session lock poisoned".into()))
    }

    pub(crate) fn describe(&self) -> String {
        format!("PKCS#11 token {}", self.label)
    }

    /// Nothing to reload: the token is asked every time.
    #[allow(clippy::unnecessary_wraps, clippy::unused_self)]
    pub(crate) fn reload(&self) -> Result<(), CoreError> {
        Ok(())
    }

    #[allow(clippy::unnecessary_wraps, clippy::unused_self)]
    pub(crate) fn forget(&self, _seq: u64) -> Result<(), CoreError> {
        Ok(())
    }

    fn find(&self, s: &Session, seq: u64) -> Result<Option<ObjectHandle>, CoreError> {
        let label = format!("{LABEL_PREFIX}{seq}").into_bytes();
        Ok(s.find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(label),
        ])
        .map_err(|e| err("find key", e))?
        .into_iter()
        .next())
    }

    pub(crate) fn epochs(&self) -> Result<Vec<u64>, CoreError> {
        let s = self.session()?;
        let mut out = Vec::new();
        for h in s
            .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)])
            .map_err(|e| err("list keys", e))?
        {
            for a in s
                .get_attributes(h, &[AttributeType::Label])
                .map_err(|e| err("read label", e))?
            {
                if let Attribute::Label(l) = a {
                    if let Some(seq) = std::str::from_utf8(&l)
                        .ok()
                        .and_then(|l| l.strip_prefix(LABEL_PREFIX))
                        .and_then(|n| n.parse().ok())
                    {
                        out.push(seq);
                    }
                }
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    pub(crate) fn create(&self, seq: u64) -> Result<(), CoreError> {
        let s = self.session()?;
        if self.find(&s, seq)?.is_some() {
            return Ok(());
        }
        s.generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32.into()),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Label(format!("{LABEL_PREFIX}{seq}").into_bytes()),
            ],
        )
        .map_err(|e| err("generate key", e))?;
        Ok(())
    }

    pub(crate) fn destroy(&self, seq: u64) -> Result<(), CoreError> {
        let s = self.session()?;
        if let Some(h) = self.find(&s, seq)? {
            s.destroy_object(h).map_err(|e| err("destroy key", e))?;
        }
        Ok(())
    }

    pub(crate) fn store_id(&self) -> Result<Option<String>, CoreError> {
        let s = self.session()?;
        let Some(h) = s
            .find_objects(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Label(STORE_ID_LABEL.as_bytes().to_vec()),
            ])
            .map_err(|e| err("find store id", e))?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        for a in s
            .get_attributes(h, &[AttributeType::Value])
            .map_err(|e| err("read store id", e))?
        {
            if let Attribute::Value(v) = a {
                return Ok(Some(String::from_utf8_lossy(&v).into_owned()));
            }
        }
        Ok(None)
    }

    pub(crate) fn set_store_id(&self, id: &str) -> Result<(), CoreError> {
        self.session()?
            .create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Label(STORE_ID_LABEL.as_bytes().to_vec()),
                Attribute::Value(id.as_bytes().to_vec()),
            ])
            .map_err(|e| err("write store id", e))?;
        Ok(())
    }

    fn aad(seq: u64, ctx: KeyContext<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        for f in [
            "consentry-data-key-token-v1",
            ctx.tenant,
            ctx.subject,
            &seq.to_string(),
        ] {
            out.extend_from_slice(&(f.len() as u32).to_le_bytes());
            out.extend_from_slice(f.as_bytes());
        }
        out
    }

    pub(crate) fn wrap(
        &self,
        seq: u64,
        ctx: KeyContext<'_>,
        key: &DataKey,
    ) -> Result<Vec<u8>, CoreError> {
        let s = self.session()?;
        let h = self.find(&s, seq)?.ok_or_else(|| super::missing(seq))?;
        let mut iv = [0u8; IV];
        iv.copy_from_slice(&random_key()[..IV]);
        let aad = Self::aad(seq, ctx);
        let mut iv_param = iv;
        let params = GcmParams::new(&mut iv_param, &aad, 128.into()).map_err(|e| err("GCM", e))?;
        let ct = s
            .encrypt(&Mechanism::AesGcm(params), h, key.expose())
            .map_err(|e| err("wrap", e))?;
        let mut out = Vec::with_capacity(1 + IV + ct.len());
        out.push(ENVELOPE);
        out.extend_from_slice(&iv);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    pub(crate) fn unwrap(
        &self,
        seq: u64,
        ctx: KeyContext<'_>,
        wrapped: &[u8],
    ) -> Result<DataKey, CoreError> {
        if wrapped.len() != 1 + IV + 32 + 16 || wrapped[0] != ENVELOPE {
            return Err(consentry_vault::VaultError::Malformed.into());
        }
        let s = self.session()?;
        let h = self.find(&s, seq)?.ok_or_else(|| super::missing(seq))?;
        let mut iv = [0u8; IV];
        iv.copy_from_slice(&wrapped[1..=IV]);
        let aad = Self::aad(seq, ctx);
        let params = GcmParams::new(&mut iv, &aad, 128.into()).map_err(|e| err("GCM", e))?;
        let plain = Zeroizing::new(
            s.decrypt(&Mechanism::AesGcm(params), h, &wrapped[1 + IV..])
                .map_err(|_| CoreError::Vault(consentry_vault::VaultError::Unopenable))?,
        );
        let bytes: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| CoreError::Vault(consentry_vault::VaultError::Malformed))?;
        Ok(DataKey::from_bytes(bytes))
    }
}
