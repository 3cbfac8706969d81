//! A key held by AWS KMS or a KMS-compatible service, named by an `awskms:` URI
//! (built with the `aws-kms` feature).
//!
//! - The client is the AWS SDK's, with the URI's `region`, `profile` and `endpoint`
//!   (an on-premises KMS-compatible service); credentials come from the SDK's usual
//!   chain (environment, profile files, instance or container roles), never from
//!   the configuration. Connect timeout 5 s, 3 attempts per call, 30 s per call.
//! - `GetPublicKey` tells the key's type. RSA keys (`RSA_2048/3072/4096`) sign
//!   through tough-kms (`RSASSA_PSS_SHA_256`, SHA-256 computed here, `DIGEST`
//!   messages), handed our client so that the endpoint override holds. ECDSA P-256
//!   keys (`ECC_NIST_P256`, which tough-kms 0.16 refuses) sign here with
//!   `ECDSA_SHA_256`: messages of up to 4096 bytes as `RAW`, longer ones as the
//!   SHA-256 `DIGEST` (KMS refuses raw messages over 4 KiB; both give a signature
//!   of the same message). KMS returns ECDSA signatures in DER, as TUF wants them.
//! - On open, a test message is signed and verified here with the public key, so a
//!   service whose RSA-PSS salt is not the digest length (32 bytes, as AWS KMS and
//!   every TUF verifier use) is refused at start-up.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::rand::SecureRandom;
use aws_sdk_kms::error::SdkError;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, KeyUsageType, MessageType, SigningAlgorithmSpec};
use aws_sdk_kms::Client;
use tough::key_source::KeySource;
use tough::schema::key::Key;
use tough::sign::Sign;
use tuf_mirror_config::AwsKmsKey;

use crate::error::KmsStep;
use crate::{public_key, KeyError, KeyId, KeyType};

/// The longest message KMS signs as `RAW`; longer ones are signed as their digest.
pub const MAX_RAW_MESSAGE: usize = 4096;

/// A signing key held by AWS KMS or a KMS-compatible service: ECDSA P-256 or RSA.
///
/// Cloning is cheap. `Debug` and `Display` show the URI, key type and key id.
#[derive(Clone)]
pub struct KmsKey {
    inner: Arc<Inner>,
}

struct Inner {
    uri: String,
    kms_key_id: String,
    client: Client,
    key_type: KeyType,
    public: Key,
    key_id: KeyId,
    /// tough-kms's signer, for RSA keys.
    rsa: Option<Box<dyn Sign>>,
}

