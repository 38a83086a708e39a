//! The conformance suite every backend runs (feature `testing`).
//!
//! Scenarios are public async functions taking a fresh, empty store. A
//! backend's test file expands [`conformance_tests!`](crate::conformance_tests)
//! with an async expression producing such a store, which yields one named
//! `#[tokio::test]` per scenario, so a failure names the scenario and the
//! backend.

pub mod filter_suite;
pub mod import_suite;
pub mod lifecycle_suite;
pub mod permission_suite;
pub mod pool_suite;
pub mod query_suite;
pub mod sales_suite;
pub mod service_suite;
pub mod store_suite;

/// Expands to one `#[tokio::test]` per conformance scenario.
///
/// `$make` is an expression evaluating to a future of
/// `std::sync::Arc<dyn crm_core::store::Store>`; it is evaluated once per test.
/// The calling crate needs `tokio` (with `macros` and `rt`) as a dev-dependency.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::store_scenarios!($crate::__conformance_one; $make);
        $crate::service_scenarios!($crate::__conformance_one; $make);
        $crate::pool_scenarios!($crate::__conformance_one; $make);
        $crate::import_scenarios!($crate::__conformance_one; $make);
        $crate::permission_scenarios!($crate::__conformance_one; $make);
        $crate::sales_scenarios!($crate::__conformance_one; $make);
        $crate::lifecycle_scenarios!($crate::__conformance_one; $make);
        $crate::query_scenarios!($crate::__conformance_one; $make);
        $crate::filter_scenarios!($crate::__conformance_one; $make);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_one {
    ($path:path, $name:ident, $make:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let store: std::sync::Arc<dyn $crate::store::Store> = $make.await;
            $path(store).await;
        }
    };
}
