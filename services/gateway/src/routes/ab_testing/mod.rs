//! `/api/v1/ab-testing`: experiments on how the guards are run. Admins define and run them;
//! client applications (members, API keys) ask for a user's variant and report results; anyone
//! in the organisation reads them and their analysis. Every query is scoped to the caller's
//! organisation (another's ids answer 404), and the organisation's tier must include A/B
//! testing (`features.ab_testing`; 403 `feature_not_in_plan` otherwise).

mod analysis;
mod experiments;
mod participation;

use std::sync::Arc;

use actix_web::web;
use serde_json::json;
use utoipa::openapi::path::HttpMethod;

use crate::api_doc::{Endpoint, body};
use crate::auth::Caller;
use crate::error::{GatewayError, Result};
use crate::experiments::design::Variant;
use crate::orgs::OrgProfile;
use crate::state::AppState;

const TAG: &str = "ab-testing";
/// The tier feature these routes need.
pub const FEATURE: &str = "ab_testing";

/// Refuse unless the caller's tier includes A/B testing; the organisation's profile otherwise.
async fn require_feature(state: &AppState, caller: &Caller) -> Result<Arc<OrgProfile>> {
    let profile = state.org_profiles.get(caller.organization_id).await?;
    if profile.has_feature(FEATURE) {
        return Ok(profile);
    }
    Err(GatewayError::ForbiddenWith {
        code: "feature_not_in_plan",
        message: format!(
            "your plan ({}) does not include A/B testing",
            profile.tier.as_deref().unwrap_or("none")
        ),
        details: json!({"feature": FEATURE}),
    })
}

/// Every guard a variant runs must be in the organisation's plan (else its users' requests
/// would be refused).
fn check_plan(profile: &OrgProfile, variants: &[Variant]) -> Result<()> {
    for v in variants {
        for guard in v.overrides.services.iter().flatten() {
            if !profile.allows(guard) {
                return Err(GatewayError::Invalid(format!(
                    "variant `{}` runs {guard}, which your plan ({}) does not include",
                    v.name,
                    profile.tier.as_deref().unwrap_or("none")
                )));
            }
        }
    }
    Ok(())
}

/// This resource's routes.
pub fn endpoints() -> Vec<Endpoint> {
    const BASE: &str = "/api/v1/ab-testing/experiments";
    vec![
        Endpoint::new(
            HttpMethod::Get,
            BASE,
            || web::get().to(experiments::list),
            TAG,
            "The organisation's experiments, newest first (`?status=&limit=&offset=`)",
        ),
        Endpoint::new(
            HttpMethod::Post,
            BASE,
            || web::post().to(experiments::create),
            TAG,
            "Create an experiment as a draft (admin)",
        )
        .body(body::<experiments::CreateExperiment>())
        .ok(201),
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/ab-testing/experiments/{id}",
            || web::get().to(experiments::get),
            TAG,
            "One experiment",
        ),
        Endpoint::new(
            HttpMethod::Put,
            "/api/v1/ab-testing/experiments/{id}",
            || web::put().to(experiments::update),
            TAG,
            "Change an experiment (admin; variants and audience only while a draft)",
        )
        .body(body::<experiments::UpdateExperiment>()),
        Endpoint::new(
            HttpMethod::Patch,
            "/api/v1/ab-testing/experiments/{id}",
            || web::patch().to(experiments::update),
            TAG,
            "Change an experiment (same as PUT: any subset of the fields)",
        )
        .body(body::<experiments::UpdateExperiment>()),
        Endpoint::new(
            HttpMethod::Delete,
            "/api/v1/ab-testing/experiments/{id}",
            || web::delete().to(experiments::delete),
            TAG,
            "Delete an experiment that is not running, with its assignments and results (admin)",
        )
        .ok(204),
        Endpoint::new(
            HttpMethod::Post,
            "/api/v1/ab-testing/experiments/{id}/start",
            || web::post().to(experiments::start),
            TAG,
            "Start (or resume) an experiment (admin)",
        ),
        Endpoint::new(
            HttpMethod::Post,
            "/api/v1/ab-testing/experiments/{id}/stop",
            || web::post().to(experiments::stop),
            TAG,
            "Stop an experiment: paused, completed (default) or cancelled (admin)",
        )
        .body(body::<experiments::Stop>()),
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/ab-testing/experiments/{id}/analysis",
            || web::get().to(analysis::analysis),
            TAG,
            "Counts, means, conversion rates and significance tests against the control",
        ),
        Endpoint::new(
            HttpMethod::Post,
            "/api/v1/ab-testing/assign-user",
            || web::post().to(participation::assign_user),
            TAG,
            "A user's variant in a running experiment (sticky; member)",
        )
        .body(body::<participation::AssignUser>()),
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/ab-testing/users/{user_id}/variants",
            || web::get().to(participation::user_variants),
            TAG,
            "Every variant a user has been put in",
        ),
        Endpoint::new(
            HttpMethod::Post,
            "/api/v1/ab-testing/results",
            || web::post().to(participation::record),
            TAG,
            "Record a result of a variant (member; `result_id` makes retries safe)",
        )
        .body(body::<participation::RecordResult>())
        .ok(201),
    ]
}
