//! Who is at the other end of the connection: address and user agent, recorded with sessions and
//! used to throttle logins and registrations.

use actix_web::HttpRequest;
use actix_web::http::header::USER_AGENT;

use std::net::IpAddr;

use crate::auth::sessions::ClientInfo;
use crate::config::GatewaySettings;

const MAX_USER_AGENT_CHARS: usize = 256;

/// The client address. Without `CG_TRUST_PROXY_HEADERS` it is the socket peer. Behind a proxy
/// (`CG_TRUST_PROXY_HEADERS=true`: the peer is that proxy) it is the right-most
/// `X-Forwarded-For` hop that is not one of `CG_TRUSTED_PROXIES`: every hop to the left of the
/// proxies we run was written by the client, who can put anything there.
pub fn client_ip(req: &HttpRequest, settings: &GatewaySettings) -> String {
    let peer = req
        .peer_addr()
        .map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string());
    if !settings.trust_proxy_headers() {
        return peer;
    }
    let proxies = settings.trusted_proxies();
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    let mut client = None;
    for hop in forwarded.iter().rev() {
        // Garbage where an address should be: nothing further left can be believed.
        let Ok(ip) = hop.parse::<IpAddr>() else { break };
        client = Some(ip);
        if !proxies.iter().any(|net| net.contains(&ip)) {
            break;
        }
    }
    client.map_or(peer, |ip| ip.to_string())
}

/// Address and user agent.
pub fn client_info(req: &HttpRequest, settings: &GatewaySettings) -> ClientInfo {
    ClientInfo {
        ip_address: Some(client_ip(req, settings)),
        user_agent: req
            .headers()
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn behind_proxies(trusted: Option<&str>) -> GatewaySettings {
        GatewaySettings {
            cg_trust_proxy_headers: Some(true),
            cg_trusted_proxies: trusted.map(str::to_owned),
            ..GatewaySettings::default()
        }
    }

    /// The client writes the left of `X-Forwarded-For`; the proxies we run append on the right.
    #[test]
    fn the_client_is_the_right_most_hop_that_is_not_a_trusted_proxy() {
        let req = TestRequest::default()
            .peer_addr("10.0.0.1:443".parse().unwrap())
            .insert_header(("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.1.2.3"))
            .to_http_request();
        assert_eq!(
            client_ip(&req, &behind_proxies(Some("10.0.0.0/8"))),
            "203.0.113.7"
        );
        assert_eq!(client_ip(&req, &behind_proxies(None)), "10.1.2.3");
        assert_eq!(
            client_ip(&req, &GatewaySettings::default()),
            "10.0.0.1",
            "headers are ignored unless trusted"
        );
        let forged = TestRequest::default()
            .peer_addr("10.0.0.1:443".parse().unwrap())
            .insert_header(("x-forwarded-for", "6.6.6.6, not-an-address, 198.51.100.4"))
            .to_http_request();
        assert_eq!(client_ip(&forged, &behind_proxies(None)), "198.51.100.4");
        let only_proxies = TestRequest::default()
            .peer_addr("10.0.0.1:443".parse().unwrap())
            .insert_header(("x-forwarded-for", "10.9.9.9"))
            .to_http_request();
        assert_eq!(
            client_ip(&only_proxies, &behind_proxies(Some("10.0.0.0/8"))),
            "10.9.9.9"
        );
    }
}
