//! The `trustguard` binary: configuration, telemetry, build, run.

use std::process::ExitCode;

use cg_trustguard::config::Config;

fn main() -> ExitCode {
    cg_service_kit::server::main(cg_trustguard::SERVICE, || async {
        let config = Config::from_env()?;
        let _telemetry =
            cg_service_kit::telemetry::init(cg_trustguard::SERVICE, config.server.log_format())?;
        let app = cg_trustguard::startup::build(config).await?;
        tracing::info!(port = app.port(), "trustguard listening");
        app.run_until_stopped().await
    })
}
