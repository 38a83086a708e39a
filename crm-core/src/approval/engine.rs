//! The approval state machine (审批流), pure: no store, no clock.
//!
//! A [`FlowDef`] lists steps; submitting a document resolves them against
//! the document's [`Facts`] and the organisation ([`Directory`]) into an
//! [`Instance`] with concrete approvers per step. Every transition either
//! fails without changing anything or returns the new instance together with
//! the [`ActionRecord`]s to store. The transition rules live here and only
//! here.

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fmt;
use uuid::Uuid;

/// A condition a step applies under; all conditions of a step must hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Condition {
    /// The document amount (minor units, 分) is at least `minor`.
    AmountAtLeast {
        /// The threshold in minor units.
        minor: i64,
    },
    /// The document amount is below `minor`.
    AmountBelow {
        /// The threshold in minor units.
        minor: i64,
    },
    /// The document's largest discount is above `bp` basis points
    /// (quotes: a discount above the threshold needs approval).
    DiscountAbove {
        /// The threshold in basis points (1 000 = 10 %).
        bp: i64,
    },
    /// The document type (e.g. a contract type `sales`) is one of these.
    TypeIn {
        /// The accepted types.
        types: Vec<String>,
    },
}

impl Condition {
    /// Whether the facts satisfy the condition. A missing amount or type
    /// satisfies no condition on it.
    pub fn holds(&self, facts: &Facts) -> bool {
        match self {
            Condition::AmountAtLeast { minor } => facts.amount_minor.is_some_and(|a| a >= *minor),
            Condition::AmountBelow { minor } => facts.amount_minor.is_some_and(|a| a < *minor),
            Condition::DiscountAbove { bp } => facts.discount_bp.is_some_and(|d| d > *bp),
            Condition::TypeIn { types } => facts
                .kind
                .as_deref()
                .is_some_and(|k| types.iter().any(|t| t == k)),
        }
    }
}

/// Who approves a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ApproverRule {
    /// Named users.
    Users {
        /// The users.
        users: Vec<Uuid>,
    },
    /// The applicant's N-th active superior (1 = direct superior). A
    /// superior who is no longer active does not count as a level: the
    /// chain passes over them to the next superior up, as if the people
    /// below reported to that one (see [`Directory::superior`]).
    Superior {
        /// Which level, from 1.
        level: u32,
    },
    /// The applicant's active superiors from the first up to `levels`, one
    /// after the other (each level becomes its own step). Inactive
    /// superiors are passed over without counting as a level, so up to
    /// `levels` active superiors approve, as long as the chain has them.
    SuperiorsUpTo {
        /// How many levels, from 1.
        levels: u32,
    },
    /// Every user with the role.
    Role {
        /// The role.
        role_id: Uuid,
    },
    /// The users the applicant picks when submitting: at least one, active
    /// users of the company, never the applicant (a submission without
    /// picks is refused rather than passed by the fallback).
    ApplicantPicks,
}

/// How many of a step's approvers must approve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SignMode {
    /// Any one approver decides (或签).
    #[default]
    Any,
    /// Every approver must approve (会签); one rejection rejects.
    All,
}

/// What happens when a step resolves to nobody (no active user other than
/// the applicant).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// The step passes automatically (recorded as such).
    #[default]
    AutoPass,
    /// The company's administrators approve instead (auto-pass if none).
    Admins,
}

/// One step of a flow definition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepDef {
    /// The step's name, e.g. `部门经理审批`.
    pub name: String,
    /// Conditions under which the step applies (all must hold; none = always).
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Who approves.
    pub approvers: ApproverRule,
    /// 会签 or 或签.
    #[serde(default)]
    pub mode: SignMode,
    /// When nobody resolves.
    #[serde(default)]
    pub fallback: Fallback,
}

/// Where a flow continues after a rejection to the applicant and a resubmission.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Restart {
    /// From the first step.
    #[default]
    FromFirst,
    /// From the step that rejected: the steps before it stay passed while
    /// their approvals still hold — approved in the earlier round by the
    /// same approvers, with neither the amount nor the discount raised
    /// since (see [`Instance::resubmit`]); otherwise from the first step.
    FromRejectingStep,
}

/// A flow definition (one version of it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowDef {
    /// The steps, in order.
    pub steps: Vec<StepDef>,
    /// Where a resubmission after a rejection restarts.
    #[serde(default)]
    pub restart: Restart,
}

