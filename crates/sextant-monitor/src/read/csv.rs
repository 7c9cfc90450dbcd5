//! CSV with a header row, read in large blocks by one thread that only finds
//! row boundaries (tracking quotes, so a quoted newline never splits a row);
//! worker threads split and profile the blocks, and their profiles are merged
//! in block order. Memory is a few blocks plus the sketches, whatever the
//! file's size.

use std::io::Read;
use std::sync::mpsc;

use super::ReadError;
use crate::profile::{DatasetProfile, ProfileOptions};

/// Block size of the CSV reader.
const BLOCK: usize = 4 << 20;

/// A block of whole rows and the line number of its first row.
struct Block {
    index: usize,
    first_line: u64,
    bytes: Vec<u8>,
}

/// Profiles CSV with a header row from `reader`; `name` names it in errors.
pub fn profile_csv<R: Read + Send>(
    mut reader: R,
    name: &str,
    opts: ProfileOptions,
) -> Result<DatasetProfile, ReadError> {
    let io = |source| ReadError::Io {
        path: name.to_string(),
        source,
    };
    let mut pending: Vec<u8> = Vec::with_capacity(BLOCK * 2);
    let columns = read_header(&mut reader, &mut pending, name)?;

    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8);
    let (block_tx, block_rx) = mpsc::sync_channel::<Block>(workers * 2);
    let block_rx = std::sync::Arc::new(std::sync::Mutex::new(block_rx));
    // Block profiles come back here and are merged in block order as soon as they can
    // be, so at most the blocks in flight are held, whatever the file's size.
    let (done_tx, done_rx) = mpsc::channel::<(usize, DatasetProfile)>();
    let mut profile = DatasetProfile::new(opts);
    for c in &columns {
        profile.column_index(c);
    }
    let mut waiting = std::collections::BTreeMap::new();
    let mut next = 0usize;
    let mut merge_ready = |profile: &mut DatasetProfile, arrived: Vec<(usize, DatasetProfile)>| {
        waiting.extend(arrived);
        while let Some(p) = waiting.remove(&next) {
            profile.merge(&p);
            next += 1;
        }
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let rx = block_rx.clone();
                let done = done_tx.clone();
                let columns = &columns;
                scope.spawn(move || -> Result<(), ReadError> {
                    loop {
                        let block = match rx.lock().expect("block queue").recv() {
                            Ok(b) => b,
                            Err(_) => return Ok(()),
                        };
                        let p = profile_block(&block, columns, name, opts)?;
                        if done.send((block.index, p)).is_err() {
                            return Ok(());
                        }
                    }
                })
            })
            .collect();
        drop(done_tx);
        // This thread finds row boundaries and hands blocks out.
        let mut rows = RowScanner::default();
        let mut line = 2u64;
        let mut index = 0usize;
        let mut eof = false;
        let mut result = Ok(());
        while !eof || !pending.is_empty() {
            if !eof && pending.len() < BLOCK {
                let start = pending.len();
                pending.resize(start + BLOCK, 0);
                match reader.read(&mut pending[start..]) {
                    Ok(n) => {
                        pending.truncate(start + n);
                        eof = n == 0;
                    }
                    Err(e) => {
                        pending.truncate(start);
                        result = Err(io(e));
                        break;
                    }
                }
                if !eof {
                    continue;
                }
            }
            rows.scan(&pending);
            let (cut, lines) = rows.cut(pending.len(), eof);
            if cut == 0 {
                if pending.len() > 256 << 20 {
                    result = Err(ReadError::Data {
                        path: name.to_string(),
                        line,
                        message: "a row longer than 256 MiB (an unclosed quote?)".into(),
                    });
                    break;
                }
                continue;
            }
            let rest = pending.split_off(cut);
            let bytes = std::mem::replace(&mut pending, rest);
            if block_tx
                .send(Block {
                    index,
                    first_line: line,
                    bytes,
                })
                .is_err()
            {
                break; // a worker failed; its error is reported below
            }
            index += 1;
            merge_ready(&mut profile, done_rx.try_iter().collect());
            line += lines;
            rows.consumed(cut);
            if eof {
                pending.clear();
            }
        }
        drop(block_tx);
        // Every worker's sender is gone once it returns: this drains to the end.
        merge_ready(&mut profile, done_rx.iter().collect());
        for h in handles {
            if let Err(e) = h.join().expect("a profiling thread panicked")
                && result.is_ok()
            {
                result = Err(e);
            }
        }
        result?;
        Ok(profile)
    })
}

