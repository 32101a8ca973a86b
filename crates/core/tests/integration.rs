//! The core's actions on real models, real photos and both real databases.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use consentry_core::{Core, CoreError, Keyring, Purpose, Role};
use consentry_db::Db;
use consentry_testkit::{engine, photo, Scratch};
use consentry_types::{ErrorCode, HasErrorCode};

/// A core on a fresh database of each backend, plus the scratch space to remove afterwards.
async fn cores() -> (Vec<(Core, Db)>, Scratch) {
    let scratch = Scratch::new("core").await;
    let mut out = Vec::new();
    for url in scratch.backends() {
        let db = Db::open(&url).await.expect(&url);
        let (keys, created) = Keyring::open(&scratch.key_dir(&out.len().to_string())).unwrap();
        assert!(created);
        out.push((Core::new(db.clone(), engine(), keys).await.unwrap(), db));
    }
    (out, scratch)
}

async fn count(db: &Db, sql: &str) -> i64 {
    use sqlx::Row;
    sqlx::query(sql)
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get::<i64, _>(0)
}

fn code<T>(r: Result<T, CoreError>) -> ErrorCode {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.code(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrol_verify_delete_on_both_backends() {
    let (cores, scratch) = cores().await;
    for (core, db) in &cores {
        let (tenant, admin_key) = core.bootstrap_tenant("Residence North").await.unwrap();
        assert_eq!(
            code(core.bootstrap_tenant(" Residence North ").await),
            ErrorCode::AlreadyExists
        );
        let admin = core.authenticate(&admin_key).await.unwrap();
        assert_eq!(
            (admin.tenant.as_str(), admin.role),
            (tenant.as_str(), Role::Admin)
        );
        assert_eq!(
            code(core.authenticate("cs_nope").await),
            ErrorCode::Unauthorized
        );
        let wrong = format!("cs_{}", "0".repeat(64));
        assert_eq!(
            code(core.authenticate(&wrong).await),
            ErrorCode::Unauthorized
        );

        let obama = core.create_subject(&admin).await.unwrap();
        let biden = core.create_subject(&admin).await.unwrap();
        // No consent, no enrolment.
        let refused = core
            .enrol_face(&admin, &obama, Purpose::Verification, photo("obama.jpg"))
            .await;
        assert_eq!(code(refused), ErrorCode::ConsentRequired);

        let receipt = core
            .grant_consent(&admin, &obama, Purpose::Verification, 365)
            .await
            .unwrap();
        let tenant_key = core.receipt_public_key(&admin);
        assert!(receipt.verify(&tenant_key));
        let mut forged = receipt.clone();
        forged.retention_days = 3000;
        assert!(!forged.verify(&tenant_key));
        // A receipt signed by someone else's key, naming that key, fails against the tenant's.
        let mut other = receipt.clone();
        other.public_key = "00".repeat(32);
        assert!(!other.verify(&tenant_key));
        // The stored receipt is the whole receipt, signature included.
        let stored: Vec<u8> = sqlx::query_scalar("SELECT receipt FROM consents WHERE id = $1")
            .bind(&receipt.consent_id)
            .fetch_one(db.pool())
            .await
            .unwrap();
        let stored: consentry_core::ConsentReceipt = serde_json::from_slice(&stored).unwrap();
        assert_eq!(stored, receipt);
        assert!(stored.verify(&tenant_key));
        core.grant_consent(&admin, &biden, Purpose::Verification, 30)
            .await
            .unwrap();
        core.enrol_face(&admin, &obama, Purpose::Verification, photo("obama.jpg"))
            .await
            .unwrap();
        core.enrol_face(&admin, &biden, Purpose::Verification, photo("biden.jpg"))
            .await
            .unwrap();
        // The quality gate refuses a group photo, with its own code.
        let group = core
            .enrol_face(&admin, &obama, Purpose::Verification, photo("t1.jpg"))
            .await;
        assert_eq!(code(group), ErrorCode::MultipleFaces);
        assert_eq!(count(db, "SELECT COUNT(*) FROM templates").await, 2);

        let device = core
            .authenticate(&core.create_api_key(&admin, Role::Device).await.unwrap())
            .await
            .unwrap();
        assert_eq!(
            code(core.create_subject(&device).await),
            ErrorCode::Forbidden
        );
        let same = core
            .verify(&device, &obama, photo("obama2.jpg"))
            .await
            .unwrap();
        assert!(same.allow, "{same:?}");
        let other = core
            .verify(&device, &obama, photo("biden.jpg"))
            .await
            .unwrap();
        assert!(!other.allow, "{other:?}");
        // An unknown subject gets the same answer as a non-match: the whole answer, which
        // carries no score.
        let unknown = core
            .verify(&device, "no-such-subject", photo("obama2.jpg"))
            .await
            .unwrap();
        assert_eq!(unknown, other);

        // Another tenant sees nothing of this one.
        let (_, other_key) = core.bootstrap_tenant("Clinic South").await.unwrap();
        let stranger = core.authenticate(&other_key).await.unwrap();
        assert!(
            !core
                .verify(&stranger, &obama, photo("obama2.jpg"))
                .await
                .unwrap()
                .allow
        );
        assert_eq!(
            code(core.delete_subject(&stranger, &obama).await),
            ErrorCode::NotFound
        );
        assert_eq!(
            code(
                core.grant_consent(&stranger, &obama, Purpose::Access, 10)
                    .await
            ),
            ErrorCode::NotFound
        );

        // Deletion destroys the data key with the rows: nothing left to open.
        core.delete_subject(&admin, &obama).await.unwrap();
        assert!(
            !core
                .verify(&device, &obama, photo("obama2.jpg"))
                .await
                .unwrap()
                .allow
        );
        let left = format!("SELECT COUNT(*) FROM templates WHERE subject_id = '{obama}'");
        assert_eq!(count(db, &left).await, 0);
        let keys = format!("SELECT COUNT(*) FROM data_keys WHERE subject_id = '{obama}'");
        assert_eq!(count(db, &keys).await, 0);
        assert_eq!(
            code(core.delete_subject(&admin, &obama).await),
            ErrorCode::NotFound
        );
        // Biden is untouched.
        assert!(
            core.verify(&device, &biden, photo("biden.jpg"))
                .await
                .unwrap()
                .allow
        );
    }
    scratch.finish().await;
}

#[tokio::test]
async fn the_key_store_is_created_private_and_reused() {
    let dir = std::env::temp_dir().join(format!("consentry-keyring-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("root.key");
    let (a, created) = Keyring::open(&dir).unwrap();
    assert!(created);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir), 0o700);
    }
    let (b, created) = Keyring::open(&dir).unwrap();
    assert!(!created);
    let public = |k: &Keyring, t: &str| k.receipt_key(t).verifying_key().to_bytes();
    assert_eq!(public(&a, "t"), public(&b, "t"));
    assert_ne!(
        public(&a, "t"),
        public(&a, "u"),
        "tenants get different keys"
    );
    assert!(!format!("{a:?}").contains(&std::fs::read_to_string(&path).unwrap()));
    // A key file or directory others may use is refused, with what to do.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for mode in [0o644, 0o640, 0o604, 0o660] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            match Keyring::open(&dir) {
                Err(e) => {
                    assert_eq!(e.code(), ErrorCode::KeyUnavailable);
                    assert!(e.to_string().contains("chmod 600"), "{e}");
                }
                Ok(_) => panic!("mode {mode:o} accepted"),
            }
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(
            Keyring::open(&dir).is_ok(),
            "read-only for the owner is fine"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        match Keyring::open(&dir) {
            Err(e) => assert!(e.to_string().contains("chmod 700"), "{e}"),
            Ok(_) => panic!("a directory others may list accepted"),
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    std::fs::write(&path, "not hex").unwrap();
    assert_eq!(code(Keyring::open(&dir)), ErrorCode::KeyUnavailable);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identify_among_the_tenants_own_consenting_people() {
    let (cores, scratch) = cores().await;
    for (core, _) in &cores {
        let (_, key) = core.bootstrap_tenant("Gate").await.unwrap();
        let admin = core.authenticate(&key).await.unwrap();
        let enrol = |name: &'static str, purpose: Purpose| {
            let admin = admin.clone();
            async move {
                let s = core.create_subject(&admin).await.unwrap();
                core.grant_consent(&admin, &s, purpose, 365).await.unwrap();
                core.enrol_face(&admin, &s, purpose, photo(name))
                    .await
                    .unwrap();
                s
            }
        };
        let obama = enrol("obama.jpg", Purpose::Access).await;
        let biden = enrol("biden.jpg", Purpose::Access).await;
        // Enrolled for verification only: never identified at a gate.
        let _yao = enrol("yaoming.jpg", Purpose::Verification).await;

        // The first identify builds the gallery from the vault.
        let hit = core.identify(&admin, photo("obama2.jpg")).await.unwrap();
        assert_eq!(
            (hit.allow, hit.subject.as_deref()),
            (true, Some(obama.as_str())),
            "{hit:?}"
        );
        let hit = core.identify(&admin, photo("biden.jpg")).await.unwrap();
        assert_eq!(hit.subject.as_deref(), Some(biden.as_str()));
        let nobody = core.identify(&admin, photo("yaoming.jpg")).await.unwrap();
        assert_eq!(
            (nobody.allow, nobody.subject.as_deref()),
            (false, None),
            "{nobody:?}"
        );

        // Kept in sync: a later enrolment is found, a deletion is effective at once.
        let yao_access = enrol("yaoming.jpg", Purpose::Access).await;
        let hit = core.identify(&admin, photo("yaoming.jpg")).await.unwrap();
        assert_eq!(hit.subject.as_deref(), Some(yao_access.as_str()));
        core.delete_subject(&admin, &obama).await.unwrap();
        let gone = core.identify(&admin, photo("obama2.jpg")).await.unwrap();
        assert!(!gone.allow && gone.subject.is_none(), "{gone:?}");

        // Another tenant's gate never sees these people.
        let (_, other) = core.bootstrap_tenant("Other").await.unwrap();
        let stranger = core.authenticate(&other).await.unwrap();
        let miss = core.identify(&stranger, photo("biden.jpg")).await.unwrap();
        assert_eq!((miss.allow, miss.subject), (false, None));
    }
    scratch.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawal_and_retention_delete_templates() {
    let (cores, scratch) = cores().await;
    for (core, db) in &cores {
        let (_, key) = core.bootstrap_tenant("Service centre").await.unwrap();
        let admin = core.authenticate(&key).await.unwrap();
        let s = core.create_subject(&admin).await.unwrap();
        let first = core
            .grant_consent(&admin, &s, Purpose::Verification, 30)
            .await
            .unwrap();
        let second = core
            .grant_consent(&admin, &s, Purpose::Verification, 10)
            .await
            .unwrap();
        core.enrol_face(&admin, &s, Purpose::Verification, photo("obama.jpg"))
            .await
            .unwrap();
        let view = core.subject(&admin, &s).await.unwrap();
        assert_eq!(
            (
                view.consents.len(),
                view.verification_templates,
                view.access_templates
            ),
            (2, 1, 0)
        );

        // Withdrawing one of two consents keeps the template; the last one takes it along.
        core.withdraw_consent(&admin, &s, &first.consent_id)
            .await
            .unwrap();
        assert_eq!(
            code(core.withdraw_consent(&admin, &s, &first.consent_id).await),
            ErrorCode::NotFound
        );
        assert!(
            core.verify(&admin, &s, photo("obama2.jpg"))
                .await
                .unwrap()
                .allow
        );
        // A template made by another face model never matches and shows as such.
        let relabel = |model: &str| {
            format!("UPDATE templates SET model = '{model}' WHERE subject_id = '{s}'")
        };
        sqlx::query(&relabel("some-other-model"))
            .execute(db.pool())
            .await
            .unwrap();
        let verdict = core.verify(&admin, &s, photo("obama2.jpg")).await.unwrap();
        assert!(!verdict.allow);
        let view = core.subject(&admin, &s).await.unwrap();
        assert_eq!(
            (view.verification_templates, view.other_model_templates),
            (0, 1)
        );
        sqlx::query(&relabel(engine().models().template_model()))
            .execute(db.pool())
            .await
            .unwrap();
        core.withdraw_consent(&admin, &s, &second.consent_id)
            .await
            .unwrap();
        assert_eq!(
            core.subject(&admin, &s)
                .await
                .unwrap()
                .verification_templates,
            0
        );
        assert!(
            !core
                .verify(&admin, &s, photo("obama2.jpg"))
                .await
                .unwrap()
                .allow
        );
        let sql = format!("SELECT COUNT(*) FROM templates WHERE subject_id = '{s}'");
        assert_eq!(count(db, &sql).await, 0);

        // Retention: a template is kept for its consent's period after its last match, then
        // the sweeper deletes it.
        core.grant_consent(&admin, &s, Purpose::Access, 7)
            .await
            .unwrap();
        core.enrol_face(&admin, &s, Purpose::Access, photo("obama.jpg"))
            .await
            .unwrap();
        // As if enrolled and last matched three days ago: it would expire in four days...
        core.backdate_templates(&admin, &s, 3 * 86_400)
            .await
            .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let expiry = format!("SELECT MAX(expires_at) FROM templates WHERE subject_id = '{s}'");
        assert!(count(db, &expiry).await <= now + 4 * 86_400);
        // ...but a match now starts its seven days again.
        assert!(
            core.identify(&admin, photo("obama2.jpg"))
                .await
                .unwrap()
                .allow
        );
        assert!(count(db, &expiry).await >= now + 7 * 86_400);
        assert_eq!(core.sweep_expired_at(now + 6 * 86_400).await.unwrap(), 0);
        assert_eq!(core.sweep_expired_at(now + 8 * 86_400).await.unwrap(), 1);
        // The sweep names the template in its tenant's gallery feed; no gallery reloads.
        let feed = |op: &str| format!("SELECT COUNT(*) FROM gallery_changes WHERE op = '{op}'");
        assert_eq!(count(db, &feed("remove_template")).await, 1);
        assert_eq!(count(db, &feed("reload")).await, 0);
        assert!(
            !core
                .identify(&admin, photo("obama2.jpg"))
                .await
                .unwrap()
                .allow
        );
        assert_eq!(count(db, &sql).await, 0);
    }
    scratch.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_database_stay_in_step() {
    let scratch = Scratch::new("core_nodes").await;
    let url = scratch.pg_url();
    let key_file = scratch.key_dir("root");
    let node = |_: u8| {
        let (url, key_file) = (url.clone(), key_file.clone());
        async move {
            let db = Db::open(&url).await.unwrap();
            let (keys, _) = Keyring::open(&key_file).unwrap();
            Core::new(db, engine(), keys).await.unwrap()
        }
    };
    let (a, b) = (node(1).await, node(2).await);
    let (_, key) = a.bootstrap_tenant("Compound").await.unwrap();
    let (pa, pb) = (
        a.authenticate(&key).await.unwrap(),
        b.authenticate(&key).await.unwrap(),
    );
    let enrol = |name: &'static str| {
        let pa = pa.clone();
        let a = &a;
        async move {
            let s = a.create_subject(&pa).await.unwrap();
            a.grant_consent(&pa, &s, Purpose::Access, 365)
                .await
                .unwrap();
            a.enrol_face(&pa, &s, Purpose::Access, photo(name))
                .await
                .unwrap();
            s
        }
    };
    let obama = enrol("obama.jpg").await;
    // Node B loads its gallery from the shared vault.
    assert_eq!(
        b.identify(&pb, photo("obama2.jpg"))
            .await
            .unwrap()
            .subject
            .as_deref(),
        Some(obama.as_str())
    );
    // Enrolled through A after B loaded: B applies the change on its next identify.
    let started = std::time::Instant::now();
    let biden = enrol("biden.jpg").await;
    assert_eq!(
        b.identify(&pb, photo("biden.jpg"))
            .await
            .unwrap()
            .subject
            .as_deref(),
        Some(biden.as_str())
    );
    // Deleted through A: effective on B at once.
    a.delete_subject(&pa, &obama).await.unwrap();
    let gone = b.identify(&pb, photo("obama2.jpg")).await.unwrap();
    assert!(!gone.allow && gone.subject.is_none(), "{gone:?}");
    eprintln!("two-node propagation round trip: {:?}", started.elapsed());
    scratch.finish().await;
}

/// Many writers at once on SQLite: every action succeeds (each write transaction takes the
/// write lock up front instead of failing with "database is locked" on upgrade).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_on_sqlite_all_succeed() {
    let scratch = Scratch::new("core_concurrent").await;
    let db = Db::open(&scratch.sqlite_url("w")).await.unwrap();
    let (keys, _) = Keyring::open(&scratch.key_dir("w")).unwrap();
    let core = Arc::new(Core::new(db.clone(), engine(), keys).await.unwrap());
    let (_, key) = core.bootstrap_tenant("Busy gate").await.unwrap();
    let admin = core.authenticate(&key).await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|task| {
            let (core, admin) = (core.clone(), admin.clone());
            tokio::spawn(async move {
                for i in 0..5 {
                    let s = core.create_subject(&admin).await?;
                    core.grant_consent(&admin, &s, Purpose::Access, 30).await?;
                    core.add_credential(
                        &admin,
                        &s,
                        &consentry_core::Credential::Card(format!("card-{task}-{i}")),
                    )
                    .await?;
                    core.delete_subject(&admin, &s).await?;
                }
                Ok::<(), CoreError>(())
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(count(&db, "SELECT COUNT(*) FROM subjects").await, 0);
    scratch.finish().await;
}

/// The best match being stale (expired, not yet swept) must not hide a live template below it:
/// identify checks the nearest candidates in order, not only the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_best_match_does_not_deny_a_valid_person() {
    let (cores, scratch) = cores().await;
    for (core, db) in &cores {
        let (_, key) = core.bootstrap_tenant("Stale gate").await.unwrap();
        let admin = core.authenticate(&key).await.unwrap();
        let obama = core.create_subject(&admin).await.unwrap();
        core.grant_consent(&admin, &obama, Purpose::Access, 30)
            .await
            .unwrap();
        let exact = core
            .enrol_face(&admin, &obama, Purpose::Access, photo("obama.jpg"))
            .await
            .unwrap();
        core.enrol_face(&admin, &obama, Purpose::Access, photo("obama3.jpg"))
            .await
            .unwrap();
        // Load the gallery, then expire the template the probe matches best (the same photo)
        // behind the index's back, as a sweep on another node that has not run yet would leave.
        let hit = core.identify(&admin, photo("obama.jpg")).await.unwrap();
        assert_eq!(hit.subject.as_deref(), Some(obama.as_str()));
        sqlx::query("UPDATE templates SET expires_at = 1 WHERE id = $1")
            .bind(&exact)
            .execute(db.pool())
            .await
            .unwrap();
        let hit = core.identify(&admin, photo("obama.jpg")).await.unwrap();
        assert!(
            hit.allow,
            "the live obama3 template must still admit: {hit:?}"
        );
        assert_eq!(hit.subject.as_deref(), Some(obama.as_str()));
        // With both stale, nothing admits.
        sqlx::query("UPDATE templates SET expires_at = 1")
            .execute(db.pool())
            .await
            .unwrap();
        let miss = core.identify(&admin, photo("obama.jpg")).await.unwrap();
        assert!(!miss.allow && miss.subject.is_none(), "{miss:?}");
    }
    scratch.finish().await;
}

/// A device key guessing PINs is stopped after MAX_FAILURES_PER_KEY failures in the window,
/// even for a right guess; another key is not; the lock lifts when the failures age out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_guessing_is_limited_per_key() {
    use consentry_core::{Credential, MAX_FAILURES_PER_KEY};
    let (cores, scratch) = cores().await;
    for (core, db) in &cores {
        let (_, key) = core.bootstrap_tenant("Guessed gate").await.unwrap();
        let admin = core.authenticate(&key).await.unwrap();
        let s = core.create_subject(&admin).await.unwrap();
        let right = Credential::Pin("482913".into());
        core.add_credential(&admin, &s, &right).await.unwrap();
        let device_key = core.create_api_key(&admin, Role::Device).await.unwrap();
        let guesser = core.authenticate(&device_key).await.unwrap();
        for i in 0..MAX_FAILURES_PER_KEY {
            let wrong = Credential::Pin(format!("{:06}", 100_000 + i));
            let d = core.decide_credential(&guesser, &wrong).await.unwrap();
            assert!(!d.allow && d.subject.is_none());
        }
        // Locked out: even the right PIN is refused, and says nothing about it.
        assert_eq!(
            code(core.decide_credential(&guesser, &right).await),
            ErrorCode::TooManyAttempts
        );
        // And the key is suspended: its next request is refused at the door.
        assert_eq!(
            code(core.authenticate(&device_key).await),
            ErrorCode::KeySuspended
        );
        // Another device of the tenant is not.
        let other_key = core.create_api_key(&admin, Role::Device).await.unwrap();
        let other = core.authenticate(&other_key).await.unwrap();
        let d = core.decide_credential(&other, &right).await.unwrap();
        assert_eq!(d.subject.as_deref(), Some(s.as_str()));
        // The failures hold no PIN, only the key and the time.
        assert_eq!(
            count(db, "SELECT COUNT(*) FROM credential_failures").await,
            MAX_FAILURES_PER_KEY
        );
        // Once they leave the window, the key may try again.
        sqlx::query("UPDATE credential_failures SET at = at - 901")
            .execute(db.pool())
            .await
            .unwrap();
        let d = core.decide_credential(&guesser, &right).await.unwrap();
        assert!(d.allow);
    }
    scratch.finish().await;
}

/// Every action leaves one entry, with its actor, target, stated purpose and outcome, and
/// nothing about a face; each entry proves its inclusion in the signed checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_is_in_the_tenants_audit_log() {
    use consentry_audit::merkle::{leaf_hash, verify_inclusion};
    use consentry_audit::{Checkpoint, Entry};
    use consentry_core::Credential;

    let (cores, scratch) = cores().await;
    for (core, _db) in &cores {
        let (tenant, admin_key) = core.bootstrap_tenant("Audited").await.unwrap();
        let admin = core.authenticate(&admin_key).await.unwrap();
        let admin = &admin;
        let key = |role| async move {
            core.authenticate(&core.create_api_key(admin, role).await.unwrap())
                .await
                .unwrap()
        };
        let operator = key(Role::Operator).await;
        let device = key(Role::Device).await;
        let auditor = key(Role::Auditor).await;

        let s = core.create_subject(&operator).await.unwrap();
        core.grant_consent(&operator, &s, Purpose::Access, 30)
            .await
            .unwrap();
        core.enrol_face(&operator, &s, Purpose::Access, photo("obama.jpg"))
            .await
            .unwrap();
        let hit = core.identify(&device, photo("obama2.jpg")).await.unwrap();
        assert_eq!(hit.subject.as_deref(), Some(s.as_str()));
        let miss = core.identify(&device, photo("biden.jpg")).await.unwrap();
        assert!(!miss.allow);
        assert!(
            !core
                .verify(&device, &s, photo("obama2.jpg"))
                .await
                .unwrap()
                .allow
        );
        core.add_credential(&operator, &s, &Credential::Pin("482913".into()))
            .await
            .unwrap();
        let wrong = Credential::Pin("111111".into());
        assert!(!core.decide_credential(&device, &wrong).await.unwrap().allow);

        // Reading a record: an operator must say why; the reason is recorded.
        assert_eq!(
            code(core.subject(&operator, &s).await),
            ErrorCode::PurposeRequired
        );
        let why = operator.clone().with_purpose(Some("complaint 12")).unwrap();
        core.subject(&why, &s).await.unwrap();
        assert!(operator.clone().with_purpose(Some("")).is_err());
        assert!(operator.clone().with_purpose(Some("a\nb")).is_err());

        // Roles: the auditor reads the log and nothing else; a device does not read it.
        assert_eq!(
            code(core.audit_checkpoint(&device).await),
            ErrorCode::Forbidden
        );
        assert_eq!(
            code(core.audit_checkpoint(&operator).await),
            ErrorCode::Forbidden
        );
        assert_eq!(code(core.subject(&auditor, &s).await), ErrorCode::Forbidden);
        assert_eq!(
            code(core.identify(&auditor, photo("obama2.jpg")).await),
            ErrorCode::Forbidden
        );
        assert_eq!(
            code(core.create_subject(&auditor).await),
            ErrorCode::Forbidden
        );
        core.delete_subject(&operator, &s).await.unwrap();

        let note = core.audit_checkpoint(&auditor).await.unwrap();
        let vkey = core.audit_verifier_key(&tenant).unwrap();
        let cp = Checkpoint::open(&note, &vkey).unwrap();
        let entries = core.audit_entries(&auditor, 0, cp.size).await.unwrap();
        assert_eq!(entries.len() as u64, cp.size);
        let parsed: Vec<Entry> = entries
            .iter()
            .map(|(_, data)| Entry::from_bytes(data.as_bytes()).unwrap())
            .collect();
        let actions: Vec<(&str, &str, Option<&str>)> = parsed
            .iter()
            .map(|e| (e.action.as_str(), e.outcome.as_str(), e.target.as_deref()))
            .collect();
        let sid = Some(s.as_str());
        assert_eq!(
            actions,
            vec![
                ("tenant.create", "ok", Some(tenant.as_str())),
                ("key.create", "ok", Some(admin.key.as_str())),
                ("key.create", "ok", Some(operator.key.as_str())),
                ("key.create", "ok", Some(device.key.as_str())),
                ("key.create", "ok", Some(auditor.key.as_str())),
                ("subject.create", "ok", sid),
                ("consent.grant", "ok", sid),
                ("enrol", "ok", sid),
                ("identify", "allow", sid),
                // The unmatched face: no target, nothing else.
                ("identify", "no_match", None),
                ("verify", "deny", sid),
                ("credential.add", "ok", sid),
                ("access.decide", "deny", None),
                ("subject.read", "ok", sid),
                ("subject.delete", "ok", sid),
            ]
        );
        let read = &parsed[13];
        assert_eq!(read.actor.key, operator.key);
        assert_eq!(read.actor.role, "operator");
        assert_eq!(read.purpose.as_deref(), Some("complaint 12"));
        assert_eq!(read.request_id, why.request_id);
        assert_eq!(parsed[9].actor.role, "device");
        assert!(parsed.iter().all(|e| e.tenant == tenant));
        for (_, data) in &entries {
            assert!(
                !data.contains("score") && !data.contains("embedding"),
                "{data}"
            );
        }
        // Each entry's inclusion proof leads to the signed root.
        for (index, data) in &entries {
            let proof = core
                .audit_inclusion(&auditor, *index, cp.size)
                .await
                .unwrap();
            assert!(verify_inclusion(
                *index,
                cp.size,
                &leaf_hash(data.as_bytes()),
                &proof,
                &cp.root
            ));
        }
        // The person's view: who acted on the record and why, newest first.
        let accesses = core.subject_accesses(admin, &s, 100).await.unwrap();
        assert_eq!(accesses.len(), 8);
        assert_eq!(accesses[0].action, "subject.delete");
        assert_eq!(accesses[1].purpose.as_deref(), Some("complaint 12"));

        // Another tenant's log is its own: its own size, root and key, none of these entries.
        let (other, other_key) = core.bootstrap_tenant("Elsewhere").await.unwrap();
        let other_admin = core.authenticate(&other_key).await.unwrap();
        let other_note = core.audit_checkpoint(&other_admin).await.unwrap();
        let other_cp =
            Checkpoint::open(&other_note, &core.audit_verifier_key(&other).unwrap()).unwrap();
        assert_eq!(other_cp.size, 2);
        assert!(Checkpoint::open(&other_note, &vkey).is_err());
        assert_eq!(
            code(core.subject_accesses(&other_admin, &s, 100).await),
            ErrorCode::NotFound
        );
    }
    scratch.finish().await;
}

/// The behaviour rules other than "many records read" (the server's tests walk that one with
/// the webhook): a burst far above the key's baseline, an operator's identify outside its
/// hours, a new network. Each suspends at once, by the rules, in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_hours_and_new_network_rules_suspend_the_key() {
    use consentry_core::{AbuseRules, Credential, KeyRequest};
    let scratch = Scratch::new("core_rules").await;
    for url in scratch.backends() {
        let db = Db::open(&url).await.unwrap();
        let (keys, _) = Keyring::open(&scratch.key_dir(&url.len().to_string())).unwrap();
        let mut core = Core::new(db.clone(), engine(), keys).await.unwrap();
        let hour = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            % 86_400
            / 3600) as u32;
        core.set_abuse_rules(AbuseRules {
            burst_floor: 5,
            // Allowed from two hours from now to the hour before now: now is outside.
            operator_hours: Some(((hour + 2) % 24, (hour + 23) % 24)),
            ..AbuseRules::default()
        });
        let mut alerts = core.subscribe_alerts();
        let (_, admin_key) = core.bootstrap_tenant("Rules").await.unwrap();
        let admin = core.authenticate(&admin_key).await.unwrap();
        // Admin keys are not bound to networks (a tenant must not lock out its own admin).
        for net in ["192.0.2.0/24", "198.51.100.0/24"] {
            core.authenticate_request(&admin_key, Some(net))
                .await
                .unwrap();
        }
        let issue = |role| {
            let core = &core;
            let admin = &admin;
            async move {
                core.issue_key(admin, &KeyRequest::role(role))
                    .await
                    .unwrap()
                    .1
            }
        };

        // Burst: the sixth request within a minute is refused and the key suspended.
        let device_key = issue(Role::Device).await;
        let card = Credential::Card("nobody".into());
        for _ in 0..5 {
            let p = core.authenticate_request(&device_key, None).await.unwrap();
            core.decide_credential(&p, &card).await.unwrap();
        }
        assert_eq!(
            code(core.authenticate_request(&device_key, None).await),
            ErrorCode::KeySuspended
        );
        assert_eq!(alerts.recv().await.unwrap().rule, "burst");

        // An operator identifying outside its hours.
        let operator_key = issue(Role::Operator).await;
        let operator = core
            .authenticate_request(&operator_key, None)
            .await
            .unwrap();
        assert_eq!(
            code(core.identify(&operator, photo("obama.jpg")).await),
            ErrorCode::KeySuspended
        );
        assert_eq!(alerts.recv().await.unwrap().rule, "identify_outside_hours");
        assert_eq!(
            code(core.authenticate(&operator_key).await),
            ErrorCode::KeySuspended
        );
        // A device key is not bound by operator hours.
        let gate_key = issue(Role::Device).await;
        let gate = core.authenticate(&gate_key).await.unwrap();
        core.identify(&gate, photo("obama.jpg")).await.unwrap();

        // A new network: the first is learnt, a second suspends; after reinstatement it is
        // known.
        let kiosk_key = issue(Role::Device).await;
        let kiosk = core
            .authenticate_request(&kiosk_key, Some("10.1.2.0/24"))
            .await
            .unwrap();
        core.authenticate_request(&kiosk_key, Some("10.1.2.0/24"))
            .await
            .unwrap();
        assert_eq!(
            code(
                core.authenticate_request(&kiosk_key, Some("10.9.9.0/24"))
                    .await
            ),
            ErrorCode::KeySuspended
        );
        assert_eq!(alerts.recv().await.unwrap().rule, "new_network");
        core.reinstate_key(&admin, &kiosk.key).await.unwrap();
        core.authenticate_request(&kiosk_key, Some("10.9.9.0/24"))
            .await
            .unwrap();

        let entries = core.audit_entries(&admin, 0, 1000).await.unwrap();
        let rules: Vec<String> = entries
            .iter()
            .map(|(_, d)| serde_json::from_str::<serde_json::Value>(d).unwrap())
            .filter(|e| e["action"] == "key.suspend")
            .map(|e| e["detail"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            rules,
            [
                "rule=burst role=device",
                "rule=identify_outside_hours role=operator",
                "rule=new_network role=device"
            ]
        );
        assert_eq!(
            consentry_core::network_of("203.0.113.77".parse().unwrap()),
            "203.0.113.0/24"
        );
        assert_eq!(
            consentry_core::network_of("2001:db8:1:2::9".parse().unwrap()),
            "2001:db8:1::/48"
        );
        assert_eq!(
            consentry_core::network_of("::ffff:198.51.100.4".parse().unwrap()),
            "198.51.100.0/24"
        );
        db.pool().close().await;
    }
    scratch.finish().await;
}

/// Passes: consent-gated issue, offline verification against the published trust list, a
/// pseudonym of each venue's own, check-ins that keep only pseudonym, venue and time (and are
/// swept), revocation by list, key rotation that keeps old passes valid, and revocation when
/// the person is deleted or withdraws consent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_are_issued_checked_in_revoked_and_rotated() {
    use consentry_core::KeyRequest;
    use consentry_pass::{verify, Alg, Check, PassError, RevocationList};
    let (cores, scratch) = cores().await;
    for (core, db) in &cores {
        let (tenant, admin_key) = core.bootstrap_tenant("Venues").await.unwrap();
        let admin = core.authenticate(&admin_key).await.unwrap();
        let admin_ref = &admin;
        let device = |site: &str| {
            let site = site.to_string();
            async move {
                let req = KeyRequest {
                    site: Some(site),
                    ..KeyRequest::role(Role::Device)
                };
                let (_, key) = core.issue_key(admin_ref, &req).await.unwrap();
                core.authenticate(&key).await.unwrap()
            }
        };
        let (gate12, gate13) = (device("site-12").await, device("site-13").await);
        let person = core.create_subject(&admin).await.unwrap();
        assert_eq!(
            code(
                core.issue_pass(&admin, &person, "site-12", None, None, Alg::EdDSA)
                    .await
            ),
            ErrorCode::ConsentRequired
        );
        core.grant_consent(&admin, &person, Purpose::Pass, 365)
            .await
            .unwrap();
        // A pass purpose holds no face.
        assert_eq!(
            code(
                core.enrol_face(&admin, &person, Purpose::Pass, photo("obama.jpg"))
                    .await
            ),
            ErrorCode::InvalidRequest
        );
        for bad in ["", "site 12", &"x".repeat(101)] {
            assert_eq!(
                code(
                    core.issue_pass(&admin, &person, bad, None, None, Alg::EdDSA)
                        .await
                ),
                ErrorCode::InvalidRequest
            );
        }
        assert_eq!(
            code(
                core.issue_pass(&admin, &person, "site-12", None, Some(366), Alg::EdDSA)
                    .await
            ),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(
                core.issue_pass(&gate12, &person, "site-12", None, None, Alg::EdDSA)
                    .await
            ),
            ErrorCode::Forbidden
        );
        let p12 = core
            .issue_pass(&admin, &person, "site-12", None, Some(7), Alg::EdDSA)
            .await
            .unwrap();
        let p13 = core
            .issue_pass(&admin, &person, "site-13", None, None, Alg::EdDSA)
            .await
            .unwrap();
        // The QR code carries the same text, signed again from the stored claims.
        assert_eq!(
            core.pass_text(&admin, &person, &p12.pass_id).await.unwrap(),
            p12.pass
        );

        let trust = core.pass_trust_list(&tenant).await.unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let at = |verifier| Check {
            now,
            verifier,
            revocations: None,
            max_list_age: 3600,
        };
        let c12 = verify(&p12.pass, &trust, &at(Some("site-12"))).unwrap();
        let c13 = verify(&p13.pass, &trust, &at(Some("site-13"))).unwrap();
        assert_eq!(
            (c12.access.as_str(), c12.expires_at),
            ("site-12", p12.expires_at)
        );
        assert_eq!(c12.expires_at - c12.issued_at, 7 * 86_400);
        // Nothing of the person, and nothing the two venues share.
        assert_ne!(c12.subject, c13.subject);
        assert_ne!(c12.pass_id, c13.pass_id);
        assert!(!c12.subject.contains(&person) && !p12.pass.contains(&person));
        // Another tenant's trust list does not accept it.
        let (other, _) = core.bootstrap_tenant("Elsewhere").await.unwrap();
        let foreign = core.pass_trust_list(&other).await.unwrap();
        assert_eq!(
            verify(&p12.pass, &foreign, &at(None)),
            Err(PassError::UnknownKey)
        );
        assert_eq!(
            code(core.pass_trust_list("no-such-tenant").await),
            ErrorCode::NotFound
        );

        // Check-ins: each venue records its own pseudonym; a pass for another venue is refused.
        let in12 = core.check_in(&gate12, &p12.pass).await.unwrap();
        assert_eq!(
            (in12.venue.as_str(), &in12.pseudonym),
            ("site-12", &c12.subject)
        );
        let in13 = core.check_in(&gate13, &p13.pass).await.unwrap();
        assert_ne!(in12.pseudonym, in13.pseudonym);
        assert_eq!(
            code(core.check_in(&gate13, &p12.pass).await),
            ErrorCode::PassWrongVerifier
        );
        assert_eq!(
            code(core.check_in(&admin, &p12.pass).await),
            ErrorCode::Forbidden
        );
        assert_eq!(
            code(core.check_in(&gate12, "CS1:NOTAPASS").await),
            ErrorCode::PassMalformed
        );
        let rows = count(db, "SELECT COUNT(*) FROM checkins").await;
        assert_eq!(rows, 2);

        // Revocation: on the signed list, refused at check-in and offline; no more QR code.
        core.revoke_pass(&admin, &person, &p12.pass_id)
            .await
            .unwrap();
        let (list, signed) = core.pass_revocations(&tenant, Alg::EdDSA).await.unwrap();
        assert_eq!((list.version, list.revoked.len()), (1, 1));
        let opened = RevocationList::open(&signed, &trust).unwrap();
        let with_list = Check {
            revocations: Some(&opened),
            ..at(None)
        };
        assert_eq!(
            verify(&p12.pass, &trust, &with_list),
            Err(PassError::Revoked)
        );
        assert!(verify(&p13.pass, &trust, &with_list).is_ok());
        assert_eq!(
            code(core.check_in(&gate12, &p12.pass).await),
            ErrorCode::PassRevoked
        );
        assert_eq!(
            code(core.pass_text(&admin, &person, &p12.pass_id).await),
            ErrorCode::NotFound
        );

        // Rotation: a new key signs new passes; the old one stays trusted while its passes live.
        let kids = core.rotate_pass_key(&admin).await.unwrap();
        let trust2 = core.pass_trust_list(&tenant).await.unwrap();
        // Two epochs, each an EdDSA and an ES256 key, newest first.
        assert_eq!(trust.keys.len(), 2);
        assert_eq!(trust2.keys.len(), 4);
        let newest: Vec<String> = trust2.keys[..2]
            .iter()
            .map(|k| consentry_pass::hex(&k.kid))
            .collect();
        assert_eq!(newest, kids);
        let p14 = core
            .issue_pass(&admin, &person, "site-14", None, None, Alg::EdDSA)
            .await
            .unwrap();
        assert!(verify(&p14.pass, &trust2, &at(None)).is_ok());
        // ES256 for verifiers that need it: the same claims, its own key in the same list.
        let p16 = core
            .issue_pass(&admin, &person, "site-16", None, None, Alg::ES256)
            .await
            .unwrap();
        let c16 = verify(&p16.pass, &trust2, &at(Some("site-16"))).unwrap();
        assert_eq!(c16.access, "site-16");
        assert_eq!(
            core.pass_text(&admin, &person, &p16.pass_id).await.unwrap(),
            p16.pass
        );
        let (es_list, es_signed) = core.pass_revocations(&tenant, Alg::ES256).await.unwrap();
        assert_eq!(
            RevocationList::open(&es_signed, &trust2).unwrap().revoked,
            es_list.revoked
        );
        assert!(verify(&p13.pass, &trust2, &at(None)).is_ok());
        assert_eq!(
            verify(&p14.pass, &trust, &at(None)),
            Err(PassError::UnknownKey)
        );

        // Withdrawing the pass consent revokes the live passes; deleting the person too.
        let consent: String = {
            use sqlx::Row;
            sqlx::query("SELECT id FROM consents WHERE subject_id = $1 AND purpose = 'pass'")
                .bind(&person)
                .fetch_one(db.pool())
                .await
                .unwrap()
                .get(0)
        };
        core.withdraw_consent(&admin, &person, &consent)
            .await
            .unwrap();
        let (list, _) = core.pass_revocations(&tenant, Alg::EdDSA).await.unwrap();
        assert_eq!((list.version, list.revoked.len()), (4, 4));
        let other_person = core.create_subject(&admin).await.unwrap();
        core.grant_consent(&admin, &other_person, Purpose::Pass, 30)
            .await
            .unwrap();
        let p15 = core
            .issue_pass(&admin, &other_person, "site-12", None, None, Alg::EdDSA)
            .await
            .unwrap();
        core.delete_subject(&admin, &other_person).await.unwrap();
        assert_eq!(
            code(core.check_in(&gate12, &p15.pass).await),
            ErrorCode::PassRevoked
        );

        // Check-ins are swept after 14 days, with an entry in the log.
        assert_eq!(count(db, "SELECT COUNT(*) FROM checkins").await, 2);
        core.sweep_expired_at(now + 13 * 86_400).await.unwrap();
        assert_eq!(count(db, "SELECT COUNT(*) FROM checkins").await, 2);
        core.sweep_expired_at(now + 15 * 86_400).await.unwrap();
        assert_eq!(count(db, "SELECT COUNT(*) FROM checkins").await, 0);
        let swept = format!(
            "SELECT COUNT(*) FROM audit_entries WHERE tenant_id = '{tenant}' AND action = 'retention.sweep'"
        );
        assert_eq!(count(db, &swept).await, 1);

        // Every issue, revocation and check-in is in the log.
        let logged = |action: &str| {
            let sql = format!(
                "SELECT COUNT(*) FROM audit_entries WHERE tenant_id = '{tenant}' AND action = '{action}'"
            );
            async move { count(db, &sql).await }
        };
        assert_eq!(logged("pass.issue").await, 5);
        assert_eq!(logged("pass.revoke").await, 1);
        assert_eq!(logged("pass.checkin").await, 6);
        assert_eq!(logged("pass.rotate_key").await, 1);
    }
    scratch.finish().await;
}

