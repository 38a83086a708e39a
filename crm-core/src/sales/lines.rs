//! Document lines (quotes, contracts) and their exact totals, pure.
//!
//! Prices are tax-inclusive (含税价), as Chinese price lists are. Per line:
//! gross = unit price × quantity; amount = gross × (1 − discount rate),
//! rounded half up to the fen (四舍五入); discount = gross − amount; tax
//! is separated from the amount at the line's VAT rate (价税分离),
//! net = amount − tax. Document
//! totals are sums of the line values, so every total reconciles with its
//! lines to the fen by construction.

use super::product::{TAX_RATES, TAX_RATES_TEXT};
use crate::money::{Money, Rounding, percent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A line as entered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineInput {
    /// The catalogue product, if any.
    pub product_id: Option<Uuid>,
    /// The product name (taken from the catalogue when empty).
    #[serde(default)]
    pub name: String,
    /// The unit.
    #[serde(default)]
    pub unit: Option<String>,
    /// The quantity (whole units, > 0).
    pub quantity: i64,
    /// The unit price, tax included (taken from the catalogue when absent).
    pub unit_price: Option<Money>,
    /// The discount in basis points (0–10 000; 1 500 = 15 % off).
    #[serde(default)]
    pub discount_bp: i64,
    /// The VAT rate in basis points (one of [`TAX_RATES`]); from the
    /// catalogue or 13 % when absent.
    pub tax_rate: Option<i64>,
}

/// A line with its computed amounts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// The catalogue product, if any.
    pub product_id: Option<Uuid>,
    /// The product name.
    pub name: String,
    /// The unit.
    pub unit: Option<String>,
    /// The quantity.
    pub quantity: i64,
    /// The unit price, tax included.
    pub unit_price: Money,
    /// The discount in basis points.
    pub discount_bp: i64,
    /// The catalogue product's list price when the line was priced: the
    /// line's product's, or for a free-text line the list price of the
    /// catalogue product it is named as (`None` when it names none): what
    /// [`Line::effective_discount_bp`] measures the line's price against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_price: Option<Money>,
    /// The VAT rate in basis points.
    pub tax_rate: i64,
    /// unit price × quantity.
    pub gross: Money,
    /// The discount amount.
    pub discount: Money,
    /// gross − discount, tax included (价税合计).
    pub amount: Money,
    /// The VAT in `amount` (税额).
    pub tax: Money,
    /// amount − tax (不含税金额).
    pub net: Money,
}

/// The totals of a document.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Σ gross.
    pub gross: Money,
    /// Σ discount.
    pub discount: Money,
    /// Σ amount (价税合计).
    pub amount: Money,
    /// Σ tax.
    pub tax: Money,
    /// Σ net.
    pub net: Money,
    /// The largest effective line discount, in basis points (what approval
    /// looks at): see [`Line::effective_discount_bp`].
    pub max_discount_bp: i64,
}

