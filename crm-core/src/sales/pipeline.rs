//! Sales pipelines and the opportunity stage machine (销售阶段), pure.
//!
//! A [`PipelineDef`] lists ordered stages with a win probability, the fields
//! an opportunity must have before entering each, and the stages one may
//! move to from each. [`OppState::apply`] is the only place where stage and
//! status change; it also keeps the stage history (time spent per stage).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One stage of a pipeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageDef {
    /// A stable key, e.g. `initial`.
    pub key: String,
    /// The name shown, e.g. `初期沟通`.
    pub name: String,
    /// The win probability in percent (0–100).
    pub probability: u8,
    /// Opportunity fields that must be filled before entering the stage
    /// (`amount`, `expected_close`, `products`, `competitors`, `source`,
    /// `notes`).
    #[serde(default)]
    pub required: Vec<String>,
    /// The stages one may move to from this one.
    #[serde(default)]
    pub next: Vec<String>,
}

/// A pipeline definition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineDef {
    /// The stages, in order; the first is where opportunities start, the
    /// last is where won opportunities end.
    pub stages: Vec<StageDef>,
}

/// Fields an opportunity stage may require.
pub const REQUIRABLE_FIELDS: [&str; 6] = [
    "amount",
    "expected_close",
    "products",
    "competitors",
    "source",
    "notes",
];

impl PipelineDef {
    /// The default pipeline: 初期沟通 → 立项评估 → 需求分析 → 方案制定 →
    /// 招投标/竞争 → 商务谈判 → 合同签约; each stage may move one forward or
    /// back to any earlier stage.
    pub fn standard() -> PipelineDef {
        let raw: [(&str, &str, u8, &[&str]); 7] = [
            ("initial", "初期沟通", 10, &[]),
            ("assessment", "立项评估", 20, &["amount"]),
            ("needs", "需求分析", 30, &["expected_close"]),
            ("proposal", "方案制定", 50, &[]),
            ("bidding", "招投标/竞争", 60, &[]),
            ("negotiation", "商务谈判", 80, &["products"]),
            ("signing", "合同签约", 90, &[]),
        ];
        let keys: Vec<&str> = raw.iter().map(|r| r.0).collect();
        PipelineDef {
            stages: raw
                .iter()
                .enumerate()
                .map(|(i, (key, name, p, req))| StageDef {
                    key: (*key).into(),
                    name: (*name).into(),
                    probability: *p,
                    required: req.iter().map(|s| (*s).to_string()).collect(),
                    next: keys
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j < i || *j == i + 1)
                        .map(|(_, k)| (*k).to_string())
                        .collect(),
                })
                .collect(),
        }
    }

    /// Checks the definition: stages present, keys unique and non-empty,
    /// probabilities ≤ 100, transitions and required fields known.
    pub fn validate(&self) -> Result<(), String> {
        if self.stages.is_empty() {
            return Err("a pipeline needs at least one stage".into());
        }
        for (i, s) in self.stages.iter().enumerate() {
            if s.key.trim().is_empty() || s.name.trim().is_empty() {
                return Err(format!("stage {} needs a key and a name", i + 1));
            }
            if self.stages[..i].iter().any(|o| o.key == s.key) {
                return Err(format!("stage key {} is used twice", s.key));
            }
            if s.probability > 100 {
                return Err(format!(
                    "stage {}: probability {} is above 100",
                    s.name, s.probability
                ));
            }
            for n in &s.next {
                if !self.stages.iter().any(|o| &o.key == n) {
                    return Err(format!("stage {} moves to unknown stage {n}", s.name));
                }
            }
            for f in &s.required {
                if !REQUIRABLE_FIELDS.contains(&f.as_str()) {
                    return Err(format!(
                        "stage {} requires unknown field {f}; known: {}",
                        s.name,
                        REQUIRABLE_FIELDS.join(", ")
                    ));
                }
            }
        }
        Ok(())
    }

    /// The stage with the key.
    pub fn stage(&self, key: &str) -> Option<&StageDef> {
        self.stages.iter().find(|s| s.key == key)
    }

    /// The first stage.
    pub fn first(&self) -> Option<&StageDef> {
        self.stages.first()
    }

    /// The last stage.
    pub fn last(&self) -> Option<&StageDef> {
        self.stages.last()
    }
}

/// The status of an opportunity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OppStatus {
    /// Being worked on (跟踪).
    Tracking,
    /// Won (成功); final.
    Won,
    /// Lost, with a reason (失败).
    Lost,
    /// On hold (搁置).
    OnHold,
    /// Expired (失效).
    Expired,
}

impl OppStatus {
    /// Every status.
    pub const ALL: [OppStatus; 5] = [
        OppStatus::Tracking,
        OppStatus::Won,
        OppStatus::Lost,
        OppStatus::OnHold,
        OppStatus::Expired,
    ];

