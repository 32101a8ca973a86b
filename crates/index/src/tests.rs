use crate::matrix::{clustered, random_unit, Rng};
use crate::{FlatIndex, HnswIndex, HnswParams, Index, IndexError, QuantIndex};

const D: usize = 128;

fn brute(data: &[f32], q: &[f32]) -> (u64, f32) {
    data.chunks_exact(D)
        .enumerate()
        .map(|(i, r)| (i as u64, r.iter().zip(q).map(|(a, b)| a * b).sum::<f32>()))
        .fold((0, f32::MIN), |b, x| if x.1 > b.1 { x } else { b })
}

fn fill(index: &mut dyn Index, data: &[f32]) {
    for (i, row) in data.chunks_exact(D).enumerate() {
        index.add(i as u64, row).expect("add");
    }
}

fn all() -> Vec<Box<dyn Index>> {
    vec![
        Box::new(FlatIndex::new(D)),
        Box::new(QuantIndex::new(D)),
        Box::new(HnswIndex::new(D, HnswParams::default())),
    ]
}

#[test]
fn every_index_finds_the_exact_best_on_clustered_data() {
    let mut rng = Rng::new(7);
    let (gallery, queries, who) = clustered(1000, 3, 200, D, 0.8, &mut rng);
    for mut index in all() {
        fill(index.as_mut(), &gallery);
        assert_eq!(index.len(), 3000);
        let mut agree = 0;
        for (qi, q) in queries.chunks_exact(D).enumerate() {
            let hits = index.search(q, 5);
            assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
            let (best, score) = brute(&gallery, q);
            if hits.first().map(|h| h.id) == Some(best) {
                agree += 1;
                assert!((hits[0].score - score).abs() < 1e-4, "scores are exact");
            }
            // The generating identity is the true match in this data.
            assert_eq!(best / 3, who[qi] as u64);
        }
        assert!(
            agree >= 198,
            "{index:?}: recall@1 {agree}/200",
            index = index.len()
        );
    }
}

#[test]
fn removal_is_immediate_and_replacement_updates() {
    let mut rng = Rng::new(11);
    let data = random_unit(500, D, &mut rng);
    for mut index in all() {
        fill(index.as_mut(), &data);
        for id in (0..500u64).step_by(3) {
            assert!(index.remove(id));
            assert!(!index.remove(id));
        }
        for (i, q) in data.chunks_exact(D).enumerate() {
            let hits = index.search(q, 3);
            assert!(hits.iter().all(|h| h.id % 3 != 0), "a removed id matched");
            if i % 3 != 0 {
                assert_eq!(hits[0].id, i as u64);
            }
        }
        // Replace id 1 with the vector of id 2: a query for 2's vector now finds both.
        index.add(1, &data[2 * D..3 * D]).expect("replace");
        let hits = index.search(&data[2 * D..3 * D], 2);
        let mut ids: Vec<u64> = hits.iter().map(|h| h.id).collect();
        ids.sort();
        assert_eq!(ids, vec![1, 2]);
        assert_eq!(index.len(), 500 - 167);
    }
}

#[test]
fn removing_most_nodes_keeps_hnsw_searchable() {
    let mut rng = Rng::new(3);
    let data = random_unit(400, D, &mut rng);
    let mut index = HnswIndex::new(D, HnswParams::default());
    fill(&mut index, &data);
    for id in 0..390u64 {
        index.remove(id);
    }
    for i in 390..400 {
        assert_eq!(index.search(&data[i * D..(i + 1) * D], 1)[0].id, i as u64);
    }
    for id in 390..400u64 {
        index.remove(id);
    }
    assert!(index.is_empty());
    assert!(index.search(&data[..D], 1).is_empty());
}

#[test]
fn bad_vectors_are_refused() {
    for mut index in all() {
        assert_eq!(
            index.add(1, &[0.5; 3]),
            Err(IndexError::Dimension { got: 3, want: D })
        );
        let mut v = vec![0.1; D];
        v[5] = f32::NAN;
        assert_eq!(index.add(1, &v), Err(IndexError::NotFinite));
        assert!(index.search(&[0.0; 3], 1).is_empty());
        assert!(index.is_empty());
        assert!(index.bytes_per_vector() >= (D * 4) as f64);
    }
}

