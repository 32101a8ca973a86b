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
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

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
}
