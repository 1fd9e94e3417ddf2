package main

import (
	"bytes"
	"image"
	"image/draw"
	"image/png"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/punchdrop/punchdrop/packaging/icons"
)

// TestCommittedFilesAreCurrent checks that the committed hicolor tree is
// what the generator draws now: SVGs byte for byte, PNGs pixel for pixel
// (PNG bytes may differ between Go releases' compressors, and rounding
// between CPUs that fuse multiply-adds, hence pixelTolerance).
func TestCommittedFilesAreCurrent(t *testing.T) {
	files, err := render()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		committed, err := os.ReadFile(filepath.Join("..", name))
		if err != nil {
			t.Errorf("%v (run go generate ./packaging/icons)", err)
			continue
		}
		if filepath.Ext(name) == ".svg" {
			if !bytes.Equal(committed, files[name]) {
				t.Errorf("%s differs from what gen draws (run go generate ./packaging/icons)", name)
			}
			continue
		}
		if !samePixels(pixels(t, committed), pixels(t, files[name])) {
			t.Errorf("%s differs from what gen draws (run go generate ./packaging/icons)", name)
		}
	}
}

// TestNamesAndSizesMatchPackage keeps gen and package icons in step.
func TestNamesAndSizesMatchPackage(t *testing.T) {
	if !slices.Equal(sizes, icons.Sizes) {
		t.Errorf("gen draws sizes %v, package icons lists %v", sizes, icons.Sizes)
	}
	for _, name := range icons.Names {
		file := "punchdrop"
		if name != icons.App {
			file += "-" + name
		}
		if _, ok := designs()[file]; !ok {
			t.Errorf("no design for icon %q (%s)", name, file)
		}
	}
	if len(designs()) != len(icons.Names) {
		t.Errorf("%d designs for %d icon names", len(designs()), len(icons.Names))
	}
}

// TestReversedContourCutsAHole checks the winding trick the designs rely
// on: a contour drawn the other way round inside another leaves a hole.
func TestReversedContourCutsAHole(t *testing.T) {
	var p path
	p.roundRect(0, 0, 256, 256, 0, 0, 0, 0, false)
	p.circle(128, 128, 64, true)
	img := icon{{white, p}}.png(32)
	if a := img.NRGBAAt(16, 16).A; a != 0 {
		t.Errorf("centre of the hole has alpha %d", a)
	}
	if a := img.NRGBAAt(2, 2).A; a != 0xff {
		t.Errorf("outside the hole has alpha %d", a)
	}
}

func pixels(t *testing.T, b []byte) []byte {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	n := image.NewNRGBA(img.Bounds())
	draw.Draw(n, n.Bounds(), img, image.Point{}, draw.Src)
	return n.Pix
}

// pixelTolerance is the largest difference per channel that still counts
// as the same pixel: anti-aliased edges may round one level apart on
// another CPU architecture.
const pixelTolerance = 2

func samePixels(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if d := int(a[i]) - int(b[i]); d > pixelTolerance || d < -pixelTolerance {
			return false
		}
	}
	return true
}
