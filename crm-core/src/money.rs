//! Exact money: an integer count of minor units (fen, cents) and a currency.
//!
//! Amounts are parsed from text digit by digit and never pass through
//! floating point. Arithmetic is checked (overflow and currency mismatch are
//! errors), splitting into instalments always sums exactly, rates are
//! applied with an explicit [`Rounding`], and CNY amounts can be written as
//! Chinese capital amounts (大写金额) for contracts, invoices and cheques.
//!
//! Errors are [`MoneyError`]s: `Display` is English and names the value,
//! [`MoneyError::message_zh`] is the Chinese twin.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

// ---------------------------------------------------------------------------
// Currency
// ---------------------------------------------------------------------------

/// An ISO 4217 currency code: three uppercase ASCII letters. The default is
/// CNY. Serialises as the code string (`"CNY"`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    /// Renminbi.
    pub const CNY: Currency = Currency(*b"CNY");
    /// US dollar.
    pub const USD: Currency = Currency(*b"USD");
    /// Euro.
    pub const EUR: Currency = Currency(*b"EUR");
    /// Hong Kong dollar.
    pub const HKD: Currency = Currency(*b"HKD");
    /// Pound sterling.
    pub const GBP: Currency = Currency(*b"GBP");
    /// Japanese yen (no minor unit).
    pub const JPY: Currency = Currency(*b"JPY");
    /// South Korean won (no minor unit).
    pub const KRW: Currency = Currency(*b"KRW");

    /// A currency from its code; surrounding whitespace is ignored and
    /// letters are uppercased (`" usd"` → USD). Any three letters are
    /// accepted, so codes missing from [`Currency::exponent`]'s table work
    /// with two decimals.
    pub fn new(code: &str) -> Result<Currency, MoneyError> {
        let t = code.trim();
        match t.as_bytes() {
            [a, b, c] if t.bytes().all(|b| b.is_ascii_alphabetic()) => Ok(Currency([
                a.to_ascii_uppercase(),
                b.to_ascii_uppercase(),
                c.to_ascii_uppercase(),
            ])),
            _ => Err(MoneyError::BadCurrency { code: t.to_owned() }),
        }
    }

    /// The three-letter code.
    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    /// The number of decimal places of the minor unit (ISO 4217): 0 for
    /// JPY, KRW and the other zero-decimal currencies (VND, CLP, ISK, …), 3
    /// for BHD, IQD, JOD, KWD, LYD, OMR and TND, 2 for everything else
    /// (CNY, USD, EUR, HKD, …).
    pub fn exponent(self) -> u32 {
        match &self.0 {
            b"JPY" | b"KRW" | b"VND" | b"CLP" | b"ISK" | b"PYG" | b"UGX" | b"XAF" | b"XOF"
            | b"XPF" | b"KMF" | b"GNF" | b"RWF" | b"VUV" | b"BIF" | b"DJF" => 0,
            b"BHD" | b"IQD" | b"JOD" | b"KWD" | b"LYD" | b"OMR" | b"TND" => 3,
            _ => 2,
        }
    }

    /// Minor units per major unit (100 for CNY, 1 for JPY).
    pub fn minor_per_major(self) -> i64 {
        10i64.pow(self.exponent())
    }
}

impl Default for Currency {
    fn default() -> Self {
        Currency::CNY
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::new(s)
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Currency::new(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.code().to_owned()
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// What went wrong with an amount. `Display` is English;
/// [`MoneyError::message_zh`] Chinese.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// No amount was given.
    #[error("amount is empty")]
    Empty,
    /// The text is not an amount.
    #[error("amount '{text}' is not a number like 1,234.56")]
    Malformed {
        /// The text.
        text: String,
    },
    /// More decimal places than the currency's minor unit allows.
    #[error("amount {text} has {places} decimal places; {currency} allows at most {allowed}")]
    Precision {
        /// The text.
        text: String,
        /// Decimal places given (trailing zeros not counted).
        places: usize,
        /// The currency.
        currency: Currency,
        /// Decimal places allowed.
        allowed: u32,
    },
    /// The amount does not fit in 64 bits of minor units.
    #[error("amount {text} is too large")]
    TooLarge {
        /// The text.
        text: String,
    },
    /// An operation's result does not fit in 64 bits of minor units.
    #[error("{operation} overflows the representable range")]
    Overflow {
        /// The operation, e.g. `¥1.00 × 9223372036854775807`.
        operation: String,
    },
    /// Two amounts of different currencies were combined.
    #[error("currency mismatch: {left} and {right} cannot be combined")]
    CurrencyMismatch {
        /// The first currency.
        left: Currency,
        /// The second currency.
        right: Currency,
    },
    /// Not a three-letter currency code.
    #[error("currency code '{code}' is not three letters A-Z")]
    BadCurrency {
        /// The text.
        code: String,
    },
    /// Splitting into zero instalments.
    #[error("cannot split {amount} into 0 instalments")]
    NoInstalments {
        /// The amount.
        amount: String,
    },
    /// Allocation weights that are empty or all zero.
    #[error("cannot allocate {amount} by weights that are empty or all zero")]
    NoWeights {
        /// The amount.
        amount: String,
    },
    /// A rate that makes no sense for the operation (shown as a
    /// percentage: users type rates as percentages).
    #[error("rate {} is not allowed here (it must not be negative)", rate_text(.basis_points))]
    BadRate {
        /// The rate.
        basis_points: i64,
    },
    /// Chinese capital amounts are for CNY.
    #[error("Chinese capital amounts (大写金额) are only written for CNY, not {currency}")]
    NotCny {
        /// The currency.
        currency: Currency,
    },
    /// Beyond 9999万亿元.
    #[error("{amount} is too large for a Chinese capital amount (below 1亿亿元 only)")]
    CapitalTooLarge {
        /// The amount.
        amount: String,
    },
}

impl MoneyError {
    /// The Chinese message.
    pub fn message_zh(&self) -> String {
        match self {
            MoneyError::Empty => "金额不能为空".to_owned(),
            MoneyError::Malformed { text } => {
                format!("金额“{text}”不是有效的数字（应形如 1,234.56）")
            }
            MoneyError::Precision {
                text,
                places,
                currency,
                allowed,
            } => format!("金额 {text} 有 {places} 位小数，{currency} 最多允许 {allowed} 位"),
            MoneyError::TooLarge { text } => format!("金额 {text} 过大"),
            MoneyError::Overflow { operation } => format!("{operation} 的结果超出可表示的范围"),
            MoneyError::CurrencyMismatch { left, right } => {
                format!("币种不一致：{left} 与 {right} 不能合并计算")
            }
            MoneyError::BadCurrency { code } => format!("币种代码“{code}”应为三个英文字母"),
            MoneyError::NoInstalments { amount } => format!("不能把 {amount} 分成 0 期"),
            MoneyError::NoWeights { amount } => {
                format!("分摊 {amount} 的比例为空或全部为零")
            }
            MoneyError::BadRate { basis_points } => {
                format!("费率 {} 在此处无效（不能为负）", percent(*basis_points))
            }
            MoneyError::NotCny { currency } => {
                format!("只有人民币（CNY）金额可以写成中文大写，{currency} 不行")
            }
            MoneyError::CapitalTooLarge { amount } => {
                format!("{amount} 过大，无法写成中文大写金额（须小于一亿亿元）")
            }
        }
    }
}

/// A rate in basis points as a percentage, the way users type and read
/// rates, exactly: `1300` → `13%`, `1250` → `12.5%`, `1` → `0.01%`,
/// `-500` → `-5%`. Messages name rates so, never in basis points.
pub fn percent(basis_points: i64) -> String {
    let sign = if basis_points < 0 { "-" } else { "" };
    let abs = basis_points.unsigned_abs();
    let (whole, frac) = (abs / 100, abs % 100);
    if frac == 0 {
        format!("{sign}{whole}%")
    } else {
        let frac = format!("{frac:02}");
        format!("{sign}{whole}.{}%", frac.trim_end_matches('0'))
    }
}

fn rate_text(basis_points: &i64) -> String {
    percent(*basis_points)
}

// ---------------------------------------------------------------------------
// Rounding
// ---------------------------------------------------------------------------

/// How a result that falls between two minor units is rounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// Half away from zero (四舍五入; Java's `HALF_UP`): 0.5 → 1, −0.5 → −1.
    /// The usual rule for Chinese tax amounts.
    HalfUp,
    /// Half to even (banker's rounding): 0.5 → 0, 1.5 → 2.
    HalfEven,
    /// Toward zero (truncate, 舍去).
    TowardZero,
    /// Away from zero (进位).
    AwayFromZero,
}

/// `n / d` rounded; `d` must be positive.
fn div_round(n: i128, d: i128, rounding: Rounding) -> i128 {
    let q = n / d;
    let r = n % d;
    if r == 0 {
        return q;
    }
    let step = n.signum();
    let twice = 2 * r.abs();
    let up = match rounding {
        Rounding::TowardZero => false,
        Rounding::AwayFromZero => true,
        Rounding::HalfUp => twice >= d,
        Rounding::HalfEven => twice > d || (twice == d && q % 2 != 0),
    };
    if up { q + step } else { q }
}

// ---------------------------------------------------------------------------
// Money
// ---------------------------------------------------------------------------

/// An exact amount: `minor` units (fen for CNY, cents for USD, yen for JPY)
/// of `currency`. Serialises as `{"minor": 123456, "currency": "CNY"}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// The amount in minor units.
    pub minor: i64,
    /// The currency.
    pub currency: Currency,
}

