//! The active liveness check: a random sequence of actions, judged from what each frame shows.
//!
//! A frame gives head pose and eye state ([`crate::pad::FrameSignals`]), the passive score and,
//! for frames facing the camera, an embedding. [`judge`] decides whether a sequence of frames
//! performs the asked actions, in the asked order, by one and the same live face:
//! - **actions**: a turn or a look up is the head's angle (smoothed over 3 frames) moving past
//!   [`Rules::turn_deg`] / [`Rules::up_deg`] from where it mostly is, for at least two frames; a
//!   blink is the eyes closed (probability ≥ [`Rules::closed`]) for at most
//!   [`Rules::max_blink_s`] with open frames just before and after. The movements seen must
//!   begin with the asked ones in the asked order (a repeat is fine, another movement before
//!   the last asked one is not), and each asked blink must fall in its slot; blinks not asked
//!   are ignored (people blink).
//! - **same face**: at least 80% of the frames facing the camera match the first one (cosine
//!   ≥ [`Rules::same_face`]), and no frame shows more than one face;
//! - **timing**: enough frames with a face, times increasing, all within the deadline;
//! - **passive**: the median passive score of the frames is at or above the threshold.

use serde::Serialize;

use crate::pad::{ChallengeModels, FrameSignals, PassiveDetector};
use crate::{FaceEngine, FaceError};

/// One action of a challenge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Close and open the eyes.
    Blink,
    /// Turn the head to the person's left.
    TurnLeft,
    /// Turn the head to the person's right.
    TurnRight,
    /// Tilt the head back, looking up.
    LookUp,
}

impl Action {
    /// Parses `blink`, `left`, `right` or `up`.
    pub fn parse(text: &str) -> Option<Action> {
        match text.trim() {
            "blink" => Some(Action::Blink),
            "left" | "turn_left" => Some(Action::TurnLeft),
            "right" | "turn_right" => Some(Action::TurnRight),
            "up" | "look_up" => Some(Action::LookUp),
            _ => None,
        }
    }

    /// Parses a comma-separated list.
    pub fn parse_list(text: &str) -> Result<Vec<Action>, String> {
        text.split(',')
            .map(|a| {
                Action::parse(a)
                    .ok_or_else(|| format!("{a:?}: an action is blink, left, right or up"))
            })
            .collect()
    }

    /// The plain-words instruction.
    pub fn instruction(self) -> &'static str {
        match self {
            Action::Blink => "Blink",
            Action::TurnLeft => "Turn your head to your left",
            Action::TurnRight => "Turn your head to your right",
            Action::LookUp => "Look up",
        }
    }
}

/// What one frame showed.
#[derive(Clone, Debug, Default)]
pub struct Frame {
    /// Seconds since the first frame.
    pub t: f32,
    /// Faces found (only a frame with exactly one counts).
    pub faces: usize,
    /// Pose and eyes of the face, when there was one.
    pub signals: Option<FrameSignals>,
    /// The passive score of the face, when computed.
    pub passive: Option<f32>,
    /// The face's embedding, when computed (frames facing the camera).
    pub embedding: Option<Vec<f32>>,
}

/// The thresholds of [`judge`].
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Rules {
    /// Degrees of yaw from the start that make a turn.
    pub turn_deg: f32,
    /// Degrees of pitch from the start that make a look up.
    pub up_deg: f32,
    /// Eye-closed probability that makes a closed frame.
    pub closed: f32,
    /// Eye-closed probability under which a frame is open.
    pub open: f32,
    /// The longest a blink may keep the eyes closed (seconds).
    pub max_blink_s: f32,
    /// The least cosine between the first frontal frame's embedding and every other's.
    pub same_face: f32,
    /// The least number of frames with exactly one face.
    pub min_frames: usize,
    /// The passive threshold (the profile's).
    pub passive: f32,
    /// The deadline: the frames must span at most this many seconds (`None`: no limit).
    pub deadline_s: Option<f32>,
    /// Which way a turn to the person's left moves the pose model's yaw: +1 or -1.
    pub left_sign: f32,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            turn_deg: 12.0,
            up_deg: 12.0,
            closed: 0.7,
            open: 0.4,
            max_blink_s: 0.8,
            same_face: 0.45,
            min_frames: 6,
            passive: crate::pad::FACEPLUGIN_THRESHOLD,
            deadline_s: Some(6.0),
            left_sign: LEFT_SIGN,
        }
    }
}

/// Which way the pose model's yaw moves when the person turns to their own left, in frames that
/// are mirror images (as a selfie camera shows, and the kiosk sends, them): down. (In a mirror
/// image, a head turned to the person's left points to the picture's left.)
pub const LEFT_SIGN: f32 = -1.0;

