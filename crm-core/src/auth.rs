//! Permission rules: roles grant actions on entities with a data scope, field
//! rules hide, mask or freeze fields, and an [`Actor`] carries everything
//! needed to decide what one user may see and do.

use crate::custom::CustomFieldDef;
use crate::entity::{Entity, MaskStyle};
use crate::ids::{CompanyId, DepartmentId, RoleId, UserId};
use crate::store::{Row, Scope};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// What can be done to an entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// See records (lists, details, search).
    Read,
    /// Create records.
    Create,
    /// Edit records.
    Update,
    /// Delete (logically), restore and purge records.
    Delete,
    /// Change the owner of records.
    Transfer,
    /// Share records with other users.
    Share,
    /// Export records.
    Export,
    /// Import records.
    Import,
    /// Administer (users, departments, roles, custom fields).
    Manage,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 9] = [
        Action::Read,
        Action::Create,
        Action::Update,
        Action::Delete,
        Action::Transfer,
        Action::Share,
        Action::Export,
        Action::Import,
        Action::Manage,
    ];

    /// The API name.
    pub fn name(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Transfer => "transfer",
            Action::Share => "share",
            Action::Export => "export",
            Action::Import => "import",
            Action::Manage => "manage",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.name() == s.trim())
            .ok_or_else(|| format!("unknown action '{s}'"))
    }
}

/// Which records a grant covers (数据权限), narrowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataScope {
    /// Records the user owns (本人).
    Own,
    /// Records the user or anyone below them in the superior chain owns (本人及下属).
    OwnAndSubordinates,
    /// Records of the user's own department, and the user's own (本部门).
    Department,
    /// Records of the user's department and its sub-departments (本部门及下属部门).
    DepartmentTree,
    /// Every record of the company (全部).
    All,
}

impl DataScope {
    /// Every scope, narrowest first.
    pub const ALL: [DataScope; 5] = [
        DataScope::Own,
        DataScope::OwnAndSubordinates,
        DataScope::Department,
        DataScope::DepartmentTree,
        DataScope::All,
    ];

    /// The API name.
    pub fn name(self) -> &'static str {
        match self {
            DataScope::Own => "own",
            DataScope::OwnAndSubordinates => "own_and_subordinates",
            DataScope::Department => "department",
            DataScope::DepartmentTree => "department_tree",
            DataScope::All => "all",
        }
    }

    /// The Chinese name (数据权限), as role settings show it.
    pub fn name_zh(self) -> &'static str {
        match self {
            DataScope::Own => "本人",
            DataScope::OwnAndSubordinates => "本人及下属",
            DataScope::Department => "本部门",
            DataScope::DepartmentTree => "本部门及下属部门",
            DataScope::All => "全部",
        }
    }
}

impl FromStr for DataScope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DataScope::ALL
            .into_iter()
            .find(|d| d.name() == s.trim())
            .ok_or_else(|| {
                format!(
                    "unknown data scope '{s}'; expected one of {}",
                    DataScope::ALL.map(|d| d.name()).join(", ")
                )
            })
    }
}

/// A grant: `action` on `entity` over `scope`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Permission {
    /// The entity.
    pub entity: Entity,
    /// The action.
    pub action: Action,
    /// Which records.
    pub scope: DataScope,
}

impl FromStr for Permission {
    type Err = String;
    /// Parses `entity:action:scope`, e.g. `customer:read:department_tree`;
    /// the scope defaults to `all` for admin entities and `own` otherwise.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() < 2 || parts.len() > 3 {
            return Err(format!(
                "permission '{s}' must look like entity:action[:scope], e.g. customer:read:department"
            ));
        }
        let entity: Entity = parts[0].parse()?;
        let action: Action = parts[1].parse()?;
        let scope = match parts.get(2) {
            Some(sc) => sc.parse()?,
            None if entity.is_record() => DataScope::Own,
            None => DataScope::All,
        };
        Ok(Permission {
            entity,
            action,
            scope,
        })
    }
}

