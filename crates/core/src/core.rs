//! The actions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use consentry_db::Db;
use consentry_face::{FaceEngine, QualityGate};
use consentry_index::{FlatIndex, Index};
use consentry_vault::{random_key, KeyContext, TemplateContext, TemplateTransform, WrappedKey};
use sha2::{Digest, Sha256};
use sqlx::Row;
use subtle::ConstantTimeEq;

use crate::receipt::ConsentReceipt;
use crate::{CoreError, Keyring};

/// Longest retention any template gets, whatever the consent says: three years. A template is
/// kept for its consent's `retention_days` after its last successful match (or its enrolment),
/// and the sweeper deletes it after that.
const MAX_RETENTION_DAYS: i64 = 3 * 365;

/// How stale `last_used_at` may get before a match writes it again (one day).
const TOUCH_INTERVAL_SECS: i64 = 86_400;

/// What an API key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Manage the tenant: keys, subjects, consents, enrolment.
    Admin,
    /// Work with subjects: enrol, verify, delete.
    Operator,
    /// A gate or kiosk: verify and identify only.
    Device,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Device => "device",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "operator" => Some(Role::Operator),
            "device" => Some(Role::Device),
            _ => None,
        }
    }
}

/// What a consent (and the templates enrolled under it) is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Access decisions at a gate (1:N identification).
    Access,
    /// Verifying a claimed identity (1:1).
    Verification,
}

impl Purpose {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Access => "access",
            Purpose::Verification => "verification",
        }
    }

    /// Parses `access` or `verification`.
    pub fn parse(s: &str) -> Result<Purpose, CoreError> {
        match s {
            "access" => Ok(Purpose::Access),
            "verification" => Ok(Purpose::Verification),
            _ => Err(CoreError::Invalid(
                "purpose must be access or verification".into(),
            )),
        }
    }
}

/// An authenticated caller: one tenant, one role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The tenant the key belongs to; every query is confined to it.
    pub tenant: String,
    /// The key's role.
    pub role: Role,
}

impl Principal {
    fn require(&self, allowed: &[Role]) -> Result<(), CoreError> {
        if allowed.contains(&self.role) {
            Ok(())
        } else {
            Err(CoreError::Forbidden)
        }
    }
}

/// A 1:1 decision. A subject that does not exist, has no template, or does not match all give
/// the same `deny`, so the answer never reveals whether an id exists.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
    /// Access granted.
    pub allow: bool,
    /// Best cosine score (0 when there was nothing to compare with).
    pub score: f32,
}

/// A 1:N decision: the subject when the face matched one of the tenant's consenting, enrolled
/// people; otherwise nothing at all about the face is kept.
#[derive(Clone, Debug, PartialEq)]
pub struct Identification {
    /// Access granted.
    pub allow: bool,
    /// The matched subject.
    pub subject: Option<String>,
    /// Best score (0 when the gallery is empty).
    pub score: f32,
}

/// What the API shows about a subject: never template bytes.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SubjectView {
    /// Subject id.
    pub id: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Every consent, active or withdrawn.
    pub consents: Vec<ConsentView>,
    /// Live templates enrolled for access.
    pub access_templates: i64,
    /// Live templates enrolled for verification.
    pub verification_templates: i64,
    /// Live templates made by another face model than the one running: they never match, and
    /// the person needs enrolling again to use the face.
    pub other_model_templates: i64,
}

/// One consent as shown to operators and the person.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ConsentView {
    /// Consent id.
    pub id: String,
    /// Purpose.
    pub purpose: String,
    /// Retention in days.
    pub retention_days: i64,
    /// Unix seconds.
    pub granted_at: i64,
    /// Unix seconds, when withdrawn.
    pub withdrawn_at: Option<i64>,
}

/// A non-biometric credential, equal to the face in the access decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A card number (as read from the card).
    Card(String),
    /// A PIN of at least 6 digits.
    Pin(String),
}

