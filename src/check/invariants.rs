//! The invariants, each a pure function of the states and the record (unit-tested below with
//! hand-made states, so each one is seen to fail).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::state::{ChaosNotes, ServiceState};
use crate::{
    load::{
        mix::Scenario,
        record::{Attempt, Op},
    },
    up::ExitRecord,
};

/// How many examples of a violation are kept.
const EXAMPLES: usize = 5;

/// One invariant's result.
#[derive(Debug, Clone, Serialize)]
pub struct Invariant {
    pub name: &'static str,
    pub checked: u64,
    pub violations: u64,
    pub examples: Vec<String>,
    /// Counts worth reading beside the verdict (redeliveries, restarts…).
    pub notes: Vec<String>,
}

impl Invariant {
    fn new(name: &'static str) -> Invariant {
        Invariant {
            name,
            checked: 0,
            violations: 0,
            examples: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn ok(&mut self) {
        self.checked += 1;
    }

    fn fail(&mut self, example: impl FnOnce() -> String) {
        self.checked += 1;
        self.violations += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(example());
        }
    }

    fn expect(&mut self, holds: bool, example: impl FnOnce() -> String) {
        if holds {
            self.ok();
        } else {
            self.fail(example);
        }
    }
}

/// Everything the invariants look at.
pub struct Inputs<'a> {
    pub states: &'a HashMap<&'static str, ServiceState>,
    pub attempts: &'a [Attempt],
    pub record_started_unix_ms: i64,
    pub notes: Option<&'a ChaosNotes>,
    pub exits: &'a [ExitRecord],
    pub panics: &'a [(String, String)],
    pub has_record: bool,
}

