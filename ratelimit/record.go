package ratelimit

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// A state file holds one fixed-length line, so that an unchanged state can
// be rewritten in place:
//
//	pvc1 not-eligible     01764064800000000000 01764068400000000000 00000000000000003599 fe8f0372
//
// magic, class (padded to 16), since and logged (Unix nanoseconds), the
// count of suppressed results, and a checksum of everything before it
// (32-bit FNV-1a, which needs no table to set up), which catches a torn or
// hand-edited file.
const (
	magic       = "pvc1 "
	classWidth  = 16
	numWidth    = 20
	sumWidth    = 8
	RecordLen   = len(magic) + classWidth + 1 + 3*(numWidth+1) + sumWidth + 1
	sumOffset   = RecordLen - sumWidth - 1
	maxClassLen = classWidth
)

// ErrCorrupt marks a state file that cannot be read back.
var ErrCorrupt = errors.New("corrupt state")

// Encode renders s as one record. It fails only for a class that the record
// cannot hold (empty, too long, or not made of a-z, 0-9 and '-').
func Encode(s State) ([]byte, error) {
	if !validClass(s.Class) {
		return nil, fmt.Errorf("class %q cannot be stored", s.Class)
	}
	b := make([]byte, 0, RecordLen)
	b = append(b, magic...)
	b = append(b, s.Class...)
	for i := len(s.Class); i < classWidth; i++ {
		b = append(b, ' ')
	}
	for _, n := range []uint64{nanos(s.Since), nanos(s.Logged), s.Suppressed} {
		b = append(b, ' ')
		b = appendPadded(b, n)
	}
	b = append(b, ' ')
	b = appendHex32(b, checksum(b))
	return append(b, '\n'), nil
}

// Decode parses a record written by Encode. Anything else is ErrCorrupt.
func Decode(b []byte) (State, error) {
	if len(b) != RecordLen {
		return State{}, fmt.Errorf("%w: %d bytes, want %d", ErrCorrupt, len(b), RecordLen)
	}
	if string(b[:len(magic)]) != magic || b[RecordLen-1] != '\n' || b[sumOffset-1] != ' ' {
		return State{}, fmt.Errorf("%w: not a state record", ErrCorrupt)
	}
	var want [sumWidth]byte
	if appendHex32(want[:0], checksum(b[:sumOffset])); string(b[sumOffset:sumOffset+sumWidth]) != string(want[:]) {
		return State{}, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	class := b[len(magic) : len(magic)+classWidth]
	end := len(class)
	for end > 0 && class[end-1] == ' ' {
		end--
	}
	s := State{Class: string(class[:end])}
	if !validClass(s.Class) {
		return State{}, fmt.Errorf("%w: bad class", ErrCorrupt)
	}
	var nums [3]uint64
	off := len(magic) + classWidth
	for i := range nums {
		if b[off] != ' ' {
			return State{}, fmt.Errorf("%w: bad layout", ErrCorrupt)
		}
		field := b[off+1 : off+1+numWidth]
		for _, c := range field {
			if c < '0' || c > '9' {
				return State{}, fmt.Errorf("%w: bad number", ErrCorrupt)
			}
		}
		var err error
		if nums[i], err = strconv.ParseUint(string(field), 10, 64); err != nil {
			return State{}, fmt.Errorf("%w: bad number", ErrCorrupt)
		}
		off += 1 + numWidth
	}
	if nums[0] > 1<<63-1 || nums[1] > 1<<63-1 {
		return State{}, fmt.Errorf("%w: time out of range", ErrCorrupt)
	}
	s.Since = time.Unix(0, int64(nums[0]))
	s.Logged = time.Unix(0, int64(nums[1]))
	s.Suppressed = nums[2]
	return s, nil
}

// checksum is 32-bit FNV-1a.
func checksum(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

func appendHex32(b []byte, v uint32) []byte {
	const digits = "0123456789abcdef"
	for shift := 28; shift >= 0; shift -= 4 {
		b = append(b, digits[v>>uint(shift)&0xf])
	}
	return b
}

func validClass(c string) bool {
	if c == "" || len(c) > maxClassLen {
		return false
	}
	for i := 0; i < len(c); i++ {
		if ch := c[i]; !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-') {
			return false
		}
	}
	return true
}

// nanos stores times before 1970 (a badly set clock) as 1970.
func nanos(t time.Time) uint64 {
	if n := t.UnixNano(); n > 0 {
		return uint64(n)
	}
	return 0
}

func appendPadded(b []byte, n uint64) []byte {
	var digits [numWidth]byte
	for i := numWidth - 1; i >= 0; i-- {
		digits[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, digits[:]...)
}
