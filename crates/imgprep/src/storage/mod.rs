//! Object storage: `s3://bucket/prefix` URIs next to local paths, through
//! Apache Arrow's `object_store` (signing, retries with backoff, multipart).
//!
//! Settings are the standard AWS ones (see [`settings`]); secrets are never
//! formatted into messages. The calls here are blocking: a small shared
//! tokio runtime runs the requests, so the pipeline's worker threads can
//! read objects as they read files.

mod settings;
pub mod transfer;

pub use settings::S3Settings;

use crate::checksum::EtagSummer;
use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{
    Attribute, Attributes, GetOptions, ObjectStore, ObjectStoreExt, PutMultipartOptions,
    PutOptions, PutPayload,
};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

/// User metadata holding the S3-style ETag of an upload, on stores whose
/// own ETags are not content hashes.
const ETAG_META: &str = "imgprepetag";

/// URI schemes read through object storage; anything else is a local path.
const SCHEMES: [&str; 6] = ["s3", "s3a", "az", "gs", "http", "https"];

/// `s3://bucket/key`, `az://container/key`, `gs://bucket/key`,
/// `http(s)://host/path` (rather than a local path).
pub fn is_remote(s: &str) -> bool {
    s.split_once("://")
        .is_some_and(|(scheme, _)| SCHEMES.contains(&scheme))
}

fn scheme_lists(scheme: &str) -> bool {
    !scheme.starts_with("http")
}

/// Why a storage call failed, in one line, without secrets.
#[derive(Debug, thiserror::Error)]
#[error("{uri}: {message}")]
pub struct StorageError {
    pub uri: String,
    pub message: String,
    /// Not found (a missing key), as opposed to a failure.
    pub not_found: bool,
}

type Result<T> = std::result::Result<T, StorageError>;

/// Whether a storage error's message says the server was not reached or
/// stopped answering (no HTTP status came back), rather than an answer
/// about one object.
pub fn is_unreachable(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "error sending request",
        "timed out",
        "timeout",
        "connection refused",
        "connection reset",
        "connection closed",
        "broken pipe",
        "dns error",
        "tcp connect error",
    ]
    .iter()
    .any(|s| m.contains(s))
}

/// How the requests an [`Outage`] stopped begin their failure.
pub const NOT_TRIED: &str = "not tried:";

/// The first failure to reach the server in a batch of transfers. The
/// requests after it are not made (each would wait out the same timeouts:
/// at 60 s a request, a push of 1,000 files to a stopped server took
/// hours) and fail with its reason.
#[derive(Default)]
pub struct Outage(std::sync::Mutex<Option<String>>);

impl Outage {
    /// Err: an earlier request found the server gone; don't try.
    pub fn check(&self) -> std::result::Result<(), String> {
        match &*self.0.lock().unwrap() {
            Some(first) => Err(format!(
                "{NOT_TRIED} the server stopped answering an earlier request ({first})"
            )),
            None => Ok(()),
        }
    }

    /// Notes a request's failure; the first that says the server was not
    /// reached stops the batch.
    pub fn note(&self, message: &str) {
        if is_unreachable(message) {
            self.0
                .lock()
                .unwrap()
                .get_or_insert_with(|| message.to_string());
        }
    }
}

fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("imgprep-io")
            .enable_all()
            .build()
            .expect("tokio runtime starts")
    })
}

/// Runs a future to completion on the shared runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    rt().block_on(f)
}

fn one_line(e: &object_store::Error) -> (String, bool) {
    let not_found = matches!(e, object_store::Error::NotFound { .. });
    if not_found {
        return ("not found".into(), true);
    }
    let line = first_line(&e.to_string());
    if is_unreachable(&line) {
        // no answer at all: say so before object_store's retry details
        return (
            format!("no answer from the server (refused, timed out or cut off): {line}"),
            false,
        );
    }
    (line, false)
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    let len = s[start..].find(close)?;
    Some(&s[start..start + len])
}

