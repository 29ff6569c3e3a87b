//! The input line: a single-line editor with a cursor, the mapping from
//! keys to actions, and what a submitted line means (text or `/command`).
//! Pure: no terminal, no I/O.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use hush_client_core::limits::MAX_TEXT_LEN;

use super::wrap::{char_width, tail_fitting};

/// What a key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Submit,
    Edit(Edit),
    Move(Move),
    Scroll(Scroll),
    Redraw,
    Ignore,
}

/// Changes to the line's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    Insert(char),
    Backspace,
    Delete,
    DeleteWordBack,
    Clear,
}

/// Cursor movements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Left,
    Right,
    Home,
    End,
}

/// Scrollback movements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scroll {
    LineUp,
    LineDown,
    PageUp,
    PageDown,
    Bottom,
}

/// The action for a key event (presses and repeats only).
pub fn map_key(key: KeyEvent) -> Action {
    if key.kind == KeyEventKind::Release {
        return Action::Ignore;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('c' | 'd') if ctrl => Action::Quit,
        KeyCode::Char('a') if ctrl => Action::Move(Move::Home),
        KeyCode::Char('e') if ctrl => Action::Move(Move::End),
        KeyCode::Char('b') if ctrl => Action::Move(Move::Left),
        KeyCode::Char('f') if ctrl => Action::Move(Move::Right),
        KeyCode::Char('u') if ctrl => Action::Edit(Edit::Clear),
        KeyCode::Char('w') if ctrl => Action::Edit(Edit::DeleteWordBack),
        KeyCode::Char('h') if ctrl => Action::Edit(Edit::Backspace),
        KeyCode::Char('l') if ctrl => Action::Redraw,
        KeyCode::Char(_) if ctrl || key.modifiers.contains(KeyModifiers::ALT) => Action::Ignore,
        KeyCode::Char(c) => Action::Edit(Edit::Insert(c)),
        KeyCode::Enter => Action::Submit,
        KeyCode::Backspace => Action::Edit(Edit::Backspace),
        KeyCode::Delete => Action::Edit(Edit::Delete),
        KeyCode::Left => Action::Move(Move::Left),
        KeyCode::Right => Action::Move(Move::Right),
        KeyCode::Home => Action::Move(Move::Home),
        KeyCode::End => Action::Move(Move::End),
        KeyCode::Up => Action::Scroll(Scroll::LineUp),
        KeyCode::Down => Action::Scroll(Scroll::LineDown),
        KeyCode::PageUp => Action::Scroll(Scroll::PageUp),
        KeyCode::PageDown => Action::Scroll(Scroll::PageDown),
        KeyCode::Esc => Action::Scroll(Scroll::Bottom),
        _ => Action::Ignore,
    }
}

/// A single-line editor. The cursor is an index into the characters.
#[derive(Debug, Default)]
pub struct LineEditor {
    chars: Vec<char>,
    cursor: usize,
    bytes: usize,
}

impl LineEditor {
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    pub fn text(&self) -> String {
        self.chars.iter().collect()
    }

    #[cfg(test)]
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Applies `edit`; returns whether the text changed. Insertions that
    /// would make the line longer than a message may be are refused.
    pub fn edit(&mut self, edit: Edit) -> bool {
        match edit {
            Edit::Insert(c) => {
                let c = if c.is_control() { ' ' } else { c };
                if self.bytes + c.len_utf8() > MAX_TEXT_LEN {
                    return false;
                }
                self.chars.insert(self.cursor, c);
                self.bytes += c.len_utf8();
                self.cursor += 1;
                true
            }
            Edit::Backspace => {
                if self.cursor == 0 {
                    return false;
                }
                self.cursor -= 1;
                let c = self.chars.remove(self.cursor);
                self.bytes -= c.len_utf8();
                true
            }
            Edit::Delete => {
                if self.cursor >= self.chars.len() {
                    return false;
                }
                let c = self.chars.remove(self.cursor);
                self.bytes -= c.len_utf8();
                true
            }
            Edit::DeleteWordBack => {
                // The spaces just before the cursor, then the word before them.
                let before = self.chars.get(..self.cursor).unwrap_or_default();
                let spaces = before.iter().rev().take_while(|&&c| c == ' ').count();
                let word = before
                    .iter()
                    .rev()
                    .skip(spaces)
                    .take_while(|&&c| c != ' ')
                    .count();
                let start = self.cursor - spaces - word;
                if start == self.cursor {
                    return false;
                }
                let removed: usize = self
                    .chars
                    .drain(start..self.cursor)
                    .map(|c| c.len_utf8())
                    .sum();
                self.bytes -= removed;
                self.cursor = start;
                true
            }
            Edit::Clear => {
                let changed = !self.chars.is_empty();
                self.chars.clear();
                self.cursor = 0;
                self.bytes = 0;
                changed
            }
        }
    }

