//! `cdc connector-config`: the Debezium source connector configuration for MSK Connect that
//! produces exactly what this pipeline reads, derived from the pipeline config's routing.
//!
//! MSK Connect takes a connector's configuration as `key=value` properties (the console's
//! "Connector configuration" box; the `connectorConfiguration` map of `CreateConnector`:
//! [MSK Connect: Debezium source connector with configuration
//! provider](https://docs.aws.amazon.com/msk/latest/developerguide/mkc-debeziumsource-connector-example.html)).
//! Property names and values are Debezium 2.x's (the samples' `source.version` is 2.7.3.Final):
//! [SQL Server](https://debezium.io/documentation/reference/2.7/connectors/sqlserver.html#sqlserver-connector-properties),
//! [PostgreSQL](https://debezium.io/documentation/reference/2.7/connectors/postgresql.html#postgresql-connector-properties),
//! [MySQL](https://debezium.io/documentation/reference/2.7/connectors/mysql.html#mysql-connector-properties).
//!
//! What is derived, and from what: `topic.prefix`, the database(s) and `table.include.list`
//! from the `[[tables]]` topic patterns, split as each connector names its topics
//! (`<topic.prefix>.<database>.<schema>.<table>` for SQL Server, `<topic.prefix>.<schema>.<table>`
//! for PostgreSQL, `<topic.prefix>.<database>.<table>` for MySQL: each connector's "Topic names"
//! section); `unavailable.value.placeholder` from the tables' placeholder. Everything else is
//! fixed by what the decoder reads best (comments at each property). A pattern part with a
//! wildcard cannot name a database or a prefix: the flags give those, and must match it.

use std::fmt::Write as _;
use std::path::Path;

use cdc_pipeline::Config;
use cdc_pipeline::config::{Placeholder, TopicPattern};

/// The Debezium source connector to configure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Connector {
    /// `io.debezium.connector.sqlserver.SqlServerConnector`
    Sqlserver,
    /// `io.debezium.connector.postgresql.PostgresConnector` (logical decoding with pgoutput)
    Postgresql,
    /// `io.debezium.connector.mysql.MySqlConnector`
    Mysql,
}

impl Connector {
    fn class(self) -> &'static str {
        match self {
            Connector::Sqlserver => "io.debezium.connector.sqlserver.SqlServerConnector",
            Connector::Postgresql => "io.debezium.connector.postgresql.PostgresConnector",
            Connector::Mysql => "io.debezium.connector.mysql.MySqlConnector",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Connector::Sqlserver => "sqlserver",
            Connector::Postgresql => "postgresql",
            Connector::Mysql => "mysql",
        }
    }

    /// How the connector names a data topic after `<topic.prefix>.`, for messages.
    fn topic_form(self) -> &'static str {
        match self {
            Connector::Sqlserver => "<topic.prefix>.<database>.<schema>.<table>",
            Connector::Postgresql => "<topic.prefix>.<schema>.<table>",
            Connector::Mysql => "<topic.prefix>.<database>.<table>",
        }
    }

    /// The database's default port, as each connector's `database.port` defaults.
    fn default_port(self) -> u16 {
        match self {
            Connector::Sqlserver => 1433,
            Connector::Postgresql => 5432,
            Connector::Mysql => 3306,
        }
    }
}

