use super::*;
use proptest::prelude::*;
use std::collections::BTreeSet;

fn u(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn users_step(name: &str, users: &[u128], mode: SignMode) -> StepDef {
    StepDef {
        name: name.into(),
        conditions: Vec::new(),
        approvers: ApproverRule::Users {
            users: users.iter().map(|n| u(*n)).collect(),
        },
        mode,
        fallback: Fallback::AutoPass,
    }
}

fn amount(minor: i64) -> Facts {
    Facts {
        amount_minor: Some(minor),
        kind: None,
        discount_bp: None,
    }
}

/// 1 → 2 → 3 → 4 superior chain; role R (100) has 5 and 6; role 101 has
/// 1 and 5; role 102 has nobody; admin 9; 1–9 are active users (so not 10,
/// deactivated, or 11, of another company).
fn dir() -> Directory {
    Directory {
        superiors: [(u(1), u(2)), (u(2), u(3)), (u(3), u(4))]
            .into_iter()
            .collect(),
        role_members: [(u(100), vec![u(5), u(6)]), (u(101), vec![u(1), u(5)])]
            .into_iter()
            .collect(),
        admins: vec![u(9)],
        active_users: (1..=9).map(u).collect(),
        roles: [(u(100), "R"), (u(101), "经理"), (u(102), "空角色")]
            .into_iter()
            .map(|(id, name)| (id, name.to_string()))
            .collect(),
    }
}

#[test]
fn resolves_superiors_roles_picks_conditions_and_fallbacks() {
    let flow = FlowDef {
        steps: vec![
            StepDef {
                name: "直属上级".into(),
                conditions: vec![],
                approvers: ApproverRule::Superior { level: 1 },
                mode: SignMode::Any,
                fallback: Fallback::AutoPass,
            },
            StepDef {
                name: "逐级".into(),
                conditions: vec![Condition::AmountAtLeast { minor: 100_000 }],
                approvers: ApproverRule::SuperiorsUpTo { levels: 5 },
                mode: SignMode::Any,
                fallback: Fallback::AutoPass,
            },
            StepDef {
                name: "财务".into(),
                conditions: vec![Condition::TypeIn {
                    types: vec!["sales".into()],
                }],
                approvers: ApproverRule::Role { role_id: u(100) },
                mode: SignMode::All,
                fallback: Fallback::AutoPass,
            },
            StepDef {
                name: "自选".into(),
                conditions: vec![],
                approvers: ApproverRule::ApplicantPicks,
                mode: SignMode::Any,
                fallback: Fallback::Admins,
            },
            StepDef {
                name: "第九级".into(),
                conditions: vec![],
                approvers: ApproverRule::Superior { level: 9 },
                mode: SignMode::Any,
                fallback: Fallback::AutoPass,
            },
        ],
        restart: Restart::FromFirst,
    };
    let facts = Facts {
        amount_minor: Some(100_000),
        kind: Some("sales".into()),
        discount_bp: None,
    };
    let (steps, passes) = resolve(&flow, &dir(), u(1), &facts, &[u(8)]);
    let names: Vec<(&str, Vec<Uuid>)> = steps
        .iter()
        .map(|s| (s.name.as_str(), s.approvers.clone()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("直属上级", vec![u(2)]),
            ("逐级", vec![u(2)]),
            ("逐级", vec![u(3)]),
            ("逐级", vec![u(4)]),
            ("财务", vec![u(5), u(6)]),
            ("自选", vec![u(8)]),
        ]
    );
    assert_eq!(passes.len(), 1);
    assert_eq!(passes[0].step_name.as_deref(), Some("第九级"));
    // Below the threshold and another type: both conditional steps drop.
    let facts = Facts {
        amount_minor: Some(99_999),
        kind: Some("service".into()),
        discount_bp: None,
    };
    let (steps, _) = resolve(&flow, &dir(), u(1), &facts, &[u(7), u(7)]);
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["直属上级", "自选"]);
    assert_eq!(steps[1].approvers, vec![u(7)], "picks are deduplicated");
}

#[test]
fn countersign_needs_everyone_and_or_sign_anyone() {
    let flow = FlowDef {
        steps: vec![
            users_step("会签", &[5, 6], SignMode::All),
            users_step("或签", &[7, 8], SignMode::Any),
        ],
        restart: Restart::FromFirst,
    };
    let (i, rec) =
        Instance::submit(&flow, &dir(), u(1), amount(1), vec![], Some("请审批")).expect("submit");
    assert_eq!(rec[0].kind, ActionKind::Submit);
    assert_eq!(i.pending_approvers(), vec![u(5), u(6)]);
    assert_eq!(
        i.approve(u(7), None).expect_err("not yet"),
        ApprovalError::NotAnApprover(u(7))
    );
    let (i, _) = i.approve(u(5), Some("同意")).expect("5");
    assert_eq!(i.current, 0);
    assert_eq!(
        i.approve(u(5), None).expect_err("twice"),
        ApprovalError::AlreadyApproved(u(5))
    );
    assert_eq!(i.pending_approvers(), vec![u(6)]);
    let (i, _) = i.approve(u(6), None).expect("6");
    assert_eq!(i.current, 1);
    let (i, rec) = i.approve(u(8), None).expect("8");
    assert_eq!(i.status, Status::Approved);
    assert_eq!(rec[0].step_name.as_deref(), Some("或签"));
    assert!(i.pending_approvers().is_empty());
    assert_eq!(
        i.reject(u(7), RejectTo::Applicant, None)
            .expect_err("final"),
        ApprovalError::NotPending(Status::Approved)
    );
}

