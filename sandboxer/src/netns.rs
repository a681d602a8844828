//! Pod network namespaces: create (pinned at `<run_dir>/netns/<id>`) with `lo`
//! up, read back with rtnetlink, remove. The netlink socket is opened inside
//! the namespace (on the namespace thread, see `sys`) and then driven by the
//! caller's tokio runtime, so no thread stays inside a pod's netns.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use futures::TryStreamExt;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{LinkAttribute, LinkFlags};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteType};
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};

use crate::status::{LinkView, NetnsView, RouteView};
use crate::sys;

const RT_TABLE_MAIN: u32 = 254;

fn rtnl_err(e: rtnetlink::Error) -> io::Error {
    io::Error::other(e)
}

/// Open an rtnetlink connection bound to whatever netns the calling thread is in,
/// registered with `rt`'s reactor.
fn connect_here(rt: &tokio::runtime::Handle) -> io::Result<Handle> {
    let _guard = rt.enter();
    let (conn, handle, _) = rtnetlink::new_connection()?;
    // The connection ends once every Handle is dropped.
    rt.spawn(conn);
    Ok(handle)
}

/// Create the netns pinned at `path` and bring `lo` up in it.
pub async fn create(path: &Path) -> io::Result<()> {
    let rt = tokio::runtime::Handle::current();
    let p = path.to_path_buf();
    let handle =
        tokio::task::spawn_blocking(move || sys::create_netns(&p, move || connect_here(&rt)))
            .await
            .map_err(io::Error::other)??;
    let res = lo_up(&handle).await;
    if res.is_err() {
        let _ = sys::remove_netns(path);
    }
    res
}

/// Pin the netns process `pid` made (a user-namespaced pod's pause) at `path` and bring `lo`
/// up in it, as [`create`] does for the netns it makes.
pub async fn adopt(pid: u32, path: &Path) -> io::Result<()> {
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || sys::pin_netns_of(pid, &p))
        .await
        .map_err(io::Error::other)??;
    let rt = tokio::runtime::Handle::current();
    let p = path.to_path_buf();
    let res = async {
        let handle =
            tokio::task::spawn_blocking(move || sys::in_netns(&p, move || connect_here(&rt)))
                .await
                .map_err(io::Error::other)??;
        lo_up(&handle).await
    }
    .await;
    if res.is_err() {
        let _ = sys::remove_netns(path);
    }
    res
}

async fn lo_up(handle: &Handle) -> io::Result<()> {
    // In a fresh netns `lo` is always index 1, but look it up to be sure.
    let mut links = handle.link().get().match_name("lo".to_string()).execute();
    let lo = links
        .try_next()
        .await
        .map_err(rtnl_err)?
        .ok_or_else(|| io::Error::other("no lo in new netns"))?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(lo.header.index).up().build())
        .execute()
        .await
        .map_err(rtnl_err)
}

/// Unmount and delete the pin (idempotent).
pub fn remove(path: &Path) -> io::Result<()> {
    sys::remove_netns(path)
}

pub fn exists(path: &Path) -> bool {
    sys::is_netns_mount(path)
}

/// Read the links, addresses and main-table routes (v4 and v6) of a netns.
pub async fn view(path: &Path) -> io::Result<NetnsView> {
    let rt = tokio::runtime::Handle::current();
    let p = path.to_path_buf();
    let handle = tokio::task::spawn_blocking(move || sys::in_netns(&p, move || connect_here(&rt)))
        .await
        .map_err(io::Error::other)??;
    read_view(&handle).await
}

async fn read_view(handle: &Handle) -> io::Result<NetnsView> {
    let mut view = NetnsView::default();
    let mut links = handle.link().get().execute();
    while let Some(msg) = links.try_next().await.map_err(rtnl_err)? {
        let mut name = String::new();
        let mut mac = None;
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => name = n.clone(),
                LinkAttribute::Address(a) if a.len() == 6 => {
                    mac = Some(
                        a.iter()
                            .map(|b| format!("{b:02x}"))
                            .collect::<Vec<_>>()
                            .join(":"),
                    )
                }
                _ => {}
            }
        }
        view.links.push(LinkView {
            index: msg.header.index,
            name,
            up: msg.header.flags.contains(LinkFlags::Up),
            mac,
            addrs: Vec::new(),
        });
    }
    let mut addrs = handle.address().get().execute();
    while let Some(msg) = addrs.try_next().await.map_err(rtnl_err)? {
        // IFA_LOCAL is the interface's own address on point-to-point links;
        // IFA_ADDRESS otherwise (they are equal on broadcast links).
        let mut addr = None;
        for attr in &msg.attributes {
            match attr {
                AddressAttribute::Local(a) => addr = Some(*a),
                AddressAttribute::Address(a) if addr.is_none() => addr = Some(*a),
                _ => {}
            }
        }
        if let (Some(a), Some(link)) = (
            addr,
            view.links.iter_mut().find(|l| l.index == msg.header.index),
        ) {
            link.addrs.push((a, msg.header.prefix_len));
        }
    }
    let v4 = RouteMessageBuilder::<Ipv4Addr>::new().build();
    let v6 = RouteMessageBuilder::<Ipv6Addr>::new().build();
    for req in [v4, v6] {
        let mut routes = handle.route().get(req).execute();
        while let Some(msg) = routes.try_next().await.map_err(rtnl_err)? {
            let mut table = u32::from(msg.header.table);
            let mut dst = None;
            let mut gateway = None;
            let mut oif = None;
            for attr in &msg.attributes {
                match attr {
                    RouteAttribute::Table(t) => table = *t,
                    RouteAttribute::Destination(a) => dst = route_ip(a),
                    RouteAttribute::Gateway(a) => gateway = route_ip(a),
                    RouteAttribute::Oif(i) => oif = Some(*i),
                    _ => {}
                }
            }
            if table != RT_TABLE_MAIN || msg.header.kind != RouteType::Unicast {
                continue;
            }
            view.routes.push(RouteView {
                destination: dst.map(|d| (d, msg.header.destination_prefix_length)),
                gateway,
                oif,
            });
        }
    }
    Ok(view)
}

fn route_ip(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn create_view_remove() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ns1");
        create(&path).await.expect("create netns");
        assert!(exists(&path));
        let v = view(&path).await.expect("view");
        let lo = v.links.iter().find(|l| l.name == "lo").expect("lo");
        assert!(lo.up, "lo is up");
        assert_eq!(v.links.len(), 1, "only lo in a new netns: {v:?}");
        assert!(lo.addrs.iter().any(|(a, _)| a.is_loopback()));
        remove(&path).expect("remove");
        assert!(!exists(&path));
        assert!(!path.exists());
        remove(&path).expect("remove again is fine");
    }
}
