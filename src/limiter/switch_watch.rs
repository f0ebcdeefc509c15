//! Sentinel's `+switch-master`, heard as it is said: with a Sentinel URL
//! the limiter subscribes on every Sentinel of the URL to the channel on
//! which Sentinels announce a failover's end (`<service> <old ip> <old
//! port> <new ip> <new port>`), so that its connections move to the new
//! primary when the switch is made, not when the next health check or
//! reconnection attempt happens to find it.
//!
//! Each Sentinel has its own subscriber connection (fred's, which
//! reconnects and subscribes again by itself): the announcement comes
//! from whichever Sentinels are up. Every Sentinel announces the same
//! switch, so the limiter is told each distinct new primary once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use fred::prelude::{Builder, ReconnectPolicy};
use fred::types::config::{Config, Server, ServerConfig, TlsConfig, TlsConnector, TlsHostMapping};
use supervisors::Counted;
use tokio_rustls::rustls::ClientConfig;

use crate::limiter::last_error::{self, LastError};
use crate::limiter::redis_handle::LimiterMsg;
use crate::owned_task::OwnedTask;

/// The channel Sentinels announce a switched primary on.
pub const CHANNEL: &str = "+switch-master";

/// The new primary (`ip:port`) of a `+switch-master` announcement, if it
/// is about `service`.
///
/// ```
/// use diem::limiter::switch_watch::switched_to;
///
/// let said = "mymaster 127.0.0.1 17401 127.0.0.1 17402";
/// assert_eq!(switched_to(said, "mymaster").as_deref(), Some("127.0.0.1:17402"));
/// assert_eq!(switched_to(said, "other"), None);
/// assert_eq!(switched_to("mymaster 127.0.0.1", "mymaster"), None);
/// ```
pub fn switched_to(message: &str, service: &str) -> Option<String> {
    let mut words = message.split_ascii_whitespace();
    if words.next()? != service {
        return None;
    }
    let (_old_ip, _old_port, ip, port) = (words.next()?, words.next()?, words.next()?, words.next()?);
    port.parse::<u16>().ok()?;
    Some(format!("{ip}:{port}"))
}

/// Subscribers to every Sentinel of `url` (none if it is not a Sentinel
/// URL), telling `limiter` each new primary of the URL's service with
/// [`LimiterMsg::Switched`], and keeping in `errors` why a Sentinel refused
/// the subscription until one is made (`None` then): fred's Sentinel
/// client says only that it could not connect to any Sentinel, while a
/// subscriber's own error names the cause — a password the Sentinels
/// refused, most often. They end when the returned tasks are dropped.
pub(crate) fn watch(
    url: &str,
    tls: Option<Arc<ClientConfig>>,
    limiter: Counted<LimiterMsg>,
    errors: &LastError,
) -> Vec<OwnedTask> {
    let Ok(config) = crate::config::parse_redis_url(url) else {
        return Vec::new();
    };
    let ServerConfig::Sentinel {
        hosts,
        service_name,
        username,
        password,
    } = &config.server
    else {
        return Vec::new();
    };
    // One announcement per switch reaches the limiter, whichever Sentinel
    // says it first.
    let last: Arc<Mutex<Option<String>>> = Arc::default();
    hosts
        .iter()
        .filter_map(|host| {
            // The Sentinels' own credentials (the URL's `sentinelUsername`
            // and `sentinelPassword`), not the primary's.
            let mut one = Config {
                server: ServerConfig::Centralized { server: host.clone() },
                username: username.clone(),
                password: password.clone(),
                ..Config::default()
            };
            if let Some(tls) = &tls {
                one.tls = Some(TlsConfig {
                    connector: TlsConnector::Rustls(tokio_rustls::TlsConnector::from(tls.clone())),
                    hostnames: TlsHostMapping::None,
                });
            }
            let subscriber = Builder::from_config(one)
                .set_policy(ReconnectPolicy::new_constant(0, 500))
                .build_subscriber_client()
                .map_err(|e| tracing::warn!(sentinel = %host, error = %e, "rate limiter: cannot watch this sentinel"))
                .ok()?;
            let watched = Watched {
                sentinel: host.clone(),
                service: service_name.clone(),
                limiter: limiter.clone(),
                last: last.clone(),
                errors: errors.clone(),
            };
            Some(OwnedTask::spawn(listen(subscriber, watched), || {}))
        })
        .collect()
}

/// A subscriber and its connection task; closed when dropped (the
/// watch's task is aborted with the limiter's state).
struct Subscription {
    subscriber: SubscriberClient,
    task: Option<tokio::task::JoinHandle<Result<(), fred::error::Error>>>,
    resubscribe: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let subscriber = self.subscriber.clone();
        let task = self.task.take().map(|t| t.abort_handle());
        if let Some(resubscribe) = self.resubscribe.take() {
            resubscribe.abort();
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = tokio::time::timeout(Duration::from_millis(500), subscriber.quit()).await;
                if let Some(task) = task {
                    task.abort();
                }
            });
        }
    }
}

/// What one Sentinel's subscriber reports to.
struct Watched {
    /// The Sentinel.
    sentinel: Server,
    /// The URL's service name.
    service: String,
    limiter: Counted<LimiterMsg>,
    /// The last new primary passed on (shared by the Sentinels' watches).
    last: Arc<Mutex<Option<String>>>,
    errors: LastError,
}

/// Subscribes on one Sentinel and passes its announcements on.
async fn listen(subscriber: SubscriberClient, watched: Watched) {
    let Watched {
        sentinel,
        service,
        limiter,
        last,
        errors,
    } = watched;
    let mut messages = subscriber.message_rx();
    // Connects, and reconnects after a failure, in the background.
    let _subscription = Subscription {
        subscriber: subscriber.clone(),
        task: Some(subscriber.connect()),
        // Subscribed again after each reconnection.
        resubscribe: Some(subscriber.manage_subscriptions()),
    };
    // Until the first subscription is made, tried every half second; the
    // connection's failures meanwhile are kept (a refused password shows
    // there: a subscription waits for a connection rather than failing).
    let keeping = last_error::keep(&subscriber, errors.clone(), format!("sentinel {sentinel}: "));
    let subscribed = async {
        while let Err(e) = subscriber.subscribe(CHANNEL).await {
            tracing::debug!(error = %e, "rate limiter: sentinel subscription not made yet");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    tokio::select! {
        () = subscribed => {}
        // The subscription goes on being tried if the errors stop coming.
        () = async { keeping.await; std::future::pending::<()>().await } => {}
    }
    if let Ok(mut why) = errors.lock() {
        *why = None;
    }
    loop {
        let message = match messages.recv().await {
            Ok(m) => m,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        let Some(text) = message.value.as_str() else {
            continue;
        };
        let Some(primary) = switched_to(&text, &service) else {
            continue;
        };
        let new = match last.lock() {
            Ok(mut last) if last.as_deref() != Some(primary.as_str()) => {
                *last = Some(primary.clone());
                true
            }
            _ => false,
        };
        if new {
            let _ = limiter.send(LimiterMsg::Switched {
                primary,
                sentinel: sentinel.clone(),
            });
        }
    }
}
