//! The UI's strings: one catalogue per language (`ui/i18n/<lang>.txt`, `key = value` lines,
//! `{0}`, `{1}` for arguments), embedded in the binary. English and Russian ship; the language
//! comes from the `lang` cookie (the switch), else the browser's `Accept-Language`, else
//! English. A key missing from a catalogue falls back to English, then to the key itself (the
//! catalogue test keeps both complete).

use std::collections::HashMap;
use std::sync::LazyLock;

/// A shipped language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lang {
    En,
    Ru,
}

impl Lang {
    pub(crate) const ALL: [Lang; 2] = [Lang::En, Lang::Ru];

    pub(crate) fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }

    /// The language's own name, for the switch.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Ru => "Русский",
        }
    }

    pub(crate) fn parse(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.code() == code)
    }

    /// The `lang` cookie's choice, else the first shipped language of `Accept-Language` (by
    /// its order; weights are rarely out of order in practice), else English.
    pub(crate) fn negotiate(cookie: Option<&str>, accept: Option<&str>) -> Lang {
        if let Some(l) = cookie.and_then(Lang::parse) {
            return l;
        }
        accept
            .into_iter()
            .flat_map(|a| a.split(','))
            .filter_map(|part| {
                let tag = part.split(';').next()?.trim().to_ascii_lowercase();
                Lang::parse(tag.split('-').next()?)
            })
            .next()
            .unwrap_or(Lang::En)
    }

    fn catalogue(self) -> &'static HashMap<&'static str, &'static str> {
        match self {
            Lang::En => &EN,
            Lang::Ru => &RU,
        }
    }

    /// The string for `key`.
    pub(crate) fn t(self, key: &str) -> &'static str {
        self.catalogue()
            .get(key)
            .or_else(|| EN.get(key))
            .copied()
            .unwrap_or("?")
    }

    /// The string for `key`, if the catalogues have one.
    pub(crate) fn get(self, key: &str) -> Option<&'static str> {
        self.catalogue().get(key).or_else(|| EN.get(key)).copied()
    }

    /// The string for `key` with `{0}`, `{1}`, … replaced by `args`.
    pub(crate) fn tf(self, key: &str, args: &[&str]) -> String {
        let mut s = self.t(key).to_string();
        for (i, a) in args.iter().enumerate() {
            s = s.replace(&format!("{{{i}}}"), a);
        }
        s
    }

    /// Every string whose key starts with `prefix`, as a JSON object (for the kiosk's script).
    pub(crate) fn json_with_prefix(self, prefix: &str) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        for key in EN.keys().filter(|k| k.starts_with(prefix)) {
            out.insert((*key).to_string(), self.t(key).into());
        }
        serde_json::Value::Object(out)
    }
}

pub(crate) const EN_TEXT: &str = include_str!("../../ui/i18n/en.txt");
pub(crate) const RU_TEXT: &str = include_str!("../../ui/i18n/ru.txt");

/// Parses a catalogue: `key = value` lines; blank lines and `#` comments skipped.
pub(crate) fn parse(text: &'static str) -> HashMap<&'static str, &'static str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

static EN: LazyLock<HashMap<&'static str, &'static str>> = LazyLock::new(|| parse(EN_TEXT));
static RU: LazyLock<HashMap<&'static str, &'static str>> = LazyLock::new(|| parse(RU_TEXT));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogues_have_the_same_keys_and_every_line_parses() {
        for text in [EN_TEXT, RU_TEXT] {
            for line in text.lines().map(str::trim) {
                assert!(
                    line.is_empty() || line.starts_with('#') || line.contains(" = "),
                    "unparsable catalogue line: {line}"
                );
            }
        }
        let en: std::collections::BTreeSet<_> = EN.keys().collect();
        let ru: std::collections::BTreeSet<_> = RU.keys().collect();
        let missing: Vec<_> = en.difference(&ru).collect();
        let extra: Vec<_> = ru.difference(&en).collect();
        assert!(missing.is_empty(), "missing in ru: {missing:?}");
        assert!(extra.is_empty(), "only in ru: {extra:?}");
        // Same placeholders on both sides.
        for key in en {
            for i in 0..4 {
                let p = format!("{{{i}}}");
                assert_eq!(
                    EN[*key].contains(&p),
                    RU[*key].contains(&p),
                    "{key}: placeholder {p}"
                );
            }
        }
    }

    #[test]
    fn every_key_the_code_uses_is_in_the_catalogue() {
        // The pages and scripts name their keys as t("…") / tf("…") / T("…") / data-t; each
        // must exist (a typo would show "?").
        let sources = [
            include_str!("pages.rs"),
            include_str!("mod.rs"),
            include_str!("../../ui/kiosk.js"),
        ];
        let mut n = 0;
        for src in sources {
            for open in ["t(\"", "tf(\"", "T('"] {
                let close = if open.ends_with('\'') { '\'' } else { '"' };
                for (i, _) in src.match_indices(open) {
                    let rest = &src[i + open.len()..];
                    let key = &rest[..rest.find(close).unwrap()];
                    // A prefix joined with a value at run time (`T('kiosk.' + d)`) is checked
                    // by `keys_made_at_run_time_exist`.
                    let prefix = key.ends_with('_') || key.ends_with('.');
                    if key.contains('.') && !key.contains(' ') && !prefix {
                        assert!(EN.contains_key(key), "no string for {key}");
                        n += 1;
                    }
                }
            }
        }
        assert!(n > 50, "only {n} keys found: the scan is broken");
    }

    #[test]
    fn keys_made_at_run_time_exist() {
        // Keys the pages and the kiosk build from a value: every value they can take.
        let quality = [
            "no_face",
            "multiple_faces",
            "face_too_small",
            "face_cut_off",
            "face_turned",
            "too_blurry",
            "low_confidence",
        ];
        let mut keys: Vec<String> = Vec::new();
        for code in quality {
            keys.push(format!("kiosk.hint_{code}"));
            keys.push(format!("kiosk.code_{code}"));
        }
        for a in ["blink", "turn_left", "turn_right", "look_up"] {
            keys.push(format!("kiosk.do_{a}"));
        }
        for p in ["access", "verification"] {
            keys.push(format!("kiosk.consent_{p}"));
            keys.push(format!("kiosk.purpose_{p}"));
        }
        for p in ["access", "verification", "pass"] {
            keys.push(format!("purpose.{p}"));
        }
        for r in ["admin", "operator", "device", "auditor"] {
            keys.push(format!("role.{r}"));
        }
        for st in ["active", "expired", "revoked", "suspended"] {
            keys.push(format!("status.{st}"));
        }
        for c in ["card", "pin"] {
            keys.push(format!("credential.{c}"));
        }
        keys.extend(["kiosk.allow".into(), "kiosk.deny".into()]);
        for k in keys {
            assert!(EN.contains_key(k.as_str()), "no string for {k}");
        }
    }

    #[test]
    fn negotiation_prefers_the_cookie_then_the_browser() {
        assert_eq!(Lang::negotiate(Some("ru"), Some("en-GB")), Lang::Ru);
        assert_eq!(
            Lang::negotiate(None, Some("ru-RU,ru;q=0.9,en;q=0.8")),
            Lang::Ru
        );
        assert_eq!(Lang::negotiate(None, Some("de-DE,en;q=0.5")), Lang::En);
        assert_eq!(Lang::negotiate(Some("xx"), None), Lang::En);
    }
}
