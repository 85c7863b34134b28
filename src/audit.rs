//! The audit log: every privileged step (a verification asked for, approved or rejected; later
//! every admin action) is written through [`record`], the one function that appends to it, so
//! no path forgets the actor, the time or the target.

use serde_json::Value;

use crate::store::{AuditRecord, SharedStore, StoreResult};

/// What an entry is about: the kind of target and its id.
pub struct Target<'a> {
    pub kind: &'static str,
    pub id: &'a str,
}

/// Appends `actor_id` did `action` to `target`, with `detail`; answers the entry.
pub async fn record(
    store: &SharedStore,
    actor_id: &str,
    action: &'static str,
    target: Target<'_>,
    detail: Value,
) -> StoreResult<AuditRecord> {
    let entry = AuditRecord {
        id: uuid::Uuid::now_v7().to_string(),
        at: dovie_actors::now_ms(),
        actor_id: actor_id.to_string(),
        action: action.to_string(),
        target_kind: target.kind.to_string(),
        target_id: target.id.to_string(),
        detail,
    };
    store.append_audit(&entry).await?;
    crate::metrics::audit_entry(action);
    tracing::info!(actor = %actor_id, action, target = %target.id, kind = target.kind, "audit");
    Ok(entry)
}
