//! Stored approvals: flow versions, instances and their actions, with the
//! permission rules and outbox events around the pure [`engine`](super::engine).
//!
//! - Defining a flow needs `approval_flow:manage` (administrators have it).
//!   Each definition is a new version; the previous one is deactivated.
//!   A pending approval keeps the version it runs on; a rejected or
//!   withdrawn one is resubmitted on the active version (from its first
//!   step when the version changed).
//! - A flow may name only active users of the company and roles of the
//!   company with an active member. At a submission only active users
//!   resolve as approvers, never the applicant (a step left with nobody
//!   falls back), and the applicant's picks must be active colleagues —
//!   at least one when a step of picks applies.
//! - Acting on an approval needs nothing but being an approver of its
//!   current step (or the applicant, to withdraw and resubmit; the owner
//!   of a contract or quote may withdraw its approval too). Reading one
//!   needs being involved in it, or `approval_flow:read`.
//! - Approvers who are no longer active, or no longer hold the role or
//!   the superior position their step names, are not waited for (see
//!   [`Instance::drop_inactive`] and [`refresh_approval`](Crm::refresh_approval)).
//! - The approval of a contract, quote or payment in the recycle bin (or
//!   gone) cannot be approved or rejected, only withdrawn.
//! - A document has one approval, and a host document's code (a leave
//!   request's `QJ-1`) names one document of its type: a submission under
//!   a code another document's approval holds is refused, whatever that
//!   approval's status, also when both are written at once (a guard keyed
//!   by type and code). Only its applicant resubmits it.
//! - Events: `approval.*` are about the approval (its table and id);
//!   `<doc_type>.approved`/`.rejected`/`.withdrawn` of a contract, quote or
//!   payment are about the document (its table and id, the approval's id
//!   in the payload as `approval_id`); a host document's event names the
//!   approval. `approval.submitted` names the step the approval waits at.

use super::engine::{
    ActionRecord, ApprovalError, ApproverRule, Directory, Facts, FlowDef, Instance, RejectTo,
    Status,
};
use crate::auth::{Action, Actor};
use crate::crm::{Crm, json_ids};
use crate::entity::Entity;
use crate::error::{Error, Result};
use crate::ids::RoleId;
use crate::schema::Table;
use crate::store::{
    ChangeSet, CmpOp, Col, FieldChange, Filter, Guard, Op, Payload, Row, Select, Sort,
};
use crate::value::Value;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

/// One stored version of a flow definition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowInfo {
    /// The row id of this version.
    pub id: Uuid,
    /// The document type, e.g. `contract`, `quote`.
    pub doc_type: String,
    /// The flow's name.
    pub name: String,
    /// The version, from 1.
    pub flow_version: i64,
    /// Whether new submissions use this version.
    pub active: bool,
    /// The definition.
    pub definition: FlowDef,
}

/// A document submitted for approval.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SubmitRequest {
    /// The document type, e.g. `contract`.
    pub doc_type: String,
    /// The document.
    pub document_id: Uuid,
    /// The document's human code, e.g. `HT-20261127-0001`. For a host
    /// document type it names one document: a submission under a code
    /// another document's approval of the type holds is refused.
    pub document_code: Option<String>,
    /// A title shown in pending lists.
    pub title: Option<String>,
    /// What conditions look at.
    pub facts: Facts,
    /// Approvers picked by the applicant (for `applicant_picks` steps).
    pub picked: Vec<Uuid>,
    /// The applicant's comment.
    pub comment: Option<String>,
}

/// An approval (审批单) as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApprovalInfo {
    /// The approval's id.
    pub id: Uuid,
    /// The document type.
    pub doc_type: String,
    /// The document.
    pub document_id: Uuid,
    /// The document's code.
    pub document_code: Option<String>,
    /// The title.
    pub title: Option<String>,
    /// The applicant.
    pub applicant_id: Uuid,
    /// The status.
    pub status: Status,
    /// The flow version the approval runs on.
    pub flow_version: i64,
    /// The name of the current step, while pending.
    pub current_step: Option<String>,
    /// Who may act now.
    pub pending_with: Vec<Uuid>,
    /// The full state.
    pub state: Instance,
    /// The row version.
    pub version: i64,
}

/// One recorded action on an approval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApprovalAction {
    /// Its position, from 1.
    pub seq: i64,
    /// `submit`, `approve`, `reject`, `return`, `withdraw`, `auto_pass`.
    pub action: String,
    /// Who (none for automatic passes).
    pub actor_id: Option<Uuid>,
    /// The step index (from 0) acted on.
    pub step_index: Option<i64>,
    /// The step's name.
    pub step_name: Option<String>,
    /// For returns: the step returned to.
    pub to_step: Option<i64>,
    /// The comment.
    pub comment: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// What an approver does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Approve (同意).
    Approve,
    /// Reject, to the applicant or to an earlier step (驳回).
    Reject(RejectTo),
    /// Withdraw (撤回): the applicant, or the owner of the contract or quote.
    Withdraw,
}

/// The change set of an approval transition, before it is applied: callers
/// that own the document (contracts, quotes) add their own ops to it so the
/// document and the approval change atomically.
#[derive(Debug)]
pub struct Transition {
    /// The approval after the transition.
    pub info: ApprovalInfo,
    /// The status before.
    pub before: Option<Status>,
    /// What to write.
    pub changes: ChangeSet,
}

fn check_doc_type(doc_type: &str) -> Result<()> {
    let ok = doc_type
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase())
        && doc_type
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok && doc_type.len() <= 40 {
        Ok(())
    } else {
        Err(Error::invalid(
            "doc_type",
            format!("document type '{doc_type}' must look like contract or purchase_order"),
        ))
    }
}

fn engine_error(e: ApprovalError) -> Error {
    match e {
        ApprovalError::InvalidFlow(m) => Error::invalid("definition", m),
        ApprovalError::SelfPick | ApprovalError::BadPick(_) | ApprovalError::NothingPicked(_) => {
            Error::invalid("picked", e.to_string())
        }
        ApprovalError::NotAnApprover(_) | ApprovalError::NotApplicant => {
            Error::Forbidden(e.to_string())
        }
        other => Error::InvalidState(other.to_string()),
    }
}

/// The table of a document type whose approval changes a sales document.
fn sales_document_table(doc_type: &str) -> Option<Table> {
    match doc_type {
        "contract" => Some(Table::Contracts),
        "quote" => Some(Table::Quotes),
        "payment" => Some(Table::Payments),
        _ => None,
    }
}

/// Refuses to approve or reject the approval of a sales document that is
/// in the recycle bin or no longer exists: its outcome would change (or
/// put into execution) a document nobody should work on. `document` is the
/// stored row, `None` when there is none.
pub(crate) fn check_document_live(info: &ApprovalInfo, document: Option<&Row>) -> Result<()> {
    if sales_document_table(&info.doc_type).is_none() {
        return Ok(());
    }
    let code = document
        .and_then(|d| d.get("code").as_text().map(str::to_string))
        .or_else(|| info.document_code.clone())
        .unwrap_or_else(|| info.document_id.to_string());
    match document {
        Some(d) if d.get("deleted_at").is_null() => Ok(()),
        Some(_) => Err(Error::InvalidState(format!(
            "{} {code} is in the recycle bin; its approval cannot be approved or rejected \
             (restore the {} first, or withdraw the approval)",
            info.doc_type, info.doc_type
        ))),
        None => Err(Error::InvalidState(format!(
            "{} {code} no longer exists; its approval cannot be approved or rejected, \
             only withdrawn",
            info.doc_type
        ))),
    }
}

/// Refuses a comment or title holding a NUL character, which no store
/// keeps.
fn check_no_nul(field: &str, text: Option<&str>) -> Result<()> {
    if text.is_some_and(|t| t.contains('\0')) {
        return Err(Error::invalid(field, "holds a NUL character (\\0)"));
    }
    Ok(())
}

fn eq(col: &'static str, v: Value) -> Filter {
    Filter::Cmp(Col::Column(col), CmpOp::Eq, v)
}

fn text(v: impl Into<String>) -> Value {
    Value::Text(v.into())
}

