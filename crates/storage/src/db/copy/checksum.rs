//! A checksum of a table's content that is equal on SQLite and PostgreSQL exactly when the rows
//! are: each value is first brought to one canonical form by its PostgreSQL column type (SQLite
//! keeps booleans as 0/1, times as RFC 3339 text, JSON as JSONB blobs), each row is hashed, and
//! the row hashes are added up, so the order rows are read in does not matter.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::catalog::TargetTable;

/// Running checksum of a set of rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checksum {
    sum: u128,
    rows: u64,
}

impl Checksum {
    /// Add one row (a JSON object of column name to value).
    pub fn add(&mut self, table: &TargetTable, row: &Value) {
        let mut hasher = Sha256::new();
        for (name, ty) in &table.columns {
            hasher.update(name.as_bytes());
            hasher.update([0x1f]);
            hasher.update(canonical(row.get(name).unwrap_or(&Value::Null), ty).as_bytes());
            hasher.update([0x1e]);
        }
        let digest = hasher.finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        self.sum = self.sum.wrapping_add(u128::from_be_bytes(first));
        self.rows += 1;
    }

    /// How many rows were added.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Hex digest, as printed in reports.
    pub fn hex(&self) -> String {
        format!("{:032x}", self.sum)
    }
}

/// One value in a form both backends agree on.
fn canonical(value: &Value, ty: &str) -> String {
    if value.is_null() {
        return "\u{0}null".to_owned();
    }
    match ty {
        "boolean" => match value {
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => (n.as_f64() != Some(0.0)).to_string(),
            Value::String(s) => matches!(s.as_str(), "t" | "true" | "1").to_string(),
            other => other.to_string(),
        },
        "uuid" => text(value).to_lowercase(),
        "timestamp with time zone" | "timestamp without time zone" => {
            let raw = text(value);
            chrono::DateTime::parse_from_rfc3339(&raw)
                .map(|t| t.timestamp_micros().to_string())
                .unwrap_or(raw)
        }
        "double precision" | "real" | "numeric" => number(value)
            .map(|f| format!("{:016x}", f.to_bits()))
            .unwrap_or_else(|| text(value)),
        "integer" | "bigint" | "smallint" => match value {
            Value::Number(n) => n.to_string(),
            other => text(other),
        },
        "json" | "jsonb" => canonical_json(value),
        _ => text(value),
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Keys sorted (serde_json's map is ordered) and every number as an `f64`, since PostgreSQL's
/// `jsonb` and SQLite's JSONB may spell the same number differently (`1e2`, `100`).
fn canonical_json(value: &Value) -> String {
    fn normalise(value: &Value) -> Value {
        match value {
            Value::Number(n) => n
                .as_f64()
                .and_then(serde_json::Number::from_f64)
                .map_or(Value::Null, Value::Number),
            Value::Array(items) => Value::Array(items.iter().map(normalise).collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), normalise(v))).collect())
            }
            other => other.clone(),
        }
    }
    normalise(value).to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn table() -> TargetTable {
        TargetTable {
            columns: [
                ("id", "uuid"),
                ("on", "boolean"),
                ("at", "timestamp with time zone"),
                ("score", "double precision"),
                ("meta", "jsonb"),
                ("n", "bigint"),
            ]
            .map(|(n, t)| (n.to_owned(), t.to_owned()))
            .to_vec(),
            key: vec!["id".to_owned()],
        }
    }

    #[test]
    fn sqlite_and_postgres_spellings_of_one_row_agree() {
        let sqlite = json!({"id": "019ac000-0000-7000-8000-00000000000a", "on": 1,
            "at": "2026-12-02T16:50:22.123456Z", "score": "0.10000000000000001",
            "meta": {"b": 1e2, "a": [true]}, "n": 5});
        let postgres = json!({"id": "019AC000-0000-7000-8000-00000000000A", "on": true,
            "at": "2026-12-02T16:50:22.123456+00:00", "score": 0.1,
            "meta": {"a": [true], "b": 100}, "n": 5});
        let (mut a, mut b) = (Checksum::default(), Checksum::default());
        a.add(&table(), &sqlite);
        b.add(&table(), &postgres);
        assert_eq!(a, b);
    }

    #[test]
    fn any_changed_value_changes_the_checksum() {
        let row = json!({"id": "019ac000-0000-7000-8000-00000000000a", "on": true,
            "at": "2026-12-02T16:50:22Z", "score": 0.5, "meta": {}, "n": 5});
        let mut base = Checksum::default();
        base.add(&table(), &row);
        for (column, other) in [
            ("on", json!(false)),
            ("at", json!("2026-12-02T16:50:23Z")),
            ("score", json!(0.25)),
            ("meta", json!({"a": 1})),
            ("n", json!(6)),
            ("n", Value::Null),
        ] {
            let mut changed = row.clone();
            changed[column] = other;
            let mut sum = Checksum::default();
            sum.add(&table(), &changed);
            assert_ne!(sum, base, "{column}");
        }
    }

    #[test]
    fn row_order_does_not_matter() {
        let rows = [json!({"id": "a", "n": 1}), json!({"id": "b", "n": 2})];
        let (mut forward, mut backward) = (Checksum::default(), Checksum::default());
        rows.iter().for_each(|r| forward.add(&table(), r));
        rows.iter().rev().for_each(|r| backward.add(&table(), r));
        assert_eq!(forward, backward);
    }
}
