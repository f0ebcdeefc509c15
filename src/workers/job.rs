//! A request on its way through a worker, and what comes back.
//!
//! A [`Job`] carries the request and the reply channel. Its `Drop` decides
//! what the waiting connection learns if the job never completes:
//!
//! * dropped before a worker took the request out (it sat in the mailbox of
//!   a worker that crashed or was stopped) → [`Outcome::Retry`] with the
//!   request, which is then given to another worker: a request that never
//!   reached a handler never fails;
//! * dropped after a worker started it (its handler panicked, or the
//!   worker was killed mid-request) → [`Outcome::Crashed`], answered 500;
//!   the request comes back with it (the handler only borrowed it), so
//!   the 500 is shaped as the client asked (problem details).
//!
//! So a worker crash fails exactly the request inside the handler, and
//! nothing here allocates beyond the reply channel.
//!
//! [`WorkerMsg`], the worker's mailbox type, lives here too: the pool
//! sends jobs without knowing the worker actor.

use ractor_cluster::RactorMessage;
use tokio::sync::oneshot;

use crate::api::request::{HttpResponse, Request};

/// Messages of a worker.
#[derive(Debug, RactorMessage)]
pub enum WorkerMsg {
    /// Handle a request.
    Job(Job),
    /// Answer at once (the watchdog's round trip through a worker).
    Ping(oneshot::Sender<()>),
}

/// How a job ended.
#[derive(Debug)]
pub enum Outcome {
    /// The handler answered.
    Done(HttpResponse),
    /// No handler saw the request; here it is back.
    Retry(Request),
    /// The handler did not finish (panic or kill); the request it had.
    Crashed(Request),
}

/// A request on its way through a worker.
#[derive(Debug)]
pub struct Job {
    request: Option<Request>,
    /// A handler has the request (dropping the job now is a crash).
    started: bool,
    reply: Option<oneshot::Sender<Outcome>>,
}

impl Job {
    /// A job for `request` answering on `reply`.
    pub fn new(request: Request, reply: oneshot::Sender<Outcome>) -> Self {
        Self {
            request: Some(request),
            started: false,
            reply: Some(reply),
        }
    }

    /// Lends the request to a handler: from now on, dropping the job
    /// reports a crash.
    pub fn start(&mut self) -> Option<&Request> {
        self.started = true;
        self.request.as_ref()
    }

    /// Answers.
    pub fn finish(mut self, response: HttpResponse) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(Outcome::Done(response));
        }
    }

    /// The request back, when the job could not be delivered at all.
    pub fn into_request(mut self) -> Option<Request> {
        self.reply = None;
        self.request.take()
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        // Not answered, and not taken back (`into_request`).
        if let (Some(reply), Some(request)) = (self.reply.take(), self.request.take()) {
            let outcome = if self.started {
                Outcome::Crashed(request)
            } else {
                Outcome::Retry(request)
            };
            let _ = reply.send(outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        let (parts, _) = hyper::Request::new(()).into_parts();
        Request {
            endpoint: crate::api::route::Endpoint::of(&parts.method, parts.uri.path()),
            parts: Box::new(parts),
            body: bytes::Bytes::new(),
        }
    }

    #[test]
    fn an_untaken_job_comes_back_a_taken_one_crashed() {
        let (tx, mut rx) = oneshot::channel();
        drop(Job::new(request(), tx));
        assert!(matches!(rx.try_recv(), Ok(Outcome::Retry(_))));

        let (tx, mut rx) = oneshot::channel();
        let mut job = Job::new(request(), tx);
        assert!(job.start().is_some());
        drop(job);
        assert!(matches!(rx.try_recv(), Ok(Outcome::Crashed(_))));

        let (tx, mut rx) = oneshot::channel();
        let job = Job::new(request(), tx);
        assert!(job.into_request().is_some());
        assert!(rx.try_recv().is_err());
    }
}
