//! Shortest decimal digits of an f32 exactly as Postgres' float4out chooses them.
//!
//! Postgres uses Ryu built with STRICTLY_SHORTEST = 0: the rounding interval's bounds
//! are always *excluded* (upstream Ryu and Rust's `{:e}` include them for even
//! mantissas), so e.g. 133751184 prints as 1.33751184e+08 where Rust prints
//! 1.3375118e8. Among the shortest candidates the one nearest the exact value wins,
//! exact ties going to the even digit (Rust breaks those ties upward).
//!
//! Those semantics are reproduced here with the Steele-White/Burger-Dybvig free-format
//! digit generator on exact 256-bit integers (f32 needs at most ~2^182). It has been
//! checked against Postgres' f2s.c over every positive finite f32.

use std::cmp::Ordering;

/// Little-endian 64-bit limbs. Arithmetic wraps instead of panicking; the value bounds
/// above keep every intermediate in range.
#[derive(Clone, Copy, PartialEq, Eq)]
struct U256([u64; 4]);

impl U256 {
    fn shl(self, n: u32) -> Self {
        let (limbs, bits) = ((n / 64) as usize, n % 64);
        let mut out = [0u64; 4];
        for i in (limbs..4).rev() {
            let src = i - limbs;
            out[i] = self.0[src] << bits;
            if bits > 0 && src > 0 {
                out[i] |= self.0[src - 1] >> (64 - bits);
            }
        }
        U256(out)
    }

    fn mul_small(self, k: u64) -> Self {
        let mut out = [0u64; 4];
        let mut carry = 0u128;
        for (o, &x) in out.iter_mut().zip(&self.0) {
            let t = x as u128 * k as u128 + carry;
            *o = t as u64;
            carry = t >> 64;
        }
        U256(out)
    }

    fn add(self, o: Self) -> Self {
        let mut out = [0u64; 4];
        let mut carry = false;
        for ((r, &a), &b) in out.iter_mut().zip(&self.0).zip(&o.0) {
            let (s1, c1) = a.overflowing_add(b);
            let (s2, c2) = s1.overflowing_add(carry as u64);
            *r = s2;
            carry = c1 || c2;
        }
        U256(out)
    }

    fn sub(self, o: Self) -> Self {
        let mut out = [0u64; 4];
        let mut borrow = false;
        for ((r, &a), &b) in out.iter_mut().zip(&self.0).zip(&o.0) {
            let (s1, b1) = a.overflowing_sub(b);
            let (s2, b2) = s1.overflowing_sub(borrow as u64);
            *r = s2;
            borrow = b1 || b2;
        }
        U256(out)
    }
}

/// The arithmetic the digit generator needs; u64 serves the common magnitudes, u128
/// most of the rest and U256 the extremes.
trait Big: Copy + Ord {
    fn new(x: u64) -> Self;
    fn shl(self, n: u32) -> Self;
    fn mul_small(self, k: u64) -> Self;
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul_pow10(mut self, mut n: u32) -> Self {
        while n >= 19 {
            self = self.mul_small(10u64.pow(19));
            n -= 19;
        }
        self.mul_small(10u64.pow(n))
    }
}

impl Big for u64 {
    fn new(x: u64) -> Self {
        x
    }
    fn shl(self, n: u32) -> Self {
        self.wrapping_shl(n)
    }
    fn mul_small(self, k: u64) -> Self {
        self.wrapping_mul(k)
    }
    fn add(self, o: Self) -> Self {
        self.wrapping_add(o)
    }
    fn sub(self, o: Self) -> Self {
        self.wrapping_sub(o)
    }
}

impl Big for u128 {
    fn new(x: u64) -> Self {
        x as u128
    }
    fn shl(self, n: u32) -> Self {
        self.wrapping_shl(n)
    }
    fn mul_small(self, k: u64) -> Self {
        self.wrapping_mul(k as u128)
    }
    fn add(self, o: Self) -> Self {
        self.wrapping_add(o)
    }
    fn sub(self, o: Self) -> Self {
        self.wrapping_sub(o)
    }
}

impl Big for U256 {
    fn new(x: u64) -> Self {
        U256([x, 0, 0, 0])
    }
    fn shl(self, n: u32) -> Self {
        U256::shl(self, n)
    }
    fn mul_small(self, k: u64) -> Self {
        U256::mul_small(self, k)
    }
    fn add(self, o: Self) -> Self {
        U256::add(self, o)
    }
    fn sub(self, o: Self) -> Self {
        U256::sub(self, o)
    }
}

