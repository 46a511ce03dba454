//! `codeguardians storage migrate-config-to-redis --file F`: file-based configuration (YAML or
//! JSON) into the dynamic-configuration store as one new version, announced to every gateway.
//! The file is either `GET /api/v1/config/export`'s answer (its `config` is used) or a document
//! with any of the sections `rate_limits`, `feature_flags`, `cache`. Every section is checked
//! before anything is written; an unknown key is refused, so a typo cannot pass silently.

use std::process::ExitCode;

use anyhow::Context;
use cg_gateway::traffic::config::{DynamicConfig, SECTIONS};
use cg_storage::config::Mode;
use cg_storage::{Cache, Needs, StorageConfig};
use serde_json::Value;

/// Keys of an exported document that are bookkeeping, not settings.
const METADATA: [&str; 3] = ["version", "updated_at", "updated_by"];

#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// The configuration file (`.yaml`/`.yml` or `.json`; other names are tried as both).
    #[arg(long)]
    file: std::path::PathBuf,
    /// Check the file and show what would change; write nothing.
    #[arg(long)]
    dry_run: bool,
}

pub async fn run(args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let raw = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let sections = sections(&parse(&args.file, &raw)?)?;
    for (section, value) in &sections {
        cg_gateway::traffic::config::validate(section, value)
            .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    }
    let names: Vec<&str> = sections.iter().map(|(s, _)| s.as_str()).collect();
    if args.dry_run {
        println!(
            "{}: valid; would set {}",
            args.file.display(),
            names.join(", ")
        );
        return Ok(ExitCode::SUCCESS);
    }
    let resolved = StorageConfig::from_env()?.resolve(Needs {
        database: false,
        cache: true,
        blobs: false,
    })?;
    let target = resolved.cache.context("no cache configured")?;
    let cache = Cache::connect(&target).await?;
    anyhow::ensure!(
        cache.mode() == Mode::Centralized,
        "no Redis configured (REDIS_URL or REDIS_HOST): the gateways would never see the change"
    );
    let by = format!(
        "codeguardians storage migrate-config-to-redis ({})",
        args.file.display()
    );
    let doc = DynamicConfig::new(cache)
        .import(&sections, &by)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "configuration version {} set from {}: {}",
        doc.version,
        args.file.display(),
        names.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

fn parse(path: &std::path::Path, raw: &str) -> anyhow::Result<Value> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let parsed = match ext {
        "json" => serde_json::from_str(raw).context("not valid JSON")?,
        // YAML is a superset of JSON, so any other name is read as YAML.
        _ => serde_yaml::from_str(raw).context("not valid YAML or JSON")?,
    };
    Ok(parsed)
}

/// The sections a document sets, refusing anything that is not one.
fn sections(doc: &Value) -> anyhow::Result<Vec<(String, Value)>> {
    let doc = doc.get("config").unwrap_or(doc);
    let map = doc
        .as_object()
        .context("the file must hold an object of configuration sections")?;
    let mut out = Vec::new();
    for (key, value) in map {
        if SECTIONS.contains(&key.as_str()) {
            out.push((key.clone(), value.clone()));
        } else if !METADATA.contains(&key.as_str()) {
            anyhow::bail!(
                "{key} is not a configuration section (sections: {})",
                SECTIONS.join(", ")
            );
        }
    }
    anyhow::ensure!(
        !out.is_empty(),
        "no configuration section in the file (sections: {})",
        SECTIONS.join(", ")
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::sections;

    #[test]
    fn an_export_and_a_plain_document_give_the_same_sections() {
        let plain = json!({"feature_flags": {"beta": true}, "cache": {"org_profile_ttl_secs": 5}});
        let export = json!({"config": {"version": 7, "updated_by": "x", "feature_flags": {"beta": true},
            "cache": {"org_profile_ttl_secs": 5}}, "history": []});
        assert_eq!(sections(&plain).unwrap(), sections(&export).unwrap());
    }

    #[test]
    fn an_unknown_key_is_refused() {
        let err = sections(&json!({"feature_flag": {"beta": true}})).unwrap_err();
        assert!(err.to_string().contains("feature_flag is not"), "{err}");
        assert!(sections(&json!({})).is_err());
    }
}
