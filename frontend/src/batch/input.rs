//! Turning what the user pasted or opened into a table of string cells.

use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// Pick from the file name or the content.
    Auto,
    /// One text per non-empty line.
    Lines,
    /// RFC 4180 CSV with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

#[derive(Debug, Clone, Error, PartialEq)]
pub enum InputError {
    #[error("the input is empty")]
    Empty,
    #[error("CSV line {line}: a quoted field is not closed")]
    UnclosedQuote { line: usize },
    #[error("JSONL line {line}: {detail}")]
    Json { line: usize, detail: String },
    #[error("JSONL line {line}: expected an object like {{\"text\": \"...\"}}")]
    NotObject { line: usize },
    #[error("no column named {0:?}")]
    NoColumn(String),
    #[error("row {row}: the text is empty")]
    EmptyText { row: usize },
}

/// Rows of cells under named columns (rows may be shorter than the header).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// One text to analyse, with its date cell if a date column was chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub text: String,
    pub date: Option<String>,
}

impl Table {
    pub fn parse(input: &str, format: InputFormat, file_name: Option<&str>) -> Result<Table, InputError> {
        let input = input.strip_prefix('\u{feff}').unwrap_or(input); // spreadsheet exports add a BOM
        if input.trim().is_empty() {
            return Err(InputError::Empty);
        }
        match resolve(format, input, file_name) {
            InputFormat::Csv => parse_csv(input),
            InputFormat::Jsonl => parse_jsonl(input),
            _ => Ok(parse_lines(input)),
        }
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The likeliest text column: a well-known name, else the first column.
    pub fn guess_text_column(&self) -> Option<String> {
        guess(&self.columns, &["text", "content", "tweet", "message", "body", "post", "full_text"])
            .or_else(|| self.columns.first().cloned())
    }

    /// The likeliest date column, if any has a well-known name.
    pub fn guess_date_column(&self) -> Option<String> {
        guess(&self.columns, &["date", "created_at", "timestamp", "time", "datetime", "day", "posted_at"])
    }

    /// The texts (and dates) to analyse; a row without text is an error naming the row. Texts
    /// are kept exactly as given (not trimmed): leading spaces change the tokens, and the
    /// results must equal `sentiment-trainer predict` on the same lines.
    pub fn entries(&self, text_col: &str, date_col: Option<&str>) -> Result<Vec<Entry>, InputError> {
        let t = self.column(text_col).ok_or_else(|| InputError::NoColumn(text_col.into()))?;
        let d = match date_col {
            Some(name) => Some(self.column(name).ok_or_else(|| InputError::NoColumn(name.into()))?),
            None => None,
        };
        self.rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let text = row.get(t).map(String::as_str).unwrap_or_default();
                if text.trim().is_empty() {
                    return Err(InputError::EmptyText { row: i + 1 });
                }
                let date = d.and_then(|d| row.get(d)).map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
                Ok(Entry { text: text.to_string(), date })
            })
            .collect()
    }
}

fn guess(columns: &[String], names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| columns.iter().find(|c| c.trim().eq_ignore_ascii_case(n)).cloned())
}

fn resolve(format: InputFormat, input: &str, file_name: Option<&str>) -> InputFormat {
    if format != InputFormat::Auto {
        return format;
    }
    let lower = file_name.unwrap_or_default().to_ascii_lowercase();
    if lower.ends_with(".csv") {
        return InputFormat::Csv;
    }
    if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") || lower.ends_with(".json") {
        return InputFormat::Jsonl;
    }
    let first = input.lines().find(|l| !l.trim().is_empty()).unwrap_or_default().trim();
    if first.starts_with('{') {
        return InputFormat::Jsonl;
    }
    // Pasted CSV is recognised by its header naming a text column; otherwise a line with a
    // comma is just a post with a comma in it.
    if let Ok(t) = parse_csv(first) {
        if t.columns.len() > 1
            && guess(&t.columns, &["text", "content", "tweet", "message", "body", "post", "full_text"]).is_some()
        {
            return InputFormat::Csv;
        }
    }
    InputFormat::Lines
}

fn parse_lines(input: &str) -> Table {
    Table {
        columns: vec!["text".into()],
        rows: input.lines().filter(|l| !l.trim().is_empty()).map(|l| vec![l.to_string()]).collect(),
    }
}

