package notices

import (
	"embed"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"unicode"
)

// ErrUnrecognised is returned by Identify when a text matches none of the
// license templates, and by FullText for a license without a template.
var ErrUnrecognised = errors.New("not a license text this package recognises")

// The templates are license texts named by their SPDX identifier
// (licenses/MIT.txt), with two kinds of marker:
//
//	<<any N>>    up to N words of any kind: copyright lines, a name
//	<<optional>> the text may end here; if it goes on, it goes on as written
//
// Every template starts with <<any 60>>: a title and a few copyright lines
// may come before the license itself, but not a page of other terms.
//
//go:embed licenses/*.txt
var templateFiles embed.FS

// template is one license's text, parsed.
type template struct {
	id     string  // SPDX identifier, from the file name
	tokens []token // what the words of a text must be, in order
}

// token is one step of a template: a literal word, a run of any words, or
// a place where the text may end.
type token struct {
	word     string // the word, lower case, if this is a literal
	any      int    // if > 0, up to this many words of any kind
	optional bool   // the text may end here
}

// Identify returns the SPDX identifier ("MIT", "BSD-3-Clause", ...) of the
// license whose full text is text. Case, punctuation, line breaks and
// light markup (Markdown quotes, list bullets, numbering) do not count;
// every word does, so a license with a clause added or taken away is not
// recognised. It returns an error wrapping ErrUnrecognised when no
// template matches.
func Identify(text []byte) (string, error) {
	templates, err := loadTemplates()
	if err != nil {
		return "", err
	}
	words := normalise(string(text))
	var found []string
	for _, t := range templates {
		if match(words, t.tokens) {
			found = append(found, t.id)
		}
	}
	switch len(found) {
	case 0:
		return "", ErrUnrecognised
	case 1:
		return found[0], nil
	default: // the templates are written so that this cannot happen
		return "", fmt.Errorf("the text matches several licenses: %s", strings.Join(found, ", "))
	}
}

// FullText returns the text of the license called id (an SPDX identifier),
// up to its first optional part: the terms themselves, for a notice that
// must carry a license that a module names without giving its text.
func FullText(id string) (string, error) {
	b, err := templateFiles.ReadFile(path.Join("licenses", id+".txt"))
	if err != nil {
		return "", fmt.Errorf("%s: %w", id, ErrUnrecognised)
	}
	_, text, _ := strings.Cut(string(b), "\n") // the <<any 60>> line
	text, _, _ = strings.Cut(text, "<<optional>>")
	if strings.Contains(text, "<<") {
		return "", fmt.Errorf("the template of %s has open places before its first optional part", id)
	}
	return strings.TrimRight(strings.Trim(text, "\n"), " \n") + "\n", nil
}

// loadTemplates parses every template.
func loadTemplates() ([]template, error) {
	entries, err := templateFiles.ReadDir("licenses")
	if err != nil {
		return nil, err
	}
	templates := make([]template, 0, len(entries))
	for _, e := range entries {
		b, err := templateFiles.ReadFile(path.Join("licenses", e.Name()))
		if err != nil {
			return nil, err
		}
		tokens, err := parseTemplate(string(b))
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", e.Name(), err)
		}
		templates = append(templates, template{id: strings.TrimSuffix(e.Name(), ".txt"), tokens: tokens})
	}
	return templates, nil
}

// parseTemplate turns a template's text into tokens.
func parseTemplate(s string) ([]token, error) {
	var tokens []token
	for s != "" {
		text, rest, found := strings.Cut(s, "<<")
		for _, w := range normalise(text) {
			tokens = append(tokens, token{word: w})
		}
		if !found {
			break
		}
		marker, rest, ok := strings.Cut(rest, ">>")
		if !ok {
			return nil, fmt.Errorf("unclosed marker <<%.20s", rest)
		}
		switch f := strings.Fields(marker); {
		case len(f) == 1 && f[0] == "optional":
			tokens = append(tokens, token{optional: true})
		case len(f) == 2 && f[0] == "any":
			n, err := strconv.Atoi(f[1])
			if err != nil || n < 1 {
				return nil, fmt.Errorf("bad marker <<%s>>", marker)
			}
			tokens = append(tokens, token{any: n})
		default:
			return nil, fmt.Errorf("unknown marker <<%s>>", marker)
		}
		s = rest
	}
	return tokens, nil
}

// normalise returns the words of s in lower case: runs of letters and
// digits, everything else being a separator. "https" counts as "http",
// as license URLs have moved from one to the other.
func normalise(s string) []string {
	words := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	for i, w := range words {
		if w == "https" {
			words[i] = "http"
		}
	}
	return words
}

// match reports whether words, all of them, follow tokens. A run of any
// words takes as few as it can, then more if the rest does not match.
func match(words []string, tokens []token) bool {
	for ; len(tokens) > 0; tokens = tokens[1:] {
		t := tokens[0]
		switch {
		case t.optional:
			if len(words) == 0 {
				return true
			}
		case t.any > 0:
			for n := 0; n <= t.any && n <= len(words); n++ {
				if match(words[n:], tokens[1:]) {
					return true
				}
			}
			return false
		default:
			if len(words) == 0 || words[0] != t.word {
				return false
			}
			words = words[1:]
		}
	}
	return len(words) == 0
}
