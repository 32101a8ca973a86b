//! RFC 9162 Merkle tree hashing over SHA-256, over a store of perfect subtrees.
//!
//! A log of `n` entries is stored as the hashes of its *perfect aligned subtrees*: the leaf
//! hashes (level 0), and for each level `l`, the hash of every complete run of `2^l` leaves that
//! starts at a multiple of `2^l` ([`Node`]). Appending a leaf adds it and the nodes it completes
//! (one more on average), and never changes a stored hash. Every hash the RFC's algorithms need,
//! `MTH(D[a:b])` for the ranges a root or a proof is built from, is a right fold of a few such
//! nodes ([`parts`], [`fold`]), so a proof of a million-entry log reads about 40 stored hashes.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// `HASH(0x00 ‖ entry)`: the hash of one log entry.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

/// `HASH(0x01 ‖ left ‖ right)`: an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: `HASH()`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// A perfect aligned subtree: the leaves `index·2^level .. (index+1)·2^level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Node {
    /// 0 for a leaf.
    pub level: u32,
    /// Position among the nodes of its level.
    pub index: u64,
}

impl Node {
    /// Its left and right halves (for a level above 0).
    pub fn children(self) -> Option<(Node, Node)> {
        let level = self.level.checked_sub(1)?;
        let left = self.index.checked_mul(2)?;
        Some((
            Node { level, index: left },
            Node {
                level,
                index: left.checked_add(1)?,
            },
        ))
    }
}

/// The perfect aligned subtrees that make up the leaves `start..end`, left to right, each the
/// largest that starts where the previous ended. For the ranges RFC 9162's definitions produce
/// (a root, a proof's subtrees) their sizes decrease, and [`fold`] of their hashes is
/// `MTH(D[start:end])`.
pub fn parts(start: u64, end: u64) -> Vec<Node> {
    let mut out = Vec::new();
    let mut s = start;
    while s < end {
        let mut level = 0u32;
        while level < 63 {
            let size = 1u64 << (level + 1);
            if !s.is_multiple_of(size) || end - s < size {
                break;
            }
            level += 1;
        }
        out.push(Node {
            level,
            index: s >> level,
        });
        s += 1u64 << level;
    }
    out
}

/// Right fold of subtree hashes: `H(p0, H(p1, … H(pk-1, pk)))`, the hash of the range they
/// make up (see [`parts`]). `None` for no parts.
pub fn fold(hashes: &[Hash]) -> Option<Hash> {
    let (last, rest) = hashes.split_last()?;
    Some(rest.iter().rev().fold(*last, |acc, h| node_hash(h, &acc)))
}

