//! Every CQL statement of the cluster store, prepared once at connect.

use super::*;

/// Every statement, prepared once.
pub(super) struct Stmts {
    pub(super) insert_user: PreparedStatement,
    pub(super) claim_email: PreparedStatement,
    pub(super) user_by_id: PreparedStatement,
    pub(super) set_user_role: PreparedStatement,
    pub(super) user_exists: PreparedStatement,
    pub(super) user_id_by_email: PreparedStatement,
    pub(super) password_of: PreparedStatement,
    pub(super) set_last_seen: PreparedStatement,
    pub(super) insert_session: PreparedStatement,
    pub(super) insert_refresh: PreparedStatement,
    pub(super) refresh_by_hash: PreparedStatement,
    pub(super) session_by_id: PreparedStatement,
    pub(super) use_refresh: PreparedStatement,
    pub(super) set_session_expiry: PreparedStatement,
    pub(super) revoke_session: PreparedStatement,
    pub(super) insert_revoked: PreparedStatement,
    pub(super) revoked_in_day: PreparedStatement,
    pub(super) insert_room: PreparedStatement,
    pub(super) claim_pair: PreparedStatement,
    pub(super) room_of_pair: PreparedStatement,
    pub(super) room_by_id: PreparedStatement,
    pub(super) room_last_seq: PreparedStatement,
    pub(super) room_epoch: PreparedStatement,
    pub(super) claim_epoch: PreparedStatement,
    pub(super) claim_first_epoch: PreparedStatement,
    pub(super) commit_last_seq: PreparedStatement,
    pub(super) rename_room: PreparedStatement,
    pub(super) delete_room: PreparedStatement,
    pub(super) delete_members: PreparedStatement,
    pub(super) delete_bucket: PreparedStatement,
    pub(super) insert_member: PreparedStatement,
    pub(super) members_of: PreparedStatement,
    pub(super) member_marks: PreparedStatement,
    pub(super) delete_member: PreparedStatement,
    pub(super) set_role: PreparedStatement,
    pub(super) set_read: PreparedStatement,
    pub(super) set_delivered: PreparedStatement,
    pub(super) insert_user_room: PreparedStatement,
    pub(super) delete_user_room: PreparedStatement,
    pub(super) rooms_of_user: PreparedStatement,
    pub(super) insert_message: PreparedStatement,
    pub(super) insert_message_id: PreparedStatement,
    pub(super) insert_nonce: PreparedStatement,
    pub(super) nonce_seq: PreparedStatement,
    pub(super) message_at: PreparedStatement,
    pub(super) message_loc: PreparedStatement,
    pub(super) messages_desc: PreparedStatement,
    pub(super) messages_asc: PreparedStatement,
    pub(super) edit_message: PreparedStatement,
    pub(super) tombstone: PreparedStatement,
    pub(super) set_reactions: PreparedStatement,
    pub(super) insert_like: PreparedStatement,
    pub(super) delete_like: PreparedStatement,
    pub(super) delete_likes: PreparedStatement,
    pub(super) likes_of: PreparedStatement,
    pub(super) insert_tag: PreparedStatement,
    pub(super) delete_tag: PreparedStatement,
    pub(super) messages_by_tag: PreparedStatement,
    pub(super) insert_term: PreparedStatement,
    pub(super) term_seqs: PreparedStatement,
    pub(super) delete_terms: PreparedStatement,
    pub(super) delete_message_id: PreparedStatement,
    pub(super) delete_nonces: PreparedStatement,
    pub(super) bucket_keys: PreparedStatement,
    pub(super) roster: PreparedStatement,
    pub(super) create_roster: PreparedStatement,
    pub(super) swap_roster: PreparedStatement,
    pub(super) delete_roster: PreparedStatement,
}

/// Qualifies the table of a statement with the keyspace (no session-wide `USE`: servers warn
/// about it with prepared statements, and it is ambiguous across sessions).
/// A read that sees every applied lightweight transaction (and completes one in progress).
fn serial(mut st: PreparedStatement) -> PreparedStatement {
    st.set_consistency(Consistency::Serial);
    st
}

pub(super) fn qualify(cql: &str, keyspace: &str) -> String {
    if let Some(rest) = cql.strip_prefix("UPDATE ") {
        return format!("UPDATE {keyspace}.{rest}");
    }
    if let Some(rest) = cql.strip_prefix("INSERT INTO ") {
        return format!("INSERT INTO {keyspace}.{rest}");
    }
    cql.replacen(" FROM ", &format!(" FROM {keyspace}."), 1)
}

