//! The one hot loop of quantized search: `Σ w[i] · code[i]` over u8 codes and f32 weights.
//!
//! Every SQ8 estimate (L2, inner product, cosine) reduces to this weighted sum, so it is the
//! only kernel that needs SIMD. The AVX2+FMA version widens 8 codes at a time straight into
//! f32 lanes, so codes are never decoded into a buffer.

/// Signature shared by all implementations; `PreparedQuery` stores the chosen one.
pub type WeightedSumFn = fn(&[f32], &[u8]) -> f32;

/// Portable version. Eight independent accumulators let LLVM vectorise it with the baseline
/// instruction set (f32 addition is not associative, so a single accumulator would not be).
pub fn weighted_sum_scalar(w: &[f32], codes: &[u8]) -> f32 {
    let n = w.len().min(codes.len());
    let (w, codes) = (&w[..n], &codes[..n]);
    let mut acc = [0f32; 8];
    let mut wc = w.chunks_exact(8);
    let mut cc = codes.chunks_exact(8);
    for (wv, cv) in (&mut wc).zip(&mut cc) {
        for j in 0..8 {
            acc[j] += wv[j] * cv[j] as f32;
        }
    }
    let mut tail = 0f32;
    for (x, &c) in wc.remainder().iter().zip(cc.remainder()) {
        tail += x * c as f32;
    }
    (acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]) + tail
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Safe wrapper; only handed out after runtime detection confirmed AVX2 and FMA.
    pub fn weighted_sum_avx2(w: &[f32], codes: &[u8]) -> f32 {
        // SAFETY: `select()` only returns this function when avx2 and fma are available.
        unsafe { inner(w, codes) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn inner(w: &[f32], codes: &[u8]) -> f32 {
        let n = w.len().min(codes.len());
        let wp = w.as_ptr();
        let cp = codes.as_ptr();
        let mut a0 = _mm256_setzero_ps();
        let mut a1 = _mm256_setzero_ps();
        let mut a2 = _mm256_setzero_ps();
        let mut a3 = _mm256_setzero_ps();
        let mut i = 0usize;
        // 32 codes per iteration: one 256-bit load, four widenings, four independent FMAs.
        while i + 32 <= n {
            let b = _mm256_loadu_si256(cp.add(i) as *const __m256i);
            let lo = _mm256_castsi256_si128(b);
            let hi = _mm256_extracti128_si256::<1>(b);
            let c0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo));
            let c1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128::<8>(lo)));
            let c2 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi));
            let c3 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128::<8>(hi)));
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(wp.add(i)), c0, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(wp.add(i + 8)), c1, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(wp.add(i + 16)), c2, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(wp.add(i + 24)), c3, a3);
            i += 32;
        }
        while i + 8 <= n {
            let b = _mm_loadl_epi64(cp.add(i) as *const __m128i);
            let c = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b));
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(wp.add(i)), c, a0);
            i += 8;
        }
        let s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
        let s = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps::<0x55>(s, s));
        let mut total = _mm_cvtss_f32(s);
        while i < n {
            total += *wp.add(i) * *cp.add(i) as f32;
            i += 1;
        }
        total
    }
}

/// Picks the fastest implementation this CPU supports (detection result is cached by std).
pub fn select() -> WeightedSumFn {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return x86::weighted_sum_avx2;
        }
    }
    weighted_sum_scalar
}

/// All implementations available on this CPU, for tests and benchmarks.
pub fn available() -> Vec<(&'static str, WeightedSumFn)> {
    #[allow(unused_mut)]
    let mut v: Vec<(&'static str, WeightedSumFn)> = vec![("scalar", weighted_sum_scalar)];
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            v.push(("avx2", x86::weighted_sum_avx2));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn kernels_agree_on_awkward_lengths() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for &n in &[
            0usize, 1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 383, 384, 1536, 1537,
        ] {
            let w: Vec<f32> = (0..n).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
            let c: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
            let exact: f64 = w.iter().zip(&c).map(|(&a, &b)| a as f64 * b as f64).sum();
            let mag: f64 = w
                .iter()
                .zip(&c)
                .map(|(&a, &b)| (a as f64 * b as f64).abs())
                .sum();
            for (name, f) in available() {
                let got = f(&w, &c) as f64;
                assert!(
                    (got - exact).abs() <= 1e-5 * mag + 1e-6,
                    "{name} n={n}: {got} vs {exact}"
                );
            }
            // Offsets that break natural alignment of both inputs.
            if n > 2 {
                for (name, f) in available() {
                    let got = f(&w[1..], &c[1..]) as f64;
                    let ex: f64 = w[1..]
                        .iter()
                        .zip(&c[1..])
                        .map(|(&a, &b)| a as f64 * b as f64)
                        .sum();
                    assert!(
                        (got - ex).abs() <= 1e-5 * mag + 1e-6,
                        "{name} unaligned n={n}"
                    );
                }
            }
        }
    }
}
