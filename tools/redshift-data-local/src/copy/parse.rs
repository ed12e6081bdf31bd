//! Parsing Redshift's `COPY … FROM 's3://…'` into a [`Copy`]: the emulator's subset, with every
//! other option refused by name. Pages of the Redshift Database Developer Guide cited below:
//! *COPY* (`r_COPY`), *Data format parameters* (`copy-parameters-data-format`), *Data conversion
//! parameters* (`copy-parameters-data-conversion`), *Data load operations*
//! (`copy-parameters-data-load`), *DATEFORMAT and TIMEFORMAT strings*
//! (`r_DATEFORMAT_and_TIMEFORMAT_strings`).

/// A parsed COPY statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// The table name's parts (`schema.table` or `table`), unquoted; unquoted parts lowercased.
    pub table: Vec<String>,
    /// The column list, when given.
    pub columns: Option<Vec<String>>,
    pub bucket: String,
    /// The key prefix: every object whose key begins with it is loaded.
    pub prefix: String,
    pub options: Options,
}

/// The format and conversion options the emulator honours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub delimiter: char,
    pub quote: char,
    /// NULL AS (default `\N`).
    pub null_as: String,
    pub gzip: bool,
    /// DATEFORMAT 'auto' (else the default `YYYY-MM-DD`).
    pub date_auto: bool,
    /// TIMEFORMAT 'auto' (else the default `YYYY-MM-DD HH:MI:SS`).
    pub time_auto: bool,
    pub region: Option<String>,
    pub empty_as_null: bool,
    pub blanks_as_null: bool,
}

/// A statement the emulator refuses, with the text after `ERROR: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

fn refuse<T>(text: impl Into<String>) -> Result<T, Refused> {
    Err(Refused(text.into()))
}

fn unsupported<T>(option: &str) -> Result<T, Refused> {
    refuse(format!("the emulator does not support COPY option {option}"))
}

/// Redshift's text when the authorization is missing or not a role it can use, as seen from
/// Redshift in https://github.com/risingwavelabs/risingwave/pull/22926.
pub const INVALID_CREDENTIALS: &str = "Invalid credentials. Must be of the format: credentials 'aws_iam_role=...' or \
'aws_access_key_id=...;aws_secret_access_key=...[;token=...]'";

/// True when `sql` is a COPY statement (after leading whitespace and comments).
pub fn is_copy(sql: &str) -> bool {
    let mut lexer = Lexer::new(sql);
    lexer.skip_blank();
    let rest = &sql[lexer.at..];
    rest.len() >= 4
        && rest[..4].eq_ignore_ascii_case("copy")
        && !rest[4..].chars().next().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// An unquoted word, as written.
    Word(String),
    /// A `"quoted"` identifier.
    Quoted(String),
    /// A `'string'`, unescaped.
    Str(String),
    Number(String),
    Punct(char),
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Word(w) | Token::Number(w) => w.clone(),
            Token::Quoted(q) => format!("\"{q}\""),
            Token::Str(_) => "a string".to_owned(),
            Token::Punct(c) => c.to_string(),
        }
    }

    fn is_word(&self, keyword: &str) -> bool {
        matches!(self, Token::Word(w) if w.eq_ignore_ascii_case(keyword))
    }
}

struct Lexer<'a> {
    sql: &'a str,
    at: usize,
}

impl<'a> Lexer<'a> {
    fn new(sql: &'a str) -> Self {
        Lexer { sql, at: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.sql[self.at..]
    }

    /// Past whitespace, `-- …` and (nested) `/* … */` comments.
    fn skip_blank(&mut self) {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.at += rest.len() - trimmed.len();
            if trimmed.starts_with("--") {
                self.at += trimmed.find('\n').unwrap_or(trimmed.len());
            } else if trimmed.starts_with("/*") {
                self.at += crate::literals::skip_block_comment(trimmed.as_bytes(), 0);
            } else {
                return;
            }
        }
    }

