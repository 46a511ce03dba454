//! The `biasguard` binary: configuration, telemetry, build, run.

use std::process::ExitCode;

use cg_biasguard::config::Config;

fn main() -> ExitCode {
    cg_service_kit::server::main(cg_biasguard::SERVICE, || async {
        let config = Config::from_env()?;
        let _telemetry =
            cg_service_kit::telemetry::init(cg_biasguard::SERVICE, config.server.log_format())?;
        let app = cg_biasguard::startup::build(config).await?;
        tracing::info!(port = app.port(), "biasguard listening");
        app.run_until_stopped().await
    })
}
