//! NAME
//!     cargo xtask version — the repository's one version, and where it is written
//!
//! SYNOPSIS
//!     cargo xtask version [--json]
//!
//! DESCRIPTION
//!     Reads every place declared in `[workspace.metadata.release]` and prints
//!     the version each holds. Exits non-zero when any place disagrees or
//!     cannot be read: `make check` runs it so CI catches drift. With
//!     `--json`, one document on stdout instead (same exit status).

use std::path::Path;

use anyhow::bail;
use serde::Serialize;

use crate::{
    config,
    flags::VersionArgs,
    release::places::{self, Place, Reading},
};

/// `version --json`: field names are documented in README.md
/// ("Machine-readable output") and stay stable.
#[derive(Serialize)]
struct Report {
    /// The version every place holds; None when they disagree or one cannot be read.
    version: Option<String>,
    agreed: bool,
    places: Vec<PlaceReport>,
}

#[derive(Serialize)]
struct PlaceReport {
    path: String,
    locator: String,
    values: Vec<String>,
    /// Why the place cannot be read.
    error: Option<String>,
    /// Whether it holds the agreed version (or, on drift, the first place's).
    agrees: bool,
}

pub fn run(repo: &Path, args: &VersionArgs) -> anyhow::Result<()> {
    let config = config::release(repo)?;
    let places = Place::parse_all(&config.files)?;
    let readings = places::read_all(repo, &places);
    let unreadable = places::unreadable(&readings);
    let agreed = places::agreed(&readings);
    let reference = match (&agreed, unreadable.is_empty()) {
        (Ok(version), true) => version.clone(),
        _ => first_value(&readings).unwrap_or_default(),
    };
    if args.json {
        let version = agreed.as_ref().ok().filter(|_| unreadable.is_empty());
        print_json(&readings, &reference, version.cloned())?;
    }
    if !unreadable.is_empty() {
        if !args.json {
            println!(
                "version: {} declared place(s) cannot be read",
                unreadable.len()
            );
            print_table(&readings, &reference);
        }
        bail!(
            "cannot read the version from:\n  {}\nFix the file, or its entry in [workspace.metadata.release] in Cargo.toml",
            unreadable.join("\n  ")
        );
    }
    match agreed {
        Ok(version) => {
            if !args.json {
                println!("version {version}");
                print_table(&readings, &version);
            }
            Ok(())
        }
        Err(why) => {
            if !args.json {
                println!("version: the declared places disagree");
                print_table(&readings, &reference);
            }
            bail!(
                "version drift: {why}. Every place must hold the same version: correct the odd ones \
                 out by hand (releases then keep them in step with `cargo xtask release`)"
            )
        }
    }
}

fn print_json(
    readings: &[Reading],
    reference: &str,
    version: Option<String>,
) -> anyhow::Result<()> {
    let places = readings
        .iter()
        .map(|reading| {
            let (values, error) = match &reading.values {
                Ok(values) => (values.clone(), None),
                Err(e) => (Vec::new(), Some(e.clone())),
            };
            PlaceReport {
                path: reading.place.path.clone(),
                locator: reading.place.locator(),
                agrees: error.is_none() && values.iter().all(|v| v == reference),
                values,
                error,
            }
        })
        .collect();
    let report = Report {
        agreed: version.is_some(),
        version,
        places,
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
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
