//! File storage: direct uploads streamed to a real S3-compatible server that checks signatures
//! (`s3s-fs`, started by each test on a free port) or to the embedded folder, type and size
//! limits, compression round trips, ranges, listing, deletion, other organisations kept out,
//! presigned URLs (S3 SigV4 and the gateway's own) with expiry and tampering, scanning a stored
//! file, and an S3 outage with sync-back after a gateway restart.

use std::time::Duration;

use cg_gateway::config::GatewaySettings;
use cg_storage::StorageConfig;
use cg_storage::testing::{S3sServer, TestStorage};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{Auth, Gateway, access, settings, spawn, spawn_stoppable};

/// Text that compresses well but is not one repeated byte.
fn text(lines: usize) -> Vec<u8> {
    let words = [
        "guard", "prompt", "model", "answer", "token", "bias", "trust", "context",
    ];
    let mut out = String::new();
    for i in 0..lines {
        out.push_str(&format!(
            "{i}: the {} checks the {} before the {}\n",
            words[i % 8],
            words[(i / 8) % 8],
            words[(i * 7) % 8]
        ));
    }
    out.into_bytes()
}

/// A PNG signature followed by `len` incompressible bytes.
fn png(len: usize) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    out.extend((0..len).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 24) as u8
    }));
    out
}

fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

const BOUNDARY: &str = "cg-test-boundary-7d3f9a";

/// A multipart form with an ignored field and the file.
fn form(filename: &str, data: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nignored\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

struct Client<'a> {
    gw: &'a Gateway,
    /// The credential header: a bearer token or an API key.
    credential: (&'static str, String),
}

impl Client<'_> {
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.gw
            .app
            .client
            .request(method, format!("{}{path}", self.gw.app.address))
            .header(self.credential.0, &self.credential.1)
    }

    async fn upload(&self, filename: &str, data: &[u8]) -> (u16, Value) {
        let req = self
            .request(Method::POST, "/api/v1/upload/direct")
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(form(filename, data));
        self.gw.send(req).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.gw.send(self.request(Method::GET, path)).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.gw
            .send(self.request(Method::POST, path).json(&body))
            .await
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        self.gw.send(self.request(Method::DELETE, path)).await
    }

    /// Status, headers and bytes of a download.
    async fn download(
        &self,
        id: &str,
        range: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let mut req = self.request(Method::GET, &format!("/api/v1/upload/download/{id}"));
        if let Some(r) = range {
            req = req.header("range", r);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.bytes().await.unwrap().to_vec())
    }
}

async fn client<'a>(gw: &'a Gateway, email: &str) -> Client<'a> {
    let tokens = gw.sign_up(email).await;
    Client {
        gw,
        credential: ("authorization", format!("Bearer {}", access(&tokens))),
    }
}

/// A client using a new API key of `owner`'s organisation with `role` and `scopes` (the default
/// scopes when `None`).
async fn key_client<'a>(owner: &Client<'a>, role: &str, scopes: Option<Value>) -> Client<'a> {
    let mut body = json!({"name": format!("{role} key"), "role": role});
    if let Some(scopes) = scopes {
        body["scopes"] = scopes;
    }
    let (status, key) = owner.post("/api/v1/api-keys", body).await;
    assert_eq!(status, 201, "{key}");
    Client {
        gw: owner.gw,
        credential: ("x-api-key", key["key"].as_str().unwrap().to_owned()),
    }
}

