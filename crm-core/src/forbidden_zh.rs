//! Chinese wording of the refusals ([`Error::Forbidden`]) an import row can
//! meet, for the Chinese column of an import's error workbook.
//!
//! The English messages themselves are built here, by the functions below
//! that the refusing code calls, from the same fixed pieces [`forbidden_zh`]
//! looks for: rewording a message rewords what is matched with it, and the
//! tests (which build every message through these functions) fail when a
//! message no longer reads back into Chinese.
//!
//! The messages covered are those of a row's fields (a field the importer
//! may not change, [`Crm::prepare_with`]) and of a user import's rows (the
//! `user:manage` scope and the rights of the roles,
//! [`Crm::check_user_change`] and [`Actor::excess_over`]). Anything else
//! reads `无权限：` followed by the English message.
//!
//! [`Error::Forbidden`]: crate::Error::Forbidden
//! [`Crm::prepare_with`]: crate::Crm::prepare_with
//! [`Crm::check_user_change`]: crate::Crm::check_user_change
//! [`Actor::excess_over`]: crate::Actor::excess_over

use crate::auth::{Action, DataScope, FieldAccess, Permission};
use crate::entity::Entity;

/// `{actor} may not change {entity}.{field}`.
const MAY_NOT_CHANGE: &str = " may not change ";
/// `{actor} may not look for duplicates by {entity}.{field}`.
const MAY_NOT_LOOK_BY: &str = " may not look for duplicates by ";
/// `{actor} may not manage {entity}s`.
const MAY_NOT_MANAGE: &str = " may not manage ";
/// The plural ending of `{entity}s`.
const PLURAL: &str = "s";
/// `{actor} may manage users only within the data scope '{scope}'` …
const MANAGE_ONLY_WITHIN: &str = " may manage users only within the data scope '";
/// … `; user '{username}' lies outside it`.
const USER_OUTSIDE: (&str, &str) = ("'; user '", "' lies outside it");
/// … `; the user would lie outside it`.
const RESULT_OUTSIDE: &str = "'; the user would lie outside it";
/// `{actor} may not manage user '{username}', who holds rights {actor} does
/// not: {why}`.
const MAY_NOT_MANAGE_USER: (&str, &str, &str) = (
    " may not manage user '",
    "', who holds rights ",
    " does not: ",
);
/// `{actor} may not assign these roles: {why}; only an administrator can
/// grant rights beyond their own`.
const MAY_NOT_ASSIGN: (&str, &str) = (
    " may not assign these roles: ",
    "; only an administrator can grant rights beyond their own",
);
/// `role '{role}'` … (the reasons of [`Actor::excess_over`]).
///
/// [`Actor::excess_over`]: crate::Actor::excess_over
const ROLE: &str = "role '";
/// … `' is an administrator role`.
const IS_ADMIN_ROLE: &str = "' is an administrator role";
/// … `' grants {permission} while you hold {held}`.
const GRANTS: (&str, &str) = ("' grants ", " while you hold ");
/// `only {entity}:{action}:{scope}` (held).
const HOLD_ONLY: &str = "only ";
/// `no {entity}:{action} grant` (held).
const HOLD_NONE: (&str, &str) = ("no ", " grant");
/// `role(s) '{role}', '{role}' give {entity}.{field} {access} access while
/// you have {access} access`.
const ROLES_GIVE: (&str, &str, &str, &str, &str) = (
    "role(s) '",
    "', '",
    "' give ",
    " access while you have ",
    " access",
);

/// Refuses setting a field the actor may not change (a read-only, masked or
/// hidden field): `{actor} may not change {entity}.{field}`.
pub(crate) fn may_not_change(actor: &str, entity: Entity, field: &str) -> String {
    format!("{actor}{MAY_NOT_CHANGE}{entity}.{field}")
}

/// The refusal of a duplicate check by a field the actor may not set
/// (hidden, masked, read-only): a [`may_not_change`] message `en` told as
/// `{actor} may not look for duplicates by {entity}.{field}` (nothing is
/// changed by a check); `None` for any other message.
pub(crate) fn may_not_look_by(en: &str) -> Option<String> {
    let (actor, target) = en.rsplit_once(MAY_NOT_CHANGE)?;
    let (e, field) = target.split_once('.')?;
    entity(e)?;
    (!actor.is_empty() && token(field)).then(|| format!("{actor}{MAY_NOT_LOOK_BY}{target}"))
}

