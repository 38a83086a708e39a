//! The backend-independent conformance suite, run against an in-memory store.

crm_core::conformance_tests!(async {
    std::sync::Arc::new(crm_store_sqlite::SqliteStore::open_in_memory().expect("open"))
        as std::sync::Arc<dyn crm_core::store::Store>
});
