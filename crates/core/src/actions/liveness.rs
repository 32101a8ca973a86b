//! Liveness: a random challenge, answered once with a burst of frames, judged by the face
//! engine's passive and active checks; a pass gives a short-lived, single-use token that an
//! enrolment or a verification of the same subject, by the same key, with the same face, can
//! present when the tenant's policy needs one for that purpose.

use std::sync::Arc;

use consentry_face::challenge::{judge, observe, Action, Checks, Rules};
use consentry_face::pad::{ChallengeModels, PassiveDetector};
use consentry_vault::{DataKey, TemplateContext};
use hmac::Mac;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::audit::{self, Record};
use crate::core::{new_id, now};
use crate::store::{self, Conn};
use crate::{Core, CoreError, Principal, Purpose, Role};

/// Seconds a challenge may wait for its answer.
pub const CHALLENGE_SECONDS: i64 = 60;
/// Seconds the frames of an answer may span.
pub const DEADLINE_SECONDS: f32 = 6.0;
/// Seconds a liveness token stays usable.
pub const TOKEN_SECONDS: i64 = 120;
/// The most frames an answer may carry.
pub const MAX_FRAMES: usize = 40;

/// The models the checks run on (loaded by the server at start).
pub struct LivenessModels {
    /// The passive check.
    pub passive: PassiveDetector,
    /// Pose, landmarks and eyes.
    pub challenge: ChallengeModels,
}

impl std::fmt::Debug for LivenessModels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LivenessModels")
    }
}

/// A challenge, as shown to the person.
#[derive(Debug, Clone, Serialize)]
pub struct LivenessChallenge {
    /// Single use: the answer names it.
    pub nonce: String,
    /// The actions, in order.
    pub actions: Vec<Action>,
    /// The same in plain words.
    pub instructions: Vec<&'static str>,
    /// Seconds the answer's frames may span.
    pub deadline_seconds: f32,
    /// Unix seconds after which the challenge is void.
    pub expires_at: i64,
}

/// One frame of an answer.
#[derive(Debug, Clone)]
pub struct LivenessFrame {
    /// Milliseconds since the first frame.
    pub t_ms: u32,
    /// A JPEG or PNG, as the person saw themselves (a mirror image).
    pub image: Vec<u8>,
}