/// Reads through the header row and returns its column names; `pending` keeps
/// what was read past it.
fn read_header(
    reader: &mut impl Read,
    pending: &mut Vec<u8>,
    name: &str,
) -> Result<Vec<String>, ReadError> {
    let header_end = loop {
        if let Some(i) = pending.iter().position(|&b| b == b'\n') {
            break i;
        }
        let mut buf = vec![0u8; 64 << 10];
        let n = reader.read(&mut buf).map_err(|source| ReadError::Io {
            path: name.to_string(),
            source,
        })?;
        if n == 0 {
            if pending.is_empty() {
                return Err(ReadError::Format {
                    path: name.to_string(),
                    message: "empty file: expected a header row".into(),
                });
            }
            break pending.len();
        }
        pending.extend_from_slice(&buf[..n]);
    };
    let columns = header_columns(&pending[..header_end]).map_err(|message| ReadError::Data {
        path: name.to_string(),
        line: 1,
        message,
    })?;
    pending.drain(..(header_end + 1).min(pending.len()));
    Ok(columns)
}

/// The column names of a header row (without its newline): trimmed, none
/// empty, none twice.
fn header_columns(line: &[u8]) -> Result<Vec<String>, String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line).map_err(|_| "the header is not UTF-8")?;
    let mut fields = Vec::new();
    split_fields(text, &mut fields)?;
    let columns: Vec<String> = fields.iter().map(|f| f.trim().to_string()).collect();
    if columns.iter().any(String::is_empty) {
        return Err("the header has an empty column name".into());
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = columns.iter().find(|c| !seen.insert(c.as_str())) {
        return Err(format!("column '{dup}' appears twice in the header"));
    }
    Ok(columns)
}

/// Where whole rows end in a buffer that grows by reads and is cut from the
/// front: a newline ends a row unless it is inside quotes, which may open in
/// one read and close in the next.
#[derive(Default)]
struct RowScanner {
    in_quotes: bool,
    /// Bytes of the buffer already scanned.
    scanned: usize,
    /// The end (after its newline) of the last whole row; 0 when none is whole yet.
    last_boundary: usize,
    /// Newlines before `last_boundary`.
    lines_to_boundary: u64,
    /// Newlines before `scanned`.
    lines_scanned: u64,
}

impl RowScanner {
    /// Scans the bytes of `buffer` past those already scanned.
    fn scan(&mut self, buffer: &[u8]) {
        for (i, &b) in buffer.iter().enumerate().skip(self.scanned) {
            if b == b'"' {
                self.in_quotes = !self.in_quotes;
            } else if b == b'\n' {
                self.lines_scanned += 1;
                if !self.in_quotes {
                    self.last_boundary = i + 1;
                    self.lines_to_boundary = self.lines_scanned;
                }
            }
        }
        self.scanned = buffer.len();
    }

    /// Where to cut a buffer of `len` bytes to hand out its whole rows (0: none
    /// yet), and the lines they span; at the end of the input, all of it.
    fn cut(&self, len: usize, eof: bool) -> (usize, u64) {
        if eof {
            (len, self.lines_scanned + 1)
        } else {
            (self.last_boundary, self.lines_to_boundary)
        }
    }

    /// Forgets the first `cut` bytes of the buffer, handed out as a block.
    fn consumed(&mut self, cut: usize) {
        self.lines_scanned -= self.lines_to_boundary.min(self.lines_scanned);
        self.scanned -= cut.min(self.scanned);
        self.last_boundary = 0;
        self.lines_to_boundary = 0;
    }
}

/// Profiles one block of whole CSV rows.
fn profile_block(
    block: &Block,
    columns: &[String],
    name: &str,
    opts: ProfileOptions,
) -> Result<DatasetProfile, ReadError> {
    let mut p = DatasetProfile::new(opts);
    for c in columns {
        p.column_index(c);
    }
    let text = std::str::from_utf8(&block.bytes).map_err(|e| {
        let line = block.first_line
            + block.bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64;
        ReadError::Data {
            path: name.to_string(),
            line,
            message: "not UTF-8".into(),
        }
    })?;
    let mut fields: Vec<&str> = Vec::with_capacity(columns.len());
    let mut owned: Vec<String> = Vec::new();
    let mut line = block.first_line;
    let mut rest = text;
    while !rest.is_empty() {
        let (row, next, lines) = next_row(rest);
        rest = next;
        let row_line = line;
        line += lines;
        let row = row.strip_suffix('\r').unwrap_or(row);
        if row.is_empty() {
            continue;
        }
        let quoted;
        let n = if row.contains('"') {
            owned.clear();
            split_quoted(row, &mut owned).map_err(|m| ReadError::Data {
                path: name.to_string(),
                line: row_line,
                message: m,
            })?;
            quoted = true;
            owned.len()
        } else {
            fields.clear();
            fields.extend(row.split(','));
            quoted = false;
            fields.len()
        };
        if n != columns.len() {
            return Err(ReadError::Data {
                path: name.to_string(),
                line: row_line,
                message: format!("{n} fields, but the header has {} columns", columns.len()),
            });
        }
        if quoted {
            for (c, f) in p.columns.iter_mut().zip(&owned) {
                c.push_text(Some(f));
            }
        } else {
            for (c, f) in p.columns.iter_mut().zip(&fields) {
                c.push_text(Some(f));
            }
        }
        p.item_count += 1;
    }
    Ok(p)
}

