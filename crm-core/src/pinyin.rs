//! Pinyin search keys, so that `hwjs` or `huaweiji` finds 华为技术有限公司.
//!
//! [`search_keys`] turns a name into a space-separated string of lowercase
//! keys, stored next to the name; [`normalise_query`] prepares what the user
//! typed. A record matches when the normalised query is a plain substring of
//! its keys (`keys LIKE '%' || query || '%'`): the query has no spaces, so
//! it never matches across two keys. [`sort_key`] makes the key a list
//! sorted by name is ordered by (pinyin order, letter case aside).
//!
//! **Which readings.** A character is keyed under its commonest reading
//! (the first the pinyin data gives), except the real-world heteronyms of
//! company, person and place names listed in [`HETERONYMS`] (长 chang/zhang,
//! 重 zhong/chong, 行 xing/hang, 曾 zeng/ceng, 乐 le/yue, 单 dan/shan …),
//! which are keyed under every reading listed there. Rare dictionary
//! readings (有 wei, 限 wen, 司 ci, 术 zhu, 份 bin …) are not keyed: they
//! multiplied the keys of nearly every company name while nobody searches
//! for them. Keys are computed when a record is written: rows written under
//! an earlier rule keep their keys until they are rewritten or recomputed.

use ::pinyin::ToPinyin;

/// At most this many full-pinyin keys, and as many initials keys, are made
/// by enumerating every combination of readings.
pub const MAX_COMBINATIONS: usize = 16;

/// Queries spanning up to this many characters (syllables) match under
/// every combination of readings, however long the name.
pub const GUARANTEED_SYLLABLES: usize = 4;

/// At most this many readings of one character are used.
const MAX_READINGS: usize = 4;

/// The characters keyed under several readings, with their toneless
/// readings (commonest in names first), sorted by character: heteronyms
/// whose readings both occur in the names of companies, people or places
/// (surnames such as 曾 Zeng, 单 Shan, 仇 Qiu, 朴 Piao, 查 Zha, 解 Xie, 区 Ou,
/// 翟 Zhai, 缪 Miao, 薄 Bo; places such as 重庆, 长沙, 厦门, 乐山, 六安, 蚌埠,
/// 番禺, 荥阳, 黄埔, 浒墅关, 黄陂 Huangpi, 珲春 Hunchun, 洪洞 Hongtong,
/// 铅山 Yanshan, 泊头 Botou; words such as 银行, 会计, 宝藏, 朝阳, 瑜伽 yujia,
/// 伽马 gama, 薄荷 bohe, 停泊 tingbo). There is no word list: a character
/// here is keyed under each of its readings wherever it occurs, so 瑜伽 is
/// found as `yujia` (and also keyed `yuga`). Every other character is keyed
/// under its commonest reading only. Every reading here
/// is one the pinyin data also lists for the character.
pub const HETERONYMS: &[(char, &[&str])] = &[
    ('乐', &["le", "yue"]),
    ('仇', &["chou", "qiu"]),
    ('会', &["hui", "kuai"]),
    ('传', &["chuan", "zhuan"]),
    ('伽', &["jia", "ga", "qie"]),
    ('六', &["liu", "lu"]),
    ('区', &["qu", "ou"]),
    ('单', &["dan", "shan"]),
    ('厦', &["sha", "xia"]),
    ('参', &["can", "shen"]),
    ('召', &["zhao", "shao"]),
    ('圩', &["wei", "xu"]),
    ('埔', &["pu", "bu"]),
    ('堡', &["bao", "bu", "pu"]),
    ('尉', &["wei", "yu"]),
    ('差', &["cha", "chai"]),
    ('弄', &["nong", "long"]),
    ('晟', &["sheng", "cheng"]),
    ('曾', &["zeng", "ceng"]),
    ('朝', &["chao", "zhao"]),
    ('朴', &["pu", "piao"]),
    ('枞', &["cong", "zong"]),
    ('柏', &["bai", "bo"]),
    ('查', &["cha", "zha"]),
    ('泊', &["bo", "po"]),
    ('洗', &["xi", "xian"]),
    ('洞', &["dong", "tong"]),
    ('浒', &["hu", "xu"]),
    ('浚', &["jun", "xun"]),
    ('涌', &["yong", "chong"]),
    ('涡', &["wo", "guo"]),
    ('炅', &["jiong", "gui"]),
    ('牟', &["mou", "mu"]),
    ('玟', &["wen", "min"]),
    ('珲', &["hui", "hun"]),
    ('番', &["fan", "pan"]),
    ('盖', &["gai", "ge"]),
    ('种', &["zhong", "chong"]),
    ('秘', &["mi", "bi"]),
    ('缪', &["miao", "mou", "miu"]),
    ('翟', &["zhai", "di"]),
    ('茜', &["qian", "xi"]),
    ('荥', &["xing", "ying"]),
    ('莘', &["shen", "xin"]),
    ('蔚', &["wei", "yu"]),
    ('薄', &["bao", "bo"]),
    ('藏', &["cang", "zang"]),
    ('蚌', &["bang", "beng"]),
    ('行', &["xing", "hang"]),
    ('覃', &["qin", "tan"]),
    ('解', &["jie", "xie"]),
    ('调', &["diao", "tiao"]),
    ('还', &["hai", "huan"]),
    ('那', &["na", "nuo"]),
    ('都', &["du", "dou"]),
    ('重', &["zhong", "chong"]),
    ('铅', &["qian", "yan"]),
    ('长', &["chang", "zhang"]),
    ('阿', &["a", "e"]),
    ('陂', &["bei", "pi", "po"]),
    ('靓', &["jing", "liang"]),
];

