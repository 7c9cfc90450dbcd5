//! Webhook secrets at rest: sealed with ChaCha20-Poly1305 under the
//! server's `SEXTANT_SECRET_KEY`, a random nonce per value, and stored as
//! `enc:v1:<base64(nonce ‖ ciphertext ‖ tag)>`. A stored value without the
//! prefix is a plaintext secret written before encryption existed; it keeps
//! signing deliveries until the webhook's secret is next set.
//!
//! Changing the key: start the servers with the new key as
//! `SEXTANT_SECRET_KEY` and the old one in `SEXTANT_SECRET_KEY_PREVIOUS`
//! (opened after the current key fails), run `sextant webhooks rekey`,
//! which seals every stored secret under the current key ([`reseal`]),
//! then drop the old key.

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// What marks a sealed value, and its format version.
const PREFIX: &str = "enc:v1:";
/// Bound into every tag, so a value sealed for another purpose under the
/// same key does not open as a webhook secret.
const AAD: &[u8] = b"sextant webhook secret v1";
/// ChaCha20-Poly1305's key length.
const KEY_LEN: usize = 32;

const KEY_HINT: &str = "hint: SEXTANT_SECRET_KEY takes 32 random bytes as 64 hex digits or in base64, such as the output of `openssl rand -base64 32`";

/// Why a `SEXTANT_SECRET_KEY` is refused; never repeats the key's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Neither hex nor base64.
    #[error("the key is neither hex nor base64 ({0} characters)\n{KEY_HINT}")]
    Encoding(usize),
    /// Decoded, but not 32 bytes.
    #[error("the key is {0} bytes long, and must be {KEY_LEN}\n{KEY_HINT}")]
    Length(usize),
    /// The cipher refused the bytes.
    #[error("the key must be {KEY_LEN} bytes")]
    Refused,
}

/// Why a secret cannot be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The stored secret is sealed and this server has no key.
    #[error(
        "the webhook's secret is encrypted and this server has no SEXTANT_SECRET_KEY to decrypt it"
    )]
    NoKey,
    /// No key given is the one the secret was sealed with, or the stored
    /// value was altered.
    #[error(
        "the webhook's secret cannot be decrypted: SEXTANT_SECRET_KEY is not the key it was encrypted with (nor is any key of SEXTANT_SECRET_KEY_PREVIOUS), or the stored value was altered"
    )]
    Undecryptable,
    /// The system's random source failed.
    #[error("cannot encrypt the webhook's secret: the system's random source failed")]
    Random,
}

/// The key that seals webhook secrets; its bytes never appear in `Debug`.
#[derive(Clone)]
pub struct SecretKey(Arc<LessSafeKey>);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

impl SecretKey {
    /// Reads 32 bytes written as 64 hex digits or in base64 (standard or
    /// URL-safe, padded or not). The error never repeats the text.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let bytes = decode_hex(text)
            .or_else(|| {
                [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
                    .iter()
                    .find_map(|engine| engine.decode(text).ok())
            })
            .ok_or(KeyError::Encoding(text.len()))?;
        if bytes.len() != KEY_LEN {
            return Err(KeyError::Length(bytes.len()));
        }
        let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes).map_err(|_| KeyError::Refused)?;
        Ok(SecretKey(Arc::new(LessSafeKey::new(key))))
    }

    /// `secret` sealed under a fresh random nonce, in its stored form.
    pub fn seal(&self, secret: &str) -> Result<String, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SecretError::Random)?;
        let mut sealed = secret.as_bytes().to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut sealed,
            )
            // Only a message beyond ChaCha20's 256 GiB limit fails.
            .map_err(|_| SecretError::Random)?;
        let mut stored = nonce.to_vec();
        stored.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}", STANDARD.encode(stored)))
    }

    /// The secret a sealed value (without its prefix) holds.
    fn open(&self, sealed: &str) -> Result<String, SecretError> {
        let mut bytes = STANDARD
            .decode(sealed)
            .map_err(|_| SecretError::Undecryptable)?;
        if bytes.len() < NONCE_LEN {
            return Err(SecretError::Undecryptable);
        }
        let mut body = bytes.split_off(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(&bytes).map_err(|_| SecretError::Undecryptable)?;
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(AAD), &mut body)
            .map_err(|_| SecretError::Undecryptable)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SecretError::Undecryptable)
    }
}

/// Whether a stored secret is sealed (rather than plaintext from before).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// The secret to sign with, from its stored form: sealed values need the
/// key they were sealed with, the current one or one of the `previous`
/// being retired (tried in order); plaintext ones, written before
/// encryption existed, are used as they are.
pub fn reveal(
    stored: &str,
    current: Option<&SecretKey>,
    previous: &[SecretKey],
) -> Result<String, SecretError> {
    opened(stored, current, previous).map(|(secret, _)| secret)
}

/// The secret and whether the current key opened it (plaintext: no).
fn opened(
    stored: &str,
    current: Option<&SecretKey>,
    previous: &[SecretKey],
) -> Result<(String, bool), SecretError> {
    let Some(sealed) = stored.strip_prefix(PREFIX) else {
        return Ok((stored.to_string(), false));
    };
    if current.is_none() && previous.is_empty() {
        return Err(SecretError::NoKey);
    }
    if let Some(secret) = current.and_then(|k| k.open(sealed).ok()) {
        return Ok((secret, true));
    }
    previous
        .iter()
        .find_map(|k| k.open(sealed).ok())
        .map(|secret| (secret, false))
        .ok_or(SecretError::Undecryptable)
}