    /// The API name.
    pub fn name(self) -> &'static str {
        match self {
            OppStatus::Tracking => "tracking",
            OppStatus::Won => "won",
            OppStatus::Lost => "lost",
            OppStatus::OnHold => "on_hold",
            OppStatus::Expired => "expired",
        }
    }

    /// The English label, as messages name the status (`on hold`, not
    /// the API name `on_hold`).
    pub fn label_en(self) -> &'static str {
        match self {
            OppStatus::Tracking => "tracking",
            OppStatus::Won => "won",
            OppStatus::Lost => "lost",
            OppStatus::OnHold => "on hold",
            OppStatus::Expired => "expired",
        }
    }

    /// The Chinese label.
    pub fn label_zh(self) -> &'static str {
        match self {
            OppStatus::Tracking => "跟踪",
            OppStatus::Won => "成功",
            OppStatus::Lost => "失败",
            OppStatus::OnHold => "搁置",
            OppStatus::Expired => "失效",
        }
    }

    /// Parses an API name or Chinese label.
    pub fn parse(s: &str) -> Option<OppStatus> {
        OppStatus::ALL
            .into_iter()
            .find(|x| x.name() == s.trim() || x.label_zh() == s.trim())
    }
}

impl fmt::Display for OppStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One stay in a stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageVisit {
    /// The stage key.
    pub stage: String,
    /// When the opportunity entered it.
    pub entered_at: DateTime<Utc>,
    /// When it left (or closed); `None` while there.
    pub left_at: Option<DateTime<Utc>>,
}

/// What can be done to an opportunity's stage and status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", content = "arg", rename_all = "snake_case")]
pub enum StageCommand {
    /// Move to another stage (allowed transitions and required fields apply).
    MoveTo(String),
    /// Mark won: moves to the last stage; the fields every stage of the
    /// pipeline requires apply (winning passes them all).
    Win,
    /// Mark lost, with a reason.
    Lose(String),
    /// Put on hold.
    Hold,
    /// Resume a held opportunity.
    Resume,
    /// Mark expired.
    Expire,
    /// Reopen a lost or expired opportunity.
    Reopen,
}

/// Why a stage command was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StageError {
    /// The command does not apply in this status; the message names the
    /// status in both languages and what can be done instead.
    #[error(
        "cannot {command} an opportunity that is {} ({}){}",
        .status.label_en(),
        .status.label_zh(),
        status_hint(.command, .status)
    )]
    Status {
        /// The command.
        command: &'static str,
        /// The current status.
        status: OppStatus,
    },
    /// The stage is not in the pipeline.
    #[error("stage {0} is not in the pipeline")]
    UnknownStage(String),
    /// The move is not an allowed transition.
    #[error("cannot move from {from} to {to}")]
    NotAllowed {
        /// The current stage's name.
        from: String,
        /// The target stage's name.
        to: String,
    },
    /// Fields required by the target stage are empty.
    #[error("{stage} requires {}", .missing.join(", "))]
    Missing {
        /// The target stage's name.
        stage: String,
        /// The empty fields.
        missing: Vec<String>,
    },
    /// A loss needs a reason.
    #[error("a lost opportunity needs a reason")]
    NoReason,
}

/// What to do instead of a stage `command` refused in `status`.
fn status_hint(command: &str, status: &OppStatus) -> &'static str {
    match (status, command) {
        (OppStatus::Lost | OppStatus::Expired, "reopen") => "",
        (OppStatus::Lost | OppStatus::Expired, _) => {
            "; reopen it first (重新打开), which returns it to the stage it was closed in"
        }
        (OppStatus::OnHold, "move" | "win" | "hold") => "; resume it first (恢复跟踪)",
        (OppStatus::Won, _) => "; a won opportunity is final (赢单后不再变更)",
        (OppStatus::Tracking | OppStatus::OnHold, "reopen") => {
            "; only a lost or expired opportunity is reopened"
        }
        (OppStatus::Tracking, "resume") => "; only an opportunity on hold is resumed",
        _ => "",
    }
}

/// The stage machine state of an opportunity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OppState {
    /// The current stage key.
    pub stage: String,
    /// The status.
    pub status: OppStatus,
    /// The stage history, oldest first.
    pub history: Vec<StageVisit>,
    /// Why it was lost.
    pub lost_reason: Option<String>,
}

impl OppState {
    /// A new opportunity in the pipeline's first stage.
    pub fn start(pipeline: &PipelineDef, now: DateTime<Utc>) -> Result<OppState, StageError> {
        let first = pipeline
            .first()
            .ok_or_else(|| StageError::UnknownStage(String::new()))?;
        Ok(OppState {
            stage: first.key.clone(),
            status: OppStatus::Tracking,
            history: vec![StageVisit {
                stage: first.key.clone(),
                entered_at: now,
                left_at: None,
            }],
            lost_reason: None,
        })
    }

