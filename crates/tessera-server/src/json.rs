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
        let mut body = Vec::with_capacity(INITIAL_CAPACITY);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            Err(serialisation) => error::unwritable_answer(&serialisation),
        }
    }
}
