//! A private key held by a PKCS#11 token (an HSM, SoftHSM2, a smart card), named by
//! a `pkcs11:` URI (RFC 7512).
//!
//! - The module is loaded and initialized once per process and shared by every key
//!   on it (a second `C_Initialize` would fail).
//! - The PIN is read from the `pin-source` file, under the same rules as key files
//!   (regular file, no access for group or others), each time a session logs in,
//!   and is not kept: it lives in a zeroized buffer until `C_Login` returns.
//! - One session per key, behind a mutex (a session is not to be used from two
//!   threads at once). Signing runs on tokio's blocking pool. When signing fails
//!   the session is dropped, and the next signature opens and logs in anew: an HSM
//!   that was restarted or unplugged is picked up again.
//! - Mechanisms: ECDSA P-256 `CKM_ECDSA` over the SHA-256 digest (SoftHSM2 2.6 has
//!   no `CKM_ECDSA_SHA256`), its raw `r || s` re-encoded as DER for TUF; Ed25519
//!   `CKM_EDDSA` (pure); RSA `CKM_SHA256_RSA_PKCS_PSS` with MGF1-SHA256 and a
//!   32-byte salt (what securesystemslib and aws-lc-rs verify).
//! - On open, a test message is signed and verified with the public key read from
//!   the token: a public key object of another key, or a mechanism the token
//!   implements differently, refuses start-up.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::rand::SecureRandom;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType as CkKeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use tough::key_source::KeySource;
use tough::schema::key::Key;
use tough::sign::Sign;
use tuf_mirror_config::Pkcs11Key as Pkcs11Uri;

use crate::error::Pkcs11Step;
use crate::{public_key, secret_file, KeyError, KeyId, KeyType};

/// A signing key on a PKCS#11 token: ECDSA P-256, Ed25519 or RSA.
///
/// Cloning is cheap (the session is shared). `Debug` and `Display` show the URI,
/// the key type and the key id; the PIN is never held after login.
#[derive(Clone)]
pub struct Pkcs11Key {
    inner: Arc<Inner>,
}

struct Inner {
    uri: String,
    config: Pkcs11Uri,
    module: Pkcs11,
    slot: Slot,
    key_type: KeyType,
    public: Key,
    key_id: KeyId,
    session: Mutex<Option<Live>>,
}

/// An open, logged-in session and the private key's handle in it.
struct Live {
    session: Session,
    key: ObjectHandle,
}

/// Modules loaded by this process, by path: initialized once, never finalized.
static MODULES: Mutex<Vec<(PathBuf, Pkcs11)>> = Mutex::new(Vec::new());

fn module(path: &Path) -> Result<Pkcs11, CkError> {
    let mut modules = MODULES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, m)) = modules.iter().find(|(p, _)| p == path) {
        return Ok(m.clone());
    }
    let m = Pkcs11::new(path)?;
    match m.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(e),
    }
    modules.push((path.to_owned(), m.clone()));
    Ok(m)
}

impl Pkcs11Key {
    /// Loads the module, finds the token and the private key, logs in with the PIN
    /// from `pin-source`, reads the public key and checks a test signature. Blocking:
    /// call it at start-up or through `spawn_blocking`.
    ///
    /// # Errors
    ///
    /// [`KeyError::Pkcs11`] naming the URI and the step that failed (module load,
    /// token not found, login, key not found, key type, self-check), or
    /// [`KeyError::PinFile`] when the PIN file cannot be used.
    pub fn open(config: &Pkcs11Uri) -> Result<Pkcs11Key, KeyError> {
        let uri = config.to_string();
        let fail = |step: Pkcs11Step| {
            let uri = uri.clone();
            move |source: CkError| KeyError::Pkcs11 {
                uri,
                step,
                source: Some(source),
            }
        };
        let module = module(&config.module_path).map_err(fail(Pkcs11Step::LoadModule))?;
        let slot = find_token(&module, config).map_err(|e| e.into_key_error(&uri))?;
        let live = login(&module, slot, config, &uri)?;
        let (key_type, public) = describe(&live, config, &uri)?;
        let key_id = KeyId::of(&public).map_err(|e| KeyError::Pkcs11 {
            uri: uri.clone(),
            step: Pkcs11Step::PublicKey {
                reason: format!("computing the key id: {e}"),
            },
            source: None,
        })?;
        let key = Pkcs11Key {
            inner: Arc::new(Inner {
                uri,
                config: config.clone(),
                module,
                slot,
                key_type,
                public,
                key_id,
                session: Mutex::new(Some(live)),
            }),
        };
        let sig = key.sign_blocking(public_key::CHECK_MESSAGE)?;
        if !public_key::verify(&key.inner.public, public_key::CHECK_MESSAGE, &sig) {
            return Err(key.error(Pkcs11Step::SelfCheck, None));
        }
        Ok(key)
    }

