//! Distance-kernel micro-benchmark (no criterion: plain Instant loops).
//! `cargo bench -p vsag-core --bench distance` prints ns per distance call for every
//! kernel the CPU supports. Operands rotate through a small pool of vectors so the data
//! is cache-resident, like the neighbour lists a graph search touches repeatedly.

use std::hint::black_box;
use std::time::{Duration, Instant};
use vsag_core::distance::{self, available_kernels};

const DIMS: [usize; 4] = [128, 384, 768, 1536];
const POOL: usize = 16;
const REPEATS: usize = 41;
const TARGET: Duration = Duration::from_millis(2);

/// Minimal xorshift so the bench needs no extra dependencies.
fn pool(seed: &mut u64, dim: usize) -> Vec<Vec<f32>> {
    (0..POOL)
        .map(|_| {
            (0..dim)
                .map(|_| {
                    *seed ^= *seed << 13;
                    *seed ^= *seed >> 7;
                    *seed ^= *seed << 17;
                    (*seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
                .collect()
        })
        .collect()
}

/// Best-of-REPEATS ns per call over short (~TARGET) batches: many short batches make
/// the minimum robust to other processes sharing the CPU.
fn time_ns(mut f: impl FnMut(&[f32], &[f32]) -> f32, a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    let mut iters = 64usize;
    // Calibrate the batch size so one batch lasts about TARGET.
    loop {
        let t = Instant::now();
        run(&mut f, a, b, iters);
        let e = t.elapsed();
        if e >= TARGET / 4 {
            iters = (iters as f64 * TARGET.as_secs_f64() / e.as_secs_f64()).ceil() as usize;
            break;
        }
        iters *= 4;
    }
    (0..REPEATS)
        .map(|_| {
            let t = Instant::now();
            run(&mut f, a, b, iters);
            t.elapsed().as_nanos() as f64 / iters as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn run(f: &mut impl FnMut(&[f32], &[f32]) -> f32, a: &[Vec<f32>], b: &[Vec<f32>], iters: usize) {
    let mut acc = 0.0f32;
    for i in 0..iters {
        let j = i % POOL;
        acc += f(black_box(&a[j]), black_box(&b[(j + 5) % POOL]));
    }
    black_box(acc);
}

fn main() {
    // `cargo bench` passes --bench; filtering args are not supported (and not needed).
    let started = Instant::now();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    type Pool = Vec<Vec<f32>>;
    let data: Vec<(Pool, Pool)> = DIMS
        .iter()
        .map(|&d| (pool(&mut seed, d), pool(&mut seed, d)))
        .collect();

    println!("active kernel: {}", distance::active_kernel_name());
    print!("| kernel   | function        |");
    for d in DIMS {
        print!(" dim {d:>4} |");
    }
    println!();
    print!("|----------|-----------------|");
    for _ in DIMS {
        print!("---------:|");
    }
    println!();

    type DistFn = Box<dyn Fn(&[f32], &[f32]) -> f32>;
    type Row<'a> = (&'a str, &'a str, DistFn);
    let mut rows: Vec<Row> = Vec::new();
    for (name, k) in available_kernels() {
        rows.push((name, "dot", Box::new(k.dot)));
        rows.push((name, "l2_squared", Box::new(k.l2_squared)));
        rows.push((name, "l1", Box::new(k.l1)));
        rows.push((
            name,
            "norm_squared",
            Box::new(move |a, _| (k.norm_squared)(a)),
        ));
    }
    // Public entry points: include the OnceLock dispatch and, for cosine, three passes.
    rows.push(("dispatch", "dot", Box::new(distance::dot)));
    rows.push((
        "dispatch",
        "cosine_distance",
        Box::new(|a, b| distance::cosine_distance(a, b) as f32),
    ));

    for (kernel, func, f) in &rows {
        print!("| {kernel:<8} | {func:<15} |");
        for (a, b) in &data {
            print!(" {:>8.1} |", time_ns(f, a, b));
        }
        println!();
    }
    println!(
        "\n(ns per call, best of {REPEATS}; total {:.1} s)",
        started.elapsed().as_secs_f64()
    );
}