/// How a role may access one field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldAccess {
    /// Visible and editable.
    Full,
    /// Visible, not editable.
    ReadOnly,
    /// Shown masked (e.g. 138****5678), not editable, not filterable.
    Masked,
    /// Not shown at all, not editable, not filterable.
    Hidden,
}

impl FieldAccess {
    /// The API name.
    pub fn name(self) -> &'static str {
        match self {
            FieldAccess::Full => "full",
            FieldAccess::ReadOnly => "read_only",
            FieldAccess::Masked => "masked",
            FieldAccess::Hidden => "hidden",
        }
    }

    /// The Chinese name (字段权限), as role settings show it.
    pub fn name_zh(self) -> &'static str {
        match self {
            FieldAccess::Full => "可查看可编辑",
            FieldAccess::ReadOnly => "只读",
            FieldAccess::Masked => "脱敏显示",
            FieldAccess::Hidden => "隐藏",
        }
    }
}

impl FromStr for FieldAccess {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "full" => Ok(FieldAccess::Full),
            "read_only" | "readonly" => Ok(FieldAccess::ReadOnly),
            "masked" => Ok(FieldAccess::Masked),
            "hidden" => Ok(FieldAccess::Hidden),
            other => Err(format!(
                "unknown field access '{other}'; expected full, read_only, masked or hidden"
            )),
        }
    }
}

/// A field rule of a role.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FieldRule {
    /// The entity.
    pub entity: Entity,
    /// The field (built-in API name or `custom.key`; see [`rule_field_name`]).
    pub field: String,
    /// The access.
    pub access: FieldAccess,
}

impl FromStr for FieldRule {
    type Err = String;
    /// Parses `entity.field=access`, e.g. `contact.mobile=masked`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (lhs, access) = s
            .split_once('=')
            .ok_or_else(|| format!("field rule '{s}' must look like entity.field=access"))?;
        let (entity, field) = lhs
            .split_once('.')
            .ok_or_else(|| format!("field rule '{s}' must look like entity.field=access"))?;
        Ok(FieldRule {
            entity: entity.parse()?,
            field: field.trim().to_string(),
            access: access.parse()?,
        })
    }
}

/// The name a field rule on `entity` stores for `field` as someone wrote it,
/// the name [`Actor::field_access`] is asked with: the API name of a
/// built-in field (or of a record's own column) named by that name, its
/// Chinese or English label (in any case) or an alias; `custom.<key>` for a
/// custom field among `customs` named by its key or label, with or without
/// `custom.` before it. `None` when the entity has no such field.
pub fn rule_field_name(entity: Entity, field: &str, customs: &[CustomFieldDef]) -> Option<String> {
    let f = field.trim();
    let named = |name: &str, zh: &str, en: &str, aliases: &[&str]| {
        name == f || zh == f || en.eq_ignore_ascii_case(f) || aliases.contains(&f)
    };
    if let Some(def) = entity.field(f) {
        return Some(def.name.to_string());
    }
    if entity == Entity::Product
        && let Some(def) = crate::import::PRODUCT_FIELDS
            .iter()
            .find(|d| named(d.name, d.zh, d.en, d.aliases))
    {
        return Some(def.name.to_string());
    }
    if let Some((name, _, _)) = crate::entity::STANDARD_FIELDS
        .iter()
        .find(|(name, zh, en)| named(name, zh, en, &[]))
    {
        return Some((*name).to_string());
    }
    let key = f.strip_prefix("custom.").map(str::trim).unwrap_or(f);
    let of_entity = || customs.iter().filter(|d| d.entity == entity);
    of_entity()
        .find(|d| d.key == key)
        .or_else(|| {
            of_entity().find(|d| {
                d.label.trim() == key
                    || d.label_en
                        .as_deref()
                        .is_some_and(|en| en.trim().eq_ignore_ascii_case(key))
            })
        })
        .map(|d| format!("custom.{}", d.key))
}