/// Up to [`MAX_READINGS`] distinct alternatives of one position, inline.
#[derive(Clone, Copy, Debug, Default)]
struct Alts<'a> {
    items: [&'a str; MAX_READINGS],
    len: usize,
}

impl<'a> Alts<'a> {
    fn one(s: &'a str) -> Self {
        let mut a = Alts::default();
        a.push_unique(s);
        a
    }

    /// Appends `s` unless it is already there or the list is full.
    fn push_unique(&mut self, s: &'a str) {
        if self.len < MAX_READINGS && !self.as_slice().contains(&s) {
            self.items[self.len] = s;
            self.len += 1;
        }
    }

    fn as_slice(&self) -> &[&'a str] {
        &self.items[..self.len]
    }
}

/// A cheap first test of membership in [`HETERONYMS`]: bit `c mod 256`
/// is set for every character there.
const HETERONYM_FILTER: [u64; 4] = {
    let mut bits = [0u64; 4];
    let mut i = 0;
    while i < HETERONYMS.len() {
        let c = HETERONYMS[i].0 as u32;
        bits[((c >> 6) & 3) as usize] |= 1 << (c & 63);
        i += 1;
    }
    bits
};

/// The readings of [`HETERONYMS`] for `c`, if it is there.
fn heteronym(c: char) -> Option<&'static [&'static str]> {
    let c32 = c as u32;
    if HETERONYM_FILTER[((c32 >> 6) & 3) as usize] & (1 << (c32 & 63)) == 0 {
        return None;
    }
    HETERONYMS
        .binary_search_by_key(&c, |(h, _)| *h)
        .ok()
        .map(|i| HETERONYMS[i].1)
}

/// The `v` and `u` spellings of the readings with `ü` (the only ones the
/// data has in toneless form).
fn umlaut(r: &str) -> Option<&'static [&'static str]> {
    match r {
        "lü" => Some(&["lv", "lu"]),
        "lüe" => Some(&["lve", "lue"]),
        "nü" => Some(&["nv", "nu"]),
        "nüe" => Some(&["nve", "nue"]),
        _ => None,
    }
}

/// The first letter of a reading.
fn initial(r: &str) -> &str {
    &r[..r.chars().next().map_or(0, char::len_utf8)]
}

/// One searchable position of a name: a Chinese character with its
/// readings, or a run of letters and digits kept as typed.
#[derive(Clone, Copy, Debug)]
enum Position {
    /// A character with one reading (lowercase, toneless).
    One(&'static str),
    /// A character with several readings: those of [`HETERONYMS`], or the
    /// `v` and `u` spellings of a reading with `ü`.
    Many(&'static [&'static str]),
    /// A run of letters and digits: its byte range in the buffer of runs,
    /// the only alternative in both forms.
    Word(usize, usize),
}

/// The position of a character with pinyin data: its commonest reading,
/// or its readings in [`HETERONYMS`], with `ü` written both `v` and `u`.
fn reading(c: char) -> Option<Position> {
    if let Some(r) = heteronym(c) {
        return Some(Position::Many(r));
    }
    let r = c.to_pinyin()?.plain();
    Some(umlaut(r).map_or(Position::One(r), Position::Many))
}

impl Position {
    /// The full-pinyin or the initials alternatives (at most
    /// [`MAX_READINGS`]).
    fn alts<'a>(&self, words: &'a str, initials: bool) -> Alts<'a> {
        let pick = |r: &'a str| if initials { initial(r) } else { r };
        match *self {
            Position::One(r) => Alts::one(pick(r)),
            Position::Many(rs) => {
                let mut a = Alts::default();
                for r in rs {
                    a.push_unique(pick(r));
                }
                a
            }
            Position::Word(a, b) => Alts::one(&words[a..b]),
        }
    }

    /// The first full-pinyin or initials alternative.
    fn first<'a>(&self, words: &'a str, initials: bool) -> &'a str {
        let r = match *self {
            Position::One(r) => r,
            Position::Many(rs) => rs.first().copied().unwrap_or_default(),
            Position::Word(a, b) => return &words[a..b],
        };
        if initials { initial(r) } else { r }
    }
}

