//! Per-key rate limits: a token bucket per key, its rate and burst set per role. Each node
//! keeps its own buckets (a key spread over N nodes gets up to N times the rate; the abuse
//! rules, which read the shared audit log, see its total).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use consentry_core::Role;

/// Requests per second and burst for one role.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: f64,
    /// Bucket size: requests allowed at once after a quiet spell.
    pub burst: f64,
}

/// The rate of each role.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimits {
    /// Admin keys.
    pub admin: Rate,
    /// Operator keys.
    pub operator: Rate,
    /// Device keys (a gate: one person every second or two; a kiosk queue in bursts).
    pub device: Rate,
    /// Auditor keys (the verifier reads a large log in pages).
    pub auditor: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            admin: Rate {
                per_second: 50.0,
                burst: 200.0,
            },
            operator: Rate {
                per_second: 20.0,
                burst: 100.0,
            },
            device: Rate {
                per_second: 50.0,
                burst: 200.0,
            },
            auditor: Rate {
                per_second: 200.0,
                burst: 2000.0,
            },
        }
    }
}

impl RateLimits {
    fn of(&self, role: Role) -> Rate {
        match role {
            Role::Admin => self.admin,
            Role::Operator => self.operator,
            Role::Device => self.device,
            Role::Auditor => self.auditor,
        }
    }

    /// Parses `ROLE=PER_SECOND/BURST`, e.g. `device=10/40`, into these limits.
    pub fn set(&mut self, spec: &str) -> Result<(), String> {
        let err = || format!("{spec:?}: a rate limit is ROLE=PER_SECOND/BURST, e.g. device=10/40");
        let (role, rate) = spec.split_once('=').ok_or_else(err)?;
        let (ps, burst) = rate.split_once('/').ok_or_else(err)?;
        let ps: f64 = ps.parse().map_err(|_| err())?;
        let burst: f64 = burst.parse().map_err(|_| err())?;
        if !(ps > 0.0 && ps.is_finite() && burst >= 1.0 && burst.is_finite()) {
            return Err(err());
        }
        let r = Rate {
            per_second: ps,
            burst,
        };
        match role {
            "admin" => self.admin = r,
            "operator" => self.operator = r,
            "device" => self.device = r,
            "auditor" => self.auditor = r,
            _ => return Err(err()),
        }
        Ok(())
    }
}

/// The buckets.
#[derive(Debug)]
pub(crate) struct Limiter {
    limits: RateLimits,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

const MAX_BUCKETS: usize = 100_000;

impl Limiter {
    pub(crate) fn new(limits: RateLimits) -> Limiter {
        Limiter {
            limits,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token from `key`'s bucket; false when it is empty.
    pub(crate) fn allow(&self, key: &str, role: Role) -> bool {
        let rate = self.limits.of(role);
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return true;
        };
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            // Forget the buckets that have refilled anyway.
            buckets.retain(|_, (_, at)| now.duration_since(*at).as_secs() < 600);
        }
        let (tokens, at) = buckets.entry(key.to_string()).or_insert((rate.burst, now));
        let refilled =
            (*tokens + now.duration_since(*at).as_secs_f64() * rate.per_second).min(rate.burst);
        *at = now;
        if refilled >= 1.0 {
            *tokens = refilled - 1.0;
            true
        } else {
            *tokens = refilled;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let mut limits = RateLimits::default();
        limits.set("device=1/3").unwrap();
        let l = Limiter::new(limits);
        let allowed = (0..10).filter(|_| l.allow("k", Role::Device)).count();
        assert_eq!(allowed, 3);
        // Another key has its own bucket; another role its own rate.
        assert!(l.allow("k2", Role::Device));
        assert!((0..150).all(|_| l.allow("a", Role::Admin)));
        for bad in [
            "device",
            "device=1",
            "device=x/3",
            "device=0/3",
            "root=1/1",
            "device=1/0",
        ] {
            assert!(RateLimits::default().set(bad).is_err(), "{bad}");
        }
    }
}