/// object_store's nested error text made one short line: the HTTP status
/// and S3's error code and message when there are, with a hint for
/// credential errors.
fn first_line(s: &str) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let status = between(&flat, "status code: ", ":").map(str::trim);
    let code = between(&flat, "<Code>", "</Code>");
    let msg = between(&flat, "<Message>", "</Message>");
    let mut t = match (status, code) {
        (Some(st), Some(c)) => format!("{st}, {c}: {}", msg.unwrap_or("")),
        (Some(st), None) => format!("{st} ({flat})"),
        _ => flat.clone(),
    };
    let denied = status.is_some_and(|s| s.starts_with("401") || s.starts_with("403"))
        || code.is_some_and(|c| {
            matches!(
                c,
                "AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch"
            )
        });
    if denied {
        t = format!(
            "access denied ({t}): check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, and AWS_REGION"
        );
    }
    if t.len() > 300 {
        let mut cut = 300;
        while !t.is_char_boundary(cut) {
            cut -= 1;
        }
        t.truncate(cut);
        t.push_str("...");
    }
    t
}

/// One bucket on one store.
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    /// Object stores sign URLs for programs that read objects themselves (ffmpeg).
    signer: Option<Arc<dyn object_store::signer::Signer>>,
    scheme: String,
    bucket: String,
}

/// A parsed `s3://bucket/key` or `http(s)://host[:port]/path` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    /// `s3` (also for `s3a://`), `http` or `https`.
    pub scheme: String,
    /// The bucket, or the host and port of an HTTP server.
    pub bucket: String,
    /// Key or prefix, without a leading `/`.
    pub key: String,
}

impl Uri {
    /// A key below this URI's key, relative to it (None: not below it).
    pub fn relative<'a>(&self, key: &'a str) -> Option<&'a str> {
        match self.key.trim_end_matches('/') {
            "" => Some(key),
            base => key.strip_prefix(base)?.strip_prefix('/'),
        }
    }

    pub fn parse(s: &str) -> std::result::Result<Uri, String> {
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| format!("{s}: not a URI"))?;
        if !SCHEMES.contains(&scheme) {
            return Err(format!(
                "{s}: unsupported scheme {scheme}:// (s3://, az://, gs://, http:// and https:// are supported)"
            ));
        }
        let http = scheme.starts_with("http");
        if http && rest.contains(['?', '#']) {
            return Err(format!(
                "{s}: query strings and fragments are not supported in http(s) URLs"
            ));
        }
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!(
                "{s}: no {}",
                if http { "host" } else { "bucket name" }
            ));
        }
        // an http(s) URL's path is percent-encoded (`img%200.jpg` is the file
        // `img 0.jpg`, as curl and browsers read it); object keys are plain text
        let key = if http {
            percent_encoding::percent_decode_str(key)
                .decode_utf8()
                .map_err(|_| format!("{s}: its path does not decode to UTF-8 text"))?
                .into_owned()
        } else {
            key.to_string()
        };
        Ok(Uri {
            scheme: if scheme == "s3a" {
                "s3".into()
            } else {
                scheme.into()
            },
            bucket: bucket.to_string(),
            key: key.trim_start_matches('/').to_string(),
        })
    }

    /// Whether the store can list keys (S3, Azure and GCS can; a plain
    /// HTTP server cannot).
    pub fn can_list(&self) -> bool {
        scheme_lists(&self.scheme)
    }

    pub fn join(&self, rel: &str) -> Uri {
        let key = match (self.key.trim_end_matches('/'), rel.trim_start_matches('/')) {
            ("", r) => r.to_string(),
            (k, "") => k.to_string(),
            (k, r) => format!("{k}/{r}"),
        };
        Uri {
            key,
            ..self.clone()
        }
    }
}

impl std::fmt::Display for Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}/{}", self.scheme, self.bucket, self.key)
    }
}

