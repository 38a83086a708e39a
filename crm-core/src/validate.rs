//! Validation and normalisation of the identifiers and contact details a CRM
//! keeps: unified social credit codes, resident ID numbers, phone numbers,
//! e-mail and web addresses, company and person names.
//!
//! Every validator takes the text as typed (surrounding whitespace and
//! full-width ASCII such as `１３８` or `（` are tolerated) and returns either
//! the normalised value or an [`Invalid`] that names the problem and the
//! offending value. `Invalid` displays in English
//! (`unified social credit code 91350100M000100Y40 has check character 0,
//! expected 3`) and [`Invalid::message_zh`] gives the Chinese twin
//! (`统一社会信用代码 91350100M000100Y40 的校验码为 0，应为 3`).
//! `String::from(invalid)` is the English message, so an `Invalid` can be
//! handed straight to anything taking `impl Into<String>`.
//!
//! Nothing here reads a clock: the resident ID's "not born in the future"
//! rule is checked by the caller with [`ResidentId::check_born_by`] and its
//! injected date.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use std::fmt;

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// The kind of value being validated; names it in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A unified social credit code (GB 32100-2015).
    Uscc,
    /// A mainland resident ID number (GB 11643-1999).
    ResidentId,
    /// A mobile number: mainland, or international with its country code.
    Mobile,
    /// A mainland fixed-line or service number (400/800, or a short service
    /// line such as 95555), or an international number with its country
    /// code.
    Landline,
    /// An e-mail address.
    Email,
    /// A web address.
    Url,
    /// A person's name.
    PersonName,
}

impl Subject {
    /// The English name, as used in messages.
    pub fn name_en(self) -> &'static str {
        match self {
            Subject::Uscc => "unified social credit code",
            Subject::ResidentId => "resident ID number",
            Subject::Mobile => "mobile number",
            Subject::Landline => "landline number",
            Subject::Email => "email address",
            Subject::Url => "web address",
            Subject::PersonName => "person name",
        }
    }

    /// The Chinese name, as used in messages.
    pub fn name_zh(self) -> &'static str {
        match self {
            Subject::Uscc => "统一社会信用代码",
            Subject::ResidentId => "居民身份证号码",
            Subject::Mobile => "手机号码",
            Subject::Landline => "固定电话号码",
            Subject::Email => "电子邮箱地址",
            Subject::Url => "网址",
            Subject::PersonName => "姓名",
        }
    }
}

/// What is wrong with a resident ID's birth date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BirthDateProblem {
    /// The digits do not form a calendar date (e.g. `19990230`).
    NotADate,
    /// The date is before 1900-01-01.
    Before1900,
    /// The date is after the caller's "today".
    InTheFuture,
}

/// Why a value was rejected. Each reason renders, together with the
/// [`Subject`] and the value, into an English and a Chinese sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Nothing (or only whitespace) was given.
    Empty,
    /// Wrong number of characters.
    Length {
        /// How many characters were given.
        actual: usize,
        /// The accepted lengths.
        expected: &'static [usize],
    },
    /// Wrong number of digits.
    Digits {
        /// How many digits were given.
        actual: usize,
        /// The accepted digit counts.
        expected: &'static [usize],
    },
    /// A character that is not allowed here.
    Character {
        /// The character.
        ch: char,
        /// Its position, counting from 1.
        position: usize,
    },
    /// Longer than allowed.
    TooLong {
        /// How many characters were given.
        actual: usize,
        /// The maximum.
        max: usize,
    },
    /// A USCC's first character names no registration authority
    /// (GB 32100-2015: 1–9, A–G, N or Y).
    Authority {
        /// The character found.
        ch: char,
    },
    /// A USCC's second character is no organisation type its registration
    /// authority assigns (GB 32100-2015: e.g. 1, 2 or 3 under 9, market
    /// regulation).
    OrganisationType {
        /// The registration authority (position 1).
        authority: char,
        /// The character found (position 2).
        ch: char,
        /// The types that authority assigns.
        allowed: &'static str,
    },
    /// A resident ID number's region code (positions 1–6) starts with no
    /// province's code (GB 11643-1999, GB/T 2260).
    Region {
        /// The first two digits.
        code: String,
    },
    /// USCC positions 3–8 (administrative division) are not six digits.
    Division {
        /// The six characters found.
        code: String,
    },
    /// The check character does not match the one computed.
    CheckCharacter {
        /// The character given.
        found: char,
        /// The character computed.
        expected: char,
    },
    /// A resident ID's birth date is impossible.
    BirthDate {
        /// The eight digits `YYYYMMDD`.
        digits: String,
        /// What is wrong.
        problem: BirthDateProblem,
    },
    /// A mobile number that does not start with 13–19.
    MobilePrefix,
    /// An international number whose country code cannot exist (it starts
    /// with 0).
    CountryCode {
        /// The digits after `+` (or `00`), up to three.
        code: String,
    },
    /// An international number (other than +86) with too few or too many
    /// digits: E.164 numbers have 8 to 15 counting the country code.
    InternationalDigits {
        /// How many digits were given, country code included.
        actual: usize,
    },
    /// A mainland mobile number written after `+` or `00` without 86
    /// (`+138 0013 8000`), which would read as a number abroad.
    MainlandAfterPrefix,
    /// An area code that does not exist on the mainland.
    AreaCode {
        /// The code found.
        code: String,
    },
    /// A landline without an area code.
    MissingAreaCode,
    /// A landline's local number is not 7–8 digits starting with 2–9.
    LocalNumber {
        /// The local number found.
        number: String,
    },
    /// A bad extension.
    Extension {
        /// The extension found.
        extension: String,
    },
    /// The e-mail address does not parse.
    EmailSyntax {
        /// What is wrong, in English.
        en: &'static str,
        /// What is wrong, in Chinese.
        zh: &'static str,
    },
    /// The web address does not parse.
    UrlSyntax {
        /// What is wrong, in English.
        en: &'static str,
        /// What is wrong, in Chinese.
        zh: &'static str,
    },
    /// The web address uses a scheme other than http/https.
    UrlScheme {
        /// The scheme found.
        scheme: String,
    },
    /// The web address has no domain name with a dot and is no IP address.
    UrlHost,
    /// A placeholder typed for an unknown value (a credit code of one
    /// character repeated, `000000000000000000`), which would otherwise
    /// make every customer given it a duplicate of the others.
    Placeholder,
}

/// A rejected value: what it is, the value, and why.
///
/// `Display` gives the English message; [`Invalid::message_zh`] the Chinese.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    /// What kind of value it is.
    pub subject: Subject,
    /// The offending value (trimmed; normalised as far as validation got).
    pub value: String,
    /// Why it was rejected.
    pub reason: Reason,
}

impl Invalid {
    fn new(subject: Subject, value: impl Into<String>, reason: Reason) -> Invalid {
        Invalid {
            subject,
            value: value.into(),
            reason,
        }
    }

    fn empty(subject: Subject) -> Invalid {
        Invalid::new(subject, String::new(), Reason::Empty)
    }

    /// The English message (same as `to_string()`).
    pub fn message_en(&self) -> String {
        self.to_string()
    }

    /// The Chinese message, e.g.
    /// `统一社会信用代码 91350100M000100Y40 的校验码为 0，应为 3`.
    pub fn message_zh(&self) -> String {
        let s = self.subject.name_zh();
        let v = shown(&self.value);
        let r = match &self.reason {
            Reason::Empty => return format!("{s}不能为空"),
            Reason::Length { actual, expected } => {
                format!("长度为 {actual} 位，应为 {} 位", list(expected, " 或 "))
            }
            Reason::Digits { actual, expected } => {
                format!("有 {actual} 位数字，应为 {} 位", list(expected, " 或 "))
            }
            Reason::Character { ch, position } => format!(
                "的第 {position} 个字符“{}”无效{}",
                ch.escape_debug(),
                hint_zh(self.subject)
            ),
            Reason::TooLong { actual, max } => {
                format!("长度为 {actual} 个字符，最多允许 {max} 个")
            }
            Reason::Authority { ch } => format!(
                "的第 1 位登记管理部门代码“{}”无效（GB 32100：应为 1–9、A–G、N 或 Y）",
                ch.escape_debug()
            ),
            Reason::OrganisationType {
                authority,
                ch,
                allowed,
            } => format!(
                "的第 2 位机构类别代码“{}”无效（GB 32100：登记管理部门 {authority} 的机构类别为 {}）",
                ch.escape_debug(),
                spaced(allowed, "、")
            ),
            Reason::Region { code } => format!(
                "的地址码以 {code} 开头，不是任何省级行政区的代码（GB 11643：前两位应为 11–15、\
                 21–23、31–37、41–46、50–54、61–65、71、81–83，外国人永久居留身份证为 9 加省级代码）"
            ),
            Reason::Division { code } => {
                format!("第 3–8 位的行政区划码 {code} 应为 6 位数字")
            }
            Reason::CheckCharacter { found, expected } => {
                format!("的校验码为 {found}，应为 {expected}")
            }
            Reason::BirthDate { digits, problem } => match problem {
                BirthDateProblem::NotADate => format!("中的出生日期 {digits} 不是有效日期"),
                BirthDateProblem::Before1900 => {
                    format!("中的出生日期 {digits} 早于 1900 年 1 月 1 日")
                }
                BirthDateProblem::InTheFuture => format!("中的出生日期 {digits} 晚于今天"),
            },
            Reason::MobilePrefix => "应以 13 至 19 开头".to_owned(),
            Reason::CountryCode { code } => {
                format!("的国家代码 +{code} 不存在（国家代码以 1 至 9 开头）")
            }
            Reason::InternationalDigits { actual } => {
                format!("连同国家代码有 {actual} 位数字，应为 8 至 15 位")
            }
            Reason::MainlandAfterPrefix => {
                "是国内手机号却带有 + 或 00：请去掉前缀，或写作 +86 138 0013 8000".to_owned()
            }
            Reason::AreaCode { code } => format!("的区号 {code} 不是有效的中国大陆区号"),
            Reason::MissingAreaCode => {
                "缺少区号，应写作 010-62345678 或 0755-2345678 的形式".to_owned()
            }
            Reason::LocalNumber { number } => {
                format!("的本地号码 {number} 应为 7 或 8 位数字且不以 0 或 1 开头")
            }
            Reason::Extension { extension } if extension.is_empty() => {
                "的分机标记后没有分机号".to_owned()
            }
            Reason::Extension { extension } => {
                format!("的分机号 {extension} 应为 1 至 6 位数字")
            }
            Reason::EmailSyntax { zh, .. } => format!("格式不正确：{zh}"),
            Reason::UrlSyntax { zh, .. } => format!("格式不正确：{zh}"),
            Reason::UrlScheme { scheme } => {
                format!("使用了 {scheme} 协议，仅支持 http 和 https")
            }
            Reason::UrlHost => "缺少带点的域名（如 www.example.com）或 IP 地址".to_owned(),
            Reason::Placeholder => {
                "是占位符（同一字符重复），不是真实的代码；不知道时请留空".to_owned()
            }
        };
        format!("{s} {v} {r}")
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.subject.name_en();
        if self.reason == Reason::Empty {
            return write!(f, "{s} is empty");
        }
        write!(f, "{s} {} ", shown(&self.value))?;
        match &self.reason {
            Reason::Empty => Ok(()),
            Reason::Length { actual, expected } => write!(
                f,
                "has {actual} characters, expected {}",
                list(expected, " or ")
            ),
            Reason::Digits { actual, expected } => {
                write!(
                    f,
                    "has {actual} digits, expected {}",
                    list(expected, " or ")
                )
            }
            Reason::Character { ch, position } => write!(
                f,
                "has invalid character '{}' at position {position}{}",
                ch.escape_debug(),
                hint_en(self.subject)
            ),
            Reason::TooLong { actual, max } => {
                write!(f, "has {actual} characters, at most {max} are allowed")
            }
            Reason::Authority { ch } => write!(
                f,
                "has registration authority code '{}' at position 1, which does not exist \
                 (GB 32100: 1-9, A-G, N or Y)",
                ch.escape_debug()
            ),
            Reason::OrganisationType {
                authority,
                ch,
                allowed,
            } => write!(
                f,
                "has organisation type '{}' at position 2, which registration authority \
                 {authority} does not assign (GB 32100: {})",
                ch.escape_debug(),
                spaced(allowed, ", ")
            ),
            Reason::Region { code } => write!(
                f,
                "has a region code starting with {code}, which is no province's code \
                 (GB 11643: 11-15, 21-23, 31-37, 41-46, 50-54, 61-65, 71, 81-83, or 9 and a \
                 province's code for a foreigner's permanent residence card)"
            ),
            Reason::Division { code } => write!(
                f,
                "has administrative division code {code} at positions 3-8, which must be 6 digits"
            ),
            Reason::CheckCharacter { found, expected } => {
                write!(f, "has check character {found}, expected {expected}")
            }
            Reason::BirthDate { digits, problem } => match problem {
                BirthDateProblem::NotADate => write!(
                    f,
                    "has birth date {digits}, which is not a real calendar date"
                ),
                BirthDateProblem::Before1900 => {
                    write!(f, "has birth date {digits}, which is before 1900-01-01")
                }
                BirthDateProblem::InTheFuture => {
                    write!(f, "has birth date {digits}, which is in the future")
                }
            },
            Reason::MobilePrefix => f.write_str("must start with 13 to 19"),
            Reason::CountryCode { code } => write!(
                f,
                "has country code +{code}, which does not exist (country codes start with 1 to 9)"
            ),
            Reason::InternationalDigits { actual } => write!(
                f,
                "has {actual} digits with the country code, expected 8 to 15"
            ),
            Reason::MainlandAfterPrefix => f.write_str(
                "is a mainland mobile number written after + or 00: leave the prefix out, or \
                 write +86 138 0013 8000",
            ),
            Reason::AreaCode { code } => {
                write!(f, "has area code {code}, which is not a mainland area code")
            }
            Reason::MissingAreaCode => {
                f.write_str("has no area code; write it like 010-62345678 or 0755-2345678")
            }
            Reason::LocalNumber { number } => write!(
                f,
                "has local number {number}, expected 7 or 8 digits not starting with 0 or 1"
            ),
            Reason::Extension { extension } if extension.is_empty() => {
                f.write_str("has an extension marker with no extension after it")
            }
            Reason::Extension { extension } => {
                write!(f, "has extension {extension}, expected 1 to 6 digits")
            }
            Reason::EmailSyntax { en, .. } => write!(f, "is malformed: {en}"),
            Reason::UrlSyntax { en, .. } => write!(f, "is malformed: {en}"),
            Reason::UrlScheme { scheme } => {
                write!(f, "uses scheme {scheme}; only http and https are allowed")
            }
            Reason::UrlHost => f.write_str(
                "has no domain name with a dot (like www.example.com) and no IP address",
            ),
            Reason::Placeholder => f.write_str(
                "is one character repeated, a placeholder, not a real code; leave it empty if \
                 unknown",
            ),
        }
    }
}

impl std::error::Error for Invalid {}

// `impl From<Invalid> for String` (the English message) currently lives in
// records.rs, which added it first; it belongs here and should move when
// that file is next edited.

fn hint_en(subject: Subject) -> &'static str {
    match subject {
        Subject::Uscc => " (allowed: digits and letters A-Y except I, O, S, V)",
        Subject::ResidentId => " (only digits, and X as the last character)",
        Subject::Mobile | Subject::Landline => {
            " (only digits, spaces, dashes, dots and parentheses)"
        }
        Subject::PersonName => " (control characters are not allowed)",
        Subject::Email | Subject::Url => "",
    }
}

fn hint_zh(subject: Subject) -> &'static str {
    match subject {
        Subject::Uscc => "（只允许数字和除 I、O、S、V、Z 以外的大写字母）",
        Subject::ResidentId => "（只允许数字，最后一位可以是 X）",
        Subject::Mobile | Subject::Landline => "（只允许数字、空格、短横线、点和括号）",
        Subject::PersonName => "（不允许控制字符）",
        Subject::Email | Subject::Url => "",
    }
}

/// The characters of `chars` joined by `sep`.
fn spaced(chars: &str, sep: &str) -> String {
    chars
        .chars()
        .map(String::from)
        .collect::<Vec<_>>()
        .join(sep)
}

