//! Liveness in the core: a challenge answered once with a burst of frames, the token a pass
//! gives, and the tenant's policy that makes enrolment and verification need one. On the real
//! models and both real databases.
//!
//! The project may ship no video of a live person, so the passing burst here is made from a
//! sample photo: a few frames with the eyes painted over make a blink (the challenge is
//! restricted to blinks, as a site may restrict it). That the eye model takes painted eyes for
//! closed ones is itself why the passive check and the same-face check exist; the attacks
//! are measured in docs/liveness.md.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use consentry_core::{
    Core, CoreError, Keyring, LivenessFrame, LivenessModels, Principal, Purpose, Role,
};
use consentry_db::Db;
use consentry_face::challenge::Action;
use consentry_face::pad::{ChallengeModels, PadProfile, PassiveDetector};
use consentry_face::runtime::Assets;
use consentry_testkit::{engine, photo, Scratch};

/// [`consentry_testkit::blink_burst`] as the core's frames.
fn burst(name: &str, blink: bool) -> Vec<LivenessFrame> {
    consentry_testkit::blink_burst(name, blink)
        .into_iter()
        .map(|(t_ms, image)| LivenessFrame { t_ms, image })
        .collect()
}

fn code(r: Result<impl std::fmt::Debug, CoreError>) -> String {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => consentry_types::HasErrorCode::code(&e).as_str().to_string(),
    }
}

async fn token(core: &Core, p: &Principal, subject: &str) -> String {
    let c = core.liveness_challenge(p, subject).await.unwrap();
    assert_eq!(c.actions, [Action::Blink]);
    let r = core
        .liveness_answer(p, &c.nonce, burst("obama.jpg", true))
        .await
        .unwrap();
    assert!(r.pass, "{r:?}");
    r.token.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_liveness_token_is_needed_once_per_decision_for_the_same_face() {
    let scratch = Scratch::new("core_liveness").await;
    let assets = Assets::locate();
    for url in scratch.backends() {
        let db = Db::open(&url).await.unwrap();
        let keys = Keyring::open(&scratch.key_dir(&url.len().to_string()))
            .unwrap()
            .0;
        let mut core = Core::new(db, engine(), keys).await.unwrap();
        let models = LivenessModels {
            passive: PassiveDetector::load(&assets, &PadProfile::Faceplugin, 1).unwrap(),
            challenge: ChallengeModels::load(&assets, 1).unwrap(),
        };
        core.set_liveness(models, vec![Action::Blink]);
        let (_, key) = core.bootstrap_tenant("Service centre").await.unwrap();
        let admin = core.authenticate(&key).await.unwrap();
        let device_key = core.create_api_key(&admin, Role::Device).await.unwrap();
        let device = core.authenticate(&device_key).await.unwrap();
        let s = core.create_subject(&admin).await.unwrap();
        let t = core.create_subject(&admin).await.unwrap();
        for who in [&s, &t] {
            core.grant_consent(&admin, who, Purpose::Verification, 30)
                .await
                .unwrap();
        }
        core.set_liveness_policy(&admin, Purpose::Verification, true)
            .await
            .unwrap();

        // Enrolment needs a token of this face, for this subject.
        let enrol = core
            .enrol_face(&admin, &s, Purpose::Verification, photo("obama.jpg"))
            .await;
        assert_eq!(code(enrol), "liveness_required");
        let tok = token(&core, &admin, &s).await;
        let with = admin.clone().with_liveness(Some(&tok));
        core.enrol_face(&with, &s, Purpose::Verification, photo("obama.jpg"))
            .await
            .unwrap();

        // Verification: none, then one, then the same one again.
        assert_eq!(
            code(core.verify(&device, &s, photo("obama2.jpg")).await),
            "liveness_required"
        );
        let tok = token(&core, &device, &s).await;
        let with = device.clone().with_liveness(Some(&tok));
        let d = core.verify(&with, &s, photo("obama2.jpg")).await.unwrap();
        assert!(d.allow && d.liveness, "{d:?}");
        assert_eq!(
            code(core.verify(&with, &s, photo("obama2.jpg")).await),
            "liveness_required"
        );
        // A token is for its subject, its key and its face.
        let tok = token(&core, &device, &s).await;
        let with = device.clone().with_liveness(Some(&tok));
        assert_eq!(
            code(core.verify(&with, &t, photo("obama2.jpg")).await),
            "liveness_required"
        );
        let with_admin = admin.clone().with_liveness(Some(&tok));
        assert_eq!(
            code(core.verify(&with_admin, &s, photo("obama2.jpg")).await),
            "liveness_required"
        );
        let tok = token(&core, &device, &s).await;
        let with = device.clone().with_liveness(Some(&tok));
        assert_eq!(
            code(core.verify(&with, &s, photo("biden.jpg")).await),
            "liveness_required"
        );
        // A forged token.
        let forged = device.clone().with_liveness(Some("lt_00.99999999999.00"));
        assert_eq!(
            code(core.verify(&forged, &s, photo("obama2.jpg")).await),
            "liveness_required"
        );

        // The answer is taken once, by the key it was issued to.
        let c = core.liveness_challenge(&device, &s).await.unwrap();
        assert_eq!(
            code(
                core.liveness_answer(&admin, &c.nonce, burst("obama.jpg", true))
                    .await
            ),
            "challenge_expired"
        );
        let c = core.liveness_challenge(&device, &s).await.unwrap();
        let still = core
            .liveness_answer(&device, &c.nonce, burst("obama.jpg", false))
            .await
            .unwrap();
        assert!(
            !still.pass && !still.checks.actions && still.token.is_none(),
            "{still:?}"
        );
        assert_eq!(
            code(
                core.liveness_answer(&device, &c.nonce, burst("obama.jpg", true))
                    .await
            ),
            "challenge_expired"
        );
        // Frames out of order are refused before anything runs.
        let mut shuffled = burst("obama.jpg", true);
        shuffled.swap(1, 2);
        let c = core.liveness_challenge(&device, &s).await.unwrap();
        assert_eq!(
            code(core.liveness_answer(&device, &c.nonce, shuffled).await),
            "invalid_request"
        );

        // Without the policy, verification needs no token and says none ran.
        core.set_liveness_policy(&admin, Purpose::Verification, false)
            .await
            .unwrap();
        let d = core.verify(&device, &s, photo("obama2.jpg")).await.unwrap();
        assert!(d.allow && !d.liveness, "{d:?}");
        core.close().await;
    }
    scratch.finish().await;
}