/// Uploading and deleting hand files to the guards: a member's `process` key may, as members
/// may; a viewer's `read` key reads the files but cannot upload or delete them; a `process` key
/// does not read them; the store's health needs a caller of the organisation.
#[tokio::test(flavor = "multi_thread")]
async fn files_follow_roles_and_scopes() {
    let storage = TestStorage::embedded();
    let gw = spawn(storage.config.clone(), file_settings()).await;
    let owner = client(&gw, "scopes@files.example").await;
    let process = key_client(&owner, "member", None).await;
    let read = key_client(&owner, "viewer", None).await;

    let (status, up) = process.upload("notes.txt", &text(50)).await;
    assert_eq!(status, 200, "a process key uploads: {up}");
    let id = up["file_id"].as_str().unwrap().to_owned();
    let (status, grant) = process
        .post("/api/v1/upload/presigned", json!({"filename": "later.txt"}))
        .await;
    assert_eq!(status, 200, "a process key asks for an upload URL: {grant}");

    let (status, body) = read.upload("more.txt", &text(5)).await;
    assert_eq!(status, 403, "a read key does not upload: {body}");
    let (status, body) = read.delete(&format!("/api/v1/upload/{id}")).await;
    assert_eq!(status, 403, "a read key does not delete: {body}");
    let (status, list) = read.get("/api/v1/upload/list").await;
    assert_eq!(status, 200, "a read key lists: {list}");
    let (status, body) = process.get("/api/v1/upload/list").await;
    assert_eq!(status, 403, "a process key does not read: {body}");

    let (status, body) = gw
        .send(
            gw.app
                .client
                .get(format!("{}/api/v1/upload/health", gw.app.address)),
        )
        .await;
    assert_eq!(status, 401, "no credentials, no storage details: {body}");
    let (status, health) = read.get("/api/v1/upload/health").await;
    assert_eq!(status, 200, "{health}");

    let (status, body) = process.delete(&format!("/api/v1/upload/{id}")).await;
    assert_eq!(status, 200, "a process key deletes: {body}");
}

/// Gateway settings for file tests.
fn file_settings() -> GatewaySettings {
    GatewaySettings {
        file_sync_interval_secs: Some(3600.0),
        ..settings()
    }
}

