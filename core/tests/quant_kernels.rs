//! SIMD kernels of the SQ4 and Bit quantizers against plain reference loops, on lengths that
//! exercise every main-loop / tail combination and on unaligned slices.

use rand::{Rng, SeedableRng};
use vsag_core::quant::{kernel4, popcount};

const LENGTHS: [usize; 16] = [
    0, 1, 3, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 383, 384, 1536,
];

fn nibble(codes: &[u8], i: usize) -> u8 {
    (codes[i / 2] >> (4 * (i % 2))) & 15
}

#[test]
fn nibble_dot_kernels_agree() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let names: Vec<_> = kernel4::available().iter().map(|k| k.0).collect();
    println!("sq4 kernels: {names:?}");
    for &n in LENGTHS.iter().chain(&[1537usize]) {
        // Extreme weights included: ±127 everywhere must not saturate the i16 pair sums.
        let k: Vec<i8> = (0..n)
            .map(|i| {
                if i % 5 == 0 {
                    [127, -127][i % 2]
                } else {
                    rng.gen_range(-127..=127)
                }
            })
            .collect();
        let w = kernel4::permute(&k);
        assert_eq!(w.len(), n.div_ceil(64) * 64);
        let mut c: Vec<u8> = (0..n.div_ceil(2) + 1).map(|_| rng.gen()).collect();
        if n % 2 == 1 {
            c[n / 2] &= 15; // encoders leave the unused high nibble zero
        }
        let exact: i32 = (0..n).map(|i| k[i] as i32 * nibble(&c, i) as i32).sum();
        let all15 = vec![0xffu8; n.div_ceil(2)];
        let max: i32 = (0..n).map(|i| k[i] as i32 * 15).sum();
        for (name, f) in kernel4::available() {
            assert_eq!(f(&w, &c[..n.div_ceil(2)]), exact, "{name} n={n}");
            // An unaligned code slice (shifted by one byte) gives the same as the scalar.
            let want = kernel4::nibble_dot_scalar(&w, &c[1..n.div_ceil(2) + 1]);
            assert_eq!(
                f(&w, &c[1..n.div_ceil(2) + 1]),
                want,
                "{name} unaligned n={n}"
            );
            if n % 2 == 0 {
                assert_eq!(f(&w, &all15), max, "{name} saturation n={n}");
            }
        }
    }
}

#[test]
fn bit_plane_kernels_agree() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    let names: Vec<_> = popcount::available().iter().map(|k| k.0).collect();
    println!("bit kernels: {names:?}");
    let qb = popcount::QUERY_BITS;
    for &n in &LENGTHS {
        let words = n.div_ceil(64);
        let code: Vec<u8> = (0..8 * words + 1).map(|_| rng.gen()).collect();
        let planes: Vec<u64> = (0..qb * words).map(|_| rng.gen()).collect();
        for code in [&code[..8 * words], &code[1..]] {
            let word = |w: usize| u64::from_le_bytes(code[8 * w..8 * w + 8].try_into().unwrap());
            let cnt: u32 = (0..words).map(|w| word(w).count_ones()).sum();
            let weighted: u32 = (0..qb)
                .map(|j| {
                    (0..words)
                        .map(|w| (word(w) & planes[j * words + w]).count_ones() << j)
                        .sum::<u32>()
                })
                .sum();
            for (name, f) in popcount::available() {
                assert_eq!(f(code, &planes), (cnt, weighted), "{name} n={n}");
            }
        }
    }
}