impl FlowDef {
    /// Checks the definition against the organisation it is defined in:
    /// every named user is an active user of the company, and every role is
    /// a role of the company with at least one active member. A step naming
    /// anybody else would wait for approvers who can never act, or resolve
    /// to nobody and pass by its fallback.
    pub fn check_people(&self, dir: &Directory) -> Result<(), String> {
        for (i, s) in self.steps.iter().enumerate() {
            let n = i + 1;
            match &s.approvers {
                ApproverRule::Users { users } => {
                    if let Some(u) = users.iter().find(|u| !dir.active_users.contains(u)) {
                        return Err(format!(
                            "step {n} ({}) names user {u}, who is not an active user of this company",
                            s.name
                        ));
                    }
                }
                ApproverRule::Role { role_id } => {
                    let Some(role) = dir.roles.get(role_id) else {
                        return Err(format!(
                            "step {n} ({}) names role {role_id}, which is not a role of this company",
                            s.name
                        ));
                    };
                    if dir.role_members.get(role_id).is_none_or(Vec::is_empty) {
                        return Err(format!(
                            "step {n} ({}) names role {role}, which has no active member",
                            s.name
                        ));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks what a new definition must meet beyond [`FlowDef::validate`]
    /// (flows stored before these checks still run): step names distinct
    /// (the log and the pending list name steps by name), amount
    /// thresholds not negative (a document's amount is positive), discount
    /// thresholds between 0 % and 100 %, type conditions naming some type.
    pub fn check_new(&self) -> Result<(), String> {
        for (i, s) in self.steps.iter().enumerate() {
            let n = i + 1;
            if let Some(j) = self.steps[..i]
                .iter()
                .position(|o| o.name.trim() == s.name.trim())
            {
                return Err(format!(
                    "steps {} and {n} are both named {}: give each step its own name \
                     (审批步骤名称不能重复)",
                    j + 1,
                    s.name.trim()
                ));
            }
            for c in &s.conditions {
                let bad = match c {
                    Condition::AmountAtLeast { minor } if *minor < 0 => Some(format!(
                        "the amount threshold {} is negative (金额条件不能为负数)",
                        crate::money::Money::cny(*minor)
                    )),
                    // No document's amount is below zero, or below ¥0.00.
                    Condition::AmountBelow { minor } if *minor <= 0 => Some(format!(
                        "no document's amount is below {} (金额条件须大于零)",
                        crate::money::Money::cny(*minor)
                    )),
                    // No discount is above 100 %.
                    Condition::DiscountAbove { bp } if !(0..10_000).contains(bp) => Some(format!(
                        "the discount threshold {} is not from 0% up to below 100% (折扣条件须在 \
                         0% 与 100% 之间)",
                        crate::money::percent(*bp)
                    )),
                    Condition::TypeIn { types } if types.iter().all(|t| t.trim().is_empty()) => {
                        Some("the type condition names no type (类型条件为空)".to_string())
                    }
                    _ => None,
                };
                if let Some(bad) = bad {
                    return Err(format!("step {n} ({}): {bad}", s.name));
                }
            }
        }
        Ok(())
    }

    /// Checks the definition: at least one step, names present, levels ≥ 1,
    /// named-user steps with at least one user.
    pub fn validate(&self) -> Result<(), String> {
        if self.steps.is_empty() {
            return Err("an approval flow needs at least one step".into());
        }
        for (i, s) in self.steps.iter().enumerate() {
            let n = i + 1;
            if s.name.trim().is_empty() {
                return Err(format!("step {n} has no name"));
            }
            match &s.approvers {
                ApproverRule::Users { users } if users.is_empty() => {
                    return Err(format!("step {n} ({}) names no user", s.name));
                }
                ApproverRule::Superior { level: 0 } | ApproverRule::SuperiorsUpTo { levels: 0 } => {
                    return Err(format!("step {n} ({}): superior levels start at 1", s.name));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// What the flow knows about the document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Facts {
    /// The amount in minor units (分), when the document has one.
    pub amount_minor: Option<i64>,
    /// The document's kind (e.g. contract type), for `type in` conditions.
    pub kind: Option<String>,
    /// The document's largest discount in basis points, when it has one.
    #[serde(default)]
    pub discount_bp: Option<i64>,
}

/// The organisation as the engine needs it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Directory {
    /// Each user's direct superior, for every user of the company, active
    /// or not: an inactive manager still links the chain above them.
    pub superiors: HashMap<Uuid, Uuid>,
    /// The active members of each role.
    pub role_members: HashMap<Uuid, Vec<Uuid>>,
    /// The company's active administrators.
    pub admins: Vec<Uuid>,
    /// The company's active users: only they resolve as approvers (anybody
    /// else a step names is dropped, and may not be picked).
    pub active_users: HashSet<Uuid>,
    /// The company's roles, by id, with their names.
    pub roles: HashMap<Uuid, String>,
}

impl Directory {
    /// The `n`-th active superior of `user` (1 = direct), if the chain has
    /// that many. Superiors who are no longer active users are passed over
    /// and do not count as a level: when a manager leaves, the people
    /// reporting to them report, in effect, to the manager's superior, so
    /// with the chain 张三 → 李四 (left) → 王五 → 管理员, 张三's first
    /// superior is 王五 and the second the administrator. A cycle in the
    /// chain ends it.
    pub fn superior(&self, user: Uuid, n: u32) -> Option<Uuid> {
        let mut seen = vec![user];
        let mut cur = user;
        let mut found = 0;
        while found < n {
            cur = *self.superiors.get(&cur)?;
            if seen.contains(&cur) {
                return None;
            }
            seen.push(cur);
            if self.active_users.contains(&cur) {
                found += 1;
            }
        }
        Some(cur)
    }
}

/// A step with its concrete approvers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedStep {
    /// The index of the step in the definition.
    pub def_index: usize,
    /// The step's name.
    pub name: String,
    /// Who may act on it.
    pub approvers: Vec<Uuid>,
    /// 会签 or 或签.
    pub mode: SignMode,
}

/// The status of an approval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for the current step's approvers (审批中).
    Pending,
    /// Every step approved (已通过); final.
    Approved,
    /// Rejected back to the applicant (已驳回); may be resubmitted.
    Rejected,
    /// Withdrawn by the applicant (已撤回); may be resubmitted.
    Withdrawn,
}

impl Status {
    /// The API name.
    pub fn name(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::Withdrawn => "withdrawn",
        }
    }

    /// The Chinese label.
    pub fn label_zh(self) -> &'static str {
        match self {
            Status::Pending => "审批中",
            Status::Approved => "已通过",
            Status::Rejected => "已驳回",
            Status::Withdrawn => "已撤回",
        }
    }

    /// Parses an API name.
    pub fn from_name(s: &str) -> Option<Status> {
        [
            Status::Pending,
            Status::Approved,
            Status::Rejected,
            Status::Withdrawn,
        ]
        .into_iter()
        .find(|x| x.name() == s)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a rejection sends the document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", content = "step", rename_all = "snake_case")]
pub enum RejectTo {
    /// Back to the applicant: the approval ends as rejected.
    Applicant,
    /// Back to an earlier step (index into the resolved steps), which must
    /// approve again.
    Step(usize),
}

/// The kinds of recorded actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Submitted (or resubmitted) by the applicant.
    Submit,
    /// Approved by an approver.
    Approve,
    /// Rejected to the applicant.
    Reject,
    /// Returned to an earlier step.
    Return,
    /// Withdrawn by the applicant.
    Withdraw,
    /// A step with nobody to approve it passed by its fallback.
    AutoPass,
}

impl ActionKind {
    /// The API name.
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::Submit => "submit",
            ActionKind::Approve => "approve",
            ActionKind::Reject => "reject",
            ActionKind::Return => "return",
            ActionKind::Withdraw => "withdraw",
            ActionKind::AutoPass => "auto_pass",
        }
    }
}

/// One recorded action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// What happened.
    pub kind: ActionKind,
    /// Who did it (`None` for an automatic pass).
    pub actor: Option<Uuid>,
    /// The resolved step acted on, if any.
    pub step: Option<usize>,
    /// The name of the step (also for auto-passed definition steps).
    pub step_name: Option<String>,
    /// The step returned to, for [`ActionKind::Return`].
    pub to_step: Option<usize>,
    /// The actor's comment.
    pub comment: Option<String>,
}

/// Why a transition was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    /// The flow definition is invalid.
    #[error("invalid approval flow: {0}")]
    InvalidFlow(String),
    /// The approval is not pending.
    #[error("the approval is {0}, not pending")]
    NotPending(Status),
    /// The user is not an approver of the current step.
    #[error("user {0} is not an approver of the current step")]
    NotAnApprover(Uuid),
    /// The user already approved the current step.
    #[error("user {0} has already approved this step")]
    AlreadyApproved(Uuid),
    /// Only the applicant may do this.
    #[error("only the applicant may do this")]
    NotApplicant,
    /// The applicant picked themselves as an approver.
    #[error("the applicant cannot pick themselves as an approver of their own submission")]
    SelfPick,
    /// The applicant picked somebody who is not an active user of the company.
    #[error("user {0} cannot be picked as an approver: not an active user of this company")]
    BadPick(Uuid),
    /// A step whose approvers the applicant picks applies, and nobody was picked.
    #[error("step {0} needs approvers picked by the applicant; pick at least one active colleague")]
    NothingPicked(String),
    /// A rejection named a step that is not an earlier one: the named step
    /// (from 1) and the names of the steps that precede the current one
    /// (the ones that can be returned to).
    #[error("{}", bad_target_message(*.0, .1))]
    BadTarget(usize, Vec<String>),
    /// Only a rejected or withdrawn approval can be resubmitted.
    #[error("the approval is {0}; only a rejected or withdrawn one can be resubmitted")]
    CannotResubmit(Status),
}

/// The message of [`ApprovalError::BadTarget`]: the named step (from 1) and
/// the names of the steps that precede the current one.
fn bad_target_message(step: usize, earlier: &[String]) -> String {
    let named: Vec<String> = earlier
        .iter()
        .enumerate()
        .map(|(i, name)| format!("{} ({name})", i + 1))
        .collect();
    match named.as_slice() {
        [] => format!(
            "step {step} cannot be returned to: the current step is the first one, \
             there is no earlier step; reject to the applicant instead"
        ),
        [one] => format!("step {step} is not an earlier step; can only return to step {one}"),
        [first @ .., last] => format!(
            "step {step} is not an earlier step; can only return to steps {} or {last}",
            first.join(", ")
        ),
    }
}

/// One approval of one document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Who submitted it.
    pub applicant: Uuid,
    /// The document facts at the last submission.
    pub facts: Facts,
    /// The approvers the applicant picked.
    pub picked: Vec<Uuid>,
    /// The status.
    pub status: Status,
    /// The resolved steps of the current round.
    pub steps: Vec<ResolvedStep>,
    /// The current step (index into `steps`); `steps.len()` when approved.
    pub current: usize,
    /// Who approved the current step so far (会签).
    pub approved_by: Vec<Uuid>,
    /// The definition index of the step that last rejected to the applicant.
    pub rejected_at: Option<usize>,
    /// Submission rounds (1 for the first submission).
    pub round: u32,
}

