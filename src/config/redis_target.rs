//! Which Redis payhook talks to: one node (`redis.url`) or a Redis Cluster
//! (`redis.cluster_nodes`), and how many arrival streams it spreads over.
//!
//! `url` has a default, so it is kept as "unset" until the target is asked
//! for: only then can a config that sets both `url` and `cluster_nodes` be
//! told apart from one that sets only the seeds.

use redis::cluster::ClusterClient;

use super::{ConfigError, RedisConfig};

/// The node used when neither `url` nor `cluster_nodes` is set.
const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// Most arrival shards: each one is a stream every processor polls in turn,
/// so thousands would cost more in idle polling than they spread.
const MAX_ARRIVAL_SHARDS: u32 = 1024;

/// Where the Redis data lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisTarget<'a> {
    /// One node (or a primary with replicas behind one address).
    Node(&'a str),
    /// A Redis Cluster, found through these seed nodes.
    Cluster(&'a [String]),
}

impl RedisConfig {
    /// The configured target: the seeds if `cluster_nodes` is set, else `url`
    /// or its default. Validation refuses a config with both.
    pub fn target(&self) -> RedisTarget<'_> {
        if self.cluster_nodes.is_empty() {
            RedisTarget::Node(self.url.as_deref().unwrap_or(DEFAULT_URL))
        } else {
            RedisTarget::Cluster(&self.cluster_nodes)
        }
    }
}

/// Applies `PAYHOOK_REDIS_URL` or `PAYHOOK_REDIS_CLUSTER_NODES` (seeds
/// separated by commas). Either replaces the file's whole target, `url` and
/// `cluster_nodes` alike: the environment says where Redis is. Both at once
/// are refused, as both keys in the file are.
pub(super) fn apply_env(redis: &mut RedisConfig, env: &super::Env) -> Result<(), ConfigError> {
    match (env.get("PAYHOOK_REDIS_URL"), env.get("PAYHOOK_REDIS_CLUSTER_NODES")) {
        (Some(_), Some(_)) => Err(ConfigError::invalid(
            "PAYHOOK_REDIS_URL",
            "is set together with PAYHOOK_REDIS_CLUSTER_NODES: set one of them",
        )),
        (Some(url), None) => {
            (redis.url, redis.cluster_nodes) = (Some(url.to_owned()), Vec::new());
            Ok(())
        }
        (None, Some(nodes)) => {
            let nodes = nodes.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).collect();
            (redis.url, redis.cluster_nodes) = (None, nodes);
            Ok(())
        }
        (None, None) => Ok(()),
    }
}

/// Checks `url`, `cluster_nodes` and `arrival_shards` together.
pub(super) fn validate(redis: &RedisConfig) -> Result<(), ConfigError> {
    if redis.arrival_shards.get() > MAX_ARRIVAL_SHARDS {
        return Err(ConfigError::invalid("redis.arrival_shards", format!("must be at most {MAX_ARRIVAL_SHARDS}")));
    }
    if redis.url.is_some() && !redis.cluster_nodes.is_empty() {
        return Err(ConfigError::invalid(
            "redis.url",
            "is set together with redis.cluster_nodes: set url for one node, or cluster_nodes for a Redis \
             Cluster, not both",
        ));
    }
    match redis.target() {
        RedisTarget::Node(url) => {
            redis::Client::open(url)
                .map_err(|_| ConfigError::invalid("redis.url", "not a valid redis:// or rediss:// URL"))?;
        }
        RedisTarget::Cluster(nodes) => {
            for (i, node) in nodes.iter().enumerate() {
                let key = format!("redis.cluster_nodes[{i}]");
                redis::Client::open(node.as_str())
                    .map_err(|_| ConfigError::invalid(key, "not a valid redis:// or rediss:// URL"))?;
            }
            // Its own checks: one password, user, database and TLS mode for all.
            ClusterClient::new(nodes.iter().map(String::as_str))
                .map_err(|e| ConfigError::invalid("redis.cluster_nodes", e.to_string()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Env, MINIMAL};

    fn parse(redis: &str, env: &Env) -> Result<Config, String> {
        Config::parse(&format!("[redis]\n{redis}\n{MINIMAL}"), env).map_err(|e| e.to_string())
    }

    #[test]
    fn a_single_node_config_keeps_its_default_url() {
        let config = parse("", &Env::default()).unwrap();
        assert_eq!(config.redis.target(), super::RedisTarget::Node("redis://127.0.0.1:6379"));
        assert_eq!(config.redis.arrival_shards.get(), 1);
    }

    #[test]
    fn cluster_seeds_with_tls_and_a_password_are_the_target() {
        let seeds = r#"cluster_nodes = ["rediss://:pw@10.0.0.1:7000", "rediss://:pw@10.0.0.2:7000"]"#;
        let config = parse(&format!("{seeds}\narrival_shards = 3"), &Env::default()).unwrap();
        let super::RedisTarget::Cluster(nodes) = config.redis.target() else { panic!("a cluster") };
        assert_eq!(nodes.len(), 2);
        assert_eq!(config.redis.arrival_shards.get(), 3);
    }

    #[test]
    fn url_and_cluster_nodes_together_are_refused_naming_both() {
        let message = parse("url = \"redis://a:1\"\ncluster_nodes = [\"redis://b:2\"]", &Env::default()).unwrap_err();
        assert!(message.starts_with("redis.url") && message.contains("redis.cluster_nodes"), "{message}");
        let both =
            Env::from_pairs([("PAYHOOK_REDIS_URL", "redis://a:1"), ("PAYHOOK_REDIS_CLUSTER_NODES", "redis://b:2")]);
        let message = parse("", &both).unwrap_err();
        assert!(message.contains("PAYHOOK_REDIS_URL") && message.contains("PAYHOOK_REDIS_CLUSTER_NODES"), "{message}");
    }

    #[test]
    fn the_environment_replaces_the_files_target() {
        let seeds = Env::from_pairs([("PAYHOOK_REDIS_CLUSTER_NODES", "redis://b:2, redis://c:3")]);
        let config = parse("url = \"redis://a:1\"", &seeds).unwrap();
        let nodes = ["redis://b:2".to_owned(), "redis://c:3".to_owned()];
        assert_eq!(config.redis.target(), super::RedisTarget::Cluster(&nodes));
        let url = Env::from_pairs([("PAYHOOK_REDIS_URL", "redis://a:1")]);
        let config = parse("cluster_nodes = [\"redis://b:2\"]", &url).unwrap();
        assert_eq!(config.redis.target(), super::RedisTarget::Node("redis://a:1"));
    }

    #[test]
    fn bad_seeds_and_shard_counts_name_their_key() {
        let bad = parse("cluster_nodes = [\"redis://a:1\", \"http://b\"]", &Env::default()).unwrap_err();
        assert!(bad.starts_with("redis.cluster_nodes[1]"), "{bad}");
        let mixed = parse("cluster_nodes = [\"redis://a:1\", \"rediss://b:2\"]", &Env::default()).unwrap_err();
        assert!(mixed.starts_with("redis.cluster_nodes:") && mixed.contains("TLS"), "{mixed}");
        assert!(parse("arrival_shards = 0", &Env::default()).unwrap_err().contains("arrival_shards"));
        assert!(parse("arrival_shards = 1025", &Env::default()).unwrap_err().starts_with("redis.arrival_shards"));
    }
}
