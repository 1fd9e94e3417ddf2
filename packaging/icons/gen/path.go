package main

import (
	"image"
	"image/color"
	"image/draw"
	"strconv"
	"strings"

	"golang.org/x/image/vector"
)

// viewBox is the side of the square design space every shape is drawn
// in; the SVG keeps it as its viewBox and the PNGs scale it to their size.
const viewBox = 256

// kappa places the control points of a cubic Bézier that approximates a
// quarter circle (error below 0.03 % of the radius).
const kappa = 0.5522847498

// pt is a point in design units.
type pt struct{ x, y float64 }

// segment is one path command: 'M' move, 'L' line, 'C' cubic (three
// points), 'Z' close.
type segment struct {
	op  byte
	pts []pt
}

// path is a list of closed contours. Filling uses the non-zero winding
// rule in both outputs (SVG's default, and what vector.Rasterizer does),
// so a contour drawn the other way round cuts a hole.
type path []segment

func (p *path) moveTo(x, y float64) { *p = append(*p, segment{'M', []pt{{x, y}}}) }
func (p *path) close()              { *p = append(*p, segment{'Z', nil}) }

// lineTo adds a line, or nothing when it would have zero length.
func (p *path) lineTo(x, y float64) {
	if n := len(*p); n > 0 {
		if last := (*p)[n-1]; last.op != 'Z' && last.pts[len(last.pts)-1] == (pt{x, y}) {
			return
		}
	}
	*p = append(*p, segment{'L', []pt{{x, y}}})
}

func (p *path) cubeTo(c1, c2, to pt) { *p = append(*p, segment{'C', []pt{c1, c2, to}}) }

// polygon adds a closed contour through pts.
func (p *path) polygon(pts ...pt) {
	p.moveTo(pts[0].x, pts[0].y)
	for _, q := range pts[1:] {
		p.lineTo(q.x, q.y)
	}
	p.close()
}

// roundRect adds the rectangle x0,y0–x1,y1 with corner radii given
// clockwise from the top left (tl, tr, br, bl), drawn clockwise on screen;
// ccw draws it the other way round, to cut a hole.
func (p *path) roundRect(x0, y0, x1, y1, tl, tr, br, bl float64, ccw bool) {
	// Walk clockwise; for ccw, collect the same outline and reverse it.
	var sub path
	sub.moveTo(x0+tl, y0)
	sub.lineTo(x1-tr, y0)
	sub.arc(pt{x1 - tr, y0}, pt{x1, y0 + tr}, pt{x1, y0})
	sub.lineTo(x1, y1-br)
	sub.arc(pt{x1, y1 - br}, pt{x1 - br, y1}, pt{x1, y1})
	sub.lineTo(x0+bl, y1)
	sub.arc(pt{x0 + bl, y1}, pt{x0, y1 - bl}, pt{x0, y1})
	sub.lineTo(x0, y0+tl)
	sub.arc(pt{x0, y0 + tl}, pt{x0 + tl, y0}, pt{x0, y0})
	sub.close()
	if ccw {
		sub = sub.reversed()
	}
	*p = append(*p, sub...)
}

// arc adds a quarter-circle corner from the current point "from" to "to",
// bulging towards the square's corner; a zero-radius corner is a point.
func (p *path) arc(from, to, corner pt) {
	if from == to {
		return
	}
	c1 := pt{from.x + (corner.x-from.x)*kappa, from.y + (corner.y-from.y)*kappa}
	c2 := pt{to.x + (corner.x-to.x)*kappa, to.y + (corner.y-to.y)*kappa}
	p.cubeTo(c1, c2, to)
}

// circle adds a circle, clockwise on screen unless ccw.
func (p *path) circle(cx, cy, r float64, ccw bool) {
	p.roundRect(cx-r, cy-r, cx+r, cy+r, r, r, r, r, ccw)
}

