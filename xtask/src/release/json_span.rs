//! Finds where a JSON pointer's string value sits in the text, so a version
//! can be replaced in place: every other byte of the file (key order,
//! indentation, line endings, the trailing newline) stays exactly as it was.

use std::ops::Range;

/// The byte range of the string at `pointer` (RFC 6901), quotes excluded.
pub fn string_span(text: &str, pointer: &str) -> Result<Range<usize>, String> {
    let tokens = parse_pointer(pointer)?;
    let mut scanner = Scanner {
        text: text.as_bytes(),
        pos: 0,
    };
    scanner.skip_ws();
    for (depth, token) in tokens.iter().enumerate() {
        let found = match scanner.peek() {
            Some(b'{') => scanner.find_member(token)?,
            Some(b'[') => scanner.find_element(token)?,
            _ => false,
        };
        if !found {
            let at = tokens[..depth]
                .iter()
                .map(|t| format!("/{t}"))
                .collect::<String>();
            return Err(format!(
                "nothing at `{pointer}` (no `{token}` under `{at}`)"
            ));
        }
    }
    if scanner.peek() != Some(b'"') {
        return Err(format!("the value at `{pointer}` is not a string"));
    }
    let start = scanner.pos;
    scanner.skip_string()?;
    Ok(start + 1..scanner.pos - 1)
}

fn parse_pointer(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Err("an empty JSON pointer names the whole document, not a version".into());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!("JSON pointer `{pointer}` must start with `/`"));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

struct Scanner<'a> {
    text: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        self.skip_ws();
        if self.peek() != Some(byte) {
            return Err(format!(
                "malformed JSON at byte {}: expected `{}`",
                self.pos, byte as char
            ));
        }
        self.pos += 1;
        Ok(())
    }

    /// Inside an object at `{`: moves to the value of `key`; false if absent.
    fn find_member(&mut self, key: &str) -> Result<bool, String> {
        self.expect(b'{')?;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            return Ok(false);
        }
        loop {
            self.skip_ws();
            let start = self.pos;
            self.skip_string()?;
            let name: String = serde_json::from_slice(&self.text[start..self.pos])
                .map_err(|e| format!("malformed JSON key at byte {start}: {e}"))?;
            self.expect(b':')?;
            self.skip_ws();
            if name == key {
                return Ok(true);
            }
            self.skip_value()?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => return Ok(false),
                _ => {
                    return Err(format!(
                        "malformed JSON at byte {}: expected `,` or `}}`",
                        self.pos
                    ));
                }
            }
        }
    }

    /// Inside an array at `[`: moves to element `index`; false if absent.
    fn find_element(&mut self, index: &str) -> Result<bool, String> {
        let Ok(index) = index.parse::<usize>() else {
            return Ok(false);
        };
        self.expect(b'[')?;
        for _ in 0..index {
            self.skip_ws();
            if self.peek() == Some(b']') {
                return Ok(false);
            }
            self.skip_value()?;
            self.skip_ws();
            if self.peek() != Some(b',') {
                return Ok(false);
            }
            self.pos += 1;
        }
        self.skip_ws();
        Ok(self.peek() != Some(b']'))
    }

    fn skip_string(&mut self) -> Result<(), String> {
        let start = self.pos;
        if self.peek() != Some(b'"') {
            return Err(format!("malformed JSON at byte {start}: expected a string"));
        }
        self.pos += 1;
        while let Some(byte) = self.peek() {
            self.pos += 1;
            match byte {
                b'\\' => self.pos += 1,
                b'"' => return Ok(()),
                _ => {}
            }
        }
        Err(format!(
            "malformed JSON: the string at byte {start} never ends"
        ))
    }

    fn skip_value(&mut self) -> Result<(), String> {
        match self.peek() {
            Some(b'"') => self.skip_string(),
            Some(open @ (b'{' | b'[')) => {
                let close = if open == b'{' { b'}' } else { b']' };
                self.pos += 1;
                loop {
                    self.skip_ws();
                    match self.peek() {
                        Some(b) if b == close => {
                            self.pos += 1;
                            return Ok(());
                        }
                        Some(b',' | b':') => self.pos += 1,
                        Some(_) => self.skip_value()?,
                        None => return Err("malformed JSON: unexpected end of file".into()),
                    }
                }
            }
            Some(_) => {
                let start = self.pos;
                while matches!(self.peek(), Some(b) if !matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                {
                    self.pos += 1;
                }
                if self.pos == start {
                    return Err(format!("malformed JSON at byte {start}"));
                }
                Ok(())
            }
            None => Err("malformed JSON: unexpected end of file".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"{
  "name": "app",
  "version": "0.1.0",
  "packages": {
    "": { "name": "app", "version": "0.1.0" },
    "node_modules/dep": { "version": "0.1.0", "list": [1, "0.1.0", {"a": [true, null]}] }
  }
}
"#;

    fn at(text: &str, pointer: &str) -> Result<String, String> {
        string_span(text, pointer).map(|r| text[r].to_owned())
    }

    #[test]
    fn finds_exactly_the_value_named() {
        let top = string_span(LOCK, "/version").unwrap();
        let root_pkg = string_span(LOCK, "/packages//version").unwrap();
        let dep = string_span(LOCK, "/packages/node_modules~1dep/version").unwrap();
        assert!(top.start < root_pkg.start && root_pkg.start < dep.start);
        for range in [top, root_pkg, dep] {
            assert_eq!(&LOCK[range], "0.1.0");
        }
        assert_eq!(
            at(LOCK, "/packages/node_modules~1dep/list/1").unwrap(),
            "0.1.0"
        );
    }

    #[test]
    fn explains_what_is_missing_or_wrong() {
        assert!(
            at(LOCK, "/nope")
                .unwrap_err()
                .contains("nothing at `/nope`")
        );
        assert!(at(LOCK, "/packages").unwrap_err().contains("not a string"));
        assert!(
            at(LOCK, "version")
                .unwrap_err()
                .contains("must start with `/`")
        );
        assert!(at(r#"{"version": "0.1.0""#, "/other").is_err());
        assert!(at(r#"{"a": "unterminated}"#, "/b").is_err());
    }

    #[test]
    fn handles_escapes_in_keys_and_values() {
        let text = r#"{"a\"b": "x\"y", "version": "1.0.0"}"#;
        assert_eq!(at(text, "/a\"b").unwrap(), r#"x\"y"#);
        assert_eq!(at(text, "/version").unwrap(), "1.0.0");
    }
}
