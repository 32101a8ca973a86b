//! Checkpoints: the C2SP `tlog-checkpoint` body, signed as a C2SP `signed-note` with Ed25519.
//!
//! ```text
//! consentry/3f1c…            ← origin (also the signing key's name)
//! 1024                       ← tree size
//! 6LrX…base64 root hash…=    ← root hash
//!
//! — consentry/3f1c… AbCd…base64(key id ‖ signature)…
//! ```
//!
//! The key id is the first four bytes of `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)`; a verifier
//! key is written `name+<key id, hex>+<base64(0x01 ‖ public key)>`. The signature covers the
//! body, its final newline included.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::Hash;

/// The longest note accepted: a checkpoint is a few hundred bytes.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;

/// Why a note or key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// Not in the format (with what was wrong).
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// No signature line by the expected key verifies.
    #[error("no valid signature by the expected key")]
    BadSignature,
    /// Signed by the expected key, but for another log.
    #[error("the checkpoint is for another log (origin {0:?})")]
    WrongOrigin(String),
}

const ED25519: u8 = 0x01;
const DASH: &str = "\u{2014} ";

/// A key name: non-empty, printable, no spaces and no `+`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '+')
}

fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ED25519]);
    h.update(key.as_bytes());
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// The public half of a log's signing key, with its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

impl VerifierKey {
    /// The verifier key of `key` under `name` (the log's origin).
    pub fn new(name: &str, key: &VerifyingKey) -> Result<VerifierKey, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::Malformed("key name"));
        }
        Ok(VerifierKey {
            name: name.to_string(),
            id: key_id(name, key),
            key: *key,
        })
    }

    /// Parses `name+hexid+base64key`.
    pub fn parse(text: &str) -> Result<VerifierKey, NoteError> {
        let mut it = text.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (it.next(), it.next(), it.next()) else {
            return Err(NoteError::Malformed("verifier key is name+id+key"));
        };
        let raw = B64
            .decode(key)
            .map_err(|_| NoteError::Malformed("verifier key base64"))?;
        let bytes = match raw.split_first() {
            Some((&ED25519, rest)) => <[u8; 32]>::try_from(rest)
                .map_err(|_| NoteError::Malformed("verifier key length"))?,
            _ => return Err(NoteError::Malformed("verifier key is not Ed25519")),
        };
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| NoteError::Malformed("verifier key point"))?;
        let vk = VerifierKey::new(name, &key)?;
        if id.len() != 8 || !id.eq_ignore_ascii_case(&hex(&vk.id)) {
            return Err(NoteError::Malformed(
                "verifier key id does not match the key",
            ));
        }
        Ok(vk)
    }

    /// The key's name (the log's origin).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut raw = vec![ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{}+{}", self.name, hex(&self.id), B64.encode(raw))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A log's state: its origin, its size and the root hash of its first `size` entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Names the log (one per tenant: `consentry/<tenant id>`).
    pub origin: String,
    /// Entries in the tree.
    pub size: u64,
    /// `MTH` of the first `size` entries.
    pub root: Hash,
}

impl Checkpoint {
    /// The note body: origin, size and base64 root, one per line.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// The signed note, signed with `key` under the origin as the key name.
    pub fn sign(&self, key: &SigningKey) -> String {
        let body = self.body();
        let sig = key.sign(body.as_bytes());
        let mut blob = key_id(&self.origin, &key.verifying_key()).to_vec();
        blob.extend_from_slice(&sig.to_bytes());
        format!("{body}\n{DASH}{} {}\n", self.origin, B64.encode(blob))
    }

