//! Files in messages: the server's side of the actors' `MessageExtras` port (which also hands
//! location's parts — suggestions and `location_update` — to `crate::geo`). A send's
//! attachments are checked (the sender's own files, not deleted, the sender a member of the
//! room) and shared into the room before the send reaches it (a voice message's audio queued for
//! automatic transcription when that is on); stored messages with links get
//! their link previews; messages are shown with fresh signed links; and when a file changes
//! after it was sent (previews ready, or deleted) the messages carrying it are amended.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use dovie_actors::ports::MessageExtras;
use dovie_actors::room::{Amend, Responder};
use dovie_actors::RoomDirectory;
use dovie_protocol::error::{ErrorBody, ErrorCode};
use dovie_protocol::model::Message;
use serde_json::Value;

use super::links::{urls_in, LinkPreviewer};
use super::{object_of, Files};
use crate::store::{FileKind, FileRecord, SharedStore};

/// How often a file's change is applied to a message not stored yet, and the pause between.
const AMEND_TRIES: u32 = 5;
const AMEND_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

pub struct ServerExtras {
    files: Arc<Files>,
    geo: Arc<crate::geo::Geo>,
    store: SharedStore,
    links: Arc<LinkPreviewer>,
    directory: OnceLock<Arc<RoomDirectory>>,
    pusher: OnceLock<Arc<crate::push::pipeline::Pusher>>,
    transcriber: OnceLock<Arc<crate::ai::transcriber::Transcriber>>,
    /// The rooms whose messages this node stored in the last hour (room monitoring).
    pub activity: crate::admin::activity::ActivityBoard,
}

impl ServerExtras {
    pub fn new(
        files: Arc<Files>,
        store: SharedStore,
        links: Arc<LinkPreviewer>,
        geo: Arc<crate::geo::Geo>,
    ) -> Arc<Self> {
        Arc::new(ServerExtras {
            files,
            geo,
            store,
            links,
            directory: OnceLock::new(),
            pusher: OnceLock::new(),
            transcriber: OnceLock::new(),
            activity: Default::default(),
        })
    }

    /// The room directory (made after the ports that hold this).
    pub fn set_directory(&self, d: Arc<RoomDirectory>) {
        let _ = self.directory.set(d);
    }

    /// The push pipeline's entry (made after the ports that hold this).
    pub fn set_pusher(&self, p: Arc<crate::push::pipeline::Pusher>) {
        let _ = self.pusher.set(p);
    }

    /// Automatic transcription (made after the ports that hold this).
    pub fn set_transcriber(&self, t: Arc<crate::ai::transcriber::Transcriber>) {
        let _ = self.transcriber.set(t);
    }

    /// Amends every message that carries `f` with its object as it is now.
    pub fn refresh(&self, f: &FileRecord) {
        let Some(directory) = self.directory.get().cloned() else {
            return;
        };
        let (store, f) = (self.store.clone(), f.clone());
        tokio::spawn(async move {
            let shares = match store.file_shares(&f.id).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(file = %f.id, error = %e.message, "cannot list a file's shares");
                    return;
                }
            };
            let object = object_of(&f);
            for (room, message) in shares.into_iter().filter(|(_, m)| !m.is_empty()) {
                // The file is shared before its message is stored: a change made in between
                // finds no message yet, and is made again once it is there.
                for attempt in 1..=AMEND_TRIES {
                    let (reply, rx) = Responder::channel();
                    directory.room(&room).do_send(Amend {
                        message_id: message.clone(),
                        attachment: Some(object.clone()),
                        link_previews: None,
                        reply,
                    });
                    match rx.await {
                        Ok(Err(e)) if e.code == ErrorCode::NotFound && attempt < AMEND_TRIES => {
                            tokio::time::sleep(AMEND_RETRY).await;
                        }
                        _ => break,
                    }
                }
            }
        });
    }
}

