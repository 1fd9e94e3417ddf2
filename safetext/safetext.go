// Package safetext makes text that came from a peer safe to store and to
// show. A peer chooses its messages, its refusal reasons and the names of
// the files it sends; such text must not steer a terminal (escape
// sequences that move the cursor, retitle the window or forge a line), hide
// what it says (bidi overrides, zero-width characters), or pass for
// something else. Text is cleaned once on receipt and escaped again on
// output, so neither a missed receipt nor an old record can do harm.
package safetext

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Replacement stands in for each character Clean removes.
const Replacement = '\uFFFD'

// Clean returns s with every character that is not visible text replaced
// by U+FFFD: C0 and C1 control characters (but newline and tab, which a
// message may hold), DEL, Unicode format characters (bidi embeddings,
// overrides and isolates, zero-width spaces and joiners, the byte-order
// mark), line and paragraph separators, and invalid UTF-8. Spaces of
// every width stay, and so does a zero-width joiner inside an emoji
// sequence (👩‍💻). Use it on text from a peer before storing or passing it
// on.
func Clean(s string) string {
	if !needsWork(s, keepLines) {
		return s
	}
	runes := []rune(strings.ToValidUTF8(s, string(Replacement)))
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range runes {
		if keepLines(r) || joinsEmoji(runes, i) {
			b.WriteRune(r)
		} else {
			b.WriteRune(Replacement)
		}
	}
	return b.String()
}

// Line returns s as one line a terminal shows exactly as written: every
// character that is not visible text, newlines and tabs included, is
// written as a Go escape (\n, \x1b, \u202e), and invalid UTF-8 as \x..
// bytes. A zero-width joiner inside an emoji sequence stays. Use it for
// every piece of peer text printed to a terminal.
func Line(s string) string {
	if !needsWork(s, visible) {
		return s
	}
	runes := []rune(s) // each invalid byte becomes one utf8.RuneError
	var b strings.Builder
	for i, r := range runes {
		size := utf8.RuneLen(r)
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s, string(utf8.RuneError)):
			fmt.Fprintf(&b, `\x%02x`, s[0])
			size = 1
		case visible(r) || joinsEmoji(runes, i):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRune(r) // 'x' with x escaped
			b.WriteString(q[1 : len(q)-1])
		}
		s = s[size:]
	}
	return b.String()
}

// visible reports whether r shows as itself: a letter, mark, number,
// punctuation, symbol or space (Unicode's graphic characters).
func visible(r rune) bool { return unicode.IsGraphic(r) }

// keepLines is visible, plus the newline and tab a message may hold.
func keepLines(r rune) bool { return r == '\n' || r == '\t' || visible(r) }

// zeroWidthJoiner glues emoji into one picture (👩 + 💻 = 👩‍💻).
const zeroWidthJoiner = '\u200d'

// joinsEmoji reports whether runes[i] is a zero-width joiner between two
// emoji: a symbol, possibly followed by a skin tone or a variation
// selector, before it, and a symbol after it. Anywhere else it is an
// invisible character like any other.
func joinsEmoji(runes []rune, i int) bool {
	if runes[i] != zeroWidthJoiner || i == 0 || i+1 == len(runes) {
		return false
	}
	prev, next := runes[i-1], runes[i+1]
	return unicode.In(prev, unicode.So, unicode.Sk, unicode.Mn) && unicode.Is(unicode.So, next)
}

// needsWork reports whether s has invalid UTF-8 or a rune ok refuses.
func needsWork(s string, ok func(rune) bool) bool {
	if !utf8.ValidString(s) {
		return true
	}
	for _, r := range s {
		if !ok(r) {
			return true
		}
	}
	return false
}

// Clip returns s cut to at most max bytes, at a character boundary, with
// "…" added where it was cut: text from another machine (a router's
// fault string, a server's reason) can be any length.
func Clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
