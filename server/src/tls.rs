//! TLS for the main port (HTTPS and WSS) with rustls on the `ring` provider: a certificate and
//! key from PEM files (`--tls-cert`, `--tls-key`), or a self-signed development certificate
//! made at start (`--dev-cert`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// The longest validity of the development certificate. Browsers accept a self-signed
/// certificate by its hash (WebTransport's `serverCertificateHashes`) only when it is valid for
/// at most 14 days.
pub const DEV_CERT_VALIDITY: time::Duration = time::Duration::days(14);

/// How far in the past the development certificate's validity starts, so a client whose clock
/// is a little behind the server's still accepts it. Counted within [`DEV_CERT_VALIDITY`].
pub const DEV_CERT_BACKDATE: time::Duration = time::Duration::hours(1);

/// The names the development certificate is valid for.
pub const DEV_CERT_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Where the server's certificate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsSource {
    /// A certificate chain and its private key, both PEM files.
    Files {
        /// The certificate chain, the server's own certificate first.
        cert: PathBuf,
        /// The private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
    /// A self-signed certificate for this machine, made at start ([`dev_cert`]).
    DevCert,
}

/// A certificate chain with its private key, in DER.
pub struct CertAndKey {
    /// The chain, the server's own certificate first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key.
    pub key: PrivateKeyDer<'static>,
}

/// The TLS side of a running server.
#[derive(Clone)]
pub struct Tls {
    /// Runs the handshake on each accepted connection.
    pub acceptor: TlsAcceptor,
    /// The server's own certificate (DER).
    pub cert: CertificateDer<'static>,
    /// SHA-256 of [`Tls::cert`].
    pub cert_sha256: [u8; 32],
    /// The same certificate for QUIC (TLS 1.3 only, ALPN `h3`).
    pub quic: rustls::ServerConfig,
    /// Whether the certificate is a development one made at start (browsers then reach QUIC by
    /// its hash).
    pub dev: bool,
}

/// A self-signed ECDSA P-256 certificate for [`DEV_CERT_NAMES`], valid from
/// [`DEV_CERT_BACKDATE`] ago for [`DEV_CERT_VALIDITY`] in all.
pub fn dev_cert() -> anyhow::Result<CertAndKey> {
    let params = dev_cert_params(time::OffsetDateTime::now_utc())?;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let cert = params.self_signed(&key)?;
    let key = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok(CertAndKey { chain: vec![cert.der().clone()], key })
}

/// The development certificate's names and validity window, as of `now`.
fn dev_cert_params(now: time::OffsetDateTime) -> anyhow::Result<rcgen::CertificateParams> {
    let names: Vec<String> = DEV_CERT_NAMES.iter().map(|&n| n.to_owned()).collect();
    let mut params = rcgen::CertificateParams::new(names)?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "Tickwire development");
    params.not_before = now - DEV_CERT_BACKDATE;
    params.not_after = params.not_before + DEV_CERT_VALIDITY;
    Ok(params)
}

/// Reads a certificate chain and a private key from PEM files; errors name the file.
pub fn read_pem_files(cert: &Path, key: &Path) -> anyhow::Result<CertAndKey> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("reading the TLS certificate {}", cert.display()))?;
    if chain.is_empty() {
        bail!("the TLS certificate {} holds no PEM certificate", cert.display());
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the TLS private key {}", key.display()))?;
    Ok(CertAndKey { chain, key: key_der })
}

/// The rustls server configuration for `cert` (ring provider, TLS 1.2 and 1.3, ALPN
/// `http/1.1`). Fails when the key is not usable or does not match the certificate.
pub fn server_config(cert: CertAndKey) -> anyhow::Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(cert.chain, cert.key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// SHA-256 of `der`.
#[must_use]
pub fn sha256(der: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = [0; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Lower-case hex of `bytes`.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Tls {
    /// Loads or makes the certificate `source` names and builds the acceptor.
    pub fn new(source: &TlsSource) -> anyhow::Result<Tls> {
        let cert = match source {
            TlsSource::DevCert => dev_cert().context("making the development certificate")?,
            TlsSource::Files { cert, key } => read_pem_files(cert, key)?,
        };
        let own = cert.chain[0].clone();
        let cert_sha256 = sha256(&own);
        let copy = CertAndKey { chain: cert.chain.clone(), key: cert.key.clone_key() };
        let config = server_config(copy).with_context(|| match source {
            TlsSource::DevCert => "using the development certificate".to_owned(),
            TlsSource::Files { cert, key } => format!(
                "the TLS certificate {} and private key {} do not make a usable pair",
                cert.display(),
                key.display()
            ),
        })?;
        // The pair was checked above: this only differs in protocol versions and ALPN.
        let quic = quic_server_config(&cert)?;
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            cert: own,
            cert_sha256,
            quic,
            dev: *source == TlsSource::DevCert,
        })
    }
}

/// The rustls configuration of the QUIC endpoint: TLS 1.3 only (QUIC has no other), ALPN `h3`
/// (WebTransport runs over HTTP/3), the `ring` provider, ChaCha20-Poly1305 chosen whenever the
/// client offers it (see [`QUIC_CIPHER_FIRST`]).
pub fn quic_server_config(cert: &CertAndKey) -> anyhow::Result<rustls::ServerConfig> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.sort_by_key(|s| s.suite() != QUIC_CIPHER_FIRST);
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(cert.chain.clone(), cert.key.clone_key())
        .context("the certificate and key do not make a usable pair for QUIC")?;
    config.alpn_protocols = vec![b"h3".to_vec()];
    config.ignore_client_order = true;
    Ok(config)
}

/// The cipher suite the QUIC endpoint prefers over the client's own order. A connection keeps
/// four packet keys (this and the next key phase, each way) and header-protection keys for
/// its whole life: with AES-GCM each is an expanded key schedule and GHASH table (~0.6 KiB),
/// with ChaCha20-Poly1305 a 32-byte key, ~3 KiB less per connection. Game packets are small,
/// so AES's speed per byte matters little here. (QUIC's Initial packets are always AES-128-GCM.)
pub const QUIC_CIPHER_FIRST: rustls::CipherSuite =
    rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dev_cert_is_short_lived_and_its_key_matches() {
        let now = time::OffsetDateTime::now_utc();
        let params = dev_cert_params(now).unwrap();
        assert!(params.not_before < now);
        assert!(params.not_after > now);
        assert!(params.not_after - params.not_before <= DEV_CERT_VALIDITY);
        assert_eq!(params.subject_alt_names.len(), DEV_CERT_NAMES.len());
        server_config(dev_cert().unwrap()).unwrap();
    }

    #[test]
    fn quic_prefers_chacha20_whatever_the_client_prefers() {
        let config = quic_server_config(&dev_cert().unwrap()).unwrap();
        assert!(config.ignore_client_order);
        let suites = &config.crypto_provider().cipher_suites;
        assert_eq!(suites[0].suite(), QUIC_CIPHER_FIRST);
        // QUIC's Initial packets need AES-128-GCM.
        assert!(suites.iter().any(|s| s.suite() == rustls::CipherSuite::TLS13_AES_128_GCM_SHA256));
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let a = dev_cert().unwrap();
        let b = dev_cert().unwrap();
        let err = server_config(CertAndKey { chain: a.chain, key: b.key }).unwrap_err();
        assert!(format!("{err:#}").contains("key"), "{err:#}");
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
        // FIPS 180-2's first example.
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
