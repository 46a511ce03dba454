//! `codeguardians org set-tier`: an organisation moved to another tier from the command line, on
//! SQLite and on PostgreSQL named the way the original deployment wrote it
//! (`postgresql+psycopg2://`).

use std::process::Output;

use cg_storage::config::Needs;
use cg_storage::models::{
    NewMember, NewOrganization, NewUser, Role, Subscription, SubscriptionTier,
};
use cg_storage::sql_types::Timestamp;
use cg_storage::testing::TestDb;
use cg_storage::{Db, StorageConfig};
use tokio::process::Command;

async fn cli(database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_codeguardians"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env_remove("HEALTHGUARD_DATABASE_URL")
        .env_remove("CG_STORAGE_MODE")
        .output()
        .await
        .expect("run codeguardians")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn open(database_url: &str) -> Db {
    let config = StorageConfig::from_pairs([("DATABASE_URL", database_url)]).expect("config");
    let target = config
        .resolve(Needs {
            database: true,
            cache: false,
            blobs: false,
        })
        .expect("resolve")
        .database
        .expect("database");
    Db::connect(&target).await.expect("connect")
}

/// Migrate with the command, then create an organisation on the free tier as registration does.
async fn organisation(database_url: &str) -> (Db, cg_storage::sql_types::Id, String) {
    let out = cli(database_url, &["migrate"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let db = open(database_url).await;
    let mut pooled = db.get().await.expect("connection");
    let conn = &mut pooled.conn();
    let user = NewUser::new("owner@example.com", "not-a-real-hash", "Owner")
        .insert(conn)
        .await
        .expect("user");
    let org = NewOrganization::new("Acme", "acme-1234", Some(user.id))
        .insert(conn)
        .await
        .expect("organisation");
    NewMember::new(org.id, user.id, Role::Owner, None)
        .insert(conn)
        .await
        .expect("member");
    let free = SubscriptionTier::find_by_name(conn, "free")
        .await
        .expect("free");
    Subscription::new_active(org.id, free.id, Timestamp::now())
        .insert(conn)
        .await
        .expect("subscription");
    drop(pooled);
    (db, org.id, org.slug)
}

async fn tier_of(db: &Db, org: cg_storage::sql_types::Id) -> String {
    let mut pooled = db.get().await.expect("connection");
    Subscription::current(&mut pooled.conn(), org)
        .await
        .expect("read")
        .expect("a subscription in force")
        .1
        .name
}

async fn set_tier_by_slug_and_id(database_url: &str) {
    let (db, org, slug) = organisation(database_url).await;
    let out = cli(database_url, &["org", "set-tier", &slug, "enterprise"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("enterprise"), "{}", text(&out));
    assert_eq!(tier_of(&db, org).await, "enterprise");

    let out = cli(database_url, &["org", "set-tier", &org.to_string(), "pro"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(tier_of(&db, org).await, "pro");

    // Mistakes change nothing and say what would work.
    let out = cli(database_url, &["org", "set-tier", &slug, "platinum"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("active tiers: free, pro, enterprise"),
        "{}",
        text(&out)
    );
    let out = cli(database_url, &["org", "set-tier", "no-such-org", "free"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no-such-org"), "{}", text(&out));
    assert_eq!(tier_of(&db, org).await, "pro");
}

#[tokio::test(flavor = "multi_thread")]
async fn org_set_tier_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("plans.db").display());
    set_tier_by_slug_and_id(&url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn org_set_tier_on_postgres_named_as_the_original_deployment_did() {
    let Some(db) = TestDb::postgres_unmigrated().await else {
        return;
    };
    let seed_style = db.url.replacen("postgres://", "postgresql+psycopg2://", 1);
    assert!(
        seed_style.starts_with("postgresql+psycopg2://"),
        "{seed_style}"
    );
    set_tier_by_slug_and_id(&seed_style).await;
}
