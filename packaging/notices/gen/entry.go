package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/punchdrop/punchdrop/packaging/notices"
)

// entry is one section of the notices: a module (or the standard library)
// and its license.
type entry struct {
	name, version string
	license       string   // SPDX expression
	files         []file   // its license and notice files, by name
	carries       []string // licenses whose full text is among files
	refersTo      []string // licenses its files name without their text
}

// file is a license or notice file, its text tidied (LF line ends, no
// trailing blanks) but otherwise as the module has it.
type file struct {
	name, text string
}

// review is a license file that notices.Identify cannot name and that a
// person has read: several licenses in one file, say. It holds while the
// file is unchanged; a different SHA-256 stops gen until someone reads the
// new text and updates the review.
type review struct {
	module, file string
	sha256       string   // of the file as read
	license      string   // SPDX expression for the module
	refersTo     []string // licenses the file names without giving their text
}

// reviews lists the license files read by a person.
func reviews() []review {
	return []review{{
		// MIT for the files ported from libyaml's C, Apache-2.0 for the
		// rest, named by reference (its NOTICE is copied too).
		module: "go.yaml.in/yaml/v3", file: "LICENSE",
		sha256:   "d18f6323b71b0b768bb5e9616e36da390fbd39369a81807cca352de4e4e6aa0b",
		license:  "MIT AND Apache-2.0",
		refersTo: []string{"Apache-2.0"},
	}, {
		// The Apache-2.0 header naming the license by reference; its full
		// text is in the notices already.
		module: "github.com/jackpal/go-nat-pmp", file: "LICENSE",
		sha256:   "1596ea320a3d9e5180576b2c6dd28aa34b9edcef27693fcd0474e24bda3fdcab",
		license:  "Apache-2.0",
		refersTo: []string{"Apache-2.0"},
	}}
}

// readEntry reads the license and notice files at the root of dir, which
// holds module name at version. Exactly one license file must be there,
// and its license must be recognised or reviewed.
func readEntry(name, version, dir string) (entry, error) {
	e := entry{name: name, version: version}
	des, err := os.ReadDir(dir)
	if err != nil {
		return e, fmt.Errorf("%s: %w", name, err)
	}
	var licenseFiles []string
	for _, de := range des {
		isLicense := notices.IsLicenseFile(de.Name())
		if !de.Type().IsRegular() || !isLicense && !notices.IsNoticeFile(de.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			return e, fmt.Errorf("%s: %w", name, err)
		}
		e.files = append(e.files, file{de.Name(), tidy(b)})
		if isLicense {
			licenseFiles = append(licenseFiles, de.Name())
			if err := e.identify(de.Name(), b); err != nil {
				return e, err
			}
		}
	}
	switch {
	case len(licenseFiles) == 0:
		return e, fmt.Errorf("%s: no license file (LICENSE, COPYING, ...) in %s", name, dir)
	case len(licenseFiles) > 1:
		return e, fmt.Errorf("%s: several license files (%s); gen does not know how they combine",
			name, strings.Join(licenseFiles, ", "))
	}
	return e, nil
}

// identify names the license in the file called fileName, b being its
// contents, and records it in e.
func (e *entry) identify(fileName string, b []byte) error {
	sum := sha256.Sum256(b)
	for _, r := range reviews() {
		if r.module != e.name || r.file != fileName {
			continue
		}
		if got := hex.EncodeToString(sum[:]); got != r.sha256 {
			return fmt.Errorf("%s: %s has changed since it was reviewed (SHA-256 %s, reviewed %s): read it and update reviews() in packaging/notices/gen",
				e.name, fileName, got, r.sha256)
		}
		e.license, e.refersTo = r.license, r.refersTo
		return nil
	}
	id, err := notices.Identify(b)
	if err != nil {
		return fmt.Errorf("%s: %s: %w; read it, then add a template to packaging/notices/licenses or a review to packaging/notices/gen",
			e.name, fileName, err)
	}
	e.license, e.carries = id, []string{id}
	return nil
}

// tidy returns b with LF line ends, without trailing blanks on its lines
// or blank lines around it, and with a final newline.
func tidy(b []byte) string {
	lines := strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t\r")
	}
	return strings.Trim(strings.Join(lines, "\n"), "\n") + "\n"
}
