//! AVX2 + FMA kernels: 4 independent 8-lane accumulators (32 floats per iteration) to
//! cover FMA latency, then 8-lane steps, then one masked load for the last 1..7
//! elements (masked-off lanes read as 0, which is neutral for every reduction here).

use super::Kernels;
use std::arch::x86_64::*;

pub(super) fn kernels() -> Option<Kernels> {
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        Some(Kernels {
            dot,
            l2_squared,
            l1,
            norm_squared,
        })
    } else {
        None
    }
}

// Safe wrappers. SAFETY (all four): they are private and only reachable through the
// table returned by `kernels()`, which is built only after the CPU check above.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    unsafe { dot_impl(a, b) }
}
fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    unsafe { l2_impl(a, b) }
}
fn l1(a: &[f32], b: &[f32]) -> f32 {
    unsafe { l1_impl(a, b) }
}
fn norm_squared(a: &[f32]) -> f32 {
    unsafe { norm_impl(a) }
}

/// Sliding window: loading 8 i32 at offset 8-rem gives `rem` leading all-ones lanes.
static TAIL_MASK: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];

#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn tail_mask(rem: usize) -> __m256i {
    debug_assert!((1..8).contains(&rem));
    _mm256_loadu_si256(TAIL_MASK.as_ptr().add(8 - rem) as *const __m256i)
}

#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn hsum(s: [__m256; 4]) -> f32 {
    let v = _mm256_add_ps(_mm256_add_ps(s[0], s[1]), _mm256_add_ps(s[2], s[3]));
    let x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    let x = _mm_add_ss(x, _mm_movehdup_ps(x));
    _mm_cvtss_f32(x)
}

/// Generates a reduction over `n` elements. `$load(ptr_offset)` yields the operand
/// tuple for 8 lanes, `$mload(offset, mask)` the masked variant, and `$step` folds
/// them into an accumulator.
macro_rules! reduction {
    ($name:ident ($($arg:ident),+), $n:expr,
     |$i:ident| $load:expr, |$j:ident, $m:ident| $mload:expr,
     |$acc:ident, $ops:pat_param| $step:expr) => {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $name($($arg: &[f32]),+) -> f32 {
            let n: usize = $n;
            let mut s = [_mm256_setzero_ps(); 4];
            let mut $i = 0usize;
            while $i + 32 <= n {
                let base = $i;
                for (k, slot) in s.iter_mut().enumerate() {
                    $i = base + 8 * k;
                    let $ops = $load;
                    let $acc = *slot;
                    *slot = $step;
                }
                $i = base + 32;
            }
            while $i + 8 <= n {
                let $ops = $load;
                let $acc = s[0];
                s[0] = $step;
                $i += 8;
            }
            if $i < n {
                let $j = $i;
                let $m = tail_mask(n - $i);
                let $ops = $mload;
                let $acc = s[1];
                s[1] = $step;
            }
            hsum(s)
        }
    };
}

reduction!(
    dot_impl(a, b),
    a.len().min(b.len()),
    |i| (
        _mm256_loadu_ps(a.as_ptr().add(i)),
        _mm256_loadu_ps(b.as_ptr().add(i))
    ),
    |j, m| (
        _mm256_maskload_ps(a.as_ptr().add(j), m),
        _mm256_maskload_ps(b.as_ptr().add(j), m)
    ),
    |acc, (x, y)| _mm256_fmadd_ps(x, y, acc)
);

reduction!(
    l2_impl(a, b),
    a.len().min(b.len()),
    |i| (
        _mm256_loadu_ps(a.as_ptr().add(i)),
        _mm256_loadu_ps(b.as_ptr().add(i))
    ),
    |j, m| (
        _mm256_maskload_ps(a.as_ptr().add(j), m),
        _mm256_maskload_ps(b.as_ptr().add(j), m)
    ),
    |acc, (x, y)| {
        let d = _mm256_sub_ps(x, y);
        _mm256_fmadd_ps(d, d, acc)
    }
);

reduction!(
    l1_impl(a, b),
    a.len().min(b.len()),
    |i| (
        _mm256_loadu_ps(a.as_ptr().add(i)),
        _mm256_loadu_ps(b.as_ptr().add(i))
    ),
    |j, m| (
        _mm256_maskload_ps(a.as_ptr().add(j), m),
        _mm256_maskload_ps(b.as_ptr().add(j), m)
    ),
    // |d| = d with the sign bit cleared.
    |acc, (x, y)| _mm256_add_ps(
        acc,
        _mm256_andnot_ps(_mm256_set1_ps(-0.0), _mm256_sub_ps(x, y))
    )
);

reduction!(
    norm_impl(a),
    a.len(),
    |i| _mm256_loadu_ps(a.as_ptr().add(i)),
    |j, m| _mm256_maskload_ps(a.as_ptr().add(j), m),
    |acc, x| _mm256_fmadd_ps(x, x, acc)
);
