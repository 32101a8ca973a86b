//! The [`Core`]: what every action shares (database, engine, keyring, galleries), and the
//! helpers they share. The actions themselves are in `actions/`, one file per resource.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use consentry_db::Db;
use consentry_face::{FaceEngine, QualityGate};
use consentry_vault::{random_key, DataKey, KeyContext, TemplateContext, TemplateTransform};

use crate::store::{self, Conn};
use crate::{CoreError, Keyring};

/// Longest retention any template gets, whatever the consent says: three years. A template is
/// kept for its consent's `retention_days` after its last successful match (or its enrolment),
/// and the sweeper deletes it after that.
pub(crate) const MAX_RETENTION_DAYS: i64 = 3 * 365;

/// The domain core. Cheap to share (`Arc<Core>`).
pub struct Core {
    pub(crate) db: Db,
    pub(crate) engine: Arc<FaceEngine>,
    /// The speaker engine, when loaded (voice enrolment and decisions need it).
    pub(crate) voice: Option<Arc<consentry_voice::VoiceEngine>>,
    pub(crate) keys: Keyring,
    pub(crate) gate: QualityGate,
    /// Each tenant's transforms, by generation and dimension (the face's and the voice's).
    transforms: Mutex<HashMap<(String, i64, usize), Arc<TemplateTransform>>>,
    /// Each tenant's gallery: the map's lock is held only to look one up or insert it.
    pub(crate) galleries: Mutex<HashMap<String, crate::gallery::Shared>>,
    /// One worker thread per core for face and voice jobs, and their queue
    /// ([`Core::on_engine`]).
    engine_pool: crate::engine_pool::EnginePool,
    /// How much engine work may wait for a core, and for how long.
    queue: EngineQueue,
    /// Stand-ins for a missing key and missing templates, so every verification does the same
    /// work (see `actions/verification.rs`).
    pub(crate) decoy: Decoy,
    /// The same for voice templates.
    pub(crate) voice_decoy: Decoy,
    /// The abuse rules and their state.
    pub(crate) guard: crate::abuse::Guard,
    /// Days a venue check-in is kept.
    pub(crate) checkin_retention_days: i64,
    /// The liveness models, when loaded, and the actions a challenge may ask for.
    pub(crate) liveness: Option<Arc<crate::LivenessModels>>,
    pub(crate) liveness_actions: Vec<consentry_face::challenge::Action>,
    /// The key-encryption-key epoch last seen current, and a decoy data key wrapped under it
    /// for another tenant and subject: unwrapped in place of an unknown subject's, it does the
    /// same work and fails at the tag.
    pub(crate) current_kek: Mutex<(String, Vec<u8>)>,
}

/// Face and voice jobs run one per core at a time ([`Core::on_engine`]).
fn engine_slots() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Bounds on the face and voice work waiting for a core (`serve --engine-queue`,
/// `--engine-wait-ms`). A request beyond them is refused with `overloaded` (503 with
/// `Retry-After`): a client retries later instead of every request slowing down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineQueue {
    /// Jobs that may wait for a core at once; the next one is refused.
    pub max_waiting: usize,
    /// Longest a job waits for a core before it is refused.
    pub max_wait: std::time::Duration,
}

impl Default for EngineQueue {
    /// Four waiting jobs per core (on 2 cores at 10–20 ms a photo, under 100 ms of waiting),
    /// and one second at most (for slower voice jobs).
    fn default() -> Self {
        EngineQueue {
            max_waiting: 4 * engine_slots(),
            max_wait: std::time::Duration::from_secs(1),
        }
    }
}

/// A data key and a sealed template that belong to no one, opened in place of a subject's
/// when it has fewer templates than a verification compares with.
pub(crate) struct Decoy {
    key: DataKey,
    sealed: Vec<u8>,
}

const DECOY_CONTEXT: TemplateContext<'static> = TemplateContext {
    tenant: "decoy",
    subject: "decoy",
    template: "decoy",
    purpose: "verification",
    model: "decoy",
    last_used_at: 0,
    expires_at: 0,
};

impl Decoy {
    fn new(dim: usize) -> Result<Decoy, CoreError> {
        let key = DataKey::generate();
        let sealed = key.seal_template(DECOY_CONTEXT, &vec![0.0; dim])?;
        Ok(Decoy { key, sealed })
    }

    /// Opens the decoy template (the work of opening a real one).
    pub(crate) fn open(&self) -> Result<zeroize::Zeroizing<Vec<f32>>, CoreError> {
        Ok(self.key.open_template(DECOY_CONTEXT, &self.sealed)?)
    }
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("db", &self.db.backend())
            .finish_non_exhaustive()
    }
}

