//! The pages: HTML built here, every string from the catalogue, every value escaped.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use consentry_core::{Principal, Role};
use consentry_types::{ErrorCode, HasErrorCode};

use super::i18n::Lang;
use super::{checked, form, page, redirect as see_other, to_login, Area, CsrfForm, Ctx, Who};
use crate::extract::{Body, Query};
use crate::AppState;

/// Escapes text for HTML (element content and quoted attributes).
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Unix seconds as `YYYY-MM-DD HH:MM UTC`.
pub(crate) fn when(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (the proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

fn lang_switch(ctx: &Ctx) -> String {
    let mut s = String::new();
    for l in Lang::ALL {
        if l == ctx.lang {
            let _ = write!(s, "<span aria-current=\"true\">{}</span> ", l.name());
        } else {
            let _ = write!(
                s,
                "<a href=\"/ui/lang?set={}&amp;back={}\" lang=\"{}\" hreflang=\"{}\">{}</a> ",
                l.code(),
                esc(&ctx.path),
                l.code(),
                l.code(),
                l.name()
            );
        }
    }
    s
}

/// The page around `body`.
fn layout(ctx: &Ctx, title: &str, nav: &str, body: &str) -> String {
    let t = |k| ctx.lang.t(k);
    let logout = if ctx.session.is_some() {
        format!(
            "<form method=\"post\" action=\"/ui/logout\" class=\"logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">{}</button></form>",
            esc(ctx.csrf()),
            t("nav.sign_out")
        )
    } else {
        String::new()
    };
    format!(
        "<!doctype html>\n<html lang=\"{code}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"csrf-token\" content=\"{csrf}\">\
<title>{title} · Consentry</title><link rel=\"stylesheet\" href=\"/ui/assets/app.css\">\
<script src=\"/ui/assets/ui.js\" defer></script></head>\n<body>\
<a class=\"skip\" href=\"#main\">{skip}</a>\
<header><a class=\"brand\" href=\"/ui/\">Consentry</a><nav aria-label=\"{navlabel}\">{nav}</nav>\
<div class=\"lang\" aria-label=\"{langlabel}\">{switch}</div>{logout}</header>\n\
<main id=\"main\" tabindex=\"-1\"><h1>{title}</h1>\n{body}</main>\n</body></html>\n",
        code = ctx.lang.code(),
        csrf = esc(ctx.csrf()),
        title = esc(title),
        skip = t("nav.skip"),
        navlabel = t("nav.label"),
        langlabel = t("nav.language"),
        switch = lang_switch(ctx),
    )
}

/// A page with one message.
pub(crate) fn message(ctx: &Ctx, title_key: &str, text: &str) -> String {
    let body = format!(
        "<p class=\"message\" role=\"alert\">{}</p><p><a href=\"/ui/\">{}</a></p>",
        esc(text),
        ctx.lang.t("nav.home")
    );
    layout(ctx, ctx.lang.t(title_key), "", &body)
}

/// The catalogue's sentence for an error code (the code itself shown too, for support).
fn error_text(lang: Lang, code: ErrorCode) -> String {
    let key = format!("code.{}", code.as_str());
    let text = lang.t(&key);
    if text == "?" {
        format!("{} ({})", lang.t("error.generic"), code.as_str())
    } else {
        format!("{text} ({})", code.as_str())
    }
}

pub(crate) fn home(ctx: &Ctx) -> String {
    let t = |k| ctx.lang.t(k);
    let body = format!(
        "<p>{intro}</p><ul class=\"cards\">\
<li><a href=\"/ui/kiosk\"><strong>{k}</strong><span>{kd}</span></a></li>\
<li><a href=\"/ui/me\"><strong>{m}</strong><span>{md}</span></a></li>\
<li><a href=\"/ui/admin\"><strong>{a}</strong><span>{ad}</span></a></li></ul>",
        intro = t("home.intro"),
        k = t("home.kiosk"),
        kd = t("home.kiosk_text"),
        m = t("home.me"),
        md = t("home.me_text"),
        a = t("home.admin"),
        ad = t("home.admin_text"),
    );
    layout(ctx, t("home.title"), "", &body)
}

pub(crate) fn login(ctx: &Ctx, area: Area, token: &str, error: Option<ErrorCode>) -> String {
    let t = |k| ctx.lang.t(k);
    let (title, label, help) = match area {
        Area::Kiosk => ("login.kiosk", "login.key", "login.kiosk_help"),
        Area::Me => ("login.me", "login.token", "login.me_help"),
        Area::Admin => ("login.admin", "login.key", "login.admin_help"),
    };
    let err = error.map_or(String::new(), |c| {
        format!(
            "<p class=\"error\" role=\"alert\" id=\"login-error\">{}</p>",
            esc(&error_text(ctx.lang, c))
        )
    });
    let body = format!(
        "<p>{help}</p>{err}<form method=\"post\" action=\"/ui/login/{area}\" class=\"stack\">\
<input type=\"hidden\" name=\"csrf\" value=\"{token}\">\
<label for=\"secret\">{label}</label>\
<input id=\"secret\" name=\"secret\" type=\"password\" autocomplete=\"off\" required autofocus{described}>\
<button type=\"submit\" class=\"primary\">{go}</button></form>",
        help = t(help),
        area = area.as_str(),
        token = esc(token),
        label = t(label),
        described = if error.is_some() {
            " aria-describedby=\"login-error\" aria-invalid=\"true\""
        } else {
            ""
        },
        go = t("login.submit"),
    );
    layout(ctx, t(title), "", &body)
}

/// The session's key as a principal of one of `roles`, or the response to give instead.
async fn key_principal(
    s: &AppState,
    ctx: &Ctx,
    area: Area,
    roles: &[Role],
) -> Result<Principal, Response> {
    let Some((Who::Key(key), _)) = &ctx.session else {
        return Err(to_login(area));
    };
    match s
        .core
        .authenticate_request(key, ctx.network.as_deref())
        .await
    {
        Ok(p) if roles.contains(&p.role) => Ok(p),
        Ok(_) => Err(page(
            StatusCode::FORBIDDEN,
            message(
                ctx,
                "error.title",
                &error_text(ctx.lang, ErrorCode::Forbidden),
            ),
        )),
        Err(e) => Err(page(
            StatusCode::from_u16(e.code().http_status()).unwrap_or(StatusCode::UNAUTHORIZED),
            message(ctx, "error.title", &error_text(ctx.lang, e.code())),
        )),
    }
}

fn core_error(ctx: &Ctx, e: &consentry_core::CoreError) -> Response {
    let code = e.code();
    if code.http_status() >= 500 {
        tracing::error!(%code, error = %e, "ui request failed");
    }
    page(
        StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST),
        message(ctx, "error.title", &error_text(ctx.lang, code)),
    )
}

// ---------------------------------------------------------------------------------------
// Kiosk

pub(crate) async fn kiosk(State(s): State<AppState>, ctx: Ctx) -> Response {
    let p = match key_principal(
        &s,
        &ctx,
        Area::Kiosk,
        &[Role::Device, Role::Operator, Role::Admin],
    )
    .await
    {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = |k| ctx.lang.t(k);
    let can_enrol = matches!(p.role, Role::Operator | Role::Admin);
    // What each purpose's decisions need (face, voice or both), so the kiosk asks for it.
    use consentry_core::Purpose;
    let mut modality = [(Purpose::Access, "face"), (Purpose::Verification, "face")];
    for (purpose, m) in &mut modality {
        match s.core.modality_policy(&p, *purpose).await {
            Ok(v) => *m = v.as_str(),
            Err(e) => return core_error(&ctx, &e),
        }
    }
    let strings = ctx.lang.json_with_prefix("kiosk.");
    // Inside a non-script data block: `<` escaped so no text can close it.
    let strings = serde_json::to_string(&strings)
        .unwrap_or_else(|_| "{}".into())
        .replace('<', "\\u003c");
    let enrol_tab = if can_enrol {
        format!(
            "<button type=\"button\" role=\"tab\" id=\"tab-enrol\" aria-controls=\"panel-enrol\" aria-selected=\"false\">{}</button>",
            t("kiosk.tab_enrol")
        )
    } else {
        String::new()
    };
    let enrol_panel = if can_enrol {
        format!(
            "<section id=\"panel-enrol\" role=\"tabpanel\" aria-labelledby=\"tab-enrol\" hidden>\
<div id=\"consent\" class=\"stack\"><h2>{ch}</h2>\
<fieldset><legend>{pl}</legend>\
<label><input type=\"radio\" name=\"purpose\" value=\"access\" checked> {pa}</label>\
<label><input type=\"radio\" name=\"purpose\" value=\"verification\"> {pv}</label></fieldset>\
<label for=\"retention\">{rl}</label>\
<select id=\"retention\"><option value=\"30\">{r30}</option><option value=\"365\" selected>{r365}</option><option value=\"730\">{r730}</option></select>\
<p id=\"consent-text\" class=\"plain\" aria-live=\"polite\"></p>\
<p class=\"plain\">{alt}</p>\
<button type=\"button\" id=\"agree\" class=\"primary big\">{agree}</button></div>\
<div id=\"capture\" class=\"stack\" hidden><h2>{caph}</h2>\
<button type=\"button\" id=\"take\" class=\"primary big\">{take}</button>\
<button type=\"button\" id=\"cancel-enrol\">{cancel}</button></div>\
<div id=\"voice\" class=\"stack\" hidden><h2>{voiceh}</h2><p class=\"plain\">{voicep}</p>\
<button type=\"button\" id=\"record-voice\" class=\"primary big\">{record}</button>\
<button type=\"button\" id=\"skip-voice\">{skip}</button></div>\
<div id=\"done\" class=\"stack\" hidden><h2>{doneh}</h2><p>{donep}</p>\
<dl id=\"receipt\"></dl><p>{tokenp}</p><p><code id=\"person-token\" class=\"token\"></code></p>\
<button type=\"button\" id=\"next\" class=\"primary\">{next}</button></div></section>",
            ch = t("kiosk.consent_title"),
            pl = t("kiosk.purpose"),
            pa = t("kiosk.purpose_access"),
            pv = t("kiosk.purpose_verification"),
            rl = t("kiosk.retention"),
            r30 = t("kiosk.days_30"),
            r365 = t("kiosk.days_365"),
            r730 = t("kiosk.days_730"),
            alt = t("kiosk.consent_alternative"),
            agree = t("kiosk.agree"),
            caph = t("kiosk.capture_title"),
            take = t("kiosk.take"),
            cancel = t("kiosk.cancel"),
            doneh = t("kiosk.done_title"),
            donep = t("kiosk.done_text"),
            tokenp = t("kiosk.token_text"),
            next = t("kiosk.next"),
            voiceh = t("kiosk.voice_title"),
            voicep = t("kiosk.voice_text"),
            record = t("kiosk.record_voice"),
            skip = t("kiosk.skip_voice"),
        )
    } else {
        String::new()
    };
    let pass_panel = format!(
        "<form id=\"pass-form\" class=\"stack\"><label for=\"pass\">{pl}</label>\
<input id=\"pass\" name=\"pass\" autocomplete=\"off\" spellcheck=\"false\">\
<button type=\"submit\">{go}</button>\
<button type=\"button\" id=\"pass-scan\" aria-describedby=\"pass-scan-help\">{scan}</button>\
<p id=\"pass-scan-help\" class=\"small\">{scanhelp}</p></form>",
        pl = t("kiosk.pass_label"),
        go = t("kiosk.pass_check"),
        scan = t("kiosk.pass_scan"),
        scanhelp = t("kiosk.pass_scan_help"),
    );
    let body = format!(
        "<script type=\"application/json\" id=\"kiosk-strings\">{strings}</script>\
<div class=\"kiosk\" data-role=\"{role}\" data-access=\"{m_access}\" data-verification=\"{m_verification}\">\
<div class=\"camera\"><video id=\"video\" autoplay muted playsinline aria-label=\"{cam}\"></video>\
<div id=\"frame-box\" class=\"frame-box\" hidden></div>\
<div id=\"challenge\" class=\"challenge\" hidden aria-live=\"assertive\"><span id=\"challenge-arrow\" class=\"arrow\" aria-hidden=\"true\"></span><span id=\"challenge-text\"></span></div>\
<p id=\"hint\" class=\"hint\" role=\"status\" aria-live=\"polite\"></p></div>\
<div class=\"controls\">\
<div role=\"tablist\" aria-label=\"{modes}\">\
<button type=\"button\" role=\"tab\" id=\"tab-check\" aria-controls=\"panel-check\" aria-selected=\"true\">{tc}</button>{enrol_tab}</div>\
<section id=\"panel-check\" role=\"tabpanel\" aria-labelledby=\"tab-check\">\
<p>{choose}</p>\
<div class=\"choices\">\
<div class=\"stack\"><h2>{face}</h2>\
<label for=\"claim\">{claim}</label><input id=\"claim\" autocomplete=\"off\" spellcheck=\"false\" aria-describedby=\"claim-help\">\
<p id=\"claim-help\" class=\"small\">{claimhelp}</p>\
<button type=\"button\" id=\"look\" class=\"primary big\">{look}</button></div>\
<form id=\"cred-form\" class=\"stack\"><h2>{cardpin}</h2>\
<label for=\"card\">{card}</label><input id=\"card\" name=\"card\" autocomplete=\"off\">\
<label for=\"pin\">{pin}</label><input id=\"pin\" name=\"pin\" type=\"password\" inputmode=\"numeric\" autocomplete=\"off\">\
<button type=\"submit\" class=\"primary big\">{check}</button></form>\
<div class=\"stack\"><h2>{passh}</h2>{pass_panel}</div></div></section>\
{enrol_panel}\
<div id=\"result\" class=\"result\" role=\"status\" aria-live=\"assertive\" hidden></div>\
</div></div><script src=\"/ui/assets/kiosk.js\" defer></script>",
        role = p.role.as_str(),
        m_access = modality[0].1,
        m_verification = modality[1].1,
        cam = t("kiosk.camera"),
        modes = t("kiosk.modes"),
        tc = t("kiosk.tab_check"),
        choose = t("kiosk.choose"),
        face = t("kiosk.face"),
        claim = t("kiosk.claim"),
        claimhelp = t("kiosk.claim_help"),
        look = t("kiosk.look"),
        cardpin = t("kiosk.card_or_pin"),
        card = t("kiosk.card"),
        pin = t("kiosk.pin"),
        check = t("kiosk.check"),
        passh = t("kiosk.pass_title"),
    );
    page(StatusCode::OK, layout(&ctx, t("kiosk.title"), "", &body))
}

// ---------------------------------------------------------------------------------------
// The person's own portal

async fn person(s: &AppState, ctx: &Ctx) -> Result<consentry_core::SelfPrincipal, Response> {
    let Some((Who::Person(token), _)) = &ctx.session else {
        return Err(to_login(Area::Me));
    };
    s.core
        .subject_sign_in(token)
        .await
        .map_err(|_| to_login(Area::Me))
}

fn actor_text(lang: Lang, role: &str, key: &str) -> String {
    match role {
        "subject" => lang.t("me.you").to_string(),
        "system" => format!("{} ({key})", lang.t("me.system")),
        _ => format!("{} {}", lang.t(&format!("role.{role}")), key),
    }
}

pub(crate) async fn me(State(s): State<AppState>, ctx: Ctx) -> Response {
    let sp = match person(&s, &ctx).await {
        Ok(sp) => sp,
        Err(r) => return r,
    };
    let view = match s.core.self_view(&sp).await {
        Ok(v) => v,
        Err(e) => return core_error(&ctx, &e),
    };
    let accesses = match s.core.self_accesses(&sp, 200).await {
        Ok(a) => a,
        Err(e) => return core_error(&ctx, &e),
    };
    let l = ctx.lang;
    let t = |k| l.t(k);
    let csrf = esc(ctx.csrf());
    let mut b = String::new();
    let _ = write!(b, "<p>{}</p>", esc(&l.tf("me.intro", &[&view.id])));
    // Consents.
    let _ = write!(
        b,
        "<section aria-labelledby=\"h-consents\"><h2 id=\"h-consents\">{}</h2>",
        t("me.consents")
    );
    if view.consents.is_empty() {
        let _ = write!(b, "<p>{}</p>", t("me.none"));
    } else {
        let _ = write!(
            b,
            "<table><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\"><span class=\"sr\">{}</span></th></tr></thead><tbody>",
            t("me.purpose"),
            t("me.kept_for"),
            t("me.given"),
            t("me.state"),
            t("me.action")
        );
        for c in &view.consents {
            let state = match c.withdrawn_at {
                Some(w) => l.tf("me.withdrawn_at", &[&when(w)]),
                None => t("me.active").to_string(),
            };
            let action = if c.withdrawn_at.is_none() {
                format!(
                    "<form method=\"post\" action=\"/ui/me/withdraw\" data-confirm=\"{q}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"consent\" value=\"{id}\"><button type=\"submit\" class=\"danger\">{w}</button></form>",
                    q = esc(t("me.withdraw_confirm")),
                    id = esc(&c.id),
                    w = t("me.withdraw"),
                )
            } else {
                String::new()
            };
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(l.t(&format!("purpose.{}", c.purpose))),
                esc(&l.tf("me.days", &[&c.retention_days.to_string()])),
                when(c.granted_at),
                esc(&state),
                action
            );
        }
        b.push_str("</tbody></table>");
    }
    b.push_str("</section>");
    // What is held: templates, credentials, passes.
    let _ = write!(
        b,
        "<section aria-labelledby=\"h-held\"><h2 id=\"h-held\">{}</h2><ul>",
        t("me.held")
    );
    for tpl in &view.templates {
        let _ = write!(
            b,
            "<li>{}</li>",
            esc(&l.tf(
                if tpl.modality == "voice" {
                    "me.voice_template"
                } else {
                    "me.template"
                },
                &[
                    l.t(&format!("purpose.{}", tpl.purpose)),
                    &when(tpl.expires_at)
                ]
            ))
        );
    }
    for c in &view.credentials {
        let _ = write!(
            b,
            "<li>{}</li>",
            esc(&l.tf(
                "me.credential",
                &[l.t(&format!("credential.{}", c.kind)), &when(c.created_at)]
            ))
        );
    }
    for pass in &view.passes {
        let _ = write!(
            b,
            "<li>{}<br><img class=\"qr\" src=\"/ui/me/pass?id={}\" alt=\"{}\"></li>",
            esc(&l.tf("me.pass", &[&when(pass.expires_at)])),
            esc(&pass.id),
            t("me.pass_qr")
        );
    }
    if view.templates.is_empty() && view.credentials.is_empty() && view.passes.is_empty() {
        let _ = write!(b, "<li>{}</li>", t("me.nothing_held"));
    }
    let _ = write!(
        b,
        "</ul><p class=\"small\">{}</p></section>",
        t("me.no_photos")
    );
    // Accesses.
    let _ = write!(
        b,
        "<section aria-labelledby=\"h-access\"><h2 id=\"h-access\">{}</h2>",
        t("me.accesses")
    );
    if accesses.is_empty() {
        let _ = write!(b, "<p>{}</p>", t("me.none"));
    } else {
        let _ = write!(
            b,
            "<table id=\"accesses\"><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
            t("me.when"),
            t("me.who"),
            t("me.what"),
            t("me.why"),
            t("me.outcome")
        );
        for a in &accesses {
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td title=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
                when(a.time),
                esc(&actor_text(l, &a.actor.role, &a.actor.key)),
                esc(&a.action),
                esc(l.get(&format!("action.{}", a.action)).unwrap_or(&a.action)),
                esc(a.purpose.as_deref().unwrap_or("—")),
                esc(l
                    .get(&format!("outcome.{}", a.outcome))
                    .unwrap_or(&a.outcome))
            );
        }
        b.push_str("</tbody></table>");
    }
    b.push_str("</section>");
    // Rights.
    let _ = write!(
        b,
        "<section aria-labelledby=\"h-rights\"><h2 id=\"h-rights\">{h}</h2>\
<form method=\"post\" action=\"/ui/me/export\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button type=\"submit\">{ex}</button></form>\
<form method=\"post\" action=\"/ui/me/delete\" class=\"stack danger-zone\" data-confirm=\"{dq}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<p>{dt}</p><label><input type=\"checkbox\" name=\"confirm\" value=\"yes\" required> {dc}</label>\
<button type=\"submit\" class=\"danger\">{db}</button></form></section>",
        h = t("me.rights"),
        ex = t("me.export"),
        dq = esc(t("me.delete_confirm")),
        dt = t("me.delete_text"),
        dc = t("me.delete_check"),
        db = t("me.delete"),
    );
    page(StatusCode::OK, layout(&ctx, t("me.title"), "", &b))
}

