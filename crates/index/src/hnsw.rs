//! HNSW: hierarchical navigable small-world graph (Malkov & Yashunin, 2018).

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Mutex, MutexGuard};

use zeroize::Zeroize;

use crate::aligned::LineAligned;
use crate::quant::{dot_i8_sized, quantise};
use crate::{check, dot_sized as dot, Hit, Index, IndexError};

/// Graph parameters.
#[derive(Clone, Copy, Debug)]
pub struct HnswParams {
    /// Links per node on the upper levels.
    pub m: usize,
    /// Links per node on level 0, where every search ends and spends nearly all its time. A
    /// node links to `m0 / 2` neighbours when it is inserted and takes links from later nodes up
    /// to `m0`. Face embeddings of many people are high-dimensional (no direction stands out),
    /// so a search finds a person only by meeting one of the few nodes that link to them: the
    /// more links a node has, the more such doors. At a million templates `m0 = 128` needs a
    /// fifth of the work `m0 = 32` (the paper's `2m`) needs for the same recall
    /// (docs/benchmarks.md).
    pub m0: usize,
    /// Candidate list size while inserting.
    pub ef_construction: usize,
    /// Candidate list size while searching (at least k).
    pub ef_search: usize,
    /// Seed for the level draw (deterministic builds).
    pub seed: u64,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: 16,
            m0: 128,
            ef_construction: 128,
            ef_search: 64,
            seed: 0x5EED_1234_ABCD_0001,
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
struct Scored(f32, u32);

impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// The nodes a search has met: one bit a node, so that a million nodes take 125 KiB and the
/// checks stay in the core's own cache (a word a node missed it on every check).
#[derive(Default)]
struct Visited {
    bits: Vec<u64>,
}

impl Visited {
    /// Forgets every mark, sized for `n` nodes.
    fn reset(&mut self, n: usize) {
        self.bits.clear();
        self.bits.resize(n.div_ceil(64), 0);
    }

    /// Marks `i`; true when it was not yet marked in this search.
    fn insert(&mut self, i: u32) -> bool {
        let (word, bit) = ((i / 64) as usize, 1u64 << (i % 64));
        let fresh = self.bits[word] & bit == 0;
        self.bits[word] |= bit;
        fresh
    }

    /// Appends to `out` the nodes of `nodes` not yet marked, and marks them. Branch-free, so
    /// that the checks of one list all run at once.
    fn filter_into(&mut self, nodes: &[u32], out: &mut Vec<u32>) {
        let start = out.len();
        out.resize(start + nodes.len(), 0);
        let mut len = start;
        for &i in nodes {
            let (word, bit) = ((i / 64) as usize, 1u64 << (i % 64));
            let seen = self.bits[word] & bit;
            self.bits[word] |= bit;
            out[len] = i;
            len += usize::from(seen == 0);
        }
        out.truncate(len);
    }
}

/// What the search and linking algorithms need of a graph: rows, neighbour lists (read under
/// whatever guard the storage needs) and deletion marks. Implemented by the index itself and
/// by the shared, lock-per-list graph of a parallel build.
trait Graph {
    fn row(&self, n: u32) -> &[f32];
    /// Row `n` as 8-bit codes, and their scale (`row ≈ scale · code`).
    fn code(&self, n: u32) -> (&[i8], f32);
    /// Calls `f` with the neighbours of `n` on `level`.
    fn links<R>(&self, n: u32, level: usize, f: impl FnOnce(&[u32]) -> R) -> R;
    fn deleted(&self, n: u32) -> bool;

    /// The similarity of the query to node `n` on the 8-bit codes: what a walk through the
    /// graph ranks by.
    fn sim(&self, q: &Probe, n: u32) -> f32 {
        let (code, scale) = self.code(n);
        dot_i8_sized(&q.codes, code) as f32 * q.scale * scale
    }

    /// `found` scored again exactly, on the rows, best first.
    fn exact(&self, q: &Probe, found: Vec<Scored>) -> Vec<Scored> {
        touch_rows(found.iter().map(|s| self.row(s.1)));
        let mut exact: Vec<Scored> = found
            .into_iter()
            .map(|s| Scored(dot(q.row, self.row(s.1)), s.1))
            .collect();
        exact.sort_by(|a, b| b.cmp(a));
        exact
    }

    /// Walks from `ep` to ever better neighbours on `level` until none is better.
    fn greedy(&self, q: &Probe, mut ep: u32, level: usize) -> u32 {
        let mut best = self.sim(q, ep);
        loop {
            let next = self.links(ep, level, |nbs| {
                let mut next = None;
                for &n in nbs {
                    let s = self.sim(q, n);
                    if s > best {
                        best = s;
                        next = Some(n);
                    }
                }
                next
            });
            match next {
                Some(n) => ep = n,
                None => return ep,
            }
        }
    }

