//! Excel import and export for the CRM engine (being built; see the issue
//! tracker). It talks to storage only through `crm-core`'s traits.
