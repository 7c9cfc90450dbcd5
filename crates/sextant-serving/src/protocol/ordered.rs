//! The top levels of a JSON body with object keys in the order sent. `serde_json::Map` sorts
//! its keys (the workspace does not enable `preserve_order`, and flipping it would change
//! the key order of every map in the binary, including ones that are hashed), but pandas
//! builds a `dataframe_records` table with its columns in the order the keys first appear,
//! and a model without a column signature takes them in that order. Only the first
//! `levels` levels are kept as [`Json`]; below that the ordinary `Value` is used, so a large
//! tensor is parsed once, not converted afterwards.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A JSON value whose objects, down to some depth, keep their keys in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// A scalar, or anything below the kept levels.
    Value(Value),
    /// A list.
    Array(Vec<Json>),
    /// An object, keys in the order sent (duplicates kept; the last one wins on lookup).
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Parses `bytes`, keeping key order in the first `levels` levels.
    pub fn parse(bytes: &[u8], levels: u8) -> Result<Json, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let json = Levels(levels).deserialize(&mut de)?;
        de.end()?;
        Ok(json)
    }

    /// The ordinary value (an object's key order is lost; for duplicate keys the last wins,
    /// as `serde_json` and Python's `json` do).
    pub fn into_value(self) -> Value {
        match self {
            Json::Value(v) => v,
            Json::Array(items) => Value::Array(items.into_iter().map(Json::into_value).collect()),
            Json::Object(pairs) => {
                let mut map = Map::new();
                for (k, v) in pairs {
                    map.insert(k, v.into_value());
                }
                Value::Object(map)
            }
        }
    }
}

/// Deserializes a [`Json`] keeping order for this many more levels.
#[derive(Clone, Copy)]
struct Levels(u8);

impl<'de> DeserializeSeed<'de> for Levels {
    type Value = Json;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        if self.0 == 0 {
            return serde::Deserialize::deserialize(d).map(Json::Value);
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Levels {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Value(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Value(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Value(Value::from(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(Json::Value(Value::from(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::Value(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::Value(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Value(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Value(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(Levels(self.0 - 1))? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut pairs = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Levels(self.0 - 1))?;
            pairs.push((key, value));
        }
        Ok(Json::Object(pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_key_order_in_the_kept_levels() {
        let j = Json::parse(br#"{"z": [{"b": 1, "a": {"y": 2, "x": 3}}], "a": 1.5}"#, 3).unwrap();
        let Json::Object(top) = &j else {
            panic!("{j:?}")
        };
        assert_eq!(top[0].0, "z");
        assert_eq!(top[1], ("a".to_owned(), Json::Value(json!(1.5))));
        let Json::Array(records) = &top[0].1 else {
            panic!()
        };
        let Json::Object(record) = &records[0] else {
            panic!()
        };
        assert_eq!(record[0].0, "b");
        // Below the kept levels, an ordinary value.
        assert_eq!(record[1].1, Json::Value(json!({"x": 3, "y": 2})));
        assert_eq!(
            j.into_value(),
            json!({"a": 1.5, "z": [{"a": {"x": 3, "y": 2}, "b": 1}]})
        );
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        assert!(Json::parse(b"{\"a\": 1} x", 3).is_err());
        assert!(Json::parse(b"{\"a\": }", 3).is_err());
        assert_eq!(Json::parse(b"null", 3).unwrap(), Json::Value(Value::Null));
    }

    #[test]
    fn duplicate_keys_keep_the_last_value() {
        let j = Json::parse(br#"{"a": 1, "a": 2}"#, 2).unwrap();
        assert_eq!(j.into_value(), json!({"a": 2}));
    }
}