impl PartialOrd for U256 {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for U256 {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.iter().rev().cmp(o.0.iter().rev())
    }
}

/// Shortest digits of a finite, nonzero |x|: returns `(digits, exp10)` with
/// |x| ≈ digits · 10^exp10 and no trailing zeros in `digits` (at most 9 digits).
pub(super) fn shortest(x: f32) -> (u64, i32) {
    let bits = x.to_bits() & 0x7fff_ffff;
    let (frac, bexp) = ((bits & 0x7f_ffff) as u64, (bits >> 23) as i32);
    let (f, e) = if bexp == 0 {
        (frac, -149)
    } else {
        (frac | 0x80_0000, bexp - 150)
    };
    // At a power of two the next float down is half as far away as the next one up
    // (except at the bottom of the normal range, where spacing continues unchanged).
    let asym = frac == 0 && bexp > 1;
    // First-digit position estimate (off by at most one; corrected exactly below).
    let k = (f32::from_bits(bits) as f64).log10().ceil() as i32;
    // The largest intermediate is below 20·s, with s ≈ 2^(2-e)·10^(k+1) for e < 0 and
    // 4·10^(k+1) otherwise: use the narrowest type that leaves headroom (u64 covers
    // about 1e-8..1e8, u128 about 1e-23..1e30).
    let s_bits = if e >= 0 { 2 } else { 2 - e } + (k + 1).max(0) * 10 / 3 + 1;
    if s_bits <= 58 {
        generate::<u64>(f, e, asym, k)
    } else if s_bits <= 122 {
        generate::<u128>(f, e, asym, k)
    } else {
        generate::<U256>(f, e, asym, k)
    }
}

fn generate<N: Big>(f: u64, e: i32, asym: bool, mut k: i32) -> (u64, i32) {
    // v = r/s; the exclusive interval is ((r - mm)/s, (r + mp)/s).
    let (mut r, mut s, mut mp, mut mm): (N, N, N, N);
    if e >= 0 {
        let ulp = N::new(1).shl(e as u32);
        if asym {
            (r, s, mp, mm) = (N::new(f).shl(e as u32 + 2), N::new(4), ulp.shl(1), ulp);
        } else {
            (r, s, mp, mm) = (N::new(f).shl(e as u32 + 1), N::new(2), ulp, ulp);
        }
    } else if asym {
        (r, s, mp, mm) = (
            N::new(f << 2),
            N::new(1).shl((2 - e) as u32),
            N::new(2),
            N::new(1),
        );
    } else {
        (r, s, mp, mm) = (
            N::new(f << 1),
            N::new(1).shl((1 - e) as u32),
            N::new(1),
            N::new(1),
        );
    }

    // Scale so that 10^(k-1) < high <= 10^k: the first digit is then at 10^(k-1).
    if k >= 0 {
        s = s.mul_pow10(k as u32);
    } else {
        let p = k.unsigned_abs();
        (r, mp, mm) = (r.mul_pow10(p), mp.mul_pow10(p), mm.mul_pow10(p));
    }
    for _ in 0..4 {
        if r.add(mp) > s {
            s = s.mul_small(10);
            k += 1;
        } else if r.add(mp).mul_small(10) <= s {
            (r, mp, mm) = (r.mul_small(10), mp.mul_small(10), mm.mul_small(10));
            k -= 1;
        } else {
            break;
        }
    }

    let mut digits = 0u64;
    let mut n = 0;
    loop {
        (r, mp, mm) = (r.mul_small(10), mp.mul_small(10), mm.mul_small(10));
        let mut d = 0u64;
        while r >= s && d < 10 {
            r = r.sub(s);
            d += 1;
        }
        n += 1;
        let low_ok = r < mm; // prefix·d lies strictly above the lower bound
        let high_ok = r.add(mp) > s; // prefix·(d+1) lies strictly below the upper bound
        if !low_ok && !high_ok && n < 12 {
            digits = digits * 10 + d;
            continue;
        }
        let up = match (low_ok, high_ok) {
            (true, false) => false,
            (false, true) => true,
            // Both (or, defensively, neither) valid: nearest, exact tie to even.
            _ => match r.shl(1).cmp(&s) {
                Ordering::Less => false,
                Ordering::Greater => true,
                Ordering::Equal => d % 2 == 1,
            },
        };
        digits = digits * 10 + d + up as u64;
        let mut exp = k - n;
        while digits != 0 && digits.is_multiple_of(10) {
            digits /= 10;
            exp += 1;
        }
        return (digits, exp);
    }
}
