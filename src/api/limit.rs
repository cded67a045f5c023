//! The request body's size limit (`--max-body-bytes`), kept so that a client
//! always reads its 413: an oversize body is read and dropped up to twice the
//! limit before the answer, which closes the connection. Answering while the
//! client is still sending makes many clients see a reset instead of the 413.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;

use super::context::error_response;
use crate::fhir::codec::Output;
use crate::Error;

/// Before anything else (the token check too): a body whose declared length is
/// over the limit gets its 413 at once; any other carries the limit to [`Body`],
/// which enforces it on what is actually sent (a chunked body has no length).
pub async fn oversize(State(limit): State<usize>, mut req: Request, next: Next) -> Response {
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        drain(req.into_body(), 0, limit.saturating_mul(2)).await;
        return too_large();
    }
    req.extensions_mut().insert(BodyLimit(limit));
    next.run(req).await
}

/// The request body, with our own errors: over the size limit → 413, unreadable → 400.
pub struct Body(pub Bytes);

/// The largest body read (`--max-body-bytes`), set by the router as an extension.
#[derive(Clone, Copy)]
pub struct BodyLimit(pub usize);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = Response;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let limit = req.extensions().get::<BodyLimit>().map_or(usize::MAX, |l| l.0);
        let mut body = req.into_body();
        let mut buf = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                error_response(
                    Error::invalid("structure", None, format!("the request body could not be read: {e}")),
                    Output::default(),
                )
            })?;
            let Ok(data) = frame.into_data() else { continue };
            if buf.len() + data.len() > limit {
                drain(body, buf.len() + data.len(), limit.saturating_mul(2)).await;
                return Err(too_large());
            }
            buf.extend_from_slice(&data);
        }
        Ok(Body(buf.freeze()))
    }
}

/// Reads and drops the rest of an oversize body, up to `cap` bytes in all, so
/// that a client still sending it reads its 413 instead of a reset connection.
pub async fn drain(mut body: axum::body::Body, mut read: usize, cap: usize) {
    while read <= cap {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len()),
            _ => return,
        }
    }
}

/// 413, and the connection closed: what is left of the body is not read.
pub fn too_large() -> Response {
    let mut resp = error_response(
        Error::PayloadTooLarge("the request body is larger than the configured limit (--max-body-bytes)".into()),
        Output::default(),
    );
    resp.headers_mut().insert(axum::http::header::CONNECTION, HeaderValue::from_static("close"));
    resp
}
