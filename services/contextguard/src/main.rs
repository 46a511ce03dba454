//! The `contextguard` binary: configuration, telemetry, build, run.

use std::process::ExitCode;

use cg_contextguard::config::Config;

fn main() -> ExitCode {
    cg_service_kit::server::main(cg_contextguard::SERVICE, || async {
        let config = Config::from_env()?;
        let _telemetry =
            cg_service_kit::telemetry::init(cg_contextguard::SERVICE, config.server.log_format())?;
        let app = cg_contextguard::startup::build(config).await?;
        tracing::info!(port = app.port(), "contextguard listening");
        app.run_until_stopped().await
    })
}