    /// Best `ef` nodes found from `ep` on `level`, best first.
    fn search_layer(
        &self,
        q: &Probe,
        ep: u32,
        ef: usize,
        level: usize,
        visited: &mut Visited,
    ) -> Vec<Scored> {
        visited.insert(ep);
        let first = Scored(self.sim(q, ep), ep);
        let mut candidates = BinaryHeap::from([first]);
        let mut results = BinaryHeap::from([Reverse(first)]);
        let mut fresh: Vec<u32> = Vec::with_capacity(64);
        let mut scores: Vec<f32> = Vec::with_capacity(64);
        while let Some(Scored(s, n)) = candidates.pop() {
            let worst = results.peek().map_or(f32::NEG_INFINITY, |r| r.0 .0);
            if s < worst && results.len() >= ef {
                break;
            }
            fresh.clear();
            self.links(n, level, |nbs| visited.filter_into(nbs, &mut fresh));
            // Fetch, score, then decide: no branch on a score waits for memory.
            touch_codes(fresh.iter().map(|&m| self.code(m).0));
            scores.clear();
            scores.extend(fresh.iter().map(|&m| self.sim(q, m)));
            for (&m, &sm) in fresh.iter().zip(&scores) {
                let worst = results.peek().map_or(f32::NEG_INFINITY, |r| r.0 .0);
                if results.len() < ef || sm > worst {
                    candidates.push(Scored(sm, m));
                    results.push(Reverse(Scored(sm, m)));
                    if results.len() > ef {
                        results.pop();
                    }
                }
            }
        }
        let mut out: Vec<Scored> = results.into_iter().map(|r| r.0).collect();
        out.sort_by(|a, b| b.cmp(a));
        out
    }

    /// The neighbour-selection heuristic: keep a candidate only when it is closer to the base
    /// than to every neighbour already kept, which spreads links across clusters.
    ///
    /// Slots the heuristic leaves empty are filled with the closest pruned candidates: in high
    /// intrinsic dimension (face embeddings of many people) the extra links raise recall.
    /// The kept candidates keep their similarities to the base.
    fn select(&self, candidates: &[Scored], m: usize) -> Vec<Scored> {
        let mut kept: Vec<Scored> = Vec::with_capacity(m);
        let mut pruned: Vec<Scored> = Vec::new();
        for &Scored(s, c) in candidates {
            if kept.len() >= m {
                break;
            }
            if self.deleted(c) {
                continue;
            }
            let row = self.row(c);
            if kept.iter().all(|k| dot(row, self.row(k.1)) < s) {
                kept.push(Scored(s, c));
            } else {
                pruned.push(Scored(s, c));
            }
        }
        let room = m.saturating_sub(kept.len());
        kept.extend(pruned.into_iter().take(room));
        kept
    }

    /// The links `list` of node `n` cut back to `max`: on level 0 the closest are kept (its
    /// lists are long, and the heuristic's cost grows with the square of their length), on the
    /// upper levels the heuristic chooses.
    fn shrunk(&self, n: u32, list: &[u32], max: usize, level: usize) -> Vec<u32> {
        let base = self.row(n);
        let mut cands: Vec<Scored> = list
            .iter()
            .map(|&c| Scored(dot(base, self.row(c)), c))
            .collect();
        cands.sort_by(|a, b| b.cmp(a));
        if level == 0 {
            return cands
                .iter()
                .filter(|c| !self.deleted(c.1))
                .take(max)
                .map(|c| c.1)
                .collect();
        }
        self.select(&cands, max).into_iter().map(|c| c.1).collect()
    }
}

/// A query (or a node being linked in) as a walk scores it: its row, and its 8-bit codes with
/// their scale.
///
/// Walks through the graph rank nodes on their codes: at a million nodes the rows are far
/// beyond the caches and a hop's neighbours lie scattered over them, so the time goes on
/// fetching rows, and a node's codes are a quarter of its row (2 cache lines of 128-d instead
/// of 8). What a walk found is then scored again on the rows ([`Graph::exact`]), so links are
/// chosen, and answers ranked and scored, on exact similarities.
struct Probe<'a> {
    row: &'a [f32],
    codes: Vec<i8>,
    scale: f32,
}

impl<'a> Probe<'a> {
    fn new(row: &'a [f32]) -> Self {
        let mut codes = vec![0; row.len()];
        let scale = quantise(row, &mut codes);
        Probe { row, codes, scale }
    }
}

/// Reads one float in every 64 bytes (a cache line) of `rows`, so that their fetches from memory are
/// under way before the first score waits on one (a software prefetch without `unsafe`): the
/// rows a walk found, or (as [`touch_codes`]) the codes of a hop's neighbours, lie scattered
/// over the whole gallery. Halved the time per query at a million rows when walks read rows.
fn touch_rows<'a>(rows: impl Iterator<Item = &'a [f32]>) {
    let mut acc = 0u32;
    for row in rows {
        for x in row.iter().step_by(16) {
            acc ^= x.to_bits();
        }
    }
    std::hint::black_box(acc);
}

