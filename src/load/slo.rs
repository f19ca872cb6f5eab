//! Service level objectives a run is judged by: `p99<300ms,errors<1%`.

use std::fmt;

use serde::Serialize;

use super::stats::WindowStats;

/// What an objective bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Measure {
    P50,
    P90,
    P99,
    P999,
    Max,
    /// The share of final answers that were a 5xx or a transport error, in percent.
    Errors,
}

impl Measure {
    fn parse(s: &str) -> Option<Measure> {
        Some(match s {
            "p50" => Measure::P50,
            "p90" => Measure::P90,
            "p99" => Measure::P99,
            "p999" => Measure::P999,
            "max" => Measure::Max,
            "errors" => Measure::Errors,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Measure::P50 => "p50",
            Measure::P90 => "p90",
            Measure::P99 => "p99",
            Measure::P999 => "p999",
            Measure::Max => "max",
            Measure::Errors => "errors",
        }
    }
}

/// One objective: `measure < limit` (milliseconds for latencies, percent for errors).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Slo {
    pub measure: Measure,
    pub limit: f64,
}

impl fmt::Display for Slo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.measure {
            Measure::Errors => write!(f, "errors<{}%", self.limit),
            m => write!(f, "{}<{}ms", m.as_str(), self.limit),
        }
    }
}

/// How one objective came out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloResult {
    /// The objective as written back: `p99<300ms`.
    pub slo: String,
    pub measure: Measure,
    pub met: bool,
    /// The measured value (ms or percent); `None` when nothing was measured.
    pub actual: Option<f64>,
}

impl SloResult {
    /// `SLO p99<300ms: met (p99 123.4 ms)`.
    pub fn line(&self) -> String {
        let verdict = if self.met { "met" } else { "MISSED" };
        let actual = match (self.actual, self.measure) {
            (None, _) => "no requests measured".to_owned(),
            (Some(v), Measure::Errors) => format!("errors {v:.2} %"),
            (Some(v), m) => format!("{} {v:.1} ms", m.as_str()),
        };
        format!("SLO {}: {verdict} ({actual})", self.slo)
    }
}

/// Parses `p99<300ms,errors<1%`: `p50|p90|p99|p999|max<N(ms|s)` and `errors<X%`,
/// comma-separated. The error names the part at fault.
pub fn parse_slos(spec: &str) -> Result<Vec<Slo>, String> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim) {
        if part.is_empty() {
            return Err(format!("empty entry in the SLOs `{spec}`"));
        }
        let Some((measure, limit)) = part.split_once('<') else {
            return Err(format!("`{part}`: expected e.g. p99<300ms or errors<1%"));
        };
        let name = measure.trim().to_ascii_lowercase();
        let measure = Measure::parse(&name).ok_or_else(|| {
            format!("`{part}`: unknown measure `{name}` (use p50, p90, p99, p999, max or errors)")
        })?;
        let limit = limit.trim();
        let (number, scale) = match measure {
            Measure::Errors => match limit.strip_suffix('%') {
                Some(n) => (n, 1.0),
                None => {
                    return Err(format!(
                        "`{part}`: the error limit needs a %, e.g. errors<1%"
                    ))
                }
            },
            _ => {
                if let Some(n) = limit.strip_suffix("ms") {
                    (n, 1.0)
                } else if let Some(n) = limit.strip_suffix('s') {
                    (n, 1000.0)
                } else {
                    return Err(format!(
                        "`{part}`: the latency limit needs a unit, ms or s (e.g. 300ms)"
                    ));
                }
            }
        };
        let value: f64 = number
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("`{part}`: `{}` is not a number ≥ 0", number.trim()))?;
        out.push(Slo {
            measure,
            limit: value * scale,
        });
    }
    Ok(out)
}