fn list(items: &[usize], sep: &str) -> String {
    items
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

/// The value as shown in a message: at most 64 characters.
fn shown(value: &str) -> String {
    const MAX: usize = 64;
    if value.chars().count() <= MAX {
        value.to_owned()
    } else {
        let mut s: String = value.chars().take(MAX - 1).collect();
        s.push('…');
        s
    }
}

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

/// Maps full-width ASCII variants (U+FF01–U+FF5E) to ASCII and the
/// ideographic space (U+3000) to a space; other characters are unchanged.
pub(crate) fn halfwidth(c: char) -> char {
    match c {
        '\u{3000}' => ' ',
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

/// The key a text value is compared by where spelling aside counts (the
/// duplicate keys of custom fields, unique custom text fields): full-width
/// ASCII mapped to ASCII, trimmed, inner whitespace collapsed to one space,
/// lowercased — `ERP-001`, `erp-001` and `ＥＲＰ－００１` have one key.
/// Public for the stores, which compare by it
/// ([`Filter::TextKeyIn`](crate::store::Filter::TextKeyIn)).
pub fn text_key(s: &str) -> String {
    s.chars()
        .map(halfwidth)
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Maps ASCII to its full-width variant (U+FF01–U+FF5E, the space to the
/// ideographic space); other characters are unchanged.
pub(crate) fn fullwidth(c: char) -> char {
    match c {
        ' ' => '\u{3000}',
        '!'..='~' => char::from_u32(c as u32 + 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

/// Refuses a value holding a NUL character, which no store keeps (a host
/// passing a C string's bytes, say), naming the field: asked for where a
/// name or option is kept as given rather than cleaned.
pub fn refuse_nul<'a>(
    field: &str,
    values: impl IntoIterator<Item = &'a str>,
) -> crate::error::Result<()> {
    if values.into_iter().any(|v| v.contains('\0')) {
        return Err(crate::error::Error::invalid(
            field,
            "holds a NUL character (\\0), which no text may",
        ));
    }
    Ok(())
}

/// Whether `c` is an invisible format character (Unicode general category
/// Cf): zero-width space, non-joiner and joiner, word joiner, byte-order
/// mark, soft hyphen, bidirectional marks and the like. Typed or pasted
/// into a name, code or address they make two equal-looking values differ.
pub fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

/// Whether `c` takes part in emoji sequences (pictographs, symbols, the
/// emoji variation selector, the keycap mark).
fn is_emoji_part(c: char) -> bool {
    matches!(
        c,
        '\u{00A9}'
            | '\u{00AE}'
            | '\u{203C}'
            | '\u{2049}'
            | '\u{2122}'
            | '\u{2139}'
            | '\u{2194}'..='\u{21AA}'
            | '\u{231A}'..='\u{23FF}'
            | '\u{24C2}'
            | '\u{25AA}'..='\u{27BF}'
            | '\u{2934}'..='\u{2935}'
            | '\u{2B05}'..='\u{2B55}'
            | '\u{3030}'
            | '\u{303D}'
            | '\u{3297}'
            | '\u{3299}'
            | '\u{FE0F}'
            | '\u{20E3}'
            | '\u{1F000}'..='\u{1FAFF}'
    )
}

/// A single-line name as typed, without its invisible format characters
/// ([`strip_invisible`]); spaces around it are left to the caller's trim.
pub(crate) fn single_line(s: &str) -> String {
    strip_invisible(s).into_owned()
}

/// A record code as typed, as codes are stored: trimmed, without invisible
/// characters, full-width ASCII read as ASCII, in upper case
/// (`ｋｈ-20261127-0001` is `KH-20261127-0001`).
pub fn record_code(s: &str) -> String {
    strip_invisible(s)
        .chars()
        .map(halfwidth)
        .collect::<String>()
        .trim()
        .to_ascii_uppercase()
}

/// A single-line text value (a name, code, phone, e-mail, address, short
/// custom text) without its invisible format characters (Unicode category
/// Cf: zero-width space, joiners, word joiner, byte-order mark, soft
/// hyphen, bidirectional marks …): `dup\u{200B}@example.com` becomes
/// `dup@example.com`, `零宽\u{200B}测试` becomes `零宽测试`. Kept: a
/// zero-width joiner between two emoji and the tag characters after a
/// black flag, which build emoji sequences (`👨‍👩‍👧`, 🏴 subdivision
/// flags). Multi-line text (notes, a follow-up's content) is left as typed.
pub fn strip_invisible(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(is_invisible_format) {
        return std::borrow::Cow::Borrowed(s);
    }
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        if !is_invisible_format(c) {
            out.push(c);
            continue;
        }
        let before = out.chars().next_back();
        let keep = match c {
            '\u{200D}' => {
                before.is_some_and(is_emoji_part)
                    && chars.get(i + 1).copied().is_some_and(is_emoji_part)
            }
            '\u{E0020}'..='\u{E007F}' => {
                before.is_some_and(|b| b == '\u{1F3F4}' || ('\u{E0020}'..='\u{E007E}').contains(&b))
            }
            _ => false,
        };
        if keep {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Trims, drops invisible format characters ([`strip_invisible`]) and maps
/// full-width ASCII to ASCII.
fn clean(s: &str) -> String {
    let s = strip_invisible(s);
    let t = s.trim();
    if t.chars().all(|c| halfwidth(c) == c) {
        // Nothing to map, and already trimmed.
        return t.to_owned();
    }
    t.chars()
        .map(halfwidth)
        .collect::<String>()
        .trim()
        .to_owned()
}

// ---------------------------------------------------------------------------
// Unified social credit code
// ---------------------------------------------------------------------------

/// The 31 characters a unified social credit code may use, in value order
/// (GB 32100-2015, table 1): digits and capitals without I, O, S, V, Z.
pub const USCC_CHARSET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// The value of each ASCII character in [`USCC_CHARSET`], 255 for others.
const USCC_VALUES: [u8; 128] = {
    let chars = USCC_CHARSET.as_bytes();
    let mut values = [255u8; 128];
    let mut i = 0;
    while i < chars.len() {
        values[chars[i] as usize] = i as u8;
        i += 1;
    }
    values
};

fn uscc_value(c: char) -> Option<u32> {
    let v = *USCC_VALUES.get(usize::try_from(u32::from(c)).ok()?)?;
    (v != 255).then_some(u32::from(v))
}

/// The check character (position 18) of a unified social credit code whose
/// first 17 characters are given, or `None` when `first17` is not 17
/// characters of [`USCC_CHARSET`]. The rule (GB 32100-2015, 5.2): with
/// weights 3^(i) mod 31 = `[1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8,
/// 24, 10, 30, 28]`, check = 31 − (Σ value × weight mod 31), where 31 maps
/// to 0.
pub fn uscc_check_char(first17: &str) -> Option<char> {
    if first17.chars().count() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (c, w) in first17.chars().zip(USCC_WEIGHTS) {
        sum += uscc_value(c)? * w;
    }
    let check = (31 - sum % 31) % 31;
    USCC_CHARSET
        .as_bytes()
        .get(usize::try_from(check).ok()?)
        .map(|b| char::from(*b))
}

/// The registration authority codes a unified social credit code may start
/// with (GB 32100-2015, 4.1 and the codes assigned since): 1 机构编制, 2 外交,
/// 3 司法行政, 4 文化, 5 民政, 6 旅游, 7 宗教, 8 工会, 9 市场监管 (工商),
/// A 中央军委改革和编制办公室, B–G departments added since, N 农业, Y 其他.
pub const USCC_AUTHORITIES: &str = "123456789ABCDEFGNY";

/// The organisation types (position 2 of a credit code) a registration
/// authority assigns, as GB 32100-2015 lists them: 1 机构编制: 1 机关,
/// 2 事业单位, 3 群众团体, 9 其他; 2 外交: 1, 9; 3 司法行政: 1 律师事务所,
/// 2 公证处, 3 基层法律服务所, 4 司法鉴定机构, 5 仲裁委员会, 9 其他;
/// 4 文化: 1, 9; 5 民政: 1 社会团体, 2 民办非企业单位, 3 基金会, 9 其他;
/// 6 旅游: 1, 2, 9; 7 宗教: 1, 2, 9; 8 工会: 1, 9; 9 市场监管: 1 企业,
/// 2 个体工商户, 3 农民专业合作社; A: 1, 9; N 农业: 1, 2, 3, 9; Y 其他: 1.
/// `None` for the authorities added since (B–G), whose types are not
/// published in the standard.
pub fn uscc_organisation_types(authority: char) -> Option<&'static str> {
    Some(match authority {
        '1' | '5' | 'N' => "1239",
        '2' | '4' | '8' | 'A' => "19",
        '3' => "123459",
        '6' | '7' => "129",
        '9' => "123",
        'Y' => "1",
        _ => return None,
    })
}

/// Validates a unified social credit code (统一社会信用代码, GB 32100-2015)
/// and returns it normalised: whitespace and invisible format characters removed, full-width characters
/// mapped to ASCII, letters uppercased.
///
/// Checked: 18 characters from [`USCC_CHARSET`]; positions 3–8 (the
/// administrative division code) are digits; position 18 is the check
/// character of [`uscc_check_char`]; not one character repeated (a
/// placeholder such as `000000000000000000`); position 1, the registration
/// authority, is one of 1–9, A–G, N, Y ([`USCC_AUTHORITIES`]: GB 32100's
/// table, with the letters departments have been given since 2015); position
/// 2, the organisation type, is one that authority assigns, for the
/// authorities whose types GB 32100 lists ([`uscc_organisation_types`]).
/// Not checked: the embedded organisation code's own check character
/// (positions 9–17), which some issuers do not follow.
pub fn uscc(s: &str) -> Result<String, Invalid> {
    let code: String = s
        .chars()
        .map(halfwidth)
        .filter(|c| !c.is_whitespace() && !is_invisible_format(*c))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if code.is_empty() {
        return Err(Invalid::empty(Subject::Uscc));
    }
    let len = code.chars().count();
    if len != 18 {
        return Err(Invalid::new(
            Subject::Uscc,
            code,
            Reason::Length {
                actual: len,
                expected: &[18],
            },
        ));
    }
    if let Some((i, ch)) = code
        .chars()
        .enumerate()
        .find(|(_, c)| uscc_value(*c).is_none())
    {
        return Err(Invalid::new(
            Subject::Uscc,
            code,
            Reason::Character {
                ch,
                position: i + 1,
            },
        ));
    }
    // A placeholder typed for an unknown code (`000000000000000000`) has a
    // valid check character, and would make every customer given it a
    // duplicate of the others.
    if code.bytes().all(|b| Some(&b) == code.as_bytes().first()) {
        return Err(Invalid::new(Subject::Uscc, code, Reason::Placeholder));
    }
    let mut chars = code.chars();
    let (authority, kind) = (chars.next().unwrap_or('?'), chars.next().unwrap_or('?'));
    if !USCC_AUTHORITIES.contains(authority) {
        return Err(Invalid::new(
            Subject::Uscc,
            code,
            Reason::Authority { ch: authority },
        ));
    }
    if let Some(allowed) = uscc_organisation_types(authority)
        && !allowed.contains(kind)
    {
        return Err(Invalid::new(
            Subject::Uscc,
            code,
            Reason::OrganisationType {
                authority,
                ch: kind,
                allowed,
            },
        ));
    }
    // All 18 characters are ASCII now, so byte slicing is safe.
    let division = &code[2..8];
    if !division.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Invalid::new(
            Subject::Uscc,
            code.clone(),
            Reason::Division {
                code: division.to_owned(),
            },
        ));
    }
    let expected = uscc_check_char(&code[..17]).unwrap_or('?');
    let found = code.chars().last().unwrap_or('?');
    if found != expected {
        return Err(Invalid::new(
            Subject::Uscc,
            code,
            Reason::CheckCharacter { found, expected },
        ));
    }
    Ok(code)
}

// ---------------------------------------------------------------------------
// Resident ID number
// ---------------------------------------------------------------------------

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

/// The check character (position 18) of a resident ID number whose first 17
/// digits are given (GB 11643-1999: Σ digit × weight mod 11 indexes
/// `"10X98765432"`), or `None` when `first17` is not 17 ASCII digits.
pub fn resident_id_check_char(first17: &str) -> Option<char> {
    if first17.len() != 17 || !first17.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sum: u32 = first17
        .bytes()
        .zip(ID_WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    ID_CHECK
        .get(usize::try_from(sum % 11).ok()?)
        .map(|b| char::from(*b))
}

/// The province-level codes of the mainland (GB/T 2260): the first two
/// digits of a mainland resident ID number.
const MAINLAND_PROVINCES: [&str; 31] = [
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41",
    "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65",
];

/// Whether two digits begin the region code of a resident ID number
/// (GB 11643-1999, whose address code is GB/T 2260's): a mainland
/// province's code (`MAINLAND_PROVINCES`), 71 (Taiwan), or 81, 82, 83 (the
/// residence permits of residents of Hong Kong, Macao and Taiwan).
pub fn resident_id_province(two: &str) -> bool {
    MAINLAND_PROVINCES.contains(&two) || matches!(two, "71" | "81" | "82" | "83")
}

/// A person's sex as recorded in a resident ID number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    /// Odd sequence digit.
    Male,
    /// Even sequence digit.
    Female,
}

/// A validated resident ID number.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResidentId {
    /// The 18-character number, check character `X` uppercase.
    pub number: String,
    /// The birth date (positions 7–14).
    pub birth_date: NaiveDate,
    /// From the parity of position 17.
    pub gender: Gender,
    /// Whether the input was a legacy 15-digit number, upgraded to 18.
    pub upgraded_from_15: bool,
}

impl ResidentId {
    /// Whether the birth date is after `today` (which the caller takes from
    /// its injected clock).
    pub fn born_after(&self, today: NaiveDate) -> bool {
        self.birth_date > today
    }

    /// `Ok` when the person was born on or before `today`, else the
    /// "birth date in the future" error naming the number.
    pub fn check_born_by(&self, today: NaiveDate) -> Result<(), Invalid> {
        if self.born_after(today) {
            Err(Invalid::new(
                Subject::ResidentId,
                self.number.clone(),
                Reason::BirthDate {
                    digits: self.birth_date.format("%Y%m%d").to_string(),
                    problem: BirthDateProblem::InTheFuture,
                },
            ))
        } else {
            Ok(())
        }
    }

    /// Age in whole years on `today`, or `None` when born after `today`.
    pub fn age_on(&self, today: NaiveDate) -> Option<u32> {
        if self.born_after(today) {
            return None;
        }
        let mut age = today.year() - self.birth_date.year();
        if (today.month(), today.day()) < (self.birth_date.month(), self.birth_date.day()) {
            age -= 1;
        }
        u32::try_from(age).ok()
    }
}

/// Validates a mainland resident ID number (居民身份证号码, GB 11643-1999).
///
/// Accepted: 17 digits plus a check character (digit or `X`/`x`);
/// whitespace is removed and full-width digits mapped to ASCII. The birth
/// date (positions 7–14) must be a real calendar date on or after
/// 1900-01-01, and the check character must match
/// [`resident_id_check_char`]. The region code (positions 1–6) starts with
/// a province's code ([`resident_id_province`]: 11–15, 21–23, 31–37, 41–46,
/// 50–54, 61–65, 71, 81–83; or 9 and a mainland province's code, a
/// foreigner's permanent residence card of 2023, numbered alike); the rest
/// of it is not checked against the division table, which changes every
/// year.
///
/// Legacy 15-digit numbers (first generation, issued until 2004: 6-digit
/// region, `YYMMDD` birth date in the 1900s, 3-digit sequence, no check
/// character) are accepted and upgraded the official way: `19` is inserted
/// before the birth date and the check character appended, so the old and
/// the new number of one person normalise to the same value;
/// [`ResidentId::upgraded_from_15`] tells which was given.
///
/// Whether the birth date is in the future depends on the clock, so the
/// caller checks that with [`ResidentId::check_born_by`].
pub fn resident_id(s: &str) -> Result<ResidentId, Invalid> {
    let raw: String = s
        .chars()
        .map(halfwidth)
        .filter(|c| !c.is_whitespace() && !is_invisible_format(*c))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if raw.is_empty() {
        return Err(Invalid::empty(Subject::ResidentId));
    }
    let len = raw.chars().count();
    if len != 18 && len != 15 {
        return Err(Invalid::new(
            Subject::ResidentId,
            raw,
            Reason::Length {
                actual: len,
                expected: &[18, 15],
            },
        ));
    }
    let bad = raw
        .chars()
        .enumerate()
        .find(|&(i, c)| !(c.is_ascii_digit() || (c == 'X' && i == 17)));
    if let Some((i, ch)) = bad {
        return Err(Invalid::new(
            Subject::ResidentId,
            raw,
            Reason::Character {
                ch,
                position: i + 1,
            },
        ));
    }
    // ASCII from here on.
    // A mainland, Taiwan, Hong Kong or Macao region; or 9 and the issuing
    // province (a foreigner's permanent residence card, 2023).
    let region_known = resident_id_province(&raw[..2])
        || (raw.starts_with('9') && MAINLAND_PROVINCES.contains(&&raw[1..3]));
    if !region_known {
        return Err(Invalid::new(
            Subject::ResidentId,
            raw.clone(),
            Reason::Region {
                code: raw[..2].to_owned(),
            },
        ));
    }
    let upgraded = len == 15;
    let body17 = if upgraded {
        format!("{}19{}", &raw[..6], &raw[6..15])
    } else {
        raw[..17].to_owned()
    };
    let digits = &body17[6..14];
    let date = parse_birth_date(digits).map_err(|problem| {
        Invalid::new(
            Subject::ResidentId,
            raw.clone(),
            Reason::BirthDate {
                digits: digits.to_owned(),
                problem,
            },
        )
    })?;
    let expected = resident_id_check_char(&body17).unwrap_or('?');
    let number = if upgraded {
        format!("{body17}{expected}")
    } else {
        let found = raw.chars().last().unwrap_or('?');
        if found != expected {
            return Err(Invalid::new(
                Subject::ResidentId,
                raw,
                Reason::CheckCharacter { found, expected },
            ));
        }
        raw
    };
    let gender = if (body17.as_bytes()[16] - b'0') % 2 == 1 {
        Gender::Male
    } else {
        Gender::Female
    };
    Ok(ResidentId {
        number,
        birth_date: date,
        gender,
        upgraded_from_15: upgraded,
    })
}

fn parse_birth_date(digits: &str) -> Result<NaiveDate, BirthDateProblem> {
    let num = |r: std::ops::Range<usize>| digits.get(r).and_then(|t| t.parse::<u32>().ok());
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(4..6), num(6..8)) else {
        return Err(BirthDateProblem::NotADate);
    };
    let y = i32::try_from(y).map_err(|_| BirthDateProblem::NotADate)?;
    let date = NaiveDate::from_ymd_opt(y, m, d).ok_or(BirthDateProblem::NotADate)?;
    if y < 1900 {
        return Err(BirthDateProblem::Before1900);
    }
    Ok(date)
}

// ---------------------------------------------------------------------------
// Phone numbers
// ---------------------------------------------------------------------------

/// Separators tolerated inside phone numbers.
fn is_phone_separator(c: char) -> bool {
    matches!(c, ' ' | '-' | '(' | ')' | '.' | '\t' | '—' | '–')
}

/// Digits an international number may have, country code included (E.164
/// allows at most 15).
const INTERNATIONAL_DIGITS: std::ops::RangeInclusive<usize> = 8..=15;

/// Splits a lowercased number at its first explicit extension marker
/// (see [`EXTENSION_MARKERS`]): the main part, and the extension's digits.
/// `Err` holds an extension that is not 1–6 digits.
fn split_extension(lower: &str) -> Result<(&str, Option<String>), (&str, String)> {
    // Every marker has a byte of these.
    let may_have_marker = lower
        .bytes()
        .any(|b| b == b'#' || b == b'x' || !b.is_ascii());
    let marker = EXTENSION_MARKERS
        .iter()
        .filter(|_| may_have_marker)
        .filter_map(|m| lower.find(m).map(|i| (i, m.len())))
        .min();
    match marker {
        Some((i, len)) => {
            let ext: String = lower[i + len..]
                .chars()
                .filter(|c| !matches!(c, '.' | ':' | ' ' | '-' | '：'))
                .collect();
            if ext.is_empty() || ext.len() > 6 || !ext.bytes().all(|b| b.is_ascii_digit()) {
                return Err((&lower[..i], ext));
            }
            Ok((&lower[..i], Some(ext)))
        }
        None => Ok((lower, None)),
    }
}

/// The first character of the part of a phone number before an extension
/// marker that is no digit, separator or opening `+`, as the error naming
/// it.
fn bad_character(subject: Subject, text: &str, main: &str) -> Option<Invalid> {
    let main = main.trim();
    let lead = main.chars().take_while(|c| is_phone_separator(*c)).count();
    main.chars().enumerate().find_map(|(i, ch)| {
        let ok = ch.is_ascii_digit() || is_phone_separator(ch) || (ch == '+' && i == lead);
        (!ok).then(|| {
            Invalid::new(
                subject,
                text.to_owned(),
                Reason::Character {
                    ch,
                    position: i + 1,
                },
            )
        })
    })
}

/// A number written with an international prefix (`+` or `00`) and a
/// country code other than 86.
struct Foreign {
    /// Country code and national number, digits only.
    digits: String,
    /// The extension, when one was given after an explicit marker.
    extension: Option<String>,
}

impl Foreign {
    /// The E.164 form `+85221234567`, with ` ext NNN` appended when there
    /// is an extension.
    fn canonical(&self) -> String {
        match &self.extension {
            Some(e) => format!("+{} ext {e}", self.digits),
            None => self.key(),
        }
    }

    /// The E.164 form without extension: `+` and the digits. The `+` keeps
    /// it apart from every mainland key (`+1 415 555 0100` is not the
    /// mainland mobile 14155550100).
    fn key(&self) -> String {
        format!("+{}", self.digits)
    }
}

/// Recognises a number with an international prefix other than +86/0086:
/// `None` when `t` (cleaned) has no such prefix, so the mainland rules
/// apply; else the parsed number or why it is invalid. The prefix is `+` or
/// `00` after any leading separators (`(+852) 2123 4567`); a `(0)` trunk
/// prefix after the country code is dropped (`+44 (0)20 7946 0958`). With
/// `extensions`, an extension after an explicit marker is allowed.
fn foreign(t: &str, subject: Subject, extensions: bool) -> Option<Result<Foreign, Invalid>> {
    let lead = t.len() - t.trim_start_matches(is_phone_separator).len();
    let body = &t[lead..];
    let after = match body.strip_prefix('+') {
        Some(r) => r,
        None => body.strip_prefix("00")?,
    };
    let first_digits: String = after
        .chars()
        .filter(|c| !is_phone_separator(*c))
        .take(2)
        .collect();
    if first_digits == "86" {
        return None;
    }
    let err = |reason| Some(Err(Invalid::new(subject, t.to_owned(), reason)));
    let prefix_len = body.len() - after.len();
    let lower = after.to_lowercase();
    let (main, extension) = if extensions {
        match split_extension(&lower) {
            Ok(split) => split,
            Err((main, extension)) => {
                return Some(Err(bad_character(subject, t, main).unwrap_or_else(|| {
                    Invalid::new(subject, t.to_owned(), Reason::Extension { extension })
                })));
            }
        }
    } else {
        (lower.as_str(), None)
    };
    if let Some((i, ch)) = main
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_digit() || is_phone_separator(*c)))
    {
        let before = t[..lead + prefix_len].chars().count();
        return err(Reason::Character {
            ch,
            position: before + i + 1,
        });
    }
    let main = main.replacen("(0)", " ", 1);
    let groups: Vec<&str> = main
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    // `+138 0013 8000`: a mainland mobile in its usual 3-4-4 grouping
    // after a stray prefix, not a number in North America, which is
    // written `+1 415 555 0100`, `+1876 555 1234` or run together.
    if let [first, a, b] = groups.as_slice()
        && first.len() == 3
        && a.len() == 4
        && b.len() == 4
        && first.starts_with('1')
        && (b'3'..=b'9').contains(&first.as_bytes()[1])
    {
        return err(Reason::MainlandAfterPrefix);
    }
    // (A trunk 0 is dropped only bracketed, `(0)`: typed as a group of its
    // own it may be part of the number, as in Côte d'Ivoire or San Marino.)
    let digits: String = groups.concat();
    if digits.starts_with('0') {
        let code = main
            .split(|c: char| !c.is_ascii_digit())
            .find(|g| !g.is_empty())
            .unwrap_or_default()
            .chars()
            .take(3)
            .collect();
        return err(Reason::CountryCode { code });
    }
    if !INTERNATIONAL_DIGITS.contains(&digits.len()) {
        return err(Reason::InternationalDigits {
            actual: digits.len(),
        });
    }
    Some(Ok(Foreign { digits, extension }))
}

/// Validates a mobile number and returns its canonical form: the 11 digits
/// of a mainland number, or the E.164 form (`+85291234567`) of an
/// international one.
///
/// Spaces, dashes, dots and parentheses are removed, full-width digits
/// mapped to ASCII, and a leading `+86`, `0086`, or `86` followed by 11
/// digits is dropped. The rest must be `1[3-9]` and nine more digits.
///
/// A number with another country code, after `+` or `00`
/// (`+852 9123 4567`, `00852 9123 4567`, `+44 (0)7700 900123`), is kept
/// as `+` and its digits: the country code must not start with 0 and the
/// digits, country code included, must number 8 to 15 (E.164). Whether
/// such a number is a mobile one is not checked. The canonical form is also
/// the duplicate key (see [`Phone::key`]). Canonicalisation is idempotent.
pub fn mobile(s: &str) -> Result<String, Invalid> {
    let t = clean(s);
    if t.is_empty() {
        return Err(Invalid::empty(Subject::Mobile));
    }
    if let Some(f) = foreign(&t, Subject::Mobile, false) {
        return f.map(|f| f.key());
    }
    let compact: String = t.chars().filter(|c| !is_phone_separator(*c)).collect();
    let rest = if let Some(r) = compact.strip_prefix("+86") {
        r
    } else if let Some(r) = compact.strip_prefix("0086") {
        r
    } else if compact.len() == 13 && compact.starts_with("86") {
        &compact[2..]
    } else {
        &compact
    };
    if let Some(ch) = rest.chars().find(|c| !c.is_ascii_digit()) {
        let position = t.chars().position(|c| c == ch).map_or(0, |p| p + 1);
        return Err(Invalid::new(
            Subject::Mobile,
            t,
            Reason::Character { ch, position },
        ));
    }
    if rest.len() != 11 {
        return Err(Invalid::new(
            Subject::Mobile,
            t,
            Reason::Digits {
                actual: rest.len(),
                expected: &[11],
            },
        ));
    }
    let b = rest.as_bytes();
    if b[0] != b'1' || !(b'3'..=b'9').contains(&b[1]) {
        return Err(Invalid::new(Subject::Mobile, t, Reason::MobilePrefix));
    }
    Ok(rest.to_owned())
}

/// Whether five digits are a mainland short service line: `95xxx`
/// (banks, insurers, carriers: 95555, 95588), `100xx` (telecom operators:
/// 10086, 10010, 10000) or `12xxx` (public services: 12345, 12315, 12306).
fn is_short_service(digits: &str) -> bool {
    digits.len() == 5
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits.starts_with("95") || digits.starts_with("100") || digits.starts_with("12"))
}

/// The parts of a fixed-line, service or international number.
struct LandlineParts {
    /// `0AA`/`0AAA`; `400`/`800` for service numbers; empty for a short
    /// service line; `+` for an international number.
    area: String,
    /// The local number (7 digits for 400/800 numbers, the 5 digits of a
    /// short service line, country code and number of an international
    /// one).
    number: String,
    extension: Option<String>,
}

impl LandlineParts {
    fn kind(&self) -> PhoneKind {
        if self.area == "+" {
            PhoneKind::International
        } else if self.area.starts_with('0') {
            PhoneKind::Landline
        } else {
            PhoneKind::Service
        }
    }

    fn canonical(&self) -> String {
        if self.area == "+" {
            return Foreign {
                digits: self.number.clone(),
                extension: self.extension.clone(),
            }
            .canonical();
        }
        if self.area.is_empty() {
            return self.number.clone();
        }
        let mut s = String::with_capacity(
            self.area.len()
                + self.number.len()
                + 3
                + self.extension.as_ref().map_or(0, String::len),
        );
        s.push_str(&self.area);
        s.push('-');
        if self.kind() == PhoneKind::Service {
            s.push_str(&self.number[..3]);
            s.push('-');
            s.push_str(&self.number[3..]);
        } else {
            s.push_str(&self.number);
        }
        if let Some(e) = &self.extension {
            s.push('-');
            s.push_str(e);
        }
        s
    }

    fn key(&self) -> String {
        let mut s = String::with_capacity(self.area.len() + self.number.len());
        s.push_str(&self.area);
        s.push_str(&self.number);
        s
    }
}

/// Extension markers, lowercase; the earliest occurrence wins.
const EXTENSION_MARKERS: [&str; 5] = ["转", "分机", "ext", "x", "#"];

fn parse_landline(s: &str) -> Result<LandlineParts, Invalid> {
    let t = clean(s);
    if t.is_empty() {
        return Err(Invalid::empty(Subject::Landline));
    }
    if let Some(f) = foreign(&t, Subject::Landline, true) {
        return f.map(|f| LandlineParts {
            area: "+".to_owned(),
            number: f.digits,
            extension: f.extension,
        });
    }
    let err = |reason| Invalid::new(Subject::Landline, t.clone(), reason);
    let lower = t.to_lowercase();

    // Explicit extension marker.
    let (main, mut extension) = split_extension(&lower).map_err(|(main, extension)| {
        // Letters before the marker are the problem, not the extension
        // (`bad-phone-x`).
        bad_character(Subject::Landline, &t, main)
            .unwrap_or_else(|| err(Reason::Extension { extension }))
    })?;

    // Characters of the main part: a `+` may only open it, after any
    // brackets or separators (`(+86) 10 6552 9988`).
    let main = main.trim();
    let lead = main.chars().take_while(|c| is_phone_separator(*c)).count();
    for (i, ch) in main.chars().enumerate() {
        let ok = ch.is_ascii_digit() || is_phone_separator(ch) || (ch == '+' && i == lead);
        if !ok {
            return Err(err(Reason::Character {
                ch,
                position: i + 1,
            }));
        }
    }
    let mut groups: Vec<&str> = main
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    if groups.is_empty() {
        return Err(err(Reason::Digits {
            actual: 0,
            expected: &[10, 11, 12],
        }));
    }

    // Short service lines: five digits, no prefix, no extension.
    if extension.is_none() && !main.contains('+') {
        let digits = groups.concat();
        if is_short_service(&digits) {
            return Ok(LandlineParts {
                area: String::new(),
                number: digits,
                extension: None,
            });
        }
    }

    // International prefix: +86, 0086, or a separate 86 (other country
    // codes were handled above, so a `+` is followed by 86).
    let prefix_digits = if main.trim_start_matches(is_phone_separator).starts_with('+') {
        2
    } else if groups.concat().starts_with("0086") {
        4
    } else if groups[0] == "86" && groups.len() > 1 {
        2
    } else {
        0
    };
    let intl = prefix_digits > 0;
    let mut left = prefix_digits;
    for g in groups.iter_mut() {
        let k = left.min(g.len());
        *g = &g[k..];
        left -= k;
        if left == 0 {
            break;
        }
    }
    groups.retain(|g| !g.is_empty());
    let mut digits: String = groups.concat();
    if intl && !digits.starts_with('0') && !digits.starts_with("400") && !digits.starts_with("800")
    {
        digits.insert(0, '0');
    }
    let last_group_len = if groups.len() >= 2 {
        groups.last().map_or(0, |g| g.len())
    } else {
        0
    };

    // Service numbers: 400/800 plus seven digits.
    if digits.starts_with("400") || digits.starts_with("800") {
        let mut n = digits.len();
        if n != 10 && extension.is_none() && n - last_group_len == 10 && last_group_len <= 6 {
            extension = Some(digits[10..].to_owned());
            n = 10;
        }
        if n != 10 {
            return Err(err(Reason::Digits {
                actual: n,
                expected: &[10],
            }));
        }
        return Ok(LandlineParts {
            area: digits[..3].to_owned(),
            number: digits[3..10].to_owned(),
            extension,
        });
    }

    if !digits.starts_with('0') {
        return Err(err(Reason::MissingAreaCode));
    }
    let area_len = match digits.as_bytes().get(1) {
        Some(b'1') if digits.starts_with("010") => 3,
        Some(b'2') => 3,
        Some(b'3'..=b'9') => 4,
        _ => {
            let code = digits.chars().take(3).collect();
            return Err(err(Reason::AreaCode { code }));
        }
    };
    if digits.len() < area_len {
        return Err(err(Reason::AreaCode { code: digits }));
    }
    let mut number = digits[area_len..].to_owned();
    if number.len() > 8
        && extension.is_none()
        && last_group_len <= 6
        && (7..=8).contains(&(number.len() - last_group_len))
    {
        let at = number.len() - last_group_len;
        extension = Some(number[at..].to_owned());
        number.truncate(at);
    }
    let first_ok = number.bytes().next().is_some_and(|b| b >= b'2');
    if !(7..=8).contains(&number.len()) || !first_ok {
        return Err(err(Reason::LocalNumber { number }));
    }
    Ok(LandlineParts {
        area: digits[..area_len].to_owned(),
        number,
        extension,
    })
}

/// Validates a fixed-line number and returns its canonical form
/// `0AA-NNNNNNNN` / `0AAA-NNNNNNN`, with `-EXT` appended when there is an
/// extension; 400/800 service numbers come back as `400-NNN-NNNN`, short
/// service lines as their five digits (`95555`), international numbers in
/// E.164 form (`+85221234567`, `+14155550100 ext 12`).
///
/// Accepted input: area code `010` or `02X` (three digits) or `0XXX` (four
/// digits) followed by a 7–8 digit local number not starting with 0 or 1,
/// in any grouping with spaces, dashes, dots or parentheses
/// (`(0755) 8765 4321`); an international prefix `+86`, `0086` or a
/// separate `86`, after which the area code's leading 0 may be missing
/// (`+86 10 6552 9988`, `(+86) 755 8765 4321`); an extension after `转`,
/// `分机`, `ext`, `x`, `#`, or as a trailing dash-separated group of up to
/// six digits (`010-12345678-123`).
///
/// Also accepted: the five-digit short service lines `95xxx`, `100xx` and
/// `12xxx` (`95555`, `10086`, `12345`), without prefix or extension; and a
/// number with a country code other than 86 after `+` or `00` (see
/// [`mobile`] for its rules), with an extension only after an explicit
/// marker.
pub fn landline(s: &str) -> Result<String, Invalid> {
    parse_landline(s).map(|p| p.canonical())
}

/// What kind of number a [`Phone`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneKind {
    /// A mainland mobile number.
    Mobile,
    /// A mainland fixed-line number with an area code.
    Landline,
    /// A nationwide 400/800 service number, or a short service line
    /// (`95555`, `10086`, `12345`).
    Service,
    /// A number with a country code other than 86, mobile or fixed.
    International,
}

