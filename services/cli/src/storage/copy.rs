//! `codeguardians storage copy --from sqlite://… --to postgres://…`: move an embedded deployment
//! onto PostgreSQL (every table; see `cg_storage::db::copy` for the guarantees). Progress goes
//! to stderr; Ctrl-C stops after the batch in flight, and running the same command again resumes.
//! Exit status: 0 verified (or dry run), 1 a table differs after copying, 3 interrupted.

use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cg_storage::Db;
use cg_storage::db::copy::{
    CopyOptions, CopyReport, DEFAULT_BATCH_SIZE, Progress, Scope, SourceTable, TableStatus,
    copy_tables,
};

/// Exit status of a copy stopped before the end (resumable).
const EXIT_INTERRUPTED: u8 = 3;

#[derive(Debug, clap::Args)]
pub struct CopyArgs {
    /// The embedded database: `sqlite://PATH` (e.g. `sqlite://./data/codeguardians.db`).
    #[arg(long)]
    from: String,
    /// The PostgreSQL database: `postgres://USER:PASSWORD@HOST:PORT/DB` (migrated first).
    #[arg(long)]
    to: String,
    #[command(flatten)]
    run: RunArgs,
}

/// How a copy runs and reports (shared with `migrate-healthguard-to-postgres`).
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Report per table what would be copied; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Rows per batch (each batch commits with its checkpoint).
    #[arg(long, default_value_t = DEFAULT_BATCH_SIZE)]
    batch_size: usize,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: CopyArgs) -> anyhow::Result<ExitCode> {
    let source = super::open(&args.from, "--from", true).await?;
    let target = super::open(&args.to, "--to", false).await?;
    run_copy(&source, &target, None, Scope::Whole, &args.run).await
}

/// Run a copy with a progress bar and Ctrl-C handling; print the report; map it to the exit
/// status.
pub async fn run_copy(
    source: &Db,
    target: &Db,
    tables: Option<Vec<SourceTable>>,
    scope: Scope,
    run: &RunArgs,
) -> anyhow::Result<ExitCode> {
    let options = CopyOptions {
        batch_size: run.batch_size,
        dry_run: run.dry_run,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let on_signal = Arc::clone(&stop);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nstopping after the batch in flight; run the same command to resume");
            on_signal.store(true, Ordering::SeqCst);
        }
    });
    let terminal = std::io::stderr().is_terminal();
    let mut bar = Bar {
        terminal,
        last: None,
    };
    let mut progress = |p: Progress<'_>| {
        bar.show(p);
        if stop.load(Ordering::SeqCst) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    let report = copy_tables(source, target, tables, scope, options, &mut progress).await?;
    if terminal {
        eprintln!();
    }
    if run.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(if report.dry_run || report.verified() {
        ExitCode::SUCCESS
    } else if report.interrupted() {
        ExitCode::from(EXIT_INTERRUPTED)
    } else {
        ExitCode::FAILURE
    })
}

/// Progress on stderr: a bar redrawn in place on a terminal, otherwise (logs) a line each time a
/// table passes another tenth.
struct Bar {
    terminal: bool,
    last: Option<(String, u64)>,
}

impl Bar {
    fn show(&mut self, p: Progress<'_>) {
        const WIDTH: u64 = 30;
        let total = p.total.max(1);
        if self.terminal {
            let filled = (p.done * WIDTH / total).min(WIDTH);
            let bar: String = (0..WIDTH)
                .map(|i| if i < filled { '#' } else { '.' })
                .collect();
            eprint!("\r[{bar}] {} {}/{}   ", p.table, p.done, p.total);
            let _ = std::io::stderr().flush();
            return;
        }
        let tenth = p.done * 10 / total;
        if self.last.as_ref() != Some(&(p.table.to_owned(), tenth)) {
            eprintln!("{}: {}/{} rows", p.table, p.done, p.total);
            self.last = Some((p.table.to_owned(), tenth));
        }
    }
}

fn print_report(report: &CopyReport) {
    println!("{} -> {}", report.source, report.target);
    if !report.migrations.is_empty() {
        let verb = if report.dry_run { "pending" } else { "applied" };
        println!("target migrations {verb}: {}", report.migrations.join(", "));
    }
    println!(
        "{:<32} {:>10} {:>10} {:>10}  {:<15} checksum",
        "table", "source", "target", "copied", "status"
    );
    for t in &report.tables {
        let status = match t.status {
            TableStatus::Copied => "copied",
            TableStatus::AlreadyCopied => "already copied",
            TableStatus::Mismatch => "MISMATCH",
            TableStatus::WouldCopy => "would copy",
            TableStatus::Interrupted => "interrupted",
            TableStatus::NotStarted => "not started",
        };
        let checksum = match (&t.source_checksum, &t.target_checksum) {
            (Some(s), Some(d)) if s == d => s.clone(),
            (Some(s), Some(d)) => format!("source {s} target {d}"),
            _ => String::new(),
        };
        println!(
            "{:<32} {:>10} {:>10} {:>10}  {status:<15} {checksum}",
            t.table, t.source_rows, t.target_rows, t.copied
        );
    }
    let total: u64 = report.tables.iter().map(|t| t.copied).sum();
    if report.dry_run {
        println!("dry run: {total} rows would be copied; nothing written");
    } else if report.verified() {
        println!("verified: every table's row count and checksum match ({total} rows copied)");
    } else if report.interrupted() {
        println!("interrupted after {total} rows: run the same command again to resume");
    } else {
        println!("FAILED: the tables marked MISMATCH differ between source and target");
    }
}