/// Checks the applicant's picks: never the applicant, only active users of
/// the company, and at least one when a step whose approvers the applicant
/// picks applies to the facts (such a step never passes by its fallback).
pub fn check_picks(
    flow: &FlowDef,
    dir: &Directory,
    applicant: Uuid,
    facts: &Facts,
    picked: &[Uuid],
) -> Result<(), ApprovalError> {
    if picked.contains(&applicant) {
        return Err(ApprovalError::SelfPick);
    }
    if let Some(u) = picked.iter().find(|u| !dir.active_users.contains(u)) {
        return Err(ApprovalError::BadPick(*u));
    }
    if picked.is_empty()
        && let Some(def) = flow.steps.iter().find(|d| {
            d.approvers == ApproverRule::ApplicantPicks
                && d.conditions.iter().all(|c| c.holds(facts))
        })
    {
        return Err(ApprovalError::NothingPicked(def.name.clone()));
    }
    Ok(())
}

/// Resolves the definition against the facts: skipped conditions drop
/// steps, steps without approvers fall back. Only active users approve,
/// and never the applicant: they are dropped from every step (the
/// administrators of a fallback included), and a step left with nobody
/// falls back. Returns the steps and the auto-pass records.
pub fn resolve(
    flow: &FlowDef,
    dir: &Directory,
    applicant: Uuid,
    facts: &Facts,
    picked: &[Uuid],
) -> (Vec<ResolvedStep>, Vec<ActionRecord>) {
    let mut steps = Vec::new();
    let mut passes = Vec::new();
    for (i, def) in flow.steps.iter().enumerate() {
        if !def.conditions.iter().all(|c| c.holds(facts)) {
            continue;
        }
        let groups: Vec<Vec<Uuid>> = match &def.approvers {
            ApproverRule::Users { users } => vec![users.clone()],
            ApproverRule::Superior { level } => {
                vec![dir.superior(applicant, *level).into_iter().collect()]
            }
            ApproverRule::SuperiorsUpTo { levels } => {
                let chain: Vec<Vec<Uuid>> = (1..=*levels)
                    .map_while(|l| dir.superior(applicant, l))
                    .map(|u| vec![u])
                    .collect();
                if chain.is_empty() {
                    vec![Vec::new()]
                } else {
                    chain
                }
            }
            ApproverRule::Role { role_id } => {
                vec![dir.role_members.get(role_id).cloned().unwrap_or_default()]
            }
            ApproverRule::ApplicantPicks => vec![picked.to_vec()],
        };
        for group in groups {
            let mut approvers = Vec::new();
            let mut had_applicant = false;
            for u in group {
                if u == applicant {
                    had_applicant = true;
                } else if dir.active_users.contains(&u) && !approvers.contains(&u) {
                    approvers.push(u);
                }
            }
            if approvers.is_empty() && def.fallback == Fallback::Admins {
                approvers = dir
                    .admins
                    .iter()
                    .copied()
                    .filter(|u| *u != applicant)
                    .collect();
            }
            if approvers.is_empty() {
                passes.push(ActionRecord {
                    kind: ActionKind::AutoPass,
                    actor: None,
                    step: None,
                    step_name: Some(def.name.clone()),
                    to_step: None,
                    comment: had_applicant.then(|| {
                        "nobody but the applicant resolved; an applicant does not approve \
                         their own submission"
                            .to_string()
                    }),
                });
            } else {
                steps.push(ResolvedStep {
                    def_index: i,
                    name: def.name.clone(),
                    approvers,
                    mode: def.mode,
                });
            }
        }
    }
    (steps, passes)
}

