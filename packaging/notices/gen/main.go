// Command gen writes THIRD_PARTY_NOTICES: the license of every Go module
// linked into punchdrop as built for Linux, and of the Go standard
// library, each followed by the license and notice files found at the
// module's root. It reads the modules from the module cache ("go list").
//
// Each license file must be one that package notices recognises, or one a
// person has read and recorded in reviews() with its SHA-256; anything
// else stops gen with an error. Run it with "make notices" (or
// "go generate ./packaging/notices"); the output is committed.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/punchdrop/punchdrop/packaging/notices"
)

// rule separates the sections of the notices.
const rule = "================================================================================\n"

// header opens the notices.
const header = `Third-party software in punchdrop
=================================

punchdrop itself is under the MIT license (the file LICENSE; installed as
/usr/share/doc/punchdrop/copyright or /usr/share/licenses/punchdrop/LICENSE).
The punchdrop program, as built for Linux, also contains the Go standard
library and the Go modules listed below. Each is given with its license (an
SPDX expression) and, after the list, the license and notice files from its
source, unchanged.

This file is written by packaging/notices/gen ("make notices"); do not edit it.

`

func main() {
	out := flag.String("out", "THIRD_PARTY_NOTICES", "write the notices to `FILE`")
	flag.Parse()
	b, err := render(os.Environ())
	if err == nil {
		err = os.WriteFile(*out, b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// render returns the notices; env is the environment for the go command.
func render(env []string) ([]byte, error) {
	root, err := goRoot(env)
	if err != nil {
		return nil, err
	}
	std, err := readEntry("Go standard library", "", root)
	if err != nil {
		return nil, err
	}
	mods, err := linkedModules(env)
	if err != nil {
		return nil, err
	}
	entries := []entry{std}
	for _, m := range mods {
		e, err := readEntry(m.Path, m.Version, m.Dir)
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}

	var b bytes.Buffer
	b.WriteString(header)
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", e.name, e.version, e.license)
	}
	if err := tw.Flush(); err != nil {
		return nil, err
	}
	for _, e := range entries {
		fmt.Fprintf(&b, "\n%s%s\nLicense: %s\n", rule, strings.TrimSpace(e.name+" "+e.version), e.license)
		for _, f := range e.files {
			fmt.Fprintf(&b, "\n----- %s -----\n\n%s", f.name, f.text)
		}
	}
	for _, id := range unsupplied(entries) {
		text, err := notices.FullText(id)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "\n%sThe %s license, named above without its text\n\n%s", rule, id, text)
	}
	return b.Bytes(), nil
}

// unsupplied returns, sorted, the licenses that an entry names without
// their text and that no entry's files carry in full: the notices give
// their text at the end.
func unsupplied(entries []entry) []string {
	missing := make(map[string]bool)
	for _, e := range entries {
		for _, id := range e.refersTo {
			missing[id] = true
		}
	}
	for _, e := range entries {
		for _, id := range e.carries {
			delete(missing, id)
		}
	}
	return slices.Sorted(maps.Keys(missing))
}
