package ratelimit

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, s := range []State{
		{Class: "not-eligible", Since: time.Unix(1764064800, 123456789), Logged: time.Unix(1764068400, 0), Suppressed: 3599},
		{Class: "eligible", Since: time.Unix(0, 1), Logged: time.Unix(0, 1)},
		{Class: "bad-response", Since: time.Unix(1<<33, 0), Logged: time.Unix(1<<33, 0), Suppressed: 1<<64 - 1},
	} {
		b, err := Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != RecordLen {
			t.Fatalf("record of %d bytes, want %d", len(b), RecordLen)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		if got.Class != s.Class || !got.Since.Equal(s.Since) || !got.Logged.Equal(s.Logged) || got.Suppressed != s.Suppressed {
			t.Errorf("round trip %+v -> %+v", s, got)
		}
	}
}

func TestRecordRejects(t *testing.T) {
	good, _ := Encode(State{Class: "timeout", Since: time.Unix(1764064800, 0), Logged: time.Unix(1764064800, 0), Suppressed: 7})
	flip := func(i int, c byte) []byte { b := bytes.Clone(good); b[i] = c; return b }
	cases := map[string][]byte{
		"empty":         nil,
		"short":         good[:len(good)-1],
		"long":          append(bytes.Clone(good), '\n'),
		"other magic":   flip(0, 'x'),
		"digit flipped": flip(len(magic)+classWidth+5, '9'),
		"checksum":      flip(RecordLen-2, 'z'),
		"torn":          append(bytes.Clone(good[:40]), bytes.Repeat([]byte{0}, RecordLen-40)...),
		"text":          bytes.Repeat([]byte("a"), RecordLen),
	}
	for name, b := range cases {
		if _, err := Decode(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err %v, want ErrCorrupt", name, err)
		}
	}
	for _, class := range []string{"", "UPPER", "with space", "seventeen-chars-x", "a\nb"} {
		if _, err := Encode(State{Class: class}); err == nil {
			t.Errorf("class %q encoded", class)
		}
	}
}

// FuzzDecode: any bytes either decode to a state that encodes back to the
// same bytes, or are ErrCorrupt. Nothing panics.
func FuzzDecode(f *testing.F) {
	good, _ := Encode(State{Class: "not-eligible", Since: time.Unix(1764064800, 0), Logged: time.Unix(1764064800, 0), Suppressed: 42})
	f.Add(good)
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte(" "), RecordLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := Encode(s)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", s, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("decode/encode changed %q into %q", b, again)
		}
	})
}
