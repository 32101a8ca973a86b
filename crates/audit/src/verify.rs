//! The offline verifier: checks a log (from a server, or from an export file) against a
//! checkpoint saved earlier, trusting nothing but that checkpoint and its key.
//!
//! 1. The saved checkpoint and the log's current one must both be signed by the saved key.
//! 2. The current tree must be at least as large and, by a consistency proof, an extension of
//!    the saved one: the log was only appended to.
//! 3. Every entry from 0 to the current size is downloaded and hashed. An index that is
//!    missing is named at once. The tree rebuilt from the entries must have the saved root at
//!    the saved size and the current root at the current size.
//! 4. When the log's own tree is consistent but the entries do not hash to it (rows edited
//!    after they were appended), the first entry that no longer matches is found by
//!    bisection: the first `k` whose rebuilt prefix root has no valid consistency proof to the
//!    checkpoint (a changed, removed or reordered entry changes every prefix that holds it).
//!    When the tree itself was rewritten, the finding is `not_an_extension`.
//! 5. An export file holds entries only, no tree of its own to prove anything from: its entries
//!    must hash to both checkpoints' roots, and when they do not, no entry can be named (a root
//!    hash does not tell which leaf changed), so the finding is `changed`.

use crate::merkle::{leaf_hash, verify_consistency, Hash, MemoryTree};
use crate::note::{Checkpoint, NoteError, VerifierKey};

/// Entries fetched per request.
pub const PAGE: u64 = 1000;

/// What the verifier reads from a log.
pub trait Log {
    /// The log's current signed checkpoint.
    fn checkpoint(&mut self) -> Result<String, String>;
    /// Entries `start..end`, each as its index and exact bytes.
    fn entries(&mut self, start: u64, end: u64) -> Result<Vec<(u64, String)>, String>;
    /// The consistency proof between two tree sizes.
    fn consistency(&mut self, first: u64, second: u64) -> Result<Vec<Hash>, String>;
    /// Whether the proofs come from a tree the log keeps apart from its entries (a server's
    /// stored tree), so that they can locate a changed entry. An export's proofs could only be
    /// computed from the very entries under test.
    fn keeps_a_tree(&self) -> bool {
        true
    }
}

/// What the verification found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "finding", rename_all = "snake_case")]
pub enum Finding {
    /// Every entry verifies and the log only grew.
    Ok,
    /// The log's current checkpoint is not signed by the saved key.
    CurrentCheckpointInvalid {
        /// Why.
        reason: String,
    },
    /// The log is smaller than when the checkpoint was saved.
    Shrunk {
        /// The saved size.
        saved: u64,
        /// The size now.
        current: u64,
    },
    /// The current tree is not an extension of the saved one.
    NotAnExtension,
    /// An entry is missing.
    Missing {
        /// Its index.
        index: u64,
    },
    /// The first entry whose bytes no longer match the checkpoint (changed, or moved).
    Altered {
        /// Its index.
        index: u64,
        /// Which checkpoint it fails against: `saved` or `current`.
        against: &'static str,
    },
    /// An export's entries do not hash to a checkpoint's root: some entry was changed, removed
    /// or moved, and without the log's tree there is nothing to tell which.
    Changed {
        /// Which checkpoint they fail against: `saved` or `current`.
        against: &'static str,
    },
}

/// The verifier's report.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// The log's origin.
    pub origin: String,
    /// Entries in the saved checkpoint.
    pub saved_size: u64,
    /// Entries in the log's current checkpoint.
    pub current_size: u64,
    /// Entries downloaded and hashed.
    pub entries_checked: u64,
    /// The result.
    #[serde(flatten)]
    pub finding: Finding,
}

impl Report {
    /// Everything verified.
    pub fn ok(&self) -> bool {
        self.finding == Finding::Ok
    }
}

