//! [`Report`]: a run's figures, printed as an aligned summary or as one JSON
//! object (`--json`). The only place the load tool writes to stdout.

use serde_json::{Map, Value, json};

use super::stats::Summary;

/// The figures of one run, in the order they were added.
#[derive(Debug)]
pub(crate) struct Report {
    mode: &'static str,
    fields: Vec<Field>,
}

/// One figure: its JSON value and its human text.
#[derive(Debug)]
struct Field {
    key: &'static str,
    value: Value,
    text: String,
}

impl Report {
    /// An empty report for `mode`.
    pub(crate) fn new(mode: &'static str) -> Self {
        Self {
            mode,
            fields: Vec::new(),
        }
    }

    /// Adds a figure with its own text.
    pub(crate) fn add(
        &mut self,
        key: &'static str,
        value: impl Into<Value>,
        text: impl Into<String>,
    ) {
        self.fields.push(Field {
            key,
            value: value.into(),
            text: text.into(),
        });
    }

    /// Adds a count (`12,345`).
    pub(crate) fn count(&mut self, key: &'static str, count: u64) {
        self.add(key, count, group(count));
    }

    /// Adds a rate (`12,345 req/s`).
    pub(crate) fn rate(&mut self, key: &'static str, per_second: f64, unit: &str) {
        let rounded = per_second.round();
        self.add(key, rounded, format!("{} {unit}", group(rounded as u64)));
    }

    /// Adds latency percentiles.
    pub(crate) fn latency(&mut self, key: &'static str, summary: &Summary) {
        let text = format!(
            "p50 {} · p90 {} · p99 {} · p99.9 {} · max {} (mean {}, n = {})",
            millis(summary.p50_us),
            millis(summary.p90_us),
            millis(summary.p99_us),
            millis(summary.p999_us),
            millis(summary.max_us),
            millis(summary.mean_us),
            group(summary.count),
        );
        self.add(key, json!(summary), text);
    }

    /// Adds the spread of per-second counts (`min … max`).
    pub(crate) fn per_second_spread(&mut self, key: &'static str, seconds: &[u64], unit: &str) {
        let (Some(min), Some(max)) = (seconds.iter().min(), seconds.iter().max()) else {
            self.add(key, Value::Null, "(run shorter than a second)");
            return;
        };
        let text = format!(
            "{} … {} {unit} over {} s",
            group(*min),
            group(*max),
            seconds.len()
        );
        self.add(key, json!(seconds), text);
    }

    /// The report as one JSON object (`mode` plus every figure).
    pub(crate) fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("mode".to_owned(), Value::from(self.mode));
        for field in &self.fields {
            object.insert(field.key.to_owned(), field.value.clone());
        }
        Value::Object(object)
    }

    /// The report as aligned lines.
    pub(crate) fn to_text(&self) -> String {
        let width = self.fields.iter().map(|f| f.key.len()).max().unwrap_or(0);
        let mut out = format!("eric load {}\n", self.mode);
        for field in &self.fields {
            out.push_str(&format!("  {:width$}  {}\n", field.key, field.text));
        }
        out
    }

    /// Prints the report on stdout: the tool's result, not a log line.
    #[allow(clippy::print_stdout)]
    pub(crate) fn print(&self, as_json: bool) {
        if as_json {
            println!("{}", self.to_json());
        } else {
            print!("{}", self.to_text());
        }
    }
}

/// `1234567` as `1,234,567`.
pub(crate) fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Microseconds shown in milliseconds.
fn millis(micros: f64) -> String {
    format!("{:.3} ms", micros / 1_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1_000), "1,000");
        assert_eq!(group(1_234_567), "1,234,567");
    }

    #[test]
    fn text_and_json_carry_the_same_figures() {
        let mut report = Report::new("dispatch");
        report.count("requests", 12_345);
        report.rate("rate", 6_172.4, "req/s");
        report.per_second_spread("per_second", &[6_000, 6_300], "req/s");
        report.per_second_spread("short", &[], "req/s");
        let text = report.to_text();
        assert!(text.starts_with("eric load dispatch\n"), "{text}");
        assert!(text.contains("requests    12,345\n"), "{text}");
        assert!(text.contains("rate        6,172 req/s\n"), "{text}");
        assert!(text.contains("6,000 … 6,300 req/s over 2 s"), "{text}");
        let value = report.to_json();
        assert_eq!(value["mode"], "dispatch");
        assert_eq!(value["requests"], 12_345);
        assert_eq!(value["rate"], 6_172.0);
        assert_eq!(value["per_second"], json!([6_000, 6_300]));
        assert!(value["short"].is_null());
    }
}
