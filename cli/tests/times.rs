//! Times in the text output: local time with its offset (TZ honoured),
//! UTC with --utc; JSON keeps Unix milliseconds.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{HUSH, PASSPHRASE, hush, pair};

fn hush_tz(home: &Path, tz: &str, args: &[&str]) -> Output {
    Command::new(HUSH)
        .arg("--home")
        .arg(home)
        .args(args)
        .env("HUSH_PASSPHRASE", PASSPHRASE)
        .env("TZ", tz)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `YYYY-MM-DD HH:MM:SS +HH:MM` at the start of `line`: the minutes of
/// the day and the offset.
fn parse(line: &str) -> (u32, &str) {
    let (date, rest) = line.split_at(10);
    assert!(date.len() == 10 && date.as_bytes()[4] == b'-', "{line}");
    let time = &rest[1..9];
    let offset = &rest[10..16];
    assert_eq!(&rest[16..17], " ", "{line}");
    let h: u32 = time[0..2].parse().unwrap();
    let m: u32 = time[3..5].parse().unwrap();
    (h * 60 + m, offset)
}

#[test]
fn history_shows_local_time_with_its_offset_and_utc_with_the_flag() {
    let p = pair();
    let out = hush(&p.alice, &["send", "bob", "what time is it"]);
    assert!(out.status.success(), "{out:?}");
    let out = hush(&p.bob, &["recv"]);
    assert!(out.status.success(), "{out:?}");

    let kolkata = hush_tz(&p.bob, "Asia/Kolkata", &["history", "alice"]);
    assert!(kolkata.status.success(), "{kolkata:?}");
    let kolkata = String::from_utf8(kolkata.stdout).unwrap();
    let utc = hush_tz(&p.bob, "Asia/Kolkata", &["--utc", "history", "alice"]);
    let utc = String::from_utf8(utc.stdout).unwrap();
    let plain_utc = hush_tz(&p.bob, "UTC", &["history", "alice"]);
    let plain_utc = String::from_utf8(plain_utc.stdout).unwrap();

    assert!(
        kolkata
            .trim_end()
            .ends_with(" +05:30 alice: what time is it"),
        "{kolkata}"
    );
    assert!(
        utc.trim_end().ends_with(" +00:00 alice: what time is it"),
        "{utc}"
    );
    assert_eq!(utc, plain_utc, "--utc is TZ=UTC");
    let (local, off) = parse(&kolkata);
    let (base, off0) = parse(&utc);
    assert_eq!((off, off0), ("+05:30", "+00:00"));
    assert_eq!((base + 330) % 1440, local, "{kolkata} vs {utc}");

    // JSON is unchanged: Unix milliseconds whatever the zone.
    let json = hush_tz(&p.bob, "Asia/Kolkata", &["history", "alice", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(v["sent_at"].as_u64().unwrap() > 1_600_000_000_000, "{v}");
}

#[test]
fn chat_shows_todays_times_as_hh_mm_with_the_zone_in_the_header() {
    let tmux = common::Tmux::new();
    let p = pair();
    let out = hush(&p.alice, &["send", "bob", "clock check"]);
    assert!(out.status.success(), "{out:?}");
    let out = hush(&p.bob, &["recv"]);
    assert!(out.status.success(), "{out:?}");
    let line = hush_tz(&p.bob, "Asia/Kolkata", &["history", "alice"]);
    let line = String::from_utf8(line.stdout).unwrap();
    let hh_mm = &line[11..16];

    let script = common::chat_script_with(
        p.dir.path(),
        &p.bob,
        "alice",
        &[("TZ", "Asia/Kolkata")],
        &[],
    );
    tmux.start("bob", &script);
    let screen = tmux.wait_until("bob", "a connected header", |s| {
        common::header(s).contains("connected")
    });
    assert!(common::header(&screen).contains("· UTC+05:30 "), "{screen}");
    assert!(
        screen.contains(&format!("{hh_mm} alice: clock check")),
        "{hh_mm}: {screen}"
    );
    tmux.key("bob", "C-c");
    tmux.wait_for("bob", "hush-exit=0");
}
