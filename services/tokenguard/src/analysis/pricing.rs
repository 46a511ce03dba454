//! Model prices in USD per million tokens, input and output. The defaults are OpenAI's published
//! list prices; `TOKENGUARD_PRICES` (a JSON object `{model: {input, output}}`) overrides or adds
//! entries, and dynamic configuration will replace the table at run time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub input: f64,
    pub output: f64,
}

impl Price {
    /// Dollars for a number of input and output tokens.
    pub fn usd(&self, input_tokens: usize, output_tokens: usize) -> f64 {
        (input_tokens as f64 * self.input + output_tokens as f64 * self.output) / 1_000_000.0
    }
}

const DEFAULTS: &[(&str, f64, f64)] = &[
    ("gpt-5", 1.25, 10.0),
    ("gpt-5-mini", 0.25, 2.0),
    ("gpt-5-nano", 0.05, 0.40),
    ("gpt-4.1", 2.0, 8.0),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("gpt-4o", 2.50, 10.0),
    ("gpt-4o-mini", 0.15, 0.60),
    ("o1", 15.0, 60.0),
    ("o1-mini", 1.10, 4.40),
    ("o3", 2.0, 8.0),
    ("o3-mini", 1.10, 4.40),
    ("o4-mini", 1.10, 4.40),
    ("gpt-4-turbo", 10.0, 30.0),
    ("gpt-4", 30.0, 60.0),
    ("gpt-3.5-turbo", 0.50, 1.50),
];

/// Model → price, matched by the longest model-name prefix (`gpt-4o-mini-2024-07-18` is priced
/// as `gpt-4o-mini`).
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    prices: BTreeMap<String, Price>,
}

impl Default for PriceTable {
    fn default() -> Self {
        Self {
            prices: DEFAULTS
                .iter()
                .map(|(m, i, o)| {
                    (
                        (*m).to_owned(),
                        Price {
                            input: *i,
                            output: *o,
                        },
                    )
                })
                .collect(),
        }
    }
}

impl PriceTable {
    /// The defaults with `overrides` applied (negative or non-finite prices are refused).
    pub fn with_overrides(overrides: BTreeMap<String, Price>) -> Result<Self, String> {
        let mut table = Self::default();
        for (model, price) in overrides {
            if !(price.input.is_finite()
                && price.output.is_finite()
                && price.input >= 0.0
                && price.output >= 0.0)
            {
                return Err(format!(
                    "price of {model:?} must be two non-negative numbers"
                ));
            }
            table.prices.insert(model.to_ascii_lowercase(), price);
        }
        Ok(table)
    }

    /// The price of `model`, if the table knows it.
    pub fn get(&self, model: &str) -> Option<(&str, Price)> {
        let m = model.trim().to_ascii_lowercase();
        let m = m.strip_prefix("openai/").unwrap_or(&m);
        self.prices
            .iter()
            .filter(|(name, _)| {
                m == name.as_str()
                    || m.strip_prefix(name.as_str())
                        .is_some_and(|rest| rest.starts_with('-'))
            })
            .max_by_key(|(name, _)| name.len())
            .map(|(name, price)| (name.as_str(), *price))
    }

    /// Every entry.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Price)> {
        self.prices.iter().map(|(k, v)| (k.as_str(), v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins() {
        let t = PriceTable::default();
        assert_eq!(t.get("gpt-4o-mini-2024-07-18").unwrap().0, "gpt-4o-mini");
        assert_eq!(t.get("gpt-4o-2024-11-20").unwrap().0, "gpt-4o");
        assert_eq!(t.get("gpt-4").unwrap().0, "gpt-4");
        assert_eq!(t.get("gpt-4-0613").unwrap().0, "gpt-4");
        assert!(
            t.get("gpt-4x").is_none(),
            "a different model is not a dated variant"
        );
        assert!(t.get("llama-3").is_none());
        let p = t.get("gpt-4o").unwrap().1;
        assert!((p.usd(1_000_000, 500_000) - 7.5).abs() < 1e-9);
    }

    #[test]
    fn overrides_apply_and_are_checked() {
        let mut o = BTreeMap::new();
        o.insert(
            "my-model".to_owned(),
            Price {
                input: 1.0,
                output: 2.0,
            },
        );
        let t = PriceTable::with_overrides(o).unwrap();
        assert_eq!(t.get("my-model").unwrap().1.output, 2.0);
        let mut bad = BTreeMap::new();
        bad.insert(
            "x".to_owned(),
            Price {
                input: -1.0,
                output: 0.0,
            },
        );
        assert!(PriceTable::with_overrides(bad).is_err());
    }
}
