package icons

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"image"
	"image/png"
	"testing"
)

func decode(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestPNGEverySize(t *testing.T) {
	for _, name := range Names {
		for _, size := range Sizes {
			b := PNG(name, size)
			if b == nil {
				t.Fatalf("PNG(%q, %d) = nil", name, size)
			}
			img := decode(t, b)
			if got := img.Bounds(); got.Dx() != size || got.Dy() != size {
				t.Errorf("PNG(%q, %d) is %v", name, size, got)
			}
			// The tile is opaque in the middle and the corners are clear.
			if _, _, _, a := img.At(size/2, size/2).RGBA(); a != 0xffff {
				t.Errorf("PNG(%q, %d): centre alpha %#x", name, size, a)
			}
			if _, _, _, a := img.At(0, 0).RGBA(); a != 0 {
				t.Errorf("PNG(%q, %d): corner alpha %#x", name, size, a)
			}
		}
	}
}

func TestPNGPicksNextLargerSize(t *testing.T) {
	for _, tt := range []struct{ ask, want int }{{0, 16}, {20, 22}, {33, 48}, {256, 256}, {1000, 256}} {
		if got := decode(t, PNG(Idle, tt.ask)).Bounds().Dx(); got != tt.want {
			t.Errorf("PNG(Idle, %d) is %d px, want %d", tt.ask, got, tt.want)
		}
	}
	if PNG("nosuch", 16) != nil || SVG("nosuch") != nil || ICO("nosuch") != nil {
		t.Error("an unknown name gave an icon")
	}
}

// TestStatesDiffer checks that each tray state looks different from the
// others at the smallest size, where it matters most.
func TestStatesDiffer(t *testing.T) {
	states := []string{Idle, Transferring, Offline}
	for i, a := range states {
		for _, b := range states[i+1:] {
			if bytes.Equal(PNG(a, 16), PNG(b, 16)) {
				t.Errorf("%s and %s are the same icon", a, b)
			}
		}
	}
}

func TestSVG(t *testing.T) {
	for _, name := range Names {
		var doc struct {
			XMLName xml.Name
			ViewBox string   `xml:"viewBox,attr"`
			Paths   []string `xml:"path"`
		}
		if err := xml.Unmarshal(SVG(name), &doc); err != nil {
			t.Fatalf("SVG(%q): %v", name, err)
		}
		if doc.XMLName.Local != "svg" || doc.ViewBox != "0 0 256 256" || len(doc.Paths) < 4 {
			t.Errorf("SVG(%q): root %q, viewBox %q, %d paths", name, doc.XMLName.Local, doc.ViewBox, len(doc.Paths))
		}
	}
}

// TestICO reads the ICO directory back and decodes every image it points to.
func TestICO(t *testing.T) {
	ico := ICO(Offline)
	le := binary.LittleEndian
	if len(ico) < 6 || le.Uint16(ico[0:]) != 0 || le.Uint16(ico[2:]) != 1 {
		t.Fatalf("bad ICO header % x", ico[:6])
	}
	n := int(le.Uint16(ico[4:]))
	if n != len(icoSizes) {
		t.Fatalf("ICO holds %d images, want %d", n, len(icoSizes))
	}
	for i := range n {
		e := ico[6+16*i:]
		dim := int(e[0])
		if dim == 0 {
			dim = 256
		}
		size, offset := le.Uint32(e[8:]), le.Uint32(e[12:])
		if int(offset+size) > len(ico) {
			t.Fatalf("entry %d points past the end", i)
		}
		img := decode(t, ico[offset:offset+size])
		if img.Bounds().Dx() != dim || dim != icoSizes[i] {
			t.Errorf("entry %d: directory says %d px, image is %v", i, dim, img.Bounds())
		}
	}
}
