//! Consentry's storage: embedded SQLite by default, PostgreSQL for several nodes.
//!
//! One code path: queries go through sqlx's `Any` driver with `$1`-style placeholders, which
//! both SQLite and PostgreSQL accept; the URL scheme picks the backend. The schemas differ only
//! where the engines do (BLOB vs BYTEA), so each backend has its own migrations folder
//! (`migrations/sqlite`, `migrations/postgres`), embedded at compile time and applied by
//! [`Db::migrate`]. A `sqlite://` file is created on first connection.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::str::FromStr;
use std::sync::Once;

use consentry_types::{ErrorCode, HasErrorCode};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::AnyPool;

/// Which engine is behind a [`Db`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite (the default).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Storage errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The URL is neither `sqlite://…` nor `postgres://…`.
    #[error("unsupported database URL scheme (use sqlite://PATH or postgres://…)")]
    Scheme,
    /// The database could not be reached or refused the operation.
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl HasErrorCode for DbError {
    fn code(&self) -> ErrorCode {
        match self {
            DbError::Scheme => ErrorCode::InvalidRequest,
            DbError::Sql(_) | DbError::Migrate(_) => ErrorCode::StorageUnavailable,
        }
    }
}

/// A connection pool and its backend.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

static DRIVERS: Once = Once::new();

impl Db {
    /// Connects (creating a SQLite file when missing) without migrating.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let (backend, url) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let sep = if rest.contains('?') { '&' } else { '?' };
            let url = if rest.contains("mode=") {
                url.to_string()
            } else {
                format!("{url}{sep}mode=rwc")
            };
            (Backend::Sqlite, url)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(DbError::Scheme);
        };
        let options = AnyConnectOptions::from_str(&url)?;
        // SQLite serialises writers anyway; a small pool avoids "database is locked" storms.
        let max = if backend == Backend::Sqlite { 4 } else { 16 };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // Every connection: deleted rows (a deleted subject's wrapped data key,
                        // its sealed templates) are overwritten with zeros in the file, not
                        // left in free pages. Foreign keys are on in sqlx's SQLite defaults;
                        // said again here so that nothing depends on a default.
                        sqlx::query("PRAGMA secure_delete = ON")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        Ok(Db { pool, backend })
    }

    /// Applies the backend's pending migrations.
    pub async fn migrate(&self) -> Result<(), DbError> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// Connects and migrates: what a server does at start.
    pub async fn open(url: &str) -> Result<Db, DbError> {
        let db = Db::connect(url).await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Begins a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads first and then writes fails with
    /// "database is locked" when another connection committed in between, which no busy
    /// timeout can wait out; an immediate one waits its turn. PostgreSQL: a plain `BEGIN`.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// The pool, for the core's transactions.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The engine.
    pub fn backend(&self) -> Backend {
        self.backend
    }
}
