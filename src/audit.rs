//! The audit log (ADM-3, OPS-10): every admin action and security event — logins that failed
//! and succeeded, password and phone changes, session revocations, suspensions, role changes,
//! verifications, report resolutions, exports, deletions — is written through [`record`], the
//! one function that appends to it, so no path forgets the actor, the address, the time or the
//! target's label (kept as it was, so it outlives the target).

use serde_json::Value;

use crate::store::{AuditRecord, SharedStore, StoreResult};

/// Who acted: an account (or [`SYSTEM`]), and the address the request came from.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub id: &'a str,
    pub ip: Option<&'a str>,
}

/// The actor of what the server does by itself (a suspension that ends on time).
pub const SYSTEM: &str = "system";
/// The actor of what an unknown client did (a login that failed).
pub const ANONYMOUS: &str = "anonymous";

/// What an entry is about: the kind of target, its id and a label (a name or email as it is
/// now).
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub kind: &'static str,
    pub id: &'a str,
    pub label: Option<&'a str>,
}

/// Appends "`actor` did `action` to `target`", with `details`; answers the entry.
pub async fn record(
    store: &SharedStore,
    actor: Actor<'_>,
    action: &'static str,
    target: Target<'_>,
    details: Value,
) -> StoreResult<AuditRecord> {
    let entry = AuditRecord {
        id: uuid::Uuid::now_v7().to_string(),
        at: dovie_actors::now_ms(),
        actor_id: actor.id.to_string(),
        action: action.to_string(),
        target_type: target.kind.to_string(),
        target_id: target.id.to_string(),
        target_label: target.label.map(str::to_string),
        ip: actor.ip.map(str::to_string),
        details,
    };
    store.append_audit(&entry).await?;
    crate::metrics::audit_entry(action);
    tracing::info!(actor = %actor.id, action, target = %target.id, kind = target.kind, "audit");
    Ok(entry)
}

/// [`record`] for a security event met on the way (a login, a revoked session): the event has
/// happened whatever the log answers, so a store failure is logged, not answered.
pub async fn note(
    store: &SharedStore,
    actor: Actor<'_>,
    action: &'static str,
    target: Target<'_>,
    details: Value,
) {
    if let Err(e) = record(store, actor, action, target, details).await {
        tracing::error!(error = %e.message, action, "cannot append to the audit log");
    }
}
