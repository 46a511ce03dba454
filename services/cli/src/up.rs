//! `codeguardians up`: the whole system on one machine with nothing else installed.
//!
//! Builds the six service binaries when run from the source tree, migrates the embedded SQLite
//! database once, starts each service as its own process on embedded storage, forwards their logs
//! with a service prefix, waits until every one reports ready, and stops them all on Ctrl-C,
//! SIGTERM, or as soon as one of them dies. Each service also gets its own admin port (`/metrics`,
//! detailed `/health`), and new organisations get a tier that includes every guard.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cg_guard_api::GuardKind;
use cg_storage::config::Needs;
use cg_storage::{Db, StorageConfig};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::signal::unix::{SignalKind, signal};

/// Every service, in port order: the gateway at the base port, the guards after it.
const SERVICES: [&str; 6] = [
    "gateway",
    "tokenguard",
    "trustguard",
    "contextguard",
    "biasguard",
    "healthguard",
];
const STOP_GRACE: Duration = Duration::from_secs(15);
/// The tier `up` gives new organisations unless told otherwise: every guard, generous limits.
const UP_DEFAULT_TIER: &str = "enterprise";
/// Where the first scan is explained (printed once everything is ready).
const QUICKSTART: &str = "README.md, \"Quickstart: a first scan\" (register, log in, create an API key, POST /api/v1/guards/process)";
const READY_POLL: Duration = Duration::from_millis(200);

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Folder for the SQLite database and uploaded files.
    #[arg(long, env = "CG_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Address every service listens on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port of the gateway; the five guards take the next five ports.
    #[arg(long, default_value_t = 8000)]
    base_port: u16,
    /// Admin port of the gateway (`/metrics`, detailed `/health`); the guards take the next five
    /// [default: --base-port + 1000].
    #[arg(long)]
    admin_base_port: Option<u16>,
    /// Tier of every organisation created while running (its guards, limits and budget).
    #[arg(long, env = "DEFAULT_TIER", default_value = UP_DEFAULT_TIER)]
    default_tier: String,
    /// Do not build; use the binaries already in --bin-dir (or beside this one).
    #[arg(long)]
    no_build: bool,
    /// Folder holding the service binaries (default: the folder of this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Seconds to wait for every service to report ready.
    #[arg(long, default_value_t = 180)]
    ready_timeout: u64,
}

struct Running {
    name: &'static str,
    url: String,
    admin_url: String,
    child: Child,
}

