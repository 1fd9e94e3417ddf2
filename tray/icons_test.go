package tray

import (
	"bytes"
	"image/png"
	"testing"
)

func TestIcons(t *testing.T) {
	seen := map[string]iconState{}
	for _, s := range []iconState{iconIdle, iconBusy, iconPaused, iconOffline} {
		b := iconPNG(s)
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if r := img.Bounds(); r.Dx() != iconSize || r.Dy() != iconSize {
			t.Errorf("%s: %v, want %d px square", s, r, iconSize)
		}
		if _, _, _, a := img.At(0, 0).RGBA(); a != 0 {
			t.Errorf("%s: corner not transparent", s)
		}
		if _, _, _, a := img.At(iconSize/2, iconSize/2).RGBA(); a == 0 {
			t.Errorf("%s: centre transparent", s)
		}
		if prev, dup := seen[string(b)]; dup {
			t.Errorf("%s looks the same as %s", s, prev)
		}
		seen[string(b)] = s
	}
}
