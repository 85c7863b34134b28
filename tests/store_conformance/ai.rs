//! What the AI assistants and privacy keep: saved commands (unique per user and name, listed by
//! name, deleted only by their owner), consents (every change kept, oldest first) and message
//! translations (one per message and target, replaced by a newer version's).

use dovie::store::{ConsentRecord, SavedCommand, TranslationRecord};

use super::*;

fn command(id: &str, user: &str, name: &str, text: &str) -> SavedCommand {
    SavedCommand {
        id: id.into(),
        user_id: user.into(),
        name: name.into(),
        text: text.into(),
        created_at: 3,
    }
}

pub async fn saved_commands(s: SharedStore) {
    for u in ["cmd-a", "cmd-b"] {
        s.create_user(user(u)).await.unwrap();
    }
    assert!(s
        .put_command(&command("c2", "cmd-a", "sig", "— Ann"))
        .await
        .unwrap());
    assert!(s
        .put_command(&command("c1", "cmd-a", "addr", "12 Harbour Rd"))
        .await
        .unwrap());
    assert!(
        !s.put_command(&command("c3", "cmd-a", "addr", "other"))
            .await
            .unwrap(),
        "a name is taken once per user"
    );
    assert!(
        s.put_command(&command("c4", "cmd-b", "addr", "Bob's"))
            .await
            .unwrap(),
        "another user's name is theirs"
    );
    let mine = s.commands("cmd-a").await.unwrap();
    let names: Vec<(&str, &str)> = mine
        .iter()
        .map(|c| (c.name.as_str(), c.text.as_str()))
        .collect();
    assert_eq!(
        names,
        [("addr", "12 Harbour Rd"), ("sig", "— Ann")],
        "by name"
    );
    assert_eq!(mine[0], command("c1", "cmd-a", "addr", "12 Harbour Rd"));
    assert_eq!(
        s.command_named("cmd-b", "addr")
            .await
            .unwrap()
            .map(|c| c.text),
        Some("Bob's".to_string())
    );
    assert_eq!(s.command_named("cmd-b", "sig").await.unwrap(), None);

    assert!(
        !s.delete_command("cmd-b", "c1").await.unwrap(),
        "only the owner's"
    );
    assert!(s.delete_command("cmd-a", "c1").await.unwrap());
    assert!(!s.delete_command("cmd-a", "c1").await.unwrap());
    assert_eq!(s.command_named("cmd-a", "addr").await.unwrap(), None);
    assert!(
        s.put_command(&command("c5", "cmd-a", "addr", "new"))
            .await
            .unwrap(),
        "a deleted name is free again"
    );
    assert_eq!(s.commands("cmd-a").await.unwrap().len(), 2);
    assert!(s.commands("cmd-nobody").await.unwrap().is_empty());
}

pub async fn consents(s: SharedStore) {
    s.create_user(user("consent-a")).await.unwrap();
    let r = |kind: &str, granted, at| ConsentRecord {
        kind: kind.into(),
        granted,
        at,
    };
    assert!(s.consents("consent-a").await.unwrap().is_empty());
    s.add_consents("consent-a", &[r("marketing", true, 10), r("ai", true, 10)])
        .await
        .unwrap();
    s.add_consents("consent-a", &[r("ai", false, 20)])
        .await
        .unwrap();
    s.add_consents("consent-a", &[]).await.unwrap();
    let history = s.consents("consent-a").await.unwrap();
    assert_eq!(
        history,
        [
            r("ai", true, 10),
            r("marketing", true, 10),
            r("ai", false, 20)
        ],
        "every change, oldest first"
    );
    assert!(s.consents("consent-nobody").await.unwrap().is_empty());
}

pub async fn translations(s: SharedStore) {
    let t = |version, text: &str| TranslationRecord {
        message_id: "tm-1".into(),
        target: "en".into(),
        version,
        source_language: "ko".into(),
        text: text.into(),
    };
    assert_eq!(s.translation("tm-1", "en").await.unwrap(), None);
    s.put_translation(&t(0, "hello")).await.unwrap();
    assert_eq!(
        s.translation("tm-1", "en").await.unwrap(),
        Some(t(0, "hello"))
    );
    assert_eq!(
        s.translation("tm-1", "ja").await.unwrap(),
        None,
        "per target"
    );
    s.put_translation(&t(5, "hello again")).await.unwrap();
    assert_eq!(
        s.translation("tm-1", "en").await.unwrap(),
        Some(t(5, "hello again")),
        "a newer version replaces"
    );
}