/// Splits a name into positions, writing its runs of letters and digits,
/// lowercased, into `words`.
fn positions(name: &str, words: &mut String) -> Vec<Position> {
    let mut out = Vec::with_capacity(name.len() / 3 + 1);
    let mut start: Option<usize> = None;
    let flush = |start: &mut Option<usize>, words: &String, out: &mut Vec<Position>| {
        if let Some(s) = start.take() {
            out.push(Position::Word(s, words.len()));
        }
    };
    for c in name.chars().map(crate::validate::halfwidth) {
        if c.is_ascii_alphanumeric() {
            start.get_or_insert(words.len());
            words.push(c.to_ascii_lowercase());
        } else if let Some(p) = reading(c) {
            flush(&mut start, words, &mut out);
            out.push(p);
        } else if c.is_alphanumeric() {
            // Letters of other scripts (accents dropped: `Müller` is
            // keyed `muller`), and Han characters without data.
            start.get_or_insert(words.len());
            for l in c.to_lowercase() {
                push_folded(words, l);
            }
        } else {
            flush(&mut start, words, &mut out);
        }
    }
    flush(&mut start, words, &mut out);
    out
}

/// The number of combinations, saturating.
fn product(alts: &[Alts<'_>]) -> usize {
    alts.iter().fold(1usize, |p, a| p.saturating_mul(a.len))
}

/// Keys written into one string, separated by single spaces, with the byte
/// range of each.
#[derive(Default)]
struct Keys {
    text: String,
    spans: Vec<(usize, usize)>,
}

impl Keys {
    fn push<'s>(&mut self, parts: impl Iterator<Item = &'s str>) {
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        let start = self.text.len();
        for p in parts {
            self.text.push_str(p);
        }
        self.spans.push((start, self.text.len()));
    }

    fn key(&self, i: usize) -> &[u8] {
        let (a, b) = self.spans[i];
        &self.text.as_bytes()[a..b]
    }
}

