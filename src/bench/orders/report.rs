//! The figures of `bazaar bench orders` and how they are printed. Pure, so the formatting
//! and the goal verdicts are tested without running anything.

use std::{collections::BTreeMap, fmt::Write as _};

use serde::Serialize;

use super::{
    super::report::{
        breakdown, format_count, format_micros, format_ratio, ratio, Goal, LatencySummary, Verdict,
    },
    cleanup::Cleanup,
};

/// The goal for placement on the embedded default (feeds + SQLite, `synchronous=FULL`).
pub const ORDERS_PER_SECOND_GOAL: f64 = 1_000.0;

/// The configurations the bench can run, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Configuration {
    FeedsSqlite,
    NatsPostgres,
}

impl Configuration {
    pub fn label(self) -> &'static str {
        match self {
            Configuration::FeedsSqlite => "feeds + SQLite",
            Configuration::NatsPostgres => "NATS + PostgreSQL",
        }
    }
}

/// How the bench was run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrdersSettings {
    /// Concurrent clients, one customer (and one keep-alive connection) each.
    pub clients: usize,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub reads_duration_s: f64,
    pub reads_warmup_s: f64,
    /// The `Prefer: wait` of every placement.
    pub prefer_wait_s: u64,
    /// Shipping's handling time during the run.
    pub handling_time: String,
    /// SQLite's `synchronous` setting: `full` (the default) or `normal` (weaker durability).
    pub sqlite_synchronous: String,
    /// `release` or `debug`: the build of the binary that ran (and of the shop it started).
    pub build: &'static str,
    pub cpus: usize,
}

impl OrdersSettings {
    fn default_durability(&self) -> bool {
        self.sqlite_synchronous == "full"
    }
}

/// Placement under load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlacementFigures {
    /// 201 answers with status `confirmed` inside the measured window.
    pub confirmed: u64,
    pub confirmed_per_second: f64,
    /// Request sent → confirmed answer read.
    pub latency: LatencySummary,
    /// Every other answer inside the window.
    pub not_confirmed: u64,
    /// `"201 pending"`, `"HTTP 503"`, `"timeout"`, … → count.
    pub not_confirmed_breakdown: BTreeMap<String, u64>,
}

/// The read baseline: authenticated product reads through the gateway.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReadFigures {
    pub ok: u64,
    pub per_second: f64,
    pub latency: LatencySummary,
    pub errors: u64,
    pub error_breakdown: BTreeMap<String, u64>,
}

/// Everything before the clock started.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SetupFigures {
    /// Spawn of `bazaar up` → every service reported ready.
    pub ready_s: f64,
    /// Stock, registrations, logins and a probe order.
    pub setup_s: f64,
    pub customers: usize,
    pub products: usize,
    /// Logins the login route's per-IP rate limit refused first (retried after `Retry-After`).
    pub refused_logins: u64,
}

/// What one configuration measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigMeasured {
    pub configuration: Configuration,
    pub setup: SetupFigures,
    pub reads: ReadFigures,
    pub orders: PlacementFigures,
    /// Databases and streams removed afterwards (NATS + PostgreSQL only).
    pub cleanup: Option<Cleanup>,
}

/// A configuration as reported: its figures, or why it has none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigReport {
    pub configuration: Configuration,
    pub label: &'static str,
    /// Why it was not run (not asked for).
    pub skipped: Option<String>,
    /// Why it has no figures although it was run.
    pub failed: Option<String>,
    pub measured: Option<ConfigMeasured>,
    /// Confirmed orders/s ÷ product reads/s of the same configuration.
    pub orders_per_read: Option<f64>,
}

impl ConfigReport {
    pub fn measured(m: ConfigMeasured) -> ConfigReport {
        ConfigReport {
            configuration: m.configuration,
            label: m.configuration.label(),
            skipped: None,
            failed: None,
            orders_per_read: ratio(m.orders.confirmed_per_second, Some(m.reads.per_second)),
            measured: Some(m),
        }
    }

    pub fn skipped(configuration: Configuration, why: &str) -> ConfigReport {
        ConfigReport {
            configuration,
            label: configuration.label(),
            skipped: Some(why.to_owned()),
            failed: None,
            measured: None,
            orders_per_read: None,
        }
    }

    pub fn failed(configuration: Configuration, why: String) -> ConfigReport {
        ConfigReport {
            failed: Some(why),
            skipped: None,
            ..ConfigReport::skipped(configuration, "")
        }
    }
}

