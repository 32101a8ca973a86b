//! The error-code catalogue.

use serde::{Deserialize, Serialize};

/// What class of failure a code is: it decides the CLI's exit status and the HTTP status family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    /// The caller sent something unusable (bad image, bad arguments).
    Input,
    /// The input was fine but the photo does not meet the face-quality bar.
    Quality,
    /// The installation is incomplete or broken (models or runtime library missing).
    Setup,
    /// A pass was checked and refused: each reason has its own exit status.
    Pass,
    /// A bug or an unexpected failure inside Consentry.
    Internal,
}

macro_rules! catalogue {
    ($( $(#[doc = $doc:literal])* $variant:ident => ($code:literal, $cat:ident, $status:literal), )*) => {
        /// A stable error code. See the module docs: codes are never renamed or reused.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in catalogue order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as it appears on the wire, e.g. `"no_face"`.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// The failure class.
            pub fn category(self) -> Category {
                match self { $(ErrorCode::$variant => Category::$cat,)* }
            }

            /// The HTTP status a server answers with for this code.
            pub fn http_status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)* }
            }

            /// One-line description for the error-code reference.
            pub fn describe(self) -> &'static str {
                match self { $(ErrorCode::$variant => concat!($($doc),*).trim_ascii(),)* }
            }
        }
    };
}

catalogue! {
    /// The bytes are not an image in any format Consentry reads.
    NotAnImage => ("not_an_image", Input, 400),
    /// The image file ends early or its data is corrupt.
    TruncatedImage => ("truncated_image", Input, 400),
    /// The image is in a recognised format that Consentry does not decode (only JPEG and PNG).
    UnsupportedFormat => ("unsupported_format", Input, 415),
    /// The image has more pixels, or a larger side, than the configured limit.
    ImageTooLarge => ("image_too_large", Input, 413),
    /// The upload is larger than the configured byte limit.
    PayloadTooLarge => ("payload_too_large", Input, 413),
    /// The file could not be read (missing, permissions).
    FileUnreadable => ("file_unreadable", Input, 400),
    /// The request or command arguments are malformed.
    InvalidRequest => ("invalid_request", Input, 400),
    /// No API key, or one that is unknown, expired or revoked.
    Unauthorized => ("unauthorized", Input, 401),
    /// The API key has passed its expiry date.
    KeyExpired => ("key_expired", Input, 401),
    /// The API key was revoked by an admin (revocation is final; ask for a new key).
    KeyRevoked => ("key_revoked", Input, 401),
    /// The API key was suspended for unusual use (the audit log says which rule); only an
    /// admin can reinstate it.
    KeySuspended => ("key_suspended", Input, 403),
    /// The scoped link has expired (links last minutes; mint another).
    LinkExpired => ("link_expired", Input, 410),
    /// The liveness challenge was answered already, or its deadline passed: ask for another.
    ChallengeExpired => ("challenge_expired", Input, 410),
    /// This purpose needs a fresh liveness result (`X-Consentry-Liveness`) for this subject,
    /// and the request has none, or one that is used, expired or for someone else.
    LivenessRequired => ("liveness_required", Input, 403),
    /// The tenant's policy for this purpose needs other biometrics than the request carries
    /// (say face and voice, and only a face was sent), or forbids one it carries.
    ModalityPolicy => ("modality_policy", Input, 400),
    /// The API key's role may not do this.
    Forbidden => ("forbidden", Input, 403),
    /// No such record in the caller's tenant (the same answer whether it exists elsewhere).
    NotFound => ("not_found", Input, 404),
    /// A record with that unique name already exists.
    AlreadyExists => ("already_exists", Input, 409),
    /// The subject has no active consent for this purpose.
    ConsentRequired => ("consent_required", Input, 403),
    /// Too many failed card or PIN attempts from this key (or this tenant) lately; wait.
    TooManyAttempts => ("too_many_attempts", Input, 429),
    /// This key sent more requests than its role's rate limit allows; slow down.
    RateLimited => ("rate_limited", Input, 429),
    /// The request took longer than the server's limit. Its work still runs to its end (nothing
    /// is left half done); the audit log shows whether it changed anything.
    RequestTimeout => ("request_timeout", Setup, 503),
    /// More face or voice work is waiting than the server can start soon: nothing was done;
    /// retry after the seconds in `Retry-After`.
    Overloaded => ("overloaded", Setup, 503),
    /// Reading a person's record needs a stated purpose (`X-Consentry-Purpose`), recorded in
    /// the audit log and shown to the person.
    PurposeRequired => ("purpose_required", Input, 400),
    /// The endpoint exists but not with this HTTP method.
    MethodNotAllowed => ("method_not_allowed", Input, 405),
    /// No face was found in the image.
    NoFace => ("no_face", Quality, 422),
    /// Several faces were found where exactly one is required.
    MultipleFaces => ("multiple_faces", Quality, 422),
    /// The face is too small (inter-eye distance below the minimum).
    FaceTooSmall => ("face_too_small", Quality, 422),
    /// The face is too blurred (variance of the Laplacian below the minimum).
    TooBlurry => ("too_blurry", Quality, 422),
    /// The head is turned too far from frontal (yaw estimated from the landmarks).
    FaceTurned => ("face_turned", Quality, 422),
    /// The detector's confidence is below the enrolment minimum.
    LowConfidence => ("low_confidence", Quality, 422),
    /// The face touches or crosses the image border, so part of it is missing.
    FaceCutOff => ("face_cut_off", Quality, 422),
    /// A model file or the ONNX Runtime library is missing or fails its check.
    ModelUnavailable => ("model_unavailable", Setup, 503),
    /// The database cannot be reached or refused an operation.
    StorageUnavailable => ("storage_unavailable", Setup, 503),
    /// A tenant key (key-encryption key or transform secret) is missing or malformed.
    KeyUnavailable => ("key_unavailable", Setup, 503),
    /// Models under a restrictive licence were requested without acknowledging it.
    LicenceNotAcknowledged => ("licence_not_acknowledged", Setup, 403),
    /// Not a well-formed pass (prefix, base45, zlib, COSE or a claim).
    PassMalformed => ("pass_malformed", Pass, 422),
    /// The pass's signature does not verify: it was altered or forged.
    PassBadSignature => ("pass_bad_signature", Pass, 422),
    /// The pass was signed by a key the trust list does not hold.
    PassUnknownKey => ("pass_unknown_key", Pass, 422),
    /// The pass has expired.
    PassExpired => ("pass_expired", Pass, 422),
    /// The pass is not valid yet.
    PassNotYetValid => ("pass_not_yet_valid", Pass, 422),
    /// The pass was revoked.
    PassRevoked => ("pass_revoked", Pass, 422),
    /// The revocation list is older than the verifier accepts; fetch a new one.
    RevocationListStale => ("revocation_list_stale", Pass, 422),
    /// The pass is for another verifier (venue or site).
    PassWrongVerifier => ("pass_wrong_verifier", Pass, 422),
    /// The bytes are not audio in a container Consentry reads (WAV or FLAC).
    NotAudio => ("not_audio", Input, 400),
    /// A WAV or FLAC file whose encoding is not supported (e.g. compressed WAV, more than two
    /// channels, a sample rate outside 8 to 96 kHz).
    UnsupportedAudio => ("unsupported_audio", Input, 415),
    /// Under 3 seconds of speech: too little to tell a voice reliably.
    AudioTooShort => ("audio_too_short", Quality, 422),
    /// The recording is longer than the configured limit (default 30 s).
    AudioTooLong => ("audio_too_long", Input, 413),
    /// An unexpected internal failure.
    Internal => ("internal", Internal, 500),
}