/// A line problem: the line number (from 1), the field and the message.
pub type LineError = (usize, &'static str, String);

/// The discount a line gives, in basis points, against the catalogue list
/// price `list` when it has one: a unit price below the list price counts
/// as discount, combined with the line's `discount_bp` (¥1,000 listed,
/// quoted at ¥950 with 6 % off, is 10.7 % off). Exact, and rounded up so
/// that a discount of 10.001 % is above 10 %; a price at or above the list
/// price after the discount is no discount. Without a list price (a
/// free-text line, or a product listed at ¥0) it is `discount_bp`.
pub fn effective_discount_bp(list: Option<Money>, price: Money, discount_bp: i64) -> i64 {
    let Some(list) = list.filter(|l| l.minor > 0) else {
        return discount_bp;
    };
    let list = i128::from(list.minor);
    // list × (10 000 − d) = price × (10 000 − discount_bp), solved for d.
    let paid = i128::from(price.minor) * i128::from(10_000 - discount_bp);
    let off = list * 10_000 - paid;
    if off <= 0 {
        return 0;
    }
    // Rounded up; `off` ≤ list × 10 000 for a price ≥ 0, so d ≤ 10 000.
    i64::try_from(((off + list - 1) / list).min(10_000)).unwrap_or(10_000)
}

impl Line {
    /// The discount the line gives against its list price, in basis points:
    /// what approval looks at (see [`effective_discount_bp`]).
    pub fn effective_discount_bp(&self) -> i64 {
        effective_discount_bp(self.list_price, self.unit_price, self.discount_bp)
    }
}

/// Why a VAT rate (in basis points) that is not one of [`TAX_RATES`] is
/// refused, the rate and the allowed ones as percentages.
fn tax_rate_refused(tax_rate: i64) -> String {
    format!(
        "{} is not one of the allowed rates: {TAX_RATES_TEXT} (税率须为其中之一)",
        percent(tax_rate)
    )
}

/// Computes one line at `price`; `list_price` is the catalogue product's
/// list price, if the line is a product's.
pub fn compute_line(
    n: usize,
    input: &LineInput,
    price: Money,
    list_price: Option<Money>,
    tax_rate: i64,
) -> Result<Line, LineError> {
    let err = |f: &'static str, m: String| (n, f, m);
    if input.quantity <= 0 {
        return Err(err(
            "quantity",
            format!("{} is not positive", input.quantity),
        ));
    }
    if price.is_negative() {
        return Err(err("unit_price", format!("{price} is negative")));
    }
    if !(0..=10_000).contains(&input.discount_bp) {
        return Err(err(
            "discount",
            format!(
                "{} off is not between 0% and 100% (折扣须在 0% 到 100% 之间)",
                percent(input.discount_bp)
            ),
        ));
    }
    if !TAX_RATES.contains(&tax_rate) {
        return Err(err("tax_rate", tax_rate_refused(tax_rate)));
    }
    let gross = price
        .checked_mul(input.quantity)
        .map_err(|e| err("quantity", e.to_string()))?;
    // The amount the customer pays is what is rounded (四舍五入): ¥3.00 at
    // 12.5 % off is ¥2.63, the discount what is left over.
    let amount = gross
        .apply_rate(10_000 - input.discount_bp, Rounding::HalfUp)
        .map_err(|e| err("discount", e.to_string()))?;
    let discount = gross
        .checked_sub(amount)
        .map_err(|e| err("discount", e.to_string()))?;
    let (net, tax) = amount
        .split_tax_inclusive(tax_rate, Rounding::HalfUp)
        .map_err(|e| err("tax_rate", e.to_string()))?;
    Ok(Line {
        product_id: input.product_id,
        name: crate::validate::single_line(&input.name).trim().to_string(),
        unit: input.unit.clone(),
        quantity: input.quantity,
        unit_price: price,
        discount_bp: input.discount_bp,
        list_price,
        tax_rate,
        gross,
        discount,
        amount,
        tax,
        net,
    })
}

/// Sums lines into totals.
pub fn totals(lines: &[Line]) -> Result<Totals, String> {
    let mut t = Totals::default();
    for l in lines {
        let add = |a: Money, b: Money| a.checked_add(b).map_err(|e| e.to_string());
        t.gross = add(t.gross, l.gross)?;
        t.discount = add(t.discount, l.discount)?;
        t.amount = add(t.amount, l.amount)?;
        t.tax = add(t.tax, l.tax)?;
        t.net = add(t.net, l.net)?;
        t.max_discount_bp = t.max_discount_bp.max(l.effective_discount_bp());
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn input(q: i64, discount_bp: i64) -> LineInput {
        LineInput {
            product_id: None,
            name: "服务器".into(),
            unit: None,
            quantity: q,
            unit_price: None,
            discount_bp,
            tax_rate: None,
        }
    }

    #[test]
    fn line_amounts_are_exact() {
        // 3 × ¥1,130.00 at 10 % off = ¥3,051.00 incl. 13 % VAT ¥351.00.
        let l = compute_line(1, &input(3, 1000), Money::cny(113_000), None, 1300).expect("line");
        assert_eq!(l.gross, Money::cny(339_000));
        assert_eq!(l.discount, Money::cny(33_900));
        assert_eq!(l.amount, Money::cny(305_100));
        assert_eq!(l.tax, Money::cny(35_100));
        assert_eq!(l.net, Money::cny(270_000));
        assert!(compute_line(1, &input(0, 0), Money::cny(1), None, 1300).is_err());
        assert!(compute_line(1, &input(1, 10_001), Money::cny(1), None, 1300).is_err());
        let (n, field, m) =
            compute_line(2, &input(1, 0), Money::cny(1), None, 1700).expect_err("rate");
        assert_eq!((n, field), (2, "tax_rate"));
        assert!(
            m.starts_with("17% is not one of the allowed rates: 13%, 9%, 6%")
                && !m.contains("basis")
                && !m.contains("1700"),
            "{m}"
        );
        let (_, field, m) =
            compute_line(1, &input(1, 10_001), Money::cny(1), None, 1300).expect_err("discount");
        assert_eq!(field, "discount");
        assert!(
            m.starts_with("100.01% off is not between 0% and 100%") && !m.contains("10001"),
            "{m}"
        );
    }

    #[test]
    fn the_amount_is_rounded_half_up_not_the_discount() {
        let amount = |q: i64, fen: i64, bp: i64| {
            let l = compute_line(1, &input(q, bp), Money::cny(fen), None, 1300).expect("line");
            assert_eq!(l.gross.minor - l.discount.minor, l.amount.minor);
            l.amount.minor
        };
        assert_eq!(amount(1, 300, 1250), 263, "¥3.00 at 12.5 % off is ¥2.625");
        assert_eq!(amount(1, 100, 50), 100, "¥1.00 at 0.5 % off is ¥0.995");
        assert_eq!(amount(1, 1, 5000), 1, "half of 1 分 rounds up, not to free");
        assert_eq!(amount(3, 35, 5000), 53, "3 × ¥0.35 at half price is ¥0.525");
        assert_eq!(amount(1, 299, 1250), 262, "¥2.61625 rounds down");
        assert_eq!(amount(7, 100, 10_000), 0, "100 % off is free");
    }

    #[test]
    fn effective_discount_counts_prices_below_list() {
        let list = Some(Money::cny(100_000));
        let d = |price: i64, bp: i64| effective_discount_bp(list, Money::cny(price), bp);
        assert_eq!(d(10_000, 0), 9000, "¥100 for ¥1,000 is 90 % off");
        assert_eq!(d(90_000, 0), 1000);
        assert_eq!(d(89_999, 0), 1001, "10.001 % is above 10 %");
        assert_eq!(d(95_000, 600), 1070, "5 % then 6 % off is 10.7 % off");
        assert_eq!(d(100_000, 1500), 1500);
        assert_eq!(d(120_000, 1000), 0, "above the list price is no discount");
        assert_eq!(d(0, 0), 10_000);
        assert_eq!(effective_discount_bp(None, Money::cny(1), 700), 700);
        assert_eq!(
            effective_discount_bp(Some(Money::cny(0)), Money::cny(1), 700),
            700
        );
        let l = compute_line(1, &input(2, 0), Money::cny(10_000), list, 1300).expect("line");
        assert_eq!(l.effective_discount_bp(), 9000);
        assert_eq!(totals(&[l]).expect("totals").max_discount_bp, 9000);
    }

    proptest! {
        /// Totals are the sums of the lines and every amount splits into
        /// net and tax to the fen.
        #[test]
        fn totals_reconcile_with_lines(
            lines in proptest::collection::vec(
                (1i64..10_000, 0i64..100_000_000, 0i64..=10_000, 0usize..TAX_RATES.len()),
                0..20,
            )
        ) {
            let computed: Vec<Line> = lines
                .iter()
                .enumerate()
                .map(|(i, (q, p, d, r))| compute_line(i + 1, &input(*q, *d), Money::cny(*p), None, TAX_RATES[*r]))
                .collect::<Result<_, _>>()
                .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            let t = totals(&computed).map_err(TestCaseError::fail)?;
            let sum = |f: fn(&Line) -> i64| computed.iter().map(f).sum::<i64>();
            prop_assert_eq!(t.amount.minor, sum(|l| l.amount.minor));
            prop_assert_eq!(t.tax.minor + t.net.minor, t.amount.minor);
            prop_assert_eq!(t.gross.minor - t.discount.minor, t.amount.minor);
            for l in &computed {
                prop_assert_eq!(l.net.minor + l.tax.minor, l.amount.minor);
                prop_assert!(l.discount.minor <= l.gross.minor);
                prop_assert!(l.tax.minor >= 0 && l.net.minor >= 0);
            }
        }
    }
}
