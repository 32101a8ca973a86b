//! `consentry serve` and `consentry admin`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use consentry_core::{Core, Keyring};
use consentry_db::Db;
use consentry_types::{ErrorCode, HasErrorCode};
use serde_json::json;
use zeroize::Zeroizing;

use crate::{EngineArgs, Failure};

/// Where the server's state lives.
#[derive(Args, Clone)]
pub struct StoreArgs {
    /// Database URL: sqlite://PATH (created on first start) or postgres://…
    #[arg(long, env = "CONSENTRY_DB", default_value = "sqlite://consentry.db")]
    pub(crate) db: String,
    /// The key store: a directory (mode 0700) with the root key and the key-encryption-key
    /// epochs, created on first start. It must not be inside a SQLite database's folder, so
    /// that one backup never holds both. Default:
    /// $XDG_DATA_HOME/consentry/keys/<database name>-<hash of its path or URL> (with
    /// ~/.local/share for an unset XDG_DATA_HOME). CONSENTRY_ROOT_KEY (hex) takes precedence
    /// over the root key file.
    #[arg(long, env = "CONSENTRY_KEY_DIR")]
    key_dir: Option<PathBuf>,
    /// Keep the key-encryption-key epochs in a PKCS#11 token (an HSM) instead of the key
    /// directory: the module's path (e.g. /usr/lib/softhsm/libsofthsm2.so). The token's user
    /// PIN comes from CONSENTRY_PKCS11_PIN. The root key stays in the key directory.
    #[arg(long, env = "CONSENTRY_PKCS11_MODULE", requires = "pkcs11_token")]
    pkcs11_module: Option<PathBuf>,
    /// The label of the token that holds the epochs.
    #[arg(long, env = "CONSENTRY_PKCS11_TOKEN", requires = "pkcs11_module")]
    pkcs11_token: Option<String>,
}

impl StoreArgs {
    /// The SQLite database's file, if the database is SQLite.
    fn sqlite_path(&self) -> Option<PathBuf> {
        self.db
            .strip_prefix("sqlite://")
            .or_else(|| self.db.strip_prefix("sqlite:"))
            .map(|p| PathBuf::from(p.split('?').next().unwrap_or(p)))
    }

    /// The key directory: given, or the default for this database; refused inside a SQLite
    /// database's folder.
    pub(crate) fn key_dir(&self) -> Result<PathBuf, Failure> {
        let bad = |message: String| Failure {
            code: ErrorCode::KeyUnavailable,
            message,
        };
        let dir = match &self.key_dir {
            Some(d) => absolute(d),
            None => {
                let base = std::env::var_os("XDG_DATA_HOME")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
                    .or_else(|| {
                        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share"))
                    })
                    .ok_or_else(|| {
                        bad("neither XDG_DATA_HOME nor HOME is set: give --key-dir".into())
                    })?;
                let (name, identity) = match self.sqlite_path() {
                    Some(p) => {
                        let p = absolute(&p);
                        let name = p.file_stem().map(|s| s.to_string_lossy().into_owned());
                        (
                            name.unwrap_or_else(|| "consentry".into()),
                            p.display().to_string(),
                        )
                    }
                    None => ("postgres".to_string(), redact_url(&self.db)),
                };
                let digest = <sha2::Sha256 as sha2::Digest>::digest(identity.as_bytes());
                let tag: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
                base.join("consentry/keys").join(format!("{name}-{tag}"))
            }
        };
        if let Some(db) = self.sqlite_path() {
            if let Some(folder) = absolute(&db).parent() {
                if dir.starts_with(folder) {
                    return Err(bad(format!(
                        "the key directory {} is inside the database's folder {}: one backup of \
                         the folder would hold the database and the keys that open it. Give a \
                         --key-dir elsewhere",
                        dir.display(),
                        folder.display()
                    )));
                }
            }
        }
        Ok(dir)
    }
}

/// An absolute path with its existing part resolved (symbolic links, `..`), for comparing.
fn absolute(p: &std::path::Path) -> PathBuf {
    let p = std::env::current_dir().map_or_else(|_| p.to_path_buf(), |cwd| cwd.join(p));
    let mut existing = p.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return p.clone(),
        }
    }
    let mut out = existing
        .canonicalize()
        .unwrap_or_else(|_| existing.to_path_buf());
    for name in rest.iter().rev() {
        out.push(name);
    }
    out
}

