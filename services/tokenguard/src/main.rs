//! The `tokenguard` binary: configuration, telemetry, build, run.

use std::process::ExitCode;

use cg_tokenguard::config::Config;

fn main() -> ExitCode {
    cg_service_kit::server::main(cg_tokenguard::SERVICE, || async {
        let config = Config::from_env()?;
        let _telemetry =
            cg_service_kit::telemetry::init(cg_tokenguard::SERVICE, config.server.log_format())?;
        let app = cg_tokenguard::startup::build(config).await?;
        tracing::info!(port = app.port(), "tokenguard listening");
        app.run_until_stopped().await
    })
}
