//! The `gateway` binary: configuration, telemetry, build, run.

use std::process::ExitCode;

use cg_gateway::config::Config;

fn main() -> ExitCode {
    cg_service_kit::server::main(cg_gateway::SERVICE, || async {
        let config = Config::from_env()?;
        let _telemetry =
            cg_service_kit::telemetry::init(cg_gateway::SERVICE, config.server.log_format())?;
        let app = cg_gateway::startup::build(config).await?;
        tracing::info!(port = app.port(), "gateway listening");
        app.run_until_stopped().await
    })
}