/// Refuses an actor without a `manage` grant on users or departments:
/// `{actor} may not manage {entity}s`.
pub(crate) fn may_not_manage(actor: &str, entity: Entity) -> String {
    format!("{actor}{MAY_NOT_MANAGE}{entity}{PLURAL}")
}

/// Refuses managing an existing user outside the actor's `user:manage`
/// scope.
pub(crate) fn user_outside_scope(actor: &str, scope: DataScope, username: &str) -> String {
    let (mid, end) = USER_OUTSIDE;
    format!(
        "{actor}{MANAGE_ONLY_WITHIN}{}{mid}{username}{end}",
        scope.name()
    )
}

/// Refuses a change (or a creation) that would leave a user outside the
/// actor's `user:manage` scope.
pub(crate) fn result_outside_scope(actor: &str, scope: DataScope) -> String {
    format!(
        "{actor}{MANAGE_ONLY_WITHIN}{}{RESULT_OUTSIDE}",
        scope.name()
    )
}

/// Refuses managing a user who holds rights beyond the actor's; `why` is a
/// reason of [`Actor::excess_over`](crate::Actor::excess_over).
pub(crate) fn user_holds_more(actor: &str, username: &str, why: &str) -> String {
    let (a, b, c) = MAY_NOT_MANAGE_USER;
    format!("{actor}{a}{username}{b}{actor}{c}{why}")
}

/// Refuses giving a user roles beyond the actor's rights; `why` is a reason
/// of [`Actor::excess_over`](crate::Actor::excess_over).
pub(crate) fn may_not_assign_roles(actor: &str, why: &str) -> String {
    let (a, b) = MAY_NOT_ASSIGN;
    format!("{actor}{a}{why}{b}")
}

/// Why roles exceed an actor's rights: one is an administrator role.
pub(crate) fn admin_role(role: &str) -> String {
    format!("{ROLE}{role}{IS_ADMIN_ROLE}")
}

/// Why roles exceed an actor's rights: one grants `granted` while the actor
/// holds the same entity and action over a narrower scope (`held`) or not
/// at all (`None`).
pub(crate) fn role_grants_more(role: &str, granted: Permission, held: Option<DataScope>) -> String {
    let (grants, hold) = GRANTS;
    let held = match held {
        Some(m) => format!(
            "{HOLD_ONLY}{}:{}:{}",
            granted.entity,
            granted.action,
            m.name()
        ),
        None => {
            let (no, grant) = HOLD_NONE;
            format!("{no}{}:{}{grant}", granted.entity, granted.action)
        }
    };
    format!(
        "{ROLE}{role}{grants}{}:{}:{}{hold}{held}",
        granted.entity,
        granted.action,
        granted.scope.name()
    )
}

/// Why roles exceed an actor's rights: together they show a field more
/// openly (`theirs`) than the actor sees it (`mine`).
pub(crate) fn roles_open_field(
    roles: &[&str],
    entity: Entity,
    field: &str,
    theirs: FieldAccess,
    mine: FieldAccess,
) -> String {
    let (start, sep, give, have, access) = ROLES_GIVE;
    format!(
        "{start}{}{give}{entity}.{field} {}{have}{}{access}",
        roles.join(sep),
        theirs.name(),
        mine.name()
    )
}

/// The Chinese of a refusal (the message of an [`Error::Forbidden`]) an
/// import row met, keeping its names (users, roles, fields, permissions)
/// as they are; a message not known here reads `无权限：` followed by the
/// English.
///
/// [`Error::Forbidden`]: crate::Error::Forbidden
pub(crate) fn forbidden_zh(en: &str) -> String {
    user_holds_more_zh(en)
        .or_else(|| may_not_assign_zh(en))
        .or_else(|| outside_scope_zh(en))
        .or_else(|| may_not_change_zh(en))
        .or_else(|| may_not_look_by_zh(en))
        .or_else(|| may_not_manage_zh(en))
        .unwrap_or_else(|| format!("无权限：{en}"))
}

/// The entity whose API name this is.
fn entity(name: &str) -> Option<Entity> {
    Entity::ALL.into_iter().find(|e| e.name() == name)
}

/// The data scope whose API name this is.
fn scope(name: &str) -> Option<DataScope> {
    DataScope::ALL.into_iter().find(|d| d.name() == name)
}

