//! CRI messages from and to protojson. Out: the JSON crictl prints (Go jsonpb with `EmitDefaults`): lowerCamelCase
//! names in declaration order, enums by name, 64-bit integers as strings, bytes as base64, every
//! field present (unset messages as `null`), map keys sorted.
//!
//! The message is re-read as a `prost_reflect::DynamicMessage` from crius-proto's descriptors and
//! walked here rather than with prost-reflect's serde support, which leaves unset messages out and
//! writes maps in hash order. The result is a `serde_yaml::Value`: its mappings keep insertion order
//! (serde_json's only do with a workspace-wide feature), and it serialises to JSON as well as YAML.

use anyhow::Context;
use base64::Engine;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, Kind, MapKey, MessageDescriptor,
    ReflectMessage, Value as Field,
};
use serde_yaml::{Mapping, Number, Value};
use std::sync::OnceLock;

/// The CRI descriptors, decoded once.
fn pool() -> anyhow::Result<&'static DescriptorPool> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(crius_proto::FILE_DESCRIPTOR_SET).map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| anyhow::anyhow!("decoding the CRI descriptors: {e}"))
}

fn descriptor(full_name: &str) -> anyhow::Result<MessageDescriptor> {
    pool()?
        .get_message_by_name(full_name)
        .with_context(|| format!("no CRI message {full_name}"))
}

/// A `T` (proto type `full_name`) from JSON as protojson parsers take it: proto (snake_case) or
/// JSON (lowerCamelCase) names, enums by name or number, 64-bit integers as numbers or strings.
/// Unknown fields are ignored, as crictl's config loading does.
pub fn from_json<T: prost::Message + Default>(
    v: serde_json::Value,
    full_name: &str,
) -> anyhow::Result<T> {
    let options = DeserializeOptions::new().deny_unknown_fields(false);
    let dynamic = DynamicMessage::deserialize_with_options(descriptor(full_name)?, v, &options)?;
    dynamic
        .transcode_to()
        .with_context(|| format!("converting the {full_name}"))
}

/// `msg` (of proto type `full_name`, e.g. `runtime.v1.ListContainersResponse`) as protojson.
pub fn to_value(msg: &impl prost::Message, full_name: &str) -> anyhow::Result<Value> {
    let desc = descriptor(full_name)?;
    let dynamic = DynamicMessage::decode(desc, msg.encode_to_vec().as_slice())
        .with_context(|| format!("re-reading a {full_name}"))?;
    Ok(message(&dynamic))
}

fn message(m: &DynamicMessage) -> Value {
    let desc = m.descriptor();
    // Declaration order, as jsonpb writes them (fields() goes by number).
    let fields = desc.descriptor_proto().field.iter().filter_map(|fp| {
        u32::try_from(fp.number())
            .ok()
            .and_then(|n| desc.get_field(n))
    });
    let mut out = Mapping::new();
    for f in fields {
        let v = if f.supports_presence() && !m.has_field(&f) {
            // jsonpb leaves out unset oneof members but writes other unset messages as null.
            if f.containing_oneof().is_some() {
                continue;
            }
            Value::Null
        } else {
            value(&m.get_field(&f), &f.kind())
        };
        out.insert(Value::String(f.json_name().to_string()), v);
    }
    Value::Mapping(out)
}

fn value(v: &Field, kind: &Kind) -> Value {
    match v {
        Field::Bool(b) => Value::Bool(*b),
        Field::I32(n) => Value::Number((*n).into()),
        Field::U32(n) => Value::Number((*n).into()),
        Field::I64(n) => Value::String(n.to_string()),
        Field::U64(n) => Value::String(n.to_string()),
        // Through the shortest decimal text, so 0.1f32 stays 0.1.
        Field::F32(x) => float(f64::from(*x), x.to_string().parse().unwrap_or(f64::NAN)),
        Field::F64(x) => float(*x, *x),
        Field::String(s) => Value::String(s.clone()),
        Field::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Field::EnumNumber(n) => match kind.as_enum().and_then(|e| e.get_value(*n)) {
            Some(ev) => Value::String(ev.name().to_string()),
            None => Value::Number((*n).into()),
        },
        Field::Message(m) => message(m),
        Field::List(items) => Value::Sequence(items.iter().map(|i| value(i, kind)).collect()),
        Field::Map(entries) => {
            let value_kind = kind
                .as_message()
                .map(|e| e.map_entry_value_field().kind())
                .unwrap_or_else(|| kind.clone());
            let mut sorted: Vec<(String, &Field)> =
                entries.iter().map(|(k, v)| (map_key(k), v)).collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Mapping(
                sorted
                    .into_iter()
                    .map(|(k, v)| (Value::String(k), value(v, &value_kind)))
                    .collect(),
            )
        }
    }
}