/// [`touch_rows`] for rows of 8-bit codes.
fn touch_codes<'a>(rows: impl Iterator<Item = &'a [i8]>) {
    let mut acc = 0u8;
    for row in rows {
        for x in row.iter().step_by(64) {
            acc ^= x.cast_unsigned();
        }
    }
    std::hint::black_box(acc);
}

fn max_links(params: &HnswParams, level: usize) -> usize {
    if level == 0 {
        params.m0.max(1)
    } else {
        params.m
    }
}

/// Writing neighbour lists: directly into the index, or under each list's own lock during a
/// parallel build.
trait Link: Graph {
    fn params(&self) -> &HnswParams;
    /// Words per node in a level-0 block: the count, then the links.
    fn stride(&self) -> usize {
        max_links(self.params(), 0) + 1
    }
    /// Nodes in the graph (the size of a visited set).
    fn nodes(&self) -> usize;
    /// Sets the links of `n`, each with its similarity to `n`.
    fn set_links(&mut self, n: u32, level: usize, links: Vec<Scored>);
    /// Adds `link` (a node and its similarity to `n`) to the links of `n`, cut back by
    /// [`Graph::shrunk`]'s rule when they grow past `max`.
    fn add_link(&mut self, n: u32, level: usize, link: Scored, max: usize);
}

/// HNSW's insertion step, shared by one-by-one adds and the parallel build: links `node` (row
/// `q`, top level `level`) in, descending from `entry`, the entry point, whose level is `top`.
fn link_node<G: Link>(
    g: &mut G,
    q: &[f32],
    node: u32,
    level: usize,
    (entry, top): (u32, usize),
    visited: &mut Visited,
) {
    let params = *g.params();
    let q = &Probe::new(q);
    let mut ep = entry;
    for l in (level + 1..=top).rev() {
        ep = g.greedy(q, ep, l);
    }
    for l in (0..=level.min(top)).rev() {
        visited.reset(g.nodes());
        let found = g.search_layer(q, ep, params.ef_construction, l, visited);
        let found = g.exact(q, found);
        let take = if l == 0 { params.m0 / 2 } else { params.m };
        // Each chosen neighbour with its exact similarity to the new node, as `exact` scored it:
        // the same number on both ends of the link, so neither list ever computes it again.
        let neighbours = g.select(&found, take.max(1));
        for &Scored(sim, nb) in &neighbours {
            g.add_link(nb, l, Scored(sim, node), max_links(&params, l));
        }
        g.set_links(node, l, neighbours);
        if let Some(best) = found.first() {
            ep = best.1;
        }
    }
}

/// An approximate index. Walks through the graph rank nodes on 8-bit codes of their vectors;
/// answers are ranked and scored on the vectors themselves. Removal marks the node deleted
/// (never returned again), zeroes its vector and codes, and reconnects its neighbours among
/// themselves; when a quarter of the nodes are deleted the graph is rebuilt from the live ones.
pub struct HnswIndex {
    params: HnswParams,
    dim: usize,
    data: LineAligned<f32>,
    /// Each row as 8-bit codes with one scale a row (`row ≈ scale · code`, as in
    /// [`crate::QuantIndex`]). A search walks the graph on these, a quarter of the memory
    /// traffic of the rows at a million nodes, and re-ranks what it found on the rows; links are
    /// always chosen on the rows.
    codes: LineAligned<i8>,
    scales: Vec<f32>,
    ids: Vec<u64>,
    deleted: Vec<bool>,
    /// Level-0 lists in one block, `m0 + 1` words a node ([`Link::stride`]): the count, then the links. One
    /// contiguous read per hop on the level where searches spend their time.
    level0: Vec<u32>,
    /// Lists on levels 1 and up (empty for the nodes on level 0 only).
    upper: Vec<Vec<Vec<u32>>>,
    slots: HashMap<u64, u32>,
    entry: Option<u32>,
    live: usize,
    rng: u64,
    visited: Mutex<Vec<Visited>>,
}

impl std::fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HnswIndex")
            .field("params", &self.params)
            .field("dim", &self.dim)
            .field("live", &self.live)
            .finish_non_exhaustive()
    }
}

impl HnswIndex {
    /// An empty graph.
    pub fn new(dim: usize, params: HnswParams) -> Self {
        HnswIndex {
            params,
            dim,
            data: LineAligned::default(),
            codes: LineAligned::default(),
            scales: Vec::new(),
            ids: Vec::new(),
            deleted: Vec::new(),
            level0: Vec::new(),
            upper: Vec::new(),
            slots: HashMap::new(),
            entry: None,
            live: 0,
            rng: params.seed | 1,
            visited: Mutex::new(Vec::new()),
        }
    }

