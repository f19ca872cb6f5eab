//! The seeded fault schedule: the same seed, duration and fault kinds give the same faults at
//! the same offsets, so a failing run can be repeated.
//!
//! Faults start only inside the fault phase (the middle 60 % of the run; the first and last
//! 20 % measure the system before and after). One starts every 1.5–4 s. A kill is instant;
//! the other kinds last a few seconds and at most one of each of them is active at a time
//! (a pause, a payment-provider fault, a network fault, a broker restart).

use std::time::Duration;

use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::Serialize;

/// A kind of fault, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Kill,
    Pause,
    Psp,
    Net,
    Bus,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::Kill, Kind::Pause, Kind::Psp, Kind::Net, Kind::Bus];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Kill => "kill",
            Kind::Pause => "pause",
            Kind::Psp => "psp",
            Kind::Net => "net",
            Kind::Bus => "bus",
        }
    }

    /// How often this kind is drawn, relative to the others.
    fn weight(self) -> u32 {
        match self {
            Kind::Kill => 60,
            Kind::Pause => 12,
            Kind::Psp => 12,
            Kind::Net => 10,
            Kind::Bus => 6,
        }
    }
}

/// A list of fault kinds (one command-line value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kinds(pub Vec<Kind>);

/// Parses `kill,pause,psp,net,bus` as one value.
pub fn parse_kind_list(s: &str) -> Result<Kinds, String> {
    parse_kinds(s).map(Kinds)
}

/// Parses `kill,pause,psp,net,bus`.
pub fn parse_kinds(s: &str) -> Result<Vec<Kind>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let kind = Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == part)
            .ok_or_else(|| format!("`{part}` is not a fault kind (kill, pause, psp, net, bus)"))?;
        if !out.contains(&kind) {
            out.push(kind);
        }
    }
    if out.is_empty() {
        return Err("name at least one fault kind".into());
    }
    Ok(out)
}

/// What a payment-provider fault does.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PspFault {
    /// Answers after this many ms (beyond the payment service's timeout).
    Slow { latency_ms: u64 },
    /// Fails this share of calls.
    Errors { error_rate: f64 },
    /// Refuses every call.
    Down,
}

/// What a network fault does at the proxy in front of the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NetFault {
    Delay { ms: u64 },
    Drop,
    Reset,
}

/// One planned fault.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    /// From the start of the load.
    pub at: Duration,
    pub kind: Kind,
    /// How long it lasts (0 for a kill).
    pub lasts: Duration,
    /// A number the runner uses to pick the victim among the instances running at the time.
    pub pick: u64,
    pub psp: Option<PspFault>,
    pub net: Option<NetFault>,
}

/// The phases of a run of `total`: before faults, with faults, after faults.
pub fn phases(total: Duration) -> (Duration, Duration) {
    let start = total.mul_f64(0.2);
    let end = total.mul_f64(0.8);
    (start, end)
}

/// Plans the faults of a run.
pub fn plan(seed: u64, total: Duration, kinds: &[Kind]) -> Vec<Planned> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x0c4a_05ee);
    let (start, end) = phases(total);
    let weights: u32 = kinds.iter().map(|k| k.weight()).sum();
    let mut busy_until: std::collections::HashMap<Kind, Duration> = Default::default();
    let mut out = Vec::new();
    let mut at = start + Duration::from_millis(rng.gen_range(500..1500));
    while at < end && weights > 0 {
        let mut draw = rng.gen_range(0..weights);
        let mut kind = kinds[0];
        for k in kinds {
            if draw < k.weight() {
                kind = *k;
                break;
            }
            draw -= k.weight();
        }
        let lasts = match kind {
            Kind::Kill => Duration::ZERO,
            Kind::Pause => Duration::from_millis(rng.gen_range(2000..5000)),
            Kind::Psp => Duration::from_millis(rng.gen_range(4000..9000)),
            Kind::Net => Duration::from_millis(rng.gen_range(2000..5000)),
            Kind::Bus => Duration::from_millis(rng.gen_range(1000..3000)),
        };
        let psp = (kind == Kind::Psp).then(|| match rng.gen_range(0..3) {
            0 => PspFault::Slow {
                latency_ms: rng.gen_range(2500..4000),
            },
            1 => PspFault::Errors {
                error_rate: rng.gen_range(3..8) as f64 / 10.0,
            },
            _ => PspFault::Down,
        });
        let net = (kind == Kind::Net).then(|| match rng.gen_range(0..3) {
            0 => NetFault::Delay {
                ms: rng.gen_range(200..1200),
            },
            1 => NetFault::Drop,
            _ => NetFault::Reset,
        });
        let pick = rng.gen();
        // A lasting fault of a kind already active is skipped (and the draw is used up, so
        // the schedule stays the same whatever the runner does).
        let free = busy_until.get(&kind).is_none_or(|until| *until <= at);
        if free {
            if !lasts.is_zero() {
                busy_until.insert(kind, at + lasts);
            }
            out.push(Planned {
                at,
                kind,
                lasts: lasts.min(end.saturating_sub(at)),
                pick,
                psp,
                net,
            });
        }
        at += Duration::from_millis(rng.gen_range(1500..4000));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_another_seed_another() {
        let total = Duration::from_secs(120);
        let a = plan(1, total, &Kind::ALL);
        assert_eq!(a, plan(1, total, &Kind::ALL));
        assert_ne!(a, plan(2, total, &Kind::ALL));
    }

    #[test]
    fn faults_stay_inside_the_fault_phase_and_lasting_ones_do_not_overlap() {
        let total = Duration::from_secs(900);
        let (start, end) = phases(total);
        let p = plan(7, total, &Kind::ALL);
        assert!(p.len() > 150, "{} faults", p.len());
        let kills = p.iter().filter(|f| f.kind == Kind::Kill).count();
        assert!(kills >= 100, "{kills} kills in a 15-minute run");
        for f in &p {
            assert!(f.at >= start && f.at + f.lasts <= end, "{f:?}");
        }
        for kind in [Kind::Pause, Kind::Psp, Kind::Net, Kind::Bus] {
            let mut of_kind: Vec<&Planned> = p.iter().filter(|f| f.kind == kind).collect();
            of_kind.sort_by_key(|f| f.at);
            for w in of_kind.windows(2) {
                assert!(w[0].at + w[0].lasts <= w[1].at, "{kind:?} overlaps: {w:?}");
            }
        }
    }

    #[test]
    fn only_the_named_kinds_are_planned() {
        let p = plan(3, Duration::from_secs(120), &[Kind::Kill, Kind::Net]);
        assert!(!p.is_empty());
        assert!(p.iter().all(|f| matches!(f.kind, Kind::Kill | Kind::Net)));
        assert!(p.iter().all(|f| (f.kind == Kind::Net) == f.net.is_some()));
    }

    #[test]
    fn kinds_parse_and_bad_ones_are_named() {
        assert_eq!(
            parse_kinds("kill, net,kill").unwrap(),
            [Kind::Kill, Kind::Net]
        );
        assert!(parse_kinds("kill,flood").unwrap_err().contains("flood"));
        assert!(parse_kinds("").is_err());
    }
}
