//! `backend key generate PATH`, `backend key add PATH`: the key file's
//! life. Both print the new key's id and the path, never the key.

use super::KeyCommand;
use crate::seal::keyfile;

pub fn run(command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Generate { path } => {
            let id = keyfile::generate(&path)?;
            println!(
                "created key file {} (mode 0600) with key {id}; back it up apart from the \
                 database: without it no sealed value can be read",
                path.display()
            );
        }
        KeyCommand::Add { path } => {
            let id = keyfile::add(&path)?;
            println!(
                "added key {id} to {}: it is the current key once the service restarts; \
                 then run `backend seal` to re-seal every row under it, and keep the old keys \
                 in the file until it reports none left",
                path.display()
            );
        }
    }
    Ok(())
}