#[test]
fn return_to_earlier_step_and_restart_from_rejecting_step() {
    let flow = FlowDef {
        steps: vec![
            users_step("一", &[5], SignMode::Any),
            users_step("二", &[6], SignMode::Any),
            users_step("三", &[7], SignMode::Any),
        ],
        restart: Restart::FromRejectingStep,
    };
    let (i, _) = Instance::submit(&flow, &dir(), u(1), amount(1), vec![], None).expect("submit");
    let (i, _) = i.approve(u(5), None).expect("one");
    let (i, _) = i.approve(u(6), None).expect("two");
    assert_eq!(
        i.reject(u(7), RejectTo::Step(2), None)
            .expect_err("not earlier"),
        ApprovalError::BadTarget(3, vec!["一".into(), "二".into()])
    );
    assert_eq!(
        i.reject(u(7), RejectTo::Step(2), None)
            .expect_err("not earlier")
            .to_string(),
        "step 3 is not an earlier step; can only return to steps 1 (一) or 2 (二)"
    );
    // A huge step number is refused like any other, without overflowing.
    assert_eq!(
        i.reject(u(7), RejectTo::Step(usize::MAX), None)
            .expect_err("huge"),
        ApprovalError::BadTarget(usize::MAX, vec!["一".into(), "二".into()])
    );
    let (i, rec) = i
        .reject(u(7), RejectTo::Step(1), Some("补充材料"))
        .expect("return");
    assert_eq!((rec[0].kind, rec[0].to_step), (ActionKind::Return, Some(1)));
    assert_eq!(i.pending_approvers(), vec![u(6)]);
    let (i, _) = i.approve(u(6), None).expect("two again");
    let (i, _) = i
        .reject(u(7), RejectTo::Applicant, Some("价格太低"))
        .expect("reject");
    assert_eq!(i.status, Status::Rejected);
    assert_eq!(
        i.resubmit(&flow, &dir(), u(5), amount(1), vec![], None)
            .expect_err("applicant only"),
        ApprovalError::NotApplicant
    );
    // The same (or a lower) amount: the approved steps stay passed.
    let (i, _) = i
        .resubmit(&flow, &dir(), u(1), amount(1), vec![], None)
        .expect("resubmit");
    assert_eq!((i.status, i.current, i.round), (Status::Pending, 2, 2));
    assert_eq!(i.pending_approvers(), vec![u(7)]);
    // Withdrawal restarts from the first step.
    let (i, _) = i.withdraw(u(1), None).expect("withdraw");
    assert_eq!(
        i.withdraw(u(1), None).expect_err("twice"),
        ApprovalError::NotPending(Status::Withdrawn)
    );
    let (i, _) = i
        .resubmit(&flow, &dir(), u(1), amount(2), vec![], None)
        .expect("resubmit");
    assert_eq!(i.current, 0);
}

/// Restarting from the rejecting step skips a superiors' step only for the
/// superiors who approved it: a new direct superior, put above the
/// applicant since, approves; the superior who approved before is not
/// asked again in their old place but in theirs now.
#[test]
fn restart_from_the_rejecting_step_asks_new_superiors() {
    let flow = FlowDef {
        steps: vec![
            StepDef {
                name: "上级".into(),
                conditions: Vec::new(),
                approvers: ApproverRule::SuperiorsUpTo { levels: 2 },
                mode: SignMode::Any,
                fallback: Fallback::AutoPass,
            },
            users_step("财务", &[7], SignMode::Any),
        ],
        restart: Restart::FromRejectingStep,
    };
    // Applicant 3: superior 4, who has none.
    let (i, _) = Instance::submit(&flow, &dir(), u(3), amount(1), vec![], None).expect("submit");
    assert_eq!(i.pending_approvers(), vec![u(4)]);
    let (i, _) = i.approve(u(4), None).expect("superior");
    let (i, _) = i
        .reject(u(7), RejectTo::Applicant, None)
        .expect("finance rejects");
    // Now 3 reports to 8, who reports to 4.
    let mut moved = dir();
    moved.superiors.insert(u(3), u(8));
    moved.superiors.insert(u(8), u(4));
    let (i, _) = i
        .resubmit(&flow, &moved, u(3), amount(1), vec![], None)
        .expect("resubmit");
    assert_eq!(i.current, 0, "the new superior has not approved");
    assert_eq!(i.pending_approvers(), vec![u(8)]);
    // Unchanged superiors: the step they approved stays passed.
    let (i, _) = i.approve(u(8), None).expect("new superior");
    let (i, _) = i.approve(u(4), None).expect("second level");
    let (i, _) = i.reject(u(7), RejectTo::Applicant, None).expect("again");
    let (i, _) = i
        .resubmit(&flow, &moved, u(3), amount(1), vec![], None)
        .expect("resubmit");
    assert_eq!(i.pending_approvers(), vec![u(7)]);
}