/// A gateway on SQLite and a bucket of `s3`, with its data folder.
async fn on_s3(
    s3: &S3sServer,
    bucket: &str,
    dir: &std::path::Path,
    gateway: GatewaySettings,
) -> Gateway {
    spawn(s3.storage_config(bucket, dir), gateway).await
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_list_download_ranges_and_delete_on_s3() {
    let Some(s3) = S3sServer::start().await else {
        return;
    };
    let bucket = s3.bucket();
    let dir = tempfile::tempdir().unwrap();
    let gw = on_s3(&s3, &bucket, dir.path(), file_settings()).await;
    let alice = client(&gw, "alice@files.example").await;
    let bob = client(&gw, "bob@files.example").await;

    // Text: stored compressed, read back as it was.
    let notes = text(20_000);
    let (status, up) = alice.upload("../../notes (final).txt", &notes).await;
    assert_eq!(status, 200, "{up}");
    let notes_id = up["file_id"].as_str().unwrap().to_owned();
    assert_eq!(up["filename"], "notes (final).txt");
    assert_eq!(up["content_type"], "text/plain");
    assert_eq!(up["file_size"], notes.len());
    assert_eq!(up["sha256"], sha256(&notes));
    assert_eq!(up["compression"], "zstd");
    assert_eq!(up["status"], "stored");
    assert_eq!(up["storage_location"], "s3");
    assert!(up["compression_ratio"].as_f64().unwrap() > 4.0, "{up}");
    assert!(
        up["file_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/api/v1/upload/download/{notes_id}"))
    );
    // The object is org/<uuid>, compressed, in the bucket.
    let org = {
        let (_, current) = alice.get("/api/v1/organizations/current").await;
        current["id"].as_str().unwrap().to_owned()
    };
    let object = std::fs::read(s3.object_path(&bucket, &format!("{org}/{notes_id}"))).unwrap();
    assert!(object.starts_with(b"\x28\xb5\x2f\xfd"));
    assert_eq!(object.len() as u64, up["stored_size"].as_u64().unwrap());
    assert_eq!(zstd::decode_all(&object[..]).unwrap(), notes);

    // A binary larger than one multipart part: stored as it is.
    let image = png(7 * 1024 * 1024);
    let (status, up) = alice.upload("photo.png", &image).await;
    assert_eq!(status, 200, "{up}");
    let image_id = up["file_id"].as_str().unwrap().to_owned();
    assert_eq!(
        (up["content_type"].as_str(), up["compression"].as_str()),
        (Some("image/png"), Some("none"))
    );
    assert_eq!(up["sha256"], sha256(&image));
    assert_eq!(
        std::fs::read(s3.object_path(&bucket, &format!("{org}/{image_id}"))).unwrap(),
        image
    );

    // Downloads: whole, and ranges of the compressed and the plain file.
    let (status, headers, body) = alice.download(&notes_id, None).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/plain");
    assert_eq!(headers["content-length"], notes.len().to_string().as_str());
    assert_eq!(body, notes);
    let (status, headers, body) = alice.download(&notes_id, Some("bytes=100000-100099")).await;
    assert_eq!(status, 206);
    assert_eq!(
        headers["content-range"],
        format!("bytes 100000-100099/{}", notes.len()).as_str()
    );
    assert_eq!(body, notes[100_000..100_100]);
    let (status, _, body) = alice.download(&image_id, Some("bytes=-1000")).await;
    assert_eq!(status, 206);
    assert_eq!(body, image[image.len() - 1000..]);
    let (status, _, body) = alice.download(&image_id, Some("bytes=6000000-")).await;
    assert_eq!((status, body.len()), (206, image.len() - 6_000_000));
    assert_eq!(body, image[6_000_000..]);
    let (status, headers, _) = alice
        .download(&image_id, Some(&format!("bytes={}-", image.len())))
        .await;
    assert_eq!(status, 416);
    assert_eq!(
        headers["content-range"],
        format!("bytes */{}", image.len()).as_str()
    );

    // Listing, filtered and paginated.
    let (status, list) = alice.get("/api/v1/upload/list").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["total"], 2);
    assert_eq!(
        list["files"][0]["file_id"],
        image_id.as_str(),
        "newest first"
    );
    let (_, list) = alice.get("/api/v1/upload/list?type=png").await;
    assert_eq!(
        (list["total"].as_i64(), list["files"][0]["file_id"].as_str()),
        (Some(1), Some(image_id.as_str()))
    );
    let (_, list) = alice
        .get("/api/v1/upload/list?type=text/plain&status=stored")
        .await;
    assert_eq!(list["total"], 1);
    let (_, list) = alice.get("/api/v1/upload/list?limit=1&offset=1").await;
    assert_eq!(
        (list["total"].as_i64(), list["files"][0]["file_id"].as_str()),
        (Some(2), Some(notes_id.as_str()))
    );
    let (status, e) = alice.get("/api/v1/upload/list?status=lost").await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );

    // Another organisation sees nothing and touches nothing.
    for path in [
        format!("/api/v1/upload/metadata/{notes_id}"),
        format!("/api/v1/upload/download/{notes_id}"),
        format!("/api/v1/upload/download/{notes_id}/url"),
    ] {
        let (status, e) = bob.get(&path).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }
    let (status, _) = bob.delete(&format!("/api/v1/upload/{notes_id}")).await;
    assert_eq!(status, 404);
    let (_, list) = bob.get("/api/v1/upload/list").await;
    assert_eq!(list["total"], 0);

    // Deleting removes the object and the file.
    let (status, gone) = alice.delete(&format!("/api/v1/upload/{notes_id}")).await;
    assert_eq!(status, 200, "{gone}");
    assert!(
        !s3.object_path(&bucket, &format!("{org}/{notes_id}"))
            .exists()
    );
    let (status, _) = alice
        .get(&format!("/api/v1/upload/metadata/{notes_id}"))
        .await;
    assert_eq!(status, 404);
    let (_, list) = alice.get("/api/v1/upload/list").await;
    assert_eq!(list["total"], 1);
    let (_, list) = alice.get("/api/v1/upload/list?status=deleted").await;
    assert_eq!(list["total"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn round_trip_on_every_storage_mode() {
    // Embedded (SQLite, local folder) always; PostgreSQL, Redis and the CI's S3 (moto) when set.
    for storage in TestStorage::all().await {
        let gw = spawn(storage.config.clone(), file_settings()).await;
        let alice = client(&gw, "modes@files.example").await;
        let notes = text(5_000);
        let (status, up) = alice.upload("données (1).csv", &notes).await;
        assert_eq!(status, 200, "{}: {up}", storage.label);
        assert_eq!(
            (up["status"].as_str(), up["compression"].as_str()),
            (Some("stored"), Some("zstd")),
            "{}",
            storage.label
        );
        let id = up["file_id"].as_str().unwrap();
        let (status, headers, body) = alice.download(id, Some("bytes=1000-")).await;
        assert_eq!(
            (status, body.as_slice()),
            (206, &notes[1000..]),
            "{}",
            storage.label
        );
        let disposition = headers["content-disposition"].to_str().unwrap();
        assert!(disposition.starts_with("attachment"), "{disposition}");
        assert!(
            disposition.contains("filename*=UTF-8''donn%C3%A9es%20%281%29.csv"),
            "{disposition}"
        );
        let (status, _) = alice.delete(&format!("/api/v1/upload/{id}")).await;
        assert_eq!(status, 200, "{}", storage.label);
        let (status, _, _) = alice.download(id, None).await;
        assert_eq!(status, 404, "{}", storage.label);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn too_large_and_disallowed_types_are_refused_and_not_stored() {
    let storage = TestStorage::embedded();
    let gw = spawn(
        storage.config.clone(),
        GatewaySettings {
            max_file_size: Some(100_000),
            allowed_file_types: Some("txt,csv,png".into()),
            ..file_settings()
        },
    )
    .await;
    let alice = client(&gw, "limits@files.example").await;

    // Over the limit within the declared length's slack: cut off while streaming.
    let (status, e) = alice.upload("big.txt", &text(3_000)).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (413, Some("file_too_large")),
        "{e}"
    );
    // Far over: refused from Content-Length before reading.
    let (status, e) = alice.upload("huge.png", &png(5_000_000)).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (413, Some("file_too_large")),
        "{e}"
    );
    // The content decides, not the name.
    let (status, e) = alice.upload("report.txt", b"%PDF-1.7\n%binary").await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (415, Some("file_type_not_allowed")),
        "{e}"
    );
    let (status, _) = alice.upload("data.csv", &[0u8, 1, 2, 3, 255, 254]).await;
    assert_eq!(status, 415);
    // A form without a file.
    let req = alice
        .request(Method::POST, "/api/v1/upload/direct")
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nx\r\n--{BOUNDARY}--\r\n"));
    let (status, e) = gw.send(req).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("invalid_upload")),
        "{e}"
    );
    let (_, list) = alice.get("/api/v1/upload/list?status=").await;
    assert_eq!(list["total"], 0, "{list}");
    // Nothing left in the blob folder either.
    let blobs = storage_dir(&storage.config).join("blobs");
    let leftovers: Vec<_> = walk(&blobs);
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Within the limits: accepted, and a presigned request for a refused type is refused.
    let (status, up) = alice.upload("ok.csv", b"a,b\n1,2\n").await;
    assert_eq!(
        (status, up["content_type"].as_str()),
        (200, Some("text/csv")),
        "{up}"
    );
    let (status, _) = alice
        .post(
            "/api/v1/upload/presigned",
            json!({"filename": "x.pdf", "content_type": "application/pdf"}),
        )
        .await;
    assert_eq!(status, 415);
}