impl ErrorCode {
    /// The process exit status the CLI uses: 2 bad input, 3 quality, 4 setup, 10 to 17 a
    /// refused pass (malformed, bad signature, unknown key, expired, not yet valid, revoked,
    /// stale revocation list, another verifier's), 70 internal.
    pub fn exit_code(self) -> i32 {
        match self.category() {
            Category::Input => 2,
            Category::Quality => 3,
            Category::Setup => 4,
            Category::Pass => match self {
                ErrorCode::PassBadSignature => 11,
                ErrorCode::PassUnknownKey => 12,
                ErrorCode::PassExpired => 13,
                ErrorCode::PassNotYetValid => 14,
                ErrorCode::PassRevoked => 15,
                ErrorCode::RevocationListStale => 16,
                ErrorCode::PassWrongVerifier => 17,
                _ => 10,
            },
            Category::Internal => 70,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Implemented by every library error so callers can map it to a stable code.
pub trait HasErrorCode {
    /// The stable code for this error.
    fn code(&self) -> ErrorCode;
}

/// The JSON shape of an error: `{"code": "...", "message": "..."}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The stable code.
    pub code: ErrorCode,
    /// A human-readable message (never contains image data or templates).
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_snake_case_and_match_serde() {
        let mut seen = HashSet::new();
        for &c in ErrorCode::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(
                s.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'),
                "{s}"
            );
            let json = serde_json::to_string(&c).unwrap_or_default();
            assert_eq!(json, format!("\"{s}\""));
            assert!(!c.describe().is_empty());
            assert!((400..600).contains(&c.http_status()));
        }
    }

    #[test]
    fn exit_codes_follow_category() {
        assert_eq!(ErrorCode::NotAnImage.exit_code(), 2);
        assert_eq!(ErrorCode::NoFace.exit_code(), 3);
        assert_eq!(ErrorCode::ModelUnavailable.exit_code(), 4);
        assert_eq!(ErrorCode::Internal.exit_code(), 70);
        let pass: Vec<i32> = ErrorCode::ALL
            .iter()
            .filter(|c| c.category() == Category::Pass)
            .map(|c| c.exit_code())
            .collect();
        assert_eq!(pass, (10..=17).collect::<Vec<_>>());
    }
}
