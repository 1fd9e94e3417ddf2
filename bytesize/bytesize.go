// Package bytesize reads and writes sizes the way people do: "2GiB",
// "500MB" in a config file, exactly; "1.5 MiB" in a status line, roughly.
package bytesize

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// Size is a number of bytes written the way people read sizes: "2GiB", "500MB", "1.5 GiB" or plain bytes ("1048576").
type Size int64

// units are the units Parse knows, matched without regard to
// case; String prints the binary ones first.
var units = []struct {
	name string
	size int64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3},
	{"B", 1},
}

// Parse reads a size: a decimal number, optionally with a
// fraction, then optionally spaces and a unit (B, kB, MB, GB, TB in
// powers of 1000; KiB, MiB, GiB, TiB in powers of 1024). A fraction of a
// byte is rounded to the nearest.
func Parse(s string) (Size, error) {
	s = strings.TrimSpace(s)
	end := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if end < 0 {
		end = len(s)
	}
	num, unit := s[:end], strings.TrimSpace(s[end:])
	n, ok := new(big.Rat).SetString(num)
	if num == "" || !ok {
		return 0, fmt.Errorf("size %q: want a number of bytes, such as 2GiB, 500MB or 1048576", s)
	}
	mult, err := unitSize(unit)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	n.Mul(n, new(big.Rat).SetInt64(mult))
	bytes := new(big.Int).Quo(new(big.Int).Add(new(big.Int).Mul(n.Num(), big.NewInt(2)), n.Denom()), new(big.Int).Mul(n.Denom(), big.NewInt(2)))
	if !bytes.IsInt64() {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return Size(bytes.Int64()), nil
}

func unitSize(unit string) (int64, error) {
	if unit == "" {
		return 1, nil
	}
	for _, u := range units {
		if strings.EqualFold(unit, u.name) {
			return u.size, nil
		}
	}
	return 0, errors.New("unknown unit; use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB")
}

// String prints the size exactly, in the largest unit that divides it:
// binary units first ("2GiB", "1536MiB"), then decimal ones ("500MB"),
// else plain bytes.
func (b Size) String() string {
	if b == 0 {
		return "0"
	}
	for _, u := range units {
		if u.size > 1 && int64(b)%u.size == 0 {
			return strconv.FormatInt(int64(b)/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// UnmarshalText reads a size as Parse does. An empty text leaves
// the size as it was: the default.
func (b *Size) UnmarshalText(text []byte) error {
	if strings.TrimSpace(string(text)) == "" {
		return nil
	}
	v, err := Parse(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalText prints the size as String does.
func (b Size) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// Format prints a size roughly, the way people read it in a status line:
// "512 B", "1.5 MiB".
func Format(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
