//! The diesel schema shared by both backends. Ids and timestamps use [`crate::sql_types`], which
//! PostgreSQL and SQLite store differently; JSON is diesel's `Jsonb` (native on PostgreSQL, SQLite's
//! binary JSONB in a BLOB). Every query compiles for both.
//!
//! Kept by hand in step with `migrations/postgres` and `migrations/sqlite` (diesel's
//! `print-schema` would emit backend-specific types); `tests/storage/schema.rs` selects every
//! column of every table here from both migrated databases.

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{DbTimestamp, DbUuid};

    users (id) {
        id -> DbUuid,
        email -> Text,
        password_hash -> Text,
        full_name -> Text,
        is_active -> Bool,
        is_superuser -> Bool,
        email_verified -> Bool,
        failed_login_count -> Integer,
        locked_until -> Nullable<DbTimestamp>,
        last_login_at -> Nullable<DbTimestamp>,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{DbTimestamp, DbUuid};

    organizations (id) {
        id -> DbUuid,
        name -> Text,
        slug -> Text,
        owner_id -> Nullable<DbUuid>,
        settings -> Jsonb,
        is_active -> Bool,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{DbTimestamp, DbUuid};

    organization_members (id) {
        id -> DbUuid,
        organization_id -> DbUuid,
        user_id -> DbUuid,
        role -> Text,
        invited_by -> Nullable<DbUuid>,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{DbTimestamp, DbUuid};

    organization_invitations (id) {
        id -> DbUuid,
        organization_id -> DbUuid,
        email -> Text,
        role -> Text,
        token_hash -> Text,
        invited_by -> Nullable<DbUuid>,
        expires_at -> DbTimestamp,
        accepted_at -> Nullable<DbTimestamp>,
        revoked_at -> Nullable<DbTimestamp>,
        created_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{DbTimestamp, DbUuid};

    subscription_tiers (id) {
        id -> DbUuid,
        name -> Text,
        display_name -> Text,
        requests_per_minute -> Integer,
        requests_per_month -> BigInt,
        monthly_budget_usd_micros -> BigInt,
        guards_allowed -> Jsonb,
        price_usd_cents_monthly -> BigInt,
        features -> Jsonb,
        is_active -> Bool,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{DbTimestamp, DbUuid};

    subscriptions (id) {
        id -> DbUuid,
        organization_id -> DbUuid,
        tier_id -> DbUuid,
        status -> Text,
        current_period_start -> DbTimestamp,
        current_period_end -> DbTimestamp,
        cancel_at_period_end -> Bool,
        canceled_at -> Nullable<DbTimestamp>,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{DbTimestamp, DbUuid};

    api_keys (id) {
        id -> DbUuid,
        organization_id -> DbUuid,
        created_by -> Nullable<DbUuid>,
        name -> Text,
        prefix -> Text,
        key_hash -> Text,
        role -> Text,
        scopes -> Jsonb,
        last_used_at -> Nullable<DbTimestamp>,
        expires_at -> Nullable<DbTimestamp>,
        revoked_at -> Nullable<DbTimestamp>,
        created_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{DbTimestamp, DbUuid};

    sessions (id) {
        id -> DbUuid,
        user_id -> DbUuid,
        family_id -> DbUuid,
        refresh_token_hash -> Text,
        user_agent -> Nullable<Text>,
        ip_address -> Nullable<Text>,
        expires_at -> DbTimestamp,
        revoked_at -> Nullable<DbTimestamp>,
        replaced_by -> Nullable<DbUuid>,
        created_at -> DbTimestamp,
        last_used_at -> Nullable<DbTimestamp>,
        family_started_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{DbTimestamp, DbUuid};

    usage_records (id) {
        id -> DbUuid,
        organization_id -> DbUuid,
        granularity -> Text,
        period_start -> DbTimestamp,
        endpoint -> Text,
        guard -> Text,
        requests -> BigInt,
        errors -> BigInt,
        tokens_input -> BigInt,
        tokens_output -> BigInt,
        cost_usd_micros -> BigInt,
        latency_ms_total -> BigInt,
        latency_ms_max -> BigInt,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{DbTimestamp, DbUuid};

    files (id) {
        id -> DbUuid,
        organization_id -> DbUuid,
        uploaded_by -> Nullable<DbUuid>,
        filename -> Text,
        content_type -> Text,
        size_bytes -> Nullable<BigInt>,
        storage_key -> Text,
        storage_backend -> Text,
        status -> Text,
        etag -> Nullable<Text>,
        checksum_sha256 -> Nullable<Text>,
        synced_at -> Nullable<DbTimestamp>,
        expires_at -> Nullable<DbTimestamp>,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
        deleted_at -> Nullable<DbTimestamp>,
        compression -> Text,
        stored_size_bytes -> Nullable<BigInt>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{DbTimestamp, DbUuid};

    biasguard_policies (id) {
        id -> DbUuid,
        organization_id -> DbUuid,
        name -> Text,
        description -> Text,
        enforcement_type -> Text,
        rules -> Jsonb,
        priority -> Integer,
        is_active -> Bool,
        created_by -> Nullable<DbUuid>,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{DbTimestamp, DbUuid};

    /// Partitioned by month on `created_at` in PostgreSQL (primary key `(id, created_at)`).
    biasguard_audit_logs (id) {
        id -> DbUuid,
        created_at -> DbTimestamp,
        organization_id -> Nullable<DbUuid>,
        request_id -> Nullable<Text>,
        operation -> Text,
        decision -> Text,
        bias_score -> Double,
        bias_level -> Text,
        bias_types -> Jsonb,
        policy_ids -> Jsonb,
        violations -> Jsonb,
        warnings -> Jsonb,
        fairness_metrics -> Jsonb,
        request_context -> Jsonb,
        analyzed_text -> Nullable<Text>,
        processing_time_ms -> Double,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{DbTimestamp, DbUuid};

    /// Partitioned by month on `created_at` in PostgreSQL (primary key `(id, created_at)`).
    biasguard_policy_violations (id) {
        id -> DbUuid,
        created_at -> DbTimestamp,
        organization_id -> Nullable<DbUuid>,
        policy_id -> Nullable<DbUuid>,
        audit_log_id -> Nullable<DbUuid>,
        request_id -> Nullable<Text>,
        violation_type -> Text,
        severity -> Text,
        impact_score -> Double,
        details -> Jsonb,
        requires_remediation -> Bool,
        resolved -> Bool,
        resolved_at -> Nullable<DbTimestamp>,
        resolved_by -> Nullable<DbUuid>,
        resolution_notes -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{DbTimestamp, DbUuid};

    /// Partitioned by month on `created_at` in PostgreSQL (primary key `(id, created_at)`).
    poisonguard_analysis_results (id) {
        id -> DbUuid,
        created_at -> DbTimestamp,
        organization_id -> Nullable<DbUuid>,
        request_id -> Nullable<Text>,
        batch_id -> DbUuid,
        sample_id -> Text,
        is_poisoned -> Bool,
        confidence -> Double,
        label -> Nullable<Text>,
        reasons -> Jsonb,
        spans -> Jsonb,
        detector_scores -> Jsonb,
        content_sha256 -> Text,
        mitigation -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{DbTimestamp, DbUuid};

    /// Partitioned by month on `created_at` in PostgreSQL (primary key `(id, created_at)`).
    poisonguard_health_metrics (id) {
        id -> DbUuid,
        created_at -> DbTimestamp,
        instance -> Text,
        status -> Text,
        memory_bytes -> BigInt,
        cpu_percent -> Double,
        in_flight -> BigInt,
        requests_total -> BigInt,
        details -> Jsonb,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{DbTimestamp, DbUuid};

    /// Partitioned by month on `created_at` in PostgreSQL (primary key `(id, created_at)`).
    trustguard_audit_logs (id) {
        id -> DbUuid,
        created_at -> DbTimestamp,
        organization_id -> Nullable<DbUuid>,
        request_id -> Nullable<Text>,
        validation_type -> Text,
        task -> Nullable<Text>,
        overall_score -> Double,
        trust_score -> Double,
        risk_level -> Text,
        pattern_detections -> Jsonb,
        evidence_counts -> Jsonb,
        content_sha256 -> Text,
        content_chars -> BigInt,
        analyzed_text -> Nullable<Text>,
        cached -> Bool,
        processing_time_ms -> Double,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{DbTimestamp, DbUuid};

    /// A/B experiments; `variants`, `primary_metric`, `secondary_metrics` and `audience` are
    /// documents the gateway validates.
    ab_experiments (id) {
        id -> DbUuid,
        organization_id -> DbUuid,
        name -> Text,
        description -> Text,
        status -> Text,
        variants -> Jsonb,
        primary_metric -> Jsonb,
        secondary_metrics -> Jsonb,
        audience -> Jsonb,
        confidence_level -> Double,
        created_by -> Nullable<DbUuid>,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
        started_at -> Nullable<DbTimestamp>,
        ended_at -> Nullable<DbTimestamp>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{DbTimestamp, DbUuid};

    ab_assignments (experiment_id, user_id) {
        experiment_id -> DbUuid,
        user_id -> Text,
        organization_id -> DbUuid,
        variant_name -> Text,
        assigned_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{DbTimestamp, DbUuid};

    ab_results (experiment_id, id) {
        id -> DbUuid,
        experiment_id -> DbUuid,
        organization_id -> DbUuid,
        variant_name -> Text,
        user_id -> Nullable<Text>,
        session_id -> Nullable<Text>,
        metrics -> Jsonb,
        recorded_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::DbUuid;

    ab_metric_totals (experiment_id, variant_name, metric) {
        experiment_id -> DbUuid,
        variant_name -> Text,
        metric -> Text,
        n -> BigInt,
        total -> Double,
        total_sq -> Double,
    }
}

diesel::joinable!(organization_members -> organizations (organization_id));
diesel::joinable!(organization_members -> users (user_id));
diesel::joinable!(organization_invitations -> organizations (organization_id));
diesel::joinable!(subscriptions -> organizations (organization_id));
diesel::joinable!(subscriptions -> subscription_tiers (tier_id));
diesel::joinable!(api_keys -> organizations (organization_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(usage_records -> organizations (organization_id));
diesel::joinable!(files -> organizations (organization_id));
diesel::joinable!(biasguard_policies -> organizations (organization_id));
diesel::joinable!(ab_experiments -> organizations (organization_id));
diesel::joinable!(ab_assignments -> ab_experiments (experiment_id));
diesel::joinable!(ab_results -> ab_experiments (experiment_id));
diesel::joinable!(ab_metric_totals -> ab_experiments (experiment_id));
diesel::joinable!(biasguard_policy_violations -> biasguard_policies (policy_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    organizations,
    organization_members,
    organization_invitations,
    subscription_tiers,
    subscriptions,
    api_keys,
    sessions,
    usage_records,
    files,
    biasguard_policies,
    biasguard_audit_logs,
    biasguard_policy_violations,
    poisonguard_analysis_results,
    poisonguard_health_metrics,
    trustguard_audit_logs,
    ab_experiments,
    ab_assignments,
    ab_results,
    ab_metric_totals,
);

/// Tables range-partitioned by month on `created_at` in PostgreSQL.
pub const PARTITIONED_TABLES: &[&str] = &[
    "biasguard_audit_logs",
    "biasguard_policy_violations",
    "poisonguard_analysis_results",
    "poisonguard_health_metrics",
    "trustguard_audit_logs",
];
