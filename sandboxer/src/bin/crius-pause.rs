//! crius-pause: the process that holds a pod's namespaces.
//!
//! Sleeps until SIGINT or SIGTERM (then exits 0) and, being PID 1 of the pod's
//! PID namespace when it has one, reaps every orphan re-parented to it.
//! std + libc only, built static (see the crate doc) because its rootfs holds
//! nothing else. Signals are blocked and taken with `sigwaitinfo`, so no code
//! runs in signal-handler context.

use std::mem::MaybeUninit;

fn main() {
    if std::env::args().nth(1).as_deref() == Some("-v") {
        println!("crius-pause {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    // SAFETY: plain libc calls on a locally owned, initialised sigset.
    unsafe {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(set.as_mut_ptr());
        let mut set = set.assume_init();
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGCHLD] {
            libc::sigaddset(&mut set, sig);
        }
        if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            eprintln!("crius-pause: sigprocmask failed");
            std::process::exit(1);
        }
        loop {
            let sig = libc::sigwaitinfo(&set, std::ptr::null_mut());
            match sig {
                libc::SIGINT | libc::SIGTERM => std::process::exit(0),
                libc::SIGCHLD => reap(),
                _ => {} // EINTR
            }
        }
    }
}

/// Reap every exited child without blocking.
fn reap() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid out pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
    }
}