    fn next(&mut self) -> Result<Option<Token>, Refused> {
        self.skip_blank();
        let rest = self.rest();
        let Some(first) = rest.chars().next() else { return Ok(None) };
        let token = if first.is_alphabetic() || first == '_' {
            let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$')).unwrap_or(rest.len());
            self.at += end;
            Token::Word(rest[..end].to_owned())
        } else if first.is_ascii_digit() {
            let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            self.at += end;
            Token::Number(rest[..end].to_owned())
        } else if first == '"' {
            let (text, used) =
                quoted(rest, '"', false).ok_or_else(|| Refused("unterminated quoted identifier".into()))?;
            self.at += used;
            Token::Quoted(text)
        } else if first == '\'' {
            let (text, used) = quoted(rest, '\'', true).ok_or_else(|| Refused("unterminated quoted string".into()))?;
            self.at += used;
            Token::Str(text)
        } else {
            self.at += first.len_utf8();
            Token::Punct(first)
        };
        Ok(Some(token))
    }
}

/// The text of the quoted token at the start of `rest` and the bytes it used. A doubled quote
/// is one quote. In strings a backslash escapes as in the emulator's sessions
/// (`standard_conforming_strings = off`, Redshift's rule): `\\` is a backslash, `\'` a quote,
/// `\t` a tab, `\n` a newline, `\r` a carriage return. Other escapes (`\N` would be `N`, octal
/// and hex forms) are refused rather than guessed: in a NULL AS or DELIMITER they would change
/// what loads.
fn quoted(rest: &str, quote: char, backslash: bool) -> Option<(String, usize)> {
    let mut text = String::new();
    let mut chars = rest.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if backslash && c == '\\' {
            let (_, escaped) = chars.next()?;
            let unescaped = match escaped {
                '\\' | '\'' => escaped,
                't' => '\t',
                'n' => '\n',
                'r' => '\r',
                // Marked for the caller: an escape the emulator does not guess.
                other => {
                    text.push('\u{0}');
                    other
                }
            };
            text.push(unescaped);
        } else if c == quote {
            if chars.peek().is_some_and(|&(_, next)| next == quote) {
                chars.next();
                text.push(quote);
            } else {
                return Some((text, i + 1));
            }
        } else {
            text.push(c);
        }
    }
    None
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<Option<Token>>,
}

impl Parser<'_> {
    fn peek(&mut self) -> Result<Option<&Token>, Refused> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next()?);
        }
        Ok(self.peeked.as_ref().and_then(Option::as_ref))
    }

    fn next(&mut self) -> Result<Option<Token>, Refused> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.lexer.next(),
        }
    }

    fn syntax<T>(&mut self, token: Option<Token>) -> Result<T, Refused> {
        match token {
            Some(token) => refuse(format!("syntax error at or near \"{}\"", token.describe())),
            None => refuse("syntax error at end of input"),
        }
    }

    fn expect_word(&mut self, keyword: &str) -> Result<(), Refused> {
        match self.next()? {
            Some(token) if token.is_word(keyword) => Ok(()),
            other => self.syntax(other),
        }
    }

    /// Consumes `keyword` when it comes next.
    fn accept_word(&mut self, keyword: &str) -> Result<bool, Refused> {
        if self.peek()?.is_some_and(|t| t.is_word(keyword)) {
            self.next()?;
            return Ok(true);
        }
        Ok(false)
    }

    fn accept_punct(&mut self, punct: char) -> Result<bool, Refused> {
        if self.peek()? == Some(&Token::Punct(punct)) {
            self.next()?;
            return Ok(true);
        }
        Ok(false)
    }

    fn identifier(&mut self) -> Result<String, Refused> {
        match self.next()? {
            Some(Token::Word(word)) => Ok(word.to_lowercase()),
            Some(Token::Quoted(name)) if !name.is_empty() => Ok(name),
            other => self.syntax(other),
        }
    }

    /// `[AS] 'string'` of option `name`.
    fn string_argument(&mut self, name: &str) -> Result<String, Refused> {
        self.accept_word("AS")?;
        match self.next()? {
            Some(Token::Str(text)) if text.contains('\u{0}') => refuse(format!(
                "the emulator does not support backslash escapes other than \\\\, \\', \\t, \\n and \\r in the {name} string"
            )),
            Some(Token::Str(text)) => Ok(text),
            other => self.syntax(other),
        }
    }

    /// `[AS] 'auto' | '<default>'` of DATEFORMAT or TIMEFORMAT (once): true for 'auto'.
    fn format(&mut self, seen: &mut bool, name: &str, default: &str) -> Result<bool, Refused> {
        if std::mem::replace(seen, true) {
            return refuse("conflicting or redundant options");
        }
        match self.string_argument(name)?.as_str() {
            "auto" => Ok(true),
            format if format == default => Ok(false),
            other => unsupported(&format!("{name} '{other}'")),
        }
    }

    /// `OFF | FALSE` of COMPUPDATE and STATUPDATE; anything else is refused.
    fn off(&mut self, name: &str) -> Result<(), Refused> {
        match self.next()? {
            Some(token) if token.is_word("OFF") || token.is_word("FALSE") => Ok(()),
            Some(token) if ["ON", "TRUE", "PRESET"].iter().any(|k| token.is_word(k)) => {
                unsupported(&format!("{name} {}", token.describe().to_uppercase()))
            }
            None => unsupported(name),
            Some(token) => unsupported(&format!("{name} {}", token.describe())),
        }
    }
}

