//! Organisation and accounts: companies, the department tree, roles, user
//! groups, users with superiors, and local credentials for hosts without a
//! login of their own.

use crate::auth::{Action, Actor, FieldRule, Permission, Role};
use crate::crm::{Crm, json_ids, role_from_row, subtree};
use crate::entity::Entity;
use crate::error::{Error, Result, ValidationErrors};
use crate::ids::{CompanyId, DepartmentId, GroupId, RoleId, UserId};
use crate::schema::Table;
use crate::store::{ChangeSet, CmpOp, Col, FieldChange, Filter, Op, Row, Select};
use crate::value::Value;
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A company (tenant).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Company {
    /// The id.
    pub id: CompanyId,
    /// The name.
    pub name: String,
    /// A unique short code (used to log in).
    pub code: String,
}

/// A department.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Department {
    /// The id.
    pub id: DepartmentId,
    /// The name.
    pub name: String,
    /// The parent, none for the root.
    pub parent_id: Option<DepartmentId>,
    /// The record version.
    pub version: i64,
}

/// A user group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserGroup {
    /// The id.
    pub id: GroupId,
    /// The name.
    pub name: String,
    /// The members.
    pub members: Vec<UserId>,
    /// The record version.
    pub version: i64,
}

/// A user (never includes the password hash).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// The id.
    pub id: UserId,
    /// The company.
    pub company_id: CompanyId,
    /// The login name, unique in the company.
    pub username: String,
    /// The name shown.
    pub display_name: String,
    /// The department.
    pub department_id: Option<DepartmentId>,
    /// The superior (上级).
    pub superior_id: Option<UserId>,
    /// The roles.
    pub role_ids: Vec<RoleId>,
    /// E-mail.
    pub email: Option<String>,
    /// Mobile.
    pub mobile: Option<String>,
    /// Whether the user may act.
    pub active: bool,
    /// Whether a local password is set.
    pub has_password: bool,
    /// Locked after failed logins until then.
    pub locked_until: Option<DateTime<Utc>>,
    /// The record version.
    pub version: i64,
}

/// What bootstrapping a company needs.
#[derive(Clone, Debug)]
pub struct NewCompany {
    /// The company name.
    pub name: String,
    /// A unique short code.
    pub code: String,
    /// The first administrator's login name.
    pub admin_username: String,
    /// The first administrator's display name.
    pub admin_display_name: String,
    /// The first administrator's password, if local login is used.
    pub admin_password: Option<String>,
}

/// A new user.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NewUser {
    /// Login name.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Department.
    pub department_id: Option<DepartmentId>,
    /// Superior.
    pub superior_id: Option<UserId>,
    /// Roles.
    pub role_ids: Vec<RoleId>,
    /// E-mail.
    pub email: Option<String>,
    /// Mobile.
    pub mobile: Option<String>,
    /// Initial password.
    pub password: Option<String>,
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct UserPatch {
    /// Display name.
    pub display_name: Option<String>,
    /// Department (`Some(None)` clears it).
    pub department_id: Option<Option<DepartmentId>>,
    /// Superior (`Some(None)` clears it).
    pub superior_id: Option<Option<UserId>>,
    /// Roles.
    pub role_ids: Option<Vec<RoleId>>,
    /// E-mail (`Some(None)` clears it).
    pub email: Option<Option<String>>,
    /// Mobile (`Some(None)` clears it).
    pub mobile: Option<Option<String>>,
    /// Active flag.
    pub active: Option<bool>,
}

/// A new or changed role.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RoleSpec {
    /// Name.
    pub name: String,
    /// Administrator role.
    pub is_admin: bool,
    /// Grants.
    pub permissions: Vec<Permission>,
    /// Field rules.
    pub field_rules: Vec<FieldRule>,
}

fn text(r: &Row, c: &str) -> String {
    r.get(c).as_text().unwrap_or_default().to_string()
}

fn opt_text(r: &Row, c: &str) -> Option<String> {
    r.get(c).as_text().map(str::to_string)
}

pub(crate) fn user_from_row(r: &Row) -> User {
    User {
        id: UserId(r.id()),
        company_id: CompanyId(r.get("company_id").as_id().unwrap_or_default()),
        username: text(r, "username"),
        display_name: text(r, "display_name"),
        department_id: r.get("department_id").as_id().map(DepartmentId),
        superior_id: r.get("superior_id").as_id().map(UserId),
        role_ids: json_ids(r.get("role_ids"))
            .into_iter()
            .map(RoleId)
            .collect(),
        email: opt_text(r, "email"),
        mobile: opt_text(r, "mobile"),
        active: r.get("active").as_bool().unwrap_or(false),
        has_password: !r.get("password_hash").is_null(),
        locked_until: r.get("locked_until").as_timestamp(),
        version: r.version(),
    }
}