    /// The key URI, with `pin-source` (a path, never the PIN).
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

    fn error(&self, step: Pkcs11Step, source: Option<CkError>) -> KeyError {
        KeyError::Pkcs11 {
            uri: self.inner.uri.clone(),
            step,
            source,
        }
    }

    /// Signs `msg` on the calling thread (blocking). A failure drops the session; the
    /// next call opens one and logs in again.
    fn sign_blocking(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        let inner = &self.inner;
        let mut slot = inner.session.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(login(&inner.module, inner.slot, &inner.config, &inner.uri)?);
        }
        let Some(live) = slot.as_ref() else {
            return Err(self.error(Pkcs11Step::OpenSession, None));
        };
        let result = match inner.key_type {
            KeyType::EcdsaP256 => {
                let hash = digest(&SHA256, msg);
                live.session
                    .sign(&Mechanism::Ecdsa, live.key, hash.as_ref())
                    .and_then(|raw| public_key::ecdsa_raw_to_der(&raw).ok_or(CkError::InvalidValue))
            }
            KeyType::Ed25519 => live.session.sign(
                &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                live.key,
                msg,
            ),
            KeyType::Rsa { .. } => live.session.sign(
                &Mechanism::Sha256RsaPkcsPss(PkcsPssParams {
                    hash_alg: MechanismType::SHA256,
                    mgf: PkcsMgfType::MGF1_SHA256,
                    s_len: 32.into(),
                }),
                live.key,
                msg,
            ),
        };
        result.map_err(|e| {
            *slot = None;
            self.error(Pkcs11Step::Sign, Some(e))
        })
    }
}

/// Why no single token was chosen.
enum TokenError {
    List(CkError),
    NotFound(Vec<String>),
    Several(usize),
}

impl TokenError {
    fn into_key_error(self, uri: &str) -> KeyError {
        let (step, source) = match self {
            TokenError::List(e) => (Pkcs11Step::ListTokens, Some(e)),
            TokenError::NotFound(present) => (Pkcs11Step::TokenNotFound { present }, None),
            TokenError::Several(count) => (Pkcs11Step::SeveralTokens { count }, None),
        };
        KeyError::Pkcs11 {
            uri: uri.to_owned(),
            step,
            source,
        }
    }
}

/// The one slot whose token matches `token=`, `serial=`, `manufacturer=`, `model=`
/// and `slot-id=`.
fn find_token(module: &Pkcs11, config: &Pkcs11Uri) -> Result<Slot, TokenError> {
    let mut present = Vec::new();
    let mut found = Vec::new();
    for slot in module.get_slots_with_token().map_err(TokenError::List)? {
        let info = module.get_token_info(slot).map_err(TokenError::List)?;
        let same = |want: &Option<String>, have: &str| {
            want.as_deref()
                .is_none_or(|w| w.trim_end() == have.trim_end())
        };
        let matches = same(&config.token, info.label())
            && same(&config.serial, info.serial_number())
            && same(&config.manufacturer, info.manufacturer_id())
            && same(&config.model, info.model())
            && config.slot_id.is_none_or(|id| id == slot.id());
        present.push(info.label().trim_end().to_owned());
        if matches {
            found.push(slot);
        }
    }
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(TokenError::NotFound(present)),
        many => Err(TokenError::Several(many.len())),
    }
}

