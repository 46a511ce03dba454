//! What the copy needs to know about each table, read from the databases themselves so a table
//! added by a later migration is copied without touching this code: the source's tables in
//! foreign-key order with their keys, and the target's column types and key.

use std::collections::{BTreeMap, BTreeSet};

use diesel::sql_types::{Integer, Text};
use diesel_async::RunQueryDsl;

use crate::db::Conn;
use crate::error::{Error, Result};

/// Bookkeeping tables that are not deployment data.
const SKIPPED: &[&str] = &["__diesel_schema_migrations", super::PROGRESS_TABLE];

/// Where one target table's rows come from in the source (SQLite): the same table for a copy, a
/// mapping of a legacy table otherwise.
#[derive(Debug, Clone)]
pub struct SourceTable {
    /// The target table.
    pub name: String,
    /// The `FROM` clause of the source (a quoted table name, possibly with an alias).
    pub from: String,
    /// Target column names.
    pub columns: Vec<String>,
    /// The SQLite expression giving each column, in `columns` order.
    pub select: Vec<String>,
    /// Source key expressions in key order (indexed, so batches are read in key order cheaply).
    pub key: Vec<String>,
}

impl SourceTable {
    /// The same table on both sides, column for column.
    pub fn identity(name: &str, columns: Vec<String>, key: &[String]) -> Self {
        Self {
            name: name.to_owned(),
            from: super::quote(name),
            select: columns.iter().map(|c| super::quote(c)).collect(),
            columns,
            key: key.iter().map(|k| super::quote(k)).collect(),
        }
    }
}

/// One table as the target (PostgreSQL) sees it.
#[derive(Debug, Clone)]
pub struct TargetTable {
    /// Column name and type as `format_type` prints it (`uuid`, `timestamp with time zone`, …).
    pub columns: Vec<(String, String)>,
    pub key: Vec<String>,
}

impl TargetTable {
    pub fn column_type(&self, column: &str) -> Option<&str> {
        self.columns
            .iter()
            .find(|(name, _)| name == column)
            .map(|(_, ty)| ty.as_str())
    }
}

#[derive(diesel::QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(diesel::QueryableByName)]
struct SqliteColumn {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Integer)]
    pk: i32,
}

#[derive(diesel::QueryableByName)]
struct Edge {
    #[diesel(sql_type = Text)]
    child: String,
    #[diesel(sql_type = Text)]
    parent: String,
}

#[derive(diesel::QueryableByName)]
struct TypedColumn {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    ty: String,
}

/// Every table of the SQLite source, parents before the tables that reference them.
pub async fn source_tables(conn: &mut Conn<'_>) -> Result<Vec<SourceTable>> {
    let Conn::Sqlite(c) = conn else {
        return Err(Error::Unsupported("copying from anything but SQLite"));
    };
    let names: Vec<String> = diesel::sql_query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         ORDER BY name",
    )
    .load::<Name>(&mut **c)
    .await?
    .into_iter()
    .map(|n| n.name)
    .filter(|n| !SKIPPED.contains(&n.as_str()))
    .collect();
    let edges: Vec<(String, String)> = diesel::sql_query(
        "SELECT m.name AS child, f.\"table\" AS parent \
         FROM sqlite_master m, pragma_foreign_key_list(m.name) f WHERE m.type = 'table'",
    )
    .load::<Edge>(&mut **c)
    .await?
    .into_iter()
    .map(|e| (e.child, e.parent))
    .collect();
    let mut tables = Vec::new();
    for name in dependency_order(&names, &edges) {
        let mut columns: Vec<SqliteColumn> =
            diesel::sql_query("SELECT name, pk FROM pragma_table_info(?) ORDER BY cid")
                .bind::<Text, _>(&name)
                .load(&mut **c)
                .await?;
        let all = columns.iter().map(|col| col.name.clone()).collect();
        columns.retain(|col| col.pk > 0);
        columns.sort_by_key(|col| col.pk);
        if columns.is_empty() {
            return Err(Error::Invalid(format!(
                "table {name} has no primary key: its rows cannot be copied resumably"
            )));
        }
        let key: Vec<String> = columns.into_iter().map(|col| col.name).collect();
        tables.push(SourceTable::identity(&name, all, &key));
    }
    Ok(tables)
}

