package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
)

// mainPackage is the program whose modules the notices cover.
const mainPackage = "github.com/punchdrop/punchdrop/cmd/punchdrop"

// platforms are the GOOS/GOARCH pairs the packages are built for; a module
// linked into the program on any of them is listed. (On Windows the
// program links a different set; the notices ship only in Linux packages.)
const platforms = "linux/amd64 linux/arm64"

// module is what "go list" says about a module.
type module struct {
	Path    string
	Version string
	Dir     string  // where its files are (in the module cache)
	Main    bool    // punchdrop itself
	Replace *module // what go.mod replaces it with, if anything
}

// linkedModules returns, sorted by path, every module outside the standard
// library that provides a package linked into mainPackage on one of the
// platforms. env is the environment for the go command.
func linkedModules(env []string) ([]module, error) {
	byPath := make(map[string]module)
	for _, p := range strings.Fields(platforms) {
		goos, goarch, _ := strings.Cut(p, "/")
		out, err := goCmd(append(env, "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0"),
			"list", "-deps", "-json=ImportPath,Standard,Module", mainPackage)
		if err != nil {
			return nil, err
		}
		dec := json.NewDecoder(bytes.NewReader(out))
		for {
			var pkg struct {
				ImportPath string
				Standard   bool
				Module     *module
			}
			if err := dec.Decode(&pkg); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, fmt.Errorf("go list: %w", err)
			}
			if pkg.Standard || pkg.Module == nil || pkg.Module.Main {
				continue
			}
			m := *pkg.Module
			if r := m.Replace; r != nil {
				m.Version = strings.TrimSpace(m.Version + " => " + r.Path + " " + r.Version)
				m.Dir = r.Dir
			}
			if m.Dir == "" {
				return nil, fmt.Errorf("module %s %s has no files here (go mod download %s)", m.Path, m.Version, m.Path)
			}
			byPath[m.Path] = m
		}
	}
	mods := make([]module, 0, len(byPath))
	for _, m := range byPath {
		mods = append(mods, m)
	}
	slices.SortFunc(mods, func(a, b module) int { return strings.Compare(a.Path, b.Path) })
	return mods, nil
}

// goRoot returns the directory of the Go toolchain, whose standard library
// and runtime are linked into every Go program.
func goRoot(env []string) (string, error) {
	out, err := goCmd(env, "env", "GOROOT")
	return strings.TrimSpace(string(out)), err
}

// goCmd runs the go command with args and returns its standard output.
func goCmd(env []string, args ...string) ([]byte, error) {
	cmd := exec.Command("go", args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out, nil
}