    /// Sets the search candidate list size.
    pub fn set_ef_search(&mut self, ef: usize) {
        self.params.ef_search = ef.max(1);
    }

    /// xorshift64*: the index's own seeded generator (level draws, build order).
    fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn draw_level(&mut self) -> usize {
        // A geometric level with mL = 1 / ln(M).
        let r = self.next_random();
        let u = ((r >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let ml = 1.0 / (self.params.m.max(2) as f64).ln();
        ((-u.ln() * ml) as usize).min(16)
    }

    fn top_level(&self) -> usize {
        self.entry.map_or(0, |e| self.upper[e as usize].len())
    }

    /// Takes the rows of a graph built or read whole (row `i` has id `ids[i]`, none removed)
    /// and their codes (see [`quantised`]).
    fn set_rows(
        &mut self,
        ids: &[u64],
        data: LineAligned<f32>,
        (codes, scales): (LineAligned<i8>, Vec<f32>),
    ) {
        self.data = data;
        (self.codes, self.scales) = (codes, scales);
        self.ids = ids.to_vec();
        self.deleted = vec![false; ids.len()];
        self.slots = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| (id, i as u32))
            .collect();
        self.live = ids.len();
    }

    /// The neighbours of `n` on `level`.
    fn list(&self, n: u32, level: usize) -> &[u32] {
        if level == 0 {
            let at = n as usize * self.stride();
            let count = self.level0[at] as usize;
            &self.level0[at + 1..at + 1 + count]
        } else {
            &self.upper[n as usize][level - 1]
        }
    }

    fn write_list(&mut self, n: u32, level: usize, links: Vec<u32>) {
        if level == 0 {
            let stride = self.stride();
            let at = n as usize * stride;
            let count = links.len().min(stride - 1);
            self.level0[at] = count as u32;
            self.level0[at + 1..at + 1 + count].copy_from_slice(&links[..count]);
        } else {
            self.upper[n as usize][level - 1] = links;
        }
    }

    fn take_visited(&self) -> Visited {
        let v = self.visited.lock().ok().and_then(|mut p| p.pop());
        let mut v = v.unwrap_or_default();
        v.reset(self.ids.len());
        v
    }

    fn give_visited(&self, v: Visited) {
        if let Ok(mut p) = self.visited.lock() {
            p.push(v);
        }
    }

    fn insert_node(&mut self, node: u32) {
        let level = self.upper[node as usize].len();
        let Some(entry) = self.entry else {
            self.entry = Some(node);
            return;
        };
        let q = self.row(node).to_vec();
        let top = self.top_level();
        let mut visited = self.take_visited();
        link_node(self, &q, node, level, (entry, top), &mut visited);
        self.give_visited(visited);
        if level > top {
            self.entry = Some(node);
        }
    }

    fn rebuild(&mut self) {
        let live: Vec<(u64, Vec<f32>)> = (0..self.ids.len())
            .filter(|&i| !self.deleted[i])
            .map(|i| (self.ids[i], self.row(i as u32).to_vec()))
            .collect();
        let mut fresh = HnswIndex::new(self.dim, self.params);
        fresh.rng = self.rng;
        for (id, mut v) in live {
            // Vectors were checked when first added.
            let _ = fresh.add(id, &v);
            v.zeroize();
        }
        // The old rows and codes are zeroed as they drop.
        *self = fresh;
    }
}

/// Locks, carrying on through poisoning (a panicking builder thread is reported by the scope).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The graph while several threads build it, the rows (all known before the build starts)
/// shared read-only.
///
/// Level 0, where the walks spend their time, is laid out as in the finished index: one block,
/// `m0 + 1` words a node, the count and then the links, so a hop reads one place. Its lists are
/// read without a lock: a writer stores the links before it publishes a count that covers them,
/// so a reader sees a list as it was or will be, with every entry a node; a list being changed
/// in place may show a mix of old and new links, as a walk a moment earlier or later would.
/// Writers of a level-0 list take that node's lock in `lock0`; each link's similarity to its
/// node is kept beside it in `sims0` for them. The few lists on levels 1 and up each have a
/// lock of their own, taken by readers too. A thread holds at most one lock at a time, so
/// there is no lock order to get wrong.
struct Shared {
    dim: usize,
    data: LineAligned<f32>,
    codes: LineAligned<i8>,
    scales: Vec<f32>,
    params: HnswParams,
    levels: Vec<usize>,
    level0: Vec<AtomicU32>,
    sims0: Vec<AtomicU32>,
    lock0: Vec<Mutex<()>>,
    /// Lists on levels 1 and up (none for the nodes on level 0 only).
    upper: Vec<Vec<Mutex<Links>>>,
    entry: Mutex<u32>,
}

/// A list on levels 1 and up during the parallel build, with each neighbour's similarity to the
/// list's node kept beside it, as `sims0` keeps them for level 0. A full level-0 list (128
/// links) takes a closer link in place of its farthest on nearly every insertion, and with the
/// similarities at hand that is a scan of 128 numbers instead of 128 dot products over rows
/// scattered across the gallery (cache misses; the build is about a fifth faster without them,
/// docs/benchmarks.md).
#[derive(Default)]
struct Links {
    ids: Vec<u32>,
    sims: Vec<f32>,
}

impl Graph for &Shared {
    fn row(&self, n: u32) -> &[f32] {
        let i = n as usize * self.dim;
        &self.data[i..i + self.dim]
    }