impl Slo {
    /// Judges the objective on the total of a window; with no final request it is missed.
    pub fn check(&self, stats: &WindowStats) -> SloResult {
        let total = &stats.total;
        let value = match self.measure {
            Measure::P50 => total.p50_ms,
            Measure::P90 => total.p90_ms,
            Measure::P99 => total.p99_ms,
            Measure::P999 => total.p999_ms,
            Measure::Max => total.max_ms,
            Measure::Errors => stats.errors_pct,
        };
        let actual = (total.count > 0).then_some(value);
        SloResult {
            slo: self.to_string(),
            measure: self.measure,
            met: actual.is_some_and(|v| v < self.limit),
            actual,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::load::stats::OpStats;

    #[test]
    fn latency_and_error_objectives_are_parsed() {
        let slos = parse_slos("p99<300ms, errors<1%,max<2s,p50<0.5ms,P999<1.5s").unwrap();
        assert_eq!(
            slos,
            vec![
                Slo {
                    measure: Measure::P99,
                    limit: 300.0
                },
                Slo {
                    measure: Measure::Errors,
                    limit: 1.0
                },
                Slo {
                    measure: Measure::Max,
                    limit: 2000.0
                },
                Slo {
                    measure: Measure::P50,
                    limit: 0.5
                },
                Slo {
                    measure: Measure::P999,
                    limit: 1500.0
                },
            ]
        );
        assert_eq!(slos[0].to_string(), "p99<300ms");
        assert_eq!(slos[1].to_string(), "errors<1%");
        assert_eq!(slos[2].to_string(), "max<2000ms");
    }

    #[test]
    fn slo_errors_name_the_bad_part() {
        let err = parse_slos("p99<300ms,p98<3ms").unwrap_err();
        assert!(
            err.contains("`p98<3ms`") && err.contains("unknown measure `p98`"),
            "{err}"
        );
        let err = parse_slos("p99<300").unwrap_err();
        assert!(err.contains("`p99<300`") && err.contains("unit"), "{err}");
        let err = parse_slos("errors<1").unwrap_err();
        assert!(err.contains("needs a %"), "{err}");
        let err = parse_slos("p99>300ms").unwrap_err();
        assert!(err.contains("`p99>300ms`: expected"), "{err}");
        let err = parse_slos("p99<fastms").unwrap_err();
        assert!(err.contains("`fast` is not a number"), "{err}");
        assert!(parse_slos("errors<-1%").is_err());
        assert!(parse_slos("").is_err());
        assert!(parse_slos("p99<1ms,").is_err());
    }

    fn stats(count: u64, p99_ms: f64, errors_pct: f64) -> WindowStats {
        WindowStats {
            total: OpStats {
                count,
                p50_ms: p99_ms / 3.0,
                p90_ms: p99_ms / 2.0,
                p99_ms,
                p999_ms: p99_ms,
                max_ms: p99_ms * 2.0,
                ..OpStats::default()
            },
            errors_pct,
            ..WindowStats::default()
        }
    }

    #[test]
    fn an_objective_is_met_only_strictly_below_its_limit() {
        let slos = parse_slos("p99<300ms,errors<1%,max<500ms").unwrap();
        let good = stats(100, 250.0, 0.5);
        let results: Vec<bool> = slos.iter().map(|s| s.check(&good).met).collect();
        assert_eq!(results, [true, true, false]);
        let r = slos[0].check(&stats(100, 300.0, 1.0));
        assert!(!r.met);
        assert_eq!(r.actual, Some(300.0));
        assert_eq!(r.line(), "SLO p99<300ms: MISSED (p99 300.0 ms)");
        let r = slos[1].check(&stats(100, 300.0, 0.0));
        assert!(r.met);
        assert_eq!(r.line(), "SLO errors<1%: met (errors 0.00 %)");
    }

    #[test]
    fn an_objective_over_nothing_is_missed() {
        let r = parse_slos("errors<50%").unwrap()[0].check(&stats(0, 0.0, 0.0));
        assert!(!r.met);
        assert_eq!(r.actual, None);
        assert!(r.line().contains("no requests measured"));
    }
}