/// A stored secret sealed under `current`: `None` when it already is,
/// else its new stored form (from a previous key, or from plaintext).
pub fn reseal(
    stored: &str,
    current: &SecretKey,
    previous: &[SecretKey],
) -> Result<Option<String>, SecretError> {
    match opened(stored, Some(current), previous)? {
        (_, true) => Ok(None),
        (secret, false) => current.seal(&secret).map(Some),
    }
}

/// 64 hex digits as 32 bytes; `None` for anything else.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 2 * KEY_LEN || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn key() -> SecretKey {
        SecretKey::parse(HEX).unwrap()
    }

    #[test]
    fn sealed_secrets_open_to_what_was_sealed_and_differ_each_time() {
        let k = key();
        let a = k.seal("s3cret").unwrap();
        let b = k.seal("s3cret").unwrap();
        assert!(is_sealed(&a) && !a.contains("s3cret"));
        assert_ne!(a, b, "a fresh nonce per value");
        assert_eq!(reveal(&a, Some(&k), &[]).unwrap(), "s3cret");
        assert_eq!(reveal(&b, Some(&k), &[]).unwrap(), "s3cret");
    }

    #[test]
    fn hex_and_base64_spellings_are_the_same_key() {
        let bytes: Vec<u8> = (0..32).collect();
        let sealed = key().seal("x").unwrap();
        for text in [
            STANDARD.encode(&bytes),
            STANDARD_NO_PAD.encode(&bytes),
            URL_SAFE.encode(&bytes),
            format!(" {} \n", HEX.to_uppercase()),
        ] {
            let k = SecretKey::parse(&text).unwrap();
            assert_eq!(reveal(&sealed, Some(&k), &[]).unwrap(), "x", "{text}");
        }
    }

    #[test]
    fn malformed_keys_are_refused_without_echoing_them() {
        let long = STANDARD.encode([7u8; 33]);
        for (text, says) in [
            ("", "0 bytes long"),
            ("c2hvcnQ=", "5 bytes long"),
            (long.as_str(), "33 bytes long"),
            ("not a key at all!", "neither hex nor base64"),
        ] {
            let e = SecretKey::parse(text).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains("hint:"), "{text}: {e}");
            assert!(text.is_empty() || !e.contains(text), "{e}");
        }
    }

    #[test]
    fn plaintext_from_before_is_used_as_it_is() {
        assert_eq!(reveal("old-secret", None, &[]).unwrap(), "old-secret");
        assert_eq!(
            reveal("old-secret", Some(&key()), &[]).unwrap(),
            "old-secret"
        );
    }

    #[test]
    fn previous_keys_open_what_they_sealed_and_reseal_moves_it_to_the_current_key() {
        let old = SecretKey::parse(&STANDARD.encode([9u8; 32])).unwrap();
        let older = SecretKey::parse(&STANDARD.encode([8u8; 32])).unwrap();
        let new = key();
        let by_old = old.seal("s3cret").unwrap();
        let previous = [older.clone(), old.clone()];
        assert_eq!(reveal(&by_old, Some(&new), &previous).unwrap(), "s3cret");
        // Only previous keys (the current one not yet set) open it too.
        assert_eq!(reveal(&by_old, None, &previous).unwrap(), "s3cret");
        let moved = reseal(&by_old, &new, &previous).unwrap().expect("resealed");
        assert_eq!(reveal(&moved, Some(&new), &[]).unwrap(), "s3cret");
        assert!(matches!(
            reveal(&moved, Some(&old), &[]),
            Err(SecretError::Undecryptable)
        ));
        assert_eq!(
            reseal(&moved, &new, &previous).unwrap(),
            None,
            "already current"
        );
        let plain = reseal("legacy", &new, &[]).unwrap().expect("sealed");
        assert!(is_sealed(&plain));
        assert_eq!(reveal(&plain, Some(&new), &[]).unwrap(), "legacy");
        // A key nobody holds any more: refused, named as such.
        let lost = SecretKey::parse(&STANDARD.encode([7u8; 32]))
            .unwrap()
            .seal("x")
            .unwrap();
        let e = reseal(&lost, &new, &previous).unwrap_err();
        assert!(matches!(e, SecretError::Undecryptable), "{e}");
        assert!(e.to_string().contains("SEXTANT_SECRET_KEY_PREVIOUS"), "{e}");
    }

    #[test]
    fn a_wrong_key_missing_key_or_altered_value_does_not_open() {
        let sealed = key().seal("s3cret").unwrap();
        let other = SecretKey::parse(&STANDARD.encode([9u8; 32])).unwrap();
        assert!(matches!(
            reveal(&sealed, None, &[]),
            Err(SecretError::NoKey)
        ));
        assert!(matches!(
            reveal(&sealed, Some(&other), &[]),
            Err(SecretError::Undecryptable)
        ));
        let mut raw = STANDARD.decode(&sealed[PREFIX.len()..]).unwrap();
        *raw.last_mut().unwrap() ^= 1;
        let altered = format!("{PREFIX}{}", STANDARD.encode(raw));
        assert!(matches!(
            reveal(&altered, Some(&key()), &[]),
            Err(SecretError::Undecryptable)
        ));
        for junk in ["enc:v1:", "enc:v1:!!", "enc:v1:AAAA"] {
            assert!(matches!(
                reveal(junk, Some(&key()), &[]),
                Err(SecretError::Undecryptable)
            ));
        }
    }
}
