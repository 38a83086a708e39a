use super::*;
use proptest::prelude::*;

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap_or_default()
}

#[test]
fn standard_pipeline_is_valid_and_moves_with_required_fields() {
    let p = PipelineDef::standard();
    p.validate().expect("valid");
    assert_eq!(
        p.stages.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        vec![
            "初期沟通",
            "立项评估",
            "需求分析",
            "方案制定",
            "招投标/竞争",
            "商务谈判",
            "合同签约"
        ]
    );
    let s = OppState::start(&p, t(0)).expect("start");
    assert_eq!(s.probability(&p), 10);
    let none = |_: &str| false;
    let all = |_: &str| true;
    assert_eq!(
        s.apply(&p, &StageCommand::MoveTo("assessment".into()), &none, t(10)),
        Err(StageError::Missing {
            stage: "立项评估".into(),
            missing: vec!["amount".into()]
        })
    );
    assert!(matches!(
        s.apply(&p, &StageCommand::MoveTo("needs".into()), &all, t(10)),
        Err(StageError::NotAllowed { .. })
    ));
    let s = s
        .apply(&p, &StageCommand::MoveTo("assessment".into()), &all, t(100))
        .expect("move");
    let s = s
        .apply(&p, &StageCommand::MoveTo("initial".into()), &all, t(150))
        .expect("back");
    let s = s
        .apply(&p, &StageCommand::Hold, &all, t(200))
        .expect("hold");
    assert!(
        s.apply(&p, &StageCommand::MoveTo("assessment".into()), &all, t(210))
            .is_err()
    );
    let s = s
        .apply(&p, &StageCommand::Resume, &all, t(300))
        .expect("resume");
    let s = s.apply(&p, &StageCommand::Win, &all, t(400)).expect("win");
    assert_eq!((s.status, s.stage.as_str()), (OppStatus::Won, "signing"));
    assert_eq!(s.probability(&p), 100);
    assert_eq!(
        s.time_per_stage(t(10_000)),
        vec![
            ("initial".to_string(), 100 + 250),
            ("assessment".to_string(), 50),
            ("signing".to_string(), 0)
        ]
    );
    assert!(s.apply(&p, &StageCommand::Reopen, &all, t(500)).is_err());
    let lost = OppState::start(&p, t(0)).expect("start").apply(
        &p,
        &StageCommand::Lose(" ".into()),
        &all,
        t(1),
    );
    assert_eq!(lost, Err(StageError::NoReason));
}

#[test]
fn winning_requires_what_every_stage_requires() {
    let p = PipelineDef::standard();
    let s = OppState::start(&p, t(0)).expect("start");
    let only_amount = |f: &str| f == "amount";
    assert_eq!(
        s.apply(&p, &StageCommand::Win, &only_amount, t(10)),
        Err(StageError::Missing {
            stage: "合同签约".into(),
            missing: vec!["expected_close".into(), "products".into()],
        })
    );
    let all = |_: &str| true;
    let won = s.apply(&p, &StageCommand::Win, &all, t(20)).expect("win");
    assert_eq!(
        (won.status, won.stage.as_str()),
        (OppStatus::Won, "signing")
    );
}

#[test]
fn invalid_pipelines_are_refused() {
    let mut p = PipelineDef::standard();
    p.stages[1].next.push("nowhere".into());
    assert!(p.validate().is_err());
    let mut p = PipelineDef::standard();
    p.stages[2].probability = 101;
    assert!(p.validate().is_err());
    let mut p = PipelineDef::standard();
    p.stages[2].key = "initial".into();
    assert!(p.validate().is_err());
    let mut p = PipelineDef::standard();
    p.stages[2].required.push("colour".into());
    assert!(p.validate().is_err());
    assert!(PipelineDef { stages: vec![] }.validate().is_err());
}

#[derive(Clone, Debug)]
enum Cmd {
    Move(usize),
    Win,
    Lose(bool),
    Hold,
    Resume,
    Expire,
    Reopen,
}

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        6 => (0usize..8).prop_map(Cmd::Move),
        1 => Just(Cmd::Win),
        1 => any::<bool>().prop_map(Cmd::Lose),
        1 => Just(Cmd::Hold),
        1 => Just(Cmd::Resume),
        1 => Just(Cmd::Expire),
        1 => Just(Cmd::Reopen),
    ]
}

/// The model: stage index and status, with the standard pipeline's rules
/// stated directly (forward one, back any; required fields as filled).
#[derive(Debug)]
struct Model {
    stage: usize,
    status: OppStatus,
}