/// `consentry serve`.
#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Create (or reuse) the tenant "demo" and print an admin key for it: minted on the first
    /// start and kept in `<db>.demo-key` (mode 0600), so later starts print the same key
    /// instead of minting another.
    #[arg(long)]
    demo: bool,
    /// Per-key rate limit of a role, ROLE=PER_SECOND/BURST (repeatable). Defaults: admin
    /// 50/200, operator 20/100, device 50/200, auditor 200/2000.
    #[arg(long = "rate-limit", value_name = "ROLE=PER_SECOND/BURST")]
    rate_limits: Vec<String>,
    /// Where suspension alerts are POSTed (http://host:port/path), signed with
    /// CONSENTRY_ALERT_SECRET (X-Consentry-Signature). Without it they are logged.
    #[arg(long, env = "CONSENTRY_ALERT_WEBHOOK")]
    alert_webhook: Option<String>,
    /// Hours between rotations of the key-encryption key (0: only `consentry admin
    /// rotate-keys` rotates). A backup taken before a subject's deletion stops opening that
    /// subject's templates at the next rotation.
    #[arg(long, default_value_t = 24)]
    kek_rotation_hours: u64,
    /// The UTC hours in which operator keys may identify, START-END (e.g. 7-19); an operator
    /// identifying outside them is suspended. Default: any time.
    #[arg(long, value_name = "START-END")]
    operator_hours: Option<String>,
    /// Suspend operator and device keys used from a network (IPv4 /24, IPv6 /48) they were not
    /// used from before.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    new_network_rule: bool,
    /// Actions one key may make in a minute before the burst rule suspends it, at least (or
    /// ten times its average per minute over the last day, when that is more). Load tests
    /// raise it together with --rate-limit.
    #[arg(long, default_value_t = consentry_core::AbuseRules::default().burst_floor)]
    burst_floor: i64,
    /// Distinct subjects one admin or operator key may read in an hour before it is suspended,
    /// at least (or four times its usual hourly reads, when that is more). Contract and load
    /// tests, which read thousands of made-up subjects, raise it.
    #[arg(long, default_value_t = consentry_core::AbuseRules::default().distinct_reads_floor)]
    distinct_reads_floor: i64,
    /// Face and voice jobs that may wait for a free core at once (default: 4 per core); one
    /// more is refused with `overloaded` (503, `Retry-After`) instead of queueing without
    /// bound.
    #[arg(long, value_name = "JOBS")]
    engine_queue: Option<usize>,
    /// Longest a face or voice job waits for a free core before it is refused with
    /// `overloaded`.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    engine_wait_ms: u64,
    /// The passive presentation-attack model of the liveness check: `faceplugin` (shipped) or
    /// `minifasnet:DIR` (the operator's MiniFASNet pair; docs/liveness.md).
    #[arg(long, default_value = "faceplugin")]
    pad_model: String,
    /// The actions a liveness challenge may ask for (comma-separated: blink, left, right, up);
    /// fewer for a site whose people cannot all turn their heads.
    #[arg(long, default_value = "blink,left,right,up")]
    liveness_actions: String,
    /// Days a venue check-in (pseudonym, venue, time) is kept before the sweep deletes it.
    #[arg(long, default_value_t = consentry_core::CHECKIN_RETENTION_DAYS)]
    checkin_retention_days: i64,
    /// Log level on stderr: off, error, warn, info (one line per request: request id, route
    /// template, status, duration; never ids, keys or images) or debug.
    #[arg(long, env = "CONSENTRY_LOG", default_value = "info")]
    log: tracing_subscriber::filter::LevelFilter,
}

/// `consentry admin`.
#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create a tenant and print its first admin key (shown once, stored only as a hash).
    Bootstrap(BootstrapArgs),
    /// Rotate the key-encryption key: a new epoch, every data key re-wrapped under it, the old
    /// epochs destroyed. Runs beside a live server (no downtime); from then on no copy of the
    /// database made before opens any template.
    RotateKeys(RotateArgs),
    /// Re-key a tenant's template transform: every template of the tenant moved to a new
    /// secret rotation, in one transaction, every node's gallery reloaded. Run it when a
    /// tenant's opened templates may have leaked with some of the photos they came from.
    RekeyTransform(RekeyArgs),
}

/// `consentry admin rekey-transform`.
#[derive(Args)]
pub struct RekeyArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The tenant's name.
    #[arg(long)]
    tenant: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `consentry admin rotate-keys`.
