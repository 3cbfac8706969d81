//! `awskms:` key URIs: a key held by AWS KMS or a KMS-compatible service.
//!
//! Grammar: `awskms:///<key>[?region=R][&endpoint=URL][&profile=P]`, where `<key>` is a
//! key id (`1234abcd-...`, `mrk-...`), `alias/<name>`, or a key or alias ARN. The
//! authority is empty (three slashes): the endpoint, when not the default AWS one, is
//! the `endpoint` query attribute so that its scheme and port are explicit.
//! Credentials are never part of the URI; they come from the AWS environment or
//! the named `profile`.

use std::fmt;

use percent_encoding::utf8_percent_encode;
use url::{Host, Url};

use crate::key_uri::{attributes, text_value, URI_VALUE};

/// A KMS key reference from an `awskms:` URI.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct AwsKmsKey {
    /// Key id, `alias/<name>`, or ARN, as given.
    pub key_id: String,
    /// The region (`region=`), or the one inside an ARN when not given.
    pub region: Option<String>,
    /// A KMS-compatible endpoint (`endpoint=`): `https`, or `http` to a loopback
    /// address only (a test server on this machine).
    pub endpoint: Option<Url>,
    /// The AWS config profile that supplies credentials (`profile=`).
    pub profile: Option<String>,
}

impl AwsKmsKey {
    /// Parses what follows `awskms:`.
    pub(crate) fn parse(rest: &str) -> Result<AwsKmsKey, String> {
        let Some(after) = rest.strip_prefix("///") else {
            return Err(
                "an awskms: key URI starts with awskms:/// (empty authority); \
                        put a custom endpoint in ?endpoint=https://..."
                    .into(),
            );
        };
        let (key_part, query) = after.split_once('?').unwrap_or((after, ""));
        if key_part.contains('#') || query.contains('#') {
            return Err("an awskms: key URI takes no fragment".into());
        }
        let key_id = text_value(
            "key id",
            percent_encoding::percent_decode_str(key_part).collect(),
        )?;
        let arn_region = check_key_id(&key_id)?;
        let mut key = AwsKmsKey {
            key_id,
            region: None,
            endpoint: None,
            profile: None,
        };
        for (name, value) in attributes(query, '&')? {
            let value = text_value(&name, value)?;
            match name.as_str() {
                "region" => key.region = Some(check_region(value)?),
                "endpoint" => key.endpoint = Some(check_endpoint(&value)?),
                "profile" => key.profile = Some(check_profile(value)?),
                _ => {
                    return Err(format!(
                        "unknown awskms: attribute {name:?} (known: region, endpoint, profile; \
                         credentials never go in the config file)"
                    ))
                }
            }
        }
        match (&key.region, arn_region) {
            (Some(given), Some(in_arn)) if *given != in_arn => {
                return Err(format!(
                    "region={given} differs from the region {in_arn} in the ARN"
                ))
            }
            (None, Some(in_arn)) => key.region = Some(in_arn),
            _ => {}
        }
        Ok(key)
    }
}

/// Checks the key part; returns the region of an ARN.
fn check_key_id(key_id: &str) -> Result<Option<String>, String> {
    if key_id.is_empty() {
        return Err(
            "an awskms: key URI names no key; write awskms:///alias/NAME or a key id".into(),
        );
    }
    if let Some(arn) = key_id.strip_prefix("arn:") {
        // arn:<partition>:kms:<region>:<account>:key/<id> or :alias/<name>
        let parts: Vec<&str> = arn.splitn(5, ':').collect();
        let well_formed = matches!(parts.as_slice(),
            [partition, "kms", region, account, resource]
                if partition.starts_with("aws")
                    && !region.is_empty()
                    && account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())
                    && (resource.strip_prefix("key/").is_some_and(is_key_id)
                        || resource.strip_prefix("alias/").is_some_and(is_alias_name)));
        if !well_formed {
            return Err(
                "malformed KMS ARN; expected arn:aws:kms:REGION:ACCOUNT:key/ID or ...:alias/NAME"
                    .into(),
            );
        }
        return Ok(Some(check_region(parts[2].to_string())?));
    }
    if let Some(name) = key_id.strip_prefix("alias/") {
        if !is_alias_name(name) {
            return Err("an alias name has letters, digits, \"/\", \"_\" and \"-\" only".into());
        }
        return Ok(None);
    }
    if !is_key_id(key_id) {
        return Err("a KMS key is a key id, alias/NAME, or an ARN".into());
    }
    Ok(None)
}

