//! One audit record: who did what to which record, why, and with what outcome. Never an image,
//! a template or a score: an entry says "verify … deny", not how close the face came.

use serde::{Deserialize, Serialize};

/// The key an action is attributed to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The key's public id (never the secret); `"cli"` for the `consentry` command run on the
    /// server's own machine.
    pub key: String,
    /// The key's role at the time.
    pub role: String,
}

/// An audit record. Its bytes in the log are its JSON in field order ([`Entry::to_bytes`]);
/// the leaf hash covers exactly those bytes, so a verifier hashes what it was served and never
/// needs to re-encode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Unix seconds.
    pub time: i64,
    /// The tenant whose log this is.
    pub tenant: String,
    /// Who.
    pub actor: Actor,
    /// What, e.g. `subject.read`, `verify`, `identify`, `consent.grant` (docs/audit.md lists
    /// them all).
    pub action: String,
    /// Which record: a subject, consent, key or credential id; `None` for a 1:N search that
    /// matched no one (the face is dropped, and so is everything about it).
    pub target: Option<String>,
    /// The purpose the caller stated (`X-Consentry-Purpose`), when it stated one.
    pub purpose: Option<String>,
    /// `ok`, `allow`, `deny`, `no_match`, …
    pub outcome: String,
    /// What else the action needs to be understood, e.g. the consent's purpose, or how many
    /// templates a sweep removed.
    pub detail: Option<String>,
    /// The request's id (as in the response's `x-request-id` and the server's log).
    pub request_id: String,
}

impl Entry {
    /// The bytes stored and hashed.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads an entry's bytes back.
    pub fn from_bytes(bytes: &[u8]) -> Option<Entry> {
        serde_json::from_slice(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back_from_its_bytes_and_nothing_else_does() {
        let e = Entry {
            time: 1_700_000_000,
            tenant: "t".into(),
            actor: Actor {
                key: "k".into(),
                role: "operator".into(),
            },
            action: "subject.read".into(),
            target: Some("s".into()),
            purpose: Some("case 42".into()),
            outcome: "ok".into(),
            detail: None,
            request_id: "r".into(),
        };
        let bytes = e.to_bytes();
        assert!(bytes.starts_with(br#"{"time":1700000000,"tenant":"t","actor":{"#));
        assert_eq!(Entry::from_bytes(&bytes), Some(e));
        assert_eq!(Entry::from_bytes(b"{\"time\":1}"), None);
    }
}