pub async fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    let this = std::env::current_exe().context("locating this binary")?;
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => this
            .parent()
            .context("this binary has no folder")?
            .to_path_buf(),
    };
    if !args.no_build {
        build(&bin_dir).await?;
    }
    for name in SERVICES {
        let path = bin_dir.join(name);
        if !path.is_file() {
            bail!(
                "{} is missing: build the services first (`cargo build --release --workspace`) or run \
                 `codeguardians up` from the source tree without --no-build",
                path.display()
            );
        }
    }
    let admin_base_port = match args.admin_base_port {
        Some(port) => port,
        None => args
            .base_port
            .checked_add(cg_service_kit::config::ADMIN_PORT_OFFSET)
            .context("--base-port leaves no room for the admin ports; set --admin-base-port")?,
    };
    let count = u32::try_from(SERVICES.len()).unwrap_or(6);
    for (flag, base) in [
        ("--base-port", args.base_port),
        ("--admin-base-port", admin_base_port),
    ] {
        if base == 0 || u32::from(base) + count - 1 > u32::from(u16::MAX) {
            bail!("{flag} must leave room for {count} ports below 65536");
        }
    }
    if u32::from(args.base_port).abs_diff(u32::from(admin_base_port)) < count {
        bail!("--base-port and --admin-base-port ranges overlap");
    }

    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let data_dir = std::fs::canonicalize(&args.data_dir)
        .with_context(|| format!("resolving {}", args.data_dir.display()))?;
    migrate(&data_dir).await?;

    let secrets = Secrets {
        internal_token: internal_token(),
        jwt_secret: jwt_secret(&data_dir)?,
    };
    let mut running = Vec::new();
    for (i, name) in SERVICES.iter().enumerate() {
        let offset = u16::try_from(i).unwrap_or(0);
        let ports = Ports {
            public: args.base_port + offset,
            admin: admin_base_port + offset,
            base: args.base_port,
        };
        match spawn(
            &bin_dir,
            name,
            &args.host,
            ports,
            &data_dir,
            &secrets,
            &args.default_tier,
        ) {
            Ok(r) => running.push(r),
            Err(e) => {
                stop(&mut running).await;
                return Err(e);
            }
        }
    }

    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let ready = tokio::select! {
        r = wait_ready(&mut running, Duration::from_secs(args.ready_timeout)) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted while starting")),
        _ = sigterm.recv() => Err(anyhow::anyhow!("terminated while starting")),
    };
    if let Err(e) = ready {
        stop(&mut running).await;
        return Err(e);
    }
    println!();
    println!(
        "CodeGuardians is up on embedded storage in {}:",
        data_dir.display()
    );
    for r in &running {
        println!("  {:<13} {:<24} admin {}", r.name, r.url, r.admin_url);
    }
    println!(
        "new organisations get the {:?} tier; a first scan: {QUICKSTART}",
        args.default_tier
    );
    println!("all services ready; Ctrl-C stops them");
    println!();

    let outcome = tokio::select! {
        _ = tokio::signal::ctrl_c() => None,
        _ = sigterm.recv() => None,
        died = first_exit(&mut running) => Some(died),
    };
    stop(&mut running).await;
    match outcome {
        None => {
            println!("all services stopped");
            Ok(ExitCode::SUCCESS)
        }
        Some((name, status)) => bail!("{name} exited ({status}); stopped the others"),
    }
}

/// When run from the source tree, build the service binaries with the profile of this binary.
async fn build(bin_dir: &Path) -> anyhow::Result<()> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if !workspace.join("Cargo.toml").is_file() {
        // An installed binary: the services sit beside it.
        return Ok(());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let profile = bin_dir
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| *n != "debug")
        .unwrap_or("dev");
    println!(
        "building the services (cargo build --profile {profile}); the first build takes a few minutes"
    );
    // The whole workspace, so features unify as in every other build and nothing is rebuilt.
    let status = Command::new(cargo)
        .current_dir(&workspace)
        .args(["build", "--workspace", "--bins", "--profile", profile])
        .status()
        .await
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build failed ({status})");
    }
    Ok(())
}

/// Migrate the embedded database once, before any service opens it.
async fn migrate(data_dir: &Path) -> anyhow::Result<()> {
    let config = StorageConfig::from_pairs([
        ("CG_STORAGE_MODE", "embedded".to_owned()),
        ("CG_DATA_DIR", data_dir.display().to_string()),
    ])?;
    let target = config
        .resolve(Needs {
            database: true,
            cache: false,
            blobs: false,
        })?
        .database
        .context("no embedded database")?;
    let db = Db::connect(&target).await?;
    db.run_migrations()
        .await
        .context("migrating the embedded database")?;
    Ok(())
}

/// Secrets handed to the services of one run.
struct Secrets {
    internal_token: String,
    jwt_secret: String,
}

/// A fresh shared secret for this run's gateway→guard calls.
fn internal_token() -> String {
    let bytes: [u8; 24] = rand::random();
    hex::encode(bytes)
}

/// The access-token key: `JWT_SECRET` when set, else one kept in the data folder (created on the
/// first run, readable only by its owner) so logins survive a restart of `up`.
fn jwt_secret(data_dir: &Path) -> anyhow::Result<String> {
    if let Ok(secret) = std::env::var("JWT_SECRET")
        && !secret.is_empty()
    {
        return Ok(secret);
    }
    let path = data_dir.join(".jwt-secret");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_owned();
        if existing.len() >= 32 {
            return Ok(existing);
        }
    }
    let bytes: [u8; 32] = rand::random();
    let secret = hex::encode(bytes);
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        file.write_all(secret.as_bytes())?;
    }
    Ok(secret)
}

