//! `/api/v1/audit/…`: checkpoints, entries and proofs of the caller's tenant's log;
//! `/api/v1/subjects/{id}/accesses`; `/api/v1/tenant/public-keys`.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use consentry_audit::hash_to_base64;
use consentry_types::ErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::extract::{Auth, Path, Query};
use crate::{ApiError, AppState, ErrorResponse};

#[utoipa::path(get, path = "/api/v1/tenant/public-keys", tag = "audit", security(("bearer" = [])),
    responses((status = 200, description = "`{\"tenant\", \"audit_origin\", \"audit_key\", \"receipt_key\"}`: the signed-note verifier key of the tenant's audit checkpoints and the hex Ed25519 key of its consent receipts; any role"),
        (status = 401, description = "`unauthorized`", body = ErrorResponse)))]
pub(crate) async fn public_keys(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<serde_json::Value>, ApiError> {
    let audit = s.core.tenant_audit_key(&p)?;
    Ok(Json(json!({
        "tenant": p.tenant,
        "audit_origin": audit.name(),
        "audit_key": audit.to_string(),
        "receipt_key": s.core.receipt_public_key(&p),
    })))
}

#[utoipa::path(get, path = "/api/v1/audit/checkpoint", tag = "audit", security(("bearer" = [])),
    responses((status = 200, description = "the current checkpoint, a C2SP signed note (`text/plain`): origin, tree size, base64 root hash, a blank line, the signature line", content_type = "text/plain"),
        (status = 401, description = "`unauthorized`", body = ErrorResponse), (status = 403, description = "`forbidden` (admins and auditors only)", body = ErrorResponse)))]
pub(crate) async fn checkpoint(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Response, ApiError> {
    let note = s.core.audit_checkpoint(&p).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response())
}

#[derive(Deserialize)]
pub(crate) struct RangeQuery {
    start: u64,
    end: u64,
}

#[derive(Serialize)]
struct EntryOut {
    index: u64,
    data: String,
}

#[utoipa::path(get, path = "/api/v1/audit/entries", tag = "audit", security(("bearer" = [])),
    params(("start" = u64, Query, minimum = 0), ("end" = u64, Query, minimum = 0, description = "exclusive; at most start + 1000")),
    responses((status = 200, description = "`{\"entries\": [{\"index\", \"data\"}]}`: `data` is the entry's exact JSON text; its leaf hash is SHA-256(0x00 ‖ data)"),
        (status = 400, description = "`invalid_request`", body = ErrorResponse), (status = 401, description = "`unauthorized`", body = ErrorResponse), (status = 403, description = "`forbidden`", body = ErrorResponse)))]
pub(crate) async fn entries(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<RangeQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let rows = s.core.audit_entries(&p, q.start, q.end).await?;
    let entries: Vec<EntryOut> = rows
        .into_iter()
        .map(|(index, data)| EntryOut { index, data })
        .collect();
    Ok(Json(json!({ "entries": entries })))
}

#[derive(Deserialize)]
pub(crate) struct InclusionQuery {
    index: u64,
    tree_size: u64,
}

#[utoipa::path(get, path = "/api/v1/audit/proof/inclusion", tag = "audit", security(("bearer" = [])),
    params(("index" = u64, Query, minimum = 0), ("tree_size" = u64, Query, minimum = 1)),
    responses((status = 200, description = "`{\"index\", \"tree_size\", \"hashes\": [base64]}`: the RFC 9162 inclusion proof, from the leaf up"),
        (status = 400, description = "`invalid_request`", body = ErrorResponse), (status = 401, description = "`unauthorized`", body = ErrorResponse), (status = 403, description = "`forbidden`", body = ErrorResponse)))]
pub(crate) async fn inclusion(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<InclusionQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let proof = s.core.audit_inclusion(&p, q.index, q.tree_size).await?;
    let hashes: Vec<String> = proof.iter().map(hash_to_base64).collect();
    Ok(Json(
        json!({ "index": q.index, "tree_size": q.tree_size, "hashes": hashes }),
    ))
}

#[derive(Deserialize)]
pub(crate) struct ConsistencyQuery {
    first: u64,
    second: u64,
}

#[utoipa::path(get, path = "/api/v1/audit/proof/consistency", tag = "audit", security(("bearer" = [])),
    params(("first" = u64, Query, minimum = 0), ("second" = u64, Query, minimum = 0)),
    responses((status = 200, description = "`{\"first\", \"second\", \"hashes\": [base64]}`: the RFC 9162 consistency proof between the two tree sizes"),
        (status = 400, description = "`invalid_request`", body = ErrorResponse), (status = 401, description = "`unauthorized`", body = ErrorResponse), (status = 403, description = "`forbidden`", body = ErrorResponse)))]
pub(crate) async fn consistency(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<ConsistencyQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let proof = s.core.audit_consistency(&p, q.first, q.second).await?;
    let hashes: Vec<String> = proof.iter().map(hash_to_base64).collect();
    Ok(Json(
        json!({ "first": q.first, "second": q.second, "hashes": hashes }),
    ))
}

#[derive(Deserialize)]
pub(crate) struct LimitQuery {
    limit: Option<u64>,
}

#[utoipa::path(get, path = "/api/v1/subjects/{id}/accesses", tag = "audit", security(("bearer" = [])),
    params(("id" = String, Path), ("limit" = Option<u64>, Query, minimum = 1, maximum = 1000)),
    description = "Bearer: a key of an admin, operator or auditor, or the person's own subject token (`st_…`, given at their first enrolment).",
    responses((status = 200, description = "`{\"accesses\": [{\"index\", \"time\", \"actor\": {\"key\", \"role\"}, \"action\", \"purpose\", \"outcome\"}]}`, newest first: who acted on the record, when and for which stated purpose"),
        (status = 401, description = "`unauthorized`", body = ErrorResponse), (status = 403, description = "`forbidden`", body = ErrorResponse), (status = 404, description = "`not_found`", body = ErrorResponse)))]
pub(crate) async fn accesses(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LimitQuery>,
    req: axum::extract::Request,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "limit must be 1 to 1000",
        ));
    }
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    // The person, with their own token; or a key.
    let list = match bearer {
        Some(token) if token.starts_with("st_") => {
            s.core.accesses_by_subject_token(token, &id, limit).await?
        }
        _ => {
            let (mut parts, _) = req.into_parts();
            let Auth(p) = <Auth as axum::extract::FromRequestParts<AppState>>::from_request_parts(
                &mut parts, &s,
            )
            .await?;
            s.core.subject_accesses(&p, &id, limit).await?
        }
    };
    Ok(Json(json!({ "accesses": list })))
}
