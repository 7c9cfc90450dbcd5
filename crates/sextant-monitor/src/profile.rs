//! One-pass, mergeable per-column profiles.
//!
//! A column's profile holds exact counts (rows, missing, values of each
//! inferred type), exact moments (Welford/Chan: mean and M2, sum, min, max),
//! a KLL quantile sketch of its numbers, a HyperLogLog distinct count (the
//! Apache `datasketches` crate), and category counts: exact while a column
//! has at most [`ProfileOptions::exact_limit`] distinct values, then a
//! Misra–Gries frequent-items summary of that many counters. Every part
//! merges, so profiles of chunks or hourly windows combine into one, and
//! memory depends on the number of columns, never on rows.

use std::collections::HashMap;

use base64::Engine;
use datasketches::hll::{HllSketch, HllType, HllUnion};
use serde::{Deserialize, Serialize};

use crate::drift::Cdf;
use crate::kll::Kll;

/// Sketch sizes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProfileOptions {
    /// KLL `k`: rank error about 1.7/k^0.97 (k = 1024: ~0.2 %).
    pub kll_k: u16,
    /// Distinct values counted exactly per column; beyond, the most frequent this many are kept.
    pub exact_limit: usize,
    /// HLL `lg_k` (12: ~1.6 % relative error).
    pub hll_lg_k: u8,
}

impl Default for ProfileOptions {
    fn default() -> Self {
        ProfileOptions {
            kll_k: 1024,
            exact_limit: 1000,
            hll_lg_k: 12,
        }
    }
}

/// Deequ's data types, decided by majority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InferredType {
    Integral,
    Fractional,
    Boolean,
    String,
    Unknown,
}

impl InferredType {
    /// SageMaker's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            InferredType::Integral => "Integral",
            InferredType::Fractional => "Fractional",
            InferredType::Boolean => "Boolean",
            InferredType::String => "String",
            InferredType::Unknown => "Unknown",
        }
    }

    /// Whether values of this type are profiled as numbers.
    pub fn is_numeric(self) -> bool {
        matches!(self, InferredType::Integral | InferredType::Fractional)
    }
}

/// Counts of present values by type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeCounts {
    pub integral: u64,
    pub fractional: u64,
    pub boolean: u64,
    pub string: u64,
    /// Fractional values with no fractional part (`3.0`, as Python's `json`
    /// writes an integer-valued float): they fit a column the baseline found
    /// Integral. Counted among `fractional` too.
    #[serde(default)]
    pub whole: u64,
}

/// Exact moments of a column's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    pub n: u64,
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
    pub sum: f64,
    /// `+inf` while empty.
    #[serde(with = "extended")]
    pub min: f64,
    /// `-inf` while empty.
    #[serde(with = "extended")]
    pub max: f64,
}

/// Doubles that may be infinite, as JSON numbers or the strings `inf` / `-inf` / `nan`.
mod extended {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        if x.is_finite() {
            s.serialize_f64(*x)
        } else if x.is_nan() {
            s.serialize_str("nan")
        } else if *x > 0.0 {
            s.serialize_str("inf")
        } else {
            s.serialize_str("-inf")
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum V {
            N(f64),
            S(String),
        }
        match V::deserialize(d)? {
            V::N(x) => Ok(x),
            V::S(s) => match s.as_str() {
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                "nan" => Ok(f64::NAN),
                other => Err(serde::de::Error::custom(format!("not a number: {other}"))),
            },
        }
    }
}

impl Default for Moments {
    fn default() -> Self {
        Moments {
            n: 0,
            mean: 0.0,
            m2: 0.0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Moments {
    #[inline]
    fn push(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
        self.sum += x;
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    fn merge(&mut self, o: &Moments) {
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *o;
            return;
        }
        let n = (self.n + o.n) as f64;
        let d = o.mean - self.mean;
        self.mean += d * o.n as f64 / n;
        self.m2 += o.m2 + d * d * self.n as f64 * o.n as f64 / n;
        self.n += o.n;
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }

    /// Population standard deviation (Deequ's, which SageMaker reports).
    pub fn std_dev(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            (self.m2 / self.n as f64).max(0.0).sqrt()
        }
    }
}

/// Category counts: exact up to `limit` distinct values, then Misra–Gries
/// counters (each count under-estimated by at most `error`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Categories {
    pub counts: HashMap<String, u64>,
    /// Whether counts are still exact.
    pub exact: bool,
    /// The largest possible under-count of any item.
    pub error: u64,
    limit: usize,
}

impl Categories {
    fn new(limit: usize) -> Categories {
        Categories {
            counts: HashMap::new(),
            exact: true,
            error: 0,
            limit: limit.max(1),
        }
    }