/// What a listing or HEAD says of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// Without quotes.
    pub etag: Option<String>,
    /// Nanoseconds since the epoch.
    pub modified_ns: i128,
}

fn info_of(m: &object_store::ObjectMeta) -> ObjectInfo {
    ObjectInfo {
        key: m.location.to_string(),
        size: m.size,
        etag: m.e_tag.as_ref().map(|e| e.trim_matches('"').to_string()),
        modified_ns: m.last_modified.timestamp_nanos_opt().unwrap_or(0) as i128,
    }
}

impl Bucket {
    /// Opens `bucket` with the settings (environment and AWS profile files).
    pub fn open(uri: &Uri, s: &S3Settings) -> Result<Bucket> {
        let mut signer: Option<Arc<dyn object_store::signer::Signer>> = None;
        let built = match uri.scheme.as_str() {
            "s3" => s.build_s3(&uri.bucket).map(|s3| {
                signer = Some(s3.clone());
                s3 as Arc<dyn ObjectStore>
            }),
            "az" => s.build_azure(&uri.bucket).map(|az| {
                signer = Some(az.clone());
                az as Arc<dyn ObjectStore>
            }),
            "gs" => s.build_gcs(&uri.bucket).map(|gs| {
                signer = Some(gs.clone());
                gs as Arc<dyn ObjectStore>
            }),
            _ => s.build_http(&format!("{}://{}", uri.scheme, uri.bucket)),
        };
        let store = built.map_err(|m| StorageError {
            uri: format!("{}://{}", uri.scheme, uri.bucket),
            message: m,
            not_found: false,
        })?;
        Ok(Bucket {
            store,
            signer,
            scheme: uri.scheme.clone(),
            bucket: uri.bucket.clone(),
        })
    }

    /// The object key `key` as the store's path: the exact UTF-8 text (no
    /// percent-encoding: `café/x.jpg` is the key `café/x.jpg`), empty
    /// segments dropped (`a//b` is `a/b`). A key with a control character or
    /// a `.` or `..` segment cannot name an object and is refused.
    fn path(&self, key: &str) -> Result<ObjPath> {
        let joined: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
        ObjPath::parse(joined.join("/")).map_err(|e| StorageError {
            uri: self.uri(key),
            message: format!("not an object key: {e}"),
            not_found: false,
        })
    }

    fn err(&self, key: &str, e: object_store::Error) -> StorageError {
        let (message, not_found) = one_line(&e);
        StorageError {
            uri: format!("{}://{}/{key}", self.scheme, self.bucket),
            message,
            not_found,
        }
    }

    pub fn uri(&self, key: &str) -> String {
        format!("{}://{}/{key}", self.scheme, self.bucket)
    }

    /// A URL another program can GET `key` from for `valid` (range requests
    /// included): the object's own URL for http(s), a signed one (S3
    /// presigned, Azure service SAS, GCS signed) for a store.
    pub fn read_url(&self, key: &str, valid: std::time::Duration) -> Result<String> {
        if self.scheme.starts_with("http") {
            // the key encoded again, one segment at a time
            const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
                .add(b' ')
                .add(b'"')
                .add(b'#')
                .add(b'%')
                .add(b'<')
                .add(b'>')
                .add(b'?')
                .add(b'`')
                .add(b'{')
                .add(b'}');
            let path: Vec<String> = key
                .split('/')
                .map(|seg| percent_encoding::utf8_percent_encode(seg, SEGMENT).to_string())
                .collect();
            return Ok(self.uri(&path.join("/")));
        }
        let Some(signer) = &self.signer else {
            return Err(StorageError {
                uri: self.uri(key),
                message: format!(
                    "{}:// objects cannot be handed to another program; `imgprep pull` them first",
                    self.scheme
                ),
                not_found: false,
            });
        };
        let path = self.path(key)?;
        block_on(signer.signed_url(object_store::signer::Method::GET, &path, valid))
            .map(|u| u.to_string())
            .map_err(|e| self.err(key, e))
    }

