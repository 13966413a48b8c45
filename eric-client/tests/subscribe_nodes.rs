//! Subscribers on two nodes of one Redis: the publisher talks to node A,
//! the subscriber to node B (behind a relay standing in for a load
//! balancer). The matching table holds across nodes, and a durable
//! subscriber whose node dies mid-stream resumes on a third node with
//! nothing lost, nothing twice, and its filters still applied.

#![allow(clippy::unwrap_used)]

mod support;

use eric_client::{Client, Endpoint, Publisher, Subscriber};
use eric_redis::test_support::TestRedis;
use eric_server::test_support::{TestServer, config_on};
use support::relay::Relay;
use support::{DEADLINE, Done, KernelStatusChanged, Tick, the_matching_table_holds, ticks};

/// Nodes sharing one Redis and one key prefix: one cluster.
struct Cluster {
    redis: eric_redis::RedisConfig,
    _server: TestRedis,
}

impl Cluster {
    async fn start() -> Self {
        let server = TestRedis::start().await;
        Self {
            redis: server.config(),
            _server: server,
        }
    }

    /// A node of it, on a free port.
    async fn node(&self) -> TestServer {
        let mut config = config_on("127.0.0.1:0".parse().unwrap());
        config.redis = Some(self.redis.clone());
        TestServer::start(config).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_matching_table_holds_across_nodes() {
    let cluster = Cluster::start().await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let (on_a, on_b) = (format!("{}/table", a.url()), format!("{}/table", b.url()));
    the_matching_table_holds(&on_a, &on_b, false).await;
    the_matching_table_holds(&on_a, &on_b, true).await;
    a.stop().await;
    b.stop().await;
}

/// Ticks 0..N are published on node A, about `keep.N` when N is even and
/// `drop.N` when odd, with a kernel status now and then. The subscriber on
/// node B holds `Tick:keep` and `KernelStatusChanged:q1`. Midway, node B's
/// connections are cut and node B stops; the relay then leads to node C.
/// The subscriber gets every even tick and every q1 status once, in order,
/// and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_subscriber_resumes_on_another_node_when_its_node_dies() {
    const TICKS: u64 = 600;
    let cluster = Cluster::start().await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let relay = Relay::start(b.addr()).await;
    let endpoint = Endpoint::new(Client::new(&relay.url()).unwrap(), "crash");
    let mut subscriber = Subscriber::new(endpoint);
    subscriber.subscribe::<Tick>(Some("keep")).await.unwrap();
    subscriber
        .subscribe::<KernelStatusChanged>(Some("q1"))
        .await
        .unwrap();
    subscriber.subscribe::<Done>(None).await.unwrap();

    let publisher = Publisher::connect(&format!("{}/crash", a.url())).unwrap();
    let publishing = tokio::spawn(async move {
        for n in 0..TICKS {
            let about = if n % 2 == 0 { "keep" } else { "drop" };
            let tick = Tick {
                n,
                about: Some(format!("{about}.{n}")),
            };
            publisher.publish(&tick).await.unwrap();
            if n % 50 == 0 {
                let service = if n % 100 == 0 { "q1" } else { "q2" };
                let status = KernelStatusChanged::new(service, &n.to_string());
                publisher.publish(&status).await.unwrap();
            }
        }
        publisher.publish(&Done).await.unwrap();
    });

    let mut got = Vec::new();
    while got.len() < 60 {
        got.push(subscriber.get(Some(DEADLINE)).await.unwrap());
    }
    // Node B dies: its connections drop with what was in flight, and it
    // goes away while the publisher goes on.
    relay.cut();
    let before = relay.accepted();
    b.stop().await;
    let c = cluster.node().await;
    relay.point_at(c.addr());
    loop {
        let event = subscriber
            .get(Some(DEADLINE))
            .await
            .unwrap_or_else(|e| panic!("after {} events: {e}", got.len()));
        if event.decode::<Done>().is_some() {
            break;
        }
        got.push(event);
    }
    publishing.await.unwrap();
    assert!(relay.accepted() > before, "the stream reconnected");

    let ids: Vec<u64> = got.iter().map(|e| e.id.unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
    let statuses: Vec<String> = got
        .iter()
        .filter_map(|e| e.decode::<KernelStatusChanged>())
        .map(|s| s.unwrap().status)
        .collect();
    let expected: Vec<String> = (0..TICKS).step_by(100).map(|n| n.to_string()).collect();
    assert_eq!(statuses, expected, "every q1 status once, no q2");
    let tick_events: Vec<_> = got
        .into_iter()
        .filter(|e| e.decode::<Tick>().is_some())
        .collect();
    let expected: Vec<u64> = (0..TICKS).step_by(2).collect();
    assert_eq!(
        ticks(&tick_events),
        expected,
        "every even tick once, no odd one"
    );

    subscriber.close().await.unwrap();
    let left = Client::new(&c.url())
        .unwrap()
        .listeners("crash")
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
    a.stop().await;
    c.stop().await;
}
