//! The storage layer's figures reach `/metrics`: cache and blob operations each record how long
//! they took, by backend and operation; the outbox reports its depth and the age of its oldest
//! record.

use bytes::Bytes;
use cg_storage::testing::{TestBlobs, all_caches};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

#[tokio::test(flavor = "multi_thread")]
async fn storage_operations_record_latency_and_the_outbox_its_backlog() {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("duration_seconds".into()),
            &[0.001, 0.01, 1.0],
        )
        .unwrap()
        .build_recorder();
    let handle = recorder.handle();
    // The only recorder of this test binary; other tests' operations only add samples.
    metrics::set_global_recorder(recorder).unwrap();

    let mut caches = Vec::new();
    for cache in all_caches().await {
        cache.set("latency", b"1", None).await.unwrap();
        cache.get("latency").await.unwrap();
        caches.push(cache.backend());
    }
    for blobs in TestBlobs::all().await {
        blobs
            .store
            .put("latency/probe", Bytes::from_static(b"x"))
            .await
            .unwrap();
        blobs.store.head("latency/probe").await.unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let outbox = cg_storage::Outbox::open(&dir.path().join("outbox.db"))
        .await
        .unwrap();
    outbox
        .push("probe", &serde_json::json!({"n": 1}))
        .await
        .unwrap();
    assert_eq!(outbox.depth().await.unwrap(), 1);

    let text = handle.render();
    assert!(text.contains("cg_outbox_depth 1"), "{text}");
    assert!(text.contains("cg_outbox_oldest_age_seconds "), "{text}");
    for backend in &caches {
        for op in ["set", "get"] {
            let series = format!(
                "cg_cache_operation_duration_seconds_bucket{{backend=\"{backend}\",op=\"{op}\",le=\"1\"}}"
            );
            assert!(text.contains(&series), "{series} missing from\n{text}");
        }
    }
    for op in ["put", "head"] {
        let series = format!(
            "cg_blob_operation_duration_seconds_bucket{{backend=\"local\",op=\"{op}\",le=\"1\"}}"
        );
        assert!(text.contains(&series), "{series} missing from\n{text}");
    }
}