/// Opens a session on `slot`, logs in with the PIN of `pin-source` (if any) and
/// finds the private key.
fn login(module: &Pkcs11, slot: Slot, config: &Pkcs11Uri, uri: &str) -> Result<Live, KeyError> {
    let fail = |step: Pkcs11Step| {
        move |source: CkError| KeyError::Pkcs11 {
            uri: uri.to_owned(),
            step,
            source: Some(source),
        }
    };
    let session = module
        .open_ro_session(slot)
        .map_err(fail(Pkcs11Step::OpenSession))?;
    let logged_in = match &config.pin_source {
        Some(pin_source) => {
            let pin = read_pin(pin_source, uri)?;
            match session.login(UserType::User, Some(&pin)) {
                // Another key of this process on the same token logged in already:
                // login state is per application, not per session.
                Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => true,
                Err(e) => return Err(fail(Pkcs11Step::Login)(e)),
            }
        }
        None => false,
    };
    let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
    if let Some(label) = &config.object {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = &config.id {
        template.push(Attribute::Id(id.clone()));
    }
    let keys = session
        .find_objects(&template)
        .map_err(fail(Pkcs11Step::FindKey))?;
    let key = match keys.as_slice() {
        [one] => *one,
        [] => {
            return Err(KeyError::Pkcs11 {
                uri: uri.to_owned(),
                step: Pkcs11Step::KeyNotFound { logged_in },
                source: None,
            })
        }
        many => {
            return Err(KeyError::Pkcs11 {
                uri: uri.to_owned(),
                step: Pkcs11Step::SeveralKeys { count: many.len() },
                source: None,
            })
        }
    };
    Ok(Live { session, key })
}

/// Reads the PIN file: the rules of key files, then one line of UTF-8 (a final
/// newline is not part of the PIN).
fn read_pin(path: &Path, uri: &str) -> Result<AuthPin, KeyError> {
    let wrap = |source: KeyError| KeyError::PinFile {
        uri: uri.to_owned(),
        pin_source: path.to_owned(),
        source: Box::new(source),
    };
    let bytes = secret_file::read(path).map_err(wrap)?;
    let mut text: &[u8] = &bytes;
    for end in [&b"\n"[..], b"\r"] {
        text = text.strip_suffix(end).unwrap_or(text);
    }
    let format_error = |what: &str| {
        wrap(KeyError::UnsupportedFormat {
            path: path.to_owned(),
            what: what.to_owned(),
            hint: "a PIN file holds the PIN on one line",
        })
    };
    if text.is_empty() {
        return Err(format_error("no PIN"));
    }
    let pin = std::str::from_utf8(text).map_err(|_| format_error("bytes that are not UTF-8"))?;
    Ok(AuthPin::from(pin))
}

/// The key's type and TUF public key: from the private key's attributes and the
/// public key object with the same `CKA_ID` (or label), or `CKA_PUBLIC_KEY_INFO`.
fn describe(live: &Live, config: &Pkcs11Uri, uri: &str) -> Result<(KeyType, Key), KeyError> {
    let session = &live.session;
    let public_err = |reason: String, source: Option<CkError>| KeyError::Pkcs11 {
        uri: uri.to_owned(),
        step: Pkcs11Step::PublicKey { reason },
        source,
    };
    let type_err = |found: String| KeyError::Pkcs11 {
        uri: uri.to_owned(),
        step: Pkcs11Step::KeyType { found },
        source: None,
    };
    let attrs = session
        .get_attributes(live.key, &[AttributeType::KeyType, AttributeType::Id])
        .map_err(|e| public_err("reading the private key's attributes".into(), Some(e)))?;
    let mut key_type = None;
    let mut id = config.id.clone();
    for a in attrs {
        match a {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::Id(i) if id.is_none() && !i.is_empty() => id = Some(i),
            _ => {}
        }
    }
    let key_type =
        key_type.ok_or_else(|| public_err("the key has no CKA_KEY_TYPE".into(), None))?;
    if key_type == CkKeyType::RSA {
        // The private key object carries the modulus and public exponent.
        let attrs = session
            .get_attributes(
                live.key,
                &[AttributeType::Modulus, AttributeType::PublicExponent],
            )
            .map_err(|e| public_err("reading the RSA modulus".into(), Some(e)))?;
        let (mut n, mut e) = (None, None);
        for a in attrs {
            match a {
                Attribute::Modulus(v) => n = Some(v),
                Attribute::PublicExponent(v) => e = Some(v),
                _ => {}
            }
        }
        let (Some(n), Some(e)) = (n, e) else {
            return Err(public_err(
                "the RSA key shows no modulus or exponent".into(),
                None,
            ));
        };
        let pkcs1 = public_key::rsa_pkcs1(&n, &e);
        let bits = public_key::rsa_bits(&pkcs1)
            .ok_or_else(|| public_err("the RSA modulus is empty".into(), None))?;
        public_key::check_rsa_bits(bits).map_err(type_err)?;
        return Ok((KeyType::Rsa { bits }, public_key::rsa(pkcs1)));
    }
    let is_edwards = key_type == CkKeyType::EC_EDWARDS;
    if key_type != CkKeyType::EC && !is_edwards {
        return Err(type_err(format!("a key of PKCS#11 type {key_type}")));
    }
    // EC and Edwards private keys carry the curve, not the point.
    let params = session
        .get_attributes(live.key, &[AttributeType::EcParams])
        .map_err(|e| public_err("reading the curve (CKA_EC_PARAMS)".into(), Some(e)))?
        .into_iter()
        .find_map(|a| match a {
            Attribute::EcParams(p) => Some(p),
            _ => None,
        })
        .unwrap_or_default();
    let curve = curve_name(&params);
    match (is_edwards, curve) {
        (false, Curve::P256) | (true, Curve::Ed25519) => {}
        (_, Curve::Other(name)) => return Err(type_err(name)),
        (false, Curve::Ed25519) | (true, Curve::P256) => {
            return Err(type_err("an EC key whose type and curve disagree".into()))
        }
    }
    let point = public_point(session, id.as_deref(), config.object.as_deref())
        .map_err(|(reason, source)| public_err(reason, source))?;
    if is_edwards {
        let pk = public_key::ed25519_point(&point)
            .ok_or_else(|| public_err("the Ed25519 public key is not 32 bytes".into(), None))?;
        Ok((KeyType::Ed25519, public_key::ed25519(pk)))
    } else {
        let pk = public_key::ec_point(&point).ok_or_else(|| {
            public_err(
                "the EC point is not an uncompressed P-256 point".into(),
                None,
            )
        })?;
        Ok((KeyType::EcdsaP256, public_key::ecdsa_p256(pk)))
    }
}

enum Curve {
    P256,
    Ed25519,
    Other(String),
}

/// The curve of `CKA_EC_PARAMS`: an OID, or (SoftHSM2 and OpenSC for Ed25519) the
/// PrintableString `edwards25519`.
fn curve_name(params: &[u8]) -> Curve {
    const PRINTABLE_STRING: u8 = 0x13;
    match crate::pkcs8::tlv(params) {
        Some((crate::pkcs8::OID, oid, _)) if oid == crate::pkcs8::P256 => Curve::P256,
        Some((crate::pkcs8::OID, oid, _)) if oid == crate::pkcs8::ED25519 => Curve::Ed25519,
        Some((PRINTABLE_STRING, b"edwards25519", _)) => Curve::Ed25519,
        Some((crate::pkcs8::OID, oid, _)) => {
            Curve::Other(match crate::pkcs8::curve_algorithm(oid) {
                crate::pkcs8::KeyAlgorithm::Other(name) => format!("{name} key"),
                _ => format!("a key on curve {}", crate::pkcs8::dotted(oid)),
            })
        }
        Some((PRINTABLE_STRING, name, _)) => Curve::Other(format!(
            "a key on curve {:?}",
            String::from_utf8_lossy(name)
        )),
        _ => Curve::Other("an EC key with unreadable CKA_EC_PARAMS".into()),
    }
}

/// `CKA_EC_POINT` of the public key object that has the private key's id (or, with
/// no id, its label).
fn public_point(
    session: &Session,
    id: Option<&[u8]>,
    label: Option<&str>,
) -> Result<Vec<u8>, (String, Option<CkError>)> {
    let mut template = vec![Attribute::Class(ObjectClass::PUBLIC_KEY)];
    match (id, label) {
        (Some(id), _) => template.push(Attribute::Id(id.to_vec())),
        (None, Some(label)) => template.push(Attribute::Label(label.as_bytes().to_vec())),
        (None, None) => return Err(("the private key has neither id nor label".into(), None)),
    }
    let found = session
        .find_objects(&template)
        .map_err(|e| ("searching for the public key object".to_owned(), Some(e)))?;
    let [public] = found.as_slice() else {
        return Err((
            format!(
                "{} public key objects have the private key's {}; the token must hold \
                 exactly one (pkcs11-tool --keypairgen makes it; after an import, write \
                 the public key with pkcs11-tool --write-object --type pubkey)",
                found.len(),
                if id.is_some() { "CKA_ID" } else { "label" }
            ),
            None,
        ));
    };
    session
        .get_attributes(*public, &[AttributeType::EcPoint])
        .map_err(|e| ("reading CKA_EC_POINT".to_owned(), Some(e)))?
        .into_iter()
        .find_map(|a| match a {
            Attribute::EcPoint(p) => Some(p),
            _ => None,
        })
        .ok_or_else(|| ("the public key object has no CKA_EC_POINT".to_owned(), None))
}

impl fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("uri", &self.inner.uri)
            .field("key_type", &self.inner.key_type)
            .field("key_id", &self.inner.key_id.as_str())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Pkcs11Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} key {} ({})",
            self.inner.key_type, self.inner.key_id, self.inner.uri
        )
    }
}

