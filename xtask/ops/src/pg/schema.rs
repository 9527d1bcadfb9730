//! The Postgres half of the schema model, read by oid from the catalogs of
//! every non-system schema (a table outside `public`, or a `search_path`
//! other than `public`, is seen). A relation in `current_schema()` is
//! named bare, any other as `schema.name`. Beyond the engine-neutral model,
//! what only two Postgres schemas can be compared on is read as the server
//! renders it, names aside: every constraint (`pg_get_constraintdef`: NOT
//! VALID, NO INHERIT, DEFERRABLE, ON UPDATE), every index
//! (`pg_get_indexdef`: method, DESC, collation, WHERE), each column's
//! collation, identity, generation and storage, row level security and
//! policies, the relation's kind; and as objects views, materialized views,
//! rules, triggers and sequences no column owns.

use anyhow::Context;
use postgres::{GenericClient, types::Oid};

use crate::schema::{
    checks,
    model::{Objects, Schema, Shape, Table, column_type, foreign_key, partial_index},
};
use secrets_contract::schema::HISTORY_TABLE;

/// Relations of the database's own schemas (system schemas, what
/// extensions own and sequences a column owns left out), with the name the
/// model gives them.
const RELATIONS: &str = "SELECT c.oid, CASE WHEN n.nspname = current_schema() THEN c.relname::text \
       ELSE n.nspname::text || '.' || c.relname::text END, c.relkind::text, \
       c.relrowsecurity, c.relforcerowsecurity \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)' \
       AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S') \
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass \
                       AND d.objid = c.oid AND (d.deptype = 'e' OR (c.relkind = 'S' AND d.deptype IN ('a', 'i')))) \
     ORDER BY 2";

/// Column names of an attribute-number array, in order.
const COLUMNS_OF: &str = "ARRAY(SELECT a.attname::text FROM unnest({keys}) WITH ORDINALITY k(n, i) \
     JOIN pg_attribute a ON a.attrelid = {rel} AND a.attnum = k.n ORDER BY k.i)";

fn columns_of(keys: &str, rel: &str) -> String {
    COLUMNS_OF.replace("{keys}", keys).replace("{rel}", rel)
}

struct Relation {
    oid: Oid,
    name: String,
    kind: String,
    row_security: bool,
    forced_row_security: bool,
}

fn relations(client: &mut impl GenericClient) -> anyhow::Result<Vec<Relation>> {
    let rows = client.query(RELATIONS, &[])?;
    Ok(rows
        .iter()
        .map(|r| Relation {
            oid: r.get(0),
            name: r.get(1),
            kind: r.get(2),
            row_security: r.get(3),
            forced_row_security: r.get(4),
        })
        .collect())
}

pub fn postgres(client: &mut impl GenericClient) -> anyhow::Result<Schema> {
    let mut schema = Schema::new();
    for relation in relations(client)? {
        if !matches!(relation.kind.as_str(), "r" | "p" | "f") || relation.name == HISTORY_TABLE {
            continue;
        }
        let table = table(client, &relation)
            .with_context(|| format!("reading the table {}", relation.name))?;
        schema.insert(relation.name, table);
    }
    Ok(schema)
}

fn table(client: &mut impl GenericClient, relation: &Relation) -> anyhow::Result<Table> {
    let mut table = Table::default();
    match relation.kind.as_str() {
        "p" => table.clauses.insert("kind: partitioned table".into()),
        "f" => table.clauses.insert("kind: foreign table".into()),
        _ => false,
    };
    if relation.row_security {
        table.clauses.insert("row level security enabled".into());
    }
    if relation.forced_row_security {
        table.clauses.insert("row level security forced".into());
    }
    read_columns(client, relation.oid, &mut table)?;
    read_constraints(client, relation.oid, &mut table)?;
    read_indexes(client, relation.oid, &mut table)?;
    for policy in client.query(
        "SELECT CASE WHEN p.polpermissive THEN 'permissive' ELSE 'restrictive' END || ' policy for ' || \
           p.polcmd::text || ' to ' || COALESCE((SELECT string_agg(CASE WHEN r = 0 THEN 'public' \
             ELSE pg_get_userbyid(r)::text END, ', ' ORDER BY 1) FROM unnest(p.polroles) r), '') || \
           COALESCE(' using (' || pg_get_expr(p.polqual, p.polrelid) || ')', '') || \
           COALESCE(' with check (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')', '') \
         FROM pg_policy p WHERE p.polrelid = $1",
        &[&relation.oid],
    )? {
        table.clauses.insert(policy.get(0));
    }
    Ok(table)
}

fn read_columns(
    client: &mut impl GenericClient,
    oid: Oid,
    table: &mut Table,
) -> anyhow::Result<()> {
    for column in client.query(
        "SELECT a.attname::text, a.attnotnull, format_type(a.atttypid, a.atttypmod), \
           pg_get_expr(d.adbin, d.adrelid), \
           CASE WHEN a.attcollation <> t.typcollation THEN ' COLLATE ' || quote_ident(co.collname) ELSE '' END || \
           CASE a.attidentity WHEN 'a' THEN ' GENERATED ALWAYS AS IDENTITY' \
             WHEN 'd' THEN ' GENERATED BY DEFAULT AS IDENTITY' ELSE '' END || \
           CASE WHEN a.attgenerated <> '' THEN ' GENERATED ALWAYS AS STORED' ELSE '' END || \
           CASE WHEN a.attstorage <> t.typstorage THEN ' STORAGE ' || a.attstorage::text ELSE '' END \
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         LEFT JOIN pg_collation co ON co.oid = a.attcollation \
         WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped",
        &[&oid],
    )? {
        let name: String = column.get(0);
        let default: Option<String> = column.get(3);
        let extra: String = column.get(4);
        let declared = format!("{}{}", column.get::<_, String>(2), extra);
        table
            .types
            .insert(name.clone(), column_type(&declared, default.as_deref()));
        table.columns.insert(name, column.get(1));
    }
    Ok(())
}

