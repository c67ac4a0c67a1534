//! The `payhook` binary: parse the command line, set up logging, run, and map
//! failures to exit codes (0 ok, 2 usage or config error, 1 runtime failure).

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than glibc's malloc: the ingress allocates per request
/// (headers, the body, the Redis command), and mimalloc does that in fewer
/// instructions (see `load-tests/callgrind`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if !cli.sets_up_logging() {
        payhook::telemetry::init(cli.log_format, std::io::stderr);
    }
    match cli.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(cli::Failure::Config(error)) => {
            eprintln!("payhook: {error:#}");
            ExitCode::from(2)
        }
        Err(cli::Failure::Runtime(error)) => {
            eprintln!("payhook: {error:#}");
            ExitCode::FAILURE
        }
    }
}
