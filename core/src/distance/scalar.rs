//! Portable kernels. Eight independent accumulators break the serial add dependency
//! (and let LLVM's SLP vectorizer use whatever baseline SIMD exists, e.g. SSE2/NEON);
//! they also shorten each rounding chain 8x, which helps accuracy on long vectors.

const LANES: usize = 8;

#[inline(always)]
fn reduce(acc: [f32; LANES]) -> f32 {
    // Pairwise so the final combine adds similar-magnitude partial sums.
    ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
}

#[inline(always)]
fn fold2(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..LANES {
            acc[i] += f(x[i], y[i]);
        }
    }
    for (i, (x, y)) in ca.remainder().iter().zip(cb.remainder()).enumerate() {
        acc[i] += f(*x, *y);
    }
    reduce(acc)
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    fold2(a, b, |x, y| x * y)
}

pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    fold2(a, b, |x, y| {
        let d = x - y;
        d * d
    })
}

pub fn l1(a: &[f32], b: &[f32]) -> f32 {
    fold2(a, b, |x, y| (x - y).abs())
}

pub fn norm_squared(a: &[f32]) -> f32 {
    fold2(a, a, |x, y| x * y)
}