/// Under overload the engine queue refuses at once with `overloaded` instead of queueing
/// without bound; a refused request did nothing (no audit entry), and with room in the queue
/// the same burst is served in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_engine_queue_refuses_with_overloaded_and_writes_nothing() {
    use consentry_core::{EngineQueue, Probes};
    let scratch = Scratch::new("core_overload").await;
    let db = Db::open(&scratch.sqlite_url("q")).await.unwrap();
    let (keys, _) = Keyring::open(&scratch.key_dir("q")).unwrap();
    let mut core = Core::new(db.clone(), engine(), keys).await.unwrap();
    let default = EngineQueue::default();
    assert!(default.max_waiting >= 1);
    // No waiting at all: a job runs only when a core is free at that moment.
    core.set_engine_queue(EngineQueue {
        max_waiting: 0,
        max_wait: std::time::Duration::from_millis(1),
    });
    let core = Arc::new(core);
    let (_, key) = core.bootstrap_tenant("Busy gate").await.unwrap();
    let admin = core.authenticate(&key).await.unwrap();
    let obama = core.create_subject(&admin).await.unwrap();
    core.grant_consent(&admin, &obama, Purpose::Access, 30)
        .await
        .unwrap();
    core.enrol_face(&admin, &obama, Purpose::Access, photo("obama.jpg"))
        .await
        .unwrap();
    let burst = |core: Arc<Core>| {
        let (admin, obama) = (admin.clone(), obama.clone());
        async move {
            let probe = photo("obama2.jpg");
            let tasks: Vec<_> = (0..12)
                .map(|_| {
                    let (core, admin, probe) = (core.clone(), admin.clone(), probe.clone());
                    tokio::spawn(async move {
                        let probes = Probes {
                            image: Some(probe),
                            audio: None,
                        };
                        core.identify_with(&admin, probes).await
                    })
                })
                .collect();
            let (mut allowed, mut overloaded) = (0, 0);
            for t in tasks {
                match t.await.unwrap() {
                    Ok(id) => {
                        assert!(id.allow);
                        assert_eq!(id.subject.as_deref(), Some(obama.as_str()));
                        allowed += 1;
                    }
                    Err(e) => {
                        assert_eq!(e.code(), ErrorCode::Overloaded, "{e}");
                        overloaded += 1;
                    }
                }
            }
            (allowed, overloaded)
        }
    };
    let entries = "SELECT COUNT(*) FROM audit_entries";
    let before = count(&db, entries).await;
    let (allowed, overloaded) = burst(core.clone()).await;
    assert!(allowed >= 1 && overloaded >= 1, "{allowed} {overloaded}");
    assert_eq!(count(&db, entries).await - before, allowed);
    // Room for the whole burst: every request is served.
    let mut roomy = Arc::try_unwrap(core).ok().unwrap();
    roomy.set_engine_queue(EngineQueue {
        max_waiting: 12,
        max_wait: std::time::Duration::from_secs(60),
    });
    let roomy = Arc::new(roomy);
    assert_eq!(burst(roomy).await, (12, 0));
    scratch.finish().await;
}