fn read_constraints(
    client: &mut impl GenericClient,
    oid: Oid,
    table: &mut Table,
) -> anyhow::Result<()> {
    let constraints = client.query(
        &format!(
            "SELECT c.contype::text, {}, COALESCE(cf.relname::text, ''), {}, c.confdeltype::text, \
               pg_get_constraintdef(c.oid), c.confupdtype::text \
             FROM pg_constraint c LEFT JOIN pg_class cf ON cf.oid = c.confrelid \
             WHERE c.conrelid = $1",
            columns_of("c.conkey", "c.conrelid"),
            columns_of("c.confkey", "c.confrelid")
        ),
        &[&oid],
    )?;
    for c in constraints {
        let kind: String = c.get(0);
        let columns: Vec<String> = c.get::<_, Option<Vec<String>>>(1).unwrap_or_default();
        let definition: String = c.get(5);
        // Every constraint as the server renders it, its name aside.
        table.clauses.insert(format!("constraint {definition}"));
        match kind.as_str() {
            "p" => table.primary_key = columns,
            "u" => {
                table.unique.insert(columns);
            }
            "c" => {
                table.checks.extend(checks::in_create_table(&definition));
                let mut read = columns.clone();
                read.sort();
                table.check_columns.push(read);
            }
            "f" => {
                let parent: String = c.get(2);
                let to: Vec<String> = c.get(3);
                table.foreign_keys.insert(foreign_key(
                    &columns,
                    &parent,
                    &to,
                    pg_action(&c.get::<_, String>(4)),
                    pg_action(&c.get::<_, String>(6)),
                ));
            }
            _ => {}
        }
    }
    table.check_columns.sort();
    Ok(())
}

fn read_indexes(
    client: &mut impl GenericClient,
    oid: Oid,
    table: &mut Table,
) -> anyhow::Result<()> {
    let indexes = client.query(
        &format!(
            "SELECT {}, i.indisunique, pg_get_expr(i.indpred, i.indrelid), \
               EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid), \
               regexp_replace(pg_get_indexdef(i.indexrelid), '^CREATE (UNIQUE )?INDEX .*? ON (ONLY )?.*? USING ', \
                 'CREATE \\1INDEX ON \\2 USING ') \
             FROM pg_index i WHERE i.indrelid = $1",
            columns_of("i.indkey::int2[]", "i.indrelid")
        ),
        &[&oid],
    )?;
    for index in indexes {
        let columns: Vec<String> = index.get(0);
        let predicate: Option<String> = index.get(2);
        let of_constraint: bool = index.get(3);
        // Method, sort order, collations, WHERE: as the server renders it, names aside.
        table.clauses.insert(index.get(4));
        if of_constraint {
            continue;
        }
        if let Some(predicate) = predicate {
            table
                .partial_indexes
                .insert(partial_index(index.get(1), &columns, &predicate));
        } else if index.get(1) {
            table.unique.insert(columns);
        } else {
            table.indexes.insert(columns);
        }
    }
    Ok(())
}

/// A foreign key action as `pg_constraint` codes it.
fn pg_action(code: &str) -> &'static str {
    match code {
        "c" => "CASCADE",
        "r" => "RESTRICT",
        "n" => "SET NULL",
        "d" => "SET DEFAULT",
        _ => "NO ACTION",
    }
}

pub fn postgres_shape(client: &mut impl GenericClient) -> anyhow::Result<Shape> {
    let mut objects = Objects::new();
    for relation in relations(client)? {
        let definition = match relation.kind.as_str() {
            "v" => ("view", "pg_get_viewdef($1::oid)"),
            "m" => ("materialized view", "pg_get_viewdef($1::oid)"),
            "S" => (
                "sequence",
                "(SELECT format_type(s.seqtypid, NULL) || ' start ' || s.seqstart || ' increment ' || \
                   s.seqincrement || ' min ' || s.seqmin || ' max ' || s.seqmax || ' cache ' || s.seqcache || \
                   CASE WHEN s.seqcycle THEN ' cycle' ELSE '' END FROM pg_sequence s WHERE s.seqrelid = $1)",
            ),
            _ => continue,
        };
        let text: Option<String> = client
            .query_one(&format!("SELECT {}", definition.1), &[&relation.oid])?
            .get(0);
        objects.insert(
            format!("{} {}", definition.0, relation.name),
            checks::normalise(&text.unwrap_or_default()),
        );
    }
    let rows = client.query(
        "SELECT 'trigger ' || t.tgname::text || ' on ' || c.relname::text, pg_get_triggerdef(t.oid) \
         FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)' \
           AND NOT t.tgisinternal \
         UNION ALL \
         SELECT 'rule ' || r.rulename::text || ' on ' || c.relname::text, pg_get_ruledef(r.oid) \
         FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)' \
           AND r.rulename <> '_RETURN'",
        &[],
    )?;
    for row in rows {
        objects.insert(row.get(0), checks::normalise(row.get(1)));
    }
    Ok(Shape {
        tables: postgres(client)?,
        objects,
    })
}
