//! The web UI under `/ui`: a camera kiosk, the person's own portal and the admin and audit
//! console, served by the server itself (every asset embedded, nothing loaded from
//! elsewhere, works offline).
//!
//! Stack: server-rendered HTML with one small script for the kiosk's camera (plain JavaScript,
//! no build step, so there is nothing to reproduce and nothing to download). The portal and
//! the console work without script: they are forms.
//!
//! Sessions: signing in with a key (kiosk, console) or with the person's token (portal) makes
//! a server-side session; the browser holds only its random id, in an `HttpOnly`,
//! `SameSite=Strict` cookie (`Secure` behind TLS). The key stays on the server and every
//! request goes through the same authentication as a `Bearer` call, so a revoked or suspended
//! key stops its sessions at once. Every form carries the session's CSRF token (the sign-in
//! form a token of its own, double-submitted), and the kiosk's script sends it as
//! `X-CSRF-Token` when it calls the JSON API with the session cookie. Pages carry a strict
//! Content-Security-Policy: no inline script, no other origin.

pub(crate) mod i18n;
mod pages;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::AppState;
use i18n::Lang;

/// The session cookie.
pub(crate) const SESSION_COOKIE: &str = "consentry_ui";
/// The sign-in form's own CSRF cookie.
const LOGIN_COOKIE: &str = "consentry_login";
/// The header the kiosk's script sends the session's CSRF token in.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// How long a session signed in with a key lives (a kiosk's working day).
const KEY_SESSION: Duration = Duration::from_secs(12 * 3600);
/// How long the person's own session lives.
const PERSON_SESSION: Duration = Duration::from_secs(30 * 60);
/// The most sessions held; the oldest go first when full.
const MAX_SESSIONS: usize = 10_000;

/// The page's Content-Security-Policy.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Who a session is.
pub(crate) enum Who {
    /// An API key (kiosk, console); kept only here, zeroized when the session ends.
    Key(Zeroizing<String>),
    /// The person's own token (portal).
    Person(Zeroizing<String>),
}

pub(crate) struct Session {
    pub who: Who,
    pub csrf: String,
    expires: Instant,
}

/// Server-side sessions, by the SHA-256 of the cookie's value.
#[derive(Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
}

fn random_hex() -> String {
    consentry_vault::key_to_hex(&consentry_vault::random_key()).to_string()
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// Constant-time equality of two secrets.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Sessions {
    /// A new session; returns its cookie value.
    fn open(&self, who: Who) -> (String, Duration) {
        let life = match who {
            Who::Key(_) => KEY_SESSION,
            Who::Person(_) => PERSON_SESSION,
        };
        let id = random_hex();
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
        map.insert(
            digest(&id),
            Session {
                who,
                csrf: random_hex(),
                expires: now + life,
            },
        );
        (id, life)
    }

    /// The session's key or token and CSRF token, if the session is live.
    pub(crate) fn get(&self, id: &str) -> Option<(Who, String)> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let s = map
            .get(&digest(id))
            .filter(|s| s.expires > Instant::now())?;
        let who = match &s.who {
            Who::Key(k) => Who::Key(k.clone()),
            Who::Person(t) => Who::Person(t.clone()),
        };
        Some((who, s.csrf.clone()))
    }

    fn close(&self, id: &str) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&digest(id));
    }
}

/// A cookie's value from the request.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the request came over TLS (directly or through a proxy that says so).
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn set_cookie(headers: &HeaderMap, name: &str, value: &str, path: &str, max_age: u64) -> String {
    let secure = if over_tls(headers) { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

/// A request from a page on another site (a cross-site form post) is refused whatever its
/// cookies: `Sec-Fetch-Site` must say `same-origin` where the browser sends it, and `Origin`
/// must name this server. Under the pages' `Referrer-Policy: no-referrer` a browser sends
/// `Origin: null` with its own form posts, so `null` passes only beside
/// `Sec-Fetch-Site: same-origin`.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if site.is_some_and(|s| s != "same-origin") {
        return false;
    }
    match (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) {
        (Some("null"), _) => site.is_some(),
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest == host),
        // No Origin: a client that is not a browser (the CSRF token still has to match).
        (None, _) => true,
        (Some(_), None) => false,
    }
}