fn is_key_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn is_alias_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 250
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_-".contains(&b))
}

fn check_region(region: String) -> Result<String, String> {
    let ok = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(region)
    } else {
        Err("a region has lower-case letters, digits and \"-\" only (like eu-west-1)".into())
    }
}

fn check_profile(profile: String) -> Result<String, String> {
    let ok = profile
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(profile)
    } else {
        Err("a profile name has letters, digits, \".\", \"_\" and \"-\" only".into())
    }
}

fn check_endpoint(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("endpoint is not a valid URL ({e})"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "credentials in the endpoint URL are refused: secrets must not be in the config file"
                .into(),
        );
    }
    if url.query().is_some() || url.fragment().is_some() || url.path() != "/" {
        return Err(
            "the endpoint is a scheme, host and port only (https://kms.example:8443)".into(),
        );
    }
    let loopback = match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(name)) => name == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        "http" => Err("the endpoint must use https (plain http only to a loopback address)".into()),
        _ => Err("the endpoint must be an https URL".into()),
    }
}

impl fmt::Display for AwsKmsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "awskms:///{}",
            utf8_percent_encode(&self.key_id, URI_VALUE)
        )?;
        let attributes = [
            ("region", self.region.as_deref()),
            ("endpoint", self.endpoint.as_ref().map(Url::as_str)),
            ("profile", self.profile.as_deref()),
        ];
        let mut separator = '?';
        for (name, value) in attributes {
            if let Some(value) = value {
                write!(
                    f,
                    "{separator}{name}={}",
                    utf8_percent_encode(value, URI_VALUE)
                )?;
                separator = '&';
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AwsKmsKey, String> {
        AwsKmsKey::parse(text.strip_prefix("awskms:").unwrap())
    }

    #[test]
    fn key_ids_aliases_and_arns() {
        let alias = parse("awskms:///alias/mirror-timestamp?region=eu-west-1").unwrap();
        assert_eq!(alias.key_id, "alias/mirror-timestamp");
        assert_eq!(alias.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            alias.to_string(),
            "awskms:///alias/mirror-timestamp?region=eu-west-1"
        );

        let id = parse("awskms:///1234abcd-12ab-34cd-56ef-1234567890ab").unwrap();
        assert_eq!(id.region, None);

        let arn = "arn:aws:kms:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let by_arn = parse(&format!("awskms:///{arn}")).unwrap();
        assert_eq!(by_arn.key_id, arn);
        assert_eq!(by_arn.region.as_deref(), Some("us-east-2"));
        assert_eq!(parse(&by_arn.to_string()).unwrap(), by_arn);
    }

    #[test]
    fn endpoint_and_profile() {
        let key = parse(
            "awskms:///alias/snap?region=dc1&endpoint=https://kms.dc1.example:8443&profile=mirror",
        )
        .unwrap();
        assert_eq!(
            key.endpoint.as_ref().unwrap().as_str(),
            "https://kms.dc1.example:8443/"
        );
        assert_eq!(key.profile.as_deref(), Some("mirror"));
        assert_eq!(parse(&key.to_string()).unwrap(), key);
        assert!(parse("awskms:///alias/a?endpoint=http://127.0.0.1:4566").is_ok());
    }

    #[test]
    fn refusals() {
        assert!(parse("awskms://kms.example/alias/a")
            .unwrap_err()
            .contains("endpoint="));
        assert!(parse("awskms:///").unwrap_err().contains("names no key"));
        assert!(parse("awskms:///alias/").is_err());
        assert!(parse("awskms:///arn:aws:kms:us-east-2:1:key/x")
            .unwrap_err()
            .contains("ARN"));
        assert!(parse("awskms:///alias/a?endpoint=http://kms.example")
            .unwrap_err()
            .contains("https"));
        assert!(parse("awskms:///alias/a?endpoint=https://u:p@kms.example")
            .unwrap_err()
            .contains("credentials"));
        assert!(parse("awskms:///alias/a?endpoint=https://kms.example/path").is_err());
        assert!(parse("awskms:///alias/a?region=EU").is_err());
        let secret = parse("awskms:///alias/a?secret_access_key=hunter2").unwrap_err();
        assert!(secret.contains("credentials never go in the config file"));
        assert!(!secret.contains("hunter2"));
        let arn = "arn:aws:kms:us-east-2:111122223333:alias/a";
        assert!(parse(&format!("awskms:///{arn}?region=eu-west-1"))
            .unwrap_err()
            .contains("differs"));
    }
}
