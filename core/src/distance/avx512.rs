//! AVX-512F kernels: 4 independent 16-lane accumulators (64 floats per iteration),
//! 16-lane steps, then a zero-masked load for the last 1..15 elements (masked loads
//! never touch memory in masked-off lanes, so reading past the slice end is avoided).

use super::Kernels;
use std::arch::x86_64::*;

pub(super) fn kernels() -> Option<Kernels> {
    if is_x86_feature_detected!("avx512f") {
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

#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn hsum(s: [__m512; 4]) -> f32 {
    _mm512_reduce_add_ps(_mm512_add_ps(
        _mm512_add_ps(s[0], s[1]),
        _mm512_add_ps(s[2], s[3]),
    ))
}

/// Same shape as the AVX2 generator; `$m` is a 16-bit lane mask here.
macro_rules! reduction {
    ($name:ident ($($arg:ident),+), $n:expr,
     |$i:ident| $load:expr, |$j:ident, $m:ident| $mload:expr,
     |$acc:ident, $ops:pat_param| $step:expr) => {
        #[target_feature(enable = "avx512f")]
        unsafe fn $name($($arg: &[f32]),+) -> f32 {
            let n: usize = $n;
            let mut s = [_mm512_setzero_ps(); 4];
            let mut $i = 0usize;
            while $i + 64 <= n {
                let base = $i;
                for (k, slot) in s.iter_mut().enumerate() {
                    $i = base + 16 * k;
                    let $ops = $load;
                    let $acc = *slot;
                    *slot = $step;
                }
                $i = base + 64;
            }
            while $i + 16 <= n {
                let $ops = $load;
                let $acc = s[0];
                s[0] = $step;
                $i += 16;
            }
            if $i < n {
                let $j = $i;
                let $m: __mmask16 = ((1u32 << (n - $i)) - 1) as __mmask16;
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
        _mm512_loadu_ps(a.as_ptr().add(i)),
        _mm512_loadu_ps(b.as_ptr().add(i))
    ),
    |j, m| (
        _mm512_maskz_loadu_ps(m, a.as_ptr().add(j)),
        _mm512_maskz_loadu_ps(m, b.as_ptr().add(j))
    ),
    |acc, (x, y)| _mm512_fmadd_ps(x, y, acc)
);

reduction!(
    l2_impl(a, b),
    a.len().min(b.len()),
    |i| (
        _mm512_loadu_ps(a.as_ptr().add(i)),
        _mm512_loadu_ps(b.as_ptr().add(i))
    ),
    |j, m| (
        _mm512_maskz_loadu_ps(m, a.as_ptr().add(j)),
        _mm512_maskz_loadu_ps(m, b.as_ptr().add(j))
    ),
    |acc, (x, y)| {
        let d = _mm512_sub_ps(x, y);
        _mm512_fmadd_ps(d, d, acc)
    }
);

reduction!(
    l1_impl(a, b),
    a.len().min(b.len()),
    |i| (
        _mm512_loadu_ps(a.as_ptr().add(i)),
        _mm512_loadu_ps(b.as_ptr().add(i))
    ),
    |j, m| (
        _mm512_maskz_loadu_ps(m, a.as_ptr().add(j)),
        _mm512_maskz_loadu_ps(m, b.as_ptr().add(j))
    ),
    |acc, (x, y)| _mm512_add_ps(acc, _mm512_abs_ps(_mm512_sub_ps(x, y)))
);

reduction!(
    norm_impl(a),
    a.len(),
    |i| _mm512_loadu_ps(a.as_ptr().add(i)),
    |j, m| _mm512_maskz_loadu_ps(m, a.as_ptr().add(j)),
    |acc, x| _mm512_fmadd_ps(x, x, acc)
);