/// The area a session was opened for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Area {
    Kiosk,
    Me,
    Admin,
}

impl Area {
    fn parse(s: &str) -> Option<Area> {
        match s {
            "kiosk" => Some(Area::Kiosk),
            "me" => Some(Area::Me),
            "admin" => Some(Area::Admin),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Area::Kiosk => "kiosk",
            Area::Me => "me",
            Area::Admin => "admin",
        }
    }
}

/// What a page handler knows of the request: the language, the session when signed in, the
/// path, the headers and the client's network (for the abuse rules, as the API has it).
pub(crate) struct Ctx {
    pub lang: Lang,
    pub session: Option<(Who, String)>,
    /// The path and query (for the language switch to come back to).
    pub path: String,
    pub headers: HeaderMap,
    pub network: Option<String>,
}

impl axum::extract::FromRequestParts<AppState> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let headers = parts.headers.clone();
        let lang = Lang::negotiate(
            cookie(&headers, "lang"),
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        );
        let session = cookie(&headers, SESSION_COOKIE).and_then(|id| state.ui.get(id));
        let network = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| consentry_core::network_of(c.0.ip()));
        Ok(Ctx {
            lang,
            session,
            path: parts
                .uri
                .path_and_query()
                .map_or("/ui/", |p| p.as_str())
                .to_string(),
            headers,
            network,
        })
    }
}

impl Ctx {
    pub(crate) fn csrf(&self) -> &str {
        self.session.as_ref().map_or("", |(_, c)| c.as_str())
    }
}

/// Adds the page headers: CSP, no sniffing, no referrer, no framing, no caching.
pub(crate) fn page(status: StatusCode, html: String) -> Response {
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(h);
    r
}

fn secure_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(self), microphone=(self), geolocation=()"),
    );
}

pub(crate) fn redirect(to: &str, cookies: &[String]) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    secure_headers(r.headers_mut());
    r
}

/// A file only this session may see (the person's export, their pass's QR code): the page
/// headers (CSP, nosniff, no-store, …) with its own content type.
pub(crate) fn private_file(kind: &'static str, body: String) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    secure_headers(h);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    r
}

/// The embedded assets.
const CSS: &str = include_str!("../../ui/app.css");
const KIOSK_JS: &str = include_str!("../../ui/kiosk.js");
const UI_JS: &str = include_str!("../../ui/ui.js");