/// Everything `bazaar bench orders` found; printed as tables or as one JSON object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrdersReport {
    pub settings: OrdersSettings,
    pub configurations: Vec<ConfigReport>,
    pub goals: Vec<Goal>,
}

impl OrdersReport {
    pub fn build(settings: OrdersSettings, configurations: Vec<ConfigReport>) -> OrdersReport {
        let sqlite = configurations
            .iter()
            .find(|c| c.configuration == Configuration::FeedsSqlite);
        let goals = vec![sqlite_goal(&settings, sqlite)];
        OrdersReport {
            settings,
            configurations,
            goals,
        }
    }

    /// The tables and goal lines, as printed on a terminal.
    pub fn render(&self) -> String {
        let s = &self.settings;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Order placement: {} clients (one customer and connection each) in a closed loop, {} s measured after {} s warm-up; {} build, {} CPUs",
            s.clients, s.duration_s, s.warmup_s, s.build, s.cpus
        );
        let _ = writeln!(
            out,
            "Each client: POST /api/v1/orders (1 random demo product, tok_visa, fresh Idempotency-Key, Prefer: wait={}); counted when 201 `confirmed`.",
            s.prefer_wait_s
        );
        let _ = writeln!(
            out,
            "Shipping handling time {} (no shipment work during the run); rate limits raised out of the way (not the login route's); SQLite synchronous={}{}.",
            s.handling_time,
            s.sqlite_synchronous.to_ascii_uppercase(),
            if s.default_durability() {
                " (the default)"
            } else {
                " — WEAKER DURABILITY than the default FULL"
            }
        );
        if s.build == "debug" {
            let _ = writeln!(
                out,
                "This is a debug build: its figures say little about the release build."
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<20} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
            "CONFIGURATION",
            "ORDERS/S",
            "P50",
            "P90",
            "P99",
            "MAX",
            "ERRORS",
            "READS/S",
            "VS READS"
        );
        for c in &self.configurations {
            match (&c.measured, &c.skipped, &c.failed) {
                (Some(m), _, _) => {
                    let o = &m.orders;
                    let _ = writeln!(
                        out,
                        "{:<20} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
                        c.label,
                        format_count(o.confirmed_per_second),
                        format_micros(o.latency.p50_us),
                        format_micros(o.latency.p90_us),
                        format_micros(o.latency.p99_us),
                        format_micros(o.latency.max_us),
                        format_count(o.not_confirmed as f64),
                        format_count(m.reads.per_second),
                        format_ratio(c.orders_per_read),
                    );
                }
                (None, _, Some(why)) => {
                    let _ = writeln!(out, "{:<20} failed: {why}", c.label);
                }
                (None, Some(why), None) => {
                    let _ = writeln!(out, "{:<20} not run: {why}", c.label);
                }
                (None, None, None) => {
                    let _ = writeln!(out, "{:<20} not measured", c.label);
                }
            }
        }
        let _ = writeln!(
            out,
            "ERRORS: answers other than a confirmed order. VS READS: confirmed orders/s ÷ product reads/s of the same shop."
        );
        let measured: Vec<(&ConfigReport, &ConfigMeasured)> = self
            .configurations
            .iter()
            .filter_map(|c| Some((c, c.measured.as_ref()?)))
            .collect();
        for (c, m) in &measured {
            let o = &m.orders;
            if o.not_confirmed > 0 {
                let _ = writeln!(
                    out,
                    "  {} not confirmed: {}",
                    c.label,
                    breakdown(&o.not_confirmed_breakdown)
                );
            }
            if m.reads.errors > 0 {
                let _ = writeln!(
                    out,
                    "  {} read errors: {}",
                    c.label,
                    breakdown(&m.reads.error_breakdown)
                );
            }
        }
        if !measured.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "Baseline (same shop, same {} clients, before the orders): GET /api/v1/products/{{id}} with each customer's token (so the gateway's cache is bypassed), {} s after {} s warm-up",
                s.clients, s.reads_duration_s, s.reads_warmup_s
            );
            let _ = writeln!(
                out,
                "{:<20} {:>9} {:>9} {:>9} {:>9}   SETUP",
                "CONFIGURATION", "READS/S", "P50", "P99", "ERRORS"
            );
            for (c, m) in &measured {
                let r = &m.reads;
                let _ = writeln!(
                    out,
                    "{:<20} {:>9} {:>9} {:>9} {:>9}   ready {:.1} s, {} customers and {} products in {:.1} s{}",
                    c.label,
                    format_count(r.per_second),
                    format_micros(r.latency.p50_us),
                    format_micros(r.latency.p99_us),
                    format_count(r.errors as f64),
                    m.setup.ready_s,
                    m.setup.customers,
                    m.setup.products,
                    m.setup.setup_s,
                    if m.setup.refused_logins > 0 {
                        format!(
                            " ({} logins waited out the login rate limit)",
                            m.setup.refused_logins
                        )
                    } else {
                        String::new()
                    }
                );
            }
            for (c, m) in &measured {
                if let Some(cleanup) = &m.cleanup {
                    let _ = writeln!(out, "{}: {}", c.label, cleanup.summary());
                }
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "Goals (as measured):");
        for g in &self.goals {
            let _ = writeln!(out, "  {}", g.line());
        }
        out
    }
}

