//! `codeguardians org set-tier ORG TIER`: put an organisation (its id or slug) on a tier, the
//! same change as the platform-admin route `PUT /api/v1/organizations/{id}/subscription`. Reads
//! the database from the storage variables (`DATABASE_URL`, `POSTGRES_*`). Gateways pick the change
//! up within `ORG_PROFILE_CACHE_SECS` (30 s).

use std::process::ExitCode;

use anyhow::bail;
use cg_storage::models::{Organization, Subscription, SubscriptionTier};
use cg_storage::sql_types::{Id, Timestamp};
use cg_storage::{Db, StorageConfig};

#[derive(Debug, clap::Args)]
pub struct OrgArgs {
    #[command(subcommand)]
    command: OrgCommand,
}

#[derive(Debug, clap::Subcommand)]
enum OrgCommand {
    /// Put an organisation on a tier (its subscription in force moves; one starts if none is).
    SetTier {
        /// The organisation's id or slug.
        org: String,
        /// An active tier's name (free, pro, enterprise, or one a platform admin created).
        tier: String,
    },
}

pub async fn run(args: OrgArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        OrgCommand::SetTier { org, tier } => set_tier(&org, &tier).await,
    }
}

async fn set_tier(org: &str, tier: &str) -> anyhow::Result<ExitCode> {
    let target = crate::migrate::database(&StorageConfig::from_env()?)?;
    let db = Db::connect(&target).await?;
    let mut pooled = db.get().await?;
    let conn = &mut pooled.conn();
    let organization = match org.parse::<Id>() {
        Ok(id) => match Organization::find(conn, id).await {
            Ok(found) => Some(found),
            Err(cg_storage::Error::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
        Err(_) => Organization::find_by_slug(conn, org).await?,
    };
    let Some(organization) = organization else {
        bail!("no organisation has the id or slug {org:?}");
    };
    let found = match SubscriptionTier::find_by_name(conn, tier).await {
        Ok(found) => found,
        Err(cg_storage::Error::NotFound) => {
            let active = SubscriptionTier::list_active(conn).await?;
            bail!(
                "no tier is named {tier:?}; active tiers: {}",
                active
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Err(e) => return Err(e.into()),
    };
    if !found.is_active {
        bail!("tier {tier:?} is not active");
    }
    let (subscription, now_on) =
        Subscription::set_tier(conn, organization.id, found.id, Timestamp::now()).await?;
    println!(
        "{} ({}) is on the {} tier (subscription {}, {} until {})",
        organization.name,
        organization.slug,
        now_on.name,
        subscription.id,
        subscription.status,
        subscription.current_period_end
    );
    Ok(ExitCode::SUCCESS)
}
