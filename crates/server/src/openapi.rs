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
    modifiers(&BearerAuth, &CommonResponses, &Links)
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
                // Answers every operation of a kind can give, added where the operation does
                // not already describe that status.
                let mut add = |status: &str, text: &str| {
                    responses.entry(status.into()).or_insert_with(|| {
                        ResponseBuilder::new()
                            .description(text)
                            .content("application/json", error())
                            .into()
                    });
                };
                let has_path_id = op.parameters.as_ref().is_some_and(|ps| {
                    ps.iter()
                        .any(|p| p.parameter_in == utoipa::openapi::path::ParameterIn::Path)
                });
                if has_path_id {
                    add("404", "`not_found`: no such resource in this key's tenant");
                }
                if keyed {
                    add(
                        "400",
                        "`invalid_request`: a malformed parameter, body or `X-Consentry-Purpose`",
                    );
                    add(
                        "401",
                        "`unauthorized`, `key_expired`, `key_revoked`: no valid key",
                    );
                    add(
                        "403",
                        "`forbidden`: the key's role may not; `key_suspended`",
                    );
                }
                if op.request_body.is_some() {
                    add("413", "`payload_too_large`: the body is over 10 MiB");
                }
                if engine {
                    add(
                        "415",
                        "`unsupported_format`, `unsupported_audio`: not a JPEG, PNG, WAV or FLAC",
                    );
                    add(
                        "422",
                        "a quality code: `no_face`, `multiple_faces`, `face_too_small`, `too_blurry`, `face_turned`, `low_confidence`, `face_cut_off`, `audio_too_short`",
                    );
                }
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
                    "`request_timeout`: the request took longer than the server's limit (its work still runs to its end); `storage_unavailable`: the database cannot be reached",
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

/// The document as served: utoipa 5.5 writes a link's `operationId` as `operation_id`, which
/// no OpenAPI tool reads, so it is renamed here.
pub fn document() -> serde_json::Value {
    let mut doc = serde_json::to_value(<ApiDoc as utoipa::OpenApi>::openapi())
        .unwrap_or(serde_json::Value::Null);
    let links = doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("responses").and_then(|r| r.as_object_mut()))
        .flat_map(|responses| responses.values_mut())
        .filter_map(|response| response.get_mut("links").and_then(|l| l.as_object_mut()))
        .flat_map(|links| links.values_mut())
        .filter_map(|link| link.as_object_mut());
    for link in links {
        if let Some(id) = link.remove("operation_id") {
            link.insert("operationId".into(), id);
        }
    }
    doc
}

/// OpenAPI links: which answer's ids feed which operations, so that a client (or a contract
/// tester's stateful phase) can follow the API from a new subject to its consents, templates,
/// credentials, passes and links, and from a new key, pass, link or challenge to what acts on
/// it.
struct Links;

impl utoipa::Modify for Links {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::link::LinkBuilder;
        use utoipa::openapi::RefOr;
        const SUBJECT: &str = "$response.body#/id";
        // The operations an answer feeds: (target operationId, [(parameter, value)]).
        type Targets<'a> = &'a [(&'a str, &'a [(&'a str, &'a str)])];
        // (path, method of the creating operation, what its 201 feeds).
        let links: &[(&str, &str, Targets)] = &[
            (
                "/api/v1/subjects",
                "post",
                &[
                    ("show_subject", &[("id", SUBJECT)]),
                    ("delete_subject", &[("id", SUBJECT)]),
                    ("grant_consent", &[("id", SUBJECT)]),
                    ("enrol_face", &[("id", SUBJECT)]),
                    ("enrol_voice", &[("id", SUBJECT)]),
                    ("add_credential", &[("id", SUBJECT)]),
                    ("issue_pass", &[("id", SUBJECT)]),
                    ("subject_token", &[("id", SUBJECT)]),
                    ("accesses", &[("id", SUBJECT)]),
                    ("verify_face", &[("subject", SUBJECT)]),
                    ("verify_voice", &[("subject", SUBJECT)]),
                ],
            ),
            (
                "/api/v1/subjects/{id}/consents",
                "post",
                &[(
                    "withdraw_consent",
                    &[
                        ("id", "$request.path.id"),
                        ("cid", "$response.body#/consent_id"),
                    ],
                )],
            ),
            (
                "/api/v1/keys",
                "post",
                &[
                    ("revoke_key", &[("id", "$response.body#/id")]),
                    ("rotate_key", &[("id", "$response.body#/id")]),
                ],
            ),
            (
                "/api/v1/subjects/{id}/passes",
                "post",
                &[
                    (
                        "qr_svg",
                        &[
                            ("id", "$request.path.id"),
                            ("pid", "$response.body#/pass_id"),
                        ],
                    ),
                    (
                        "qr_png",
                        &[
                            ("id", "$request.path.id"),
                            ("pid", "$response.body#/pass_id"),
                        ],
                    ),
                    (
                        "revoke_pass",
                        &[
                            ("id", "$request.path.id"),
                            ("pid", "$response.body#/pass_id"),
                        ],
                    ),
                ],
            ),
            (
                "/api/v1/links",
                "post",
                &[("use_link", &[("token", "$response.body#/token")])],
            ),
            (
                "/api/v1/liveness/challenges",
                "post",
                &[("answer", &[("nonce", "$response.body#/nonce")])],
            ),
        ];
        for (path, method, targets) in links {
            let Some(item) = openapi.paths.paths.get_mut(*path) else {
                continue;
            };
            let op = match *method {
                "post" => item.post.as_mut(),
                _ => None,
            };
            let Some(RefOr::T(created)) = op.and_then(|op| op.responses.responses.get_mut("201"))
            else {
                continue;
            };
            for (target, params) in *targets {
                let mut link = LinkBuilder::new().operation_id(*target);
                for (name, value) in *params {
                    link = link.parameter(*name, *value);
                }
                created
                    .links
                    .insert((*target).to_string(), link.build().into());
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
    /// Operation ids are unique (generated clients name their functions by them), and every
    /// link names an operation that exists and a parameter it has.
    #[test]
    fn operation_ids_are_unique_and_links_resolve() {
        let doc = super::document();
        let mut ops = std::collections::BTreeMap::new();
        for item in doc["paths"].as_object().expect("paths").values() {
            for op in item.as_object().expect("item").values() {
                let id = op["operationId"].as_str().expect("operationId").to_string();
                let params: Vec<String> = op["parameters"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .map(|p| p["name"].as_str().unwrap_or("").to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                assert!(
                    ops.insert(id.clone(), (op.clone(), params)).is_none(),
                    "{id} twice"
                );
            }
        }
        let mut links = 0;
        for (_, (op, _)) in ops.iter() {
            for response in op["responses"].as_object().expect("responses").values() {
                for link in response["links"]
                    .as_object()
                    .into_iter()
                    .flat_map(|l| l.values())
                {
                    let target = link["operationId"].as_str().expect("link target");
                    let (_, params) = ops.get(target).unwrap_or_else(|| panic!("{target}"));
                    for name in link["parameters"].as_object().expect("parameters").keys() {
                        assert!(params.contains(name), "{target} has no {name}");
                    }
                    links += 1;
                }
            }
        }
        // Every link the `Links` modifier adds was found and checked.
        assert!(links >= 19, "{links}");
    }

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