#[derive(serde::Deserialize)]
pub(crate) struct PassQuery {
    id: String,
}

/// One of the person's live passes as its QR code (SVG), to show at a venue.
pub(crate) async fn me_pass(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Query<PassQuery>,
) -> Response {
    let sp = match person(&s, &ctx).await {
        Ok(sp) => sp,
        Err(r) => return r,
    };
    let text = match s.core.self_pass_text(&sp, q.id.trim()).await {
        Ok(t) => t,
        Err(e) => return core_error(&ctx, &e),
    };
    match consentry_pass::qr::svg(&text, 6) {
        Ok(svg) => super::private_file("image/svg+xml", svg),
        Err(e) => core_error(&ctx, &consentry_core::CoreError::Internal(e.to_string())),
    }
}

pub(crate) async fn me_export(State(s): State<AppState>, ctx: Ctx, Body(body): Body) -> Response {
    let Some(f) = form::<CsrfForm>(&body) else {
        return super::bad_form(&ctx);
    };
    if !checked(&ctx, &f.csrf) {
        return super::bad_form(&ctx);
    }
    let sp = match person(&s, &ctx).await {
        Ok(sp) => sp,
        Err(r) => return r,
    };
    match s.core.self_export(&sp).await {
        Ok(export) => {
            let json = match serde_json::to_string_pretty(&export) {
                Ok(j) => j,
                Err(e) => {
                    tracing::error!(error = %e, "export did not serialise");
                    return core_error(&ctx, &consentry_core::CoreError::Internal(e.to_string()));
                }
            };
            let mut r = super::private_file("application/json", json);
            if let Ok(v) = HeaderValue::from_str(&format!(
                "attachment; filename=\"consentry-{}.json\"",
                sp.subject
            )) {
                r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            r
        }
        Err(e) => core_error(&ctx, &e),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct WithdrawForm {
    csrf: String,
    consent: String,
}

pub(crate) async fn me_withdraw(State(s): State<AppState>, ctx: Ctx, Body(body): Body) -> Response {
    let Some(f) = form::<WithdrawForm>(&body) else {
        return super::bad_form(&ctx);
    };
    if !checked(&ctx, &f.csrf) {
        return super::bad_form(&ctx);
    }
    let sp = match person(&s, &ctx).await {
        Ok(sp) => sp,
        Err(r) => return r,
    };
    match s.core.self_withdraw(&sp, &f.consent).await {
        Ok(()) => see_other("/ui/me", &[]),
        Err(e) => core_error(&ctx, &e),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct DeleteForm {
    csrf: String,
    confirm: Option<String>,
}

pub(crate) async fn me_delete(State(s): State<AppState>, ctx: Ctx, Body(body): Body) -> Response {
    let Some(f) = form::<DeleteForm>(&body) else {
        return super::bad_form(&ctx);
    };
    if !checked(&ctx, &f.csrf) {
        return super::bad_form(&ctx);
    }
    if f.confirm.as_deref() != Some("yes") {
        return page(
            StatusCode::BAD_REQUEST,
            message(&ctx, "error.title", ctx.lang.t("me.delete_unconfirmed")),
        );
    }
    let sp = match person(&s, &ctx).await {
        Ok(sp) => sp,
        Err(r) => return r,
    };
    match s.core.self_delete(&sp).await {
        Ok(()) => {
            if let Some(id) = super::cookie(&ctx.headers, super::SESSION_COOKIE) {
                s.ui.close(id);
            }
            let mut ctx = ctx;
            ctx.session = None;
            page(
                StatusCode::OK,
                message(&ctx, "me.deleted_title", ctx.lang.t("me.deleted_text")),
            )
        }
        Err(e) => core_error(&ctx, &e),
    }
}

// ---------------------------------------------------------------------------------------
// Admin and audit console

fn admin_nav(ctx: &Ctx, role: Role) -> String {
    let lang = ctx.lang;
    let link = |href: &str, key: &str| {
        let here = ctx.path.split('?').next().unwrap_or("");
        let here = if here.starts_with("/ui/admin/subject") {
            "/ui/admin/subjects"
        } else {
            here
        };
        let current = if here == href {
            " aria-current=\"page\""
        } else {
            ""
        };
        format!("<a href=\"{href}\"{current}>{}</a>", lang.t(key))
    };
    let mut s = String::new();
    if role == Role::Admin {
        s.push_str(&link("/ui/admin", "admin.overview"));
        s.push_str(&link("/ui/admin/subjects", "admin.subjects"));
        s.push_str(&link("/ui/admin/keys", "admin.keys"));
    }
    s.push_str(&link("/ui/admin/audit", "admin.audit"));
    s
}

const ADMINS: &[Role] = &[Role::Admin];
const CONSOLE: &[Role] = &[Role::Admin, Role::Auditor];

fn alerts_html(ctx: &Ctx, keys: &[consentry_core::KeyView]) -> String {
    let t = |k| ctx.lang.t(k);
    let suspended: Vec<_> = keys.iter().filter(|k| k.status == "suspended").collect();
    let mut b = format!(
        "<section aria-labelledby=\"h-alerts\"><h2 id=\"h-alerts\">{}</h2>",
        t("admin.alerts")
    );
    if suspended.is_empty() {
        let _ = write!(b, "<p>{}</p>", t("admin.no_alerts"));
    } else {
        b.push_str("<ul class=\"alerts\">");
        for k in suspended {
            let _ = write!(
                b,
                "<li role=\"alert\">{}</li>",
                esc(&ctx.lang.tf(
                    "admin.alert_suspended",
                    &[
                        &k.id,
                        k.suspended_reason.as_deref().unwrap_or("?"),
                        &k.suspended_at.map(when).unwrap_or_default()
                    ]
                ))
            );
        }
        b.push_str("</ul>");
    }
    b.push_str("</section>");
    b
}

pub(crate) async fn admin(State(s): State<AppState>, ctx: Ctx) -> Response {
    let p = match key_principal(&s, &ctx, Area::Admin, CONSOLE).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if p.role == Role::Auditor {
        return see_other("/ui/admin/audit", &[]);
    }
    let keys = match s.core.list_keys(&p).await {
        Ok(k) => k,
        Err(e) => return core_error(&ctx, &e),
    };
    let audit = audit_state(&s, &p).await;
    let t = |k| ctx.lang.t(k);
    let mut b = alerts_html(&ctx, &keys);
    let _ = write!(
        b,
        "<section aria-labelledby=\"h-log\"><h2 id=\"h-log\">{}</h2><p id=\"audit-state\">{}</p><p><a href=\"/ui/admin/audit\">{}</a></p></section>",
        t("admin.audit"),
        esc(&audit_sentence(ctx.lang, &audit)),
        t("admin.audit_open")
    );
    let body = b;
    page(
        StatusCode::OK,
        layout(&ctx, t("admin.title"), &admin_nav(&ctx, p.role), &body),
    )
}

pub(crate) async fn admin_subjects(State(s): State<AppState>, ctx: Ctx) -> Response {
    let p = match key_principal(&s, &ctx, Area::Admin, ADMINS).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let subjects = match s.core.list_subjects(&p, 100).await {
        Ok(v) => v,
        Err(e) => return core_error(&ctx, &e),
    };
    let t = |k| ctx.lang.t(k);
    let mut b = format!(
        "<form method=\"get\" action=\"/ui/admin/subject\" class=\"inline\"><label for=\"sid\">{}</label> <input id=\"sid\" name=\"id\" required spellcheck=\"false\"> <button type=\"submit\">{}</button></form>",
        t("admin.subject_id"),
        t("admin.open")
    );
    let _ = write!(b, "<h2>{}</h2>", t("admin.newest_subjects"));
    if subjects.is_empty() {
        let _ = write!(b, "<p>{}</p>", t("admin.no_subjects"));
    } else {
        let _ = write!(
            b,
            "<table><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
            t("admin.subject_id"),
            t("admin.created")
        );
        for (id, at) in &subjects {
            let _ = write!(
                b,
                "<tr><td><a href=\"/ui/admin/subject?id={id}\"><code>{id}</code></a></td><td>{}</td></tr>",
                when(*at),
                id = esc(id)
            );
        }
        b.push_str("</tbody></table>");
    }
    page(
        StatusCode::OK,
        layout(&ctx, t("admin.subjects"), &admin_nav(&ctx, p.role), &b),
    )
}

#[derive(serde::Deserialize)]
pub(crate) struct IdQuery {
    id: String,
}

pub(crate) async fn admin_subject(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Query<IdQuery>,
) -> Response {
    let p = match key_principal(&s, &ctx, Area::Admin, ADMINS).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let id = q.id.trim();
    let view = match s.core.subject(&p, id).await {
        Ok(v) => v,
        Err(e) => return core_error(&ctx, &e),
    };
    let accesses = match s.core.subject_accesses(&p, id, 50).await {
        Ok(a) => a,
        Err(e) => return core_error(&ctx, &e),
    };
    let l = ctx.lang;
    let t = |k| l.t(k);
    let csrf = esc(ctx.csrf());
    let mut b = format!(
        "<p><code>{}</code> · {}</p><ul><li>{}</li><li>{}</li><li>{}</li></ul>",
        esc(&view.id),
        esc(&l.tf("admin.created_at", &[&when(view.created_at)])),
        esc(&l.tf(
            "admin.templates_access",
            &[&view.access_templates.to_string()]
        )),
        esc(&l.tf(
            "admin.templates_verification",
            &[&view.verification_templates.to_string()]
        )),
        esc(&l.tf(
            "admin.templates_voice",
            &[&view.voice_templates.to_string()]
        )),
    );
    let _ = write!(b, "<h2>{}</h2><ul>", t("me.consents"));
    for c in &view.consents {
        let state = match c.withdrawn_at {
            Some(w) => l.tf("me.withdrawn_at", &[&when(w)]),
            None => t("me.active").to_string(),
        };
        let _ = write!(
            b,
            "<li>{} · {} · {}</li>",
            esc(l.t(&format!("purpose.{}", c.purpose))),
            esc(&l.tf("me.days", &[&c.retention_days.to_string()])),
            esc(&state)
        );
    }
    if view.consents.is_empty() {
        let _ = write!(b, "<li>{}</li>", t("me.none"));
    }
    b.push_str("</ul>");
    let _ = write!(b, "<h2>{}</h2><table><tbody>", t("me.accesses"));
    for a in &accesses {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            when(a.time),
            esc(&actor_text(l, &a.actor.role, &a.actor.key)),
            esc(&a.action),
            esc(a.purpose.as_deref().unwrap_or("—")),
            esc(&a.outcome)
        );
    }
    b.push_str("</tbody></table>");
    let _ = write!(
        b,
        "<h2>{h}</h2><form method=\"post\" action=\"/ui/admin/subject/token\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"id\" value=\"{id}\"><button type=\"submit\">{tok}</button></form>\
<form method=\"post\" action=\"/ui/admin/subject/delete\" data-confirm=\"{dq}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"id\" value=\"{id}\"><button type=\"submit\" class=\"danger\">{del}</button></form>",
        h = t("admin.actions"),
        id = esc(&view.id),
        tok = t("admin.new_token"),
        dq = esc(t("admin.delete_confirm")),
        del = t("admin.delete_subject"),
    );
    page(
        StatusCode::OK,
        layout(&ctx, t("admin.subject"), &admin_nav(&ctx, p.role), &b),
    )
}

#[derive(serde::Deserialize)]
pub(crate) struct IdForm {
    csrf: String,
    id: String,
}

async fn admin_form<T: serde::de::DeserializeOwned>(
    s: &AppState,
    ctx: Ctx,
    body: &[u8],
    csrf_of: impl Fn(&T) -> &str,
) -> Result<(Ctx, Principal, T), Response> {
    let Some(f) = form::<T>(body) else {
        return Err(super::bad_form(&ctx));
    };
    if !checked(&ctx, csrf_of(&f)) {
        return Err(super::bad_form(&ctx));
    }
    let p = key_principal(s, &ctx, Area::Admin, ADMINS).await?;
    Ok((ctx, p, f))
}

pub(crate) async fn admin_subject_token(
    State(s): State<AppState>,
    ctx: Ctx,
    Body(body): Body,
) -> Response {
    let (ctx, p, f) = match admin_form::<IdForm>(&s, ctx, &body, |f| &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match s.core.issue_subject_token(&p, f.id.trim()).await {
        Ok(token) => {
            let t = |k| ctx.lang.t(k);
            let b = format!(
                "<p>{}</p><p><code class=\"token\" id=\"new-token\">{}</code></p><p><a href=\"/ui/admin/subject?id={}\">{}</a></p>",
                t("admin.token_once"),
                esc(&token),
                esc(f.id.trim()),
                t("admin.back")
            );
            page(
                StatusCode::OK,
                layout(&ctx, t("admin.new_token"), &admin_nav(&ctx, p.role), &b),
            )
        }
        Err(e) => core_error(&ctx, &e),
    }
}

pub(crate) async fn admin_subject_delete(
    State(s): State<AppState>,
    ctx: Ctx,
    Body(body): Body,
) -> Response {
    let (ctx, p, f) = match admin_form::<IdForm>(&s, ctx, &body, |f| &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match s.core.delete_subject(&p, f.id.trim()).await {
        Ok(()) => see_other("/ui/admin/subjects", &[]),
        Err(e) => core_error(&ctx, &e),
    }
}

fn keys_page(
    ctx: &Ctx,
    p: &Principal,
    keys: &[consentry_core::KeyView],
    minted: Option<&str>,
) -> String {
    let l = ctx.lang;
    let t = |k| l.t(k);
    let csrf = esc(ctx.csrf());
    let mut b = String::new();
    if let Some(key) = minted {
        let _ = write!(
            b,
            "<div class=\"notice\" role=\"status\"><p>{}</p><p><code class=\"token\" id=\"minted-key\">{}</code></p></div>",
            t("admin.key_once"),
            esc(key)
        );
    }
    b.push_str(&alerts_html(ctx, keys));
    let _ = write!(
        b,
        "<h2>{}</h2><table id=\"keys\"><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\"><span class=\"sr\">{}</span></th></tr></thead><tbody>",
        t("admin.keys"),
        t("admin.key_id"),
        t("admin.role"),
        t("admin.site"),
        t("admin.status"),
        t("admin.expires"),
        t("me.action")
    );
    for k in keys {
        let action = match k.status {
            "suspended" => format!(
                "<form method=\"post\" action=\"/ui/admin/keys/reinstate\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"id\" value=\"{id}\"><button type=\"submit\">{r}</button></form>",
                id = esc(&k.id),
                r = t("admin.reinstate")
            ),
            "active" if k.id != p.key => format!(
                "<form method=\"post\" action=\"/ui/admin/keys/revoke\" data-confirm=\"{q}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"id\" value=\"{id}\"><button type=\"submit\" class=\"danger\">{r}</button></form>",
                q = esc(t("admin.revoke_confirm")),
                id = esc(&k.id),
                r = t("admin.revoke")
            ),
            _ => String::new(),
        };
        let _ = write!(
            b,
            "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&k.id),
            if k.id == p.key { format!(" ({})", t("admin.this_key")) } else { String::new() },
            esc(l.t(&format!("role.{}", k.role))),
            esc(k.site.as_deref().unwrap_or("—")),
            esc(l.t(&format!("status.{}", k.status))),
            k.expires_at.map(when).unwrap_or_else(|| "—".into()),
            action
        );
    }
    b.push_str("</tbody></table>");
    let _ = write!(
        b,
        "<h2>{h}</h2><form method=\"post\" action=\"/ui/admin/keys\" class=\"stack\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<label for=\"role\">{rl}</label><select id=\"role\" name=\"role\"><option value=\"device\">{rd}</option><option value=\"operator\">{ro}</option><option value=\"auditor\">{ra}</option><option value=\"admin\">{rad}</option></select>\
<label for=\"site\">{sl}</label><input id=\"site\" name=\"site\" autocomplete=\"off\" aria-describedby=\"site-help\"><p id=\"site-help\" class=\"small\">{sh}</p>\
<label for=\"days\">{dl}</label><input id=\"days\" name=\"days\" type=\"number\" min=\"1\" max=\"{max}\" value=\"90\">\
<button type=\"submit\" class=\"primary\">{go}</button></form>",
        h = t("admin.new_key"),
        rl = t("admin.role"),
        rd = t("role.device"),
        ro = t("role.operator"),
        ra = t("role.auditor"),
        rad = t("role.admin"),
        sl = t("admin.site"),
        sh = t("admin.site_help"),
        dl = t("admin.days"),
        max = consentry_core::MAX_KEY_DAYS,
        go = t("admin.create_key"),
    );
    b
}

pub(crate) async fn admin_keys(State(s): State<AppState>, ctx: Ctx) -> Response {
    let p = match key_principal(&s, &ctx, Area::Admin, ADMINS).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match s.core.list_keys(&p).await {
        Ok(keys) => page(
            StatusCode::OK,
            layout(
                &ctx,
                ctx.lang.t("admin.keys"),
                &admin_nav(&ctx, p.role),
                &keys_page(&ctx, &p, &keys, None),
            ),
        ),
        Err(e) => core_error(&ctx, &e),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct KeyForm {
    csrf: String,
    role: String,
    site: Option<String>,
    days: Option<String>,
}

pub(crate) async fn admin_key_create(
    State(s): State<AppState>,
    ctx: Ctx,
    Body(body): Body,
) -> Response {
    let (ctx, p, f) = match admin_form::<KeyForm>(&s, ctx, &body, |f| &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let role = match f.role.as_str() {
        "device" => Role::Device,
        "operator" => Role::Operator,
        "auditor" => Role::Auditor,
        "admin" => Role::Admin,
        _ => return super::bad_form(&ctx),
    };
    let mut req = consentry_core::KeyRequest::role(role);
    req.site = f
        .site
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    req.expires_in_days = match f.days.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        None => None,
        Some(d) => match d.parse() {
            Ok(n) => Some(n),
            Err(_) => {
                return core_error(
                    &ctx,
                    &consentry_core::CoreError::Invalid("days must be a number".into()),
                )
            }
        },
    };
    let minted = match s.core.issue_key(&p, &req).await {
        Ok(m) => m,
        Err(e) => return core_error(&ctx, &e),
    };
    match s.core.list_keys(&p).await {
        Ok(keys) => page(
            StatusCode::OK,
            layout(
                &ctx,
                ctx.lang.t("admin.keys"),
                &admin_nav(&ctx, p.role),
                &keys_page(&ctx, &p, &keys, Some(&minted.1)),
            ),
        ),
        Err(e) => core_error(&ctx, &e),
    }
}

pub(crate) async fn admin_key_revoke(
    State(s): State<AppState>,
    ctx: Ctx,
    Body(body): Body,
) -> Response {
    let (ctx, p, f) = match admin_form::<IdForm>(&s, ctx, &body, |f| &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match s.core.revoke_key(&p, &f.id).await {
        Ok(()) => see_other("/ui/admin/keys", &[]),
        Err(e) => core_error(&ctx, &e),
    }
}

pub(crate) async fn admin_key_reinstate(
    State(s): State<AppState>,
    ctx: Ctx,
    Body(body): Body,
) -> Response {
    let (ctx, p, f) = match admin_form::<IdForm>(&s, ctx, &body, |f| &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match s.core.reinstate_key(&p, &f.id).await {
        Ok(()) => see_other("/ui/admin/keys", &[]),
        Err(e) => core_error(&ctx, &e),
    }
}

/// What the console's check of the log found.
pub(crate) enum AuditState {
    /// Every entry up to `size` hashes to the signed checkpoint's root.
    Verified { size: u64 },
    /// The checkpoint's signature holds; the log is too long to hash here.
    SignatureOnly { size: u64 },
    /// The check failed: the first entry that does not match, or why.
    Failed { reason: String },
}

/// The most entries the console hashes on a page view (the offline verifier has no limit).
const CONSOLE_VERIFY_LIMIT: u64 = 50_000;

/// Checks the tenant's log as an auditor would: the current checkpoint opens with the
/// tenant's verifier key, and every entry, hashed into a fresh tree, gives its root.
pub(crate) async fn audit_state(s: &AppState, p: &Principal) -> AuditState {
    use consentry_audit::merkle::{leaf_hash, MemoryTree};
    let fail = |reason: String| AuditState::Failed { reason };
    let note = match s.core.audit_checkpoint(p).await {
        Ok(n) => n,
        Err(e) => return fail(e.code().as_str().into()),
    };
    let key = match s.core.tenant_audit_key(p) {
        Ok(k) => k,
        Err(e) => return fail(e.code().as_str().into()),
    };
    let cp = match consentry_audit::Checkpoint::open(&note, &key) {
        Ok(cp) => cp,
        Err(e) => return fail(e.to_string()),
    };
    if cp.size > CONSOLE_VERIFY_LIMIT {
        return AuditState::SignatureOnly { size: cp.size };
    }
    let mut tree = MemoryTree::new();
    let mut next = 0;
    while next < cp.size {
        let end = (next + consentry_core::MAX_ENTRIES_PER_READ).min(cp.size);
        let entries = match s.core.audit_entries(p, next, end).await {
            Ok(e) => e,
            Err(e) => return fail(e.code().as_str().into()),
        };
        for (index, bytes) in entries {
            if index != next {
                return fail(format!("entry {next} is missing"));
            }
            tree.push(leaf_hash(bytes.as_bytes()));
            next += 1;
        }
        if next < end {
            return fail(format!("entry {next} is missing"));
        }
    }
    if tree.root(cp.size) == Some(cp.root) {
        AuditState::Verified { size: cp.size }
    } else {
        fail("the entries do not hash to the checkpoint's root".into())
    }
}

fn audit_sentence(lang: Lang, st: &AuditState) -> String {
    match st {
        AuditState::Verified { size } => lang.tf("admin.verified_up_to", &[&size.to_string()]),
        AuditState::SignatureOnly { size } => lang.tf("admin.signature_only", &[&size.to_string()]),
        AuditState::Failed { reason } => lang.tf("admin.verify_failed", &[reason]),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct AuditQuery {
    before: Option<u64>,
}

pub(crate) async fn admin_audit(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Query<AuditQuery>,
) -> Response {
    let p = match key_principal(&s, &ctx, Area::Admin, CONSOLE).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let state = audit_state(&s, &p).await;
    let size = match &state {
        AuditState::Verified { size } | AuditState::SignatureOnly { size } => *size,
        AuditState::Failed { .. } => 0,
    };
    let end = q.before.map_or(size, |b| b.min(size));
    let start = end.saturating_sub(50);
    let (entries, checkpoint, verifier) = match (
        s.core.audit_entries(&p, start, end).await,
        s.core.audit_checkpoint(&p).await,
        s.core.tenant_audit_key(&p),
    ) {
        (Ok(e), Ok(c), Ok(k)) => (e, c, k.to_string()),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return core_error(&ctx, &e),
    };
    let l = ctx.lang;
    let t = |k| l.t(k);
    let class = match state {
        AuditState::Verified { .. } => "ok",
        AuditState::SignatureOnly { .. } => "notice",
        AuditState::Failed { .. } => "error",
    };
    let mut b = format!(
        "<p id=\"audit-state\" class=\"{class}\" role=\"status\">{}</p>",
        esc(&audit_sentence(l, &state))
    );
    let _ = write!(
        b,
        "<h2>{}</h2><table id=\"entries\"><thead><tr><th scope=\"col\">#</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        t("admin.entries"),
        t("me.when"),
        t("me.who"),
        t("me.what"),
        t("admin.target"),
        t("me.why"),
        t("me.outcome")
    );
    for (index, text) in entries.iter().rev() {
        let Some(e) = consentry_audit::Entry::from_bytes(text.as_bytes()) else {
            continue;
        };
        let _ = write!(
            b,
            "<tr><td>{index}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td class=\"outcome-{}\">{}</td></tr>",
            when(e.time),
            esc(&actor_text(l, &e.actor.role, &e.actor.key)),
            esc(&e.action),
            esc(e.target.as_deref().unwrap_or("—")),
            esc(e.purpose.as_deref().unwrap_or("—")),
            esc(&e.outcome),
            esc(&e.outcome),
        );
    }
    b.push_str("</tbody></table>");
    if start > 0 {
        let _ = write!(
            b,
            "<p><a href=\"/ui/admin/audit?before={start}\">{}</a></p>",
            t("admin.older")
        );
    }
    let _ = write!(
        b,
        "<h2>{}</h2><p>{}</p><pre id=\"checkpoint\">{}</pre><p>{}</p><pre>{}</pre><p>{}</p><pre>consentry audit checkpoint --server URL --key KEY --out saved.txt\nconsentry audit verify --server URL --key KEY --checkpoint saved.txt</pre>",
        t("admin.checkpoint"),
        t("admin.checkpoint_text"),
        esc(&checkpoint),
        t("admin.verifier_key"),
        esc(&verifier),
        t("admin.offline")
    );
    page(
        StatusCode::OK,
        layout(&ctx, t("admin.audit"), &admin_nav(&ctx, p.role), &b),
    )
}