impl Inputs<'_> {
    fn state(&self, service: &str) -> Option<&ServiceState> {
        self.states.get(service)
    }

    /// Payment's record of each order.
    fn payments(&self) -> HashMap<&str, &super::state::Payment> {
        self.state("payment")
            .map(|s| {
                s.payments
                    .iter()
                    .map(|p| (p.order_id.as_str(), p))
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub fn is_final(status: &str) -> bool {
    matches!(status, "rejected" | "cancelled" | "shipped")
}

/// Every order final and every outbox drained.
pub fn quiescent(states: &HashMap<&'static str, ServiceState>) -> bool {
    let orders_final = states
        .get("order")
        .is_some_and(|s| s.orders.iter().all(|o| is_final(&o.status)));
    let drained = states.values().all(|s| {
        s.messaging
            .as_ref()
            .is_none_or(|m| m.outbox_unsent == 0 && m.lag() == 0)
    });
    orders_final && drained
}

/// What changes whenever anything happens: orders by status and, per service, the events
/// handled, published and dead-lettered, and the stock ledger's sums.
pub fn fingerprint(states: &HashMap<&'static str, ServiceState>) -> String {
    let mut parts: Vec<String> = states
        .iter()
        .map(|(name, s)| {
            let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
            for o in &s.orders {
                *by_status.entry(o.status.as_str()).or_default() += 1;
            }
            let ledger: i64 = s
                .stock
                .iter()
                .map(|x| x.adjustments + x.commits + x.reserves + x.releases + x.reserved)
                .sum();
            let m = s.messaging.as_ref();
            format!(
                "{name}:{by_status:?}:{ledger}:{}:{}:{}:{}:{}:{}",
                m.map_or(0, |m| m.inbox_processed),
                m.map_or(0, |m| m.outbox_unsent),
                m.map_or(0, |m| m.dead_letters_total),
                s.payments.len(),
                s.charges.len(),
                s.shipments.len()
            )
        })
        .collect();
    parts.sort();
    parts.join("|")
}

pub fn check_all(inputs: &Inputs<'_>) -> Vec<Invariant> {
    vec![
        no_lost_order(inputs),
        one_order_per_key(inputs),
        no_double_charge(inputs),
        stock_conserved(inputs),
        saga_consistency(inputs),
        messaging(inputs),
        liveness(inputs),
    ]
}

fn final_placements<'a>(inputs: &'a Inputs<'_>) -> impl Iterator<Item = &'a Attempt> {
    inputs
        .attempts
        .iter()
        .filter(|a| a.op == Op::PlaceOrder && a.is_final)
}

fn is_2xx(a: &Attempt) -> bool {
    a.status.is_some_and(|s| (200..300).contains(&s))
}

/// Every order a client was told was created exists.
fn no_lost_order(inputs: &Inputs<'_>) -> Invariant {
    let mut inv = Invariant::new("no lost order");
    if !inputs.has_record {
        inv.notes
            .push("no record file: nothing to compare with".into());
        return inv;
    }
    let orders: HashSet<&str> = inputs
        .state("order")
        .map(|s| s.orders.iter().map(|o| o.id.as_str()).collect())
        .unwrap_or_default();
    let mut told = BTreeMap::new();
    for a in inputs
        .attempts
        .iter()
        .filter(|a| a.op == Op::PlaceOrder && is_2xx(a))
    {
        match &a.order_id {
            Some(id) => {
                told.insert(id.as_str(), a.key.as_deref().unwrap_or("?"));
            }
            None => inv.fail(|| {
                format!(
                    "a 2xx placement (key {}) named no order",
                    a.key.as_deref().unwrap_or("?")
                )
            }),
        }
    }
    for (id, key) in told {
        inv.expect(orders.contains(id), || {
            format!("order {id} (key {key}) was answered 2xx but does not exist")
        });
    }
    inv
}

/// Every Idempotency-Key maps to one order, in every answer and in the order service.
fn one_order_per_key(inputs: &Inputs<'_>) -> Invariant {
    let mut inv = Invariant::new("one order per key");
    let mut by_key: BTreeMap<(&str, &str), HashSet<&str>> = BTreeMap::new();
    let mut replays = 0u64;
    for a in inputs
        .attempts
        .iter()
        .filter(|a| a.op == Op::PlaceOrder && is_2xx(a))
    {
        if let (Some(key), Some(id)) = (&a.key, &a.order_id) {
            by_key
                .entry((a.user.as_deref().unwrap_or(""), key.as_str()))
                .or_default()
                .insert(id.as_str());
        }
        if a.replayed == Some(true) {
            replays += 1;
        }
    }
    let stored: HashMap<(&str, &str), Option<&str>> = inputs
        .state("order")
        .map(|s| {
            s.idempotency_keys
                .iter()
                .map(|k| ((k.user_id.as_str(), k.key.as_str()), k.order_id.as_deref()))
                .collect()
        })
        .unwrap_or_default();
    for ((user, key), ids) in &by_key {
        let stored_id = stored.get(&(*user, *key)).copied().flatten();
        inv.expect(
            ids.len() == 1 && stored_id.is_some_and(|s| ids.contains(s)),
            || format!("key {key} of user {user}: answers named {ids:?}, the order service has {stored_id:?}"),
        );
    }
    // Orders that no key leads to: a placement created an order twice.
    if let Some(order) = inputs.state("order") {
        let keyed: HashSet<&str> = order
            .idempotency_keys
            .iter()
            .filter_map(|k| k.order_id.as_deref())
            .collect();
        for o in &order.orders {
            inv.expect(keyed.contains(o.id.as_str()), || {
                format!("order {} has no Idempotency-Key leading to it", o.id)
            });
        }
    }
    inv.notes.push(format!("{replays} replayed answers"));
    inv
}

/// Per order: what the provider captured minus what it refunded is the order total for a
/// paid order and 0 otherwise, and payment's own records agree.
fn no_double_charge(inputs: &Inputs<'_>) -> Invariant {
    let mut inv = Invariant::new("no double charge");
    let Some(order) = inputs.state("order") else {
        return inv;
    };
    let payments = inputs.payments();
    let psp = inputs.state("psp");
    // The provider's net per charge key; a key derived from a payment's key ("<key>-…") is
    // counted for that payment too: a charge the payment service did not mean to make.
    let mut net_by_key: HashMap<&str, i64> = HashMap::new();
    let mut charge_count: HashMap<&str, u32> = HashMap::new();
    if let Some(psp) = psp {
        let keys: HashMap<&str, &str> = payments
            .values()
            .map(|p| (p.psp_charge_key.as_str(), p.order_id.as_str()))
            .collect();
        for c in &psp.charges {
            let owner = keys.get(c.idempotency_key.as_str()).copied().or_else(|| {
                keys.iter()
                    .find(|(k, _)| !k.is_empty() && c.idempotency_key.starts_with(*k))
                    .map(|(_, o)| *o)
            });
            let net = if c.status == "captured" {
                c.amount_minor - c.refunded_minor
            } else {
                0
            };
            match owner {
                Some(order_id) => {
                    *net_by_key.entry(order_id).or_default() += net;
                    if c.status == "captured" {
                        *charge_count.entry(order_id).or_default() += 1;
                    }
                }
                None if net != 0 => inv.fail(|| {
                    format!(
                        "the provider holds {net} from charge {} that no payment made",
                        c.idempotency_key
                    )
                }),
                None => {}
            }
        }
    } else {
        inv.notes
            .push("the payment provider was not read: payment's own records only".into());
    }
    for o in order.orders.iter().filter(|o| is_final(&o.status)) {
        let expected = if o.status == "shipped" {
            o.total_minor
        } else {
            0
        };
        let recorded = payments
            .get(o.id.as_str())
            .map_or(0, |p| p.captured_minor - p.refunded_minor);
        let at_provider = if psp.is_some() {
            net_by_key.get(o.id.as_str()).copied().unwrap_or(0)
        } else {
            recorded
        };
        inv.expect(at_provider == expected && recorded == expected, || {
            format!(
                "order {} is {}: expected {expected} kept, the provider keeps {at_provider} ({} captures), payment records {recorded}",
                o.id,
                o.status,
                charge_count.get(o.id.as_str()).copied().unwrap_or(0)
            )
        });
    }
    inv
}

/// Per SKU: the ledger explains the levels, levels are in range, shipped units match shipped
/// orders, restocks are all there, and no final order still holds stock.
fn stock_conserved(inputs: &Inputs<'_>) -> Invariant {
    let mut inv = Invariant::new("stock conserved");
    let Some(inventory) = inputs.state("inventory") else {
        return inv;
    };
    let mut shipped_by_sku: HashMap<&str, i64> = HashMap::new();
    let mut status_of: HashMap<&str, &str> = HashMap::new();
    if let Some(order) = inputs.state("order") {
        for o in &order.orders {
            status_of.insert(o.id.as_str(), o.status.as_str());
            if o.status == "shipped" {
                for i in &o.items {
                    *shipped_by_sku.entry(i.sku.as_str()).or_default() += i.quantity;
                }
            }
        }
    }
    let mut restocked_ok: HashMap<&str, i64> = HashMap::new();
    let mut restocked_any: HashMap<&str, i64> = HashMap::new();
    for a in inputs.attempts.iter().filter(|a| a.op == Op::Restock) {
        let (Some(sku), Some(q)) = (&a.sku, a.quantity) else {
            continue;
        };
        if a.is_final && is_2xx(a) {
            *restocked_ok.entry(sku.as_str()).or_default() += i64::from(q);
        }
        // Any attempt might have been applied (an answer lost on the way back).
        *restocked_any.entry(sku.as_str()).or_default() += i64::from(q);
    }
    let mut held_by_sku: HashMap<&str, i64> = HashMap::new();
    for r in &inventory.reservations {
        if r.status == "reserved" {
            for l in &r.lines {
                *held_by_sku.entry(l.sku.as_str()).or_default() += l.quantity;
            }
            let order_status = status_of.get(r.order_id.as_str()).copied();
            inv.expect(order_status.is_none_or(|s| !is_final(s)), || {
                format!(
                    "order {} is {} but still holds its reservation",
                    r.order_id,
                    order_status.unwrap_or("?")
                )
            });
        }
    }
    for s in &inventory.stock {
        let sku = s.sku.as_str();
        inv.expect(s.on_hand == s.adjustments + s.commits, || {
            format!(
                "{sku}: on_hand {} but the ledger says {} adjusted {} committed",
                s.on_hand, s.adjustments, s.commits
            )
        });
        inv.expect(s.reserved == s.reserves + s.releases + s.commits, || {
            format!(
                "{sku}: reserved {} but the ledger says {} + {} + {}",
                s.reserved, s.reserves, s.releases, s.commits
            )
        });
        inv.expect(
            s.on_hand >= 0 && s.reserved >= 0 && s.reserved <= s.on_hand,
            || {
                format!(
                    "{sku}: on_hand {} reserved {} out of range",
                    s.on_hand, s.reserved
                )
            },
        );
        let held = held_by_sku.get(sku).copied().unwrap_or(0);
        inv.expect(s.reserved == held, || {
            format!(
                "{sku}: reserved {} but open reservations hold {held}",
                s.reserved
            )
        });
        let shipped = shipped_by_sku.get(sku).copied().unwrap_or(0);
        inv.expect(-s.commits == shipped, || {
            format!(
                "{sku}: {} units left the warehouse, shipped orders hold {shipped}",
                -s.commits
            )
        });
        if let Some(initial) = inputs.notes.and_then(|n| n.initial_adjustments.get(sku)) {
            let added = s.adjustments - initial;
            let ok = restocked_ok.get(sku).copied().unwrap_or(0);
            let any = restocked_any.get(sku).copied().unwrap_or(0);
            inv.expect(added >= ok && added <= any, || {
                format!("{sku}: {added} units were restocked; clients were told {ok} (at most {any} sent)")
            });
        }
    }
    inv
}

/// Every order final, not parked; order, payment, inventory and shipping agree on it.
fn saga_consistency(inputs: &Inputs<'_>) -> Invariant {
    let mut inv = Invariant::new("saga consistency");
    let Some(order) = inputs.state("order") else {
        return inv;
    };
    let payments = inputs.payments();
    let reservations: HashMap<&str, &super::state::Reservation> = inputs
        .state("inventory")
        .map(|s| {
            s.reservations
                .iter()
                .map(|r| (r.order_id.as_str(), r))
                .collect()
        })
        .unwrap_or_default();
    let shipments: HashMap<&str, &super::state::Shipment> = inputs
        .state("shipping")
        .map(|s| {
            s.shipments
                .iter()
                .map(|r| (r.order_id.as_str(), r))
                .collect()
        })
        .unwrap_or_default();
    let mut by_status: BTreeMap<&str, u64> = BTreeMap::new();
    for o in &order.orders {
        *by_status.entry(o.status.as_str()).or_default() += 1;
        let id = o.id.as_str();
        if !is_final(&o.status) {
            let saga = o.saga.as_ref().map_or("none".to_owned(), |s| {
                format!("{} at {} after {} attempts", s.status, s.step, s.attempts)
            });
            inv.fail(|| format!("order {id} is still {} (saga {saga})", o.status));
            continue;
        }
        if let Some(s) = &o.saga {
            if s.status == "stuck" {
                inv.fail(|| format!("order {id}: saga parked as stuck at {}", s.step));
                continue;
            }
        }
        let reservation = reservations.get(id).map(|r| r.status.as_str());
        let shipment = shipments.get(id).map(|s| s.status.as_str());
        let payment = payments.get(id).map(|p| p.status.as_str());
        let mut problems = Vec::new();
        match o.status.as_str() {
            "shipped" => {
                if reservation != Some("committed") {
                    problems.push(format!("reservation {reservation:?}"));
                }
                if shipment != Some("dispatched") {
                    problems.push(format!("shipment {shipment:?}"));
                }
                if payment != Some("captured") {
                    problems.push(format!("payment {payment:?}"));
                }
            }
            _ => {
                if matches!(reservation, Some("reserved" | "committed")) {
                    problems.push(format!("reservation {reservation:?}"));
                }
                if shipment == Some("dispatched") {
                    problems.push("shipment dispatched".into());
                }
                if payment == Some("captured") {
                    problems.push("payment captured".into());
                }
            }
        }
        if o.shipment_status == "dispatched" && shipment != Some("dispatched") {
            problems.push(format!("order says dispatched, shipping {shipment:?}"));
        }
        if problems.is_empty() {
            inv.ok();
        } else {
            inv.fail(|| format!("order {id} is {}: {}", o.status, problems.join(", ")));
        }
    }
    inv.notes.push(
        by_status
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    inv
}

/// Outboxes drained, no dead letters, each notification once.
fn messaging(inputs: &Inputs<'_>) -> Invariant {
    let mut inv = Invariant::new("messaging");
    let mut services: Vec<(&&str, &ServiceState)> = inputs.states.iter().collect();
    services.sort_by_key(|(name, _)| **name);
    let (mut processed, mut duplicates) = (0, 0);
    for (name, s) in services {
        let Some(m) = &s.messaging else {
            continue;
        };
        processed += m.inbox_processed;
        duplicates += m.inbox_duplicates;
        inv.expect(m.outbox_unsent == 0, || {
            format!("{name}: {} events never left the outbox", m.outbox_unsent)
        });
        inv.expect(m.dead_letters == 0, || {
            format!("{name}: {} dead letters", m.dead_letters)
        });
        inv.expect(m.lag() == 0, || {
            let behind: Vec<String> = m
                .subscriptions
                .iter()
                .filter(|s| s.lag.unwrap_or(0) > 0)
                .map(|s| format!("{} {}", s.subscription, s.lag.unwrap_or(0)))
                .collect();
            format!("{name}: consumers behind ({})", behind.join(", "))
        });
    }
    if let Some(n) = inputs.state("notification") {
        let mut seen: HashMap<(&str, &str), u32> = HashMap::new();
        for x in &n.notifications {
            if let Some(order) = &x.order_id {
                *seen.entry((order.as_str(), x.kind.as_str())).or_default() += 1;
            }
        }
        for ((order, kind), count) in seen {
            inv.expect(count == 1, || {
                format!("order {order}: {count} notifications of kind {kind}")
            });
        }
    }
    inv.notes.push(format!(
        "{processed} events handled once, {duplicates} redeliveries absorbed by the inboxes"
    ));
    inv
}

/// No panic; no process ended that the supervisor or the nemesis did not end.
fn liveness(inputs: &Inputs<'_>) -> Invariant {
    let mut inv = Invariant::new("liveness");
    for (instance, line) in inputs.panics {
        inv.fail(|| format!("{instance} panicked: {line}"));
    }
    let killed: HashSet<u32> = inputs
        .notes
        .map(|n| n.kills.iter().map(|k| k.pid).collect())
        .unwrap_or_default();
    let mut expected = 0;
    for e in inputs.exits {
        if e.signal == Some(9) && killed.contains(&e.pid) {
            expected += 1;
            inv.ok();
        } else {
            inv.fail(|| {
                format!(
                    "{} (pid {}) ended on its own while {}: code {:?}, signal {:?}",
                    e.instance_id, e.pid, e.phase, e.code, e.signal
                )
            });
        }
    }
    inv.notes.push(format!(
        "{expected} exits caused by the nemesis, {} panics",
        inputs.panics.len()
    ));
    inv
}

/// Share of final placements answered 2xx during the fault phase.
pub fn fault_phase_2xx(inputs: &Inputs<'_>) -> Option<f64> {
    let notes = inputs.notes?;
    let from = (notes.faults_from_unix_ms - inputs.record_started_unix_ms) as f64;
    let to = (notes.faults_to_unix_ms - inputs.record_started_unix_ms) as f64;
    let (mut total, mut ok) = (0u64, 0u64);
    for a in final_placements(inputs).filter(|a| a.t_ms >= from && a.t_ms < to) {
        total += 1;
        if is_2xx(a) {
            ok += 1;
        }
    }
    (total > 0).then(|| ok as f64 / total as f64)
}

/// Share of `tok_visa` orders (not cancelled by their customer, not to postal code 00000)
/// that ended shipped.
pub fn visa_confirmed_share(
    states: &HashMap<&'static str, ServiceState>,
    attempts: &[Attempt],
) -> Option<f64> {
    let order = states.get("order")?;
    let status: HashMap<&str, &str> = order
        .orders
        .iter()
        .map(|o| (o.id.as_str(), o.status.as_str()))
        .collect();
    let ids: HashSet<&str> = attempts
        .iter()
        .filter(|a| a.op == Op::PlaceOrder && a.scenario == Scenario::OrderVisa && is_2xx(a))
        .filter_map(|a| a.order_id.as_deref())
        .collect();
    let shipped = ids
        .iter()
        .filter(|id| status.get(*id) == Some(&"shipped"))
        .count();
    (!ids.is_empty()).then(|| shipped as f64 / ids.len() as f64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::state::*;
    use super::*;

    fn order(id: &str, status: &str, total: i64) -> Order {
        Order {
            id: id.into(),
            user_id: "u".into(),
            status: status.into(),
            total_minor: total,
            items: vec![OrderItem {
                product_id: "p".into(),
                sku: "SKU-1".into(),
                quantity: 1,
            }],
            ..Order::default()
        }
    }

    /// A consistent shop: one shipped order, one rejected one.
    fn consistent() -> HashMap<&'static str, ServiceState> {
        let mut states = HashMap::new();
        states.insert(
            "order",
            ServiceState {
                orders: vec![order("o1", "shipped", 500), order("o2", "rejected", 500)],
                idempotency_keys: vec![
                    IdempotencyKey {
                        user_id: "u".into(),
                        key: "k1".into(),
                        order_id: Some("o1".into()),
                    },
                    IdempotencyKey {
                        user_id: "u".into(),
                        key: "k2".into(),
                        order_id: Some("o2".into()),
                    },
                ],
                messaging: Some(Messaging::default()),
                ..ServiceState::default()
            },
        );
        states.insert(
            "payment",
            ServiceState {
                payments: vec![Payment {
                    order_id: "o1".into(),
                    status: "captured".into(),
                    amount_minor: 500,
                    psp_charge_key: "pay-o1".into(),
                    captured_minor: 500,
                    refunded_minor: 0,
                }],
                ..ServiceState::default()
            },
        );
        states.insert(
            "psp",
            ServiceState {
                charges: vec![Charge {
                    idempotency_key: "pay-o1".into(),
                    status: "captured".into(),
                    amount_minor: 500,
                    refunded_minor: 0,
                }],
                ..ServiceState::default()
            },
        );
        states.insert(
            "inventory",
            ServiceState {
                stock: vec![Stock {
                    sku: "SKU-1".into(),
                    on_hand: 49,
                    reserved: 0,
                    adjustments: 50,
                    commits: -1,
                    reserves: 2,
                    releases: -1,
                }],
                reservations: vec![
                    Reservation {
                        order_id: "o1".into(),
                        status: "committed".into(),
                        ..Reservation::default()
                    },
                    Reservation {
                        order_id: "o2".into(),
                        status: "released".into(),
                        ..Reservation::default()
                    },
                ],
                ..ServiceState::default()
            },
        );
        states.insert(
            "shipping",
            ServiceState {
                shipments: vec![Shipment {
                    order_id: "o1".into(),
                    status: "dispatched".into(),
                }],
                ..ServiceState::default()
            },
        );
        states
    }

    fn run(states: &HashMap<&'static str, ServiceState>) -> Vec<Invariant> {
        check_all(&Inputs {
            states,
            attempts: &[],
            record_started_unix_ms: 0,
            notes: None,
            exits: &[],
            panics: &[],
            has_record: false,
        })
    }

    fn violated(invs: &[Invariant]) -> Vec<&'static str> {
        invs.iter()
            .filter(|i| i.violations > 0)
            .map(|i| i.name)
            .collect()
    }

    #[test]
    fn the_fingerprint_changes_with_any_step_of_the_system() {
        let a = consistent();
        assert_eq!(fingerprint(&a), fingerprint(&consistent()));
        let mut b = consistent();
        b.get_mut("inventory").unwrap().stock[0].commits = -2;
        assert_ne!(fingerprint(&a), fingerprint(&b));
        let mut c = consistent();
        c.get_mut("order")
            .unwrap()
            .messaging
            .as_mut()
            .unwrap()
            .inbox_processed = 9;
        assert_ne!(fingerprint(&a), fingerprint(&c));
        let mut d = consistent();
        d.get_mut("order").unwrap().orders[1].status = "cancelled".into();
        assert_ne!(fingerprint(&a), fingerprint(&d));
    }

    #[test]
    fn a_consistent_shop_passes() {
        let invs = run(&consistent());
        assert!(violated(&invs).is_empty(), "{invs:#?}");
        assert!(quiescent(&consistent()));
    }

    #[test]
    fn a_second_capture_is_a_double_charge_and_nothing_else() {
        let mut states = consistent();
        states.get_mut("psp").unwrap().charges.push(Charge {
            idempotency_key: "pay-o1-dup".into(),
            status: "captured".into(),
            amount_minor: 500,
            refunded_minor: 0,
        });
        assert_eq!(violated(&run(&states)), ["no double charge"]);
    }

    #[test]
    fn a_reservation_left_behind_breaks_stock_conservation() {
        let mut states = consistent();
        let inv = states.get_mut("inventory").unwrap();
        inv.reservations[1].status = "reserved".into();
        inv.stock[0].reserved = 1;
        inv.stock[0].releases = 0;
        assert_eq!(
            violated(&run(&states)),
            ["stock conserved", "saga consistency"]
        );
    }

    #[test]
    fn an_order_that_is_not_final_fails_saga_consistency() {
        let mut states = consistent();
        states.get_mut("order").unwrap().orders[1].status = "payment_pending".into();
        assert!(!quiescent(&states));
        assert_eq!(violated(&run(&states)), ["saga consistency"]);
    }

    #[test]
    fn a_lost_order_and_a_key_with_two_orders_are_found() {
        let states = consistent();
        let attempt = |key: &str, id: &str| Attempt {
            t_ms: 0.0,
            op: Op::PlaceOrder,
            scenario: Scenario::OrderVisa,
            attempt: 1,
            is_final: true,
            status: Some(201),
            error: None,
            latency_ms: 1.0,
            user: Some("u".into()),
            key: Some(key.into()),
            order_id: Some(id.into()),
            token: None,
            postal_code: None,
            items: None,
            sku: None,
            quantity: None,
            replayed: None,
        };
        let attempts = [
            attempt("k1", "o1"),
            attempt("k1", "o2"),
            attempt("k9", "o9"),
        ];
        let invs = check_all(&Inputs {
            states: &states,
            attempts: &attempts,
            record_started_unix_ms: 0,
            notes: None,
            exits: &[],
            panics: &[],
            has_record: true,
        });
        assert_eq!(violated(&invs), ["no lost order", "one order per key"]);
    }

    #[test]
    fn an_exit_the_nemesis_did_not_cause_is_a_liveness_failure() {
        let states = consistent();
        let exit = |pid, signal| ExitRecord {
            at_unix_ms: 0,
            service: "order".into(),
            instance_id: "order-1".into(),
            pid,
            code: None,
            signal: Some(signal),
            phase: "running".into(),
        };
        let notes = ChaosNotes {
            kills: vec![Kill {
                at_unix_ms: 0,
                instance_id: "order-1".into(),
                pid: 7,
            }],
            ..ChaosNotes::default()
        };
        let exits = [exit(7, 9), exit(8, 6)];
        let invs = check_all(&Inputs {
            states: &states,
            attempts: &[],
            record_started_unix_ms: 0,
            notes: Some(&notes),
            exits: &exits,
            panics: &[],
            has_record: false,
        });
        let live = invs.iter().find(|i| i.name == "liveness").unwrap();
        assert_eq!((live.checked, live.violations), (2, 1));
    }
}