    /// Inserts pasted text (line breaks become spaces); returns whether
    /// anything was inserted.
    pub fn paste(&mut self, text: &str) -> bool {
        let mut changed = false;
        for c in text.chars() {
            let c = if c == '\r' || c == '\n' { ' ' } else { c };
            changed |= self.edit(Edit::Insert(c));
        }
        changed
    }

    pub fn move_cursor(&mut self, m: Move) {
        self.cursor = match m {
            Move::Left => self.cursor.saturating_sub(1),
            Move::Right => (self.cursor + 1).min(self.chars.len()),
            Move::Home => 0,
            Move::End => self.chars.len(),
        };
    }

    /// Empties the line and returns what it held.
    pub fn take(&mut self) -> String {
        let text = self.text();
        self.edit(Edit::Clear);
        text
    }

    /// The part of the line shown in `cols` columns and the cursor's
    /// column in it: the view scrolls horizontally to keep the cursor
    /// visible, showing as much as possible before it.
    pub fn view(&self, cols: usize) -> (String, usize) {
        let cols = cols.max(1);
        // Keep one column for the cursor itself.
        let before = self.chars.get(..self.cursor).unwrap_or_default();
        let start = tail_fitting(before, cols - 1);
        let mut shown = String::new();
        let mut used = 0;
        let mut cursor_col = 0;
        for (i, &c) in self.chars.iter().enumerate().skip(start) {
            if i == self.cursor {
                cursor_col = used;
            }
            let w = char_width(c);
            if used + w > cols {
                break;
            }
            shown.push(c);
            used += w;
        }
        if self.cursor >= self.chars.len() {
            cursor_col = used;
        }
        (shown, cursor_col)
    }
}

/// A `/command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Quit,
    Help,
    /// `/chat USER`: switch to the conversation with USER (as typed; may
    /// be empty or not a user id).
    Chat(String),
    Unknown(String),
}

/// What a submitted line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// Nothing to send (blank line).
    Nothing,
    /// A message to send.
    Text(String),
    Command(Command),
}

