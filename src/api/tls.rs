//! HTTPS with rustls (`--tls-cert`, `--tls-key`), for deployments without a
//! TLS-terminating proxy in front.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use axum::extract::connect_info::IntoMakeServiceWithConnectInfo;
use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use tokio::net::TcpListener;

/// Reads the PEM certificate chain and key.
pub async fn config(cert: &Path, key: &Path) -> anyhow::Result<RustlsConfig> {
    // One process-wide crypto provider; a second install attempt only says it exists.
    let _ = rustls::crypto::ring::default_provider().install_default();
    RustlsConfig::from_pem_file(cert, key).await.with_context(|| {
        format!(
            "cannot use --tls-cert {} / --tls-key {}: both must be readable PEM files (certificate chain, private key)",
            cert.display(),
            key.display()
        )
    })
}

/// Serves HTTPS on `listener` until `shutdown`, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    app: IntoMakeServiceWithConnectInfo<Router, SocketAddr>,
    tls: RustlsConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        h.graceful_shutdown(Some(Duration::from_secs(30)));
    });
    axum_server::from_tcp_rustls(listener.into_std()?, tls).handle(handle).serve(app).await?;
    Ok(())
}