    fn code(&self, n: u32) -> (&[i8], f32) {
        let i = n as usize * self.dim;
        (&self.codes[i..i + self.dim], self.scales[n as usize])
    }

    fn links<R>(&self, n: u32, level: usize, f: impl FnOnce(&[u32]) -> R) -> R {
        if level > 0 {
            return f(&lock(&self.upper[n as usize][level - 1]).ids);
        }
        let at = n as usize * self.stride();
        let count = self.level0[at].load(AtomicOrdering::Acquire) as usize;
        let list = &self.level0[at + 1..at + 1 + count];
        let mut copy = [0u32; 128];
        if count <= copy.len() {
            for (c, l) in copy.iter_mut().zip(list) {
                *c = l.load(AtomicOrdering::Relaxed);
            }
            f(&copy[..count])
        } else {
            let copy: Vec<u32> = list
                .iter()
                .map(|l| l.load(AtomicOrdering::Relaxed))
                .collect();
            f(&copy)
        }
    }

    fn deleted(&self, _: u32) -> bool {
        false
    }
}

impl Link for &Shared {
    fn params(&self) -> &HnswParams {
        &self.params
    }

    fn nodes(&self) -> usize {
        self.levels.len()
    }

    fn set_links(&mut self, n: u32, level: usize, links: Vec<Scored>) {
        if level > 0 {
            *lock(&self.upper[n as usize][level - 1]) = Links {
                ids: links.iter().map(|l| l.1).collect(),
                sims: links.iter().map(|l| l.0).collect(),
            };
            return;
        }
        let _writing = lock(&self.lock0[n as usize]);
        let (at, m0) = (n as usize * self.stride(), self.stride() - 1);
        let links = &links[..links.len().min(m0)];
        for (i, l) in links.iter().enumerate() {
            self.level0[at + 1 + i].store(l.1, AtomicOrdering::Relaxed);
            self.sims0[n as usize * m0 + i].store(l.0.to_bits(), AtomicOrdering::Relaxed);
        }
        self.level0[at].store(links.len() as u32, AtomicOrdering::Release);
    }

