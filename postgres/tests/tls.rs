//! PostgreSQL over TLS, against the server `infra/servers.sh` starts: TCP is TLS only there,
//! its certificate (127.0.0.1, localhost) is signed by a throwaway CA (`INLET_PG_CA`), and
//! `INLET_PG_URL` says `sslmode=verify-full&sslrootcert=INLET_PG_CA`, so every other
//! PostgreSQL test runs over verify-full too. Here: what each mode accepts and refuses, and
//! the words of a refusal.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use inlet_postgres::{PgConfig, PgWarehouse, connect_client};
use inlet_testkit::{server_var, with_database};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `url` with its query replaced by `query`.
fn with_query(url: &str, query: &str) -> String {
    let base = url.split_once('?').map_or(url, |(base, _)| base);
    format!("{base}?{query}")
}

fn admin_url() -> String {
    server_var("INLET_PG_URL", "PostgreSQL")
}

fn ca() -> String {
    server_var("INLET_PG_CA", "PostgreSQL")
}

/// An error and its causes, as `{:#}` prints them.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

/// A CA of its own, which signed nothing the server has.
fn other_ca(dir: &Path) -> PathBuf {
    let (key, cert) = (dir.join("other-ca.key"), dir.join("other-ca.pem"));
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-days", "1", "-subj", "/CN=Not the server's CA", "-keyout"])
        .args([&key, Path::new("-out"), &cert])
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    cert
}

/// Connects a warehouse, no retries beyond a few seconds: a refusal must be final at once.
async fn warehouse(url: &str) -> Result<PgWarehouse, inlet_seams::WarehouseError> {
    let mut config = PgConfig::new(url);
    config.retry_for = Duration::from_secs(5);
    PgWarehouse::connect(config).await
}

