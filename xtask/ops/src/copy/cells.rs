//! One value, converted from SQLite's type to the target column's type.

use postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use rusqlite::types::ValueRef;
use time::{Date, OffsetDateTime, PrimitiveDateTime, format_description::well_known::Rfc3339};

/// One value, converted to the target column's type.
#[derive(Debug, Clone)]
pub(super) enum Cell {
    Null,
    Bool(bool),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Text(String),
    Bytes(Vec<u8>),
    TimestampTz(OffsetDateTime),
    Timestamp(PrimitiveDateTime),
    Date(Date),
    Json(serde_json::Value),
}

impl ToSql for Cell {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Cell::Null => Ok(IsNull::Yes),
            Cell::Bool(v) => v.to_sql(ty, out),
            Cell::I16(v) => v.to_sql(ty, out),
            Cell::I32(v) => v.to_sql(ty, out),
            Cell::I64(v) => v.to_sql(ty, out),
            Cell::F32(v) => v.to_sql(ty, out),
            Cell::F64(v) => v.to_sql(ty, out),
            Cell::Text(v) => v.to_sql(ty, out),
            Cell::Bytes(v) => v.to_sql(ty, out),
            Cell::TimestampTz(v) => v.to_sql(ty, out),
            Cell::Timestamp(v) => v.to_sql(ty, out),
            Cell::Date(v) => v.to_sql(ty, out),
            Cell::Json(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl Cell {
    /// Bytes that identify the value the same way whichever side it came
    /// from: a tag (NULL or not), then the value, length-prefixed where its
    /// length varies, so no two rows can run into each other.
    pub(super) fn canonical(&self, out: &mut Vec<u8>) {
        let mut bytes = |b: &[u8]| {
            out.push(1);
            out.extend_from_slice(&(b.len() as u64).to_be_bytes());
            out.extend_from_slice(b);
        };
        match self {
            Cell::Null => out.push(0),
            Cell::Bool(v) => bytes(&[u8::from(*v)]),
            Cell::I16(v) => bytes(&i64::from(*v).to_be_bytes()),
            Cell::I32(v) => bytes(&i64::from(*v).to_be_bytes()),
            Cell::I64(v) => bytes(&v.to_be_bytes()),
            Cell::F32(v) => bytes(&v.to_bits().to_be_bytes()),
            Cell::F64(v) => bytes(&v.to_bits().to_be_bytes()),
            Cell::Text(v) => bytes(v.as_bytes()),
            Cell::Bytes(v) => bytes(v),
            Cell::TimestampTz(v) => bytes(&v.unix_timestamp_nanos().to_be_bytes()),
            Cell::Timestamp(v) => bytes(&v.assume_utc().unix_timestamp_nanos().to_be_bytes()),
            Cell::Date(v) => bytes(&v.to_julian_day().to_be_bytes()),
            Cell::Json(v) => bytes(v.to_string().as_bytes()),
        }
    }
}

/// Converts one SQLite value to the target column's type, or says why not.
pub(super) fn convert(value: ValueRef<'_>, ty: &Type) -> Result<Cell, String> {
    use ValueRef::{Blob, Integer, Null, Real, Text};
    let text = |bytes: &[u8]| {
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| "text that is not UTF-8".to_owned())
    };
    let cell = match (value, ty) {
        (Null, _) => Cell::Null,
        (Integer(v), &Type::BOOL) if v == 0 || v == 1 => Cell::Bool(v == 1),
        (Text(t), &Type::BOOL) => match t {
            b"1" | b"t" | b"true" | b"TRUE" => Cell::Bool(true),
            b"0" | b"f" | b"false" | b"FALSE" => Cell::Bool(false),
            _ => {
                return Err(format!(
                    "a text of {} byte(s) is not a boolean (0/1, t/f, true/false)",
                    t.len()
                ));
            }
        },
        (Integer(v), &Type::INT2) => {
            Cell::I16(i16::try_from(v).map_err(|_| "the value does not fit smallint".to_owned())?)
        }
        (Integer(v), &Type::INT4) => {
            Cell::I32(i32::try_from(v).map_err(|_| "the value does not fit integer".to_owned())?)
        }
        (Integer(v), &Type::INT8) => Cell::I64(v),
        (Integer(v), &Type::FLOAT4) => Cell::F32(v as f32),
        (Integer(v), &Type::FLOAT8) => Cell::F64(v as f64),
        (Real(v), &Type::FLOAT4) => Cell::F32(v as f32),
        (Real(v), &Type::FLOAT8) => Cell::F64(v),
        (Text(t), &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR | &Type::NAME) => {
            Cell::Text(text(t)?)
        }
        (Integer(v), &Type::TEXT | &Type::VARCHAR) => Cell::Text(v.to_string()),
        (Real(v), &Type::TEXT | &Type::VARCHAR) => Cell::Text(v.to_string()),
        (Blob(b), &Type::BYTEA) => Cell::Bytes(b.to_vec()),
        (Text(t), &Type::BYTEA) => Cell::Bytes(t.to_vec()),
        (Text(t), &Type::TIMESTAMPTZ) => Cell::TimestampTz(parse_timestamp(&text(t)?)?),
        (Integer(v), &Type::TIMESTAMPTZ) => Cell::TimestampTz(
            OffsetDateTime::from_unix_timestamp(v)
                .map_err(|_| "the integer is not a Unix time".to_owned())?,
        ),
        (Text(t), &Type::TIMESTAMP) => {
            let ts = parse_timestamp(&text(t)?)?.to_offset(time::UtcOffset::UTC);
            Cell::Timestamp(PrimitiveDateTime::new(ts.date(), ts.time()))
        }
        (Text(t), &Type::DATE) => {
            let t = text(t)?;
            Cell::Date(
                OffsetDateTime::parse(&format!("{t}T00:00:00Z"), &Rfc3339)
                    .map(OffsetDateTime::date)
                    .map_err(|_| "the text is not a date (YYYY-MM-DD)".to_owned())?,
            )
        }
        (Text(t), &Type::JSON | &Type::JSONB) => {
            let t = text(t)?;
            Cell::Json(serde_json::from_str(&t).map_err(|e| {
                format!(
                    "the text is not JSON (at line {}, column {})",
                    e.line(),
                    e.column()
                )
            })?)
        }
        (value, ty) => {
            return Err(format!(
                "a SQLite {} cannot be converted to {ty}",
                match value {
                    Null => "NULL",
                    Integer(_) => "integer",
                    Real(_) => "real",
                    Text(_) => "text",
                    Blob(_) => "blob",
                }
            ));
        }
    };
    Ok(cell)
}

/// RFC 3339 (`2026-11-24T01:02:03Z`, the service's form) or SQLite's
/// `CURRENT_TIMESTAMP` form (`2026-11-24 01:02:03`, UTC).
pub(super) fn parse_timestamp(text: &str) -> Result<OffsetDateTime, String> {
    let sqlite_form = |t: &str| {
        let (date, time) = t.split_once(' ')?;
        OffsetDateTime::parse(&format!("{date}T{time}Z"), &Rfc3339).ok()
    };
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .or_else(|| sqlite_form(text))
        .ok_or(())
        .map_err(|_| {
            "the text is not a timestamp (RFC 3339, or YYYY-MM-DD HH:MM:SS in UTC)".to_owned()
        })
}

/// A value read back from the target (binary format; None: NULL) as the
/// same [`Cell`] the conversion produced.
pub(super) fn cell_from_sql(
    ty: &Type,
    raw: Option<&[u8]>,
) -> Result<Cell, Box<dyn std::error::Error + Sync + Send>> {
    pub(super) fn get<'a, T: FromSql<'a>>(
        ty: &Type,
        raw: Option<&'a [u8]>,
        wrap: impl Fn(T) -> Cell,
    ) -> Result<Cell, Box<dyn std::error::Error + Sync + Send>> {
        Ok(<Option<T> as FromSql>::from_sql_nullable(ty, raw)?.map_or(Cell::Null, wrap))
    }
    match *ty {
        Type::BOOL => get(ty, raw, Cell::Bool),
        Type::INT2 => get(ty, raw, Cell::I16),
        Type::INT4 => get(ty, raw, Cell::I32),
        Type::INT8 => get(ty, raw, Cell::I64),
        Type::FLOAT4 => get(ty, raw, Cell::F32),
        Type::FLOAT8 => get(ty, raw, Cell::F64),
        Type::BYTEA => get(ty, raw, Cell::Bytes),
        Type::TIMESTAMPTZ => get(ty, raw, Cell::TimestampTz),
        Type::TIMESTAMP => get(ty, raw, Cell::Timestamp),
        Type::DATE => get(ty, raw, Cell::Date),
        Type::JSON | Type::JSONB => get(ty, raw, Cell::Json),
        _ => get(ty, raw, Cell::Text),
    }
}

#[cfg(test)]
mod tests {
    use super::{super::verify::row_digest, *};