    #[inline]
    fn add(&mut self, value: &str, n: u64) {
        if let Some(c) = self.counts.get_mut(value) {
            *c += n;
            return;
        }
        self.counts.insert(value.to_string(), n);
        if self.counts.len() > self.limit {
            self.purge();
        }
    }

    /// Subtracts the (limit+1)-th largest count from every counter and drops
    /// those at zero (Misra–Gries; Agarwal et al.'s mergeable form).
    fn purge(&mut self) {
        self.exact = false;
        let mut all: Vec<u64> = self.counts.values().copied().collect();
        let cut_at = all.len() - self.limit;
        let (_, cut, _) = all.select_nth_unstable(cut_at - 1);
        let cut = *cut;
        self.error += cut;
        self.counts.retain(|_, c| {
            *c = c.saturating_sub(cut);
            *c > 0
        });
    }

    fn merge(&mut self, o: &Categories) {
        for (k, v) in &o.counts {
            *self.counts.entry(k.clone()).or_default() += v;
        }
        self.exact &= o.exact;
        self.error += o.error;
        if self.counts.len() > self.limit {
            self.purge();
        }
    }

    /// Counts sorted by count (largest first), then value.
    pub fn sorted(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self.counts.iter().map(|(k, c)| (k.clone(), *c)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }
}

/// A column's profile.
#[derive(Debug, Clone)]
pub struct ColumnProfile {
    pub name: String,
    /// Rows seen (present or missing).
    pub count: u64,
    pub missing: u64,
    pub types: TypeCounts,
    pub moments: Moments,
    pub kll: Kll,
    pub categories: Categories,
    hll: HllSketch,
}

impl ColumnProfile {
    /// An empty profile of column `name`.
    pub fn new(name: &str, opts: &ProfileOptions) -> ColumnProfile {
        ColumnProfile {
            name: name.to_string(),
            count: 0,
            missing: 0,
            types: TypeCounts::default(),
            moments: Moments::default(),
            kll: Kll::new(opts.kll_k),
            categories: Categories::new(opts.exact_limit),
            hll: HllSketch::new(opts.hll_lg_k.clamp(4, 21), HllType::Hll8)
                .expect("lg_k is clamped to the valid range"),
        }
    }

    /// Adds one text cell; `None` or an empty string is missing. Numbers are
    /// recognised as Deequ does: integral (`-?\d+`), fractional (a float),
    /// boolean (`true`/`false`), anything else a string.
    #[inline]
    pub fn push_text(&mut self, cell: Option<&str>) {
        self.count += 1;
        let Some(text) = cell.map(str::trim).filter(|t| !t.is_empty()) else {
            self.missing += 1;
            return;
        };
        match classify(text) {
            Cell::Integral(x) => {
                self.types.integral += 1;
                self.number(x, text);
            }
            Cell::Fractional(x) => {
                self.types.fractional += 1;
                self.types.whole += u64::from(x.fract() == 0.0);
                self.number(x, text);
            }
            Cell::Boolean => {
                self.types.boolean += 1;
                self.category(text);
            }
            Cell::String => {
                self.types.string += 1;
                self.category(text);
            }
        }
    }

    /// Adds one JSON cell (a capture's or a JSON line's value).
    pub fn push_json(&mut self, cell: &serde_json::Value) {
        use serde_json::Value;
        match cell {
            Value::Null => {
                self.count += 1;
                self.missing += 1;
            }
            Value::Number(n) => {
                self.count += 1;
                let x = n.as_f64().unwrap_or(f64::NAN);
                if n.is_f64() {
                    self.types.fractional += 1;
                    self.types.whole += u64::from(x.fract() == 0.0);
                } else {
                    self.types.integral += 1;
                }
                self.number(x, &n.to_string());
            }
            Value::Bool(b) => {
                self.count += 1;
                self.types.boolean += 1;
                self.category(if *b { "true" } else { "false" });
            }
            Value::String(s) => self.push_text(Some(s)),
            other => {
                self.count += 1;
                self.types.string += 1;
                self.category(&other.to_string());
            }
        }
    }