/// The command's inputs, as the flags give them (README "Debezium connector configuration").
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Pipeline configuration (TOML), or `default` for the default routing (as the functions
    /// read CDC_CONFIG); then --topic-prefix, --database and --table name what to capture.
    #[arg(long, env = "CDC_CONFIG")]
    pub config: Option<String>,
    /// The Debezium source connector.
    #[arg(long, value_enum, default_value = "sqlserver")]
    pub connector: Connector,
    /// Debezium's topic.prefix, when the config's topic patterns do not name it literally.
    #[arg(long)]
    pub topic_prefix: Option<String>,
    /// The source database, when the topic patterns do not name it (always for postgresql).
    #[arg(long)]
    pub database: Option<String>,
    /// A table to capture, default routing only: schema.table (sqlserver, postgresql) or table
    /// (mysql). Repeat for more.
    #[arg(long = "table")]
    pub tables: Vec<String>,
    /// Secrets Manager secret name (not ARN) holding the database's `username` and `password`.
    #[arg(long)]
    pub secret: Option<String>,
    /// The MSK cluster's IAM bootstrap brokers (host:9098,…), for the schema history topic.
    #[arg(long)]
    pub bootstrap_servers: Option<String>,
    /// The database endpoint (host name or IP address).
    #[arg(long)]
    pub db_host: Option<String>,
    /// MySQL's database.server.id (default: derived from the topic prefix).
    #[arg(long)]
    pub server_id: Option<u32>,
    /// How keys and values are written: `json` (JsonConverter with schemas) or `avro`
    /// (a schema registry's AvroConverter; --registry names which).
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
    /// With --format avro: the schema registry (`glue` or `confluent`), as the functions'
    /// SCHEMA_REGISTRY.
    #[arg(long, value_enum)]
    pub registry: Option<RegistryKind>,
    /// With --registry glue: the Glue registry (GlueRegistryName).
    #[arg(long)]
    pub glue_registry: Option<String>,
    /// With --registry glue: the registry's AWS region.
    #[arg(long)]
    pub region: Option<String>,
    /// With --registry confluent: the registry's URL (SchemaRegistryUrl).
    #[arg(long)]
    pub registry_url: Option<String>,
    /// With --registry confluent: a Secrets Manager secret name holding the registry's
    /// `username` and `password` (basic auth).
    #[arg(long)]
    pub registry_secret: Option<String>,
}

/// The converters `--format` picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `org.apache.kafka.connect.json.JsonConverter`, schemas enabled.
    Json,
    /// A schema registry's Avro converter.
    Avro,
}

/// The schema registry of `--format avro`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RegistryKind {
    /// AWS Glue Schema Registry (`AWSKafkaAvroConverter`).
    Glue,
    /// A Confluent-compatible registry (`io.confluent.connect.avro.AvroConverter`).
    Confluent,
}

/// What is left for the operator to fill in, named by the flag that would have filled it.
const SECRET_PLACEHOLDER: &str = "<secret-name>";
const BOOTSTRAP_PLACEHOLDER: &str = "<msk-iam-bootstrap-servers>";
const HOST_PLACEHOLDER: &str = "<database-endpoint>";
const GLUE_REGISTRY_PLACEHOLDER: &str = "<glue-registry-name>";
const REGION_PLACEHOLDER: &str = "<aws-region>";
const REGISTRY_URL_PLACEHOLDER: &str = "<schema-registry-url>";

/// The printed configuration and the placeholders it still holds (for a note on stderr).
pub struct Output {
    /// `key=value` lines, one per property, in a fixed order; no key twice.
    pub properties: Vec<(String, String)>,
    /// The flags whose values were not given: `(flag, placeholder)`.
    pub unfilled: Vec<(&'static str, &'static str)>,
}

/// Characters a topic name keeps unchanged (Kafka's legal topic characters, which Debezium
/// does not replace); anything else would be renamed on its way into a topic.
fn is_topic_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-')
}

/// A routed table's topic pattern, split the way the connector names topics.
struct Parts {
    /// The pattern's prefix part (may hold wildcards).
    prefix: String,
    /// The database part, for connectors whose topics carry it (may hold wildcards).
    database: Option<String>,
    /// The table identifier as `table.include.list` names it: `schema.table` (SQL Server,
    /// PostgreSQL) or `table` (MySQL, whose identifier is `database.table`); glob form.
    table: String,
}

fn has_wildcard(text: &str) -> bool {
    text.contains(['*', '?'])
}

