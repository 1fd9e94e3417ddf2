package main

import "image/color"

// The drawing, in design units of a 256×256 square. Lengths are multiples
// of 16 where they can be, so that the 16, 32, 64, 128 and 256 px icons
// have crisp edges (one 16 px pixel is 16 units).
const (
	// tile is the rounded square behind everything.
	tileMin, tileMax = 16, 240
	tileRadius       = 52
	// horizon splits the tile into its lighter "outside" and darker
	// "inside" halves: the NAT between the internet and the home network.
	horizon = 128

	// The wall is the NAT, two bars with the punched gap between them.
	wallTop, wallBottom = 112, 144
	wallLeft, wallRight = 48, 208
	gapLeft, gapRight   = 96, 160
	wallRadius          = 8

	// The arrow drops from the top through the gap: a shaft and a head.
	shaftLeft, shaftRight = 112, 144
	shaftTop              = 40
	headTop, headTip      = 160, 216
	headLeft, headRight   = 72, 184

	// Motion marks (transferring): short streaks on both sides of the
	// shaft, staggered, ending well above the wall so that they read as
	// motion and not as parts of it.
	markWidth  = 16
	markLength = 48
	markInset  = 24 // from the shaft
	markLeftY  = 48 // top of the left streak
	markRightY = 32 // top of the right streak

	// The offline badge sits on the lower right corner, cut out of the
	// tile by a ring of the tile's colour.
	badgeX, badgeY = 184, 184
	badgeRadius    = 40
	badgeRing      = 12
)

// palette is one icon's colours.
type palette struct {
	outside, inside, glyph color.NRGBA
}

var (
	white = color.NRGBA{0xff, 0xff, 0xff, 0xff}
	// blue is punchdrop's own colour: the app icon and the idle tray icon.
	blue = palette{outside: rgb(0x3b82f6), inside: rgb(0x1d4ed8), glyph: white}
	// green says files are moving.
	green = palette{outside: rgb(0x22c55e), inside: rgb(0x15803d), glyph: white}
	// amber says sending is paused.
	amber = palette{outside: rgb(0xf59e0b), inside: rgb(0xb45309), glyph: white}
	// grey says the agent cannot be reached.
	grey = palette{outside: rgb(0x9ca3af), inside: rgb(0x6b7280), glyph: rgb(0xf3f4f6)}
	// badgeRed marks the offline icon.
	badgeRed = rgb(0xdc2626)
	// markAlpha makes the motion marks lighter than the arrow.
	markAlpha uint8 = 0xc8
)

func rgb(v uint32) color.NRGBA {
	return color.NRGBA{uint8(v >> 16), uint8(v >> 8), uint8(v), 0xff}
}

// designs maps each icon's file name (without extension) to its drawing.
func designs() map[string]icon {
	return map[string]icon{
		"punchdrop":              base(blue),
		"punchdrop-idle":         base(blue),
		"punchdrop-transferring": append(base(green), motionMarks(green)),
		"punchdrop-offline":      append(base(grey), badge(grey)...),
		"punchdrop-paused":       append(base(amber), pauseBadge(amber)...),
	}
}

// base is the tile with the wall and the arrow.
func base(pal palette) icon {
	var tile, inside, wall, arrow path
	tile.roundRect(tileMin, tileMin, tileMax, tileMax, tileRadius, tileRadius, tileRadius, tileRadius, false)
	inside.roundRect(tileMin, horizon, tileMax, tileMax, 0, 0, tileRadius, tileRadius, false)
	wall.roundRect(wallLeft, wallTop, gapLeft, wallBottom, wallRadius, wallRadius, wallRadius, wallRadius, false)
	wall.roundRect(gapRight, wallTop, wallRight, wallBottom, wallRadius, wallRadius, wallRadius, wallRadius, false)
	arrow.polygon(
		pt{shaftLeft, shaftTop}, pt{shaftRight, shaftTop}, pt{shaftRight, headTop},
		pt{headRight, headTop}, pt{(shaftLeft + shaftRight) / 2, headTip}, pt{headLeft, headTop},
		pt{shaftLeft, headTop},
	)
	return icon{
		{pal.outside, tile},
		{pal.inside, inside},
		{pal.glyph, wall},
		{pal.glyph, arrow},
	}
}

// motionMarks are the dashes beside the falling arrow.
func motionMarks(pal palette) layer {
	var marks path
	r := float64(markWidth) / 2
	left := float64(shaftLeft - markInset - markWidth)
	right := float64(shaftRight + markInset)
	marks.roundRect(left, markLeftY, left+markWidth, markLeftY+markLength, r, r, r, r, false)
	marks.roundRect(right, markRightY, right+markWidth, markRightY+markLength, r, r, r, r, false)
	c := pal.glyph
	c.A = markAlpha
	return layer{c, marks}
}

// badge is the red dot with a white "!" over a ring of the tile's colour.
func badge(pal palette) []layer {
	var ring, dot, mark path
	ring.circle(badgeX, badgeY, badgeRadius+badgeRing, false)
	dot.circle(badgeX, badgeY, badgeRadius, false)
	mark.roundRect(badgeX-7, badgeY-26, badgeX+7, badgeY+6, 7, 7, 7, 7, false)
	mark.circle(badgeX, badgeY+20, 8, false)
	return []layer{
		{pal.inside, ring},
		{badgeRed, dot},
		{white, mark},
	}
}

// pauseBadge is a dark dot with two white bars, where the offline icon
// has its "!".
func pauseBadge(pal palette) []layer {
	var ring, dot, bars path
	ring.circle(badgeX, badgeY, badgeRadius+badgeRing, false)
	dot.circle(badgeX, badgeY, badgeRadius, false)
	bars.roundRect(badgeX-18, badgeY-20, badgeX-6, badgeY+20, 4, 4, 4, 4, false)
	bars.roundRect(badgeX+6, badgeY-20, badgeX+18, badgeY+20, 4, 4, 4, 4, false)
	return []layer{
		{pal.inside, ring},
		{rgb(0x1f2937), dot},
		{white, bars},
	}
}
