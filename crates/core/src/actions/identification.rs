//! 1:N identification at a gate.

use consentry_index::Index;

use consentry_vault::KeyContext;

use crate::actions::verification::Probes;
use crate::audit::{self, Record};
use crate::core::now;
use crate::store;
use crate::{Core, CoreError, Fusion, Identification, Modality, Principal, Purpose, Role};

/// How many of the nearest templates identification checks against the database, best first.
const IDENTIFY_CANDIDATES: usize = 8;

impl Core {
    /// 1:N at a gate: is this face one of the tenant's consenting, enrolled people? Searches the
    /// tenant's own gallery only. A face that matches no one is dropped here: nothing about it
    /// is stored or logged, only the `deny` is returned.
    pub async fn identify(
        &self,
        p: &Principal,
        image: Vec<u8>,
    ) -> Result<Identification, CoreError> {
        let probes = Probes {
            image: Some(image),
            audio: None,
        };
        self.identify_with(p, probes).await
    }

    /// 1:N with what the access purpose's modality policy needs: the face (`face`), or the
    /// face and a recording (`face_and_voice`). With the voice, the face finds the candidates
    /// (every one above the face's threshold, best first) and the voice is compared 1:1 with
    /// each candidate's own access voice templates; the first whose fused score passes
    /// ([`Fusion`], with the floors) is the match. A voice alone never searches the gallery.
    pub async fn identify_with(
        &self,
        p: &Principal,
        probes: Probes,
    ) -> Result<Identification, CoreError> {
        p.require(&[Role::Admin, Role::Operator, Role::Device])?;
        self.check_identify_hours(p).await?;
        let mut c = self.db.pool().acquire().await?;
        let settings =
            store::tenants::decision_settings(&mut c, &p.tenant, Purpose::Access.as_str()).await?;
        drop(c);
        let modality = settings
            .modality
            .as_deref()
            .map_or(Ok(Modality::Face), Modality::parse)?;
        if !matches!(modality, Modality::Face | Modality::FaceAndVoice) {
            return Err(CoreError::ModalityPolicy(format!(
                "access takes face or face_and_voice; this tenant's policy says {}",
                modality.as_str()
            )));
        }
        let (_, use_voice) = modality.select(probes.image.is_some(), probes.audio.is_some())?;
        let Some(image) = probes.image else {
            return Err(CoreError::ModalityPolicy("access needs a face".into()));
        };
        let raw = self.probe(image).await?;
        let voice_raw = match probes.audio.filter(|_| use_voice) {
            Some(audio) => Some(self.voice_probe(audio).await?),
            None => None,
        };
        // With the voice too, the face must still pass on its own (the face's floor under
        // `face_and_voice` is its threshold): the candidates are the same either way.
        let fusion = Fusion::DEFAULT;
        let threshold = self.engine.default_threshold();
        let gallery = self.current_gallery(&p.tenant).await?;
        // Every template above the threshold among the best few, best first: the best one may
        // be expired or withdrawn on another node and not yet gone from this index, and must
        // not hide a live template of the same (or another) person below it.
        let candidates: Vec<(String, String, f32)> = {
            let g = gallery
                .read()
                .map_err(|_| CoreError::Internal("gallery lock poisoned".into()))?;
            // The probe in the generation of the templates in this gallery.
            let probe = self
                .transform(&p.tenant, g.generation, raw.len())
                .apply(&raw)?;
            g.index
                .search(&probe, IDENTIFY_CANDIDATES)
                .into_iter()
                .take_while(|hit| hit.score >= threshold)
                .filter_map(|hit| {
                    g.by_key
                        .get(&hit.id)
                        .map(|(t, s)| (t.clone(), s.clone(), hit.score))
                })
                .collect()
        };
        // The database has the last word: a template deleted, expired or without consent (on
        // this node or another) never grants access, whatever the in-memory index holds.
        let mut c = self.db.pool().acquire().await?;
        let mut found = None;
        let mut voice_match = None;
        for (template, subject, face_score) in candidates {
            let live =
                store::templates::access_last_used(&mut c, &p.tenant, &template, now()).await?;
            let Some(last_used) = live else { continue };
            if let Some(voice) = &voice_raw {
                // The candidate's own voice, 1:1; a candidate without one is not a match.
                let rows = store::templates::live_of_subject(
                    &mut c,
                    &p.tenant,
                    &subject,
                    Purpose::Access.as_str(),
                    consentry_voice::MODEL_NAME,
                    now(),
                )
                .await?;
                let Some((kek_id, wrapped)) =
                    store::data_keys::wrapped(&mut c, &p.tenant, &subject).await?
                else {
                    continue;
                };
                let ctx = KeyContext {
                    tenant: &p.tenant,
                    subject: &subject,
                };
                let key = self.keys.unwrap(&kek_id, ctx, &wrapped)?;
                let probe = self
                    .transform(&p.tenant, settings.generation, voice.len())
                    .apply(voice)?;
                let best = self.best_of(&p.tenant, Some(&key), &rows, &probe, &self.voice_decoy)?;
                let Some(best) =
                    best.filter(|b| fusion.accept(face_score - threshold, b.score, true))
                else {
                    continue;
                };
                voice_match = Some((best.row.id.clone(), best.row.last_used_at));
            }
            found = Some((template, subject, last_used));
            break;
        }
        drop(c);
        // The decision is recorded: the subject, or "no_match" with no target and nothing else
        // about the face.
        let mut tx = self.db.begin_write().await?;
        if let Some((template, _, last_used)) = &found {
            self.touch_template(&mut tx, &p.tenant, template, *last_used)
                .await?;
        }
        if let Some((template, last_used)) = &voice_match {
            self.touch_template(&mut tx, &p.tenant, template, *last_used)
                .await?;
        }
        let subject = found.map(|(_, s, _)| s);
        let r = Record {
            action: if use_voice {
                "identify.face_voice"
            } else {
                "identify"
            },
            target: subject.as_deref(),
            outcome: if subject.is_some() {
                "allow"
            } else {
                "no_match"
            },
            detail: None,
        };
        audit::record(&mut tx, p, r).await?;
        tx.commit().await?;
        Ok(Identification {
            allow: subject.is_some(),
            subject,
        })
    }
}
