//! Dovie, the server: configuration, the REST API and the `/ws` gateway (actix-web), storage
//! adapters, authentication, metrics and the node lifecycle. The actor system lives in
//! `dovie-actors`, the wire contract in `dovie-protocol`.

#![recursion_limit = "512"]

pub mod admin;
pub mod ai;
pub mod api;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod business;
pub mod cluster;
pub mod config;
pub mod egress;
pub mod files;
pub mod geo;
pub mod i18n;
pub mod metrics;
pub mod openapi;
pub mod people;
pub mod privacy;
pub mod providers;
pub mod push;
pub mod quota;
pub mod ratelimit;
pub mod server;
pub mod social;
pub mod state;
pub mod store;
pub mod ws;
pub mod zipstream;