/// Column types and primary key of `table` in the PostgreSQL target; `None` when it has no such
/// table.
pub async fn target_table(conn: &mut Conn<'_>, table: &str) -> Result<Option<TargetTable>> {
    let Conn::Postgres(c) = conn else {
        return Err(Error::Unsupported("copying into anything but PostgreSQL"));
    };
    let columns: Vec<TypedColumn> = diesel::sql_query(
        "SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS ty \
         FROM pg_attribute a JOIN pg_class r ON r.oid = a.attrelid \
         JOIN pg_namespace n ON n.oid = r.relnamespace \
         WHERE n.nspname = current_schema() AND r.relname = $1 \
           AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
    )
    .bind::<Text, _>(table)
    .load(&mut **c)
    .await?;
    if columns.is_empty() {
        return Ok(None);
    }
    let key: Vec<String> = diesel::sql_query(
        "SELECT a.attname::text AS name \
         FROM pg_index i JOIN pg_class r ON r.oid = i.indrelid \
         JOIN pg_namespace n ON n.oid = r.relnamespace \
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
         WHERE n.nspname = current_schema() AND r.relname = $1 AND i.indisprimary \
         ORDER BY array_position(i.indkey::int2[], a.attnum)",
    )
    .bind::<Text, _>(table)
    .load::<Name>(&mut **c)
    .await?
    .into_iter()
    .map(|n| n.name)
    .collect();
    if key.is_empty() {
        return Err(Error::Invalid(format!(
            "target table {table} has no primary key: a resumed copy could duplicate rows"
        )));
    }
    Ok(Some(TargetTable {
        columns: columns.into_iter().map(|c| (c.name, c.ty)).collect(),
        key,
    }))
}

/// Kahn's order over `(child, parent)` edges, alphabetical among tables that are free at the
/// same time; self references are ignored, and a cycle (none exists today) leaves its tables in
/// alphabetical order at the end, where the target's constraints will name the problem.
fn dependency_order(names: &[String], edges: &[(String, String)]) -> Vec<String> {
    let known: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    let mut parents: BTreeMap<&str, BTreeSet<&str>> = names
        .iter()
        .map(|n| (n.as_str(), BTreeSet::new()))
        .collect();
    for (child, parent) in edges {
        if child != parent
            && known.contains(parent.as_str())
            && let Some(set) = parents.get_mut(child.as_str())
        {
            set.insert(parent.as_str());
        }
    }
    let mut order: Vec<String> = Vec::with_capacity(names.len());
    while !parents.is_empty() {
        let ready: Vec<&str> = parents
            .iter()
            .filter(|(_, p)| p.is_empty())
            .map(|(n, _)| *n)
            .collect();
        let batch = if ready.is_empty() {
            parents.keys().copied().collect()
        } else {
            ready
        };
        for name in batch {
            parents.remove(name);
            for set in parents.values_mut() {
                set.remove(name);
            }
            order.push(name.to_owned());
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::dependency_order;

    #[test]
    fn parents_come_before_the_tables_that_reference_them() {
        let names: Vec<String> = ["sessions", "organizations", "users", "api_keys"]
            .map(String::from)
            .to_vec();
        let edges = [
            ("sessions", "users"),
            ("organizations", "users"),
            ("api_keys", "organizations"),
            ("api_keys", "users"),
            ("users", "users"),
        ]
        .map(|(c, p)| (c.to_owned(), p.to_owned()));
        assert_eq!(
            dependency_order(&names, &edges),
            ["users", "organizations", "sessions", "api_keys"]
        );
    }
}
