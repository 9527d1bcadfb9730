//! The UTC timestamps written into backup names, the journal and lock files.

/// `20261124T001500.123Z`: sorts in time order as text.
pub fn timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    )
}

/// `2026-11-24T00:15:00.123Z`: a moment in UTC for machine-readable output.
pub fn rfc3339(moment: time::OffsetDateTime) -> String {
    let utc = moment.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second(),
        utc.millisecond()
    )
}

/// A file's modification time as [`rfc3339`]; None when it is before 1970
/// or past the year 9999 (a `touch -d` away, and no reason to fail a listing).
pub fn system_time_rfc3339(moment: std::time::SystemTime) -> Option<String> {
    let nanos = match moment.duration_since(std::time::UNIX_EPOCH) {
        Ok(after) => i128::try_from(after.as_nanos()).ok()?,
        Err(before) => -i128::try_from(before.duration().as_nanos()).ok()?,
    };
    let moment = time::OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()?;
    Some(rfc3339(moment))
}

/// A backup name's `20261124T001500.123Z` as `2026-11-24T00:15:00.123Z`;
/// None when `stamp` is not one [`timestamp`] wrote, or not a real moment
/// (month 13, 99:99).
pub fn stamp_to_rfc3339(stamp: &str) -> Option<String> {
    let text = stamp_shape_to_rfc3339(stamp)?;
    let real = time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339);
    real.is_ok().then_some(text)
}

fn stamp_shape_to_rfc3339(stamp: &str) -> Option<String> {
    let digits = |range: std::ops::Range<usize>| -> Option<&str> {
        let part = stamp.get(range)?;
        part.bytes().all(|b| b.is_ascii_digit()).then_some(part)
    };
    let shape = stamp.len() == 20 && stamp.get(8..9) == Some("T") && stamp.get(15..16) == Some(".");
    if !shape || !stamp.ends_with('Z') {
        return None;
    }
    Some(format!(
        "{}-{}-{}T{}:{}:{}.{}Z",
        digits(0..4)?,
        digits(4..6)?,
        digits(6..8)?,
        digits(9..11)?,
        digits(11..13)?,
        digits(13..15)?,
        digits(16..19)?
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_stamp_reads_back_as_the_moment_it_was_written() {
        let stamp = super::timestamp();
        let text = super::stamp_to_rfc3339(&stamp).unwrap();
        let parsed =
            time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
                .unwrap();
        assert_eq!(super::rfc3339(parsed), text);
        assert_eq!(
            super::stamp_to_rfc3339("20261124T001500.123Z").as_deref(),
            Some("2026-11-24T00:15:00.123Z")
        );
        assert_eq!(super::stamp_to_rfc3339("20261124T001500Z"), None);
        assert_eq!(super::stamp_to_rfc3339("2026112xT001500.123Z"), None);
        assert_eq!(super::stamp_to_rfc3339("20261399T999999.999Z"), None);
        assert_eq!(super::stamp_to_rfc3339("20260230T000000.000Z"), None);
    }

    #[test]
    fn a_file_time_past_the_year_9999_is_unknown_not_a_panic() {
        use std::time::{Duration, UNIX_EPOCH};
        let far = UNIX_EPOCH + Duration::from_secs(253_402_300_800);
        assert_eq!(super::system_time_rfc3339(far), None);
        let before = UNIX_EPOCH - Duration::from_secs(86_400);
        assert_eq!(
            super::system_time_rfc3339(before).as_deref(),
            Some("1969-12-31T00:00:00.000Z")
        );
    }
}