/// Split `tables[index].topic` into prefix, database and table parts.
fn split_pattern(index: usize, glob: &str, connector: Connector) -> Result<Parts, String> {
    let segments: Vec<&str> = glob.split('.').collect();
    // Parts after the prefix: database (when in the topic), then schema.table or table.
    let tail = match connector {
        Connector::Sqlserver => 3,
        Connector::Postgresql | Connector::Mysql => 2,
    };
    if segments.len() < tail + 1 {
        return Err(format!(
            "tables[{index}].topic `{glob}` has {} dot-separated parts; a {} topic is {}: write the \
             pattern with each part (e.g. `*.<database>.<schema>.<table>`), or run with --connector \
             for the connector that writes these topics",
            segments.len(),
            connector.name(),
            connector.topic_form()
        ));
    }
    for part in &segments[segments.len() - tail..] {
        if part.is_empty() || !part.chars().all(|c| is_topic_char(c) || c == '*' || c == '?') {
            return Err(format!(
                "tables[{index}].topic `{glob}`: the parts after the prefix must be topic names \
                 (letters, digits, `_`, `-`) or wildcards, to become a database name and a \
                 table.include.list entry"
            ));
        }
    }
    let prefix = segments[..segments.len() - tail].join(".");
    let rest = &segments[segments.len() - tail..];
    Ok(match connector {
        Connector::Sqlserver => {
            Parts { prefix, database: Some(rest[0].to_string()), table: format!("{}.{}", rest[1], rest[2]) }
        }
        Connector::Postgresql => Parts { prefix, database: None, table: format!("{}.{}", rest[0], rest[1]) },
        Connector::Mysql => Parts { prefix, database: Some(rest[0].to_string()), table: rest[1].to_string() },
    })
}

/// A glob part as a `table.include.list` regular expression. Debezium matches each expression
/// against the whole identifier ("the connector does not match substrings"), as our globs match
/// whole topics, and `*` spans dots in both. A literal `.` is left unescaped: a backslash would
/// be an escape character again wherever the configuration passes through a Java properties
/// file, and an unescaped dot can only also match a name that itself holds a dot.
fn include_regex(glob: &str) -> String {
    glob.replace('*', ".*").replace('?', ".")
}

/// The value of a flag that must name something literally (a prefix, a database), checked
/// against the pattern part it replaces.
fn literal_for(
    part: &str,
    flag: Option<&str>,
    flag_name: &str,
    what: &str,
    index: usize,
    glob: &str,
) -> Result<String, String> {
    match flag {
        Some(value) => {
            let pattern = TopicPattern::new(part).map_err(|e| format!("tables[{index}].topic `{glob}`: {e}"))?;
            if !pattern.matches(value) {
                return Err(format!(
                    "{flag_name} does not match the {what} part `{part}` of tables[{index}].topic `{glob}`: \
                     the connector's topics would not be routed"
                ));
            }
            Ok(value.to_string())
        }
        None if has_wildcard(part) => {
            Err(format!("tables[{index}].topic `{glob}` does not name its {what} (`{part}`): give {flag_name}"))
        }
        None => Ok(part.to_string()),
    }
}

fn check_name(flag: &str, value: &str, dots: bool) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.chars().all(|c| is_topic_char(c) || (dots && c == '.'))
        && !value.starts_with('.')
        && !value.ends_with('.')
        && !value.contains("..");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{flag} must be letters, digits, `_` or `-`{} (the characters a Kafka topic name keeps)",
            if dots { ", in dot-separated parts" } else { "" }
        ))
    }
}

/// What the connector captures: one prefix, its databases, its include-list entries.
struct Capture {
    prefix: String,
    databases: Vec<String>,
    /// `table.include.list` entries, in the connector's identifier form.
    include: Vec<String>,
    placeholder: Placeholder,
}