/// Identifies resolved steps across rounds: the definition step, which of
/// the steps it resolved to (superiors up to a level resolve to several),
/// and who approves it — a step whose approvers changed since (a new
/// superior) is not the step approved before.
fn step_keys(steps: &[ResolvedStep]) -> Vec<(usize, usize, Vec<Uuid>)> {
    let mut seen: HashMap<usize, usize> = HashMap::new();
    steps
        .iter()
        .map(|s| {
            let n = seen.entry(s.def_index).or_insert(0);
            *n += 1;
            let mut approvers = s.approvers.clone();
            approvers.sort();
            (s.def_index, *n, approvers)
        })
        .collect()
}

/// Whether the amount or the discount went up from `before` to `after` (a
/// value where there was none counts as raised).
fn raised(before: &Facts, after: &Facts) -> bool {
    let up = |b: Option<i64>, a: Option<i64>| match (b, a) {
        (Some(b), Some(a)) => a > b,
        (None, Some(_)) => true,
        _ => false,
    };
    up(before.amount_minor, after.amount_minor) || up(before.discount_bp, after.discount_bp)
}

fn record(
    kind: ActionKind,
    actor: Uuid,
    step: Option<(usize, &ResolvedStep)>,
    comment: Option<&str>,
) -> ActionRecord {
    ActionRecord {
        kind,
        actor: Some(actor),
        step: step.map(|(i, _)| i),
        step_name: step.map(|(_, s)| s.name.clone()),
        to_step: None,
        comment: comment.map(str::to_string),
    }
}

