//! The binary COPY format, written to and read from Postgres.

use std::io::{Read, Write};

use anyhow::{Context, bail};
use bytes::BytesMut;
use postgres::{
    CopyInWriter, CopyOutReader,
    types::{IsNull, ToSql, Type},
};

use super::cells::Cell;
use crate::pg;

/// PostgreSQL's binary COPY format: this signature, then flags and header
/// extension length (both 0).
pub(super) const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Encodes rows in the binary COPY format into large chunks. (The client's
/// own `BinaryCopyInWriter` enters its runtime once per row, which cost a
/// third of the copy's time.)
pub(super) struct BinaryRows<'a> {
    sink: CopyInWriter<'a>,
    buf: BytesMut,
    types: Vec<Type>,
}

impl<'a> BinaryRows<'a> {
    const CHUNK: usize = 256 * 1024;

    pub(super) fn new(sink: CopyInWriter<'a>, types: Vec<Type>) -> Self {
        let mut buf = BytesMut::with_capacity(Self::CHUNK + 64 * 1024);
        buf.extend_from_slice(COPY_HEADER);
        BinaryRows { sink, buf, types }
    }

    pub(super) fn write(&mut self, cells: &[Cell]) -> Result<(), String> {
        let fields = i16::try_from(cells.len()).map_err(|_| "too many columns".to_owned())?;
        self.buf.extend_from_slice(&fields.to_be_bytes());
        for (cell, ty) in cells.iter().zip(&self.types) {
            let at = self.buf.len();
            self.buf.extend_from_slice(&[0; 4]);
            let length = match cell.to_sql(ty, &mut self.buf).map_err(|e| e.to_string())? {
                IsNull::Yes => -1,
                IsNull::No => i32::try_from(self.buf.len() - at - 4)
                    .map_err(|_| "a value over 2 GiB".to_owned())?,
            };
            self.buf[at..at + 4].copy_from_slice(&length.to_be_bytes());
        }
        if self.buf.len() >= Self::CHUNK {
            self.send().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    pub(super) fn send(&mut self) -> std::io::Result<()> {
        self.sink.write_all(&self.buf)?;
        self.sink.flush()?;
        self.buf.clear();
        Ok(())
    }

    /// Ends the stream; the server's row count.
    pub(super) fn finish(mut self) -> anyhow::Result<u64> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.send().context("sending the last rows")?;
        self.sink
            .finish()
            .map_err(|e| anyhow::anyhow!("{}", pg::describe(&e)))
    }
}

/// Reads rows of the binary COPY format.
pub(super) struct BinaryRowsIn<'a> {
    stream: std::io::BufReader<CopyOutReader<'a>>,
}

impl<'a> BinaryRowsIn<'a> {
    pub(super) fn new(stream: CopyOutReader<'a>) -> anyhow::Result<Self> {
        let mut stream = std::io::BufReader::with_capacity(256 * 1024, stream);
        let mut header = [0u8; 19];
        stream
            .read_exact(&mut header)
            .context("reading the COPY header")?;
        if header[..11] != COPY_HEADER[..11] {
            bail!("the server's COPY stream has no binary signature");
        }
        let extension = u32::from_be_bytes([header[15], header[16], header[17], header[18]]);
        std::io::copy(
            &mut (&mut stream).take(u64::from(extension)),
            &mut std::io::sink(),
        )?;
        Ok(BinaryRowsIn { stream })
    }

    /// Starts the next row; false at the end of the stream.
    pub(super) fn next_row(&mut self, columns: usize) -> anyhow::Result<bool> {
        let mut count = [0u8; 2];
        self.stream
            .read_exact(&mut count)
            .context("reading the COPY stream")?;
        match i16::from_be_bytes(count) {
            -1 => Ok(false),
            n if usize::try_from(n).ok() == Some(columns) => Ok(true),
            n => bail!("the server sent a row of {n} fields, expected {columns}"),
        }
    }

    /// The next field into `raw`; false when it is NULL.
    pub(super) fn field(&mut self, raw: &mut Vec<u8>) -> anyhow::Result<bool> {
        let mut length = [0u8; 4];
        self.stream
            .read_exact(&mut length)
            .context("reading the COPY stream")?;
        let Ok(length) = usize::try_from(i32::from_be_bytes(length)) else {
            return Ok(false);
        };
        raw.resize(length, 0);
        self.stream
            .read_exact(raw)
            .context("reading the COPY stream")?;
        Ok(true)
    }
}
