//! Pinyin search keys, so that `hwjs` or `huaweiji` finds 华为技术有限公司.
//!
//! [`search_keys`] turns a name into a space-separated string of lowercase
//! keys, stored next to the name; [`normalise_query`] prepares what the user
//! typed. A record matches when the normalised query is a plain substring of
//! its keys (`keys LIKE '%' || query || '%'`): the query has no spaces, so
//! it never matches across two keys.

use ::pinyin::ToPinyinMulti;

/// At most this many full-pinyin keys, and as many initials keys, are made
/// by enumerating every combination of readings.
pub const MAX_COMBINATIONS: usize = 16;

/// Queries spanning up to this many characters (syllables) match under
/// every combination of readings, however long the name.
pub const GUARANTEED_SYLLABLES: usize = 4;

/// At most this many readings of one character are used.
const MAX_READINGS: usize = 4;

/// One searchable position of a name: a Chinese character with its
/// readings, or a run of letters and digits kept as typed.
struct Position {
    /// Full-pinyin alternatives (lowercase, toneless, `ü` as `v` or `u`).
    full: Vec<String>,
    /// Initial-letter alternatives (the whole run for non-Chinese text).
    initials: Vec<String>,
}

fn push_unique(list: &mut Vec<String>, s: String) {
    if !list.contains(&s) {
        list.push(s);
    }
}

/// The toneless readings of a character: first as the data lists them
/// (commonest first) with `ü` written `v`, then the `u` spellings of the
/// readings that have `ü`; at most [`MAX_READINGS`].
fn readings(c: char) -> Option<Vec<String>> {
    let multi = c.to_pinyin_multi()?;
    let mut out = Vec::new();
    for p in multi {
        push_unique(&mut out, p.plain().replace('ü', "v"));
    }
    for p in multi {
        if p.plain().contains('ü') {
            push_unique(&mut out, p.plain().replace('ü', "u"));
        }
    }
    out.truncate(MAX_READINGS);
    (!out.is_empty()).then_some(out)
}

