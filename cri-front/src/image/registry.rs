//! The pull side of the OCI distribution protocol, on reqwest: manifests and blobs from one
//! registry host, with anonymous, basic, bearer-token and OAuth2 refresh-token auth (Docker's
//! token flow), and TLS as hosts.toml says (extra CAs, skip_verify, client certificates).
//!
//! Why not `oci-client`: its `ClientConfig` has no client identity and it takes no prepared
//! `reqwest::Client`, so registries that require mutual TLS (hosts.toml's `client`) could not be
//! pulled from. Pulling needs only two GETs and the auth dance, small enough to own here.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Response, StatusCode};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use tokio::sync::Mutex;

use super::hosts::RegistryHost;
use crate::error::{Error, Result};

/// Anything read into memory (manifests, image configs) is at most this big: a registry that
/// sends more is broken or hostile, and criusd must not grow by what it is sent.
pub const MAX_IN_MEMORY: u64 = 16 << 20;

/// Credentials for one pull, from the CRI `AuthConfig`.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    Anonymous,
    /// Sent when the registry or its token server asks (basic challenge or token request).
    Basic {
        user: String,
        password: String,
    },
    /// A registry token, sent as is.
    Bearer(String),
    /// An OAuth2 refresh token, exchanged at the token server for an access token.
    Identity(String),
}

impl std::fmt::Debug for Auth {
    // Never print secrets into logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::Anonymous => "Anonymous",
            Auth::Basic { .. } => "Basic",
            Auth::Bearer(_) => "Bearer",
            Auth::Identity(_) => "Identity",
        })
    }
}

/// A manifest as fetched: its bytes, their digest and the media type the registry gave.
#[derive(Debug)]
pub struct Fetched {
    pub bytes: Bytes,
    pub digest: String,
    pub media_type: Option<String>,
}

/// One registry host to pull from.
pub struct Registry {
    http: reqwest::Client,
    host: String,
    base: String,
    auth: Auth,
    /// `?ns=<upstream>` on a mirror's URLs, as containerd sends: proxy caches (Harbor, zot) use
    /// it to know which registry a repository is from.
    ns_query: String,
    /// The `Authorization` value that last worked, reused for the pull's later requests.
    authorization: Mutex<Option<HeaderValue>>,
}