/// The largest power of two smaller than `n` (`n > 1`).
fn split(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// A leaf range `start..end` whose `MTH` a proof carries.
pub type Range = (u64, u64);

/// The ranges whose hashes make the inclusion proof of leaf `m` in a tree of `n` leaves
/// (RFC 9162 §2.1.3.1), from the leaf up. Empty when `m >= n` or `n == 1`.
pub fn inclusion_ranges(m: u64, n: u64) -> Vec<Range> {
    fn path(m: u64, start: u64, end: u64, out: &mut Vec<Range>) {
        let n = end - start;
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m - start < k {
            path(m, start, start + k, out);
            out.push((start + k, end));
        } else {
            path(m, start + k, end, out);
            out.push((start, start + k));
        }
    }
    let mut out = Vec::new();
    if m < n {
        path(m, 0, n, &mut out);
    }
    out
}

/// The ranges whose hashes make the consistency proof from a tree of `m` leaves to one of `n`
/// (RFC 9162 §2.1.4.1). Empty when `m == 0`, `m >= n`.
pub fn consistency_ranges(m: u64, n: u64) -> Vec<Range> {
    fn subproof(m: u64, start: u64, end: u64, complete: bool, out: &mut Vec<Range>) {
        let n = end - start;
        if m == n {
            if !complete {
                out.push((start, end));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            subproof(m, start, start + k, complete, out);
            out.push((start + k, end));
        } else {
            subproof(m - k, start + k, end, false, out);
            out.push((start, start + k));
        }
    }
    let mut out = Vec::new();
    if m > 0 && m < n {
        subproof(m, 0, n, true, &mut out);
    }
    out
}

/// The nodes above the leaves that appending leaf number `leaf` (0-based) completes, lowest
/// first. Each is `H(left, right)` where `right` is the leaf itself or the node completed just
/// below it, and `left` its stored sibling ([`Node::children`]).
pub fn completed_by(leaf: u64) -> Vec<Node> {
    let mut out = Vec::new();
    let count = leaf.saturating_add(1);
    let mut level = 1u32;
    while level < 64 && count.is_multiple_of(1u64 << level) {
        out.push(Node {
            level,
            index: (count >> level) - 1,
        });
        level += 1;
    }
    out
}

/// Every node a set of ranges needs, in order, without repeats.
pub fn nodes_for(ranges: &[Range]) -> Vec<Node> {
    let mut out: Vec<Node> = ranges.iter().flat_map(|&(a, b)| parts(a, b)).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The hashes of `ranges`, each folded from its parts looked up with `node`; `None` when a
/// node is missing.
pub fn range_hashes(
    ranges: &[Range],
    mut node: impl FnMut(Node) -> Option<Hash>,
) -> Option<Vec<Hash>> {
    ranges
        .iter()
        .map(|&(a, b)| {
            let hashes = parts(a, b)
                .into_iter()
                .map(&mut node)
                .collect::<Option<Vec<Hash>>>()?;
            fold(&hashes)
        })
        .collect()
}

/// The root of a tree of `n` leaves from its stored nodes (the empty root for 0).
pub fn root(n: u64, node: impl FnMut(Node) -> Option<Hash>) -> Option<Hash> {
    if n == 0 {
        return Some(empty_root());
    }
    range_hashes(&[(0, n)], node).and_then(|mut v| v.pop())
}

/// RFC 9162 §2.1.3.2: does `proof` show that `leaf` is entry `index` of the tree of `size`
/// leaves with this `root`?
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == *root
}

/// RFC 9162 §2.1.4.2: does `proof` show that the tree of `old_size` leaves with `old_root` is
/// a prefix of the tree of `new_size` leaves with `new_root`? (Equal sizes need an empty proof
/// and equal roots; the empty tree is a prefix of every tree.)
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        return proof.is_empty();
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut fnode, mut snode) = (old_size - 1, new_size - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && fr == *old_root && sr == *new_root
}

/// A whole tree in memory, stored the same way as in the database: what the offline verifier
/// rebuilds from the entries it downloaded, and what tests compare the store with.
#[derive(Clone, Debug, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> MemoryTree {
        MemoryTree::default()
    }

    /// Leaves so far.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// No leaves yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a leaf hash and the nodes it completes.
    pub fn push(&mut self, leaf: Hash) {
        let index = self.len();
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(leaf);
        let mut cur = leaf;
        for node in completed_by(index) {
            let Some((left, _)) = node.children() else {
                break;
            };
            let Some(l) = self.node(left) else { break };
            cur = node_hash(&l, &cur);
            let level = node.level as usize;
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(cur);
        }
    }

    /// A stored node.
    pub fn node(&self, node: Node) -> Option<Hash> {
        let index = usize::try_from(node.index).ok()?;
        self.levels.get(node.level as usize)?.get(index).copied()
    }

    /// The root of the first `n` leaves.
    pub fn root(&self, n: u64) -> Option<Hash> {
        if n > self.len() {
            return None;
        }
        root(n, |x| self.node(x))
    }

    /// `MTH(D[a:b])` for a range a proof uses.
    pub fn range_hash(&self, a: u64, b: u64) -> Option<Hash> {
        range_hashes(&[(a, b)], |x| self.node(x)).and_then(|mut v| v.pop())
    }

    /// The inclusion proof of leaf `m` in the tree of the first `n` leaves.
    pub fn inclusion_proof(&self, m: u64, n: u64) -> Option<Vec<Hash>> {
        if m >= n || n > self.len() {
            return None;
        }
        range_hashes(&inclusion_ranges(m, n), |x| self.node(x))
    }

    /// The consistency proof from the first `m` leaves to the first `n`.
    pub fn consistency_proof(&self, m: u64, n: u64) -> Option<Vec<Hash>> {
        if m > n || n > self.len() {
            return None;
        }
        range_hashes(&consistency_ranges(m, n), |x| self.node(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9162's definition, recursively, straight from the leaves.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn stored_roots_equal_the_recursive_definition() {
        let all = leaves(70);
        let mut tree = MemoryTree::new();
        assert_eq!(tree.root(0), Some(empty_root()));
        for (i, leaf) in all.iter().enumerate() {
            tree.push(*leaf);
            for n in 0..=tree.len() {
                assert_eq!(
                    tree.root(n),
                    Some(mth(&all[..n as usize])),
                    "n={n} after {i}"
                );
            }
        }
    }

    #[test]
    fn every_inclusion_proof_verifies_and_no_altered_one_does() {
        let all = leaves(40);
        let mut tree = MemoryTree::new();
        all.iter().for_each(|l| tree.push(*l));
        for n in 1..=40u64 {
            let root = tree.root(n).unwrap();
            for m in 0..n {
                let proof = tree.inclusion_proof(m, n).unwrap();
                assert!(proof.len() <= 64 - (n - 1).leading_zeros() as usize);
                assert!(
                    verify_inclusion(m, n, &all[m as usize], &proof, &root),
                    "{m}/{n}"
                );
                // Another leaf, index, size or a flipped proof bit fails.
                let other = all[((m + 1) % n) as usize];
                if n > 1 {
                    assert!(!verify_inclusion(m, n, &other, &proof, &root));
                    assert!(!verify_inclusion(
                        (m + 1) % n,
                        n,
                        &all[m as usize],
                        &proof,
                        &root
                    ));
                }
                // The size is bound by the checkpoint: a proof for n leaves does not verify
                // against the root of n + 1 (it may against n's root with another size, which
                // is why a verifier takes size and root from the same signed checkpoint).
                if let Some(next) = tree.root(n + 1) {
                    assert!(!verify_inclusion(m, n + 1, &all[m as usize], &proof, &next));
                }
                for i in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[i][0] ^= 1;
                    assert!(!verify_inclusion(m, n, &all[m as usize], &bad, &root));
                }
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_a_changed_history_does_not() {
        let all = leaves(40);
        let mut tree = MemoryTree::new();
        all.iter().for_each(|l| tree.push(*l));
        let mut changed = MemoryTree::new();
        all.iter()
            .enumerate()
            .for_each(|(i, l)| changed.push(if i == 5 { leaf_hash(b"edited") } else { *l }));
        for n in 1..=40u64 {
            for m in 0..=n {
                let (old, new) = (tree.root(m).unwrap(), tree.root(n).unwrap());
                let proof = tree.consistency_proof(m, n).unwrap();
                assert!(verify_consistency(m, n, &old, &new, &proof), "{m}->{n}");
                for i in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[i][31] ^= 0x80;
                    assert!(
                        !verify_consistency(m, n, &old, &new, &bad),
                        "{m}->{n} bit {i}"
                    );
                }
                // A new tree whose entry 5 was rewritten is not an extension of the old one.
                if m > 5 {
                    let forged = changed.root(n).unwrap();
                    let proof = changed.consistency_proof(m, n).unwrap();
                    assert!(!verify_consistency(m, n, &old, &forged, &proof), "{m}->{n}");
                }
            }
        }
        assert!(!verify_consistency(5, 4, &[0; 32], &[0; 32], &[]));
    }

    #[test]
    fn a_million_leaves_need_at_most_twenty_hashes_in_a_proof() {
        let n = 1_000_000u64;
        for m in [0, 1, 524_287, 524_288, 999_999] {
            assert!(inclusion_ranges(m, n).len() <= 20);
        }
        assert!(consistency_ranges(300_001, n).len() <= 40);
        // Each proof hash is folded from few stored nodes.
        assert!(nodes_for(&inclusion_ranges(999_999, n)).len() <= 40);
    }

    #[test]
    fn appending_completes_the_expected_nodes() {
        assert!(completed_by(0).is_empty());
        assert_eq!(completed_by(1), vec![Node { level: 1, index: 0 }]);
        assert_eq!(
            completed_by(7),
            vec![
                Node { level: 1, index: 3 },
                Node { level: 2, index: 1 },
                Node { level: 3, index: 0 }
            ]
        );
        assert_eq!(
            parts(0, 13),
            vec![
                Node { level: 3, index: 0 },
                Node { level: 2, index: 2 },
                Node {
                    level: 0,
                    index: 12
                }
            ]
        );
    }
}