/// Writes the keys covering `alts` (see [`search_keys`] for the scheme).
/// Each position with several alternatives gets a slot (a digit); the keys
/// run through every combination of digits, the first key being the one of
/// all first alternatives. When the positions combine in at most
/// [`MAX_COMBINATIONS`] ways each has a slot of its own, so every
/// combination is a key; otherwise slots are the colours of
/// [`colour_positions`].
fn keys_for(alts: &[Alts<'_>], keys: &mut Keys) {
    if alts.is_empty() {
        return;
    }
    let slots = if product(alts) <= MAX_COMBINATIONS {
        // At most 4 positions have several alternatives here (2⁵ > 16).
        let mut next = 0;
        alts.iter()
            .map(|a| {
                (a.len > 1).then(|| {
                    next += 1;
                    next - 1
                })
            })
            .collect()
    } else {
        colour_positions(alts)
    };
    // Each slot is a digit ranging over the most alternatives of its
    // positions.
    let mut radix = [1usize; GUARANTEED_SYLLABLES];
    for (a, s) in alts.iter().zip(&slots) {
        if let Some(s) = s {
            radix[*s] = radix[*s].max(a.len);
        }
    }
    let rows: usize = radix.iter().product();
    let longest: usize = alts
        .iter()
        .map(|a| a.as_slice().iter().map(|s| s.len()).max().unwrap_or(0))
        .sum();
    keys.text.reserve(rows * (longest + 1));
    keys.spans.reserve(rows);
    // The digits run through every combination, the first one fastest.
    let mut digits = [0usize; GUARANTEED_SYLLABLES];
    for _ in 0..rows {
        keys.push(alts.iter().zip(&slots).map(|(a, s)| match s {
            None => a.items[0],
            Some(s) => {
                let d = digits[*s];
                a.items[if d < a.len { d } else { d % a.len }]
            }
        }));
        for (d, r) in digits.iter_mut().zip(radix) {
            *d += 1;
            if *d < r {
                break;
            }
            *d = 0;
        }
    }
}

/// Gives every position with several alternatives one of
/// [`GUARANTEED_SYLLABLES`] colours so that no two such positions less than
/// [`GUARANTEED_SYLLABLES`] apart share one, choosing greedily the colour
/// that grows the number of rows least (reusing a colour whose positions
/// have at least as many alternatives is free). Four colours always
/// suffice: at most three earlier positions are that close.
fn colour_positions(alts: &[Alts<'_>]) -> Vec<Option<usize>> {
    let mut colour: Vec<Option<usize>> = vec![None; alts.len()];
    let mut max = [1usize; GUARANTEED_SYLLABLES];
    for (i, a) in alts.iter().enumerate() {
        if a.len < 2 {
            continue;
        }
        let near = &colour[i.saturating_sub(GUARANTEED_SYLLABLES - 1)..i];
        let best = (0..GUARANTEED_SYLLABLES)
            .filter(|c| !near.contains(&Some(*c)))
            .min_by_key(|c| a.len.max(max[*c]) * 1000 / max[*c]);
        if let Some(c) = best {
            colour[i] = Some(c);
            max[c] = max[c].max(a.len);
        }
    }
    colour
}

/// Whether `needle` occurs in `hay` (both short: a plain scan beats
/// setting up a substring searcher).
fn occurs(hay: &[u8], needle: &[u8]) -> bool {
    match (needle.first(), needle.last()) {
        (Some(&first), Some(&last)) => hay
            .windows(needle.len())
            .any(|w| w[0] == first && w[w.len() - 1] == last && w == needle),
        _ => true,
    }
}

/// The keys without duplicates and without keys contained in another key
/// (a substring of a substring still matches), joined by single spaces.
fn prune(keys: Keys) -> String {
    let n = keys.spans.len();
    let keep = |i: usize| {
        let k = keys.key(i);
        !(0..i).any(|j| keys.key(j) == k)
            && !(0..n).any(|j| {
                let o = keys.key(j);
                o.len() > k.len() && occurs(o, k)
            })
    };
    let kept: Vec<bool> = (0..n).map(keep).collect();
    if kept.iter().all(|k| *k) {
        return keys.text;
    }
    let mut out = String::with_capacity(keys.text.len());
    for (i, (a, b)) in keys.spans.iter().enumerate() {
        if kept[i] {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&keys.text[*a..*b]);
        }
    }
    out
}

/// The pinyin search keys of a name: lowercase keys separated by single
/// spaces, such that the [`normalise_query`] of a search is a substring of
/// the keys when it spells part of the name in full pinyin or in initials.
///
/// - `华为技术有限公司` → `huaweijishuyouxiangongsi hwjsyxgs`, so
///   `huaweijishu`, `jishu`, `hwjs` and `yxgs` all match.
/// - Letters and digits are kept, lowercased, as one unit in both forms:
///   `IBM中国` matches `ibm`, `ibmzhongguo` and `ibmzg`. Full-width letters
///   count as letters; punctuation and spaces are dropped. Latin letters
///   lose their accents (`Müller` → `muller`, `Société` → `societe`), so
///   that a search finds them whatever the case and with or without
///   accents.
/// - `ü` is written both `v` and `u` (吕 → `lv`, `lu`); tones are ignored.
///
/// **Several readings.** A character is keyed under its commonest reading,
/// and the heteronyms of [`HETERONYMS`] under each of their readings,
/// because the data cannot tell which one a name uses: 曾 is `zeng` and
/// `ceng`, 重庆 `chongqing` and `zhongqing`, 长沙 `changsha` and
/// `zhangsha`, 银行 `yinhang` and `yinxing`. When the readings of the whole
/// name combine in at most [`MAX_COMBINATIONS`] ways, every combination is
/// a key, so any query with one consistent reading per character matches,
/// however long.
///
/// When there are more combinations (a long name full of heteronyms), the
/// keys form a covering array over runs of [`GUARANTEED_SYLLABLES`] (4)
/// characters: each position with several readings gets one of 4
/// "colours" such that positions less than 4 apart differ in colour; each
/// key is the whole name with one digit per colour picking the reading of
/// every position of that colour (digit modulo its number of readings),
/// and the keys run through all digit combinations. Any 4 consecutive
/// characters have distinct colours, so **every query spanning at most 4
/// characters matches under every combination of readings**, while longer
/// queries match in the commonest readings (the first key) and in many
/// mixed ones. Colours are chosen greedily to keep the number of keys near
/// its minimum, the largest number of reading combinations of any 4
/// consecutive characters. Initials are keyed the same way. At most 4
/// readings per character are used, so even a pathological name gets at
/// most 4⁴ = 256 keys of each kind. Keys contained in other keys are
/// dropped.
pub fn search_keys(name: &str) -> String {
    let mut words = String::new();
    let pos = positions(name, &mut words);
    if pos.is_empty() {
        return String::new();
    }
    if !pos.iter().any(|p| matches!(p, Position::Many(_))) {
        // One reading per position (most names): one key of each kind.
        let len = |initials| {
            pos.iter()
                .map(|p| p.first(&words, initials).len())
                .sum::<usize>()
        };
        let mut out = String::with_capacity(len(false) + 1 + len(true));
        for p in &pos {
            out.push_str(p.first(&words, false));
        }
        let split = out.len();
        out.push(' ');
        for p in &pos {
            out.push_str(p.first(&words, true));
        }
        // The initials are never longer: drop them when the full key holds
        // them (a name of letters only).
        if occurs(&out.as_bytes()[..split], &out.as_bytes()[split + 1..]) {
            out.truncate(split);
        }
        return out;
    }
    all_keys(&pos, &words)
}

/// The keys of [`search_keys`] made the general way: every key of both
/// kinds, then pruned.
fn all_keys(pos: &[Position], words: &str) -> String {
    let mut keys = Keys::default();
    for initials in [false, true] {
        let alts: Vec<Alts<'_>> = pos.iter().map(|p| p.alts(words, initials)).collect();
        keys_for(&alts, &mut keys);
    }
    prune(keys)
}

/// Normalises a search query for matching against [`search_keys`]:
/// full-width letters mapped to ASCII, lowercased, accents and tone marks
/// dropped as the keys drop them (`MÜLLER` → `muller`, `lü` → `lu`, which
/// 吕 is keyed under beside `lv`; `ǚ` → `v`), whitespace and apostrophes
/// (syllable separators such as `xi'an`) removed.
pub fn normalise_query(q: &str) -> String {
    let mut out = String::with_capacity(q.len());
    for c in q
        .chars()
        .map(crate::validate::halfwidth)
        .flat_map(char::to_lowercase)
        .filter(|c| !c.is_whitespace() && !matches!(c, '\'' | '’' | '‘' | '`'))
    {
        push_folded(&mut out, c);
    }
    out
}

/// Pushes a lowercase letter as keys and queries spell it: accents and
/// tone marks dropped ([`unaccented`]), the ligatures and sharp s written
/// out (`ß` → `ss`, `æ` → `ae`, `œ` → `oe`), combining marks left out (the
/// dot of `İ` lowercased). Company name keys fold letters the same way
/// ([`crate::validate::company_name_key`]).
pub(crate) fn push_folded(out: &mut String, c: char) {
    match c {
        'ß' => out.push_str("ss"),
        'æ' => out.push_str("ae"),
        'œ' => out.push_str("oe"),
        '\u{300}'..='\u{36f}' => {}
        c => out.push(unaccented(c)),
    }
}

/// Opens a Chinese character's syllable in a [`sort_key`]: above every
/// ASCII letter, digit and punctuation mark, so that letters and digits
/// sort before Chinese characters, as Excel and WPS sort them.
pub const SORT_HAN: char = '~';

/// Closes a Chinese character's syllable in a [`sort_key`]: below every
/// letter, so that a syllable sorts before the longer ones it begins
/// (西安 `xi an` before 先 `xian`, 李 `li` before 连 `lian`).
pub const SORT_SYLLABLE_END: char = ' ';

/// Separates a [`sort_key`]'s readings from the text itself: below every
/// character a key's readings hold, so that a name sorts before the longer
/// names it begins (张 before 张三).
pub const SORT_TIE: char = '\u{1}';

/// The commonest toneless reading of a character, as the first search key
/// spells it (`ü` as `v`), if the pinyin data has one.
fn commonest(c: char) -> Option<&'static str> {
    if let Some(rs) = heteronym(c) {
        return rs.first().copied();
    }
    let r = c.to_pinyin()?.plain();
    Some(umlaut(r).and_then(|u| u.first().copied()).unwrap_or(r))
}

