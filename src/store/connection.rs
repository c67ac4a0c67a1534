//! One connection type for one Redis node and for a Redis Cluster, so every
//! `query_async(&mut store.connection())` works on both.
//!
//! On one node it is a [`ConnectionManager`]; on a cluster, redis-rs's
//! cluster connection, which keeps the slot map, routes each command (and
//! each pipeline, by its first keyed command) to the master of its slot,
//! follows `MOVED` and `ASK` redirections, retries `TRYAGAIN` and
//! `CLUSTERDOWN`, and refreshes the slot map after a failover. payhook keeps
//! every multi-key step inside one hash tag, so a pipeline or script never
//! spans two slots. `SCRIPT LOAD` goes to every node, so a replica promoted
//! by a failover knows the scripts; one restarted since answers `NOSCRIPT`,
//! which the script callers answer by loading again.

use std::time::Duration;

use redis::{
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::{ClusterClient, ClusterConfig},
    cluster_async::ClusterConnection,
    cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo},
    Client, Cmd, Pipeline, RedisFuture, RedisResult, Value,
};

use crate::config::RedisTarget;

/// A client: makes connections to the configured target. Built once and
/// kept behind an `Arc`, so the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
pub(super) enum Backend {
    /// One node.
    Node(Client),
    /// A Redis Cluster's seed nodes (a client is built per connection, since
    /// the cluster client takes its deadlines when built).
    Cluster(Vec<String>),
}

/// The shortest and longest pause before a cluster command is retried
/// (`TRYAGAIN` while a slot migrates, `CLUSTERDOWN` during a failover, a
/// node that does not answer): short, since every command has its deadline.
const RETRY_WAIT_MS: (u64, u64) = (20, 500);

/// A multiplexed connection to a node or a cluster; cloning it shares it.
#[derive(Clone)]
pub enum Connection {
    /// One node, reconnecting by itself.
    Node(ConnectionManager),
    /// A cluster, routing by slot.
    Cluster(ClusterConnection),
}

impl Backend {
    /// A client for `target`. Nothing connects yet.
    pub(super) fn open(target: RedisTarget<'_>) -> RedisResult<Self> {
        Ok(match target {
            RedisTarget::Node(url) => Self::Node(Client::open(url)?),
            RedisTarget::Cluster(nodes) => {
                // Checks the seeds now: one password, user and TLS mode.
                ClusterClient::new(nodes.iter().map(String::as_str))?;
                Self::Cluster(nodes.to_vec())
            }
        })
    }

    /// A new connection that connects in the background, so the gateway
    /// starts (and answers 503) while Redis is down. `response_timeout`
    /// bounds each command, retries and redirections included.
    pub(super) fn connect(&self, response_timeout: Duration) -> RedisResult<Connection> {
        let connect_timeout = response_timeout.min(Duration::from_secs(2));
        Ok(match self {
            Self::Node(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_response_timeout(Some(response_timeout))
                    .set_connection_timeout(Some(connect_timeout))
                    // Reconnect attempts are cheap and each request has its own
                    // deadline, so keep retrying quickly rather than giving up.
                    .set_number_of_retries(3)
                    .set_max_delay(Duration::from_secs(1));
                Connection::Node(ConnectionManager::new_lazy_with_config(client.clone(), config)?)
            }
            Self::Cluster(nodes) => {
                // The builder's response timeout also bounds a command's
                // retries and redirections as a whole; without it, a command
                // to a dead master would retry for minutes.
                let client = ClusterClient::builder(nodes.iter().map(String::as_str))
                    .response_timeout(response_timeout)
                    .connection_timeout(connect_timeout)
                    .min_retry_wait(RETRY_WAIT_MS.0)
                    .max_retry_wait(RETRY_WAIT_MS.1)
                    .build()?;
                let config =
                    ClusterConfig::new().set_response_timeout(response_timeout).set_connection_timeout(connect_timeout);
                Connection::Cluster(client.get_pending_async_connection_with_config(config))
            }
        })
    }
}

impl Connection {
    /// `cmd` on every master (one node: on it), each answer or error with the
    /// node's address: for settings that each master holds on its own.
    pub async fn on_every_master(&mut self, cmd: &Cmd) -> RedisResult<Vec<(String, RedisResult<Value>)>> {
        match self {
            Self::Node(conn) => Ok(vec![(String::new(), cmd.query_async(conn).await)]),
            Self::Cluster(conn) => {
                let routing = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
                let Value::Map(answers) = conn.route_command(cmd.clone(), routing).await? else {
                    let unexpected = (redis::ErrorKind::UnexpectedReturnType, "a fan-out answers with a map");
                    return Err(unexpected.into());
                };
                Ok(answers.into_iter().map(|(node, answer)| (text(node), answer.extract_error())).collect())
            }
        }
    }
}

fn text(value: Value) -> String {
    redis::from_redis_value(value).unwrap_or_default()
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Node(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Node(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Node(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}