/// An inactive superior does not cut the chain: they are passed over and
/// do not count as a level, so the active superiors above them approve.
#[test]
fn inactive_superiors_are_passed_over_without_counting_as_a_level() {
    let mut d = dir();
    d.active_users.remove(&u(2));
    assert_eq!(d.superior(u(1), 1), Some(u(3)));
    assert_eq!(d.superior(u(1), 2), Some(u(4)));
    assert_eq!(
        d.superior(u(1), 3),
        None,
        "the chain has two active superiors"
    );
    let superiors = |levels| FlowDef {
        steps: vec![StepDef {
            name: "逐级".into(),
            conditions: Vec::new(),
            approvers: ApproverRule::SuperiorsUpTo { levels },
            mode: SignMode::Any,
            fallback: Fallback::AutoPass,
        }],
        restart: Restart::FromFirst,
    };
    let (i, rec) =
        Instance::submit(&superiors(3), &d, u(1), amount(1), vec![], None).expect("submit");
    let who: Vec<Vec<Uuid>> = i.steps.iter().map(|s| s.approvers.clone()).collect();
    assert_eq!(who, vec![vec![u(3)], vec![u(4)]]);
    assert_eq!(rec.len(), 1, "nothing passed by its fallback: {rec:?}");
    let (i, _) = Instance::submit(&superiors(2), &d, u(1), amount(1), vec![], None).expect("two");
    let who: Vec<Vec<Uuid>> = i.steps.iter().map(|s| s.approvers.clone()).collect();
    assert_eq!(who, vec![vec![u(3)], vec![u(4)]]);
    let level2 = FlowDef {
        steps: vec![StepDef {
            name: "二级上级".into(),
            conditions: Vec::new(),
            approvers: ApproverRule::Superior { level: 2 },
            mode: SignMode::Any,
            fallback: Fallback::AutoPass,
        }],
        restart: Restart::FromFirst,
    };
    let (i, _) = Instance::submit(&level2, &d, u(1), amount(1), vec![], None).expect("level 2");
    assert_eq!(i.pending_approvers(), vec![u(4)]);
}

/// Restarting from the rejecting step keeps the earlier approvals only
/// while the amount and the discount did not go up.
#[test]
fn a_raised_amount_or_discount_restarts_from_the_first_step() {
    let flow = FlowDef {
        steps: vec![
            users_step("一", &[5], SignMode::Any),
            users_step("二", &[6], SignMode::Any),
        ],
        restart: Restart::FromRejectingStep,
    };
    let facts = |minor, bp| Facts {
        amount_minor: Some(minor),
        kind: None,
        discount_bp: bp,
    };
    let rejected = |f: Facts| {
        let (i, _) = Instance::submit(&flow, &dir(), u(1), f, vec![], None).expect("submit");
        let (i, _) = i.approve(u(5), None).expect("one");
        let (i, _) = i.reject(u(6), RejectTo::Applicant, None).expect("reject");
        i
    };
    let start = |i: &Instance, f: Facts| {
        i.resubmit(&flow, &dir(), u(1), f, vec![], None)
            .expect("resubmit")
            .0
            .current
    };
    let i = rejected(facts(200_000_000, Some(500)));
    assert_eq!(start(&i, facts(200_000_000, Some(500))), 1, "unchanged");
    assert_eq!(start(&i, facts(150_000_000, Some(300))), 1, "lowered");
    assert_eq!(start(&i, facts(200_000_000_000, Some(500))), 0, "amount up");
    assert_eq!(start(&i, facts(200_000_000, Some(800))), 0, "discount up");
    let i = rejected(facts(200_000_000, None));
    assert_eq!(
        start(&i, facts(200_000_000, Some(100))),
        0,
        "a discount now"
    );
}

/// Approvers who are no longer active are not waited for: a 会签 step
/// passes once its active approvers approved, and a step with nobody
/// active left falls back as at a submission.
#[test]
fn inactive_approvers_are_not_waited_for() {
    let all = FlowDef {
        steps: vec![
            users_step("会签", &[5, 6, 7], SignMode::All),
            users_step("财务", &[8], SignMode::Any),
        ],
        restart: Restart::FromFirst,
    };
    let (i, _) = Instance::submit(&all, &dir(), u(1), amount(1), vec![], None).expect("submit");
    let (i, _) = i.approve(u(5), None).expect("5");
    let mut d = dir();
    d.active_users.remove(&u(6));
    let (i, rec) = i.drop_inactive(&all, &d);
    assert!(rec.is_empty());
    assert_eq!(i.pending_approvers(), vec![u(7)]);
    let (i, _) = i.approve(u(7), None).expect("7, the last one active");
    assert_eq!(i.current_step().map(|s| s.name.as_str()), Some("财务"));
    // Everybody still to approve left: the step passes on what it has.
    let (i, _) = Instance::submit(&all, &dir(), u(1), amount(1), vec![], None).expect("submit");
    let (i, _) = i.approve(u(5), None).expect("5");
    d.active_users.remove(&u(7));
    let (i, rec) = i.drop_inactive(&all, &d);
    assert_eq!(i.pending_approvers(), vec![u(8)]);
    assert_eq!(
        (rec.len(), rec[0].kind, rec[0].step),
        (1, ActionKind::AutoPass, Some(0))
    );
    // Nobody active and nobody approved: the fallback applies.
    d.active_users.remove(&u(5));
    let (i, _) = Instance::submit(&all, &dir(), u(1), amount(1), vec![], None).expect("submit");
    let (passed, rec) = i.drop_inactive(&all, &d);
    assert_eq!(passed.pending_approvers(), vec![u(8)]);
    assert_eq!(rec[0].kind, ActionKind::AutoPass);
    let mut admins = all.clone();
    admins.steps[0].fallback = Fallback::Admins;
    let (to_admin, rec) = i.drop_inactive(&admins, &d);
    assert!(rec.is_empty());
    assert_eq!(to_admin.pending_approvers(), vec![u(9)]);
    let (to_admin, _) = to_admin.approve(u(9), None).expect("admin");
    assert_eq!(to_admin.pending_approvers(), vec![u(8)]);
    // The last step passing approves the document.
    d.active_users.remove(&u(8));
    let (done, _) = passed.drop_inactive(&all, &d);
    assert_eq!(done.status, Status::Approved);
}

