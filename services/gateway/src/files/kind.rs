//! What a file is, decided from its first bytes (magic numbers), not from the name the client
//! gave: a PNG named `notes.txt` is a PNG. Text has no magic number, so valid UTF-8 is text and
//! the name's extension only picks among text types.

/// A recognised file type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileKind {
    /// Canonical extension, as `ALLOWED_FILE_TYPES` names it.
    pub extension: &'static str,
    pub mime: &'static str,
    /// Worth compressing (text); already-compressed formats are stored as they are.
    pub compressible: bool,
}

const fn kind(extension: &'static str, mime: &'static str, compressible: bool) -> FileKind {
    FileKind {
        extension,
        mime,
        compressible,
    }
}

/// How many leading bytes [`sniff`] wants (fewer when the file is shorter).
pub const SNIFF_LEN: usize = 4096;

pub const OCTET_STREAM: FileKind = kind("bin", "application/octet-stream", false);
const PLAIN: FileKind = kind("txt", "text/plain", true);

/// Text types chosen by extension once the content is known to be text.
const TEXT: [FileKind; 10] = [
    PLAIN,
    kind("md", "text/markdown", true),
    kind("csv", "text/csv", true),
    kind("tsv", "text/tab-separated-values", true),
    kind("json", "application/json", true),
    kind("jsonl", "application/x-ndjson", true),
    kind("xml", "application/xml", true),
    kind("html", "text/html", true),
    kind("yaml", "application/yaml", true),
    kind("log", "text/plain", true),
];

/// Zip containers recognised by extension once the content is known to be a zip.
const OFFICE: [FileKind; 3] = [
    kind(
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        false,
    ),
    kind(
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        false,
    ),
    kind(
        "pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        false,
    ),
];

/// Types with a magic number, by their first bytes.
const MAGIC: [(&[u8], FileKind); 7] = [
    (b"%PDF-", kind("pdf", "application/pdf", false)),
    (b"\x89PNG\r\n\x1a\n", kind("png", "image/png", false)),
    (b"\xff\xd8\xff", kind("jpg", "image/jpeg", false)),
    (b"GIF87a", kind("gif", "image/gif", false)),
    (b"GIF89a", kind("gif", "image/gif", false)),
    (b"\x1f\x8b", kind("gz", "application/gzip", false)),
    (b"\x28\xb5\x2f\xfd", kind("zst", "application/zstd", false)),
];
const WEBP: FileKind = kind("webp", "image/webp", false);
const ZIP: FileKind = kind("zip", "application/zip", false);

/// Every type this module can recognise.
fn all_kinds() -> impl Iterator<Item = FileKind> {
    TEXT.into_iter()
        .chain(OFFICE)
        .chain(MAGIC.map(|(_, k)| k))
        .chain([WEBP, ZIP, OCTET_STREAM])
}

/// The type an extension names (`jpeg` is `jpg`).
pub fn by_extension(ext: &str) -> Option<FileKind> {
    let ext = ext.trim().trim_start_matches('.').to_ascii_lowercase();
    let ext = if ext == "jpeg" { "jpg".to_owned() } else { ext };
    all_kinds().find(|k| k.extension == ext)
}

fn extension(name: &str) -> Option<String> {
    let (_, ext) = name.rsplit_once('.')?;
    Some(ext.to_ascii_lowercase())
}

/// The type of a file whose content starts with `head` (at most [`SNIFF_LEN`] bytes; all of it
/// when shorter), named `name`.
pub fn sniff(head: &[u8], name: &str) -> FileKind {
    let ext = extension(name);
    for (prefix, found) in MAGIC {
        if head.starts_with(prefix) {
            return found;
        }
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return WEBP;
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return OFFICE
            .iter()
            .find(|k| ext.as_deref() == Some(k.extension))
            .copied()
            .unwrap_or(ZIP);
    }
    if is_text(head) {
        let ext = match ext.as_deref() {
            Some("ndjson") => Some("jsonl"),
            Some("htm") => Some("html"),
            Some("yml") => Some("yaml"),
            Some("markdown") => Some("md"),
            other => other,
        };
        return TEXT
            .iter()
            .find(|k| ext == Some(k.extension))
            .copied()
            .unwrap_or(PLAIN);
    }
    OCTET_STREAM
}

