//! criusd's configuration: a TOML file (default `/etc/crius/config.toml`), every
//! field optional, flags override single fields (see `bin/criusd.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crius_sandboxer::cgroup::{self, CgroupDriver};
use crius_sandboxer::{OomScorePolicy, PauseSource, SandboxerConfig};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::handler::Handler;

/// Default config file path.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/crius/config.toml";

/// See [`Config::log_mode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogMode {
    #[default]
    Fifo,
    Binary,
}

/// See [`Config::log_format`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    /// One JSON object per line, span fields (pod, container ids) included: for log collectors.
    Json,
}

/// The whole file. Unknown keys are an error, so a typo never silently does nothing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Unix socket kubelet talks to (created with mode 0600).
    pub listen: PathBuf,
    /// containerd's gRPC socket.
    pub containerd_address: PathBuf,
    /// containerd namespace holding everything criusd makes.
    pub containerd_namespace: String,
    /// containerd snapshotter for image layers and container rootfs.
    pub snapshotter: String,
    /// containerd's root dir (ImageFsInfo reports `<root>/io.containerd.snapshotter.v1.<snapshotter>`).
    pub containerd_root: PathBuf,
    /// Persistent state: containers' records under `<state_dir>/containers`, pods under `<state_dir>/sandboxes`.
    pub state_dir: PathBuf,
    /// Volatile state: exec fifos, netns mounts, temporary mounts.
    pub run_dir: PathBuf,
    pub cni_conf_dir: PathBuf,
    pub cni_bin_dirs: Vec<PathBuf>,
    /// CRI runtime handler → containerd runtime name; "" is the default handler.
    /// A table names the OCI runtime binary the shim runs too ([`Handler`]).
    pub runtime_handlers: BTreeMap<String, Handler>,
    /// `certs.d`-style dir of containerd `hosts.toml` files.
    pub registry_config_dir: PathBuf,
    /// Pause binary (static) or image for pod sandboxes.
    pub pause: PauseSource,
    /// `tracing` filter (e.g. `info`, `crius_cri_front=debug`); RUST_LOG wins when set.
    pub log_level: String,
    /// `text` (default) or `json` lines on stderr.
    pub log_format: LogFormat,
    /// How `oom_score_adj` below criusd's own is treated (needs CAP_SYS_RESOURCE).
    pub oom_score: OomScorePolicy,
    /// The per-container log driver (`crius-logger`). Empty: next to criusd.
    pub logger_binary: PathBuf,
    /// How crius-logger gets the container's output: `fifo` (criusd starts it detached
    /// on two fifos; works with every shim) or `binary` (the shim starts it from a
    /// `binary://` log URI; needs a shim that supports those).
    pub log_mode: LogMode,
    /// Longest CRI log line before it is split into `P` records.
    pub max_log_line_bytes: usize,
    /// ExecSync output kept per stream; more is dropped (and said so in the log).
    pub exec_sync_max_output_bytes: usize,
    /// `cgroupfs` or `systemd` (pods' cgroup parents are slices, each pause and container in a
    /// transient scope `crius-<id>.scope`); unset: systemd when it runs as PID 1 on a cgroup v2
    /// host, else cgroupfs. Reported to kubelet by RuntimeConfig. See [`Config::cgroup_driver`].
    pub cgroup_driver: Option<CgroupDriver>,
    /// Grace period for pod stop (SIGTERM → SIGKILL), seconds.
    pub pod_stop_grace_secs: u64,
    /// The streaming server (Exec/Attach/PortForward URLs): `ip:port`, port 0 = any free one
    /// (kubelet's default); empty = no streaming server (those RPCs then answer UNIMPLEMENTED).
    pub streaming_address: String,
    /// criusd's Prometheus endpoint (`GET /metrics`: each CRI RPC's latency): `ip:port`;
    /// empty (the default) = none, as containerd's `metrics.address`.
    pub metrics_address: String,
    /// containerd 2.x's `enable_unprivileged_ports`: pods with their own network namespace get
    /// `net.ipv4.ip_unprivileged_port_start=0` unless they set it.
    pub enable_unprivileged_ports: bool,
    /// containerd 2.x's `enable_unprivileged_icmp`: `net.ipv4.ping_group_range="0 2147483647"`.
    pub enable_unprivileged_icmp: bool,
    /// containerd's `ignore_image_defined_volumes`: false (the default) gives each image
    /// `VOLUME` a per-container directory filled from the image; true leaves them out.
    pub ignore_image_defined_volumes: bool,
    /// CDI spec directories (containerd's `cdi_spec_dirs`), read at each create that asks for
    /// a CDI device; a device in a later one overrides one of the same name in an earlier one.
    /// Empty: no CDI device can be had.
    pub cdi_spec_dirs: Vec<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        let mut handlers = BTreeMap::new();
        handlers.insert(String::new(), Handler::from("io.containerd.crius.v2"));
        Config {
            listen: PathBuf::from("/run/crius/crius.sock"),
            containerd_address: PathBuf::from("/run/containerd/containerd.sock"),
            containerd_namespace: "crius".into(),
            snapshotter: "overlayfs".into(),
            containerd_root: PathBuf::from("/var/lib/containerd"),
            state_dir: PathBuf::from("/var/lib/crius"),
            run_dir: PathBuf::from("/run/crius"),
            cni_conf_dir: PathBuf::from("/etc/cni/net.d"),
            cni_bin_dirs: vec![PathBuf::from("/opt/cni/bin"), PathBuf::from("/usr/lib/cni")],
            runtime_handlers: handlers,
            registry_config_dir: PathBuf::from("/etc/crius/certs.d"),
            pause: PauseSource::default(),
            log_level: "info".into(),
            log_format: LogFormat::Text,
            oom_score: OomScorePolicy::Auto,
            logger_binary: PathBuf::new(),
            log_mode: LogMode::Fifo,
            max_log_line_bytes: 16 * 1024,
            exec_sync_max_output_bytes: 16 * 1024 * 1024,
            cgroup_driver: None,
            pod_stop_grace_secs: 10,
            streaming_address: "127.0.0.1:0".into(),
            metrics_address: String::new(),
            enable_unprivileged_ports: true,
            enable_unprivileged_icmp: true,
            ignore_image_defined_volumes: false,
            cdi_spec_dirs: crate::cdi::default_spec_dirs(),
        }
    }
}