impl Money {
    /// An amount of `minor` units.
    pub const fn new(minor: i64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    /// An amount of fen in CNY (`Money::cny(123456)` is ¥1,234.56).
    pub const fn cny(fen: i64) -> Money {
        Money::new(fen, Currency::CNY)
    }

    /// Zero in `currency`.
    pub const fn zero(currency: Currency) -> Money {
        Money::new(0, currency)
    }

    /// Whether the amount is zero.
    pub fn is_zero(&self) -> bool {
        self.minor == 0
    }

    /// Whether the amount is below zero.
    pub fn is_negative(&self) -> bool {
        self.minor < 0
    }

    /// Parses an amount, exactly. The currency comes from the text (`¥`,
    /// `￥`, `元` or `RMB` for CNY, `$`/`US$` for USD, `HK$`, `€`, `£`, or
    /// a three-letter code before or after the number) and is CNY when the
    /// text names none.
    ///
    /// Accepted: an optional sign (before or after the symbol), digits with
    /// optional thousands separators in groups of three, an optional
    /// decimal point and at most as many decimal places as the currency
    /// has (more are accepted only when they are zeros); full-width digits
    /// and punctuation are accepted too. Examples: `1234.5`, `1,234.56`,
    /// `¥1,234.56`, `-0.01`, `-¥1,234.56`, `1,234.56 USD`, `USD 12`,
    /// `1234元`. `1234.567` is an error naming the value and the allowed
    /// precision. The output of `Display` always parses back to the same
    /// amount.
    pub fn parse(text: &str) -> Result<Money, MoneyError> {
        parse_amount(text, None)
    }

    /// Parses an amount in a known currency (e.g. a form field whose
    /// currency is chosen separately). As [`Money::parse`], but a bare
    /// number is taken in `currency`, and a currency named in the text must
    /// be `currency` (`¥` also counts as JPY here), else
    /// [`MoneyError::CurrencyMismatch`].
    pub fn parse_in(text: &str, currency: Currency) -> Result<Money, MoneyError> {
        parse_amount(text, Some(currency))
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }

    fn with_minor(
        self,
        minor: Option<i64>,
        operation: impl FnOnce() -> String,
    ) -> Result<Money, MoneyError> {
        match minor {
            Some(m) => Ok(Money::new(m, self.currency)),
            None => Err(MoneyError::Overflow {
                operation: operation(),
            }),
        }
    }

    /// `self + other`; errors on different currencies or overflow.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        self.with_minor(self.minor.checked_add(other.minor), || {
            format!("{self} + {other}")
        })
    }

    /// `self − other`; errors on different currencies or overflow.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        self.with_minor(self.minor.checked_sub(other.minor), || {
            format!("{self} - {other}")
        })
    }

    /// `self × quantity`; errors on overflow.
    pub fn checked_mul(self, quantity: i64) -> Result<Money, MoneyError> {
        self.with_minor(self.minor.checked_mul(quantity), || {
            format!("{self} × {quantity}")
        })
    }

    /// `−self`; errors on overflow (only for the most negative amount).
    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        self.with_minor(self.minor.checked_neg(), || format!("-({self})"))
    }

    /// The sum of `items`, all in `currency` (zero when empty).
    pub fn checked_sum(
        currency: Currency,
        items: impl IntoIterator<Item = Money>,
    ) -> Result<Money, MoneyError> {
        items
            .into_iter()
            .try_fold(Money::zero(currency), Money::checked_add)
    }

    /// Compares two amounts of the same currency.
    pub fn checked_cmp(&self, other: &Money) -> Result<Ordering, MoneyError> {
        self.same_currency(*other)?;
        Ok(self.minor.cmp(&other.minor))
    }

    /// Splits into `n` instalments that sum exactly to `self`. Every
    /// instalment is `self / n` truncated toward zero; the remainder is
    /// spread one minor unit at a time over the first instalments, so they
    /// differ by at most one minor unit and the larger ones (in magnitude)
    /// come first: ¥100.00 / 3 → ¥33.34, ¥33.33, ¥33.33.
    pub fn allocate(self, n: usize) -> Result<Vec<Money>, MoneyError> {
        if n == 0 {
            return Err(MoneyError::NoInstalments {
                amount: self.to_string(),
            });
        }
        let total = i128::from(self.minor);
        let parts = i128::try_from(n).unwrap_or(i128::MAX);
        let base = total / parts;
        let extra = (total % parts).unsigned_abs();
        let step = total.signum();
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let more = u128::try_from(i).is_ok_and(|i| i < extra);
            let m = if more { base + step } else { base };
            // |m| ≤ |total|, so it fits.
            out.push(Money::new(i64::try_from(m).unwrap_or(0), self.currency));
        }
        Ok(out)
    }

    /// Splits in proportion to `weights` (e.g. `[30, 70]` for a 30 % down
    /// payment), summing exactly to `self`, by the largest-remainder
    /// method: each share is its exact proportion truncated toward zero,
    /// and the minor units left over go one each to the shares with the
    /// largest truncated fractions, earlier instalments first on ties. So
    /// every share is less than one minor unit from its exact proportion,
    /// and equal weights behave like [`Money::allocate`].
    pub fn allocate_by(self, weights: &[u64]) -> Result<Vec<Money>, MoneyError> {
        let total_weight: u128 = weights.iter().map(|w| u128::from(*w)).sum();
        if total_weight == 0 {
            return Err(MoneyError::NoWeights {
                amount: self.to_string(),
            });
        }
        let magnitude = u128::from(self.minor.unsigned_abs());
        // magnitude < 2^64 and a weight < 2^64, so the product fits in u128.
        let mut shares: Vec<(u128, u128)> = weights
            .iter()
            .map(|w| {
                let exact = magnitude * u128::from(*w);
                (exact / total_weight, exact % total_weight)
            })
            .collect();
        let left = magnitude - shares.iter().map(|(q, _)| q).sum::<u128>();
        let mut order: Vec<usize> = (0..shares.len()).collect();
        // Stable: ties keep the earlier instalment first.
        order.sort_by(|a, b| shares[*b].1.cmp(&shares[*a].1));
        for &i in order
            .iter()
            .take(usize::try_from(left).unwrap_or(usize::MAX))
        {
            shares[i].0 += 1;
        }
        let negative = self.minor < 0;
        Ok(shares
            .into_iter()
            .map(|(s, _)| {
                let s = i128::try_from(s).unwrap_or(0);
                let m = if negative { -s } else { s };
                // |m| ≤ |self.minor|, so it fits.
                Money::new(i64::try_from(m).unwrap_or(0), self.currency)
            })
            .collect())
    }

    /// `self × basis_points / 10 000`, rounded to the minor unit as told:
    /// 13 % VAT on ¥0.50 is `apply_rate(1300, Rounding::HalfUp)` = ¥0.07
    /// (6.5 fen rounded half up). Negative rates are allowed (discounts).
    pub fn apply_rate(self, basis_points: i64, rounding: Rounding) -> Result<Money, MoneyError> {
        let exact = i128::from(self.minor) * i128::from(basis_points);
        let m = div_round(exact, 10_000, rounding);
        self.with_minor(i64::try_from(m).ok(), || {
            format!("{self} × {}", percent(basis_points))
        })
    }

    /// Separates a tax-inclusive amount (含税价) into `(net, tax)` (价税分离):
    /// tax = `self × r / (1 + r)` rounded as told, net = `self − tax`, so
    /// the two always sum to `self`. ¥113.00 at 13 % (1300 basis points) →
    /// (¥100.00, ¥13.00). The rate must not be negative.
    pub fn split_tax_inclusive(
        self,
        basis_points: i64,
        rounding: Rounding,
    ) -> Result<(Money, Money), MoneyError> {
        if basis_points < 0 {
            return Err(MoneyError::BadRate { basis_points });
        }
        let exact = i128::from(self.minor) * i128::from(basis_points);
        let tax = div_round(exact, 10_000 + i128::from(basis_points), rounding);
        // |tax| ≤ |self.minor|, and net has the same sign as self with a
        // smaller magnitude, so both fit.
        let tax = i64::try_from(tax).unwrap_or(0);
        Ok((
            Money::new(self.minor - tax, self.currency),
            Money::new(tax, self.currency),
        ))
    }

    /// The amount as a plain decimal without grouping or currency, e.g.
    /// `-1234.50` (CNY) or `1234` (JPY); for CSV and other machine-read
    /// output.
    pub fn to_decimal_string(&self) -> String {
        let (int, frac) = self.split_abs();
        let sign = if self.minor < 0 { "-" } else { "" };
        match frac {
            Some(frac) => format!("{sign}{int}.{frac}"),
            None => format!("{sign}{int}"),
        }
    }

    /// The integer part of |amount| and its decimals (zero-padded), if the
    /// currency has any.
    fn split_abs(&self) -> (u64, Option<String>) {
        let exp = self.currency.exponent();
        let unit = 10u64.pow(exp);
        let abs = self.minor.unsigned_abs();
        let frac = (exp > 0).then(|| {
            format!(
                "{:0width$}",
                abs % unit,
                width = usize::try_from(exp).unwrap_or(2)
            )
        });
        (abs / unit, frac)
    }

    /// The amount as a Chinese capital amount (中文大写金额) for CNY, e.g.
    /// ¥12,345.67 → `壹万贰仟叁佰肆拾伍元陆角柒分`. Prefix `人民币` yourself
    /// where a form requires it.
    ///
    /// Follows 中国人民银行《支付结算办法》（银发〔1997〕393号）附一
    /// 《正确填写票据和结算凭证的基本规定》:
    ///
    /// - digits 零壹贰叁肆伍陆柒捌玖, units 拾佰仟万亿, and 元角分; ten is
    ///   written 壹拾 (the 壹 is never dropped);
    /// - an amount ending at 元 gets 整 (壹佰元整); after 角 and 分 no 整 is
    ///   written (壹元伍角, 壹元伍角陆分);
    /// - a zero between digits is written 零 (¥1,409.50 → 壹仟肆佰零玖元伍角),
    ///   and a run of zeros only one 零 (¥6,007.14 → 陆仟零柒元壹角肆分);
    /// - when the 元 digit is 0 and 角 is not, the rules allow 零 or
    ///   nothing; we write 零 (¥1,680.32 → 壹仟陆佰捌拾元零叁角贰分,
    ///   ¥100,000.10 → 壹拾万元零壹角); when 万 is 0 and 仟 is not, we write
    ///   nothing (¥107,000.53 → 壹拾万柒仟元零伍角叁分), both as the rules'
    ///   own examples;
    /// - when 角 is 0 and 分 is not, 零 follows 元 (¥16,409.02 →
    ///   壹万陆仟肆佰零玖元零贰分, ¥325.04 → 叁佰贰拾伍元零肆分);
    /// - below one yuan nothing is written for 元 (¥0.50 → 伍角), and zero is
    ///   零元整; a negative amount is prefixed 负.
    ///
    /// Amounts up to 9999万亿 (10^16 − 1) yuan are written; a whole zero
    /// section is bridged with one 零 (¥1,0000,5678,0000 →
    /// 壹万亿零伍仟陆佰柒拾捌万元整). Errors for other currencies and
    /// larger amounts.
    pub fn to_chinese_capital(&self) -> Result<String, MoneyError> {
        if self.currency != Currency::CNY {
            return Err(MoneyError::NotCny {
                currency: self.currency,
            });
        }
        let abs = self.minor.unsigned_abs();
        let yuan = abs / 100;
        let jiao = usize::try_from(abs / 10 % 10).unwrap_or(0);
        let fen = usize::try_from(abs % 10).unwrap_or(0);
        if yuan >= 10u64.pow(16) {
            return Err(MoneyError::CapitalTooLarge {
                amount: self.to_string(),
            });
        }
        let mut out = String::new();
        if self.minor < 0 {
            out.push('负');
        }
        if yuan == 0 && jiao == 0 && fen == 0 {
            out.push_str("零元整");
            return Ok(out);
        }
        if yuan > 0 {
            out.push_str(&capital_integer(yuan));
            out.push('元');
        }
        match (jiao, fen) {
            (0, 0) => out.push('整'),
            (0, f) => {
                if yuan > 0 {
                    out.push('零');
                }
                out.push_str(CAPITAL_DIGITS[f]);
                out.push('分');
            }
            (j, f) => {
                // Not `is_multiple_of`: the workspace supports Rust 1.85.
                let units = yuan % 10;
                if yuan > 0 && units == 0 {
                    out.push('零');
                }
                out.push_str(CAPITAL_DIGITS[j]);
                out.push('角');
                if f > 0 {
                    out.push_str(CAPITAL_DIGITS[f]);
                    out.push('分');
                }
            }
        }
        Ok(out)
    }
}

