//! Unit tests of [`super`]: the ping and idle-timeout decisions.

use super::*;

const PING: Duration = Duration::from_secs(30);
const IDLE: Duration = Duration::from_secs(75);

#[test]
fn a_chatty_peer_is_never_pinged() {
    let mut l = Liveness::new(PING, IDLE);
    let t0 = l.last_heard;
    l.heard(t0 + Duration::from_secs(20));
    assert_eq!(l.check(t0 + PING), Verdict::Quiet);
    assert_eq!(l.next_check, t0 + Duration::from_secs(50));
}

#[test]
fn a_quiet_peer_is_pinged_then_dropped_at_the_idle_timeout() {
    let mut l = Liveness::new(PING, IDLE);
    let t0 = l.last_heard;
    assert_eq!(l.check(t0 + PING), Verdict::Ping);
    assert_eq!(l.next_check, t0 + Duration::from_secs(60));
    assert_eq!(l.check(l.next_check), Verdict::Ping);
    assert_eq!(l.next_check, t0 + IDLE, "the last check is at the deadline");
    assert_eq!(l.check(l.next_check), Verdict::Dead);
}

#[test]
fn a_pong_keeps_the_connection() {
    let mut l = Liveness::new(PING, IDLE);
    let t0 = l.last_heard;
    assert_eq!(l.check(t0 + PING), Verdict::Ping);
    l.heard(t0 + PING + Duration::from_millis(5));
    assert_eq!(l.check(l.next_check), Verdict::Quiet);
    assert_ne!(l.check(t0 + IDLE), Verdict::Dead);
}