impl Credential {
    fn kind(&self) -> &'static str {
        match self {
            Credential::Card(_) => "card",
            Credential::Pin(_) => "pin",
        }
    }

    fn validate(&self) -> Result<(), CoreError> {
        match self {
            Credential::Card(n) if !n.trim().is_empty() && n.len() <= 128 => Ok(()),
            Credential::Pin(p)
                if (6..=12).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) =>
            {
                Ok(())
            }
            Credential::Card(_) => Err(CoreError::Invalid(
                "a card number is 1 to 128 characters".into(),
            )),
            Credential::Pin(_) => Err(CoreError::Invalid("a PIN is 6 to 12 digits".into())),
        }
    }

    /// The stored lookup: HMAC-SHA256 under the tenant's credential key (kept outside the
    /// database), so the database alone reveals no card number and allows no offline PIN guessing.
    fn lookup(&self, key: &[u8; 32]) -> Vec<u8> {
        use hmac::Mac;
        let value = match self {
            Credential::Card(n) => n.trim(),
            Credential::Pin(p) => p.as_str(),
        };
        match hmac::Hmac::<Sha256>::new_from_slice(key) {
            Ok(mut mac) => {
                mac.update(self.kind().as_bytes());
                mac.update(b"\0");
                mac.update(value.as_bytes());
                mac.finalize().into_bytes().to_vec()
            }
            // HMAC accepts keys of any length; unreachable, and an empty lookup matches nothing.
            Err(_) => Vec::new(),
        }
    }
}

/// One tenant's in-memory gallery of access templates (transformed, never raw embeddings).
struct Gallery {
    index: FlatIndex,
    /// The last change of `gallery_changes` applied.
    seq: i64,
    next: u64,
    by_key: HashMap<u64, (String, String)>,
    by_template: HashMap<String, u64>,
}

impl Gallery {
    fn new(dim: usize) -> Self {
        Gallery {
            index: FlatIndex::new(dim),
            seq: 0,
            next: 0,
            by_key: HashMap::new(),
            by_template: HashMap::new(),
        }
    }

    fn add(&mut self, template: &str, subject: &str, vector: &[f32]) {
        if self.by_template.contains_key(template) {
            return;
        }
        let key = self.next;
        self.next += 1;
        if self.index.add(key, vector).is_ok() {
            self.by_key
                .insert(key, (template.to_string(), subject.to_string()));
            self.by_template.insert(template.to_string(), key);
        }
    }

    fn remove_subject(&mut self, subject: &str) {
        let keys: Vec<u64> = self
            .by_key
            .iter()
            .filter(|(_, v)| v.1 == subject)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.index.remove(k);
            if let Some((t, _)) = self.by_key.remove(&k) {
                self.by_template.remove(&t);
            }
        }
    }
}