fn department_from_row(r: &Row) -> Department {
    Department {
        id: DepartmentId(r.id()),
        name: text(r, "name"),
        parent_id: r.get("parent_id").as_id().map(DepartmentId),
        version: r.version(),
    }
}

fn group_from_row(r: &Row) -> UserGroup {
    UserGroup {
        id: GroupId(r.id()),
        name: text(r, "name"),
        members: json_ids(r.get("member_ids"))
            .into_iter()
            .map(UserId)
            .collect(),
        version: r.version(),
    }
}

fn ids_json<T: Copy + Into<Uuid>>(ids: &[T]) -> Value {
    Value::Json(serde_json::Value::Array(
        ids.iter()
            .map(|i| serde_json::Value::String((*i).into().to_string()))
            .collect(),
    ))
}

macro_rules! into_uuid {
    ($($t:ty),*) => {$(impl From<$t> for Uuid { fn from(v: $t) -> Uuid { v.0 } })*};
}
into_uuid!(RoleId, UserId, DepartmentId, GroupId);

fn non_empty(errors: &mut ValidationErrors, field: &str, value: &str, max: usize) {
    let n = value.trim().chars().count();
    if n == 0 {
        errors.push(field, "is required");
    } else if n > max {
        errors.push(field, format!("'{value}' is longer than {max} characters"));
    }
}

