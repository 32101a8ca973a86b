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

    /// Takes a token from `key`'s bucket, or says in how many whole seconds (at least 1) the
    /// next one comes: the `Retry-After` of a `rate_limited` answer.
    pub(crate) fn take(&self, key: &str, role: Role) -> Result<(), u64> {
        let rate = self.limits.of(role);
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
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
            Ok(())
        } else {
            *tokens = refilled;
            // A positive, finite rate (checked when set); the cast saturates in any case.
            Err(((1.0 - refilled) / rate.per_second).ceil().max(1.0) as u64)
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
        let allowed = (0..10)
            .filter(|_| l.take("k", Role::Device).is_ok())
            .count();
        assert_eq!(allowed, 3);
        // Another key has its own bucket; another role its own rate.
        assert!(l.take("k2", Role::Device).is_ok());
        assert!((0..150).all(|_| l.take("a", Role::Admin).is_ok()));
        // An empty bucket says when its next token comes: at 1 a second, within a second; at
        // one every ten seconds, in ten.
        assert_eq!(l.take("k", Role::Device), Err(1));
        limits.set("operator=0.1/1").unwrap();
        let slow = Limiter::new(limits);
        assert_eq!(slow.take("o", Role::Operator), Ok(()));
        assert_eq!(slow.take("o", Role::Operator), Err(10));
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
