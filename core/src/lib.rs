//! vsag-core: the Postgres-free half of vsag.
//!
//! Everything here is plain Rust that can be tested with `cargo test -p vsag-core`:
//! distance kernels (SIMD with runtime dispatch), the `vector` text/binary codecs, and
//! (beside them) quantizers, the proximity graph and the page-tuple codec used by the
//! index access method. The pgrx crate only adapts Postgres to these pieces.

pub mod distance;
pub mod vector;
pub mod graph;
pub mod quant;
pub mod page;
