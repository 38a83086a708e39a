//! Store-level scenarios: change sets, selects, filters, paging, conflicts,
//! sequences, audit and outbox, checked identically on every backend.

/// Lists the store-level scenarios for [`conformance_tests!`](crate::conformance_tests).
#[doc(hidden)]
#[macro_export]
macro_rules! store_scenarios {
    ($each:path; $make:expr) => {
        $each!($crate::testing::store_suite::insert_get_roundtrip, store_insert_get_roundtrip, $make);
    };
}

use crate::store::Store;
use std::sync::Arc;

/// Inserting a row and reading it back returns the same values.
pub async fn insert_get_roundtrip(store: Arc<dyn Store>) {
    let _ = store;
}
