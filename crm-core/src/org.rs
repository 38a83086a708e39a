//! Organisation and accounts: companies, the department tree, roles, user
//! groups, users with superiors, and local credentials for hosts without a
//! login of their own.

use crate::auth::{Action, Actor, DataScope, FieldRule, Permission, Role, rule_field_name};
use crate::crm::{Crm, json_ids, role_from_row, subtree};
use crate::entity::Entity;
use crate::error::{Error, Result, ValidationErrors};
use crate::ids::{CompanyId, DepartmentId, GroupId, RoleId, UserId};
use crate::schema::Table;
use crate::store::{ChangeSet, CmpOp, Col, FieldChange, Filter, Guard, Op, Row, Select};
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

/// Ids as a JSON list, each once (a member or role named twice is held
/// once), in their order.
fn ids_json<T: Copy + Into<Uuid>>(ids: &[T]) -> Value {
    let mut seen = std::collections::HashSet::new();
    Value::Json(serde_json::Value::Array(
        ids.iter()
            .map(|i| (*i).into())
            .filter(|u: &Uuid| seen.insert(*u))
            .map(|u| serde_json::Value::String(u.to_string()))
            .collect(),
    ))
}

macro_rules! into_uuid {
    ($($t:ty),*) => {$(impl From<$t> for Uuid { fn from(v: $t) -> Uuid { v.0 } })*};
}
into_uuid!(RoleId, UserId, DepartmentId, GroupId);

fn non_empty(errors: &mut ValidationErrors, field: &str, value: &str, max: usize) {
    let n = value.trim().chars().count();
    if value.contains('\0') {
        errors.push(field, "holds a NUL character (\\0)");
    } else if n == 0 {
        errors.push(field, "is required");
    } else if n > max {
        errors.push(field, format!("'{value}' is longer than {max} characters"));
    }
}

/// A name of a department, role or user group (`what`, in English and
/// Chinese): besides [`non_empty`], one line without control characters
/// (a line break would show a department that is not there in the tree),
/// and not `none`, letter case aside, which the command line reads as
/// "no department" or "no role" (`user edit --dept none`).
fn org_name(errors: &mut ValidationErrors, value: &str, what: (&str, &str)) {
    non_empty(errors, "name", value, 64);
    if let Some(problem) = org_name_problem(value, what) {
        errors.push("name", problem);
    }
}

/// Whether a name holds a line break or another control character (a NUL
/// is refused on its own, see [`non_empty`]).
fn breaks_lines(name: &str) -> bool {
    name.chars()
        .any(|c| c != '\0' && (c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')))
}

/// What is wrong with `value` as a department, role or user group name
/// beyond being empty or too long: see [`org_name`].
fn org_name_problem(value: &str, (what, what_zh): (&str, &str)) -> Option<String> {
    let t = value.trim();
    if breaks_lines(t) {
        return Some(format!(
            "'{}' holds a line break or another control character; a {what} name is one line \
             ({what_zh}名称不能包含换行或控制字符)",
            t.escape_debug()
        ));
    }
    (fold_name(t) == "none").then(|| {
        format!(
            "'{t}' cannot be a {what} name: the command line reads `none` as no {what} \
             ({what_zh}名称不能为 none); give the {what} another name"
        )
    })
}

/// A name typed to log in (a company code, a username): besides
/// [`non_empty`], no spaces or control characters inside it, which a user
/// would not tell apart when typing it.
fn login_name(errors: &mut ValidationErrors, field: &str, value: &str, max: usize) {
    non_empty(errors, field, value, max);
    if let Some(problem) = login_name_problem(value) {
        errors.push(field, problem);
    }
}

/// What is wrong with a name to log in with beyond being empty or too
/// long (a space or a control character in it), for every path that makes
/// one: `create_user`, user imports.
pub(crate) fn login_name_problem(value: &str) -> Option<String> {
    let t = value.trim();
    t.chars()
        .any(|c| c.is_whitespace() || c.is_control())
        .then(|| {
            format!("'{t}' holds a space or a control character; a name to log in with has none")
        })
}

/// A name as names are compared: trimmed, full-width letters and digits
/// as their ASCII twins (`组Ａ` is `组A`), in lower case.
pub(crate) fn fold_name(name: &str) -> String {
    name.trim()
        .chars()
        .map(crate::validate::halfwidth)
        .flat_map(char::to_lowercase)
        .collect()
}

/// The row of `rows` whose text column `col` is `typed` as spelled, else
/// the first equal to it but for letter case and full-width letters (see
/// [`fold_name`]): how a name unique so compared (a username, a product
/// code) is looked up among the candidates a case-insensitive search found.
pub(crate) fn spelled_or_folded<'a>(rows: &'a [Row], col: &str, typed: &str) -> Option<&'a Row> {
    let typed = typed.trim();
    let folded = fold_name(typed);
    rows.iter()
        .find(|r| r.get(col).as_text() == Some(typed))
        .or_else(|| {
            rows.iter()
                .find(|r| r.get(col).as_text().is_some_and(|t| fold_name(t) == folded))
        })
}

/// The items of `all` named `key` as typed (trimmed), else those named so
/// but for letter case and full-width letters (see [`fold_name`]): how a
/// department, role or group is found by a name someone typed (`sales
/// emea` finds `Sales EMEA`), several meaning an ambiguous name.
fn named_as<'a, T>(all: &'a [T], name: impl Fn(&T) -> &str, key: &str) -> Vec<&'a T> {
    let key = key.trim();
    let exact: Vec<&T> = all.iter().filter(|x| name(x) == key).collect();
    if !exact.is_empty() {
        return exact;
    }
    let folded = fold_name(key);
    all.iter()
        .filter(|x| fold_name(name(x)) == folded)
        .collect()
}

/// The first of `taken` equal to `name` but for letter case (and
/// full-width letters).
fn same_but_case<'a>(name: &str, taken: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let folded = fold_name(name);
    taken.into_iter().find(|t| fold_name(t) == folded)
}

/// What names are unique among, for [`Crm::name_free`]: the company's
/// roles, its user groups, or the departments under one parent (`None`:
/// the top level).
#[derive(Clone, Copy, Debug)]
enum NameScope {
    Role,
    Group,
    Department(Option<DepartmentId>),
}

impl NameScope {
    fn table(self) -> Table {
        match self {
            NameScope::Role => Table::Roles,
            NameScope::Group => Table::UserGroups,
            NameScope::Department(_) => Table::Departments,
        }
    }

    /// What the rows are called, in English and Chinese.
    fn what(self) -> (&'static str, &'static str) {
        match self {
            NameScope::Role => ("role", "角色"),
            NameScope::Group => ("user group", "用户组"),
            NameScope::Department(_) => ("department", "部门"),
        }
    }
}

/// The spellings of a name a guard against one created meanwhile looks
/// for: as typed, in lower case and in upper case (as people type a name
/// again). Creations of names equal but for letter case take one key, so
/// that they take turns.
pub(crate) fn name_spellings(name: &str) -> Vec<Value> {
    let t = name.trim();
    let mut out = vec![t.to_string(), t.to_lowercase(), t.to_uppercase()];
    out.sort();
    out.dedup();
    out.into_iter().map(Value::from).collect()
}

/// How many times a change taking administrator rights away is checked
/// and written while other such changes keep coming first (see
/// [`Crm::update_user`]).
const ADMIN_CHECK_ATTEMPTS: usize = 16;

/// The refusal of `what` (`Changing user 'wangfang'`) when other changes of
/// who is an administrator kept coming first through every attempt.
fn admins_kept_changing(what: &str) -> Error {
    Error::InvalidState(format!(
        "{what} takes administrator rights away, and the company's administrators kept \
         changing meanwhile (管理员正被他人同时修改); check who is an administrator and try again"
    ))
}

/// How many times a login (or a check of the current password) reads the
/// account again and retries its write after another attempt on the same
/// account changed it first.
const LOGIN_WRITE_ATTEMPTS: usize = 32;

/// A user as a change would leave them, for the checks of who may manage
/// whom (see [`Crm::check_user_change`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct UserState<'a> {
    /// The user, `None` for one being created.
    pub(crate) id: Option<UserId>,
    /// The department.
    pub(crate) department_id: Option<DepartmentId>,
    /// The superior.
    pub(crate) superior_id: Option<UserId>,
    /// The roles.
    pub(crate) role_ids: &'a [RoleId],
}

/// Whether a user (`user` is `None` for a new one) with this department and
/// superior lies within a `user:manage` grant of `scope`: everyone for
/// `all`, users of the actor's department (tree) for the department scopes,
/// the actor and those reporting to them for `own_and_subordinates`, the
/// actor alone for `own`.
pub(crate) fn user_in_scope(
    actor: &Actor,
    scope: DataScope,
    user: Option<UserId>,
    department: Option<DepartmentId>,
    superior: Option<UserId>,
) -> bool {
    match scope {
        DataScope::All => true,
        DataScope::Own => user == Some(actor.user_id),
        DataScope::OwnAndSubordinates => {
            user == Some(actor.user_id)
                || superior.is_some_and(|s| s == actor.user_id || actor.subordinates.contains(&s))
        }
        DataScope::Department => department.is_some() && department == actor.department_id,
        DataScope::DepartmentTree => department.is_some_and(|d| actor.department_tree.contains(&d)),
    }
}

/// Whether a department (`None`: the top level, above the root) lies within
/// a `department:manage` grant of `scope`: every department for `all`, the
/// actor's department and those below it for `department_tree`, the actor's
/// department alone for `department`, none for the personal scopes.
fn department_in_scope(actor: &Actor, scope: DataScope, department: Option<DepartmentId>) -> bool {
    match scope {
        DataScope::All => true,
        DataScope::DepartmentTree => department.is_some_and(|d| actor.department_tree.contains(&d)),
        DataScope::Department => department.is_some() && department == actor.department_id,
        DataScope::Own | DataScope::OwnAndSubordinates => false,
    }
}

/// The role a spec describes, for comparing its rights with an actor's.
fn spec_role(spec: &RoleSpec) -> Role {
    Role {
        id: RoleId(Uuid::nil()),
        name: spec.name.trim().to_string(),
        is_admin: spec.is_admin,
        permissions: spec.permissions.clone(),
        field_rules: spec.field_rules.clone(),
        version: 0,
    }
}

/// The lock key shared by every change set that depends on a department
/// staying live (a user or a sub-department put into it) and by the one
/// deleting it, so that they cannot pass each other's checks.
fn department_key(company: Uuid, department: DepartmentId) -> String {
    format!("{company}:department_contents:{}", department.0)
}

