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

/// A backup name's `20261124T001500.123Z` as `2026-11-24T00:15:00.123Z`;
/// None when `stamp` is not one [`timestamp`] wrote.
pub fn stamp_to_rfc3339(stamp: &str) -> Option<String> {
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
    }
}
