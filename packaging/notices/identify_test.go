package notices

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// filled returns the template of id as a license file might read: the
// open places filled in, the optional parts kept.
func filled(t *testing.T, id string) string {
	t.Helper()
	b, err := templateFiles.ReadFile("licenses/" + id + ".txt")
	if err != nil {
		t.Fatal(err)
	}
	marker := regexp.MustCompile(`<<(any 1|any \d+|optional)>>`)
	return marker.ReplaceAllStringFunc(string(b), func(m string) string {
		switch m {
		case "<<optional>>":
			return ""
		case "<<any 1>>":
			return "1."
		}
		return "Copyright (c) 2026 Jane Doe"
	})
}

// allIDs lists every license with a template.
func allIDs() []string {
	return []string{"Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "ISC", "MIT", "MPL-2.0", "Unlicense"}
}

func TestEveryTemplateIdentifiesItself(t *testing.T) {
	templates, err := loadTemplates()
	if err != nil {
		t.Fatal(err)
	}
	if len(templates) != len(allIDs()) {
		t.Errorf("%d templates, want %d (%v)", len(templates), len(allIDs()), allIDs())
	}
	for _, id := range allIDs() {
		got, err := Identify([]byte(filled(t, id)))
		if err != nil || got != id {
			t.Errorf("Identify(%s template) = %q, %v", id, got, err)
		}
	}
}

func TestIdentifyVariants(t *testing.T) {
	mit := filled(t, "MIT")
	bsd3 := filled(t, "BSD-3-Clause")
	tests := []struct {
		name, text, want string
	}{
		{"MIT reflowed and quoted", "> " + strings.ReplaceAll(strings.ToUpper(mit), "\n", "\n> "), "MIT"},
		{"MIT with CRLF", strings.ReplaceAll(mit, "\n", "\r\n"), "MIT"},
		{"MIT without a copyright line", strings.Replace(mit, "Copyright (c) 2026 Jane Doe", "", 1), "MIT"},
		{"BSD-3 with bullets", strings.ReplaceAll(bsd3, "1. ", "  * "), "BSD-3-Clause"},
		{"Apache without its appendix", strings.Split(filled(t, "Apache-2.0"), "END OF TERMS")[0], "Apache-2.0"},
		{"Apache with https", strings.ReplaceAll(filled(t, "Apache-2.0"), "http://", "https://"), "Apache-2.0"},
		{"old ISC (and distribute)", strings.Replace(filled(t, "ISC"), "and 1. distribute", "and distribute", 1), "ISC"},
	}
	for _, tt := range tests {
		got, err := Identify([]byte(tt.text))
		if err != nil || got != tt.want {
			t.Errorf("%s: Identify = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

// TestIdentifyRefusesChangedTexts checks that a license with a word
// added, dropped or changed is not taken for the one it resembles.
func TestIdentifyRefusesChangedTexts(t *testing.T) {
	mit := filled(t, "MIT")
	bsd3 := filled(t, "BSD-3-Clause")
	tests := map[string]string{
		"empty":                  "",
		"a reference only":       "Licensed under the Apache License, Version 2.0; see http://www.apache.org/licenses/LICENSE-2.0",
		"MIT plus a restriction": mit + "\nThe Software shall be used for Good, not Evil.\n",
		"MIT minus the notice condition": strings.Replace(mit,
			"The above copyright notice and this permission notice shall be included in all\ncopies or substantial portions of the Software.", "", 1),
		"MIT with a word changed": strings.Replace(mit, "free of charge", "for a fee", 1),
		"BSD-4 (advertising clause)": strings.Replace(bsd3, "1. Neither the name",
			"1. All advertising materials mentioning features or use of this software must display the following acknowledgement: This product includes software developed by Jane Doe.\n\n1. Neither the name", 1),
		"a long preamble": strings.Repeat("Some other terms apply to parts of this software. ", 10) + mit,
		"GPL":             "GNU GENERAL PUBLIC LICENSE Version 3, 29 June 2007 Copyright (C) 2007 Free Software Foundation, Inc.",
	}
	for name, text := range tests {
		if got, err := Identify([]byte(text)); !errors.Is(err, ErrUnrecognised) {
			t.Errorf("%s: Identify = %q, %v; want ErrUnrecognised", name, got, err)
		}
	}
}

func TestFullText(t *testing.T) {
	text, err := FullText("Apache-2.0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "Apache License") || !strings.HasSuffix(text, "additional liability.\n") || strings.Contains(text, "<<") {
		t.Errorf("FullText(Apache-2.0) = %.80q ... %q", text, text[max(0, len(text)-40):])
	}
	if id, err := Identify([]byte(text)); id != "Apache-2.0" {
		t.Errorf("FullText(Apache-2.0) identifies as %q, %v", id, err)
	}
	for _, id := range allIDs() {
		if _, err := FullText(id); err != nil && !strings.Contains(err.Error(), "open places") {
			t.Errorf("FullText(%s): %v", id, err)
		}
	}
	if _, err := FullText("GPL-3.0"); !errors.Is(err, ErrUnrecognised) {
		t.Errorf("FullText(GPL-3.0): %v", err)
	}
}

func TestParseTemplateRejectsBadMarkers(t *testing.T) {
	for _, s := range []string{"a <<any>> b", "a <<any 0>> b", "a <<some 3>> b", "a <<any 3 b"} {
		if _, err := parseTemplate(s); err == nil {
			t.Errorf("parseTemplate(%q) accepted it", s)
		}
	}
}

func TestFileNames(t *testing.T) {
	for name, want := range map[string]bool{
		"LICENSE": true, "LICENSE.md": true, "license.txt": true, "LICENCE": true, "COPYING": true,
		"UNLICENSE": true, "LICENSE-MIT": true, "License.rst": true,
		"LICENSES": false, "license.go": false, "README.md": false, "NOTICE": false, "COPYRIGHT.go": false,
	} {
		if got := IsLicenseFile(name); got != want {
			t.Errorf("IsLicenseFile(%q) = %v", name, got)
		}
	}
	for name, want := range map[string]bool{"NOTICE": true, "NOTICE.txt": true, "PATENTS": true, "LICENSE": false, "notices.go": false} {
		if got := IsNoticeFile(name); got != want {
			t.Errorf("IsNoticeFile(%q) = %v", name, got)
		}
	}
}
