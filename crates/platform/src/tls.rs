//! Optional TLS on the gRPC ports, mutual when a client CA is given: the server
//! then accepts only clients whose certificate that CA signed. The same
//! certificate is the service's client identity when it calls its peers.

use anyhow::Context as _;
use std::path::PathBuf;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// The PEM files a service is given.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// This service's certificate chain.
    pub cert: Option<PathBuf>,
    /// Its private key.
    pub key: Option<PathBuf>,
    /// When set, clients must present a certificate signed by this CA.
    pub client_ca: Option<PathBuf>,
    /// The CA that signed the peers' server certificates (default: `client_ca`).
    pub ca: Option<PathBuf>,
}

/// Loaded TLS material.
#[derive(Debug, Clone)]
pub struct Tls {
    identity: Identity,
    client_ca: Option<Certificate>,
    ca: Option<Certificate>,
}

fn read(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

impl Tls {
    /// `None` without a certificate; an error for half a configuration.
    pub fn from_files(files: &TlsFiles) -> anyhow::Result<Option<Self>> {
        let (cert, key) = match (&files.cert, &files.key) {
            (None, None) => {
                if files.client_ca.is_some() || files.ca.is_some() {
                    anyhow::bail!("a TLS CA was given without --tls-cert and --tls-key");
                }
                return Ok(None);
            }
            (Some(c), Some(k)) => (read(c)?, read(k)?),
            _ => anyhow::bail!("--tls-cert and --tls-key go together"),
        };
        let client_ca = files
            .client_ca
            .as_ref()
            .map(read)
            .transpose()?
            .map(Certificate::from_pem);
        let ca = files
            .ca
            .as_ref()
            .map(read)
            .transpose()?
            .map(Certificate::from_pem);
        Ok(Some(Self {
            identity: Identity::from_pem(cert, key),
            client_ca,
            ca,
        }))
    }

    /// The server side: this identity, and client certificates required when a
    /// client CA is configured.
    pub fn server(&self) -> ServerTlsConfig {
        let config = ServerTlsConfig::new().identity(self.identity.clone());
        match &self.client_ca {
            Some(ca) => config.client_ca_root(ca.clone()),
            None => config,
        }
    }

    /// The client side: trust the configured CA and present this identity.
    pub fn client(&self) -> ClientTlsConfig {
        let mut config = ClientTlsConfig::new().identity(self.identity.clone());
        if let Some(ca) = self.ca.as_ref().or(self.client_ca.as_ref()) {
            config = config.ca_certificate(ca.clone());
        }
        config
    }
}

/// Makes aws-lc-rs the process's TLS crypto provider, as tonic's TLS already
/// uses: HTTP clients (the Auth Service's webhook) take the process default
/// and would otherwise find none. Idempotent.
pub fn install_crypto_provider() {
    // An error only says a provider is already installed.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
