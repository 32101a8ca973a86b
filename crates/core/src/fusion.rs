//! Score fusion of the face and the voice.
//!
//! A decision that has both compares the face probe with the subject's face templates and the
//! recording with its voice templates, and takes the two best cosines into one score: the
//! log-odds of a logistic model, `bias + face_weight·(f − t) + voice_weight·v`, where `f − t` is
//! the face cosine's margin over the face model's own threshold `t`, fitted on paired
//! development scores (docs/accuracy.md, "Face and voice together"; `bench/fusion.py`). The
//! pair is accepted when that score is at least zero.
//!
//! Under `face_and_voice` each modality must also clear its floor. A recording can be replayed
//! and has no liveness check, so the face's floor is its own threshold (a margin of 0): a stranger
//! holding the person's recorded voice still needs a face that would pass alone. The voice's
//! floor lets about one impostor voice in a hundred through, so a good face cannot carry a
//! voice that is plainly someone else's. Under `face_or_voice` the fused score alone decides
//! (either modality would do on its own there).

/// The fusion rule's constants.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fusion {
    /// Weight of the face cosine's margin over the face model's threshold.
    pub face_weight: f32,
    /// Weight of the voice cosine.
    pub voice_weight: f32,
    /// The constant term.
    pub bias: f32,
    /// The lowest voice cosine `face_and_voice` accepts.
    pub voice_floor: f32,
}

impl Fusion {
    /// The shipped rule, for SFace (YuNet-aligned, fp32 or int8) and CAM++ cosines.
    pub const DEFAULT: Fusion = Fusion {
        face_weight: 8.3904,
        voice_weight: 6.2772,
        bias: -4.1975,
        voice_floor: 0.6393,
    };

    /// The fused score (log-odds that the two are the subject's) of a face margin (the face
    /// cosine minus the face model's threshold) and a voice cosine.
    pub fn score(&self, face_margin: f32, voice: f32) -> f32 {
        self.bias + self.face_weight * face_margin + self.voice_weight * voice
    }

    /// The decision: the fused score at least zero, and, when `floors`, the face at least its
    /// threshold (`face_margin >= 0`) and the voice at least its floor.
    pub fn accept(&self, face_margin: f32, voice: f32, floors: bool) -> bool {
        self.score(face_margin, voice) >= 0.0
            && (!floors || (face_margin >= 0.0 && voice >= self.voice_floor))
    }
}

#[cfg(test)]
mod tests {
    use super::Fusion;

    #[test]
    fn the_shipped_rule_needs_both_under_and_and_lets_either_carry_under_or() {
        let f = Fusion::DEFAULT;
        // Both clearly the person's.
        assert!(f.accept(0.3, 0.8, true));
        // A replayed voice with a stranger's face (just under the face's threshold): the
        // fused score alone would let it through, the face's floor does not.
        assert!(f.score(-0.02, 0.9) >= 0.0);
        assert!(!f.accept(-0.02, 0.9, true));
        // A good face with a voice that is plainly someone else's.
        assert!(!f.accept(0.3, 0.5, true));
        // Under `or`, a strong face carries a weak voice.
        assert!(f.accept(0.3, 0.5, false));
        // Neither is the person's.
        assert!(!f.accept(-0.2, 0.5, false));
    }
}
