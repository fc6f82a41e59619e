//! Delegation mode: read the payloads Envoy's `jwt_authn` filter verified and stored in
//! dynamic metadata (`payload_in_metadata`).
//!
//! Envoy answers the `metadata` property with the serialised `envoy.config.core.v3.Metadata`
//! message (measured on Envoy 1.40). Only its `filter_metadata` map (field 1) is declared;
//! prost skips the rest. Struct values become JSON for the core.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};

use crate::host::Host;

const NAMESPACE: &str = "envoy.filters.http.jwt_authn";

#[derive(Clone, PartialEq, prost::Message)]
struct Metadata {
    #[prost(map = "string, message", tag = "1")]
    filter_metadata: HashMap<String, prost_types::Struct>,
}

/// `jwt_authn`'s namespace as JSON, or `None` when it wrote nothing for this request.
pub fn payloads(host: &dyn Host) -> Option<Map<String, Value>> {
    let bytes = host.property(&["metadata"]).ok().flatten()?;
    let metadata = <Metadata as prost::Message>::decode(bytes.as_slice()).ok()?;
    let namespace = metadata.filter_metadata.get(NAMESPACE)?;
    Some(struct_to_json(namespace))
}

fn struct_to_json(s: &prost_types::Struct) -> Map<String, Value> {
    s.fields
        .iter()
        .map(|(k, v)| (k.clone(), value_to_json(v)))
        .collect()
}

fn value_to_json(value: &prost_types::Value) -> Value {
    use prost_types::value::Kind;
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        // Struct numbers are doubles; claims like `exp` are integers and must stay so.
        Some(Kind::NumberValue(n)) => {
            if n.fract() == 0.0 && *n >= 0.0 && *n < 9.0e15 {
                Value::Number(Number::from(*n as u64))
            } else if n.fract() == 0.0 && *n < 0.0 && *n > -9.0e15 {
                Value::Number(Number::from(*n as i64))
            } else {
                Number::from_f64(*n).map_or(Value::Null, Value::Number)
            }
        }
        Some(Kind::StructValue(s)) => Value::Object(struct_to_json(s)),
        Some(Kind::ListValue(list)) => {
            Value::Array(list.values.iter().map(value_to_json).collect())
        }
    }
}
