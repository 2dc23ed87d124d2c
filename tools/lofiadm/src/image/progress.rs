//! Showing how far a long compression has got: a percentage on one line
//! of a terminal, rewritten in place (`\r`) and cleared at the end.

use std::io::{self, IsTerminal, Write};

/// Files smaller than this are done too quickly to show progress.
pub const MIN_SIZE: u64 = 64 << 20;

/// Progress through `total` units, written to `out` if there is one.
pub struct Progress<W: Write> {
    out: Option<W>,
    label: String,
    total: u64,
    shown: Option<u64>,
    width: usize,
}

impl Progress<io::Stderr> {
    /// Progress on stderr for a file of `size` bytes: only when stderr is
    /// a terminal and the file is at least [`MIN_SIZE`] bytes.
    pub fn stderr(label: &str, size: u64) -> Self {
        let err = io::stderr();
        let on = size >= MIN_SIZE && err.is_terminal();
        Progress::new(on.then_some(err), label, size)
    }
}

impl<W: Write> Progress<W> {
    /// Progress through `total` units on `out` (`None`: shown nowhere).
    pub fn new(out: Option<W>, label: &str, total: u64) -> Self {
        Progress {
            out,
            label: label.to_string(),
            total,
            shown: None,
            width: 0,
        }
    }

    /// `done` of the units are done; the line changes when the whole
    /// percentage does. Failures to write are ignored: progress is no
    /// part of the result.
    pub fn update(&mut self, done: u64) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        let percent = if self.total == 0 {
            100
        } else {
            (u128::from(done.min(self.total)) * 100 / u128::from(self.total)) as u64
        };
        if self.shown == Some(percent) {
            return;
        }
        self.shown = Some(percent);
        let line = format!("{}: {percent}%", self.label);
        self.width = self.width.max(line.len());
        let _ = write!(out, "\r{line}");
        let _ = out.flush();
    }

    /// Clear the line, if anything was shown.
    pub fn finish(&mut self) {
        let out = self.out.as_mut().filter(|_| self.shown.is_some());
        if let Some(out) = out {
            let _ = write!(out, "\r{:width$}\r", "", width = self.width);
            let _ = out.flush();
            self.shown = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_then_cleared() {
        let mut buf = Vec::new();
        let mut p = Progress::new(Some(&mut buf), "compressing a.img", 200);
        p.update(0);
        p.update(1);
        p.update(2);
        p.update(200);
        p.finish();
        drop(p);
        let text = String::from_utf8(buf).unwrap();
        let width = "compressing a.img: 100%".len();
        assert_eq!(
            text,
            format!(
                "\rcompressing a.img: 0%\rcompressing a.img: 1%\rcompressing a.img: 100%\r{}\r",
                " ".repeat(width)
            )
        );
    }

    #[test]
    fn nothing_without_an_output() {
        let mut p: Progress<Vec<u8>> = Progress::new(None, "x", 10);
        p.update(5);
        p.finish();
        let mut buf = Vec::new();
        let mut p = Progress::new(Some(&mut buf), "x", 10);
        p.finish();
        drop(p);
        assert!(buf.is_empty());
    }
}
