//! The audit log's offline checks on any input: verifier keys, signed checkpoints and their
//! bodies, inclusion and consistency proofs of any shape, and the whole-log verifier over a log
//! whose entries the input writes and then tampers with. Never a panic, and never a wrong
//! verdict: proofs from a real tree verify, altered ones do not, and the verifier names the
//! first altered entry.
#![no_main]

use consentry_audit::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use consentry_audit::verify::{verify, Finding, Log, MemoryLog};
use consentry_audit::{Checkpoint, Hash, MemoryTree, VerifierKey};
use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;

const ORIGIN: &str = "consentry/fuzz";

/// A little reader over the input: numbers and hashes run out as zeros.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(std::array::from_fn(|_| self.byte()))
    }
    fn hash(&mut self) -> Hash {
        std::array::from_fn(|_| self.byte())
    }
}

/// A server's log: its tree stays as written whatever happens to the entries (what an edit of
/// the entries table alone leaves behind).
struct TreeLog {
    log: MemoryLog,
    tree: MemoryTree,
    export: bool,
}

impl Log for TreeLog {
    fn checkpoint(&mut self) -> Result<String, String> {
        self.log.checkpoint()
    }
    fn entries(&mut self, start: u64, end: u64) -> Result<Vec<(u64, String)>, String> {
        self.log.entries(start, end)
    }
    fn consistency(&mut self, first: u64, second: u64) -> Result<Vec<Hash>, String> {
        self.tree
            .consistency_proof(first, second)
            .ok_or_else(|| "sizes".into())
    }
}

fn key() -> (SigningKey, VerifierKey) {
    let sk = SigningKey::from_bytes(&[7; 32]);
    let vk = VerifierKey::new(ORIGIN, &sk.verifying_key()).expect("key name");
    (sk, vk)
}

fn note(tree: &MemoryTree, size: u64, sk: &SigningKey) -> String {
    let root = tree.root(size).expect("root of a size the tree has");
    Checkpoint {
        origin: ORIGIN.into(),
        size,
        root,
    }
    .sign(sk)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (sk, vk) = key();
    match mode % 4 {
        // Text parsers: a verifier key, a signed note, a bare body.
        0 => {
            let text = String::from_utf8_lossy(rest);
            if let Ok(k) = VerifierKey::parse(&text) {
                assert_eq!(VerifierKey::parse(&k.to_string()), Ok(k));
            }
            if let Ok(cp) = Checkpoint::open(&text, &vk) {
                assert_eq!(cp.origin, ORIGIN);
            }
            if let Ok(cp) = Checkpoint::parse_body(&text) {
                assert_eq!(Checkpoint::parse_body(&cp.body()), Ok(cp));
            }
        }
        // Proofs of any shape against any sizes: a verdict, never a panic.
        1 => {
            let mut input = Input(rest);
            let (m, n) = (input.u64() % 1_000_000, input.u64());
            let (a, b) = (input.hash(), input.hash());
            let proof: Vec<Hash> = input
                .0
                .chunks(32)
                .map(|c| std::array::from_fn(|i| c.get(i).copied().unwrap_or(0)))
                .collect();
            let _ = verify_inclusion(m, n, &a, &proof, &b);
            let _ = verify_consistency(m, n, &a, &b, &proof);
            let _ = verify_consistency(n, m, &a, &b, &proof);
        }
        // Proofs from a real tree verify; any changed bit in them does not.
        2 => {
            let mut input = Input(rest);
            let size = u64::from(input.byte() % 100) + 1;
            let mut tree = MemoryTree::new();
            for i in 0..size {
                tree.push(leaf_hash(&i.to_le_bytes()));
            }
            let n = input.u64() % size + 1;
            let m = input.u64() % n + 1;
            let i = input.u64() % n;
            let flip = input.u64();
            let root_n = tree.root(n).expect("root");
            let root_m = tree.root(m).expect("root");
            let leaf = leaf_hash(&i.to_le_bytes());
            let mut incl = tree.inclusion_proof(i, n).expect("inclusion proof");
            let mut cons = tree.consistency_proof(m, n).expect("consistency proof");
            assert!(verify_inclusion(i, n, &leaf, &incl, &root_n));
            assert!(verify_consistency(m, n, &root_m, &root_n, &cons));
            if !incl.is_empty() {
                let bit = flip as usize % (incl.len() * 256);
                incl[bit / 256][bit % 256 / 8] ^= 1 << (bit % 8);
                assert!(!verify_inclusion(i, n, &leaf, &incl, &root_n));
            }
            if !cons.is_empty() {
                let bit = flip as usize % (cons.len() * 256);
                cons[bit / 256][bit % 256 / 8] ^= 1 << (bit % 8);
                assert!(!verify_consistency(m, n, &root_m, &root_n, &cons));
            }
        }
        // The whole-log verifier, over a server's log (a tree kept apart from the entries) and
        // over an export (entries only): entries written by the input, signed, then maybe
        // tampered with.
        _ => {
            let mut input = Input(rest);
            let saved_size = u64::from(input.byte() % 40);
            let extra = u64::from(input.byte() % 40);
            let tamper = input.byte();
            let at = u64::from(input.byte());
            let text = String::from_utf8_lossy(input.0);
            let mut words = text.split('\n');
            let size = saved_size + extra;
            let entries: Vec<(u64, String)> = (0..size)
                .map(|i| (i, format!("{i}:{}", words.next().unwrap_or(""))))
                .collect();
            let mut tree = MemoryTree::new();
            for (_, e) in &entries {
                tree.push(leaf_hash(e.as_bytes()));
            }
            let saved = note(&tree, saved_size, &sk);
            let mut log = TreeLog {
                log: MemoryLog {
                    checkpoint: note(&tree, size, &sk),
                    entries,
                },
                tree,
                export: tamper & 0x10 != 0,
            };
            let mut expected = Finding::Ok;
            if size > 0 {
                let k = at % size;
                let against = if k < saved_size { "saved" } else { "current" };
                match tamper % 4 {
                    1 => {
                        log.log.entries[k as usize].1.push('!');
                        expected = if log.export {
                            Finding::Changed { against }
                        } else {
                            Finding::Altered { index: k, against }
                        };
                    }
                    2 => {
                        log.log.entries.remove(k as usize);
                        expected = Finding::Missing { index: k };
                    }
                    3 => {
                        log.log.checkpoint = log.log.checkpoint.replace(ORIGIN, "consentry/other");
                        expected = Finding::CurrentCheckpointInvalid {
                            reason: String::new(),
                        };
                    }
                    _ => {}
                }
            }
            let report = if log.export {
                verify(&mut log.log, &vk, &saved, &mut |_, _| {})
            } else {
                verify(&mut log, &vk, &saved, &mut |_, _| {})
            }
            .expect("verify runs");
            match (&report.finding, &expected) {
                (
                    Finding::CurrentCheckpointInvalid { .. },
                    Finding::CurrentCheckpointInvalid { .. },
                ) => {}
                (found, expected) => assert_eq!(found, expected),
            }
        }
    }
});
