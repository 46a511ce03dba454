//! A plain proxy: the floor under the gateway's guarded path, for `scripts/bench-gateway`.
//!
//! Every POST body is forwarded to `CG_PROXY_UPSTREAM` with the internal token and the answer
//! passed back: the same stack as the gateway (actix-web workers, one reqwest pool per worker
//! thread, mimalloc through `cg-service-kit`), none of its work (no authentication, limits,
//! usage, JSON parsing or verdicts). The gateway's rate against this one's, in the same run, is
//! what the gateway's own work costs.
//!
//! ```text
//! CG_PROXY_PORT=8099 CG_PROXY_UPSTREAM=http://127.0.0.1:8001/scan CG_INTERNAL_TOKEN=… \
//!   cargo run --release -p cg-gateway --example plain_proxy
//! ```

use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};

// The services' allocator (mimalloc), linked in by the kit.
use cg_service_kit as _;

thread_local! {
    /// One pool per worker thread, as the gateway's guard clients have.
    static POOL: reqwest::Client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .unwrap_or_default();
}

struct Upstream {
    url: String,
    token: String,
}

async fn forward(body: web::Bytes, upstream: web::Data<Upstream>) -> HttpResponse {
    let pool = POOL.with(Clone::clone);
    let sent = pool
        .post(&upstream.url)
        .header("x-internal-token", &upstream.token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    let Ok(answer) = sent else {
        return HttpResponse::BadGateway().finish();
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    match answer.bytes().await {
        Ok(bytes) => HttpResponse::build(status)
            .content_type("application/json")
            .body(bytes),
        Err(_) => HttpResponse::BadGateway().finish(),
    }
}

fn var(name: &str) -> std::io::Result<String> {
    std::env::var(name).map_err(|_| std::io::Error::other(format!("{name} is not set")))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = var("CG_PROXY_PORT")?
        .parse()
        .map_err(|_| std::io::Error::other("CG_PROXY_PORT is not a port"))?;
    let upstream = web::Data::new(Upstream {
        url: var("CG_PROXY_UPSTREAM")?,
        token: var("CG_INTERNAL_TOKEN")?,
    });
    HttpServer::new(move || {
        App::new()
            .app_data(upstream.clone())
            .app_data(web::PayloadConfig::new(10 << 20))
            .default_service(web::post().to(forward))
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