fn flow_from_row(r: &Row) -> Result<FlowInfo> {
    let definition =
        serde_json::from_value(r.get("definition").as_json().cloned().unwrap_or_default())
            .map_err(|e| {
                Error::InvalidState(format!("approval flow {} is unreadable: {e}", r.id()))
            })?;
    Ok(FlowInfo {
        id: r.id(),
        doc_type: r.get("doc_type").as_text().unwrap_or_default().to_string(),
        name: r.get("name").as_text().unwrap_or_default().to_string(),
        flow_version: r.get("flow_version").as_int().unwrap_or(0),
        active: r.get("active").as_bool().unwrap_or(false),
        definition,
    })
}

fn info_from_row(r: &Row) -> Result<ApprovalInfo> {
    let state: Instance =
        serde_json::from_value(r.get("state").as_json().cloned().unwrap_or_default())
            .map_err(|e| Error::InvalidState(format!("approval {} is unreadable: {e}", r.id())))?;
    Ok(ApprovalInfo {
        id: r.id(),
        doc_type: r.get("doc_type").as_text().unwrap_or_default().to_string(),
        document_id: r.get("document_id").as_id().unwrap_or_default(),
        document_code: r.get("document_code").as_text().map(str::to_string),
        title: r.get("title").as_text().map(str::to_string),
        applicant_id: r.get("applicant_id").as_id().unwrap_or_default(),
        status: state.status,
        flow_version: r.get("flow_version").as_int().unwrap_or(0),
        current_step: state.current_step().map(|s| s.name.clone()),
        pending_with: state.pending_approvers(),
        state,
        version: r.version(),
    })
}

