//! Moving an embedded deployment onto PostgreSQL: every table of the SQLite file is copied into
//! the migrated PostgreSQL database, parents first, in batches read in primary-key order.
//!
//! - **Idempotent**: rows are upserted by the target's primary key, so running the copy again
//!   changes nothing, and a table whose count and checksum already match is not written at all.
//! - **Resumable**: each batch and a checkpoint (the last key copied, in `storage_copy_progress`)
//!   commit in one PostgreSQL transaction, so after an interruption at any point the next run
//!   carries on after the last committed batch.
//! - **Verified**: once a table is done its row counts and a [`checksum`] of its content are
//!   computed on both sides; they must match.
//!
//! Rows travel as JSON: SQLite renders each row with `json_object` (floats with 17 significant
//! digits so they survive exactly), PostgreSQL reads it back with `json_populate_recordset`, which
//! converts every value to the column's type.

mod catalog;
mod checksum;
pub mod healthguard;

use std::ops::ControlFlow;

use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

pub use catalog::{SourceTable, TargetTable};
pub use checksum::Checksum;

use super::{Conn, Db, pending_migrations};
use crate::error::{Error, Result};

/// Where resumable copies keep their checkpoints (in the target).
const PROGRESS_TABLE: &str = "storage_copy_progress";

/// Rows per batch unless told otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 500;

/// How to run a copy.
#[derive(Debug, Clone, Copy)]
pub struct CopyOptions {
    pub batch_size: usize,
    /// Report what would be copied; write nothing (not even migrations).
    pub dry_run: bool,
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self {
            batch_size: DEFAULT_BATCH_SIZE,
            dry_run: false,
        }
    }
}

/// Where a copy stands, passed to the progress callback after each batch.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    pub table: &'a str,
    /// Rows of this table in the target so far (including earlier runs).
    pub done: u64,
    /// Rows of this table in the source.
    pub total: u64,
}

/// What happened to one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TableStatus {
    /// Copied in this run; counts and checksums match.
    Copied,
    /// Counts and checksums already matched: nothing written.
    AlreadyCopied,
    /// Copied, but the target differs from the source (rows the source lacks, or changed ones).
    Mismatch,
    /// Dry run: this many rows would be sent.
    WouldCopy,
    /// Stopped before the table was finished; the next run resumes it.
    Interrupted,
    /// Not reached because an earlier table was interrupted.
    NotStarted,
}

/// The outcome for one table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableReport {
    pub table: String,
    pub status: TableStatus,
    pub source_rows: u64,
    pub target_rows: u64,
    /// Rows sent in this run (dry run: rows that would be sent).
    pub copied: u64,
    /// Rows already copied by an interrupted earlier run that this one carried on from.
    pub resumed_after: Option<u64>,
    pub source_checksum: Option<String>,
    pub target_checksum: Option<String>,
}

/// The outcome of a copy.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CopyReport {
    pub source: String,
    pub target: String,
    pub dry_run: bool,
    /// Target migrations applied first (dry run: pending ones).
    pub migrations: Vec<String>,
    pub tables: Vec<TableReport>,
}

impl CopyReport {
    /// Every table is in the target with matching counts and checksums.
    pub fn verified(&self) -> bool {
        self.tables
            .iter()
            .all(|t| matches!(t.status, TableStatus::Copied | TableStatus::AlreadyCopied))
    }

    /// The copy stopped early (the next run resumes it).
    pub fn interrupted(&self) -> bool {
        self.tables
            .iter()
            .any(|t| t.status == TableStatus::Interrupted)
    }
}

#[derive(diesel::QueryableByName)]
struct JsonRow {
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = Text)]
    row: String,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(diesel::QueryableByName)]
struct Checkpoint {
    #[diesel(sql_type = Text)]
    last_key: String,
    #[diesel(sql_type = BigInt)]
    rows_copied: i64,
}

/// What the target must hold once a table is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Exactly the source's rows: a target row the source lacks is a mismatch (a whole
    /// deployment moved).
    Whole,
    /// The source's rows, beside any others (HealthGuard results merged into a database that
    /// already has some); verification reads back only the rows copied.
    SourceRows,
}

