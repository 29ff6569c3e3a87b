//! A strict parser of the Prometheus text exposition format (0.0.4), so a
//! test can tell that `/metrics` is what a Prometheus server accepts:
//! `# HELP` / `# TYPE` lines (one TYPE per family, before its samples),
//! samples `name{label="value",...} value [timestamp]` with valid names,
//! escaped label values and float values, and histograms whose buckets are
//! cumulative with `+Inf` equal to `_count`.

use std::collections::HashMap;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name (with `_bucket`, `_sum`, `_count` suffixes as written).
    pub name: String,
    /// Label pairs in order.
    pub labels: Labels,
    /// The value.
    pub value: f64,
}

/// A parsed scrape.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// Every sample, in order.
    pub samples: Vec<Sample>,
    /// Family name to its declared type.
    pub types: HashMap<String, String>,
}

/// Label pairs of one series, in order.
pub type Labels = Vec<(String, String)>;

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_value(v: &str) -> Result<f64, String> {
    match v {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        v => v.parse().map_err(|_| format!("bad value {v:?}")),
    }
}

/// Parses `{k="v",...}` starting after the `{`; returns labels and the rest.
fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = rest[..eq].trim();
        if !valid_name(name) || name.contains(':') {
            return Err(format!("bad label name {name:?}"));
        }
        let mut chars = rest[eq + 1..].char_indices();
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err("label value not quoted".into());
        }
        let mut value = String::new();
        let mut end = None;
        let mut escaped = false;
        for (i, c) in chars {
            if escaped {
                value.push(match c {
                    'n' => '\n',
                    '\\' => '\\',
                    '"' => '"',
                    other => return Err(format!("bad escape \\{other}")),
                });
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                end = Some(eq + 1 + i + 1);
                break;
            } else {
                value.push(c);
            }
        }
        let end = end.ok_or("unterminated label value")?;
        labels.push((name.to_owned(), value));
        rest = &rest[end..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// The family a sample belongs to, given the declared types.
fn family<'a>(name: &'a str, types: &HashMap<String, String>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && types
                .get(base)
                .is_some_and(|t| t == "histogram" || t == "summary")
        {
            return base;
        }
    }
    name
}

/// Parses a whole scrape, or says which line is wrong.
pub fn parse(text: &str) -> Result<Scrape, String> {
    let mut scrape = Scrape::default();
    let mut seen_samples: std::collections::HashSet<String> = Default::default();
    for (n, line) in text.lines().enumerate() {
        let err = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            match words.next() {
                Some("TYPE") => {
                    let name = words
                        .next()
                        .ok_or_else(|| err("TYPE without name".into()))?;
                    let kind = words
                        .next()
                        .ok_or_else(|| err("TYPE without type".into()))?;
                    if !valid_name(name) {
                        return Err(err("bad metric name".into()));
                    }
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(err(format!("unknown type {kind}")));
                    }
                    if seen_samples.contains(name) {
                        return Err(err("TYPE after samples of its family".into()));
                    }
                    if scrape
                        .types
                        .insert(name.to_owned(), kind.to_owned())
                        .is_some()
                    {
                        return Err(err("second TYPE for a family".into()));
                    }
                }
                Some("HELP") => {
                    let name = words
                        .next()
                        .ok_or_else(|| err("HELP without name".into()))?;
                    if !valid_name(name) {
                        return Err(err("bad metric name".into()));
                    }
                }
                _ => {}
            }
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| err("no value".into()))?;
        let name = &line[..name_end];
        if !valid_name(name) {
            return Err(err("bad metric name".into()));
        }
        let (labels, rest) = match line[name_end..].strip_prefix('{') {
            Some(after) => parse_labels(after).map_err(err)?,
            None => (Vec::new(), &line[name_end..]),
        };
        let mut parts = rest.split_whitespace();
        let value =
            parse_value(parts.next().ok_or_else(|| err("no value".into()))?).map_err(err)?;
        if let Some(ts) = parts.next() {
            ts.parse::<i64>().map_err(|_| err("bad timestamp".into()))?;
        }
        if parts.next().is_some() {
            return Err(err("trailing data".into()));
        }
        seen_samples.insert(family(name, &scrape.types).to_owned());
        scrape.samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    check_histograms(&scrape)?;
    Ok(scrape)
}

fn check_histograms(scrape: &Scrape) -> Result<(), String> {
    for (fam, kind) in &scrape.types {
        if kind != "histogram" {
            continue;
        }
        // Group bucket series by their labels other than `le`.
        let mut series: HashMap<Labels, Vec<(f64, f64)>> = HashMap::new();
        for s in scrape
            .samples
            .iter()
            .filter(|s| s.name == format!("{fam}_bucket"))
        {
            let le = s
                .labels
                .iter()
                .find(|(k, _)| k == "le")
                .ok_or_else(|| format!("{fam}: bucket without le"))?;
            let bound = parse_value(&le.1)?;
            let others: Vec<_> = s
                .labels
                .iter()
                .filter(|(k, _)| k != "le")
                .cloned()
                .collect();
            series.entry(others).or_default().push((bound, s.value));
        }
        for (labels, mut buckets) in series {
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            if buckets.windows(2).any(|w| w[1].1 < w[0].1) {
                return Err(format!("{fam}{labels:?}: buckets are not cumulative"));
            }
            let inf = buckets
                .last()
                .filter(|b| b.0.is_infinite())
                .ok_or_else(|| format!("{fam}{labels:?}: no +Inf bucket"))?
                .1;
            let count = scrape
                .samples
                .iter()
                .find(|s| s.name == format!("{fam}_count") && s.labels == labels)
                .ok_or_else(|| format!("{fam}{labels:?}: no _count"))?
                .value;
            if inf != count {
                return Err(format!(
                    "{fam}{labels:?}: +Inf bucket {inf} != count {count}"
                ));
            }
        }
    }
    Ok(())
}

impl Scrape {
    /// Sum of every sample named `name` (over all label sets); 0 if none.
    pub fn total(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.value)
            .sum()
    }

    /// The sample `name` with exactly these labels.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s.name == name
                    && s.labels.len() == labels.len()
                    && s.labels
                        .iter()
                        .zip(labels)
                        .all(|((k, v), (k2, v2))| k == k2 && v == v2)
            })
            .map(|s| s.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_format_and_rejects_garbage() {
        let ok = "# HELP a_total x\n# TYPE a_total counter\na_total{code=\"x\\\"y\"} 3\n\
                  # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3.5\nh_count 2\n";
        let s = parse(ok).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.get("a_total", &[("code", "x\"y")]), Some(3.0));
        assert!(parse("a b c d").is_err());
        assert!(parse("9bad 1").is_err());
        assert!(
            parse("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n")
                .is_err()
        );
        assert!(parse("x{l=\"unterminated} 1").is_err());
    }
}
