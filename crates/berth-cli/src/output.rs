//! `--output json|table|tsv`: JSON as the server sent it, an aligned table
//! with a header, or tab-separated values without one. Table on a
//! terminal, JSON otherwise.

use std::io::IsTerminal;

use serde_json::Value;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Pretty-printed JSON.
    Json,
    /// Aligned columns with a header.
    Table,
    /// Tab-separated values, one record a line, no header.
    Tsv,
}

/// The format asked for, else table on a terminal and JSON otherwise.
pub fn resolve(flag: Option<Format>) -> Format {
    flag.unwrap_or_else(|| {
        if std::io::stdout().is_terminal() {
            Format::Table
        } else {
            Format::Json
        }
    })
}

/// One cell: strings bare, arrays joined with `,`, null empty; a record
/// inside a cell by its `name` (`name=value` for a secret shown once).
fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(m)) if m.contains_key("name") => {
            let name = cell(m.get("name"));
            match m.get("value") {
                Some(v) => format!("{name}={}", cell(Some(v))),
                None => name,
            }
        }
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| cell(Some(x)))
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    }
}

/// Render `value` in `format`. `columns` picks the fields of records shown
/// in table/tsv form (all fields of the first record when empty).
pub fn render(value: &Value, format: Format, columns: &[&str]) -> String {
    if format == Format::Json {
        return serde_json::to_string_pretty(value).unwrap_or_default() + "\n";
    }
    let records: Vec<&Value> = match value {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    let cols: Vec<String> = if !columns.is_empty() {
        columns.iter().map(|c| c.to_string()).collect()
    } else {
        match records.first() {
            Some(Value::Object(m)) => m.keys().cloned().collect(),
            _ => Vec::new(),
        }
    };
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| match r {
            Value::Object(m) => cols.iter().map(|c| cell(m.get(c))).collect(),
            other => vec![cell(Some(other))],
        })
        .collect();
    let mut out = String::new();
    if format == Format::Tsv {
        for r in rows {
            out.push_str(&r.join("\t"));
            out.push('\n');
        }
        return out;
    }
    let header: Vec<String> = if cols.is_empty() {
        vec!["Value".into()]
    } else {
        cols.iter().map(|c| title(c)).collect()
    };
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: &[String]| -> String {
        let mut s = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths.get(i).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join("  ");
        s.truncate(s.trim_end().len());
        s + "\n"
    };
    out.push_str(&line(&header));
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&line(&rule));
    for r in &rows {
        out.push_str(&line(r));
    }
    out
}

/// `createdAt` → `CreatedAt`.
fn title(c: &str) -> String {
    let mut chars = c.chars();
    match chars.next() {
        Some(f) => f.to_uppercase().collect::<String>() + chars.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_and_tsv() {
        let v = json!([{"name": "alice", "enabled": true, "groups": ["a", "b"]}, {"name": "bob", "enabled": false, "groups": []}]);
        let t = render(&v, Format::Table, &["name", "enabled", "groups"]);
        assert_eq!(
            t,
            "Name   Enabled  Groups\n-----  -------  ------\nalice  true     a,b\nbob    false\n"
        );
        assert_eq!(
            render(&v, Format::Tsv, &["name", "enabled"]),
            "alice\ttrue\nbob\tfalse\n"
        );
        assert_eq!(render(&json!(["r1", "r2"]), Format::Tsv, &[]), "r1\nr2\n");
        let secrets = json!({"passwords": [{"name": "password1", "createdAt": 1}], "newPasswords": [{"name": "password2", "value": "s3cret"}]});
        assert_eq!(
            render(&secrets, Format::Tsv, &["passwords", "newPasswords"]),
            "password1\tpassword2=s3cret\n"
        );
        let j: Value = serde_json::from_str(&render(&v, Format::Json, &[])).unwrap();
        assert_eq!(j, v);
    }
}
