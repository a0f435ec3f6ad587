// Index scans of vsag through the executor's index AM API: the snapshot contract.

/// Scans index `name` (no ORDER BY: every indexed row, in index order) with `snapshot`
/// and counts the heap TIDs it returns.
unsafe fn count_scan(name: &str, snapshot: pg_sys::Snapshot) -> i64 {
    let oid = Spi::get_one::<pg_sys::Oid>(&format!("SELECT '{name}'::regclass::oid")).unwrap().unwrap();
    let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
    let index = pg_sys::index_open(oid, lock);
    let heap = pg_sys::table_open((*(*index).rd_index).indrelid, lock);
    #[cfg(not(feature = "pg18"))]
    let scan = pg_sys::index_beginscan(heap, index, snapshot, 0, 0);
    #[cfg(feature = "pg18")]
    let scan = pg_sys::index_beginscan(heap, index, snapshot, std::ptr::null_mut(), 0, 0);
    pg_sys::index_rescan(scan, std::ptr::null_mut(), 0, std::ptr::null_mut(), 0);
    let mut n = 0;
    while !pg_sys::index_getnext_tid(scan, pg_sys::ScanDirection::ForwardScanDirection).is_null() {
        n += 1;
    }
    pg_sys::index_endscan(scan);
    pg_sys::table_close(heap, lock);
    pg_sys::index_close(index, lock);
    n
}

fn make_scan_table() {
    Spi::run(
        "CREATE TABLE snap_t (v vector(2));
         INSERT INTO snap_t VALUES ('[1,2]'), ('[3,4]'), ('[5,6]');
         CREATE INDEX snap_i ON snap_t USING vsag (v vector_l2_ops);",
    )
    .unwrap();
}

#[pg_test]
fn vsag_scan_with_mvcc_snapshot_returns_rows() {
    make_scan_table();
    let n = unsafe { count_scan("snap_i", pg_sys::GetActiveSnapshot()) };
    assert_eq!(n, 3);
}

#[pg_test(error = "non-MVCC snapshots are not supported with vsag")]
fn vsag_scan_refuses_snapshot_any() {
    make_scan_table();
    unsafe { count_scan("snap_i", &raw mut pg_sys::SnapshotAnyData) };
}
