//! Entities and their user-facing fields: names in English and Chinese, kinds
//! that drive validation and normalisation, and the columns derived from them.

use crate::schema::Table;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Everything permissions can be granted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    /// Customers (客户).
    Customer,
    /// Contacts (联系人).
    Contact,
    /// Follow-up records (跟进记录).
    FollowUp,
    /// Users (用户).
    User,
    /// Departments (部门).
    Department,
    /// Roles (角色).
    Role,
    /// User groups (用户组).
    UserGroup,
    /// Custom field definitions and option lists (自定义字段).
    CustomField,
    /// Approval flows and approvals (审批流).
    ApprovalFlow,
    /// Products and product categories (产品).
    Product,
    /// Sales opportunities (销售机会).
    Opportunity,
    /// Quotes (报价).
    Quote,
    /// Contracts and orders, with their payments and invoices (合同).
    Contract,
}

impl Entity {
    /// Every entity.
    pub const ALL: [Entity; 13] = [
        Entity::Customer,
        Entity::Contact,
        Entity::FollowUp,
        Entity::User,
        Entity::Department,
        Entity::Role,
        Entity::UserGroup,
        Entity::CustomField,
        Entity::ApprovalFlow,
        Entity::Product,
        Entity::Opportunity,
        Entity::Quote,
        Entity::Contract,
    ];

    /// The business entities: owned records with scopes, sharing, custom fields.
    pub const RECORDS: [Entity; 3] = [Entity::Customer, Entity::Contact, Entity::FollowUp];

    /// The API name.
    pub fn name(self) -> &'static str {
        match self {
            Entity::Customer => "customer",
            Entity::Contact => "contact",
            Entity::FollowUp => "follow_up",
            Entity::User => "user",
            Entity::Department => "department",
            Entity::Role => "role",
            Entity::UserGroup => "user_group",
            Entity::CustomField => "custom_field",
            Entity::ApprovalFlow => "approval_flow",
            Entity::Product => "product",
            Entity::Opportunity => "opportunity",
            Entity::Quote => "quote",
            Entity::Contract => "contract",
        }
    }

    /// The Chinese name.
    pub fn name_zh(self) -> &'static str {
        match self {
            Entity::Customer => "客户",
            Entity::Contact => "联系人",
            Entity::FollowUp => "跟进记录",
            Entity::User => "用户",
            Entity::Department => "部门",
            Entity::Role => "角色",
            Entity::UserGroup => "用户组",
            Entity::CustomField => "自定义字段",
            Entity::ApprovalFlow => "审批流",
            Entity::Product => "产品",
            Entity::Opportunity => "销售机会",
            Entity::Quote => "报价",
            Entity::Contract => "合同",
        }
    }

    /// The table holding the entity.
    pub fn table(self) -> Table {
        match self {
            Entity::Customer => Table::Customers,
            Entity::Contact => Table::Contacts,
            Entity::FollowUp => Table::FollowUps,
            Entity::User => Table::Users,
            Entity::Department => Table::Departments,
            Entity::Role => Table::Roles,
            Entity::UserGroup => Table::UserGroups,
            Entity::CustomField => Table::CustomFields,
            Entity::ApprovalFlow => Table::ApprovalFlows,
            Entity::Product => Table::Products,
            Entity::Opportunity => Table::Opportunities,
            Entity::Quote => Table::Quotes,
            Entity::Contract => Table::Contracts,
        }
    }

    /// The entity stored in a business table.
    pub fn of_table(table: Table) -> Option<Entity> {
        Entity::ALL.into_iter().find(|e| e.table() == table)
    }

    /// Whether this is a business record entity (owned, shareable, custom fields).
    pub fn is_record(self) -> bool {
        self.table().is_owned()
    }

    /// The prefix of auto-generated codes, e.g. `KH` for customers.
    pub fn code_prefix(self) -> Option<&'static str> {
        match self {
            Entity::Customer => Some("KH"),
            Entity::Contact => Some("LXR"),
            Entity::FollowUp => Some("GJ"),
            Entity::Opportunity => Some("JH"),
            Entity::Quote => Some("BJ"),
            Entity::Contract => Some("HT"),
            _ => None,
        }
    }

    /// The user-facing built-in fields.
    pub fn fields(self) -> &'static [FieldDef] {
        match self {
            Entity::Customer => CUSTOMER_FIELDS,
            Entity::Contact => CONTACT_FIELDS,
            Entity::FollowUp => FOLLOW_UP_FIELDS,
            _ => &[],
        }
    }

    /// Finds a built-in field by API name, Chinese label or English label.
    pub fn field(self, name: &str) -> Option<&'static FieldDef> {
        let n = name.trim();
        self.fields().iter().find(|f| {
            f.name == n || f.zh == n || f.en.eq_ignore_ascii_case(n) || f.aliases.contains(&n)
        })
    }

    /// Relations usable in related-record filters: (relation name, related
    /// entity, column in the related table that points to this entity).
    pub fn relations(self) -> &'static [(&'static str, Entity, &'static str)] {
        match self {
            Entity::Customer => &[
                ("contacts", Entity::Contact, "customer_id"),
                ("follow_ups", Entity::FollowUp, "customer_id"),
            ],
            Entity::Contact => &[("follow_ups", Entity::FollowUp, "contact_id")],
            _ => &[],
        }
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Entity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Entity::ALL
            .into_iter()
            .find(|e| {
                e.name() == s
                    || e.name_zh() == s
                    || e.table().name() == s
                    || e.name().replace('_', "-") == s
            })
            .ok_or_else(|| {
                format!(
                    "unknown entity '{s}'; expected one of {}",
                    Entity::ALL.map(|e| e.name()).join(", ")
                )
            })
    }
}

