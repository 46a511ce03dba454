//! Who is at the other end of the connection: address and user agent, recorded with sessions and
//! used to throttle logins.

use actix_web::HttpRequest;
use actix_web::http::header::USER_AGENT;

use crate::auth::sessions::ClientInfo;

const MAX_USER_AGENT_CHARS: usize = 256;

/// The client address: the socket peer, or the first `X-Forwarded-For` hop when the gateway runs
/// behind a proxy it trusts (`CG_TRUST_PROXY_HEADERS=true`); a client could forge that header
/// otherwise.
pub fn client_ip(req: &HttpRequest, trust_proxy_headers: bool) -> String {
    if trust_proxy_headers
        && let Some(first) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| v.parse::<std::net::IpAddr>().is_ok())
    {
        return first.to_owned();
    }
    req.peer_addr()
        .map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string())
}

/// Address and user agent.
pub fn client_info(req: &HttpRequest, trust_proxy_headers: bool) -> ClientInfo {
    ClientInfo {
        ip_address: Some(client_ip(req, trust_proxy_headers)),
        user_agent: req
            .headers()
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect()),
    }
}