/// The lock key of what refers to a role: giving it to a user or naming it
/// in an approval flow takes it, and so does deleting the role.
fn role_key(company: Uuid, role: RoleId) -> String {
    format!("{company}:role_holders:{}", role.0)
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

    /// The scope of the actor's `manage` grant on users or departments.
    fn manage_scope(&self, actor: &Actor, entity: Entity) -> Result<DataScope> {
        actor.scope_for(entity, Action::Manage).ok_or_else(|| {
            Error::Forbidden(crate::forbidden_zh::may_not_manage(
                &actor.display_name,
                entity,
            ))
        })
    }

    /// The live roles of the actor's company with these ids; a missing one
    /// is not found.
    async fn load_roles(&self, actor: &Actor, ids: &[RoleId]) -> Result<Vec<Role>> {
        self.roles_of(actor, ids, false).await
    }

    /// The live roles among those a user holds: a role deleted by an older
    /// build while still held grants nothing and is left out (a role
    /// still held can no longer be deleted).
    async fn held_roles(&self, actor: &Actor, ids: &[RoleId]) -> Result<Vec<Role>> {
        self.roles_of(actor, ids, true).await
    }

    /// The roles `ids`; a deleted one is refused as not found, or left out
    /// with `skip_deleted`.
    async fn roles_of(
        &self,
        actor: &Actor,
        ids: &[RoleId],
        skip_deleted: bool,
    ) -> Result<Vec<Role>> {
        let mut out = Vec::with_capacity(ids.len());
        for r in ids {
            match self.live_row(actor, Table::Roles, r.0).await {
                Ok(row) => out.push(role_from_row(&row)?),
                Err(Error::NotFound { .. }) if skip_deleted => {}
                Err(e) => return Err(e),
            }
        }
        self.canonical_rules(
            actor.company_id.0,
            out.iter_mut()
                .flat_map(|r| r.field_rules.iter_mut())
                .collect(),
        )
        .await?;
        Ok(out)
    }

    /// Rewrites field rules to the names [`Actor::field_access`] is asked
    /// with (see [`rule_field_name`]): a rule stored by an older build that
    /// named its field by a label or an alias applies from now on. A rule
    /// naming no field of its entity is left as it is (it applies to
    /// nothing). The company's custom fields are read only when a rule does
    /// not name a built-in field.
    pub(crate) async fn canonical_rules(
        &self,
        company: Uuid,
        mut rules: Vec<&mut FieldRule>,
    ) -> Result<()> {
        let mut rest = Vec::new();
        for r in rules.drain(..) {
            match rule_field_name(r.entity, &r.field, &[]) {
                Some(name) => r.field = name,
                // `custom.<key>` is how this build stores a custom field's
                // rule: no need to read the definitions (on every actor
                // built) to know it.
                None if r
                    .field
                    .strip_prefix("custom.")
                    .is_some_and(crate::custom::valid_key) => {}
                None => rest.push(r),
            }
        }
        if rest.is_empty() {
            return Ok(());
        }
        let customs = self.company_custom_fields(company).await?;
        for r in rest {
            if let Some(name) = rule_field_name(r.entity, &r.field, &customs) {
                r.field = name;
            }
        }
        Ok(())
    }

    /// The field rules of a role being created or changed, each naming its
    /// field as [`Actor::field_access`] is asked (see [`rule_field_name`]),
    /// or the errors (a field the entity lacks, a record's own column, two
    /// different rules on one field; see [`check_rules`]).
    async fn checked_rules(
        &self,
        actor: &Actor,
        rules: &[FieldRule],
        held: &[FieldRule],
        errors: &mut ValidationErrors,
    ) -> Result<Vec<FieldRule>> {
        let customs = if rules
            .iter()
            .all(|r| rule_field_name(r.entity, &r.field, &[]).is_some())
        {
            Vec::new()
        } else {
            self.company_custom_fields(actor.company_id.0).await?
        };
        Ok(check_rules(rules, held, &customs, errors))
    }

    /// Refuses managing an existing user (editing, deactivating, setting the
    /// password, changing the roles) who lies outside the actor's
    /// `user:manage` scope or holds rights beyond the actor's own. Returns
    /// the user's roles.
    async fn check_manages_user(
        &self,
        actor: &Actor,
        scope: DataScope,
        user: &User,
    ) -> Result<Vec<Role>> {
        if !user_in_scope(
            actor,
            scope,
            Some(user.id),
            user.department_id,
            user.superior_id,
        ) {
            return Err(Error::Forbidden(crate::forbidden_zh::user_outside_scope(
                &actor.display_name,
                scope,
                &user.username,
            )));
        }
        let roles = self.held_roles(actor, &user.role_ids).await?;
        if let Some(why) = actor.excess_over(&roles) {
            return Err(Error::Forbidden(crate::forbidden_zh::user_holds_more(
                &actor.display_name,
                &user.username,
                &why,
            )));
        }
        Ok(roles)
    }

    /// Refuses a user as a change (or a creation) would leave them when they
    /// would lie outside the actor's `user:manage` scope or hold rights
    /// beyond the actor's own (nobody but an administrator hands out rights
    /// they do not hold, to others or to themselves). Returns the roles.
    async fn check_user_result(
        &self,
        actor: &Actor,
        scope: DataScope,
        after: UserState<'_>,
    ) -> Result<Vec<Role>> {
        if !user_in_scope(
            actor,
            scope,
            after.id,
            after.department_id,
            after.superior_id,
        ) {
            return Err(Error::Forbidden(crate::forbidden_zh::result_outside_scope(
                &actor.display_name,
                scope,
            )));
        }
        let roles = self.load_roles(actor, after.role_ids).await?;
        if let Some(why) = actor.excess_over(&roles) {
            return Err(Error::Forbidden(crate::forbidden_zh::may_not_assign_roles(
                &actor.display_name,
                &why,
            )));
        }
        Ok(roles)
    }

    /// Checks that the actor may change a user from `before` (`None` when
    /// creating one) to `after`: both within the actor's `user:manage`
    /// scope, neither holding rights beyond the actor's own. For bulk
    /// writers of users (the user import), which have checked that the
    /// roles exist: an administrator passes without reading anything.
    pub(crate) async fn check_user_change(
        &self,
        actor: &Actor,
        before: Option<&User>,
        after: UserState<'_>,
    ) -> Result<()> {
        if actor.is_admin() {
            return Ok(());
        }
        let scope = self.manage_scope(actor, Entity::User)?;
        if let Some(b) = before {
            self.check_manages_user(actor, scope, b).await?;
        }
        self.check_user_result(actor, scope, after).await?;
        Ok(())
    }

    /// Refuses a change that leaves the company without an active
    /// administrator: it takes `user`'s administrator rights away
    /// (deactivation, or roles without an administrator role), or turns the
    /// administrator role `role` into an ordinary one, and no other active
    /// user would hold an administrator role. Returns writes for the change
    /// set that bump every administrator role it relied on (but `role`,
    /// which the change writes itself): two such changes made at once (two
    /// administrators deactivating each other) then conflict instead of
    /// both passing.
    async fn keep_an_admin(
        &self,
        actor: &Actor,
        user: Option<UserId>,
        role: Option<RoleId>,
        what: &str,
    ) -> Result<Vec<Op>> {
        let admin_roles: Vec<Role> = self
            .list_roles(actor)
            .await?
            .into_iter()
            .filter(|r| r.is_admin && Some(r.id) != role)
            .collect();
        let remaining = self
            .list_users(actor, None)
            .await?
            .into_iter()
            .filter(|u| u.active && Some(u.id) != user)
            .any(|u| {
                u.role_ids
                    .iter()
                    .any(|r| admin_roles.iter().any(|a| a.id == *r))
            });
        if !remaining {
            return Err(Error::InvalidState(format!(
                "{what} would leave the company without an active administrator; make another user an administrator first"
            )));
        }
        Ok(self.admin_role_bumps(&admin_roles))
    }

    /// Writes that bump the version of each of `roles` (the administrator
    /// roles a check that an active administrator remains relied on, at
    /// the versions it read): two changes taking administrator rights away
    /// at once then conflict instead of both passing. A change set takes
    /// them once: two updates of one role at one expected version in one
    /// change set would conflict with each other.
    pub(crate) fn admin_role_bumps(&self, roles: &[Role]) -> Vec<Op> {
        let now = self.now();
        roles
            .iter()
            .map(|r| Op::Update {
                table: Table::Roles,
                id: r.id.0,
                expected_version: r.version,
                values: vec![("updated_at", Value::Timestamp(now))],
            })
            .collect()
    }

    /// For a change set writing users in bulk (a user import's batch, the
    /// undo of an import), as [`Crm::keep_an_admin`] for a single change:
    /// reads the company's administrator roles and users now and works out
    /// who holds an administrator role once `cs` is written (its user
    /// inserts, and its user updates of `role_ids`, `active` and
    /// `deleted_at`). `Ok(None)` when it takes nobody's administrator
    /// rights away. Else, when an active administrator remains, the writes
    /// bumping every administrator role, to add to `cs`; when none would,
    /// [`Error::InvalidState`] naming who loses their rights — the caller
    /// says what is refused.
    pub(crate) async fn admins_kept_by(
        &self,
        actor: &Actor,
        cs: &ChangeSet,
    ) -> Result<Option<Vec<Op>>> {
        let admin_roles: Vec<Role> = self
            .list_roles(actor)
            .await?
            .into_iter()
            .filter(|r| r.is_admin)
            .collect();
        let holds_admin =
            |ids: &[RoleId]| ids.iter().any(|r| admin_roles.iter().any(|a| a.id == *r));
        let users = self.list_users(actor, None).await?;
        let by_id: std::collections::HashMap<Uuid, &User> =
            users.iter().map(|u| (u.id.0, u)).collect();
        // Each user as the change set leaves them: (label, admin before, admin after).
        let mut after: std::collections::HashMap<Uuid, (String, bool, bool)> = users
            .iter()
            .map(|u| {
                let admin = u.active && holds_admin(&u.role_ids);
                (
                    u.id.0,
                    (user_label(&u.display_name, &u.username), admin, admin),
                )
            })
            .collect();
        for op in &cs.ops {
            match op {
                Op::Update {
                    table: Table::Users,
                    id,
                    values,
                    ..
                } => {
                    let Some(u) = by_id.get(id) else {
                        continue;
                    };
                    let mut active = u.active;
                    let mut roles = u.role_ids.clone();
                    for (col, v) in values {
                        match *col {
                            "active" => active = v.as_bool().unwrap_or(active),
                            "deleted_at" if !v.is_null() => active = false,
                            "role_ids" => {
                                roles = json_ids(v).into_iter().map(RoleId).collect();
                            }
                            _ => {}
                        }
                    }
                    if let Some(e) = after.get_mut(id) {
                        e.2 = active && holds_admin(&roles);
                    }
                }
                Op::Insert {
                    table: Table::Users,
                    values,
                } => {
                    let get = |k: &str| values.iter().find(|(c, _)| *c == k).map(|(_, v)| v);
                    let Some(id) = get("id").and_then(Value::as_id) else {
                        continue;
                    };
                    let active = get("active").and_then(Value::as_bool).unwrap_or(true);
                    let roles: Vec<RoleId> = get("role_ids")
                        .map(|v| json_ids(v).into_iter().map(RoleId).collect())
                        .unwrap_or_default();
                    let name = get("username")
                        .and_then(Value::as_text)
                        .unwrap_or_default()
                        .to_string();
                    after.insert(id, (name, false, active && holds_admin(&roles)));
                }
                _ => {}
            }
        }
        let mut losing: Vec<&str> = after
            .values()
            .filter(|(_, before, now)| *before && !*now)
            .map(|(name, ..)| name.as_str())
            .collect();
        if losing.is_empty() {
            return Ok(None);
        }
        if after.values().any(|(_, _, now)| *now) {
            return Ok(Some(self.admin_role_bumps(&admin_roles)));
        }
        losing.sort_unstable();
        Err(Error::InvalidState(format!(
            "it would leave the company without an active administrator ({} would lose their \
             administrator rights); make another user an administrator first",
            losing.join(", ")
        )))
    }

    /// A guard that `department` is still live when the change set commits,
    /// for a change set that puts a user or a sub-department into it: a
    /// concurrent [`Crm::delete_department`] guards the same key.
    pub(crate) fn department_live_guard(&self, actor: &Actor, department: DepartmentId) -> Guard {
        let company = actor.company_id.0;
        self.deleted_meanwhile_guard(
            Table::Departments,
            company,
            &[department.0],
            vec![department_key(company, department)],
            format!("department {department} was deleted meanwhile"),
        )
    }

    /// A guard that `role` is still live when the change set commits, under
    /// the key deleting it takes: a user given the role, or a flow naming
    /// it, cannot be written while it is deleted.
    pub(crate) fn role_live_guard(&self, company: Uuid, role: RoleId, name: &str) -> Guard {
        self.deleted_meanwhile_guard(
            Table::Roles,
            company,
            &[role.0],
            vec![role_key(company, role)],
            format!("role '{name}' was deleted meanwhile"),
        )
    }

    /// Refuses `name` for a role, a user group or a department when
    /// another live one of `scope` has it, letter case and surrounding
    /// spaces aside: another of the company's roles or user groups, another
    /// department under the same parent. `except` is the one being renamed
    /// or moved. Returns a guard for the change set taking the name, under
    /// a key every change taking that name (in any letter case) takes, so
    /// that two made at once do not both pass.
    async fn name_free(
        &self,
        actor: &Actor,
        scope: NameScope,
        name: &str,
        except: Option<Uuid>,
    ) -> Result<Guard> {
        let company = actor.company_id.0;
        let name = name.trim();
        let (what, what_zh) = scope.what();
        let mut among = Vec::new();
        let (key, place) = match scope {
            NameScope::Department(parent) => {
                among.push(match parent {
                    Some(p) => Filter::Cmp(Col::Column("parent_id"), CmpOp::Eq, Value::Id(p.0)),
                    None => Filter::IsNull(Col::Column("parent_id")),
                });
                let place = match parent {
                    Some(p) => {
                        let row = self.live_row(actor, Table::Departments, p.0).await?;
                        format!(
                            "department '{}' already has a sub-department",
                            text(&row, "name")
                        )
                    }
                    None => "there is already a top-level department".to_string(),
                };
                let at = parent.map_or_else(|| "top".to_string(), |p| p.0.to_string());
                (format!("{company}:department_name:{at}"), place)
            }
            NameScope::Role => (format!("{company}:role_name"), String::new()),
            NameScope::Group => (format!("{company}:group_name"), String::new()),
        };
        if let Some(id) = except {
            among.push(Filter::Cmp(Col::Column("id"), CmpOp::Ne, Value::Id(id)));
        }
        let mut sel = Select::all(scope.table(), company, self.now());
        sel.filter = Filter::And(among.clone());
        let rows = self.store.select(&sel).await?.rows;
        if let Some(taken) =
            same_but_case(name, rows.iter().filter_map(|r| r.get("name").as_text()))
        {
            let also = if taken == name {
                String::new()
            } else {
                format!(" (as '{taken}')")
            };
            let message = match scope {
                NameScope::Department(_) => format!(
                    "{place} named '{name}'{also} (部门名称重复); give the department another name"
                ),
                _ => format!(
                    "{what} name ({what_zh}名称) '{name}' is already taken{also}; give the {what} another name"
                ),
            };
            return Err(Error::Duplicate {
                entity: what.into(),
                message,
            });
        }
        let mut meanwhile = Select::all(scope.table(), company, self.now());
        among.push(Filter::In(Col::Column("name"), name_spellings(name)));
        meanwhile.filter = Filter::And(among);
        Ok(Guard {
            kind: crate::store::GuardKind::Duplicate,
            keys: vec![format!("{key}:{}", fold_name(name))],
            select: meanwhile,
            message: match scope {
                NameScope::Department(_) => format!(
                    "a department named '{name}' was created there meanwhile (部门名称重复); give the department another name"
                ),
                _ => format!(
                    "{what} name ({what_zh}名称) '{name}' was taken meanwhile; give the {what} another name"
                ),
            },
        })
    }

    /// A guard that none of `usernames` (letter case aside, as people type
    /// them again: as typed, in lower and in upper case) was taken by a
    /// user created meanwhile, for a change set creating users with them:
    /// every creation of a username takes the key of its folded form (see
    /// [`fold_name`]), so two creations of one name at once take turns.
    pub(crate) fn usernames_free_guard(&self, company: Uuid, usernames: &[&str]) -> Guard {
        let spellings: Vec<Value> = usernames.iter().flat_map(|u| name_spellings(u)).collect();
        let mut select = Select::all(Table::Users, company, self.now());
        select.filter = Filter::In(Col::Column("username"), spellings);
        Guard {
            kind: crate::store::GuardKind::Duplicate,
            keys: usernames
                .iter()
                .map(|u| format!("{company}:username:{}", fold_name(u)))
                .collect(),
            select,
            message: match usernames {
                [one] => format!("username '{}' was taken meanwhile", one.trim()),
                _ => "a username of these users was taken meanwhile".to_string(),
            },
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
        // The company's name is its root department's too: one line.
        if breaks_lines(input.name.trim()) {
            errors.push(
                "name",
                format!(
                    "'{}' holds a line break or another control character; a company name is \
                     one line (公司名称不能包含换行或控制字符)",
                    input.name.trim().escape_debug()
                ),
            );
        }
        login_name(&mut errors, "code", &input.code, 32);
        login_name(&mut errors, "admin_username", &input.admin_username, 64);
        non_empty(
            &mut errors,
            "admin_display_name",
            &input.admin_display_name,
            64,
        );
        errors.into_result()?;
        // Codes are typed to log in: one differing only in case would be
        // another company to the store and the same one to a person.
        let companies = self.list_companies().await?;
        if let Some(taken) = same_but_case(&input.code, companies.iter().map(|c| c.code.as_str())) {
            return Err(Error::Duplicate {
                entity: "company".into(),
                message: format!(
                    "company code '{}' is already taken (as '{taken}')",
                    input.code.trim()
                ),
            });
        }
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
        // What the company starts with is announced as its own creation
        // would be: the root department, the administrator role and the
        // administrator.
        cs.audit.push(self.audit(
            None,
            company,
            Table::Departments,
            dept,
            "create",
            vec![FieldChange {
                field: "name".into(),
                before: serde_json::Value::Null,
                after: input.name.trim().into(),
            }],
        ));
        cs.audit.push(self.audit(
            None,
            company,
            Table::Roles,
            role,
            "create",
            vec![FieldChange {
                field: "role".into(),
                before: serde_json::Value::Null,
                after: serde_json::json!({"name": "管理员", "is_admin": true, "permissions": [], "field_rules": []}),
            }],
        ));
        self.announce_org_changes(&mut cs);
        cs.audit.push(self.audit(
            None,
            company,
            Table::Users,
            user,
            "create",
            vec![FieldChange {
                field: "username".into(),
                before: serde_json::Value::Null,
                after: input.admin_username.trim().into(),
            }],
        ));
        cs.events.push(self.event(
            company,
            Table::Users,
            user,
            "user.created".into(),
            serde_json::json!({
                "username": input.admin_username.trim(),
                "display_name": input.admin_display_name.trim(),
                "version": 1,
                "department_id": dept,
                "superior_id": null,
                "role_ids": [role],
                "roles": ["管理员"],
            }),
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

    /// Finds a company by its code, letter case aside.
    pub async fn company_by_code(&self, code: &str) -> Result<Company> {
        // Codes are unique letter case aside: the one spelled so, else the
        // one equal but for case.
        let companies = self.list_companies().await?;
        let exact = companies.iter().position(|c| c.code == code.trim());
        let found = exact.or_else(|| {
            let folded = fold_name(code);
            companies.iter().position(|c| fold_name(&c.code) == folded)
        });
        found
            .map(|i| companies[i].clone())
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

    /// Creates a user (needs `user:manage`). Usernames are unique per company
    /// (letter case aside); the superior must be active.
    /// Unless the actor is an administrator, the user must lie within the
    /// actor's `user:manage` scope (e.g. in their department tree) and
    /// may not get roles with rights beyond the actor's own.
    pub async fn create_user(&self, actor: &Actor, input: NewUser) -> Result<User> {
        // Names without invisible characters (a zero-width space would make
        // a second `user1` that looks like the first).
        let mut input = input;
        input.username = crate::validate::single_line(&input.username);
        input.display_name = crate::validate::single_line(&input.display_name);
        let scope = self.manage_scope(actor, Entity::User)?;
        let mut errors = ValidationErrors::default();
        login_name(&mut errors, "username", &input.username, 64);
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
            self.active_superior(actor, s).await?;
        }
        let roles = self
            .check_user_result(
                actor,
                scope,
                UserState {
                    id: None,
                    department_id: input.department_id,
                    superior_id: input.superior_id,
                    role_ids: &input.role_ids,
                },
            )
            .await?;
        // Also one differing only in case: a person types both the same.
        let sel = Select::all(Table::Users, actor.company_id.0, self.now());
        let users = self.store.select(&sel).await?.rows;
        if let Some(taken) = same_but_case(
            &input.username,
            users.iter().filter_map(|r| r.get("username").as_text()),
        ) {
            let also = if taken == input.username.trim() {
                String::new()
            } else {
                format!(" (as '{taken}')")
            };
            return Err(Error::Duplicate {
                entity: "user".into(),
                message: format!(
                    "username '{}' is already taken{also}",
                    input.username.trim()
                ),
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
        cs.guards
            .push(self.usernames_free_guard(actor.company_id.0, &[input.username.as_str()]));
        if let Some(d) = input.department_id {
            cs.guards.push(self.department_live_guard(actor, d));
        }
        cs.guards.extend(
            roles
                .iter()
                .map(|r| self.role_live_guard(actor.company_id.0, r.id, &r.name)),
        );
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
            serde_json::json!({
                "username": input.username.trim(),
                "display_name": input.display_name.trim(),
                "version": 1,
                "department_id": input.department_id,
                "superior_id": input.superior_id,
                "role_ids": &input.role_ids,
                "roles": roles.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            }),
        ));
        self.apply(cs).await?;
        // A role step with nobody (its administrators' meanwhile) is the
        // new holder's at once.
        if !input.role_ids.is_empty() {
            self.refresh_approvals_waiting_for(actor, None).await;
        }
        self.user(actor, UserId(id)).await
    }

    /// The user `id` as a superior to give someone: a live user of the
    /// company, and active (a deactivated user approves and manages
    /// nothing).
    async fn active_superior(&self, actor: &Actor, id: UserId) -> Result<User> {
        let u = user_from_row(&self.live_row(actor, Table::Users, id.0).await?);
        if !u.active {
            return Err(Error::invalid(
                "superior_id",
                format!(
                    "{} is deactivated (已停用); a deactivated user cannot be a superior",
                    user_label(&u.display_name, &u.username)
                ),
            ));
        }
        Ok(u)
    }

    /// Loads a user of the actor's company.
    pub async fn user(&self, actor: &Actor, id: UserId) -> Result<User> {
        Ok(user_from_row(
            &self.live_row(actor, Table::Users, id.0).await?,
        ))
    }

    /// Finds a user of the actor's company by login name, letter case (and
    /// full-width letters) aside, as usernames are unique.
    pub async fn user_by_username(&self, actor: &Actor, username: &str) -> Result<User> {
        self.user_row_by_login(actor.company_id.0, username)
            .await?
            .map(|r| user_from_row(&r))
            .ok_or_else(|| Error::not_found("user", username))
    }

    /// The user of a company a login name names (letter case aside), for
    /// hosts that authenticate users themselves and then need the actor
    /// ([`Crm::actor`]); deactivated users are found too (the actor is
    /// refused for them).
    pub async fn user_id_by_login(
        &self,
        company: crate::ids::CompanyId,
        username: &str,
    ) -> Result<Option<UserId>> {
        Ok(self
            .user_row_by_login(company.0, username)
            .await?
            .map(|r| UserId(r.id())))
    }

    /// The user row of `company` whose username is `typed`: the one
    /// spelled exactly so, else the one equal but for letter case and
    /// full-width letters (usernames are unique so compared, so there is
    /// at most one; a pair left by old data yields the first by id).
    async fn user_row_by_login(&self, company: Uuid, typed: &str) -> Result<Option<Row>> {
        let typed = typed.trim();
        let half: String = typed.chars().map(crate::validate::halfwidth).collect();
        let mut sel = Select::all(Table::Users, company, self.now());
        // Case-insensitive (ASCII) prefix matches on both backends; the
        // rows found are then compared exactly.
        let mut any = vec![Filter::StartsWith(
            Col::Column("username"),
            typed.to_string(),
        )];
        if half != typed {
            any.push(Filter::StartsWith(Col::Column("username"), half));
        }
        sel.filter = Filter::Or(any);
        sel.sort = vec![crate::store::Sort {
            col: Col::Column("id"),
            desc: false,
        }];
        let rows = self.store.select(&sel).await?.rows;
        if let Some(found) = spelled_or_folded(&rows, "username", typed) {
            return Ok(Some(found.clone()));
        }
        // The stores fold ASCII letters only: `émile` does not find
        // `Émile` by prefix, though the duplicate check (which compares
        // every username folded) takes them for one. Compared so, as
        // `create_user` compares them, before saying there is none.
        let mut all = Select::all(Table::Users, company, self.now());
        all.sort = sel.sort;
        let rows = self.store.select(&all).await?.rows;
        Ok(spelled_or_folded(&rows, "username", typed).cloned())
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
    /// Unless the actor is an administrator, the user must lie within the
    /// actor's `user:manage` scope before and after the change, and hold no
    /// rights beyond the actor's own before or after it. Nobody may take
    /// the company's last active administrator's rights away. A new
    /// superior must be active and must not report to the user already.
    /// An edit that changes nothing writes nothing: no new version, no
    /// event, no audit entry.
    ///
    /// A change taking administrator rights away made at the same moment as
    /// another one (two administrators deactivating each other) is checked
    /// again, as the other left the company: it passes when an active
    /// administrator still remains, else it is refused as leaving the
    /// company without one.
    pub async fn update_user(
        &self,
        actor: &Actor,
        id: UserId,
        expected_version: i64,
        patch: UserPatch,
    ) -> Result<User> {
        for _ in 1..ADMIN_CHECK_ATTEMPTS {
            match self
                .update_user_once(actor, id, expected_version, patch.clone())
                .await
            {
                // Only the administrator roles the check relied on are
                // written besides the user: another change of who is an
                // administrator came first. Checked again.
                Err(Error::Conflict { entity, .. }) if entity == "role" => {}
                other => return other,
            }
        }
        match self
            .update_user_once(actor, id, expected_version, patch)
            .await
        {
            Err(Error::Conflict { entity, .. }) if entity == "role" => {
                let who = self
                    .user(actor, id)
                    .await
                    .map_or_else(|_| id.to_string(), |u| u.username);
                Err(admins_kept_changing(&format!("Changing user '{who}'")))
            }
            other => other,
        }
    }

    /// One attempt of [`Crm::update_user`].
    async fn update_user_once(
        &self,
        actor: &Actor,
        id: UserId,
        expected_version: i64,
        patch: UserPatch,
    ) -> Result<User> {
        let mut patch = patch;
        patch.display_name = patch.display_name.map(|n| crate::validate::single_line(&n));
        let scope = self.manage_scope(actor, Entity::User)?;
        let row = self.live_row(actor, Table::Users, id.0).await?;
        let before = user_from_row(&row);
        let roles_before = self.check_manages_user(actor, scope, &before).await?;
        let mut guards = Vec::new();
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
                guards.push(self.department_live_guard(actor, d));
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
                    let superior = if before.superior_id == Some(s) {
                        // Kept as it is: a superior deactivated since stays.
                        user_from_row(&self.live_row(actor, Table::Users, s.0).await?)
                    } else {
                        self.active_superior(actor, s).await?
                    };
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
                            format!(
                                "{} already reports to {} (directly or through others); superiors cannot form a cycle",
                                user_label(&superior.display_name, &superior.username),
                                user_label(&before.display_name, &before.username),
                            ),
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
        if changes.is_empty() {
            // Nothing changes: nothing is written, announced or audited
            // (no new version), as a record's edit that changes nothing.
            return Ok(before);
        }
        // Roles left as they are count as the live ones the user holds.
        let kept: Vec<RoleId> = roles_before.iter().map(|r| r.id).collect();
        let roles_after = self
            .check_user_result(
                actor,
                scope,
                UserState {
                    id: Some(id),
                    department_id: patch.department_id.unwrap_or(before.department_id),
                    superior_id: patch.superior_id.unwrap_or(before.superior_id),
                    role_ids: patch.role_ids.as_deref().unwrap_or(&kept),
                },
            )
            .await?;
        if patch.role_ids.is_some() {
            guards.extend(
                roles_after
                    .iter()
                    .map(|r| self.role_live_guard(actor.company_id.0, r.id, &r.name)),
            );
        }
        let was_admin = before.active && roles_before.iter().any(|r| r.is_admin);
        let stays_admin =
            patch.active.unwrap_or(before.active) && roles_after.iter().any(|r| r.is_admin);
        let mut cs = ChangeSet {
            guards,
            ..ChangeSet::default()
        };
        if was_admin && !stays_admin {
            let what = format!("Changing user '{}'", before.username);
            cs.ops
                .extend(self.keep_an_admin(actor, Some(id), None, &what).await?);
        }
        // A record's department is its owner's: the records of a user who
        // moves go with them, so that department scopes follow the owner
        // (the old department's manager no longer reads them, the new one
        // does), as a transfer does.
        if let Some(d) = patch.department_id
            && d != before.department_id
        {
            self.restamp_departments(actor, id, d, &mut cs).await?;
        }
        values.push(("updated_at", Value::Timestamp(self.now())));
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
            // Named as it leaves the user (a host mirroring the directory
            // finds the user by username), with the version it gives them.
            serde_json::json!({
                "username": before.username,
                "display_name": patch
                    .display_name
                    .as_deref()
                    .map_or(before.display_name.as_str(), str::trim),
                "version": expected_version + 1,
                "changes": &changes,
            }),
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
        if before.active && patch.active == Some(false) {
            // Approvals waiting for them do not wait any more.
            self.refresh_approvals_waiting_for(actor, Some(id.0)).await;
        } else if (!before.active && patch.active == Some(true))
            || patch
                .role_ids
                .as_ref()
                .is_some_and(|r| *r != before.role_ids)
            || patch.superior_id.is_some_and(|s| s != before.superior_id)
        {
            // Role and superior steps follow who holds them now.
            self.refresh_approvals_waiting_for(actor, None).await;
        }
        self.user(actor, id).await
    }

    /// Moves the records a user owns (live, archived or in the recycle bin)
    /// to the user's new department, each audited and announced as an
    /// update of its department.
    pub(crate) async fn restamp_departments(
        &self,
        actor: &Actor,
        user: UserId,
        department: Option<DepartmentId>,
        cs: &mut ChangeSet,
    ) -> Result<()> {
        let company = actor.company_id.0;
        let now = self.now();
        let new = department.map(|d| d.0);
        for table in Table::ALL.into_iter().filter(|t| t.is_owned()) {
            let mut sel = Select::all(table, company, now);
            sel.lifecycle = crate::store::Lifecycle::Any;
            sel.filter = Filter::Cmp(Col::Column("owner_id"), CmpOp::Eq, Value::Id(user.0));
            for r in self.store.select(&sel).await?.rows {
                let old = r.get("department_id").as_id();
                if old == new {
                    continue;
                }
                let changes = vec![FieldChange {
                    field: "department_id".into(),
                    before: serde_json::json!(old),
                    after: serde_json::json!(new),
                }];
                cs.ops.push(Op::Update {
                    table,
                    id: r.id(),
                    expected_version: r.version(),
                    values: vec![("department_id", new.into())],
                });
                cs.events.push(self.event(
                    company,
                    table,
                    r.id(),
                    format!("{}.updated", crate::crm::entity_name(table)),
                    serde_json::json!({ "version": r.version() + 1, "changes": &changes }),
                ));
                cs.audit
                    .push(self.audit(Some(actor), company, table, r.id(), "update", changes));
            }
        }
        Ok(())
    }

    /// Announces the changes to departments, roles and user groups a change
    /// set audits, one event each (`department.created`, `role.updated`,
    /// `user_group.deleted` …) with the changes and the name, so that a host
    /// mirroring the organisation sees it change.
    fn announce_org_changes(&self, cs: &mut ChangeSet) {
        self.announce_org_changes_of(cs, None);
    }

    /// [`announce_org_changes`](Crm::announce_org_changes) of a change set
    /// changing or deleting `read` (the row as read): its name when the
    /// change leaves the name alone. Every event carries the version the
    /// change gives the record; a `created` one also its starting values
    /// (parent, members, grants …) beside its name.
    fn announce_org_changes_of(&self, cs: &mut ChangeSet, read: Option<&Row>) {
        let mut events = Vec::new();
        for a in &cs.audit {
            let kind = match a.table {
                Table::Departments => "department",
                Table::Roles => "role",
                Table::UserGroups => "user_group",
                _ => continue,
            };
            let done = match a.action.as_str() {
                "create" => "created",
                "update" => "updated",
                "delete" => "deleted",
                other => other,
            };
            // The name as the change leaves it: from the audited change,
            // else from the row the change set writes.
            let written = cs.ops.iter().find_map(|op| match op {
                Op::Insert { table, values } if *table == a.table => values
                    .iter()
                    .any(|(k, v)| *k == "id" && v.as_id() == Some(a.record_id))
                    .then(|| values.iter().find(|(k, _)| *k == "name"))
                    .flatten()
                    .map(|(_, v)| v.to_json()),
                Op::Update {
                    table, id, values, ..
                } if *table == a.table && *id == a.record_id => values
                    .iter()
                    .find(|(k, _)| *k == "name")
                    .map(|(_, v)| v.to_json()),
                _ => None,
            });
            let name = a
                .changes
                .iter()
                .find(|c| c.field == "name")
                .map(|c| {
                    if c.after.is_null() {
                        &c.before
                    } else {
                        &c.after
                    }
                })
                .cloned()
                .or(written)
                .or_else(|| {
                    read.filter(|r| r.id() == a.record_id)
                        .map(|r| r.get("name").to_json())
                });
            let mut payload = serde_json::json!({ "name": name, "changes": &a.changes });
            for op in &cs.ops {
                match op {
                    Op::Insert { table, values }
                        if *table == a.table
                            && values
                                .iter()
                                .any(|(k, v)| *k == "id" && v.as_id() == Some(a.record_id)) =>
                    {
                        for (k, v) in values {
                            if !matches!(
                                *k,
                                "id" | "company_id"
                                    | "created_at"
                                    | "updated_at"
                                    | "deleted_at"
                                    | "name"
                                    | "changes"
                            ) {
                                payload[*k] = v.to_json();
                            }
                        }
                    }
                    Op::Update {
                        table,
                        id,
                        expected_version,
                        ..
                    } if *table == a.table && *id == a.record_id => {
                        payload["version"] = serde_json::json!(expected_version + 1);
                    }
                    _ => {}
                }
            }
            events.push(self.event(
                a.company_id,
                a.table,
                a.record_id,
                format!("{kind}.{done}"),
                payload,
            ));
        }
        cs.events.extend(events);
    }

    /// Sets a user's password (needs `user:manage`) and clears a lockout.
    /// Unless the actor is an administrator, the user must lie within the
    /// actor's `user:manage` scope and hold no rights beyond the actor's own
    /// (or the actor could log in as them).
    pub async fn set_password(&self, actor: &Actor, id: UserId, password: &str) -> Result<()> {
        let scope = self.manage_scope(actor, Entity::User)?;
        let row = self.live_row(actor, Table::Users, id.0).await?;
        self.check_manages_user(actor, scope, &user_from_row(&row))
            .await?;
        self.write_password(Some(actor), &row, password, "password_set")
            .await
    }

    /// Changes the actor's own password after checking the current one. A
    /// wrong current password counts toward the lockout as a failed login
    /// does, and a locked account cannot change its password.
    pub async fn change_password(&self, actor: &Actor, current: &str, new: &str) -> Result<()> {
        let row = self.live_row(actor, Table::Users, actor.user_id.0).await?;
        let username = text(&row, "username");
        if let Some(locked) = self.locked(&row, &username) {
            return Err(locked);
        }
        if !verify(&row, current) {
            return Err(self
                .count_failed_login(row.id(), &username)
                .await?
                .unwrap_or_else(|| {
                    Error::Unauthenticated("the current password is wrong".into())
                }));
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

    /// The refusal of a login to an account locked until later than now.
    fn locked(&self, row: &Row, username: &str) -> Option<Error> {
        let until = row.get("locked_until").as_timestamp()?;
        (until > self.now()).then(|| {
            Error::Unauthenticated(format!(
                "account '{username}' is locked after too many failed logins until {}",
                until
                    .with_timezone(&self.config.utc_offset)
                    .format("%Y-%m-%d %H:%M")
            ))
        })
    }

    /// The refusal of a login with the right password to an account that
    /// is deactivated. (An account without a local password never has the
    /// right one; a locked account refuses as a wrong password does: see
    /// [`Crm::authenticate`].)
    fn login_refusal(&self, row: &Row, username: &str) -> Option<Error> {
        (row.get("active").as_bool() != Some(true))
            .then(|| Error::Unauthenticated(format!("account '{username}' is deactivated")))
    }

    /// The one refusal of a login that gives nothing away: whether the
    /// company or the user exists, the password was right or the account
    /// is locked. It names the lockout, so that a user locked out knows to
    /// wait.
    fn login_failed(&self) -> Error {
        Error::Unauthenticated(format!(
            "wrong company, username or password (after {} failed logins in a row an account is locked for {} minutes)",
            self.config.max_failed_logins,
            self.config.lockout.num_minutes()
        ))
    }

    /// A live user row read afresh by id.
    async fn fresh_user_row(&self, id: Uuid) -> Result<Option<Row>> {
        Ok(self
            .store
            .get(Table::Users, id)
            .await?
            .filter(|r| r.get("deleted_at").is_null()))
    }

    /// Counts a wrong password against the account `id`, locking it after
    /// [`CrmConfig::max_failed_logins`](crate::crm::CrmConfig) failures in a
    /// row. Attempts made at once all count: a write that finds the account
    /// changed by another attempt reads it again and retries. Returns the
    /// refusal to give when the account is now locked (by this attempt or
    /// another), `None` when the failure was merely counted.
    async fn count_failed_login(&self, id: Uuid, username: &str) -> Result<Option<Error>> {
        for _ in 0..LOGIN_WRITE_ATTEMPTS {
            let Some(row) = self.fresh_user_row(id).await? else {
                return Ok(None);
            };
            if let Some(locked) = self.locked(&row, username) {
                return Ok(Some(locked));
            }
            let failures = row.get("failed_logins").as_int().unwrap_or(0) + 1;
            let lock = failures >= self.config.max_failed_logins;
            let mut cs = ChangeSet::default();
            cs.ops.push(Op::Update {
                table: Table::Users,
                id,
                expected_version: row.version(),
                values: vec![
                    ("failed_logins", Value::Int(if lock { 0 } else { failures })),
                    (
                        "locked_until",
                        if lock {
                            Value::Timestamp(self.now() + self.config.lockout)
                        } else {
                            Value::Null
                        },
                    ),
                ],
            });
            if lock {
                let company = row.get("company_id").as_id().unwrap_or_default();
                cs.audit
                    .push(self.audit(None, company, Table::Users, id, "locked", Vec::new()));
            }
            match self.apply(cs).await {
                Ok(()) if lock => {
                    return Ok(Some(Error::Unauthenticated(format!(
                        "account '{username}' is now locked for {} minutes after {} failed logins",
                        self.config.lockout.num_minutes(),
                        self.config.max_failed_logins
                    ))));
                }
                Ok(()) => return Ok(None),
                Err(Error::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Unauthenticated(format!(
            "too many simultaneous logins to account '{username}'; try again later"
        )))
    }

    /// Logs a user in with a local password. After
    /// [`CrmConfig::max_failed_logins`](crate::crm::CrmConfig) failures in a
    /// row the account is locked for [`CrmConfig::lockout`](crate::crm::CrmConfig).
    /// Attempts made at once all count toward the lockout, and a right
    /// password is refused when the account was locked while it was checked.
    ///
    /// A refusal tells nothing about the account to who does not know its
    /// password: an unknown company or user, a wrong password and a locked
    /// account (whatever the password) get the same message, after the same
    /// password check (an unknown user's password is checked against a
    /// stand-in hash). Only the right password learns that the account is
    /// deactivated. An account without a local password has no right one.
    pub async fn authenticate(
        &self,
        company_code: &str,
        username: &str,
        password: &str,
    ) -> Result<Actor> {
        let row = match self.company_by_code(company_code).await {
            Ok(company) => self.user_row_by_login(company.id.0, username).await?,
            Err(Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let Some(row) = row else {
            verify_hash(None, password);
            return Err(self.login_failed());
        };
        // Messages name the account as stored, whatever its typed case.
        let username = text(&row, "username");
        let username = username.as_str();
        let id = row.id();
        let mut hash = row.get("password_hash").clone();
        let mut verified = verify(&row, password);
        let mut row = row;
        for _ in 0..LOGIN_WRITE_ATTEMPTS {
            // Locked: refused whatever the password, as a wrong one is, so
            // that guesses made meanwhile learn nothing.
            if self.locked(&row, username).is_some() {
                return Err(self.login_failed());
            }
            if !verified {
                // Only an active account with a password counts failures.
                if row.get("active").as_bool() == Some(true) && !hash.is_null() {
                    match self.count_failed_login(id, username).await {
                        Ok(_) | Err(Error::Unauthenticated(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                return Err(self.login_failed());
            }
            if let Some(refusal) = self.login_refusal(&row, username) {
                return Err(refusal);
            }
            // Checking the password takes a while: other attempts may have
            // locked the account (or someone changed the password)
            // meanwhile. Decide on the account as it is now.
            row = self
                .fresh_user_row(id)
                .await?
                .ok_or_else(|| self.login_failed())?;
            if row.get("password_hash") != &hash {
                hash = row.get("password_hash").clone();
                verified = verify(&row, password);
                continue;
            }
            if self.locked(&row, username).is_some() {
                return Err(self.login_failed());
            }
            if let Some(refusal) = self.login_refusal(&row, username) {
                return Err(refusal);
            }
            if row.get("failed_logins").as_int() == Some(0) && row.get("locked_until").is_null() {
                return self.actor(UserId(id)).await;
            }
            let mut cs = ChangeSet::default();
            cs.ops.push(Op::Update {
                table: Table::Users,
                id,
                expected_version: row.version(),
                values: vec![
                    ("failed_logins", Value::Int(0)),
                    ("locked_until", Value::Null),
                ],
            });
            match self.apply(cs).await {
                Ok(()) => return self.actor(UserId(id)).await,
                // Read the account again on the next round.
                Err(Error::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Unauthenticated(format!(
            "too many simultaneous logins to account '{username}'; try again later"
        )))
    }

    /// Creates a department under `parent` (needs `department:manage`).
    /// Its name must be free among the departments under that parent
    /// (letter case aside).
    /// Unless the actor's grant covers all departments, the parent must lie
    /// within its scope (the actor's department, or its tree).
    pub async fn create_department(
        &self,
        actor: &Actor,
        name: &str,
        parent: Option<DepartmentId>,
    ) -> Result<Department> {
        let name = &crate::validate::single_line(name);
        let scope = self.manage_scope(actor, Entity::Department)?;
        let mut errors = ValidationErrors::default();
        org_name(&mut errors, name, NameScope::Department(parent).what());
        errors.into_result()?;
        if !department_in_scope(actor, scope, parent) {
            return Err(Error::Forbidden(format!(
                "{} may manage departments only within the data scope '{}'; the new department's parent lies outside it",
                actor.display_name,
                scope.name()
            )));
        }
        let id = self.new_id();
        let mut cs = ChangeSet::default();
        if let Some(p) = parent {
            self.check_department(actor, p).await?;
            cs.guards.push(self.department_live_guard(actor, p));
        }
        // Departments are named by name (on the command line, in imports):
        // two of one name under one parent could not be told apart.
        cs.guards.push(
            self.name_free(actor, NameScope::Department(parent), name, None)
                .await?,
        );
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
        self.announce_org_changes(&mut cs);
        self.apply(cs).await?;
        Ok(department_from_row(
            &self.live_row(actor, Table::Departments, id).await?,
        ))
    }

    /// Renames or moves a department, checking the expected version (the
    /// [`Department::version`] the caller read: a change made by someone
    /// else since is a conflict, not overwritten); a department cannot move
    /// below itself, nor below a department moved below it meanwhile (moves
    /// of one company are checked one at a time inside their writes).
    /// Renamed or moved, its name must be free among its (new) siblings.
    /// Unless the actor's `department:manage` grant covers all
    /// departments, the department and its new parent must lie within its
    /// scope (the actor's department, or its tree). Its name and parent as
    /// they are change nothing: it is returned as it is, nothing written.
    pub async fn update_department(
        &self,
        actor: &Actor,
        id: DepartmentId,
        expected_version: i64,
        name: Option<&str>,
        parent: Option<Option<DepartmentId>>,
    ) -> Result<Department> {
        let cleaned = name.map(crate::validate::single_line);
        let name = cleaned.as_deref();
        let scope = self.manage_scope(actor, Entity::Department)?;
        let row = self.live_row(actor, Table::Departments, id.0).await?;
        if !department_in_scope(actor, scope, Some(id)) {
            return Err(Error::Forbidden(format!(
                "{} may manage departments only within the data scope '{}'; department '{}' lies outside it",
                actor.display_name,
                scope.name(),
                text(&row, "name")
            )));
        }
        let mut cs = ChangeSet::default();
        let mut values: Vec<(&'static str, Value)> =
            vec![("updated_at", Value::Timestamp(self.now()))];
        let mut changes = Vec::new();
        if let Some(n) = name {
            let mut errors = ValidationErrors::default();
            if n.trim() == text(&row, "name") {
                non_empty(&mut errors, "name", n, 64);
            } else {
                // A new name; one kept as it is stays, whatever it is.
                org_name(&mut errors, n, NameScope::Department(None).what());
            }
            errors.into_result()?;
            values.push(("name", n.trim().into()));
            if n.trim() != text(&row, "name") {
                changes.push(FieldChange {
                    field: "name".into(),
                    before: row.get("name").to_json(),
                    after: n.trim().into(),
                });
            }
        }
        // A name and a parent as they are change nothing: the department
        // is returned as it is, nothing written, announced or recorded.
        let current_parent = row.get("parent_id").as_id().map(DepartmentId);
        let parent = parent.filter(|p| *p != current_parent);
        if changes.is_empty() && parent.is_none() {
            return Ok(department_from_row(&row));
        }
        if let Some(p) = parent {
            if !department_in_scope(actor, scope, p) {
                return Err(Error::Forbidden(format!(
                    "{} may move departments only within the data scope '{}'; the new parent lies outside it",
                    actor.display_name,
                    scope.name()
                )));
            }
            if let Some(p) = p {
                self.check_department(actor, p).await?;
                let all = self.list_departments(actor).await?;
                let below = subtree(id.0, all.iter().map(|d| (d.id.0, d.parent_id.map(|x| x.0))));
                if below.contains(&p.0) {
                    let moving = text(&row, "name");
                    let what = if p == id {
                        format!("department '{moving}' cannot be its own parent")
                    } else {
                        let inner = all
                            .iter()
                            .find(|d| d.id == p)
                            .map_or_else(|| p.to_string(), |d| d.name.clone());
                        format!("department '{inner}' lies inside department '{moving}'")
                    };
                    return Err(Error::invalid(
                        "parent_id",
                        format!("{what}; a department cannot move below itself"),
                    ));
                }
                cs.guards.push(self.department_live_guard(actor, p));
                // The new parent's chain up to the root must stay as read:
                // a move of one of its departments below this one, made
                // meanwhile, would close a cycle. Every move takes one key
                // of the company's tree, and is refused if a department of
                // its chain has another parent by then.
                let mut at = Some(p);
                let chain: Vec<Filter> = std::iter::from_fn(|| {
                    let d = at.and_then(|x| all.iter().find(|d| d.id == x))?;
                    at = d.parent_id;
                    Some(d)
                })
                .take(all.len())
                .map(|d| {
                    Filter::And(vec![
                        Filter::Cmp(Col::Column("id"), CmpOp::Eq, Value::Id(d.id.0)),
                        match d.parent_id {
                            Some(up) => {
                                Filter::Cmp(Col::Column("parent_id"), CmpOp::Ne, Value::Id(up.0))
                            }
                            None => Filter::NotNull(Col::Column("parent_id")),
                        },
                    ])
                })
                .collect();
                let mut moved = Select::all(Table::Departments, actor.company_id.0, self.now());
                moved.filter = Filter::Or(chain);
                cs.guards.push(Guard {
                    kind: crate::store::GuardKind::State,
                    keys: vec![format!("{}:department_tree", actor.company_id.0)],
                    select: moved,
                    message: format!(
                        "a department above the new parent was moved meanwhile; \
                         read the departments again before moving '{}'",
                        text(&row, "name")
                    ),
                });
            }
            values.push(("parent_id", p.map(|p| p.0).into()));
            changes.push(FieldChange {
                field: "parent_id".into(),
                before: row.get("parent_id").to_json(),
                after: serde_json::json!(p),
            });
        }
        // A new name, or a new parent, must not be a sibling's name.
        let renamed = name.is_some_and(|n| n.trim() != text(&row, "name"));
        let moved = parent.is_some_and(|p| p != current_parent);
        if renamed || moved {
            let new_name = name.map_or_else(|| text(&row, "name"), |n| n.trim().to_string());
            let under = parent.unwrap_or(current_parent);
            cs.guards.push(
                self.name_free(actor, NameScope::Department(under), &new_name, Some(id.0))
                    .await?,
            );
        }
        cs.ops.push(Op::Update {
            table: Table::Departments,
            id: id.0,
            expected_version,
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
        self.announce_org_changes_of(&mut cs, Some(&row));
        self.apply(cs).await?;
        Ok(department_from_row(
            &self.live_row(actor, Table::Departments, id.0).await?,
        ))
    }

    /// Deletes an empty department: no sub-departments, no users, no
    /// records carrying it (customers, contacts, follow-ups, opportunities,
    /// quotes, contracts; live, archived or in the recycle bin: the refusal
    /// counts them, to be transferred first), and no pool listing it as a
    /// member department (the refusal names the pools). The emptiness is
    /// checked again inside the write, under the key that creating a user
    /// or a sub-department in it also takes, so neither can slip in
    /// between. Unless the actor's `department:manage` grant covers
    /// all departments, the department must lie within its scope.
    pub async fn delete_department(&self, actor: &Actor, id: DepartmentId) -> Result<()> {
        let scope = self.manage_scope(actor, Entity::Department)?;
        let row = self.live_row(actor, Table::Departments, id.0).await?;
        let name = text(&row, "name");
        if !department_in_scope(actor, scope, Some(id)) {
            return Err(Error::Forbidden(format!(
                "{} may manage departments only within the data scope '{}'; department '{name}' lies outside it",
                actor.display_name,
                scope.name()
            )));
        }
        let all = self.list_departments(actor).await?;
        if all.iter().any(|d| d.parent_id == Some(id)) {
            return Err(Error::InvalidState(format!(
                "department '{name}' still has sub-departments"
            )));
        }
        let users = self.list_users(actor, None).await?;
        if let Some(u) = users.iter().find(|u| u.department_id == Some(id)) {
            return Err(Error::InvalidState(format!(
                "department '{name}' still has users (e.g. {})",
                u.username
            )));
        }
        // Records carrying the department (live, archived or in the
        // recycle bin): once it is gone no department manager would read
        // them again.
        let company = actor.company_id.0;
        let mut carried = Vec::new();
        let mut record_guards = Vec::new();
        for table in Table::ALL.into_iter().filter(|t| t.is_owned()) {
            let mut sel = Select::all(table, company, self.now());
            sel.lifecycle = crate::store::Lifecycle::Any;
            sel.filter = Filter::Cmp(Col::Column("department_id"), CmpOp::Eq, Value::Id(id.0));
            let n = self.count(sel.clone()).await?;
            if n > 0 {
                carried.push(records_of(table, n));
            }
            record_guards.push(Guard {
                kind: crate::store::GuardKind::State,
                keys: vec![department_key(company, id)],
                select: sel,
                message: format!(
                    "records were put into department '{name}' meanwhile; transfer them to owners in other departments first"
                ),
            });
        }
        if !carried.is_empty() {
            return Err(Error::InvalidState(format!(
                "department '{name}' still holds {} (archived and recycle-bin records included); transfer them to owners in other departments first (部门下仍有业务数据，请先转移)",
                carried.join(", ")
            )));
        }
        // Pools whose members are the department's users.
        let mut pools = Select::all(Table::Pools, company, self.now());
        pools.filter = Filter::HoldsId(Col::Column("member_department_ids"), id.0);
        pools.sort = vec![crate::store::Sort {
            col: Col::Column("name"),
            desc: false,
        }];
        let in_pools: Vec<String> = self
            .store
            .select(&pools)
            .await?
            .rows
            .iter()
            .map(|r| text(r, "name"))
            .collect();
        if !in_pools.is_empty() {
            return Err(Error::InvalidState(format!(
                "department '{name}' is a member department of pool{} {}; take it out of {} first",
                if in_pools.len() == 1 { "" } else { "s" },
                in_pools.join(", "),
                if in_pools.len() == 1 {
                    "that pool"
                } else {
                    "those pools"
                }
            )));
        }
        let inside = |table: Table, col: &'static str, message: String| {
            let mut sel = Select::all(table, company, self.now());
            sel.filter = Filter::Cmp(Col::Column(col), CmpOp::Eq, Value::Id(id.0));
            Guard {
                kind: crate::store::GuardKind::State,
                keys: vec![department_key(company, id)],
                select: sel,
                message,
            }
        };
        let mut cs = ChangeSet {
            guards: vec![
                inside(
                    Table::Users,
                    "department_id",
                    format!("department '{name}' received a user meanwhile; it still has users"),
                ),
                inside(
                    Table::Departments,
                    "parent_id",
                    format!(
                        "department '{name}' received a sub-department meanwhile; it still has sub-departments"
                    ),
                ),
                Guard {
                    kind: crate::store::GuardKind::State,
                    keys: vec![department_key(company, id)],
                    select: pools,
                    message: format!(
                        "department '{name}' was made a member department of a pool meanwhile; take it out of the pool first"
                    ),
                },
            ],
            ..ChangeSet::default()
        };
        cs.guards.extend(record_guards);
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
        self.announce_org_changes_of(&mut cs, Some(&row));
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

    /// Finds a department by id or by name (as typed, else letter case
    /// aside). A name several departments
    /// share (under different parents, or kept from before names were
    /// checked) is refused as ambiguous, naming each with its parent and
    /// id: acting on one of them by chance would act on the wrong one.
    pub async fn resolve_department(&self, actor: &Actor, key: &str) -> Result<Department> {
        let all = self.list_departments(actor).await?;
        if let Ok(id) = key.parse::<DepartmentId>() {
            return all
                .into_iter()
                .find(|d| d.id == id)
                .ok_or_else(|| Error::not_found("department", key));
        }
        let named = named_as(&all, |d| &d.name, key);
        match named.as_slice() {
            [] => Err(Error::not_found("department", key)),
            [one] => Ok((*one).clone()),
            more => {
                let under = |d: &Department| {
                    d.parent_id
                        .and_then(|p| all.iter().find(|x| x.id == p))
                        .map_or_else(|| "at the top".to_string(), |p| format!("under {}", p.name))
                };
                Err(ambiguous(
                    "department",
                    "部门",
                    key,
                    more.iter().map(|d| format!("{} (id {})", under(d), d.id)),
                ))
            }
        }
    }

    /// Creates a role (needs `role:manage`). Its name must be free among
    /// the company's roles (letter case aside). Unless the actor is an
    /// administrator, the role may grant nothing beyond the actor's own
    /// rights (see [`Actor::excess_over`]): no administrator role, no wider
    /// grant, no field shown more openly. No role takes a grant on users
    /// other than `user:manage` (every user reads the directory; that grant
    /// alone manages users).
    pub async fn create_role(&self, actor: &Actor, spec: RoleSpec) -> Result<Role> {
        let mut spec = spec;
        spec.name = crate::validate::single_line(&spec.name);
        self.require(actor, Entity::Role, Action::Manage)?;
        let mut errors = ValidationErrors::default();
        org_name(&mut errors, &spec.name, NameScope::Role.what());
        spec.field_rules = self
            .checked_rules(actor, &spec.field_rules, &[], &mut errors)
            .await?;
        check_scopes(&spec.permissions, &[], &mut errors);
        errors.into_result()?;
        if let Some(why) = actor.excess_over(&[spec_role(&spec)]) {
            return Err(Error::Forbidden(format!(
                "{} may not create role '{}': {why}; only an administrator can grant rights beyond their own",
                actor.display_name,
                spec.name.trim()
            )));
        }
        // Roles are named by name (on the command line, in user imports):
        // two of one name could not be told apart.
        let name_guard = self
            .name_free(actor, NameScope::Role, &spec.name, None)
            .await?;
        let id = self.new_id();
        let mut cs = ChangeSet {
            guards: vec![name_guard],
            ..ChangeSet::default()
        };
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
        self.announce_org_changes(&mut cs);
        self.apply(cs).await?;
        role_from_row(&self.live_row(actor, Table::Roles, id).await?)
    }

    /// Replaces a role's definition, checking the expected version. A new
    /// name must be free among the company's roles. Unless
    /// the actor is an administrator, neither the role as it is nor as it
    /// would be may grant anything beyond the actor's own rights (see
    /// [`Actor::excess_over`]). Nobody may turn the administrator role of
    /// the company's last active administrator into an ordinary one.
    /// An administrator role's grants and field rules are not changed (an
    /// administrator may do everything whatever they are); its name may be.
    /// The definition as it is (grants and field rules in any order)
    /// changes nothing: the role is returned as it is, nothing written.
    /// Turning an administrator role into an ordinary one at the same
    /// moment as another change of who is an administrator is checked
    /// again, as that change left the company (see [`Crm::update_user`]).
    pub async fn update_role(
        &self,
        actor: &Actor,
        id: RoleId,
        expected_version: i64,
        spec: RoleSpec,
    ) -> Result<Role> {
        let other_role = |e: &Error| matches!(e, Error::Conflict { entity, id: r, .. } if entity == "role" && *r != id.to_string());
        for _ in 1..ADMIN_CHECK_ATTEMPTS {
            match self
                .update_role_once(actor, id, expected_version, spec.clone())
                .await
            {
                // Another administrator role the check relied on was
                // written meanwhile (not this one, which the caller read):
                // checked again.
                Err(e) if other_role(&e) => {}
                other => return other,
            }
        }
        match self
            .update_role_once(actor, id, expected_version, spec.clone())
            .await
        {
            Err(e) if other_role(&e) => Err(admins_kept_changing(&format!(
                "Making role '{}' an ordinary role",
                spec.name.trim()
            ))),
            other => other,
        }
    }

    /// One attempt of [`Crm::update_role`].
    async fn update_role_once(
        &self,
        actor: &Actor,
        id: RoleId,
        expected_version: i64,
        spec: RoleSpec,
    ) -> Result<Role> {
        let mut spec = spec;
        spec.name = crate::validate::single_line(&spec.name);
        self.require(actor, Entity::Role, Action::Manage)?;
        let before = self.load_roles(actor, &[id]).await?.remove(0);
        if let Some(why) = actor.excess_over(std::slice::from_ref(&before)) {
            return Err(Error::Forbidden(format!(
                "{} may not change role '{}': {why}; only an administrator can",
                actor.display_name, before.name
            )));
        }
        let mut errors = ValidationErrors::default();
        if spec.name.trim() == before.name {
            non_empty(&mut errors, "name", &spec.name, 64);
        } else {
            // A new name; one kept as it is stays, whatever it is.
            org_name(&mut errors, &spec.name, NameScope::Role.what());
        }
        spec.field_rules = self
            .checked_rules(actor, &spec.field_rules, &before.field_rules, &mut errors)
            .await?;
        check_scopes(&spec.permissions, &before.permissions, &mut errors);
        if spec.is_admin {
            check_admin_role_rights(&before, &spec, &mut errors);
        }
        errors.into_result()?;
        if let Some(why) = actor.excess_over(&[spec_role(&spec)]) {
            return Err(Error::Forbidden(format!(
                "{} may not give role '{}' these rights: {why}; only an administrator can grant rights beyond their own",
                actor.display_name, before.name
            )));
        }
        // A definition as it is changes nothing: the role is returned as
        // it is, nothing written, announced or recorded.
        let after = spec_role(&spec);
        let same_set = |a: &[Permission], b: &[Permission]| {
            a.len() == b.len() && a.iter().all(|x| b.contains(x))
        };
        let same_rules = |a: &[FieldRule], b: &[FieldRule]| {
            a.len() == b.len() && a.iter().all(|x| b.contains(x))
        };
        if after.name == before.name
            && after.is_admin == before.is_admin
            && same_set(&after.permissions, &before.permissions)
            && same_rules(&after.field_rules, &before.field_rules)
        {
            return Ok(before);
        }
        let mut cs = ChangeSet::default();
        if spec.name.trim() != before.name {
            cs.guards.push(
                self.name_free(actor, NameScope::Role, &spec.name, Some(id.0))
                    .await?,
            );
        }
        if before.is_admin && !spec.is_admin {
            let what = format!("Making role '{}' an ordinary role", before.name);
            cs.ops
                .extend(self.keep_an_admin(actor, None, Some(id), &what).await?);
        }
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
        self.announce_org_changes(&mut cs);
        self.apply(cs).await?;
        role_from_row(&self.live_row(actor, Table::Roles, id.0).await?)
    }

    /// Deletes a role (needs `role:manage`), checking the expected version.
    /// A role still held by a user, active or not, or named by a step of
    /// an active approval flow is refused with who or what holds it: take
    /// it from them, or change the flow, first. Both are checked again
    /// inside the write, under the key that giving the role to a user or
    /// naming it in a flow takes, so neither can slip in between. Unless
    /// the actor is an administrator, the role may grant nothing beyond the
    /// actor's own rights.
    pub async fn delete_role(
        &self,
        actor: &Actor,
        id: RoleId,
        expected_version: i64,
    ) -> Result<()> {
        self.require(actor, Entity::Role, Action::Manage)?;
        let company = actor.company_id.0;
        let role = self.load_roles(actor, &[id]).await?.remove(0);
        if let Some(why) = actor.excess_over(std::slice::from_ref(&role)) {
            return Err(Error::Forbidden(format!(
                "{} may not delete role '{}': {why}; only an administrator can",
                actor.display_name, role.name
            )));
        }
        let mut holders = Select::all(Table::Users, company, self.now());
        holders.filter = Filter::HoldsId(Col::Column("role_ids"), id.0);
        holders.sort = vec![crate::store::Sort {
            col: Col::Column("username"),
            desc: false,
        }];
        let mut flows = Select::all(Table::ApprovalFlows, company, self.now());
        flows.filter = Filter::And(vec![
            Filter::Cmp(Col::Column("active"), CmpOp::Eq, Value::Bool(true)),
            Filter::HoldsId(Col::Column("definition"), id.0),
        ]);
        let mut first = holders.clone();
        first.paging = crate::store::Paging::Offset {
            offset: 0,
            limit: 3,
        };
        first.with_total = true;
        let found = self.store.select(&first).await?;
        if let Some(total) = found.total.filter(|n| *n > 0) {
            let names: Vec<String> = found.rows.iter().map(|u| text(u, "username")).collect();
            return Err(Error::InvalidState(format!(
                "role '{}' is still held by {total} user{} ({}{}); take it from them first",
                role.name,
                if total == 1 { "" } else { "s" },
                names.join(", "),
                if total > names.len() as u64 {
                    ", …"
                } else {
                    ""
                }
            )));
        }
        if let Some(flow) = self.store.select(&flows).await?.rows.first() {
            return Err(Error::InvalidState(format!(
                "role '{}' is an approver in the approval flow '{}' ({}); change the flow first",
                role.name,
                text(flow, "name"),
                text(flow, "doc_type")
            )));
        }
        let key = role_key(company, id);
        let guards = vec![
            Guard {
                kind: crate::store::GuardKind::State,
                keys: vec![key.clone()],
                select: holders,
                message: format!(
                    "role '{}' was given to a user meanwhile; it is still held",
                    role.name
                ),
            },
            Guard {
                kind: crate::store::GuardKind::State,
                keys: vec![key],
                select: flows,
                message: format!(
                    "role '{}' was named in an approval flow meanwhile; change the flow first",
                    role.name
                ),
            },
        ];
        let now = self.now();
        let mut cs = ChangeSet {
            guards,
            ..ChangeSet::default()
        };
        cs.ops.push(Op::Update {
            table: Table::Roles,
            id: id.0,
            expected_version,
            values: vec![
                ("deleted_at", Value::Timestamp(now)),
                ("updated_at", Value::Timestamp(now)),
            ],
        });
        cs.audit.push(self.audit(
            Some(actor),
            company,
            Table::Roles,
            id.0,
            "delete",
            vec![FieldChange {
                field: "role".into(),
                before: serde_json::json!({"name": role.name, "is_admin": role.is_admin, "permissions": role.permissions, "field_rules": role.field_rules}),
                after: serde_json::Value::Null,
            }],
        ));
        self.announce_org_changes(&mut cs);
        if let Some(e) = cs.events.last_mut() {
            let mut payload = e.payload.to_value();
            payload["name"] = serde_json::json!(role.name);
            e.payload = payload.into();
        }
        self.apply(cs).await
    }

    /// The company's roles.
    pub async fn list_roles(&self, actor: &Actor) -> Result<Vec<Role>> {
        let mut sel = Select::all(Table::Roles, actor.company_id.0, self.now());
        sel.sort = vec![crate::store::Sort {
            col: Col::Column("created_at"),
            desc: false,
        }];
        let mut roles = self
            .store
            .select(&sel)
            .await?
            .rows
            .iter()
            .map(role_from_row)
            .collect::<Result<Vec<_>>>()?;
        self.canonical_rules(
            actor.company_id.0,
            roles
                .iter_mut()
                .flat_map(|r| r.field_rules.iter_mut())
                .collect(),
        )
        .await?;
        Ok(roles)
    }

    /// Finds a role by id or by name (as typed, else letter case aside). A
    /// name several roles share (kept
    /// from before names were checked) is refused as ambiguous, naming
    /// their ids.
    pub async fn resolve_role(&self, actor: &Actor, key: &str) -> Result<Role> {
        let all = self.list_roles(actor).await?;
        if let Ok(id) = key.parse::<RoleId>() {
            return all
                .into_iter()
                .find(|r| r.id == id)
                .ok_or_else(|| Error::not_found("role", key));
        }
        let named = named_as(&all, |r| &r.name, key);
        match named.len() {
            0 => Err(Error::not_found("role", key)),
            1 => Ok(named[0].clone()),
            _ => Err(ambiguous(
                "role",
                "角色",
                key,
                named.iter().map(|r| format!("id {}", r.id)),
            )),
        }
    }

    /// Finds a user group by id or by name (as typed, else letter case
    /// aside). A name several groups share
    /// (kept from before names were checked) is refused as ambiguous,
    /// naming their ids.
    pub async fn resolve_group(&self, actor: &Actor, key: &str) -> Result<UserGroup> {
        let all = self.list_groups(actor).await?;
        if let Ok(id) = key.parse::<GroupId>() {
            return all
                .into_iter()
                .find(|g| g.id == id)
                .ok_or_else(|| Error::not_found("user group", key));
        }
        let named = named_as(&all, |g| &g.name, key);
        match named.len() {
            0 => Err(Error::not_found("user group", key)),
            1 => Ok(named[0].clone()),
            _ => Err(ambiguous(
                "user group",
                "用户组",
                key,
                named.iter().map(|g| format!("id {}", g.id)),
            )),
        }
    }

    /// Creates a user group (needs `user_group:manage`). Its name must be
    /// free among the company's groups (letter case aside); a deactivated
    /// user cannot be a member.
    pub async fn create_group(
        &self,
        actor: &Actor,
        name: &str,
        members: &[UserId],
    ) -> Result<UserGroup> {
        let name = &crate::validate::single_line(name);
        self.require(actor, Entity::UserGroup, Action::Manage)?;
        let mut errors = ValidationErrors::default();
        org_name(&mut errors, name, NameScope::Group.what());
        errors.into_result()?;
        self.check_group_members(actor, members, &[]).await?;
        // Groups are named by name (on the command line, to share with):
        // two of one name could not be told apart.
        let name_guard = self.name_free(actor, NameScope::Group, name, None).await?;
        let id = self.new_id();
        let mut cs = ChangeSet {
            guards: vec![name_guard],
            ..ChangeSet::default()
        };
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
        self.announce_org_changes(&mut cs);
        self.apply(cs).await?;
        Ok(group_from_row(
            &self.live_row(actor, Table::UserGroups, id).await?,
        ))
    }

    /// Refuses group members that are not live users of the company, and
    /// deactivated users not already among `current` (a group keeps a
    /// member deactivated since, but gains no deactivated one).
    async fn check_group_members(
        &self,
        actor: &Actor,
        members: &[UserId],
        current: &[UserId],
    ) -> Result<()> {
        let mut inactive = Vec::new();
        for m in members {
            let u = user_from_row(&self.live_row(actor, Table::Users, m.0).await?);
            if !u.active && !current.contains(m) {
                inactive.push(user_label(&u.display_name, &u.username));
            }
        }
        if inactive.is_empty() {
            Ok(())
        } else {
            Err(Error::invalid(
                "members",
                format!(
                    "{} {} deactivated (已停用); a deactivated user cannot join a group",
                    inactive.join(", "),
                    if inactive.len() == 1 { "is" } else { "are" }
                ),
            ))
        }
    }

    /// Replaces a group's members. A deactivated user is refused as a new
    /// member. The members as they are (in any order) change nothing: the
    /// group is returned as it is, nothing written.
    pub async fn set_group_members(
        &self,
        actor: &Actor,
        id: GroupId,
        expected_version: i64,
        members: &[UserId],
    ) -> Result<UserGroup> {
        self.require(actor, Entity::UserGroup, Action::Manage)?;
        let row = self.live_row(actor, Table::UserGroups, id.0).await?;
        let current: Vec<UserId> = json_ids(row.get("member_ids"))
            .into_iter()
            .map(UserId)
            .collect();
        self.check_group_members(actor, members, &current).await?;
        // The members as they are change nothing: the group is returned
        // as it is, nothing written, announced or recorded.
        let distinct: std::collections::BTreeSet<UserId> = members.iter().copied().collect();
        if distinct == current.iter().copied().collect() {
            return Ok(group_from_row(&row));
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
        self.announce_org_changes_of(&mut cs, Some(&row));
        self.apply(cs).await?;
        Ok(group_from_row(
            &self.live_row(actor, Table::UserGroups, id.0).await?,
        ))
    }

    /// Deletes a user group (needs `user_group:manage`), checking the
    /// expected version. Nothing else names a group: shares made with one
    /// were made member by member and stay.
    pub async fn delete_group(
        &self,
        actor: &Actor,
        id: GroupId,
        expected_version: i64,
    ) -> Result<()> {
        self.require(actor, Entity::UserGroup, Action::Manage)?;
        let row = self.live_row(actor, Table::UserGroups, id.0).await?;
        let now = self.now();
        let mut cs = ChangeSet::default();
        cs.ops.push(Op::Update {
            table: Table::UserGroups,
            id: id.0,
            expected_version,
            values: vec![
                ("deleted_at", Value::Timestamp(now)),
                ("updated_at", Value::Timestamp(now)),
            ],
        });
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::UserGroups,
            id.0,
            "delete",
            vec![FieldChange {
                field: "group".into(),
                before: serde_json::json!({"name": text(&row, "name"), "member_ids": row.get("member_ids").to_json()}),
                after: serde_json::Value::Null,
            }],
        ));
        self.announce_org_changes_of(&mut cs, Some(&row));
        self.apply(cs).await
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

/// `n` records of an owned table, as a refusal counts them: `3 customers
/// (客户)`.
fn records_of(table: Table, n: u64) -> String {
    let (one, many) = match table {
        Table::Customers => ("customer", "customers"),
        Table::Contacts => ("contact", "contacts"),
        Table::FollowUps => ("follow-up", "follow-ups"),
        Table::Opportunities => ("opportunity", "opportunities"),
        Table::Quotes => ("quote", "quotes"),
        Table::Contracts => ("contract", "contracts"),
        _ => ("record", "records"),
    };
    let zh = crate::entity::Entity::of_table(table).map_or("记录", |e| e.name_zh());
    format!("{n} {} ({zh})", if n == 1 { one } else { many })
}

/// The refusal of a name that several roles, groups or departments share:
/// each is named (`which`: its id, and where it is), to be named by id.
fn ambiguous(what: &str, what_zh: &str, name: &str, which: impl Iterator<Item = String>) -> Error {
    let which: Vec<String> = which.collect();
    Error::invalid(
        what,
        format!(
            "'{}' names {} {what}s ({what_zh}名称重复): {}; name the one meant by its id",
            name.trim(),
            which.len(),
            which.join(", ")
        ),
    )
}

/// How a user whose display name another user shares is named in exports
/// and may be named in imports: `张伟 (zhangwei2)`.
pub(crate) fn user_label(display_name: &str, username: &str) -> String {
    format!("{display_name} ({username})")
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

/// Refuses a change to the grants or field rules of a role that is (or
/// becomes) an administrator role: administrators may do and see
/// everything whatever their roles grant, so such a change would do
/// nothing while seeming to. Grants and rules are compared as sets (their
/// order aside); renaming the role is left alone.
fn check_admin_role_rights(before: &Role, spec: &RoleSpec, errors: &mut ValidationErrors) {
    let same = |a: &[Permission], b: &[Permission]| {
        a.iter().all(|p| b.contains(p)) && b.iter().all(|p| a.contains(p))
    };
    if !same(&spec.permissions, &before.permissions) {
        errors.push(
            "permissions",
            format!(
                "role '{}' is an administrator role (管理员角色): administrators may do everything whatever the role grants, so its permissions cannot be changed",
                before.name
            ),
        );
    }
    let rules_same = spec
        .field_rules
        .iter()
        .all(|r| before.field_rules.contains(r))
        && before
            .field_rules
            .iter()
            .all(|r| spec.field_rules.contains(r));
    if !rules_same {
        errors.push(
            "field_rules",
            format!(
                "role '{}' is an administrator role (管理员角色): administrators see and edit every field whatever the role's field rules, so its field rules cannot be changed",
                before.name
            ),
        );
    }
}

/// What belongs to the whole company rather than to an owner or a branch:
/// a grant on it takes the scope `all` (a narrower one would restrict
/// nothing while seeming to).
const COMPANY_WIDE: [Entity; 5] = [
    Entity::Role,
    Entity::UserGroup,
    Entity::CustomField,
    Entity::ApprovalFlow,
    Entity::Product,
];

/// Refuses a grant on a company-wide entity with a scope other than `all`,
/// and a grant on users other than `user:manage` (every user reads the
/// directory, and only `user:manage` manages users: another grant would
/// do nothing while seeming to). One the role already holds is kept, so
/// that a role stored before these were refused loads and stays editable.
fn check_scopes(perms: &[Permission], held: &[Permission], errors: &mut ValidationErrors) {
    for p in perms {
        if p.entity == Entity::User && p.action != Action::Manage && !held.contains(p) {
            errors.push(
                "permissions",
                format!(
                    "{}:{}:{}: every user reads the user directory and only user:manage creates, changes or deactivates users, so a user:{} grant does nothing; grant user:manage[:scope] instead",
                    p.entity.name(),
                    p.action.name(),
                    p.scope.name(),
                    p.action.name()
                ),
            );
            continue;
        }
        if COMPANY_WIDE.contains(&p.entity) && p.scope != DataScope::All && !held.contains(p) {
            errors.push(
                "permissions",
                format!(
                    "{}:{}:{}: {} records belong to the whole company, so grants on them take the scope all",
                    p.entity.name(),
                    p.action.name(),
                    p.scope.name(),
                    p.entity.name()
                ),
            );
        }
    }
}

/// Checks field rules and returns them, each naming its field as
/// [`Actor::field_access`] is asked (see [`rule_field_name`]): the API name
/// of a built-in field, `custom.<key>` of a custom field among `customs`
/// (named by key or label). A field the entity lacks is refused by name;
/// so are two different rules on one field (the same rule twice is kept
/// once). A rule the role already holds on a field no longer defined (a
/// deleted custom field) is kept. A rule on a record's own column (owner,
/// code, times) is refused, unless the role already held it (stored before
/// such rules were refused, it is kept on an edit that leaves it, and still
/// applies where it can).
fn check_rules(
    rules: &[FieldRule],
    held: &[FieldRule],
    customs: &[crate::custom::CustomFieldDef],
    errors: &mut ValidationErrors,
) -> Vec<FieldRule> {
    let mut out: Vec<FieldRule> = Vec::with_capacity(rules.len());
    for r in rules {
        let Some(field) = rule_field_name(r.entity, &r.field, customs) else {
            if held.contains(r) {
                // A rule the role holds on a custom field since deleted:
                // kept, for the field may be defined again (its values
                // stay in the records).
                out.push(r.clone());
                continue;
            }
            let what = match r.field.trim().strip_prefix("custom.") {
                Some(key) => format!("{} has no custom field '{}'", r.entity.name(), key.trim()),
                None => format!("{} has no field '{}'", r.entity.name(), r.field.trim()),
            };
            errors.push("field_rules", what);
            continue;
        };
        let rule = FieldRule {
            entity: r.entity,
            field,
            access: r.access,
        };
        if crate::entity::STANDARD_FIELDS
            .iter()
            .any(|(n, _, _)| *n == rule.field)
        {
            if !held.contains(&rule) {
                // Who owns a record and when it was made are governed by
                // the data scopes, not by field rules.
                errors.push(
                    "field_rules",
                    format!(
                        "{}.{} is a record's own column (id, code, owner, department, times): field rules apply to the entity's fields and custom fields",
                        rule.entity.name(),
                        rule.field
                    ),
                );
                continue;
            }
        } else if rule.entity == Entity::Product && rule.field != crate::sales::product::COST_FIELD
        {
            // The catalogue is read by everyone; only its cost may be kept
            // from people.
            errors.push(
                "field_rules",
                format!(
                    "product.{} takes no field rule: products take one on cost (成本) only",
                    r.field.trim()
                ),
            );
            continue;
        }
        match out
            .iter()
            .find(|o| o.entity == rule.entity && o.field == rule.field)
        {
            Some(o) if o.access == rule.access => {}
            Some(o) => errors.push(
                "field_rules",
                format!(
                    "{}.{} has two rules ({} and {}): give it one",
                    rule.entity.name(),
                    rule.field,
                    o.access.name(),
                    rule.access.name()
                ),
            ),
            None => out.push(rule),
        }
    }
    out
}

/// Whether `password` is the user's: without a stored password none is
/// (checked against a stand-in hash all the same, taking as long).
fn verify(row: &Row, password: &str) -> bool {
    verify_hash(row.get("password_hash").as_text(), password)
}

/// The argon2 hash passwords are checked against when there is no stored
/// one, made once.
fn stand_in_hash() -> &'static str {
    static STAND_IN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    STAND_IN.get_or_init(|| {
        Argon2::default()
            .hash_password(b"a password nobody has")
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// Whether `password` matches the stored `hash`. Without one (an unknown
/// user, an account without a local password) the password is checked
/// against a stand-in hash, so that the answer takes as long, and is false.
fn verify_hash(hash: Option<&str>, password: &str) -> bool {
    let (hash, real) = match hash {
        Some(h) => (h, true),
        None => (stand_in_hash(), false),
    };
    let matches = match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    };
    real && matches
}

#[cfg(test)]
mod tests {
    use super::verify_hash;
    use argon2::Argon2;
    use argon2::password_hash::PasswordHasher;

    /// Without a stored hash the password is checked all the same, against
    /// a stand-in argon2 hash that parses (so the check runs in full and
    /// takes as long as a real one), and never matches; a real hash matches
    /// its own password only.
    #[test]
    fn passwords_are_checked_against_a_stand_in_without_a_hash() {
        let stand_in = super::stand_in_hash();
        assert!(stand_in.starts_with("$argon2"), "{stand_in}");
        assert!(!verify_hash(None, "a password nobody has"));
        assert!(!verify_hash(None, ""));
        let real = Argon2::default()
            .hash_password(b"Right#2026")
            .expect("hash")
            .to_string();
        assert!(verify_hash(Some(&real), "Right#2026"));
        assert!(!verify_hash(Some(&real), "Wrong#2026"));
        assert!(!verify_hash(Some("not a hash"), "Right#2026"));
    }
}
