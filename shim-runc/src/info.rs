//! `-info`: containerd 2.x asks a shim binary what its runtime can do before any shim of it runs
//! (introspection's PluginInfo; containerd 2.1's CRI asks this of every runtime of type
//! `io.containerd.runc.v2`, which is why crius is configured as that type with its own runtime_path).
//! stdin carries the runtime options as a protobuf `Any` (possibly empty); stdout gets a protobuf
//! `containerd.types.RuntimeInfo`: name, version, the options echoed, and the OCI runtime's
//! `features` (`runc features` JSON) as an Any of containerd's registered type for them — the answer
//! containerd's runc shim gives (its manager's `Info`). CRI reads `mountOptions` ("rro": recursive
//! read-only mounts) and the user-namespace features from it.

use containerd_shim::api::Options;
use containerd_shim::protos::protobuf::{well_known_types::any::Any, Message, MessageField};
use containerd_shim::protos::types::introspection::{RuntimeInfo, RuntimeVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::{reaper, runc::Runc, service::VERSION, RUNTIME_ID};

/// The type URL containerd registers for runtime-spec's `features.Features` (a JSON value).
pub const FEATURES_TYPE_URL: &str =
    "types.containerd.io/opencontainers/runtime-spec/1/features/Features";
const OPTIONS_TYPE_URL: &str = "containerd.runc.v1.Options";

/// Answer `-info`: read the options from stdin, write the RuntimeInfo to stdout.
pub async fn run() -> Result<()> {
    let mut input = Vec::new();
    tokio::io::stdin()
        .read_to_end(&mut input)
        .await
        .map_err(Error::io("read runtime options from stdin"))?;
    let options = parse_options(&input)?;
    reaper::start().map_err(Error::io("SIGCHLD handler"))?;
    let binary = options
        .as_ref()
        .map(|o| o.binary_name.clone())
        .unwrap_or_default();
    let runc = Runc::new("", &binary, "");
    let features = match runc.output(&["features"], None).await {
        Ok(json) => Some(json),
        Err(e) => {
            // As containerd's runc shim: a runtime without `features` is reported without them.
            tracing::debug!(runc = %runc.binary.display(), error = %e, "runc features failed");
            None
        }
    };
    let bytes = runtime_info(options.as_ref(), features)?
        .write_to_bytes()
        .map_err(|e| Error::Other(format!("encode RuntimeInfo: {e}")))?;
    let mut out = tokio::io::stdout();
    out.write_all(&bytes)
        .await
        .map_err(Error::io("write RuntimeInfo"))?;
    out.flush().await.map_err(Error::io("flush RuntimeInfo"))
}

/// The runtime options containerd sent: nothing, or runc's `Options`.
fn parse_options(input: &[u8]) -> Result<Option<Options>> {
    if input.is_empty() {
        return Ok(None);
    }
    let any = Any::parse_from_bytes(input)
        .map_err(|e| Error::InvalidArgument(format!("runtime options are not an Any: {e}")))?;
    if any.type_url.is_empty() && any.value.is_empty() {
        return Ok(None);
    }
    if !any.type_url.ends_with(OPTIONS_TYPE_URL) {
        return Err(Error::InvalidArgument(format!(
            "runtime options of type {:?}: want {OPTIONS_TYPE_URL}",
            any.type_url
        )));
    }
    Options::parse_from_bytes(&any.value)
        .map(Some)
        .map_err(|e| Error::InvalidArgument(format!("runtime options: {e}")))
}

/// The RuntimeInfo for `options` and the runtime's `features` JSON (dropped unless it is an object).
fn runtime_info(options: Option<&Options>, features: Option<Vec<u8>>) -> Result<RuntimeInfo> {
    let options = options
        .map(|o| {
            o.write_to_bytes()
                .map(|value| Any {
                    type_url: OPTIONS_TYPE_URL.into(),
                    value,
                    ..Default::default()
                })
                .map_err(|e| Error::Other(format!("encode runtime options: {e}")))
        })
        .transpose()?;
    let features = features.filter(|json| {
        let ok = serde_json::from_slice::<serde_json::Value>(json).is_ok_and(|v| v.is_object());
        if !ok {
            tracing::warn!("runc features printed no JSON object; reporting no features");
        }
        ok
    });
    Ok(RuntimeInfo {
        name: RUNTIME_ID.into(),
        version: MessageField::some(RuntimeVersion {
            version: VERSION.into(),
            ..Default::default()
        }),
        options: options.into(),
        features: features
            .map(|value| Any {
                type_url: FEATURES_TYPE_URL.into(),
                value,
                ..Default::default()
            })
            .into(),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options_any(binary: &str) -> Vec<u8> {
        let o = Options {
            binary_name: binary.into(),
            ..Default::default()
        };
        Any {
            type_url: OPTIONS_TYPE_URL.into(),
            value: o.write_to_bytes().unwrap(),
            ..Default::default()
        }
        .write_to_bytes()
        .unwrap()
    }

    #[test]
    fn empty_stdin_means_no_options() {
        assert!(parse_options(b"").unwrap().is_none());
    }

    #[test]
    fn runc_options_are_read_and_echoed() {
        let o = parse_options(&options_any("/usr/sbin/runc"))
            .unwrap()
            .unwrap();
        assert_eq!(o.binary_name, "/usr/sbin/runc");
        let info = runtime_info(Some(&o), None).unwrap();
        let echoed = info.options.as_ref().expect("options");
        assert_eq!(echoed.type_url, OPTIONS_TYPE_URL);
        assert_eq!(
            Options::parse_from_bytes(&echoed.value)
                .unwrap()
                .binary_name,
            "/usr/sbin/runc"
        );
        assert!(info.features.is_none());
    }

    #[test]
    fn foreign_options_are_refused() {
        let any = Any {
            type_url: "example.com/Other".into(),
            value: vec![1, 2],
            ..Default::default()
        };
        let e = parse_options(&any.write_to_bytes().unwrap()).expect_err("foreign");
        assert!(e.to_string().contains("example.com/Other"), "{e}");
    }

    #[test]
    fn features_json_is_carried_as_containerds_type() {
        let json = br#"{"ociVersionMin":"1.0.0","mountOptions":["ro","rro"]}"#.to_vec();
        let info = runtime_info(None, Some(json.clone())).unwrap();
        assert_eq!(info.name, RUNTIME_ID);
        assert_eq!(info.version.version, VERSION);
        let f = info.features.as_ref().expect("features");
        assert_eq!(f.type_url, FEATURES_TYPE_URL);
        assert_eq!(f.value, json);
        // A round trip through the wire format keeps it.
        let back = RuntimeInfo::parse_from_bytes(&info.write_to_bytes().unwrap()).unwrap();
        assert_eq!(back.features.value, json);
    }

    #[test]
    fn non_json_features_are_dropped() {
        let info = runtime_info(None, Some(b"usage: runc".to_vec())).unwrap();
        assert!(info.features.is_none());
    }
}
