//! What the AI assistants and privacy keep: saved commands (unique per user and name, listed by
//! name, deleted only by their owner), consents (every change kept, oldest first) and message
//! translations (one per message and target, replaced by a newer version's), reminders and the
//! automatic transcription queue (each fired or taken by exactly one of many).

use dovie::store::{ConsentRecord, Reminder, SavedCommand, TranscriptionJob, TranslationRecord};

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

fn reminder(id: &str, user: &str, due_at: i64) -> Reminder {
    Reminder {
        id: id.into(),
        user_id: user.into(),
        text: format!("text of {id}"),
        due_at,
        room_id: (id == "r1").then(|| "room-1".to_string()),
        message_id: (id == "r1").then(|| "msg-1".to_string()),
        created_at: 1,
    }
}

/// Reminders: listed soonest first, due by time, fired exactly once however many try at once,
/// never fired once deleted, deleted only by their owner.
pub async fn reminders(s: SharedStore) {
    for u in ["rem-a", "rem-b"] {
        s.create_user(user(u)).await.unwrap();
    }
    for r in [
        reminder("r2", "rem-a", 2_000),
        reminder("r1", "rem-a", 1_000),
        reminder("r3", "rem-a", 9_000),
        reminder("r4", "rem-b", 1_500),
    ] {
        s.add_reminder(&r).await.unwrap();
    }
    let mine = s.reminders_of("rem-a").await.unwrap();
    assert_eq!(
        mine.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["r1", "r2", "r3"]
    );
    assert_eq!(mine[0], reminder("r1", "rem-a", 1_000));
    let due: Vec<String> = s
        .due_reminders(2_000, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(due, ["r1", "r4", "r2"]);
    assert_eq!(s.due_reminders(2_000, 1).await.unwrap().len(), 1);

    // Many sweepers fire r1 at once: exactly one succeeds.
    let r1 = reminder("r1", "rem-a", 1_000);
    let tries = futures_util::future::join_all((0..6).map(|i| {
        let (s, r1) = (s.clone(), r1.clone());
        async move { s.fire_reminder(&r1, 2_000 + i).await.unwrap() }
    }))
    .await;
    assert_eq!(tries.iter().filter(|t| **t).count(), 1, "{tries:?}");
    assert!(!s.fire_reminder(&r1, 3_000).await.unwrap());
    assert_eq!(
        s.reminders_of("rem-a")
            .await
            .unwrap()
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        ["r2", "r3"]
    );
    assert!(!s
        .due_reminders(2_000, 100)
        .await
        .unwrap()
        .iter()
        .any(|r| r.id == "r1"));

    // Deleted only by the owner; a deleted reminder never fires.
    assert!(!s.delete_reminder("rem-b", "r2").await.unwrap());
    assert!(s.delete_reminder("rem-a", "r2").await.unwrap());
    assert!(!s.delete_reminder("rem-a", "r2").await.unwrap());
    assert!(!s
        .fire_reminder(&reminder("r2", "rem-a", 2_000), 5_000)
        .await
        .unwrap());
    assert_eq!(
        s.due_reminders(10_000, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        ["r4", "r3"]
    );
    assert!(s.reminders_of("nobody").await.unwrap().is_empty());
}

fn job(file: &str, due_at: i64) -> TranscriptionJob {
    TranscriptionJob {
        file_id: file.into(),
        user_id: "tj-user".into(),
        attempts: 0,
        due_at,
        created_at: 100,
    }
}

/// The automatic transcription queue: queued once, due in order, taken by exactly one of many,
/// put off, finished.
pub async fn transcription_jobs(s: SharedStore) {
    for j in [job("f2", 2_000), job("f1", 1_000), job("f3", 9_000)] {
        assert!(s.queue_transcription(&j).await.unwrap());
    }
    // Queued again (the file attached twice): nothing changes.
    assert!(!s.queue_transcription(&job("f1", 1_500)).await.unwrap());
    let due = s.due_transcriptions(2_000, 100).await.unwrap();
    assert_eq!(due, [job("f1", 1_000), job("f2", 2_000)]);
    assert_eq!(s.due_transcriptions(2_000, 1).await.unwrap().len(), 1);

    // Many nodes take f1 with the same view: exactly one does.
    let f1 = job("f1", 1_000);
    let tries = futures_util::future::join_all((0..6).map(|_| {
        let (s, f1) = (s.clone(), f1.clone());
        async move { s.move_transcription(&f1, 1, 60_000).await.unwrap() }
    }))
    .await;
    assert_eq!(tries.iter().filter(|t| **t).count(), 1, "{tries:?}");
    let taken = TranscriptionJob {
        attempts: 1,
        due_at: 60_000,
        ..f1.clone()
    };
    // Taken: not due until its lease ends, then due with its attempt counted.
    assert_eq!(
        s.due_transcriptions(2_000, 100).await.unwrap(),
        [job("f2", 2_000)]
    );
    assert_eq!(
        s.due_transcriptions(60_000, 100).await.unwrap(),
        [job("f2", 2_000), job("f3", 9_000), taken.clone()]
    );
    // A stale view moves nothing.
    assert!(!s.move_transcription(&f1, 1, 70_000).await.unwrap());
    // Put off after a failure (the holder's view).
    assert!(s.move_transcription(&taken, 1, 5_000).await.unwrap());
    let put_off = TranscriptionJob {
        due_at: 5_000,
        ..taken
    };
    assert_eq!(
        s.due_transcriptions(9_000, 100).await.unwrap(),
        [job("f2", 2_000), put_off.clone(), job("f3", 9_000)]
    );

    // Finished: gone, and queueable again.
    s.finish_transcription(&put_off).await.unwrap();
    s.finish_transcription(&job("f2", 2_000)).await.unwrap();
    assert_eq!(
        s.due_transcriptions(100_000, 100).await.unwrap(),
        [job("f3", 9_000)]
    );
    assert!(!s.move_transcription(&put_off, 2, 6_000).await.unwrap());
    assert!(s.queue_transcription(&job("f1", 10_000)).await.unwrap());
    assert_eq!(
        s.due_transcriptions(100_000, 100).await.unwrap(),
        [job("f3", 9_000), job("f1", 10_000)]
    );
}