fn from_tables(config: &Config, args: &Args) -> Result<Capture, String> {
    if !args.tables.is_empty() {
        return Err("--table applies to the default routing only: the connector's tables come from \
                    the config's [[tables]] topic patterns"
            .into());
    }
    let connector = args.connector;
    let mut prefix: Option<(usize, String)> = None;
    let mut databases: Vec<String> = Vec::new();
    let mut include: Vec<String> = Vec::new();
    let mut placeholder: Option<(usize, Placeholder)> = None;
    for (index, table) in config.tables.iter().enumerate() {
        let glob = table.topic.glob.as_str();
        let parts = split_pattern(index, glob, connector)?;
        let this_prefix =
            literal_for(&parts.prefix, args.topic_prefix.as_deref(), "--topic-prefix", "topic prefix", index, glob)?;
        match &prefix {
            Some((first, p)) if *p != this_prefix => {
                return Err(format!(
                    "tables[{first}] and tables[{index}] have different topic prefixes; one connector \
                     writes one topic.prefix: run a connector per prefix, each with a config of its tables"
                ));
            }
            Some(_) => {}
            None => prefix = Some((index, this_prefix)),
        }
        let database = match &parts.database {
            Some(part) => literal_for(part, args.database.as_deref(), "--database", "database", index, glob)?,
            None => args.database.clone().ok_or_else(|| {
                "a PostgreSQL topic does not name its database (<topic.prefix>.<schema>.<table>): give --database"
                    .to_string()
            })?,
        };
        if !databases.contains(&database) {
            databases.push(database.clone());
        }
        let entry = match connector {
            Connector::Mysql => format!("{database}.{}", include_regex(&parts.table)),
            Connector::Sqlserver | Connector::Postgresql => include_regex(&parts.table),
        };
        if !include.contains(&entry) {
            include.push(entry);
        }
        match &placeholder {
            Some((first, p)) if *p != table.placeholder => {
                return Err(format!(
                    "tables[{first}] and tables[{index}] set different unavailable_value_placeholder values; \
                     one connector has one unavailable.value.placeholder"
                ));
            }
            Some(_) => {}
            None => placeholder = Some((index, table.placeholder.clone())),
        }
    }
    let (_, prefix) = prefix.ok_or("the config has no [[tables]]")?;
    if connector == Connector::Postgresql && databases.len() > 1 {
        return Err("a PostgreSQL connector reads one database".into());
    }
    Ok(Capture { prefix, databases, include, placeholder: placeholder.map(|(_, p)| p).unwrap_or_default() })
}

fn from_flags(args: &Args) -> Result<Capture, String> {
    let missing: Vec<&str> = [
        ("--topic-prefix", args.topic_prefix.is_none()),
        ("--database", args.database.is_none()),
        ("--table", args.tables.is_empty()),
    ]
    .into_iter()
    .filter_map(|(flag, absent)| absent.then_some(flag))
    .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the default routing has no [[tables]] to take the connector's tables from: give {} \
             (missing: {})",
            "--topic-prefix, --database and --table (repeated)",
            missing.join(", ")
        ));
    }
    let (Some(prefix), Some(database)) = (&args.topic_prefix, &args.database) else {
        return Err("give --topic-prefix and --database".into());
    };
    let table_form = match args.connector {
        Connector::Sqlserver | Connector::Postgresql => "schema.table",
        Connector::Mysql => "table",
    };
    let mut include = Vec::new();
    for table in &args.tables {
        let dots = table.matches('.').count();
        let expected = usize::from(args.connector != Connector::Mysql);
        check_name("--table", table, true)?;
        if dots != expected {
            return Err(format!("--table takes `{table_form}` for the {} connector", args.connector.name()));
        }
        let entry = match args.connector {
            Connector::Mysql => format!("{database}.{table}"),
            Connector::Sqlserver | Connector::Postgresql => table.clone(),
        };
        if !include.contains(&entry) {
            include.push(entry);
        }
    }
    Ok(Capture {
        prefix: prefix.clone(),
        databases: vec![database.clone()],
        include,
        placeholder: Placeholder::default(),
    })
}