    fn ok(value: ValueRef<'_>, ty: &Type) -> Cell {
        convert(value, ty).unwrap_or_else(|e| panic!("{value:?} -> {ty}: {e}"))
    }

    #[test]
    fn integers_are_range_checked_and_booleans_read_in_sqlite_forms() {
        assert!(matches!(
            ok(ValueRef::Integer(32_767), &Type::INT2),
            Cell::I16(32_767)
        ));
        let too_big = convert(ValueRef::Integer(32_768), &Type::INT2).unwrap_err();
        assert!(too_big.contains("does not fit smallint"), "{too_big}");
        assert!(convert(ValueRef::Integer(1 << 40), &Type::INT4).is_err());
        for (text, want) in [(&b"t"[..], true), (b"false", false), (b"1", true)] {
            assert!(matches!(ok(ValueRef::Text(text), &Type::BOOL), Cell::Bool(b) if b == want));
        }
        assert!(convert(ValueRef::Text(b"yes please"), &Type::BOOL).is_err());
        assert!(convert(ValueRef::Real(0.5), &Type::BOOL).is_err());
    }

    #[test]
    fn timestamps_in_both_forms_name_the_same_instant() {
        let Cell::TimestampTz(a) = ok(ValueRef::Text(b"2026-11-24T01:02:03Z"), &Type::TIMESTAMPTZ)
        else {
            panic!("not a timestamp")
        };
        let Cell::TimestampTz(b) = ok(ValueRef::Text(b"2026-11-24 01:02:03"), &Type::TIMESTAMPTZ)
        else {
            panic!("not a timestamp")
        };
        assert_eq!(a, b);
        assert!(convert(ValueRef::Text(b"24/11/2026"), &Type::TIMESTAMPTZ).is_err());
        assert!(convert(ValueRef::Text(&[0xff, 0xfe]), &Type::TEXT).is_err());
    }

    #[test]
    fn the_checksum_tells_null_from_empty_and_ignores_row_order() {
        let mut buffer = Vec::new();
        let null = row_digest(&[Cell::Null, Cell::Text("x".into())], &mut buffer);
        let empty = row_digest(
            &[Cell::Text(String::new()), Cell::Text("x".into())],
            &mut buffer,
        );
        assert_ne!(null, empty);
        let one = row_digest(&[Cell::I64(1)], &mut buffer);
        let two = row_digest(&[Cell::I64(2)], &mut buffer);
        assert_eq!(one.wrapping_add(two), two.wrapping_add(one));
    }
}