impl Instance {
    /// Submits a document: resolves the flow and starts at its first step
    /// (approved at once when no step needs anybody).
    pub fn submit(
        flow: &FlowDef,
        dir: &Directory,
        applicant: Uuid,
        facts: Facts,
        picked: Vec<Uuid>,
        comment: Option<&str>,
    ) -> Result<(Instance, Vec<ActionRecord>), ApprovalError> {
        flow.validate().map_err(ApprovalError::InvalidFlow)?;
        check_picks(flow, dir, applicant, &facts, &picked)?;
        let (steps, passes) = resolve(flow, dir, applicant, &facts, &picked);
        let mut inst = Instance {
            applicant,
            facts,
            picked,
            status: Status::Pending,
            steps,
            current: 0,
            approved_by: Vec::new(),
            rejected_at: None,
            round: 1,
        };
        let mut records = vec![record(ActionKind::Submit, applicant, None, comment)];
        records.extend(passes);
        inst.settle();
        Ok((inst, records))
    }

    /// Resubmits a rejected or withdrawn approval (applicant only) with
    /// possibly changed facts; restarts per the flow's [`Restart`] after a
    /// rejection and from the first step after a withdrawal.
    ///
    /// [`Restart::FromRejectingStep`] keeps the steps before the rejecting
    /// one passed only when their approvals still hold: the steps were
    /// approved in the earlier round by the same approvers, and neither the
    /// amount nor the discount went up since that round (a step approved
    /// at ¥2,000,000 says nothing about ¥2,000,000,000). Otherwise the
    /// approval restarts from the first step. A caller resubmitting on
    /// another flow version clears [`rejected_at`](Instance::rejected_at)
    /// first: step positions of one version mean nothing in another.
    pub fn resubmit(
        &self,
        flow: &FlowDef,
        dir: &Directory,
        actor: Uuid,
        facts: Facts,
        picked: Vec<Uuid>,
        comment: Option<&str>,
    ) -> Result<(Instance, Vec<ActionRecord>), ApprovalError> {
        if actor != self.applicant {
            return Err(ApprovalError::NotApplicant);
        }
        if !matches!(self.status, Status::Rejected | Status::Withdrawn) {
            return Err(ApprovalError::CannotResubmit(self.status));
        }
        flow.validate().map_err(ApprovalError::InvalidFlow)?;
        check_picks(flow, dir, actor, &facts, &picked)?;
        let (steps, passes) = resolve(flow, dir, actor, &facts, &picked);
        let start = match (self.status, flow.restart, self.rejected_at) {
            // Approvals given for a smaller amount or discount do not cover
            // a larger one: raised since the round that approved the
            // earlier steps, the document starts over from the first step.
            (Status::Rejected, Restart::FromRejectingStep, Some(_))
                if raised(&self.facts, &facts) =>
            {
                0
            }
            // Only the steps approved in the earlier round stay passed: a
            // step before the rejecting one that applies now but was not
            // approved then (its conditions did not hold, or nobody
            // resolved) must be approved now.
            (Status::Rejected, Restart::FromRejectingStep, Some(def)) => {
                let passed = step_keys(&self.steps[..self.current.min(self.steps.len())]);
                let now = step_keys(&steps);
                steps
                    .iter()
                    .zip(&now)
                    .position(|(s, key)| s.def_index >= def || !passed.contains(key))
                    .unwrap_or(steps.len())
            }
            _ => 0,
        };
        let mut inst = Instance {
            applicant: self.applicant,
            facts,
            picked,
            status: Status::Pending,
            steps,
            current: start,
            approved_by: Vec::new(),
            rejected_at: None,
            round: self.round + 1,
        };
        let mut records = vec![record(ActionKind::Submit, actor, None, comment)];
        records.extend(passes);
        inst.settle();
        Ok((inst, records))
    }

