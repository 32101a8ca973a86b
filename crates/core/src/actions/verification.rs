//! 1:1 verification: the face, the voice, or both, as the purpose's modality policy says.

use consentry_vault::{DataKey, KeyContext};

use crate::audit::{self, Record};
use crate::core::{now, Decoy};
use crate::store::{self, templates::TemplateRow};
use crate::{Core, CoreError, Decision, Fusion, Modality, Principal, Purpose, Role};

/// How many templates a verification compares with, per modality: the subject's most recent
/// live ones, and decoys when it has fewer (or none, or does not exist), so every verification
/// unwraps one key and opens this many templates whatever the subject's state.
pub(crate) const VERIFY_SLOTS: usize = 5;

/// What a decision was given: a photo, a recording, or both.
#[derive(Clone, Debug, Default)]
pub struct Probes {
    /// A JPEG or PNG photo.
    pub image: Option<Vec<u8>>,
    /// A WAV or FLAC recording.
    pub audio: Option<Vec<u8>>,
}

/// The best cosine of one modality: the score and the template it came from.
pub(crate) struct Best<'a> {
    pub score: f32,
    pub row: &'a TemplateRow,
}

impl Core {
    /// 1:1: does the face in `image` belong to `subject`? (The face alone: for a purpose whose
    /// policy is `face`, the default.)
    pub async fn verify(
        &self,
        p: &Principal,
        subject: &str,
        image: Vec<u8>,
    ) -> Result<Decision, CoreError> {
        let probes = Probes {
            image: Some(image),
            audio: None,
        };
        self.verify_with(p, subject, probes).await
    }

    /// 1:1: do the face and/or the voice given belong to `subject`? The verification purpose's
    /// modality policy says which the request must carry (`modality_policy` otherwise). Each
    /// modality compares against the subject's live verification templates of its model in
    /// the caller's tenant (at most [`VERIFY_SLOTS`], newest first); with both, the two best
    /// cosines are fused ([`Fusion`]). Every deny path does the same work: the same queries,
    /// one key unwrap, the same number of template opens and comparisons.
    pub async fn verify_with(
        &self,
        p: &Principal,
        subject: &str,
        probes: Probes,
    ) -> Result<Decision, CoreError> {
        p.require(&[Role::Admin, Role::Operator, Role::Device])?;
        let purpose = Purpose::Verification;
        let mut c = self.db.pool().acquire().await?;
        let settings =
            store::tenants::decision_settings(&mut c, &p.tenant, purpose.as_str()).await?;
        drop(c);
        let modality = settings
            .modality
            .as_deref()
            .map_or(Ok(Modality::Face), Modality::parse)?;
        let (use_face, use_voice) =
            modality.select(probes.image.is_some(), probes.audio.is_some())?;
        let face_raw = match probes.image.filter(|_| use_face) {
            Some(image) => Some(self.probe(image).await?),
            None => None,
        };
        let voice_raw = match probes.audio.filter(|_| use_voice) {
            Some(audio) => Some(self.voice_probe(audio).await?),
            None => None,
        };
        // Before anything about the subject is read: the same refusal for everyone. A liveness
        // result is of a face, so a purpose that needs one needs the face in every decision.
        let liveness = match &face_raw {
            Some(raw) => {
                self.liveness_if_required(p, subject, purpose, raw, settings.liveness)
                    .await?
            }
            None if settings.liveness => return Err(CoreError::LivenessRequired),
            None => false,
        };

        let mut c = self.db.pool().acquire().await?;
        let wrapped = store::data_keys::wrapped(&mut c, &p.tenant, subject).await?;
        let t = now();
        let tenant = p.tenant.as_str();
        let face_rows = if use_face {
            live_rows(&mut c, tenant, subject, purpose, self.template_model(), t).await?
        } else {
            Vec::new()
        };
        let voice_rows = if use_voice {
            live_rows(
                &mut c,
                tenant,
                subject,
                purpose,
                consentry_voice::MODEL_NAME,
                t,
            )
            .await?
        } else {
            Vec::new()
        };
        drop(c);

        let ctx = KeyContext {
            tenant: &p.tenant,
            subject,
        };
        let key = match &wrapped {
            Some((kek_id, w)) => Some(self.keys.unwrap(kek_id, ctx, w)?),
            None => {
                // The same unwrap, of a decoy that never opens.
                self.unwrap_decoy(ctx);
                None
            }
        };
        let best = |raw: &Option<zeroize::Zeroizing<Vec<f32>>>, rows, decoy| match raw {
            Some(raw) => {
                let probe = self
                    .transform(&p.tenant, settings.generation, raw.len())
                    .apply(raw)?;
                self.best_of(&p.tenant, key.as_ref(), rows, &probe, decoy)
                    .map(Some)
            }
            None => Ok(None),
        };
        let face = best(&face_raw, &face_rows, &self.decoy)?;
        let voice = best(&voice_raw, &voice_rows, &self.voice_decoy)?;
        let fusion = Fusion::DEFAULT;
        // The two best cosines; a modality the request lacks, or the subject has no template
        // of, has none.
        let scores = (
            face.as_ref().and_then(|b| b.as_ref()).map(|b| b.score),
            voice.as_ref().and_then(|b| b.as_ref()).map(|b| b.score),
        );
        let both = modality == Modality::FaceAndVoice;
        let t_face = self.engine.default_threshold();
        let allow = match scores {
            (Some(f), Some(v)) => fusion.accept(f - t_face, v, both),
            // One alone decides by its own threshold, except where both are needed.
            (Some(f), None) => !both && f >= t_face,
            (None, Some(v)) => !both && v >= consentry_voice::DEFAULT_THRESHOLD,
            (None, None) => false,
        };
        // Every decision is recorded (the claimed id and allow or deny, never a score), in the
        // transaction that restarts the matched templates' retention.
        let mut tx = self.db.begin_write().await?;
        if allow {
            for b in [&face, &voice].into_iter().flatten().flatten() {
                self.touch_template(&mut tx, &p.tenant, &b.row.id, b.row.last_used_at)
                    .await?;
            }
        }
        let r = Record {
            action: match (use_face, use_voice) {
                (true, true) => "verify.face_voice",
                (false, true) => "verify.voice",
                _ => "verify",
            },
            target: Some(subject),
            outcome: if allow { "allow" } else { "deny" },
            detail: None,
        };
        audit::record(&mut tx, p, r).await?;
        tx.commit().await?;
        Ok(Decision {
            allow,
            liveness,
            face: use_face,
            voice: use_voice,
        })
    }