/// The single character of a QUOTE or DELIMITER string.
fn single_ascii(text: &str, what: &str) -> Result<char, Refused> {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii() && c != '\0' => Ok(c),
        // PostgreSQL's text: its COPY refuses the same.
        _ => refuse(format!("COPY {what} must be a single one-byte character")),
    }
}

/// An IAM role ARN: `arn:aws:iam::<12 digits>:role/<path/name>` (role names and paths use
/// letters, digits and `+=,.@_-`).
fn is_role_arn(arn: &str) -> bool {
    let Some(rest) = arn.strip_prefix("arn:aws:iam::") else { return false };
    let Some((account, role)) = rest.split_once(":role/") else { return false };
    account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !role.is_empty()
        && !role.starts_with('/')
        && !role.ends_with('/')
        && role.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b))
}

/// What was seen, for the checks that need all options.
#[derive(Default)]
struct Seen {
    csv: bool,
    authorized: bool,
    delimiter: Option<char>,
    quote: Option<char>,
    null_as: Option<String>,
    date: bool,
    time: bool,
    encoding: bool,
    maxerror: bool,
    compupdate: bool,
    statupdate: bool,
    /// ESCAPE, REMOVEQUOTES or FIXEDWIDTH, which Redshift refuses with CSV.
    not_with_csv: Option<&'static str>,
}