    /// Starts a fresh round with `actor` as the new applicant of a rejected
    /// or withdrawn approval, from the first step: the caller has checked
    /// that `actor` may submit the document (e.g. it was transferred to
    /// them, or its applicant left). Nothing of the earlier round stays
    /// passed, since steps such as superiors depend on the applicant.
    pub fn resubmit_as_new_applicant(
        &self,
        flow: &FlowDef,
        dir: &Directory,
        actor: Uuid,
        facts: Facts,
        picked: Vec<Uuid>,
        comment: Option<&str>,
    ) -> Result<(Instance, Vec<ActionRecord>), ApprovalError> {
        if !matches!(self.status, Status::Rejected | Status::Withdrawn) {
            return Err(ApprovalError::CannotResubmit(self.status));
        }
        let (mut inst, records) = Instance::submit(flow, dir, actor, facts, picked, comment)?;
        inst.round = self.round + 1;
        Ok((inst, records))
    }

    /// Withdraws a pending approval on behalf of its document, whoever the
    /// actor is: the caller closes the document (e.g. terminates a
    /// contract) and has checked the actor's rights on it. Recorded as a
    /// withdrawal by `actor`.
    pub fn withdraw_for_document(
        &self,
        actor: Uuid,
        comment: Option<&str>,
    ) -> Result<(Instance, Vec<ActionRecord>), ApprovalError> {
        if self.status != Status::Pending {
            return Err(ApprovalError::NotPending(self.status));
        }
        let mut next = self.clone();
        next.status = Status::Withdrawn;
        next.approved_by.clear();
        Ok((
            next,
            vec![record(ActionKind::Withdraw, actor, None, comment)],
        ))
    }