/// RFC 4180: fields separated by commas, optionally quoted; quotes doubled inside quotes;
/// quoted fields may span lines. Blank lines are skipped.
///
/// Written here rather than with the `csv` crate (which the trainer uses) because users rely on
/// two things the crate does differently (checked with csv 1.4, issue 34): a quoted field left
/// open is an error naming its line, where the crate silently reads the rest of the file into
/// that one cell (every later post lost into one text); and a quote after spaces still opens a
/// quoted field (`1, "hello, world"`, as people type CSV by hand), where the crate splits the
/// text at its comma.
fn parse_csv(input: &str) -> Result<Table, InputError> {
    let mut records: Vec<Vec<String>> = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut line = 1;
    let mut quote_line = 0;
    let mut chars = input.chars().peekable();
    let mut end_record = |record: &mut Vec<String>, field: &mut String| {
        record.push(std::mem::take(field));
        let r = std::mem::take(record);
        if !(r.len() == 1 && r[0].trim().is_empty()) {
            records.push(r);
        }
    };
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => {
                if c == '\n' {
                    line += 1;
                }
                field.push(c)
            }
            (false, '"') if field.trim().is_empty() => {
                field.clear();
                quoted = true;
                quote_line = line;
            }
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                line += 1;
                end_record(&mut record, &mut field);
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(InputError::UnclosedQuote { line: quote_line });
    }
    end_record(&mut record, &mut field);
    let mut it = records.into_iter();
    let columns: Vec<String> = it.next().ok_or(InputError::Empty)?.into_iter().map(|c| c.trim().to_string()).collect();
    Ok(Table { columns, rows: it.collect() })
}

fn parse_jsonl(input: &str) -> Result<Table, InputError> {
    let mut table = Table::default();
    for (i, l) in input.lines().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(l).map_err(|e| InputError::Json { line: i + 1, detail: e.to_string() })?;
        let obj = v.as_object().ok_or(InputError::NotObject { line: i + 1 })?;
        let mut row = vec![String::new(); table.columns.len()];
        for (k, v) in obj {
            let idx = table.column(k).unwrap_or_else(|| {
                table.columns.push(k.clone());
                row.push(String::new());
                table.columns.len() - 1
            });
            row[idx] = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
        }
        table.rows.push(row);
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_quotes_commas_and_newlines() {
        let t = Table::parse(
            "\u{feff}id,text,date\r\n1,\"hello, \"\"world\"\"\",2024-01-02\n\n2,\"two\nlines\",\n",
            InputFormat::Auto,
            Some("x.CSV"),
        )
        .unwrap();
        assert_eq!(t.columns, ["id", "text", "date"]);
        assert_eq!(t.rows[0], ["1", "hello, \"world\"", "2024-01-02"]);
        assert_eq!(t.rows[1], ["2", "two\nlines", ""]);
        assert_eq!(t.guess_text_column().as_deref(), Some("text"));
        assert_eq!(t.guess_date_column().as_deref(), Some("date"));
        let e = t.entries("text", Some("date")).unwrap();
        assert_eq!(e[0].date.as_deref(), Some("2024-01-02"));
        assert_eq!(e[1].date, None);
        assert_eq!(Table::parse("a,\"b\n", InputFormat::Csv, None), Err(InputError::UnclosedQuote { line: 1 }));
    }

    #[test]
    fn pasted_lines_stay_lines_unless_a_csv_header_names_the_text() {
        let t = Table::parse("I love it, really\n\n  meh  \n", InputFormat::Auto, None).unwrap();
        assert_eq!(t.rows, [vec!["I love it, really".to_string()], vec!["  meh  ".to_string()]]);
        let t = Table::parse("Text,Date\nok,2024-01-01\n", InputFormat::Auto, None).unwrap();
        assert_eq!(t.columns, ["Text", "Date"]);
        assert_eq!(t.guess_text_column().as_deref(), Some("Text"));
    }

    #[test]
    fn a_quote_after_spaces_opens_a_quoted_field_and_an_open_quote_is_an_error() {
        let t = Table::parse("id, text\n1, \"hello, world\"\n", InputFormat::Csv, None).unwrap();
        assert_eq!(t.columns, ["id", "text"]);
        assert_eq!(t.rows, [vec!["1".to_string(), "hello, world".to_string()]]);
        let open = "id,text\n1,\"ok\"\n2,\"never closed\n3,a later post\n";
        assert_eq!(Table::parse(open, InputFormat::Csv, None), Err(InputError::UnclosedQuote { line: 3 }));
    }

    #[test]
    fn jsonl_collects_columns_across_objects() {
        let t = Table::parse(
            "{\"text\":\"a\",\"n\":1}\n{\"created_at\":\"2024-05-01\",\"text\":\"b\"}\n",
            InputFormat::Auto,
            None,
        )
        .unwrap();
        assert_eq!(t.columns, ["n", "text", "created_at"]);
        let e = t.entries("text", t.guess_date_column().as_deref()).unwrap();
        assert_eq!((e[0].text.as_str(), e[0].date.as_deref()), ("a", None));
        assert_eq!((e[1].text.as_str(), e[1].date.as_deref()), ("b", Some("2024-05-01")));
        assert!(matches!(Table::parse("[1]", InputFormat::Jsonl, None), Err(InputError::NotObject { line: 1 })));
        assert_eq!(t.entries("missing", None), Err(InputError::NoColumn("missing".into())));
    }

    #[test]
    fn empty_texts_are_named() {
        let t = Table::parse("text,date\nok,2024-01-01\n \" \",2024-01-02\n", InputFormat::Csv, None).unwrap();
        assert_eq!(t.entries("text", None), Err(InputError::EmptyText { row: 2 }));
        assert_eq!(Table::parse("  \n", InputFormat::Auto, None), Err(InputError::Empty));
    }
}