/// A role (角色).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Role {
    /// The id.
    pub id: RoleId,
    /// The name.
    pub name: String,
    /// Administrators may do everything in their company.
    pub is_admin: bool,
    /// Grants.
    pub permissions: Vec<Permission>,
    /// Field rules.
    pub field_rules: Vec<FieldRule>,
    /// The record version.
    pub version: i64,
}

impl Role {
    /// Whether the role grants the action on the entity (over any scope);
    /// an administrator role grants everything.
    pub fn grants(&self, entity: Entity, action: Action) -> bool {
        self.is_admin
            || self
                .permissions
                .iter()
                .any(|p| p.entity == entity && p.action == action)
    }

    /// The role's own rule for a field of the entity, if it sets one.
    pub fn rule_for(&self, entity: Entity, field: &str) -> Option<FieldAccess> {
        self.field_rules
            .iter()
            .find(|fr| fr.entity == entity && fr.field == field)
            .map(|fr| fr.access)
    }
}

/// An authenticated user with everything needed to check permissions:
/// roles, the department subtree and the subordinates. Build one with
/// `Crm::actor` per request; it is a snapshot of the organisation.
#[derive(Clone, Debug)]
pub struct Actor {
    /// The user.
    pub user_id: UserId,
    /// The user's company.
    pub company_id: CompanyId,
    /// The user's display name.
    pub display_name: String,
    /// The user's department.
    pub department_id: Option<DepartmentId>,
    /// The user's roles.
    pub roles: Vec<Role>,
    /// The user's department and every department below it.
    pub department_tree: Vec<DepartmentId>,
    /// Every user below this one in the superior chain (not including self).
    pub subordinates: Vec<UserId>,
    /// The field rules of every non-administrator role of the company: on
    /// an entity none of the actor's roles grants anything on, the
    /// strictest of them applies to each field (see
    /// [`Actor::field_access`]). Empty for an administrator.
    pub company_rules: Vec<FieldRule>,
}