    #[inline]
    fn number(&mut self, x: f64, text: &str) {
        if x.is_nan() {
            self.missing += 1;
            return;
        }
        self.moments.push(x);
        self.kll.update(x);
        self.hll.update(x.to_bits());
        // Numbers keep category counts only while few: they are what
        // `domains` and exact histograms of low-cardinality numbers need.
        if self.categories.exact {
            self.categories.add(text, 1);
        }
    }

    #[inline]
    fn category(&mut self, text: &str) {
        self.hll.update(text);
        self.categories.add(text, 1);
    }

    /// Merges another profile of the same column.
    pub fn merge(&mut self, o: &ColumnProfile) {
        self.count += o.count;
        self.missing += o.missing;
        self.types.integral += o.types.integral;
        self.types.fractional += o.types.fractional;
        self.types.boolean += o.types.boolean;
        self.types.string += o.types.string;
        self.types.whole += o.types.whole;
        self.moments.merge(&o.moments);
        self.kll.merge(&o.kll);
        self.categories.merge(&o.categories);
        let mut union = HllUnion::new(self.hll.lg_config_k().max(o.hll.lg_config_k()))
            .expect("lg_k of an existing sketch is valid");
        union.update(&self.hll);
        union.update(&o.hll);
        self.hll = union.to_sketch(HllType::Hll8);
    }

    /// Present values.
    pub fn present(&self) -> u64 {
        self.count - self.missing
    }

    /// The majority type of present values (Deequ: a column with any
    /// fractional and otherwise integral values is fractional; strings win
    /// over numbers only by majority).
    pub fn inferred_type(&self) -> InferredType {
        let t = self.types;
        let numbers = t.integral + t.fractional;
        if numbers + t.boolean + t.string == 0 {
            return InferredType::Unknown;
        }
        if t.string > numbers && t.string >= t.boolean {
            InferredType::String
        } else if t.boolean > numbers {
            InferredType::Boolean
        } else if t.fractional > 0 {
            InferredType::Fractional
        } else {
            InferredType::Integral
        }
    }

    /// Estimated distinct present values (exact while categories are).
    pub fn distinct_count(&self) -> u64 {
        if self.categories.exact {
            self.categories.counts.len() as u64
        } else {
            self.hll.estimate().round() as u64
        }
    }

    /// Population standard deviation of the numbers.
    pub fn std_dev(&self) -> f64 {
        self.moments.std_dev()
    }

    /// The numbers' CDF from the KLL sketch.
    pub fn cdf(&self) -> Cdf {
        self.kll.cdf()
    }

    /// The `q` quantile of the numbers (`None` without numbers).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.kll.quantile(q)
    }

    /// Category counts, largest first (estimates once not exact).
    pub fn categories(&self) -> Vec<(String, u64)> {
        self.categories.sorted()
    }

    fn to_wire(&self) -> WireColumn {
        WireColumn {
            name: self.name.clone(),
            count: self.count,
            missing: self.missing,
            types: self.types,
            moments: self.moments,
            kll: self.kll.clone(),
            categories: self.categories.clone(),
            hll: base64::engine::general_purpose::STANDARD.encode(self.hll.serialize()),
        }
    }

    fn from_wire(w: WireColumn) -> Result<ColumnProfile, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&w.hll)
            .map_err(|e| format!("column '{}': HLL sketch is not base64: {e}", w.name))?;
        let hll = HllSketch::deserialize(&bytes)
            .map_err(|e| format!("column '{}': HLL sketch: {e}", w.name))?;
        Ok(ColumnProfile {
            name: w.name,
            count: w.count,
            missing: w.missing,
            types: w.types,
            moments: w.moments,
            kll: w.kll,
            categories: w.categories,
            hll,
        })
    }
}

