//! Local stand-ins of the external services Dovie talks to (identity providers, SMS, AI, push
//! services, web sites), each a small HTTP server on a free loopback port that checks what the
//! real service checks — auth headers, signatures, request shapes — and answers as it would.
//! A feature that calls a provider points the provider's configured `base_url` at its stand-in.
//! Every stand-in records the requests it got, for tests to assert on.

pub mod ai;
pub mod identity;
pub mod push;
pub mod site;

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use actix_web::{web, App, HttpRequest, HttpServer};
use bytes::Bytes;

/// One request a stand-in received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The requests a stand-in received, shared with its handlers.
#[derive(Debug, Clone, Default)]
pub struct Log(Arc<Mutex<Vec<Recorded>>>);

impl Log {
    pub fn record(&self, req: &HttpRequest, body: &Bytes) {
        let headers = req
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        self.0.lock().expect("log").push(Recorded {
            method: req.method().to_string(),
            path: req.path().to_string(),
            query: req.query_string().to_string(),
            headers,
            body: body.clone(),
        });
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.0.lock().expect("log").clone()
    }
}

/// A running stand-in: an actix-web server on its own thread and runtime. Stops when dropped.
pub struct StandIn {
    pub base_url: String,
    pub port: u16,
    pub log: Log,
    handle: actix_web::dev::ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl StandIn {
    /// Starts a server whose routes `configure` adds; handlers find the [`Log`] as app data.
    pub fn start<F>(configure: F) -> StandIn
    where
        F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
    {
        let log = Log::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let server_log = log.clone();
        let thread = std::thread::spawn(move || {
            let system = actix_rt::System::new();
            system.block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(web::Data::new(server_log.clone()))
                        .configure(configure.clone())
                })
                .workers(1)
                .disable_signals()
                .bind(("127.0.0.1", 0))
                .expect("bind a stand-in");
                let port = server.addrs()[0].port();
                let server = server.run();
                tx.send((port, server.handle())).expect("report the port");
                let _ = server.await;
            });
        });
        let (port, handle) = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the stand-in started");
        StandIn {
            base_url: format!("http://127.0.0.1:{port}"),
            port,
            log,
            handle,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        // The command goes out when called; the server's own thread finishes the stop.
        drop(self.handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
