//! The scenarios a load run starts and the weighted mix that picks them.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// The mix of `bazaar load` when `--mix` is not given.
pub const DEFAULT_MIX: &str = "browse=35,order_visa=30,order_declined=5,order_timeout=3,order_ship_fail=3,cancel=7,orders=8,overview=5,register=2,restock=2";

/// What one arrival of the schedule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// A product list (random page, category or search) and one product.
    Browse,
    /// An order paid with `tok_visa`.
    OrderVisa,
    /// An order paid with `tok_declined`.
    OrderDeclined,
    /// An order paid with `tok_timeout` (the provider answers after the payment timeout).
    OrderTimeout,
    /// An order paid with `tok_visa` to postal code `00000` (the carrier refuses it).
    OrderShipFail,
    /// A `tok_visa` order, then its cancellation 0–2.5 s later.
    Cancel,
    /// The customer's order list.
    Orders,
    /// The composed `/me/overview`.
    Overview,
    /// A new customer registers and logs in.
    Register,
    /// The admin restocks a random product.
    Restock,
}

impl Scenario {
    /// Every scenario, in the order reports list them.
    pub const ALL: [Scenario; 10] = [
        Scenario::Browse,
        Scenario::OrderVisa,
        Scenario::OrderDeclined,
        Scenario::OrderTimeout,
        Scenario::OrderShipFail,
        Scenario::Cancel,
        Scenario::Orders,
        Scenario::Overview,
        Scenario::Register,
        Scenario::Restock,
    ];

    /// The name used in `--mix`, reports and records.
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::Browse => "browse",
            Scenario::OrderVisa => "order_visa",
            Scenario::OrderDeclined => "order_declined",
            Scenario::OrderTimeout => "order_timeout",
            Scenario::OrderShipFail => "order_ship_fail",
            Scenario::Cancel => "cancel",
            Scenario::Orders => "orders",
            Scenario::Overview => "overview",
            Scenario::Register => "register",
            Scenario::Restock => "restock",
        }
    }

    fn parse(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Weights per scenario; a scenario is picked with probability weight / total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    weights: Vec<(Scenario, u32)>,
}

impl Mix {
    /// Parses `name=weight,…` (names from [`Scenario::as_str`], weights whole numbers);
    /// scenarios not named are not run. The error names the part at fault.
    pub fn parse(spec: &str) -> Result<Mix, String> {
        let mut weights: Vec<(Scenario, u32)> = Vec::new();
        for part in spec.split(',').map(str::trim) {
            if part.is_empty() {
                return Err(format!("empty entry in the mix `{spec}`"));
            }
            let Some((name, weight)) = part.split_once('=') else {
                return Err(format!("`{part}`: expected name=weight, e.g. browse=35"));
            };
            let name = name.trim();
            let scenario = Scenario::parse(name).ok_or_else(|| {
                format!(
                    "`{part}`: unknown scenario `{name}` (known: {})",
                    Scenario::ALL.map(Scenario::as_str).join(", ")
                )
            })?;
            let weight: u32 = weight.trim().parse().map_err(|_| {
                format!(
                    "`{part}`: the weight `{}` is not a whole number",
                    weight.trim()
                )
            })?;
            if weight > 1_000_000 {
                return Err(format!("`{part}`: the weight is above 1000000"));
            }
            if weights.iter().any(|(s, _)| *s == scenario) {
                return Err(format!("`{part}`: `{name}` is named twice"));
            }
            weights.push((scenario, weight));
        }
        let mix = Mix { weights };
        if mix.total() == 0 {
            return Err(format!(
                "the mix `{spec}` has no scenario with a weight above 0"
            ));
        }
        Ok(mix)
    }

    /// The sum of the weights.
    pub fn total(&self) -> u64 {
        self.weights.iter().map(|(_, w)| u64::from(*w)).sum()
    }

    /// The weight of one scenario (0 when it is not in the mix).
    pub fn weight(&self, scenario: Scenario) -> u32 {
        self.weights
            .iter()
            .find(|(s, _)| *s == scenario)
            .map_or(0, |(_, w)| *w)
    }

    /// The mix without `scenario`; `None` when nothing would be left.
    pub fn without(&self, scenario: Scenario) -> Option<Mix> {
        let mix = Mix {
            weights: self
                .weights
                .iter()
                .copied()
                .filter(|(s, _)| *s != scenario)
                .collect(),
        };
        (mix.total() > 0).then_some(mix)
    }

