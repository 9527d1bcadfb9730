//! The history a database records against the migration files: what is
//! applied, pending, changed since it was applied, missing, or skipped.
//! One comparison for both engines and every command that reads a history.

use anyhow::bail;
use refinery_core::Migration;

use super::files::MigrationFile;

/// The database's history against the files.
pub struct Comparison<'a> {
    /// The highest applied version (0 for a new database).
    pub current: i32,
    pub applied: Vec<Migration>,
    pub pending: Vec<&'a MigrationFile>,
    /// Applied, but the file's checksum or name differs now.
    pub changed: Vec<&'a MigrationFile>,
    /// Applied, but no file has its version, in the middle of the history.
    pub missing: Vec<Migration>,
    /// Applied, no file, and newer than every file: a newer release applied
    /// them (this one is being rolled back to); its schema is a superset.
    pub ahead: Vec<Migration>,
    /// Not applied, below the current version.
    pub skipped: Vec<&'a MigrationFile>,
}

/// The recorded history (either engine) against the files.
pub fn compare(applied: Vec<Migration>, files: &[MigrationFile]) -> anyhow::Result<Comparison<'_>> {
    let current = applied.last().map_or(0, Migration::version);
    let mut comparison = Comparison {
        current,
        applied: applied.clone(),
        pending: Vec::new(),
        changed: Vec::new(),
        missing: Vec::new(),
        ahead: Vec::new(),
        skipped: Vec::new(),
    };
    let newest_known = files.iter().map(|f| f.version).max().unwrap_or(0);
    for m in &applied {
        match files.iter().find(|f| f.version == m.version()) {
            None if m.version() > newest_known => comparison.ahead.push(m.clone()),
            None => comparison.missing.push(m.clone()),
            Some(file)
                if file.to_refinery()?.checksum() != m.checksum() || file.name != m.name() =>
            {
                comparison.changed.push(file)
            }
            Some(_) => {}
        }
    }
    for file in files
        .iter()
        .filter(|f| !applied.iter().any(|m| m.version() == f.version))
    {
        if file.version > current {
            comparison.pending.push(file);
        } else {
            comparison.skipped.push(file);
        }
    }
    Ok(comparison)
}

impl Comparison<'_> {
    /// The pending files, owned: what a run will apply.
    pub fn pending_files(&self) -> Vec<MigrationFile> {
        self.pending.iter().map(|f| (*f).clone()).collect()
    }

    pub fn refuse_inconsistency(&self) -> anyhow::Result<()> {
        let mut problems = Vec::new();
        for file in &self.changed {
            problems.push(format!(
                "{}: applied to the database, but the file changed since — restore it from git and put the change in a new migration",
                file.path.display()
            ));
        }
        for m in &self.missing {
            problems.push(format!(
                "V{}__{}: applied to the database, but its file is missing — restore it from git",
                m.version(),
                m.name()
            ));
        }
        for file in &self.skipped {
            problems.push(format!(
                "{}: not applied, but the database is already at version {} — renumber it above {}",
                file.path.display(),
                self.current,
                self.current
            ));
        }
        if !problems.is_empty() {
            bail!(
                "the database's migration history does not match the files:\n  {}",
                problems.join("\n  ")
            );
        }
        Ok(())
    }
}

/// `V1__a, V2__b`: migrations as a list for a message.
pub fn stems(files: &[MigrationFile]) -> String {
    files
        .iter()
        .map(MigrationFile::stem)
        .collect::<Vec<_>>()
        .join(", ")
}