/// Classifies a submitted line: `/word` is a command, `//text` sends
/// `/text`, a blank line is nothing, anything else is sent as typed.
pub fn classify(line: &str) -> Submitted {
    if line.trim().is_empty() {
        return Submitted::Nothing;
    }
    if let Some(rest) = line.strip_prefix("//") {
        return Submitted::Text(format!("/{rest}"));
    }
    if let Some(cmd) = line.strip_prefix('/') {
        let mut words = cmd.split_whitespace();
        let name = words.next().unwrap_or("");
        return Submitted::Command(match name {
            "quit" | "q" | "exit" => Command::Quit,
            "help" | "h" | "?" => Command::Help,
            "chat" | "c" => Command::Chat(words.next().unwrap_or("").to_owned()),
            other => Command::Unknown(other.to_owned()),
        });
    }
    Submitted::Text(line.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(s: &str) -> LineEditor {
        let mut e = LineEditor::default();
        for c in s.chars() {
            e.edit(Edit::Insert(c));
        }
        e
    }

    #[test]
    fn inserts_at_the_cursor() {
        let mut e = typed("helo");
        e.move_cursor(Move::Left);
        e.edit(Edit::Insert('l'));
        assert_eq!(e.text(), "hello");
        assert_eq!(e.cursor(), 4);
        e.move_cursor(Move::Home);
        e.edit(Edit::Insert('>'));
        assert_eq!(e.text(), ">hello");
        e.move_cursor(Move::End);
        e.edit(Edit::Insert('!'));
        assert_eq!(e.text(), ">hello!");
    }

    #[test]
    fn backspace_and_delete_respect_the_ends() {
        let mut e = typed("ab");
        assert!(!e.edit(Edit::Delete));
        assert!(e.edit(Edit::Backspace));
        assert_eq!(e.text(), "a");
        e.move_cursor(Move::Home);
        assert!(!e.edit(Edit::Backspace));
        assert!(e.edit(Edit::Delete));
        assert!(e.is_empty());
        assert!(!e.edit(Edit::Delete));
        e.move_cursor(Move::Left);
        e.move_cursor(Move::Right);
        assert_eq!(e.cursor(), 0);
    }

    #[test]
    fn multibyte_characters_edit_as_one() {
        let mut e = typed("héllo 日本");
        e.edit(Edit::Backspace);
        assert_eq!(e.text(), "héllo 日");
        e.move_cursor(Move::Home);
        e.move_cursor(Move::Right);
        e.edit(Edit::Delete);
        assert_eq!(e.text(), "hllo 日");
    }

    #[test]
    fn delete_word_back_and_clear() {
        let mut e = typed("one two  ");
        assert!(e.edit(Edit::DeleteWordBack));
        assert_eq!(e.text(), "one ");
        assert!(e.edit(Edit::Clear));
        assert!(e.is_empty());
        assert!(!e.edit(Edit::Clear));
    }

    #[test]
    fn line_is_capped_at_the_message_limit() {
        let mut e = LineEditor::default();
        assert!(e.paste(&"x".repeat(MAX_TEXT_LEN)));
        assert!(!e.edit(Edit::Insert('y')));
        assert_eq!(e.take().len(), MAX_TEXT_LEN);
        assert!(e.is_empty());
    }

    #[test]
    fn paste_turns_line_breaks_into_spaces() {
        let mut e = LineEditor::default();
        e.paste("a\r\nb");
        assert_eq!(e.text(), "a  b");
    }

    #[test]
    fn view_scrolls_to_keep_the_cursor_visible() {
        let e = typed("abcdefghij");
        let (shown, col) = e.view(5);
        assert_eq!((shown.as_str(), col), ("ghij", 4));
        let mut e = e;
        e.move_cursor(Move::Home);
        let (shown, col) = e.view(5);
        assert_eq!((shown.as_str(), col), ("abcde", 0));
        let (shown, col) = typed("abc").view(10);
        assert_eq!((shown.as_str(), col), ("abc", 3));
    }

    #[test]
    fn keys_map_to_actions() {
        let k = |code, m| map_key(KeyEvent::new(code, m));
        let none = KeyModifiers::NONE;
        let ctrl = KeyModifiers::CONTROL;
        assert_eq!(k(KeyCode::Char('c'), ctrl), Action::Quit);
        assert_eq!(k(KeyCode::Char('d'), ctrl), Action::Quit);
        assert_eq!(k(KeyCode::Char('c'), none), Action::Edit(Edit::Insert('c')));
        assert_eq!(
            k(KeyCode::Char('C'), KeyModifiers::SHIFT),
            Action::Edit(Edit::Insert('C'))
        );
        assert_eq!(k(KeyCode::Enter, none), Action::Submit);
        assert_eq!(k(KeyCode::PageUp, none), Action::Scroll(Scroll::PageUp));
        assert_eq!(k(KeyCode::Home, none), Action::Move(Move::Home));
        assert_eq!(k(KeyCode::Char('x'), ctrl), Action::Ignore);
    }

    #[test]
    fn classifies_commands_and_text() {
        assert_eq!(classify("   "), Submitted::Nothing);
        assert_eq!(classify("/quit"), Submitted::Command(Command::Quit));
        assert_eq!(classify("/help"), Submitted::Command(Command::Help));
        assert_eq!(
            classify("/nope x"),
            Submitted::Command(Command::Unknown("nope".into()))
        );
        assert_eq!(
            classify("/chat carol"),
            Submitted::Command(Command::Chat("carol".into()))
        );
        assert_eq!(
            classify("/chat"),
            Submitted::Command(Command::Chat("".into()))
        );
        assert_eq!(classify("//shrug"), Submitted::Text("/shrug".into()));
        assert_eq!(classify(" hi "), Submitted::Text(" hi ".into()));
    }
}
