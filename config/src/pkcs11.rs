//! `pkcs11:` key URIs (RFC 7512): a private key held by a PKCS#11 token.
//!
//! Path attributes (separated by `;`): `token`, `serial`, `slot-id`, `manufacturer`,
//! `model` choose the token; `object` (label) and `id` (CKA_ID, percent-encoded bytes)
//! choose the key; `type`, if given, must be `private`. Query attributes (separated by
//! `&`): `module-path` (required, absolute) and `pin-source` (an absolute path or
//! `file:` URI of a file holding the PIN). `pin-value` is refused: the PIN must not be
//! in the config file. `module-name` is refused: name the module by its path.

use std::fmt;
use std::path::PathBuf;

use percent_encoding::{percent_encode, utf8_percent_encode};

use crate::key_uri::{attributes, text_value, PATH_VALUE, VALUE};
use crate::path;

/// A PKCS#11 key reference from a `pkcs11:` URI. It holds no PIN, only where to
/// read one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Pkcs11Key {
    /// Token label (`token=`).
    pub token: Option<String>,
    /// Token serial number (`serial=`).
    pub serial: Option<String>,
    /// Slot id (`slot-id=`, decimal).
    pub slot_id: Option<u64>,
    /// Token manufacturer (`manufacturer=`).
    pub manufacturer: Option<String>,
    /// Token model (`model=`).
    pub model: Option<String>,
    /// Key label, CKA_LABEL (`object=`).
    pub object: Option<String>,
    /// Key id, CKA_ID bytes (`id=`).
    pub id: Option<Vec<u8>>,
    /// The PKCS#11 module to load (`module-path=`).
    pub module_path: PathBuf,
    /// A file holding the user PIN (`pin-source=`); none for tokens without login.
    pub pin_source: Option<PathBuf>,
}

