//! Step 2's look at the pending migrations' preconditions (`-- xtask:
//! refuse-unless-zero:`) on the live database, while the service still
//! runs: a contract migration whose backfill is unfinished is refused
//! before anything goes down, with the count and what to run. The runner
//! counts again inside the migration's transaction, which is what holds.

use anyhow::bail;

use crate::history::{MigrationFile, precondition};

/// Refuses the window when a pending migration's count is not zero on the
/// live database, or cannot be taken there while nothing pending comes
/// before it; otherwise says what was counted (with a trailing `; `
/// for the step's detail line, or nothing). A count the live schema cannot answer yet (an earlier
/// pending migration adds what it reads) is left to the migration's own
/// transaction, where it is exact (SQLite's rehearsal reaches it too).
/// `count_live` reads one count on the live database without changing it
/// (the window's engine; `--job`'s read-only transaction).
pub fn refuse_unmet(
    pending: &[MigrationFile],
    count_live: &mut dyn FnMut(&str) -> anyhow::Result<i64>,
) -> anyhow::Result<String> {
    let mut checked = Vec::new();
    for (k, file) in pending.iter().enumerate() {
        let Some(precondition) = precondition::of(file)? else {
            continue;
        };
        let found = match count_live(&precondition.count) {
            Ok(found) => found,
            // The first pending migration meets the live schema as it is:
            // a count that fails here fails in the window too.
            Err(e) if k == 0 => bail!(
                "{}. Nothing went down; nothing was changed",
                precondition.uncountable(file, &format!("{e:#}"))
            ),
            Err(_) => {
                checked.push(format!(
                    "{}'s precondition counted in its transaction",
                    file.stem()
                ));
                continue;
            }
        };
        if found != 0 {
            let before = k.checked_sub(1).map(|i| pending[i].version);
            bail!(
                "{}. Nothing went down; nothing was changed",
                precondition.refusal(file, found, before)
            );
        }
        checked.push(format!("{}'s precondition holds (0)", file.stem()));
    }
    Ok(checked.iter().map(|line| format!("{line}; ")).collect())
}
