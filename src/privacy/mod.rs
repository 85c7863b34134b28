//! Privacy beyond consents (OPS-9): the data export — a user's data as a ZIP of JSON with the
//! bytes of their files, made by a job off the request path (`export`).

pub mod export;