fn asset(kind: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

/// The `/ui` routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { redirect("/ui/", &[]) }))
        .route("/ui/", get(home))
        .route(
            "/ui/assets/app.css",
            get(|| async { asset("text/css; charset=utf-8", CSS) }),
        )
        .route(
            "/ui/assets/kiosk.js",
            get(|| async { asset("text/javascript; charset=utf-8", KIOSK_JS) }),
        )
        .route(
            "/ui/assets/ui.js",
            get(|| async { asset("text/javascript; charset=utf-8", UI_JS) }),
        )
        .route("/ui/lang", get(set_lang))
        .route("/ui/login/{area}", get(login_form).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/kiosk", get(pages::kiosk))
        .route("/ui/me", get(pages::me))
        .route("/ui/me/pass", get(pages::me_pass))
        .route("/ui/me/export", post(pages::me_export))
        .route("/ui/me/withdraw", post(pages::me_withdraw))
        .route("/ui/me/delete", post(pages::me_delete))
        .route("/ui/admin", get(pages::admin))
        .route("/ui/admin/subjects", get(pages::admin_subjects))
        .route("/ui/admin/subject", get(pages::admin_subject))
        .route("/ui/admin/subject/token", post(pages::admin_subject_token))
        .route(
            "/ui/admin/subject/delete",
            post(pages::admin_subject_delete),
        )
        .route(
            "/ui/admin/keys",
            get(pages::admin_keys).post(pages::admin_key_create),
        )
        .route("/ui/admin/keys/revoke", post(pages::admin_key_revoke))
        .route("/ui/admin/keys/reinstate", post(pages::admin_key_reinstate))
        .route("/ui/admin/audit", get(pages::admin_audit))
}

async fn home(ctx: Ctx) -> Response {
    page(StatusCode::OK, pages::home(&ctx))
}

#[derive(serde::Deserialize)]
struct LangQuery {
    set: String,
    back: Option<String>,
}

/// The language switch: a cookie, then back to the page (a path under `/ui` only).
async fn set_lang(
    headers: HeaderMap,
    crate::extract::Query(q): crate::extract::Query<LangQuery>,
) -> Response {
    let lang = Lang::parse(&q.set).unwrap_or(Lang::En);
    let back = q
        .back
        .filter(|b| b.starts_with("/ui") && !b.contains("//") && !b.contains('\\'))
        .unwrap_or_else(|| "/ui/".into());
    let c = format!(
        "lang={}; Path=/; SameSite=Strict; Max-Age=31536000{}",
        lang.code(),
        if over_tls(&headers) { "; Secure" } else { "" }
    );
    redirect(&back, &[c])
}

async fn login_form(
    ctx: Ctx,
    crate::extract::Path(area): crate::extract::Path<String>,
) -> Response {
    let Some(area) = Area::parse(&area) else {
        return not_found(&ctx);
    };
    let headers = &ctx.headers;
    let token = random_hex();
    let mut r = page(StatusCode::OK, pages::login(&ctx, area, &token, None));
    let c = set_cookie(headers, LOGIN_COOKIE, &token, "/ui/login", 600);
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

#[derive(serde::Deserialize)]
pub(crate) struct LoginForm {
    secret: String,
    csrf: String,
}

/// Parses an urlencoded form body.
pub(crate) fn form<T: serde::de::DeserializeOwned>(body: &[u8]) -> Option<T> {
    serde_urlencoded::from_bytes(body).ok()
}

async fn login(
    State(s): State<AppState>,
    ctx: Ctx,
    crate::extract::Path(area): crate::extract::Path<String>,
    crate::extract::Body(body): crate::extract::Body,
) -> Response {
    let headers = ctx.headers.clone();
    let Some(area) = Area::parse(&area) else {
        return not_found(&ctx);
    };
    let Some(f) = form::<LoginForm>(&body) else {
        return bad_form(&ctx);
    };
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if !same_origin(&headers) || expected.is_empty() || !same_secret(expected, &f.csrf) {
        return bad_form(&ctx);
    }
    let secret = Zeroizing::new(f.secret.trim().to_string());
    let refused = |code: consentry_types::ErrorCode| {
        let token = random_hex();
        let mut r = page(
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::UNAUTHORIZED),
            pages::login(&ctx, area, &token, Some(code)),
        );
        let c = set_cookie(&headers, LOGIN_COOKIE, &token, "/ui/login", 600);
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
        r
    };
    let who = match area {
        Area::Me => match s.core.subject_sign_in(&secret).await {
            Ok(_) => Who::Person(secret),
            Err(e) => return refused(consentry_types::HasErrorCode::code(&e)),
        },
        Area::Kiosk | Area::Admin => match s.core.authenticate(&secret).await {
            Ok(p) => {
                use consentry_core::Role;
                let fits = match area {
                    Area::Kiosk => matches!(p.role, Role::Device | Role::Operator | Role::Admin),
                    _ => matches!(p.role, Role::Admin | Role::Auditor),
                };
                if !fits {
                    return refused(consentry_types::ErrorCode::Forbidden);
                }
                Who::Key(secret)
            }
            Err(e) => return refused(consentry_types::HasErrorCode::code(&e)),
        },
    };
    // A new session id at every sign-in (no fixation); an earlier session of this browser ends.
    if let Some(old) = cookie(&headers, SESSION_COOKIE) {
        s.ui.close(old);
    }
    let (id, life) = s.ui.open(who);
    let c = set_cookie(&headers, SESSION_COOKIE, &id, "/", life.as_secs());
    let clear = set_cookie(&headers, LOGIN_COOKIE, "", "/ui/login", 0);
    redirect(&format!("/ui/{}", area.as_str()), &[c, clear])
}

#[derive(serde::Deserialize)]
pub(crate) struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(s): State<AppState>,
    ctx: Ctx,
    crate::extract::Body(body): crate::extract::Body,
) -> Response {
    let headers = &ctx.headers;
    let Some(f) = form::<CsrfForm>(&body) else {
        return bad_form(&ctx);
    };
    if !checked(&ctx, &f.csrf) {
        return bad_form(&ctx);
    }
    if let Some(id) = cookie(headers, SESSION_COOKIE) {
        s.ui.close(id);
    }
    redirect("/ui/", &[set_cookie(headers, SESSION_COOKIE, "", "/", 0)])
}

