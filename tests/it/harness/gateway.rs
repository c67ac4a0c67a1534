//! The real `payhook` binary as a child process, so a test can SIGKILL or
//! SIGTERM it and start it again on the same ports.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use payhook::config::Config;

use super::toml;

pub struct Gateway {
    child: Option<Child>,
    config: PathBuf,
    /// Where stderr (the JSON log) goes, when captured.
    log: Option<PathBuf>,
    /// Environment variables set for the process, beyond the test's own.
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
    /// `http://127.0.0.1:<port>` of the webhook listener.
    pub base: String,
    /// `http://127.0.0.1:<port>` of the admin listener.
    pub admin: String,
}

impl Gateway {
    /// Writes `config` (on two fixed free ports) to a file and starts
    /// `payhook serve` on it, with `config.env` in its environment, waiting
    /// until it is ready.
    pub async fn start(config: Config) -> Self {
        Self::launch(config, false, &[]).await
    }

    /// Like [`Gateway::start`], with JSON logs captured for [`Gateway::log`].
    pub async fn start_logged(config: Config) -> Self {
        Self::launch(config, true, &[]).await
    }

    /// Like [`Gateway::start`], with more environment variables set for the
    /// process (such as `HTTPS_PROXY`, which a test may not set for itself).
    pub async fn start_with_env(config: Config, env: &[(&str, &str)]) -> Self {
        Self::launch(config, false, env).await
    }

    async fn launch(mut config: Config, logged: bool, env: &[(&str, &str)]) -> Self {
        let ports = (free_port(), free_port());
        config.server.listen = ([127, 0, 0, 1], ports.0).into();
        config.server.admin_listen = ([127, 0, 0, 1], ports.1).into();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("payhook.toml");
        std::fs::write(&path, toml(&config)).unwrap();
        let log = logged.then(|| dir.path().join("payhook.log"));
        let env = config.env.vars().chain(env.iter().copied()).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        let (base, admin) = (format!("http://127.0.0.1:{}", ports.0), format!("http://127.0.0.1:{}", ports.1));
        let mut gateway = Self { child: None, config: path, log, env, _dir: dir, base, admin };
        gateway.restart().await;
        gateway
    }

    /// Everything logged so far (with [`Gateway::start_logged`]).
    pub fn log(&self) -> String {
        self.log.as_ref().map(|p| std::fs::read_to_string(p).unwrap_or_default()).unwrap_or_default()
    }

    /// The config file it runs with.
    pub fn config(&self) -> &std::path::Path {
        &self.config
    }

    /// Starts the process again (after a kill).
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the gateway first");
        let mut command = Command::new(env!("CARGO_BIN_EXE_payhook"));
        command.arg("serve").arg("--config").arg(&self.config).stdin(Stdio::null()).stdout(Stdio::null());
        match &self.log {
            Some(path) => {
                let file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
                command.arg("--log-format").arg("json").env("RUST_LOG", "debug").stderr(file);
            }
            None if std::env::var_os("TEST_LOG").is_none() => {
                command.stderr(Stdio::null());
            }
            None => {}
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        self.child = Some(command.env_remove("PAYHOOK_REDIS_URL").spawn().expect("the payhook binary starts"));
        wait_ready(&format!("{}/readyz", self.base)).await;
    }

    /// SIGKILL: the process dies at once, mid-request, mid-batch.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits (up to `limit`) for the process to exit.
    pub fn sigterm(&mut self, limit: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        None
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn wait_ready(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(response) = reqwest::get(url).await {
            if response.status() == 200 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{url} never became ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