    fn add_link(&mut self, n: u32, level: usize, link: Scored, max: usize) {
        if level == 0 {
            let _writing = lock(&self.lock0[n as usize]);
            let (at, m0) = (n as usize * self.stride(), self.stride() - 1);
            let count = self.level0[at].load(AtomicOrdering::Relaxed) as usize;
            let ids = &self.level0[at + 1..at + 1 + m0];
            let sims = &self.sims0[n as usize * m0..(n as usize + 1) * m0];
            if count < max.min(m0) {
                ids[count].store(link.1, AtomicOrdering::Relaxed);
                sims[count].store(link.0.to_bits(), AtomicOrdering::Relaxed);
                self.level0[at].store(count as u32 + 1, AtomicOrdering::Release);
                return;
            }
            // The rule of [`Graph::shrunk`] on level 0 (no node is deleted during a build),
            // from the kept similarities: the list is full, so the new link takes the place of
            // the farthest one if it is closer.
            let scored = sims[..count].iter().zip(&ids[..count]).map(|(s, c)| {
                Scored(
                    f32::from_bits(s.load(AtomicOrdering::Relaxed)),
                    c.load(AtomicOrdering::Relaxed),
                )
            });
            if let Some((at, worst)) = scored.enumerate().min_by_key(|&(_, s)| s) {
                if link > worst {
                    ids[at].store(link.1, AtomicOrdering::Relaxed);
                    sims[at].store(link.0.to_bits(), AtomicOrdering::Relaxed);
                }
            }
            return;
        }
        let mut list = lock(&self.upper[n as usize][level - 1]);
        list.ids.push(link.1);
        list.sims.push(link.0);
        if list.ids.len() <= max {
            return;
        }
        // Upper lists are short and few: the heuristic's own dot products are cheap there.
        let mut scored: Vec<Scored> = list
            .sims
            .iter()
            .zip(&list.ids)
            .map(|(&s, &c)| Scored(s, c))
            .collect();
        scored.sort_by(|a, b| b.cmp(a));
        let kept = self.select(&scored, max);
        list.ids = kept.iter().map(|l| l.1).collect();
        list.sims = kept.iter().map(|l| l.0).collect();
    }
}

impl Shared {
    /// Links `node` in, each list changed under its own lock.
    fn insert(&self, node: u32, visited: &mut Visited) {
        let level = self.levels[node as usize];
        let entry = *lock(&self.entry);
        let top = self.levels[entry as usize];
        let i = node as usize * self.dim;
        let mut graph = self;
        link_node(
            &mut graph,
            &self.data[i..i + self.dim],
            node,
            level,
            (entry, top),
            visited,
        );
        if level > top {
            let mut entry = lock(&self.entry);
            if level > self.levels[*entry as usize] {
                *entry = node;
            }
        }
    }
}

impl HnswIndex {
    /// Builds the graph over all of `data` at once (row `i` has id `ids[i]`), with `threads`
    /// threads inserting rows concurrently; `progress` is told how many rows are in now and
    /// then. The same parameters and level draws as adding the rows one by one (with one
    /// thread, the very same graph); with more, the links differ only by insertion order.
    /// Repeated ids fall back to adding one by one (a later row replaces an earlier one).
    pub fn build(
        dim: usize,
        params: HnswParams,
        ids: &[u64],
        data: &[f32],
        threads: usize,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Self, IndexError> {
        let mut index = HnswIndex::new(dim, params);
        if dim == 0 || data.len() != ids.len() * dim {
            return Err(IndexError::Dimension {
                got: data.len(),
                want: ids.len() * dim,
            });
        }
        for row in data.chunks_exact(dim) {
            check(row, dim)?;
        }
        let n = ids.len();
        let unique: std::collections::HashSet<u64> = ids.iter().copied().collect();
        if unique.len() != n || u32::try_from(n).is_err() {
            for (i, (&id, row)) in ids.iter().zip(data.chunks_exact(dim)).enumerate() {
                index.add(id, row)?;
                if i.is_multiple_of(4096) {
                    progress(i);
                }
            }
            return Ok(index);
        }
        if n == 0 {
            return Ok(index);
        }
        let levels: Vec<usize> = (0..n).map(|_| index.draw_level()).collect();
        // Rows inserted at the same moment cannot link to each other. Galleries come grouped
        // by person (several samples one after another), so with several threads the rows go
        // in a shuffled (seeded, reproducible) order: otherwise a person's samples are often
        // in flight together and end up unlinked (recall@1 0.974 instead of 0.994 at 100k).
        let threads = threads.clamp(1, 256);
        let mut order: Vec<u32> = (0..n as u32).collect();
        if threads > 1 {
            for i in (1..n).rev() {
                let j = (index.next_random() % (i as u64 + 1)) as usize;
                order.swap(i, j);
            }
        }
        let (codes, scales) = quantised(data, dim);
        let m0 = max_links(&params, 0);
        let shared = Shared {
            dim,
            data: LineAligned::from_slice(data),
            codes,
            scales,
            params,
            level0: (0..n * (m0 + 1)).map(|_| AtomicU32::new(0)).collect(),
            sims0: (0..n * m0).map(|_| AtomicU32::new(0)).collect(),
            lock0: (0..n).map(|_| Mutex::new(())).collect(),
            upper: levels
                .iter()
                .map(|&l| (0..l).map(|_| Mutex::new(Links::default())).collect())
                .collect(),
            levels,
            entry: Mutex::new(order[0]),
        };
        let next = AtomicUsize::new(1);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    let mut visited = Visited::default();
                    loop {
                        let i = next.fetch_add(1, AtomicOrdering::Relaxed);
                        let Some(&node) = order.get(i) else {
                            break;
                        };
                        shared.insert(node, &mut visited);
                        if i.is_multiple_of(4096) {
                            progress(i);
                        }
                    }
                });
            }
        });
        index.entry = Some(*lock(&shared.entry));
        index.level0 = shared
            .level0
            .into_iter()
            .map(AtomicU32::into_inner)
            .collect();
        index.upper = shared
            .upper
            .into_iter()
            .map(|levels| {
                levels
                    .into_iter()
                    .map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()).ids)
                    .collect()
            })
            .collect();
        index.set_rows(ids, shared.data, (shared.codes, shared.scales));
        Ok(index)
    }
}

/// The 8-bit codes of `dim`-rows, and their scales.
fn quantised(data: &[f32], dim: usize) -> (LineAligned<i8>, Vec<f32>) {
    let mut codes = LineAligned::zeroed(data.len());
    let scales = data
        .chunks_exact(dim)
        .zip(codes.chunks_exact_mut(dim))
        .map(|(row, code)| quantise(row, code))
        .collect();
    (codes, scales)
}

impl Graph for HnswIndex {
    fn row(&self, n: u32) -> &[f32] {
        let i = n as usize * self.dim;
        &self.data[i..i + self.dim]
    }

    fn code(&self, n: u32) -> (&[i8], f32) {
        let i = n as usize * self.dim;
        (&self.codes[i..i + self.dim], self.scales[n as usize])
    }