/// A validated phone number.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Phone {
    /// Mobile, landline, service or international number.
    pub kind: PhoneKind,
    /// The canonical display form (see [`mobile`] and [`landline`]).
    pub canonical: String,
    /// The duplicate-detection key: the 11 digits of a mainland mobile,
    /// area code and local number of a landline (extension ignored), the 10
    /// digits of a 400/800 number, the 5 of a short service line; for an
    /// international number `+`, country code and number (`+85221234567`,
    /// extension ignored), which no mainland key can equal. The usual ways
    /// of typing one number give the same key: spaces, dashes, brackets,
    /// `+` or `00`, and a bracketed trunk 0 (`+44 (0)20 …`); a trunk 0
    /// typed otherwise (`+44 020 …`) is kept, since in some countries a
    /// leading 0 is part of the number.
    pub key: String,
}

/// Validates a mobile, fixed-line, service or international number (see
/// [`mobile`] and [`landline`]). When both fail, the error is the mobile
/// one if the number (after any +86 prefix) starts with 1, except `10`
/// after a +86 prefix (Beijing's area code without its 0), else the
/// landline one.
pub fn phone(s: &str) -> Result<Phone, Invalid> {
    let t = clean(s);
    if let Some(f) = foreign(&t, Subject::Landline, true) {
        return f.map(|f| Phone {
            kind: PhoneKind::International,
            canonical: f.canonical(),
            key: f.key(),
        });
    }
    let mobile_err = match mobile(&t) {
        Ok(m) => {
            return Ok(Phone {
                kind: PhoneKind::Mobile,
                key: m.clone(),
                canonical: m,
            });
        }
        Err(e) => e,
    };
    match parse_landline(&t) {
        Ok(p) => Ok(Phone {
            kind: p.kind(),
            canonical: p.canonical(),
            key: p.key(),
        }),
        Err(landline_err) => {
            let digits: String = t
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '+')
                .collect();
            let (prefixed, rest) = match digits
                .strip_prefix("+86")
                .or_else(|| digits.strip_prefix("0086"))
                .or_else(|| digits.strip_prefix("86").filter(|r| r.len() == 11))
            {
                Some(r) => (true, r),
                None => (false, digits.as_str()),
            };
            let beijing = prefixed && rest.starts_with("10");
            if (rest.starts_with('1') && !beijing) || mobile_err.reason == Reason::Empty {
                Err(mobile_err)
            } else {
                Err(landline_err)
            }
        }
    }
}