    /// See [`Uri::can_list`].
    pub fn can_list(&self) -> bool {
        scheme_lists(&self.scheme)
    }

    fn listing_stuck(
        &self,
        prefix: &str,
        listed: usize,
        wait: std::time::Duration,
    ) -> StorageError {
        StorageError {
            uri: self.uri(prefix),
            message: format!(
                "the listing gave no new object in {} s (after {listed}): the server is stuck or \
                 its pages loop; given up on (IMGPREP_IO_TIMEOUT_SECONDS sets the wait)",
                wait.as_secs()
            ),
            not_found: false,
        }
    }

    fn no_listing(&self, prefix: &str) -> StorageError {
        StorageError {
            uri: self.uri(prefix),
            message: format!(
                "cannot list a {}:// location (plain HTTP has no listing): name the files in a csv or lst source",
                self.scheme
            ),
            not_found: false,
        }
    }

    /// Every object under `prefix` (recursively), sorted by key.
    pub fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        if !self.can_list() {
            return Err(self.no_listing(prefix));
        }
        let p = self.path(prefix.trim_end_matches('/'))?;
        let prefix_opt = (!prefix.trim_matches('/').is_empty()).then_some(&p);
        // a listing must name a new object every IMGPREP_IO_TIMEOUT_SECONDS:
        // a server whose pages trickle, or that answers "truncated" with the
        // same page or no objects for ever, is given up on
        let wait = settings::io_timeout();
        let mut out: Vec<ObjectInfo> = block_on(async {
            let mut s = self.store.list(prefix_opt);
            let mut v = Vec::new();
            let mut seen = std::collections::HashSet::new();
            loop {
                let next = tokio::time::timeout(wait, s.next())
                    .await
                    .map_err(|_| self.listing_stuck(prefix, v.len(), wait))?;
                let Some(m) = next else { break };
                let info = info_of(&m.map_err(|e| self.err(prefix, e))?);
                if !seen.insert(info.key.clone()) {
                    return Err(StorageError {
                        uri: self.uri(prefix),
                        message: format!(
                            "the listing names {} twice: the server's pages repeat (given up \
                             on after {} objects)",
                            info.key,
                            v.len()
                        ),
                        not_found: false,
                    });
                }
                v.push(info);
            }
            Ok::<_, StorageError>(v)
        })?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// The objects directly under `prefix` (a folder: `a/b/`) and the
    /// sub-folders' names, both sorted.
    pub fn list_dir(&self, prefix: &str) -> Result<(Vec<ObjectInfo>, Vec<String>)> {
        if !self.can_list() {
            return Err(self.no_listing(prefix));
        }
        let trimmed = prefix.trim_matches('/');
        let p = self.path(trimmed)?;
        // one call that reads every page: bounded as a whole, by ten times
        // IMGPREP_IO_TIMEOUT_SECONDS
        let wait = settings::io_timeout() * 10;
        let r = block_on(async {
            tokio::time::timeout(
                wait,
                self.store
                    .list_with_delimiter((!trimmed.is_empty()).then_some(&p)),
            )
            .await
        })
        .map_err(|_| self.listing_stuck(prefix, 0, wait))?
        .map_err(|e| self.err(prefix, e))?;
        let mut files: Vec<ObjectInfo> = r.objects.iter().map(info_of).collect();
        files.sort_by(|a, b| a.key.cmp(&b.key));
        let mut dirs: Vec<String> = r
            .common_prefixes
            .iter()
            .filter_map(|d| d.filename().map(str::to_string))
            .collect();
        dirs.sort();
        Ok((files, dirs))
    }

    /// Whether the store's own ETag is S3's MD5-based one. Elsewhere (Azure,
    /// GCS, HTTP servers) an ETag is only a version tag, so imgprep keeps the
    /// S3-style ETag of what it uploads in the object's metadata.
    fn md5_etags(&self) -> bool {
        self.scheme == "s3"
    }

