//! `GET /admin/state`: levels with their ledger sums and every reservation, for the
//! consistency checker.

use bazaar_inventory::http::{InventoryState, ReservationLineRecord, StockRecord};
use reqwest::StatusCode;

use crate::helpers::{both, order};

both!(
    the_state_agrees_with_the_ledger_and_the_reservations,
    |app| {
        app.stock("ST-1", 10).await;
        let (held, refused, shipped, released) = (order(), order(), order(), order());
        app.reserve(&held, &[("ST-1", 3)]).await;
        let res = app.reserve(&refused, &[("ST-1", 50)]).await;
        assert_eq!(res.short_skus, ["ST-1"]);
        app.reserve(&shipped, &[("ST-1", 2)]).await;
        app.commit(&shipped).await;
        app.reserve(&released, &[("ST-1", 1)]).await;
        app.release(&released, "payment_declined").await;

        let get = |token: Option<String>| {
            let mut req = app.client.get(app.url("/admin/state"));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req.send()
        };
        let res = get(Some(app.admin_token())).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let state: InventoryState = res.json().await.unwrap();
        assert_eq!(state.service, "inventory");
        let stock = state.stock.iter().find(|s| s.sku == "ST-1").unwrap();
        assert_eq!(
            *stock,
            StockRecord {
                sku: "ST-1".to_owned(),
                on_hand: 8,
                reserved: 3,
                adjustments: 10,
                commits: -2,
                reserves: 6,
                releases: -1,
            }
        );
        assert_eq!(stock.on_hand, stock.adjustments + stock.commits);
        assert_eq!(
            stock.reserved,
            stock.reserves + stock.releases + stock.commits
        );
        // What the reservations still hold is what is reserved.
        let holding: i64 = state
            .reservations
            .iter()
            .filter(|r| r.status == "reserved")
            .flat_map(|r| &r.lines)
            .filter(|l| l.sku == "ST-1")
            .map(|l| l.quantity)
            .sum();
        assert_eq!(holding, stock.reserved);

        let find = |id: &str| {
            state
                .reservations
                .iter()
                .find(|r| r.order_id == id)
                .unwrap()
        };
        let line = |quantity, short| ReservationLineRecord {
            sku: "ST-1".to_owned(),
            quantity,
            short,
        };
        assert_eq!(find(&held).status, "reserved");
        assert_eq!(find(&held).lines, [line(3, false)]);
        assert_eq!(find(&refused).status, "out_of_stock");
        assert_eq!(find(&refused).lines, [line(50, true)]);
        assert_eq!(find(&shipped).status, "committed");
        assert_eq!(find(&released).status, "released");
        assert_eq!(find(&released).reason, "payment_declined");
        assert!(state.messaging.outbox_unsent >= 0);
        let subs: Vec<&str> = state
            .messaging
            .subscriptions
            .iter()
            .map(|s| s.subscription.as_str())
            .collect();
        assert_eq!(subs, ["inventory.products", "inventory.shipments"]);

        // Admins only.
        let res = get(Some(app.customer_token())).await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let res = get(None).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
);