/// A role's step follows who holds the role now, and a superior's step
/// who the superior is now: whoever lost the role or the position and has
/// not approved no longer approves, and the new holder does.
#[test]
fn role_and_superior_steps_follow_the_organisation() {
    let step = |name: &str, approvers: ApproverRule, mode: SignMode| StepDef {
        name: name.into(),
        conditions: Vec::new(),
        approvers,
        mode,
        fallback: Fallback::Admins,
    };
    let flow = FlowDef {
        steps: vec![
            step("上级", ApproverRule::Superior { level: 1 }, SignMode::Any),
            step(
                "逐级",
                ApproverRule::SuperiorsUpTo { levels: 2 },
                SignMode::Any,
            ),
            step(
                "财务会签",
                ApproverRule::Role { role_id: u(100) },
                SignMode::All,
            ),
        ],
        restart: Restart::FromFirst,
    };
    let (i, _) = Instance::submit(&flow, &dir(), u(1), amount(1), vec![], None).expect("submit");
    assert_eq!(i.pending_approvers(), vec![u(2)]);
    // 1's superior is 7 now: 2 no longer approves.
    let mut d = dir();
    d.superiors.insert(u(1), u(7));
    d.superiors.insert(u(7), u(3));
    let (i, rec) = i.drop_inactive(&flow, &d);
    assert!(rec.is_empty());
    assert_eq!(i.pending_approvers(), vec![u(7)]);
    assert!(i.approve(u(2), None).is_err(), "the former superior");
    let (i, _) = i.approve(u(7), None).expect("the superior now");
    // The chain's steps: 7, then 3 (7's superior).
    let (i, _) = i.drop_inactive(&flow, &d);
    assert_eq!(i.pending_approvers(), vec![u(7)]);
    let (i, _) = i.approve(u(7), None).expect("level 1");
    let (i, _) = i.drop_inactive(&flow, &d);
    assert_eq!(i.pending_approvers(), vec![u(3)]);
    let (i, _) = i.approve(u(3), None).expect("level 2");
    // The role step (会签 of 5 and 6): 5 approves, then 6 loses the role
    // and 8 gains it: 8 signs instead of 6, and 5's signature stays.
    let (i, _) = i.drop_inactive(&flow, &d);
    assert_eq!(i.pending_approvers(), vec![u(5), u(6)]);
    let (i, _) = i.approve(u(5), None).expect("5");
    d.role_members.insert(u(100), vec![u(8)]);
    let (i, rec) = i.drop_inactive(&flow, &d);
    assert!(rec.is_empty());
    assert_eq!(i.pending_approvers(), vec![u(8)]);
    assert!(i.approve(u(6), None).is_err(), "no longer holds the role");
    let (i, _) = i.approve(u(8), None).expect("8");
    assert_eq!(i.status, Status::Approved);
    // A team lead put between the applicant and their superior takes the
    // superior's step, though the former superior is still above them.
    let (t, _) = Instance::submit(&flow, &dir(), u(1), amount(1), vec![], None).expect("submit");
    let mut lead = dir();
    lead.superiors.insert(u(1), u(7));
    lead.superiors.insert(u(7), u(2));
    let (t, _) = t.drop_inactive(&flow, &lead);
    assert_eq!(t.pending_approvers(), vec![u(7)]);
    // A level's superior leaving after approving moves no later level:
    // level 2 stays 3, the next one above 2, not 4.
    let chain = FlowDef {
        steps: vec![step(
            "逐级",
            ApproverRule::SuperiorsUpTo { levels: 3 },
            SignMode::Any,
        )],
        restart: Restart::FromFirst,
    };
    let (c, _) = Instance::submit(&chain, &dir(), u(1), amount(1), vec![], None).expect("submit");
    let (c, _) = c.approve(u(2), None).expect("level 1");
    let mut gone = dir();
    gone.active_users.remove(&u(2));
    let (c, _) = c.drop_inactive(&chain, &gone);
    assert_eq!(c.pending_approvers(), vec![u(3)]);
    let (c, _) = c.approve(u(3), None).expect("level 2");
    let (c, _) = c.drop_inactive(&chain, &gone);
    assert_eq!(c.pending_approvers(), vec![u(4)]);
    // A 会签 the administrators took over (nobody holds the role) waits
    // for each of them.
    let empty_role = FlowDef {
        steps: vec![step(
            "财务会签",
            ApproverRule::Role { role_id: u(102) },
            SignMode::All,
        )],
        restart: Restart::FromFirst,
    };
    let mut two_admins = dir();
    two_admins.admins = vec![u(8), u(9)];
    let (a, _) =
        Instance::submit(&empty_role, &two_admins, u(1), amount(1), vec![], None).expect("submit");
    assert_eq!(a.pending_approvers(), vec![u(8), u(9)]);
    let (a, _) = a.approve(u(8), None).expect("8");
    let (a, rec) = a.drop_inactive(&empty_role, &two_admins);
    assert!(rec.is_empty(), "{rec:?}");
    assert_eq!(a.pending_approvers(), vec![u(9)]);
    // Nobody holds the role any more: the fallback (administrators).
    let (i, _) = Instance::submit(&flow, &dir(), u(1), amount(1), vec![], None).expect("submit");
    let (i, _) = i.approve(u(2), None).expect("superior");
    let (i, _) = i.approve(u(2), None).expect("level 1");
    let (i, _) = i.approve(u(3), None).expect("level 2");
    let mut d = dir();
    d.role_members.remove(&u(100));
    let (i, _) = i.drop_inactive(&flow, &d);
    assert_eq!(i.pending_approvers(), vec![u(9)]);
}

