package bytesize

import (
	"math"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    Size
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "1048576", want: 1 << 20},
		{in: "2GiB", want: 2 << 30},
		{in: "500MB", want: 500e6},
		{in: "1.5 GiB", want: 3 << 29},
		{in: "  3 mib ", want: 3 << 20},
		{in: "1kB", want: 1000},
		{in: "1KB", want: 1000},
		{in: "1KiB", want: 1024},
		{in: "7B", want: 7},
		{in: "2TB", want: 2e12},
		{in: "8TiB", want: 8 << 40},
		{in: "0.5", want: 1}, // half a byte rounds up
		{in: "1.3KiB", want: 1331},
		{in: "7.999999999999999999EiB", wantErr: "unknown unit"},
		{in: "8388608TiB", wantErr: "too large"},
		{in: "9223372036854775807", want: math.MaxInt64},
		{in: "9223372036854775808", wantErr: "too large"},
		{in: "", wantErr: "want a number"},
		{in: "GiB", wantErr: "want a number"},
		{in: "-1GiB", wantErr: "want a number"},
		{in: ".", wantErr: "want a number"},
		{in: "1e3", wantErr: "unknown unit"},
		{in: "2 gigs", wantErr: "unknown unit"},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse(%q) = %d, %v; want an error about %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		in   Size
		want string
	}{
		{0, "0"},
		{2 << 30, "2GiB"},
		{100 << 30, "100GiB"},
		{3 << 29, "1536MiB"},
		{500e6, "500MB"},
		{1024, "1KiB"},
		{1000, "1kB"},
		{1234, "1234"},
		{8 << 40, "8TiB"},
		{math.MaxInt64, "9223372036854775807"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("Size(%d) = %q, want %q", int64(tt.in), got, tt.want)
		}
		if back, err := Parse(tt.in.String()); err != nil || back != tt.in {
			t.Errorf("Size(%d) does not read back: %d, %v", int64(tt.in), back, err)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, tt := range []struct {
		in   int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536 << 10, "1.5 MiB"}, {16 << 30, "16.0 GiB"}, {8 << 40, "8.0 TiB"},
	} {
		if got := Format(tt.in); got != tt.want {
			t.Errorf("Format(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
