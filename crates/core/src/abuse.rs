//! Abuse detection: behaviour rules that suspend a key at once, with an audit entry and an
//! alert, while it is still being used.
//!
//! The rules read the key's own history in the audit log (so every node sees the same), and
//! run where the behaviour shows:
//! - **many distinct subjects read**: at each request of an admin or operator key, the distinct
//!   records it read in the last hour against `max(floor, factor × its own baseline)`, the
//!   baseline being its distinct reads per active hour over the previous week;
//! - **burst**: at each request, its actions in the last minute against `max(floor, factor ×
//!   its average per minute over the last day)`;
//! - **new network**: at each request of an operator or device key, whether its network
//!   (IPv4 /24, IPv6 /48) is one it was used from before (the first one is learnt);
//! - **identify outside hours**: an operator key's 1:N search outside the configured hours;
//! - **credential guessing**: a key's failed card/PIN decisions reaching the limit.
//!
//! Only an admin can reinstate a suspended key (`key.reinstate`, also in the log).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::actions::access::{FAILURE_WINDOW_SECS, MAX_FAILURES_PER_KEY};
use crate::audit::{self, Record, System};
use crate::core::now;
use crate::store::{self, Conn};
use crate::{Core, CoreError, Principal, Role};

/// The rules' thresholds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbuseRules {
    /// Distinct subject records an admin or operator key may read in an hour, at least.
    pub distinct_reads_floor: i64,
    /// … or this many times its own baseline, when that is more.
    pub distinct_reads_factor: i64,
    /// Actions one key may make in a minute, at least.
    pub burst_floor: i64,
    /// … or this many times its average per minute over the last day, when that is more.
    pub burst_factor: i64,
    /// The UTC hours `[start, end)` in which operator keys may identify; `None`: any time.
    pub operator_hours: Option<(u32, u32)>,
    /// Failed card/PIN decisions in the failure window that suspend a key.
    pub credential_failures: i64,
    /// Suspend operator and device keys used from a network they were not used from before.
    pub new_network: bool,
}

impl Default for AbuseRules {
    fn default() -> Self {
        AbuseRules {
            distinct_reads_floor: 20,
            distinct_reads_factor: 4,
            burst_floor: 600,
            burst_factor: 10,
            operator_hours: None,
            credential_failures: MAX_FAILURES_PER_KEY,
            new_network: true,
        }
    }
}

/// Sent when a rule suspends a key (the server posts it to the alert webhook).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Alert {
    /// Always `key.suspended`.
    pub event: &'static str,
    /// The tenant.
    pub tenant: String,
    /// The key's id.
    pub key: String,
    /// Its role.
    pub role: &'static str,
    /// The rule: `many_subjects_read`, `burst`, `new_network`, `identify_outside_hours`,
    /// `credential_guessing`.
    pub rule: &'static str,
    /// Unix seconds.
    pub at: i64,
    /// The suspension's entry in the tenant's audit log.
    pub audit_index: u64,
}

/// A key's baselines, recomputed every ten minutes.
#[derive(Clone, Copy)]
struct Baseline {
    at: i64,
    per_minute: i64,
    reads_per_hour: i64,
}

const BASELINE_TTL: i64 = 600;

/// The per-core state of the rules: thresholds, cached baselines, the alert channel.
pub(crate) struct Guard {
    pub(crate) rules: AbuseRules,
    baselines: Mutex<HashMap<String, Baseline>>,
    alerts: Mutex<Option<tokio::sync::mpsc::UnboundedSender<Alert>>>,
}

impl Guard {
    pub(crate) fn new(rules: AbuseRules) -> Guard {
        Guard {
            rules,
            baselines: Mutex::new(HashMap::new()),
            alerts: Mutex::new(None),
        }
    }
}

/// A client's network: IPv4 /24, IPv6 /48.
pub fn network_of(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => network_of(std::net::IpAddr::V4(v4)),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
            }
        },
    }
}

impl Core {
    /// Replaces the abuse rules' thresholds.
    pub fn set_abuse_rules(&mut self, rules: AbuseRules) {
        self.guard = Guard::new(rules);
    }

