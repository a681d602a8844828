//! Transient scopes through systemd's D-Bus API (`org.freedesktop.systemd1.Manager` on the system
//! bus, with zbus): for a fast-path pause, what runc's systemd driver does for a container it
//! runs. A scope is started holding the pause helper's pid (`PIDs`), in the pod's slice, delegated,
//! with the pause's resources as unit properties; it goes away once its processes are gone
//! (`CollectMode=inactive-or-failed`), so a pause that dies with its shim leaves no unit behind.
//! Devices rules are not made unit properties: the pause opens no device (as on cgroupfs v2).

use std::time::Duration;

use futures::StreamExt;
use zbus::{
    zvariant::{OwnedObjectPath, Value},
    Connection, Proxy,
};

use crate::{
    cgroups,
    error::{Error, Result},
    fastpath::plan::Resources,
};

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// How long a start or stop job may take (a loaded node under qemu TCG takes seconds).
const JOB_TIMEOUT: Duration = Duration::from_secs(60);

/// A systemd `cgroupsPath` (`slice:prefix:name`) as runc's systemd driver reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeName {
    pub slice: String,
    pub unit: String,
}

/// The scope a `slice:prefix:name` path names (`prefix-name.scope` in `slice`, system.slice when
/// empty); None for cgroupfs paths and for a name that is a slice itself.
pub fn parse(cgroups_path: &str) -> Option<ScopeName> {
    if cgroups_path.starts_with('/') {
        return None;
    }
    let mut parts = cgroups_path.split(':');
    let (slice, prefix, name) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || name.is_empty() || name.ends_with(".slice") {
        return None;
    }
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    let unit = if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    Some(ScopeName {
        slice: slice.to_string(),
        unit,
    })
}

fn bus_error(what: &str, unit: &str) -> impl FnOnce(zbus::Error) -> Error {
    let context = format!("systemd {what} {unit}");
    move |e| Error::FailedPrecondition(format!("{context}: {e}"))
}

/// The systemd manager on a fresh system-bus connection, errors naming `unit`. The proxy holds
/// its own handle on the connection, so the connection lives as long as the proxy.
async fn manager_for(unit: &str) -> Result<Proxy<'static>> {
    let conn = Connection::system()
        .await
        .map_err(bus_error("connect to the system bus for", unit))?;
    Proxy::new(&conn, DEST, PATH, MANAGER)
        .await
        .map_err(bus_error("manager for", unit))
}

