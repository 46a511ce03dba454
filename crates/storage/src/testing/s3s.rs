//! `s3s-fs`: an S3-compatible server that checks SigV4 signatures (moto does not), owned by one
//! test on a free port, for presigned-URL expiry and tampering and for S3 outages. Buckets are
//! folders of its root.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tempfile::TempDir;

use super::{backends_required, free_port, unique};
use crate::StorageConfig;

/// Credentials the test server accepts.
pub const S3S_ACCESS_KEY: &str = "cg-test-access";
pub const S3S_SECRET_KEY: &str = "cg-test-secret-key-0123456789";

/// One `s3s-fs` process (killed when dropped).
#[derive(Debug)]
pub struct S3sServer {
    /// `http://127.0.0.1:port`
    pub endpoint: String,
    port: u16,
    root: TempDir,
    child: Option<Child>,
}

impl Drop for S3sServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn installed() -> bool {
    let found = Command::new("s3s-fs")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found || !backends_required(),
        "s3s-fs is not installed but CG_TEST_REQUIRE_BACKENDS=1 (cargo install s3s-fs@0.14.1 --features binary)"
    );
    found
}

impl S3sServer {
    /// Start it, or `None` when `s3s-fs` is not installed (a failure when backends are required).
    pub async fn start() -> Option<Self> {
        if !installed() {
            return None;
        }
        let mut server = Self {
            endpoint: String::new(),
            port: free_port(),
            root: tempfile::tempdir().expect("temp dir"),
            child: None,
        };
        server.endpoint = format!("http://127.0.0.1:{}", server.port);
        server.resume().await;
        Some(server)
    }

    /// Start it again after [`S3sServer::stop`], on the same port with the same objects.
    pub async fn resume(&mut self) {
        self.stop();
        let child = Command::new("s3s-fs")
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--access-key",
                S3S_ACCESS_KEY,
                "--secret-key",
                S3S_SECRET_KEY,
            ])
            .arg(self.root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("s3s-fs on port {} never accepted connections", self.port);
    }

    /// Kill the server (as an outage would).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A new empty bucket; returns its name.
    pub fn bucket(&self) -> String {
        let name = unique("cg-test-");
        std::fs::create_dir(self.root.path().join(&name)).expect("create bucket folder");
        name
    }

    /// Where the server keeps object `key` of `bucket`.
    pub fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.path().join(bucket).join(key)
    }

    /// Storage for a service under test: an SQLite file and an in-process cache under
    /// `data_dir`, blobs in `bucket` of this server.
    pub fn storage_config(&self, bucket: &str, data_dir: &Path) -> StorageConfig {
        StorageConfig::from_pairs([
            ("CG_DATA_DIR".to_owned(), data_dir.display().to_string()),
            ("S3_ENABLED".to_owned(), "true".to_owned()),
            ("S3_BUCKET_NAME".to_owned(), bucket.to_owned()),
            ("S3_REGION".to_owned(), "us-east-1".to_owned()),
            ("S3_ACCESS_KEY_ID".to_owned(), S3S_ACCESS_KEY.to_owned()),
            ("S3_SECRET_ACCESS_KEY".to_owned(), S3S_SECRET_KEY.to_owned()),
            ("S3_ENDPOINT_URL".to_owned(), self.endpoint.clone()),
        ])
        .expect("s3s storage config")
    }
}