impl Crm {
    fn require(&self, actor: &Actor, entity: Entity, action: Action) -> Result<()> {
        if actor.can(entity, action) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "{} may not {} {}s",
                actor.display_name,
                action,
                entity.name()
            )))
        }
    }

    fn hash_password(&self, password: &str) -> Result<String> {
        if password.chars().count() < self.config.min_password_len {
            return Err(Error::invalid(
                "password",
                format!(
                    "must be at least {} characters long",
                    self.config.min_password_len
                ),
            ));
        }
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| Error::InvalidState(format!("cannot hash the password: {e}")))
    }

    /// Creates a company with its root department, an administrator role and
    /// its first administrator. This is the only operation without an actor.
    pub async fn bootstrap(&self, input: NewCompany) -> Result<(Company, UserId)> {
        let mut errors = ValidationErrors::default();
        non_empty(&mut errors, "name", &input.name, 128);
        non_empty(&mut errors, "code", &input.code, 32);
        non_empty(&mut errors, "admin_username", &input.admin_username, 64);
        non_empty(
            &mut errors,
            "admin_display_name",
            &input.admin_display_name,
            64,
        );
        errors.into_result()?;
        let hash = match &input.admin_password {
            Some(p) => Some(self.hash_password(p)?),
            None => None,
        };
        let company = self.new_id();
        let dept = self.new_id();
        let role = self.new_id();
        let user = self.new_id();
        let common = |id: Uuid| [self.new_row(company, id), vec![]].concat();
        let mut cs = ChangeSet::default();
        let mut v = common(company);
        // Company rows belong to the system tenant (the nil UUID).
        v[1] = ("company_id", Value::Id(Uuid::nil()));
        v.push(("name", input.name.trim().into()));
        v.push(("code", input.code.trim().into()));
        cs.ops.push(Op::Insert {
            table: Table::Companies,
            values: v,
        });
        let mut v = common(dept);
        v.push(("name", input.name.trim().into()));
        v.push(("parent_id", Value::Null));
        v.push(("position", Value::Int(0)));
        cs.ops.push(Op::Insert {
            table: Table::Departments,
            values: v,
        });
        let mut v = common(role);
        v.push(("name", "管理员".into()));
        v.push(("is_admin", true.into()));
        v.push(("permissions", Value::Json(serde_json::json!([]))));
        v.push(("field_rules", Value::Json(serde_json::json!([]))));
        cs.ops.push(Op::Insert {
            table: Table::Roles,
            values: v,
        });
        let mut v = common(user);
        v.extend(self.user_values(
            &input.admin_username,
            &input.admin_display_name,
            Some(dept),
            None,
            &[RoleId(role)],
            None,
            None,
        ));
        v.push(("active", true.into()));
        v.push(("password_hash", hash.into()));
        v.push(("failed_logins", Value::Int(0)));
        v.push(("locked_until", Value::Null));
        cs.ops.push(Op::Insert {
            table: Table::Users,
            values: v,
        });
        cs.audit.push(self.audit(
            None,
            company,
            Table::Companies,
            company,
            "create",
            Vec::new(),
        ));
        cs.events.push(self.event(
            company,
            Table::Companies,
            company,
            "company.created".into(),
            serde_json::json!({"name": input.name.trim(), "code": input.code.trim(), "admin_user_id": user}),
        ));
        self.apply(cs).await.map_err(|e| match e {
            Error::Duplicate { .. } => Error::Duplicate {
                entity: "company".into(),
                message: format!("a company with code '{}' already exists", input.code.trim()),
            },
            other => other,
        })?;
        Ok((
            Company {
                id: CompanyId(company),
                name: input.name.trim().to_string(),
                code: input.code.trim().to_string(),
            },
            UserId(user),
        ))
    }

    /// Finds a company by its code.
    pub async fn company_by_code(&self, code: &str) -> Result<Company> {
        self.list_companies()
            .await?
            .into_iter()
            .find(|c| c.code == code.trim())
            .ok_or_else(|| Error::not_found("company", code))
    }

    /// Every company in the store (for hosts that list tenants). Company rows
    /// belong to the system tenant, the nil UUID.
    pub async fn list_companies(&self) -> Result<Vec<Company>> {
        let mut sel = Select::all(Table::Companies, Uuid::nil(), self.now());
        sel.sort = vec![crate::store::Sort {
            col: Col::Column("code"),
            desc: false,
        }];
        Ok(self
            .store
            .select(&sel)
            .await?
            .rows
            .iter()
            .map(|r| Company {
                id: CompanyId(r.id()),
                name: text(r, "name"),
                code: text(r, "code"),
            })
            .collect())
    }

    /// Loads a company.
    pub async fn company(&self, id: CompanyId) -> Result<Company> {
        let r = self
            .store
            .get(Table::Companies, id.0)
            .await?
            .ok_or_else(|| Error::not_found("company", id))?;
        Ok(Company {
            id,
            name: text(&r, "name"),
            code: text(&r, "code"),
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn user_values(
        &self,
        username: &str,
        display_name: &str,
        department: Option<Uuid>,
        superior: Option<Uuid>,
        roles: &[RoleId],
        email: Option<String>,
        mobile: Option<String>,
    ) -> Vec<(&'static str, Value)> {
        vec![
            ("username", username.trim().into()),
            ("display_name", display_name.trim().into()),
            (
                "pinyin_keys",
                crate::pinyin::search_keys(display_name).into(),
            ),
            ("department_id", department.into()),
            ("superior_id", superior.into()),
            ("role_ids", ids_json(roles)),
            ("email", email.into()),
            ("mobile", mobile.into()),
        ]
    }

    async fn check_department(&self, actor: &Actor, id: DepartmentId) -> Result<()> {
        self.live_row(actor, Table::Departments, id.0)
            .await
            .map(|_| ())
    }

    async fn check_roles(&self, actor: &Actor, ids: &[RoleId]) -> Result<()> {
        for r in ids {
            self.live_row(actor, Table::Roles, r.0).await?;
        }
        Ok(())
    }

    fn check_contact_details(
        email: Option<&str>,
        mobile: Option<&str>,
        errors: &mut ValidationErrors,
    ) -> (Option<String>, Option<String>) {
        let email = email.filter(|s| !s.trim().is_empty()).and_then(|e| {
            crate::validate::email(e)
                .map_err(|m| errors.push("email", m))
                .ok()
        });
        let mobile = mobile.filter(|s| !s.trim().is_empty()).and_then(|m| {
            crate::validate::mobile(m)
                .map_err(|msg| errors.push("mobile", msg))
                .ok()
        });
        (email, mobile)
    }

    /// Creates a user (needs `user:manage`). Usernames are unique per company.
    pub async fn create_user(&self, actor: &Actor, input: NewUser) -> Result<User> {
        self.require(actor, Entity::User, Action::Manage)?;
        let mut errors = ValidationErrors::default();
        non_empty(&mut errors, "username", &input.username, 64);
        non_empty(&mut errors, "display_name", &input.display_name, 64);
        let (email, mobile) = Self::check_contact_details(
            input.email.as_deref(),
            input.mobile.as_deref(),
            &mut errors,
        );
        errors.into_result()?;
        if let Some(d) = input.department_id {
            self.check_department(actor, d).await?;
        }
        if let Some(s) = input.superior_id {
            self.live_row(actor, Table::Users, s.0).await?;
        }
        self.check_roles(actor, &input.role_ids).await?;
        if self.user_by_username(actor, &input.username).await.is_ok() {
            return Err(Error::Duplicate {
                entity: "user".into(),
                message: format!("username '{}' is already taken", input.username.trim()),
            });
        }
        let hash = match &input.password {
            Some(p) => Some(self.hash_password(p)?),
            None => None,
        };
        let id = self.new_id();
        let mut values = [self.new_row(actor.company_id.0, id), vec![]].concat();
        values.extend(self.user_values(
            &input.username,
            &input.display_name,
            input.department_id.map(|d| d.0),
            input.superior_id.map(|s| s.0),
            &input.role_ids,
            email,
            mobile,
        ));
        values.push(("active", true.into()));
        values.push(("password_hash", hash.into()));
        values.push(("failed_logins", Value::Int(0)));
        values.push(("locked_until", Value::Null));
        let mut cs = ChangeSet::default();
        cs.ops.push(Op::Insert {
            table: Table::Users,
            values,
        });
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::Users,
            id,
            "create",
            vec![FieldChange {
                field: "username".into(),
                before: serde_json::Value::Null,
                after: input.username.trim().into(),
            }],
        ));
        cs.events.push(self.event(
            actor.company_id.0,
            Table::Users,
            id,
            "user.created".into(),
            serde_json::json!({"username": input.username.trim(), "display_name": input.display_name.trim()}),
        ));
        self.apply(cs).await?;
        self.user(actor, UserId(id)).await
    }

    /// Loads a user of the actor's company.
    pub async fn user(&self, actor: &Actor, id: UserId) -> Result<User> {
        Ok(user_from_row(
            &self.live_row(actor, Table::Users, id.0).await?,
        ))
    }

    /// Finds a user of the actor's company by login name.
    pub async fn user_by_username(&self, actor: &Actor, username: &str) -> Result<User> {
        let mut sel = Select::all(Table::Users, actor.company_id.0, self.now());
        sel.filter = Filter::Cmp(Col::Column("username"), CmpOp::Eq, username.trim().into());
        let rows = self.store.select(&sel).await?.rows;
        rows.first()
            .map(user_from_row)
            .ok_or_else(|| Error::not_found("user", username))
    }

    /// Finds a user by id, or by username when `key` is not a UUID.
    pub async fn resolve_user(&self, actor: &Actor, key: &str) -> Result<User> {
        match key.parse::<UserId>() {
            Ok(id) => self.user(actor, id).await,
            Err(_) => self.user_by_username(actor, key).await,
        }
    }

    /// Lists the company's users, optionally matching a search text against
    /// usernames, display names and pinyin keys. Every user may list users.
    pub async fn list_users(&self, actor: &Actor, search: Option<&str>) -> Result<Vec<User>> {
        let mut sel = Select::all(Table::Users, actor.company_id.0, self.now());
        if let Some(q) = search.filter(|q| !q.trim().is_empty()) {
            sel.filter = Filter::Or(vec![
                Filter::Contains(Col::Column("username"), q.trim().to_string()),
                Filter::Contains(Col::Column("display_name"), q.trim().to_string()),
                Filter::Contains(
                    Col::Column("pinyin_keys"),
                    crate::pinyin::normalise_query(q),
                ),
            ]);
        }
        sel.sort = vec![crate::store::Sort {
            col: Col::Column("username"),
            desc: false,
        }];
        Ok(self
            .store
            .select(&sel)
            .await?
            .rows
            .iter()
            .map(user_from_row)
            .collect())
    }

    /// Changes a user (needs `user:manage`), checking the expected version.
    pub async fn update_user(
        &self,
        actor: &Actor,
        id: UserId,
        expected_version: i64,
        patch: UserPatch,
    ) -> Result<User> {
        self.require(actor, Entity::User, Action::Manage)?;
        let row = self.live_row(actor, Table::Users, id.0).await?;
        let before = user_from_row(&row);
        let mut errors = ValidationErrors::default();
        let mut values: Vec<(&'static str, Value)> = Vec::new();
        let mut changes = Vec::new();
        let mut change = |field: &str, b: serde_json::Value, a: serde_json::Value| {
            if b != a {
                changes.push(FieldChange {
                    field: field.into(),
                    before: b,
                    after: a,
                });
            }
        };
        if let Some(n) = &patch.display_name {
            non_empty(&mut errors, "display_name", n, 64);
            values.push(("display_name", n.trim().into()));
            values.push(("pinyin_keys", crate::pinyin::search_keys(n).into()));
            change(
                "display_name",
                before.display_name.clone().into(),
                n.trim().into(),
            );
        }
        if let Some(d) = patch.department_id {
            if let Some(d) = d {
                self.check_department(actor, d).await?;
            }
            values.push(("department_id", d.map(|d| d.0).into()));
            change(
                "department_id",
                serde_json::json!(before.department_id),
                serde_json::json!(d),
            );
        }
        if let Some(s) = patch.superior_id {
            if let Some(s) = s {
                if s == id {
                    errors.push("superior_id", "a user cannot be their own superior");
                } else {
                    self.live_row(actor, Table::Users, s.0).await?;
                    // Refuse cycles: the new superior must not be below this user.
                    let users = self
                        .store
                        .select(&Select::all(Table::Users, actor.company_id.0, self.now()))
                        .await?
                        .rows;
                    let below = subtree(
                        id.0,
                        users.iter().map(|r| (r.id(), r.get("superior_id").as_id())),
                    );
                    if below.contains(&s.0) {
                        errors.push(
                            "superior_id",
                            format!("user {s} reports to this user already; superiors cannot form a cycle"),
                        );
                    }
                }
            }
            values.push(("superior_id", s.map(|s| s.0).into()));
            change(
                "superior_id",
                serde_json::json!(before.superior_id),
                serde_json::json!(s),
            );
        }
        if let Some(r) = &patch.role_ids {
            self.check_roles(actor, r).await?;
            values.push(("role_ids", ids_json(r)));
            change(
                "role_ids",
                serde_json::json!(before.role_ids),
                serde_json::json!(r),
            );
        }
        if let Some(e) = &patch.email {
            let (email, _) = Self::check_contact_details(e.as_deref(), None, &mut errors);
            change(
                "email",
                serde_json::json!(before.email),
                serde_json::json!(email),
            );
            values.push(("email", email.into()));
        }
        if let Some(m) = &patch.mobile {
            let (_, mobile) = Self::check_contact_details(None, m.as_deref(), &mut errors);
            change(
                "mobile",
                serde_json::json!(before.mobile),
                serde_json::json!(mobile),
            );
            values.push(("mobile", mobile.into()));
        }
        if let Some(a) = patch.active {
            if !a && id == actor.user_id {
                errors.push("active", "you cannot deactivate yourself");
            }
            values.push(("active", a.into()));
            change("active", before.active.into(), a.into());
        }
        errors.into_result()?;
        values.push(("updated_at", Value::Timestamp(self.now())));
        let mut cs = ChangeSet::default();
        cs.ops.push(Op::Update {
            table: Table::Users,
            id: id.0,
            expected_version,
            values,
        });
        cs.events.push(self.event(
            actor.company_id.0,
            Table::Users,
            id.0,
            "user.updated".into(),
            serde_json::json!({ "changes": &changes }),
        ));
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::Users,
            id.0,
            "update",
            changes,
        ));
        self.apply(cs).await?;
        self.user(actor, id).await
    }

    /// Sets a user's password (needs `user:manage`) and clears a lockout.
    pub async fn set_password(&self, actor: &Actor, id: UserId, password: &str) -> Result<()> {
        self.require(actor, Entity::User, Action::Manage)?;
        let row = self.live_row(actor, Table::Users, id.0).await?;
        self.write_password(Some(actor), &row, password, "password_set")
            .await
    }

    /// Changes the actor's own password after checking the current one.
    pub async fn change_password(&self, actor: &Actor, current: &str, new: &str) -> Result<()> {
        let row = self.live_row(actor, Table::Users, actor.user_id.0).await?;
        if !verify(&row, current) {
            return Err(Error::Unauthenticated(
                "the current password is wrong".into(),
            ));
        }
        self.write_password(Some(actor), &row, new, "password_changed")
            .await
    }

    async fn write_password(
        &self,
        actor: Option<&Actor>,
        row: &Row,
        password: &str,
        action: &str,
    ) -> Result<()> {
        let hash = self.hash_password(password)?;
        let mut cs = ChangeSet::default();
        cs.ops.push(Op::Update {
            table: Table::Users,
            id: row.id(),
            expected_version: row.version(),
            values: vec![
                ("password_hash", hash.into()),
                ("failed_logins", Value::Int(0)),
                ("locked_until", Value::Null),
                ("updated_at", Value::Timestamp(self.now())),
            ],
        });
        let company = row.get("company_id").as_id().unwrap_or_default();
        cs.audit
            .push(self.audit(actor, company, Table::Users, row.id(), action, Vec::new()));
        self.apply(cs).await
    }

    /// Logs a user in with a local password. After
    /// [`CrmConfig::max_failed_logins`](crate::crm::CrmConfig) failures in a
    /// row the account is locked for [`CrmConfig::lockout`](crate::crm::CrmConfig).
    pub async fn authenticate(
        &self,
        company_code: &str,
        username: &str,
        password: &str,
    ) -> Result<Actor> {
        let generic = || Error::Unauthenticated("wrong company, username or password".into());
        let company = self
            .company_by_code(company_code)
            .await
            .map_err(|_| generic())?;
        let mut sel = Select::all(Table::Users, company.id.0, self.now());
        sel.filter = Filter::Cmp(Col::Column("username"), CmpOp::Eq, username.trim().into());
        let row = self
            .store
            .select(&sel)
            .await?
            .rows
            .into_iter()
            .next()
            .ok_or_else(generic)?;
        let now = self.now();
        if let Some(until) = row.get("locked_until").as_timestamp()
            && until > now
        {
            return Err(Error::Unauthenticated(format!(
                "account '{}' is locked after too many failed logins until {}",
                username.trim(),
                until
                    .with_timezone(&self.config.utc_offset)
                    .format("%Y-%m-%d %H:%M")
            )));
        }
        if row.get("active").as_bool() != Some(true) {
            return Err(Error::Unauthenticated(format!(
                "account '{}' is deactivated",
                username.trim()
            )));
        }
        if row.get("password_hash").is_null() {
            return Err(Error::Unauthenticated(format!(
                "account '{}' has no local password; it logs in through the host application",
                username.trim()
            )));
        }
        if verify(&row, password) {
            if row.get("failed_logins").as_int() != Some(0) || !row.get("locked_until").is_null() {
                let mut cs = ChangeSet::default();
                cs.ops.push(Op::Update {
                    table: Table::Users,
                    id: row.id(),
                    expected_version: row.version(),
                    values: vec![
                        ("failed_logins", Value::Int(0)),
                        ("locked_until", Value::Null),
                    ],
                });
                self.apply(cs).await?;
            }
            return self.actor(UserId(row.id())).await;
        }
        let failures = row.get("failed_logins").as_int().unwrap_or(0) + 1;
        let lock = failures >= self.config.max_failed_logins;
        let mut cs = ChangeSet::default();
        cs.ops.push(Op::Update {
            table: Table::Users,
            id: row.id(),
            expected_version: row.version(),
            values: vec![
                ("failed_logins", Value::Int(if lock { 0 } else { failures })),
                (
                    "locked_until",
                    if lock {
                        Value::Timestamp(now + self.config.lockout)
                    } else {
                        Value::Null
                    },
                ),
            ],
        });
        if lock {
            cs.audit.push(self.audit(
                None,
                company.id.0,
                Table::Users,
                row.id(),
                "locked",
                Vec::new(),
            ));
        }
        self.apply(cs).await?;
        if lock {
            Err(Error::Unauthenticated(format!(
                "account '{}' is now locked for {} minutes after {} failed logins",
                username.trim(),
                self.config.lockout.num_minutes(),
                self.config.max_failed_logins
            )))
        } else {
            Err(generic())
        }
    }

    /// Creates a department under `parent` (needs `department:manage`).
    pub async fn create_department(
        &self,
        actor: &Actor,
        name: &str,
        parent: Option<DepartmentId>,
    ) -> Result<Department> {
        self.require(actor, Entity::Department, Action::Manage)?;
        let mut errors = ValidationErrors::default();
        non_empty(&mut errors, "name", name, 64);
        errors.into_result()?;
        if let Some(p) = parent {
            self.check_department(actor, p).await?;
        }
        let id = self.new_id();
        let mut cs = ChangeSet::default();
        cs.ops.push(Op::Insert {
            table: Table::Departments,
            values: [
                self.new_row(actor.company_id.0, id),
                vec![
                    ("name", name.trim().into()),
                    ("parent_id", parent.map(|p| p.0).into()),
                    ("manager_id", Value::Null),
                    ("position", Value::Int(0)),
                ],
            ]
            .concat(),
        });
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::Departments,
            id,
            "create",
            vec![FieldChange {
                field: "name".into(),
                before: serde_json::Value::Null,
                after: name.trim().into(),
            }],
        ));
        self.apply(cs).await?;
        Ok(department_from_row(
            &self.live_row(actor, Table::Departments, id).await?,
        ))
    }

    /// Renames or moves a department; a department cannot move below itself.
    pub async fn update_department(
        &self,
        actor: &Actor,
        id: DepartmentId,
        name: Option<&str>,
        parent: Option<Option<DepartmentId>>,
    ) -> Result<Department> {
        self.require(actor, Entity::Department, Action::Manage)?;
        let row = self.live_row(actor, Table::Departments, id.0).await?;
        let mut values: Vec<(&'static str, Value)> =
            vec![("updated_at", Value::Timestamp(self.now()))];
        let mut changes = Vec::new();
        if let Some(n) = name {
            let mut errors = ValidationErrors::default();
            non_empty(&mut errors, "name", n, 64);
            errors.into_result()?;
            values.push(("name", n.trim().into()));
            changes.push(FieldChange {
                field: "name".into(),
                before: row.get("name").to_json(),
                after: n.trim().into(),
            });
        }
        if let Some(p) = parent {
            if let Some(p) = p {
                self.check_department(actor, p).await?;
                let all = self.list_departments(actor).await?;
                let below = subtree(id.0, all.iter().map(|d| (d.id.0, d.parent_id.map(|x| x.0))));
                if below.contains(&p.0) {
                    return Err(Error::invalid(
                        "parent_id",
                        format!(
                            "department {p} is inside this department; a department cannot move below itself"
                        ),
                    ));
                }
            }
            values.push(("parent_id", p.map(|p| p.0).into()));
            changes.push(FieldChange {
                field: "parent_id".into(),
                before: row.get("parent_id").to_json(),
                after: serde_json::json!(p),
            });
        }
        let mut cs = ChangeSet::default();
        cs.ops.push(Op::Update {
            table: Table::Departments,
            id: id.0,
            expected_version: row.version(),
            values,
        });
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::Departments,
            id.0,
            "update",
            changes,
        ));
        self.apply(cs).await?;
        Ok(department_from_row(
            &self.live_row(actor, Table::Departments, id.0).await?,
        ))
    }

    /// Deletes an empty department (no sub-departments, no users).
    pub async fn delete_department(&self, actor: &Actor, id: DepartmentId) -> Result<()> {
        self.require(actor, Entity::Department, Action::Manage)?;
        let row = self.live_row(actor, Table::Departments, id.0).await?;
        let all = self.list_departments(actor).await?;
        if all.iter().any(|d| d.parent_id == Some(id)) {
            return Err(Error::InvalidState(format!(
                "department '{}' still has sub-departments",
                text(&row, "name")
            )));
        }
        let users = self.list_users(actor, None).await?;
        if let Some(u) = users.iter().find(|u| u.department_id == Some(id)) {
            return Err(Error::InvalidState(format!(
                "department '{}' still has users (e.g. {})",
                text(&row, "name"),
                u.username
            )));
        }
        let mut cs = ChangeSet::default();
        cs.ops.push(Op::Update {
            table: Table::Departments,
            id: id.0,
            expected_version: row.version(),
            values: vec![("deleted_at", Value::Timestamp(self.now()))],
        });
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::Departments,
            id.0,
            "delete",
            Vec::new(),
        ));
        self.apply(cs).await
    }

    /// The company's departments (the tree as parent links).
    pub async fn list_departments(&self, actor: &Actor) -> Result<Vec<Department>> {
        let mut sel = Select::all(Table::Departments, actor.company_id.0, self.now());
        sel.sort = vec![crate::store::Sort {
            col: Col::Column("created_at"),
            desc: false,
        }];
        Ok(self
            .store
            .select(&sel)
            .await?
            .rows
            .iter()
            .map(department_from_row)
            .collect())
    }

    /// Finds a department by id or by name.
    pub async fn resolve_department(&self, actor: &Actor, key: &str) -> Result<Department> {
        let all = self.list_departments(actor).await?;
        let found = match key.parse::<DepartmentId>() {
            Ok(id) => all.into_iter().find(|d| d.id == id),
            Err(_) => all.into_iter().find(|d| d.name == key.trim()),
        };
        found.ok_or_else(|| Error::not_found("department", key))
    }

    /// Creates a role (needs `role:manage`).
    pub async fn create_role(&self, actor: &Actor, spec: RoleSpec) -> Result<Role> {
        self.require(actor, Entity::Role, Action::Manage)?;
        let mut errors = ValidationErrors::default();
        non_empty(&mut errors, "name", &spec.name, 64);
        check_rules(&spec.field_rules, &mut errors);
        errors.into_result()?;
        let id = self.new_id();
        let mut cs = ChangeSet::default();
        cs.ops.push(Op::Insert {
            table: Table::Roles,
            values: [self.new_row(actor.company_id.0, id), role_values(&spec)].concat(),
        });
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::Roles,
            id,
            "create",
            vec![FieldChange {
                field: "role".into(),
                before: serde_json::Value::Null,
                after: serde_json::to_value(&spec).unwrap_or_default(),
            }],
        ));
        self.apply(cs).await?;
        role_from_row(&self.live_row(actor, Table::Roles, id).await?)
    }

    /// Replaces a role's definition, checking the expected version.
    pub async fn update_role(
        &self,
        actor: &Actor,
        id: RoleId,
        expected_version: i64,
        spec: RoleSpec,
    ) -> Result<Role> {
        self.require(actor, Entity::Role, Action::Manage)?;
        let row = self.live_row(actor, Table::Roles, id.0).await?;
        let before = role_from_row(&row)?;
        let mut errors = ValidationErrors::default();
        non_empty(&mut errors, "name", &spec.name, 64);
        check_rules(&spec.field_rules, &mut errors);
        errors.into_result()?;
        let mut cs = ChangeSet::default();
        cs.ops.push(Op::Update {
            table: Table::Roles,
            id: id.0,
            expected_version,
            values: [
                vec![("updated_at", Value::Timestamp(self.now()))],
                role_values(&spec),
            ]
            .concat(),
        });
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::Roles,
            id.0,
            "update",
            vec![FieldChange {
                field: "role".into(),
                before: serde_json::json!({"name": before.name, "is_admin": before.is_admin, "permissions": before.permissions, "field_rules": before.field_rules}),
                after: serde_json::to_value(&spec).unwrap_or_default(),
            }],
        ));
        self.apply(cs).await?;
        role_from_row(&self.live_row(actor, Table::Roles, id.0).await?)
    }

    /// The company's roles.
    pub async fn list_roles(&self, actor: &Actor) -> Result<Vec<Role>> {
        let mut sel = Select::all(Table::Roles, actor.company_id.0, self.now());
        sel.sort = vec![crate::store::Sort {
            col: Col::Column("created_at"),
            desc: false,
        }];
        self.store
            .select(&sel)
            .await?
            .rows
            .iter()
            .map(role_from_row)
            .collect()
    }

    /// Finds a role by id or by name.
    pub async fn resolve_role(&self, actor: &Actor, key: &str) -> Result<Role> {
        let all = self.list_roles(actor).await?;
        let found = match key.parse::<RoleId>() {
            Ok(id) => all.into_iter().find(|r| r.id == id),
            Err(_) => all.into_iter().find(|r| r.name == key.trim()),
        };
        found.ok_or_else(|| Error::not_found("role", key))
    }

    /// Creates a user group (needs `user_group:manage`).
    pub async fn create_group(
        &self,
        actor: &Actor,
        name: &str,
        members: &[UserId],
    ) -> Result<UserGroup> {
        self.require(actor, Entity::UserGroup, Action::Manage)?;
        let mut errors = ValidationErrors::default();
        non_empty(&mut errors, "name", name, 64);
        errors.into_result()?;
        for m in members {
            self.live_row(actor, Table::Users, m.0).await?;
        }
        let id = self.new_id();
        let mut cs = ChangeSet::default();
        cs.ops.push(Op::Insert {
            table: Table::UserGroups,
            values: [
                self.new_row(actor.company_id.0, id),
                vec![
                    ("name", name.trim().into()),
                    ("member_ids", ids_json(members)),
                ],
            ]
            .concat(),
        });
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::UserGroups,
            id,
            "create",
            Vec::new(),
        ));
        self.apply(cs).await?;
        Ok(group_from_row(
            &self.live_row(actor, Table::UserGroups, id).await?,
        ))
    }

    /// Replaces a group's members.
    pub async fn set_group_members(
        &self,
        actor: &Actor,
        id: GroupId,
        expected_version: i64,
        members: &[UserId],
    ) -> Result<UserGroup> {
        self.require(actor, Entity::UserGroup, Action::Manage)?;
        let row = self.live_row(actor, Table::UserGroups, id.0).await?;
        for m in members {
            self.live_row(actor, Table::Users, m.0).await?;
        }
        let mut cs = ChangeSet::default();
        cs.ops.push(Op::Update {
            table: Table::UserGroups,
            id: id.0,
            expected_version,
            values: vec![
                ("updated_at", Value::Timestamp(self.now())),
                ("member_ids", ids_json(members)),
            ],
        });
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::UserGroups,
            id.0,
            "update",
            vec![FieldChange {
                field: "member_ids".into(),
                before: row.get("member_ids").to_json(),
                after: ids_json(members).to_json(),
            }],
        ));
        self.apply(cs).await?;
        Ok(group_from_row(
            &self.live_row(actor, Table::UserGroups, id.0).await?,
        ))
    }

    /// The company's user groups.
    pub async fn list_groups(&self, actor: &Actor) -> Result<Vec<UserGroup>> {
        Ok(self
            .store
            .select(&Select::all(
                Table::UserGroups,
                actor.company_id.0,
                self.now(),
            ))
            .await?
            .rows
            .iter()
            .map(group_from_row)
            .collect())
    }
}

