use std::time::Duration;

use bytes::Bytes;
use cg_storage::Error;
use cg_storage::blob::Method;
use cg_storage::testing::TestBlobs;

#[tokio::test(flavor = "multi_thread")]
async fn put_get_head_list_delete() {
    for t in TestBlobs::all().await {
        let s = &t.store;
        let b = s.backend();
        let body = Bytes::from_static(b"hello, guarded world");
        s.put("org-1/files/a.txt", body.clone()).await.unwrap();
        s.put("org-1/files/b.txt", Bytes::from_static(b"b"))
            .await
            .unwrap();
        s.put("org-2/files/c.txt", Bytes::from_static(b"c"))
            .await
            .unwrap();
        assert_eq!(s.get("org-1/files/a.txt").await.unwrap(), body, "{b}");
        let meta = s.head("org-1/files/a.txt").await.unwrap();
        assert_eq!(meta.size, body.len() as u64, "{b}");

        let mut listed: Vec<_> = s
            .list("org-1")
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.key)
            .collect();
        listed.sort();
        assert_eq!(listed, ["org-1/files/a.txt", "org-1/files/b.txt"], "{b}");

        s.delete("org-1/files/a.txt").await.unwrap();
        assert!(
            matches!(s.get("org-1/files/a.txt").await, Err(Error::NotFound)),
            "{b}"
        );
        assert!(
            matches!(s.head("org-1/files/a.txt").await, Err(Error::NotFound)),
            "{b}"
        );
        s.delete("org-1/files/a.txt").await.unwrap();
        assert!(s.ping().await.is_ok(), "{b}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unsafe_keys_are_refused() {
    for t in TestBlobs::all().await {
        for key in ["", "/abs", "a/../b", "a//b", "../escape"] {
            let r = t.store.put(key, Bytes::from_static(b"x")).await;
            assert!(
                matches!(r, Err(Error::Invalid(_))),
                "{}: {key:?} → {r:?}",
                t.store.backend()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn presigned_urls_upload_and_download_on_s3_only() {
    let local = TestBlobs::local();
    let r = local
        .store
        .presign(Method::GET, "x", Duration::from_secs(60))
        .await;
    assert!(matches!(r, Err(Error::Unsupported(_))), "{r:?}");

    let Some(t) = TestBlobs::s3().await else {
        return;
    };
    let s = &t.store;
    let client = reqwest::Client::new();
    let put_url = s
        .presign(Method::PUT, "up/doc.txt", Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        put_url
            .query()
            .is_some_and(|q| q.contains("X-Amz-Signature")),
        "{put_url}"
    );
    let resp = client
        .put(put_url)
        .body("uploaded by a browser")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(
        s.get("up/doc.txt").await.unwrap(),
        Bytes::from_static(b"uploaded by a browser")
    );

    let get_url = s
        .presign(Method::GET, "up/doc.txt", Duration::from_secs(60))
        .await
        .unwrap();
    let text = client
        .get(get_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "uploaded by a browser");

    let too_long = s
        .presign(
            Method::GET,
            "up/doc.txt",
            Duration::from_secs(8 * 24 * 3600),
        )
        .await;
    assert!(matches!(too_long, Err(Error::Invalid(_))));
}
