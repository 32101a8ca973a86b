//! The values actions take and return: roles, purposes, the caller, decisions and views.

use sha2::Sha256;

use crate::CoreError;

/// What an API key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Manage the tenant: keys, subjects, consents, enrolment.
    Admin,
    /// Work with subjects: enrol, verify, delete.
    Operator,
    /// A gate or kiosk: verify and identify only.
    Device,
    /// Reads the audit log, nothing else.
    Auditor,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Device => "device",
            Role::Auditor => "auditor",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "operator" => Some(Role::Operator),
            "device" => Some(Role::Device),
            "auditor" => Some(Role::Auditor),
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
    /// Holding passes (signed QR credentials); no face is enrolled for it.
    Pass,
}

impl Purpose {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Access => "access",
            Purpose::Verification => "verification",
            Purpose::Pass => "pass",
        }
    }

    /// Parses `access`, `verification` or `pass`.
    pub fn parse(s: &str) -> Result<Purpose, CoreError> {
        match s {
            "access" => Ok(Purpose::Access),
            "verification" => Ok(Purpose::Verification),
            "pass" => Ok(Purpose::Pass),
            _ => Err(CoreError::Invalid(
                "purpose must be access, verification or pass".into(),
            )),
        }
    }

    /// Whether faces are enrolled for it.
    pub fn is_biometric(self) -> bool {
        matches!(self, Purpose::Access | Purpose::Verification)
    }
}

/// An authenticated caller of one request: one key, of one tenant, with one role, and what the
/// request says about itself for the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The key's id (public; not the secret): what rate limits and the audit log attribute
    /// actions to.
    pub key: String,
    /// The tenant the key belongs to; every query is confined to it.
    pub tenant: String,
    /// The key's role.
    pub role: Role,
    /// A device key's site.
    pub site: Option<String>,
    /// The request's id, recorded with every audit entry it causes.
    pub request_id: String,
    /// The purpose the caller stated for this request (`X-Consentry-Purpose`), if any.
    pub purpose: Option<String>,
    /// The liveness token the request carries (`X-Consentry-Liveness`), if any.
    pub liveness: Option<String>,
    /// When an admin last lifted a suspension of the key: the abuse rules count from then.
    pub(crate) reinstated_at: Option<i64>,
}

/// The longest stated purpose kept.
pub const MAX_PURPOSE_CHARS: usize = 200;

impl Principal {
    /// Carries the request's liveness token (`X-Consentry-Liveness`), checked by enrolment and
    /// verification when the tenant's policy needs one.
    pub fn with_liveness(mut self, token: Option<&str>) -> Principal {
        self.liveness = token.map(str::to_string);
        self
    }

    /// States the request's purpose: 1 to [`MAX_PURPOSE_CHARS`] characters, no control
    /// characters (it is shown to the person whose record was read).
    pub fn with_purpose(mut self, purpose: Option<&str>) -> Result<Principal, CoreError> {
        self.purpose = match purpose.map(str::trim) {
            None => None,
            Some(text)
                if !text.is_empty()
                    && text.chars().count() <= MAX_PURPOSE_CHARS
                    && !text.chars().any(char::is_control) =>
            {
                Some(text.to_string())
            }
            Some(_) => {
                return Err(CoreError::Invalid(format!(
                    "a stated purpose is 1 to {MAX_PURPOSE_CHARS} characters without control characters"
                )))
            }
        };
        Ok(self)
    }

    /// Sets the request id the audit entries carry.
    pub fn with_request_id(mut self, id: &str) -> Principal {
        self.request_id = id.to_string();
        self
    }

    pub(crate) fn require(&self, allowed: &[Role]) -> Result<(), CoreError> {
        if allowed.contains(&self.role) {
            Ok(())
        } else {
            Err(CoreError::Forbidden)
        }
    }
}

/// A 1:1 decision, and nothing else. A subject that does not exist, has no template, or does not
/// match all give the same `deny` after the same work, so the answer never reveals whether an id
/// exists. There is no score: a similarity score returned to a caller is feedback an attacker
/// can climb (adjusting a synthetic face until it rises), and it would tell an unknown id
/// (nothing to compare) from a real non-match (docs/security.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Access granted.
    pub allow: bool,
    /// A liveness result was required and checked (and its face matched the probe).
    pub liveness: bool,
    /// The face was compared.
    pub face: bool,
    /// The voice was compared.
    pub voice: bool,
}

impl Decision {
    /// The checks the decision rests on, for the caller: `face`, `voice`, `liveness`.
    pub fn checks(&self) -> Vec<&'static str> {
        [
            (self.face, "face"),
            (self.voice, "voice"),
            (self.liveness, "liveness"),
        ]
        .into_iter()
        .filter_map(|(ran, name)| ran.then_some(name))
        .collect()
    }
}

/// Which biometrics a purpose's decisions need (the tenant's modality policy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Modality {
    /// The face alone (the default).
    Face,
    /// The voice alone (verification only).
    Voice,
    /// Both, every time: each must clear its floor and the two scores together the fused
    /// threshold (see `fusion`).
    FaceAndVoice,
    /// Either; both together are fused (verification only).
    FaceOrVoice,
}

impl Modality {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Modality::Face => "face",
            Modality::Voice => "voice",
            Modality::FaceAndVoice => "face_and_voice",
            Modality::FaceOrVoice => "face_or_voice",
        }
    }

    /// Parses `face`, `voice`, `face_and_voice` or `face_or_voice`.
    pub fn parse(s: &str) -> Result<Modality, CoreError> {
        match s {
            "face" => Ok(Modality::Face),
            "voice" => Ok(Modality::Voice),
            "face_and_voice" => Ok(Modality::FaceAndVoice),
            "face_or_voice" => Ok(Modality::FaceOrVoice),
            _ => Err(CoreError::Invalid(
                "modality must be face, voice, face_and_voice or face_or_voice".into(),
            )),
        }
    }

    /// Which of the probes a request carries this policy uses: `(face, voice)`, or
    /// `modality_policy` when one it needs is missing or one it does not take is there.
    pub(crate) fn select(self, face: bool, voice: bool) -> Result<(bool, bool), CoreError> {
        let ok = match self {
            Modality::Face => face && !voice,
            Modality::Voice => voice && !face,
            Modality::FaceAndVoice => face && voice,
            Modality::FaceOrVoice => face || voice,
        };
        if ok {
            Ok((face, voice))
        } else {
            let had = match (face, voice) {
                (true, true) => "a face and a voice",
                (true, false) => "a face only",
                (false, true) => "a voice only",
                (false, false) => "neither a face nor a voice",
            };
            Err(CoreError::ModalityPolicy(format!(
                "this purpose's policy is {}; the request had {had}",
                self.as_str()
            )))
        }
    }
}

/// A 1:N decision: the subject when the face matched one of the tenant's consenting, enrolled
/// people; otherwise nothing at all about the face is kept.
#[derive(Clone, Debug, PartialEq)]
pub struct Identification {
    /// Access granted.
    pub allow: bool,
    /// The matched subject.
    pub subject: Option<String>,
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
    /// Live face templates enrolled for access.
    pub access_templates: i64,
    /// Live face templates enrolled for verification.
    pub verification_templates: i64,
    /// Live voice templates (access and verification).
    pub voice_templates: i64,
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
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Credential::Card(_) => "card",
            Credential::Pin(_) => "pin",
        }
    }

    pub(crate) fn validate(&self) -> Result<(), CoreError> {
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
    pub(crate) fn lookup(&self, key: &[u8; 32]) -> Vec<u8> {
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