/// The judgement of an answer.
#[derive(Debug, Clone, Serialize)]
pub struct LivenessResult {
    /// Every check passed.
    pub pass: bool,
    /// Each check.
    pub checks: Checks,
    /// Why not, in words.
    pub reasons: Vec<String>,
    /// On a pass: the token for one enrolment or verification of this subject.
    pub token: Option<String>,
    /// When the token expires (Unix seconds).
    pub token_expires_at: Option<i64>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Core {
    /// Loads the liveness models and the actions a challenge may ask for (all four by default;
    /// fewer for a site that must, e.g. blink only for people who cannot turn their head).
    pub fn set_liveness(&mut self, models: LivenessModels, actions: Vec<Action>) {
        self.liveness = Some(Arc::new(models));
        if !actions.is_empty() {
            self.liveness_actions = actions;
        }
    }

    fn token_mac(&self, tenant: &str, body: &str) -> String {
        let key = self.keys.liveness_key(tenant);
        match hmac::Hmac::<Sha256>::new_from_slice(key.as_ref()) {
            Ok(mut m) => {
                m.update(body.as_bytes());
                hex(&m.finalize().into_bytes()[..16])
            }
            Err(_) => String::new(),
        }
    }

    /// Issues a challenge for `subject` (one of the caller's tenant's), to be answered by this
    /// key within [`CHALLENGE_SECONDS`]: two or three actions in a random order, no action
    /// twice in a row.
    pub async fn liveness_challenge(
        &self,
        p: &Principal,
        subject: &str,
    ) -> Result<LivenessChallenge, CoreError> {
        p.require(&[Role::Admin, Role::Operator, Role::Device])?;
        let allowed = &self.liveness_actions;
        let random = consentry_vault::random_key();
        let count = if allowed.len() == 1 {
            1
        } else {
            2 + usize::from(random[0] % 2)
        };
        let mut actions: Vec<Action> = Vec::with_capacity(count);
        for r in random[1..].iter().copied() {
            if actions.len() == count {
                break;
            }
            let a = allowed[usize::from(r) % allowed.len()];
            if actions.last() != Some(&a) {
                actions.push(a);
            }
        }
        let nonce = format!("lc_{}{}", new_id(), new_id());
        let id = hex(&Sha256::digest(nonce.as_bytes()));
        let t = now();
        let names: Vec<String> = actions
            .iter()
            .map(|a| {
                serde_json::to_value(a)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            })
            .collect();
        let mut tx = self.db.begin_write().await?;
        self.subject_in_tenant(&mut tx, &p.tenant, subject).await?;
        let row = store::liveness::NewChallenge {
            id: &id,
            key: &p.key,
            subject,
            actions: &names.join(","),
            created_at: t,
            expires_at: t + CHALLENGE_SECONDS,
        };
        store::liveness::insert(&mut tx, &p.tenant, row).await?;
        tx.commit().await?;
        Ok(LivenessChallenge {
            nonce,
            instructions: actions.iter().map(|a| a.instruction()).collect(),
            actions,
            deadline_seconds: DEADLINE_SECONDS,
            expires_at: t + CHALLENGE_SECONDS,
        })
    }

    /// Judges the answer to a challenge: taken once (a second answer, another key's or a late
    /// one is `challenge_expired`), whatever the frames show. On a pass, the token, and the face
    /// the frames showed kept sealed until the token is used or expires.
    pub async fn liveness_answer(
        &self,
        p: &Principal,
        nonce: &str,
        frames: Vec<LivenessFrame>,
    ) -> Result<LivenessResult, CoreError> {
        p.require(&[Role::Admin, Role::Operator, Role::Device])?;
        let models = self.liveness.clone().ok_or_else(|| {
            CoreError::Face(consentry_face::FaceError::ModelUnavailable(
                "the liveness models are not loaded".into(),
            ))
        })?;
        if frames.is_empty() || frames.len() > MAX_FRAMES {
            return Err(CoreError::Invalid(format!(
                "an answer has 1 to {MAX_FRAMES} frames"
            )));
        }
        if frames.windows(2).any(|w| w[1].t_ms <= w[0].t_ms) {
            return Err(CoreError::Invalid("frame times must increase".into()));
        }
        let id = hex(&Sha256::digest(nonce.as_bytes()));
        let mut tx = self.db.begin_write().await?;
        let (subject, actions, _) = store::liveness::take(&mut tx, &p.tenant, &id, &p.key, now())
            .await?
            .ok_or(CoreError::ChallengeExpired)?;
        tx.commit().await?;
        let asked: Vec<Action> = Action::parse_list(&actions).map_err(CoreError::Internal)?;
        let threshold = models.passive.profile().default_threshold();
        let judged = self
            .on_engine(move |engine| {
                let mut seen = Vec::with_capacity(frames.len());
                for f in &frames {
                    let img = engine.decode(&f.image)?;
                    seen.push(observe(
                        engine,
                        &models.passive,
                        &models.challenge,
                        &img,
                        f.t_ms as f32 / 1000.0,
                    )?);
                }
                let rules = Rules {
                    passive: threshold,
                    deadline_s: Some(DEADLINE_SECONDS),
                    ..Rules::default()
                };
                let verdict = judge(&seen, &asked, &rules);
                // The face the frames showed: the mean of those facing the camera.
                let frontal: Vec<&Vec<f32>> =
                    seen.iter().filter_map(|f| f.embedding.as_ref()).collect();
                let dim = frontal.first().map_or(0, |e| e.len());
                let mut mean = vec![0f32; dim];
                for e in &frontal {
                    for (m, x) in mean.iter_mut().zip(e.iter()) {
                        *m += x;
                    }
                }
                let norm = mean
                    .iter()
                    .map(|x| x * x)
                    .sum::<f32>()
                    .sqrt()
                    .max(f32::MIN_POSITIVE);
                mean.iter_mut().for_each(|x| *x /= norm);
                Ok((verdict, zeroize::Zeroizing::new(mean)))
            })
            .await?;
        let (verdict, face) = judged;
        let t = now();
        let mut tx = self.db.begin_write().await?;
        let (token, token_expires_at, sealed) = if verdict.pass {
            let exp = t + TOKEN_SECONDS;
            let generation = store::tenants::transform_gen(&mut tx, &p.tenant).await?;
            let protected = self
                .transform(&p.tenant, generation, face.len())
                .apply(&face)?;
            let key = DataKey::from_bytes(*self.keys.liveness_key(&p.tenant));
            let sealed =
                key.seal_template(liveness_context(&p.tenant, &subject, &id, exp), &protected)?;
            let body = format!("{id}.{exp}");
            let mac = self.token_mac(&p.tenant, &format!("{body}.{}.{subject}", p.key));
            (Some(format!("lt_{body}.{mac}")), Some(exp), Some(sealed))
        } else {
            (None, None, None)
        };
        store::liveness::record(&mut tx, &id, verdict.pass, sealed, token_expires_at).await?;
        let r = Record {
            action: "liveness.check",
            target: Some(&subject),
            outcome: if verdict.pass { "pass" } else { "fail" },
            detail: Some(format!(
                "actions={actions} checks=actions:{},same_face:{},timing:{},passive:{}",
                verdict.checks.actions,
                verdict.checks.same_face,
                verdict.checks.timing,
                verdict.checks.passive
            )),
        };
        audit::record(&mut tx, p, r).await?;
        tx.commit().await?;
        Ok(LivenessResult {
            pass: verdict.pass,
            checks: verdict.checks,
            reasons: verdict.reasons,
            token,
            token_expires_at,
        })
    }

    /// Sets whether `purpose` needs a fresh liveness result for enrolment and verification.
    pub async fn set_liveness_policy(
        &self,
        p: &Principal,
        purpose: Purpose,
        required: bool,
    ) -> Result<(), CoreError> {
        p.require(&[Role::Admin])?;
        let mut tx = self.db.begin_write().await?;
        store::liveness::set_policy(&mut tx, &p.tenant, purpose.as_str(), required).await?;
        let r = Record::ok("liveness.policy", None)
            .detail(format!("purpose={} required={required}", purpose.as_str()));
        audit::record(&mut tx, p, r).await?;
        tx.commit().await?;
        Ok(())
    }

    /// [`check_liveness`](Self::check_liveness) in a write transaction of its own, taken only
    /// when the policy needs liveness (`required`, read by the caller with its other reads).
    pub(crate) async fn liveness_if_required(
        &self,
        p: &Principal,
        subject: &str,
        purpose: Purpose,
        raw: &[f32],
        required: bool,
    ) -> Result<bool, CoreError> {
        if !required {
            return Ok(false);
        }
        let mut tx = self.db.begin_write().await?;
        let held = self
            .check_liveness(&mut tx, p, subject, purpose, raw)
            .await?;
        tx.commit().await?;
        Ok(held)
    }

    /// When the tenant's policy needs liveness for `purpose`: the request's token must be a
    /// valid, unused one of this key for this subject, and the face it was given for must match
    /// `raw` (the probe or the face being enrolled). The token is spent in `c`'s transaction.
    /// Returns whether a liveness result was required (and held).
    pub(crate) async fn check_liveness(
        &self,
        c: &mut Conn,
        p: &Principal,
        subject: &str,
        purpose: Purpose,
        raw: &[f32],
    ) -> Result<bool, CoreError> {
        if !store::liveness::required(c, &p.tenant, purpose.as_str()).await? {
            return Ok(false);
        }
        let token = p.liveness.as_deref().ok_or(CoreError::LivenessRequired)?;
        let parts: Vec<&str> = token.strip_prefix("lt_").unwrap_or("").split('.').collect();
        let [id, exp, mac] = parts[..] else {
            return Err(CoreError::LivenessRequired);
        };
        let expected = self.token_mac(&p.tenant, &format!("{id}.{exp}.{}.{subject}", p.key));
        let exp: i64 = exp.parse().map_err(|_| CoreError::LivenessRequired)?;
        if !bool::from(expected.as_bytes().ct_eq(mac.as_bytes())) || exp <= now() {
            return Err(CoreError::LivenessRequired);
        }
        let sealed = store::liveness::use_token(c, &p.tenant, id, &p.key, subject, now())
            .await?
            .ok_or(CoreError::LivenessRequired)?;
        let key = DataKey::from_bytes(*self.keys.liveness_key(&p.tenant));
        let face = key
            .open_template(liveness_context(&p.tenant, subject, id, exp), &sealed)
            .map_err(|_| CoreError::LivenessRequired)?;
        let generation = store::tenants::transform_gen(c, &p.tenant).await?;
        let probe = self
            .transform(&p.tenant, generation, raw.len())
            .apply(raw)?;
        let score: f32 = face.iter().zip(probe.iter()).map(|(a, b)| a * b).sum();
        if score < self.engine.default_threshold() {
            return Err(CoreError::LivenessRequired);
        }
        Ok(true)
    }
}

fn liveness_context<'a>(
    tenant: &'a str,
    subject: &'a str,
    id: &'a str,
    exp: i64,
) -> TemplateContext<'a> {
    TemplateContext {
        tenant,
        subject,
        template: id,
        purpose: "liveness",
        model: "liveness",
        last_used_at: 0,
        expires_at: exp,
    }
}
