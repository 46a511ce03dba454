//! The HTTP server every service runs: shared middleware and routes around the service's own,
//! bound before it runs so tests can use port 0 and read the port back.

use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, ServerConfig};
use crate::error::{ApiError, json_error, path_error, query_error};
use crate::health::{self, Readiness};
use crate::observe::{ServiceName, observe};

/// What the shared routes and middleware need to know about the service.
pub struct Kit {
    pub service: &'static str,
    pub version: &'static str,
    pub readiness: Arc<dyn Readiness>,
    pub internal_token: SecretString,
    pub started: Instant,
    /// Cancelled when the server stops; background tasks watch it.
    pub shutdown: CancellationToken,
    /// Background tasks with a last step to finish on the way out (see [`Kit::spawn_finishing`]).
    finishing: Finishing,
}

/// Tasks the server waits for after cancelling `shutdown`.
type Finishing = Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>;

/// How long the way out waits for those tasks' last step.
const FINISHING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl std::fmt::Debug for Kit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kit")
            .field("service", &self.service)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Kit {
    pub fn new(
        service: &'static str,
        version: &'static str,
        readiness: Arc<dyn Readiness>,
        internal_token: SecretString,
    ) -> Self {
        Self {
            service,
            version,
            readiness,
            internal_token,
            started: Instant::now(),
            shutdown: CancellationToken::new(),
            finishing: Finishing::default(),
        }
    }

    /// Spawn a background task that watches `shutdown` and has a last step to take when it is
    /// cancelled (flush a batch, give something back): the server waits for it (up to five
    /// seconds) before the process exits, instead of the runtime dropping it mid-step.
    pub fn spawn_finishing(&self, task: impl Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        if let Ok(mut tasks) = self.finishing.lock() {
            tasks.push(handle);
        }
    }
}

/// A bound, not yet running, server: the public listener and the admin one (`/metrics`, the
/// detailed `/health`), which only the operator's network should reach.
pub struct ServiceServer {
    server: Server,
    port: u16,
    admin: Server,
    admin_port: u16,
    shutdown: CancellationToken,
    finishing: Finishing,
}

impl std::fmt::Debug for ServiceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceServer")
            .field("port", &self.port)
            .field("admin_port", &self.admin_port)
            .finish()
    }
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("no such route"))
}

impl ServiceServer {
    /// Bind `CG_HOST:CG_PORT` (or `default_port`) and assemble the app: request ids, metrics,
    /// logs, body limits, the error envelope for every extractor failure and unknown route, the
    /// public health routes, then the service's own routes from `configure`. Bind
    /// `CG_HOST:CG_ADMIN_PORT` (see [`ServerConfig::admin_port`]) for `/metrics` and the detailed
    /// `/health`.
    pub fn build<F>(
        config: &ServerConfig,
        default_port: u16,
        kit: Kit,
        configure: F,
    ) -> anyhow::Result<Self>
    where
        F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
    {
        // Install the recorder before the first request so nothing recorded is lost.
        crate::metrics::handle();
        let address = (config.host().to_owned(), config.port(default_port));
        let listener = TcpListener::bind(&address)
            .with_context(|| format!("binding {}:{} (CG_HOST, CG_PORT)", address.0, address.1))?;
        let port = listener
            .local_addr()
            .context("reading the bound port")?
            .port();
        let admin_address = (config.host().to_owned(), config.admin_port(default_port)?);
        let admin_listener = TcpListener::bind(&admin_address).with_context(|| {
            format!(
                "binding the admin listener {}:{} (CG_HOST, CG_ADMIN_PORT)",
                admin_address.0, admin_address.1
            )
        })?;
        let admin_port = admin_listener
            .local_addr()
            .context("reading the bound admin port")?
            .port();
        let shutdown = kit.shutdown.clone();
        let finishing = kit.finishing.clone();
        let service = kit.service;
        let kit = web::Data::new(kit);
        let admin = {
            let kit = kit.clone();
            HttpServer::new(move || {
                App::new()
                    .app_data(kit.clone())
                    .app_data(ServiceName(service))
                    .app_data(
                        web::QueryConfig::default().error_handler(|e, _| query_error(e).into()),
                    )
                    .configure(health::admin_routes)
                    .default_service(web::to(not_found))
                    .wrap(from_fn(observe))
            })
            // Stopped by `run_until_stopped` after the public server; one thread is plenty for
            // a scrape every few seconds.
            .disable_signals()
            .workers(1)
            .shutdown_timeout(1)
            .listen(admin_listener)
            .context("listening (admin)")?
            .run()
        };
        let max_body = config.max_body_bytes();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(kit.clone())
                .app_data(ServiceName(service))
                .app_data(
                    web::JsonConfig::default()
                        .limit(max_body)
                        .error_handler(|e, _| json_error(e).into()),
                )
                .app_data(web::PayloadConfig::new(max_body))
                .app_data(web::QueryConfig::default().error_handler(|e, _| query_error(e).into()))
                .app_data(web::PathConfig::default().error_handler(|e, _| path_error(e).into()))
                .configure(health::routes)
                .configure(configure.clone())
                .default_service(web::to(not_found))
                .wrap(from_fn(observe))
        })
        .shutdown_timeout(config.shutdown_timeout_secs());
        if let Some(workers) = config.cg_workers {
            server = server.workers(workers);
        }
        let server = server.listen(listener).context("listening")?.run();
        Ok(Self {
            server,
            port,
            admin,
            admin_port,
            shutdown,
            finishing,
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The admin port actually bound.
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// Stop the server from elsewhere (tests); the admin listener stops with it.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serve until SIGTERM/SIGINT (graceful: in-flight requests finish within
    /// `CG_SHUTDOWN_TIMEOUT_SECS`), then stop the admin listener, cancel background tasks and
    /// wait for the last step of those spawned with [`Kit::spawn_finishing`].
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let admin_handle = self.admin.handle();
        let admin = tokio::spawn(self.admin);
        // Also when this future is dropped unfinished (a test aborting its app).
        let _stop_admin = StopOnDrop(admin_handle.clone());
        let result = self.server.await;
        admin_handle.stop(false).await;
        let admin_result = admin
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        self.shutdown.cancel();
        let tasks = self
            .finishing
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        let deadline = tokio::time::Instant::now() + FINISHING_TIMEOUT;
        for task in tasks {
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                tracing::warn!("background tasks did not finish their last step in time");
                break;
            }
        }
        result.and(admin_result)
    }
}

/// Stops a server when dropped.
struct StopOnDrop(ServerHandle);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        // The stop command is sent at once; nothing needs to wait for it here.
        drop(self.0.stop(false));
    }
}

/// Exit code for a configuration error (`EX_CONFIG`).
pub const EXIT_CONFIG: u8 = 78;
/// Exit code when a required dependency is unreachable at start-up (`EX_UNAVAILABLE`).
pub const EXIT_UNAVAILABLE: u8 = 69;

/// Run a service's `main`: a multi-threaded runtime, `run` to completion, and a start-up failure
/// reported on stderr with an exit code that says what kind of failure it was.
pub fn main<F, Fut>(service: &'static str, run: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{service}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "{service} stopped");
            eprintln!("{service}: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}

fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.is::<ConfigError>() {
            return EXIT_CONFIG;
        }
        if let Some(storage) = cause.downcast_ref::<cg_storage::Error>() {
            return match storage {
                cg_storage::Error::Config(_) => EXIT_CONFIG,
                cg_storage::Error::Unavailable { .. } => EXIT_UNAVAILABLE,
                _ => 1,
            };
        }
    }
    1
}