/// A new definition names each step once and sets thresholds a document
/// can meet: no negative amount, discounts within 0–100 %, a type.
#[test]
fn new_definitions_name_steps_once_and_set_sensible_thresholds() {
    let with = |conditions: Vec<Condition>, second: &str| FlowDef {
        steps: vec![
            StepDef {
                conditions,
                ..users_step("主管", &[5], SignMode::Any)
            },
            users_step(second, &[6], SignMode::Any),
        ],
        restart: Restart::FromFirst,
    };
    assert_eq!(with(Vec::new(), "财务").check_new(), Ok(()));
    let e = with(Vec::new(), " 主管 ").check_new().expect_err("twice");
    assert!(e.contains("steps 1 and 2") && e.contains("主管"), "{e}");
    for (c, says) in [
        (Condition::AmountAtLeast { minor: -500 }, "-¥5.00"),
        (
            Condition::AmountBelow { minor: 0 },
            "no document's amount is below ¥0.00",
        ),
        (Condition::DiscountAbove { bp: 10_000 }, "100%"),
        (Condition::DiscountAbove { bp: -1 }, "up to below 100%"),
        (
            Condition::TypeIn {
                types: vec![" ".into()],
            },
            "names no type",
        ),
    ] {
        let e = with(vec![c.clone()], "财务")
            .check_new()
            .expect_err("refused");
        assert!(
            e.starts_with("step 1 (主管)") && e.contains(says),
            "{c:?}: {e}"
        );
    }
    assert_eq!(
        with(vec![Condition::AmountAtLeast { minor: 0 }], "财务").check_new(),
        Ok(())
    );
}

#[test]
fn flow_without_approvers_passes_at_once_and_invalid_flows_are_refused() {
    let flow = FlowDef {
        steps: vec![StepDef {
            name: "上级".into(),
            conditions: vec![],
            approvers: ApproverRule::Superior { level: 1 },
            mode: SignMode::Any,
            fallback: Fallback::AutoPass,
        }],
        restart: Restart::FromFirst,
    };
    let (i, rec) = Instance::submit(&flow, &dir(), u(4), amount(1), vec![], None).expect("submit");
    assert_eq!(i.status, Status::Approved);
    assert_eq!(rec[1].kind, ActionKind::AutoPass);
    let empty = FlowDef {
        steps: vec![],
        restart: Restart::FromFirst,
    };
    assert!(Instance::submit(&empty, &dir(), u(1), amount(1), vec![], None).is_err());
    let nobody = FlowDef {
        steps: vec![users_step("x", &[], SignMode::Any)],
        restart: Restart::FromFirst,
    };
    assert!(nobody.validate().is_err());
}