    /// Reads a body (without checking any signature).
    pub fn parse_body(body: &str) -> Result<Checkpoint, NoteError> {
        let Some(text) = body.strip_suffix('\n') else {
            return Err(NoteError::Malformed("the body ends with a newline"));
        };
        let mut lines = text.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(NoteError::Malformed("origin, size and root lines"));
        };
        // Extension lines may follow (the format allows them); none may be empty.
        if lines.any(str::is_empty) {
            return Err(NoteError::Malformed("empty line in the body"));
        }
        if origin.is_empty() || origin.chars().any(char::is_control) {
            return Err(NoteError::Malformed("origin"));
        }
        if size.is_empty()
            || size.len() > 20
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(NoteError::Malformed("tree size"));
        }
        let size: u64 = size
            .parse()
            .map_err(|_| NoteError::Malformed("tree size"))?;
        let root = B64
            .decode(root)
            .ok()
            .and_then(|r| <[u8; 32]>::try_from(r).ok())
            .ok_or(NoteError::Malformed("root hash"))?;
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
        })
    }

    /// Opens a signed note: it must carry a valid signature by `key`, and its origin must be
    /// the key's name. Signature lines by other keys are ignored (a witness may add its own).
    pub fn open(note: &str, key: &VerifierKey) -> Result<Checkpoint, NoteError> {
        if note.len() > MAX_NOTE_BYTES {
            return Err(NoteError::Malformed("too long"));
        }
        let Some(split) = note.rfind("\n\n") else {
            return Err(NoteError::Malformed("no blank line before the signatures"));
        };
        let (body, sigs) = (&note[..=split], &note[split + 2..]);
        let Some(sigs) = sigs.strip_suffix('\n') else {
            return Err(NoteError::Malformed("signature lines end with a newline"));
        };
        let mut signed = false;
        for line in sigs.split('\n') {
            let Some(rest) = line.strip_prefix(DASH) else {
                return Err(NoteError::Malformed("signature line"));
            };
            let Some((name, blob)) = rest.split_once(' ') else {
                return Err(NoteError::Malformed("signature line"));
            };
            if name != key.name {
                continue;
            }
            let Ok(blob) = B64.decode(blob) else {
                return Err(NoteError::Malformed("signature base64"));
            };
            if blob.len() != 68 || blob[..4] != key.id {
                continue;
            }
            let Ok(sig) = <[u8; 64]>::try_from(&blob[4..]) else {
                continue;
            };
            if key
                .key
                .verify(body.as_bytes(), &Signature::from_bytes(&sig))
                .is_ok()
            {
                signed = true;
            }
        }
        if !signed {
            return Err(NoteError::BadSignature);
        }
        let checkpoint = Checkpoint::parse_body(body)?;
        if checkpoint.origin != key.name {
            return Err(NoteError::WrongOrigin(checkpoint.origin));
        }
        Ok(checkpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "consentry/tenant-a".into(),
            size: 1024,
            root: [7; 32],
        }
    }

    #[test]
    fn a_signed_checkpoint_opens_with_its_key_only() {
        let cp = checkpoint();
        let note = cp.sign(&key(1));
        let vk = VerifierKey::new(&cp.origin, &key(1).verifying_key()).unwrap();
        assert_eq!(Checkpoint::open(&note, &vk).unwrap(), cp);
        // The verifier key survives its text form.
        assert_eq!(VerifierKey::parse(&vk.to_string()).unwrap(), vk);
        let other = VerifierKey::new(&cp.origin, &key(2).verifying_key()).unwrap();
        assert_eq!(
            Checkpoint::open(&note, &other),
            Err(NoteError::BadSignature)
        );
        // Every byte of the body is covered by the signature.
        let forged = note.replacen("1024", "1025", 1);
        assert_eq!(Checkpoint::open(&forged, &vk), Err(NoteError::BadSignature));
        let forged = note.replacen("consentry/tenant-a\n", "consentry/tenant-a \n", 1);
        assert_eq!(Checkpoint::open(&forged, &vk), Err(NoteError::BadSignature));
    }

    #[test]
    fn the_body_is_the_tlog_checkpoint_format() {
        let note = checkpoint().sign(&key(1));
        let lines: Vec<&str> = note.split('\n').collect();
        assert_eq!(lines[0], "consentry/tenant-a");
        assert_eq!(lines[1], "1024");
        assert_eq!(B64.decode(lines[2]).unwrap(), vec![7u8; 32]);
        assert_eq!(lines[3], "");
        assert!(lines[4].starts_with("\u{2014} consentry/tenant-a "));
        assert_eq!(lines[5], "");
    }

    #[test]
    fn a_witness_signature_beside_ours_is_ignored_and_another_log_is_refused() {
        let cp = checkpoint();
        let note = cp.sign(&key(1));
        let witness = Checkpoint {
            origin: "witness".into(),
            ..cp.clone()
        }
        .sign(&key(3));
        let witness_line = witness.lines().last().unwrap();
        let cosigned = format!("{note}{witness_line}\n");
        let vk = VerifierKey::new(&cp.origin, &key(1).verifying_key()).unwrap();
        assert_eq!(Checkpoint::open(&cosigned, &vk).unwrap(), cp);

        // Signed by our key but naming another log.
        let other = Checkpoint {
            origin: "consentry/tenant-b".into(),
            ..cp
        };
        let body = other.body();
        let sig = key(1).sign(body.as_bytes());
        let mut blob = key_id("consentry/tenant-a", &key(1).verifying_key()).to_vec();
        blob.extend_from_slice(&sig.to_bytes());
        let note = format!("{body}\n\u{2014} consentry/tenant-a {}\n", B64.encode(blob));
        assert_eq!(
            Checkpoint::open(&note, &vk),
            Err(NoteError::WrongOrigin("consentry/tenant-b".into()))
        );
    }

    #[test]
    fn malformed_notes_are_refused_without_panicking() {
        let vk = VerifierKey::new("consentry/tenant-a", &key(1).verifying_key()).unwrap();
        for bad in [
            "",
            "\n\n",
            "consentry/tenant-a\n1\n\n\u{2014} x y\n",
            "consentry/tenant-a\n01\nAAAA\n\n\u{2014} consentry/tenant-a AAAA\n",
            "a\n1\nroot\n\nno dash\n",
            "a\n1\nroot\n\n\u{2014} consentry/tenant-a !!!\n",
            "\u{2014}\n\n\u{2014} \n",
        ] {
            assert!(Checkpoint::open(bad, &vk).is_err(), "{bad:?}");
        }
        for bad in ["", "a+b", "a+00000000+AAAA", "a b+00+AQ==", "+x+y"] {
            assert!(VerifierKey::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Checkpoint::parse_body("o\n18446744073709551616\nAAAA\n").is_err());
    }
}
