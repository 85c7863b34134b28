//! Reminders (AI-5) coming due: every node sweeps the store's due list every
//! `ai.reminder_sweep_ms`; a reminder is fired by the node the cluster places it on (or by any
//! node once it is [`TAKEOVER_MS`] late: its node is gone), and fired means the store's
//! conditional write said so — exactly one firing however many nodes try, none for a deleted
//! reminder. A fired reminder is told to its user over WS (`reminder_due`, on every node) and
//! as a push (queued under the reminder's id: queued twice, sent once). A reminder that came
//! due while no node ran fires at the next start.

use std::sync::Arc;
use std::time::Duration;

use dovie_actors::{Event, Fanout};
use dovie_protocol::error::ErrorBody;
use dovie_protocol::events as ev;
use serde_json::json;

use crate::store::{Reminder, SharedStore};

/// Due reminders read per sweep.
const SWEEP_BATCH: usize = 500;
/// How late a reminder placed on another node may be before this node fires it.
const TAKEOVER_MS: i64 = 1_500;

pub struct Reminders {
    store: SharedStore,
    fanout: Arc<dyn Fanout>,
    pusher: Arc<crate::push::pipeline::Pusher>,
    texts: Arc<crate::i18n::Texts>,
    /// The cluster (which node fires which reminder); `None` on one node.
    cluster: Option<Arc<crate::cluster::Cluster>>,
    sweep: Duration,
}

impl Reminders {
    pub fn new(
        store: SharedStore,
        fanout: Arc<dyn Fanout>,
        pusher: Arc<crate::push::pipeline::Pusher>,
        texts: Arc<crate::i18n::Texts>,
        cluster: Option<Arc<crate::cluster::Cluster>>,
        sweep_ms: u64,
    ) -> Arc<Reminders> {
        Arc::new(Reminders {
            store,
            fanout,
            pusher,
            texts,
            cluster,
            sweep: Duration::from_millis(sweep_ms.max(50)),
        })
    }

    /// Fires every reminder due at `now` that is this node's to fire; answers how many it
    /// fired. One that cannot be fired now (the store busy) is left to the next sweep.
    pub async fn sweep_once(&self, now: i64) -> Result<usize, ErrorBody> {
        let mut fired = 0;
        for r in self.store.due_reminders(now, SWEEP_BATCH).await? {
            let mine = self.cluster.as_ref().is_none_or(|c| c.places_here(&r.id));
            if !mine && now < r.due_at + TAKEOVER_MS {
                continue;
            }
            match self.store.fire_reminder(&r, now).await {
                Ok(true) => {
                    self.tell(&r).await;
                    fired += 1;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(reminder = %r.id, error = %e.message, "cannot fire a reminder yet")
                }
            }
        }
        Ok(fired)
    }

    /// Tells the user: `reminder_due` to their sockets and a push to their devices.
    async fn tell(&self, r: &Reminder) {
        crate::metrics::reminder_fired();
        let payload = json!({ "reminder": r });
        let event = Event::new(ev::REMINDER_DUE, &payload).by(&r.user_id);
        self.fanout
            .user_event(std::slice::from_ref(&r.user_id), Arc::new(event));
        let locale = match self.store.user_by_id(&r.user_id).await {
            Ok(Some(u)) => u.locale,
            _ => self.texts.default_locale().to_string(),
        };
        let title = self.texts.text(&locale, "reminder-title", &[]);
        let data = json!({ "type": ev::REMINDER_DUE, "reminder_id": r.id, "room_id": r.room_id });
        if let Err(e) = self
            .pusher
            .notify_as(
                format!("reminder:{}", r.id),
                &r.user_id,
                title,
                r.text.clone(),
                Some(data),
            )
            .await
        {
            tracing::warn!(reminder = %r.id, error = %e.message, "cannot queue a reminder's push");
        }
    }

    /// Runs the sweeper (reminders missed while no node ran fire at once).
    pub fn spawn_sweeper(self: Arc<Self>) {
        actix_rt::spawn(async move {
            loop {
                if let Err(e) = self.sweep_once(dovie_actors::now_ms()).await {
                    tracing::warn!(error = %e.message, "cannot look for due reminders");
                }
                tokio::time::sleep(self.sweep).await;
            }
        });
    }
}
