//! `catalog-server user add|list|remove|rotate`: what an operator does to a users file.
//! Tokens go to standard output (so they can be piped), everything said to a person to
//! standard error. A running server takes the change on SIGHUP.

use std::path::Path;

use clap::Subcommand;

use crate::auth;

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user with a new random token, creating the file (mode 0600) if needed. The
    /// token is printed once, on standard output; the file keeps only its SHA-256.
    Add {
        /// The user's name, as `updated_by` will show it.
        name: String,
    },
    /// List the users of the file, one name a line.
    List,
    /// Remove a user. A running server refuses its token once it reloads the file
    /// (SIGHUP).
    Remove {
        /// The user's name.
        name: String,
    },
    /// Give a user a new random token, printed once on standard output; the old token
    /// stops working once a running server reloads the file (SIGHUP).
    Rotate {
        /// The user's name.
        name: String,
    },
}

impl UserCommand {
    fn verb(&self) -> String {
        match self {
            UserCommand::Add { name } => format!("add {name}"),
            UserCommand::List => "list".into(),
            UserCommand::Remove { name } => format!("remove {name}"),
            UserCommand::Rotate { name } => format!("rotate {name}"),
        }
    }
}

/// What a running server needs to take a change.
const RELOAD: &str =
    "A running catalog-server takes the change when it gets SIGHUP: kill -HUP <its pid>.";

pub fn run(command: &UserCommand, users: Option<&Path>) -> anyhow::Result<()> {
    let Some(path) = users else {
        anyhow::bail!(
            "say which file: catalog-server user {} --users users.toml (or set CATALOG_USERS)",
            command.verb()
        );
    };
    match command {
        UserCommand::Add { name } => {
            let token = auth::add_user(path, name)?;
            eprintln!(
                "Added user {name} to {}. Its token, shown this once (the file keeps only its SHA-256):",
                path.display()
            );
            println!("{token}");
            eprintln!(
                "Give it to {name}; the catalog client takes it as --token or CATALOG_TOKEN. {RELOAD}"
            );
        }
        UserCommand::List => {
            for name in auth::list_users(path)? {
                println!("{name}");
            }
        }
        UserCommand::Remove { name } => {
            auth::remove_user(path, name)?;
            eprintln!("Removed user {name} from {}. {RELOAD}", path.display());
        }
        UserCommand::Rotate { name } => {
            let token = auth::rotate_user(path, name)?;
            eprintln!(
                "New token for {name} in {}, shown this once (the file keeps only its SHA-256):",
                path.display()
            );
            println!("{token}");
            eprintln!(
                "The old token stops working, and event streams opened with it end, when the server reloads. {RELOAD}"
            );
        }
    }
    Ok(())
}
