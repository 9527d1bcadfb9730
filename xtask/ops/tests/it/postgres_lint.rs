//! The zero-downtime lint on a real Postgres server: `migrate --job` refuses
//! (exit 3) every case of the lint and changes nothing; recipes go through;
//! `migrations check --postgres` compares CHECK constraints across engines.
//! Each test works in a database of its own; without a server it says it was
//! skipped (and fails when REQUIRE_POSTGRES=1).

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

use crate::support;

use std::fs;

use support::{
    lint_cases::{ALLOWED, CASES, HEAD, case_file, case_name},
    mig, next,
    pg::*,
    shipped, text, versions_to,
};

/// Tables, columns, constraints and indexes, to prove a refusal changed nothing.
fn shape(db: &PgDatabase) -> Vec<String> {
    db.client()
        .query(
            "SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable \
               FROM information_schema.columns WHERE table_schema = 'public' \
             UNION ALL SELECT 'constraint ' || conname || ' ' || pg_get_constraintdef(oid) || ' ' || convalidated \
               FROM pg_constraint WHERE connamespace = 'public'::regnamespace \
             UNION ALL SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public' \
             ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

fn write_case(site: &PgSite, shared: &str, twin: Option<&str>) {
    let twin_path = site.migrations.join("postgres").join(case_file());
    let _ = fs::remove_file(&twin_path);
    site.add_migration(&case_file(), shared);
    if let Some(sql) = twin {
        fs::write(&twin_path, sql).unwrap();
    }
}

#[test]
fn the_job_refuses_every_lint_case_with_exit_3_and_applies_nothing() {
    let server = server!("the_job_refuses_every_lint_case_with_exit_3_and_applies_nothing");
    let site = PgSite::new(&server);
    let before = shape(&site.db);
    let rows = site.secrets();
    let mut wrong = Vec::new();
    let case_name = case_name();
    for case in CASES {
        let with_head = |sql: &str| {
            if sql.starts_with("--") {
                sql.to_owned()
            } else {
                format!("{HEAD}{sql}")
            }
        };
        write_case(
            &site,
            &with_head(case.shared),
            case.twin.map(with_head).as_deref(),
        );
        let out = site.xtask(&["migrate", "--job"], &[]);
        let log = text(&out);
        // A file that cannot run at all is an error (1), not a refused contract (3).
        let expected = if case.rule == "no-transaction-one-statement" {
            1
        } else {
            3
        };
        if out.status.code() != Some(expected)
            || !log.contains(&case_name)
            || !log.contains(case.rule)
        {
            wrong.push(format!(
                "{}{}: expected exit {expected} naming {case_name} and {}, got {:?}:\n{log}",
                case.shared,
                case.twin.unwrap_or_default(),
                case.rule,
                out.status.code()
            ));
        }
        if site.db.versions() != shipped() || shape(&site.db) != before {
            wrong.push(format!(
                "{}: the schema changed",
                case.twin.unwrap_or(case.shared)
            ));
            break;
        }
    }
    assert_eq!(site.secrets(), rows, "no row was touched");
    assert!(
        wrong.is_empty(),
        "{} of {} cases wrong:\n{}",
        wrong.len(),
        CASES.len(),
        wrong.join("\n\n")
    );
}

#[test]
fn the_job_plans_recipes_as_expand_and_applies_not_valid_then_validate() {
    let server = server!("the_job_plans_recipes_as_expand_and_applies_not_valid_then_validate");
    let site = PgSite::new(&server);
    for (shared, twin) in ALLOWED {
        write_case(&site, shared, *twin);
        let out = site.xtask(&["migrate", "--job", "--dry-run"], &[]);
        let plan = text(&out);
        let marked = twin.unwrap_or(shared).starts_with("-- contract:");
        let case_name = case_name();
        let expected = if marked {
            format!("contract  {case_name} (")
        } else {
            format!("expand    {case_name}")
        };
        assert!(
            out.status.success() && plan.contains(&expected),
            "{expected}: {plan}"
        );
    }
    write_case(
        &site,
        support::lint_cases::PORTABLE_NOOP,
        Some(
            // NOT VALID still refuses the previous release's bad writes: a contract.
            "-- contract: every writer of the previous release sets a non-empty name\n\
             ALTER TABLE secrets ADD CONSTRAINT secrets_name_lint CHECK (name <> '') NOT VALID;\n",
        ),
    );
    fs::write(
        site.migrations.join(mig(next() + 1, "validate")),
        support::lint_cases::PORTABLE_NOOP,
    )
    .unwrap();
    fs::write(
        site.migrations
            .join("postgres")
            .join(mig(next() + 1, "validate")),
        "ALTER TABLE secrets VALIDATE CONSTRAINT secrets_name_lint;\n",
    )
    .unwrap();
    let out = site.xtask(&["migrate", "--job", "--allow-contract"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(site.db.versions(), versions_to(next() + 1));
    assert!(
        shape(&site.db)
            .contains(&"constraint secrets_name_lint CHECK ((name <> ''::text)) true".to_owned()),
        "{:?}",
        shape(&site.db)
    );
}

#[test]
fn a_twin_missing_a_check_constraint_fails_the_parity_check() {
    let server = server!("a_twin_missing_a_check_constraint_fails_the_parity_check");
    let site = PgSite::empty(&server);
    let ok = site.xtask(&["migrations", "check", "--postgres", &server], &[]);
    assert!(ok.status.success(), "{}", text(&ok));
    let twin = site
        .migrations
        .join("postgres/V3__secrets_check_constraints.sql");
    let sql = fs::read_to_string(&twin).unwrap().replace(
        "    ADD CONSTRAINT secrets_name_length CHECK (char_length(name) BETWEEN 1 AND 128),\n",
        "",
    );
    assert!(!sql.contains("secrets_name_length"));
    fs::write(&twin, sql).unwrap();
    let drift = site.xtask(&["migrations", "check", "--postgres", &server], &[]);
    let log = text(&drift);
    assert!(!drift.status.success(), "{log}");
    assert!(
        log.contains("secrets: a CHECK on (name) on SQLite, none on Postgres"),
        "{log}"
    );
}