/// The field access whose API name this is.
fn access(name: &str) -> Option<FieldAccess> {
    name.parse().ok().filter(|a: &FieldAccess| a.name() == name)
}

/// Whether `s` is one name (a field, an `entity:action[:scope]` grant):
/// not empty, no white space.
fn token(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(char::is_whitespace)
}

/// `entity:action:scope` (`with_scope`) or `entity:action`, each part a
/// known name.
fn grant(s: &str, with_scope: bool) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        [e, a] if !with_scope => entity(e).is_some() && a.parse::<Action>().is_ok(),
        [e, a, sc] if with_scope => {
            entity(e).is_some() && a.parse::<Action>().is_ok() && scope(sc).is_some()
        }
        _ => false,
    }
}

/// `{actor} may not change {entity}.{field}`.
fn may_not_change_zh(en: &str) -> Option<String> {
    let (actor, target) = en.rsplit_once(MAY_NOT_CHANGE)?;
    let (e, field) = target.split_once('.')?;
    let e = entity(e)?;
    (!actor.is_empty() && token(field))
        .then(|| format!("{actor}无权修改{}字段 {target}", e.name_zh()))
}

/// `{actor} may not look for duplicates by {entity}.{field}`.
fn may_not_look_by_zh(en: &str) -> Option<String> {
    let (actor, target) = en.rsplit_once(MAY_NOT_LOOK_BY)?;
    let (e, field) = target.split_once('.')?;
    let e = entity(e)?;
    (!actor.is_empty() && token(field))
        .then(|| format!("{actor}无权按{}字段 {target} 查重", e.name_zh()))
}

/// `{actor} may not manage {entity}s`.
fn may_not_manage_zh(en: &str) -> Option<String> {
    let (actor, what) = en.rsplit_once(MAY_NOT_MANAGE)?;
    let e = entity(what.strip_suffix(PLURAL)?)?;
    (!actor.is_empty()).then(|| format!("{actor}无权管理{}", e.name_zh()))
}

/// `{actor} may manage users only within the data scope '{scope}'; user
/// '{username}' lies outside it` and `…; the user would lie outside it`.
fn outside_scope_zh(en: &str) -> Option<String> {
    let (actor, rest) = en.split_once(MANAGE_ONLY_WITHIN)?;
    if actor.is_empty() {
        return None;
    }
    if let Some(s) = rest.strip_suffix(RESULT_OUTSIDE) {
        let s = scope(s)?.name_zh();
        return Some(format!(
            "{actor}只能管理数据权限“{s}”范围内的用户，该用户将超出此范围"
        ));
    }
    let (mid, end) = USER_OUTSIDE;
    let (s, username) = rest.strip_suffix(end)?.split_once(mid)?;
    let s = scope(s)?.name_zh();
    Some(format!(
        "{actor}只能管理数据权限“{s}”范围内的用户，用户“{username}”不在此范围内"
    ))
}

/// `{actor} may not manage user '{username}', who holds rights {actor} does
/// not: {why}`.
fn user_holds_more_zh(en: &str) -> Option<String> {
    let (a, b, c) = MAY_NOT_MANAGE_USER;
    let (actor, rest) = en.split_once(a)?;
    if actor.is_empty() {
        return None;
    }
    let (username, why) = rest.split_once(&format!("{b}{actor}{c}"))?;
    let why = why_zh(why)?;
    Some(format!(
        "{actor}无权管理用户“{username}”，该用户拥有{actor}没有的权限：{why}"
    ))
}

/// `{actor} may not assign these roles: {why}; only an administrator can
/// grant rights beyond their own`.
fn may_not_assign_zh(en: &str) -> Option<String> {
    let (a, b) = MAY_NOT_ASSIGN;
    let (actor, why) = en.strip_suffix(b)?.split_once(a)?;
    if actor.is_empty() {
        return None;
    }
    let why = why_zh(why)?;
    Some(format!(
        "{actor}无权分配这些角色：{why}；只有管理员才能授予超出自身的权限"
    ))
}