#[derive(Args)]
pub struct RotateArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `consentry admin bootstrap`.
#[derive(Args)]
pub struct BootstrapArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The tenant's name.
    #[arg(long)]
    tenant: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub(crate) fn fail(e: impl HasErrorCode + std::fmt::Display) -> Failure {
    Failure {
        code: e.code(),
        message: e.to_string(),
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure {
            code: ErrorCode::Internal,
            message: format!("runtime: {e}"),
        })
}

pub(crate) async fn open(store: &StoreArgs, engine: &EngineArgs) -> Result<Core, Failure> {
    let db = Db::open(&store.db).await.map_err(fail)?;
    // The variable's value is the root key: our copy is wiped after use (the process's
    // environment block keeps its own until exit; prefer the key file, mode 0600).
    let dir = store.key_dir()?;
    let keys = match (
        std::env::var("CONSENTRY_ROOT_KEY").map(Zeroizing::new),
        &store.pkcs11_module,
        &store.pkcs11_token,
    ) {
        (_, Some(module), Some(token)) => {
            let pin = std::env::var("CONSENTRY_PKCS11_PIN")
                .map(Zeroizing::new)
                .map_err(|_| Failure {
                    code: ErrorCode::KeyUnavailable,
                    message: "--pkcs11-module needs the token's user PIN in CONSENTRY_PKCS11_PIN"
                        .into(),
                })?;
            let config = consentry_core::TokenConfig {
                module: module.clone(),
                token_label: token.clone(),
                pin,
            };
            Keyring::open_with_token(&dir, &config).map_err(fail)?.0
        }
        (Ok(hex), _, _) => Keyring::open_with_root(&dir, &hex).map_err(fail)?,
        (Err(_), _, _) => {
            let (keys, created) = Keyring::open(&dir).map_err(fail)?;
            if created {
                eprintln!(
                    "consentry: created the key store {} (mode 0700). Keep it apart from the \
                     database's backups: without it no template opens, and with an old copy of \
                     it a deleted person's templates would.",
                    dir.display()
                );
            }
            keys
        }
    };
    let engine = engine.load_for_server().map_err(Failure::from)?;
    Core::new(db, Arc::new(engine), keys).await.map_err(fail)
}

pub fn serve(engine: &EngineArgs, a: &ServeArgs) -> Result<(), Failure> {
    tracing_subscriber::fmt()
        .with_max_level(a.log)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let options = server_options(a)?;
    let actions =
        consentry_face::challenge::Action::parse_list(&a.liveness_actions).map_err(|m| {
            Failure {
                code: ErrorCode::InvalidRequest,
                message: format!("--liveness-actions {m}"),
            }
        })?;
    let rules = consentry_core::AbuseRules {
        operator_hours: a.operator_hours.as_deref().map(parse_hours).transpose()?,
        new_network: a.new_network_rule,
        burst_floor: a.burst_floor.max(1),
        distinct_reads_floor: a.distinct_reads_floor.max(1),
        ..consentry_core::AbuseRules::default()
    };
    runtime()?.block_on(async {
        let mut core = open(&a.store, engine).await?;
        core.set_abuse_rules(rules);
        let queue = consentry_core::EngineQueue::default();
        core.set_engine_queue(consentry_core::EngineQueue {
            max_waiting: a.engine_queue.unwrap_or(queue.max_waiting),
            max_wait: std::time::Duration::from_millis(a.engine_wait_ms.max(1)),
        });
        core.set_checkin_retention_days(a.checkin_retention_days)
            .map_err(fail)?;
        core.set_liveness(liveness_models(engine, &a.pad_model)?, actions);
        // The speaker model (set up with the face models): voice enrolment and decisions.
        core.set_voice(
            consentry_voice::VoiceEngine::load(&engine.assets(), 1).map_err(|e| Failure {
                code: e.code(),
                message: e.to_string(),
            })?,
        );
        let core = Arc::new(core);
        let listener = tokio::net::TcpListener::bind(&a.listen)
            .await
            .map_err(|e| Failure { code: ErrorCode::InvalidRequest, message: format!("listen {}: {e}", a.listen) })?;
        let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| a.listen.clone());
        if a.demo {
            let (tenant, key) = demo_key(&core, &a.store).await?;
            println!("consentry: demo tenant {tenant}; admin key (kept in {}):\n  {}", demo_key_path(&a.store).display(), key.as_str());
            let key = key.as_str();
            println!("Open http://{addr}/ui/ and sign in with this key: the kiosk (camera, enrolment, checks) and the console.");
            println!("Or try the API:");
            println!("  curl -s -X POST -H 'Authorization: Bearer {key}' http://{addr}/api/v1/subjects");
            println!(
                "  curl -s -X POST -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \
                 -d '{{\"purpose\":\"verification\",\"retention_days\":365}}' http://{addr}/api/v1/subjects/ID/consents"
            );
            println!(
                "  curl -s -X POST -H 'Authorization: Bearer {key}' -H 'Content-Type: image/jpeg' \
                 --data-binary @photo.jpg 'http://{addr}/api/v1/subjects/ID/faces?purpose=verification'"
            );
            println!(
                "  curl -s -X POST -H 'Authorization: Bearer {key}' -H 'Content-Type: image/jpeg' \
                 --data-binary @other.jpg 'http://{addr}/api/v1/verify?subject=ID'"
            );
        }
        println!(
            "consentry: face templates {}; CPU {}",
            core.template_model(),
            crate::cpu_summary()
        );
        println!("consentry: listening on http://{addr} (database {})", redact_url(&a.store.db));
        consentry_server::serve_with(core, listener, options)
            .await
            .map_err(|e| Failure { code: ErrorCode::Internal, message: format!("server: {e}") })
    })
}

