package transfer

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrBadName is wrapped by SafeRelPath's errors: the name cannot be made
// safe to create.
var ErrBadName = errors.New("unsafe file name")

const (
	maxPathLen    = 4096 // bytes in a whole relative path
	maxElements   = 32   // elements in a path: its folders and the file
	maxElementLen = 255  // bytes in one element, the limit of most filesystems
	maxExtLen     = 16   // bytes after the dot of an extension kept when shortening
)

// SafeRelPath turns name, a '/'-separated relative path sent by an
// untrusted peer, into a relative path that is safe to create under the
// downloads folder on any common filesystem. It refuses, with an error
// wrapping ErrBadName, what cannot be made safe: an empty or absolute
// path, a ".." element, a NUL byte, invalid UTF-8, more than 32 elements
// or more than 4096 bytes. Everything else is made safe: a backslash
// separates elements, empty and "." elements are dropped, and each
// element is cleaned up as described at safeElem.
//
// SafeRelPath is idempotent: SafeRelPath(SafeRelPath(x)) == SafeRelPath(x).
func SafeRelPath(name string) (string, error) {
	switch {
	case name == "":
		return "", badName("empty")
	case len(name) > maxPathLen:
		return "", badName(fmt.Sprintf("longer than %d bytes", maxPathLen))
	case !utf8.ValidString(name):
		return "", badName("invalid UTF-8")
	case strings.IndexByte(name, 0) >= 0:
		return "", badName("NUL byte")
	case isSep(rune(name[0])):
		return "", badName("absolute path")
	case len(name) >= 2 && name[1] == ':' && isASCIILetter(name[0]):
		return "", badName("drive letter")
	}
	var elems []string
	for _, e := range strings.FieldsFunc(name, isSep) {
		switch {
		case e == ".":
			continue
		case e == "..":
			return "", badName("contains ..")
		case len(elems) == maxElements:
			return "", badName(fmt.Sprintf("more than %d path elements", maxElements))
		}
		elems = append(elems, safeElem(e, len(elems) == 0))
	}
	if len(elems) == 0 {
		return "", badName("no name left after cleaning")
	}
	// Cleaning can lengthen a name by a few bytes, so the result is
	// checked too: otherwise it could be refused when given again.
	rel := strings.Join(elems, "/")
	if len(rel) > maxPathLen {
		return "", badName(fmt.Sprintf("longer than %d bytes", maxPathLen))
	}
	return rel, nil
}

func badName(why string) error { return fmt.Errorf("%w: %s", ErrBadName, why) }

// isSep reports whether r separates path elements: a peer on Windows
// may use a backslash.
func isSep(r rune) bool { return r == '/' || r == '\\' }

func isASCIILetter(b byte) bool { return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' }

// safeElem makes one path element, neither "." nor "..", safe to create
// on Linux, macOS and Windows:
//   - invisible characters (see invisible) and <>:"|?* become '_';
//   - trailing dots and spaces, which Windows drops, are dropped;
//   - it is shortened to at most 255 bytes, keeping a short extension;
//   - an element left empty becomes "_";
//   - a Windows device name such as "con.txt", or, when top is set, a
//     name starting with the staging folder's, gets a '_' in front.
func safeElem(e string, top bool) string {
	e = strings.TrimRight(strings.Map(safeRune, e), ". ")
	e = shorten(e, maxElementLen)
	if e == "" {
		return "_"
	}
	if isDevice(e) || top && hasPrefixFold(e, StagingDir) {
		e = "_" + shorten(e, maxElementLen-1)
	}
	return e
}

func safeRune(r rune) rune {
	if invisible(r) || strings.ContainsRune(`<>:"|?*`, r) {
		return '_'
	}
	return r
}

// invisible reports whether r is a character a person reading the name
// does not see as itself: C0 and C1 controls, format characters
// (category Cf: bidi overrides, embeddings and isolates, which reorder
// what follows, so "invoice\u202Ehs.pdf" shows as "invoicefdp.sh";
// zero-width spaces and joiners; the BOM; soft hyphens; tags), line and
// paragraph separators, and the other default-ignorable characters that
// render blank (Hangul fillers). A name keeps every visible character;
// an emoji sequence joined by U+200D comes apart into its emoji.
func invisible(r rune) bool {
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Other_Default_Ignorable_Code_Point)
}

// shorten cuts name to at most limit bytes, keeping its extension when
// that is short, without splitting a UTF-8 character or leaving a
// trailing dot or space. The result may be empty.
func shorten(name string, limit int) string {
	if len(name) <= limit {
		return name
	}
	stem, ext := splitExt(name)
	return strings.TrimRight(truncate(stem, limit-len(ext)), ". ") + ext
}

// splitExt splits name before the dot of its extension, if it has one of
// at most maxExtLen bytes. A dotfile such as ".bashrc" is all stem.
func splitExt(name string) (stem, ext string) {
	ext = path.Ext(name)
	if len(ext) == len(name) || len(ext) > 1+maxExtLen {
		return name, ""
	}
	return name[:len(name)-len(ext)], ext
}

// truncate cuts s to at most n bytes without splitting a UTF-8 character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// isDevice reports whether Windows opens a file named elem as a device:
// CON, PRN, AUX, NUL, CONIN$, CONOUT$, COM1–COM9 or LPT1–LPT9 (also
// with ¹, ² or ³), in any case, alone or followed by spaces or an
// extension. The list is that of Go's filepath.IsLocal.
func isDevice(elem string) bool {
	stem, _, _ := strings.Cut(elem, ".")
	stem = strings.ToUpper(strings.TrimRight(stem, " "))
	switch stem {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	port, ok := strings.CutPrefix(stem, "COM")
	if !ok {
		port, ok = strings.CutPrefix(stem, "LPT")
	}
	return ok && (len(port) == 1 && '1' <= port[0] && port[0] <= '9' ||
		port == "¹" || port == "²" || port == "³")
}

// hasPrefixFold reports whether s starts with prefix, ignoring case, as
// a case-insensitive filesystem (macOS, Windows) would.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