impl Pkcs11Key {
    /// Parses what follows `pkcs11:`.
    pub(crate) fn parse(rest: &str) -> Result<Pkcs11Key, String> {
        if rest.contains('#') {
            return Err("a pkcs11: key URI takes no fragment".into());
        }
        let (path_part, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut key = Pkcs11Key {
            token: None,
            serial: None,
            slot_id: None,
            manufacturer: None,
            model: None,
            object: None,
            id: None,
            module_path: PathBuf::new(),
            pin_source: None,
        };
        for (name, value) in attributes(path_part, ';')? {
            if name == "id" {
                key.id = Some(value);
                continue;
            }
            let text = text_value(&name, value)?;
            match name.as_str() {
                "token" => key.token = Some(text),
                "serial" => key.serial = Some(text),
                "manufacturer" => key.manufacturer = Some(text),
                "model" => key.model = Some(text),
                "object" => key.object = Some(text),
                "slot-id" => {
                    let slot = text
                        .parse()
                        .map_err(|_| "slot-id is not a decimal number")?;
                    key.slot_id = Some(slot);
                }
                "type" if text == "private" => {}
                "type" => {
                    return Err("type must be \"private\": a signer needs the private key".into())
                }
                _ => return Err(refused(&name, "path")),
            }
        }
        let mut module_path = None;
        for (name, value) in attributes(query, '&')? {
            match name.as_str() {
                "module-path" => {
                    module_path = Some(path::absolute(&text_value(&name, value)?)?);
                }
                "pin-source" => key.pin_source = Some(pin_source(&text_value(&name, value)?)?),
                _ => return Err(refused(&name, "query")),
            }
        }
        key.module_path = module_path
            .ok_or("a pkcs11: key URI needs ?module-path=/absolute/path/to/module.so")?;
        if key.token.is_none() && key.serial.is_none() && key.slot_id.is_none() {
            return Err(
                "a pkcs11: key URI must choose the token with token=, serial= or slot-id=".into(),
            );
        }
        if key.object.is_none() && key.id.is_none() {
            return Err("a pkcs11: key URI must choose the key with object= or id=".into());
        }
        Ok(key)
    }

    /// The URI in normalised form, with or without `pin-source`.
    pub(crate) fn to_uri(&self, with_pin_source: bool) -> String {
        let mut path_attrs: Vec<String> = Vec::new();
        let texts = [
            ("token", &self.token),
            ("serial", &self.serial),
            ("manufacturer", &self.manufacturer),
            ("model", &self.model),
        ];
        for (name, value) in texts {
            if let Some(value) = value {
                path_attrs.push(format!("{name}={}", utf8_percent_encode(value, VALUE)));
            }
        }
        if let Some(slot) = self.slot_id {
            path_attrs.push(format!("slot-id={slot}"));
        }
        if let Some(object) = &self.object {
            path_attrs.push(format!("object={}", utf8_percent_encode(object, VALUE)));
        }
        if let Some(id) = &self.id {
            // RFC 7512 section 2.3: every byte of an id is percent-encoded.
            let encoded: String = id.iter().map(|b| format!("%{b:02X}")).collect();
            path_attrs.push(format!("id={encoded}"));
        }
        let module = self.module_path.to_string_lossy();
        let mut uri = format!(
            "pkcs11:{}?module-path={}",
            path_attrs.join(";"),
            utf8_percent_encode(&module, PATH_VALUE)
        );
        if let (true, Some(pin)) = (with_pin_source, &self.pin_source) {
            let pin = pin.to_string_lossy();
            uri.push_str(&format!(
                "&pin-source={}",
                percent_encode(pin.as_bytes(), PATH_VALUE)
            ));
        }
        uri
    }
}

fn refused(name: &str, part: &str) -> String {
    match name {
        "pin-value" => {
            "pin-value is refused: secrets must not be in the config file; \
                        put the PIN in a file only the service can read and name it with pin-source"
                .into()
        }
        "module-name" => "module-name is not supported; name the module with module-path".into(),
        _ => format!("unsupported pkcs11: {part} attribute {name:?}"),
    }
}

/// `pin-source` is a `file:` URI or an absolute path (RFC 7512 section 2.4).
fn pin_source(text: &str) -> Result<PathBuf, String> {
    let path = match text.strip_prefix("file:") {
        Some(rest) => rest.strip_prefix("//").unwrap_or(rest),
        None => text,
    };
    path::absolute(path)
}

impl fmt::Display for Pkcs11Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_uri(true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Pkcs11Key, String> {
        Pkcs11Key::parse(text.strip_prefix("pkcs11:").unwrap())
    }

    const MODULE: &str = "module-path=/usr/lib/softhsm/libsofthsm2.so";

    #[test]
    fn path_and_query_attributes() {
        let key = parse(&format!(
            "pkcs11:token=mirror%20hsm;object=timestamp;id=%01%A2?{MODULE}&pin-source=/etc/tuf-mirror/hsm.pin"
        ))
        .unwrap();
        assert_eq!(key.token.as_deref(), Some("mirror hsm"));
        assert_eq!(key.object.as_deref(), Some("timestamp"));
        assert_eq!(key.id.as_deref(), Some(&[0x01, 0xA2][..]));
        assert_eq!(
            key.module_path,
            PathBuf::from("/usr/lib/softhsm/libsofthsm2.so")
        );
        assert_eq!(
            key.pin_source,
            Some(PathBuf::from("/etc/tuf-mirror/hsm.pin"))
        );
        let shown = key.to_string();
        assert_eq!(
            shown,
            "pkcs11:token=mirror%20hsm;object=timestamp;id=%01%A2\
             ?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/etc/tuf-mirror/hsm.pin"
        );
        assert_eq!(parse(&shown).unwrap(), key);
        assert!(!key.to_uri(false).contains("pin-source"));
    }

    #[test]
    fn slot_serial_type_and_file_pin_source() {
        let key = parse(&format!(
            "pkcs11:slot-id=3;serial=ABC;id=%07;type=private?{MODULE}&pin-source=file:///run/pin"
        ))
        .unwrap();
        assert_eq!(key.slot_id, Some(3));
        assert_eq!(key.pin_source, Some(PathBuf::from("/run/pin")));
        assert!(parse(&format!("pkcs11:token=a;object=b;type=public?{MODULE}")).is_err());
    }

    #[test]
    fn pin_value_is_refused_without_repeating_it() {
        for uri in [
            format!("pkcs11:token=a;object=b?{MODULE}&pin-value=123456"),
            format!("pkcs11:token=a;object=b;pin-value=123456?{MODULE}"),
        ] {
            let err = parse(&uri).unwrap_err();
            assert!(err.contains("pin-value is refused"), "{err}");
            assert!(!err.contains("123456"));
        }
    }

    #[test]
    fn refusals() {
        assert!(parse("pkcs11:token=a;object=b")
            .unwrap_err()
            .contains("module-path"));
        assert!(parse(&format!("pkcs11:object=b?{MODULE}"))
            .unwrap_err()
            .contains("token="));
        assert!(parse(&format!("pkcs11:token=a?{MODULE}"))
            .unwrap_err()
            .contains("object="));
        assert!(parse("pkcs11:token=a;object=b?module-path=softhsm2.so")
            .unwrap_err()
            .contains("absolute"));
        assert!(parse("pkcs11:token=a;object=b?module-name=softhsm2")
            .unwrap_err()
            .contains("module-path"));
        assert!(parse(&format!("pkcs11:token=a;token=b;object=c?{MODULE}"))
            .unwrap_err()
            .contains("twice"));
        assert!(parse(&format!("pkcs11:token=a;object=b;x-vendor=1?{MODULE}")).is_err());
        assert!(parse(&format!("pkcs11:token=a;object=b;slot-id=x?{MODULE}")).is_err());
        assert!(parse(&format!(
            "pkcs11:token=a;object=b?{MODULE}&pin-source=pin.txt"
        ))
        .is_err());
    }
}