fn storage_dir(config: &StorageConfig) -> std::path::PathBuf {
    config.data_dir()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Change one hex digit of the `name` query parameter of `url`.
fn tamper(url: &str, name: &str) -> String {
    let mut parsed = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| {
            let v = if k.eq_ignore_ascii_case(name) {
                let mut chars: Vec<char> = v.chars().collect();
                chars[0] = if chars[0] == '0' { '1' } else { '0' };
                chars.into_iter().collect()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.to_string()
}

async fn put(gw: &Gateway, url: &str, data: &[u8]) -> u16 {
    gw.app
        .client
        .put(url)
        .body(data.to_vec())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn fetch(gw: &Gateway, url: &str) -> (u16, Vec<u8>) {
    let resp = gw.app.client.get(url).send().await.unwrap();
    (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_presigned_urls_work_and_expire_and_refuse_tampering() {
    let Some(s3) = S3sServer::start().await else {
        return;
    };
    let bucket = s3.bucket();
    let dir = tempfile::tempdir().unwrap();
    let gw = on_s3(&s3, &bucket, dir.path(), file_settings()).await;
    let alice = client(&gw, "presign@files.example").await;
    let data = png(10_000);

    let (status, grant) = alice
        .post(
            "/api/v1/upload/presigned",
            json!({"filename": "scan.png", "content_type": "image/png", "expires_in": 600}),
        )
        .await;
    assert_eq!(status, 200, "{grant}");
    let upload_url = grant["upload_url"].as_str().unwrap();
    assert!(upload_url.starts_with(&s3.endpoint), "{upload_url}");
    assert!(upload_url.contains("X-Amz-Signature="), "{upload_url}");
    assert_eq!(grant["expires_in"], 600);
    let id = grant["file_id"].as_str().unwrap();
    let (_, meta) = alice.get(&format!("/api/v1/upload/metadata/{id}")).await;
    assert_eq!(
        meta["error"]["code"], "conflict",
        "not uploaded yet: {meta}"
    );

    // The signature covers the request: a changed one is refused by S3 itself.
    assert_eq!(
        put(&gw, &tamper(upload_url, "X-Amz-Signature"), &data).await,
        403
    );
    assert_eq!(put(&gw, upload_url, &data).await, 200);
    let (status, done) = alice
        .post(&format!("/api/v1/upload/{id}/complete"), json!({}))
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        (done["status"].as_str(), done["file_size"].as_u64()),
        (Some("stored"), Some(data.len() as u64))
    );
    assert_eq!(done["sha256"], sha256(&data));
    assert_eq!(done["content_type"], "image/png");
    // The upload URL is still valid, but what was checked cannot be replaced through it.
    let executable = b"\x7fELF\x02\x01\x01\0\0\0".repeat(1_000);
    assert_eq!(put(&gw, upload_url, &executable).await, 200);
    let (status, _, bytes) = alice.download(id, None).await;
    assert_eq!(
        (status, bytes == data),
        (200, true),
        "the checked bytes stay"
    );

    // Download URL: SigV4 on S3, with the same checks. (URLs meant to work have the default
    // expiry, so a slow machine cannot make them expire before they are used.)
    let (status, link) = alice
        .get(&format!("/api/v1/upload/download/{id}/url"))
        .await;
    assert_eq!(status, 200, "{link}");
    let url = link["download_url"].as_str().unwrap();
    assert!(url.starts_with(&s3.endpoint), "{url}");
    assert_eq!(fetch(&gw, url).await, (200, data.clone()));
    assert_eq!(fetch(&gw, &tamper(url, "X-Amz-Signature")).await.0, 403);
    let (_, short_link) = alice
        .get(&format!("/api/v1/upload/download/{id}/url?expires_in=1"))
        .await;
    let (_, short) = alice
        .post(
            "/api/v1/upload/presigned",
            json!({"filename": "late.png", "expires_in": 1}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        fetch(&gw, short_link["download_url"].as_str().unwrap())
            .await
            .0,
        403,
        "an expired download URL"
    );
    assert_eq!(
        put(&gw, short["upload_url"].as_str().unwrap(), &data).await,
        403,
        "an expired upload URL"
    );

    // A presigned upload of a refused type is removed on confirmation.
    let (_, grant) = alice
        .post("/api/v1/upload/presigned", json!({"filename": "a.png"}))
        .await;
    assert_eq!(
        put(
            &gw,
            grant["upload_url"].as_str().unwrap(),
            b"\x7fELF\x02\x01\x01\0\0\0"
        )
        .await,
        200
    );
    let id = grant["file_id"].as_str().unwrap();
    let (status, e) = alice
        .post(&format!("/api/v1/upload/{id}/complete"), json!({}))
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (415, Some("file_type_not_allowed")),
        "{e}"
    );
    let (status, _) = alice.get(&format!("/api/v1/upload/metadata/{id}")).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_urls_are_signed_by_the_gateway_with_the_same_checks() {
    let storage = TestStorage::embedded();
    let gw = spawn(storage.config.clone(), file_settings()).await;
    let alice = client(&gw, "embedded@files.example").await;
    let data = text(2_000);

    let (status, grant) = alice
        .post("/api/v1/upload/presigned", json!({"filename": "notes.md"}))
        .await;
    assert_eq!(status, 200, "{grant}");
    assert_eq!(
        grant["expires_in"], 3600,
        "UPLOAD_EXPIRY_MINUTES by default"
    );
    let upload_url = grant["upload_url"].as_str().unwrap();
    assert!(upload_url.starts_with(&gw.app.address), "{upload_url}");
    assert_eq!(put(&gw, &tamper(upload_url, "signature"), &data).await, 403);
    let mut wrong_file = url::Url::parse(upload_url).unwrap();
    wrong_file.set_path(&format!("/api/v1/upload/signed/{}", uuid_like()));
    assert_eq!(put(&gw, wrong_file.as_str(), &data).await, 403);
    assert_eq!(put(&gw, upload_url, &data).await, 200);
    assert_eq!(put(&gw, upload_url, &data).await, 409, "used once");
    // Two uploads racing on one URL: one writes the file, the other is refused.
    let (_, race) = alice
        .post("/api/v1/upload/presigned", json!({"filename": "race.md"}))
        .await;
    let race_url = race["upload_url"].as_str().unwrap();
    let (a, b) = tokio::join!(put(&gw, race_url, &data), put(&gw, race_url, &data));
    let mut statuses = [a, b];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409]);
    let id = grant["file_id"].as_str().unwrap();
    let (_, meta) = alice.get(&format!("/api/v1/upload/metadata/{id}")).await;
    assert_eq!(
        (meta["status"].as_str(), meta["compression"].as_str()),
        (Some("stored"), Some("zstd")),
        "{meta}"
    );
    assert_eq!(meta["content_type"], "text/markdown");
    assert_eq!(meta["sha256"], sha256(&data));

    let (_, link) = alice
        .get(&format!("/api/v1/upload/download/{id}/url"))
        .await;
    let url = link["download_url"].as_str().unwrap();
    assert_eq!(fetch(&gw, url).await, (200, data.clone()));
    let (_, short_link) = alice
        .get(&format!("/api/v1/upload/download/{id}/url?expires_in=1"))
        .await;
    // Signed for GET: not an upload URL.
    assert_eq!(put(&gw, url, &data).await, 403);
    let (status, body) = fetch(&gw, &tamper(url, "signature")).await;
    assert_eq!(status, 403);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["error"]["code"],
        "invalid_signature"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = fetch(&gw, short_link["download_url"].as_str().unwrap()).await;
    assert_eq!(status, 403);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["error"]["code"],
        "url_expired"
    );
}

fn uuid_like() -> String {
    "01234567-89ab-7def-8123-456789abcdef".into()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stored_file_is_scanned_like_inline_text() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let health = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/analyze"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": []})))
        .mount(&health)
        .await;
    let storage = TestStorage::embedded();
    let gw = spawn(
        storage.config.clone(),
        GatewaySettings {
            healthguard_url: Some(health.uri()),
            file_scan_max_bytes: Some(10_000),
            ..file_settings()
        },
    )
    .await;
    let tokens = gw.sign_up("scan@files.example").await;
    let (_, org) = gw
        .get(
            "/api/v1/organizations/current",
            Auth::Bearer(access(&tokens)),
        )
        .await;
    crate::helpers::set_tier(&storage.config, org["id"].as_str().unwrap(), "pro").await;
    let alice = Client {
        gw: &gw,
        credential: ("authorization", format!("Bearer {}", access(&tokens))),
    };
    let lines = b"{\"id\": \"s1\", \"content\": \"the first sample\"}\n\"a second one\"\n";
    let (_, up) = alice.upload("batch.jsonl", lines).await;
    assert_eq!(up["content_type"], "application/x-ndjson", "{up}");
    let (status, answer) = alice
        .post(
            "/api/v1/guards/process",
            json!({"service_type": "healthguard", "payload": {"file_id": up["file_id"]}}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let sent: Value =
        serde_json::from_slice(&health.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(
        sent["samples"],
        json!([{"id": "s1", "content": "the first sample"}, {"id": "1", "content": "a second one"}])
    );
    assert!(sent.get("file_id").is_none());

    // Too large to scan, not text, someone else's, not an id.
    let (_, big) = alice.upload("big.txt", &text(1_000)).await;
    let (_, image) = alice.upload("p.png", &png(100)).await;
    let bob = client(&gw, "bob-scan@files.example").await;
    // (Bob's new organisation has the free plan, without HealthGuard: he names a guard it has,
    // since the file is read only for a call the plan allows.)
    for (who, guard, file_id, want) in [
        (&alice, "healthguard", big["file_id"].clone(), 413),
        (&alice, "healthguard", image["file_id"].clone(), 415),
        (&bob, "tokenguard", up["file_id"].clone(), 404),
        (&bob, "healthguard", up["file_id"].clone(), 403),
        (&alice, "healthguard", json!("nope"), 400),
    ] {
        let (status, e) = who
            .post(
                "/api/v1/guards/process",
                json!({"service_type": guard, "payload": {"file_id": file_id}}),
            )
            .await;
        assert_eq!(status, want, "{e}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_outage_uploads_wait_on_disk_and_sync_back_after_a_restart() {
    let Some(mut s3) = S3sServer::start().await else {
        return;
    };
    let bucket = s3.bucket();
    let dir = tempfile::tempdir().unwrap();
    let config = s3.storage_config(&bucket, dir.path());
    let (gw, handle) = spawn_stoppable(config.clone(), file_settings()).await;
    let tokens = gw.sign_up("outage@files.example").await;
    let (_, org) = gw
        .get(
            "/api/v1/organizations/current",
            Auth::Bearer(access(&tokens)),
        )
        .await;
    let org = org["id"].as_str().unwrap().to_owned();

    s3.stop();
    let (status, ready) = gw.app.get_json("/health/ready").await;
    assert_eq!(status, 200, "ready while S3 is away: {ready}");
    let (_, health) = gw.app.get_admin_json("/health").await;
    assert_eq!(health["status"], "degraded", "{health}");

    let (notes, image) = (text(30_000), png(6 * 1024 * 1024));
    let mut ids = Vec::new();
    {
        let alice = Client {
            gw: &gw,
            credential: ("authorization", format!("Bearer {}", access(&tokens))),
        };
        for (name, data) in [("notes.txt", &notes), ("image.png", &image)] {
            let (status, up) = alice.upload(name, data).await;
            assert_eq!(status, 200, "{up}");
            assert_eq!(
                (up["status"].as_str(), up["storage_location"].as_str()),
                (Some("syncing"), Some("local")),
                "{up}"
            );
            assert_eq!(up["sha256"], sha256(data));
            // Readable while it waits.
            let id = up["file_id"].as_str().unwrap().to_owned();
            let (status, _, body) = alice.download(&id, Some("bytes=10-19")).await;
            assert_eq!((status, body.as_slice()), (206, &data[10..20]));
            ids.push(id);
        }
        let (_, fs) = alice.get("/api/v1/upload/health").await;
        assert_eq!(
            (fs["status"].as_str(), fs["waiting_for_s3"].as_i64()),
            (Some("degraded"), Some(2)),
            "{fs}"
        );
    }
    // The gateway goes away before S3 returns.
    handle.stop(true).await;
    drop(gw);
    s3.resume().await;
    assert!(
        !s3.object_path(&bucket, &format!("{org}/{}", ids[0]))
            .exists()
    );

    let (gw, _handle) = spawn_stoppable(
        config,
        GatewaySettings {
            file_sync_interval_secs: Some(0.2),
            ..settings()
        },
    )
    .await;
    let alice = client_again(&gw, "outage@files.example").await;
    let mut synced = Vec::new();
    for _ in 0..150 {
        synced.clear();
        for id in &ids {
            let (_, meta) = alice.get(&format!("/api/v1/upload/metadata/{id}")).await;
            synced.push(meta);
        }
        if synced.iter().all(|m| m["status"] == "stored") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for ((meta, id), data) in synced.iter().zip(&ids).zip([&notes, &image]) {
        assert_eq!(
            (meta["status"].as_str(), meta["storage_location"].as_str()),
            (Some("stored"), Some("s3")),
            "{meta}"
        );
        assert!(meta["synced_at"].is_string(), "{meta}");
        let object = std::fs::read(s3.object_path(&bucket, &format!("{org}/{id}"))).unwrap();
        let original = if meta["compression"] == "zstd" {
            zstd::decode_all(&object[..]).unwrap()
        } else {
            object
        };
        assert_eq!(sha256(&original), meta["sha256"].as_str().unwrap());
        assert_eq!(sha256(&original), sha256(data));
        let (status, _, body) = alice.download(id, None).await;
        assert_eq!((status, body.len()), (200, data.len()));
        assert_eq!(&body, data);
    }
    assert!(
        walk(&dir.path().join("uploads-pending")).is_empty(),
        "local copies removed after the sync"
    );
}

async fn client_again<'a>(gw: &'a Gateway, email: &str) -> Client<'a> {
    let tokens = gw.login(email).await;
    Client {
        gw,
        credential: ("authorization", format!("Bearer {}", access(&tokens))),
    }
}
