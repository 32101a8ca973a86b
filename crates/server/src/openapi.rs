//! `GET /openapi.json`: generated from the handlers' annotations.

use crate::routes::{
    audit, consents, credentials, decisions, faces, keys, links, liveness, passes, subjects, voices,
};
use crate::ErrorResponse;

/// The OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Consentry", description = "Consent-first biometric verification and access control"),
    paths(subjects::create_subject, subjects::delete_subject, subjects::show_subject,
        consents::grant_consent, consents::withdraw_consent, faces::enrol_face, faces::frame_check,
        decisions::verify_face, decisions::identify_face, credentials::add_credential,
        decisions::decide_access, audit::public_keys, audit::checkpoint, audit::entries,
        audit::inclusion, audit::consistency, audit::accesses, keys::create_key, keys::list_keys,
        keys::revoke_key, keys::rotate_key, keys::reinstate_key, links::mint_link, links::use_link,
        links::subject_token, passes::issue_pass, passes::qr_svg, passes::qr_png,
        passes::revoke_pass, passes::rotate_key, passes::trust, passes::revocations,
        passes::check_in, liveness::challenge, liveness::answer, liveness::set_policy,
        voices::enrol_voice, voices::verify_voice, voices::set_policy, voices::get_policy),
    components(schemas(ErrorResponse, crate::extract::ImageUpload, crate::extract::AudioUpload, crate::extract::ProbesUpload, voices::ModalityRequest, consents::ConsentRequest, credentials::CredentialRequest, keys::NewKeyRequest, links::LinkRequest, passes::PassRequest, passes::CheckInRequest, liveness::ChallengeRequest, liveness::AnswerRequest, liveness::FrameRequest, liveness::PolicyRequest)),
    modifiers(&BearerAuth, &CommonResponses)
)]
pub struct ApiDoc;

/// The answers any operation may give besides its own: a key over its rate limit (429), and
/// a server that is overloaded, timed out or without its database (503); the first two with
/// `Retry-After`.
struct CommonResponses;

impl utoipa::Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{header::Header, schema::Ref, ContentBuilder, ResponseBuilder, Type};
        let error = || {
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorResponse")))
                .build()
        };
        let retry_after = || {
            let mut h = Header::new(utoipa::openapi::schema::Object::with_type(Type::Integer));
            h.description = Some("seconds to wait before trying again".into());
            h
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in operations.into_iter().flatten() {
                let responses = &mut op.responses.responses;
                let keyed = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let engine = op.request_body.as_ref().is_some_and(|b| {
                    b.content.keys().any(|ct| {
                        ct.starts_with("image/")
                            || ct.starts_with("audio/")
                            || ct == "multipart/form-data"
                    })
                });
                if keyed {
                    responses.entry("429".into()).or_insert_with(|| {
                        ResponseBuilder::new()
                            .description("`rate_limited`: this key is over its role's rate limit")
                            .content("application/json", error())
                            .header("Retry-After", retry_after())
                            .into()
                    });
                }
                let mut unavailable = String::new();
                if engine {
                    unavailable.push_str(
                        "`overloaded` (with `Retry-After`): more face or voice work is waiting than the server takes; ",
                    );
                }
                unavailable.push_str(
                    "`request_timeout`: the request took longer than the server's limit; `storage_unavailable`: the database cannot be reached",
                );
                // An operation's own 503 (say `model_unavailable`) keeps its text, with these
                // added.
                if let Some(utoipa::openapi::RefOr::T(own)) = responses.get("503") {
                    unavailable = format!("{}; {unavailable}", own.description);
                }
                let mut response = ResponseBuilder::new()
                    .description(unavailable)
                    .content("application/json", error());
                if engine {
                    response = response.header("Retry-After", retry_after());
                }
                responses.insert("503".into(), response.into());
            }
        }
    }
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi;

    /// Every `/api/v1` route the router serves is in the OpenAPI document, so a generated
    /// client reaches all of it (the routes are read from the router's source).
    #[test]
    fn every_api_route_is_documented() {
        let doc = super::ApiDoc::openapi();
        let source = include_str!("lib.rs");
        let routes: Vec<&str> = source
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .filter_map(|l| l.split('"').nth(1))
            .filter(|p| p.starts_with("/api/v1/"))
            .collect();
        assert!(routes.len() > 30, "{routes:?}");
        for route in routes {
            assert!(
                doc.paths.paths.contains_key(route),
                "{route} is served but not in /openapi.json"
            );
        }
    }

    /// Every keyed operation documents `rate_limited` (429) with `Retry-After`; every operation
    /// that takes a photo or a recording documents `overloaded` (503) with `Retry-After`.
    #[test]
    fn rate_limits_and_overload_are_documented_with_retry_after() {
        let doc = serde_json::to_value(super::ApiDoc::openapi()).unwrap_or_default();
        let paths = doc["paths"].as_object().cloned().unwrap_or_default();
        let (mut keyed, mut engine) = (0, 0);
        for (path, item) in &paths {
            for (method, op) in item.as_object().into_iter().flatten() {
                let at = format!("{method} {path}");
                let responses = &op["responses"];
                if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                    keyed += 1;
                    assert!(
                        responses["429"]["headers"]["Retry-After"].is_object(),
                        "{at}"
                    );
                }
                let body = op["requestBody"]["content"].as_object();
                if body.is_some_and(|c| {
                    c.keys()
                        .any(|k| k.starts_with("image/") || k.starts_with("audio/"))
                }) {
                    engine += 1;
                    let unavailable = &responses["503"];
                    assert!(unavailable["headers"]["Retry-After"].is_object(), "{at}");
                    assert!(
                        unavailable["description"]
                            .as_str()
                            .is_some_and(|d| d.contains("`overloaded`")),
                        "{at}"
                    );
                }
                assert!(responses["503"].is_object(), "{at}");
            }
        }
        assert!(
            keyed > 30 && engine >= 5,
            "{keyed} keyed, {engine} with images"
        );
    }
}
