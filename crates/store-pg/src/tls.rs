//! The TLS client config for the database: rustls with the `ring` provider, trusting
//! only `sslrootcert` (never the system's roots: the database's CA is the site's own).
//!
//! `verify-full` checks the chain and the host name; `verify-ca` the chain only, by
//! accepting exactly one error from the full check, "not valid for this name", which
//! webpki reports only after the chain itself was verified.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::DbError;
use crate::conninfo::{ConnInfo, SslMode};
use pam_totp_store_file::seal::{KeyKind, read_key_file};

/// The rustls config for `info`, or `None` for `sslmode=disable`.
///
/// # Errors
/// An unsafe or unreadable file, or PEM that holds no usable certificate or key.
pub fn client_config(info: &ConnInfo) -> Result<Option<ClientConfig>, DbError> {
    if info.sslmode == SslMode::Disable {
        return Ok(None);
    }
    let Some(root_path) = &info.sslrootcert else {
        return Err(DbError::Tls("sslrootcert is required".to_owned()));
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    let pem = read_key_file(KeyKind::DbCertificate, root_path).map_err(DbError::Credential)?;
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|_| DbError::Tls(format!("{} is not PEM", root_path.display())))?;
        roots
            .add(cert)
            .map_err(|e| DbError::Tls(format!("{}: {e}", root_path.display())))?;
    }
    if roots.is_empty() {
        return Err(DbError::Tls(format!(
            "{} holds no certificate",
            root_path.display()
        )));
    }
    let full = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| DbError::Tls(e.to_string()))?;
    let verifier: Arc<dyn ServerCertVerifier> = match info.sslmode {
        SslMode::VerifyCa => Arc::new(ChainOnly(full)),
        SslMode::VerifyFull | SslMode::Disable => full,
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DbError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match (&info.sslcert, &info.sslkey) {
        (Some(cert_path), Some(key_path)) => {
            let pem = read_key_file(KeyKind::DbCertificate, cert_path).map_err(DbError::Credential)?;
            let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| DbError::Tls(format!("{} is not PEM", cert_path.display())))?;
            let pem = read_key_file(KeyKind::DbSecret, key_path).map_err(DbError::Credential)?;
            // The key's bytes are not shown in the error: only the file's name.
            let key = PrivateKeyDer::from_pem_slice(pem.as_bytes())
                .map_err(|_| DbError::Tls(format!("{} holds no PEM private key", key_path.display())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| DbError::Tls(format!("client certificate: {e}")))?
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
