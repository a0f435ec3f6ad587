use super::*;
use crate::quant::QuantizerKind;
use proptest::prelude::*;

fn sq8(d: usize) -> usize {
    QuantizerKind::Sq8.code_size(d)
}

#[test]
fn constants() {
    assert_eq!(MAX_TUPLE, 8152);
    assert_eq!(tuples_per_page(MAX_TUPLE), 1);
    assert_eq!(tuples_per_page(MAX_TUPLE / 2 - 8), 2);
    assert_eq!(tuples_per_page(1), (8192 - 24 - 8) / 12);
    assert_eq!(std::mem::size_of::<NodeHeader>(), 12);
    assert_eq!(MetaPage::SIZE, 96);
    let p = ItemPointer::new(123_456, 7);
    assert_eq!(ItemPointer::from_u64(p.to_u64()), p);
    assert!(ItemPointer::new(1, 2).to_u64() < ItemPointer::new(2, 1).to_u64());
    assert!(!ItemPointer::INVALID.is_valid());
    assert_eq!(sequential_tid(5, 3, 0), ItemPointer::new(5, 1));
    assert_eq!(sequential_tid(5, 3, 7), ItemPointer::new(7, 2));
}

#[test]
fn page_fit_for_every_dimension() {
    for &m in &[8usize, 16, 32, 48, 64] {
        for &store in &[true, false] {
            for &red in &[0.0f32, 0.25, 0.5, 1.0] {
                let mut prev_cap = usize::MAX;
                let mut failed_at = None;
                for dim in 1..=16000usize {
                    match NodeLayout::new(dim, m, red, store, sq8(dim)) {
                        Ok(l) => {
                            assert!(failed_at.is_none(), "fits again at {dim} after failing");
                            assert!(l.tuple_size <= MAX_TUPLE);
                            assert!(maxalign(l.tuple_size) <= MAX_TUPLE);
                            assert!(l.tuples_per_page() >= 1);
                            assert!(l.inline_cap <= (red * m as f32).round() as usize);
                            assert!(l.inline_cap <= prev_cap, "inline_cap grew at dim {dim}");
                            // Clamped only because one more code would not fit.
                            if l.inline_cap < (red * m as f32).round() as usize {
                                assert!(l.tuple_size + l.code_size > MAX_TUPLE);
                            }
                            prev_cap = l.inline_cap;
                        }
                        Err(e) => {
                            let LayoutError::TooLarge {
                                dim: d,
                                limit,
                                max_dim,
                                needed,
                                ..
                            } = e.clone()
                            else {
                                panic!("unexpected {e}")
                            };
                            assert_eq!((d, limit), (dim, MAX_TUPLE));
                            assert!(needed > MAX_TUPLE);
                            assert_eq!(max_dim + 1, failed_at.unwrap_or(dim));
                            let msg = e.to_string();
                            assert!(
                                msg.contains(&dim.to_string()) && msg.contains("8152"),
                                "{msg}"
                            );
                            failed_at.get_or_insert(dim);
                        }
                    }
                }
                let limit = NodeLayout::max_dim(m, store, sq8);
                assert_eq!(failed_at, Some(limit + 1).filter(|&d| d <= 16000));
            }
        }
    }
    // Known limits for the default m = 32.
    // Header 12 + 10 heap TIDs 60 + 32 slots 192 = 264 bytes before the vector.
    assert_eq!(NodeLayout::max_dim(32, true, sq8), (8152 - 264) / 4);
    assert!(NodeLayout::max_dim(32, false, sq8) > 7800);
    // 384-d with full vectors (no own code): all 16 codes of redundancy 0.5 fit.
    let sizes = |red: f32, store: bool| {
        let l = NodeLayout::new(384, 32, red, store, sq8(384)).unwrap();
        assert_eq!(l.has_own_code(), !store);
        (l.inline_cap, l.tuple_size, l.tuples_per_page())
    };
    assert_eq!(sizes(0.0, true), (0, 1800, 4));
    assert_eq!(sizes(0.25, true), (8, 4904, 1));
    assert_eq!(sizes(0.5, true), (16, 8008, 1));
    assert_eq!(sizes(0.0, false), (0, 652, 12));
    assert_eq!(sizes(0.5, false), (16, 6860, 1));
    assert!(NodeLayout::new(10, 0, 0.5, true, 14).is_err());
    assert!(NodeLayout::new(10, 8, 1.5, true, 14).is_err());
    assert!(NodeLayout::new(0, 8, 0.5, true, 4).is_err());
}

fn aligned_buf(len: usize) -> Vec<u64> {
    vec![0u64; len.div_ceil(8) + 1]
}

