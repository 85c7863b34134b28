//! What the AI assistants keep in the cluster store: saved commands (`commands`, a partition
//! per user, each name claimed with an LWT; every write of the table is one, so Paxos and plain
//! writes never mix on a row) and translations of messages (`translations`, one per message and
//! target). The consents' statements live here too (`privacy.rs` uses them).

use super::*;

pub(super) struct AiStmts {
    claim_command: PreparedStatement,
    commands_of: PreparedStatement,
    command_named: PreparedStatement,
    delete_command: PreparedStatement,
    pub(super) insert_consent: PreparedStatement,
    pub(super) consents_of: PreparedStatement,
    translation: PreparedStatement,
    put_translation: PreparedStatement,
}

impl AiStmts {
    pub(super) async fn prepare(s: &Session, keyspace: &str) -> Result<AiStmts, String> {
        let p = |cql: &str| prepare_statement(s, keyspace, cql.to_string());
        Ok(AiStmts {
            claim_command: p("INSERT INTO commands (user_id, name, id, text, created_at) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS").await?,
            commands_of: p("SELECT id, user_id, name, text, created_at FROM commands WHERE user_id = ?").await?,
            command_named: p("SELECT id, user_id, name, text, created_at FROM commands WHERE user_id = ? AND name = ?").await?,
            delete_command: p("DELETE FROM commands WHERE user_id = ? AND name = ? IF id = ?").await?,
            insert_consent: p("INSERT INTO consents (user_id, at, kind, granted) VALUES (?, ?, ?, ?)").await?,
            consents_of: p("SELECT kind, granted, at FROM consents WHERE user_id = ?").await?,
            translation: p("SELECT version, source_language, text FROM translations WHERE message_id = ? AND target = ?").await?,
            put_translation: p("INSERT INTO translations (message_id, target, version, source_language, text) VALUES (?, ?, ?, ?, ?)").await?,
        })
    }
}

type CommandRow = (String, String, String, String, i64);

fn command(r: CommandRow) -> SavedCommand {
    SavedCommand {
        id: r.0,
        user_id: r.1,
        name: r.2,
        text: r.3,
        created_at: r.4,
    }
}

#[async_trait]
impl AiStore for ScyllaStore {
    async fn put_command(&self, c: &SavedCommand) -> StoreResult<bool> {
        self.lwt(
            &self.st.ai.claim_command,
            (&c.user_id, &c.name, &c.id, &c.text, c.created_at),
        )
        .await
    }

    async fn commands(&self, user_id: &str) -> StoreResult<Vec<SavedCommand>> {
        // Clustered by name: already in name order.
        let rows = self
            .rows::<CommandRow>(&self.st.ai.commands_of, (user_id,))
            .await?;
        Ok(rows.into_iter().map(command).collect())
    }

    async fn command_named(&self, user_id: &str, name: &str) -> StoreResult<Option<SavedCommand>> {
        Ok(self
            .row::<CommandRow>(&self.st.ai.command_named, (user_id, name))
            .await?
            .map(command))
    }

    async fn delete_command(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        let Some(c) = self
            .commands(user_id)
            .await?
            .into_iter()
            .find(|c| c.id == id)
        else {
            return Ok(false);
        };
        self.lwt(&self.st.ai.delete_command, (user_id, &c.name, id))
            .await
    }

    async fn translation(
        &self,
        message_id: &str,
        target: &str,
    ) -> StoreResult<Option<TranslationRecord>> {
        Ok(self
            .row::<(i64, String, String)>(&self.st.ai.translation, (message_id, target))
            .await?
            .map(|(version, source_language, text)| TranslationRecord {
                message_id: message_id.to_string(),
                target: target.to_string(),
                version,
                source_language,
                text,
            }))
    }

    async fn put_translation(&self, t: &TranslationRecord) -> StoreResult<()> {
        // Two nodes translating one version at once write the same row: either may win.
        self.write(
            &self.st.ai.put_translation,
            (
                &t.message_id,
                &t.target,
                t.version,
                &t.source_language,
                &t.text,
            ),
        )
        .await
    }
}