/// The domain core. Cheap to share (`Arc<Core>`).
pub struct Core {
    db: Db,
    engine: Arc<FaceEngine>,
    keys: Keyring,
    gate: QualityGate,
    transforms: Mutex<HashMap<String, Arc<TemplateTransform>>>,
    galleries: tokio::sync::Mutex<HashMap<String, Gallery>>,
    face_slots: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("db", &self.db.backend())
            .finish_non_exhaustive()
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A fresh random identifier: 128 bits as 32 hex digits (subjects, consents, templates,
/// request ids).
pub fn new_id() -> String {
    random_key()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn key_hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

impl Core {
    /// A core over a migrated database, a loaded engine and the keyring.
    pub fn new(db: Db, engine: Arc<FaceEngine>, keys: Keyring) -> Core {
        Core {
            db,
            engine,
            keys,
            gate: QualityGate::default(),
            transforms: Mutex::new(HashMap::new()),
            galleries: tokio::sync::Mutex::new(HashMap::new()),
            face_slots: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            ),
        }
    }

    fn transform(&self, tenant: &str) -> Arc<TemplateTransform> {
        if let Some(t) = self
            .transforms
            .lock()
            .ok()
            .and_then(|m| m.get(tenant).cloned())
        {
            return t;
        }
        let dim = self.engine.models().models().1.dim();
        let t = Arc::new(TemplateTransform::derive(
            &self.keys.transform_secret(tenant),
            dim,
        ));
        if let Ok(mut m) = self.transforms.lock() {
            m.insert(tenant.to_string(), t.clone());
        }
        t
    }

    /// Creates a tenant and its first admin key; the key is returned once and stored only as
    /// its SHA-256 (keys are 256 random bits, so a fast hash is enough).
    pub async fn bootstrap_tenant(&self, name: &str) -> Result<(String, String), CoreError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(CoreError::Invalid(
                "tenant name must be 1 to 200 characters".into(),
            ));
        }
        let tenant = new_id();
        let key = format!("cs_{}", consentry_vault::key_to_hex(&random_key()).as_str());
        let mut tx = self.db.begin_write().await?;
        let taken = sqlx::query("SELECT id FROM tenants WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(CoreError::AlreadyExists("a tenant with that name"));
        }
        sqlx::query("INSERT INTO tenants (id, name, kek_id, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&tenant)
            .bind(name)
            .bind(self.keys.kek(&tenant).id())
            .bind(now())
            .execute(&mut *tx)
            .await?;
        self.insert_key(&mut tx, &tenant, Role::Admin, &key).await?;
        tx.commit().await?;
        Ok((tenant, key))
    }

    /// For the demo and for recovery on the server's own machine: returns a new admin key for
    /// the tenant named `name`, creating the tenant when it does not exist.
    pub async fn admin_key_for(&self, name: &str) -> Result<(String, String), CoreError> {
        let existing = sqlx::query("SELECT id FROM tenants WHERE name = $1")
            .bind(name.trim())
            .fetch_optional(self.db.pool())
            .await?;
        let Some(row) = existing else {
            return self.bootstrap_tenant(name).await;
        };
        let tenant: String = row.try_get("id")?;
        let key = format!("cs_{}", consentry_vault::key_to_hex(&random_key()).as_str());
        let mut tx = self.db.begin_write().await?;
        self.insert_key(&mut tx, &tenant, Role::Admin, &key).await?;
        tx.commit().await?;
        Ok((tenant, key))
    }

    async fn insert_key(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        tenant: &str,
        role: Role,
        key: &str,
    ) -> Result<(), CoreError> {
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, role, key_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(new_id())
        .bind(tenant)
        .bind(role.as_str())
        .bind(key_hash(key))
        .bind(now())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Issues another key for the caller's tenant (admins only).
    pub async fn create_api_key(&self, p: &Principal, role: Role) -> Result<String, CoreError> {
        p.require(&[Role::Admin])?;
        let key = format!("cs_{}", consentry_vault::key_to_hex(&random_key()).as_str());
        let mut tx = self.db.begin_write().await?;
        self.insert_key(&mut tx, &p.tenant, role, &key).await?;
        tx.commit().await?;
        Ok(key)
    }

    /// Resolves a bearer key to its tenant and role.
    pub async fn authenticate(&self, key: &str) -> Result<Principal, CoreError> {
        if !key.starts_with("cs_") || key.len() != 67 {
            return Err(CoreError::Unauthorized);
        }
        let hash = key_hash(key);
        let row = sqlx::query(
            "SELECT tenant_id, role, key_hash, expires_at, revoked_at FROM api_keys WHERE key_hash = $1",
        )
        .bind(hash.clone())
        .fetch_optional(self.db.pool())
        .await?
        .ok_or(CoreError::Unauthorized)?;
        let stored: Vec<u8> = row.try_get("key_hash")?;
        let expires: Option<i64> = row.try_get("expires_at")?;
        let revoked: Option<i64> = row.try_get("revoked_at")?;
        let same: bool = stored.ct_eq(&hash).into();
        if !same || revoked.is_some() || expires.is_some_and(|e| e <= now()) {
            return Err(CoreError::Unauthorized);
        }
        let role =
            Role::parse(&row.try_get::<String, _>("role")?).ok_or(CoreError::Unauthorized)?;
        Ok(Principal {
            tenant: row.try_get("tenant_id")?,
            role,
        })
    }

    /// Creates a subject with its own data key (stored wrapped by the tenant's KEK).
    pub async fn create_subject(&self, p: &Principal) -> Result<String, CoreError> {
        p.require(&[Role::Admin, Role::Operator])?;
        let subject = new_id();
        let kek = self.keys.kek(&p.tenant);
        let wrapped = kek.wrap(
            &consentry_vault::DataKey::generate(),
            KeyContext {
                tenant: &p.tenant,
                subject: &subject,
            },
        );
        let mut tx = self.db.begin_write().await?;
        sqlx::query("INSERT INTO subjects (id, tenant_id, created_at) VALUES ($1, $2, $3)")
            .bind(&subject)
            .bind(&p.tenant)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO data_keys (subject_id, kek_id, wrapped) VALUES ($1, $2, $3)")
            .bind(&subject)
            .bind(kek.id())
            .bind(wrapped.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(subject)
    }

    /// Deletes a subject: its data key is destroyed in the same transaction as its rows, so
    /// any copy of its ciphertexts (a backup, a replica) can no longer be opened.
    pub async fn delete_subject(&self, p: &Principal, subject: &str) -> Result<(), CoreError> {
        p.require(&[Role::Admin, Role::Operator])?;
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "DELETE FROM data_keys WHERE subject_id IN (SELECT id FROM subjects WHERE id = $1 AND tenant_id = $2)",
        )
        .bind(subject)
        .bind(&p.tenant)
        .execute(&mut *tx)
        .await?;
        let gone = sqlx::query("DELETE FROM subjects WHERE id = $1 AND tenant_id = $2")
            .bind(subject)
            .bind(&p.tenant)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if gone == 0 {
            return Err(CoreError::NotFound);
        }
        record_change(&mut tx, &p.tenant, "remove_subject", None, Some(subject)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A subject's consents and template counts.
    pub async fn subject(&self, p: &Principal, subject: &str) -> Result<SubjectView, CoreError> {
        p.require(&[Role::Admin, Role::Operator])?;
        let row = sqlx::query("SELECT created_at FROM subjects WHERE id = $1 AND tenant_id = $2")
            .bind(subject)
            .bind(&p.tenant)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(CoreError::NotFound)?;
        let consents = sqlx::query(
            "SELECT id, purpose, retention_days, granted_at, withdrawn_at FROM consents \
             WHERE subject_id = $1 AND tenant_id = $2 ORDER BY granted_at, id",
        )
        .bind(subject)
        .bind(&p.tenant)
        .fetch_all(self.db.pool())
        .await?
        .into_iter()
        .map(|r| {
            Ok(ConsentView {
                id: r.try_get("id")?,
                purpose: r.try_get("purpose")?,
                retention_days: r.try_get("retention_days")?,
                granted_at: r.try_get("granted_at")?,
                withdrawn_at: r.try_get("withdrawn_at")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let model = self.template_model();
        let count = |purpose: &'static str, same_model: bool| {
            sqlx::query(
                "SELECT COUNT(*) AS n FROM templates WHERE subject_id = $1 AND tenant_id = $2 \
                 AND ($3 = '' OR purpose = $3) AND expires_at > $4 AND (model = $5) = $6",
            )
            .bind(subject)
            .bind(&p.tenant)
            .bind(purpose)
            .bind(now())
            .bind(model)
            .bind(same_model)
            .fetch_one(self.db.pool())
        };
        Ok(SubjectView {
            id: subject.to_string(),
            created_at: row.try_get("created_at")?,
            consents,
            access_templates: count("access", true).await?.try_get("n")?,
            verification_templates: count("verification", true).await?.try_get("n")?,
            other_model_templates: count("", false).await?.try_get("n")?,
        })
    }

    /// Withdraws a consent. When no other active consent for the same purpose remains, the
    /// templates enrolled for that purpose are deleted in the same transaction.
    pub async fn withdraw_consent(
        &self,
        p: &Principal,
        subject: &str,
        consent: &str,
    ) -> Result<(), CoreError> {
        p.require(&[Role::Admin, Role::Operator])?;
        let mut tx = self.db.begin_write().await?;
        let row = sqlx::query(
            "SELECT purpose FROM consents WHERE id = $1 AND subject_id = $2 AND tenant_id = $3 \
             AND withdrawn_at IS NULL",
        )
        .bind(consent)
        .bind(subject)
        .bind(&p.tenant)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(CoreError::NotFound)?;
        let purpose = Purpose::parse(&row.try_get::<String, _>("purpose")?)?;
        sqlx::query("UPDATE consents SET withdrawn_at = $1 WHERE id = $2")
            .bind(now())
            .bind(consent)
            .execute(&mut *tx)
            .await?;
        let still = match self
            .active_consent(&mut tx, &p.tenant, subject, purpose)
            .await
        {
            Ok(_) => true,
            Err(CoreError::ConsentRequired) => false,
            Err(e) => return Err(e),
        };
        if !still {
            sqlx::query(
                "DELETE FROM templates WHERE subject_id = $1 AND tenant_id = $2 AND purpose = $3",
            )
            .bind(subject)
            .bind(&p.tenant)
            .bind(purpose.as_str())
            .execute(&mut *tx)
            .await?;
            if purpose == Purpose::Access {
                record_change(&mut tx, &p.tenant, "remove_subject", None, Some(subject)).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes every template past its expiry (all tenants: a maintenance job, no read path).
    /// Returns how many were deleted; every node's galleries reload on their next identify.
    pub async fn sweep_expired(&self) -> Result<u64, CoreError> {
        self.sweep_expired_at(now()).await
    }

    /// [`sweep_expired`](Self::sweep_expired) as if the time were `at` (Unix seconds).
    pub async fn sweep_expired_at(&self, at: i64) -> Result<u64, CoreError> {
        let mut tx = self.db.begin_write().await?;
        let gone = sqlx::query("DELETE FROM templates WHERE expires_at <= $1")
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if gone > 0 {
            record_change(&mut tx, "*", "reload", None, None).await?;
        }
        tx.commit().await?;
        Ok(gone)
    }

    /// Registers a card or PIN for a subject; each is unique within the tenant.
    pub async fn add_credential(
        &self,
        p: &Principal,
        subject: &str,
        credential: &Credential,
    ) -> Result<String, CoreError> {
        p.require(&[Role::Admin, Role::Operator])?;
        credential.validate()?;
        let lookup = credential.lookup(&self.keys.credential_key(&p.tenant));
        let id = new_id();
        let mut tx = self.db.begin_write().await?;
        self.subject_in_tenant(&mut tx, &p.tenant, subject).await?;
        let taken = sqlx::query("SELECT id FROM credentials WHERE tenant_id = $1 AND lookup = $2")
            .bind(&p.tenant)
            .bind(lookup.clone())
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(CoreError::AlreadyExists("that credential"));
        }
        sqlx::query(
            "INSERT INTO credentials (id, tenant_id, subject_id, kind, lookup, secret_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(&p.tenant)
        .bind(subject)
        .bind(credential.kind())
        .bind(lookup.clone())
        .bind(lookup)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The access decision from a card or a PIN: the same shape as [`identify`](Self::identify).
    pub async fn decide_credential(
        &self,
        p: &Principal,
        credential: &Credential,
    ) -> Result<Identification, CoreError> {
        let deny = Identification {
            allow: false,
            subject: None,
            score: 0.0,
        };
        if credential.validate().is_err() {
            return Ok(deny);
        }
        let lookup = credential.lookup(&self.keys.credential_key(&p.tenant));
        let row = sqlx::query(
            "SELECT subject_id FROM credentials WHERE tenant_id = $1 AND lookup = $2 AND kind = $3",
        )
        .bind(&p.tenant)
        .bind(lookup)
        .bind(credential.kind())
        .fetch_optional(self.db.pool())
        .await?;
        Ok(match row {
            Some(r) => Identification {
                allow: true,
                subject: Some(r.try_get("subject_id")?),
                score: 1.0,
            },
            None => deny,
        })
    }

    /// Records consent for a purpose and returns the signed receipt.
    pub async fn grant_consent(
        &self,
        p: &Principal,
        subject: &str,
        purpose: Purpose,
        retention_days: i64,
    ) -> Result<ConsentReceipt, CoreError> {
        p.require(&[Role::Admin, Role::Operator])?;
        if !(1..=MAX_RETENTION_DAYS).contains(&retention_days) {
            return Err(CoreError::Invalid(format!(
                "retention_days must be 1 to {MAX_RETENTION_DAYS}"
            )));
        }
        let receipt = ConsentReceipt {
            consent_id: new_id(),
            tenant_id: p.tenant.clone(),
            subject_id: subject.to_string(),
            purpose: purpose.as_str().to_string(),
            retention_days,
            granted_at: now(),
            public_key: String::new(),
            signature: String::new(),
        }
        .sign(&self.keys.receipt_key(&p.tenant));
        let mut tx = self.db.begin_write().await?;
        self.subject_in_tenant(&mut tx, &p.tenant, subject).await?;
        sqlx::query(
            "INSERT INTO consents (id, tenant_id, subject_id, purpose, retention_days, granted_at, receipt) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&receipt.consent_id)
        .bind(&p.tenant)
        .bind(subject)
        .bind(purpose.as_str())
        .bind(retention_days)
        .bind(receipt.granted_at)
        .bind(receipt.canonical())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(receipt)
    }

    async fn subject_in_tenant(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        tenant: &str,
        subject: &str,
    ) -> Result<(), CoreError> {
        sqlx::query("SELECT id FROM subjects WHERE id = $1 AND tenant_id = $2")
            .bind(subject)
            .bind(tenant)
            .fetch_optional(&mut **tx)
            .await?
            .map(|_| ())
            .ok_or(CoreError::NotFound)
    }

    /// The model name stored with, and required of, every template (see
    /// [`consentry_face::ModelSet::template_model`]).
    fn template_model(&self) -> &'static str {
        self.engine.models().template_model()
    }

    async fn data_key(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        tenant: &str,
        subject: &str,
    ) -> Result<consentry_vault::DataKey, CoreError> {
        let row = sqlx::query(
            "SELECT k.wrapped FROM data_keys k JOIN subjects s ON s.id = k.subject_id \
             WHERE s.id = $1 AND s.tenant_id = $2",
        )
        .bind(subject)
        .bind(tenant)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(CoreError::NotFound)?;
        let wrapped = WrappedKey(row.try_get("wrapped")?);
        Ok(self
            .keys
            .kek(tenant)
            .unwrap(&wrapped, KeyContext { tenant, subject })?)
    }

    /// Enrols one face for a purpose the subject consented to. The image passes the quality
    /// gate, is embedded, transformed with the tenant's secret, sealed under the subject's data
    /// key and stored; the image itself is never written anywhere.
    pub async fn enrol_face(
        &self,
        p: &Principal,
        subject: &str,
        purpose: Purpose,
        image: Vec<u8>,
    ) -> Result<String, CoreError> {
        p.require(&[Role::Admin, Role::Operator])?;
        // Cheap checks first, so a request without consent never reaches the face engine.
        let mut tx = self.db.pool().begin().await?;
        self.subject_in_tenant(&mut tx, &p.tenant, subject).await?;
        let retention = self
            .active_consent(&mut tx, &p.tenant, subject, purpose)
            .await?;
        tx.commit().await?;

        let gate = self.gate;
        let embedding = self
            .on_engine(move |engine| {
                let img = engine.decode(&image)?;
                engine.enrol(&img, &gate).map(|(face, _)| face.embedding)
            })
            .await?;
        let protected = self.transform(&p.tenant).apply(&embedding.0)?;

        let template = new_id();
        let t = now();
        let mut tx = self.db.begin_write().await?;
        // Re-checked inside the writing transaction: a consent withdrawn meanwhile wins.
        let retention = retention.min(
            self.active_consent(&mut tx, &p.tenant, subject, purpose)
                .await?,
        );
        let key = self.data_key(&mut tx, &p.tenant, subject).await?;
        let ctx = TemplateContext {
            tenant: &p.tenant,
            subject,
            template: &template,
        };
        sqlx::query(
            "INSERT INTO templates (id, tenant_id, subject_id, purpose, model, sealed, created_at, \
             last_used_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&template)
        .bind(&p.tenant)
        .bind(subject)
        .bind(purpose.as_str())
        .bind(self.template_model())
        .bind(key.seal_template(ctx, &protected))
        .bind(t)
        .bind(t)
        .bind(t + retention.min(MAX_RETENTION_DAYS) * 86_400)
        .execute(&mut *tx)
        .await?;
        if purpose == Purpose::Access {
            record_change(&mut tx, &p.tenant, "add", Some(&template), Some(subject)).await?;
        }
        tx.commit().await?;
        Ok(template)
    }

    /// Access templates of a tenant (or only `only`) with an active access consent, opened
    /// with their subjects' data keys and added to `gallery`.
    async fn open_access_templates(
        &self,
        tenant: &str,
        only: Option<&str>,
        gallery: &mut Gallery,
    ) -> Result<(), CoreError> {
        let rows = sqlx::query(
            "SELECT t.id, t.subject_id, t.sealed, k.wrapped FROM templates t \
             JOIN data_keys k ON k.subject_id = t.subject_id \
             WHERE t.tenant_id = $1 AND t.purpose = 'access' AND t.expires_at > $2 \
             AND ($3 = '' OR t.id = $3) AND t.model = $4 \
             AND EXISTS (SELECT 1 FROM consents c WHERE c.tenant_id = t.tenant_id \
             AND c.subject_id = t.subject_id AND c.purpose = 'access' AND c.withdrawn_at IS NULL)",
        )
        .bind(tenant)
        .bind(now())
        .bind(only.unwrap_or(""))
        .bind(self.template_model())
        .fetch_all(self.db.pool())
        .await?;
        let kek = self.keys.kek(tenant);
        for row in rows {
            let (id, subject): (String, String) = (row.try_get("id")?, row.try_get("subject_id")?);
            let ctx = KeyContext {
                tenant,
                subject: &subject,
            };
            let key = kek.unwrap(&WrappedKey(row.try_get("wrapped")?), ctx)?;
            let ctx = TemplateContext {
                tenant,
                subject: &subject,
                template: &id,
            };
            let template = key.open_template(ctx, &row.try_get::<Vec<u8>, _>("sealed")?)?;
            gallery.add(&id, &subject, &template);
        }
        Ok(())
    }

    /// Loads a tenant's whole gallery from the vault. The change sequence is read first, so a
    /// change committed during the load is applied again afterwards (applying is idempotent).
    async fn load_gallery(&self, tenant: &str) -> Result<Gallery, CoreError> {
        let seq: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS s FROM gallery_changes")
            .fetch_one(self.db.pool())
            .await?
            .try_get("s")?;
        let mut gallery = Gallery::new(self.engine.models().models().1.dim());
        gallery.seq = seq;
        self.open_access_templates(tenant, None, &mut gallery)
            .await?;
        Ok(gallery)
    }

    /// Brings a gallery up to date with the changes made since it was loaded, by this node or
    /// any other on the same database: one indexed query when nothing changed. This is how two
    /// server processes on one PostgreSQL database stay in step.
    async fn sync_gallery(&self, tenant: &str, gallery: &mut Gallery) -> Result<(), CoreError> {
        let changes = sqlx::query(
            "SELECT seq, op, template_id, subject_id FROM gallery_changes \
             WHERE (tenant_id = $1 OR tenant_id = '*') AND seq > $2 ORDER BY seq",
        )
        .bind(tenant)
        .bind(gallery.seq)
        .fetch_all(self.db.pool())
        .await?;
        for c in changes {
            let seq: i64 = c.try_get("seq")?;
            match c.try_get::<String, _>("op")?.as_str() {
                "add" => {
                    let template: Option<String> = c.try_get("template_id")?;
                    let only = template.as_deref().unwrap_or("-");
                    self.open_access_templates(tenant, Some(only), gallery)
                        .await?;
                }
                "remove_subject" => {
                    if let Some(subject) = c.try_get::<Option<String>, _>("subject_id")? {
                        gallery.remove_subject(&subject);
                    }
                }
                _ => *gallery = self.load_gallery(tenant).await?,
            }
            gallery.seq = gallery.seq.max(seq);
        }
        Ok(())
    }

    /// The primary face of a probe image, embedded (off the async threads) and transformed with
    /// the tenant's secret, ready to compare with its templates.
    async fn probe(&self, tenant: &str, image: Vec<u8>) -> Result<Vec<f32>, CoreError> {
        let embedding = self
            .on_engine(move |engine| {
                let img = engine.decode(&image)?;
                engine.embed_primary(&img).map(|f| f.embedding)
            })
            .await?;
        Ok(self.transform(tenant).apply(&embedding.0)?)
    }

    /// Runs face work on the blocking pool, at most one job per core at a time: more would only
    /// queue inside the CPU, and every extra ONNX Runtime session costs tens of megabytes.
    async fn on_engine<T: Send + 'static>(
        &self,
        work: impl FnOnce(&FaceEngine) -> Result<T, consentry_face::FaceError> + Send + 'static,
    ) -> Result<T, CoreError> {
        let _permit = self
            .face_slots
            .acquire()
            .await
            .map_err(|e| CoreError::Invalid(format!("face engine closed: {e}")))?;
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || work(&engine))
            .await
            .map_err(|e| CoreError::Invalid(format!("face task: {e}")))?
            .map_err(CoreError::from)
    }

    /// 1:N at a gate: is this face one of the tenant's consenting, enrolled people? Searches the
    /// tenant's own gallery only. A face that matches no one is dropped here: nothing about it
    /// is stored or logged, only the `deny` is returned.
    pub async fn identify(
        &self,
        p: &Principal,
        image: Vec<u8>,
    ) -> Result<Identification, CoreError> {
        let probe = self.probe(&p.tenant, image).await?;
        let best = {
            // One async lock: a gallery is loaded once, and changes are applied in order.
            let mut galleries = self.galleries.lock().await;
            let gallery = match galleries.entry(p.tenant.clone()) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(self.load_gallery(&p.tenant).await?)
                }
            };
            self.sync_gallery(&p.tenant, gallery).await?;
            gallery
                .index
                .search(&probe, 1)
                .into_iter()
                .next()
                .and_then(|hit| {
                    gallery
                        .by_key
                        .get(&hit.id)
                        .map(|(t, s)| (t.clone(), s.clone(), hit.score))
                })
        };
        let deny = |score| Identification {
            allow: false,
            subject: None,
            score,
        };
        let Some((template, subject, score)) = best else {
            return Ok(deny(0.0));
        };
        if score < self.engine.default_threshold() {
            return Ok(deny(score));
        }
        // The database has the last word: a template deleted, expired or without consent (on
        // this node or another) never grants access, whatever the in-memory index holds.
        let live = sqlx::query(
            "SELECT t.last_used_at FROM templates t WHERE t.id = $1 AND t.tenant_id = $2 \
             AND t.expires_at > $3 \
             AND EXISTS (SELECT 1 FROM consents c WHERE c.tenant_id = t.tenant_id \
             AND c.subject_id = t.subject_id AND c.purpose = 'access' AND c.withdrawn_at IS NULL)",
        )
        .bind(&template)
        .bind(&p.tenant)
        .bind(now())
        .fetch_optional(self.db.pool())
        .await?;
        let Some(live) = live else {
            return Ok(deny(0.0));
        };
        self.touch_template(&p.tenant, &template, live.try_get("last_used_at")?)
            .await?;
        Ok(Identification {
            allow: true,
            subject: Some(subject),
            score,
        })
    }

    /// Records a successful use of a template: its retention period starts again from now (the
    /// period is kept as `expires_at - last_used_at`, set at enrolment from the consent). At
    /// most one write a day per template, so a busy gate does not turn every match into a
    /// write.
    async fn touch_template(
        &self,
        tenant: &str,
        template: &str,
        last_used: i64,
    ) -> Result<(), CoreError> {
        let t = now();
        if t - last_used < TOUCH_INTERVAL_SECS {
            return Ok(());
        }
        sqlx::query(
            "UPDATE templates SET expires_at = $1 + (expires_at - last_used_at), last_used_at = $1 \
             WHERE id = $2 AND tenant_id = $3 AND last_used_at = $4 AND expires_at > $1",
        )
        .bind(t)
        .bind(template)
        .bind(tenant)
        .bind(last_used)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// The retention in days of the subject's active consent for `purpose`.
    async fn active_consent(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        tenant: &str,
        subject: &str,
        purpose: Purpose,
    ) -> Result<i64, CoreError> {
        let row = sqlx::query(
            "SELECT MAX(retention_days) AS days FROM consents WHERE tenant_id = $1 AND subject_id = $2 \
             AND purpose = $3 AND withdrawn_at IS NULL",
        )
        .bind(tenant)
        .bind(subject)
        .bind(purpose.as_str())
        .fetch_one(&mut **tx)
        .await?;
        row.try_get::<Option<i64>, _>("days")?
            .ok_or(CoreError::ConsentRequired)
    }

    /// 1:1: does the face in `image` belong to `subject`? Compares against the subject's live
    /// verification templates in the caller's tenant.
    pub async fn verify(
        &self,
        p: &Principal,
        subject: &str,
        image: Vec<u8>,
    ) -> Result<Decision, CoreError> {
        let probe = self.probe(&p.tenant, image).await?;

        let mut tx = self.db.pool().begin().await?;
        let deny = Decision {
            allow: false,
            score: 0.0,
        };
        let key = match self.data_key(&mut tx, &p.tenant, subject).await {
            Ok(k) => k,
            Err(CoreError::NotFound) => return Ok(deny),
            Err(e) => return Err(e),
        };
        let rows = sqlx::query(
            "SELECT t.id, t.sealed, t.last_used_at FROM templates t \
             WHERE t.tenant_id = $1 AND t.subject_id = $2 \
             AND t.purpose = 'verification' AND t.expires_at > $3 AND t.model = $4 \
             AND EXISTS (SELECT 1 FROM consents c \
             WHERE c.tenant_id = t.tenant_id AND c.subject_id = t.subject_id \
             AND c.purpose = 'verification' AND c.withdrawn_at IS NULL)",
        )
        .bind(&p.tenant)
        .bind(subject)
        .bind(now())
        .bind(self.template_model())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut best = f32::NEG_INFINITY;
        let mut best_template = None;
        for row in rows {
            let id: String = row.try_get("id")?;
            let sealed: Vec<u8> = row.try_get("sealed")?;
            let ctx = TemplateContext {
                tenant: &p.tenant,
                subject,
                template: &id,
            };
            let template = key.open_template(ctx, &sealed)?;
            let score: f32 = template.iter().zip(&probe).map(|(a, b)| a * b).sum();
            if score > best {
                best = score;
                best_template = Some((id, row.try_get::<i64, _>("last_used_at")?));
            }
        }
        let Some((template, last_used)) = best_template else {
            return Ok(deny);
        };
        let allow = best >= self.engine.default_threshold();
        if allow {
            self.touch_template(&p.tenant, &template, last_used).await?;
        }
        Ok(Decision { allow, score: best })
    }
}

/// Appends a gallery change inside the caller's transaction.
async fn record_change(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant: &str,
    op: &str,
    template: Option<&str>,
    subject: Option<&str>,
) -> Result<(), CoreError> {
    sqlx::query(
        "INSERT INTO gallery_changes (tenant_id, op, template_id, subject_id) VALUES ($1, $2, $3, $4)",
    )
    .bind(tenant)
    .bind(op)
    .bind(template)
    .bind(subject)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