    fn links<R>(&self, n: u32, level: usize, f: impl FnOnce(&[u32]) -> R) -> R {
        f(self.list(n, level))
    }

    fn deleted(&self, n: u32) -> bool {
        self.deleted[n as usize]
    }
}

impl Link for HnswIndex {
    fn params(&self) -> &HnswParams {
        &self.params
    }

    fn nodes(&self) -> usize {
        self.ids.len()
    }

    fn set_links(&mut self, n: u32, level: usize, links: Vec<Scored>) {
        self.write_list(n, level, links.into_iter().map(|l| l.1).collect());
    }

    fn add_link(&mut self, n: u32, level: usize, link: Scored, max: usize) {
        let mut list = self.list(n, level).to_vec();
        if level == 0 && list.len() >= max && !list.iter().any(|&c| self.deleted(c)) {
            // As in the parallel build: the new link takes the place of the farthest if it
            // is closer (`link.0` is the similarity `dot` gives on either end).
            let base = self.row(n);
            let scored = list.iter().map(|&c| Scored(dot(base, self.row(c)), c));
            if let Some((at, worst)) = scored.enumerate().min_by_key(|&(_, s)| s) {
                if link > worst {
                    list[at] = link.1;
                    self.write_list(n, level, list);
                }
            }
            return;
        }
        list.push(link.1);
        if list.len() > max {
            list = self.shrunk(n, &list, max, level);
        }
        self.write_list(n, level, list);
    }
}

impl Index for HnswIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.live
    }

    fn add(&mut self, id: u64, vector: &[f32]) -> Result<(), IndexError> {
        check(vector, self.dim)?;
        if u32::try_from(self.ids.len()).is_err() {
            return Err(IndexError::Dimension {
                got: self.ids.len(),
                want: u32::MAX as usize,
            });
        }
        self.remove(id);
        let node = self.ids.len() as u32;
        let level = self.draw_level();
        self.data.extend_from_slice(vector);
        let at = self.codes.len();
        self.codes.extend_from_slice(&vec![0; self.dim]);
        self.scales.push(quantise(vector, &mut self.codes[at..]));
        self.ids.push(id);
        self.deleted.push(false);
        self.level0.resize(self.level0.len() + self.stride(), 0);
        self.upper.push(vec![Vec::new(); level]);
        self.slots.insert(id, node);
        self.live += 1;
        self.insert_node(node);
        Ok(())
    }

    fn remove(&mut self, id: u64) -> bool {
        let Some(node) = self.slots.remove(&id) else {
            return false;
        };
        let n = node as usize;
        self.deleted[n] = true;
        self.data[n * self.dim..(n + 1) * self.dim].fill(0.0);
        self.codes[n * self.dim..(n + 1) * self.dim].fill(0);
        self.scales[n] = 0.0;
        self.live -= 1;
        // Reconnect: each neighbour gets the removed node's other neighbours as candidates,
        // cut back by the same rule as a list that overflows.
        for level in 0..=self.upper[n].len() {
            let around: Vec<u32> = self.list(node, level).to_vec();
            for &a in &around {
                let mut merged: Vec<u32> = self
                    .list(a, level)
                    .iter()
                    .chain(&around)
                    .copied()
                    .filter(|&c| c != a && c != node)
                    .collect();
                merged.sort_unstable();
                merged.dedup();
                let kept = self.shrunk(a, &merged, max_links(&self.params, level), level);
                self.write_list(a, level, kept);
            }
        }
        if self.entry == Some(node) {
            self.entry = (0..self.ids.len() as u32)
                .filter(|&i| !self.deleted[i as usize])
                .max_by_key(|&i| self.upper[i as usize].len());
        }
        if self.live == 0 {
            self.entry = None;
        }
        if self.ids.len() > 64 && self.live * 4 < self.ids.len() * 3 {
            self.rebuild();
        }
        true
    }

    fn search(&self, query: &[f32], k: usize) -> Vec<Hit> {
        let Some(entry) = self.entry else {
            return Vec::new();
        };
        if query.len() != self.dim || k == 0 {
            return Vec::new();
        }
        let probe = Probe::new(query);
        let mut ep = entry;
        for l in (1..=self.top_level()).rev() {
            ep = self.greedy(&probe, ep, l);
        }
        let mut visited = self.take_visited();
        let found = self.search_layer(&probe, ep, self.params.ef_search.max(k), 0, &mut visited);
        self.give_visited(visited);
        self.exact(&probe, found)
            .into_iter()
            .filter(|s| !self.deleted[s.1 as usize])
            .take(k)
            .map(|s| Hit {
                id: self.ids[s.1 as usize],
                score: s.0,
            })
            .collect()
    }

    fn set_ef_search(&mut self, ef: usize) {
        HnswIndex::set_ef_search(self, ef);
    }

    fn bytes_per_vector(&self) -> f64 {
        let nodes = self.ids.len().max(1) as f64;
        let links: usize = 4 * self.level0.len()
            + self
                .upper
                .iter()
                .map(|levels| 24 + levels.iter().map(|l| 24 + 4 * l.capacity()).sum::<usize>())
                .sum::<usize>();
        let per_node = (self.dim * 5 + 4 + 8 + 1) as f64 + links as f64 / nodes;
        per_node * nodes / self.live.max(1) as f64 + 17.0
    }
}