    /// The S3-style content ETag of a stored object: S3's own, else the one
    /// imgprep stored in the metadata at upload (None when not known).
    fn content_etag(&self, meta: &object_store::ObjectMeta, attrs: &Attributes) -> Option<String> {
        if self.md5_etags() {
            return info_of(meta).etag;
        }
        attrs
            .get(&Attribute::Metadata(ETAG_META.into()))
            .map(|v| v.to_string())
    }

    /// HEAD: `None` when there is no such object. `etag` is the content
    /// ETag (see [`Bucket::content_etag`]).
    pub fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        let path = self.path(key)?;
        let r = if self.md5_etags() {
            block_on(self.store.head(&path)).map(|m| info_of(&m))
        } else {
            let opts = GetOptions {
                head: true,
                ..Default::default()
            };
            block_on(self.store.get_opts(&path, opts)).map(|r| ObjectInfo {
                etag: self.content_etag(&r.meta, &r.attributes),
                ..info_of(&r.meta)
            })
        };
        match r {
            Ok(info) => Ok(Some(info)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(key, e)),
        }
    }

    /// Removes one object (none there is not an error).
    pub fn delete(&self, key: &str) -> Result<()> {
        match block_on(self.store.delete(&self.path(key)?)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(key, e)),
        }
    }

    pub fn get(&self, key: &str) -> Result<Bytes> {
        Ok(self.get_at_most(key, u64::MAX)?.unwrap_or_default())
    }

    /// [`Bucket::get`] of an object of at most `max` bytes: `Ok(Err(size))`
    /// for a larger one, known from the answer's length before its body is
    /// read.
    pub fn get_at_most(&self, key: &str, max: u64) -> Result<std::result::Result<Bytes, u64>> {
        block_on(async {
            let r = self
                .store
                .get(&self.path(key)?)
                .await
                .map_err(|e| self.err(key, e))?;
            if r.meta.size > max {
                return Ok(Err(r.meta.size));
            }
            // sized from the listing, within reason (a header can claim anything)
            let mut all = bytes::BytesMut::with_capacity(r.meta.size.min(64 << 20) as usize);
            let mut stream = r.into_stream();
            let mut floor = RateFloor::new();
            while let Some(chunk) = floor.next(&mut stream).await {
                all.extend_from_slice(&chunk.map_err(|e| self.err(key, e))?);
            }
            Ok(Ok(all.freeze()))
        })
    }

    /// A blocking reader over an object's bytes, fetched as they are read
    /// (one GET; retried by the store up to the first byte).
    pub fn reader(&self, key: &str) -> Result<ObjectReader> {
        let r = block_on(self.store.get(&self.path(key)?)).map_err(|e| self.err(key, e))?;
        Ok(ObjectReader {
            size: r.meta.size,
            stream: r.into_stream(),
            chunk: Bytes::new(),
            floor: RateFloor::new(),
        })
    }

    /// Streams an object into `dest` atomically (a hidden partial file,
    /// renamed when complete); returns (size, ETag of the object).
    pub fn download(&self, key: &str, dest: &Path) -> Result<(u64, Option<String>)> {
        let io = |e: std::io::Error| StorageError {
            uri: dest.display().to_string(),
            message: e.to_string(),
            not_found: false,
        };
        if let Some(d) = dest.parent() {
            std::fs::create_dir_all(d).map_err(io)?;
        }
        let mut f = crate::output::AtomicFile::create(dest).map_err(io)?;
        let (size, etag) = block_on(async {
            use std::io::Write;
            let r = self
                .store
                .get(&self.path(key)?)
                .await
                .map_err(|e| self.err(key, e))?;
            let etag = self.content_etag(&r.meta, &r.attributes);
            let mut stream = r.into_stream();
            let mut size = 0u64;
            let mut floor = RateFloor::new();
            while let Some(chunk) = floor.next(&mut stream).await {
                let chunk = chunk.map_err(|e| self.err(key, e))?;
                size += chunk.len() as u64;
                f.write_all(&chunk).map_err(io)?;
            }
            Ok::<_, StorageError>((size, etag))
        })?;
        f.commit().map_err(io)?;
        Ok((size, etag))
    }

    /// Uploads a local file: one PUT up to `part_size`, else a multipart
    /// upload in parts of exactly `part_size` (so the ETag is the one
    /// [`EtagSummer`] computes for that part size). S3 shows the object
    /// only when complete. Returns the ETag S3 reports.
    pub fn upload(&self, src: &Path, key: &str, part_size: u64) -> Result<Option<String>> {
        let io = |e: std::io::Error| StorageError {
            uri: src.display().to_string(),
            message: e.to_string(),
            not_found: false,
        };
        let mut f = std::fs::File::open(src).map_err(io)?;
        let size = f.metadata().map_err(io)?.len();
        let path = self.path(key)?;
        // where the store's ETag says nothing of the content, the S3-style
        // one goes along as metadata (one more read of the file)
        let mut attrs = Attributes::new();
        let mut etag = None;
        if !self.md5_etags() {
            let e = crate::checksum::file_etag(src, part_size).map_err(io)?;
            attrs.insert(Attribute::Metadata(ETAG_META.into()), e.clone().into());
            etag = Some(e);
        }
        let returned = |r: object_store::PutResult| {
            etag.clone()
                .or_else(|| r.e_tag.map(|e| e.trim_matches('"').to_string()))
        };
        if size <= part_size {
            let mut buf = Vec::with_capacity(size as usize);
            f.read_to_end(&mut buf).map_err(io)?;
            let opts = PutOptions::from(attrs);
            let r = block_on(self.store.put_opts(&path, PutPayload::from(buf), opts))
                .map_err(|e| self.err(key, e))?;
            return Ok(returned(r));
        }
        // the parts are put by hand (not with object_store's `WriteMultipart`,
        // whose `finish` returns the abort's error in place of the one that
        // made it abort, and which leaves the upload when a part fails)
        block_on(async {
            let mut up = self
                .store
                .put_multipart_opts(&path, PutMultipartOptions::from(attrs))
                .await
                .map_err(|e| self.err(key, e))?;
            let sent = async {
                let mut inflight: futures::stream::FuturesUnordered<object_store::UploadPart> =
                    Default::default();
                loop {
                    let mut part = Vec::with_capacity(part_size.min(size) as usize);
                    (&mut f)
                        .take(part_size)
                        .read_to_end(&mut part)
                        .map_err(io)?;
                    let last = (part.len() as u64) < part_size;
                    if !part.is_empty() {
                        // four parts in flight at most
                        while inflight.len() >= 4 {
                            if let Some(r) = inflight.next().await {
                                r.map_err(|e| self.err(key, e))?;
                            }
                        }
                        inflight.push(up.put_part(PutPayload::from(part)));
                    }
                    if last {
                        break;
                    }
                }
                while let Some(r) = inflight.next().await {
                    r.map_err(|e| self.err(key, e))?;
                }
                drop(inflight);
                up.complete().await.map_err(|e| self.err(key, e))
            }
            .await;
            match sent {
                Ok(r) => Ok(returned(r)),
                // the parts sent so far are removed (a store keeps, and
                // bills, an unfinished upload's parts until then)
                Err(mut e) => {
                    if let Err(a) = up.abort().await {
                        let (why, _) = one_line(&a);
                        e.message
                            .push_str(&format!(" (its unfinished upload was not removed: {why})"));
                    }
                    Err(e)
                }
            }
        })
    }
}