impl Registry {
    /// A client for `host` with its TLS settings; nothing is sent yet. `upstream` names the
    /// registry the image is from when `host` is a mirror of it.
    pub fn new(host: &RegistryHost, upstream: &str, auth: Auth) -> Result<Registry> {
        // reqwest is built without a default crypto provider; criusd installs ring at start,
        // this covers library users and unit tests.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("crius/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(120))
            .danger_accept_invalid_certs(host.skip_verify);
        let mut roots = Vec::new();
        for ca in &host.ca {
            let pem =
                std::fs::read(ca).map_err(|e| Error::io(format!("read CA {}", ca.display()), e))?;
            roots.extend(
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                    Error::Config(format!("CA {}: {}", ca.display(), error_chain(&e)))
                })?,
            );
        }
        b = b.tls_certs_merge(roots);
        if let Some(client) = &host.client {
            let mut pem = std::fs::read(&client.cert)
                .map_err(|e| Error::io(format!("read client cert {}", client.cert.display()), e))?;
            if let Some(key) = &client.key {
                pem.push(b'\n');
                pem.extend(
                    std::fs::read(key)
                        .map_err(|e| Error::io(format!("read client key {}", key.display()), e))?,
                );
            }
            let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
                Error::Config(format!(
                    "client certificate {}: {}",
                    client.cert.display(),
                    error_chain(&e)
                ))
            })?;
            b = b.identity(id);
        }
        let http = b
            .build()
            .map_err(|e| Error::Config(format!("registry {}: {}", host.host, error_chain(&e))))?;
        let scheme = if host.plain_http { "http" } else { "https" };
        let authorization = match &auth {
            Auth::Bearer(t) => Some(header(&format!("Bearer {t}"))?),
            _ => None,
        };
        Ok(Registry {
            http,
            host: host.host.clone(),
            base: format!("{scheme}://{}", url_host(&host.host)),
            auth,
            ns_query: if host.mirror {
                format!(
                    "?ns={}",
                    form_urlencoded::byte_serialize(upstream.as_bytes()).collect::<String>()
                )
            } else {
                String::new()
            },
            authorization: Mutex::new(authorization),
        })
    }

    /// GET a manifest by tag or digest. A digest reference is checked against the bytes.
    pub async fn manifest(&self, repo: &str, reference: &str, accept: &[&str]) -> Result<Fetched> {
        let url = self.url(repo, "manifests", reference);
        let resp = self.get(repo, &url, &accept.join(", ")).await?;
        let media_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or(s).trim().to_string());
        let bytes = read_limited(resp, MAX_IN_MEMORY, &url).await?;
        let digest = sha256_digest(&bytes);
        // Pulled by digest: the bytes must be what was asked for (sha256 is all OCI uses).
        if reference.starts_with("sha256:") && reference != digest {
            return Err(Error::InvalidArgument(format!(
                "{}: manifest {reference} has digest {digest}",
                self.host
            )));
        }
        Ok(Fetched {
            bytes,
            digest,
            media_type,
        })
    }

    /// GET a small blob (an image config) into memory, checking its digest.
    pub async fn blob(&self, repo: &str, digest: &str, size: i64) -> Result<Bytes> {
        if size < 0 || size as u64 > MAX_IN_MEMORY {
            return Err(Error::InvalidArgument(format!(
                "blob {digest} claims {size} bytes; at most {MAX_IN_MEMORY} are read into memory"
            )));
        }
        let url = self.url(repo, "blobs", digest);
        let resp = self.get(repo, &url, "*/*").await?;
        let bytes = read_limited(resp, size as u64, &url).await?;
        let got = sha256_digest(&bytes);
        if got != digest {
            return Err(Error::InvalidArgument(format!(
                "{}: blob {digest} has digest {got}",
                self.host
            )));
        }
        Ok(bytes)
    }

    /// GET a blob as a stream of chunks; the content store checks size and digest at commit.
    pub async fn blob_stream(
        &self,
        repo: &str,
        digest: &str,
    ) -> Result<impl Stream<Item = std::io::Result<Bytes>> + Unpin + use<>> {
        let url = self.url(repo, "blobs", digest);
        let resp = self.get(repo, &url, "*/*").await?;
        Ok(resp.bytes_stream().map_err(std::io::Error::other).boxed())
    }

    /// `<base>/v2/<repo>/<kind>/<reference>`, with `?ns=` on a mirror.
    fn url(&self, repo: &str, kind: &str, reference: &str) -> String {
        format!(
            "{}/v2/{repo}/{kind}/{reference}{}",
            self.base, self.ns_query
        )
    }

    /// GET with the pull's current authorization; on a 401, answer the challenge once.
    async fn get(&self, repo: &str, url: &str, accept: &str) -> Result<Response> {
        let current = self.authorization.lock().await.clone();
        let mut resp = self.send(url, accept, current.as_ref()).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let challenge = resp
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            if let Some(answer) = self.answer(&challenge, repo).await? {
                resp = self.send(url, accept, Some(&answer)).await?;
                *self.authorization.lock().await = Some(answer);
            }
        }
        check(resp, url).await
    }

    async fn send(
        &self,
        url: &str,
        accept: &str,
        authorization: Option<&HeaderValue>,
    ) -> Result<Response> {
        let mut req = self.http.get(url).header(ACCEPT, accept);
        if let Some(a) = authorization {
            req = req.header(AUTHORIZATION, a.clone());
        }
        req.send()
            .await
            .map_err(|e| Error::Unavailable(format!("GET {url}: {}", error_chain(&e))))
    }

    /// The `Authorization` value that answers a `WWW-Authenticate` challenge, or None when the
    /// credentials at hand cannot (the 401 then stands).
    async fn answer(&self, challenge: &str, repo: &str) -> Result<Option<HeaderValue>> {
        let challenges = http_auth::parse_challenges(challenge).map_err(|e| {
            Error::Unavailable(format!(
                "{}: bad WWW-Authenticate {challenge:?}: {e}",
                self.host
            ))
        })?;
        for c in &challenges {
            let param = |name: &str| {
                c.params
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.to_unescaped())
            };
            if c.scheme.eq_ignore_ascii_case("bearer") {
                let Some(realm) = param("realm") else {
                    continue;
                };
                let scope = param("scope").unwrap_or_else(|| format!("repository:{repo}:pull"));
                let token = self.token(&realm, param("service"), &scope).await?;
                return header(&format!("Bearer {token}")).map(Some);
            }
            if c.scheme.eq_ignore_ascii_case("basic") {
                if let Auth::Basic { user, password } = &self.auth {
                    return header(&basic(user, password)).map(Some);
                }
            }
        }
        Ok(None)
    }

    /// Fetch a pull token from the token server named by a bearer challenge.
    async fn token(&self, realm: &str, service: Option<String>, scope: &str) -> Result<String> {
        let mut form: Vec<(&str, String)> = vec![("scope", scope.to_string())];
        if let Some(s) = service {
            form.push(("service", s));
        }
        let encode = |form: &[(&str, String)]| {
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
                .finish()
        };
        let req = match &self.auth {
            // OAuth2: the refresh token is exchanged by POST (Docker's token spec).
            Auth::Identity(refresh) => {
                form.push(("grant_type", "refresh_token".into()));
                form.push(("refresh_token", refresh.clone()));
                form.push(("client_id", "crius".into()));
                let body = encode(&form);
                self.http
                    .post(realm)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(body)
            }
            auth => {
                let sep = if realm.contains('?') { '&' } else { '?' };
                let mut req = self.http.get(format!("{realm}{sep}{}", encode(&form)));
                if let Auth::Basic { user, password } = auth {
                    req = req.header(AUTHORIZATION, basic(user, password));
                }
                req
            }
        };
        let resp = req
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("token {realm}: {}", error_chain(&e))))?;
        let resp = check(resp, realm).await?;
        let body = read_limited(resp, 1 << 20, realm).await?;
        #[derive(Deserialize)]
        struct TokenResponse {
            #[serde(default)]
            token: String,
            #[serde(default)]
            access_token: String,
        }
        let t: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| Error::Unavailable(format!("token {realm}: malformed answer: {e}")))?;
        let token = if t.token.is_empty() {
            t.access_token
        } else {
            t.token
        };
        if token.is_empty() {
            return Err(Error::Unauthenticated(format!(
                "token {realm}: the answer holds no token"
            )));
        }
        tracing::debug!(registry = %self.host, %realm, %scope, "registry token obtained");
        Ok(token)
    }
}