    /// The win probability in percent: the stage's while open, 100 when
    /// won, 0 when lost or expired.
    pub fn probability(&self, pipeline: &PipelineDef) -> u8 {
        match self.status {
            OppStatus::Won => 100,
            OppStatus::Lost | OppStatus::Expired => 0,
            OppStatus::Tracking | OppStatus::OnHold => {
                pipeline.stage(&self.stage).map_or(0, |s| s.probability)
            }
        }
    }

    /// Seconds spent per stage (in order of first visit), counting an open
    /// visit up to `now`.
    pub fn time_per_stage(&self, now: DateTime<Utc>) -> Vec<(String, i64)> {
        let mut out: Vec<(String, i64)> = Vec::new();
        for v in &self.history {
            let secs = (v.left_at.unwrap_or(now) - v.entered_at)
                .num_seconds()
                .max(0);
            match out.iter_mut().find(|(k, _)| *k == v.stage) {
                Some((_, total)) => *total += secs,
                None => out.push((v.stage.clone(), secs)),
            }
        }
        out
    }

    fn close_visit(&mut self, now: DateTime<Utc>) {
        if let Some(v) = self.history.last_mut()
            && v.left_at.is_none()
        {
            v.left_at = Some(now);
        }
    }

    fn enter(&mut self, stage: &str, now: DateTime<Utc>) {
        self.close_visit(now);
        self.stage = stage.to_string();
        self.history.push(StageVisit {
            stage: stage.to_string(),
            entered_at: now,
            left_at: None,
        });
    }

    /// Applies a command. `filled` tells whether an opportunity field has a
    /// value (for required fields). Returns the new state or why not.
    pub fn apply(
        &self,
        pipeline: &PipelineDef,
        command: &StageCommand,
        filled: &dyn Fn(&str) -> bool,
        now: DateTime<Utc>,
    ) -> Result<OppState, StageError> {
        let refuse = |command: &'static str| StageError::Status {
            command,
            status: self.status,
        };
        let require = |target: &StageDef| {
            let missing: Vec<String> = target
                .required
                .iter()
                .filter(|f| !filled(f))
                .cloned()
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(StageError::Missing {
                    stage: target.name.clone(),
                    missing,
                })
            }
        };
        let mut next = self.clone();
        match command {
            StageCommand::MoveTo(key) => {
                if self.status != OppStatus::Tracking {
                    return Err(refuse("move"));
                }
                let target = pipeline
                    .stage(key)
                    .ok_or_else(|| StageError::UnknownStage(key.clone()))?;
                let current = pipeline
                    .stage(&self.stage)
                    .ok_or_else(|| StageError::UnknownStage(self.stage.clone()))?;
                if !current.next.iter().any(|n| n == key) {
                    return Err(StageError::NotAllowed {
                        from: current.name.clone(),
                        to: target.name.clone(),
                    });
                }
                require(target)?;
                next.enter(key, now);
            }
            StageCommand::Win => {
                if self.status != OppStatus::Tracking {
                    return Err(refuse("win"));
                }
                let last = pipeline
                    .last()
                    .ok_or_else(|| StageError::UnknownStage(String::new()))?;
                // Winning passes every stage up to the last: whatever the
                // pipeline requires anywhere on the way is required.
                let mut missing: Vec<String> = Vec::new();
                for f in pipeline.stages.iter().flat_map(|s| &s.required) {
                    if !filled(f) && !missing.contains(f) {
                        missing.push(f.clone());
                    }
                }
                if !missing.is_empty() {
                    return Err(StageError::Missing {
                        stage: last.name.clone(),
                        missing,
                    });
                }
                if self.stage != last.key {
                    next.enter(&last.key, now);
                }
                next.close_visit(now);
                next.status = OppStatus::Won;
            }
            StageCommand::Lose(reason) => {
                if !matches!(self.status, OppStatus::Tracking | OppStatus::OnHold) {
                    return Err(refuse("lose"));
                }
                if reason.trim().is_empty() {
                    return Err(StageError::NoReason);
                }
                next.close_visit(now);
                next.status = OppStatus::Lost;
                next.lost_reason = Some(reason.trim().to_string());
            }
            StageCommand::Hold => {
                if self.status != OppStatus::Tracking {
                    return Err(refuse("hold"));
                }
                next.status = OppStatus::OnHold;
            }
            StageCommand::Resume => {
                if self.status != OppStatus::OnHold {
                    return Err(refuse("resume"));
                }
                next.status = OppStatus::Tracking;
            }
            StageCommand::Expire => {
                if !matches!(self.status, OppStatus::Tracking | OppStatus::OnHold) {
                    return Err(refuse("expire"));
                }
                next.close_visit(now);
                next.status = OppStatus::Expired;
            }
            StageCommand::Reopen => {
                if !matches!(self.status, OppStatus::Lost | OppStatus::Expired) {
                    return Err(refuse("reopen"));
                }
                let stage = self.stage.clone();
                next.enter(&stage, now);
                next.status = OppStatus::Tracking;
                next.lost_reason = None;
            }
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests;
