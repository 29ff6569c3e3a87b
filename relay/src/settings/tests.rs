use hush_protocol::Limits;

use super::*;
use crate::config::StoreConfig;

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn defaults_match_the_protocol_limits() {
    let s = Settings::load(None, no_env, &[]).unwrap();
    assert_eq!(s.config.limits, Limits::default());
    assert_eq!(s.listen, "127.0.0.1:7070".parse().unwrap());
    assert_eq!(s.log_format, LogFormat::Text);
    assert_eq!(
        s.config.store,
        StoreConfig::Redb {
            data_dir: "./hush-data".into()
        }
    );
}

#[test]
fn flag_beats_env_beats_file_beats_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    std::fs::write(
        &file,
        "max_ack_ids = 7\nrate_burst = 8\nrate_per_sec = 9\nlisten = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let env = |name: &str| match name {
        "HUSH_RATE_BURST" => Some("80".to_owned()),
        "HUSH_RATE_PER_SEC" => Some("90".to_owned()),
        _ => None,
    };
    let s = Settings::load(Some(&file), env, &[("rate_per_sec", "900".into())]).unwrap();
    assert_eq!(s.config.limits.max_ack_ids, 7, "file over default");
    assert_eq!(s.config.limits.rate_burst, 80, "env over file");
    assert_eq!(s.config.limits.rate_per_sec, 900, "flag over env");
    assert_eq!(s.listen, "127.0.0.1:1".parse().unwrap());
    assert_eq!(
        s.config.limits.max_frame_bytes,
        Limits::default().max_frame_bytes
    );
}

#[test]
fn config_file_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    std::fs::write(&file, "store = \"memory\"\n").unwrap();
    let path = file.display().to_string();
    let env = move |name: &str| (name == CONFIG_ENV).then(|| path.clone());
    let s = Settings::load(None, env, &[]).unwrap();
    assert_eq!(s.config.store, StoreConfig::Memory);
}

#[test]
fn unknown_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    std::fs::write(&file, "max_frame_byte = 10\n").unwrap();
    let e = Settings::load(Some(&file), no_env, &[]).unwrap_err();
    assert!(matches!(&e, SettingsError::UnknownKey { key, .. } if key == "max_frame_byte"));
    assert!(
        e.to_string().contains("unknown option `max_frame_byte`"),
        "{e}"
    );
}

#[test]
fn bad_values_name_option_and_source() {
    let env = |name: &str| (name == "HUSH_MAX_FRAME_BYTES").then(|| "lots".to_owned());
    let e = Settings::load(None, env, &[]).unwrap_err().to_string();
    assert!(e.contains("`max_frame_bytes`"), "{e}");
    assert!(e.contains("HUSH_MAX_FRAME_BYTES"), "{e}");

    let e = Settings::load(None, no_env, &[("outbound_queue", "0".into())])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`outbound_queue`") && e.contains("--outbound-queue"),
        "{e}"
    );
    assert!(e.contains("at least 1"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    std::fs::write(&file, "listen = [1, 2]\n").unwrap();
    let e = Settings::load(Some(&file), no_env, &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("`listen`") && e.contains("relay.toml"), "{e}");

    let e = Settings::load(None, no_env, &[("log_format", "xml".into())])
        .unwrap_err()
        .to_string();
    assert!(e.contains("`log_format`"), "{e}");
}

#[test]
fn idle_timeout_must_exceed_the_ping_interval() {
    let e = Settings::load(
        None,
        no_env,
        &[
            ("ping_interval_secs", "30".into()),
            ("idle_timeout_secs", "30".into()),
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("`idle_timeout_secs`"), "{e}");
}

#[test]
fn tls_needs_both_files() {
    let e = Settings::load(None, no_env, &[("tls_cert", "c.pem".into())]).unwrap_err();
    assert_eq!(
        e,
        SettingsError::Missing {
            option: "tls_cert",
            needs: "tls_key"
        }
    );
}

#[test]
fn empty_env_counts_as_unset_and_redis_password_is_hidden() {
    let env = |name: &str| (name == "HUSH_LISTEN").then(String::new);
    assert!(Settings::load(None, env, &[]).is_ok());
    let e = Settings::load(None, no_env, &[("redis_url", "http://:secret@h".into())])
        .unwrap_err()
        .to_string();
    assert!(!e.contains("secret"), "{e}");
}

#[test]
fn proxy_networks_parse_and_bad_ones_are_named() {
    let s = Settings::load(
        None,
        no_env,
        &[(
            "proxy_protocol_from",
            "10.0.0.0/8, 127.0.0.2,fd00::/8".into(),
        )],
    )
    .unwrap();
    let nets: Vec<String> = s
        .config
        .proxy_protocol_from
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(nets, ["10.0.0.0/8", "127.0.0.2/32", "fd00::/8"]);
    let e = Settings::load(None, no_env, &[("proxy_protocol_from", "10.0.0/8".into())])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`proxy_protocol_from`") && e.contains("10.0.0/8"),
        "{e}"
    );
    let s = Settings::load(None, no_env, &[]).unwrap();
    assert!(
        s.config.proxy_protocol_from.is_empty(),
        "disabled by default"
    );
}

#[test]
fn every_option_has_distinct_names() {
    let mut keys: Vec<_> = OPTIONS.iter().map(|o| o.key).collect();
    let mut envs: Vec<_> = OPTIONS.iter().map(|o| o.env).collect();
    let mut flags: Vec<_> = OPTIONS.iter().map(|o| o.flag).collect();
    for v in [&mut keys, &mut envs, &mut flags] {
        let n = v.len();
        v.sort_unstable();
        v.dedup();
        assert_eq!(v.len(), n);
    }
}

#[test]
fn max_send_frame_bytes_from_file_and_env_and_never_below_max_frame_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    std::fs::write(&file, "max_send_frame_bytes = 500000\n").unwrap();
    let s = Settings::load(Some(&file), no_env, &[]).unwrap();
    assert_eq!(s.config.limits.max_send_frame_bytes, 500_000);
    let env = |name: &str| (name == "HUSH_MAX_SEND_FRAME_BYTES").then(|| "2048".to_owned());
    let s = Settings::load(Some(&file), env, &[]).unwrap();
    assert_eq!(
        s.config.limits.max_send_frame_bytes,
        Limits::default().max_frame_bytes,
        "raised to max_frame_bytes"
    );
}
