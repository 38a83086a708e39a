//! The shared store conformance suite, run against PostgreSQL.

mod common;

crm_core::conformance_tests!(crate::common::fresh_store());