#[test]
fn the_applicant_never_approves_their_own_submission() {
    let picks = FlowDef {
        steps: vec![StepDef {
            name: "自选".into(),
            conditions: vec![],
            approvers: ApproverRule::ApplicantPicks,
            mode: SignMode::Any,
            fallback: Fallback::AutoPass,
        }],
        restart: Restart::FromFirst,
    };
    let submit =
        |picked: Vec<Uuid>| Instance::submit(&picks, &dir(), u(1), amount(1), picked, None);
    // Picking oneself, nobody, a deactivated user or another company's user
    // is refused; an active colleague is the step's approver.
    assert_eq!(
        submit(vec![u(5), u(1)]).expect_err("self"),
        ApprovalError::SelfPick
    );
    assert_eq!(
        submit(vec![]).expect_err("nobody"),
        ApprovalError::NothingPicked("自选".into())
    );
    assert_eq!(
        submit(vec![u(10)]).expect_err("inactive"),
        ApprovalError::BadPick(u(10))
    );
    assert_eq!(
        submit(vec![u(5), u(11)]).expect_err("foreign"),
        ApprovalError::BadPick(u(11))
    );
    let (i, _) = submit(vec![u(5)]).expect("a colleague");
    assert_eq!(i.pending_approvers(), vec![u(5)]);
    assert_eq!(
        i.approve(u(1), None).expect_err("applicant"),
        ApprovalError::NotAnApprover(u(1))
    );
    // A resubmission is held to the same rules.
    let (i, _) = i.withdraw(u(1), None).expect("withdraw");
    assert_eq!(
        i.resubmit(&picks, &dir(), u(1), amount(1), vec![u(1)], None)
            .expect_err("self"),
        ApprovalError::SelfPick
    );
    assert_eq!(
        i.resubmit(&picks, &dir(), u(1), amount(1), vec![], None)
            .expect_err("nobody"),
        ApprovalError::NothingPicked("自选".into())
    );
    // A step of picks that does not apply needs no pick.
    let mut conditional = picks.clone();
    conditional.steps[0].conditions = vec![Condition::AmountAtLeast { minor: 100 }];
    let (i, _) = Instance::submit(&conditional, &dir(), u(1), amount(1), vec![], None)
        .expect("below the threshold");
    assert_eq!(i.status, Status::Approved);

    // Named users, a role and the administrators of a fallback never
    // resolve to the applicant: the others approve, and a step left with
    // nobody falls back.
    let flow = FlowDef {
        steps: vec![
            users_step("会签", &[1, 5], SignMode::All),
            StepDef {
                name: "经理".into(),
                conditions: vec![],
                approvers: ApproverRule::Role { role_id: u(101) },
                mode: SignMode::All,
                fallback: Fallback::AutoPass,
            },
            users_step("本人", &[1], SignMode::Any),
            StepDef {
                name: "本人或管理员".into(),
                conditions: vec![],
                approvers: ApproverRule::Users { users: vec![u(1)] },
                mode: SignMode::Any,
                fallback: Fallback::Admins,
            },
        ],
        restart: Restart::FromFirst,
    };
    let (i, rec) = Instance::submit(&flow, &dir(), u(1), amount(1), vec![], None).expect("submit");
    let steps: Vec<(&str, Vec<Uuid>)> = i
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.approvers.clone()))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("会签", vec![u(5)]),
            ("经理", vec![u(5)]),
            ("本人或管理员", vec![u(9)]),
        ]
    );
    assert_eq!(rec[1].kind, ActionKind::AutoPass);
    assert_eq!(rec[1].step_name.as_deref(), Some("本人"));
    assert!(
        rec[1]
            .comment
            .as_deref()
            .is_some_and(|c| c.contains("applicant"))
    );
    // An administrator applicant is not their own fallback either: with no
    // other administrator, the step passes.
    let (i, _) = Instance::submit(&flow, &dir(), u(9), amount(1), vec![], None).expect("admin");
    assert!(i.steps.iter().all(|s| !s.approvers.contains(&u(9))));
    let admin_only = FlowDef {
        steps: vec![StepDef {
            name: "管理员".into(),
            conditions: vec![],
            approvers: ApproverRule::Users { users: vec![u(9)] },
            mode: SignMode::Any,
            fallback: Fallback::Admins,
        }],
        restart: Restart::FromFirst,
    };
    let (i, rec) =
        Instance::submit(&admin_only, &dir(), u(9), amount(1), vec![], None).expect("admin");
    assert_eq!(i.status, Status::Approved);
    assert_eq!(rec[1].kind, ActionKind::AutoPass);
}

#[test]
fn only_active_users_of_the_company_resolve_and_may_be_named() {
    // Submitting: a deactivated or foreign named user is unresolved; the
    // step's fallback decides.
    let flow = FlowDef {
        steps: vec![
            users_step("会签", &[5, 10], SignMode::All),
            users_step("离职", &[10, 11], SignMode::Any),
            StepDef {
                name: "离职或管理员".into(),
                conditions: vec![],
                approvers: ApproverRule::Users { users: vec![u(10)] },
                mode: SignMode::Any,
                fallback: Fallback::Admins,
            },
        ],
        restart: Restart::FromFirst,
    };
    let (i, rec) = Instance::submit(&flow, &dir(), u(1), amount(1), vec![], None).expect("submit");
    let steps: Vec<(&str, Vec<Uuid>)> = i
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.approvers.clone()))
        .collect();
    assert_eq!(
        steps,
        vec![("会签", vec![u(5)]), ("离职或管理员", vec![u(9)])]
    );
    assert_eq!(rec[1].kind, ActionKind::AutoPass);
    assert_eq!(rec[1].step_name.as_deref(), Some("离职"));
    // A deactivated superior is passed over: the next active one up
    // approves; with no active superior left, the fallback decides.
    let superior = FlowDef {
        steps: vec![StepDef {
            name: "上级".into(),
            conditions: vec![],
            approvers: ApproverRule::Superior { level: 1 },
            mode: SignMode::Any,
            fallback: Fallback::Admins,
        }],
        restart: Restart::FromFirst,
    };
    let mut d = dir();
    d.active_users.remove(&u(2));
    let (steps, _) = resolve(&superior, &d, u(1), &amount(1), &[]);
    assert_eq!(steps[0].approvers, vec![u(3)]);
    d.active_users.remove(&u(3));
    d.active_users.remove(&u(4));
    let (steps, _) = resolve(&superior, &d, u(1), &amount(1), &[]);
    assert_eq!(steps[0].approvers, vec![u(9)]);

    // Defining: named users must be active users, roles the company's
    // with an active member.
    let check = |approvers: ApproverRule| {
        FlowDef {
            steps: vec![
                users_step("一", &[5], SignMode::Any),
                StepDef {
                    name: "二".into(),
                    conditions: vec![],
                    approvers,
                    mode: SignMode::Any,
                    fallback: Fallback::AutoPass,
                },
            ],
            restart: Restart::FromFirst,
        }
        .check_people(&dir())
    };
    let users = |ids: &[u128]| ApproverRule::Users {
        users: ids.iter().map(|n| u(*n)).collect(),
    };
    let err = check(users(&[5, 10])).expect_err("inactive");
    assert!(
        err.contains("step 2 (二)") && err.contains(&u(10).to_string()) && err.contains("active"),
        "{err}"
    );
    assert!(check(users(&[11])).is_err(), "another company's user");
    let err = check(ApproverRule::Role { role_id: u(103) }).expect_err("unknown role");
    assert!(err.contains("not a role of this company"), "{err}");
    let err = check(ApproverRule::Role { role_id: u(102) }).expect_err("memberless");
    assert!(
        err.contains("空角色") && err.contains("no active member"),
        "{err}"
    );
    for fine in [
        users(&[5, 6]),
        ApproverRule::Role { role_id: u(100) },
        ApproverRule::Superior { level: 1 },
        ApproverRule::ApplicantPicks,
    ] {
        assert_eq!(check(fine), Ok(()));
    }
}

