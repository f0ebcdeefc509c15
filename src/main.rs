//! The `diem` binary: parses the command line and runs a subcommand.
//! Exit codes: 0 success, 1 failure, 2 invalid configuration or usage
//! (`diem ctl`: 1 error reply, 2 socket unreachable).

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use diem::cli::{Cli, Command, ConfigAction};
use diem::config::{Config, LogFormat};
use diem::node::Node;
use diem::{control, serve, store, systemd, telemetry};

/// jemalloc, not glibc's malloc: actors are allocated on one core and freed
/// on another, and glibc then serialises both cores on its arena locks
/// (docs/benchmarks.md, "The allocator").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn runtime(worker_threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if worker_threads > 0 {
        builder.worker_threads(worker_threads);
    }
    builder
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The values, then the files they name, read as the node reads them.
    let loaded = Config::load(cli.config.as_deref())
        .and_then(|c| diem::cluster::tls::ClusterTls::check(&c).map(|()| c))
        .and_then(|c| diem::store::tls::PgTls::check(&c).map(|()| c))
        .and_then(|c| diem::limiter::redis_tls::check(&c).map(|()| c));
    let config = match loaded {
        Ok(c) => c,
        Err(e) => {
            eprintln!("diem: {e}");
            return exit(2);
        }
    };
    let format = cli.log_format.unwrap_or(config.log.format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Config { action } => match action {
            ConfigAction::Check { connect } => {
                if let Ok(figment) = Config::layers(cli.config.as_deref()) {
                    for note in Config::notes(&figment) {
                        println!("note: {note}");
                    }
                }
                println!("config is valid");
                if !connect {
                    return exit(0);
                }
                let reached = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt.block_on(diem::reach::reach(&config)),
                    Err(e) => {
                        eprintln!("diem: {e}");
                        return exit(1);
                    }
                };
                let mut code = 0;
                for r in reached {
                    match r.outcome {
                        Ok(what) => println!("{}: ok: {what}", r.store),
                        Err(why) => {
                            println!("{}: FAILED: {why}", r.store);
                            code = 1;
                        }
                    }
                }
                exit(code)
            }
            ConfigAction::Show => {
                let shown =
                    Config::layers(cli.config.as_deref()).and_then(|f| diem::config::show::render(&f));
                match shown {
                    Ok(text) => {
                        print!("{text}");
                        exit(0)
                    }
                    Err(e) => {
                        eprintln!("diem: {e}");
                        exit(2)
                    }
                }
            }
        },
        Command::Ctl { options, command } => {
            let socket = options
                .socket
                .clone()
                .unwrap_or_else(|| config.control.socket_path());
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("diem ctl: {e}");
                    return exit(1);
                }
            };
            exit(rt.block_on(control::client::run(&socket, &command, &options)))
        }
        command => {
            // Before any thread starts: taking systemd's sockets clears its
            // variables from the environment.
            let activated = match systemd::activated() {
                Ok(sockets) => sockets,
                Err(e) => {
                    eprintln!("diem: {e}");
                    return exit(2);
                }
            };
            let (log, guard) = telemetry::init(&config.log.filter, format);
            let code = match run(command, config, cli.config, log, activated) {
                Ok(code) => code,
                Err(e) => {
                    tracing::error!("{e:#}");
                    if format == LogFormat::Human {
                        eprintln!("diem: {e:#}");
                    }
                    1
                }
            };
            drop(guard);
            exit(code)
        }
    }
}

fn run(
    command: Command,
    config: Config,
    config_path: Option<std::path::PathBuf>,
    log: telemetry::LogControl,
    activated: systemd::Activated,
) -> anyhow::Result<i32> {
    let rt = runtime(config.runtime.worker_threads)?;
    match command {
        Command::Serve => {
            let node = Node::new(config, config_path, Some(log));
            rt.block_on(serve::run(node, activated))
        }
        Command::Migrate => rt.block_on(async {
            let mut client = store::connection::connect_detached(&config.postgres)
                .await
                .context("cannot connect to postgres")?;
            let applied = store::migrations::migrate(&mut client, &config.postgres.schema).await?;
            println!(
                "migrations: {} applied now ({:?}), schema `{}` is current",
                applied.len(),
                applied,
                config.postgres.schema
            );
            Ok(0)
        }),
        Command::Import { dir, prune } => rt.block_on(async {
            match store::import::import(&config.postgres, &dir, prune).await {
                Ok(s) => {
                    println!(
                        "imported {} sentences from {} files: {} inserted, {} updated, {} unchanged{}",
                        s.total,
                        s.files,
                        s.inserted,
                        s.updated,
                        s.unchanged,
                        if prune {
                            format!(", {} deleted", s.deleted)
                        } else {
                            String::new()
                        }
                    );
                    Ok(0)
                }
                Err(store::StoreError::Bundle(e)) => {
                    eprintln!(
                        "diem import: rejected {}: {e}; nothing was written",
                        dir.display()
                    );
                    Ok(1)
                }
                Err(e) => Err(anyhow::Error::new(e).context(format!("importing {}", dir.display()))),
            }
        }),
        Command::Ctl { .. } | Command::Config { .. } => Ok(2),
    }
}
