//! Plain-text report: aligned tables with units, and the PASS/MISS marks next to targets.
//!
//! Targets are printed, never asserted: a benchmark that fails the build on a slow machine
//! teaches nothing, a figure next to its goal does.

use std::fmt::Write as _;
use std::time::Duration;

/// One table of the report.
pub struct Table {
    title: String,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    notes: Vec<String>,
}

impl Table {
    pub fn new(title: impl Into<String>, headers: &[&str]) -> Table {
        Table {
            title: title.into(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds a row; missing cells are left blank, extra cells are kept (the header is widened).
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// A line printed under the table.
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    pub fn render(&self) -> String {
        let cols = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.headers.len()])
            .max()
            .unwrap_or(0);
        let mut widths = vec![0usize; cols];
        for line in std::iter::once(&self.headers).chain(&self.rows) {
            for (i, cell) in line.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let _ = writeln!(out, "\n== {} ==", self.title);
        let fmt_line = |cells: &[String]| {
            let mut line = String::new();
            for (i, w) in widths.iter().enumerate() {
                let cell = cells.get(i).map_or("", String::as_str);
                let pad = w - cell.chars().count();
                // The first column is a label: left-aligned; figures are right-aligned so that
                // their units line up.
                if i == 0 {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad));
                } else {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                }
                if i + 1 < widths.len() {
                    line.push_str("  ");
                }
            }
            line.trim_end().to_string()
        };
        let _ = writeln!(out, "{}", fmt_line(&self.headers));
        let _ = writeln!(
            out,
            "{}",
            widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("  ")
        );
        for r in &self.rows {
            let _ = writeln!(out, "{}", fmt_line(r));
        }
        for n in &self.notes {
            let _ = writeln!(out, "  {n}");
        }
        out
    }
}

/// A goal printed next to a figure.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// The figure must be at least this (e.g. requests per second).
    AtLeast(f64),
    /// The figure must be below this duration.
    Below(Duration),
    /// The figure must be below this many bytes.
    BytesBelow(u64),
}

impl Target {
    pub fn describe(&self) -> String {
        match self {
            Target::AtLeast(v) => format!(">= {}/s", int(*v as u64)),
            Target::Below(d) => format!("< {}", dur(*d)),
            Target::BytesBelow(b) => format!("< {}", mib(*b)),
        }
    }

    pub fn verdict_rate(&self, per_sec: f64) -> &'static str {
        match self {
            Target::AtLeast(v) => pass(per_sec >= *v),
            _ => "?",
        }
    }

    pub fn verdict_dur(&self, d: Duration) -> &'static str {
        match self {
            Target::Below(t) => pass(d < *t),
            _ => "?",
        }
    }

    pub fn verdict_bytes(&self, b: u64) -> &'static str {
        match self {
            Target::BytesBelow(t) => pass(b < *t),
            _ => "?",
        }
    }
}

fn pass(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

/// A duration with a unit chosen for readability: "850 µs", "1.23 ms", "2.41 s".
pub fn dur(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 10_000.0 {
        format!("{:.2} ms", us / 1e3)
    } else if us < 100_000.0 {
        format!("{:.1} ms", us / 1e3)
    } else if us < 1_000_000.0 {
        format!("{:.0} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

/// An integer with thousands separators: 20000 -> "20,000".
pub fn int(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A rate per second, e.g. "5,123/s".
pub fn rate(per_sec: f64) -> String {
    format!("{}/s", int(per_sec.round() as u64))
}

/// A byte count in MiB with one decimal, e.g. "23.4 MiB".
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// A byte count with an adaptive unit: "812 B", "3.2 KiB", "4.71 MiB".
pub fn bytes(b: u64) -> String {
    let f = b as f64;
    if b < 1024 {
        format!("{b} B")
    } else if f < 1024.0 * 1024.0 {
        format!("{:.1} KiB", f / 1024.0)
    } else {
        format!("{:.2} MiB", f / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_durations_with_readable_units() {
        assert_eq!(dur(Duration::from_micros(850)), "850 µs");
        assert_eq!(dur(Duration::from_micros(1234)), "1.23 ms");
        assert_eq!(dur(Duration::from_micros(45_600)), "45.6 ms");
        assert_eq!(dur(Duration::from_micros(312_400)), "312 ms");
        assert_eq!(dur(Duration::from_millis(2410)), "2.41 s");
    }

    #[test]
    fn formats_integers_rates_and_sizes() {
        assert_eq!(int(0), "0");
        assert_eq!(int(999), "999");
        assert_eq!(int(20_000), "20,000");
        assert_eq!(int(1_234_567), "1,234,567");
        assert_eq!(rate(5123.4), "5,123/s");
        assert_eq!(mib(30 * 1024 * 1024), "30.0 MiB");
        assert_eq!(bytes(812), "812 B");
        assert_eq!(bytes(3277), "3.2 KiB");
        assert_eq!(bytes(4_938_000), "4.71 MiB");
    }

    #[test]
    fn verdicts_compare_against_targets() {
        let t = Target::AtLeast(5000.0);
        assert_eq!(t.verdict_rate(5000.0), "PASS");
        assert_eq!(t.verdict_rate(4999.0), "MISS");
        assert_eq!(t.describe(), ">= 5,000/s");
        let t = Target::Below(Duration::from_millis(10));
        assert_eq!(t.verdict_dur(Duration::from_micros(9_999)), "PASS");
        assert_eq!(t.verdict_dur(Duration::from_millis(10)), "MISS");
        assert_eq!(t.describe(), "< 10.0 ms");
        let t = Target::BytesBelow(30 * 1024 * 1024);
        assert_eq!(t.verdict_bytes(29 * 1024 * 1024), "PASS");
        assert_eq!(t.verdict_bytes(31 * 1024 * 1024), "MISS");
    }

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new("demo", &["metric", "value"]);
        t.row(["creates/s", "5,000/s"]);
        t.row(["p99", "1.2 ms"]);
        t.note("a note");
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "== demo ==");
        assert_eq!(lines[2], "metric       value");
        assert_eq!(lines[3], "---------  -------");
        assert_eq!(lines[4], "creates/s  5,000/s");
        assert_eq!(lines[5], "p99         1.2 ms");
        assert_eq!(lines[6], "  a note");
    }
}