fn sqlite_goal(settings: &OrdersSettings, sqlite: Option<&ConfigReport>) -> Goal {
    let goal = format!(
        "≥ {} confirmed orders/s on SQLite",
        format_count(ORDERS_PER_SECOND_GOAL)
    );
    let Some(m) = sqlite.and_then(|c| c.measured.as_ref()) else {
        return Goal {
            goal,
            verdict: Verdict::Skipped,
            detail: "feeds + SQLite was not measured".into(),
        };
    };
    let rate = m.orders.confirmed_per_second;
    let mut detail = format!(
        "{} confirmed orders/s, feeds + SQLite synchronous={}, {} clients",
        format_count(rate),
        settings.sqlite_synchronous.to_ascii_uppercase(),
        settings.clients
    );
    if settings.build == "debug" {
        detail.push_str(", debug build");
    }
    if !settings.default_durability() {
        detail.push_str("; not judged: the goal is for the default durability (FULL)");
        return Goal {
            goal,
            verdict: Verdict::Skipped,
            detail,
        };
    }
    Goal {
        goal,
        verdict: Verdict::from_bool(rate >= ORDERS_PER_SECOND_GOAL),
        detail,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn settings() -> OrdersSettings {
        OrdersSettings {
            clients: 64,
            duration_s: 20.0,
            warmup_s: 3.0,
            reads_duration_s: 5.0,
            reads_warmup_s: 1.0,
            prefer_wait_s: 30,
            handling_time: "1h".into(),
            sqlite_synchronous: "full".into(),
            build: "release",
            cpus: 2,
        }
    }

    fn latency(p50: u64) -> LatencySummary {
        LatencySummary {
            count: 100,
            min_us: p50 / 2,
            p50_us: p50,
            p90_us: p50 * 2,
            p99_us: p50 * 3,
            p999_us: p50 * 4,
            max_us: p50 * 5,
            mean_us: p50 as f64,
        }
    }

    fn measured(configuration: Configuration, orders: f64, reads: f64) -> ConfigMeasured {
        ConfigMeasured {
            configuration,
            setup: SetupFigures {
                ready_s: 1.5,
                setup_s: 6.2,
                customers: 64,
                products: 24,
                refused_logins: 0,
            },
            reads: ReadFigures {
                ok: (reads * 5.0) as u64,
                per_second: reads,
                latency: latency(4_000),
                errors: 0,
                error_breakdown: BTreeMap::new(),
            },
            orders: PlacementFigures {
                confirmed: (orders * 20.0) as u64,
                confirmed_per_second: orders,
                latency: latency(60_000),
                not_confirmed: 0,
                not_confirmed_breakdown: BTreeMap::new(),
            },
            cleanup: None,
        }
    }

    #[test]
    fn the_goal_is_judged_on_sqlite_with_full_durability() {
        let report = OrdersReport::build(
            settings(),
            vec![
                ConfigReport::measured(measured(Configuration::FeedsSqlite, 812.4, 8_124.0)),
                ConfigReport::measured(measured(Configuration::NatsPostgres, 2_500.0, 9_000.0)),
            ],
        );
        assert_eq!(report.goals.len(), 1);
        assert_eq!(report.goals[0].verdict, Verdict::Fail);
        let per_read = report.configurations[0].orders_per_read.unwrap();
        assert!((per_read - 0.1).abs() < 1e-9, "{per_read}");
        let text = report.render();
        assert!(
            text.contains("≥ 1,000 confirmed orders/s on SQLite: FAIL (812 confirmed orders/s, feeds + SQLite synchronous=FULL, 64 clients)"),
            "{text}"
        );
        let row = text
            .lines()
            .find(|l| l.starts_with("feeds + SQLite "))
            .unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells[3..],
            [
                "812", "60.00", "ms", "120.00", "ms", "180.00", "ms", "300.00", "ms", "0", "8,124",
                "0.10×"
            ]
        );
        assert!(text.contains("synchronous=FULL (the default)"), "{text}");

        let pass = OrdersReport::build(
            settings(),
            vec![ConfigReport::measured(measured(
                Configuration::FeedsSqlite,
                1_000.0,
                8_000.0,
            ))],
        );
        assert_eq!(pass.goals[0].verdict, Verdict::Pass);
    }

    #[test]
    fn weaker_durability_is_labelled_and_not_judged() {
        let mut s = settings();
        s.sqlite_synchronous = "normal".into();
        let report = OrdersReport::build(
            s,
            vec![ConfigReport::measured(measured(
                Configuration::FeedsSqlite,
                1_500.0,
                8_000.0,
            ))],
        );
        assert_eq!(report.goals[0].verdict, Verdict::Skipped);
        let text = report.render();
        assert!(
            text.contains("synchronous=NORMAL — WEAKER DURABILITY than the default FULL"),
            "{text}"
        );
        assert!(
            text.contains("not judged: the goal is for the default durability"),
            "{text}"
        );
    }

    #[test]
    fn outcomes_skips_and_failures_are_shown() {
        let mut sqlite = measured(Configuration::FeedsSqlite, 500.0, 5_000.0);
        sqlite.orders.not_confirmed = 4;
        sqlite
            .orders
            .not_confirmed_breakdown
            .insert("201 pending".into(), 3);
        sqlite
            .orders
            .not_confirmed_breakdown
            .insert("HTTP 503".into(), 1);
        sqlite.setup.refused_logins = 44;
        let report = OrdersReport::build(
            settings(),
            vec![
                ConfigReport::measured(sqlite),
                ConfigReport::skipped(
                    Configuration::NatsPostgres,
                    "pass --postgres and --nats, or --both",
                ),
            ],
        );
        let text = report.render();
        assert!(
            text.contains("feeds + SQLite not confirmed: 201 pending: 3, HTTP 503: 1"),
            "{text}"
        );
        assert!(
            text.contains("NATS + PostgreSQL    not run: pass --postgres and --nats, or --both"),
            "{text}"
        );
        assert!(
            text.contains("44 logins waited out the login rate limit"),
            "{text}"
        );

        let failed = OrdersReport::build(
            settings(),
            vec![ConfigReport::failed(
                Configuration::FeedsSqlite,
                "bazaar up stopped".into(),
            )],
        );
        assert_eq!(failed.goals[0].verdict, Verdict::Skipped);
        assert!(failed
            .render()
            .contains("feeds + SQLite       failed: bazaar up stopped"));
    }

    #[test]
    fn the_json_names_every_figure() {
        let mut nats = measured(Configuration::NatsPostgres, 700.0, 7_000.0);
        nats.cleanup = Some(Cleanup {
            dropped_databases: vec!["bazaar_bench_x_order".into()],
            deleted_streams: vec!["BAZAAR_BENCHX-ORDER".into()],
            left_behind: vec![],
        });
        let report = OrdersReport::build(
            settings(),
            vec![
                ConfigReport::measured(measured(Configuration::FeedsSqlite, 900.0, 9_000.0)),
                ConfigReport::measured(nats),
            ],
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["settings"]["clients"], 64);
        assert_eq!(json["settings"]["sqlite_synchronous"], "full");
        let sqlite = &json["configurations"][0];
        assert_eq!(sqlite["configuration"], "feeds_sqlite");
        assert_eq!(sqlite["measured"]["orders"]["confirmed_per_second"], 900.0);
        assert_eq!(sqlite["measured"]["orders"]["latency"]["p99_us"], 180_000);
        assert_eq!(sqlite["measured"]["reads"]["per_second"], 9_000.0);
        assert_eq!(sqlite["orders_per_read"], 0.1);
        let pg = &json["configurations"][1];
        assert_eq!(pg["configuration"], "nats_postgres");
        assert_eq!(
            pg["measured"]["cleanup"]["dropped_databases"][0],
            "bazaar_bench_x_order"
        );
        assert_eq!(json["goals"][0]["verdict"], "fail");
        assert!(report.render().contains(
            "NATS + PostgreSQL: dropped 1 PostgreSQL databases, deleted 1 JetStream streams"
        ));
    }
}