// ---------------------------------------------------------------------------
// Property test against a reference model
// ---------------------------------------------------------------------------

const APPLICANT: u128 = 1;
const ADMIN: u128 = 6;

/// The reference model: the rules written as plainly as possible.
#[derive(Clone, Debug)]
struct Model {
    status: Status,
    /// (definition index, approvers, everyone must sign)
    steps: Vec<(usize, BTreeSet<u128>, bool)>,
    cur: usize,
    got: BTreeSet<u128>,
    rejected_def: Option<usize>,
    /// The amount of the last submission.
    amount: i64,
}

#[derive(Clone, Debug)]
struct GenStep {
    users: Vec<u128>,
    all: bool,
    picks: bool,
    admins: bool,
    min_amount: Option<i64>,
}

/// Whether a submission with these picks is refused: the applicant picked
/// themselves, or a step of picks applies and nobody was picked.
fn model_refuses(flow: &[GenStep], amount: i64, picked: &[u128]) -> bool {
    picked.contains(&APPLICANT)
        || (picked.is_empty()
            && flow
                .iter()
                .any(|s| s.picks && s.min_amount.is_none_or(|m| amount >= m)))
}

fn model_resolve(
    flow: &[GenStep],
    amount: i64,
    picked: &[u128],
) -> Vec<(usize, BTreeSet<u128>, bool)> {
    let mut out = Vec::new();
    for (i, s) in flow.iter().enumerate() {
        if s.min_amount.is_some_and(|m| amount < m) {
            continue;
        }
        let mut who: BTreeSet<u128> = if s.picks {
            picked.iter().copied().collect()
        } else {
            s.users.iter().copied().collect()
        };
        // The applicant never approves their own submission.
        who.remove(&APPLICANT);
        if who.is_empty() && s.admins {
            who.insert(ADMIN);
        }
        if !who.is_empty() {
            out.push((i, who, s.all));
        }
    }
    out
}

impl Model {
    fn pending(&self) -> BTreeSet<u128> {
        if self.status != Status::Pending {
            return BTreeSet::new();
        }
        self.steps[self.cur]
            .1
            .difference(&self.got)
            .copied()
            .collect()
    }

    fn settle(&mut self) {
        if self.status == Status::Pending && self.cur >= self.steps.len() {
            self.status = Status::Approved;
        }
    }

