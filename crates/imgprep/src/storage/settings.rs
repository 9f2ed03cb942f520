//! S3 settings from the standard AWS environment variables and profile
//! files, as the AWS CLI reads them:
//!
//! - `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`;
//! - `AWS_PROFILE` (default `default`) in `~/.aws/credentials` and
//!   `~/.aws/config` (or `AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`):
//!   `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`,
//!   `region`, `endpoint_url`; the environment wins over the files;
//! - `AWS_REGION` / `AWS_DEFAULT_REGION` (default `us-east-1`);
//! - `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` for S3-compatible stores
//!   (plain `http://` is then allowed); path-style addressing unless
//!   `AWS_S3_ADDRESSING_STYLE=virtual`;
//! - `AWS_REQUEST_CHECKSUM_CALCULATION`: `when_required` (default; what
//!   S3-compatible stores such as Garage need) or `when_supported` (adds
//!   SHA-256 checksums to uploads).
//!
//! Without keys in the environment or the profile, object_store's own chain
//! is used (web identity, ECS and EC2 instance roles).

use object_store::aws::{AmazonS3Builder, Checksum};
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Default)]
pub struct S3Settings {
    pub access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
    pub region: String,
    pub endpoint: Option<String>,
    pub virtual_hosted: bool,
    pub checksums: bool,
    pub profile: String,
    /// How long one request keeps being retried (with backoff).
    pub retry_timeout: Duration,
}

/// Never prints secrets.
impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "***"),
            )
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("profile", &self.profile)
            .finish()
    }
}

/// `[section]` -> key -> value of an INI file (AWS's credentials/config).
fn read_ini(path: &std::path::Path) -> HashMap<String, HashMap<String, String>> {
    let mut out: HashMap<String, HashMap<String, String>> = HashMap::new();
    let Ok(text) = std::fs::read_to_string(path) else {
        return out;
    };
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.trim().to_string();
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_lowercase(), v.trim().to_string());
        }
    }
    out
}