const CAPITAL_DIGITS: [&str; 10] = ["零", "壹", "贰", "叁", "肆", "伍", "陆", "柒", "捌", "玖"];

/// One four-digit section (1..=9999) without leading zeros; inner zero runs
/// become one 零, trailing zeros nothing.
fn capital_section(section: u64) -> String {
    let mut out = String::new();
    let mut zero = false;
    for (place, unit) in [(1000, "仟"), (100, "佰"), (10, "拾"), (1, "")] {
        let digit = usize::try_from(section / place % 10).unwrap_or(0);
        if digit == 0 {
            zero = !out.is_empty();
            continue;
        }
        if zero {
            out.push('零');
            zero = false;
        }
        out.push_str(CAPITAL_DIGITS[digit]);
        out.push_str(unit);
    }
    out
}

/// A positive integer below 10^16 in capital digits (no 元).
fn capital_integer(n: u64) -> String {
    let sections = [
        n / 1_000_000_000_000 % 10_000,
        n / 100_000_000 % 10_000,
        n / 10_000 % 10_000,
        n % 10_000,
    ];
    let mut out = String::new();
    let mut gap = false;
    for (i, &s) in sections.iter().enumerate() {
        if s == 0 {
            gap = !out.is_empty();
            continue;
        }
        if !out.is_empty() && (gap || s < 1000) {
            out.push('零');
        }
        gap = false;
        out.push_str(&capital_section(s));
        out.push_str(match i {
            // 万亿 section: 壹万贰仟亿 when the 亿 section follows, else 壹万亿.
            0 if sections[1] != 0 => "万",
            0 => "万亿",
            1 => "亿",
            2 => "万",
            _ => "",
        });
    }
    out
}