/// The liveness models: the passive profile and the challenge's pose, landmark and eye models.
fn liveness_models(
    engine: &EngineArgs,
    profile: &str,
) -> Result<consentry_core::LivenessModels, Failure> {
    use consentry_face::pad::{ChallengeModels, PadProfile, PassiveDetector};
    let bad = |message: String| Failure {
        code: ErrorCode::InvalidRequest,
        message,
    };
    let profile = PadProfile::parse(profile).map_err(|m| bad(format!("--pad-model {m}")))?;
    let assets = engine.assets();
    Ok(consentry_core::LivenessModels {
        passive: PassiveDetector::load(&assets, &profile, 1).map_err(Failure::from)?,
        challenge: ChallengeModels::load(&assets, 1).map_err(Failure::from)?,
    })
}

fn parse_hours(text: &str) -> Result<(u32, u32), Failure> {
    let bad = || Failure {
        code: ErrorCode::InvalidRequest,
        message: format!("--operator-hours {text:?}: START-END in whole UTC hours 0-24, e.g. 7-19"),
    };
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let (a, b): (u32, u32) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if a > 23 || b > 24 || a == b {
        return Err(bad());
    }
    Ok((a, b))
}

fn server_options(a: &ServeArgs) -> Result<consentry_server::Options, Failure> {
    let bad = |message: String| Failure {
        code: ErrorCode::InvalidRequest,
        message,
    };
    let mut options = consentry_server::Options::default();
    for spec in &a.rate_limits {
        options.rate_limits.set(spec).map_err(bad)?;
    }
    options.kek_rotation = (a.kek_rotation_hours > 0)
        .then(|| std::time::Duration::from_secs(a.kek_rotation_hours.saturating_mul(3600)));
    if let Some(url) = &a.alert_webhook {
        let secret = std::env::var("CONSENTRY_ALERT_SECRET")
            .map(|s| Zeroizing::new(s.into_bytes()))
            .map_err(|_| {
                bad("--alert-webhook needs CONSENTRY_ALERT_SECRET (the signing secret)".into())
            })?;
        if secret.len() < 16 {
            return Err(bad(
                "CONSENTRY_ALERT_SECRET must be at least 16 bytes".into()
            ));
        }
        options.webhook = Some(consentry_server::alerts::Webhook {
            target: consentry_server::client::Target::parse(url)
                .map_err(|e| bad(format!("--alert-webhook: {e}")))?,
            secret,
        });
    }
    Ok(options)
}

/// Where `serve --demo` keeps the demo tenant's admin key: beside a SQLite database, else in
/// the working directory.
fn demo_key_path(store: &StoreArgs) -> PathBuf {
    match store.db.strip_prefix("sqlite://") {
        Some(p) => PathBuf::from(format!("{}.demo-key", p.split('?').next().unwrap_or(p))),
        None => PathBuf::from("consentry.demo-key"),
    }
}

