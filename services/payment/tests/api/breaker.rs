//! The breaker in front of the processor: failures open it, an open breaker fails fast
//! without calling the processor, and a recovered processor closes it again.

use std::time::Duration;

use bazaar_proto::payment::PaymentStatus;
use bazaar_resilience::BreakerConfig;
use serde_json::json;
use tonic::Code;

use crate::helpers::{both, eventually, json_of, order_id, Options};

fn small_breaker() -> Options {
    Options {
        breaker: BreakerConfig {
            window: Duration::from_secs(60),
            minimum_calls: 2,
            failure_rate_threshold: 0.5,
            open_duration: Duration::from_secs(2),
            half_open_max_calls: 1,
            ..BreakerConfig::default()
        },
        ..Options::default()
    }
}

both!(
    a_down_provider_opens_the_breaker_and_recovery_closes_it,
    small_breaker(),
    |app| {
        app.psp_behave(json!({"down": true})).await;
        let (a, b) = (order_id(), order_id());
        for id in [&a, &b] {
            let err = app.charge(id, 100, "tok_visa").await.unwrap_err();
            assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        }
        // The attempts were made and counted; nothing was charged.
        assert_eq!(app.get_payment(&a).await.status(), PaymentStatus::Pending);
        // Open: answered at once, without reaching the provider.
        let calls = app.psp_stats().await["calls"].as_u64().unwrap();
        let c = order_id();
        let err = app.charge(&c, 100, "tok_visa").await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
        assert_eq!(err.message(), "payment provider unavailable");
        assert_eq!(app.psp_stats().await["calls"].as_u64().unwrap(), calls);
        // Nothing was recorded for an order the breaker turned away.
        assert_eq!(app.get_payment(&c).await.status(), PaymentStatus::None);

        // The provider recovers; once open_duration has passed a probe goes through and closes
        // the breaker. The pending order is settled with its attempts counted.
        app.psp_behave(json!({"down": false})).await;
        let res = eventually(|| async { app.charge(&a, 100, "tok_visa").await.ok() }).await;
        assert_eq!(res.status(), PaymentStatus::Captured);
        let view = app.get_payment(&a).await;
        assert_eq!(view.attempts, 2);
        app.charge_captured(&b, 100).await;
        app.charge_captured(&c, 100).await;
        assert_eq!(app.psp_stats().await["charges"], 3);
        assert_eq!(app.get_payment(&c).await.attempts, 1);
    }
);

both!(
    a_provider_error_rate_is_unavailable_and_charges_nothing,
    Options::default(),
    |app| {
        app.psp_behave(json!({"error_rate": 1.0})).await;
        let id = order_id();
        let err = app.charge(&id, 100, "tok_visa").await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
        // GetPayment cannot learn anything either, and says so with the pending status.
        assert_eq!(app.get_payment(&id).await.status(), PaymentStatus::Pending);
        app.psp_behave(json!({"error_rate": 0.0})).await;
        assert_eq!(app.get_payment(&id).await.status(), PaymentStatus::Pending);
        app.charge_captured(&id, 100).await;
        assert_eq!(app.psp_stats().await["charges"], 1);
    }
);

both!(
    the_breaker_is_listed_for_admins,
    Options::default(),
    |app| {
        let body = json_of(
            app.get_as("/admin/breakers", Some(&app.admin_token()))
                .await,
            reqwest::StatusCode::OK,
        )
        .await;
        let names: Vec<&str> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"psp"), "{names:?}");
        let res = app
            .get_as("/admin/breakers", Some(&app.token(&["customer"])))
            .await;
        assert_eq!(res.status(), reqwest::StatusCode::FORBIDDEN);
    }
);
