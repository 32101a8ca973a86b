//! Keys that really destroy: a copy of the database made before a deletion opens nothing once
//! the key-encryption key has rotated; a withdrawal re-keys; an edited row is refused; the key
//! store belongs to one database. On real models, real photos and both real databases.
//!
//! The "attacker" here holds a copy of the database and every key still in the key store, and
//! uses the documented derivations directly (not the server's code paths, which would refuse
//! for their own reasons): what fails for them fails for anyone.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use consentry_core::{Core, Keyring, Principal, Purpose};
use consentry_db::Db;
use consentry_testkit::{engine, photo, Scratch};
use consentry_vault::{key_from_hex, DataKey, Kek, KeyContext, TemplateContext, WrappedKey};
use hkdf::Hkdf;
use sha2::Sha256;
use sqlx::Row;

/// One data key row and the template rows of a copy of the database.
#[derive(Clone, Debug, Default)]
struct Copy {
    /// subject → (kek_id, wrapped)
    keys: HashMap<String, (String, Vec<u8>)>,
    /// The templates' columns by name.
    templates: Vec<HashMap<String, String>>,
    sealed: Vec<Vec<u8>>,
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// Reads a copy through a plain connection (no migration, no server code).
async fn read_copy(url: &str) -> Copy {
    let db = Db::connect(url).await.unwrap();
    let mut copy = Copy::default();
    for r in sqlx::query("SELECT subject_id, kek_id, wrapped FROM data_keys")
        .fetch_all(db.pool())
        .await
        .unwrap()
    {
        copy.keys.insert(
            r.get("subject_id"),
            (r.get("kek_id"), r.get::<Vec<u8>, _>("wrapped")),
        );
    }
    for r in sqlx::query(
        "SELECT id, tenant_id, subject_id, purpose, model, sealed, last_used_at, expires_at \
         FROM templates",
    )
    .fetch_all(db.pool())
    .await
    .unwrap()
    {
        let mut m = HashMap::new();
        for c in ["id", "tenant_id", "subject_id", "purpose", "model"] {
            m.insert(c.to_string(), r.get::<String, _>(c));
        }
        for c in ["last_used_at", "expires_at"] {
            m.insert(c.to_string(), r.get::<i64, _>(c).to_string());
        }
        copy.templates.push(m);
        copy.sealed.push(r.get("sealed"));
    }
    db.pool().close().await;
    copy
}

/// Parses the `data_keys` and `templates` tables out of a plain-text `pg_dump`.
fn read_pg_dump(dump: &str) -> Copy {
    let mut copy = Copy::default();
    let mut lines = dump.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("COPY ") else {
            continue;
        };
        let table = rest.split(' ').next().unwrap().rsplit('.').next().unwrap();
        let cols: Vec<&str> = rest[rest.find('(').unwrap() + 1..rest.find(')').unwrap()]
            .split(", ")
            .collect();
        for row in lines.by_ref().take_while(|l| *l != "\\.") {
            let m: HashMap<&str, &str> = cols.iter().copied().zip(row.split('\t')).collect();
            let bytes = |c: &str| hex(m[c].trim_start_matches("\\\\x"));
            match table {
                "data_keys" => {
                    copy.keys.insert(
                        m["subject_id"].to_string(),
                        (m["kek_id"].to_string(), bytes("wrapped")),
                    );
                }
                "templates" => {
                    copy.sealed.push(bytes("sealed"));
                    copy.templates.push(
                        m.iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                    );
                }
                _ => {}
            }
        }
    }
    copy
}