/// `1234567` → `1,234,567`.
fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let head = match digits.len() % 3 {
        0 => 3,
        r => r,
    };
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    out.push_str(&digits[..head]);
    let mut i = head;
    while i < digits.len() {
        out.push(',');
        out.push_str(&digits[i..i + 3]);
        i += 3;
    }
    out
}

impl fmt::Display for Money {
    /// `¥1,234.56` and `-¥0.01` for CNY; `1,234.56 USD`, `-5 JPY` otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (int, frac) = self.split_abs();
        let sign = if self.minor < 0 { "-" } else { "" };
        let mut number = group_thousands(int);
        if let Some(frac) = frac {
            number.push('.');
            number.push_str(&frac);
        }
        let s = if self.currency == Currency::CNY {
            format!("{sign}¥{number}")
        } else {
            format!("{sign}{number} {}", self.currency)
        };
        f.pad(&s)
    }
}

impl FromStr for Money {
    type Err = MoneyError;
    /// As [`Money::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Money::parse(s)
    }
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// Symbols that may precede a number, longest first.
const PREFIX_SYMBOLS: [(&str, Currency); 7] = [
    ("HK$", Currency::HKD),
    ("US$", Currency::USD),
    ("RMB", Currency::CNY),
    ("¥", Currency::CNY),
    ("$", Currency::USD),
    ("€", Currency::EUR),
    ("£", Currency::GBP),
];

/// Records the currency named in the text; naming two different ones is a
/// mismatch.
fn set_marker(marker: &mut Option<Currency>, c: Currency) -> Result<(), MoneyError> {
    match *marker {
        Some(m) if m != c => Err(MoneyError::CurrencyMismatch { left: m, right: c }),
        _ => {
            *marker = Some(c);
            Ok(())
        }
    }
}