    /// Applies the organisation as it is now to the current step of a
    /// pending approval: approvers who are no longer active users and have
    /// not approved are dropped, so nobody waits for them (a 会签 step
    /// passes once every approver still active approved). A step of a role
    /// or of the applicant's superiors is resolved again: whoever no longer
    /// holds the role, or is no longer that superior, and has not approved
    /// is dropped, and whoever holds it now approves instead (never the
    /// applicant); who approved the step already stays. A step left with
    /// nobody to act passes if somebody approved it already; otherwise its
    /// fallback applies as when nobody resolves at a submission (the
    /// administrators approve, or the step passes). Passed steps are
    /// recorded as automatic passes, and the next step is checked likewise.
    /// `flow` is the definition the approval runs on.
    pub fn drop_inactive(&self, flow: &FlowDef, dir: &Directory) -> (Instance, Vec<ActionRecord>) {
        let mut next = self.clone();
        let mut records = Vec::new();
        while next.status == Status::Pending && next.current < next.steps.len() {
            let i = next.current;
            let approved_by = next.approved_by.clone();
            let applicant = next.applicant;
            // Which of its definition's steps this is (superiors up to a
            // level resolve to one step a level), and who approve the
            // earlier steps of the same definition step.
            let def_index = next.steps[i].def_index;
            let level = next.steps[..=i]
                .iter()
                .filter(|s| s.def_index == def_index)
                .count();
            let earlier: Vec<Uuid> = next.steps[..i]
                .iter()
                .filter(|s| s.def_index == def_index)
                .flat_map(|s| s.approvers.iter().copied())
                .collect();
            let rule = flow.steps.get(def_index).map(|d| &d.approvers);
            let fallback = flow
                .steps
                .get(def_index)
                .map(|d| d.fallback)
                .unwrap_or_default();
            // Who holds the level below this one of a chain of superiors.
            let below = if level == 1 {
                Some(applicant)
            } else {
                next.steps[..i]
                    .iter()
                    .rev()
                    .find(|s| s.def_index == def_index)
                    .and_then(|s| s.approvers.first().copied())
            };
            let step = &mut next.steps[i];
            let waiting: Vec<Uuid> = step
                .approvers
                .iter()
                .copied()
                .filter(|u| !approved_by.contains(u))
                .collect();
            // Who holds the step's role or superior position now (`None`:
            // the step names its approvers, who stay).
            let holders: Option<Vec<Uuid>> = match rule {
                Some(ApproverRule::Role { role_id }) => {
                    Some(dir.role_members.get(role_id).cloned().unwrap_or_default())
                }
                // The applicant's superior at the step's level today; a
                // level of a chain of superiors is the one above whoever
                // holds the level below (a manager leaving after approving
                // moves no later level), and never someone an earlier
                // level of the step has.
                Some(ApproverRule::Superior { level: n }) => {
                    Some(dir.superior(applicant, *n).into_iter().collect())
                }
                Some(ApproverRule::SuperiorsUpTo { .. }) => Some(
                    below
                        .and_then(|b| dir.superior(b, 1))
                        .filter(|u| !earlier.contains(u))
                        .into_iter()
                        .collect(),
                ),
                _ => None,
            };
            let mut no_fallback = false;
            if let Some(holders) = holders {
                let holders: Vec<Uuid> = holders
                    .into_iter()
                    .filter(|u| *u != applicant && dir.active_users.contains(u))
                    .collect();
                let mut approvers: Vec<Uuid> = step
                    .approvers
                    .iter()
                    .copied()
                    .filter(|u| approved_by.contains(u))
                    .collect();
                if holders.is_empty() {
                    // Nobody holds it: a step the administrators took over
                    // by its fallback stays theirs (a 会签 of them waits
                    // for each); a level of superiors the chain no longer
                    // reaches passes, as at a submission.
                    if fallback == Fallback::Admins {
                        for u in &waiting {
                            if dir.admins.contains(u) && !approvers.contains(u) {
                                approvers.push(*u);
                            }
                        }
                    }
                    no_fallback =
                        matches!(rule, Some(ApproverRule::SuperiorsUpTo { .. })) && level > 1;
                } else {
                    for u in holders {
                        if !approvers.contains(&u) {
                            approvers.push(u);
                        }
                    }
                }
                step.approvers = approvers;
            }
            step.approvers
                .retain(|u| dir.active_users.contains(u) || approved_by.contains(u));
            if step.approvers.iter().any(|u| !approved_by.contains(u)) {
                break;
            }
            if approved_by.is_empty() && fallback == Fallback::Admins && !no_fallback {
                let admins: Vec<Uuid> = dir
                    .admins
                    .iter()
                    .copied()
                    .filter(|u| *u != next.applicant)
                    .collect();
                if !admins.is_empty() {
                    step.approvers = admins;
                    break;
                }
            }
            records.push(ActionRecord {
                kind: ActionKind::AutoPass,
                actor: None,
                step: Some(i),
                step_name: Some(step.name.clone()),
                to_step: None,
                comment: Some(if approved_by.is_empty() {
                    "none of the step's approvers may approve it any more (they left, or no \
                     longer hold its role or superior position)"
                        .to_string()
                } else {
                    "the approvers still to approve may no longer approve it (they left, or no \
                     longer hold its role or superior position)"
                        .to_string()
                }),
            });
            next.current += 1;
            next.approved_by.clear();
            next.settle();
        }
        (next, records)
    }