/// A column as serialized: everything in JSON, the HLL in DataSketches' binary format (base64).
#[derive(Serialize, Deserialize)]
struct WireColumn {
    name: String,
    count: u64,
    missing: u64,
    types: TypeCounts,
    moments: Moments,
    kll: Kll,
    categories: Categories,
    hll: String,
}

#[derive(Serialize, Deserialize)]
struct WireProfile {
    version: u32,
    item_count: u64,
    columns: Vec<WireColumn>,
}

/// A data set's profile: one per column, in first-seen order.
#[derive(Debug, Clone)]
pub struct DatasetProfile {
    pub item_count: u64,
    pub columns: Vec<ColumnProfile>,
    pub options: ProfileOptions,
}

impl DatasetProfile {
    /// An empty profile.
    pub fn new(options: ProfileOptions) -> DatasetProfile {
        DatasetProfile {
            item_count: 0,
            columns: Vec::new(),
            options,
        }
    }

    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&ColumnProfile> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The index of column `name`, added (with every earlier row missing) if new.
    pub fn column_index(&mut self, name: &str) -> usize {
        if let Some(i) = self.columns.iter().position(|c| c.name == name) {
            return i;
        }
        let mut c = ColumnProfile::new(name, &self.options);
        c.count = self.item_count;
        c.missing = self.item_count;
        self.columns.push(c);
        self.columns.len() - 1
    }

    /// Closes a row: every column the row did not mention counts it missing.
    pub fn end_row(&mut self) {
        self.item_count += 1;
        for c in &mut self.columns {
            if c.count < self.item_count {
                c.count += 1;
                c.missing += 1;
            }
        }
    }

    /// Adds one row of JSON values by column name.
    pub fn push_json_row<'a>(
        &mut self,
        row: impl IntoIterator<Item = (&'a str, &'a serde_json::Value)>,
    ) {
        for (name, value) in row {
            let i = self.column_index(name);
            if self.columns[i].count <= self.item_count {
                self.columns[i].push_json(value);
            }
        }
        self.end_row();
    }

    /// Merges `other` into this profile; a column on one side only counts
    /// every row of the other side missing.
    pub fn merge(&mut self, other: &DatasetProfile) {
        for c in &mut self.columns {
            if other.column(&c.name).is_none() {
                c.count += other.item_count;
                c.missing += other.item_count;
            }
        }
        for oc in &other.columns {
            match self.columns.iter_mut().find(|c| c.name == oc.name) {
                Some(c) => c.merge(oc),
                None => {
                    let mut c = oc.clone();
                    c.count += self.item_count;
                    c.missing += self.item_count;
                    self.columns.push(c);
                }
            }
        }
        self.item_count += other.item_count;
    }

    /// The profile as JSON bytes (sketches included), for storing and merging later.
    pub fn to_bytes(&self) -> Vec<u8> {
        let wire = WireProfile {
            version: 1,
            item_count: self.item_count,
            columns: self.columns.iter().map(ColumnProfile::to_wire).collect(),
        };
        serde_json::to_vec(&wire).expect("profiles serialize")
    }

    /// Reads [`DatasetProfile::to_bytes`].
    pub fn from_bytes(bytes: &[u8], options: ProfileOptions) -> Result<DatasetProfile, String> {
        let wire: WireProfile =
            serde_json::from_slice(bytes).map_err(|e| format!("not a Sextant profile: {e}"))?;
        if wire.version != 1 {
            return Err(format!("profile version {} is not supported", wire.version));
        }
        Ok(DatasetProfile {
            item_count: wire.item_count,
            columns: wire
                .columns
                .into_iter()
                .map(ColumnProfile::from_wire)
                .collect::<Result<_, _>>()?,
            options,
        })
    }
}

enum Cell {
    Integral(f64),
    Fractional(f64),
    Boolean,
    String,
}

