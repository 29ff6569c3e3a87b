//! Drawing [`ChatState`] with ratatui. Four regions, top to bottom: the
//! header (peer, connection, typing, trust warnings), the scrollback, the
//! status line and the input line. Fits an 80x24 terminal (and smaller:
//! every region is cut, never wrapped by the terminal).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use hush_client_core::client::PresenceState;

use super::state::{ChatState, Link, Mark, Style as LineStyle};

/// The status line when there is nothing to report.
const HINT: &str = "Enter send · PgUp/PgDn scroll · /help · Ctrl-C quit";
/// The input line's prompt.
const PROMPT: &str = "> ";

/// The lines of `/help`.
pub fn help(peer: &str) -> Vec<String> {
    vec![
        "Keys: Enter sends. Left/Right, Home/End (Ctrl-A/Ctrl-E), Backspace, Delete edit; \
         Ctrl-U clears the line, Ctrl-W deletes a word."
            .to_owned(),
        "Scroll: PgUp/PgDn a page, Up/Down a line, Esc back to the newest. Ctrl-L redraws."
            .to_owned(),
        format!(
            "Marks on your messages: (sending) not yet accepted by the relay; (sent) queued \
             for {peer}; (delivered) on {peer}'s device; (read) {peer} displayed it; \
             (failed) not sent, the status line says why."
        ),
        format!(
            "Header: \"online\" or \"last seen\" if {peer} lets you see it \
             (`hush presence allow` on their side); \"typing…\" while {peer} types; \"unverified\" until you compare safety \
             numbers (`hush safety-number {peer}`, then `hush verify {peer}`); \"KEY CHANGED\": \
             sending stops until `hush trust {peer}`."
        ),
        "Commands: /help, /chat USER (switch conversation), /quit (or Ctrl-C, Ctrl-D). \
         A line starting with // sends text \
         starting with /. Times are in the zone shown in the header (--utc for UTC)."
            .to_owned(),
    ]
}

pub fn draw(f: &mut Frame, st: &mut ChatState) {
    let [header, body, status, input] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(f.area());
    st.set_viewport(body.width, body.height);

    f.render_widget(Paragraph::new(header_line(st)), header);

    // Bottom-aligned: the newest line sits just above the input.
    let visible = st.visible();
    let pad = usize::from(body.height).saturating_sub(visible.len());
    let lines: Vec<Line> = std::iter::repeat_n(Line::default(), pad)
        .chain(visible.into_iter().map(scroll_line))
        .collect();
    f.render_widget(Paragraph::new(lines), body);

    f.render_widget(Paragraph::new(status_line(st)), status);

    let prompt_w = u16::try_from(PROMPT.len()).unwrap_or(2);
    let cols = usize::from(input.width.saturating_sub(prompt_w)).max(1);
    let (shown, cursor) = st.input.view(cols);
    let line = Line::from(vec![
        Span::styled(PROMPT, Style::default().add_modifier(Modifier::BOLD)),
        Span::raw(shown),
    ]);
    f.render_widget(Paragraph::new(line), input);
    let x = input
        .x
        .saturating_add(prompt_w)
        .saturating_add(u16::try_from(cursor).unwrap_or(u16::MAX))
        .min(input.right().saturating_sub(1));
    f.set_cursor_position(Position::new(x, input.y));
}

fn header_line(st: &ChatState) -> Line<'static> {
    let bar = Style::default().add_modifier(Modifier::REVERSED);
    let mut spans = vec![Span::styled(
        format!(" {} ", st.peer),
        bar.add_modifier(Modifier::BOLD),
    )];
    let (link, link_style) = match &st.link {
        Link::Connecting => ("connecting…".to_owned(), bar.fg(Color::Yellow)),
        Link::Connected => ("connected".to_owned(), bar),
        Link::Reconnecting => ("reconnecting…".to_owned(), bar.fg(Color::Yellow)),
        Link::Stopped(why) => (format!("offline ({why})"), bar.fg(Color::Red)),
    };
    spans.push(Span::styled(format!("· {link} "), link_style));
    spans.push(Span::styled(
        format!("· {} ", crate::time::zone_label(crate::time::now_ms())),
        bar,
    ));
    if let Some(p) = st.presence {
        spans.push(Span::styled(
            format!("· {} ", presence_label(p, crate::time::now_ms())),
            bar,
        ));
    }
    if st.trust.key_changed {
        spans.push(Span::styled(
            "· KEY CHANGED ",
            bar.fg(Color::Red).add_modifier(Modifier::BOLD),
        ));
    } else if !st.trust.verified {
        spans.push(Span::styled("· unverified ", bar.fg(Color::Yellow)));
    }
    if st.trust.blocked {
        spans.push(Span::styled("· BLOCKED ", bar.fg(Color::Red)));
    } else if st.trust.request {
        spans.push(Span::styled("· message request ", bar.fg(Color::Yellow)));
    }
    if st.peer_typing.is_typing() {
        spans.push(Span::styled(
            "· typing… ",
            bar.add_modifier(Modifier::ITALIC),
        ));
    }
    if st.scroll() > 0 {
        spans.push(Span::styled(format!("· {} lines below ", st.scroll()), bar));
    }
    Line::from(spans).style(bar)
}

