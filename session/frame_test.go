package session

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFrame(&buf, FrameMsg, Msg{Text: "hello"}); err != nil {
		t.Fatal(err)
	}
	if err := WriteFrame(&buf, FrameError, ErrorFrame{Reason: "disk full"}); err != nil {
		t.Fatal(err)
	}
	var m Msg
	if err := DecodeFrame(&buf, FrameMsg, &m); err != nil || m.Text != "hello" {
		t.Fatalf("DecodeFrame = %v, %+v", err, m)
	}
	if err := DecodeFrame(&buf, FrameMsgAck, &struct{}{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("an error frame must surface its reason, got %v", err)
	}
	if err := WriteFrame(io.Discard, FrameMsg, Msg{Text: strings.Repeat("x", MaxControlFrame)}); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized write = %v", err)
	}
}

func TestReadFrameRejects(t *testing.T) {
	header := func(typ byte, n uint32) []byte {
		return binary.BigEndian.AppendUint32([]byte{typ}, n)
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, io.EOF},
		{"short header", []byte{1, 0}, io.ErrUnexpectedEOF},
		{"type zero", header(0, 0), ErrBadFrame},
		{"unknown type", header(99, 0), ErrBadFrame},
		{"oversized", header(byte(FrameMsg), MaxControlFrame+1), ErrFrameTooLarge},
		{"huge length", header(byte(FrameMsg), 0xffffffff), ErrFrameTooLarge},
		{"truncated payload", append(header(byte(FrameMsg), 10), "abc"...), io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := ReadFrame(bytes.NewReader(tc.in)); !errors.Is(err, tc.want) {
				t.Fatalf("ReadFrame = %v, want %v", err, tc.want)
			}
		})
	}
	var m Msg
	bad := append(header(byte(FrameMsg), 3), "{x}"...)
	if err := DecodeFrame(bytes.NewReader(bad), FrameMsg, &m); !errors.Is(err, ErrBadFrame) {
		t.Fatalf("DecodeFrame of bad JSON = %v", err)
	}
	wrong := append(header(byte(FrameMsgAck), 2), "{}"...)
	if err := DecodeFrame(bytes.NewReader(wrong), FrameMsg, &m); !errors.Is(err, ErrBadFrame) {
		t.Fatalf("DecodeFrame of wrong type = %v", err)
	}
}

func FuzzReadFrame(f *testing.F) {
	var buf bytes.Buffer
	WriteFrame(&buf, FrameHello, Hello{Version: 1, Name: "a"})
	f.Add(buf.Bytes())
	f.Add([]byte{2, 0, 0, 0, 2, '{', '}'})
	f.Add([]byte{5, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, payload, err := ReadFrame(bytes.NewReader(b))
		if err != nil {
			return
		}
		if typ == 0 || typ > maxFrameType || len(payload) > MaxControlFrame || len(payload)+frameHeaderLen > len(b) {
			t.Fatalf("accepted type %d with %d-byte payload from %d bytes", typ, len(payload), len(b))
		}
		var h Hello
		DecodeFrame(bytes.NewReader(b), FrameHello, &h)
	})
}