/// A letter with a Latin accent or a pinyin tone mark as the plain letter
/// (`é` → `e`, `ǎ` → `a`, `ǚ` → `v`); other characters as they are.
fn unaccented(c: char) -> char {
    match c {
        'à'..='å' | 'ā' | 'ă' | 'ą' | 'ǎ' => 'a',
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => 'c',
        'ď' | 'đ' => 'd',
        'è'..='ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => 'e',
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => 'g',
        'ĥ' | 'ħ' => 'h',
        'ì'..='ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' | 'ǐ' => 'i',
        'ĵ' => 'j',
        'ķ' => 'k',
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => 'l',
        'ñ' | 'ń' | 'ņ' | 'ň' => 'n',
        'ò'..='ö' | 'ø' | 'ō' | 'ŏ' | 'ő' | 'ǒ' => 'o',
        'ŕ' | 'ŗ' | 'ř' => 'r',
        'ś' | 'ŝ' | 'ş' | 'š' => 's',
        'ţ' | 'ť' | 'ŧ' => 't',
        'ù'..='ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' | 'ǔ' => 'u',
        'ǖ' | 'ǘ' | 'ǚ' | 'ǜ' => 'v',
        'ŵ' => 'w',
        'ý' | 'ÿ' | 'ŷ' => 'y',
        'ź' | 'ż' | 'ž' => 'z',
        _ => c,
    }
}

