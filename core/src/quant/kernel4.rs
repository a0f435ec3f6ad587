//! SQ4 hot loop: `Σ k[i] · c[i]` with 4-bit codes `c` (two per byte: dimension `2j` in the
//! low nibble of byte `j`, `2j + 1` in the high nibble) and i8 query weights `k`.
//!
//! The prepared query's f32 weights are rounded to i8 with one scale per query, so the sum is
//! exact integer arithmetic: every implementation returns the identical value, and SIMD can
//! use `u8 × i8` multiply-adds (`vpmaddubsw` on AVX2, `vpdpbusd` with AVX-512 VNNI) on 32
//! code bytes at a time. To avoid re-interleaving nibbles, weights are stored permuted in
//! blocks of [`BLOCK`] dimensions: the 32 weights of the even dimensions (low nibbles of
//! the block's 32 bytes), then the 32 of the odd ones. See [`permute`].

/// Dimensions per weight block (= 32 code bytes = one 256-bit load).
pub const BLOCK: usize = 64;

/// `(weights, codes)`: `weights` in [`permute`] layout with at least
/// `BLOCK · ⌈codes.len() / 32⌉` entries; every code byte is read, so pass exactly `⌈dim/2⌉`.
pub type NibbleDotFn = fn(&[i8], &[u8]) -> i32;

/// Reorders per-dimension weights into the block layout, padding with zeros to whole blocks.
pub fn permute(k: &[i8]) -> Vec<i8> {
    let mut out = vec![0i8; k.len().div_ceil(BLOCK) * BLOCK];
    for (i, &x) in k.iter().enumerate() {
        out[i / BLOCK * BLOCK + (i % BLOCK) / 2 + (BLOCK / 2) * (i % 2)] = x;
    }
    out
}

/// Portable reference version.
pub fn nibble_dot_scalar(w: &[i8], codes: &[u8]) -> i32 {
    let half = BLOCK / 2;
    assert!(
        w.len() >= BLOCK * codes.len().div_ceil(half),
        "weights too short"
    );
    let mut acc = 0i32;
    for (wb, cb) in w.chunks(BLOCK).zip(codes.chunks(half)) {
        for (j, &b) in cb.iter().enumerate() {
            acc += (b & 15) as i32 * wb[j] as i32 + (b >> 4) as i32 * wb[half + j] as i32;
        }
    }
    acc
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::BLOCK;
    use std::arch::x86_64::*;

    /// Bounds for the raw loops below: weights must cover every (partial) block of codes.
    fn check(w: &[i8], codes: &[u8]) {
        assert!(
            w.len() >= BLOCK * codes.len().div_ceil(BLOCK / 2),
            "weights too short"
        );
    }

    // SAFETY (both wrappers): handed out only after runtime detection of the features, and
    // `check` guarantees every weight read is in bounds; code reads stop at `codes.len()`.
    pub fn nibble_dot_avx2(w: &[i8], codes: &[u8]) -> i32 {
        check(w, codes);
        unsafe { avx2(w, codes) }
    }
    pub fn nibble_dot_vnni(w: &[i8], codes: &[u8]) -> i32 {
        check(w, codes);
        unsafe { vnni(w, codes) }
    }

    /// Low and high nibbles of 32 code bytes (the high ones shifted down).
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn split(b: __m256i) -> (__m256i, __m256i) {
        let m = _mm256_set1_epi8(15);
        (
            _mm256_and_si256(b, m),
            _mm256_and_si256(_mm256_srli_epi16::<4>(b), m),
        )
    }

    /// Calls `f(block, codes)` for every 32-byte block; a partial last block is copied
    /// into a zeroed buffer (its padding weights are zero, so the extra lanes add nothing).
    #[inline(always)]
    unsafe fn blocks(codes: &[u8], mut f: impl FnMut(usize, __m256i)) {
        let mut chunks = codes.chunks_exact(BLOCK / 2);
        let mut i = 0;
        for c in &mut chunks {
            f(i, _mm256_loadu_si256(c.as_ptr() as *const __m256i));
            i += 1;
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; BLOCK / 2];
            buf[..rest.len()].copy_from_slice(rest);
            f(i, _mm256_loadu_si256(buf.as_ptr() as *const __m256i));
        }
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn hsum(v: __m256i) -> i32 {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
        _mm_cvtsi128_si32(s)
    }

    #[target_feature(enable = "avx2")]
    unsafe fn avx2(w: &[i8], codes: &[u8]) -> i32 {
        let wp = w.as_ptr();
        let ones = _mm256_set1_epi16(1);
        let (mut a0, mut a1) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        blocks(codes, |i, b| {
            let (lo, hi) = split(b);
            let we = _mm256_loadu_si256(wp.add(i * BLOCK) as *const __m256i);
            let wo = _mm256_loadu_si256(wp.add(i * BLOCK + BLOCK / 2) as *const __m256i);
            // u8 × i8 pairs summed to i16 (|·| ≤ 2·15·127, no saturation), then to i32.
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_maddubs_epi16(lo, we), ones));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_maddubs_epi16(hi, wo), ones));
        });
        hsum(_mm256_add_epi32(a0, a1))
    }

    #[target_feature(enable = "avx2,avx512f,avx512vl,avx512vnni")]
    unsafe fn vnni(w: &[i8], codes: &[u8]) -> i32 {
        let wp = w.as_ptr();
        let (mut a0, mut a1) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        blocks(codes, |i, b| {
            let (lo, hi) = split(b);
            let we = _mm256_loadu_si256(wp.add(i * BLOCK) as *const __m256i);
            let wo = _mm256_loadu_si256(wp.add(i * BLOCK + BLOCK / 2) as *const __m256i);
            a0 = _mm256_dpbusd_epi32(a0, lo, we);
            a1 = _mm256_dpbusd_epi32(a1, hi, wo);
        });
        hsum(_mm256_add_epi32(a0, a1))
    }
}

/// Fastest implementation this CPU supports (detected once, then cached).
pub fn select() -> NibbleDotFn {
    static BEST: std::sync::OnceLock<NibbleDotFn> = std::sync::OnceLock::new();
    *BEST.get_or_init(|| available().last().expect("scalar always available").1)
}

/// All implementations available on this CPU, slowest first (tests and benchmarks).
pub fn available() -> Vec<(&'static str, NibbleDotFn)> {
    #[allow(unused_mut)]
    let mut v: Vec<(&'static str, NibbleDotFn)> = vec![("scalar", nibble_dot_scalar)];
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx2") {
            v.push(("avx2", x86::nibble_dot_avx2));
            if has!("avx512f") && has!("avx512vl") && has!("avx512vnni") {
                v.push(("avx512vnni", x86::nibble_dot_vnni));
            }
        }
    }
    v
}
