//! Cleaning up after a run that died (killed, power lost) between its steps.
//! Called when the migration lock is found stale. The database itself needs
//! nothing: SQLite rolls an uncommitted transaction back, and a committed
//! one is complete. What can be left is outside SQLite: temp files, and a
//! service taken down and never brought back.

use std::{fs, path::Path};

use crate::{
    engine::backups,
    window::service::{self, Mode},
    window::settings::Settings,
};

/// Removes what a dead run left; returns one line per thing done.
pub fn leftovers(settings: &Settings) -> Vec<String> {
    let db_dir = settings
        .backup_name
        .parent()
        .filter(|p| !p.as_os_str().is_empty());
    let db_dir = db_dir.unwrap_or(Path::new("."));
    let mut done =
        backups::remove_dead_temps(&[&settings.backup_dir, db_dir], &settings.backup_name);
    for dir in [
        &settings.backup_dir,
        &settings
            .backup_name
            .parent()
            .unwrap_or(Path::new("."))
            .to_path_buf(),
    ] {
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with(".xtask-rehearsal-") && fs::remove_dir_all(&path).is_ok() {
                done.push(format!("removed the rehearsal folder {}", path.display()));
            }
        }
    }
    bring_service_back(settings, &mut done);
    if done.is_empty() {
        done.push("nothing was left behind".into());
    }
    done
}

/// A dead run may have left the service down: end maintenance it started,
/// or start a command-managed service whose health check fails.
fn bring_service_back(settings: &Settings, done: &mut Vec<String>) {
    match &settings.service.mode {
        Mode::Maintenance { flag } => {
            let ours = fs::read_to_string(flag).is_ok_and(|t| t.starts_with(service::FLAG_NOTE));
            if ours && fs::remove_file(flag).is_ok() {
                done.push(format!(
                    "removed the maintenance flag {} the dead run had set",
                    flag.display()
                ));
            }
        }
        Mode::Commands { .. } => {
            let healthy = settings
                .health_url
                .as_deref()
                .is_some_and(service::answers_ok);
            if healthy {
                return;
            }
            match settings.service.bring_up() {
                Ok(detail) => done.push(format!(
                    "the service did not answer healthy, so it was started: {detail}"
                )),
                Err(e) => done.push(format!(
                    "starting the service FAILED: {e:#} — start it by hand"
                )),
            }
        }
        Mode::Unmanaged => {}
    }
}
