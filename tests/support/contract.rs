//! Settings of the contract suite (`make contract`, tests/contract/README.md): which real
//! Redshift to run against, from `CONTRACT_*` variables. Read by a pure function so that what a
//! missing or conflicting variable says is tested without a cluster.

use cdc_pipeline::redshift::{Auth, Target};

/// What the contract suite runs against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractSettings {
    pub target: Target,
    /// `CONTRACT_SCHEMA`: an existing schema to work in (each test drops the tables it made);
    /// `None`: every test creates a fresh `cdc_contract_<random>` schema and drops it.
    pub schema: Option<String>,
    /// `CONTRACT_STAGING_BUCKET` and `CONTRACT_COPY_ROLE_ARN`: where staged COPY objects go
    /// and the role the cluster reads them as; `None`: only `load = "insert"` runs.
    pub staging: Option<(String, String)>,
}

/// The variables, with how to set them: printed when any is missing.
pub const VARIABLES: [(&str, &str); 8] = [
    ("CONTRACT_DATABASE", "the database to test in, e.g. `export CONTRACT_DATABASE=dev`"),
    (
        "CONTRACT_WORKGROUP",
        "a Redshift Serverless workgroup: `export CONTRACT_WORKGROUP=<name>` (or CONTRACT_CLUSTER_ID)",
    ),
    ("CONTRACT_CLUSTER_ID", "a provisioned cluster: `export CONTRACT_CLUSTER_ID=<identifier>` (or CONTRACT_WORKGROUP)"),
    ("CONTRACT_DB_USER", "optional, clusters only: the database user for temporary credentials"),
    ("CONTRACT_SECRET_ARN", "optional: a Secrets Manager secret with database credentials (not with CONTRACT_DB_USER)"),
    ("CONTRACT_SCHEMA", "optional: an existing schema to work in (default: a fresh cdc_contract_<random> per test)"),
    (
        "CONTRACT_STAGING_BUCKET",
        "for the COPY path (`load = \"copy\"`, the default): an S3 bucket in the cluster's region, objects under staging/",
    ),
    ("CONTRACT_COPY_ROLE_ARN", "for the COPY path: the IAM role the cluster assumes to read the bucket, or `default`"),
];

fn help(name: &str) -> &'static str {
    VARIABLES.iter().find(|(n, _)| *n == name).map_or("", |(_, h)| h)
}

/// Read the settings through `get` (`std::env::var` in the suite; empty counts as unset).
/// Every problem is listed in one message, with how to fix it.
pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<ContractSettings, String> {
    let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
    let mut problems = Vec::new();
    let database = get("CONTRACT_DATABASE");
    if database.is_none() {
        problems.push(format!("CONTRACT_DATABASE is not set: {}", help("CONTRACT_DATABASE")));
    }
    let (db_user, secret_arn) = (get("CONTRACT_DB_USER"), get("CONTRACT_SECRET_ARN"));
    if db_user.is_some() && secret_arn.is_some() {
        problems
            .push("CONTRACT_DB_USER and CONTRACT_SECRET_ARN are both set: set one, or neither (IAM identity)".into());
    }
    let auth = match (get("CONTRACT_WORKGROUP"), get("CONTRACT_CLUSTER_ID")) {
        (Some(_), Some(_)) => {
            problems.push("CONTRACT_WORKGROUP and CONTRACT_CLUSTER_ID are both set: set one".into());
            None
        }
        (Some(_), None) if db_user.is_some() => {
            problems.push("CONTRACT_DB_USER applies to CONTRACT_CLUSTER_ID, not to a workgroup: unset it".into());
            None
        }
        (Some(name), None) => Some(Auth::Workgroup { name, secret_arn }),
        (None, Some(id)) => Some(Auth::Cluster { id, db_user, secret_arn }),
        (None, None) => {
            problems.push(format!(
                "CONTRACT_WORKGROUP or CONTRACT_CLUSTER_ID is not set: {}; {}",
                help("CONTRACT_WORKGROUP"),
                help("CONTRACT_CLUSTER_ID")
            ));
            None
        }
    };
    let schema = get("CONTRACT_SCHEMA");
    if let Some(schema) = &schema
        && !(schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
    {
        problems.push("CONTRACT_SCHEMA must be a lowercase identifier ([a-z_][a-z0-9_]*)".into());
    }
    match (database, auth) {
        (Some(database), Some(auth)) if problems.is_empty() => {
            let staging = get("CONTRACT_STAGING_BUCKET").zip(get("CONTRACT_COPY_ROLE_ARN"));
            Ok(ContractSettings { target: Target { auth, database }, schema, staging })
        }
        _ => Err(format!(
            "the contract suite runs against a real Redshift and is not configured (tests/contract/README.md):\n  - {}\n\
             Region and credentials come from the standard AWS chain (AWS_REGION, AWS_PROFILE, …). Nothing was sent \
             to AWS and tests/contract/observed.json was not written.",
            problems.join("\n  - ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn nothing_set_names_every_missing_variable_and_how_to_set_it() {
        let message = from_env(env(&[])).unwrap_err();
        for needle in
            ["CONTRACT_DATABASE is not set", "export CONTRACT_DATABASE=", "CONTRACT_WORKGROUP or CONTRACT_CLUSTER_ID"]
        {
            assert!(message.contains(needle), "{needle}: {message}");
        }
        assert!(message.contains("export CONTRACT_WORKGROUP=") && message.contains("export CONTRACT_CLUSTER_ID="));
        assert_eq!(from_env(env(&[("CONTRACT_DATABASE", " ")])).unwrap_err(), message, "blank counts as unset");
    }

    #[test]
    fn serverless_and_provisioned_and_conflicts() {
        let serverless = from_env(env(&[("CONTRACT_DATABASE", "dev"), ("CONTRACT_WORKGROUP", "wg")])).unwrap();
        assert_eq!(serverless.target.auth, Auth::Workgroup { name: "wg".into(), secret_arn: None });
        assert_eq!(serverless.schema, None);
        let cluster = from_env(env(&[
            ("CONTRACT_DATABASE", "dev"),
            ("CONTRACT_CLUSTER_ID", "c1"),
            ("CONTRACT_DB_USER", "loader"),
            ("CONTRACT_SCHEMA", "cdc_scratch"),
        ]))
        .unwrap();
        assert_eq!(
            cluster.target.auth,
            Auth::Cluster { id: "c1".into(), db_user: Some("loader".into()), secret_arn: None }
        );
        assert_eq!(cluster.schema.as_deref(), Some("cdc_scratch"));
        let conflicts = from_env(env(&[
            ("CONTRACT_WORKGROUP", "wg"),
            ("CONTRACT_CLUSTER_ID", "c1"),
            ("CONTRACT_DB_USER", "u"),
            ("CONTRACT_SECRET_ARN", "arn"),
            ("CONTRACT_SCHEMA", "Bad-Name"),
        ]))
        .unwrap_err();
        for needle in
            ["CONTRACT_DATABASE is not set", "both set: set one", "set one, or neither", "CONTRACT_SCHEMA must"]
        {
            assert!(conflicts.contains(needle), "{needle}: {conflicts}");
        }
    }
}