/// Parses a COPY statement.
pub fn parse(sql: &str) -> Result<Copy, Refused> {
    let mut p = Parser { lexer: Lexer::new(sql), peeked: None };
    p.expect_word("COPY")?;
    let mut table = vec![p.identifier()?];
    while p.accept_punct('.')? {
        table.push(p.identifier()?);
    }
    if table.len() > 3 {
        return refuse(format!("improper qualified name (too many dotted names): {}", table.join(".")));
    }
    let mut columns = None;
    if p.accept_punct('(')? {
        let mut list = vec![p.identifier()?];
        while p.accept_punct(',')? {
            list.push(p.identifier()?);
        }
        match p.next()? {
            Some(Token::Punct(')')) => {}
            other => return p.syntax(other),
        }
        columns = Some(list);
    }
    p.expect_word("FROM")?;
    let (bucket, prefix) = match p.next()? {
        Some(Token::Str(source)) => match source.strip_prefix("s3://") {
            Some(path) => {
                let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
                if bucket.is_empty() {
                    return refuse(format!("invalid S3 URL '{source}': no bucket"));
                }
                (bucket.to_owned(), prefix.to_owned())
            }
            None => return refuse("the emulator only supports COPY FROM 's3://bucket/prefix'"),
        },
        Some(Token::Word(_)) => return refuse("the emulator only supports COPY FROM 's3://bucket/prefix'"),
        other => return p.syntax(other),
    };
    let mut options = Options {
        delimiter: ',',
        quote: '"',
        null_as: "\\N".to_owned(),
        gzip: false,
        date_auto: false,
        time_auto: false,
        region: None,
        empty_as_null: false,
        blanks_as_null: false,
    };
    let mut seen = Seen::default();
    // The option read just before: QUOTE belongs to CSV and must follow it ("CSV [ QUOTE [AS]
    // 'quote_character' ]", COPY syntax, Data format parameters).
    let mut previous = String::new();
    while let Some(token) = p.next()? {
        let Token::Word(word) = &token else {
            if token == Token::Punct(';') && p.peek()?.is_none() {
                break;
            }
            return p.syntax(Some(token));
        };
        let keyword = word.to_ascii_uppercase();
        let after_csv = matches!(previous.as_str(), "CSV" | "FORMAT");
        previous.clone_from(&keyword);
        let once = |flag: &mut bool| -> Result<(), Refused> {
            if std::mem::replace(flag, true) {
                return refuse("conflicting or redundant options");
            }
            Ok(())
        };
        match keyword.as_str() {
            "IAM_ROLE" => {
                once(&mut seen.authorized)?;
                match p.next()? {
                    Some(t) if t.is_word("DEFAULT") => {}
                    Some(Token::Str(arn)) if arn.contains(',') => {
                        return refuse("the emulator does not support chained IAM roles in IAM_ROLE");
                    }
                    Some(Token::Str(arn)) if is_role_arn(&arn) => {}
                    _ => return refuse(INVALID_CREDENTIALS),
                }
            }
            "CREDENTIALS" | "WITH" | "ACCESS_KEY_ID" | "SECRET_ACCESS_KEY" | "SESSION_TOKEN" => {
                return unsupported(&format!("{keyword} (only IAM_ROLE authorizes)"));
            }
            "FORMAT" => {
                p.accept_word("AS")?;
                match p.next()? {
                    Some(t) if t.is_word("CSV") => once(&mut seen.csv)?,
                    Some(t) if t.is_word("FIXEDWIDTH") => {
                        p.string_argument("FIXEDWIDTH")?;
                        seen.not_with_csv = Some("FIXEDWIDTH");
                    }
                    Some(Token::Word(other)) => return unsupported(&format!("FORMAT {}", other.to_uppercase())),
                    other => return p.syntax(other),
                }
            }
            "CSV" => once(&mut seen.csv)?,
            "QUOTE" => {
                if !after_csv {
                    return refuse("QUOTE must follow CSV (CSV [ QUOTE [AS] 'quote_character' ])");
                }
                if seen.quote.is_some() {
                    return refuse("conflicting or redundant options");
                }
                seen.quote = Some(single_ascii(&p.string_argument("QUOTE")?, "quote")?);
            }
            "DELIMITER" => {
                if seen.delimiter.is_some() {
                    return refuse("conflicting or redundant options");
                }
                seen.delimiter = Some(single_ascii(&p.string_argument("DELIMITER")?, "delimiter")?);
            }
            "NULL" => {
                if seen.null_as.is_some() {
                    return refuse("conflicting or redundant options");
                }
                seen.null_as = Some(p.string_argument("NULL AS")?);
            }
            "GZIP" => once(&mut options.gzip)?,
            "ENCODING" => {
                once(&mut seen.encoding)?;
                p.accept_word("AS")?;
                match p.next()? {
                    Some(t) if t.is_word("UTF8") => {}
                    Some(Token::Word(other)) => return unsupported(&format!("ENCODING {}", other.to_uppercase())),
                    other => return p.syntax(other),
                }
            }
            // 'auto' is case-sensitive (Data conversion parameters).
            "DATEFORMAT" => options.date_auto = p.format(&mut seen.date, "DATEFORMAT", "YYYY-MM-DD")?,
            "TIMEFORMAT" => options.time_auto = p.format(&mut seen.time, "TIMEFORMAT", "YYYY-MM-DD HH:MI:SS")?,
            "REGION" => {
                if options.region.is_some() {
                    return refuse("conflicting or redundant options");
                }
                let region = p.string_argument("REGION")?;
                if region.is_empty()
                    || !region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                {
                    return refuse(format!("invalid REGION '{region}'"));
                }
                options.region = Some(region);
            }
            "COMPUPDATE" => {
                once(&mut seen.compupdate)?;
                p.off("COMPUPDATE")?;
            }
            "STATUPDATE" => {
                once(&mut seen.statupdate)?;
                p.off("STATUPDATE")?;
            }
            "MAXERROR" => {
                once(&mut seen.maxerror)?;
                p.accept_word("AS")?;
                match p.next()? {
                    Some(Token::Number(n)) if n.bytes().all(|b| b == b'0') => {}
                    Some(Token::Number(n)) => {
                        return refuse(format!(
                            "the emulator does not support COPY option MAXERROR {n}: it never skips rows (MAXERROR 0 only)"
                        ));
                    }
                    other => return p.syntax(other),
                }
            }
            "EMPTYASNULL" => once(&mut options.empty_as_null)?,
            "BLANKSASNULL" => once(&mut options.blanks_as_null)?,
            "ESCAPE" => seen.not_with_csv = Some("ESCAPE"),
            "REMOVEQUOTES" => seen.not_with_csv = Some("REMOVEQUOTES"),
            "FIXEDWIDTH" => {
                p.string_argument("FIXEDWIDTH")?;
                seen.not_with_csv = Some("FIXEDWIDTH");
            }
            _ => return unsupported(&keyword),
        }
    }
    check(&mut options, seen)?;
    Ok(Copy { table, columns, bucket, prefix, options })
}

