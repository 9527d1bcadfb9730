//! `[workspace.metadata.*]` of a checkout's root `Cargo.toml`: where the
//! repository automation (`release`) and the operations tool (`migrate`, in a
//! checkout) keep their settings.

use std::path::Path;

use anyhow::{Context, bail};

/// `[workspace.metadata.<name>]` as TOML text, or None when it is absent.
pub fn table(root: &Path, name: &str) -> anyhow::Result<Option<String>> {
    let path = root.join("Cargo.toml");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {}: run from inside the repository (or pass --repo DIR)",
            path.display()
        )
    })?;
    let doc: toml_edit::DocumentMut = text.parse().with_context(|| {
        format!(
            "{} is not valid TOML: fix the syntax error above",
            path.display()
        )
    })?;
    let Some(item) = doc
        .get("workspace")
        .and_then(|w| w.get("metadata"))
        .and_then(|m| m.get(name))
    else {
        return Ok(None);
    };
    let table = match item {
        toml_edit::Item::Table(table) => table.clone(),
        toml_edit::Item::Value(toml_edit::Value::InlineTable(inline)) => {
            inline.clone().into_table()
        }
        _ => bail!(
            "{}: [workspace.metadata.{name}] must be a table",
            path.display()
        ),
    };
    Ok(Some(toml_edit::DocumentMut::from(table).to_string()))
}