/// Map a response's status onto criusd's errors, with the registry's own message.
async fn check(resp: Response, url: &str) -> Result<Response> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = read_limited(resp, 64 << 10, url)
        .await
        .map(|b| registry_message(&b))
        .unwrap_or_default();
    let what = format!("{url}: {status}{body}");
    Err(match status {
        StatusCode::NOT_FOUND => Error::NotFound(what),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Unauthenticated(what),
        _ => Error::Unavailable(what),
    })
}

/// The `errors[].message` of a distribution error body, as `: msg; msg`.
fn registry_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Envelope {
        errors: Vec<ErrorEntry>,
    }
    #[derive(Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Envelope>(body) {
        Ok(e) if !e.errors.is_empty() => {
            let parts: Vec<String> = e
                .errors
                .iter()
                .map(|x| format!("{} {}", x.code, x.message).trim().to_string())
                .collect();
            format!(": {}", parts.join("; "))
        }
        _ => String::new(),
    }
}

/// Read a body into memory, refusing more than `limit` bytes.
async fn read_limited(resp: Response, limit: u64, url: &str) -> Result<Bytes> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(Error::InvalidArgument(format!(
            "{url}: {} bytes, more than the {limit} allowed",
            resp.content_length().unwrap_or_default()
        )));
    }
    let mut out = Vec::new();
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Error::Unavailable(format!("{url}: {}", error_chain(&e))))?;
        if (out.len() + chunk.len()) as u64 > limit {
            return Err(Error::InvalidArgument(format!(
                "{url}: more than the {limit} bytes allowed"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

/// Docker Hub's name is not where its API lives (containerd maps it the same way).
fn url_host(host: &str) -> &str {
    match host {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        h => h,
    }
}

fn sha256_digest(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn basic(user: &str, password: &str) -> String {
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn header(v: &str) -> Result<HeaderValue> {
    let mut h = HeaderValue::from_str(v).map_err(|_| {
        Error::InvalidArgument("registry credentials hold invalid characters".into())
    })?;
    h.set_sensitive(true);
    Ok(h)
}

/// An error and its causes in one line (reqwest hides the useful part in `source()`).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_error_messages_are_kept() {
        let b =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(registry_message(b), ": MANIFEST_UNKNOWN manifest unknown");
        assert_eq!(registry_message(b"<html>"), "");
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let a = Auth::Basic {
            user: "u".into(),
            password: "hunter2".into(),
        };
        assert_eq!(format!("{a:?}"), "Basic");
    }

    #[test]
    fn mirrors_are_told_the_upstream() {
        let mut host = RegistryHost {
            host: "mirror:5000".into(),
            plain_http: true,
            skip_verify: false,
            ca: Vec::new(),
            client: None,
            mirror: true,
        };
        let r = Registry::new(&host, "docker.io", Auth::Anonymous).expect("client");
        assert_eq!(
            r.url("library/busybox", "manifests", "latest"),
            "http://mirror:5000/v2/library/busybox/manifests/latest?ns=docker.io"
        );
        host.mirror = false;
        let r = Registry::new(&host, "docker.io", Auth::Anonymous).expect("client");
        assert_eq!(
            r.url("a/b", "blobs", "sha256:00"),
            "http://mirror:5000/v2/a/b/blobs/sha256:00"
        );
    }

    #[test]
    fn docker_hub_is_reached_at_its_api_host() {
        assert_eq!(url_host("docker.io"), "registry-1.docker.io");
        assert_eq!(url_host("127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