/// The checks that need every option.
fn check(options: &mut Options, seen: Seen) -> Result<(), Refused> {
    if !seen.authorized {
        return refuse(INVALID_CREDENTIALS);
    }
    if let Some(option) = seen.not_with_csv {
        // "CSV cannot be used with FIXEDWIDTH, REMOVEQUOTES, or ESCAPE." (Data format parameters)
        return if seen.csv { refuse(format!("CSV cannot be used with {option}")) } else { unsupported(option) };
    }
    if !seen.csv {
        return refuse("the emulator only supports COPY with FORMAT CSV");
    }
    options.delimiter = seen.delimiter.unwrap_or(',');
    options.quote = seen.quote.unwrap_or('"');
    if let Some(null_as) = seen.null_as {
        options.null_as = null_as;
    }
    if matches!(options.delimiter, '\n' | '\r') {
        return refuse("COPY delimiter cannot be newline or carriage return");
    }
    if options.delimiter == options.quote {
        return refuse("COPY delimiter and quote must be different");
    }
    // "Do not use '\n' (newline) for the null_string value. Amazon Redshift reserves '\n' for
    // use as a line delimiter." (Data conversion parameters, NULL AS)
    if options.null_as.contains(['\n', '\r']) {
        return refuse(
            "NULL AS cannot contain a newline or carriage return: Redshift reserves '\\n' as the line delimiter",
        );
    }
    // PostgreSQL's texts: its COPY refuses these.
    if options.null_as.contains(options.delimiter) {
        return refuse("COPY delimiter must not appear in the NULL specification");
    }
    if options.null_as.contains(options.quote) {
        return refuse("CSV quote character must not appear in the NULL specification");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "IAM_ROLE 'arn:aws:iam::123456789012:role/loader'";

    fn copy(options: &str) -> Result<Copy, Refused> {
        parse(&format!("COPY t FROM 's3://b/p' {ROLE} {options}"))
    }

    fn refused(options: &str) -> String {
        copy(options).expect_err(options).0
    }

    #[test]
    fn parses_the_loaders_statement() {
        let sql = "-- stage\n  copy /* the stage */ \"_cdc_stage\" (\"id\", Name, \"_cdc_row\") FROM 's3://bucket/stage/t/0001.csv.gz'\n\
                   IAM_ROLE 'arn:aws:iam::123456789012:role/path/redshift-copy'\n\
                   FORMAT AS CSV QUOTE AS '\"' DELIMITER ',' NULL AS '\\\\N' GZIP ENCODING UTF8 DATEFORMAT 'YYYY-MM-DD'\n\
                   COMPUPDATE OFF STATUPDATE OFF;";
        assert!(is_copy(sql));
        let copy = parse(sql).unwrap();
        assert_eq!(copy.table, ["_cdc_stage"]);
        assert_eq!(copy.columns.unwrap(), ["id", "name", "_cdc_row"]);
        assert_eq!((copy.bucket.as_str(), copy.prefix.as_str()), ("bucket", "stage/t/0001.csv.gz"));
        let o = copy.options;
        assert_eq!((o.delimiter, o.quote, o.null_as.as_str(), o.gzip), (',', '"', "\\N", true));
        assert!(!o.date_auto && !o.time_auto && !o.empty_as_null && !o.blanks_as_null);
    }

    #[test]
    fn recognises_copy_only_as_the_first_word() {
        assert!(is_copy("COPY t FROM 's3://b/p'"));
        assert!(is_copy("/* a /* nested */ comment */ Copy\tt"));
        assert!(!is_copy("COPYRIGHT"));
        assert!(!is_copy("SELECT 'COPY'"));
        assert!(!is_copy("-- COPY\nSELECT 1"));
    }

    #[test]
    fn takes_the_supported_options_in_any_case_and_order() {
        let copy = parse(&format!(
            "copy s.\"T\" from 's3://b' {} csv quote as '''' delimiter as '\\t' null as 'NIL' dateformat as 'auto' \
             timeformat 'auto' region as 'eu-west-1' maxerror 0 emptyasnull blanksasnull compupdate false statupdate off",
            ROLE.to_lowercase()
        ))
        .unwrap();
        assert_eq!(copy.table, ["s", "T"]);
        assert_eq!(copy.prefix, "");
        let o = copy.options;
        assert_eq!((o.delimiter, o.quote, o.null_as.as_str()), ('\t', '\'', "NIL"));
        assert!(o.date_auto && o.time_auto && o.empty_as_null && o.blanks_as_null && !o.gzip);
        assert_eq!(o.region.as_deref(), Some("eu-west-1"));
        assert!(parse("COPY t FROM 's3://b/p' IAM_ROLE default CSV").is_ok());
    }

    #[test]
    fn refuses_what_redshift_refuses() {
        assert_eq!(refused("CSV ESCAPE"), "CSV cannot be used with ESCAPE");
        assert_eq!(refused("REMOVEQUOTES CSV"), "CSV cannot be used with REMOVEQUOTES");
        assert_eq!(refused("CSV FIXEDWIDTH 'a:1'"), "CSV cannot be used with FIXEDWIDTH");
        assert!(refused("CSV NULL AS 'a\\nb'").starts_with("NULL AS cannot contain a newline"));
        assert_eq!(refused("CSV DELIMITER '\"'"), "COPY delimiter and quote must be different");
        assert_eq!(refused("CSV QUOTE '|' DELIMITER '|'"), "COPY delimiter and quote must be different");
        assert_eq!(
            refused("CSV DELIMITER ',' QUOTE '\"'"),
            "QUOTE must follow CSV (CSV [ QUOTE [AS] 'quote_character' ])"
        );
        assert_eq!(refused("CSV DELIMITER ',,'"), "COPY delimiter must be a single one-byte character");
        assert_eq!(refused("CSV DELIMITER 'é'"), "COPY delimiter must be a single one-byte character");
        assert_eq!(refused("CSV NULL AS 'a,b'"), "COPY delimiter must not appear in the NULL specification");
    }

    #[test]
    fn refuses_unsupported_options_by_name() {
        for (options, named) in [
            ("CSV MAXERROR 10", "MAXERROR 10"),
            ("CSV ROUNDEC", "ROUNDEC"),
            ("CSV IGNOREHEADER 1", "IGNOREHEADER"),
            ("CSV BZIP2", "BZIP2"),
            ("CSV MANIFEST", "MANIFEST"),
            ("CSV ACCEPTINVCHARS", "ACCEPTINVCHARS"),
            ("CSV TRUNCATECOLUMNS", "TRUNCATECOLUMNS"),
            ("CSV ENCODING UTF16", "ENCODING UTF16"),
            ("CSV DATEFORMAT 'MM/DD/YYYY'", "DATEFORMAT 'MM/DD/YYYY'"),
            ("CSV DATEFORMAT 'AUTO'", "DATEFORMAT 'AUTO'"),
            ("CSV TIMEFORMAT 'epochsecs'", "TIMEFORMAT 'epochsecs'"),
            ("CSV COMPUPDATE ON", "COMPUPDATE ON"),
            ("CSV COMPUPDATE", "COMPUPDATE"),
            ("CSV STATUPDATE TRUE", "STATUPDATE TRUE"),
            ("FORMAT AS JSON 'auto'", "FORMAT JSON"),
            ("FORMAT PARQUET", "FORMAT PARQUET"),
            ("ESCAPE", "ESCAPE"),
        ] {
            let text = refused(options);
            assert!(text.contains(named) && text.contains("does not support"), "{options}: {text}");
        }
        assert_eq!(refused(""), "the emulator only supports COPY with FORMAT CSV");
        assert_eq!(refused("DELIMITER '|'"), "the emulator only supports COPY with FORMAT CSV");
        assert_eq!(refused("CSV GZIP GZIP"), "conflicting or redundant options");
        assert!(refused("CSV NULL AS '\\N'").contains("backslash escapes"), "'\\N' would be N");
        assert_eq!(refused("CSV, GZIP"), "syntax error at or near \",\"");
    }

    #[test]
    fn authorization_is_exactly_one_iam_role() {
        let sql = |auth: &str| parse(&format!("COPY t FROM 's3://b/p' {auth} CSV"));
        assert_eq!(sql("").unwrap_err().0, INVALID_CREDENTIALS);
        for bad in [
            "IAM_ROLE 'arn:aws:iam::12345678901:role/r'",
            "IAM_ROLE 'arn:aws:iam::123456789012:user/r'",
            "IAM_ROLE 'arn:aws:iam::123456789012:role/'",
            "IAM_ROLE 'role'",
            "IAM_ROLE",
        ] {
            assert_eq!(sql(bad).unwrap_err().0, INVALID_CREDENTIALS, "{bad}");
        }
        let chained = "IAM_ROLE 'arn:aws:iam::123456789012:role/a,arn:aws:iam::210987654321:role/b'";
        assert!(sql(chained).unwrap_err().0.contains("chained"));
        assert_eq!(sql(&format!("{ROLE} {ROLE}")).unwrap_err().0, "conflicting or redundant options");
        assert!(
            sql("CREDENTIALS 'aws_iam_role=arn:aws:iam::123456789012:role/r'").unwrap_err().0.contains("CREDENTIALS")
        );
    }

    #[test]
    fn only_s3_sources() {
        for source in ["STDIN", "'/tmp/file'", "'emr://j-1/part-*'", "'dynamodb://t'"] {
            let error = parse(&format!("COPY t FROM {source} {ROLE} CSV")).unwrap_err().0;
            assert!(error.contains("s3://"), "{source}: {error}");
        }
        assert!(parse(&format!("COPY t FROM 's3:///p' {ROLE} CSV")).unwrap_err().0.contains("no bucket"));
        assert!(parse("COPY t TO 's3://b/p'").unwrap_err().0.starts_with("syntax error"));
    }
}
