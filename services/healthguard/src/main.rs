//! The `healthguard` binary: configuration, telemetry, build, run.

use std::process::ExitCode;

use cg_healthguard::config::Config;

fn main() -> ExitCode {
    cg_service_kit::server::main(cg_healthguard::SERVICE, || async {
        let config = Config::from_env()?;
        let _telemetry =
            cg_service_kit::telemetry::init(cg_healthguard::SERVICE, config.server.log_format())?;
        let app = cg_healthguard::startup::build(config).await?;
        tracing::info!(port = app.port(), "healthguard listening");
        app.run_until_stopped().await
    })
}
