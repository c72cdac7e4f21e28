//! The TLS client config for the database: rustls with the `ring` provider, trusting
//! only `sslrootcert` (never the system's roots: the database's CA is the site's own).
//!
//! `verify-full` checks the chain and the host name; `verify-ca` the chain only, by
//! accepting exactly one error from the full check, "not valid for this name", which
//! webpki reports only after the chain itself was verified.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{VerifierBuilderError, WebPkiServerVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::DbError;
use crate::conninfo::{ConnInfo, SslMode};
use pam_totp_store_file::seal::{KeyKind, read_key_file};

/// Why the TLS client config could not be built. Names files, never their content.
#[derive(Debug)]
pub enum TlsError {
    /// TLS without `sslrootcert`.
    NoRootCertificate,
    /// A certificate file whose content is not PEM.
    NotPem(PathBuf),
    /// An `sslrootcert` without a certificate.
    NoCertificate(PathBuf),
    /// An `sslkey` without a PEM private key.
    NoPrivateKey(PathBuf),
    /// rustls refused a root certificate.
    RootCertificate { path: PathBuf, source: rustls::Error },
    /// The certificate verifier could not be built from the roots.
    Verifier(VerifierBuilderError),
    /// The crypto provider supports none of rustls' protocol versions.
    Protocol(rustls::Error),
    /// rustls refused the client certificate or its key.
    ClientCertificate(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::NoRootCertificate => f.write_str("sslrootcert is required"),
            TlsError::NotPem(path) => write!(f, "{} is not PEM", path.display()),
            TlsError::NoCertificate(path) => write!(f, "{} holds no certificate", path.display()),
            TlsError::NoPrivateKey(path) => write!(f, "{} holds no PEM private key", path.display()),
            TlsError::RootCertificate { path, source } => write!(f, "{}: {source}", path.display()),
            TlsError::Verifier(e) => e.fmt(f),
            TlsError::Protocol(e) => e.fmt(f),
            TlsError::ClientCertificate(e) => write!(f, "client certificate: {e}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::RootCertificate { source: e, .. }
            | TlsError::Protocol(e)
            | TlsError::ClientCertificate(e) => Some(e),
            TlsError::Verifier(e) => Some(e),
            TlsError::NoRootCertificate
            | TlsError::NotPem(_)
            | TlsError::NoCertificate(_)
            | TlsError::NoPrivateKey(_) => None,
        }
    }
}

/// The rustls config for `info`, or `None` for `sslmode=disable`.
///
/// # Errors
/// An unsafe or unreadable file, or PEM that holds no usable certificate or key.
pub fn client_config(info: &ConnInfo) -> Result<Option<ClientConfig>, DbError> {
    if info.sslmode == SslMode::Disable {
        return Ok(None);
    }
    let Some(root_path) = &info.sslrootcert else {
        return Err(DbError::Tls(TlsError::NoRootCertificate));
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    let pem = read_key_file(KeyKind::DbCertificate, root_path).map_err(DbError::Credential)?;
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|_| DbError::Tls(TlsError::NotPem(root_path.clone())))?;
        roots.add(cert).map_err(|source| {
            DbError::Tls(TlsError::RootCertificate {
                path: root_path.clone(),
                source,
            })
        })?;
    }
    if roots.is_empty() {
        return Err(DbError::Tls(TlsError::NoCertificate(root_path.clone())));
    }
    let full = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| DbError::Tls(TlsError::Verifier(e)))?;
    let verifier: Arc<dyn ServerCertVerifier> = match info.sslmode {
        SslMode::VerifyCa => Arc::new(ChainOnly(full)),
        SslMode::VerifyFull | SslMode::Disable => full,
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DbError::Tls(TlsError::Protocol(e)))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match (&info.sslcert, &info.sslkey) {
        (Some(cert_path), Some(key_path)) => {
            let pem = read_key_file(KeyKind::DbCertificate, cert_path).map_err(DbError::Credential)?;
            let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| DbError::Tls(TlsError::NotPem(cert_path.clone())))?;
            let pem = read_key_file(KeyKind::DbSecret, key_path).map_err(DbError::Credential)?;
            // The key's bytes are not shown in the error: only the file's name.
            let key = PrivateKeyDer::from_pem_slice(pem.as_bytes())
                .map_err(|_| DbError::Tls(TlsError::NoPrivateKey(key_path.clone())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| DbError::Tls(TlsError::ClientCertificate(e)))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Some(config))
}

/// `verify-ca`: the full webpki check, except that the name need not match.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
