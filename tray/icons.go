package tray

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
)

// iconState is what the tray icon shows.
type iconState int

const (
	iconIdle    iconState = iota // the agent runs, nothing moves
	iconBusy                     // files are moving
	iconPaused                   // transfers are paused
	iconOffline                  // the agent does not answer, or something failed
)

func (s iconState) String() string {
	switch s {
	case iconIdle:
		return "idle"
	case iconBusy:
		return "transferring"
	case iconPaused:
		return "paused"
	case iconOffline:
		return "offline"
	}
	return "unknown"
}

// iconSize is the edge of the drawn icon in pixels; panels scale it to
// their own size (16–48 px), and 64 keeps it sharp on HiDPI panels.
const iconSize = 64

// iconPNG returns the tray icon for s as PNG bytes. These are drawn
// placeholders (a disc with a "drop" arrow, coloured by state); when the
// packaged icons exist, this is the one function to change.
func iconPNG(s iconState) []byte {
	bg := map[iconState]color.NRGBA{
		iconIdle:    {0x2b, 0x7d, 0xe9, 0xff}, // blue
		iconBusy:    {0x1f, 0xa3, 0x5f, 0xff}, // green
		iconPaused:  {0xd9, 0x98, 0x00, 0xff}, // amber
		iconOffline: {0x80, 0x86, 0x90, 0xff}, // grey
	}[s]
	white := color.NRGBA{0xff, 0xff, 0xff, 0xff}
	red := color.NRGBA{0xe0, 0x2f, 0x2f, 0xff}
	c := float64(iconSize) / 2
	disc := func(x, y, cx, cy, r float64) bool { return math.Hypot(x-cx, y-cy) <= r }
	arrow := func(x, y float64) bool {
		shaft := math.Abs(x-c) <= 5 && y >= 13 && y <= 34
		head := y >= 31 && y <= 50 && math.Abs(x-c) <= (50-y)*15/19
		return shaft || head
	}
	pause := func(x, y float64) bool {
		return y >= 18 && y <= 46 && ((x >= 21 && x <= 28) || (x >= 36 && x <= 43))
	}
	// shade returns the colour at a point of the icon, or false for
	// transparent.
	shade := func(x, y float64) (color.NRGBA, bool) {
		if s == iconOffline && disc(x, y, 49, 49, 10) {
			return red, true
		}
		if s == iconOffline && disc(x, y, 49, 49, 13) {
			return white, true
		}
		if !disc(x, y, c, c, c-1) {
			return color.NRGBA{}, false
		}
		if s == iconPaused && pause(x, y) || s != iconPaused && arrow(x, y) {
			return white, true
		}
		if s == iconBusy && math.Abs(math.Hypot(x-c, y-c)-(c-6)) <= 1.2 {
			return white, true // a ring: something is moving
		}
		return bg, true
	}
	img := image.NewNRGBA(image.Rect(0, 0, iconSize, iconSize))
	const ss = 4 // supersampling per axis, for smooth edges
	for py := 0; py < iconSize; py++ {
		for px := 0; px < iconSize; px++ {
			var r, g, b, a float64
			for sy := 0; sy < ss; sy++ {
				for sx := 0; sx < ss; sx++ {
					col, ok := shade(float64(px)+(float64(sx)+0.5)/ss, float64(py)+(float64(sy)+0.5)/ss)
					if !ok {
						continue
					}
					r += float64(col.R)
					g += float64(col.G)
					b += float64(col.B)
					a++
				}
			}
			if a == 0 {
				continue
			}
			img.SetNRGBA(px, py, color.NRGBA{uint8(r / a), uint8(g / a), uint8(b / a), uint8(255 * a / (ss * ss))})
		}
	}
	var buf bytes.Buffer
	png.Encode(&buf, img) // writing to memory cannot fail
	return buf.Bytes()
}
