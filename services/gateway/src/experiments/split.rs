//! The older way of naming an experiment's variants: `{"traffic_split": {"control": 50,
//! "treatment": 50}}`, one variant per key with that share and no overrides. Accepted wherever
//! `variants` is, never together with it.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::design::{Overrides, Variant};
use crate::error::{GatewayError, Result};

/// The variant the shorthand takes as the control, wherever its key appears.
const CONTROL: &str = "control";

/// Variant names and shares, in the order the body gives them.
#[derive(Debug, Clone, Default, PartialEq, utoipa::ToSchema)]
#[schema(value_type = Object, example = json!({"control": 50, "treatment": 50}))]
pub struct TrafficSplit(Vec<(String, f64)>);

impl<'de> Deserialize<'de> for TrafficSplit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct InOrder;
        impl<'de> Visitor<'de> for InOrder {
            type Value = TrafficSplit;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object mapping variant names to their shares")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, f64>()? {
                    entries.push(entry);
                }
                Ok(TrafficSplit(entries))
            }
        }
        d.deserialize_map(InOrder)
    }
}

impl TrafficSplit {
    /// The variants it names: `control` first when a key has that name, the others in the
    /// order given. Their shares and names are checked with the rest of the variants.
    pub fn into_variants(self) -> Vec<Variant> {
        let (mut control, others): (Vec<_>, Vec<_>) =
            self.0.into_iter().partition(|(name, _)| name == CONTROL);
        control.extend(others);
        control
            .into_iter()
            .map(|(name, traffic_split)| Variant {
                name,
                traffic_split,
                description: String::new(),
                overrides: Overrides::default(),
            })
            .collect()
    }
}

/// The variants of a body that may give them as `variants` or as the `traffic_split` shorthand
/// (not both). `None` when it gives neither.
pub fn variants_of(
    variants: Option<Vec<Variant>>,
    shorthand: Option<TrafficSplit>,
) -> Result<Option<Vec<Variant>>> {
    match (variants, shorthand) {
        (Some(_), Some(_)) => Err(GatewayError::Invalid(
            "give the variants either as `variants` or as the `traffic_split` shorthand, not both"
                .into(),
        )),
        (Some(v), None) => Ok(Some(v)),
        (None, Some(split)) => Ok(Some(split.into_variants())),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(json: &str) -> TrafficSplit {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn keys_become_variants_with_the_control_first() {
        let v = split(r#"{"treatment": 30, "control": 70}"#).into_variants();
        let named: Vec<(&str, f64)> = v
            .iter()
            .map(|v| (v.name.as_str(), v.traffic_split))
            .collect();
        assert_eq!(named, [("control", 70.0), ("treatment", 30.0)]);
        assert!(v.iter().all(|v| v.overrides.is_empty()));
        let v = split(r#"{"b": 0.5, "a": 0.5}"#).into_variants();
        assert_eq!(v[0].name, "b", "document order without a control");
    }

    #[test]
    fn one_form_or_the_other() {
        let shorthand = split(r#"{"control": 50, "treatment": 50}"#);
        assert!(variants_of(Some(Vec::new()), Some(shorthand.clone())).is_err());
        assert_eq!(
            variants_of(None, Some(shorthand)).unwrap().map(|v| v.len()),
            Some(2)
        );
        assert_eq!(variants_of(None, None).unwrap(), None);
        assert!(serde_json::from_str::<TrafficSplit>(r#"{"a": "half"}"#).is_err());
        assert!(serde_json::from_str::<TrafficSplit>("[50, 50]").is_err());
    }
}