/// The key a name or title is sorted by, so that comparing keys byte-wise
/// (as both stores compare text) gives the order Chinese users expect of a
/// list sorted by name — pinyin order, as Excel and WPS sort Chinese:
///
/// - a Chinese character is its commonest reading (the first one
///   [`search_keys`] keys it under; `ü` written `v`, which sorts `lü` after
///   `lu`, `luan` … `luo` as dictionaries do), opened by [`SORT_HAN`] and
///   closed by [`SORT_SYLLABLE_END`], so that names compare character by
///   character: 李四 (`li si`) before 张三 (`zhang san`), 西安 (`xi an`)
///   before 先 (`xian`);
/// - letters are lowercased, full-width ones read as ASCII and accents
///   dropped (`Apple`, `ａｐｐｌｅ` and `Äpple` sort together, before
///   `banana` and `Zebra`); digits and ASCII punctuation are kept as they
///   are, so letters and digits sort before Chinese characters; whitespace
///   is one space, control characters are left out, and every other
///   character (other scripts, Chinese punctuation, characters without
///   pinyin data) is kept, lowercased, and so sorts after the Chinese
///   characters;
/// - [`SORT_TIE`] and the text itself follow, so two different texts never
///   have one key: names reading alike (王 and 汪, both `wang`; `Apple` and
///   `apple`) keep one order, by their characters' code points.
///
/// An empty text has an empty key.
pub fn sort_key(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    let mut out = String::with_capacity(text.len() * 2 + 1);
    for c in text.chars().map(crate::validate::halfwidth) {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if let Some(r) = commonest(c) {
            out.push(SORT_HAN);
            out.push_str(r);
            out.push(SORT_SYLLABLE_END);
        } else if c.is_whitespace() {
            out.push(' ');
        } else if !c.is_control() {
            out.extend(c.to_lowercase().map(unaccented));
        }
    }
    out.push(SORT_TIE);
    out.push_str(text);
    out
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

    /// Every concatenation choosing one alternative per position.
    fn combinations(alts: &[Alts<'_>]) -> Vec<String> {
        let mut out = vec![String::new()];
        for a in alts {
            out = out
                .iter()
                .flat_map(|prefix| a.as_slice().iter().map(move |s| format!("{prefix}{s}")))
                .collect();
        }
        out
    }

    #[test]
    fn company_name() {
        let name = "华为技术有限公司";
        let keys = search_keys(name);
        assert_eq!(keys, "huaweijishuyouxiangongsi hwjsyxgs");
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
    fn rare_readings_are_not_keyed() {
        // 有 wei, 限 wen, 司 ci, 术 zhu, 份 bin, 车 ju are in the data but
        // not in names.
        for (name, q) in [
            ("华为技术有限公司", "youwen"),
            ("华为技术有限公司", "gongci"),
            ("华为技术有限公司", "jizhu"),
            ("华为技术有限公司", "wx"),
            ("重庆长安汽车股份有限公司", "gubin"),
            ("重庆长安汽车股份有限公司", "qiju"),
        ] {
            assert!(!finds(name, q), "{q}: {}", search_keys(name));
        }
        assert_eq!(
            search_keys("恒华华华物流有限公司"),
            "henghuahuahuawuliuyouxiangongsi hhhhwlyxgs"
        );
        assert_eq!(
            search_keys("重庆长安汽车股份有限公司"),
            "zhongqingchanganqichegufenyouxiangongsi \
             chongqingchanganqichegufenyouxiangongsi \
             zhongqingzhanganqichegufenyouxiangongsi \
             chongqingzhanganqichegufenyouxiangongsi \
             zqcaqcgfyxgs cqcaqcgfyxgs zqzaqcgfyxgs cqzaqcgfyxgs"
        );
    }

    #[test]
    fn heteronym_table_is_sorted_and_real() {
        use ::pinyin::ToPinyinMulti;
        for w in HETERONYMS.windows(2) {
            assert!(w[0].0 < w[1].0, "{} before {}", w[0].0, w[1].0);
        }
        for (c, readings) in HETERONYMS {
            assert!(
                (2..=MAX_READINGS).contains(&readings.len()),
                "{c}: {readings:?}"
            );
            let known: Vec<&str> = c
                .to_pinyin_multi()
                .unwrap()
                .into_iter()
                .map(|p| p.plain())
                .collect();
            for r in *readings {
                assert!(known.contains(r), "{c} {r} not in {known:?}");
            }
            assert!(readings.iter().all(|r| !r.contains('ü')), "{c}");
            let mut words = String::new();
            let pos = positions(&c.to_string(), &mut words);
            assert_eq!(pos[0].alts(&words, false).as_slice(), *readings);
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
        assert!(finds("吕布", "lǚbù"));
        // Latin names whatever the case, with or without accents.
        for q in ["müller", "MÜLLER", "Muller", "mullergmbh"] {
            assert!(finds("Müller GmbH", q), "{q}");
        }
        for q in ["über", "ÜBER", "uber"] {
            assert!(finds("Über Technologies", q), "{q}");
        }
        for q in ["ürün", "ÜRÜN", "urun"] {
            assert!(finds("Ürün Ltd", q), "{q}");
        }
        for q in ["société générale", "SOCIETE GENERALE", "générale"] {
            assert!(finds("Société Générale", q), "{q}");
        }
        for (name, q) in [
            ("Straße AG", "strasse"),
            ("STRASSE AG", "straße"),
            ("ÆON Ørsted", "aeon"),
            ("ÆON Ørsted", "orsted"),
            ("İstanbul Ltd", "istanbul"),
            ("Œuvre SA", "oeuvre"),
        ] {
            assert!(finds(name, q), "{name}: {q}");
        }
        assert!(!finds("Müller GmbH", "miller"));
        assert!(finds("西安", "xi'an"));
        for q in ["lvse", "luse", "nvshi", "nushi", "lueying", "lveying"] {
            assert!(finds("绿色女士略影", q), "{q}");
        }
        for q in [
            "xiamen",
            "shamen",
            "leshan",
            "yueshan",
            "shanxiong",
            "danxiong",
        ] {
            assert!(finds("厦门乐山单雄", q), "{q}");
        }
        // The commonest reading comes first.
        assert!(search_keys("长沙").starts_with("changsha "));
        assert!(search_keys("曾").starts_with("zeng "));
    }

    #[test]
    fn place_and_word_readings() {
        // Each reading a name is known by is keyed, full and as initials.
        for (name, queries) in [
            ("瑜伽馆", &["yujiaguan", "yujia", "yjg"][..]),
            ("伽马射线", &["gamashexian", "gama", "gmsx"][..]),
            ("武汉市黄陂区", &["huangpi", "whshpq"][..]),
            ("珲春", &["hunchun", "hc"][..]),
            ("洪洞县", &["hongtong", "hongtongxian", "htx"][..]),
            ("铅山", &["yanshan", "ys"][..]),
            ("泊头市", &["botou", "botoushi", "bts"][..]),
            ("停泊", &["tingbo"][..]),
            ("薄荷糖", &["bohetang", "bht"][..]),
            ("薄熙", &["boxi", "bx"][..]),
        ] {
            for q in queries {
                assert!(finds(name, q), "{name} {q}: {}", search_keys(name));
            }
        }
        // The everyday readings are still found, and come first.
        for (name, q) in [
            ("铅笔", "qianbi"),
            ("山洞", "shandong"),
            ("湖泊", "hupo"),
            ("薄饼", "baobing"),
            ("瑷珲", "aihui"),
        ] {
            assert!(finds(name, q), "{name} {q}: {}", search_keys(name));
        }
        assert!(search_keys("薄饼").starts_with("baobing "));
        assert!(search_keys("泊头").starts_with("botou "));
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
        assert_eq!(search_keys("IBM中国"), "ibmzhongguo ibmzg");
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
                n <= MAX_COMBINATIONS,
                "{name}: {n} keys: {}",
                search_keys(name)
            );
        }
    }

    /// Every combination of readings of every window of up to 4 positions.
    fn assert_windows_covered(name: &str) {
        let keys = search_keys(name);
        let mut words = String::new();
        let pos = positions(name, &mut words);
        for initials in [false, true] {
            let alts: Vec<Alts<'_>> = pos.iter().map(|p| p.alts(&words, initials)).collect();
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
        // Nearly every character here has two readings: any 4 consecutive
        // ones combine in 16 ways, the least number of keys of each kind.
        assert_eq!(n, 2 * 2usize.pow(4), "{n} keys");
        // The commonest reading of the whole name is one key.
        let mut words = String::new();
        let full: String = positions(name, &mut words)
            .iter()
            .map(|p| p.first(&words, false))
            .collect();
        assert!(search_keys(name).split(' ').any(|k| k == full));
    }

    #[test]
    fn long_ordinary_name() {
        // Of these, only 区 (qu/ou) is keyed under two readings.
        let name = "北京市海淀区中关村大街一号科技发展有限公司";
        assert_windows_covered(name);
        assert_eq!(key_count(name), 4, "{}", search_keys(name));
        assert!(finds(
            name,
            "beijingshihaidianquzhongguancundajieyihaokejifazhanyouxiangongsi"
        ));
        assert!(finds(name, "bjshdqzgcdjyhkjfzyxgs"));
        assert!(finds(name, "haidianou"));
    }

    /// `names` sorted by their sort keys.
    fn by_sort_key(names: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = names.iter().map(|n| (*n).to_string()).collect();
        v.sort_by_key(|n| sort_key(n));
        v
    }

    #[test]
    fn sort_key_orders_by_pinyin() {
        assert!(sort_key("李四") < sort_key("张三"));
        assert_eq!(
            by_sort_key(&["张三", "王五", "李四", "赵六", "阿里巴巴", "北京银行"]),
            ["阿里巴巴", "北京银行", "李四", "王五", "张三", "赵六"]
        );
        // Character by character: a syllable before the longer ones it
        // begins, a name before the longer names it begins.
        assert_eq!(
            by_sort_key(&["先锋", "西安", "张三丰", "张三", "张", "连", "李"]),
            ["李", "连", "西安", "先锋", "张", "张三", "张三丰"]
        );
        // `ü` after `u`, as dictionaries order 卢 lu, 罗 luo, 吕 lü.
        assert_eq!(by_sort_key(&["吕", "罗", "卢"]), ["卢", "罗", "吕"]);
        // Heteronyms sort by their commonest reading in names.
        assert!(sort_key("长沙").starts_with("~chang ~sha \u{1}"));
        assert!(sort_key("曾").starts_with("~zeng "));
    }

    #[test]
    fn sort_key_breaks_ties_by_the_text() {
        // 王 and 汪 are both `wang`: one order, by code point, next to each
        // other between 万 wan and 为 wei.
        let (w1, w2) = (sort_key("王"), sort_key("汪"));
        assert_ne!(w1, w2);
        assert!(w1.starts_with("~wang \u{1}") && w2.starts_with("~wang \u{1}"));
        assert_eq!(
            by_sort_key(&["为", "王", "万", "汪"]),
            ["万", "汪", "王", "为"]
        );
        assert_eq!(by_sort_key(&["汪", "王"]), by_sort_key(&["王", "汪"]));
        assert_eq!(by_sort_key(&["apple", "Apple"]), ["Apple", "apple"]);
    }

    #[test]
    fn sort_key_latin_ignores_case_width_and_accents() {
        assert_eq!(
            by_sort_key(&["Zebra", "banana", "Apple", "apricot"]),
            ["Apple", "apricot", "banana", "Zebra"]
        );
        assert_eq!(sort_key("Apple"), "apple\u{1}Apple");
        // Full-width letters and digits read as ASCII.
        assert!(sort_key("ＩＢＭ１２").starts_with("ibm12\u{1}"));
        assert_eq!(
            by_sort_key(&["ｂｅｔａ", "Alpha", "gamma"]),
            ["Alpha", "ｂｅｔａ", "gamma"]
        );
        assert!(sort_key("Émile").starts_with("emile\u{1}"));
        assert_eq!(
            by_sort_key(&["Ezra", "Émile", "Eve"]),
            ["Émile", "Eve", "Ezra"]
        );
    }

    #[test]
    fn sort_key_mixed_text() {
        // Digits, then letters, then Chinese characters, at every position.
        assert_eq!(
            by_sort_key(&["华为", "IBM中国", "58同城", "阿里", "Apple"]),
            ["58同城", "Apple", "IBM中国", "阿里", "华为"]
        );
        assert_eq!(sort_key("IBM中国"), "ibm~zhong ~guo \u{1}IBM中国");
        assert_eq!(by_sort_key(&["西a", "西安", "西"]), ["西", "西a", "西安"]);
        // Full-width punctuation reads as ASCII; the ideographic space is a
        // space.
        assert!(sort_key("ＡＢＣ（中国）").starts_with("abc(~zhong ~guo )\u{1}"));
        assert!(sort_key("张\u{3000}三").starts_with("~zhang  ~san \u{1}"));
    }

    #[test]
    fn sort_key_of_empty_text() {
        assert_eq!(sort_key(""), "");
        assert!(sort_key("") < sort_key(" "));
        assert!(sort_key("") < sort_key("a"));
    }

    proptest! {
        #[test]
        fn windows_always_covered(
            chars in proptest::collection::vec(
                proptest::sample::select("重庆长沙曾行乐调还都传会差华为技术银吕女AB1缪堡".chars().collect::<Vec<_>>()),
                0..14,
            )
        ) {
            let name: String = chars.into_iter().collect();
            assert_windows_covered(&name);
        }

        #[test]
        fn single_readings_shortcut_agrees(s in "[a-zA-Z0-9 ，华为技术有限公司中国银行长吕绿Ａé]{0,12}") {
            let mut words = String::new();
            let pos = positions(&s, &mut words);
            prop_assert_eq!(search_keys(&s), all_keys(&pos, &words));
        }

        #[test]
        fn sort_keys_tell_texts_apart(a in "\\PC{0,12}", b in "\\PC{0,12}") {
            let (ka, kb) = (sort_key(&a), sort_key(&b));
            prop_assert_eq!(ka == kb, a == b);
            prop_assert!(!ka.contains('\0'));
        }

        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let keys = search_keys(&s);
            prop_assert!(!keys.starts_with(' ') && !keys.ends_with(' ') && !keys.contains("  "));
            prop_assert_eq!(normalise_query(&normalise_query(&s)), normalise_query(&s));
        }
    }
}
