package transfer

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestSafeRelPath(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	euros := strings.Repeat("€", 100) // 300 bytes of 3-byte runes
	nested := func(n int) string { return strings.Repeat("d/", n-1) + "f" }
	tests := []struct {
		in, want string
		refused  string // part of the error's text; empty if accepted
	}{
		// Plain names pass unchanged.
		{in: "a.txt", want: "a.txt"},
		{in: "dir/a.txt", want: "dir/a.txt"},
		{in: "photos/2024/a.jpg", want: "photos/2024/a.jpg"},
		{in: "ünïcødé/фото.jpg", want: "ünïcødé/фото.jpg"},
		{in: ".bashrc", want: ".bashrc"},
		{in: "x/.punchdrop", want: "x/.punchdrop"}, // staging is only at the top
		{in: "console.txt", want: "console.txt"},
		{in: "COM10", want: "COM10"},
		{in: nested(32), want: nested(32)},

		// Separators: empty and "." elements go, a backslash separates.
		{in: "a/./b//c", want: "a/b/c"},
		{in: "./a", want: "a"},
		{in: "a/", want: "a"},
		{in: `win\dir\a.txt`, want: "win/dir/a.txt"},

		// Characters some systems cannot store become '_'.
		{in: "a\nb", want: "a_b"},
		{in: "tab\there", want: "tab_here"},
		{in: "del\x7f", want: "del_"},
		{in: "c1\u0085x", want: "c1_x"},

		// Invisible characters that hide a name's type or look become '_'.
		{in: "invoice\u202Ehs.pdf", want: "invoice_hs.pdf"},            // right-to-left override
		{in: "a\u202Db\u202Ac\u202Bd\u202Ce", want: "a_b_c_d_e"},       // other embeddings
		{in: "x\u2066y\u2067z\u2068w\u2069.txt", want: "x_y_z_w_.txt"}, // isolates
		{in: "mark\u200E\u200F\u061C.txt", want: "mark___.txt"},        // LRM, RLM, ALM
		{in: "zero\u200Bwidth\u200C\u200D\u2060.txt", want: "zero_width___.txt"},
		{in: "\uFEFFbom.txt", want: "_bom.txt"},
		{in: "soft\u00ADhyphen", want: "soft_hyphen"},
		{in: "line\u2028para\u2029.txt", want: "line_para_.txt"},
		{in: "filler\u3164\u115F.txt", want: "filler__.txt"},
		{in: "tag\U000E0041.txt", want: "tag_.txt"},
		{in: "c1\u009B\u0080.txt", want: "c1__.txt"},
		{in: "dir\u202E/a.txt", want: "dir_/a.txt"},
		{in: "ok\u00A0space é.txt", want: "ok\u00A0space é.txt"}, // visible: kept
		{in: `what?<>:"|*.txt`, want: "what_______.txt"},
		{in: "ab:stream", want: "ab_stream"},
		{in: "x/C:", want: "x/C_"},

		// Windows drops trailing dots and spaces.
		{in: "trailing. ", want: "trailing"},
		{in: "dots...", want: "dots"},
		{in: "...", want: "_"},
		{in: ". .", want: "_"},
		{in: "a/ /b", want: "a/_/b"},

		// Windows device names, at any depth.
		{in: "CON", want: "_CON"},
		{in: "con.txt", want: "_con.txt"},
		{in: "Com1.tar.gz", want: "_Com1.tar.gz"},
		{in: "LPT9", want: "_LPT9"},
		{in: "aux/x", want: "_aux/x"},
		{in: "x/nul", want: "x/_nul"},
		{in: "prn .txt", want: "_prn .txt"},
		{in: "COM¹", want: "_COM¹"},
		{in: "conout$", want: "_conout$"},

		// The staging folder cannot be reached.
		{in: ".punchdrop/x", want: "_.punchdrop/x"},
		{in: ".PunchDrop", want: "_.PunchDrop"},
		{in: ".punchdrop-old", want: "_.punchdrop-old"},
		{in: ".punchdrop. ", want: "_.punchdrop"},

		// Long elements are cut to 255 bytes, keeping a short extension.
		{in: a(300), want: a(255)},
		{in: a(300) + ".txt", want: a(251) + ".txt"},
		{in: a(300) + "." + a(300), want: a(255)}, // too long an extension
		{in: euros, want: strings.Repeat("€", 85)},
		{in: euros + ".txt", want: strings.Repeat("€", 83) + ".txt"},
		{in: "x" + euros, want: "x" + strings.Repeat("€", 84)},
		{in: "con." + a(300), want: "_con." + a(250)},
		{in: "con" + strings.Repeat(" ", 252) + "." + a(9), want: "_con." + a(9)},
		{in: "con" + strings.Repeat(" ", 260) + "x", want: "_con"},
		{in: strings.Repeat(" ", 300) + "x", want: "_"},

		// Refused.
		{in: "", refused: "empty"},
		{in: ".", refused: "no name"},
		{in: "./", refused: "no name"},
		{in: "..", refused: "contains .."},
		{in: "../a", refused: "contains .."},
		{in: "a/..", refused: "contains .."},
		{in: "a/../../b", refused: "contains .."},
		{in: `a\..\b`, refused: "contains .."},
		{in: "/etc/passwd", refused: "absolute path"},
		{in: `\\server\share`, refused: "absolute path"},
		{in: `\x`, refused: "absolute path"},
		{in: `C:\x`, refused: "drive letter"},
		{in: "c:x", refused: "drive letter"},
		{in: "a\x00b", refused: "NUL byte"},
		{in: "a\xffb", refused: "invalid UTF-8"},
		{in: "a\xe2\x82", refused: "invalid UTF-8"},
		{in: nested(33), refused: "more than 32"},
		{in: nested(40), refused: "more than 32"},
		{in: strings.Repeat("a/", 2100), refused: "longer than 4096"},
		// 4095 bytes that grow by a '_' per element when cleaned.
		{in: strings.Repeat("con."+a(123)+"/", 31) + "con." + a(123), refused: "longer than 4096"},
	}
	for _, tt := range tests {
		got, err := SafeRelPath(tt.in)
		if tt.refused != "" {
			if !errors.Is(err, ErrBadName) || !strings.Contains(err.Error(), tt.refused) {
				t.Errorf("SafeRelPath(%.40q) = %.40q, %v; want an error about %q", tt.in, got, err, tt.refused)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("SafeRelPath(%.40q) = %.40q, %v; want %.40q", tt.in, got, err, tt.want)
		}
	}
}

func FuzzSafeRelPath(f *testing.F) {
	for _, s := range []string{
		"a.txt", "dir/a.txt", "../x", `x\..\y`, "/abs", `\\unc\share`, "C:x",
		"a\x00b", "a\x01b\x7f\u0085", "invoice\u202Ehs.pdf", "\uFEFF\u200B\u2066x", `<>:"|?*`, "a. /b", " . ", "CON.txt",
		"com¹", ".punchdrop/x", ".PUNCHDROP", strings.Repeat("é", 200),
		strings.Repeat("a", 260) + ".txt", "con" + strings.Repeat(" ", 260) + "x",
		strings.Repeat("a/", 40), "\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := SafeRelPath(in)
		if err != nil {
			if !errors.Is(err, ErrBadName) {
				t.Fatalf("SafeRelPath(%q) = %v, not an ErrBadName", in, err)
			}
			return
		}
		if out == "" || !utf8.ValidString(out) || out[0] == '/' || !filepath.IsLocal(out) {
			t.Fatalf("SafeRelPath(%q) = %q is not a valid local path", in, out)
		}
		if i := strings.IndexFunc(out, func(r rune) bool { return r == '\\' || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }); i >= 0 {
			t.Fatalf("SafeRelPath(%q) = %q has %q", in, out, out[i:])
		}
		for _, e := range strings.Split(out, "/") {
			if e == "" || e == ".." || len(e) > maxElementLen || strings.HasSuffix(e, ".") || strings.HasSuffix(e, " ") {
				t.Fatalf("SafeRelPath(%q) = %q has element %q", in, out, e)
			}
		}
		if hasPrefixFold(out, StagingDir) {
			t.Fatalf("SafeRelPath(%q) = %q is in the staging folder", in, out)
		}
		if again, err := SafeRelPath(out); err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, out, again, err)
		}
	})
}
