//! `codeguardians probe [URL]`: one GET, exit 0 on a 2xx answer and 1 otherwise. The container
//! image's HEALTHCHECK, so the image needs no curl; without a URL it asks this container's own
//! service, `http://127.0.0.1:$CG_PORT/health/ready`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// What to ask [default: http://127.0.0.1:$CG_PORT/health/ready].
    url: Option<String>,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 3.0)]
    timeout: f64,
}

pub async fn run(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let url = match args.url {
        Some(url) => url,
        None => {
            let port = std::env::var("CG_PORT")
                .context("give a URL, or set CG_PORT to probe this container's service")?;
            format!("http://127.0.0.1:{}/health/ready", port.trim())
        }
    };
    let parsed = reqwest::Url::parse(&url).with_context(|| format!("{url:?} is not a URL"))?;
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        anyhow::bail!("--timeout must be a positive number of seconds");
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs_f64(args.timeout))
        .build()
        .context("HTTP client")?;
    match client.get(parsed).send().await {
        Ok(resp) if resp.status().is_success() => Ok(ExitCode::SUCCESS),
        Ok(resp) => {
            eprintln!("{url}: HTTP {}", resp.status().as_u16());
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("{url}: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
