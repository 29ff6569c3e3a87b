//! Lines word-wrapped to a width in terminal columns (`unicode-width`), so
//! the scrollback never relies on the terminal's own wrapping. The text
//! given is already display-safe ([`crate::terminal_text`]): no control
//! character but `\n` reaches here, so a peer cannot move the cursor or
//! change colours.

use unicode_width::UnicodeWidthChar;

/// Width of `s` in terminal columns (of display-safe text).
pub fn width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

pub fn char_width(c: char) -> usize {
    c.width().unwrap_or(1)
}

/// Greedy word wrap: the first line holds at most `first` columns, the
/// others at most `rest`. Words wider than a line are broken between
/// characters; `\n` forces a break; runs of spaces collapse to one. Always
/// returns at least one line (empty for empty text).
pub fn wrap(text: &str, first: usize, rest: usize) -> Vec<String> {
    let first = first.max(1);
    let rest = rest.max(1);
    let mut out: Vec<String> = Vec::new();
    let mut line = String::new();
    let mut used = 0usize;
    let limit = |out: &Vec<String>| if out.is_empty() { first } else { rest };
    for (i, paragraph) in text.split('\n').enumerate() {
        if i > 0 {
            out.push(std::mem::take(&mut line));
            used = 0;
        }
        for word in paragraph.split(' ').filter(|w| !w.is_empty()) {
            let w = width(word);
            if used > 0 && used + 1 + w <= limit(&out) {
                line.push(' ');
                line.push_str(word);
                used += 1 + w;
                continue;
            }
            if used > 0 {
                out.push(std::mem::take(&mut line));
                used = 0;
            }
            // Start of a line: place the word, breaking it if too wide.
            for c in word.chars() {
                let cw = char_width(c);
                if used > 0 && used + cw > limit(&out) {
                    out.push(std::mem::take(&mut line));
                    used = 0;
                }
                line.push(c);
                used += cw;
            }
        }
    }
    out.push(line);
    out
}

/// The longest suffix of `s` (in whole characters) that fits `cols`
/// columns, and its width.
pub fn tail_fitting(s: &[char], cols: usize) -> usize {
    let mut used = 0;
    let mut start = s.len();
    for &c in s.iter().rev() {
        let w = char_width(c);
        if used + w > cols {
            break;
        }
        used += w;
        start -= 1;
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_line() {
        assert_eq!(wrap("hello world", 20, 20), vec!["hello world"]);
        assert_eq!(wrap("", 20, 20), vec![""]);
    }

    #[test]
    fn wraps_at_word_boundaries_with_distinct_first_width() {
        let lines = wrap("the quick brown fox jumps over", 10, 15);
        assert_eq!(lines, vec!["the quick", "brown fox jumps", "over"]);
        for (i, l) in lines.iter().enumerate() {
            assert!(width(l) <= if i == 0 { 10 } else { 15 });
        }
    }

    #[test]
    fn breaks_words_longer_than_a_line() {
        assert_eq!(wrap("abcdefghij", 4, 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("ab abcdefgh", 4, 4), vec!["ab", "abcd", "efgh"]);
    }

    #[test]
    fn counts_wide_characters_as_two_columns() {
        let lines = wrap("日本語のテキスト", 6, 6);
        assert_eq!(lines, vec!["日本語", "のテキ", "スト"]);
        // A wide character never splits, even in a 1-column line.
        assert_eq!(wrap("日本", 1, 1), vec!["日", "本"]);
    }

    #[test]
    fn newlines_force_breaks() {
        assert_eq!(wrap("a\nb c", 10, 10), vec!["a", "b c"]);
        assert_eq!(wrap("a\n\nb", 10, 10), vec!["a", "", "b"]);
    }

    #[test]
    fn tail_fitting_keeps_whole_characters() {
        let s: Vec<char> = "ab日本".chars().collect();
        assert_eq!(tail_fitting(&s, 4), 2);
        assert_eq!(tail_fitting(&s, 3), 3);
        assert_eq!(tail_fitting(&s, 100), 0);
    }
}