impl Config {
    /// Read `path`; a missing file is fine only when `required` is false (defaults then).
    pub fn load(path: &Path, required: bool) -> Result<Config> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                Ok(Config::default())
            }
            Err(e) => Err(Error::Config(format!("{}: {e}", path.display()))),
        }
    }

    /// Check what cannot be checked by types alone.
    pub fn validate(&self) -> Result<()> {
        if self.containerd_namespace.is_empty() {
            return Err(Error::Config("containerd_namespace is empty".into()));
        }
        if !self.runtime_handlers.contains_key("") {
            return Err(Error::Config(
                "runtime_handlers has no default entry (key \"\")".into(),
            ));
        }
        for (name, h) in &self.runtime_handlers {
            h.check()
                .map_err(|e| Error::Config(format!("runtime_handlers {name:?}: {e}")))?;
        }
        if self.cgroup_driver == Some(CgroupDriver::Systemd) && !cgroup::systemd_running() {
            return Err(Error::Config(
                "cgroup_driver = \"systemd\", but systemd is not running here (no /run/systemd/system): \
                 use \"cgroupfs\" or leave cgroup_driver unset"
                    .into(),
            ));
        }
        if !self.metrics_address.is_empty()
            && self
                .metrics_address
                .parse::<std::net::SocketAddr>()
                .is_err()
        {
            return Err(Error::Config(format!(
                "metrics_address {:?} is not ip:port",
                self.metrics_address
            )));
        }
        Ok(())
    }

    /// The pod sysctls containerd 2.x adds by default (see `enable_unprivileged_*`), for a pod
    /// in its own network namespace; the pod's own values win.
    pub fn default_pod_sysctls(&self) -> Vec<(&'static str, &'static str)> {
        let mut v = Vec::new();
        if self.enable_unprivileged_ports {
            v.push(("net.ipv4.ip_unprivileged_port_start", "0"));
        }
        if self.enable_unprivileged_icmp {
            v.push(("net.ipv4.ping_group_range", "0 2147483647"));
        }
        v
    }

    /// The cgroup driver in use: the configured one, or the detected one.
    pub fn cgroup_driver(&self) -> CgroupDriver {
        self.cgroup_driver.unwrap_or_else(CgroupDriver::detect)
    }

    /// containerd runtime for a CRI runtime handler.
    pub fn runtime_for(&self, handler: &str) -> Option<&str> {
        self.runtime_handlers.get(handler).map(Handler::runtime)
    }

    /// A CRI runtime handler's whole entry.
    pub fn handler(&self, handler: &str) -> Option<&Handler> {
        self.runtime_handlers.get(handler)
    }

    /// Directory of per-container records.
    pub fn containers_dir(&self) -> PathBuf {
        self.state_dir.join("containers")
    }

    /// The log driver binary: configured, or `crius-logger` next to this executable.
    pub fn logger_path(&self) -> PathBuf {
        if !self.logger_binary.as_os_str().is_empty() {
            return self.logger_binary.clone();
        }
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("crius-logger")))
            .unwrap_or_else(|| PathBuf::from("/usr/local/bin/crius-logger"))
    }

    /// The sandboxer's view of this config.
    pub fn sandboxer_config(&self) -> SandboxerConfig {
        SandboxerConfig {
            state_dir: self.state_dir.join("sandboxes"),
            run_dir: self.run_dir.clone(),
            cni_conf_dir: self.cni_conf_dir.clone(),
            cni_bin_dirs: self.cni_bin_dirs.clone(),
            cni_cache_dir: self.state_dir.join("cni/results"),
            containerd_address: self.containerd_address.clone(),
            containerd_namespace: self.containerd_namespace.clone(),
            runtime: self
                .runtime_for("")
                .unwrap_or("io.containerd.crius.v2")
                .to_string(),
            pause: match &self.pause {
                // The sandboxer looks the image record up by name: use the normalised one criusd pulls under.
                PauseSource::Image(r) => PauseSource::Image(
                    crate::image::reference::parse_ref(r)
                        .map(|r| crate::image::reference::record_name(&r))
                        .unwrap_or_else(|_| r.clone()),
                ),
                other => other.clone(),
            },
            snapshotter: self.snapshotter.clone(),
            oom_score: self.oom_score,
            stop_grace: Duration::from_secs(self.pod_stop_grace_secs),
            cgroup_driver: self.cgroup_driver(),
            default_cgroup_parent: self.cgroup_driver().default_parent().to_string(),
            ..SandboxerConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_config_parses() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/dist/config.toml"));
        let c = Config::load(path, true).expect("dist/config.toml");
        c.validate().expect("valid");
    }

    #[test]
    fn defaults_are_valid_and_partial_files_merge() {
        Config::default().validate().expect("defaults valid");
        let c: Config = toml::from_str(
            "listen = \"/tmp/x.sock\"\n[runtime_handlers]\n\"\" = \"io.containerd.runc.v2\"\n",
        )
        .expect("parse");
        assert_eq!(c.listen, PathBuf::from("/tmp/x.sock"));
        assert_eq!(c.runtime_for(""), Some("io.containerd.runc.v2"));
        assert_eq!(c.containerd_namespace, "crius");
    }

    #[test]
    fn handler_tables_print_and_parse_back() {
        let mut c = Config::default();
        c.runtime_handlers.insert(
            "crun".into(),
            Handler::Table(crate::handler::HandlerTable {
                runtime: "io.containerd.crius.v2".into(),
                binary_name: "crun".into(),
            }),
        );
        // What `criusd --print-config` prints.
        let text = toml::to_string_pretty(&c).expect("print");
        let back: Config = toml::from_str(&text).expect(&text);
        assert_eq!(back.runtime_handlers, c.runtime_handlers, "{text}");
        assert_eq!(toml::to_string_pretty(&back).expect("print"), text);
        back.validate().expect("valid");
    }

    #[test]
    fn bad_handler_entries_are_refused_by_name() {
        let e = toml::from_str::<Config>(
            "[runtime_handlers]\n\"\" = \"io.containerd.crius.v2\"\n\
             crun = { runtime = \"io.containerd.crius.v2\", binary = \"crun\" }\n",
        )
        .expect_err("unknown key")
        .to_string();
        assert!(e.contains("unknown field `binary`"), "{e}");
        let c: Config = toml::from_str(
            "[runtime_handlers]\n\"\" = \"io.containerd.crius.v2\"\n\
             crun = { runtime = \"io.containerd.crius.v2\", binary_name = \"bin/crun\" }\n",
        )
        .expect("parse");
        let e = c.validate().expect_err("relative binary").to_string();
        assert!(
            e.contains("runtime_handlers \"crun\"") && e.contains("relative"),
            "{e}"
        );
    }

    #[test]
    fn cgroup_driver_parses_and_systemd_needs_systemd() {
        let c: Config = toml::from_str("cgroup_driver = \"systemd\"").expect("parse");
        assert_eq!(c.cgroup_driver(), CgroupDriver::Systemd);
        match c.validate() {
            Ok(()) => assert!(cgroup::systemd_running()),
            Err(e) => assert!(e.to_string().contains("systemd is not running"), "{e}"),
        }
        assert!(toml::from_str::<Config>("cgroup_driver = \"upstart\"").is_err());
        let c: Config = toml::from_str("cgroup_driver = \"cgroupfs\"").expect("parse");
        assert_eq!(c.cgroup_driver(), CgroupDriver::Cgroupfs);
        c.validate().expect("cgroupfs is valid anywhere");
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<Config>("lisen = \"/x\"").is_err());
    }
}
