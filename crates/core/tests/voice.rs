//! Voice in the core: enrolment into the vault beside the face, the modality policy, 1:1 with
//! the voice alone and with the face, 1:N with the face and the voice, the re-key and the
//! deletion. On the real models, real speech (LibriSpeech fixtures) and both real databases.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use consentry_core::{Core, CoreError, Keyring, Modality, Probes, Purpose};
use consentry_db::Db;
use consentry_testkit::{engine, photo, voice_clip, voice_engine, Scratch};

fn code(r: Result<impl std::fmt::Debug, CoreError>) -> String {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => consentry_types::HasErrorCode::code(&e).as_str().to_string(),
    }
}

fn probes(image: Option<&str>, audio: Option<&str>) -> Probes {
    Probes {
        image: image.map(photo),
        audio: audio.map(voice_clip),
    }
}

/// The same speaker as the enrolled recording (1688-142285-0004), and another.
const SAME: &str = "1688-142285-0005.flac";
const OTHER: &str = "2033-164914-0004.flac";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voices_are_enrolled_compared_fused_and_shredded_as_the_policy_says() {
    let scratch = Scratch::new("core_voice").await;
    for url in scratch.backends() {
        let db = Db::open(&url).await.unwrap();
        let keys = Keyring::open(&scratch.key_dir(&url.len().to_string()))
            .unwrap()
            .0;
        let mut core = Core::new(db, engine(), keys).await.unwrap();
        core.set_voice(voice_engine());
        let (tenant, key) = core.bootstrap_tenant("Voices").await.unwrap();
        let admin = core.authenticate(&key).await.unwrap();
        let s = core.create_subject(&admin).await.unwrap();
        let enrol = |purpose, clip| core.enrol_voice(&admin, &s, purpose, voice_clip(clip));

        // Consent first, as for the face; then the voice joins the vault.
        assert_eq!(
            code(enrol(Purpose::Verification, "1688-142285-0004.flac").await),
            "consent_required"
        );
        core.grant_consent(&admin, &s, Purpose::Verification, 30)
            .await
            .unwrap();
        enrol(Purpose::Verification, "1688-142285-0004.flac")
            .await
            .unwrap();
        assert_eq!(
            code(
                core.enrol_voice(&admin, &s, Purpose::Verification, photo("obama.jpg"))
                    .await
            ),
            "not_audio"
        );
        let view = core.subject(&admin, &s).await.unwrap();
        assert_eq!(
            (
                view.voice_templates,
                view.verification_templates,
                view.other_model_templates
            ),
            (1, 0, 0)
        );

        // The default policy is the face alone: a recording does not fit it.
        let verify = |p: Probes| core.verify_with(&admin, &s, p);
        assert_eq!(
            code(verify(probes(None, Some(SAME))).await),
            "modality_policy"
        );
        core.set_modality_policy(&admin, Purpose::Verification, Modality::Voice)
            .await
            .unwrap();
        let d = verify(probes(None, Some(SAME))).await.unwrap();
        assert!(d.allow && d.voice && !d.face, "{d:?}");
        assert_eq!(d.checks(), ["voice"]);
        assert!(!verify(probes(None, Some(OTHER))).await.unwrap().allow);
        assert_eq!(
            code(verify(probes(Some("obama2.jpg"), None)).await),
            "modality_policy"
        );
        // A liveness result is of a face: where the purpose needs one, a voice alone is refused.
        core.set_liveness_policy(&admin, Purpose::Verification, true)
            .await
            .unwrap();
        assert_eq!(
            code(verify(probes(None, Some(SAME))).await),
            "liveness_required"
        );
        core.set_liveness_policy(&admin, Purpose::Verification, false)
            .await
            .unwrap();
        // An unknown subject is a plain deny, after the same work.
        let nobody = core
            .verify_with(&admin, "0123456789abcdef", probes(None, Some(SAME)))
            .await
            .unwrap();
        assert!(!nobody.allow);

        // Face and voice: both are needed, and each must clear its floor.
        core.enrol_face(&admin, &s, Purpose::Verification, photo("obama.jpg"))
            .await
            .unwrap();
        core.set_modality_policy(&admin, Purpose::Verification, Modality::FaceAndVoice)
            .await
            .unwrap();
        let d = verify(probes(Some("obama2.jpg"), Some(SAME)))
            .await
            .unwrap();
        assert!(d.allow, "{d:?}");
        assert_eq!(d.checks(), ["face", "voice"]);
        assert!(
            !verify(probes(Some("obama2.jpg"), Some(OTHER)))
                .await
                .unwrap()
                .allow,
            "the right face does not carry another's voice"
        );
        assert!(
            !verify(probes(Some("biden.jpg"), Some(SAME)))
                .await
                .unwrap()
                .allow,
            "the right voice does not carry another's face"
        );
        assert_eq!(
            code(verify(probes(Some("obama2.jpg"), None)).await),
            "modality_policy"
        );

        // At a gate: a voice alone never searches the gallery; the face finds, the voice
        // confirms.
        assert_eq!(
            code(
                core.set_modality_policy(&admin, Purpose::Access, Modality::Voice)
                    .await
            ),
            "invalid_request"
        );
        core.grant_consent(&admin, &s, Purpose::Access, 30)
            .await
            .unwrap();
        core.enrol_face(&admin, &s, Purpose::Access, photo("obama.jpg"))
            .await
            .unwrap();
        core.set_modality_policy(&admin, Purpose::Access, Modality::FaceAndVoice)
            .await
            .unwrap();
        let at_gate = |p: Probes| core.identify_with(&admin, p);
        // No voice enrolled for access yet: the face alone does not open.
        let id = at_gate(probes(Some("obama2.jpg"), Some(SAME)))
            .await
            .unwrap();
        assert!(!id.allow, "{id:?}");
        enrol(Purpose::Access, "1688-142285-0004.flac")
            .await
            .unwrap();
        let id = at_gate(probes(Some("obama2.jpg"), Some(SAME)))
            .await
            .unwrap();
        assert_eq!(id.subject.as_deref(), Some(s.as_str()));
        assert!(
            !at_gate(probes(Some("obama2.jpg"), Some(OTHER)))
                .await
                .unwrap()
                .allow
        );
        assert_eq!(
            code(at_gate(probes(Some("obama2.jpg"), None)).await),
            "modality_policy"
        );

        // A re-key moves the voice templates too (each in the transform of its length).
        let (_, moved) = core.rekey_transform(&tenant).await.unwrap();
        assert_eq!(moved, 4);
        core.set_modality_policy(&admin, Purpose::Verification, Modality::FaceOrVoice)
            .await
            .unwrap();
        assert!(verify(probes(None, Some(SAME))).await.unwrap().allow);
        assert!(
            verify(probes(Some("obama2.jpg"), Some(SAME)))
                .await
                .unwrap()
                .allow
        );

        // The log says what was done, never a score.
        let actions: Vec<String> = core
            .subject_accesses(&admin, &s, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|a| format!("{} {}", a.action, a.outcome))
            .collect();
        for want in [
            "enrol.voice ok",
            "verify.voice allow",
            "verify.voice deny",
            "verify.face_voice allow",
            "identify.face_voice allow",
        ] {
            assert!(actions.contains(&want.to_string()), "{want}: {actions:?}");
        }

        // Deleting the person destroys the voice with the face.
        core.delete_subject(&admin, &s).await.unwrap();
        assert!(!verify(probes(None, Some(SAME))).await.unwrap().allow);
    }
    scratch.finish().await;
}
