//! JSON answers, serialised into a buffer sized for Tessera's bodies: axum's `Json` starts
//! at 128 bytes and grows, and every common answer (session details: about 500 bytes) is
//! larger than that.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error;

/// Room for the largest common answer, the session details, with a long node name.
const INITIAL_CAPACITY: usize = 640;

/// `T` as an `application/json` answer.
pub(crate) struct JsonAnswer<T>(pub(crate) T);

impl<T: Serialize> IntoResponse for JsonAnswer<T> {
    fn into_response(self) -> Response {
        let mut body = answer_buffer();
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => written(body),
            Err(serialisation) => error::unwritable_answer(&serialisation),
        }
    }
}

/// An empty buffer for a JSON answer written piece by piece.
pub(crate) fn answer_buffer() -> Vec<u8> {
    Vec::with_capacity(INITIAL_CAPACITY)
}

/// A JSON answer already written into `body`.
pub(crate) fn written(body: Vec<u8>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}