#[tough::async_trait]
impl Sign for Pkcs11Key {
    fn tuf_key(&self) -> Key {
        self.inner.public.clone()
    }

    /// Signs on tokio's blocking pool when called inside a tokio runtime (a token
    /// may take milliseconds, a network HSM longer), on the calling thread otherwise.
    async fn sign(
        &self,
        msg: &[u8],
        _rng: &(dyn SecureRandom + Sync),
    ) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync + 'static>> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Ok(self.sign_blocking(msg)?);
        }
        let (key, msg) = (self.clone(), msg.to_vec());
        match tokio::task::spawn_blocking(move || key.sign_blocking(&msg)).await {
            Ok(result) => Ok(result?),
            Err(join) => Err(Box::new(join)),
        }
    }
}

/// `as_sign` hands out the opened key; `write` is refused (keys are made on the token).
#[tough::async_trait]
impl KeySource for Pkcs11Key {
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
            reason: "keys on a PKCS#11 token are not written through tough",
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_by_oid_or_name() {
        let p256 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        assert!(matches!(curve_name(&p256), Curve::P256));
        assert!(matches!(
            curve_name(&[0x06, 0x03, 0x2b, 0x65, 0x70]),
            Curve::Ed25519
        ));
        let mut name = vec![0x13, 12];
        name.extend(b"edwards25519");
        assert!(matches!(curve_name(&name), Curve::Ed25519));
        let p384 = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
        assert!(matches!(curve_name(&p384), Curve::Other(n) if n.contains("P-384")));
        assert!(matches!(curve_name(&[]), Curve::Other(_)));
    }

    #[test]
    fn pin_files_follow_the_key_file_rules() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, "9876\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_pin(&path, "pkcs11:token=t;object=o").unwrap_err();
        let text = crate::error_chain(&err);
        assert!(text.contains("PIN file") && text.contains("0644"), "{text}");
        assert!(!text.contains("9876"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read_pin(&path, "u").is_ok());
        std::fs::write(&path, "\n").unwrap();
        assert!(crate::error_chain(&read_pin(&path, "u").unwrap_err()).contains("no PIN"));
    }
}