#[test]
fn views_are_zero_copy_when_aligned_and_correct_when_not() {
    let l = NodeLayout::new(5, 3, 1.0, true, sq8(5)).unwrap();
    let v = [1.0f32, -2.0, 3.5, 0.25, 9.0];
    let code = vec![7u8; l.code_size];
    let mut store = aligned_buf(l.tuple_size + 1);
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut store[..]);
    for shift in 0..2 {
        let data = &mut bytes[shift..shift + l.tuple_size];
        NodeMut::init(&l, data, ItemPointer::new(4, 2), Some(&v), &code);
        let r = NodeRef::new(&l, data);
        let got = r.vector().unwrap();
        assert_eq!(&*got, &v);
        assert_eq!(matches!(got, std::borrow::Cow::Borrowed(_)), shift == 0);
        assert_eq!(r.heap_tids().collect::<Vec<_>>(), [ItemPointer::new(4, 2)]);
        assert_eq!(r.degree(), 0);
        assert_eq!(r.own_code(), None);
        assert_eq!(r.inline_code(0), None);
    }
}

#[test]
fn metapage_round_trip() {
    let l = NodeLayout::new(384, 32, 0.5, true, sq8(384)).unwrap();
    let mut mp = MetaPage::new(Metric::Cosine, QuantizerKind::Sq8, &l);
    assert_eq!(mp.error_bound, f32::INFINITY, "filter off unless measured");
    assert_eq!(mp.version, 3);
    mp.alpha = 1.2;
    mp.ef_construction = 128;
    mp.set_entry(Some(ItemPointer::new(9, 3)));
    mp.node_count = 1 << 40;
    let mut buf = [0u8; MetaPage::SIZE + 1];
    buf[1..].copy_from_slice(mp.as_bytes());
    let back = MetaPage::from_bytes(&buf[1..]).unwrap();
    assert_eq!(back, mp);
    assert_eq!(back.entry(), Some(ItemPointer::new(9, 3)));
    assert_eq!(back.metric(), Metric::Cosine);
    assert_eq!(back.tuple_size as usize, l.tuple_size);
    buf[1] ^= 1;
    assert!(matches!(
        MetaPage::from_bytes(&buf[1..]),
        Err(MetaError::BadMagic(_))
    ));
    assert!(MetaPage::from_bytes(&buf[..10]).is_err());
    mp.set_entry(None);
    assert_eq!(mp.entry(), None);
    // Version 2 (no fine quantizer: the fields were reserved zeros) still reads.
    let mut v2 = mp;
    v2.version = 2;
    assert_eq!(MetaPage::from_bytes(v2.as_bytes()).unwrap().fine_quantizer, 0);
    v2.version = 4;
    assert!(matches!(MetaPage::from_bytes(v2.as_bytes()), Err(MetaError::BadVersion(4))));
    // A fine quantizer must be known and its parameters inside the parameter bytes.
    let mut two = mp;
    two.fine_quantizer = QuantizerKind::Sq4 as u8;
    two.param_len = 100;
    two.nav_param_len = 60;
    assert!(MetaPage::from_bytes(two.as_bytes()).is_ok());
    two.nav_param_len = 101;
    assert!(MetaPage::from_bytes(two.as_bytes()).is_err());
    two.nav_param_len = 60;
    two.fine_quantizer = 9;
    assert!(MetaPage::from_bytes(two.as_bytes()).is_err());
}

#[test]
fn two_precision_layout_has_its_own_code_size() {
    let (dim, m) = (384, 26);
    let bit = QuantizerKind::Bit.code_size(dim);
    let sq4 = QuantizerKind::Sq4.code_size(dim);
    let l = NodeLayout::two_precision(dim, m, 1.0, false, bit, sq4).unwrap();
    assert_eq!((l.code_size, l.own_code_size, l.inline_cap), (bit, sq4, m));
    let one = NodeLayout::new(dim, m, 1.0, false, bit).unwrap();
    assert_eq!(l.tuple_size, one.tuple_size - bit + sq4);
    // The default codes (1-bit inline, SQ4 own) keep four 384-d nodes per page.
    assert_eq!(l.tuples_per_page(), 4);
    let own: Vec<u8> = (0..sq4).map(|i| i as u8).collect();
    let nb: Vec<u8> = vec![7; bit];
    let mut buf = vec![0u8; l.tuple_size];
    let mut n = NodeMut::init(&l, &mut buf, ItemPointer::new(1, 1), None, &own);
    n.set_neighbours(&[(ItemPointer::new(2, 1), Some(&nb))]);
    let r = n.as_ref();
    assert_eq!(r.own_code(), Some(own.as_slice()));
    assert_eq!(r.inline_code(0), Some(nb.as_slice()));
    // Full vectors carry no own code whatever its size.
    let full = NodeLayout::two_precision(dim, m, 0.0, true, bit, sq4).unwrap();
    assert_eq!(full.own_code_size, 0);
}