/// Whether the connection `client` is on is encrypted, per the server.
async fn server_says_ssl(client: &tokio_postgres::Client) -> bool {
    client
        .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run infra/test.sh"]
async fn verify_full_connects_and_the_warehouse_works() {
    let url = support::fresh_database().await;
    assert!(
        url.contains("sslmode=verify-full") && url.contains("sslrootcert="),
        "{url}"
    );
    let w = warehouse(&url).await.unwrap();
    assert!(w.migrate().await.unwrap().is_empty(), "migrated at connect");
    let client = connect_client(&url).await.unwrap();
    assert!(server_says_ssl(&client).await);
    // verify-full checks DNS names as well as the IP address SAN.
    let by_name = with_query(
        &admin_url().replace("127.0.0.1", "localhost"),
        &format!("sslmode=verify-full&sslrootcert={}", ca()),
    );
    assert!(server_says_ssl(&connect_client(&by_name).await.unwrap()).await);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run infra/test.sh"]
async fn a_certificate_from_another_ca_is_refused_naming_the_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = other_ca(dir.path());
    // require with a root file checks the chain, as in libpq.
    for mode in ["verify-full", "verify-ca", "require"] {
        let url = with_query(&admin_url(), &format!("sslmode={mode}&sslrootcert={}", wrong.display()));
        let started = Instant::now();
        let err = chain(&warehouse(&url).await.unwrap_err());
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{mode}: retried a refused certificate"
        );
        let expected = format!(
            "the server's certificate for 127.0.0.1 was not trusted by the CA file {}",
            wrong.display()
        );
        assert!(err.contains(&expected), "{mode}: {err}");
        assert!(err.contains("unknown issuer"), "{mode}: {err}");
        assert!(!err.contains("InvalidCertificate("), "{mode}: a debug dump: {err}");
        let err = chain(&connect_client(&url).await.unwrap_err());
        assert!(err.contains(&expected), "{mode}: {err}");
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run infra/test.sh"]
async fn verify_full_checks_the_host_name_and_verify_ca_does_not() {
    // A name the certificate does not hold, for the address it is valid for.
    let port = admin_url()
        .split_once("127.0.0.1:")
        .unwrap()
        .1
        .split_once('/')
        .unwrap()
        .0
        .to_owned();
    let base = format!("postgres://postgres@inlet.invalid:{port}/postgres");
    let ca = ca();
    let full = with_query(
        &base,
        &format!("hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={ca}"),
    );
    let err = chain(&warehouse(&full).await.unwrap_err());
    assert!(
        err.contains("the server's certificate for inlet.invalid was not trusted"),
        "{err}"
    );
    assert!(err.contains("does not name the host inlet.invalid"), "{err}");
    let ca_only = with_query(&base, &format!("hostaddr=127.0.0.1&sslmode=verify-ca&sslrootcert={ca}"));
    assert!(server_says_ssl(&connect_client(&ca_only).await.unwrap()).await);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run infra/test.sh"]
async fn require_without_a_root_file_encrypts_without_checking() {
    let url = with_query(&admin_url(), "sslmode=require");
    assert!(server_says_ssl(&connect_client(&url).await.unwrap()).await);
    // prefer, the default, takes TLS when the server offers it.
    let url = with_query(&admin_url(), "application_name=inlet-test");
    assert!(server_says_ssl(&connect_client(&url).await.unwrap()).await);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run infra/test.sh"]
async fn sslmode_disable_is_refused_by_a_tls_only_server() {
    let url = with_query(&admin_url(), "sslmode=disable");
    let err = warehouse(&url).await.unwrap_err();
    let text = chain(&err);
    assert!(
        text.contains("no pg_hba.conf entry") && text.contains("no encryption"),
        "{text}"
    );
    let inlet_seams::WarehouseError::Database { retryable, .. } = err else {
        panic!("{text}")
    };
    assert!(!retryable, "{text}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run infra/test.sh"]
async fn a_password_user_logs_in_with_scram_over_tls() {
    let url = server_var("INLET_PG_PASSWORD_URL", "PostgreSQL with a password role");
    assert!(url.contains("sslmode=verify-full"), "{url}");
    let client = connect_client(&url).await.unwrap();
    assert!(server_says_ssl(&client).await);
    let user: String = client.query_one("SELECT current_user::text", &[]).await.unwrap().get(0);
    assert_eq!(user, "inlet_scram");
    // channel_binding=require: SCRAM-SHA-256-PLUS, bound to this TLS session's certificate.
    let bound = connect_client(&format!("{url}&channel_binding=require")).await.unwrap();
    assert!(server_says_ssl(&bound).await);
    // The warehouse, as that user, on a database of its own.
    let db = support::create_database(Some("inlet_scram")).await;
    let w = warehouse(&with_database(&url, &db)).await.unwrap();
    assert!(w.migrate().await.unwrap().is_empty());
    // A wrong password is refused, not retried.
    let (user_part, rest) = url.split_once('@').unwrap();
    let (scheme_user, _password) = user_part.rsplit_once(':').unwrap();
    let wrong = format!("{scheme_user}:not-the-password@{rest}");
    let text = chain(&warehouse(&wrong).await.unwrap_err());
    assert!(text.contains("password authentication failed"), "{text}");
}

#[tokio::test]
async fn an_unknown_sslmode_is_refused_naming_sslmode() {
    let err = chain(
        &warehouse("postgres://u@127.0.0.1:1/db?sslmode=bogus")
            .await
            .unwrap_err(),
    );
    assert!(err.contains("sslmode=bogus: unknown value"), "{err}");
    let err = chain(
        &connect_client("postgres://u@127.0.0.1:1/db?sslmode=bogus")
            .await
            .unwrap_err(),
    );
    assert!(err.contains("sslmode=bogus: unknown value"), "{err}");
}

#[tokio::test]
async fn an_unreadable_ca_file_is_refused_naming_sslrootcert() {
    let url = "postgres://u@127.0.0.1:1/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem";
    let err = chain(&warehouse(url).await.unwrap_err());
    assert!(
        err.contains("sslrootcert=/nonexistent/ca.pem: cannot read the CA file"),
        "{err}"
    );
    assert!(err.contains("No such file"), "{err}");
}