/// Deequ's type of a non-empty trimmed cell.
#[inline]
fn classify(text: &str) -> Cell {
    let b = text.as_bytes();
    let digits = if b[0] == b'-' || b[0] == b'+' {
        &b[1..]
    } else {
        b
    };
    if !digits.is_empty() && digits.len() <= 18 && digits.iter().all(u8::is_ascii_digit) {
        let mut v: i64 = 0;
        for d in digits {
            v = v * 10 + i64::from(d - b'0');
        }
        return Cell::Integral(if b[0] == b'-' { -(v as f64) } else { v as f64 });
    }
    if let Some(x) = parse_decimal(b) {
        return Cell::Fractional(x);
    }
    if text.eq_ignore_ascii_case("true") || text.eq_ignore_ascii_case("false") {
        return Cell::Boolean;
    }
    match text.parse::<f64>() {
        Ok(x) if !x.is_nan() || text.eq_ignore_ascii_case("nan") => Cell::Fractional(x),
        _ => Cell::String,
    }
}

/// A fast path for plain decimals (`-12.345678`, at most 17 significant
/// digits, no exponent), exact to the nearest double as the standard parser
/// would give for these forms; anything else returns `None`.
#[inline]
fn parse_decimal(b: &[u8]) -> Option<f64> {
    const POW10: [f64; 18] = [
        1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17,
    ];
    let (neg, rest) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    let dot = rest.iter().position(|&c| c == b'.')?;
    let (int, frac) = (&rest[..dot], &rest[dot + 1..]);
    if int.len() + frac.len() > 17 || (int.is_empty() && frac.is_empty()) {
        return None;
    }
    let mut m: u64 = 0;
    for &c in int.iter().chain(frac) {
        if !c.is_ascii_digit() {
            return None;
        }
        m = m * 10 + u64::from(c - b'0');
    }
    // Below 2^53 both the mantissa and the power of ten are exact doubles, so
    // one division is correctly rounded.
    if m >= 1 << 53 {
        return None;
    }
    let x = m as f64 / POW10[frac.len()];
    Some(if neg { -x } else { x })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_typed_like_deequ() {
        let mut c = ColumnProfile::new("x", &ProfileOptions::default());
        for cell in [
            Some("1"),
            Some("-2"),
            Some("0.5"),
            Some(""),
            None,
            Some("abc"),
            Some("true"),
        ] {
            c.push_text(cell);
        }
        assert_eq!((c.count, c.missing), (7, 2));
        assert_eq!(
            c.types,
            TypeCounts {
                integral: 2,
                fractional: 1,
                boolean: 1,
                string: 1,
                whole: 0,
            }
        );
        assert_eq!(c.inferred_type(), InferredType::Fractional);
        assert_eq!(c.moments.n, 3);
        assert!((c.moments.mean - (-0.5 / 3.0)).abs() < 1e-12);
        for s in ["-12.345678", "0.000001", "123456.5", "+1.25", ".5", "5."] {
            assert_eq!(parse_decimal(s.as_bytes()), s.parse::<f64>().ok(), "{s}");
        }
        assert_eq!(parse_decimal(b"1e5"), None);
        assert_eq!(parse_decimal(b"1.2.3"), None);
    }

    #[test]
    fn frequent_items_keep_the_heavy_hitters() {
        let mut c = Categories::new(10);
        for i in 0..10_000u32 {
            let v = if i % 2 == 0 {
                "heavy".to_string()
            } else {
                format!("rare{i}")
            };
            c.add(&v, 1);
        }
        assert!(!c.exact);
        let top = c.sorted();
        assert_eq!(top[0].0, "heavy");
        assert!(
            top[0].1 + c.error >= 5_000 && top[0].1 <= 5_000,
            "{top:?} error {}",
            c.error
        );
    }

    #[test]
    fn profiles_survive_serialization() {
        let opts = ProfileOptions::default();
        let mut p = DatasetProfile::new(opts);
        for i in 0..100 {
            let x = serde_json::json!(i as f64 / 10.0);
            let c = serde_json::json!(if i % 3 == 0 { "a" } else { "b" });
            p.push_json_row([("x", &x), ("c", &c)]);
        }
        let back = DatasetProfile::from_bytes(&p.to_bytes(), opts).unwrap();
        assert_eq!(back.item_count, 100);
        assert_eq!(
            back.column("x").unwrap().moments,
            p.column("x").unwrap().moments
        );
        assert_eq!(back.column("c").unwrap().distinct_count(), 2);
        assert!(DatasetProfile::from_bytes(b"{}", opts).is_err());
    }
}