/// Unix seconds now.
pub(crate) fn now() -> i64 {
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

impl Core {
    /// A core over a migrated database, a loaded engine and the keyring. Checks that the key
    /// store is the database's (binding a new pair), makes the first key-encryption-key epoch,
    /// and upgrades old template envelopes.
    pub async fn new(db: Db, engine: Arc<FaceEngine>, keys: Keyring) -> Result<Core, CoreError> {
        let decoy = Decoy::new(engine.models().models().1.dim())?;
        let core = Core {
            db,
            engine,
            voice: None,
            voice_decoy: Decoy::new(consentry_voice::DIM)?,
            keys,
            gate: QualityGate::default(),
            transforms: Mutex::new(HashMap::new()),
            galleries: Mutex::new(HashMap::new()),
            engine_pool: crate::engine_pool::EnginePool::new(engine_slots())?,
            queue: EngineQueue::default(),
            decoy,
            guard: crate::abuse::Guard::new(crate::AbuseRules::default()),
            checkin_retention_days: crate::CHECKIN_RETENTION_DAYS,
            current_kek: Mutex::new((String::new(), Vec::new())),
            liveness: None,
            liveness_actions: {
                use consentry_face::challenge::Action;
                vec![
                    Action::Blink,
                    Action::TurnLeft,
                    Action::TurnRight,
                    Action::LookUp,
                ]
            },
        };
        core.bind_key_store().await?;
        Ok(core)
    }

    /// Closes the database pool, waiting for the connections in use to be returned (at shutdown,
    /// after the server drained its requests).
    pub async fn close(&self) {
        self.db.pool().close().await;
    }

    /// The tenant's secret template transform of generation `generation` for templates of
    /// `dim` numbers (the face's and the voice's differ; derived once, then cached; a re-key
    /// drops the older ones).
    pub(crate) fn transform(
        &self,
        tenant: &str,
        generation: i64,
        dim: usize,
    ) -> Arc<TemplateTransform> {
        let key = (tenant.to_string(), generation, dim);
        if let Some(t) = self
            .transforms
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return t;
        }
        let t = Arc::new(TemplateTransform::derive(
            &self.keys.transform_secret(tenant, generation),
            dim,
        ));
        if let Ok(mut m) = self.transforms.lock() {
            m.retain(|(t, g, _), _| t != tenant || *g >= generation - 1);
            m.insert(key, t.clone());
        }
        t
    }

    /// The model name stored with, and required of, every template (see
    /// [`consentry_face::ModelSet::template_model`]).
    pub fn template_model(&self) -> &'static str {
        self.engine.models().template_model()
    }

    /// Fails with `not_found` unless `subject` is one of `tenant`'s.
    pub(crate) async fn subject_in_tenant(
        &self,
        c: &mut Conn,
        tenant: &str,
        subject: &str,
    ) -> Result<(), CoreError> {
        store::subjects::created_at(c, tenant, subject)
            .await?
            .map(|_| ())
            .ok_or(CoreError::NotFound)
    }

    /// `NotFound` unless the tenant exists (for the public endpoints that name one).
    pub(crate) async fn tenant_exists(&self, c: &mut Conn, tenant: &str) -> Result<(), CoreError> {
        if store::tenants::exists(c, tenant).await? {
            Ok(())
        } else {
            Err(CoreError::NotFound)
        }
    }

    /// A subject's data key, unwrapped with the tenant's KEK of its epoch.
    pub(crate) async fn data_key(
        &self,
        c: &mut Conn,
        tenant: &str,
        subject: &str,
    ) -> Result<consentry_vault::DataKey, CoreError> {
        let (kek_id, wrapped) = store::data_keys::wrapped(c, tenant, subject)
            .await?
            .ok_or(CoreError::NotFound)?;
        self.keys
            .unwrap(&kek_id, KeyContext { tenant, subject }, &wrapped)
    }

    /// The retention in days of the subject's active consent for `purpose`.
    pub(crate) async fn active_consent(
        &self,
        c: &mut Conn,
        tenant: &str,
        subject: &str,
        purpose: crate::Purpose,
    ) -> Result<i64, CoreError> {
        store::consents::active_retention(c, tenant, subject, purpose.as_str())
            .await?
            .ok_or(CoreError::ConsentRequired)
    }

    /// The primary face of a probe image, embedded off the async threads; to be transformed
    /// with the tenant's secret of the generation its templates are in. Wiped from memory when
    /// dropped.
    pub(crate) async fn probe(
        &self,
        image: Vec<u8>,
    ) -> Result<zeroize::Zeroizing<Vec<f32>>, CoreError> {
        let embedding = self
            .on_engine(move |engine| {
                let img = engine.decode(&image)?;
                engine.embed_primary(&img).map(|f| f.embedding)
            })
            .await?;
        Ok(zeroize::Zeroizing::new(embedding.0.clone()))
    }

    /// Loads the speaker engine: voice enrolment and decisions answer `model_unavailable`
    /// without it.
    pub fn set_voice(&mut self, engine: consentry_voice::VoiceEngine) {
        self.voice = Some(Arc::new(engine));
    }

    /// A recording's speaker embedding, made off the async threads in the same slots as the
    /// face work; wiped from memory when dropped.
    pub(crate) async fn voice_probe(
        &self,
        audio: Vec<u8>,
    ) -> Result<zeroize::Zeroizing<Vec<f32>>, CoreError> {
        let voice = self.voice.clone().ok_or_else(|| {
            CoreError::Face(consentry_face::FaceError::ModelUnavailable(
                "the voice model is not loaded on this server".into(),
            ))
        })?;
        let embedding = self
            .engine_pool
            .run(self.queue, move || voice.embed(&audio))
            .await??;
        Ok(zeroize::Zeroizing::new(embedding.0))
    }

    /// Sets the bounds of the engine queue (see [`EngineQueue`]).
    pub fn set_engine_queue(&mut self, queue: EngineQueue) {
        self.queue = queue;
    }

    /// Whether a job of face or voice work would be admitted now (a core free, or room in the
    /// queue): a cheap early answer for a request that is about to need one.
    pub fn engine_has_room(&self) -> bool {
        self.engine_pool.has_room(self.queue)
    }

    /// Runs face work on the engine's workers, one job per core at a time: more would only
    /// queue inside the CPU, and every extra ONNX Runtime session costs tens of megabytes.
    /// A job waits in a bounded queue for a bounded time, else it is refused with `overloaded`
    /// before any work is done ([`EngineQueue`]). It holds its core until its work ends, even
    /// when the request is cancelled first (its client went away): the work cannot be stopped
    /// half-way, so a core freed then would start a second job on a busy CPU, and a session
    /// pool would grow a session for it. A request cancelled while it waits is never run.
    pub(crate) async fn on_engine<T: Send + 'static>(
        &self,
        work: impl FnOnce(&FaceEngine) -> Result<T, consentry_face::FaceError> + Send + 'static,
    ) -> Result<T, CoreError> {
        let engine = self.engine.clone();
        self.engine_pool
            .run(self.queue, move || work(&engine))
            .await?
            .map_err(CoreError::from)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use consentry_testkit::{engine, Scratch};

    use super::{engine_slots, Core, EngineQueue};
    use crate::engine_pool::tests::{until, wait_for, Gate, Opens};
    use crate::{CoreError, Keyring};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_request_keeps_its_core_until_its_work_ends() {
        let scratch = Scratch::new("core_cancel").await;
        let db = consentry_db::Db::open(&scratch.sqlite_url("c"))
            .await
            .unwrap();
        let (keys, _) = Keyring::open(&scratch.key_dir("c")).unwrap();
        let mut core = Core::new(db, engine(), keys).await.unwrap();
        core.set_engine_queue(EngineQueue {
            max_waiting: 0,
            max_wait: Duration::from_millis(1),
        });
        let core = Arc::new(core);
        // One job per core, each blocked in its work until the gate opens (on every way out
        // of the test, so a failing assertion cannot leave the runtime waiting on them).
        let gate = Gate::new();
        let opens = Opens(gate.clone());
        let started = Arc::new(AtomicUsize::new(0));
        let jobs: Vec<_> = (0..engine_slots())
            .map(|_| {
                let (core, gate, started) = (core.clone(), gate.clone(), started.clone());
                tokio::spawn(async move {
                    core.on_engine(move |_| {
                        started.fetch_add(1, Ordering::SeqCst);
                        wait_for(&gate);
                        Ok(())
                    })
                    .await
                })
            })
            .collect();
        until("every job started", || {
            started.load(Ordering::SeqCst) == engine_slots()
        })
        .await;
        assert!(!core.engine_has_room());
        // Their requests are cancelled; the work goes on, so the cores stay taken.
        for job in jobs {
            job.abort();
            assert!(job.await.unwrap_err().is_cancelled());
        }
        assert!(!core.engine_has_room());
        let refused = core.on_engine(|_| Ok(())).await;
        assert!(matches!(refused, Err(CoreError::Overloaded)), "{refused:?}");
        // The work ends: the cores are free again.
        drop(opens);
        until("the cores freed", || core.engine_has_room()).await;
        assert_eq!(core.on_engine(|_| Ok(7)).await.unwrap(), 7);
        scratch.finish().await;
    }
}