    /// Applies an op; false when it is refused (the model is unchanged then).
    fn step(&mut self, op: &Op, flow: &[GenStep], restart_from_rejecting: bool) -> bool {
        match *op {
            Op::Approve(who) => {
                if !self.pending().contains(&who) {
                    return false;
                }
                self.got.insert(who);
                let (_, approvers, all) = &self.steps[self.cur];
                if !*all || approvers.is_subset(&self.got) {
                    self.cur += 1;
                    self.got.clear();
                    self.settle();
                }
                true
            }
            Op::Reject(who) => {
                if !self.pending().contains(&who) {
                    return false;
                }
                self.status = Status::Rejected;
                self.rejected_def = Some(self.steps[self.cur].0);
                self.got.clear();
                true
            }
            Op::Return(who, k) => {
                if !self.pending().contains(&who) || k >= self.cur {
                    return false;
                }
                self.cur = k;
                self.got.clear();
                true
            }
            Op::Withdraw(who) => {
                if who != APPLICANT || self.status != Status::Pending {
                    return false;
                }
                self.status = Status::Withdrawn;
                self.got.clear();
                true
            }
            Op::Resubmit(who, amount, ref picked) => {
                if who != APPLICANT
                    || !matches!(self.status, Status::Rejected | Status::Withdrawn)
                    || model_refuses(flow, amount, picked)
                {
                    return false;
                }
                // Only steps approved in the earlier round stay passed, and
                // only with the approvers who approved them (a step whose
                // approvers changed, e.g. another pick, is approved again).
                let passed: BTreeSet<(usize, BTreeSet<u128>)> = self.steps
                    [..self.cur.min(self.steps.len())]
                    .iter()
                    .map(|s| (s.0, s.1.clone()))
                    .collect();
                self.steps = model_resolve(flow, amount, picked);
                self.cur = match (self.status, self.rejected_def) {
                    // A raised amount restarts from the first step.
                    (Status::Rejected, Some(d))
                        if restart_from_rejecting && amount <= self.amount =>
                    {
                        self.steps
                            .iter()
                            .position(|s| s.0 >= d || !passed.contains(&(s.0, s.1.clone())))
                            .unwrap_or(self.steps.len())
                    }
                    _ => 0,
                };
                self.status = Status::Pending;
                self.rejected_def = None;
                self.amount = amount;
                self.got.clear();
                self.settle();
                true
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Approve(u128),
    Reject(u128),
    Return(u128, usize),
    Withdraw(u128),
    Resubmit(u128, i64, Vec<u128>),
}

fn user() -> impl Strategy<Value = u128> {
    1u128..=6
}

fn gen_step() -> impl Strategy<Value = GenStep> {
    (
        proptest::collection::vec(user(), 1..4),
        any::<bool>(),
        prop::bool::weighted(0.2),
        any::<bool>(),
        prop::option::weighted(0.3, 0i64..200),
    )
        .prop_map(|(users, all, picks, admins, min_amount)| GenStep {
            users,
            all,
            picks,
            admins,
            min_amount,
        })
}

fn gen_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => user().prop_map(Op::Approve),
        1 => user().prop_map(Op::Reject),
        1 => (user(), 0usize..4).prop_map(|(u, k)| Op::Return(u, k)),
        1 => user().prop_map(Op::Withdraw),
        1 => (user(), 0i64..200, proptest::collection::vec(user(), 0..3))
            .prop_map(|(u, a, p)| Op::Resubmit(u, a, p)),
    ]
}

fn to_flow(steps: &[GenStep], restart_from_rejecting: bool) -> FlowDef {
    FlowDef {
        steps: steps
            .iter()
            .enumerate()
            .map(|(i, s)| StepDef {
                name: format!("步骤{i}"),
                conditions: s
                    .min_amount
                    .map(|m| Condition::AmountAtLeast { minor: m })
                    .into_iter()
                    .collect(),
                approvers: if s.picks {
                    ApproverRule::ApplicantPicks
                } else {
                    ApproverRule::Users {
                        users: s.users.iter().map(|n| u(*n)).collect(),
                    }
                },
                mode: if s.all { SignMode::All } else { SignMode::Any },
                fallback: if s.admins {
                    Fallback::Admins
                } else {
                    Fallback::AutoPass
                },
            })
            .collect(),
        restart: if restart_from_rejecting {
            Restart::FromRejectingStep
        } else {
            Restart::FromFirst
        },
    }
}

fn run(
    inst: &Instance,
    op: &Op,
    flow: &FlowDef,
    d: &Directory,
) -> Result<(Instance, Vec<ActionRecord>), ApprovalError> {
    match op {
        Op::Approve(w) => inst.approve(u(*w), None),
        Op::Reject(w) => inst.reject(u(*w), RejectTo::Applicant, None),
        Op::Return(w, k) => inst.reject(u(*w), RejectTo::Step(*k), None),
        Op::Withdraw(w) => inst.withdraw(u(*w), None),
        Op::Resubmit(w, a, p) => inst.resubmit(
            flow,
            d,
            u(*w),
            amount(*a),
            p.iter().map(|n| u(*n)).collect(),
            None,
        ),
    }
}

fn as_set(v: Vec<Uuid>) -> BTreeSet<u128> {
    v.into_iter().map(|x| x.as_u128()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The engine agrees with the model on every action: which are allowed,
    /// the status, the current step and who may act; nobody outside the
    /// current step can approve or reject; an approved document is final
    /// and is never rejected afterwards.
    #[test]
    fn engine_matches_model(
        steps in proptest::collection::vec(gen_step(), 1..5),
        restart_from_rejecting in any::<bool>(),
        start_amount in 0i64..200,
        picked in proptest::collection::vec(user(), 0..3),
        ops in proptest::collection::vec(gen_op(), 0..40),
    ) {
        let flow = to_flow(&steps, restart_from_rejecting);
        let d = Directory {
            admins: vec![u(ADMIN)],
            active_users: (1..=6).map(u).collect(),
            ..Directory::default()
        };
        let submitted = Instance::submit(
            &flow, &d, u(APPLICANT), amount(start_amount),
            picked.iter().map(|n| u(*n)).collect(), None,
        );
        if model_refuses(&steps, start_amount, &picked) {
            prop_assert!(submitted.is_err(), "picks {:?} accepted", picked);
            return Ok(());
        }
        let (mut inst, rec) = submitted.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(rec[0].kind, ActionKind::Submit);
        let mut model = Model {
            status: Status::Pending,
            steps: model_resolve(&steps, start_amount, &picked),
            cur: 0,
            got: BTreeSet::new(),
            rejected_def: None,
            amount: start_amount,
        };
        model.settle();
        let mut ever_approved = inst.status == Status::Approved;
        for op in &ops {
            // Nobody outside the current step can act.
            let allowed = model.pending();
            for w in 1u128..=6 {
                if !allowed.contains(&w) {
                    prop_assert!(inst.approve(u(w), None).is_err());
                    prop_assert!(inst.reject(u(w), RejectTo::Applicant, None).is_err());
                }
            }
            let before = inst.status;
            let got = run(&inst, op, &flow, &d);
            let ok = model.step(op, &steps, restart_from_rejecting);
            prop_assert_eq!(got.is_ok(), ok, "op {:?} from {:?}", op, before);
            if let Ok((next, records)) = got {
                prop_assert!(!records.is_empty());
                if ever_approved {
                    prop_assert!(false, "an approved document changed: {:?}", op);
                }
                inst = next;
            }
            prop_assert_eq!(inst.status, model.status);
            prop_assert_eq!(as_set(inst.pending_approvers()), model.pending());
            if inst.status == Status::Pending {
                prop_assert_eq!(inst.current, model.cur);
            }
            if inst.status == Status::Approved {
                ever_approved = true;
                prop_assert!(inst.pending_approvers().is_empty());
            }
            prop_assert!(!(ever_approved && inst.status == Status::Rejected));
        }
    }
}