/// `IMGPREP_IO_TIMEOUT_SECONDS` (default 30): how long a server may send
/// nothing, or less than the rate floor, before it is given up on.
pub fn io_timeout() -> Duration {
    Duration::from_secs(
        env("IMGPREP_IO_TIMEOUT_SECONDS")
            .and_then(|v| v.parse().ok())
            .filter(|&s: &u64| s > 0)
            .unwrap_or(30),
    )
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl S3Settings {
    pub fn from_env() -> Self {
        let home = env("HOME").map(PathBuf::from).unwrap_or_default();
        let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
        let creds_file = env("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".aws/credentials"));
        let config_file = env("AWS_CONFIG_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".aws/config"));
        let creds = read_ini(&creds_file);
        let config = read_ini(&config_file);
        let section = if profile == "default" {
            "default".to_string()
        } else {
            format!("profile {profile}")
        };
        let from_files = |key: &str| -> Option<String> {
            creds
                .get(&profile)
                .and_then(|s| s.get(key))
                .or_else(|| config.get(&section).and_then(|s| s.get(key)))
                .cloned()
        };
        let (key, secret, token) = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(k), Some(s)) => (Some(k), Some(s), env("AWS_SESSION_TOKEN")),
            _ => (
                from_files("aws_access_key_id"),
                from_files("aws_secret_access_key"),
                from_files("aws_session_token"),
            ),
        };
        S3Settings {
            access_key_id: key,
            secret_access_key: secret,
            session_token: token,
            region: env("AWS_REGION")
                .or_else(|| env("AWS_DEFAULT_REGION"))
                .or_else(|| from_files("region"))
                .unwrap_or_else(|| "us-east-1".into()),
            endpoint: env("AWS_ENDPOINT_URL_S3")
                .or_else(|| env("AWS_ENDPOINT_URL"))
                .or_else(|| from_files("endpoint_url")),
            virtual_hosted: env("AWS_S3_ADDRESSING_STYLE").as_deref() == Some("virtual"),
            checksums: env("AWS_REQUEST_CHECKSUM_CALCULATION")
                .is_some_and(|v| v.eq_ignore_ascii_case("when_supported")),
            profile,
            retry_timeout: Duration::from_secs(
                env("IMGPREP_S3_RETRY_SECONDS")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(60),
            ),
        }
    }

    /// A store for one bucket.
    fn retry(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                base: 2.0,
            },
            max_retries: 20,
            retry_timeout: self.retry_timeout,
        }
    }

    fn client(allow_http: bool) -> ClientOptions {
        static CRYPTO: std::sync::Once = std::sync::Once::new();
        CRYPTO.call_once(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        // A server that accepts and then says nothing is given up on after
        // IMGPREP_IO_TIMEOUT_SECONDS without a byte (default 30), and then
        // retried only within IMGPREP_S3_RETRY_SECONDS: every wait is bounded.
        // A body that trickles is cut by the transfer-rate floor the
        // readers keep (see `super::RateFloor`), not by a total time that
        // a large object on a slow link would also hit.
        let io = io_timeout();
        ClientOptions::new()
            .with_allow_http(allow_http)
            .with_connect_timeout(io.min(Duration::from_secs(5)))
            .with_read_timeout(io)
            .with_timeout(Duration::from_secs(24 * 3600))
    }

    /// A plain HTTP(S) server at `base` (`scheme://host[:port]`): GET and
    /// HEAD, with the same retries (no credentials are sent).
    pub fn build_http(&self, base: &str) -> Result<Arc<dyn ObjectStore>, String> {
        object_store::http::HttpBuilder::new()
            .with_url(base)
            .with_retry(self.retry())
            .with_client_options(Self::client(base.starts_with("http://")))
            .build()
            .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            .map_err(|e| super::first_line(&e.to_string()))
    }

    /// An Azure Blob Storage container, configured from the standard
    /// `AZURE_*` variables (AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ACCOUNT_KEY,
    /// AZURE_STORAGE_SAS_KEY, AZURE_STORAGE_USE_EMULATOR for Azurite, ...).
    pub fn build_azure(
        &self,
        container: &str,
    ) -> Result<Arc<object_store::azure::MicrosoftAzure>, String> {
        let emulator = env("AZURE_STORAGE_USE_EMULATOR").is_some_and(|v| v == "true" || v == "1");
        object_store::azure::MicrosoftAzureBuilder::from_env()
            .with_container_name(container)
            .with_retry(self.retry())
            .with_client_options(Self::client(
                emulator || env("AZURE_ALLOW_HTTP").is_some_and(|v| v == "true"),
            ))
            .build()
            .map(Arc::new)
            .map_err(|e| super::first_line(&e.to_string()))
    }

    /// A Google Cloud Storage bucket, configured from the standard `GOOGLE_*`
    /// variables (GOOGLE_SERVICE_ACCOUNT / GOOGLE_APPLICATION_CREDENTIALS, ...).
    pub fn build_gcs(
        &self,
        bucket: &str,
    ) -> Result<Arc<object_store::gcp::GoogleCloudStorage>, String> {
        object_store::gcp::GoogleCloudStorageBuilder::from_env()
            .with_bucket_name(bucket)
            .with_retry(self.retry())
            .with_client_options(Self::client(false))
            .build()
            .map(Arc::new)
            .map_err(|e| super::first_line(&e.to_string()))
    }

    pub fn build(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>, String> {
        self.build_s3(bucket).map(|s| s as Arc<dyn ObjectStore>)
    }

    /// The S3 store itself (it can also sign URLs).
    pub fn build_s3(&self, bucket: &str) -> Result<Arc<object_store::aws::AmazonS3>, String> {
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(&self.region)
            .with_virtual_hosted_style_request(self.virtual_hosted)
            .with_retry(self.retry())
            .with_client_options(Self::client(
                self.endpoint
                    .as_deref()
                    .is_some_and(|e| e.starts_with("http://")),
            ));
        if let Some(e) = &self.endpoint {
            b = b.with_endpoint(e);
        }
        if let (Some(k), Some(s)) = (&self.access_key_id, &self.secret_access_key) {
            b = b.with_access_key_id(k).with_secret_access_key(s);
            if let Some(t) = &self.session_token {
                b = b.with_token(t);
            }
        }
        if self.checksums {
            b = b.with_checksum_algorithm(Checksum::SHA256);
        }
        b.build()
            .map(Arc::new)
            .map_err(|e| super::first_line(&e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::read_ini;

    #[test]
    fn reads_aws_profile_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("credentials");
        std::fs::write(
            &p,
            "[default]\naws_access_key_id = AK1\n# c\n[work]\nAWS_SECRET_ACCESS_KEY=s3cr3t\n",
        )
        .unwrap();
        let ini = read_ini(&p);
        assert_eq!(ini["default"]["aws_access_key_id"], "AK1");
        assert_eq!(ini["work"]["aws_secret_access_key"], "s3cr3t");
    }
}
