use cg_storage::Error;
use cg_storage::models::files::status;
use cg_storage::models::{FileFilter, FileStored, NewOrganization, NewUser, StoredFile};
use cg_storage::sql_types::{Id, Timestamp};
use cg_storage::testing::TestDb;

fn file(org: Id, name: &str, status: &str) -> StoredFile {
    StoredFile::new(org, None, name, status, "s3")
}

#[tokio::test(flavor = "multi_thread")]
async fn files_are_kept_per_organisation_through_their_states() {
    for t in TestDb::all().await {
        let mut pooled = t.db.get().await.unwrap();
        let conn = &mut pooled.conn();
        let owner = NewUser::new(
            "files@example.com",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
            "Ada",
        )
        .insert(conn)
        .await
        .unwrap();
        let org = NewOrganization::new("Files", "files", Some(owner.id))
            .insert(conn)
            .await
            .unwrap();
        let other = NewOrganization::new("Other", "other", Some(owner.id))
            .insert(conn)
            .await
            .unwrap();

        let pending = file(org.id, "a.txt", status::PENDING);
        pending.insert(conn).await.unwrap();
        let waiting = file(org.id, "b.txt", status::SYNCING);
        waiting.insert(conn).await.unwrap();
        // The statuses the migration allows; others are refused by the schema.
        let bad = file(org.id, "c.txt", "uploaded");
        assert!(bad.insert(conn).await.is_err(), "{}", t.backend);

        assert!(matches!(
            StoredFile::find(conn, other.id, pending.id).await,
            Err(Error::NotFound)
        ));
        let stored = StoredFile::record_stored(
            conn,
            pending.id,
            &FileStored {
                content_type: "text/csv".into(),
                size_bytes: Some(1000),
                stored_size_bytes: Some(100),
                checksum_sha256: Some("ab".repeat(32)),
                etag: Some("\"e\"".into()),
                compression: "zstd".into(),
                storage_backend: "s3".into(),
                status: status::STORED.into(),
                synced_at: None,
                updated_at: Timestamp::now(),
            },
        )
        .await
        .unwrap();
        assert_eq!(
            (
                stored.status.as_str(),
                stored.compression.as_str(),
                stored.stored_size_bytes
            ),
            ("stored", "zstd", Some(100))
        );

        let filter = FileFilter {
            status: Some(status::SYNCING.into()),
            content_type: None,
        };
        let (rows, total) = StoredFile::list(conn, org.id, &filter, 10, 0)
            .await
            .unwrap();
        assert_eq!(
            (rows.len(), total, rows[0].id),
            (1, 1, waiting.id),
            "{}",
            t.backend
        );
        let filter = FileFilter {
            status: None,
            content_type: Some("text/csv".into()),
        };
        assert_eq!(
            StoredFile::list(conn, org.id, &filter, 10, 0)
                .await
                .unwrap()
                .1,
            1
        );
        assert_eq!(
            StoredFile::list(conn, other.id, &FileFilter::default(), 10, 0)
                .await
                .unwrap()
                .1,
            0
        );

        assert_eq!(StoredFile::count_syncing(conn).await.unwrap(), 1);
        assert_eq!(
            StoredFile::syncing(conn, 10).await.unwrap()[0].id,
            waiting.id
        );
        assert!(
            StoredFile::mark_synced(conn, waiting.id, None)
                .await
                .unwrap()
        );
        assert!(
            !StoredFile::mark_synced(conn, waiting.id, None)
                .await
                .unwrap(),
            "once"
        );
        assert_eq!(StoredFile::count_syncing(conn).await.unwrap(), 0);

        assert!(matches!(
            StoredFile::mark_deleted(conn, other.id, stored.id).await,
            Err(Error::NotFound)
        ));
        let deleted = StoredFile::mark_deleted(conn, org.id, stored.id)
            .await
            .unwrap();
        assert!(deleted.deleted_at.is_some());
        assert!(matches!(
            StoredFile::find_by_id(conn, stored.id).await,
            Err(Error::NotFound)
        ));
        let (_, live) = StoredFile::list(conn, org.id, &FileFilter::default(), 10, 0)
            .await
            .unwrap();
        assert_eq!(live, 1, "deleted files are listed only when asked for");
    }
}
