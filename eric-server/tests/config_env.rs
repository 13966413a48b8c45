//! Settings from the environment take the type of the setting, and a bad
//! value names the variable or the file it came from.

#![allow(clippy::unwrap_used)]

use eric_server::config::Config;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn a_string_setting_stays_a_string_whatever_it_looks_like() {
    let config = Config::load(
        None,
        env(&[
            ("ERIC__REDIS__PREFIX", "2024"),
            ("ERIC__REDIS__URL", "redis://r:6379"),
            ("ERIC__LOG__FILTER", "true"),
            ("ERIC__SOCKET__PATH", "1.5"),
        ]),
    )
    .unwrap();
    let redis = config.redis.unwrap();
    assert_eq!(redis.prefix, "2024");
    assert_eq!(redis.url, "redis://r:6379");
    assert_eq!(config.log.filter, "true");
    assert_eq!(config.socket.path.unwrap().to_str(), Some("1.5"));
}

#[test]
fn typed_settings_still_parse_from_text() {
    let config = Config::load(
        None,
        env(&[
            ("ERIC__HTTP__KEEP_ALIVE_SECS", "7"),
            ("ERIC__HTTP__ADDR", "0.0.0.0:9000"),
            ("ERIC__HTTP__CORS_ORIGINS", r#"["https://app.example"]"#),
            ("ERIC__CHANNELS__STREAM_DELAY_SECONDS", "0.5"),
            ("ERIC__REDIS__POOL_SIZE", "8"),
            (
                "ERIC__REDIS__SENTINELS",
                r#"["redis://s1:26379", "redis://s2:26379"]"#,
            ),
            ("ERIC__REDIS__MASTER_NAME", "main"),
            ("ERIC__REDIS__WAIT_REPLICAS", "1"),
        ]),
    )
    .unwrap();
    assert_eq!(config.http.keep_alive_secs, 7);
    assert_eq!(config.http.addr.port(), 9000);
    assert_eq!(config.http.cors_origins, ["https://app.example"]);
    let redis = config.redis.unwrap();
    assert_eq!(redis.pool_size, 8);
    assert_eq!(redis.sentinels, ["redis://s1:26379", "redis://s2:26379"]);
    assert_eq!(
        (redis.master_name.as_str(), redis.wait_replicas),
        ("main", 1)
    );
}

#[test]
fn a_bad_value_names_its_variable() {
    for (var, value) in [
        ("ERIC__HTTP__KEEP_ALIVE_SECS", "soon"),
        ("ERIC__HTTP__MAX_BODY_BYTES", "0"),
        ("ERIC__HTTP__ADDR", "not an address"),
        ("ERIC__REDIS__POOL_SIZE", "-1"),
        ("ERIC__HTTP__NOPE", "1"),
    ] {
        let vars = env(&[("ERIC__LOG__FILTER", "debug"), (var, value)]);
        let err = Config::load(None, vars).unwrap_err().to_string();
        assert!(err.contains(var), "{var}={value}: {err}");
        assert!(!err.contains("ERIC__LOG__FILTER"), "{var}={value}: {err}");
    }
}

#[test]
fn a_bad_value_in_the_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eric.toml");
    std::fs::write(&path, "[http]\nkeep_alive_secs = \"soon\"\n").unwrap();
    let err = Config::load(Some(&path), env(&[("ERIC__HTTP__ADDR", "127.0.0.1:1")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("eric.toml"), "{err}");
    assert!(err.contains("keep_alive_secs"), "{err}");
    assert!(!err.contains("ERIC__"), "{err}");
}