/// An action seen, and when.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Event {
    /// What.
    pub action: Action,
    /// When it began (seconds).
    pub t: f32,
}

/// Which checks passed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Checks {
    /// The actions, in order.
    pub actions: bool,
    /// One face, the same throughout.
    pub same_face: bool,
    /// Enough frames, in time.
    pub timing: bool,
    /// The passive check.
    pub passive: bool,
}

/// The judgement.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// All checks passed.
    pub pass: bool,
    /// Each check.
    pub checks: Checks,
    /// The actions seen, in order.
    pub events: Vec<Event>,
    /// The median passive score.
    pub passive_median: f32,
    /// Why it failed, in words.
    pub reasons: Vec<String>,
}

fn median(mut v: Vec<f32>) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

/// A 3-frame running median (the pose model jitters by several degrees from frame to frame,
/// more on a masked face).
fn smooth(v: &[f32]) -> Vec<f32> {
    (0..v.len())
        .map(|i| {
            let lo = i.saturating_sub(1);
            let hi = (i + 2).min(v.len());
            median(v[lo..hi].to_vec())
        })
        .collect()
}

/// The turns, looks and blinks in `frames` (those with one face).
pub fn events(frames: &[(f32, FrameSignals)], rules: &Rules) -> Vec<Event> {
    let mut out = Vec::new();
    if frames.len() < 3 {
        return out;
    }
    // Angles relative to where the head mostly is (the median over the burst: a person asked to
    // turn spends most of the time facing the camera), smoothed.
    let yaw = smooth(&frames.iter().map(|(_, s)| s.yaw).collect::<Vec<_>>());
    let pitch = smooth(&frames.iter().map(|(_, s)| s.pitch).collect::<Vec<_>>());
    let (base_yaw, base_pitch) = (median(yaw.clone()), median(pitch.clone()));
    let state = |i: usize| {
        let y = (yaw[i] - base_yaw) * rules.left_sign;
        let p = pitch[i] - base_pitch;
        if p >= rules.up_deg && p > y.abs() {
            Some(Action::LookUp)
        } else if y >= rules.turn_deg {
            Some(Action::TurnLeft)
        } else if y <= -rules.turn_deg {
            Some(Action::TurnRight)
        } else {
            None
        }
    };
    // A movement is a state held for two frames; it must go back to neutral (or another
    // movement) before it counts again.
    let mut current: Option<Action> = None;
    for i in 1..frames.len() {
        let (a, b) = (state(i - 1), state(i));
        if a.is_some() && a == b && current != a {
            if let Some(action) = a {
                out.push(Event {
                    action,
                    t: frames[i - 1].0,
                });
            }
            current = a;
        } else if a.is_none() && b.is_none() {
            current = None;
        }
    }
    // Blinks: a short run of closed frames (probability ≥ `closed`) with an open frame
    // (probability < `open`) shortly before and after; a long closure (looking down, eyes
    // shut) is not a blink.
    let mut i = 0;
    while i < frames.len() {
        if frames[i].1.eyes_closed < rules.closed {
            i += 1;
            continue;
        }
        let begin = i;
        while i < frames.len() && frames[i].1.eyes_closed >= rules.closed {
            i += 1;
        }
        let end = i - 1;
        let (t0, t1) = (frames[begin].0, frames[end].0);
        let near = rules.max_blink_s / 2.0;
        let open_before = frames[..begin]
            .iter()
            .rev()
            .take_while(|(t, _)| t0 - t <= near)
            .any(|(_, s)| s.eyes_closed < rules.open);
        let open_after = frames[end + 1..]
            .iter()
            .take_while(|(t, _)| t - t1 <= near)
            .any(|(_, s)| s.eyes_closed < rules.open);
        if open_before && open_after && t1 - t0 <= rules.max_blink_s {
            out.push(Event {
                action: Action::Blink,
                t: t0,
            });
        }
    }
    out.sort_by(|a, b| a.t.total_cmp(&b.t));
    out
}

/// Whether `seen` performs `asked` in order. The movements (turns, looks) seen must begin with
/// the asked ones in the asked order: a movement repeated is fine (people overshoot), another
/// movement before the last asked one is not, and anything after it is. Each asked blink must
/// fall after the previous asked movement began and before the next one begins; blinks not
/// asked are ignored.
pub fn in_order(asked: &[Action], seen: &[Event]) -> bool {
    let asked_moves: Vec<Action> = asked
        .iter()
        .copied()
        .filter(|a| *a != Action::Blink)
        .collect();
    let mut at = Vec::with_capacity(asked_moves.len());
    for e in seen.iter().filter(|e| e.action != Action::Blink) {
        let k = at.len();
        if k < asked_moves.len() && e.action == asked_moves[k] {
            at.push(e.t);
        } else if k > 0 && k < asked_moves.len() && e.action == asked_moves[k - 1] {
            // the same movement again, before the next asked one
        } else if k < asked_moves.len() {
            return false;
        }
    }
    if at.len() < asked_moves.len() {
        return false;
    }
    // Blinks: in their slot between the asked movements around them.
    let (mut moves_before, mut after) = (0usize, f32::NEG_INFINITY);
    for a in asked {
        if *a == Action::Blink {
            let before = at.get(moves_before).copied().unwrap_or(f32::INFINITY);
            match seen
                .iter()
                .find(|e| e.action == Action::Blink && e.t > after && e.t < before)
            {
                Some(e) => after = e.t,
                None => return false,
            }
        } else {
            after = after.max(at[moves_before]);
            moves_before += 1;
        }
    }
    true
}

