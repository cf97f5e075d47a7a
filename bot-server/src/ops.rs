//! Operations endpoints on their own port: liveness, readiness and metrics, which need
//! no credentials and carry no user data.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use generalbot_crds::contract;

/// `/healthz`, `/readyz` and `/metrics`.
pub fn router() -> Router {
    Router::new()
        .route(contract::HEALTH_PATH, get(|| async { "ok" }))
        .route(contract::READY_PATH, get(|| async { "ready" }))
        .route(
            contract::METRICS_PATH,
            get(|| async { "# no metrics yet\n" }),
        )
}

/// The API: nothing is served yet, so every path is 404.
pub fn api_router() -> Router {
    Router::new().fallback(|| async { (StatusCode::NOT_FOUND, "not found") })
}

#[cfg(test)]
mod tests {
    use crate::{Listeners, serve};

    #[tokio::test]
    async fn health_answers_and_shutdown_is_clean() {
        let l = Listeners::bind(
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let ops = l.ops.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(l, async move {
            let _ = rx.await;
        }));
        let mut stream = tokio::net::TcpStream::connect(ops).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.ends_with("ok"));
        tx.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