/// How a field's value is validated, normalised and stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// Free text, at most this many characters.
    Text(usize),
    /// A company or customer name: keeps `name_key` and `pinyin_keys`.
    CompanyName,
    /// A person's name: keeps `pinyin_keys`.
    PersonName,
    /// A mobile or landline number; keeps the canonical key in the column named.
    Phone(&'static str),
    /// A mobile number (mainland, or international with its country code);
    /// keeps the canonical key in the column named.
    Mobile(&'static str),
    /// An e-mail address.
    Email,
    /// A web address.
    Url,
    /// A unified social credit code (GB 32100).
    Uscc,
    /// A resident ID number (GB 11643).
    ResidentId,
    /// A calendar date.
    Date,
    /// An instant.
    DateTime,
    /// One of a fixed set of values (API value, Chinese label).
    Enum(&'static [(&'static str, &'static str)]),
    /// One of a company-configurable option list (default options given).
    Choice(&'static [&'static str]),
    /// A set of free tags.
    Tags,
    /// A reference to a record of the entity.
    Ref(Entity),
    /// Attachment metadata (a JSON list).
    Attachments,
}

/// How a field's value is shown to an actor whose role masks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskStyle {
    /// 138****5678.
    Phone,
    /// z***@example.com.
    Email,
    /// 110101********1234.
    IdNumber,
    /// First and last character kept.
    Text,
}

/// A built-in field of an entity.
#[derive(Clone, Copy, Debug)]
pub struct FieldDef {
    /// The API name; also the column name.
    pub name: &'static str,
    /// The Chinese label (import headers, exports, messages).
    pub zh: &'static str,
    /// The English label.
    pub en: &'static str,
    /// Other accepted header names.
    pub aliases: &'static [&'static str],
    /// Validation and storage kind.
    pub kind: FieldKind,
    /// Whether a value is required on create.
    pub required: bool,
    /// Whether the field may be set by users (false for computed fields).
    pub writable: bool,
}

impl FieldDef {
    /// How the field is masked.
    pub fn mask_style(&self) -> MaskStyle {
        match self.kind {
            FieldKind::Phone(_) | FieldKind::Mobile(_) => MaskStyle::Phone,
            FieldKind::Email => MaskStyle::Email,
            FieldKind::ResidentId | FieldKind::Uscc => MaskStyle::IdNumber,
            _ => MaskStyle::Text,
        }
    }
}