    /// Picks a scenario with probability weight / total.
    pub fn pick(&self, rng: &mut impl Rng) -> Scenario {
        let total = self.total().max(1);
        let mut ticket = rng.gen_range(0..total);
        for (scenario, weight) in &self.weights {
            let w = u64::from(*weight);
            if ticket < w {
                return *scenario;
            }
            ticket -= w;
        }
        // Unreachable for a parsed mix (its total is above 0).
        Scenario::Browse
    }

    /// `browse=35,order_visa=30,…` (the scenarios with a weight above 0).
    pub fn spec(&self) -> String {
        self.weights
            .iter()
            .filter(|(_, w)| *w > 0)
            .map(|(s, w)| format!("{s}={w}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Default for Mix {
    fn default() -> Mix {
        Mix::parse(DEFAULT_MIX).unwrap_or(Mix {
            weights: vec![(Scenario::Browse, 1)],
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use rand::SeedableRng as _;

    use super::*;

    #[test]
    fn the_default_mix_names_every_scenario_and_adds_up_to_100() {
        let mix = Mix::parse(DEFAULT_MIX).unwrap();
        assert_eq!(mix.total(), 100);
        assert_eq!(mix.weight(Scenario::Browse), 35);
        assert_eq!(mix.weight(Scenario::OrderVisa), 30);
        assert_eq!(mix.weight(Scenario::Restock), 2);
        assert!(Scenario::ALL.iter().all(|s| mix.weight(*s) > 0));
        assert_eq!(mix.spec(), DEFAULT_MIX);
        assert_eq!(Mix::default(), mix);
    }

    #[test]
    fn a_mix_may_name_some_scenarios_with_spaces_around() {
        let mix = Mix::parse(" browse = 3 , orders=1").unwrap();
        assert_eq!(mix.total(), 4);
        assert_eq!(mix.weight(Scenario::Orders), 1);
        assert_eq!(mix.weight(Scenario::Cancel), 0);
    }

    #[test]
    fn mix_errors_name_the_bad_part() {
        let err = Mix::parse("browse=35,shoplift=3").unwrap_err();
        assert!(err.contains("`shoplift=3`") && err.contains("unknown scenario `shoplift`"));
        assert!(err.contains("order_visa"), "lists the known names: {err}");
        let err = Mix::parse("browse=35,orders=lots").unwrap_err();
        assert!(
            err.contains("`orders=lots`") && err.contains("`lots`"),
            "{err}"
        );
        let err = Mix::parse("browse=-1").unwrap_err();
        assert!(err.contains("`browse=-1`"), "{err}");
        let err = Mix::parse("browse").unwrap_err();
        assert!(err.contains("`browse`: expected name=weight"), "{err}");
        let err = Mix::parse("browse=1,,orders=2").unwrap_err();
        assert!(err.contains("empty entry"), "{err}");
        let err = Mix::parse("browse=1,browse=2").unwrap_err();
        assert!(err.contains("named twice"), "{err}");
        let err = Mix::parse("browse=0,orders=0").unwrap_err();
        assert!(err.contains("no scenario with a weight above 0"), "{err}");
        assert!(Mix::parse("").is_err());
    }

    #[test]
    fn picks_follow_the_weights_and_the_seed() {
        let mix = Mix::parse("browse=3,orders=1,cancel=0").unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let picks: Vec<Scenario> = (0..4000).map(|_| mix.pick(&mut rng)).collect();
        let browse = picks.iter().filter(|s| **s == Scenario::Browse).count();
        let orders = picks.iter().filter(|s| **s == Scenario::Orders).count();
        assert_eq!(browse + orders, 4000, "a weight of 0 is never picked");
        assert!((2800..3200).contains(&browse), "{browse}");
        let mut again = rand::rngs::StdRng::seed_from_u64(7);
        let replay: Vec<Scenario> = (0..4000).map(|_| mix.pick(&mut again)).collect();
        assert_eq!(picks, replay);
    }

    #[test]
    fn a_scenario_can_be_dropped_from_the_mix() {
        let mix = Mix::parse("browse=3,restock=1").unwrap();
        let without = mix.without(Scenario::Restock).unwrap();
        assert_eq!(without.weight(Scenario::Restock), 0);
        assert_eq!(without.total(), 3);
        assert!(Mix::parse("restock=1")
            .unwrap()
            .without(Scenario::Restock)
            .is_none());
    }
}