/// The demo tenant's admin key: the saved one while it still authenticates as the demo
/// tenant's admin, else a new one, saved (mode 0600) for the next start.
async fn demo_key(core: &Core, store: &StoreArgs) -> Result<(String, Zeroizing<String>), Failure> {
    let path = demo_key_path(store);
    if let Ok(text) = std::fs::read_to_string(&path).map(Zeroizing::new) {
        let saved = Zeroizing::new(text.trim().to_string());
        if let Ok(p) = core.authenticate(&saved).await {
            let demo = core.tenant_id("demo").await.map_err(fail)?;
            if p.role == consentry_core::Role::Admin && Some(&p.tenant) == demo.as_ref() {
                return Ok((p.tenant, saved));
            }
        }
    }
    let (tenant, key) = core.admin_key_for("demo").await.map_err(fail)?;
    let key = Zeroizing::new(key);
    write_private(&path, key.as_bytes()).map_err(|e| Failure {
        code: ErrorCode::KeyUnavailable,
        message: format!("cannot save the demo key in {}: {e}", path.display()),
    })?;
    Ok((tenant, key))
}

/// Writes a file readable by its owner only (created with mode 0600, replaced whole).
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut f = options.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// A database URL fit to print: the password, if any, replaced by `***`, the query dropped.
pub(crate) fn redact_url(url: &str) -> String {
    let url = url.split('?').next().unwrap_or("");
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    // userinfo ends at the last '@' before the host's path.
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => format!("{scheme}://{userinfo}@{host}{path}"),
        },
        None => url.to_string(),
    }
}

pub fn admin(engine: &EngineArgs, cmd: &AdminCommand) -> Result<(), Failure> {
    let a = match cmd {
        AdminCommand::Bootstrap(a) => a,
        AdminCommand::RotateKeys(r) => return rotate_keys(engine, r),
        AdminCommand::RekeyTransform(r) => return rekey_transform(engine, r),
    };
    runtime()?.block_on(async {
        let core = open(&a.store, engine).await?;
        let (tenant, key) = core.bootstrap_tenant(&a.tenant).await.map_err(fail)?;
        if a.json {
            println!("{}", json!({ "tenant_id": tenant, "admin_key": key }));
        } else {
            println!("tenant {tenant}\nadmin key (shown once): {key}");
        }
        Ok(())
    })
}

fn rekey_transform(engine: &EngineArgs, a: &RekeyArgs) -> Result<(), Failure> {
    runtime()?.block_on(async {
        let core = open(&a.store, engine).await?;
        let tenant = core
            .tenant_id(&a.tenant)
            .await
            .map_err(fail)?
            .ok_or_else(|| Failure {
                code: ErrorCode::NotFound,
                message: format!("no tenant named {:?}", a.tenant),
            })?;
        let (generation, moved) = core.rekey_transform(&tenant).await.map_err(fail)?;
        core.close().await;
        if a.json {
            println!(
                "{}",
                json!({ "tenant_id": tenant, "generation": generation, "templates": moved })
            );
        } else {
            println!("tenant {tenant}: transform generation {generation}; {moved} templates moved");
        }
        Ok(())
    })
}

fn rotate_keys(engine: &EngineArgs, a: &RotateArgs) -> Result<(), Failure> {
    runtime()?.block_on(async {
        let core = open(&a.store, engine).await?;
        let bar = indicatif::ProgressBar::new(0).with_style(
            indicatif::ProgressStyle::with_template(
                "re-wrapping data keys {bar:40} {pos}/{len} {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        if a.json {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let progress = |done: u64, total: u64| {
            bar.set_length(total);
            bar.set_position(done);
        };
        let r = core.rotate_keys(&progress).await.map_err(fail)?;
        bar.finish_and_clear();
        core.close().await;
        if a.json {
            println!("{}", serde_json::to_string(&r).unwrap_or_default());
        } else {
            println!(
                "key-encryption key now {}; {} data keys re-wrapped; destroyed: {}{}",
                r.epoch,
                r.rewrapped,
                if r.destroyed.is_empty() {
                    "none".into()
                } else {
                    r.destroyed.join(", ")
                },
                if r.kept.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; kept (keys still under them, see the log): {}",
                        r.kept.join(", ")
                    )
                }
            );
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn database_urls_print_without_their_password() {
        assert_eq!(
            redact_url("postgres://app:s3cr:et@db.internal:5432/consentry?sslmode=require"),
            "postgres://app:***@db.internal:5432/consentry"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/test"),
            "postgres://postgres@127.0.0.1:5432/test"
        );
        assert_eq!(
            redact_url("sqlite://consentry.db?mode=rwc"),
            "sqlite://consentry.db"
        );
        assert_eq!(redact_url("postgres://a:b@h/x@y"), "postgres://a:***@h/x@y");
    }
}