// reversed returns one closed contour (M ... Z) drawn the other way round.
func (p path) reversed() path {
	// Flatten to the list of nodes with the segment that reaches each.
	type node struct {
		at   pt
		via  byte
		ctrl []pt // for 'C': the two control points
	}
	var nodes []node
	for _, s := range p {
		switch s.op {
		case 'M', 'L':
			nodes = append(nodes, node{at: s.pts[0], via: s.op})
		case 'C':
			nodes = append(nodes, node{at: s.pts[2], via: 'C', ctrl: s.pts[:2]})
		}
	}
	var out path
	last := nodes[len(nodes)-1].at
	out.moveTo(last.x, last.y)
	for i := len(nodes) - 1; i > 0; i-- {
		prev := nodes[i-1].at
		switch n := nodes[i]; n.via {
		case 'C':
			out.cubeTo(n.ctrl[1], n.ctrl[0], prev)
		default:
			out.lineTo(prev.x, prev.y)
		}
	}
	out.close()
	return out
}

// svg renders the path as SVG path data in design units.
func (p path) svg() string {
	var b strings.Builder
	for _, s := range p {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte(s.op)
		for _, q := range s.pts {
			b.WriteByte(' ')
			b.WriteString(num(q.x))
			b.WriteByte(' ')
			b.WriteString(num(q.y))
		}
	}
	return b.String()
}

// num prints a coordinate with at most two decimals.
func num(v float64) string {
	return strconv.FormatFloat(float64(int64(v*100+0.5))/100, 'f', -1, 64)
}

// rasterize feeds the path into z, scaled from design units to z's size.
func (p path) rasterize(z *vector.Rasterizer, scale float64) {
	f := func(q pt) (float32, float32) { return float32(q.x * scale), float32(q.y * scale) }
	for _, s := range p {
		switch s.op {
		case 'M':
			z.MoveTo(f(s.pts[0]))
		case 'L':
			z.LineTo(f(s.pts[0]))
		case 'C':
			ax, ay := f(s.pts[0])
			bx, by := f(s.pts[1])
			cx, cy := f(s.pts[2])
			z.CubeTo(ax, ay, bx, by, cx, cy)
		case 'Z':
			z.ClosePath()
		}
	}
}

// layer is one filled shape of an icon, painted over the layers before it.
type layer struct {
	fill color.NRGBA
	path path
}

// icon is a drawing: its layers, bottom first.
type icon []layer

// png renders the icon at size×size pixels with anti-aliased edges.
func (ic icon) png(size int) *image.NRGBA {
	dst := image.NewRGBA(image.Rect(0, 0, size, size))
	for _, l := range ic {
		z := vector.NewRasterizer(size, size)
		z.DrawOp = draw.Over
		l.path.rasterize(z, float64(size)/viewBox)
		z.Draw(dst, dst.Bounds(), image.NewUniform(l.fill), image.Point{})
	}
	out := image.NewNRGBA(dst.Bounds())
	draw.Draw(out, out.Bounds(), dst, image.Point{}, draw.Src)
	return out
}

// svg renders the icon as a standalone SVG document.
func (ic icon) svg() string {
	var b strings.Builder
	b.WriteString(`<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256">` + "\n")
	for _, l := range ic {
		b.WriteString(`  <path fill="` + hex(l.fill) + `"`)
		if l.fill.A != 0xff {
			b.WriteString(` fill-opacity="` + strconv.FormatFloat(float64(int(float64(l.fill.A)/255*1000+0.5))/1000, 'f', -1, 64) + `"`)
		}
		b.WriteString(` d="` + l.path.svg() + `"/>` + "\n")
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// hex is the colour as #rrggbb.
func hex(c color.NRGBA) string {
	const digits = "0123456789abcdef"
	b := []byte{'#', 0, 0, 0, 0, 0, 0}
	for i, v := range []uint8{c.R, c.G, c.B} {
		b[1+2*i] = digits[v>>4]
		b[2+2*i] = digits[v&0xf]
	}
	return string(b)
}
