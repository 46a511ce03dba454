//! The route table every gateway route is registered from, and the OpenAPI document built from the
//! same table, so `/openapi.json` covers every route by construction. `/docs` serves Swagger UI
//! (bundled: no CDN needed).

use crate::traffic::rate_limit::rate_limit_headers;
use actix_web::middleware::from_fn;
use std::borrow::Cow;

use std::sync::Arc;

use actix_web::dev::ResourceDef;
use actix_web::http::StatusCode;
use actix_web::http::header::{ALLOW, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use cg_service_kit::ApiError;
use utoipa::ToSchema;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ComponentsBuilder, Content, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref, Required,
};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Public,
    /// A logged-in user (access token).
    User,
    /// A user or an API key, acting in one organisation.
    Caller,
}

/// A JSON request body and how to put its schema in the document.
#[derive(Debug, Clone, Copy)]
pub struct Body {
    name: fn() -> Cow<'static, str>,
    register: fn(ComponentsBuilder) -> ComponentsBuilder,
}

/// The body type `T`.
pub fn body<T: ToSchema + 'static>() -> Option<Body> {
    Some(Body {
        name: T::name,
        // With the schemas it refers to (enums and structs inside it), or their `$ref`s dangle.
        register: |c| {
            let mut nested = Vec::new();
            T::schemas(&mut nested);
            c.schema_from::<T>().schemas_from_iter(nested)
        },
    })
}

/// One route: how it is served and how it is documented.
pub struct Endpoint {
    pub method: HttpMethod,
    pub path: &'static str,
    /// Builds the actix route (once per worker).
    pub route: fn() -> actix_web::Route,
    pub summary: &'static str,
    pub tag: &'static str,
    pub access: Access,
    pub body: Option<Body>,
    /// Media type of a body that is not JSON (an upload), documented as binary.
    pub raw_body: Option<&'static str>,
    /// Whether the body may be left out.
    pub body_optional: bool,
    /// Status of a successful answer.
    pub ok: u16,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", method_name(&self.method), self.path)
    }
}

/// The method's name, lower case.
pub fn method_name(method: &HttpMethod) -> &'static str {
    match method {
        HttpMethod::Get => "get",
        HttpMethod::Post => "post",
        HttpMethod::Put => "put",
        HttpMethod::Delete => "delete",
        HttpMethod::Options => "options",
        HttpMethod::Head => "head",
        HttpMethod::Patch => "patch",
        HttpMethod::Trace => "trace",
    }
}

impl Endpoint {
    /// A route with the common defaults: caller access, no body, 200.
    pub fn new(
        method: HttpMethod,
        path: &'static str,
        route: fn() -> actix_web::Route,
        tag: &'static str,
        summary: &'static str,
    ) -> Self {
        Self {
            method,
            path,
            route,
            summary,
            tag,
            access: Access::Caller,
            body: None,
            raw_body: None,
            body_optional: false,
            ok: 200,
        }
    }

    #[must_use]
    pub fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    #[must_use]
    pub fn body(mut self, body: Option<Body>) -> Self {
        self.body = body;
        self
    }

    /// The body may be left out.
    #[must_use]
    pub fn optional_body(mut self, body: Option<Body>) -> Self {
        self.body = body;
        self.body_optional = true;
        self
    }

    #[must_use]
    pub fn raw_body(mut self, media_type: &'static str) -> Self {
        self.raw_body = Some(media_type);
        self
    }

    #[must_use]
    pub fn ok(mut self, status: u16) -> Self {
        self.ok = status;
        self
    }
}

/// The routes every service serves (from the kit), documented here with the gateway's own.
const KIT_ROUTES: [(HttpMethod, &str, &str); 3] = [
    (
        HttpMethod::Get,
        "/health",
        "Health of this replica: a status word per dependency (details on the admin port)",
    ),
    (HttpMethod::Get, "/health/live", "Liveness"),
    (
        HttpMethod::Get,
        "/health/ready",
        "Readiness (503 when a dependency is down)",
    ),
];