/// UTF-8 without NUL bytes; a character cut by the end of `head` is fine.
fn is_text(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        // Up to 3 bytes of a character cut off by the sniffing window.
        Err(e) => e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
    }
}

/// `ALLOWED_FILE_TYPES`: extensions and/or MIME types, or `*` for anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedTypes(Vec<String>);

/// What is allowed when `ALLOWED_FILE_TYPES` is not set.
pub const DEFAULT_ALLOWED_TYPES: &str =
    "txt,md,csv,tsv,json,jsonl,xml,html,yaml,log,pdf,png,jpg,gif,webp,zip,gz,docx,xlsx,pptx";

impl AllowedTypes {
    /// Parse the comma-separated setting; an entry that names no recognisable type is refused.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let entries: Vec<String> = raw
            .split(',')
            .map(|s| s.trim().trim_start_matches('.').to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .map(|s| if s == "jpeg" { "jpg".to_owned() } else { s })
            .collect();
        if entries.is_empty() {
            return Err("ALLOWED_FILE_TYPES lists no type".into());
        }
        for entry in &entries {
            if entry != "*" && !entry.contains('/') && by_extension(entry).is_none() {
                return Err(format!(
                    "ALLOWED_FILE_TYPES: {entry:?} is not a type the gateway recognises ({})",
                    all_kinds()
                        .map(|k| k.extension)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        Ok(Self(entries))
    }

    /// Whether content of type `kind` may be stored.
    pub fn allows(&self, kind: &FileKind) -> bool {
        self.0
            .iter()
            .any(|e| e == "*" || e == kind.extension || e == kind.mime)
    }

    /// Whether a declared MIME type (a presigned upload's `content_type`) could be allowed.
    pub fn allows_mime(&self, mime: &str) -> bool {
        let mime = mime.trim().to_ascii_lowercase();
        self.0.iter().any(|e| e == "*" || *e == mime)
            || all_kinds().any(|k| k.mime == mime && self.allows(&k))
    }

    /// The entries, for `/api/v1/upload/health`.
    pub fn entries(&self) -> &[String] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_decides_not_the_name() {
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\nrest", "notes.txt").extension,
            "png"
        );
        assert_eq!(sniff(b"%PDF-1.7", "x.csv").mime, "application/pdf");
        assert_eq!(sniff(b"a,b\n1,2\n", "data.csv").mime, "text/csv");
        assert_eq!(sniff(b"hello", "run.exe").extension, "txt");
        assert_eq!(sniff(b"\x00\x01\x02binary", "data.txt"), OCTET_STREAM);
        assert_eq!(sniff(b"PK\x03\x04....", "report.docx").extension, "docx");
        assert_eq!(sniff(b"PK\x03\x04....", "report.txt").extension, "zip");
        // A character cut by the sniffing window is still text.
        assert_eq!(
            sniff("héllo".as_bytes().split_at(2).0, "a.txt").extension,
            "txt"
        );
    }

    #[test]
    fn allowed_types_by_extension_or_mime() {
        let allowed = AllowedTypes::parse("txt, .JSONL, image/png").expect("valid");
        assert!(allowed.allows(&sniff(b"hi", "a.txt")));
        assert!(allowed.allows(&sniff(b"{}\n", "a.jsonl")));
        assert!(allowed.allows(&sniff(b"\x89PNG\r\n\x1a\n", "a.png")));
        assert!(!allowed.allows(&sniff(b"%PDF-", "a.txt")));
        assert!(allowed.allows_mime("image/png"));
        assert!(allowed.allows_mime("text/plain"));
        assert!(!allowed.allows_mime("application/pdf"));
        assert!(AllowedTypes::parse("exe").is_err());
        assert!(AllowedTypes::parse(" , ").is_err());
    }
}
