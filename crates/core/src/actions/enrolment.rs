//! Enrolment: a face, through the quality gate, into the vault.

use consentry_vault::TemplateContext;

use crate::audit::{self, Record};
use crate::core::{new_id, now, MAX_RETENTION_DAYS};
use crate::store::{self, gallery::Op, templates::NewTemplate};
use crate::{Core, CoreError, Principal, Purpose, Role};

/// What the quality gate says of one camera frame while the person frames their face.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FrameCheck {
    /// `None` when the frame would pass the enrolment gate; else the gate's code
    /// (`no_face`, `multiple_faces`, `face_too_small`, `face_cut_off`, `face_turned`,
    /// `too_blurry`, `low_confidence`).
    pub code: Option<&'static str>,
    /// The chosen face's box `[x, y, w, h]` as fractions of the frame, when there is one.
    #[serde(rename = "box")]
    pub bbox: Option<[f32; 4]>,
}

impl Core {
    /// Runs the enrolment quality gate on one frame, for live framing hints at a kiosk
    /// (admins, operators, devices). Nothing is embedded, stored or logged: the frame is
    /// dropped when the answer is made.
    pub async fn frame_check(
        &self,
        p: &Principal,
        image: Vec<u8>,
    ) -> Result<FrameCheck, CoreError> {
        p.require(&[Role::Admin, Role::Operator, Role::Device])?;
        let gate = self.gate;
        self.on_engine(move |engine| {
            use consentry_types::HasErrorCode;
            let img = engine.decode(&image)?;
            let (w, h) = (img.width() as f32, img.height() as f32);
            let dets = engine.detect(&img)?;
            let bbox =
                consentry_face::quality::primary(&dets, img.width(), img.height()).map(|i| {
                    let b = dets[i].bbox;
                    [b[0] / w, b[1] / h, b[2] / w, b[3] / h]
                });
            let code =
                match consentry_face::quality::check(&img, &dets, &gate, |d| engine.align(&img, d))
                {
                    Ok(_) => None,
                    Err(e) if e.code().category() == consentry_types::Category::Quality => {
                        Some(e.code().as_str())
                    }
                    Err(e) => return Err(e),
                };
            Ok(FrameCheck { code, bbox })
        })
        .await
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
        self.enrol_face_checked(p, subject, purpose, image)
            .await
            .map(|(template, _)| template)
    }

    /// [`enrol_face`](Self::enrol_face), also saying whether a liveness result was required
    /// (and held) by the tenant's policy.
    pub async fn enrol_face_checked(
        &self,
        p: &Principal,
        subject: &str,
        purpose: Purpose,
        image: Vec<u8>,
    ) -> Result<(String, bool), CoreError> {
        let retention = self.before_enrolment(p, subject, purpose).await?;
        let gate = self.gate;
        let embedding = self
            .on_engine(move |engine| {
                let img = engine.decode(&image)?;
                engine.enrol(&img, &gate).map(|(face, _)| face.embedding)
            })
            .await?;
        let mut tx = self.db.begin_write().await?;
        // A fresh liveness result of this face, when the policy needs one (spent here).
        let liveness = self
            .check_liveness(&mut tx, p, subject, purpose, &embedding.0)
            .await?;
        let template = self
            .seal_template(
                &mut tx,
                p,
                subject,
                purpose,
                retention,
                &embedding.0,
                self.template_model(),
            )
            .await?;
        tx.commit().await?;
        Ok((template, liveness))
    }

    /// Enrols one voice for a purpose the subject consented to: the recording (WAV or FLAC, at
    /// least 3 s) is embedded, the embedding transformed with the tenant's secret, sealed under
    /// the subject's data key and stored beside the face templates; the recording itself is
    /// never written anywhere. A voice template never enters the face gallery: it is compared
    /// only 1:1, with the subject a decision already names or the face already found.
    pub async fn enrol_voice(
        &self,
        p: &Principal,
        subject: &str,
        purpose: Purpose,
        audio: Vec<u8>,
    ) -> Result<String, CoreError> {
        let retention = self.before_enrolment(p, subject, purpose).await?;
        let embedding = self.voice_probe(audio).await?;
        let mut tx = self.db.begin_write().await?;
        let template = self
            .seal_template(
                &mut tx,
                p,
                subject,
                purpose,
                retention,
                &embedding,
                consentry_voice::MODEL_NAME,
            )
            .await?;
        tx.commit().await?;
        Ok(template)
    }

    /// The cheap checks of an enrolment, before any engine runs (so a request without consent
    /// never reaches one): the role, a biometric purpose, the subject in the caller's tenant
    /// and its active consent, whose retention in days is returned.
    async fn before_enrolment(
        &self,
        p: &Principal,
        subject: &str,
        purpose: Purpose,
    ) -> Result<i64, CoreError> {
        p.require(&[Role::Admin, Role::Operator])?;
        if !purpose.is_biometric() {
            return Err(CoreError::Invalid(
                "faces and voices are enrolled for access or verification".into(),
            ));
        }
        let mut tx = self.db.pool().begin().await?;
        self.subject_in_tenant(&mut tx, &p.tenant, subject).await?;
        let retention = self
            .active_consent(&mut tx, &p.tenant, subject, purpose)
            .await?;
        tx.commit().await?;
        Ok(retention)
    }

    /// Stores a new template inside `tx`, its consent re-checked there (a consent withdrawn
    /// since `retention` was read wins, and the shorter retention applies): transformed in the
    /// tenant's current generation,
    /// sealed under the subject's data key with its retention, added to the gallery's change
    /// feed when it is a face for access, and logged. Returns its id.
    #[allow(clippy::too_many_arguments)]
    async fn seal_template(
        &self,
        tx: &mut crate::store::Conn,
        p: &Principal,
        subject: &str,
        purpose: Purpose,
        retention: i64,
        raw: &[f32],
        model: &str,
    ) -> Result<String, CoreError> {
        let retention = retention.min(self.active_consent(tx, &p.tenant, subject, purpose).await?);
        let template = new_id();
        let t = now();
        let key = self.data_key(tx, &p.tenant, subject).await?;
        // In the tenant's current transform generation, read in this transaction (a re-key
        // takes the write lock too, so the two never interleave).
        let generation = store::tenants::transform_gen(tx, &p.tenant).await?;
        let protected = self
            .transform(&p.tenant, generation, raw.len())
            .apply(raw)?;
        let expires_at = t + retention.min(MAX_RETENTION_DAYS) * 86_400;
        let ctx = TemplateContext {
            tenant: &p.tenant,
            subject,
            template: &template,
            purpose: purpose.as_str(),
            model,
            last_used_at: t,
            expires_at,
        };
        let row = NewTemplate {
            id: &template,
            subject,
            purpose: purpose.as_str(),
            model,
            sealed: key.seal_template(ctx, &protected)?,
            created_at: t,
            expires_at,
        };
        store::templates::insert(tx, &p.tenant, row).await?;
        let face = model == self.template_model();
        if purpose == Purpose::Access && face {
            store::gallery::record(tx, &p.tenant, Op::Add, Some(&template), Some(subject)).await?;
        }
        // The face's entries read as before; a voice's say so.
        let r = Record::ok(if face { "enrol" } else { "enrol.voice" }, Some(subject))
            .detail(format!("purpose={} template={template}", purpose.as_str()));
        audit::record(tx, p, r).await?;
        Ok(template)
    }
}