// ---------------------------------------------------------------------------
// E-mail and web addresses
// ---------------------------------------------------------------------------

fn email_reason(e: &email_address::Error) -> Reason {
    use email_address::Error as E;
    let (en, zh) = match e {
        E::MissingSeparator => ("there is no @", "缺少 @"),
        E::LocalPartEmpty => ("nothing before the @", "@ 前面没有内容"),
        E::LocalPartTooLong => (
            "the part before the @ is longer than 64 characters",
            "@ 前面的部分超过 64 个字符",
        ),
        E::DomainEmpty => ("no domain after the @", "@ 后面缺少域名"),
        E::DomainTooLong => ("the domain is too long", "域名过长"),
        E::SubDomainEmpty | E::DomainInvalidSeparator => (
            "the domain has an empty part (two dots in a row, or a dot at an end)",
            "域名中有空的部分（连续的点或首尾的点）",
        ),
        E::SubDomainTooLong => (
            "a part of the domain is longer than 63 characters",
            "域名的某一段超过 63 个字符",
        ),
        E::DomainTooFew => (
            "the domain has no top-level part (like .com or .cn)",
            "域名缺少顶级域（如 .com 或 .cn）",
        ),
        E::UnbalancedQuotes => ("unbalanced quotes", "引号不成对"),
        E::InvalidComment => ("malformed comment", "注释格式不正确"),
        E::InvalidIPAddress => ("malformed IP address", "IP 地址格式不正确"),
        E::UnsupportedDomainLiteral => (
            "an IP address in brackets is not accepted as a domain",
            "不接受方括号中的 IP 地址作为域名",
        ),
        E::UnsupportedDisplayName | E::MissingDisplayName | E::MissingEndBracket => (
            "give the bare address, without a name or angle brackets",
            "只填写邮箱地址本身，不要包含姓名或尖括号",
        ),
        E::InvalidCharacter => ("it contains an invalid character", "包含无效字符"),
    };
    Reason::EmailSyntax { en, zh }
}

/// Validates an e-mail address with the `email_address` crate (RFC 5321/5322
/// syntax; a top-level domain is required; display names and bracketed IP
/// domains are rejected). Whitespace around it is trimmed and full-width
/// ASCII mapped to ASCII (so `张三＠example。com`-style IME slips are
/// repaired: `。` in the domain is read as a dot, as IDNA does). Returns the
/// address with the local part as typed and the domain lowercased; the
/// duplicate-detection key is [`email_key`] of it (all lowercase).
pub fn email(s: &str) -> Result<String, Invalid> {
    let t = clean(s);
    if t.is_empty() {
        return Err(Invalid::empty(Subject::Email));
    }
    let (local, domain) = match t.rsplit_once('@') {
        Some((l, d)) if d.contains(['。', '．', '｡']) => (
            l.to_owned(),
            d.replace(['。', '．', '｡'], ".").to_lowercase(),
        ),
        Some((l, d)) => (l.to_owned(), d.to_lowercase()),
        None => {
            let reason = email_reason(&email_address::Error::MissingSeparator);
            return Err(Invalid::new(Subject::Email, t, reason));
        }
    };
    let mut address = String::with_capacity(local.len() + 1 + domain.len());
    address.push_str(&local);
    address.push('@');
    address.push_str(&domain);
    let options = email_address::Options::default()
        .with_required_tld()
        .without_domain_literal()
        .without_display_text();
    if let Err(e) = email_address::EmailAddress::parse_with_options(&address, options) {
        return Err(Invalid::new(Subject::Email, t, email_reason(&e)));
    }
    // A host name's own rules, which the address syntax leaves open
    // (`a@x_y.com`, `a@-x.com`): read as the web address check reads a
    // host, an international name in its ASCII (punycode) form.
    let ascii = match url::Host::parse(&domain) {
        Ok(url::Host::Domain(d)) => d,
        _ => domain.clone(),
    };
    if let Some((en, zh)) = domain_problem(&ascii) {
        return Err(Invalid::new(
            Subject::Email,
            t,
            Reason::EmailSyntax { en, zh },
        ));
    }
    Ok(address)
}