/// "online", "last seen HH:MM" (today), "last seen YYYY-MM-DD" or
/// "offline" (never seen); in the zone of [`crate::time`].
pub fn presence_label(p: PresenceState, now_ms: u64) -> String {
    if p.online {
        return "online".to_owned();
    }
    match p.last_seen_ms {
        None => "offline".to_owned(),
        Some(ms) if crate::time::same_day(ms, now_ms) => {
            format!("last seen {}", crate::time::short(ms, now_ms))
        }
        Some(ms) => format!("last seen {}", crate::time::day(ms)),
    }
}

fn scroll_line(l: super::state::RenderLine) -> Line<'static> {
    let (head, body) = match l.style {
        LineStyle::Mine => (Style::default().fg(Color::Green), Style::default()),
        LineStyle::Theirs => (Style::default().fg(Color::Cyan), Style::default()),
        LineStyle::TheirsWarning => (
            Style::default().fg(Color::Red),
            Style::default().fg(Color::Red),
        ),
        LineStyle::Notice => (Style::default(), Style::default().fg(Color::Yellow)),
    };
    let mut spans = vec![Span::styled(l.head, head), Span::styled(l.body, body)];
    if let Some(mark) = l.mark {
        let style = match mark {
            Mark::Failed => Style::default().fg(Color::Red),
            Mark::Read => Style::default().fg(Color::Green),
            _ => Style::default().add_modifier(Modifier::DIM),
        };
        spans.push(Span::styled(mark.label(), style));
    }
    Line::from(spans)
}

fn status_line(st: &ChatState) -> Line<'static> {
    match &st.status {
        Some(s) if s.error => Line::from(Span::styled(
            format!("! {}", s.text),
            Style::default().fg(Color::Red),
        )),
        Some(s) => Line::from(Span::styled(
            s.text.clone(),
            Style::default().fg(Color::Yellow),
        )),
        None => Line::from(Span::styled(
            HINT,
            Style::default().add_modifier(Modifier::DIM),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn screen(st: &mut ChatState) -> Vec<String> {
        let mut term = match Terminal::new(TestBackend::new(80, 24)) {
            Ok(t) => t,
            Err(e) => panic!("test backend: {e}"),
        };
        if let Err(e) = term.draw(|f| draw(f, st)) {
            panic!("draw: {e}");
        }
        let buf = term.backend().buffer().clone();
        (0..24)
            .map(|y| {
                (0..80)
                    .map(|x| buf[(x, y)].symbol().to_owned())
                    .collect::<String>()
            })
            .collect()
    }

    #[test]
    fn draws_header_scrollback_status_and_input_in_80x24() {
        let mut st = ChatState::new("alice", "bob", Vec::new(), Default::default());
        let local = st.outgoing("hello bob", 0);
        st.accepted(local, hush_client_core::payload::MessageId([1; 16]));
        for c in "draft".chars() {
            st.input.edit(super::super::input::Edit::Insert(c));
        }
        let rows = screen(&mut st);
        assert!(
            rows[0].contains("bob") && rows[0].contains("connected"),
            "{rows:?}"
        );
        assert!(rows[0].contains("unverified"));
        assert!(
            rows[21].contains("00:00 alice: hello bob (sent)"),
            "{rows:?}"
        );
        assert!(rows[22].contains("/help"));
        assert!(rows[23].starts_with("> draft"));
        assert!(!rows[0].contains("online"), "no presence until known");
        st.presence = Some(PresenceState {
            online: true,
            last_seen_ms: None,
        });
        let rows = screen(&mut st);
        assert!(rows[0].contains("· online"), "{rows:?}");
    }

    #[test]
    fn presence_label_says_online_or_when_last_seen() {
        crate::time::utc_for_tests();
        const DAY: u64 = 86_400_000;
        let now = 20_000 * DAY + 15 * 3_600_000;
        let at = |online, last_seen_ms| PresenceState {
            online,
            last_seen_ms,
        };
        assert_eq!(presence_label(at(true, Some(now - 1)), now), "online");
        assert_eq!(
            presence_label(at(false, Some(now - 3_600_000 - 60_000)), now),
            "last seen 13:59"
        );
        assert_eq!(
            presence_label(at(false, Some(now - DAY)), now),
            "last seen 2024-10-03"
        );
        assert_eq!(presence_label(at(false, None), now), "offline");
    }
}