impl Actor {
    /// Whether any role is an administrator role.
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r.is_admin)
    }

    /// The widest scope any role grants for the action, `None` if none does.
    pub fn scope_for(&self, entity: Entity, action: Action) -> Option<DataScope> {
        if self.is_admin() {
            return Some(DataScope::All);
        }
        self.roles
            .iter()
            .flat_map(|r| r.permissions.iter())
            .filter(|p| p.entity == entity && p.action == action)
            .map(|p| p.scope)
            .max()
    }

    /// Whether the actor may do the action on some records of the entity.
    pub fn can(&self, entity: Entity, action: Action) -> bool {
        self.scope_for(entity, action).is_some()
    }

    /// The store scope for the action: which records it covers, including
    /// records shared with the actor. `None` when no role grants the action.
    pub fn store_scope(&self, entity: Entity, action: Action) -> Option<Scope> {
        let me = self.user_id.0;
        let shared = Some(me);
        let scope = match self.scope_for(entity, action) {
            None if matches!(action, Action::Read) => {
                return Some(Scope::Restricted {
                    owners: Vec::new(),
                    departments: Vec::new(),
                    shared_with: shared,
                });
            }
            None => return None,
            Some(DataScope::All) => Scope::All,
            Some(DataScope::Own) => Scope::Restricted {
                owners: vec![me],
                departments: Vec::new(),
                shared_with: shared,
            },
            Some(DataScope::OwnAndSubordinates) => {
                let mut owners = vec![me];
                owners.extend(self.subordinates.iter().map(|u| u.0));
                Scope::Restricted {
                    owners,
                    departments: Vec::new(),
                    shared_with: shared,
                }
            }
            Some(DataScope::Department) => Scope::Restricted {
                owners: vec![me],
                departments: self.department_id.map(|d| d.0).into_iter().collect(),
                shared_with: shared,
            },
            Some(DataScope::DepartmentTree) => Scope::Restricted {
                owners: vec![me],
                departments: self.department_tree.iter().map(|d| d.0).collect(),
                shared_with: shared,
            },
        };
        Some(scope)
    }

    /// Whether a record row (of an owned table) lies within the actor's
    /// scope for the action, not counting shares.
    pub fn covers(&self, entity: Entity, action: Action, row: &Row) -> bool {
        let owner = row.get("owner_id").as_id();
        let dept = row.get("department_id").as_id();
        match self.scope_for(entity, action) {
            None => false,
            Some(DataScope::All) => true,
            Some(DataScope::Own) => owner == Some(self.user_id.0),
            Some(DataScope::OwnAndSubordinates) => owner
                .is_some_and(|o| o == self.user_id.0 || self.subordinates.iter().any(|s| s.0 == o)),
            Some(DataScope::Department) => {
                owner == Some(self.user_id.0)
                    || (dept.is_some() && dept == self.department_id.map(|d| d.0))
            }
            Some(DataScope::DepartmentTree) => {
                owner == Some(self.user_id.0)
                    || dept.is_some_and(|d| self.department_tree.iter().any(|t| t.0 == d))
            }
        }
    }

    /// The effective access to a field:
    ///
    /// - an administrator has full access;
    /// - among the actor's roles that grant read on the entity, the least
    ///   restrictive (a role granting read without a rule for the field
    ///   gives full access: grants add up, as profiles and permission sets
    ///   do in Salesforce or groups in Odoo);
    /// - a role granting no read on the entity has no say on its fields, so
    ///   a role about something else (say, only follow-ups) never lifts a
    ///   rule another role sets;
    /// - when none of the actor's roles grants anything on the entity
    ///   (records seen through shares), and for a user without roles, the
    ///   strictest rule any role of the company sets for it (full when none
    ///   does): a role about something else gives no more than no role;
    /// - products' cost is hidden from a user without roles.
    pub fn field_access(&self, entity: Entity, field: &str) -> FieldAccess {
        if self.is_admin() {
            return FieldAccess::Full;
        }
        // Products' cost is a right the roles give.
        if self.roles.is_empty()
            && entity == Entity::Product
            && field == crate::sales::product::COST_FIELD
        {
            return FieldAccess::Hidden;
        }
        access_holding(&self.roles, &self.company_rules, entity, field)
    }

    /// What holding all of `roles` together would allow beyond this actor's
    /// own rights, in words for a refusal, or `None` when nothing would:
    /// an administrator role; a grant of an entity and action this actor
    /// lacks, or over a wider data scope than the actor's for the same
    /// entity and action (in [`DataScope`] order); or a field the roles show
    /// more openly than the actor sees it (holding the roles together, as
    /// [`Actor::field_access`] combines them: a role granting read on the
    /// entity without a rule for a field gives full access to it). An
    /// administrator holds every right, so nothing exceeds theirs.
    pub fn excess_over(&self, roles: &[Role]) -> Option<String> {
        if self.is_admin() {
            return None;
        }
        for role in roles {
            if role.is_admin {
                return Some(crate::forbidden_zh::admin_role(&role.name));
            }
            for p in &role.permissions {
                let mine = self.scope_for(p.entity, p.action);
                if mine.is_none_or(|m| m < p.scope) {
                    return Some(crate::forbidden_zh::role_grants_more(&role.name, *p, mine));
                }
            }
        }
        if roles.is_empty() {
            return None;
        }
        for entity in Entity::ALL {
            for (field, mine) in self.restricted_fields(entity) {
                // A rule on a record's own column, stored before such rules
                // were refused, cannot be granted again: not counted.
                if crate::entity::STANDARD_FIELDS
                    .iter()
                    .any(|(n, _, _)| *n == field)
                {
                    continue;
                }
                let theirs = access_holding(roles, &self.company_rules, entity, &field);
                if theirs < mine {
                    let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
                    return Some(crate::forbidden_zh::roles_open_field(
                        &names, entity, &field, theirs, mine,
                    ));
                }
            }
        }
        None
    }

    /// Fields of the entity that are not fully accessible, with their access.
    pub fn restricted_fields(&self, entity: Entity) -> Vec<(String, FieldAccess)> {
        if self.is_admin() {
            return Vec::new();
        }
        let mut names: BTreeSet<&str> = self
            .roles
            .iter()
            .flat_map(|r| r.field_rules.iter())
            .chain(&self.company_rules)
            .filter(|fr| fr.entity == entity)
            .map(|fr| fr.field.as_str())
            .collect();
        if self.roles.is_empty() && entity == Entity::Product {
            names.insert(crate::sales::product::COST_FIELD);
        }
        names
            .into_iter()
            .map(|n| (n.to_string(), self.field_access(entity, n)))
            .filter(|(_, a)| *a != FieldAccess::Full)
            .collect()
    }

    /// The names of the roles whose rules make a field of the entity less
    /// than fully accessible (see [`Actor::field_access`]), to tell why it
    /// is hidden, masked or read-only. Empty for an administrator, for a
    /// field nothing restricts, and for a user without roles (held to the
    /// strictest rules of the company's roles).
    pub fn restricting_roles(&self, entity: Entity, field: &str) -> Vec<&str> {
        if self.is_admin() {
            return Vec::new();
        }
        deciding_roles(&self.roles, entity, field)
            .0
            .into_iter()
            .map(|r| r.name.as_str())
            .collect()
    }
}