impl KmsKey {
    /// Opens the key: builds the client, reads the public key, checks a test
    /// signature. Blocking (it runs the SDK on a runtime of its own, on a thread of
    /// its own, so it can be called from anywhere); [`KmsKey::open_async`] is the
    /// same inside an async runtime.
    ///
    /// # Errors
    ///
    /// [`KeyError::Kms`] naming the URI and the step (`GetPublicKey` when the
    /// service is unreachable or the key unknown, key type, self-check).
    pub fn open(config: &AwsKmsKey) -> Result<KmsKey, KeyError> {
        let uri = config.to_string();
        let config = config.clone();
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| KeyError::Kms {
                            uri: config.to_string(),
                            step: KmsStep::GetPublicKey,
                            retryable: true,
                            source: Some(Box::new(e)),
                        })?;
                    runtime.block_on(KmsKey::open_async(&config))
                })
                .join()
                .unwrap_or_else(|_| {
                    Err(KeyError::Kms {
                        uri,
                        step: KmsStep::GetPublicKey,
                        retryable: false,
                        source: None,
                    })
                })
        })
    }

    /// [`KmsKey::open`], in an async runtime.
    ///
    /// # Errors
    ///
    /// As [`KmsKey::open`].
    pub async fn open_async(config: &AwsKmsKey) -> Result<KmsKey, KeyError> {
        let uri = config.to_string();
        let client = client(config).await;
        let response = client
            .get_public_key()
            .key_id(&config.key_id)
            .send()
            .await
            .map_err(|e| KeyError::Kms {
                uri: uri.clone(),
                step: KmsStep::GetPublicKey,
                retryable: transient(&e),
                source: Some(Box::new(e)),
            })?;
        let type_err = |found: String| KeyError::Kms {
            uri: uri.clone(),
            step: KmsStep::KeyType { found },
            retryable: false,
            source: None,
        };
        // `KeySpec`, or the deprecated `CustomerMasterKeySpec` that older services and
        // moto (5.2) send alone.
        #[allow(deprecated)]
        let spec = response.key_spec().cloned().or_else(|| {
            response
                .customer_master_key_spec()
                .map(|s| KeySpec::from(s.as_str()))
        });
        let usage = response.key_usage().cloned();
        let algorithms = response.signing_algorithms().to_vec();
        if usage != Some(KeyUsageType::SignVerify) {
            return Err(type_err(format!(
                "a key of usage {}",
                usage.as_ref().map_or("(none)", |u| u.as_str())
            )));
        }
        let wanted = match &spec {
            Some(KeySpec::EccNistP256) => SigningAlgorithmSpec::EcdsaSha256,
            Some(KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096) => {
                SigningAlgorithmSpec::RsassaPssSha256
            }
            other => {
                return Err(type_err(format!(
                    "a key of spec {}",
                    other.as_ref().map_or("(none)", |s| s.as_str())
                )))
            }
        };
        if !algorithms.contains(&wanted) {
            return Err(type_err(format!(
                "a key that does not offer {}",
                wanted.as_str()
            )));
        }
        let der = response
            .public_key()
            .map(|b| b.as_ref().to_vec())
            .unwrap_or_default();
        let (key_type, mut public) = public_key::from_spki(&der).map_err(type_err)?;
        let rsa = if matches!(key_type, KeyType::Rsa { .. }) {
            let source = tough_kms::KmsKeySource {
                profile: config.profile.clone(),
                key_id: config.key_id.clone(),
                client: Some(client.clone()),
                signing_algorithm: tough_kms::KmsSigningAlgorithm::RsassaPssSha256,
            };
            let signer = source.as_sign().await.map_err(|e| KeyError::Kms {
                uri: uri.clone(),
                step: KmsStep::RsaSigner,
                retryable: true,
                source: Some(e),
            })?;
            public = signer.tuf_key();
            Some(signer)
        } else {
            None
        };
        let key_id = KeyId::of(&public).map_err(|e| type_err(format!("unusable ({e})")))?;
        let key = KmsKey {
            inner: Arc::new(Inner {
                uri,
                kms_key_id: config.key_id.clone(),
                client,
                key_type,
                public,
                key_id,
                rsa,
            }),
        };
        let sig = key.sign_message(public_key::CHECK_MESSAGE).await?;
        if !public_key::verify(&key.inner.public, public_key::CHECK_MESSAGE, &sig) {
            return Err(KeyError::Kms {
                uri: key.inner.uri.clone(),
                step: KmsStep::SelfCheck,
                retryable: false,
                source: None,
            });
        }
        Ok(key)
    }

    /// The key URI.
    pub fn uri(&self) -> &str {
        &self.inner.uri
    }

    /// The key's type.
    pub fn key_type(&self) -> KeyType {
        self.inner.key_type
    }

    /// The TUF key id of the public key.
    pub fn key_id(&self) -> &KeyId {
        &self.inner.key_id
    }

    /// The public key as TUF metadata lists it.
    pub fn public_key(&self) -> &Key {
        &self.inner.public
    }

    async fn sign_message(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        let inner = &self.inner;
        let sign_err = |source: Box<dyn std::error::Error + Send + Sync>| KeyError::Kms {
            uri: inner.uri.clone(),
            step: KmsStep::Sign,
            retryable: true,
            source: Some(source),
        };
        if let Some(rsa) = &inner.rsa {
            let rng = aws_lc_rs::rand::SystemRandom::new();
            return rsa.sign(msg, &rng).await.map_err(sign_err);
        }
        let (message, message_type) = if msg.len() <= MAX_RAW_MESSAGE {
            (msg.to_vec(), MessageType::Raw)
        } else {
            (digest(&SHA256, msg).as_ref().to_vec(), MessageType::Digest)
        };
        let response = inner
            .client
            .sign()
            .key_id(&inner.kms_key_id)
            .message(Blob::new(message))
            .message_type(message_type)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|e| sign_err(Box::new(e)))?;
        response
            .signature()
            .map(|b| b.as_ref().to_vec())
            .ok_or_else(|| sign_err("the response holds no signature".into()))
    }
}

/// The SDK client for `config`.
async fn client(config: &AwsKmsKey) -> Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(10))
                .operation_timeout(Duration::from_secs(30))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(3));
    if let Some(region) = &config.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(profile) = &config.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(endpoint) = &config.endpoint {
        loader = loader.endpoint_url(endpoint.as_str().trim_end_matches('/'));
    }
    Client::new(&loader.load().await)
}

/// Whether an SDK error may go away by itself (no connection, timeout, throttling,
/// a service-side failure).
fn transient<E, R>(e: &SdkError<E, R>) -> bool {
    matches!(
        e,
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_)
    )
}

impl fmt::Debug for KmsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsKey")
            .field("uri", &self.inner.uri)
            .field("key_type", &self.inner.key_type)
            .field("key_id", &self.inner.key_id.as_str())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for KmsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} key {} ({})",
            self.inner.key_type, self.inner.key_id, self.inner.uri
        )
    }
}

#[tough::async_trait]
impl Sign for KmsKey {
    fn tuf_key(&self) -> Key {
        self.inner.public.clone()
    }

    async fn sign(
        &self,
        msg: &[u8],
        _rng: &(dyn SecureRandom + Sync),
    ) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync + 'static>> {
        Ok(self.sign_message(msg).await?)
    }
}

/// `as_sign` hands out the opened key; `write` is refused (keys are made in KMS).
#[tough::async_trait]
impl KeySource for KmsKey {
    async fn as_sign(
        &self,
    ) -> Result<Box<dyn Sign>, Box<dyn std::error::Error + Send + Sync + 'static>> {
        Ok(Box::new(self.clone()))
    }

    async fn write(
        &self,
        _value: &str,
        _key_id_hex: &str,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        Err(Box::new(KeyError::Unsupported {
            uri: self.inner.uri.clone(),
            reason: "KMS keys are not written through tough",
        }))
    }
}