/// protojson's floats: numbers, or the strings `NaN`, `Infinity`, `-Infinity`.
fn float(x: f64, shown: f64) -> Value {
    if x.is_nan() {
        Value::String("NaN".into())
    } else if x.is_infinite() {
        Value::String(if x > 0.0 { "Infinity" } else { "-Infinity" }.into())
    } else {
        Value::Number(Number::from(shown))
    }
}

fn map_key(k: &MapKey) -> String {
    match k {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crius_proto::runtime as cri;

    fn json(v: &Value) -> serde_json::Value {
        serde_json::to_value(v).expect("to JSON")
    }

    fn list() -> serde_json::Value {
        let ctr = cri::Container {
            id: "c1".into(),
            pod_sandbox_id: "p1".into(),
            state: cri::ContainerState::ContainerRunning as i32,
            created_at: 1_700_000_000_000_000_000,
            labels: [("b".to_string(), "2".to_string()), ("a".into(), "1".into())].into(),
            ..Default::default()
        };
        let resp = cri::ListContainersResponse {
            containers: vec![ctr],
        };
        json(&to_value(&resp, "runtime.v1.ListContainersResponse").expect("protojson"))
    }

    #[test]
    fn camel_case_names_and_enum_names() {
        let v = list();
        let c = &v["containers"][0];
        assert_eq!(c["podSandboxId"], "p1");
        assert!(c.get("pod_sandbox_id").is_none());
        assert_eq!(c["state"], "CONTAINER_RUNNING");
    }

    #[test]
    fn int64_as_string() {
        assert_eq!(list()["containers"][0]["createdAt"], "1700000000000000000");
    }

    #[test]
    fn defaults_are_emitted() {
        let c = &list()["containers"][0];
        assert_eq!(c["imageRef"], "");
        assert_eq!(c["annotations"], serde_json::json!({}));
        // Unset messages are null, as with jsonpb's EmitDefaults.
        assert!(c["metadata"].is_null() && c.get("metadata").is_some());
        let empty = to_value(
            &cri::ListContainersResponse::default(),
            "runtime.v1.ListContainersResponse",
        )
        .expect("protojson");
        assert_eq!(json(&empty), serde_json::json!({"containers": []}));
    }

    #[test]
    fn maps_are_objects_with_sorted_keys() {
        let v = to_value(
            &cri::ListContainersResponse {
                containers: vec![cri::Container {
                    labels: [("b".to_string(), "2".to_string()), ("a".into(), "1".into())].into(),
                    ..Default::default()
                }],
            },
            "runtime.v1.ListContainersResponse",
        )
        .expect("protojson");
        let text = serde_json::to_string(&v).expect("JSON");
        assert!(text.contains(r#""labels":{"a":"1","b":"2"}"#), "{text}");
        // Declaration order: id comes before podSandboxId.
        assert!(
            text.find("\"id\"") < text.find("\"podSandboxId\""),
            "{text}"
        );
    }

    #[test]
    fn bytes_as_base64() {
        let kv = cri::KeyValue {
            key: "k".into(),
            value: b"hi".to_vec(),
        };
        let v = json(&to_value(&kv, "runtime.v1.KeyValue").expect("protojson"));
        assert_eq!(v["value"], "aGk=");
    }

    #[test]
    fn reads_snake_and_camel_case() {
        let snake = serde_json::json!({"metadata": {"name": "p"}, "log_directory": "/l",
                                       "linux": {"security_context": {"namespace_options": {"network": 2}}}});
        let camel = serde_json::json!({"metadata": {"name": "p"}, "logDirectory": "/l", "unknown": 1,
                                       "linux": {"securityContext": {"namespaceOptions": {"network": "NODE"}}}});
        for v in [snake, camel] {
            let c: cri::PodSandboxConfig =
                from_json(v, "runtime.v1.PodSandboxConfig").expect("config");
            assert_eq!(c.log_directory, "/l");
            let ns = c
                .linux
                .and_then(|l| l.security_context)
                .and_then(|s| s.namespace_options);
            assert_eq!(ns.map(|n| n.network), Some(cri::NamespaceMode::Node as i32));
        }
        let bad = serde_json::json!({"metadata": 3});
        assert!(from_json::<cri::PodSandboxConfig>(bad, "runtime.v1.PodSandboxConfig").is_err());
    }

    #[test]
    fn unknown_message_is_an_error() {
        assert!(to_value(&cri::KeyValue::default(), "runtime.v1.Nope").is_err());
    }
}