/// The access to a field that holding all of `roles` gives in a company
/// whose roles set `company_rules`: as [`access_over`] when one of `roles`
/// grants anything on the entity (reading it, or another action: a product
/// manager's role creates and updates products, which everyone reads),
/// else the strictest rule of the company (what is shared with such a
/// holder shows no more than the strictest role of the company would).
fn access_holding(
    roles: &[Role],
    company_rules: &[FieldRule],
    entity: Entity,
    field: &str,
) -> FieldAccess {
    if roles
        .iter()
        .any(|r| r.is_admin || r.permissions.iter().any(|p| p.entity == entity))
    {
        return access_over(roles, entity, field);
    }
    roles
        .iter()
        .flat_map(|r| r.field_rules.iter())
        .chain(company_rules)
        .filter(|fr| fr.entity == entity && fr.field == field)
        .map(|fr| fr.access)
        .max()
        .unwrap_or(FieldAccess::Full)
}

/// The access to a field that holding all of `roles` gives.
///
/// Only the roles granting read on the entity count: the least restrictive
/// of their rules applies, a role of them without a rule for the field
/// giving full access (the union of grants). A role granting no read on
/// the entity contributes nothing, so it cannot lift another role's rule.
/// When none of `roles` grants read on it, the strictest rule any of them
/// sets applies, full when none sets one.
fn access_over(roles: &[Role], entity: Entity, field: &str) -> FieldAccess {
    deciding_roles(roles, entity, field)
        .1
        .unwrap_or(FieldAccess::Full)
}

/// The roles whose rules decide a field's access under [`access_over`],
/// and the access they give (`None`: full access, no role restricts it).
/// With roles granting read on the entity, the field is restricted only
/// when each of them restricts it, and then all of them decide; without
/// any, the roles setting the strictest rule decide.
fn deciding_roles<'a>(
    roles: &'a [Role],
    entity: Entity,
    field: &str,
) -> (Vec<&'a Role>, Option<FieldAccess>) {
    let readers: Vec<&Role> = roles
        .iter()
        .filter(|r| r.grants(entity, Action::Read))
        .collect();
    let access = if readers.is_empty() {
        roles.iter().filter_map(|r| r.rule_for(entity, field)).max()
    } else {
        // A reader without a rule gives full access: `None` sorts first.
        readers
            .iter()
            .map(|r| r.rule_for(entity, field))
            .min()
            .flatten()
    }
    .filter(|a| *a != FieldAccess::Full);
    let deciding = match access {
        None => Vec::new(),
        Some(a) if readers.is_empty() => roles
            .iter()
            .filter(|r| r.rule_for(entity, field) == Some(a))
            .collect(),
        Some(_) => readers,
    };
    (deciding, access)
}

