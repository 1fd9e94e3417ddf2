package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	err := doc.GenManTreeFromOpts(root, doc.GenManTreeOptions{
		Path:             dir,
		CommandSeparator: "-", // punchdrop-agent.1, as the SEE ALSO sections name them
		Header: &doc.GenManHeader{
			Section: "1",
			Source:  "punchdrop " + root.Version,
			Manual:  "punchdrop manual",
		},
	})
	if err != nil {
		return fmt.Errorf("man pages in %s: %w", dir, err)
	}
	return nil
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
