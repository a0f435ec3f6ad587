//! vsag: the Postgres shell around `vsag-core`.
//!
//! SQL objects are declared by hand in `sql/vsag.sql` (like pgvector's script) so the type,
//! operators, casts, aggregates and operator classes are created in one readable place and in
//! the right order. The Rust side exports V1 C functions named in that script.

::pgrx::pg_module_magic!(name, version);

mod am;
mod fmgr;
mod vector;

#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    unsafe { am::options::init() };
}

pgrx::extension_sql_file!("../sql/vsag.sql", name = "vsag_objects", finalize);

// In-database tests live in pgrx-tests/ (one file per area); `cargo pgrx test` runs them.
#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    // Included (not `mod`) so every test function lands in the `tests` schema that
    // pgrx's runner calls; names must therefore be unique across the files.
    use pgrx::prelude::*;
    include!("../pgrx-tests/vector_type.rs");
    include!("../pgrx-tests/index_scan.rs");
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
