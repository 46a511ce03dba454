//! Pool construction: TLS and connect timeouts for PostgreSQL, WAL and busy timeout for SQLite.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use diesel::ConnectionError;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use secrecy::ExposeSecret;

use super::{PgPool, SqliteConnection, SqlitePool};
use crate::config::{DatabaseTarget, PoolSettings};
use crate::error::{Error, Result};

/// How long an SQLite writer waits for another process's write lock before failing.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;

pub(super) fn postgres(target: &DatabaseTarget) -> Result<PgPool> {
    let DatabaseTarget::Postgres {
        url,
        root_cert,
        tls,
        pool,
        source,
        ..
    } = target
    else {
        return Err(Error::Config("not a PostgreSQL target".into()));
    };
    let tls_config = if *tls {
        Some(Arc::new(client_tls_config(root_cert.as_deref(), source)?))
    } else {
        None
    };
    let connect_timeout = pool.connect_timeout;
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    config.custom_setup = Box::new(move |url| {
        let url = url.to_owned();
        let tls = tls_config.clone();
        Box::pin(async move { establish_postgres(&url, tls, connect_timeout).await })
    });
    let manager = AsyncDieselConnectionManager::new_with_config(url.expose_secret(), config);
    Ok(builder(pool).build_unchecked(manager))
}

pub(super) fn sqlite(target: &DatabaseTarget) -> Result<SqlitePool> {
    let DatabaseTarget::Sqlite { path, pool, .. } = target else {
        return Err(Error::Config("not an SQLite target".into()));
    };
    let mut config = ManagerConfig::<SqliteConnection>::default();
    config.custom_setup = Box::new(|url| {
        let url = url.to_owned();
        Box::pin(async move {
            let mut conn = SqliteConnection::establish(&url).await?;
            // WAL lets readers run beside the one writer; several local processes share the file.
            conn.batch_execute(&format!(
                "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; PRAGMA journal_mode = WAL; \
                 PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
            ))
            .await
            .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
            Ok(conn)
        })
    });
    let manager = AsyncDieselConnectionManager::new_with_config(path.to_string_lossy(), config);
    Ok(builder(pool).build_unchecked(manager))
}

fn builder<M: bb8::ManageConnection>(settings: &PoolSettings) -> bb8::Builder<M> {
    bb8::Pool::builder()
        .max_size(settings.max_size)
        .min_idle(settings.min_idle)
        .connection_timeout(settings.acquire_timeout)
}

async fn establish_postgres(
    url: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
    connect_timeout: Duration,
) -> diesel::ConnectionResult<AsyncPgConnection> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e: tokio_postgres::Error| ConnectionError::BadConnection(e.to_string()))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(connect_timeout);
    }
    let bad = |e: tokio_postgres::Error| ConnectionError::BadConnection(e.to_string());
    let connect = async {
        match tls {
            Some(tls) => {
                let tls = tokio_postgres_rustls::MakeRustlsConnect::new((*tls).clone());
                let (client, connection) = config.connect(tls).await.map_err(bad)?;
                AsyncPgConnection::try_from_client_and_connection(client, connection).await
            }
            None => {
                let (client, connection) =
                    config.connect(tokio_postgres::NoTls).await.map_err(bad)?;
                AsyncPgConnection::try_from_client_and_connection(client, connection).await
            }
        }
    };
    // connect_timeout covers the TCP connect; this covers a server that accepts and then stalls.
    tokio::time::timeout(connect_timeout * 2, connect)
        .await
        .map_err(|_| ConnectionError::BadConnection("timed out connecting".into()))?
}

/// rustls with the web PKI roots plus any CA certificates from `sslrootcert`.
fn client_tls_config(root_cert: Option<&Path>, source: &str) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = root_cert {
        let pem = std::fs::read(path).map_err(|e| {
            Error::Config(format!(
                "sslrootcert {} ({source} or POSTGRES_SSLROOTCERT): {e}",
                path.display()
            ))
        })?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert =
                cert.map_err(|e| Error::Config(format!("sslrootcert {}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| Error::Config(format!("sslrootcert {}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