/// A service's public and admin ports, and the gateway's (the guards follow it).
#[derive(Debug, Clone, Copy)]
struct Ports {
    public: u16,
    admin: u16,
    base: u16,
}

fn spawn(
    bin_dir: &Path,
    name: &'static str,
    host: &str,
    ports: Ports,
    data_dir: &Path,
    secrets: &Secrets,
    default_tier: &str,
) -> anyhow::Result<Running> {
    let mut cmd = Command::new(bin_dir.join(name));
    cmd.env("CG_STORAGE_MODE", "embedded")
        .env("CG_DATA_DIR", data_dir)
        .env("CG_HOST", host)
        .env("CG_PORT", ports.public.to_string())
        .env("CG_ADMIN_PORT", ports.admin.to_string())
        .env("DEFAULT_TIER", default_tier)
        .env("CG_INTERNAL_TOKEN", &secrets.internal_token)
        .env("JWT_SECRET", &secrets.jwt_secret)
        .env(
            "CG_LOG_FORMAT",
            std::env::var("CG_LOG_FORMAT").unwrap_or_else(|_| "text".to_owned()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (i, guard) in GuardKind::ALL.into_iter().enumerate() {
        let guard_port = ports.base + 1 + u16::try_from(i).unwrap_or(0);
        cmd.env(guard.url_variable(), format!("http://{host}:{guard_port}"));
    }
    let mut child = cmd.spawn().with_context(|| format!("starting {name}"))?;
    if let Some(out) = child.stdout.take() {
        tokio::spawn(forward(name, out));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(forward(name, err));
    }
    Ok(Running {
        name,
        url: format!("http://{host}:{}", ports.public),
        admin_url: format!("http://{host}:{}", ports.admin),
        child,
    })
}

async fn forward(name: &'static str, stream: impl AsyncRead + Unpin) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        println!("{name:>12} | {line}");
    }
}

async fn wait_ready(running: &mut [Running], timeout: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .context("HTTP client")?;
    let deadline = Instant::now() + timeout;
    let mut pending: Vec<usize> = (0..running.len()).collect();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for i in pending {
            let r = &mut running[i];
            if let Some(status) = r.child.try_wait().context("checking a child")? {
                bail!(
                    "{} exited while starting ({status}); see its log above",
                    r.name
                );
            }
            let ready = client
                .get(format!("{}/health/ready", r.url))
                .send()
                .await
                .is_ok_and(|resp| resp.status().is_success());
            if !ready {
                still.push(i);
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let names: Vec<_> = pending.iter().map(|&i| running[i].name).collect();
            bail!(
                "not ready after {} s: {}",
                timeout.as_secs(),
                names.join(", ")
            );
        }
        tokio::time::sleep(READY_POLL).await;
    }
    Ok(())
}

async fn first_exit(running: &mut [Running]) -> (&'static str, String) {
    loop {
        for r in running.iter_mut() {
            if let Ok(Some(status)) = r.child.try_wait() {
                return (r.name, status.to_string());
            }
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

/// SIGTERM to every child (graceful: they finish in-flight requests), then SIGKILL to any still
/// running after the grace period.
async fn stop(running: &mut [Running]) {
    for r in running.iter() {
        if let Some(pid) = r.child.id().and_then(|id| i32::try_from(id).ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
    }
    for r in running.iter_mut() {
        if tokio::time::timeout(STOP_GRACE, r.child.wait())
            .await
            .is_err()
        {
            eprintln!(
                "{} did not stop within {} s; killing it",
                r.name,
                STOP_GRACE.as_secs()
            );
            let _ = r.child.kill().await;
        }
    }
}