#[async_trait]
impl MessageExtras for ServerExtras {
    async fn expand_command(
        &self,
        user_id: &str,
        content: &str,
    ) -> Result<Option<String>, ErrorBody> {
        let Some(name) = crate::ai::commands::called(content) else {
            return Ok(None);
        };
        Ok(self
            .store
            .command_named(user_id, name)
            .await?
            .map(|c| c.text))
    }

    async fn attach(
        &self,
        sender_id: &str,
        room_id: &str,
        message_id: &str,
        file_ids: &[String],
        hashtags: &[String],
    ) -> Result<Vec<Value>, ErrorBody> {
        if file_ids.len() > dovie_protocol::rules::MAX_ATTACHMENTS {
            return Err(ErrorBody::new(
                ErrorCode::ValidationFailed,
                format!(
                    "at most {} attachments",
                    dovie_protocol::rules::MAX_ATTACHMENTS
                ),
            ));
        }
        let room = self
            .store
            .get_room(room_id)
            .await?
            .ok_or_else(|| ErrorBody::new(ErrorCode::NotFound, "no such room"))?;
        if !room.member_ids.iter().any(|m| m == sender_id) {
            return Err(ErrorBody::new(
                ErrorCode::Forbidden,
                "you are not a member of this room",
            ));
        }
        let files = super::own_files(&self.store, sender_id, file_ids).await?;
        // A voice message (its first attachment audio): transcribed by itself when configured,
        // queued before the message is sent.
        if let (Some(t), Some(first)) = (self.transcriber.get(), files.first()) {
            if first.kind == FileKind::Audio {
                t.queue(first, sender_id).await?;
            }
        }
        let mut objects = Vec::with_capacity(files.len());
        for mut f in files {
            self.store.share_file(&f.id, room_id, message_id).await?;
            let new: Vec<String> = hashtags
                .iter()
                .filter(|t| !f.hashtags.contains(t))
                .take(super::MAX_FILE_HASHTAGS.saturating_sub(f.hashtags.len()))
                .cloned()
                .collect();
            if !new.is_empty() {
                self.store.add_file_hashtags(&f.id, &new).await?;
                f.hashtags.extend(new);
            }
            objects.push(object_of(&f));
        }
        Ok(objects)
    }

    fn prepare(&self, draft: &mut dovie_actors::ports::Draft) {
        self.geo.prepare(draft);
    }

    async fn feature_command(
        &self,
        user_id: &str,
        command: dovie_protocol::commands::Command,
    ) -> Result<Value, ErrorBody> {
        match command {
            dovie_protocol::commands::Command::LocationUpdate(c) => {
                self.geo.move_share(user_id, c).await
            }
            other => Err(ErrorBody::new(
                ErrorCode::BadRequest,
                format!("`{}` is not a feature command", other.name()),
            )),
        }
    }

    fn read(&self, user_id: &str, _room_id: &str) {
        if let Some(p) = self.pusher.get() {
            p.read(user_id);
        }
    }

    fn stored(&self, m: &Message, members: &[String]) {
        self.activity.message_stored(&m.room_id, m.created_at);
        if let Some(p) = self.pusher.get() {
            p.message_stored(m, members);
        }
        if m.suggest_location {
            let (geo, m) = (self.geo.clone(), m.clone());
            tokio::spawn(async move { geo.suggest(&m).await });
        }
        let urls = urls_in(&m.content);
        if urls.is_empty() {
            return;
        }
        let Some(directory) = self.directory.get().cloned() else {
            return;
        };
        let (links, room_id, message_id) = (self.links.clone(), m.room_id.clone(), m.id.clone());
        tokio::spawn(async move {
            let mut previews = Vec::new();
            for url in urls {
                if let Some(p) = links.preview(&url).await {
                    previews.push(p);
                }
            }
            if previews.is_empty() {
                return;
            }
            let (reply, rx) = Responder::channel();
            directory.room(&room_id).do_send(Amend {
                message_id,
                attachment: None,
                link_previews: Some(previews),
                reply,
            });
            let _ = rx.await;
        });
    }

    fn present(&self, message: &mut Message) {
        for a in message.attachments.iter_mut() {
            self.files.sign(a);
        }
    }
}
