package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// Completion scripts written by "punchdrop docs --completions DIR", named
// the way each shell looks them up (bash-completion and fish by command
// name, zsh by "_" + command name on its fpath).
const (
	bashCompletionFile = "punchdrop.bash"
	zshCompletionFile  = "_punchdrop"
	fishCompletionFile = "punchdrop.fish"
)

// manCopyright is the COPYRIGHT section of every man page (roff). It
// names the folders the packages install LICENSE and THIRD_PARTY_NOTICES
// in (packaging/nfpm.yaml); \% keeps groff from hyphenating a path.
const manCopyright = `.SH COPYRIGHT
Copyright \(co 2026 The punchdrop authors.
punchdrop is released under the MIT license; the licenses of the Go
modules built into it are listed in \fITHIRD_PARTY_NOTICES\fP.
The packages install both in one of these folders:
.TP
\fI\%/usr/share/doc/punchdrop/\fP
Debian, Ubuntu (the license as \fIcopyright\fP)
.TP
\fI\%/usr/share/licenses/punchdrop/\fP
RPM-based systems (the license as \fILICENSE\fP)

`

// newDocsCmd is the hidden command that packaging uses to write man pages
// and shell completions from the command tree itself, so they never drift
// from the real flags and help texts.
func newDocsCmd() *cobra.Command {
	var manDir, complDir string
	cmd := &cobra.Command{
		Use:    "docs --man DIR --completions DIR",
		Short:  "Write man pages and shell completion scripts (for packaging)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if manDir == "" && complDir == "" {
				return errors.New("docs needs --man DIR, --completions DIR or both")
			}
			root := cmd.Root()
			if manDir != "" {
				if err := writeManPages(root, manDir); err != nil {
					return err
				}
			}
			if complDir != "" {
				if err := writeCompletions(root, complDir); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&manDir, "man", "", "write one man page per command (section 1) into `DIR`")
	cmd.Flags().StringVar(&complDir, "completions", "", "write bash, zsh and fish completion scripts into `DIR`")
	return cmd
}

// writeManPages writes punchdrop.1, punchdrop-agent.1, ... into dir. The
// date in each page comes from $SOURCE_DATE_EPOCH when set (reproducible
// builds), else from the clock.
func writeManPages(root *cobra.Command, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	// Cobra adds its "completion" command only when the root executes;
	// add it here too so that its page exists however we were called.
	root.InitDefaultCompletionCmd()
	// This process only writes docs, so the tree can be adjusted for them.
	forEachCommand(root, func(c *cobra.Command) {
		c.DisableAutoGenTag = true // no "Auto generated" HISTORY section
		c.Long = fenceIndented(c.Long)
	})
	header := doc.GenManHeader{
		Section: "1",
		Source:  "punchdrop " + root.Version,
		Manual:  "punchdrop manual",
	}
	if err := writeManTree(root, dir, header); err != nil {
		return fmt.Errorf("man pages in %s: %w", dir, err)
	}
	return nil
}

// writeManTree writes the page of c and of every command below it into
// dir, as cobra/doc's GenManTree does, each with manCopyright added. A
// page is named after the command path with "-" between the words
// (punchdrop-peers-remove.1), as the SEE ALSO sections name them.
func writeManTree(c *cobra.Command, dir string, header doc.GenManHeader) error {
	for _, sub := range c.Commands() {
		if !sub.IsAvailableCommand() || sub.IsAdditionalHelpTopicCommand() {
			continue
		}
		if err := writeManTree(sub, dir, header); err != nil {
			return err
		}
	}
	var page bytes.Buffer
	if err := doc.GenMan(c, &header, &page); err != nil { // fills in this copy of header
		return err
	}
	path := filepath.Join(dir, strings.ReplaceAll(c.CommandPath(), " ", "-")+"."+header.Section)
	return os.WriteFile(path, withCopyright(page.Bytes()), 0o644)
}

// withCopyright returns page with manCopyright before its SEE ALSO
// section, where man-pages(7) puts COPYRIGHT, or at its end.
func withCopyright(page []byte) []byte {
	seeAlso := []byte("\n.SH SEE ALSO\n")
	if i := bytes.Index(page, seeAlso); i >= 0 {
		return slices.Concat(page[:i+1], []byte(manCopyright), page[i+1:])
	}
	return slices.Concat(page, []byte("\n"), []byte(manCopyright))
}

// writeCompletions writes the bash, zsh and fish completion scripts into dir.
func writeCompletions(root *cobra.Command, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("completions: %w", err)
	}
	gens := []struct {
		file string
		gen  func(f *os.File) error
	}{
		{bashCompletionFile, func(f *os.File) error { return root.GenBashCompletionV2(f, true) }},
		{zshCompletionFile, func(f *os.File) error { return root.GenZshCompletion(f) }},
		{fishCompletionFile, func(f *os.File) error { return root.GenFishCompletion(f, true) }},
	}
	for _, g := range gens {
		path := filepath.Join(dir, g.file)
		if err := writeFileWith(path, g.gen); err != nil {
			return fmt.Errorf("completion %s: %w", path, err)
		}
	}
	return nil
}

// writeFileWith creates path and fills it with gen, reporting the first
// error of generating, writing or closing.
func writeFileWith(path string, gen func(f *os.File) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := gen(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// forEachCommand calls fn on c and every command below it.
func forEachCommand(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, sub := range c.Commands() {
		forEachCommand(sub, fn)
	}
}

// fenceIndented turns each run of lines indented by two spaces (how our
// help texts show commands) into a Markdown code block, which the man page
// generator keeps as preformatted lines instead of filling them into one
// paragraph.
func fenceIndented(long string) string {
	lines := strings.Split(long, "\n")
	var b strings.Builder
	inBlock := false
	for i, line := range lines {
		indented := strings.HasPrefix(line, "  ")
		if indented != inBlock {
			b.WriteString("```\n")
			inBlock = indented
		}
		b.WriteString(line)
		if i < len(lines)-1 || inBlock {
			b.WriteString("\n")
		}
	}
	if inBlock {
		b.WriteString("```")
	}
	return b.String()
}