const fn f(name: &'static str, zh: &'static str, en: &'static str, kind: FieldKind) -> FieldDef {
    FieldDef {
        name,
        zh,
        en,
        aliases: &[],
        kind,
        required: false,
        writable: true,
    }
}

const fn req(mut d: FieldDef) -> FieldDef {
    d.required = true;
    d
}

const fn ro(mut d: FieldDef) -> FieldDef {
    d.writable = false;
    d
}

const fn alias(mut d: FieldDef, aliases: &'static [&'static str]) -> FieldDef {
    d.aliases = aliases;
    d
}

/// Where a customer is (see `pool::Place`).
pub const CUSTOMER_PLACES: &[(&str, &str)] = &[
    ("private", "潜在客户库"),
    ("deal", "成交客户库"),
    ("public", "公海"),
    ("invalid", "无效客户库"),
];
/// Customer kinds.
pub const CUSTOMER_KINDS: &[(&str, &str)] =
    &[("enterprise", "企业客户"), ("individual", "个人客户")];
/// Follow-up channels.
pub const FOLLOW_UP_CHANNELS: &[(&str, &str)] = &[
    ("call", "电话"),
    ("visit", "拜访"),
    ("email", "邮件"),
    ("wechat", "微信"),
    ("sms", "短信"),
    ("meeting", "会议"),
    ("other", "其他"),
];

use FieldKind as K;

const CUSTOMER_FIELDS: &[FieldDef] = &[
    req(alias(
        f("name", "客户名称", "Name", K::CompanyName),
        &["名称", "公司名称", "customer name"],
    )),
    f("short_name", "简称", "Short name", K::Text(64)),
    alias(
        f("kind", "客户类型", "Kind", K::Enum(CUSTOMER_KINDS)),
        &["类型"],
    ),
    alias(
        f(
            "category",
            "客户分类",
            "Category",
            K::Choice(&[
                "潜在",
                "普通",
                "VIP",
                "代理",
                "合作",
                "分销商",
                "供货商",
                "代理商",
                "合作伙伴",
            ]),
        ),
        &["分类"],
    ),
    alias(
        f(
            "level",
            "客户级别",
            "Level",
            K::Choice(&["A", "B", "C", "D"]),
        ),
        &["级别"],
    ),
    alias(
        f(
            "source",
            "客户来源",
            "Source",
            K::Choice(&[
                "网络推广",
                "电话营销",
                "展会",
                "客户介绍",
                "自主开发",
                "广告",
                "其他",
            ]),
        ),
        &["来源"],
    ),
    alias(
        f("industry", "所属行业", "Industry", K::Text(64)),
        &["行业"],
    ),
    f("province", "省份", "Province", K::Text(32)),
    f("city", "城市", "City", K::Text(32)),
    alias(f("district", "区县", "District", K::Text(32)), &["区/县"]),
    alias(f("address", "详细地址", "Address", K::Text(256)), &["地址"]),
    alias(
        f("phone", "电话", "Phone", K::Phone("phone_key")),
        &["联系电话", "公司电话"],
    ),
    alias(
        f("email", "邮箱", "Email", K::Email),
        &["电子邮箱", "e-mail"],
    ),
    alias(
        f("website", "网址", "Website", K::Url),
        &["网站", "公司网址"],
    ),
    alias(
        f(
            "uscc",
            "统一社会信用代码",
            "Unified social credit code",
            K::Uscc,
        ),
        &["信用代码", "USCC", "credit code"],
    ),
    f("tags", "标签", "Tags", K::Tags),
    alias(
        f("next_follow_up", "下次跟进日期", "Next follow-up", K::Date),
        &["下次跟进"],
    ),
    ro(f(
        "last_follow_up_at",
        "最近跟进时间",
        "Last follow-up",
        K::DateTime,
    )),
    alias(f("notes", "备注", "Notes", K::Text(2000)), &["描述"]),
    f("attachments", "附件", "Attachments", K::Attachments),
    // Kept by the pool operations (pool.rs); shown, filtered and sorted, not
    // written through the record path.
    ro(alias(
        f("place", "客户池状态", "Place", K::Enum(CUSTOMER_PLACES)),
        &["客户库"],
    )),
    ro(f("pool_id", "所属公海", "Pool", K::Text(36))),
    ro(f("owned_since", "领取时间", "Held since", K::DateTime)),
    ro(f("locked", "锁定", "Locked", K::Text(5))),
    ro(f("closed_at", "成交时间", "Deal closed", K::DateTime)),
    ro(f(
        "last_opportunity_at",
        "最近商机时间",
        "Last opportunity",
        K::DateTime,
    )),
    ro(f(
        "open_opportunities",
        "进行中商机数",
        "Open opportunities",
        K::Text(20),
    )),
];