/// Splits off a leading `+`/`-`; `Some(true)` for minus.
fn strip_sign(s: &str) -> (Option<bool>, &str) {
    if let Some(r) = s.strip_prefix('-') {
        (Some(true), r.trim_start())
    } else if let Some(r) = s.strip_prefix('+') {
        (Some(false), r.trim_start())
    } else {
        (None, s)
    }
}

/// A three-letter code at the start, not followed by another letter.
fn leading_code(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    let letters = b.iter().take_while(|c| c.is_ascii_alphabetic()).count();
    (letters == 3).then(|| (&s[..3], s[3..].trim_start()))
}

/// A three-letter code at the end, not preceded by another letter.
fn trailing_code(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    let letters = b
        .iter()
        .rev()
        .take_while(|c| c.is_ascii_alphabetic())
        .count();
    (letters == 3).then(|| (s[..s.len() - 3].trim_end(), &s[s.len() - 3..]))
}

fn parse_amount(text: &str, hint: Option<Currency>) -> Result<Money, MoneyError> {
    let original = text.trim();
    if original.is_empty() {
        return Err(MoneyError::Empty);
    }
    let malformed = || MoneyError::Malformed {
        text: original.to_owned(),
    };
    let s: String = original
        .chars()
        .map(|c| match c {
            '￥' => '¥',
            '−' => '-',
            c => crate::validate::halfwidth(c),
        })
        .collect();
    let mut rest = s.trim();

    let mut marker: Option<Currency> = None;
    let mut yen_symbol = false;

    let (mut negative, r) = strip_sign(rest);
    rest = r;
    if let Some((sym, cur)) = PREFIX_SYMBOLS.iter().find(|(sym, _)| rest.starts_with(sym)) {
        set_marker(&mut marker, *cur)?;
        yen_symbol = *sym == "¥";
        rest = rest[sym.len()..].trim_start();
    } else if let Some((code, r)) = leading_code(rest) {
        // `rmb 5` as `5 rmb`: RMB in any case is CNY.
        let c = if code.eq_ignore_ascii_case("RMB") {
            Currency::CNY
        } else {
            Currency::new(code)?
        };
        set_marker(&mut marker, c)?;
        rest = r;
    }
    if negative.is_none() {
        let (n, r) = strip_sign(rest);
        negative = n;
        rest = r;
    }
    if let Some(r) = rest.strip_suffix('元') {
        set_marker(&mut marker, Currency::CNY)?;
        rest = r.trim_end();
    } else if let Some((r, code)) = trailing_code(rest) {
        let c = if code.eq_ignore_ascii_case("RMB") {
            Currency::CNY
        } else {
            Currency::new(code)?
        };
        set_marker(&mut marker, c)?;
        rest = r;
    }

    // No digits left: not an amount, whatever letters read like a
    // currency code (`NaN`, `inf`).
    if !rest.chars().any(|c| c.is_ascii_digit()) {
        return Err(malformed());
    }
    let currency = match (marker, hint) {
        (None, None) => Currency::CNY,
        (None, Some(h)) => h,
        (Some(m), None) => m,
        (Some(m), Some(h)) if m == h => m,
        (Some(_), Some(Currency::JPY)) if yen_symbol => Currency::JPY,
        (Some(m), Some(h)) => return Err(MoneyError::CurrencyMismatch { left: h, right: m }),
    };

    // The number: digits with optional groups of three, optional decimals.
    let (int_part, frac_part) = match rest.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (rest, None),
    };
    let groups: Vec<&str> = int_part.split(',').collect();
    let groups_ok = match groups.as_slice() {
        [] => false,
        [only] => !only.is_empty(),
        // A leading group of 0 (`0,500`) is no thousands grouping.
        [first, others @ ..] => {
            (1..=3).contains(&first.len())
                && !first.starts_with('0')
                && others.iter().all(|g| g.len() == 3)
        }
    };
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if !groups_ok
        || !groups.iter().all(|g| all_digits(g))
        || frac_part.is_some_and(|f| f.is_empty() || !all_digits(f))
    {
        return Err(malformed());
    }

    let exp = currency.exponent();
    let frac = frac_part.unwrap_or("");
    let significant = frac.trim_end_matches('0');
    if significant.len() > usize::try_from(exp).unwrap_or(0) {
        return Err(MoneyError::Precision {
            text: original.to_owned(),
            places: significant.len(),
            currency,
            allowed: exp,
        });
    }
    let too_large = || MoneyError::TooLarge {
        text: original.to_owned(),
    };
    let mut value: i128 = 0;
    let frac_digits = significant.bytes().chain(std::iter::repeat(b'0'));
    let digits = groups
        .iter()
        .flat_map(|g| g.bytes())
        .chain(frac_digits.take(usize::try_from(exp).unwrap_or(0)));
    for d in digits {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i128::from(d - b'0')))
            .ok_or_else(too_large)?;
    }
    if negative == Some(true) {
        value = -value;
    }
    let minor = i64::try_from(value).map_err(|_| too_large())?;
    Ok(Money::new(minor, currency))
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cap(text: &str) -> String {
        Money::parse(text).unwrap().to_chinese_capital().unwrap()
    }

    #[test]
    fn capital_amounts() {
        let cases = [
            ("0", "零元整"),
            ("0.01", "壹分"),
            ("0.05", "伍分"),
            ("0.10", "壹角"),
            ("0.15", "壹角伍分"),
            ("1", "壹元整"),
            ("1.50", "壹元伍角"),
            ("1.05", "壹元零伍分"),
            ("10", "壹拾元整"),
            ("11", "壹拾壹元整"),
            ("20.3", "贰拾元零叁角"),
            ("100", "壹佰元整"),
            ("101", "壹佰零壹元整"),
            ("110", "壹佰壹拾元整"),
            ("1005.00", "壹仟零伍元整"),
            ("1050", "壹仟零伍拾元整"),
            ("12345.67", "壹万贰仟叁佰肆拾伍元陆角柒分"),
            ("100000.10", "壹拾万元零壹角"),
            // The examples of 《正确填写票据和结算凭证的基本规定》.
            ("1409.50", "壹仟肆佰零玖元伍角"),
            ("6007.14", "陆仟零柒元壹角肆分"),
            ("1680.32", "壹仟陆佰捌拾元零叁角贰分"),
            ("107000.53", "壹拾万柒仟元零伍角叁分"),
            ("16409.02", "壹万陆仟肆佰零玖元零贰分"),
            ("325.04", "叁佰贰拾伍元零肆分"),
            // 万 and 亿.
            ("10000", "壹万元整"),
            ("10001", "壹万零壹元整"),
            ("10010", "壹万零壹拾元整"),
            ("100500", "壹拾万零伍佰元整"),
            ("1000005", "壹佰万零伍元整"),
            ("10500000", "壹仟零伍拾万元整"),
            ("100000000", "壹亿元整"),
            ("100000001", "壹亿零壹元整"),
            ("100010000", "壹亿零壹万元整"),
            ("120000000", "壹亿贰仟万元整"),
            ("1000000000", "壹拾亿元整"),
            (
                "123456789012.34",
                "壹仟贰佰叁拾肆亿伍仟陆佰柒拾捌万玖仟零壹拾贰元叁角肆分",
            ),
            ("1000000000000", "壹万亿元整"),
            ("1000056780000", "壹万亿零伍仟陆佰柒拾捌万元整"),
            ("1234500000000", "壹万贰仟叁佰肆拾伍亿元整"),
            ("1002300000000", "壹万零贰拾叁亿元整"),
            ("1000000000001", "壹万亿零壹元整"),
            (
                "9999999999999999.99",
                "玖仟玖佰玖拾玖万玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分",
            ),
            // Negative.
            ("-1005", "负壹仟零伍元整"),
            ("-0.01", "负壹分"),
        ];
        for (amount, want) in cases {
            assert_eq!(cap(amount), want, "{amount}");
        }
    }

    #[test]
    fn capital_errors() {
        let e = Money::new(100, Currency::USD)
            .to_chinese_capital()
            .unwrap_err();
        assert_eq!(
            e,
            MoneyError::NotCny {
                currency: Currency::USD
            }
        );
        assert!(e.message_zh().contains("USD"));
        let e = Money::cny(i64::MAX).to_chinese_capital().unwrap_err();
        assert!(matches!(e, MoneyError::CapitalTooLarge { .. }));
        assert!(
            Money::parse("10000000000000000")
                .unwrap()
                .to_chinese_capital()
                .is_err()
        );
    }

    #[test]
    fn parse_forms() {
        let cases: [(&str, i64, Currency); 24] = [
            ("1234.5", 123_450, Currency::CNY),
            ("1,234.56", 123_456, Currency::CNY),
            ("¥1,234.56", 123_456, Currency::CNY),
            ("￥1,234.56", 123_456, Currency::CNY),
            ("-0.01", -1, Currency::CNY),
            ("-¥0.01", -1, Currency::CNY),
            ("¥-0.01", -1, Currency::CNY),
            ("+12", 1200, Currency::CNY),
            ("0", 0, Currency::CNY),
            ("-0", 0, Currency::CNY),
            ("007.1", 710, Currency::CNY),
            ("1234.500", 123_450, Currency::CNY),
            ("1,234,567.89", 123_456_789, Currency::CNY),
            ("1234元", 123_400, Currency::CNY),
            ("RMB 99.9", 9990, Currency::CNY),
            ("rmb 5", 500, Currency::CNY),
            ("5 rmb", 500, Currency::CNY),
            ("１，２３４．５", 123_450, Currency::CNY),
            ("1,234.56 USD", 123_456, Currency::USD),
            ("usd 12", 1200, Currency::USD),
            ("$3.5", 350, Currency::USD),
            ("HK$10", 1000, Currency::HKD),
            ("1,234 JPY", 1234, Currency::JPY),
            ("1.234 KWD", 1234, Currency::KWD_TEST),
        ];
        for (text, minor, currency) in cases {
            assert_eq!(
                Money::parse(text).unwrap(),
                Money::new(minor, currency),
                "{text}"
            );
        }
        assert_eq!(
            Money::parse("92233720368547758.07").unwrap().minor,
            i64::MAX
        );
        assert_eq!(
            Money::parse("-92233720368547758.08").unwrap().minor,
            i64::MIN
        );
    }

    impl Currency {
        const KWD_TEST: Currency = Currency(*b"KWD");
    }

    #[test]
    fn words_without_digits_are_no_amounts() {
        for t in ["NaN", "nan", "inf", "-inf", "Infinity", "USD", "元", "¥"] {
            for got in [Money::parse(t), Money::parse_in(t, Currency::CNY)] {
                assert!(
                    matches!(got, Err(MoneyError::Malformed { .. })),
                    "{t}: {got:?}"
                );
            }
        }
    }

    #[test]
    fn parse_in_currency() {
        assert_eq!(
            Money::parse_in("12.5", Currency::USD).unwrap(),
            Money::new(1250, Currency::USD)
        );
        assert_eq!(
            Money::parse_in("¥500", Currency::JPY).unwrap(),
            Money::new(500, Currency::JPY)
        );
        assert_eq!(
            Money::parse_in("¥5", Currency::USD).unwrap_err(),
            MoneyError::CurrencyMismatch {
                left: Currency::USD,
                right: Currency::CNY
            }
        );
        assert!(Money::parse_in("5.5", Currency::JPY).is_err());
    }

    #[test]
    fn parse_errors() {
        assert_eq!(Money::parse("  ").unwrap_err(), MoneyError::Empty);
        let e = Money::parse("1234.567").unwrap_err();
        assert_eq!(
            e.to_string(),
            "amount 1234.567 has 3 decimal places; CNY allows at most 2"
        );
        assert_eq!(
            e.message_zh(),
            "金额 1234.567 有 3 位小数，CNY 最多允许 2 位"
        );
        assert_eq!(
            Money::parse("12.5 JPY").unwrap_err(),
            MoneyError::Precision {
                text: "12.5 JPY".into(),
                places: 1,
                currency: Currency::JPY,
                allowed: 0
            }
        );
        for bad in [
            "abc", "1.2.3", "12,34", "1,2345", ",123", "1,", ".5", "5.", "--1", "1e5", "¥",
            "1 234", "12a", "- ", "NaN", "0x10", "1.-5", "0,500", "00,500.5",
        ] {
            assert!(
                matches!(Money::parse(bad), Err(MoneyError::Malformed { .. })),
                "{bad}: {:?}",
                Money::parse(bad)
            );
        }
        let e = Money::parse("abc").unwrap_err();
        assert_eq!(e.to_string(), "amount 'abc' is not a number like 1,234.56");
        assert!(matches!(
            Money::parse("92233720368547758.08"),
            Err(MoneyError::TooLarge { .. })
        ));
        assert!(matches!(
            Money::parse("99999999999999999999999999999999999999999999"),
            Err(MoneyError::TooLarge { .. })
        ));
        assert_eq!(
            Money::parse("¥5 USD").unwrap_err(),
            MoneyError::CurrencyMismatch {
                left: Currency::CNY,
                right: Currency::USD
            }
        );
        assert!(matches!(
            Money::parse("5 ABCD"),
            Err(MoneyError::Malformed { .. })
        ));
    }

    #[test]
    fn display() {
        assert_eq!(Money::cny(123_456).to_string(), "¥1,234.56");
        assert_eq!(Money::cny(-1).to_string(), "-¥0.01");
        assert_eq!(Money::cny(0).to_string(), "¥0.00");
        assert_eq!(Money::cny(100_000_000).to_string(), "¥1,000,000.00");
        assert_eq!(
            Money::new(123_456, Currency::USD).to_string(),
            "1,234.56 USD"
        );
        assert_eq!(Money::new(-5, Currency::JPY).to_string(), "-5 JPY");
        assert_eq!(
            Money::cny(i64::MIN).to_string(),
            "-¥92,233,720,368,547,758.08"
        );
        assert_eq!(Money::cny(-123_450).to_decimal_string(), "-1234.50");
        assert_eq!(Money::new(1234, Currency::JPY).to_decimal_string(), "1234");
        assert_eq!(format!("{:>12}", Money::cny(100)), "       ¥1.00");
    }

    #[test]
    fn currency_codes() {
        assert_eq!(Currency::default(), Currency::CNY);
        assert_eq!(Currency::new(" usd ").unwrap(), Currency::USD);
        assert_eq!(Currency::CNY.exponent(), 2);
        assert_eq!(Currency::JPY.exponent(), 0);
        assert_eq!(Currency::KRW.exponent(), 0);
        assert_eq!(Currency::HKD.minor_per_major(), 100);
        assert_eq!(Currency::new("XYZ").unwrap().exponent(), 2);
        for bad in ["", "US", "USDX", "U$D", "人民币"] {
            assert!(Currency::new(bad).is_err(), "{bad}");
        }
        assert_eq!(format!("{:?}", Currency::EUR), "Currency(EUR)");
    }

    #[test]
    fn serde_shape() {
        let m = Money::new(123_456, Currency::USD);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"minor":123456,"currency":"USD"}"#);
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), m);
        assert!(serde_json::from_str::<Money>(r#"{"minor":1,"currency":"US"}"#).is_err());
    }

    #[test]
    fn arithmetic() {
        let a = Money::cny(150);
        let b = Money::cny(75);
        assert_eq!(a.checked_add(b).unwrap(), Money::cny(225));
        assert_eq!(a.checked_sub(b).unwrap(), Money::cny(75));
        assert_eq!(b.checked_sub(a).unwrap(), Money::cny(-75));
        assert_eq!(a.checked_mul(3).unwrap(), Money::cny(450));
        assert_eq!(a.checked_neg().unwrap(), Money::cny(-150));
        assert_eq!(a.checked_cmp(&b).unwrap(), Ordering::Greater);
        assert_eq!(
            Money::checked_sum(Currency::CNY, [a, b, b]).unwrap(),
            Money::cny(300)
        );
        let usd = Money::new(1, Currency::USD);
        let e = a.checked_add(usd).unwrap_err();
        assert_eq!(
            e.to_string(),
            "currency mismatch: CNY and USD cannot be combined"
        );
        assert!(a.checked_sub(usd).is_err());
        assert!(a.checked_cmp(&usd).is_err());
        assert!(Money::checked_sum(Currency::CNY, [a, usd]).is_err());
        let e = Money::cny(i64::MAX).checked_add(Money::cny(1)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "¥92,233,720,368,547,758.07 + ¥0.01 overflows the representable range"
        );
        assert!(Money::cny(i64::MIN).checked_sub(Money::cny(1)).is_err());
        assert!(Money::cny(i64::MAX / 2 + 1).checked_mul(2).is_err());
        assert!(Money::cny(i64::MIN).checked_neg().is_err());
        assert!(e.message_zh().contains("超出"));
    }

    #[test]
    fn allocation() {
        let parts = Money::cny(10_000).allocate(3).unwrap();
        assert_eq!(
            parts,
            vec![Money::cny(3334), Money::cny(3333), Money::cny(3333)]
        );
        let parts = Money::cny(-100).allocate(3).unwrap();
        assert_eq!(
            parts,
            vec![Money::cny(-34), Money::cny(-33), Money::cny(-33)]
        );
        assert_eq!(
            Money::cny(2)
                .allocate(4)
                .unwrap()
                .iter()
                .map(|m| m.minor)
                .collect::<Vec<_>>(),
            [1, 1, 0, 0]
        );
        assert!(matches!(
            Money::cny(1).allocate(0),
            Err(MoneyError::NoInstalments { .. })
        ));
        let parts = Money::cny(10_000).allocate_by(&[30, 70]).unwrap();
        assert_eq!(parts, vec![Money::cny(3000), Money::cny(7000)]);
        let parts = Money::cny(100).allocate_by(&[1, 1, 1]).unwrap();
        assert_eq!(parts, vec![Money::cny(34), Money::cny(33), Money::cny(33)]);
        let parts = Money::cny(100).allocate_by(&[0, 1, 1, 1]).unwrap();
        assert_eq!(
            parts.iter().map(|m| m.minor).collect::<Vec<_>>(),
            [0, 34, 33, 33]
        );
        // 10 × 1/6 = 1.67, 10 × 2/6 = 3.33, 10 × 3/6 = 5: the largest
        // remainder (the first) gets the leftover fen.
        let parts = Money::cny(10).allocate_by(&[1, 2, 3]).unwrap();
        assert_eq!(parts.iter().map(|m| m.minor).collect::<Vec<_>>(), [2, 3, 5]);
        let parts = Money::cny(-101).allocate_by(&[1, 1]).unwrap();
        assert_eq!(parts, vec![Money::cny(-51), Money::cny(-50)]);
        assert!(Money::cny(1).allocate_by(&[]).is_err());
        assert!(Money::cny(1).allocate_by(&[0, 0]).is_err());
    }

    #[test]
    fn rates() {
        // 13 % VAT.
        assert_eq!(
            Money::cny(10_000)
                .apply_rate(1300, Rounding::HalfUp)
                .unwrap(),
            Money::cny(1300)
        );
        // 6.5 fen.
        assert_eq!(
            Money::cny(50).apply_rate(1300, Rounding::HalfUp).unwrap(),
            Money::cny(7)
        );
        assert_eq!(
            Money::cny(50).apply_rate(1300, Rounding::HalfEven).unwrap(),
            Money::cny(6)
        );
        assert_eq!(
            Money::cny(50)
                .apply_rate(1300, Rounding::TowardZero)
                .unwrap(),
            Money::cny(6)
        );
        assert_eq!(
            Money::cny(50)
                .apply_rate(1300, Rounding::AwayFromZero)
                .unwrap(),
            Money::cny(7)
        );
        assert_eq!(
            Money::cny(-50).apply_rate(1300, Rounding::HalfUp).unwrap(),
            Money::cny(-7)
        );
        // 7.5 fen → 8 (even).
        assert_eq!(
            Money::cny(250).apply_rate(300, Rounding::HalfEven).unwrap(),
            Money::cny(8)
        );
        // 6.4 fen.
        assert_eq!(
            Money::cny(64).apply_rate(1000, Rounding::HalfUp).unwrap(),
            Money::cny(6)
        );
        assert_eq!(
            Money::cny(64)
                .apply_rate(1000, Rounding::AwayFromZero)
                .unwrap(),
            Money::cny(7)
        );
        // Discount.
        assert_eq!(
            Money::cny(1000).apply_rate(-500, Rounding::HalfUp).unwrap(),
            Money::cny(-50)
        );
        assert!(
            Money::cny(i64::MAX)
                .apply_rate(20_000, Rounding::HalfUp)
                .is_err()
        );
    }

    #[test]
    fn tax_inclusive_split() {
        let (net, tax) = Money::cny(11_300)
            .split_tax_inclusive(1300, Rounding::HalfUp)
            .unwrap();
        assert_eq!((net, tax), (Money::cny(10_000), Money::cny(1300)));
        // ¥100.00 at 6 %: tax 5.660… → 5.66.
        let (net, tax) = Money::cny(10_000)
            .split_tax_inclusive(600, Rounding::HalfUp)
            .unwrap();
        assert_eq!((net, tax), (Money::cny(9434), Money::cny(566)));
        assert!(
            Money::cny(1)
                .split_tax_inclusive(-1, Rounding::HalfUp)
                .is_err()
        );
    }

    #[test]
    fn rates_read_as_percentages() {
        assert_eq!(percent(1300), "13%");
        assert_eq!(percent(1250), "12.5%");
        assert_eq!(percent(1205), "12.05%");
        assert_eq!(percent(1), "0.01%");
        assert_eq!(percent(0), "0%");
        assert_eq!(percent(-500), "-5%");
        assert_eq!(percent(i64::MIN), "-92233720368547758.08%");
        let e = Money::cny(1)
            .split_tax_inclusive(-150, Rounding::HalfUp)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "rate -1.5% is not allowed here (it must not be negative)"
        );
        assert!(e.message_zh().contains("-1.5%"), "{}", e.message_zh());
        let e = Money::cny(i64::MAX)
            .apply_rate(20_000, Rounding::HalfUp)
            .unwrap_err();
        assert!(
            e.to_string().contains("× 200%") && !e.to_string().contains("10000"),
            "{e}"
        );
    }

    fn arb_currency() -> impl Strategy<Value = Currency> {
        proptest::sample::select(vec![
            Currency::CNY,
            Currency::USD,
            Currency::JPY,
            Currency::EUR,
            Currency::KWD_TEST,
        ])
    }

    proptest! {
        #[test]
        fn allocate_sums_exactly(minor in any::<i64>(), n in 1usize..40) {
            let m = Money::cny(minor);
            let parts = m.allocate(n).unwrap();
            prop_assert_eq!(parts.len(), n);
            let sum: i128 = parts.iter().map(|p| i128::from(p.minor)).sum();
            prop_assert_eq!(sum, i128::from(minor));
            let max = parts.iter().map(|p| p.minor).max().unwrap();
            let min = parts.iter().map(|p| p.minor).min().unwrap();
            prop_assert!(i128::from(max) - i128::from(min) <= 1);
            // Larger magnitudes first.
            let mags: Vec<u64> = parts.iter().map(|p| p.minor.unsigned_abs()).collect();
            prop_assert!(mags.windows(2).all(|w| w[0] >= w[1]));
        }

        #[test]
        fn allocate_by_sums_exactly(minor in any::<i64>(), weights in proptest::collection::vec(0u64..1000, 1..8)) {
            prop_assume!(weights.iter().any(|w| *w > 0));
            let parts = Money::cny(minor).allocate_by(&weights).unwrap();
            let sum: i128 = parts.iter().map(|p| i128::from(p.minor)).sum();
            prop_assert_eq!(sum, i128::from(minor));
            let total: i128 = weights.iter().map(|w| i128::from(*w)).sum();
            for (p, w) in parts.iter().zip(&weights) {
                // Within one minor unit of the exact share: |p·total − minor·w| < total.
                let diff = i128::from(p.minor) * total - i128::from(minor) * i128::from(*w);
                    prop_assert!(diff.abs() < total);
            }
            if weights.iter().all(|w| *w == weights[0]) {
                prop_assert_eq!(parts, Money::cny(minor).allocate(weights.len()).unwrap());
            }
        }

        #[test]
        fn parse_display_round_trip(minor in any::<i64>(), currency in arb_currency()) {
            let m = Money::new(minor, currency);
            prop_assert_eq!(Money::parse(&m.to_string()).unwrap(), m);
            prop_assert_eq!(Money::parse_in(&m.to_decimal_string(), currency).unwrap(), m);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,24}") {
            let _ = Money::parse(&s);
        }

        #[test]
        fn capital_well_formed(minor in -(10i64.pow(18))..10i64.pow(18)) {
            let c = Money::cny(minor).to_chinese_capital().unwrap();
            prop_assert!(!c.contains("零零"));
            prop_assert!(!c.ends_with('零'));
            prop_assert!(c.ends_with('整') || c.ends_with('角') || c.ends_with('分'));
            prop_assert_eq!(c.ends_with('整'), minor % 100 == 0);
            prop_assert!(!c.contains("零元") || minor == 0);
            prop_assert!(!c.contains("零万") && !c.contains("零亿") && !c.contains("零仟"));
        }
    }
}