/// The JobRemoved signals of the manager; systemd sends job signals to subscribers only, and the
/// match rule must be in before the job is asked for.
async fn watch_jobs(proxy: &Proxy<'_>, unit: &str) -> Result<zbus::proxy::SignalStream<'static>> {
    proxy
        .call::<_, _, ()>("Subscribe", &())
        .await
        .map_err(bus_error("subscribe for", unit))?;
    proxy
        .receive_signal("JobRemoved")
        .await
        .map_err(bus_error("watch jobs of", unit))
}

/// Waits for `job`'s JobRemoved signal and returns its result ("done" on success).
async fn job_result(
    mut removed: zbus::proxy::SignalStream<'_>,
    job: &OwnedObjectPath,
    unit: &str,
) -> Result<String> {
    let wait = async {
        while let Some(msg) = removed.next().await {
            let Ok((_, path, _, result)) = msg
                .body()
                .deserialize::<(u32, OwnedObjectPath, String, String)>()
            else {
                continue;
            };
            if &path == job {
                return Some(result);
            }
        }
        None
    };
    match tokio::time::timeout(JOB_TIMEOUT, wait).await {
        Ok(Some(result)) => Ok(result),
        Ok(None) => Err(Error::FailedPrecondition(format!(
            "systemd: the bus closed before the job of {unit} ended"
        ))),
        Err(_) => Err(Error::FailedPrecondition(format!(
            "systemd: the job of {unit} did not end within {JOB_TIMEOUT:?}"
        ))),
    }
}

fn is_no_such_unit(e: &zbus::Error) -> bool {
    matches!(e, zbus::Error::MethodError(name, _, _) if name.as_str() == "org.freedesktop.systemd1.NoSuchUnit")
}

/// The pause's resources as systemd unit properties (runc's systemd driver's conversions).
fn resource_properties(res: &Resources) -> Vec<(&'static str, Value<'static>)> {
    let mut props = Vec::new();
    if let Some(s) = res.cpu_shares {
        props.push(("CPUWeight", Value::from(cgroups::shares_to_weight(s))));
    }
    if let Some(q) = res.cpu_quota.filter(|q| *q > 0) {
        let period = res.cpu_period.filter(|p| *p > 0).unwrap_or(100_000);
        // systemd keeps the quota in 10 ms steps per second: round up, as runc does.
        let per_sec = (q as u64 * 1_000_000).div_ceil(period).div_ceil(10_000) * 10_000;
        props.push(("CPUQuotaPerSecUSec", Value::from(per_sec)));
        props.push(("CPUQuotaPeriodUSec", Value::from(period)));
    }
    if let Some(l) = res.memory_limit.filter(|l| *l > 0) {
        props.push(("MemoryMax", Value::from(l as u64)));
    }
    if let Some(l) = res.pids_limit {
        let max = if l > 0 { l as u64 } else { u64::MAX };
        props.push(("TasksMax", Value::from(max)));
    }
    props
}

/// Starts the transient scope `scope` holding `pid`, and waits until systemd has moved it there.
pub async fn start_scope(
    scope: &ScopeName,
    pid: u32,
    description: &str,
    res: &Resources,
) -> Result<()> {
    let unit = scope.unit.as_str();
    let proxy = manager_for(unit).await?;
    let mut props: Vec<(&str, Value)> = vec![
        ("Description", Value::from(description)),
        ("Slice", Value::from(scope.slice.as_str())),
        ("PIDs", Value::from(vec![pid])),
        ("Delegate", Value::from(true)),
        ("DefaultDependencies", Value::from(false)),
        ("CollectMode", Value::from("inactive-or-failed")),
        ("MemoryAccounting", Value::from(true)),
        ("CPUAccounting", Value::from(true)),
        ("IOAccounting", Value::from(true)),
        ("TasksAccounting", Value::from(true)),
    ];
    props.extend(resource_properties(res));
    let aux: Vec<(&str, Vec<(&str, Value)>)> = Vec::new();
    let removed = watch_jobs(&proxy, unit).await?;
    let job: OwnedObjectPath = proxy
        .call("StartTransientUnit", &(unit, "fail", props, aux))
        .await
        .map_err(bus_error("start", unit))?;
    let result = job_result(removed, &job, unit).await?;
    if result != "done" {
        return Err(Error::FailedPrecondition(format!(
            "systemd could not start {unit} in {}: job {result}",
            scope.slice
        )));
    }
    tracing::info!(unit, slice = %scope.slice, pid, "scope started");
    Ok(())
}

/// Stops `unit` and forgets a failed state; a unit already gone is not an error.
pub async fn stop_scope(unit: &str) -> Result<()> {
    let proxy = manager_for(unit).await?;
    let removed = watch_jobs(&proxy, unit).await?;
    match proxy
        .call::<_, _, OwnedObjectPath>("StopUnit", &(unit, "replace"))
        .await
    {
        Ok(job) => {
            job_result(removed, &job, unit).await?;
        }
        Err(e) if is_no_such_unit(&e) => {}
        Err(e) => return Err(bus_error("stop", unit)(e)),
    }
    // Only a failed unit has anything to reset; NoSuchUnit and "not failed" are both fine.
    let _ = proxy.call::<_, _, ()>("ResetFailedUnit", &(unit,)).await;
    tracing::info!(unit, "scope stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_names_as_runc_reads_them() {
        let s = parse("kubepods-besteffort-pod1.slice:crius:abc").unwrap();
        assert_eq!(s.slice, "kubepods-besteffort-pod1.slice");
        assert_eq!(s.unit, "crius-abc.scope");
        assert_eq!(parse(":crius:abc").unwrap().slice, "system.slice");
        assert_eq!(parse("a.slice::abc").unwrap().unit, "abc.scope");
        for not in [
            "/crius/abc",
            "a.slice:crius",
            "a.slice:x:y:z",
            "a.slice:x:",
            "a.slice:x:b.slice",
        ] {
            assert_eq!(parse(not), None, "{not}");
        }
    }

    #[test]
    fn resources_become_properties() {
        let res = Resources {
            cpu_shares: Some(2),
            cpu_quota: Some(25_000),
            cpu_period: Some(100_000),
            memory_limit: Some(64 << 20),
            pids_limit: Some(-1),
            ..Default::default()
        };
        let props = resource_properties(&res);
        let get = |k: &str| props.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(get("CPUWeight"), Some(Value::from(1u64)));
        assert_eq!(get("CPUQuotaPerSecUSec"), Some(Value::from(250_000u64)));
        assert_eq!(get("MemoryMax"), Some(Value::from(64u64 << 20)));
        assert_eq!(get("TasksMax"), Some(Value::from(u64::MAX)));
        let odd = Resources {
            cpu_quota: Some(1_234),
            cpu_period: Some(100_000),
            ..Default::default()
        };
        let props = resource_properties(&odd);
        assert_eq!(props[0], ("CPUQuotaPerSecUSec", Value::from(20_000u64)));
    }
}
