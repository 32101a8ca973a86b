//! The schema on both real backends: SQLite in a temporary file, PostgreSQL on
//! `$CONSENTRY_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`), each test in a
//! schema of its own.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use consentry_db::{Backend, Db};
use consentry_testkit::Scratch;

/// A fresh, empty database of each backend, and the scratch space to remove afterwards.
async fn fresh() -> (Vec<Db>, Scratch) {
    let scratch = Scratch::new("db").await;
    let mut out = Vec::new();
    for url in scratch.backends() {
        out.push(Db::open(&url).await.expect(&url));
    }
    (out, scratch)
}

async fn exec(db: &Db, sql: &str) -> Result<u64, sqlx::Error> {
    sqlx::query(sql)
        .execute(db.pool())
        .await
        .map(|r| r.rows_affected())
}

async fn count(db: &Db, table: &str) -> i64 {
    use sqlx::Row;
    sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get::<i64, _>("n")
}

#[tokio::test]
async fn both_backends_migrate_idempotently_and_enforce_the_schema() {
    let (dbs, scratch) = fresh().await;
    for db in dbs {
        let b = db.backend();
        db.migrate().await.expect("second migrate is a no-op");
        exec(
            &db,
            "INSERT INTO tenants (id, name, kek_id, created_at) VALUES ('t1', 'Gate A', 'k', 1)",
        )
        .await
        .unwrap();
        // Tenant names are unique; roles are checked; keys belong to an existing tenant.
        assert!(exec(&db, "INSERT INTO tenants (id, name, kek_id, created_at) VALUES ('t2', 'Gate A', 'k', 1)").await.is_err(), "{b:?}");
        let bad_role = "INSERT INTO api_keys (id, tenant_id, role, key_hash, created_at) VALUES ('a', 't1', 'root', x'00', 1)";
        let bad_role = if b == Backend::Postgres {
            bad_role.replace("x'00'", "'\\x00'::bytea")
        } else {
            bad_role.to_string()
        };
        assert!(exec(&db, &bad_role).await.is_err(), "{b:?}");
        assert!(
            exec(
                &db,
                "INSERT INTO subjects (id, tenant_id, created_at) VALUES ('s', 'nope', 1)"
            )
            .await
            .is_err(),
            "{b:?}: foreign key"
        );
    }
    scratch.finish().await;
}

#[tokio::test]
async fn deleting_a_subject_removes_its_key_templates_and_consents_in_one_statement() {
    let (dbs, scratch) = fresh().await;
    for db in dbs {
        let b = db.backend();
        let blob = |hex: &str| {
            if b == Backend::Postgres {
                format!("'\\x{hex}'::bytea")
            } else {
                format!("x'{hex}'")
            }
        };
        exec(
            &db,
            "INSERT INTO tenants (id, name, kek_id, created_at) VALUES ('t1', 'Gate', 'k', 1)",
        )
        .await
        .unwrap();
        exec(
            &db,
            "INSERT INTO subjects (id, tenant_id, created_at) VALUES ('s1', 't1', 1)",
        )
        .await
        .unwrap();
        // A data key names the epoch of its KEK: an unknown epoch is refused.
        let key = format!(
            "INSERT INTO data_keys (subject_id, kek_id, wrapped) VALUES ('s1', 'k', {})",
            blob("abcd")
        );
        assert!(exec(&db, &key).await.is_err(), "{b:?}");
        exec(
            &db,
            "INSERT INTO kek_epochs (id, seq, created_at) VALUES ('k', 1, 1)",
        )
        .await
        .unwrap();
        exec(&db, &key).await.unwrap();
        // ... and keeps it: an epoch still in use cannot be deleted.
        assert!(
            exec(&db, "DELETE FROM kek_epochs WHERE id = 'k'")
                .await
                .is_err(),
            "{b:?}"
        );
        exec(&db, &format!("INSERT INTO consents (id, tenant_id, subject_id, purpose, retention_days, granted_at, receipt) VALUES ('c1', 't1', 's1', 'access', 30, 1, {})", blob("01"))).await.unwrap();
        exec(&db, &format!("INSERT INTO templates (id, tenant_id, subject_id, purpose, model, sealed, created_at, last_used_at, expires_at) VALUES ('f1', 't1', 's1', 'access', 'sface', {}, 1, 1, 99)", blob("ff"))).await.unwrap();
        assert_eq!(count(&db, "templates").await, 1);
        assert_eq!(
            exec(&db, "DELETE FROM subjects WHERE id = 's1'")
                .await
                .unwrap(),
            1
        );
        for table in ["data_keys", "consents", "templates", "subjects"] {
            assert_eq!(count(&db, table).await, 0, "{b:?} {table}");
        }
    }
    scratch.finish().await;
}

#[tokio::test]
async fn unknown_schemes_are_refused() {
    assert!(matches!(
        Db::connect("mysql://x").await,
        Err(consentry_db::DbError::Scheme)
    ));
}