/// Copy every table of the SQLite `source` into the PostgreSQL `target` (migrated first).
/// `progress` is called after each batch; returning `Break` stops after that batch, as an
/// interruption would, and the report says which table to resume.
#[tracing::instrument(skip_all, fields(source = %source.display(), target = %target.display()))]
pub async fn copy_database(
    source: &Db,
    target: &Db,
    options: CopyOptions,
    progress: &mut (dyn FnMut(Progress<'_>) -> ControlFlow<()> + Send),
) -> Result<CopyReport> {
    copy_tables(source, target, None, Scope::Whole, options, progress).await
}

/// The tables of the source, parents first (what [`copy_database`] copies).
pub async fn source_tables(source: &Db) -> Result<Vec<SourceTable>> {
    let mut pooled = source.get().await?;
    catalog::source_tables(&mut pooled.conn()).await
}

/// Copy `tables` (every table of the source when `None`) from the SQLite `source` into the
/// PostgreSQL `target` (migrated first), with the guarantees of this module.
pub async fn copy_tables(
    source: &Db,
    target: &Db,
    tables: Option<Vec<SourceTable>>,
    scope: Scope,
    options: CopyOptions,
    progress: &mut (dyn FnMut(Progress<'_>) -> ControlFlow<()> + Send),
) -> Result<CopyReport> {
    if source.backend() != "sqlite" || target.backend() != "postgres" {
        return Err(Error::Invalid(format!(
            "copy goes from an SQLite file to PostgreSQL, not from {} to {}",
            source.backend(),
            target.backend()
        )));
    }
    let migrations = if options.dry_run {
        pending_migrations(target).await?
    } else {
        target.run_migrations().await?
    };
    let mut src_pooled = source.get().await?;
    let mut src = src_pooled.conn();
    let mut dst_pooled = target.get().await?;
    let mut dst = dst_pooled.conn();
    let tables = match tables {
        Some(tables) => tables,
        None => {
            let behind = pending_migrations(source).await?;
            if !behind.is_empty() {
                return Err(Error::Invalid(format!(
                    "the source is behind ({} pending): run `codeguardians migrate` on it first",
                    behind.join(", ")
                )));
            }
            catalog::source_tables(&mut src).await?
        }
    };
    let source_id = source.display();
    let batch_size = options.batch_size.max(1);
    let mut reports = Vec::with_capacity(tables.len());
    let mut stopped = false;
    for table in &tables {
        let source_rows = count(&mut src, &table.from).await?;
        if stopped {
            reports.push(TableReport::new(
                table,
                TableStatus::NotStarted,
                source_rows,
            ));
            continue;
        }
        let Some(shape) = catalog::target_table(&mut dst, &table.name).await? else {
            if options.dry_run {
                let mut report = TableReport::new(table, TableStatus::WouldCopy, source_rows);
                report.copied = source_rows;
                reports.push(report);
                continue;
            }
            return Err(Error::Invalid(format!(
                "the target has no table {}: its migrations differ from the source's",
                table.name
            )));
        };
        if let Some(missing) = table
            .columns
            .iter()
            .find(|c| shape.column_type(c).is_none())
        {
            return Err(Error::Invalid(format!(
                "the target's {} has no column {missing}: its migrations differ from the source's",
                table.name
            )));
        }
        let report = if options.dry_run {
            plan_table(&mut dst, &source_id, table, source_rows).await?
        } else {
            copy_table(
                (&mut src, &mut dst),
                &source_id,
                table,
                &shape,
                (scope, source_rows, batch_size),
                progress,
            )
            .await
            .map_err(|e| in_table(&table.name, e))?
        };
        stopped = report.status == TableStatus::Interrupted;
        reports.push(report);
    }
    Ok(CopyReport {
        source: source_id,
        target: target.display(),
        dry_run: options.dry_run,
        migrations,
        tables: reports,
    })
}

impl TableReport {
    fn new(table: &SourceTable, status: TableStatus, source_rows: u64) -> Self {
        Self {
            table: table.name.clone(),
            status,
            source_rows,
            target_rows: 0,
            copied: 0,
            resumed_after: None,
            source_checksum: None,
            target_checksum: None,
        }
    }
}

async fn plan_table(
    dst: &mut Conn<'_>,
    source_id: &str,
    table: &SourceTable,
    source_rows: u64,
) -> Result<TableReport> {
    let mut report = TableReport::new(table, TableStatus::WouldCopy, source_rows);
    report.target_rows = count(dst, &quote(&table.name)).await?;
    report.resumed_after = checkpoint(dst, source_id, &table.name)
        .await?
        .map(|c| u64::try_from(c.rows_copied).unwrap_or(0));
    report.copied = source_rows.saturating_sub(report.resumed_after.unwrap_or(0));
    Ok(report)
}

/// Copy one table: `(src, dst)` connections, `(scope, source rows, batch size)`.
async fn copy_table(
    (src, dst): (&mut Conn<'_>, &mut Conn<'_>),
    source_id: &str,
    table: &SourceTable,
    shape: &TargetTable,
    (scope, source_rows, batch_size): (Scope, u64, usize),
    progress: &mut (dyn FnMut(Progress<'_>) -> ControlFlow<()> + Send),
) -> Result<TableReport> {
    let mut report = TableReport::new(table, TableStatus::Copied, source_rows);
    let resume = checkpoint(dst, source_id, &table.name).await?;
    let may_match =
        scope == Scope::SourceRows || count(dst, &quote(&table.name)).await? == source_rows;
    if resume.is_none() && may_match {
        let (source_sum, target_sum) = checksums(src, dst, table, shape, scope, batch_size).await?;
        if source_sum == target_sum {
            report.status = TableStatus::AlreadyCopied;
            report.target_rows = target_sum.rows();
            report.source_checksum = Some(source_sum.hex());
            report.target_checksum = Some(target_sum.hex());
            return Ok(report);
        }
    }
    let mut done = resume
        .as_ref()
        .map_or(0, |c| u64::try_from(c.rows_copied).unwrap_or(0));
    report.resumed_after = resume.as_ref().map(|_| done);
    let mut after = resume.map(|c| c.last_key);
    let read = sqlite_select(table, shape, batch_size);
    let write = postgres_upsert(table, shape);
    loop {
        let rows = read_source(src, &read, after.as_deref()).await?;
        let Some(last) = rows.last() else { break };
        let last_key = last.key.clone();
        let sent = rows.len() as u64;
        let batch = batch_json(&rows);
        let copied = done + sent;
        dst.transaction(async |conn: &mut Conn<'_>| -> Result<()> {
            let pg = postgres(conn)?;
            diesel::sql_query(&write)
                .bind::<Text, _>(&batch)
                .execute(&mut *pg)
                .await?;
            diesel::sql_query(format!(
                "INSERT INTO {PROGRESS_TABLE} (source, table_name, last_key, rows_copied) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (source, table_name) DO UPDATE SET \
                 last_key = EXCLUDED.last_key, rows_copied = EXCLUDED.rows_copied, \
                 updated_at = now()"
            ))
            .bind::<Text, _>(source_id)
            .bind::<Text, _>(&table.name)
            .bind::<Text, _>(&last_key)
            .bind::<BigInt, _>(i64::try_from(copied).unwrap_or(i64::MAX))
            .execute(&mut *pg)
            .await?;
            Ok(())
        })
        .await?;
        done = copied;
        report.copied += sent;
        after = Some(last_key);
        let step = progress(Progress {
            table: &table.name,
            done,
            total: source_rows,
        });
        if step.is_break() {
            report.status = TableStatus::Interrupted;
            report.target_rows = count(dst, &quote(&table.name)).await?;
            return Ok(report);
        }
    }
    let (source_sum, target_sum) = checksums(src, dst, table, shape, scope, batch_size).await?;
    report.target_rows = match scope {
        Scope::Whole => count(dst, &quote(&table.name)).await?,
        Scope::SourceRows => target_sum.rows(),
    };
    if report.target_rows != source_rows || source_sum != target_sum {
        report.status = TableStatus::Mismatch;
    }
    report.source_checksum = Some(source_sum.hex());
    report.target_checksum = Some(target_sum.hex());
    // The table is complete: a later run starts from its first row again (and writes nothing
    // when it still matches).
    diesel::sql_query(format!(
        "DELETE FROM {PROGRESS_TABLE} WHERE source = $1 AND table_name = $2"
    ))
    .bind::<Text, _>(source_id)
    .bind::<Text, _>(&table.name)
    .execute(postgres(dst)?)
    .await?;
    Ok(report)
}

/// Both sides' checksums of one table, each read in batches in its own key order; with
/// [`Scope::SourceRows`] the target side is the rows whose keys the source's batches hold.
async fn checksums(
    src: &mut Conn<'_>,
    dst: &mut Conn<'_>,
    table: &SourceTable,
    shape: &TargetTable,
    scope: Scope,
    batch_size: usize,
) -> Result<(Checksum, Checksum)> {
    let mut source_sum = Checksum::default();
    let mut target_sum = Checksum::default();
    let read = sqlite_select(table, shape, batch_size);
    let matching = postgres_matching(&table.name, shape);
    let mut after: Option<String> = None;
    loop {
        let rows = read_source(src, &read, after.as_deref()).await?;
        let Some(last) = rows.last() else { break };
        after = Some(last.key.clone());
        for row in &rows {
            source_sum.add(shape, &parse(&row.row)?);
        }
        if scope == Scope::SourceRows {
            let batch: Vec<JsonRow> = diesel::sql_query(&matching)
                .bind::<Text, _>(batch_json(&rows))
                .load(postgres(dst)?)
                .await?;
            for row in &batch {
                target_sum.add(shape, &parse(&row.row)?);
            }
        }
    }
    if scope == Scope::SourceRows {
        return Ok((source_sum, target_sum));
    }
    let read = postgres_select(&table.name, shape, batch_size);
    let mut after: Option<String> = None;
    loop {
        let pg = postgres(dst)?;
        let rows: Vec<JsonRow> = match &after {
            None => diesel::sql_query(&read.first).load(pg).await?,
            Some(key) => {
                diesel::sql_query(&read.next)
                    .bind::<Text, _>(key)
                    .load(pg)
                    .await?
            }
        };
        let Some(last) = rows.last() else { break };
        after = Some(last.key.clone());
        for row in &rows {
            target_sum.add(shape, &parse(&row.row)?);
        }
    }
    Ok((source_sum, target_sum))
}

/// The rows of one batch as the JSON array `json_populate_recordset` reads.
fn batch_json(rows: &[JsonRow]) -> String {
    format!(
        "[{}]",
        rows.iter()
            .map(|r| r.row.as_str())
            .collect::<Vec<_>>()
            .join(",")
    )
}

fn parse(row: &str) -> Result<serde_json::Value> {
    serde_json::from_str(row).map_err(|e| Error::Corrupt(format!("row rendered as JSON: {e}")))
}

fn postgres<'a>(conn: &'a mut Conn<'_>) -> Result<&'a mut AsyncPgConnection> {
    match conn {
        Conn::Postgres(c) => Ok(&mut **c),
        Conn::Sqlite(_) => Err(Error::Unsupported("copying into anything but PostgreSQL")),
    }
}

fn in_table(table: &str, err: Error) -> Error {
    match err {
        Error::Conflict(m) => Error::Conflict(format!("table {table}: {m}")),
        Error::Database(e) => Error::Invalid(format!("table {table}: {e}")),
        Error::Corrupt(m) => Error::Corrupt(format!("table {table}: {m}")),
        other => other,
    }
}

pub(crate) fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

fn key_list(key: &[String]) -> String {
    key.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ")
}

/// The two forms of a batched read: the first batch, and the batch after a key bound as `$1`/`?1`
/// (a JSON array of the key's values).
struct BatchedRead {
    first: String,
    next: String,
}

/// SQLite side: each row as a JSON object, and its key as a JSON array.
fn sqlite_select(table: &SourceTable, shape: &TargetTable, limit: usize) -> BatchedRead {
    let fields = table
        .columns
        .iter()
        .zip(&table.select)
        .map(|(c, expr)| {
            let value = match shape.column_type(c) {
                Some("json" | "jsonb") => format!("json({expr})"),
                // The default 15 digits would round the value; 17 give it back exactly.
                Some("double precision" | "real" | "numeric") => format!(
                    "CASE WHEN typeof({expr}) IN ('real', 'integer') \
                     THEN printf('%!.17g', {expr}) ELSE {expr} END"
                ),
                _ => expr.clone(),
            };
            format!("'{}', {value}", c.replace('\'', "''"))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let key = table.key.join(", ");
    let from = format!(
        "SELECT json_array({key}) AS key, json_object({fields}) AS row FROM {}",
        table.from
    );
    let bound = (0..table.key.len())
        .map(|i| format!("json_extract(?1, '$[{i}]')"))
        .collect::<Vec<_>>()
        .join(", ");
    BatchedRead {
        first: format!("{from} ORDER BY {key} LIMIT {limit}"),
        next: format!("{from} WHERE ({key}) > ({bound}) ORDER BY {key} LIMIT {limit}"),
    }
}

/// A target row as a JSON object. Floats travel as text, like the SQLite side's: serde_json's
/// default float parser can be one unit in the last place off, Rust's `parse` is not.
fn postgres_row(shape: &TargetTable) -> String {
    let fields = shape
        .columns
        .iter()
        .map(|(c, ty)| {
            let q = quote(c);
            let value = match ty.as_str() {
                "double precision" | "real" | "numeric" => format!("{q}::text"),
                _ => q,
            };
            format!("'{}', {value}", c.replace('\'', "''"))
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!("json_build_object({fields})::text")
}

/// The target rows whose keys are those of a batch (`$1`, the batch's rows as a JSON array).
fn postgres_matching(name: &str, shape: &TargetTable) -> String {
    let key = key_list(&shape.key);
    format!(
        "SELECT ''::text AS key, {row} AS row FROM {t} WHERE ({key}) IN \
         (SELECT {key} FROM json_populate_recordset(NULL::{t}, $1::json))",
        row = postgres_row(shape),
        t = quote(name)
    )
}

/// PostgreSQL side, in the target's own key order.
fn postgres_select(name: &str, shape: &TargetTable, limit: usize) -> BatchedRead {
    let key = key_list(&shape.key);
    let from = format!(
        "SELECT json_build_array({key})::text AS key, {} AS row FROM {}",
        postgres_row(shape),
        quote(name)
    );
    let bound = shape
        .key
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let ty = shape.column_type(k).unwrap_or("text");
            format!("(($1::json)->>{i})::{ty}")
        })
        .collect::<Vec<_>>()
        .join(", ");
    BatchedRead {
        first: format!("{from} ORDER BY {key} LIMIT {limit}"),
        next: format!("{from} WHERE ({key}) > ({bound}) ORDER BY {key} LIMIT {limit}"),
    }
}

/// One batch (`$1`, a JSON array of row objects) upserted by the target's primary key.
fn postgres_upsert(table: &SourceTable, shape: &TargetTable) -> String {
    let columns = key_list(&table.columns);
    let conflict = key_list(&shape.key);
    let updates: Vec<String> = table
        .columns
        .iter()
        .filter(|c| !shape.key.contains(c))
        .map(|c| format!("{q} = EXCLUDED.{q}", q = quote(c)))
        .collect();
    let action = if updates.is_empty() {
        "DO NOTHING".to_owned()
    } else {
        format!("DO UPDATE SET {}", updates.join(", "))
    };
    format!(
        "INSERT INTO {t} ({columns}) SELECT {columns} \
         FROM json_populate_recordset(NULL::{t}, $1::json) ON CONFLICT ({conflict}) {action}",
        t = quote(&table.name)
    )
}

async fn read_source(
    src: &mut Conn<'_>,
    read: &BatchedRead,
    after: Option<&str>,
) -> Result<Vec<JsonRow>> {
    let Conn::Sqlite(c) = src else {
        return Err(Error::Unsupported("copying from anything but SQLite"));
    };
    Ok(match after {
        None => diesel::sql_query(&read.first).load(&mut **c).await?,
        Some(key) => {
            diesel::sql_query(&read.next)
                .bind::<Text, _>(key)
                .load(&mut **c)
                .await?
        }
    })
}

/// Rows of a `FROM` clause (a quoted table name, possibly with an alias).
async fn count(conn: &mut Conn<'_>, from: &str) -> Result<u64> {
    let sql = format!("SELECT count(*) AS n FROM {from}");
    let row: Count = crate::with_conn!(conn, |c| diesel::sql_query(&sql).get_result(c).await)?;
    Ok(u64::try_from(row.n).unwrap_or(0))
}

async fn checkpoint(
    dst: &mut Conn<'_>,
    source_id: &str,
    table: &str,
) -> Result<Option<Checkpoint>> {
    let pg = postgres(dst)?;
    // A target not migrated yet (dry run) has no checkpoint table.
    let exists: Count = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relname = '{PROGRESS_TABLE}'"
    ))
    .get_result(&mut *pg)
    .await?;
    if exists.n == 0 {
        return Ok(None);
    }
    let rows: Vec<Checkpoint> = diesel::sql_query(format!(
        "SELECT last_key, rows_copied FROM {PROGRESS_TABLE} WHERE source = $1 AND table_name = $2"
    ))
    .bind::<Text, _>(source_id)
    .bind::<Text, _>(table)
    .load(pg)
    .await?;
    Ok(rows.into_iter().next())
}