/// The stored columns of a role definition.
fn role_values(spec: &RoleSpec) -> Vec<(&'static str, Value)> {
    vec![
        ("name", spec.name.trim().into()),
        ("is_admin", spec.is_admin.into()),
        (
            "permissions",
            Value::Json(serde_json::to_value(&spec.permissions).unwrap_or_default()),
        ),
        (
            "field_rules",
            Value::Json(serde_json::to_value(&spec.field_rules).unwrap_or_default()),
        ),
    ]
}

fn check_rules(rules: &[FieldRule], errors: &mut ValidationErrors) {
    for r in rules {
        if crate::entity::STANDARD_FIELDS
            .iter()
            .any(|(n, _, _)| *n == r.field)
        {
            // Who owns a record and when it was made are governed by the
            // data scopes, not by field rules.
            errors.push(
                "field_rules",
                format!(
                    "{}.{} is a record's own column (id, code, owner, department, times): field rules apply to the entity's fields and custom fields",
                    r.entity.name(),
                    r.field
                ),
            );
            continue;
        }
        let known = r.entity.field(&r.field).is_some() || r.field.starts_with("custom.");
        if !known {
            errors.push(
                "field_rules",
                format!("{} has no field '{}'", r.entity.name(), r.field),
            );
        }
    }
}

fn verify(row: &Row, password: &str) -> bool {
    let Some(hash) = row.get("password_hash").as_text() else {
        return false;
    };
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}
