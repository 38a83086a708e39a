//! Approval flows (审批流): a general engine for contracts, quotes and later
//! purchases, stocktaking losses, deliveries and custom forms.
//!
//! [`engine`] is the pure state machine (flow definitions, resolution of
//! approvers, transitions); [`service`] stores flow versions, instances and
//! every action through the `Store`, checks who may act, and emits outbox
//! events (`approval.submitted`, `approval.approved`, `<doc_type>.approved` …)
//! the host can act on.

pub mod engine;
pub mod service;

pub use engine::{
    ActionKind, ActionRecord, ApprovalError, ApproverRule, Condition, Directory, Facts, Fallback,
    FlowDef, Instance, RejectTo, ResolvedStep, Restart, SignMode, Status, StepDef,
};
pub use service::{ApprovalAction, ApprovalInfo, Decision, FlowInfo, SubmitRequest, Transition};