impl Stmts {
    pub(super) async fn prepare(s: &Session, keyspace: &str) -> Result<Stmts, String> {
        let p = |cql: String| async move {
            let cql = qualify(&cql, keyspace);
            let mut st = s
                .prepare(cql.clone())
                .await
                .map_err(|e| format!("preparing `{cql}`: {e}"))?;
            st.set_consistency(Consistency::Quorum);
            Ok::<_, String>(st)
        };
        Ok(Stmts {
            insert_user: p("INSERT INTO users (id, email, password_hash, display_name, avatar_url, bio, created_at, role) VALUES (?, ?, ?, ?, ?, ?, ?, ?)".into()).await?,
            claim_email: p("INSERT INTO users_by_email (email, user_id) VALUES (?, ?) IF NOT EXISTS".into()).await?,
            user_by_id: p("SELECT id, email, display_name, avatar_url, bio, created_at, role FROM users WHERE id = ?".into()).await?,
            set_user_role: p("UPDATE users SET role = ? WHERE id = ?".into()).await?,
            user_exists: p("SELECT id FROM users WHERE id = ?".into()).await?,
            user_id_by_email: p("SELECT user_id FROM users_by_email WHERE email = ?".into()).await?,
            password_of: p("SELECT password_hash FROM users WHERE id = ?".into()).await?,
            set_last_seen: p("UPDATE users SET last_seen_at = ? WHERE id = ?".into()).await?,
            insert_session: p("INSERT INTO auth_sessions (id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)".into()).await?,
            insert_refresh: p("INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES (?, ?, ?, ?)".into()).await?,
            refresh_by_hash: p("SELECT session_id, expires_at, used_at FROM refresh_tokens WHERE token_hash = ?".into()).await?,
            session_by_id: p("SELECT id, user_id, created_at, expires_at, revoked_at FROM auth_sessions WHERE id = ?".into()).await?,
            use_refresh: p("UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? IF used_at = null".into()).await?,
            set_session_expiry: p("UPDATE auth_sessions SET expires_at = ? WHERE id = ?".into()).await?,
            revoke_session: p("UPDATE auth_sessions SET revoked_at = ? WHERE id = ?".into()).await?,
            insert_revoked: p("INSERT INTO revoked_sessions (day, revoked_at, session_id) VALUES (?, ?, ?)".into()).await?,
            revoked_in_day: p("SELECT session_id FROM revoked_sessions WHERE day = ? AND revoked_at >= ?".into()).await?,
            insert_room: p("INSERT INTO chat_rooms (id, type, name, created_by, created_at, last_seq) VALUES (?, ?, ?, ?, ?, 0)".into()).await?,
            claim_pair: p("INSERT INTO direct_rooms (pair, room_id) VALUES (?, ?) IF NOT EXISTS".into()).await?,
            room_of_pair: p("SELECT room_id FROM direct_rooms WHERE pair = ?".into()).await?,
            room_by_id: p("SELECT id, type, name, created_by, created_at, last_seq FROM chat_rooms WHERE id = ?".into()).await?,
            room_epoch: p("SELECT owner_epoch FROM chat_rooms WHERE id = ?".into()).await?,
            claim_epoch: p("UPDATE chat_rooms SET owner_epoch = ? WHERE id = ? IF owner_epoch = ?".into()).await?,
            claim_first_epoch: p("UPDATE chat_rooms SET owner_epoch = ? WHERE id = ? IF owner_epoch = null".into()).await?,
            room_last_seq: p("SELECT last_seq FROM chat_rooms WHERE id = ?".into()).await?,
            commit_last_seq: p("UPDATE chat_rooms SET last_seq = ? WHERE id = ? IF owner_epoch = ? AND last_seq = ?".into()).await?,
            rename_room: p("UPDATE chat_rooms SET name = ? WHERE id = ?".into()).await?,
            delete_room: p("DELETE FROM chat_rooms WHERE id = ?".into()).await?,
            delete_members: p("DELETE FROM room_members WHERE room_id = ?".into()).await?,
            delete_bucket: p("DELETE FROM messages WHERE room_id = ? AND bucket = ?".into()).await?,
            insert_member: p("INSERT INTO room_members (room_id, user_id, role, joined_at, read_seq, delivered_seq) VALUES (?, ?, ?, ?, ?, ?)".into()).await?,
            members_of: p("SELECT user_id, role, joined_at FROM room_members WHERE room_id = ?".into()).await?,
            member_marks: p("SELECT read_seq, delivered_seq FROM room_members WHERE room_id = ? AND user_id = ?".into()).await?,
            delete_member: p("DELETE FROM room_members WHERE room_id = ? AND user_id = ?".into()).await?,
            set_role: p("UPDATE room_members SET role = ? WHERE room_id = ? AND user_id = ?".into()).await?,
            set_read: p("UPDATE room_members SET read_seq = ?, delivered_seq = ? WHERE room_id = ? AND user_id = ?".into()).await?,
            set_delivered: p("UPDATE room_members SET delivered_seq = ? WHERE room_id = ? AND user_id = ?".into()).await?,
            insert_user_room: p("INSERT INTO user_rooms (user_id, room_id) VALUES (?, ?)".into()).await?,
            delete_user_room: p("DELETE FROM user_rooms WHERE user_id = ? AND room_id = ?".into()).await?,
            rooms_of_user: p("SELECT room_id FROM user_rooms WHERE user_id = ?".into()).await?,
            insert_message: p(format!("INSERT INTO messages (bucket, epoch, {MSG_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")).await?,
            insert_message_id: p("INSERT INTO messages_by_id (id, room_id, seq, epoch) VALUES (?, ?, ?, ?)".into()).await?,
            insert_nonce: p("INSERT INTO message_nonces (room_id, sender_id, nonce, epoch, seq) VALUES (?, ?, ?, ?, ?)".into()).await?,
            nonce_seq: p("SELECT seq FROM message_nonces WHERE room_id = ? AND sender_id = ? AND nonce = ?".into()).await?,
            message_at: p(format!("SELECT {MSG_COLS} FROM messages WHERE room_id = ? AND bucket = ? AND seq = ? ORDER BY seq DESC LIMIT 1")).await?,
            message_loc: p("SELECT room_id, seq, epoch FROM messages_by_id WHERE id = ?".into()).await?,
            messages_desc: p(format!("SELECT {MSG_COLS} FROM messages WHERE room_id = ? AND bucket = ? AND seq > ? AND seq < ? ORDER BY seq DESC LIMIT ?")).await?,
            messages_asc: p(format!("SELECT {MSG_COLS} FROM messages WHERE room_id = ? AND bucket = ? AND seq > ? AND seq < ? ORDER BY seq ASC LIMIT ?")).await?,
            edit_message: p("UPDATE messages SET content = ?, hashtags = ?, edited_at = ? WHERE room_id = ? AND bucket = ? AND seq = ? AND epoch = ?".into()).await?,
            tombstone: p("UPDATE messages SET content = '', hashtags = [], reactions = '{}', attachments = '[]', deleted = true, edited_at = ? WHERE room_id = ? AND bucket = ? AND seq = ? AND epoch = ?".into()).await?,
            set_reactions: p("UPDATE messages SET reactions = ? WHERE room_id = ? AND bucket = ? AND seq = ? AND epoch = ?".into()).await?,
            insert_like: p("INSERT INTO message_likes (message_id, emoji, user_id, created_at) VALUES (?, ?, ?, ?)".into()).await?,
            delete_like: p("DELETE FROM message_likes WHERE message_id = ? AND emoji = ? AND user_id = ?".into()).await?,
            delete_likes: p("DELETE FROM message_likes WHERE message_id = ?".into()).await?,
            likes_of: p("SELECT emoji, user_id, created_at FROM message_likes WHERE message_id = ?".into()).await?,
            insert_tag: p("INSERT INTO message_hashtags (tag, created_at, message_id, room_id) VALUES (?, ?, ?, ?)".into()).await?,
            delete_tag: p("DELETE FROM message_hashtags WHERE tag = ? AND created_at = ? AND message_id = ?".into()).await?,
            messages_by_tag: p("SELECT message_id, room_id FROM message_hashtags WHERE tag = ?".into()).await?,
            insert_term: p("INSERT INTO search_terms (room_id, bucket, term, seq) VALUES (?, ?, ?, ?)".into()).await?,
            term_seqs: p("SELECT seq FROM search_terms WHERE room_id = ? AND bucket = ? AND term = ?".into()).await?,
            delete_terms: p("DELETE FROM search_terms WHERE room_id = ? AND bucket = ?".into()).await?,
            delete_message_id: p("DELETE FROM messages_by_id WHERE id = ?".into()).await?,
            delete_nonces: p("DELETE FROM message_nonces WHERE room_id = ? AND sender_id = ? AND nonce = ?".into()).await?,
            bucket_keys: p("SELECT id, sender_id, nonce, hashtags, created_at FROM messages WHERE room_id = ? AND bucket = ?".into()).await?,
            roster: serial(p("SELECT members FROM room_rosters WHERE room_id = ?".into()).await?),
            create_roster: p("INSERT INTO room_rosters (room_id, members) VALUES (?, ?) IF NOT EXISTS".into()).await?,
            swap_roster: p("UPDATE room_rosters SET members = ? WHERE room_id = ? IF members = ?".into()).await?,
            delete_roster: p("DELETE FROM room_rosters WHERE room_id = ?".into()).await?,
        })
    }
}
