//! The storage error type. It knows nothing of HTTP: services map each case to a status.

use std::time::Duration;

/// Result alias used throughout the storage crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong when talking to a backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The row, key or object does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness or foreign-key constraint refused the write.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The backend could not be reached or did not answer in time.
    #[error("{backend} unavailable: {message}")]
    Unavailable {
        /// Which backend (`postgres`, `sqlite`, `redis`, `s3`, `local`).
        backend: &'static str,
        /// What went wrong, without secrets.
        message: String,
    },
    /// The backend does not support the operation (e.g. presigned URLs on a local folder).
    #[error("{0} is not supported by this backend")]
    Unsupported(&'static str),
    /// An argument was refused before reaching the backend (an invalid object key, an expiry out
    /// of range).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A value read back could not be decoded.
    #[error("corrupt value: {0}")]
    Corrupt(String),
    /// Configuration is missing or malformed; the message names the variable.
    #[error("configuration: {0}")]
    Config(String),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(diesel::result::Error),
}

impl Error {
    /// Shorthand for an [`Error::Unavailable`].
    pub fn unavailable(backend: &'static str, message: impl std::fmt::Display) -> Self {
        Self::Unavailable {
            backend,
            message: message.to_string(),
        }
    }

    /// Whether retrying later (or falling back) might help.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    pub(crate) fn timeout(backend: &'static str, after: Duration) -> Self {
        Self::unavailable(
            backend,
            format!("no answer within {} ms", after.as_millis()),
        )
    }
}

impl From<diesel::result::Error> for Error {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error as D};
        match err {
            D::NotFound => Self::NotFound,
            D::DatabaseError(
                kind @ (DatabaseErrorKind::UniqueViolation
                | DatabaseErrorKind::ForeignKeyViolation
                | DatabaseErrorKind::CheckViolation
                | DatabaseErrorKind::NotNullViolation),
                info,
            ) => Self::Conflict(format!("{kind:?}: {}", info.message())),
            D::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                Self::unavailable("database", info.message())
            }
            D::DeserializationError(e) => Self::Corrupt(e.to_string()),
            other => Self::Database(other),
        }
    }
}

impl From<diesel::ConnectionError> for Error {
    fn from(err: diesel::ConnectionError) -> Self {
        Self::unavailable("database", err)
    }
}

impl From<redis::RedisError> for Error {
    fn from(err: redis::RedisError) -> Self {
        if err.kind() == redis::ErrorKind::Parse
            || err.kind() == redis::ErrorKind::UnexpectedReturnType
        {
            Self::Corrupt(err.to_string())
        } else {
            Self::unavailable("redis", err)
        }
    }
}

impl From<object_store::Error> for Error {
    fn from(err: object_store::Error) -> Self {
        match err {
            object_store::Error::NotFound { .. } => Self::NotFound,
            object_store::Error::AlreadyExists { path, .. } => Self::Conflict(path),
            object_store::Error::Precondition { path, .. } => Self::Conflict(path),
            object_store::Error::NotSupported { .. }
            | object_store::Error::NotImplemented { .. } => {
                Self::Unsupported("this object-store operation")
            }
            other => Self::unavailable("blob store", other),
        }
    }
}