/// A reason of [`Actor::excess_over`](crate::Actor::excess_over).
fn why_zh(why: &str) -> Option<String> {
    if let Some(role) = why
        .strip_prefix(ROLE)
        .and_then(|r| r.strip_suffix(IS_ADMIN_ROLE))
    {
        return Some(format!("角色“{role}”是管理员角色"));
    }
    if let Some(rest) = why.strip_prefix(ROLE) {
        let (grants, hold) = GRANTS;
        let (left, held) = rest.rsplit_once(hold)?;
        let (role, granted) = left.rsplit_once(grants)?;
        if !grant(granted, true) {
            return None;
        }
        let (no, grant_end) = HOLD_NONE;
        let held = match held.strip_prefix(HOLD_ONLY) {
            Some(g) if grant(g, true) => format!("你只有 {g}"),
            Some(_) => return None,
            None => {
                let g = held.strip_prefix(no)?.strip_suffix(grant_end)?;
                if !grant(g, false) {
                    return None;
                }
                format!("你没有 {g} 权限")
            }
        };
        return Some(format!("角色“{role}”授予 {granted} 权限，而{held}"));
    }
    let (start, sep, give, have, access_end) = ROLES_GIVE;
    let rest = why.strip_prefix(start)?.strip_suffix(access_end)?;
    let (left, mine) = rest.rsplit_once(have)?;
    let (left, theirs) = left.rsplit_once(' ')?;
    let (roles, target) = left.rsplit_once(give)?;
    let (e, field) = target.split_once('.')?;
    if entity(e).is_none() || !token(field) {
        return None;
    }
    let theirs = access(theirs)?.name_zh();
    let mine = access(mine)?.name_zh();
    let roles = roles.split(sep).collect::<Vec<_>>().join("”、“");
    Some(format!(
        "角色“{roles}”对字段 {target} 给予“{theirs}”权限，而你只有“{mine}”权限"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that `zh` is Chinese that keeps every variable part: once
    /// they are taken out, no Latin letter (untranslated English) is left.
    fn assert_zh(en: &str, zh: &str, parts: &[&str]) {
        assert!(!zh.starts_with("无权限："), "{en:?} not translated: {zh}");
        let mut rest = zh.to_string();
        // Longest first, so that a part inside another is not cut out of it.
        let mut parts = parts.to_vec();
        parts.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in parts {
            assert!(rest.contains(p), "{zh:?} lost {p:?} (from {en:?})");
            rest = rest.replace(p, "");
        }
        assert!(
            !rest.chars().any(|c| c.is_ascii_alphabetic()),
            "{zh:?} keeps English (from {en:?}): {rest:?}"
        );
        assert!(
            rest.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
            "{zh:?} is not Chinese"
        );
    }

    const ACTORS: [&str; 3] = ["张三", "Alice Smith", "李 may not change 四"];

    #[test]
    fn may_not_change_reads_in_chinese() {
        for actor in ACTORS {
            for (e, field) in [
                (Entity::Customer, "phone"),
                (Entity::Contact, "mobile"),
                (Entity::FollowUp, "content"),
                (Entity::Customer, "custom.credit_level"),
            ] {
                let en = may_not_change(actor, e, field);
                let zh = forbidden_zh(&en);
                assert_zh(&en, &zh, &[actor, &format!("{e}.{field}")]);
                assert!(zh.contains(e.name_zh()), "{zh}");
            }
        }
        assert_eq!(
            forbidden_zh(&may_not_change("张三", Entity::Customer, "phone")),
            "张三无权修改客户字段 customer.phone"
        );
    }

    #[test]
    fn a_refused_duplicate_check_says_so_in_both_languages() {
        for actor in ACTORS {
            let en = may_not_look_by(&may_not_change(actor, Entity::Customer, "uscc"))
                .expect("a field refusal");
            assert_eq!(
                en,
                format!("{actor} may not look for duplicates by customer.uscc")
            );
            let zh = forbidden_zh(&en);
            assert_zh(&en, &zh, &[actor, "customer.uscc"]);
        }
        assert_eq!(may_not_look_by(&may_not_manage("张三", Entity::User)), None);
    }

    #[test]
    fn may_not_manage_reads_in_chinese() {
        for actor in ACTORS {
            for e in [Entity::User, Entity::Department] {
                let en = may_not_manage(actor, e);
                let zh = forbidden_zh(&en);
                assert_zh(&en, &zh, &[actor]);
                assert_eq!(zh, format!("{actor}无权管理{}", e.name_zh()));
            }
        }
    }

    #[test]
    fn scope_refusals_read_in_chinese() {
        for actor in ACTORS {
            for s in DataScope::ALL {
                for username in ["wang.wu", "王五", "o'brien lies"] {
                    let en = user_outside_scope(actor, s, username);
                    let zh = forbidden_zh(&en);
                    assert_zh(&en, &zh, &[actor, username]);
                    assert!(zh.contains(s.name_zh()), "{zh}");
                }
                let en = result_outside_scope(actor, s);
                let zh = forbidden_zh(&en);
                assert_zh(&en, &zh, &[actor]);
                assert!(zh.contains(s.name_zh()), "{zh}");
            }
        }
        assert_eq!(
            forbidden_zh(&user_outside_scope("张三", DataScope::Department, "wangwu")),
            "张三只能管理数据权限“本部门”范围内的用户，用户“wangwu”不在此范围内"
        );
    }

    /// Every reason [`Actor::excess_over`](crate::Actor::excess_over) gives,
    /// with the variable parts it keeps.
    fn reasons() -> Vec<(String, Vec<String>)> {
        let p = Permission {
            entity: Entity::Customer,
            action: Action::Read,
            scope: DataScope::All,
        };
        let mut out = vec![(admin_role("系统管理员"), vec!["系统管理员".to_string()])];
        for role in ["销售经理", "Sales lead", "x' grants y"] {
            out.push((
                role_grants_more(role, p, Some(DataScope::Department)),
                vec![
                    role.to_string(),
                    "customer:read:all".to_string(),
                    "customer:read:department".to_string(),
                ],
            ));
            out.push((
                role_grants_more(role, p, None),
                vec![
                    role.to_string(),
                    "customer:read:all".to_string(),
                    "customer:read".to_string(),
                ],
            ));
        }
        for roles in [vec!["销售"], vec!["Sales", "客服 team"]] {
            for field in ["mobile", "custom.level"] {
                let mut parts: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
                parts.push(format!("contact.{field}"));
                out.push((
                    roles_open_field(
                        &roles,
                        Entity::Contact,
                        field,
                        FieldAccess::ReadOnly,
                        FieldAccess::Hidden,
                    ),
                    parts,
                ));
            }
        }
        out
    }

    #[test]
    fn excess_rights_read_in_chinese() {
        for actor in ACTORS {
            for (why, why_parts) in reasons() {
                let mut parts: Vec<&str> = why_parts.iter().map(String::as_str).collect();
                parts.push(actor);
                let en = may_not_assign_roles(actor, &why);
                assert_zh(&en, &forbidden_zh(&en), &parts);
                for username in ["wang.wu", "王五"] {
                    let mut parts = parts.clone();
                    parts.push(username);
                    let en = user_holds_more(actor, username, &why);
                    assert_zh(&en, &forbidden_zh(&en), &parts);
                }
            }
        }
        let why = roles_open_field(
            &["销售", "客服"],
            Entity::Contact,
            "mobile",
            FieldAccess::Masked,
            FieldAccess::Hidden,
        );
        assert_eq!(
            forbidden_zh(&may_not_assign_roles("张三", &why)),
            "张三无权分配这些角色：角色“销售”、“客服”对字段 contact.mobile 给予“脱敏显示”权限，\
             而你只有“隐藏”权限；只有管理员才能授予超出自身的权限"
        );
    }

    #[test]
    fn every_scope_and_access_has_a_chinese_name() {
        for s in DataScope::ALL {
            assert_eq!(scope(s.name()), Some(s));
        }
        for a in [
            FieldAccess::Full,
            FieldAccess::ReadOnly,
            FieldAccess::Masked,
            FieldAccess::Hidden,
        ] {
            assert_eq!(access(a.name()), Some(a));
            assert!(!a.name_zh().is_empty());
        }
    }

    #[test]
    fn unknown_messages_keep_the_english() {
        for en in [
            "张三 may not undo an import someone else ran",
            "张三 may not change the owner",
            "张三 may not change nothing.at all",
            "张三 may not manage robots",
            // A reason of a kind not known here: the whole message is kept.
            "张三 may not assign these roles: the moon is full; only an administrator \
             can grant rights beyond their own",
            "张三 may manage users only within the data scope 'galaxy'; the user would \
             lie outside it",
            "",
        ] {
            assert_eq!(forbidden_zh(en), format!("无权限：{en}"));
        }
    }
}
