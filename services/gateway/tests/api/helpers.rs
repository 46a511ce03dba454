//! A gateway under test and the calls the tests make.

use cg_gateway::config::{Config, GatewaySettings};
use cg_service_kit::testing::{TestApp, server_config};
use cg_storage::StorageConfig;
use reqwest::{Method, RequestBuilder};
use secrecy::SecretString;
use serde_json::{Value, json};

pub const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef0123456789";
pub const PASSWORD: &str = "correct horse battery staple";

/// Gateway settings for tests (login limits high unless a test lowers them).
pub fn settings() -> GatewaySettings {
    GatewaySettings {
        jwt_secret: Some(SecretString::from(JWT_SECRET)),
        login_attempts_per_account: Some(1000),
        login_attempts_per_ip: Some(1000),
        registrations_per_ip_per_hour: Some(1000),
        organizations_per_user_per_hour: Some(1000),
        // Tests change tiers and settings behind the gateway's back.
        org_profile_cache_secs: Some(0.0),
        // Whole minutes of the tier's limits available at once: a test that writes twenty
        // policies in a second is not what the 10-second burst window is for.
        gateway_rate_burst_share: Some(1.0),
        ..GatewaySettings::default()
    }
}

pub struct Gateway {
    pub app: TestApp,
}

/// How a request authenticates.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    None,
    Bearer(&'a str),
    ApiKey(&'a str),
}

pub async fn spawn(storage: StorageConfig, gateway: GatewaySettings) -> Gateway {
    spawn_stoppable(storage, gateway).await.0
}

/// A gateway and the handle that stops it as a restart would (its background tasks end too).
pub async fn spawn_stoppable(
    storage: StorageConfig,
    gateway: GatewaySettings,
) -> (Gateway, actix_web::dev::ServerHandle) {
    let app = cg_gateway::startup::build(Config {
        server: server_config(),
        storage,
        gateway,
    })
    .await
    .expect("build the gateway");
    let handle = app.handle();
    (
        Gateway {
            app: TestApp::run(app),
        },
        handle,
    )
}

impl Gateway {
    fn request(&self, method: Method, path: &str, auth: Auth<'_>) -> RequestBuilder {
        let req = self
            .app
            .client
            .request(method, format!("{}{path}", self.app.address));
        match auth {
            Auth::None => req,
            Auth::Bearer(t) => req.bearer_auth(t),
            Auth::ApiKey(k) => req.header("x-api-key", k),
        }
    }

    pub async fn send(&self, req: RequestBuilder) -> (u16, Value) {
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, auth: Auth<'_>, body: Value) -> (u16, Value) {
        self.send(self.request(Method::POST, path, auth).json(&body))
            .await
    }

    pub async fn get(&self, path: &str, auth: Auth<'_>) -> (u16, Value) {
        self.send(self.request(Method::GET, path, auth)).await
    }

    pub async fn get_in(&self, path: &str, auth: Auth<'_>, org: &str) -> (u16, Value) {
        self.send(
            self.request(Method::GET, path, auth)
                .header("x-organization-id", org),
        )
        .await
    }

    /// POST in the organisation `org` (`X-Organization-ID`).
    pub async fn post_in(
        &self,
        path: &str,
        auth: Auth<'_>,
        org: &str,
        body: Value,
    ) -> (u16, Value) {
        self.send(
            self.request(Method::POST, path, auth)
                .header("x-organization-id", org)
                .json(&body),
        )
        .await
    }

    /// DELETE in the organisation `org` (`X-Organization-ID`).
    pub async fn delete_in(&self, path: &str, auth: Auth<'_>, org: &str) -> (u16, Value) {
        self.send(
            self.request(Method::DELETE, path, auth)
                .header("x-organization-id", org),
        )
        .await
    }

    /// `POST /api/v1/auth/refresh` with `refresh_token`.
    pub async fn refresh(&self, refresh_token: &str) -> (u16, Value) {
        self.post(
            "/api/v1/auth/refresh",
            Auth::None,
            json!({"refresh_token": refresh_token}),
        )
        .await
    }

    /// `POST /api/v1/auth/logout` with a login answer's tokens; the status.
    pub async fn logout(&self, tokens: &Value) -> u16 {
        self.post(
            "/api/v1/auth/logout",
            Auth::Bearer(access(tokens)),
            json!({"refresh_token": refresh(tokens)}),
        )
        .await
        .0
    }

    pub async fn patch(&self, path: &str, auth: Auth<'_>, body: Value) -> (u16, Value) {
        self.send(self.request(Method::PATCH, path, auth).json(&body))
            .await
    }

    pub async fn put(&self, path: &str, auth: Auth<'_>, body: Value) -> (u16, Value) {
        self.send(self.request(Method::PUT, path, auth).json(&body))
            .await
    }

    pub async fn delete(&self, path: &str, auth: Auth<'_>) -> (u16, Value) {
        self.send(self.request(Method::DELETE, path, auth)).await
    }

    /// DELETE with a JSON body (`DELETE /users/me {password}`).
    pub async fn delete_json(&self, path: &str, auth: Auth<'_>, body: Value) -> (u16, Value) {
        self.send(self.request(Method::DELETE, path, auth).json(&body))
            .await
    }

    /// Register `email` and log in; returns the login answer.
    pub async fn sign_up(&self, email: &str) -> Value {
        let (status, body) = self
            .post(
                "/api/v1/auth/register",
                Auth::None,
                json!({"email": email, "password": PASSWORD, "full_name": "Test User"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        self.login(email).await
    }

    pub async fn login(&self, email: &str) -> Value {
        let (status, body) = self
            .post(
                "/api/v1/auth/login",
                Auth::None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

/// The access token of a login answer.
pub fn access(tokens: &Value) -> &str {
    tokens["access_token"].as_str().expect("access_token")
}

/// The refresh token of a login answer.
pub fn refresh(tokens: &Value) -> &str {
    tokens["refresh_token"].as_str().expect("refresh_token")
}

/// The database a test gateway uses, opened directly.
pub async fn database(storage: &StorageConfig) -> cg_storage::Db {
    let target = storage
        .resolve(cg_storage::Needs {
            database: true,
            cache: false,
            blobs: false,
        })
        .expect("storage config")
        .database
        .expect("a database");
    cg_storage::Db::connect(&target).await.expect("connect")
}

/// Make the account of `email` a platform administrator, straight in the database.
pub async fn make_superuser(storage: &StorageConfig, email: &str) {
    let db = database(storage).await;
    let mut pooled = db.get().await.expect("connection");
    let found = cg_storage::models::User::set_superuser(&mut pooled.conn(), email, true)
        .await
        .expect("set is_superuser");
    assert!(found, "no account {email}");
}

/// Move an organisation to another tier (what billing would do), straight in the database.
pub async fn set_tier(storage: &StorageConfig, organization_id: &str, tier: &str) {
    use cg_storage::models::{Subscription, SubscriptionTier};
    use cg_storage::sql_types::Timestamp;
    let db = database(storage).await;
    let mut pooled = db.get().await.expect("connection");
    let conn = &mut pooled.conn();
    let tier = SubscriptionTier::find_by_name(conn, tier)
        .await
        .expect("tier");
    let changed = Subscription::change_tier(
        conn,
        organization_id.parse().expect("uuid"),
        tier.id,
        Timestamp::now(),
    )
    .await
    .expect("change tier");
    assert_eq!(changed, 1);
}
