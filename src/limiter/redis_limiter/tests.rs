use fred::types::config::{Server, ServerConfig};

use super::asking_first;
use crate::config::parse_redis_url;

fn sentinels(url: &str, first: &Server) -> Vec<String> {
    let config = asking_first(parse_redis_url(url).expect("a sentinel URL"), first);
    match config.server {
        ServerConfig::Sentinel { hosts, .. } => hosts.iter().map(ToString::to_string).collect(),
        other => panic!("not a sentinel config: {other:?}"),
    }
}

#[test]
fn the_sentinel_that_announced_a_switch_is_asked_first() {
    let url = "redis-sentinel://127.0.0.1:26379?node=127.0.0.1:26380&node=127.0.0.1:26381&sentinelServiceName=mymaster";
    let third = Server::new("127.0.0.1", 26381);
    let asked = sentinels(url, &third);
    assert_eq!(asked[0], "127.0.0.1:26381");
    let mut all = asked.clone();
    all.sort();
    assert_eq!(all, ["127.0.0.1:26379", "127.0.0.1:26380", "127.0.0.1:26381"]);
    // One the URL did not name (the Sentinels told of it) is added first.
    let other = Server::new("127.0.0.1", 26999);
    assert_eq!(sentinels(url, &other).len(), 4);
    assert_eq!(sentinels(url, &other)[0], "127.0.0.1:26999");
    // Any other URL is left as it is.
    let plain = asking_first(parse_redis_url("redis://127.0.0.1:6379").expect("a URL"), &third);
    assert!(matches!(plain.server, ServerConfig::Centralized { .. }));
}
