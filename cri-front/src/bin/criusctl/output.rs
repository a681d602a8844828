//! Output: `-o json|yaml|table`, tables padded like crictl's tabwriter, and CRI enum names.

use anyhow::Context;
use clap::ValueEnum;
use serde::Serialize;

/// Output format of list and inspect commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
    Yaml,
}

/// Print `v` as indented JSON or YAML.
pub fn print_value<T: Serialize>(v: &T, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Yaml => print!("{}", serde_yaml::to_string(v).context("encoding YAML")?),
        _ => println!(
            "{}",
            serde_json::to_string_pretty(v).context("encoding JSON")?
        ),
    }
    Ok(())
}

/// The verbose `info` map of a status response: values that are JSON stay JSON, others text.
pub fn info_json(info: &std::collections::HashMap<String, String>) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    let mut keys: Vec<&String> = info.keys().collect();
    keys.sort();
    for k in keys {
        let v = &info[k];
        m.insert(
            k.clone(),
            serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.clone())),
        );
    }
    serde_json::Value::Object(m)
}

/// A table: columns padded to the widest cell plus three spaces.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|s| s.to_string()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..cols)
            .map(|i| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for r in &self.rows {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate() {
                line.push_str(c);
                if i + 1 < r.len() {
                    let pad = widths[i] - c.chars().count() + 3;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    pub fn print(&self) {
        print!("{}", self.render());
    }
}

/// Ids are shown with 13 characters unless `--no-trunc`.
pub fn trunc_id(id: &str, no_trunc: bool) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    if no_trunc {
        id.to_string()
    } else {
        id.chars().take(13).collect()
    }
}

pub fn pod_state(s: i32) -> &'static str {
    match s {
        0 => "Ready",
        1 => "NotReady",
        _ => "Unknown",
    }
}

pub fn container_state(s: i32) -> &'static str {
    match s {
        0 => "Created",
        1 => "Running",
        2 => "Exited",
        _ => "Unknown",
    }
}

/// Bytes in the short human form crictl uses (`1.23MB`, decimal units).
pub fn human_size(b: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{b}B")
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + UNITS[i]
    }
}

/// `k=v` selectors from repeated `--label` flags.
pub fn labels(pairs: &[String]) -> anyhow::Result<std::collections::HashMap<String, String>> {
    pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("label {p:?}: want key=value"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_columns() {
        let mut t = Table::new(&["A", "LONGER"]);
        t.row(vec!["xyz".into(), "1".into()]);
        assert_eq!(t.render(), "A     LONGER\nxyz   1\n");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_500_000), "1.5MB");
        assert_eq!(human_size(2_000), "2kB");
    }
}
