//! `consentry serve` and `consentry admin`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use consentry_core::{Core, Keyring};
use consentry_db::Db;
use consentry_types::{ErrorCode, HasErrorCode};
use serde_json::json;

use crate::{EngineArgs, Failure};

/// Where the server's state lives.
#[derive(Args, Clone)]
pub struct StoreArgs {
    /// Database URL: sqlite://PATH (created on first start) or postgres://…
    #[arg(long, env = "CONSENTRY_DB", default_value = "sqlite://consentry.db")]
    db: String,
    /// The root key file (64 hex digits). Default: beside a SQLite database as `<db>.key`,
    /// else `consentry.key`. CONSENTRY_ROOT_KEY (hex) takes precedence over any file.
    #[arg(long, env = "CONSENTRY_KEY_FILE")]
    key_file: Option<PathBuf>,
}

/// `consentry serve`.
#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Create (or reuse) the tenant "demo" and print a fresh admin key for it.
    #[arg(long)]
    demo: bool,
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

fn fail(e: impl HasErrorCode + std::fmt::Display) -> Failure {
    Failure {
        code: e.code(),
        message: e.to_string(),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure {
            code: ErrorCode::Internal,
            message: format!("runtime: {e}"),
        })
}

async fn open(store: &StoreArgs, engine: &EngineArgs) -> Result<Core, Failure> {
    let db = Db::open(&store.db).await.map_err(fail)?;
    let keys = match std::env::var("CONSENTRY_ROOT_KEY") {
        Ok(hex) => Keyring::from_hex(&hex).map_err(fail)?,
        Err(_) => {
            let path = store.key_file.clone().unwrap_or_else(|| {
                match store.db.strip_prefix("sqlite://") {
                    Some(p) => PathBuf::from(format!("{}.key", p.split('?').next().unwrap_or(p))),
                    None => PathBuf::from("consentry.key"),
                }
            });
            let (keys, created) = Keyring::load_or_create(&path).map_err(fail)?;
            if created {
                eprintln!(
                    "consentry: WARNING: created a new root key in {} (mode 0600). Back it up \
                     and keep it away from database backups: without it no template can be opened.",
                    path.display()
                );
            }
            keys
        }
    };
    let engine = engine.load_for_server().map_err(Failure::from)?;
    Core::new(db, Arc::new(engine), keys).map_err(fail)
}

pub fn serve(engine: &EngineArgs, a: &ServeArgs) -> Result<(), Failure> {
    tracing_subscriber::fmt()
        .with_max_level(a.log)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    runtime()?.block_on(async {
        let core = Arc::new(open(&a.store, engine).await?);
        let listener = tokio::net::TcpListener::bind(&a.listen)
            .await
            .map_err(|e| Failure { code: ErrorCode::InvalidRequest, message: format!("listen {}: {e}", a.listen) })?;
        let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| a.listen.clone());
        if a.demo {
            let (tenant, key) = core.admin_key_for("demo").await.map_err(fail)?;
            println!("consentry: demo tenant {tenant}; admin key (shown once):\n  {key}");
            println!("Try:");
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
        println!("consentry: listening on http://{addr} (database {})", a.store.db.split('?').next().unwrap_or(""));
        consentry_server::serve(core, listener)
            .await
            .map_err(|e| Failure { code: ErrorCode::Internal, message: format!("server: {e}") })
    })
}

pub fn admin(engine: &EngineArgs, cmd: &AdminCommand) -> Result<(), Failure> {
    let AdminCommand::Bootstrap(a) = cmd;
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