/// The placeholder as Debezium's setting takes it: the text, or `hex:` and its octets when the
/// bytes are no UTF-8 text (or the text itself starts with `hex:`).
fn placeholder_setting(placeholder: &Placeholder) -> String {
    match std::str::from_utf8(&placeholder.bytes) {
        Ok(text) if !text.starts_with("hex:") => text.to_string(),
        _ => placeholder.bytes.iter().fold(String::from("hex:"), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        }),
    }
}

/// A lowercase identifier from the topic prefix for PostgreSQL's slot and publication, which
/// must be unique per connector on one database (a second connector with Debezium's default
/// `debezium` slot would take over the first one's). Slot names are lowercase letters, digits
/// and underscores, at most 63 characters.
fn pg_identifier(base: &str, prefix: &str) -> String {
    let mut name = format!("{base}_{}", prefix.to_ascii_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "_"));
    name.truncate(63);
    name
}

/// MySQL's `database.server.id` when `--server-id` is not given: a number from the topic
/// prefix (FNV-1a), so that two connectors with different prefixes get different ids; it must
/// differ from every server and client id of the replication topology (1 … 2³²−1; kept above
/// 5400, the range MySQL clients commonly use).
fn derived_server_id(prefix: &str) -> u32 {
    let hash = prefix.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    5_401 + hash % (u32::MAX - 5_401)
}

/// The whole configuration for `args`.
///
/// Errors (exit 2 at the edge): a config that does not load; flags that are malformed, missing
/// where the patterns do not name a part, or contradicting the patterns; patterns that one
/// connector cannot produce (different prefixes or placeholders, too few parts).
pub fn build(args: &Args) -> Result<Output, String> {
    let config = cdc_cli::load_config(args.config.as_deref().map(Path::new))?;
    if let Some(prefix) = &args.topic_prefix {
        check_name("--topic-prefix", prefix, true)?;
    }
    if let Some(database) = &args.database {
        check_name("--database", database, false)?;
    }
    if args.server_id.is_some() && args.connector != Connector::Mysql {
        return Err("--server-id applies to --connector mysql only".into());
    }
    let glue_flags = args.glue_registry.is_some() || args.region.is_some();
    let confluent_flags = args.registry_url.is_some() || args.registry_secret.is_some();
    match (args.format, args.registry) {
        (Format::Json, None) if glue_flags || confluent_flags => {
            return Err("--glue-registry, --region, --registry-url and --registry-secret go with --format avro".into());
        }
        (Format::Json, Some(_)) => return Err("--registry goes with --format avro".into()),
        (Format::Avro, None) => {
            return Err(
                "--format avro needs --registry glue or --registry confluent (the functions' SCHEMA_REGISTRY)".into()
            );
        }
        (Format::Avro, Some(RegistryKind::Glue)) if confluent_flags => {
            return Err("--registry-url and --registry-secret go with --registry confluent".into());
        }
        (Format::Avro, Some(RegistryKind::Confluent)) if glue_flags => {
            return Err("--glue-registry and --region go with --registry glue".into());
        }
        _ => {}
    }
    if let Some(url) = &args.registry_url {
        // The functions' own rules for SCHEMA_REGISTRY_URL, and https: the connector sends the
        // registry's credentials.
        if let Some(problem) = cdc_pipeline::settings::registry_url_problem(url, true) {
            return Err(format!("--registry-url: {problem}"));
        }
        if !url.to_ascii_lowercase().starts_with("https://") {
            return Err("--registry-url must be an https:// URL (the connector sends credentials to it)".into());
        }
    }
    if args.server_id == Some(0) {
        return Err("--server-id must be 1 or more (MySQL refuses server id 0 for a replica)".into());
    }
    for (flag, secret) in [("--secret", &args.secret), ("--registry-secret", &args.registry_secret)] {
        // A `${provider:path:key}` reference splits at colons, so an ARN cannot be the path.
        if let Some(secret) = secret
            && (secret.is_empty() || !secret.chars().all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c)))
        {
            return Err(format!(
                "{flag} takes the secret's name (letters, digits and /_+=.@-), not its ARN: \
                 a ${{secretsmanager:<name>:<key>}} reference splits at colons"
            ));
        }
    }
    if let Some(name) = &args.glue_registry
        && (name.is_empty()
            || name.len() > 255
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_$#.".contains(c)))
    {
        return Err("--glue-registry must be a Glue registry name: 1-255 letters, digits and -_$#.".into());
    }
    if let Some(region) = &args.region
        && (region.is_empty() || !region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
    {
        return Err("--region must be an AWS region name (e.g. eu-west-1)".into());
    }
    if let Some(servers) = &args.bootstrap_servers {
        let ok = servers.split(',').all(|server| {
            server.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty()
                    && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
                    && port.parse::<u16>().is_ok()
            })
        });
        if !ok {
            return Err("--bootstrap-servers takes comma-separated host:port pairs (MSK's IAM bootstrap \
                        brokers, port 9098)"
                .into());
        }
    }
    if let Some(host) = &args.db_host
        && (host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || ".-".contains(c)))
    {
        return Err("--db-host takes a host name or IP address".into());
    }
    let capture = if config.tables.is_empty() { from_flags(args)? } else { from_tables(&config, args)? };
    check_name("the topic prefix", &capture.prefix, true)?;
    for database in &capture.databases {
        check_name("the database", database, false)?;
    }
    Ok(render(args, &capture))
}