/// Why verification could not be carried out at all.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The saved checkpoint does not open with its key.
    #[error("the saved checkpoint: {0}")]
    Saved(NoteError),
    /// The log could not be read.
    #[error("reading the log: {0}")]
    Fetch(String),
}

/// Verifies `log` against the checkpoint `saved` signed by `key`. `progress` is called with
/// the number of entries hashed so far and the total.
pub fn verify(
    log: &mut dyn Log,
    key: &VerifierKey,
    saved: &str,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Report, VerifyError> {
    let saved = Checkpoint::open(saved, key).map_err(VerifyError::Saved)?;
    let mut report = Report {
        origin: saved.origin.clone(),
        saved_size: saved.size,
        current_size: 0,
        entries_checked: 0,
        finding: Finding::Ok,
    };
    let current = match Checkpoint::open(&log.checkpoint().map_err(VerifyError::Fetch)?, key) {
        Ok(c) => c,
        Err(e) => {
            report.finding = Finding::CurrentCheckpointInvalid {
                reason: e.to_string(),
            };
            return Ok(report);
        }
    };
    report.current_size = current.size;
    if current.size < saved.size {
        report.finding = Finding::Shrunk {
            saved: saved.size,
            current: current.size,
        };
        return Ok(report);
    }
    let mut tree = MemoryTree::new();
    let mut next = 0u64;
    while next < current.size {
        let end = (next + PAGE).min(current.size);
        let page = log.entries(next, end).map_err(VerifyError::Fetch)?;
        for (index, data) in page {
            if index != next {
                report.entries_checked = next;
                report.finding = Finding::Missing { index: next };
                return Ok(report);
            }
            tree.push(leaf_hash(data.as_bytes()));
            next += 1;
        }
        if next < end {
            report.entries_checked = next;
            report.finding = Finding::Missing { index: next };
            return Ok(report);
        }
        progress(next, current.size);
    }
    report.entries_checked = next;

    if !log.keeps_a_tree() {
        // Both roots rebuilt from the entries themselves: equal to both signed roots, they
        // prove the saved tree a prefix of the current one; no proof is needed.
        for (cp, against) in [(&saved, "saved"), (&current, "current")] {
            if tree.root(cp.size) != Some(cp.root) {
                report.finding = Finding::Changed { against };
                return Ok(report);
            }
        }
        return Ok(report);
    }
    // Fetched once every entry is at hand, so that a missing entry is named first.
    let proof = log
        .consistency(saved.size, current.size)
        .map_err(VerifyError::Fetch)?;
    let extends = verify_consistency(saved.size, current.size, &saved.root, &current.root, &proof);
    if !extends {
        // The log's own tree no longer extends the saved one: its history was rewritten, and
        // its proofs cannot be trusted to point at the entry.
        report.finding = Finding::NotAnExtension;
        return Ok(report);
    }
    // The stored tree is the one the checkpoints were signed over; if the entries do not hash
    // to it, they were changed after they were appended, and its proofs find the first one.
    for (cp, against) in [(&saved, "saved"), (&current, "current")] {
        if tree.root(cp.size) != Some(cp.root) {
            report.finding = match first_altered(log, &tree, cp)? {
                Some(index) => Finding::Altered { index, against },
                None => Finding::NotAnExtension,
            };
            return Ok(report);
        }
    }
    Ok(report)
}

/// The first entry the rebuilt tree disagrees with `cp` on: the largest `k` whose prefix still
/// proves consistent with `cp` names entry `k` (bisection: a prefix that holds a changed entry
/// never proves consistent).
fn first_altered(
    log: &mut dyn Log,
    tree: &MemoryTree,
    cp: &Checkpoint,
) -> Result<Option<u64>, VerifyError> {
    let good = |k: u64, log: &mut dyn Log| -> Result<bool, VerifyError> {
        let Some(root) = tree.root(k) else {
            return Ok(false);
        };
        let proof = log.consistency(k, cp.size).map_err(VerifyError::Fetch)?;
        Ok(verify_consistency(k, cp.size, &root, &cp.root, &proof))
    };
    // good(0) holds (the empty tree is a prefix of every tree) and good(cp.size) fails.
    let (mut lo, mut hi) = (0u64, cp.size);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if good(mid, log)? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok((cp.size > 0).then_some(lo))
}

/// A log held in memory: an export file's entries, or a test's.
#[derive(Clone, Debug, Default)]
pub struct MemoryLog {
    /// The log's current signed checkpoint.
    pub checkpoint: String,
    /// Its entries, by index.
    pub entries: Vec<(u64, String)>,
}

impl Log for MemoryLog {
    fn checkpoint(&mut self) -> Result<String, String> {
        Ok(self.checkpoint.clone())
    }

    fn entries(&mut self, start: u64, end: u64) -> Result<Vec<(u64, String)>, String> {
        Ok(self
            .entries
            .iter()
            .filter(|(i, _)| (start..end).contains(i))
            .cloned()
            .collect())
    }

    /// Never asked for: an export carries no proofs, and needs none, since every entry is at
    /// hand (see [`Log::keeps_a_tree`]).
    fn consistency(&mut self, first: u64, second: u64) -> Result<Vec<Hash>, String> {
        Err(format!(
            "an export holds no tree to prove {first} to {second} from"
        ))
    }

    fn keeps_a_tree(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    const ORIGIN: &str = "consentry/t";

    /// A server-side log: its stored tree stays as written, whatever happens to the entries
    /// (what an edit of the entries table alone leaves behind).
    struct Server {
        entries: Vec<(u64, String)>,
        tree: MemoryTree,
        key: SigningKey,
    }

    impl Server {
        fn new(n: u64) -> Server {
            let mut s = Server {
                entries: Vec::new(),
                tree: MemoryTree::new(),
                key: SigningKey::from_bytes(&[9; 32]),
            };
            for i in 0..n {
                s.append(i);
            }
            s
        }

        fn append(&mut self, i: u64) {
            let data = format!("{{\"n\":{i}}}");
            self.tree.push(leaf_hash(data.as_bytes()));
            self.entries.push((self.entries.len() as u64, data));
        }

        fn note(&self) -> String {
            let size = self.tree.len();
            Checkpoint {
                origin: ORIGIN.into(),
                size,
                root: self.tree.root(size).unwrap(),
            }
            .sign(&self.key)
        }

        fn vkey(&self) -> VerifierKey {
            VerifierKey::new(ORIGIN, &self.key.verifying_key()).unwrap()
        }
    }

    impl Log for Server {
        fn checkpoint(&mut self) -> Result<String, String> {
            Ok(self.note())
        }
        fn entries(&mut self, start: u64, end: u64) -> Result<Vec<(u64, String)>, String> {
            Ok(self
                .entries
                .iter()
                .filter(|(i, _)| (start..end).contains(i))
                .cloned()
                .collect())
        }
        fn consistency(&mut self, first: u64, second: u64) -> Result<Vec<Hash>, String> {
            self.tree
                .consistency_proof(first, second)
                .ok_or_else(|| "bad sizes".into())
        }
    }

    fn run(s: &mut Server, saved: &str) -> Report {
        let key = s.vkey();
        verify(s, &key, saved, &mut |_, _| {}).unwrap()
    }

    #[test]
    fn an_appended_log_verifies() {
        let mut s = Server::new(2500);
        let saved = s.note();
        for i in 0..77 {
            s.append(10_000 + i);
        }
        let r = run(&mut s, &saved);
        assert_eq!(r.finding, Finding::Ok);
        assert_eq!(
            (r.saved_size, r.current_size, r.entries_checked),
            (2500, 2577, 2577)
        );
    }

    #[test]
    fn a_changed_entry_is_named() {
        for edited in [0u64, 1, 777, 2499] {
            let mut s = Server::new(2500);
            let saved = s.note();
            s.entries[edited as usize].1 = "{\"n\":-1}".into();
            let r = run(&mut s, &saved);
            assert_eq!(
                r.finding,
                Finding::Altered {
                    index: edited,
                    against: "saved"
                },
                "{edited}"
            );
        }
    }

    #[test]
    fn a_removed_or_reordered_entry_is_named() {
        let mut s = Server::new(1200);
        let saved = s.note();
        s.entries.remove(1100);
        assert_eq!(
            run(&mut s, &saved).finding,
            Finding::Missing { index: 1100 }
        );

        let mut s = Server::new(1200);
        let saved = s.note();
        let (a, b) = (s.entries[40].1.clone(), s.entries[41].1.clone());
        s.entries[40].1 = b;
        s.entries[41].1 = a;
        assert_eq!(
            run(&mut s, &saved).finding,
            Finding::Altered {
                index: 40,
                against: "saved"
            }
        );

        // The last rows removed and the head moved back: the log shrank.
        let saved = Server::new(100).note();
        let mut t = Server::new(98);
        assert_eq!(
            run(&mut t, &saved).finding,
            Finding::Shrunk {
                saved: 100,
                current: 98
            }
        );
    }

    #[test]
    fn a_rewritten_history_is_not_an_extension() {
        // Everything recomputed from edited entries and re-signed with the log's own key: the
        // new tree verifies on its own, but not as an extension of the saved checkpoint.
        let s = Server::new(300);
        let saved = s.note();
        let mut forged = Server::new(0);
        for i in 0..310 {
            forged.append(if i == 5 { 555_555 } else { i });
        }
        assert_eq!(run(&mut forged, &saved).finding, Finding::NotAnExtension);
    }

    #[test]
    fn another_key_is_refused() {
        let mut s = Server::new(10);
        let saved = s.note();
        s.key = SigningKey::from_bytes(&[8; 32]);
        let key =
            VerifierKey::new(ORIGIN, &SigningKey::from_bytes(&[9; 32]).verifying_key()).unwrap();
        let r = verify(&mut s, &key, &saved, &mut |_, _| {}).unwrap();
        assert!(matches!(
            r.finding,
            Finding::CurrentCheckpointInvalid { .. }
        ));
        // And a saved checkpoint that does not open is an error, not a report.
        assert!(verify(&mut s, &key, "junk", &mut |_, _| {}).is_err());
    }

    #[test]
    fn an_export_verifies_on_its_own() {
        let s = Server::new(1500);
        let saved = s.note();
        let mut export = MemoryLog {
            checkpoint: s.note(),
            entries: s.entries.clone(),
        };
        let key = s.vkey();
        let r = verify(&mut export, &key, &saved, &mut |_, _| {}).unwrap();
        assert!(r.ok(), "{r:?}");
        let mut grown = s;
        for i in 0..20 {
            grown.append(5000 + i);
        }
        let pristine = MemoryLog {
            checkpoint: grown.note(),
            entries: grown.entries.clone(),
        };
        let check = |log: &MemoryLog, saved: &str| {
            verify(&mut log.clone(), &key, saved, &mut |_, _| {})
                .unwrap()
                .finding
        };
        assert_eq!(check(&pristine, &saved), Finding::Ok);
        // A changed entry before and after the saved size; from an empty saved log too.
        let empty = Server::new(0).note();
        for (edited, saved, against) in [
            (3, &saved, "saved"),
            (1510, &saved, "current"),
            (0, &empty, "current"),
        ] {
            let mut export = pristine.clone();
            export.entries[edited].1.push(' ');
            assert_eq!(
                check(&export, saved),
                Finding::Changed { against },
                "{edited}"
            );
        }
        // A removed entry is named, not an error for want of a proof.
        let mut export = pristine.clone();
        export.entries.remove(1502);
        assert_eq!(check(&export, &saved), Finding::Missing { index: 1502 });
    }
}
