// Package notices names the open-source license of a text, for the list of
// third-party licenses that ships with punchdrop (THIRD_PARTY_NOTICES).
//
// A license is recognised only when its whole text matches one of the
// templates under licenses/ (MIT, BSD-2-Clause, BSD-3-Clause, Apache-2.0,
// MPL-2.0, ISC, Unlicense), word for word, apart from the few places a
// template leaves open (the copyright lines, the holder's name). Anything
// else is an error: the caller must look at the text, not guess.
//
// THIRD_PARTY_NOTICES is written by ./gen from the Go modules linked into
// cmd/punchdrop and committed; run "make notices" (or
// "go generate ./packaging/notices") after changing a dependency.
package notices

import "strings"

//go:generate go run ./gen -out THIRD_PARTY_NOTICES

// IsLicenseFile reports whether a file at the root of a module holds its
// license, judging by the name: LICENSE, LICENCE, COPYING or UNLICENSE,
// any case, maybe with a suffix such as "-MIT" and an extension of .md,
// .txt or .rst.
func IsLicenseFile(name string) bool {
	base := trimTextExt(strings.ToLower(name))
	switch base {
	case "license", "licence", "copying", "unlicense":
		return true
	}
	return strings.HasPrefix(base, "license-") || strings.HasPrefix(base, "licence-")
}

// IsNoticeFile reports whether a file at the root of a module holds notices
// that must travel with its license: an Apache NOTICE file, or the patent
// grant (PATENTS) of Go's own modules.
func IsNoticeFile(name string) bool {
	switch trimTextExt(strings.ToLower(name)) {
	case "notice", "patents":
		return true
	}
	return false
}

// trimTextExt removes an extension that marks a plain or lightly marked-up
// text file.
func trimTextExt(name string) string {
	for _, ext := range []string{".md", ".txt", ".rst"} {
		if base, ok := strings.CutSuffix(name, ext); ok {
			return base
		}
	}
	return name
}
