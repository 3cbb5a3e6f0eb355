//! `catalog`: the terminal client, `catalog bot`, an automatic editor, and `catalog export`
//! / `catalog import`, bulk edits from a spreadsheet.

use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use catalog_client::app::App;
use catalog_client::bot::{self, BotConfig};
use catalog_client::bulk::{self, import::ImportOptions, record::Format};
use catalog_client::guide::Role;

/// A terminal client for the catalog server: live ETags, conditional saves, and a
/// conflict panel when someone else saved first.
#[derive(Parser, Debug)]
#[command(name = "catalog", version)]
struct Args {
    /// The server's base URL.
    #[arg(
        long,
        env = "CATALOG_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    server: String,
    /// Your name, sent as X-User with every request (defaults to $USER). A server started
    /// with --users ignores it and takes your name from your token.
    #[arg(long, env = "CATALOG_USER", global = true)]
    user: Option<String>,
    /// Your bearer token, for a server started with --users (`catalog-server user add NAME`
    /// prints one).
    #[arg(long, env = "CATALOG_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// Walk through the classic race on the seeded BBQ, as admin 1 (price) or admin 2 (stock).
    #[arg(long, value_enum)]
    guide: Option<Role>,
    /// Save without If-Match (the lost-update demo; the server must run with --allow-unconditional).
    #[arg(long)]
    no_if_match: bool,
    /// Leave the mouse to the terminal (text selection) instead of clicks and the wheel.
    #[arg(long)]
    no_mouse: bool,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Edit random products on a timer, conditionally, retrying on 412.
    Bot {
        /// How often to edit (e.g. 2s, 500ms).
        #[arg(long, default_value = "2s")]
        every: String,
        /// Which fields to change: price, status, name, description.
        #[arg(long, default_value = "price,status")]
        fields: String,
        /// Stop after this many edits (default: run until Ctrl-C).
        #[arg(long)]
        count: Option<u64>,
        /// Give up (exit status 1) after this many failed attempts in a row.
        #[arg(long, default_value_t = 20)]
        max_failures: u32,
        /// Give up (exit status 1) when no attempt has succeeded for this long (e.g. 30s).
        #[arg(long, default_value = "30s")]
        max_unreachable: String,
    },
    /// Write every product, with its ETag, as CSV (or JSON lines) for a spreadsheet.
    Export {
        /// Write to this file (atomically: complete or not at all) instead of standard output.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
        /// csv: RFC 4180 with the header id,etag,sku,name,price,status,description.
        /// json: one product per line, as the server represents it.
        #[arg(long, value_enum, default_value = "csv")]
        format: Format,
    },
    /// Apply an edited export: changed rows are conditional writes (a product changed
    /// since the export is a conflict, never overwritten), rows without an id are created.
    /// Exits 0 only when no row conflicted or failed.
    Import {
        /// The file: CSV as `catalog export` writes it, or JSON lines.
        file: std::path::PathBuf,
        /// Read every product and report what would happen; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Where conflicting rows go, to be fixed and imported [default: FILE.conflicts.csv].
        #[arg(long)]
        conflicts: Option<std::path::PathBuf>,
        /// Rows written in parallel.
        #[arg(long, default_value_t = 8)]
        jobs: usize,
    },
    /// Print a shell completion script (e.g. `catalog completions bash > /etc/bash_completion.d/catalog`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `catalog man | man -l -`.
    Man,
}

fn default_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "anonymous".into())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match &args.command {
        Some(Cmd::Completions { shell }) => {
            let mut cmd = <Args as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "catalog", &mut std::io::stdout());
            return Ok(());
        }
        Some(Cmd::Man) => {
            let cmd = <Args as clap::CommandFactory>::command();
            // A reader that stops early (`| head`) is not an error.
            match clap_mangen::Man::new(cmd).render(&mut std::io::stdout()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(e).context("writing the manual page");
                }
                _ => return Ok(()),
            }
        }
        _ => {}
    }
    if let Some(Cmd::Bot {
        every,
        fields,
        count,
        max_failures,
        max_unreachable,
    }) = args.command
    {
        let every: Duration = humantime::parse_duration(&every)
            .with_context(|| format!("--every {every:?}: use a duration like 2s or 500ms"))?;
        let max_unreachable: Duration =
            humantime::parse_duration(&max_unreachable).with_context(|| {
                format!("--max-unreachable {max_unreachable:?}: use a duration like 30s or 2m")
            })?;
        return bot::run(BotConfig {
            server: args.server,
            user: args.user.unwrap_or_else(|| "carol".into()),
            token: args.token,
            every,
            fields: bot::parse_fields(&fields)?,
            count,
            max_failures: max_failures.max(1),
            max_unreachable,
        })
        .await;
    }
    let user = args.user.clone().unwrap_or_else(default_user);
    match args.command {
        Some(Cmd::Export { output, format }) => {
            let conn = bulk::Connection::new(&args.server, &user, args.token.as_deref())?;
            let n = bulk::export::run(&conn, format, output.as_deref()).await?;
            if let Some(path) = output {
                eprintln!("{n} products written to {}", path.display());
            }
            return Ok(());
        }
        Some(Cmd::Import {
            file,
            dry_run,
            conflicts,
            jobs,
        }) => {
            let conn = bulk::Connection::new(&args.server, &user, args.token.as_deref())?;
            let options = ImportOptions {
                file,
                dry_run,
                conflicts,
                jobs,
            };
            let summary = bulk::import::run(&conn, &options).await?;
            // 130: stopped by Ctrl-C (SIGINT), as shells report it.
            std::process::exit(match summary {
                s if s.interrupted => 130,
                s if s.clean() => 0,
                _ => 1,
            });
        }
        _ => {}
    }
    let mut app = App::new(&args.server, &user)?;
    app.set_token(args.token.as_deref());
    app.state.model.guide = args.guide;
    app.state.model.unsafe_saves = args.no_if_match;
    app.start();
    // ratatui::init installs a panic hook that restores the terminal before the message;
    // ours runs first and gives the mouse back.
    let mut terminal = ratatui::init();
    let mouse = !args.no_mouse;
    if mouse {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture);
        let restore = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
            restore(info);
        }));
    }
    let result = app.run(&mut terminal).await;
    if mouse {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    }
    ratatui::restore();
    // Never throw typed work away: an unsaved edit goes to a draft file.
    match catalog_client::draft::save_if_unsaved(app.state.edit_for_drafts(), &mut app.drafts) {
        Ok(Some(path)) => eprintln!(
            "Your unsaved edit was written to {}. Nothing was sent to the server.",
            path.display()
        ),
        Ok(None) => {}
        Err(e) => eprintln!("Your unsaved edit could not be written to a draft file: {e:#}"),
    }
    result
}
