// Command gen draws punchdrop's icons: the app icon and one icon per tray
// state, as SVG and as PNGs in every hicolor size, all from one geometry
// (design.go). It writes a hicolor theme tree under -out:
//
//	hicolor/scalable/apps/NAME.svg
//	hicolor/SIZExSIZE/apps/NAME.png
//
// Run it with "go generate ./packaging/icons"; the output is committed.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"slices"
)

// sizes are the PNG sizes written, the usual hicolor ones; icons.Sizes
// must list the same (the test checks it).
var sizes = []int{16, 22, 24, 32, 48, 64, 128, 256}

func main() {
	out := flag.String("out", ".", "write the hicolor tree under `DIR`")
	flag.Parse()
	if err := write(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// write renders every icon into the hicolor tree under dir.
func write(dir string) error {
	files, err := render()
	if err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, files[name], 0o644); err != nil {
			return err
		}
	}
	return nil
}

// render returns every output file, keyed by its path in the tree.
func render() (map[string][]byte, error) {
	files := make(map[string][]byte)
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	for name, ic := range designs() {
		files[svgPath(name)] = []byte(ic.svg())
		for _, size := range sizes {
			var buf bytes.Buffer
			if err := enc.Encode(&buf, ic.png(size)); err != nil {
				return nil, fmt.Errorf("encode %s at %d px: %w", name, size, err)
			}
			files[pngPath(name, size)] = buf.Bytes()
		}
	}
	return files, nil
}

func svgPath(name string) string {
	return filepath.Join("hicolor", "scalable", "apps", name+".svg")
}

func pngPath(name string, size int) string {
	return filepath.Join("hicolor", fmt.Sprintf("%dx%d", size, size), "apps", name+".png")
}