    /// Marks the approval approved when no step remains.
    fn settle(&mut self) {
        if self.status == Status::Pending && self.current >= self.steps.len() {
            self.current = self.steps.len();
            self.status = Status::Approved;
            self.approved_by.clear();
        }
    }

    /// The current step, while pending.
    pub fn current_step(&self) -> Option<&ResolvedStep> {
        if self.status == Status::Pending {
            self.steps.get(self.current)
        } else {
            None
        }
    }

    /// Who may act now: the current step's approvers who have not approved
    /// yet. Empty unless pending.
    pub fn pending_approvers(&self) -> Vec<Uuid> {
        self.current_step()
            .map(|s| {
                s.approvers
                    .iter()
                    .copied()
                    .filter(|u| !self.approved_by.contains(u))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether `user` is the applicant or among the approvers of any
    /// resolved step.
    pub fn involves(&self, user: Uuid) -> bool {
        self.applicant == user || self.is_approver(user)
    }

    /// Whether `user` is among the approvers of any resolved step.
    pub fn is_approver(&self, user: Uuid) -> bool {
        self.steps.iter().any(|s| s.approvers.contains(&user))
    }

    fn check_approver(&self, actor: Uuid) -> Result<usize, ApprovalError> {
        if self.status != Status::Pending {
            return Err(ApprovalError::NotPending(self.status));
        }
        let step = self
            .steps
            .get(self.current)
            .ok_or(ApprovalError::NotPending(self.status))?;
        if !step.approvers.contains(&actor) {
            return Err(ApprovalError::NotAnApprover(actor));
        }
        if self.approved_by.contains(&actor) {
            return Err(ApprovalError::AlreadyApproved(actor));
        }
        Ok(self.current)
    }

    /// An approver of the current step approves. Under 或签 the step passes;
    /// under 会签 it passes when the last approver approves.
    pub fn approve(
        &self,
        actor: Uuid,
        comment: Option<&str>,
    ) -> Result<(Instance, Vec<ActionRecord>), ApprovalError> {
        let i = self.check_approver(actor)?;
        let step = &self.steps[i];
        let mut next = self.clone();
        next.approved_by.push(actor);
        let done = match step.mode {
            SignMode::Any => true,
            SignMode::All => step.approvers.iter().all(|u| next.approved_by.contains(u)),
        };
        if done {
            next.current += 1;
            next.approved_by.clear();
            next.settle();
        }
        Ok((
            next,
            vec![record(ActionKind::Approve, actor, Some((i, step)), comment)],
        ))
    }

    /// An approver of the current step rejects, to the applicant or back to
    /// an earlier step.
    pub fn reject(
        &self,
        actor: Uuid,
        to: RejectTo,
        comment: Option<&str>,
    ) -> Result<(Instance, Vec<ActionRecord>), ApprovalError> {
        let i = self.check_approver(actor)?;
        let step = &self.steps[i];
        let mut next = self.clone();
        next.approved_by.clear();
        let mut rec = match to {
            RejectTo::Applicant => {
                next.status = Status::Rejected;
                next.rejected_at = Some(step.def_index);
                record(ActionKind::Reject, actor, Some((i, step)), comment)
            }
            RejectTo::Step(k) => {
                if k >= i {
                    let earlier = self.steps[..i].iter().map(|s| s.name.clone()).collect();
                    return Err(ApprovalError::BadTarget(k.saturating_add(1), earlier));
                }
                next.current = k;
                record(ActionKind::Return, actor, Some((i, step)), comment)
            }
        };
        if let RejectTo::Step(k) = to {
            rec.to_step = Some(k);
        }
        Ok((next, vec![rec]))
    }

    /// The applicant withdraws a pending approval.
    pub fn withdraw(
        &self,
        actor: Uuid,
        comment: Option<&str>,
    ) -> Result<(Instance, Vec<ActionRecord>), ApprovalError> {
        if actor != self.applicant {
            return Err(ApprovalError::NotApplicant);
        }
        self.withdraw_for_document(actor, comment)
    }
}

#[cfg(test)]
mod tests;
