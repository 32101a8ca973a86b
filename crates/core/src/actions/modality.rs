//! The modality policy: which biometrics a purpose's decisions need.

use crate::audit::{self, Record};
use crate::store;
use crate::{Core, CoreError, Modality, Principal, Purpose, Role};

impl Core {
    /// Sets which biometrics `purpose`'s decisions need (admins). Access takes only `face` and
    /// `face_and_voice`: a voice alone does not pick one person out of many (at the voice's
    /// false-accept rate per comparison, a gallery of a thousand would let a stranger through
    /// far too often), so at a gate the face finds the person and the voice confirms them.
    pub async fn set_modality_policy(
        &self,
        p: &Principal,
        purpose: Purpose,
        modality: Modality,
    ) -> Result<(), CoreError> {
        p.require(&[Role::Admin])?;
        if !purpose.is_biometric() {
            return Err(CoreError::Invalid(
                "a modality is set for access or verification".into(),
            ));
        }
        if purpose == Purpose::Access
            && !matches!(modality, Modality::Face | Modality::FaceAndVoice)
        {
            return Err(CoreError::Invalid(
                "access takes face or face_and_voice: a voice alone does not identify one \
                 person among many"
                    .into(),
            ));
        }
        let mut tx = self.db.begin_write().await?;
        store::modality::set(&mut tx, &p.tenant, purpose.as_str(), modality.as_str()).await?;
        let r = Record::ok("modality.policy", None).detail(format!(
            "purpose={} modality={}",
            purpose.as_str(),
            modality.as_str()
        ));
        audit::record(&mut tx, p, r).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The modality policy of `purpose` (any key of the tenant: a kiosk needs to know what to
    /// ask the person for).
    pub async fn modality_policy(
        &self,
        p: &Principal,
        purpose: Purpose,
    ) -> Result<Modality, CoreError> {
        let mut c = self.db.pool().acquire().await?;
        store::modality::get(&mut c, &p.tenant, purpose.as_str())
            .await?
            .as_deref()
            .map_or(Ok(Modality::Face), Modality::parse)
    }
}