#[test]
fn matrix_files_round_trip() {
    let dir = std::env::temp_dir().join(format!("consentry-index-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("m.f32");
    let data = random_unit(10, D, &mut Rng::new(1));
    crate::matrix::write(&path, &data).expect("write");
    assert_eq!(crate::matrix::read(&path, D).expect("read"), data);
    assert!(crate::matrix::read(&path, 7 * D).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn parallel_build_finds_what_one_by_one_adding_finds() {
    let mut rng = Rng::new(21);
    let (gallery, queries, _) = clustered(1500, 3, 200, D, 0.8, &mut rng);
    let n = gallery.len() / D;
    let ids: Vec<u64> = (0..n as u64).map(|i| i * 7 + 1).collect();
    let mut one_by_one = HnswIndex::new(D, HnswParams::default());
    for (&id, row) in ids.iter().zip(gallery.chunks_exact(D)) {
        one_by_one.add(id, row).expect("add");
    }
    let seen = std::sync::atomic::AtomicUsize::new(0);
    let progress = |_: usize| {
        seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    };
    let single =
        HnswIndex::build(D, HnswParams::default(), &ids, &gallery, 1, &progress).expect("build");
    let parallel =
        HnswIndex::build(D, HnswParams::default(), &ids, &gallery, 2, &progress).expect("build");
    assert!(seen.load(std::sync::atomic::Ordering::Relaxed) > 0);
    assert_eq!((single.len(), parallel.len()), (n, n));
    // One thread inserts in the same order with the same levels: the very same graph, link for
    // link, although the build cuts full lists back from the similarities it kept and adding
    // one by one computes them again (full level-0 lists are cut many times at this size).
    let graph = |index: &HnswIndex| {
        let mut file = Vec::new();
        index.write_graph(&mut file).expect("write");
        file
    };
    assert!(graph(&single) == graph(&one_by_one));
    let mut agree = 0;
    for q in queries.chunks_exact(D) {
        let (best, _) = brute(&gallery, q);
        let want = ids[best as usize];
        assert_eq!(single.search(q, 3), one_by_one.search(q, 3));
        if parallel.search(q, 1).first().map(|h| h.id) == Some(want) {
            agree += 1;
        }
    }
    assert!(agree >= 198, "parallel build recall@1 {agree}/200");
    // The built index is an ordinary index afterwards: removal is immediate.
    let mut parallel = parallel;
    let q = &queries[..D];
    let top = parallel.search(q, 1)[0].id;
    assert!(parallel.remove(top));
    assert!(parallel.search(q, 10).iter().all(|h| h.id != top));
}

#[test]
fn build_refuses_bad_input_and_handles_repeated_ids() {
    let none = |_: usize| {};
    let bad = HnswIndex::build(D, HnswParams::default(), &[1, 2], &[0.5; D], 2, &none);
    assert!(matches!(bad, Err(IndexError::Dimension { .. })));
    let mut rows = vec![0.1f32; 2 * D];
    rows[D + 3] = f32::NAN;
    let nan = HnswIndex::build(D, HnswParams::default(), &[1, 2], &rows, 2, &none);
    assert!(matches!(nan, Err(IndexError::NotFinite)));
    // A repeated id: the later row replaces the earlier one, as with add.
    let mut rng = Rng::new(3);
    let data = random_unit(3, D, &mut rng);
    let index =
        HnswIndex::build(D, HnswParams::default(), &[5, 6, 5], &data, 2, &none).expect("build");
    assert_eq!(index.len(), 2);
    let hit = index.search(&data[2 * D..], 1);
    assert_eq!(hit[0].id, 5);
    assert!((hit[0].score - 1.0).abs() < 1e-4);
}

#[test]
fn graph_files_round_trip_and_foreign_ones_are_refused() {
    let mut rng = Rng::new(31);
    let (gallery, queries, _) = clustered(700, 3, 60, D, 0.8, &mut rng);
    let n = gallery.len() / D;
    let ids: Vec<u64> = (0..n as u64).map(|i| i + 100).collect();
    let params = HnswParams {
        m0: 32,
        ..HnswParams::default()
    };
    let built = HnswIndex::build(D, params, &ids, &gallery, 2, &|_| {}).expect("build");
    let mut file = Vec::new();
    built.write_graph(&mut file).expect("write");
    let read = HnswIndex::read_graph(D, params, &ids, &gallery, &mut file.as_slice())
        .expect("read what was written");
    for q in queries.chunks_exact(D) {
        assert_eq!(read.search(q, 5), built.search(q, 5));
    }
    // Other parameters, a cut-off file, a link to no node, repeated ids, a row that is not
    // finite, or not a graph at all: refused.
    let other = HnswParams { m0: 64, ..params };
    assert!(HnswIndex::read_graph(D, other, &ids, &gallery, &mut file.as_slice()).is_err());
    let cut = &file[..file.len() - 3];
    assert!(HnswIndex::read_graph(D, params, &ids, &gallery, &mut &cut[..]).is_err());
    let mut bad_link = file.clone();
    let last = bad_link.len() - 4;
    bad_link[last..].copy_from_slice(&(n as u32).to_le_bytes());
    assert!(HnswIndex::read_graph(D, params, &ids, &gallery, &mut bad_link.as_slice()).is_err());
    let mut repeated = ids.clone();
    repeated[1] = repeated[0];
    assert!(HnswIndex::read_graph(D, params, &repeated, &gallery, &mut file.as_slice()).is_err());
    let mut nan = gallery.clone();
    nan[5] = f32::NAN;
    assert!(HnswIndex::read_graph(D, params, &ids, &nan, &mut file.as_slice()).is_err());
    let mut bad_magic = file.clone();
    bad_magic[0] ^= 1;
    assert!(HnswIndex::read_graph(D, params, &ids, &gallery, &mut bad_magic.as_slice()).is_err());
    // A link on level 1 to a node that has only level 0, or an entry point below the top
    // level: refused on reading (they used to panic in a later search).
    let word = |w: u32| w.to_le_bytes();
    let graph = |node1_levels: u32, entry: u32, level1_link: bool| {
        let mut f = b"CSHNSW02".to_vec();
        for w in [D as u32, 16, 32, 2, entry] {
            f.extend(word(w));
        }
        // node 0: levels 1; level 0 -> [1]; level 1 -> [1] or []
        for w in [1, 1, 1] {
            f.extend(word(w));
        }
        if level1_link {
            f.extend(word(1));
            f.extend(word(1));
        } else {
            f.extend(word(0));
        }
        // node 1: level 0 -> [0], and level 1 -> [0] when it has it
        f.extend(word(node1_levels));
        for _ in 0..=node1_levels {
            f.extend(word(1));
            f.extend(word(0));
        }
        f
    };
    let two = &gallery[..2 * D];
    let two_ids = [7u64, 8];
    assert!(
        HnswIndex::read_graph(D, params, &two_ids, two, &mut graph(1, 0, true).as_slice()).is_ok()
    );
    let missing_level =
        HnswIndex::read_graph(D, params, &two_ids, two, &mut graph(0, 0, true).as_slice());
    assert!(missing_level.is_err());
    let low_entry =
        HnswIndex::read_graph(D, params, &two_ids, two, &mut graph(0, 1, false).as_slice());
    assert!(low_entry.is_err());
    let fine = HnswIndex::read_graph(D, params, &two_ids, two, &mut graph(0, 0, false).as_slice());
    assert!(fine.is_ok());
    // A graph with removed nodes is not written (its file would keep them as waypoints).
    let mut removed = read;
    assert!(removed.remove(100));
    assert!(removed.write_graph(&mut Vec::new()).is_err());
}
