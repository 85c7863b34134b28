//! Transcription (AI-2): which files a transcription model takes, the name a file is sent
//! under (a neutral one whose extension tells the format: the user's file name never leaves),
//! and the language the model heard, as an ISO 639-1 code.

/// The largest file sent for transcription (the Whisper API's limit).
pub const MAX_BYTES: u64 = 25 * 1024 * 1024;

/// The name a file of `content_type` is sent under, if the model takes that format.
pub fn upload_name(content_type: &str) -> Option<&'static str> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Some(match essence.as_str() {
        "audio/mpeg" | "audio/mp3" => "audio.mp3",
        "audio/wav" | "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => "audio.wav",
        "audio/ogg" | "audio/opus" | "application/ogg" => "audio.ogg",
        "audio/mp4" | "audio/m4a" | "audio/x-m4a" | "audio/aac" => "audio.m4a",
        "audio/webm" => "audio.webm",
        "audio/flac" | "audio/x-flac" => "audio.flac",
        "video/mp4" => "video.mp4",
        "video/webm" => "video.webm",
        _ => return None,
    })
}

/// Languages as transcription models name them (Whisper: English names) and their codes.
const HEARD: &[(&str, &str)] = &[
    ("korean", "ko"),
    ("english", "en"),
    ("japanese", "ja"),
    ("chinese", "zh"),
    ("spanish", "es"),
    ("french", "fr"),
    ("german", "de"),
    ("italian", "it"),
    ("portuguese", "pt"),
    ("russian", "ru"),
    ("arabic", "ar"),
    ("hindi", "hi"),
    ("vietnamese", "vi"),
    ("thai", "th"),
    ("indonesian", "id"),
    ("turkish", "tr"),
    ("dutch", "nl"),
    ("polish", "pl"),
    ("ukrainian", "uk"),
    ("swedish", "sv"),
];

/// The ISO 639-1 code of the language a model says it heard (a name or already a code); none
/// for one this does not know.
pub fn iso_of_heard(heard: Option<&str>) -> Option<&'static str> {
    let heard = heard?.trim().to_ascii_lowercase();
    HEARD
        .iter()
        .find(|(name, code)| *name == heard || *code == heard)
        .map(|(_, code)| *code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_model_takes_get_a_neutral_name() {
        assert_eq!(upload_name("audio/ogg"), Some("audio.ogg"));
        assert_eq!(upload_name("Audio/MPEG; charset=binary"), Some("audio.mp3"));
        assert_eq!(upload_name("audio/x-wav"), Some("audio.wav"));
        assert_eq!(upload_name("video/mp4"), Some("video.mp4"));
        assert_eq!(upload_name("video/quicktime"), None);
        assert_eq!(upload_name("image/png"), None);
    }

    #[test]
    fn heard_languages_become_codes() {
        assert_eq!(iso_of_heard(Some("korean")), Some("ko"));
        assert_eq!(iso_of_heard(Some("English")), Some("en"));
        assert_eq!(iso_of_heard(Some("ja")), Some("ja"));
        assert_eq!(iso_of_heard(Some("klingon")), None);
        assert_eq!(iso_of_heard(None), None);
    }
}
