//! What a handler is given and what it returns.

use bytes::Bytes;
use http_body_util::Full;
use hyper::http::request::Parts;
use hyper::Response;

use crate::api::route::Endpoint;

/// A request as a worker sees it: its head, its (complete) body, and its
/// endpoint, classified once by the connection.
#[derive(Debug)]
pub struct Request {
    /// Method, URI, headers. Boxed: a request moves several times on its
    /// way to a handler (into the job, the worker's mailbox, the handler's
    /// future), and a pointer moves for less than the 224-byte head.
    pub parts: Box<Parts>,
    /// The body, read in full by the connection (bounded in size and time).
    pub body: Bytes,
    /// What the request is for.
    pub endpoint: Endpoint,
}

/// The response type of every handler.
pub type HttpResponse = Response<Full<Bytes>>;