const CONTACT_FIELDS: &[FieldDef] = &[
    req(alias(
        f(
            "customer_id",
            "所属客户",
            "Customer",
            K::Ref(Entity::Customer),
        ),
        &["客户"],
    )),
    req(alias(
        f("name", "姓名", "Name", K::PersonName),
        &["联系人姓名", "联系人", "contact name"],
    )),
    alias(f("title", "职务", "Title", K::Text(64)), &["职位"]),
    alias(
        f("department_name", "部门", "Department", K::Text(64)),
        &["所在部门"],
    ),
    alias(
        f("mobile", "手机", "Mobile", K::Mobile("mobile_key")),
        &["手机号", "手机号码"],
    ),
    alias(
        f("phone", "电话", "Phone", K::Phone("phone_key")),
        &["座机", "办公电话"],
    ),
    alias(f("email", "邮箱", "Email", K::Email), &["电子邮箱"]),
    alias(f("wechat", "微信", "WeChat", K::Text(64)), &["微信号"]),
    alias(f("birthday", "生日", "Birthday", K::Date), &["出生日期"]),
    alias(
        f(
            "decision_role",
            "决策角色",
            "Decision role",
            K::Choice(&["决策者", "影响者", "使用者", "采购", "技术评估", "其他"]),
        ),
        &["角色"],
    ),
    alias(
        f("id_number", "身份证号", "ID number", K::ResidentId),
        &["身份证"],
    ),
    alias(f("notes", "备注", "Notes", K::Text(2000)), &["描述"]),
];

const FOLLOW_UP_FIELDS: &[FieldDef] = &[
    req(alias(
        f(
            "customer_id",
            "所属客户",
            "Customer",
            K::Ref(Entity::Customer),
        ),
        &["客户"],
    )),
    alias(
        f("contact_id", "联系人", "Contact", K::Ref(Entity::Contact)),
        &[],
    ),
    req(alias(
        f(
            "channel",
            "跟进方式",
            "Channel",
            K::Enum(FOLLOW_UP_CHANNELS),
        ),
        &["方式"],
    )),
    req(alias(
        f("content", "跟进内容", "Content", K::Text(4000)),
        &["内容"],
    )),
    alias(f("occurred_at", "跟进时间", "Time", K::DateTime), &["时间"]),
    alias(
        f(
            "next_follow_up_at",
            "下次跟进时间",
            "Next follow-up",
            K::DateTime,
        ),
        &["下次跟进"],
    ),
];

/// Standard columns every record has that can be filtered and sorted on,
/// with their Chinese labels.
pub const STANDARD_FIELDS: &[(&str, &str, &str)] = &[
    ("id", "ID", "ID"),
    ("code", "编号", "Code"),
    ("owner_id", "负责人", "Owner"),
    ("department_id", "所属部门", "Owning department"),
    ("created_by", "创建人", "Created by"),
    ("created_at", "创建时间", "Created"),
    ("updated_at", "更新时间", "Updated"),
    ("version", "版本", "Version"),
    ("deleted_at", "删除时间", "Deleted"),
    ("archived_at", "归档时间", "Archived"),
];
