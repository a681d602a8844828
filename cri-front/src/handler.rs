//! Runtime handlers (a RuntimeClass's `handler`): the containerd runtime a pod's containers
//! run on and, optionally, the OCI runtime binary that runtime's shim runs instead of `runc`
//! (containerd's runc option `BinaryName`): `crun = { runtime = "io.containerd.crius.v2",
//! binary_name = "crun" }` runs the containers of RuntimeClass `crun` with crun.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::runc_features::{self, RuncFeatures};

/// One `[runtime_handlers]` entry: a runtime name, or a table with the binary too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Handler {
    /// `"io.containerd.crius.v2"`: the runtime, its shim's default OCI runtime (runc).
    Runtime(String),
    Table(HandlerTable),
}

/// `{ runtime = "...", binary_name = "crun" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerTable {
    /// containerd runtime name (`io.containerd.crius.v2`, `io.containerd.runc.v2`).
    pub runtime: String,
    /// The OCI runtime binary the shim runs (a name on the shim's PATH or an absolute path);
    /// empty: runc.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub binary_name: String,
}

// By hand, not `untagged`: serde's untagged error ("did not match any variant") would hide
// the table's own (`unknown field `binary`, expected `runtime` or `binary_name``).
impl<'de> Deserialize<'de> for Handler {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Handler;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a containerd runtime name, or a table { runtime = \"...\", binary_name = \"...\" }",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Handler, E> {
                Ok(Handler::Runtime(v.into()))
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Handler, A::Error> {
                HandlerTable::deserialize(de::value::MapAccessDeserializer::new(m))
                    .map(Handler::Table)
            }
        }
        d.deserialize_any(V)
    }
}

impl From<&str> for Handler {
    fn from(runtime: &str) -> Self {
        Handler::Runtime(runtime.into())
    }
}

impl Handler {
    /// The containerd runtime name.
    pub fn runtime(&self) -> &str {
        match self {
            Handler::Runtime(r) => r,
            Handler::Table(t) => &t.runtime,
        }
    }

    /// The binary named for the shim to run ("" for the shim's default, runc).
    pub fn binary_name(&self) -> &str {
        match self {
            Handler::Table(t) => &t.binary_name,
            Handler::Runtime(_) => "",
        }
    }

    /// The OCI runtime binary the shim runs (`runc` unless the handler names another).
    pub fn binary(&self) -> &str {
        match self.binary_name() {
            "" => "runc",
            b => b,
        }
    }

    /// What types cannot say: a runtime, and a binary the shim can find from any directory.
    pub fn check(&self) -> Result<(), String> {
        if self.runtime().is_empty() {
            return Err("runtime is empty".into());
        }
        let b = self.binary_name();
        if b.contains('/') && !b.starts_with('/') {
            return Err(format!(
                "binary_name {b:?} is a relative path: give a name on PATH or an absolute path"
            ));
        }
        Ok(())
    }
}

/// What each handler's OCI runtime can do, by handler name: `<binary> features`, asked once
/// per distinct binary (crun 1.8 has no `features`: none of the optional ones then).
pub async fn probe_features(
    handlers: &BTreeMap<String, Handler>,
) -> BTreeMap<String, RuncFeatures> {
    let mut by_binary: BTreeMap<&str, RuncFeatures> = BTreeMap::new();
    for h in handlers.values() {
        if !by_binary.contains_key(h.binary()) {
            by_binary.insert(h.binary(), runc_features::probe(h.binary()).await);
        }
    }
    handlers
        .iter()
        .map(|(name, h)| {
            let f = by_binary.get(h.binary()).copied().unwrap_or_default();
            (name.clone(), f)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    struct File {
        runtime_handlers: BTreeMap<String, Handler>,
    }

    #[test]
    fn a_name_or_a_table() {
        let f: File = toml::from_str(
            "[runtime_handlers]\n\"\" = \"io.containerd.crius.v2\"\n\
             crun = { runtime = \"io.containerd.crius.v2\", binary_name = \"crun\" }\n\
             [runtime_handlers.plain]\nruntime = \"io.containerd.runc.v2\"\n",
        )
        .expect("parse");
        let d = &f.runtime_handlers[""];
        assert_eq!(
            (d.runtime(), d.binary(), d.binary_name()),
            ("io.containerd.crius.v2", "runc", "")
        );
        let c = &f.runtime_handlers["crun"];
        assert_eq!(
            (c.runtime(), c.binary(), c.binary_name()),
            ("io.containerd.crius.v2", "crun", "crun")
        );
        let p = &f.runtime_handlers["plain"];
        assert_eq!((p.runtime(), p.binary()), ("io.containerd.runc.v2", "runc"));
    }

    #[test]
    fn both_forms_round_trip() {
        let mut h = BTreeMap::new();
        h.insert(String::new(), Handler::from("io.containerd.crius.v2"));
        h.insert(
            "crun".into(),
            Handler::Table(HandlerTable {
                runtime: "io.containerd.crius.v2".into(),
                binary_name: "crun".into(),
            }),
        );
        h.insert(
            "plain".into(),
            Handler::Table(HandlerTable {
                runtime: "io.containerd.runc.v2".into(),
                binary_name: String::new(),
            }),
        );
        let f = File {
            runtime_handlers: h,
        };
        let text = toml::to_string_pretty(&f).expect("serialize");
        assert!(!text.contains("binary_name = \"\""), "{text}");
        let back: File = toml::from_str(&text).expect(&text);
        assert_eq!(back.runtime_handlers, f.runtime_handlers, "{text}");
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused_by_name() {
        let e = toml::from_str::<File>(
            "[runtime_handlers]\ncrun = { runtime = \"x\", binary = \"crun\" }\n",
        )
        .expect_err("unknown key");
        let e = e.to_string();
        assert!(
            e.contains("unknown field `binary`") && e.contains("binary_name"),
            "{e}"
        );
        let e = toml::from_str::<File>("[runtime_handlers]\ncrun = { binary_name = \"crun\" }\n")
            .expect_err("no runtime");
        assert!(e.to_string().contains("missing field `runtime`"), "{e}");
        let e = toml::from_str::<File>("[runtime_handlers]\ncrun = 3\n").expect_err("a number");
        assert!(e.to_string().contains("a containerd runtime name"), "{e}");
    }

    #[test]
    fn check_wants_a_runtime_and_a_findable_binary() {
        let t = |runtime: &str, binary_name: &str| {
            Handler::Table(HandlerTable {
                runtime: runtime.into(),
                binary_name: binary_name.into(),
            })
            .check()
        };
        assert!(t("io.containerd.crius.v2", "crun").is_ok());
        assert!(t("io.containerd.crius.v2", "/usr/bin/crun").is_ok());
        assert!(t("io.containerd.crius.v2", "").is_ok());
        assert!(t("io.containerd.crius.v2", "bin/crun").is_err());
        assert!(t("", "crun").is_err());
        assert!(Handler::from("").check().is_err());
    }
}