fn positions(name: &str) -> Vec<Position> {
    let mut out = Vec::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<Position>| {
        if !word.is_empty() {
            let w = std::mem::take(word);
            out.push(Position {
                full: vec![w.clone()],
                initials: vec![w],
            });
        }
    };
    for c in name.chars().map(crate::validate::halfwidth) {
        if c.is_ascii_alphanumeric() {
            word.push(c.to_ascii_lowercase());
        } else if let Some(full) = readings(c) {
            flush(&mut word, &mut out);
            let mut initials = Vec::new();
            for r in &full {
                push_unique(&mut initials, r.chars().take(1).collect());
            }
            out.push(Position { full, initials });
        } else if c.is_alphanumeric() {
            // Letters of other scripts, and Han characters without data.
            word.extend(c.to_lowercase());
        } else {
            flush(&mut word, &mut out);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// The number of combinations, saturating.
fn product(alts: &[&[String]]) -> usize {
    alts.iter().fold(1usize, |p, a| p.saturating_mul(a.len()))
}

/// Every concatenation choosing one alternative per position, in order
/// (the first alternatives' combination first).
fn combinations(alts: &[&[String]]) -> Vec<String> {
    let mut out = vec![String::new()];
    for a in alts {
        out = out
            .iter()
            .flat_map(|prefix| a.iter().map(move |s| format!("{prefix}{s}")))
            .collect();
    }
    out
}

/// Keys covering `alts` (see [`search_keys`] for the scheme).
fn keys_for(alts: &[&[String]]) -> Vec<String> {
    if alts.is_empty() {
        return Vec::new();
    }
    if product(alts) <= MAX_COMBINATIONS {
        return combinations(alts);
    }
    let colour = colour_positions(alts);
    // Each colour is a digit ranging over the most readings of its positions.
    let mut radix = [1usize; GUARANTEED_SYLLABLES];
    for (a, c) in alts.iter().zip(&colour) {
        if let Some(c) = c {
            radix[*c] = radix[*c].max(a.len());
        }
    }
    let rows: usize = radix.iter().product();
    (0..rows)
        .map(|row| {
            let mut digits = [0usize; GUARANTEED_SYLLABLES];
            let mut rest = row;
            for (d, r) in digits.iter_mut().zip(radix) {
                *d = rest % r;
                rest /= r;
            }
            alts.iter()
                .zip(&colour)
                .filter_map(|(a, c)| {
                    let choice = c.map_or(0, |c| digits[c] % a.len());
                    a.get(choice).map(String::as_str)
                })
                .collect()
        })
        .collect()
}

/// Gives every position with several alternatives one of
/// [`GUARANTEED_SYLLABLES`] colours so that no two such positions less than
/// [`GUARANTEED_SYLLABLES`] apart share one, choosing greedily the colour
/// that grows the number of rows least (reusing a colour whose positions
/// have at least as many alternatives is free). Four colours always
/// suffice: at most three earlier positions are that close.
fn colour_positions(alts: &[&[String]]) -> Vec<Option<usize>> {
    let mut colour: Vec<Option<usize>> = vec![None; alts.len()];
    let mut max = [1usize; GUARANTEED_SYLLABLES];
    for (i, a) in alts.iter().enumerate() {
        if a.len() < 2 {
            continue;
        }
        let near = &colour[i.saturating_sub(GUARANTEED_SYLLABLES - 1)..i];
        let best = (0..GUARANTEED_SYLLABLES)
            .filter(|c| !near.contains(&Some(*c)))
            .min_by_key(|c| a.len().max(max[*c]) * 1000 / max[*c]);
        if let Some(c) = best {
            colour[i] = Some(c);
            max[c] = max[c].max(a.len());
        }
    }
    colour
}

/// Drops duplicates and keys contained in another key (a substring of a
/// substring still matches).
fn prune(keys: Vec<String>) -> Vec<String> {
    let mut unique: Vec<String> = Vec::with_capacity(keys.len());
    for k in keys {
        if !k.is_empty() && !unique.contains(&k) {
            unique.push(k);
        }
    }
    let keep: Vec<bool> = unique
        .iter()
        .map(|k| {
            !unique
                .iter()
                .any(|o| o.len() > k.len() && o.contains(k.as_str()))
        })
        .collect();
    unique
        .into_iter()
        .zip(keep)
        .filter_map(|(k, keep)| keep.then_some(k))
        .collect()
}

/// The pinyin search keys of a name: lowercase keys separated by single
/// spaces, such that the [`normalise_query`] of a search is a substring of
/// the keys when it spells part of the name in full pinyin or in initials.
///
/// - `华为技术有限公司` → `huaweijishuyouxiangongsi … hwjsyxgs …`, so
///   `huaweijishu`, `jishu`, `hwjs` and `yxgs` all match.
/// - Letters and digits are kept, lowercased, as one unit in both forms:
///   `IBM中国` matches `ibm`, `ibmzhongguo` and `ibmzg`. Full-width letters
///   count as letters; punctuation and spaces are dropped.
/// - `ü` is written both `v` and `u` (吕 → `lv`, `lu`); tones are ignored.
///
/// **Several readings.** Every reading of a heteronym must match, because
/// the data cannot tell which one a name uses: 曾 is `zeng` and `ceng`,
/// 重庆 `chongqing` and `zhongqing`, 长沙 `changsha` and `zhangsha`, 银行
/// `yinhang` and `yinxing`. When the readings of the whole name combine in
/// at most [`MAX_COMBINATIONS`] ways, every combination is a key, so any
/// query with one consistent reading per character matches, however long.
///
/// When there are more combinations (the data also lists rare readings:
/// 有 wei, 限 wen, 司 ci, so 华为技术有限公司 alone has 32), the keys form a
/// covering array over runs of [`GUARANTEED_SYLLABLES`] (4) characters:
/// each position with several readings gets one of 4 "colours" such that
/// positions less than 4 apart differ in colour; each key is the whole name
/// with one digit per colour picking the reading of every position of that
/// colour (digit modulo its number of readings), and the keys run through
/// all digit combinations. Any 4 consecutive characters have distinct
/// colours, so **every query spanning at most 4 characters matches under
/// every combination of readings**, while longer queries match in the
/// commonest readings (the first key) and in many mixed ones. Colours are
/// chosen greedily to keep the number of keys near its minimum, the
/// largest number of reading combinations of any 4 consecutive characters:
/// 16 for 华为技术有限公司, 12 for 重庆长安汽车股份有限公司. Initials are
/// keyed the same way. At most 4 readings per character are used (the data
/// lists common readings first), so even a pathological name gets at most
/// 4⁴ = 256 keys of each kind. Keys contained in other keys are dropped.
pub fn search_keys(name: &str) -> String {
    let pos = positions(name);
    let full: Vec<&[String]> = pos.iter().map(|p| p.full.as_slice()).collect();
    let initials: Vec<&[String]> = pos.iter().map(|p| p.initials.as_slice()).collect();
    let mut keys = keys_for(&full);
    keys.extend(keys_for(&initials));
    prune(keys).join(" ")
}

/// Normalises a search query for matching against [`search_keys`]:
/// full-width letters mapped to ASCII, lowercased, whitespace and
/// apostrophes (syllable separators such as `xi'an`) removed, `ü` written
/// `v`.
pub fn normalise_query(q: &str) -> String {
    q.chars()
        .map(crate::validate::halfwidth)
        .flat_map(char::to_lowercase)
        .filter(|c| !c.is_whitespace() && !matches!(c, '\'' | '’' | '‘' | '`'))
        .map(|c| if c == 'ü' { 'v' } else { c })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn finds(name: &str, query: &str) -> bool {
        let q = normalise_query(query);
        !q.is_empty() && search_keys(name).contains(&q)
    }

    fn key_count(name: &str) -> usize {
        let k = search_keys(name);
        if k.is_empty() {
            0
        } else {
            k.split(' ').count()
        }
    }

    #[test]
    fn company_name() {
        let name = "华为技术有限公司";
        let keys = search_keys(name);
        assert!(
            keys.split(' ').any(|k| k == "huaweijishuyouxiangongsi"),
            "{keys}"
        );
        assert!(keys.split(' ').any(|k| k == "hwjsyxgs"), "{keys}");
        for q in [
            "huaweijishu",
            "hwjs",
            "HWJS",
            "hua wei",
            "jishu",
            "yxgs",
            "weiji",
            "huaweijishuyouxiangongsi",
        ] {
            assert!(finds(name, q), "{q} in {keys}");
        }
        for q in ["huaweijs", "xiaomi", "hwjx"] {
            assert!(!finds(name, q), "{q} in {keys}");
        }
    }

    #[test]
    fn heteronyms() {
        for q in ["zeng", "ceng", "z", "c"] {
            assert!(finds("曾", q), "{q}");
        }
        for q in ["chongqing", "zhongqing", "cq", "zq"] {
            assert!(finds("重庆", q), "{q}");
        }
        for q in ["changsha", "zhangsha", "cs", "zs"] {
            assert!(finds("长沙", q), "{q}");
        }
        for q in [
            "zhongguoyinhang",
            "zhongguoyinxing",
            "yinhang",
            "zgyh",
            "zgyx",
        ] {
            assert!(finds("中国银行", q), "{q}");
        }
        for q in ["zengguofan", "cengguofan", "zgf", "cgf"] {
            assert!(finds("曾国藩", q), "{q}");
        }
        for q in ["lvbu", "lubu", "lb"] {
            assert!(finds("吕布", q), "{q}");
        }
        assert!(finds("吕布", "lü bu"));
        assert!(finds("西安", "xi'an"));
    }

    #[test]
    fn mixed_ascii() {
        let name = "IBM中国";
        for q in ["ibm", "IBM", "ibmzhongguo", "ibmzg", "zhongguo", "zg"] {
            assert!(finds(name, q), "{q}: {}", search_keys(name));
        }
        assert!(finds("58同城", "58tc"));
        assert!(finds("58同城", "58tongcheng"));
        assert!(finds("ＡＢＣ（中国）有限公司", "abczhongguo"));
        assert!(finds("Huawei Technologies Co., Ltd.", "huaweitechnologies"));
        assert!(finds("Café 巴黎", "cafébali"));
        assert_eq!(search_keys("IBM"), "ibm");
    }

    #[test]
    fn empty_and_punctuation() {
        assert_eq!(search_keys(""), "");
        assert_eq!(search_keys("  ，。（）- "), "");
        assert_eq!(normalise_query("  "), "");
        assert_eq!(normalise_query(" Hua Wei'ji Ｓｈｕ "), "huaweijishu");
    }

    #[test]
    fn ordinary_names_stay_small() {
        for name in [
            "华为技术有限公司",
            "中国工商银行股份有限公司",
            "重庆长安汽车股份有限公司",
            "阿里巴巴（中国）有限公司",
            "长沙银行",
            "曾小贤",
        ] {
            let n = key_count(name);
            assert!(
                n <= 2 * MAX_COMBINATIONS,
                "{name}: {n} keys: {}",
                search_keys(name)
            );
        }
    }

    /// Every combination of readings of every window of up to 4 positions.
    fn assert_windows_covered(name: &str) {
        let keys = search_keys(name);
        let pos = positions(name);
        for kind in 0..2 {
            let alts: Vec<&[String]> = pos
                .iter()
                .map(|p| {
                    if kind == 0 {
                        p.full.as_slice()
                    } else {
                        p.initials.as_slice()
                    }
                })
                .collect();
            for len in 1..=GUARANTEED_SYLLABLES.min(alts.len()) {
                for start in 0..=alts.len() - len {
                    for q in combinations(&alts[start..start + len]) {
                        assert!(keys.contains(&q), "{name}: {q} not in {keys}");
                    }
                }
            }
        }
    }

    #[test]
    fn long_name_bounded_and_covered() {
        let name = "重庆长沙曾行重庆长沙曾行乐调还都传会差重庆长沙曾行";
        assert_windows_covered(name);
        let n = key_count(name);
        // Nearly every character here is a heteronym.
        assert!(n <= 2 * MAX_READINGS.pow(4), "{n} keys");
        // The commonest reading of the whole name is one key.
        let full: String = positions(name).iter().map(|p| p.full[0].clone()).collect();
        assert!(search_keys(name).split(' ').any(|k| k == full));
    }

    #[test]
    fn long_ordinary_name() {
        // Many heteronyms (市 shi/fu, 区 qu/ou, 大 da/dai/tai, 号 hao/xiao,
        // 技 ji/qi, 有 you/wei, …), too many to enumerate.
        let name = "北京市海淀区中关村大街一号科技发展有限公司";
        assert_windows_covered(name);
        let n = key_count(name);
        assert!(
            n <= 2 * 2 * MAX_COMBINATIONS,
            "{n} keys: {}",
            search_keys(name)
        );
        assert!(finds(
            name,
            "beijingshihaidianquzhongguancundajieyihaokejifazhanyouxiangongsi"
        ));
        assert!(finds(name, "bjshdqzgcdjyhkjfzyxgs"));
    }

    proptest! {
        #[test]
        fn windows_always_covered(
            chars in proptest::collection::vec(
                proptest::sample::select("重庆长沙曾行乐调还都传会差华为技术银吕女AB1".chars().collect::<Vec<_>>()),
                0..14,
            )
        ) {
            let name: String = chars.into_iter().collect();
            assert_windows_covered(&name);
        }

        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let keys = search_keys(&s);
            prop_assert!(!keys.starts_with(' ') && !keys.ends_with(' ') && !keys.contains("  "));
            prop_assert_eq!(normalise_query(&normalise_query(&s)), normalise_query(&s));
        }
    }
}