const GRAPH_MAGIC: &[u8; 8] = b"CSHNSW02";

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("graph file: {what}"),
    )
}

impl HnswIndex {
    /// Writes the graph's links (not its vectors or ids), so a benchmark can time searches on
    /// a large graph again without building it again. The server never writes graphs: they
    /// are rebuilt from the vault, as the links say who resembles whom.
    pub fn write_graph(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        if self.live != self.ids.len() {
            return Err(invalid("only graphs without removed nodes are written"));
        }
        out.write_all(GRAPH_MAGIC)?;
        let n = self.ids.len() as u32;
        let (dim, m, m0) = (self.dim as u32, self.params.m as u32, self.params.m0 as u32);
        for word in [dim, m, m0, n, self.entry.unwrap_or(0)] {
            out.write_all(&word.to_le_bytes())?;
        }
        for node in 0..n {
            let levels = self.upper[node as usize].len();
            out.write_all(&(levels as u32).to_le_bytes())?;
            for level in 0..=levels {
                let list = self.list(node, level);
                out.write_all(&(list.len() as u32).to_le_bytes())?;
                for &l in list {
                    out.write_all(&l.to_le_bytes())?;
                }
            }
        }
        Ok(())
    }

    /// Reads a graph written by [`HnswIndex::write_graph`] for the rows `data` (row `i` has id
    /// `ids[i]`), which must be those it was built on: the file's dimension, M, M0 and node
    /// count must match, every link must name a node, and rows must be finite.
    pub fn read_graph(
        dim: usize,
        params: HnswParams,
        ids: &[u64],
        data: &[f32],
        input: &mut impl std::io::Read,
    ) -> std::io::Result<Self> {
        let mut magic = [0u8; 8];
        input.read_exact(&mut magic)?;
        if &magic != GRAPH_MAGIC {
            return Err(invalid("not a Consentry graph"));
        }
        let mut word = || -> std::io::Result<u32> {
            let mut b = [0u8; 4];
            input.read_exact(&mut b)?;
            Ok(u32::from_le_bytes(b))
        };
        let mut index = HnswIndex::new(dim, params);
        let n = ids.len();
        if dim == 0 || data.len() != n * dim {
            return Err(invalid("rows and ids differ in number"));
        }
        for row in data.chunks_exact(dim) {
            check(row, dim).map_err(|e| invalid(&e.to_string()))?;
        }
        let header = [word()?, word()?, word()?, word()?, word()?];
        if header[..4] != [dim as u32, params.m as u32, params.m0 as u32, n as u32] {
            return Err(invalid("dimension, M, M0 or node count differs"));
        }
        index.level0 = vec![0; n * index.stride()];
        index.upper = Vec::with_capacity(n);
        for node in 0..n as u32 {
            let levels = word()? as usize;
            if levels > 16 {
                return Err(invalid("too many levels"));
            }
            let mut lists = Vec::with_capacity(levels + 1);
            for level in 0..=levels {
                let count = word()? as usize;
                if count > max_links(&params, level) {
                    return Err(invalid("a list is longer than M allows"));
                }
                let list: Vec<u32> = (0..count).map(|_| word()).collect::<Result<_, _>>()?;
                if list.iter().any(|&l| l as usize >= n) {
                    return Err(invalid("a link names no node"));
                }
                lists.push(list);
            }
            let zero = lists.remove(0);
            index.upper.push(lists);
            index.write_list(node, 0, zero);
        }
        if n > 0 && header[4] as usize >= n {
            return Err(invalid("entry point names no node"));
        }
        // A link on level L must reach a node that has level L (a search walks it there), and
        // the entry point must be on the top level: refused here rather than failing in a
        // search later.
        for lists in &index.upper {
            for (i, list) in lists.iter().enumerate() {
                if list.iter().any(|&l| index.upper[l as usize].len() < i + 1) {
                    return Err(invalid("a link names a node without that level"));
                }
            }
        }
        let top = index.upper.iter().map(Vec::len).max().unwrap_or(0);
        if n > 0 && index.upper[header[4] as usize].len() != top {
            return Err(invalid("the entry point is not on the top level"));
        }
        index.entry = (n > 0).then_some(header[4]);
        index.set_rows(ids, LineAligned::from_slice(data), quantised(data, dim));
        if index.slots.len() != n {
            return Err(invalid("repeated ids"));
        }
        Ok(index)
    }
}
