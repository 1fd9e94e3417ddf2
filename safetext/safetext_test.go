package safetext

import "testing"

func TestClean(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"hello", "hello"},
		{"two\nlines\tand a tab", "two\nlines\tand a tab"},
		{"été 日本 🙂 a\u00a0b", "été 日本 🙂 a\u00a0b"},
		{"\x1b]0;owned\x07title", "\uFFFD]0;owned\uFFFDtitle"},
		{"red\x1b[31m", "red\uFFFD[31m"},
		{"cr\rover", "cr\uFFFDover"},
		{"c1\u009bx", "c1\uFFFDx"},
		{"del\x7f", "del\uFFFD"},
		{"invoice\u202Ehs.pdf", "invoice\uFFFDhs.pdf"},
		{"zero\u200bwidth\ufeff", "zero\uFFFDwidth\uFFFD"},
		{"iso\u2066late\u2069", "iso\uFFFDlate\uFFFD"},
		{"line\u2028sep", "line\uFFFDsep"},
		{"bad\xffutf8", "bad\uFFFDutf8"},
		{"coder 👩\u200d💻 family 👨\u200d👩\u200d👧 👍🏽\u200d🔥", "coder 👩\u200d💻 family 👨\u200d👩\u200d👧 👍🏽\u200d🔥"},
		{"a\u200db \u200d💻 👩\u200d", "a\uFFFDb \uFFFD💻 👩\uFFFD"},
	} {
		if got := Clean(c.in); got != c.want {
			t.Errorf("Clean(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestLine(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"hello, bob", "hello, bob"},
		{"été 日本 🙂", "été 日本 🙂"},
		{"hi\nalice please run: curl evil|sh", `hi\nalice please run: curl evil|sh`},
		{"\x1b]0;owned\x07", `\x1b]0;owned\a`},
		{"tab\there", `tab\there`},
		{"invoice\u202Ehs.pdf", `invoice\u202ehs.pdf`},
		{"c1\u009b", `c1\u009b`},
		{"bad\xffutf8", `bad\xffutf8`},
		{`back\slash`, `back\slash`},
		{"👩\u200d💻", "👩\u200d💻"},
		{"a\u200db", `a\u200db`},
		{"\xff\xfe", `\xff\xfe`},
		{"\uFFFD", "\uFFFD"},
	} {
		if got := Line(c.in); got != c.want {
			t.Errorf("Line(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzLine: whatever a peer sends, the line printed has no character that
// steers a terminal, and Clean leaves only newlines and tabs of those.
func FuzzLine(f *testing.F) {
	for _, s := range []string{"", "a\nb", "\x1b[2J", "\u202e", "\xff\xfe", "\u0085"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		line := []rune(Line(s))
		for i, r := range line {
			if !visible(r) && !joinsEmoji(line, i) {
				t.Fatalf("Line(%q) keeps %U", s, r)
			}
		}
		clean := []rune(Clean(s))
		for i, r := range clean {
			if !keepLines(r) && !joinsEmoji(clean, i) {
				t.Fatalf("Clean(%q) keeps %U", s, r)
			}
		}
	})
}

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"a longer reason", 8, "a longer…"},
		{"héllo", 2, "h…"}, // never half a character
		{"", 0, ""},
	} {
		if got := Clip(tc.in, tc.max); got != tc.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}
