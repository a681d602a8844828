//! Single-use, expiring tokens: RPC Exec/Attach/PortForward stores the request and hands out a URL
//! naming a token; the first HTTP request with it takes the request out. A token is worth nothing
//! after its first use or after its time-to-live.

use crius_proto::runtime as cri;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A request waiting for its client.
#[derive(Debug, Clone)]
pub enum Pending {
    Exec(cri::ExecRequest),
    Attach(cri::AttachRequest),
    PortForward(cri::PortForwardRequest),
}

impl Pending {
    /// The URL path segment this request is served under.
    pub fn kind(&self) -> &'static str {
        match self {
            Pending::Exec(_) => "exec",
            Pending::Attach(_) => "attach",
            Pending::PortForward(_) => "portforward",
        }
    }
}

/// Most requests waiting at once (as kubelet: a client cannot fill memory with tokens).
const MAX_PENDING: usize = 1000;

pub struct Tokens {
    ttl: Duration,
    map: Mutex<HashMap<String, (Pending, Instant)>>,
}

#[derive(Debug, thiserror::Error)]
#[error("too many streaming requests waiting ({MAX_PENDING}); try again")]
pub struct Full;

impl Tokens {
    pub fn new(ttl: Duration) -> Tokens {
        Tokens {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Store `p`; its token (32 hex digits twice: 244 random bits from the OS).
    pub fn insert(&self, p: Pending) -> Result<String, Full> {
        let token = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        m.retain(|_, (_, exp)| *exp > now);
        if m.len() >= MAX_PENDING {
            return Err(Full);
        }
        m.insert(token.clone(), (p, now + self.ttl));
        Ok(token)
    }

    /// Take the request for `token` out: None when unknown, used or expired.
    pub fn consume(&self, token: &str) -> Option<Pending> {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let (p, exp) = m.remove(token)?;
        (exp > Instant::now()).then_some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec() -> Pending {
        Pending::Exec(cri::ExecRequest {
            container_id: "c".into(),
            cmd: vec!["true".into()],
            ..Default::default()
        })
    }

    #[test]
    fn tokens_are_single_use_and_unguessable() {
        let t = Tokens::new(Duration::from_secs(60));
        let a = t.insert(exec()).expect("insert");
        let b = t.insert(exec()).expect("insert");
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(t.consume("nope").is_none());
        assert!(matches!(t.consume(&a), Some(Pending::Exec(_))));
        assert!(t.consume(&a).is_none(), "second use");
        assert!(t.consume(&b).is_some());
    }

    #[test]
    fn tokens_expire() {
        let t = Tokens::new(Duration::from_millis(20));
        let a = t.insert(exec()).expect("insert");
        std::thread::sleep(Duration::from_millis(40));
        assert!(t.consume(&a).is_none());
    }

    #[test]
    fn pending_requests_are_capped() {
        let t = Tokens::new(Duration::from_secs(60));
        for _ in 0..MAX_PENDING {
            t.insert(exec()).expect("insert");
        }
        assert!(t.insert(exec()).is_err());
    }
}