const REQUIRED: [Option<&str>; 7] = [
    None,
    Some("amount"),
    Some("expected_close"),
    None,
    None,
    Some("products"),
    None,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The stage machine agrees with the model; the stage is always one of
    /// the pipeline's; a won opportunity never changes; the history is
    /// contiguous with exactly one open visit while open, and the time per
    /// stage adds up to the time since creation.
    #[test]
    fn stage_machine_matches_model(
        filled_mask in 0u8..8,
        cmds in proptest::collection::vec((cmd(), 1i64..1000), 0..40),
    ) {
        let p = PipelineDef::standard();
        let filled_fields: Vec<&str> = ["amount", "expected_close", "products"]
            .into_iter()
            .enumerate()
            .filter(|(i, _)| filled_mask & (1 << i) != 0)
            .map(|(_, f)| f)
            .collect();
        let filled = |f: &str| filled_fields.contains(&f);
        let mut s = OppState::start(&p, t(0)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut m = Model { stage: 0, status: OppStatus::Tracking };
        let mut now = 0;
        for (c, dt) in cmds {
            now += dt;
            let ok_req = |i: usize| REQUIRED[i].is_none_or(filled);
            let expected_ok = match c {
                Cmd::Move(i) => m.status == OppStatus::Tracking && i < 7 && (i == m.stage + 1 || i < m.stage) && ok_req(i),
                Cmd::Win => m.status == OppStatus::Tracking && (0..7).all(ok_req),
                Cmd::Lose(reason) => reason && matches!(m.status, OppStatus::Tracking | OppStatus::OnHold),
                Cmd::Hold => m.status == OppStatus::Tracking,
                Cmd::Resume => m.status == OppStatus::OnHold,
                Cmd::Expire => matches!(m.status, OppStatus::Tracking | OppStatus::OnHold),
                Cmd::Reopen => matches!(m.status, OppStatus::Lost | OppStatus::Expired),
            };
            let command = match c {
                Cmd::Move(i) => StageCommand::MoveTo(p.stages.get(i).map_or("nowhere".to_string(), |s| s.key.clone())),
                Cmd::Win => StageCommand::Win,
                Cmd::Lose(r) => StageCommand::Lose(if r { "价格".into() } else { String::new() }),
                Cmd::Hold => StageCommand::Hold,
                Cmd::Resume => StageCommand::Resume,
                Cmd::Expire => StageCommand::Expire,
                Cmd::Reopen => StageCommand::Reopen,
            };
            let was_won = s.status == OppStatus::Won;
            let got = s.apply(&p, &command, &filled, t(now));
            prop_assert_eq!(got.is_ok(), expected_ok, "{:?} from {:?}", c, m);
            if let Ok(next) = got {
                prop_assert!(!was_won, "a won opportunity changed");
                s = next;
                match c {
                    Cmd::Move(i) => m.stage = i,
                    Cmd::Win => { m.stage = 6; m.status = OppStatus::Won; }
                    Cmd::Lose(_) => m.status = OppStatus::Lost,
                    Cmd::Hold => m.status = OppStatus::OnHold,
                    Cmd::Resume | Cmd::Reopen => m.status = OppStatus::Tracking,
                    Cmd::Expire => m.status = OppStatus::Expired,
                }
            }
            prop_assert_eq!(&s.stage, &p.stages[m.stage].key);
            prop_assert_eq!(s.status, m.status);
            prop_assert!(p.stage(&s.stage).is_some());
            // History: contiguous, last visit is the current stage, open iff active.
            for w in s.history.windows(2) {
                prop_assert!(w[0].left_at.is_some());
                prop_assert!(w[0].left_at <= Some(w[1].entered_at));
            }
            let last = s.history.last().ok_or_else(|| TestCaseError::fail("no history"))?;
            prop_assert_eq!(&last.stage, &s.stage);
            let open = matches!(s.status, OppStatus::Tracking | OppStatus::OnHold);
            prop_assert_eq!(last.left_at.is_none(), open);
            if open {
                // Time spent adds up, minus the gaps while closed (none without reopen).
                let total: i64 = s.time_per_stage(t(now)).iter().map(|(_, x)| x).sum();
                let gaps: i64 = s.history.windows(2)
                    .map(|w| (w[1].entered_at - w[0].left_at.unwrap_or(w[1].entered_at)).num_seconds())
                    .sum();
                prop_assert_eq!(total + gaps, now);
            }
            let prob = s.probability(&p);
            match s.status {
                OppStatus::Won => prop_assert_eq!(prob, 100),
                OppStatus::Lost | OppStatus::Expired => prop_assert_eq!(prob, 0),
                _ => prop_assert_eq!(prob, p.stages[m.stage].probability),
            }
        }
    }
}