/// A form post's CSRF check: a live session, its token, and a same-origin request.
pub(crate) fn checked(ctx: &Ctx, csrf: &str) -> bool {
    ctx.session.is_some() && same_origin(&ctx.headers) && same_secret(ctx.csrf(), csrf)
}

/// Whether a JSON API call with the session cookie carries the session's CSRF token (any
/// method but GET and HEAD) and comes from this server's pages.
pub(crate) fn api_csrf_ok(method: &Method, headers: &HeaderMap, csrf: &str) -> bool {
    if matches!(*method, Method::GET | Method::HEAD) {
        return true;
    }
    let sent = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    same_origin(headers) && same_secret(csrf, sent)
}

pub(crate) fn bad_form(ctx: &Ctx) -> Response {
    page(
        StatusCode::FORBIDDEN,
        pages::message(ctx, "error.title", ctx.lang.t("error.form_expired")),
    )
}

pub(crate) fn not_found(ctx: &Ctx) -> Response {
    page(
        StatusCode::NOT_FOUND,
        pages::message(ctx, "error.title", ctx.lang.t("error.not_found")),
    )
}

/// To the sign-in page of `area`.
pub(crate) fn to_login(area: Area) -> Response {
    redirect(&format!("/ui/login/{}", area.as_str()), &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_this_servers_own_pages_may_post() {
        let host = ("host", "gate.example:8080");
        // The browser's own form post under no-referrer, and with an Origin.
        assert!(same_origin(&headers(&[
            host,
            ("origin", "null"),
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(same_origin(&headers(&[
            host,
            ("origin", "http://gate.example:8080"),
            ("sec-fetch-site", "same-origin")
        ])));
        // A client without Fetch metadata that names this server, or no Origin at all.
        assert!(same_origin(&headers(&[
            host,
            ("origin", "https://gate.example:8080")
        ])));
        assert!(same_origin(&headers(&[host])));
        // Another site, however it says so.
        for (origin, site) in [
            ("https://evil.example", "cross-site"),
            ("https://evil.example", "same-site"),
            ("null", "cross-site"),
            ("http://gate.example:8080", "none"),
            ("http://gate.example:8080", "cross-site"),
        ] {
            let mut h = headers(&[host, ("sec-fetch-site", "same-origin")]);
            h.insert("origin", HeaderValue::from_str(origin).unwrap());
            h.insert("sec-fetch-site", HeaderValue::from_str(site).unwrap());
            assert!(!same_origin(&h), "{origin} {site}");
        }
        assert!(!same_origin(&headers(&[
            host,
            ("origin", "https://evil.example")
        ])));
        assert!(!same_origin(&headers(&[host, ("origin", "null")])));
        assert!(!same_origin(&headers(&[("origin", "https://x")])));
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let h = headers(&[("cookie", "lang=ru; consentry_ui=abc; xconsentry_ui=evil")]);
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "lang"), Some("ru"));
        assert_eq!(cookie(&h, "consentry"), None);
    }
}