/// Every secret in a key directory (the root key and each epoch), hex-decoded.
fn secrets_in(dir: &Path) -> Vec<zeroize::Zeroizing<[u8; 32]>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "key"))
        .map(|p| key_from_hex(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

fn hkdf(secret: &[u8], salt: &[u8], info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(Some(salt), secret)
        .expand(info, &mut out)
        .unwrap();
    out
}

/// Every KEK of `tenant` that the secrets could give: each secret as an epoch secret, as the
/// root key (the derivation from before epochs), and raw.
fn candidate_keks(secrets: &[zeroize::Zeroizing<[u8; 32]>], tenant: &str) -> Vec<Kek> {
    let info = [b"kek\0".as_slice(), tenant.as_bytes()].concat();
    secrets
        .iter()
        .flat_map(|s| {
            [
                hkdf(s.as_ref(), b"consentry kek epoch v1", &info),
                hkdf(s.as_ref(), b"consentry tenant keys v1", &info),
                **s,
            ]
        })
        .map(Kek::from_bytes)
        .collect()
}

/// What the attacker gets of `subject` out of `copy` with `secrets`: its data key (from
/// `key_source`), if any KEK unwraps it, and the templates of the copy that key opens (id and
/// protected vector).
fn open_subject(
    copy: &Copy,
    key_source: &Copy,
    secrets: &[zeroize::Zeroizing<[u8; 32]>],
    tenant: &str,
    subject: &str,
) -> Option<Vec<(String, Vec<f32>)>> {
    let (_, wrapped) = key_source.keys.get(subject)?;
    let ctx = KeyContext { tenant, subject };
    let key: DataKey = candidate_keks(secrets, tenant)
        .iter()
        .find_map(|k| k.unwrap(&WrappedKey(wrapped.clone()), ctx).ok())?;
    Some(
        copy.templates
            .iter()
            .zip(&copy.sealed)
            .filter(|(t, _)| t["subject_id"] == subject)
            .filter_map(|(t, sealed)| {
                let ctx = TemplateContext {
                    tenant,
                    subject,
                    template: &t["id"],
                    purpose: &t["purpose"],
                    model: &t["model"],
                    last_used_at: t["last_used_at"].parse().unwrap(),
                    expires_at: t["expires_at"].parse().unwrap(),
                };
                let v = key.open_template(ctx, sealed).ok()?;
                Some((t["id"].clone(), v.to_vec()))
            })
            .collect(),
    )
}

/// [`open_subject`] as (data key unwrapped, templates opened).
fn attack(
    copy: &Copy,
    key_source: &Copy,
    secrets: &[zeroize::Zeroizing<[u8; 32]>],
    tenant: &str,
    subject: &str,
) -> (bool, usize) {
    open_subject(copy, key_source, secrets, tenant, subject).map_or((false, 0), |t| (true, t.len()))
}

/// A backup of the database: the SQLite files copied (after a checkpoint, as a file-level
/// backup tool would see them), or a `pg_dump` of the scratch schema.
async fn backup(db: &Db, url: &str, scratch: &Scratch, schema: &str, name: &str) -> Copy {
    if url.starts_with("sqlite") {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(db.pool())
            .await
            .unwrap();
        let src = PathBuf::from(url.trim_start_matches("sqlite://"));
        let dst = scratch.dir.join(format!("{name}.db"));
        std::fs::copy(&src, &dst).unwrap();
        read_copy(&format!("sqlite://{}", dst.display())).await
    } else {
        let out = std::process::Command::new("pg_dump")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "test",
                "--data-only",
                "-n",
                schema,
            ])
            .output()
            .expect("pg_dump (Debian postgresql-client)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dump = String::from_utf8(out.stdout).unwrap();
        std::fs::write(scratch.dir.join(format!("{name}.sql")), &dump).unwrap();
        read_pg_dump(&dump)
    }
}

/// A core on a fresh database of `url`'s backend, with a key store of its own.
async fn core_on(scratch: &Scratch, url: &str) -> (Core, Db, PathBuf) {
    let dir = scratch.key_dir(&url.len().to_string());
    let db = Db::open(url).await.unwrap();
    let (keys, _) = Keyring::open(&dir).unwrap();
    (
        Core::new(db.clone(), engine(), keys).await.unwrap(),
        db,
        dir,
    )
}

async fn person(core: &Core, admin: &Principal, face: &str, purposes: &[Purpose]) -> String {
    let s = core.create_subject(admin).await.unwrap();
    for &purpose in purposes {
        core.grant_consent(admin, &s, purpose, 30).await.unwrap();
        core.enrol_face(admin, &s, purpose, photo(face))
            .await
            .unwrap();
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_before_a_deletion_opens_nothing_of_it_after_the_rotation() {
    let scratch = Scratch::new("keys_backup").await;
    for url in scratch.backends() {
        let (core, db, dir) = core_on(&scratch, &url).await;
        let (tenant, key) = core.bootstrap_tenant("Service centre").await.unwrap();
        let admin = core.authenticate(&key).await.unwrap();
        let both = [Purpose::Verification, Purpose::Access];
        let gone = person(&core, &admin, "obama.jpg", &both).await;
        let stays = person(&core, &admin, "biden.jpg", &both).await;

        let before = backup(&db, &url, &scratch, &scratch.schema, "before").await;
        // Positive control: with the keys of today, the backup of today opens both.
        let held = secrets_in(&dir);
        assert_eq!(attack(&before, &before, &held, &tenant, &gone), (true, 2));
        assert_eq!(attack(&before, &before, &held, &tenant, &stays), (true, 2));

        core.delete_subject(&admin, &gone).await.unwrap();
        // Until the rotation, the backup still opens the deleted person: the window.
        assert_eq!(attack(&before, &before, &held, &tenant, &gone), (true, 2));

        let r = core.rotate_keys(&|_, _| {}).await.unwrap();
        assert_eq!((r.epoch.as_str(), r.rewrapped), ("epoch-2", 1), "{r:?}");
        assert_eq!(r.destroyed, ["epoch-1"], "{r:?}");
        let held = secrets_in(&dir);
        assert_eq!(held.len(), 2, "the root key and epoch 2");
        let after = backup(&db, &url, &scratch, &scratch.schema, "after").await;

        // The backup plus every key still held: nothing of the deleted person opens.
        assert_eq!(attack(&before, &before, &held, &tenant, &gone), (false, 0));
        // The other person's templates open from a backup taken after the rotation...
        assert_eq!(attack(&after, &after, &held, &tenant, &stays), (true, 2));
        // ...and the server goes on: the remaining person verifies, the deleted one does not.
        assert!(
            core.verify(&admin, &stays, photo("biden.jpg"))
                .await
                .unwrap()
                .allow
        );
        assert!(
            !core
                .verify(&admin, &gone, photo("obama2.jpg"))
                .await
                .unwrap()
                .allow
        );
        let who = core.identify(&admin, photo("obama2.jpg")).await.unwrap();
        assert!(!who.allow, "{who:?}");
        // A backup older than the rotation opens no template at all (restoring one means
        // enrolling the faces again; consents, credentials and passes are unaffected).
        assert_eq!(attack(&before, &before, &held, &tenant, &stays), (false, 0));
        // The deleted rows are not left in the SQLite file's free pages either.
        if url.starts_with("sqlite") {
            let file = std::fs::read(url.trim_start_matches("sqlite://")).unwrap();
            let (_, wrapped) = &before.keys[&gone];
            assert!(
                !file.windows(wrapped.len()).any(|w| w == wrapped.as_slice()),
                "the deleted wrapped key is still in the database file"
            );
        }
        core.close().await;
    }
    scratch.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawal_and_the_sweep_give_the_subject_a_new_data_key() {
    let scratch = Scratch::new("keys_rekey").await;
    for url in scratch.backends() {
        let (core, db, dir) = core_on(&scratch, &url).await;
        let (tenant, key) = core.bootstrap_tenant("Residence").await.unwrap();
        let admin = core.authenticate(&key).await.unwrap();
        let s = core.create_subject(&admin).await.unwrap();
        let receipt = core
            .grant_consent(&admin, &s, Purpose::Verification, 30)
            .await
            .unwrap();
        core.enrol_face(&admin, &s, Purpose::Verification, photo("obama.jpg"))
            .await
            .unwrap();
        core.grant_consent(&admin, &s, Purpose::Access, 30)
            .await
            .unwrap();
        core.enrol_face(&admin, &s, Purpose::Access, photo("obama.jpg"))
            .await
            .unwrap();
        let before = backup(&db, &url, &scratch, &scratch.schema, "rk-before").await;

        core.withdraw_consent(&admin, &s, &receipt.consent_id)
            .await
            .unwrap();
        core.rotate_keys(&|_, _| {}).await.unwrap();
        let held = secrets_in(&dir);
        let after = backup(&db, &url, &scratch, &scratch.schema, "rk-after").await;
        // The live data key opens the access template it still has...
        assert_eq!(attack(&after, &after, &held, &tenant, &s), (true, 1));
        // ...and not the withdrawn verification template's old copy: the key was replaced.
        assert_eq!(attack(&before, &after, &held, &tenant, &s), (true, 0));
        // The old copy's own key is under the destroyed epoch.
        assert_eq!(attack(&before, &before, &held, &tenant, &s), (false, 0));
        assert!(
            core.identify(&admin, photo("obama2.jpg"))
                .await
                .unwrap()
                .allow
        );

        // The sweep: the access template expires; the subject's key is replaced again.
        let old_key = after.keys[&s].1.clone();
        let far = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + 365 * 86_400;
        assert_eq!(core.sweep_expired_at(far).await.unwrap(), 1);
        let swept = backup(&db, &url, &scratch, &scratch.schema, "rk-swept").await;
        assert_ne!(swept.keys[&s].1, old_key);
        assert_eq!(attack(&after, &swept, &held, &tenant, &s), (true, 0));
        core.close().await;
    }
    scratch.finish().await;
}

/// Each column that decides how a template may be used is bound into its envelope: edited in
/// the database, the template is refused (the person is denied), not misused; put back, it
/// works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_whose_row_was_edited_is_refused_not_misused() {
    let scratch = Scratch::new("keys_columns").await;
    for url in scratch.backends() {
        let (core, db, _) = core_on(&scratch, &url).await;
        let (_, key) = core.bootstrap_tenant("Counter").await.unwrap();
        let admin = core.authenticate(&key).await.unwrap();
        let (elsewhere, other_key) = core.bootstrap_tenant("Elsewhere").await.unwrap();
        let other_admin = core.authenticate(&other_key).await.unwrap();
        let s = person(&core, &admin, "obama.jpg", &[Purpose::Verification]).await;
        // Another person with both consents, to move the template to.
        let other = core.create_subject(&admin).await.unwrap();
        for p in [Purpose::Verification, Purpose::Access] {
            core.grant_consent(&admin, &other, p, 30).await.unwrap();
        }
        core.grant_consent(&admin, &s, Purpose::Access, 30)
            .await
            .unwrap();
        let row = sqlx::query("SELECT id, model, last_used_at, expires_at FROM templates")
            .fetch_one(db.pool())
            .await
            .unwrap();
        let (id, model): (String, String) = (row.get("id"), row.get("model"));
        let (used, expires): (i64, i64) = (row.get("last_used_at"), row.get("expires_at"));
        // The only template in this database.
        let set = |assignment: String| {
            let db = db.clone();
            async move {
                sqlx::query(&format!("UPDATE templates SET {assignment}"))
                    .execute(db.pool())
                    .await
                    .unwrap();
            }
        };
        let verifies = |who: String| {
            let (core, admin) = (&core, &admin);
            async move {
                core.verify(admin, &who, photo("obama2.jpg"))
                    .await
                    .unwrap()
                    .allow
            }
        };
        assert!(
            verifies(s.clone()).await,
            "control: the untouched template matches"
        );
        let other_model = format!("{model}-other");
        let edits: [(&str, String, String); 7] = [
            (
                "moved into the 1:N gallery",
                "purpose = 'access'".into(),
                "purpose = 'verification'".into(),
            ),
            (
                "given another model's name",
                format!("model = '{other_model}'"),
                format!("model = '{model}'"),
            ),
            (
                "retention extended",
                format!("expires_at = {}", expires + 365 * 86_400),
                format!("expires_at = {expires}"),
            ),
            (
                "last use moved back",
                format!("last_used_at = {}", used - 86_400),
                format!("last_used_at = {used}"),
            ),
            (
                "moved to another person",
                format!("subject_id = '{other}'"),
                format!("subject_id = '{s}'"),
            ),
            (
                "moved to another tenant",
                format!("tenant_id = '{elsewhere}'"),
                format!("tenant_id = (SELECT tenant_id FROM subjects WHERE id = '{s}')"),
            ),
            (
                "given another template's id",
                "id = 'forged'".into(),
                format!("id = '{id}'"),
            ),
        ];
        for (what, edit, undo) in edits {
            set(edit).await;
            assert!(!verifies(s.clone()).await, "{what}: verify as the owner");
            assert!(
                !verifies(other.clone()).await,
                "{what}: verify as the other"
            );
            let who = core.identify(&admin, photo("obama2.jpg")).await.unwrap();
            assert!(!who.allow, "{what}: identify {who:?}");
            let who = core
                .identify(&other_admin, photo("obama2.jpg"))
                .await
                .unwrap();
            assert!(!who.allow, "{what}: identify elsewhere {who:?}");
            set(undo).await;
            assert!(
                verifies(s.clone()).await,
                "{what}: put back, it matches again"
            );
        }
        core.close().await;
    }
    scratch.finish().await;
}

/// The key store belongs to one database: another's, an empty one or one missing an epoch the
/// data keys need is refused at start. A rotation made by another process (the CLI beside a
/// live server) is picked up without a restart, and the destroyed epoch leaves its memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_store_is_bound_to_its_database_and_rotates_beside_a_live_server() {
    let scratch = Scratch::new("keys_bind").await;
    let (url, other_url) = (scratch.sqlite_url("a"), scratch.sqlite_url("b"));
    let dir = scratch.key_dir("a");
    let live = Core::new(
        Db::open(&url).await.unwrap(),
        engine(),
        Keyring::open(&dir).unwrap().0,
    )
    .await
    .unwrap();
    let (_, key) = live.bootstrap_tenant("Gate").await.unwrap();
    let admin = live.authenticate(&key).await.unwrap();
    let s = person(&live, &admin, "obama.jpg", &[Purpose::Verification]).await;

    let refused = |url: String, dir: PathBuf| async move {
        let keys = Keyring::open(&dir).unwrap().0;
        match Core::new(Db::open(&url).await.unwrap(), engine(), keys).await {
            Ok(_) => panic!("{url} started with {}", dir.display()),
            Err(e) => e.to_string(),
        }
    };
    let e = refused(other_url.clone(), dir.clone()).await;
    assert!(e.contains("another database"), "{e}");
    let e = refused(url.clone(), scratch.key_dir("empty")).await;
    assert!(e.contains("holds no keys"), "{e}");

    // Another process rotates (as `consentry admin rotate-keys` does).
    let cli = Core::new(
        Db::open(&url).await.unwrap(),
        engine(),
        Keyring::open(&dir).unwrap().0,
    )
    .await
    .unwrap();
    let r = cli.rotate_keys(&|_, _| {}).await.unwrap();
    assert_eq!(r.destroyed, ["epoch-1"]);
    cli.close().await;
    // The live server reads the new epoch from the key store when it first meets it.
    assert!(
        live.verify(&admin, &s, photo("obama2.jpg"))
            .await
            .unwrap()
            .allow
    );
    let t = person(&live, &admin, "biden.jpg", &[Purpose::Verification]).await;
    assert!(
        live.verify(&admin, &t, photo("biden.jpg"))
            .await
            .unwrap()
            .allow
    );
    live.sync_key_store().await.unwrap();
    assert_eq!(live.held_epochs().unwrap(), [2]);

    // A key store that lost an epoch the data keys need: refused, with which one.
    std::fs::remove_file(dir.join("kek-000002.key")).unwrap();
    live.close().await;
    let e = refused(url, dir).await;
    assert!(e.contains("lacks key-encryption key epoch-2"), "{e}");
    scratch.finish().await;
}

/// A database written before envelope version 2: its templates are re-sealed at start, under a
/// new data key, and match as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_1_envelopes_are_upgraded_at_start() {
    let scratch = Scratch::new("keys_upgrade").await;
    let url = scratch.sqlite_url("old");
    let dir = scratch.key_dir("old");
    let open = || async {
        Core::new(
            Db::open(&url).await.unwrap(),
            engine(),
            Keyring::open(&dir).unwrap().0,
        )
        .await
        .unwrap()
    };
    let core = open().await;
    let (tenant, key) = core.bootstrap_tenant("Old").await.unwrap();
    let admin = core.authenticate(&key).await.unwrap();
    let s = person(&core, &admin, "obama.jpg", &[Purpose::Verification]).await;
    core.close().await;
    // Rewrite the template as the version-1 code sealed it.
    let db = Db::open(&url).await.unwrap();
    let copy = read_copy(&url).await;
    let ctx = KeyContext {
        tenant: &tenant,
        subject: &s,
    };
    let data_key = candidate_keks(&secrets_in(&dir), &tenant)
        .iter()
        .find_map(|k| k.unwrap(&WrappedKey(copy.keys[&s].1.clone()), ctx).ok())
        .unwrap();
    let t = &copy.templates[0];
    let ctx = TemplateContext {
        tenant: &tenant,
        subject: &s,
        template: &t["id"],
        purpose: &t["purpose"],
        model: &t["model"],
        last_used_at: t["last_used_at"].parse().unwrap(),
        expires_at: t["expires_at"].parse().unwrap(),
    };
    let plain = data_key.open_template(ctx, &copy.sealed[0]).unwrap();
    let v1 = data_key.seal_template_v1(ctx, &plain).unwrap();
    sqlx::query("UPDATE templates SET sealed = $1, envelope = 1")
        .bind(v1)
        .execute(db.pool())
        .await
        .unwrap();
    db.pool().close().await;

    let core = open().await;
    let admin = core.authenticate(&key).await.unwrap();
    assert!(
        core.verify(&admin, &s, photo("obama2.jpg"))
            .await
            .unwrap()
            .allow
    );
    let upgraded = read_copy(&url).await;
    assert_eq!(upgraded.sealed[0][0], consentry_vault::TEMPLATE_VERSION);
    assert_ne!(upgraded.keys[&s].1, copy.keys[&s].1, "re-keyed on the way");
    core.close().await;
    scratch.finish().await;
}

/// Re-keying a tenant's transform moves every template of the tenant (and no other tenant's)
/// into a new secret rotation, unrelated to the old one, while every match still holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rekeying_a_tenants_transform_moves_its_templates_and_keeps_its_matches() {
    let scratch = Scratch::new("keys_transform").await;
    for url in scratch.backends() {
        let (core, db, dir) = core_on(&scratch, &url).await;
        let (tenant, key) = core.bootstrap_tenant("Leaky").await.unwrap();
        let admin = core.authenticate(&key).await.unwrap();
        let both = [Purpose::Verification, Purpose::Access];
        let s = person(&core, &admin, "obama.jpg", &both).await;
        let (other_tenant, other_key) = core.bootstrap_tenant("Bystander").await.unwrap();
        let other_admin = core.authenticate(&other_key).await.unwrap();
        let o = person(&core, &other_admin, "obama.jpg", &both).await;
        assert!(
            core.identify(&admin, photo("obama2.jpg"))
                .await
                .unwrap()
                .allow
        );

        let before = backup(&db, &url, &scratch, &scratch.schema, "tr-before").await;
        let (generation, moved) = core.rekey_transform(&tenant).await.unwrap();
        assert_eq!((generation, moved), (1, 2));
        let after = backup(&db, &url, &scratch, &scratch.schema, "tr-after").await;
        let held = secrets_in(&dir);
        let old: HashMap<_, _> = open_subject(&before, &before, &held, &tenant, &s)
            .unwrap()
            .into_iter()
            .collect();
        let new = open_subject(&after, &after, &held, &tenant, &s).unwrap();
        assert_eq!(new.len(), 2);
        for (id, v) in &new {
            let cos: f32 = v.iter().zip(&old[id]).map(|(a, b)| a * b).sum();
            assert!(
                cos.abs() < 0.5,
                "template {id}: cosine {cos} to its old transform"
            );
        }
        // The other tenant's templates did not move.
        let o_before = open_subject(&before, &before, &held, &other_tenant, &o).unwrap();
        let o_after = open_subject(&after, &after, &held, &other_tenant, &o).unwrap();
        assert_eq!(o_before, o_after);
        // Matches hold: 1:1, 1:N (the gallery reloads), and a face enrolled afterwards.
        assert!(
            core.verify(&admin, &s, photo("obama2.jpg"))
                .await
                .unwrap()
                .allow
        );
        let who = core.identify(&admin, photo("obama2.jpg")).await.unwrap();
        assert_eq!(who.subject.as_deref(), Some(s.as_str()));
        let t = person(&core, &admin, "biden.jpg", &[Purpose::Verification]).await;
        assert!(
            core.verify(&admin, &t, photo("biden.jpg"))
                .await
                .unwrap()
                .allow
        );
        assert!(
            !core
                .verify(&admin, &t, photo("obama2.jpg"))
                .await
                .unwrap()
                .allow
        );
        assert!(
            core.verify(&other_admin, &o, photo("obama2.jpg"))
                .await
                .unwrap()
                .allow
        );
        core.close().await;
    }
    scratch.finish().await;
}
