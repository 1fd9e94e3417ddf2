// Package icons holds punchdrop's app icon and its tray icons (one per
// state), as PNGs in the usual hicolor sizes and as SVG, embedded for the
// tray and installed by the packages.
//
// The files under hicolor/ are drawn by ./gen from one geometry and
// committed; change gen/design.go and run "go generate ./packaging/icons".
package icons

import (
	"bytes"
	"embed"
	"encoding/binary"
	"fmt"
	"path"
)

//go:generate go run ./gen -out .

// Icon names: the app icon, and one icon per tray state.
const (
	// App is the application icon (menus, notifications, the window list).
	App = "punchdrop"
	// Idle is the tray icon while the agent runs and nothing moves.
	Idle = "idle"
	// Transferring is the tray icon while files are being sent or received.
	Transferring = "transferring"
	// Offline is the tray icon when the agent cannot be reached or reports
	// an error.
	Offline = "offline"
	// Paused is the tray icon while sending is paused.
	Paused = "paused"
)

// Names lists every icon name.
var Names = []string{App, Idle, Transferring, Offline, Paused}

// Sizes lists the PNG sizes in pixels, smallest first.
var Sizes = []int{16, 22, 24, 32, 48, 64, 128, 256}

// icoSizes are the images packed into an ICO: what Windows asks for in the
// notification area (16, 24, 32 at 100–200 % scaling), Explorer (48) and
// large views (256).
var icoSizes = []int{16, 24, 32, 48, 64, 256}

//go:embed hicolor
var files embed.FS

// fileName is the base name of an icon in the hicolor tree: "punchdrop"
// for the app, "punchdrop-<state>" for a tray state.
func fileName(name string) string {
	if name == App {
		return App
	}
	return App + "-" + name
}

// PNG returns the icon called name (App, Idle, Transferring or Offline)
// as PNG bytes of size×size pixels. For a size that is not in Sizes it
// returns the next larger one (the largest if size is above them all), so
// that a caller asking for a scaled size still gets a sharp image. It
// returns nil for an unknown name.
func PNG(name string, size int) []byte {
	pick := Sizes[len(Sizes)-1]
	for _, s := range Sizes {
		if s >= size {
			pick = s
			break
		}
	}
	b, err := files.ReadFile(path.Join("hicolor", fmt.Sprintf("%dx%d", pick, pick), "apps", fileName(name)+".png"))
	if err != nil {
		return nil
	}
	return b
}

// SVG returns the scalable icon called name, or nil for an unknown name.
func SVG(name string) []byte {
	b, err := files.ReadFile(path.Join("hicolor", "scalable", "apps", fileName(name)+".svg"))
	if err != nil {
		return nil
	}
	return b
}

// ICO returns the icon called name as a Windows .ico file holding PNG
// images of several sizes (the PNG-in-ICO form Windows reads since Vista),
// which is what fyne.io/systray wants on Windows. It returns nil for an
// unknown name.
func ICO(name string) []byte {
	const (
		headerLen = 6  // reserved, type (1 = icon), image count
		entryLen  = 16 // one directory entry per image
	)
	images := make([][]byte, len(icoSizes))
	for i, s := range icoSizes {
		if images[i] = PNG(name, s); images[i] == nil {
			return nil
		}
	}
	var b bytes.Buffer
	le := binary.LittleEndian
	b.Write(le.AppendUint16(nil, 0))
	b.Write(le.AppendUint16(nil, 1))
	b.Write(le.AppendUint16(nil, uint16(len(images))))
	offset := headerLen + entryLen*len(images)
	for i, s := range icoSizes {
		dim := byte(s) // 0 means 256
		b.Write([]byte{dim, dim, 0, 0})
		b.Write(le.AppendUint16(nil, 1))  // colour planes
		b.Write(le.AppendUint16(nil, 32)) // bits per pixel
		b.Write(le.AppendUint32(nil, uint32(len(images[i]))))
		b.Write(le.AppendUint32(nil, uint32(offset)))
		offset += len(images[i])
	}
	for _, img := range images {
		b.Write(img)
	}
	return b.Bytes()
}
