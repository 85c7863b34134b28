//! The servers a run loads: a Dovie node (started here with a fresh data directory, or one
//! already running on loopback) and the bare relay. Started servers are killed when dropped.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::wire;

/// How long a started server may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Dovie,
    Relay,
}

impl TargetKind {
    pub fn label(self) -> &'static str {
        match self {
            TargetKind::Dovie => "dovie",
            TargetKind::Relay => "relay",
        }
    }
}

/// Where the server binaries are.
pub struct Bins {
    dovie: PathBuf,
    relay: PathBuf,
    sink: PathBuf,
}

impl Bins {
    pub fn locate(dir: Option<&str>) -> Result<Bins, String> {
        let dir = match dir {
            Some(d) => PathBuf::from(d),
            None => std::env::current_exe()
                .map_err(|e| e.to_string())?
                .parent()
                .map(PathBuf::from)
                .ok_or("no directory for this binary")?,
        };
        Ok(Bins {
            dovie: dir.join("dovie"),
            relay: dir.join("dovie-relay"),
            sink: dir.join("dovie-filesink"),
        })
    }

    /// The bare file sink and source (`dovie-filesink`).
    pub fn sink(&self) -> &std::path::Path {
        &self.sink
    }
}

pub struct Target {
    pub kind: TargetKind,
    pub addr: SocketAddr,
    pub pid: Option<u32>,
    child: Option<Child>,
    data_dir: Option<PathBuf>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(d) = &self.data_dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn free_port() -> Result<SocketAddr, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map_err(|e| e.to_string())
}

fn loopback(addr: &SocketAddr) -> Result<(), String> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(format!("refusing to load {addr}: loopback targets only"))
    }
}

impl Target {
    /// A node already running at `url` (`http://127.0.0.1:8080`).
    pub fn external(url: &str, pid: Option<u32>) -> Result<Target, String> {
        let hostport = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .replace("localhost", "127.0.0.1");
        let addr: SocketAddr = hostport
            .parse()
            .map_err(|e| format!("{url}: not host:port ({e})"))?;
        loopback(&addr)?;
        Ok(Target {
            kind: TargetKind::Dovie,
            addr,
            pid,
            child: None,
            data_dir: None,
        })
    }

    pub async fn start_dovie(bins: &Bins, config: &str) -> Result<Target, String> {
        Target::start_dovie_with(bins, config, false).await
    }

    /// A node; `real_login_limits` keeps its login limits (the spray scenario measures them).
    pub async fn start_dovie_with(
        bins: &Bins,
        config: &str,
        real_login_limits: bool,
    ) -> Result<Target, String> {
        Target::start_dovie_args(bins, config, real_login_limits, &[]).await
    }

    /// A node with environment of its own (settings beyond the config file).
    pub async fn start_dovie_env(
        bins: &Bins,
        config: &str,
        env: &[(&str, &str)],
    ) -> Result<Target, String> {
        Target::start_dovie_full(bins, config, false, &[], env).await
    }

    /// [`Target::start_dovie_with`] with more flags (a cluster's store and bus).
    pub async fn start_dovie_args(
        bins: &Bins,
        config: &str,
        real_login_limits: bool,
        extra: &[String],
    ) -> Result<Target, String> {
        Target::start_dovie_full(bins, config, real_login_limits, extra, &[]).await
    }

    async fn start_dovie_full(
        bins: &Bins,
        config: &str,
        real_login_limits: bool,
        extra: &[String],
        env: &[(&str, &str)],
    ) -> Result<Target, String> {
        let login_limit = if real_login_limits { "10" } else { "100000000" };
        let addr = free_port()?;
        let data_dir =
            std::env::temp_dir().join(format!("dovie-load-{}-{}", std::process::id(), addr.port()));
        let _ = std::fs::remove_dir_all(&data_dir);
        std::fs::create_dir_all(&data_dir).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(data_dir.join("dovie.log")).map_err(|e| e.to_string())?;
        let child = Command::new(&bins.dovie)
            .args(["serve", "--config", config, "--listen"])
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(&data_dir)
            .args(extra)
            // The load tool registers and logs in thousands of users from one address: the
            // per-address limits of a public node are not what it measures.
            .env("DOVIE_RATE_LIMITS__REGISTER_PER_HOUR", "100000000")
            .env("DOVIE_RATE_LIMITS__LOGIN_PER_MINUTE", login_limit)
            .env("DOVIE_RATE_LIMITS__API_PER_MINUTE", "100000000")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bins.dovie.display()))?;
        let t = Target {
            kind: TargetKind::Dovie,
            addr,
            pid: Some(child.id()),
            child: Some(child),
            data_dir: Some(data_dir),
        };
        t.wait_ready().await?;
        Ok(t)
    }

    pub async fn start_relay(bins: &Bins) -> Result<Target, String> {
        let addr = free_port()?;
        let child = Command::new(&bins.relay)
            .arg("--listen")
            .arg(addr.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bins.relay.display()))?;
        let t = Target {
            kind: TargetKind::Relay,
            addr,
            pid: Some(child.id()),
            child: Some(child),
            data_dir: None,
        };
        t.wait_ready().await?;
        Ok(t)
    }

    async fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let ready = match self.kind {
                TargetKind::Dovie => self.scrape_health().await,
                TargetKind::Relay => tokio::net::TcpStream::connect(self.addr).await.is_ok(),
            };
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} at {} did not come up",
                    self.kind.label(),
                    self.addr
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn scrape_health(&self) -> bool {
        let Ok(mut http) = wire::Http::connect(wire::source(0, 1), self.addr).await else {
            return false;
        };
        matches!(http.call("GET", "/health", None, None).await, Ok((200, _)))
    }

    pub fn rss_kib(&self) -> Option<u64> {
        self.pid.and_then(crate::report::rss_kib)
    }

    /// The node's `/metrics` (empty for the relay, which has none).
    pub async fn metrics(&self) -> BTreeMap<String, f64> {
        if self.kind != TargetKind::Dovie {
            return BTreeMap::new();
        }
        let text = async {
            let s = wire::connect_from(wire::source(0, 1), self.addr)
                .await
                .ok()?;
            raw_get(s, "/metrics").await
        };
        text.await
            .map(|t| crate::report::parse_metrics(&t))
            .unwrap_or_default()
    }
}

/// A plain GET whose body is text (the metrics exposition).
async fn raw_get(mut s: tokio::net::TcpStream, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let req = format!("GET {path} HTTP/1.1\r\nhost: dovie\r\nconnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf);
    let (_, body) = text.split_once("\r\n\r\n")?;
    Some(body.to_string())
}
