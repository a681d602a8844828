//! Output: `-o json|yaml|table`, tables padded like crictl's tabwriter, and CRI enum names. JSON and
//! YAML are crictl's: protojson (see `protojson.rs`) in the same top-level shapes.

use crate::protojson;
use anyhow::Context;
use clap::ValueEnum;
use serde_yaml::{Mapping, Value};
use std::collections::HashMap;

/// Output format of list and inspect commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
    Yaml,
}

/// Print `v` as crictl does: indented JSON in `v`'s order, or YAML with sorted keys (crictl turns
/// its JSON into YAML through Go maps).
pub fn print_value(v: &Value, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Yaml => print!(
            "{}",
            serde_yaml::to_string(&sort_keys(v.clone())).context("encoding YAML")?
        ),
        _ => println!(
            "{}",
            serde_json::to_string_pretty(v).context("encoding JSON")?
        ),
    }
    Ok(())
}

/// Print a whole CRI message (proto type `full_name`) as protojson, like crictl's `-o json|yaml`.
pub fn print_message(
    msg: &impl prost::Message,
    full_name: &str,
    format: Format,
) -> anyhow::Result<()> {
    print_value(&protojson::to_value(msg, full_name)?, format)
}

/// crictl's `{"status": ..., <info key>: ...}` of inspect, inspectp, inspecti and info: the status
/// first, then the verbose info keys sorted, values that are JSON as JSON, others as text.
pub fn status_info(status: Value, info: &HashMap<String, String>) -> Value {
    let mut m = Mapping::new();
    m.insert("status".into(), status);
    let mut keys: Vec<&String> = info.keys().collect();
    keys.sort();
    for k in keys {
        let v = &info[k];
        let parsed = serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.clone()));
        m.insert(Value::String(k.clone()), parsed);
    }
    Value::Mapping(m)
}

/// crictl's inspect/inspectp status: top-level fields in proto order with the given times (RFC
/// 3339 text instead of nanoseconds), everything below with sorted keys (crictl re-encodes them
/// through Go maps).
pub fn status_with_times(status: Value, times: &[(&str, String)]) -> Value {
    let Value::Mapping(m) = status else {
        return status;
    };
    let mut out = Mapping::new();
    for (k, v) in m {
        let t = times.iter().find(|(name, _)| k.as_str() == Some(*name));
        let v = match t {
            Some((_, text)) => Value::String(text.clone()),
            None => sort_keys(v),
        };
        out.insert(k, v);
    }
    Value::Mapping(out)
}

/// `v` with every mapping's keys in sorted order.
fn sort_keys(v: Value) -> Value {
    match v {
        Value::Mapping(m) => {
            let mut entries: Vec<(Value, Value)> = m.into_iter().collect();
            entries.sort_by_key(|(k, _)| key_text(k));
            Value::Mapping(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        Value::Sequence(items) => Value::Sequence(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other).unwrap_or_default(),
    }
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
pub fn labels(pairs: &[String]) -> anyhow::Result<HashMap<String, String>> {
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
    fn status_then_sorted_info() {
        let info: HashMap<String, String> = [
            ("zeta".to_string(), "plain text".to_string()),
            ("info".into(), r#"{"pid": 7, "b": true}"#.into()),
        ]
        .into();
        let v = status_info(Value::String("s".into()), &info);
        let text = serde_json::to_string(&v).expect("JSON");
        assert_eq!(
            text,
            r#"{"status":"s","info":{"pid":7,"b":true},"zeta":"plain text"}"#
        );
    }

    #[test]
    fn times_replaced_and_nested_keys_sorted() {
        let status: Value =
            serde_yaml::from_str("{id: x, createdAt: '5', metadata: {name: n, attempt: 0}}")
                .expect("yaml");
        let v = status_with_times(status, &[("createdAt", "1970-01-01T00:00:00Z".into())]);
        assert_eq!(
            serde_json::to_string(&v).expect("JSON"),
            r#"{"id":"x","createdAt":"1970-01-01T00:00:00Z","metadata":{"attempt":0,"name":"n"}}"#
        );
    }

    #[test]
    fn yaml_keys_sorted() {
        let v: Value = serde_yaml::from_str("{b: 1, a: {d: 2, c: 3}}").expect("yaml");
        assert_eq!(
            serde_yaml::to_string(&sort_keys(v)).expect("yaml"),
            "a:\n  c: 3\n  d: 2\nb: 1\n"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_500_000), "1.5MB");
        assert_eq!(human_size(2_000), "2kB");
    }
}
