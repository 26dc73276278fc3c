//! Positions between the tools' convention — 1-based line, 1-based column counted in characters
//! (Unicode scalar values), as editors and people show them — and LSP's: 0-based line and a
//! column in the code units of the encoding negotiated at `initialize`
//! (`general.positionEncodings`): UTF-8 bytes, UTF-16 units (the protocol's default) or UTF-32
//! (characters). A column past the end of its line is clamped to the line's end.

use lsp_types::PositionEncodingKind;

/// The column unit of one server's positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16,
    Utf32,
}

impl Encoding {
    /// What the server chose (`capabilities.positionEncoding`); absent means UTF-16.
    pub fn from_server(kind: Option<&PositionEncodingKind>) -> Encoding {
        match kind.map(|k| k.as_str()) {
            Some("utf-8") => Encoding::Utf8,
            Some("utf-32") => Encoding::Utf32,
            _ => Encoding::Utf16,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Utf16 => "utf-16",
            Encoding::Utf32 => "utf-32",
        }
    }

    fn width(self, c: char) -> usize {
        match self {
            Encoding::Utf8 => c.len_utf8(),
            Encoding::Utf16 => c.len_utf16(),
            Encoding::Utf32 => 1,
        }
    }
}

/// The LSP column of the 0-based character column `chars` in `line` (clamped to its end).
pub fn to_units(line: &str, chars: usize, enc: Encoding) -> u32 {
    line.chars()
        .take(chars)
        .map(|c| enc.width(c))
        .sum::<usize>() as u32
}

/// The 0-based character column of the LSP column `units` in `line` (clamped to its end; a unit
/// inside a character counts as that character).
pub fn to_chars(line: &str, units: u32, enc: Encoding) -> usize {
    let (mut seen, mut n) = (0usize, 0usize);
    for c in line.chars() {
        if seen >= units as usize {
            break;
        }
        seen += enc.width(c);
        n += 1;
    }
    n
}

/// Line `row` (0-based) of `text`, without its line ending ("" past the end).
pub fn line_of(text: &str, row: u32) -> &str {
    let l = text.split('\n').nth(row as usize).unwrap_or("");
    l.strip_suffix('\r').unwrap_or(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_convert_both_ways_in_every_encoding() {
        // "é" is 2 bytes / 1 UTF-16 unit, "𝔸" 4 bytes / 2 units, both one character
        let line = "let é𝔸x = 1;";
        let x = line.chars().position(|c| c == 'x').unwrap(); // character column 6
        for (enc, units) in [
            (Encoding::Utf8, 10),
            (Encoding::Utf16, 7),
            (Encoding::Utf32, 6),
        ] {
            assert_eq!(to_units(line, x, enc), units, "{enc:?}");
            assert_eq!(to_chars(line, units, enc), x, "{enc:?}");
        }
        // clamped past the end
        assert_eq!(to_units("ab", 9, Encoding::Utf16), 2);
        assert_eq!(to_chars("ab", 9, Encoding::Utf8), 2);
        assert_eq!(line_of("a\r\nb\n", 0), "a");
        assert_eq!(line_of("a\r\nb\n", 5), "");
        assert_eq!(Encoding::from_server(None), Encoding::Utf16);
        assert_eq!(
            Encoding::from_server(Some(&PositionEncodingKind::UTF8)),
            Encoding::Utf8
        );
    }
}