    /// The alerts of suspensions from now on (one receiver; a new call replaces it).
    pub fn subscribe_alerts(&self) -> tokio::sync::mpsc::UnboundedReceiver<Alert> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        if let Ok(mut a) = self.guard.alerts.lock() {
            *a = Some(tx);
        }
        rx
    }

    /// [`authenticate`](Self::authenticate), then the per-request rules for a request from
    /// `network` (when known): a key that trips one is suspended now and this request refused
    /// with `key_suspended`.
    pub async fn authenticate_request(
        &self,
        key: &str,
        network: Option<&str>,
    ) -> Result<Principal, CoreError> {
        let p = self.authenticate(key).await?;
        if let Some(rule) = self.request_rules(&p, network).await? {
            self.suspend(&p, rule).await?;
            return Err(CoreError::KeySuspended);
        }
        Ok(p)
    }

    async fn request_rules(
        &self,
        p: &Principal,
        network: Option<&str>,
    ) -> Result<Option<&'static str>, CoreError> {
        let rules = &self.guard.rules;
        let t = now();
        let mut c = self.db.pool().acquire().await?;
        if let (true, Some(net), Role::Operator | Role::Device) =
            (rules.new_network, network, p.role)
        {
            let known = store::abuse::networks(&mut c, &p.tenant, &p.key).await?;
            if !known.iter().any(|n| n == net) {
                store::abuse::add_network(&mut c, &p.tenant, &p.key, net, t).await?;
                if !known.is_empty() {
                    return Ok(Some("new_network"));
                }
            }
        }
        // Behaviour before a reinstatement is forgiven: an admin looked at it.
        // (Times are whole seconds: what happened in the second of the reinstatement is
        // forgiven too.)
        let from = |since: i64| since.max(p.reinstated_at.map_or(i64::MIN, |r| r + 1));
        let base = self.baseline(&mut c, p, t).await?;
        // Each count stops at its limit: a request costs at most that many index rows, however
        // busy the key.
        let burst = rules.burst_floor.max(rules.burst_factor * base.per_minute);
        let recent =
            store::abuse::actions_between(&mut c, &p.tenant, &p.key, from(t - 60), t + 1, burst)
                .await?;
        if recent >= burst {
            return Ok(Some("burst"));
        }
        if matches!(p.role, Role::Admin | Role::Operator) {
            let limit = rules
                .distinct_reads_floor
                .max(rules.distinct_reads_factor * base.reads_per_hour);
            let reads = store::abuse::distinct_reads_capped(
                &mut c,
                &p.tenant,
                &p.key,
                from(t - 3600),
                t + 1,
                limit,
            )
            .await?;
            if reads >= limit {
                return Ok(Some("many_subjects_read"));
            }
        }
        Ok(None)
    }

    async fn baseline(&self, c: &mut Conn, p: &Principal, t: i64) -> Result<Baseline, CoreError> {
        let cached = self
            .guard
            .baselines
            .lock()
            .ok()
            .and_then(|m| m.get(&p.key).copied());
        if let Some(b) = cached.filter(|b| t - b.at < BASELINE_TTL) {
            return Ok(b);
        }
        let day = store::abuse::actions_between(c, &p.tenant, &p.key, t - 86_400, t - 60, i64::MAX)
            .await?;
        let (reads, hours) =
            store::abuse::distinct_reads_between(c, &p.tenant, &p.key, t - 7 * 86_400, t - 3600)
                .await?;
        let b = Baseline {
            at: t,
            per_minute: day / 1440,
            reads_per_hour: if hours > 0 { reads / hours } else { 0 },
        };
        if let Ok(mut m) = self.guard.baselines.lock() {
            if m.len() > 100_000 {
                m.retain(|_, v| t - v.at < BASELINE_TTL);
            }
            m.insert(p.key.clone(), b);
        }
        Ok(b)
    }

    /// Whether an operator key may identify now (the configured hours).
    pub(crate) async fn check_identify_hours(&self, p: &Principal) -> Result<(), CoreError> {
        let Some((start, end)) = self.guard.rules.operator_hours else {
            return Ok(());
        };
        if p.role != Role::Operator {
            return Ok(());
        }
        let hour = u32::try_from(now().rem_euclid(86_400) / 3600).unwrap_or(0);
        let inside = if start <= end {
            (start..end).contains(&hour)
        } else {
            hour >= start || hour < end
        };
        if inside {
            return Ok(());
        }
        self.suspend(p, "identify_outside_hours").await?;
        Err(CoreError::KeySuspended)
    }

    /// After a failed card/PIN decision (inside its transaction): suspends the key when its
    /// failures in the window reached the limit. Returns the alert to send after commit.
    pub(crate) async fn check_credential_failures(
        &self,
        c: &mut Conn,
        p: &Principal,
    ) -> Result<Option<Alert>, CoreError> {
        let since = (now() - FAILURE_WINDOW_SECS).max(p.reinstated_at.map_or(i64::MIN, |r| r + 1));
        let failures =
            store::credential_failures::by_key_since(c, &p.tenant, &p.key, since).await?;
        if failures < self.guard.rules.credential_failures {
            return Ok(None);
        }
        suspend_in(c, p, "credential_guessing").await
    }

    /// Suspends the caller's key in a transaction of its own and sends the alert.
    async fn suspend(&self, p: &Principal, rule: &'static str) -> Result<(), CoreError> {
        let mut tx = self.db.begin_write().await?;
        let alert = suspend_in(&mut tx, p, rule).await?;
        tx.commit().await?;
        if let Some(a) = alert {
            self.send_alert(a);
        }
        Ok(())
    }

    /// Hands an alert to the subscriber, if any (after the suspension committed).
    pub(crate) fn send_alert(&self, alert: Alert) {
        if let Ok(a) = self.guard.alerts.lock() {
            if let Some(tx) = a.as_ref() {
                let _ = tx.send(alert);
            }
        }
    }
}

/// Suspends `p`'s key inside `c` with an audit entry by the rules; the alert to send once
/// committed, or `None` when it was suspended already.
async fn suspend_in(
    c: &mut Conn,
    p: &Principal,
    rule: &'static str,
) -> Result<Option<Alert>, CoreError> {
    let t = now();
    if !store::keys::suspend(c, &p.tenant, &p.key, t, rule).await? {
        return Ok(None);
    }
    let r = Record {
        action: "key.suspend",
        target: Some(&p.key),
        outcome: "suspended",
        detail: Some(format!("rule={rule} role={}", p.role.as_str())),
    };
    let index = audit::record_system(c, &p.tenant, System::AbuseRules, r).await?;
    Ok(Some(Alert {
        event: "key.suspended",
        tenant: p.tenant.clone(),
        key: p.key.clone(),
        role: p.role.as_str(),
        rule,
        at: t,
        audit_index: index,
    }))
}
