//! Cost types (RFC 7285 §6.1, §10.5–§10.7), cost constraints (§11.3.2.3) and the ordinal
//! ranking of §6.1.2.2 (ranks relative to all values of the answer, §6.2).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Cost mode (§10.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CostMode {
    /// Costs are numbers that arithmetic applies to (§6.1.2.1).
    Numerical,
    /// Costs are ranks, lower is preferred (§6.1.2.2).
    Ordinal,
}

impl CostMode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CostMode::Numerical => "numerical",
            CostMode::Ordinal => "ordinal",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "numerical" => Some(CostMode::Numerical),
            "ordinal" => Some(CostMode::Ordinal),
            _ => None,
        }
    }
}

/// The `routingcost` metric every server offers (§6.1.1.1).
pub const ROUTINGCOST: &str = "routingcost";
/// The `hopcount` metric (registered in §14.2).
pub const HOPCOUNT: &str = "hopcount";

/// A cost type (§10.7): a metric and a mode, with an optional description that servers
/// ignore in requests.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CostType {
    /// How costs are interpreted.
    #[serde(rename = "cost-mode")]
    pub cost_mode: CostMode,
    /// What costs represent.
    #[serde(rename = "cost-metric")]
    pub cost_metric: String,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl CostType {
    /// A cost type with no description.
    pub fn new(cost_metric: &str, cost_mode: CostMode) -> Self {
        CostType {
            cost_mode,
            cost_metric: cost_metric.to_owned(),
            description: None,
        }
    }

    /// Whether two cost types name the same metric and mode (descriptions do not count).
    pub fn same(&self, other: &CostType) -> bool {
        self.cost_mode == other.cost_mode && self.cost_metric == other.cost_metric
    }
}

/// A cost value. Integral values are written as JSON integers, as in every RFC example;
/// others as floating point (IEEE 754 double, §11.3.2.3).
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Cost(pub f64);

impl Serialize for Cost {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.fract() == 0.0 && v.abs() < 9.0e15 {
            s.serialize_i64(v as i64)
        } else {
            s.serialize_f64(v)
        }
    }
}

impl<'de> Deserialize<'de> for Cost {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        f64::deserialize(d).map(Cost)
    }
}

/// Comparison operator of a constraint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `gt`
    Gt,
    /// `lt`
    Lt,
    /// `ge`
    Ge,
    /// `le`
    Le,
    /// `eq`
    Eq,
}

/// One constraint of §11.3.2.3: an operator and a target value, e.g. `le 10`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Constraint {
    /// The operator.
    pub op: Op,
    /// The target cost, in the units of the requested cost type.
    pub value: f64,
}

impl Constraint {
    /// Parses `"<op> <number>"` (any whitespace between); `None` if malformed.
    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.split_whitespace();
        let op = match it.next()? {
            "gt" => Op::Gt,
            "lt" => Op::Lt,
            "ge" => Op::Ge,
            "le" => Op::Le,
            "eq" => Op::Eq,
            _ => return None,
        };
        let value: f64 = it.next()?.parse().ok()?;
        if it.next().is_some() || !value.is_finite() {
            return None;
        }
        Some(Constraint { op, value })
    }

    /// Whether `cost` meets the constraint.
    pub fn admits(&self, cost: f64) -> bool {
        match self.op {
            Op::Gt => cost > self.value,
            Op::Lt => cost < self.value,
            Op::Ge => cost >= self.value,
            Op::Le => cost <= self.value,
            Op::Eq => cost == self.value,
        }
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            Op::Gt => "gt",
            Op::Lt => "lt",
            Op::Ge => "ge",
            Op::Le => "le",
            Op::Eq => "eq",
        };
        write!(f, "{op} {}", self.value)
    }
}

/// Replaces every cost by its dense rank among all of them: the smallest becomes 1, equal
/// costs share a rank (§6.1.2.2 allows ties), the next distinct cost gets the next integer.
pub fn rank_in_place(costs: &mut [f64]) {
    let mut distinct: Vec<f64> = costs.to_vec();
    distinct.sort_unstable_by(f64::total_cmp);
    distinct.dedup();
    for c in costs.iter_mut() {
        let r = distinct.partition_point(|d| d.total_cmp(c).is_lt());
        *c = (r + 1) as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraints_parse_and_filter() {
        let c = Constraint::parse("le  10").unwrap();
        assert!(c.admits(10.0) && !c.admits(10.5));
        assert!(Constraint::parse("gt 1.5").unwrap().admits(2.0));
        assert!(Constraint::parse("eq 3").unwrap().admits(3.0));
        for bad in ["", "le", "lte 3", "le x", "le 3 4", "le NaN", "le inf"] {
            assert_eq!(Constraint::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn ranks_are_dense_and_start_at_one() {
        let mut c = [10.0, 1.0, 5.0, 5.0, 40.0];
        rank_in_place(&mut c);
        assert_eq!(c, [3.0, 1.0, 2.0, 2.0, 4.0]);
    }

    #[test]
    fn integral_costs_encode_as_json_integers() {
        assert_eq!(serde_json::to_string(&Cost(5.0)).unwrap(), "5");
        assert_eq!(serde_json::to_string(&Cost(2.5)).unwrap(), "2.5");
    }
}