/// An object being read: see [`Bucket::reader`].
pub struct ObjectReader {
    /// The object's size.
    pub size: u64,
    stream: futures::stream::BoxStream<'static, object_store::Result<Bytes>>,
    chunk: Bytes,
    floor: RateFloor,
}

/// The least a server must send in each `IMGPREP_IO_TIMEOUT_SECONDS` of
/// waiting for it (64 KiB, about 2 KB/s at the default 30 s): a body that
/// trickles a byte at a time is given up on, as one that stops is.
const RATE_FLOOR: u64 = 64 << 10;

/// Counts the time spent waiting for a body's chunks (not the time the
/// reader spends on them) and the bytes they bring.
struct RateFloor {
    window: std::time::Duration,
    waited: std::time::Duration,
    got: u64,
}

impl RateFloor {
    fn new() -> Self {
        RateFloor {
            window: settings::io_timeout(),
            waited: std::time::Duration::ZERO,
            got: 0,
        }
    }

    /// The next chunk, or an error once a window of waiting brought less
    /// than the floor.
    async fn next<S>(&mut self, stream: &mut S) -> Option<object_store::Result<Bytes>>
    where
        S: futures::Stream<Item = object_store::Result<Bytes>> + Unpin,
    {
        let start = std::time::Instant::now();
        let chunk = stream.next().await;
        self.waited += start.elapsed();
        if let Some(Ok(c)) = &chunk {
            self.got += c.len() as u64;
        }
        if self.waited >= self.window {
            if self.got < RATE_FLOOR {
                return Some(Err(object_store::Error::Generic {
                    store: "transfer",
                    source: format!(
                        "the server sent {} bytes in {} s of waiting, under the floor of {} KiB \
                         per IMGPREP_IO_TIMEOUT_SECONDS ({} s): given up on",
                        self.got,
                        self.waited.as_secs(),
                        RATE_FLOOR >> 10,
                        self.window.as_secs()
                    )
                    .into(),
                }));
            }
            self.waited = std::time::Duration::ZERO;
            self.got = 0;
        }
        chunk
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match block_on(self.floor.next(&mut self.stream)) {
                None => return Ok(0),
                Some(Ok(c)) => self.chunk = c,
                Some(Err(e)) => return Err(std::io::Error::other(one_line(&e).0)),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        bytes::Buf::advance(&mut self.chunk, n);
        Ok(n)
    }
}

/// Buckets opened so far (one client per bucket, shared by threads).
pub fn bucket_for(uri: &Uri) -> Result<Arc<Bucket>> {
    static OPEN: OnceLock<Mutex<HashMap<String, Arc<Bucket>>>> = OnceLock::new();
    let map = OPEN.get_or_init(Default::default);
    let name = format!("{}://{}", uri.scheme, uri.bucket);
    if let Some(b) = map.lock().unwrap().get(&name) {
        return Ok(b.clone());
    }
    let b = Arc::new(Bucket::open(uri, &S3Settings::from_env())?);
    map.lock().unwrap().insert(name, b.clone());
    Ok(b)
}

/// Part sizes (MiB) that common uploaders use: rclone and S3's minimum (5),
/// the AWS CLI, boto3 and ours (8), s3cmd (15), mc (16), and larger powers.
const COMMON_PART_MIB: [u64; 10] = [5, 8, 15, 16, 32, 50, 64, 100, 128, 256];

/// Whether a local file has the content an S3 ETag describes: the plain
/// MD5, or a multipart ETag `…-N` checked against every part size that
/// gives N parts among those uploaders use and `size / N` rounded up to a
/// MiB (one read of the file sums them all).
pub fn etag_matches(path: &Path, size: u64, etag: &str) -> bool {
    let parts: Option<u64> = etag.split_once('-').and_then(|(_, n)| n.parse().ok());
    let mib = 1 << 20;
    let mut candidates = vec![crate::checksum::ETAG_PART_SIZE];
    if let Some(n) = parts.filter(|&n| n > 1) {
        candidates = COMMON_PART_MIB.iter().map(|m| m * mib).collect();
        candidates.push(size.div_ceil(n).div_ceil(mib) * mib);
        candidates.push(size.div_ceil(n));
        candidates.retain(|&p| p > 0 && size.div_ceil(p) == n);
        candidates.sort_unstable();
        candidates.dedup();
    }
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut summers: Vec<EtagSummer> = candidates.iter().map(|&p| EtagSummer::new(p)).collect();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => summers.iter_mut().for_each(|s| s.update(&buf[..n])),
            Err(_) => return false,
        }
    }
    summers.into_iter().any(|s| s.finish() == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_joins_uris() {
        let u = Uri::parse("s3://b/some/prefix/").unwrap();
        assert_eq!((u.bucket.as_str(), u.key.as_str()), ("b", "some/prefix/"));
        assert_eq!(u.join("x/y.rec").to_string(), "s3://b/some/prefix/x/y.rec");
        assert_eq!(Uri::parse("s3://b").unwrap().join("k").key, "k");
        assert!(Uri::parse("s3:///k").is_err());
        assert!(Uri::parse("ftp://b/k").unwrap_err().contains("unsupported"));
        assert_eq!(Uri::parse("s3a://b/k").unwrap().to_string(), "s3://b/k");
        assert_eq!(Uri::parse("az://c/k/x").unwrap().to_string(), "az://c/k/x");
        assert!(is_remote("s3://b/k") && !is_remote("/tmp/s3:/x") && !is_remote("a://b"));
        let h = Uri::parse("http://127.0.0.1:8000/data/a.jpg").unwrap();
        assert_eq!(
            (h.scheme.as_str(), h.bucket.as_str(), h.key.as_str()),
            ("http", "127.0.0.1:8000", "data/a.jpg")
        );
        assert_eq!(h.to_string(), "http://127.0.0.1:8000/data/a.jpg");
        assert!(Uri::parse("https://h/x?sig=1").is_err());
        assert!(is_remote("https://h/x"));
        // an http(s) path is percent-encoded, a store's key is not
        let h = Uri::parse("http://h/cat%20%C3%A9/img%200.jpg").unwrap();
        assert_eq!(h.key, "cat é/img 0.jpg");
        assert_eq!(
            Uri::parse("http://h/a b/100%.jpg").unwrap().key,
            "a b/100%.jpg"
        );
        assert!(Uri::parse("http://h/%FF.jpg").is_err());
        assert_eq!(Uri::parse("s3://b/img%200.jpg").unwrap().key, "img%200.jpg");
    }

    #[test]
    fn errors_are_one_short_line() {
        let e = "Generic S3 error: Error performing list request: Error performing GET http://127.0.0.1:1/b?list-type=2 in 834µs - Server returned non-2xx status code: 403 Forbidden: <?xml version=\"1.0\"?>\n<Error><Code>AccessDenied</Code><Message>Forbidden: Invalid signature</Message></Error>";
        let t = first_line(e);
        assert!(
            t.starts_with(
                "access denied (403 Forbidden, AccessDenied: Forbidden: Invalid signature)"
            ),
            "{t}"
        );
        assert!(!t.contains('\n'));
    }

    #[test]
    fn etag_match_finds_the_part_size() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data = vec![5u8; (3 << 20) + 7];
        std::fs::write(&p, &data).unwrap();
        let size = data.len() as u64;
        for part in [1u64 << 20, 2 << 20, 8 << 20] {
            let e = crate::checksum::file_etag(&p, part).unwrap();
            assert!(etag_matches(&p, size, &e), "{part}");
        }
        assert!(!etag_matches(&p, size, "0123-2"));
        // rclone's 5 MiB parts on a 6 MiB file: 2 parts, not size / 2
        let q = dir.path().join("g");
        std::fs::write(&q, vec![7u8; (6 << 20) + 1]).unwrap();
        let e = crate::checksum::file_etag(&q, 5 << 20).unwrap();
        assert!(
            e.ends_with("-2") && etag_matches(&q, (6 << 20) + 1, &e),
            "{e}"
        );
    }
}