#[test]
fn param_pages() {
    assert_eq!(param_pages_needed(0), 0);
    assert_eq!(param_pages_needed(1), 1);
    assert_eq!(param_pages_needed(MAX_TUPLE), 1);
    assert_eq!(param_pages_needed(MAX_TUPLE + 1), 2);
    let bytes: Vec<u8> = (0..20000u32).map(|i| i as u8).collect();
    let chunks: Vec<&[u8]> = param_chunks(&bytes).collect();
    assert_eq!(chunks.len(), param_pages_needed(bytes.len()));
    assert!(chunks.iter().all(|c| c.len() <= MAX_TUPLE));
    assert_eq!(chunks.concat(), bytes);
}

#[test]
fn set_neighbour_maintains_inline_prefix() {
    let l = NodeLayout::new(4, 4, 0.5, false, sq8(4)).unwrap();
    assert_eq!(l.inline_cap, 2);
    let mut buf = vec![0u8; l.tuple_size];
    let mut n = NodeMut::init(&l, &mut buf, ItemPointer::new(1, 1), None, &[9; 8]);
    assert_eq!(n.as_ref().own_code(), Some(&[9u8; 8][..]));
    let c = |x: u8| [x; 8];
    n.set_neighbour(0, ItemPointer::new(10, 1), Some(&c(1)));
    n.set_neighbour(1, ItemPointer::new(11, 1), None);
    n.set_neighbour(2, ItemPointer::new(12, 1), Some(&c(3))); // beyond cap: code ignored
    let r = n.as_ref();
    assert_eq!((r.degree(), r.n_inline()), (3, 1));
    assert_eq!(r.inline_code(0), Some(&c(1)[..]));
    assert_eq!(r.inline_code(1), None);
    n.set_neighbour(1, ItemPointer::new(11, 1), Some(&c(2)));
    assert_eq!(n.as_ref().n_inline(), 2);
    n.set_neighbour(0, ItemPointer::new(13, 1), None); // truncates the prefix
    assert_eq!(n.as_ref().n_inline(), 0);
    assert!(n.as_ref().vector().is_none());
    n.set_deleted(true);
    assert!(n.as_ref().is_deleted());
    assert_eq!(n.header().version, 5);
    n.set_deleted(false);
    assert!(!n.as_ref().is_deleted());
}

proptest! {
    #[test]
    fn node_round_trip(
        dim in 1usize..1500,
        m in 1usize..64,
        red in 0.0f32..=1.0,
        store in any::<bool>(),
        seed in any::<u64>(),
        deg_frac in 0.0f64..=1.0,
        deleted in any::<bool>(),
    ) {
        let l = match NodeLayout::new(dim, m, red, store, sq8(dim)) { Ok(l) => l, Err(_) => return Ok(()) };
        let mut x = seed | 1;
        let mut rnd = move || { x ^= x << 13; x ^= x >> 7; x ^= x << 17; x };
        let v: Vec<f32> = (0..dim).map(|_| (rnd() % 1000) as f32 / 7.0 - 50.0).collect();
        let own: Vec<u8> = (0..l.code_size).map(|_| rnd() as u8).collect();
        let degree = ((m as f64) * deg_frac) as usize;
        let nbrs: Vec<ItemPointer> = (0..degree).map(|_| ItemPointer::new((rnd() % 1_000_000) as u32, (rnd() % 300) as u16 + 1)).collect();
        let codes: Vec<Vec<u8>> = (0..degree).map(|_| (0..l.code_size).map(|_| rnd() as u8).collect()).collect();
        let tid = ItemPointer::new(rnd() as u32 % 1000, 5);
        let mut store_buf = aligned_buf(l.tuple_size);
        let buf = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut store_buf[..])[..l.tuple_size];
        let mut n = NodeMut::init(&l, buf, tid, store.then_some(&v[..]), &own);
        let list: Vec<(ItemPointer, Option<&[u8]>)> = nbrs.iter().zip(&codes).map(|(p, c)| (*p, Some(&c[..]))).collect();
        n.set_neighbours(&list);
        n.set_deleted(deleted);
        let r = NodeRef::new(&l, buf);
        prop_assert_eq!(r.heap_tids().collect::<Vec<_>>(), vec![tid]);
        prop_assert_eq!(r.is_deleted(), deleted);
        prop_assert_eq!(r.neighbours().collect::<Vec<_>>(), nbrs.clone());
        prop_assert_eq!(r.n_inline(), degree.min(l.inline_cap));
        for i in 0..degree {
            prop_assert_eq!(r.inline_code(i), (i < l.inline_cap).then_some(&codes[i][..]));
        }
        for i in degree..m { prop_assert!(!r.neighbour(i).is_valid()); }
        prop_assert_eq!(r.own_code(), (!store).then_some(&own[..]));
        if store { prop_assert_eq!(&*r.vector().unwrap(), &v[..]); } else { prop_assert!(r.vector().is_none()); }
    }
}

