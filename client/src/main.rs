//! `catalog`: the terminal client.

use clap::{Parser, Subcommand};

use catalog_client::app::App;

/// A terminal client for the catalog server: live ETags, conditional saves, and a
/// conflict panel when someone else saved first.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// The server's base URL.
    #[arg(long, env = "CATALOG_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Your name, sent as X-User with every request (defaults to $USER).
    #[arg(long, env = "CATALOG_USER")]
    user: Option<String>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {}

fn default_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "anonymous".into())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let user = args.user.clone().unwrap_or_else(default_user);
    let mut app = App::new(&args.server, &user)?;
    app.start();
    // ratatui::init installs a panic hook that restores the terminal before the message.
    let mut terminal = ratatui::init();
    let result = app.run(&mut terminal).await;
    ratatui::restore();
    result
}