/// The next row (without its newline), the text after it, and the lines it spans.
fn next_row(text: &str) -> (&str, &str, u64) {
    let b = text.as_bytes();
    let mut in_quotes = false;
    let mut lines = 1;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'"' => in_quotes = !in_quotes,
            b'\n' if !in_quotes => return (&text[..i], &text[i + 1..], lines),
            b'\n' => lines += 1,
            _ => {}
        }
    }
    (text, "", lines)
}

/// Splits a header row (which may be quoted).
pub(super) fn split_fields(row: &str, out: &mut Vec<String>) -> Result<(), String> {
    if row.contains('"') {
        split_quoted(row, out)
    } else {
        out.extend(row.split(',').map(String::from));
        Ok(())
    }
}

/// Splits a row with RFC 4180 quoting (`""` inside quotes is a quote).
fn split_quoted(row: &str, out: &mut Vec<String>) -> Result<(), String> {
    let mut field = String::new();
    let mut chars = row.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (false, '"') if at_start => {
                quoted = true;
                at_start = false;
            }
            (false, '"') => return Err("a quote inside an unquoted field".into()),
            (false, ',') => {
                out.push(std::mem::take(&mut field));
                at_start = true;
            }
            (false, c) => {
                field.push(c);
                at_start = false;
            }
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => {
                quoted = false;
                if !matches!(chars.peek(), None | Some(',')) {
                    return Err("text after a closing quote".into());
                }
            }
            (true, c) => field.push(c),
        }
    }
    if quoted {
        return Err("an unclosed quote".into());
    }
    out.push(field);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(text: &str) -> Result<DatasetProfile, ReadError> {
        profile_csv(text.as_bytes(), "t.csv", ProfileOptions::default())
    }

    #[test]
    fn csv_with_quotes_crlf_and_missing_cells() {
        let p =
            profile("a,b,\"c d\"\r\n1,x,\"q,\"\"uoted\"\"\"\r\n2,,\"multi\nline\"\n3,y,z").unwrap();
        assert_eq!(p.item_count, 3);
        let names: Vec<_> = p.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c d"]);
        assert_eq!(p.column("a").unwrap().moments.sum, 6.0);
        assert_eq!(p.column("b").unwrap().missing, 1);
        let c: Vec<String> = p
            .column("c d")
            .unwrap()
            .categories()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert!(
            c.contains(&"q,\"uoted\"".to_string()) && c.contains(&"multi\nline".to_string()),
            "{c:?}"
        );
    }

    #[test]
    fn ragged_rows_name_their_line() {
        let e = profile("a,b\n1,2\n3\n").unwrap_err().to_string();
        assert_eq!(e, "t.csv: line 3: 1 fields, but the header has 2 columns");
        let e = profile("a,a\n1,2\n").unwrap_err().to_string();
        assert!(e.contains("appears twice"), "{e}");
        let e = profile("").unwrap_err().to_string();
        assert!(e.contains("empty file"), "{e}");
        let e = profile("a,b\n1,\"2\n").unwrap_err().to_string();
        assert!(e.contains("unclosed quote"), "{e}");
    }

    #[test]
    fn a_quoted_newline_ends_no_row_across_reads() {
        let mut rows = RowScanner::default();
        let mut buffer = b"1,\"a\n".to_vec();
        rows.scan(&buffer);
        assert_eq!(rows.cut(buffer.len(), false), (0, 0));
        buffer.extend_from_slice(b"b\"\n2,c\n3,");
        rows.scan(&buffer);
        let (cut, lines) = rows.cut(buffer.len(), false);
        assert_eq!(&buffer[..cut], b"1,\"a\nb\"\n2,c\n");
        assert_eq!(lines, 3);
        buffer.drain(..cut);
        rows.consumed(cut);
        buffer.push(b'd');
        rows.scan(&buffer);
        assert_eq!(rows.cut(buffer.len(), false), (0, 0));
        assert_eq!(rows.cut(buffer.len(), true), (3, 1));
    }

    #[test]
    fn header_names_are_trimmed_unique_and_present() {
        assert_eq!(header_columns(b" a ,\"b c\"\r").unwrap(), ["a", "b c"]);
        assert!(
            header_columns(b"a,,b")
                .unwrap_err()
                .contains("empty column name")
        );
        assert!(
            header_columns(b"a,a")
                .unwrap_err()
                .contains("appears twice")
        );
        assert!(header_columns(b"\xff").unwrap_err().contains("not UTF-8"));
    }

    #[test]
    fn blocks_split_on_row_boundaries() {
        let mut text = String::from("x,s\n");
        for i in 0..300_000 {
            text.push_str(&format!("{i},\"v\n{}\"\n", i % 7));
        }
        let p = profile(&text).unwrap();
        assert_eq!(p.item_count, 300_000);
        assert_eq!(p.column("s").unwrap().distinct_count(), 7);
        assert_eq!(p.column("x").unwrap().moments.max, 299_999.0);
    }
}
