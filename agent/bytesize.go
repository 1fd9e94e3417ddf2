package agent

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// ByteSize is a number of bytes written in the config the way people
// read sizes: "2GiB", "500MB", "1.5 GiB" or plain bytes ("1048576").
type ByteSize int64

// byteUnits are the units ParseByteSize knows, matched without regard to
// case; String prints the binary ones first.
var byteUnits = []struct {
	name string
	size int64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3},
	{"B", 1},
}

// ParseByteSize reads a size: a decimal number, optionally with a
// fraction, then optionally spaces and a unit (B, kB, MB, GB, TB in
// powers of 1000; KiB, MiB, GiB, TiB in powers of 1024). A fraction of a
// byte is rounded to the nearest.
func ParseByteSize(s string) (ByteSize, error) {
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
	return ByteSize(bytes.Int64()), nil
}

func unitSize(unit string) (int64, error) {
	if unit == "" {
		return 1, nil
	}
	for _, u := range byteUnits {
		if strings.EqualFold(unit, u.name) {
			return u.size, nil
		}
	}
	return 0, errors.New("unknown unit; use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB")
}

// String prints the size exactly, in the largest unit that divides it:
// binary units first ("2GiB", "1536MiB"), then decimal ones ("500MB"),
// else plain bytes.
func (b ByteSize) String() string {
	if b == 0 {
		return "0"
	}
	for _, u := range byteUnits {
		if u.size > 1 && int64(b)%u.size == 0 {
			return strconv.FormatInt(int64(b)/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// UnmarshalText reads a size as ParseByteSize does. An empty text leaves
// the size as it was: the default.
func (b *ByteSize) UnmarshalText(text []byte) error {
	if strings.TrimSpace(string(text)) == "" {
		return nil
	}
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalText prints the size as String does.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }
