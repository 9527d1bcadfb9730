//! NAME
//!     cargo xtask version — the repository's one version, and where it is written
//!
//! SYNOPSIS
//!     cargo xtask version
//!
//! DESCRIPTION
//!     Reads every place declared in `[workspace.metadata.release]` and prints
//!     the version each holds. Exits non-zero when any place disagrees or
//!     cannot be read: `make check` runs it so CI catches drift.

use std::path::Path;

use anyhow::bail;

use crate::{
    config,
    release::places::{self, Place, Reading},
};

pub fn run(repo: &Path) -> anyhow::Result<()> {
    let config = config::release(repo)?;
    let places = Place::parse_all(&config.files)?;
    let readings = places::read_all(repo, &places);
    let unreadable = places::unreadable(&readings);
    if !unreadable.is_empty() {
        println!(
            "version: {} declared place(s) cannot be read",
            unreadable.len()
        );
        print_table(&readings, &first_value(&readings).unwrap_or_default());
        bail!(
            "cannot read the version from:\n  {}\nFix the file, or its entry in [workspace.metadata.release] in Cargo.toml",
            unreadable.join("\n  ")
        );
    }
    match places::agreed(&readings) {
        Ok(version) => {
            println!("version {version}");
            print_table(&readings, &version);
            Ok(())
        }
        Err(why) => {
            let reference = first_value(&readings).unwrap_or_default();
            println!("version: the declared places disagree");
            print_table(&readings, &reference);
            bail!(
                "version drift: {why}. Every place must hold the same version: correct the odd ones \
                 out by hand (releases then keep them in step with `cargo xtask release`)"
            )
        }
    }
}

fn first_value(readings: &[Reading]) -> Option<String> {
    readings
        .iter()
        .find_map(|r| r.values.as_ref().ok()?.first().cloned())
}

/// One row per place; rows that differ from `reference` are marked.
fn print_table(readings: &[Reading], reference: &str) {
    let path_width = readings
        .iter()
        .map(|r| r.place.path.len())
        .max()
        .unwrap_or(0);
    let locator_width = readings
        .iter()
        .map(|r| r.place.locator().len())
        .max()
        .unwrap_or(0);
    for reading in readings {
        let (value, mark) = match &reading.values {
            Ok(values) if values.iter().all(|v| v == reference) => (values.join(", "), ""),
            Ok(values) => (values.join(", "), "   <- differs"),
            Err(e) => (format!("error: {e}"), "   <- unreadable"),
        };
        println!(
            "  {:path_width$}  {:locator_width$}  {value}{mark}",
            reading.place.path,
            reading.place.locator()
        );
    }
}