/// What a frame shows: how many faces, and the largest one's signals, passive score and (when
/// it faces the camera) embedding.
pub fn observe(
    engine: &FaceEngine,
    passive: &PassiveDetector,
    models: &ChallengeModels,
    img: &image::RgbImage,
    t: f32,
) -> Result<Frame, FaceError> {
    let faces = engine.detect(img)?;
    let Some(det) = faces
        .iter()
        .max_by(|a, b| a.area().total_cmp(&b.area()))
        .cloned()
    else {
        return Ok(Frame {
            t,
            ..Frame::default()
        });
    };
    let signals = models.signals(img, &det)?;
    let embedding = if signals.yaw.abs() < 15.0 && signals.pitch.abs() < 20.0 {
        let aligned = engine.align(img, &det)?;
        Some(engine.embed_aligned(&aligned)?.0.clone())
    } else {
        None
    };
    Ok(Frame {
        t,
        faces: faces.len(),
        signals: Some(signals),
        passive: Some(passive.score(img, &det)?),
        embedding,
    })
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Judges `frames` against `asked`.
pub fn judge(frames: &[Frame], asked: &[Action], rules: &Rules) -> Verdict {
    let mut reasons = Vec::new();
    let one_face: Vec<&Frame> = frames
        .iter()
        .filter(|f| f.faces == 1 && f.signals.is_some())
        .collect();
    let sig: Vec<(f32, FrameSignals)> = one_face
        .iter()
        .filter_map(|f| f.signals.map(|s| (f.t, s)))
        .collect();
    let seen = events(&sig, rules);
    let actions = in_order(asked, &seen);
    if !actions {
        reasons.push(format!(
            "asked {:?}, saw {:?}",
            asked,
            seen.iter().map(|e| e.action).collect::<Vec<_>>()
        ));
    }
    let several = frames.iter().any(|f| f.faces > 1);
    let embeddings: Vec<&Vec<f32>> = one_face
        .iter()
        .filter_map(|f| f.embedding.as_ref())
        .collect();
    // Every frame facing the camera is compared with the first; a few may be spoiled (motion
    // blur, a face half out of the picture), so 80% of them must match.
    let matching = embeddings
        .iter()
        .filter(|e| cosine(embeddings[0], e) >= rules.same_face)
        .count();
    let same = !several && embeddings.len() >= 2 && matching * 5 >= embeddings.len() * 4;
    if !same {
        reasons.push(if several {
            "more than one face in a frame".to_string()
        } else if embeddings.len() < 2 {
            "too few frames facing the camera to compare".to_string()
        } else {
            "the face changed between frames".to_string()
        });
    }
    let increasing = frames.windows(2).all(|w| w[1].t > w[0].t);
    let span = frames.last().map_or(0.0, |f| f.t) - frames.first().map_or(0.0, |f| f.t);
    let timing = one_face.len() >= rules.min_frames
        && increasing
        && rules.deadline_s.is_none_or(|d| span <= d);
    if !timing {
        reasons.push(format!(
            "{} frames with one face over {span:.1} s (need {} within {})",
            one_face.len(),
            rules.min_frames,
            rules
                .deadline_s
                .map_or("any time".into(), |d| format!("{d} s"))
        ));
    }
    let passive_median = median(one_face.iter().filter_map(|f| f.passive).collect());
    let passive = passive_median >= rules.passive;
    if !passive {
        reasons.push(format!(
            "passive check: median {passive_median:.2} under {:.2}",
            rules.passive
        ));
    }
    let checks = Checks {
        actions,
        same_face: same,
        timing,
        passive,
    };
    Verdict {
        pass: actions && same && timing && passive,
        checks,
        events: seen,
        passive_median,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(yaw: f32, pitch: f32, closed: f32) -> FrameSignals {
        FrameSignals {
            yaw,
            pitch,
            roll: 0.0,
            eyes_closed: closed,
        }
    }

    /// 10 fps frames from (yaw, pitch, closed) triples.
    fn frames(s: &[(f32, f32, f32)]) -> Vec<(f32, FrameSignals)> {
        s.iter()
            .enumerate()
            .map(|(i, &(y, p, c))| (i as f32 / 10.0, sig(y, p, c)))
            .collect()
    }

    fn actions(seen: &[Event]) -> Vec<Action> {
        seen.iter().map(|e| e.action).collect()
    }

    #[test]
    fn turns_looks_and_blinks_are_seen_in_order() {
        let rules = Rules::default();
        // The yaw of a turn to the person's left, and to the right.
        let left = 25.0 * rules.left_sign;
        let right = -left;
        let mut s = vec![(0.0, 0.0, 0.0); 5];
        s.extend([(0.0, 0.0, 0.9), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)]); // a blink
        s.extend([(left, 0.0, 0.0); 4]);
        s.extend([(0.0, 0.0, 0.0); 4]);
        s.extend([(right, 0.0, 0.0); 4]);
        s.extend([(0.0, 0.0, 0.0); 4]);
        s.extend([(0.0, 25.0, 0.0); 3]);
        s.extend([(0.0, 0.0, 0.0); 4]);
        let seen = events(&frames(&s), &rules);
        assert_eq!(
            actions(&seen),
            [
                Action::Blink,
                Action::TurnLeft,
                Action::TurnRight,
                Action::LookUp
            ]
        );
        use Action::*;
        assert!(in_order(&[Blink, TurnLeft, TurnRight], &seen));
        assert!(
            !in_order(&[TurnLeft, LookUp], &seen),
            "another movement between"
        );
        assert!(
            in_order(&[TurnLeft], &seen),
            "movements after the last asked one are fine"
        );
        assert!(in_order(&[Blink, TurnLeft, TurnRight, LookUp], &seen));
        assert!(!in_order(&[TurnRight, TurnLeft], &seen), "the wrong order");
        assert!(
            !in_order(&[TurnLeft, Blink], &seen),
            "no blink after the left turn"
        );
        assert!(!in_order(&[LookUp, TurnLeft], &seen));
    }

    #[test]
    fn a_long_closure_is_not_a_blink_and_jitter_is_not_a_turn() {
        let rules = Rules::default();
        // Eyes shut for 1.5 s, then open: not a blink.
        let mut s = vec![(0.0, 0.0, 0.0); 3];
        s.extend([(0.0, 0.0, 0.9); 15]);
        s.extend([(0.0, 0.0, 0.0); 3]);
        // Single-frame jumps of the pose model: smoothed away.
        s.extend([
            (30.0, 0.0, 0.0),
            (0.0, 0.0, 0.0),
            (-30.0, 0.0, 0.0),
            (0.0, 0.0, 0.0),
        ]);
        assert!(events(&frames(&s), &rules).is_empty());
    }

    #[test]
    fn the_verdict_needs_every_check() {
        let rules = Rules::default();
        let emb = |x: f32| {
            let mut v = vec![0.0f32; 4];
            v[0] = x;
            v[1] = (1.0 - x * x).max(0.0).sqrt();
            v
        };
        let make = |closed: &[f32], passive: f32, faces: usize, other_face: bool| -> Vec<Frame> {
            closed
                .iter()
                .enumerate()
                .map(|(i, &c)| Frame {
                    t: i as f32 / 10.0,
                    faces,
                    signals: Some(sig(0.0, 0.0, c)),
                    passive: Some(passive),
                    embedding: Some(emb(if other_face && i >= closed.len() / 3 {
                        0.0
                    } else {
                        1.0
                    })),
                })
                .collect()
        };
        let blink = [0.0, 0.0, 0.0, 0.9, 0.0, 0.0, 0.0, 0.0];
        let ok = judge(&make(&blink, 0.9, 1, false), &[Action::Blink], &rules);
        assert!(ok.pass, "{ok:?}");
        let v = judge(&make(&blink, 0.1, 1, false), &[Action::Blink], &rules);
        assert!(!v.pass && !v.checks.passive && v.checks.actions);
        let v = judge(&make(&blink, 0.9, 2, false), &[Action::Blink], &rules);
        assert!(!v.pass && !v.checks.same_face, "two faces");
        let v = judge(&make(&blink, 0.9, 1, true), &[Action::Blink], &rules);
        assert!(!v.pass && !v.checks.same_face, "the face changed");
        let v = judge(&make(&[0.0; 8], 0.9, 1, false), &[Action::Blink], &rules);
        assert!(!v.pass && !v.checks.actions, "no blink");
        let slow = Rules {
            deadline_s: Some(0.5),
            ..rules
        };
        let v = judge(&make(&blink, 0.9, 1, false), &[Action::Blink], &slow);
        assert!(!v.pass && !v.checks.timing, "past the deadline");
    }
}