/// Masks a value for display: phones keep the first three and last four
/// digits (138****5678), e-mails the first character and the domain, ID
/// numbers the first six and last four characters, other text its first
/// and last character.
pub fn mask(style: MaskStyle, value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    let keep = |head: usize, tail: usize| -> String {
        if n <= head + tail {
            return "*".repeat(n.max(1));
        }
        let mut s: String = chars[..head].iter().collect();
        s.push_str(&"*".repeat(n - head - tail));
        s.extend(&chars[n - tail..]);
        s
    };
    match style {
        MaskStyle::Phone => keep(3, 4),
        MaskStyle::IdNumber => keep(6, 4),
        MaskStyle::Email => match value.split_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            None => keep(1, 0),
        },
        MaskStyle::Text => {
            if n <= 2 {
                "*".repeat(n.max(1))
            } else {
                keep(1, 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_phone_email_and_id() {
        assert_eq!(mask(MaskStyle::Phone, "13812345678"), "138****5678");
        assert_eq!(
            mask(MaskStyle::Email, "zhang.san@example.com"),
            "z***@example.com"
        );
        assert_eq!(
            mask(MaskStyle::IdNumber, "11010519491231002X"),
            "110105********002X"
        );
        assert_eq!(mask(MaskStyle::Text, "张三丰"), "张*丰");
        assert_eq!(mask(MaskStyle::Text, "张三"), "**");
    }

    #[test]
    fn parses_permissions_and_rules() {
        let p: Permission = "customer:read:department_tree".parse().expect("parse");
        assert_eq!(p.scope, DataScope::DepartmentTree);
        let p: Permission = "customer:update".parse().expect("parse");
        assert_eq!(p.scope, DataScope::Own);
        let p: Permission = "user:manage".parse().expect("parse");
        assert_eq!(p.scope, DataScope::All);
        assert!("customer:fly".parse::<Permission>().is_err());
        let r: FieldRule = "contact.mobile=masked".parse().expect("parse");
        assert_eq!(r.access, FieldAccess::Masked);
    }

    fn role(name: &str, permissions: &[&str], rules: &[&str]) -> Role {
        Role {
            id: RoleId(uuid::Uuid::nil()),
            name: name.into(),
            is_admin: false,
            permissions: permissions
                .iter()
                .map(|p| p.parse().expect("grant"))
                .collect(),
            field_rules: rules.iter().map(|r| r.parse().expect("rule")).collect(),
            version: 1,
        }
    }

    fn holding(roles: Vec<Role>) -> Actor {
        Actor {
            user_id: UserId(uuid::Uuid::nil()),
            company_id: CompanyId(uuid::Uuid::nil()),
            display_name: "测试".into(),
            department_id: None,
            roles,
            department_tree: Vec::new(),
            subordinates: Vec::new(),
            company_rules: Vec::new(),
        }
    }

    #[test]
    fn a_role_granting_no_read_on_an_entity_lifts_none_of_its_rules() {
        let restricted = || {
            role(
                "销售受限",
                &["customer:read:own", "customer:update:own"],
                &[
                    "customer.phone=masked",
                    "customer.custom.secret=hidden",
                    "product.cost=hidden",
                ],
            )
        };
        let follow_ups = || role("仅跟进", &["follow_up:read:own"], &[]);
        let who = holding(vec![restricted(), follow_ups()]);
        assert_eq!(
            who.field_access(Entity::Customer, "phone"),
            FieldAccess::Masked
        );
        assert_eq!(
            who.field_access(Entity::Customer, "custom.secret"),
            FieldAccess::Hidden
        );
        // Nobody's role reads products (the catalogue is read by everyone):
        // the strictest rule of the actor's roles holds.
        assert_eq!(
            who.field_access(Entity::Product, "cost"),
            FieldAccess::Hidden
        );
        assert_eq!(
            who.field_access(Entity::Customer, "email"),
            FieldAccess::Full
        );
        assert_eq!(
            who.restricted_fields(Entity::Customer),
            vec![
                ("custom.secret".to_string(), FieldAccess::Hidden),
                ("phone".to_string(), FieldAccess::Masked),
            ]
        );
        assert_eq!(
            who.restricting_roles(Entity::Customer, "phone"),
            vec!["销售受限"]
        );
        assert_eq!(
            who.restricting_roles(Entity::Product, "cost"),
            vec!["销售受限"]
        );
        assert!(who.restricting_roles(Entity::Customer, "email").is_empty());
        // The same in the other order.
        let who = holding(vec![follow_ups(), restricted()]);
        assert_eq!(
            who.field_access(Entity::Customer, "phone"),
            FieldAccess::Masked
        );

        // A second role that reads customers without the rule grants the
        // field in full (grants add up); one that reads them under a
        // stricter rule does not make it stricter.
        let open = role("客户全览", &["customer:read:all"], &[]);
        let who = holding(vec![restricted(), open]);
        assert_eq!(
            who.field_access(Entity::Customer, "phone"),
            FieldAccess::Full
        );
        assert!(who.restricting_roles(Entity::Customer, "phone").is_empty());
        assert_eq!(
            who.field_access(Entity::Product, "cost"),
            FieldAccess::Hidden
        );
        let stricter = role(
            "客户隐藏",
            &["customer:read:all"],
            &["customer.phone=hidden"],
        );
        let who = holding(vec![restricted(), stricter]);
        assert_eq!(
            who.field_access(Entity::Customer, "phone"),
            FieldAccess::Masked
        );
        assert_eq!(
            who.restricting_roles(Entity::Customer, "phone"),
            vec!["销售受限", "客户隐藏"]
        );

        // Roles none of which reads the entity: the strictest rule holds.
        let shared_only = role(
            "共享可见",
            &["contact:read:own"],
            &["customer.phone=read_only"],
        );
        let hiding = role(
            "共享隐藏",
            &["follow_up:read:own"],
            &["customer.phone=hidden"],
        );
        let who = holding(vec![shared_only, hiding, follow_ups()]);
        assert_eq!(
            who.field_access(Entity::Customer, "phone"),
            FieldAccess::Hidden
        );
        assert_eq!(
            who.restricting_roles(Entity::Customer, "phone"),
            vec!["共享隐藏"]
        );

        // An administrator role among them: everything in full.
        let mut admin = role("管理员", &[], &[]);
        admin.is_admin = true;
        let who = holding(vec![restricted(), admin]);
        assert_eq!(
            who.field_access(Entity::Customer, "phone"),
            FieldAccess::Full
        );
        assert!(who.restricted_fields(Entity::Customer).is_empty());
    }

    #[test]
    fn roles_handed_out_are_weighed_as_they_will_be_held() {
        let manager = holding(vec![role(
            "销售受限",
            &["customer:read:own", "follow_up:read:own"],
            &["customer.phone=masked"],
        )]);
        // Handing out the manager's own role with an unrelated one opens
        // nothing: the unrelated role has no say on customers.
        let pair = [
            manager.roles[0].clone(),
            role("仅跟进", &["follow_up:read:own"], &[]),
        ];
        assert_eq!(manager.excess_over(&pair), None);
        // A role reading customers without the rule opens the phone.
        let open = [role("客户只读", &["customer:read:own"], &[])];
        let why = manager.excess_over(&open).expect("opens the phone");
        assert!(why.contains("phone"), "{why}");
    }
}
