//! RuntimeDefault seccomp is the allow-list containerd and Docker ship: a normal workload runs
//! (shell, fork, threads' clone3 fallback, sockets, a server and its client), syscalls outside
//! the list fail with EPERM, and the list widens with the capabilities the container holds.

mod criusd_common;

use std::path::Path;
use std::process::Command;

use crius_proto::runtime as cri;
use crius_test::{env_or_skip, process, registry};
use criusd_common::{
    client, container_config, create_and_start, exec_sh, finish, pod_config, pod_log_dir, pull,
    remove_pod, rt, run_pod, start,
};

/// A static probe that makes one syscall (by name) and prints `<name>: ok` or the error.
const PROBE_C: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long r = -1;
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "getpid")) r = syscall(SYS_getpid);
    else if (!strcmp(what, "personality")) r = syscall(SYS_personality, 0x0040000);
    else if (!strcmp(what, "vsock")) r = syscall(SYS_socket, 40, 1, 0);
    else if (!strcmp(what, "mempolicy")) r = syscall(SYS_get_mempolicy, 0, 0, 0, 0, 0);
    else if (!strcmp(what, "settime")) { struct timespec t = {0, 0}; r = syscall(SYS_clock_settime, 99, &t); }
    else errno = EINVAL;
    if (r < 0) { printf("%s: %s\n", what, strerror(errno)); return 1; }
    printf("%s: ok\n", what);
    return 0;
}
"#;

fn build_probe(dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).expect("probe dir");
    let src = dir.join("probe.c");
    std::fs::write(&src, PROBE_C).expect("probe source");
    let bin = dir.join("probe");
    process::output(
        Command::new("cc")
            .args(["-static", "-O2", "-o"])
            .arg(&bin)
            .arg(&src),
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    bin
}

fn out(r: &cri::ExecSyncResponse) -> String {
    String::from_utf8_lossy(&r.stdout).trim().to_string()
}

#[test]
fn criusd_runtime_default_seccomp_is_an_allow_list() {
    let mut env = env_or_skip!("criusd_runtime_default_seccomp_is_an_allow_list");
    let Some(d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    let probe_dir = env.dir().join("probe");
    build_probe(&probe_dir);
    rt().block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
        let pcfg = pod_config(&env, "seccomp", &log_dir);
        let pod = run_pod(&mut c, &d, &pcfg).await;
        let with = |name: &str, seccomp: cri::security_profile::ProfileType, add: &[&str]| {
            let mut cfg = container_config(name, registry::BUSYBOX, &["sleep", "1000"]);
            cfg.mounts.push(cri::Mount {
                container_path: "/probe".into(),
                host_path: probe_dir.display().to_string(),
                readonly: true,
                ..Default::default()
            });
            cfg.linux = Some(cri::LinuxContainerConfig {
                security_context: Some(cri::LinuxContainerSecurityContext {
                    seccomp: Some(cri::SecurityProfile {
                        profile_type: seccomp as i32,
                        localhost_ref: String::new(),
                    }),
                    capabilities: Some(cri::Capability {
                        add_capabilities: add.iter().map(|s| s.to_string()).collect(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            });
            cfg
        };
        use cri::security_profile::ProfileType as T;
        let confined = create_and_start(
            &mut c,
            &d,
            &pod,
            with("confined", T::RuntimeDefault, &[]),
            &pcfg,
            "confined",
        )
        .await;
        let open = create_and_start(
            &mut c,
            &d,
            &pod,
            with("open", T::Unconfined, &[]),
            &pcfg,
            "open",
        )
        .await;
        let timed = create_and_start(
            &mut c,
            &d,
            &pod,
            with("timed", T::RuntimeDefault, &["SYS_TIME"]),
            &pcfg,
            "timed",
        )
        .await;

        // A normal workload: the filter is on, and a server, its client, pipes and forks work.
        let r = exec_sh(
            &mut c,
            &confined,
            "grep Seccomp: /proc/self/status; mkdir -p /tmp/www && echo served > /tmp/www/i \
             && (httpd -f -p 127.0.0.1:8080 -h /tmp/www & sleep 0.3; wget -qO- http://127.0.0.1:8080/i; kill %1) \
             && ls / | sort | head -1 && /probe/probe getpid",
        )
        .await;
        assert_eq!(
            out(&r),
            "Seccomp:\t2\nserved\nbin\ngetpid: ok",
            "{r:?}\n{}",
            String::from_utf8_lossy(&r.stderr)
        );

        // Outside the list: EPERM under RuntimeDefault, allowed unconfined.
        for call in ["personality", "vsock", "mempolicy"] {
            let r = exec_sh(&mut c, &confined, &format!("/probe/probe {call}")).await;
            assert_eq!(out(&r), format!("{call}: Operation not permitted"), "{r:?}");
            let r = exec_sh(&mut c, &open, &format!("/probe/probe {call}")).await;
            assert!(
                !out(&r).contains("Operation not permitted"),
                "unconfined {call}: {r:?}"
            );
        }
        // Capability-dependent rules: clock_settime is in the list only with CAP_SYS_TIME
        // (then the kernel itself answers: clock 99 does not exist).
        let r = exec_sh(&mut c, &confined, "/probe/probe settime").await;
        assert_eq!(out(&r), "settime: Operation not permitted", "{r:?}");
        let r = exec_sh(&mut c, &timed, "/probe/probe settime").await;
        assert_eq!(out(&r), "settime: Invalid argument", "{r:?}");

        remove_pod(&mut c, &pod).await.expect("remove pod");
    });
    finish(env, &d);
}
