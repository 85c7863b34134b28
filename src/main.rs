//! The `dovie` binary: `dovie serve` runs a node, `dovie migrate` applies the schema,
//! `dovie admin grant EMAIL` makes an account an administrator, `dovie backup --out FILE` and
//! `dovie restore --from FILE` save and restore a node, `dovie health` asks a node's `/health`
//! (the container image's health check).

use clap::Parser;
use dovie::config::{AdminCommand, Cli, CliCommand, Config};

/// What the binary was asked to do, once its flags are read.
enum Task {
    Serve,
    Migrate,
    Grant(String),
    Backup(std::path::PathBuf),
    Restore(std::path::PathBuf, bool),
}

/// mimalloc instead of the system allocator: per-message work allocates small, short-lived
/// buffers on several threads, where glibc's malloc spent about a seventh of the node's CPU in
/// the durable-send profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DOVIE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .finish()
        .with(dovie::admin::logs::RecentLogs)
        .init();
}

/// How long `dovie health` waits for a node.
const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// `GET /health` of the node at `addr`: whether it answered 200 within [`HEALTH_TIMEOUT`].
fn healthy(addr: std::net::SocketAddr) -> Result<(), String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, HEALTH_TIMEOUT)
        .map_err(|e| format!("{addr}: {e}"))?;
    stream
        .set_read_timeout(Some(HEALTH_TIMEOUT))
        .and_then(|_| stream.set_write_timeout(Some(HEALTH_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let request = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut head = [0u8; 32];
    let n = stream.read(&mut head).map_err(|e| format!("{addr}: {e}"))?;
    let line = String::from_utf8_lossy(&head[..n]);
    match line.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        Some(status) => Err(format!("{addr}: /health answered {status}")),
        None => Err(format!("{addr}: no HTTP answer")),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let CliCommand::Health { addr } = cli.command {
        return match healthy(addr) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("dovie health: {e}");
                std::process::ExitCode::from(1)
            }
        };
    }
    init_logging();
    let (flags, task) = match cli.command {
        CliCommand::Serve(f) => (f, Task::Serve),
        CliCommand::Migrate(f) => (f, Task::Migrate),
        CliCommand::Admin {
            command: AdminCommand::Grant { email, flags },
        } => (flags, Task::Grant(email)),
        CliCommand::Backup { out, flags } => (flags, Task::Backup(out)),
        CliCommand::Restore { from, force, flags } => (flags, Task::Restore(from, force)),
        // Answered above, before logging starts.
        CliCommand::Health { .. } => return std::process::ExitCode::SUCCESS,
    };
    let serve = matches!(task, Task::Serve);
    let config = match Config::load(&flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dovie: configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if serve {
        raise_file_limit();
        if let Err(e) = dovie_transport::process::no_transparent_huge_pages() {
            tracing::debug!(error = %e, "transparent huge pages stay on");
        }
    }
    let result =
        actix_rt::System::new().block_on(async move {
            match task {
                Task::Serve => dovie::server::serve(config).await,
                Task::Migrate => dovie::server::migrate(&config).await,
                Task::Grant(email) => dovie::server::grant_admin(&config, &email).await,
                Task::Backup(out) => dovie::backup::backup(&config, &out).await.map(|s| {
                    println!(
                        "backed up to {}: {} entries, {} objects, {} bytes",
                        out.display(),
                        s.entries,
                        s.objects,
                        s.bytes
                    );
                }),
                Task::Restore(from, force) => dovie::backup::restore(&config, &from, force)
                    .await
                    .map(|s| {
                        println!(
                            "restored from {}: {} entries, {} objects, {} bytes",
                            from.display(),
                            s.entries,
                            s.objects,
                            s.bytes
                        );
                    }),
            }
        });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("dovie: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

/// Every session is a socket: raise the open-file limit to what the system allows this process.
fn raise_file_limit() {
    match dovie_transport::process::raise_file_limit() {
        Ok(n) => tracing::info!(limit = n, "open files"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}