/// Register every endpoint, then a 405 answer for the methods a documented path does not
/// support, then `/openapi.json` and `/docs`.
pub fn register(cfg: &mut web::ServiceConfig, endpoints: Vec<Endpoint>) {
    let doc = document(&endpoints);
    let allowed = Arc::new(AllowedMethods::of(&endpoints));
    let mut paths: Vec<&'static str> = KIT_ROUTES.iter().map(|(_, path, _)| *path).collect();
    for e in endpoints {
        let route = (e.route)();
        if !paths.contains(&e.path) {
            paths.push(e.path);
        }
        if e.access == Access::Caller {
            cfg.route(e.path, route.wrap(from_fn(rate_limit_headers)));
        } else {
            cfg.route(e.path, route);
        }
    }
    // Registered after every real route, so they only see the requests no route took: a
    // path that exists with a method it does not support.
    for path in paths {
        let allowed = allowed.clone();
        cfg.route(
            path,
            web::route().to(move |req: HttpRequest| {
                let allow = allowed.for_path(req.path());
                async move { Err::<HttpResponse, _>(method_not_allowed(allow)) }
            }),
        );
    }
    cfg.route(
        "/docs",
        web::get().to(|| async {
            HttpResponse::Found()
                .insert_header((actix_web::http::header::LOCATION, "/docs/"))
                .finish()
        }),
    )
    .service(utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", doc));
}

/// Which methods each documented path pattern supports.
struct AllowedMethods(Vec<(ResourceDef, &'static str)>);

impl AllowedMethods {
    fn of(endpoints: &[Endpoint]) -> Self {
        let kit = KIT_ROUTES.iter().map(|(m, p, _)| (*p, m));
        let own = endpoints.iter().map(|e| (e.path, &e.method));
        Self(
            kit.chain(own)
                .map(|(path, method)| (ResourceDef::new(path), method_name(method)))
                .collect(),
        )
    }

    /// The methods of the documented path `path` falls under, upper case, comma-separated, as
    /// `Allow` lists them. Of several matching patterns (`/users/me` and `/users/{id}`) the one
    /// without parameters is the one that path is documented under.
    fn for_path(&self, path: &str) -> String {
        let matching = self.0.iter().filter(|(def, _)| def.is_match(path));
        let pattern = matching
            .clone()
            .find(|(def, _)| def.pattern().is_some_and(|p| !p.contains('{')))
            .or_else(|| matching.clone().next())
            .and_then(|(def, _)| def.pattern());
        let mut methods: Vec<String> = Vec::new();
        for (def, method) in &self.0 {
            let method = method.to_uppercase();
            if def.pattern() == pattern && !methods.contains(&method) {
                methods.push(method);
            }
        }
        methods.join(", ")
    }
}

/// 405 in the shared envelope, with `Allow`.
fn method_not_allowed(allow: String) -> ApiError {
    let message = format!("method not allowed; this path supports {allow}");
    let mut error = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        message,
    );
    if let Ok(value) = HeaderValue::from_str(&allow) {
        error = error.with_header(ALLOW, value);
    }
    error
}

/// The error statuses a route can answer: those every route shares, those its access implies,
/// those its method and path imply.
fn error_responses(e: &Endpoint) -> Vec<(u16, &'static str)> {
    let mut out = vec![
        (400, "malformed request"),
        (422, "well-formed but invalid"),
        (500, "internal error"),
        (503, "a backend is unavailable; retry later"),
    ];
    let writes = matches!(
        e.method,
        HttpMethod::Post | HttpMethod::Put | HttpMethod::Patch | HttpMethod::Delete
    );
    if e.body.is_some() || writes {
        out.push((413, "body larger than the limit"));
        out.push((415, "the body is not application/json"));
    }
    let auth_route = e.path.starts_with("/api/v1/auth/");
    if e.access != Access::Public || auth_route {
        out.push((401, "missing or invalid credentials"));
        out.push((403, "not allowed (role, scope, or a person's login needed)"));
        out.push((429, "a rate limit is spent (Retry-After, X-RateLimit-*)"));
    }
    if e.access != Access::Public || e.path.contains('{') {
        out.push((404, "not found (or another organisation's)"));
    }
    if writes || e.access == Access::Caller {
        out.push((409, "conflicts with existing state"));
    }
    if e.access == Access::Caller {
        out.push((402, "the organisation's monthly budget is spent"));
    }
    if e.path.starts_with("/api/v1/guards/process") || e.path.starts_with("/api/v1/guards/scan") {
        out.push((502, "the guard failed"));
        out.push((504, "the guard timed out"));
    }
    if e.path.starts_with("/api/v1/upload/") {
        for (status, what) in [
            (403, "a signed URL that is invalid or expired"),
            (415, "a file type ALLOWED_FILE_TYPES does not accept"),
            (416, "a Range outside the file"),
        ] {
            if !out.iter().any(|(s, _)| *s == status) {
                out.push((status, what));
            }
        }
    }
    out.sort_unstable();
    out
}

/// The OpenAPI document of `endpoints` plus the routes every service serves.
pub fn document(endpoints: &[Endpoint]) -> OpenApi {
    let mut components = ComponentsBuilder::new()
        .schema_from::<cg_service_kit::ErrorBody>()
        .schema_from::<cg_service_kit::error::ErrorDetail>()
        .security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An access token from /api/v1/auth/login, or an API key (cgk_…)",
                    ))
                    .build(),
            ),
        )
        .security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    let mut paths = PathsBuilder::new();
    for (method, path, summary) in KIT_ROUTES {
        let op = OperationBuilder::new()
            .summary(Some(summary))
            .tag("operations")
            .response("200", ResponseBuilder::new().description("OK").build());
        paths = paths.path(path, PathItem::new(method, op));
    }
    for e in endpoints {
        let mut op = OperationBuilder::new()
            .summary(Some(e.summary))
            .tag(e.tag)
            .operation_id(Some(format!(
                "{}_{}",
                method_name(&e.method),
                e.path
                    .trim_start_matches("/api/v1/")
                    .replace(['/', '{', '}', '-'], "_")
            )));
        for segment in e.path.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                op = op.parameter(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .schema(Some(
                            utoipa::openapi::ObjectBuilder::new()
                                .schema_type(utoipa::openapi::schema::Type::String),
                        )),
                );
            }
        }
        if e.access == Access::Caller {
            op = op.parameter(
                ParameterBuilder::new()
                    .name("X-Organization-ID")
                    .parameter_in(ParameterIn::Header)
                    .required(Required::False)
                    .schema(Some(
                        utoipa::openapi::ObjectBuilder::new()
                            .schema_type(utoipa::openapi::schema::Type::String)
                            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                                utoipa::openapi::KnownFormat::Uuid,
                            ))),
                    ))
                    .description(Some(
                        "Act in this organisation (users only; default: the oldest membership)",
                    )),
            );
        }
        if let Some(b) = e.body {
            components = (b.register)(components);
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .content(
                        "application/json",
                        Content::new(Some(Ref::from_schema_name((b.name)()))),
                    )
                    .required(Some(if e.body_optional {
                        Required::False
                    } else {
                        Required::True
                    }))
                    .build(),
            ));
        }
        if let Some(media_type) = e.raw_body {
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .content(
                        media_type,
                        Content::new(Some(
                            utoipa::openapi::ObjectBuilder::new()
                                .schema_type(utoipa::openapi::schema::Type::String)
                                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                                    utoipa::openapi::KnownFormat::Binary,
                                ))),
                        )),
                    )
                    .required(Some(Required::True))
                    .build(),
            ));
        }
        if e.access != Access::Public {
            op = op
                .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
                .security(SecurityRequirement::new("api_key", Vec::<String>::new()));
        }
        op = op.response(
            e.ok.to_string(),
            ResponseBuilder::new().description("success").build(),
        );
        for (status, why) in error_responses(e) {
            op = op.response(
                status.to_string(),
                ResponseBuilder::new()
                    .description(why)
                    .content(
                        "application/json",
                        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                    )
                    .build(),
            );
        }
        paths = paths.path(e.path, PathItem::new(e.method.clone(), op));
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("CodeGuardians Gateway")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("The public API of CodeGuardians: identity, organisations, API keys, subscriptions and the guards.")),
        )
        .paths(paths)
        .components(Some(components.build()))
        .build()
}