fn pending_text(state: &Instance) -> String {
    state
        .pending_approvers()
        .iter()
        .map(Uuid::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

fn event_name(rec: &ActionRecord, after: Status) -> &'static str {
    use super::engine::ActionKind as K;
    match (rec.kind, after) {
        (_, Status::Approved) => "approved",
        (K::Submit, _) => "submitted",
        (K::Approve, _) => "step_approved",
        (K::Reject, _) => "rejected",
        (K::Return, _) => "returned",
        (K::Withdraw, _) => "withdrawn",
        (K::AutoPass, _) => "step_approved",
    }
}

impl Crm {
    /// Defines (or redefines) the approval flow of a document type in the
    /// actor's company; the new definition becomes version n + 1 and the
    /// only active one. Pending approvals keep their version; rejected or
    /// withdrawn ones move to the new version when resubmitted. Named users
    /// must be active users of the company, and roles roles of the company
    /// with at least one active member.
    pub async fn define_approval_flow(
        &self,
        actor: &Actor,
        doc_type: &str,
        name: &str,
        definition: FlowDef,
    ) -> Result<FlowInfo> {
        if !actor.can(Entity::ApprovalFlow, Action::Manage) {
            return Err(Error::Forbidden(format!(
                "{} may not define approval flows",
                actor.display_name
            )));
        }
        check_doc_type(doc_type)?;
        if name.trim().is_empty() {
            return Err(Error::invalid("name", "an approval flow needs a name"));
        }
        let mut definition = definition;
        sales_conditions(doc_type, &mut definition).map_err(|m| Error::invalid("definition", m))?;
        definition
            .validate()
            .and_then(|()| definition.check_new())
            .map_err(|m| Error::invalid("definition", m))?;
        // Quotes and payments are submitted by operations that pick no
        // approvers: a step the applicant picks for could never be met.
        if matches!(doc_type, "quote" | "payment")
            && let Some(step) = definition
                .steps
                .iter()
                .find(|s| s.approvers == ApproverRule::ApplicantPicks)
        {
            return Err(Error::invalid(
                "definition",
                format!(
                    "step '{}': {doc_type} approvals are submitted without picking approvers; \
                     name users, a role or superiors instead",
                    step.name
                ),
            ));
        }
        let company = actor.company_id.0;
        let dir = self.approval_directory(company).await?;
        if let Err(m) = definition.check_people(&dir) {
            return Err(Error::invalid(
                "definition",
                self.users_named(company, &definition, m).await?,
            ));
        }
        let now = self.now();
        let mut sel = Select::all(Table::ApprovalFlows, company, now);
        sel.filter = eq("doc_type", text(doc_type));
        let existing = self.store.select(&sel).await?.rows;
        let mut changes = ChangeSet::default();
        let mut latest = 0;
        for r in &existing {
            latest = latest.max(r.get("flow_version").as_int().unwrap_or(0));
            if r.get("active").as_bool() == Some(true) {
                changes.ops.push(Op::Update {
                    table: Table::ApprovalFlows,
                    id: r.id(),
                    expected_version: r.version(),
                    values: vec![
                        ("active", Value::Bool(false)),
                        ("updated_at", Value::Timestamp(now)),
                    ],
                });
            }
        }
        let id = self.new_id();
        let def_json = serde_json::to_value(&definition)
            .map_err(|e| Error::InvalidState(format!("cannot encode the flow: {e}")))?;
        changes.ops.push(Op::Insert {
            table: Table::ApprovalFlows,
            values: vec![
                ("id", Value::Id(id)),
                ("company_id", Value::Id(company)),
                ("version", Value::Int(1)),
                ("created_at", Value::Timestamp(now)),
                ("updated_at", Value::Timestamp(now)),
                ("doc_type", text(doc_type)),
                ("name", text(name.trim())),
                ("flow_version", Value::Int(latest + 1)),
                ("active", Value::Bool(true)),
                ("definition", Value::Json(def_json.clone())),
                ("created_by", Value::Id(actor.user_id.0)),
            ],
        });
        changes.audit.push(self.audit(
            Some(actor),
            company,
            Table::ApprovalFlows,
            id,
            "create",
            vec![FieldChange {
                field: "definition".into(),
                before: serde_json::Value::Null,
                after: def_json,
            }],
        ));
        changes.events.push(self.event(
            company,
            Table::ApprovalFlows,
            id,
            "approval_flow.defined".into(),
            json!({"doc_type": doc_type, "flow_version": latest + 1}),
        ));
        // The roles it names must not be deleted meanwhile.
        for step in &definition.steps {
            if let ApproverRule::Role { role_id } = &step.approvers {
                let name = dir.roles.get(role_id).cloned().unwrap_or_default();
                changes
                    .guards
                    .push(self.role_live_guard(company, RoleId(*role_id), &name));
            }
        }
        self.apply(changes).await?;
        Ok(FlowInfo {
            id,
            doc_type: doc_type.to_string(),
            name: name.trim().to_string(),
            flow_version: latest + 1,
            active: true,
            definition,
        })
    }

    /// The active flow of a document type, if one is defined.
    pub async fn approval_flow(&self, actor: &Actor, doc_type: &str) -> Result<Option<FlowInfo>> {
        let mut sel = Select::all(Table::ApprovalFlows, actor.company_id.0, self.now());
        sel.filter = Filter::And(vec![
            eq("doc_type", text(doc_type)),
            eq("active", Value::Bool(true)),
        ]);
        match self.store.select(&sel).await?.rows.first() {
            Some(r) => Ok(Some(flow_from_row(r)?)),
            None => Ok(None),
        }
    }

    /// The organisation as the approval engine sees it: the active users,
    /// with their superiors, role members and administrators among them,
    /// and the company's roles.
    pub(crate) async fn approval_directory(&self, company: Uuid) -> Result<Directory> {
        let now = self.now();
        let roles = self
            .store
            .select(&Select::all(Table::Roles, company, now))
            .await?
            .rows;
        let admin_roles: Vec<Uuid> = roles
            .iter()
            .filter(|r| r.get("is_admin").as_bool() == Some(true))
            .map(Row::id)
            .collect();
        let mut sel = Select::all(Table::Users, company, now);
        sel.sort = vec![Sort {
            col: Col::Column("username"),
            desc: false,
        }];
        let users = self.store.select(&sel).await?.rows;
        let mut dir = Directory {
            roles: roles
                .iter()
                .map(|r| {
                    let name = r.get("name").as_text().unwrap_or_default().to_string();
                    (r.id(), name)
                })
                .collect(),
            ..Directory::default()
        };
        for u in users {
            let id = u.id();
            // Every user's superior, so that an inactive manager does not
            // cut the chain above them (the engine passes over them).
            if let Some(s) = u.get("superior_id").as_id() {
                dir.superiors.insert(id, s);
            }
            if u.get("active").as_bool() != Some(true) {
                continue;
            }
            dir.active_users.insert(id);
            for role in json_ids(u.get("role_ids")) {
                dir.role_members.entry(role).or_default().push(id);
                if admin_roles.contains(&role) && !dir.admins.contains(&id) {
                    dir.admins.push(id);
                }
            }
        }
        Ok(dir)
    }

    /// The approval instances of a document (at most one).
    fn approval_rows_of(&self, company: Uuid, doc_type: &str, doc: Uuid) -> Select {
        let mut sel = Select::all(Table::ApprovalInstances, company, self.now());
        sel.filter = Filter::And(vec![
            eq("doc_type", text(doc_type)),
            eq("document_id", Value::Id(doc)),
        ]);
        sel
    }

    /// Whether the actor is an approver of a pending approval of a sales
    /// document: while it waits, an approver of one of its steps may read
    /// the quote or contract it decides, not approve it blind. (Decided or
    /// withdrawn, the document is read by its own rules again.)
    pub(crate) async fn approves_document(
        &self,
        actor: &Actor,
        doc_type: &str,
        doc: Uuid,
    ) -> Result<bool> {
        let me = actor.user_id.0;
        let Some(row) = self
            .approval_row_for(actor.company_id.0, doc_type, doc)
            .await?
        else {
            return Ok(false);
        };
        let info = info_from_row(&row)?;
        Ok(info.status == Status::Pending
            && info.state.steps.iter().any(|s| s.approvers.contains(&me)))
    }

    /// The approvals of `doc_type` whose document code is `code` and whose
    /// document is not `document`: a host document's code names one
    /// document of its type, whoever submits it.
    fn approvals_holding_code(
        &self,
        company: Uuid,
        doc_type: &str,
        code: &str,
        document: Uuid,
    ) -> Select {
        let mut sel = Select::all(Table::ApprovalInstances, company, self.now());
        sel.filter = Filter::And(vec![
            eq("doc_type", text(doc_type)),
            eq("document_code", text(code)),
            Filter::Cmp(Col::Column("document_id"), CmpOp::Ne, Value::Id(document)),
        ]);
        sel
    }

    /// The refusal of a submission naming, by `code`, a document of
    /// `doc_type` whose approval `holder` is: another user's (named when
    /// the actor may read that approval), or the actor's own for another
    /// document.
    async fn code_held(&self, actor: &Actor, doc_type: &str, code: &str, holder: &Row) -> Error {
        let info = match info_from_row(holder) {
            Ok(info) => info,
            Err(e) => return e,
        };
        let why = if info.applicant_id == actor.user_id.0 {
            format!(
                "you submitted another document under this code (approval {}, {}); resubmit \
                 that one, or give this document its own code",
                info.id,
                info.status.label_zh()
            )
        } else {
            let who = if self.approval(actor, info.id).await.is_ok() {
                format!(
                    "{} submitted it (approval {}, {})",
                    self.user_named(info.applicant_id).await,
                    info.id,
                    info.status.label_zh()
                )
            } else {
                "another user submitted it".to_string()
            };
            format!("{who}; only its applicant may resubmit it, so give this document its own code")
        };
        Error::InvalidState(format!(
            "{doc_type} {code} is already submitted for approval: {why} (单据编号已被占用)"
        ))
    }

    async fn approval_row_for(
        &self,
        company: Uuid,
        doc_type: &str,
        doc: Uuid,
    ) -> Result<Option<Row>> {
        let sel = self.approval_rows_of(company, doc_type, doc);
        Ok(self.store.select(&sel).await?.rows.into_iter().next())
    }

    /// Builds the change set of a submission (or resubmission) without
    /// applying it. Fails when no flow is defined for the document type,
    /// the document is already pending or approved, or its code is held by
    /// another document's approval of the type (and, when applied, if
    /// such an approval was written meanwhile).
    ///
    /// Sales documents (contracts, quotes, payments) are refused: their
    /// approvals change the documents, so they are submitted only through
    /// their own operations ([`submit_contract`](Crm::submit_contract),
    /// [`submit_quote`](Crm::submit_quote),
    /// [`record_payment`](Crm::record_payment)), which check the caller's
    /// rights and the document's state and take the facts from the stored
    /// document.
    pub async fn submission(&self, actor: &Actor, req: &SubmitRequest) -> Result<Transition> {
        check_doc_type(&req.doc_type)?;
        if let Some(operation) = crate::sales::approval_submit_operation(&req.doc_type) {
            return Err(Error::invalid(
                "doc_type",
                format!(
                    "{} documents cannot be submitted for approval directly; use {operation}, \
                     which checks the document and takes the approval facts from it",
                    req.doc_type
                ),
            ));
        }
        self.submission_of(actor, req, false).await
    }

    /// Builds the change set of a submission for any document type,
    /// sales documents included. Callers own the document: they have
    /// checked the actor's rights on it (they may submit it) and its state,
    /// and computed `req.facts` from it. So a rejected or withdrawn
    /// approval whose applicant is somebody else (the document was
    /// transferred, or its applicant left) is resubmitted by the actor as
    /// its new applicant, in a fresh round from the first step.
    pub(crate) async fn document_submission(
        &self,
        actor: &Actor,
        req: &SubmitRequest,
    ) -> Result<Transition> {
        self.submission_of(actor, req, true).await
    }

    /// An engine error as [`engine_error`] gives it, a user who cannot be
    /// picked named by name rather than id.
    async fn picked_named(&self, company: Uuid, e: ApprovalError) -> Error {
        match e {
            ApprovalError::BadPick(u) => {
                // Named only within the company: another company's user
                // stays an id.
                let ours = matches!(
                    self.store.get(Table::Users, u).await,
                    Ok(Some(r)) if r.get("company_id").as_id() == Some(company)
                );
                let who = if ours {
                    self.user_named(u).await
                } else {
                    format!("user {u}")
                };
                Error::invalid(
                    "picked",
                    format!(
                        "{who} cannot be picked as an approver: not an active user of this \
                         company (只能选择本公司启用的用户)"
                    ),
                )
            }
            other => engine_error(other),
        }
    }

    /// Whether `user` approves on any step of the pending approval of the
    /// document `document` of `doc_type` (none pending: no).
    pub(crate) async fn approves_pending(
        &self,
        company: Uuid,
        doc_type: &str,
        document: Uuid,
        user: Uuid,
    ) -> Result<bool> {
        let Some(row) = self.approval_row_for(company, doc_type, document).await? else {
            return Ok(false);
        };
        let info = info_from_row(&row)?;
        if info.status != Status::Pending {
            return Ok(false);
        }
        if info.state.is_approver(user) {
            return Ok(true);
        }
        // Who holds a role or superior step today acts on it too (see
        // `decision`).
        let flow = self.running_flow(&row).await?;
        let dir = self.approval_directory(company).await?;
        Ok(info
            .state
            .drop_inactive(&flow.definition, &dir)
            .0
            .is_approver(user))
    }

    /// A user as messages name them (`张三 (zhangsan)`).
    async fn user_named(&self, id: Uuid) -> String {
        match self.store.get(Table::Users, id).await {
            Ok(Some(u)) => crate::org::user_label(
                u.get("display_name").as_text().unwrap_or_default(),
                u.get("username").as_text().unwrap_or_default(),
            ),
            _ => format!("user {id}"),
        }
    }

    /// The refusal of a decision by someone the current step does not
    /// wait for: named, with the step, the document and who it waits for.
    async fn not_for_me(
        &self,
        actor: &Actor,
        info: &ApprovalInfo,
        current: &Instance,
        decided: &std::result::Result<(Instance, Vec<ActionRecord>), ApprovalError>,
    ) -> Error {
        let mut names = Vec::new();
        for u in current.pending_approvers() {
            names.push(self.user_named(u).await);
        }
        let step = current
            .current_step()
            .map(|s| format!("step {} of ", s.name))
            .unwrap_or_default();
        let doc = match &info.document_code {
            Some(code) => format!("{} {code}", info.doc_type),
            None => info.doc_type.clone(),
        };
        let waits = if names.is_empty() {
            String::new()
        } else {
            format!("; it waits for {}", names.join(", "))
        };
        let why = match decided {
            Err(ApprovalError::AlreadyApproved(_)) => "has already approved",
            _ => "is not an approver of",
        };
        Error::Forbidden(format!(
            "{} {why} {step}the approval of {doc}{waits}",
            actor.display_name
        ))
    }

    /// The message refusing `actor` an action only the applicant may take,
    /// naming the applicant.
    async fn not_applicant(&self, applicant: Uuid, what: &str, hint: &str) -> Error {
        let name = self.user_named(applicant).await;
        Error::Forbidden(format!(
            "only the applicant, {name}, may {what} this approval{hint}"
        ))
    }

    /// Builds a submission. A rejected or withdrawn approval is resubmitted
    /// by its applicant; anybody else starts a fresh round as its new
    /// applicant when `owner_checked` (the caller checked the actor may
    /// submit the document) or when the applicant is no longer an active
    /// user of the company (nobody else could ever resubmit it).
    async fn submission_of(
        &self,
        actor: &Actor,
        req: &SubmitRequest,
        owner_checked: bool,
    ) -> Result<Transition> {
        check_doc_type(&req.doc_type)?;
        check_no_nul("comment", req.comment.as_deref())?;
        check_no_nul("title", req.title.as_deref())?;
        if req
            .document_code
            .as_deref()
            .is_some_and(|c| c.trim().is_empty())
        {
            return Err(Error::invalid(
                "document_code",
                "is blank: name the document by its code, or give none (单据编号不能为空白)",
            ));
        }
        let company = actor.company_id.0;
        let dir = self.approval_directory(company).await?;
        let existing = self
            .approval_row_for(company, &req.doc_type, req.document_id)
            .await?;
        // A generic document resubmitted keeps its title, code, facts and
        // picked approvers unless new ones are given: a resubmission naming only the
        // document must not drop the amount or kind a step's condition
        // reads (and skip that step). Sales documents give theirs, read
        // from the stored document.
        let filled;
        let req = match &existing {
            Some(row) if !owner_checked => {
                let prior = info_from_row(row)?;
                let was_picked = prior.state.picked.clone();
                let mut r = req.clone();
                let was = &prior.state.facts;
                r.facts.amount_minor = r.facts.amount_minor.or(was.amount_minor);
                r.facts.kind = r.facts.kind.clone().or_else(|| was.kind.clone());
                r.facts.discount_bp = r.facts.discount_bp.or(was.discount_bp);
                r.title = r.title.clone().or(prior.title);
                r.document_code = r.document_code.clone().or(prior.document_code);
                // The approvers the applicant picked, unless picked anew
                // (a new applicant picks their own).
                if r.picked.is_empty() && prior.applicant_id == actor.user_id.0 {
                    r.picked = was_picked;
                }
                filled = r;
                &filled
            }
            _ => req,
        };
        // A host document's code names one document of its type: a
        // submission under a code another document's approval holds (its
        // applicant's, pending or not) is refused, and so is one whose
        // code such an approval took meanwhile (the guard below). Sales
        // documents' codes are the engine's own (a payment's approval
        // carries its contract's code).
        let code_guard = match (&req.document_code, sales_document_table(&req.doc_type)) {
            (Some(code), None) => {
                let sel =
                    self.approvals_holding_code(company, &req.doc_type, code, req.document_id);
                if let Some(holder) = self.store.select(&sel).await?.rows.first() {
                    return Err(self.code_held(actor, &req.doc_type, code, holder).await);
                }
                Some(Guard {
                    kind: crate::store::GuardKind::State,
                    keys: vec![format!(
                        "{company}:approval_instances:{}:code:{code}",
                        req.doc_type
                    )],
                    select: sel,
                    message: format!(
                        "{} {code} was submitted for approval by another user meanwhile: only \
                         its applicant may resubmit it, so give this document its own code \
                         (单据编号已被占用)",
                        req.doc_type
                    ),
                })
            }
            _ => None,
        };
        let (flow, before, next, records, seq0, row) = match existing {
            Some(row) => {
                let info = info_from_row(&row)?;
                let running = self.running_flow(&row).await?;
                // A resubmission runs on the flow version active now (rules
                // changed since must apply, and an old version may name
                // people or roles no longer there). Positions of steps in
                // another version mean nothing: it restarts from the first
                // step. (Only rejected or withdrawn approvals get this far;
                // the engine refuses to resubmit a pending or approved one.)
                let flow = self
                    .approval_flow(actor, &req.doc_type)
                    .await?
                    .unwrap_or_else(|| running.clone());
                let mut prior = info.state.clone();
                if flow.id != running.id {
                    prior.rejected_at = None;
                }
                let me = actor.user_id.0;
                let applicant = info.state.applicant;
                let takes_over =
                    me != applicant && (owner_checked || !dir.active_users.contains(&applicant));
                let resubmitted = if takes_over {
                    prior.resubmit_as_new_applicant(
                        &flow.definition,
                        &dir,
                        me,
                        req.facts.clone(),
                        req.picked.clone(),
                        req.comment.as_deref(),
                    )
                } else {
                    prior.resubmit(
                        &flow.definition,
                        &dir,
                        me,
                        req.facts.clone(),
                        req.picked.clone(),
                        req.comment.as_deref(),
                    )
                };
                let (next, records) = match resubmitted {
                    Err(ApprovalError::NotApplicant) => {
                        return Err(self
                            .not_applicant(
                                applicant,
                                "resubmit",
                                "; another user takes it over only once the applicant \
                                 is no longer active",
                            )
                            .await);
                    }
                    Err(e) => return Err(self.picked_named(company, e).await),
                    Ok(done) => done,
                };
                let seq0 = self.approval_action_count(row.id()).await?;
                (flow, Some(info.status), next, records, seq0, Some(row))
            }
            None => {
                let flow = self
                    .approval_flow(actor, &req.doc_type)
                    .await?
                    .ok_or_else(|| {
                        Error::InvalidState(format!(
                            "no approval flow is defined for {}",
                            req.doc_type
                        ))
                    })?;
                let (next, records) = match Instance::submit(
                    &flow.definition,
                    &dir,
                    actor.user_id.0,
                    req.facts.clone(),
                    req.picked.clone(),
                    req.comment.as_deref(),
                ) {
                    Ok(done) => done,
                    Err(e) => return Err(self.picked_named(company, e).await),
                };
                (flow, None, next, records, 0, None)
            }
        };
        let now = self.now();
        let id = row.as_ref().map(Row::id).unwrap_or_else(|| self.new_id());
        let state = serde_json::to_value(&next)
            .map_err(|e| Error::InvalidState(format!("cannot encode the approval: {e}")))?;
        let mut values = vec![
            ("updated_at", Value::Timestamp(now)),
            ("status", text(next.status.name())),
            ("pending_with", text(pending_text(&next))),
            (
                "amount",
                next.facts.amount_minor.map_or(Value::Null, Value::Int),
            ),
            ("state", Value::Json(state)),
            (
                "document_code",
                req.document_code.clone().map_or(Value::Null, Value::Text),
            ),
            ("title", req.title.clone().map_or(Value::Null, Value::Text)),
            // A resubmission by a new applicant moves the approval to them.
            ("applicant_id", Value::Id(next.applicant)),
            // A resubmission runs on the active flow version.
            ("flow_id", Value::Id(flow.id)),
            ("flow_version", Value::Int(flow.flow_version)),
            (
                "finished_at",
                if next.status == Status::Approved {
                    Value::Timestamp(now)
                } else {
                    Value::Null
                },
            ),
        ];
        let mut changes = ChangeSet::default();
        match &row {
            Some(r) => changes.ops.push(Op::Update {
                table: Table::ApprovalInstances,
                id,
                expected_version: r.version(),
                values,
            }),
            None => {
                values.extend([
                    ("id", Value::Id(id)),
                    ("company_id", Value::Id(company)),
                    ("version", Value::Int(1)),
                    ("created_at", Value::Timestamp(now)),
                    ("doc_type", text(&req.doc_type)),
                    ("document_id", Value::Id(req.document_id)),
                ]);
                changes.ops.push(Op::Insert {
                    table: Table::ApprovalInstances,
                    values,
                });
                // A document has one approval: a concurrent first
                // submission of the same document must not add a second.
                changes.guards.push(Guard {
                    kind: crate::store::GuardKind::State,
                    keys: vec![format!(
                        "{company}:approval_instances:{}:{}",
                        req.doc_type, req.document_id
                    )],
                    select: self.approval_rows_of(company, &req.doc_type, req.document_id),
                    message: format!(
                        "{} {} was submitted for approval meanwhile; open its approval instead",
                        req.doc_type,
                        req.document_code
                            .clone()
                            .unwrap_or_else(|| req.document_id.to_string())
                    ),
                });
            }
        }
        changes.guards.extend(code_guard);
        let version = row.as_ref().map_or(1, |r| r.version() + 1);
        let info = ApprovalInfo {
            id,
            doc_type: req.doc_type.clone(),
            document_id: req.document_id,
            document_code: req.document_code.clone(),
            title: req.title.clone(),
            applicant_id: next.applicant,
            status: next.status,
            flow_version: flow.flow_version,
            current_step: next.current_step().map(|s| s.name.clone()),
            pending_with: next.pending_approvers(),
            state: next,
            version,
        };
        self.record_actions(actor, &info, before, &records, seq0, &mut changes);
        self.sales_approval_effects(actor, &info, &mut changes)
            .await?;
        Ok(Transition {
            info,
            before,
            changes,
        })
    }

    /// Submits a document for approval (or resubmits a rejected or
    /// withdrawn one, on the flow version active now: from the first step
    /// when the version changed since). Sales documents are
    /// refused; see [`submission`](Crm::submission).
    pub async fn submit_for_approval(
        &self,
        actor: &Actor,
        req: SubmitRequest,
    ) -> Result<ApprovalInfo> {
        let t = self.submission(actor, &req).await?;
        self.apply(t.changes).await?;
        Ok(t.info)
    }

    async fn approval_action_count(&self, instance: Uuid) -> Result<i64> {
        let row = self.store.get(Table::ApprovalInstances, instance).await?;
        let company = row
            .and_then(|r| r.get("company_id").as_id())
            .unwrap_or_default();
        let mut sel = Select::all(Table::ApprovalActions, company, self.now());
        sel.filter = eq("instance_id", Value::Id(instance));
        Ok(self.store.select(&sel).await?.rows.len() as i64)
    }

    fn record_actions(
        &self,
        actor: &Actor,
        info: &ApprovalInfo,
        before: Option<Status>,
        records: &[ActionRecord],
        seq0: i64,
        changes: &mut ChangeSet,
    ) {
        let company = actor.company_id.0;
        let now = self.now();
        for (n, rec) in records.iter().enumerate() {
            changes.ops.push(Op::Insert {
                table: Table::ApprovalActions,
                values: vec![
                    ("id", Value::Id(self.new_id())),
                    ("company_id", Value::Id(company)),
                    ("version", Value::Int(1)),
                    ("created_at", Value::Timestamp(now)),
                    ("updated_at", Value::Timestamp(now)),
                    ("instance_id", Value::Id(info.id)),
                    ("seq", Value::Int(seq0 + n as i64 + 1)),
                    ("action", text(rec.kind.name())),
                    ("actor_id", rec.actor.map_or(Value::Null, Value::Id)),
                    (
                        "step_index",
                        rec.step.map_or(Value::Null, |s| Value::Int(s as i64)),
                    ),
                    (
                        "step_name",
                        rec.step_name.clone().map_or(Value::Null, Value::Text),
                    ),
                    (
                        "to_step",
                        rec.to_step.map_or(Value::Null, |s| Value::Int(s as i64)),
                    ),
                    (
                        "comment",
                        rec.comment.clone().map_or(Value::Null, Value::Text),
                    ),
                ],
            });
        }
        // The audit entry and events are about what the actor did; automatic
        // passes around it are recorded as actions only.
        let Some(first) = records
            .iter()
            .find(|r| r.actor.is_some())
            .or_else(|| records.first())
        else {
            return;
        };
        changes.audit.push(self.audit(
            Some(actor),
            company,
            Table::ApprovalInstances,
            info.id,
            first.kind.name(),
            vec![FieldChange {
                field: "status".into(),
                before: before.map_or(serde_json::Value::Null, |s| json!(s.name())),
                after: json!(info.status.name()),
            }],
        ));
        let name = event_name(first, info.status);
        let payload = Payload::from(json!({
            "approval_id": info.id,
            "doc_type": info.doc_type,
            "document_id": info.document_id,
            "document_code": info.document_code,
            "status": info.status.name(),
            "applicant_id": info.applicant_id,
            "actor_id": actor.user_id.0,
            "pending_with": info.pending_with,
            "comment": first.comment,
            // The step acted on (an approval, a rejection, a return); for
            // a submission, the step the approval waits at.
            "step": first.step_name.clone().or_else(|| info.current_step.clone()),
        }));
        changes.events.push(self.event(
            company,
            Table::ApprovalInstances,
            info.id,
            format!("approval.{name}"),
            payload.clone(),
        ));
        // The document's own event, so that a consumer of `contract.*`
        // learns it went back to a draft on a withdrawal too. A sales
        // document's event is about the document (its table and id, as
        // its other events are; the approval's id is in the payload); a
        // host document has no table here, so its event names the
        // approval.
        if matches!(
            info.status,
            Status::Approved | Status::Rejected | Status::Withdrawn
        ) && before != Some(info.status)
        {
            let (table, record) = match sales_document_table(&info.doc_type) {
                Some(table) => (table, info.document_id),
                None => (Table::ApprovalInstances, info.id),
            };
            changes.events.push(self.event(
                company,
                table,
                record,
                format!("{}.{}", info.doc_type, info.status.name()),
                payload,
            ));
        }
    }

    /// Builds the change set of a decision on an approval without applying it.
    pub async fn decision(
        &self,
        actor: &Actor,
        approval: Uuid,
        decision: Decision,
        comment: Option<&str>,
    ) -> Result<Transition> {
        check_no_nul("comment", comment)?;
        let row = self
            .live_row(actor, Table::ApprovalInstances, approval)
            .await?;
        let info = info_from_row(&row)?;
        let me = actor.user_id.0;
        let document = self.approved_document(actor, &info).await?;
        let governing = self.governing_document(&info, document.as_ref()).await?;
        let owner = governing
            .as_ref()
            .and_then(|(_, d)| d.get("owner_id").as_id());
        // Who holds a step's role or superior position now acts on it
        // (see `Instance::drop_inactive`), whether or not the approval was
        // brought in line since they took it over.
        let flow = self.running_flow(&row).await?;
        let dir = self.approval_directory(actor.company_id.0).await?;
        let may_see = info.state.involves(me)
            || info
                .state
                .drop_inactive(&flow.definition, &dir)
                .0
                .involves(me)
            || actor.can(Entity::ApprovalFlow, Action::Read)
            || (decision == Decision::Withdraw && owner == Some(me));
        if !may_see {
            // One who reads the approval with its document (see
            // `Crm::approval`) is told they may not act on it, not that it
            // is not there.
            if self.approval(actor, approval).await.is_ok() {
                let (verb, who) = match decision {
                    Decision::Withdraw => (
                        "withdraw",
                        "only its applicant or the document's owner may".to_string(),
                    ),
                    d => {
                        let mut names = Vec::new();
                        for u in &info.pending_with {
                            names.push(self.user_named(*u).await);
                        }
                        (
                            if d == Decision::Approve {
                                "approve"
                            } else {
                                "decide"
                            },
                            if names.is_empty() {
                                "only the approvers of its current step may".to_string()
                            } else {
                                format!(
                                    "only the approvers of its current step may; it waits for {}",
                                    names.join(", ")
                                )
                            },
                        )
                    }
                };
                return Err(Error::Forbidden(format!(
                    "{} may not {verb} the approval of {} {}: {who}",
                    actor.display_name,
                    info.doc_type,
                    info.document_code.as_deref().unwrap_or_default()
                )));
            }
            return Err(Error::not_found("approval", approval));
        }
        // A withdrawal drops the document back to a draft: its applicant
        // answers for it only while they may still read it (a contract
        // transferred away since is its new owner's to withdraw).
        if decision == Decision::Withdraw && self.document_hidden(actor, governing.as_ref()).await?
        {
            if !info.state.is_approver(me) && !actor.can(Entity::ApprovalFlow, Action::Read) {
                return Err(Error::not_found("approval", approval));
            }
            return Err(Error::Forbidden(format!(
                "{} may not withdraw the approval of {} {}: they may no longer read it; its \
                 owner may withdraw it",
                actor.display_name,
                info.doc_type,
                info.document_code.as_deref().unwrap_or_default()
            )));
        }
        if matches!(decision, Decision::Approve | Decision::Reject(_)) {
            check_document_live(&info, document.as_ref())?;
        }
        // A quote past its validity date is not approved at any step: it
        // is rejected (or withdrawn) and revised with a new date.
        if decision == Decision::Approve
            && info.doc_type == "quote"
            && let Some(d) = document.as_ref()
        {
            self.quote_not_expired(d, "approved")?;
        }
        // Approvers who left are not waited for: the current step is
        // brought in line with the organisation before and after an
        // approver's decision (see `Instance::drop_inactive`). A withdrawal
        // takes the approval as it is.
        let (current, mut records) = match decision {
            Decision::Withdraw => (info.state.clone(), Vec::new()),
            _ => info.state.drop_inactive(&flow.definition, &dir),
        };
        let decided = match decision {
            Decision::Approve => current.approve(me, comment),
            Decision::Reject(to) => current.reject(me, to, comment),
            // The owner of a contract or quote answers for it and may
            // withdraw its approval too, e.g. when the applicant left or
            // the approvers can no longer act.
            Decision::Withdraw if me != current.applicant && owner == Some(me) => {
                current.withdraw_for_document(me, comment)
            }
            Decision::Withdraw => current.withdraw(me, comment),
        };
        let (next, decided) = match decided {
            Err(ApprovalError::NotApplicant) => {
                let hint = if owner.is_some() {
                    format!(" (or the owner of the {})", info.doc_type)
                } else {
                    String::new()
                };
                return Err(self
                    .not_applicant(info.state.applicant, "withdraw", &hint)
                    .await);
            }
            Err(ApprovalError::NotAnApprover(_) | ApprovalError::AlreadyApproved(_)) => {
                return Err(self.not_for_me(actor, &info, &current, &decided).await);
            }
            other => other.map_err(engine_error)?,
        };
        records.extend(decided);
        let (next, after) = next.drop_inactive(&flow.definition, &dir);
        records.extend(after);
        let mut t = self
            .transition_changes(actor, &row, info, next, &records)
            .await?;
        self.sales_approval_effects(actor, &t.info, &mut t.changes)
            .await?;
        Ok(t)
    }

    /// The flow version an approval runs on.
    async fn running_flow(&self, row: &Row) -> Result<FlowInfo> {
        let flow = row.get("flow_id");
        let flow_row = self
            .store
            .get(Table::ApprovalFlows, flow.as_id().unwrap_or_default())
            .await?
            .ok_or_else(|| Error::not_found("approval flow", flow.to_json()))?;
        flow_from_row(&flow_row)
    }

    /// The stored row of the sales document an approval acts on (deleted
    /// or not); `None` for other document types and for a document that
    /// no longer exists.
    async fn approved_document(&self, actor: &Actor, info: &ApprovalInfo) -> Result<Option<Row>> {
        match sales_document_table(&info.doc_type) {
            Some(table) => self.approval_document_row(actor, table, info).await,
            None => Ok(None),
        }
    }

    /// Builds the withdrawal of a document's pending approval by whoever
    /// closes the document (e.g. terminates a contract): the caller has
    /// checked the actor's rights on the document and changes the document
    /// itself in the same change set, so the document's approval effects
    /// are not applied. `None` when the document has no pending approval.
    pub(crate) async fn document_withdrawal(
        &self,
        actor: &Actor,
        doc_type: &str,
        document: Uuid,
        comment: &str,
    ) -> Result<Option<Transition>> {
        let Some(row) = self
            .approval_row_for(actor.company_id.0, doc_type, document)
            .await?
        else {
            return Ok(None);
        };
        let info = info_from_row(&row)?;
        if info.status != Status::Pending {
            return Ok(None);
        }
        let (next, records) = info
            .state
            .withdraw_for_document(actor.user_id.0, Some(comment))
            .map_err(engine_error)?;
        Ok(Some(
            self.transition_changes(actor, &row, info, next, &records)
                .await?,
        ))
    }

    /// The change set of a decision on a stored approval (the instance, its
    /// actions, audit and events), without the document's effects.
    async fn transition_changes(
        &self,
        actor: &Actor,
        row: &Row,
        info: ApprovalInfo,
        next: Instance,
        records: &[ActionRecord],
    ) -> Result<Transition> {
        let approval = row.id();
        let now = self.now();
        let state = serde_json::to_value(&next)
            .map_err(|e| Error::InvalidState(format!("cannot encode the approval: {e}")))?;
        let mut changes = ChangeSet::default();
        changes.ops.push(Op::Update {
            table: Table::ApprovalInstances,
            id: approval,
            expected_version: row.version(),
            values: vec![
                ("updated_at", Value::Timestamp(now)),
                ("status", text(next.status.name())),
                ("pending_with", text(pending_text(&next))),
                ("state", Value::Json(state)),
                (
                    "finished_at",
                    if next.status == Status::Approved {
                        Value::Timestamp(now)
                    } else {
                        Value::Null
                    },
                ),
            ],
        });
        let seq0 = self.approval_action_count(approval).await?;
        let before = Some(info.status);
        let next_info = ApprovalInfo {
            status: next.status,
            current_step: next.current_step().map(|s| s.name.clone()),
            pending_with: next.pending_approvers(),
            state: next,
            version: info.version + 1,
            ..info
        };
        self.record_actions(actor, &next_info, before, records, seq0, &mut changes);
        Ok(Transition {
            info: next_info,
            before,
            changes,
        })
    }

    /// Builds and applies a decision. A write that meets another record of
    /// the decision changed meanwhile (the contract, by another approval's
    /// effect or a payment) is decided again on what is stored now; one
    /// that meets the approval itself changed (another approver acted on
    /// it) is reported, as the decision was made on what that changed.
    async fn decide(
        &self,
        actor: &Actor,
        approval: Uuid,
        decision: Decision,
        comment: Option<&str>,
    ) -> Result<ApprovalInfo> {
        let mut tries = 1;
        loop {
            let t = self.decision(actor, approval, decision, comment).await?;
            match self.apply(t.changes).await {
                Ok(()) => return Ok(t.info),
                Err(Error::Conflict { ref id, .. })
                    if tries < crate::crm::WRITE_TRIES && *id != approval.to_string() =>
                {
                    tries += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Approves the current step (同意).
    pub async fn approve(
        &self,
        actor: &Actor,
        approval: Uuid,
        comment: Option<&str>,
    ) -> Result<ApprovalInfo> {
        self.decide(actor, approval, Decision::Approve, comment)
            .await
    }

    /// Rejects, to the applicant or back to an earlier step (驳回).
    pub async fn reject(
        &self,
        actor: &Actor,
        approval: Uuid,
        to: RejectTo,
        comment: Option<&str>,
    ) -> Result<ApprovalInfo> {
        self.decide(actor, approval, Decision::Reject(to), comment)
            .await
    }

    /// Withdraws a pending approval (撤回): its applicant, or the owner of
    /// the contract or quote it approves.
    pub async fn withdraw(
        &self,
        actor: &Actor,
        approval: Uuid,
        comment: Option<&str>,
    ) -> Result<ApprovalInfo> {
        self.decide(actor, approval, Decision::Withdraw, comment)
            .await
    }

    /// Brings a pending approval in line with the organisation as it is now
    /// (e.g. after approvers were deactivated, or a role or superior
    /// changed hands): approvers of its current step who are no longer
    /// active users, or no longer hold the step's role or superior
    /// position, are dropped (the new holders approve), and a step left
    /// with nobody to act passes or falls back as
    /// [`Instance::drop_inactive`] describes — the document follows, e.g. a
    /// contract goes into execution when its last step passes. Approving,
    /// rejecting and withdrawing do the same on their own; this is for an
    /// approval nobody can act on any more. Its applicant, its approvers
    /// (and who holds a step's role or superior position now) and who may
    /// read approval flows (administrators) may ask for it; anybody else
    /// who may read the approval (e.g. with its contract) is refused,
    /// told who may. Nothing is written when nothing changes.
    pub async fn refresh_approval(&self, actor: &Actor, approval: Uuid) -> Result<ApprovalInfo> {
        let row = self
            .live_row(actor, Table::ApprovalInstances, approval)
            .await?;
        let info = info_from_row(&row)?;
        let me = actor.user_id.0;
        let flow = self.running_flow(&row).await?;
        let dir = self.approval_directory(actor.company_id.0).await?;
        let may = info.state.involves(me)
            || actor.can(Entity::ApprovalFlow, Action::Read)
            || info
                .state
                .drop_inactive(&flow.definition, &dir)
                .0
                .involves(me);
        if !may {
            // One who reads the approval (with its document) is told who
            // may refresh it, not that it is not there.
            if self.approval(actor, approval).await.is_err() {
                return Err(Error::not_found("approval", approval));
            }
            let applicant = self.user_named(info.applicant_id).await;
            let mut waiting = Vec::new();
            for u in &info.pending_with {
                waiting.push(self.user_named(*u).await);
            }
            let approvers = if waiting.is_empty() {
                "its approvers".to_string()
            } else {
                format!("its approvers (it waits for {})", waiting.join(", "))
            };
            return Err(Error::Forbidden(format!(
                "{} may not refresh the approval of {} {}: only its applicant ({applicant}), \
                 {approvers} and who may read approval flows (administrators) may",
                actor.display_name,
                info.doc_type,
                info.document_code
                    .clone()
                    .unwrap_or_else(|| info.document_id.to_string())
            )));
        }
        self.refresh_approval_row(actor, &row, info, &flow, &dir)
            .await
    }

    /// Refreshes the pending approvals waiting for `user` (just
    /// deactivated by `actor`) — every pending approval of the company
    /// when `user` is `None` (a user's roles or superior changed, which
    /// moves role and superior steps) — as
    /// [`refresh_approval`](Crm::refresh_approval) does, so that a step
    /// left with nobody falls back at once (e.g. to the administrators'
    /// pending lists) and a step's new holder finds it in their pending
    /// list. Best effort: an approval that cannot be refreshed now (its
    /// document in the recycle bin, a concurrent decision) is left as it
    /// is, and is brought in line by the next decision on it.
    pub(crate) async fn refresh_approvals_waiting_for(&self, actor: &Actor, user: Option<Uuid>) {
        let mut sel = Select::all(Table::ApprovalInstances, actor.company_id.0, self.now());
        let mut filters = vec![eq("status", text(Status::Pending.name()))];
        if let Some(user) = user {
            filters.push(Filter::Contains(
                Col::Column("pending_with"),
                user.to_string(),
            ));
        }
        sel.filter = Filter::And(filters);
        let Ok(found) = self.store.select(&sel).await else {
            return;
        };
        if found.rows.is_empty() {
            return;
        }
        // The organisation read once, and each flow version once, however
        // many approvals wait for the user.
        let Ok(dir) = self.approval_directory(actor.company_id.0).await else {
            return;
        };
        let mut flows: std::collections::HashMap<Uuid, FlowInfo> = std::collections::HashMap::new();
        for row in found.rows {
            let Ok(info) = info_from_row(&row) else {
                continue;
            };
            let flow_id = row.get("flow_id").as_id().unwrap_or_default();
            if let std::collections::hash_map::Entry::Vacant(e) = flows.entry(flow_id) {
                match self.running_flow(&row).await {
                    Ok(f) => {
                        e.insert(f);
                    }
                    Err(_) => continue,
                }
            }
            if let Some(flow) = flows.get(&flow_id) {
                let _ = self
                    .refresh_approval_row(actor, &row, info, flow, &dir)
                    .await;
            }
        }
    }

    /// [`refresh_approval`](Crm::refresh_approval) of a row read, on its
    /// flow version and the organisation as read.
    async fn refresh_approval_row(
        &self,
        actor: &Actor,
        row: &Row,
        info: ApprovalInfo,
        flow: &FlowInfo,
        dir: &Directory,
    ) -> Result<ApprovalInfo> {
        let (next, records) = info.state.drop_inactive(&flow.definition, dir);
        if next == info.state {
            return Ok(info);
        }
        let document = self.approved_document(actor, &info).await?;
        check_document_live(&info, document.as_ref())?;
        let (old_step, old_pending) = (info.current_step.clone(), info.pending_with.clone());
        let mut t = self
            .transition_changes(actor, row, info, next, &records)
            .await?;
        self.sales_approval_effects(actor, &t.info, &mut t.changes)
            .await?;
        // Still pending with other approvers (those who left dropped, or
        // the administrators standing in): announced, with the document
        // and the approvers by username, so that a host's to-do lists
        // follow.
        let same = |a: &[Uuid], b: &[Uuid]| a.len() == b.len() && a.iter().all(|u| b.contains(u));
        if t.info.status == Status::Pending && !same(&old_pending, &t.info.pending_with) {
            let from = self.usernames(&old_pending).await;
            let to = self.usernames(&t.info.pending_with).await;
            t.changes.events.push(self.event(
                actor.company_id.0,
                Table::ApprovalInstances,
                t.info.id,
                "approval.reassigned".into(),
                json!({
                    "approval_id": t.info.id,
                    "doc_type": t.info.doc_type,
                    "document_id": t.info.document_id,
                    "document_code": t.info.document_code,
                    "step": t.info.current_step,
                    "from_step": old_step,
                    "from": from,
                    "to": to,
                    "pending_with": t.info.pending_with,
                    "actor_id": actor.user_id.0,
                }),
            ));
        }
        self.apply(t.changes).await?;
        Ok(t.info)
    }

    /// The usernames of users, in order (a user not found by id).
    async fn usernames(&self, ids: &[Uuid]) -> Vec<String> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(match self.store.get(Table::Users, *id).await {
                Ok(Some(u)) => u.get("username").as_text().unwrap_or_default().to_string(),
                _ => id.to_string(),
            });
        }
        out
    }

    /// An approval the actor is involved in (or may read): its approvers
    /// and who may read approval flows see it; its applicant while they may
    /// still read the contract or quote it approves (not once it was
    /// transferred out of their reach).
    pub async fn approval(&self, actor: &Actor, approval: Uuid) -> Result<ApprovalInfo> {
        let row = self
            .live_row(actor, Table::ApprovalInstances, approval)
            .await?;
        let info = info_from_row(&row)?;
        let me = actor.user_id.0;
        if info.state.is_approver(me) || actor.can(Entity::ApprovalFlow, Action::Read) {
            return Ok(info);
        }
        // Its applicant, while the document is still theirs to read; and
        // whoever reads a contract or quote reads how it was approved (the
        // approval is part of its story, as its history is).
        let document = self.document_as_stored(actor, &info).await?;
        let governing = self.governing_document(&info, document.as_ref()).await?;
        let readable_document = match info.doc_type.as_str() {
            "contract" | "quote" => {
                document.is_some() && !self.document_hidden(actor, governing.as_ref()).await?
            }
            // A payment's approval with its contract.
            "payment" => match self.store.get(Table::Payments, info.document_id).await? {
                Some(p) if p.get("company_id").as_id() == Some(actor.company_id.0) => {
                    match p.get("contract_id").as_id() {
                        Some(c) => match self.store.get(Table::Contracts, c).await? {
                            Some(crow) => {
                                self.can_on_row(actor, Entity::Contract, Action::Read, &crow)
                                    .await?
                            }
                            None => false,
                        },
                        None => false,
                    }
                }
                _ => false,
            },
            _ => false,
        };
        if readable_document
            || info.state.involves(me) && !self.document_hidden(actor, governing.as_ref()).await?
        {
            return Ok(info);
        }
        Err(Error::not_found("approval", approval))
    }

    /// The contract, quote or payment an approval approves, as stored
    /// (`None` for other documents, or one purged).
    async fn document_as_stored(&self, actor: &Actor, info: &ApprovalInfo) -> Result<Option<Row>> {
        let Some(table) = sales_document_table(&info.doc_type) else {
            return Ok(None);
        };
        Ok(self
            .store
            .get(table, info.document_id)
            .await?
            .filter(|r| r.get("company_id").as_id() == Some(actor.company_id.0)))
    }

    /// Whether the record governing an approval's document (see
    /// [`Crm::governing_document`]) is one the actor may not read (any
    /// more): e.g. its applicant's after it was transferred to someone
    /// else.
    async fn document_hidden(
        &self,
        actor: &Actor,
        governing: Option<&(Entity, Row)>,
    ) -> Result<bool> {
        match governing {
            Some((entity, row)) => Ok(!self.can_on_row(actor, *entity, Action::Read, row).await?),
            None => Ok(false),
        }
    }

    /// The record whose owner answers for an approval's document, and
    /// whose readers may follow it: a contract or quote itself, and a
    /// payment's contract (a payment has no owner of its own: whoever owns
    /// the contract, transferred as it may have been, answers for the
    /// money collected on it). `None` for other documents.
    async fn governing_document(
        &self,
        info: &ApprovalInfo,
        document: Option<&Row>,
    ) -> Result<Option<(Entity, Row)>> {
        let Some(row) = document else {
            return Ok(None);
        };
        Ok(match info.doc_type.as_str() {
            "contract" => Some((Entity::Contract, row.clone())),
            "quote" => Some((Entity::Quote, row.clone())),
            "payment" => match row.get("contract_id").as_id() {
                Some(c) => self
                    .store
                    .get(Table::Contracts, c)
                    .await?
                    .map(|r| (Entity::Contract, r)),
                None => None,
            },
            _ => None,
        })
    }

    /// `message` with the users a definition names written by username
    /// and name instead of their ids (the directory a definition is
    /// checked against knows ids only).
    async fn users_named(
        &self,
        company: Uuid,
        definition: &FlowDef,
        message: String,
    ) -> Result<String> {
        let mut message = message;
        for s in &definition.steps {
            if let ApproverRule::Users { users } = &s.approvers {
                for u in users {
                    let id = u.to_string();
                    if !message.contains(&id) {
                        continue;
                    }
                    if let Some(r) = self.store.get(Table::Users, *u).await?
                        && r.get("company_id").as_id() == Some(company)
                    {
                        message = message.replace(
                            &id,
                            &format!(
                                "{} ({})",
                                r.get("username").as_text().unwrap_or_default(),
                                r.get("display_name").as_text().unwrap_or_default()
                            ),
                        );
                    }
                }
            }
        }
        Ok(message)
    }

    /// The approval of a document, if it was ever submitted.
    pub async fn approval_of(
        &self,
        actor: &Actor,
        doc_type: &str,
        document: Uuid,
    ) -> Result<Option<ApprovalInfo>> {
        match self
            .approval_row_for(actor.company_id.0, doc_type, document)
            .await?
        {
            Some(r) => Ok(Some(self.approval(actor, r.id()).await?)),
            None => Ok(None),
        }
    }

    /// The approvals whose document has the code `code` that the actor may
    /// read (see [`approval`](Crm::approval)), oldest first: a host
    /// document's (one a type), a contract's and its payments', and a
    /// quote's versions (`BJ-… v2` is found by `BJ-…` too). Administrators
    /// and who may read approval flows find any; others those they are
    /// involved in or read with the document.
    pub async fn approvals_with_code(
        &self,
        actor: &Actor,
        code: &str,
    ) -> Result<Vec<ApprovalInfo>> {
        let code = code.trim();
        if code.is_empty() {
            return Ok(Vec::new());
        }
        let mut sel = Select::all(Table::ApprovalInstances, actor.company_id.0, self.now());
        sel.filter = Filter::Or(vec![
            eq("document_code", text(code)),
            Filter::StartsWith(Col::Column("document_code"), format!("{code} v")),
        ]);
        sel.sort = vec![Sort {
            col: Col::Column("id"),
            desc: false,
        }];
        let mut out = Vec::new();
        for row in self.store.select(&sel).await?.rows {
            // (The prefix match is letter case aside; a quote version's
            // code is the quote's and ` v` with its number.)
            let named = row.get("document_code").as_text().is_some_and(|c| {
                c == code
                    || c.strip_prefix(code)
                        .and_then(|v| v.strip_prefix(" v"))
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            });
            if !named {
                continue;
            }
            match self.approval(actor, row.id()).await {
                Ok(info) => out.push(info),
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Approvals waiting for the actor (待我审批), oldest first.
    pub async fn pending_approvals(&self, actor: &Actor) -> Result<Vec<ApprovalInfo>> {
        let mut sel = Select::all(Table::ApprovalInstances, actor.company_id.0, self.now());
        sel.filter = Filter::And(vec![
            eq("status", text(Status::Pending.name())),
            Filter::Contains(Col::Column("pending_with"), actor.user_id.0.to_string()),
        ]);
        sel.sort = vec![Sort {
            col: Col::Column("updated_at"),
            desc: false,
        }];
        self.store
            .select(&sel)
            .await?
            .rows
            .iter()
            .map(info_from_row)
            .collect()
    }

    /// Approvals the actor submitted, newest first: those of contracts and
    /// quotes they may still read (one transferred out of their reach is
    /// its new owner's business).
    pub async fn my_approvals(&self, actor: &Actor) -> Result<Vec<ApprovalInfo>> {
        let mut sel = Select::all(Table::ApprovalInstances, actor.company_id.0, self.now());
        sel.filter = eq("applicant_id", Value::Id(actor.user_id.0));
        sel.sort = vec![Sort {
            col: Col::Column("updated_at"),
            desc: true,
        }];
        let mut out = Vec::new();
        for row in self.store.select(&sel).await?.rows {
            let info = info_from_row(&row)?;
            let document = self.document_as_stored(actor, &info).await?;
            let governing = self.governing_document(&info, document.as_ref()).await?;
            if info.state.is_approver(actor.user_id.0)
                || !self.document_hidden(actor, governing.as_ref()).await?
            {
                out.push(info);
            }
        }
        Ok(out)
    }

    /// Every action taken on an approval, in order.
    pub async fn approval_actions(
        &self,
        actor: &Actor,
        approval: Uuid,
    ) -> Result<Vec<ApprovalAction>> {
        // The log of what was done: for everyone involved, its applicant
        // too, even once the document is out of their reach, and for whoever
        // reads the document (see `Crm::approval`).
        let row = self
            .live_row(actor, Table::ApprovalInstances, approval)
            .await?;
        let info = info_from_row(&row)?;
        if !info.state.involves(actor.user_id.0) && !actor.can(Entity::ApprovalFlow, Action::Read) {
            self.approval(actor, approval).await?;
        }
        let mut sel = Select::all(Table::ApprovalActions, actor.company_id.0, self.now());
        sel.filter = eq("instance_id", Value::Id(approval));
        sel.sort = vec![Sort {
            col: Col::Column("seq"),
            desc: false,
        }];
        Ok(self
            .store
            .select(&sel)
            .await?
            .rows
            .iter()
            .map(|r| ApprovalAction {
                seq: r.get("seq").as_int().unwrap_or(0),
                action: r.get("action").as_text().unwrap_or_default().to_string(),
                actor_id: r.get("actor_id").as_id(),
                step_index: r.get("step_index").as_int(),
                step_name: r.get("step_name").as_text().map(str::to_string),
                to_step: r.get("to_step").as_int(),
                comment: r.get("comment").as_text().map(str::to_string),
                at: r.get("created_at").as_timestamp().unwrap_or_default(),
            })
            .collect())
    }
}

/// Checks the conditions of a flow for a sales document type against what
/// its documents can hold, so that no step silently never applies: a
/// contract's type condition names contract types (the Chinese labels
/// `contract show` prints are taken and stored as the API names), quotes
/// and payments have no type, and payments no discount. Other document
/// types are the host's and are taken as given.
fn sales_conditions(doc_type: &str, definition: &mut FlowDef) -> std::result::Result<(), String> {
    use crate::approval::Condition;
    use crate::sales::ContractType;
    for s in &mut definition.steps {
        for c in &mut s.conditions {
            match (doc_type, c) {
                ("contract", Condition::TypeIn { types }) => {
                    // (A blank entry is left to `check_new`, which names
                    // an empty condition.)
                    for t in types.iter_mut().filter(|t| !t.trim().is_empty()) {
                        match ContractType::parse(t) {
                            Some(ct) => *t = ct.name().to_string(),
                            None => {
                                let known: Vec<String> = ContractType::ALL
                                    .iter()
                                    .map(|k| format!("{} ({})", k.name(), k.label_zh()))
                                    .collect();
                                return Err(format!(
                                    "step '{}': '{}' is no contract type; contract types are {} \
                                     (合同类型不存在)",
                                    s.name,
                                    t.trim(),
                                    known.join(", ")
                                ));
                            }
                        }
                    }
                }
                ("quote" | "payment", Condition::TypeIn { .. }) => {
                    return Err(format!(
                        "step '{}': {doc_type}s have no type, so a type condition would never \
                         apply (报价和回款没有类型条件)",
                        s.name
                    ));
                }
                ("payment", Condition::DiscountAbove { .. }) => {
                    return Err(format!(
                        "step '{}': payments have no discount, so a discount condition would \
                         never apply (回款没有折扣条件)",
                        s.name
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(())
}
