use cg_contextguard::config::Config;
use cg_contextguard::startup;
use cg_service_kit::testing::{TestApp, server_config};
use cg_storage::testing::TestStorage;

#[tokio::test(flavor = "multi_thread")]
async fn serves_health_and_metrics_on_every_storage_mode() {
    for storage in TestStorage::all().await {
        let config = Config {
            server: server_config(),
            storage: storage.config.clone().for_contextguard(),
            contextguard: Default::default(),
        };
        let app = startup::build(config).await.expect("build");
        let app = TestApp::run(app);
        let expected: &[(&str, &str)] = if storage.label == "embedded" {
            &[("redis", "memory")]
        } else {
            &[("redis", "redis")]
        };
        app.assert_health_contract("contextguard", expected).await;
    }
}