    /// The best cosine between `probe` (transformed) and `rows` opened with `key`, always
    /// doing [`VERIFY_SLOTS`] opens and comparisons: decoys stand in for missing templates.
    pub(crate) fn best_of<'a>(
        &self,
        tenant: &str,
        key: Option<&DataKey>,
        rows: &'a [TemplateRow],
        probe: &[f32],
        decoy: &Decoy,
    ) -> Result<Option<Best<'a>>, CoreError> {
        let mut best: Option<Best<'a>> = None;
        for slot in 0..VERIFY_SLOTS {
            let template = match (rows.get(slot), key) {
                (Some(row), Some(key)) => match key.open_template(row.context(tenant), &row.sealed)
                {
                    Ok(t) => Some((t, row)),
                    Err(_) => {
                        // A row edited behind the server's back (its purpose, model, retention
                        // or ids): refused, never compared.
                        tracing::warn!("a verification template does not open; refused");
                        None
                    }
                },
                _ => {
                    // A decoy open and comparison in place of a missing template.
                    let decoy = decoy.open()?;
                    let _ = std::hint::black_box(dot(&decoy, probe));
                    None
                }
            };
            if let Some((t, row)) = template {
                let score = dot(&t, probe);
                if best.as_ref().is_none_or(|b| score > b.score) {
                    best = Some(Best { score, row });
                }
            }
        }
        Ok(best)
    }
}

/// A subject's newest live templates of `model` for `purpose`, at most [`VERIFY_SLOTS`].
async fn live_rows(
    c: &mut store::Conn,
    tenant: &str,
    subject: &str,
    purpose: Purpose,
    model: &str,
    at: i64,
) -> Result<Vec<TemplateRow>, CoreError> {
    let mut rows =
        store::templates::live_of_subject(c, tenant, subject, purpose.as_str(), model, at).await?;
    rows.truncate(VERIFY_SLOTS);
    Ok(rows)
}

pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
