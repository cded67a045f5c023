//! The one demo gateway the console's tests share: `serve --demo` on an embedded
//! SQLite database of its own, started in this process and stopped at the end.

use std::net::SocketAddr;

/// A running demo gateway; dropping it stops the server and removes its database.
pub struct Gateway {
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
}

impl Gateway {
    /// Starts the gateway with the demo region loaded (as the README's first command).
    pub async fn demo() -> Gateway {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("cupola.db").display());
        let mut config = cupola::Config::for_database(&url);
        config.auth = cupola::config::AuthConfig::dev(dir.path().join("dev-key.json"));
        config.demo = true;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let state = cupola::api::build_state(config, addr).await.expect("the demo gateway starts");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            let background = cupola::background::start(&state);
            let _ = cupola::api::run(listener, state, async move {
                let _ = rx.await;
            })
            .await;
            background.stop();
        });
        Gateway { addr, _dir: dir, shutdown: Some(tx), done: Some(done) }
    }

    /// `http://addr/console`
    pub fn console(&self) -> String {
        format!("http://{}/console", self.addr)
    }

    pub fn fhir(&self) -> String {
        format!("http://{}/fhir", self.addr)
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}
