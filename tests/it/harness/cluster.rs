//! A real Redis Cluster of three masters with one replica each, on free
//! loopback ports in its own temporary directory, made as `scripts/cluster`
//! makes one (`redis-server --cluster-enabled yes`, then `redis-cli --cluster
//! create … --cluster-replicas 1 --cluster-yes`). A test can SIGKILL a node,
//! wait for its replica to take over, restart it, or move slots. Every node
//! is killed on drop. A [secured](RedisCluster::start_secured) cluster
//! speaks only TLS (clients, bus and replication) and wants a password.

use std::{
    collections::BTreeSet,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use tempfile::TempDir;

use super::redis_server::wait_until_listening;

/// How long a node may be unreachable before the cluster fails it over.
const NODE_TIMEOUT_MS: u64 = 1_000;

pub struct RedisCluster {
    nodes: Vec<Node>,
    dir: TempDir,
    security: Option<Security>,
}

/// TLS with a private CA, and a password, for every node.
struct Security {
    /// The CA certificate clients must trust (PEM).
    ca: PathBuf,
    password: &'static str,
}

/// The password of a secured cluster.
pub const PASSWORD: &str = "cluster-test-password";

struct Node {
    port: u16,
    child: Option<Child>,
}

/// One line of `CLUSTER NODES`, as far as the tests need it.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub id: String,
    pub port: u16,
    pub master: bool,
    pub failed: bool,
    /// Slot ranges served (masters only), inclusive.
    pub slots: Vec<(u16, u16)>,
}

impl RedisCluster {
    /// Starts six nodes and makes them one cluster; returns once every node
    /// sees it as `ok` and every replica has synchronised.
    pub async fn start() -> Self {
        Self::create(false).await
    }

    /// Like [`RedisCluster::start`], with TLS everywhere (a CA and a server
    /// certificate for 127.0.0.1 made with `openssl`) and [`PASSWORD`].
    pub async fn start_secured() -> Self {
        Self::create(true).await
    }