/// What is wrong with a domain name by the rules of host names (RFC 1035,
/// RFC 1123), if anything, in English and Chinese: a part (label) empty,
/// longer than 63 characters, starting or ending with a hyphen, or holding
/// an ASCII character other than a letter, a digit or a hyphen (an
/// underscore, say). Characters beyond ASCII are left to the IDNA rules
/// (an international name is checked in its punycode form, which has none).
fn domain_problem(domain: &str) -> Option<(&'static str, &'static str)> {
    for label in domain.split('.') {
        if label.is_empty() {
            return Some((
                "the domain has an empty part (two dots in a row, or a dot at an end)",
                "域名中有空的部分（连续的点或首尾的点）",
            ));
        }
        if label.chars().count() > 63 {
            return Some((
                "a part of the domain is longer than 63 characters",
                "域名的某一段超过 63 个字符",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some((
                "a part of the domain starts or ends with a hyphen",
                "域名的某一段以短横线开头或结尾",
            ));
        }
        if label
            .chars()
            .any(|c| c.is_ascii() && !(c.is_ascii_alphanumeric() || c == '-'))
        {
            return Some((
                "the domain holds a character a host name cannot (only letters, digits, hyphens \
                 and dots; no underscore)",
                "域名中有主机名不允许的字符（只能有字母、数字、短横线和点，不能有下划线）",
            ));
        }
    }
    None
}

/// The duplicate-detection key of an address returned by [`email`]: the
/// whole address lowercased. (Mail servers may treat local parts
/// case-sensitively, but two contacts differing only in case are almost
/// always the same person.)
pub fn email_key(address: &str) -> String {
    address.to_lowercase()
}

fn url_reason(e: url::ParseError) -> Reason {
    use url::ParseError as P;
    let (en, zh) = match e {
        P::EmptyHost => ("there is no host name", "缺少主机名"),
        P::IdnaError => ("invalid international domain name", "国际化域名无效"),
        P::InvalidPort => ("invalid port number", "端口号无效"),
        P::InvalidIpv4Address => ("invalid IPv4 address", "IPv4 地址无效"),
        P::InvalidIpv6Address => ("invalid IPv6 address", "IPv6 地址无效"),
        P::InvalidDomainCharacter => (
            "the domain name contains an invalid character",
            "域名包含无效字符",
        ),
        _ => ("it cannot be parsed", "无法解析"),
    };
    Reason::UrlSyntax { en, zh }
}

/// The scheme of `s` if it starts with one (`name:` not followed by a port
/// number, so `localhost:8080` has none).
fn leading_scheme(s: &str) -> Option<&str> {
    let (head, tail) = s.split_once(':')?;
    let mut chars = head.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !first_ok || !rest_ok {
        return None;
    }
    let port_like = tail
        .split(['/', '?', '#'])
        .next()
        .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if port_like { None } else { Some(head) }
}

/// Validates a web address and returns it normalised by the `url` crate
/// (scheme and host lowercased, internationalised domains in punycode,
/// default port dropped, path at least `/`).
///
/// Without a scheme `https://` is assumed (`www.huawei.com` →
/// `https://www.huawei.com/`). Only `http` and `https` are accepted, and
/// the host must be a domain name with a dot or an IP address; a domain
/// name follows the rules of host names as an e-mail address's domain
/// does (no empty part as in `x..com`, no part starting or ending with a
/// hyphen as in `-bad-.com`, no underscore).
pub fn url(s: &str) -> Result<String, Invalid> {
    let t = clean(s);
    if t.is_empty() {
        return Err(Invalid::empty(Subject::Url));
    }
    let text = match leading_scheme(&t) {
        Some(scheme) => {
            let scheme = scheme.to_ascii_lowercase();
            if scheme != "http" && scheme != "https" {
                return Err(Invalid::new(Subject::Url, t, Reason::UrlScheme { scheme }));
            }
            t.clone()
        }
        None => format!("https://{}", t.trim_start_matches('/')),
    };
    let parsed =
        url::Url::parse(&text).map_err(|e| Invalid::new(Subject::Url, t.clone(), url_reason(e)))?;
    match parsed.host() {
        Some(url::Host::Domain(d)) if d.contains('.') && !d.ends_with('.') => {
            if let Some((en, zh)) = domain_problem(d) {
                return Err(Invalid::new(Subject::Url, t, Reason::UrlSyntax { en, zh }));
            }
        }
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => {}
        _ => return Err(Invalid::new(Subject::Url, t, Reason::UrlHost)),
    }
    Ok(parsed.to_string())
}

/// A one-line value with its line breaks and tabs as single spaces (a
/// line break typed into a spreadsheet cell with Alt+Enter), trimmed.
pub fn one_line(s: &str) -> String {
    if !s.contains(['\n', '\r', '\t']) {
        return s.to_string();
    }
    s.split(['\n', '\r', '\t'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why `s` may not be stored as text: a control character (an escape
/// sequence or a bell would act on the terminal of whoever lists it);
/// `multiline` text keeps its line breaks and tabs. `None` when there is
/// none.
pub fn control_problem(s: &str, multiline: bool) -> Option<String> {
    let (i, ch) = s
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')))?;
    Some(format!(
        "holds a control character (U+{:04X}) at position {}; text holds none (不能包含控制字符)",
        u32::from(ch),
        i + 1
    ))
}

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

/// The longest person name accepted, in characters.
pub const PERSON_NAME_MAX: usize = 64;

/// Validates a person's name: trimmed, runs of whitespace inside collapsed
/// to one space (full-width spaces included), invisible format characters
/// dropped ([`strip_invisible`]), not empty, at most [`PERSON_NAME_MAX`]
/// characters, no control characters. Any script is
/// accepted (`张三`, `欧阳娜娜`, `Zhang San`, `阿卜杜热合曼·买买提`).
pub fn person_name(s: &str) -> Result<String, Invalid> {
    let name = strip_invisible(s)
        .split(|c: char| c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if name.is_empty() {
        return Err(Invalid::empty(Subject::PersonName));
    }
    if let Some((i, ch)) = name.chars().enumerate().find(|(_, c)| c.is_control()) {
        return Err(Invalid::new(
            Subject::PersonName,
            name,
            Reason::Character {
                ch,
                position: i + 1,
            },
        ));
    }
    let n = name.chars().count();
    if n > PERSON_NAME_MAX {
        return Err(Invalid::new(
            Subject::PersonName,
            name,
            Reason::TooLong {
                actual: n,
                max: PERSON_NAME_MAX,
            },
        ));
    }
    Ok(name)
}

/// Chinese legal-form suffixes stripped from company names, longest first.
const ZH_SUFFIXES: [&str; 7] = [
    "股份有限公司",
    "有限责任公司",
    "股份公司",
    "有限公司",
    "总公司",
    "集团",
    "公司",
];

/// English legal-form words stripped from company names (compared with
/// whole words, so `Costco` keeps its `co`).
const EN_SUFFIXES: [&str; 15] = [
    "co",
    "company",
    "ltd",
    "limited",
    "inc",
    "incorporated",
    "corp",
    "corporation",
    "llc",
    "llp",
    "plc",
    "gmbh",
    "pte",
    "pty",
    "group",
];

/// A token of a company name: an ASCII word (its byte range in the buffer
/// of words) or one other character.
#[derive(Clone, Copy, PartialEq)]
enum NameToken {
    Word(usize, usize),
    Char(char),
}

/// Splits a name into tokens, writing the words, lowercased, into `words`.
/// Traditional Chinese characters are read as simplified ([`simplified`]),
/// letters lowercased and folded as search folds them (accents dropped,
/// `ß` → `ss`, `æ` → `ae`, `œ` → `oe`: `Müller` is the word `muller`).
fn name_tokens(name: &str, words: &mut String, out: &mut Vec<NameToken>) {
    let mut start: Option<usize> = None;
    let mut folded = String::new();
    // `letter`: known to be alphanumeric (a CJK ideograph).
    let mut token = |c: char, letter: bool| {
        if !letter && c.is_ascii_alphanumeric() {
            start.get_or_insert(words.len());
            words.push(c);
            return;
        }
        if let Some(s) = start.take() {
            out.push(NameToken::Word(s, words.len()));
        }
        if letter || c.is_alphanumeric() {
            out.push(NameToken::Char(c));
        }
    };
    for c in name.chars().map(halfwidth).map(simplified) {
        if is_cjk_ideograph(c) {
            // Alphanumeric and its own lowercase: skip the table look-ups.
            token(c, true);
        } else {
            for l in c.to_lowercase() {
                folded.clear();
                crate::pinyin::push_folded(&mut folded, l);
                folded.chars().for_each(|c| token(c, false));
            }
        }
    }
    if let Some(s) = start {
        out.push(NameToken::Word(s, words.len()));
    }
}

/// Whether `c` is a CJK ideograph of a block a traditional character may
/// be written in: the unified ideographs (U+4E00–U+9FFF), extension A
/// (U+3400–U+4DBF), the supplementary planes' extensions (U+20000–U+3FFFF)
/// and the compatibility ideographs (U+F900–U+FAFF, U+2F800–U+2FA1F).
fn is_han(c: char) -> bool {
    is_cjk_ideograph(c)
        || ('\u{3400}'..='\u{4DBF}').contains(&c)
        || ('\u{F900}'..='\u{FAFF}').contains(&c)
        || ('\u{20000}'..='\u{3FFFF}').contains(&c)
}

/// A traditional Chinese character as its simplified form (`華` → `华`,
/// `臺` → `台`, `後` → `后`), character by character as OpenCC's table of
/// characters maps them (the one `zhconv` ships; its phrases are not used:
/// a name key needs the same character for the same character whatever
/// stands beside it); a simplified character, or any other, as it is. A
/// character the table maps to one it maps again (`薴` → `苧` → `苎`) is
/// followed to the end, so the result is its own simplified form.
pub(crate) fn simplified(c: char) -> char {
    if !is_han(c) {
        return c;
    }
    simplified_table().get(&c).copied().unwrap_or(c)
}

/// The traditional characters [`simplified`] maps, each to the end of its
/// chain; made once, on first use.
fn simplified_table() -> &'static std::collections::HashMap<char, char> {
    static TABLE: std::sync::OnceLock<std::collections::HashMap<char, char>> =
        std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut map = std::collections::HashMap::new();
        for table in zhconv::get_builtin_tables(zhconv::Variant::ZhHans) {
            for (from, to) in zhconv::tables::expand_table(*table) {
                let (mut f, mut t) = (from.chars(), to.chars());
                if let (Some(a), None, Some(b), None) = (f.next(), f.next(), t.next(), t.next())
                    && a != b
                {
                    map.insert(a, b);
                }
            }
        }
        // The table's chains are one step long: a few steps are plenty.
        let ends: Vec<(char, char)> = map
            .iter()
            .map(|(&a, &b)| {
                let mut end = b;
                for _ in 0..4 {
                    match map.get(&end) {
                        Some(&next) if next != end => end = next,
                        _ => break,
                    }
                }
                (a, end)
            })
            .collect();
        map.extend(ends);
        map
    })
}

/// Pushes one character as [`search_key`] folds it: full-width ASCII as
/// ASCII, a traditional Chinese character as its simplified form
/// ([`simplified`]), letters lowercased with their accents dropped and
/// ligatures written out as search keys fold them
/// ([`crate::pinyin::push_folded`]: `Ü` → `u`, `ß` → `ss`, combining marks
/// left out).
fn push_search_folded(out: &mut String, c: char) {
    let c = simplified(halfwidth(c));
    if is_cjk_ideograph(c) {
        out.push(c);
        return;
    }
    for l in c.to_lowercase() {
        crate::pinyin::push_folded(out, l);
    }
}

/// The key a text is searched by, so that a search or a `~` / `^` filter
/// finds a name however it is spelled: every character folded as
/// `push_search_folded` folds it (full width, traditional Chinese, letter
/// case and accents aside: `ＩＢＭ中国`, `華為技術`, `MÜLLER` and `Société`
/// have the keys `ibm中国`, `华为技术`, `muller` and `societe`), then every
/// run of whitespace one space, trimmed — the folding of the name
/// duplicate key ([`company_name_key`]) without its dropping of
/// punctuation and legal forms. Public for the stores, which compare by it
/// ([`Filter::TextKeyLike`](crate::store::Filter::TextKeyLike)).
pub fn search_key(s: &str) -> String {
    let mut folded = String::with_capacity(s.len());
    for c in s.chars() {
        push_search_folded(&mut folded, c);
    }
    let mut out = String::with_capacity(folded.len());
    for word in folded.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// How a store without [`search_key`] as a function folds a text so that
/// it holds a search key `key` exactly where [`search_key`] of it does
/// (see [`search_translation`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchTranslation {
    /// Characters each folding to a single character of the key, followed by
    /// every character the folding drops (combining marks).
    pub from: String,
    /// What the characters of `from` fold to, one each: shorter than `from`
    /// by the dropped characters, which SQL's `translate` then deletes.
    pub to: String,
    /// Characters folding to several characters that occur in the key
    /// (`ß` → `ss` for a key with an `s`), replaced before translating.
    pub replace: Vec<(char, &'static str)>,
}

/// The characters whose [`push_search_folded`] folding differs from
/// themselves, by what they fold to: one character, several, or none.
struct FoldInverse {
    single: std::collections::HashMap<char, Vec<char>>,
    multi: Vec<(char, &'static str)>,
    dropped: Vec<char>,
}

fn fold_inverse() -> &'static FoldInverse {
    static INVERSE: std::sync::OnceLock<FoldInverse> = std::sync::OnceLock::new();
    INVERSE.get_or_init(|| {
        let mut inv = FoldInverse {
            single: std::collections::HashMap::new(),
            multi: Vec::new(),
            dropped: Vec::new(),
        };
        let mut add = |c: char| {
            let mut f = String::new();
            push_search_folded(&mut f, c);
            let mut chars = f.chars();
            match (chars.next(), chars.next()) {
                (None, _) => inv.dropped.push(c),
                (Some(x), None) if x == c => {}
                (Some(x), None) => inv.single.entry(x).or_default().push(c),
                _ => inv.multi.push((c, Box::leak(f.into_boxed_str()))),
            }
        };
        // Every character outside the Chinese blocks that can fold (case,
        // width and accents are all below U+20000), then the traditional
        // characters of the table (Chinese characters fold by it alone).
        (0..0x20000u32)
            .filter_map(char::from_u32)
            .filter(|c| !is_han(*c))
            .for_each(&mut add);
        let mut han: Vec<char> = simplified_table().keys().copied().collect();
        han.sort_unstable();
        han.into_iter().for_each(add);
        for cs in inv.single.values_mut() {
            cs.sort_unstable();
        }
        inv
    })
}

/// What a store folds a column's text with, in plain string functions
/// (`replace`, then `translate`), so that it holds the search key `key`
/// (itself a [`search_key`]) exactly where [`search_key`] of the text
/// does: every character whose folding holds a character of the key is
/// folded, and every character the folding drops is dropped; any other
/// character is left as it is, which changes no match, since neither it
/// nor its folding is in the key. Whitespace runs are the store's to
/// collapse. Bounded by the key: a few characters per character of it.
pub fn search_translation(key: &str) -> SearchTranslation {
    let inv = fold_inverse();
    let mut out = SearchTranslation::default();
    let mut seen = std::collections::BTreeSet::new();
    for x in key.chars() {
        if !seen.insert(x) {
            continue;
        }
        for &c in inv.single.get(&x).map(Vec::as_slice).unwrap_or_default() {
            out.from.push(c);
            out.to.push(x);
        }
    }
    out.from.extend(inv.dropped.iter());
    out.replace = inv
        .multi
        .iter()
        .filter(|(_, f)| f.chars().any(|c| seen.contains(&c)))
        .copied()
        .collect();
    out
}

/// The most parameters a store binds for a [`search_translation`]: its
/// `from` and `to`, and two per replaced character (there are six that fold
/// to several: `ß`, `ẞ`, `æ`, `Æ`, `œ`, `Œ`).
pub const SEARCH_TRANSLATION_PARAMS: usize = 2 + 2 * 6;

/// A whole number as a filter reads one: full-width digits and the minus
/// sign (U+2212) as ASCII, commas separating thousands in groups of three
/// (`1,000`, `-12,345`), as number fields take them; an error naming the
/// text otherwise.
pub fn whole_number(text: &str) -> Result<i64, String> {
    let t: String = text
        .trim()
        .chars()
        .map(|c| match c {
            '−' => '-',
            c => halfwidth(c),
        })
        .collect();
    let not_whole = || format!("'{}' is not a whole number", text.trim());
    let unsigned = t.strip_prefix(['-', '+']).unwrap_or(&t);
    if unsigned.contains(',') {
        let groups: Vec<&str> = unsigned.split(',').collect();
        let grouped = groups
            .first()
            .is_some_and(|g| (1..=3).contains(&g.len()) && !g.starts_with('0'))
            && groups[1..].iter().all(|g| g.len() == 3)
            && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()));
        if !grouped {
            return Err(format!(
                "'{}' is not a whole number: commas may only separate thousands, in groups of \
                 three (e.g. 1,000)",
                text.trim()
            ));
        }
    }
    t.replace(',', "").parse().map_err(|_| not_whole())
}

/// Whether `c` is in the CJK Unified Ideographs block (U+4E00–U+9FFF):
/// letters (`is_alphanumeric`) that are their own lowercase.
fn is_cjk_ideograph(c: char) -> bool {
    ('\u{4E00}'..='\u{9FFF}').contains(&c)
}

/// One stripping pass: tokenise, drop legal-form suffixes from the end while
/// something remains, concatenate. `words` and `tokens` are scratch space.
fn company_key_pass(name: &str, words: &mut String, tokens: &mut Vec<NameToken>) -> String {
    words.clear();
    tokens.clear();
    name_tokens(name, words, tokens);
    loop {
        // A branch (分公司) is a customer of its own: stop.
        if ends_with_chars(tokens, "分公司") {
            break;
        }
        let zh = ZH_SUFFIXES
            .iter()
            .find(|s| ends_with_chars(tokens, s))
            .map(|s| s.chars().count());
        let cut = match (zh, tokens.last()) {
            (Some(n), _) => n,
            (None, Some(NameToken::Word(a, b))) if EN_SUFFIXES.contains(&&words[*a..*b]) => 1,
            _ => 0,
        };
        if cut == 0 || cut >= tokens.len() {
            break;
        }
        tokens.truncate(tokens.len() - cut);
    }
    let mut key = String::with_capacity(name.len());
    for t in tokens.iter() {
        match *t {
            NameToken::Word(a, b) => key.push_str(&words[a..b]),
            NameToken::Char(c) => key.push(c),
        }
    }
    key
}

/// Whether the tokens end with the characters of `suffix`.
fn ends_with_chars(tokens: &[NameToken], suffix: &str) -> bool {
    let mut last = tokens.iter().rev();
    suffix
        .chars()
        .rev()
        .all(|c| last.next() == Some(&NameToken::Char(c)))
}

/// The duplicate-detection key of a company name.
///
/// Steps: full-width ASCII is mapped to ASCII (`（中国）` → `(中国)`),
/// traditional Chinese characters to simplified ones, character by
/// character as OpenCC's table maps them (`華為技術有限公司` → `华为技术`),
/// everything lowercased and Latin letters folded as search folds them —
/// accents dropped, `ß` → `ss`, `æ` → `ae`, `œ` → `oe` (`Müller GmbH` and
/// `Muller GmbH` → `muller`, `Société Générale` → `societegenerale`); the
/// name is split into ASCII words and single other characters, dropping
/// whitespace, punctuation and symbols (parentheses included, so
/// `阿里巴巴（中国）有限公司` → `阿里巴巴中国` and `阿里巴巴中国有限公司`
/// gives the same key); legal-form suffixes are
/// stripped from the end repeatedly — 股份有限公司, 有限责任公司, 股份公司,
/// 有限公司, 总公司, 集团, 公司, and the whole English words co, company,
/// ltd, limited, inc, incorporated, corp, corporation, llc, llp, plc, gmbh,
/// pte, pty, group — but never down to nothing (`集团公司` → `集团`); the
/// rest is concatenated. The pass is repeated until the key no longer
/// changes, so `company_name_key` is idempotent.
///
/// Kept on purpose: a branch suffix 分公司 (a branch has its own licence
/// and usually its own contacts: `华为技术有限公司北京分公司` stays distinct
/// from `华为技术有限公司`), and place names at the front (`北京华为` and
/// `华为` are different companies).
///
/// Examples: `华为技术有限公司` → `华为技术`;
/// `  Huawei Technologies Co., Ltd. ` → `huaweitechnologies`.
pub fn company_name_key(name: &str) -> String {
    let mut words = String::new();
    let mut tokens = Vec::new();
    let mut key = company_key_pass(name, &mut words, &mut tokens);
    loop {
        let next = company_key_pass(&key, &mut words, &mut tokens);
        if next == key {
            return key;
        }
        key = next;
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    // --- Search keys, whole numbers, host names, authorities, regions ----

    #[test]
    fn search_key_folds_width_case_accents_and_script() {
        assert_eq!(search_key("ＩＢＭ中国"), "ibm中国");
        assert_eq!(search_key("華為技術"), "华为技术");
        assert_eq!(search_key("阿里巴巴（中国）"), "阿里巴巴(中国)");
        assert_eq!(search_key("  MÜLLER\u{3000}GmbH "), "muller gmbh");
        assert_eq!(search_key("Mu\u{0308}ller"), "muller");
        assert_eq!(search_key("Société Straße"), "societe strasse");
        assert_eq!(search_key("ＫＨ－２０２６"), "kh-2026");
    }

    #[test]
    fn search_key_folding_is_idempotent_and_its_translation_bounded() {
        let inv = fold_inverse();
        for (&x, cs) in &inv.single {
            assert_eq!(
                search_key(&x.to_string()),
                x.to_string().trim(),
                "{x:?} {cs:?}"
            );
        }
        assert!(inv.multi.len() <= 6, "{:?}", inv.multi);
        for (c, f) in &inv.multi {
            assert_eq!(search_key(f), *f, "{c}");
        }
        let t = search_translation("strasse œuvre");
        assert!(2 + 2 * t.replace.len() <= SEARCH_TRANSLATION_PARAMS);
        assert!(t.from.contains('Ü') || t.from.contains('ß') || t.from.contains('Ｓ'));
    }

    /// The translation a store without the Rust function folds with, done
    /// in Rust as SQL does it: it finds a key exactly where `search_key`
    /// does.
    fn translated(text: &str, key: &str) -> String {
        let t = search_translation(key);
        let mut s = text.to_string();
        for (c, with) in &t.replace {
            s = s.replace(*c, with);
        }
        let to: Vec<char> = t.to.chars().collect();
        let from: Vec<char> = t.from.chars().collect();
        let mapped: String = s
            .chars()
            .filter_map(|c| match from.iter().position(|f| *f == c) {
                Some(i) => to.get(i).copied(),
                None => Some(c),
            })
            .collect();
        mapped.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    proptest! {
        #[test]
        fn translation_finds_what_the_search_key_finds(
            text in "[a-zA-ZÀ-ÿĀ-žßẞ華為华为\u{0300}\u{0308}ＡＢａｂ \t　]{0,12}",
            needle in "[a-zA-ZÀ-ÿßẞ華为ａＢ ]{1,4}",
        ) {
            let key = search_key(&needle);
            let folded = search_key(&text);
            let other = translated(&text, &key);
            prop_assert_eq!(folded.contains(&key), other.contains(&key));
            prop_assert_eq!(folded.starts_with(&key), other.starts_with(&key));
        }
    }

    #[test]
    fn whole_numbers_take_thousands_separators() {
        assert_eq!(whole_number("1,000"), Ok(1000));
        assert_eq!(whole_number(" −12,345 "), Ok(-12345));
        assert_eq!(whole_number("１，０００"), Ok(1000));
        assert_eq!(whole_number("42"), Ok(42));
        for bad in ["1,00", "1,0000", ",100", "01,000", "1.5", "abc", ""] {
            assert!(whole_number(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_names_follow_the_rules_of_host_names() {
        for bad in [
            "http://x..com",
            "https://-bad-.com",
            "https://bad-.example.com",
            "https://x_y.com",
            "www.a..b.cn",
        ] {
            let e = url(bad).expect_err(bad);
            assert!(matches!(e.reason, Reason::UrlSyntax { .. }), "{bad}: {e}");
        }
        for good in [
            "https://www.huawei.com",
            "http://a-b.example.cn/x_y",
            "https://例子.中国",
            "xn--fsqu00a.xn--fiqs8s",
        ] {
            assert!(url(good).is_ok(), "{good}");
        }
        for bad in ["a@x_y.com", "a@-x.com", "a@x-.com"] {
            let e = email(bad).expect_err(bad);
            assert!(matches!(e.reason, Reason::EmailSyntax { .. }), "{bad}: {e}");
        }
        assert!(email("a_b@x-y.com").is_ok());
        assert!(email("张三@例子.中国").is_ok());
        let e = email("a@x_y.com").expect_err("underscore");
        assert!(e.to_string().contains("underscore"), "{e}");
        assert!(e.message_zh().contains("下划线"), "{}", e.message_zh());
    }

    /// A credit code with the given first two characters and positions
    /// 3–17, completed with its check character.
    fn uscc_with(head: &str) -> String {
        let first17 = format!("{head}110108MA01ABCD1");
        let check = uscc_check_char(&first17).unwrap();
        format!("{first17}{check}")
    }

    #[test]
    fn uscc_registration_authority_and_type_are_checked() {
        for bad in ["00110108MA01ABCD1T", "H1110108MA01ABCD16"] {
            let code = format!("{}{}", &bad[..17], uscc_check_char(&bad[..17]).unwrap());
            let e = uscc(&code).expect_err(&code);
            assert!(matches!(e.reason, Reason::Authority { .. }), "{e}");
            assert!(e.to_string().contains("GB 32100"), "{e}");
            assert!(
                e.message_zh().contains("登记管理部门"),
                "{}",
                e.message_zh()
            );
        }
        for head in ["00", "H1", "01", "P1"] {
            assert!(uscc(&uscc_with(head)).is_err(), "{head}");
        }
        for head in ["94", "90", "Y2", "12"] {
            let e = uscc(&uscc_with(if head == "12" { "14" } else { head })).expect_err(head);
            assert!(matches!(e.reason, Reason::OrganisationType { .. }), "{e}");
        }
        for head in [
            "91", "92", "93", "11", "12", "13", "19", "31", "35", "51", "52", "53", "N2", "Y1",
            "A1", "B5", "G9",
        ] {
            assert!(uscc(&uscc_with(head)).is_ok(), "{head}");
        }
        for real in REAL_USCC {
            assert!(uscc(real).is_ok(), "{real}");
        }
    }

    #[test]
    fn resident_id_region_starts_with_a_province() {
        let with = |head: &str| {
            let first17 = format!("{head}0119491231002");
            let first17 = &first17[..17];
            format!("{first17}{}", resident_id_check_char(first17).unwrap())
        };
        let e = resident_id("000105194912310024").expect_err("region 00");
        assert!(matches!(e.reason, Reason::Region { .. }), "{e}");
        assert!(e.to_string().contains("GB 11643"), "{e}");
        for bad in [
            "0001", "1601", "3901", "4701", "5501", "6601", "7201", "8401", "9001", "9701",
        ] {
            assert!(resident_id(&with(bad)).is_err(), "{bad}");
        }
        for good in [
            "1101", "1501", "2301", "3701", "4601", "5401", "6501", "7101", "8101", "8301", "9111",
            "9442",
        ] {
            assert!(
                resident_id(&with(good)).is_ok(),
                "{good}: {:?}",
                resident_id(&with(good))
            );
        }
        // A 15-digit number too.
        assert!(resident_id("000105491231002").is_err());
    }

    // --- USCC -----------------------------------------------------------

    /// Published codes that pass the GB 32100 check.
    const REAL_USCC: [&str; 7] = [
        "91350100M000100Y43",
        "91110000802100433B",
        "914403001922038216", // 华为技术有限公司
        "91440300708461136T", // 深圳市腾讯计算机系统有限公司
        "91330100799655058B", // 阿里巴巴（中国）有限公司
        "91110108551385082Q", // 小米科技有限责任公司
        "91110000710926094P", // 中国石油化工股份有限公司
    ];

    #[test]
    fn uscc_accepts_real_codes() {
        for c in REAL_USCC {
            assert_eq!(uscc(c).unwrap(), c);
        }
    }

    #[test]
    fn uscc_normalises() {
        assert_eq!(uscc(" 91350100m000100y43 ").unwrap(), "91350100M000100Y43");
        assert_eq!(
            uscc("9135 0100 M000 100Y 43").unwrap(),
            "91350100M000100Y43"
        );
        assert_eq!(
            uscc("９１３５０１００Ｍ０００１００Ｙ４３").unwrap(),
            "91350100M000100Y43"
        );
    }

    #[test]
    fn uscc_check_character() {
        let e = uscc("91350100M000100Y40").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unified social credit code 91350100M000100Y40 has check character 0, expected 3"
        );
        assert_eq!(
            e.message_zh(),
            "统一社会信用代码 91350100M000100Y40 的校验码为 0，应为 3"
        );
        assert_eq!(String::from(e.clone()), e.to_string());
        // Transposed digits.
        assert!(matches!(
            uscc("91350100M000010Y43").unwrap_err().reason,
            Reason::CheckCharacter { .. }
        ));
    }

    #[test]
    fn uscc_check_char_function() {
        assert_eq!(uscc_check_char("91350100M000100Y4"), Some('3'));
        assert_eq!(uscc_check_char("91350100M000100Y"), None);
        assert_eq!(uscc_check_char("91350100M000100I4"), None);
    }

    #[test]
    fn uscc_rejections() {
        assert_eq!(uscc("  ").unwrap_err().reason, Reason::Empty);
        assert_eq!(
            uscc("  ").unwrap_err().to_string(),
            "unified social credit code is empty"
        );
        assert_eq!(
            uscc("91350100M000100Y4").unwrap_err().reason,
            Reason::Length {
                actual: 17,
                expected: &[18]
            }
        );
        let e = uscc("91350100I000100Y43").unwrap_err();
        assert_eq!(
            e.reason,
            Reason::Character {
                ch: 'I',
                position: 9
            }
        );
        assert!(
            e.to_string()
                .contains("invalid character 'I' at position 9")
        );
        for bad in ['O', 'Z', 'S', 'V'] {
            let code = format!("9135010{bad}M000100Y43");
            assert!(matches!(
                uscc(&code).unwrap_err().reason,
                Reason::Character { .. }
            ));
        }
        let e = uscc("9135A100M000100Y43").unwrap_err();
        assert_eq!(
            e.reason,
            Reason::Division {
                code: "35A100".into()
            }
        );
        assert!(e.message_zh().contains("行政区划码 35A100"));
    }

    fn uscc_char() -> impl Strategy<Value = char> {
        proptest::sample::select(USCC_CHARSET.chars().collect::<Vec<_>>())
    }

    /// A registration authority and an organisation type it assigns (any
    /// type under the authorities whose types are not listed).
    fn uscc_head() -> impl Strategy<Value = (char, char)> {
        let pairs: Vec<(char, char)> = USCC_AUTHORITIES
            .chars()
            .flat_map(|a| {
                USCC_CHARSET
                    .chars()
                    .filter(move |t| uscc_organisation_types(a).is_none_or(|ts| ts.contains(*t)))
                    .map(move |t| (a, t))
            })
            .collect();
        proptest::sample::select(pairs)
    }

    fn arb_uscc() -> impl Strategy<Value = String> {
        (
            uscc_head(),
            "[0-9]{6}",
            proptest::collection::vec(uscc_char(), 9),
        )
            .prop_map(|((a, b), div, rest)| {
                let body: String = format!("{a}{b}{div}{}", rest.iter().collect::<String>());
                let c = uscc_check_char(&body).unwrap();
                format!("{body}{c}")
            })
    }

    proptest! {
        #[test]
        fn uscc_computed_check_validates(code in arb_uscc()) {
            prop_assert_eq!(uscc(&code).unwrap(), code);
        }

        #[test]
        fn uscc_single_change_fails(code in arb_uscc(), pos in 0usize..18, c in uscc_char()) {
            let mut chars: Vec<char> = code.chars().collect();
            prop_assume!(chars[pos] != c);
            chars[pos] = c;
            let changed: String = chars.into_iter().collect();
            prop_assert!(uscc(&changed).is_err());
        }
    }

    // --- Resident ID ----------------------------------------------------

    #[test]
    fn resident_id_standard_example() {
        // The example of GB 11643-1999.
        let id = resident_id("11010519491231002x").unwrap();
        assert_eq!(id.number, "11010519491231002X");
        assert_eq!(id.birth_date, d(1949, 12, 31));
        assert_eq!(id.gender, Gender::Female);
        assert!(!id.upgraded_from_15);
    }

    fn make_id(body17: &str) -> String {
        format!("{body17}{}", resident_id_check_char(body17).unwrap())
    }

    #[test]
    fn resident_id_gender_and_leap_years() {
        let id = resident_id(&make_id("11010120000229001")).unwrap();
        assert_eq!(id.birth_date, d(2000, 2, 29));
        assert_eq!(id.gender, Gender::Male);
        let id = resident_id(&make_id("44030419960229012")).unwrap();
        assert_eq!(id.gender, Gender::Female);
        // 1900 and 2100 are not leap years; 2000 and 1996 are.
        let e = resident_id(&make_id("11010119000229001")).unwrap_err();
        assert_eq!(
            e.reason,
            Reason::BirthDate {
                digits: "19000229".into(),
                problem: BirthDateProblem::NotADate
            }
        );
        assert!(resident_id(&make_id("11010121000229001")).is_err());
        assert!(resident_id(&make_id("11010119990230001")).is_err());
        assert!(resident_id(&make_id("11010119991301001")).is_err());
        assert!(resident_id(&make_id("11010119990100001")).is_err());
        assert!(resident_id(&make_id("11010119000101001")).is_ok());
    }

    #[test]
    fn resident_id_before_1900() {
        // GB 11643's other example, born 1880.
        let e = resident_id("440524188001010014").unwrap_err();
        assert_eq!(
            e.reason,
            Reason::BirthDate {
                digits: "18800101".into(),
                problem: BirthDateProblem::Before1900
            }
        );
        assert!(e.to_string().contains("before 1900-01-01"));
        assert!(e.message_zh().contains("早于 1900 年"));
    }

    #[test]
    fn resident_id_rejections() {
        assert_eq!(resident_id("").unwrap_err().reason, Reason::Empty);
        assert_eq!(
            resident_id("1101051949123100").unwrap_err().reason,
            Reason::Length {
                actual: 16,
                expected: &[18, 15]
            }
        );
        assert_eq!(
            resident_id("1101051949123100X2").unwrap_err().reason,
            Reason::Character {
                ch: 'X',
                position: 17
            }
        );
        assert_eq!(
            resident_id("11010519491231002A").unwrap_err().reason,
            Reason::Character {
                ch: 'A',
                position: 18
            }
        );
        let e = resident_id("110105194912310021").unwrap_err();
        assert_eq!(
            e.to_string(),
            "resident ID number 110105194912310021 has check character 1, expected X"
        );
        assert_eq!(
            e.message_zh(),
            "居民身份证号码 110105194912310021 的校验码为 1，应为 X"
        );
    }

    #[test]
    fn resident_id_legacy_15() {
        let id = resident_id("110105491231002").unwrap();
        assert_eq!(id.number, "11010519491231002X");
        assert!(id.upgraded_from_15);
        assert_eq!(id.gender, Gender::Female);
        assert!(resident_id("110105490231002").is_err()); // 1949-02-31
    }

    #[test]
    fn resident_id_clock_helpers() {
        let id = resident_id(&make_id("11010120000229001")).unwrap();
        assert!(id.born_after(d(2000, 2, 28)));
        assert!(!id.born_after(d(2000, 2, 29)));
        let e = id.check_born_by(d(1999, 1, 1)).unwrap_err();
        assert!(e.to_string().contains("20000229, which is in the future"));
        assert!(e.message_zh().contains("晚于今天"));
        assert!(id.check_born_by(d(2024, 1, 1)).is_ok());
        assert_eq!(id.age_on(d(2001, 2, 28)), Some(0));
        assert_eq!(id.age_on(d(2001, 3, 1)), Some(1));
        assert_eq!(id.age_on(d(2024, 2, 29)), Some(24));
        assert_eq!(id.age_on(d(1999, 2, 28)), None);
    }

    fn arb_id() -> impl Strategy<Value = String> {
        (
            proptest::sample::select(MAINLAND_PROVINCES.to_vec()),
            "[0-9]{4}",
            0i64..73_000,
            "[0-9]{3}",
        )
            .prop_map(|(province, area, days, seq)| {
                let date = d(1900, 1, 1) + chrono::Duration::days(days);
                make_id(&format!("{province}{area}{}{seq}", date.format("%Y%m%d")))
            })
    }

    proptest! {
        #[test]
        fn resident_id_computed_check_validates(id in arb_id()) {
            prop_assert_eq!(resident_id(&id).unwrap().number, id);
        }

        #[test]
        fn resident_id_single_change_fails(id in arb_id(), pos in 0usize..18, digit in 0u8..11) {
            let new = if digit == 10 { 'X' } else { char::from(b'0' + digit) };
            let mut chars: Vec<char> = id.chars().collect();
            prop_assume!(chars[pos] != new);
            chars[pos] = new;
            let changed: String = chars.into_iter().collect();
            prop_assert!(resident_id(&changed).is_err());
        }
    }

    // --- Phones ---------------------------------------------------------

    #[test]
    fn mobile_forms() {
        for s in [
            "13812345678",
            "138 1234 5678",
            "138-1234-5678",
            "(138)12345678",
            "+86 138 1234 5678",
            "+86-13812345678",
            "008613812345678",
            "8613812345678",
            "１３８１２３４５６７８",
            " 138.1234.5678 ",
        ] {
            assert_eq!(mobile(s).unwrap(), "13812345678", "{s}");
        }
        assert_eq!(mobile("19912345678").unwrap(), "19912345678");
    }

    #[test]
    fn mobile_rejections() {
        assert_eq!(mobile(" ").unwrap_err().reason, Reason::Empty);
        let e = mobile("1381234567").unwrap_err();
        assert_eq!(
            e.to_string(),
            "mobile number 1381234567 has 10 digits, expected 11"
        );
        assert_eq!(
            e.message_zh(),
            "手机号码 1381234567 有 10 位数字，应为 11 位"
        );
        assert_eq!(
            mobile("12812345678").unwrap_err().reason,
            Reason::MobilePrefix
        );
        assert_eq!(
            mobile("23812345678").unwrap_err().reason,
            Reason::MobilePrefix
        );
        assert_eq!(
            mobile("138a2345678").unwrap_err().reason,
            Reason::Character {
                ch: 'a',
                position: 4
            }
        );
        assert_eq!(
            mobile("+0 415 555 2671").unwrap_err().reason,
            Reason::CountryCode { code: "0".into() }
        );
        assert_eq!(
            mobile("+852 9123").unwrap_err().reason,
            Reason::InternationalDigits { actual: 7 }
        );
        // No extension on a mobile, foreign or not.
        assert_eq!(
            mobile("+1 415 555 2671 x2").unwrap_err().reason,
            Reason::Character {
                ch: 'x',
                position: 17
            }
        );
    }

    proptest! {
        #[test]
        fn mobile_idempotent(s in "(\\+86|0086|86)?[ -]?1[3-9][0-9][ -]?[0-9]{4}[ -]?[0-9]{4}") {
            let m = mobile(&s).unwrap();
            prop_assert_eq!(mobile(&m).unwrap(), m);
        }

        #[test]
        fn mobile_canonical_is_fixed_point(s in "\\PC{0,20}") {
            if let Ok(m) = mobile(&s) {
                prop_assert_eq!(mobile(&m).unwrap(), m.clone());
                match m.strip_prefix('+') {
                    Some(d) => prop_assert!(
                        INTERNATIONAL_DIGITS.contains(&d.len())
                            && d.bytes().all(|b| b.is_ascii_digit())
                            && !d.starts_with('0')
                            && !d.starts_with("86"),
                        "{}", m
                    ),
                    None => prop_assert_eq!(m.len(), 11),
                }
            }
        }
    }

    #[test]
    fn landline_forms() {
        let cases = [
            ("010-62345678", "010-62345678"),
            ("(010) 6234 5678", "010-62345678"),
            ("01062345678", "010-62345678"),
            ("021 6123 4567", "021-61234567"),
            ("0755-8765-4321", "0755-87654321"),
            ("0755 8765432", "0755-8765432"),
            ("+86 10 6552 9988", "010-65529988"),
            ("+86 (0)755 8765 4321", "0755-87654321"),
            ("0086-21-61234567", "021-61234567"),
            ("86-755-87654321", "0755-87654321"),
            ("010-62345678-123", "010-62345678-123"),
            ("010-62345678转123", "010-62345678-123"),
            ("010 62345678 分机 8", "010-62345678-8"),
            ("0755-87654321 ext. 4567", "0755-87654321-4567"),
            ("0755-87654321 EXT 4567", "0755-87654321-4567"),
            ("0755-87654321x12", "0755-87654321-12"),
            ("０１０－６２３４５６７８", "010-62345678"),
            ("400-810-8888", "400-810-8888"),
            ("4008108888", "400-810-8888"),
            ("800 820 8820", "800-820-8820"),
            ("400-810-8888 转 2", "400-810-8888-2"),
            ("400-810-8888-2", "400-810-8888-2"),
        ];
        for (input, want) in cases {
            assert_eq!(landline(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn landline_rejections() {
        assert_eq!(landline("").unwrap_err().reason, Reason::Empty);
        let e = landline("62345678").unwrap_err();
        assert_eq!(e.reason, Reason::MissingAreaCode);
        assert!(e.to_string().contains("has no area code"));
        assert_eq!(
            landline("011-62345678").unwrap_err().reason,
            Reason::AreaCode { code: "011".into() }
        );
        let e = landline("010-623456").unwrap_err();
        assert_eq!(
            e.reason,
            Reason::LocalNumber {
                number: "623456".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "landline number 010-623456 has local number 623456, expected 7 or 8 digits not starting with 0 or 1"
        );
        assert_eq!(
            landline("010-02345678").unwrap_err().reason,
            Reason::LocalNumber {
                number: "02345678".into()
            }
        );
        assert_eq!(
            landline("010-62345678 转 abc").unwrap_err().reason,
            Reason::Extension {
                extension: "abc".into()
            }
        );
        assert_eq!(
            landline("010-62345678 转 1234567").unwrap_err().reason,
            Reason::Extension {
                extension: "1234567".into()
            }
        );
        assert_eq!(
            landline("010-6234/5678").unwrap_err().reason,
            Reason::Character {
                ch: '/',
                position: 9
            }
        );
        // International numbers are accepted (see `international_numbers`),
        // but not impossible ones.
        assert_eq!(
            landline("+0 2123 4567").unwrap_err().reason,
            Reason::CountryCode { code: "0".into() }
        );
        assert_eq!(
            landline("000852 2123 4567").unwrap_err().reason,
            Reason::CountryCode { code: "085".into() }
        );
        assert_eq!(
            landline("+852 2123").unwrap_err().reason,
            Reason::InternationalDigits { actual: 7 }
        );
        assert_eq!(
            landline("+852 2123 4567 8901 2345").unwrap_err().reason,
            Reason::InternationalDigits { actual: 19 }
        );
        assert_eq!(
            landline("+852 2123 abcd").unwrap_err().reason,
            Reason::Character {
                ch: 'a',
                position: 11
            }
        );
        assert_eq!(
            landline("+852 2123 4567 转 abc").unwrap_err().reason,
            Reason::Extension {
                extension: "abc".into()
            }
        );
        assert_eq!(
            landline("400-810-888").unwrap_err().reason,
            Reason::Digits {
                actual: 9,
                expected: &[10]
            }
        );
    }

    #[test]
    fn phone_kinds_and_keys() {
        let p = phone("+86 138-1234-5678").unwrap();
        assert_eq!(p.kind, PhoneKind::Mobile);
        assert_eq!(p.canonical, "13812345678");
        assert_eq!(p.key, "13812345678");
        let p = phone("(0755) 8765 4321 转 88").unwrap();
        assert_eq!(p.kind, PhoneKind::Landline);
        assert_eq!(p.canonical, "0755-87654321-88");
        assert_eq!(p.key, "075587654321");
        assert_eq!(phone("0755-87654321").unwrap().key, p.key);
        let p = phone("400 810 8888").unwrap();
        assert_eq!(p.kind, PhoneKind::Service);
        assert_eq!(p.key, "4008108888");
    }

    #[test]
    fn a_mainland_mobile_after_a_stray_prefix_is_refused() {
        for input in ["+138 0013 8000", "00 138 0013 8000", "+86 138 0013 8000 "] {
            if input.starts_with("+86") {
                // With its country code it is the mainland mobile.
                assert_eq!(mobile(input).unwrap(), "13800138000");
                continue;
            }
            let e = phone(input).unwrap_err();
            assert_eq!(e.reason, Reason::MainlandAfterPrefix, "{input}");
            assert!(e.message_zh().contains("国内手机号"), "{input}");
            assert!(mobile(input).is_err(), "{input}");
        }
        // North American numbers stay numbers abroad.
        for input in [
            "+1 415 555 0100",
            "+14155550100",
            "+1 380 013 8000",
            "+1876 555 1234",
            "+1415 555 0100",
        ] {
            assert_eq!(
                phone(input).unwrap().kind,
                PhoneKind::International,
                "{input}"
            );
        }
    }

    #[test]
    fn international_numbers() {
        let cases: [(&[&str], &str); 6] = [
            (
                &[
                    "+852 2123 4567",
                    "00852 2123 4567",
                    "+852-2123-4567",
                    "(+852) 2123 4567",
                    "00 852 2123 4567",
                    "＋８５２ ２１２３ ４５６７",
                    "+85221234567",
                ],
                "+85221234567",
            ),
            (
                &["+1 415 555 0100", "+1 (415) 555-0100", "001 415 555 0100"],
                "+14155550100",
            ),
            (
                &[
                    "+44 20 7946 0958",
                    "+44 (0)20 7946 0958",
                    "0044 20 7946 0958",
                ],
                "+442079460958",
            ),
            (&["+81 3-1234-5678", "+81 (0)3 1234 5678"], "+81312345678"),
            // A leading 0 typed as a group is part of the number.
            (&["+39 06 1234 5678", "+390612345678"], "+390612345678"),
            (&["+225 07 08 09 10 11", "+2250708091011"], "+2250708091011"),
        ];
        for (inputs, want) in cases {
            for input in inputs {
                let p = phone(input).unwrap();
                assert_eq!(p.kind, PhoneKind::International, "{input}");
                assert_eq!(p.canonical, want, "{input}");
                assert_eq!(p.key, want, "{input}");
                assert_eq!(landline(input).unwrap(), want, "{input}");
                assert_eq!(mobile(input).unwrap(), want, "{input}");
                // The canonical form is a fixed point.
                assert_eq!(phone(want).unwrap(), p, "{input}");
            }
        }
        // A foreign key never equals a mainland one.
        assert_eq!(phone("141 5555 0100").unwrap().key, "14155550100");
        assert_ne!(
            phone("+1 415 555 0100").unwrap().key,
            phone("14155550100").unwrap().key
        );
        // An extension after a marker is kept apart from the key.
        let p = phone("+1 415 555 0100 ext. 12").unwrap();
        assert_eq!(p.canonical, "+14155550100 ext 12");
        assert_eq!(p.key, "+14155550100");
        assert_eq!(phone(&p.canonical).unwrap(), p);
        assert_eq!(phone("+1-415-555-0100 转 12").unwrap(), p);
        // Smallest and largest E.164 numbers.
        assert_eq!(phone("+65 6123 456").unwrap().canonical, "+656123456");
        assert_eq!(
            phone("+999 123 456 789 012").unwrap().canonical,
            "+999123456789012"
        );
        // +86 keeps the mainland forms.
        assert_eq!(phone("+86 10 6552 9988").unwrap().canonical, "010-65529988");
        assert_eq!(phone("0086 138 1234 5678").unwrap().kind, PhoneKind::Mobile);
        // Messages.
        let e = phone("+0 123 4567").unwrap_err();
        assert_eq!(e.reason, Reason::CountryCode { code: "0".into() });
        assert_eq!(
            e.to_string(),
            "landline number +0 123 4567 has country code +0, which does not exist (country codes start with 1 to 9)"
        );
        assert_eq!(
            e.message_zh(),
            "固定电话号码 +0 123 4567 的国家代码 +0 不存在（国家代码以 1 至 9 开头）"
        );
        let e = mobile("+852 9123").unwrap_err();
        assert_eq!(
            e.to_string(),
            "mobile number +852 9123 has 7 digits with the country code, expected 8 to 15"
        );
        assert_eq!(
            e.message_zh(),
            "手机号码 +852 9123 连同国家代码有 7 位数字，应为 8 至 15 位"
        );
        for bad in [
            "+",
            "00",
            "+ -",
            "+1 415 555 01001 2345 6",
            "+852 2123 4567 转",
        ] {
            assert!(phone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bracketed_country_code() {
        for (input, want) in [
            ("(+86) 10 6552 9988", "010-65529988"),
            ("(+86)10-6552-9988", "010-65529988"),
            ("（＋８６）１０ ６５５２ ９９８８", "010-65529988"),
            ("(+86) 755 8765 4321", "0755-87654321"),
            ("( +86 ) 0755 8765 4321", "0755-87654321"),
            ("00 86 10 6552 9988", "010-65529988"),
            ("(+86) 400 810 8888", "400-810-8888"),
        ] {
            assert_eq!(landline(input).unwrap(), want, "{input}");
            let p = phone(input).unwrap();
            assert_eq!(p.canonical, want, "{input}");
            assert_eq!(p.key, phone(want).unwrap().key, "{input}");
        }
        assert_eq!(
            phone("(+86) 10 6552 9988").unwrap().kind,
            PhoneKind::Landline
        );
        assert_eq!(mobile("(+86)13800138000").unwrap(), "13800138000");
        assert_eq!(mobile("(+86) 138 0013 8000").unwrap(), "13800138000");
        // A bad Beijing number after +86 is reported as a landline.
        let e = phone("(+86) 10 6552 99").unwrap_err();
        assert_eq!(e.subject, Subject::Landline);
        assert!(matches!(e.reason, Reason::LocalNumber { .. }), "{e}");
        // A `+` elsewhere is still refused.
        assert_eq!(
            landline("010 +6552 9988").unwrap_err().reason,
            Reason::Character {
                ch: '+',
                position: 5
            }
        );
    }

    #[test]
    fn short_service_numbers() {
        for (input, want) in [
            ("95555", "95555"),
            ("95588", "95588"),
            ("955 88", "95588"),
            ("10086", "10086"),
            ("10010", "10010"),
            ("12345", "12345"),
            ("12315", "12315"),
            ("１２３４５", "12345"),
        ] {
            let p = phone(input).unwrap();
            assert_eq!(p.kind, PhoneKind::Service, "{input}");
            assert_eq!(p.canonical, want, "{input}");
            assert_eq!(p.key, want, "{input}");
            assert_eq!(landline(input).unwrap(), want, "{input}");
            assert_eq!(phone(want).unwrap(), p, "{input}");
            // Not a contact's mobile.
            assert!(mobile(input).is_err(), "{input}");
        }
        // 400/800 numbers are unchanged.
        assert_eq!(phone("400 810 8888").unwrap().canonical, "400-810-8888");
        // Other short numbers, prefixes and extensions are refused.
        for bad in [
            "9555",
            "955555",
            "13345",
            "10186",
            "+86 95555",
            "(+86) 95555",
            "95555转1",
            "62345",
        ] {
            assert!(phone(bad).is_err(), "{bad}");
            assert!(landline(bad).is_err(), "{bad}");
        }
        assert_eq!(
            landline("62345").unwrap_err().reason,
            Reason::MissingAreaCode
        );
    }

    proptest! {
        #[test]
        fn international_typings_share_a_key(
            code in "[1-9][0-9]{0,2}",
            rest in "[0-9]{7,11}",
            prefix in "\\+|00|\\(\\+|00 ",
            sep in "[ -]",
        ) {
            let digits = format!("{code}{rest}");
            prop_assume!(!digits.starts_with("86"));
            // `+13x xxxx xxxx` reads as a mainland mobile typed after a
            // stray prefix (no country code but 1 starts with 1).
            prop_assume!(!(code.len() == 3
                && rest.len() == 8
                && code.starts_with('1')
                && (b'3'..=b'9').contains(&code.as_bytes()[1])));
            prop_assume!(INTERNATIONAL_DIGITS.contains(&digits.len()));
            let close = if prefix == "(+" { ")" } else { "" };
            let (a, b) = rest.split_at(rest.len() / 2);
            let typed = format!("{prefix}{code}{close}{sep}{a}{sep}{b}");
            let p = phone(&typed).unwrap();
            prop_assert_eq!(&p.key, &format!("+{digits}"));
            prop_assert_eq!(&p.canonical, &p.key);
            prop_assert_eq!(mobile(&typed).unwrap(), p.key.clone());
            prop_assert_eq!(phone(&p.canonical).unwrap(), p);
        }

        #[test]
        fn phone_canonical_is_fixed_point(s in "[+0-9 ()\\-x转]{0,24}") {
            if let Ok(p) = phone(&s) {
                prop_assert_eq!(phone(&p.canonical).unwrap(), p);
            }
        }
    }

    #[test]
    fn phone_error_choice() {
        assert_eq!(phone("1381234567").unwrap_err().subject, Subject::Mobile);
        assert_eq!(
            phone("+86 1381234567").unwrap_err().subject,
            Subject::Mobile
        );
        assert_eq!(phone("010-123").unwrap_err().subject, Subject::Landline);
        assert_eq!(phone("").unwrap_err().reason, Reason::Empty);
    }

    // --- E-mail and URL -------------------------------------------------

    #[test]
    fn email_normalises_domain_only() {
        let e = email("  Zhang.San@Example.COM ").unwrap();
        assert_eq!(e, "Zhang.San@example.com");
        assert_eq!(email_key(&e), "zhang.san@example.com");
        assert_eq!(email("张三＠Example。CN").unwrap(), "张三@example.cn");
    }

    #[test]
    fn invisible_format_characters_are_dropped() {
        assert_eq!(
            strip_invisible("dup\u{200B}@example.com"),
            "dup@example.com"
        );
        assert_eq!(strip_invisible("零宽\u{200B}测试"), "零宽测试");
        for c in [
            '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{00AD}', '\u{200E}',
            '\u{202E}',
        ] {
            assert_eq!(strip_invisible(&format!("a{c}b{c}")), "ab", "{:?}", c);
        }
        // Nothing to drop: the text itself.
        assert!(matches!(
            strip_invisible("华为"),
            std::borrow::Cow::Borrowed("华为")
        ));
        // Emoji sequences keep their joiner and tags.
        let family = "👨\u{200D}👩\u{200D}👧";
        assert_eq!(strip_invisible(family), family);
        let scotland = "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}";
        assert_eq!(strip_invisible(scotland), scotland);
        // A joiner between letters, or a stray tag, is dropped.
        assert_eq!(strip_invisible("a\u{200D}b\u{E0067}"), "ab");
        // The validators read the value without them.
        assert_eq!(email("dup\u{200B}@example.com").unwrap(), "dup@example.com");
        assert_eq!(
            email("\u{FEFF}dup@exam\u{00AD}ple.com").unwrap(),
            "dup@example.com"
        );
        assert_eq!(
            url("www.hua\u{200B}wei.com").unwrap(),
            "https://www.huawei.com/"
        );
        assert_eq!(person_name("张\u{200B}三").unwrap(), "张三");
        assert_eq!(
            mobile("138\u{200B}0013\u{2060}8000").unwrap(),
            "13800138000"
        );
        assert_eq!(
            uscc("91350100M000100Y4\u{200B}3").unwrap(),
            "91350100M000100Y43"
        );
        assert_eq!(
            resident_id("11010519491231002\u{200B}X").unwrap().number,
            "11010519491231002X"
        );
        assert_eq!(
            company_name_key(&strip_invisible("零宽\u{200B}测试有限公司")),
            company_name_key("零宽测试")
        );
    }

    #[test]
    fn uscc_placeholders_are_refused() {
        for placeholder in ["000000000000000000", "１１１１１１１１１１１１１１１１１１"]
        {
            let e = uscc(placeholder).unwrap_err();
            assert_eq!(e.reason, Reason::Placeholder, "{placeholder}");
            assert!(
                e.to_string()
                    .contains("not a real code; leave it empty if unknown"),
                "{e}"
            );
            assert!(
                e.message_zh().contains("不知道时请留空"),
                "{}",
                e.message_zh()
            );
        }
        // Its check character is right: only the placeholder rule refuses it.
        assert_eq!(uscc_check_char("00000000000000000"), Some('0'));
    }

    #[test]
    fn email_rejections() {
        assert_eq!(email("").unwrap_err().reason, Reason::Empty);
        let e = email("zhangsan.example.com").unwrap_err();
        assert_eq!(
            e.to_string(),
            "email address zhangsan.example.com is malformed: there is no @"
        );
        assert_eq!(
            e.message_zh(),
            "电子邮箱地址 zhangsan.example.com 格式不正确：缺少 @"
        );
        for bad in [
            "zhang@localhost",
            "@example.com",
            "zhang@",
            "zhang@example..com",
            "zhang san@example.com",
            "Zhang <zhang@example.com>",
            "zhang@[127.0.0.1]",
        ] {
            assert!(
                matches!(email(bad).unwrap_err().reason, Reason::EmailSyntax { .. }),
                "{bad}"
            );
        }
    }

    #[test]
    fn url_forms() {
        let cases = [
            ("www.huawei.com", "https://www.huawei.com/"),
            ("HTTP://WWW.Huawei.com", "http://www.huawei.com/"),
            (
                "https://www.huawei.com/cn/about",
                "https://www.huawei.com/cn/about",
            ),
            ("huawei.com:8080/x", "https://huawei.com:8080/x"),
            ("https://example.com:443/", "https://example.com/"),
            ("//example.com", "https://example.com/"),
            ("192.168.1.10/crm", "https://192.168.1.10/crm"),
        ];
        for (input, want) in cases {
            assert_eq!(url(input).unwrap(), want, "{input}");
        }
        let idn = url("华为.中国").unwrap();
        assert!(
            idn.starts_with("https://xn--") && idn.ends_with(".xn--fiqs8s/"),
            "{idn}"
        );
    }

    #[test]
    fn url_rejections() {
        assert_eq!(url(" ").unwrap_err().reason, Reason::Empty);
        let e = url("ftp://example.com").unwrap_err();
        assert_eq!(
            e.reason,
            Reason::UrlScheme {
                scheme: "ftp".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "web address ftp://example.com uses scheme ftp; only http and https are allowed"
        );
        assert!(matches!(
            url("javascript:alert(1)").unwrap_err().reason,
            Reason::UrlScheme { .. }
        ));
        assert!(matches!(
            url("mailto:a@b.com").unwrap_err().reason,
            Reason::UrlScheme { .. }
        ));
        assert_eq!(url("intranet").unwrap_err().reason, Reason::UrlHost);
        assert!(matches!(
            url("example.com:99999").unwrap_err().reason,
            Reason::UrlSyntax { .. }
        ));
        assert!(matches!(
            url("exa mple.com").unwrap_err().reason,
            Reason::UrlSyntax { .. }
        ));
    }

    // --- Names ----------------------------------------------------------

    #[test]
    fn person_names() {
        assert_eq!(person_name("  张三 ").unwrap(), "张三");
        assert_eq!(person_name("Zhang \u{3000} San").unwrap(), "Zhang San");
        assert_eq!(
            person_name("阿卜杜热合曼·买买提").unwrap(),
            "阿卜杜热合曼·买买提"
        );
        assert_eq!(person_name(" \t").unwrap_err().reason, Reason::Empty);
        assert_eq!(person_name(" \t").unwrap_err().message_zh(), "姓名不能为空");
        let long = "张".repeat(65);
        let e = person_name(&long).unwrap_err();
        assert_eq!(
            e.reason,
            Reason::TooLong {
                actual: 65,
                max: 64
            }
        );
        assert!(
            e.to_string()
                .ends_with("has 65 characters, at most 64 are allowed")
        );
        assert!(e.to_string().contains('…'));
        assert!(person_name(&"张".repeat(64)).is_ok());
        assert_eq!(
            person_name("张\u{0}三").unwrap_err().reason,
            Reason::Character {
                ch: '\u{0}',
                position: 2
            }
        );
    }

    #[test]
    fn company_keys() {
        let cases = [
            ("华为技术有限公司", "华为技术"),
            ("  Huawei Technologies Co., Ltd. ", "huaweitechnologies"),
            ("阿里巴巴（中国）有限公司", "阿里巴巴中国"),
            ("阿里巴巴(中国)有限公司", "阿里巴巴中国"),
            ("阿里巴巴中国有限公司", "阿里巴巴中国"),
            ("中国石油化工股份有限公司", "中国石油化工"),
            ("小米科技有限责任公司", "小米科技"),
            ("华为投资控股集团有限公司", "华为投资控股"),
            ("华为集团", "华为"),
            ("中国建筑工程总公司", "中国建筑工程"),
            ("北京华为有限公司", "北京华为"),
            ("华为技术有限公司北京分公司", "华为技术有限公司北京分公司"),
            ("Costco Wholesale Corporation", "costcowholesale"),
            ("Apple Inc.", "apple"),
            ("SAP SE GmbH", "sapse"),
            ("ＩＢＭ（中国）有限公司", "ibm中国"),
            ("3M Company", "3m"),
            ("集团公司", "集团"),
            ("Limited", "limited"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(company_name_key(input), want, "{input}");
        }
    }

    #[test]
    fn company_keys_fold_latin_letters() {
        let same = [
            ("Müller GmbH", "Muller GmbH", "muller"),
            ("MÜLLER GMBH", "muller gmbh", "muller"),
            ("Société Générale", "Societe Generale", "societegenerale"),
            ("Straße AG", "Strasse AG", "strasseag"),
            ("Æther Ltd", "Aether Ltd", "aether"),
            ("Œuvre Inc.", "Oeuvre Inc.", "oeuvre"),
            ("Nestlé S.A.", "Nestle SA", "nestlesa"),
            ("Ｍüｌｌｅｒ　ＧｍｂＨ", "Muller GmbH", "muller"),
            // Decomposed accents: the combining mark is left out.
            ("Mu\u{308}ller GmbH", "Muller GmbH", "muller"),
            ("İstanbul Co", "istanbul", "istanbul"),
        ];
        for (a, b, want) in same {
            assert_eq!(company_name_key(a), want, "{a}");
            assert_eq!(company_name_key(b), want, "{b}");
        }
        // A folded word ends in a legal-form suffix like any other.
        assert_eq!(company_name_key("Ça Va Limited"), "cava");
        // Other scripts keep their letters, lowercased.
        assert_eq!(company_name_key("Газпром"), "газпром");
        assert_ne!(
            company_name_key("Müller GmbH"),
            company_name_key("Miller GmbH")
        );
    }

    #[test]
    fn company_keys_fold_traditional_chinese() {
        let same = [
            ("華為技術有限公司", "华为技术有限公司", "华为技术"),
            (
                "臺灣積體電路製造股份有限公司",
                "台湾积体电路制造股份有限公司",
                "台湾积体电路制造",
            ),
            (
                "鴻海精密工業股份有限公司",
                "鸿海精密工业股份有限公司",
                "鸿海精密工业",
            ),
            (
                "長榮海運（香港）有限公司",
                "长荣海运(香港)有限公司",
                "长荣海运香港",
            ),
            ("國泰人壽集團", "国泰人寿", "国泰人寿"),
            // Traditional legal forms are stripped like simplified ones.
            ("小米科技有限責任公司", "小米科技", "小米科技"),
            ("中國建築工程總公司", "中国建筑工程", "中国建筑工程"),
        ];
        for (a, b, want) in same {
            assert_eq!(company_name_key(a), want, "{a}");
            assert_eq!(company_name_key(b), want, "{b}");
        }
        // A traditional branch stays a branch.
        assert_eq!(
            company_name_key("華為技術有限公司北京分公司"),
            "华为技术有限公司北京分公司"
        );
        // Character by character, whatever stands beside it.
        assert_eq!(simplified('乾'), '乾');
        assert_eq!(simplified('後'), '后');
        assert_eq!(simplified('a'), 'a');
        assert_eq!(simplified('华'), '华');
        // A chain of the table is followed to its end.
        assert_eq!(simplified('薴'), simplified('苧'));
    }

    #[test]
    fn simplified_is_its_own_simplified_form() {
        let converter = zhconv::get_builtin_converter(zhconv::Variant::ZhHans);
        let ranges = [0x3400..=0x4DBFu32, 0x4E00..=0x9FFF, 0xF900..=0xFAFF];
        let mut changed = 0;
        for u in ranges.into_iter().flatten() {
            let Some(c) = char::from_u32(u).filter(|c| c.is_alphanumeric()) else {
                continue;
            };
            let s = simplified(c);
            assert_eq!(simplified(s), s, "{c} → {s}");
            // As zhconv's converter reads the character alone.
            let mut buf = [0u8; 4];
            let alone = converter.convert(c.encode_utf8(&mut buf));
            let one = alone.chars().next().filter(|_| alone.chars().count() == 1);
            assert_eq!(one.map(simplified), Some(s), "{c}: {alone}");
            // Still a letter of no case: the key keeps it as it is.
            assert!(s.is_alphanumeric() && s.to_lowercase().eq([s]), "{c} → {s}");
            changed += usize::from(s != c);
        }
        // The table is there (OpenCC's has some 3,000 characters here).
        assert!(changed > 2500, "{changed}");
    }

    proptest! {
        #[test]
        fn company_key_idempotent(s in "\\PC{0,30}") {
            let k = company_name_key(&s);
            prop_assert_eq!(company_name_key(&k), k);
        }

        #[test]
        fn company_key_idempotent_on_suffixy_names(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "华为", "有限", "公司", "集团", "分", "股份", "co", "ltd", " ", ".", "（", "）", "l", "td", "Inc",
                ]),
                0..8,
            )
        ) {
            let s: String = parts.concat();
            let k = company_name_key(&s);
            prop_assert_eq!(company_name_key(&k), k.clone());
            prop_assert_eq!(reference::company_name_key(&s), k);
        }

        #[test]
        fn company_key_as_before(s in "\\PC{0,30}") {
            prop_assert_eq!(company_name_key(&s), reference::company_name_key(&s));
        }

        #[test]
        fn clean_as_before(s in "\\PC{0,12}|[ 　Ａ-ｚ０-９ａ]{0,6}") {
            let before = s.trim().chars().map(halfwidth).collect::<String>().trim().to_owned();
            prop_assert_eq!(clean(&s), before);
        }
    }

    #[test]
    fn cjk_ideographs_are_caseless_letters() {
        for u in 0x4E00..=0x9FFFu32 {
            let c = char::from_u32(u).unwrap();
            assert!(is_cjk_ideograph(c) && c.is_alphanumeric(), "{c}");
            assert!(c.to_lowercase().eq([c]), "{c}");
        }
        assert!(!is_cjk_ideograph('\u{4DFF}') && !is_cjk_ideograph('\u{A000}'));
    }

    #[test]
    fn uscc_values_as_before() {
        for u in 0..0x3100u32 {
            let Some(c) = char::from_u32(u) else { continue };
            let before = USCC_CHARSET.find(c).and_then(|i| u32::try_from(i).ok());
            assert_eq!(uscc_value(c), before, "{c}");
        }
    }

    /// The company name key as first written (one `String` per word, a
    /// fresh token list per pass, the whole name folded first), to compare
    /// the faster one with.
    mod reference {
        use super::super::{EN_SUFFIXES, ZH_SUFFIXES, halfwidth, simplified};

        #[derive(PartialEq)]
        enum NameToken {
            Word(String),
            Char(char),
        }

        fn name_tokens(name: &str) -> Vec<NameToken> {
            let mut out = Vec::new();
            let mut word = String::new();
            let mut folded = String::new();
            for l in name
                .chars()
                .map(halfwidth)
                .map(simplified)
                .flat_map(char::to_lowercase)
            {
                crate::pinyin::push_folded(&mut folded, l);
            }
            for c in folded.chars() {
                if c.is_ascii_alphanumeric() {
                    word.push(c);
                    continue;
                }
                if !word.is_empty() {
                    out.push(NameToken::Word(std::mem::take(&mut word)));
                }
                if c.is_alphanumeric() {
                    out.push(NameToken::Char(c));
                }
            }
            if !word.is_empty() {
                out.push(NameToken::Word(word));
            }
            out
        }

        fn ends_with_chars(tokens: &[NameToken], suffix: &str) -> bool {
            let n = suffix.chars().count();
            tokens.len() >= n
                && tokens[tokens.len() - n..]
                    .iter()
                    .zip(suffix.chars())
                    .all(|(t, c)| *t == NameToken::Char(c))
        }

        fn pass(name: &str) -> String {
            let mut tokens = name_tokens(name);
            loop {
                if ends_with_chars(&tokens, "分公司") {
                    break;
                }
                let zh = ZH_SUFFIXES
                    .iter()
                    .find(|s| ends_with_chars(&tokens, s))
                    .map(|s| s.chars().count());
                let cut = match (zh, tokens.last()) {
                    (Some(n), _) => n,
                    (None, Some(NameToken::Word(w))) if EN_SUFFIXES.contains(&w.as_str()) => 1,
                    _ => 0,
                };
                if cut == 0 || cut >= tokens.len() {
                    break;
                }
                tokens.truncate(tokens.len() - cut);
            }
            let mut key = String::new();
            for t in tokens {
                match t {
                    NameToken::Word(w) => key.push_str(&w),
                    NameToken::Char(c) => key.push(c),
                }
            }
            key
        }

        pub(super) fn company_name_key(name: &str) -> String {
            let mut key = pass(name);
            loop {
                let next = pass(&key);
                if next == key {
                    return key;
                }
                key = next;
            }
        }
    }

    #[test]
    fn letters_before_an_extension_marker_are_named_not_the_extension() {
        for text in ["bad-phone-x", "abc x12"] {
            let e = landline(text).unwrap_err();
            assert!(matches!(e.reason, Reason::Character { .. }), "{text}: {e}");
            assert!(e.message_zh().contains("无效"), "{}", e.message_zh());
        }
        let e = landline("010-62345678 转").unwrap_err();
        assert_eq!(
            e.to_string(),
            "landline number 010-62345678 转 has an extension marker with no extension after it"
        );
        assert!(
            e.message_zh().ends_with("的分机标记后没有分机号"),
            "{}",
            e.message_zh()
        );
        let e = phone("+44 20 7946 0958 ext").unwrap_err();
        assert!(e.to_string().contains("no extension after it"), "{e}");
    }
}
