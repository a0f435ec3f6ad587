//! Bit-plane popcount kernel for the 1-bit (RaBitQ-style) quantizer.
//!
//! A data code is a bit vector `b` (`words` little-endian u64s). The prepared query is
//! quantised to `QUERY_BITS` bits per dimension and stored as bit planes `P_j` (plane-major:
//! `planes[j * words + w]`), so `Σ_i b_i · u_i = Σ_j 2^j · popcount(b & P_j)`: the
//! whole inner product is ANDs and popcounts, no decoding.

/// Bits per dimension of the quantised query. Four is what RaBitQ found sufficient: the
/// query-rounding error is then well below the error of the 1-bit data code itself.
pub const QUERY_BITS: usize = 4;

/// Returns `(popcount(b), Σ_j 2^j · popcount(b & P_j))`. `planes.len()` must be a multiple
/// of `QUERY_BITS`; `code` must hold at least `8 * planes.len() / QUERY_BITS` bytes.
pub type BitPlaneFn = fn(&[u8], &[u64]) -> (u32, u32);

#[inline(always)]
fn body(code: &[u8], planes: &[u64]) -> (u32, u32) {
    let words = planes.len() / QUERY_BITS;
    let code = &code[..8 * words];
    let (mut cnt, mut acc) = (0u32, [0u32; QUERY_BITS]);
    for (w, c) in code.chunks_exact(8).enumerate() {
        let b = u64::from_le_bytes(c.try_into().unwrap());
        cnt += b.count_ones();
        for (j, a) in acc.iter_mut().enumerate() {
            *a += (b & planes[j * words + w]).count_ones();
        }
    }
    let weighted = acc.iter().enumerate().map(|(j, a)| a << j).sum();
    (cnt, weighted)
}

/// Portable version (`count_ones` without the popcnt instruction is a bit-twiddling
/// sequence; kept as the reference the other versions are tested against).
pub fn bit_planes_portable(code: &[u8], planes: &[u64]) -> (u32, u32) {
    body(code, planes)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::QUERY_BITS;
    use std::arch::x86_64::*;

    // SAFETY (both wrappers): only handed out after runtime detection of the features.
    pub fn bit_planes_popcnt(code: &[u8], planes: &[u64]) -> (u32, u32) {
        unsafe { popcnt(code, planes) }
    }
    pub fn bit_planes_avx512(code: &[u8], planes: &[u64]) -> (u32, u32) {
        let words = planes.len() / QUERY_BITS;
        // Bounds are checked here, before any raw read in the unsafe body.
        let code = &code[..8 * words];
        unsafe { avx512(code, &planes[..QUERY_BITS * words], words) }
    }

    #[target_feature(enable = "popcnt")]
    unsafe fn popcnt(code: &[u8], planes: &[u64]) -> (u32, u32) {
        super::body(code, planes)
    }

    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    unsafe fn avx512(code: &[u8], planes: &[u64], words: usize) -> (u32, u32) {
        let cp = code.as_ptr() as *const i64;
        let pp = planes.as_ptr() as *const i64;
        let mut cnt = _mm512_setzero_si512();
        let mut acc = [_mm512_setzero_si512(); QUERY_BITS];
        let mut w = 0usize;
        while w < words {
            // Zero-masked loads never touch the masked-off lanes, so the tail needs no copy.
            let rem = words - w;
            let m: __mmask8 = if rem >= 8 { 0xff } else { (1u8 << rem) - 1 };
            let b = _mm512_maskz_loadu_epi64(m, cp.add(w));
            cnt = _mm512_add_epi64(cnt, _mm512_popcnt_epi64(b));
            for (j, a) in acc.iter_mut().enumerate() {
                let p = _mm512_maskz_loadu_epi64(m, pp.add(j * words + w));
                *a = _mm512_add_epi64(*a, _mm512_popcnt_epi64(_mm512_and_si512(b, p)));
            }
            w += 8;
        }
        // Plane j carries weight 2^j; fold in vector form, reduce once.
        let mut s = acc[QUERY_BITS - 1];
        for j in (0..QUERY_BITS - 1).rev() {
            s = _mm512_add_epi64(_mm512_slli_epi64::<1>(s), acc[j]);
        }
        (
            _mm512_reduce_add_epi64(cnt) as u32,
            _mm512_reduce_add_epi64(s) as u32,
        )
    }
}

/// Fastest implementation this CPU supports (detected once, then cached).
pub fn select() -> BitPlaneFn {
    static BEST: std::sync::OnceLock<BitPlaneFn> = std::sync::OnceLock::new();
    *BEST.get_or_init(|| available().last().expect("portable always available").1)
}

/// All implementations available on this CPU, slowest first (tests and benchmarks).
pub fn available() -> Vec<(&'static str, BitPlaneFn)> {
    #[allow(unused_mut)]
    let mut v: Vec<(&'static str, BitPlaneFn)> = vec![("portable", bit_planes_portable)];
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("popcnt") {
            v.push(("popcnt", x86::bit_planes_popcnt));
        }
        if has!("avx512f") && has!("avx512vpopcntdq") {
            v.push(("avx512vpopcntdq", x86::bit_planes_avx512));
        }
    }
    v
}