    async fn create(secured: bool) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let security = secured.then(|| Security { ca: make_certificates(dir.path()), password: PASSWORD });
        let nodes = (0..6).map(|_| Node { port: free_cluster_port(), child: None }).collect();
        let mut cluster = Self { nodes, dir, security };
        for index in 0..6 {
            cluster.spawn(index);
        }
        let addresses: Vec<String> = cluster.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let created = Command::new("redis-cli")
            .args(cluster.client_args())
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli is installed with redis-server");
        assert!(created.success(), "redis-cli --cluster create failed");
        cluster.wait_healthy(6).await;
        cluster
    }

    fn spawn(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        assert!(node.child.is_none(), "the node runs already");
        let port = node.port.to_string();
        let mut command = Command::new("redis-server");
        match &self.security {
            None => command.args(["--port", &port]),
            Some(security) => {
                let file = |name: &str| self.dir.path().join(name);
                command
                    .args(["--port", "0", "--tls-port", &port, "--tls-cluster", "yes", "--tls-replication", "yes"])
                    .arg("--tls-cert-file")
                    .arg(file("server.pem"))
                    .arg("--tls-key-file")
                    .arg(file("server.key"))
                    .arg("--tls-ca-cert-file")
                    .arg(&security.ca)
                    .args(["--tls-auth-clients", "no"])
                    .args(["--requirepass", security.password, "--masterauth", security.password])
            }
        };
        let child = command
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--cluster-enabled", "yes", "--cluster-config-file", &format!("nodes-{port}.conf")])
            .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
            // The other masters' slots keep answering while one is down.
            .args(["--cluster-require-full-coverage", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (the README's test command installs it)");
        wait_until_listening(node.port);
        node.child = Some(child);
        let exited = node.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
        assert!(exited.is_none(), "redis-server on port {} exited: is the port taken?", node.port);
    }

    /// The URL of every node, the seeds for payhook: `redis://127.0.0.1:<port>`,
    /// or `rediss://:<password>@127.0.0.1:<port>` when secured.
    pub fn seeds(&self) -> Vec<String> {
        let scheme = match &self.security {
            None => "redis://".to_owned(),
            Some(security) => format!("rediss://:{}@", security.password),
        };
        self.nodes.iter().map(|n| format!("{scheme}127.0.0.1:{}", n.port)).collect()
    }

    /// The CA certificate a client of a secured cluster must trust.
    pub fn ca(&self) -> Option<&Path> {
        self.security.as_ref().map(|s| s.ca.as_path())
    }

    /// `redis-cli`'s TLS and password arguments, if secured.
    fn client_args(&self) -> Vec<String> {
        match &self.security {
            None => Vec::new(),
            Some(security) => vec![
                "--tls".into(),
                "--cacert".into(),
                security.ca.display().to_string(),
                "-a".into(),
                security.password.into(),
                "--no-auth-warning".into(),
            ],
        }
    }

    /// A port of a running node, to ask for the cluster's state.
    fn live_port(&self) -> u16 {
        self.nodes.iter().find(|n| n.child.is_some()).expect("a node runs").port
    }

    /// `redis-cli -p <port> args…`, its output.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(self.client_args())
            .arg("-p")
            .arg(port.to_string())
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The nodes as a running node sees them.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        parse_nodes(&self.cli(self.live_port(), &["cluster", "nodes"]))
    }

    /// The slot of `key` (`CLUSTER KEYSLOT`).
    pub fn slot(&self, key: &str) -> u16 {
        self.cli(self.live_port(), &["cluster", "keyslot", key]).trim().parse().expect("a slot number")
    }

    /// The port of the master serving `slot`.
    pub fn master_of(&self, slot: u16) -> u16 {
        let nodes = self.nodes();
        let serves = |n: &&NodeInfo| n.master && !n.failed && n.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot));
        nodes.iter().find(serves).map(|n| n.port).expect("every slot is served")
    }

    /// Kills the node on `port` with SIGKILL, as a crash would.
    pub fn kill(&mut self, port: u16) {
        let node = self.nodes.iter_mut().find(|n| n.port == port).expect("a node of this cluster");
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the node on `port` again, with its cluster identity: it rejoins
    /// as a replica of the master that replaced it.
    pub async fn restart(&mut self, port: u16) {
        let index = self.nodes.iter().position(|n| n.port == port).expect("a node of this cluster");
        self.spawn(index);
        self.wait_healthy(6).await;
    }

    /// Waits until a master other than `port` serves `slot` and the cluster
    /// is `ok` again: the replica has taken over.
    pub async fn wait_failover(&self, slot: u16, port: u16) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let nodes = self.nodes();
            let serving = nodes.iter().find(|n| {
                n.master && !n.failed && n.port != port && n.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot))
            });
            if let Some(master) = serving {
                if self.cli(master.port, &["cluster", "info"]).contains("cluster_state:ok") {
                    return master.port;
                }
            }
            assert!(Instant::now() < deadline, "no replica took over slot {slot}: {nodes:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `running` nodes agree the cluster is `ok`, every master
    /// has its replica and every replica has synchronised.
    async fn wait_healthy(&self, running: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up: Vec<u16> = self.nodes.iter().filter(|n| n.child.is_some()).map(|n| n.port).collect();
            let ok = up.len() == running
                && up.iter().all(|p| self.cli(*p, &["cluster", "info"]).contains("cluster_state:ok"))
                && up.iter().all(|p| {
                    let info = self.cli(*p, &["info", "replication"]);
                    info.contains("role:master") && info.contains("connected_slaves:1")
                        || info.contains("master_link_status:up")
                })
                && self.nodes().iter().filter(|n| !n.failed).count() == running;
            if ok {
                return;
            }
            if Instant::now() > deadline {
                let states: Vec<String> = up
                    .iter()
                    .map(|p| format!("{p}: {}", self.cli(*p, &["info", "replication"]).replace("\r\n", " ")))
                    .collect();
                panic!("the cluster did not become healthy:\n{}\n{states:#?}", self.cli(up[0], &["cluster", "nodes"]));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Moves `slot` from its master to `to` (a master's port) the way
    /// `redis-cli --cluster reshard` does, key by key: while it runs, the
    /// slot answers `ASK` for keys already moved, and `MOVED` after.
    pub fn migrate_slot(&self, slot: u16, to: u16) {
        let from = self.master_of(slot);
        let id = |port: u16| self.nodes().into_iter().find(|n| n.port == port).expect("a node").id;
        let (from_id, to_id) = (id(from), id(to));
        let slot_text = slot.to_string();
        self.cli(to, &["cluster", "setslot", &slot_text, "importing", &from_id]);
        self.cli(from, &["cluster", "setslot", &slot_text, "migrating", &to_id]);
        loop {
            let keys = self.cli(from, &["cluster", "getkeysinslot", &slot_text, "10"]);
            let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
            if keys.is_empty() {
                break;
            }
            let mut args = vec!["migrate", "127.0.0.1", "", "", "0", "5000", "keys"];
            let to_text = to.to_string();
            args[2] = &to_text;
            args.extend(keys);
            self.cli(from, &args);
            // Let requests land between batches, as a live reshard does.
            std::thread::sleep(Duration::from_millis(20));
        }
        for port in self.nodes().iter().filter(|n| n.master && !n.failed).map(|n| n.port) {
            self.cli(port, &["cluster", "setslot", &slot_text, "node", &to_id]);
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn parse_nodes(text: &str) -> Vec<NodeInfo> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = fields.get(1)?.split('@').next()?.rsplit(':').next()?.parse().ok()?;
            let flags = fields.get(2)?;
            let slots = fields
                .iter()
                .skip(8)
                .filter(|s| !s.starts_with('['))
                .filter_map(|range| match range.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => range.parse().ok().map(|s| (s, s)),
                })
                .collect();
            Some(NodeInfo {
                id: fields[0].to_owned(),
                port,
                master: flags.contains("master"),
                failed: flags.contains("fail"),
                slots,
            })
        })
        .collect()
}

/// A CA and a certificate for 127.0.0.1 signed by it, in `dir`; the CA's path.
fn make_certificates(dir: &Path) -> PathBuf {
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl is installed (scripts/test installs it)");
        assert!(status.success(), "openssl {args:?}");
    };
    let ca = ["-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=test"];
    openssl(&[&["req"], &ca[..]].concat());
    std::fs::write(dir.join("san.cnf"), "subjectAltName=IP:127.0.0.1\n").expect("a temp file");
    let request = ["-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=node"];
    openssl(&[&["req"], &request[..]].concat());
    let sign = ["-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem"];
    openssl(&[&["x509", "-req", "-days", "1", "-extfile", "san.cnf"], &sign[..]].concat());
    dir.join("ca.pem")
}

/// A free port whose cluster bus port (port + 10000) is free too, never
/// handed out before in this test process: the kernel may offer a port it
/// just offered, to this cluster or to another test's.
fn free_cluster_port() -> u16 {
    // A std mutex: held for a set lookup only.
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = !handed_out.contains(&port) && !handed_out.contains(&(port + 10_000));
        if fresh && port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            handed_out.extend([port, port + 10_000]);
            return port;
        }
    }
}