#[test]
fn heap_tids_add_retain_and_delete() {
    for store in [true, false] {
        let l = NodeLayout::new(6, 4, 0.5, store, sq8(6)).unwrap();
        let mut buf = vec![0xAAu8; l.tuple_size];
        let v = [0.5f32; 6];
        let code = vec![3u8; l.code_size];
        let t = |i: u32| ItemPointer::new(100 + i, (i % 5) as u16 + 1);
        let mut n = NodeMut::init(&l, &mut buf, t(0), store.then_some(&v[..]), &code);
        n.set_neighbours(&[(ItemPointer::new(7, 1), Some(&code[..]))]);
        for i in 1..MAX_HEAP_TIDS as u32 {
            assert!(n.add_heap_tid(t(i)));
        }
        assert!(!n.add_heap_tid(t(99)), "full");
        let all: Vec<_> = (0..MAX_HEAP_TIDS as u32).map(t).collect();
        assert_eq!(n.as_ref().heap_tids().collect::<Vec<_>>(), all);
        // VACUUM removes the odd ones: the rest stay in order, compacted.
        assert_eq!(
            n.retain_heap_tids(|p| (p.block - 100) % 2 == 0),
            (MAX_HEAP_TIDS / 2, MAX_HEAP_TIDS.div_ceil(2))
        );
        let even: Vec<_> = all.iter().copied().step_by(2).collect();
        assert_eq!(n.as_ref().heap_tids().collect::<Vec<_>>(), even);
        assert!(!n.as_ref().is_deleted());
        assert!(n.add_heap_tid(t(50)));
        assert_eq!(n.as_ref().n_heap_tids(), even.len() + 1);
        // Nothing else in the tuple moved.
        let r = n.as_ref();
        assert_eq!(r.neighbours().collect::<Vec<_>>(), [ItemPointer::new(7, 1)]);
        assert_eq!(r.inline_code(0), Some(&code[..]));
        assert_eq!(r.own_code(), (!store).then_some(&code[..]));
        assert_eq!(r.vector().is_some(), store);
        let version = r.header().version;
        // Last rows gone: deleted, and no TID can be added back.
        assert_eq!(n.retain_heap_tids(|_| false), (even.len() + 1, 0));
        assert!(n.as_ref().is_deleted());
        assert_eq!(n.as_ref().heap_tids().count(), 0);
        assert!(!n.add_heap_tid(t(60)));
        assert_eq!(n.retain_heap_tids(|_| true), (0, 0));
        assert_eq!(
            n.header().version,
            version,
            "TID changes are not neighbour rewrites"
        );
    }
}

#[test]
fn small_parameters_share_the_metapage() {
    let layout = NodeLayout::new(384, 26, 1.0, false, QuantizerKind::Bit.code_size(384)).unwrap();
    let mut m = MetaPage::new(Metric::Cosine, QuantizerKind::Bit, &layout);
    // Both items MAXALIGNed with two line pointers fill the page at most.
    assert!(PAGE_HEADER_SIZE + 2 * ITEM_ID_SIZE + maxalign(MetaPage::SIZE) + META_PARAM_ROOM + maxalign(SPECIAL_SIZE) <= BLCKSZ);
    assert_eq!(META_PARAM_ROOM % MAXALIGN, 0);
    m.place_params(META_PARAM_ROOM);
    assert_eq!((m.param_first_block, m.param_npages, m.param_len as usize), (0, 1, META_PARAM_ROOM));
    assert_eq!(m.param_item(0), ItemPointer::new(0, 2));
    assert_eq!(m.first_node_block(), 1);
    // One byte more: pages of their own, as before (indexes written so read the same way).
    m.place_params(META_PARAM_ROOM + 1);
    assert_eq!((m.param_first_block, m.param_npages), (1, 1));
    m.place_params(3 * MAX_TUPLE + 1);
    assert_eq!((m.param_first_block, m.param_npages), (1, 4));
    assert_eq!(m.param_item(3), ItemPointer::new(4, 1));
    assert_eq!(m.first_node_block(), 5);
    let back = MetaPage::from_bytes(m.as_bytes()).unwrap();
    assert_eq!((back.param_first_block, back.param_npages), (1, 4));
}