fn render(args: &Args, capture: &Capture) -> Output {
    let connector = args.connector;
    let mut unfilled = Vec::new();
    let mut fill = |value: &Option<String>, flag: &'static str, placeholder: &'static str| -> String {
        value.clone().unwrap_or_else(|| {
            unfilled.push((flag, placeholder));
            placeholder.to_string()
        })
    };
    let secret = fill(&args.secret, "--secret", SECRET_PLACEHOLDER);
    let host = fill(&args.db_host, "--db-host", HOST_PLACEHOLDER);
    let bootstrap = match connector {
        Connector::Postgresql => None,
        Connector::Sqlserver | Connector::Mysql => {
            Some(fill(&args.bootstrap_servers, "--bootstrap-servers", BOOTSTRAP_PLACEHOLDER))
        }
    };
    let (glue_registry, glue_region, registry_url) = match (args.format, args.registry) {
        (Format::Avro, Some(RegistryKind::Glue) | None) => (
            fill(&args.glue_registry, "--glue-registry", GLUE_REGISTRY_PLACEHOLDER),
            fill(&args.region, "--region", REGION_PLACEHOLDER),
            String::new(),
        ),
        (Format::Avro, Some(RegistryKind::Confluent)) => {
            (String::new(), String::new(), fill(&args.registry_url, "--registry-url", REGISTRY_URL_PLACEHOLDER))
        }
        (Format::Json, _) => (String::new(), String::new(), String::new()),
    };
    let mut p: Vec<(String, String)> = Vec::new();
    let mut set = |key: &str, value: &str| p.push((key.to_string(), value.to_string()));

    set("connector.class", connector.class());
    // Every Debezium relational connector runs one task.
    set("tasks.max", "1");

    // Connection. Credentials are resolved by the worker's config provider (MSK's
    // msk-config-providers, declared in the custom worker configuration as `secretsmanager`),
    // never stored in the connector's configuration.
    set("database.hostname", &host);
    set("database.port", &connector.default_port().to_string());
    set("database.user", &format!("${{secretsmanager:{secret}:username}}"));
    set("database.password", &format!("${{secretsmanager:{secret}:password}}"));
    // MSK Connect restarts a connector that uses a config provider every few minutes unless
    // told not to ("Using a configuration provider", MSK Developer Guide).
    set("config.action.reload", "none");

    // What is captured, and the topics it goes to.
    set("topic.prefix", &capture.prefix);
    match connector {
        Connector::Sqlserver => {
            set("database.names", &capture.databases.join(","));
            // The JDBC driver (mssql-jdbc 12, Debezium 2.x) encrypts by default; said here so
            // that nobody turns it off to get past an untrusted RDS certificate (import the RDS
            // CA into a trust store instead: README).
            set("database.encrypt", "true");
        }
        Connector::Postgresql => {
            set("database.dbname", &capture.databases[0]);
            // pgoutput is built into PostgreSQL 10+ and the only plugin RDS and Aurora offer
            // without extensions.
            set("plugin.name", "pgoutput");
            set("slot.name", &pg_identifier("debezium", &capture.prefix));
            set("publication.name", &pg_identifier("dbz_publication", &capture.prefix));
            // Only the captured tables, and creatable by a table owner without superuser.
            set("publication.autocreate.mode", "filtered");
        }
        Connector::Mysql => {
            let server_id = args.server_id.unwrap_or_else(|| derived_server_id(&capture.prefix));
            set("database.server.id", &server_id.to_string());
            set("database.include.list", &capture.databases.join(","));
        }
    }
    set("table.include.list", &capture.include.join(","));

    // Converters: JSON with schemas, the form the decoder reads completely (the schema types
    // every column: exact decimals, temporal units, bytes; keys typed too), or a registry's
    // Avro converter, whose Avro schema carries the same Connect types (`connect.name`,
    // `connect.parameters`; README "Avro records behind a schema registry"). MSK Connect's
    // default worker configuration is StringConverter, which the pipeline rejects
    // (`converter_string`), so the connector sets its own, for keys and values alike.
    for side in ["key", "value"] {
        match (args.format, args.registry) {
            (Format::Json, _) => {
                set(&format!("{side}.converter"), "org.apache.kafka.connect.json.JsonConverter");
                set(&format!("{side}.converter.schemas.enable"), "true");
            }
            (Format::Avro, Some(RegistryKind::Glue) | None) => {
                // The AWS Glue Schema Registry's converter (awslabs/aws-glue-schema-registry,
                // a custom plugin beside Debezium's); GENERIC_RECORD keeps Connect's schema
                // attributes; schemas are registered as the connector meets them.
                set(
                    &format!("{side}.converter"),
                    "com.amazonaws.services.schemaregistry.kafkaconnect.AWSKafkaAvroConverter",
                );
                set(&format!("{side}.converter.region"), &glue_region);
                set(&format!("{side}.converter.registry.name"), &glue_registry);
                set(&format!("{side}.converter.schemaAutoRegistrationEnabled"), "true");
                set(&format!("{side}.converter.avroRecordType"), "GENERIC_RECORD");
            }
            (Format::Avro, Some(RegistryKind::Confluent)) => {
                // Confluent's AvroConverter (a custom plugin beside Debezium's).
                set(&format!("{side}.converter"), "io.confluent.connect.avro.AvroConverter");
                set(&format!("{side}.converter.schema.registry.url"), &registry_url);
                if let Some(secret) = &args.registry_secret {
                    set(&format!("{side}.converter.basic.auth.credentials.source"), "USER_INFO");
                    set(
                        &format!("{side}.converter.basic.auth.user.info"),
                        &format!("${{secretsmanager:{secret}:username}}:${{secretsmanager:{secret}:password}}"),
                    );
                }
            }
        }
    }
    if args.format == Format::Avro {
        // Avro names allow letters, digits and `_` only: Debezium makes schema and field names
        // of any source name fit (`schema.name.adjustment.mode`, `field.name.adjustment.mode`),
        // so a `-` in a topic prefix or a column name cannot stop the converter.
        set("schema.name.adjustment.mode", "avro");
        set("field.name.adjustment.mode", "avro");
    }

    // Value representations (README "What is decoded, and how"):
    // - `precise`: DECIMAL/NUMERIC as Connect `Decimal` bytes with the scale (and
    //   `connect.decimal.precision`) in the schema: exact, and typed for `cdc ddl`; `double`
    //   rounds, `string` leaves the column untyped.
    set("decimal.handling.mode", "precise");
    // - time: the adaptive modes keep the column's own precision (µs, and ns for SQL Server's
    //   datetime2(7), which the decoder truncates to µs); `connect` cuts everything to ms.
    //   MySQL's adaptive mode is `adaptive_time_microseconds` (TIME as µs, which also holds
    //   MySQL's ±838-hour range for the decoder's `time_range` check).
    set(
        "time.precision.mode",
        match connector {
            Connector::Sqlserver | Connector::Postgresql => "adaptive",
            Connector::Mysql => "adaptive_time_microseconds",
        },
    );
    // - `bytes`: binary columns as Connect `bytes` (base64 in JSON), decoded to bytes; the
    //   `base64`/`hex` modes make them strings the pipeline would load as text.
    set("binary.handling.mode", "bytes");
    if connector == Connector::Mysql {
        // BIGINT UNSIGNED beyond 2^63 overflows `long` (the default) into negative numbers;
        // `precise` sends a Decimal, exact.
        set("bigint.unsigned.handling.mode", "precise");
    }
    // The source column's type, length and scale as schema parameters
    // (`__debezium.source.column.type`, `…length`, `…scale`; Debezium's
    // `column.propagate.source.type`, a list of regular expressions over fully-qualified column
    // names): `cdc ddl` sizes VARCHAR and CHAR from the length, instead of VARCHAR(65535).
    // Every column of the captured tables (the connector captures no other).
    set("column.propagate.source.type", ".*");
    // The value the pipeline's config recognises as "not sent" (tables.unavailable_value_placeholder).
    set("unavailable.value.placeholder", &placeholder_setting(&capture.placeholder));
    // A delete is followed by a tombstone: the pipeline deletes the key by it (or skips it,
    // per table), and log compaction needs it to drop the key.
    set("tombstones.on.delete", "true");

    // Heartbeats keep offsets (and PostgreSQL's replication slot) moving on quiet tables; the
    // pipeline skips their topic by its prefix (`__debezium-heartbeat.*`), so the prefix is
    // spelled out.
    set("heartbeat.interval.ms", "60000");
    set("topic.heartbeat.prefix", "__debezium-heartbeat");

    // MSK creates no topic on first write by default (`auto.create.topics.enable=false`):
    // Kafka Connect's topic creation (KIP-158) makes them, with the cluster's default
    // partitions and replication factor (-1).
    set("topic.creation.default.partitions", "-1");
    set("topic.creation.default.replication.factor", "-1");

    // Schema history (SQL Server, MySQL; PostgreSQL keeps none): a topic on the same MSK
    // cluster, reached with IAM as the connector itself is, per MSK's Debezium example.
    if let Some(bootstrap) = &bootstrap {
        set("schema.history.internal.kafka.bootstrap.servers", bootstrap);
        set("schema.history.internal.kafka.topic", &format!("__debezium-schema-history.{}", capture.prefix));
        for client in ["producer", "consumer"] {
            let key = |name: &str| format!("schema.history.internal.{client}.{name}");
            set(&key("security.protocol"), "SASL_SSL");
            set(&key("sasl.mechanism"), "AWS_MSK_IAM");
            set(&key("sasl.jaas.config"), "software.amazon.msk.auth.iam.IAMLoginModule required;");
            set(&key("sasl.client.callback.handler.class"), "software.amazon.msk.auth.iam.IAMClientCallbackHandler");
        }
    }
    Output { properties: p, unfilled }
}

/// Run the command: the properties on stdout, a note naming any placeholder left on stderr.
pub fn run(args: &Args) -> Result<(), String> {
    let output = build(args)?;
    let mut text = String::new();
    for (key, value) in &output.properties {
        let _ = writeln!(text, "{key}={value}");
    }
    print!("{text}");
    if !output.unfilled.is_empty() {
        let list: Vec<String> =
            output.unfilled.iter().map(|(flag, placeholder)| format!("{placeholder} ({flag})")).collect();
        eprintln!("cdc: connector-config: fill in {}", list.join(", "));
    }
    Ok(())
}
